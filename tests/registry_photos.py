"""Real photos of people from registry packages, fetched with pip at test setup (no hubs).

* ultralytics 8.4.190's wheel: ``ultralytics/assets/bus.jpg`` (810 x 1080, people at a bus stop) and
  ``zidane.jpg``.  Only the images are used; the package itself (AGPL) is never installed or imported.

The wheel is downloaded once into ``$RIGCAST_TEST_DATA`` (default ``~/.cache/rigcast-test-data``).
A download failure raises: a missing reference fails the suite, it never skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

ULTRALYTICS = ("ultralytics", "8.4.190")


def data_dir() -> Path:
    folder = Path(os.environ.get("RIGCAST_TEST_DATA", Path.home() / ".cache" / "rigcast-test-data"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wheel(name: str, version: str) -> Path:
    folder = data_dir()
    found = sorted(folder.glob(f"{name}-{version}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q",
                        f"{name}=={version}", "-d", str(folder)], check=True)
        found = sorted(folder.glob(f"{name}-{version}-*.whl"))
    if not found:
        raise FileNotFoundError(f"expected a {name}=={version} wheel in {folder} after pip download, found none")
    return found[0]


@lru_cache(maxsize=4)
def ultralytics_image(name: str = "bus.jpg") -> np.ndarray:
    """``ultralytics/assets/<name>`` from the ultralytics wheel, RGB (H, W, 3) uint8."""
    import cv2

    with zipfile.ZipFile(_wheel(*ULTRALYTICS)) as wheel:
        data = wheel.read(f"ultralytics/assets/{name}")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"ultralytics/assets/{name} did not decode as an image")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    rgb.setflags(write=False)
    return rgb


def bus_man() -> np.ndarray:
    """The man in the cream coat on ``bus.jpg``, standing, head to shoes: a (560, 250, 3) crop."""
    return np.ascontiguousarray(ultralytics_image("bus.jpg")[370:930, 20:270])
