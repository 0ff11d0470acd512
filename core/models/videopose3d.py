"""VideoPose3D's TemporalModel (Pavllo et al. 2019) in numpy, loaded from its checkpoints' ``model_pos``.

The architecture, as VideoPose3D's ``common/model.py`` builds it for inference (T frames, C channels,
J joints; every convolution is over time, with no padding):

    x (J*2, T) → expand_conv (width w0) → expand_bn → ReLU
    for block i = 1..n-1, dilation d_i = w0 * w1 * ... * w_{i-1}:
        res = x cropped by pad_i = (w_i - 1) * d_i / 2 at both ends (causal: 2 * pad_i at the start)
        x = ReLU(layers_bn[2i-2](layers_conv[2i-2](x)))      width w_i, dilation d_i
        x = res + ReLU(layers_bn[2i-1](layers_conv[2i-1](x))) width 1
    shrink (width 1, with bias) → (J_out*3, T - receptive_field + 1)

Dropout is off and batch norm uses its running statistics (eval mode).  The checkpoint records neither
the filter widths nor causality: the widths are read from the convolution kernels' shapes, and
``causal`` is the caller's (it only moves which frames the residuals keep).  The ``dense`` variant
(undilated wide kernels) is not supported.  Training checkpoints hold ``TemporalModelOptimized1f``'s
weights, which use the same keys and shapes as the reference model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError
from ..formats.torch_checkpoint import load_torch_checkpoint

BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm1d's default, which VideoPose3D keeps


def normalize_screen_coordinates(xy: np.ndarray, width: float, height: float) -> np.ndarray:
    """VideoPose3D's screen normalisation of pixel ``xy (..., 2)``: x to [-1, 1], y scaled alike.

    ``xy / width * 2 - [1, height / width]``, which keeps the aspect ratio (y spans
    [-h/w, h/w]).
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.shape[-1:] != (2,):
        raise InputError(f"xy must be (..., 2), got {xy.shape}")
    return xy / width * 2.0 - np.array([1.0, height / width])


def _taps(weight: np.ndarray) -> np.ndarray:
    """torch's Conv1d weight (C_out, C_in, K) as K contiguous (C_out, C_in) matrices: (K, C_out, C_in).

    ``weight[:, :, k]`` itself is strided in its last axis, which numpy's matmul cannot hand to BLAS
    (it ran 55x slower: 13 s against 0.24 s for 1000 frames of the 243-frame model at 1024 channels, 2 cores).
    """
    return np.ascontiguousarray(weight.transpose(2, 0, 1))


def _conv1d(x: np.ndarray, taps: np.ndarray, dilation: int = 1) -> np.ndarray:
    """Valid 1D convolution of ``x (C_in, T)`` with ``taps (K, C_out, C_in)``: (C_out, T - (K-1)*dilation)."""
    width = taps.shape[0]
    frames = x.shape[1] - (width - 1) * dilation
    out = taps[0] @ x[:, :frames]
    for k in range(1, width):
        out += taps[k] @ x[:, k * dilation: k * dilation + frames]
    return out


def _checked_input(keypoints_xy: np.ndarray, num_joints_in: int, receptive_field: int) -> np.ndarray:
    """``keypoints_xy`` as float32 ``(T, num_joints_in, 2)`` with T ≥ ``receptive_field``, or an InputError."""
    x = np.asarray(keypoints_xy, dtype=np.float32)
    if x.ndim != 3 or x.shape[1:] != (num_joints_in, 2):
        raise InputError(f"keypoints_xy must be (T, {num_joints_in}, 2), got {x.shape}")
    if x.shape[0] < receptive_field:
        raise InputError(f"keypoints_xy needs at least {receptive_field} frames (the receptive field), "
                         f"got {x.shape[0]}")
    return x


