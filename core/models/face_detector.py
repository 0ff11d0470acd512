"""BlazeFace face detector: frame → faces, each with a box, a score and six keypoints.

Rebuilt from MediaPipe's ``face_detection.pbtxt`` (with the options of
``face_detection_short_range.pbtxt`` and ``face_detection_full_range.pbtxt``)
around the two ONNX models:

* letterbox the frame to the model's square input, values in [-1, 1], black
  (-1) outside the frame (``BORDER_ZERO``);
* decode SSD anchors: short range 128 x 128 with strides 8, 16, 16, 16 and
  two anchors per cell (16x16x2 + 8x8x6 = 896); full range 192 x 192, one
  layer of stride 4 and one anchor per cell (48x48 = 2304).  Anchors have a
  fixed unit size; offsets are in input pixels (scale = input size);
* 16 numbers per anchor: box ``x, y, w, h`` then six keypoints ``x, y``: the
  eyes (0: the eye on the image left of a frontal face, 1: the other), the
  nose tip (2), the mouth centre (3) and the ear tragions (4, 5);
* sigmoid scores (logits clipped to ±100), keep scores >= ``min_score``;
* MediaPipe's *weighted* non-maximum suppression at IoU 0.3.

Which model.  The short-range model (MediaPipe's default for selfies and
face meshes) places faces that fill about 1/8 to 0.45 of its input well:
faces within about 2 m of a phone camera.  Below that it still fires, but
with a box 2-3 times too large.  The full-range model places faces from
about 1/15 to 0.45 of its input, at 3x the cost (all measured here with the
astronaut photo shrunk or enlarged on a person-free backdrop).  Neither
sees a face wider than about 0.45 of its window.

``mode="auto"`` (the default) wants every face in the frame, so it never
stops at the first model that finds one:

1. the short-range model runs on the letterboxed frame and on the frame
   shrunk into a window twice its size (for close-ups wider than 0.45 of the
   frame, reported from there only when at least 0.4 of the frame);
2. the full-range model runs on the letterboxed frame and, for small faces,
   on tiles (below);
3. a short-range box that holds the centre of a much smaller full-range box
   is the short model's oversized echo of that small face and is dropped;
4. the rest are merged by weighted NMS (the two models' boxes of one face
   overlap by IoU 0.7 or more, their keypoints agree to a few px).

``mode="short"`` is step 1 alone (MediaPipe's face mesh detector, plus the
close-up window), ``mode="full"`` step 2 alone.

Small faces.  On the letterboxed frame a face must be at least
``FULL_DETECTABLE_FRAC`` of the frame's long side for the full model to see
it.  When ``min_face_px`` asks for smaller faces, the full model also runs on
overlapping square tiles sized so that a face of ``min_face_px`` fills that
fraction of a tile (see :func:`plan_face_windows`), and everything is merged
in frame pixels.

Legend: N faces (after NMS), D candidate detections, A anchors, K = 6 keypoints.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelError
from ..runners import Runner
from .anchors import SsdAnchorOptions, decode_boxes, ssd_anchors, ssd_input, ssd_output_names, validate_detection
from .pose_detector import weighted_nms
from .roi import Roi, normalize_radians

NUM_KEYPOINTS = 6
KEYPOINT_NAMES = ("eye_image_left", "eye_image_right", "nose_tip", "mouth_centre", "ear_image_left",
                  "ear_image_right")
SCORE_CLIP = 100.0  # TensorsToDetectionsCalculator's score_clipping_thresh
DETECTOR_MODES = ("auto", "short", "full")

# face_detection_short_range.pbtxt / face_detection_full_range.pbtxt + face_detection.pbtxt.
FACE_SHORT_RANGE_ANCHORS = SsdAnchorOptions(input_size=(128, 128), strides=(8, 16, 16, 16), min_scale=0.1484375,
                                            max_scale=0.75, anchor_offset=(0.5, 0.5), aspect_ratios=(1.0,),
                                            interpolated_scale_aspect_ratio=1.0, fixed_anchor_size=True)
FACE_FULL_RANGE_ANCHORS = SsdAnchorOptions(input_size=(192, 192), strides=(4,), min_scale=0.1484375,
                                           max_scale=0.75, anchor_offset=(0.5, 0.5), aspect_ratios=(1.0,),
                                           interpolated_scale_aspect_ratio=0.0, fixed_anchor_size=True)

# face_detection_front_detection_to_roi.pbtxt: the landmark ROI is the detection box, rotated so
# that eye 0 → eye 1 points along +x (target angle 0), squared on its long side and scaled 1.5x.
DETECTION_ROI_SCALE = 1.5

# Tiling (measured with the astronaut's face pasted at many sizes on a person-free backdrop):
# the full-range model finds a face down to about 0.065 of its window side, not at 0.052; 0.08 leaves a margin.
FULL_DETECTABLE_FRAC = 0.08
TILE_OVERLAP = 0.25  # fraction of a tile shared with its neighbour
MAX_TILES = 18  # full-range runs per frame on tiles at most (about 9 ms each on 2 CPU cores)
# Tiles look at many more small windows, so they use the full-range graph's own threshold
# (face_detection_full_range.pbtxt: 0.6) when min_score is lower: on a person-free backdrop
# tiles drew a 21-px false face at 0.52.
TILE_MIN_SCORE = 0.6
# A tile only reports faces that fit it comfortably; larger ones are cut by the
# tile edge and belong to the full-frame pass.
MAX_TILE_FACE_FRAC = 0.5

# Close-ups.  Neither model finds a face wider than about 0.45 of its window (measured: 0.43 found,
# 0.5 not), so the short-range model also sees the frame shrunk into a window ZOOM_OUT times its
# long side; there it reports only faces of at least ZOOM_MIN_FACE_FRAC of that window (0.4 of the
# frame), which the frame window cannot see or sees at its limit.
ZOOM_OUT = 2.0
ZOOM_MIN_FACE_FRAC = 0.2

# Auto mode: a short-range box holding the centre of a full-range box smaller than this
# fraction of it is an echo of that smaller face (see short_range_echoes).
ECHO_SIZE_RATIO = 0.6


@dataclass(frozen=True)
class FaceDetection:
    """One detected face, in image pixels.

    ``box_xyxy`` (4,) is the detector's box ``[x0, y0, x1, y1]`` (brow to
    mouth, roughly ear to ear); ``keypoints_xy`` (6, 2) are the two eyes, the
    nose tip, the mouth centre and the two ear tragions (see
    ``KEYPOINT_NAMES``); ``score`` in [0, 1].
    """

    box_xyxy: np.ndarray
    score: float
    keypoints_xy: np.ndarray

    def __post_init__(self) -> None:
        validate_detection(self, NUM_KEYPOINTS)

    @property
    def size_px(self) -> float:
        """The box's longer side in pixels."""
        return float(max(self.box_xyxy[2] - self.box_xyxy[0], self.box_xyxy[3] - self.box_xyxy[1]))

    def to_roi(self) -> Roi:
        """MediaPipe's ``FaceDetectionFrontDetectionToRoi``: centred on the box, side 1.5 x its long side,
        rotated so that the eye 0 → eye 1 vector is horizontal."""
        return rect_roi(self.box_xyxy, self.keypoints_xy[0], self.keypoints_xy[1], DETECTION_ROI_SCALE)


