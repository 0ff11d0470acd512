"""One Euro filtering, gap filling and rotation smoothing on synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from rigcast.smooth import (FILLED_CONF_FACTOR, ONE_EURO_LANDMARKS, OneEuroConfig, fill_gaps, one_euro,
                            smooth_rotations, smooth_track_arrays)

FPS = 30.0
HEIGHT_PX = 400.0  # person height, the xy speed scale


def _noisy_sine(time_s: np.ndarray, seed: int = 0, joints: int = 33):
    """(T, J, 2) pixels: a 0.3 Hz sine of 5 % of the height plus jitter of 0.5 % of it; and the clean sine."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, (1, joints, 2))
    truth = 200.0 + 0.05 * HEIGHT_PX * np.sin(2 * np.pi * 0.3 * time_s[:, None, None] + phase)
    return truth + rng.normal(0.0, 0.005 * HEIGHT_PX, truth.shape), truth


def _jitter_variance(filtered: np.ndarray, clean_filtered: np.ndarray) -> float:
    # The filter's response to the noise alone (noisy run minus clean run), past its start-up second.
    return float(np.var((filtered - clean_filtered)[int(FPS):]))


@pytest.mark.parametrize("vfr", [False, True])
def test_one_euro_cuts_jitter_and_follows_the_signal(vfr):
    rng = np.random.default_rng(1)
    steps = np.full(300, 1.0 / FPS) * (rng.uniform(0.5, 1.5, 300) if vfr else 1.0)
    time_s = np.cumsum(steps)
    noisy, truth = _noisy_sine(time_s)
    noisy_before = noisy.copy()
    filtered = one_euro(noisy, time_s, ONE_EURO_LANDMARKS, scale=HEIGHT_PX)
    clean = one_euro(truth, time_s, ONE_EURO_LANDMARKS, scale=HEIGHT_PX)
    np.testing.assert_array_equal(noisy, noisy_before)
    assert filtered.shape == noisy.shape
    assert np.var(noisy - truth) / _jitter_variance(filtered, clean) > 4.0
    # It still follows the slow motion: error well under the sine's 20 px amplitude.
    assert np.sqrt(np.mean((filtered - truth)[int(FPS):] ** 2)) < 3.0


def test_one_euro_step_lag_is_short_and_beta_matters():
    time_s = np.arange(120) / FPS
    step = np.where(time_s >= 2.0, 0.25 * HEIGHT_PX, 0.0)[:, None]
    onset = int(np.argmax(step[:, 0] > 0))

    def lag(config):
        out = one_euro(step, time_s, config, scale=HEIGHT_PX)[:, 0]
        return int(np.argmax(out >= 0.9 * step[-1, 0])) - onset

    assert lag(ONE_EURO_LANDMARKS) <= 3
    assert lag(OneEuroConfig(min_cutoff=ONE_EURO_LANDMARKS.min_cutoff, beta=0.0)) > 8  # no speed adaptation: slow


def test_one_euro_scale_makes_beta_unit_free():
    time_s = np.arange(200) / FPS
    noisy, _ = _noisy_sine(time_s, seed=2, joints=3)
    small = one_euro(noisy, time_s, ONE_EURO_LANDMARKS, scale=HEIGHT_PX)
    big = one_euro(noisy * 10.0, time_s, ONE_EURO_LANDMARKS, scale=HEIGHT_PX * 10.0)
    np.testing.assert_allclose(big, small * 10.0, rtol=1e-9, atol=1e-9)


def test_one_euro_restarts_after_nan_gap():
    time_s = np.arange(20) / FPS
    values = np.concatenate([np.zeros(8), np.full(4, np.nan), np.full(8, 100.0)])[:, None]
    out = one_euro(values, time_s, ONE_EURO_LANDMARKS, scale=HEIGHT_PX)
    assert np.isnan(out[8:12]).all()
    assert out[12, 0] == 100.0  # no state dragged across the gap
    np.testing.assert_array_equal(out[:8, 0], 0.0)


