"""AMASS-format archives for tests, written from a motion on SMPL's neutral rig (the inverse of
``rigcast.formats.amass.read_amass`` for an AMASS Z-up world)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from rigcast.formats.amass import BODY_JOINTS, HAND_JOINTS, HAND_START, SMPL_NEUTRAL_OFFSETS
from rigcast.formats.bvh import YUP_TO_ZUP
from rigcast.retarget import Motion, Rig, fk


def write_amass(path: Path, rig: Rig, motion: Motion, *, width: int = 156, gender: str = "female",
                fps_key: str = "mocap_framerate") -> Path:
    """Write ``motion`` on ``rig`` (``rigcast.formats.amass.smpl_rig``) as AMASS writes SMPL-H: Z-up world.

    Global rotations G_j = D_j @ M (D_j the bone's change since rest in Blender's axes, M = YUP_TO_ZUP),
    local R_j = G_parent^T @ G_j as axis-angle; ``trans`` = pelvis - J_pelvis.  On SMPL's 24-joint rig, joints
    past the 22 body joints are written as zero rotations for SMPL-H/SMPL-X widths; on the hands rig
    (``smpl_rig(hands=True)``, 52 joints) its 30 finger joints go where the width keeps them.
    """
    pose = fk(rig, motion)
    change = pose[..., :3, :3] @ np.swapaxes(rig.rest_matrix[:, :3, :3], -1, -2)
    glob = change @ YUP_TO_ZUP
    local = np.array(glob)
    for j, p in enumerate(rig.parents):
        if p >= 0:
            local[:, j] = np.swapaxes(glob[:, p], -1, -2) @ glob[:, j]
    rotvec = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(motion.num_frames, -1)
    joints = 24 if width == 72 else BODY_JOINTS
    poses = np.zeros((motion.num_frames, width))
    poses[:, :3 * joints] = rotvec[:, :3 * joints]
    if rig.num_bones == BODY_JOINTS + len(HAND_JOINTS) and width in HAND_START:
        start = 3 * HAND_START[width]
        poses[:, start:start + 3 * len(HAND_JOINTS)] = rotvec[:, 3 * BODY_JOINTS:]
    trans = pose[:, 0, :3, 3] - SMPL_NEUTRAL_OFFSETS[0]
    np.savez(path, poses=poses.astype(np.float32), trans=trans.astype(np.float32), gender=np.array(gender),
             betas=np.zeros(16, np.float32), **{fps_key: np.array(float(motion.fps or 30))})
    return path
