"""The restricted torch checkpoint reader and VideoPose3D's TemporalModel, on checkpoints written without torch.

The checkpoints are zips in torch.save's layout (<name>/data.pkl, <name>/data/<key>, <name>/byteorder,
<name>/version) whose pickle names torch's globals through stand-in modules registered as ``torch`` and
``torch._utils`` only while pickling.
"""

from __future__ import annotations

import collections
import pickle
import re
import sys
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rigcast.errors import InputError, ModelError
from rigcast.formats.torch_checkpoint import load_torch_checkpoint
from rigcast.models.videopose3d import TemporalModel, normalize_screen_coordinates

_STORAGE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float16): "HalfStorage",
                  np.dtype(np.float64): "DoubleStorage", np.dtype(np.int64): "LongStorage",
                  np.dtype(np.int32): "IntStorage", np.dtype(np.bool_): "BoolStorage",
                  np.dtype(np.uint8): "ByteStorage", np.dtype(np.int8): "CharStorage"}


@dataclass(eq=False)
class Storage:
    """A flat storage (numel,) and the storage class name it is saved under."""

    flat: np.ndarray
    type_name: str
    location: str = "cpu"


@dataclass(eq=False)
class StorageView:
    """A legacy checkpoint's view of ``numel`` elements of ``root`` from ``offset``."""

    root: Storage
    offset: int
    numel: int


@dataclass(eq=False)
class Strided:
    """A tensor as torch sees it: a view of ``storage`` by element offset, size and stride."""

    storage: Storage
    offset: int
    size: tuple
    stride: tuple


@dataclass(eq=False)
class AsNumpy:
    """A numpy array or scalar to be pickled as numpy does (as in a checkpoint's random_state)."""

    value: object


