"""Still images as footage, read with OpenCV: one frame per file at a fixed rate."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..frames import frame_to_seconds
from .info import Frame
from .paths import first_bytes


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB pixels of an image file, EXIF orientation applied."""
    try:
        data = np.fromfile(path, dtype=np.uint8)  # imdecode, unlike imread, takes non-ASCII paths on Windows
    except OSError as e:
        raise InputError(f"expected a readable image, found {path} ({e.strerror})") from e
    # IMREAD_COLOR applies the EXIF orientation, drops alpha and makes grey or 16-bit images 8-bit BGR.
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise InputError(f"expected an image that OpenCV can read, found {path}: {first_bytes(path)}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageReader:
    """Frames of one image or an ordered list of images; frame i is ``files[i]`` at ``i / fps`` seconds."""

    def __init__(self, files: list[Path], source: str, kind: str, fps: Fraction):
        self.files = list(files)
        self.source = source
        self.kind = kind
        self.fps = fps
        first = read_rgb(self.files[0])
        self.height, self.width = first.shape[:2]
        self.rotation = 0
        self.variable_fps = False
        self.codec = {".jpg": "jpeg", ".jpe": "jpeg", ".tif": "tiff"}.get(self.files[0].suffix.lower(),
                                                                          self.files[0].suffix.lower().lstrip("."))
        self.has_audio = False
        self.total_frames = len(self.files)
        self.duration_s = float(len(self.files) / fps)

    def read(self, from_index: int = 0) -> Iterator[Frame]:
        """Frames with index >= ``from_index``, to the last file."""
        for i in range(max(from_index, 0), len(self.files)):
            rgb = read_rgb(self.files[i])
            if rgb.shape[:2] != (self.height, self.width):
                raise InputError(f"expected every image to be {self.width}x{self.height} like {self.files[0].name}, "
                                 f"found {rgb.shape[1]}x{rgb.shape[0]} in {self.files[i]}")
            yield Frame(index=i, time_s=float(frame_to_seconds(i, self.fps)), rgb=rgb)
