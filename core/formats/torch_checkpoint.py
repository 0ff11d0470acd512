"""A restricted reader of torch checkpoints: tensors and plain containers, as numpy, without torch.

``torch.save`` has written a zip archive by default since torch 1.6::

    <name>/data.pkl          the object tree, pickled (protocol 2)
    <name>/data/<key>        one raw storage per key, in the byte order of <name>/byteorder
    <name>/byteorder         "little" or "big" (absent in older archives: little)
    <name>/version           the archive's format version

In ``data.pkl`` a tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, backward_hooks[, metadata])`` and its storage a persistent id
``('storage', torch.FloatStorage, key, location, numel)``.  numpy arrays and scalars of numeric dtypes
(a training checkpoint's random state) are read too.  The object tree is read by
:mod:`.safe_pickle`'s restricted unpickler, which resolves only the globals in ``_ALLOWED_GLOBALS`` (each
mapped to a stand-in of ours, never to torch's or the named object) and refuses any other before it is
called.

torch's legacy format (torch < 1.6: five pickles, then the raw storages) is read too: VideoPose3D's
published checkpoints (2018-2019, torch 0.4-1.0) predate the zip.  Its tar variant (torch < 0.4) is not.
"""

from __future__ import annotations

import collections
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelError
from .safe_pickle import NUMPY_GLOBALS, RestrictedUnpickler, StandIn, unpickle

# torch's typed storage names → numpy dtypes.  BFloat16 has no numpy dtype: it is read as uint16 bit
# patterns and widened to float32 (bfloat16 is the top half of a float32).
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
    "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


# A stride-0 tensor (torch's expand) is stored once but copied out whole: cap what a file can make us allocate.
MAX_TENSOR_ELEMENTS = 2**31


class _StorageType(StandIn):
    """Stands in for ``torch.<Name>Storage`` while unpickling."""


@dataclass(frozen=True)
class _Storage:
    """One storage read as a flat array of its dtype (numel,); bfloat16 ones as their uint16 bits."""

    name: str
    array: np.ndarray
    bfloat16: bool = False


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                    metadata=None) -> np.ndarray:
    """Our ``torch._utils._rebuild_tensor_v2``: a copy of the strided view, shape ``size``."""
    if not isinstance(storage, _Storage):
        raise ModelError(f"torch checkpoint: a tensor's storage must be a storage record, got {type(storage).__name__}")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(storage_offset)
    if len(size) != len(stride) or offset < 0 or any(s < 0 for s in size + stride):
        raise ModelError(f"torch checkpoint: tensor size {size}, stride {stride}, offset {offset} are malformed")
    flat = storage.array
    if int(np.prod(size, dtype=np.float64)) > MAX_TENSOR_ELEMENTS:
        raise ModelError(f"torch checkpoint: a tensor of size {size} is over {MAX_TENSOR_ELEMENTS} elements")
    if 0 in size:
        out = np.zeros(size, flat.dtype)
    else:
        # Bounds-check before as_strided, which would otherwise read past the storage's memory.
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise ModelError(f"torch checkpoint: tensor of size {size}, stride {stride} at offset {offset} needs "
                             f"{last + 1} elements, storage {storage.name!r} holds {flat.size}")
        # Strides in the storage's own step, not its item size: the legacy reader's first pass stands in a
        # storage by one zero repeated (step 0), which item-size strides would read far past (a segfault on
        # 3DDFA_V2's 4 MB FaceBoxesProd.pth).
        view = np.lib.stride_tricks.as_strided(flat[offset:], shape=size,
                                               strides=tuple(s * flat.strides[0] for s in stride), writeable=False)
        out = np.array(view)
    if storage.bfloat16:
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> np.ndarray:
    """Our ``torch._utils._rebuild_parameter``: a Parameter is its data."""
    return data


# numpy arrays and scalars (VideoPose3D's checkpoints hold the training generator's RandomState, a tuple with
# a (624,) uint32 array) are read by the stand-ins of .safe_pickle.


# (module, name) as written in the pickle → what this reader builds in its place.
_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,  # torch < 0.4: the same without the last two
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch", name): _StorageType for name in _STORAGE_DTYPES},
    **NUMPY_GLOBALS,
}


