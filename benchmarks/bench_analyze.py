"""Analysis speed against MediaPipe, cost against the number of people, and memory on a 10x longer clip.

    .venv/bin/python benchmarks/bench_analyze.py [--frames N] [--skip-memory] [--skip-people] [--skip-process]

Prints:
* frames per second of rigcast's body analysis and of MediaPipe ``solutions.pose``
  (video mode, same model complexity) on the same single-person clip, in the same run,
  and their ratio (target >= 1.0 here, goal >= 1.5);
* whole process, wall clock: ``rigcast analyze --no-faces --max-people 1`` against a script running
  MediaPipe Pose over the same clip (decode included, start-up included), interleaved (goal >= 1.5);
* milliseconds per frame of the body analysis (NanoDet person boxes, the default) against the number of
  people (1, 3, 6, 10) in 1280x720 clips composed from real people (ultralytics' bus.jpg), walking;
* peak RSS of ``rigcast analyze`` on a clip and on the same clip repeated 10x
  (target: long <= 1.2x short).

``--baseline-pythonpath DIR`` adds another rigcast to the whole-process runs, interleaved with the others:
the one ``DIR`` holds as ``DIR/rigcast`` (for instance a link to ``core/`` of a ``git worktree`` of an older
commit, with ``core/assets`` linked to its ``assets/``), so that before and after are timed under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import footage  # noqa: E402


def single_person_clip(directory: Path, frames: int) -> Path:
    """Carphone upscaled to 640x480 (a person filling the frame), looped to ``frames``."""
    import av
    import cv2

    src = []
    with av.open(str(footage.carphone())) as c:
        for f in c.decode(video=0):
            src.append(cv2.resize(f.to_ndarray(format="rgb24"), (640, 480), interpolation=cv2.INTER_LINEAR))
    seq = [src[i % len(src)] if (i // len(src)) % 2 == 0 else src[len(src) - 1 - i % len(src)] for i in range(frames)]
    return footage.write_video(directory / f"single_{frames}.mp4", seq)


def decode(path: Path):
    import av

    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            yield f.to_ndarray(format="rgb24")


def mediapipe_pass(frames, complexity: int):
    """A function that runs MediaPipe Pose (video mode) over ``frames`` once and returns frames/s."""
    import mediapipe as mp

    def run() -> float:
        with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=complexity) as pose:
            t0 = time.perf_counter()
            for f in frames:
                pose.process(f)
            return len(frames) / (time.perf_counter() - t0)
    return run


def rigcast_pass(frames, model: str):
    """A function that runs rigcast's body analysis (tracking mode) over ``frames`` once and returns frames/s."""
    from rigcast.models import make_pose_models
    from rigcast.pipeline.analyze import single_threaded_libraries
    from rigcast.pipeline.body import BodyAnalyzer, BodyConfig

    detector, landmarker = make_pose_models(model, device="cpu")
    analyzer = BodyAnalyzer(detector, landmarker, BodyConfig(max_people=1))
    analyzer.process(frames[0], 0.0, analyzer.new_state())  # warm up

    def run() -> float:
        state = analyzer.new_state()
        with single_threaded_libraries():  # as rigcast.pipeline.analyze.analyze runs it
            t0 = time.perf_counter()
            for i, f in enumerate(frames):
                analyzer.process(f, i / 30.0, state)
            return len(frames) / (time.perf_counter() - t0)
    return run


def interleaved_runs(passes: dict, rounds: int) -> dict[str, list[float]]:
    """Frames/s of each pass in each of ``rounds`` rounds, the passes run in turn so that machine load hits
    all alike."""
    results: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(rounds):
        for name, run in passes.items():
            results[name].append(run())
    return results


def interleaved(passes: dict, rounds: int) -> dict[str, float]:
    """Median frames/s of each pass over :func:`interleaved_runs`."""
    return {name: float(np.median(v)) for name, v in interleaved_runs(passes, rounds).items()}


PEOPLE_COUNTS = (1, 3, 6, 10)
# Full-body people of ultralytics' bus.jpg (by-eye boxes, as in tests/test_persons.py).
BUS_PEOPLE = ((45, 390, 245, 895), (232, 395, 345, 860))


