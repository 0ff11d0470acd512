"""Tiny ONNX models with the published tensor names and shapes of the bring-your-own families, built here.

No weights are downloaded: each model either returns a planted tensor (the
decoders' known answers) or runs a few random strided convolutions that give
outputs of the published shapes (for speed measurements of the full path).

* ultralytics YOLOv8 export: input ``images`` (1, 3, 640, 640), output ``output0`` (1, 84, 8400);
* ultralytics YOLOv5 export: input ``images`` (1, 3, 640, 640), output ``output0`` (1, 25200, 85);
* easy_ViTPose export: input ``input_0`` (B, 3, 256, 192), output ``output_0`` (B, J, 64, 48), J 17 or 25;
* super-resolution (ESRGAN, Real-ESRGAN) export: input ``input`` (1, 3, H, W), output ``output`` (1, 3, sH, sW):
  exact nearest-neighbour upsampling, an SR-shaped net, and two that are not upscalers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
YOLO_STRIDES = (8, 16, 32)


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def constant_model(path: Path, input_name: str, input_shape: list, output_name: str,
                   output: np.ndarray) -> Path:
    """A model whose output ``output_name`` is ``output`` whatever the input (``input_shape`` may name dynamic
    axes by strings): output = planted + 0 x sum(input), so the input stays part of the graph."""
    planted = numpy_helper.from_array(np.asarray(output, dtype=np.float32), "planted")
    zero = numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero")
    nodes = [helper.make_node("ReduceSum", [input_name], ["total"], keepdims=0),
             helper.make_node("Mul", ["total", "zero"], ["nothing"]),
             helper.make_node("Add", ["planted", "nothing"], [output_name])]
    graph = helper.make_graph(
        nodes, "planted", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, list(np.shape(output)))],
        initializer=[planted, zero])
    return _save(graph, path)


def yolo_conv_model(path: Path, layout: str, side: int = 640, classes: int = 80, seed: int = 0,
                    score_bias: float | None = None) -> Path:
    """A YOLO-shaped model: per stride 8, 16, 32 a strided convolution to (4 + C) channels per cell (YOLOv8) or
    3 anchors x (5 + C) (YOLOv5), laid out as ultralytics exports them: (1, 84, 8400) or (1, 25200, 85) at 640
    px; sigmoid scores, boxes in input px.  The score logits are offset by ``score_bias`` so that, as on a real
    frame, a few candidates score high: by default -0.5 (YOLOv8) and 0 (YOLOv5, whose score is a product of
    two), which leave 33 and 281 of them over 0.35 on a random 1280x720 frame."""
    rng = np.random.default_rng(seed)
    channels, anchors = (4 + classes, 1) if layout == "yolov8" else (5 + classes, 3)
    scale = np.ones((1, 1, channels), dtype=np.float32)
    scale[..., :4] = side  # boxes in input px, scores in (0, 1)
    bias = np.zeros((1, 1, channels), dtype=np.float32)
    bias[..., 4:] = (-0.5 if layout == "yolov8" else 0.0) if score_bias is None else score_bias
    inits = [numpy_helper.from_array(scale, "scale"), numpy_helper.from_array(bias, "bias"),
             numpy_helper.from_array(np.array([1, anchors, channels, -1], dtype=np.int64), "split"),
             numpy_helper.from_array(np.array([1, -1, channels], dtype=np.int64), "rows")]
    nodes, heads = [], []
    for stride in YOLO_STRIDES:
        w = rng.normal(0, 0.05, (anchors * channels, 3, stride, stride)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{stride}"))
        nodes += [helper.make_node("Conv", ["images", f"w{stride}"], [f"c{stride}"], strides=[stride, stride]),
                  helper.make_node("Reshape", [f"c{stride}", "split"], [f"a{stride}"]),  # (1, A, ch, cells)
                  helper.make_node("Transpose", [f"a{stride}"], [f"t{stride}"], perm=[0, 1, 3, 2]),
                  helper.make_node("Reshape", [f"t{stride}", "rows"], [f"h{stride}"])]  # (1, A x cells, ch)
        heads.append(f"h{stride}")
    rows = anchors * sum((side // s) ** 2 for s in YOLO_STRIDES)
    nodes += [helper.make_node("Concat", heads, ["raw"], axis=1),
              helper.make_node("Add", ["raw", "bias"], ["logits"]),
              helper.make_node("Sigmoid", ["logits"], ["squashed"])]
    if layout == "yolov8":
        nodes += [helper.make_node("Mul", ["squashed", "scale"], ["scaled"]),
                  helper.make_node("Transpose", ["scaled"], ["output0"], perm=[0, 2, 1])]
        out_shape = [1, channels, rows]
    else:
        nodes.append(helper.make_node("Mul", ["squashed", "scale"], ["output0"]))
        out_shape = [1, rows, channels]
    graph = helper.make_graph(
        nodes, layout, [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)], initializer=inits)
    return _save(graph, path)


def vitpose_conv_model(path: Path, joints: int = 25, seed: int = 0) -> Path:
    """A ViTPose-shaped model: one stride-4 convolution from (B, 3, 256, 192) to (B, J, 64, 48) heatmaps."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.05, (joints, 3, 4, 4)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["input_0", "w"], ["output_0"], strides=[4, 4])]
    graph = helper.make_graph(
        nodes, "vitpose", [helper.make_tensor_value_info("input_0", TensorProto.FLOAT, ["batch_size", 3, 256, 192])],
        [helper.make_tensor_value_info("output_0", TensorProto.FLOAT, ["batch_size", joints, 64, 48])],
        initializer=[numpy_helper.from_array(w, "w")])
    return _save(graph, path)


