"""End to end: real footage → `rigcast analyze` → Take, exports, resume and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from footage import requires_models
from required import require
from rigcast.errors import InputError, ModelError
from rigcast.formats.take import Take
from rigcast.pipeline.analyze import AnalyzeConfig, analyze

pytestmark = requires_models


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "rigcast", *map(str, args)], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def carphone_take(carphone_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("analyze") / "carphone.take.npz"
    proc = run_cli("analyze", carphone_path, "-o", out, "--end", "40f")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_analyze_carphone(carphone_take):
    path, proc = carphone_take
    take = Take.load(path)
    assert len(take.frame_indices) == 40
    assert take.video.width == 176 and take.video.height == 144
    assert take.meta["provider"] == "CPUExecutionProvider"
    assert len(take.tracks) >= 1
    main = max(take.tracks, key=lambda t: t.num_frames)
    assert main.num_frames >= 35, "the man in the car is in every frame"
    shoulders = main.xyz[:, [11, 12]]
    width = np.linalg.norm(shoulders[:, 0] - shoulders[:, 1], axis=-1)
    assert 0.2 < np.nanmedian(width) < 0.6, "shoulder width should be metric"
    # A man on the phone in a car, shot head and shoulders from about arm's length (0.60 m measured, with the
    # default 60 degree field of view), sitting still: the hip midpoint lies 0.45 .. 0.85 m away, steady, and
    # below the bottom edge of the frame, near its middle.
    root = main.root_xyz
    assert np.isfinite(root).all()
    assert 0.45 < np.median(root[:, 2]) < 0.85 and np.ptp(root[:, 2]) < 0.1, np.round(root[:, 2], 3)
    k = take.intrinsics
    root_px = np.stack([k.fx * root[:, 0] / root[:, 2] + k.cx, k.fy * root[:, 1] / root[:, 2] + k.cy], axis=1)
    assert np.all(root_px[:, 1] > 144) and np.all(np.abs(root_px[:, 0] - 88) < 50), np.round(root_px)
    assert not (path.parent / (path.name + ".parts")).exists(), "the chunk cache is removed when done"
    assert "wrote" in proc.stdout


@pytest.mark.reference
def test_carphone_nose_is_where_mediapipe_puts_it(carphone_take):
    """The nose where MediaPipe's own pose graph (video mode, its own smoothing) puts it, frame by frame: the
    two filters differ by about 2 px (median, 3.7 px at most) on this 176 x 144 clip, a face about 60 px tall."""
    take = Take.load(carphone_take[0])
    main = max(take.tracks, key=lambda t: t.num_frames)
    nose_error = np.linalg.norm(main.xy[:, 0] - _mediapipe_video_nose(main.frame_index), axis=-1)
    assert np.median(nose_error) < 4 and np.max(nose_error) < 8, np.round(nose_error, 1)


def _mediapipe_video_nose(frame_index: np.ndarray) -> np.ndarray:
    """(T, 2) nose pixels of ``mediapipe.solutions.pose`` in video mode on the carphone frames ``frame_index``."""
    from test_face_models import carphone_frames

    mp = require("mediapipe")
    frames = carphone_frames()
    out = np.full((len(frame_index), 2), np.nan)
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1) as pose:
        for t in range(int(frame_index.max()) + 1):
            result = pose.process(frames[t])
            if t in frame_index and result.pose_landmarks is not None:
                nose = result.pose_landmarks.landmark[0]
                out[np.searchsorted(frame_index, t)] = nose.x * 176, nose.y * 144
    return out


def test_info_and_exports(carphone_take, tmp_path):
    path, _ = carphone_take
    take = Take.load(path)
    info = run_cli("info", path)
    assert info.returncode == 0 and "176x144" in info.stdout and f"#{take.tracks[0].track_id}" in info.stdout

    assert run_cli("export", path, "--format", "json", "-o", tmp_path / "k.json").returncode == 0
    data = json.loads((tmp_path / "k.json").read_text())
    assert len(data["keypoints"]) == 40
    assert data["skeleton"]["0"] == "nose" and len(data["skeleton"]) == 33
    tid = str(take.tracks[0].track_id)
    frame = int(take.tracks[0].frame_index[0])
    y, x, score = data["keypoints"][frame][tid][0]
    assert (x, y) == pytest.approx(tuple(take.tracks[0].xy[0, 0]), abs=0.01), "easy_ViTPose stores [y, x, score]"
    assert len(data["xyz"][frame][tid]) == 33 and data["fps"] == str(take.video.fps)

    assert run_cli("export", path, "-o", tmp_path / "v.npz").returncode == 0
    z = np.load(tmp_path / "v.npz", allow_pickle=True)  # VideoPose3D's layout is pickled dicts by design
    positions, meta = z["positions_2d"].item(), z["metadata"].item()
    assert meta["layout_name"] == "coco" and meta["num_joints"] == 17
    key = f"carphone_pristine_track{tid}"
    kps = positions[key]["custom"][0]
    assert kps.shape[1:] == (17, 2) and np.isfinite(kps).all()
    np.testing.assert_allclose(kps[0, 5], take.tracks[0].xy[0, 11], atol=1e-3)  # COCO left_shoulder


def test_faces_are_tracked_linked_and_exported(carphone_take, tmp_path):
    path, _ = carphone_take
    take = Take.load(path)
    assert len(take.faces) == 1, "the man's face is in every frame"
    face = take.faces[0]
    body = max(take.tracks, key=lambda t: t.num_frames)
    assert face.body_id == body.track_id
    assert face.num_frames >= 35 and face.xy.shape[1:] == (478, 2)
    assert take.face_topology.triangles.shape == (898, 3)
    # The face mesh sits on the body's head: the body's nose lies inside the face landmarks' bound.
    common, fi, bi = np.intersect1d(face.frame_index, body.frame_index, return_indices=True)
    lo, hi = face.xy[fi].min(axis=1), face.xy[fi].max(axis=1)
    nose = body.xy[bi, 0]
    assert np.mean(np.all((nose > lo) & (nose < hi), axis=1)) > 0.9
    # Head pose: the face is in front of the camera, about as far as the body's root.
    assert 0.2 < np.nanmedian(face.translation[:, 2]) < 1.5
    np.testing.assert_allclose(np.linalg.det(face.rotation[np.isfinite(face.rotation[:, 0, 0])]), 1.0, atol=1e-4)

    info = run_cli("info", path)
    assert f"face {face.face_id}" in info.stdout and "yaw/pitch/roll" in info.stdout
    assert run_cli("export", path, "-o", tmp_path / "k.json").returncode == 0
    data = json.loads((tmp_path / "k.json").read_text())
    entry = data["faces"][int(face.frame_index[0])][str(face.face_id)]
    assert len(entry["landmarks"]) == 478 and len(entry["yaw_pitch_roll_deg"]) == 3
    assert entry["body_id"] == body.track_id
    assert data["keypoints"][0], "the easy_ViTPose layout is unchanged by the faces section"


@pytest.mark.parametrize("flags, bodies, faces", [(("--no-faces",), True, False), (("--no-bodies",), False, True)])
def test_bodies_and_faces_can_be_switched_off(carphone_path, tmp_path, flags, bodies, faces):
    out = tmp_path / "t.npz"
    proc = run_cli("analyze", carphone_path, "-o", out, "--end", "5f", *flags)
    assert proc.returncode == 0, proc.stderr
    take = Take.load(out)
    assert bool(take.tracks) == bodies and bool(take.faces) == faces


def test_overlay_cli(carphone_take, carphone_path, tmp_path):
    import av

    path, _ = carphone_take
    out = tmp_path / "o.mp4"
    proc = run_cli("overlay", carphone_path, path, "-o", out, "--draw", "mask,skeleton")
    assert proc.returncode == 0, proc.stderr
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 120  # the whole clip, frames outside the take copied
    bad = run_cli("overlay", carphone_path, path, "-o", tmp_path / "p.mp4", "--draw", "mask,hat")
    assert bad.returncode == 2 and "hat" in bad.stderr


def test_no_person_gives_an_empty_take(bikes_path, tmp_path):
    take = analyze(bikes_path, tmp_path / "bikes.npz", AnalyzeConfig(end="10f"))
    assert take.tracks == () and len(take.frame_indices) == 10
    assert Take.load(tmp_path / "bikes.npz").tracks == ()


def test_resume_after_interruption_recomputes_nothing(carphone_path, tmp_path):
    config = AnalyzeConfig(end="24f", chunk_frames=8)
    reference = analyze(carphone_path, tmp_path / "ref.npz", config)

    class Stop(Exception):
        pass

    def stop_after_13(done, total):
        if done == 13:
            raise Stop

    out = tmp_path / "resumed.npz"
    with pytest.raises(Stop):
        analyze(carphone_path, out, config, progress=stop_after_13)
    parts = out.parent / (out.name + ".parts")
    assert sorted(p.name for p in parts.glob("chunk_*.npz")) == ["chunk_000000.npz"]
    assert not out.exists()

    seen = []
    resumed = analyze(carphone_path, out, config, progress=lambda d, t: seen.append(d))
    assert seen[0] == 8, "the cached chunk is not recomputed"
    assert len(seen) == 1 + 16
    assert [t.track_id for t in resumed.tracks] == [t.track_id for t in reference.tracks]
    for a, b in zip(reference.tracks, resumed.tracks):
        np.testing.assert_array_equal(a.frame_index, b.frame_index)
        np.testing.assert_allclose(a.xy, b.xy, atol=1e-4)
        np.testing.assert_allclose(a.xyz, b.xyz, atol=1e-5)
    # Faces too: the resumed frames follow the ROIs the cached ones handed on (two frames in flight
    # read the last two), so they come out as in the uninterrupted run.
    assert [f.face_id for f in resumed.faces] == [f.face_id for f in reference.faces] and reference.faces
    for a, b in zip(reference.faces, resumed.faces):
        np.testing.assert_array_equal(a.frame_index, b.frame_index)
        np.testing.assert_allclose(a.xy, b.xy, atol=1e-4)
        np.testing.assert_allclose(a.rotation, b.rotation, atol=1e-9)


def test_libraries_run_single_threaded_while_analysing():
    """OpenCV's and the BLAS's own thread pools are held to one thread during analysis (they only contend
    with onnxruntime and rigcast's workers), and given back afterwards."""
    import cv2
    from threadpoolctl import threadpool_info

    from rigcast.pipeline.analyze import single_threaded_libraries

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before_cv, before_blas = cv2.getNumThreads(), blas_threads()
    assert before_blas, "numpy's BLAS is found"
    with single_threaded_libraries():
        assert cv2.getNumThreads() == 1 and blas_threads() == [1] * len(before_blas)
    assert cv2.getNumThreads() == before_cv and blas_threads() == before_blas


@pytest.mark.parametrize("ahead", [1, 2, 3])
def test_frames_are_submitted_ahead_and_handed_out_in_order(ahead):
    """submit_ahead hands each item out once ``ahead`` more have been submitted (fewer at the end), in order."""
    from rigcast.pipeline.analyze import submit_ahead

    submitted = []
    handed = [(item, result, len(submitted))
              for item, result in submit_ahead(range(6), lambda i: submitted.append(i) or 10 * i, ahead)]
    assert [(item, result) for item, result, _ in handed] == [(i, 10 * i) for i in range(6)]
    assert [count for _, _, count in handed] == [min(i + 1 + ahead, 6) for i in range(6)]
    with pytest.raises(ValueError, match="ahead must be at least 1"):
        list(submit_ahead(range(3), lambda i: i, 0))


def test_face_poses_solved_during_analysis_are_the_assembled_ones(carphone_path, tmp_path):
    """analyze() filters face landmarks and solves head poses on a worker while later frames are analysed
    (FacePoseStream); the Take holds exactly what assembling the cached frames afterwards gives."""
    from rigcast.pipeline.analyze import _concat, assemble_faces

    config = AnalyzeConfig(end="24f", bodies=False, chunk_frames=8)
    out = tmp_path / "faces.npz"
    take = analyze(carphone_path, out, config, keep_cache=True)
    chunks = []
    for path in sorted((out.parent / (out.name + ".parts")).glob("chunk_*.npz")):
        with np.load(path) as z:
            chunks.append({k: z[k] for k in z.files})
    faces, _ = assemble_faces(_concat(chunks), take.intrinsics, config, set())
    assert len(faces) == len(take.faces) == 1 and len(take.faces[0].frame_index) == 24
    np.testing.assert_array_equal(take.faces[0].frame_index, faces[0].frame_index)
    # Solved 16 frames at a time on the worker against all 24 at once: the same numbers to rounding.
    for name, atol in (("xy", 1e-4), ("xyz", 1e-6), ("rotation", 1e-6), ("translation", 1e-6), ("conf", 1e-6),
                       ("scale", 1e-6)):
        np.testing.assert_allclose(getattr(take.faces[0], name), getattr(faces[0], name), rtol=0, atol=atol,
                                   err_msg=name)


def test_resume_after_sigkill(carphone_path, tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "killed.npz"
    chunk = tmp_path / "killed.npz.parts" / "chunk_000001.npz"
    args = [sys.executable, "-m", "rigcast", "analyze", str(carphone_path), "-o", str(out), "--end", "60f",
            "--chunk-frames", "10"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not chunk.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the clip finished before it could be killed"
    cached = sorted(p.name for p in chunk.parent.glob("chunk_*.npz"))
    assert len(cached) >= 2, cached  # a chunk killed mid-write stays a hidden temporary file, never a chunk

    seen = []
    take = analyze(carphone_path, out, AnalyzeConfig(end="60f", chunk_frames=10), progress=lambda d, t: seen.append(d))
    assert seen[0] == 10 * len(cached)
    assert len(take.frame_indices) == 60 and take.tracks
    assert np.array_equal(take.frame_indices, np.arange(60))


def test_cache_of_another_job_is_not_clobbered(carphone_path, tmp_path):
    out = tmp_path / "t.npz"
    parts = out.parent / (out.name + ".parts")
    parts.mkdir()
    (parts / "job.json").write_text(json.dumps({"cache_version": 1, "source": {"path": "elsewhere"}}))
    with pytest.raises(InputError, match="--restart"):
        analyze(carphone_path, out, AnalyzeConfig(end="3f"))
    assert (parts / "job.json").exists()
    analyze(carphone_path, out, AnalyzeConfig(end="3f"), restart=True)
    assert out.exists()


@pytest.mark.parametrize("make_input, message", [
    (lambda d: d / "missing.mp4", "not found"),
    (lambda d: (d / "notes.txt").write_text("not a video") and d / "notes.txt", "expected a video"),
])
def test_cli_bad_footage(tmp_path, make_input, message):
    proc = run_cli("analyze", make_input(tmp_path), "-o", tmp_path / "t.npz")
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "t.npz").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--max-people", "0", "max_people must be at least 1, got 0"),
    ("--max-people", "-3", "max_people must be at least 1, got -3"),
    ("--max-faces", "0", "max_faces must be at least 1, got 0"),
    ("--redetect-every", "0", "redetect_every must be at least 1, got 0"),
    ("--chunk-frames", "0", "chunk_frames must be at least 1, got 0"),
    ("--max-gap", "-1", "max_gap must be >= 0 frames, got -1"),
    ("--fps", "0", "image_fps must be a positive frame rate, got 0.0"),
    ("--fps", "nan", "image_fps must be a positive frame rate, got nan"),
    ("--fov", "0", "between 1 and 179 degrees, got 0.0"),
    ("--fov", "180", "between 1 and 179 degrees, got 180.0"),
    ("--focal", "-5", "focal lengths must be positive and finite, got fx=-5.0"),
    ("--focal", "inf", "focal lengths must be positive and finite, got fx=inf"),
    ("--min-cutoff", "0", "min_cutoff must be a positive number of Hz, got 0.0"),
    ("--min-cutoff", "nan", "min_cutoff must be a positive number of Hz, got nan"),
    ("--beta", "-1", "beta must be >= 0, got -1.0"),
    ("--start", "-1", "expected a time like"),
    ("--end", "0", "expected start before end"),
])
def test_cli_analyze_refuses_numbers_out_of_range(carphone_path, tmp_path, option, value, message):
    """Through the real command: one line on stderr saying what was expected and what was found, status 2,
    and nothing written."""
    proc = run_cli("analyze", carphone_path, "-o", tmp_path / "t.npz", f"{option}={value}")
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "t.npz").exists() and not (tmp_path / "t.npz.parts").exists()


