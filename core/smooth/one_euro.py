"""One Euro filter (Casiez, Roussel & Vogel, CHI 2012) for landmark arrays and rotations.

The filter is a first-order low-pass whose cutoff rises with speed:

    cutoff = min_cutoff + beta * |speed| / scale

so a still joint is smoothed hard (jitter removed) and a fast one is followed
with little lag.  Timestamps are used for every step (``alpha`` depends on the
true ``dt``), so variable-frame-rate footage is handled.

``beta`` multiplies a speed and is therefore unit dependent.  rigcast makes it
unit free by dividing the speed by ``scale``, the person's height in the
landmarks' own units (pixels for image landmarks, metres for world ones).
``beta`` is then "Hz per (body height per second)" and one set of numbers
works for pixels and metres, for a child far away and an adult close up.

Legend: T frames; trailing dims (J joints, C components ...) are filtered
independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroConfig:
    """Cutoffs in Hz; ``beta`` in Hz per (scale / s).

    The class defaults are :data:`ONE_EURO_LANDMARKS`.
    """

    min_cutoff: float = 0.7
    beta: float = 6.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if not (self.min_cutoff > 0 and math.isfinite(self.min_cutoff)):
            raise ValueError(f"min_cutoff must be a positive number of Hz, got {self.min_cutoff}")
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if not (self.d_cutoff > 0 and math.isfinite(self.d_cutoff)):
            raise ValueError(f"d_cutoff must be a positive number of Hz, got {self.d_cutoff}")


# How the defaults were chosen (offline mocap, BlazePose jitter ~0.5 % of the
# body height per frame, 24-60 fps).  On a 30 fps test bench (still joints, a
# 0.3 Hz sway of 5 % of the height, a step of 25 %):
#   min_cutoff 1.0, beta 8: still-jitter variance / 7,  sway RMS error 1.8 px, step lag 1 frame
#   min_cutoff 0.7, beta 6: still-jitter variance / 9,  sway RMS error 2.2 px, step lag 2 frames
#   min_cutoff 0.5, beta 2: still-jitter variance / 15, sway RMS error 3.5 px, step lag 3 frames
# (400 px person).  Jitter on a still body is the most visible artefact in a
# retargeted character while two frames of lag are not, so the middle row:
# a joint moving half a body height per second gets a 3.7 Hz cutoff.
ONE_EURO_LANDMARKS = OneEuroConfig(min_cutoff=0.7, beta=6.0, d_cutoff=1.0)
"""Landmarks, with ``scale`` = the person's height in the landmarks' own units:
pixels for image landmarks, metres for world landmarks (see
``landmarks.landmark_height``), so one config serves both."""

ONE_EURO_ROTATION = OneEuroConfig(min_cutoff=1.0, beta=2.0, d_cutoff=1.0)
"""Rotations, speed in rad/s: head-pose jitter (~0.3 rad/s) keeps the cutoff
near 1.6 Hz, a head turning at 2 rad/s gets 5 Hz."""


def _alpha(cutoff_hz: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    # The One Euro paper's smoothing factor for a first-order low-pass of cutoff
    # f_c sampled after dt seconds (backward Euler): alpha = dt / (dt + tau),
    # tau = 1 / (2 pi f_c).  It depends on the true dt, hence VFR-safe.
    tau = 1.0 / (2.0 * np.pi * cutoff_hz)
    return dt_s / (dt_s + tau)


def _check_time(time_s: np.ndarray, num_frames: int) -> np.ndarray:
    time_s = np.asarray(time_s, dtype=np.float64)
    if time_s.shape != (num_frames,):
        raise ValueError(f"time_s must be (T,) with T={num_frames}, got {time_s.shape}")
    if not np.all(np.isfinite(time_s)):
        raise ValueError("time_s must be finite, got NaN or inf")
    if num_frames > 1 and not np.all(np.diff(time_s) > 0):
        bad = int(np.argmin(np.diff(time_s) > 0))
        raise ValueError(f"time_s must be strictly increasing, got {time_s[bad]} then {time_s[bad + 1]} at frame {bad}")
    return time_s


def one_euro(values: np.ndarray, time_s: np.ndarray, config: OneEuroConfig = ONE_EURO_LANDMARKS,
             scale: float | np.ndarray = 1.0) -> np.ndarray:
    """Filter ``values`` (T, ...) along T with a One Euro filter; return a new float64 array.

    Every trailing component is filtered independently (vectorised; the loop
    runs over T only).  NaN samples stay NaN and the component's filter
    restarts at the next valid sample, so a gap never drags stale state
    across it.

    ``time_s`` (T,) must be strictly increasing seconds (variable rates are
    fine).  ``scale`` is a positive scalar or a (T,) array (per-frame person
    size, say) that divides the speed before ``beta`` is applied.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim < 1:
        raise ValueError("values must be (T, ...), got a scalar")
    num_frames = values.shape[0]
    time_s = _check_time(time_s, num_frames)
    scale_arr = np.asarray(scale, dtype=np.float64)
    if scale_arr.ndim == 0:
        scale_t = np.full(num_frames, float(scale_arr))
    elif scale_arr.shape == (num_frames,):
        scale_t = scale_arr
    else:
        raise ValueError(f"scale must be a scalar or (T,) with T={num_frames}, got shape {scale_arr.shape}")
    if not np.all(np.isfinite(scale_t) & (scale_t > 0)):
        raise ValueError(f"scale must be positive and finite, got values in [{np.min(scale_t)}, {np.max(scale_t)}]")

    out = np.full_like(values, np.nan)
    filt = OneEuroFilter(config, values.shape[1:])
    for t in range(num_frames):
        out[t] = filt.step(values[t], time_s[t], scale_t[t])
    return out


