"""3DDFA_V2 from a user's folder: FaceBoxes, then a MobileNet 3DMM regressor, then the BFM dense mesh.

Nothing is downloaded; the folder is the user's copy of 3DDFA_V2's published
files (:data:`FILES`, found at the folder's top or where a 3DDFA_V2 checkout
keeps them, ONNX exported as 3DDFA_V2's ``utils/onnx.py``,
``FaceBoxes/onnx.py`` and ``bfm/bfm_onnx.py`` export them).  Its pickles are
read by :func:`rigcast.formats.safe_pickle.load_numpy_pickle`, never by
``pickle.load``.

Per face, as 3DDFA_V2's ``TDDFA_ONNX.py`` runs it:

1. the FaceBoxes box (:mod:`.faceboxes`) → a square ROI (:func:`roi_from_box`,
   ``parse_roi_box_from_bbox``): side ``int(1.58 x mean(box w, h))``, centred
   on the box centre moved down by 0.14 x that mean;
2. the ROI is cut from the BGR frame, zero outside it (``crop_img``: corners
   rounded to whole px), resized to 120 x 120 (bilinear), ``(x - 127.5) / 128``,
   NCHW: input ``input`` (1, 3, 120, 120), output ``output`` (1, 62);
3. the 62 outputs, times the published ``std`` plus ``mean``
   (``param_mean_std_62d_120x120.pkl``), are the 3DMM parameters: 12 pose
   (``P`` (3, 4) row-major: a scaled rotation ``s R`` and an offset ``o``),
   40 shape and 10 expression coefficients;
4. the BFM (``bfm_noneck_v3.pkl``: ``u`` (3V, 1) mean, ``w_shp`` (3V, >=40),
   ``w_exp`` (3V, >=10), x, y, z interleaved per vertex; ``keypoints`` (204,)
   ids into those 3V rows, the 68 landmarks; triangles (3, F) from ``tri.pkl``
   beside it, or the pickle's ``tri``) gives the mesh
   ``X = u + w_shp a_shp + w_exp a_exp`` (V = 38365 vertices, F = 76073
   triangles), in micrometres (``BFM_UNIT_M``), and ``P X`` its vertices in
   the 120 px ROI, y up; with ``bfm_noneck_v3.onnx`` in the folder the BFM
   ONNX head (inputs ``R`` (3, 3), ``offset`` (3, 1), ``alpha_shp`` (40, 1),
   ``alpha_exp`` (10, 1), output (3, V)) computes ``P X`` instead;
5. ROI → frame px (:func:`roi_to_image`, ``similar_transform``): x ← x - 1,
   y ← 120 - y, then scaled to the ROI's size and moved to its corner; z
   scaled by the mean of the two scales (3DDFA_V2 then shifts z to a minimum
   of 0, a depth for its renderer only).

Head pose in rigcast's camera (:func:`camera_pose`).  The BFM frame has the
canonical face's axes (x towards the subject's left, y up, z out of the
face): 3DDFA_V2's frontal face has ``R = I``.  3DDFA_V2's image frame is y up
and z towards the viewer, OpenCV's y down and z forward, so
``R_cam = diag(1, -1, -1) R`` with ``R`` the rotation nearest ``P[:, :3] / s``
(``utils/pose.py``'s ``P2sRt`` normalises its rows).  The model is a scaled
orthographic camera; in a pinhole camera of focal ``f`` px the face, of
metric size, is at depth ``Z = f BFM_UNIT_M / s_px`` (``s_px`` = the pose
scale in frame px per micrometre), and the BFM origin at the ray through its
image position.  The posed mesh, ``R_cam X BFM_UNIT_M + t``, then reprojects
onto 3DDFA_V2's own vertices up to the weak-perspective approximation
(exactly at the origin; off by about depth relief / Z elsewhere).

MediaPipe's canonical face in the BFM (:func:`canonical_in_bfm`): the
similarity (rotation, scale, offset) that best maps 13 canonical landmarks onto
the BFM mean's corresponding 68-point landmarks (:data:`MEDIAPIPE_FROM_68`),
so that a BFM pose also places the canonical face (what the Take's head pose
and the mask need).

Legend: V BFM vertices, F triangles, K = 50 coefficients, N faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..camera import Intrinsics
from ..errors import InputError, ModelError
from ..formats.safe_pickle import load_numpy_pickle
from ..runners import Runner
from .faceboxes import FaceBox, FaceBoxesDetector

INPUT_SIZE = 120
INPUT_MEAN, INPUT_SCALE = 127.5, 128.0
NUM_POSE, NUM_SHAPE, NUM_EXP = 12, 40, 10
NUM_PARAMS = NUM_POSE + NUM_SHAPE + NUM_EXP
ROI_SCALE, ROI_SHIFT = 1.58, 0.14  # parse_roi_box_from_bbox
BFM_UNIT_M = 1e-6  # BFM 2009 is in micrometres
FLIP_YZ = np.diag([1.0, -1.0, -1.0])
FLIP_YZ.setflags(write=False)

# The published files, each by name: found at the folder's top or at its path in a 3DDFA_V2 checkout.
FILES = {
    "detector": ("FaceBoxesProd.onnx", "FaceBoxes/weights/FaceBoxesProd.onnx"),
    "regressor": ("mb1_120x120.onnx", "weights/mb1_120x120.onnx", "mb05_120x120.onnx", "weights/mb05_120x120.onnx"),
    "param_stats": ("param_mean_std_62d_120x120.pkl", "configs/param_mean_std_62d_120x120.pkl"),
    "bfm": ("bfm_noneck_v3.pkl", "configs/bfm_noneck_v3.pkl", "bfm_noneck_v3_slim.pkl",
            "configs/bfm_noneck_v3_slim.pkl"),
    "triangles": ("tri.pkl", "configs/tri.pkl"),  # optional: the BFM pickle's own ``tri`` otherwise
    "bfm_onnx": ("bfm_noneck_v3.onnx", "configs/bfm_noneck_v3.onnx"),  # optional: numpy otherwise
}
OPTIONAL_FILES = ("triangles", "bfm_onnx")

# 68-point (iBUG, 0-based) landmark → MediaPipe face mesh landmark: chin, nose bridge top, nose tip, subnasale,
# eye corners (outer, inner; the subject's right eye first), mouth corners, lip middles.
MEDIAPIPE_FROM_68 = {8: 152, 27: 168, 30: 4, 33: 2, 36: 33, 39: 133, 42: 362, 45: 263, 48: 61, 54: 291,
                     51: 0, 57: 17, 62: 13}


def find_files(folder: str | Path) -> dict[str, Path | None]:
    """The published files in ``folder`` by role (:data:`FILES`); optional ones None when absent.  Raises
    :class:`InputError` naming a missing required file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"3DDFA_V2: expected a folder of its files, {folder} "
                         + ("is a file" if folder.is_file() else "does not exist"))
    found = {}
    for role, names in FILES.items():
        hit = next((folder / n for n in names if (folder / n).is_file()), None)
        if hit is None and role not in OPTIONAL_FILES:
            raise InputError(f"3DDFA_V2: {folder} lacks {names[0]} (looked for {', '.join(names)})")
        found[role] = hit
    return found


