"""ViTPose 2D keypoints from a user's ONNX file, top-down, as easy_ViTPose crops and decodes: boxes → keypoints.

easy_ViTPose (JunkyByte/easy_ViTPose) exports its models with one input
``input_0`` (B, 3, 256, 192) and one output ``output_0`` (B, J, 64, 48)
heatmaps, J = 17 (COCO) or 25 (its ``coco_25``: COCO plus neck, pelvis and
feet); the joint names are the ``COCO_17`` and ``VITPOSE_25`` skeletons of
:mod:`rigcast.skeletons`.  Per person box, as its ``inference.py`` does:

1. crop (:func:`crop_plan`): the box, rounded to whole px, grows by
   ``BOX_MARGIN_PX`` on each side, clipped to the frame; the crop is then
   padded with black, centred, to the input's aspect ratio (3:4, width over
   height), so the person is not stretched.  (easy_ViTPose does not use
   mmpose's 1.25 box scale: its margin is these 10 px.)
2. preprocess: the padded crop is resized (bilinear) to the input size, RGB
   / 255, normalised with ImageNet's mean and std, NCHW float32.
3. run, then decode (:func:`decode_heatmaps`): the heatmap argmax, refined
   by DARK as mmpose's ``post_dark_udp`` does (the heatmap blurred by an
   11 px Gaussian, its log's Newton step from the argmax), then mapped to the
   padded crop by UDP's scale (crop size / (heatmap size - 1)) about the
   crop's centre; the score is the heatmap's maximum.

easy_ViTPose's torch checkpoints (``.pth``) run through the same estimator: :mod:`rigcast.models.vitpose_torch`
builds the network in torch behind a runner with these tensor names.

Legend: N persons, J joints, h x w heatmap size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelError
from ..runners import Runner
from ..skeletons import COCO_17, VITPOSE_25, Skeleton

INPUT_HW = (256, 192)  # easy_ViTPose's data_cfg image_size [192, 256] is (width, height)
BOX_MARGIN_PX = 10  # its pad_bbox
MEAN_RGB = np.array([0.485, 0.456, 0.406])  # ImageNet, on RGB / 255
STD_RGB = np.array([0.229, 0.224, 0.225])
DARK_KERNEL = 11  # mmpose keypoints_from_heatmaps' default kernel, which easy_ViTPose keeps (sigma 2 heatmaps)
HEATMAP_STRIDE = 4
SKELETONS = {17: COCO_17, 25: VITPOSE_25}


@dataclass(frozen=True)
class CropPlan:
    """Where one person's model input comes from in the frame.

    ``box_xyxy`` (4,) int: the frame region cut out (margin added, clipped);
    ``pad_xy`` (2,) int: black px added left and top to reach the aspect;
    ``padded_wh`` (2,) int: the padded crop's size, which is resized to the
    input.  Crop px (x, y) is frame px (x + x0 - pad_x, y + y0 - pad_y).
    """

    box_xyxy: tuple[int, int, int, int]
    pad_xy: tuple[int, int]
    padded_wh: tuple[int, int]

    @property
    def empty(self) -> bool:
        x0, y0, x1, y1 = self.box_xyxy
        return x1 <= x0 or y1 <= y0

    def crop_to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Points (..., 2) xy in padded-crop px → frame px."""
        offset = np.array([self.box_xyxy[0] - self.pad_xy[0], self.box_xyxy[1] - self.pad_xy[1]], dtype=np.float64)
        return np.asarray(xy, dtype=np.float64) + offset


def crop_plan(box_xyxy: np.ndarray, frame_wh: tuple[int, int], aspect_wh: float = INPUT_HW[1] / INPUT_HW[0],
              margin_px: int = BOX_MARGIN_PX) -> CropPlan:
    """A person box (4,) xyxy in frame px → its :class:`CropPlan`, as easy_ViTPose's ``inference`` and
    ``pad_image`` compute it (numpy's rounding of the box, integer padding, the odd px to the right/bottom)."""
    box = np.round(np.asarray(box_xyxy, dtype=np.float64).reshape(4)).astype(np.int64)
    width, height = frame_wh
    x0, x1 = np.clip(box[[0, 2]] + [-margin_px, margin_px], 0, width)
    y0, y1 = np.clip(box[[1, 3]] + [-margin_px, margin_px], 0, height)
    w, h = int(x1 - x0), int(y1 - y0)
    left = top = 0
    if w <= 0 or h <= 0:
        padded = (max(w, 0), max(h, 0))
    elif w / h < aspect_wh:
        target_w = int(aspect_wh * h)
        left = (target_w - w) // 2
        padded = (target_w, h)
    else:
        target_h = int(w / aspect_wh)
        top = (target_h - h) // 2
        padded = (w, target_h)
    return CropPlan(box_xyxy=(int(x0), int(y0), int(x1), int(y1)), pad_xy=(left, top), padded_wh=padded)