def _fake_torch() -> dict[str, types.ModuleType]:
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name is pickled
        raise AssertionError("stand-in called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in set(_STORAGE_NAMES.values()) | {"BFloat16Storage"}:
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    return {"torch": torch, "torch._utils": utils}


class _TorchLikePickler(pickle.Pickler):
    """Pickles ndarrays and ``Strided`` as torch.save pickles tensors, storages as persistent ids."""

    def __init__(self, file, modules, legacy=False):
        super().__init__(file, protocol=2)
        self.modules, self.storages, self.legacy = modules, {}, legacy

    def persistent_id(self, obj):
        if isinstance(obj, StorageView):  # legacy only: a slice of another storage
            key = self.storages.setdefault(id(obj.root), (str(len(self.storages)), obj.root))[0]
            return ("storage", getattr(self.modules["torch"], obj.root.type_name), key, obj.root.location,
                    obj.root.flat.size, (f"{key}_view", obj.offset, obj.numel))
        if isinstance(obj, Storage):
            key = self.storages.setdefault(id(obj), (str(len(self.storages)), obj))[0]
            pid = ("storage", getattr(self.modules["torch"], obj.type_name), key, obj.location, obj.flat.size)
            return pid + (None,) if self.legacy else pid
        return None

    def reducer_override(self, obj):
        if isinstance(obj, AsNumpy):  # pickled as numpy pickles it, not as a tensor
            return obj.value.__reduce__()
        if isinstance(obj, np.ndarray):
            flat = np.ascontiguousarray(obj).reshape(-1)
            obj = Strided(Storage(flat, _STORAGE_NAMES[flat.dtype]), 0, obj.shape,
                          tuple(int(np.prod(obj.shape[i + 1:])) for i in range(obj.ndim)))
        if isinstance(obj, Strided):
            return (self.modules["torch._utils"]._rebuild_tensor_v2,
                    (obj.storage, obj.offset, tuple(obj.size), tuple(obj.stride), False, collections.OrderedDict()))
        return NotImplemented


def write_checkpoint(path: Path, obj, monkeypatch, byteorder: str = "little", name: str = "archive",
                     legacy: bool = False) -> Path:
    """Write ``obj`` as torch.save's zip would (``legacy``: as torch < 1.6 did), ndarrays becoming tensors."""
    import io

    modules = _fake_torch()
    with monkeypatch.context() as patch:
        for module_name, module in modules.items():
            patch.setitem(sys.modules, module_name, module)
        buffer = io.BytesIO()
        pickler = _TorchLikePickler(buffer, modules, legacy)
        if legacy:
            for header in (0x1950A86A20F9469CFC6C, 1001,
                           {"protocol_version": 1001, "little_endian": byteorder == "little", "type_sizes": {}}):
                pickle.dump(header, buffer, protocol=2)
        pickler.dump(obj)
    order = "<" if byteorder == "little" else ">"
    if legacy:
        pickle.dump([key for key, _ in pickler.storages.values()], buffer, protocol=2)
        for _, storage in pickler.storages.values():
            buffer.write(storage.flat.size.to_bytes(8, "little", signed=True))
            buffer.write(storage.flat.astype(storage.flat.dtype.newbyteorder(order)).tobytes())
        path.write_bytes(buffer.getvalue())
        return path
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/data.pkl", buffer.getvalue())
        archive.writestr(f"{name}/byteorder", byteorder)
        for key, storage in pickler.storages.values():
            raw = storage.flat.astype(storage.flat.dtype.newbyteorder(order)).tobytes()
            archive.writestr(f"{name}/data/{key}", raw)
        archive.writestr(f"{name}/version", "3\n")
    return path


# ---------------------------------------------------------------- the reader


def test_reader_returns_the_arrays_written(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    base = rng.standard_normal(15).astype(np.float32)
    shared = Storage(base, "FloatStorage")
    written = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f16": rng.standard_normal((2, 5)).astype(np.float16),
        "f64": rng.standard_normal(7),
        "i64": rng.integers(-2**40, 2**40, (4,)),
        "i32": rng.integers(-100, 100, (2, 2)).astype(np.int32),
        "bool": rng.random(6) > 0.5,
        "u8": rng.integers(0, 255, (3,)).astype(np.uint8),
        "scalar": np.array(2.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
    }
    state = collections.OrderedDict([("b.weight", written["f32"]), ("a.bias", written["f16"])])
    checkpoint = {
        **written,
        # (5, 3) transposed view of a (3, 5) block at offset 0 and a row view at offset 5, sharing one storage
        "transposed": Strided(shared, 0, (5, 3), (1, 5)),
        "row": Strided(shared, 5, (5,), (1,)),
        "state": state, "nested": [1, 2.5, "text", (written["i32"], None)], "epoch": 7,
    }
    loaded = load_torch_checkpoint(write_checkpoint(tmp_path / "c.pt", checkpoint, monkeypatch))

    for key, array in written.items():
        assert loaded[key].dtype == array.dtype, key
        np.testing.assert_array_equal(loaded[key], array, err_msg=key)
    np.testing.assert_array_equal(loaded["transposed"], base.reshape(3, 5).T)
    np.testing.assert_array_equal(loaded["row"], base[5:10])
    assert isinstance(loaded["state"], collections.OrderedDict)
    assert list(loaded["state"]) == ["b.weight", "a.bias"]
    np.testing.assert_array_equal(loaded["state"]["b.weight"], written["f32"])
    assert loaded["nested"][:3] == [1, 2.5, "text"] and loaded["nested"][3][1] is None
    np.testing.assert_array_equal(loaded["nested"][3][0], written["i32"])
    assert loaded["epoch"] == 7
    loaded["f32"][0, 0] = 99.0  # arrays are writable copies, not views of the archive's bytes


def test_reader_handles_big_endian_cuda_and_bfloat16(tmp_path, monkeypatch):
    values = np.array([1.5, -2.25, 3e5, 1e-3], np.float32)
    bits = (values.view(np.uint32) >> 16).astype(np.uint16)  # bfloat16: the top half of the float32
    halves = (bits.astype(np.uint32) << 16).view(np.float32)
    checkpoint = {"w": np.arange(6, dtype=np.float64).reshape(2, 3),
                  "gpu": Strided(Storage(np.array([4, 5, 6], np.int32), "IntStorage", "cuda:0"), 1, (2,), (1,)),
                  "bf16": Strided(Storage(bits, "BFloat16Storage"), 0, (4,), (1,))}
    _STORAGE_NAMES[np.dtype(np.uint16)] = "BFloat16Storage"
    try:
        loaded = load_torch_checkpoint(write_checkpoint(tmp_path / "be.pt", checkpoint, monkeypatch, "big", "m"))
    finally:
        del _STORAGE_NAMES[np.dtype(np.uint16)]
    np.testing.assert_array_equal(loaded["w"], np.arange(6.0).reshape(2, 3))
    assert loaded["w"].dtype.isnative
    np.testing.assert_array_equal(loaded["gpu"], [5, 6])
    assert loaded["bf16"].dtype == np.float32
    np.testing.assert_array_equal(loaded["bf16"], halves)


def test_reader_reads_numpy_random_state_and_scalars(tmp_path, monkeypatch):
    state = np.random.RandomState(1234).get_state()  # ('MT19937', (624,) uint32, pos, has_gauss, gauss)
    big_endian = np.arange(6, dtype=">f8").reshape(2, 3)
    fortran = np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))
    checkpoint = {"random_state": (state[0], AsNumpy(state[1]), *state[2:]), "lr": AsNumpy(np.float64(0.00095)),
                  "big": AsNumpy(big_endian), "fortran": AsNumpy(fortran), "model_pos": {"w": np.ones(2, np.float32)}}
    loaded = load_torch_checkpoint(write_checkpoint(tmp_path / "c.bin", checkpoint, monkeypatch))
    assert loaded["random_state"][0] == "MT19937" and loaded["random_state"][2:] == state[2:]
    assert loaded["random_state"][1].dtype == np.uint32
    np.testing.assert_array_equal(loaded["random_state"][1], state[1])
    assert loaded["lr"] == np.float64(0.00095) and loaded["lr"].dtype == np.float64
    np.testing.assert_array_equal(loaded["big"], big_endian)
    assert loaded["big"].dtype == np.float64 and loaded["big"].dtype.isnative
    np.testing.assert_array_equal(loaded["fortran"], fortran)
    assert np.dtype("f8").byteorder == "=" and np.dtype("u4").byteorder == "="  # numpy's own dtypes untouched


