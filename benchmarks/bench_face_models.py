"""Frames per second of the bring-your-own face models' full paths, on synthetic models of the published sizes.

    .venv/bin/python benchmarks/bench_face_models.py [--frames N] [--faces F] [--device cpu|cuda|tensorrt]

img2pose (:func:`bench_img2pose`, ``rigcast analyze --face img2pose:FILE``): the models are synthetic (tests/byo_models.py) with the seed export's tensors: input ``images`` (3, 720, 1280),
outputs ``boxes``, ``labels``, ``scores``, ``dofs`` with ``--faces`` planted faces.  Two of them:

* planted: the outputs are constants, so the run costs only the input's transfer; the figure is rigcast's own
  work per frame (letterbox, tensor, decode, the move into the Take's camera by PnP, ids and appearance);
* resnet18: the input first runs through a ResNet-18 trunk with random weights, img2pose's backbone; its FPN,
  proposals and heads are left out, so this is an upper bound on the real model's frames per second.

Each is timed on a 1280x720 frame (the published input: no letterbox) and a 1920x1080 one (letterboxed), through
:class:`rigcast.pipeline.face_sources.SourceFaceAnalyzer` with the Take's default camera (60 degrees, so every
face's pose is re-fitted).  Prints, per case, frames per second and milliseconds per frame (medians), and the
split into pre-processing, model run, decoding and the analyser's own work.

3DDFA_V2 (:func:`bench_tddfa`): FaceBoxes and MobileNet V1 (``mb1_120x120``) built with their published
architectures and random weights (tests/tddfa_models.py: 4.0 and 13.0 MB, as the published files), a BFM of the
published size (38365 vertices, 76073 triangles, 40 + 10 basis columns), on a 1280x720 frame (FaceBoxes reads it
at 1080x607).  A random-weight FaceBoxes scores noise, so its decode would sort and suppress thousands of
candidates where a real frame has a few: the network runs on the frame, and its decode reads planted outputs of
F faces.  Per frame: the detector, then per face the crop and regressor, the dense BFM vertices (numpy, or the
BFM ONNX head), and the face record (head pose in rigcast's camera, the mesh in metres).  Prints per stage
milliseconds (medians) and the full path's frames per second for 1 and F faces.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from byo_models import img2pose_model, img2pose_resnet18_model  # noqa: E402

from bench_byo import median_seconds  # noqa: E402  (benchmarks/ is the script's own folder)

FRAME_WH = (1280, 720)


def bench_img2pose(frames: int, faces: int, device: str) -> None:
    """img2pose's full path (see the module docstring): prints a line per model and frame size."""
    from rigcast.camera import Intrinsics
    from rigcast.models.img2pose import POSE_MEAN, POSE_STD, open_img2pose
    from rigcast.pipeline.face_sources import SourceFaceAnalyzer

    rng = np.random.default_rng(0)
    boxes = np.array([[200.0 + 300 * i, 250.0, 300.0 + 300 * i, 380.0] for i in range(faces)])
    dofs = (np.array([0.1, -0.2, 0.05, 0.0, 0.0, 3.5]) - POSE_MEAN) / POSE_STD
    dofs = np.tile(dofs, (faces, 1))
    scores = np.full(faces, 0.95)
    print(f"{faces} face(s) per frame, median of {frames} frames, device {device}")
    with tempfile.TemporaryDirectory() as tmp:
        for kind, build in (("planted", img2pose_model), ("resnet18", img2pose_resnet18_model)):
            model = open_img2pose(build(Path(tmp) / f"{kind}.onnx", boxes, scores, dofs), device=device,
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
                total = median_seconds(frame, frames)
                stages = (median_seconds(lambda: model.preprocess(rgb), frames),
                          median_seconds(lambda: model.runner({model._input.name: tensor}), frames),
                          median_seconds(lambda: model.postprocess(raw, plan), frames))
                found = len(frame()[0])
                print(f"{kind:8s} {width}x{height}: {1 / total:6.2f} fps, {1e3 * total:7.1f} ms/frame "
                      f"(pre {1e3 * stages[0]:.1f}, run {1e3 * stages[1]:.1f}, decode {1e3 * stages[2]:.1f}, "
                      f"analyser {1e3 * max(total - sum(stages), 0.0):.1f}), {found} face(s), {model.runner.provider}")


def bench_tddfa(frames: int, faces: int, device: str) -> list[str]:
    """3DDFA_V2's full path (see the module docstring); returns the lines to print."""
    from tddfa_models import (bfm_head_model, faceboxes_net_model, mobilenet_v1_model, param_stats,
                              planted_faceboxes, published_size_bfm, write_pickle)

    from rigcast.models.faceboxes import FaceBoxesDetector
    from rigcast.models.tddfa import Bfm, ParamStats, Tddfa, TddfaSource, regressor_input, roi_from_box
    from rigcast.runners import make_runner

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (FRAME_WH[1], FRAME_WH[0], 3), dtype=np.uint8)
    boxes = [[100.0 + 250 * i, 150.0, 260.0 + 250 * i, 340.0] for i in range(faces)]
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        bfm_dict = published_size_bfm()
        bfm = Bfm.load(write_pickle(tmp / "bfm_noneck_v3.pkl", bfm_dict))
        stats = ParamStats.load(write_pickle(tmp / "param_mean_std_62d_120x120.pkl", param_stats()))
        net = FaceBoxesDetector(make_runner(faceboxes_net_model(tmp / "FaceBoxesProd.onnx"), device=device,
                                            strict_device=True))
        regressor = make_runner(mobilenet_v1_model(tmp / "mb1_120x120.onnx"), device=device, strict_device=True)
        head = make_runner(bfm_head_model(tmp / "bfm_noneck_v3.onnx", bfm_dict), device=device, strict_device=True)
        input_hw = net.input_size(FRAME_WH[1], FRAME_WH[0])
        scale = np.array([input_hw[1] / FRAME_WH[0], input_hw[0] / FRAME_WH[1]] * 2)
        planted = make_runner(planted_faceboxes(tmp / "planted.onnx", input_hw, [np.array(b) * scale for b in boxes],
                                                [0.95] * faces), device="cpu")
        outputs = planted({"input": np.zeros((1, 3) + input_hw, np.float32)})

        class Detector(FaceBoxesDetector):
            """The FaceBoxes network on the frame, its decode on the planted outputs."""

            def __call__(self, frame):
                image = self.preprocess(frame)
                self.runner({"input": image})
                return self.postprocess(outputs["output"], outputs[planted.outputs[1].name], image.shape[2:],
                                        frame.shape[:2])

        detector = Detector(net.runner)
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        roi = roi_from_box(np.array(boxes[0]))
        feed = regressor_input(bgr, roi)
        image = detector.preprocess(rgb)
        per_face = {}
        for name, bfm_runner in (("numpy BFM", None), ("BFM ONNX head", head)):
            model = Tddfa(detector, regressor, stats, bfm, bfm_runner)
            source = TddfaSource(model)
            params = model.params(bgr, roi)
            (face,) = model(rgb)[:1]
            camera = source.camera(*FRAME_WH)
            stages = {"crop + normalise": median_seconds(lambda: regressor_input(bgr, roi), frames),
                      "regressor run": median_seconds(lambda: regressor({"input": feed}), frames),
                      "dense vertices": median_seconds(lambda: model.vertices_roi(params), frames),
                      "face record": median_seconds(lambda: source.observe(face, camera), frames)}
            per_face[name] = stages
            full = {}
            for f in sorted({1, faces}):
                path = TddfaSource(Tddfa(_FirstFaces(detector, f), regressor, stats, bfm, bfm_runner))
                full[f] = median_seconds(lambda: path(rgb), frames)
            lines.append(f"3ddfa ({name}), {FRAME_WH[0]}x{FRAME_WH[1]}, {regressor.provider}: " + ", ".join(
                f"{f} face{'s' if f > 1 else ''} {1 / s:.1f} fps ({1000 * s:.0f} ms)" for f, s in full.items()))
        detect = (median_seconds(lambda: detector.preprocess(rgb), frames), median_seconds(lambda: net.runner({"input": image}), frames),
                  median_seconds(lambda: detector.postprocess(outputs["output"], outputs[planted.outputs[1].name], input_hw,
                                                     rgb.shape[:2]), frames))
        lines.append(f"  FaceBoxes at {input_hw[1]}x{input_hw[0]}: preprocess {1000 * detect[0]:.1f} ms, "
                     f"run {1000 * detect[1]:.1f} ms, decode {1000 * detect[2]:.1f} ms")
        for name, stages in per_face.items():
            lines.append(f"  per face, {name}: " + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in stages.items()))
    return lines


class _FirstFaces:
    """A detector returning only the first ``count`` faces of ``detector`` (the same work otherwise)."""

    def __init__(self, detector, count: int):
        self.detector, self.count = detector, count

    def __call__(self, rgb):
        return self.detector(rgb)[: self.count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--faces", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    args = parser.parse_args()
    bench_img2pose(args.frames, args.faces, args.device)
    for line in bench_tddfa(args.frames, args.faces, args.device):
        print(line)


if __name__ == "__main__":
    main()