def rect_roi(box_xyxy: np.ndarray, start_xy: np.ndarray, end_xy: np.ndarray, scale: float,
             target_angle: float = 0.0) -> Roi:
    """MediaPipe's ``DetectionsToRectsCalculator`` + ``RectTransformationCalculator(square_long)``.

    The centre is the centre of ``box_xyxy`` (4,), the side ``scale`` x its
    longer side, and the rotation turns the ``start_xy`` → ``end_xy`` (2,)
    vector to ``target_angle`` (0 = along +x).  Unlike
    :meth:`Roi.from_alignment_points`, the size comes from the box, not from
    the distance between the two points.
    """
    box = np.asarray(box_xyxy, dtype=np.float64)
    dx, dy = np.asarray(end_xy, dtype=np.float64) - np.asarray(start_xy, dtype=np.float64)
    size = scale * max(box[2] - box[0], box[3] - box[1], 1e-6)
    # atan2(-dy, dx): the vector's angle with y flipped up, as DetectionsToRectsCalculator::ComputeRotation.
    rotation = normalize_radians(target_angle - math.atan2(-dy, dx)) if (dx or dy) else 0.0
    return Roi(center_xy=0.5 * (box[:2] + box[2:]), size=size, rotation=rotation)


def plan_face_windows(width: int, height: int, min_face_px: float | None,
                      detectable_frac: float = FULL_DETECTABLE_FRAC, overlap: float = TILE_OVERLAP,
                      max_tiles: int = MAX_TILES) -> list[Roi]:
    """Full-range detector windows for a ``width`` x ``height`` frame: the letterboxed frame, then tiles.

    A face of ``min_face_px`` fills ``min_face_px / max(width, height)`` of
    the letterboxed frame.  When that is below ``detectable_frac``, square
    tiles of side ``min_face_px / detectable_frac`` (at most the frame's
    short side) are laid over the frame, neighbours sharing at least
    ``overlap`` of a tile; when that takes more than ``max_tiles`` tiles, the
    tiles grow (and the smallest face found with them) until it does not.
    ``min_face_px=None`` asks for no tiles.  With the defaults and 24-px
    faces: 176x144 needs no tiles, 640x480 needs 3 x 2, 1280x720 6 x 3 (300-px
    tiles); 1920x1080 is capped at 6 x 3 tiles of 439 px (35-px faces).
    """
    windows = [Roi.from_frame(width, height)]
    if min_face_px is None:
        return windows
    if not min_face_px > 0:
        raise ValueError(f"min_face_px must be positive (pixels) or None, got {min_face_px}")
    if max_tiles < 1:
        raise ValueError(f"max_tiles must be at least 1, got {max_tiles}")
    if min_face_px >= detectable_frac * max(width, height):
        return windows

    def centres(extent: float, tile: float) -> np.ndarray:
        step = tile * (1.0 - overlap)
        count = 1 + max(0, math.ceil((extent - tile) / step - 1e-9))
        return np.linspace(tile / 2.0, extent - tile / 2.0, count)

    tile = min(min_face_px / detectable_frac, float(min(width, height)))
    while len(centres(width, tile)) * len(centres(height, tile)) > max_tiles and tile < min(width, height):
        tile = min(tile * 1.1, float(min(width, height)))
    for cy in centres(height, tile):
        for cx in centres(width, tile):
            windows.append(Roi(center_xy=np.array([cx, cy]), size=tile, rotation=0.0))
    return windows


