"""Foot contact, grounding and foot locking on a retargeted motion.

Legend: T frames, B bones, K canonical points, P points per foot.

* Contact (T, 2) [left, right] comes from foot height above the floor and
  foot speed, with hysteresis: a foot lands when it is low *and* slow, and
  lifts when it is high *or* fast.  Speeds are central differences over
  ``speed_window_s`` either side, which keeps 1 cm of per-frame jitter
  (about 0.4 m/s frame to frame at 30 fps, 0.1 m/s over +-2 frames) under
  the thresholds.
* Grounding moves the root vertically so the lowest planted foot point sits
  on the rig's rest floor; between contacts the offset is interpolated, so
  jumps keep their flight.
* Locking holds each planted foot's ankle at its median position over the
  contact and its rotation (and its toes', which lie flat on the floor) at
  the mean rotation, by analytic two-bone IK on thigh and shin (law of
  cosines, knee kept in its current bend plane), and blends in and out over
  ``blend_frames``.  A target out of the leg's reach is approached as far as
  the leg goes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from .canonical import P, RigMarkers, body_axes
from .rig import Motion, RetargetError, Rig, fk
from .rotations import (matrix_to_quat_wxyz, mean_rotation, normalize, quat_wxyz_to_matrix, shortest_arc,
                        turn_toward)

FOOT_LOCK_MODES = ("auto", "always", "never", "grounding")
GROUND_ON = ("floor", "source")
SIDES = (("left", "L"), ("right", "R"))
FOOT_POINTS = ("ankle", "heel", "toe", "toe_end")


@dataclass(frozen=True)
class ContactOptions:
    """Thresholds for contact detection and locking (metres, metres per second, frames)."""

    height_on: float = 0.05
    height_off: float = 0.08
    speed_on: float = 0.35
    speed_off: float = 0.7
    speed_window_s: float = 0.07
    min_frames: int = 3
    blend_frames: int = 4
    auto_max_drift: float = 0.12
    """In ``auto`` mode a contact whose ankle wanders farther than this from its
    median is a real slide (or a tracking failure) and is not locked."""
    floor_percentile: float = 5.0
    follow_jitter: float = 0.004
    """In ``auto`` mode a planted foot follows the source's own foot motion (heel roll, toe pivot) unless that
    motion jitters by more than this (metres, estimated from second differences): a detector's jittering foot is
    held still instead."""
    ground_on: str = "floor"
    """Where grounding puts the planted feet: ``floor``, the rig's rest floor (mocap onto a character standing at
    Z = 0); ``source``, the source's own planted feet, scaled (a person placed in a scene, whose floor is where the
    footage shows their feet: grounding then only takes out the difference between the rig's legs and theirs)."""

    def __post_init__(self) -> None:
        if self.ground_on not in GROUND_ON:
            raise RetargetError(f"ground_on must be one of {GROUND_ON}, got {self.ground_on!r}")
        if not (0 <= self.height_on <= self.height_off):
            raise RetargetError(f"need 0 <= height_on <= height_off, got {self.height_on}, {self.height_off}")
        if not (0 <= self.speed_on <= self.speed_off):
            raise RetargetError(f"need 0 <= speed_on <= speed_off, got {self.speed_on}, {self.speed_off}")
        if self.speed_window_s <= 0 or self.min_frames < 1 or self.blend_frames < 0:
            raise RetargetError("speed_window_s must be > 0, min_frames >= 1 and blend_frames >= 0")


