"""False people in crowds: a person-shaped thing that stands still is no person.

The thing is scikit-image's ``horse`` silhouette, pasted 0.3 of a 640x360 frame tall: only NanoDet's tiles box
it (0.22 on a still frame; the whole frame gives it no box) and the pose landmark model reads a person in that box at
presence 1.0, so it passed as a person on every frame until a track needed a box of the whole frame, a sure
box or travel to count (rigcast.pipeline.body.confirmed).  A real person walks past it (tests/composed.py),
and must still be found.

Real footage too: OpenCV's vtest.avi (768x576, 10 fps, people 55-130 px tall), whose traffic cones (20-30 px)
and a pair of bollards the whole frame boxes unsurely, and the pose model reads as people.
"""

from __future__ import annotations

import numpy as np
import pytest

import composed
from fixtures_images import resized, write_vtest_frames
from footage import requires_models, write_video

pytestmark = requires_models

SIZE_WH = (640, 360)
HORSE_XY = (60, 170)  # top-left corner of the pasted silhouette
HORSE_FRAC = 0.3  # of the frame height


def _horse() -> np.ndarray:
    """The horse silhouette as a black shape on white, RGB, ``HORSE_FRAC`` of the frame height."""
    import skimage.data

    shape = np.where(skimage.data.horse()[..., None], 255, 0).astype(np.uint8)
    return resized(np.ascontiguousarray(np.repeat(shape, 3, axis=2)), int(HORSE_FRAC * SIZE_WH[1]))


def _horse_frames():
    """(frames, truth, the horse's box) of 1.2 s: the horse standing still, bus.jpg's man in the cream coat
    walking across the right half of the frame, half its height tall."""
    scene = composed.Scene("horse", 1.2, (composed.Walker("coat", ((0.0, 0.55, 0.95), (1.2, 0.85, 0.95)),
                                                          depth=0.0),))
    frames, truth = composed.render(scene, 0.5, SIZE_WH)
    horse = _horse()
    x, y = HORSE_XY
    for frame in frames:
        frame[y:y + horse.shape[0], x:x + horse.shape[1]] = horse
    return frames, truth, np.array([x, y, x + horse.shape[1], y + horse.shape[0]], dtype=np.float64)


@pytest.fixture(scope="module")
def horse_take(tmp_path_factory):
    """(Take, truth, the horse's box) of :func:`_horse_frames`, analysed."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    frames, truth, box = _horse_frames()
    clip = tmp_path_factory.mktemp("crowd") / "horse.mp4"
    write_video(clip, frames)
    take = analyze(clip, clip.with_suffix(".npz"), AnalyzeConfig(faces=False))
    return take, truth, box


def test_boxes_only_tiles_find_are_marked_tiled():
    """The whole frame boxes the walker (their best box); only tiles box the horse (what
    rigcast.pipeline.body.confirmed weighs)."""
    from rigcast.models.pose import make_person_detector

    frames, truth, horse = _horse_frames()
    people = make_person_detector("nanodet")(frames[0])
    walker = truth.anchor_xy[0, 0]
    on_walker = [p for p in people if np.all((walker >= p.box_xyxy[:2]) & (walker <= p.box_xyxy[2:]))]
    centres = [0.5 * (p.box_xyxy[:2] + p.box_xyxy[2:]) for p in people]
    on_horse = [p for p, c in zip(people, centres) if np.all((c >= horse[:2]) & (c <= horse[2:]))]
    assert on_walker and not max(on_walker, key=lambda p: p.score).tiled
    assert on_horse and all(p.tiled for p in on_horse)


def _shoulder_centres(track) -> np.ndarray:
    """(T, 2) px the track's shoulder centre on each of its frames."""
    return np.asarray(track.xy, dtype=np.float64)[:, [11, 12]].mean(axis=1)


def test_a_person_shaped_thing_that_stands_still_is_no_person(horse_take):
    take, truth, horse = horse_take
    on_horse = [t.track_id for t in take.tracks
                if np.nanmedian(np.all((_shoulder_centres(t) >= horse[:2]) & (_shoulder_centres(t) <= horse[2:]),
                                       axis=1)) > 0.5]
    assert on_horse == [], f"tracks {on_horse} follow the horse silhouette at {horse.tolist()}"


def test_the_walker_beside_it_is_still_found(horse_take):
    take, truth, _ = horse_take
    scores = composed.score_take(take, truth)
    assert scores.recall >= 0.9 and scores.num_pred_ids == 1, scores



def _standing(centre_x: float, height: float = 80.0, nose_rise: float = 0.3) -> np.ndarray:
    """(33, 2) px BlazePose points of an upright person ``height`` tall, hips at (``centre_x``, 200): shoulders a
    torso (0.3 height) above, the nose ``nose_rise`` torsos above them; other points at the hips."""
    torso = 0.3 * height
    xy = np.tile([centre_x, 200.0], (33, 1))
    xy[[11, 12]] = [[centre_x - 0.1 * height, 200 - torso], [centre_x + 0.1 * height, 200 - torso]]
    xy[0] = [centre_x, 200 - torso * (1 + nose_rise)]
    return xy


SURE_TWICE = np.r_[0.8, np.full(14, 0.3), 0.8, np.full(14, 0.3)]  # sure boxes on 2 of 30 detector runs
SURE_ONCE = np.r_[0.8, np.full(29, 0.3)]


