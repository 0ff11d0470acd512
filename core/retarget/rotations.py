"""Small vectorised rotation helpers shared by the retargeting stages.

Rotations are (..., 3, 3) matrices acting on column vectors (``v' = R @ v``);
quaternions cross module boundaries w-first (``quat_wxyz``).  NaN inputs give
NaN outputs rather than raising: a joint missing from a frame must not stop a
take.

Everything here is numpy, SciPy-free on purpose: ``scipy.spatial`` takes
0.25-0.3 s to import (its ``__init__`` loads distance, qhull and kd-trees
too), which every headless render of a character paid at start-up.  The
conversions follow ``scipy.spatial.transform.Rotation`` (its nearest-rotation
projection, its choice of branch and sign) and the tests hold them to it.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-9


def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along ``v`` (..., 3); zero-length or NaN vectors become NaN."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > _EPS, v / np.where(n > _EPS, n, 1.0), np.nan)


def skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrices (..., 3, 3) of ``v`` (..., 3): ``skew(a) @ b == cross(a, b)``."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    o = np.zeros_like(x)
    return np.stack([np.stack([o, -z, y], -1), np.stack([z, o, -x], -1), np.stack([-y, x, o], -1)], -2)


def axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) by ``angle`` (...) radians about unit ``axis`` (..., 3) (Rodrigues)."""
    k = skew(np.asarray(axis, dtype=np.float64))
    a = np.asarray(angle, dtype=np.float64)[..., None, None]
    return np.eye(3) + np.sin(a) * k + (1.0 - np.cos(a)) * (k @ k)


def shortest_arc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotations (..., 3, 3) taking direction ``a`` to direction ``b`` (..., 3).

    With unit a, b, v = a x b, c = a . b, the rotation about v/|v| by the angle
    whose cosine is c is ``I + [v]x + [v]x^2 / (1 + c)`` (Rodrigues with
    sin = |v|, 1 - cos = |v|^2 / (1 + c)).  Opposite directions (c -> -1) have
    no unique answer; they turn by 180 degrees about any axis normal to a.
    NaN directions give NaN rotations.
    """
    a = normalize(a)
    b = normalize(b)
    a, b = np.broadcast_arrays(a, b)
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    k = skew(v)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.eye(3) + k + (k @ k) / (1.0 + c)[..., None, None]
    opposite = c < -1.0 + 1e-8
    if np.any(opposite):
        ao = a[opposite]
        helper = np.where(np.abs(ao[:, :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
        axis = normalize(np.cross(ao, helper))
        r[opposite] = axis_angle_matrix(axis, np.pi)
    return r


def frame_from_axes(primary: np.ndarray, secondary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal frames (..., 3, 3) whose columns are (p, s_perp, p x s_perp), and their sine.

    ``p`` is ``primary`` normalised and ``s_perp`` is ``secondary`` with its
    component along p removed (Gram-Schmidt), normalised.  The second return
    value (...) is sin of the angle between the two inputs: how well the
    secondary axis defines a twist (0 = parallel, undefined; NaN = missing).
    """
    p = normalize(primary)
    s = np.asarray(secondary, dtype=np.float64)
    sin = np.linalg.norm(np.cross(p, normalize(s)), axis=-1)
    s_perp = normalize(s - np.sum(s * p, axis=-1, keepdims=True) * p)
    return np.stack([p, s_perp, np.cross(p, s_perp)], axis=-1), sin


