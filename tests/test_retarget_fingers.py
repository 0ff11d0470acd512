"""Fingers: thumb and four fingers, three segments each, mapped by name below the hands and retargeted from a
source that has them (Mixamo names) onto rigs named the Mixamo, Rigify and Unreal (UE5) ways, bone rolls
scrambled; a source without fingers leaves them at rest."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from rigcast.retarget import RetargetOptions, Rig, detect_bone_map, fk, retarget, source_from_rig
from rigcast.retarget.fingers import FINGER_NAMES, detect_fingers
from rigcast.retarget.rotations import rotation_angle_deg
from test_retarget_mocap import scrambled
from test_retarget_rigs import FINGERS, mixamo_rig, motion_like, random_motion


def renamed(rig: Rig, style: str) -> Rig:
    """The Mixamo rig with its finger bones named the ``rigify`` (f_index.01.L, thumb.01.L) or ``ue5``
    (index_01_l) way; the body keeps Mixamo's names."""
    def name(n: str) -> str:
        m = re.fullmatch(r"mixamorig:(Left|Right)Hand(Thumb|Index|Middle|Ring|Pinky)(\d)", n)
        if not m:
            return n
        side, finger, k = m.group(1)[0], m.group(2).lower(), int(m.group(3))
        if style == "rigify":
            return f"{'thumb' if finger == 'thumb' else 'f_' + finger}.{k:02d}.{side}"
        return f"{finger}_{k:02d}_{side.lower()}"
    return rig.with_bone_names([name(n) for n in rig.bone_names])


def curled_source():
    rig = mixamo_rig()
    indices = detect_bone_map(rig)[0].indices(rig)
    body = motion_like(rig, indices, 40)
    finger_bones = [rig.index(f"mixamorig:{side}Hand{f}{k}") for side in ("Left", "Right") for f in FINGERS
                    for k in (1, 2, 3)]
    curl = random_motion(rig, finger_bones, 40, max_deg=60, seed=4)
    quat = np.array(body.local_quat_wxyz)
    quat[:, finger_bones] = curl.local_quat_wxyz[:, finger_bones]
    from dataclasses import replace
    return rig, replace(body, local_quat_wxyz=quat)


def test_fingers_are_found_by_name_in_three_families():
    for style in ("mixamo", "rigify", "ue5"):
        rig = mixamo_rig() if style == "mixamo" else renamed(mixamo_rig(), style)
        indices = detect_bone_map(rig)[0].indices(rig)
        fingers = detect_fingers(rig, {"L": indices["hand.L"], "R": indices["hand.R"]})
        assert set(fingers) == set(FINGER_NAMES), style
        assert rig.bone_names[fingers["index.02.L"]] == {"mixamo": "mixamorig:LeftHandIndex2",
                                                          "rigify": "f_index.02.L", "ue5": "index_02_l"}[style]


def fingers_of(rig: Rig) -> dict[str, int]:
    """Finger name -> bone index below ``rig``'s mapped hands."""
    indices = detect_bone_map(rig)[0].indices(rig)
    return detect_fingers(rig, {"L": indices["hand.L"], "R": indices["hand.R"]})


def onto_finger_rig(source_rig: Rig, source_motion, style: str):
    """The motion retargeted onto a Mixamo-proportioned rig with fingers named the ``style`` way, rolls scrambled:
    the target, source and result pose matrices (T, B, 4, 4), and both rigs' finger bones."""
    pose = source_from_rig(source_rig, source_motion)
    target = scrambled(mixamo_rig("mixamorig1:") if style == "mixamo" else renamed(mixamo_rig(), style))
    bone_map, _ = detect_bone_map(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion, report = retarget(pose, target, bone_map, options=RetargetOptions(foot_lock="never"),
                                  return_report=True)
    assert any("30/30 finger bones" in n for n in report.notes), report.notes
    return target, fk(source_rig, source_motion), fk(target, motion), fingers_of(source_rig), fingers_of(target)


@pytest.mark.parametrize("style", ["mixamo", "rigify", "ue5"])
def test_fingers_follow_the_source(style):
    source_rig, source_motion = curled_source()
    target, want, got, src_fingers, tgt_fingers = onto_finger_rig(source_rig, source_motion, style)
    for name in FINGER_NAMES:
        s, t = src_fingers[name], tgt_fingers[name]
        change_src = want[:, s, :3, :3] @ source_rig.rest_matrix[s, :3, :3].T
        change_tgt = got[:, t, :3, :3] @ target.rest_matrix[t, :3, :3].T
        assert rotation_angle_deg(np.swapaxes(change_src, 1, 2) @ change_tgt).max() < 0.5, name


def test_a_source_without_fingers_leaves_them_at_rest():
    source_rig = mixamo_rig(fingers=False)
    indices = detect_bone_map(source_rig)[0].indices(source_rig)
    pose = source_from_rig(source_rig, motion_like(source_rig, indices, 20))
    assert pose.finger_rotation is None
    target = mixamo_rig()
    bone_map, _ = detect_bone_map(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = retarget(pose, target, bone_map, options=RetargetOptions(foot_lock="never"))
    finger = target.index("mixamorig:LeftHandIndex2")
    np.testing.assert_allclose(np.abs(motion.local_quat_wxyz[:, finger, 0]), 1.0, atol=1e-9)


@pytest.mark.parametrize("style", ["mixamo", "rigify", "ue5"])
def test_real_mocap_fingers_point_as_the_sources(style):
    """The real Mixamo-rigged clip with fingers (three segments each, from bvhtoolbox's sdist) onto rigs whose
    fingers are named the Mixamo, Rigify and UE5 ways, bone rolls scrambled: every finger bone's world direction
    follows the source's (median <= 1 deg, p95 <= 3 deg).  (Its rotation since rest differs from the source's by
    the constant turn between the two rests' finger directions, so rolls are not compared here; the synthetic
    test above, on rigs of one rest, compares them.)"""
    from rigcast.formats.bvh import read_bvh
    from retarget_checks import angle_deg, clip_path

    source_rig, source_motion = read_bvh(clip_path("freebvh_mixamo_fingers.bvh")).to_rig_motion()
    target, want, got, src_fingers, tgt_fingers = onto_finger_rig(source_rig, source_motion, style)
    directions = np.concatenate([angle_deg(want[:, src_fingers[n], :3, 1], got[:, tgt_fingers[n], :3, 1])
                                 for n in FINGER_NAMES])
    assert np.median(directions) <= 1.0 and np.percentile(directions, 95) <= 3.0
