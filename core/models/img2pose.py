"""img2pose from a user's ONNX export (Albiero et al., CVPR 2021): frame → face boxes and a 6DoF head pose each.

The file is the user's own, loaded by path (``rigcast analyze --face img2pose:FILE``); nothing is downloaded.
The format, as the public img2pose code (vitoralbiero/img2pose) and NVIDIA's ffmpeg GPU demo pose filter (the
seed, which runs ``img2pose_v1_ft_300w_lp_static_nopost.onnx``) use it:

* input: one tensor (the seed's is named ``images``), planar RGB float32 in [0, 1], (3, H, W) or (1, 3, H, W).
  The seed's export is fixed at 3 x 720 x 1280; the Faster R-CNN inside resizes and normalises (ImageNet mean
  and std) by itself.  A fixed input gets the frame letterboxed: scaled to fit, aspect kept, centred, black
  around (torchvision pads its batches with 0).  A dynamic input gets the frame as it is.
* outputs, by name: ``boxes`` (N, 4) x1, y1, x2, y2 input px, ``labels`` (N,), ``scores`` (N,) or (N, 1),
  ``dofs`` (N, 6).  The export has no post-processing ("nopost"): each row of ``dofs`` is the pose of its box's
  crop, normalised by the WIDER training set's statistics (:data:`POSE_MEAN`, :data:`POSE_STD`), and the boxes
  are not suppressed.

Decoding (:func:`decode_dofs`, img2pose's ``transform_pose_global_project_bbox`` and the seed's C++ twin):

1. ``dof = dofs * POSE_STD + POSE_MEAN``: a rotation vector (3) and translation (3) of img2pose's reference face
   (:data:`REFERENCE_68`, 68 points in its own units, OpenCV axes: y down, the nose towards -z) in the camera of
   the box, whose principal point is the box centre (x0 + floor(w / 2), y0 + floor(h / 2)).
2. To the whole image's camera, ``K`` with focal ``W + H`` and the principal point at the image centre:
   ``tz *= (W + H) / (w + h)`` (the box's size), then ``t = K^-1 K_box t`` and ``R = K^-1 K_box R`` (the
   nearest rotation to it, scipy's ``from_matrix``).
3. To MediaPipe's canonical face (:func:`reference_to_canonical`): the canonical face's points at the 68
   positions (:data:`CANONICAL_68`) are fitted to img2pose's reference by a similarity, ``p_ref = s0 R0 c + o``.
   With the face taken to be the canonical face's size (as the MediaPipe path does), one reference unit is
   ``1 / s0`` m, and the pose of the canonical face is ``R = R_img2pose R0``, ``t = (R_img2pose o + t) / s0``.
   Measured: ``s0`` = 9.36 units per metre (a unit is 10.7 cm; the reference face is 1.47 units wide), ``R0``
   within 1.5 degrees of 180 about x, RMS distance of the 51 inner points (brows, eyes, nose, mouth) 3.7 mm,
   2.3 % of the face's width.  The 17 jaw points are left out of the fit: dlib's jaw follows the visible outline,
   MediaPipe's vertices the skull (20 mm RMS apart).
4. Frame px: boxes through the letterbox, and :meth:`Img2Pose.camera` gives ``K`` in frame px (focal
   ``(W + H) / scale``, principal point the input centre mapped back), the camera the poses are in.

Then boxes scoring under ``min_score`` are dropped and the rest suppressed at ``nms_iou`` (the seed: 0.5).

Legend: N boxes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..camera import Intrinsics
from ..errors import InputError, ModelError
from ..runners import Runner, make_runner
from .person_detector import nms
from .yolo import Letterbox, letterbox, letterbox_plan

FAMILY = "img2pose"
OUTPUT_NAMES = ("boxes", "scores", "dofs")  # and "labels", unused (one class: face)
PUBLISHED_INPUT_WH = (1280, 720)  # the seed's static export
PAD_VALUE = 0
MIN_SCORE = 0.5
NMS_IOU = 0.5  # the seed filter's torchvision nms

POSE_MEAN = np.array([-0.0238, 0.0275, -0.0144, 0.0664, 0.2380, 3.4813])
POSE_STD = np.array([0.2353, 0.5395, 0.1767, 0.1320, 0.1358, 0.3663])
"""img2pose's WIDER_train_pose_mean_v1 / stddev_v1 (rotation vector, translation), as the seed filter has them."""

