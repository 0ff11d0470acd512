"""BlazePose landmark model: frame + ROI → 33 landmarks in image px, world landmarks in metres.

Rebuilt from MediaPipe's ``pose_landmark_by_roi_cpu.pbtxt`` and
``tensors_to_pose_landmarks_and_segmentation.pbtxt`` around the ONNX model:

1. crop the rotated ROI to N x N (N = 256 for lite, full and heavy) with
   bilinear sampling and edge replication, values scaled to [0, 1];
2. run; the outputs are 39 landmarks ``(x, y, z, visibility, presence)`` in
   crop px (33 body points and 6 auxiliary ones), the pose presence flag (a
   probability already; MediaPipe thresholds it as is), a segmentation mask,
   a 64 x 64 x 39 heatmap and 39 world landmarks in metres;
3. sigmoid on visibility and presence;
4. refine x, y from the heatmap (``RefineLandmarksFromHeatmapCalculator``, a
   9 x 9 window: see ``HEATMAP_KERNEL``);
5. project through the ROI back to image px; ``z`` scales like x;
6. rotate the world landmarks' x, y by the ROI rotation
   (``WorldLandmarkProjectionCalculator``), undoing the crop's rotation.

Legend: J = 33 body landmarks, K = 39 model landmarks, h x w heatmap cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelError
from ..runners import Runner
from .roi import Roi

NUM_BODY = 33
NUM_MODEL_LANDMARKS = 39
NUM_AUX = NUM_MODEL_LANDMARKS - NUM_BODY
# tensors_to_pose_landmarks_and_segmentation.pbtxt asks for kernel_size 7, but the reference, mediapipe
# 0.10.21's own pose graph, behaves as the calculator's proto default, 9: against it, a 7 window leaves
# 3-6 px errors on elbows and wrists and a 1 px error in the tracking ROI (whose centre is auxiliary
# landmark 33); 9 brings the worst joint to 0.2-1.3 px and the tracking ROI to 0.03 px.
HEATMAP_KERNEL = 9
HEATMAP_MIN_CONFIDENCE = 0.5  # RefineLandmarksFromHeatmapCalculatorOptions default


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, dtype=np.float64), -80.0, 80.0)))


@dataclass(frozen=True, eq=False)  # arrays: compare fields explicitly
class PoseLandmarks:
    """One person's landmarks from one ROI.

    ``xy`` (J, 2) image px; ``z`` (J,) depth relative to the hips in the
    same px scale (smaller is nearer); ``visibility`` and ``presence`` (J,)
    in [0, 1]; ``world_xyz`` (J, 3) metres, hip-centred, y down, camera
    rotation about the view axis undone; ``score`` the pose presence
    probability; ``aux_xy`` (6, 2) the auxiliary points 33..38 in px (33 and
    34 steer the next ROI); ``roi`` the ROI they came from; ``image_wh`` the
    (width, height) of the frame, when known.
    """

    xy: np.ndarray
    z: np.ndarray
    visibility: np.ndarray
    presence: np.ndarray
    world_xyz: np.ndarray
    score: float
    aux_xy: np.ndarray
    roi: Roi
    image_wh: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        shapes = {"xy": (NUM_BODY, 2), "z": (NUM_BODY,), "visibility": (NUM_BODY,), "presence": (NUM_BODY,),
                  "world_xyz": (NUM_BODY, 3), "aux_xy": (NUM_AUX, 2)}
        for name, shape in shapes.items():
            value = np.array(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"{name} must be {shape}, got {value.shape}")
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        for name in ("visibility", "presence"):
            value = getattr(self, name)
            if np.any((value < 0) | (value > 1)):
                raise ValueError(f"{name} must lie in [0, 1], got values in [{value.min()}, {value.max()}]")
        if not isinstance(self.roi, Roi):
            raise ValueError(f"roi must be a Roi, got {type(self.roi).__name__}")
        object.__setattr__(self, "score", float(self.score))
        if self.image_wh is not None:
            wh = tuple(int(v) for v in self.image_wh)
            if len(wh) != 2 or min(wh) < 1:
                raise ValueError(f"image_wh must be (width, height) >= 1, got {self.image_wh!r}")
            object.__setattr__(self, "image_wh", wh)

    def next_roi(self) -> Roi:
        """MediaPipe's ``pose_landmarks_to_roi`` for tracking: auxiliary points 33 → 34, 90°, scale 1.25."""
        return Roi.from_alignment_points(self.aux_xy[0], self.aux_xy[1], target_angle=math.pi / 2, scale=1.25)

    def box_xyxy(self, min_visibility: float = 0.5) -> np.ndarray:
        """(4,) tight bound ``[x0, y0, x1, y1]`` of the visible landmarks: visibility >= ``min_visibility``
        and, when ``image_wh`` is known, inside the frame (the model still rates some off-frame joints
        visible, and they flicker across the threshold).  Falls back to all landmarks, clipped to the frame."""
        visible = self.visibility >= min_visibility
        if self.image_wh is not None:
            visible &= np.all((self.xy >= 0) & (self.xy <= self.image_wh), axis=1)
        points = self.xy[visible] if visible.any() else self.xy
        box = np.concatenate([points.min(axis=0), points.max(axis=0)])
        if self.image_wh is not None:
            box = np.clip(box, 0, np.tile(self.image_wh, 2))
        return box


