"""Synthetic humanoid rigs for the retargeting tests (and benchmark), and the rig conventions they rest on.

Every rig is built from one body layout (Z-up, facing -Y, left = +X, metres),
named and split the way a rig family does it: Mixamo, Blender's metarig,
Rigify's DEF bones, Unreal's Manny, SMPL, an oddly named rig with random
rolls, and an anonymous one (bone_000 ...) that only geometry can read.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from rigcast.retarget import Motion, RetargetError, Rig, default_rig, fk, matrix_to_roll, vec_roll_to_matrix
from rigcast.retarget.rig import world_to_local_rotations

SIDES = (("L", 1.0), ("R", -1.0))
FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")


def body_points(scale: float = 1.0, arm_down_deg: float = 0.0, elbow_bend_deg: float = 0.0) -> dict:
    """Named joint positions of a standing adult: T-pose at arm_down_deg = 0, A-pose at 45."""
    p = {
        "pelvis": (0, 0, 0.96), "spine1": (0, 0.01, 1.06), "spine2": (0, 0.015, 1.16), "spine3": (0, 0.01, 1.28),
        "neck": (0, 0.01, 1.47), "neck2": (0, 0.012, 1.51), "head": (0, 0.015, 1.56), "head_top": (0, 0.015, 1.76),
    }
    p = {k: np.array(v, dtype=float) for k, v in p.items()}
    a = np.radians(arm_down_deg)
    forward = np.array([0.0, -1.0, 0.0])
    for s, x in SIDES:
        d = np.array([x * np.cos(a), 0.0, -np.sin(a)])
        shoulder = np.array([0.18 * x, 0.01, 1.43])
        p[f"clavicle.{s}"] = np.array([0.02 * x, -0.01, 1.42])
        p[f"shoulder.{s}"] = shoulder
        p[f"elbow.{s}"] = shoulder + 0.28 * d
        # A bent rest elbow bends forward (the anatomical direction).
        b = np.radians(elbow_bend_deg)
        d2 = np.cos(b) * d + np.sin(b) * forward
        p[f"wrist.{s}"] = p[f"elbow.{s}"] + 0.25 * d2
        p[f"knuckle.{s}"] = p[f"wrist.{s}"] + 0.09 * d2
        for i, f in enumerate(FINGERS):
            across = (0.03 - 0.02 * i) * -forward  # index in front of the pinky
            base = p[f"wrist.{s}"] + (0.03 if f == "Thumb" else 0.09) * d2 + across + (
                np.array([0, -0.03, -0.02]) if f == "Thumb" else 0)
            for k in range(4):
                p[f"{f}{k}.{s}"] = base + 0.028 * k * d2
        p[f"hip.{s}"] = np.array([0.09 * x, 0.0, 0.92])
        p[f"knee.{s}"] = np.array([0.09 * x, 0.0, 0.50])
        p[f"ankle.{s}"] = np.array([0.09 * x, 0.03, 0.08])
        p[f"ball.{s}"] = np.array([0.09 * x, -0.10, 0.02])
        p[f"toe_tip.{s}"] = np.array([0.09 * x, -0.17, 0.02])
    return {k: v * scale for k, v in p.items()}


def build(name: str, spec: list, points: dict, roll=None) -> Rig:
    """A rig from [(bone, parent or None, head point, tail point or (point, offset))]."""

    def where(x):
        if isinstance(x, tuple):
            return points[x[0]] + np.asarray(x[1], dtype=float)
        return points[x]

    names = [b[0] for b in spec]
    parents = [-1 if b[1] is None else names.index(b[1]) for b in spec]
    head = np.array([where(b[2]) for b in spec])
    tail = np.array([where(b[3]) for b in spec])
    return Rig.from_heads_tails(name, names, parents, head, tail, roll)


def mixamo_rig(prefix: str = "mixamorig:", fingers: bool = True, drop: tuple[str, ...] = ()) -> Rig:
    """Mixamo's skeleton (55 bones with fingers), T-pose."""
    m = prefix
    spec = [
        (f"{m}Hips", None, "pelvis", "spine1"), (f"{m}Spine", f"{m}Hips", "spine1", "spine2"),
        (f"{m}Spine1", f"{m}Spine", "spine2", "spine3"), (f"{m}Spine2", f"{m}Spine1", "spine3", "neck"),
        (f"{m}Neck", f"{m}Spine2", "neck", "head"), (f"{m}Head", f"{m}Neck", "head", "head_top"),
        (f"{m}HeadTop_End", f"{m}Head", "head_top", ("head_top", (0, 0, 0.1))),
    ]
    for s, _ in SIDES:
        side = "Left" if s == "L" else "Right"
        spec += [
            (f"{m}{side}Shoulder", f"{m}Spine2", f"clavicle.{s}", f"shoulder.{s}"),
            (f"{m}{side}Arm", f"{m}{side}Shoulder", f"shoulder.{s}", f"elbow.{s}"),
            (f"{m}{side}ForeArm", f"{m}{side}Arm", f"elbow.{s}", f"wrist.{s}"),
            (f"{m}{side}Hand", f"{m}{side}ForeArm", f"wrist.{s}", f"knuckle.{s}"),
        ]
        if fingers:
            for f in FINGERS:
                for k in range(1, 4):
                    parent = f"{m}{side}Hand" if k == 1 else f"{m}{side}Hand{f}{k - 1}"
                    spec.append((f"{m}{side}Hand{f}{k}", parent, f"{f}{k - 1}.{s}", f"{f}{k}.{s}"))
        spec += [
            (f"{m}{side}UpLeg", f"{m}Hips", f"hip.{s}", f"knee.{s}"),
            (f"{m}{side}Leg", f"{m}{side}UpLeg", f"knee.{s}", f"ankle.{s}"),
            (f"{m}{side}Foot", f"{m}{side}Leg", f"ankle.{s}", f"ball.{s}"),
            (f"{m}{side}ToeBase", f"{m}{side}Foot", f"ball.{s}", f"toe_tip.{s}"),
            (f"{m}{side}Toe_End", f"{m}{side}ToeBase", f"toe_tip.{s}", (f"toe_tip.{s}", (0, -0.03, 0))),
        ]
    spec = _drop(spec, {prefix + d for d in drop})
    return build("mixamo", spec, body_points())


