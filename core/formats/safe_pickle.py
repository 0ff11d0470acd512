"""A restricted unpickler: numeric numpy arrays and plain containers, nothing that runs code.

A general ``pickle.load`` of a user's file calls whatever the file names (``os.system`` through a
``__reduce__`` is the classic), so rigcast never calls it.  Model files that are pickles (3DDFA_V2's
``param_mean_std_62d_120x120.pkl`` and ``bfm_noneck_v3.pkl``; the object tree inside a torch checkpoint,
see :mod:`.torch_checkpoint`) are read by :class:`RestrictedUnpickler`, which resolves only the globals of
an allow-list, each to a stand-in of ours (never to the named object), and refuses any other global
*before* anything is called.  Pickle's own opcodes build dicts, lists, tuples, sets, strings, bytes and
numbers without globals.

numpy pickles an array (protocols 2-4) as ``_reconstruct(ndarray, (0,), b'b')``, then BUILD with
``(version, shape, dtype, fortran, raw bytes)``; its dtype as ``dtype('f4', 0, 1)`` then BUILD
``(3, byteorder, ...)``; a scalar as ``scalar(dtype, raw)``; bytes under protocol 2 as
``_codecs.encode(text, 'latin1')``; under protocol 5 an array is ``_frombuffer(bytes, dtype, shape,
order)``.  numpy 2 writes ``numpy._core`` where numpy 1 wrote ``numpy.core``.
numpy's own ``__setstate__`` would take a crafted state (a dtype flagged as holding objects reads bytes as
pointers), so BUILD lands on placeholders of ours, which accept numeric dtypes only and check the byte
count against the shape; arrays replace the placeholders once the whole pickle is read.
"""

from __future__ import annotations

import _compat_pickle
import pickle
from pathlib import Path

import numpy as np

from ..errors import ModelError


class StandIn:
    """What a global of the pickle resolves to: our stand-in, which a pickle's BUILD may not modify."""

    __slots__ = ("target", "name")

    def __init__(self, target, name: str):
        self.target, self.name = target, name

    def __call__(self, *args):
        return self.target(*args)

    def __setstate__(self, state):
        raise ModelError(f"pickle: refused to set state on {self.name}")


class NumpyArrayType(StandIn):
    """Stands in for ``numpy.ndarray`` as the first argument of ``_reconstruct``."""


class _NumpyDtype:
    """A numeric numpy dtype being unpickled; BUILD may set only its byte order."""

    def __init__(self, spec, align=False, copy=True):
        if not isinstance(spec, str):
            raise ModelError(f"pickle: a numpy dtype must be named by a string, got {type(spec).__name__}")
        try:
            self.dtype = np.dtype(spec)
        except (TypeError, ValueError):
            self.dtype = None
        if self.dtype is None or self.dtype.kind not in "biufc" or self.dtype.fields is not None:
            raise ModelError(f"pickle: refused numpy dtype {spec!r:.20}; only numeric dtypes are read")

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) >= 2 and state[1] in ("<", ">", "|", "=")):
            raise ModelError(f"pickle: unexpected numpy dtype state {state!r:.60}")
        self.dtype = self.dtype.newbyteorder(state[1]) if state[1] in "<>" else self.dtype


class _NumpyArray:
    """A numpy array being unpickled; BUILD gives (version, shape, _NumpyDtype, fortran, raw bytes)."""

    array: np.ndarray | None = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5):
            raise ModelError(f"pickle: unexpected numpy array state {state!r:.60}")
        _version, shape, dtype, fortran, raw = state
        if not (isinstance(dtype, _NumpyDtype) and isinstance(raw, bytes) and isinstance(shape, tuple)
                and all(isinstance(n, int) and n >= 0 for n in shape)):
            raise ModelError("pickle: a numpy array's state must be a shape, a numeric dtype and bytes")
        count = int(np.prod(shape, dtype=np.float64))
        if count * dtype.dtype.itemsize != len(raw):
            raise ModelError(f"pickle: numpy array of shape {shape} {dtype.dtype} needs "
                             f"{count * dtype.dtype.itemsize} bytes, has {len(raw)}")
        flat = np.frombuffer(raw, dtype.dtype).astype(dtype.dtype.newbyteorder("="))
        self.array = flat.reshape(shape, order="F" if fortran else "C")


def _numpy_reconstruct(cls, shape, typecode) -> _NumpyArray:
    if not isinstance(cls, NumpyArrayType):
        raise ModelError(f"pickle: numpy _reconstruct may build only numpy.ndarray, got {cls!r:.40}")
    return _NumpyArray()


def _numpy_scalar(dtype, raw) -> np.generic:
    if not isinstance(dtype, _NumpyDtype) or not isinstance(raw, bytes) or len(raw) != dtype.dtype.itemsize:
        raise ModelError("pickle: a numpy scalar must be a numeric dtype and its bytes")
    return np.frombuffer(raw, dtype.dtype)[0]


