"""Bone lengths held constant over a track: one robust length per bone, the smoothed directions kept.

A person's bones do not stretch, but per-frame 3D estimates make them breathe by a centimetre or more; an
animator sees that as limbs that wobble.  Each bone's length is estimated once per track (the median over the
frames where both its joints are seen) and every frame is rebuilt down the skeleton's tree from its root:
``joint = parent + length * unit(smoothed joint - smoothed parent)``.  Then the hip midpoint is put back at
the origin (world landmarks are hip-centred).

Legend: T frames, J joints.
"""

from __future__ import annotations

import numpy as np

from ..skeletons import BLAZEPOSE_33, Skeleton

_HIPS = (BLAZEPOSE_33.index("left_hip"), BLAZEPOSE_33.index("right_hip"))


def _tree_order(parents: tuple[int, ...]) -> list[int]:
    order, seen = [], set()
    while len(order) < len(parents):
        added = [j for j, p in enumerate(parents) if j not in seen and (p < 0 or p in seen)]
        if not added:
            raise ValueError(f"parents {parents} hold a cycle")
        order += added
        seen.update(added)
    return order


def bone_lengths(xyz: np.ndarray, conf: np.ndarray, skeleton: Skeleton, min_conf: float = 0.5) -> np.ndarray:
    """Each joint's distance to its parent (J,), the median over frames where both are finite with conf >=
    ``min_conf`` (any finite frame when none is that sure); NaN for roots and for bones never seen."""
    xyz = np.asarray(xyz, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    lengths = np.full(skeleton.num_joints, np.nan)
    for j, p in enumerate(skeleton.parents):
        if p < 0:
            continue
        d = np.linalg.norm(xyz[:, j] - xyz[:, p], axis=1)
        ok = np.isfinite(d)
        sure = ok & (conf[:, j] >= min_conf) & (conf[:, p] >= min_conf)
        use = sure if sure.any() else ok
        if use.any():
            lengths[j] = float(np.median(d[use]))
    return lengths


def hold_bone_lengths(xyz: np.ndarray, lengths: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """``xyz`` (T, J, 3) rebuilt with every bone at ``lengths`` (J,) along its own direction; a new array.

    A joint whose parent is missing in a frame (or whose bone has no length) keeps its position; missing
    joints stay NaN.  For BlazePose-33 the hip midpoint is moved back to the origin afterwards.
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 3 or xyz.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"xyz must be (T, {skeleton.num_joints}, 3), got {xyz.shape}")
    out = xyz.copy()
    for j in _tree_order(skeleton.parents):
        p = skeleton.parents[j]
        if p < 0 or not np.isfinite(lengths[j]):
            continue
        bone = xyz[:, j] - xyz[:, p]
        norm = np.linalg.norm(bone, axis=1, keepdims=True)
        rebuilt = out[:, p] + lengths[j] * bone / np.where(norm > 1e-9, norm, np.nan)
        ok = np.all(np.isfinite(rebuilt), axis=1)
        out[ok, j] = rebuilt[ok]
    if skeleton.num_joints == BLAZEPOSE_33.num_joints:
        mid = 0.5 * (out[:, _HIPS[0]] + out[:, _HIPS[1]])
        out -= np.where(np.isfinite(mid), mid, 0.0)[:, None, :]
    return out
