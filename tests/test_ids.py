"""Stable person ids: IDF1 and id switches with known answers, the tracker's lost-track rules, and the real
pipeline on clips composed from real photos (ground truth known by construction, tests/composed.py)."""

from __future__ import annotations

import numpy as np
import pytest

import composed
from footage import requires_models
from rigcast.track import BoxTracker, appearance_descriptor
from rigcast.track.metrics import identity_scores

FPS = 30.0


# -- the metric ------------------------------------------------------------------------------------

def _frames(*spec):
    """(gt ids, pred ids, close) per frame from (gt list, pred list, close rows) tuples."""
    return ([np.array(g) for g, _, _ in spec], [np.array(p) for _, p, _ in spec],
            [np.array(c, dtype=bool).reshape(len(g), len(p)) for g, p, c in spec])


def test_idf1_of_a_swap_half_way_is_one_half_with_two_switches():
    # Tracks 10 and 11 follow people 0 and 1 for three frames, then each other's person for three.
    before = ([0, 1], [10, 11], [[1, 0], [0, 1]])
    after = ([0, 1], [10, 11], [[0, 1], [1, 0]])
    scores = identity_scores(*_frames(*[before] * 3, *[after] * 3))
    assert scores.idtp == 6 and scores.idfp == 6 and scores.idfn == 6
    assert scores.idf1 == pytest.approx(0.5) and scores.id_switches == 2
    assert scores.num_gt_ids == 2 and scores.num_pred_ids == 2


def test_idf1_counts_a_fragment_and_a_false_track():
    # Person 0: track 10 for frames 0-3, then track 12; person 1: track 11 throughout; track 13 in frame 0
    # is on nobody.  IDTP = 4 + 6, ground truth 12, predictions 13: IDF1 = 20 / 25.
    spec = [([0, 1], [10, 11, 13], [[1, 0, 0], [0, 1, 0]])]
    spec += [([0, 1], [10, 11], [[1, 0], [0, 1]])] * 3
    spec += [([0, 1], [12, 11], [[1, 0], [0, 1]])] * 2
    scores = identity_scores(*_frames(*spec))
    assert (scores.idtp, scores.idfp, scores.idfn) == (10, 3, 2)
    assert scores.idf1 == pytest.approx(0.8) and scores.id_switches == 1
    assert scores.found == 12 and scores.recall == 1.0  # both people found in every frame, ids aside
    assert scores.pairs == {0: 10, 1: 11}


def test_idf1_pairs_trajectories_optimally_not_greedily():
    # Person 0 is close to track p=20 in 5 frames and to q=21 in 4; person 1 to p in 4.  Greedy pairing
    # takes (0, p) = 5 and leaves person 1 nothing; the optimum (0, q) + (1, p) = 8.
    spec = [([0], [20], [[1]])] * 5 + [([0, 1], [21, 20], [[1, 0], [0, 1]])] * 4
    scores = identity_scores(*_frames(*spec))
    assert scores.idtp == 8 and scores.pairs == {0: 21, 1: 20}
    assert scores.found == 13 and scores.recall == 1.0
    assert scores.idf1 == pytest.approx(16 / 26) and scores.id_switches == 1


def test_perfect_tracking_scores_one_and_empty_input_is_defined():
    spec = [([0, 1], [5, 6], [[1, 1], [0, 1]])] * 4  # person 0 near both tracks: switches need a change
    scores = identity_scores(*_frames(*spec))
    assert scores.idf1 == 1.0 and scores.id_switches == 0 and scores.pairs == {0: 5, 1: 6}
    assert identity_scores([], [], []).idf1 == 1.0


@pytest.mark.parametrize("args, message", [
    (([np.array([0])], [np.array([1])], [np.zeros((1, 2), bool)]), r"close must be \(G, P\)"),
    (([np.array([0, 0])], [np.array([1])], [np.zeros((2, 1), bool)]), "appears twice"),
    (([np.array([0])], [], []), "same frames"),
])
def test_identity_scores_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        identity_scores(*args)


# -- the tracker's lost-track rules ------------------------------------------------------------------

FRAME_WH = (960, 480)


