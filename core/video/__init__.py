"""Footage → frames: decode any video FFmpeg reads, image folders, globs and single images.

    with open_footage("clip.mp4", start="1:02.5", end="300f") as footage:
        footage.info                  # VideoInfo: upright size, exact fps, range, rotation, VFR
        for frame in footage:         # Frame: index, time_s, rgb (H, W, 3) uint8, upright
            ...
        footage.frames(from_index=k)  # resume: the same frames a full pass yields from k on

Importing this package is cheap: PyAV and OpenCV are imported by the reader
modules, on first use.
"""

from .footage import Footage, open_footage, probe
from .info import Frame, VideoInfo
from .prefetch import prefetched
from .timespec import TimeSpec, parse_time

__all__ = ["Footage", "Frame", "TimeSpec", "VideoInfo", "open_footage", "parse_time", "prefetched", "probe"]