def _drop(spec: list, names: set) -> list:
    """The spec without ``names`` and everything below them."""
    gone = set(names)
    out = []
    for b in spec:
        if b[0] in gone or b[1] in gone:
            gone.add(b[0])
        else:
            out.append(b)
    return out


def metarig_rig() -> Rig:
    """Blender's human metarig layout: spine ... spine.006, A-pose, a smaller adult, extra helper bones."""
    spec = [
        ("spine", None, "pelvis", "spine1"), ("spine.001", "spine", "spine1", "spine2"),
        ("spine.002", "spine.001", "spine2", "spine3"), ("spine.003", "spine.002", "spine3", "neck"),
        ("spine.004", "spine.003", "neck", "neck2"), ("spine.005", "spine.004", "neck2", "head"),
        ("spine.006", "spine.005", "head", "head_top"),
    ]
    for s, x in SIDES:
        spec += [
            (f"shoulder.{s}", "spine.003", f"clavicle.{s}", f"shoulder.{s}"),
            (f"upper_arm.{s}", f"shoulder.{s}", f"shoulder.{s}", f"elbow.{s}"),
            (f"forearm.{s}", f"upper_arm.{s}", f"elbow.{s}", f"wrist.{s}"),
            (f"hand.{s}", f"forearm.{s}", f"wrist.{s}", f"knuckle.{s}"),
            (f"thigh.{s}", "spine", f"hip.{s}", f"knee.{s}"),
            (f"shin.{s}", f"thigh.{s}", f"knee.{s}", f"ankle.{s}"),
            (f"foot.{s}", f"shin.{s}", f"ankle.{s}", f"ball.{s}"),
            (f"toe.{s}", f"foot.{s}", f"ball.{s}", f"toe_tip.{s}"),
            (f"heel.02.{s}", f"foot.{s}", (f"ankle.{s}", (-0.03 * x, 0.02, -0.07)),
             (f"ankle.{s}", (0.03 * x, 0.02, -0.07))),
            (f"pelvis.{s}", "spine", "pelvis", (f"hip.{s}", (0, -0.05, 0.12))),
            (f"breast.{s}", "spine.003", (f"spine3", (0.1 * x, -0.1, 0.05)), (f"spine3", (0.1 * x, -0.2, 0.05))),
        ]
    return build("metarig", spec, body_points(scale=0.92, arm_down_deg=45.0))


