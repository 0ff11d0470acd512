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

Anchor.  The root follows the source's pelvis (``anchor="pelvis"``, scaled
by leg length), or, for a person whose lower body the footage does not
show (seated at a desk, framed from the chest up: the pose model then
guesses hips, legs and feet), the midpoint of the shoulders
(``anchor="shoulders"``, scaled by shoulder width): the guessed pelvis once
put a character's head at the person's chin, 32 % of the frame height low.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from ..frames import as_fps
from .bone_map import BoneMap, detect_bone_map
from .canonical import (BONE_NAMES, BONES, P, REST_RULES, SHARED_RULES, CanonicalPose, apply_rules, body_axes,
                        rig_markers)
from .contact import FOOT_LOCK_MODES, ContactOptions, apply_foot_contact
from .fingers import FINGER_NAMES, detect_fingers
from .rig import Motion, RetargetError, Rig, world_to_local_rotations
from .rotations import (axis_angle_matrix, frame_from_axes, matrix_to_quat_wxyz, normalize, quat_wxyz_to_matrix,
                        shortest_arc, smoothstep_weight, twist_angle)

ROOT_MOTION_MODES = ("full", "in_place", "none")
ANCHORS = ("pelvis", "shoulders")
"""What a rig's root follows: the source's pelvis, or its shoulders (when the lower body is not seen)."""
SHOULDERS = ("left_shoulder", "right_shoulder")
DEFAULT_FPS = 30.0


class RetargetWarning(UserWarning):
    """Retargeting went ahead with less than it wanted (unmapped bones, an assumed frame rate)."""


@dataclass(frozen=True)
class RetargetOptions:
    """How :func:`retarget` solves.

    ``root_motion``: ``full`` (the source's trajectory, scaled), ``in_place``
    (height only) or ``none``.  ``root_bone``: the bone whose location carries
    it, the mapped hips by default, or an ancestor of the hips (a separate
    root bone).  ``anchor``: ``pelvis`` or ``shoulders``, the source point the
    root puts the rig's own on (see the module docstring).  ``scale``:
    source-to-rig length factor; by default rig / source leg length (shoulder
    width with the shoulders anchor).  ``foot_lock``: ``auto``, ``always``,
    ``never`` or ``grounding`` (see :mod:`rigcast.retarget.contact`).
    Twist references weigh 0 below ``twist_min_deg`` of angle to their
    segment and 1 above ``twist_full_deg``; a rest reference closer than
    ``rest_bend_min_deg`` is replaced by the body direction.
    """

    root_motion: str = "full"
    root_bone: str | None = None
    anchor: str = "pelvis"
    scale: float | None = None
    foot_lock: str = "auto"
    contact: ContactOptions = field(default_factory=ContactOptions)
    twist_min_deg: float = 5.0
    twist_full_deg: float = 20.0
    rest_bend_min_deg: float = 15.0

    def __post_init__(self) -> None:
        if self.root_motion not in ROOT_MOTION_MODES:
            raise RetargetError(f"root_motion must be one of {ROOT_MOTION_MODES}, got {self.root_motion!r}")
        if self.anchor not in ANCHORS:
            raise RetargetError(f"anchor must be one of {ANCHORS}, got {self.anchor!r}")
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


