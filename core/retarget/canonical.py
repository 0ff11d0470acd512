"""The canonical humanoid: the middle layer between any source skeleton and any rig.

Legend: T frames, K canonical points (``HUMANOID.num_joints`` = 34), B bones.

Sources (BlazePose-33, COCO-17, ViTPose-25, Human3.6M-17, lightweight 3D's
19 joints, or a rig driven by a BVH clip) become :class:`CanonicalPose`: per frame, the positions of the
canonical *points* (``rigcast.skeletons.HUMANOID``) in a Z-up world,
metres.  Target rigs get the same points in their rest pose
(:func:`rig_markers`).  The rotation solve then compares, bone by bone, the
canonical segment ``head point -> tail point`` and its twist reference
between rest and frame; it never looks at a rig bone's own direction, so
control bones that do not lie along the limb (Rigify's ``torso``) and any
bone roll work.

Some points a detector cannot see (a spine, a clavicle base).  They are
*derived* by fixed rules (the hip midpoint, a third of the way up the torso
...) and listed in ``CanonicalPose.derived``; the solve then derives the
same points on the target rig by the same rules, so that rest and frame mean
the same thing.  Points a rig cannot provide (an unmapped spine) are derived
on both sides for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable

import numpy as np

from ..frames import CV_TO_BLENDER, cv_to_blender
from ..skeletons import BLAZEPOSE_33, COCO_17, H36M_17, HUMANOID, LW3D_19, VITPOSE_25, Skeleton
from .fingers import FINGER_NAMES, finger_rest_directions, finger_rotations, rotations_since_rest
from .rig import Rig, RetargetError
from .rotations import normalize

POINTS = HUMANOID.joint_names
P = {name: i for i, name in enumerate(POINTS)}
NUM_POINTS = len(POINTS)


# --------------------------------------------------------------------------- canonical bones


@dataclass(frozen=True)
class CanonicalBone:
    """One canonical bone: a segment between two canonical points and its twist reference.

    ``tails``: candidate tail points, the first one available on both the
    source and the rig is used (a foot runs ankle -> ball when both know the
    ball, else ankle -> toe tip).  ``twist``: lines ``(from, (to, ...))``
    whose unit vectors are summed into the second axis that fixes the
    rotation about the segment; empty for swing-only bones.  ``rest_default``
    names a body direction (``left``, ``forward``, ``back``, ``up``) used as
    the rest second axis where the rig's own is degenerate (a straight limb
    has no bend plane).
    """

    name: str
    parent: str | None
    head: str
    tails: tuple[str, ...]
    twist: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rest_default: str | None = None


def _limb_bones(side: str, s: str) -> tuple[CanonicalBone, ...]:
    # side "left"/"right" for point names, s "L"/"R" for bone names.
    return (
        CanonicalBone(f"shoulder.{s}", "chest", f"{side}_clavicle", (f"{side}_shoulder",)),
        # Upper arm twist from the elbow's bend plane: the forearm's direction
        # across the upper arm.  A straight rest arm bends forward.
        CanonicalBone(f"upper_arm.{s}", f"shoulder.{s}", f"{side}_shoulder", (f"{side}_elbow",),
                      ((f"{side}_elbow", (f"{side}_wrist",)),), "forward"),
        # Forearm and hand twist from the knuckle line (pinky -> index): the
        # forearm carries pronation, so the hand's own twist stays near zero.
        CanonicalBone(f"lower_arm.{s}", f"upper_arm.{s}", f"{side}_elbow", (f"{side}_wrist",),
                      ((f"{side}_pinky", (f"{side}_index",)),), "forward"),
        CanonicalBone(f"hand.{s}", f"lower_arm.{s}", f"{side}_wrist", (f"{side}_hand_end",),
                      ((f"{side}_pinky", (f"{side}_index",)),), "forward"),
        # Thigh twist from the knee's bend plane (the shin swings back).
        CanonicalBone(f"thigh.{s}", "hips", f"{side}_hip", (f"{side}_knee",),
                      ((f"{side}_knee", (f"{side}_ankle",)),), "back"),
        # Shin twist from where the foot points.
        CanonicalBone(f"shin.{s}", f"thigh.{s}", f"{side}_knee", (f"{side}_ankle",),
                      ((f"{side}_ankle", (f"{side}_toe", f"{side}_toe_end")),), "forward"),
        # Foot twist from the heel -> ankle line (up the back of the foot).
        CanonicalBone(f"foot.{s}", f"shin.{s}", f"{side}_ankle", (f"{side}_toe", f"{side}_toe_end"),
                      ((f"{side}_heel", (f"{side}_ankle",)),), "up"),
        CanonicalBone(f"toes.{s}", f"foot.{s}", f"{side}_toe", (f"{side}_toe_end",)),
    )


_SHOULDER_LINE = ("right_shoulder", ("left_shoulder",))
_HIP_LINE = ("right_hip", ("left_hip",))
_EAR_LINE = ("right_ear", ("left_ear",))

CANONICAL_BONES: tuple[CanonicalBone, ...] = (
    # Where a skeleton has no spine joint (DeepMimic: root -> chest), the hips run to the chest or neck.
    CanonicalBone("hips", None, "pelvis", ("spine", "chest", "neck"), (_HIP_LINE,), "left"),
    CanonicalBone("spine", "hips", "spine", ("chest", "neck"), (_HIP_LINE, _SHOULDER_LINE), "left"),
    CanonicalBone("chest", "spine", "chest", ("neck",), (_SHOULDER_LINE,), "left"),
    CanonicalBone("neck", "chest", "neck", ("head",), (_SHOULDER_LINE, _EAR_LINE), "left"),
    CanonicalBone("head", "neck", "head", ("head_end",), (_EAR_LINE,), "left"),
    *_limb_bones("left", "L"),
    *_limb_bones("right", "R"),
)
BONE_NAMES: tuple[str, ...] = tuple(b.name for b in CANONICAL_BONES)
BONES = {b.name: b for b in CANONICAL_BONES}


# --------------------------------------------------------------------------- derivation rules

SPINE_FRACTION = 1.0 / 3.0
CHEST_FRACTION = 2.0 / 3.0
HEAD_END_LENGTH = 0.2
"""Length in metres given to derived head segments (only their direction matters)."""
HEAD_NOSE_PITCH_DEG = 15.0
"""How far the ear-midpoint -> nose line dips below the head's forward axis in a
neutral head: the nose tip sits about 3 cm below the ear canal over about 11 cm
(adult anthropometry).  Used to tell the head's up axis from ears and nose."""


