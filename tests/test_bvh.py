"""BVH: text round trips, conventions (Euler order, axes, root position), and BVH as retarget source and target."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from rigcast.formats.bvh import (YUP_TO_ZUP, BvhClip, BvhError, format_bvh, parse_bvh, read_bvh, write_bvh,
                                 yup_to_zup, zup_to_yup)
from rigcast.retarget import (Motion, RetargetOptions, default_rig, detect_bone_map, fk, retarget, rig_markers,
                              source_from_rig)
from rigcast.retarget.canonical import BONES, P
from test_retarget_rigs import mixamo_rig, motion_like, random_motion, unreal_rig

SMALL = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
  JOINT Leg
  {
    OFFSET 2 -1 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 -9 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
1 2 3 90 0 0 0 0 0 0 0 0
0 0 0 0 0 0 30 45 60 10 20 30
"""


def test_parse_small_file():
    clip = parse_bvh(SMALL)
    assert clip.joint_names == ("Hips", "Chest", "Leg") and clip.parents == (-1, 0, 0)
    assert clip.num_frames == 2 and clip.fps == 30
    assert clip.rotation_order(0) == "ZXY" and clip.rotation_order(2) == "XYZ"
    np.testing.assert_array_equal(clip.end_sites[1], [0, 5, 0])
    assert np.all(np.isnan(clip.end_sites[0]))
    rot, pos = clip.world_transforms()
    # Frame 0: the root stands at its position channels, turned 90 degrees about Z:
    # the chest, 10 up, lands at -10 along x.
    np.testing.assert_allclose(pos[0, 0], [1, 2, 3])
    np.testing.assert_allclose(pos[0, 1], [1 - 10, 2, 3], atol=1e-12)
    # Frame 1: channels "Zrotation Xrotation Yrotation" = (30, 45, 60) compose as Rz @ Rx @ Ry.
    expected = (Rotation.from_euler("z", 30, degrees=True) * Rotation.from_euler("x", 45, degrees=True)
                * Rotation.from_euler("y", 60, degrees=True)).as_matrix()
    np.testing.assert_allclose(clip.local_rotations()[1, 1], expected, atol=1e-12)
    expected_leg = (Rotation.from_euler("x", 10, degrees=True) * Rotation.from_euler("y", 20, degrees=True)
                    * Rotation.from_euler("z", 30, degrees=True)).as_matrix()
    np.testing.assert_allclose(rot[1, 2], expected_leg, atol=1e-12)


@pytest.mark.parametrize("text, message", [
    (SMALL.replace("HIERARCHY", "HIERARCHIE"), "expected 'HIERARCHY'"),
    (SMALL.replace("Frames: 2", "Frames: 3"), "3 x 12"),
    (SMALL.replace("OFFSET 0 10 0", "OFFSET 0 ten 0"), "numbers"),
    (SMALL.replace("CHANNELS 3 Xrotation Yrotation Zrotation", "CHANNELS 3 Xrotation Yrotation Wrotation"), "channels"),
    (SMALL.replace("CHANNELS 3 Xrotation Yrotation Zrotation", "CHANNELS 2 Xrotation Yrotation")
     .replace("0 0 0 0\n", "0 0 0\n").replace("20 30\n", "20\n"), "three rotation"),
    (SMALL[: SMALL.index("MOTION")], "ends early"),
    (SMALL.replace("JOINT Leg", "JOINT Chest"), "unique"),
    (SMALL.replace("0 0 0 0 0 0 30 45 60 10 20 30", "0 0 0 0 0 0 30 45 60 10 20 x"), "not a number"),
])
def test_parse_errors(text, message):
    with pytest.raises(BvhError, match=message):
        parse_bvh(text)


def _clip(seed: int = 0, num_frames: int = 30) -> BvhClip:
    rig = mixamo_rig(prefix="", fingers=False)
    return BvhClip.from_rig_motion(rig, random_motion(rig, list(range(rig.num_bones)), num_frames, 170, seed=seed),
                                   frame_time=1 / 30)


def test_write_read_round_trip_is_exact_to_printed_precision(tmp_path):
    clip = _clip()
    path = tmp_path / "take.bvh"
    write_bvh(clip, path)
    back = read_bvh(path)
    assert back.joint_names == clip.joint_names and back.parents == clip.parents and back.channels == clip.channels
    assert np.abs(back.motion - clip.motion).max() <= 5e-7
    assert np.abs(back.offsets - clip.offsets).max() <= 5e-7
    np.testing.assert_array_equal(np.isnan(back.end_sites), np.isnan(clip.end_sites))
    assert back.frame_time == clip.frame_time
    assert format_bvh(back) == path.read_text()  # what was printed reads back to the same numbers
    assert not re.search(r"(?<![\d.])-0\.000000(?!\d)", path.read_text())  # no negative zeros
    assert np.abs(clip.motion).max() > 100  # the test covers large angles, not just small numbers


