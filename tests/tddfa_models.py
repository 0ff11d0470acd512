"""A 3DDFA_V2 folder built here: tiny ONNX models with the published tensor names and shapes, and a synthetic
BFM with the published pickle keys and layouts.  No weights are downloaded.

* ``FaceBoxesProd.onnx``: input ``input`` (1, 3, H, W) (dynamic H, W as 3DDFA_V2 exports it), outputs
  ``output`` (1, A, 4) box offsets and an exporter-named (1, A, 2) softmax scores; planted outputs, or
  FaceBoxes' own architecture with random weights (4.0 MB, as the published 4.07 MB checkpoint);
* ``mb1_120x120.onnx``: input ``input`` (1, 3, 120, 120), output ``output`` (1, 62); planted, or MobileNet V1
  with random weights (13.0 MB, 3.3 M parameters, as the published export);
* ``bfm_noneck_v3.onnx``: inputs ``R`` (3, 3), ``offset`` (3, 1), ``alpha_shp`` (40, 1), ``alpha_exp`` (10, 1),
  output ``output`` (3, V);
* ``param_mean_std_62d_120x120.pkl``: {"mean": (62,), "std": (62,)} float32;
* ``bfm_noneck_v3.pkl``: {"u": (3V, 1), "w_shp": (3V, 40), "w_exp": (3V, 10), "tri": (3, F), "keypoints":
  (204,)} and ``tri.pkl`` (3, F) int32, Fortran-ordered as published.

The synthetic BFM's mean face is MediaPipe's canonical face (in micrometres) moved by ``BFM_OFFSET_UM``, so the
canonical face sits in it at a known place; its 68 keypoints include the canonical landmarks of
``rigcast.models.tddfa.MEDIAPIPE_FROM_68``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from byo_models import _save, planted_outputs_model

BFM_OFFSET_UM = np.array([1500.0, -20000.0, -60000.0])


def synthetic_bfm(seed: int = 0) -> dict:
    """The published keys and layouts; mean face = the canonical face in µm + ``BFM_OFFSET_UM``."""
    from rigcast.face.geometry import canonical_face
    from rigcast.models.tddfa import MEDIAPIPE_FROM_68

    rng = np.random.default_rng(seed)
    canon = canonical_face()
    mean = canon.xyz_m * 1e6 + BFM_OFFSET_UM  # (468, 3) µm
    v = len(mean)
    ids = rng.choice(v, 68, replace=False)
    for i68, mp in MEDIAPIPE_FROM_68.items():
        ids[ids == mp] = ids[i68]  # keep the 68 ids distinct
        ids[i68] = mp
    keypoints = (3 * ids[:, None] + np.arange(3)).reshape(-1)
    w = rng.normal(0.0, 1.0, (3 * v, 60)).astype(np.float32)
    w /= np.linalg.norm(w, axis=0)  # unit columns, as the BFM's PCA basis
    return {"u": mean.reshape(-1, 1).astype(np.float32), "w_shp": w[:, :40].copy(), "w_exp": w[:, 40:50].copy(),
            "tri": np.asfortranarray(canon.triangles.T.astype(np.int32)), "keypoints": keypoints.astype(np.int64)}


def param_stats(seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    return {"mean": rng.normal(0, 1, 62).astype(np.float32), "std": rng.uniform(0.5, 2.0, 62).astype(np.float32)}


def bfm_head_model(path: Path, bfm: dict) -> Path:
    """The BFM ONNX head as ``bfm/bfm_onnx.py`` defines it: ``R @ (u + w @ alpha) + offset``, (3, V)."""
    u = bfm["u"].reshape(-1, 3).T.astype(np.float32)  # (3, V)
    w = np.concatenate([bfm["w_shp"], bfm["w_exp"]], axis=1).astype(np.float32)
    w = w.reshape(-1, 3, w.shape[1]).transpose(1, 0, 2).copy()  # (3, V, K)
    inits = [numpy_helper.from_array(u, "u"), numpy_helper.from_array(w, "w")]
    nodes = [helper.make_node("Concat", ["alpha_shp", "alpha_exp"], ["alpha"], axis=0),
             helper.make_node("MatMul", ["w", "alpha"], ["wa"]),  # (3, V, 1)
             helper.make_node("Squeeze", ["wa", "last"], ["wa2"]),
             helper.make_node("Add", ["u", "wa2"], ["x"]),
             helper.make_node("MatMul", ["R", "x"], ["rx"]),
             helper.make_node("Add", ["rx", "offset"], ["output"])]
    inits.append(numpy_helper.from_array(np.array([2], dtype=np.int64), "last"))
    v = u.shape[1]
    graph = helper.make_graph(
        nodes, "bfm", [helper.make_tensor_value_info("R", TensorProto.FLOAT, [3, 3]),
                       helper.make_tensor_value_info("offset", TensorProto.FLOAT, [3, 1]),
                       helper.make_tensor_value_info("alpha_shp", TensorProto.FLOAT, ["shp", 1]),
                       helper.make_tensor_value_info("alpha_exp", TensorProto.FLOAT, ["exp", 1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [3, v])], initializer=inits)
    return _save(graph, path)


def encode_boxes(boxes_norm: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """SSD encoding with variances 0.1, 0.2: boxes (N, 4) xyxy normalised → offsets (N, 4) against priors (N, 4)
    cx, cy, w, h."""
    centre, size = (boxes_norm[:, :2] + boxes_norm[:, 2:]) / 2, boxes_norm[:, 2:] - boxes_norm[:, :2]
    return np.concatenate([(centre - priors[:, :2]) / (0.1 * priors[:, 2:]), np.log(size / priors[:, 2:]) / 0.2], 1)


def planted_faceboxes(path: Path, input_hw: tuple[int, int], boxes_px: list, scores: list,
                      conf_name: str = "onnx::Softmax_1") -> Path:
    """A FaceBoxes-named model whose outputs plant ``boxes_px`` (input px, xyxy), each on the prior nearest its
    centre and size, with ``scores``; every other prior scores 0.01."""
    from rigcast.models.faceboxes import faceboxes_priors

    h, w = input_hw
    priors = faceboxes_priors(h, w)
    loc = np.zeros((len(priors), 4), np.float32)
    conf = np.tile(np.array([0.99, 0.01], np.float32), (len(priors), 1))
    scale = np.array([w, h, w, h], dtype=np.float64)
    for box, score in zip(boxes_px, scores):
        norm = np.asarray(box, dtype=np.float64) / scale
        centre, size = (norm[:2] + norm[2:]) / 2, norm[2:] - norm[:2]
        k = int(np.argmin(np.sum((priors[:, :2] - centre) ** 2, 1) + np.sum((priors[:, 2:] - size) ** 2, 1)))
        loc[k] = encode_boxes(norm[None], priors[k:k + 1])[0]
        conf[k] = [1 - score, score]
    return planted_outputs_model(path, "input", [1, 3, "height", "width"],
                                 {"output": loc[None], conf_name: conf[None]})


def write_pickle(path: Path, obj) -> Path:
    """Our own synthetic object pickled as 3DDFA_V2 wrote its files (protocol 3 and 4)."""
    path = Path(path)
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def tddfa_folder(folder: Path, regressor_output: np.ndarray | None = None, faceboxes_hw=None, boxes_px=(),
                 scores=(), bfm_head: bool = True, layout: str = "flat", bfm: dict | None = None) -> Path:
    """A 3DDFA_V2 folder: ``layout`` "flat" (all files at its top) or "checkout" (3DDFA_V2's own paths).
    ``regressor_output`` (62,) plants the regressor's output (MobileNet V1 with random weights otherwise);
    ``faceboxes_hw`` with ``boxes_px`` plants detections for that input size (FaceBoxes' network otherwise)."""
    from byo_models import constant_model

    folder = Path(folder)
    sub = {"FaceBoxesProd.onnx": "FaceBoxes/weights", "mb1_120x120.onnx": "weights"} if layout == "checkout" else {}

    def at(name: str) -> Path:
        where = folder / sub.get(name, "configs" if layout == "checkout" else "")
        where.mkdir(parents=True, exist_ok=True)
        return where / name

    bfm = synthetic_bfm() if bfm is None else bfm
    write_pickle(at("bfm_noneck_v3.pkl"), bfm)
    write_pickle(at("tri.pkl"), bfm["tri"])
    write_pickle(at("param_mean_std_62d_120x120.pkl"), param_stats())
    if bfm_head:
        bfm_head_model(at("bfm_noneck_v3.onnx"), bfm)
    if regressor_output is None:
        mobilenet_v1_model(at("mb1_120x120.onnx"))
    else:
        constant_model(at("mb1_120x120.onnx"), "input", [1, 3, 120, 120], "output",
                       np.asarray(regressor_output, np.float32).reshape(1, 62))
    if faceboxes_hw is None:
        faceboxes_net_model(at("FaceBoxesProd.onnx"))
    else:
        planted_faceboxes(at("FaceBoxesProd.onnx"), faceboxes_hw, list(boxes_px), list(scores))
    return folder


def regressor_output_for(params: np.ndarray) -> np.ndarray:
    """The regressor output (62,) that :func:`param_stats` de-normalises into ``params``."""
    stats = param_stats()
    return (np.asarray(params, np.float64) - stats["mean"]) / stats["std"]


# -- the published architectures, random weights (for speed at the published sizes) --------------------------------


class _Graph:
    """A small ONNX graph builder: convolutions with their batch norm folded into a bias (as torch.onnx.export's
    constant folding leaves them), ReLU, pooling, concatenation."""

    def __init__(self, seed: int):
        self.rng, self.nodes, self.inits, self.count = np.random.default_rng(seed), [], [], 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, relu: bool = True,
             bias: bool = True) -> str:
        w, b, out = self.name("w"), self.name("b"), self.name("conv")
        fan = cin // groups * k * k
        self.inits += [numpy_helper.from_array(self.rng.normal(0, np.sqrt(2 / fan), (cout, cin // groups, k, k))
                                               .astype(np.float32), w),
                       numpy_helper.from_array(np.zeros(cout, np.float32), b)]
        self.nodes.append(helper.make_node("Conv", [x, w, b], [out], kernel_shape=[k, k], strides=[stride, stride],
                                           pads=[k // 2] * 4, group=groups))
        return self.op("Relu", [out]) if relu else out

    def op(self, kind: str, inputs: list[str], **attrs) -> str:
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def const(self, array: np.ndarray) -> str:
        name = self.name("c")
        self.inits.append(numpy_helper.from_array(array, name))
        return name


def mobilenet_v1_model(path: Path, widen: float = 1.0, seed: int = 0) -> Path:
    """3DDFA_V2's ``mb1_120x120`` architecture (MobileNet V1, ``models/mobilenet_v1.py``): a 3x3 stride-2
    convolution to 32 channels, 13 depthwise-separable blocks to 1024, average pool, a dense layer to 62."""
    g = _Graph(seed)
    c = lambda n: int(n * widen)  # noqa: E731
    x = g.conv("input", 3, c(32), 3, 2)
    blocks = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)] + \
        [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    for cin, cout, stride in blocks:
        x = g.conv(x, c(cin), c(cin), 3, stride, groups=c(cin))
        x = g.conv(x, c(cin), c(cout), 1)
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    fc = g.const(g.rng.normal(0, 0.01, (c(1024), 62)).astype(np.float32))
    g.nodes.append(helper.make_node("MatMul", [x, fc], ["output"]))
    graph = helper.make_graph(
        g.nodes, "mobilenet_v1", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 120, 120])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 62])], initializer=g.inits)
    return _save(graph, path)


