"""Gap filling then One Euro smoothing of one track's landmark arrays.

Legend: T frames present in the track, F frames of its dense range
``frame_index[0] .. frame_index[-1]``, V frames of the clip, J joints.
"""

from __future__ import annotations

import numpy as np

from .gaps import fill_gaps
from .kalman import KalmanConfig, kalman_smooth
from .one_euro import ONE_EURO_LANDMARKS, OneEuroConfig, one_euro


def landmark_height(points: np.ndarray, conf: np.ndarray) -> float:
    """Median over frames of the vertical (index 1) extent of the valid ``points`` (T, J, C), in their units.

    The person's height in pixels for image landmarks, in metres for world
    landmarks (both have y down): the One Euro speed scale, so one config
    fits both.  A single number per track, because a per-frame extent would
    itself jitter.  Returns 1.0 when no frame has two valid joints.
    """
    points = np.asarray(points, dtype=np.float64)
    valid = (np.asarray(conf) > 0) & np.all(np.isfinite(points), axis=2)
    enough = np.sum(valid, axis=1) >= 2
    if not np.any(enough):
        return 1.0
    y = np.where(valid, points[..., 1], np.nan)[enough]
    extent = float(np.median(np.nanmax(y, axis=1) - np.nanmin(y, axis=1)))
    return extent if extent > 0 else 1.0


def smooth_track_arrays(frame_index: np.ndarray, time_s: np.ndarray, xy: np.ndarray, xyz: np.ndarray | None,
                        conf: np.ndarray, clip_frame_index: np.ndarray, clip_time_s: np.ndarray,
                        config: OneEuroConfig | KalmanConfig | None = ONE_EURO_LANDMARKS, max_gap: int = 5
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fill gaps of up to ``max_gap`` frames, then One Euro filter ``xy`` and ``xyz`` of one track.

    The track: ``frame_index`` (T,) strictly increasing, possibly skipping
    frames, at ``time_s`` (T,) seconds; ``xy`` (T, J, 2) pixels; ``xyz``
    (T, J, 3) metres; ``conf`` (T, J).  The clip: ``clip_frame_index`` (V,)
    and ``clip_time_s`` (V,), every analysed frame and its time (variable
    rates are fine), which times the frames the track skipped.

    Returns ``(frame_index (F,), time_s (F,), xy (F, J, 2), xyz (F, J, 3),
    conf (F, J))`` on the dense range.  xy and xyz are gap-filled together
    (see :func:`fill_gaps`), so a joint is missing in both or in neither
    (a 2D-only track passes ``xyz`` None and gets None back);
    missing joints are NaN with conf 0.  Both are filtered with ``config``
    (``None``: fill only), each with the person's height in its own units
    (:func:`landmark_height`) as speed scale.  Inputs are not changed.
    """
    xy = np.asarray(xy, dtype=np.float64)
    flat = xyz is None
    xyz = np.zeros(xy.shape[:2] + (0,)) if flat else np.asarray(xyz, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[2] != 2:
        raise ValueError(f"xy must be (T, J, 2), got {xy.shape}")
    if not flat and xyz.shape != xy.shape[:2] + (3,):
        raise ValueError(f"xyz must be (T, J, 3) = {xy.shape[:2] + (3,)}, got {xyz.shape}")
    clip_frame_index = np.asarray(clip_frame_index)
    clip_time_s = np.asarray(clip_time_s, dtype=np.float64)
    if clip_frame_index.ndim != 1 or clip_time_s.shape != clip_frame_index.shape:
        raise ValueError(f"clip_frame_index and clip_time_s must both be (V,), got {clip_frame_index.shape} "
                         f"and {clip_time_s.shape}")

    dense, both, dense_conf = fill_gaps(np.concatenate([xy, xyz], axis=2), conf, frame_index, max_gap)
    rows = np.clip(np.searchsorted(clip_frame_index, dense), 0, max(clip_frame_index.size - 1, 0))
    if dense.size and (clip_frame_index.size == 0 or np.any(clip_frame_index[rows] != dense)):
        span = f"{clip_frame_index[0]}..{clip_frame_index[-1]}" if clip_frame_index.size else "none"
        raise ValueError(f"clip_frame_index must hold every frame from {int(dense[0])} to {int(dense[-1])}, "
                         f"got {clip_frame_index.size} frames spanning {span}")
    dense_time_s = clip_time_s[rows] if dense.size else np.zeros(0)
    given_time_s = np.asarray(time_s, dtype=np.float64)
    track_rows = np.asarray(frame_index, dtype=np.int64) - (int(dense[0]) if dense.size else 0)
    if given_time_s.shape != track_rows.shape or not np.allclose(dense_time_s[track_rows], given_time_s):
        raise ValueError("time_s must be (T,) and agree with clip_time_s at frame_index, got a different "
                         f"shape {given_time_s.shape} or different times")

    dense_xy, dense_xyz = both[..., :2], (None if flat else both[..., 2:])
    if isinstance(config, KalmanConfig) and dense.size:
        dense_xy = kalman_smooth(dense_xy, dense_time_s, config, landmark_height(dense_xy, dense_conf), group=2)
        if not flat:
            dense_xyz = kalman_smooth(dense_xyz, dense_time_s, config, landmark_height(dense_xyz, dense_conf), group=3)
    elif config is not None and dense.size:
        dense_xy = one_euro(dense_xy, dense_time_s, config, scale=landmark_height(dense_xy, dense_conf))
        if not flat:
            dense_xyz = one_euro(dense_xyz, dense_time_s, config, scale=landmark_height(dense_xyz, dense_conf))
    return dense, dense_time_s, dense_xy, dense_xyz, dense_conf


"""The name core/pipeline/analyze.py calls."""