@pytest.mark.parametrize("frames, step_px, boxed, scores, nose_rise, frame_height, expected", [
    (np.arange(30), 2.0, False, 0.3, 0.3, None, True),  # walks 58 px (0.7 box heights) over 30 frames in a row
    (np.arange(30), 0.0, False, 0.3, 0.3, None, False),  # stands still, never boxed
    (np.arange(30), 0.0, True, 0.3, 0.3, None, True),  # stands still, boxed by the whole frame
    (np.arange(30), 0.0, True, 0.3, 0.3, 360.0, True),  # ... 80 px tall in a 360 px frame: its view's size
    (np.arange(30), 0.0, True, 0.3, 0.3, 720.0, False),  # ... in a 720 px frame: too small for it, unsure
    (np.arange(30), 0.0, False, SURE_TWICE, 0.3, 720.0, True),  # boxed surely on 2 runs
    (np.arange(30), 0.0, False, SURE_ONCE, 0.3, 720.0, False),  # ... on 1 run of 30: a box that fell on it once
    (np.arange(30), 0.0, False, SURE_ONCE, 0.3, 360.0, True),  # ... but 80 px is the whole frame's size at 360
    (np.arange(30), 0.0, False, np.r_[0.8, np.full(29, np.nan)], 0.3, 720.0, True),  # ... of the only run
    (np.arange(30), 0.0, False, np.r_[0.8, np.zeros(29)], 0.3, 720.0, True),  # ... of the only run boxing it
    (np.arange(30), 0.0, True, 0.3, 0.05, None, False),  # boxed, but the nose sits on the shoulders: no person
    (np.arange(0, 300, 10), 2.0, False, 0.3, 0.3, None, False),  # the same path in sporadic reads, one every 10
    (np.arange(30), "step", False, 0.3, 0.3, None, False),  # still, then read 30 px away and still: a step
    (np.arange(5), 15.0, False, 0.3, 0.3, None, False),  # 60 px in 5 reads: too few to tell a walk from jitter
])
def test_a_track_counts_once_boxed_with_a_head_or_travelling(frames, step_px, boxed, scores, nose_rise,
                                                            frame_height, expected):
    from rigcast.pipeline.body import confirmed

    xs = (100.0 + 30.0 * (np.arange(len(frames)) >= len(frames) // 2) if step_px == "step"
          else 100.0 + step_px * np.arange(len(frames)))
    xy = np.stack([_standing(x, nose_rise=nose_rise) for x in xs])
    boxes = np.tile([60.0, 150.0, 140.0, 230.0], (len(frames), 1))  # 80 px tall
    scores = np.broadcast_to(np.asarray(scores, dtype=np.float64), (len(frames),))
    assert confirmed(frames, scores, np.full(len(frames), boxed), xy, boxes, frame_height) == expected


# -- real footage: vtest.avi -----------------------------------------------------------------------------------

VTEST_FRAMES = (530, 546)  # 1.6 s
VTEST_BY_EYE = 540  # the frame counted by eye
# Each person on frame 540 as a box [x0, y0, x1, y1] around their visible body, read by eye.
VTEST_PEOPLE = [[155, 165, 190, 240],  # woman in red, on the far path
                [438, 175, 468, 268],  # man right of the sign post, about to pass behind it
                [605, 178, 645, 265],  # man on the road, right
                [638, 285, 682, 392],  # man standing in front, right
                [238, 378, 288, 528],  # walker in the red and blue jacket, on the grass
                [280, 374, 338, 514]]  # blond walker beside him
# Things a person is read in, by eye: a cone at the far left, a cone by the gravel, two bollards at the right.
VTEST_THINGS = [[20, 160, 55, 195], [280, 178, 310, 212], [680, 175, 725, 245]]


@pytest.fixture(scope="module")
def vtest_take(tmp_path_factory):
    """The Take of :data:`VTEST_FRAMES` of vtest.avi, read as an image sequence at its 10 fps (no re-encoding)."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    folder = write_vtest_frames(tmp_path_factory.mktemp("vtest"), *VTEST_FRAMES)
    return analyze(folder, tmp_path_factory.mktemp("vtest_take") / "vtest.npz",
                   AnalyzeConfig(faces=False, image_fps=10.0))


def _inside(xy: np.ndarray, boxes) -> np.ndarray:
    """(P, B) whether each point of ``xy`` (P, 2) lies in each box of ``boxes`` (B, 4)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 1, 2)
    return np.all((xy >= boxes[None, :, :2]) & (xy <= boxes[None, :, 2:]), axis=2)


def test_cones_and_bollards_on_real_footage_are_no_people(vtest_take):
    """On main (b4ef4c5) a cone at each end of the taped line and the bollards were kept as people: the whole
    frame boxed them at 0.2-0.44, once is enough there, and each read has a head above its shoulders."""
    on_things = [(t.track_id, np.nanmedian(_shoulder_centres(t), axis=0).round().tolist()) for t in vtest_take.tracks
                 if _inside(np.nanmedian(_shoulder_centres(t), axis=0), VTEST_THINGS).any()]
    assert on_things == [], f"tracks on cones or bollards: {on_things}"


def test_everyone_on_real_footage_is_found_once(vtest_take):
    frame = VTEST_BY_EYE - VTEST_FRAMES[0]
    centres = [_shoulder_centres(t)[list(t.frame_index).index(frame)] for t in vtest_take.tracks
               if frame in set(t.frame_index.tolist())]
    inside = _inside(np.array(centres).reshape(-1, 2), VTEST_PEOPLE)
    assert inside.any(axis=0).all(), f"people missed: {np.flatnonzero(~inside.any(axis=0)).tolist()}"
    assert (inside.sum(axis=0) == 1).all() and (inside.sum(axis=1) == 1).all(), \
        f"shoulder centres {np.round(centres).tolist()} are not each one person's"
