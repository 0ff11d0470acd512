"""Face mesh: frame + ROI → 468 face landmarks, plus 10 iris landmarks (the 478-point refined set).

Rebuilt from MediaPipe's ``face_landmark_cpu.pbtxt``,
``face_landmark_landmarks_to_roi.pbtxt``, ``iris_landmark_cpu.pbtxt`` and
``iris_landmark_landmarks_to_roi.pbtxt`` around the ONNX models:

1. crop the rotated face ROI to 192 x 192 (bilinear, edge replication),
   values in [0, 1];
2. run; the outputs are 468 ``(x, y, z)`` in crop px and a face-presence
   logit; the face is present when ``sigmoid(logit) >= min_score`` (0.5, as
   MediaPipe), otherwise there is no result at all;
3. project x, y back through the ROI to image px; z scales like x
   (``z / 192 * roi.size``), relative depth with the face centre near 0 and
   smaller values nearer the camera;
4. with an iris model: one eye ROI per eye from the mesh's eye corners
   (33 → 133 and 362 → 263), centred between them, rotated so that the
   corner-to-corner vector is horizontal, side 2.3 x the corners' longer
   axis-aligned extent.  Crop 64 x 64 the same way; the model knows one eye
   only, so the 362/263 eye is mirrored before the model and its outputs
   mirrored back.  The model gives 71 eye-contour/brow points and 5 iris
   points (centre, then the edges) per eye.  The embedded model takes a
   dynamic batch, so the eyes of every face in the frame go through it in
   one call (two eyes: about 10 % less time than two calls, and the same
   values); a model fixed at batch 1 is called once per eye;
5. the refined set: the 10 iris points are appended, 468..472 for the
   33/133 eye (the subject's right eye, image left in a frontal view),
   473..477 for the 362/263 eye, each with the mean z of its eye's 16 lid
   points.  This is the layout of MediaPipe's ``refine_landmarks=True``.
   When an eye's crop is at least ``REFINE_EYE_MIN_PX`` wide, its 71
   contour points also replace the mesh's x, y at ``EYE_CONTOUR_INDICES``
   (z stays the mesh's, as in MediaPipe's attention model).  Measured
   against that model: on the astronaut (46-px eye crops) the iris model's
   lids are twice as close as the mesh's (0.30 % vs 0.62 % of the face);
   on the carphone clip (23-px crops, a rolled head) they are worse (up to
   1.8 % vs 0.6 %) and its brow points up to 10 % off, so small eyes keep
   the mesh's own contour.

The attention model.  MediaPipe's ``face_landmark_with_attention`` (what
FaceMesh runs with ``refine_landmarks=True``) gives the refined set from one
call on the same 192 x 192 crop: besides the 468-point mesh it re-reads 80
lip points, the 71 points of each eye and the 5 iris points of each eye
from crops of its own feature map.  They replace the mesh's x, y at
``LIP_INDICES`` and ``EYE_CONTOUR_INDICES`` (z stays the mesh's) and the
irises are appended as in step 5, exactly as MediaPipe's
``tensors_to_face_landmarks_with_attention`` does.  A landmarker built on it
takes no iris model, and its next ROI comes from the refined points, as in
MediaPipe.  It is the default (``rigcast.pipeline.faces.make_face_models``):
one model call instead of three, and the reference's own model.

Tracking.  The next frame's ROI comes from the 468-point mesh before the
irises refine it (``FaceLandmarks.tracking_roi``), as in MediaPipe's iris
graph: tracking never waits for the iris model, so a video pipeline can run
the mesh of frame t + 1 while the irises of frame t are computed.

Confidence.  ``score`` is the model's face-presence probability.  ``conf``
lowers it for what the model cannot see well: it is ``score`` times the
fraction of the 468 mesh points inside the frame, times
``min(1, face size / RELIABLE_FACE_PX)``.  A face half out of the frame or a
20-px face therefore has ``conf`` around 0.5 or below; ``conf <
LOW_CONFIDENCE`` marks a result to treat with care.

Legend: P = 468 or 478 landmarks, E = 71 eye-contour points, I = 5 iris points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ModelError
from ..runners import Runner
from .face_detector import rect_roi
from .roi import Roi

NUM_MESH = 468
NUM_IRIS = 10
NUM_REFINED = NUM_MESH + NUM_IRIS
NUM_EYE_CONTOUR = 71
NUM_IRIS_PER_EYE = 5
MESH_INPUT_SIZE = 192
IRIS_INPUT_SIZE = 64

LANDMARK_ROI_SCALE = 1.5  # face_landmark_landmarks_to_roi.pbtxt
ROI_ALIGNMENT = (33, 263)  # outer eye corners: the tracking ROI's rotation vector
EYE_ROI_SCALE = 2.3  # iris_landmark_landmarks_to_roi.pbtxt
REFINE_EYE_MIN_PX = 40.0  # eye crops smaller than this (px side) keep the mesh's eye contour (see above)
# (start corner, end corner, mirrored) for the two eyes, in the order their irises are appended.
EYE_CORNERS = ((33, 133, False), (362, 263, True))

FACE_LANDMARK_MODELS = {
    "attention": ("face_landmark_with_attention",),
    "mesh+iris": ("face_landmark", "iris_landmark"),
    "mesh": ("face_landmark",),
}
"""What ``rigcast.pipeline.faces.make_face_models``' ``landmarks`` names: the embedded models it loads.
"attention" (the default) is MediaPipe's refine_landmarks model, the 478-point set in one call; "mesh+iris"
the 468-point mesh plus the iris model on each eye (the same 478 points, three model calls, irises on the
worker thread of ``FaceAnalyzer.submit``); "mesh" the 468 points alone.  Defined here, away from the
pipeline's heavier imports, so that the command line can offer the names without loading the tracker."""