def crowd_clip(people: int, frames: int, width: int = 1280, height: int = 720,
               person_height: int = 240) -> list[np.ndarray]:
    """``frames`` RGB frames of ``people`` real people (crops of bus.jpg, ``person_height`` px tall, 1/3 of the
    frame) walking across a person-free backdrop, in two rows of up to five."""
    import fixtures_images as images

    bus = images.package_photo("bus")
    crops = [images.resized(np.ascontiguousarray(bus[y0:y1, x0:x1]), person_height) for x0, y0, x1, y1 in BUS_PEOPLE]
    backdrop = images.background(height, width)
    out = []
    for f in range(frames):
        canvas = backdrop
        for k in range(people):
            crop = crops[k % len(crops)]
            row, col = divmod(k, 5)
            x = int(40 + col * (width - 80) / 5 + 2 * f) % (width - crop.shape[1])
            y = 40 + row * (height - person_height - 80)
            canvas = images.paste(canvas, crop, (x, y))
        out.append(np.ascontiguousarray(canvas))
    return out


def people_scaling(frames: int, rounds: int) -> dict[int, float]:
    """Median ms per frame of the default body analysis (NanoDet boxes, tracking, redetect every 15 frames) on
    :func:`crowd_clip` for each count in ``PEOPLE_COUNTS``; also prints people found per frame."""
    from rigcast.models import make_pose_models
    from rigcast.pipeline.analyze import single_threaded_libraries
    from rigcast.pipeline.body import BodyAnalyzer, BodyConfig

    detector, landmarker = make_pose_models("full", device="cpu", detector="nanodet")
    analyzer = BodyAnalyzer(detector, landmarker, BodyConfig())
    result = {}
    for people in PEOPLE_COUNTS:
        clip = crowd_clip(people, frames)
        times, found = [], []
        for _ in range(rounds):
            state = analyzer.new_state()
            with single_threaded_libraries():
                t0 = time.perf_counter()
                for i, frame in enumerate(clip):
                    records, _ = analyzer.process(frame, i / 30.0, state)
                    found.append(len(records))
                times.append((time.perf_counter() - t0) / len(clip) * 1000.0)
        result[people] = float(np.median(times))
        print(f"  {people:2d} people at 1280x720: {result[people]:6.1f} ms/frame, "
              f"found {np.mean(found):.1f} per frame (min {min(found)}, max {max(found)})")
    return result


MEDIAPIPE_SCRIPT = """
import sys, time, av, mediapipe as mp
with av.open(sys.argv[1]) as c, mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
    for f in c.decode(video=0):
        pose.process(f.to_ndarray(format="rgb24"))
"""


def baseline_env(pythonpath: str | None) -> dict[str, str] | None:
    """The environment of a process that imports the rigcast in ``pythonpath`` (None: no baseline)."""
    if pythonpath is None:
        return None
    if not (Path(pythonpath) / "rigcast" / "__init__.py").is_file():
        raise SystemExit(f"--baseline-pythonpath: expected {pythonpath}/rigcast/__init__.py, found none")
    return {**os.environ, "PYTHONPATH": str(Path(pythonpath).resolve())}


def timed_runs(commands: dict[str, tuple[list[str], dict | None]], rounds: int) -> dict[str, float]:
    """Median wall seconds of each ``(command, environment)``, each a fresh process, run in turn ``rounds``
    times so that machine load hits all alike."""
    seconds: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (cmd, env) in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            seconds[name].append(time.perf_counter() - t0)
    return {name: float(np.median(v)) for name, v in seconds.items()}


def whole_process(clip: Path, out: Path, rounds: int, baseline: dict[str, str] | None = None) -> dict[str, float]:
    """Median wall seconds of ``rigcast analyze --no-faces --max-people 1`` and of MediaPipe Pose (video mode,
    complexity 1) over ``clip``, each a fresh process (start-up, decoding and writing included), interleaved;
    with ``baseline`` (an environment, see :func:`baseline_env`), also that rigcast's."""
    analyze = [sys.executable, "-m", "rigcast", "analyze", str(clip), "-o", str(out), "--no-faces",
               "--max-people", "1", "--restart"]
    commands = {"rigcast": (analyze, None), "mediapipe": ([sys.executable, "-c", MEDIAPIPE_SCRIPT, str(clip)], None)}
    if baseline is not None:
        commands["baseline"] = (analyze, baseline)
    return timed_runs(commands, rounds)