@pytest.mark.parametrize("command, message", [
    (("overlay", "{clip}", "{take}", "-o", "{tmp}/o.mp4", "--crf", "52"), "crf must be between 0 and 51, got 52"),
    (("overlay", "{clip}", "{take}", "-o", "{tmp}/o.mp4", "--crf", "-1"), "crf must be between 0 and 51, got -1"),
    (("overlay", "{clip}", "{take}", "-o", "{tmp}/o.mp4", "--preset", "bogus"), "preset must be one of ultrafast"),
    (("retarget", "{take}", "-o", "{tmp}/o.bvh", "--track", "-1"), "the take has no track -1"),
    (("retarget", "{take}", "-o", "{tmp}/o.bvh", "--track", "99"), "the take has no track 99"),
])
def test_cli_other_commands_refuse_numbers_out_of_range(carphone_path, carphone_take, tmp_path, command, message):
    path, _ = carphone_take
    args = [a.format(clip=carphone_path, take=path, tmp=tmp_path) for a in command]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rigcast: error: ") and message in lines[0], proc.stderr
    assert not list(tmp_path.glob("o.*"))


def test_cli_truncated_video(carphone_path, tmp_path):
    data = carphone_path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 20])
    proc = run_cli("analyze", cut, "-o", tmp_path / "t.npz")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