def refine_landmarks_from_heatmap(xy: np.ndarray, heatmap: np.ndarray, kernel_size: int = HEATMAP_KERNEL,
                                  min_confidence: float = HEATMAP_MIN_CONFIDENCE) -> np.ndarray:
    """MediaPipe's ``RefineLandmarksFromHeatmapCalculator`` on normalised crop coords.

    ``xy`` (K, 2) in [0, 1] of the crop, ``heatmap`` (h, w, K) logits.  For
    each landmark, the cell it falls in (``int(x * w)``, truncated as in
    C++) centres a ``kernel_size`` window, clipped to the map; with
    ``c = sigmoid(heatmap)`` over the window, the landmark moves to
    ``(sum(c * col) / sum(c) / w, sum(c * row) / sum(c) / h)`` if the
    window's largest ``c`` reaches ``min_confidence``.  As in MediaPipe, the
    cell index, not the cell centre, is used, and landmarks outside the map
    are left alone.  Returns (K, 2).
    """
    xy = np.asarray(xy, dtype=np.float64)
    heatmap = np.asarray(heatmap)
    if heatmap.ndim == 4 and heatmap.shape[0] == 1:
        heatmap = heatmap[0]
    if heatmap.ndim != 3 or xy.shape != (heatmap.shape[2], 2):
        raise ValueError(f"heatmap must be (h, w, K) and xy (K, 2), got {heatmap.shape} and {xy.shape}")
    rows_n, cols_n, k = heatmap.shape
    finite = np.all(np.isfinite(xy), axis=1)
    safe = np.where(finite[:, None], xy, -1.0)
    col = np.trunc(safe[:, 0] * cols_n).astype(np.int64)
    row = np.trunc(safe[:, 1] * rows_n).astype(np.int64)
    inside = finite & (col >= 0) & (col < cols_n) & (row >= 0) & (row < rows_n)
    half = (kernel_size - 1) // 2
    offsets = np.arange(-half, half + 1)
    rows = row[:, None] + offsets  # (K, S)
    cols = col[:, None] + offsets  # (K, S)
    in_window = ((rows >= 0) & (rows < rows_n))[:, :, None] & ((cols >= 0) & (cols < cols_n))[:, None, :]
    logits = heatmap[np.clip(rows, 0, rows_n - 1)[:, :, None], np.clip(cols, 0, cols_n - 1)[:, None, :],
                     np.arange(k)[:, None, None]]  # (K, S, S)
    conf = np.where(in_window, _sigmoid(logits), 0.0)
    total = conf.sum(axis=(1, 2))
    refine = inside & (conf.max(axis=(1, 2)) >= min_confidence) & (total > 0)
    denom = np.where(refine, total, 1.0)
    new_x = (conf * cols[:, None, :]).sum(axis=(1, 2)) / cols_n / denom
    new_y = (conf * rows[:, :, None]).sum(axis=(1, 2)) / rows_n / denom
    return np.where(refine[:, None], np.stack([new_x, new_y], axis=1), xy)


