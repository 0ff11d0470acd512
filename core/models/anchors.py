"""SSD anchors and box decoding, as MediaPipe's ``SsdAnchorsCalculator`` and ``TensorsToDetectionsCalculator``.

Legend: A anchors, K keypoints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SsdAnchorOptions:
    """The subset of ``SsdAnchorsCalculatorOptions`` that BlazePose-family detectors use."""

    input_size: tuple[int, int]  # (height, width) of the detector input
    strides: tuple[int, ...]
    min_scale: float
    max_scale: float
    anchor_offset: tuple[float, float] = (0.5, 0.5)  # (x, y) within a feature-map cell
    aspect_ratios: tuple[float, ...] = (1.0,)
    interpolated_scale_aspect_ratio: float = 1.0
    reduce_boxes_in_lowest_layer: bool = False
    fixed_anchor_size: bool = False

    def __post_init__(self) -> None:
        if len(self.input_size) != 2 or min(self.input_size) <= 0:
            raise ValueError(f"input_size must be (height, width) > 0, got {self.input_size}")
        if not self.strides or min(self.strides) <= 0:
            raise ValueError(f"strides must be positive, got {self.strides}")


# pose_detection_cpu.pbtxt: 224x224 input, 5 layers with strides 8, 16, 32, 32, 32, scales
# 0.1484375..0.75, one aspect ratio plus the interpolated one, anchors of fixed unit size.
POSE_DETECTOR_ANCHORS = SsdAnchorOptions(input_size=(224, 224), strides=(8, 16, 32, 32, 32), min_scale=0.1484375,
                                         max_scale=0.75, anchor_offset=(0.5, 0.5), aspect_ratios=(1.0,),
                                         interpolated_scale_aspect_ratio=1.0, fixed_anchor_size=True)


def _scale(options: SsdAnchorOptions, layer: int) -> float:
    n = len(options.strides)
    if n == 1:
        return 0.5 * (options.min_scale + options.max_scale)
    return options.min_scale + (options.max_scale - options.min_scale) * layer / (n - 1.0)


def ssd_anchors(options: SsdAnchorOptions) -> np.ndarray:
    """(A, 4) anchors ``[x_center, y_center, w, h]`` normalised to the detector input.

    Consecutive layers with the same stride share one feature map; each cell
    of it carries the anchors of all those layers, cell-major (row, column,
    then anchor), which is the order of the model's outputs.
    """
    height, width = options.input_size
    strides = options.strides
    blocks = []
    layer = 0
    while layer < len(strides):
        sizes_wh = []  # (w, h) of every anchor in one cell
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            scale = _scale(options, last)
            if last == 0 and options.reduce_boxes_in_lowest_layer:
                cell = [(1.0, 0.1), (2.0, scale), (0.5, scale)]
            else:
                cell = [(ratio, scale) for ratio in options.aspect_ratios]
                if options.interpolated_scale_aspect_ratio > 0.0:
                    scale_next = 1.0 if last == len(strides) - 1 else _scale(options, last + 1)
                    cell.append((options.interpolated_scale_aspect_ratio, math.sqrt(scale * scale_next)))
            sizes_wh += [(s * math.sqrt(r), s / math.sqrt(r)) for r, s in cell]
            last += 1
        rows = math.ceil(height / strides[layer])
        cols = math.ceil(width / strides[layer])
        ys, xs = np.meshgrid((np.arange(rows) + options.anchor_offset[1]) / rows,
                             (np.arange(cols) + options.anchor_offset[0]) / cols, indexing="ij")
        wh = np.ones((len(sizes_wh), 2)) if options.fixed_anchor_size else np.asarray(sizes_wh)
        per_cell = len(sizes_wh)
        centers = np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0)
        blocks.append(np.concatenate([centers, np.tile(wh, (rows * cols, 1))], axis=1))
        layer = last
    return np.concatenate(blocks).astype(np.float32)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, scale_xywh: tuple[float, float, float, float],
                 num_keypoints: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw regressors (A, 4 + 2K), ``x, y, w, h, kx0, ky0, ...`` (MediaPipe's ``reverse_output_order``)
    → boxes (A, 4) ``[x0, y0, x1, y1]`` and keypoints (A, K, 2), normalised to the detector input.

    Offsets are in input pixels relative to the anchor centre, scaled by the
    anchor size (``x / x_scale * anchor_w + anchor_x``); sizes are linear, not
    exponential, as ``apply_exponential_on_box_size`` is off for BlazePose.
    """
    raw = np.asarray(raw, dtype=np.float32)
    if raw.ndim != 2 or raw.shape[0] != anchors.shape[0] or raw.shape[1] < 4 + 2 * num_keypoints:
        raise ValueError(f"raw boxes must be (A, >= {4 + 2 * num_keypoints}) with A={anchors.shape[0]}, "
                         f"got {raw.shape}")
    x_scale, y_scale, w_scale, h_scale = scale_xywh
    anchor_xy, anchor_wh = anchors[:, :2], anchors[:, 2:4]
    center = raw[:, 0:2] / np.array([x_scale, y_scale], dtype=np.float32) * anchor_wh + anchor_xy
    size = raw[:, 2:4] / np.array([w_scale, h_scale], dtype=np.float32) * anchor_wh
    boxes = np.concatenate([center - 0.5 * size, center + 0.5 * size], axis=1)
    kps = raw[:, 4:4 + 2 * num_keypoints].reshape(-1, num_keypoints, 2)
    keypoints = kps / np.array([x_scale, y_scale], dtype=np.float32) * anchor_wh[:, None, :] + anchor_xy[:, None, :]
    return boxes, keypoints