def rigify_deform_rig() -> Rig:
    """Rigify's DEF bones: limbs split in two twist segments in the chain."""
    pts = body_points(scale=1.05)
    for s, _ in SIDES:
        for a, b, mid in (("shoulder", "elbow", "upper_mid"), ("elbow", "wrist", "fore_mid"),
                          ("hip", "knee", "thigh_mid"), ("knee", "ankle", "shin_mid")):
            pts[f"{mid}.{s}"] = 0.5 * (pts[f"{a}.{s}"] + pts[f"{b}.{s}"])
    spec = [
        ("DEF-spine", None, "pelvis", "spine1"), ("DEF-spine.001", "DEF-spine", "spine1", "spine2"),
        ("DEF-spine.002", "DEF-spine.001", "spine2", "spine3"), ("DEF-spine.003", "DEF-spine.002", "spine3", "neck"),
        ("DEF-spine.004", "DEF-spine.003", "neck", "neck2"), ("DEF-spine.005", "DEF-spine.004", "neck2", "head"),
        ("DEF-spine.006", "DEF-spine.005", "head", "head_top"),
    ]
    for s, _ in SIDES:
        spec += [
            (f"DEF-shoulder.{s}", "DEF-spine.003", f"clavicle.{s}", f"shoulder.{s}"),
            (f"DEF-upper_arm.{s}", f"DEF-shoulder.{s}", f"shoulder.{s}", f"upper_mid.{s}"),
            (f"DEF-upper_arm.{s}.001", f"DEF-upper_arm.{s}", f"upper_mid.{s}", f"elbow.{s}"),
            (f"DEF-forearm.{s}", f"DEF-upper_arm.{s}.001", f"elbow.{s}", f"fore_mid.{s}"),
            (f"DEF-forearm.{s}.001", f"DEF-forearm.{s}", f"fore_mid.{s}", f"wrist.{s}"),
            (f"DEF-hand.{s}", f"DEF-forearm.{s}.001", f"wrist.{s}", f"knuckle.{s}"),
            (f"DEF-pelvis.{s}", "DEF-spine", "pelvis", (f"hip.{s}", (0, -0.05, 0.12))),
            (f"DEF-thigh.{s}", "DEF-spine", f"hip.{s}", f"thigh_mid.{s}"),
            (f"DEF-thigh.{s}.001", f"DEF-thigh.{s}", f"thigh_mid.{s}", f"knee.{s}"),
            (f"DEF-shin.{s}", f"DEF-thigh.{s}.001", f"knee.{s}", f"shin_mid.{s}"),
            (f"DEF-shin.{s}.001", f"DEF-shin.{s}", f"shin_mid.{s}", f"ankle.{s}"),
            (f"DEF-foot.{s}", f"DEF-shin.{s}.001", f"ankle.{s}", f"ball.{s}"),
            (f"DEF-toe.{s}", f"DEF-foot.{s}", f"ball.{s}", f"toe_tip.{s}"),
        ]
    return build("rigify", spec, pts)


def unreal_rig(arm_down_deg: float = 30.0, scale: float = 1.1) -> Rig:
    """Unreal's Manny (UE5): root at the floor, spine_01..05, neck_01/02, twist bones beside the chain."""
    pts = body_points(scale=scale, arm_down_deg=arm_down_deg)
    z = np.linspace(pts["spine1"][2], pts["neck"][2], 6)
    for i in range(5):
        pts[f"sp{i + 1}"] = np.array([0.0, 0.01, z[i]])
    spec = [("root", None, ("pelvis", (0, 0, -pts["pelvis"][2])), ("pelvis", (0, 0.2, -pts["pelvis"][2]))),
            ("pelvis", "root", "pelvis", "sp1")]
    for i in range(1, 6):
        parent = "pelvis" if i == 1 else f"spine_0{i - 1}"
        spec.append((f"spine_0{i}", parent, f"sp{i}", f"sp{i + 1}" if i < 5 else "neck"))
    spec += [("neck_01", "spine_05", "neck", "neck2"), ("neck_02", "neck_01", "neck2", "head"),
             ("head", "neck_02", "head", "head_top")]
    for s, _ in SIDES:
        x = s.lower()
        spec += [
            (f"clavicle_{x}", "spine_05", f"clavicle.{s}", f"shoulder.{s}"),
            (f"upperarm_{x}", f"clavicle_{x}", f"shoulder.{s}", f"elbow.{s}"),
            (f"upperarm_twist_01_{x}", f"upperarm_{x}", f"shoulder.{s}", f"elbow.{s}"),
            (f"lowerarm_{x}", f"upperarm_{x}", f"elbow.{s}", f"wrist.{s}"),
            (f"lowerarm_twist_01_{x}", f"lowerarm_{x}", f"elbow.{s}", f"wrist.{s}"),
            (f"hand_{x}", f"lowerarm_{x}", f"wrist.{s}", f"knuckle.{s}"),
            (f"thigh_{x}", "pelvis", f"hip.{s}", f"knee.{s}"),
            (f"thigh_twist_01_{x}", f"thigh_{x}", f"hip.{s}", f"knee.{s}"),
            (f"calf_{x}", f"thigh_{x}", f"knee.{s}", f"ankle.{s}"),
            (f"foot_{x}", f"calf_{x}", f"ankle.{s}", f"ball.{s}"),
            (f"ball_{x}", f"foot_{x}", f"ball.{s}", f"toe_tip.{s}"),
        ]
    return build("manny", spec, pts)


