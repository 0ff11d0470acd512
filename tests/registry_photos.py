"""Real photos of several people, read from registry packages at test set-up (no model hubs).

* ultralytics 8.4.190's wheel: ``ultralytics/assets/bus.jpg`` (810 x 1080, four people, one cut by the
  edge) and ``zidane.jpg`` (1280 x 720, two men);
* insightface 2.1's sdist: ``insightface/data/images/t1.jpg`` (1280 x 886, six people round a table).

Only the images are used; the packages are never installed or imported (ultralytics is AGPL).  The
archives are fetched once with ``pip download`` into ``$RIGCAST_PHOTO_CACHE`` (default
``~/.cache/rigcast-photos``).  Without the network and without a cached copy, :func:`registry_photo`
raises: a missing reference fails the suite rather than skipping it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np

# name -> (pip requirement, archive file name, member inside the archive)
PHOTOS = {
    "bus": ("ultralytics==8.4.190", "ultralytics-8.4.190-py3-none-any.whl", "ultralytics/assets/bus.jpg"),
    "zidane": ("ultralytics==8.4.190", "ultralytics-8.4.190-py3-none-any.whl", "ultralytics/assets/zidane.jpg"),
    "t1": ("insightface==2.1", "insightface-2.1.tar.gz", "insightface-2.1/insightface/data/images/t1.jpg"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("RIGCAST_PHOTO_CACHE", Path.home() / ".cache" / "rigcast-photos"))


def _archive(requirement: str, filename: str) -> Path:
    folder = cache_dir()
    path = folder / filename
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        binary = ["--no-binary", ":all:"] if filename.endswith(".tar.gz") else ["--only-binary", ":all:"]
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary,
                               requirement, "-d", str(folder)], capture_output=True, text=True)
        if done.returncode != 0 or not path.is_file():
            raise RuntimeError(f"expected {filename} from `pip download {requirement}` in {folder}, "
                               f"found none: {done.stderr.strip()[-300:]}")
    return path


@lru_cache(maxsize=None)
def registry_photo(name: str) -> np.ndarray:
    """The photo ``name`` (a key of :data:`PHOTOS`) as RGB (H, W, 3) uint8, read-only."""
    import cv2

    requirement, filename, member = PHOTOS[name]
    archive = _archive(requirement, filename)
    if filename.endswith(".whl"):
        with zipfile.ZipFile(archive) as z:
            data = z.read(member)
    else:
        with tarfile.open(archive) as t:
            data = t.extractfile(member).read()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RuntimeError(f"{member} in {archive} is not a readable image")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    rgb.setflags(write=False)
    return rgb
