"""Lightweight 3D multi-person pose, bottom-up, from a user's ONNX export of Daniil-Osokin's
lightweight-human-pose-estimation-3d-demo: frame → people with 19 joints in 2D and 3D.

Its ``scripts/convert_to_onnx.py`` exports one input ``data`` (1, 3, 256, 448)
and three outputs at stride 8: ``features`` (1, 57, 32, 56), 19 joints x
(x, y, z) root-relative, in units of ``AVG_PERSON_HEIGHT_CM``; ``heatmaps``
(1, 19, 32, 56), 18 keypoints in OpenPose's COCO-18 order plus background;
``pafs`` (1, 38, 32, 56), 19 limbs x (x, y) part affinity fields.  As its
``demo.py`` and ``parse_poses.py`` do:

1. preprocess (:func:`input_plan`, :meth:`Lightweight3DEstimator.preprocess`):
   the frame is scaled to ``INPUT_HEIGHT`` px high (bilinear), its width cut
   to a multiple of the stride, fed as BGR, ``(px - 128) / 255``.  A model
   with a fixed input width (the export's 448) gets the scaled frame cut, or
   padded on the right with 128 (0 after normalising), to that width.
2. 2D grouping (:func:`find_peaks`, :func:`group_people`): heatmaps and PAFs
   upsampled x4 (bilinear); per keypoint type, local maxima over 0.1 with a
   greedy 6 px suppression; each limb's candidate pairs scored by the PAF
   along 10 samples, grouped greedily into people (OpenPose's scheme, its
   ``BODY_PARTS_KPT_IDS`` / ``BODY_PARTS_PAF_IDS``); people with fewer than
   3 keypoints, a mean score under 0.2 or no neck are dropped.
3. 3D read-out (:func:`read_root_relative`): all 19 joints' features read
   at the neck, then each limb's joints re-read at the limb's first
   confident joint (wrist, elbow, shoulder; ankle, knee, hip; ear, eye, nose).
4. camera placement (:func:`place_in_camera`): weak perspective, the scale
   of the 3D spread over the 2D spread about their means, with the
   principal point at the input's centre and ``fx`` (default 0.8 x frame
   width, as the demo guesses) for depth.

The seed's 3D is in cm in OpenCV camera axes (x right, y down, z forward),
rigcast's ``Track`` axes; it comes out here in metres
(:func:`rigcast.frames.cv_to_blender` turns it into Blender's).  Unlike the
seed, 2D keypoints stay sub-pixel (it truncates them to whole frame px).

The seed's face joints 15-18 are named by its 2D repacking (``Pose.kpt_names``:
r_eye, l_eye, r_ear, l_ear); its 3D plot joins them nose-15-16 and
nose-17-18 as CMU Panoptic's own order (l_eye, l_ear, r_eye, r_ear) would: the
features' channels for these four may follow Panoptic's order.  Its 3D read
chains (ear, eye, nose: ``[18, 17, 1]``, ``[16, 15, 1]``) say they do, so
retargeting reads the 3D face in Panoptic's order
(:data:`rigcast.retarget.canonical.LW3D_PANOPTIC_FACE`); the Track keeps the
channels as the seed outputs them.

Legend: N persons, J = 19 joints, K peaks of one keypoint type, h x w the
output maps' size (input / 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelError
from ..runners import Runner
from ..skeletons import LW3D_19

INPUT_HEIGHT = 256  # demo.py's --height-size
EXPORT_INPUT_HW = (256, 448)  # convert_to_onnx.py's dummy input
STRIDE = 8
PIXEL_MEAN = 128.0
PIXEL_SCALE = 1.0 / 255.0
UPSAMPLE = 4  # heatmaps and PAFs are decoded at 4x the output size
PEAK_THRESHOLD = 0.1
PEAK_SUPPRESS_PX = 6.0  # in upsampled px
PAF_SAMPLES = 10
MIN_PAF_SCORE = 0.05
MIN_PAF_PASS = 0.8  # share of samples over MIN_PAF_SCORE a limb needs
MIN_PERSON_KEYPOINTS = 3
MIN_PERSON_MEAN_SCORE = 0.2
READ_THRESHOLD = 0.1  # a joint must score over this to be read from
AVG_PERSON_HEIGHT_CM = 180.0
FX_OF_WIDTH = 0.8  # demo.py's focal length when none is given: 0.8 x frame width
OUTPUT_CHANNELS = {"features": 57, "heatmaps": 19, "pafs": 38}

# OpenPose COCO-18 keypoints, the heatmaps' order: nose, neck, r_sho, r_elb, r_wri, l_sho, l_elb, l_wri,
# r_hip, r_knee, r_ank, l_hip, l_knee, l_ank, r_eye, l_eye, r_ear, l_ear.
NUM_KEYPOINTS_2D = 18
NECK_2D = 1
# Limbs as (keypoint a, keypoint b) and their PAF channels (x, y), in the order the grouping visits them.
LIMB_KEYPOINTS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
                  (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17))
LIMB_PAF_CHANNELS = ((12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5),
                     (6, 7), (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27))
# Shoulder-ear limbs only fill in an ear a person lacks; they never start a person.
FILL_ONLY_LIMBS = (17, 18)
# COCO-18 keypoint k is LW3D_19 joint PANOPTIC_OF_2D[k]; LW3D_19's pelvis (2) has no 2D keypoint.
PANOPTIC_OF_2D = (1, 0, 9, 10, 11, 3, 4, 5, 12, 13, 14, 6, 7, 8, 15, 16, 17, 18)
NECK, PELVIS = 0, 2  # in LW3D_19
# Limb chains of LW3D_19 joints, read at the first confident joint of each (parse_poses' ``limbs``).
READ_CHAINS = ((18, 17, 1), (16, 15, 1), (5, 4, 3), (8, 7, 6), (11, 10, 9), (14, 13, 12))


@dataclass(frozen=True)
class InputPlan:
    """How a frame becomes the model input: ``scale`` input px per frame px; ``input_wh`` the input's size;
    ``content_w`` the input px (from the left) that hold the scaled frame, the rest being padding."""

    scale: float
    input_wh: tuple[int, int]
    content_w: int


def input_plan(frame_wh: tuple[int, int], model_wh: tuple[int | None, int | None] = (None, None)) -> InputPlan:
    """Frame size (w, h) px → its :class:`InputPlan`: scaled to the model's height (``INPUT_HEIGHT`` when
    dynamic), the width cut to a multiple of ``STRIDE`` (a dynamic model) or cut/padded to the model's."""
    width, height = frame_wh
    model_w, model_h = model_wh
    target_h = INPUT_HEIGHT if model_h is None else int(model_h)
    scale = target_h / height
    scaled_w = int(round(width * scale))  # cv2.resize's own rounding of dsize from fx
    scaled_w -= scaled_w % STRIDE
    if model_w is None:
        return InputPlan(scale=scale, input_wh=(scaled_w, target_h), content_w=scaled_w)
    return InputPlan(scale=scale, input_wh=(int(model_w), target_h), content_w=min(scaled_w, int(model_w)))


