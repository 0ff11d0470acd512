"""Which files a footage path names: a video, one image, a folder of images or a glob pattern."""

from __future__ import annotations

import glob
import re
from pathlib import Path

from ..errors import InputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp",
                            ".ppm", ".pgm", ".pbm", ".pnm", ".jp2"})
"""Still-image files read with OpenCV; everything else goes to FFmpeg."""

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mpg",
                            ".mpeg", ".wmv", ".flv", ".3gp", ".mxf", ".ogv"})
"""Only used to word error messages: a damaged .mp4 is "truncated", a .txt is "not a video"."""

_GLOB_CHARS = re.compile(r"[*?\[]")


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers by value: frame2 < frame10."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text.lower()))


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def looks_like_glob(spec: str) -> bool:
    return bool(_GLOB_CHARS.search(spec))


def images_in_folder(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, naturally sorted; hidden files (``._frame1.png``) are skipped."""
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    images = sorted((p for p in files if is_image_file(p)), key=lambda p: natural_key(p.name))
    if not images:
        others = sorted(p.name for p in files)
        found = f"{len(others)} other files ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''})" \
            if others else "an empty folder"
        raise InputError(f"expected image files (.png, .jpg, .tif, ...) in {folder}, found {found}")
    return images


def images_matching(pattern: str) -> list[Path]:
    """Image files matching the glob ``pattern``, naturally sorted by path."""
    matches = [Path(p) for p in glob.glob(pattern) if Path(p).is_file()]
    if not matches:
        raise InputError(f"footage not found: no files match {pattern}")
    images = sorted((p for p in matches if is_image_file(p)), key=lambda p: natural_key(str(p)))
    if not images:
        raise InputError(f"expected image files matching {pattern}, found {len(matches)} files, none of them images "
                         f"(e.g. {matches[0].name})")
    return images


def first_bytes(path: Path, n: int = 16) -> str:
    """The start of a file, for error messages that say what was found instead of footage."""
    try:
        with open(path, "rb") as f:
            head = f.read(n)
    except OSError as e:
        return f"an unreadable file ({e.strerror})"
    return "an empty file" if not head else f"a file starting with {head!r}"
