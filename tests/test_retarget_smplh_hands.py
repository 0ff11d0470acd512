"""SMPL-H and SMPL-X hands in AMASS archives: their 15 joints a hand are read onto finger bones, and each finger
bone of a target rig turns as the archive's did.

The archive is built at test time (no AMASS file may be committed): a Mixamo rig's motion with curled fingers
(``test_retarget_fingers.curled_source``) retargeted onto SMPL-H's 52-joint rig, written in AMASS's layout with
its fingers in place (``smpl_archives.write_amass``), then read back through ``rigcast retarget``'s loader.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rigcast.formats.amass import HAND_JOINTS, read_amass, smpl_rig
from rigcast.retarget import RetargetOptions, detect_bone_map, fk, retarget
from rigcast.retarget.cli import load_source
from rigcast.retarget.fingers import FINGER_NAMES
from retarget_checks import angle_deg
from smpl_archives import write_amass
from test_retarget_fingers import curled_source, fingers_of
from test_retarget_mocap import scrambled
from test_retarget_rigs import mixamo_rig


def solved(pose, target):
    bone_map, _ = detect_bone_map(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return retarget(pose, target, bone_map, options=RetargetOptions(foot_lock="never"), return_report=True)


def finger_directions(rig, pose_matrices, fingers) -> dict[str, np.ndarray]:
    """Per finger name, the (T, 3) world direction of its bone (head to tail: the bone's Y axis)."""
    return {name: pose_matrices[:, b, :3, 1] for name, b in fingers.items()}


def test_the_hands_rig_reads_as_thirty_finger_bones():
    rig = smpl_rig(hands=True)
    assert rig.num_bones == 52 and rig.bone_names[22:25] == ("L_Index1", "L_Index2", "L_Index3")
    fingers = fingers_of(rig)
    assert set(fingers) == set(FINGER_NAMES)
    assert rig.bone_names[fingers["thumb.03.R"]] == "R_Thumb3" and rig.bone_names[fingers["pinky.01.L"]] == "L_Pinky1"
    for name, b in fingers.items():  # each finger hangs from its own side's wrist
        wrist = "L_Wrist" if name.endswith(".L") else "R_Wrist"
        assert wrist in [rig.bone_names[a] for a in rig.ancestors(b)], name


@pytest.mark.parametrize("width", [156, 165])
def test_smplh_fingers_curl_a_targets_fingers(width, tmp_path):
    source_rig, source_motion = curled_source()
    from rigcast.retarget import source_from_rig

    hands = smpl_rig(hands=True)
    on_smplh, report = solved(source_from_rig(source_rig, source_motion), hands)
    assert any("30/30 finger bones" in n for n in report.notes), report.notes
    path = write_amass(tmp_path / "hands.npz", hands, on_smplh, width=width)

    rig, motion, info = read_amass(path)
    assert rig.bone_names[22:] == HAND_JOINTS and info.pose_width == width
    np.testing.assert_allclose(fk(rig, motion)[..., :3, :3], fk(hands, on_smplh)[..., :3, :3], atol=1e-5)

    pose, text = load_source(path)
    assert "30 finger bones" in text, text
    target = scrambled(mixamo_rig("mixamorig1:"))
    on_target, report = solved(pose, target)
    assert any("30/30 finger bones" in n for n in report.notes), report.notes
    # Each target finger segment points where the archive's does (a rig's finger rest may point elsewhere: the
    # turn since rest is lined up with the target's rest, so directions, not rotations, are what must agree).
    want = finger_directions(hands, fk(hands, on_smplh), fingers_of(hands))
    got = finger_directions(target, fk(target, on_target), fingers_of(target))
    worst = {n: float(angle_deg(want[n], got[n]).max()) for n in FINGER_NAMES}
    print(f"\nSMPL-H fingers (width {width}) -> mixamo: worst finger {max(worst, key=worst.get)} "
          f"{max(worst.values()):.4f} deg")
    assert max(worst.values()) < 0.5, worst
    moved = max(float(angle_deg(got[n][:1], got[n]).max()) for n in FINGER_NAMES)
    assert moved > 20.0  # the fingers did curl over the clip (a still hand would pass the check above)
