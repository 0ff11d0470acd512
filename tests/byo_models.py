"""Tiny ONNX models with the published tensor names and shapes of the bring-your-own families, built here.

No weights are downloaded: each model either returns a planted tensor (the
decoders' known answers) or runs a few random strided convolutions that give
outputs of the published shapes (for speed measurements of the full path).

* ultralytics YOLOv8 export: input ``images`` (1, 3, 640, 640), output ``output0`` (1, 84, 8400);
* ultralytics YOLOv5 export: input ``images`` (1, 3, 640, 640), output ``output0`` (1, 25200, 85);
* easy_ViTPose export: input ``input_0`` (B, 3, 256, 192), output ``output_0`` (B, J, 64, 48), J 17 or 25;
* img2pose "nopost" export (the seed's): input ``images`` (3, 720, 1280), outputs ``boxes``, ``labels``,
  ``scores``, ``dofs``.
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


def img2pose_resnet18_model(path: Path, boxes_xyxy: np.ndarray, scores: np.ndarray, dofs: np.ndarray,
                            input_hw: tuple[int, int] = (720, 1280), seed: int = 0) -> Path:
    """:func:`img2pose_model` whose input first runs through a ResNet-18 trunk with random weights (img2pose's
    backbone: conv 7x7/2, max pool, four stages of two basic blocks, 64-512 channels; batch norm folded away as in
    an inference export), so that the run costs what img2pose's backbone costs at ``input_hw``.  The FPN, region
    proposals and the box and pose heads are left out: the outputs are the planted ones (+ 0 x the features)."""
    rng = np.random.default_rng(seed)
    inits = [numpy_helper.from_array(np.zeros((), dtype=np.float32), "zero"),
             numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0")]
    nodes = [helper.make_node("Unsqueeze", ["images", "axis0"], ["batch"])]

    def conv(x: str, name: str, c_in: int, c_out: int, k: int, stride: int, relu: bool = True) -> str:
        w = (rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(np.zeros(c_out, np.float32),
                                                                                    f"{name}_b")])
        nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [f"{name}_conv"], strides=[stride] * 2,
                                      pads=[k // 2] * 4, kernel_shape=[k, k]))
        if not relu:
            return f"{name}_conv"
        nodes.append(helper.make_node("Relu", [f"{name}_conv"], [name]))
        return name

    x = conv("batch", "stem", 3, 64, 7, 2)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4))
    x, c_in = "pool", 64
    for stage, c_out in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage and not block else 1
            name = f"s{stage}b{block}"
            y = conv(conv(x, f"{name}a", c_in, c_out, 3, stride), f"{name}c", c_out, c_out, 3, 1, relu=False)
            skip = conv(x, f"{name}d", c_in, c_out, 1, stride, relu=False) if stride > 1 or c_in != c_out else x
            nodes.extend([helper.make_node("Add", [y, skip], [f"{name}_sum"]),
                          helper.make_node("Relu", [f"{name}_sum"], [f"{name}_out"])])
            x, c_in = f"{name}_out", c_out
    nodes.extend([helper.make_node("ReduceSum", [x], ["total"], keepdims=0),
                  helper.make_node("Mul", ["total", "zero"], ["nothing"])])
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    n = len(boxes)
    planted = {"boxes": boxes, "scores": np.asarray(scores, dtype=np.float32).reshape(n),
               "dofs": np.asarray(dofs, dtype=np.float32).reshape(n, 6), "labels": np.ones(n, dtype=np.float32)}
    for name, array in planted.items():
        inits.append(numpy_helper.from_array(array, f"planted_{name}"))
        nodes.append(helper.make_node("Add", [f"planted_{name}", "nothing"], [name]))
    outputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(a.shape)) for name, a in planted.items()]
    graph = helper.make_graph(nodes, "img2pose_resnet18_trunk",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [3, *input_hw])],
                              outputs, initializer=inits)
    return _save(graph, path)

VITPOSE_SIZES = {"s": (384, 12), "b": (768, 12), "l": (1024, 24), "h": (1280, 32)}  # width D, blocks L
"""easy_ViTPose's ``model_small`` ... ``model_huge`` backbones (configs/ViTPose_common.py)."""


def vitpose_shapes(size: str = "s", joints: int = 25, depth: int | None = None) -> dict[str, tuple[int, ...]]:
    """The state dict keys and shapes of easy_ViTPose's ViTPose-``size`` at 256x192 (``depth`` blocks, default the
    size's), written out from its vit.py and topdown_heatmap_simple_head.py (the classic head of every published
    size: two 256-filter 4x4 deconvolutions, each + BatchNorm + ReLU, then a 1x1 conv to J maps)."""
    width, blocks = VITPOSE_SIZES[size]
    d = width
    shapes = {"backbone.pos_embed": (1, 16 * 12 + 1, d), "backbone.patch_embed.proj.weight": (d, 3, 16, 16),
              "backbone.patch_embed.proj.bias": (d,)}
    for i in range(blocks if depth is None else depth):
        b = f"backbone.blocks.{i}."
        shapes |= {b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "attn.qkv.weight": (3 * d, d),
                   b + "attn.qkv.bias": (3 * d,), b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
                   b + "norm2.weight": (d,), b + "norm2.bias": (d,), b + "mlp.fc1.weight": (4 * d, d),
                   b + "mlp.fc1.bias": (4 * d,), b + "mlp.fc2.weight": (d, 4 * d), b + "mlp.fc2.bias": (d,)}
    shapes |= {"backbone.last_norm.weight": (d,), "backbone.last_norm.bias": (d,)}
    h = "keypoint_head."
    for conv, norm, in_dim in ((0, 1, d), (3, 4, 256)):
        shapes[f"{h}deconv_layers.{conv}.weight"] = (in_dim, 256, 4, 4)  # ConvTranspose2d: (in, out, kh, kw)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{h}deconv_layers.{norm}.{name}"] = (256,)
        shapes[f"{h}deconv_layers.{norm}.num_batches_tracked"] = ()
    shapes |= {f"{h}final_layer.weight": (joints, 256, 1, 1), f"{h}final_layer.bias": (joints,)}
    return shapes


