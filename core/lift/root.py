"""Root trajectory: where the hip midpoint is in camera space, frame by frame.

Legend: T frames, J joints.

Method.  BlazePose gives, per frame, image landmarks ``xy`` (pixels) and
metric "world" landmarks ``xyz`` centred on the hip midpoint, with axes
roughly aligned with the camera's (x right, y down, z away).  Their only
unknown relative to the camera is a rigid transform, ``X_cam = R X + t``, so
each frame is a Perspective-n-Point problem with a known metric model: the
model's size fixes the depth.

1. Joints with conf >= ``min_conf`` and finite xy and xyz are used; a frame
   with fewer than 4 gets NaN and ``ok = False``.
2. Candidates, each refined by Levenberg-Marquardt on the reprojection error
   (``cv2.solvePnP`` ITERATIVE with ``useExtrinsicGuess``):
   the previous solved frame's pose (static camera, so it is a good start and
   keeps the solution on the same branch from frame to frame); the
   translation-only solution below (R = I); and, when there is no previous
   pose, SQPnP's global solution.
3. The candidate with the lowest reprojection error among those with the
   body in front of the camera and a rotation within ``max_rotation_deg`` of
   identity wins.  A larger rotation contradicts the camera-aligned model and
   means the solve fell into a wrong minimum (the depth-flip ambiguity of a
   small, shallow object), so:
4. Fallback: translation only, R = I.  With normalised image coordinates
   ``x_n = (u - cx) / fx``, ``u = fx (X + tx) / (Z + tz) + cx`` becomes
   ``tx - x_n tz = x_n Z - X`` (and likewise for y): linear in t, solved by
   least squares, then a few Gauss-Newton steps on the pixel error (the
   linear solve weights points by depth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..camera import Intrinsics
from ..skeletons import BLAZEPOSE_33

MIN_JOINTS = 4
_HIPS = (BLAZEPOSE_33.index("left_hip"), BLAZEPOSE_33.index("right_hip"))


@dataclass(frozen=True)
class RootSolve:
    """Per-frame root solve.

    ``root_xyz`` (T, 3): hip midpoint in OpenCV camera space, metres.
    ``root_rotvec`` (T, 3): rotation camera <- model as a rotation vector.
    ``reproj_error_px`` (T,): RMS reprojection error of the joints used.
    ``ok`` (T,): whether the frame was solved (NaN elsewhere).
    ``fallback`` (T,): whether the translation-only fallback (R = I) was used.
    """

    root_xyz: np.ndarray
    root_rotvec: np.ndarray
    reproj_error_px: np.ndarray
    ok: np.ndarray
    fallback: np.ndarray

    def __post_init__(self) -> None:
        num_frames = self.ok.shape[0] if self.ok.ndim == 1 else -1
        if self.ok.ndim != 1 or self.ok.dtype != bool:
            raise ValueError(f"ok must be a (T,) bool array, got {self.ok.shape} {self.ok.dtype}")
        for name, shape in (("root_xyz", (num_frames, 3)), ("root_rotvec", (num_frames, 3)),
                            ("reproj_error_px", (num_frames,)), ("fallback", (num_frames,))):
            found = getattr(self, name).shape
            if found != shape:
                raise ValueError(f"{name} must be {shape}, got {found}")


def _canonical_rotvec(rvec: np.ndarray) -> np.ndarray:
    """The rotation vector (3,) of ``rvec`` (3,)'s rotation with its angle in [0, pi] (solvePnP may return
    any angle; scipy's ``Rotation.as_rotvec`` gives this form)."""
    angle = float(np.linalg.norm(rvec))
    if angle <= math.pi:
        return rvec
    wrapped = (angle + math.pi) % (2 * math.pi) - math.pi  # the same turn about the same axis, in [-pi, pi)
    return rvec * (wrapped / angle)


def _project(points_cam: np.ndarray, camera_matrix: np.ndarray) -> np.ndarray:
    z = points_cam[:, 2]
    return np.stack([camera_matrix[0, 0] * points_cam[:, 0] / z + camera_matrix[0, 2],
                     camera_matrix[1, 1] * points_cam[:, 1] / z + camera_matrix[1, 2]], axis=1)


def _rms_error(model_xyz: np.ndarray, image_xy: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
               camera_matrix: np.ndarray) -> float:
    cam = model_xyz @ rotation.T + translation
    if np.any(cam[:, 2] <= 0):
        return math.inf
    return float(np.sqrt(np.mean(np.sum((_project(cam, camera_matrix) - image_xy) ** 2, axis=1))))


def _solve_translation(model_xyz: np.ndarray, image_xy: np.ndarray, camera_matrix: np.ndarray,
                       iterations: int = 5) -> np.ndarray | None:
    """Translation t (3,) with R = I for ``model_xyz`` (n, 3) seen at ``image_xy`` (n, 2); None if degenerate."""
    fx, fy, cx, cy = camera_matrix[0, 0], camera_matrix[1, 1], camera_matrix[0, 2], camera_matrix[1, 2]
    xn = (image_xy[:, 0] - cx) / fx
    yn = (image_xy[:, 1] - cy) / fy
    n = model_xyz.shape[0]
    a = np.zeros((2 * n, 3))
    b = np.empty(2 * n)
    a[:n, 0], a[:n, 2], b[:n] = 1.0, -xn, xn * model_xyz[:, 2] - model_xyz[:, 0]
    a[n:, 1], a[n:, 2], b[n:] = 1.0, -yn, yn * model_xyz[:, 2] - model_xyz[:, 1]
    t, *_ = np.linalg.lstsq(a, b, rcond=None)
    if not np.all(np.isfinite(t)):
        return None
    for _ in range(iterations):  # Gauss-Newton on the pixel error
        cam = model_xyz + t
        if np.any(cam[:, 2] <= 0):
            return None
        z = cam[:, 2]
        residual = (_project(cam, camera_matrix) - image_xy).ravel()
        jac = np.zeros((n, 2, 3))
        jac[:, 0, 0] = fx / z
        jac[:, 0, 2] = -fx * cam[:, 0] / z ** 2
        jac[:, 1, 1] = fy / z
        jac[:, 1, 2] = -fy * cam[:, 1] / z ** 2
        step, *_ = np.linalg.lstsq(jac.reshape(2 * n, 3), -residual, rcond=None)
        t = t + step
        if float(np.linalg.norm(step)) < 1e-9 * max(1.0, float(np.linalg.norm(t))):
            break
    return t if t[2] > 0 and np.all(np.isfinite(t)) else None