@dataclass(frozen=True)
class _BatchNorm:
    """Eval-mode batch norm folded to ``x * scale + shift``, both (C, 1)."""

    scale: np.ndarray
    shift: np.ndarray

    @classmethod
    def from_state(cls, state: dict, prefix: str) -> _BatchNorm:
        gamma, beta, mean, var = (_require(state, f"{prefix}.{name}", 1)
                                  for name in ("weight", "bias", "running_mean", "running_var"))
        if not gamma.shape == beta.shape == mean.shape == var.shape:
            raise ModelError(f"VideoPose3D {prefix} weight, bias, running_mean and running_var must be alike, got "
                             f"{gamma.shape}, {beta.shape}, {mean.shape}, {var.shape}")
        scale = gamma / np.sqrt(var.astype(np.float64) + BATCH_NORM_EPS)
        shift = beta - mean * scale
        return cls(scale.astype(np.float32)[:, None], shift.astype(np.float32)[:, None])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x * self.scale + self.shift


def _require(state: dict, key: str, ndim: int) -> np.ndarray:
    if key not in state:
        raise ModelError(f"VideoPose3D model_pos needs {key!r}; found keys {sorted(state)[:8]}...")
    value = state[key]
    if not isinstance(value, np.ndarray) or value.ndim != ndim:
        found = value.shape if isinstance(value, np.ndarray) else type(value).__name__
        raise ModelError(f"VideoPose3D {key} must be a {ndim}-d tensor, got {found}")
    return value.astype(np.float32)


