"""What body and face analysis share: MediaPipe's tracking mode for several subjects.

Each followed subject's next ROI comes from this frame's landmarks; results
that cover one subject twice are merged; a :class:`~rigcast.track.BoxTracker`
gives every result its id.  The analysers differ only in when a detection is
a subject already followed, and in what counts as one subject twice.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..models.roi import Roi, normalize_radians
from ..smooth.one_euro import OneEuroConfig, OneEuroFilter
from ..track import BoxTracker, appearance_descriptor
from ..track import box_iou as _box_iou_pairs


class Landmarks(Protocol):
    score: float

    def box_xyxy(self) -> np.ndarray: ...

    def next_roi(self) -> Roi: ...


Result = tuple[Landmarks, bool]  # (landmarks, followed from a previous frame rather than just detected)


ROI_STEADYING = OneEuroConfig(min_cutoff=3.0, beta=20.0, d_cutoff=1.0)
ROI_BAND = 0.03
ROI_SHAPE_BAND = 0.03
ROI_CREEP_SPEED = 0.05
"""How a body track's next ROI is steadied: its centre, side and rotation One Euro filtered (speed in ROI
sides per second); then the centre is held while it stays within ``ROI_BAND`` of the side from the centre
held so far, and the side and rotation while they stay within ``ROI_SHAPE_BAND`` (of the side; radians).
Past a band, a ROI that creeps (filtered speed under ``ROI_CREEP_SPEED`` sides, or radians, per second) is
still held, up to twice the band.
The landmark model's output moves with its crop, so a ROI that follows every flicker of the hips feeds the
flicker back: on a still, noisy astronaut clip the raw ROI's side moved by 160 px (std) and the keypoints by
3.2 px, against 0.15 px from a fixed ROI.  (MediaPipe filters its ROI points too: One Euro, 0.01 Hz.)
Keypoints straight from the model, 90 frames (2D jitter in px after 10 frames on still clips; error against
the known path on moving ones, % of frame height, median over joints; tests/steadiness.py):

    ROI filter                        busman still  astronaut still  busman moving  busman 2x  astronaut moving
    none                                  1.66          2.85             0.41          0.48         0.63
    0.01 Hz, beta 50                      0.92          2.86             0.47          0.50         0.53
    3 Hz, beta 20                         0.96          2.65             0.38          0.51         0.55
    3 Hz, beta 20, bands 0.03, 0.03       0.13          2.03             0.51          0.54         0.61
    3 Hz, beta 20, bands 0.02, 0.05       0.19          0.12             0.52          0.56         0.53
    bands 0.03, 0.03, creep held (this)   0.13          0.16             0.51          0.54         1.57 *

(* This row on today's pipeline, over the joints rigcast sees (median confidence >= 0.5): the astronaut's
guessed legs count there, so its moving figure does not compare with the rows above.)

A filter alone lets the crop creep after the model's guesses; held, the still jitter drops 90 % at a small
cost in motion.  A wider side/rotation band would hold the astronaut (whose hips the model must guess: its
ROI crept by 3 % in side over 45 frames, then jumped), but any shape band above 0.03 loses people walking
past each other (tests/test_multiperson.py, test_faces_pipeline.py).  Where the astronaut's ROI went once
released shows why a creep must not release it: her first ROI (from the detector) had a side of 592 px, the
landmarks read in it said 608, and once the crop followed, 624, 648, 660: the guessed hips grow with the crop
(a feedback of gain near 1), and each release stepped every keypoint by up to 14 px.  A real move is fast:
the slow clips here move the ROI by about 0.15 sides a second, people walking by faster still, while the
creep above was 0.003 and noise keeps the filtered speed near 0.01.

Still open: a centre held in steps lags a moving subject by up to a band, then jumps, and the moving
astronaut's guessed hips and legs follow each jump (path error 1.57 % of the frame height, MediaPipe 1.05 %).
Following a released centre every frame until it slows measured 0.73 % (MediaPipe 0.89 % over the same
joints; the bus.jpg man 0.37 and 0.45 % at 1x and 2x, still clips unchanged), but changed who is tracked in
tests/test_body_faces.py's pan over six people (two bodies without a face instead of one), so it is not on.
Following the side or rotation so runs away: the guessed hips grow with the crop."""


def _roi_vector(roi: Roi, previous: np.ndarray | None) -> np.ndarray:
    """(4,) centre x, y, size, rotation, the rotation unwrapped to within pi of ``previous``'s."""
    rotation = roi.rotation
    if previous is not None:
        rotation = previous[3] + normalize_radians(rotation - previous[3])
    return np.array([roi.center_xy[0], roi.center_xy[1], roi.size, rotation])


