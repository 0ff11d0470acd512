"""Identity tracking on synthetic box trajectories, with appearance from real image crops."""

from __future__ import annotations

import numpy as np
import pytest

from rigcast.track import BoxTracker, appearance_descriptor, box_iou

FPS = 30.0
CANVAS = (480, 960)  # rows, columns


def _boxes(cx: np.ndarray, cy: np.ndarray, width: float, height: float) -> np.ndarray:
    """(T, 4) xyxy boxes around centres ``cx``, ``cy`` (T,)."""
    return np.stack([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2], axis=1)


def _times(num_frames: int, vfr: bool, seed: int) -> np.ndarray:
    steps = np.full(num_frames, 1.0 / FPS)
    if vfr:
        steps *= np.random.default_rng(seed).uniform(0.6, 1.4, num_frames)
    return np.concatenate([[0.0], np.cumsum(steps[:-1])])


def _walk(time_s: np.ndarray, x0: float, velocity: np.ndarray) -> np.ndarray:
    """Positions (T,) from ``x0`` integrating per-frame velocities ``velocity`` (T,) px/s over ``time_s``."""
    return x0 + np.concatenate([[0.0], np.cumsum(velocity[:-1] * np.diff(time_s))])


def _people(time_s, xa, xb, seed):
    """Person A (100x240) and person B (104x230) at x positions ``xa``, ``xb`` (T,), with 1 px detection noise."""
    rng = np.random.default_rng(seed)
    n = time_s.size
    return {"A": _boxes(xa + rng.normal(0, 1, n), 250 + rng.normal(0, 1, n), 100.0, 240.0),
            "B": _boxes(xb + rng.normal(0, 1, n), 262 + rng.normal(0, 1, n), 104.0, 230.0)}


def _textures() -> dict[str, np.ndarray]:
    """Distinct real-image patches: the astronaut's suit and flag, and the cat's fur (shrunk once, near box size)."""
    import cv2

    from skimage import data as skimage_data
    crops = {"A": skimage_data.astronaut()[150:512, 120:400], "B": skimage_data.chelsea()[20:300, 80:330]}
    return {name: cv2.resize(crop, (128, 256), interpolation=cv2.INTER_AREA) for name, crop in crops.items()}