RELIABLE_FACE_PX = 48.0  # faces smaller than this (landmark box, px) get a proportionally lower conf
LOW_CONFIDENCE = 0.6

# Mesh indices of the iris model's 71 eye points, for the 33/133 eye; in MediaPipe's order
# (update_face_landmarks_calculator.cc): lid lower contour, upper contour, then halos 2..5 (brows).
_EYE_33 = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
           130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
           226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
           35, 124, 46, 53, 52, 65,
           143, 111, 117, 118, 119, 120, 121, 128, 245, 156, 70, 63, 105, 66, 107, 55, 193)
# ... and for the 362/263 eye, point for point the mirror image.
_EYE_263 = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
            359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
            446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
            265, 353, 276, 283, 282, 295,
            372, 340, 346, 347, 348, 349, 350, 357, 465, 383, 300, 293, 334, 296, 336, 285, 417)
EYE_CONTOUR_INDICES = (np.array(_EYE_33, dtype=np.int64), np.array(_EYE_263, dtype=np.int64))
# Mesh indices of the attention model's 80 lip points (tensors_to_face_landmarks_with_attention.pbtxt):
# outer lower and upper contour, inner, semi-outer and semi-inner, each lower (corner to corner) then upper.
LIP_INDICES = np.array([
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
    62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407], dtype=np.int64)
NUM_LIPS = len(LIP_INDICES)
IRIS_MIRROR_ORDER = np.array([0, 3, 2, 1, 4])  # centre, right, top, left, bottom → swap right and left
NUM_LID_POINTS = 16  # the first 16 contour points are the eyelid; iris z is their mean
# The attention model's refinements in the order FaceLandmarker.postprocess stacks them after the mesh:
# lips, the 33/133 eye, the 362/263 eye, then the two irises in the same order.
_ATTENTION_PARTS = ("lips", "left_eye", "right_eye", "left_iris", "right_iris")
_LIPS_AT = slice(NUM_MESH, NUM_MESH + NUM_LIPS)
_EYES_AT = (slice(NUM_MESH + NUM_LIPS, NUM_MESH + NUM_LIPS + NUM_EYE_CONTOUR),
            slice(NUM_MESH + NUM_LIPS + NUM_EYE_CONTOUR, NUM_MESH + NUM_LIPS + 2 * NUM_EYE_CONTOUR))
_IRISES_AT = slice(NUM_MESH + NUM_LIPS + 2 * NUM_EYE_CONTOUR, None)
_LID_INDICES = np.concatenate([ids[:NUM_LID_POINTS] for ids in EYE_CONTOUR_INDICES])
_INV_255 = np.float32(1.0 / 255.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-min(max(float(x), -80.0), 80.0)))


