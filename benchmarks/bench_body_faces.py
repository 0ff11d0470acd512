"""What faces cost on a clip without a findable face, and rigcast against MediaPipe Holistic, whole process.

    .venv/bin/python benchmarks/bench_body_faces.py [--frames N] [--rounds R]

The clip: ``--frames`` frames (300) of 512 x 512, three people from ultralytics' ``bus.jpg`` cut out as
rectangles about 100 px tall (faces about 10 px: none findable) walking across scikit-image's coffee
backdrop.  Prints, as the median of ``--rounds`` interleaved runs (after a warm-up round, see
``bench_analyze.timed_process_runs``), the wall time of whole processes:

* ``rigcast analyze`` by default against ``--no-faces`` (before faces came from bodies and the face
  detector ran on a cadence: 17.8 s against 10.7 s on a clip like it);
* ``rigcast analyze --max-people 1`` (bodies and faces) against MediaPipe Holistic
  (``refine_face_landmarks=True``, video mode, decoding the same clip with PyAV): wall and CPU seconds
  (median and range) and the ratio of Holistic's to rigcast's per round, target >= 1.0.

``--baseline-pythonpath DIR`` also times another rigcast's ``--max-people 1`` run, interleaved with the
others (see benchmarks/bench_analyze.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import footage  # noqa: E402
from bench_analyze import baseline_env, paired_ratio, timed_process_runs  # noqa: E402
from fixtures_images import background, package_photo  # noqa: E402

# Three people of bus.jpg (810 x 1080), head to shoes, as [x0, y0, x1, y1] px.
BUS_PEOPLE = ((40, 400, 230, 910), (220, 400, 350, 880), (660, 370, 810, 880))

HOLISTIC = """
import sys, av, mediapipe as mp
with mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1, refine_face_landmarks=True) as h, \\
        av.open(sys.argv[1]) as c:
    for f in c.decode(video=0):
        h.process(f.to_ndarray(format="rgb24"))
"""


def walkers_clip(directory: Path, frames: int, size: int = 512, height: int = 100) -> Path:
    """The benchmark's clip (see the module docstring), written as H.264."""
    import cv2

    bus = package_photo("bus")
    people = []
    for x0, y0, x1, y1 in BUS_PEOPLE:
        crop = bus[y0:y1, x0:x1]
        people.append(cv2.resize(crop, (round(crop.shape[1] * height / crop.shape[0]), height),
                                 interpolation=cv2.INTER_AREA))
    backdrop = background(size, size)
    lanes = (60, 200, 340)  # top rows of the three walkers
    seq = []
    for t in range(frames):
        canvas = backdrop.copy()
        for k, (person, top) in enumerate(zip(people, lanes)):
            span = size - person.shape[1]
            phase = (t / frames + k / 3.0) % 1.0  # each crosses once, and back, at its own offset
            x = round(span * (2 * phase if phase < 0.5 else 2 - 2 * phase))
            canvas[top:top + height, x:x + person.shape[1]] = person
        seq.append(canvas)
    return footage.write_video(directory / f"walkers_{frames}.mp4", seq)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved runs of each command (median reported)")
    ap.add_argument("--baseline-pythonpath", help="also time the rigcast this folder holds (--max-people 1)")
    args = ap.parse_args()
    baseline = baseline_env(args.baseline_pythonpath)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = str(walkers_clip(tmp, args.frames))
        analyze = [py, "-m", "rigcast", "analyze", clip, "-o", str(tmp / "take.npz"), "--restart"]
        commands = {"default": (analyze, None), "no_faces": (analyze + ["--no-faces"], None),
                    "max_people_1": (analyze + ["--max-people", "1"], None),
                    "holistic": ([py, "-c", HOLISTIC, clip], None)}
        if baseline is not None:
            commands["baseline_max_people_1"] = (analyze + ["--max-people", "1"], baseline)
        t = timed_process_runs(commands, args.rounds)
        s = {name: times.wall for name, times in t.items()}
        subprocess.run(analyze, check=True, capture_output=True)
        from rigcast.formats.take import Take

        take = Take.load(tmp / "take.npz")
    print(f"{args.frames} frames 512x512, three ~100-px walkers from bus.jpg, median of {args.rounds} interleaved "
          f"whole-process runs (default run found {len(take.tracks)} bodies, {len(take.faces)} faces; "
          f"face detector on {take.meta['detector_frames'].get('face')} frames):")
    print(f"  rigcast analyze: default {s['default']:.1f} s, --no-faces {s['no_faces']:.1f} s "
          f"(faces cost {s['default'] - s['no_faces']:.1f} s; was 17.8 against 10.7 s)")
    wall, wall_lo, wall_hi = paired_ratio(t["holistic"], t["max_people_1"], "wall_s")
    cpu, cpu_lo, cpu_hi = paired_ratio(t["holistic"], t["max_people_1"], "cpu_s")
    print(f"  rigcast analyze --max-people 1 {t['max_people_1'].spread()}\n  MediaPipe Holistic (refined face) "
          f"{t['holistic'].spread()}\n  ratio per round {wall:.2f} wall [{wall_lo:.2f}-{wall_hi:.2f}], {cpu:.2f} CPU "
          f"[{cpu_lo:.2f}-{cpu_hi:.2f}] (target >= 1.0)")
    if baseline is not None:
        print(f"  baseline ({args.baseline_pythonpath}) --max-people 1 {s['baseline_max_people_1']:.1f} s: ratio "
              f"{s['holistic'] / s['baseline_max_people_1']:.2f}")
    print(json.dumps({"frames": args.frames, "rounds": args.rounds, "seconds": {k: round(v, 2) for k, v in s.items()},
                      "cpu_seconds": {k: round(v.cpu, 2) for k, v in t.items()},
                      "holistic_over_rigcast": round(wall, 3), "holistic_over_rigcast_cpu": round(cpu, 3),
                      "bodies": len(take.tracks), "faces": len(take.faces)}))


if __name__ == "__main__":
    main()