class PoseLandmarker:
    """Landmarks of the person in an ROI; a pure function of (frame, ROI) once built."""

    def __init__(self, runner: Runner, refine_with_heatmap: bool = True, min_score: float = 0.5):
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        self.runner = runner
        self.refine_with_heatmap = bool(refine_with_heatmap)
        self.min_score = float(min_score)
        (self._input,) = runner.inputs
        shape = tuple(self._input.shape)
        if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or shape[1] != shape[2] or shape[1] is None:
            raise ModelError(f"pose landmark input must be (1, N, N, 3), got {shape}")
        self.input_size = int(shape[1])
        # Outputs by shape, not by converter-given names.
        found = {}
        for spec in runner.outputs:
            s = tuple(spec.shape)
            if s == (1, 5 * NUM_MODEL_LANDMARKS):
                found["landmarks"] = spec.name
            elif s == (1, 3 * NUM_MODEL_LANDMARKS):
                found["world"] = spec.name
            elif s == (1, 1):
                found["flag"] = spec.name
            elif len(s) == 4 and s[3] == NUM_MODEL_LANDMARKS:
                found["heatmap"] = spec.name
        missing = {"landmarks", "world", "flag", "heatmap"} - set(found)
        if missing:
            raise ModelError(f"pose landmark model lacks outputs {sorted(missing)} (expected (1, 195) landmarks, "
                             f"(1, 117) world, (1, 1) flag, (1, h, w, 39) heatmap); got "
                             f"{[s.shape for s in runner.outputs]}")
        self._names = found

    def preprocess(self, rgb: np.ndarray, roi: Roi) -> np.ndarray:
        """Frame (H, W, 3) uint8 → (1, N, N, 3) float32 in [0, 1], the ROI cropped with edge replication."""
        crop = roi.crop(rgb, self.input_size, border="replicate")
        return (crop.astype(np.float32) * np.float32(1.0 / 255.0))[None]

    def postprocess(self, outputs: dict[str, np.ndarray], roi: Roi, image_wh: tuple[int, int] | None = None,
                    min_score: float | None = None) -> PoseLandmarks | None:
        """Model outputs for ``roi`` → landmarks in image px, or None when the pose flag is below ``min_score``
        (this landmarker's own when None)."""
        score = float(np.asarray(outputs[self._names["flag"]]).reshape(-1)[0])
        if not score >= (self.min_score if min_score is None else min_score):  # also rejects NaN
            return None
        n = float(self.input_size)
        raw = np.asarray(outputs[self._names["landmarks"]], dtype=np.float64).reshape(NUM_MODEL_LANDMARKS, 5)
        xy_norm = raw[:, :2] / n
        if self.refine_with_heatmap:
            xy_norm = refine_landmarks_from_heatmap(xy_norm, outputs[self._names["heatmap"]])
        xy = roi.crop_to_image(xy_norm * n, self.input_size)
        z = raw[:NUM_BODY, 2] / n * roi.size
        world = np.asarray(outputs[self._names["world"]], dtype=np.float64).reshape(NUM_MODEL_LANDMARKS, 3)[:NUM_BODY]
        world_xy = world[:, :2] @ roi.rotation_matrix().T
        return PoseLandmarks(xy=xy[:NUM_BODY], z=z, visibility=_sigmoid(raw[:NUM_BODY, 3]),
                             presence=_sigmoid(raw[:NUM_BODY, 4]),
                             world_xyz=np.concatenate([world_xy, world[:, 2:]], axis=1),
                             score=min(max(score, 0.0), 1.0), aux_xy=xy[NUM_BODY:], roi=roi, image_wh=image_wh)

    def __call__(self, rgb: np.ndarray, roi: Roi, min_score: float | None = None) -> PoseLandmarks | None:
        """Landmarks of the person in ``roi`` of ``rgb`` (H, W, 3) uint8, or None if no pose is there (its
        presence flag below ``min_score``, this landmarker's own when None)."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        outputs = self.runner({self._input.name: self.preprocess(np.ascontiguousarray(rgb), roi)})
        return self.postprocess(outputs, roi, image_wh=(rgb.shape[1], rgb.shape[0]), min_score=min_score)
