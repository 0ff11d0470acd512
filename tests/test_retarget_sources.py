"""Source skeletons other than the files': made from real mocap (tests/mocap_variants.py), read by shape.

Each variant moves as the real clip did: a 15- or 13-joint skeleton named for segments (DeepMimic), a 78-joint
one with twist, roll and face joints, a ``Beta:`` namespace, scrambled joint frames, and a Bandai-Namco-style
rest (every offset on its joint's local +x) with names that say nothing.  Each is retargeted onto the preset
rigs with ``foot_lock="never"`` and its world directions compared with its own (limbs, hip and chest lines).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from rigcast.formats.bvh import read_bvh, write_bvh
from rigcast.retarget import RetargetOptions, detect_bone_map, fk, retarget
from rigcast.retarget.cli import bvh_source, main
from mocap_variants import keep_joints, renamed, trimmed, with_extra_joints, with_twist
from retarget_checks import DATA, clip_path, summary
from test_retarget_mocap import RIGS, retarget_errors

DEEPMIMIC = {  # CMU joint (MotionBuilder release, 3dsMax release) -> DeepMimic's humanoid name
    "root": ("Hips", "Hips"), "chest": ("Spine1", "Chest2"), "neck": ("Neck1", "Neck"),
    **{f"{side}_{joint}": (f"{s}{mb}", f"{s}{mx}") for side, s in (("left", "Left"), ("right", "Right"))
       for joint, mb, mx in (("shoulder", "Arm", "Shoulder"), ("elbow", "ForeArm", "Elbow"),
                             ("wrist", "Hand", "Wrist"), ("hip", "UpLeg", "Hip"), ("knee", "Leg", "Knee"),
                             ("ankle", "Foot", "Ankle"))},
}
"""DeepMimic's 15 joints, named for where a segment starts (``left_shoulder`` is the upper arm's joint,
``left_hip`` the thigh's); no clavicles, no toes, the neck joint carries the head."""


def deepmimic_clip(clip_name: str, joints: int = 15):
    """A real CMU clip cut down to DeepMimic's skeleton (``joints`` 15, or 13 without the wrists: the forearm
    then ends at the elbow's End Site, on the wrist), first 120 frames."""
    column = 0 if "walk" in clip_name else 1
    keep = {cmu[column]: name for name, cmu in DEEPMIMIC.items()
            if joints == 15 or not name.endswith("wrist")}
    return keep_joints(trimmed(read_bvh(clip_path(clip_name))), keep)


@pytest.mark.parametrize("joints", [15, 13])
@pytest.mark.parametrize("clip", ["cmu_02_01_walk.bvh", "cmu_131_03_hop.bvh"])
def test_a_deepmimic_skeleton_maps_by_shape_onto_every_rig(clip, joints, tmp_path, capsys):
    """No clavicles, limb joints named for segments: the shoulder joint drives the upper arm (its child is the
    elbow), and every rig follows the skeleton's own directions."""
    path = tmp_path / f"deepmimic_{joints}.bvh"
    write_bvh(deepmimic_clip(clip, joints), path)
    source, _ = read_bvh(path).to_rig_motion()
    assert source.num_bones == joints
    bone_map, report = detect_bone_map(source)
    assert bone_map.bones["upper_arm.L"] == "left_shoulder" and bone_map.bones["lower_arm.R"] == "right_elbow"
    assert bone_map.bones["thigh.L"] == "left_hip" and bone_map.bones["shin.R"] == "right_knee"
    assert "shoulder.L" not in bone_map.bones and "toes.L" not in bone_map.bones
    assert main([str(path), "-o", str(tmp_path / "out.bvh"), "--foot-lock", "never"]) == 0
    printed = capsys.readouterr().out
    assert "guessed from the hierarchy" in printed and "left_shoulder" in printed, printed  # says what it guessed
    pose, _ = bvh_source(path)
    for rig_name, build in RIGS.items():
        median, p95, worst = summary(retarget_errors(pose, build()))
        assert median <= 1.0 and p95 <= 3.0, f"{rig_name}: median {median:.2f}, p95 {p95:.2f}, worst {worst}"


FACE = ("Jaw", "LeftEyelid", "RightEyelid", "LeftEyebrow", "RightEyebrow", "Nose", "LeftCheek", "RightCheek",
        "UpperLip", "LeftEar", "RightEar")


