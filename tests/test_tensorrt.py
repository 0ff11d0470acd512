"""TensorRT engines: the runner behind ``make_runner`` for .engine files and ``rigcast models build-trt``.

Without tensorrt and an NVIDIA GPU (this machine) every path must fail in one line naming what is missing; the
GPU tests build an engine from a small ONNX model and compare it with onnxruntime, and skip, saying why,
where there is no GPU.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from byo_models import vitpose_conv_model
from rigcast.cli import main
from rigcast.errors import DeviceError, InputError
from rigcast.runners import make_runner
from rigcast.runners.tensorrt import parse_shape


def _gpu_reason() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "no tensorrt Python package on this machine"
    import torch

    return None if torch.cuda.is_available() else "no CUDA device on this machine"


GPU = pytest.mark.skipif(_gpu_reason() is not None, reason=_gpu_reason() or "")


def test_parse_shape():
    assert parse_shape("input_0:1x3x256x192") == ("input_0", ((1, 3, 256, 192),) * 3)
    assert parse_shape("images:1x3x320x320,1x3x640x640,4x3x1280x1280") == (
        "images", ((1, 3, 320, 320), (1, 3, 640, 640), (4, 3, 1280, 1280)))
    for bad in ("input_0", "input_0:1x3xa", ":1x3", "x:1x3,1x3"):
        with pytest.raises(InputError, match="a shape must be NAME:DxDx"):
            parse_shape(bad)
    for bad in ("x:2x3,1x3,4x3", "x:1x3,1x3x4,1x3"):
        with pytest.raises(InputError, match="MIN <= OPT <= MAX on every axis"):
            parse_shape(bad)


@pytest.mark.skipif(_gpu_reason() is None, reason="this machine has TensorRT and a GPU")
def test_an_engine_without_a_gpu_fails_in_one_line(tmp_path, capsys):
    engine = tmp_path / "vitpose.engine"
    engine.write_bytes(b"\0" * 64)
    with pytest.raises(DeviceError, match=r"^TensorRT engines need") as raised:
        make_runner(engine)
    assert "\n" not in str(raised.value)
    with pytest.raises(DeviceError, match="runs on an NVIDIA GPU only; use the ONNX file"):
        make_runner(engine, device="cpu")
    model = vitpose_conv_model(tmp_path / "vitpose.onnx")
    assert main(["models", "build-trt", str(model), "-o", str(tmp_path / "v.engine"),
                 "--shape", "input_0:1x3x256x192"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rigcast: error: TensorRT engines need") and err.count("\n") == 1
    assert not (tmp_path / "v.engine").exists()


def test_build_trt_checks_its_arguments_first(tmp_path, capsys):
    model = vitpose_conv_model(tmp_path / "vitpose.onnx")
    assert main(["models", "build-trt", str(model), "-o", str(tmp_path / "v.engine"), "--shape", "input_0"]) == 2
    assert "a shape must be NAME:DxDx..." in capsys.readouterr().err
    assert main(["models", "build-trt", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "v.engine")]) == 2
    assert "ONNX model not found" in capsys.readouterr().err


@pytest.mark.gpu
@GPU
def test_an_engine_built_here_matches_onnxruntime(tmp_path, capsys):
    model = vitpose_conv_model(tmp_path / "vitpose.onnx")
    engine = tmp_path / "vitpose.engine"
    assert main(["models", "build-trt", str(model), "-o", str(engine),
                 "--shape", "input_0:1x3x256x192,2x3x256x192,4x3x256x192"]) == 0
    assert f"wrote {engine}" in capsys.readouterr().out
    runner = make_runner(engine)
    assert [s.name for s in runner.inputs] == ["input_0"] and [s.name for s in runner.outputs] == ["output_0"]
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, 256, 192)).astype(np.float32)
    expected = make_runner(model, device="cpu")({"input_0": x})["output_0"]
    np.testing.assert_allclose(runner({"input_0": x})["output_0"], expected, atol=1e-3)


@pytest.mark.gpu
@GPU
def test_a_foreign_engine_is_refused_in_one_line(tmp_path):
    from rigcast.errors import ModelError

    engine = tmp_path / "foreign.engine"
    engine.write_bytes(b"ftrt" + b"\x07" * 4096)  # not a plan this TensorRT wrote
    with pytest.raises(ModelError, match="could not load this engine") as raised:
        make_runner(engine)
    assert "\n" not in str(raised.value)