# -- parameters and ROI ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamStats:
    """The regressor's output statistics: params = output x ``std`` + ``mean``, both (62,)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> "ParamStats":
        data = load_numpy_pickle(path, "a 3DDFA_V2 parameter file")
        if not isinstance(data, dict) or not {"mean", "std"} <= set(data):
            raise ModelError(f"{Path(path).name}: expected a dict with 'mean' and 'std', got "
                             f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
        mean, std = (np.asarray(data[k], dtype=np.float64).reshape(-1) for k in ("mean", "std"))
        if mean.shape != (NUM_PARAMS,) or std.shape != (NUM_PARAMS,):
            raise ModelError(f"{Path(path).name}: mean and std must be ({NUM_PARAMS},), got {mean.shape} and "
                             f"{std.shape}")
        return cls(mean, std)


def split_params(params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """62 parameters → pose ``P`` (3, 4), shape (40,) and expression (10,) coefficients."""
    params = np.asarray(params, dtype=np.float64).reshape(-1)
    if params.shape != (NUM_PARAMS,):
        raise ValueError(f"3DMM parameters must be ({NUM_PARAMS},), got {params.shape}")
    return params[:NUM_POSE].reshape(3, 4), params[NUM_POSE:NUM_POSE + NUM_SHAPE], params[NUM_POSE + NUM_SHAPE:]


def roi_from_box(box_xyxy: np.ndarray) -> np.ndarray:
    """Face box (4,) xyxy px → the square ROI (4,) ``[x0, y0, x1, y1]`` the regressor reads."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy[:4])
    old = (x1 - x0 + y1 - y0) / 2.0
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0 + old * ROI_SHIFT
    side = float(int(old * ROI_SCALE))
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def crop_roi(image: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """The ROI of ``image`` (H, W, C), corners rounded to whole px, zero where it leaves the image."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in roi)
    out = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)) + image.shape[2:], dtype=image.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0: sy1 - y0, sx0 - x0: sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out


def regressor_input(bgr: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """The regressor's input (1, 3, 120, 120) float32 for ``roi`` of a BGR frame (H, W, 3) uint8."""
    import cv2

    crop = crop_roi(bgr, roi)
    if crop.size == 0:
        raise InputError(f"3DDFA_V2: face ROI {np.round(roi, 1).tolist()} is empty")
    crop = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(((crop.astype(np.float32) - INPUT_MEAN) / INPUT_SCALE).transpose(2, 0, 1)[None])


def roi_to_image(xyz_roi: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Vertices (3, V) in the 120 px ROI (y up) → (V, 3) frame px: x, y and z in px (z towards the viewer,
    not shifted)."""
    x0, y0, x1, y1 = roi
    sx, sy = (x1 - x0) / INPUT_SIZE, (y1 - y0) / INPUT_SIZE
    x = (xyz_roi[0] - 1.0) * sx + x0
    y = (INPUT_SIZE - xyz_roi[1]) * sy + y0
    z = (xyz_roi[2] - 1.0) * (sx + sy) / 2.0
    return np.stack([x, y, z], axis=1)


# -- the BFM ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bfm:
    """The BFM as 3DDFA_V2 uses it: ``mean_xyz`` (V, 3) and ``basis`` (V, 3, 50) (40 shape then 10
    expression columns), micrometres, BFM axes; ``triangles`` (F, 3); ``keypoints`` (68,) vertex ids."""

    mean_xyz: np.ndarray
    basis: np.ndarray
    triangles: np.ndarray
    keypoints: np.ndarray

    @property
    def num_vertices(self) -> int:
        return len(self.mean_xyz)

    @classmethod
    def load(cls, path: str | Path, triangles_path: str | Path | None = None) -> "Bfm":
        """Read ``bfm_noneck_v3.pkl`` (and ``tri.pkl``, which replaces the pickle's ``tri``) safely."""
        name = Path(path).name
        data = load_numpy_pickle(path, "a BFM pickle")
        need = {"u", "w_shp", "w_exp", "keypoints"} | ({"tri"} if triangles_path is None else set())
        if not isinstance(data, dict) or not need <= set(data):
            found = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
            raise ModelError(f"{name}: expected a dict with {sorted(need)}, got {found}")
        mean = np.asarray(data["u"], dtype=np.float32).reshape(-1)
        if mean.size % 3 or not mean.size:
            raise ModelError(f"{name}: u must hold 3V numbers (x, y, z per vertex), got {mean.size}")
        v = mean.size // 3
        w_shp, w_exp = (np.asarray(data[k], dtype=np.float32) for k in ("w_shp", "w_exp"))
        for key, w, k in (("w_shp", w_shp, NUM_SHAPE), ("w_exp", w_exp, NUM_EXP)):
            if w.ndim != 2 or w.shape[0] != 3 * v or w.shape[1] < k:
                raise ModelError(f"{name}: {key} must be ({3 * v}, >= {k}), got {w.shape}")
        basis = np.concatenate([w_shp[:, :NUM_SHAPE], w_exp[:, :NUM_EXP]], axis=1).reshape(v, 3, -1)
        tri = load_numpy_pickle(triangles_path, "a triangle pickle") if triangles_path is not None else data["tri"]
        tri = np.asarray(tri)
        if tri.ndim == 2 and tri.shape[0] == 3 and tri.shape[1] != 3:
            tri = tri.T  # published (3, F)
        if tri.ndim != 2 or tri.shape[1] != 3 or tri.min() < 0 or tri.max() >= v:
            raise ModelError(f"{name}: triangles must be (3, F) vertex ids below {v}, got {tri.shape}")
        kp = np.asarray(data["keypoints"]).reshape(-1).astype(np.int64)
        if kp.shape != (68 * 3,) or kp.min() < 0 or kp.max() >= 3 * v or np.any(kp[0::3] % 3):
            raise ModelError(f"{name}: keypoints must be 204 ids into u's rows (x, y, z of 68 vertices), "
                             f"got {kp.shape}")
        return cls(mean.reshape(v, 3), basis, np.ascontiguousarray(tri, dtype=np.int32), kp[0::3] // 3)

    def mesh(self, coefficients: np.ndarray) -> np.ndarray:
        """The BFM mesh (V, 3) micrometres, BFM axes, of 50 coefficients (40 shape, 10 expression)."""
        flat = self.basis.reshape(-1, self.basis.shape[2])  # (3V, K): one matrix-vector product
        return self.mean_xyz + (flat @ np.asarray(coefficients, dtype=np.float32)).reshape(-1, 3)


def canonical_in_bfm(bfm: Bfm) -> tuple[np.ndarray, float, np.ndarray]:
    """Where MediaPipe's canonical face (metres) sits in the BFM mean (metres): rotation (3, 3), scale and
    offset (3,) with ``x_bfm = scale * rotation @ x_canonical + offset``, fitted on :data:`MEDIAPIPE_FROM_68`."""
    from ..face.geometry import canonical_face
    from ..face.head_pose import weighted_procrustes

    ids68 = np.array(list(MEDIAPIPE_FROM_68), dtype=np.int64)
    source = canonical_face().xyz_m[list(MEDIAPIPE_FROM_68.values())]
    target = bfm.mean_xyz[bfm.keypoints[ids68]].astype(np.float64) * BFM_UNIT_M
    rotation, scale, offset = weighted_procrustes(source, target, np.ones(len(ids68)))
    return rotation, scale, offset


# -- pose ------------------------------------------------------------------------------------------------------------


def pose_from_params(pose: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """3DDFA_V2's pose ``P`` (3, 4) → scale (ROI px per BFM unit), rotation (3, 3) BFM → its image frame (y
    up, z towards the viewer; the proper rotation nearest ``P[:, :3] / s``) and offset (3,) ROI px."""
    a = np.asarray(pose, dtype=np.float64)[:, :3]
    scale = (np.linalg.norm(a[0]) + np.linalg.norm(a[1])) / 2.0
    if not scale > 0:
        raise InputError("3DDFA_V2: the pose's scale is zero")
    r1, r2 = a[0] / np.linalg.norm(a[0]), a[1] / np.linalg.norm(a[1])
    u, _, vt = np.linalg.svd(np.stack([r1, r2, np.cross(r1, r2)]))
    rotation = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    return float(scale), rotation, np.asarray(pose, dtype=np.float64)[:, 3].copy()


def camera_pose(pose: np.ndarray, roi: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """The BFM's pose in ``intrinsics``' camera (OpenCV axes, metres): rotation (3, 3) and translation (3,) with
    ``x_cam = rotation @ (x_bfm * BFM_UNIT_M) + translation`` (see the module docstring)."""
    scale, rotation, offset = pose_from_params(pose)
    x0, y0, x1, y1 = roi
    px_per_unit = scale * ((x1 - x0) + (y1 - y0)) / (2.0 * INPUT_SIZE)
    depth = 0.5 * (intrinsics.fx + intrinsics.fy) * BFM_UNIT_M / px_per_unit
    origin_xy = roi_to_image(offset.reshape(3, 1), roi)[0, :2]
    translation = depth * np.array([(origin_xy[0] - intrinsics.cx) / intrinsics.fx,
                                    (origin_xy[1] - intrinsics.cy) / intrinsics.fy, 1.0])
    return FLIP_YZ @ rotation, translation


# -- the model -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TddfaFace:
    """One face of a frame: its FaceBoxes ``box``, the ``roi`` (4,) the regressor read, the 62 ``params``, and
    ``vertices_px`` (V, 3) 3DDFA_V2's dense vertices in frame px (x, y; z px towards the viewer)."""

    box: FaceBox
    roi: np.ndarray
    params: np.ndarray
    vertices_px: np.ndarray

    @property
    def coefficients(self) -> np.ndarray:
        """The 50 BFM coefficients (40 shape, 10 expression)."""
        return self.params[NUM_POSE:]


class Tddfa:
    """3DDFA_V2: ``detector`` (FaceBoxes), ``runner`` (the 120 x 120 regressor), ``stats``, ``bfm`` and, when
    given, ``bfm_runner`` (the BFM ONNX head).  ``__call__(rgb)`` → :class:`TddfaFace` per face, best first."""

    def __init__(self, detector: FaceBoxesDetector, runner: Runner, stats: ParamStats, bfm: Bfm,
                 bfm_runner: Runner | None = None):
        self.detector, self.runner, self.stats, self.bfm, self.bfm_runner = detector, runner, stats, bfm, bfm_runner
        names = [s.name for s in runner.inputs]
        if len(runner.inputs) != 1 or tuple(runner.inputs[0].shape[1:]) != (3, INPUT_SIZE, INPUT_SIZE):
            raise ModelError(f"3DDFA_V2 regressor takes one input (1, 3, {INPUT_SIZE}, {INPUT_SIZE}), got "
                             f"{[(s.name, s.shape) for s in runner.inputs]}")
        self._input = names[0]
        if len(runner.outputs) != 1 or runner.outputs[0].shape[-1] not in (NUM_PARAMS, None):
            raise ModelError(f"3DDFA_V2 regressor gives one output (1, {NUM_PARAMS}), got "
                             f"{[(s.name, s.shape) for s in runner.outputs]}")
        self._output = runner.outputs[0].name
        if bfm_runner is not None:
            have = {s.name for s in bfm_runner.inputs}
            if have != {"R", "offset", "alpha_shp", "alpha_exp"} or len(bfm_runner.outputs) != 1:
                raise ModelError(f"BFM ONNX head takes R, offset, alpha_shp, alpha_exp and gives one output, got "
                                 f"inputs {sorted(have)}")

    @classmethod
    def open(cls, folder: str | Path, device: str = "auto", strict_device: bool = False,
             min_score: float = 0.5) -> "Tddfa":
        """Load 3DDFA_V2 from ``folder`` (:func:`find_files`)."""
        from ..runners import make_runner

        files = find_files(folder)
        detector = FaceBoxesDetector(make_runner(files["detector"], device=device, strict_device=strict_device),
                                     min_score=min_score)
        runner = make_runner(files["regressor"], device=device, strict_device=strict_device)
        bfm_runner = (make_runner(files["bfm_onnx"], device=device, strict_device=strict_device)
                      if files["bfm_onnx"] else None)
        return cls(detector, runner, ParamStats.load(files["param_stats"]),
                   Bfm.load(files["bfm"], files["triangles"]), bfm_runner)

    def params(self, bgr: np.ndarray, roi: np.ndarray) -> np.ndarray:
        """The 62 de-normalised parameters of ``roi`` in a BGR frame."""
        out = self.runner({self._input: regressor_input(bgr, roi)})[self._output]
        out = np.asarray(out, dtype=np.float64).reshape(-1)
        if out.shape != (NUM_PARAMS,):
            raise ModelError(f"3DDFA_V2 regressor gave {out.shape} numbers, expected ({NUM_PARAMS},)")
        return out * self.stats.std + self.stats.mean

    def vertices_roi(self, params: np.ndarray) -> np.ndarray:
        """``P X``: the dense vertices (3, V) in the 120 px ROI (y up) of 62 parameters."""
        pose, shape, expression = split_params(params)
        if self.bfm_runner is not None:
            feeds = {"R": pose[:, :3].astype(np.float32), "offset": pose[:, 3:].astype(np.float32),
                     "alpha_shp": shape.reshape(-1, 1).astype(np.float32),
                     "alpha_exp": expression.reshape(-1, 1).astype(np.float32)}
            out = np.asarray(next(iter(self.bfm_runner(feeds).values())), dtype=np.float64)
            if out.shape != (3, self.bfm.num_vertices):
                raise ModelError(f"BFM ONNX head gave {out.shape}, expected (3, {self.bfm.num_vertices})")
            return out
        mesh = self.bfm.mesh(np.concatenate([shape, expression])).astype(np.float64)
        return pose[:, :3] @ mesh.T + pose[:, 3:]

    def __call__(self, rgb: np.ndarray) -> list[TddfaFace]:
        """The faces of an RGB frame (H, W, 3) uint8, best first."""
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        faces = []
        for box in self.detector(rgb):
            roi = roi_from_box(box.box_xyxy)
            if roi[2] - roi[0] < 1:
                continue
            params = self.params(bgr, roi)
            faces.append(TddfaFace(box, roi, params, roi_to_image(self.vertices_roi(params), roi)))
        return faces


# -- as a face source ------------------------------------------------------------------------------------------------


class TddfaSource:
    """3DDFA_V2 as a ``--face 3ddfa:FOLDER`` face model (:class:`rigcast.pipeline.face_sources.FaceSourceModel`).

    Each face's pose places MediaPipe's canonical face (:func:`canonical_in_bfm` composed with
    :func:`camera_pose`), in the camera :meth:`camera` (rigcast's default, 60 degrees horizontal); its BFM mesh
    rides along as ``mesh_xyz`` (V, 3) metres and as ``mesh_coefficients`` (K,) of :attr:`face_mesh`, the BFM
    in the canonical face's frame, which the Take stores once (:class:`rigcast.formats.take.FaceMesh`).
    """

    family = "3ddfa"

    def __init__(self, tddfa: Tddfa):
        from ..formats.take import FaceMesh
        from ..pipeline.face_sources import MeshTopology

        self.tddfa = tddfa
        self.runner = tddfa.runner
        bfm = tddfa.bfm
        self.mesh_topology = MeshTopology("bfm", bfm.triangles, bfm.num_vertices)
        self._align_r, self._align_s, self._align_t = canonical_in_bfm(bfm)
        # x_canonical = R_a^T (x_bfm_m - t_a) / s_a, row-wise (x - t) @ R_a / s.
        mean = (bfm.mean_xyz.astype(np.float64) * BFM_UNIT_M - self._align_t) @ self._align_r / self._align_s
        basis = np.einsum("vck,cd->vdk", bfm.basis.astype(np.float64) * BFM_UNIT_M, self._align_r) / self._align_s
        self.face_mesh, self._coefficient_scales = FaceMesh.from_basis("bfm", bfm.triangles, mean, basis)

    @classmethod
    def open(cls, folder: str | Path, device: str = "auto", strict_device: bool = False) -> "TddfaSource":
        return cls(Tddfa.open(folder, device=device, strict_device=strict_device))

    @property
    def num_coefficients(self) -> int:
        return self.face_mesh.num_coefficients

    def camera(self, width: int, height: int) -> Intrinsics:
        return Intrinsics.from_fov(width, height, source="default")

    def observe(self, face: TddfaFace, camera: Intrinsics):
        """One :class:`TddfaFace` → a :class:`~rigcast.pipeline.face_sources.FaceObservation` in ``camera``."""
        from ..pipeline.face_sources import FaceObservation

        pose, _, _ = split_params(face.params)
        r_cam, t_cam = camera_pose(pose, face.roi, camera)
        # float32 (micrometres to metres folded into the rotation): a third of the time of float64, rounding at
        # the micrometre.
        mesh = self.tddfa.bfm.mesh(face.coefficients) @ (r_cam.T * BFM_UNIT_M).astype(np.float32) \
            + t_cam.astype(np.float32)
        return FaceObservation(face.box.box_xyxy, face.box.score, r_cam @ self._align_r,
                               r_cam @ self._align_t + t_cam, self._align_s, mesh,
                               mesh_coefficients=face.coefficients * self._coefficient_scales)

    def __call__(self, rgb: np.ndarray) -> list:
        camera = self.camera(rgb.shape[1], rgb.shape[0])
        return [self.observe(face, camera) for face in self.tddfa(rgb)]