def smoothstep_weight(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """0 below ``lo``, 1 above ``hi``, a smooth cubic between; NaN counts as 0."""
    t = np.clip((np.nan_to_num(np.asarray(x, dtype=np.float64), nan=lo) - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def matrix_to_quat_wxyz(m: np.ndarray, *, orthonormal: bool = False) -> np.ndarray:
    """Quaternions (..., 4) w-first of rotation matrices (..., 3, 3); NaN matrices give NaN.

    A matrix that is not orthonormal (its Gram matrix off the identity by more
    than 1e-12) is first replaced by the nearest rotation, U @ Vt of its SVD;
    ``orthonormal=True`` skips that check, for matrices built as products of
    rotations.  A matrix with determinant <= 0 is no rotation: ValueError.

    The quaternion is read off the largest of (m00, m11, m22, trace), the
    branch that divides by the largest of |x|, |y|, |z|, |w| (Shepperd's
    method): with trace t, 4w^2 = 1 + t and 4x^2 = 1 - t + 2 m00, and the
    other components follow from the symmetric (m_ij + m_ji = 4 q_i q_j) and
    antisymmetric (m_kj - m_jk = 4 w q_i) parts; the chosen one's sign is
    positive, then all are normalised.
    """
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    flat = m.reshape(-1, 3, 3)
    out = np.full((flat.shape[0], 4), np.nan)
    ok = np.all(np.isfinite(flat), axis=(1, 2))
    r = flat[ok]
    if r.shape[0] == 0:
        return out.reshape(shape + (4,))
    if not orthonormal:
        bad = np.flatnonzero(np.linalg.det(r) <= 0)
        if bad.size:
            raise ValueError(f"matrix {int(np.flatnonzero(ok)[bad[0]])} has determinant <= 0: not a rotation")
        off = ~np.all(np.isclose(r @ np.swapaxes(r, -1, -2), np.eye(3), rtol=1e-5, atol=1e-12), axis=(1, 2))
        if np.any(off):
            u, _, vt = np.linalg.svd(r[off])
            r = r.copy()
            r[off] = u @ vt
    trace = r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    choice = np.argmax(np.stack([r[:, 0, 0], r[:, 1, 1], r[:, 2, 2], trace], axis=-1), axis=-1)
    sym = lambda i, j: r[:, i, j] + r[:, j, i]  # noqa: E731
    anti = lambda i, j: r[:, i, j] - r[:, j, i]  # noqa: E731
    cases = np.stack([  # (4 cases, N, xyzw)
        np.stack([1 - trace + 2 * r[:, 0, 0], sym(1, 0), sym(2, 0), anti(2, 1)], -1),
        np.stack([sym(1, 0), 1 - trace + 2 * r[:, 1, 1], sym(2, 1), anti(0, 2)], -1),
        np.stack([sym(2, 0), sym(2, 1), 1 - trace + 2 * r[:, 2, 2], anti(1, 0)], -1),
        np.stack([anti(2, 1), anti(0, 2), anti(1, 0), 1 + trace], -1),
    ])
    xyzw = cases[choice, np.arange(r.shape[0])]
    xyzw /= np.linalg.norm(xyzw, axis=-1, keepdims=True)
    out[ok] = xyzw[:, [3, 0, 1, 2]]
    return out.reshape(shape + (4,))


def twist_angle(r: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Signed angles (...) of rotations (..., 3, 3) known to turn about unit ``axis`` (..., 3).

    For R = rotation by a about unit n: (R - R^T) / 2 = sin(a) [n]x and
    trace(R) = 1 + 2 cos(a), so a = atan2(n . vee(R - R^T) / 2, (trace - 1) / 2).
    """
    vee = np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    return np.arctan2(0.5 * np.sum(vee * axis, axis=-1), 0.5 * (np.trace(r, axis1=-2, axis2=-1) - 1.0))


def quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) w-first (normalised on the way; NaN gives NaN).

    A zero quaternion is no rotation: ValueError.
    """
    q = np.asarray(q, dtype=np.float64)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("a zero quaternion is not a rotation")
    w, x, y, z = np.moveaxis(q / norm, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def mean_rotation(r: np.ndarray) -> np.ndarray:
    """The mean (3, 3) of rotations (N, 3, 3), N >= 1: the rotation whose quaternion q maximises
    sum_i (q . q_i)^2 (Markley's average, what SciPy's ``Rotation.mean`` computes), the eigenvector of
    sum_i q_i q_i^T with the largest eigenvalue.  Indifferent to each q_i's sign."""
    q = matrix_to_quat_wxyz(r)
    _, vectors = np.linalg.eigh(np.einsum("ni,nj->ij", q, q) / len(q))
    return quat_wxyz_to_matrix(vectors[:, -1])


def turn_toward(current: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Rotations (N, 3, 3) a fraction ``weight`` (N,) of the way from ``current`` to ``target`` (N, 3, 3).

    The step ``target @ current^T`` is taken the short way (angle theta in [0, pi], its quaternion with
    w >= 0) and scaled in angle: q(w) = (cos(w theta / 2), sin(w theta / 2) n), then applied on the left.
    """
    step = matrix_to_quat_wxyz(target @ np.swapaxes(current, -1, -2))
    step = np.where(step[:, :1] < 0, -step, step)  # the short way round
    sin_half = np.linalg.norm(step[:, 1:], axis=-1)
    theta = 2.0 * np.arctan2(sin_half, step[:, 0])
    weight = np.asarray(weight, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        # sin(w theta / 2) / sin(theta / 2) -> w as theta -> 0
        scale = np.where(sin_half > 1e-12, np.sin(weight * theta / 2.0) / sin_half, weight)
    scaled = np.concatenate([np.cos(weight * theta / 2.0)[:, None], scale[:, None] * step[:, 1:]], axis=-1)
    return quat_wxyz_to_matrix(scaled) @ current


def continuous_quat(q_wxyz: np.ndarray) -> np.ndarray:
    """Quaternions (T, ..., 4) with signs flipped so consecutive frames have w-dot >= 0.

    q and -q are the same rotation, but fcurves interpolate components, so a
    sign flip between frames spins the bone through the long way.  The first
    frame is made w >= 0; each later frame takes the sign that agrees with its
    predecessor (vectorised: a frame's flip parity is the running count of
    sign disagreements up to it).
    """
    q = np.array(q_wxyz, dtype=np.float64)
    if q.shape[0] == 0:
        return q
    first_negative = q[0, ..., 0] < 0
    q[0][first_negative] *= -1.0
    disagree = np.sum(q[1:] * q[:-1], axis=-1) < 0
    parity = np.cumsum(disagree, axis=0) % 2 == 1
    q[1:][parity] *= -1.0
    return q


def rotation_angle_deg(r: np.ndarray) -> np.ndarray:
    """Angles (...) in degrees of rotation matrices (..., 3, 3)."""
    tr = np.trace(np.asarray(r), axis1=-2, axis2=-1)
    return np.degrees(np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0)))