@dataclass(frozen=True)
class TemporalModel:
    """VideoPose3D's temporal lifting model: 2D keypoints (T, J_in, 2) → 3D (T - receptive_field + 1, J_out, 3).

    Build it with :meth:`from_checkpoint` or :meth:`from_state_dict`.  ``filter_widths`` are read from the
    weights; ``causal`` is not stored in a checkpoint and must match how the model was trained.
    """

    filter_widths: tuple[int, ...]
    causal: bool
    weights: dict = field(repr=False)

    def __post_init__(self) -> None:
        if not self.filter_widths or any(w % 2 == 0 or w < 1 for w in self.filter_widths):
            raise ModelError(f"VideoPose3D filter widths must be odd, got {list(self.filter_widths)}")

    @classmethod
    def from_state_dict(cls, state: dict, causal: bool = False) -> TemporalModel:
        """From VideoPose3D's ``model_pos`` state dict (keys ``expand_conv.weight``, ``layers_conv.N.weight``, ...)."""
        if not isinstance(state, dict):
            raise ModelError(f"VideoPose3D model_pos must be a dict of tensors, got {type(state).__name__}")
        # A model wrapped in DataParallel saves its keys under "module.".
        state = {str(k).removeprefix("module."): v for k, v in state.items()}
        expand = _require(state, "expand_conv.weight", 3)
        channels, in_channels, first_width = expand.shape
        if in_channels % 2:
            raise ModelError(f"VideoPose3D expand_conv takes J*2 input channels, got {in_channels}")
        widths = [first_width]
        convs = []
        block = 0
        while f"layers_conv.{2 * block}.weight" in state:
            wide = _require(state, f"layers_conv.{2 * block}.weight", 3)
            narrow = _require(state, f"layers_conv.{2 * block + 1}.weight", 3)
            if wide.shape[:2] != (channels, channels) or narrow.shape != (channels, channels, 1):
                raise ModelError(f"VideoPose3D block {block} must hold ({channels}, {channels}, w) and "
                                 f"({channels}, {channels}, 1) kernels, got {wide.shape} and {narrow.shape}")
            widths.append(wide.shape[2])
            convs += [wide, narrow]
            block += 1
        shrink = _require(state, "shrink.weight", 3)
        shrink_bias = _require(state, "shrink.bias", 1)
        if shrink.shape[1:] != (channels, 1) or shrink.shape[0] % 3 or shrink_bias.shape != shrink.shape[:1]:
            raise ModelError(f"VideoPose3D shrink must be (J*3, {channels}, 1) with a (J*3,) bias, "
                             f"got {shrink.shape} and {shrink_bias.shape}")
        norms = [_BatchNorm.from_state(state, "expand_bn")]
        norms += [_BatchNorm.from_state(state, f"layers_bn.{i}") for i in range(len(convs))]
        if any(n.scale.shape != (channels, 1) for n in norms):
            raise ModelError(f"VideoPose3D batch norms must have {channels} channels, "
                             f"got {[n.scale.shape[0] for n in norms]}")
        weights = {"expand": _taps(expand), "convs": tuple(_taps(c) for c in convs), "norms": tuple(norms),
                   "shrink": shrink[:, :, 0], "shrink_bias": shrink_bias[:, None]}
        return cls(tuple(int(w) for w in widths), bool(causal), weights)

    @classmethod
    def from_checkpoint(cls, path: str | Path, causal: bool = False) -> TemporalModel:
        """From a VideoPose3D checkpoint file (a dict with ``model_pos``) or a bare state dict, without torch."""
        checkpoint = load_torch_checkpoint(path)
        if isinstance(checkpoint, dict) and "model_pos" in checkpoint:
            checkpoint = checkpoint["model_pos"]
        elif not (isinstance(checkpoint, dict) and any(str(k).endswith("expand_conv.weight") for k in checkpoint)):
            keys = sorted(map(str, checkpoint))[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
            raise ModelError(f"{Path(path).name}: expected a VideoPose3D checkpoint with 'model_pos', found {keys}")
        return cls.from_state_dict(checkpoint, causal)

    @property
    def num_joints_in(self) -> int:
        return self.weights["expand"].shape[2] // 2

    @property
    def num_joints_out(self) -> int:
        return self.weights["shrink"].shape[0] // 3

    @property
    def channels(self) -> int:
        return self.weights["expand"].shape[1]

    @property
    def dilations(self) -> tuple[int, ...]:
        """Dilation of each block's wide convolution: the product of the filter widths before it."""
        return tuple(int(np.prod(self.filter_widths[:i])) for i in range(len(self.filter_widths)))

    @property
    def pads(self) -> tuple[int, ...]:
        """Frames each stage trims from either end: (w_i - 1) * d_i / 2."""
        return tuple((w - 1) * d // 2 for w, d in zip(self.filter_widths, self.dilations))

    @property
    def receptive_field(self) -> int:
        """Input frames behind one output frame: 1 + 2 * sum(pads) = product of the filter widths."""
        return 1 + 2 * sum(self.pads)

    @property
    def causal_shift(self) -> int:
        """How many frames the output lags the centre of its window: 0, or receptive_field // 2 if causal."""
        return self.receptive_field // 2 if self.causal else 0

    def __call__(self, keypoints_xy: np.ndarray) -> np.ndarray:
        """Lift screen-normalised 2D keypoints ``(T, J_in, 2)`` to 3D ``(T - receptive_field + 1, J_out, 3)``.

        Output frame t sees input frames t .. t + receptive_field - 1 (non-causal: it is the pose of frame
        t + receptive_field // 2; causal: of the last of them).
        """
        x = _checked_input(keypoints_xy, self.num_joints_in, self.receptive_field)
        w = self.weights
        norms = w["norms"]
        h = x.reshape(x.shape[0], -1).T  # (J_in*2, T), joint-major as VideoPose3D's view(N, T, -1)
        h = np.maximum(norms[0](_conv1d(h, w["expand"])), 0.0)
        for block in range(len(self.filter_widths) - 1):
            pad, dilation = self.pads[block + 1], self.dilations[block + 1]
            shift = pad if self.causal else 0  # (w // 2) * d, which is pad for odd w
            residual = h[:, pad + shift: h.shape[1] - pad + shift]
            h = np.maximum(norms[1 + 2 * block](_conv1d(h, w["convs"][2 * block], dilation)), 0.0)
            h = residual + np.maximum(norms[2 + 2 * block](_conv1d(h, w["convs"][2 * block + 1])), 0.0)
        out = w["shrink"] @ h + w["shrink_bias"]  # (J_out*3, T')
        return out.T.reshape(-1, self.num_joints_out, 3)

    def lift(self, keypoints_xy: np.ndarray, width: float, height: float) -> np.ndarray:
        """Pixel keypoints ``(T, J_in, 2)`` → 3D ``(T, J_out, 3)``, one pose per input frame (see :func:`lift`)."""
        return lift(self, keypoints_xy, width, height)

    def to_onnx(self, path: str | Path) -> Path:
        """Write the model as ONNX (opset 13): ``keypoints_2d (1, T, J_in, 2)`` → ``pose_3d (1, T', J_out, 3)``.

        Built from the weights with onnx's helper API, so neither writing nor running it needs torch.
        Batch norms are folded into the convolution before them (weight * scale, bias = shift); residual
        crops are Slices.  ``T`` is dynamic; ``T' = T - receptive_field + 1``.
        """
        return _write_onnx(self, Path(path))


def lift(model, keypoints_xy: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixel keypoints ``(T, J_in, 2)`` → 3D ``(T, J_out, 3)`` through ``model`` (numpy or runner-backed).

    Normalises as VideoPose3D does and pads the sequence by repeating its edge frames, as its
    evaluation does (receptive_field // 2 frames each side; causal: all of them before), so output
    frame t is the pose of input frame t.
    """
    xy = normalize_screen_coordinates(keypoints_xy, width, height)
    if xy.ndim != 3 or xy.shape[0] < 1:
        raise InputError(f"keypoints_xy must be (T, {model.num_joints_in}, 2) with T >= 1, got {xy.shape}")
    half = model.receptive_field // 2
    before, after = half + model.causal_shift, half - model.causal_shift
    return model(np.pad(xy, ((before, after), (0, 0), (0, 0)), mode="edge"))


ONNX_INPUT, ONNX_OUTPUT = "keypoints_2d", "pose_3d"


def _write_onnx(model: TemporalModel, path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = model.weights
    inits, nodes = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def conv_bn_relu(x: str, taps: np.ndarray, norm: _BatchNorm, dilation: int, name: str) -> str:
        weight = taps.transpose(1, 2, 0) * norm.scale[:, :, None]  # (C_out, C_in, K), BN scale folded in
        bias = norm.shift[:, 0]
        nodes.append(helper.make_node("Conv", [x, const(f"{name}.weight", weight.astype(np.float32)),
                                               const(f"{name}.bias", bias.astype(np.float32))],
                                      [f"{name}.conv"], dilations=[dilation], name=name))
        nodes.append(helper.make_node("Relu", [f"{name}.conv"], [f"{name}.relu"]))
        return f"{name}.relu"

    # (1, T, J_in, 2) → (1, J_in*2, T)
    flat_shape = const("flat_shape", np.array([1, -1, model.num_joints_in * 2]))
    nodes.append(helper.make_node("Reshape", [ONNX_INPUT, flat_shape], ["flat"]))
    nodes.append(helper.make_node("Transpose", ["flat"], ["x0"], perm=[0, 2, 1]))
    h = conv_bn_relu("x0", w["expand"], w["norms"][0], 1, "expand")
    for block in range(len(model.filter_widths) - 1):
        pad, dilation = model.pads[block + 1], model.dilations[block + 1]
        shift = pad if model.causal else 0
        # residual = h[:, :, pad + shift : T - pad + shift]; the end is negative from the end (or to the end).
        end = -(pad - shift) if pad - shift else np.iinfo(np.int64).max
        nodes.append(helper.make_node("Slice", [h, const(f"res{block}.starts", np.array([pad + shift])),
                                                const(f"res{block}.ends", np.array([end])),
                                                const(f"res{block}.axes", np.array([2]))], [f"res{block}"]))
        h = conv_bn_relu(h, w["convs"][2 * block], w["norms"][1 + 2 * block], dilation, f"layers.{2 * block}")
        h = conv_bn_relu(h, w["convs"][2 * block + 1], w["norms"][2 + 2 * block], 1, f"layers.{2 * block + 1}")
        nodes.append(helper.make_node("Add", [f"res{block}", h], [f"block{block}"]))
        h = f"block{block}"
    nodes.append(helper.make_node("Conv", [h, const("shrink.weight", w["shrink"][:, :, None]),
                                           const("shrink.bias", w["shrink_bias"][:, 0])], ["shrunk"]))
    nodes.append(helper.make_node("Transpose", ["shrunk"], ["shrunk_t"], perm=[0, 2, 1]))  # (1, T', J_out*3)
    out_shape = const("out_shape", np.array([1, -1, model.num_joints_out, 3]))
    nodes.append(helper.make_node("Reshape", ["shrunk_t", out_shape], [ONNX_OUTPUT]))
    graph = helper.make_graph(
        nodes, "videopose3d_temporal_model",
        [helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, [1, "T", model.num_joints_in, 2])],
        [helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, [1, "T_out", model.num_joints_out, 3])],
        inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="rigcast")
    proto.ir_version = 8
    helper.set_model_props(proto, {"videopose3d.filter_widths": ",".join(map(str, model.filter_widths)),
                                   "videopose3d.causal": str(int(model.causal))})
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


class RunnerTemporalModel:
    """VideoPose3D's lifter behind a :class:`rigcast.runners.Runner` (an exported ONNX file, a TorchScript module).

    The runner maps ``keypoints_2d (1, T, J_in, 2)`` to ``pose_3d (1, T', J_out, 3)`` (the first input and
    output, whatever their names).  The receptive field is measured once by running a short probe
    (``T - T' + 1``); ``causal`` is the caller's, as for checkpoints.
    """

    def __init__(self, runner, causal: bool = False, probe_frames: int = 1000):
        if not runner.inputs or not runner.outputs:
            raise ModelError(f"a lifter runner needs one input and one output, got {runner!r}")
        spec = runner.inputs[0]
        if len(spec.shape) != 4 or spec.shape[3] not in (2, None) or spec.shape[2] is None:
            raise ModelError(f"a VideoPose3D lifter takes (1, T, J, 2) keypoints, got {spec.name} {spec.shape}")
        self.runner, self.causal = runner, bool(causal)
        self.num_joints_in = int(spec.shape[2])
        probe = self._run(np.zeros((probe_frames, self.num_joints_in, 2), np.float32))
        self.num_joints_out = probe.shape[1]
        self.receptive_field = probe_frames - probe.shape[0] + 1
        if self.receptive_field < 1 or self.receptive_field % 2 == 0:
            raise ModelError(f"a VideoPose3D lifter trims an odd number of frames - 1; {probe_frames} frames "
                             f"gave {probe.shape[0]}")

    @property
    def causal_shift(self) -> int:
        return self.receptive_field // 2 if self.causal else 0

    def _run(self, x: np.ndarray) -> np.ndarray:
        out = self.runner({self.runner.inputs[0].name: x[None]})[self.runner.outputs[0].name]
        if out.ndim != 4 or out.shape[0] != 1 or out.shape[3] != 3:
            raise ModelError(f"a VideoPose3D lifter returns (1, T', J, 3), got {out.shape}")
        return out[0]

    def __call__(self, keypoints_xy: np.ndarray) -> np.ndarray:
        """Screen-normalised ``(T, J_in, 2)`` → ``(T - receptive_field + 1, J_out, 3)``, as :class:`TemporalModel`."""
        x = _checked_input(keypoints_xy, self.num_joints_in, self.receptive_field)
        return self._run(x)

    def lift(self, keypoints_xy: np.ndarray, width: float, height: float) -> np.ndarray:
        """Pixel keypoints ``(T, J_in, 2)`` → 3D ``(T, J_out, 3)`` (see :func:`lift`)."""
        return lift(self, keypoints_xy, width, height)