class _RestrictedUnpickler(RestrictedUnpickler):
    """Unpickles only ``_ALLOWED_GLOBALS``; ``storage_for(key, storage type name, numel)`` gives storages."""

    def __init__(self, stream, storage_for, path: Path):
        super().__init__(stream, path, _ALLOWED_GLOBALS, "a torch checkpoint")
        self._storage_for = storage_for
        self._storages: dict[str, _Storage] = {}

    def persistent_load(self, pid):
        # zip: ('storage', type, key, location, numel); legacy: the same and view_metadata, None or
        # (view_key, offset, numel) for a storage that is a slice of another.
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise ModelError(f"{self._path.name}: expected a persistent id ('storage', type, key, location, numel), "
                             f"got {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if key not in self._storages:
            self._storages[key] = self._storage_for(key, storage_type.name, numel)
        storage = self._storages[key]
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return storage
        view_key, offset, view_numel = str(view[0]), int(view[1]), int(view[2])
        if offset < 0 or view_numel < 0 or offset + view_numel > storage.array.size:
            raise ModelError(f"{self._path.name}: storage view {view_key!r} [{offset}:{offset + view_numel}] is "
                             f"outside its storage of {storage.array.size}")
        return _Storage(view_key, storage.array[offset: offset + view_numel], storage.bfloat16)


def _storage_dtype(type_name: str, byteorder: str) -> np.dtype:
    return np.dtype(_STORAGE_DTYPES[type_name]).newbyteorder("<" if byteorder == "little" else ">")


def _storage(key: str, type_name: str, raw: bytes, numel: int, byteorder: str, path: Path) -> _Storage:
    """The first ``numel`` elements of ``raw`` as a native-order flat array (numel,)."""
    dtype = _storage_dtype(type_name, byteorder)
    if numel < 0 or len(raw) < numel * dtype.itemsize:
        raise ModelError(f"{path.name}: storage {key!r} should hold {numel} x {dtype.itemsize} bytes, holds {len(raw)}")
    flat = np.frombuffer(raw, dtype, count=numel).astype(dtype.newbyteorder("="))
    return _Storage(key, flat, type_name == "BFloat16Storage")


def load_torch_checkpoint(path: str | Path):
    """Read a ``torch.save`` file into nested dicts/lists/tuples of numpy arrays, without torch.

    Only tensors (as numpy arrays of their shape and dtype), numpy arrays and scalars of numeric dtypes,
    ``OrderedDict`` and pickle's own containers and scalars are accepted; any other global raises
    :class:`ModelError` naming it, before anything is called.  Tensors on any device (``location``
    'cuda:0' too) load onto the CPU.  Reads the zip format (torch >= 1.6) and the legacy one before it.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"torch checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        return _load_legacy(path)
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ModelError(f"{path.name}: expected one <name>/data.pkl in the zip, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{prefix}byteorder" in archive.namelist():
            byteorder = archive.read(f"{prefix}byteorder").decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise ModelError(f"{path.name}: byteorder must be 'little' or 'big', got {byteorder!r:.20}")

        def storage_for(key: str, type_name: str, numel: int) -> _Storage:
            name = f"{prefix}data/{key}"
            try:
                raw = archive.read(name)
            except KeyError:
                raise ModelError(f"{path.name}: storage record {name!r} is missing") from None
            return _storage(name, type_name, raw, numel, byteorder, path)

        unpickler = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), storage_for, path)
        return unpickle(unpickler, path, "data.pkl")


# torch < 1.6 wrote five pickles in a row, then the storages' bytes:
#   MAGIC_NUMBER, PROTOCOL_VERSION (1001), sys_info {'little_endian': ..., ...}, the object tree,
#   the storage keys in the order of their data; then per key an int64 element count (little-endian)
#   and that many elements, in the byte order sys_info names.
# A storage's bytes come after the tree that uses them, so the tree is unpickled twice: once over zero
# stand-ins to learn each storage's dtype (hence its size on disk), then over the real data.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001


def _load_legacy(path: Path):
    data = path.read_bytes()
    stream = io.BytesIO(data)

    def no_storages(*_):
        raise ModelError(f"{path.name}: a storage outside the checkpoint's object tree")

    try:
        magic = _RestrictedUnpickler(stream, no_storages, path).load()
    except Exception:  # not a pickle at all
        magic = None
    if magic != LEGACY_MAGIC_NUMBER:
        raise ModelError(f"{path.name}: expected a torch checkpoint (a zip, or torch < 1.6's legacy pickles), "
                         f"found neither")
    version = unpickle(_RestrictedUnpickler(stream, no_storages, path), path, "legacy header")
    info = unpickle(_RestrictedUnpickler(stream, no_storages, path), path, "legacy header")
    if version != LEGACY_PROTOCOL_VERSION or not isinstance(info, dict):
        raise ModelError(f"{path.name}: legacy torch protocol must be {LEGACY_PROTOCOL_VERSION} with a sys_info "
                         f"dict, got {version!r:.20}")
    byteorder = "little" if info.get("little_endian", True) else "big"
    tree_at = stream.tell()

    types: dict[str, tuple[str, int]] = {}

    def zero_storage(key: str, type_name: str, numel: int) -> _Storage:
        types[key] = (type_name, numel)
        zero = np.zeros(1, _STORAGE_DTYPES[type_name])
        return _Storage(key, np.lib.stride_tricks.as_strided(zero, (numel,), (0,), writeable=False))

    unpickle(_RestrictedUnpickler(stream, zero_storage, path), path, "legacy object tree")
    keys = unpickle(_RestrictedUnpickler(stream, no_storages, path), path, "legacy storage keys")
    if not (isinstance(keys, list) and set(map(str, keys)) == set(types)):
        raise ModelError(f"{path.name}: legacy storage keys {keys!r:.60} do not match the tree's {sorted(types)}")
    storages: dict[str, _Storage] = {}
    at = stream.tell()
    for key in map(str, keys):
        type_name, _ = types[key]
        numel = int.from_bytes(data[at: at + 8], "little", signed=True)
        size = numel * _storage_dtype(type_name, byteorder).itemsize
        storages[key] = _storage(key, type_name, data[at + 8: at + 8 + size], numel, byteorder, path)
        at += 8 + size

    stream.seek(tree_at)
    return unpickle(_RestrictedUnpickler(stream, lambda key, *_: storages[key], path), path, "legacy object tree")