def find_peaks(heatmap: np.ndarray) -> np.ndarray:
    """One keypoint type's heatmap (H, W) → peaks (K, 3): x, y (px, whole) and score, ordered by x.

    Values under ``PEAK_THRESHOLD`` count as 0; a peak is strictly higher than its four neighbours (outside the
    map counts as 0).  Going by x (then y), each kept peak suppresses the later ones nearer than
    ``PEAK_SUPPRESS_PX``.
    """
    maps = np.where(heatmap < PEAK_THRESHOLD, 0.0, heatmap).astype(np.float64)
    padded = np.pad(maps, 1)
    centre = padded[1:-1, 1:-1]
    is_peak = ((centre > padded[1:-1, :-2]) & (centre > padded[1:-1, 2:])
               & (centre > padded[:-2, 1:-1]) & (centre > padded[2:, 1:-1]))
    ys, xs = np.nonzero(is_peak)  # row-major: by y, then x
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    kept = np.ones(len(xs), dtype=bool)
    for i in range(len(xs)):
        if kept[i]:
            near = np.hypot(xs[i + 1:] - xs[i], ys[i + 1:] - ys[i]) < PEAK_SUPPRESS_PX
            kept[i + 1:] &= ~near
    xs, ys = xs[kept], ys[kept]
    return np.stack([xs, ys, maps[ys, xs]], axis=1) if len(xs) else np.zeros((0, 3))


