"""Temporal smoothing: One Euro filtering of landmarks and rotations, gap filling."""

from .gaps import FILLED_CONF_FACTOR, fill_gaps
from .kalman import KALMAN_LANDMARKS, SMOOTHING_LEVELS, KalmanConfig, kalman_smooth
from .landmarks import landmark_height, smooth_track_arrays
from .one_euro import ONE_EURO_ROTATION, ONE_EURO_LANDMARKS, OneEuroConfig, OneEuroFilter, one_euro, smooth_rotations

__all__ = [
    "FILLED_CONF_FACTOR", "fill_gaps",
    "KALMAN_LANDMARKS", "SMOOTHING_LEVELS", "KalmanConfig", "kalman_smooth",
    "landmark_height", "smooth_track_arrays",
    "ONE_EURO_ROTATION", "ONE_EURO_LANDMARKS", "OneEuroConfig", "OneEuroFilter", "one_euro", "smooth_rotations",
]
