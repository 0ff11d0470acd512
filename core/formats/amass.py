"""AMASS / SMPL pose-parameter archives (``.npz``): SMPL's 24-joint skeleton and its motion as a rig.

Legend: T frames, J joints: 24 for SMPL, 52 for SMPL-H and SMPL-X (22 body joints, 15 finger joints a hand).

An AMASS file holds, per frame, ``poses`` (T, 3 * N) axis-angle rotations
(N = 24 for SMPL, 52 for SMPL-H, 55 for SMPL-X; the first 22 joints are the
body in every one of them), ``trans`` (T, 3) metres, ``mocap_framerate``
(SMPL-H) or ``mocap_frame_rate`` (SMPL-X), ``gender`` and optionally
``betas``.  Conventions (the SMPL model's, Loper et al. 2015):

* every joint's rest frame is aligned with the body's canonical axes: Y up,
  the body facing +Z, its left +X, metres; a joint's rotation is relative to
  its parent, zero = the rest pose (a T-pose);
* joint j's global rotation G_j = G_parent @ R_j carries canonical axes to
  the world; the pelvis is at ``J_pelvis + trans`` (SMPL turns the body about
  its pelvis joint);
* AMASS's world is Z-up (its ``root_orient`` stands the Y-up body upright), so
  its character faces -Y with its left +X: Blender's axes as they are.
  Archives from other tools may keep SMPL's own Y-up world, or a camera's
  (Y down); the up axis is read from the motion (see :func:`read_amass`).

The rest skeleton is SMPL's neutral template (zero ``betas``): the joint
positions ``J_regressor @ v_template`` of the SMPL neutral model, kept below
as parent-relative offsets.  ``betas`` and ``gender`` are reported, not used:
without the model's shape blend shapes no other body can be built, and the
retarget only needs segment directions.  SMPL's own ``L_Hand``/``R_Hand`` are
read.  SMPL-H and SMPL-X hands (15 joints each: index, middle, pinky, ring,
thumb, three segments each, in MANO's order; SMPL-X puts jaw and eyes before
them) are read onto finger bones named ``L_Index1`` .. ``R_Thumb3`` hanging
from the wrists, which rigcast's finger mapping reads: each finger bone turns
as the archive says.  Their rest layout is an approximate flat hand
(:data:`HAND_OFFSETS`, not the models' template, which needs the model files):
only its directions matter, and only to line finger segments up with a
target's.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import InputError
from ..frames import as_fps
from ..retarget.rig import Motion, Rig, world_to_local_rotations
from ..retarget.rotations import matrix_to_quat_wxyz
from .bvh import YUP_TO_ZUP, BvhClip

SMPL_JOINTS = ("Pelvis", "L_Hip", "R_Hip", "Spine1", "L_Knee", "R_Knee", "Spine2", "L_Ankle", "R_Ankle", "Spine3",
               "L_Foot", "R_Foot", "Neck", "L_Collar", "R_Collar", "Head", "L_Shoulder", "R_Shoulder", "L_Elbow",
               "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand")
"""SMPL's joint order, named as the SMPL model's own joint list (and rigcast's ``smpl`` bone-map preset)."""
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
BODY_JOINTS = 22
"""Joints 0-21 are the body in SMPL, SMPL-H and SMPL-X alike; SMPL's 22, 23 are its hands."""

# SMPL neutral model, zero betas: J = J_regressor @ v_template, each joint's offset from its parent (the
# pelvis: its position), canonical axes (Y up, facing +Z, left +X), metres.  A fact of the published model
# (SMPL, Loper et al. 2015, basicModel_neutral); the pelvis (-0.00179506, -0.22333382, 0.02821918) is the
# "root offset" many SMPL tools hard-code, and the table appears, as here, beside SMPL's joint list in public
# motion-generation code.
SMPL_NEUTRAL_OFFSETS = np.array([
    [-0.00179506, -0.22333345, 0.02821913], [0.06951974, -0.09140623, -0.00681534],
    [-0.06767048, -0.09052168, -0.00431982], [-0.00253286, 0.10896323, -0.02669631],
    [0.03427655, -0.3751986, -0.0044958], [-0.03829005, -0.38256901, -0.00885003],
    [0.00548703, 0.13518043, 0.00109247], [-0.0135957, -0.39796036, -0.04369333],
    [0.01577377, -0.39841465, -0.0423118], [0.001457, 0.05292223, 0.02542457],
    [0.02635814, -0.05579088, 0.1192884], [-0.02537175, -0.04814396, 0.12334795],
    [-0.00277839, 0.21387036, -0.04285703], [0.07884474, 0.1217493, -0.03408961],
    [-0.08175919, 0.11883283, -0.03861529], [0.00515184, 0.06496961, 0.05134897],
    [0.09097693, 0.0304689, -0.00886815], [-0.09601238, 0.03255117, -0.00914307],
    [0.25961225, -0.01277206, -0.02745644], [-0.25374196, -0.01332922, -0.02140098],
    [0.24923363, 0.00898603, -0.00117092], [-0.25529808, 0.00777229, -0.00555919],
    [0.08404218, -0.00816154, -0.01494537], [-0.08462193, -0.00611726, -0.01031508],
])
HEAD_TOP = np.array([0.0, 0.2, 0.0])
"""End of the head bone above the Head joint (canonical axes, metres): only its direction matters."""

POSE_WIDTHS = {72: "SMPL", 156: "SMPL-H", 165: "SMPL-X"}
HAND_START = {156: 22, 165: 25}
"""Per pose width with hands, the joint index of the first left-hand joint (SMPL-X: after jaw and eyes)."""
HAND_FINGERS = ("Index", "Middle", "Pinky", "Ring", "Thumb")
"""MANO's finger order, as SMPL-H and SMPL-X list their 15 joints a hand (left hand first)."""
HAND_JOINTS = tuple(f"{s}_{f}{k}" for s in ("L", "R") for f in HAND_FINGERS for k in (1, 2, 3))
# An approximate flat left hand (canonical axes: Y up, facing +Z, left +X; metres): each finger joint's offset
# from its parent (the wrist for a finger's first joint).  Fingers run along +X, the thumb forward and down.
# The right hand mirrors it in X.
_LEFT_HAND = {
    "Index": ((0.088, 0.000, 0.025), (0.035, 0.0, 0.0), (0.023, 0.0, 0.0)),
    "Middle": ((0.092, 0.001, 0.003), (0.038, 0.0, 0.0), (0.026, 0.0, 0.0)),
    "Pinky": ((0.078, -0.005, -0.035), (0.025, 0.0, -0.003), (0.018, 0.0, -0.002)),
    "Ring": ((0.087, -0.002, -0.017), (0.034, 0.0, -0.002), (0.025, 0.0, -0.001)),
    "Thumb": ((0.025, -0.012, 0.025), (0.025, -0.005, 0.020), (0.022, -0.004, 0.015)),
}
HAND_OFFSETS = np.array([np.multiply(_LEFT_HAND[f][k - 1], (1.0 if s == "L" else -1.0, 1.0, 1.0))
                         for s in ("L", "R") for f in HAND_FINGERS for k in (1, 2, 3)])
"""(30, 3) parent-relative rest offsets of :data:`HAND_JOINTS` (canonical axes, metres): an approximate hand."""
HAND_PARENTS = tuple((20 if s == "L" else 21) if k == 1 else BODY_JOINTS + 15 * i + 3 * j + k - 2
                     for i, s in enumerate(("L", "R")) for j, _ in enumerate(HAND_FINGERS) for k in (1, 2, 3))
"""Parents of :data:`HAND_JOINTS` in a hands rig (22 body joints, then the 30 finger joints): wrists 20 / 21."""

# World (the archive's) -> Blender's axes, per up axis found.  Z-up (AMASS): as is.  Y-up (SMPL's own):
# BVH's turn, YUP_TO_ZUP.  Y-down (a camera, z forward): a half turn about X first makes it Y-up, facing -Z.
WORLD_TO_BLENDER = {"Z-up": np.eye(3), "Y-up": YUP_TO_ZUP, "Y-down": YUP_TO_ZUP @ np.diag([1.0, -1.0, -1.0])}


def _skeleton(hands: bool) -> tuple[tuple[str, ...], tuple[int, ...], np.ndarray]:
    """Joint names, parents and parent-relative offsets (J, 3) of SMPL (24 joints) or, ``hands``, of the
    22 body joints and SMPL-H's 30 finger joints."""
    if not hands:
        return SMPL_JOINTS, SMPL_PARENTS, SMPL_NEUTRAL_OFFSETS
    return (SMPL_JOINTS[:BODY_JOINTS] + HAND_JOINTS, SMPL_PARENTS[:BODY_JOINTS] + HAND_PARENTS,
            np.concatenate([SMPL_NEUTRAL_OFFSETS[:BODY_JOINTS], HAND_OFFSETS]))


def smpl_rest_positions(hands: bool = False) -> np.ndarray:
    """(J, 3) SMPL neutral rest joints, canonical axes (Y up, facing +Z), metres (``hands``: SMPL-H's 52)."""
    _, parents, offsets = _skeleton(hands)
    pos = np.zeros((len(parents), 3))
    for j, p in enumerate(parents):
        pos[j] = offsets[j] + (pos[p] if p >= 0 else 0.0)
    return pos


def smpl_rig(name: str = "smpl", hands: bool = False) -> Rig:
    """SMPL's neutral skeleton as a rig in Blender's axes (facing -Y), one bone per joint, roll 0.

    Bones run to their main child; the head to HEAD_TOP, feet and hands along their parents (as BVH leaves do).
    ``hands``: SMPL-H's 52 joints (no ``L_Hand``/``R_Hand``; five fingers of three bones below each wrist,
    the wrist bone running to its first finger's base).
    """
    names, parents, offsets = _skeleton(hands)
    end_sites = np.full((len(names), 3), np.nan)
    end_sites[names.index("Head")] = HEAD_TOP
    rest = BvhClip(joint_names=names, parents=parents, offsets=offsets, channels=tuple(() for _ in names),
                   end_sites=end_sites, frame_time=1 / 30, motion=np.zeros((0, 0)))
    return rest.to_rig(name, scale=1.0)


@dataclass(frozen=True)
class AmassInfo:
    """What an archive said about itself: model family, pose width, up axis found, gender, betas, fps."""

    model: str
    pose_width: int
    up_axis: str
    gender: str
    num_betas: int
    fps: Fraction | None

    def __str__(self) -> str:
        rate = f" @ {float(self.fps):.3f} fps" if self.fps else ""
        return (f"{self.model} poses ({self.pose_width} values a frame){rate}, {self.up_axis} world, gender "
                f"{self.gender}, {self.num_betas} betas (read, not used: SMPL's neutral template skeleton)")


def _text(value) -> str:
    value = np.asarray(value)
    item = value.item() if value.size == 1 else value
    return item.decode() if isinstance(item, bytes) else str(item)


def _up_axis(global_rotation: np.ndarray) -> str:
    """``Z-up``, ``Y-up`` or ``Y-down``: where the body's canonical up (+Y) points on average (T, 3, 3)."""
    up = np.mean(global_rotation[:, :, 1], axis=0)
    k = int(np.argmax(np.abs(up)))
    if k == 2 and up[2] > 0:
        return "Z-up"
    if k == 1:
        return "Y-up" if up[1] > 0 else "Y-down"
    raise InputError(f"cannot tell the up axis of the archive's world: the body's up points along {np.round(up, 2)} "
                     f"on average; expected +Z (AMASS), +Y (SMPL) or -Y (a camera)")


def read_amass(path: str | Path, name: str | None = None) -> tuple[Rig, Motion, AmassInfo]:
    """SMPL's neutral rig and the archive's motion on it (Blender axes, metres), and what the archive held.

    Per joint the global rotation G_j (canonical -> archive world) becomes,
    in Blender's axes with A = WORLD_TO_BLENDER[up] and M = YUP_TO_ZUP (the
    rig's rest is the canonical body turned by M), the change since rest
    ``D_j = A @ G_j @ M^T``; the bone's armature-space orientation is
    ``D_j @ R_rest`` and the pelvis is at ``A @ (J_pelvis + trans)``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input not found: {path}")
    try:
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as archive:
            files = set(archive.files)
            if "poses" not in files or "trans" not in files:
                raise InputError(f"{path.name}: expected an AMASS/SMPL archive with 'poses' and 'trans', found "
                                 f"{sorted(files)[:8]}")
            poses = np.asarray(archive["poses"], dtype=np.float64)
            trans = np.asarray(archive["trans"], dtype=np.float64)
            rate = next((float(archive[k]) for k in ("mocap_framerate", "mocap_frame_rate", "fps") if k in files),
                        None)
            gender = _text(archive["gender"]) if "gender" in files else "unknown"
            betas = np.asarray(archive["betas"]).size if "betas" in files else 0
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path.name}: expected an AMASS/SMPL .npz archive, but it cannot be read: {exc}") from exc
    if poses.ndim != 2 or poses.shape[1] not in POSE_WIDTHS or poses.shape[0] == 0:
        raise InputError(f"{path.name}: poses must be (T, 72), (T, 156) or (T, 165) with T >= 1, got {poses.shape}")
    if trans.shape != (poses.shape[0], 3):
        raise InputError(f"{path.name}: trans must be (T, 3) with T={poses.shape[0]}, got {trans.shape}")
    if not (np.all(np.isfinite(poses)) and np.all(np.isfinite(trans))):
        raise InputError(f"{path.name}: poses and trans must be finite")
    fps = as_fps(rate) if rate and rate > 0 else None

    num_frames, width = poses.shape
    hands = width in HAND_START
    _, parents, _ = _skeleton(hands)
    if hands:  # the body's 22 joints, then the 30 finger joints from where this width keeps them
        start = HAND_START[width]
        rotvec = np.concatenate([poses[:, :3 * BODY_JOINTS], poses[:, 3 * start:3 * (start + len(HAND_JOINTS))]],
                                axis=1)
    else:
        rotvec = poses
    local = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(num_frames, len(parents), 3, 3)
    glob = np.empty_like(local)
    for j, p in enumerate(parents):
        glob[:, j] = local[:, j] if p < 0 else glob[:, p] @ local[:, j]
    up = _up_axis(glob[:, 0])
    to_blender = WORLD_TO_BLENDER[up]

    rig = smpl_rig(name or path.stem, hands=hands)
    change = to_blender @ glob @ YUP_TO_ZUP.T
    pose_local = world_to_local_rotations(rig, change @ rig.rest_matrix[:, :3, :3])
    pelvis = (SMPL_NEUTRAL_OFFSETS[0] + trans) @ to_blender.T
    translation = (pelvis - rig.head_xyz[0]) @ rig.rest_matrix[0, :3, :3]
    motion = Motion(local_quat_wxyz=matrix_to_quat_wxyz(pose_local, orthonormal=True), root_translation=translation,
                    root_bone=0, fps=fps).with_continuous_signs()
    info = AmassInfo(model=POSE_WIDTHS[width], pose_width=width, up_axis=up, gender=gender, num_betas=int(betas),
                     fps=fps)
    return rig, motion, info


def is_amass(path: str | Path) -> bool:
    """Whether ``path`` is an .npz archive holding ``poses`` and ``trans`` (AMASS/SMPL), not a rigcast Take."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {"poses.npy", "trans.npy"} <= set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
