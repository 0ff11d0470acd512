"""Points in a clip given by the user: seconds or a frame number.

``parse_time`` reads the forms the CLI accepts: ``"12.5"`` (seconds),
``"1:02.5"`` or ``"00:01:02.5"`` (``[hh:]mm:ss``) and ``"120f"`` (frame 120).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from ..errors import InputError
from ..frames import frame_to_seconds, seconds_to_frame

# Times from the user and times from a stream meet within this tolerance, so
# that "--start 0.1" keeps a frame stamped 0.1 s however the float rounded.
TIME_EPS_S = 1e-6

_FORMS = "'12.5' (seconds), '1:02.5' ([hh:]mm:ss) or '120f' (frame number)"
_NUMBER = re.compile(r"^\d+(\.\d*)?$|^\.\d+$")


@dataclass(frozen=True)
class TimeSpec:
    """A point in a clip: ``seconds`` from its first frame, or a 0-based ``frame`` index (exactly one)."""

    seconds: float | None = None
    frame: int | None = None

    def __post_init__(self) -> None:
        if (self.seconds is None) == (self.frame is None):
            raise ValueError(f"TimeSpec needs exactly one of seconds or frame, got seconds={self.seconds!r}, "
                             f"frame={self.frame!r}")
        if self.frame is not None:
            if isinstance(self.frame, bool) or not isinstance(self.frame, int) or self.frame < 0:
                raise ValueError(f"frame must be an int >= 0, got {self.frame!r}")
        else:
            seconds = float(self.seconds)
            if not math.isfinite(seconds) or seconds < 0:
                raise ValueError(f"seconds must be finite and >= 0, got {self.seconds!r}")
            object.__setattr__(self, "seconds", seconds)

    def __str__(self) -> str:
        return f"{self.frame}f" if self.frame is not None else f"{self.seconds:g} s"

    def first_frame_at_or_after(self, fps: Fraction) -> int:
        """Index of the first frame of a constant-rate clip that starts at or after this point.

        A span of seconds [a, b) therefore selects exactly the frames whose
        timestamps t satisfy a <= t < b, the same rule variable-rate footage
        applies to its true timestamps.
        """
        if self.frame is not None:
            return self.frame
        k = int(seconds_to_frame(self.seconds, fps))
        if float(frame_to_seconds(k, fps)) < self.seconds - TIME_EPS_S:
            k += 1
        return k


def parse_time(spec: str) -> TimeSpec:
    """Parse ``"12.5"``, ``"1:02.5"``, ``"00:01:02.5"`` (seconds) or ``"120f"`` (frame) into a TimeSpec."""
    text = str(spec).strip().lower()
    if text.endswith("f") and text[:-1].isdigit():
        return TimeSpec(frame=int(text[:-1]))
    parts = text.split(":")
    if 1 <= len(parts) <= 3 and all(_NUMBER.match(p) for p in parts):
        # Only the last field may have a fraction, and fields after the first count up to 59.
        if all("." not in p for p in parts[:-1]) and all(float(p) < 60 for p in parts[1:]):
            seconds = 0.0
            for p in parts:
                seconds = seconds * 60 + float(p)
            return TimeSpec(seconds=seconds)
    raise InputError(f"expected a time like {_FORMS}, got {spec!r}")
