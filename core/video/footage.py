"""Footage: any video, image folder, glob or single image as a stream of upright RGB frames.

``open_footage`` picks a reader by what the path names and applies the
[start, end) range.  Seconds select the frames whose timestamps t satisfy
start <= t < end; frame numbers ("120f") select indices directly.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from ..errors import InputError
from ..frames import as_fps
from .info import Frame, VideoInfo
from .paths import images_in_folder, images_matching, is_image_file, looks_like_glob
from .timespec import TIME_EPS_S, TimeSpec, parse_time

DEFAULT_IMAGE_FPS = Fraction(30)


class Reader(Protocol):
    """What Footage needs from a video or image reader (see pyav_reader, image_reader)."""

    source: str
    kind: str
    width: int
    height: int
    fps: Fraction
    rotation: int
    codec: str
    has_audio: bool
    variable_fps: bool  # may turn True while reading
    total_frames: int  # -1 if unknown; exact once a read has reached the end
    duration_s: float | None

    def read(self, from_index: int = 0) -> Iterator[Frame]: ...


@dataclass(frozen=True)
class _Range:
    """[start, end) in frame indices, or in seconds where variable-rate timestamps decide."""

    start_frame: int = 0
    start_s: float | None = None
    end_frame: int | None = None
    end_s: float | None = None

    def before(self, frame: Frame) -> bool:
        return self.start_s is not None and frame.time_s < self.start_s - TIME_EPS_S

    def after(self, frame: Frame) -> bool:
        return ((self.end_frame is not None and frame.index >= self.end_frame)
                or (self.end_s is not None and frame.time_s >= self.end_s - TIME_EPS_S))


class Footage:
    """Frames of one clip within [start, end), decoded as they are iterated.

    Never holds more than the current frame.  Use as a context manager:
    ``close()`` ends every iteration still open.  ``info`` describes the
    range; its frame count becomes exact after a pass through the range.
    """

    def __init__(self, reader: Reader, start: TimeSpec | None = None, end: TimeSpec | None = None):
        self._reader = reader
        self._iterators: weakref.WeakSet = weakref.WeakSet()
        self._closed = False
        self._range, self.info = _resolve_range(reader, start, end)
        self._start_spec, self._end_spec = start, end

    def __enter__(self) -> "Footage":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self, from_index: int | None = None) -> Iterator[Frame]:
        """Frames of the range with ``index >= from_index`` (all of them when None), in order.

        A resume yields exactly the frames, indices and pixels a full pass
        yields from ``from_index`` on.
        """
        if self._closed:
            raise ValueError(f"footage {self.info.source} is closed")
        iterator = self._frames(from_index)
        self._iterators.add(iterator)
        return iterator

    def close(self) -> None:
        """End every open iteration, releasing its decoder and file."""
        self._closed = True
        for iterator in list(self._iterators):
            iterator.close()

    def _frames(self, from_index: int | None) -> Iterator[Frame]:
        r = self._range
        whole = from_index is None or from_index <= r.start_frame
        source = self._reader.read(r.start_frame if whole else from_index)
        first, count = None, 0
        try:
            for frame in source:
                if r.before(frame):
                    continue
                if r.after(frame):
                    break
                first = frame.index if first is None else first
                count += 1
                yield frame
        finally:
            source.close()
        if whole and count == 0:  # ranges decided while reading (variable rate, estimated length) get here
            raise InputError(f"expected at least one frame between start={self._start_spec or '0f'} and "
                             f"end={self._end_spec or 'the end'} of the clip ({_length(self._reader)}), found none")
        if whole:
            self.info = replace(self.info, start_frame=first, frame_count=count,
                                variable_fps=self._reader.variable_fps)
        elif self._reader.variable_fps != self.info.variable_fps:
            self.info = replace(self.info, variable_fps=self._reader.variable_fps)


def _length(reader: Reader) -> str:
    frames = f"{reader.total_frames} frames" if reader.total_frames >= 0 else "unknown frame count"
    return f"{frames}, {reader.duration_s:.3f} s" if reader.duration_s is not None else frames


def _resolve_range(reader: Reader, start: TimeSpec | None, end: TimeSpec | None) -> tuple[_Range, VideoInfo]:
    """The range to read, and VideoInfo for it.

    Constant-rate footage turns seconds into frame indices now (exact);
    variable-rate footage keeps seconds and compares them with each frame's
    true timestamp, so its start_frame and frame_count are estimates until
    a pass through the range.
    """
    fps, total = reader.fps, reader.total_frames
    by_time = reader.variable_fps

    def bound(spec: TimeSpec | None) -> tuple[int | None, float | None]:
        if spec is None:
            return None, None
        if spec.frame is None and by_time:
            return None, spec.seconds
        return spec.first_frame_at_or_after(fps), None

    start_frame, start_s = bound(start)
    end_frame, end_s = bound(end)
    first = start.first_frame_at_or_after(fps) if start is not None else 0
    stop = end.first_frame_at_or_after(fps) if end is not None else None
    if total >= 0:
        stop = total if stop is None else min(stop, total)

    def not_before(a: TimeSpec, b: TimeSpec) -> bool:
        if a.frame is not None and b.frame is not None:
            return a.frame >= b.frame
        if by_time:  # seconds meet true timestamps only while reading, unless both are seconds
            return a.seconds is not None and b.seconds is not None and a.seconds >= b.seconds
        return a.first_frame_at_or_after(fps) >= b.first_frame_at_or_after(fps)

    if end is not None and not_before(start or TimeSpec(frame=0), end):
        raise InputError(f"expected start before end with at least one frame between them, got start={start or '0f'}, "
                         f"end={end}")
    if start is not None:
        beyond = (start.seconds >= reader.duration_s - TIME_EPS_S if start_s is not None and reader.duration_s
                  else total >= 0 and first >= total)
        if beyond:
            raise InputError(f"expected start before the end of the clip ({_length(reader)}), got {start}")

    info = VideoInfo(width=reader.width, height=reader.height, fps=fps,
                     frame_count=-1 if stop is None else max(stop - first, 0), source=reader.source,
                     kind=reader.kind, rotation=reader.rotation, variable_fps=reader.variable_fps,
                     codec=reader.codec, start_frame=first, has_audio=reader.has_audio)
    return _Range(start_frame=start_frame or 0, start_s=start_s, end_frame=end_frame, end_s=end_s), info


def _as_spec(value: TimeSpec | str | None, name: str) -> TimeSpec | None:
    if value is None or isinstance(value, TimeSpec):
        return value
    if isinstance(value, str):
        return parse_time(value)
    raise InputError(f"{name} must be a TimeSpec or a time string like '12.5' or '120f', got {value!r}")


def _open_reader(path: str | Path, fps: Fraction | None) -> Reader:
    spec = str(path)
    p = Path(path)
    if p.is_dir():
        from .image_reader import ImageReader

        return ImageReader(images_in_folder(p), spec, "images", fps or DEFAULT_IMAGE_FPS)
    if p.is_file():
        if is_image_file(p):
            from .image_reader import ImageReader

            return ImageReader([p], spec, "image", fps or DEFAULT_IMAGE_FPS)
        from .pyav_reader import VideoReader

        return VideoReader(p, spec, fps_if_unknown=fps)
    if looks_like_glob(spec):
        from .image_reader import ImageReader

        return ImageReader(images_matching(spec), spec, "images", fps or DEFAULT_IMAGE_FPS)
    raise InputError(f"footage not found: {spec}")


def open_footage(path: str | Path, start: TimeSpec | str | None = None, end: TimeSpec | str | None = None,
                 fps: float | Fraction | None = None) -> Footage:
    """Open a video file, an image folder, a glob pattern ("shots/*.png") or a single image.

    ``start`` (inclusive) and ``end`` (exclusive) are TimeSpecs or strings
    for :func:`parse_time`.  ``fps`` is the rate of image sequences (default
    30); a video keeps its own rate and uses ``fps`` only if it declares none.
    Frames are (H, W, 3) uint8 RGB, upright.
    """
    try:
        rate = None if fps is None else as_fps(fps)
    except (ValueError, ZeroDivisionError) as e:
        raise InputError(f"expected a positive frame rate, got fps={fps!r}") from e
    start_spec, end_spec = _as_spec(start, "start"), _as_spec(end, "end")
    return Footage(_open_reader(path, rate), start_spec, end_spec)


def probe(path: str | Path, fps: float | Fraction | None = None) -> VideoInfo:
    """VideoInfo of a whole clip without decoding it through (frame count from the container, or estimated)."""
    with open_footage(path, fps=fps) as footage:
        return footage.info