def test_cli_refuses_a_future_take(tmp_path, carphone_take):
    path, _ = carphone_take
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["header.json"]).decode())
    header["schema_version"] = 99
    arrays["header.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(tmp_path / "future.npz", **arrays)
    proc = run_cli("info", tmp_path / "future.npz")
    assert proc.returncode == 2 and "schema version 99 is newer" in proc.stderr


@pytest.fixture
def assets_copy(tmp_path, monkeypatch):
    from rigcast.model_store import _manifest, assets_dir

    copy = tmp_path / "assets"
    shutil.copytree(assets_dir() / "models", copy / "models",
                    ignore=shutil.ignore_patterns("pose_landmark_heavy.onnx", "face_*", "iris_*"))
    monkeypatch.setenv("RIGCAST_ASSETS", str(copy))
    _manifest.cache_clear()
    yield copy / "models"
    _manifest.cache_clear()


def test_model_with_wrong_checksum_is_refused(assets_copy, carphone_path, tmp_path):
    from rigcast.model_store import load_model

    model = assets_copy / "pose_detection.onnx"
    data = bytearray(model.read_bytes())
    data[-10] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model("pose_detection")
    # --max-people 1: the path that loads pose_detection (more people load NanoDet instead).
    proc = run_cli("analyze", carphone_path, "-o", tmp_path / "t.npz", "--end", "2f", "--max-people", "1")
    assert proc.returncode == 2 and "sha256" in proc.stderr


def test_model_with_wrong_shapes_is_refused(assets_copy):
    from rigcast.model_store import _manifest, load_model

    manifest_path = assets_copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # Serve the landmark model under the detector's name: checksum matches the manifest entry we write.
    entry = manifest["models"]["pose_detection"]
    full = manifest["models"]["pose_landmark_full"]
    entry.update(file=full["file"], sha256=full["sha256"])
    manifest_path.write_text(json.dumps(manifest))
    _manifest.cache_clear()
    with pytest.raises(ModelError, match="must be"):
        load_model("pose_detection")


@pytest.mark.parametrize("kwargs, message", [
    (dict(model="huge"), "model must be lite, full or heavy"),
    (dict(face_landmarks="dense"), "face_landmarks must be one of attention"),
    (dict(face_frames_in_flight=3), r"face_frames_in_flight must be one of \(1, 2\), got 3"),
    (dict(chunk_frames=0), "chunk_frames must be at least 1"),
])
def test_analyze_config_is_validated(kwargs, message):
    with pytest.raises(InputError, match=message):
        AnalyzeConfig(**kwargs)
