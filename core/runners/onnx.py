"""onnxruntime backend with TensorRT → CUDA → CPU provider selection."""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

import numpy as np

from ..errors import DeviceError, ModelError
from . import TensorSpec

log = logging.getLogger(__name__)

_PROVIDER_FOR_DEVICE = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_PREFERENCE = ("tensorrt", "cuda", "cpu")
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()  # models may be loaded on two threads at once (make_pose_models)

# On CPU, models smaller than this get one intra-op thread unless asked otherwise.  The face models
# (2.5-5 MB, 2-6 ms) are too little work to split: onnxruntime's second thread costs more in hand-offs and
# spinning than it saves, and on a busy machine far more (2 cores, load 1.5: face_landmark 5.9 ms on one
# thread, 6.5 on two; at load 4 it was 9.5 against 21).  The attention face model alone runs 4.8 ms on one
# thread and 3.9 on two, but the face pipeline with it ran at 64 faces/s on two threads, 86 on one.  The
# pose models (5.5 MB and up) gain from the default thread count (pose_landmark_full 36 -> 25 ms,
# pose_detection 27 -> 18 ms on 2 cores).
SINGLE_THREAD_BELOW_BYTES = 5_200_000

# onnxruntime's intra-op threads spin between ops by default, waiting for the next op's work.  On a machine
# whose cores are shared (rigcast's own worker threads, the decoder, other processes) the spinning thread
# takes the core from whoever has work: the body analysis of benchmarks/bench_analyze.py's clip
# (max_people 1, 2 cores shared with other jobs, load 5-13) took 224 ms a frame spinning and 142 without,
# in interleaved runs.  Off, a thread sleeps once it has no work, at a few microseconds per wake-up.
CPU_ALLOW_SPINNING = False

_ORT_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
               "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(double)": "float64"}


def available_devices() -> list[str]:
    """Devices the installed onnxruntime can run on, best first."""
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    return [d for d in _PREFERENCE if _PROVIDER_FOR_DEVICE[d] in have]


def choose_providers(device: str, strict: bool = False) -> list[str]:
    """Execution providers to ask onnxruntime for, best first, for ``device``."""
    have = available_devices()
    if device == "auto":
        return [_PROVIDER_FOR_DEVICE[d] for d in have]
    if device in have:
        start = _PREFERENCE.index(device)
        return [_PROVIDER_FOR_DEVICE[d] for d in _PREFERENCE[start:] if d in have]
    msg = (f"device {device!r} was requested but this onnxruntime offers only {have}"
           f" (install rigcast[gpu] and a CUDA driver for 'cuda', TensorRT for 'tensorrt')")
    if strict:
        raise DeviceError(msg)
    key = (device, "fallback")
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    if first:
        warnings.warn(msg + f"; falling back to {have[0]!r}", RuntimeWarning, stacklevel=3)
    return [_PROVIDER_FOR_DEVICE[d] for d in have]


def _spec(arg) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in arg.shape)
    return TensorSpec(arg.name, shape, _ORT_DTYPES.get(arg.type, arg.type))


class OnnxRunner:
    """Runs one ONNX model with onnxruntime.

    ``provider`` names the execution provider that actually runs the model,
    which may differ from the one asked for when a provider fails to load.
    ``threads`` sets onnxruntime's intra-op threads; 0 picks one thread for a
    small model on CPU (see ``SINGLE_THREAD_BELOW_BYTES``), onnxruntime's own
    default (one per core) otherwise.
    """

    def __init__(self, path: Path, device: str = "auto", strict_device: bool = False, threads: int = 0):
        import onnxruntime as ort

        providers = choose_providers(device, strict_device)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if not threads and providers[:1] == ["CPUExecutionProvider"]:
            threads = 1 if Path(path).stat().st_size < SINGLE_THREAD_BELOW_BYTES else 0
        if threads:
            options.intra_op_num_threads = threads
        if providers[:1] == ["CPUExecutionProvider"] and not CPU_ALLOW_SPINNING:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelError(f"could not load ONNX model {path}: {exc}") from exc
        used = self._session.get_providers()
        self.provider = used[0]
        if providers and used[0] != providers[0]:
            msg = f"{providers[0]} failed to initialise for {path.name}; running on {used[0]}"
            if strict_device:
                raise DeviceError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        self.path = path
        self.inputs = tuple(_spec(a) for a in self._session.get_inputs())
        self.outputs = tuple(_spec(a) for a in self._session.get_outputs())
        self._output_names = [o.name for o in self.outputs]
        log.debug("loaded %s on %s", path.name, self.provider)

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for spec in self.inputs:
            if spec.name not in feeds:
                raise ModelError(f"{self.path.name} needs input {spec.name!r}, got {sorted(feeds)}")
            spec.check(feeds[spec.name])
        arrays = self._session.run(self._output_names, feeds)
        return dict(zip(self._output_names, arrays))

    def __repr__(self) -> str:
        return f"OnnxRunner({self.path.name}, provider={self.provider})"