def estimate_root_trajectory(xy: np.ndarray, xyz: np.ndarray, conf: np.ndarray, intrinsics: Intrinsics,
                             min_conf: float = 0.5, max_rotation_deg: float = 45.0) -> RootSolve:
    """Camera-space hip-midpoint trajectory from image ``xy`` (T, J, 2) px and model-space ``xyz`` (T, J, 3) m.

    ``conf`` (T, J) in [0, 1] selects joints (>= ``min_conf``).  Assumes a
    static camera with ``intrinsics`` and no lens distortion.  See the module
    docstring for the method; rotations beyond ``max_rotation_deg`` from
    identity trigger the translation-only fallback.  With J = 33 (BlazePose)
    the root is the model's hip midpoint mapped to camera space, otherwise
    the model origin.
    """
    # Rotations through OpenCV (cv2.Rodrigues), not scipy's Rotation: importing scipy.spatial costs a
    # process 0.34-0.49 s on the shared 2-core machine, about a tenth of a 120-frame --no-faces analysis,
    # and nothing else on that path needs it.
    import cv2

    xy = np.asarray(xy, dtype=np.float64)
    xyz = np.asarray(xyz, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[2] != 2:
        raise ValueError(f"xy must be (T, J, 2), got {xy.shape}")
    num_frames, num_joints = xy.shape[:2]
    if xyz.shape != (num_frames, num_joints, 3):
        raise ValueError(f"xyz must be (T, J, 3) = {(num_frames, num_joints, 3)}, got {xyz.shape}")
    if conf.shape != (num_frames, num_joints):
        raise ValueError(f"conf must be (T, J) = {(num_frames, num_joints)}, got {conf.shape}")
    if not 0.0 <= max_rotation_deg <= 180.0:
        raise ValueError(f"max_rotation_deg must be in [0, 180], got {max_rotation_deg}")

    camera_matrix = intrinsics.matrix
    max_angle = math.radians(max_rotation_deg)
    usable = (conf >= min_conf) & np.all(np.isfinite(xy), axis=2) & np.all(np.isfinite(xyz), axis=2)
    root_xyz = np.full((num_frames, 3), np.nan)
    root_rotvec = np.full((num_frames, 3), np.nan)
    reproj_error = np.full(num_frames, np.nan)
    ok = np.zeros(num_frames, dtype=bool)
    fallback = np.zeros(num_frames, dtype=bool)
    previous: tuple[np.ndarray, np.ndarray] | None = None

    for t in range(num_frames):
        joints = np.nonzero(usable[t])[0]
        if joints.size < MIN_JOINTS:
            continue
        model = np.ascontiguousarray(xyz[t, joints])
        image = np.ascontiguousarray(xy[t, joints])
        t_only = _solve_translation(model, image, camera_matrix)

        guesses = []
        if previous is not None:
            guesses.append(previous)
        if t_only is not None:
            guesses.append((np.zeros(3), t_only))
        if previous is None:
            try:
                found, rvec, tvec = cv2.solvePnP(model, image, camera_matrix, None, flags=cv2.SOLVEPNP_SQPNP)
            except cv2.error:  # degenerate point sets (collinear joints) are reported by raising
                found = False
            if found:
                guesses.append((rvec.ravel(), tvec.ravel()))

        best = None
        for rvec0, tvec0 in guesses:
            try:
                found, rvec, tvec = cv2.solvePnP(model, image, camera_matrix, None,
                                                 rvec=rvec0.reshape(3, 1).copy(), tvec=tvec0.reshape(3, 1).copy(),
                                                 useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
            except cv2.error:
                continue
            if not found:
                continue
            rvec = _canonical_rotvec(rvec.ravel())
            if float(np.linalg.norm(rvec)) > max_angle:
                continue
            rotation = cv2.Rodrigues(rvec)[0]
            error = _rms_error(model, image, rotation, tvec.ravel(), camera_matrix)
            if math.isfinite(error) and (best is None or error < best[0]):
                best = (error, rvec, rotation, tvec.ravel())

        used_fallback = best is None
        if used_fallback:
            if t_only is None:
                continue
            best = (_rms_error(model, image, np.eye(3), t_only, camera_matrix), np.zeros(3), np.eye(3), t_only)
        error, rvec, rotation, translation = best
        hips = xyz[t, list(_HIPS)] if num_joints == len(BLAZEPOSE_33.joint_names) else np.zeros((1, 3))
        hip_mid = hips.mean(axis=0) if np.all(np.isfinite(hips)) else np.zeros(3)
        root_xyz[t] = rotation @ hip_mid + translation
        root_rotvec[t] = rvec
        reproj_error[t] = error
        ok[t] = True
        fallback[t] = used_fallback
        previous = (root_rotvec[t].copy(), translation.copy())

    return RootSolve(root_xyz=root_xyz, root_rotvec=root_rotvec, reproj_error_px=reproj_error, ok=ok,
                     fallback=fallback)