def _render(boxes: dict[str, np.ndarray], textures: dict[str, np.ndarray], front: str) -> np.ndarray:
    """(H, W, 3) uint8 grey frame with each present person's texture resized into its box; ``front`` drawn last."""
    import cv2

    frame = np.full(CANVAS + (3,), 120, dtype=np.uint8)
    for name in sorted(boxes, key=lambda n: n == front):
        box = boxes[name]
        if box is None:
            continue
        x1, y1, x2, y2 = np.round(box).astype(int)
        patch = cv2.resize(textures[name], (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)
        c0, r0, c1, r1 = max(x1, 0), max(y1, 0), min(x2, CANVAS[1]), min(y2, CANVAS[0])
        if c1 > c0 and r1 > r0:
            frame[r0:r1, c0:c1] = patch[r0 - y1:r1 - y1, c0 - x1:c1 - x1]
    return frame


def _run(tracker, time_s, paths, textures=None, front="B", seed=0):
    """Feed each frame's present boxes, shuffled, to ``tracker``; return {name: (T,) ids, -1 where absent}."""
    rng = np.random.default_rng(seed)
    ids = {name: np.full(time_s.size, -1) for name in paths}
    for i, t in enumerate(time_s):
        present = [name for name in paths if np.isfinite(paths[name][i]).all()]
        rng.shuffle(present)  # detection order must not carry identity
        boxes = np.array([paths[name][i] for name in present]).reshape(-1, 4)
        appearance = None
        if textures is not None:
            frame = _render({name: paths[name][i] if name in present else None for name in paths}, textures, front)
            appearance = np.array([appearance_descriptor(frame, box) for box in boxes]).reshape(len(present), -1)
        frame_ids = tracker.update(t, boxes, np.full(len(present), 0.9), appearance)
        assert frame_ids.dtype == np.int64 and (frame_ids >= 0).all()
        for name, track_id in zip(present, frame_ids):
            ids[name][i] = track_id
    return ids


def _kept_identity(ids: np.ndarray) -> bool:
    seen = ids[ids >= 0]
    return bool(seen.size) and bool(np.all(seen == seen[0]))


@pytest.mark.parametrize("vfr", [False, True])
def test_crossing_keeps_ids_by_motion(vfr):
    time_s = _times(80, vfr, seed=1)
    paths = _people(time_s, _walk(time_s, 150.0, np.full(80, 280.0)), _walk(time_s, 800.0, np.full(80, -260.0)), seed=2)
    overlap = box_iou(paths["A"], paths["B"]).diagonal()
    assert np.sum(overlap > 0.3) >= 5  # they really overlap for several frames
    ids = _run(BoxTracker(), time_s, paths)
    assert _kept_identity(ids["A"]) and _kept_identity(ids["B"]) and ids["A"][0] != ids["B"][0]


@pytest.mark.parametrize("vfr", [False, True])
def test_crossing_with_speed_change_keeps_ids_with_appearance(vfr):
    # While overlapping, A stops dead and B doubles its speed.
    time_s = _times(70, vfr, seed=3)
    xa = _walk(time_s, 300.0, np.where(time_s < 0.7, 300.0, 0.0))
    xb = _walk(time_s, 700.0, np.where(time_s < 0.7, -300.0, -600.0))
    paths = _people(time_s, xa, xb, seed=4)
    assert np.sum(box_iou(paths["A"], paths["B"]).diagonal() > 0.3) >= 4
    for front in ("A", "B"):
        ids = _run(BoxTracker(), time_s, paths, _textures(), front=front)
        assert _kept_identity(ids["A"]) and _kept_identity(ids["B"]) and ids["A"][0] != ids["B"][0]


def test_bounce_inside_a_crossing_needs_appearance():
    # They pass each other's centre while overlapping, then both turn back: to a
    # constant-velocity model this looks exactly like a clean crossing, so motion
    # alone swaps the ids for good; appearance must undo it.
    time_s = _times(70, False, seed=0)
    xa = _walk(time_s, 300.0, np.where(time_s < 0.7, 300.0, -300.0))
    xb = _walk(time_s, 700.0, np.where(time_s < 0.7, -300.0, 300.0))
    paths = _people(time_s, xa, xb, seed=5)
    overlap = box_iou(paths["A"], paths["B"]).diagonal()
    assert xa[-1] < xb[-1]  # A ends up back on the left

    motion_only = _run(BoxTracker(), time_s, paths)
    assert motion_only["A"][-1] == motion_only["B"][0]  # control: without appearance the ids swap

    for front in ("A", "B"):
        ids = _run(BoxTracker(), time_s, paths, _textures(), front=front)
        wrong = ids["A"] != ids["A"][0]
        assert ids["A"][0] != ids["B"][0] and np.array_equal(ids["B"] == ids["A"][0], wrong)
        assert not wrong[overlap < 0.3].any()  # only heavily overlapped frames may be ambiguous
        assert wrong.sum() <= 3


def test_short_disappearance_keeps_id_and_long_one_gets_a_new_id():
    time_s = _times(150, False, seed=0)
    moving = _boxes(_walk(time_s, 100.0, np.full(150, 300.0)), np.full(150, 240.0), 90.0, 220.0)
    standing = _boxes(np.full(150, 820.0), np.full(150, 250.0), 95.0, 230.0)
    moving[30:45] = np.nan      # hidden for 15 frames = 0.5 s, reappears 150 px further on its path
    moving[80:126] = np.nan     # hidden for 46 frames > 1.5 s: longer than max_lost_s
    newcomer = np.full_like(moving, np.nan)
    newcomer[45:60] = moving[29]  # someone steps in where the moving person vanished
    tracker = BoxTracker(max_lost_s=1.0)
    paths = {"moving": moving, "standing": standing, "newcomer": newcomer}
    ids = {name: np.full(150, -1) for name in paths}
    for i, t in enumerate(time_s):
        present = [name for name in paths if np.isfinite(paths[name][i]).all()]
        frame_ids = tracker.update(t, np.array([paths[name][i] for name in present]), np.full(len(present), 0.9))
        for name, track_id in zip(present, frame_ids):
            ids[name][i] = track_id
        if i == 40:
            assert tracker.lost_ids() == [ids["moving"][0]]
            assert sorted(tracker.predict(t, include_lost=True)) == sorted([ids["moving"][0], ids["standing"][0]])
            assert list(tracker.predict(t)) == [ids["standing"][0]]
    assert _kept_identity(ids["standing"])
    # Re-acquired under its id: the damped extrapolation puts it nearer its true spot than the newcomer's.
    assert np.all(ids["moving"][:80][ids["moving"][:80] >= 0] == ids["moving"][0])
    assert _kept_identity(ids["newcomer"]) and ids["newcomer"][45] not in (ids["moving"][0], ids["standing"][0])
    after = ids["moving"][126:]
    assert _kept_identity(after) and after[0] > ids["newcomer"][45]
    assert tracker.lost_ids() == [] and sorted(tracker.live_ids()) == sorted([ids["standing"][0], after[0]])


def test_lost_track_is_not_given_to_a_different_looking_person():
    textures = _textures()
    time_s = _times(40, False, seed=0)
    path = _boxes(_walk(time_s, 200.0, np.full(40, 120.0)), np.full(40, 250.0), 100.0, 240.0)
    tracker = BoxTracker()
    first_ids, later_ids = [], []
    for i, t in enumerate(time_s):
        if 15 <= i < 25:
            tracker.update(t, np.zeros((0, 4)), np.zeros(0), np.zeros((0, 64)))
            continue
        who = "A" if i < 15 else "B"  # someone else steps in where A was heading
        frame = _render({who: path[i]}, textures, front=who)
        track_id = tracker.update(t, path[i:i + 1], np.array([0.9]), appearance_descriptor(frame, path[i])[None])[0]
        (first_ids if i < 15 else later_ids).append(int(track_id))
    assert len(set(first_ids)) == 1 and len(set(later_ids)) == 1 and later_ids[0] > first_ids[0]


def test_ids_are_never_reused_and_predict_extrapolates():
    tracker = BoxTracker(max_lost_s=0.2)
    issued = []
    for k in range(6):  # a new person every 0.5 s, each seen for 3 frames then gone
        for j in range(3):
            t = 0.5 * k + j / FPS
            box = np.array([[100.0 + 30 * j, 100.0, 200.0 + 30 * j, 300.0]])
            issued.append(int(tracker.update(t, box, np.array([1.0]))[0]))
    per_person = issued[::3]
    assert per_person == sorted(set(per_person)) and len(set(per_person)) == 6
    assert issued == [i for i in per_person for _ in range(3)]
    # The last person was seen at x0 = 100, 130, 160 (30 px a frame, 900 px/s): one frame on, constant
    # velocity puts the box at x0 = 190.  Three frames leave the filter's velocity short of the truth
    # (measured: 25.9 px a frame, x0 = 179.6), never beyond it; height, width and rows stay as seen.
    predicted = tracker.predict(5 * 0.5 + 3 / FPS)[per_person[-1]]
    next_frame = tracker.predict(5 * 0.5 + 4 / FPS)[per_person[-1]]
    assert 175.0 <= predicted[0] <= 192.0, predicted
    np.testing.assert_allclose(predicted[2:] - predicted[:2], [100.0, 200.0], atol=1.0)  # width, height
    np.testing.assert_allclose(predicted[[1, 3]], [100.0, 300.0], atol=1.0)
    step = next_frame - predicted
    assert 20.0 <= step[0] <= 32.0 and abs(step[0] - step[2]) < 0.5 and np.abs(step[[1, 3]]).max() < 0.5, step


def test_min_hits_drops_one_frame_ghosts():
    tracker = BoxTracker(min_hits=2)
    first = tracker.update(0.0, np.array([[0.0, 0.0, 50.0, 100.0], [500.0, 0.0, 550.0, 100.0]]), np.array([0.9, 0.3]))
    assert tracker.live_ids() == []  # nobody confirmed yet
    second = tracker.update(1 / FPS, np.array([[2.0, 0.0, 52.0, 100.0]]), np.array([0.9]))
    assert second[0] == first[0] and tracker.live_ids() == [int(first[0])]
    both = np.array([[4.0, 0.0, 54.0, 100.0], [500.0, 0.0, 550.0, 100.0]])
    third = tracker.update(2 / FPS, both, np.array([0.9, 0.9]))
    assert third[0] == first[0] and third[1] not in first  # the ghost was dropped, not re-acquired


def test_appearance_descriptor_is_unit_and_discriminative():
    textures = _textures()
    box = np.array([100.0, 100.0, 220.0, 380.0])
    frame_a = _render({"A": box}, textures, front="A")
    frame_b = _render({"B": box}, textures, front="B")
    shifted = _render({"A": box + [200, 20, 200, 20]}, textures, front="A")
    da, db = appearance_descriptor(frame_a, box), appearance_descriptor(frame_b, box)
    da2 = appearance_descriptor(shifted, box + [200, 20, 200, 20])
    assert da.shape == db.shape == (64,)
    assert np.linalg.norm(da) == pytest.approx(1.0) and np.linalg.norm(db) == pytest.approx(1.0)
    assert da @ da2 > 0.95 and da @ db < 0.7
    outside = appearance_descriptor(frame_a, np.array([2000.0, 0.0, 2100.0, 100.0]))
    np.testing.assert_array_equal(outside, 0.0)


def test_appearance_of_a_large_region_is_read_on_a_grid_without_changing_it():
    """A region of far more than SAMPLE_PX pixels (the astronaut's 280 x 200 px torso band) is read on a
    grid: a quarter of its pixels or fewer, and the descriptor still matches the full histogram's."""
    import cv2

    from rigcast.track.appearance import HUE_BINS, SAMPLE_PX, SAT_BINS

    from skimage import data as skimage_data
    rgb = skimage_data.astronaut()
    box = np.array([0.0, 0.0, 512.0, 512.0])  # torso band: columns 128..384, rows 102..308
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb[102:308, 128:384]), cv2.COLOR_RGB2HSV)
    assert hsv.shape[0] * hsv.shape[1] >= 4 * SAMPLE_PX
    mask = (hsv[..., 2] >= 25).astype(np.uint8)
    full = cv2.calcHist([hsv], [0, 1], mask, [HUE_BINS, SAT_BINS], [0, 180, 0, 256]).ravel()
    full = np.sqrt(full / full.sum())
    sampled = appearance_descriptor(rgb, box)
    assert not np.allclose(sampled, full, atol=1e-6)  # it was read on a grid ...
    assert sampled @ full > 0.995  # ... and describes the same colours