def vitpose_state_dict(size: str = "s", joints: int = 25, depth: int | None = None, seed: int = 0,
                       device: str = "cpu") -> dict:
    """Random weights in :func:`vitpose_shapes`' layout (torch tensors; ``device="meta"`` gives shapes only):
    norms' scales about 1, variances positive, the final layer scaled so that heatmaps peak about 0.5 to 1."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in vitpose_shapes(size, joints, depth).items():
        if device == "meta" or key.endswith("num_batches_tracked"):
            state[key] = torch.zeros(shape, dtype=torch.int64) if not shape else torch.empty(shape, device=device)
        elif key.endswith("running_var") or (key.endswith(".weight") and len(shape) == 1):  # norm scales
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        else:
            std = 0.5 if key == "backbone.pos_embed" else 0.01 if "final_layer" in key else 0.05
            state[key] = torch.randn(shape, generator=generator) * std
    return state


def vitpose_checkpoint(path: Path, size: str = "s", joints: int = 25, depth: int | None = None,
                       seed: int = 0) -> Path:
    """:func:`vitpose_state_dict` saved as easy_ViTPose's published ``vitpose-<size>-<dataset>.pth`` are: ViTPose's
    training checkpoint, ``{"state_dict": ..., "meta": ...}`` (torch.save's zip)."""
    import collections

    import torch

    state = collections.OrderedDict(vitpose_state_dict(size, joints, depth, seed))
    torch.save({"meta": {"epoch": 210, "iter": 0, "mmcv_version": "1.3.9"}, "state_dict": state}, str(path))
    return Path(path)


def vitpose_planted_checkpoint(path: Path, grid_yx: np.ndarray, depth: int = 1, peak: float = 0.9) -> Path:
    """A ViTPose-s checkpoint (:func:`vitpose_shapes`' layout, J = len(grid_yx)) whose heatmaps are smooth peaks at
    known places, whatever the image: heatmap px (4 y + 1.5, 4 x + 1.5) for each joint's ``grid_yx`` (J, 2) on the
    16 x 12 patch grid, about ``peak`` high.

    Hand-set: the patch embedding is 0, so token (r, c) is ``pos_embed``'s: channel j holds a Gaussian
    (sigma 1 patch) about joint j's grid point, channel J + j its negative, and two more channels +-f pad each
    token's variance to one constant, so that the LayerNorms are linear; every block adds 0 (its attention and
    MLP outputs are 0); each deconvolution is the x2 bilinear kernel (0.25, 0.75, 0.75, 0.25)^2 on channel j,
    which puts input px i at output 2 i + 0.5, with identity batch norms; the final 1x1 conv picks channel j.
    """
    import collections

    import torch

    joints = len(grid_yx)
    shapes = vitpose_shapes("s", joints, depth)
    state = {k: torch.zeros(shape, dtype=torch.int64 if not shape else torch.float32) for k, shape in shapes.items()}
    for key in shapes:
        if key.endswith(("norm1.weight", "norm2.weight", "last_norm.weight", "layers.1.weight", "layers.4.weight")):
            state[key][:] = 1.0
        if key.endswith("running_var"):
            state[key][:] = 1.0 - 1e-5  # + eps = 1: the batch norms pass their input through
    rows, cols = np.mgrid[0:16, 0:12]
    bumps = np.stack([np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / 2.0) for y, x in grid_yx]).reshape(joints, -1)
    energy = (bumps ** 2).sum(axis=0)
    fill = np.sqrt(energy.max() + 1.0 - energy)
    tokens = np.zeros((192, 384))
    tokens[:, :joints], tokens[:, joints:2 * joints] = bumps.T, -bumps.T
    tokens[:, 2 * joints], tokens[:, 2 * joints + 1] = fill, -fill
    state["backbone.pos_embed"][0, 1:] = torch.from_numpy(tokens)
    sigma = np.sqrt(2 * (energy.max() + 1.0) / 384)  # every token's std over its channels
    kernel = np.array([0.25, 0.75, 0.75, 0.25])
    for conv in (0, 3):
        for j in range(joints):
            state[f"keypoint_head.deconv_layers.{conv}.weight"][j, j] = torch.from_numpy(np.outer(kernel, kernel))
    for j in range(joints):
        state["keypoint_head.final_layer.weight"][j, j] = float(peak * sigma)
    torch.save({"meta": {"epoch": 0}, "state_dict": collections.OrderedDict(state)}, str(path))
    return Path(path)
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
