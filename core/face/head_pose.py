"""Head pose and the metric face mesh from face landmarks, as MediaPipe's face geometry pipeline.

Frames.  Everything here is in the OpenCV camera frame: x right, y down,
z forward (metres).  The canonical face (:mod:`.geometry`) is right-handed
with x towards the subject's left, y up and z out of the face, so a face
looking straight at the camera has ``rotation = FRONTAL = diag(1, -1, -1)``
(180 degrees about x).  ``rotation`` maps canonical axes to camera axes and
``translation`` is where the canonical origin (inside the head, 7.6 cm
behind the nose tip) sits: the posed canonical face is
``scale * rotation @ p_canonical + translation``, ``scale`` (about 1) the
size of the measured face relative to the canonical one.

How.  Two steps, both in closed form or from a good start:

1. The metric mesh, as MediaPipe's geometry pipeline (``geometry_pipeline.cc``).
   The landmark model gives every point a relative depth ``z`` besides
   ``x, y``; with it the landmarks themselves are lifted into metric camera
   space, expression included.  With normalised image coordinates
   ``u = (x - cx) / fx``, ``v = (y - cy) / fy`` and ``w = z / fx``:

   a. weighted orthogonal Procrustes (rotation, uniform scale, translation;
      ``procrustes_solver.cc``) from the canonical face to the screen
      points ``(u, v, w)`` gives a scale ``s1``: the face's size on the
      unit-depth image plane per canonical centimetre, about 1 / depth;
   b. each point's depth is ``d = (1 + w - mean(w)) / s1`` (cm); unproject
      ``(u d, v d, d)``; Procrustes again gives the residual scale ``s2``;
   c. unproject with ``d = (1 + w - mean(w)) / (s1 s2)``: the metric mesh,
      which reprojects exactly onto the landmarks;
   d. Procrustes from the canonical face to that mesh: MediaPipe's pose.

2. The pose (``method="pnp"``, the default): the canonical face (scaled
   by 1d's scale) is fitted to the 468 landmarks by its 468 vertices'
   perspective projection: SQPnP (``cv2.SOLVEPNP_SQPNP``, Terzakis and
   Lourakis 2020), which finds the global optimum of an object-space
   error in closed form plus a few steps, then one Gauss-Newton step on
   the reprojection error (``PNP_REFINE_STEPS``).  The result is within
   0.06 degrees (median 0.005) of the reprojection error's minimum on the
   carphone clip, 0.12 (median 0.016) on a 640 x 480 clip: as close as
   the two Levenberg-Marquardt steps of ``cv2.solvePnPRefineLM`` that it
   replaced, which cost 0.6 ms a frame.  The mesh is then rescaled about
   the camera centre (which keeps its projection) so that its depth
   agrees with that pose.

Batches.  :func:`solve_head_poses` runs all of this on many frames at
once: numpy over the frames for every step but SQPnP (one OpenCV call per
frame).  A frame costs 0.3-0.4 ms in blocks of 16 frames, against 1.5 ms
one frame at a time.

Why PnP for the pose.  The 2D landmarks are the model's most accurate
output; its ``z`` is a learned relative depth whose relief does not match
the canonical face's exactly, so the Procrustes pose (1d) trades pitch and
yaw for depth differently: measured on the astronaut photo and the
carphone clip, the two poses differ by 1 to 10 degrees, mostly in pitch,
for the very same landmarks (17 for a face far off the optical axis).
Against ``cv2.solvePnP`` on MediaPipe's own landmarks, the default pose is
0.6-2.1 degrees off, MediaPipe's Procrustes pose 0.7-16.  The perspective fit of a rigid model to the
2D landmarks is the standard head-pose estimate (and the one the tests
check against, with OpenCV's solver on MediaPipe's own landmarks); SQPnP's
global optimum leaves no local minimum or flip to fall into, and Procrustes
stays as the source of the scale and of the metric, expression-bearing mesh,
and as the pose when the fit fails.  ``method="procrustes"`` reproduces MediaPipe's
pose exactly.

MediaPipe assumes a centred principal point and a vertical field of view;
the normalised coordinates above take any pinhole intrinsics.  Depth comes
from the assumption that the face has the canonical face's size (an adult
face; a child's head is placed too far away, in proportion).

Legend: P = 468 or 478 landmarks, K = Procrustes landmarks, T frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..camera import Intrinsics
from ..errors import InputError
from .geometry import NUM_VERTICES, CanonicalFace, canonical_face

FRONTAL = np.diag([1.0, -1.0, -1.0])
"""``rotation`` of a face looking straight into the camera (canonical y up → camera y down, z out → z back)."""
FRONTAL.setflags(write=False)

CM_PER_M = 100.0
PERSON_HEIGHT_M = 1.7  # the speed scale for smoothing head translation (see smooth_head_poses)
_MIN_EXTENT = 1e-6  # landmarks spanning less than this (normalised image units) are too compact to solve
_EYE3 = np.eye(3)
_EYE3.setflags(write=False)
_ORTHO_TOL = 1e-6 + 1e-5 * _EYE3  # np.allclose(r @ r.T, I, atol=1e-6) with its default rtol, precomputed
_ORTHO_TOL.setflags(write=False)


def _det3(m: np.ndarray) -> float:
    """Determinant of a (3, 3) matrix in closed form (:func:`_det3_batch`)."""
    return float(_det3_batch(m[None])[0])


@dataclass(frozen=True)
class HeadPose:
    """One face's pose and metric mesh in the OpenCV camera frame (x right, y down, z forward).

    ``rotation`` (3, 3) camera <- canonical, ``translation`` (3,) metres (the
    canonical origin in the camera frame), ``scale`` canonical → measured
    (about 1), ``mesh_xyz`` (P, 3) the landmarks in metres, ``residual`` the
    weighted RMS distance in metres between the posed canonical face and
    the mesh at the Procrustes landmarks (shape and expression differences),
    ``reprojection_px`` the RMS distance in pixels between the posed
    canonical face's 468 projected vertices and the landmarks.
    """

    rotation: np.ndarray
    translation: np.ndarray
    mesh_xyz: np.ndarray
    scale: float
    residual: float
    reprojection_px: float = 0.0

    def __post_init__(self) -> None:
        rotation = np.array(self.rotation, dtype=np.float64)
        translation = np.array(self.translation, dtype=np.float64).reshape(-1)
        mesh = np.array(self.mesh_xyz, dtype=np.float64)
        if rotation.shape != (3, 3) or not np.all(np.abs(rotation @ rotation.T - _EYE3) <= _ORTHO_TOL) \
                or not _det3(rotation) > 0:
            raise ValueError(f"rotation must be a (3, 3) proper rotation matrix, got shape {rotation.shape}")
        if translation.shape != (3,) or not np.all(np.isfinite(translation)):
            raise ValueError(f"translation must be (3,) finite metres, got {translation.shape}")
        if mesh.ndim != 2 or mesh.shape[1] != 3 or mesh.shape[0] < NUM_VERTICES or not np.all(np.isfinite(mesh)):
            raise ValueError(f"mesh_xyz must be (P, 3) finite with P >= {NUM_VERTICES}, got {mesh.shape}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be positive, got {self.scale}")
        if not (math.isfinite(self.residual) and self.residual >= 0):
            raise ValueError(f"residual must be >= 0 metres, got {self.residual}")
        if not (math.isfinite(self.reprojection_px) and self.reprojection_px >= 0):
            raise ValueError(f"reprojection_px must be >= 0, got {self.reprojection_px}")
        for a in (rotation, translation, mesh):
            a.setflags(write=False)
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)
        object.__setattr__(self, "mesh_xyz", mesh)
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "residual", float(self.residual))
        object.__setattr__(self, "reprojection_px", float(self.reprojection_px))

    @classmethod
    def _solved(cls, rotation: np.ndarray, translation: np.ndarray, mesh_xyz: np.ndarray, scale: float,
                residual: float, reprojection_px: float) -> "HeadPose":
        """A pose as :func:`solve_head_poses` made it, float64 and checked there: built without
        ``__post_init__``'s checks, which cost a quarter of a batched solve."""
        pose = object.__new__(cls)
        for name, value in (("rotation", rotation), ("translation", translation), ("mesh_xyz", mesh_xyz)):
            value.setflags(write=False)
            object.__setattr__(pose, name, value)
        for name, value in (("scale", scale), ("residual", residual), ("reprojection_px", reprojection_px)):
            object.__setattr__(pose, name, float(value))
        return pose

    def as_matrix(self) -> np.ndarray:
        """(4, 4) camera <- canonical transform in metres, rotation and translation only (scale left out)."""
        out = np.eye(4)
        out[:3, :3] = self.rotation
        out[:3, 3] = self.translation
        return out

    def euler_ypr_deg(self) -> tuple[float, float, float]:
        """:func:`euler_ypr_deg` of ``rotation``."""
        return euler_ypr_deg(self.rotation)


