"""``--pose vitpose:ckpt.pth``: easy_ViTPose's torch checkpoints, built here in its published layout (the real
ViTPose-s, random weights, saved as its ``vitpose-s-<dataset>.pth``), loaded by path and checked against known
answers: a numpy forward pass written out from the architecture, the same network's ONNX export run through the
ONNX path, and ``rigcast analyze`` on real footage; other files in one line each."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erf

from byo_models import (VITPOSE_SIZES, constant_model, vitpose_checkpoint, vitpose_planted_checkpoint,
                        vitpose_state_dict)
from rigcast.errors import ModelError
from rigcast.models import make_keypoint_model
from rigcast.models.vitpose import crop_plan, decode_heatmaps, heatmap_to_crop
from rigcast.models.yolo import letterbox_plan
from rigcast.skeletons import COCO_17, VITPOSE_25
from required import require

torch = require("torch")


@pytest.fixture(scope="module")
def checkpoint_s(tmp_path_factory):
    return vitpose_checkpoint(tmp_path_factory.mktemp("vitpose") / "vitpose-s-coco_25.pth", "s", 25)


def _export_onnx(runner, path):
    """The checkpoint's network exported as easy_ViTPose's export.py does: ``input_0`` → ``output_0``, the
    batch axis dynamic."""
    torch.onnx.export(runner._module, (torch.randn(1, 3, 256, 192),), str(path), dynamo=False,
                      input_names=["input_0"], output_names=["output_0"],
                      dynamic_axes={"input_0": {0: "batch_size"}, "output_0": {0: "batch_size"}})
    return path


# -- the network's shape, read from the weights -----------------------------------------------------------


@pytest.mark.parametrize("size, heads", [("s", 12), ("b", 12), ("l", 16), ("h", 16)])
@pytest.mark.parametrize("joints, skeleton", [(17, COCO_17), (25, VITPOSE_25)])
def test_size_and_joints_are_read_from_the_published_shapes(size, heads, joints, skeleton):
    from rigcast.models.vitpose_torch import VitPoseConfig, state_dict_of

    state = state_dict_of({"state_dict": vitpose_state_dict(size, joints, device="meta")})
    config = VitPoseConfig.from_state_dict(state)
    width, depth = VITPOSE_SIZES[size]
    assert (config.size, config.embed_dim, config.depth, config.num_heads) == (size, width, depth, heads)
    assert (config.mlp_dim, config.num_joints, config.head) == (4 * width, joints, "classic")
    assert config.input_hw == (256, 192) and config.heatmap_hw == (64, 48)


def test_checkpoint_runs_by_path_with_easy_vitposes_tensors(checkpoint_s):
    estimator = make_keypoint_model(f"vitpose:{checkpoint_s}", device="cpu")
    assert estimator.runner.provider == "torch-cpu"
    assert [(s.name, s.shape) for s in estimator.runner.inputs] == [("input_0", (None, 3, 256, 192))]
    assert [(s.name, s.shape) for s in estimator.runner.outputs] == [("output_0", (None, 25, 64, 48))]
    assert estimator.skeleton is VITPOSE_25 and estimator.batched


# -- known answers ------------------------------------------------------------------------------------------


def _layer_norm(x, weight, bias, eps=1e-6):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * weight + bias


def _numpy_vitpose(s: dict, image: np.ndarray, heads: int) -> np.ndarray:
    """ViTPose's forward pass in float64 numpy, step by step from easy_ViTPose's vit.py and head: image
    (3, 256, 192) → heatmaps (J, 64, 48)."""
    d = s["backbone.patch_embed.proj.weight"].shape[0]
    padded = np.pad(image, ((0, 0), (2, 2), (2, 2)))  # PatchEmbed: kernel 16, stride 16, padding 2
    patches = np.stack([padded[:, 16 * r:16 * r + 16, 16 * c:16 * c + 16].ravel()
                        for r in range(16) for c in range(12)])  # row-major over the 16 x 12 grid
    x = patches @ s["backbone.patch_embed.proj.weight"].reshape(d, -1).T + s["backbone.patch_embed.proj.bias"]
    x = x + s["backbone.pos_embed"][0, 1:] + s["backbone.pos_embed"][0, :1]
    block = 0
    while f"backbone.blocks.{block}.norm1.weight" in s:
        p = f"backbone.blocks.{block}."
        h = _layer_norm(x, s[p + "norm1.weight"], s[p + "norm1.bias"])
        q, k, v = (h @ s[p + "attn.qkv.weight"].T + s[p + "attn.qkv.bias"]).reshape(192, 3, heads, -1).transpose(
            1, 2, 0, 3)
        logits = q @ k.transpose(0, 2, 1) / np.sqrt(d // heads)
        attention = np.exp(logits - logits.max(-1, keepdims=True))
        attention /= attention.sum(-1, keepdims=True)
        mixed = (attention @ v).transpose(1, 0, 2).reshape(192, d)
        x = x + mixed @ s[p + "attn.proj.weight"].T + s[p + "attn.proj.bias"]
        h = _layer_norm(x, s[p + "norm2.weight"], s[p + "norm2.bias"])
        h = h @ s[p + "mlp.fc1.weight"].T + s[p + "mlp.fc1.bias"]
        h = 0.5 * h * (1 + erf(h / np.sqrt(2)))  # GELU, exact
        x = x + h @ s[p + "mlp.fc2.weight"].T + s[p + "mlp.fc2.bias"]
        block += 1
    fmap = _layer_norm(x, s["backbone.last_norm.weight"], s["backbone.last_norm.bias"]).T.reshape(d, 16, 12)
    if "keypoint_head.deconv_layers.0.weight" not in s:  # ViTPose's simple head
        return _numpy_simple_head(s, fmap)
    for conv, norm in ((0, 1), (3, 4)):
        w = s[f"keypoint_head.deconv_layers.{conv}.weight"]  # (in, out, 4, 4)
        _, rows, cols = fmap.shape
        taps = np.tensordot(w, fmap, axes=([0], [0]))  # (out, 4, 4, rows, cols)
        full = np.zeros((w.shape[1], 2 * rows + 2, 2 * cols + 2))
        for ky in range(4):
            for kx in range(4):  # input px (i, j) lands on 2i + ky, 2j + kx; padding 1 crops 1 px each side
                full[:, ky:ky + 2 * rows:2, kx:kx + 2 * cols:2] += taps[:, ky, kx]
        n = f"keypoint_head.deconv_layers.{norm}."
        fmap = full[:, 1:-1, 1:-1]
        scale = s[n + "weight"] / np.sqrt(s[n + "running_var"] + 1e-5)
        fmap = np.maximum((fmap - s[n + "running_mean"][:, None, None]) * scale[:, None, None]
                          + s[n + "bias"][:, None, None], 0.0)
    final = s["keypoint_head.final_layer.weight"][:, :, 0, 0]
    return np.tensordot(final, fmap, axes=([1], [0])) + s["keypoint_head.final_layer.bias"][:, None, None]


def _numpy_simple_head(s: dict, fmap: np.ndarray) -> np.ndarray:
    """ViTPose's simple head: ReLU, bilinear x4 (half-px centres, as align_corners=False and OpenCV's resize), a 3x3
    convolution with 1 px of zero padding: (D, 16, 12) → (J, 64, 48)."""
    import cv2
    from scipy.signal import correlate

    up = np.stack([cv2.resize(np.maximum(c, 0.0), (48, 64), interpolation=cv2.INTER_LINEAR) for c in fmap])
    padded = np.pad(up, ((0, 0), (1, 1), (1, 1)))
    weight, bias = s["keypoint_head.final_layer.weight"], s["keypoint_head.final_layer.bias"]
    return np.stack([correlate(padded, w, mode="valid")[0] for w in weight]) + bias[:, None, None]


def test_heatmaps_match_a_numpy_forward_pass(tmp_path):
    # Two blocks of ViTPose-s (the loader reads the depth off the keys), so numpy's pass stays quick.
    path = vitpose_checkpoint(tmp_path / "vitpose-s2-coco.pth", "s", 17, depth=2, seed=3)
    estimator = make_keypoint_model(f"vitpose:{path}", device="cpu")
    assert estimator.skeleton is COCO_17
    image = np.random.default_rng(0).normal(size=(1, 3, 256, 192)).astype(np.float32)
    found = estimator.runner({"input_0": image})["output_0"][0]
    state = {k: v.double().numpy() for k, v in torch.load(str(path), weights_only=True)["state_dict"].items()}
    expected = _numpy_vitpose(state, image[0].astype(np.float64), heads=12)
    assert found.shape == expected.shape == (17, 64, 48)
    assert np.abs(expected).max() > 0.3  # maps with peaks, not a vanishing signal
    np.testing.assert_allclose(found, expected, atol=2e-4 * np.abs(expected).max())


def test_the_simple_head_is_read_from_its_shapes_and_matches_numpy(tmp_path):
    # ViTPose's *_simple_* configs: no deconvolutions; the final layer is a 3x3 conv from the backbone's width.
    state = vitpose_state_dict("s", 17, depth=1, seed=5)
    for key in [k for k in state if ".deconv_layers." in k]:
        del state[key]
    generator = torch.Generator().manual_seed(6)
    state["keypoint_head.final_layer.weight"] = torch.randn(17, 384, 3, 3, generator=generator) * 0.01
    path = tmp_path / "vitpose-s-simple.pth"
    torch.save({"state_dict": state}, str(path))
    estimator = make_keypoint_model(f"vitpose:{path}", device="cpu")
    assert estimator.runner._module.config.head == "simple" and estimator.skeleton is COCO_17
    image = np.random.default_rng(2).normal(size=(1, 3, 256, 192)).astype(np.float32)
    found = estimator.runner({"input_0": image})["output_0"][0]
    numpy_state = {k: v.double().numpy() for k, v in state.items()}
    expected = _numpy_vitpose(numpy_state, image[0].astype(np.float64), heads=12)
    assert found.shape == expected.shape == (17, 64, 48) and np.abs(expected).max() > 0.1
    np.testing.assert_allclose(found, expected, atol=2e-4 * np.abs(expected).max())


@pytest.mark.slow  # exports and opens the 97 MB network: 2 to 13 s here
def test_checkpoint_and_its_onnx_export_give_the_same_heatmaps_and_keypoints(checkpoint_s, tmp_path):
    by_torch = make_keypoint_model(f"vitpose:{checkpoint_s}", device="cpu")
    onnx_path = _export_onnx(by_torch.runner, tmp_path / "vitpose-s-coco_25.onnx")
    by_onnx = make_keypoint_model(f"vitpose:{onnx_path}", device="cpu")
    assert by_onnx.batched and by_onnx.skeleton is by_torch.skeleton
    rgb = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = np.array([[100.0, 50.0, 220.0, 450.0], [330.0, 120.0, 430.0, 380.0]])
    batch = by_torch.preprocess(rgb, [crop_plan(b, (640, 480)) for b in boxes])
    maps_torch = by_torch.runner({"input_0": batch})["output_0"]
    maps_onnx = by_onnx.runner({"input_0": batch})["output_0"]
    assert maps_torch.shape == (2, 25, 64, 48)
    np.testing.assert_allclose(maps_torch, maps_onnx, atol=1e-4)
    a, b = by_torch(rgb, boxes), by_onnx(rgb, boxes)
    # Same argmax; DARK's sub-pixel step from maps equal within 1e-4 moves by well under a px.
    assert np.abs(a.xy - b.xy).max() < 0.05
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


GRID_YX = np.random.default_rng(7).uniform([2.0, 2.0], [13.0, 9.0], (25, 2))  # planted peaks, patch grid units


def test_planted_weights_put_the_peaks_where_the_architecture_says(tmp_path):
    # Token (r, c) is patch row r, column c (row-major, 16 x 12); two x2 bilinear deconvolutions (stride 2,
    # padding 1) send patch px i to heatmap px 4 i + 1.5.
    path = vitpose_planted_checkpoint(tmp_path / "vitpose-s-planted.pth", GRID_YX)
    estimator = make_keypoint_model(f"vitpose:{path}", device="cpu")
    image = np.random.default_rng(0).normal(size=(1, 3, 256, 192)).astype(np.float32)
    xy, scores = decode_heatmaps(estimator.runner({"input_0": image})["output_0"][0])
    assert np.abs(xy - (4 * GRID_YX[:, ::-1] + 1.5)).max() < 0.1
    assert (scores > 0.6).all()


def test_analyze_runs_the_checkpoint_on_real_footage_as_its_onnx_export(carphone_path, tmp_path):
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    checkpoint = vitpose_planted_checkpoint(tmp_path / "vitpose-s-coco_25.pth", GRID_YX)
    onnx_path = _export_onnx(make_keypoint_model(f"vitpose:{checkpoint}", device="cpu").runner,
                             tmp_path / "vitpose-s-coco_25.onnx")
    # One planted YOLOv8 person box about the man in carphone's car (176 x 144 px).
    person = np.array([50.0, 20.0, 130.0, 124.0])
    plan = letterbox_plan((176, 144), (640, 640))
    out = np.zeros((1, 84, 8400), dtype=np.float32)
    box = plan.to_input(person[None])[0]
    out[0, :5, 300] = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1], 0.8]
    yolo = constant_model(tmp_path / "yolov8s.onnx", "images", [1, 3, 640, 640], "output0", out)
    takes = {}
    for name, model in (("torch", checkpoint), ("onnx", onnx_path)):
        config = AnalyzeConfig(pose=f"vitpose:{model}", person_detector=f"yolo:{yolo}", faces=False, device="cpu",
                               end="8f", smoothing="off")
        takes[name] = analyze(carphone_path, tmp_path / f"{name}.take.npz", config)
    (by_torch,), (by_onnx,) = takes["torch"].tracks, takes["onnx"].tracks
    assert by_torch.skeleton is VITPOSE_25 and by_torch.num_frames == 8
    assert takes["torch"].meta["models"]["pose"]["path"] == str(checkpoint.resolve())
    np.testing.assert_allclose(by_torch.xy, by_onnx.xy, atol=0.01)
    np.testing.assert_allclose(by_torch.conf, by_onnx.conf, atol=1e-4)
    # And where the planted peaks are, in the person's crop (heatmap px 4 g + 1.5, 0.1 heatmap px).
    crop = crop_plan(person, (176, 144))
    expected = crop.crop_to_frame(heatmap_to_crop(4 * GRID_YX[:, ::-1] + 1.5, (48, 64), crop.padded_wh))
    px_per_cell = crop.padded_wh[0] / 47
    assert np.abs(by_torch.xy - expected[None]).max() < 0.1 * px_per_cell


# -- other files: one line each ---------------------------------------------------------------------------


def _save(path, obj):
    torch.save(obj, str(path))
    return path


def test_a_videopose3d_checkpoint_is_refused_in_one_line(tmp_path):
    path = _save(tmp_path / "pretrained_h36m_cpn.pth",
                 {"epoch": 80, "model_pos": {"expand_conv.weight": torch.zeros(1024, 34, 3)}})
    with pytest.raises(ModelError) as info:
        make_keypoint_model(f"vitpose:{path}", device="cpu")
    message = str(info.value)
    assert "\n" not in message
    assert message == ("pretrained_h36m_cpn.pth: expected a ViTPose checkpoint (keys backbone.*, keypoint_head.*), "
                       "found 2 keys: epoch, model_pos")


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("backbone.last_norm.weight"),
     r"expected ViTPose \(384 wide, 1 blocks\) keys, found 1 missing \(backbone.last_norm.weight\) and 0 unexpected"),
    (lambda s: s.update({"backbone.blocks.0.mlp.experts.0.weight": torch.zeros(1)}),
     r"expected a single-dataset ViTPose checkpoint, found ViTPose\+\+ experts"),
    (lambda s: s.update({"backbone.patch_embed.proj.weight": torch.zeros(512, 3, 16, 16)}),
     r"expected a ViTPose width of \[384, 768, 1024, 1280\] \(sizes s, b, l, h\), found 512"),
    (lambda s: s.update({"backbone.pos_embed": torch.zeros(1, 101, 384)}),
     r"expected ViTPose's patches on a 3:4 grid \(192 = 16 x 12 for 256x192 px\), found 100 patches"),
    (lambda s: s.update({"keypoint_head.final_layer.weight": torch.zeros(25, 128, 1, 1)}),
     r"expected the classic ViTPose head's final_layer \(J, 256, 1, 1\), found \(25, 128, 1, 1\)"),
])
def test_a_checkpoint_of_another_shape_is_refused_in_one_line(tmp_path, edit, message):
    state = vitpose_state_dict("s", 25, depth=1, device="meta")
    state = {k: torch.zeros(v.shape) for k, v in state.items()}
    edit(state)
    path = _save(tmp_path / "vitpose-s-custom.pth", {"state_dict": state})
    with pytest.raises(ModelError, match=f"^vitpose-s-custom.pth: {message}") as info:
        make_keypoint_model(f"vitpose:{path}", device="cpu")
    assert "\n" not in str(info.value)


def test_a_wholebody_checkpoint_is_refused_naming_its_joints(tmp_path):
    # easy_ViTPose also publishes wholebody (133), mpii (16), aic (14) and animal models: rigcast reads bodies of
    # 17 (COCO) or 25 (coco_25) joints.
    state = {k: torch.zeros(v.shape) for k, v in vitpose_state_dict("s", 133, depth=1, device="meta").items()}
    path = _save(tmp_path / "vitpose-s-wholebody.pth", {"state_dict": state})
    with pytest.raises(ModelError, match=r"J 17 or 25, found .*\('output_0', \(None, 133, 64, 48\)\)") as info:
        make_keypoint_model(f"vitpose:{path}", device="cpu")
    assert "\n" not in str(info.value)


class _Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "vitpose-b-coco.pth"
    torch.save({"state_dict": {"backbone.pos_embed": torch.zeros(1)}, "meta": _Payload()}, str(path))
    with pytest.raises(ModelError, match=r"^vitpose-b-coco.pth: not a TorchScript archive nor a weights-only "
                                         r"checkpoint \(tensors and containers only\): it names print, "
                                         r"which a pickle would call: refused$"):
        make_keypoint_model(f"vitpose:{path}", device="cpu")
    assert "pwned" not in capsys.readouterr().out


def test_tensorrt_is_refused_for_a_checkpoint(checkpoint_s):
    from rigcast.errors import DeviceError

    with pytest.raises(DeviceError, match="is a torch checkpoint, run on cpu or cuda"):
        make_keypoint_model(f"vitpose:{checkpoint_s}", device="tensorrt")
