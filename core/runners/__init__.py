"""Model runners: named ndarrays in, named ndarrays out.

A runner hides the backend (onnxruntime with CPU/CUDA/TensorRT execution
providers, TensorRT engines, torch modules).
Models call ``runner(inputs)`` and read ``runner.inputs`` for shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import DeviceError, ModelError

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
BACKENDS = ("auto", "onnxruntime", "torch", "tensorrt")
TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".bin", ".ckpt")


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape (None for a dynamic axis) and numpy dtype of one model input or output."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"

    def check(self, array: np.ndarray) -> None:
        if array.ndim != len(self.shape) or any(s is not None and s != a for s, a in zip(self.shape, array.shape)):
            raise ModelError(f"input {self.name!r} must have shape {self.shape}, got {array.shape}")


@runtime_checkable
class Runner(Protocol):
    """What every backend offers."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    provider: str  # what actually runs, e.g. "CPUExecutionProvider"

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def make_runner(path: str | Path, backend: str = "auto", device: str = "auto", strict_device: bool = False,
                threads: int = 0, inputs: tuple[TensorSpec, ...] = (), outputs: tuple[TensorSpec, ...] = (),
                build=None) -> Runner:
    """Open the model at ``path`` on ``backend`` and ``device``.

    ``device="auto"`` prefers TensorRT, then CUDA, then CPU, whichever the
    installed runtime offers.  An explicitly requested device that is not
    available falls back to the next one with one warning, or raises
    :class:`DeviceError` when ``strict_device`` is set.

    A TensorRT engine (backend ``tensorrt``, or ``auto`` with a suffix in
    :data:`rigcast.runners.tensorrt.ENGINE_SUFFIXES`) runs on :class:`rigcast.runners.tensorrt.TensorRTRunner`
    (NVIDIA GPUs only).  A torch file (backend ``torch``, or ``auto`` with a suffix in ``TORCH_SUFFIXES``) runs on
    :class:`rigcast.runners.torch.TorchRunner`, which needs ``inputs`` and ``outputs`` (TorchScript and
    state dicts do not name their tensors) and, for a checkpoint, ``build(state) -> module``.
    """
    if device not in DEVICES:
        raise DeviceError(f"device must be one of {DEVICES}, got {device!r}")
    if backend not in BACKENDS:
        raise DeviceError(f"backend must be one of {BACKENDS}, got {backend!r}")
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if backend == "torch" or (backend == "auto" and path.suffix.lower() in TORCH_SUFFIXES):
        if device == "tensorrt":
            raise DeviceError(f"the torch backend runs on cpu or cuda, not tensorrt ({path.name})")
        if not inputs or not outputs:
            raise ModelError(f"a torch model ({path.name}) needs its input and output specs")
        from .torch import TorchRunner

        return TorchRunner(path, inputs, outputs, build=build, device=device, strict_device=strict_device)
    from .tensorrt import ENGINE_SUFFIXES

    if backend == "tensorrt" or (backend == "auto" and path.suffix.lower() in ENGINE_SUFFIXES):
        if device == "cpu":
            raise DeviceError(f"{path.name} is a TensorRT engine, which runs on an NVIDIA GPU only; use the ONNX "
                              f"file it was built from on cpu")
        from .tensorrt import TensorRTRunner

        return TensorRTRunner(path)
    if path.suffix.lower() != ".onnx":
        raise ModelError(f"expected an .onnx model, a TensorRT engine ({', '.join(ENGINE_SUFFIXES)}) or a torch "
                         f"file ({', '.join(TORCH_SUFFIXES)}), got {path.name!r}")
    from .onnx import OnnxRunner

    return OnnxRunner(path, device=device, strict_device=strict_device, threads=threads)
