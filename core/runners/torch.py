"""torch backend: TorchScript archives, or checkpoints read with ``weights_only=True`` into a module you build.

torch is imported here only.  A checkpoint is never unpickled in full: ``torch.load(weights_only=True)``
accepts tensors and plain containers and refuses any other global, so a user's file cannot run code.  A
state dict has no forward pass of its own, so a checkpoint needs ``build(state) -> torch.nn.Module`` from the
caller (the model family knows its architecture).  TorchScript carries its own graph, run by torch's
interpreter (``torch.jit.load``), not by pickle.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import DeviceError, ModelError
from . import TensorSpec

_TORCH_DTYPES = {"float32": "float32", "float16": "float16", "float64": "float64", "int64": "int64", "int32": "int32"}


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``<name>/code/`` and ``<name>/constants.pkl``)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def resolve_device(device: str, strict_device: bool, name: str) -> str:
    """The torch device that runs ``name``: ``device`` "cpu", "cuda" or "auto" (cuda if torch sees a GPU).  A
    missing cuda warns once and runs on cpu, or raises :class:`DeviceError` when ``strict_device`` is set."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise DeviceError(f"the torch runner runs on auto, cpu or cuda, got {device!r}")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        if strict_device:
            raise DeviceError(f"torch {torch.__version__} sees no CUDA device for {name}")
        import warnings
        warnings.warn(f"torch sees no CUDA device for {name}; running on cpu", RuntimeWarning, stacklevel=3)
    return "cuda" if device in ("auto", "cuda") and has_cuda else "cpu"


def load_weights_only(path: str | Path, device: str = "cpu") -> object:
    """A checkpoint's object tree by ``torch.load(weights_only=True)``: tensors (on ``device``) and plain
    containers; a file naming any other global, or not a torch file, is a one-line :class:`ModelError`."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        return torch.load(str(path), map_location=device, weights_only=True)
    except Exception as exc:  # UnpicklingError for refused globals, RuntimeError / KeyError for bad files
        refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        unpickler = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", str(exc))
        # torch's message begins by suggesting weights_only=False: not advice to pass on
        if refused:
            found = f"it names {refused.group(1)}, which a pickle would call: refused"
        elif unpickler:
            found = f"refused by torch's weights-only unpickler: {unpickler.group(1).strip()}"
        else:
            lines = str(exc).strip().splitlines()
            found = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
        raise ModelError(f"{path.name}: not a TorchScript archive nor a weights-only checkpoint "
                         f"(tensors and containers only): {found}") from exc


class TorchRunner:
    """Runs a torch module: ``dict[str, ndarray] → dict[str, ndarray]``, positional in ``inputs``' order.

    ``inputs`` / ``outputs`` name the tensors (a TorchScript module or a bare state dict does not);
    each output of the module (a tensor, or a tuple of them) is returned under its spec's name.
    ``device`` is ``cpu``, ``cuda`` or ``auto`` (cuda if torch sees a GPU).  A model family that reads
    the checkpoint itself (its specs follow from the weights) hands over the built ``module`` instead.
    """

    def __init__(self, path: str | Path, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...],
                 build: Callable[[dict], object] | None = None, device: str = "auto", strict_device: bool = False,
                 module=None):
        import torch

        path = Path(path)
        if module is None and not path.is_file():
            raise ModelError(f"model file not found: {path}")
        self.device = resolve_device(device, strict_device, path.name)
        if module is None and is_torchscript(path):
            try:
                module = torch.jit.load(str(path), map_location=self.device)
            except Exception as exc:  # torch raises its own untyped errors for bad archives
                raise ModelError(f"could not load TorchScript {path.name}: {str(exc).splitlines()[0]}") from exc
        elif module is None:
            state = load_weights_only(path, self.device)
            if build is None:
                raise ModelError(f"{path.name} is a checkpoint, not TorchScript: running it needs the model's "
                                 f"architecture (build=)")
            module = build(state)
        self._module = module.to(self.device).eval()
        self.inputs, self.outputs = tuple(inputs), tuple(outputs)
        self.provider = f"torch-{self.device}"
        self.path = path

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        args = []
        for spec in self.inputs:
            if spec.name not in feeds:
                raise ModelError(f"{self.path.name} needs input {spec.name!r}, got {sorted(feeds)}")
            spec.check(feeds[spec.name])
            args.append(torch.from_numpy(np.ascontiguousarray(feeds[spec.name])).to(self.device))
        with torch.inference_mode():
            result = self._module(*args)
        results = result if isinstance(result, (tuple, list)) else (result,)
        if len(results) != len(self.outputs):
            raise ModelError(f"{self.path.name} returned {len(results)} outputs, expected {len(self.outputs)}")
        return {spec.name: r.detach().cpu().numpy() for spec, r in zip(self.outputs, results)}

    def __repr__(self) -> str:
        return f"TorchRunner({self.path.name}, provider={self.provider})"