def peak_rss_mb(path: Path, out: Path) -> float:
    code = ("import resource, sys\nfrom rigcast.pipeline.analyze import analyze, AnalyzeConfig\n"
            f"analyze({str(path)!r}, {str(out)!r}, AnalyzeConfig(max_people=1))\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--model", default="full", choices=("lite", "full", "heavy"))
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-people", action="store_true")
    ap.add_argument("--skip-process", action="store_true")
    ap.add_argument("--people-frames", type=int, default=60, help="frames of each crowd clip")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved runs of each pipeline (median reported)")
    ap.add_argument("--baseline-pythonpath", help="also time the rigcast this folder holds, whole process "
                                                  "(see the module docstring)")
    args = ap.parse_args()
    baseline = baseline_env(args.baseline_pythonpath)
    complexity = {"lite": 0, "full": 1, "heavy": 2}[args.model]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = single_person_clip(tmp, args.frames)
        frames = list(decode(clip))
        fps = interleaved({"rigcast": rigcast_pass(frames, args.model),
                           "mediapipe": mediapipe_pass(frames, complexity)}, args.rounds)
        ours, theirs = fps["rigcast"], fps["mediapipe"]
        results["speed"] = {"clip": "carphone 640x480", "frames": args.frames, "model": args.model,
                            "rigcast_fps": round(ours, 2), "mediapipe_fps": round(theirs, 2),
                            "ratio": round(ours / theirs, 3)}
        print(f"analysis speed ({args.frames} frames 640x480, {args.model}, median of {args.rounds} interleaved runs): "
              f"rigcast {ours:.1f} fps, "
              f"MediaPipe {theirs:.1f} fps, ratio {ours / theirs:.2f} (target >= 1.0, goal >= 1.5)")
        if not args.skip_process:
            sec = whole_process(clip, tmp / "process.npz", args.rounds, baseline)
            results["whole_process"] = {"clip": "carphone 640x480", "frames": args.frames,
                                        "rigcast_s": round(sec["rigcast"], 2), "mediapipe_s": round(sec["mediapipe"], 2),
                                        "ratio": round(sec["mediapipe"] / sec["rigcast"], 3)}
            print(f"whole process ({args.frames} frames 640x480, median of {args.rounds} interleaved runs): "
                  f"rigcast analyze --no-faces --max-people 1 {sec['rigcast']:.2f} s, MediaPipe Pose "
                  f"{sec['mediapipe']:.2f} s, ratio {sec['mediapipe'] / sec['rigcast']:.2f} (goal >= 1.5)")
            if baseline is not None:
                results["whole_process"].update(baseline_s=round(sec["baseline"], 2),
                                                 baseline_ratio=round(sec["mediapipe"] / sec["baseline"], 3))
                print(f"  baseline ({args.baseline_pythonpath}) {sec['baseline']:.2f} s, ratio "
                      f"{sec['mediapipe'] / sec['baseline']:.2f}")
        if not args.skip_people:
            print(f"cost against people ({args.people_frames} frames each, median of {args.rounds} runs):")
            ms = people_scaling(args.people_frames, args.rounds)
            results["people"] = {"size": "1280x720", "person_height_px": 240, "frames": args.people_frames,
                                 "ms_per_frame": {str(k): round(v, 1) for k, v in ms.items()},
                                 "ms_per_extra_person": round((ms[PEOPLE_COUNTS[-1]] - ms[PEOPLE_COUNTS[0]])
                                                              / (PEOPLE_COUNTS[-1] - PEOPLE_COUNTS[0]), 1)}
        if not args.skip_memory:
            long_clip = single_person_clip(tmp, args.frames * 10)
            short_mb = peak_rss_mb(clip, tmp / "short.npz")
            long_mb = peak_rss_mb(long_clip, tmp / "long.npz")
            results["memory"] = {"short_frames": args.frames, "short_peak_rss_mb": round(short_mb, 1),
                                 "long_frames": args.frames * 10, "long_peak_rss_mb": round(long_mb, 1),
                                 "ratio": round(long_mb / short_mb, 3)}
            print(f"peak RSS: {args.frames} frames {short_mb:.0f} MB, {args.frames * 10} frames {long_mb:.0f} MB, "
                  f"ratio {long_mb / short_mb:.2f} (target <= 1.2)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