def crop_image(rgb: np.ndarray, plan: CropPlan, input_hw: tuple[int, int] = INPUT_HW) -> np.ndarray:
    """Frame (H, W, 3) uint8 → the padded crop resized to ``input_hw``, normalised: (3, h, w) float32."""
    import cv2

    x0, y0, x1, y1 = plan.box_xyxy
    padded = np.zeros((plan.padded_wh[1], plan.padded_wh[0], 3), dtype=np.uint8)
    left, top = plan.pad_xy
    padded[top:top + y1 - y0, left:left + x1 - x0] = rgb[y0:y1, x0:x1]
    resized = cv2.resize(padded, (input_hw[1], input_hw[0]), interpolation=cv2.INTER_LINEAR)
    # (x / 255 - mean) / std as one multiply-add in float32, per channel
    gain = (1.0 / (255.0 * STD_RGB)).astype(np.float32)
    offset = (-MEAN_RGB / STD_RGB).astype(np.float32)
    return np.ascontiguousarray((resized.astype(np.float32) * gain + offset).transpose(2, 0, 1))


def decode_heatmaps(heatmaps: np.ndarray, kernel: int = DARK_KERNEL) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps (J, h, w) → keypoints (J, 2) xy in heatmap px, sub-pixel, and scores (J,) (each map's maximum).

    DARK (Zhang et al., CVPR 2020) as mmpose's ``post_dark_udp``: the log of
    the blurred map is taken as a quadratic about the argmax; one Newton step
    (derivatives by central differences, edges replicated) moves to its top.
    A map whose maximum is not positive has no keypoint: NaN, score 0.
    Peaks within about 5 px of the map's edge come out biased (up to 1.3 px
    for a sigma-2 peak 0.1 px from the edge, measured), as in mmpose: the
    blur reflects the map at its border.
    """
    import cv2

    maps = np.asarray(heatmaps, dtype=np.float32)
    if maps.ndim != 3:
        raise ModelError(f"expected heatmaps (J, h, w), found {maps.shape}")
    joints, h, w = maps.shape
    flat = maps.reshape(joints, -1)
    peak = np.argmax(flat, axis=1)
    scores = flat[np.arange(joints), peak].astype(np.float64)
    px, py = peak % w, peak // w
    blurred = np.stack([cv2.GaussianBlur(m, (kernel, kernel), 0) for m in maps])
    log = np.pad(np.log(np.clip(blurred, 0.001, 50.0)).astype(np.float64), ((0, 0), (1, 1), (1, 1)), mode="edge")
    j, x, y = np.arange(joints), px + 1, py + 1  # in the padded map

    def at(dx: int, dy: int) -> np.ndarray:
        return log[j, y + dy, x + dx]

    centre = at(0, 0)
    grad = np.stack([0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))], axis=1)  # (J, 2)
    dxx = at(1, 0) - 2 * centre + at(-1, 0)
    dyy = at(0, 1) - 2 * centre + at(0, -1)
    # mmpose's mixed difference: the mean of the forward (+x, +y) and backward (-x, -y) one-sided estimates.
    dxy = 0.5 * (at(1, 1) - at(1, 0) - at(0, 1) + 2 * centre - at(-1, 0) - at(0, -1) + at(-1, -1))
    hessian = np.stack([np.stack([dxx, dxy], 1), np.stack([dxy, dyy], 1)], 1) + np.finfo(np.float32).eps * np.eye(2)
    step = np.linalg.solve(hessian, grad[:, :, None])[:, :, 0]
    xy = np.stack([px, py], axis=1).astype(np.float64) - step
    missing = ~(scores > 0)
    xy[missing] = np.nan
    scores[missing] = 0.0
    return xy, scores


def heatmap_to_crop(xy: np.ndarray, heatmap_wh: tuple[int, int], padded_wh: tuple[int, int]) -> np.ndarray:
    """Keypoints (..., 2) xy in heatmap px → padded-crop px, by UDP's mapping as easy_ViTPose calls it:
    scale crop size / (heatmap size - 1), about the centre (crop size // 2) less half the crop size."""
    size = np.asarray(padded_wh, dtype=np.float64)
    centre = np.asarray(padded_wh, dtype=np.int64) // 2
    scale = size / (np.asarray(heatmap_wh, dtype=np.float64) - 1.0)
    return np.asarray(xy, dtype=np.float64) * scale + centre - 0.5 * size


@dataclass(frozen=True, eq=False)  # arrays: compare fields explicitly
class Keypoints2D:
    """People's keypoints in frame px: ``xy`` (N, J, 2), NaN where missing, and ``scores`` (N, J) in the
    heatmap's units (about [0, 1]), 0 where missing; joints in ``skeleton``'s order."""

    skeleton: Skeleton
    xy: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        joints = len(self.skeleton.joint_names)
        xy, scores = np.asarray(self.xy, dtype=np.float64), np.asarray(self.scores, dtype=np.float64)
        if xy.ndim != 3 or xy.shape[1:] != (joints, 2):
            raise ValueError(f"xy must be (N, J, 2) with J={joints}, got {xy.shape}")
        if scores.shape != xy.shape[:2]:
            raise ValueError(f"scores must be (N, J) = {xy.shape[:2]}, got {scores.shape}")
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "scores", scores)