def unreal_mannequin_rig(arm_down_deg: float = 45.0) -> Rig:
    """Unreal's UE4 Mannequin: spine_01..03, neck_01, clavicles on spine_03, twist bones beside the chain, an
    ``ik_foot_root``/``ik_hand_root`` helper tree under ``root``; an A-pose rest."""
    pts = body_points(scale=1.03, arm_down_deg=arm_down_deg)
    z = np.linspace(pts["spine1"][2], pts["neck"][2], 4)
    for i in range(3):
        pts[f"sp{i + 1}"] = np.array([0.0, 0.01, z[i]])
    floor = ("pelvis", (0, 0, -pts["pelvis"][2]))
    spec = [("root", None, floor, ("pelvis", (0, 0.2, -pts["pelvis"][2]))),
            ("pelvis", "root", "pelvis", "sp1"),
            ("spine_01", "pelvis", "sp1", "sp2"), ("spine_02", "spine_01", "sp2", "sp3"),
            ("spine_03", "spine_02", "sp3", "neck"), ("neck_01", "spine_03", "neck", "head"),
            ("head", "neck_01", "head", "head_top"),
            ("ik_foot_root", "root", floor, ("pelvis", (0, 0, 0.1 - pts["pelvis"][2]))),
            ("ik_hand_root", "root", floor, ("pelvis", (0, 0, 0.1 - pts["pelvis"][2]))),
            ("ik_hand_gun", "ik_hand_root", "wrist.R", "knuckle.R")]
    for s, _ in SIDES:
        x = s.lower()
        spec += [
            (f"clavicle_{x}", "spine_03", f"clavicle.{s}", f"shoulder.{s}"),
            (f"upperarm_{x}", f"clavicle_{x}", f"shoulder.{s}", f"elbow.{s}"),
            (f"upperarm_twist_01_{x}", f"upperarm_{x}", f"shoulder.{s}", f"elbow.{s}"),
            (f"lowerarm_{x}", f"upperarm_{x}", f"elbow.{s}", f"wrist.{s}"),
            (f"lowerarm_twist_01_{x}", f"lowerarm_{x}", f"elbow.{s}", f"wrist.{s}"),
            (f"hand_{x}", f"lowerarm_{x}", f"wrist.{s}", f"knuckle.{s}"),
            (f"thigh_{x}", "pelvis", f"hip.{s}", f"knee.{s}"),
            (f"thigh_twist_01_{x}", f"thigh_{x}", f"hip.{s}", f"knee.{s}"),
            (f"calf_{x}", f"thigh_{x}", f"knee.{s}", f"ankle.{s}"),
            (f"calf_twist_01_{x}", f"calf_{x}", f"knee.{s}", f"ankle.{s}"),
            (f"foot_{x}", f"calf_{x}", f"ankle.{s}", f"ball.{s}"),
            (f"ball_{x}", f"foot_{x}", f"ball.{s}", f"toe_tip.{s}"),
            (f"ik_foot_{x}", "ik_foot_root", f"ankle.{s}", f"ball.{s}"),
        ]
    return build("mannequin", spec, pts)


def smpl_rig() -> Rig:
    spec = [("Pelvis", None, "pelvis", "spine1"), ("Spine1", "Pelvis", "spine1", "spine2"),
            ("Spine2", "Spine1", "spine2", "spine3"), ("Spine3", "Spine2", "spine3", "neck"),
            ("Neck", "Spine3", "neck", "head"), ("Head", "Neck", "head", "head_top")]
    for s, _ in SIDES:
        spec += [
            (f"{s}_Hip", "Pelvis", f"hip.{s}", f"knee.{s}"), (f"{s}_Knee", f"{s}_Hip", f"knee.{s}", f"ankle.{s}"),
            (f"{s}_Ankle", f"{s}_Knee", f"ankle.{s}", f"ball.{s}"),
            (f"{s}_Foot", f"{s}_Ankle", f"ball.{s}", f"toe_tip.{s}"),
            (f"{s}_Collar", "Spine3", f"clavicle.{s}", f"shoulder.{s}"),
            (f"{s}_Shoulder", f"{s}_Collar", f"shoulder.{s}", f"elbow.{s}"),
            (f"{s}_Elbow", f"{s}_Shoulder", f"elbow.{s}", f"wrist.{s}"),
            (f"{s}_Wrist", f"{s}_Elbow", f"wrist.{s}", f"knuckle.{s}"),
            (f"{s}_Hand", f"{s}_Wrist", f"knuckle.{s}", f"Middle3.{s}"),
        ]
    return build("smpl", spec, body_points(scale=0.97, arm_down_deg=10.0))