class _BlazeFace:
    """One BlazeFace model: preprocess → runner → postprocess for one square window."""

    def __init__(self, runner: Runner, options: SsdAnchorOptions, label: str):
        self.runner = runner
        self.options = options
        self.anchors = ssd_anchors(options)  # (A, 4)
        self.anchors.setflags(write=False)
        self.input_size = options.input_size[0]
        if len(runner.inputs) != 1:
            raise ModelError(f"{label} face detector must have 1 input, found {len(runner.inputs)}")
        (self._input,) = runner.inputs
        expected = (1, self.input_size, self.input_size, 3)
        if tuple(self._input.shape) != expected:
            raise ModelError(f"{label} face detector input must be {expected}, found {tuple(self._input.shape)}")
        self._boxes_name, self._scores_name = ssd_output_names(runner, len(self.anchors), NUM_KEYPOINTS,
                                                               f"{label} face detector")

    def preprocess(self, rgb: np.ndarray, window: Roi) -> np.ndarray:
        """Frame (H, W, 3) uint8 → (1, S, S, 3) float32 in [-1, 1]; outside the frame is black (-1)."""
        return ssd_input(rgb, window, self.input_size)

    def postprocess(self, outputs: dict[str, np.ndarray], window: Roi,
                    min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model outputs for one window → candidates above ``min_score`` in frame px:
        boxes (D, 4), scores (D,), keypoints (D, 6, 2)."""
        raw = np.asarray(outputs[self._boxes_name]).reshape(len(self.anchors), -1)
        logits = np.clip(np.asarray(outputs[self._scores_name], dtype=np.float64).reshape(-1), -SCORE_CLIP,
                         SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = scores >= min_score
        n = float(self.input_size)
        boxes, kps = decode_boxes(raw[keep], self.anchors[keep], (n, n, n, n), NUM_KEYPOINTS)
        valid = (np.all(np.isfinite(boxes), axis=1) & np.all(np.isfinite(kps), axis=(1, 2))
                 & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
        boxes, kps, scores = boxes[valid], kps[valid], scores[keep][valid]
        # Normalised window coords → window px → frame px (windows are axis-aligned, so boxes stay boxes).
        corners = window.crop_to_image(boxes.reshape(-1, 2, 2).astype(np.float64) * n, self.input_size)
        return corners.reshape(-1, 4), scores, window.crop_to_image(kps.astype(np.float64) * n, self.input_size)

    def detect(self, rgb: np.ndarray, window: Roi, min_score: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates (before NMS) in one window: boxes (D, 4), scores (D,), keypoints (D, 6, 2)."""
        outputs = self.runner({self._input.name: self.preprocess(rgb, window)})
        return self.postprocess(outputs, window, min_score)


class FaceDetector:
    """Finds faces in an RGB frame; a pure function of the frame once built.

    ``mode``: "short" (short-range model only, as MediaPipe's face mesh),
    "full" (full-range model only) or "auto" (both, merged; see the module
    docstring).  ``min_face_px``: the smallest face, in frame pixels, that
    the full-range model should find; tiles are added when the letterboxed
    frame is too coarse for it (None: never tile).  A runner may be None
    when ``mode`` does not use it.
    """

    def __init__(self, short_runner: Runner | None, full_runner: Runner | None, mode: str = "auto",
                 min_score: float = 0.5, nms_iou: float = 0.3, min_face_px: float | None = 24.0):
        if mode not in DETECTOR_MODES:
            raise ValueError(f"mode must be one of {DETECTOR_MODES}, got {mode!r}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"nms_iou must be in (0, 1], got {nms_iou}")
        if min_face_px is not None and not min_face_px > 0:
            raise ValueError(f"min_face_px must be positive (pixels) or None, got {min_face_px}")
        if mode in ("auto", "short") and short_runner is None:
            raise ModelError(f"mode {mode!r} needs the short-range face detector, got short_runner=None")
        if mode in ("auto", "full") and full_runner is None:
            raise ModelError(f"mode {mode!r} needs the full-range face detector, got full_runner=None")
        self.mode = mode
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.min_face_px = None if min_face_px is None else float(min_face_px)
        self.short = _BlazeFace(short_runner, FACE_SHORT_RANGE_ANCHORS, "short-range") \
            if mode in ("auto", "short") else None
        self.full = _BlazeFace(full_runner, FACE_FULL_RANGE_ANCHORS, "full-range") \
            if mode in ("auto", "full") else None

    def windows(self, width: int, height: int) -> list[tuple[str, str, Roi]]:
        """(model, kind, window) triples run on a ``width`` x ``height`` frame.

        Kinds: "frame" (the letterboxed frame), "zoom" (the frame shrunk into a
        window twice its long side, for close-ups), "tile" (full range only).
        """
        frame = Roi.from_frame(width, height)
        out = []
        if self.short is not None:
            out += [("short", "frame", frame), ("short", "zoom", frame.with_scale(ZOOM_OUT))]
        if self.full is not None:
            tiles = plan_face_windows(width, height, self.min_face_px)
            out += [("full", "frame", frame)] + [("full", "tile", w) for w in tiles[1:]]
        return out

    def _detect_models(self, rgb: np.ndarray, models: tuple[str, ...]) -> dict[str, tuple]:
        """Each of ``models``' faces over all its windows, merged by weighted NMS, in frame px: boxes (N, 4),
        scores (N,), keypoints (N, 6, 2).  The windows run on all cores at once: each call of these small
        models runs on one core (see ``runners.onnx.SINGLE_THREAD_BELOW_BYTES``), and a frame's windows are
        2 to 12 calls, 60 ms on one core for 640x480."""
        height, width = rgb.shape[:2]
        jobs = [(name, kind, window) for name, kind, window in self.windows(width, height) if name in models]

        def run(job: tuple[str, str, Roi]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            name, kind, window = job
            net = self.short if name == "short" else self.full
            return net.detect(rgb, window, max(self.min_score, TILE_MIN_SCORE) if kind == "tile" else self.min_score)

        threads = min(len(jobs), os.cpu_count() or 1)
        if threads > 1:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rigcast-face-detector") as pool:
                candidates = list(pool.map(run, jobs))
        else:
            candidates = [run(job) for job in jobs]
        empty = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, NUM_KEYPOINTS, 2)))
        parts = {name: ([empty], [empty]) for name in models}  # whole-frame windows, tiles
        for (name, kind, window), (boxes, scores, kps) in zip(jobs, candidates):
            size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            if kind == "tile":  # tiles answer only for faces that fit them; bigger ones are cut off
                keep = size <= MAX_TILE_FACE_FRAC * window.size
            elif kind == "zoom":  # the zoomed-out window answers only for close-ups the frame window cannot see
                keep = size >= ZOOM_MIN_FACE_FRAC * window.size
            else:
                keep = np.ones(len(size), dtype=bool)
            parts[name][kind == "tile"].append((boxes[keep], scores[keep], kps[keep].reshape(-1, NUM_KEYPOINTS, 2)))
        found = {}
        for name, (whole, tiled) in parts.items():
            whole = weighted_nms(*(np.concatenate(p) for p in zip(*whole)), self.nms_iou)
            tiled = weighted_nms(*(np.concatenate(p) for p in zip(*tiled)), self.nms_iou)
            # A face cut by a tile's edge shows up in that tile as a small face inside the big one.
            part = contained_in_larger(tiled[0], whole[0])
            found[name] = weighted_nms(*(np.concatenate([a, b[~part]]) for a, b in zip(whole, tiled)), self.nms_iou)
        return found

    def detect_in(self, rgb: np.ndarray, window: Roi) -> list[FaceDetection]:
        """Faces in one axis-aligned square ``window`` of ``rgb`` (H, W, 3) uint8, best score first, in frame px.

        One call of the short-range model (the full-range one in ``mode="full"``): MediaPipe Holistic's
        ``FaceDetectionShortRangeByRoi``, which looks for a face in a window about three times the size of
        the head a body's keypoints outline.  ``window.rotation`` must be 0 (boxes stay boxes)."""
        if window.rotation != 0.0:
            raise ValueError(f"detect_in takes an axis-aligned window, got rotation {window.rotation}")
        net = self.short if self.short is not None else self.full
        boxes, scores, kps = weighted_nms(*net.detect(_check_rgb(rgb), window, self.min_score), self.nms_iou)
        return [FaceDetection(box_xyxy=b, score=min(1.0, float(s)), keypoints_xy=k)
                for b, s, k in zip(boxes, scores, kps)]

    def __call__(self, rgb: np.ndarray) -> list[FaceDetection]:
        """Faces in ``rgb`` (H, W, 3) uint8, best score first."""
        models = tuple(name for name, net in (("short", self.short), ("full", self.full)) if net is not None)
        found = self._detect_models(_check_rgb(rgb), models)
        if len(found) == 2:
            short, full = found["short"], found["full"]
            echo = short_range_echoes(short[0], full[0])
            boxes, scores, kps = (np.concatenate([a[~echo], b]) for a, b in zip(short, full))
            boxes, scores, kps = weighted_nms(boxes, scores, kps, self.nms_iou)
        else:
            (boxes, scores, kps), = found.values()
        return [FaceDetection(box_xyxy=b, score=min(1.0, float(s)), keypoints_xy=k)
                for b, s, k in zip(boxes, scores, kps)]


