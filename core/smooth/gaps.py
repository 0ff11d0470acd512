"""Filling short gaps in per-joint landmark tracks.

Legend: T frames present in the track, F frames of the dense range
``frame_index[0] .. frame_index[-1]``, J joints, C components (2 or 3).
"""

from __future__ import annotations

import numpy as np

FILLED_CONF_FACTOR = 0.5
"""A filled sample's confidence is ``FILLED_CONF_FACTOR * min(conf before, conf after)``:
interpolated data is never trusted more than the worse of the samples it came from,
and halving it lets later stages (retargeting weights, exporters) tell it apart."""


def fill_gaps(values: np.ndarray, conf: np.ndarray, frame_index: np.ndarray,
              max_gap: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill short per-joint gaps by linear interpolation, on the dense frame range.

    ``values`` (T, J, C) and ``conf`` (T, J) are the samples at ``frame_index``
    (T,), strictly increasing integers that may skip frames (a track absent
    for a while).  A joint is missing at a frame when the frame is skipped,
    when any of its components is NaN, or when its conf is 0 (or NaN).

    Returns ``(dense_frame_index (F,), values (F, J, C), conf (F, J))`` with
    ``dense_frame_index = arange(frame_index[0], frame_index[-1] + 1)``.  Per
    joint, a run of at most ``max_gap`` missing frames with valid samples on
    both sides is filled by interpolation linear in the frame index, with conf
    ``FILLED_CONF_FACTOR * min(neighbours' conf)``.  Every other missing
    sample is NaN with conf 0, the Track convention.  Inputs are not changed.
    """
    values = np.asarray(values, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    frame_index = np.asarray(frame_index)
    if values.ndim != 3:
        raise ValueError(f"values must be (T, J, C), got {values.shape}")
    num_frames, num_joints, _ = values.shape
    if conf.shape != (num_frames, num_joints):
        raise ValueError(f"conf must be (T, J) = {(num_frames, num_joints)}, got {conf.shape}")
    if frame_index.shape != (num_frames,):
        raise ValueError(f"frame_index must be (T,) with T={num_frames}, got {frame_index.shape}")
    if num_frames and not np.issubdtype(frame_index.dtype, np.integer):
        if not np.all(np.isfinite(frame_index)) or np.any(frame_index != np.round(frame_index)):
            raise ValueError(f"frame_index must hold integers, got dtype {frame_index.dtype}")
    frame_index = frame_index.astype(np.int64)
    if num_frames > 1 and not np.all(np.diff(frame_index) > 0):
        raise ValueError("frame_index must be strictly increasing, got repeated or decreasing frames")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0 frames, got {max_gap}")
    if num_frames == 0:
        return frame_index.copy(), values.copy(), conf.copy()

    dense = np.arange(frame_index[0], frame_index[-1] + 1)
    num_dense = dense.size
    rows = frame_index - frame_index[0]
    out = np.full((num_dense,) + values.shape[1:], np.nan)
    out_conf = np.zeros((num_dense, num_joints))
    out[rows] = values
    out_conf[rows] = np.nan_to_num(conf, nan=0.0)
    valid = np.all(np.isfinite(out), axis=2) & (out_conf > 0)

    # Index of the nearest valid sample at or before / at or after each frame, per joint.
    t = np.arange(num_dense)[:, None]
    prev_i = np.maximum.accumulate(np.where(valid, t, -1), axis=0)
    next_i = np.minimum.accumulate(np.where(valid, t, num_dense)[::-1], axis=0)[::-1]
    gap_len = next_i - prev_i - 1
    fill = ~valid & (prev_i >= 0) & (next_i < num_dense) & (gap_len <= max_gap)

    ti, ji = np.nonzero(fill)
    p, n = prev_i[ti, ji], next_i[ti, ji]
    w = ((ti - p) / (n - p))[:, None]
    filled_values = (1.0 - w) * out[p, ji] + w * out[n, ji]
    filled_conf = FILLED_CONF_FACTOR * np.minimum(out_conf[p, ji], out_conf[n, ji])

    missing = ~valid
    out[missing] = np.nan
    out_conf[missing] = 0.0
    out[ti, ji] = filled_values
    out_conf[ti, ji] = filled_conf
    return dense, out, out_conf
