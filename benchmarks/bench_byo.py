"""Frames per second of the bring-your-own YOLO, ViTPose and lightweight-3D paths (preprocess → run → postprocess).

    .venv/bin/python benchmarks/bench_byo.py [--frames N] [--people P] [--device cpu|cuda|tensorrt]

The models are synthetic (tests/byo_models.py): the published input and output shapes (YOLOv8 (1, 84, 8400)
and YOLOv5 (1, 25200, 85) at 640x640; easy_ViTPose (B, 25, 64, 48) at 256x192), but a few strided
convolutions instead of the networks.  The figures therefore time rigcast's own pre- and post-processing plus a
cheap model: they are an upper bound on the real models' speed and a measure of the overhead rigcast adds.
Prints, per path, frames per second and milliseconds per frame (medians over the frames), and the split into
pre-processing, model run and post-processing, on a 1280x720 frame; ViTPose reads 1 and ``--people`` boxes.

Lightweight 3D (``data`` (1, 3, 256, 448) → ``features`` (1, 57, 32, 56), ``heatmaps`` (1, 19, ...), ``pafs``
(1, 38, ...)) is timed twice: with stride-8 convolutions (random maps: a cheap run, but a decode of noise), and
with planted outputs of ``--people`` (at most 3) people, whose decode (peaks, PAF grouping, 3D) is a real
frame's work; its run is a constant.

``--vitpose-s`` also times the real ViTPose-s network (24 M parameters, random weights: the speed does not
depend on them) at 256x192, one box a frame, from an easy_ViTPose-layout ``.pth`` on torch and from its ONNX
export on onnxruntime, through the same estimator (crop, normalise, run, DARK decode), frame by frame in turn.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from byo_models import lw3d_conv_model, planted_outputs_model, vitpose_conv_model, yolo_conv_model  # noqa: E402

FRAME_WH = (1280, 720)


def median_seconds(call, frames: int) -> float:
    """Median seconds of ``call()`` over ``frames`` calls, after one warm-up call."""
    call()
    times = []
    for _ in range(frames):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    parser.add_argument("--vitpose-s", action="store_true", help="also time ViTPose-s on torch and onnxruntime")
    parser.add_argument("--torch-threads", type=int, default=0, help="torch's CPU threads (default: torch's own)")
    args = parser.parse_args()

    from rigcast.models.vitpose import VitPoseEstimator, crop_plan
    from rigcast.models.yolo import YoloPersonDetector, decode_yolo
    from rigcast.runners import make_runner

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (FRAME_WH[1], FRAME_WH[0], 3), dtype=np.uint8)
    boxes = np.array([[100.0 + 300 * i, 100.0, 300.0 + 300 * i, 650.0] for i in range(args.people)])
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for layout in ("yolov8", "yolov5"):
            runner = make_runner(yolo_conv_model(Path(tmp) / f"{layout}.onnx", layout), device=args.device,
                                 strict_device=True)
            detector = YoloPersonDetector(runner)
            plan = detector.plan(FRAME_WH)
            feed = detector.preprocess(rgb, plan)
            raw = runner({"images": feed})["output0"]
            candidates = len(decode_yolo(raw, layout, min_score=detector.min_score)[1])
            stages = (median_seconds(lambda: detector.preprocess(rgb, plan), args.frames),
                      median_seconds(lambda: runner({"images": feed}), args.frames),
                      median_seconds(lambda: detector.postprocess(raw, plan, FRAME_WH), args.frames))
            rows.append((f"{layout} 640x640 {runner.outputs[0].shape}, {candidates} candidates, "
                         f"{len(detector(rgb))} boxes", median_seconds(lambda: detector(rgb), args.frames), stages,
                         runner.provider))
        runner = make_runner(vitpose_conv_model(Path(tmp) / "vitpose.onnx", joints=25), device=args.device,
                             strict_device=True)
        estimator = VitPoseEstimator(runner)
        for people in sorted({1, args.people}):
            plans = [crop_plan(b, FRAME_WH) for b in boxes[:people]]
            feed = estimator.preprocess(rgb, plans)
            heatmaps = runner({"input_0": feed})["output_0"]
            stages = (median_seconds(lambda: estimator.preprocess(rgb, plans), args.frames),
                      median_seconds(lambda: runner({"input_0": feed}), args.frames),
                      median_seconds(lambda: estimator.postprocess(heatmaps, plans), args.frames))
            rows.append((f"vitpose-25 256x192, {people} person(s) a frame (one batch)",
                         median_seconds(lambda: estimator(rgb, boxes[:people]), args.frames), stages, runner.provider))
        rows += _lw3d_rows(rgb, Path(tmp), args)
        if args.vitpose_s:
            rows += _vitpose_s_rows(rgb, boxes[:1], Path(tmp), args)
    print(f"frame {FRAME_WH[0]}x{FRAME_WH[1]}, median of {args.frames} frames, synthetic models (see docstring)")
    for name, seconds, (pre, run, post), provider in rows:
        print(f"{name:<60} {1.0 / seconds:7.1f} frames/s {1000 * seconds:7.2f} ms "
              f"(pre {1000 * pre:.2f} run {1000 * run:.2f} post {1000 * post:.2f})  [{provider}]")


def _lw3d_rows(rgb: np.ndarray, tmp: Path, args) -> list:
    from rigcast.models.lightweight3d import Lightweight3DEstimator, decode
    from rigcast.runners import make_runner
    from test_lightweight3d import person, plant_maps

    heat, pafs = plant_maps([person((8 + 18 * i, 6)) for i in range(min(args.people, 3))])
    features = np.full((57, 32, 56), 0.1, dtype=np.float32)
    planted = planted_outputs_model(tmp / "lw3d_planted.onnx", "data", [1, 3, 256, 448],
                                    {"features": features[None], "heatmaps": heat[None], "pafs": pafs[None]})
    rows = []
    for name, path in (("conv", lw3d_conv_model(tmp / "lw3d.onnx")), ("planted", planted)):
        runner = make_runner(path, device=args.device, strict_device=True)
        estimator = Lightweight3DEstimator(runner)
        feed, plan = estimator.preprocess(rgb)
        out = runner({"data": feed})
        maps = (out["features"][0], out["heatmaps"][0], out["pafs"][0])
        fx = 0.8 * rgb.shape[1]
        stages = (median_seconds(lambda: estimator.preprocess(rgb), args.frames),
                  median_seconds(lambda: runner({"data": feed}), args.frames),
                  median_seconds(lambda: decode(*maps, plan, fx), args.frames))
        rows.append((f"lw3d 256x448 {name}, {len(estimator(rgb).scores)} people found",
                     median_seconds(lambda: estimator(rgb), args.frames), stages, runner.provider))
    return rows


def _vitpose_s_rows(rgb: np.ndarray, boxes: np.ndarray, tmp: Path, args) -> list:
    import torch

    from byo_models import vitpose_checkpoint
    from rigcast.models import make_keypoint_model
    from rigcast.models.vitpose import crop_plan

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    checkpoint = vitpose_checkpoint(tmp / "vitpose-s-coco_25.pth", "s", 25)
    device = "cuda" if args.device != "cpu" else "cpu"
    by_torch = make_keypoint_model(f"vitpose:{checkpoint}", device=device, strict_device=True)
    onnx_path = tmp / "vitpose-s-coco_25.onnx"
    torch.onnx.export(by_torch.runner._module.cpu(), (torch.randn(1, 3, 256, 192),), str(onnx_path), dynamo=False,
                      input_names=["input_0"], output_names=["output_0"],
                      dynamic_axes={"input_0": {0: "batch_size"}, "output_0": {0: "batch_size"}})
    by_torch = make_keypoint_model(f"vitpose:{checkpoint}", device=device, strict_device=True)
    by_onnx = make_keypoint_model(f"vitpose:{onnx_path}", device=args.device, strict_device=True)
    estimators = {"torch .pth": by_torch, "onnx export": by_onnx}
    # The full path interleaved, torch then onnxruntime each frame, so that a shared machine's load falls on both.
    full = {name: [] for name in estimators}
    for _ in range(args.frames + 1):
        for name, estimator in estimators.items():
            start = time.perf_counter()
            estimator(rgb, boxes)
            full[name].append(time.perf_counter() - start)
    rows = []
    for name, estimator in estimators.items():
        plans = [crop_plan(b, FRAME_WH) for b in boxes]
        feed = estimator.preprocess(rgb, plans)
        heatmaps = estimator.runner({"input_0": feed})["output_0"]
        stages = (median_seconds(lambda: estimator.preprocess(rgb, plans), args.frames),
                  median_seconds(lambda: estimator.runner({"input_0": feed}), args.frames),
                  median_seconds(lambda: estimator.postprocess(heatmaps, plans), args.frames))
        threads = f"{torch.get_num_threads()} threads" if name.startswith("torch") else "default threads"
        rows.append((f"vitpose-s 256x192 {name} ({threads}), 1 person", float(np.median(full[name][1:])), stages,
                     estimator.runner.provider))
    return rows

if __name__ == "__main__":
    main()
