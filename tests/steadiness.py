"""Steadiness measurements shared by tests/test_steadiness.py and benchmarks/bench_steadiness.py.

Real photos become clips whose true 2D motion is known: a still subject (every frame the same photo, fresh
sensor noise, H.264), or a moving one (the photo seen through a window that moves along a smooth path of
translation, scale and in-plane rotation).  rigcast and MediaPipe Pose (``solutions.pose``, video mode, its own
smoothing) run on the same file, and the figures below compare them.

Legend: T frames, J joints (33, BlazePose), B bones.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from footage import write_video

FPS = 30
WARM_UP = 10  # frames left out of still-subject figures: both methods settle onto a new subject first
NOISE_SIGMA = 4.0  # sensor noise, in 8-bit levels, fresh every frame
CRF = 23  # x264's default quality: a realistic compression level


@dataclass(frozen=True)
class Result:
    """One method's output on one clip: ``xy`` (T, J, 2) px, ``xyz`` (T, J, 3) m (hip-centred world
    landmarks), ``conf`` (T, J); NaN and 0 where the method found no one.  ``track`` is the rigcast Track (or
    one built the same way from MediaPipe's output) that retargeting consumes."""

    xy: np.ndarray
    xyz: np.ndarray
    conf: np.ndarray
    track: object


def on_canvas(person: np.ndarray, height: int = 480, width: int = 640, person_height: int = 400) -> np.ndarray:
    """``person`` scaled to ``person_height`` rows, centred on skimage's coffee backdrop."""
    from fixtures_images import background, paste, resized

    patch = resized(person, person_height)
    return paste(background(height, width), patch, ((width - patch.shape[1]) // 2, (height - patch.shape[0]) // 2))


def _noisy(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(frame + rng.normal(0.0, NOISE_SIGMA, frame.shape), 0, 255).astype(np.uint8)


def still_clip(path: Path, image: np.ndarray, frames: int, seed: int = 0) -> Path:
    """``frames`` copies of ``image`` with fresh sensor noise each, encoded as H.264 at ``FPS``."""
    rng = np.random.default_rng(seed)
    return write_video(path, (_noisy(image, rng) for _ in range(frames)), fps=Fraction(FPS), crf=CRF)


PATHS = ("all", "sway", "zoom", "roll")
"""The moving clips' paths: sway, zoom and roll together, or each alone (see :func:`moving_path`)."""


def moving_path(frames: int, width: int, height: int, speed: float = 1.0, kind: str = "all") -> np.ndarray:
    """(T, 2, 3) affine maps image -> frame: smooth sway, zoom and in-plane roll about the image centre.

    ``speed`` scales every frequency: 1.0 moves the subject about 3 px a frame (a person shifting weight and
    turning), 2.0 twice that.  ``kind`` (:data:`PATHS`): all three together, or only the translation
    (``sway``), the scale (``zoom``) or the rotation (``roll``)."""
    if kind not in PATHS:
        raise ValueError(f"kind must be one of {PATHS}, got {kind!r}")
    t = np.arange(frames) / FPS
    tx = 0.09 * width * np.sin(2 * np.pi * 0.40 * speed * t)
    ty = 0.04 * height * np.sin(2 * np.pi * 0.27 * speed * t + 1.0)
    scale = 1.0 + 0.08 * np.sin(2 * np.pi * 0.31 * speed * t + 0.5)
    angle = np.radians(6.0) * np.sin(2 * np.pi * 0.35 * speed * t + 2.0)
    if kind not in ("all", "sway"):
        tx, ty = 0.0 * tx, 0.0 * ty
    if kind not in ("all", "zoom"):
        scale = np.ones_like(scale)
    if kind not in ("all", "roll"):
        angle = 0.0 * angle
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    centre = np.array([width / 2.0, height / 2.0])
    maps = np.zeros((frames, 2, 3))
    maps[:, 0, 0], maps[:, 0, 1], maps[:, 1, 0], maps[:, 1, 1] = c, -s, s, c
    rotated_centre = np.einsum("tij,j->ti", maps[:, :, :2], centre)
    maps[:, :, 2] = centre - rotated_centre + np.stack([tx, ty], axis=1)
    return maps


def moving_clip(path: Path, image: np.ndarray, frames: int, seed: int = 0, speed: float = 1.0, kind: str = "all"
                ) -> tuple[Path, np.ndarray]:
    """``image`` moved along :func:`moving_path` (edges reflected), with noise, as H.264; and the (T, 2, 3) maps."""
    h, w = image.shape[:2]
    maps = moving_path(frames, w, h, speed, kind)
    return warped_clip(path, image, maps, seed), maps


def warped_clip(path: Path, image: np.ndarray, maps: np.ndarray, seed: int = 0) -> Path:
    """``image`` warped by each of ``maps`` (T, 2, 3) (edges reflected), with noise, as H.264."""
    import cv2

    h, w = image.shape[:2]
    rng = np.random.default_rng(seed)
    out = (_noisy(cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT), rng)
           for m in maps)
    return write_video(path, out, fps=Fraction(FPS), crf=CRF)


TWO_LEFTS = (130, 530)  # where two copies of one man stand in a 960 x 480 frame (x of their photos' left edges)


def two_people_clip(path: Path, frames: int, person: np.ndarray) -> Path:
    """Two copies of ``person`` (scaled to 380 px), side by side at ``TWO_LEFTS``, their feet on one row: two
    people of one size standing on one floor at one depth, 400 px apart; still, noisy, H.264."""
    from fixtures_images import background, paste, resized

    patch = resized(person, 380)
    canvas = background(480, 960)
    for x in TWO_LEFTS:
        canvas = paste(canvas, patch, (x, 50))
    return still_clip(path, canvas, frames)


def floor_figures(take) -> dict[str, float]:
    """How well two_people_clip's Take puts its two people on one floor: ``fit_rms_m`` (the ground fit's RMS),
    ``depth_gap`` (their root depths' difference, fraction of the mean depth), ``distance_error`` (their roots'
    distance against the one their known 400 px gap gives at that depth, fraction of it) and
    ``foot_height_m`` (the larger |median height| above the floor of a person's planted feet' lowest points)."""
    from rigcast.lift.ground import FOOT_JOINTS

    tracks = sorted(take.tracks, key=lambda t: float(np.nanmedian(t.root_xyz[:, 0])))
    root = np.array([np.nanmedian(t.root_xyz[WARM_UP:], axis=0) for t in tracks])
    expected = (TWO_LEFTS[1] - TWO_LEFTS[0]) * root[:, 2].mean() / take.intrinsics.fx
    ground = take.meta["ground"]
    normal, offset = np.array(ground["normal"]), ground["offset_m"]
    heights = []
    for t in tracks:
        feet = t.xyz[:, np.array(FOOT_JOINTS)] + t.root_xyz[:, None, None, :]
        low = np.nanmin(feet @ normal, axis=2) - offset  # height of each foot's lowest point (normal is up)
        planted = low[WARM_UP:][t.contact[WARM_UP:]]
        heights.append(abs(float(np.median(planted))) if planted.size else float("inf"))
    return {"fit_rms_m": float(ground["fit_rms_m"]), "depth_gap": abs(root[0, 2] - root[1, 2]) / root[:, 2].mean(),
            "distance_error": abs(float(np.linalg.norm(root[1] - root[0])) - expected) / expected,
            "foot_height_m": max(heights)}


# -- running the two methods ------------------------------------------------------------

def run_rigcast(path: Path, take_path: Path, **options) -> Result:
    """``rigcast analyze`` (bodies only, one person) with ``options`` over AnalyzeConfig's defaults."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    take = analyze(path, take_path, AnalyzeConfig(faces=False, max_people=1, **options))
    return _dense(take.frame_indices, max(take.tracks, key=lambda t: t.num_frames) if take.tracks else None)


def _dense(frame_indices: np.ndarray, track) -> Result:
    n = len(frame_indices)
    xy, xyz, conf = np.full((n, 33, 2), np.nan), np.full((n, 33, 3), np.nan), np.zeros((n, 33))
    if track is not None:
        rows = np.searchsorted(frame_indices, track.frame_index)
        xy[rows], xyz[rows], conf[rows] = track.xy, track.xyz, track.conf
    return Result(xy, xyz, conf, track)


def decode(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def run_mediapipe(path: Path, complexity: int = 1) -> Result:
    """MediaPipe Pose in video mode (``static_image_mode=False``, ``smooth_landmarks=True``) over the clip.

    Its Track's root comes from rigcast's own PnP on MediaPipe's landmarks, so retargeting sees both methods
    the same way."""
    import mediapipe as mp

    from rigcast.camera import Intrinsics
    from rigcast.formats.take import Track
    from rigcast.lift import estimate_root_trajectory
    from rigcast.skeletons import BLAZEPOSE_33

    frames = decode(path)
    n = len(frames)
    xy, xyz, conf = np.full((n, 33, 2), np.nan), np.full((n, 33, 3), np.nan), np.zeros((n, 33))
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=complexity, smooth_landmarks=True) as pose:
        for t, rgb in enumerate(frames):
            res = pose.process(rgb)
            if res.pose_landmarks is None:
                continue
            h, w = rgb.shape[:2]
            xy[t] = [[p.x * w, p.y * h] for p in res.pose_landmarks.landmark]
            conf[t] = [p.visibility for p in res.pose_landmarks.landmark]
            xyz[t] = [[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark]
    found = np.flatnonzero(conf.max(axis=1) > 0)
    h, w = frames[0].shape[:2]
    root = estimate_root_trajectory(xy[found], xyz[found], conf[found], Intrinsics.from_fov(w, h))
    track = Track(track_id=0, skeleton=BLAZEPOSE_33, frame_index=found, xy=xy[found], xyz=xyz[found],
                  conf=conf[found], root_xyz=root.root_xyz)
    return Result(xy, xyz, conf, track)


# -- figures ---------------------------------------------------------------------------

def visible_joints(*results: Result, min_conf: float = 0.5) -> np.ndarray:
    """Joints (indices) whose median confidence is at least ``min_conf`` in every one of ``results``."""
    ok = np.ones(33, dtype=bool)
    for r in results:
        ok &= np.median(r.conf, axis=0) >= min_conf
    return np.flatnonzero(ok)


def joint_jitter(points: np.ndarray, joints: np.ndarray, warm_up: int = WARM_UP) -> float:
    """Median over ``joints`` of each joint's spread about its mean position, ``sqrt(mean |p - mean p|^2)``,
    over the frames where it was found after the first ``warm_up``; ``points`` (T, J, C)."""
    spreads = []
    for j in joints:
        p = points[warm_up:, j]
        p = p[np.all(np.isfinite(p), axis=1)]
        spreads.append(np.sqrt(np.mean(np.sum((p - p.mean(axis=0)) ** 2, axis=1))) if len(p) > 1 else np.nan)
    return float(np.nanmedian(spreads))


def retargeted_rotations(result: Result, fps: float = FPS) -> np.ndarray:
    """World rotations (T, B, 3, 3) of rigcast's default armature driven by the result's track (default
    retarget options, foot contact included: what an animator sees)."""
    from rigcast.retarget import default_rig, fk, retarget
    from rigcast.retarget.canonical import canonical_from_track

    rig = default_rig()
    motion = retarget(canonical_from_track(result.track, fps=Fraction(fps)), rig, fps=fps)
    return fk(rig, motion)[..., :3, :3]


def bone_jitter_deg(rotations: np.ndarray, warm_up: int = WARM_UP) -> float:
    """Median over bones of the RMS angle (degrees) between each frame's world rotation and the bone's mean
    rotation after the first ``warm_up`` frames, for a still subject; ``rotations`` (T, B, 3, 3)."""
    from scipy.spatial.transform import Rotation

    spreads = []
    for b in range(rotations.shape[1]):
        r = rotations[warm_up:, b]
        r = r[np.all(np.isfinite(r), axis=(1, 2))]
        if len(r) < 2:
            continue
        rot = Rotation.from_matrix(r)
        spreads.append(np.degrees(np.sqrt(np.mean((rot.mean().inv() * rot).magnitude() ** 2))))
    return float(np.median(spreads))


def photo_positions(xy: np.ndarray, maps: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Each joint's position (J', 2) in the still photo: the frames' keypoints mapped back by the known maps,
    median over frames.  A method's constant bias is its model's, not tracking error, so each method is
    measured against its own photo positions."""
    a = maps[:, :, :2]
    inv = np.linalg.inv(a)
    back = np.einsum("tij,tkj->tki", inv, xy[:, joints] - maps[:, None, :, 2])
    return np.nanmedian(back, axis=0)


def true_path(photo_xy: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """Where the photo points (J', 2) are in each frame: (T, J', 2)."""
    return np.einsum("tij,kj->tki", maps[:, :, :2], photo_xy) + maps[:, None, :, 2]


SEEN_JOINTS = np.arange(13)
"""The fixed joint set both photos show: BlazePose's nose, eyes, ears, mouth corners and shoulders (0-12)."""
ALL_JOINTS = np.arange(33)
"""All 33 joints: for the astronaut, whose photo ends at her chest, arms, hips and legs are the model's guesses
(their true path: where each method's own guess sits in the photo, moved with it)."""


def fixed_set_error_pct(xy: np.ndarray, maps: np.ndarray, joints: np.ndarray, frame_height: int) -> float:
    """The RMS over ``joints`` (a fixed set, whatever either method calls visible) and frames of the distance
    between a keypoint and its true path, in % of the frame height (frames where the method found no one are
    left out)."""
    truth = true_path(photo_positions(xy, maps, joints), maps)
    d2 = np.sum((xy[:, joints] - truth) ** 2, axis=2)
    return float(100.0 * np.sqrt(np.nanmean(d2)) / frame_height)


def lag_frames(xy: np.ndarray, maps: np.ndarray, joints: np.ndarray, max_shift: int = 6) -> float:
    """The delay (frames, to 0.05) that best aligns the keypoints' motion with the true motion: the shift of the
    true frame-to-frame velocities (linearly interpolated between frames) that leaves the least squared
    difference from the keypoints' velocities over ``joints`` and both axes.  Positive: the output lags.

    (Until December 2026 the peak of the velocities' cross-correlation: on these slow, smooth paths it is so
    flat that the true path itself two frames late read as 0.36 frame, three as 0.91.)"""
    truth = true_path(photo_positions(xy, maps, joints), maps)
    v_out = np.diff(xy[:, joints], axis=0).reshape(len(xy) - 1, -1)  # (T-1, 2J')
    v_true = np.diff(truth, axis=0).reshape(len(xy) - 1, -1)
    n = len(v_out)
    frames = np.arange(n, dtype=np.float64)
    best, best_cost = 0.0, np.inf
    for shift in np.arange(-max_shift, max_shift + 1e-9, 0.05):
        at = frames - shift  # the output at t shows the truth at t - shift
        inside = (at >= 0) & (at <= n - 1) & np.all(np.isfinite(v_out), axis=1)
        if inside.sum() < n // 2:
            continue
        shifted = np.stack([np.interp(at[inside], frames, v_true[:, k]) for k in range(v_true.shape[1])], axis=1)
        cost = float(np.mean((v_out[inside] - shifted) ** 2))
        if cost < best_cost:
            best, best_cost = float(shift), cost
    return best
