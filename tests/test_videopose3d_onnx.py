"""VideoPose3D's lifter exported to ONNX from its weights (no torch), run through rigcast's runners.

Legend: T frames, J joints.
"""

from __future__ import annotations

import numpy as np
import pytest

from rigcast.errors import InputError, ModelError
from rigcast.models.videopose3d import RunnerTemporalModel, TemporalModel
from rigcast.runners import make_runner
from test_torch_checkpoint import videopose3d_state



@pytest.mark.parametrize("widths,causal", [((3, 3, 3), False), ((3, 3, 3), True), ((3, 5), False), ((1,), False)])
def test_onnx_export_matches_numpy(tmp_path, widths, causal):
    model = TemporalModel.from_state_dict(videopose3d_state(widths, channels=24, seed=len(widths)), causal=causal)
    path = model.to_onnx(tmp_path / "videopose3d.onnx")
    runner = make_runner(path, device="cpu")
    assert [s.name for s in runner.inputs] == ["keypoints_2d"]
    lifter = RunnerTemporalModel(runner, causal=causal)
    assert lifter.receptive_field == model.receptive_field == int(np.prod(widths))
    assert (lifter.num_joints_in, lifter.num_joints_out) == (17, 17)

    x = np.random.default_rng(1).uniform(-1, 1, (model.receptive_field + 11, 17, 2)).astype(np.float32)  # (T, J, 2)
    expected = model(x)
    got = lifter(x)
    assert got.shape == expected.shape == (12, 17, 3)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # The pixel path (normalise, edge pad) agrees too, one pose per input frame.
    xy = np.random.default_rng(2).uniform(0, 1280, (9, 17, 2))
    np.testing.assert_allclose(lifter.lift(xy, 1280, 720), model.lift(xy, 1280, 720), atol=1e-4)
    assert lifter.lift(xy, 1280, 720).shape == (9, 17, 3)


def test_runner_lifter_refuses_short_or_misshapen_input(tmp_path):
    model = TemporalModel.from_state_dict(videopose3d_state((3, 3), channels=8))
    lifter = RunnerTemporalModel(make_runner(model.to_onnx(tmp_path / "m.onnx"), device="cpu"))
    with pytest.raises(InputError, match=r"at least 9 frames .* got 4"):
        lifter(np.zeros((4, 17, 2), np.float32))
    with pytest.raises(InputError, match=r"must be \(T, 17, 2\), got \(20, 33, 2\)"):
        lifter(np.zeros((20, 33, 2), np.float32))


class _ImageRunner:
    """A runner whose input is an image, not keypoints."""

    from rigcast.runners import TensorSpec
    inputs = (TensorSpec("image", (1, 3, 256, 192)),)
    outputs = (TensorSpec("heatmaps", (1, 17, 64, 48)),)
    provider = "none"


def test_runner_lifter_names_a_wrong_model():
    with pytest.raises(ModelError, match=r"takes \(1, T, J, 2\) keypoints, got image \(1, 3, 256, 192\)"):
        RunnerTemporalModel(_ImageRunner())
