"""BlazePose person detector: frame → people, each with a box, a score and four alignment keypoints.

Rebuilt from MediaPipe's ``pose_detection_cpu.pbtxt`` around the ONNX model:
letterbox to 224x224 in [-1, 1], decode 2254 SSD anchors, sigmoid scores
(raw logits clipped to ±100), keep scores >= ``min_score``, then MediaPipe's
*weighted* non-maximum suppression.

The detector's box is centred on the face and has a fixed side of 0.2 of the
detector window (the model's size regressors are constant); the person's
extent is in the keypoints: the hip centre, a point on the circle that
circumscribes the whole body, the shoulder centre and a point on the circle
around the upper body.

Small people.  The detector sees the whole frame at 224 px, so people much
smaller than the frame are missed (below about 0.3 of the frame's long side).
When ``min_person_frac`` asks for smaller people, the detector also runs on
levels of overlapping square tiles (:func:`plan_windows`); each window goes
through MediaPipe's weighted NMS, tiles keep only confident detections of a
size they are meant for, then :func:`merge_across_windows` merges all in
frame pixels.  Each window costs one detector run (12-40 ms on this 2-core
machine, depending on load): 1280x720 needs 1 run for people >= 0.54 of the
frame height, 4 for 1/3, 16 for 1/6.  With ``min_person_frac=1`` the detector
is exactly MediaPipe's.

Legend: N people (after NMS), D candidate detections, A anchors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelError
from ..runners import Runner
from .anchors import POSE_DETECTOR_ANCHORS, decode_boxes, ssd_anchors, ssd_input, ssd_output_names, validate_detection
from .roi import Roi

NUM_KEYPOINTS = 4
SCORE_CLIP = 100.0  # TensorsToDetectionsCalculator's score_clipping_thresh

# Tiling, measured with the astronaut photo (an upper-body framing) pasted at
# 6 positions on a 1024 px backdrop and detected on the whole frame: found at
# every position from 0.3 of the window side up, at 1 of 6 at 0.2-0.25, never
# at 0.15.  (Full-body people show a smaller head for the same height, so for
# them the figure is optimistic.)
DETECTABLE_FRAC = 0.3
# With 25% overlap, the head and shoulders of a person up to about half a
# tile tall lie wholly inside some tile.
TILE_OVERLAP = 0.25
TILE_REACH = 0.55
SNAP_TO_SHORT_SIDE = 0.7
# A tile detection whose body circle is much larger than the tile is either a person the tile cuts (a
# coarser window answers for them) or a false alarm on texture (seen on photos without people: bodies
# 2-3 tiles across).  People a tile is meant for measured 0.4-1.0 tile (upper-body framings inflate it).
MAX_TILE_BODY_FRAC = 1.5
# Every extra window is another chance of a false alarm.  On 20 person-free scikit-image photos at
# 1280x720, 640x480 and 720x1280, the full frame raised 4 false alarms (0.51-0.66) and the tiles 17 more,
# 12 of them below 0.6; people the tiles were meant for scored 0.69-0.95.
TILE_MIN_SCORE = 0.6
COVER_TOLERANCE = 0.05  # people this much smaller than the request still count as covered


@dataclass(frozen=True, eq=False)  # arrays: compare fields explicitly
class PersonDetection:
    """One detected person, in image pixels.

    ``box_xyxy`` (4,) is the detector's box: face-centred, of a fixed 0.2 of
    the detector window's side (so it says where, not how big).
    ``keypoints_xy`` (4, 2) are the hip centre, full-body scale point,
    shoulder centre and upper-body scale point; :meth:`body_box_xyxy` bounds
    the whole body.
    """

    box_xyxy: np.ndarray
    score: float
    keypoints_xy: np.ndarray

    aligned = True  # to_roi() is rotated with the body, as MediaPipe's detector gives it

    def __post_init__(self) -> None:
        validate_detection(self, NUM_KEYPOINTS)

    def followed_by(self, box_xyxy: np.ndarray) -> bool:
        """Whether this is a person already followed, whose landmark box is ``box_xyxy`` (4,): the hip or
        shoulder centre lies in it.  (The detector's own box frames the face at a fixed fraction of its
        window, so box overlap says little about whether two results are one person.)"""
        x0, y0, x1, y1 = box_xyxy
        pts = self.keypoints_xy[[0, 2]]
        return bool(np.any((pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)))

    @property
    def body_diameter(self) -> float:
        """Diameter in px of the circle around the whole body (twice hip centre → scale point)."""
        return 2.0 * float(np.hypot(*(self.keypoints_xy[1] - self.keypoints_xy[0])))

    def body_box_xyxy(self) -> np.ndarray:
        """(4,) bound of the full-body circle: centre the hip centre, radius hip → full-body scale point."""
        radius = 0.5 * self.body_diameter
        return np.concatenate([self.keypoints_xy[0] - radius, self.keypoints_xy[0] + radius])

    def to_roi(self) -> Roi:
        """MediaPipe's ``pose_detection_to_roi``: centre on the hips, side 2 x 1.25 x the hip→scale-point
        distance, rotated so that this vector points up (90°)."""
        return Roi.from_alignment_points(self.keypoints_xy[0], self.keypoints_xy[1], target_angle=math.pi / 2,
                                         scale=1.25)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with boxes (D, 4), all ``[x0, y0, x1, y1]``; 0 where the union is empty."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0.0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0.0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression.

    Takes boxes (D, 4) xyxy, scores (D,) and keypoints (D, K, 2).  Repeatedly
    takes the best remaining detection, gathers every remaining one whose IoU
    with it exceeds ``iou_threshold`` (itself included), and replaces the
    group by the score-weighted mean of their box corners and keypoints; the
    group keeps the best score.  Returns boxes (N, 4), scores (N,) and
    keypoints (N, K, 2), best first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape[:1] != scores.shape or boxes.shape[0] != scores.shape[0]:
        raise ValueError(f"boxes (D, 4), scores (D,) and keypoints (D, K, 2) must agree on D, got "
                         f"{boxes.shape}, {scores.shape}, {keypoints.shape}")
    order = np.argsort(-scores, kind="stable")
    remaining = order
    out_boxes, out_scores, out_kps = [], [], []
    while remaining.size:
        top = remaining[0]
        group = box_iou(boxes[top], boxes[remaining]) > iou_threshold
        group[0] = True  # a degenerate (zero-area) box still stands for itself
        members = remaining[group]
        weights = scores[members] / scores[members].sum()
        out_boxes.append(weights @ boxes[members])
        out_kps.append(np.tensordot(weights, keypoints[members], axes=1))
        out_scores.append(scores[top])
        remaining = remaining[~group]
    k = keypoints.shape[1:] if keypoints.ndim == 3 else (0, 2)
    if not out_scores:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0,) + tuple(k))
    return np.stack(out_boxes), np.asarray(out_scores), np.stack(out_kps)


def plan_windows(width: int, height: int, min_person_frac: float, detectable_frac: float = DETECTABLE_FRAC,
                 tile_reach: float = TILE_REACH, overlap: float = TILE_OVERLAP) -> list[Roi]:
    """Detector windows for a ``width`` x ``height`` frame: the letterboxed frame, then levels of square tiles.

    A window finds people from ``detectable_frac`` of its side up; a tile,
    which may cut a large person, answers for people up to ``tile_reach`` of
    its side.  Starting from the full frame (people down to
    ``detectable_frac * max(width, height)``), each tile level is the largest
    that still reaches up to the previous level's smallest person, but no
    larger than the frame's short side (a side this close to the short side
    is snapped to it: one row of tiles, no vertical cuts), until people of
    ``min_person_frac * height`` are covered.  Tiles of a level overlap by at
    least ``overlap`` of their side.

    Each window is one detector run (~36 ms on 2 CPU cores).  With the
    defaults: 1280x720 → 1 (min_person_frac >= 0.54), 4 (1/3), 10 (1/4),
    12 (1/5), 16 (1/6); 640x480 → 1 (0.4), 3 (1/3), 12 (1/6); a 512x512
    frame → 1 (1/3), 5 (1/5), 10 (1/6).
    """
    if not 0.0 < min_person_frac <= 1.0:
        raise ValueError(f"min_person_frac must be in (0, 1], got {min_person_frac}")
    windows = [Roi.from_frame(width, height)]
    short = float(min(width, height))
    smallest = min_person_frac * height  # px
    reached = detectable_frac * max(width, height)  # smallest person the windows so far find
    while reached > smallest * (1.0 + COVER_TOLERANCE):
        tile = min(max(smallest / detectable_frac, reached / tile_reach), short)
        if tile >= SNAP_TO_SHORT_SIDE * short and detectable_frac * short < reached:
            tile = short
        reached = detectable_frac * tile
        step = tile * (1.0 - overlap)

        def centres(extent: float) -> np.ndarray:
            count = 1 + max(0, math.ceil((extent - tile) / step - 1e-9))
            return np.linspace(tile / 2.0, extent - tile / 2.0, count)

        windows += [Roi(center_xy=np.array([cx, cy]), size=tile, rotation=0.0)
                    for cy in centres(height) for cx in centres(width)]
    return windows


def merge_across_windows(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray, window_sizes: np.ndarray,
                         min_containment: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge per-window detections (each window already through :func:`weighted_nms`) into one list.

    The detector's box is a fixed 0.2 of its window's side, centred on the
    face, so boxes from windows of different sizes cannot be compared by IoU.
    Coarsest window first, best score first within a window size: the
    detection takes every remaining one whose box intersection covers more
    than ``min_containment`` of the smaller box.  Only the group's members
    from that coarsest window are averaged (score-weighted, as weighted NMS
    does), since a finer tile may have cut the person; the group keeps their
    best score.  Takes boxes (D, 4), scores (D,), keypoints (D, K, 2),
    window_sizes (D,); returns boxes (N, 4), scores (N,), keypoints (N, K, 2),
    best score first.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    window_sizes = np.asarray(window_sizes, dtype=np.float64)
    remaining = np.lexsort((-scores, -window_sizes))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    out_boxes, out_scores, out_kps = [], [], []
    while remaining.size:
        top = remaining[0]
        rest = boxes[remaining]
        ix = np.clip(np.minimum(boxes[top, 2], rest[:, 2]) - np.maximum(boxes[top, 0], rest[:, 0]), 0.0, None)
        iy = np.clip(np.minimum(boxes[top, 3], rest[:, 3]) - np.maximum(boxes[top, 1], rest[:, 1]), 0.0, None)
        smaller = np.minimum(areas[top], areas[remaining])
        group = ix * iy > min_containment * np.where(smaller > 0, smaller, np.inf)
        group[0] = True
        members = remaining[group]
        members = members[window_sizes[members] == window_sizes[top]]
        weights = scores[members] / scores[members].sum()
        out_boxes.append(weights @ boxes[members])
        out_kps.append(np.tensordot(weights, keypoints[members], axes=1))
        out_scores.append(scores[members].max())
        remaining = remaining[~group]
    if not out_scores:
        return np.zeros((0, 4)), np.zeros(0), np.zeros((0,) + keypoints.shape[1:])
    order = np.argsort(-np.asarray(out_scores), kind="stable")
    return np.stack(out_boxes)[order], np.asarray(out_scores)[order], np.stack(out_kps)[order]


class PoseDetector:
    """Finds people in an RGB frame; a pure function of the frame once built.

    ``min_score`` and ``nms_iou`` are MediaPipe's (min_detection_confidence
    and the NMS overlap).  ``min_person_frac`` is the height, as a fraction
    of the frame height, of the smallest person to find; it decides the
    tiles (1.0: the full frame only, exactly MediaPipe).  A tile detection
    must also score ``tile_min_score`` and have a body circle at most 1.5
    tiles across.  ``enough_people``: when the full frame alone finds this
    many, the tiles are skipped and the result is MediaPipe's detector's
    exactly (None: tiles always run).  ``--max-people 1`` sets 1: on a
    640x480 frame the tiles are 11 of its 12 runs (about 0.15 s of CPU each
    time it looks for a person it is not following), and MediaPipe's
    single-person pipeline takes the full frame's person anyway.
    """

    def __init__(self, runner: Runner, min_score: float = 0.5, nms_iou: float = 0.3, min_person_frac: float = 1 / 6,
                 tile_min_score: float = TILE_MIN_SCORE, enough_people: int | None = None):
        for name, value in (("min_score", min_score), ("tile_min_score", tile_min_score)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 < min_person_frac <= 1.0:
            raise ValueError(f"min_person_frac must be in (0, 1], got {min_person_frac}")
        if enough_people is not None and enough_people < 1:
            raise ValueError(f"enough_people must be at least 1 (or None), got {enough_people}")
        self.enough_people = enough_people
        self.runner = runner
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.min_person_frac = float(min_person_frac)
        self.tile_min_score = max(float(tile_min_score), self.min_score)
        self.options = POSE_DETECTOR_ANCHORS
        self.anchors = ssd_anchors(self.options)  # (A, 4)
        self.anchors.setflags(write=False)
        self.input_size = self.options.input_size[0]
        (self._input,) = runner.inputs
        expected = (1, self.input_size, self.input_size, 3)
        if tuple(self._input.shape) != expected:
            raise ModelError(f"pose detector input must be {expected}, got {self._input.shape}")
        self._boxes_name, self._scores_name = ssd_output_names(runner, len(self.anchors), NUM_KEYPOINTS,
                                                               "pose detector")

    # -- stages --------------------------------------------------------------

    def preprocess(self, rgb: np.ndarray, window: Roi) -> np.ndarray:
        """Frame (H, W, 3) uint8 → (1, 224, 224, 3) float32 in [-1, 1]; outside the frame is black (-1)."""
        return ssd_input(rgb, window, self.input_size)

    def postprocess(self, outputs: dict[str, np.ndarray], window: Roi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Model outputs for one window → candidates above ``min_score`` in frame px:
        boxes (D, 4), scores (D,), keypoints (D, 4, 2)."""
        raw = outputs[self._boxes_name].reshape(len(self.anchors), -1)
        logits = np.clip(outputs[self._scores_name].reshape(-1), -SCORE_CLIP, SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        keep = scores >= self.min_score
        n = float(self.input_size)
        boxes, kps = decode_boxes(raw[keep], self.anchors[keep], (n, n, n, n), NUM_KEYPOINTS)
        valid = np.all(np.isfinite(boxes), axis=1) & (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])
        boxes, kps, scores = boxes[valid], kps[valid], scores[keep][valid]
        # Normalised window coords → window px → frame px (the window is axis-aligned, so boxes stay boxes).
        corners = window.crop_to_image(boxes.reshape(-1, 2, 2) * n, self.input_size)
        return corners.reshape(-1, 4), scores, window.crop_to_image(kps * n, self.input_size)

    def detect_window(self, rgb: np.ndarray, window: Roi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates (before NMS) from one detector window: boxes (D, 4), scores (D,), keypoints (D, 4, 2)."""
        outputs = self.runner({self._input.name: self.preprocess(rgb, window)})
        return self.postprocess(outputs, window)

    def windows(self, width: int, height: int) -> list[Roi]:
        """The detector windows this detector runs on a ``width`` x ``height`` frame (full frame first)."""
        return plan_windows(width, height, self.min_person_frac)

    def __call__(self, rgb: np.ndarray) -> list[PersonDetection]:
        """People in ``rgb`` (H, W, 3) uint8, best score first.

        On the full frame alone this is MediaPipe's detector exactly; tiles
        (see :func:`plan_windows`) add people too small for it.
        """
        rgb = _check_rgb(rgb)
        height, width = rgb.shape[:2]
        parts = []
        for i, window in enumerate(self.windows(width, height)):
            boxes, scores, kps = weighted_nms(*self.detect_window(rgb, window), self.nms_iou)
            if i > 0:  # a tile: only confident people of a size it is meant for
                keep = ((2.0 * np.hypot(*(kps[:, 1] - kps[:, 0]).T) <= MAX_TILE_BODY_FRAC * window.size)
                        & (scores >= self.tile_min_score))
                boxes, scores, kps = boxes[keep], scores[keep], kps[keep]
            parts.append((boxes, scores, kps, np.full(len(scores), window.size)))
            if i == 0 and self.enough_people is not None and len(scores) >= self.enough_people:
                break  # the full frame found all the people wanted: MediaPipe's detector exactly, no tiles
        if len(parts) == 1:
            boxes, scores, kps, _ = parts[0]
        else:
            boxes, scores, kps, sizes = (np.concatenate(p) for p in zip(*parts))
            boxes, scores, kps = merge_across_windows(boxes, scores, kps, sizes)
        return [PersonDetection(box_xyxy=b, score=min(1.0, float(s)), keypoints_xy=k)
                for b, s, k in zip(boxes, scores, kps)]


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if min(rgb.shape[:2]) < 1:
        raise InputError(f"the frame is empty: {rgb.shape}")
    return np.ascontiguousarray(rgb)