def test_reader_refuses_object_arrays(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "o.pt", {"x": AsNumpy(np.array([1, "a"], dtype=object))}, monkeypatch)
    with pytest.raises(ModelError, match="refused numpy dtype 'O8'"):
        load_torch_checkpoint(path)


class _RunsCode:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize("func, global_name", [
    ("system", "posix.system"), ("eval", "builtins.eval"),
])
def test_reader_refuses_code_and_never_runs_it(tmp_path, monkeypatch, func, global_name):
    import builtins
    import os

    marker = tmp_path / "ran"
    target = os.system if func == "system" else builtins.eval
    arg = f"touch {marker}" if func == "system" else f"open({str(marker)!r}, 'w')"
    payload = {"model_pos": collections.OrderedDict(w=np.ones(2, np.float32)), "x": _RunsCode(target, arg)}
    path = write_checkpoint(tmp_path / "evil.pt", payload, monkeypatch)
    with pytest.raises(ModelError) as caught:
        load_torch_checkpoint(path)
    message = str(caught.value)
    assert global_name in message and "refused" in message and "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize("byteorder", ["little", "big"])
def test_reader_reads_the_legacy_format(tmp_path, monkeypatch, byteorder):
    rng = np.random.default_rng(4)
    root = Storage(rng.standard_normal(12), "DoubleStorage")
    written = {"f32": rng.standard_normal((3, 4)).astype(np.float32), "i64": np.arange(5),
               "f16": rng.standard_normal(3).astype(np.float16)}
    checkpoint = {**written, "transposed": Strided(Storage(root.flat, "DoubleStorage"), 0, (4, 3), (1, 4)),
                  "view": Strided(StorageView(root, 6, 6), 1, (2, 2), (2, 1)),
                  "state": collections.OrderedDict(w=written["f32"])}
    path = write_checkpoint(tmp_path / "legacy.bin", checkpoint, monkeypatch, byteorder, legacy=True)
    assert not zipfile.is_zipfile(path)
    loaded = load_torch_checkpoint(path)
    for key, array in written.items():
        assert loaded[key].dtype == array.dtype
        np.testing.assert_array_equal(loaded[key], array)
    np.testing.assert_array_equal(loaded["transposed"], root.flat.reshape(3, 4).T)
    np.testing.assert_array_equal(loaded["view"], root.flat[7:11].reshape(2, 2))  # view from 6, tensor offset 1
    assert isinstance(loaded["state"], collections.OrderedDict)


