"""Fingers: thumb and four fingers, three segments each, on both sides.  F = 30 finger bones.

Fingers carry no canonical points: when both the source and the rig have them, each rig finger bone turns as
the source's did since its rest (world rotation ``D``), lined up with the rig's rest like the limbs' joint
frames (``D @ C^T @ R_rest``, C turning the source's rest segment onto the rig's).  Sources without fingers (a
detector's Take) leave the rig's fingers at rest relative to the hand.

Names are read below each mapped hand: a finger word (``thumb``, ``index``, ``middle``, ``ring``, ``pinky``
and their synonyms) and the bone's place in its finger chain, so Mixamo's ``LeftHandIndex1..3``, Rigify's
``f_index.01.L`` (its FK controls; the ``DEF-`` bones are driven) and Unreal's ``index_01_l`` read alike;
metacarpals and end bones are skipped.
"""

from __future__ import annotations

import re

import numpy as np

from .rig import Rig

FINGERS = ("thumb", "index", "middle", "ring", "pinky")
SEGMENTS = 3
FINGER_NAMES: tuple[str, ...] = tuple(f"{finger}.{k:02d}.{s}" for s in ("L", "R") for finger in FINGERS
                                      for k in range(1, SEGMENTS + 1))
_WORDS = {"thumb": "thumb", "index": "index", "pointer": "index", "middle": "middle", "mid": "middle",
          "ring": "ring", "pinky": "pinky", "little": "pinky", "pinkie": "pinky"}
_SKIP = ("metacarpal", "meta", "end", "nub", "tip", "master", "mch", "org", "drv", "ik", "twist", "site")


def _finger_word(name: str) -> str | None:
    n = re.split(r"[|:]", name)[-1]
    n = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", re.sub(r"([a-z])([A-Z])", r"\1 \2", n))  # LThumb -> L Thumb
    tokens = [t for t in re.split(r"[^a-z]+", n.lower()) if t]
    if any(t in _SKIP for t in tokens):
        return None
    words = {_WORDS[t] for t in tokens if t in _WORDS}
    return words.pop() if len(words) == 1 else None


def detect_fingers(rig: Rig, hands: dict[str, int]) -> dict[str, int]:
    """Finger name (``index.02.L``) -> bone index in ``rig``, for the fingers found below the mapped hands.

    ``hands``: {"L": hand bone index, "R": ...}.  Per finger word, the bones
    below the hand that carry it (or, with none there, the bones named for
    that side), driven bones excluded, ordered by depth: the first three in a
    chain are segments 1-3.
    """
    from .bone_map import classify_name

    found: dict[str, int] = {}
    for side, hand in hands.items():
        chains: dict[str, list[int]] = {}
        # Below the hand; failing that (Rigify's finger controls do not hang
        # from its FK hand control) anywhere on this side of the rig.
        for candidates in (rig.descendants(hand),
                           [b for b in range(rig.num_bones) if classify_name(rig.bone_names[b])[0] == side]):
            for b in candidates:
                if rig.bone_names[b] in rig.driven:
                    continue
                word = _finger_word(rig.bone_names[b])
                if word is not None:
                    chains.setdefault(word, []).append(b)
            if chains:
                break
        for word, bones in chains.items():
            bones.sort(key=lambda b: (len(rig.ancestors(b)), b))
            # A chain, not siblings: each next segment hangs below the one before.
            chain = [bones[0]]
            for b in bones[1:]:
                if chain[-1] in rig.ancestors(b):
                    chain.append(b)
            for k, b in enumerate(chain[:SEGMENTS]):
                found[f"{word}.{k + 1:02d}.{side}"] = b
    return found


def rotations_since_rest(rig: Rig, bone_indices: dict[str, int], names: tuple[str, ...],
                         pose_matrix: np.ndarray) -> np.ndarray:
    """(T, K, 3, 3) the world rotation since rest, ``pose @ rest^T``, of each of ``names`` that ``bone_indices``
    maps to a rig bone; NaN for names not mapped.  ``pose_matrix`` is (T, B, 4, 4)."""
    pose_matrix = np.asarray(pose_matrix, dtype=np.float64)
    out = np.full((pose_matrix.shape[0], len(names), 3, 3), np.nan)
    for k, name in enumerate(names):
        if name in bone_indices:
            b = bone_indices[name]
            out[:, k] = pose_matrix[:, b, :3, :3] @ rig.rest_matrix[b, :3, :3].T
    return out


def finger_rotations(rig: Rig, fingers: dict[str, int], pose_matrix: np.ndarray) -> np.ndarray:
    """(T, F, 3, 3) each finger bone's world rotation since rest, ``pose @ rest^T``; NaN for fingers not found."""
    return rotations_since_rest(rig, fingers, FINGER_NAMES, pose_matrix)


def finger_rest_directions(rig: Rig, fingers: dict[str, int]) -> np.ndarray:
    """(F, 3) unit head -> tail directions of the finger bones at rest; NaN for fingers not found."""
    out = np.full((len(FINGER_NAMES), 3), np.nan)
    for f, name in enumerate(FINGER_NAMES):
        if name in fingers:
            out[f] = rig.rest_matrix[fingers[name], :3, 1]
    return out