@dataclass(frozen=True)
class FaceLandmarks:
    """One face's landmarks from one ROI.

    ``xy`` (P, 2) image px, P = 478 with irises (468..472 the image-left eye's
    iris centre and edges, 473..477 the other's) or 468 without; ``z`` (P,)
    relative depth in the same px scale, smaller is nearer; ``score`` the
    face-presence probability; ``conf`` in [0, 1], ``score`` lowered for
    faces cut by the frame border or too small (see the module docstring);
    ``roi`` the ROI the mesh came from; ``tracking_roi`` the next frame's ROI
    when it was fixed before the irises refined the eye contours (see
    :meth:`next_roi`), None to derive it from ``xy``.
    """

    xy: np.ndarray
    z: np.ndarray
    score: float
    conf: float
    roi: Roi
    tracking_roi: Roi | None = None

    def __post_init__(self) -> None:
        xy = np.array(self.xy, dtype=np.float64)
        z = np.array(self.z, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[0] not in (NUM_MESH, NUM_REFINED) or xy.shape[1] != 2:
            raise ValueError(f"xy must be (P, 2) with P={NUM_MESH} or {NUM_REFINED}, got {xy.shape}")
        if z.shape != (xy.shape[0],):
            raise ValueError(f"z must be ({xy.shape[0]},) like xy, got {z.shape}")
        if not (np.isfinite(xy).all() and np.isfinite(z).all()):
            raise ValueError("xy and z must be finite")
        for name, lo_hi in (("score", self.score), ("conf", self.conf)):
            if not 0.0 <= float(lo_hi) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {lo_hi}")
        if not isinstance(self.roi, Roi):
            raise ValueError(f"roi must be a Roi, got {type(self.roi).__name__}")
        if self.tracking_roi is not None and not isinstance(self.tracking_roi, Roi):
            raise ValueError(f"tracking_roi must be a Roi or None, got {type(self.tracking_roi).__name__}")
        for a in (xy, z):
            a.setflags(write=False)
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "z", z)
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "conf", float(self.conf))

    @property
    def has_iris(self) -> bool:
        return self.xy.shape[0] == NUM_REFINED

    @property
    def is_reliable(self) -> bool:
        """``conf >= LOW_CONFIDENCE``."""
        return self.conf >= LOW_CONFIDENCE

    def box_xyxy(self) -> np.ndarray:
        """(4,) tight bound ``[x0, y0, x1, y1]`` of the 468 mesh points (read-only; computed once)."""
        box = self.__dict__.get("_box_xyxy")
        if box is None:  # the frozen instance caches it beside its fields (tracking asks several times)
            mesh = self.xy[:NUM_MESH]
            box = np.concatenate([mesh.min(axis=0), mesh.max(axis=0)])
            box.setflags(write=False)
            self.__dict__["_box_xyxy"] = box
        return box

    def size_px(self) -> float:
        """The longer side of :meth:`box_xyxy`, px."""
        box = self.box_xyxy()
        return float(max(box[2] - box[0], box[3] - box[1]))

    def next_roi(self) -> Roi:
        """MediaPipe's ``FaceLandmarkLandmarksToRoi`` for tracking: the mesh's bounding box centre, side
        1.5 x its long side, rotated so that the outer eye corners 33 → 263 are horizontal.

        Refined landmarks keep the ROI of the mesh they refined (``tracking_roi``), as in MediaPipe's
        iris graph, where the face tracking loop never sees the iris model's eye contours: so the next
        frame's mesh can start before this frame's irises are done (``FaceAnalyzer.submit``)."""
        if self.tracking_roi is not None:
            return self.tracking_roi
        roi = self.__dict__.get("_next_roi")
        if roi is None:
            roi = rect_roi(self.box_xyxy(), self.xy[ROI_ALIGNMENT[0]], self.xy[ROI_ALIGNMENT[1]], LANDMARK_ROI_SCALE)
            self.__dict__["_next_roi"] = roi
        return roi


def eye_rois(mesh_xy: np.ndarray) -> tuple[Roi, Roi]:
    """The iris model's ROIs from mesh points ``mesh_xy`` (>= 468, 2): the 33/133 eye, then the 362/263 eye.

    ``IrisLandmarkLandmarksToRoi``: the centre of the two corners, rotation
    of the corner-to-corner vector to horizontal, side 2.3 x the longer side
    of the corners' axis-aligned box.
    """
    out = []
    for start, end, _ in EYE_CORNERS:
        a, b = mesh_xy[start], mesh_xy[end]
        box = np.concatenate([np.minimum(a, b), np.maximum(a, b)])
        out.append(rect_roi(box, a, b, EYE_ROI_SCALE))
    return out[0], out[1]