def contact_spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame ranges where a (T,) bool mask is true."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def detect_contact(foot_xyz: np.ndarray, fps: float, floor_z: float = 0.0,
                   options: ContactOptions = ContactOptions()) -> np.ndarray:
    """Contact flags (T, 2) from foot points (T, 2, P, 3) (NaN allowed), frame rate and floor height.

    Height is the lowest point of each foot above ``floor_z``; speed is the
    foot centroid's speed.  Hysteresis, vectorised: every frame is an event
    (+1 land, -1 lift, 0 keep) and the state is the latest event so far.
    Contacts shorter than ``min_frames`` are dropped.
    """
    foot_xyz = np.asarray(foot_xyz, dtype=np.float64)
    if foot_xyz.ndim != 4 or foot_xyz.shape[1] != 2 or foot_xyz.shape[3] != 3:
        raise RetargetError(f"foot_xyz must be (T, 2, P, 3), got {foot_xyz.shape}")
    t = foot_xyz.shape[0]
    if t == 0:
        return np.zeros((0, 2), dtype=bool)
    z = np.where(np.isfinite(foot_xyz[..., 2]), foot_xyz[..., 2], np.inf)
    height = z.min(axis=2) - floor_z
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames stay NaN
        centre = np.nanmean(foot_xyz, axis=2)
    k = max(1, int(round(options.speed_window_s * float(fps))))
    frames = np.arange(t)
    hi, lo = np.minimum(frames + k, t - 1), np.maximum(frames - k, 0)
    dt = np.maximum(hi - lo, 1) / float(fps)
    speed = np.linalg.norm(centre[hi] - centre[lo], axis=-1) / dt[:, None]
    speed = np.where(np.isfinite(speed), speed, np.inf)
    land = (height < options.height_on) & (speed < options.speed_on)
    lift = (height > options.height_off) | (speed > options.speed_off)
    event = np.where(land, 1, np.where(lift, -1, 0))
    event[0] = np.where(event[0] == 0, -1, event[0])
    latest = np.maximum.accumulate(np.where(event != 0, frames[:, None], 0), axis=0)
    contact = np.take_along_axis(event, latest, axis=0) == 1
    for side in range(2):
        for a, b in contact_spans(contact[:, side]):
            if b - a < options.min_frames:
                contact[a:b, side] = False
    return contact


def _foot_indices(markers: RigMarkers) -> list[list[int]]:
    return [[P[f"{side}_{n}"] for n in FOOT_POINTS if markers.bone[P[f"{side}_{n}"]] >= 0] for side, _ in SIDES]


def _local_quadratic_fit(x: np.ndarray, window: int = 7) -> np.ndarray:
    """Samples (N, D), N >= ``window`` (odd), replaced by a least-squares quadratic's value through the ``window``
    samples around each (Savitzky-Golay); the first and last ``window // 2`` take the quadratic through the first
    and last ``window`` samples (SciPy's ``savgol_filter(x, window, 2, axis=0)``, its default ``mode="interp"``).

    With V the (window, 3) Vandermonde matrix of offsets -h..h, the fit's values are H @ x for the hat matrix
    H = V (V^T V)^-1 V^T: its middle row is the sliding filter, its first and last h rows the ends."""
    h = window // 2
    offsets = np.arange(-h, h + 1, dtype=np.float64)
    v = np.stack([np.ones_like(offsets), offsets, offsets ** 2], axis=1)
    hat = v @ np.linalg.solve(v.T @ v, v.T)
    n = len(x)
    windows = np.stack([x[i:i + window] for i in range(n - window + 1)])  # (N - 2h, window, D)
    out = np.empty(x.shape, dtype=np.float64)
    out[h:n - h] = np.einsum("k,nkd->nd", hat[h], windows)
    out[:h] = hat[:h] @ x[:window]
    out[n - h:] = hat[h + 1:] @ x[n - window:]
    return out


