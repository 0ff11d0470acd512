"""The rotation solve: canonical point positions per frame -> pose-bone rotations on a rig.

Legend: T frames, K canonical points, B bones.

For each mapped bone, parents first (vectorised over frames, looping over
bones), with ``u`` the canonical segment (head point -> tail point) and ``s``
its twist reference (a second, non-parallel direction):

* **rest frame** ``F0 = frame(u_rest, s_rest)`` from the rig's rest markers
  (where the rig's own reference is degenerate, a straight rest limb, a body
  direction stands in: an elbow bends forward, a knee backward);
* **target frame** ``F(t) = frame(u(t), s(t))`` from the source;
* **full rotation**: the segment's world rotation since rest is
  ``D = F @ F0^T``, so the bone's armature-space orientation is
  ``Q_full = D @ R_rest`` (its rest orientation carried by D);
* **swing**: the bone carried rigidly by its already-solved parent has the
  orientation ``C = W_parent @ rel`` and the segment direction
  ``u_cur = C @ R_rest^T @ u_rest``; the shortest rotation S taking u_cur
  to u(t) gives ``Q_swing = S @ C``;
* both put the segment exactly on u(t), so ``Q_full @ Q_swing^T`` is a twist
  about u(t).  It is applied scaled by a confidence weight, 0 when the twist
  reference is (nearly) parallel to the segment (a straight arm says nothing
  about the upper arm's twist) or missing, 1 when it is well defined.

Nothing assumes a T- or A-pose: only rest-to-frame differences are used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..frames import as_fps
from .bone_map import BoneMap, detect_bone_map
from .canonical import (BONES, P, REST_RULES, SHARED_RULES, CanonicalPose, apply_rules, body_axes,
                        rig_markers)
from .contact import FOOT_LOCK_MODES, ContactOptions, apply_foot_contact
from .rig import Motion, RetargetError, Rig, world_to_local_rotations
from .rotations import (axis_angle_matrix, frame_from_axes, matrix_to_quat_wxyz, normalize, shortest_arc,
                        smoothstep_weight, twist_angle)

ROOT_MOTION_MODES = ("full", "in_place", "none")
DEFAULT_FPS = 30.0


class RetargetWarning(UserWarning):
    """Retargeting went ahead with less than it wanted (unmapped bones, an assumed frame rate)."""


@dataclass(frozen=True)
class RetargetOptions:
    """How :func:`retarget` solves.

    ``root_motion``: ``full`` (the source's trajectory, scaled), ``in_place``
    (height only) or ``none``.  ``root_bone``: the bone whose location carries
    it, the mapped hips by default, or an ancestor of the hips (a separate
    root bone).  ``scale``: source-to-rig length factor; by default rig leg
    length / source leg length.  ``foot_lock``: ``auto``, ``always``,
    ``never`` or ``grounding`` (see :mod:`rigcast.retarget.contact`).
    Twist references weigh 0 below ``twist_min_deg`` of angle to their
    segment and 1 above ``twist_full_deg``; a rest reference closer than
    ``rest_bend_min_deg`` is replaced by the body direction.
    """

    root_motion: str = "full"
    root_bone: str | None = None
    scale: float | None = None
    foot_lock: str = "auto"
    contact: ContactOptions = field(default_factory=ContactOptions)
    twist_min_deg: float = 5.0
    twist_full_deg: float = 20.0
    rest_bend_min_deg: float = 15.0

    def __post_init__(self) -> None:
        if self.root_motion not in ROOT_MOTION_MODES:
            raise RetargetError(f"root_motion must be one of {ROOT_MOTION_MODES}, got {self.root_motion!r}")
        if self.foot_lock not in FOOT_LOCK_MODES:
            raise RetargetError(f"foot_lock must be one of {FOOT_LOCK_MODES}, got {self.foot_lock!r}")
        if self.scale is not None and not (self.scale > 0 and np.isfinite(self.scale)):
            raise RetargetError(f"scale must be a positive number, got {self.scale}")
        if not (0 <= self.twist_min_deg < self.twist_full_deg <= 90):
            raise RetargetError(f"need 0 <= twist_min_deg < twist_full_deg <= 90, got {self.twist_min_deg}, "
                                f"{self.twist_full_deg}")


@dataclass(frozen=True)
class RetargetReport:
    """What :func:`retarget` did: bones solved, bones skipped and why, scale, notes."""

    solved: tuple[str, ...]
    skipped: tuple[str, ...]
    scale: float
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [f"retargeted {len(self.solved)} bones at scale {self.scale:.3f}"]
        if self.skipped:
            lines.append(f"  not driven: {', '.join(self.skipped)}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _available(xyz: np.ndarray) -> np.ndarray:
    """(K,) whether each point of (T, K, 3) is finite in some frame."""
    return np.any(np.all(np.isfinite(xyz), axis=-1), axis=0)


def _fill_missing_frames(values: np.ndarray) -> np.ndarray:
    """(T, 3) with NaN frames linearly interpolated (held at the ends); all-NaN stays NaN."""
    ok = np.all(np.isfinite(values), axis=1)
    if ok.all() or not ok.any():
        return values
    t = np.arange(len(values))
    return np.stack([np.interp(t, t[ok], values[ok, i]) for i in range(values.shape[1])], axis=1)


def _leg_length(xyz: np.ndarray) -> np.ndarray:
    """(...,) mean over sides of hip->knee + knee->ankle for points (..., K, 3) (NaN where missing)."""
    legs = []
    for side in ("left", "right"):
        hip, knee, ankle = (xyz[..., P[f"{side}_{n}"], :] for n in ("hip", "knee", "ankle"))
        legs.append(np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(legs), axis=0)


def source_scale(rest_xyz: np.ndarray, source_xyz: np.ndarray) -> float:
    """Rig-over-source length factor: leg lengths (rest (K, 3) vs median over frames of (T, K, 3)), else torso."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rig_leg, src_leg = float(_leg_length(rest_xyz)), float(np.nanmedian(_leg_length(source_xyz)))
        if np.isfinite(rig_leg) and np.isfinite(src_leg) and src_leg > 1e-6:
            return rig_leg / src_leg
        torso = lambda x: np.linalg.norm(x[..., P["neck"], :] - x[..., P["pelvis"], :], axis=-1)  # noqa: E731
        rig_t, src_t = float(torso(rest_xyz)), float(np.nanmedian(torso(source_xyz)))
    if np.isfinite(rig_t) and np.isfinite(src_t) and src_t > 1e-6:
        return rig_t / src_t
    return 1.0


def retarget(source: CanonicalPose | np.ndarray, rig: Rig, bone_map: BoneMap | None = None, *,
             head_rotation: np.ndarray | None = None, options: RetargetOptions | None = None,
             fps: float | Fraction | None = None, return_report: bool = False):
    """Pose-bone rotations and root motion that make ``rig`` follow ``source``.

    ``source``: a :class:`CanonicalPose` (T frames, K canonical points, Z-up
    world in metres, in the rig's armature space: the Blender layer applies
    the armature object's inverse world matrix first), or a bare (T, K, 3)
    array of measured points.  ``bone_map``: canonical -> rig bones (detected
    when None); unmapped canonical bones are warned about and left at rest
    relative to their parents.  ``head_rotation`` (T, 3, 3): the head's
    world rotation from a face tracker (see ``CanonicalPose``).  ``fps``: for
    foot-contact speeds (else the pose's, else 30 with a warning).

    Returns a :class:`Motion` (``local_quat_wxyz`` (T, B, 4), Blender pose-bone
    quaternions relative to rest; ``root_translation`` (T, 3) on
    ``root_bone``; ``contact`` (T, 2)), and with ``return_report`` also a
    :class:`RetargetReport`.
    """
    options = RetargetOptions() if options is None else options
    pose = source if isinstance(source, CanonicalPose) else CanonicalPose(np.asarray(source))
    if head_rotation is not None:
        pose = pose.with_head_rotation(head_rotation)
    notes: list[str] = []
    if bone_map is None:
        bone_map, detect_report = detect_bone_map(rig)
        notes.append(f"bone map detected: {detect_report.method}")
    indices = bone_map.indices(rig)
    missing = bone_map.missing(rig)
    if missing:
        warnings.warn(f"rig {rig.name!r}: no bone for canonical {', '.join(missing)}; retargeting the rest",
                      RetargetWarning, stacklevel=2)
    if "hips" not in indices:
        raise RetargetError(f"rig {rig.name!r}: the bone map must name a hips bone (the root of the solve); "
                            f"it maps {sorted(indices)}")

    markers = rig_markers(rig, indices)
    rest_xyz = markers.rest_xyz(rig)
    src_xyz = np.array(pose.xyz)
    # Points the rig cannot provide are derived on both sides by the same
    # rules; points the source derived are derived on the rig too.
    rig_lacks = {n for n in SHARED_RULES if not np.all(np.isfinite(rest_xyz[P[n]]))}
    both = (set(pose.derived) | rig_lacks) & set(SHARED_RULES)
    rest_xyz = apply_rules(rest_xyz, both | (set(pose.derived) & set(REST_RULES)))
    recomputed = apply_rules(src_xyz, both - set(pose.derived), SHARED_RULES)
    keep = ~_available(recomputed)  # a rule the source cannot evaluate leaves its own value
    src_xyz = np.where(keep[None, :, None], src_xyz, recomputed)

    world, solved, skipped = _solve_rotations(rig, indices, rest_xyz, src_xyz, pose.head_rotation, options, notes)
    local = world_to_local_rotations(rig, world)

    scale = options.scale or source_scale(rest_xyz, src_xyz)
    hips = indices["hips"]
    carrier = hips if options.root_bone is None else rig.index(options.root_bone)
    if carrier != hips and carrier not in rig.ancestors(hips):
        raise RetargetError(f"root_bone {options.root_bone!r} must be the hips bone or one of its ancestors "
                            f"{[rig.bone_names[b] for b in rig.ancestors(hips)]}")
    translation = _root_translation(rig, hips, carrier, world, rest_xyz, src_xyz, scale, options.root_motion)

    motion = Motion(local_quat_wxyz=matrix_to_quat_wxyz(local, orthonormal=True), root_translation=translation,
                    root_bone=carrier, fps=pose.fps if fps is None else as_fps(fps)).with_continuous_signs()
    if options.foot_lock != "never":
        rate = fps if fps is not None else pose.fps
        if rate is None:
            warnings.warn(f"frame rate unknown; foot contact assumes {DEFAULT_FPS:g} fps", RetargetWarning,
                          stacklevel=2)
            rate = DEFAULT_FPS
        motion, contact_notes = apply_foot_contact(rig, motion, markers, indices, options.foot_lock, float(rate),
                                                   options.contact, contact=pose.contact)
        notes += contact_notes
    if return_report:
        return motion, RetargetReport(solved=tuple(solved), skipped=tuple(skipped), scale=float(scale),
                                      notes=tuple(notes))
    return motion


def _solve_rotations(rig: Rig, indices: dict[str, int], rest_xyz: np.ndarray, src_xyz: np.ndarray,
                     head_rotation: np.ndarray | None, options: RetargetOptions,
                     notes: list[str]) -> tuple[np.ndarray, list[str], list[str]]:
    """Armature-space rotations (T, B, 3, 3) of every bone, and the canonical bones solved / skipped."""
    num_frames = src_xyz.shape[0]
    rest_rot = rig.rest_matrix[:, :3, :3]
    rel = rig.rest_relative[:, :3, :3]
    rest_ok = np.all(np.isfinite(rest_xyz), axis=1)
    src_ok = _available(src_xyz)
    both = rest_ok & src_ok
    lateral, up, forward = body_axes(rest_xyz)
    body_direction = {"left": lateral, "up": up, "forward": forward, "back": -forward}
    sin_min, sin_full = np.sin(np.radians([options.twist_min_deg, options.twist_full_deg]))
    sin_rest = np.sin(np.radians(options.rest_bend_min_deg))

    plans: dict[int, tuple] = {}
    solved, skipped = [], []
    for name, b in indices.items():
        bone = BONES[name]
        head = P[bone.head]
        tail = next((P[t] for t in bone.tails if both[P[t]]), None)
        if not both[head] or tail is None:
            skipped.append(name)
            segment = f"{bone.head} -> {'/'.join(bone.tails)}"
            notes.append(f"{name}: the source has no {segment} segment; it follows its parent")
            continue
        u_rest = rest_xyz[tail] - rest_xyz[head]
        lines = []
        for start, ends in bone.twist:
            end = next((P[e] for e in ends if both[P[e]]), None)
            if both[P[start]] and end is not None:
                lines.append((P[start], end))
        frame_rest = None
        if lines:
            s_rest = sum(normalize(rest_xyz[e] - rest_xyz[a]) for a, e in lines)
            frame_rest, sin = frame_from_axes(u_rest, s_rest)
            if not (sin >= sin_rest) and bone.rest_default:
                frame_rest, _ = frame_from_axes(u_rest, body_direction[bone.rest_default])
        head_frame = None
        if name == "head" and head_rotation is not None:
            # A face tracker's head rotation H is relative to a neutral head
            # facing -Y (frame N: up +Z, left +X).  The rig's rest head is taken
            # as neutral for *its* body (frame G0: up, left), so the head's
            # world rotation since rest is D = H @ N @ G0^T.
            neutral, _ = frame_from_axes(np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]))
            body, _ = frame_from_axes(up, lateral)
            head_frame = head_rotation @ neutral @ body.T
        plans[b] = (head, tail, u_rest, lines, frame_rest, head_frame)
        solved.append(name)

    world = np.empty((num_frames, rig.num_bones, 3, 3))
    for b in rig.order:
        p = rig.parents[b]
        carried = np.broadcast_to(rel[b], (num_frames, 3, 3)) if p < 0 else world[:, p] @ rel[b]
        if b not in plans:
            world[:, b] = carried  # unmapped: basis = identity
            continue
        head, tail, u_rest, lines, frame_rest, head_frame = plans[b]
        u = src_xyz[:, tail] - src_xyz[:, head]
        u_now = carried @ (rest_rot[b].T @ u_rest)
        swing = shortest_arc(u_now, u) @ carried
        q = swing
        if head_frame is not None:
            # A tracked head rotation is taken whole (it need not agree with the
            # head segment, which it replaces); frames without one keep the swing.
            full = head_frame @ rest_rot[b]
            weight = np.zeros(num_frames)
            q = np.where(np.all(np.isfinite(full), axis=(1, 2))[:, None, None], full, swing)
        elif frame_rest is not None:
            s = sum(normalize(src_xyz[:, e] - src_xyz[:, a]) for a, e in lines)
            frame_now, sin = frame_from_axes(u, s)
            full = frame_now @ frame_rest.T @ rest_rot[b]
            weight = smoothstep_weight(sin, sin_min, sin_full)
        else:
            weight = np.zeros(num_frames)
        twist = weight > 0
        if np.any(twist):
            q = np.array(swing)
            # Q_full @ Q_swing^T turns about u(t); apply weight * its angle.
            axis = normalize(u[twist])
            angle = twist_angle(full[twist] @ np.swapaxes(swing[twist], -1, -2), axis)
            q[twist] = axis_angle_matrix(axis, weight[twist] * angle) @ swing[twist]
        missing = ~np.all(np.isfinite(q), axis=(1, 2))
        if np.any(missing):
            q = np.where(missing[:, None, None], carried, q)  # no target this frame: follow the parent
        world[:, b] = q
    return world, solved, skipped


