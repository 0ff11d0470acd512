"""Feet in contact held still in the camera's world: the legs bend to keep them there.

Legend: T frames, J joints (BlazePose-33).

A planted foot does not move, but its estimate does: the model's depth of a foot relative to the hips creeps
(the bus.jpg man, still: 3 cm over 80 frames) and the root's PnP solve adds its own noise.  Over each contact
span (``ground_tracks``' flags) the foot is set to one pose in camera space: the ankle at its median position
over the span, heel and toes at the median direction from their parent, each at its held bone length.  The
knee follows by two-bone inverse kinematics (law of cosines, in the plane of hip, old knee and new ankle),
so every bone keeps its length.  Over ``blend_frames`` either side of a span the foot eases from the
measured pose to the pinned one.  A target out of the leg's reach is approached as far as the leg goes.

Only feet that stay put are pinned: a span where any foot point (ankle, heel, toes) wanders more than
``max_travel`` from its median is a walker's heel roll or a real slide (a stance in CMU's walk 02_01 travels
5 to 7 cm), left as measured; retargeting's foot lock (``retarget.contact``) follows the source's own foot
motion there.
"""

from __future__ import annotations

import numpy as np

from ..retarget.contact import contact_spans
from ..skeletons import BLAZEPOSE_33

SIDES = tuple({n: BLAZEPOSE_33.index(f"{side}_{n}") for n in ("hip", "knee", "ankle", "heel", "foot_index")}
              for side in ("left", "right"))


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, np.nan)


def pin_planted_feet(xyz: np.ndarray, root_xyz: np.ndarray, contact: np.ndarray, blend_frames: int = 3,
                     max_travel: float = 0.05) -> np.ndarray:
    """``xyz`` (T, J, 3) hip-centred metres with each foot in contact (``contact`` (T, 2) [left, right]) held
    at one pose in camera space (``xyz + root_xyz``, ``root_xyz`` (T, 3)); a new array.  Bone lengths are
    kept (those of each frame's own legs: hold them first).  Frames where a leg joint is missing are left."""
    xyz = np.asarray(xyz, dtype=np.float64)
    root_xyz = np.asarray(root_xyz, dtype=np.float64)
    contact = np.asarray(contact, dtype=bool)
    if xyz.ndim != 3 or xyz.shape[1:] != (BLAZEPOSE_33.num_joints, 3):
        raise ValueError(f"xyz must be (T, {BLAZEPOSE_33.num_joints}, 3), got {xyz.shape}")
    num_t = len(xyz)
    if root_xyz.shape != (num_t, 3) or contact.shape != (num_t, 2):
        raise ValueError(f"root_xyz must be (T, 3) and contact (T, 2) with T={num_t}, got {root_xyz.shape}, "
                         f"{contact.shape}")
    out = xyz.copy()
    cam = xyz + root_xyz[:, None, :]
    for side, j in enumerate(SIDES):
        leg = [j["hip"], j["knee"], j["ankle"], j["heel"], j["foot_index"]]
        whole = np.all(np.isfinite(cam[:, leg]), axis=(1, 2))
        weight = np.zeros(num_t)
        ankle_to = np.zeros((num_t, 3))
        heel_dir, toe_dir = np.zeros((num_t, 3)), np.zeros((num_t, 3))
        for a, b in contact_spans(contact[:, side] & whole):
            foot = cam[a:b, [j["ankle"], j["heel"], j["foot_index"]]]
            if np.linalg.norm(foot - np.median(foot, axis=0), axis=-1).max() > max_travel:
                continue  # rolls or slides
            ankle = np.median(cam[a:b, j["ankle"]], axis=0)
            heel = _unit(np.median(_unit(cam[a:b, j["heel"]] - cam[a:b, j["ankle"]]), axis=0))
            toe = _unit(np.median(_unit(cam[a:b, j["foot_index"]] - cam[a:b, j["ankle"]]), axis=0))
            for f in range(max(a - blend_frames, 0), min(b + blend_frames, num_t)):
                w = 1.0 if a <= f < b else 1.0 - (a - f if f < a else f - b + 1) / (blend_frames + 1)
                if w > weight[f] and whole[f]:
                    weight[f], ankle_to[f], heel_dir[f], toe_dir[f] = w, ankle, heel, toe
        f = np.flatnonzero(weight > 0)
        if f.size == 0:
            continue
        w = weight[f, None]
        hip, knee, ankle = (cam[f, j[n]] for n in ("hip", "knee", "ankle"))
        len_a = np.linalg.norm(knee - hip, axis=1)
        len_b = np.linalg.norm(ankle - knee, axis=1)
        want = ankle + w * (ankle_to[f] - ankle)
        # Two-bone IK: the new knee lies x along hip -> target (u) and y off it, toward the old knee.
        axis = want - hip
        u = _unit(axis)
        d = np.clip(np.linalg.norm(axis, axis=1), np.abs(len_a - len_b) + 1e-9, len_a + len_b - 1e-9)
        x = (len_a ** 2 - len_b ** 2 + d ** 2) / (2.0 * d)
        y = np.sqrt(np.maximum(len_a ** 2 - x ** 2, 0.0))
        pole = _unit((knee - hip) - np.sum((knee - hip) * u, axis=1, keepdims=True) * u)
        pole = np.where(np.isfinite(pole), pole, 0.0)
        new_knee = hip + x[:, None] * u + y[:, None] * pole
        new_ankle = hip + d[:, None] * u
        feet = {}
        for name, pinned in (("heel", heel_dir), ("foot_index", toe_dir)):
            now = cam[f, j[name]] - ankle
            length = np.linalg.norm(now, axis=1, keepdims=True)
            feet[name] = new_ankle + length * _unit(_unit(now) + w * (pinned[f] - _unit(now)))
        new = {"knee": new_knee, "ankle": new_ankle, **feet}
        ok = np.all([np.all(np.isfinite(v), axis=1) for v in new.values()], axis=0)
        for name, value in new.items():
            out[f[ok], j[name]] = value[ok] - root_xyz[f[ok]]
    return out