def _mid(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 0.5 * (a + b)


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return a + t * (b - a)


# Rules shared by sources and rigs, in dependency order.  Each takes (..., K, 3)
# points and returns (..., 3).
SHARED_RULES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "pelvis": lambda x: _mid(x[..., P["left_hip"], :], x[..., P["right_hip"], :]),
    "neck": lambda x: _mid(x[..., P["left_shoulder"], :], x[..., P["right_shoulder"], :]),
    # A detector sees no clavicle: its inner end is taken at the neck point.
    "left_clavicle": lambda x: x[..., P["neck"], :],
    "right_clavicle": lambda x: x[..., P["neck"], :],
    "spine": lambda x: _lerp(x[..., P["pelvis"], :], x[..., P["neck"], :], SPINE_FRACTION),
    "chest": lambda x: _lerp(x[..., P["pelvis"], :], x[..., P["neck"], :], CHEST_FRACTION),
    "head": lambda x: _mid(x[..., P["left_ear"], :], x[..., P["right_ear"], :]),
}
# A detector's head end comes from its face; on a rig the matching rest point
# is straight up the body from the head (the rig's rest head looks ahead).
# Rest rules take one pose (K, 3).
REST_RULES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "head_end": lambda x: x[P["head"]] + HEAD_END_LENGTH * body_axes(x)[1],
}
DERIVABLE = tuple(SHARED_RULES) + tuple(REST_RULES)


def apply_rules(xyz: np.ndarray, names, rules: dict | None = None) -> np.ndarray:
    """A copy of points (..., K, 3) with the points ``names`` recomputed by their rules, in dependency order."""
    out = np.array(xyz, dtype=np.float64)
    rules = {**SHARED_RULES, **REST_RULES} if rules is None else rules
    for name, rule in rules.items():
        if name in names:
            out[..., P[name], :] = rule(out)
    return out


# --------------------------------------------------------------------------- CanonicalPose