@dataclass
class FollowState:
    """What carries from one frame to the next (all of it derivable from past records).

    With ``roi_filter`` set, the ROIs handed on are filtered per key over time and held within
    ``roi_band`` (centre) and ``roi_shape_band`` (side, rotation) of the last ROI handed on, or twice that
    while they move slower than ``roi_creep_speed`` (see :data:`ROI_STEADYING`), from the landmarks' own ROIs
    and their times: replaying the same ROIs rebuilds the same state.
    """

    tracker: BoxTracker = field(default_factory=BoxTracker)
    # Next ROI per followed subject: keyed by track id for bodies; faces key them by slot, since their
    # ids are assigned on a worker thread (rigcast.pipeline.faces).
    rois: dict[int, Roi] = field(default_factory=dict)
    frames_since_detect: int = 10**9
    roi_filter: OneEuroConfig | None = None
    roi_band: float = 0.0
    roi_shape_band: float = 0.0
    roi_creep_speed: float = 0.0
    _filters: dict[int, tuple[OneEuroFilter, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def hand_on(self, rois: dict[int, Roi], time_s: float | None = None) -> None:
        """The ROIs the next frame follows: the ones this frame's landmarks give (at ``time_s``), filtered
        when ``roi_filter`` is set."""
        if self.roi_filter is None or time_s is None:
            self.rois = rois
            return
        filters, out = {}, {}
        for key, roi in rois.items():
            old = self._filters.get(key)
            filt = old[0] if old is not None else OneEuroFilter(self.roi_filter, (4,))
            scale = roi.size if old is None else float(old[1][2])  # the steadied size: the raw one flickers
            value = filt.step(_roi_vector(roi, None if old is None else old[1]), time_s, scale=scale)
            held = value
            if old is not None and self.roi_band > 0:
                side = old[2][2]
                d, speed = np.abs(value - old[2]), np.abs(filt.speed)
                # Within the band, or creeping within twice the band: held (see ROI_STEADYING).
                creep = self.roi_creep_speed
                reach = (2.0 if speed[0] + speed[1] <= creep * side else 1.0,
                         2.0 if speed[2] <= creep * side and speed[3] <= creep else 1.0)
                held = value.copy()
                if d[0] + d[1] <= reach[0] * self.roi_band * side:
                    held[:2] = old[2][:2]
                if d[2] <= reach[1] * self.roi_shape_band * side and d[3] <= reach[1] * self.roi_shape_band:
                    held[2:] = old[2][2:]
            filters[key] = (filt, value, held)
            out[key] = Roi(center_xy=held[:2], size=float(held[2]), rotation=normalize_radians(float(held[3])))
        self._filters = filters
        self.rois = out


def completed(value) -> Future:
    """A future already holding ``value``: what an analyser's ``submit`` returns for work done in place."""
    future: Future = Future()
    future.set_result(value)
    return future


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two xyxy boxes (4,)."""
    return float(_box_iou_pairs(np.asarray(a)[None], np.asarray(b)[None])[0, 0])


def scaled_box(box: np.ndarray, factor: float) -> np.ndarray:
    """The xyxy box (4,) grown by ``factor`` about its centre."""
    centre, half = 0.5 * (box[:2] + box[2:]), 0.5 * factor * (box[2:] - box[:2])
    return np.concatenate([centre - half, centre + half])


def follow(landmarker: Callable, rgb: np.ndarray, state: FollowState) -> tuple[list[Result], bool]:
    """Landmarks from every followed ROI; also whether someone followed was lost this frame."""
    results = [(lm, True) for lm in (landmarker(rgb, roi) for roi in state.rois.values()) if lm is not None]
    return results, len(results) < len(state.rois)


def dedupe(results: list[Result], same: Callable[[np.ndarray, np.ndarray], bool]) -> list[Result]:
    """Drop results whose box ``same``-matches one already kept; followed results and higher scores win."""
    kept: list[Result] = []
    for lm, followed in sorted(results, key=lambda r: (not r[1], -r[0].score)):
        box = lm.box_xyxy()
        if not any(same(box, k.box_xyxy()) for k, _ in kept):
            kept.append((lm, followed))
    return kept


def assign_ids(rgb: np.ndarray, time_s: float, results: list[Result], state: FollowState,
               appearance_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Track ids (N,) for the results, their boxes (N, 4) and appearance descriptors (N, D); sets next ROIs,
    keyed by id."""
    ids, boxes, appearance = identify(rgb, time_s, results, state.tracker, appearance_scale)
    state.hand_on({int(i): lm.next_roi() for (lm, _), i in zip(results, ids)}, time_s)
    return ids, boxes, appearance


def frame_wh(rgb: np.ndarray) -> tuple[int, int]:
    """(width, height) of an (H, W, 3) frame: what :meth:`BoxTracker.update` takes to know the frame's edges."""
    return int(rgb.shape[1]), int(rgb.shape[0])


def identify(rgb: np.ndarray, time_s: float, results: list[Result], tracker: BoxTracker,
             appearance_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Track ids (N,) for the results from ``tracker``, their boxes (N, 4) and appearance descriptors (N, D).

    Appearance is read from each box grown by ``appearance_scale``.  The tracker may later merge an id
    into an earlier one (:meth:`BoxTracker.aliases`).
    """
    if results:
        boxes = np.array([lm.box_xyxy() for lm, _ in results])
        scores = np.array([lm.score for lm, _ in results], dtype=np.float64)
        appearance = np.array([appearance_descriptor(rgb, scaled_box(b, appearance_scale) if appearance_scale != 1.0
                                                     else b) for b in boxes])
        ids = tracker.update(time_s, boxes, scores, appearance, frame_wh=frame_wh(rgb))
    else:
        boxes, appearance, ids = np.zeros((0, 4)), np.zeros((0, 0)), np.zeros(0, dtype=np.int64)
        tracker.update(time_s, boxes, np.zeros(0), frame_wh=frame_wh(rgb))
    return ids, boxes, appearance
