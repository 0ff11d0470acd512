"""More joint orders for the registry in :mod:`rigcast.skeletons`.

Importing this module registers them (``get_skeleton("h36m17")`` ...); the
retargeting package imports it, so they are known wherever retargeting is.

* ``H36M_17``: Human3.6M's 17-joint layout in the order VideoPose3D and most
  lifting models use (pelvis first; joint 9 "neck/nose" sits at the nose/chin,
  joint 10 is the top of the head).
* ``VITPOSE_25``: easy_ViTPose's ``coco_25`` layout: COCO-17 with a ``neck``
  point inserted at 5 and a ``hip`` (pelvis) point at 14, plus the six
  COCO-WholeBody foot points (big toe, small toe, heel per side), as listed
  in JunkyByte/easy_ViTPose ``vit_utils/visualization.py`` (``joints_dict``).
* ``HUMANOID``: rigcast's canonical humanoid, the middle layer of
  retargeting: joint *points* (bone heads and ends) plus the twist-reference
  points the rotation solve reads.  Its bones are listed in
  :mod:`rigcast.retarget.canonical`.
"""

from __future__ import annotations

from .skeletons import Skeleton, register_skeleton

H36M_17 = Skeleton(
    name="h36m17",
    joint_names=(
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck_nose", "head_top",
        "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
    ),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
)

VITPOSE_25 = Skeleton(
    name="vitpose25",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "neck",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
    ),
    # The tree hangs from the pelvis point "hip", following easy_ViTPose's edge list.
    parents=(5, 0, 0, 1, 2, 14, 5, 5, 6, 7, 8, 9, 14, 14, -1, 12, 13, 15, 16, 17, 19, 17, 18, 22, 18),
)

# Canonical humanoid points.  Core points are bone heads/ends (a clavicle's
# inner end is its own point, as rigs hinge it there, off the neck); the
# twist references (ears, index/pinky knuckles, heels) give bones a second axis.
HUMANOID = Skeleton(
    name="rigcast_humanoid",
    joint_names=(
        "pelvis", "spine", "chest", "neck", "head", "head_end",
        "left_shoulder", "left_elbow", "left_wrist", "left_hand_end",
        "right_shoulder", "right_elbow", "right_wrist", "right_hand_end",
        "left_hip", "left_knee", "left_ankle", "left_toe", "left_toe_end",
        "right_hip", "right_knee", "right_ankle", "right_toe", "right_toe_end",
        "left_ear", "right_ear", "left_index", "left_pinky", "right_index", "right_pinky",
        "left_heel", "right_heel", "left_clavicle", "right_clavicle",
    ),
    parents=(
        -1, 0, 1, 2, 3, 4,
        3, 6, 7, 8,
        3, 10, 11, 12,
        0, 14, 15, 16, 17,
        0, 19, 20, 21, 22,
        4, 4, 8, 8, 12, 12,
        16, 21, 3, 3,
    ),
)

for _skeleton in (H36M_17, VITPOSE_25, HUMANOID):
    register_skeleton(_skeleton)