def test_a_legacy_file_with_its_storages_cut_short_is_refused(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "legacy.bin", {"w": np.ones(100, np.float32)}, monkeypatch, legacy=True)
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ModelError, match="should hold 100 x 4 bytes, holds 392"):
        load_torch_checkpoint(path)


def test_a_legacy_file_naming_code_is_refused(tmp_path, monkeypatch):
    import os

    marker = tmp_path / "ran"
    payload = {"w": np.ones(2, np.float32), "x": _RunsCode(os.system, f"touch {marker}")}
    path = write_checkpoint(tmp_path / "legacy.bin", payload, monkeypatch, legacy=True)
    with pytest.raises(ModelError, match="refused to load global posix.system"):
        load_torch_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content, expected", [
    (b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.", "malformed legacy header"),  # the magic number alone
    (b"\x80\x02K\x07.", "found neither"),  # a pickle of 7
    (b"PK\x03\x04 not really a zip", "found neither"),
    (None, "does not exist"),
])
def test_reader_rejects_truncated_other_and_missing_files(tmp_path, content, expected):
    path = tmp_path / "old.pth"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=expected):
        load_torch_checkpoint(path)


@pytest.mark.parametrize("data_pkl, message", [
    # a global's stand-in given state by BUILD: {'x': 1}
    (b"ctorch._utils\n_rebuild_tensor_v2\n}S'x'\nI1\nsb.", "refused to set state on torch._utils._rebuild_tensor_v2"),
    # numpy's _reconstruct asked for another class
    (b"cnumpy.core.multiarray\n_reconstruct\n(ccollections\nOrderedDict\n(I0\ntS'b'\ntR.",
     "may build only numpy.ndarray"),
    # a tensor whose storage is a number, not a persistent storage record
    (b"ctorch._utils\n_rebuild_tensor_v2\n(I1\nI0\n(I1\nt(I1\ntI00\nNtR.", "storage must be a storage record"),
    # a persistent id of another kind
    (b"(S'module'\nS'x'\ntQ.", "expected a persistent id ('storage'"),
    (b"\x80\x02}q\x00", "malformed data.pkl"),  # truncated
])
def test_reader_refuses_crafted_pickles(tmp_path, data_pkl, message):
    path = tmp_path / "crafted.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("crafted/data.pkl", data_pkl)
    with pytest.raises(ModelError, match=re.escape(message)) as caught:
        load_torch_checkpoint(path)
    assert "\n" not in str(caught.value)


def test_reader_rejects_a_view_past_its_storage(tmp_path, monkeypatch):
    view = Strided(Storage(np.arange(4, dtype=np.float32), "FloatStorage"), 2, (2, 2), (2, 1))
    path = write_checkpoint(tmp_path / "oob.pt", {"t": view}, monkeypatch)
    with pytest.raises(ModelError, match=r"needs 6 elements, storage .* holds 4"):
        load_torch_checkpoint(path)


def test_reader_names_a_missing_storage_record(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "full.pt", {"t": np.ones(3, np.float32)}, monkeypatch)
    trimmed = tmp_path / "trimmed.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(trimmed, "w") as dst:
        for item in src.namelist():
            if "/data/" not in item:
                dst.writestr(item, src.read(item))
    with pytest.raises(ModelError, match="archive/data/0"):
        load_torch_checkpoint(trimmed)


# ---------------------------------------------------------------- VideoPose3D