def contained_in_larger(boxes: np.ndarray, others: np.ndarray, min_inside: float = 0.5,
                        ratio: tuple[float, float] = (1.5, 4.0)) -> np.ndarray:
    """(N,) bool: which ``boxes`` (N, 4) lie at least ``min_inside`` of their area inside one of ``others``
    (M, 4) whose longer side is ``ratio[0]`` to ``ratio[1]`` times theirs: a part of that face, not a
    small face beside a much larger (possibly false) detection."""
    if len(boxes) == 0 or len(others) == 0:
        return np.zeros(len(boxes), dtype=bool)
    ix = np.clip(np.minimum(boxes[:, None, 2], others[None, :, 2]) - np.maximum(boxes[:, None, 0], others[None, :, 0]),
                 0.0, None)
    iy = np.clip(np.minimum(boxes[:, None, 3], others[None, :, 3]) - np.maximum(boxes[:, None, 1], others[None, :, 1]),
                 0.0, None)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-9)
    size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    other_size = np.maximum(others[:, 2] - others[:, 0], others[:, 3] - others[:, 1])
    times = other_size[None, :] / np.maximum(size[:, None], 1e-9)
    return np.any((ix * iy / area[:, None] >= min_inside) & (times >= ratio[0]) & (times <= ratio[1]), axis=1)