@pytest.mark.parametrize("call, message", [
    (lambda tr: tr.update(0.0, np.zeros((2, 3)), np.ones(2)), r"boxes_xyxy must be \(N, 4\)"),
    (lambda tr: tr.update(0.0, np.array([[10.0, 0.0, 5.0, 10.0]]), np.ones(1)), "x2 > x1"),
    (lambda tr: tr.update(0.0, np.array([[0.0, 0.0, 5.0, 10.0]]), np.ones(2)), r"scores must be \(N,\)"),
    (lambda tr: tr.update(0.0, np.array([[0.0, 0.0, 5.0, 10.0]]), np.ones(1), np.ones((2, 8))),
     r"appearance must be \(N, D\)"),
    (lambda tr: (tr.update(1.0, np.zeros((0, 4)), np.zeros(0)), tr.update(0.5, np.zeros((0, 4)), np.zeros(0))),
     "must not go backwards"),
    (lambda tr: BoxTracker(iou_threshold=1.5), "iou_threshold"),
    (lambda tr: BoxTracker(min_hits=0), "min_hits"),
])
def test_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call(BoxTracker())


def _walker_records(frames, x0=100.0, step=2.0, height=30.0):
    """Boxes (N, 4) of one walker 30 px tall moving right ``step`` px a frame, on ``frames``."""
    frames = np.asarray(frames)
    x = x0 + step * frames
    return np.stack([x, np.full_like(x, 60.0), x + 8.0, np.full_like(x, 60.0 + height)], axis=1)