def _iris_input(runner: Runner) -> tuple[str, int, bool]:
    """The iris model's input name, side, and whether it takes a batch of both eyes (batch dimension None)."""
    if len(runner.inputs) != 1:
        raise ModelError(f"iris landmark model must have 1 input, found {len(runner.inputs)}")
    spec = runner.inputs[0]
    shape = tuple(spec.shape)
    if (len(shape) != 4 or shape[0] not in (1, None) or shape[3] != 3 or shape[1] != shape[2]
            or shape[1] is None):
        raise ModelError(f"iris landmark input must be (1, N, N, 3) or (None, N, N, 3), found {shape}")
    return spec.name, int(shape[1]), shape[0] is None


def _square_input(runner: Runner, label: str) -> tuple[str, int]:
    if len(runner.inputs) != 1:
        raise ModelError(f"{label} model must have 1 input, found {len(runner.inputs)}")
    spec = runner.inputs[0]
    shape = tuple(spec.shape)
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or shape[1] != shape[2] or shape[1] is None:
        raise ModelError(f"{label} input must be (1, N, N, 3), found {shape}")
    return spec.name, int(shape[1])


class FaceLandmarker:
    """The face mesh (and irises) of the face in an ROI; a pure function of (frame, ROI) once built.

    ``face_runner`` is the 468-point mesh model or the attention model (which
    gives the 478-point refined set itself; see the module docstring).  With
    the mesh model, ``iris_runner=None`` gives the 468-point mesh only.
    ``refine_eyes``: with the iris model, also move the 71 eye-contour points
    of eyes whose crop is at least ``REFINE_EYE_MIN_PX`` to its estimate.
    """

    def __init__(self, face_runner: Runner, iris_runner: Runner | None = None, min_score: float = 0.5,
                 refine_eyes: bool = True):
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        self.min_score = float(min_score)
        self.refine_eyes = bool(refine_eyes)
        self.face_runner = face_runner
        self._face_input, self.input_size = _square_input(face_runner, "face landmark")
        self._outputs = _face_outputs(face_runner)
        self.attention = "lips" in self._outputs
        self._mesh_name, self._flag_name = self._outputs["mesh"], self._outputs["flag"]
        if self.attention and iris_runner is not None:
            raise ModelError("the attention face model refines eyes and irises itself; build its landmarker "
                             "without an iris model")
        self.iris_runner = iris_runner
        if iris_runner is not None:
            self._iris_input, self.iris_input_size, self._iris_batched = _iris_input(iris_runner)
            by_size = {int(np.prod([d for d in s.shape if d is not None])): s.name for s in iris_runner.outputs}
            if 3 * NUM_EYE_CONTOUR not in by_size or 3 * NUM_IRIS_PER_EYE not in by_size:
                raise ModelError(f"iris model must output {3 * NUM_EYE_CONTOUR} contour and "
                                 f"{3 * NUM_IRIS_PER_EYE} iris values, found "
                                 f"{[tuple(s.shape) for s in iris_runner.outputs]}")
            self._contour_name = by_size[3 * NUM_EYE_CONTOUR]
            self._iris_name = by_size[3 * NUM_IRIS_PER_EYE]

    # -- stages --------------------------------------------------------------

    def preprocess(self, rgb: np.ndarray, roi: Roi) -> np.ndarray:
        """Frame (H, W, 3) uint8 → (1, 192, 192, 3) float32 in [0, 1], the ROI cropped with edge replication."""
        crop = roi.crop(rgb, self.input_size, border="replicate")
        return np.multiply(crop, _INV_255, dtype=np.float32)[None]  # one pass; the same as astype then multiply

    def postprocess(self, outputs: dict[str, np.ndarray], roi: Roi) -> tuple[float, np.ndarray, np.ndarray]:
        """Model outputs for ``roi`` → (face-presence probability, xy (P, 2) image px, z (P,) px): the mesh, P =
        468, or with the attention model the refined set, P = 478 (lips and eyes replace the mesh's x, y, the
        irises are appended with their lids' mean z).  All points go back through the ROI in one transform."""
        n = self.input_size
        score = _sigmoid(outputs[self._flag_name].reshape(-1)[0])
        raw = outputs[self._mesh_name].reshape(NUM_MESH, 3)
        parts = [raw[:, :2]]
        if self.attention:
            parts += [outputs[self._outputs[k]].reshape(-1, 2) for k in _ATTENTION_PARTS]
        image = roi.crop_to_image(np.concatenate(parts, dtype=np.float64), n)
        z = raw[:, 2].astype(np.float64) / n * roi.size
        if not self.attention:
            return score, image, z
        xy = image[:NUM_MESH]
        xy[LIP_INDICES] = image[_LIPS_AT]
        xy[EYE_CONTOUR_INDICES[0]], xy[EYE_CONTOUR_INDICES[1]] = image[_EYES_AT[0]], image[_EYES_AT[1]]
        lids = z[_LID_INDICES].reshape(2, NUM_LID_POINTS).mean(axis=1)
        return score, np.concatenate([xy, image[_IRISES_AT]]), np.concatenate([z, np.repeat(lids, NUM_IRIS_PER_EYE)])

    def preprocess_eye(self, rgb: np.ndarray, roi: Roi, mirrored: bool) -> np.ndarray:
        """Frame → (1, 64, 64, 3) float32 in [0, 1]: one eye, mirrored left-right when ``mirrored``."""
        crop = roi.crop(rgb, self.iris_input_size, border="replicate")
        if mirrored:
            crop = crop[:, ::-1]
        return np.multiply(crop, _INV_255, dtype=np.float32)[None]

    def postprocess_eye(self, outputs: dict[str, np.ndarray], roi: Roi,
                        mirrored: bool) -> tuple[np.ndarray, np.ndarray]:
        """Iris-model outputs → eye contour (71, 2) and iris (5, 2) in image px."""
        n = self.iris_input_size
        contour = np.asarray(outputs[self._contour_name], dtype=np.float64).reshape(NUM_EYE_CONTOUR, 3)[:, :2]
        iris = np.asarray(outputs[self._iris_name], dtype=np.float64).reshape(NUM_IRIS_PER_EYE, 3)[:, :2]
        if mirrored:  # undo the mirror: crop x → n - x
            contour = np.stack([n - contour[:, 0], contour[:, 1]], axis=1)
            # The contour's order is mirror-symmetric by design (EYE_CONTOUR_INDICES), but the iris edges are
            # named by side: the model's "right edge" of the mirrored eye is the image-left edge.  Swap them so
            # that 469/474 are both the image-right edge and 471/476 both the image-left edge, as in MediaPipe's
            # refined set.
            iris = np.stack([n - iris[:, 0], iris[:, 1]], axis=1)[IRIS_MIRROR_ORDER]
        image = roi.crop_to_image(np.concatenate([contour, iris]), n)  # one transform for both
        return image[:NUM_EYE_CONTOUR], image[NUM_EYE_CONTOUR:]

    def refine_all(self, rgb: np.ndarray, faces: list[FaceLandmarks]) -> list[FaceLandmarks]:
        """Meshes (468 points) of ``faces`` in ``rgb`` → the refined sets (478 points), same order.

        Every eye of every face goes through the iris model in one batch
        when the model takes one (one call per eye otherwise); each face
        keeps its mesh's ``next_roi()``, see :meth:`FaceLandmarks.next_roi`.
        """
        if self.iris_runner is None:
            raise ModelError("refine_all needs an iris model; this landmarker was built without one")
        if any(f.has_iris for f in faces):
            raise InputError("refine_all expects 468-point meshes, got a face that already has irises")
        rois = [roi for f in faces for roi in eye_rois(f.xy)]
        mirrored = [m for _ in faces for (_, _, m) in EYE_CORNERS]
        crops = [self.preprocess_eye(rgb, roi, m) for roi, m in zip(rois, mirrored)]
        if not crops:
            return []
        if self._iris_batched:
            batch = self.iris_runner({self._iris_input: np.concatenate(crops)})
            per_eye = [{name: value[i:i + 1] for name, value in batch.items()} for i in range(len(crops))]
        else:
            per_eye = [self.iris_runner({self._iris_input: crop}) for crop in crops]
        refined = []
        for k, face in enumerate(faces):
            xy, z = face.xy.copy(), face.z
            iris_xy, iris_z = [], []
            for e, contour_ids in enumerate(EYE_CONTOUR_INDICES):
                i = 2 * k + e
                contour, iris = self.postprocess_eye(per_eye[i], rois[i], mirrored[i])
                iris_xy.append(iris)
                iris_z.append(np.full(NUM_IRIS_PER_EYE, z[contour_ids[:NUM_LID_POINTS]].mean()))
                if self.refine_eyes and rois[i].size >= REFINE_EYE_MIN_PX:
                    xy[contour_ids] = contour
            refined.append(FaceLandmarks(xy=np.concatenate([xy, *iris_xy]), z=np.concatenate([z, *iris_z]),
                                         score=face.score, conf=face.conf, roi=face.roi,
                                         tracking_roi=face.next_roi()))
        return refined

    def mesh(self, rgb: np.ndarray, roi: Roi, min_score: float | None = None) -> FaceLandmarks | None:
        """One call of the face model on ``roi`` of ``rgb`` (H, W, 3) uint8: the 468-point mesh (the refined
        478 points with the attention model), or None when no face is there (face-presence probability below
        ``min_score``, the landmarker's own by default)."""
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 1:
            raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        if not isinstance(roi, Roi):
            raise InputError(f"roi must be a Roi, got {type(roi).__name__}")
        rgb = np.ascontiguousarray(rgb)
        outputs = self.face_runner({self._face_input: self.preprocess(rgb, roi)})
        score, xy, z = self.postprocess(outputs, roi)
        if not score >= (self.min_score if min_score is None else min_score) or not (np.isfinite(xy).all() and np.isfinite(z).all()):
            return None
        height, width = rgb.shape[:2]
        return FaceLandmarks(xy=xy, z=z, score=score, conf=face_confidence(score, xy[:NUM_MESH], width, height),
                             roi=roi)

    def __call__(self, rgb: np.ndarray, roi: Roi) -> FaceLandmarks | None:
        """Landmarks of the face in ``roi`` of ``rgb`` (H, W, 3) uint8, or None when no face is there:
        :meth:`mesh`, then :meth:`refine_all` when there is an iris model."""
        face = self.mesh(rgb, roi)
        if face is None or self.iris_runner is None:
            return face
        return self.refine_all(np.ascontiguousarray(rgb), [face])[0]


