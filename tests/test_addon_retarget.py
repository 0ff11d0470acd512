"""The add-on's Apply does what ``rigcast retarget`` does, with real bpy: BVH / AMASS sources, ``Source rest`` /
``Target rest`` (the CLI's ``--source-rest`` / ``--target-rest``), the control map on a generated Rigify rig and
``Bake deform bones`` (``--bake``).  The checks are the pose Blender evaluates after ``frame_set``, never the
fcurves written: on Rigify, the DEF bones must move with the source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from required import require

bpy = require("bpy")

from rigcast.retarget.cli import bvh_source, main  # noqa: E402
from retarget_checks import LIMBS, LINES, canonical_dict, direction_errors, summary  # noqa: E402
from test_blender_addon import addon, build_mixamo_armature, synthetic_take  # noqa: E402,F401  (fixtures)
from test_retarget_rigify import (DEF_BONES, evaluated_points, first_frames, retarget_onto_rigify,  # noqa: E402,F401
                                  rigify_blend)

WALK = "cmu_02_01_walk.bvh"


def apply(blend: Path | None, source: Path, *, arm_name: str = "rig", **settings) -> tuple[set, object]:
    """Open ``blend`` (None: keep the scene), point Apply at ``source`` and ``arm_name``, run it; returns the
    operator's result and the armature."""
    if blend is not None:
        bpy.ops.wm.open_mainfile(filepath=str(blend))
    props = bpy.context.scene.rigcast
    arm = bpy.data.objects[arm_name]
    props.take_path, props.target, props.create_armature = str(source), arm, False
    props.bone_map, props.foot_lock, props.frame_offset = "AUTO", "NEVER", 1
    for key, value in settings.items():
        setattr(props, key, value)
    return bpy.ops.rigcast.apply(), arm


def saved(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True)
    return path


def test_apply_moves_a_generated_rigify_rigs_deform_bones_through_its_controls(addon, rigify_blend, tmp_path):
    """Auto map on Rigify picks the FK controls (as the CLI does), the limbs go to FK, and the evaluated DEF bones
    follow the clip; with Bake, only DEF bones are keyed and they evaluate where the controls put them."""
    clip = first_frames(WALK, tmp_path, 48)
    pose, _ = bvh_source(clip)
    assert apply(rigify_blend, clip)[0] == {'FINISHED'}
    arm = bpy.data.objects["rig"]
    from rigcast_blender.animation import fcurves_of

    keyed = {c.data_path.split('"')[1] for c in fcurves_of(arm.animation_data.action, arm)}
    assert {"upper_arm_fk.L", "thigh_fk.R", "torso"} <= keyed and not any(b.startswith("DEF-") for b in keyed)
    assert arm.pose.bones["upper_arm_parent.L"]["IK_FK"] == pytest.approx(1.0)
    controls = evaluated_points(saved(tmp_path, "controls.blend"), pose.num_frames)
    assert max(np.ptp(p, axis=0).max() for p in controls.values()) > 0.1  # the DEF bones move
    median, p95, worst = summary(direction_errors(canonical_dict(pose.xyz), controls, LIMBS + LINES))
    print(f"\naccuracy add-on Apply {WALK} -> rigify (controls): median {median:.3f} deg, p95 {p95:.3f} deg")
    assert median <= 1.0 and p95 <= 3.0, f"median {median:.2f}, p95 {p95:.2f}, worst {worst}"

    assert apply(rigify_blend, clip, bake=True)[0] == {'FINISHED'}
    arm = bpy.data.objects["rig"]
    keyed = {c.data_path.split('"')[1] for c in fcurves_of(arm.animation_data.action, arm)}
    deform = {b.name for b in arm.data.bones if b.use_deform}
    assert keyed == deform and all(not arm.pose.bones[b].constraints for b in deform)
    assert arm.animation_data.action.name.endswith("_baked")
    baked = evaluated_points(saved(tmp_path, "baked.blend"), pose.num_frames)
    for point in DEF_BONES:
        assert np.abs(baked[point] - controls[point]).max() < 1e-3, point
    median, p95, worst = summary(direction_errors(canonical_dict(pose.xyz), baked, LIMBS + LINES))
    print(f"accuracy add-on Apply {WALK} -> rigify (baked):    median {median:.3f} deg, p95 {p95:.3f} deg")
    assert median <= 1.0 and p95 <= 3.0, f"median {median:.2f}, p95 {p95:.2f}, worst {worst}"


