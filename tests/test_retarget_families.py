"""Four more mocap naming families read by name: a committed CMU clip renamed joint by joint into each family's
own naming, then retargeted onto every preset rig with the accuracy check of ``test_retarget_mocap``.

The names are those the families' own tools write (looked up in public code that reads their files):

* LAFAN1 (Ubisoft La Forge): ``Hips``, ``LeftUpLeg``/``LeftLeg``/``LeftFoot``/``LeftToe``, ``Spine``/``Spine1``/
  ``Spine2``, ``Neck``, ``Head``, ``LeftShoulder``/``LeftArm``/``LeftForeArm``/``LeftHand``;
* Rokoko Studio: ``Hips``, ``LeftThigh``/``LeftShin``/``LeftFoot``/``LeftToe``, ``Spine1``..``Spine4``, ``Neck``,
  ``Head``, ``LeftShoulder``/``LeftArm``/``LeftForeArm``/``LeftHand``;
* Xsens MVN (its 23 segments): ``Pelvis``, ``L5``/``L3``/``T12``/``T8``, ``Neck``, ``Head``, ``LeftShoulder``/
  ``LeftUpperArm``/``LeftForeArm``/``LeftHand``, ``LeftUpperLeg``/``LeftLowerLeg``/``LeftFoot``/``LeftToe``;
* OptiTrack Motive: ``Hip``, ``Ab``, ``Chest``, ``Neck``, ``Head``, ``LShoulder``/``LUArm``/``LFArm``/``LHand``,
  ``LThigh``/``LShin``/``LFoot``/``LToe`` (Motive's FBX export puts the skeleton's name in front: ``Skeleton1_``).

CMU joints a family has no name for (CMU's ``LHipJoint``, ``Neck1``, finger stubs) are given names that say
nothing (``j07``), so only the family's own names can be read.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from rigcast.formats.bvh import read_bvh, write_bvh
from rigcast.retarget import detect_bone_map
from rigcast.retarget.cli import bvh_source
from retarget_checks import CMU_CLIPS, DATA, summary
from test_retarget_mocap import RIGS, retarget_errors

SIDES = (("Left", "L"), ("Right", "R"))


def _limbs(upper_arm: str, forearm: str, hand: str, thigh: str, shin: str, foot: str, toe: str, clavicle: str,
           side_word: bool = True) -> dict[str, str]:
    """CMU limb joint -> the family's name, for both sides (``{s}`` is the side)."""
    out = {}
    for cmu, letter in SIDES:
        s = cmu if side_word else letter
        out.update({f"{cmu}Shoulder": clavicle.format(s=s), f"{cmu}Arm": upper_arm.format(s=s),
                    f"{cmu}ForeArm": forearm.format(s=s), f"{cmu}Hand": hand.format(s=s),
                    f"{cmu}UpLeg": thigh.format(s=s), f"{cmu}Leg": shin.format(s=s), f"{cmu}Foot": foot.format(s=s),
                    f"{cmu}ToeBase": toe.format(s=s)})
    return out


FAMILIES: dict[str, dict[str, str]] = {
    "lafan1": {"Hips": "Hips", "LowerBack": "Spine", "Spine": "Spine1", "Spine1": "Spine2", "Neck": "Neck",
               "Head": "Head",
               **_limbs("{s}Arm", "{s}ForeArm", "{s}Hand", "{s}UpLeg", "{s}Leg", "{s}Foot", "{s}Toe", "{s}Shoulder")},
    "rokoko": {"Hips": "Hips", "LowerBack": "Spine1", "Spine": "Spine2", "Spine1": "Spine4", "Neck": "Neck",
               "Head": "Head",
               **_limbs("{s}Arm", "{s}ForeArm", "{s}Hand", "{s}Thigh", "{s}Shin", "{s}Foot", "{s}Toe",
                        "{s}Shoulder")},
    "xsens_mvn": {"Hips": "Pelvis", "LowerBack": "L5", "Spine": "L3", "Spine1": "T8", "Neck": "Neck", "Head": "Head",
                  **_limbs("{s}UpperArm", "{s}ForeArm", "{s}Hand", "{s}UpperLeg", "{s}LowerLeg", "{s}Foot", "{s}Toe",
                           "{s}Shoulder")},
    "optitrack": {"Hips": "Hip", "LowerBack": "Ab", "Spine1": "Chest", "Neck": "Neck", "Head": "Head",
                  **_limbs("{s}UArm", "{s}FArm", "{s}Hand", "{s}Thigh", "{s}Shin", "{s}Foot", "{s}Toe",
                           "{s}Shoulder", side_word=False)},
    "optitrack_fbx": {},  # optitrack's names with Motive's skeleton prefix, filled in below
}
FAMILIES["optitrack_fbx"] = {k: f"Skeleton1_{v}" for k, v in FAMILIES["optitrack"].items()}