def _numpy_frombuffer(buffer, dtype, shape, order) -> np.ndarray:
    """numpy's ``_frombuffer``, which protocol 5 pickles an array with (its bytes in band)."""
    if not (isinstance(buffer, (bytes, bytearray)) and isinstance(dtype, _NumpyDtype) and isinstance(shape, tuple)
            and all(isinstance(n, int) and n >= 0 for n in shape) and order in ("C", "F")):
        raise ModelError("pickle: numpy _frombuffer must get bytes, a numeric dtype, a shape and an order")
    count = int(np.prod(shape, dtype=np.float64))
    if count * dtype.dtype.itemsize != len(buffer):
        raise ModelError(f"pickle: numpy array of shape {shape} {dtype.dtype} needs "
                         f"{count * dtype.dtype.itemsize} bytes, has {len(buffer)}")
    flat = np.frombuffer(bytes(buffer), dtype.dtype).astype(dtype.dtype.newbyteorder("="))
    return flat.reshape(shape, order=order)


def _latin1_encode(text, encoding="utf-8") -> bytes:
    if not isinstance(text, str) or encoding != "latin1":
        raise ModelError(f"pickle: _codecs.encode is read only as (str, 'latin1'), got {encoding!r:.20}")
    return text.encode("latin1")


NUMPY_GLOBALS = {
    ("numpy", "ndarray"): NumpyArrayType,
    ("numpy", "dtype"): _NumpyDtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy.core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _numpy_frombuffer,
    ("_codecs", "encode"): _latin1_encode,
}
"""(module, name) as written in a pickle → our stand-in, for numeric numpy arrays, dtypes and scalars."""


def resolve_arrays(obj, seen: dict | None = None):
    """``obj`` with every array placeholder replaced by its array (containers edited in place, tuples rebuilt)."""
    seen = {} if seen is None else seen
    if isinstance(obj, _NumpyArray):
        if obj.array is None:
            raise ModelError("pickle: a numpy array was never given its data")
        return obj.array
    if isinstance(obj, _NumpyDtype):
        return obj.dtype
    if id(obj) in seen:
        return seen[id(obj)]
    if isinstance(obj, dict):
        seen[id(obj)] = obj
        for key, value in obj.items():
            obj[key] = resolve_arrays(value, seen)
        if isinstance(getattr(obj, "__dict__", None), dict):  # a torch state dict's _metadata
            for key, value in vars(obj).items():
                setattr(obj, key, resolve_arrays(value, seen))
    elif isinstance(obj, list):
        seen[id(obj)] = obj
        obj[:] = [resolve_arrays(value, seen) for value in obj]
    elif isinstance(obj, tuple):
        rebuilt = tuple(resolve_arrays(value, seen) for value in obj)
        seen[id(obj)] = rebuilt
        return rebuilt
    return obj


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only the globals of ``allowed`` ((module, name) → stand-in target); ``what`` names the kind of
    file in the refusal ("a torch checkpoint", "a 3DDFA_V2 pickle")."""

    def __init__(self, stream, path: Path, allowed: dict, what: str):
        super().__init__(stream)
        self._path, self._allowed, self._what = Path(path), allowed, what

    def find_class(self, module: str, name: str):
        # Protocol 2 writes Python 2 names (__builtin__, copy_reg); name the Python 3 ones.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        target = self._allowed.get((module, name))
        if target is None:
            raise ModelError(f"{self._path.name}: refused to load global {module}.{name}; {self._what} may hold "
                             f"only numeric numpy arrays and plain containers")
        if isinstance(target, type) and issubclass(target, StandIn):
            return target(None, name)
        return StandIn(target, f"{module}.{name}")

    def persistent_load(self, pid):
        raise ModelError(f"{self._path.name}: {self._what} holds no persistent ids, got {pid!r:.60}")


def unpickle(unpickler: pickle.Unpickler, path: Path, what: str):
    """The unpickler's object, array placeholders resolved; any failure as a one-line ModelError."""
    try:
        return resolve_arrays(unpickler.load())
    except ModelError:
        raise
    except Exception as exc:  # whatever a malformed pickle makes the unpickler or a stand-in raise
        detail = " ".join(str(exc).split())[:200]
        raise ModelError(f"{Path(path).name}: malformed {what} ({type(exc).__name__}: {detail})") from exc


def load_numpy_pickle(path: str | Path, what: str = "this pickle"):
    """Read a pickle of numeric numpy arrays in plain containers (dicts, lists, tuples, numbers, strings).

    Any other global (a class, a function, ``os.system``) raises :class:`ModelError` naming it, before
    anything is called.  Arrays come back in native byte order, C- or Fortran-ordered as pickled.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"pickle {path} does not exist")
    with open(path, "rb") as stream:
        return unpickle(RestrictedUnpickler(stream, path, NUMPY_GLOBALS, what), path, "pickle")
