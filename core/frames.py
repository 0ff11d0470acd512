"""Time and axis conventions, each defined once.

* Frame rates are :class:`fractions.Fraction` (29.97 is 30000/1001).
* Frame index ``i`` of a constant-rate clip starts at ``i / fps`` seconds;
  variable-rate footage carries true per-frame timestamps instead.
* Camera space is OpenCV's: x right, y down, z forward, metres.
* Blender world space is Z-up, right-handed, metres; quaternions are w-first.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def as_fps(value: float | int | str | Fraction) -> Fraction:
    """Return ``value`` as an exact frame rate.

    Floats close to the NTSC family (23.976, 29.97, 59.94 ...) become their
    exact ``N*1000/1001`` fraction; other floats are limited to a denominator
    of 1001.
    """
    if isinstance(value, Fraction):
        fps = value
    elif isinstance(value, str):
        fps = Fraction(value)
    elif isinstance(value, int):
        fps = Fraction(value)
    else:
        value = float(value)
        ntsc = Fraction(round(value * 1.001)) * Fraction(1000, 1001)
        fps = ntsc if abs(float(ntsc) - value) < 1e-3 and abs(round(value) - value) > 1e-6 else Fraction(value).limit_denominator(1001)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {value!r}")
    return fps


def frame_to_seconds(frame_index: np.ndarray | int, fps: Fraction) -> np.ndarray:
    """Start time in seconds of frame ``frame_index`` (any shape) of a constant-rate clip."""
    return np.asarray(frame_index, dtype=np.float64) * (fps.denominator / fps.numerator)


def seconds_to_frame(seconds: np.ndarray | float, fps: Fraction) -> np.ndarray:
    """Index of the frame shown at ``seconds`` (floor), for a constant-rate clip."""
    return np.floor(np.asarray(seconds, dtype=np.float64) * float(fps) + 1e-6).astype(np.int64)


def blender_fps(fps: Fraction) -> tuple[int, float]:
    """Blender's (``scene.render.fps``, ``scene.render.fps_base``) for ``fps``."""
    base = round(fps)
    base = max(base, 1)
    return base, float(Fraction(base) / fps)


# OpenCV camera (x right, y down, z forward) to a Blender-style camera-aligned
# world where the camera looks along +Y with Z up: x stays, y_world = z_cam,
# z_world = -y_cam.  It is a proper rotation (det +1).
CV_TO_BLENDER = np.array([[1.0, 0.0, 0.0],
                          [0.0, 0.0, 1.0],
                          [0.0, -1.0, 0.0]])


def cv_to_blender(xyz: np.ndarray) -> np.ndarray:
    """Convert points (..., 3) from OpenCV camera axes to Blender Z-up world axes."""
    return np.asarray(xyz) @ CV_TO_BLENDER.T
