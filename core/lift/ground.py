"""One world for everyone: a ground plane shared by all tracks, feet contact flags, roots placed on the floor.

Legend: T frames, J joints, P points per foot, N contact samples.

Every track already lives in one camera space (OpenCV axes, metres: ``xyz + root_xyz``), but each root's depth
comes from that person's own PnP solve, and a person's size is only known roughly, so two people standing on
one floor can come out at slightly different heights.  Here:

1. ``up`` is the mean trunk direction (hip midpoint -> shoulder midpoint) over all tracks and frames.
2. Candidate contacts: per track and foot, the frames where the foot is slow (a foot in stance; a height
   threshold along ``up`` would fail, since a walker's trunk leans and the floor seen along it tilts).
3. The plane is fitted to all tracks' candidate points (SVD, one robust refit on the inliers).  Points along
   a line (one person walking straight) fix the tilt along it only; where they cannot fix a tilt at all (one
   person standing still: a small patch), the normal is ``up``.
4. Each root is moved along the normal so that its feet in contact lie on the plane (the median of their
   heights), by at most ``max_shift``: what is left of a person's size error once PnP has fixed the depth.
   (Scaling the depth along the camera ray instead is ill-conditioned for a camera at hip height, where the
   ray is nearly parallel to the floor: a 1 cm height error became a 1 m depth change.)
5. Contact flags (T, 2) per track come from height above the plane and speed, with hysteresis
   (:func:`rigcast.retarget.contact.detect_contact`, the same rule retargeting uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..skeletons import BLAZEPOSE_33

FOOT_JOINTS = tuple(tuple(BLAZEPOSE_33.index(f"{side}_{n}") for n in ("heel", "foot_index", "ankle"))
                    for side in ("left", "right"))
_SHOULDERS = (BLAZEPOSE_33.index("left_shoulder"), BLAZEPOSE_33.index("right_shoulder"))
_HIPS = (BLAZEPOSE_33.index("left_hip"), BLAZEPOSE_33.index("right_hip"))


@dataclass(frozen=True)
class GroundOptions:
    """Metres, metres per second."""

    candidate_speed: float = 0.35
    inlier: float = 0.03
    min_patch: float = 0.3
    """The candidates must spread at least this far in both directions along the floor to tilt the plane."""
    max_tilt_deg: float = 30.0
    max_shift: float = 0.15
    """A root moves by at most this far along the normal to put its feet on the common floor."""


@dataclass(frozen=True)
class Ground:
    """The floor: points x (camera space, metres) with ``normal @ x == offset``; ``normal`` (3,) points up.
    ``fit_rms_m``: RMS distance of the contact points to it; ``num_points``: how many; ``tilted``: whether the
    normal was fitted (else it is the people's mean up)."""

    normal: np.ndarray
    offset: float
    fit_rms_m: float
    num_points: int
    tilted: bool

    def height(self, points: np.ndarray) -> np.ndarray:
        """Signed height above the floor of ``points`` (..., 3)."""
        return points @ self.normal - self.offset

    def to_dict(self) -> dict:
        return {"normal": [round(float(v), 6) for v in self.normal], "offset_m": round(float(self.offset), 6),
                "fit_rms_m": round(float(self.fit_rms_m), 6), "num_points": int(self.num_points),
                "tilted": bool(self.tilted)}


def _camera_feet(xyz: np.ndarray, root_xyz: np.ndarray) -> np.ndarray:
    """Foot points (T, 2, P, 3) in camera space."""
    return xyz[:, np.array(FOOT_JOINTS)] + root_xyz[:, None, None, :]


def _speed(points: np.ndarray, time_s: np.ndarray, half: int = 2) -> np.ndarray:
    """Speed (T, ...) of ``points`` (T, ..., 3), central differences over ``half`` frames either side."""
    t = np.arange(len(points))
    hi, lo = np.minimum(t + half, len(points) - 1), np.maximum(t - half, 0)
    dt = np.maximum(time_s[hi] - time_s[lo], 1e-9).reshape((-1,) + (1,) * (points.ndim - 2))
    return np.linalg.norm(points[hi] - points[lo], axis=-1) / dt


def body_up(tracks_xyz: list[np.ndarray]) -> np.ndarray:
    """Unit (3,) mean trunk direction (hips -> shoulders) over all tracks' frames; camera -y without any."""
    trunks = [0.5 * (x[:, _SHOULDERS[0]] + x[:, _SHOULDERS[1]] - x[:, _HIPS[0]] - x[:, _HIPS[1]]) for x in tracks_xyz]
    trunks = np.concatenate(trunks) if trunks else np.zeros((0, 3))
    trunks = trunks[np.all(np.isfinite(trunks), axis=1)]
    if not len(trunks):
        return np.array([0.0, -1.0, 0.0])
    up = np.mean(trunks / np.linalg.norm(trunks, axis=1, keepdims=True), axis=0)
    return up / np.linalg.norm(up)


def _candidates(feet: np.ndarray, time_s: np.ndarray, options: GroundOptions) -> np.ndarray:
    """(T, 2) whether each foot is slow enough to be in stance."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames without a foot
        speed = _speed(np.nanmean(feet, axis=2), time_s)
    return np.nan_to_num(speed, nan=np.inf) < options.candidate_speed


def _lowest_point(feet: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(T, 2, 3): each foot's point lowest along ``up``."""
    h = np.where(np.all(np.isfinite(feet), axis=-1), feet @ up, np.inf)
    idx = np.argmin(h, axis=2)
    return np.take_along_axis(feet, idx[:, :, None, None], axis=2)[:, :, 0]


def fit_plane(points: np.ndarray, up: np.ndarray, options: GroundOptions = GroundOptions()) -> Ground:
    """The floor through ``points`` (N, 3), its normal near ``up`` (see the module docstring)."""
    up = up / np.linalg.norm(up)
    if len(points) == 0:
        return Ground(up, float("nan"), float("nan"), 0, False)
    normal, tilted = up, False
    keep = np.ones(len(points), dtype=bool)
    for _ in range(2):
        p = points[keep]
        centre = p.mean(axis=0)
        _, sv, vt = np.linalg.svd(p - centre, full_matrices=False)
        spread = sv / np.sqrt(max(len(p), 1))
        candidate = None
        if len(p) >= 3 and spread.size == 3 and spread[1] >= options.min_patch / 4:
            candidate = vt[-1]  # a patch: the plane's own normal
        elif len(p) >= 2 and spread.size >= 1 and spread[0] >= options.min_patch / 4:
            # A line (one person walking straight): the floor holds that line; the normal is ``up`` with its
            # component along the line taken out.
            line = vt[0]
            candidate = up - (up @ line) * line
            candidate /= np.linalg.norm(candidate)
        if candidate is not None:
            candidate = candidate if candidate @ up > 0 else -candidate
            if np.degrees(np.arccos(np.clip(candidate @ up, -1, 1))) <= options.max_tilt_deg:
                normal, tilted = candidate, True  # else the refit on the inliers keeps the previous normal
        offset = float(np.median(p @ normal))
        keep = np.abs(points @ normal - offset) <= options.inlier
        if keep.sum() < 3:
            keep = np.ones(len(points), dtype=bool)
    residual = points[keep] @ normal - offset
    return Ground(normal, offset, float(np.sqrt(np.mean(residual ** 2))), int(keep.sum()), tilted)


def ground_tracks(tracks_xyz: list[np.ndarray], tracks_root: list[np.ndarray], time_s: list[np.ndarray],
                  fps: float, options: GroundOptions = GroundOptions(), tracks_conf: list[np.ndarray] | None = None
                  ) -> tuple[Ground | None, list[np.ndarray], list[np.ndarray]]:
    """The common floor of all tracks, each root placed on it, and each track's contact flags.

    Per track: ``xyz`` (T, J=33, 3) hip-centred metres, ``root_xyz`` (T, 3) camera space, ``time_s`` (T,),
    and optionally ``conf`` (T, J): a foot whose joints are not all seen (conf >= 0.5) in a frame is neither
    a floor point nor in contact there (the model still places feet it cannot see, and holds them still).
    Returns ``(ground or None when no foot was seen, roots [(T, 3)], contact [(T, 2) bool])``.
    """
    from ..retarget.contact import ContactOptions, detect_contact

    up = body_up(tracks_xyz)
    feet = [_camera_feet(x, r) for x, r in zip(tracks_xyz, tracks_root)]
    seen = [np.ones((len(r), 2), dtype=bool) if tracks_conf is None else
            np.all(np.asarray(c)[:, np.array(FOOT_JOINTS)] >= 0.5, axis=2)
            for r, c in zip(tracks_root, tracks_conf or tracks_root)]
    cands = [_candidates(f, t, options) & v for f, t, v in zip(feet, time_s, seen)]
    ground = None
    for _ in range(2):  # the lowest point of each foot along the latest normal, then the plane through them
        normal = up if ground is None else ground.normal
        points = np.concatenate([_lowest_point(f, normal)[c] for f, c in zip(feet, cands)]) if feet \
            else np.zeros((0, 3))
        points = points[np.all(np.isfinite(points), axis=1)]
        if len(points) == 0:
            return None, [np.asarray(r, dtype=np.float64) for r in tracks_root], [
                np.zeros((len(r), 2), dtype=bool) for r in tracks_root]
        ground = fit_plane(points, up, options)
    roots, contacts = [], []
    for x, r, f, c, v in zip(tracks_xyz, tracks_root, feet, cands, seen):
        r = np.asarray(r, dtype=np.float64)
        heights = ground.height(_lowest_point(f, ground.normal))[c]  # the contact candidates' heights
        heights = heights[np.isfinite(heights)]
        shift = float(np.clip(np.median(heights), -options.max_shift, options.max_shift)) if heights.size else 0.0
        r = r - shift * ground.normal
        roots.append(r)
        placed = _camera_feet(x, r)  # (T, 2, P, 3)
        # Into a floor frame (z = height above the floor) for the shared contact rule.
        e1 = np.cross(ground.normal, [1.0, 0.0, 0.0])
        if np.linalg.norm(e1) < 1e-6:
            e1 = np.cross(ground.normal, [0.0, 0.0, 1.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(ground.normal, e1)
        floor_xyz = np.stack([placed @ e1, placed @ e2, ground.height(placed)], axis=-1)
        contacts.append(detect_contact(floor_xyz, fps, 0.0, ContactOptions()) & v)
    return ground, roots, contacts
