"""Tiled x4 enhance speed on a 720p frame (CPU unless --device says otherwise).

    .venv/bin/python benchmarks/bench_enhance.py [--features 16] [--convs 4] [--frames 2] [--tile 256] [--overlap 16]

The model is synthetic, random weights in the shape of Real-ESRGAN's compact x4 net (SRVGGNetCompact:
conv 3x3 3 → F, PReLU, ``convs`` x [conv 3x3 F → F, PReLU], conv 3x3 F → 48, PixelShuffle(4), plus the input
upsampled x4 by nearest neighbour), exported as the published ONNX files are: "input" (1, 3, H, W) RGB in [0, 1],
"output" (1, 3, 4H, 4W), H and W dynamic.  The published realesr-general-x4v3 is F = 64 with 32 convs (about 30
times the default's work); ESRGAN's RRDB-23 is heavier still and too big to build here.  Prints seconds per 720p
frame (carphone upscaled to 1280x720) of ``Enhancer`` (tiling, model, blending), the model's multiply-adds per
input pixel, and the tile count.  No timed asserts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import footage  # noqa: E402

SCALE = 4


def compact_sr_model(path: Path, features: int, convs: int, seed: int = 0, nearest_only: bool = False
                     ) -> tuple[Path, int]:
    """Write the SRVGGNetCompact-shaped x4 model; returns (path, multiply-adds per input pixel).

    ``nearest_only``: just the nearest-neighbour x4 branch (no convolutions).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    macs = 0

    def conv(src: str, dst: str, cin: int, cout: int) -> None:
        nonlocal macs
        k = len(inits)
        w = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (9 * cin))).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(np.zeros(cout, np.float32),
                                                                                    f"b{k}")])
        nodes.append(helper.make_node("Conv", [src, f"w{k}", f"b{k}"], [dst], pads=[1, 1, 1, 1]))
        macs += cin * cout * 9

    def prelu(src: str, dst: str) -> None:
        slope = numpy_helper.from_array(np.full((features, 1, 1), 0.25, np.float32), f"slope_{dst}")
        inits.append(slope)
        nodes.append(helper.make_node("PRelu", [src, slope.name], [dst]))

    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, float(SCALE), float(SCALE)])
    if nearest_only:
        nodes.append(helper.make_node("Resize", ["input", "", "scales"], ["output"], mode="nearest"))
    else:
        conv("input", "c0", 3, features)
        prelu("c0", "a0")
        for i in range(convs):
            conv(f"a{i}", f"c{i + 1}", features, features)
            prelu(f"c{i + 1}", f"a{i + 1}")
        conv(f"a{convs}", "last", features, 3 * SCALE * SCALE)
        nodes += [helper.make_node("DepthToSpace", ["last"], ["shuffled"], blocksize=SCALE, mode="CRD"),
                  helper.make_node("Resize", ["input", "", "scales"], ["base"], mode="nearest"),
                  helper.make_node("Add", ["shuffled", "base"], ["output"])]
    graph = helper.make_graph(nodes, "compact_x4", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, [1, 3, "height", "width"])], [helper.make_tensor_value_info(
            "output", TensorProto.FLOAT, [1, 3, "height_x4", "width_x4"])], initializer=inits + [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path, macs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--convs", type=int, default=4)
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: one per core)")
    args = parser.parse_args()

    import cv2

    from rigcast.enhance import open_enhancer, tile_starts
    from rigcast.video import open_footage

    with open_footage(footage.carphone(), end="1f") as f:
        frame = cv2.resize(next(iter(f)).rgb, (1280, 720), interpolation=cv2.INTER_CUBIC)
    with tempfile.TemporaryDirectory() as tmp:
        path, macs = compact_sr_model(Path(tmp) / "compact_x4.onnx", args.features, args.convs)
        enhancer = open_enhancer(path, tile=args.tile, overlap=args.overlap, device=args.device, threads=args.threads)
        th, tw = min(enhancer.tile_hw[0], 720), min(enhancer.tile_hw[1], 1280)
        tiles = len(tile_starts(720, th, args.overlap)) * len(tile_starts(1280, tw, args.overlap))
        print(f"model: compact x4, F={args.features}, {args.convs} body convs, {path.stat().st_size / 1e3:.0f} kB, "
              f"{macs / 1e3:.1f} k multiply-adds per input pixel ({macs * 1280 * 720 / 1e9:.1f} G per 720p frame); "
              f"{enhancer.runner.provider}")
        print(f"tiles: {tiles} of {th}x{tw}, overlap >= {args.overlap}")
        enhancer(frame)  # warm-up: onnxruntime plans its memory on the first run
        times = []
        for _ in range(args.frames):
            t0 = time.perf_counter()
            out = enhancer(frame)
            times.append(time.perf_counter() - t0)
        print(f"720p -> {out.shape[1]}x{out.shape[0]}: {np.median(times):.2f} s/frame (median of {args.frames}; "
              f"min {min(times):.2f})")
        # The same tiling and blending around a model that does no work: rigcast's own share of the time.
        path, _ = compact_sr_model(Path(tmp) / "nearest_x4.onnx", args.features, convs=0, nearest_only=True)
        nearest = open_enhancer(path, tile=args.tile, overlap=args.overlap, device=args.device, threads=args.threads)
        nearest(frame)
        t0 = time.perf_counter()
        for _ in range(args.frames):
            nearest(frame)
        print(f"tiling + blending around a nearest-neighbour x4 model: {(time.perf_counter() - t0) / args.frames:.2f} "
              f"s/frame")


if __name__ == "__main__":
    main()
