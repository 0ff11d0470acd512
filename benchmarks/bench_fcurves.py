"""Writing a 10,000-frame action on a 50-bone rig: the add-on's foreach_set writer vs a keyframe_insert loop.

    .venv/bin/python benchmarks/bench_fcurves.py [--frames 10000] [--insert-frames 500] [--repeat 3]

Same data both ways (every bone rotating, the root travelling): 50 x 4
quaternion curves + 3 location curves.  The keyframe_insert loop is timed on
the first ``--insert-frames`` frames and extrapolated linearly to the full
length (said so in the output; a lower bound, since keyframe_insert also gets
slower as curves grow: both sizes are timed to show it).  Also prints the
retarget solve time per 1,000 frames for the same rig.  Figures, no asserts.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import bpy  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from rigcast.retarget import Motion, Rig, RetargetOptions, detect_bone_map, fk, from_blazepose33, retarget  # noqa: E402
from test_retarget_rigs import blazepose_from_rig, metarig_rig, mixamo_rig, motion_like  # noqa: E402

NUM_BONES = 50


def addon_module():
    """The add-on importable as ``rigcast_blender`` (a symlink until packaging provides the name)."""
    if importlib.util.find_spec("rigcast_blender") is None:
        link_root = Path(tempfile.mkdtemp(prefix="rigcast-bench-"))
        (link_root / "rigcast_blender").symlink_to(ROOT / "blender_addon", target_is_directory=True)
        sys.path.insert(0, str(link_root))
    import rigcast_blender

    return rigcast_blender


def fifty_bone_rig() -> Rig:
    """Mixamo's skeleton with fingers (55 bones) less one pinky and the tip of the other: 50 bones."""
    rig = mixamo_rig(fingers=True, drop=("LeftHandPinky1", "RightHandPinky2")).with_name("mixamo50")
    assert rig.num_bones == NUM_BONES, rig.num_bones
    return rig


def busy_motion(rig: Rig, num_frames: int, seed: int = 0) -> Motion:
    """Every bone turning smoothly (different rates), the root travelling."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)[:, None] / 30.0
    rotvec = 0.4 * np.sin(t[..., None] * rng.uniform(0.5, 3.0, (1, rig.num_bones, 3)) + rng.uniform(0, 6, (1, rig.num_bones, 3)))
    quat = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_quat(scalar_first=True).reshape(num_frames, rig.num_bones, 4)
    root = np.concatenate([np.sin(t), 0.01 * t * 30.0 / 30.0, 0.05 * np.cos(2 * t)], axis=1)
    return Motion(quat, root, root_bone=0).with_continuous_signs()


def fresh_armature(addon, rig: Rig, name: str):
    from rigcast_blender.rest_pose import armature_from_rig

    return armature_from_rig(rig, name, bpy.context.scene.collection)


def keyframe_insert_loop(arm, rig: Rig, motion: Motion, num_frames: int) -> None:
    """The way not to do it: set each value, insert each key, frame by frame."""
    pose_bones = [arm.pose.bones[n] for n in rig.bone_names]
    root = pose_bones[motion.root_bone]
    for f in range(num_frames):
        frame = 1 + f
        for b, pb in enumerate(pose_bones):
            pb.rotation_quaternion = motion.local_quat_wxyz[f, b]
            pb.keyframe_insert("rotation_quaternion", frame=frame)
        root.location = motion.root_translation[f]
        root.keyframe_insert("location", frame=frame)


def best_of(repeat: int, setup, fn) -> float:
    """Best time of ``fn(setup())`` over ``repeat`` fresh scenes (setup untimed)."""
    times = []
    for _ in range(repeat):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        prepared = setup()
        t0 = time.perf_counter()
        fn(prepared)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--insert-frames", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    addon = addon_module()
    from rigcast_blender.animation import fcurves_of, write_bone_motion

    rig = fifty_bone_rig()
    motion = busy_motion(rig, args.frames)
    curves = 4 * rig.num_bones + 3
    keys = curves * args.frames

    fast_s = best_of(args.repeat, lambda: fresh_armature(addon, rig, "fast"),
                     lambda arm: write_bone_motion(arm, rig, motion, frame_start=1, action_name="fast"))

    small = max(args.insert_frames // 2, 1)
    slow = {}
    for n in (small, args.insert_frames):
        part = motion.select(slice(0, n))
        slow[n] = best_of(1, lambda: fresh_armature(addon, rig, "slow"),
                          lambda arm: keyframe_insert_loop(arm, rig, part, n))
    per_frame = slow[args.insert_frames] / args.insert_frames
    slow_full_s = per_frame * args.frames

    # Same numbers both ways (checked on the keyframe_insert subset).
    bpy.ops.wm.read_factory_settings(use_empty=True)
    part = motion.select(slice(0, small))
    a = fresh_armature(addon, rig, "a")
    write_bone_motion(a, rig, part, frame_start=1, action_name="a")
    b = fresh_armature(addon, rig, "b")
    keyframe_insert_loop(b, rig, part, small)
    fa = {(c.data_path, c.array_index): c for c in fcurves_of(a.animation_data.action, a)}
    fb = {(c.data_path, c.array_index): c for c in fcurves_of(b.animation_data.action, b)}
    # On the keys themselves (between keys keyframe_insert's default Bezier differs from linear by design).
    diff = max(abs(fa[k].evaluate(f) - fb[k].evaluate(f)) for k in fa for f in range(1, small + 1))

    # Retarget solve on the same rig, per 1,000 frames.
    source_rig = metarig_rig()
    sidx = detect_bone_map(source_rig)[0].indices(source_rig)
    source = from_blazepose33(blazepose_from_rig(source_rig, sidx, fk(source_rig, motion_like(source_rig, sidx, 1000))),
                              fps=30)
    bone_map, _ = detect_bone_map(rig)
    t0 = time.perf_counter()
    retarget(source, rig, bone_map, options=RetargetOptions(foot_lock="never"))
    solve_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    retarget(source, rig, bone_map, options=RetargetOptions(foot_lock="auto"))
    solve_lock_s = time.perf_counter() - t0

    print(f"bpy {bpy.app.version_string}; rig {rig.name}: {rig.num_bones} bones, {curves} fcurves, "
          f"{args.frames:,} frames = {keys:,} keys")
    print(f"foreach_set writer (animation.write_bone_motion): {fast_s:8.3f} s  "
          f"({keys / fast_s / 1e6:.1f} M keys/s, best of {args.repeat})")
    print(f"keyframe_insert loop, measured on {small} frames  : {slow[small]:8.3f} s  "
          f"({slow[small] / small * 1000:.2f} ms/frame)")
    print(f"keyframe_insert loop, measured on {args.insert_frames} frames  : {slow[args.insert_frames]:8.3f} s  "
          f"({per_frame * 1000:.2f} ms/frame)")
    print(f"keyframe_insert loop, {args.frames:,} frames EXTRAPOLATED linearly from {args.insert_frames}: "
          f"{slow_full_s:8.1f} s (a lower bound: per-frame cost grows with curve length)")
    print(f"ratio keyframe_insert / foreach_set: {slow_full_s / fast_s:,.0f}x (target >= 50x)")
    print(f"same keys both ways: max |difference| {diff:.1e}")
    print(f"retarget solve, BlazePose-33 -> {rig.num_bones}-bone rig: {solve_s * 1000:.0f} ms per 1,000 frames "
          f"(foot lock never), {solve_lock_s * 1000:.0f} ms (foot lock auto)")


if __name__ == "__main__":
    main()