def faceboxes_net_model(path: Path, seed: int = 0) -> Path:
    """FaceBoxes' architecture (``FaceBoxes/models/faceboxes.py``): two CReLU convolutions (7x7 stride 4, 5x5
    stride 2) with max pools, three inception blocks, two stride-2 stages; heads of 21, 1, 1 anchors; the
    scores soft-maxed.  Dynamic height and width, as 3DDFA_V2 exports it."""
    g = _Graph(seed)

    def crelu(x, cin, cout, k, stride):
        y = g.conv(x, cin, cout, k, stride, relu=False)
        return g.op("Relu", [g.op("Concat", [y, g.op("Neg", [y])], axis=1)])

    def pool(x):
        return g.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])

    def inception(x):
        a = g.conv(x, 128, 32, 1)
        b = g.conv(g.op("AveragePool", [x], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1],
                        count_include_pad=1), 128, 32, 1)
        c = g.conv(g.conv(x, 128, 24, 1), 24, 32, 3)
        d = g.conv(g.conv(g.conv(x, 128, 24, 1), 24, 32, 3), 32, 32, 3)
        return g.op("Concat", [a, b, c, d], axis=1)

    x = pool(crelu("input", 3, 24, 7, 4))
    x = pool(crelu(x, 48, 64, 5, 2))
    for _ in range(3):
        x = inception(x)
    s1 = x
    s2 = g.conv(g.conv(s1, 128, 128, 1), 128, 256, 3, 2)
    s3 = g.conv(g.conv(s2, 256, 128, 1), 128, 256, 3, 2)
    shape4, shape2 = g.const(np.array([1, -1, 4], np.int64)), g.const(np.array([1, -1, 2], np.int64))
    locs, confs = [], []
    for source, cin, anchors in ((s1, 128, 21), (s2, 256, 1), (s3, 256, 1)):
        for kind, ch, shape, out in (("loc", 4, shape4, locs), ("conf", 2, shape2, confs)):
            y = g.conv(source, cin, anchors * ch, 3, relu=False)
            out.append(g.op("Reshape", [g.op("Transpose", [y], perm=[0, 2, 3, 1]), shape]))
    g.nodes.append(helper.make_node("Concat", locs, ["output"], axis=1))
    g.nodes.append(helper.make_node("Softmax", [g.op("Concat", confs, axis=1)], ["scores"], axis=-1))
    graph = helper.make_graph(
        g.nodes, "faceboxes", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, "anchors", 4]),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, "anchors", 2])], initializer=g.inits)
    return _save(graph, path)


def published_size_bfm(seed: int = 0) -> dict:
    """A BFM of the published sizes (38365 vertices, 76073 triangles, 40 + 10 columns) and keys, random."""
    rng = np.random.default_rng(seed)
    v, f = 38365, 76073
    mean = rng.normal(0, 5e4, (v, 3)).astype(np.float32)
    w = rng.normal(0, 1 / np.sqrt(3 * v), (3 * v, 50)).astype(np.float32)
    keypoints = (3 * rng.choice(v, 68, replace=False)[:, None] + np.arange(3)).reshape(-1)
    return {"u": mean.reshape(-1, 1), "w_shp": w[:, :40].copy(), "w_exp": w[:, 40:].copy(),
            "tri": np.asfortranarray(rng.integers(0, v, (3, f)).astype(np.int32)), "keypoints": keypoints}