@pytest.mark.parametrize("time_s, scale, message", [
    (np.array([0.0, 0.1, 0.1]), 1.0, "strictly increasing"),
    (np.array([0.0, 0.1]), 1.0, r"time_s must be \(T,\) with T=3"),
    (np.array([0.0, 0.1, 0.2]), 0.0, "scale must be positive"),
    (np.array([0.0, 0.1, 0.2]), np.ones(2), r"scale must be a scalar or \(T,\)"),
])
def test_one_euro_rejects_bad_input(time_s, scale, message):
    with pytest.raises(ValueError, match=message):
        one_euro(np.zeros((3, 2)), time_s, ONE_EURO_LANDMARKS, scale=scale)


def test_fill_gaps_interpolates_short_gaps_on_the_dense_range():
    # Two joints moving linearly; frames 3-5 absent from the track, joint 1 has NaN at 10-11, conf 0 at 13.
    frame_index = np.array([0, 1, 2, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15])
    ramp = np.arange(16)[:, None]
    dense_truth = np.stack([ramp * [2.0, -1.0], 50.0 + ramp * [0.5, 3.0]], axis=1)  # (16, 2, 2)
    values = dense_truth[frame_index].copy()
    conf = np.full((frame_index.size, 2), 0.8)
    conf[frame_index == 6, 0] = 0.6
    values[np.isin(frame_index, [10, 11]), 1] = np.nan
    conf[frame_index == 13, 1] = 0.0
    values_before, conf_before = values.copy(), conf.copy()

    dense, filled, filled_conf = fill_gaps(values, conf, frame_index, max_gap=5)
    np.testing.assert_array_equal(dense, np.arange(16))
    np.testing.assert_allclose(filled, dense_truth, atol=1e-12)
    assert filled_conf[4, 0] == pytest.approx(FILLED_CONF_FACTOR * 0.6)
    assert filled_conf[10, 1] == pytest.approx(FILLED_CONF_FACTOR * 0.8)
    assert filled_conf[13, 1] == pytest.approx(FILLED_CONF_FACTOR * 0.8)
    assert filled_conf[7, 0] == 0.8
    np.testing.assert_array_equal(values, values_before)
    np.testing.assert_array_equal(conf, conf_before)


def test_fill_gaps_leaves_long_and_open_gaps_missing():
    frame_index = np.arange(20)
    values = np.tile(np.arange(20, dtype=float)[:, None, None], (1, 1, 3))
    conf = np.ones((20, 1))
    values[4:10] = np.nan        # 6 frames: longer than max_gap = 5
    conf[15:] = 0.0              # runs to the end: no right neighbour
    values[0] = np.nan           # no left neighbour
    _, filled, filled_conf = fill_gaps(values, conf, frame_index, max_gap=5)
    missing = np.zeros(20, dtype=bool)
    missing[[0, 4, 5, 6, 7, 8, 9, 15, 16, 17, 18, 19]] = True
    assert np.isnan(filled[missing]).all() and (filled_conf[missing] == 0).all()
    assert np.isfinite(filled[~missing]).all() and (filled_conf[~missing] == 1).all()
    # A skipped-frame gap longer than max_gap stays missing too.
    kept = np.array([1, 2, 3, 12, 13])
    dense, filled, filled_conf = fill_gaps(values[kept], conf[kept], kept)
    np.testing.assert_array_equal(dense, np.arange(1, 14))
    assert np.isnan(filled[3:11]).all() and (filled_conf[3:11] == 0).all()


@pytest.mark.parametrize("frame_index, message", [
    (np.array([0, 2, 2]), "strictly increasing"),
    (np.array([0, 1]), r"frame_index must be \(T,\)"),
    (np.array([0.0, 1.5, 2.0]), "integers"),
])
def test_fill_gaps_rejects_bad_frame_index(frame_index, message):
    with pytest.raises(ValueError, match=message):
        fill_gaps(np.zeros((3, 2, 2)), np.ones((3, 2)), frame_index)


