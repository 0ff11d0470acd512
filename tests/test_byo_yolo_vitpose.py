"""Bring-your-own YOLO person detector and ViTPose 2D keypoints: decoders with planted answers, through tiny
ONNX models of the published tensor names and shapes, loaded by path."""

from __future__ import annotations

import numpy as np
import pytest

from byo_models import constant_model, vitpose_conv_model, yolo_conv_model
from rigcast.errors import ModelError
from rigcast.models.person_detector import PersonBox
from rigcast.models.vitpose import (
    CropPlan, VitPoseEstimator, crop_image, crop_plan, decode_heatmaps, heatmap_to_crop)
from rigcast.models.yolo import YoloPersonDetector, decode_yolo, letterbox, letterbox_plan, yolo_layout
from rigcast.runners import make_runner
from rigcast.skeletons import COCO_17, VITPOSE_25

FRAME_WH = (1280, 720)
CLASSES = 80
N_CANDIDATES = 8400

# Planted people in frame px (xyxy), with their person score, and a duplicate of the first (IoU > 0.7) scoring
# lower, and a car (class 2) that must be ignored.
PEOPLE_XYXY = np.array([[100.0, 120.0, 300.0, 600.0], [700.0, 200.0, 820.0, 520.0]])
PEOPLE_SCORES = np.array([0.9, 0.6])
DUPLICATE_XYXY = np.array([104.0, 126.0, 304.0, 596.0])
CAR_XYXY = np.array([900.0, 300.0, 1200.0, 500.0])


def _yolo_rows(plan) -> tuple[np.ndarray, np.ndarray]:
    """Planted candidates as rows (K, 4 + C) of cx, cy, w, h in input px and class scores, and a v5 objectness
    column (K,): person scores split as objectness x class probability."""
    boxes = plan.to_input(np.vstack([PEOPLE_XYXY, DUPLICATE_XYXY, CAR_XYXY]))
    cxcywh = np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)
    classes = np.zeros((4, CLASSES))
    classes[[0, 1, 2], 0] = [*PEOPLE_SCORES, 0.5]
    classes[3, 2] = 0.95  # the car
    classes[3, 0] = 0.05
    return np.concatenate([cxcywh, classes], axis=1), np.ones(4)


def _yolo_output(layout: str, plan) -> np.ndarray:
    rows, objectness = _yolo_rows(plan)
    rng = np.random.default_rng(1)
    if layout == "end2end":  # max_det rows of x1, y1, x2, y2, score, class; the unused ones all zero
        out = np.zeros((1, 300, 6), dtype=np.float32)
        boxes = plan.to_input(np.vstack([PEOPLE_XYXY, DUPLICATE_XYXY, CAR_XYXY]))
        out[0, :4, :4] = boxes
        out[0, :4, 4] = [*PEOPLE_SCORES, 0.5, 0.95]
        out[0, :4, 5] = [0, 0, 0, 2]  # the car is class 2
        return out
    if layout == "yolov8":
        out = np.zeros((1, 4 + CLASSES, N_CANDIDATES), dtype=np.float32)
        out[0, :4] = rng.uniform(0, 640, (4, N_CANDIDATES))  # background: boxes anywhere, scores 0
        out[0, :, [17, 4000, 8399, 123]] = rows
        return out
    out = np.zeros((1, 25200, 5 + CLASSES), dtype=np.float32)
    out[0, :, :4] = rng.uniform(0, 640, (25200, 4))
    half = np.sqrt(rows[:, 4:5])  # objectness x probability = the planted person score
    planted = np.concatenate([rows[:, :4], np.ones((4, 1)), rows[:, 4:]], axis=1)
    planted[:3, 4], planted[:3, 5] = half[:3, 0], half[:3, 0]
    out[0, [5, 9000, 25199, 40]] = planted
    return out


