"""Retarget solve time per 1,000 frames on a 55-bone rig (Mixamo's skeleton with fingers).

    .venv/bin/python benchmarks/bench_retarget.py [--frames N] [--repeat R]

Prints, per 1,000 frames (best of R runs):
* the rotation solve alone (foot_lock="never") from BlazePose-33 points;
* the same with foot contact, grounding and locking (foot_lock="always");
* bone-map detection (once per rig, not per frame) and FK, for scale;
* real mocap (the CMU clips in tests/data, the Mixamo-with-fingers and MocapBank clips from bvhtoolbox's sdist)
  onto the Unreal-proportioned rig: reading the BVH into canonical points, then the solve in frames per second
  with and without foot locking (``auto``);
* the accuracy table: each clip onto every preset rig with ``foot_lock="never"``, world directions of limbs,
  hip line and chest line against the source's, median and p95 in degrees (the tests' check).
No asserts: these are figures to watch, not limits.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from test_retarget_rigs import blazepose_from_rig, metarig_rig, mixamo_rig, motion_like, unreal_rig  # noqa: E402

from rigcast.retarget import RetargetOptions, detect_bone_map, fk, from_blazepose33, retarget  # noqa: E402


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    source_rig = metarig_rig()
    sidx = detect_bone_map(source_rig)[0].indices(source_rig)
    pose = fk(source_rig, motion_like(source_rig, sidx, args.frames))
    source = from_blazepose33(blazepose_from_rig(source_rig, sidx, pose), fps=30)

    rig = mixamo_rig()
    detect_s = best_of(args.repeat, lambda: detect_bone_map(rig))
    bone_map, _ = detect_bone_map(rig)
    per_k = 1000.0 / args.frames
    solve_s = best_of(args.repeat, lambda: retarget(source, rig, bone_map, options=RetargetOptions(foot_lock="never")))
    lock_s = best_of(args.repeat, lambda: retarget(source, rig, bone_map, options=RetargetOptions(foot_lock="always")))
    motion = retarget(source, rig, bone_map, options=RetargetOptions(foot_lock="never"))
    fk_s = best_of(args.repeat, lambda: fk(rig, motion))

    print(f"rig: {rig.name}, {rig.num_bones} bones ({len(bone_map.bones)} driven); source: BlazePose-33, "
          f"{args.frames} frames")
    print(f"retarget, no foot locking : {solve_s * per_k * 1000:8.1f} ms per 1,000 frames")
    print(f"retarget, foot locking    : {lock_s * per_k * 1000:8.1f} ms per 1,000 frames")
    print(f"forward kinematics        : {fk_s * per_k * 1000:8.1f} ms per 1,000 frames")
    print(f"detect_bone_map (per rig) : {detect_s * 1000:8.1f} ms")
    real_mocap(args.repeat)
    accuracy_table()


def real_mocap(repeat: int) -> None:
    """Frames per second of the solve on the real clips in tests/data, with and without foot locking."""
    import warnings

    from rigcast.retarget.cli import bvh_source

    from retarget_checks import CLIPS, clip_path

    rig = unreal_rig()
    bone_map, _ = detect_bone_map(rig)
    for clip in map(clip_path, CLIPS):
        read_s = best_of(repeat, lambda: bvh_source(clip))
        pose, _ = bvh_source(clip)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fps = {mode: pose.num_frames / best_of(repeat, lambda: retarget(
                pose, rig, bone_map, options=RetargetOptions(foot_lock=mode))) for mode in ("never", "auto")}
        print(f"{clip.name} ({pose.num_frames} frames) onto {rig.name}: read {read_s * 1000:.0f} ms; solve "
              f"{fps['never']:,.0f} fps without foot lock, {fps['auto']:,.0f} fps with foot_lock=auto")



def accuracy_table() -> None:
    """Median / p95 degrees of world directions (limbs, hip line, chest line) per real clip and preset rig."""
    import warnings

    from rigcast.retarget import pose_from_rig
    from rigcast.retarget.cli import bvh_source
    from retarget_checks import CLIPS, LIMBS, LINES, canonical_dict, clip_path, direction_errors, summary
    from test_retarget_mocap import RIGS

    print("\naccuracy, foot_lock=never: median / p95 deg over limbs, hip and chest lines")
    print(f"{'clip':<28}" + "".join(f"{name:>17}" for name in RIGS))
    rigs = {name: build() for name, build in RIGS.items()}
    for clip in CLIPS:
        pose, _ = bvh_source(clip_path(clip))
        cells = []
        for rig in rigs.values():
            bone_map, _ = detect_bone_map(rig)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                motion = retarget(pose, rig, bone_map, options=RetargetOptions(foot_lock="never"))
            result = pose_from_rig(rig, bone_map.indices(rig), fk(rig, motion)).xyz
            median, p95, _ = summary(direction_errors(canonical_dict(pose.xyz), canonical_dict(result),
                                                      LIMBS + LINES))
            cells.append(f"{median:.2f} / {p95:.2f}")
        print(f"{clip:<28}" + "".join(f"{c:>17}" for c in cells))


if __name__ == "__main__":
    main()