def _fill_unseen_rotations(local: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Rotations (T, B, 3, 3) whose unseen frames (``seen`` (T,) False) are interpolated between the seen frames
    around them (normalised linear interpolation of sign-aligned quaternions), held at the ends."""
    if seen.all() or not seen.any():
        return local
    q = matrix_to_quat_wxyz(local, orthonormal=True)  # (T, B, 4)
    t = np.arange(len(seen))
    known = np.flatnonzero(seen)
    after = np.clip(np.searchsorted(known, t), 0, len(known) - 1)
    before = np.clip(after - 1, 0, len(known) - 1)
    before = np.where(known[after] == t, after, before)
    a, b = known[before], known[after]
    w = np.where(b > a, (t - a) / np.maximum(b - a, 1), 0.0)[:, None, None]
    qa, qb = q[a], q[b]
    qb = np.where(np.sum(qa * qb, axis=-1, keepdims=True) < 0, -qb, qb)
    mixed = (1.0 - w) * qa + w * qb
    filled = quat_wxyz_to_matrix(mixed)
    return np.where(seen[:, None, None, None], local, filled)


def _leg_length(xyz: np.ndarray) -> np.ndarray:
    """(...,) mean over sides of hip->knee + knee->ankle for points (..., K, 3) (NaN where missing)."""
    legs = []
    for side in ("left", "right"):
        hip, knee, ankle = (xyz[..., P[f"{side}_{n}"], :] for n in ("hip", "knee", "ankle"))
        legs.append(np.linalg.norm(knee - hip, axis=-1) + np.linalg.norm(ankle - knee, axis=-1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(legs), axis=0)


def _shoulder_width(xyz: np.ndarray) -> np.ndarray:
    """(...,) distance between the shoulder points of (..., K, 3) (NaN where missing)."""
    return np.linalg.norm(xyz[..., P["left_shoulder"], :] - xyz[..., P["right_shoulder"], :], axis=-1)


def source_scale(rest_xyz: np.ndarray, source_xyz: np.ndarray, anchor: str = "pelvis") -> float:
    """Rig-over-source length factor from rest (K, 3) and the median over frames of (T, K, 3): leg lengths, else
    torso; with ``anchor="shoulders"`` (a source whose legs are guesses) shoulder widths, else torso."""
    if anchor not in ANCHORS:
        raise RetargetError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    span = _leg_length if anchor == "pelvis" else _shoulder_width
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rig_span, src_span = float(span(rest_xyz)), float(np.nanmedian(span(source_xyz)))
        if np.isfinite(rig_span) and np.isfinite(src_span) and src_span > 1e-6:
            return rig_span / src_span
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

    world, solved, skipped = _solve_rotations(rig, indices, rest_xyz, src_xyz, pose.head_rotation, options, notes,
                                              pose.segment_rotation, pose.rest_xyz)
    solved += _solve_fingers(rig, indices, pose, world, notes)
    local = world_to_local_rotations(rig, world)
    # Frames without a single source point (a person hidden behind another) take their bone poses from the
    # neighbouring frames that have some.
    seen = np.any(np.all(np.isfinite(src_xyz), axis=-1), axis=-1)
    local = _fill_unseen_rotations(local, seen)

    scale = options.scale or source_scale(rest_xyz, src_xyz, options.anchor)
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
                                                   options.contact, source_xyz=src_xyz, scale=scale,
                                                   contact=pose.contact, seen=seen)
        notes += contact_notes
    if options.anchor == "shoulders" and options.root_motion == "full":
        motion = _anchored(rig, motion, markers, src_xyz * scale, SHOULDERS, notes)
    if return_report:
        return motion, RetargetReport(solved=tuple(solved), skipped=tuple(skipped), scale=float(scale),
                                      notes=tuple(notes))
    return motion


def _solve_rotations(rig: Rig, indices: dict[str, int], rest_xyz: np.ndarray, src_xyz: np.ndarray,
                     head_rotation: np.ndarray | None, options: RetargetOptions,
                     notes: list[str], segment_rotation: np.ndarray | None = None,
                     source_rest: np.ndarray | None = None) -> tuple[np.ndarray, list[str], list[str]]:
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
        fit = _branch_points(name, head, rest_xyz, src_xyz, both)
        own = None
        if segment_rotation is not None and source_rest is not None and name in SOURCE_TWIST:
            own = segment_rotation[:, BONE_NAMES.index(name)]
            # Lined up with the rig's rest: C turns the source's rest segment onto
            # the rig's, so the rig's bone at rest stands for C^T @ it in the
            # source, and moves as D @ C^T @ R_rest (arms-down or A-pose sources).
            line_up = shortest_arc(source_rest[tail] - source_rest[head], u_rest)
            own = own @ line_up.T
            own = own if np.any(np.all(np.isfinite(own), axis=(1, 2))) else None
        plans[b] = (head, tail, u_rest, lines, frame_rest, head_frame, fit, own)
        solved.append(name)

    world = np.empty((num_frames, rig.num_bones, 3, 3))
    for b in rig.order:
        p = rig.parents[b]
        carried = np.broadcast_to(rel[b], (num_frames, 3, 3)) if p < 0 else world[:, p] @ rel[b]
        if b not in plans:
            world[:, b] = carried  # unmapped: basis = identity
            continue
        head, tail, u_rest, lines, frame_rest, head_frame, fit, own = plans[b]
        u = src_xyz[:, tail] - src_xyz[:, head]
        u_now = carried @ (rest_rot[b].T @ u_rest)
        swing = shortest_arc(u_now, u) @ carried
        q = swing
        if fit is not None:
            # A branching bone (hips, chest) takes its whole rotation from all
            # its children's directions at once: the least-squares rotation D
            # taking the rest offsets to the frame's, then Q = D @ R_rest.
            rest_dirs = _branch_directions(rest_xyz, head, fit)
            now_dirs = _branch_directions(src_xyz, head, fit)
            full = best_rotation(rest_dirs, now_dirs, BRANCH_WEIGHTS) @ rest_rot[b]
            ok = np.all(np.isfinite(full), axis=(1, 2))
            q = np.where(ok[:, None, None], full, swing)
        elif head_frame is not None:
            # A tracked head rotation is taken whole (it need not agree with the
            # head segment, which it replaces); frames without one keep the swing.
            full = head_frame @ rest_rot[b]
            q = np.where(np.all(np.isfinite(full), axis=(1, 2))[:, None, None], full, swing)
        else:
            if own is not None:
                # The source's own joint frame: the segment turned as the
                # source's bone did since its rest, D @ R_rest; only its twist
                # about u(t) is taken (the swing already puts it on the points).
                full = own @ rest_rot[b]
                q = _twist_toward(q, full, u, np.all(np.isfinite(full), axis=(1, 2)).astype(np.float64))
            if frame_rest is not None and (own is None or name in BEND_PLANE_FIRST):
                # Twist from lines between points, weighted by how well they
                # define it (0 for a straight limb's bend plane): on top of the
                # joint frame where both exist, so a bent limb follows its
                # bend plane exactly and a straight one its joint frame.
                s = sum(normalize(src_xyz[:, e] - src_xyz[:, a]) for a, e in lines)
                frame_now, sin = frame_from_axes(u, s)
                full = frame_now @ frame_rest.T @ rest_rot[b]
                q = _twist_toward(q, full, u, smoothstep_weight(sin, sin_min, sin_full))
        missing = ~np.all(np.isfinite(q), axis=(1, 2))
        if np.any(missing):
            q = np.where(missing[:, None, None], carried, q)  # no target this frame: follow the parent
        world[:, b] = q
    return world, solved, skipped


def _twist_toward(base: np.ndarray, full: np.ndarray, u: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) ``base`` turned about the segment ``u`` (T, 3) by ``weight`` (T,) of the twist that
    separates them from ``full`` (both put the segment on u, so ``full @ base^T`` turns about u)."""
    twist = weight > 0
    if not np.any(twist):
        return base
    out = np.array(base)
    axis = normalize(u[twist])
    angle = twist_angle(full[twist] @ np.swapaxes(base[twist], -1, -2), axis)
    out[twist] = axis_angle_matrix(axis, weight[twist] * angle) @ base[twist]
    return out


SOURCE_TWIST = ("spine", "neck", "upper_arm.L", "upper_arm.R", "lower_arm.L", "lower_arm.R", "thigh.L", "thigh.R",
                "shin.L", "shin.R")
"""Bones whose twist comes from the source's own joint frames when it has them (``segment_rotation``): the
spine's and neck's turn, recovered rather than blended from the hip, shoulder and ear lines; a straight upper
arm's or thigh's roll, which no bend plane shows; the forearm's and shin's own roll, which the hand's and foot's
need not share.  Hands and feet read theirs from points riding on the source's own hand and foot bones; the hips
and chest fit their children, the head its ears (or face)."""
BEND_PLANE_FIRST = ("upper_arm.L", "upper_arm.R", "thigh.L", "thigh.R")
"""Of those, bones whose bend plane (elbow, knee) still sets the twist wherever it is well defined."""

BRANCH_CHILDREN = {
    "hips": ((("left_hip", "right_hip"),), ("spine", "chest", "neck")),
    "chest": ((("left_clavicle", "right_clavicle"), ("left_shoulder", "right_shoulder")), ("neck", "head")),
}
"""Per branching canonical bone: candidate (left, right) pairs of side children, then its upward children; the
first usable of each is taken.  The chest prefers the clavicle roots, which ride on it, to the upper-arm roots,
which the clavicles move."""
BRANCH_WEIGHTS = (100.0, 1.0)
"""Least-squares weights of a branching bone's two directions: the line across its side children (right ->
left) and the direction to its upward child.  Lines across, not each child's own offset, are compared: a
rig's thigh or clavicle roots sit forward, back or below its hips/chest by amounts that differ from rig to
rig, while the line between them is the body's left in every rest pose.

The line weighs 100 to the upward direction's 1, so it is kept nearly exactly and the upward child sets the
rotation about it: a source's hip and chest lines ride on its pelvis and ribcage, while the way up from them
runs through joints that move on their own (CMU's ``LowerBack``, ``LHipJoint``), and the bone above re-aims
at its own points anyway.  With equal weights the hip line of real CMU clips was off by up to 2.7 deg (walk)
and 4.6 deg (hop) on every preset rig; at 100:1 by 0.05 and 0.09 deg, and a round trip BVH -> rig -> BVH keeps
it within 0.16 deg."""


def _branch_directions(xyz: np.ndarray, head: int, fit: list[int]) -> np.ndarray:
    """Unit (..., 2, 3): the right -> left line across ``fit[1] -> fit[0]`` and ``head -> fit[2]``."""
    left, right, up = (xyz[..., k, :] for k in fit)
    return np.stack([normalize(left - right), normalize(up - xyz[..., head, :])], axis=-2)


def _branch_points(name: str, head: int, rest_xyz: np.ndarray, src_xyz: np.ndarray,
                   both: np.ndarray) -> list[int] | None:
    """[left, right, up] child points that fix a branching bone's whole rotation, or None.

    A pair counts where both sides have both points, apart from each other
    (a detector's clavicles are both its neck point); the upward child where
    it lies away from the head in the rest pose and in the source (a CMU
    ``LowerBack`` joint sits on the hips: the spine's direction then comes
    from the chest).  Without both, the bone keeps its segment and twist.
    """
    if name not in BRANCH_CHILDREN:
        return None
    size = np.linalg.norm(rest_xyz[P["neck"]] - rest_xyz[P["pelvis"]])
    size = size if np.isfinite(size) and size > 0 else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        src_size = np.nanmedian(np.linalg.norm(src_xyz[:, P["neck"]] - src_xyz[:, P["pelvis"]], axis=-1))

        def apart(a: int, b: int) -> bool:
            gap = np.nanmedian(np.linalg.norm(src_xyz[:, a] - src_xyz[:, b], axis=-1))
            return bool(np.linalg.norm(rest_xyz[a] - rest_xyz[b]) > 0.02 * size
                        and (not np.isfinite(src_size) or gap > 0.02 * src_size))

    pairs, ups = BRANCH_CHILDREN[name]
    pair = next(((P[a], P[b]) for a, b in pairs if both[P[a]] and both[P[b]] and apart(P[a], P[b])), None)
    up = next((P[u] for u in ups if both[P[u]] and apart(P[u], head)), None)
    return None if pair is None or up is None else [pair[0], pair[1], up]


def best_rotation(rest_dirs: np.ndarray, now_dirs: np.ndarray, weights=None) -> np.ndarray:
    """Least-squares rotations (T, 3, 3) taking unit directions (N, 3) to (T, N, 3) (Wahba/Kabsch, batched SVD).

    Minimises sum_i w_i |D r_i - c_i|^2 (``weights`` (N,), 1 by default): with
    H = sum_i w_i c_i r_i^T = U S V^T,
    D = U diag(1, 1, det(U V^T)) V^T (the last factor keeps it a rotation).
    Frames with a missing direction give NaN.
    """
    w = np.ones(len(rest_dirs)) if weights is None else np.asarray(weights, dtype=np.float64)
    h = np.einsum("n,tni,nj->tij", w, now_dirs, rest_dirs)
    out = np.full(h.shape, np.nan)
    ok = np.all(np.isfinite(h), axis=(1, 2))
    if np.any(ok):
        u, _, vt = np.linalg.svd(h[ok])
        d = np.sign(np.linalg.det(u @ vt))
        u[:, :, 2] *= d[:, None]
        out[ok] = u @ vt
    return out


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


def _anchored(rig: Rig, motion: Motion, markers, target_xyz: np.ndarray, points: tuple[str, ...],
              notes: list[str]) -> Motion:
    """``motion`` with its root moved per frame so the midpoint of the rig's ``points`` lands on the midpoint of
    ``target_xyz``'s (T, K, 3) ones (frames without them interpolated).

    The rig's points come from FK of ``motion``; a shift d (armature space) of the root's head is the location
    ``R_root^T d`` in the root's rest frame, as in :func:`_root_translation` (nothing above the root is posed).
    """
    from .rig import fk

    ids = [P[n] for n in points]
    got = markers.posed_xyz(fk(rig, motion))[:, ids].mean(axis=1)
    shift = _fill_missing_frames(np.asarray(target_xyz)[:, ids].mean(axis=1) - got)
    if not np.all(np.isfinite(shift)):
        notes.append(f"root not anchored on the {' and '.join(points)}: the rig or the source lacks them")
        return motion
    translation = motion.root_translation + shift @ rig.rest_matrix[motion.root_bone, :3, :3]
    return replace(motion, root_translation=translation)


def source_from_rig(rig: Rig, motion: Motion, bone_map: BoneMap | None = None, *,
                    rest_rig: Rig | None = None) -> CanonicalPose:
    """A retarget source from an animated rig (a BVH clip, another character): FK, then its canonical points.

    ``rest_rig``: the same skeleton resting in another pose (``rigcast.retarget.rest.rig_with_rest``), from
    which the source's joint frames are then measured; the motion is the same.
    """
    from .canonical import pose_from_rig
    from .rig import fk

    if bone_map is None:
        bone_map, _ = detect_bone_map(rig)
    indices = bone_map.indices(rig)
    rested = rig if rest_rig is None else rest_rig
    return pose_from_rig(rested, indices, fk(rig, motion), fps=motion.fps, fingers=_rig_fingers(rested, indices))


def _rig_fingers(rig: Rig, indices: dict[str, int]) -> dict[str, int]:
    return detect_fingers(rig, {s: indices[f"hand.{s}"] for s in ("L", "R") if f"hand.{s}" in indices})


def _solve_fingers(rig: Rig, indices: dict[str, int], pose: CanonicalPose, world: np.ndarray,
                   notes: list[str]) -> list[str]:
    """Turn the rig's finger bones in ``world`` (T, B, 3, 3, changed in place) as the source's turned; their names.

    Each finger bone takes ``D @ C^T @ R_rest`` (see :mod:`rigcast.retarget.fingers`); bones below a finger that
    are not fingers themselves are carried again by their parents.
    """
    if pose.finger_rotation is None:
        return []
    fingers = _rig_fingers(rig, indices)
    rest_rot = rig.rest_matrix[:, :3, :3]
    done: dict[int, str] = {}
    for f, name in enumerate(FINGER_NAMES):
        b = fingers.get(name)
        if b is None or not np.all(np.isfinite(pose.finger_rest[f])):
            continue
        line_up = shortest_arc(pose.finger_rest[f], rest_rot[b, :, 1])
        target = pose.finger_rotation[:, f] @ line_up.T @ rest_rot[b]
        ok = np.all(np.isfinite(target), axis=(1, 2))
        if np.any(ok):
            world[ok, b] = target[ok]
            done[b] = name
    if done:
        below = set(done)
        rel = rig.rest_relative[:, :3, :3]
        for b in rig.order:
            p = rig.parents[b]
            if p in below and b not in done:
                world[:, b] = world[:, p] @ rel[b]
                below.add(b)
        notes.append(f"fingers: {len(done)}/{len(FINGER_NAMES)} finger bones follow the source's")
    elif fingers:
        notes.append("fingers: the rig has fingers but the source's do not match them; they stay at rest")
    return list(done.values())