def _face_outputs(runner: Runner) -> dict[str, str]:
    """Output names of a face model by role: "mesh" (468 x 3 values) and "flag" (1); for the attention
    model also "lips" (80 x 2) and "left_eye"/"right_eye" (71 x 2), "left_iris"/"right_iris" (5 x 2), told
    apart by their names (MediaPipe's left eye is the 33/133 one)."""
    by_size: dict[int, list[str]] = {}
    for spec in runner.outputs:
        by_size.setdefault(int(np.prod([d for d in spec.shape if d is not None])), []).append(spec.name)
    found = {}
    if len(by_size.get(3 * NUM_MESH, ())) == 1 and len(by_size.get(1, ())) == 1:
        found = {"mesh": by_size[3 * NUM_MESH][0], "flag": by_size[1][0]}
    if len(runner.outputs) == 2 and found:
        return found
    if found and len(runner.outputs) == 7 and len(by_size.get(2 * NUM_LIPS, ())) == 1:
        found["lips"] = by_size[2 * NUM_LIPS][0]
        for part, size in (("eye", 2 * NUM_EYE_CONTOUR), ("iris", 2 * NUM_IRIS_PER_EYE)):
            for side in ("left", "right"):
                names = [n for n in by_size.get(size, ()) if f"{side}_{part}" in n.lower()]
                if len(names) == 1:
                    found[f"{side}_{part}"] = names[0]
        if len(found) == 7:
            return found
    raise ModelError(f"face landmark model must output {3 * NUM_MESH} mesh values and 1 face flag (the mesh "
                     f"model), plus {2 * NUM_LIPS} lip values and {2 * NUM_EYE_CONTOUR} and {2 * NUM_IRIS_PER_EYE} "
                     f"per eye named left_/right_eye and _iris (the attention model); found "
                     f"{[(o.name, tuple(o.shape)) for o in runner.outputs]}")


def face_confidence(score: float, mesh_xy: np.ndarray, width: int, height: int) -> float:
    """``score`` x (fraction of ``mesh_xy`` (468, 2) inside the ``width`` x ``height`` frame)
    x ``min(1, mesh size / RELIABLE_FACE_PX)``, in [0, 1]."""
    (x0, y0), (x1, y1) = mesh_xy.min(axis=0).tolist(), mesh_xy.max(axis=0).tolist()
    if x0 >= 0 and y0 >= 0 and x1 < width and y1 < height:
        inside = 1.0
    else:
        x, y = mesh_xy[:, 0], mesh_xy[:, 1]
        inside = float(np.count_nonzero((x >= 0) & (x < width) & (y >= 0) & (y < height))) / len(mesh_xy)
    size = max(x1 - x0, y1 - y0, 0.0)
    return min(max(float(score) * inside * min(1.0, size / RELIABLE_FACE_PX), 0.0), 1.0)