def _textures() -> dict[str, np.ndarray]:
    import cv2
    import skimage.data

    crops = {"A": skimage.data.astronaut()[150:512, 120:400], "B": skimage.data.chelsea()[20:300, 80:330]}
    return {k: cv2.resize(c, (128, 256), interpolation=cv2.INTER_AREA) for k, c in crops.items()}


def _frame_with(boxes: dict[str, np.ndarray], textures) -> np.ndarray:
    """A grey frame with each person's texture in its box (clipped to the frame)."""
    import cv2

    frame = np.full((FRAME_WH[1], FRAME_WH[0], 3), 120, np.uint8)
    for name, box in boxes.items():
        x1, y1, x2, y2 = np.round(box).astype(int)
        patch = cv2.resize(textures[name], (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)
        c0, r0, c1, r1 = max(x1, 0), max(y1, 0), min(x2, FRAME_WH[0]), min(y2, FRAME_WH[1])
        if c1 > c0 and r1 > r0:
            frame[r0:r1, c0:c1] = patch[r0 - y1:r1 - y1, c0 - x1:c1 - x1]
    return frame


def _step(tracker, t, boxes: dict[str, np.ndarray], textures) -> dict[str, int]:
    """One update with the people in view (boxes clipped to the frame, as a detector gives them)."""
    frame = _frame_with(boxes, textures)
    names = list(boxes)
    clipped = np.array([np.clip(boxes[n], 0, FRAME_WH * 2) for n in names]).reshape(-1, 4)
    appearance = np.array([appearance_descriptor(frame, b) for b in clipped]).reshape(len(names), -1)
    ids = tracker.update(t, clipped, np.full(len(names), 0.9), appearance, frame_wh=FRAME_WH)
    return dict(zip(names, ids.tolist()))


def _box(cx: float, cy: float = 250.0, w: float = 100.0, h: float = 240.0) -> np.ndarray:
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


@pytest.mark.parametrize("back_at, same_id", [("left", True), ("right", False)])
def test_a_person_who_left_comes_back_at_the_same_edge_under_their_id(back_at, same_id):
    """A walks out at the left edge and is gone 2 s (longer than max_lost_s would keep a track hidden
    inside the frame).  Coming back at the left edge, A keeps the id; the same person appearing at the
    right edge instead is not taken for the one who left at the left (B stands by throughout)."""
    textures = _textures()
    tracker = BoxTracker(max_lost_s=1.0, max_exit_s=3.0)
    ids = {"A": [], "B": []}
    t = 0.0
    for k in range(20):  # A walks left at 300 px/s until it is out
        seen = {"B": _box(700.0)}
        if 200.0 - 15 * k > -30:  # while some of A is in view
            seen["A"] = _box(200.0 - 15 * k)
        for name, i in _step(tracker, t, seen, textures).items():
            ids[name].append(i)
        t += 1 / FPS
    for _ in range(int(2.0 * FPS)):  # A out of view for 2 s
        ids["B"].append(_step(tracker, t, {"B": _box(700.0)}, textures)["B"])
        t += 1 / FPS
    for k in range(10):
        cx = 70.0 + 10 * k if back_at == "left" else FRAME_WH[0] - 70.0 - 10 * k
        out = _step(tracker, t, {"A": _box(cx), "B": _box(700.0)}, textures)
        ids["A"].append(out["A"])
        ids["B"].append(out["B"])
        t += 1 / FPS
    assert len(set(ids["B"])) == 1
    first, back = ids["A"][0], ids["A"][-10:]
    assert len(set(back)) == 1 and (back[0] == first) == same_id
    assert back[0] != ids["B"][0]


@pytest.mark.parametrize("first_seen_heights_in, same_id", [(2.8, True), (6.0, False)])
def test_a_fast_walker_first_seen_some_way_in_keeps_their_id(first_seen_heights_in, same_id):
    """A, 80 px tall, runs out at the left edge at 5 heights a second and is back 1.5 s later, first found (as a
    detector running every few frames finds a small person) 2.8 heights in: A again, since a walker that fast
    covers over a height in the 0.5 s the detector may be late by (the tracker reads 3.3 heights a second: the
    edge cuts A's last boxes and slows their centres); 6 heights in is too far to be A coming back."""
    textures = _textures()
    tracker = BoxTracker(max_lost_s=1.0, max_exit_s=3.0)
    h, w, speed = 80.0, 34.0, 5 * 80.0
    t, a_id = 0.0, None
    for k in range(40):  # A runs left until out of view
        cx = 500.0 - speed * t
        seen = {"B": _box(700.0, w=w, h=h)}
        if cx > -w / 2:
            seen["A"] = _box(cx, w=w, h=h)
        out = _step(tracker, t, seen, textures)
        a_id = out.get("A", a_id)
        t += 1 / FPS
    t += 1.5
    back = [_step(tracker, t + k / FPS, {"A": _box(first_seen_heights_in * h + 10 * k, w=w, h=h),
                                         "B": _box(700.0, w=w, h=h)}, textures)["A"] for k in range(5)]
    assert len(set(back)) == 1 and (back[0] == a_id) == same_id


def test_a_person_coming_out_from_behind_someone_gets_their_id_back():
    """A walks behind B, who stands still, and is hidden for 1 s.  A is first seen again half behind B: the
    box shows mostly B, so the appearance gate turns A's lost track down and A gets a new id.  Once A is
    seen clear of B, the young track is merged back into A's lost one, and aliases() tells the caller to
    relabel the frames the young id was given."""
    textures = _textures()
    tracker = BoxTracker()
    t, first, b_id = 0.0, None, None
    for k in range(15):  # A walks right towards B, clear of B
        out = _step(tracker, t, {"A": _box(300.0 + 6 * k), "B": _box(560.0)}, textures)
        first, b_id = out["A"], out["B"]
        t += 1 / FPS
    for _ in range(int(1.0 * FPS)):  # A hidden behind B for 1 s
        assert _step(tracker, t, {"B": _box(560.0)}, textures)["B"] == b_id
        t += 1 / FPS
    a_ids = []
    for k in range(12):  # A comes out on B's right: behind B at first, clear of B from the sixth frame
        out = _step(tracker, t, {"A": _box(580.0 + 10 * k), "B": _box(560.0)}, textures)
        a_ids.append(out["A"])
        assert out["B"] == b_id
        t += 1 / FPS
    young = a_ids[0]
    assert young != first and young != b_id  # first taken for someone new ...
    assert a_ids[-1] == first and tracker.aliases() == {young: first}  # ... then re-identified
    assert set(a_ids) == {young, first}


def test_a_young_track_is_not_merged_into_someone_else():
    """B appears where A was lost: B's young track keeps its own id."""
    textures = _textures()
    tracker = BoxTracker()
    t = 0.0
    for k in range(15):
        a_id = _step(tracker, t, {"A": _box(300.0 + 6 * k)}, textures)["A"]
        t += 1 / FPS
    for _ in range(int(0.5 * FPS)):
        tracker.update(t, np.zeros((0, 4)), np.zeros(0), np.zeros((0, 64)), frame_wh=FRAME_WH)
        t += 1 / FPS
    b_ids = [_step(tracker, t + k / FPS, {"B": _box(400.0 + 6 * k)}, textures)["B"] for k in range(10)]
    assert len(set(b_ids)) == 1 and b_ids[0] != a_id and tracker.aliases() == {}


@pytest.mark.parametrize("ahead_heights, same_id", [(1.0, True), (2.5, False)])
def test_a_lost_track_takes_only_a_box_near_its_prediction(ahead_heights, same_id):
    """A walks right at 0.8 heights a second and is lost for 1.5 s; then a box appears on A's path, some heights
    beyond where A was last seen.  One height on (A walked on behind something) it is A; 2.5 heights on, over two
    heights from where the tracker predicts A (its velocity decays while lost), it is someone else, though it
    lies within the path gate (the radius plus 1.5 heights a second lost).  Boxes only, no appearance."""
    tracker = BoxTracker()
    height, speed, t = 240.0, 0.8 * 240.0, 0.0
    for k in range(15):
        a_id = int(tracker.update(t, _box(150.0 + speed * t)[None], np.array([0.9]), frame_wh=FRAME_WH)[0])
        last_cx = 150.0 + speed * t
        t += 1 / FPS
    for _ in range(int(1.5 * FPS)):
        tracker.update(t, np.zeros((0, 4)), np.zeros(0), frame_wh=FRAME_WH)
        t += 1 / FPS
    new_id = int(tracker.update(t, _box(last_cx + ahead_heights * height)[None], np.array([0.9]),
                                frame_wh=FRAME_WH)[0])
    assert (new_id == a_id) == same_id


# -- the real pipeline on composed clips ---------------------------------------------------------

SCALE = 0.5  # people half the frame tall
SMALL = 0.1  # people a tenth of the frame tall: the smallest, read in 1280x720 frames
SIZE_WH = (640, 360)


def test_the_scenes_hold_what_they_claim():
    """Checked on the ground truth: a real crossing, a full occlusion of 1 s, a re-entry within 2 s."""
    for name, scale in [(n, s) for n in ("crossing", "occlusion", "reentry") for s in (0.5, 0.1)]:
        _, truth = composed.render(composed.scenes(SIZE_WH[0] / SIZE_WH[1], scale)[name], scale, SIZE_WH)
        hidden = truth.visible[:, 0] == 0
        runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], hidden.astype(int), [0]]))))[::2] / FPS
        if name == "crossing":  # mostly hidden for a while (people half the frame tall), never wholly
            assert not hidden.any() and (scale < 0.5 or np.sum(truth.visible[:, 0] < 0.5) >= 6)
        elif name == "occlusion":
            assert len(runs) == 1 and 0.95 <= runs[0] <= 1.05
        else:
            out = (truth.anchor_xy[:, 0, 0] < 0) & hidden
            assert len(runs) == 1 and out[hidden].all() and 1.5 <= runs[0] <= 2.0
        assert (truth.visible[:, 1] > 0.9).all()  # the other person stays in plain view