def videopose3d_state(filter_widths, channels=16, joints=17, seed=0) -> collections.OrderedDict:
    """A model_pos state dict with VideoPose3D's keys and shapes, random weights of moderate size."""
    rng = np.random.default_rng(seed)

    def conv(c_out, c_in, width):
        return (rng.standard_normal((c_out, c_in, width)) / np.sqrt(c_in * width)).astype(np.float32)

    def bn(prefix):
        return {f"{prefix}.weight": rng.uniform(0.5, 1.5, channels).astype(np.float32),
                f"{prefix}.bias": rng.normal(0, 0.1, channels).astype(np.float32),
                f"{prefix}.running_mean": rng.normal(0, 0.2, channels).astype(np.float32),
                f"{prefix}.running_var": rng.uniform(0.5, 2.0, channels).astype(np.float32),
                f"{prefix}.num_batches_tracked": np.array(1000, np.int64)}

    state = collections.OrderedDict()
    state["expand_conv.weight"] = conv(channels, joints * 2, filter_widths[0])
    state.update(bn("expand_bn"))
    for i, width in enumerate(filter_widths[1:]):
        state[f"layers_conv.{2 * i}.weight"] = conv(channels, channels, width)
        state[f"layers_conv.{2 * i + 1}.weight"] = conv(channels, channels, 1)
    for i in range(2 * (len(filter_widths) - 1)):
        state.update(bn(f"layers_bn.{i}"))
    state["shrink.weight"] = conv(joints * 3, channels, 1)
    state["shrink.bias"] = rng.normal(0, 0.1, joints * 3).astype(np.float32)
    return state


def reference_forward(state, filter_widths, causal, x_tj2):
    """VideoPose3D's forward, written directly: explicit per-frame, per-tap loops in float64."""
    x = np.asarray(x_tj2, np.float64)
    h = x.reshape(len(x), -1).T  # (J*2, T)

    def conv(h, weight, dilation):
        weight = weight.astype(np.float64)
        width = weight.shape[2]
        frames = h.shape[1] - (width - 1) * dilation
        out = np.zeros((weight.shape[0], frames))
        for t in range(frames):
            for k in range(width):
                out[:, t] += weight[:, :, k] @ h[:, t + k * dilation]
        return out

    def bn(h, prefix):
        g, b, m, v = (state[f"{prefix}.{n}"].astype(np.float64)[:, None]
                      for n in ("weight", "bias", "running_mean", "running_var"))
        return (h - m) / np.sqrt(v + 1e-5) * g + b

    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    h = relu(bn(conv(h, state["expand_conv.weight"], 1), "expand_bn"))
    dilation = filter_widths[0]
    for i, width in enumerate(filter_widths[1:]):
        pad = (width - 1) * dilation // 2
        res = h[:, 2 * pad:] if causal else h[:, pad: h.shape[1] - pad]
        h = relu(bn(conv(h, state[f"layers_conv.{2 * i}.weight"], dilation), f"layers_bn.{2 * i}"))
        h = res + relu(bn(conv(h, state[f"layers_conv.{2 * i + 1}.weight"], 1), f"layers_bn.{2 * i + 1}"))
        dilation *= width
    out = state["shrink.weight"][:, :, 0].astype(np.float64) @ h + state["shrink.bias"][:, None]
    return out.T.reshape(out.shape[1], -1, 3)


@pytest.mark.parametrize("causal, legacy", [(False, False), (True, False), (False, True)])
def test_temporal_model_matches_a_direct_reference(tmp_path, monkeypatch, causal, legacy):
    widths = [3, 3, 3]
    state = videopose3d_state(widths)
    random_state = np.random.RandomState(0).get_state()  # as VideoPose3D's run.py saves it
    checkpoint = {"epoch": 80, "lr": 1e-3, "random_state": (random_state[0], AsNumpy(random_state[1]),
                                                            *random_state[2:]),
                  "model_pos": state, "model_traj": None}
    path = write_checkpoint(tmp_path / "pretrained.bin", checkpoint, monkeypatch, legacy=legacy)
    model = TemporalModel.from_checkpoint(path, causal=causal)
    assert model.filter_widths == (3, 3, 3) and model.dilations == (1, 3, 9)
    assert (model.receptive_field, model.channels, model.num_joints_in, model.num_joints_out) == (27, 16, 17, 17)

    rng = np.random.default_rng(1)
    xy = normalize_screen_coordinates(rng.uniform(0, [1920, 1080], (40, 17, 2)), 1920, 1080)
    out = model(xy)
    assert out.shape == (40 - 26, 17, 3)
    expected = reference_forward(state, widths, causal, xy)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)
    assert np.abs(expected).max() > 0.1  # the comparison is not of near-zeros


