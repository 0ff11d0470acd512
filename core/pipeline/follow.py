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

Carried along.  A centre held in steps lagged a moving subject by up to a band, then jumped, and the moving
astronaut's guessed hips and legs followed each jump (path error 1.57 % of the frame height, MediaPipe 1.05 %).
Following a released centre every frame until it slows measured 0.73 %, but changed who is tracked in
tests/test_body_faces.py's pan over six people (two bodies without a face instead of one).  So the held
centre is carried instead, by the move of the body's head and shoulders (:data:`ANCHOR_JOINTS`: the centre
of those points, One Euro filtered with :data:`ANCHOR_STEADYING`), on the frames where that centre moves
(filtered speed over ``ROI_CREEP_SPEED`` sides per second) and its step stands out of its own noise
(:data:`ANCHOR_MIN_SNR` times the noise std its second differences give).  The crop goes along with the
person; a still person's stays exactly held (still jitter unchanged); a hard read whose head points
scatter is not carried (the half-hidden man of the pan above, whose crop, carried by such noise, slid until
he was found twice); nor is a crop that touches another person's (:func:`_touch`).  benchmarks/bench_steadiness.py, 90 frames, path error rigcast | MediaPipe, % of the
frame height: astronaut 0.70 | 0.87 (2x: 0.64 | 0.92; held: 1.57 | 1.05 and 0.75 | 0.92), bus.jpg man
0.37 | 0.53 and 0.40 | 0.75 (held 0.38, 0.39); lag within 0.6 frame; still clips as before.
How much of that is the crop: the figure is the median over the joints both call visible, and for the
astronaut that median sits where her seen face meets her guessed shoulder, so it swings with which guessed
joints pass the visibility test (22 before, 20 after).  Over MediaPipe's own visible joints, the mean RMS
error (px) of her face and shoulders went 5.5 -> 5.4 (MediaPipe 5.0) on 90 frames, 4.1 -> 3.5 (3.4) on 60,
and of her guessed joints 80 -> 82 (68), 50 -> 49 (32): the guesses wander more than MediaPipe's with any
crop we tried (following the raw ROI every frame: 86 and 82 px; black borders instead of replicated ones:
125 and 121; the smoothing level moves them by 2 px at most), so they are the model's reading of our
crops, not the crop's steps.  Carrying side and rotation too (a similarity fitted to the head and
shoulders) was no better on these clips, and the turn and spread of so small a cluster are noisy enough to
carry hard reads.  Following the side or rotation so runs away: the guessed hips grow with the crop."""


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
    while they move slower than ``roi_creep_speed`` (see :data:`ROI_STEADYING`), a held centre carried along
    by the moving anchor points of a body, from the landmarks' own ROIs, anchor points and times: replaying
    the same ROIs and points rebuilds the same state.
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
    _filters: dict[int, _SteadiedRoi] = field(default_factory=dict)

    def hand_on(self, rois: dict[int, Roi], time_s: float | None = None,
                anchors: dict[int, np.ndarray] | None = None) -> None:
        """The ROIs the next frame follows: the ones this frame's landmarks give (at ``time_s``), filtered
        when ``roi_filter`` is set.  ``anchors`` (per key, (J', 2) px: :func:`body_anchor`), given, carry a held
        centre along while they move (see :data:`ROI_STEADYING`)."""
        if self.roi_filter is None or time_s is None:
            self.rois = rois
            return
        filters, out = {}, {}
        for key, roi in rois.items():
            crowded = any(_touch(roi, other) for k, other in rois.items() if k != key)
            old = self._filters.get(key)
            filt = old.filter if old is not None else OneEuroFilter(self.roi_filter, (4,))
            scale = roi.size if old is None else float(old.value[2])  # the steadied size: the raw one flickers
            value = filt.step(_roi_vector(roi, None if old is None else old.value), time_s, scale=scale)
            anchor = _AnchorTrack() if old is None else old.anchor
            anchor_shift = anchor.step(None if anchors is None else anchors.get(key), time_s, scale,
                                       self.roi_creep_speed)
            held = value
            if old is not None and self.roi_band > 0:
                side = old.held[2]
                carried = old.held.copy()
                if not crowded:  # near someone else, a read can slide onto them: a carried crop would follow
                    carried[:2] += anchor_shift
                d, speed = np.abs(value - carried), np.abs(filt.speed)
                # Within the band, or creeping within twice the band: held (see ROI_STEADYING).
                creep = self.roi_creep_speed
                reach = (2.0 if speed[0] + speed[1] <= creep * side else 1.0,
                         2.0 if speed[2] <= creep * side and speed[3] <= creep else 1.0)
                held = value.copy()
                if d[0] + d[1] <= reach[0] * self.roi_band * side:
                    held[:2] = carried[:2]
                if d[2] <= reach[1] * self.roi_shape_band * side and d[3] <= reach[1] * self.roi_shape_band:
                    held[2:] = old.held[2:]
            filters[key] = _SteadiedRoi(filt, value, held, anchor)
            out[key] = Roi(center_xy=held[:2], size=float(held[2]), rotation=normalize_radians(float(held[3])))
        self._filters = filters
        self.rois = out


ANCHOR_JOINTS = np.arange(13)
"""BlazePose's nose, eyes, ears, mouth corners and shoulders: the anchor a held body ROI is carried by."""
ANCHOR_STEADYING = OneEuroConfig(min_cutoff=0.3, beta=20.0, d_cutoff=1.0)
ANCHOR_NOISE_MEMORY = 0.1  # weight of the newest squared second difference in the anchor's noise estimate
ANCHOR_MIN_SNR = 1.0  # see _AnchorTrack.step


def _touch(a: Roi, b: Roi) -> bool:
    """Whether two ROIs come within half their summed sides of each other (centre to centre).  A held ROI
    touching another person's is not carried: as a person goes behind another, their landmarks slide onto
    the one in front, and a crop carried by them slid along (tests/test_multiperson.py's crossing: 37 px
    off him, against 21 px held)."""
    return float(np.hypot(*(a.center_xy - b.center_xy))) < 0.5 * (a.size + b.size)


def body_anchor(lm) -> np.ndarray | None:
    """(J', 2) px a body's :data:`ANCHOR_JOINTS` (:func:`anchor_of`), or None for landmarks without them
    (faces).  The points are rounded to float32, as the chunk cache stores them, so a resumed run replays the
    same."""
    lm = getattr(lm, "landmarks", lm)  # a person just found in a box (body._TrackedBox)
    xy = getattr(lm, "xy", None)
    if xy is None or getattr(lm, "visibility", None) is None or len(xy) < len(ANCHOR_JOINTS):
        return None
    return anchor_of(np.asarray(xy, np.float32))


def anchor_of(xy: np.ndarray) -> np.ndarray:
    """(J', 2) float64 ``xy`` (J, 2)'s :data:`ANCHOR_JOINTS`."""
    return np.asarray(xy, np.float64)[ANCHOR_JOINTS]


@dataclass
class _AnchorTrack:
    """A body's anchor (the centre of its anchor points) over time: One Euro filtered
    (:data:`ANCHOR_STEADYING`), and its noise (the running mean of the raw centre's squared second
    differences, px^2)."""

    filter: OneEuroFilter = field(default_factory=lambda: OneEuroFilter(ANCHOR_STEADYING, (2,)))
    at: np.ndarray | None = None  # filtered centre, px
    raw: tuple = ()  # the last two raw centres
    noise2: float | None = None

    def step(self, points: np.ndarray | None, time_s: float, side: float, creep_speed: float) -> np.ndarray:
        """Take this frame's anchor ``points`` (J', 2) px (None: none this frame, the track starts again);
        return how far a held centre of ``side`` px is carried, (2,) px: the filtered centre's move since the
        last frame while it moves (filtered speed over ``creep_speed`` sides per second) and that move stands
        out of its noise (a step of ``ANCHOR_MIN_SNR`` times the noise's std), else zero."""
        if points is None or not np.all(np.isfinite(points)):
            self.filter, self.at, self.raw, self.noise2 = OneEuroFilter(ANCHOR_STEADYING, (2,)), None, (), None
            return np.zeros(2)
        anchor = np.asarray(points, np.float64).mean(axis=0)
        before = self.at
        self.at = self.filter.step(anchor, time_s, scale=side)
        if len(self.raw) == 2:
            d2 = float(np.sum((anchor - 2 * self.raw[1] + self.raw[0]) ** 2))
            self.noise2 = d2 if self.noise2 is None else self.noise2 + ANCHOR_NOISE_MEMORY * (d2 - self.noise2)
        self.raw = (self.raw[-1], anchor) if self.raw else (anchor,)
        if before is None or self.noise2 is None:
            return np.zeros(2)
        shift = self.at - before
        # White noise of std s per axis gives second differences of 12 s^2 (two axes): s = sqrt(noise2 / 12).
        moving = (np.hypot(*self.filter.speed) > creep_speed * side
                  and np.hypot(*shift) > ANCHOR_MIN_SNR * np.sqrt(self.noise2 / 12.0))
        return shift if moving else np.zeros(2)


@dataclass
class _SteadiedRoi:
    """One key's steadied ROI: its filter, the filtered (4,) ``value``, the (4,) ``held`` one handed on, and
    the anchor that carries the held centre."""

    filter: OneEuroFilter
    value: np.ndarray
    held: np.ndarray
    anchor: _AnchorTrack


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
    keyed = {int(i): lm for (lm, _), i in zip(results, ids)}
    state.hand_on({i: lm.next_roi() for i, lm in keyed.items()}, time_s,
                  {i: body_anchor(lm) for i, lm in keyed.items()})
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