def weighted_procrustes(source: np.ndarray, target: np.ndarray,
                        weights: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Rotation R (3, 3), scale s and translation t (3,) minimising ``sum w |s R source + t - target|^2``.

    ``source``, ``target`` (K, 3), ``weights`` (K,) >= 0.  The weighted
    orthogonal Procrustes problem with scale (Umeyama's solution; MediaPipe's
    ``procrustes_solver.cc`` solves the same problem): centre both sets on
    their weighted centroids, take the SVD of the weighted cross-covariance
    ``U S V^T = sum w (target - ct)(source - cs)^T``, ``R = U diag(1, 1, d) V^T``
    with ``d = sign(det(U V^T))`` so that R is a rotation, not a reflection,
    ``s = trace(diag(1, 1, d) S) / sum w |source - cs|^2``, ``t = ct - s R cs``.
    """
    rotation, scale, translation = weighted_procrustes_batch(np.asarray(source, dtype=np.float64),
                                                             np.asarray(target, dtype=np.float64)[None], weights)
    return rotation[0], float(scale[0]), translation[0]


def weighted_procrustes_batch(source: np.ndarray, target: np.ndarray,
                              weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`weighted_procrustes` for T target sets at once: ``source`` (K, 3), ``target`` (T, K, 3) →
    rotations (T, 3, 3), scales (T,), translations (T, 3)."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    cs = w @ source  # (3,)
    ct = np.einsum("k,tkc->tc", w, target)
    a = source - cs
    b = target - ct[:, None]
    cov = np.einsum("tki,kj->tij", b, a * w[:, None])
    u, sv, vt = np.linalg.svd(cov)
    d = np.where(_det3_batch(u @ vt) > 0, 1.0, -1.0)
    rotation = (u * np.stack([np.ones_like(d), np.ones_like(d), d], axis=1)[:, None, :]) @ vt
    spread = float(w @ np.sum(a * a, axis=1))
    scale = (sv[:, 0] + sv[:, 1] + d * sv[:, 2]) / spread
    return rotation, scale, ct - scale[:, None] * (rotation @ cs)


def _det3_batch(m: np.ndarray) -> np.ndarray:
    """Determinants (T,) of (T, 3, 3) matrices in closed form.  Not ``np.linalg.det``: OpenBLAS's threaded LU
    wakes its worker threads even for 3 x 3, which costs milliseconds per call on a busy machine."""
    return (m[:, 0, 0] * (m[:, 1, 1] * m[:, 2, 2] - m[:, 1, 2] * m[:, 2, 1])
            - m[:, 0, 1] * (m[:, 1, 0] * m[:, 2, 2] - m[:, 1, 2] * m[:, 2, 0])
            + m[:, 0, 2] * (m[:, 1, 0] * m[:, 2, 1] - m[:, 1, 1] * m[:, 2, 0]))


HEAD_POSE_METHODS = ("pnp", "procrustes")


def solve_head_pose(xy: np.ndarray, z: np.ndarray, intrinsics: Intrinsics, method: str = "pnp",
                    canonical: CanonicalFace | None = None) -> HeadPose:
    """Head pose and metric mesh from landmarks ``xy`` (P, 2) image px and ``z`` (P,) px-scale depth.

    P is 468 or 478 (the iris points are lifted along with the rest but do
    not enter the fits).  ``intrinsics`` are those of the frame the
    landmarks came from.  ``method``: "pnp" (default) or "procrustes"
    (MediaPipe's pose), see the module docstring.  Raises
    :class:`InputError` for malformed or collapsed landmarks.
    """
    xy = np.asarray(xy, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] < NUM_VERTICES:
        raise InputError(f"xy must be (P, 2) with P >= {NUM_VERTICES} face landmarks, got {xy.shape}")
    if z.shape != (xy.shape[0],):
        raise InputError(f"z must be ({xy.shape[0]},) like xy, got {z.shape}")
    if not (np.all(np.isfinite(xy)) and np.all(np.isfinite(z))):
        raise InputError("xy and z must be finite")
    pose = solve_head_poses(xy[None], z[None], intrinsics, method, canonical)[0]
    if pose is None:
        raise InputError("face landmarks are collapsed to a point; cannot solve the head pose")
    return pose


def solve_head_poses(xy: np.ndarray, z: np.ndarray, intrinsics: Intrinsics, method: str = "pnp",
                     canonical: CanonicalFace | None = None) -> list[HeadPose | None]:
    """:func:`solve_head_pose` for T frames at once: ``xy`` (T, P, 2), ``z`` (T, P) → T poses, None for a
    frame whose landmarks are not finite or are collapsed to a point.

    The fits run on all frames together (numpy over T, one SQPnP call per
    frame), about 4x less time per frame than one frame at a time; each
    frame's pose is the same either way, to rounding.
    """
    if method not in HEAD_POSE_METHODS:
        raise ValueError(f"method must be one of {HEAD_POSE_METHODS}, got {method!r}")
    if not isinstance(intrinsics, Intrinsics):
        raise InputError(f"intrinsics must be rigcast.camera.Intrinsics, got {type(intrinsics).__name__}")
    canonical = canonical or canonical_face()
    xy = np.asarray(xy, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[2] != 2 or xy.shape[1] < NUM_VERTICES:
        raise InputError(f"xy must be (T, P, 2) with P >= {NUM_VERTICES} face landmarks, got {xy.shape}")
    if z.shape != xy.shape[:2]:
        raise InputError(f"z must be {xy.shape[:2]} like xy, got {z.shape}")
    poses: list[HeadPose | None] = [None] * len(xy)
    ids, weights = canonical.procrustes_ids, canonical.procrustes_weights
    u = (xy[..., 0] - intrinsics.cx) / intrinsics.fx
    v = (xy[..., 1] - intrinsics.cy) / intrinsics.fy
    solvable = (np.all(np.isfinite(xy), axis=(1, 2)) & np.all(np.isfinite(z), axis=1)
                & ((np.ptp(u[:, ids], axis=1) >= _MIN_EXTENT) | (np.ptp(v[:, ids], axis=1) >= _MIN_EXTENT)))
    frames = np.flatnonzero(solvable)
    if not len(frames):
        return poses
    xy, u, v, w = xy[frames], u[frames], v[frames], z[frames] / intrinsics.fx
    source = canonical.xyz_cm[ids]

    # (1a) Scale on the unit-depth image plane, the relative depth taken as is.
    _, s1, _ = weighted_procrustes_batch(source, np.stack([u[:, ids], v[:, ids], w[:, ids]], axis=2), weights)
    depth_offset = w.mean(axis=1, keepdims=True)

    def lift(total_scale: np.ndarray, pick) -> np.ndarray:
        """Points (u, v, w) at ``pick`` → camera-frame cm (T, K, 3)."""
        depth = (1.0 + w[:, pick] - depth_offset) / total_scale[:, None]  # cm
        return np.stack([u[:, pick] * depth, v[:, pick] * depth, depth], axis=2)

    # (1b) Lift with s1 (the Procrustes points alone), measure the scale left, (1c) lift with both,
    # (1d) fit the canonical face.
    _, s2, _ = weighted_procrustes_batch(source, lift(s1, ids), weights)
    mesh_cm = lift(s1 * s2, slice(None))
    rotation, scale, translation = weighted_procrustes_batch(source, mesh_cm[:, ids], weights)
    if method == "pnp":
        # The perspective fit of the canonical face scaled by s is that of the unscaled face with the
        # translation divided by s: the same projection.
        rotation, unit_translation = _fit_pnp(canonical.xyz_cm, xy[:, :NUM_VERTICES], intrinsics, rotation,
                                              translation / scale[:, None])
        translation = unit_translation * scale[:, None]
        # Rescale the mesh about the camera centre (its projection is unchanged) to the pose's depth.
        posed_depth = scale[:, None] * (source @ rotation[:, 2].T).T + translation[:, 2:]
        mesh_cm = mesh_cm * ((posed_depth @ weights) / (mesh_cm[:, ids, 2] @ weights))[:, None, None]
    posed = scale[:, None, None] * (canonical.xyz_cm @ rotation.transpose(0, 2, 1)) + translation[:, None]
    wn = weights / weights.sum()
    residual = np.sqrt(np.sum((posed[:, ids] - mesh_cm[:, ids]) ** 2, axis=2) @ wn)
    reprojection = np.sqrt(np.mean(np.sum((_project(posed, intrinsics) - xy[:, :NUM_VERTICES]) ** 2, axis=2), axis=1))
    translation, mesh, residual = translation / CM_PER_M, mesh_cm / CM_PER_M, residual / CM_PER_M
    good = (np.all(np.isfinite(rotation), axis=(1, 2)) & np.all(np.isfinite(translation), axis=1)
            & np.all(np.isfinite(mesh), axis=(1, 2)) & np.isfinite(scale) & (scale > 0) & np.isfinite(residual)
            & np.isfinite(reprojection))  # a degenerate fit gives no pose, never a fabricated one
    for k in np.flatnonzero(good).tolist():
        poses[frames[k]] = HeadPose._solved(rotation[k], translation[k], mesh[k], scale[k], residual[k],
                                            reprojection[k])
    return poses


def _project(points: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Camera-frame points (..., 3) → image px (..., 2); points at or behind the camera give inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(points[..., 2] > 0, points[..., 2], 0.0)
        return np.stack([intrinsics.fx * points[..., 0] / depth + intrinsics.cx,
                         intrinsics.fy * points[..., 1] / depth + intrinsics.cy], axis=-1)


PNP_REFINE_STEPS = 1
"""Gauss-Newton steps on the reprojection error after SQPnP (see the module docstring)."""


def _fit_pnp(model_cm: np.ndarray, xy: np.ndarray, intrinsics: Intrinsics, rotation: np.ndarray,
             translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (T, 3, 3) and translations (T, 3) cm fitting ``model_cm`` (V, 3) to each frame's ``xy``
    (T, V, 2) in perspective: SQPnP, then ``PNP_REFINE_STEPS`` Gauss-Newton steps on the reprojection
    error, all frames at once.  A frame keeps its given pose (``rotation``, ``translation``) if the fit
    fails or lands behind the camera."""
    import cv2
    from scipy.spatial.transform import Rotation

    model_cm = np.ascontiguousarray(model_cm, dtype=np.float64)
    camera = intrinsics.matrix
    rvecs, tvecs = np.zeros((len(xy), 3)), np.array(translation, dtype=np.float64)
    solved = np.zeros(len(xy), dtype=bool)
    for k in range(len(xy)):
        solved[k], rvec, tvec = cv2.solvePnP(model_cm, np.ascontiguousarray(xy[k]), camera, None,
                                             flags=cv2.SOLVEPNP_SQPNP)
        if solved[k]:
            rvecs[k], tvecs[k] = rvec.reshape(3), tvec.reshape(3)
    fitted = np.where(solved[:, None, None], Rotation.from_rotvec(rvecs).as_matrix(), rotation)
    moved = tvecs
    for _ in range(PNP_REFINE_STEPS):
        fitted, moved = _gauss_newton_step(model_cm, xy, intrinsics, fitted, moved)
    depth = np.einsum("vc,tc->tv", model_cm, fitted[:, 2]) + moved[:, 2:]
    good = np.all(np.isfinite(fitted), axis=(1, 2)) & np.all(np.isfinite(moved), axis=1) & np.all(depth > 0, axis=1)
    return np.where(good[:, None, None], fitted, rotation), np.where(good[:, None], moved, translation)


def _gauss_newton_step(model: np.ndarray, xy: np.ndarray, intrinsics: Intrinsics, rotation: np.ndarray,
                       translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Gauss-Newton step on the reprojection error of ``model`` (V, 3) posed by ``rotation`` (T, 3, 3)
    and ``translation`` (T, 3) against ``xy`` (T, V, 2): the rotation is updated on the left,
    ``exp([d]x) R``, so the camera-frame point ``q + t`` (``q = R X``) moves by ``d x q + dt``."""
    from scipy.spatial.transform import Rotation

    fx, fy = intrinsics.fx, intrinsics.fy
    q = model @ rotation.transpose(0, 2, 1)  # (T, V, 3)
    p = q + translation[:, None]
    inv_z = 1.0 / p[..., 2]
    px, py = p[..., 0] * inv_z, p[..., 1] * inv_z
    residual = np.concatenate([fx * px + intrinsics.cx - xy[..., 0], fy * py + intrinsics.cy - xy[..., 1]], axis=1)
    # d(u)/d(p) = fx (1/z, 0, -x/z^2), d(v)/d(p) = fy (0, 1/z, -y/z^2); d(p)/d(d) = -[q]x, d(p)/d(dt) = I.
    a, c = fx * inv_z, -fx * px * inv_z
    b, e = fy * inv_z, -fy * py * inv_z
    qx, qy, qz = q[..., 0], q[..., 1], q[..., 2]
    zero = np.zeros_like(a)
    jac_u = np.stack([c * qy, a * qz - c * qx, -a * qy, a, zero, c], axis=1)
    jac_v = np.stack([e * qy - b * qz, -e * qx, b * qx, zero, b, e], axis=1)
    jac_t = np.concatenate([jac_u, jac_v], axis=2)  # (T, 6, 2V): the Jacobian, transposed
    normal, gradient = jac_t @ jac_t.transpose(0, 2, 1), (jac_t @ residual[..., None])[..., 0]
    stuck = ~(np.all(np.isfinite(normal), axis=(1, 2)) & np.all(np.isfinite(gradient), axis=1))
    normal[stuck], gradient[stuck] = np.eye(6), 0.0  # such a frame stays put (and is caught by _fit_pnp)
    try:
        step = -np.linalg.solve(normal, gradient[..., None])[..., 0]
    except np.linalg.LinAlgError:  # a degenerate fit: no step for any frame of the block
        return rotation, translation
    return Rotation.from_rotvec(step[:, :3]).as_matrix() @ rotation, translation + step[:, 3:]


def euler_ypr_deg(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of a camera <- canonical ``rotation`` (3, 3); (0, 0, 0) faces the camera.

    The rotation relative to facing the camera, ``A = rotation @ FRONTAL``,
    is decomposed in camera axes as ``A = Rz(roll) Rx(-pitch) Ry(-yaw)``:
    yaw about camera-up first, then pitch about camera-right, then roll
    about the view axis (``R*`` the right-handed rotations about the OpenCV
    axes x right, y down, z forward).  Roll is applied last so that turning
    the camera about its optical axis (rotating the image about its
    principal point) changes roll alone, by the same angle; yaw and pitch
    are the out-of-plane turn seen in the image so rotated.  Signs, as seen
    in the image:

    * yaw > 0: the nose turns towards image right (the subject turns to their left);
    * pitch > 0: the nose turns up (chin up);
    * roll > 0: the head tilts clockwise on screen (the ROI convention).

    Yaw and roll lie in (-180, 180], pitch in [-90, 90]; near pitch = ±90
    yaw and roll are not separable (gimbal lock).
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3):
        raise ValueError(f"rotation must be (3, 3), got {rotation.shape}")
    a = rotation @ FRONTAL
    # Rz(ga) Rx(be) Ry(al): row 2 = [-cb sa, sb, cb ca] (Rz leaves it alone); column 1 = [-sg cb, cg cb, sb].
    beta = math.asin(float(np.clip(a[2, 1], -1.0, 1.0)))
    alpha = math.atan2(-a[2, 0], a[2, 2])
    gamma = math.atan2(-a[0, 1], a[1, 1])
    return -math.degrees(alpha), -math.degrees(beta), math.degrees(gamma)


def euler_ypr_deg_series(rotations: np.ndarray) -> np.ndarray:
    """(T, 3) yaw, pitch, roll in degrees (:func:`euler_ypr_deg`) of T rotations (T, 3, 3); NaN rows where a
    rotation is missing (not finite)."""
    rotations = np.asarray(rotations, dtype=np.float64)
    out = np.full((len(rotations), 3), np.nan)
    for t, r in enumerate(rotations):
        if np.all(np.isfinite(r)):
            out[t] = euler_ypr_deg(r)
    return out


def rotation_from_ypr_deg(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) camera <- canonical rotation with the given :func:`euler_ypr_deg` angles (its inverse)."""
    def axis(k: int, angle_deg: float) -> np.ndarray:
        c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
        i, j = [(1, 2), (2, 0), (0, 1)][k]
        m = np.eye(3)
        m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
        return m

    return axis(2, roll) @ axis(0, -pitch) @ axis(1, -yaw) @ FRONTAL


def smooth_head_poses(poses: list[HeadPose | None], time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Euro smoothing of a head-pose sequence (T entries, None where the face is missing).

    Returns rotations (T, 3, 3) and translations (T, 3) metres, NaN where
    missing.  Rotations go through :func:`rigcast.smooth.smooth_rotations`
    (``ONE_EURO_ROTATION``, tuned for head pose); translations through
    :func:`rigcast.smooth.one_euro` with ``ONE_EURO_LANDMARKS``, whose speeds
    are in person heights per second: the head moves with its body, taken
    as ``PERSON_HEIGHT_M``.
    """
    from scipy.spatial.transform import Rotation

    from ..smooth import ONE_EURO_LANDMARKS, one_euro, smooth_rotations

    num = len(poses)
    quats = np.full((num, 4), np.nan)
    trans = np.full((num, 3), np.nan)
    for t, pose in enumerate(poses):
        if pose is not None:
            quats[t] = Rotation.from_matrix(pose.rotation).as_quat(scalar_first=True)
            trans[t] = pose.translation
    quats = smooth_rotations(quats, time_s)
    rotations = np.full((num, 3, 3), np.nan)
    ok = np.all(np.isfinite(quats), axis=1)
    if np.any(ok):
        rotations[ok] = Rotation.from_quat(quats[ok], scalar_first=True).as_matrix()
    return rotations, one_euro(trans, time_s, ONE_EURO_LANDMARKS, scale=PERSON_HEIGHT_M)