ODD_NAMES = {  # canonical bone -> bone of odd_rig
    "hips": "chr:Pelvis_jnt", "spine": "chr:spineA_jnt", "chest": "chr:spineC_jnt", "neck": "chr:neck_jnt",
    "head": "chr:head_jnt",
    **{f"{c}.{s}": f"chr:{s}_{n}_jnt" for s, _ in SIDES for c, n in (
        ("shoulder", "clavicle"), ("upper_arm", "upperArm"), ("lower_arm", "elbow"), ("hand", "wrist"),
        ("thigh", "hip"), ("shin", "knee"), ("foot", "ankle"), ("toes", "ball"))},
}


def odd_rig(seed: int = 3) -> Rig:
    """Namespaced, suffixed names; a root bone above the pelvis; bent rest elbows; random bone rolls."""
    pts = body_points(scale=1.02, arm_down_deg=20.0, elbow_bend_deg=20.0)
    n = {k: "Armature|" + v if k == "hips" else v for k, v in ODD_NAMES.items()}
    spec = [("Armature|chr:root_jnt", None, ("pelvis", (0, 0, -0.96)), ("pelvis", (0, 0, -0.8))),
            (n["hips"], "Armature|chr:root_jnt", "pelvis", "spine1"), (n["spine"], n["hips"], "spine1", "spine2"),
            ("chr:spineB_jnt", n["spine"], "spine2", "spine3"), (n["chest"], "chr:spineB_jnt", "spine3", "neck"),
            (n["neck"], n["chest"], "neck", "head"), (n["head"], n["neck"], "head", "head_top"),
            ("chr:head_end_jnt", n["head"], "head_top", ("head_top", (0, 0, 0.05)))]
    for s, _ in SIDES:
        spec += [
            (n[f"shoulder.{s}"], n["chest"], f"clavicle.{s}", f"shoulder.{s}"),
            (n[f"upper_arm.{s}"], n[f"shoulder.{s}"], f"shoulder.{s}", f"elbow.{s}"),
            (f"chr:{s}_upperArm_twist_jnt", n[f"upper_arm.{s}"], f"shoulder.{s}", f"elbow.{s}"),
            (n[f"lower_arm.{s}"], n[f"upper_arm.{s}"], f"elbow.{s}", f"wrist.{s}"),
            (n[f"hand.{s}"], n[f"lower_arm.{s}"], f"wrist.{s}", f"knuckle.{s}"),
            (n[f"thigh.{s}"], n["hips"], f"hip.{s}", f"knee.{s}"),
            (n[f"shin.{s}"], n[f"thigh.{s}"], f"knee.{s}", f"ankle.{s}"),
            (n[f"foot.{s}"], n[f"shin.{s}"], f"ankle.{s}", f"ball.{s}"),
            (n[f"toes.{s}"], n[f"foot.{s}"], f"ball.{s}", f"toe_tip.{s}"),
        ]
    roll = np.random.default_rng(seed).uniform(-np.pi, np.pi, len(spec))
    return build("odd", spec, pts, roll)


def anonymous(rig: Rig, seed: int = 5) -> tuple[Rig, dict[str, str]]:
    """``rig`` with bones renamed bone_000 ... in a shuffled order; returns the rig and old -> new names."""
    perm = np.random.default_rng(seed).permutation(rig.num_bones)
    names = [f"bone_{i:03d}" for i in perm]
    return rig.with_bone_names(names).with_name("anonymous"), dict(zip(rig.bone_names, names))