def test_axes_conversion_is_a_rotation_and_its_own_inverse_pair():
    assert np.linalg.det(YUP_TO_ZUP) == pytest.approx(1.0)
    np.testing.assert_allclose(yup_to_zup([0.0, 1.0, 0.0]), [0, 0, 1])  # up stays up
    np.testing.assert_allclose(yup_to_zup([0.0, 0.0, 1.0]), [0, -1, 0])  # facing +Z becomes facing -Y
    np.testing.assert_allclose(yup_to_zup([1.0, 0.0, 0.0]), [1, 0, 0])  # the character's left stays +X
    v = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(zup_to_yup(yup_to_zup(v)), v, atol=1e-15)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "YZX", "ZYX"])
def test_rig_motion_to_bvh_and_back_keeps_every_joint(order):
    rig = mixamo_rig(prefix="", fingers=False)
    motion = random_motion(rig, list(range(rig.num_bones)), 12, 120, seed=5, translation=0.4)
    clip = BvhClip.from_rig_motion(rig, motion, rotation_order=order)
    assert clip.channels[0] == ("Xposition", "Yposition", "Zposition") + tuple(f"{a}rotation" for a in order)
    assert all(len(c) == 3 for c in clip.channels[1:])
    rig_b, motion_b = parse_bvh(format_bvh(clip, precision=9)).to_rig_motion(scale=0.01)
    assert rig_b.bone_names == tuple(rig.bone_names[b] for b in rig.order)
    np.testing.assert_allclose(rig_b.head_xyz, rig.head_xyz[list(rig.order)], atol=1e-9)
    pose, pose_b = fk(rig, motion), fk(rig_b, motion_b)
    order_b = [rig_b.bone_names.index(n) for n in rig.bone_names]
    np.testing.assert_allclose(pose_b[:, order_b][..., :3, 3], pose[..., :3, 3], atol=1e-6)
    # Rotations since rest agree too (the BVH rig's bones point at their children, not as the source's).
    delta = pose[..., :3, :3] @ np.swapaxes(rig.rest_matrix[:, :3, :3], 1, 2)
    delta_b = pose_b[:, order_b][..., :3, :3] @ np.swapaxes(rig_b.rest_matrix[order_b, :3, :3], 1, 2)
    np.testing.assert_allclose(delta_b, delta, atol=1e-6)
    assert motion_b.fps == 30


def test_scale_guess_and_position_channel_warning():
    clip = parse_bvh(SMALL)
    assert clip.auto_scale() == pytest.approx(1.7 / 25.0)  # 25 units tall: neither metres nor cm
    centimetres = _clip()
    assert centimetres.auto_scale() == 0.01
    metres = BvhClip.from_rig_motion(default_rig(), Motion.rest(default_rig(), 2), scale=1.0)
    assert metres.auto_scale() == 1.0
    moving = SMALL.replace("CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 6 Xposition Yposition Zposition "
                           "Zrotation Xrotation Yrotation").replace("1 2 3 90 0 0 0 0 0", "1 2 3 90 0 0 0 10 0 0 0 0") \
        .replace("0 0 0 0 0 0 30 45 60", "0 0 0 0 0 0 0 12 0 30 45 60")
    with pytest.warns(RuntimeWarning, match="Chest"):
        parse_bvh(moving).to_rig_motion()


def test_bvh_source_onto_a_bvh_rig_with_other_names_and_rest_pose(tmp_path):
    # Source: a Mixamo-named T-pose skeleton, animated, written and read back as BVH.
    source_rig = mixamo_rig(prefix="", fingers=False)
    sidx = detect_bone_map(source_rig)[0].indices(source_rig)
    write_bvh(BvhClip.from_rig_motion(source_rig, motion_like(source_rig, sidx, 40), frame_time=1 / 30),
              tmp_path / "source.bvh")
    rig_s, motion_s = read_bvh(tmp_path / "source.bvh").to_rig_motion()
    source = source_from_rig(rig_s, motion_s)
    # Target: Unreal-named, A-pose-ish (arms 30 degrees down), 10 % taller, in metres in its file.
    write_bvh(BvhClip.from_rig_motion(unreal_rig(), Motion.rest(unreal_rig(), 1), scale=1.0), tmp_path / "target.bvh")
    target = read_bvh(tmp_path / "target.bvh").to_rig("target")
    bone_map, report = detect_bone_map(target)
    assert report.method == "preset:unreal_manny" and report.missing == ()
    out = retarget(source, target, bone_map, options=RetargetOptions(foot_lock="never"))
    result = rig_markers(target, bone_map.indices(target)).posed_xyz(fk(target, out))
    for name in bone_map.bones:
        bone = BONES[name]
        tail = next(t for t in bone.tails if np.all(np.isfinite(source.xyz[:, P[t]])))
        a = source.xyz[:, P[tail]] - source.xyz[:, P[bone.head]]
        b = result[:, P[tail]] - result[:, P[bone.head]]
        cos = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 2.0, name
    # And the retargeted motion exports as BVH on the target's names.
    clip = BvhClip.from_rig_motion(target, out)
    assert set(clip.joint_names) == set(target.bone_names) and clip.num_frames == 40