class VitPoseEstimator:
    """Reads 2D keypoints of people in their boxes with a user's easy_ViTPose ONNX export (or any runner with its
    tensors, such as a torch checkpoint's from :func:`rigcast.models.vitpose_torch.open_vitpose_checkpoint`).

    The input size and the joint set (17: ``COCO_17``, 25: ``VITPOSE_25``) are
    read from the model; a dynamic input size reads easy_ViTPose's 256x192.
    A model with a dynamic batch axis runs all boxes of a frame at once.
    """

    def __init__(self, runner: Runner):
        self.runner = runner
        found = (f"inputs {[(s.name, s.shape) for s in runner.inputs]}, "
                 f"outputs {[(s.name, s.shape) for s in runner.outputs]}")
        expected = "a ViTPose model with input (1, 3, 256, 192) and output (1, J, 64, 48), J 17 or 25"
        if len(runner.inputs) != 1 or len(runner.outputs) < 1:
            raise ModelError(f"expected {expected}, found {found}")
        (self._input,) = runner.inputs
        self._output = runner.outputs[0]
        in_shape, out_shape = tuple(self._input.shape), tuple(self._output.shape)
        if len(in_shape) != 4 or in_shape[1] not in (3, None) or len(out_shape) != 4:
            raise ModelError(f"expected {expected}, found {found}")
        self.input_hw = INPUT_HW if None in in_shape[2:] else (int(in_shape[2]), int(in_shape[3]))
        self.heatmap_hw = (self.input_hw[0] // HEATMAP_STRIDE, self.input_hw[1] // HEATMAP_STRIDE)
        if out_shape[1] not in SKELETONS or any(s not in (None, e) for s, e in zip(out_shape[2:], self.heatmap_hw)):
            raise ModelError(f"expected {expected}, found {found}")
        self.skeleton = SKELETONS[out_shape[1]]
        self.batched = in_shape[0] is None

    @property
    def num_joints(self) -> int:
        return len(self.skeleton.joint_names)

    def preprocess(self, rgb: np.ndarray, plans: list[CropPlan]) -> np.ndarray:
        """Frame (H, W, 3) uint8 and N non-empty crop plans → model input (N, 3, h, w) float32."""
        return np.stack([crop_image(rgb, p, self.input_hw) for p in plans])

    def postprocess(self, heatmaps: np.ndarray, plans: list[CropPlan]) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps (N, J, h, w) → keypoints (N, J, 2) xy in frame px and scores (N, J)."""
        heatmaps = np.asarray(heatmaps)
        expected = (len(plans), self.num_joints, *self.heatmap_hw)
        if heatmaps.shape != expected:
            raise ModelError(f"expected ViTPose heatmaps {expected}, found {heatmaps.shape}")
        xy = np.empty((len(plans), self.num_joints, 2))
        scores = np.empty((len(plans), self.num_joints))
        hw = (self.heatmap_hw[1], self.heatmap_hw[0])
        for i, (maps, plan) in enumerate(zip(heatmaps, plans)):
            hm_xy, scores[i] = decode_heatmaps(maps)
            xy[i] = plan.crop_to_frame(heatmap_to_crop(hm_xy, hw, plan.padded_wh))
        return xy, scores

    def __call__(self, rgb: np.ndarray, boxes_xyxy: np.ndarray) -> Keypoints2D:
        """Keypoints of the people in ``boxes_xyxy`` (N, 4) frame px of ``rgb`` (H, W, 3) uint8.  A box that
        the frame leaves empty gives NaN keypoints with score 0."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 1:
            raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        boxes = np.asarray(boxes_xyxy, dtype=np.float64)
        if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
            raise InputError(f"expected person boxes (N, 4) xyxy, finite, got {boxes.shape}")
        frame_wh = (rgb.shape[1], rgb.shape[0])
        plans = [crop_plan(b, frame_wh, self.input_hw[1] / self.input_hw[0]) for b in boxes]
        xy = np.full((len(plans), self.num_joints, 2), np.nan)
        scores = np.zeros((len(plans), self.num_joints))
        live = [i for i, p in enumerate(plans) if not p.empty]
        if live:
            batch = self.preprocess(rgb, [plans[i] for i in live])
            chunks = [batch] if self.batched else [batch[i:i + 1] for i in range(len(live))]
            heatmaps = np.concatenate([self.runner({self._input.name: c})[self._output.name] for c in chunks])
            xy[live], scores[live] = self.postprocess(heatmaps, [plans[i] for i in live])
        return Keypoints2D(skeleton=self.skeleton, xy=xy, scores=scores)