class OneEuroFilter:
    """The filter of :func:`one_euro` one sample at a time, for streams: ``step(x, t, scale)`` takes a
    sample of ``shape`` at ``t`` seconds (strictly increasing between calls) and returns the filtered value
    (a new array).  :func:`one_euro` is this filter run over an array, so both give the same numbers."""

    def __init__(self, config: OneEuroConfig = ONE_EURO_LANDMARKS, shape: tuple[int, ...] = ()):
        self.config = config
        self._x_hat = np.full(shape, np.nan)  # filtered value; NaN where the component's filter is not running
        self._dx_hat = np.zeros(shape)         # filtered speed
        self._t: float | None = None

    def step(self, x: np.ndarray, time_s: float, scale: float = 1.0) -> np.ndarray:
        config = self.config
        x = np.asarray(x, dtype=np.float64)
        running = np.isfinite(x) & np.isfinite(self._x_hat)  # never at the first sample
        if np.any(running):
            dt = time_s - self._t
            dx_hat = self._dx_hat + _alpha(config.d_cutoff, dt) * ((x - self._x_hat) / dt - self._dx_hat)
            a = _alpha(config.min_cutoff + config.beta * np.abs(dx_hat) / scale, dt)
            x_hat = self._x_hat + a * (x - self._x_hat)
            if running.all():  # the common case
                self._x_hat, self._dx_hat = x_hat, dx_hat
            else:
                # Running components step towards x; the others take x itself: a fresh start
                # after a gap, or NaN (a stopped filter) where x is missing.
                self._x_hat, self._dx_hat = np.where(running, x_hat, x), np.where(running, dx_hat, 0.0)
        else:
            self._x_hat, self._dx_hat = np.array(x, copy=True), np.zeros(x.shape)
        self._t = float(time_s)
        return self._x_hat.copy()

    @property
    def speed(self) -> np.ndarray:
        """The filtered speed (units per second, of ``shape``) after the latest sample; 0 before two."""
        return self._dx_hat.copy()


def smooth_rotations(quat_wxyz: np.ndarray, time_s: np.ndarray,
                     config: OneEuroConfig = ONE_EURO_ROTATION) -> np.ndarray:
    """One Euro filter on a rotation sequence ``quat_wxyz`` (T, 4); returns unit (T, 4) quaternions.

    Each step works in the tangent space of the previous filtered rotation
    R_hat: the measurement's offset is the rotation vector
    ``delta = log(R_hat^-1 R_t)`` (body frame), its rate ``delta / dt`` plays
    the role of the speed (rad/s, so the scale is 1 rad), and the filter moves
    along the geodesic by ``alpha * delta``.  Working on offsets makes q / -q
    sign flips in the input irrelevant; the output's sign is then chosen so
    consecutive quaternions have a non-negative dot product (keyframe
    interpolation in Blender needs that).  NaN rows stay NaN and restart the
    filter.
    """
    from scipy.spatial.transform import Rotation

    quat_wxyz = np.asarray(quat_wxyz, dtype=np.float64)
    if quat_wxyz.ndim != 2 or quat_wxyz.shape[1] != 4:
        raise ValueError(f"quat_wxyz must be (T, 4), got {quat_wxyz.shape}")
    num_frames = quat_wxyz.shape[0]
    time_s = _check_time(time_s, num_frames)
    norms = np.linalg.norm(quat_wxyz, axis=1)
    valid = np.all(np.isfinite(quat_wxyz), axis=1)
    if np.any(valid & ~(norms > 1e-6)):
        raise ValueError("quat_wxyz rows must be NaN (missing) or non-zero, got a zero quaternion")

    out = np.full((num_frames, 4), np.nan)
    r_hat = None
    w_hat = np.zeros(3)
    prev_q = None
    for t in range(num_frames):
        if not valid[t]:
            r_hat, prev_q = None, None
            continue
        r_t = Rotation.from_quat(quat_wxyz[t], scalar_first=True)
        if r_hat is None:
            r_hat, w_hat = r_t, np.zeros(3)
        else:
            dt = time_s[t] - time_s[t - 1]
            delta = (r_hat.inv() * r_t).as_rotvec()
            w_hat = w_hat + _alpha(config.d_cutoff, dt) * (delta / dt - w_hat)
            a = _alpha(config.min_cutoff + config.beta * float(np.linalg.norm(w_hat)), dt)
            r_hat = r_hat * Rotation.from_rotvec(a * delta)
        q = r_hat.as_quat(scalar_first=True)
        if prev_q is not None and float(np.dot(q, prev_q)) < 0.0:
            q = -q
        out[t] = q
        prev_q = q
    return out