def _limb_candidates(peaks_a: np.ndarray, peaks_b: np.ndarray, paf_xy: np.ndarray) -> list[tuple[int, int, float]]:
    """Pairs (i, j, score) of peaks a (Ka, 3) and b (Kb, 3) that the limb's PAF (2, H, W) joins, best first,
    each peak used once: the PAF along the segment, dotted with its direction, at ``PAF_SAMPLES`` points; a
    pair needs more than ``MIN_PAF_PASS`` of them over ``MIN_PAF_SCORE``; the score is their mean, less a
    penalty for a limb longer than half the map's height."""
    half_height = paf_xy.shape[1] // 2
    a = peaks_a[:, None, :2]  # (Ka, 1, 2)
    vec = peaks_b[None, :, :2] - a  # (Ka, Kb, 2)
    length = np.hypot(vec[..., 0], vec[..., 1])
    steps = np.arange(PAF_SAMPLES) / (PAF_SAMPLES - 1)
    points = a[..., None, :] + steps[:, None] * vec[..., None, :]  # (Ka, Kb, S, 2) xy
    px, py = points[..., 0].astype(np.int64), points[..., 1].astype(np.int64)  # truncation, as the seed
    with np.errstate(invalid="ignore", divide="ignore"):
        along = (paf_xy[0, py, px] * vec[..., 0, None] + paf_xy[1, py, px] * vec[..., 1, None]) / length[..., None]
        passed = along > MIN_PAF_SCORE
        count = passed.sum(axis=-1)
        score = np.where(count > 0, np.where(passed, along, 0.0).sum(axis=-1) / np.maximum(count, 1), 0.0)
        score += np.minimum(half_height / length - 1.0, 0.0)
    ok = (length > 0) & (score > 0) & (count / PAF_SAMPLES > MIN_PAF_PASS)
    found = [(int(i), int(j), float(score[i, j])) for i, j in zip(*np.nonzero(ok))]  # (i, j) order, as the seed
    found.sort(key=lambda c: -c[2])  # stable: ties keep the (i, j) order
    used_a, used_b, pairs = set(), set(), []
    for i, j, score in found:
        if len(pairs) == min(len(peaks_a), len(peaks_b)):
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j, score))
    return pairs


