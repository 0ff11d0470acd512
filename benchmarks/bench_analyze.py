"""Analysis speed against MediaPipe, cost against the number of people, and memory on a 10x longer clip.

    .venv/bin/python benchmarks/bench_analyze.py [--frames N] [--rounds R] [--holistic] [--skip-memory]
        [--skip-people] [--skip-process]

Prints:
* frames per second of rigcast's body analysis and of MediaPipe ``solutions.pose``
  (video mode, same model complexity) on the same single-person clip, in the same run,
  and their ratio (target >= 1.0 here, goal >= 1.5);
* whole process: ``rigcast analyze --no-faces --max-people 1`` against a script running MediaPipe Pose
  over the same clip (decode included, start-up included), goal >= 1.5; with ``--holistic`` also
  ``rigcast analyze --max-people 1`` (bodies and faces) against MediaPipe Holistic
  (``refine_face_landmarks=True``), goal >= 1.0.  Each command is a fresh process, one untimed warm-up
  round first, then ``--rounds`` rounds with the commands in turn.  Printed: median and range of wall
  and of CPU seconds (user + system of all the process' threads, from ``os.wait4``: what a process costs
  on a machine whose other jobs take cores away, where wall clock swings 2x between rounds), and the
  ratio per round (each pair run back to back), as median and range;
* milliseconds per frame of the body analysis (NanoDet person boxes, the default) against the number of
  people (1, 3, 6, 10) in 1280x720 clips composed from real people (ultralytics' bus.jpg), walking, with
  CPU per frame and the split between frames where people are only followed (one landmark run each: grows
  with people) and frames where the detector also runs (its whole-frame views and tiles: set by the frame);
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
from dataclasses import dataclass
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
    """A function that runs MediaPipe Pose (video mode) over ``frames`` once and returns (frames/s, CPU ms a
    frame over all the process' threads)."""
    import mediapipe as mp

    def run() -> tuple[float, float]:
        with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=complexity) as pose:
            t0, c0 = time.perf_counter(), time.process_time()
            for f in frames:
                pose.process(f)
            return len(frames) / (time.perf_counter() - t0), (time.process_time() - c0) / len(frames) * 1000.0
    return run


def rigcast_pass(frames, model: str):
    """A function that runs rigcast's body analysis (tracking mode) over ``frames`` once and returns (frames/s,
    CPU ms a frame over all the process' threads)."""
    from rigcast.models import make_pose_models
    from rigcast.pipeline.analyze import single_threaded_libraries
    from rigcast.pipeline.body import BodyAnalyzer, BodyConfig

    detector, landmarker = make_pose_models(model, device="cpu")
    analyzer = BodyAnalyzer(detector, landmarker, BodyConfig(max_people=1))
    analyzer.process(frames[0], 0.0, analyzer.new_state())  # warm up

    def run() -> tuple[float, float]:
        state = analyzer.new_state()
        with single_threaded_libraries():  # as rigcast.pipeline.analyze.analyze runs it
            t0, c0 = time.perf_counter(), time.process_time()
            for i, f in enumerate(frames):
                analyzer.process(f, i / 30.0, state)
            return len(frames) / (time.perf_counter() - t0), (time.process_time() - c0) / len(frames) * 1000.0
    return run


def interleaved_runs(passes: dict, rounds: int) -> dict[str, list[float]]:
    """Frames/s of each pass in each of ``rounds`` rounds, the passes run in turn so that machine load hits
    all alike."""
    results: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(rounds):
        for name, run in passes.items():
            results[name].append(run())
    return results


