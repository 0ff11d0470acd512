"""The one registry of joint orders: the :class:`Skeleton` type and every skeleton rigcast knows.

Every joint name list and parent table in rigcast lives here; edges are
derived from ``parents`` and never typed by hand elsewhere.

* ``BLAZEPOSE_33``: BlazePose's 33 keypoints, the pose model's output order.
* ``COCO_17``: COCO's 17 keypoints (Detectron, VideoPose3D, ViTPose).
* ``H36M_17``: Human3.6M's 17-joint layout in the order VideoPose3D and most
  lifting models use (pelvis first; joint 9 "neck/nose" sits at the nose/chin,
  joint 10 is the top of the head).
* ``VITPOSE_25``: easy_ViTPose's ``coco_25`` layout: COCO-17 with a ``neck``
  point inserted at 5 and a ``hip`` (pelvis) point at 14, plus the six
  COCO-WholeBody foot points (big toe, small toe, heel per side), as listed
  in JunkyByte/easy_ViTPose ``vit_utils/visualization.py`` (``joints_dict``).
* ``LW3D_19``: lightweight-human-pose-estimation-3d-demo's 19 joints, CMU
  Panoptic's body order as that project's ``parse_poses`` packs them: its
  2D keypoints (``Pose.kpt_names``) with the body centre (pelvis) at 2, which
  only the 3D read-out gives.
* ``HUMANOID``: rigcast's canonical humanoid, the middle layer of
  retargeting: joint *points* (bone heads and ends) plus the twist-reference
  points the rotation solve reads.  Its bones are listed in
  :mod:`rigcast.retarget.canonical`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A named joint hierarchy.

    ``parents[j]`` is the index of joint j's parent, -1 for a root.  For
    skeletons that are keypoint sets rather than kinematic trees (BlazePose's
    face points, say) ``parents`` still gives the drawing/kinematic tree used
    by rigcast.  ``mirror[j]`` is the joint's left/right counterpart (itself
    for centre joints).
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    mirror: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(self.parents) != n:
            raise ValueError(f"{self.name}: parents must have {n} entries, got {len(self.parents)}")
        if len(set(self.joint_names)) != n:
            raise ValueError(f"{self.name}: joint names must be unique")
        for j, p in enumerate(self.parents):
            if not (-1 <= p < n) or p == j:
                raise ValueError(f"{self.name}: joint {j} has invalid parent {p}")
        if not self.mirror:
            object.__setattr__(self, "mirror", _mirror_from_names(self.joint_names))
        elif len(self.mirror) != n:
            raise ValueError(f"{self.name}: mirror must have {n} entries, got {len(self.mirror)}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def edges(self) -> np.ndarray:
        """(E, 2) int array of (parent, child) pairs."""
        pairs = [(p, j) for j, p in enumerate(self.parents) if p >= 0]
        return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)

    def index(self, joint_name: str) -> int:
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise KeyError(f"{self.name} has no joint {joint_name!r}; joints are {list(self.joint_names)}") from None

    def to_dict(self) -> dict:
        return {"name": self.name, "joint_names": list(self.joint_names), "parents": list(self.parents),
                "mirror": list(self.mirror)}

    @classmethod
    def from_dict(cls, d: dict) -> "Skeleton":
        return cls(name=str(d["name"]), joint_names=tuple(d["joint_names"]), parents=tuple(int(p) for p in d["parents"]),
                   mirror=tuple(int(m) for m in d.get("mirror", ())))


def _mirror_from_names(names: tuple[str, ...]) -> tuple[int, ...]:
    lookup = {n: i for i, n in enumerate(names)}
    out = []
    for i, n in enumerate(names):
        for a, b in (("left_", "right_"), ("right_", "left_")):
            if n.startswith(a) and b + n[len(a):] in lookup:
                out.append(lookup[b + n[len(a):]])
                break
        else:
            out.append(i)
    return tuple(out)


# BlazePose 33 keypoints, in the model's output order.  The tree hangs the
# body from the hip midpoint's nearest real joint (left hip) so that every
# joint has a parent chain; the face points hang from the nose.
BLAZEPOSE_33 = Skeleton(
    name="blazepose33",
    joint_names=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
        "left_ear", "right_ear", "mouth_left", "mouth_right",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_heel", "right_heel", "left_foot_index", "right_foot_index",
    ),
    parents=(
        11,  # nose <- left_shoulder (drawn neck-ish link)
        0, 1, 2, 0, 4, 5,  # eyes <- nose
        3, 6,  # ears <- outer eyes
        0, 0,  # mouth <- nose
        23, 24,  # shoulders <- hips
        11, 12, 13, 14,  # elbows, wrists
        15, 16, 15, 16, 15, 16,  # hand points <- wrists
        -1, 23,  # left_hip is the root; right_hip <- left_hip
        23, 24, 25, 26,  # knees, ankles
        27, 28, 27, 28,  # heels, foot index <- ankles
    ),
)

# COCO-17 keypoints in COCO's order (as used by Detectron, VideoPose3D, ViTPose).
COCO_17 = Skeleton(
    name="coco17",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    parents=(5, 0, 0, 1, 2, 11, 12, 5, 6, 7, 8, -1, 11, 11, 12, 13, 14),
)

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

LW3D_19 = Skeleton(
    name="lw3d19",
    joint_names=(
        "neck", "nose", "pelvis",
        "left_shoulder", "left_elbow", "left_wrist", "left_hip", "left_knee", "left_ankle",
        "right_shoulder", "right_elbow", "right_wrist", "right_hip", "right_knee", "right_ankle",
        "right_eye", "left_eye", "right_ear", "left_ear",
    ),
    # The tree hangs from the pelvis: spine to the neck, the head from the nose.
    parents=(2, 0, -1, 0, 3, 4, 2, 6, 7, 0, 9, 10, 2, 12, 13, 1, 1, 15, 16),
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

_REGISTRY: dict[str, Skeleton] = {s.name: s for s in (BLAZEPOSE_33, COCO_17, H36M_17, VITPOSE_25, LW3D_19, HUMANOID)}


def joint_mapping(source: Skeleton, target: Skeleton) -> np.ndarray:
    """(J_target,) indices into ``source`` for each target joint, matched by name.

    Raises KeyError naming the target joints the source lacks.
    """
    lookup = {n: i for i, n in enumerate(source.joint_names)}
    missing = [n for n in target.joint_names if n not in lookup]
    if missing:
        raise KeyError(f"{source.name} lacks joints {missing} needed by {target.name}")
    return np.array([lookup[n] for n in target.joint_names], dtype=np.int64)


def get_skeleton(name: str) -> Skeleton:
    """Return the registered skeleton called ``name``."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown skeleton {name!r}; known: {sorted(_REGISTRY)}") from None