def group_people(peaks: list[np.ndarray], pafs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peaks per COCO-18 keypoint type (18 arrays (K, 3) xy + score) and PAFs (38, H, W) at the peaks' scale →
    people as peak indices (N, 18) int (index into that type's peaks, -1 where missing) and scores (N,)
    (keypoint scores plus limb scores summed).  People with fewer than ``MIN_PERSON_KEYPOINTS`` keypoints or
    a mean score under ``MIN_PERSON_MEAN_SCORE`` are dropped; the neck is not required here."""
    if len(peaks) != NUM_KEYPOINTS_2D:
        raise ModelError(f"expected peaks of {NUM_KEYPOINTS_2D} keypoint types, found {len(peaks)}")
    members: list[np.ndarray] = []  # per person (18,) peak index or -1
    totals: list[float] = []  # per person: score sum
    counts: list[int] = []

    def start(pairs: dict[int, int], score: float) -> None:
        entry = np.full(NUM_KEYPOINTS_2D, -1, dtype=np.int64)
        for kpt, idx in pairs.items():
            entry[kpt] = idx
        members.append(entry)
        totals.append(score)
        counts.append(len(pairs))

    for limb, ((ka, kb), channels) in enumerate(zip(LIMB_KEYPOINTS, LIMB_PAF_CHANNELS)):
        peaks_a, peaks_b = peaks[ka], peaks[kb]
        if len(peaks_a) == 0 or len(peaks_b) == 0:
            # One end only: its peaks that no person holds yet start people of one keypoint.
            kind, lone = (kb, peaks_b) if len(peaks_a) == 0 else (ka, peaks_a)
            for idx in range(len(lone)):
                if not any(m[kind] == idx for m in members):
                    start({kind: idx}, float(lone[idx, 2]))
            continue
        pairs = _limb_candidates(peaks_a, peaks_b, pafs[list(channels)])
        if not pairs:
            continue
        if limb == 0:  # the first limb seen starts the people afresh
            members.clear(), totals.clear(), counts.clear()
            for i, j, score in pairs:
                start({ka: i, kb: j}, float(peaks_a[i, 2] + peaks_b[j, 2] + score))
        elif limb in FILL_ONLY_LIMBS:
            for i, j, _ in pairs:
                for m in members:
                    if m[ka] == i and m[kb] == -1:
                        m[kb] = j
                    elif m[kb] == j and m[ka] == -1:
                        m[ka] = i
        else:
            for i, j, score in pairs:
                holders = [p for p, m in enumerate(members) if m[ka] == i]
                for p in holders:
                    members[p][kb] = j
                    counts[p] += 1
                    totals[p] += float(peaks_b[j, 2]) + score
                if not holders:
                    start({ka: i, kb: j}, float(peaks_a[i, 2] + peaks_b[j, 2] + score))
    keep = [p for p in range(len(members))
            if counts[p] >= MIN_PERSON_KEYPOINTS and totals[p] / counts[p] >= MIN_PERSON_MEAN_SCORE]
    if not keep:
        return np.zeros((0, NUM_KEYPOINTS_2D), dtype=np.int64), np.zeros(0)
    return np.stack([members[p] for p in keep]), np.array([totals[p] for p in keep])


def read_root_relative(features: np.ndarray, xy: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Features (57, h, w) and one person's joints xy (19, 2) in feature px (NaN where missing), conf (19,) →
    root-relative joints (19, 3) in cm, OpenCV axes; all NaN when the neck scores ``READ_THRESHOLD`` or less.

    Each joint's 3 channels are read at the neck's px, then each chain of :data:`READ_CHAINS` is re-read at
    its first joint scoring over ``READ_THRESHOLD`` (px truncated, as the seed).
    """
    maps = features.reshape(LW3D_19.num_joints, 3, *features.shape[1:])
    out = np.full((LW3D_19.num_joints, 3), np.nan)
    if not conf[NECK] > READ_THRESHOLD:
        return out
    x, y = xy[NECK].astype(np.int64)
    out[:] = maps[:, :, y, x]
    for chain in READ_CHAINS:
        for source in chain:
            if conf[source] > READ_THRESHOLD:
                x, y = xy[source].astype(np.int64)
                out[list(chain)] = maps[list(chain), :, y, x]
                break
    return out * AVG_PERSON_HEIGHT_CM


def place_in_camera(relative_cm: np.ndarray, xy: np.ndarray, centre_xy: tuple[float, float],
                    focal: float) -> np.ndarray:
    """Root-relative joints (19, 3) cm and 2D joints (19, 2) in feature px (NaN where missing) → joints (19, 3)
    in camera space, cm, by the seed's weak perspective: over the joints seen in 2D, scale = the 3D xy spread
    over the 2D spread about their means (root of summed squares); the mean 2D point about ``centre_xy``, at
    depth ``focal`` (feature px), times that scale, is where the mean 3D xy point goes.  NaN when the 2D joints
    have no spread."""
    seen = np.isfinite(xy).all(axis=1) & np.isfinite(relative_cm).all(axis=1)
    if seen.sum() < 2:
        return np.full_like(relative_cm, np.nan)
    xy_seen = xy[seen] - np.asarray(centre_xy, dtype=np.float64)
    rel_seen = relative_cm[seen]
    mean_2d, mean_3d = xy_seen.mean(axis=0), rel_seen[:, :2].mean(axis=0)
    spread_2d = np.sqrt(((xy_seen - mean_2d) ** 2).sum())
    spread_3d = np.sqrt(((rel_seen[:, :2] - mean_3d) ** 2).sum())
    if spread_2d == 0:
        return np.full_like(relative_cm, np.nan)
    ratio = spread_3d / spread_2d
    translation = np.array([ratio * mean_2d[0] - mean_3d[0], ratio * mean_2d[1] - mean_3d[1], ratio * focal])
    return relative_cm + translation


@dataclass(frozen=True, eq=False)  # arrays: compare fields explicitly
class People3D:
    """One frame's people, joints in ``LW3D_19``'s order: ``xy`` (N, 19, 2) frame px, ``xyz`` (N, 19, 3)
    metres in camera space (OpenCV axes: x right, y down, z forward), ``conf`` (N, 19) heatmap scores (missing
    joints 0; a missing joint's xy is NaN, its xyz the model's guess), ``scores`` (N,) the grouping's person
    scores.  The pelvis, which the model has no 2D keypoint for, is placed in 2D between the hips, at the lower
    of their scores (missing without both)."""

    xy: np.ndarray
    xyz: np.ndarray
    conf: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        joints = LW3D_19.num_joints
        fields = {"xy": 2, "xyz": 3}
        n = np.shape(self.scores)[0] if np.ndim(self.scores) == 1 else None
        for name, dims in fields.items():
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n, joints, dims):
                raise ValueError(f"{name} must be (N, J, {dims}) with N={n}, J={joints}, got {arr.shape}")
            object.__setattr__(self, name, arr)
        conf = np.asarray(self.conf, dtype=np.float64)
        if conf.shape != (n, joints):
            raise ValueError(f"conf must be (N, J) with N={n}, J={joints}, got {conf.shape}")
        object.__setattr__(self, "conf", conf)
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float64))

    @property
    def skeleton(self):
        return LW3D_19