@pytest.mark.parametrize("layout", ["yolov5", "yolov8", "end2end"])
def test_yolo_planted_boxes_through_onnx_by_path(tmp_path, layout):
    plan = letterbox_plan(FRAME_WH, (640, 640))
    path = constant_model(tmp_path / f"{layout}.onnx", "images", [1, 3, 640, 640], "output0",
                          _yolo_output(layout, plan))
    detector = YoloPersonDetector(make_runner(path, device="cpu"))
    classes = 0 if layout == "end2end" else CLASSES  # an end-to-end export names classes by id
    assert (detector.layout, detector.num_classes, detector.input_wh) == (layout, classes, (640, 640))
    people = detector(np.zeros((FRAME_WH[1], FRAME_WH[0], 3), dtype=np.uint8))
    assert all(isinstance(p, PersonBox) for p in people)
    assert len(people) == 2  # the duplicate merged into the first, the car ignored
    np.testing.assert_allclose([p.box_xyxy for p in people], PEOPLE_XYXY, atol=1e-3)
    np.testing.assert_allclose([p.score for p in people], PEOPLE_SCORES, atol=1e-6)
    np.testing.assert_allclose(people[0].alternatives, [DUPLICATE_XYXY], atol=1e-3)
    assert people[1].alternatives.shape == (0, 4)


def test_yolo_score_threshold_drops_a_weak_person():
    plan = letterbox_plan(FRAME_WH, (640, 640))
    out = _yolo_output("yolov8", plan)
    boxes, scores = decode_yolo(out, "yolov8", min_score=0.7)
    np.testing.assert_allclose(scores, [0.9], atol=1e-6)
    np.testing.assert_allclose(plan.to_frame(boxes), PEOPLE_XYXY[:1], atol=1e-3)


@pytest.mark.parametrize("frame_wh, input_wh, stride_aligned, scale_xy, pad_xy, boxed_wh", [
    ((1280, 720), (640, 640), False, (0.5, 0.5), (0, 140), (640, 640)),
    ((1000, 333), (640, 640), False, (0.64, 213 / 333), (0, 213), (640, 640)),  # odd padding: 213 top, 214 bottom
    ((720, 1280), (640, 640), False, (0.5, 0.5), (140, 0), (640, 640)),
    ((1280, 720), (640, 640), True, (0.5, 0.5), (0, 12), (640, 384)),  # ultralytics' rect: 360 → 384
])
def test_letterbox_plan_as_ultralytics(frame_wh, input_wh, stride_aligned, scale_xy, pad_xy, boxed_wh):
    plan = letterbox_plan(frame_wh, input_wh, stride_aligned=stride_aligned)
    np.testing.assert_allclose(plan.scale_xy, scale_xy)
    assert plan.pad_xy == pad_xy and plan.input_wh == boxed_wh


@pytest.mark.parametrize("frame_wh", [(1280, 720), (1000, 333), (480, 640)])
def test_letterbox_round_trip_and_image(frame_wh):
    plan = letterbox_plan(frame_wh, (640, 640))
    boxes = np.array([[10.5, 20.25, 200.0, 300.0], [0.0, 0.0, frame_wh[0], frame_wh[1]]])
    np.testing.assert_allclose(plan.to_frame(plan.to_input(boxes)), boxes, atol=1e-9)
    # The whole frame fills exactly the non-grey part of the letterboxed image.
    boxed = letterbox(np.full((frame_wh[1], frame_wh[0], 3), 7, dtype=np.uint8), plan)
    assert boxed.shape == (640, 640, 3)
    x0, y0, x1, y1 = np.round(plan.to_input(boxes[1:])[0]).astype(int)
    assert (boxed[y0:y1, x0:x1] == 7).all()
    assert (boxed == 7).sum() == (x1 - x0) * (y1 - y0) * 3
    assert (boxed[boxed != 7] == 114).all()
    # A white square in the frame lands where the plan says.
    rgb = np.zeros((frame_wh[1], frame_wh[0], 3), dtype=np.uint8)
    rgb[100:180, 60:140] = 255
    boxed = letterbox(rgb, plan)
    ys, xs = np.nonzero(boxed[..., 0] > 127)
    centre = plan.to_input(np.array([[60.0, 100.0, 140.0, 180.0]]))[0]
    np.testing.assert_allclose([xs.mean() + 0.5, ys.mean() + 0.5],
                               [(centre[0] + centre[2]) / 2, (centre[1] + centre[3]) / 2], atol=0.5)