def evaluated_matrices(arm, frames: int) -> np.ndarray:
    """(T, B, 4, 4) world matrices of every pose bone as Blender evaluates them at scene frames 1..T."""
    scene = bpy.context.scene
    world = np.array(arm.matrix_world)
    out = np.empty((frames, len(arm.pose.bones), 4, 4))
    for t in range(frames):
        scene.frame_set(1 + t)
        out[t] = [world @ np.array(pb.matrix) for pb in arm.pose.bones]
    return out


@pytest.mark.parametrize("source_rest, target_rest", [("5", "zero"), ("zero", "tpose"), ("5", "tpose")])
def test_apply_with_rests_matches_the_cli(addon, tmp_path, source_rest, target_rest):
    """Source rest / Target rest give the pose ``rigcast retarget --source-rest/--target-rest`` writes (the same
    core code), and a changed rest changes the result (the setting is used)."""
    clip = first_frames(WALK, tmp_path, 24)
    build_mixamo_armature()
    rig_blend = saved(tmp_path, "mixamo.blend")
    out = tmp_path / "cli.blend"
    assert main([str(clip), "--rig", str(rig_blend), "-o", str(out), "--foot-lock", "never",
                 "--source-rest", source_rest, "--target-rest", target_rest]) == 0
    bpy.ops.wm.open_mainfile(filepath=str(out))
    arm = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
    want = evaluated_matrices(arm, 24)

    result, arm = apply(rig_blend, clip, arm_name=arm.name, source_rest=source_rest, target_rest=target_rest)
    assert result == {'FINISHED'}
    got = evaluated_matrices(arm, 24)
    assert np.abs(got - want).max() < 1e-4
    result, arm = apply(rig_blend, clip, arm_name=arm.name)
    plain = evaluated_matrices(arm, 24)
    if source_rest != "zero":  # the clip's frame 5 is no T-pose: measuring from it changes the rotations
        assert np.abs(plain[..., :3, :3] - want[..., :3, :3]).max() > 0.05


def test_apply_reads_rests_as_the_cli_does_and_refuses_what_it_refuses(addon, tmp_path):
    from rigcast_blender.apply import ApplyConfig, load_source
    from rigcast_blender.core_bridge import RigcastError

    clip = first_frames(WALK, tmp_path, 24)
    source = load_source(ApplyConfig(take_path=str(clip), source_rest="tpose"))
    assert source.track_id == -1 and source.pose.num_frames == 24 and list(source.frames[:2]) == [1.0, 2.0]
    assert "tpose" in source.text or "T-pose" in source.text
    take = tmp_path / "x.take.npz"
    take.write_bytes(b"")
    with pytest.raises(RigcastError, match="Source rest applies to mocap clips"):
        load_source(ApplyConfig(take_path=str(take), source_rest="tpose"))
    with pytest.raises(RigcastError, match="rest"):
        load_source(ApplyConfig(take_path=str(clip), source_rest="sideways"))
    with pytest.raises(RigcastError, match="Apply reads Takes, BVH clips"):
        load_source(ApplyConfig(take_path=str(tmp_path / "a.fbx")))
    build_mixamo_armature()
    result = None
    with pytest.raises(RuntimeError, match="needs an action"):  # an operator's error reaches bpy.ops as one
        result, _ = apply(None, clip, arm_name="Mixamo", target_rest="3")
    assert result is None