@dataclass(frozen=True, eq=False)
class CanonicalPose:
    """Canonical point positions per frame.  T frames, K = 34 points.

    ``xyz`` (T, K, 3): Z-up world (Blender axes), metres; NaN where a point is
    unknown.  ``derived``: points computed by the shared rules or the face
    rule rather than observed (see the module docstring).  ``head_rotation``
    (T, 3, 3), optional: the head's rotation in the same world relative to a
    neutral upright head facing -Y (from a face tracker); it overrides the
    ears for the head's orientation.  ``segment_rotation`` (T, C, 3, 3),
    optional: per canonical bone (``BONE_NAMES`` order, C = 21) the source
    segment's world rotation since the source's rest pose, NaN where the
    source has no such bone; an animated rig (a BVH clip) has them, a
    detector does not.  They carry the twist that points cannot show (a
    straight arm's roll, the spine's turn).  ``rest_xyz`` (K, 3), optional:
    the source's canonical points in the rest those rotations start from, so
    that a source resting in another pose (arms down, A-pose) is lined up
    with the rig's rest.  ``finger_rotation`` (T, F, 3, 3) and
    ``finger_rest`` (F, 3), optional: the same for the finger bones
    (``rigcast.retarget.fingers.FINGER_NAMES``, F = 30), as rotations and
    rest directions.  ``source``: skeleton it came from.
    ``contact`` (T, 2) bool, optional: [left, right] foot contact measured by
    the analysis (a Take track's), used instead of detecting it on the rig.
    """

    xyz: np.ndarray
    derived: frozenset[str] = field(default_factory=frozenset)
    head_rotation: np.ndarray | None = None
    source: str = ""
    fps: Fraction | None = None
    segment_rotation: np.ndarray | None = None
    rest_xyz: np.ndarray | None = None
    finger_rotation: np.ndarray | None = None
    finger_rest: np.ndarray | None = None
    contact: np.ndarray | None = None

    def __post_init__(self) -> None:
        xyz = np.array(self.xyz, dtype=np.float64)
        if self.contact is not None:
            c = np.array(self.contact, dtype=bool)
            if c.shape != (xyz.shape[0], 2):
                raise RetargetError(f"contact must be (T, 2) with T={xyz.shape[0]}, got {c.shape}")
            object.__setattr__(self, "contact", c)
        if xyz.ndim != 3 or xyz.shape[1:] != (NUM_POINTS, 3):
            raise RetargetError(f"xyz must be (T, K, 3) with K={NUM_POINTS}, got {xyz.shape}")
        xyz.setflags(write=False)
        object.__setattr__(self, "xyz", xyz)
        derived = frozenset(self.derived)
        unknown = derived - set(POINTS)
        if unknown:
            raise RetargetError(f"derived names unknown canonical points {sorted(unknown)}")
        object.__setattr__(self, "derived", derived)
        if self.head_rotation is not None:
            h = np.array(self.head_rotation, dtype=np.float64)
            if h.shape != (xyz.shape[0], 3, 3):
                raise RetargetError(f"head_rotation must be (T, 3, 3) with T={xyz.shape[0]}, got {h.shape}")
            h.setflags(write=False)
            object.__setattr__(self, "head_rotation", h)
        if self.segment_rotation is not None:
            r = np.array(self.segment_rotation, dtype=np.float64)
            if r.shape != (xyz.shape[0], len(BONE_NAMES), 3, 3):
                raise RetargetError(f"segment_rotation must be (T, C, 3, 3) with T={xyz.shape[0]}, "
                                    f"C={len(BONE_NAMES)}, got {r.shape}")
            r.setflags(write=False)
            object.__setattr__(self, "segment_rotation", r)
        if (self.finger_rotation is None) != (self.finger_rest is None):
            raise RetargetError("finger_rotation and finger_rest come together")
        if self.finger_rotation is not None:
            rot = np.array(self.finger_rotation, dtype=np.float64)
            rest = np.array(self.finger_rest, dtype=np.float64)
            if rot.shape != (xyz.shape[0], len(FINGER_NAMES), 3, 3) or rest.shape != (len(FINGER_NAMES), 3):
                raise RetargetError(f"finger_rotation must be (T, F, 3, 3) and finger_rest (F, 3) with "
                                    f"T={xyz.shape[0]}, F={len(FINGER_NAMES)}, got {rot.shape}, {rest.shape}")
            rot.setflags(write=False)
            rest.setflags(write=False)
            object.__setattr__(self, "finger_rotation", rot)
            object.__setattr__(self, "finger_rest", rest)
        if self.rest_xyz is not None:
            rest = np.array(self.rest_xyz, dtype=np.float64)
            if rest.shape != (NUM_POINTS, 3):
                raise RetargetError(f"rest_xyz must be (K, 3) with K={NUM_POINTS}, got {rest.shape}")
            rest.setflags(write=False)
            object.__setattr__(self, "rest_xyz", rest)

    @property
    def num_frames(self) -> int:
        return self.xyz.shape[0]

    def point(self, name: str) -> np.ndarray:
        """(T, 3) positions of one canonical point."""
        return self.xyz[:, P[name]]

    def available(self) -> np.ndarray:
        """(K,) whether each point is finite in at least one frame."""
        return np.any(np.all(np.isfinite(self.xyz), axis=2), axis=0)

    def with_head_rotation(self, head_rotation: np.ndarray | None) -> "CanonicalPose":
        return replace(self, head_rotation=head_rotation)

    def with_xyz(self, xyz: np.ndarray) -> "CanonicalPose":
        return replace(self, xyz=xyz)

    def with_segment_rotation(self, segment_rotation: np.ndarray | None,
                              rest_xyz: np.ndarray | None = None) -> "CanonicalPose":
        return replace(self, segment_rotation=segment_rotation,
                       rest_xyz=self.rest_xyz if rest_xyz is None else rest_xyz)

    def select(self, frames) -> "CanonicalPose":
        return replace(self, xyz=self.xyz[frames],
                       head_rotation=None if self.head_rotation is None else self.head_rotation[frames],
                       segment_rotation=None if self.segment_rotation is None else self.segment_rotation[frames],
                       finger_rotation=None if self.finger_rotation is None else self.finger_rotation[frames],
                       contact=None if self.contact is None else self.contact[frames])


# --------------------------------------------------------------------------- detector sources