def interleaved(passes: dict, rounds: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Frames/s and CPU ms a frame (R,) of each pass (one that returns both) over :func:`interleaved_runs`."""
    return {name: tuple(np.array(v, dtype=np.float64).T) for name, v in interleaved_runs(passes, rounds).items()}


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


@dataclass(frozen=True)
class PeopleCost:
    """Median over rounds of the body analysis' cost on one crowd clip, in ms: per frame overall, per frame
    where people were only followed (landmarks, one model run per person), per frame where the detector also
    ran (NanoDet on the whole frame and its tiles: a cost set by the frame size, not the people), and CPU per
    frame (all threads)."""

    ms_per_frame: float
    followed_ms: float
    detector_ms: float
    cpu_ms_per_frame: float
    detector_frames: int


def people_scaling(frames: int, rounds: int) -> dict[int, PeopleCost]:
    """:class:`PeopleCost` of the default body analysis (NanoDet boxes, tracking, redetect every 15 frames) on
    :func:`crowd_clip` for each count in ``PEOPLE_COUNTS``; also prints people found per frame."""
    from rigcast.models import make_pose_models
    from rigcast.pipeline.analyze import single_threaded_libraries
    from rigcast.pipeline.body import BodyAnalyzer, BodyConfig

    detector, landmarker = make_pose_models("full", device="cpu", detector="nanodet")
    analyzer = BodyAnalyzer(detector, landmarker, BodyConfig())
    print(f"  ({len(detector.views(1280, 720))} detector views of a 1280x720 frame: whole frame twice, then tiles)")
    result = {}
    for people in PEOPLE_COUNTS:
        clip = crowd_clip(people, frames)
        per_frame, followed, detecting, cpu, found, detections = [], [], [], [], [], 0
        for _ in range(rounds):
            state = analyzer.new_state()
            with single_threaded_libraries():
                times, ran = [], []
                c0 = time.process_time()
                for i, frame in enumerate(clip):
                    t0 = time.perf_counter()
                    records, detected = analyzer.process(frame, i / 30.0, state)
                    times.append(time.perf_counter() - t0)
                    ran.append(detected)
                    found.append(len(records))
                cpu.append((time.process_time() - c0) / len(clip) * 1000.0)
            times, ran = np.array(times) * 1000.0, np.array(ran)
            per_frame.append(times.mean())
            followed.append(np.median(times[~ran]) if (~ran).any() else np.nan)
            detecting.append(np.median(times[ran]))
            detections = int(ran.sum())
        cost = PeopleCost(float(np.median(per_frame)), float(np.median(followed)), float(np.median(detecting)),
                          float(np.median(cpu)), detections)
        result[people] = cost
        print(f"  {people:2d} people at 1280x720: {cost.ms_per_frame:6.1f} ms/frame ({cost.cpu_ms_per_frame:6.1f} CPU); "
              f"followed frames {cost.followed_ms:6.1f} ms, {cost.detector_frames} detector frames "
              f"{cost.detector_ms:6.1f} ms; found {np.mean(found):.1f} per frame (min {min(found)}, max {max(found)})")
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


@dataclass(frozen=True)
class ProcessTimes:
    """Seconds of one command over the interleaved rounds: wall clock and CPU (user + system, all threads)."""

    wall_s: tuple[float, ...]
    cpu_s: tuple[float, ...]

    @property
    def wall(self) -> float:
        return float(np.median(self.wall_s))

    @property
    def cpu(self) -> float:
        return float(np.median(self.cpu_s))

    def spread(self) -> str:
        """``median [min-max]`` of wall and CPU seconds, for printing."""
        return (f"wall {self.wall:.2f} s [{min(self.wall_s):.2f}-{max(self.wall_s):.2f}], "
                f"CPU {self.cpu:.2f} s [{min(self.cpu_s):.2f}-{max(self.cpu_s):.2f}]")


def paired_ratio(theirs: ProcessTimes, ours: ProcessTimes, of: str = "wall_s") -> tuple[float, float, float]:
    """Median, min and max over rounds of ``theirs / ours`` seconds (``of`` "wall_s" or "cpu_s"), each round's
    pair run back to back: on a shared machine a load that comes and goes falls on both of a pair alike."""
    ratios = np.asarray(getattr(theirs, of)) / np.asarray(getattr(ours, of))
    return float(np.median(ratios)), float(ratios.min()), float(ratios.max())


def _run_child(cmd: list[str], env: dict[str, str] | None) -> tuple[float, float]:
    """(wall, CPU) seconds of ``cmd`` run to its end as a child process; raises if it fails."""
    t0 = time.perf_counter()
    child = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)  # the child's own rusage: user + system time of all its threads
    wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, cmd, stderr=err)
    return wall, usage.ru_utime + usage.ru_stime


def timed_process_runs(commands: dict[str, tuple[list[str], dict | None]], rounds: int) -> dict[str, ProcessTimes]:
    """Wall and CPU seconds of each ``(command, environment)``, each a fresh process, run in turn ``rounds``
    times so that machine load hits all alike, after one untimed warm-up round.

    The warm-up and every timed run may write bytecode (``PYTHONDONTWRITEBYTECODE`` is dropped from the
    children's environment): an installed rigcast, like MediaPipe, ships compiled, and a source checkout
    compiles once; a session that forbids bytecode would otherwise charge rigcast 0.25 s of compiling
    per process that no user pays."""
    runs = {name: (cmd, {k: v for k, v in (env or os.environ).items() if k != "PYTHONDONTWRITEBYTECODE"})
            for name, (cmd, env) in commands.items()}
    for cmd, env in runs.values():
        _run_child(cmd, env)
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (cmd, env) in runs.items():
            w, c = _run_child(cmd, env)
            wall[name].append(w)
            cpu[name].append(c)
    return {name: ProcessTimes(tuple(wall[name]), tuple(cpu[name])) for name in commands}


def timed_runs(commands: dict[str, tuple[list[str], dict | None]], rounds: int) -> dict[str, float]:
    """Median wall seconds of each command of :func:`timed_process_runs`."""
    return {name: t.wall for name, t in timed_process_runs(commands, rounds).items()}


HOLISTIC_SCRIPT = """
import sys, av, mediapipe as mp
with av.open(sys.argv[1]) as c, mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1,
                                                               refine_face_landmarks=True) as holistic:
    for f in c.decode(video=0):
        holistic.process(f.to_ndarray(format="rgb24"))
"""


def whole_process(clip: Path, out: Path, rounds: int, baseline: dict[str, str] | None = None,
                  holistic: bool = False) -> dict[str, ProcessTimes]:
    """Wall and CPU seconds of ``rigcast analyze --no-faces --max-people 1`` ("rigcast") and of MediaPipe Pose
    (video mode, complexity 1, "mediapipe") over ``clip``, each a fresh process (start-up, decoding and writing
    included), interleaved; with ``holistic``, also ``rigcast analyze --max-people 1`` (bodies and faces,
    "rigcast_faces") and MediaPipe Holistic (``refine_face_landmarks=True``, "holistic"); with ``baseline`` (an
    environment, see :func:`baseline_env`), also that rigcast's ("baseline", "baseline_faces")."""
    analyze = [sys.executable, "-m", "rigcast", "analyze", str(clip), "-o", str(out), "--max-people", "1", "--restart"]
    commands = {"rigcast": (analyze + ["--no-faces"], None),
                "mediapipe": ([sys.executable, "-c", MEDIAPIPE_SCRIPT, str(clip)], None)}
    if baseline is not None:
        commands["baseline"] = (analyze + ["--no-faces"], baseline)
    if holistic:
        commands["rigcast_faces"] = (analyze, None)
        commands["holistic"] = ([sys.executable, "-c", HOLISTIC_SCRIPT, str(clip)], None)
        if baseline is not None:
            commands["baseline_faces"] = (analyze, baseline)
    return timed_process_runs(commands, rounds)


def _report_against(name: str, ours: ProcessTimes, theirs: ProcessTimes, goal: float) -> dict:
    """Print and return ``theirs / ours`` (median of per-round ratios, wall and CPU) with both timings."""
    wall, wall_lo, wall_hi = paired_ratio(theirs, ours, "wall_s")
    cpu, cpu_lo, cpu_hi = paired_ratio(theirs, ours, "cpu_s")
    print(f"  {name}: {ours.spread()}\n    ratio {wall:.2f} wall [{wall_lo:.2f}-{wall_hi:.2f}], {cpu:.2f} CPU "
          f"[{cpu_lo:.2f}-{cpu_hi:.2f}] (goal >= {goal})")
    return {"wall_s": round(ours.wall, 2), "cpu_s": round(ours.cpu, 2),
            "wall_s_range": [round(min(ours.wall_s), 2), round(max(ours.wall_s), 2)],
            "ratio_wall": round(wall, 3), "ratio_wall_range": [round(wall_lo, 3), round(wall_hi, 3)],
            "ratio_cpu": round(cpu, 3), "ratio_cpu_range": [round(cpu_lo, 3), round(cpu_hi, 3)]}


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
    ap.add_argument("--holistic", action="store_true", help="also time rigcast analyze --max-people 1 with faces "
                                                                "against MediaPipe Holistic, whole process")
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
        runs = interleaved({"rigcast": rigcast_pass(frames, args.model),
                            "mediapipe": mediapipe_pass(frames, complexity)}, args.rounds)
        (fps_ours, cpu_ours), (fps_theirs, cpu_theirs) = runs["rigcast"], runs["mediapipe"]
        ours, theirs = float(np.median(fps_ours)), float(np.median(fps_theirs))
        ratio, cpu_ratio = fps_ours / fps_theirs, cpu_theirs / cpu_ours  # per round
        results["speed"] = {"clip": "carphone 640x480", "frames": args.frames, "model": args.model,
                            "rigcast_fps": round(ours, 2), "mediapipe_fps": round(theirs, 2),
                            "rigcast_cpu_ms": round(float(np.median(cpu_ours)), 2),
                            "mediapipe_cpu_ms": round(float(np.median(cpu_theirs)), 2),
                            "ratio": round(float(np.median(ratio)), 3),
                            "ratio_range": [round(float(ratio.min()), 3), round(float(ratio.max()), 3)],
                            "cpu_ratio": round(float(np.median(cpu_ratio)), 3)}
        print(f"analysis speed in process ({args.frames} frames 640x480, {args.model}, {args.rounds} interleaved "
              f"rounds, median [min-max]): rigcast {ours:.1f} fps [{fps_ours.min():.1f}-{fps_ours.max():.1f}], "
              f"{np.median(cpu_ours):.1f} CPU ms a frame; MediaPipe {theirs:.1f} fps [{fps_theirs.min():.1f}-"
              f"{fps_theirs.max():.1f}], {np.median(cpu_theirs):.1f} CPU ms a frame; ratio {np.median(ratio):.2f} "
              f"[{ratio.min():.2f}-{ratio.max():.2f}] wall, {np.median(cpu_ratio):.2f} CPU "
              f"(target >= 1.0, goal >= 1.5)")
        if not args.skip_process:
            t = whole_process(clip, tmp / "process.npz", args.rounds, baseline, holistic=args.holistic)
            print(f"whole process ({args.frames} frames 640x480, {args.rounds} interleaved rounds after a warm-up; "
                  f"median [min-max]; ratios per round, then their median):")
            print(f"  MediaPipe Pose: {t['mediapipe'].spread()}")
            whole = {"clip": "carphone 640x480", "frames": args.frames, "rounds": args.rounds,
                     "mediapipe_wall_s": round(t["mediapipe"].wall, 2), "mediapipe_cpu_s": round(t["mediapipe"].cpu, 2),
                     "rigcast": _report_against("rigcast analyze --no-faces --max-people 1", t["rigcast"],
                                                t["mediapipe"], 1.5)}
            if baseline is not None:
                whole["baseline"] = _report_against(f"baseline ({args.baseline_pythonpath})", t["baseline"],
                                                    t["mediapipe"], 1.5)
            if args.holistic:
                print(f"  MediaPipe Holistic (refine_face_landmarks=True): {t['holistic'].spread()}")
                whole["holistic_wall_s"] = round(t["holistic"].wall, 2)
                whole["holistic_cpu_s"] = round(t["holistic"].cpu, 2)
                whole["rigcast_faces"] = _report_against("rigcast analyze --max-people 1 (bodies and faces)",
                                                         t["rigcast_faces"], t["holistic"], 1.0)
                if baseline is not None:
                    whole["baseline_faces"] = _report_against(f"baseline ({args.baseline_pythonpath}), faces",
                                                              t["baseline_faces"], t["holistic"], 1.0)
            results["whole_process"] = whole
        if not args.skip_people:
            print(f"cost against people ({args.people_frames} frames each, median of {args.rounds} runs):")
            cost = people_scaling(args.people_frames, args.rounds)
            first, last = cost[PEOPLE_COUNTS[0]], cost[PEOPLE_COUNTS[-1]]
            extra = PEOPLE_COUNTS[-1] - PEOPLE_COUNTS[0]
            results["people"] = {"size": "1280x720", "person_height_px": 240, "frames": args.people_frames,
                                 "ms_per_frame": {str(k): round(v.ms_per_frame, 1) for k, v in cost.items()},
                                 "cpu_ms_per_frame": {str(k): round(v.cpu_ms_per_frame, 1) for k, v in cost.items()},
                                 "followed_ms": {str(k): round(v.followed_ms, 1) for k, v in cost.items()},
                                 "detector_frame_ms": {str(k): round(v.detector_ms, 1) for k, v in cost.items()},
                                 "ms_per_extra_person": round((last.ms_per_frame - first.ms_per_frame) / extra, 1),
                                 "followed_ms_per_extra_person": round((last.followed_ms - first.followed_ms) / extra, 1)}
            print(f"  per extra person: {results['people']['ms_per_extra_person']} ms a frame overall, "
                  f"{results['people']['followed_ms_per_extra_person']} ms a followed frame")
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
