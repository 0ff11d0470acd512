"""Exports read back in real bpy: FBX through Blender's importer, BVH through Blender's and rigcast's writers and
readers, compared with the exported armature's evaluated pose over every frame."""

from __future__ import annotations

import math

import numpy as np
import pytest
from required import require

bpy = require("bpy")

from rigcast.formats.bvh import YUP_TO_ZUP, read_bvh  # noqa: E402
from rigcast.retarget import detect_bone_map, fk  # noqa: E402
from test_blender_addon import addon  # noqa: E402,F401  (the fixture)
from test_retarget_rigs import mixamo_rig, motion_like  # noqa: E402

FRAMES = 30


@pytest.fixture
def animated(addon):
    """A Mixamo-named armature playing 30 frames of anatomical motion (with root travel) from core."""
    from rigcast_blender.animation import write_bone_motion
    from rigcast_blender.rest_pose import armature_from_rig

    rig = mixamo_rig(fingers=False)
    motion = motion_like(rig, detect_bone_map(rig)[0].indices(rig), FRAMES)
    arm = armature_from_rig(rig, "Source", bpy.context.scene.collection)
    write_bone_motion(arm, rig, motion, frame_start=1, action_name="source")
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, FRAMES
    scene.rigcast.target = arm
    return arm, rig, motion


def world_pose(arm) -> dict[str, np.ndarray]:
    """Per bone name, world pose matrices (T, 4, 4) with unit axes, over frames 1..FRAMES."""
    scene = bpy.context.scene
    out = {b.name: np.empty((FRAMES, 4, 4)) for b in arm.pose.bones}
    for i in range(FRAMES):
        scene.frame_set(1 + i)
        for pb in arm.pose.bones:
            out[pb.name][i] = np.array(arm.matrix_world @ pb.matrix)
    for m in out.values():
        m[:, :3, :3] /= np.linalg.norm(m[:, :3, :3], axis=1, keepdims=True)  # an FBX import may scale the object
    return out


def rest_world(arm) -> dict[str, np.ndarray]:
    mw = np.array(arm.matrix_world)
    out = {}
    for b in arm.data.bones:
        m = mw @ np.array(b.matrix_local)
        m[:3, :3] /= np.linalg.norm(m[:3, :3], axis=0, keepdims=True)
        out[b.name] = m
    return out


def heads_and_turns(pose: dict, rest: dict) -> tuple[dict, dict]:
    """World head positions (T, 3) and world rotations since rest (T, 3, 3) per bone: independent of bone roll
    and tail placement, which differ between BVH importers."""
    heads = {n: m[:, :3, 3] for n, m in pose.items()}
    turns = {n: m[:, :3, :3] @ rest[n][:3, :3].T for n, m in pose.items()}
    return heads, turns


def new_armature(before: set[str]):
    arms = [o for o in bpy.data.objects if o.type == 'ARMATURE' and o.name not in before]
    assert len(arms) == 1, [o.name for o in arms]
    return arms[0]


def test_fbx_export_reimports_to_the_same_pose(animated, tmp_path):
    arm, rig, _ = animated
    arm.location = (0.3, -0.2, 0.1)
    arm.rotation_euler = (0.0, 0.0, math.radians(30.0))
    expected = world_pose(arm)
    path = tmp_path / "clip.fbx"
    assert bpy.ops.rigcast.export_fbx(filepath=str(path)) == {'FINISHED'}
    before = {o.name for o in bpy.data.objects}
    # Blender's FBX files key frame f at time f / fps; its importer adds anim_offset (default 1 frame) to that.
    assert bpy.ops.import_scene.fbx(filepath=str(path), automatic_bone_orientation=False,
                                    anim_offset=0.0) == {'FINISHED'}
    back = new_armature(before)
    assert not [o for o in bpy.data.objects if o.name not in before and o.type != 'ARMATURE']  # armature only
    assert {b.name for b in back.data.bones} == set(rig.bone_names)  # no leaf bones added
    got = world_pose(back)
    err = max(np.abs(got[n] - expected[n]).max() for n in expected)
    print(f"FBX round trip: max world pose-matrix difference {err:.2e} over {FRAMES} frames, {len(expected)} bones")
    assert err < 1e-4


@pytest.mark.parametrize("writer", ["BLENDER", "RIGCAST"])
def test_bvh_export_reimports_in_blender(animated, tmp_path, writer):
    arm, rig, _ = animated
    expected_heads, expected_turns = heads_and_turns(world_pose(arm), rest_world(arm))
    path = tmp_path / f"{writer.lower()}.bvh"
    bpy.context.scene.rigcast.bvh_writer = writer
    assert bpy.ops.rigcast.export_bvh(filepath=str(path)) == {'FINISHED'}
    before = {o.name for o in bpy.data.objects}
    if writer == "BLENDER":  # Blender writes its own Z-up armature space, in metres
        options = dict(axis_forward='Y', axis_up='Z', global_scale=1.0)
    else:  # rigcast writes the usual Y-up BVH in centimetres
        options = dict(axis_forward='-Z', axis_up='Y', global_scale=0.01)
    assert bpy.ops.import_anim.bvh(filepath=str(path), frame_start=1, rotate_mode='NATIVE', **options) == {'FINISHED'}
    back = new_armature(before)
    heads, turns = heads_and_turns(world_pose(back), rest_world(back))
    pos_err = max(np.abs(heads[n] - expected_heads[n]).max() for n in expected_heads)
    rot_err = max(np.abs(turns[n] - expected_turns[n]).max() for n in expected_turns)
    print(f"BVH ({writer} writer -> Blender importer): max head error {pos_err:.2e} m, rotation {rot_err:.2e}")
    assert pos_err < 1e-4 and rot_err < 1e-4


@pytest.mark.parametrize("writer", ["BLENDER", "RIGCAST"])
def test_bvh_export_reads_back_with_rigcasts_reader(animated, tmp_path, writer):
    arm, rig, _ = animated
    expected_heads, expected_turns = heads_and_turns(world_pose(arm), rest_world(arm))
    path = tmp_path / f"{writer.lower()}.bvh"
    bpy.context.scene.rigcast.bvh_writer = writer
    assert bpy.ops.rigcast.export_bvh(filepath=str(path)) == {'FINISHED'}
    clip = read_bvh(path)
    back_rig, back_motion = clip.to_rig_motion(scale=1.0 if writer == "BLENDER" else 0.01)
    pose = fk(back_rig, back_motion)
    # rigcast's reader takes files as Y-up; Blender's writer wrote Z-up, so its world comes back turned by M.
    m = YUP_TO_ZUP if writer == "BLENDER" else np.eye(3)
    pos_err = rot_err = 0.0
    for j, name in enumerate(back_rig.bone_names):
        pos_err = max(pos_err, np.abs(pose[:, j, :3, 3] - expected_heads[name] @ m.T).max())
        turn = pose[:, j, :3, :3] @ back_rig.rest_matrix[j, :3, :3].T
        rot_err = max(rot_err, np.abs(turn - m @ expected_turns[name] @ m.T).max())
    print(f"BVH ({writer} writer -> rigcast reader): max head error {pos_err:.2e} m, rotation {rot_err:.2e}")
    assert pos_err < 1e-4 and rot_err < 1e-4
