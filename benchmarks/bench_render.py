"""Headless composite speed: headless/render.py against plain Blender rendering the same prepared scene.

    .venv/bin/python benchmarks/bench_render.py [--frames N] [--rounds R] [--keep DIR] [--engines E..] [--sizes WxH..]

Carphone upscaled to 1280x720 (bench_overlay's clip), N frames, analysed by
rigcast (lite model).  For EEVEE (default settings) and Workbench, at
640x360 and 1280x720, with the mask, face mesh and character overlays:

* ``render.py``: the wall time of ``python headless/render.py ...`` (start-up,
  Take, scene building, render loop, rename);
* ``plain``: the wall time of a Python that only opens the scene render.py
  built (saved by an untimed run with ``--save-blend``) and calls
  ``bpy.ops.render.render(animation=True)``: Blender alone, no rigcast code;
* overhead = render.py / plain - 1 (target: at most 10 %), best of R rounds
  each; split into ``setup`` (render.py's seconds before its render loop,
  minus plain's before its render call) and the ``loop`` overhead (render.py's
  render call against plain's: what rigcast's per-frame work adds), and
  seconds per frame from render.py's own progress lines.

A first EEVEE render compiles its shaders; the untimed run that saves the
scene comes first.  The two commands alternate, each round in the other order,
and each figure is the best of R rounds: other processes on a shared CPU
stretch wall times by up to 2x (while CPU seconds stay put), so the CPU
seconds of each process (user + system, children included) are printed too:
``cpu`` is render.py's CPU overhead against plain's, a check on the wall
figure that contention cannot inflate; ``paired`` is the median over rounds of
each round's render.py / plain - 1 (the two ran back to back, so under much
the same load).  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_overlay import clip_720p  # noqa: E402

SCRIPT = ROOT / "headless" / "render.py"
PLAIN = """
import time, sys
import bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
started = time.monotonic()
bpy.ops.render.render(animation=True)
print(f"LOOP {time.monotonic() - started:.3f}")
"""
PER_FRAME = re.compile(r"frame (\d+)/(\d+) .*?, ([0-9.]+) s/frame")
LOOP = re.compile(r"^LOOP ([0-9.]+)$", re.M)


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of ``command``, which must succeed."""
    cpu = cpu_of_children()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return wall, cpu_of_children() - cpu, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the videos and .blend files in this folder")
    parser.add_argument("--engines", nargs="+", choices=("eevee", "workbench"), default=["eevee", "workbench"])
    parser.add_argument("--sizes", nargs="+", default=["640x360", "1280x720"])
    args = parser.parse_args()

    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out_dir = args.keep or tmp
        out_dir.mkdir(parents=True, exist_ok=True)
        clip = clip_720p(tmp, args.frames)
        take = tmp / "carphone_720p.take.npz"
        analyze(clip, take, AnalyzeConfig(model="lite"))
        base = ["--footage", str(clip), "--take", str(take), "--overlay", "mask,facemesh,character"]

        print(f"{args.frames} frames, mask + face mesh + character, best of {args.rounds}")
        print(f"{'engine':<10} {'size':>9} {'render.py s':>12} {'plain s':>9} {'overhead':>9} {'setup s':>8} "
              f"{'loop':>7} {'cpu':>7} {'paired':>7} {'s/frame':>8}")
        for engine in args.engines:
            for size in args.sizes:
                name = f"{engine}_{size}"
                blend = out_dir / f"{name}.blend"
                ours = [sys.executable, str(SCRIPT), *base, "--engine", engine, "--resolution", size,
                        "-o", str(out_dir / f"{name}.mp4")]
                plain = [sys.executable, "-c", PLAIN, str(blend)]
                timed([*ours, "--save-blend", str(blend)])  # the scene for plain; compiles EEVEE's shaders
                runs = {"ours": [], "plain": []}  # (wall s, cpu s, render call s) per round
                for round_ in range(args.rounds):
                    for who in ("ours", "plain") if round_ % 2 == 0 else ("plain", "ours"):
                        wall, cpu, stdout = timed(ours if who == "ours" else plain)
                        if who == "ours":
                            _, total, per_frame = PER_FRAME.findall(stdout)[-1]
                            loop = float(per_frame) * int(total)  # render.py's render call, as its progress saw it
                        else:
                            loop = float(LOOP.findall(stdout)[-1])
                        runs[who].append((wall, cpu, loop))
                (ours_s, ours_cpu, loop_s), (plain_s, plain_cpu, plain_loop_s) = (
                    [min(column) for column in zip(*runs[who])] for who in ("ours", "plain"))
                setup_s = (ours_s - loop_s) - (plain_s - plain_loop_s)
                paired = statistics.median(o[0] / p[0] - 1 for o, p in zip(runs["ours"], runs["plain"]))
                print(f"{engine:<10} {size:>9} {ours_s:>12.1f} {plain_s:>9.1f} {ours_s / plain_s - 1:>8.1%} "
                      f"{setup_s:>8.1f} {loop_s / plain_loop_s - 1:>6.1%} {ours_cpu / plain_cpu - 1:>6.1%} "
                      f"{paired:>6.1%} {loop_s / args.frames:>8.2f}", flush=True)

if __name__ == "__main__":
    main()