@pytest.mark.parametrize("shape, expected", [
    ((1, 84, 8400), ("yolov8", 80)), ((1, 25200, 85), ("yolov5", 80)), ((1, 5, 8400), ("yolov8", 1)),
    ((1, 84, None), ("yolov8", 80)), ((None, None, 85), ("yolov5", 80)),
    ((1, 300, 6), ("end2end", 0)), ((1, 100, 6), ("end2end", 0)), ((1, 25200, 6), ("yolov5", 1)),
    ((1, 6300, 6), ("yolov5", 1)),  # a one-class YOLOv5 at 320 px: 63 x 10 x 10
    ((1, 17, 64, 48), ModelError), ((2, 84, 8400), ModelError), ((1, 4, 8400), ModelError),
    ((1, 8400, 5), ModelError), ((1, None, None), ModelError),
])
def test_yolo_layout_from_shape(shape, expected):
    if expected is ModelError:
        with pytest.raises(ModelError, match=r"expected a YOLO output .*found"):
            yolo_layout(shape)
    else:
        assert yolo_layout(shape) == expected


def test_yolo_refuses_a_vitpose_model_in_one_line(tmp_path):
    path = constant_model(tmp_path / "vitpose.onnx", "input_0", [1, 3, 256, 192], "output_0",
                          np.zeros((1, 17, 64, 48)))
    with pytest.raises(ModelError) as info:
        YoloPersonDetector(make_runner(path, device="cpu"))
    message = str(info.value)
    assert "\n" not in message
    assert "expected a YOLO input (1, 3, H, W)" not in message  # the input is fine: the output is what is wrong
    assert "(1, N, 5+C)" in message and "(1, 17, 64, 48)" in message


# -- ViTPose -------------------------------------------------------------------------------------------------


def _gaussian_map(centre_xy, hw=(64, 48), sigma=2.0, peak=0.9) -> np.ndarray:
    ys, xs = np.mgrid[0:hw[0], 0:hw[1]]
    return peak * np.exp(-((xs - centre_xy[0]) ** 2 + (ys - centre_xy[1]) ** 2) / (2 * sigma ** 2))


@pytest.mark.parametrize("centre_xy", [(20.3, 31.7), (10.0, 50.0), (24.75, 12.2), (40.45, 58.6)])
def test_decode_heatmaps_finds_a_subpixel_peak(centre_xy):
    maps = np.stack([_gaussian_map(centre_xy), _gaussian_map((5.5, 5.5), peak=0.3)])
    xy, scores = decode_heatmaps(maps)
    assert np.abs(xy[0] - centre_xy).max() < 0.1
    assert np.abs(xy[1] - (5.5, 5.5)).max() < 0.1
    # The score is the heatmap's maximum (the sampled peak, a little under the planted height off-grid).
    np.testing.assert_allclose(scores, maps.reshape(2, -1).max(axis=1))


def test_decode_heatmaps_without_a_positive_peak_is_missing():
    xy, scores = decode_heatmaps(np.stack([np.zeros((64, 48)), _gaussian_map((7.2, 9.9))]))
    assert np.isnan(xy[0]).all() and scores[0] == 0.0
    assert np.abs(xy[1] - (7.2, 9.9)).max() < 0.1


@pytest.mark.parametrize("box, frame_wh, plan", [
    # tall box: 10 px margin, then padded left/right to 3:4
    ((100.4, 50.0, 199.6, 450.2), (640, 480), CropPlan((90, 40, 210, 460), (97, 0), (315, 420))),
    # wide box: padded top/bottom
    ((100.0, 100.0, 400.0, 200.0), (640, 480), CropPlan((90, 90, 410, 210), (0, 153), (320, 426))),
    # clipped by the frame
    ((-30.0, 5.0, 50.0, 300.0), (640, 480), CropPlan((0, 0, 60, 310), (86, 0), (232, 310))),
])
def test_crop_plan_as_easy_vitpose(box, frame_wh, plan):
    assert crop_plan(np.array(box), frame_wh) == plan


