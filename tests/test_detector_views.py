"""The person detector's cost follows the need (issue 11): a lost person is looked for with the whole frame and
the tiles around him only, while the full tile sweep, which finds small newcomers anywhere, keeps its own
cadence (``BodyConfig.sweep_every``).

A composed clip (tests/composed.py): bus.jpg's man in the cream coat, 1/5 of a 640x360 frame tall, walks behind
a brick pillar on the left and is wholly hidden for about 1 s; a second man walks in at the right
edge meanwhile (the same cut-out again: bus.jpg's man in the black coat is not found at this size).  Each NanoDet model run is counted (the real model, its runner wrapped only to count).
"""

from __future__ import annotations

import numpy as np
import pytest

import composed
from footage import requires_models

pytestmark = requires_models

SIZE_WH = (640, 360)
SCALE = 0.2
FPS = 30


def _scene() -> composed.Scene:
    coat_w = SCALE * (194 / 520) / (16 / 9)
    speed = (0.45 - 0.12) / 3.0
    return composed.Scene("lost_and_newcomer", 3.0, (
        composed.Walker("coat", ((0.0, 0.12, 0.95), (3.0, 0.45, 0.95)), depth=0.0),
        composed.Walker("coat", ((0.0, 1.1, 0.95), (1.0, 1.1, 0.95), (2.0, 0.8, 0.95), (3.0, 0.76, 0.95)),
                        depth=1.0),
    ), pillars=((0.3, speed * 1.0 + coat_w),))


class _Counting:
    """A runner that counts its calls and passes them on."""

    def __init__(self, runner):
        self.runner, self.calls = runner, 0

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.runner(*args, **kwargs)


@pytest.fixture(scope="module")
def run():
    """Per frame: the records, whether the detector ran, NanoDet model runs, the tile views read; the truth,
    the number of tiles of a frame and the analyser's config."""
    from rigcast.models import make_pose_models
    from rigcast.pipeline.body import BodyAnalyzer, BodyConfig

    frames, truth = composed.render(_scene(), SCALE, SIZE_WH, FPS)
    detector, landmarker = make_pose_models("full", device="cpu", detector="nanodet")
    counting = detector.runner = _Counting(detector.runner)
    config = BodyConfig()
    analyzer = BodyAnalyzer(detector, landmarker, config)
    state = analyzer.new_state()
    all_tiles = [v for v in detector.views(*SIZE_WH) if v is not None and v.size < max(SIZE_WH)]
    per_frame = []
    for f, rgb in enumerate(frames):
        before = counting.calls
        detector.last_views = []
        records, detected = analyzer.process(rgb, f / FPS, state)
        tiles = [v for v in getattr(detector, "last_views", []) if v is not None and v.size < max(SIZE_WH)]
        per_frame.append((records, detected, counting.calls - before, tiles))
    return per_frame, truth, len(all_tiles), config


def _found(records, anchor_xy: np.ndarray, height_px: float) -> bool:
    """A record whose head-and-shoulders centre lies within half a person's height of ``anchor_xy``."""
    for r in records:
        xy = np.asarray(r.landmarks.xy, dtype=np.float64)[composed.HEAD_AND_SHOULDERS].mean(axis=0)
        if np.linalg.norm(xy - anchor_xy) < 0.5 * height_px:
            return True
    return False


def test_a_lost_person_is_looked_for_near_him_only(run):
    per_frame, truth, num_tiles, _ = run
    hidden = truth.visible[:, 0] < 0.05
    assert hidden.any(), "the scene must hide the coat man"
    runs_while_hidden = [(f, n, tiles) for f, (_, detected, n, tiles) in enumerate(per_frame)
                         if detected and hidden[f] and 0 < n < 2 + num_tiles]
    # While he is hidden the detector looks for him, and not with every tile.
    assert runs_while_hidden, [(f, n) for f, (_, d, n, _) in enumerate(per_frame) if d]
    for f, n, tiles in runs_while_hidden:
        assert len(tiles) == n - 2  # the two whole-frame views, then the tiles
        # ... only tiles near where he went behind the pillar (x = 0.3 of the frame): none of the right half
        assert all(abs(t.center_xy[0] - truth.anchor_xy[f, 0, 0]) < t.size for t in tiles), (f, tiles)
    # Views per frame over the clip: far fewer than a full sweep on every detector frame.
    views = np.array([n for _, _, n, _ in per_frame])
    detector_frames = np.array([d for _, d, _, _ in per_frame])
    assert views.sum() < 0.6 * detector_frames.sum() * (2 + num_tiles), (views.sum(), detector_frames.sum())


def test_sweeps_keep_their_cadence_and_find_the_newcomer(run):
    per_frame, truth, num_tiles, config = run
    sweeps = [f for f, (_, _, n, _) in enumerate(per_frame) if n == 2 + num_tiles]
    assert sweeps[0] == 0  # the first frame is always swept
    assert np.diff(sweeps + [len(per_frame)]).max() <= config.sweep_every, sweeps
    # The newcomer, whole in the frame from this frame on, is found by the next sweep at the latest.
    entered = int(np.argmax(truth.visible[:, 1] > 0.95))
    assert entered > 0
    found = [f for f in range(entered, len(per_frame))
             if _found(per_frame[f][0], truth.anchor_xy[f, 1], truth.height_px)]
    assert found and found[0] <= entered + config.sweep_every, (entered, found[:3])
    # The coat man is found again soon after he comes out from behind the pillar.
    back = int(np.argmax((np.arange(len(per_frame)) > np.argmax(truth.visible[:, 0] < 0.05))
                         & (truth.visible[:, 0] > 0.95)))
    again = [f for f in range(back, len(per_frame)) if _found(per_frame[f][0], truth.anchor_xy[f, 0], truth.height_px)]
    assert again and again[0] <= back + 6, (back, again[:3])