REFERENCE_68 = np.array([
    [-0.7425, -0.3662, 0.4207], [-0.7400, -0.1836, 0.5642], [-0.6339, 0.0051, 0.1404], [-0.5988, 0.1618, -0.0176],
    [-0.5455, 0.3358, -0.0198], [-0.4669, 0.4768, -0.1059], [-0.3721, 0.5836, -0.1078], [-0.2199, 0.6593, -0.3520],
    [-0.0184, 0.7019, -0.4312], [0.1829, 0.6588, -0.4117], [0.3413, 0.5932, -0.2251], [0.4535, 0.5002, -0.1201],
    [0.5530, 0.3364, -0.0101], [0.6051, 0.1617, 0.0017], [0.6010, 0.0050, 0.2182], [0.7230, -0.1830, 0.5235],
    [0.7264, -0.3669, 0.3882], [-0.5741, -0.5247, -0.1624], [-0.4902, -0.6011, -0.3335], [-0.3766, -0.6216, -0.4337],
    [-0.2890, -0.6006, -0.4818], [-0.1981, -0.5750, -0.5065], [0.1583, -0.5989, -0.5168], [0.2487, -0.6201, -0.4938],
    [0.3631, -0.6215, -0.4385], [0.4734, -0.6011, -0.3499], [0.5571, -0.5475, -0.1870], [-0.0182, -0.3929, -0.5284],
    [0.0050, -0.2602, -0.6295], [-0.0181, -0.1509, -0.7110], [-0.0181, -0.0620, -0.7463], [-0.1305, 0.0272, -0.5205],
    [-0.0647, 0.0506, -0.5580], [0.0049, 0.0500, -0.5902], [0.0480, 0.0504, -0.5732], [0.1149, 0.0275, -0.5329],
    [-0.4233, -0.3598, -0.2748], [-0.3783, -0.4226, -0.3739], [-0.2903, -0.4217, -0.3799], [-0.2001, -0.3991, -0.3561],
    [-0.2667, -0.3545, -0.3658], [-0.3764, -0.3536, -0.3441], [0.1835, -0.3995, -0.3551], [0.2501, -0.4219, -0.3741],
    [0.3411, -0.4223, -0.3760], [0.4082, -0.3987, -0.3338], [0.3410, -0.3550, -0.3626], [0.2488, -0.3763, -0.3652],
    [-0.2374, 0.2695, -0.4086], [-0.1736, 0.2257, -0.5026], [-0.0644, 0.1823, -0.5703], [0.0049, 0.2052, -0.5784],
    [0.0479, 0.1826, -0.5739], [0.1563, 0.2245, -0.5130], [0.2441, 0.2697, -0.4012], [0.1572, 0.3153, -0.4905],
    [0.0713, 0.3393, -0.5457], [0.0050, 0.3398, -0.5557], [-0.0846, 0.3391, -0.5393], [-0.1505, 0.3151, -0.4926],
    [-0.2374, 0.2695, -0.4086], [-0.0845, 0.2493, -0.5288], [0.0050, 0.2489, -0.5514], [0.0711, 0.2489, -0.5354],
    [0.2245, 0.2698, -0.4106], [0.0711, 0.2489, -0.5354], [0.0050, 0.2489, -0.5514], [-0.0645, 0.2489, -0.5364]])
"""img2pose's ``reference_3d_68_points_trans`` (the iBUG 68-point order), in its own units, to 4 decimals."""

CANONICAL_68 = np.array([
    162, 234, 93, 58, 172, 136, 149, 148, 152, 377, 378, 365, 397, 288, 323, 454, 389,  # jaw
    71, 63, 105, 66, 107, 336, 296, 334, 293, 301,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 82, 13, 312, 308, 317, 14, 87])  # lips
"""The MediaPipe face mesh vertex nearest each of the 68 iBUG points (the commonly used correspondence)."""
INNER_68 = np.arange(17, 68)
"""The 68 points fitted between the two faces: all but the jaw (see the module docstring)."""


