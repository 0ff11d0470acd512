"""Shot cuts: where edited footage jumps from one shot to another.

A person followed by their landmark ROI is read on whoever stands there after a cut, and would keep their
id; so the analysis measures how much each frame's content changed from the frame before
(:class:`ContentChange`, stored per frame) and, once the whole clip is known, splits every id at the cuts
(:func:`shot_starts`).

The measure is the one PySceneDetect's content detector uses: the mean absolute difference of hue,
saturation and value between consecutive frames, on a 0-255 scale, here on frames shrunk to
``SAMPLE_WIDTH`` columns.  A cut is a frame whose change is large (``MIN_CHANGE``) and stands out from the
frames around it (``ADAPTIVE_RATIO`` times their mean, as PySceneDetect's adaptive detector judges it), so
a fast pan or a walker filling the frame, whose every frame changes a lot, is not cut.  Shots last at
least ``MIN_SHOT_S``: a flash gives one cut, not two.
"""

from __future__ import annotations

import cv2
import numpy as np

SAMPLE_WIDTH = 128  # columns of the shrunk frame the change is measured on
MIN_CHANGE = 30.0  # mean |dH|, |dS|, |dV| (0-255) a cut must reach
ADAPTIVE_RATIO = 3.0  # ... and this many times the mean change of the WINDOW frames on each side
WINDOW = 2
MIN_SHOT_S = 0.5


class ContentChange:
    """Per frame, fed in order: the change of content from the frame before (0 for the first)."""

    def __init__(self):
        self._previous: np.ndarray | None = None

    def __call__(self, rgb: np.ndarray) -> float:
        hsv = _small_hsv(rgb)
        previous, self._previous = self._previous, hsv
        if previous is None or previous.shape != hsv.shape:
            return 0.0
        return float(np.abs(hsv - previous).mean())


def _small_hsv(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    size = (SAMPLE_WIDTH, max(1, round(h * SAMPLE_WIDTH / w))) if w > SAMPLE_WIDTH else (w, h)
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if size != (w, h) else rgb
    hsv = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2HSV_FULL)  # hue on 0-255, as S and V
    return hsv.astype(np.float32)


def shot_starts(frame_index: np.ndarray, time_s: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Frame indices (C,) where a new shot starts, from each frame's ``change`` (F,) (:class:`ContentChange`)
    at ``time_s`` (F,)."""
    change = np.asarray(change, dtype=np.float64)
    starts: list[int] = []
    last_s = -np.inf
    for i in np.flatnonzero(change >= MIN_CHANGE):
        around = np.r_[change[max(0, i - WINDOW):i], change[i + 1:i + 1 + WINDOW]]
        if around.size and change[i] < ADAPTIVE_RATIO * around.mean():
            continue
        if time_s[i] - last_s < MIN_SHOT_S:
            continue
        starts.append(int(frame_index[i]))
        last_s = time_s[i]
    return np.array(starts, dtype=np.int64)


def split_ids_at(starts: np.ndarray, frame: np.ndarray, ids: np.ndarray, first_new: int) -> tuple[np.ndarray, dict]:
    """Ids (N,) of rows seen on ``frame`` (N,), each split into one id per shot: a row's id is kept in the
    first shot it appears in and a new one from ``first_new`` up is given in each later shot.  Also returns
    the map ``(shot, old id) → new id``."""
    shot = np.searchsorted(starts, frame, side="right")
    mapping: dict[tuple[int, int], int] = {}
    first_shot: dict[int, int] = {}
    new = first_new
    for s, i in sorted(set(zip(shot.tolist(), ids.tolist()))):
        if first_shot.setdefault(i, s) == s:
            mapping[(s, i)] = i
        else:
            mapping[(s, i)] = new
            new += 1
    return np.array([mapping[(s, i)] for s, i in zip(shot.tolist(), ids.tolist())], dtype=ids.dtype), mapping