def random_motion(rig: Rig, bones: list[int], num_frames: int, max_deg: float, seed: int,
                  translation: float = 0.2) -> Motion:
    """Random rotations up to ``max_deg`` on ``bones`` (others at rest) and a random root translation."""
    rng = np.random.default_rng(seed)
    quat = np.zeros((num_frames, rig.num_bones, 4))
    quat[..., 0] = 1.0
    axis = rng.normal(size=(num_frames, len(bones), 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0, np.radians(max_deg), (num_frames, len(bones), 1))
    quat[:, bones] = Rotation.from_rotvec((axis * angle).reshape(-1, 3)).as_quat(scalar_first=True).reshape(
        num_frames, len(bones), 4)
    return Motion(quat, rng.normal(0, translation, (num_frames, 3)), root_bone=rig.order[0])


def motion_like(rig: Rig, indices: dict[str, int], num_frames: int = 60) -> Motion:
    """A smooth, anatomical motion: hinge elbows and knees, symmetric shrugs, hand and foot flexion.

    Rotations are given about axes fixed in the rest world (forward -Y, left
    +X, up +Z) and turned into each bone's rest frame (``R_rest^T @ n``).
    """
    t = np.linspace(0, 2 * np.pi, num_frames)
    quat = np.zeros((num_frames, rig.num_bones, 4))
    quat[..., 0] = 1.0
    up, left, fwd = np.eye(3)[2], np.eye(3)[0], -np.eye(3)[1]

    def turn(bone: str, axis_world, angle_deg) -> None:
        if bone not in indices:
            return
        b = indices[bone]
        axis = rig.rest_matrix[b, :3, :3].T @ (np.asarray(axis_world, float) / np.linalg.norm(axis_world))
        r = Rotation.from_rotvec(np.radians(np.asarray(angle_deg))[:, None] * axis) * Rotation.from_quat(
            quat[:, b], scalar_first=True)
        quat[:, b] = r.as_quat(scalar_first=True)

    def rest_dir(bone: str) -> np.ndarray:
        b = indices[bone]
        return rig.rest_matrix[b, :3, 1]

    turn("hips", up, 35 * np.sin(t))
    turn("hips", left, 12 * np.sin(2 * t))
    turn("spine", left, 15 * np.sin(t + 0.5))
    turn("chest", up, 20 * np.sin(t + 1.0))
    turn("neck", left, 10 * np.sin(2 * t))
    turn("head", up, 40 * np.sin(2 * t + 0.3))
    turn("head", left, 15 * np.sin(t))
    for s, x in SIDES:
        turn(f"shoulder.{s}", np.array([0.0, -x, 0.0]), 4 + 4 * np.sin(t))  # symmetric shrug
        arm = rest_dir(f"upper_arm.{s}")
        turn(f"upper_arm.{s}", arm, 30 * np.sin(t + 0.7))  # twist
        turn(f"upper_arm.{s}", fwd, x * (25 + 20 * np.sin(t)))  # arm up/down
        turn(f"upper_arm.{s}", up, x * 30 * np.sin(t + 0.4))  # arm forward/back
        fore = rest_dir(f"lower_arm.{s}")
        turn(f"lower_arm.{s}", np.cross(fore, fwd), 70 + 40 * np.sin(t + x))  # elbow hinge, 30..110 deg
        hand = rest_dir(f"hand.{s}")
        knuckles = fwd - np.dot(fwd, hand) * hand
        turn(f"hand.{s}", knuckles, x * 25 * np.sin(2 * t))  # wrist flexion about the knuckle line
        turn(f"thigh.{s}", left, -30 + 45 * np.sin(t + (0 if x > 0 else np.pi)))  # flexion
        turn(f"thigh.{s}", fwd, x * 10 * np.sin(t))  # abduction
        turn(f"thigh.{s}", up, 15 * np.sin(2 * t))  # twist
        turn(f"shin.{s}", left, 60 + 35 * np.sin(t + x))  # knee hinge, 25..95 deg
        turn(f"foot.{s}", left, 15 * np.sin(2 * t + x))
        turn(f"toes.{s}", left, 10 * np.sin(t))
    root = np.stack([0.3 * np.sin(t), -0.5 * t / (2 * np.pi), 0.03 * np.sin(2 * t)], axis=1)
    return Motion(quat, root @ rig.rest_matrix[indices["hips"], :3, :3], root_bone=indices["hips"])


def blazepose_from_rig(rig: Rig, indices: dict[str, int], pose: np.ndarray) -> np.ndarray:
    """BlazePose-33 points (T, 33, 3) placed on a posed rig: joints at its canonical markers, a face on its head.

    The nose sits HEAD_NOSE_PITCH_DEG below the head's forward axis from the
    ear midpoint (the anthropometric rule rigcast reads faces with); eyes and
    mouth are placed plausibly but are not read.
    """
    from rigcast.retarget import rig_markers
    from rigcast.retarget.canonical import HEAD_NOSE_PITCH_DEG, P, body_axes
    from rigcast.skeletons import BLAZEPOSE_33 as BP

    markers = rig_markers(rig, indices)
    pts = markers.posed_xyz(pose)
    out = np.full((pose.shape[0], 33, 3), np.nan)
    for side in ("left", "right"):
        for n in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "heel", "index", "pinky", "ear"):
            out[:, BP.index(f"{side}_{n}")] = pts[:, P[f"{side}_{n}"]]
        out[:, BP.index(f"{side}_foot_index")] = pts[:, P[f"{side}_toe_end"]]
        out[:, BP.index(f"{side}_thumb")] = pts[:, P[f"{side}_index"]]
    head = indices["head"]
    turn = pose[:, head, :3, :3] @ rig.rest_matrix[head, :3, :3].T  # the head's rotation since rest
    lateral, up, forward = (turn @ v for v in body_axes(markers.rest_xyz(rig)))
    ears = 0.5 * (pts[:, P["left_ear"]] + pts[:, P["right_ear"]])
    a = np.radians(HEAD_NOSE_PITCH_DEG)
    out[:, BP.index("nose")] = ears + 0.11 * (np.cos(a) * forward - np.sin(a) * up)
    for side, x in (("left", 1.0), ("right", -1.0)):
        for n, o in (("eye_inner", 0.015), ("eye", 0.03), ("eye_outer", 0.045)):
            out[:, BP.index(f"{side}_{n}")] = ears + 0.09 * forward + 0.03 * up + x * o * lateral
        out[:, BP.index(f"mouth_{side}")] = ears + 0.1 * forward - 0.06 * up + x * 0.025 * lateral
    return out


