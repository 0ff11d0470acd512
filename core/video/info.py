"""What a clip is (VideoInfo) and one decoded picture of it (Frame)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from fractions import Fraction

import numpy as np

from ..frames import as_fps

KINDS = ("video", "images", "image")
ROTATIONS = (0, 90, 180, 270)


@dataclass(frozen=True)
class VideoInfo:
    """Size, rate and extent of the selected part of a clip.

    ``width``/``height`` are the upright display size, after ``rotation``
    (degrees clockwise) has been applied.  ``fps`` is the nominal (average)
    rate; ``variable_fps`` footage has true per-frame timestamps in each
    Frame.  ``start_frame`` and ``frame_count`` describe the selected range in
    frames of the whole source; ``frame_count`` is -1 when unknown and may be
    an estimate until the footage has been read through once.
    """

    width: int
    height: int
    fps: Fraction
    frame_count: int
    source: str
    kind: str
    rotation: int = 0
    variable_fps: bool = False
    codec: str = ""
    start_frame: int = 0
    has_audio: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.fps, Fraction) or isinstance(self.fps, int)):
            raise ValueError(f"fps must be a Fraction, got {self.fps!r}")
        object.__setattr__(self, "fps", as_fps(self.fps))
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"size must be positive, got {self.width}x{self.height}")
        if self.frame_count < -1:
            raise ValueError(f"frame_count must be >= 0, or -1 for unknown, got {self.frame_count}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {ROTATIONS} degrees, got {self.rotation!r}")
        if self.start_frame < 0:
            raise ValueError(f"start_frame must be >= 0, got {self.start_frame}")

    @property
    def duration_s(self) -> float | None:
        """Nominal length of the selected range in seconds, None when the frame count is unknown."""
        return None if self.frame_count < 0 else float(self.frame_count / self.fps)

    def to_dict(self) -> dict:
        """JSON-safe dict; ``fps`` is an exact ``"num/den"`` string."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["fps"] = f"{self.fps.numerator}/{self.fps.denominator}"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "VideoInfo":
        """Inverse of :meth:`to_dict`."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"expected VideoInfo keys from {sorted(names)}, found unknown {unknown}")
        missing = [k for k in ("width", "height", "fps", "frame_count", "source", "kind") if k not in d]
        if missing:
            raise ValueError(f"VideoInfo dict lacks {missing}")
        kw = dict(d)
        kw["fps"] = Fraction(str(d["fps"]))
        for k in ("width", "height", "frame_count", "rotation", "start_frame"):
            if k in kw:
                kw[k] = int(kw[k])
        for k in ("variable_fps", "has_audio"):
            if k in kw:
                kw[k] = bool(kw[k])
        return cls(**kw)


@dataclass(frozen=True, eq=False)
class Frame:
    """One upright picture of the footage.

    ``index`` counts frames from the start of the source (not of the selected
    range); ``time_s`` is its true presentation time in seconds, measured
    from the source's first frame; ``rgb`` is (H, W, 3) uint8, C-contiguous.
    """

    index: int
    time_s: float
    rgb: np.ndarray

    def __post_init__(self) -> None:
        if self.index < 0:
            raise ValueError(f"index must be >= 0, got {self.index}")
        a = self.rgb
        if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            found = f"{a.shape} {a.dtype}" if isinstance(a, np.ndarray) else type(a).__name__
            raise ValueError(f"rgb must be (H, W, 3) uint8, got {found}")
        if not a.flags.c_contiguous:
            raise ValueError(f"rgb must be C-contiguous, got strides {a.strides} for shape {a.shape}")