def _jitter(xyz: np.ndarray) -> float:
    """Noise level (metres) of a trajectory (N, 3): the RMS distance from a local quadratic fit over 7 samples
    (Savitzky-Golay), about 0.8 sigma for white noise and near 0 for motion smooth over a fifth of a second at
    30 fps; 0 for fewer than 7 samples."""
    if len(xyz) < 7:
        return 0.0
    residual = xyz - _local_quadratic_fit(np.asarray(xyz, dtype=np.float64), 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(np.sqrt(np.nanmean(np.sum(residual ** 2, axis=1) / 3.0)))
    return value if np.isfinite(value) else 0.0


def apply_foot_contact(rig: Rig, motion: Motion, markers: RigMarkers, bone_indices: dict[str, int], mode: str,
                       fps: float, options: ContactOptions = ContactOptions(), *,
                       source_xyz: np.ndarray | None = None, scale: float = 1.0,
                       contact: np.ndarray | None = None, seen: np.ndarray | None = None
                       ) -> tuple[Motion, list[str]]:
    """Detect contacts, ground and (``auto``/``always``) lock the feet of ``motion``; returns a new motion and notes.

    ``contact`` (T, 2), when given (the analysis measured it in the camera's world), replaces detection.
    ``seen`` (T,), when given, marks the frames the source shows: the others (filled in between seen frames)
    never set the floor and never count as planted.

    ``mode``: ``never`` (unchanged), ``grounding`` (root height only),
    ``always`` (grounding, then every contact held still at its median, foot
    flat at its mean rotation), ``auto`` (grounding, then only the sliding is
    taken out: see below; contacts whose foot drifts more than
    ``options.auto_max_drift`` are a real slide and left alone).

    In ``auto`` mode with ``source_xyz`` (T, K, 3), the source's canonical
    points in the rig's space, and ``scale`` (rig / source lengths), a
    planted ankle is moved to where the source's own foot motion puts it:
    the result's pelvis plus ``scale`` times the source's pelvis -> ankle
    offset, taken relative to the contact's middle frame.  Clean mocap whose
    feet do not slide then needs only the small correction that the rig's
    other proportions make, and the foot keeps its own rotation (heel roll,
    toe pivot).  A source foot that jitters (more than
    ``options.follow_jitter``), or no source, is held still like ``always``.
    """
    if mode not in FOOT_LOCK_MODES:
        raise RetargetError(f"foot_lock must be one of {FOOT_LOCK_MODES}, got {mode!r}")
    notes: list[str] = []
    if mode == "never" or motion.num_frames == 0:
        return motion, notes
    feet = _foot_indices(markers)
    if not all(feet):
        notes.append("foot contact skipped: the rig's feet are not mapped")
        return motion, notes
    width = max(len(f) for f in feet)
    ids = np.array([f + [f[-1]] * (width - len(f)) for f in feet])  # (2, P), padded by repetition

    rest_pts = markers.rest_xyz(rig)
    rest_floor = float(np.min(rest_pts[ids.ravel(), 2]))
    pts = markers.posed_xyz(fk(rig, motion))
    foot_xyz = pts[:, ids]
    seen = np.ones(motion.num_frames, dtype=bool) if seen is None else np.asarray(seen, dtype=bool)
    if not seen.any():
        notes.append("foot contact skipped: no frame shows the source")
        return motion, notes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames without feet
        lowest = np.nanmin(foot_xyz[..., 2], axis=(1, 2))
        floor = float(np.nanpercentile(lowest[seen], options.floor_percentile))
    if not np.isfinite(floor):
        notes.append("foot contact skipped: no frame shows the feet")
        return motion, notes
    contact = detect_contact(foot_xyz, fps, floor, options) if contact is None else np.asarray(contact, dtype=bool)
    contact = contact & seen[:, None]

    # Grounding: on contact frames, lift or drop the root so the lowest planted
    # point is on the rest floor (or the source's, scaled); in between, interpolate the offset.
    planted_low = np.where(contact[:, :, None], foot_xyz[..., 2], np.inf).min(axis=(1, 2))
    target_low = np.full(motion.num_frames, rest_floor)
    target_floor = rest_floor
    if options.ground_on == "source" and source_xyz is not None:
        source_z = scale * np.asarray(source_xyz, dtype=np.float64)[:, ids, 2]
        source_z = np.where(np.isfinite(source_z), source_z, np.inf)
        target_low = np.where(contact[:, :, None], source_z, np.inf).min(axis=(1, 2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            source_lowest = np.where(seen, source_z.min(axis=(1, 2)), np.nan)
            source_lowest = np.where(np.isfinite(source_lowest), source_lowest, np.nan)
            target_floor = float(np.nanpercentile(source_lowest, options.floor_percentile))
        if not np.isfinite(target_floor):
            target_floor = rest_floor
    on = np.flatnonzero(np.isfinite(planted_low) & np.isfinite(target_low))
    frames = np.arange(motion.num_frames)
    if on.size:
        offset = np.interp(frames, on, target_low[on] - planted_low[on])
    else:
        offset = np.full(motion.num_frames, target_floor - floor)
        notes.append("no foot contact found; the floor was placed at the feet's low point")
    # A root location is in the carrier bone's rest frame: world shift = R_carrier @ location.
    r_carrier = rig.rest_matrix[motion.root_bone, :3, :3]
    shift = np.zeros((motion.num_frames, 3))
    shift[:, 2] = offset
    motion = replace(motion, root_translation=motion.root_translation + shift @ r_carrier, contact=contact)
    if mode == "grounding":
        return motion, notes

    pose = fk(rig, motion)
    pts = markers.posed_xyz(pose)
    world = pose[..., :3, :3]
    local = quat_wxyz_to_matrix(motion.local_quat_wxyz)
    rel = rig.rest_relative[:, :3, :3]
    body_forward = body_axes(rest_pts)[2]
    changed = False
    follow = mode == "auto" and source_xyz is not None
    if follow:
        source_xyz = np.asarray(source_xyz, dtype=np.float64)
        if source_xyz.shape != pts.shape:
            raise RetargetError(f"source_xyz must be (T, K, 3) = {pts.shape}, got {source_xyz.shape}")
    for i, (side, s) in enumerate(SIDES):
        toes = bone_indices.get(f"toes.{s}")
        if toes is not None and rig.parents[toes] != bone_indices.get(f"foot.{s}"):
            toes = None  # only a toe bone hanging straight off the foot is held
        bones = [bone_indices.get(f"{n}.{s}") for n in ("thigh", "shin", "foot")]
        if None in bones:
            notes.append(f"foot locking skipped on the {side}: thigh, shin and foot must all be mapped")
            continue
        thigh, shin, foot = bones
        if thigh not in rig.ancestors(shin) or not (shin == rig.parents[foot] or shin in rig.ancestors(foot)):
            notes.append(f"foot locking skipped on the {side}: thigh -> shin -> foot is not a chain in the rig")
            continue
        hip, knee, ankle = P[f"{side}_hip"], P[f"{side}_knee"], P[f"{side}_ankle"]
        weight = np.zeros(motion.num_frames)
        anchor_pos = np.zeros((motion.num_frames, 3))
        anchor_rot = np.tile(np.eye(3), (motion.num_frames, 1, 1))
        anchor_toes = np.tile(np.eye(3), (motion.num_frames, 1, 1))
        for a, b in contact_spans(contact[:, i]):
            centre = np.median(pts[a:b, ankle], axis=0)
            drift = float(np.max(np.linalg.norm(pts[a:b, ankle] - centre, axis=1)))
            expected = None
            if follow:
                # Where the source's own foot goes: the result's pelvis plus the source's pelvis -> ankle, scaled.
                expected = pts[a:b, P["pelvis"]] + scale * (source_xyz[a:b, ankle] - source_xyz[a:b, P["pelvis"]])
                if not np.all(np.isfinite(expected)) or _jitter(expected) > options.follow_jitter:
                    expected = None  # a jittering (detector) foot is held still instead
            if expected is not None:
                # A planted source foot is followed whatever the scaled result does (that is the sliding to fix);
                # one that travels in the source too is a glide, left alone.
                own = scale * source_xyz[a:b, ankle]
                drift = float(np.max(np.linalg.norm(own - np.median(own, axis=0), axis=1)))
            if mode == "auto" and drift > options.auto_max_drift:
                notes.append(f"{side} foot slides {drift:.2f} m over frames {a}-{b - 1}; not locked")
                continue
            if expected is not None:
                mid = (b - a) // 2
                target = pts[a + mid, ankle] + expected - expected[mid]
                rots = world[a:b, foot]
                toes_rots = world[a:b, toes] if toes is not None else rots
            else:
                target = np.broadcast_to(centre, (b - a, 3))
                rots = np.broadcast_to(mean_rotation(world[a:b, foot]), (b - a, 3, 3))
                # A planted foot's toes lie flat on the floor, even while the heel rises.
                toes_rots = (np.broadcast_to(mean_rotation(world[a:b, toes]), (b - a, 3, 3))
                             if toes is not None else rots)
            n = options.blend_frames
            for f in range(max(a - n, 0), min(b + n, motion.num_frames)):
                w = 1.0 if a <= f < b else 1.0 - (a - f if f < a else f - b + 1) / (n + 1)
                # Blend frames take the nearest contact frame's *correction*, carried with the moving foot
                # (a fixed anchor would drag a foot already swinging back toward where it stood).
                j = min(max(f - a, 0), b - a - 1)
                if w > weight[f]:
                    weight[f] = w
                    anchor_pos[f] = pts[f, ankle] + target[j] - pts[a + j, ankle]
                    anchor_rot[f] = rots[j] @ world[a + j, foot].T @ world[f, foot]
                    if toes is not None:
                        anchor_toes[f] = toes_rots[j] @ world[a + j, toes].T @ world[f, toes]
        f = np.flatnonzero(weight > 0)
        if f.size == 0:
            continue
        changed = True
        w = weight[f]
        h, k, a_now = pts[f, hip], pts[f, knee], pts[f, ankle]
        len_a = np.linalg.norm(rest_pts[knee] - rest_pts[hip])
        len_b = np.linalg.norm(rest_pts[ankle] - rest_pts[knee])
        want = a_now + w[:, None] * (anchor_pos[f] - a_now)
        # Two-bone IK.  Hip h, knee k, ankle target t, |hk| = a, |kt| = b, d = |ht|
        # (clamped to the reachable range).  The new knee lies x = (a^2 - b^2 + d^2) / 2d
        # along the hip->target axis u and y = sqrt(a^2 - x^2) off it, toward the
        # current knee (its bend plane), or toward the body's forward if the leg is straight.
        axis = want - h
        dist = np.linalg.norm(axis, axis=1)
        u = normalize(axis)
        d = np.clip(dist, abs(len_a - len_b) + 1e-6, len_a + len_b - 1e-6)
        x = (len_a ** 2 - len_b ** 2 + d ** 2) / (2.0 * d)
        y = np.sqrt(np.maximum(len_a ** 2 - x ** 2, 0.0))
        hk = k - h
        pole = hk - np.sum(hk * u, axis=1, keepdims=True) * u
        # Straight-leg fallback: the body's forward, turned with the thigh's parent.
        p_thigh = rig.parents[thigh]
        parent_thigh = world[f, p_thigh] if p_thigh >= 0 else np.tile(np.eye(3), (f.size, 1, 1))
        r_parent = rig.rest_matrix[p_thigh, :3, :3] if p_thigh >= 0 else np.eye(3)
        forward = parent_thigh @ (r_parent.T @ body_forward)
        forward = forward - np.sum(forward * u, axis=1, keepdims=True) * u
        pole = np.where(np.linalg.norm(pole, axis=1, keepdims=True) > 1e-4, pole, forward)
        new_knee = h + x[:, None] * u + y[:, None] * normalize(pole)
        s1 = shortest_arc(hk, new_knee - h)  # thigh swing about the hip
        a1 = h + np.einsum("nij,nj->ni", s1, a_now - h)
        s2 = shortest_arc(a1 - new_knee, h + d[:, None] * u - new_knee)  # shin swing about the new knee
        new_thigh = s1 @ world[f, thigh]
        new_shin = s2 @ s1 @ world[f, shin]
        new_foot = turn_toward(world[f, foot], anchor_rot[f], w)
        # Back to pose-bone rotations with basis = rel^T @ parent_world^T @ world.
        # Bones between thigh and shin turn with the thigh (s1), bones between
        # shin and foot with the shin (s2 s1); their own basis is unchanged.
        p_shin, p_foot = rig.parents[shin], rig.parents[foot]
        parent_shin = s1 @ world[f, p_shin]
        parent_foot = s2 @ s1 @ world[f, p_foot]
        local[f, thigh] = rel[thigh].T @ np.swapaxes(parent_thigh, -1, -2) @ new_thigh
        local[f, shin] = rel[shin].T @ np.swapaxes(parent_shin, -1, -2) @ new_shin
        local[f, foot] = rel[foot].T @ np.swapaxes(parent_foot, -1, -2) @ new_foot
        if toes is not None:
            new_toes = turn_toward(world[f, toes], anchor_toes[f], w)
            local[f, toes] = rel[toes].T @ np.swapaxes(new_foot, -1, -2) @ new_toes
    if changed:
        motion = replace(motion, local_quat_wxyz=matrix_to_quat_wxyz(local, orthonormal=True)).with_continuous_signs()
    return motion, notes