def test_apply_takes_an_amass_archive_onto_a_new_rigcast_armature(addon, tmp_path):
    """An SMPL-H archive (fingers and all) applied with Create rigcast armature: the new armature's evaluated legs
    point where the archive's do."""
    import warnings

    from rigcast.formats.amass import smpl_rig
    from rigcast.retarget import RetargetOptions, detect_bone_map, retarget
    from rigcast.retarget.cli import load_source
    from smpl_archives import write_amass

    clip = first_frames(WALK, tmp_path, 24)
    original, _ = bvh_source(clip)
    hands = smpl_rig(hands=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = retarget(original, hands, detect_bone_map(hands)[0], options=RetargetOptions(foot_lock="never"))
    path = write_amass(tmp_path / "walk.npz", hands, motion, width=156)
    props = bpy.context.scene.rigcast
    props.take_path, props.create_armature, props.foot_lock, props.frame_offset = str(path), True, "NEVER", 1
    assert bpy.ops.rigcast.apply() == {'FINISHED'}
    arm = props.target
    assert arm is not None and arm.animation_data.action.name == "walk"
    from rigcast_blender.rest_pose import read_rig

    rig = read_rig(arm)
    indices = detect_bone_map(rig)[0].indices(rig)
    pose, _ = load_source(path)
    source = canonical_dict(pose.xyz)
    scene = bpy.context.scene
    world = np.array(arm.matrix_world)
    got = {k: np.empty((24, 3)) for k in ("left_hip", "left_knee", "left_ankle", "right_hip", "right_knee",
                                          "right_ankle")}
    heads = {"left_hip": "thigh.L", "left_knee": "shin.L", "left_ankle": "foot.L", "right_hip": "thigh.R",
             "right_knee": "shin.R", "right_ankle": "foot.R"}
    for t in range(24):
        scene.frame_set(1 + t)
        for point, bone in heads.items():
            head = np.array(arm.pose.bones[rig.bone_names[indices[bone]]].head)
            got[point][t] = world[:3, :3] @ head + world[:3, 3]
    legs = [(f"{s}_{a}", f"{s}_{b}") for s in ("left", "right") for a, b in (("hip", "knee"), ("knee", "ankle"))]
    median, p95, worst = summary(direction_errors(source, got, legs))
    print(f"\naccuracy add-on Apply SMPL-H archive -> new rigcast armature (legs): median {median:.3f} deg, "
          f"p95 {p95:.3f} deg")
    assert median <= 1.0 and p95 <= 3.0, f"median {median:.2f}, p95 {p95:.2f}, worst {worst}"


def test_the_retarget_panel_draws_the_new_settings(addon):
    from test_addon_panels import draw_panel

    drawn = draw_panel(addon.panels.RIGCAST_PT_retarget)
    for prop in ("source_rest", "target_rest", "bake"):
        assert ("prop", "RigcastSceneProps", prop) in drawn, prop


def test_an_optitrack_export_moves_a_generated_rigify_rig(rigify_blend, tmp_path, capsys):
    """The family whose names read least like the others (Motive's ``Skeleton1_LUArm``) through
    ``rigcast retarget`` onto the generated Rigify rig: the evaluated DEF bones follow it."""
    from rigcast.formats.bvh import read_bvh, write_bvh
    from test_retarget_families import family_clip

    full = read_bvh(family_clip("optitrack_fbx", tmp_path))
    source = tmp_path / "optitrack_48.bvh"
    write_bvh(full.with_motion(full.motion[:48]), source)
    pose, result = retarget_onto_rigify(source, rigify_blend, tmp_path, capsys)
    median, p95, worst = summary(direction_errors(canonical_dict(pose.xyz), result, LIMBS + LINES))
    print(f"\naccuracy optitrack_fbx {WALK} -> generated rigify (CLI): median {median:.3f} deg, p95 {p95:.3f} deg")
    assert median <= 1.0 and p95 <= 3.0, f"median {median:.2f}, p95 {p95:.2f}, worst {worst}"


def _with_lift(take_path: Path, tmp_path: Path) -> Path:
    """``take_path``'s Take with a 'lift' of its first track: the track's own 3D in H36M-17 order, root at 0, with
    the left wrist moved 10 cm along camera x (a lift that differs from the track where it can be seen)."""
    from rigcast.formats.take import Lift, Take
    from rigcast.skeletons import H36M_17, h36m17_from

    take = Take.load(take_path)
    track = take.tracks[0]
    xyz = h36m17_from(track.xyz, track.skeleton)
    xyz -= xyz[:, :1]
    xyz[:, H36M_17.index("left_wrist"), 0] += 0.1
    lift = Lift("lift", track.track_id, H36M_17, track.frame_index, xyz.astype(np.float32), model="videopose3d")
    return take.with_lifts((lift,)).save(tmp_path / "lifted.take.npz")


def test_apply_offers_and_uses_a_takes_lift_as_the_cli_does(addon, synthetic_take, tmp_path):
    """For a Take with lifts the panel offers the 3D points to apply; Apply with the 'lift' gives the pose
    ``rigcast retarget --source lift`` writes, and a pose other than the track's own (the moved wrist)."""
    from test_addon_panels import draw_panel

    from rigcast_blender.apply import take_lift_sources

    plain, _ = synthetic_take
    lifted = _with_lift(plain, tmp_path)
    assert take_lift_sources(str(lifted)) == ("lift",) and take_lift_sources(str(plain)) == ()
    build_mixamo_armature()
    rig_blend = saved(tmp_path, "mixamo.blend")
    out = tmp_path / "cli.blend"
    assert main([str(lifted), "--rig", str(rig_blend), "-o", str(out), "--foot-lock", "never",
                 "--source", "lift"]) == 0
    bpy.ops.wm.open_mainfile(filepath=str(out))
    arm = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
    want, arm_name = evaluated_matrices(arm, 24), arm.name

    bpy.ops.wm.open_mainfile(filepath=str(rig_blend))
    props = bpy.context.scene.rigcast
    props.take_path = str(plain)
    points = ("prop", "RigcastSceneProps", "points")
    assert points not in draw_panel(addon.panels.RIGCAST_PT_retarget)  # nothing to choose from
    props.take_path = str(lifted)
    assert points in draw_panel(addon.panels.RIGCAST_PT_retarget)
    props.points = "lift"
    result, arm = apply(None, lifted, arm_name=arm_name)
    assert result == {'FINISHED'}
    got = evaluated_matrices(arm, 24)
    assert np.abs(got - want).max() < 1e-4

    props.points = "track"
    result, arm = apply(None, lifted, arm_name=arm_name)
    own = evaluated_matrices(arm, 24)
    left_forearm = [b.name for b in arm.pose.bones].index("mixamorig:LeftForeArm")
    assert np.abs(own[:, left_forearm, :3, :3] - want[:, left_forearm, :3, :3]).max() > 0.05
    right_leg = [b.name for b in arm.pose.bones].index("mixamorig:RightLeg")
    assert np.abs(own[:, right_leg, :3, :3] - want[:, right_leg, :3, :3]).max() < 1e-3  # the wrist moved, not the leg


def test_a_lift_chosen_for_another_take_is_not_applied(addon, synthetic_take, tmp_path):
    from rigcast_blender.apply import ApplyConfig

    plain, _ = synthetic_take
    lifted = _with_lift(plain, tmp_path)
    props = bpy.context.scene.rigcast
    props.take_path = str(lifted)
    props.points = "lift"
    assert ApplyConfig.from_props(props).points == "lift"
    props.take_path = str(plain)  # no lifts: the panel shows no choice, and Apply uses the track's own points
    assert ApplyConfig.from_props(props).points == "track"
