"""VideoPose3D's TemporalModel rebuilt in torch from the published architecture (Pavllo et al. 2019,
``common/model.py``), saved as the original saves it (``{'model_pos': state_dict}``), read back by rigcast's
torch-free reader and numpy model, and compared with torch's own forward pass.

Legend: B batch, T frames, J joints, C channels.
"""

from __future__ import annotations

import numpy as np
import pytest

from required import require

torch = require("torch")
nn = torch.nn

from rigcast.models.videopose3d import TemporalModel  # noqa: E402


class ReferenceTemporalModel(nn.Module):
    """The inference-time TemporalModel: (B, T, J_in, 2) → (B, T - receptive_field + 1, J_out, 3).

    expand conv (width w0) → BN → ReLU → dropout; per block i: a conv of width w_i dilated by
    w0*...*w_{i-1}, BN, ReLU, dropout, a width-1 conv, BN, ReLU, dropout, added to the input cropped
    to the same frames (causal: the crop is shifted to the window's end); shrink conv to J_out*3.
    """

    def __init__(self, joints_in: int, joints_out: int, filter_widths: list[int], causal: bool,
                 channels: int, dropout: float = 0.25):
        super().__init__()
        self.joints_in, self.joints_out = joints_in, joints_out
        self.drop = nn.Dropout(dropout)
        self.relu = nn.ReLU(inplace=True)
        self.expand_conv = nn.Conv1d(joints_in * 2, channels, filter_widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.pad, self.causal_shift = [], []
        convs, norms = [], []
        dilation = filter_widths[0]
        for width in filter_widths[1:]:
            self.pad.append((width - 1) * dilation // 2)
            self.causal_shift.append((width // 2) * dilation if causal else 0)
            convs += [nn.Conv1d(channels, channels, width, dilation=dilation, bias=False),
                      nn.Conv1d(channels, channels, 1, dilation=1, bias=False)]
            norms += [nn.BatchNorm1d(channels, momentum=0.1), nn.BatchNorm1d(channels, momentum=0.1)]
            dilation *= width
        self.layers_conv = nn.ModuleList(convs)
        self.layers_bn = nn.ModuleList(norms)
        self.shrink = nn.Conv1d(channels, joints_out * 3, 1)

    def forward(self, x):
        batch, frames = x.shape[:2]
        x = x.view(batch, frames, -1).permute(0, 2, 1)  # (B, J_in*2, T)
        x = self.drop(self.relu(self.expand_bn(self.expand_conv(x))))
        for i, (pad, shift) in enumerate(zip(self.pad, self.causal_shift)):
            res = x[:, :, pad + shift: x.shape[2] - pad + shift]
            x = self.drop(self.relu(self.layers_bn[2 * i](self.layers_conv[2 * i](x))))
            x = res + self.drop(self.relu(self.layers_bn[2 * i + 1](self.layers_conv[2 * i + 1](x))))
        x = self.shrink(x)  # (B, J_out*3, T')
        return x.permute(0, 2, 1).reshape(batch, -1, self.joints_out, 3)


def randomised(model: nn.Module, seed: int) -> nn.Module:
    """Give every batch norm non-trivial running statistics and affine terms, then switch to eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.1)
    return model.eval()


@pytest.mark.parametrize("causal", [False, True])
def test_numpy_model_matches_torch_forward(tmp_path, causal):
    torch.manual_seed(0)
    widths = [3, 3, 3]
    reference = randomised(ReferenceTemporalModel(17, 17, widths, causal, channels=64), seed=1)
    path = tmp_path / "pretrained_h36m_tiny.bin"
    torch.save({"epoch": 80, "lr": 1e-3, "model_pos": reference.state_dict()}, path)

    model = TemporalModel.from_checkpoint(path, causal=causal)
    assert model.filter_widths == (3, 3, 3)
    assert model.receptive_field == 27

    keypoints_xy = np.random.default_rng(2).uniform(-1, 1, (40, 17, 2)).astype(np.float32)  # (T, J, 2)
    with torch.no_grad():
        expected = reference(torch.from_numpy(keypoints_xy)[None])[0].numpy()
    got = model(keypoints_xy)
    assert got.shape == expected.shape == (40 - 27 + 1, 17, 3)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_causal_output_depends_only_on_past_frames(tmp_path):
    """A causal model's pose for frame t must not move when frames after t change; the symmetric one's does."""
    torch.manual_seed(3)
    reference = randomised(ReferenceTemporalModel(17, 17, [3, 3], causal=True, channels=32), seed=4)
    path = tmp_path / "causal.bin"
    torch.save({"model_pos": reference.state_dict()}, path)
    causal = TemporalModel.from_checkpoint(path, causal=True)
    symmetric = TemporalModel.from_checkpoint(path, causal=False)

    xy = np.random.default_rng(5).uniform(0, 640, (30, 17, 2))  # (T, J, 2) pixels
    changed = xy.copy()
    changed[20:] += 50.0
    for model, same_before in ((causal, 20), (symmetric, 20 - symmetric.receptive_field // 2)):
        a, b = model.lift(xy, 640, 480), model.lift(changed, 640, 480)
        assert a.shape == (30, 17, 3)
        np.testing.assert_array_equal(a[:same_before], b[:same_before])
        assert not np.allclose(a[same_before], b[same_before])
    # The causal model's lift matches torch's forward over the edge-padded, normalised sequence.
    normalised = xy / 640 * 2 - [1, 480 / 640]
    padded = np.pad(normalised, ((8, 0), (0, 0), (0, 0)), mode="edge").astype(np.float32)
    with torch.no_grad():
        expected = reference(torch.from_numpy(padded)[None])[0].numpy()
    np.testing.assert_allclose(causal.lift(xy, 640, 480), expected, atol=1e-4)


from rigcast.errors import ModelError  # noqa: E402
from rigcast.models.videopose3d import RunnerTemporalModel  # noqa: E402
from rigcast.runners import TensorSpec, make_runner  # noqa: E402

LIFTER_IO = {"inputs": (TensorSpec("keypoints_2d", (1, None, 17, 2)),),
             "outputs": (TensorSpec("pose_3d", (1, None, 17, 3)),)}


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_torch_runner_runs_torchscript_and_weights_only_checkpoints(tmp_path):
    torch.manual_seed(6)
    reference = randomised(ReferenceTemporalModel(17, 17, [3, 3, 3], causal=False, channels=32), seed=7)
    numpy_model = TemporalModel.from_state_dict({k: v.numpy() for k, v in reference.state_dict().items()})
    xy = np.random.default_rng(8).uniform(0, 1000, (50, 17, 2))  # (T, J, 2) pixels
    expected = numpy_model.lift(xy, 1000, 600)

    scripted = tmp_path / "videopose3d.ts"
    torch.jit.trace(reference, torch.zeros(1, 40, 17, 2)).save(str(scripted))
    runner = make_runner(scripted, device="cpu", **LIFTER_IO)
    assert runner.provider == "torch-cpu"
    lifter = RunnerTemporalModel(runner)
    assert lifter.receptive_field == 27
    np.testing.assert_allclose(lifter.lift(xy, 1000, 600), expected, atol=1e-4)

    checkpoint = tmp_path / "videopose3d.bin"
    torch.save({"model_pos": reference.state_dict()}, checkpoint)

    def build(state):
        module = ReferenceTemporalModel(17, 17, [3, 3, 3], causal=False, channels=32)
        module.load_state_dict(state["model_pos"])
        return module

    lifter = RunnerTemporalModel(make_runner(checkpoint, device="cpu", build=build, **LIFTER_IO))
    np.testing.assert_allclose(lifter.lift(xy, 1000, 600), expected, atol=1e-4)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_torch_runner_refuses_pickled_code_and_bare_state_dicts(tmp_path, capsys):
    evil = tmp_path / "evil.pth"
    torch.save({"model_pos": Payload()}, evil)
    with pytest.raises(ModelError, match=r"^evil.pth: not a TorchScript archive nor a weights-only checkpoint"):
        make_runner(evil, device="cpu", build=lambda s: s, **LIFTER_IO)
    assert "never run" not in capsys.readouterr().out

    plain = tmp_path / "plain.pt"
    torch.save({"model_pos": {"shrink.bias": torch.zeros(3)}}, plain)
    with pytest.raises(ModelError, match=r"plain.pt is a checkpoint, not TorchScript: .* \(build=\)$"):
        make_runner(plain, device="cpu", **LIFTER_IO)
    with pytest.raises(ModelError, match=r"needs its input and output specs"):
        make_runner(plain, device="cpu")
