"""YOLO person detector from a user's ONNX file (ultralytics' YOLOv5, YOLOv8 and end-to-end exports): frame →
person boxes.

The file is the user's own, loaded by path; nothing is downloaded.  As
ultralytics runs its exports:

1. preprocess (:func:`letterbox`): the frame keeps its aspect ratio, is
   resized (bilinear) to fit the model's input and padded with grey 114 on
   both sides, centred; RGB in [0, 1], NCHW float32.  The input size is the
   model's own when its input shape is fixed; a model exported with dynamic
   axes reads ``input_size``, padded only up to a multiple of ``STRIDE``
   (ultralytics' "rect" inference).
2. run: one output, whose layout the shape tells (:func:`yolo_layout`):
   - YOLOv5, (1, N, 5 + C): per candidate cx, cy, w, h (input px), objectness,
     then C class probabilities; a class's score is objectness x probability;
   - YOLOv8 (and v11), (1, 4 + C, N): cx, cy, w, h, then C class scores, no
     objectness;
   - end to end (YOLOv10, YOLO26, or any export with ``nms=True``), (1, K, 6):
     per kept detection x1, y1, x2, y2 (input px), score, class; K is the
     export's ``max_det`` (300 by default).  A YOLOv5 output with one class has
     the same last axis, but its N is 63 x (h / 32) x (w / 32), a multiple of 63.
   The exports already apply the sigmoids.
3. postprocess: person (class 0) scores of ``min_score`` or more, greedy
   non-maximum suppression (person only, so not class-aware), boxes mapped
   back to frame px through the letterbox and clipped to the frame.

The boxes come back as :class:`~rigcast.models.PersonBox`, the type the body
pipeline takes from NanoDet (see ``pipeline.body.Detection``).

Legend: N candidates, C classes, D candidates kept before NMS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelError
from ..runners import Runner
from .person_detector import PersonBox, check_detector_options, nms

PERSON_CLASS = 0
STRIDE = 32  # the coarsest YOLO head: a dynamic input must be a multiple of it
PAD_VALUE = 114  # ultralytics' letterbox grey
DEFAULT_INPUT_SIZE = 640  # ultralytics' export and predict default
# easy_ViTPose keeps YOLO boxes scoring over 0.35 (its inference.py, after ultralytics' own 0.25); ultralytics'
# NMS merges boxes overlapping by more than 0.7 IoU.
MIN_SCORE = 0.35
NMS_IOU = 0.7
LAYOUTS = ("yolov5", "yolov8", "end2end")
YOLOV5_CELLS = 63  # candidates per 32x32 input px: 3 anchors x (16 + 4 + 1) cells of strides 8, 16 and 32


@dataclass(frozen=True)
class Letterbox:
    """How a frame was placed in the model input: input px = frame px x ``scale_xy`` + ``pad_xy``.

    ``scale_xy`` (2,) is per axis (the resized size over the frame size, so
    rounding the resized size to whole pixels is accounted for exactly),
    ``pad_xy`` (2,) the left and top padding in input px.
    """

    scale_xy: tuple[float, float]
    pad_xy: tuple[int, int]
    input_wh: tuple[int, int]

    def to_frame(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Boxes (D, 4) xyxy in input px → frame px."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        scale = np.tile(np.asarray(self.scale_xy, dtype=np.float64), 2)
        pad = np.tile(np.asarray(self.pad_xy, dtype=np.float64), 2)
        return (boxes - pad) / scale

    def to_input(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Boxes (D, 4) xyxy in frame px → input px."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        return boxes * np.tile(np.asarray(self.scale_xy, dtype=np.float64), 2) + np.tile(self.pad_xy, 2)


def letterbox_plan(frame_wh: tuple[int, int], input_wh: tuple[int, int], stride_aligned: bool = False) -> Letterbox:
    """Where a ``frame_wh`` frame goes in an ``input_wh`` input, as ultralytics' ``LetterBox`` places it.

    The frame is scaled by r = min(input / frame) to round(frame x r) px and
    centred; the padding splits as round(pad / 2 -+ 0.1), so an odd pixel
    goes to the right / bottom.  ``stride_aligned`` pads only up to the next
    multiple of ``STRIDE`` (the returned ``input_wh`` is then smaller).
    """
    width, height = frame_wh
    in_w, in_h = input_wh
    if width < 1 or height < 1:
        raise InputError(f"expected a frame of at least 1x1 px, got {width}x{height}")
    r = min(in_w / width, in_h / height)
    new_w, new_h = int(round(width * r)), int(round(height * r))
    pad_w, pad_h = in_w - new_w, in_h - new_h
    if stride_aligned:
        pad_w, pad_h = pad_w % STRIDE, pad_h % STRIDE
    left, top = int(round(pad_w / 2 - 0.1)), int(round(pad_h / 2 - 0.1))
    return Letterbox(scale_xy=(new_w / width, new_h / height), pad_xy=(left, top),
                     input_wh=(new_w + pad_w, new_h + pad_h))


def letterbox(rgb: np.ndarray, plan: Letterbox, pad_value: int = PAD_VALUE) -> np.ndarray:
    """Frame (H, W, 3) uint8 → the letterboxed image (h, w, 3) uint8 of ``plan.input_wh``, ``pad_value`` around
    (ultralytics' grey 114 by default)."""
    import cv2

    in_w, in_h = plan.input_wh
    new_w = int(round(rgb.shape[1] * plan.scale_xy[0]))
    new_h = int(round(rgb.shape[0] * plan.scale_xy[1]))
    resized = rgb if (new_w, new_h) == (rgb.shape[1], rgb.shape[0]) else cv2.resize(
        rgb, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out = np.full((in_h, in_w, 3), pad_value, dtype=np.uint8)
    left, top = plan.pad_xy
    out[top:top + new_h, left:left + new_w] = resized
    return out


def yolo_layout(shape: tuple[int | None, ...]) -> tuple[str, int]:
    """An output shape → (layout, number of classes C).

    (1, N, 5 + C) is YOLOv5, (1, 4 + C, N) YOLOv8: the candidate axis N
    (thousands at the published sizes) is the longer one.  A dynamic axis
    (None) is the candidate axis.  (1, K, 6) with K not a multiple of 63 is an
    end-to-end export's detections (C = 0: classes are ids there).  Anything
    else raises :class:`ModelError`.
    """
    expected = "a YOLO output (1, N, 5+C) (YOLOv5), (1, 4+C, N) (YOLOv8) or (1, K, 6) (end to end)"
    shape = tuple(shape)
    if len(shape) != 3 or shape[0] not in (1, None) or (shape[1] is None and shape[2] is None):
        raise ModelError(f"expected {expected}, found {shape}")
    a, b = shape[1], shape[2]
    if b == 6 and a is not None and a % YOLOV5_CELLS:
        return "end2end", 0
    if b is None or (a is not None and a < b):
        layout, classes = "yolov8", a - 4
    else:
        layout, classes = "yolov5", b - 5
    if classes < 1:
        raise ModelError(f"expected {expected}, found {shape}")
    return layout, classes


def decode_yolo(output: np.ndarray, layout: str, class_index: int = PERSON_CLASS,
                min_score: float = MIN_SCORE) -> tuple[np.ndarray, np.ndarray]:
    """One image's raw output → boxes (D, 4) xyxy in input px and scores (D,) of ``class_index``.

    ``output`` is (1, N, 5 + C) for ``layout`` "yolov5", (1, 4 + C, N) for
    "yolov8" or (1, K, 6) for "end2end"; candidates scoring under ``min_score`` are dropped.
    """
    out = np.asarray(output)
    if out.ndim != 3 or out.shape[0] != 1:
        raise ModelError(f"expected a YOLO output (1, N, 5+C), (1, 4+C, N) or (1, K, 6), found {out.shape}")
    if layout == "end2end":
        rows = out[0]  # (K, 6): x1, y1, x2, y2, score, class
        keep = (np.rint(rows[:, 5]) == class_index) & (rows[:, 4] >= min_score)
        return rows[keep, :4].astype(np.float64), rows[keep, 4].astype(np.float64)
    if layout == "yolov5":
        rows = out[0]  # (N, 5 + C)
        scores = rows[:, 4].astype(np.float64) * rows[:, 5 + class_index]
    elif layout == "yolov8":
        rows = out[0].T  # (N, 4 + C)
        scores = rows[:, 4 + class_index].astype(np.float64)
    else:
        raise ModelError(f"expected a YOLO layout among {LAYOUTS}, found {layout!r}")
    keep = scores >= min_score
    cxcywh = rows[keep, :4].astype(np.float64)
    half = 0.5 * cxcywh[:, 2:]
    return np.concatenate([cxcywh[:, :2] - half, cxcywh[:, :2] + half], axis=1), scores[keep]


class YoloPersonDetector:
    """Finds people in an RGB frame with a user's YOLOv5 / YOLOv8 / end-to-end ONNX export; a pure function of
    the frame.

    ``min_score``: lowest person score kept; ``nms_iou``: boxes overlapping
    more are one person; ``max_people``: most boxes returned, best first;
    ``input_size``: the square side fed to a model whose input shape is
    dynamic (a fixed one is read from the model).
    """

    aligned = False  # its boxes give upright ROIs (see PersonBox)

    def __init__(self, runner: Runner, min_score: float = MIN_SCORE, nms_iou: float = NMS_IOU,
                 max_people: int = 100, input_size: int = DEFAULT_INPUT_SIZE):
        check_detector_options(min_score, nms_iou, max_people)
        if input_size < STRIDE or input_size % STRIDE:
            raise ValueError(f"input_size must be a positive multiple of {STRIDE}, got {input_size}")
        self.runner = runner
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        self.max_people = int(max_people)
        found = [(s.name, s.shape) for s in runner.inputs], [(s.name, s.shape) for s in runner.outputs]
        if len(runner.inputs) != 1 or len(runner.outputs) < 1:
            raise ModelError(f"expected a YOLO model with one input (1, 3, H, W) and an output (1, N, 5+C), "
                             f"(1, 4+C, N) or (1, K, 6), found inputs {found[0]} and outputs {found[1]}")
        (self._input,) = runner.inputs
        shape = tuple(self._input.shape)
        if len(shape) != 4 or shape[0] not in (1, None) or shape[1] not in (3, None):
            raise ModelError(f"expected a YOLO input (1, 3, H, W), found {self._input.name!r} {shape}")
        self.dynamic = shape[2] is None or shape[3] is None
        self.input_wh = (int(input_size), int(input_size)) if self.dynamic else (int(shape[3]), int(shape[2]))
        self._output = runner.outputs[0]
        try:
            self.layout, self.num_classes = yolo_layout(self._output.shape)
        except ModelError as exc:
            raise ModelError(f"{exc} (inputs {found[0]}, outputs {found[1]})") from None

    def plan(self, frame_wh: tuple[int, int]) -> Letterbox:
        """The letterbox of a ``frame_wh`` frame: fixed input size, or stride-aligned for a dynamic model."""
        return letterbox_plan(frame_wh, self.input_wh, stride_aligned=self.dynamic)

    def preprocess(self, rgb: np.ndarray, plan: Letterbox) -> np.ndarray:
        """Frame (H, W, 3) uint8 → (1, 3, h, w) float32 in [0, 1], letterboxed by ``plan``."""
        boxed = letterbox(rgb, plan)
        return np.ascontiguousarray(boxed.transpose(2, 0, 1)[None], dtype=np.float32) * np.float32(1.0 / 255.0)

    def postprocess(self, output: np.ndarray, plan: Letterbox, frame_wh: tuple[int, int]) -> list[PersonBox]:
        """Raw output → people in frame px, best score first (at most ``max_people``)."""
        layout, classes = yolo_layout(np.shape(output))
        if (layout, classes) != (self.layout, self.num_classes):
            raise ModelError(f"expected a {self.layout} output with {self.num_classes} classes, "
                             f"found shape {np.shape(output)}")
        boxes, scores = decode_yolo(output, self.layout, min_score=self.min_score)
        width, height = frame_wh
        boxes = np.clip(plan.to_frame(boxes), 0.0, np.array([width, height, width, height], dtype=np.float64))
        real = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = boxes[real], scores[real]
        groups = nms(boxes, scores, self.nms_iou)[: self.max_people]
        return [PersonBox(box_xyxy=boxes[g[0]], score=min(1.0, float(scores[g[0]])), alternatives=boxes[g[1:]],
                          frame_height=float(height)) for g in groups]

    def __call__(self, rgb: np.ndarray) -> list[PersonBox]:
        """People in ``rgb`` (H, W, 3) uint8, best score first."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 1:
            raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        frame_wh = (rgb.shape[1], rgb.shape[0])
        plan = self.plan(frame_wh)
        outputs = self.runner({self._input.name: self.preprocess(rgb, plan)})
        return self.postprocess(outputs[self._output.name], plan, frame_wh)
