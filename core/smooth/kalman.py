"""Zero-phase, motion-adaptive Kalman (Rauch-Tung-Striebel) smoothing of landmark arrays.

Analysis is offline, so every frame can see its future as well as its past.
A forward Kalman filter followed by the RTS backward pass gives, for each
frame, the estimate that uses the whole clip: no lag at all, where any causal
filter (One Euro, MediaPipe's) trades jitter against lag.

Model, per component (x or y of a joint, ...), in units of the person's
height (``scale``) so one set of numbers serves pixels and metres:

    state (position p, velocity v), constant velocity between frames:
      p' = p + dt v,  v' = v + w,  w white acceleration of spectral density q_t
    measurement  z = p + e,  e ~ N(0, r)

* ``r``, the measurement noise, is estimated per component from the data: the
  robust spread (MAD) of second differences, which for white noise of
  variance r have variance 6 r and which smooth motion hardly moves.
* ``q`` follows the motion.  The smoother runs at ``num_levels`` process
  noises ``q_still * q_step**k``; per joint and frame the heaviest level whose
  residuals, averaged over ``window_frames`` either side, stay noise-like
  (mean squared normalised residual <= ``fit_chi2``, on every such window
  around the frame) is kept, and a frame takes the lightest level any frame
  within ``window_frames`` needed.  A still joint is averaged over the whole
  still stretch; a moving one is followed closely, with no lag.
* Outliers (an innovation beyond ``outlier_sigma`` standard deviations in the
  lightest level's forward pass) are dropped and filled by the model.

Why this filter.  Measured with benchmarks/bench_steadiness.py's clips (the bus.jpg man, 90 frames; still:
world jitter mm and 2D jitter px after 10 frames; moving and 2x: lag in frames and path error in % of the
frame height; MediaPipe Pose on the same files: 4.15 mm, 0.36 px; lag 0.78 and 0.35, error 0.53 and 0.75):

    smoother                         world   2D     lag    error   lag 2x  error 2x
    none (steadied ROIs only)        2.11   0.15   -0.19   0.52   -0.02    0.57
    One Euro 0.7 Hz, beta 6 (old)    1.59   0.16    1.81   0.90    1.20    1.49
    this, light                      1.81   0.14    0.09   0.40    0.04    0.36
    this, default                    1.79   0.14    0.09   0.40    0.04    0.36
    this, strong                     1.78   0.13    0.35   0.42    0.05    0.53

(Rows measured with min_noise 2e-4 and q_still 1e-5; with today's 1e-3 the default gives
1.18 mm, 0.12 px; lag 0.11 and 0.07, error 0.38 and 0.39: drift of under 0.4 px counts as noise, so still
joints are smoothed harder at no cost in motion.  The heaviest level went from q_still 1e-5 to 1e-7 (two
more levels, the lightest unchanged) once the ROI stopped stepping: the model's output still creeps at a
fixed crop (the astronaut's nose by 0.4 px over the clip's first 12 frames, as the encoder settles), and the
heavier level averages that too: astronaut still 2D 0.139 -> 0.095 px, bus.jpg man 1.18 -> 0.90 mm, with
lag and path error unchanged on all four moving clips.)

A causal filter pays for its smoothing in lag (One Euro: nearly two frames, and a path error 1.7x
MediaPipe's); a fixed-window zero-phase fit either blurs moves or leaves still jitter; choosing, frame by
frame, the heaviest RTS level whose residuals still look like noise gets both (with bone lengths held, see
``bones``).

Legend: T frames; trailing dims (J joints, C components ...) are smoothed
independently.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KalmanConfig:
    """Motion-adaptive RTS smoother settings (see the module docstring); lengths in person heights.

    ``q_still``: the heaviest level's process noise (heights^2 / s^3): lower smooths still joints harder.
    ``q_step``, ``num_levels``: the levels tried.  ``window_frames``, ``fit_chi2``: the residual test.
    ``outlier_sigma``: spike rejection.  ``min_noise``: floor of the measurement noise std.
    """

    q_still: float = 1e-7
    q_step: float = 10.0
    num_levels: int = 8
    window_frames: int = 4
    fit_chi2: float = 2.0
    outlier_sigma: float = 6.0
    min_noise: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("q_still", "min_noise", "fit_chi2", "outlier_sigma"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number, got {v}")
        if not self.q_step > 1:
            raise ValueError(f"q_step must be > 1, got {self.q_step}")
        if self.num_levels < 1 or self.window_frames < 0:
            raise ValueError(f"need num_levels >= 1 and window_frames >= 0, got {self.num_levels}, {self.window_frames}")


KALMAN_LANDMARKS = KalmanConfig()

SMOOTHING_LEVELS: dict[str, KalmanConfig | None] = {
    "off": None,
    "light": KalmanConfig(q_still=1e-3, num_levels=4),
    "default": KALMAN_LANDMARKS,
    "strong": KalmanConfig(q_still=1e-8, num_levels=9, fit_chi2=4.0),
}
"""``rigcast analyze --smooth``: ``light`` never smooths still joints beyond q = 1e-3 (shorter windows),
``strong`` accepts residuals of twice the noise before following a move (smoother motion, a little
less detail)."""


LEVELS_PASS_ELEMENTS = 250_000
"""Most values (frames x components x levels) one pass of :func:`kalman_smooth`'s levels holds: the pass
keeps about 17 arrays of that size (34 MB at most): a 120-frame track's 8 levels run in one pass, a
1200-frame track's xyz (99 components) in 4."""


