"""Overlay rendering speed at 720p.

    .venv/bin/python benchmarks/bench_overlay.py [--frames N] [--keep DIR]

Carphone upscaled to 1280x720 (stretched), looped to N frames; its Take is
``rigcast analyze``'s (faces, and bodies with the lite model).  Prints
ms/frame of ``render_overlay`` (decode + draw + libx264 encode) for several
layer sets, and of ``FrameDrawer`` alone.  No timed asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import footage  # noqa: E402


def clip_720p(directory: Path, frames: int) -> Path:
    import av
    import cv2

    src = []
    with av.open(str(footage.carphone())) as c:
        for f in c.decode(video=0):
            src.append(cv2.resize(f.to_ndarray(format="rgb24"), (1280, 720), interpolation=cv2.INTER_CUBIC))
    seq = [src[i % len(src)] if (i // len(src)) % 2 == 0 else src[len(src) - 1 - i % len(src)] for i in range(frames)]
    return footage.write_video(directory / f"carphone_720p_{frames}.mp4", seq)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--keep", type=Path, help="write the overlay videos into this folder")
    args = parser.parse_args()

    from rigcast.overlay import FrameDrawer, MaskAsset, render_overlay
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze
    from rigcast.video import open_footage

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out_dir = args.keep or tmp
        out_dir.mkdir(parents=True, exist_ok=True)
        clip = clip_720p(tmp, args.frames)
        t0 = time.perf_counter()
        take = analyze(clip, tmp / "carphone_720p.take.npz", AnalyzeConfig(model="lite"))
        print(f"take: {sum(len(f.frame_index) for f in take.faces)} face frames, {len(take.tracks)} body tracks "
              f"({time.perf_counter() - t0:.1f} s to analyse)")
        asset = MaskAsset.load()
        with open_footage(clip) as f:
            frames = [(fr.index, fr.rgb) for fr in f]

        print(f"{'layers':<32} {'draw only':>12} {'render_overlay':>16}")
        for layers, style in ((("mask",), "wire"), (("mesh",), "wire"), (("mesh",), "shaded"),
                              (("mask", "mesh", "skeleton", "axes"), "wire"), ((), "wire")):
            drawer = FrameDrawer(take, layers, asset, style)
            drawer(frames[0][1], frames[0][0])  # warm up
            t0 = time.perf_counter()
            for index, rgb in frames:
                drawer(rgb, index)
            draw_ms = (time.perf_counter() - t0) / len(frames) * 1000
            name = "+".join(layers) or "(none: decode + encode)"
            name += f" [{style}]" if "mesh" in layers else ""
            t0 = time.perf_counter()
            render_overlay(clip, take, out_dir / f"overlay_{'_'.join(layers) or 'none'}_{style}.mp4", layers,
                           style, mask_asset=asset)
            total_ms = (time.perf_counter() - t0) / len(frames) * 1000
            print(f"{name:<32} {draw_ms:>9.2f} ms {total_ms:>13.2f} ms   per frame, 1280x720")
        if args.keep:
            print(f"videos in {args.keep}")


if __name__ == "__main__":
    main()