@lru_cache(maxsize=1)
def reference_to_canonical() -> tuple[np.ndarray, float, np.ndarray, float]:
    """The similarity from MediaPipe's canonical face (metres) to img2pose's reference face: ``(R0 (3, 3), s0,
    o (3,), rms)`` with ``REFERENCE_68 ≈ s0 R0 c + o`` at the inner points, ``rms`` their RMS distance in
    metres (after the fit, taken back to canonical size)."""
    from ..face.geometry import canonical_face
    from ..face.head_pose import weighted_procrustes

    canonical = canonical_face().xyz_m[CANONICAL_68[INNER_68]]
    target = REFERENCE_68[INNER_68]
    rotation, scale, offset = weighted_procrustes(canonical, target, np.ones(len(INNER_68)))
    residual = scale * canonical @ rotation.T + offset - target
    for a in (rotation, offset):
        a.setflags(write=False)
    return rotation, scale, offset, float(np.sqrt(np.mean(np.sum(residual ** 2, axis=1)))) / scale


def image_camera(width: int, height: int) -> np.ndarray:
    """img2pose's (3, 3) camera matrix of a ``width`` x ``height`` image: focal ``width + height``, centred."""
    f = float(width + height)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def decode_dofs(boxes_xyxy: np.ndarray, dofs: np.ndarray, input_wh: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """The export's boxes (N, 4) input px and normalised per-box ``dofs`` (N, 6) → img2pose's pose of its
    reference face in the whole input's camera (:func:`image_camera`): rotations (N, 3, 3) and translations
    (N, 3) in reference units (steps 1-2 of the module docstring)."""
    from scipy.spatial.transform import Rotation

    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    dof = np.asarray(dofs, dtype=np.float64).reshape(-1, 6) * POSE_STD + POSE_MEAN
    if not len(dof):
        return np.zeros((0, 3, 3)), np.zeros((0, 3))
    width, height = input_wh
    f = float(width + height)
    size = boxes[:, 2:] - boxes[:, :2]
    centre = boxes[:, :2] + np.floor(size / 2.0)  # img2pose takes whole pixels: x0 + (w // 2)
    # K^-1 K_box is the identity but for its last column, ((c_box - c) / f, 1): it moves x and y by z times that.
    shift = (centre - [width / 2.0, height / 2.0]) / f  # (N, 2)
    t = dof[:, 3:].copy()
    t[:, 2] *= f / size.sum(axis=1)
    t[:, :2] += shift * t[:, 2:]
    r = Rotation.from_rotvec(dof[:, :3]).as_matrix()
    r[:, :2] += shift[:, :, None] * r[:, 2:3, :]
    return Rotation.from_matrix(r).as_matrix(), t  # from_matrix: the nearest rotation, as img2pose does


def to_canonical_pose(rotation: np.ndarray, translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """img2pose poses (N, 3, 3), (N, 3) reference units → the canonical face's: rotations (N, 3, 3) camera <-
    canonical and translations (N, 3) metres, at the canonical face's size (step 3 of the module docstring)."""
    r0, s0, offset, _ = reference_to_canonical()
    rotation = np.asarray(rotation, dtype=np.float64).reshape(-1, 3, 3)
    translation = np.asarray(translation, dtype=np.float64).reshape(-1, 3)
    return rotation @ r0, (rotation @ offset + translation) / s0


class Img2Pose:
    """A user's img2pose ONNX export as a face source (:class:`~rigcast.pipeline.face_sources.FaceSourceModel`):
    ``__call__(rgb)`` → :class:`~rigcast.pipeline.face_sources.FaceObservation` per face, best first.

    ``min_score``: lowest face score kept; ``nms_iou``: boxes overlapping more are one face.
    """

    family = FAMILY
    mesh_topology = None  # pose only: no dense mesh

    def __init__(self, runner: Runner, min_score: float = MIN_SCORE, nms_iou: float = NMS_IOU):
        if not 0.0 <= min_score <= 1.0 or not 0.0 < nms_iou <= 1.0:
            raise ValueError(f"min_score must be in [0, 1] and nms_iou in (0, 1], got {min_score} and {nms_iou}")
        self.runner = runner
        self.min_score = float(min_score)
        self.nms_iou = float(nms_iou)
        inputs = [(s.name, s.shape) for s in runner.inputs]
        outputs = {s.name: s.shape for s in runner.outputs}
        expected = ("an img2pose export: one input (3, H, W) or (1, 3, H, W) and outputs named "
                    f"{', '.join(OUTPUT_NAMES)} (and labels)")
        if len(inputs) != 1 or not set(OUTPUT_NAMES) <= set(outputs):
            raise ModelError(f"expected {expected}, found inputs {inputs} and outputs {sorted(outputs.items())}")
        (self._input,) = runner.inputs
        shape = tuple(self._input.shape)
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[0] not in (1, None)) or shape[-3] not in (3, None):
            raise ModelError(f"expected {expected}, found input {self._input.name!r} {shape}")
        self.batched = len(shape) == 4
        self.dynamic = shape[-1] is None or shape[-2] is None
        self.input_wh = None if self.dynamic else (int(shape[-1]), int(shape[-2]))

    def plan(self, width: int, height: int) -> Letterbox:
        """Where a ``width`` x ``height`` frame goes in the input: letterboxed into a fixed input, as it is into a
        dynamic one."""
        if width < 1 or height < 1:
            raise InputError(f"expected a frame of at least 1x1 px, got {width}x{height}")
        if self.dynamic:
            return Letterbox(scale_xy=(1.0, 1.0), pad_xy=(0, 0), input_wh=(int(width), int(height)))
        return letterbox_plan((width, height), self.input_wh)

    def camera(self, width: int, height: int) -> Intrinsics:
        """The camera, in frame px, that the poses of a ``width`` x ``height`` frame are in: img2pose's camera of
        the input (:func:`image_camera`) taken back through the letterbox."""
        plan = self.plan(width, height)
        (sx, sy), (px, py), (in_w, in_h) = plan.scale_xy, plan.pad_xy, plan.input_wh
        f = float(in_w + in_h)
        return Intrinsics(f / sx, f / sy, (in_w / 2.0 - px) / sx, (in_h / 2.0 - py) / sy, int(width), int(height),
                          source=FAMILY)

    def preprocess(self, rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """Frame (H, W, 3) uint8 RGB → the input tensor (3, h, w) or (1, 3, h, w) float32 in [0, 1], and its plan."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        plan = self.plan(rgb.shape[1], rgb.shape[0])
        image = rgb if self.dynamic else letterbox(rgb, plan, PAD_VALUE)
        chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) * np.float32(1.0 / 255.0)
        return (chw[None] if self.batched else chw), plan

    def postprocess(self, outputs: dict[str, np.ndarray], plan: Letterbox) -> list:
        """The export's outputs → observations in frame px and :meth:`camera`'s camera, best first."""
        from ..pipeline.face_sources import FaceObservation

        boxes = np.asarray(outputs["boxes"], dtype=np.float64)
        scores = np.asarray(outputs["scores"], dtype=np.float64)
        dofs = np.asarray(outputs["dofs"], dtype=np.float64)
        n = len(boxes)
        if boxes.shape != (n, 4) or dofs.shape != (n, 6) or scores.reshape(-1).shape != (n,) or scores.ndim > 2:
            raise ModelError(f"expected img2pose outputs boxes (N, 4), scores (N,) and dofs (N, 6), found "
                             f"{boxes.shape}, {scores.shape} and {dofs.shape}")
        scores = scores.reshape(-1)
        keep = (scores >= self.min_score) & np.all(np.isfinite(boxes), axis=1) & np.all(np.isfinite(dofs), axis=1) \
            & np.all(boxes[:, 2:] > boxes[:, :2], axis=1)
        boxes, scores, dofs = boxes[keep], scores[keep], dofs[keep]
        rotation, translation = to_canonical_pose(*decode_dofs(boxes, dofs, plan.input_wh))
        frame_boxes = plan.to_frame(boxes)
        kept = [group[0] for group in nms(frame_boxes, scores, self.nms_iou)] if len(boxes) else []
        return [FaceObservation(frame_boxes[k], scores[k], rotation[k], translation[k]) for k in kept]

    def __call__(self, rgb: np.ndarray) -> list:
        tensor, plan = self.preprocess(rgb)
        return self.postprocess(self.runner({self._input.name: tensor}), plan)


def open_img2pose(path, device: str = "auto", strict_device: bool = False, min_score: float = MIN_SCORE,
                  nms_iou: float = NMS_IOU) -> Img2Pose:
    """The img2pose export at ``path`` (ONNX, or a TensorRT engine built from it) on ``device``."""
    return Img2Pose(make_runner(path, device=device, strict_device=strict_device), min_score=min_score,
                    nms_iou=nms_iou)
