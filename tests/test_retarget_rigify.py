"""Real mocap onto a real Rigify rig, generated in the test from Blender's bundled Rigify (metarig -> generate).

Rigify's DEF bones copy their tweak bones through constraints, so keying them moves nothing: the retarget must
find that out, key the FK controls, switch the limbs to FK, and the check is the pose Blender evaluates
(``matrix_world @ pose_bone.head`` after ``frame_set``), never the fcurves written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from required import require

bpy = require("bpy")
import addon_utils  # noqa: E402  (bpy's own module path)

from rigcast.retarget.cli import bvh_source, main  # noqa: E402
from retarget_checks import (CLIPS, LIMBS, LINES, angle_deg, canonical_dict, clip_path, direction_errors,  # noqa: E402
                             summary)
DEF_BONES = {"left_shoulder": "DEF-upper_arm.L", "left_elbow": "DEF-forearm.L", "left_wrist": "DEF-hand.L",
             "right_shoulder": "DEF-upper_arm.R", "right_elbow": "DEF-forearm.R", "right_wrist": "DEF-hand.R",
             "left_hip": "DEF-thigh.L", "left_knee": "DEF-shin.L", "left_ankle": "DEF-foot.L", "left_toe": "DEF-toe.L",
             "right_hip": "DEF-thigh.R", "right_knee": "DEF-shin.R", "right_ankle": "DEF-foot.R",
             "right_toe": "DEF-toe.R"}


@pytest.fixture(scope="session")
def rigify_blend(tmp_path_factory) -> Path:
    """A .blend holding only the rig Rigify generates from its human metarig (706 bones), made once per session."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert addon_utils.enable("rigify", default_set=True) is not None, "Blender's bundled Rigify did not load"
    bpy.ops.object.armature_human_metarig_add()
    metarig = bpy.context.active_object
    bpy.ops.pose.rigify_generate()
    rig = next(o for o in bpy.data.objects if o.type == 'ARMATURE' and o is not metarig)
    bpy.data.objects.remove(metarig)
    assert len(rig.data.bones) > 600
    path = tmp_path_factory.mktemp("rigify") / "rigify.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    return path


def evaluated_points(blend: Path, num_frames: int) -> dict[str, np.ndarray]:
    """World heads (T, 3) of the DEF bones standing for canonical points, as Blender evaluates them per frame."""
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    arm = bpy.data.objects["rig"]
    scene = bpy.context.scene
    out = {k: np.empty((num_frames, 3)) for k in DEF_BONES}
    for t in range(num_frames):
        scene.frame_set(1 + t)
        world = np.array(arm.matrix_world)
        for point, bone in DEF_BONES.items():
            out[point][t] = world[:3, :3] @ np.array(arm.pose.bones[bone].head) + world[:3, 3]
    return out


def test_rigify_deform_bones_are_found_driven_and_the_controls_mapped(rigify_blend):
    from rigcast_blender.rest_pose import read_rig
    from rigcast.retarget import detect_bone_map

    bpy.ops.wm.open_mainfile(filepath=str(rigify_blend))
    rig = read_rig(bpy.data.objects["rig"])
    assert {"DEF-upper_arm.L", "DEF-thigh.R", "DEF-spine"} <= rig.driven
    assert not {"upper_arm_fk.L", "thigh_fk.R", "torso"} & rig.driven
    bone_map, report = detect_bone_map(rig)
    assert bone_map.bones["upper_arm.L"] == "upper_arm_fk.L" and bone_map.bones["hips"] == "torso", str(report)
    assert not bone_map.driven(rig)


MAX_FRAMES = 120
"""Longer clips are cut to their first MAX_FRAMES frames here: the solve against Rigify's evaluated parents takes
about half a second a frame (MocapBank's 455 frames took 290 s)."""


def first_frames(clip: str, tmp_path: Path, frames: int = MAX_FRAMES) -> Path:
    """The real clip ``clip``, cut to its first ``frames`` frames when longer (values untouched)."""
    from rigcast.formats.bvh import read_bvh, write_bvh

    source = read_bvh(clip_path(clip))
    if source.num_frames <= frames:
        return clip_path(clip)
    path = tmp_path / clip
    write_bvh(source.with_motion(source.motion[:frames]), path)
    return path


def retarget_onto_rigify(source, rigify_blend, tmp_path, capsys):
    """``rigcast retarget SOURCE --rig rigify.blend --foot-lock never``, checked to pick Rigify's control map and
    to move the deform bones (the bug this guards against: 0.000 m; a point moving 10 cm is enough, as MocapBank's
    dancer keeps her feet still).  Returns the source's pose and the rig's evaluated points."""
    out = tmp_path / "out.blend"
    assert main([str(source), "--rig", str(rigify_blend), "-o", str(out), "--foot-lock", "never"]) == 0
    assert "rigify_control" in capsys.readouterr().out
    pose, _ = bvh_source(source)
    result = evaluated_points(out, pose.num_frames)
    assert max(np.ptp(p, axis=0).max() for p in result.values()) > 0.1
    return pose, result