def _check_source(xyz: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 3 or xyz.shape[1:] != (skeleton.num_joints, 3):
        raise RetargetError(f"xyz must be (T, J, 3) with J={skeleton.num_joints} ({skeleton.name}), got {xyz.shape}")
    return xyz


def _face_head_end(head: np.ndarray, left_ear: np.ndarray, right_ear: np.ndarray, nose: np.ndarray) -> np.ndarray:
    """(T, 3) a point HEAD_END_LENGTH up the head's axis, from the ears and the nose.

    lateral l = left ear - right ear; the nose direction n (from the ear
    midpoint, across l) dips HEAD_NOSE_PITCH_DEG = a below the true forward F.
    With U the true up: n = cos(a) F - sin(a) U, and u0 = n x l / |.| =
    cos(a) U + sin(a) F, so U = cos(a) u0 - sin(a) n.  (Left = +X, forward = -Y
    gives n x l = (-Y) x X = +Z: up, as wanted.)
    """
    lateral = normalize(left_ear - right_ear)
    n = nose - _mid(left_ear, right_ear)
    n = normalize(n - np.sum(n * lateral, axis=-1, keepdims=True) * lateral)
    u0 = normalize(np.cross(n, lateral))
    a = np.radians(HEAD_NOSE_PITCH_DEG)
    return head + HEAD_END_LENGTH * (np.cos(a) * u0 - np.sin(a) * n)


_DETECTOR_DERIVED = frozenset({"pelvis", "neck", "left_clavicle", "right_clavicle", "spine", "chest", "head",
                               "head_end"})


def _body_and_face(out: np.ndarray, get: Callable[[str], np.ndarray], nose: np.ndarray | None) -> None:
    for name in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                 "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                 "left_ear", "right_ear"):
        out[:, P[name]] = get(name)
    out[:] = apply_rules(out, SHARED_RULES.keys(), SHARED_RULES)
    if nose is not None:
        out[:, P["head_end"]] = _face_head_end(out[:, P["head"]], out[:, P["left_ear"]], out[:, P["right_ear"]], nose)


def from_blazepose33(xyz: np.ndarray, *, fps: Fraction | None = None) -> CanonicalPose:
    """Canonical points from BlazePose-33 positions (T, 33, 3) in a Z-up world (metres).

    Hand ends are the index/pinky knuckle midpoints, toe ends the foot_index
    points, heels the heels; ``pelvis``, ``neck``, ``spine``, ``chest`` and
    ``head`` follow the shared rules and ``head_end`` the ears and nose.
    """
    src = _check_source(xyz, BLAZEPOSE_33)
    get = lambda n: src[:, BLAZEPOSE_33.index(n)]  # noqa: E731
    out = np.full((src.shape[0], NUM_POINTS, 3), np.nan)
    _body_and_face(out, get, get("nose"))
    for side in ("left", "right"):
        out[:, P[f"{side}_index"]] = get(f"{side}_index")
        out[:, P[f"{side}_pinky"]] = get(f"{side}_pinky")
        out[:, P[f"{side}_hand_end"]] = _mid(get(f"{side}_index"), get(f"{side}_pinky"))
        out[:, P[f"{side}_toe_end"]] = get(f"{side}_foot_index")
        out[:, P[f"{side}_heel"]] = get(f"{side}_heel")
    return CanonicalPose(out, derived=_DETECTOR_DERIVED, source=BLAZEPOSE_33.name, fps=fps)


def from_coco17(xyz: np.ndarray, *, fps: Fraction | None = None) -> CanonicalPose:
    """Canonical points from COCO-17 positions (T, 17, 3), Z-up world.  No hands or feet beyond wrists/ankles."""
    src = _check_source(xyz, COCO_17)
    get = lambda n: src[:, COCO_17.index(n)]  # noqa: E731
    out = np.full((src.shape[0], NUM_POINTS, 3), np.nan)
    _body_and_face(out, get, get("nose"))
    return CanonicalPose(out, derived=_DETECTOR_DERIVED, source=COCO_17.name, fps=fps)


def from_vitpose25(xyz: np.ndarray, *, fps: Fraction | None = None) -> CanonicalPose:
    """Canonical points from easy_ViTPose ``coco_25`` positions (T, 25, 3), Z-up world.

    Toe ends are the big/small toe midpoints, heels the heels.  The model's
    own ``neck`` and ``hip`` points stand in where a side is missing.
    """
    src = _check_source(xyz, VITPOSE_25)
    get = lambda n: src[:, VITPOSE_25.index(n)]  # noqa: E731
    out = np.full((src.shape[0], NUM_POINTS, 3), np.nan)
    _body_and_face(out, get, get("nose"))
    for point, own in (("pelvis", "hip"), ("neck", "neck")):
        gap = ~np.all(np.isfinite(out[:, P[point]]), axis=1)
        out[gap, P[point]] = get(own)[gap]
    out[:] = apply_rules(out, ("spine", "chest"), SHARED_RULES)
    for side in ("left", "right"):
        out[:, P[f"{side}_toe_end"]] = _mid(get(f"{side}_big_toe"), get(f"{side}_small_toe"))
        out[:, P[f"{side}_heel"]] = get(f"{side}_heel")
    return CanonicalPose(out, derived=_DETECTOR_DERIVED, source=VITPOSE_25.name, fps=fps)


def from_h36m17(xyz: np.ndarray, *, fps: Fraction | None = None) -> CanonicalPose:
    """Canonical points from Human3.6M-17 positions (T, 17, 3), Z-up world.

    Human3.6M has no ears: the head runs from joint 9 (neck/nose) to joint 10
    (head top) and has no twist reference, so it only swings.
    """
    src = _check_source(xyz, H36M_17)
    get = lambda n: src[:, H36M_17.index(n)]  # noqa: E731
    out = np.full((src.shape[0], NUM_POINTS, 3), np.nan)
    _body_and_face(out, lambda n: get(n) if n in H36M_17.joint_names else np.full((src.shape[0], 3), np.nan), None)
    out[:, P["head"]] = get("neck_nose")
    out[:, P["head_end"]] = get("head_top")
    derived = frozenset({"pelvis", "neck", "left_clavicle", "right_clavicle", "spine", "chest"})
    return CanonicalPose(out, derived=derived, source=H36M_17.name, fps=fps)


LW3D_PANOPTIC_FACE = {"left_eye": 15, "left_ear": 16, "right_eye": 17, "right_ear": 18}
"""Channels of the lightweight 3D model's face joints in its 3D, CMU Panoptic's order.  ``LW3D_19`` names
15-18 as the seed's 2D repacking does (right eye, left eye, right ear, left ear), but its 3D follows Panoptic:
the seed re-reads the 3D along the chains ear, eye, nose ``[18, 17, 1]`` and ``[16, 15, 1]``
(``parse_poses.py``'s ``limbs``) and draws nose-15-16 and nose-17-18, which are chains only in Panoptic's order."""


def from_lw3d19(xyz: np.ndarray, *, fps: Fraction | None = None) -> CanonicalPose:
    """Canonical points from lightweight-human-pose-estimation-3d's 19 joints in 3D (T, 19, 3), Z-up world.

    Body joints map by name; the ears are read at their Panoptic channels (:data:`LW3D_PANOPTIC_FACE`).  No
    hands or feet beyond wrists and ankles.  The model's own ``neck`` and ``pelvis`` (Panoptic's neck and body
    centre) stand in where a shoulder or a hip is missing; the head runs from the ears' midpoint to the point the
    ears and nose give, as for the other detectors.
    """
    src = _check_source(xyz, LW3D_19)
    get = lambda n: src[:, LW3D_PANOPTIC_FACE.get(n, LW3D_19.index(n))]  # noqa: E731
    out = np.full((src.shape[0], NUM_POINTS, 3), np.nan)
    _body_and_face(out, get, get("nose"))
    for point in ("pelvis", "neck"):
        gap = ~np.all(np.isfinite(out[:, P[point]]), axis=1)
        out[gap, P[point]] = get(point)[gap]
    out[:] = apply_rules(out, ("spine", "chest"), SHARED_RULES)
    return CanonicalPose(out, derived=_DETECTOR_DERIVED, source=LW3D_19.name, fps=fps)


SOURCE_CONVERTERS: dict[str, Callable[..., CanonicalPose]] = {
    BLAZEPOSE_33.name: from_blazepose33,
    COCO_17.name: from_coco17,
    VITPOSE_25.name: from_vitpose25,
    H36M_17.name: from_h36m17,
    LW3D_19.name: from_lw3d19,
}


def from_skeleton(xyz: np.ndarray, skeleton: Skeleton | str, *, fps: Fraction | None = None) -> CanonicalPose:
    """Canonical points from positions (T, J, 3) of any registered detector skeleton, Z-up world."""
    name = skeleton if isinstance(skeleton, str) else skeleton.name
    if name not in SOURCE_CONVERTERS:
        raise RetargetError(f"no canonical conversion for skeleton {name!r}; known: {sorted(SOURCE_CONVERTERS)}")
    return SOURCE_CONVERTERS[name](xyz, fps=fps)


# The face tracker's canonical face (rigcast.face) has x to the subject's left,
# y up, z out of the face.  On a neutral head facing -Y in Blender's world
# those are +X, +Z and -Y: world <- canonical, neutral, is NEUTRAL_FACE.
NEUTRAL_FACE = np.array([[1.0, 0.0, 0.0],
                         [0.0, 0.0, -1.0],
                         [0.0, 1.0, 0.0]])


def head_rotation_from_face(rotation_cam: np.ndarray) -> np.ndarray:
    """Head rotations (T, 3, 3) for :class:`CanonicalPose` from face-tracker rotations (T, 3, 3).

    ``rotation_cam`` is ``rigcast.face.HeadPose.rotation``: camera (OpenCV)
    <- canonical face.  In Blender's world the face is
    ``W = CV_TO_BLENDER @ rotation_cam`` (world <- canonical), and relative to
    the neutral head facing -Y the rotation is ``H = W @ NEUTRAL_FACE^T``.  A
    face looking into the camera (``FRONTAL``) faces -Y: H = I.
    """
    return CV_TO_BLENDER @ np.asarray(rotation_cam, dtype=np.float64) @ NEUTRAL_FACE.T


ANKLE_HEIGHT = 0.08
"""Typical ankle height above the floor (metres), used to place the floor when a
source has ankles but no heels or toes."""


def canonical_from_track(track, *, fps: Fraction | None = None, ground: bool = True,
                         centre: bool = True) -> CanonicalPose:
    """Canonical points in a Z-up world from a Take track (hip-centred camera axes plus the root trajectory).

    Camera-space positions are ``xyz + root_xyz`` (OpenCV axes, metres),
    turned into Blender axes by :func:`rigcast.frames.cv_to_blender` (camera
    at the origin looking along +Y).  ``ground`` moves the floor to Z = 0,
    placing it at the 5th percentile of the lowest foot point per frame
    (heels/toe ends, else ankles less ANKLE_HEIGHT); ``centre`` moves the
    first frame's pelvis to X = Y = 0, so the take starts at the armature's
    origin.
    """
    if not np.isfinite(np.asarray(track.xyz)).any():
        raise RetargetError(f"track {track.track_id} has 2D keypoints only ({track.skeleton.name}, from a 2D model "
                            "such as --pose vitpose); animation needs a 3D track: analyse with the default "
                            "--pose blazepose")
    camera = np.asarray(track.xyz, dtype=np.float64) + np.asarray(track.root_xyz, dtype=np.float64)[:, None, :]
    # A frame on which no joint is confident (a person hidden behind another, followed through by the tracker)
    # holds junk: it is unknown (NaN), so it neither sets the floor nor the scale, and the retarget fills it in.
    camera[~seen_frames(track)] = np.nan
    pose = from_skeleton(cv_to_blender(camera), track.skeleton, fps=fps)
    xyz = np.array(pose.xyz)
    if ground:
        feet = [P[n] for n in ("left_heel", "right_heel", "left_toe_end", "right_toe_end")]
        lowest = np.nanmin(np.where(np.isfinite(xyz[:, feet, 2]), xyz[:, feet, 2], np.inf), axis=1)
        if not np.any(np.isfinite(lowest)):
            ankles = xyz[:, [P["left_ankle"], P["right_ankle"]], 2]
            lowest = np.nanmin(np.where(np.isfinite(ankles), ankles, np.inf), axis=1) - ANKLE_HEIGHT
        lowest = lowest[np.isfinite(lowest)]
        if lowest.size:
            xyz[..., 2] -= np.percentile(lowest, 5)
    if centre:
        pelvis = xyz[:, P["pelvis"], :2]
        ok = np.flatnonzero(np.all(np.isfinite(pelvis), axis=1))
        if ok.size:
            xyz[..., :2] -= pelvis[ok[0]]
    contact = getattr(track, "contact", None)
    return replace(pose.with_xyz(xyz), contact=contact)


LOWER_BODY_MIN_CONF = 0.5
LOWER_BODY_MIN_FRACTION = 0.25
SEEN_MIN_CONF = 0.5
"""A track's frame is seen when some joint has at least this confidence; a foot is seen when its ankle, heel and
toe all have."""


def seen_frames(track, min_conf: float = SEEN_MIN_CONF) -> np.ndarray:
    """(T,) whether ``track`` shows its person on each frame: some joint's confidence reaches ``min_conf``."""
    conf = np.nan_to_num(np.asarray(track.conf, dtype=np.float64), nan=0.0)
    return np.any(conf >= min_conf, axis=1) if conf.size else np.zeros(len(track.frame_index), dtype=bool)


def track_feet_seen(track, min_conf: float = SEEN_MIN_CONF, min_fraction: float = LOWER_BODY_MIN_FRACTION) -> bool:
    """Whether ``track``'s feet are seen well enough to plant them: for each side, the whole foot (ankle, heel and
    toe, those of its skeleton) has confidence >= ``min_conf`` on at least ``min_fraction`` of the frames.  A
    skeleton without foot joints, or a person whose feet are hidden (behind a table, below the frame, behind
    another walker), gives False: foot contact would plant guesses."""
    names = track.skeleton.joint_names
    conf = np.nan_to_num(np.asarray(track.conf, dtype=np.float64), nan=0.0)
    if conf.shape[0] == 0:
        return False
    for side in ("left", "right"):
        if f"{side}_ankle" not in names:
            return False
        joints = [names.index(f"{side}_{n}") for n in ("ankle", "heel", "foot_index") if f"{side}_{n}" in names]
        if np.mean(np.all(conf[:, joints] >= min_conf, axis=1)) < min_fraction:
            return False
    return True


def track_anchor(track, frame_size: tuple[int, int] | None = None, min_conf: float = LOWER_BODY_MIN_CONF,
                 min_fraction: float = LOWER_BODY_MIN_FRACTION) -> str:
    """What a rig retargeted from ``track`` should follow (``retarget``'s ``anchor``): ``"shoulders"`` when the
    footage does not show its hips, else ``"pelvis"``.

    Not shown: both hips seen (confidence >= ``min_conf``) on fewer than ``min_fraction`` of its frames and, with
    ``frame_size`` (width, height) in pixels, their midpoint outside the picture on at least half of the others
    (of those with keypoints).
    A pose model still returns hips, legs and feet for a person framed from the chest up (the demo's man in a
    car: both hips below the frame, confidence 0 on every frame), and they are guesses: sized by those legs his
    character was 1.18 m tall and its head sat at his chin.  Pedestrians in OpenCV's vtest.avi have both hips at
    0.5 or more on 49-91 % of their frames, but the smallest (16-47 px tall) on 13-25 %: inside the picture, so
    their pelvis is kept.  A track without hip joints, or without frames, follows its pelvis.
    """
    names = list(track.skeleton.joint_names)
    if "left_hip" not in names or "right_hip" not in names or track.num_frames == 0:
        return "pelvis"
    hips = [names.index("left_hip"), names.index("right_hip")]
    conf = np.nan_to_num(np.asarray(track.conf, dtype=np.float64)[:, hips], nan=0.0).min(axis=1)
    seen = conf >= min_conf
    if seen.mean() >= min_fraction:
        return "pelvis"
    if frame_size is not None:
        mid = np.asarray(track.xy, dtype=np.float64)[~seen][:, hips].mean(axis=1)  # (T', 2) px
        mid = mid[np.all(np.isfinite(mid), axis=1)]  # frames the track skipped have no keypoints
        if len(mid) and np.mean(np.all((mid >= 0) & (mid < frame_size), axis=1)) > 0.5:
            return "pelvis"
    return "shoulders"


# --------------------------------------------------------------------------- rig markers


@dataclass(frozen=True, eq=False)
class RigMarkers:
    """Canonical points carried by a rig's bones.  K points, B bones.

    ``bone`` (K,): the bone each point rides on, -1 where the rig has no such
    point; ``local_xyz`` (K, 3): the point in that bone's rest frame.  Points
    are bone heads and tails of mapped bones, plus twist references
    synthesised at rest (ears on the head, index/pinky knuckles on the
    hands, heels on the feet) from the rig's body axes.
    """

    bone: np.ndarray
    local_xyz: np.ndarray

    def __post_init__(self) -> None:
        bone = np.array(self.bone, dtype=np.int64)
        local = np.array(self.local_xyz, dtype=np.float64)
        if bone.shape != (NUM_POINTS,) or local.shape != (NUM_POINTS, 3):
            raise RetargetError(f"bone must be (K,) and local_xyz (K, 3) with K={NUM_POINTS}, got {bone.shape}, "
                                f"{local.shape}")
        object.__setattr__(self, "bone", bone)
        object.__setattr__(self, "local_xyz", local)

    def posed_xyz(self, pose_matrix: np.ndarray) -> np.ndarray:
        """(T, K, 3) point positions for armature-space pose matrices (T, B, 4, 4) (NaN where absent)."""
        pose_matrix = np.asarray(pose_matrix)
        out = np.full(pose_matrix.shape[:1] + (NUM_POINTS, 3), np.nan)
        ok = self.bone >= 0
        m = pose_matrix[:, self.bone[ok]]
        out[:, ok] = np.einsum("tkij,kj->tki", m[..., :3, :3], self.local_xyz[ok]) + m[..., :3, 3]
        return out

    def rest_xyz(self, rig: Rig) -> np.ndarray:
        """(K, 3) point positions in the rig's rest pose."""
        return self.posed_xyz(rig.rest_matrix[None])[0]


def body_axes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit (lateral, up, forward) (3,) of a body in its rest pose from canonical points (K, 3).

    up = armature +Z, as rigs stand upright in rest, unless the pelvis -> neck
    line is more than 45 degrees off it (a rig modelled lying down), then that
    line; lateral = right -> left hip (or shoulder, or +X) made normal to up;
    forward = lateral x up, which is -Y for Blender's convention (left +X,
    up +Z).  A rest torso's slight lean does not tilt these axes.
    """
    pts = apply_rules(points, [n for n in ("pelvis", "neck") if not np.all(np.isfinite(points[P[n]]))],
                      SHARED_RULES)
    up = np.array([0.0, 0.0, 1.0])
    torso = normalize(pts[P["neck"]] - pts[P["pelvis"]])
    if np.all(np.isfinite(torso)) and np.dot(torso, up) < np.cos(np.radians(45.0)):
        up = torso
    lateral = np.array([1.0, 0.0, 0.0])
    for a, b in (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")):
        d = pts[P[a]] - pts[P[b]]
        if np.all(np.isfinite(d)) and np.linalg.norm(d) > 1e-6:
            lateral = d
            break
    lateral = normalize(lateral - np.dot(lateral, up) * up)
    return lateral, up, np.cross(lateral, up)


def rest_pose_kind(points: np.ndarray) -> tuple[str, float]:
    """Which rest pose canonical points (K, 3) stand in: ``T-pose``, ``A-pose``, ``arms down`` or ``unknown``.

    Read from the upper arms (shoulder -> elbow) against the body's lateral
    axis: under 20 deg below it is a T-pose, 20-65 deg an A-pose, more arms
    down.  Returns the kind and the mean angle (NaN when the arms are unknown).
    """
    lateral, up, _ = body_axes(points)
    angles = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        arm = normalize(points[P[f"{side}_elbow"]] - points[P[f"{side}_shoulder"]])
        if np.all(np.isfinite(arm)):
            angles.append(np.degrees(np.arctan2(-np.dot(arm, up), sign * np.dot(arm, lateral))))
    if not angles:
        return "unknown", float("nan")
    angle = float(np.mean(angles))
    kind = "T-pose" if abs(angle) < 20.0 else "A-pose" if 20.0 <= angle <= 65.0 else "arms down" if angle > 65.0 \
        else "unknown"
    return kind, angle


def rig_markers(rig: Rig, bone_indices: dict[str, int]) -> RigMarkers:
    """Canonical points on ``rig`` for a resolved bone map (canonical bone -> bone index)."""
    bone = np.full(NUM_POINTS, -1)
    local = np.zeros((NUM_POINTS, 3))
    rest = rig.rest_matrix
    length = rig.length

    def put(point: str, b: int, local_xyz) -> None:
        bone[P[point]] = b
        local[P[point]] = local_xyz

    def at_head(point: str, *canonical: str) -> bool:
        for c in canonical:
            if c in bone_indices:
                put(point, bone_indices[c], (0.0, 0.0, 0.0))
                return True
        return False

    def at_tail(point: str, canonical: str) -> bool:
        if canonical in bone_indices:
            b = bone_indices[canonical]
            put(point, b, (0.0, length[b], 0.0))
            return True
        return False

    at_head("pelvis", "hips")
    at_head("spine", "spine")
    at_head("chest", "chest")
    at_head("neck", "neck")
    at_head("head", "head") or at_tail("head", "neck")  # a neck joint that carries the head ends at it
    at_tail("head_end", "head")
    for side, s in (("left", "L"), ("right", "R")):
        at_head(f"{side}_clavicle", f"shoulder.{s}")
        at_head(f"{side}_shoulder", f"upper_arm.{s}")
        at_head(f"{side}_elbow", f"lower_arm.{s}") or at_tail(f"{side}_elbow", f"upper_arm.{s}")
        at_head(f"{side}_wrist", f"hand.{s}") or at_tail(f"{side}_wrist", f"lower_arm.{s}")
        at_tail(f"{side}_hand_end", f"hand.{s}")
        at_head(f"{side}_hip", f"thigh.{s}")
        at_head(f"{side}_knee", f"shin.{s}") or at_tail(f"{side}_knee", f"thigh.{s}")
        at_head(f"{side}_ankle", f"foot.{s}") or at_tail(f"{side}_ankle", f"shin.{s}")
        at_head(f"{side}_toe", f"toes.{s}") or at_tail(f"{side}_toe", f"foot.{s}")
        at_tail(f"{side}_toe_end", f"toes.{s}")

    markers = RigMarkers(bone, local)
    pts = markers.rest_xyz(rig)
    lateral, up, forward = body_axes(pts)
    torso = apply_rules(pts, [n for n in ("pelvis", "neck") if not np.all(np.isfinite(pts[P[n]]))], SHARED_RULES)
    size = float(np.linalg.norm(torso[P["neck"]] - torso[P["pelvis"]]))
    size = size / 0.5 if np.isfinite(size) and size > 1e-3 else 1.0  # about 1 for an adult (torso ~0.5 m)

    def attach(point: str, b: int, world_xyz: np.ndarray) -> None:
        # Store a rest position in bone b's rest frame: local = R^T (x - head).
        put(point, b, rest[b, :3, :3].T @ (world_xyz - rest[b, :3, 3]))

    if "head" in bone_indices:
        b = bone_indices["head"]
        head, head_end = pts[P["head"]], pts[P["head_end"]]
        centre = head + 0.35 * (head_end - head)
        ear_axis = normalize(lateral - np.dot(lateral, normalize(head_end - head)) * normalize(head_end - head))
        attach("left_ear", b, centre + 0.075 * size * ear_axis)
        attach("right_ear", b, centre - 0.075 * size * ear_axis)
    for side, s in (("left", "L"), ("right", "R")):
        if f"hand.{s}" in bone_indices:
            b = bone_indices[f"hand.{s}"]
            wrist, end = pts[P[f"{side}_wrist"]], pts[P[f"{side}_hand_end"]]
            d = normalize(end - wrist)
            # Index knuckle in front of the pinky's in any usual rest pose (T or
            # A, palms down or in): the knuckle line runs along body forward.
            across = normalize(forward - np.dot(forward, d) * d)
            if not np.all(np.isfinite(across)):
                across = normalize(up - np.dot(up, d) * d)
            attach(f"{side}_index", b, end + 0.04 * size * across)
            attach(f"{side}_pinky", b, end - 0.04 * size * across)
        if f"foot.{s}" in bone_indices:
            b = bone_indices[f"foot.{s}"]
            ankle = pts[P[f"{side}_ankle"]]
            ground = [pts[P[f"{side}_{n}"]] for n in ("toe", "toe_end") if np.all(np.isfinite(pts[P[f"{side}_{n}"]]))]
            drop = max(np.dot(ankle, up) - min(np.dot(g, up) for g in ground), 0.03 * size) if ground else 0.07 * size
            # The heel: under the ankle at floor level, a little behind it.
            attach(f"{side}_heel", b, ankle - drop * up - 0.04 * size * forward)
    return RigMarkers(bone, local)


def pose_from_rig(rig: Rig, bone_indices: dict[str, int], pose_matrix: np.ndarray, *,
                  fps: Fraction | None = None, fingers: dict[str, int] | None = None) -> CanonicalPose:
    """Canonical points (nothing derived) of a posed rig, from armature-space pose matrices (T, B, 4, 4).

    This is how a BVH clip or any animated rig becomes a retarget source:
    ``pose_from_rig(rig, bone_map.indices(rig), fk(rig, motion))``.  Each
    mapped bone's world rotation since rest, ``pose @ rest^T``, becomes the
    pose's ``segment_rotation`` (the same whatever axes the rig's bones use);
    ``fingers`` (finger name -> bone index, see ``fingers.detect_fingers``)
    give its ``finger_rotation`` likewise.
    """
    markers = rig_markers(rig, bone_indices)
    pose_matrix = np.asarray(pose_matrix, dtype=np.float64)
    segment = rotations_since_rest(rig, bone_indices, BONE_NAMES, pose_matrix)
    finger_rotation = finger_rest = None
    if fingers:
        finger_rotation = finger_rotations(rig, fingers, pose_matrix)
        finger_rest = finger_rest_directions(rig, fingers)
    return CanonicalPose(markers.posed_xyz(pose_matrix), source=rig.name, fps=fps, segment_rotation=segment,
                         rest_xyz=markers.rest_xyz(rig), finger_rotation=finger_rotation, finger_rest=finger_rest)
