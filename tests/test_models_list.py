"""``rigcast models list``: every model an analysis would use, opened and checked, with its family, file, tensors
and what runs it."""

from __future__ import annotations

import json

import pytest

from byo_models import lw3d_conv_model, vitpose_conv_model, yolo_conv_model
from rigcast.cli import main
from rigcast.model_store import models_dir
from rigcast.models.videopose3d import TemporalModel
from test_torch_checkpoint import videopose3d_state, write_checkpoint


def blocks(text: str) -> dict[str, dict[str, str]]:
    """The listing as role: family → {file, inputs, outputs, runs on}."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        if not line.startswith(" "):
            current = out.setdefault(line, {})
        else:
            key, value = line.strip().split("  ", 1)
            current[key.strip()] = value.strip()
    return out


def test_the_embedded_models_are_listed_with_their_manifest_tensors(capsys):
    assert main(["models", "list", "--device", "cpu"]) == 0
    listed = blocks(capsys.readouterr().out)
    networks = {name: entry for name, entry in json.loads((models_dir() / "manifest.json").read_text())["models"].items()
                if entry["file"].endswith(".onnx")}
    assert set(listed) == {f"embedded: {name}" for name in networks}
    for name, entry in networks.items():
        block = listed[f"embedded: {name}"]
        assert block["file"] == str(models_dir() / entry["file"])
        assert block["runs on"] == "CPUExecutionProvider"
        first = entry["inputs"][0]
        shape = "x".join("?" if d is None else str(d) for d in first["shape"])
        assert block["inputs"].startswith(f"{first['name']} {shape} {first['dtype']}")


def test_your_own_files_are_opened_as_an_analysis_opens_them(tmp_path, monkeypatch, capsys):
    yolo = yolo_conv_model(tmp_path / "yolov8n.onnx", "yolov8")
    vit = vitpose_conv_model(tmp_path / "vitpose-s.onnx", joints=25)
    checkpoint = tmp_path / "pretrained_h36m.bin"
    state = videopose3d_state((3, 3), channels=8)
    write_checkpoint(checkpoint, {"model_pos": state}, monkeypatch)
    onnx_lifter = TemporalModel.from_state_dict(state).to_onnx(tmp_path / "lifter.onnx")
    assert main(["models", "list", "--no-embedded", "--detector", f"yolo:{yolo}", "--pose", f"vitpose:{vit}",
                 "--lift", f"videopose3d:{checkpoint}"]) == 0
    listed = blocks(capsys.readouterr().out)
    assert list(listed) == ["person detector: yolo", "pose: vitpose", "lift: videopose3d"]
    assert listed["person detector: yolo"]["outputs"].endswith("1x84x8400 float32")
    assert listed["pose: vitpose"]["inputs"] == "input_0 ?x3x256x192 float32"
    assert listed["pose: vitpose"]["outputs"] == "output_0 ?x25x64x48 float32"
    lift = listed["lift: videopose3d"]
    assert lift["runs on"] == "numpy" and lift["file"] == str(checkpoint)
    assert lift["inputs"] == "keypoints_2d 1x9x17x2 float32" and lift["outputs"] == "pose_3d 1x1x17x3 float32"
    assert main(["models", "list", "--no-embedded", "--lift", f"videopose3d:{onnx_lifter}"]) == 0
    assert blocks(capsys.readouterr().out)["lift: videopose3d"]["runs on"] == "CPUExecutionProvider"
    lw3d = lw3d_conv_model(tmp_path / "human-pose-estimation-3d.onnx")
    assert main(["models", "list", "--no-embedded", "--pose", f"lw3d:{lw3d}"]) == 0
    block = blocks(capsys.readouterr().out)["pose: lw3d"]
    assert block["inputs"] == "data 1x3x256x448 float32"
    assert [t.split()[0] for t in block["outputs"].split(", ")] == ["features", "heatmaps", "pafs"]


@pytest.mark.parametrize("flag, family", [("--pose", "vitpose"), ("--detector", "yolo"), ("--lift", "videopose3d")])
def test_a_file_of_the_wrong_family_is_named_in_one_line(tmp_path, capsys, flag, family):
    # a YOLO file given as the pose model and the lifter, a ViTPose file as the detector
    wrong = (vitpose_conv_model(tmp_path / "vit.onnx") if family == "yolo"
             else yolo_conv_model(tmp_path / "yolo.onnx", "yolov8"))
    assert main(["models", "list", "--no-embedded", flag, f"{family}:{wrong}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rigcast: error: ") and err.count("\n") == 1, err
    assert main(["models", "list", "--no-embedded", "--lift", "onnx:lifter.onnx"]) == 2
    assert "videopose3d:PATH" in capsys.readouterr().err
