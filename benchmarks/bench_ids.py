"""Stable ids on clips composed from real photos (tests/composed.py): IDF1, id switches and ids used, per
clip and per person scale.

    .venv/bin/python benchmarks/bench_ids.py [--scales 0.5,0.33,0.2,0.1] [--clips crossing,occlusion,reentry] [--fps 30]

Each clip is rendered with its people ``scale`` x the frame height tall (640x360 frames down to a third of
the frame height, 1280x720 below), written as H.264 and analysed by the real pipeline (bodies only).  Prints
one row per clip and scale: IDF1, identity precision and recall, recall per frame (people found in
the frames they are in view, ids aside), id switches, ids used against people in the
clip, and the analysis time.  Small scales also measure the person detector, which may miss people there.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import composed  # noqa: E402


def frame_size(scale: float) -> tuple[int, int]:
    return (640, 360) if scale >= 0.3 else (1280, 720)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="0.5,0.33,0.2,0.1")
    parser.add_argument("--clips", default="crossing,occlusion,reentry")
    parser.add_argument("--fps", type=int, default=30, help="frame rate the clips are rendered at")
    args = parser.parse_args()
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    print(f"{'clip':10s} {'scale':>5s} {'size':>9s} {'IDF1':>6s} {'IDP':>6s} {'IDR':>6s} {'recall':>6s} "
          f"{'switches':>8s} {'ids/people':>10s} {'seconds':>7s}")
    with tempfile.TemporaryDirectory() as tmp:
        for scale in [float(s) for s in args.scales.split(",")]:
            size = frame_size(scale)
            for name in args.clips.split(","):
                scene = composed.scenes(size[0] / size[1], scale)[name]
                clip = Path(tmp) / f"{name}_{scale}.mp4"
                truth = composed.write_scene(clip, scene, scale, size, fps=args.fps)
                t0 = time.perf_counter()
                take = analyze(clip, clip.with_suffix(".npz"), AnalyzeConfig(faces=False))
                seconds = time.perf_counter() - t0
                s = composed.score_take(take, truth)
                print(f"{name:10s} {scale:5.2f} {size[0]:4d}x{size[1]:<4d} {s.idf1:6.3f} {s.idp:6.3f} {s.idr:6.3f} "
                      f"{s.recall:6.3f} {s.id_switches:8d} {s.num_pred_ids:>5d}/{len(truth.people):<4d} "
                      f"{seconds:7.1f}", flush=True)


if __name__ == "__main__":
    main()