def short_range_echoes(short_boxes: np.ndarray, full_boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: which short-range boxes (N, 4) are echoes of a smaller face the full-range model found.

    Below about 1/8 of its input the short-range model still fires on a face
    but with a box 2-3x too large, centred on the head (measured with the
    astronaut photo shrunk on a backdrop), which no NMS merges with the
    full-range box of the same face.  A short-range box is such an echo when
    a full-range box (M, 4) has its centre inside it and is smaller than
    ``ECHO_SIZE_RATIO`` of it; faces do not nest, so nothing real is lost.
    """
    if len(short_boxes) == 0 or len(full_boxes) == 0:
        return np.zeros(len(short_boxes), dtype=bool)
    centres = 0.5 * (full_boxes[:, :2] + full_boxes[:, 2:])  # (M, 2)
    full_size = np.maximum(full_boxes[:, 2] - full_boxes[:, 0], full_boxes[:, 3] - full_boxes[:, 1])
    short_size = np.maximum(short_boxes[:, 2] - short_boxes[:, 0], short_boxes[:, 3] - short_boxes[:, 1])
    inside = np.all((centres[None] >= short_boxes[:, None, :2]) & (centres[None] <= short_boxes[:, None, 2:]), axis=2)
    smaller = full_size[None, :] < ECHO_SIZE_RATIO * short_size[:, None]
    return np.any(inside & smaller, axis=1)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if min(rgb.shape[:2]) < 1:
        raise InputError(f"the frame is empty: {rgb.shape}")
    return np.ascontiguousarray(rgb)