def validate_detection(detection, num_keypoints: int) -> None:
    """Normalise a frozen detection's ``box_xyxy`` (4,), ``keypoints_xy`` (K, 2) and ``score`` in place.

    Arrays become read-only float64; raises ValueError (expected vs found) on a wrong shape, a non-finite
    value or a score outside [0, 1].
    """
    box = np.array(detection.box_xyxy, dtype=np.float64)
    kps = np.array(detection.keypoints_xy, dtype=np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise ValueError(f"box_xyxy must be (4,) finite, got {box.shape} {box.tolist()}")
    if kps.shape != (num_keypoints, 2) or not np.all(np.isfinite(kps)):
        raise ValueError(f"keypoints_xy must be ({num_keypoints}, 2) finite, got {kps.shape}")
    score = float(detection.score)
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must be in [0, 1], got {score}")
    for a in (box, kps):
        a.setflags(write=False)
    object.__setattr__(detection, "box_xyxy", box)
    object.__setattr__(detection, "keypoints_xy", kps)
    object.__setattr__(detection, "score", score)


def ssd_output_names(runner, num_anchors: int, num_keypoints: int, label: str) -> tuple[str, str]:
    """(regressors, scores) output names of an SSD detector, found by shape rather than by the converter's
    names: (1, A, 4 + 2K) box-and-keypoint regressors and (1, A, 1) scores.  Raises ModelError otherwise."""
    from ..errors import ModelError

    by_width = {s.shape[-1]: s.name for s in runner.outputs if len(s.shape) == 3 and s.shape[1] == num_anchors}
    coords = 4 + 2 * num_keypoints
    if coords not in by_width or 1 not in by_width:
        raise ModelError(f"{label} outputs must be (1, {num_anchors}, {coords}) and (1, {num_anchors}, 1), "
                         f"found {[tuple(s.shape) for s in runner.outputs]}")
    return by_width[coords], by_width[1]


def ssd_input(rgb: np.ndarray, window, size: int) -> np.ndarray:
    """Frame (H, W, 3) uint8 → the detector tensor (1, S, S, 3) float32 in [-1, 1] for ``window`` (a Roi);
    outside the frame is black (-1), as MediaPipe's letterbox."""
    crop = window.crop(rgb, size, border="zero")
    return (crop.astype(np.float32) * np.float32(2.0 / 255.0) - np.float32(1.0))[None]