def crowded_clip():
    """The Mixamo clip with fingers (55 joints with its eyes) and 23 more: a twist helper beside every upper arm,
    forearm, thigh and shin (leaves, half way down), a roll joint in each wrist and ankle chain (the hand and foot then
    start at it, zero length), eleven face joints under the head: 78 joints that move as the 55 did."""
    clip = read_bvh(clip_path("freebvh_mixamo_fingers.bvh"))
    m = "mixamorig:"
    off = {n: clip.offsets[i] for i, n in enumerate(clip.joint_names)}
    extras = []
    for side in ("Left", "Right"):
        for seg, child in (("Arm", "ForeArm"), ("ForeArm", "Hand"), ("UpLeg", "Leg"), ("Leg", "Foot")):
            extras.append((f"{m}{side}{seg}Twist", f"{m}{side}{seg}", tuple(0.5 * off[f"{m}{side}{child}"]), None))
        extras.append((f"{m}{side}WristRoll", f"{m}{side}ForeArm", tuple(off[f"{m}{side}Hand"]), f"{m}{side}Hand"))
        extras.append((f"{m}{side}AnkleRoll", f"{m}{side}Leg", tuple(off[f"{m}{side}Foot"]), f"{m}{side}Foot"))
    rng = np.random.default_rng(2)
    extras += [(f"{m}{face}", f"{m}Head", tuple(rng.uniform(-4, 4, 3) + (0, 6, 6)), None) for face in FACE]
    return with_extra_joints(clip, extras)


def test_a_78_joint_skeleton_is_not_confused_by_its_extras(tmp_path):
    path = tmp_path / "crowded.bvh"
    write_bvh(crowded_clip(), path)
    source, _ = read_bvh(path).to_rig_motion()
    plain, _ = read_bvh(clip_path("freebvh_mixamo_fingers.bvh")).to_rig_motion()
    assert source.num_bones == plain.num_bones + 23 == 78
    assert detect_bone_map(source)[0].bones == detect_bone_map(plain)[0].bones  # the same 21 joints
    pose, text = bvh_source(path)
    assert "78 joints" in text and "21/21 canonical bones, 30 finger bones" in text, text
    for rig_name in ("mixamo", "unreal", "odd"):
        median, p95, worst = summary(retarget_errors(pose, RIGS[rig_name]()))
        assert median <= 1.0 and p95 <= 3.0, f"{rig_name}: median {median:.2f}, p95 {p95:.2f}, worst {worst}"


@pytest.mark.parametrize("prefix", ["Beta:", "Beta:mixamorig:"])
def test_a_beta_namespace_reads_like_mixamo(prefix, tmp_path):
    """Mixamo names its Beta character's joints ``Beta:Hips`` ...: read as the Mixamo preset, fingers too."""
    path = tmp_path / "beta.bvh"
    write_bvh(renamed(read_bvh(clip_path("freebvh_mixamo_fingers.bvh")),
                      lambda n: prefix + n.split(":")[-1]), path)
    pose, text = bvh_source(path)
    assert "preset:mixamo" in text and "21/21 canonical bones, 30 finger bones" in text, text
    rig, _ = read_bvh(path).to_rig_motion()
    assert detect_bone_map(rig)[0].bones["upper_arm.L"] == f"{prefix}LeftArm"
    median, p95, worst = summary(retarget_errors(pose, RIGS["unreal"]()))
    assert median <= 1.0 and p95 <= 3.0, f"median {median:.2f}, p95 {p95:.2f}, worst {worst}"