EXPECTED = {  # canonical bone -> the family's bone (left side), what the mapper must pick by name
    "lafan1": {"thigh.L": "LeftUpLeg", "shin.L": "LeftLeg", "toes.L": "LeftToe", "upper_arm.L": "LeftArm",
               "lower_arm.L": "LeftForeArm", "shoulder.L": "LeftShoulder"},
    "rokoko": {"thigh.L": "LeftThigh", "shin.L": "LeftShin", "toes.L": "LeftToe", "upper_arm.L": "LeftArm",
               "lower_arm.L": "LeftForeArm", "shoulder.L": "LeftShoulder"},
    "xsens_mvn": {"hips": "Pelvis", "thigh.L": "LeftUpperLeg", "shin.L": "LeftLowerLeg", "upper_arm.L": "LeftUpperArm",
                  "lower_arm.L": "LeftForeArm", "shoulder.L": "LeftShoulder"},
    "optitrack": {"hips": "Hip", "thigh.L": "LThigh", "shin.L": "LShin", "toes.L": "LToe", "upper_arm.L": "LUArm",
                  "lower_arm.L": "LFArm", "hand.L": "LHand", "shoulder.L": "LShoulder"},
}
EXPECTED["optitrack_fbx"] = {k: f"Skeleton1_{v}" for k, v in EXPECTED["optitrack"].items()}
CLIP = "cmu_02_01_walk.bvh"


AS_WALK = {"cmu_131_03_hop.bvh": {
    "lowerback": "LowerBack", "Chest": "Spine", "Chest2": "Spine1", "lowerneck": "Neck", "Neck": "Neck1",
    **{f"{s}{old}": f"{s}{new}" for s in ("Left", "Right")
       for old, new in (("Hip", "UpLeg"), ("Knee", "Leg"), ("Ankle", "Foot"), ("Toe", "ToeBase"),
                        ("Collar", "Shoulder"),
                        ("Shoulder", "Arm"), ("Elbow", "ForeArm"), ("Wrist", "Hand"))}}}
"""The other CMU clip's older naming (``LeftHip``, ``Chest2``, ``LeftCollar``, ``LeftShoulder`` for the upper arm)
as the walk's, joint for joint, so one table per family renames both."""


def family_clip(family: str, tmp_path, clip_name: str = CLIP) -> Path:
    """The CMU clip ``clip_name`` with its joints renamed into ``family``'s naming, written to ``tmp_path``."""
    clip = read_bvh(DATA / clip_name)
    names = FAMILIES[family]
    as_walk = AS_WALK.get(clip_name, {})
    renamed = tuple(names.get(as_walk.get(n, n), f"j{i:02d}") for i, n in enumerate(clip.joint_names))
    assert len(set(renamed)) == len(renamed)
    path = tmp_path / f"{family}_{clip_name}"
    write_bvh(replace(clip, joint_names=renamed), path)
    return path


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_is_mapped_by_its_names(family, tmp_path):
    rig, _ = read_bvh(family_clip(family, tmp_path)).to_rig_motion()
    bone_map, report = detect_bone_map(rig)
    for canonical, bone in EXPECTED[family].items():
        found = bone_map.bones.get(canonical)
        assert found == bone, f"{family}: {canonical} -> {found}\n{report}"
        if canonical.endswith(".L"):
            right = bone.replace("Left", "Right") if "Left" in bone else re.sub(r"(^|_)L", r"\1R", bone, count=1)
            assert bone_map.bones.get(canonical[:-1] + "R") == right, f"{family}: {canonical[:-1]}R\n{report}"


@pytest.mark.parametrize("rig_name", list(RIGS))
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("clip", CMU_CLIPS)
def test_each_family_retargets_onto_preset_rigs(clip, family, rig_name, tmp_path):
    pose, text = bvh_source(family_clip(family, tmp_path, clip))
    assert "21/21 canonical bones" in text, text
    median, p95, worst = summary(retarget_errors(pose, RIGS[rig_name]()))
    print(f"\naccuracy {clip[:-4]:<16} {family:>13} -> {rig_name:<13} median {median:.3f} deg, p95 {p95:.3f} deg")
    assert median <= 1.0 and p95 <= 3.0, f"{family} -> {rig_name}: median {median:.2f}, p95 {p95:.2f}, worst {worst}"



def test_a_hand_named_the_canonical_way_is_read_finger_for_finger():
    """rigcast's own finger names (``index.02.L``, as :data:`FINGER_NAMES` spells them) read as themselves."""
    from rigcast.retarget.fingers import FINGER_NAMES, detect_fingers
    from test_retarget_rigs import mixamo_rig

    def canonical(name: str) -> str:
        m = re.fullmatch(r"mixamorig:(Left|Right)Hand(Thumb|Index|Middle|Ring|Pinky)(\d)", name)
        return f"{m[2].lower()}.{int(m[3]):02d}.{m[1][0]}" if m else name

    rig = mixamo_rig()
    rig = rig.with_bone_names([canonical(n) for n in rig.bone_names])
    indices = detect_bone_map(rig)[0].indices(rig)
    fingers = detect_fingers(rig, {"L": indices["hand.L"], "R": indices["hand.R"]})
    assert {k: rig.bone_names[b] for k, b in fingers.items()} == {k: k for k in FINGER_NAMES}
