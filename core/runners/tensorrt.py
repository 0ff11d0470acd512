"""TensorRT engines (``.engine`` / ``.plan``) on the ``tensorrt`` Python API (TensorRT 10: named I/O tensors,
``execute_async_v3``), and engines built from ONNX files, as the seeds build theirs with trtexec or polygraphy.

tensorrt and torch are imported here only.  Device buffers are torch CUDA tensors (torch is how the seeds'
users already have CUDA in Python); the engine's tensors are bound by name, so an engine built from any of
rigcast's ONNX files runs where the ONNX file ran.  Dynamic axes are set from each call's inputs, within the
engine's optimisation profile.

An engine is tied to the GPU and TensorRT version that built it.  TensorRT refuses a foreign plan with a log
line and no engine; that line is kept and becomes the error.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DeviceError, InputError, ModelError
from . import TensorSpec

ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def _tensorrt():
    """``tensorrt`` and a CUDA-enabled ``torch``, or one DeviceError saying what is missing."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise DeviceError(f"TensorRT engines need the tensorrt Python package and an NVIDIA GPU; "
                          f"found no tensorrt ({exc})") from None
    try:
        import torch
    except ImportError:
        raise DeviceError("TensorRT engines run with torch's CUDA buffers; found no torch") from None
    if not torch.cuda.is_available():
        raise DeviceError(f"TensorRT engines need an NVIDIA GPU; torch {torch.__version__} sees no CUDA device")
    return trt, torch


def _logger(trt):
    """A TensorRT logger that keeps the error lines (``.errors``), so a refused plan can say why."""

    class KeepErrors(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(" ".join(str(msg).split()))

        @property
        def last(self) -> str:
            return self.errors[-1] if self.errors else "no reason given"

    return KeepErrors()


class TensorRTRunner:
    """Runs one serialised TensorRT engine: ``dict[str, ndarray] → dict[str, ndarray]`` by tensor name."""

    def __init__(self, path: str | Path):
        trt, torch = _tensorrt()
        self._trt, self._torch = trt, torch
        self.path = Path(path)
        keep = _logger(trt)
        self._runtime = trt.Runtime(keep)
        self._engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise ModelError(f"{self.path.name}: TensorRT {trt.__version__} could not load this engine (built for "
                             f"another GPU or TensorRT version? rebuild it with `rigcast models build-trt`): "
                             f"{keep.last}")
        self._context = self._engine.create_execution_context()
        specs: dict[bool, list[TensorSpec]] = {True: [], False: []}
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            shape = tuple(None if d < 0 else int(d) for d in self._engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name))).name
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            specs[is_input].append(TensorSpec(name, shape, dtype))
        self.inputs, self.outputs = tuple(specs[True]), tuple(specs[False])
        self.provider = "TensorRT engine"
        self._stream = torch.cuda.Stream()

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        arrays = {}
        for spec in self.inputs:
            if spec.name not in feeds:
                raise ModelError(f"{self.path.name} needs input {spec.name!r}, got {sorted(feeds)}")
            arrays[spec.name] = array = np.ascontiguousarray(feeds[spec.name], dtype=spec.dtype)
            spec.check(array)
            if not self._context.set_input_shape(spec.name, array.shape):
                raise ModelError(f"{self.path.name}: input {spec.name!r} shape {array.shape} is outside the "
                                 f"engine's optimisation profile")
        # Copies, allocations and the engine all on one stream, so the engine reads inputs already copied.
        with torch.cuda.stream(self._stream):
            staged = [torch.from_numpy(a).to("cuda", non_blocking=False) for a in arrays.values()]
            for name, buffer in zip(arrays, staged):
                self._context.set_tensor_address(name, buffer.data_ptr())
            results = {}
            for spec in self.outputs:
                shape = tuple(self._context.get_tensor_shape(spec.name))
                results[spec.name] = torch.empty(shape, dtype=getattr(torch, spec.dtype), device="cuda")
                self._context.set_tensor_address(spec.name, results[spec.name].data_ptr())
            if not self._context.execute_async_v3(self._stream.cuda_stream):
                raise ModelError(f"{self.path.name}: TensorRT could not run the engine")
        self._stream.synchronize()
        del staged  # the inputs were needed until the engine finished
        return {name: buffer.cpu().numpy() for name, buffer in results.items()}

    def __repr__(self) -> str:
        return f"TensorRTRunner({self.path.name})"


_DIMS = r"\d+(?:x\d+)*"
_SHAPE = re.compile(rf"^(?P<name>[^:]+):(?P<shapes>{_DIMS}(?:,{_DIMS},{_DIMS})?)$")


def parse_shape(text: str) -> tuple[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """``name:1x3x256x192`` → ("name", (s, s, s)) with s = (1, 3, 256, 192), a fixed shape; or
    ``name:MIN,OPT,MAX`` for a range.  An InputError naming the expected form otherwise."""
    match = _SHAPE.match(text.strip())
    if not match:
        raise InputError(f"a shape must be NAME:DxDx... or NAME:MIN,OPT,MAX (e.g. input:1x3x256x192), got {text!r}")
    shapes = [tuple(int(d) for d in part.split("x")) for part in match["shapes"].split(",")]
    if len(shapes) == 1:
        shapes *= 3
    if len({len(s) for s in shapes}) != 1 or not all(a <= b <= c for a, b, c in zip(*shapes)):
        raise InputError(f"a shape range must have MIN <= OPT <= MAX on every axis, got {text!r}")
    return match["name"], tuple(shapes)


def build_engine(onnx_path: str | Path, out: str | Path, fp16: bool = False,
                 shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] | None = None,
                 workspace_gib: float = 4.0) -> Path:
    """Build a TensorRT engine from ``onnx_path`` into ``out``.

    ``shapes``: for each dynamic input, its (min, opt, max) shape (one shape for all three fixes it).  The
    engine is written to a hidden file first and moved into place, so a failed build leaves nothing.
    """
    trt, _ = _tensorrt()
    onnx_path, out = Path(onnx_path), Path(out)
    keep = _logger(trt)
    builder = trt.Builder(keep)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, keep)
    if not parser.parse(onnx_path.read_bytes()):
        first = parser.get_error(0) if parser.num_errors else keep.last
        raise ModelError(f"{onnx_path.name}: TensorRT's ONNX parser refused it: {' '.join(str(first).split())}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    dynamic = [network.get_input(i) for i in range(network.num_inputs) if -1 in tuple(network.get_input(i).shape)]
    shapes = dict(shapes or {})
    missing = [t.name for t in dynamic if t.name not in shapes]
    if missing:
        raise InputError(f"{onnx_path.name} has dynamic inputs {missing}; give each a shape with --shape NAME:DxD...")
    if dynamic:
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            profile.set_shape(tensor.name, *shapes[tensor.name])
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ModelError(f"{onnx_path.name}: TensorRT could not build an engine: {keep.last}")
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(bytes(plan))
    partial.replace(out)
    return out