@pytest.fixture(scope="module")
def composed_takes(tmp_path_factory):
    """{(scene, scale): (Take, truth)}, each analysed when first asked for."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    folder = tmp_path_factory.mktemp("ids")
    out = {}

    def get(name: str, scale: float, fps: int = 30):
        if (name, scale, fps) not in out:
            size = SIZE_WH if scale >= 0.3 else (1280, 720)
            scene = composed.scenes(size[0] / size[1], scale)[name]
            clip = folder / f"{name}_{scale}_{fps}.mp4"
            truth = composed.write_scene(clip, scene, scale, size, fps=fps)
            out[name, scale, fps] = (analyze(clip, clip.with_suffix(".npz"), AnalyzeConfig(faces=False)), truth)
        return out[name, scale, fps]

    return get


@requires_models
@pytest.mark.parametrize("name, scale", [("crossing", SCALE), ("occlusion", SCALE), ("reentry", SCALE),
                                         ("crossing", SMALL), ("occlusion", SMALL)])
def test_each_person_keeps_one_id_on_composed_real_people(composed_takes, name, scale):
    take, truth = composed_takes(name, scale)
    scores = composed.score_take(take, truth)
    summary = f"{name}: {scores} tracks {[(t.track_id, t.num_frames) for t in take.tracks]}"
    assert scores.idf1 >= 0.9, summary
    assert scores.recall >= 0.9, summary
    assert scores.id_switches == 0, summary
    assert scores.num_pred_ids == len(truth.people), summary


@requires_models
def test_small_people_crossing_at_10_fps_are_followed_throughout(composed_takes):
    """At 10 fps the crossing walkers, a tenth of the frame tall, move a large part of their crop a frame: read
    a step behind, they were found on 79 % of their frames (on main: IDF1 0.881, recall 0.787); read where the
    tracker expects them (body.lead), on all."""
    take, truth = composed_takes("crossing", SMALL, 10)
    scores = composed.score_take(take, truth)
    summary = f"{scores} tracks {[(t.track_id, t.num_frames) for t in take.tracks]}"
    assert scores.idf1 >= 0.95 and scores.recall >= 0.95, summary
    assert scores.id_switches == 0 and scores.num_pred_ids == len(truth.people), summary


@requires_models
def test_a_small_fast_walker_who_leaves_and_comes_back_keeps_one_id(composed_takes):
    """The re-entry walker a tenth of a 1280x720 frame tall moves 16 px a frame, a fifth of his crop: read a
    step behind, he stepped out of it inside the frame and his track waited as one lost inside the frame, which
    he outlived (on main: 3 ids, 1 switch, IDF1 0.883).  Read where the tracker expects him, he is followed to
    the edge, and found again on his way back in.  Recall is the detector's: he is first found some frames
    after he comes back."""
    take, truth = composed_takes("reentry", SMALL)
    scores = composed.score_take(take, truth)
    summary = f"{scores} tracks {[(t.track_id, t.num_frames) for t in take.tracks]}"
    assert scores.id_switches == 0 and scores.num_pred_ids == len(truth.people), summary
    assert scores.idf1 >= 0.9 and scores.recall >= 0.85, summary


@requires_models
def test_a_small_fast_walker_at_10_fps_is_followed_under_one_id_after_coming_back(composed_takes):
    """At 10 fps the re-entry walker, a tenth of a 1280x720 frame tall, moves half his crop a frame.  The detector
    finds him again some frames after he is back (NanoDet misses him near the left edge, at any fps), and then a
    box on his lower body gave a read of his legs as a tiny person, which took his track and followed him 30 px
    below his head for the rest of the clip (on main: IDF1 0.706, none of his frames after coming back found).
    Read whole (a legs read on someone's body is a part of them, body.part_of), he is followed to the end."""
    take, truth = composed_takes("reentry", SMALL, 10)
    scores = composed.score_take(take, truth)
    summary = f"{scores} tracks {[(t.track_id, t.num_frames) for t in take.tracks]}"
    assert scores.id_switches == 0 and scores.num_pred_ids == len(truth.people), summary
    assert scores.idf1 >= 0.85 and scores.idp >= 0.95, summary
    # After he is back: found (head and shoulders within a quarter of his height) on most of his frames, one id.
    back = np.flatnonzero((np.arange(len(truth.visible)) > np.argmax(truth.visible[:, 0] == 0))
                          & (truth.visible[:, 0] >= composed.REQUIRED_VISIBLE))
    anchors = composed.track_anchors(take, len(truth.visible))
    near = {i: np.linalg.norm(a[back] - truth.anchor_xy[back, 0], axis=1) <= composed.CLOSE * truth.height_px
            for i, a in anchors.items()}
    found_by = {i: int(n.sum()) for i, n in near.items() if n.any()}
    assert len(found_by) == 1 and sum(found_by.values()) >= 0.6 * len(back), (found_by, len(back), summary)


@requires_models
def test_a_small_walker_out_from_behind_a_pillar_at_10_fps_is_found_again(composed_takes):
    """At 10 fps the tracker's prediction for the hidden walker, a tenth of the frame tall, slows to a stop behind
    the pillar (its velocity decays while lost) while he walks on: the detector's searches around that stalled
    prediction read no tile he is in, and he was not found again before the clip ends (on main: IDF1 0.946,
    recall 0.898).  Searched along the path he walked on (BoxTracker.search_boxes), he is found again, under
    his own id."""
    take, truth = composed_takes("occlusion", SMALL, 10)
    scores = composed.score_take(take, truth)
    summary = f"{scores} tracks {[(t.track_id, t.num_frames) for t in take.tracks]}"
    assert scores.id_switches == 0 and scores.num_pred_ids == len(truth.people), summary
    after = np.flatnonzero((np.arange(len(truth.visible)) > np.argmax(truth.visible[:, 0] == 0))
                           & (truth.visible[:, 0] >= composed.REQUIRED_VISIBLE))
    before = np.flatnonzero(truth.visible[:, 0] >= composed.REQUIRED_VISIBLE)[:3]
    anchors = composed.track_anchors(take, len(truth.visible))
    close = composed.CLOSE * truth.height_px
    found = {i: [int((np.linalg.norm(a[f] - truth.anchor_xy[f, 0], axis=1) <= close).sum()) for f in (before, after)]
             for i, a in anchors.items()}
    walker = {i: n for i, n in found.items() if sum(n)}
    assert len(walker) == 1 and min(next(iter(walker.values()))) >= 1, (found, summary)  # before and after, one id


def test_a_lost_track_is_searched_where_its_gate_would_take_it():
    """BoxTracker.search_boxes: A walked right at 1.5 heights a second and is hidden for 1 s: the search covers
    where A walked on to (1.5 heights on), which the prediction, stalled by the decaying velocity, falls short of.
    B walked out at the left edge: the search is the strip along that edge, inside the frame, where the
    prediction has run off beyond the edge."""
    tracker = BoxTracker()
    h = 100.0
    t = 0.0
    for k in range(15):
        b_cx = 120.0 - 2.0 * h * t
        boxes = [_box(400.0 + 1.5 * h * t, w=40.0, h=h)] + ([_box(b_cx, w=40.0, h=h)] if b_cx > -20.0 else [])
        ids = tracker.update(t, np.array(boxes), np.full(len(boxes), 0.9), frame_wh=FRAME_WH)
        if k == 0:
            a_id, b_id = int(ids[0]), int(ids[1])
        t += 1 / FPS
    last_a = 400.0 + 1.5 * h * (t - 1 / FPS)
    for _ in range(int(1.0 * FPS)):
        tracker.update(t, np.zeros((0, 4)), np.zeros(0), frame_wh=FRAME_WH)
        t += 1 / FPS
    assert set(tracker.lost_ids()) == {a_id, b_id}
    search, predicted = tracker.search_boxes(t), tracker.predict(t, include_lost=True)
    walked_on = last_a + 1.5 * h * 1.0
    assert search[a_id][0] < last_a < walked_on < search[a_id][2]
    assert predicted[a_id][2] < walked_on  # the prediction stalled short of him
    assert predicted[b_id][2] < 0.0  # run off beyond the left edge
    x0, y0, x1, y1 = search[b_id]
    assert x0 == pytest.approx(0.0) and 1.4 * h <= x1 <= 0.6 * FRAME_WH[0] and y0 < 250.0 < y1


@requires_models
def test_a_hidden_person_is_listed_only_on_the_frames_they_are_seen(composed_takes):
    """The walker is wholly hidden behind the pillar for 1 s, longer than ``max_gap``: the Take lists their
    track on no frame of that second (on main it listed them there with every joint NaN)."""
    take, truth = composed_takes("occlusion", SCALE)
    listed = {int(f) for t in take.tracks for f in t.frame_index}
    hidden = np.flatnonzero(truth.visible[:, 0] == 0)
    for track in take.tracks:
        assert np.isfinite(track.xy).any(axis=(1, 2)).all(), f"track {track.track_id} has frames with no joint"
    assert len(listed) == len(truth.visible)  # the other person is there throughout
    walker = max(take.tracks, key=lambda t: np.ptp(np.nanmean(t.xy[:, :, 0], axis=1)))
    assert not set(walker.frame_index.tolist()) & set(hidden[5:-5].tolist())


def test_a_followed_crop_leads_a_fast_walker_and_drops_one_predicted_out_of_the_frame():
    """body.lead: a crop whose person the tracker expects to move more than 3 % of its side is moved by that
    step (the walker 16 px a frame in an 88 px crop); a still person's crop stays; a person predicted wholly
    beyond the frame's edge is no longer followed."""
    from rigcast.models import Roi
    from rigcast.pipeline.body import lead
    from rigcast.pipeline.follow import FollowState

    state = FollowState()
    boxes = {"fast": lambda t: _box(400.0 + 480.0 * t, w=30.0, h=72.0), "still": lambda t: _box(800.0),
             "leaving": lambda t: _box(45.0 - 480.0 * t, w=30.0, h=72.0)}
    ids = {}
    for k in range(4):
        t = k / FPS
        out = state.tracker.update(t, np.array([b(t) for b in boxes.values()]), np.full(3, 0.9), frame_wh=FRAME_WH)
        ids = dict(zip(boxes, out.tolist()))
    last = 3 / FPS
    centres = {name: 0.5 * (b(last)[:2] + b(last)[2:]) for name, b in boxes.items()}
    state.rois = {ids[name]: Roi(center_xy=centres[name], size=88.0, rotation=0.0) for name in boxes}
    lead(state, 4 / FPS, FRAME_WH)
    assert set(state.rois) == {ids["fast"], ids["still"]}
    step = state.rois[ids["fast"]].center_xy - centres["fast"]
    assert step[0] == pytest.approx(16.0, abs=3.0) and abs(step[1]) < 1.0
    np.testing.assert_allclose(state.rois[ids["still"]].center_xy, centres["still"], atol=1e-9)
