"""Headless composite speed: headless/render.py against plain Blender rendering the same prepared scene.

    .venv/bin/python benchmarks/bench_render.py [--frames N|all ...] [--rounds R] [--engines E ..] [--sizes WxH ..]
                                                [--overlay LIST] [--keep DIR]

The demo clip (carphone, all its 120 frames) upscaled to 1280x720
(bench_overlay's clip), analysed by rigcast (lite model), rendered with the
overlays ``--overlay`` (default mask, face mesh and character) for its first
N frames (default 8, 32 and ``all``, the whole clip), per engine (EEVEE and
Workbench, default settings) and output size (640x360 and 1280x720):

* ``render.py``: the wall time of ``python headless/render.py ...`` (start-up,
  Take, scene building, render loop, rename);
* ``plain``: the wall time of a Python that only opens the scene render.py
  built (saved by an untimed run with ``--save-blend``, which also compiles
  EEVEE's shaders and writes the bytecode caches) and calls
  ``bpy.ops.render.render(animation=True)``: Blender alone, no rigcast code.

Each round runs the two back to back, in alternating order, so a pair shares
the machine's load of the moment (other processes on a shared CPU stretch wall
times by up to 2x from one minute to the next).  Each configuration's line
ends with the 1-minute load average before and after it, so a table measured
on a shared machine says so.  Printed per configuration, as the median over R
rounds with the spread (lowest and highest) of the paired figure:

* ``overhead``: each round's render.py / plain - 1 (target: at most 10 %);
* ``cpu``: the same ratio of CPU seconds (user + system, children included),
  a check that contention cannot inflate;
* ``setup s``: render.py's seconds outside its render loop minus plain's
  outside its render call (start-up, Take, scene building: a fixed cost);
* ``loop``: render.py's render call (from its closing ``wrote OUT: N frames
  rendered in X s`` line) against plain's: what rigcast adds per frame (it
  should add nothing);
* seconds per frame of render.py's loop.

The subprocesses run without ``PYTHONDONTWRITEBYTECODE``: an installed
rigcast has its bytecode compiled (pip does it; a checkout writes it on first
use), and compiling core and the add-on from source on every start would add
about 0.1 s that no user pays.  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
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
WROTE = re.compile(r"^wrote .*: (\d+) frames rendered in ([0-9.]+) s$", re.M)
LOOP = re.compile(r"^LOOP ([0-9.]+)$", re.M)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of ``command``, which must succeed."""
    cpu = cpu_of_children()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=ENV)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return wall, cpu_of_children() - cpu, done.stdout


def loop_seconds(who: str, stdout: str) -> float:
    """The render call's seconds (the video's finalisation included, for both), as each printed them."""
    if who == "ours":
        return float(WROTE.findall(stdout)[-1][1])
    return float(LOOP.findall(stdout)[-1])


def spread(values: list[float]) -> str:
    """``median [lowest, highest]`` as percentages."""
    return f"{statistics.median(values):+.1%} [{min(values):+.1%}, {max(values):+.1%}]"


def measure(ours: list[str], plain: list[str], rounds: int) -> dict[str, list[float]]:
    """Per round: the paired wall, CPU and loop ratios, the setup difference, render.py's loop and both walls."""
    out = {k: [] for k in ("overhead", "cpu", "loop", "setup", "ours_loop", "ours", "plain")}
    for round_ in range(rounds):
        runs = {}
        for who in ("ours", "plain") if round_ % 2 == 0 else ("plain", "ours"):
            wall, cpu, stdout = timed(ours if who == "ours" else plain)
            runs[who] = (wall, cpu, loop_seconds(who, stdout))
        (o_wall, o_cpu, o_loop), (p_wall, p_cpu, p_loop) = runs["ours"], runs["plain"]
        out["overhead"].append(o_wall / p_wall - 1)
        out["cpu"].append(o_cpu / p_cpu - 1)
        out["loop"].append(o_loop / p_loop - 1)
        out["setup"].append((o_wall - o_loop) - (p_wall - p_loop))
        out["ours_loop"].append(o_loop)
        out["ours"].append(o_wall)
        out["plain"].append(p_wall)
    return out


DEMO_FRAMES = 120
"""The demo clip's length (carphone's): ``--frames all`` renders all of it."""


def frame_count(text: str) -> int:
    if text == "all":
        return DEMO_FRAMES
    if not text.isdigit() or not 1 <= int(text) <= DEMO_FRAMES:
        raise argparse.ArgumentTypeError(f"a frame count is 1 to {DEMO_FRAMES} or 'all', got {text!r}")
    return int(text)


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=frame_count, nargs="+", default=[8, 32, DEMO_FRAMES],
                        help=f"first N frames of the {DEMO_FRAMES}-frame demo clip to render, or 'all' "
                             "(default 8 32 all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="keep the videos and .blend files in this folder")
    parser.add_argument("--engines", nargs="+", choices=("eevee", "workbench"), default=["eevee", "workbench"])
    parser.add_argument("--sizes", nargs="+", default=["640x360", "1280x720"])
    parser.add_argument("--overlay", default="mask,facemesh,character")
    args = parser.parse_args()

    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out_dir = args.keep or tmp
        out_dir.mkdir(parents=True, exist_ok=True)
        clip = clip_720p(tmp, DEMO_FRAMES)
        take = tmp / "carphone_720p.take.npz"
        analyze(clip, take, AnalyzeConfig(model="lite"))
        base = ["--footage", str(clip), "--take", str(take), "--overlay", args.overlay]

        print(f"overlays {args.overlay}; medians of {args.rounds} paired rounds, [lowest, highest]; "
              f"{os.cpu_count()} CPUs, load average before and after each line")
        print(f"{'engine':<10} {'size':>9} {'N':>4} {'render.py s':>11} {'plain s':>8} {'overhead':>26} "
              f"{'cpu':>26} {'setup s':>8} {'loop':>7} {'s/frame':>8} {'load':>9}")
        for engine in args.engines:
            for size in args.sizes:
                for frames in args.frames:
                    name = f"{engine}_{size}_{frames}"
                    blend = out_dir / f"{name}.blend"
                    ours = [sys.executable, str(SCRIPT), *base, "--engine", engine, "--resolution", size,
                            "--frames", f"0:{frames}", "-o", str(out_dir / f"{name}.mp4")]
                    plain = [sys.executable, "-c", PLAIN, str(blend)]
                    timed([*ours, "--save-blend", str(blend)])  # plain's scene; shaders and bytecode compiled
                    before = load()
                    m = measure(ours, plain, args.rounds)
                    med = {k: statistics.median(v) for k, v in m.items()}
                    print(f"{engine:<10} {size:>9} {frames:>4} {med['ours']:>11.2f} {med['plain']:>8.2f} "
                          f"{spread(m['overhead']):>26} {spread(m['cpu']):>26} {med['setup']:>8.2f} "
                          f"{med['loop']:>+7.1%} {med['ours_loop'] / frames:>8.3f} {before:>4}-{load():<4}",
                          flush=True)


if __name__ == "__main__":
    main()