@pytest.mark.parametrize("clip", CLIPS)
def test_real_mocap_moves_a_generated_rigify_rig(rigify_blend, clip, tmp_path, capsys):
    pose, result = retarget_onto_rigify(first_frames(clip, tmp_path), rigify_blend, tmp_path, capsys)
    arm = bpy.data.objects["rig"]
    assert arm.pose.bones["upper_arm_parent.L"]["IK_FK"] == pytest.approx(1.0)  # limbs switched to FK
    errors = direction_errors(canonical_dict(pose.xyz), result, LIMBS + LINES)
    median, p95, worst = summary(errors)
    assert median <= 1.0 and p95 <= 3.0, f"{clip}: median {median:.2f}, p95 {p95:.2f}, worst {worst}"


def test_bake_keys_the_deform_bones_with_what_the_controls_did(rigify_blend, tmp_path, capsys):
    """``--bake``: the DEF bones alone are keyed, their constraints gone, and they evaluate where the controls put
    them (within 1 mm), so the source's directions still hold.  (A step of the walk, 48 frames: each run solves
    against Rigify's evaluated parents frame by frame.)"""
    clip = first_frames("cmu_02_01_walk.bvh", tmp_path, 48)
    controls, baked = tmp_path / "controls.blend", tmp_path / "baked.blend"
    for out, extra in ((controls, []), (baked, ["--bake"])):
        assert main([str(clip), "--rig", str(rigify_blend), "-o", str(out), "--foot-lock", "never", *extra]) == 0
    assert "(deform bones baked)" in capsys.readouterr().out
    pose, _ = bvh_source(clip)
    want = evaluated_points(controls, pose.num_frames)
    got = evaluated_points(baked, pose.num_frames)
    arm = bpy.data.objects["rig"]
    from rigcast_blender.animation import fcurves_of

    keyed = {c.data_path.split('"')[1] for c in fcurves_of(arm.animation_data.action, arm)}
    deform = {b.name for b in arm.data.bones if b.use_deform}
    assert keyed == deform and all(not arm.pose.bones[b].constraints for b in deform)
    for point in DEF_BONES:
        assert np.abs(got[point] - want[point]).max() < 1e-3, point
    median, p95, worst = summary(direction_errors(canonical_dict(pose.xyz), got, LIMBS + LINES))
    assert median <= 1.0 and p95 <= 3.0, f"median {median:.2f}, p95 {p95:.2f}, worst {worst}"


@pytest.mark.parametrize("name", ["carphone", "bus_man"])
def test_a_real_take_moves_a_generated_rigify_rig(rigify_blend, tmp_path, capsys, name):
    """rigcast's analysis of the carphone clip (upper body) and of the bus.jpg man swaying (whole body) onto
    Rigify: the evaluated DEF limbs follow the Take's landmarks."""
    from rigcast.formats.take import Take
    from rigcast.retarget.cli import take_source
    from test_retarget_takes import ARM_LEG, REAL_TAKES

    take = REAL_TAKES[name](tmp_path / f"{name}.take.npz")
    out = tmp_path / "out.blend"
    assert main([str(take), "--rig", str(rigify_blend), "-o", str(out), "--foot-lock", "never"]) == 0
    pose, _ = take_source(Take.load(take))
    result = evaluated_points(out, pose.num_frames)
    errors = np.concatenate(list(direction_errors(canonical_dict(pose.xyz), result, ARM_LEG).values()))
    assert np.median(errors) <= 2.0, f"median {np.median(errors):.2f} deg"


@pytest.mark.parametrize("real", [False, True], ids=["curled", "real"])
def test_mocap_fingers_curl_a_generated_rigify_rigs_fingers(rigify_blend, tmp_path, capsys, real):
    """A Mixamo-named BVH with fingers onto Rigify, curling at random or the real clip from bvhtoolbox's sdist:
    the evaluated DEF finger bones point as the source's."""
    from rigcast.formats.bvh import BvhClip, read_bvh, write_bvh
    from rigcast.retarget import fk
    from test_retarget_fingers import curled_source
    from test_retarget_rigs import FINGERS

    if real:
        clip = clip_path("freebvh_mixamo_fingers.bvh")
        source_rig, source_motion = read_bvh(clip).to_rig_motion()
    else:
        source_rig, source_motion = curled_source()
        clip = tmp_path / "fingers.bvh"
        write_bvh(BvhClip.from_rig_motion(source_rig, source_motion, frame_time=1 / 30), clip)
    out = tmp_path / "out.blend"
    assert main([str(clip), "--rig", str(rigify_blend), "-o", str(out), "--foot-lock", "never"]) == 0
    assert "30/30 finger bones" in capsys.readouterr().out
    want = fk(source_rig, source_motion)
    pairs = {f"mixamorig:{side}Hand{f}{k}": f"DEF-{'thumb' if f == 'Thumb' else 'f_' + f.lower()}.0{k}.{side[0]}"
             for side in ("Left", "Right") for f in FINGERS for k in (1, 2, 3)}
    bpy.ops.wm.open_mainfile(filepath=str(out))
    arm = bpy.data.objects["rig"]
    errors = []
    for t in range(0, source_motion.num_frames, 5):
        bpy.context.scene.frame_set(1 + t)
        world = np.array(arm.matrix_world)[:3, :3]
        for src, dst in pairs.items():
            pb = arm.pose.bones[dst]
            got = world @ (np.array(pb.tail) - np.array(pb.head))
            errors.append(angle_deg(want[t, source_rig.index(src), :3, 1], got))
    assert np.median(errors) <= 1.0 and np.percentile(errors, 95) <= 3.0, (np.median(errors),
                                                                          np.percentile(errors, 95))
