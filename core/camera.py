"""Pinhole camera intrinsics in pixels (OpenCV convention)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

DEFAULT_HFOV_DEG = 60.0
"""Horizontal field of view assumed when the footage carries no intrinsics:
about a 31 mm full-frame-equivalent lens, typical of phones and webcams."""


@dataclass(frozen=True)
class Intrinsics:
    """fx, fy, cx, cy in pixels for an image of ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    source: str = "default"  # "default", "fov", "focal" or "user"

    def __post_init__(self) -> None:
        if not (0 < self.fx < math.inf and 0 < self.fy < math.inf):
            raise ValueError(f"focal lengths must be positive and finite, got fx={self.fx}, fy={self.fy}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float = DEFAULT_HFOV_DEG, source: str = "fov") -> "Intrinsics":
        if not 1.0 < hfov_deg < 179.0:
            raise ValueError(f"horizontal field of view must be between 1 and 179 degrees, got {hfov_deg}")
        f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(f, f, width / 2.0, height / 2.0, int(width), int(height), source)

    @classmethod
    def from_focal(cls, width: int, height: int, focal_px: float) -> "Intrinsics":
        return cls(float(focal_px), float(focal_px), width / 2.0, height / 2.0, int(width), int(height), "focal")

    def scaled(self, factor: int) -> "Intrinsics":
        """The same camera for its image resized by the whole ``factor`` (an enhanced frame, ``rigcast.enhance``).

        Pixel coordinates here put the image's corners at 0 and ``width`` (MediaPipe's, see ``models.roi``), so a
        point at x in the image is at ``factor * x`` in the resized one: fx, fy, cx, cy and the size all scale.
        """
        if not (isinstance(factor, int) and factor >= 1):
            raise ValueError(f"factor must be a whole number >= 1, got {factor!r}")
        return replace(self, fx=self.fx * factor, fy=self.fy * factor, cx=self.cx * factor, cy=self.cy * factor,
                       width=self.width * factor, height=self.height * factor)

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def hfov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(0.5 * self.width / self.fx))

    def to_dict(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width,
                "height": self.height, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "Intrinsics":
        return cls(float(d["fx"]), float(d["fy"]), float(d["cx"]), float(d["cy"]), int(d["width"]), int(d["height"]),
                   str(d.get("source", "user")))