@pytest.mark.parametrize("rig_name", ["mixamo", "metarig", "unreal", "odd", "rigcast"])
def test_chest_and_neck_twist_are_recovered(rig_name, tmp_path):
    """The walk with its chest (``Spine1``) turned about the spine by up to 35 deg and its neck (``Neck1``) by up
    to 75 deg the other way (the head then faces up to 40 deg off the walk's), on their own: the rig's chest and
    head turn by what was added, frame by frame.

    What was added is a world rotation per frame, ``A = W_twisted @ W_plain^T`` of the source's joint; the rig's
    is the same product of its bone retargeted from both clips.  Comparing the added rotations, not each side's
    rotation since rest, leaves out how the skeletons' rests differ (CMU's rest chest leans 10 deg forward of
    the rigs').  The chest's is also its clavicle line's turn (the line rides on it)."""
    from rigcast.formats.bvh import YUP_TO_ZUP
    from rigcast.retarget.rotations import rotation_angle_deg

    clip = trimmed(read_bvh(clip_path("cmu_02_01_walk.bvh")))
    t = np.arange(clip.num_frames) / 60.0
    rig = RIGS[rig_name]()
    bone_map, _ = detect_bone_map(rig)
    idx = bone_map.indices(rig)
    source, target = {}, {}
    for name, twist in (("plain", 0.0), ("twisted", 1.0)):
        path = tmp_path / f"{name}.bvh"
        write_bvh(with_twist(clip, {"Spine1": twist * 35.0 * np.sin(2 * np.pi * t),
                                    "Neck1": twist * -75.0 * np.sin(2 * np.pi * t)}), path)
        world, _ = read_bvh(path).world_transforms()
        source[name] = {j: YUP_TO_ZUP @ world[:, clip.joint_names.index(b)] @ YUP_TO_ZUP.T
                        for j, b in (("chest", "Spine1"), ("head", "Head"))}
        pose, _ = bvh_source(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            motion = retarget(pose, rig, bone_map, options=RetargetOptions(foot_lock="never"))
        target[name] = {j: fk(rig, motion)[:, idx[j], :3, :3] for j in ("chest", "head")}
    report = {}
    for j in ("chest", "head"):
        added_source = source["twisted"][j] @ np.swapaxes(source["plain"][j], 1, 2)
        added_rig = target["twisted"][j] @ np.swapaxes(target["plain"][j], 1, 2)
        assert np.percentile(rotation_angle_deg(added_source), 95) > 25  # there is a twist to recover
        err = rotation_angle_deg(np.swapaxes(added_source, 1, 2) @ added_rig)
        report[j] = (round(float(np.median(err)), 2), round(float(np.percentile(err, 95)), 2))
    print(rig_name, "added turn, median and p95 deg off:", report)
    assert all(m <= 1.0 and p <= 3.0 for m, p in report.values()), report


def retargeted(path: Path, rig, rest="auto"):
    """World rotations (T, B, 3, 3) and root translation (T, 3) of ``rig`` retargeted from the BVH at ``path``."""
    pose, text = bvh_source(path, rest)
    bone_map, _ = detect_bone_map(rig)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = retarget(pose, rig, bone_map, options=RetargetOptions(foot_lock="never"))
    return fk(rig, motion), text


def rotation_gaps(a: np.ndarray, b: np.ndarray, bones: dict[str, int]) -> dict[str, float]:
    """Per named bone, the largest angle (deg) between two world poses (T, B, 4, 4) over the frames."""
    from rigcast.retarget.rotations import rotation_angle_deg

    return {n: float(rotation_angle_deg(np.swapaxes(a[:, i, :3, :3], -1, -2) @ b[:, i, :3, :3]).max())
            for n, i in bones.items()}


SOURCE_GUESSES = {"cmu_02_01_walk.bvh": ("hand.L", "hand.R")}
"""Bones whose direction the file does not give: CMU's hands have only children that sit on the wrist
(``LeftFingerBase``, ``LThumb`` at offset 0) and no End Site, so the hand is laid along the forearm as it lies
at the file's rest; with that rest scrambled, so is the guess."""


@pytest.mark.parametrize("clip", ["cmu_02_01_walk.bvh", "freebvh_mixamo_fingers.bvh"])
def test_scrambled_source_joint_frames_change_nothing(clip, tmp_path):
    """A real clip re-expressed with every joint's frame turned by its own random rotation (offsets, End Sites and
    rotations turned with it: every joint where it was on every frame) retargets onto rigs exactly as the clip.

    Its rest is then no pose at all (thighs up, spine sideways); ``--source-rest auto`` says so and measures the
    joint frames from the clip's median pose, where both skeletons agree, so every bone, fingers included, turns
    as the unscrambled clip's does measured from that frame (within 0.01 deg), and the limbs and torso lines as it
    does from its own T-pose."""
    from mocap_variants import random_frames, reframed

    real = trimmed(read_bvh(clip_path(clip)))
    plain, scrambled = tmp_path / "plain.bvh", tmp_path / "scrambled.bvh"
    write_bvh(real, plain)
    write_bvh(reframed(real, random_frames(real.num_joints)), scrambled)
    for rig_name in ("mixamo", "odd"):
        rig = RIGS[rig_name]()
        got, text = retargeted(scrambled, rig)
        assert "no standing pose" in text and "the clip's median pose" in text, text
        frame = int(text.split("measured from frame ")[1].split(",")[0])
        want, _ = retargeted(plain, rig, rest=frame)
        bones = {n: i for n, i in detect_bone_map(rig)[0].indices(rig).items() if n not in SOURCE_GUESSES.get(clip, ())}
        if "fingers" in clip:  # the rig's fingers follow the source's
            bones.update({n: i for i, n in enumerate(rig.bone_names) if "Hand" in n and n[-1].isdigit()})
        gaps = rotation_gaps(want, got, bones)
        assert max(gaps.values()) < 0.01, {k: round(v, 3) for k, v in gaps.items() if v >= 0.01}
        heads = list(bones.values())
        np.testing.assert_allclose(got[:, heads, :3, 3], want[:, heads, :3, 3], atol=1e-4)  # metres
        pose, _ = bvh_source(scrambled)
        median, p95, worst = summary(retarget_errors(pose, rig))
        assert median <= 1.0 and p95 <= 3.0, f"{rig_name}: median {median:.2f}, p95 {p95:.2f}, worst {worst}"


@pytest.mark.parametrize("clip", ["cmu_02_01_walk.bvh", "cmu_131_03_hop.bvh", "freebvh_mixamo_fingers.bvh",
                                  "mocapbank.bvh"])
def test_a_rest_along_x_with_meaningless_names_is_read_from_the_motion(clip, tmp_path):
    """Bandai-Namco-style: every joint's offset on its own local +x (the rest a zigzag, no pose) and joints named
    ``j00`` ...: nothing in the names or the rest says which joint is which.  The mapper finds the skeleton in the
    clip's median pose (left and right from where the feet point, arms hanging or out), maps the joints the
    real names map, and the retarget follows the clip as well as the real one does."""
    from mocap_variants import offsets_along_x, reframed

    real = trimmed(read_bvh(clip_path(clip)))
    path = tmp_path / "along_x.bvh"
    write_bvh(renamed(reframed(real, offsets_along_x(real)), lambda n: f"j{real.joint_names.index(n):02d}"), path)
    rig, motion = read_bvh(path).to_rig_motion()
    rest = rig.tail_xyz - rig.head_xyz
    assert np.median(np.abs(rest[:, 0]) / np.linalg.norm(rest, axis=1)) > 0.99  # bones along X: no pose
    assert detect_bone_map(rig)[0].missing()  # the rest alone does not map it
    bone_map, report = detect_bone_map(rig, motion=motion)
    assert "+motion" in report.method and "median pose" in report.notes[-1], str(report)
    want, _ = detect_bone_map(read_bvh(clip_path(clip)).to_rig())
    expect = {c: f"j{real.joint_names.index(b):02d}" for c, b in want.bones.items()}
    # Limbs, hips and chest as the names say.  Where the spine or neck has more joints than canonical bones
    # (CMU: LowerBack, Spine; lowerneck, Neck) shape cannot tell which one the names pick: any joint of the
    # torso chain, in order, will do.
    torso = ("spine", "neck", "head")
    assert {c: b for c, b in bone_map.bones.items() if c not in torso} == \
        {c: b for c, b in expect.items() if c not in torso}
    chain = [rig.index(bone_map.bones["chest"])] + rig.ancestors(rig.index(bone_map.bones["chest"]))
    assert rig.index(bone_map.bones["spine"]) in chain[1:-1]
    head = rig.index(bone_map.bones["head"])
    assert rig.index(bone_map.bones["neck"]) in rig.ancestors(head) and chain[0] in rig.ancestors(head)
    pose, text = bvh_source(path)
    assert "no standing pose" in text, text
    for rig_name in ("mixamo", "odd"):
        median, p95, worst = summary(retarget_errors(pose, RIGS[rig_name]()))
        assert median <= 1.0 and p95 <= 3.0, f"{rig_name}: median {median:.2f}, p95 {p95:.2f}, worst {worst}"
