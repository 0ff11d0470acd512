"""False people in crowds: a person-shaped thing that stands still is no person.

The thing is scikit-image's ``horse`` silhouette, pasted 0.3 of a 640x360 frame tall: only NanoDet's tiles box
it (0.22 on a still frame; the whole frame gives it no box) and the pose landmark model reads a person in that box at
presence 1.0, so it passed as a person on every frame until a track needed a box of the whole frame, a sure
box or travel to count (rigcast.pipeline.body.confirmed).  A real person walks past it (tests/composed.py),
and must still be found.
"""

from __future__ import annotations

import numpy as np
import pytest

import composed
from fixtures_images import resized
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


@pytest.fixture(scope="module")
def horse_take(tmp_path_factory):
    """(Take, truth, the horse's box) of 1.2 s: the horse standing still, bus.jpg's man in the cream coat
    walking across the right half of the frame, half its height tall."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    scene = composed.Scene("horse", 1.2, (composed.Walker("coat", ((0.0, 0.55, 0.95), (1.2, 0.85, 0.95)),
                                                          depth=0.0),))
    frames, truth = composed.render(scene, 0.5, SIZE_WH)
    horse = _horse()
    x, y = HORSE_XY
    for frame in frames:
        frame[y:y + horse.shape[0], x:x + horse.shape[1]] = horse
    clip = tmp_path_factory.mktemp("crowd") / "horse.mp4"
    write_video(clip, frames)
    take = analyze(clip, clip.with_suffix(".npz"), AnalyzeConfig(faces=False))
    box = np.array([x, y, x + horse.shape[1], y + horse.shape[0]], dtype=np.float64)
    return take, truth, box


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

