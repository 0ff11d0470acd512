"""The embedded models: where they live, and the manifest that vouches for them.

``assets/models/manifest.json`` records, for every shipped model, its
source package, sha256 and tensor names and shapes.  Every load checks the
file against it, so a swapped or corrupted file is refused with a clear error.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

from .errors import ModelError
from .runners import Runner, make_runner

ASSETS_ENV = "RIGCAST_ASSETS"


def assets_dir() -> Path:
    """The assets folder: ``$RIGCAST_ASSETS``, the installed ``rigcast.assets`` package, or the source tree's."""
    env = os.environ.get(ASSETS_ENV)
    if env:
        return Path(env)
    try:
        from . import assets  # the distribution maps assets/ to rigcast.assets

        return Path(list(assets.__path__)[0])
    except ImportError:
        return Path(__file__).resolve().parent.parent / "assets"


def models_dir() -> Path:
    return assets_dir() / "models"


@lru_cache(maxsize=4)
def _manifest(path: Path) -> dict:
    if not path.is_file():
        raise ModelError(f"model manifest not found: {path} (expected it beside the embedded models)")
    return json.loads(path.read_text())


def manifest() -> dict:
    """The parsed ``manifest.json`` of the embedded models."""
    return _manifest(models_dir() / "manifest.json")


def model_entry(name: str) -> dict:
    models = manifest()["models"]
    if name not in models:
        raise ModelError(f"no embedded model named {name!r}; the manifest lists {sorted(models)}")
    return models[name]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=32)
def _verified(path: Path, size: int, mtime_ns: int, expected: str) -> None:
    found = sha256_file(path)
    if found != expected:
        raise ModelError(f"model file {path} has sha256 {found}, but the manifest expects {expected}; "
                         "the file is corrupt or was replaced")


def verify_file(path: Path, expected_sha256: str) -> None:
    """Raise :class:`ModelError` unless ``path`` hashes to ``expected_sha256`` (cached per size and mtime)."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    st = path.stat()
    _verified(path.resolve(), st.st_size, st.st_mtime_ns, expected_sha256)


def check_specs(runner: Runner, entry: dict, name: str) -> None:
    """Raise :class:`ModelError` unless the runner's tensors match the manifest's names and shapes."""
    for kind, specs in (("input", runner.inputs), ("output", runner.outputs)):
        expected = {t["name"]: tuple(t["shape"]) for t in entry[kind + "s"]}
        found = {s.name: tuple(-1 if d is None else d for d in s.shape) for s in specs}
        norm = {k: tuple(-1 if (d is None or d == 0) else d for d in v) for k, v in expected.items()}
        if norm != found:
            raise ModelError(f"model {name!r} {kind}s must be {expected}, found {found}")


def load_model(name: str, device: str = "auto", strict_device: bool = False, path: str | Path | None = None) -> Runner:
    """A runner for the embedded model ``name``, verified against the manifest.

    With ``path``, a user-supplied file replaces the embedded one; it is
    checked for the manifest's tensor names and shapes but not its checksum.
    """
    entry = model_entry(name)
    if path is not None:
        runner = make_runner(Path(path), device=device, strict_device=strict_device)
        check_specs(runner, entry, name)
        return runner
    file = models_dir() / entry["file"]
    if not file.is_file():
        raise ModelError(f"model file not found: {file}")
    # The checksum is computed on a thread while the runtime builds its session (hashlib and onnxruntime
    # release the GIL: 30-50 ms of a process' start-up saved); a file that fails it is refused all the same.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rigcast-verify") as pool:
        verified = pool.submit(verify_file, file, entry["sha256"])
        try:
            runner = make_runner(file, device=device, strict_device=strict_device)
        except Exception:
            verified.result()  # a corrupt file: its checksum says so, rather than the runtime's parse error
            raise
        verified.result()
    check_specs(runner, entry, name)
    return runner