def walk(num_frames: int = 150, fps: float = 30.0, speed: float = 1.0, period: float = 1.0, stance: float = 0.6,
         lift: float = 0.08, noise: float = 0.0, seed: int = 0, slide: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Canonical points (T, K, 3) of a walk toward -Y on default_rig's proportions, and the planted flags (T, 2).

    Each foot lands, stays put for ``stance`` of the gait period, then swings
    one stride forward in an arc ``lift`` high; knees by the law of cosines.
    ``noise``: Gaussian jitter in metres added to every point.  ``slide``:
    the left foot glides forward at this speed (m/s) while planted.
    """
    from rigcast.retarget import rig_markers
    from rigcast.retarget.canonical import P

    rig = default_rig()
    rest = rig_markers(rig, {n: i for i, n in enumerate(rig.bone_names)}).rest_xyz(rig)
    t = np.arange(num_frames) / fps
    fwd = np.array([0.0, -1.0, 0.0])
    pelvis = rest[P["pelvis"]] + speed * t[:, None] * fwd + np.array([0.0, 0.0, -0.06])  # knees a little bent
    pelvis[:, 2] += 0.015 * np.cos(4 * np.pi * t / period)
    xyz = np.repeat(rest[None], num_frames, axis=0) + (pelvis - rest[P["pelvis"]])[:, None, :]
    planted = np.zeros((num_frames, 2), dtype=bool)
    stride = speed * period
    for i, (side, phase0) in enumerate((("left", 0.0), ("right", 0.5))):
        hip, knee, ankle = (P[f"{side}_{n}"] for n in ("hip", "knee", "ankle"))
        len_a, len_b = np.linalg.norm(rest[knee] - rest[hip]), np.linalg.norm(rest[ankle] - rest[knee])
        foot = [P[f"{side}_{n}"] for n in ("ankle", "heel", "toe", "toe_end")]
        cycle = t / period + phase0
        step, phase = np.floor(cycle), cycle - np.floor(cycle)
        swing = np.clip((phase - stance) / (1 - stance), 0, 1)
        target = rest[ankle] + ((step + swing - phase0 + 0.3) * stride)[:, None] * fwd
        target[:, 2] += lift * np.sin(np.pi * swing)
        if side == "left":  # glide while planted, give it back during the swing
            target += (slide * period * (np.minimum(phase, stance) - stance * swing))[:, None] * fwd
        planted[:, i] = phase < stance
        h = xyz[:, hip]
        d = np.linalg.norm(target - h, axis=1)
        u = (target - h) / d[:, None]
        d = np.minimum(d, len_a + len_b - 1e-4)
        x = (len_a ** 2 - len_b ** 2 + d ** 2) / (2 * d)
        pole = fwd - (u @ fwd)[:, None] * u
        pole /= np.linalg.norm(pole, axis=1, keepdims=True)
        xyz[:, knee] = h + x[:, None] * u + np.sqrt(np.maximum(len_a ** 2 - x ** 2, 0))[:, None] * pole
        xyz[:, foot] = (h + d[:, None] * u)[:, None] + (rest[foot] - rest[ankle])[None]
    return xyz + np.random.default_rng(seed).normal(0.0, noise, xyz.shape), planted


# --------------------------------------------------------------------------- conventions


@pytest.mark.parametrize("direction, roll, expected", [
    ((0, 1, 0), 0.0, np.eye(3)),
    ((0, 0, 1), 0.0, [[1, 0, 0], [0, 0, -1], [0, 1, 0]]),  # a bone pointing up: X stays, Z points -Y
    ((0, -1, 0), 0.0, np.diag([-1.0, -1.0, 1.0])),  # Blender's special case at -Y
    ((1, 0, 0), 0.0, [[0, 1, 0], [-1, 0, 0], [0, 0, 1]]),
    ((0, 0, 1), np.pi / 2, [[0, 0, 1], [1, 0, 0], [0, 1, 0]]),  # roll turns X about the bone
])
def test_vec_roll_to_matrix_matches_blender(direction, roll, expected):
    np.testing.assert_allclose(vec_roll_to_matrix(np.array(direction, float), roll), expected, atol=1e-12)


def test_roll_round_trip():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(200, 3))
    d[0] = (0, -1, 0)  # the singular direction
    roll = rng.uniform(-np.pi + 1e-6, np.pi - 1e-6, 200)
    m = vec_roll_to_matrix(d, roll)
    np.testing.assert_allclose(m @ np.swapaxes(m, 1, 2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(m[:, :, 1], d / np.linalg.norm(d, axis=1, keepdims=True), atol=1e-12)
    back = matrix_to_roll(m)
    np.testing.assert_allclose(np.angle(np.exp(1j * (back - roll))), 0.0, atol=1e-9)


def _rig_args():
    rig = default_rig()
    return dict(name="x", bone_names=rig.bone_names, parents=rig.parents, head_xyz=rig.head_xyz,
                tail_xyz=rig.tail_xyz, rest_matrix=rig.rest_matrix)


@pytest.mark.parametrize("change, message", [
    (dict(parents=(-1,) * 20), "parents must be"),
    (dict(parents=(1, 0) + default_rig().parents[2:]), "cycle"),
    (dict(bone_names=("hips",) * 21), "unique"),
    (dict(head_xyz=np.zeros((21, 3))), "translation must equal head_xyz"),
    (dict(tail_xyz=default_rig().tail_xyz + [0.05, 0, 0]), "Y axis must point"),
    (dict(rest_matrix=np.zeros((21, 4, 4))), "orthonormal"),
    (dict(rest_matrix=np.zeros((20, 4, 4))), r"\(21, 4, 4\)"),
])
def test_rig_validation(change, message):
    with pytest.raises(RetargetError, match=message):
        Rig(**{**_rig_args(), **change})


def test_rig_accepts_children_before_parents_and_from_rest_matrices():
    rig = mixamo_rig()
    order = np.random.default_rng(1).permutation(rig.num_bones)
    where = {int(b): i for i, b in enumerate(order)}
    shuffled = Rig.from_rest_matrices("s", [rig.bone_names[b] for b in order],
                                      [where[rig.parents[b]] if rig.parents[b] >= 0 else -1 for b in order],
                                      rig.rest_matrix[order], rig.length[order])
    motion = random_motion(rig, list(range(rig.num_bones)), 5, 60, seed=2)
    moved = Motion(motion.local_quat_wxyz[:, order], motion.root_translation, root_bone=where[motion.root_bone])
    np.testing.assert_allclose(fk(shuffled, moved), fk(rig, motion)[:, order], atol=1e-12)


def test_fk_follows_blenders_chain_rule_and_world_to_local_inverts_it():
    rig = odd_rig()
    motion = random_motion(rig, list(range(rig.num_bones)), 7, 90, seed=4)
    pose = fk(rig, motion)
    basis = motion.local_matrix()
    b = rig.bone_names.index(ODD_NAMES["hand.L"])
    p = rig.parents[b]
    expected = pose[:, p] @ np.linalg.inv(rig.rest_matrix[p]) @ rig.rest_matrix[b] @ basis[:, b]
    np.testing.assert_allclose(pose[:, b], expected, atol=1e-12)
    np.testing.assert_allclose(world_to_local_rotations(rig, pose[..., :3, :3]), basis[..., :3, :3], atol=1e-10)


def test_default_rig_is_a_standing_t_pose():
    rig = default_rig()
    assert rig.num_bones == 21
    assert abs(rig.head_xyz[:, 2].min() - 0.02) < 1e-9 and abs(rig.tail_xyz[:, 2].max() - 1.76) < 1e-9
    hand = rig.index("hand.L")
    np.testing.assert_allclose(rig.rest_matrix[hand, :3, 0], [0, 0, 1], atol=1e-12)  # elbows hinge about X
    assert rig.head_xyz[rig.index("upper_arm.L"), 0] > 0  # left is +X


def test_builders_make_valid_rigs():
    for rig in (mixamo_rig(), metarig_rig(), rigify_deform_rig(), unreal_rig(), unreal_mannequin_rig(), smpl_rig(),
                odd_rig()):
        assert rig.num_bones > 20
    assert mixamo_rig().num_bones == 55
