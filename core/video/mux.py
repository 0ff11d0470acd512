"""Writing video: the source's timing and its audio carried into a new file.

Shared by every command that re-encodes footage (``rigcast overlay``, ``rigcast enhance``):

* :func:`source_timing`: the time base and start time to keep each frame's own timestamp;
* :class:`AudioCopy`: the source's first audio stream, remuxed packet for packet, or re-encoded to AAC where
  the output container cannot hold its codec.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError
from .info import VideoInfo

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""progress(frames_done, frames_total); total is -1 when unknown."""

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
X264_CRF_RANGE = (0, 51)  # libx264's constant rate factor for 8-bit video: 0 lossless .. 51 worst
OUTPUT_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")


def check_output(source: Path, output: Path, crf: int, preset: str) -> None:
    """Raise InputError unless ``output`` is a video path other than ``source`` and crf/preset are x264's."""
    source, output = Path(source), Path(output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"expected an output video ending in {', '.join(OUTPUT_SUFFIXES)}, got {output}")
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise InputError(f"expected an output path other than the source, got {output} for both")
    if not X264_CRF_RANGE[0] <= crf <= X264_CRF_RANGE[1]:
        raise InputError(f"crf must be between {X264_CRF_RANGE[0]} and {X264_CRF_RANGE[1]}, got {crf}")
    if preset not in X264_PRESETS:
        raise InputError(f"preset must be one of {', '.join(X264_PRESETS)}, got {preset!r}")


def source_timing(source: Path, info: VideoInfo) -> tuple[Fraction, float]:
    """(time base of the output's video timestamps, start time in seconds of the source's video stream).

    A video keeps its own stream's time base, so every frame keeps its exact
    timestamp (variable-rate footage included); image sequences count frames.
    """
    if info.kind != "video":
        return Fraction(1) / info.fps, 0.0
    from .pyav_reader import open_container, video_stream

    container = open_container(source)
    try:
        stream = video_stream(container, source)
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(1) / info.fps
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        return tb, start
    finally:
        container.close()


def reencode(footage, transform: Callable[[np.ndarray, int], np.ndarray], container, fps: Fraction,
             timing: tuple[Fraction, float], source: Path, info: VideoInfo, progress: Progress | None, crf: int,
             preset: str, size: tuple[int, int] | None = None) -> None:
    """Encode ``transform(rgb, frame_index)`` of every frame of ``footage`` to H.264 in ``container``, with audio.

    ``transform`` maps a source frame (H, W, 3) uint8 to the frame to write, of
    ``size`` (width, height) when given, else the source's size.  Each frame
    keeps its own timestamp (``timing`` from :func:`source_timing`), at the
    nominal rate ``fps``; the source's audio is copied through (:class:`AudioCopy`).
    ``progress(done, total)`` is called after every frame.
    """
    import av

    time_base, start_s = timing
    stream = container.add_stream("libx264", rate=fps)
    width, height = size if size is not None else (info.width, info.height)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"  # 4:2:0 needs even sizes
    stream.codec_context.time_base = time_base
    stream.codec_context.thread_count = 0  # x264 picks its thread count
    stream.options = {"crf": str(int(crf)), "preset": preset}
    audio = AudioCopy(source, container, start_s) if info.has_audio else None
    total, done, last_pts = info.frame_count, 0, None
    try:
        for frame in footage:
            picture = av.VideoFrame.from_ndarray(transform(frame.rgb, frame.index), format="rgb24")
            pts = round(Fraction(frame.time_s) / time_base)
            pts = pts if last_pts is None or pts > last_pts else last_pts + 1
            picture.pts, picture.time_base, last_pts = pts, time_base, pts
            container.mux(stream.encode(picture))
            if audio is not None:
                audio.mux_until(frame.time_s + 1.0)
            done += 1
            if progress is not None:
                progress(done, total)
        container.mux(stream.encode(None))
        if audio is not None:
            audio.mux_until(None)
    finally:
        if audio is not None:
            audio.close()
    if progress is not None and total != done:
        progress(done, done)


MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
"""Audio codecs that players take in an MP4 file; others (PCM, say) are re-encoded to AAC for .mp4/.m4v."""


def _cannot_remux(source: Path, template, format_name: str) -> str | None:
    """Why the audio stream ``template`` cannot be copied into a ``format_name`` file, or None if it can.

    Beyond MP4's list, a trial mux of its first packet into memory decides:
    some refusals (an unordered channel layout) only surface when the file is finished.
    """
    import io

    import av

    codec = template.codec_context.name
    if format_name in ("mp4", "ipod") and codec not in MP4_AUDIO:
        return f"MP4 players do not take {codec} audio"
    try:
        with av.open(str(source), metadata_errors="replace") as src:
            stream = src.streams[template.index]
            packet = next((p for p in src.demux(stream) if p.size and p.dts is not None), None)
            with av.open(io.BytesIO(), "w", format=format_name) as trial:
                out = trial.add_stream_from_template(stream)
                if packet is not None:
                    packet.stream = out
                    trial.mux(packet)
    except (ValueError, av.FFmpegError) as e:
        return f"{format_name} cannot hold {codec} audio as it is ({e})"
    return None


_DEFAULT_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
"""FFmpeg's default channel layout per channel count (av_channel_layout_default)."""


class AudioCopy:
    """The source's first audio stream, shifted to the video's start, remuxed or else re-encoded to AAC."""

    def __init__(self, source: Path, container, video_start_s: float):
        import av

        self._input = av.open(str(source), metadata_errors="replace")
        self._in = self._input.streams.audio[0]
        self._container = container
        self._tb = Fraction(self._in.time_base)
        self._shift = round(Fraction(video_start_s) / self._tb)
        why = _cannot_remux(source, self._in, container.format.name)
        self._encode = why is not None
        if not self._encode:
            self._out = container.add_stream_from_template(self._in)
        else:
            log.info("re-encoding the audio to AAC: %s", why)
            self._out = container.add_stream("aac", rate=self._in.codec_context.sample_rate)
            # The standard layout for the channel count: an unordered "2 channels" (pcm in mkv) is refused by mp4.
            channels = len(self._in.codec_context.layout.channels)
            self._out.layout = _DEFAULT_LAYOUTS.get(channels, self._in.codec_context.layout.name)
            self._out.bit_rate = 192_000
        self._packets = self._input.demux(self._in)
        self._next = None
        self._done = False

    def mux_until(self, time_s: float | None) -> None:
        """Mux the source's audio up to ``time_s`` seconds of output time (all of it for None)."""
        while not self._done:
            if self._next is None:
                self._next = next((p for p in self._packets if p.size and p.dts is not None), None)
                if self._next is None:
                    self._finish()
                    return
            p = self._next
            when = (p.pts if p.pts is not None else p.dts) - self._shift
            if time_s is not None and float(when * self._tb) > time_s:
                return
            self._next = None
            self._mux(p)

    def _mux(self, packet) -> None:
        if self._encode:
            for frame in packet.decode():
                if frame.pts is not None:
                    frame.pts -= self._shift
                self._container.mux(self._out.encode(frame))
            return
        if packet.pts is not None:
            packet.pts -= self._shift
        packet.dts -= self._shift
        packet.stream = self._out
        self._container.mux(packet)

    def _finish(self) -> None:
        if self._encode:
            self._container.mux(self._out.encode(None))
        self._done = True

    def close(self) -> None:
        self._input.close()
