"""``rigcast retarget``: Takes and BVH clips onto BVH rigs (pure numpy) and FBX rigs (through bpy), checked by the
directions the output's bones take against the source's."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from rigcast.camera import Intrinsics
from rigcast.formats.bvh import BvhClip, read_bvh, write_bvh
from rigcast.formats.take import Take, Track
from rigcast.frames import CV_TO_BLENDER
from rigcast.retarget import Motion, detect_bone_map, fk, pose_from_rig
from rigcast.retarget.canonical import P
from rigcast.retarget.cli import add_retarget_parser, cmd_retarget, main
from rigcast.skeletons import BLAZEPOSE_33
from rigcast.video import VideoInfo
from required import require
from test_retarget_rigs import blazepose_from_rig, metarig_rig, mixamo_rig, motion_like, unreal_rig

ROOT = Path(__file__).resolve().parent.parent
FRAMES = 40
SEGMENTS = [(f"{side}_{a}", f"{side}_{b}") for side in ("left", "right")
            for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))]


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


def canonical_points(path: Path) -> np.ndarray:
    """(T, K, 3) canonical points of the rig a BVH file animates (its own bone map, detected)."""
    rig, motion = read_bvh(path).to_rig_motion()
    return pose_from_rig(rig, detect_bone_map(rig)[0].indices(rig), fk(rig, motion)).xyz


def limb_errors(source: np.ndarray, result: np.ndarray) -> dict[str, float]:
    out = {f"{a}->{b}": float(angle_deg(source[:, P[b]] - source[:, P[a]], result[:, P[b]] - result[:, P[a]]).max())
           for a, b in SEGMENTS}
    mid = lambda x, a, b: 0.5 * (x[:, P[a]] + x[:, P[b]])  # noqa: E731
    torso = [mid(x, "left_shoulder", "right_shoulder") - mid(x, "left_hip", "right_hip") for x in (source, result)]
    out["torso"] = float(angle_deg(*torso).max())
    return out


def turned_mixamo_fbx(bpy, folder: Path, fingers: bool = True) -> Path:
    """An FBX rig: Mixamo's skeleton built in Blender, turned 40 degrees and moved, exported with the add-on's
    settings to ``folder/character.fbx``."""
    import math

    from rigcast_blender.export import export_fbx
    from rigcast_blender.rest_pose import armature_from_rig

    arm = armature_from_rig(mixamo_rig(fingers=fingers), "Character", bpy.context.scene.collection)
    arm.rotation_euler = (0.0, 0.0, math.radians(-40.0))
    arm.location = (1.0, 2.0, 0.0)
    return export_fbx(bpy.context, arm, folder / "character.fbx")


@pytest.fixture(scope="module")
def source_bvh(tmp_path_factory) -> Path:
    """An A-posed metarig moving anatomically, written with rigcast's BVH writer (30 fps)."""
    rig = metarig_rig()
    motion = motion_like(rig, detect_bone_map(rig)[0].indices(rig), FRAMES)
    path = tmp_path_factory.mktemp("bvh") / "source.bvh"
    write_bvh(BvhClip.from_rig_motion(rig, motion, frame_time=1 / 30), path)
    return path


@pytest.fixture(scope="module")
def manny_bvh(tmp_path_factory) -> Path:
    """Unreal's Manny as a BVH rest pose: other names, a root bone at the floor, 30-degree A-pose, 10 % taller."""
    rig = unreal_rig(arm_down_deg=30.0, scale=1.1)
    path = tmp_path_factory.mktemp("bvh") / "manny.bvh"
    write_bvh(BvhClip.from_rig_motion(rig, Motion.rest(rig, 1), frame_time=1 / 30), path)
    return path


def test_bvh_onto_a_bvh_rig_with_other_names_and_rest_pose(source_bvh, manny_bvh, tmp_path, capsys):
    out = tmp_path / "out.bvh"
    assert main([str(source_bvh), "-o", str(out), "--rig", str(manny_bvh), "--foot-lock", "never"]) == 0
    printed = capsys.readouterr().out
    assert "bone map:" in printed and "upper_arm.L  <- upperarm_l" in printed
    assert "wrote" in printed and str(out) in printed
    errors = limb_errors(canonical_points(source_bvh), canonical_points(out))
    assert max(errors.values()) < 2.0, errors
    clip = read_bvh(out)
    assert clip.num_frames == FRAMES and "upperarm_l" in clip.joint_names


