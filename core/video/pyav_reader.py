"""Video files decoded with PyAV (FFmpeg), one frame at a time.

Frame indices count decoded frames from the start of the file.  A resume
(``read(from_index)``) of a constant-rate stream seeks to a keyframe before
the target and derives indices from timestamps,
``index = round((pts - first_pts) * time_base * fps)``.  That is exact only
if every frame before the target sits on that grid, so the packets up to the
target are first read without decoding and checked, and decoded indices must
run on without gaps.  A variable-rate stream, or one whose timestamps leave
the grid, is decoded from the start and counted instead.

Some files carry timestamps that are not presentation times at all: the
decoder hands frames over in presentation order, but their timestamps step
back (DivX-era AVI with packed B-frames, such as OpenCV's ``Megamind.avi``:
1, 2, 3, 5, 4, 6, 8, 7, ...; the pictures themselves are in order).  Such a
stream is counted from the start and timed on the nominal grid,
``index / fps``, as FFmpeg's own player does.  The first frames are decoded
when the file is opened to notice it before any frame is handed out; a step
back found later switches the rest of the read over.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import InputError
from ..frames import frame_to_seconds
from .info import Frame
from .paths import VIDEO_SUFFIXES, first_bytes

log = logging.getLogger(__name__)

SCAN_PACKETS = 240
"""Packets whose timestamps are checked against the nominal frame grid when a file is opened."""

MAX_REORDER = 16
"""H.264/HEVC never hold more than 16 frames for reordering, so of the first N packets in
decode order, the N - 16 earliest in presentation order are complete."""

TAIL_PACKETS = 4000
"""Most packets read after seeking to the last keyframe to find the last timestamp."""

SEEK_BACKOFF_S = (0.0, 2.0, 10.0, 60.0)
"""How far before a resume target to seek, tried in turn until a keyframe at or before the target follows."""

PROBE_DECODED_FRAMES = 16
"""Frames decoded when a file is opened, to check that their timestamps rise (see the module docstring)."""

GRID_TOLERANCE = Fraction(1, 4)
"""A timestamp more than this many frame periods off ``first + i / fps`` makes a stream variable-rate."""


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def open_container(path: Path):
    """An input container for ``path``, or InputError saying what the file is instead."""
    try:
        return av.open(str(path), metadata_errors="replace")
    except av.FFmpegError as e:
        head = first_bytes(path)
        damaged = path.suffix.lower() in VIDEO_SUFFIXES or "ftyp" in head
        hint = "; the file looks truncated or corrupt" if damaged else ""
        raise InputError(f"expected a video or image file that ffmpeg can read, found {path}: {head} "
                         f"(ffmpeg: {_reason(e)}){hint}") from e


def video_stream(container, path: Path):
    """The first video stream that is a real video, not cover art."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    others = ", ".join(f"{len(s)} {k}" for k, s in (("audio", container.streams.audio),
                                                        ("subtitle", container.streams.subtitles)) if s)
    raise InputError(f"expected at least one video frame, found none: {path} has no video stream"
                     f"{f' ({others})' if others else ''}")