def decode(features: np.ndarray, heatmaps: np.ndarray, pafs: np.ndarray, plan: InputPlan,
           fx: float) -> People3D:
    """The model's outputs for one frame, features (57, h, w), heatmaps (19, h, w), pafs (38, h, w) → its people;
    ``fx`` the focal length in frame px, ``plan`` how the frame was scaled into the input."""
    import cv2

    for name, maps in (("features", features), ("heatmaps", heatmaps), ("pafs", pafs)):
        if maps.ndim != 3 or maps.shape[0] != OUTPUT_CHANNELS[name] or maps.shape[1:] != features.shape[1:]:
            raise ModelError(f"expected {name} ({OUTPUT_CHANNELS[name]}, h, w) with h, w as features', found "
                             f"{maps.shape} (features {features.shape})")

    def upsample(maps: np.ndarray) -> np.ndarray:
        # cv2.resize takes at most 512 channels HWC; bilinear, as the seed's default interpolation
        up = cv2.resize(np.ascontiguousarray(maps.transpose(1, 2, 0), dtype=np.float32), None,
                        fx=UPSAMPLE, fy=UPSAMPLE, interpolation=cv2.INTER_LINEAR)
        return up.reshape(up.shape[0], up.shape[1], -1).transpose(2, 0, 1)

    heat_up, paf_up = upsample(heatmaps[:NUM_KEYPOINTS_2D]), upsample(pafs)
    peaks = [find_peaks(m) for m in heat_up]
    members, person_scores = group_people(peaks, paf_up)
    has_neck = members[:, NECK_2D] >= 0
    members, person_scores = members[has_neck], person_scores[has_neck]
    n, joints = len(members), LW3D_19.num_joints
    xy_feat = np.full((n, joints, 2), np.nan)
    conf = np.zeros((n, joints))
    for p, entry in enumerate(members):
        for k, idx in enumerate(entry):
            if idx >= 0:
                x, y, score = peaks[k][idx]
                xy_feat[p, PANOPTIC_OF_2D[k]] = (x / UPSAMPLE, y / UPSAMPLE)
                conf[p, PANOPTIC_OF_2D[k]] = score
    centre = (plan.content_w / STRIDE / 2, features.shape[1] / 2)
    focal = fx * plan.scale / STRIDE
    xyz_cm = np.stack([place_in_camera(read_root_relative(features, xy_feat[p], conf[p]), xy_feat[p], centre, focal)
                       for p in range(n)]) if n else np.zeros((0, joints, 3))
    # rigcast's addition, after the 3D (whose placement uses the model's 2D keypoints only): the pelvis, which has
    # no 2D keypoint, is put between the hips, at the lower hip score, so that the root joint is a seen joint.
    hips = [LW3D_19.index("left_hip"), LW3D_19.index("right_hip")]
    xy_feat[:, PELVIS] = xy_feat[:, hips].mean(axis=1)  # NaN unless both hips are found
    conf[:, PELVIS] = conf[:, hips].min(axis=1)
    return People3D(xy=xy_feat * STRIDE / plan.scale, xyz=xyz_cm / 100.0, conf=conf, scores=person_scores)