def test_two_ids_taking_turns_on_one_person_are_one():
    from rigcast.track.boxes import turn_takers

    frames = np.arange(20)
    ids = np.where((frames // 3) % 2 == 0, 5, 9)  # 5, 5, 5, 9, 9, 9, 5, ...
    frames_all = np.r_[frames, 3]  # and one frame where both ids were given
    ids_all = np.r_[ids, 5]
    boxes = _walker_records(frames_all)
    assert turn_takers(frames_all, ids_all, boxes) == {9: 5}


def test_two_people_or_a_far_hand_over_are_not_merged():
    from rigcast.track.boxes import turn_takers

    frames = np.arange(20)
    # Two people seen together on every frame (one crossing in front of the other): never merged.
    both_frames = np.r_[frames, frames]
    both_ids = np.r_[np.full(20, 1), np.full(20, 2)]
    both_boxes = np.r_[_walker_records(frames), _walker_records(frames, x0=140.0, step=-2.0)]
    assert turn_takers(both_frames, both_ids, both_boxes) == {}
    # Ids alternating between two people far apart (each seen in turn): not one person.
    ids = np.where((frames // 3) % 2 == 0, 1, 2)
    boxes = np.where((ids == 1)[:, None], _walker_records(frames), _walker_records(frames, x0=400.0))
    assert turn_takers(frames, ids, boxes) == {}
    # One hand-over only (a lost person's id taken up once): not enough turns.
    ids = np.where(frames < 10, 1, 2)
    assert turn_takers(frames, ids, _walker_records(frames)) == {}