def test_crop_image_normalises_as_imagenet():
    rgb = np.zeros((100, 100, 3), dtype=np.uint8)
    rgb[...] = (255, 128, 0)
    plan = crop_plan(np.array([20.0, 20.0, 80.0, 80.0]), (100, 100))  # 80x80 → padded 80x106
    image = crop_image(rgb, plan)
    assert image.shape == (3, 256, 192) and image.dtype == np.float32
    expected = (np.array([1.0, 128 / 255, 0.0]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(image[:, 128, 96], expected, atol=1e-5)
    black = (0.0 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(image[:, 0, 96], black, atol=1e-5)  # the padding above is black


def test_heatmap_to_crop_maps_the_corners_udp():
    # UDP: heatmap px 0 and w - 1 are the crop's first and last px (less the // 2 centre of an odd size).
    np.testing.assert_allclose(heatmap_to_crop(np.array([[0.0, 0.0], [47.0, 63.0]]), (48, 64), (192, 256)),
                               [[0.0, 0.0], [192.0, 256.0]])
    np.testing.assert_allclose(heatmap_to_crop(np.array([[0.0, 0.0]]), (48, 64), (315, 421)), [[-0.5, -0.5]])


@pytest.mark.parametrize("joints, skeleton", [(17, COCO_17), (25, VITPOSE_25)])
def test_vitpose_keypoints_in_frame_px_through_onnx_by_path(tmp_path, joints, skeleton):
    box = np.array([100.4, 50.0, 199.6, 450.2])
    plan = crop_plan(box, (640, 480))
    rng = np.random.default_rng(joints)
    # Keypoints planted in frame px inside the crop; their heatmap spots follow from inverting the mapping.
    frame_xy = np.column_stack([rng.uniform(95, 205, joints), rng.uniform(70, 430, joints)])
    size = np.asarray(plan.padded_wh, dtype=np.float64)
    crop_xy = frame_xy - (np.array(plan.box_xyxy[:2]) - plan.pad_xy)
    hm_xy = (crop_xy - np.asarray(plan.padded_wh) // 2 + 0.5 * size) / (size / np.array([47.0, 63.0]))
    maps = np.stack([_gaussian_map(c) for c in hm_xy])[None]
    path = constant_model(tmp_path / f"vitpose_{joints}.onnx", "input_0", [1, 3, 256, 192], "output_0", maps)
    estimator = VitPoseEstimator(make_runner(path, device="cpu"))
    assert estimator.skeleton is skeleton and estimator.input_hw == (256, 192)
    found = estimator(np.zeros((480, 640, 3), dtype=np.uint8), np.stack([box, [700.0, 0.0, 720.0, 10.0]]))
    assert found.xy.shape == (2, joints, 2) and found.skeleton is skeleton
    scale = size / np.array([47.0, 63.0])  # frame px per heatmap px: about 6.7
    assert (np.abs(found.xy[0] - frame_xy) < 0.1 * scale).all()
    np.testing.assert_allclose(found.scores[0], maps[0].reshape(joints, -1).max(axis=1), rtol=1e-6)
    assert np.isnan(found.xy[1]).all() and (found.scores[1] == 0).all()  # the box outside the frame


def test_vitpose_batches_a_dynamic_model(tmp_path):
    path = vitpose_conv_model(tmp_path / "vitpose_b.onnx", joints=25)
    estimator = VitPoseEstimator(make_runner(path, device="cpu"))
    assert estimator.batched and estimator.skeleton is VITPOSE_25
    rgb = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    boxes = np.array([[100.0, 50.0, 200.0, 450.0], [300.0, 100.0, 420.0, 400.0]])
    both = estimator(rgb, boxes)
    one = estimator(rgb, boxes[1:])
    np.testing.assert_allclose(both.xy[1], one.xy[0], atol=1e-6)
    assert np.isfinite(both.xy).all()


@pytest.mark.parametrize("output_shape", [(1, 84, 8400), (1, 17, 32, 24), (1, 133, 64, 48)])
def test_vitpose_refuses_a_wrong_family_in_one_line(tmp_path, output_shape):
    path = constant_model(tmp_path / "other.onnx", "images", [1, 3, 256, 192], "output0", np.zeros(output_shape))
    with pytest.raises(ModelError) as info:
        VitPoseEstimator(make_runner(path, device="cpu"))
    message = str(info.value)
    assert "\n" not in message
    assert "expected a ViTPose model with input (1, 3, 256, 192) and output (1, J, 64, 48)" in message
    assert f"('output0', {output_shape})" in message


def test_yolo_conv_models_have_the_published_shapes(tmp_path):
    for layout, shape in (("yolov8", (1, 84, 8400)), ("yolov5", (1, 25200, 85))):
        runner = make_runner(yolo_conv_model(tmp_path / f"{layout}.onnx", layout), device="cpu")
        assert runner.outputs[0].shape == shape
        assert YoloPersonDetector(runner).layout == layout


# -- wiring: --detector yolo:PATH ----------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("yolo:models/y8.onnx", ["yolo:models/y8.onnx"]), ("nanodet", ["nanodet"]), ("yolo", SystemExit),
    ("yolo:", SystemExit), ("vitpose:x.onnx", SystemExit),
])
def test_cli_takes_a_yolo_detector_by_path(value, expected, capsys):
    from rigcast.cli import build_parser

    for flag in ("--detector", "--person-detector"):
        argv = ["analyze", "clip.mp4", "-o", "clip.take.npz", flag, value]
        if expected is SystemExit:
            with pytest.raises(SystemExit):
                build_parser().parse_args(argv)
            assert "or yolo:PATH, got" in capsys.readouterr().err
        else:
            assert [build_parser().parse_args(argv).person_detector] == expected


def test_analyze_config_checks_the_yolo_file(tmp_path):
    from rigcast.errors import InputError
    from rigcast.pipeline.analyze import AnalyzeConfig

    with pytest.raises(InputError, match="person detector model file not found: .*missing.onnx"):
        AnalyzeConfig(person_detector=f"yolo:{tmp_path / 'missing.onnx'}")
    path = tmp_path / "y.onnx"
    path.write_bytes(b"")
    assert AnalyzeConfig(person_detector=f"yolo:{path}", max_people=1).detector_name() == f"yolo:{path}"


def test_analyze_runs_the_users_yolo_on_a_photo(tmp_path):
    """A planted YOLOv8 box around the astronaut of skimage's photo → the body pipeline follows her from it."""
    import cv2
    from fixtures_images import astronaut
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    person_xyxy = np.array([50.0, 20.0, 430.0, 512.0])  # tests/test_persons.py: PEOPLE_BY_EYE["astronaut"]
    plan = letterbox_plan((512, 512), (640, 640))
    out = np.zeros((1, 4 + CLASSES, N_CANDIDATES), dtype=np.float32)
    box = plan.to_input(person_xyxy[None])[0]
    out[0, :4, 100] = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]]
    out[0, 4, 100] = 0.88
    model = constant_model(tmp_path / "yolov8n.onnx", "images", [1, 3, 640, 640], "output0", out)
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), np.ascontiguousarray(astronaut()[..., ::-1]))
    take = analyze(photo, tmp_path / "a.npz", AnalyzeConfig(person_detector=f"yolo:{model}", faces=False,
                                                           device="cpu"))
    assert take.meta["models"]["detector"] == f"yolo:{model}"
    assert len(take.tracks) == 1
    track = take.tracks[0]
    upper = [track.skeleton.joint_names.index(n) for n in ("nose", "left_shoulder", "right_shoulder")]
    xy = track.xy[0, upper]  # the legs of this upper-body photo lie below the frame, as BlazePose guesses them
    assert np.isfinite(xy).all()
    assert ((xy >= person_xyxy[:2]) & (xy <= person_xyxy[2:])).all()