def test_the_detected_map_is_saved_and_gives_the_same_result_when_read_back(source_bvh, manny_bvh, tmp_path, capsys):
    detected, reread, saved = tmp_path / "detected.bvh", tmp_path / "reread.bvh", tmp_path / "map.json"
    assert main([str(source_bvh), "-o", str(detected), "--rig", str(manny_bvh), "--save-map", str(saved)]) == 0
    assert f"wrote the bone map to {saved}" in capsys.readouterr().out
    assert json.loads(saved.read_text())["bones"]["upper_arm.L"] == "upperarm_l"
    assert main([str(source_bvh), "-o", str(reread), "--rig", str(manny_bvh), "--map", str(saved)]) == 0
    assert f"bone map file {saved}" in capsys.readouterr().out
    np.testing.assert_allclose(read_bvh(reread).motion, read_bvh(detected).motion, atol=1e-6)
    assert main([str(source_bvh), "-o", str(reread), "--save-map", str(tmp_path / "no" / "map.json")]) == 2
    assert "--save-map: cannot write" in capsys.readouterr().err


def test_a_take_onto_rigcasts_default_armature(tmp_path, capsys):
    rig = metarig_rig()
    indices = detect_bone_map(rig)[0].indices(rig)
    world = blazepose_from_rig(rig, indices, fk(rig, motion_like(rig, indices, 12)))
    camera = (world - [0.0, -4.0, 1.2]) @ CV_TO_BLENDER
    root = 0.5 * (camera[:, 23] + camera[:, 24])
    track = Track(track_id=3, skeleton=BLAZEPOSE_33, frame_index=np.arange(12), xy=np.zeros((12, 33, 2)),
                  xyz=camera - root[:, None], conf=np.ones((12, 33)), root_xyz=root)
    video = VideoInfo(width=320, height=240, fps=Fraction(25), frame_count=12, source="x.mp4", kind="video")
    take = Take(video=video, intrinsics=Intrinsics.from_fov(320, 240), frame_indices=np.arange(12),
                timestamps_s=np.arange(12) / 25, tracks=(track,))
    take.save(tmp_path / "t.take.npz")
    out = tmp_path / "t.bvh"
    assert main([str(tmp_path / "t.take.npz"), "-o", str(out), "--track", "3", "--map", "rigcast"]) == 0
    printed = capsys.readouterr().out
    assert "track 3" in printed and "preset rigcast" in printed and "not found on the rig: toes.L, toes.R" not in printed
    clip = read_bvh(out)
    assert clip.num_frames == 12 and clip.fps == 25
    result = canonical_points(out)
    bp = lambda n: world[:, BLAZEPOSE_33.index(n)]  # noqa: E731
    for a, b in SEGMENTS:
        assert angle_deg(bp(b) - bp(a), result[:, P[b]] - result[:, P[a]]).max() < 2.0, (a, b)