class Lightweight3DEstimator:
    """Finds people and their 19 joints in 2D and 3D with a user's lightweight-human-pose-estimation-3d ONNX.

    The model must take one input (1, 3, H, W) and give ``features``, ``heatmaps`` and ``pafs`` (57, 19 and 38
    channels at stride 8).  ``fx``: the camera's focal length in frame px; None guesses 0.8 x frame width.
    ``raw_pixels``: feed BGR 0..255 unnormalised, for a model with the normalisation built in (the seed's
    OpenVINO engine feeds its IR so: Open Model Zoo converts it with mean 128 and scale 255 folded in).
    """

    skeleton = LW3D_19

    def __init__(self, runner: Runner, fx: float | None = None, raw_pixels: bool = False):
        self.runner = runner
        self.fx = fx
        self.raw_pixels = raw_pixels
        found = (f"inputs {[(s.name, s.shape) for s in runner.inputs]}, "
                 f"outputs {[(s.name, s.shape) for s in runner.outputs]}")
        expected = ("a lightweight 3D pose model with input data (1, 3, 256, 448) and outputs features (1, 57, 32, "
                    "56), heatmaps (1, 19, 32, 56), pafs (1, 38, 32, 56)")
        outputs = {s.name: s for s in runner.outputs}
        if len(runner.inputs) != 1 or set(OUTPUT_CHANNELS) - set(outputs):
            raise ModelError(f"expected {expected}, found {found}")
        (self._input,) = runner.inputs
        shape = tuple(self._input.shape)
        if len(shape) != 4 or shape[1] not in (3, None):
            raise ModelError(f"expected {expected}, found {found}")
        for name, channels in OUTPUT_CHANNELS.items():
            out = tuple(outputs[name].shape)
            if len(out) != 4 or out[1] not in (channels, None):
                raise ModelError(f"expected {expected}, found {found}")
        self.model_wh = (shape[3], shape[2])

    def preprocess(self, rgb: np.ndarray) -> tuple[np.ndarray, InputPlan]:
        """Frame (H, W, 3) uint8 RGB → model input (1, 3, h, w) float32 (BGR, (px - 128) / 255, or px for
        ``raw_pixels``) and its plan."""
        import cv2

        plan = input_plan((rgb.shape[1], rgb.shape[0]), self.model_wh)
        if plan.content_w < STRIDE:
            raise InputError(f"expected a frame at least {STRIDE} px wide once scaled to {plan.input_wh[1]} px "
                             f"high, got {rgb.shape[1]}x{rgb.shape[0]}")
        scaled = cv2.resize(rgb, None, fx=plan.scale, fy=plan.scale, interpolation=cv2.INTER_LINEAR)
        canvas = np.full((plan.input_wh[1], plan.input_wh[0], 3), PIXEL_MEAN, dtype=np.float32)
        rows = min(scaled.shape[0], plan.input_wh[1])
        canvas[:rows, :plan.content_w] = scaled[:rows, :plan.content_w, ::-1]  # RGB → BGR, as cv2 frames
        normalised = canvas if self.raw_pixels else (canvas - PIXEL_MEAN) * PIXEL_SCALE
        return normalised.transpose(2, 0, 1)[None].astype(np.float32), plan

    def __call__(self, rgb: np.ndarray) -> People3D:
        """The people in ``rgb`` (H, W, 3) uint8."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 1:
            raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        batch, plan = self.preprocess(rgb)
        out = self.runner({self._input.name: batch})
        fx = FX_OF_WIDTH * rgb.shape[1] if self.fx is None else float(self.fx)
        return decode(out["features"][0], out["heatmaps"][0], out["pafs"][0], plan, fx)
