"""Rest poses: which one a skeleton stands in, and another one put in its place (``--source-rest``/``--target-rest``).

Legend: T frames, B bones.

A rig's rest (``rest_matrix``) is where its rotations start.  Files whose own
rest is not a usable pose (frame 0 of a clip, or OFFSETs that describe no
particular pose) can take instead:

* ``auto`` (the source's default): the file's own rest where it is a standing
  pose, else (scrambled joint frames, Bandai-Namco-style exports whose
  offsets all lie along each joint's local x) the clip's median pose, the
  frame nearest every joint's median position (:func:`median_pose_frame`);
* ``zero``: the file's own rest, unchanged;
* ``tpose``: the own rest with arms, forearms and hands turned straight out
  along the body's left/right and thighs and shins straight down (each by the
  smallest rotation, so no bone rolls), everything else carried along;
* a frame number: the pose of that frame.

:func:`rig_with_rest` builds the same skeleton resting in that pose and
:func:`motion_onto_rig` turns a motion solved on it back into pose-bone
rotations of the original rig: the armature-space pose is the same, only the
rest it is measured from changes.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .canonical import BONES, P, body_axes, rig_markers
from .rig import Motion, Rig, fk, motion_from_pose
from .rotations import shortest_arc

REST_CHOICES = ("auto", "zero", "tpose")
"""Named rests; any frame number is accepted too."""

_TPOSE_LIMBS = (("upper_arm", "side"), ("lower_arm", "side"), ("hand", "side"), ("thigh", "down"), ("shin", "down"))


def parse_rest(value: str | int | None, option: str = "--source-rest") -> str | int:
    """``auto``, ``zero``, ``tpose`` or a frame number (int) from a command-line value; None means ``zero``."""
    if value is None:
        return "zero"
    text = str(value).strip().lower().replace("-", "")
    if text in REST_CHOICES:
        return text
    try:
        return int(text)
    except ValueError:
        raise InputError(f"{option} must be auto, zero, tpose or a frame number, got {value!r}") from None


STANDING_MIN_COS = 0.5
"""A standing rest's thighs and shins point within 60 deg of straight down and its pelvis -> neck (or chest)
within 60 deg of up; T-, A- and arms-down rests all do, a rest whose joint frames are scrambled or whose
offsets all lie along one axis does not."""


def rest_not_standing(rig: Rig, bone_indices: dict[str, int]) -> str | None:
    """Why ``rig``'s rest is no standing pose (legs not down, torso not up), or None when it is one (Z up)."""
    pts = rig_markers(rig, bone_indices).rest_xyz(rig)
    wrong = []
    for a, b, sign, what in [(f"{s}_{a}", f"{s}_{b}", -1.0, f"{s} {a} -> {b}") for s in ("left", "right")
                             for a, b in (("hip", "knee"), ("knee", "ankle"))] + [
                                 ("pelvis", "neck", 1.0, "pelvis -> neck")]:
        d = pts[P[b]] - pts[P[a]]
        if what.startswith("pelvis") and not np.all(np.isfinite(d)):
            d = pts[P["chest"]] - pts[P["pelvis"]]
        n = np.linalg.norm(d)
        if np.isfinite(n) and n > 1e-9 and sign * d[2] / n < STANDING_MIN_COS:
            wrong.append(f"{what} {np.degrees(np.arcsin(np.clip(d[2] / n, -1, 1))):+.0f} deg from level")
    return "; ".join(wrong) if wrong else None


def median_pose_frame(rig: Rig, motion: Motion) -> int:
    """The frame of ``motion`` nearest the clip's median pose: bone heads relative to the root bone's, in its
    frame (so heading and travel do not count), summed distance to each head's median over the frames."""
    pose = fk(rig, motion)
    root = motion.root_bone
    rel = np.einsum("tji,tbj->tbi", pose[:, root, :3, :3], pose[:, :, :3, 3] - pose[:, root, None, :3, 3])
    return int(np.argmin(np.linalg.norm(rel - np.median(rel, axis=0), axis=-1).sum(axis=1)))


def resolve_rest(rig: Rig, bone_indices: dict[str, int], rest: str | int, motion: Motion | None = None
                 ) -> tuple[str | int, str | None]:
    """``rest`` with ``auto`` resolved: ``zero`` where the rest is a standing pose (or there is no motion),
    else the median pose's frame; and why the own rest was set aside (None when it was not)."""
    if rest != "auto":
        return rest, None
    reason = rest_not_standing(rig, bone_indices)
    if reason is None or motion is None or motion.num_frames == 0:
        return "zero", None
    return median_pose_frame(rig, motion), reason


