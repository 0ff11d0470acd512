"""Tiny ONNX models with the published tensor names and shapes of the bring-your-own families, built here.

No weights are downloaded: each model either returns a planted tensor (the
decoders' known answers) or runs a few random strided convolutions that give
outputs of the published shapes (for speed measurements of the full path).

* ultralytics YOLOv8 export: input ``images`` (1, 3, 640, 640), output ``output0`` (1, 84, 8400);
* ultralytics YOLOv5 export: input ``images`` (1, 3, 640, 640), output ``output0`` (1, 25200, 85);
* easy_ViTPose export: input ``input_0`` (B, 3, 256, 192), output ``output_0`` (B, J, 64, 48), J 17 or 25;
* img2pose "nopost" export (the seed's): input ``images`` (3, 720, 1280), outputs ``boxes``, ``labels``,
  ``scores``, ``dofs``.
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


def img2pose_model(path: Path, boxes_xyxy: np.ndarray, scores: np.ndarray, dofs: np.ndarray,
                   input_shape: list = (3, 720, 1280)) -> Path:
    """An img2pose-shaped export with planted outputs, as the seed's ``img2pose_v1_ft_300w_lp_static_nopost.onnx``
    names them: input ``images`` (3, 720, 1280) (or ``input_shape``, strings for dynamic axes), outputs ``boxes``
    (N, 4) float, ``labels`` (N,) int64 (1: face), ``scores`` (N,) float and ``dofs`` (N, 6) float, whatever the
    input (planted + 0 x sum(input))."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    planted = {"boxes": boxes, "scores": np.asarray(scores, dtype=np.float32).reshape(n),
               "dofs": np.asarray(dofs, dtype=np.float32).reshape(n, 6), "labels": np.ones(n, dtype=np.float32)}
    inits = [numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero")]
    nodes = [helper.make_node("ReduceSum", ["images"], ["total"], keepdims=0),
             helper.make_node("Mul", ["total", "zero"], ["nothing"])]
    for name, array in planted.items():
        inits.append(numpy_helper.from_array(array, f"planted_{name}"))
        out = f"{name}_float" if name == "labels" else name
        nodes.append(helper.make_node("Add", [f"planted_{name}", "nothing"], [out]))
    nodes.append(helper.make_node("Cast", ["labels_float"], ["labels"], to=TensorProto.INT64))
    outputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [n, 4]),
               helper.make_tensor_value_info("labels", TensorProto.INT64, [n]),
               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [n]),
               helper.make_tensor_value_info("dofs", TensorProto.FLOAT, [n, 6])]
    graph = helper.make_graph(nodes, "img2pose_planted",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))],
                              outputs, initializer=inits)
    return _save(graph, path)