def _rts(z: np.ndarray, dt: np.ndarray, q: np.ndarray, r: np.ndarray, keep: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Constant-velocity Kalman filter + RTS smoother over T for N independent components.

    ``z`` (T, N) measurements (NaN: missing), ``dt`` (T,) seconds since the previous frame (dt[0] unused),
    ``q`` (T, N) process noise into frame t, ``r`` (N,) measurement variance, ``keep`` (T, N) which
    measurements to use.  A component restarts after a run of NaN samples (no state crosses a gap).
    Returns smoothed positions (T, N) (NaN where z is NaN), the smoothed velocities (T, N), and the
    normalised innovations (T, N) of the forward pass (NaN where unused).
    """
    num_t, n = z.shape
    valid = np.isfinite(z)
    use = valid & keep
    big = 1e6
    # Forward pass.  Covariance [[a, b], [b, c]] per component.
    xp = np.zeros((num_t, n)); xv = np.zeros((num_t, n))      # filtered
    pp = np.zeros((num_t, n)); pv = np.zeros((num_t, n))      # predicted (position, velocity)
    pa = np.zeros((num_t, n)); pb = np.zeros((num_t, n)); pc = np.zeros((num_t, n))  # predicted cov
    fa = np.zeros((num_t, n)); fb = np.zeros((num_t, n)); fc = np.zeros((num_t, n))  # filtered cov
    innov = np.full((num_t, n), np.nan)
    restart = np.zeros((num_t, n), dtype=bool)
    x, v = np.where(valid[0], z[0], 0.0), np.zeros(n)
    a, b, c = np.where(use[0], r, big), np.zeros(n), np.full(n, big)
    restart[0] = True
    running = valid[0].copy()
    for t in range(num_t):
        if t > 0:
            h = dt[t]
            qt = q[t]
            # Predict: x' = F x, P' = F P F^T + Q, F = [[1, h], [0, 1]], Q = q [[h^3/3, h^2/2], [h^2/2, h]].
            x_pred = x + h * v
            a_pred = a + 2 * h * b + h * h * c + qt * h ** 3 / 3.0
            b_pred = b + h * c + qt * h * h / 2.0
            c_pred = c + qt * h
            fresh = valid[t] & ~running  # first sample after a gap (or ever): start over
            x = np.where(fresh, z[t], x_pred)
            v = np.where(fresh, 0.0, v)
            a = np.where(fresh, np.where(use[t], r, big), a_pred)
            b = np.where(fresh, 0.0, b_pred)
            c = np.where(fresh, big, c_pred)
            restart[t] = fresh
            running = valid[t]
            pp[t], pv[t], pa[t], pb[t], pc[t] = x, v, a, b, c
            upd = use[t] & ~fresh
        else:
            pp[t], pv[t], pa[t], pb[t], pc[t] = x, v, a, b, c
            upd = np.zeros(n, dtype=bool)
        if np.any(upd):
            s = a + r
            resid = np.where(upd, z[t] - x, 0.0)
            innov[t] = np.where(upd, resid / np.sqrt(s), np.nan)
            ka, kb = a / s, b / s
            x = np.where(upd, x + ka * resid, x)
            v = np.where(upd, v + kb * resid, v)
            a, b, c = (np.where(upd, a - ka * a, a), np.where(upd, b - ka * b, b), np.where(upd, c - kb * b, c))
        xp[t], xv[t], fa[t], fb[t], fc[t] = x, v, a, b, c
    # Backward (RTS) pass on the means: x_s[t] = x_f[t] + G (x_s[t+1] - x_pred[t+1]),
    # G = P_f[t] F^T P_pred[t+1]^-1 (2x2), never across a restart or a missing sample.
    sp, sv = xp.copy(), xv.copy()
    for t in range(num_t - 2, -1, -1):
        h = dt[t + 1]
        link = valid[t] & valid[t + 1] & ~restart[t + 1]
        # P_f F^T = [[a + h b, b], [b + h c, c]]
        m00, m01 = fa[t] + h * fb[t], fb[t]
        m10, m11 = fb[t] + h * fc[t], fc[t]
        det = pa[t + 1] * pc[t + 1] - pb[t + 1] ** 2
        det = np.where(np.abs(det) > 0, det, 1.0)
        i00, i01, i11 = pc[t + 1] / det, -pb[t + 1] / det, pa[t + 1] / det
        g00, g01 = m00 * i00 + m01 * i01, m00 * i01 + m01 * i11
        g10, g11 = m10 * i00 + m11 * i01, m10 * i01 + m11 * i11
        dp, dv = sp[t + 1] - pp[t + 1], sv[t + 1] - pv[t + 1]
        sp[t] = np.where(link, xp[t] + g00 * dp + g01 * dv, xp[t])
        sv[t] = np.where(link, xv[t] + g10 * dp + g11 * dv, xv[t])
    sp[~valid] = np.nan
    return sp, sv, innov


def noise_std(z: np.ndarray) -> np.ndarray:
    """Robust per-component std (N,) of white measurement noise in ``z`` (T, N): MAD of second differences / sqrt(6)."""
    d2 = z[2:] - 2 * z[1:-1] + z[:-2]
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(d2, axis=0)
            mad = np.nanmedian(np.abs(d2 - med), axis=0)
    return 1.4826 * mad / math.sqrt(6.0)


def _local_mean(x: np.ndarray, half: int) -> np.ndarray:
    """Mean over a centred window of ``2 half + 1`` frames along axis 0, NaN-aware (edges use what there is)."""
    ok = np.isfinite(x)
    c = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(np.where(ok, x, 0.0), axis=0)])
    n = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(ok, axis=0)])
    t = np.arange(x.shape[0])
    hi, lo = np.minimum(t + half + 1, x.shape[0]), np.maximum(t - half, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (c[hi] - c[lo]) / (n[hi] - n[lo])


def _rolling(x: np.ndarray, half: int, reduce) -> np.ndarray:
    """``reduce`` (np.min, np.max) over a centred window of ``2 half + 1`` frames along axis 0, edges repeated."""
    padded = np.pad(x, ((half, half),) + ((0, 0),) * (x.ndim - 1), mode="edge")
    return reduce(np.stack([padded[i:i + x.shape[0]] for i in range(2 * half + 1)]), axis=0)


def kalman_smooth(values: np.ndarray, time_s: np.ndarray, config: KalmanConfig = KALMAN_LANDMARKS,
                  scale: float = 1.0, group: int = 1) -> np.ndarray:
    """Smooth ``values`` (T, ...) along T without lag; returns a new float64 array, NaN where the input is.

    ``scale`` (the person's height in the values' units) makes the settings unit free.
    ``group``: the last axis' size whose components share one noise estimate and one
    motion test (2 for xy, 3 for xyz; 1 smooths every component alone).
    """
    values = np.asarray(values, dtype=np.float64)
    time_s = np.asarray(time_s, dtype=np.float64)
    num_t = values.shape[0]
    if time_s.shape != (num_t,):
        raise ValueError(f"time_s must be (T,) with T={num_t}, got {time_s.shape}")
    if num_t > 1 and not np.all(np.diff(time_s) > 0):
        raise ValueError("time_s must be strictly increasing")
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be positive and finite, got {scale}")
    if values.ndim < 2 or values.shape[-1] % group:
        raise ValueError(f"values must be (T, ..., C) with C a multiple of group={group}, got {values.shape}")
    if num_t < 3:
        return values.copy()
    z = values.reshape(num_t, -1, group) / scale  # (T, M, G)
    m = z.shape[1]
    flat = z.reshape(num_t, -1)
    dt = np.concatenate([[0.0], np.diff(time_s)])
    # Measurement noise per group (pooled over its components).
    with warnings.catch_warnings():  # a joint missing on every frame has no noise: NaN, replaced just below
        warnings.simplefilter("ignore", RuntimeWarning)
        sigma = np.sqrt(np.nanmean(noise_std(flat).reshape(m, group) ** 2, axis=1))
    sigma = np.where(np.isfinite(sigma), np.maximum(sigma, config.min_noise), config.min_noise)
    r = np.repeat(sigma ** 2, group)
    levels = config.q_still * config.q_step ** np.arange(config.num_levels)
    # Outliers: samples beyond outlier_sigma of the lightest level's one-step prediction (a spike, not a move:
    # that level follows any real motion).
    _, _, innov = _rts(flat, dt, np.full_like(flat, levels[-1]), r, np.ones_like(flat, dtype=bool))
    keep = ~(np.abs(np.nan_to_num(innov)) > config.outlier_sigma)
    # The levels run side by side along N, as many per pass as LEVELS_PASS_ELEMENTS allows: the components
    # are independent, so this is the same arithmetic as one pass per level, with the per-frame Python loop
    # run once instead of num_levels times on a short track (a 120-frame track, xy and xyz: 0.16 -> 0.06 s
    # of CPU, bit-identical output), and the passes' arrays stay small on a long one.
    num_levels, n = config.num_levels, flat.shape[1]
    per_pass = int(np.clip(LEVELS_PASS_ELEMENTS // max(num_t * n, 1), 1, num_levels))
    stack = np.empty((num_levels, num_t, n))  # (L, T, N)
    for first in range(0, num_levels, per_pass):
        block = levels[first:first + per_pass]
        side_by_side = np.broadcast_to(np.repeat(block, n), (num_t, len(block) * n))
        smoothed, _, _ = _rts(np.tile(flat, len(block)), dt, side_by_side, np.tile(r, len(block)),
                              np.tile(keep, len(block)))
        stack[first:first + len(block)] = smoothed.reshape(num_t, len(block), n).transpose(1, 0, 2)
    chosen = np.full((num_t, m), config.num_levels - 1)
    for k, s_k in enumerate(stack):
        resid = ((flat - s_k) ** 2 / r).reshape(num_t, m, group).mean(axis=2)
        # A level fits where its residual is noise-like over every window within window_frames
        # (a smoother that lags a move crosses the data now and then; one window alone would pass it there).
        fits = _rolling(_local_mean(resid, config.window_frames) <= config.fit_chi2, config.window_frames, np.min)
        chosen = np.where(fits & (chosen == config.num_levels - 1) & (k < config.num_levels - 1), k, chosen)
    # A frame uses the lightest level any frame within window_frames needed (no switching in mid-move).
    chosen = _rolling(chosen, config.window_frames, np.max)
    chosen = np.repeat(chosen, group, axis=1)
    out = np.take_along_axis(stack, chosen[None], axis=0)[0]
    out[~np.isfinite(flat)] = np.nan
    return (out * scale).reshape(values.shape)