def test_smooth_track_arrays_fills_then_filters_on_the_dense_range():
    clip_frames = np.arange(100, 130)                       # the analysed range of the clip
    clip_time_s = np.cumsum(np.random.default_rng(6).uniform(0.02, 0.045, 30))  # variable rate
    frame_index = np.array([103, 104, 105, 106, 108, 109, 110, 111, 112, 113])  # frame 107 missing
    xy_all, _ = _noisy_sine(clip_time_s, seed=4)
    xy = xy_all[frame_index - 100]
    xyz = np.concatenate([xy * (1.7 / HEIGHT_PX), np.zeros(xy.shape[:2] + (1,))], axis=2)  # same motion in metres
    conf = np.full(xy.shape[:2], 0.9)
    conf[2, 5] = 0.0                                        # one joint missing at frame 105
    before = [a.copy() for a in (xy, xyz, conf)]

    fi, ts, out_xy, out_xyz, out_conf = smooth_track_arrays(frame_index, clip_time_s[frame_index - 100], xy, xyz, conf,
                                                            clip_frames, clip_time_s)
    np.testing.assert_array_equal(fi, np.arange(103, 114))
    np.testing.assert_array_equal(ts, clip_time_s[3:14])
    assert out_xy.shape == (11, 33, 2) and out_xyz.shape == (11, 33, 3) and out_conf.shape == (11, 33)
    assert np.isfinite(out_xy).all() and np.isfinite(out_xyz).all()
    assert out_conf[4].max() == pytest.approx(FILLED_CONF_FACTOR * 0.9) and out_conf[2, 5] > 0
    # Speed is measured in body heights in both spaces, so metres behave like pixels.
    np.testing.assert_allclose(out_xyz[..., :2], out_xy * (1.7 / HEIGHT_PX), rtol=1e-9)
    assert np.abs(out_xy - xy_all[3:14]).max() > 0  # it did filter
    for array, copy in zip((xy, xyz, conf), before):
        np.testing.assert_array_equal(array, copy)

    _, _, filled_only, _, _ = smooth_track_arrays(frame_index, clip_time_s[frame_index - 100], xy, xyz, conf,
                                                  clip_frames, clip_time_s, config=None)
    expected = xy.copy()
    expected[2, 5] = 0.5 * (xy[1, 5] + xy[3, 5])  # the joint missing at 105 is interpolated, nothing else moves
    np.testing.assert_allclose(filled_only[frame_index - 103], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="clip_frame_index must hold every frame from 103 to 113"):
        smooth_track_arrays(frame_index, clip_time_s[frame_index - 100], xy, xyz, conf, clip_frames[:10],
                            clip_time_s[:10])


def _angular_jitter(quat_wxyz: np.ndarray) -> float:
    rot = Rotation.from_quat(quat_wxyz, scalar_first=True)
    step = (rot[:-1].inv() * rot[1:]).as_rotvec()
    return float(np.var(np.diff(step, axis=0)))  # variance of angular acceleration per frame


def test_smooth_rotations_unit_sign_continuous_and_less_jittery():
    rng = np.random.default_rng(5)
    time_s = np.cumsum(np.full(200, 1.0 / FPS) * rng.uniform(0.7, 1.3, 200))
    truth = Rotation.from_euler("yxz", np.stack([0.8 * np.sin(0.6 * time_s), 0.2 * np.sin(0.4 * time_s),
                                                 np.zeros_like(time_s)], axis=1))
    noisy = truth * Rotation.from_rotvec(rng.normal(0.0, np.radians(1.5), (200, 3)))
    quat = noisy.as_quat(scalar_first=True)
    quat[rng.random(200) < 0.5] *= -1.0  # random sign flips: the same rotations
    quat_before = quat.copy()
    out = smooth_rotations(quat, time_s)
    np.testing.assert_array_equal(quat, quat_before)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-12)
    assert (np.sum(out[1:] * out[:-1], axis=1) >= 0).all()
    assert _angular_jitter(quat) / _angular_jitter(out) > 4.0
    error = (Rotation.from_quat(out, scalar_first=True) * truth.inv()).magnitude()
    noisy_error = (noisy * truth.inv()).magnitude()
    assert np.mean(error[30:]) < np.mean(noisy_error[30:])


def test_smooth_rotations_restarts_after_nan():
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (6, 1))
    quat[2] = np.nan
    quat[3:] = Rotation.from_euler("z", 90, degrees=True).as_quat(scalar_first=True)
    out = smooth_rotations(quat, np.arange(6) / FPS)
    assert np.isnan(out[2]).all()
    np.testing.assert_allclose(out[3], quat[3])  # restarted at the measurement, not blended with frame 1