def register_skeleton(skeleton: Skeleton) -> None:
    if skeleton.name in _REGISTRY and _REGISTRY[skeleton.name] != skeleton:
        raise ValueError(f"a different skeleton named {skeleton.name!r} is already registered")
    _REGISTRY[skeleton.name] = skeleton


def coco17_from(points: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Points ``(..., J, D)`` of ``skeleton`` in COCO-17's order ``(..., 17, D)``, by joint name.

    BlazePose-33 and ViTPose-25 name all 17 COCO joints (BlazePose's eyes are its eye centres); H36M-17 does
    not (no eyes, ears): :class:`KeyError` names what is missing.
    """
    return np.asarray(points)[..., joint_mapping(skeleton, COCO_17), :]


def _mid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a + b) / 2


def h36m17_from(points: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Points ``(..., J, D)`` of ``skeleton`` (2D or 3D) in Human3.6M's 17-joint order ``(..., 17, D)``.

    H36M-17 passes through.  Any skeleton naming COCO-17's joints (COCO-17, BlazePose-33, ViTPose-25) maps
    as the usual COCO → H36M conversion does: limbs by name; pelvis = mid-hips; thorax = mid-shoulders;
    spine = mid(pelvis, thorax); neck_nose = the nose; head_top = mid-ears carried on by half the
    thorax → mid-ears vector (an estimate: no 2D detector marks the top of the head).  A NaN point
    (missing joint) makes every joint built from it NaN.
    """
    points = np.asarray(points, dtype=np.float32 if np.asarray(points).dtype != np.float64 else np.float64)
    if points.ndim < 2 or points.shape[-2] != skeleton.num_joints:
        raise ValueError(f"points must be (..., {skeleton.num_joints}, D) for {skeleton.name}, got {points.shape}")
    if skeleton.joint_names == H36M_17.joint_names:
        return points.copy()
    coco = coco17_from(points, skeleton)
    get = {n: coco[..., i, :] for i, n in enumerate(COCO_17.joint_names)}
    pelvis = _mid(get["left_hip"], get["right_hip"])
    thorax = _mid(get["left_shoulder"], get["right_shoulder"])
    ears = _mid(get["left_ear"], get["right_ear"])
    built = {"pelvis": pelvis, "spine": _mid(pelvis, thorax), "thorax": thorax, "neck_nose": get["nose"],
             "head_top": ears + 0.5 * (ears - thorax)}
    return np.stack([built[n] if n in built else get[n] for n in H36M_17.joint_names], axis=-2)