def _root_translation(rig: Rig, hips: int, carrier: int, world: np.ndarray, rest_xyz: np.ndarray,
                      src_xyz: np.ndarray, scale: float, mode: str) -> np.ndarray:
    """Root bone locations (T, 3) that put the rig's pelvis point at ``scale`` x the source's.

    The pelvis point rides on the hips bone at ``o = R_hips^T (pelvis_rest -
    head_hips)`` in its rest frame, so the hips head must be at
    ``target - W_hips @ o``.  With nothing above the hips rotated, a location
    L on the carrier (the hips or an ancestor) moves the hips head by
    ``R_carrier @ L`` (Blender applies ``matrix_basis`` in the bone's rest
    frame), so ``L = R_carrier^T (head_target - head_rest)``.
    """
    num_frames = src_xyz.shape[0]
    if mode == "none":
        return np.zeros((num_frames, 3))
    pelvis = _fill_missing_frames(src_xyz[:, P["pelvis"]]) * scale
    if not np.all(np.isfinite(pelvis)):
        return np.zeros((num_frames, 3))
    rest_pelvis = rest_xyz[P["pelvis"]]
    if mode == "in_place":
        pelvis = np.concatenate([np.broadcast_to(rest_pelvis[:2], (num_frames, 2)), pelvis[:, 2:]], axis=1)
    offset = rig.rest_matrix[hips, :3, :3].T @ (rest_pelvis - rig.head_xyz[hips])
    head_target = pelvis - world[:, hips] @ offset
    return (head_target - rig.head_xyz[hips]) @ rig.rest_matrix[carrier, :3, :3]


def source_from_rig(rig: Rig, motion: Motion, bone_map: BoneMap | None = None) -> CanonicalPose:
    """A retarget source from an animated rig (a BVH clip, another character): FK, then its canonical points."""
    from .canonical import pose_from_rig
    from .rig import fk

    if bone_map is None:
        bone_map, _ = detect_bone_map(rig)
    return pose_from_rig(rig, bone_map.indices(rig), fk(rig, motion), fps=motion.fps)