def test_causal_output_sees_only_past_frames_and_differs_from_non_causal(tmp_path, monkeypatch):
    state = videopose3d_state([3, 3, 3], seed=2)
    causal, centred = TemporalModel.from_state_dict(state, causal=True), TemporalModel.from_state_dict(state)
    xy = np.random.default_rng(3).uniform(-1, 1, (30, 17, 2))
    changed = xy.copy()
    changed[29] += 0.5  # the last frame: seen by the last causal output only
    assert np.abs(causal(xy) - centred(xy)).max() > 1e-3
    np.testing.assert_allclose(causal(changed)[:-1], causal(xy)[:-1], atol=1e-6)
    assert np.abs(causal(changed)[-1] - causal(xy)[-1]).max() > 1e-4


def test_five_blocks_of_three_see_243_frames():
    model = TemporalModel.from_state_dict(videopose3d_state([3, 3, 3, 3, 3], channels=8))
    assert model.receptive_field == 243 and model.dilations == (1, 3, 9, 27, 81)
    assert model(np.zeros((250, 17, 2))).shape == (8, 17, 3)
    lifted = model.lift(np.full((5, 17, 2), 320.0), 640, 480)  # edge-padded to one pose per frame
    assert lifted.shape == (5, 17, 3)
    np.testing.assert_allclose(lifted, lifted[:1].repeat(5, 0), atol=1e-6)  # a still input lifts to a still pose
    with pytest.raises(InputError, match="at least 243 frames"):
        model(np.zeros((242, 17, 2)))


def test_screen_normalisation_matches_videopose3d():
    xy = np.array([[0.0, 0.0], [1920.0, 1080.0], [960.0, 540.0]])
    np.testing.assert_allclose(normalize_screen_coordinates(xy, 1920, 1080),
                               [[-1, -0.5625], [1, 0.5625], [0, 0]])


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s.pop("shrink.bias"), "needs 'shrink.bias'"),
    (lambda s: s.__setitem__("layers_conv.1.weight", np.zeros((16, 16, 3), np.float32)), "block 0"),
    (lambda s: s.__setitem__("expand_conv.weight", np.zeros((16, 34, 2), np.float32)), "must be odd"),
    (lambda s: s.pop("layers_bn.3.running_var"), "layers_bn.3.running_var"),
    (lambda s: s.__setitem__("layers_bn.0.running_var", np.ones(15, np.float32)), "layers_bn.0 weight, bias"),
    (lambda s: s.__setitem__("expand_bn.bias", 0.5), "expand_bn.bias must be a 1-d tensor, got float"),
])
def test_bad_state_dicts_give_one_line_errors(edit, expected):
    state = videopose3d_state([3, 3, 3])
    edit(state)
    with pytest.raises(ModelError, match=expected) as caught:
        TemporalModel.from_state_dict(state)
    assert "\n" not in str(caught.value)


def test_a_checkpoint_without_model_pos_is_named(tmp_path, monkeypatch):
    path = write_checkpoint(tmp_path / "other.pt", {"state_dict": {"fc.weight": np.ones((2, 2), np.float32)}},
                            monkeypatch)
    with pytest.raises(ModelError, match="expected a VideoPose3D checkpoint with 'model_pos'"):
        TemporalModel.from_checkpoint(path)


def test_a_repeated_storage_is_read_by_its_own_step():
    # The legacy reader's first pass stands in each storage by one value repeated (step 0); strides in item sizes
    # read past that one value (here into the rest of its buffer; on 3DDFA_V2's 4 MB FaceBoxesProd.pth, a
    # segfault).
    from rigcast.formats.torch_checkpoint import _rebuild_tensor, _Storage

    backing = np.arange(1, 1001, dtype=np.float32)
    repeated = np.lib.stride_tricks.as_strided(backing[:1], (1000,), (0,), writeable=False)
    out = _rebuild_tensor(_Storage("k", repeated), 0, (10, 100), (100, 1))
    np.testing.assert_array_equal(out, np.ones((10, 100), np.float32))


def test_a_large_legacy_checkpoint_reads(tmp_path, monkeypatch):
    weights = {"conv.weight": np.arange(4_000_000, dtype=np.float32).reshape(2000, 2000).T}
    path = write_checkpoint(tmp_path / "big.pth", weights, monkeypatch, legacy=True)
    np.testing.assert_array_equal(load_torch_checkpoint(path)["conv.weight"], weights["conv.weight"])