def planted_outputs_model(path: Path, input_name: str, input_shape: list, outputs: dict[str, np.ndarray]) -> Path:
    """A model whose outputs are the planted arrays of ``outputs`` (name → array) whatever the input: each is
    planted + 0 x sum(input), so the input stays part of the graph."""
    zero = numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero")
    inits = [zero]
    nodes = [helper.make_node("ReduceSum", [input_name], ["total"], keepdims=0),
             helper.make_node("Mul", ["total", "zero"], ["nothing"])]
    infos = []
    for name, array in outputs.items():
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), f"planted_{name}"))
        nodes.append(helper.make_node("Add", [f"planted_{name}", "nothing"], [name]))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(np.shape(array))))
    graph = helper.make_graph(
        nodes, "planted", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)], infos,
        initializer=inits)
    return _save(graph, path)


def lw3d_conv_model(path: Path, input_hw: tuple[int, int] = (256, 448), seed: int = 0) -> Path:
    """A lightweight-3D-shaped model: stride-8 convolutions from ``data`` (1, 3, H, W) to ``features`` (1, 57,
    H/8, W/8), ``heatmaps`` (1, 19, ...) and ``pafs`` (1, 38, ...), as its convert_to_onnx.py names them."""
    rng = np.random.default_rng(seed)
    h, w = input_hw
    nodes, inits, infos = [], [], []
    for name, channels in (("features", 57), ("heatmaps", 19), ("pafs", 38)):
        weight = rng.normal(0, 0.05, (channels, 3, 8, 8)).astype(np.float32)
        inits.append(numpy_helper.from_array(weight, f"w_{name}"))
        nodes.append(helper.make_node("Conv", ["data", f"w_{name}"], [name], strides=[8, 8]))
        infos.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, channels, h // 8, w // 8]))
    graph = helper.make_graph(
        nodes, "lw3d", [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, h, w])], infos,
        initializer=inits)
    return _save(graph, path)


# -- super-resolution models (the enhance stage): ESRGAN exports' layout, input "input" (1, 3, H, W) float32 RGB
# in [0, 1], output "output" (1, 3, sH, sW), H and W dynamic unless fixed ----------------------------------------

def _save_sr(path: Path, nodes, initializers, in_hw=("height", "width"), out_shape=(1, 3, None, None),
             half: bool = False) -> Path:
    import onnx
    from onnx import TensorProto, helper

    dtype = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    inp = helper.make_tensor_value_info("input", dtype, [1, 3, *in_hw])
    out = helper.make_tensor_value_info("output", dtype, list(out_shape))
    graph = helper.make_graph(nodes, path.stem, [inp], [out], initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # onnxruntime of any recent version reads it
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def nearest_model(path: Path, scale: int = 2, fixed_hw: tuple[int, int] | None = None, half: bool = False) -> Path:
    """Exact nearest-neighbour upsampling by ``scale`` (ONNX Resize, half-pixel centres, round_prefer_floor).

    Output pixel u samples input (u + 0.5) / s - 0.5 rounded half down = floor(u / s), as cv2's INTER_NEAREST does.
    """
    from onnx import TensorProto, helper

    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, float(scale), float(scale)])
    node = helper.make_node("Resize", ["input", "", "scales"], ["output"], mode="nearest")
    return _save_sr(path, [node], [scales], in_hw=fixed_hw or ("height", "width"), half=half)


def sr_model(path: Path, scale: int = 4, features: int = 16, seed: int = 0) -> Path:
    """An SR-shaped net: conv 3x3 (3 → F), ReLU, conv 3x3 (F → 3 s²), DepthToSpace(s), random weights."""
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((features, 3, 3, 3)) * 0.3).astype(np.float32)
    b1 = (rng.standard_normal(features) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((3 * scale * scale, features, 3, 3)) * 0.1).astype(np.float32)
    b2 = np.full(3 * scale * scale, 0.5, np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("DepthToSpace", ["c2"], ["output"], blocksize=scale, mode="CRD")]
    return _save_sr(path, nodes, inits)


def padding_model(path: Path) -> Path:
    """Not a super-resolution model: its output is its input padded by one pixel (H + 2, W + 2)."""
    from onnx import TensorProto, helper

    pads = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1])
    return _save_sr(path, [helper.make_node("Pad", ["input", "pads"], ["output"])], [pads])


def grey_model(path: Path) -> Path:
    """Not an RGB model: one output channel (the mean of the input's), upsampled x2."""
    from onnx import TensorProto, helper

    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1.0, 1.0, 2.0, 2.0])
    nodes = [helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("Resize", ["mean", "", "scales"], ["output"], mode="nearest")]
    return _save_sr(path, nodes, [scales], out_shape=(1, 1, None, None))