def test_rests_are_said_and_can_be_chosen_on_both_sides(source_bvh, manny_bvh, tmp_path, capsys):
    """The A-posed source and the 30-degree A-posed Manny: the rests found are printed; measured from T-poses built
    on both sides, or from the source's frame 5 and the (one-frame) rig file's frame 0, the limbs still follow."""
    for extra, said in (([], ["rest: A-pose (upper arms 45", "rest: A-pose (upper arms 30"]),
                        (["--source-rest", "tpose", "--target-rest", "tpose"],
                         ["--source-rest measures from a T-pose instead: T-pose (upper arms 0",
                          "--target-rest measures from a T-pose instead: T-pose (upper arms 0"]),
                        (["--source-rest", "5", "--target-rest", "0"],
                         ["--source-rest measures from frame 5", "--target-rest measures from frame 0"])):
        out = tmp_path / f"out{len(extra)}{extra[1] if extra else ''}.bvh"
        assert main([str(source_bvh), "-o", str(out), "--rig", str(manny_bvh), "--foot-lock", "never", *extra]) == 0
        printed = capsys.readouterr().out
        assert all(s in printed for s in said), printed
        errors = limb_errors(canonical_points(source_bvh), canonical_points(out))
        assert max(errors.values()) < 2.0, (extra, errors)
    assert main([str(source_bvh), "-o", str(tmp_path / "x.bvh"), "--target-rest", "3"]) == 2
    assert "--target-rest FRAME needs a --rig file with animation" in capsys.readouterr().err
    assert main([str(source_bvh), "-o", str(tmp_path / "x.bvh"), "--rig", str(manny_bvh), "--target-rest", "3"]) == 2
    assert "--target-rest frame must be in 0..0, got 3" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["{src}", "-o", "{tmp}/x.txt"], "-o must end in one of .bvh, .fbx, .blend"),
    (["{src}", "-o", "{tmp}/x.bvh", "--map", "nonsense"], "--map must be auto, a preset"),
    (["{src}", "-o", "{tmp}/x.bvh", "--track", "1"], "--track applies to Takes"),
    (["{tmp}/missing.bvh", "-o", "{tmp}/x.bvh"], "input not found"),
    (["{src}", "-o", "{tmp}/x.bvh", "--rig", "{tmp}/rig.obj"], "--rig must be one of"),
    (["{src}", "-o", "{tmp}/x.bvh", "--bake"], "--bake bakes a .fbx/.blend --rig's deform bones"),
    (["{src}", "-o", "{tmp}/x.bvh", "--source-rest", "apose"], "--source-rest must be auto, zero, tpose or a frame"),
    (["{src}", "-o", "{tmp}/x.bvh", "--source-rest", "999"], "--source-rest frame must be in 0..39, got 999"),
])
def test_errors_say_what_is_wrong(source_bvh, tmp_path, capsys, args, message):
    argv = [a.format(src=source_bvh, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_the_parser_wires_into_a_subcommand_table(source_bvh, tmp_path):
    parser = argparse.ArgumentParser(prog="rigcast")
    add_retarget_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["retarget", str(source_bvh), "-o", str(tmp_path / "y.bvh"), "--foot-lock", "grounding"])
    assert args.func is cmd_retarget and args.map == "auto" and args.foot_lock == "grounding"
    assert args.func(args) == 0 and (tmp_path / "y.bvh").is_file()


def test_fbx_without_blender_says_how_to_get_it(source_bvh, tmp_path):
    code = ("import sys; sys.modules['bpy'] = None\n"  # as if bpy were not installed
            "from rigcast.retarget.cli import main\n"
            f"sys.exit(main([{str(source_bvh)!r}, '-o', {str(tmp_path / 'x.fbx')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "writing .fbx needs Blender as a Python module: pip install rigcast[blender]" in done.stderr
    assert not (tmp_path / "x.fbx").exists()


def test_importing_the_command_pulls_in_no_blender():
    code = ("import sys, rigcast.retarget.cli\n"
            "print(','.join(m for m in ('bpy', 'rigcast_blender') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == ""


# --------------------------------------------------------------------------- through Blender


@pytest.fixture
def blender():
    bpy = require("bpy")
    from test_blender_addon import link_addon

    link_addon()  # rigcast_blender importable, as packaging will make it
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy


def test_bvh_onto_an_fbx_rig_through_blender(blender, source_bvh, tmp_path, capsys):
    bpy = blender
    rig_fbx = turned_mixamo_fbx(bpy, tmp_path, fingers=False)

    out = tmp_path / "out.fbx"
    assert main([str(source_bvh), "-o", str(out), "--rig", str(rig_fbx), "--map", "mixamo",
                 "--foot-lock", "never"]) == 0
    printed = capsys.readouterr().out
    assert "preset mixamo" in printed and "every canonical bone found" in printed

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30  # the source's rate, which the FBX's key times are in
    assert bpy.ops.import_scene.fbx(filepath=str(out), automatic_bone_orientation=False, anim_offset=0.0) == {'FINISHED'}
    back = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
    assert back.animation_data.action is not None
    source = canonical_points(source_bvh)
    pairs = {"LeftArm": ("left_shoulder", "left_elbow"), "LeftForeArm": ("left_elbow", "left_wrist"),
             "RightArm": ("right_shoulder", "right_elbow"), "RightForeArm": ("right_elbow", "right_wrist"),
             "LeftUpLeg": ("left_hip", "left_knee"), "LeftLeg": ("left_knee", "left_ankle"),
             "RightUpLeg": ("right_hip", "right_knee"), "RightLeg": ("right_knee", "right_ankle")}
    got = {bone: [] for bone in pairs}
    scene = bpy.context.scene
    for frame in range(FRAMES):
        scene.frame_set(1 + frame)
        for bone in pairs:
            pb = back.pose.bones[f"mixamorig:{bone}"]
            got[bone].append(np.array(back.matrix_world @ pb.tail) - np.array(back.matrix_world @ pb.head))
    for bone, (a, b) in pairs.items():
        err = angle_deg(np.array(got[bone]), source[:, P[b]] - source[:, P[a]])
        assert err.max() < 2.0, (bone, err.max())


def test_real_mocap_onto_a_mixamo_fbx_evaluated_in_blender(blender, tmp_path, capsys):
    """A real CMU walk (60 frames) onto a Mixamo-style FBX (``mixamorig:`` names, fingers, turned and moved) with
    ``--map auto``; the written FBX read back and evaluated in Blender (``matrix_world @ pose_bone.head`` after
    ``frame_set``): limbs, hip line and chest line follow the clip's, median <= 1 deg, p95 <= 3 deg."""
    bpy = blender
    from rigcast.retarget.cli import bvh_source
    from retarget_checks import LIMBS, LINES, canonical_dict, direction_errors, summary

    clip = read_bvh(ROOT / "tests" / "data" / "cmu_02_01_walk.bvh")
    source_bvh = tmp_path / "walk.bvh"
    write_bvh(clip.with_motion(clip.motion[:60]), source_bvh)
    rig_fbx = turned_mixamo_fbx(bpy, tmp_path)

    out = tmp_path / "out.fbx"
    assert main([str(source_bvh), "-o", str(out), "--rig", str(rig_fbx), "--map", "auto",
                 "--foot-lock", "never"]) == 0
    printed = capsys.readouterr().out
    assert "preset:mixamo" in printed and "every canonical bone found" in printed, printed

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 60  # the clip's rate, which the FBX's key times are in
    done = bpy.ops.import_scene.fbx(filepath=str(out), automatic_bone_orientation=False, anim_offset=0.0)
    assert done == {'FINISHED'}
    back = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
    heads = {"shoulder": "Arm", "elbow": "ForeArm", "wrist": "Hand", "hip": "UpLeg", "knee": "Leg", "ankle": "Foot",
             "toe": "ToeBase"}
    points = {f"{side.lower()}_{p}": f"mixamorig:{side}{b}" for side in ("Left", "Right") for p, b in heads.items()}
    got = {p: [] for p in points}
    for frame in range(60):
        bpy.context.scene.frame_set(1 + frame)
        for p, bone in points.items():
            got[p].append(np.array(back.matrix_world @ back.pose.bones[bone].head))
    source, _ = bvh_source(source_bvh)
    errors = direction_errors(canonical_dict(source.xyz), {p: np.array(v) for p, v in got.items()}, LIMBS + LINES)
    median, p95, worst = summary(errors)
    print(f"CMU walk onto the Mixamo FBX, evaluated in Blender: median {median:.3f}, p95 {p95:.3f} deg ({worst})")
    assert median <= 1.0 and p95 <= 3.0, f"median {median:.2f}, p95 {p95:.2f}, worst {worst}"
    moved = np.ptp(np.array(got["left_ankle"]), axis=0).max()
    assert moved > 0.3  # the character walks: what the user sees moves