class VideoReader:
    """Frames of the first video stream of a file, upright and as RGB."""

    kind = "video"

    def __init__(self, path: Path, source: str, fps_if_unknown: Fraction | None = None):
        self.path = path
        self.source = source
        container = open_container(path)
        try:
            self._probe(container, fps_if_unknown)
        finally:
            container.close()

    # -- opening -----------------------------------------------------------

    def _probe(self, container, fps_if_unknown: Fraction | None) -> None:
        stream = video_stream(container, self.path)
        self.codec = stream.codec_context.name
        self.has_audio = bool(container.streams.audio)
        self._stream_index = stream.index
        self._tb = Fraction(stream.time_base) if stream.time_base else None

        first, packet_pts, complete, decoded_pts = self._first_frame(container, stream)
        self._first_pts = first.pts if self._tb is not None else None
        # Timestamps that step back in presentation order time nothing: frames are counted and timed by the rate.
        self.counted_time = _steps_back(decoded_pts)
        self.rotation = _rotation_cw(first, stream)
        self._rot90_k = (-self.rotation // 90) % 4  # np.rot90 turns counter-clockwise
        self._coded_size = (first.width, first.height)
        self.width, self.height = self._coded_size if self.rotation in (0, 180) else self._coded_size[::-1]

        self.fps = _nominal_rate(stream) or fps_if_unknown
        if self.fps is None:
            raise InputError(f"expected a frame rate in {self.path}, found none; give one with fps=")

        self.variable_fps = False
        self._grid_checked_until = -math.inf  # pts up to which every frame was checked against the grid
        if self._first_pts is not None and not self.counted_time:
            pts = sorted(p for p in set(packet_pts) if p >= self._first_pts)
            self.variable_fps = self._off_grid(pts if complete else pts[:max(len(pts) - MAX_REORDER, 0)])
        if self._first_pts is None:
            last_pts = None
        elif complete:
            last_pts = max(packet_pts, default=None)
        else:
            last_pts = self._last_pts(container, stream)

        declared = stream.frames or 0
        span = None if last_pts is None else self._grid_index(last_pts) + 1
        if declared > 0 and span is not None and span != declared:
            self.variable_fps = True  # frames missing from, or added to, the grid somewhere after the scan
        duration = stream.duration * self._tb if stream.duration and self._tb else (
            Fraction(container.duration, av.time_base) if container.duration else None)
        if declared > 0:
            self.total_frames = declared
        elif span is not None and not self.variable_fps:
            self.total_frames = span
        elif duration is not None:
            self.total_frames = round(duration * self.fps)
        else:
            self.total_frames = -1
        if last_pts is not None:
            self.duration_s = float((last_pts - self._first_pts) * self._tb + 1 / self.fps)
        else:
            self.duration_s = float(duration) if duration is not None else None

    def _first_frame(self, container, stream):
        """(first decoded frame, pts of the packets read, whether the whole stream was read,
        pts of the first PROBE_DECODED_FRAMES decoded frames in the order the decoder gave them)."""
        first, packet_pts, decoded_pts, n = None, [], [], 0
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    packet_pts.append(packet.pts)
                if len(decoded_pts) < PROBE_DECODED_FRAMES:
                    if first is None and packet.is_corrupt:
                        raise InputError(self._damaged(0, "a packet is cut short or damaged"))
                    frames = packet.decode()  # the final, empty packet flushes the decoder
                    if first is None and frames:
                        first = frames[0]
                    decoded_pts += [f.pts for f in frames if f.pts is not None]
                n += 1
                if first is not None and n >= SCAN_PACKETS and len(decoded_pts) >= PROBE_DECODED_FRAMES:
                    return first, packet_pts, False, decoded_pts
        except av.FFmpegError as e:
            if first is None:
                raise InputError(self._damaged(0, f"ffmpeg: {_reason(e)}")) from e
            # Damage further on is reported, with its frame index, when decoding reaches it.
            return first, packet_pts, False, decoded_pts
        if first is None:
            raise InputError(f"expected at least one video frame, found none in {self.path} "
                             f"(its {self.codec} stream has no decodable frames)")
        return first, packet_pts, True, decoded_pts

    def _last_pts(self, container, stream) -> int | None:
        """Largest packet timestamp of the stream, read after seeking to its last keyframe; None if unknown."""
        end = stream.duration if stream.duration else (
            math.ceil(Fraction(container.duration, av.time_base) / self._tb) if container.duration else None)
        if end is None:
            return None
        try:
            container.seek(self._first_pts + end, stream=stream, backward=True)
            last, n = None, 0
            for packet in container.demux(stream):
                if packet.pts is not None:
                    last = packet.pts if last is None else max(last, packet.pts)
                n += 1
                if n > TAIL_PACKETS:
                    return None  # the seek did not land near the end
            return last
        except av.FFmpegError:
            # An unseekable or damaged tail only costs the check; decoding reports damage with its frame index.
            return None

    def _grid_index(self, pts: int) -> int:
        return round((pts - self._first_pts) * self._tb * self.fps)

    def _off_grid(self, sorted_pts: list[int]) -> bool:
        return any(abs((p - self._first_pts) * self._tb * self.fps - i) > GRID_TOLERANCE
                   for i, p in enumerate(sorted_pts))

    # -- decoding ------------------------------------------------------------

    def read(self, from_index: int = 0) -> Iterator[Frame]:
        """Frames with index >= ``from_index``, to the end of the stream."""
        if from_index > 0 and not self.variable_fps and not self.counted_time and self._first_pts is not None:
            return self._read_seeking(from_index)
        return self._read_counting(max(from_index, 0))

    def _on_grid_until(self, pts: int) -> bool:
        """Whether every frame up to ``pts`` sits on the nominal grid, so that indices follow from timestamps.

        Reads packets from the start without decoding them (fast: no pixels).
        Stops once 2 * MAX_REORDER packets later than ``pts`` were seen: a frame
        decoded after those would have to be held longer than any decoder may.
        """
        if pts <= self._grid_checked_until:
            return not self.variable_fps
        seen = self._packet_pts_until(pts)
        if self._off_grid(sorted(set(seen))) or len(set(seen)) != len(seen):
            self.variable_fps = True
        self._grid_checked_until = pts
        return not self.variable_fps

    def _open_stream(self):
        container = open_container(self.path)
        stream = container.streams[self._stream_index]
        stream.codec_context.thread_type = "AUTO"
        return container, stream

    def _decoded(self, container, stream, next_index) -> Iterator:
        """Decoded av frames, in presentation order.

        Demuxing packet by packet (what ``container.decode`` does inside)
        shows the packets FFmpeg flagged as cut short or damaged: a frame-
        threaded decoder would drop them without an error.  Either becomes an
        InputError naming ``next_index()``, the first frame not delivered.
        """
        try:
            for packet in container.demux(stream):
                if packet.is_corrupt:
                    raise InputError(self._damaged(next_index(), "a packet is cut short or damaged"))
                yield from packet.decode()
        except av.FFmpegError as e:
            raise InputError(self._damaged(next_index(), f"ffmpeg: {_reason(e)}")) from e

    def _damaged(self, index: int, why: str) -> str:
        return (f"expected a complete video, found damaged data in {self.path} at frame {index} ({why}); "
                f"the file looks truncated or corrupt, frames before {index} are valid")

    def _read_counting(self, from_index: int) -> Iterator[Frame]:
        container, stream = self._open_stream()
        index, last_pts, last_time_s = 0, None, -math.inf
        try:
            for f in self._decoded(container, stream, lambda: index):
                if f.pts is not None and last_pts is not None and f.pts <= last_pts and not self.counted_time:
                    self.counted_time, self.variable_fps = True, False  # see the module docstring
                    log.warning("%s: frame timestamps step back at frame %d; frames from here on are timed "
                                "by the nominal rate, %s fps", self.path.name, index, self.fps)
                last_pts = f.pts if f.pts is not None else last_pts
                if f.pts is not None and self._first_pts is not None and not self.variable_fps \
                        and not self.counted_time and self._grid_index(f.pts) != index:
                    self.variable_fps = True  # counting stays right; resumes will count too from now on
                # Only just after a step back was found here can a time fail to rise: the frame before it was
                # timed by its own stamp, up to a period ahead.  A quarter period later keeps times rising.
                time_s = self._time_s(index, f)
                if self.counted_time and time_s <= last_time_s:
                    time_s = last_time_s + 0.25 / float(self.fps)
                last_time_s = time_s
                if index >= from_index:
                    yield self._frame(index, f, time_s)
                index += 1
            self.total_frames = index
        finally:
            container.close()

    def _packet_pts_until(self, pts: int) -> list[int]:
        container = open_container(self.path)
        seen, later = [], 0
        try:
            for packet in container.demux(container.streams[self._stream_index]):
                if packet.pts is None or packet.is_discard or packet.pts < self._first_pts:
                    continue
                if packet.pts <= pts:
                    seen.append(packet.pts)
                else:
                    later += 1
                    if later >= 2 * MAX_REORDER:
                        break
        except av.FFmpegError:
            # Damaged further on: judge the frames before it; decoding names the damaged frame.
            return seen
        finally:
            container.close()
        return seen

    def _read_seeking(self, from_index: int) -> Iterator[Frame]:
        target = self._first_pts + math.floor(Fraction(from_index) / self.fps / self._tb)
        if not self._on_grid_until(target):
            yield from self._read_counting(from_index)
            return
        for back_s in SEEK_BACKOFF_S:
            seek_pts = target - math.ceil(Fraction(back_s) / self._tb)
            if seek_pts <= self._first_pts:
                break
            outcome, from_index = yield from self._read_after_seek(seek_pts, from_index)
            if outcome == "done":
                return
            if outcome != "late":
                break
        yield from self._read_counting(from_index)

    def _read_after_seek(self, seek_pts: int, from_index: int):
        """Yield frames >= from_index after a seek; return (outcome, index to go on from).

        outcome is "done" (end of stream), "late" (no keyframe at or before the
        target after the seek point), or "count" (timestamps left the grid or the file cannot
        seek: go on by counting from the start).
        """
        container, stream = self._open_stream()
        try:
            try:
                container.seek(seek_pts, stream=stream, backward=True)
            except av.FFmpegError:
                return "count", from_index
            prev = None
            for f in self._decoded(container, stream, lambda: from_index if prev is None else prev + 1):
                if prev is None and not f.key_frame:
                    # Leading frames of an open GOP may reference frames before the seek point.
                    if f.pts is not None and self._grid_index(f.pts) > from_index:
                        return "late", from_index
                    continue
                if f.pts is None:
                    return "count", from_index if prev is None else max(from_index, prev + 1)
                index = self._grid_index(f.pts)
                if prev is None and index > from_index:
                    return "late", from_index
                if prev is not None and index != prev + 1:
                    self.variable_fps = True
                    return "count", max(from_index, prev + 1)
                prev = index
                if index >= from_index:
                    yield self._frame(index, f)
            if prev is None:
                return "late", from_index  # no keyframe between the seek point and the end
            self.total_frames = prev + 1
            return "done", from_index
        finally:
            container.close()

    def _time_s(self, index: int, f) -> float:
        if f.pts is not None and self._first_pts is not None and not self.counted_time:
            return float((f.pts - self._first_pts) * self._tb)
        return float(frame_to_seconds(index, self.fps))

    def _frame(self, index: int, f, time_s: float | None = None) -> Frame:
        if (f.width, f.height) == self._coded_size:
            rgb = f.to_ndarray(format="rgb24")
        else:  # the stream changed size mid-way: scale back to the first frame's, as ffmpeg does
            rgb = f.to_ndarray(format="rgb24", width=self._coded_size[0], height=self._coded_size[1])
        if self._rot90_k:
            rgb = np.rot90(rgb, self._rot90_k)
        time_s = self._time_s(index, f) if time_s is None else time_s
        return Frame(index=index, time_s=time_s, rgb=np.ascontiguousarray(rgb))


def _steps_back(pts: list[int]) -> bool:
    """Whether timestamps in the decoder's (presentation) order ever fail to rise."""
    return any(b <= a for a, b in zip(pts, pts[1:]))


def _nominal_rate(stream) -> Fraction | None:
    """The stream's average rate, or its exact grid rate (r_frame_rate) when the two agree within 0.5%."""
    avg = Fraction(stream.average_rate) if stream.average_rate else None
    base = Fraction(stream.base_rate) if stream.base_rate else None
    if avg and base and abs(base / avg - 1) < Fraction(1, 200):
        return base  # e.g. 30000/1001 where the container's duration makes the average 29.9700x
    return avg or base or (Fraction(stream.guessed_rate) if stream.guessed_rate else None)


def _rotation_cw(frame, stream) -> int:
    """Degrees clockwise (0/90/180/270) that turn decoded frames upright.

    FFmpeg's display matrix gives the counter-clockwise angle
    (``VideoFrame.rotation``, -90 for a phone held upright); older files may
    carry only the clockwise ``rotate`` tag.  Other angles snap to the
    nearest quarter turn.
    """
    ccw = frame.rotation or 0
    if ccw == 0:
        tag = stream.metadata.get("rotate", "0")
        try:
            return int(round(float(tag) / 90)) * 90 % 360
        except ValueError:  # not a number: FFmpeg ignores such a tag as well
            return 0
    return int(round(-ccw / 90)) * 90 % 360
