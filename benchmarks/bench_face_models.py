"""Frames per second of the face-model sources' full per-frame path (``rigcast analyze --face img2pose:FILE``).

    .venv/bin/python benchmarks/bench_face_models.py [--frames N] [--faces F] [--device cpu|cuda|tensorrt]

The models are synthetic (tests/byo_models.py) with the seed export's tensors: input ``images`` (3, 720, 1280),
outputs ``boxes``, ``labels``, ``scores``, ``dofs`` with ``--faces`` planted faces.  Two of them:

* planted: the outputs are constants, so the run costs only the input's transfer; the figure is rigcast's own
  work per frame (letterbox, tensor, decode, the move into the Take's camera by PnP, ids and appearance);
* resnet18: the input first runs through a ResNet-18 trunk with random weights, img2pose's backbone; its FPN,
  proposals and heads are left out, so this is an upper bound on the real model's frames per second.

Each is timed on a 1280x720 frame (the published input: no letterbox) and a 1920x1080 one (letterboxed), through
:class:`rigcast.pipeline.face_sources.SourceFaceAnalyzer` with the Take's default camera (60 degrees, so every
face's pose is re-fitted).  Prints, per case, frames per second and milliseconds per frame (medians), and the
split into pre-processing, model run, decoding and the analyser's own work.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from byo_models import img2pose_model, img2pose_resnet18_model  # noqa: E402


def _time(call, frames: int) -> float:
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
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--faces", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    args = parser.parse_args()

    from rigcast.camera import Intrinsics
    from rigcast.models.img2pose import POSE_MEAN, POSE_STD, open_img2pose
    from rigcast.pipeline.face_sources import SourceFaceAnalyzer

    rng = np.random.default_rng(0)
    boxes = np.array([[200.0 + 300 * i, 250.0, 300.0 + 300 * i, 380.0] for i in range(args.faces)])
    dofs = (np.array([0.1, -0.2, 0.05, 0.0, 0.0, 3.5]) - POSE_MEAN) / POSE_STD
    dofs = np.tile(dofs, (args.faces, 1))
    scores = np.full(args.faces, 0.95)
    print(f"{args.faces} face(s) per frame, median of {args.frames} frames, device {args.device}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, build in (("planted", img2pose_model), ("resnet18", img2pose_resnet18_model)):
            model = open_img2pose(build(Path(tmp) / f"{kind}.onnx", boxes, scores, dofs), device=args.device,
                                  strict_device=True)
            for width, height in ((1280, 720), (1920, 1080)):
                rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                analyzer = SourceFaceAnalyzer(model, Intrinsics.from_fov(width, height))
                state = analyzer.new_state()
                clock = [0.0]

                def frame():
                    clock[0] += 1 / 30
                    return analyzer.process(rgb, clock[0], state)

                tensor, plan = model.preprocess(rgb)
                raw = model.runner({model._input.name: tensor})
                total = _time(frame, args.frames)
                stages = (_time(lambda: model.preprocess(rgb), args.frames),
                          _time(lambda: model.runner({model._input.name: tensor}), args.frames),
                          _time(lambda: model.postprocess(raw, plan), args.frames))
                found = len(frame()[0])
                print(f"{kind:8s} {width}x{height}: {1 / total:6.2f} fps, {1e3 * total:7.1f} ms/frame "
                      f"(pre {1e3 * stages[0]:.1f}, run {1e3 * stages[1]:.1f}, decode {1e3 * stages[2]:.1f}, "
                      f"analyser {1e3 * max(total - sum(stages), 0.0):.1f}), {found} face(s), {model.runner.provider}")


if __name__ == "__main__":
    main()