def tpose_matrices(rig: Rig, bone_indices: dict[str, int]) -> np.ndarray:
    """Armature-space matrices (B, 4, 4) of ``rig`` posed into a T-pose from its rest.

    Parents first: each bone is carried by its parent; a mapped arm bone
    (upper arm, forearm, hand) then turns its canonical segment onto the
    body's lateral axis (left arm to +lateral, right to -lateral), a thigh or
    shin onto -up, each by the shortest arc about its head.  Body axes come
    from the rest (:func:`canonical.body_axes`).
    """
    markers = rig_markers(rig, bone_indices)
    rest_pts = markers.rest_xyz(rig)
    lateral, up, _ = body_axes(rest_pts)
    want: dict[int, tuple[int, int, np.ndarray]] = {}
    for limb, kind in _TPOSE_LIMBS:
        for s, sign in (("L", 1.0), ("R", -1.0)):
            name = f"{limb}.{s}"
            if name not in bone_indices:
                continue
            bone = BONES[name]
            tail = next((P[t] for t in bone.tails if np.all(np.isfinite(rest_pts[P[t]]))), None)
            if tail is None or not np.all(np.isfinite(rest_pts[P[bone.head]])):
                continue
            want[bone_indices[name]] = (P[bone.head], tail, sign * lateral if kind == "side" else -up)
    rel = rig.rest_relative
    rest_rot = rig.rest_matrix[:, :3, :3]
    out = np.empty((rig.num_bones, 4, 4))
    for b in rig.order:
        p = rig.parents[b]
        m = np.array(rel[b] if p < 0 else out[p] @ rel[b])
        if b in want:
            head, tail, direction = want[b]
            # The segment as carried so far: rest segment turned by the bone's change since rest.
            u_now = m[:3, :3] @ rest_rot[b].T @ (rest_pts[tail] - rest_pts[head])
            m[:3, :3] = shortest_arc(u_now, direction) @ m[:3, :3]
        out[b] = m
    return out


def rig_with_rest(rig: Rig, pose_matrix: np.ndarray, name: str | None = None) -> Rig:
    """``rig`` resting in the armature-space pose (B, 4, 4): same bones, lengths and driven bones."""
    pose_matrix = np.asarray(pose_matrix, dtype=np.float64)
    if pose_matrix.shape != (rig.num_bones, 4, 4):
        raise InputError(f"a rest pose for rig {rig.name!r} must be (B, 4, 4) with B={rig.num_bones}, "
                         f"got {pose_matrix.shape}")
    out = Rig.from_rest_matrices(rig.name if name is None else name, rig.bone_names, rig.parents, pose_matrix,
                                 rig.length)
    return out.with_driven(rig.driven)


def rest_matrices(rig: Rig, bone_indices: dict[str, int], rest: str | int, motion: Motion | None = None,
                  option: str = "--source-rest") -> np.ndarray | None:
    """The armature-space rest (B, 4, 4) that ``rest`` (see :func:`parse_rest`) asks for, None for ``zero``.

    A frame number needs the rig's ``motion``.
    """
    rest, _ = resolve_rest(rig, bone_indices, parse_rest(rest, option), motion)
    if rest == "zero":
        return None
    if rest == "tpose":
        return tpose_matrices(rig, bone_indices)
    if motion is None:
        raise InputError(f"{option} {rest}: rig {rig.name!r} has no animation to take a frame from")
    if not 0 <= rest < motion.num_frames:
        raise InputError(f"{option} frame must be in 0..{motion.num_frames - 1}, got {rest}")
    return fk(rig, motion.select(slice(rest, rest + 1)))[0]


def motion_onto_rig(rested: Rig, motion: Motion, rig: Rig) -> Motion:
    """``motion`` (T frames on ``rested``, ``rig`` with another rest) as pose-bone values of ``rig``.

    The same armature-space pose (FK on ``rested``), measured from ``rig``'s rest
    (:func:`rigcast.retarget.rig.motion_from_pose`); every bone's location but
    the root-motion carrier's is zero, as bone heads stay where the chain puts them.
    """
    if rested.bone_names != rig.bone_names or rested.parents != rig.parents:
        raise InputError(f"rig {rested.name!r} is not a re-rested copy of {rig.name!r}")
    return motion_from_pose(rig, fk(rested, motion), root_bone=motion.root_bone, fps=motion.fps,
                            contact=motion.contact)
