"""FaceBoxes face detector from a user's ONNX file (3DDFA_V2's ``FaceBoxesProd.onnx``): frame → face boxes.

The file is the user's own, loaded by path; nothing is downloaded.  As
3DDFA_V2 runs it (``FaceBoxes/FaceBoxes_ONNX.py``):

1. preprocess: the frame (BGR, as OpenCV reads it) is shrunk, aspect kept,
   so that it is at most ``MAX_HEIGHT`` = 720 rows and ``MAX_WIDTH`` = 1080
   columns (``cv2.resize``, bilinear; never enlarged); minus the per-channel
   mean ``MEAN_BGR`` = (104, 117, 123), NCHW float32.  3DDFA_V2 exports the
   model with dynamic height and width (input ``input`` (1, 3, H, W)); a file
   exported with a fixed size gets the frame stretched to that size.
2. run: two outputs, told apart by their last axis (3DDFA_V2's export names
   only the first, ``output``; the second gets an exporter-made name):
   ``loc`` (1, A, 4) box offsets and ``conf`` (1, A, 2) softmax scores,
   column 1 the face's.
3. decode against the priors (``utils/prior_box.py``, ``box_utils.decode``):
   three feature maps of strides 32, 64, 128 (``ceil(H / step)`` x
   ``ceil(W / step)`` cells, row-major); per cell the anchor sizes
   ``MIN_SIZES`` = [32, 64, 128], [256], [512] input px, where size 32 is
   densified to a 4 x 4 grid of centres at quarter-cell offsets and 64 to a
   2 x 2 grid at half-cell offsets (rows of the grid first), the others
   centred in the cell: 21 + 1 + 1 anchors per cell.  A prior is
   ``(cx, cy, w, h)`` normalised by the input width and height;  the box is
   ``centre = prior_c + loc_xy * 0.1 * prior_wh``,
   ``size = prior_wh * exp(loc_wh * 0.2)`` (``VARIANCE`` = [0.1, 0.2]),
   scaled back to frame px.
4. postprocess: scores over ``PRE_NMS_SCORE`` = 0.05, the best ``TOP_K`` =
   5000, greedy NMS at IoU 0.3, the best 750, then scores over
   ``min_score`` (3DDFA_V2's ``vis_thres`` 0.5).

Legend: A priors, D candidates, N faces kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelError
from ..runners import Runner
from .person_detector import check_detector_options, checked_box_xyxy, nms

MEAN_BGR = (104.0, 117.0, 123.0)
MAX_HEIGHT, MAX_WIDTH = 720, 1080
MIN_SIZES = ((32, 64, 128), (256,), (512,))
STEPS = (32, 64, 128)
VARIANCE = (0.1, 0.2)
# Anchors of size 32 and 64 are densified: per cell a k x k grid of centres at offsets j / k of a cell.
DENSITY = {32: 4, 64: 2}
PRE_NMS_SCORE = 0.05
TOP_K = 5000
KEEP_TOP_K = 750
NMS_IOU = 0.3
MIN_SCORE = 0.5


@dataclass(frozen=True)
class FaceBox:
    """One detected face: ``box_xyxy`` (4,) frame px and its ``score`` in [0, 1]."""

    box_xyxy: np.ndarray
    score: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "box_xyxy", checked_box_xyxy(self.box_xyxy))
        object.__setattr__(self, "score", float(self.score))


def faceboxes_priors(height: int, width: int) -> np.ndarray:
    """The priors (A, 4) ``cx, cy, w, h`` normalised by the input size, for an input of ``height`` x ``width``
    px, in the order of the model's outputs: per stride, per cell (row-major), per anchor size, per dense
    centre (rows first)."""
    if height < 1 or width < 1:
        raise ValueError(f"input size must be positive, got {height} x {width}")
    levels = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        per_cell = []  # (k, 4): offsets in cells (dx, dy) and the anchor size, for each anchor of a cell
        for size in sizes:
            k = DENSITY.get(size, 1)
            offsets = np.arange(k) / k if k > 1 else np.array([0.5])
            dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
            per_cell.append(np.stack([dx.ravel(), dy.ravel(), np.full(k * k, float(size))], axis=1))
        anchors = np.concatenate(per_cell)  # (K, 3)
        i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        cx = (j.reshape(-1, 1) + anchors[:, 0]) * step / width  # (cells, K)
        cy = (i.reshape(-1, 1) + anchors[:, 1]) * step / height
        w = np.broadcast_to(anchors[:, 2] / width, cx.shape)
        h = np.broadcast_to(anchors[:, 2] / height, cx.shape)
        levels.append(np.stack([cx, cy, w, h], axis=2).reshape(-1, 4))
    return np.concatenate(levels)


def decode_faceboxes(loc: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """Offsets ``loc`` (A, 4) against ``priors`` (A, 4) → boxes (A, 4) xyxy, normalised like the priors."""
    loc = np.asarray(loc, dtype=np.float64)
    centre = priors[:, :2] + loc[:, :2] * VARIANCE[0] * priors[:, 2:]
    size = priors[:, 2:] * np.exp(loc[:, 2:] * VARIANCE[1])
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


class FaceBoxesDetector:
    """Finds faces in an RGB frame with a FaceBoxes ONNX model; a pure function of the frame once built.

    ``min_score``: lowest face score returned (3DDFA_V2's 0.5); ``nms_iou``:
    boxes overlapping more are one face; ``max_faces``: most boxes returned,
    best first.
    """

    def __init__(self, runner: Runner, min_score: float = MIN_SCORE, nms_iou: float = NMS_IOU,
                 max_faces: int = 100):
        check_detector_options(min_score, nms_iou, max_faces, most="max_faces")
        self.runner, self.min_score, self.nms_iou, self.max_faces = runner, float(min_score), float(nms_iou), max_faces
        if len(runner.inputs) != 1 or len(runner.inputs[0].shape) != 4 or runner.inputs[0].shape[1] not in (3, None):
            raise ModelError(f"FaceBoxes takes one input (1, 3, H, W), got "
                             f"{[(s.name, s.shape) for s in runner.inputs]}")
        self._input = runner.inputs[0]
        by_last = {s.shape[-1]: s.name for s in runner.outputs if len(s.shape) == 3}
        if len(runner.outputs) != 2 or set(by_last) != {4, 2}:
            raise ModelError(f"FaceBoxes gives two outputs, loc (1, A, 4) and conf (1, A, 2); got "
                             f"{[(s.name, s.shape) for s in runner.outputs]}")
        self._loc, self._conf = by_last[4], by_last[2]

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """The model input (rows, columns) for a ``height`` x ``width`` frame."""
        fixed_h, fixed_w = self._input.shape[2:]
        if fixed_h and fixed_w:
            return int(fixed_h), int(fixed_w)
        scale = 1.0
        if height > MAX_HEIGHT:
            scale = MAX_HEIGHT / height
        if width * scale > MAX_WIDTH:
            scale *= MAX_WIDTH / (width * scale)
        return (height, width) if scale == 1.0 else (int(scale * height), int(scale * width))

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """RGB (H, W, 3) uint8 → the model input (1, 3, h, w) float32, BGR minus ``MEAN_BGR``."""
        import cv2

        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InputError(f"frame must be (H, W, 3) RGB, got {rgb.shape}")
        h, w = self.input_size(*rgb.shape[:2])
        # One OpenCV call swaps to BGR, resizes (bilinear, as cv2.resize), subtracts the mean and lays out NCHW:
        # the same numbers as those steps in numpy, in a quarter of the time (12 against 53 ms at 1080x607).
        return cv2.dnn.blobFromImage(np.ascontiguousarray(rgb), 1.0, (w, h), MEAN_BGR, swapRB=True, crop=False)

    def postprocess(self, loc: np.ndarray, conf: np.ndarray, input_hw: tuple[int, int],
                    frame_hw: tuple[int, int]) -> list[FaceBox]:
        """Outputs ``loc`` (1, A, 4) and ``conf`` (1, A, 2) of an input of ``input_hw`` → faces in the frame of
        ``frame_hw``, best first."""
        priors = faceboxes_priors(*input_hw)
        loc, conf = np.asarray(loc).reshape(-1, 4), np.asarray(conf).reshape(-1, 2)
        if len(loc) != len(priors) or len(conf) != len(priors):
            raise ModelError(f"FaceBoxes gave {len(loc)} boxes and {len(conf)} scores for an input of {input_hw}, "
                             f"whose priors number {len(priors)}")
        scores = conf[:, 1].astype(np.float64)
        keep = np.flatnonzero(scores > PRE_NMS_SCORE)
        keep = keep[np.argsort(-scores[keep], kind="stable")][:TOP_K]
        boxes = decode_faceboxes(loc[keep], priors[keep])
        frame_h, frame_w = frame_hw
        boxes *= np.array([frame_w, frame_h, frame_w, frame_h], dtype=np.float64)
        faces = []
        for group in nms(boxes, scores[keep], self.nms_iou)[:KEEP_TOP_K]:
            top = group[0]
            if scores[keep[top]] > self.min_score:
                faces.append(FaceBox(boxes[top], min(1.0, scores[keep[top]])))
        return faces[: self.max_faces]

    def __call__(self, rgb: np.ndarray) -> list[FaceBox]:
        """Faces in an RGB frame (H, W, 3) uint8, best first."""
        image = self.preprocess(rgb)
        out = self.runner({self._input.name: image})
        return self.postprocess(out[self._loc], out[self._conf], image.shape[2:], rgb.shape[:2])
