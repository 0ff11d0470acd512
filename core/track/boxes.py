"""Multi-person identity tracking on boxes: SORT with a time-based Kalman filter,
appearance re-identification and re-acquisition of lost tracks.

Legend: N boxes in one frame, M tracks, D appearance descriptor length.
Boxes are ``xyxy`` pixels: (x1, y1, x2, y2).

Motion model.  Each track is a Kalman filter on (cx, cy, w, h) and their
velocities, in pixels and pixels per second.  A Kalman filter rather than an
alpha-beta filter because (a) its gains follow the true time step, so
variable-frame-rate footage and skipped frames need no special case, (b) its
covariance grows while a track is unseen, and (c) the detection score can set
the measurement noise.  All noise levels are fractions of the box height, so
the tracker behaves the same for a person far away and close up.  While a
track is lost its velocity decays with time constant ``LOST_VELOCITY_TAU_S``
(exact integration of an exponentially damped velocity), so a person who
stopped behind an occluder is not extrapolated out of the frame.

Association.  For every (track, box) pair, with the track's box predicted at
the frame's time:

* motion cost = 0.5 (1 - IoU) + 0.5 min(d / r, 1), where d is the centre
  distance and r the gate radius (the predicted box size sqrt(w h), grown by
  up to 2x as the track stays lost).  The distance term still ranks pairs
  when IoU is 0 (fast motion, lost tracks) or saturates (full overlap);
* with descriptors, cost = (1 - a) motion + a (1 - cosine similarity), with
  a = ``appearance_weight`` for tracks on their own, and at least
  ``INTERACTION_APPEARANCE_WEIGHT`` for tracks whose box overlaps another
  track's now or did within ``INTERACTION_MEMORY_S``, and for lost tracks.
  Around an interaction the constant-velocity prediction is least reliable
  (people stop, turn back, or change pace while overlapping, and right after a
  wrong match the filter's momentum defends the wrong pairing), while
  appearance, frozen from before the overlap, is what can tell them apart;
* lost tracks pay up to ``LOST_PENALTY`` more, so a live track wins ties;
* a pair is gated out when IoU < ``iou_threshold`` and d > r, and, for lost
  tracks, when the appearance distance exceeds ``LOST_APPEARANCE_GATE``.

Lost tracks.  A person may be hidden, or walk out of the frame and back, so a
lost track is kept for a time budget in seconds: ``max_lost_s`` when it was
lost inside the frame, ``max_exit_s`` when it was lost at a frame edge (its
last box within ``EDGE_GAP`` box sizes of that edge; needs ``frame_wh``).  A
track lost inside the frame may take a box whose centre lies near the path
between where it was last seen and where its last velocity would have carried
it (it may have stopped, or walked on behind the occluder): within the gate
radius plus ``LOST_SPEED`` box heights per second lost, and within
``LOST_REACH`` box heights of its prediction.  A track that left at
an edge may only take a box whose centre is within ``ENTRY_DEPTH`` box heights
of that same edge (plus ``ENTRY_LATE_S`` seconds at the speed it left at, in
box heights per second), of a similar height; its motion prediction means nothing
after it has left.

Re-identification.  A returning person is often first seen half hidden or half
outside the frame, where the appearance gate fails, and is given a new id.  A
young track (at most ``YOUNG_S`` old, born after a lost track was last seen)
whose first box passed that lost track's motion or edge gate, and whose clean
appearance now matches it within ``REID_APPEARANCE_GATE``, is merged into the
lost track: the lost track's id goes on, and :meth:`BoxTracker.aliases` maps
the young id to it so that callers can relabel the frames already given out.

The assignment is one Hungarian solve (scipy's linear_sum_assignment) over
live and lost tracks together, so a person reappearing beside a live one is
not handed to it first.  A track's descriptor is a running average, updated
only from boxes that do not overlap another box (an occluded crop shows the
occluder's colours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MEASUREMENT_STD = 0.03
"""Std of a measured cx, cy, w or h, in box heights, for a detection of score 1."""
CENTRE_ACCEL_PSD = 16.0
"""Spectral density of the centre's white-noise acceleration, box heights^2 / s^3:
one second unseen adds sqrt(16) = 4 box heights per second of velocity uncertainty.
Loose enough for dance and sport, where people stop and turn within a few frames;
on the crossing benches in tests/test_track.py a stiffer 4 let momentum swap ids."""
SIZE_ACCEL_PSD = 0.25
"""The same for width and height, which change more slowly."""
INITIAL_VELOCITY_STD = 1.0
"""Std of a new track's unknown velocity, box heights per second."""
LOST_VELOCITY_TAU_S = 0.5
"""Time constant of the velocity decay while a track is lost, seconds."""
LOST_APPEARANCE_GATE = 0.5
"""Largest appearance distance (1 - cosine) at which a lost track may be re-acquired."""
LOST_PENALTY = 0.1
"""Extra cost of matching a track lost for ``max_lost_s`` (linear in the time lost)."""
FEATURE_MOMENTUM = 0.9
"""Weight of the old descriptor in a track's running average."""
OCCLUDED_IOU = 0.2
"""A box overlapping another box by more than this IoU teaches no appearance."""
INTERACTION_IOU = 0.1
"""Two tracks whose predicted boxes overlap by more than this IoU are interacting."""
INTERACTION_MEMORY_S = 0.5
"""How long after an interaction a track keeps the raised appearance weight, seconds."""
INTERACTION_APPEARANCE_WEIGHT = 0.7
"""Least appearance weight for interacting and lost tracks.  Too high and contaminated
crops of overlapping people decide matches; too low and momentum keeps a swap."""
LOST_SPEED = 1.5
"""How fast a lost person may have moved off their path, box heights per second (walking is about 0.8)."""
LOST_REACH = 2.0
"""A track lost inside the frame takes only a box whose centre is within this many of its heights of its
prediction: its path gate widens by ``LOST_SPEED`` heights a second, and after a second or two would take
someone else's box across the frame."""
EDGE_GAP = 0.5
"""A track whose last box came within this many box widths (heights, for the top and bottom) of a frame
edge is taken to have left through that edge when it is lost."""
EDGE_SPEED = 0.1
"""... while heading towards it at least this fast, box heights per second (someone standing at an edge and
then hidden has not left)."""
ENTRY_DEPTH = 1.5
"""A track that left at an edge may take a box whose centre is within this many box heights of that edge
(the detector may first see a returning person some way in)."""
ENTRY_LATE_S = 0.5
"""... plus as far as they walk in this long at the speed they left at (heights per second): how late the
detector may first find them (every 5 frames while someone is lost, and a small person cut by the edge is
often missed).  The composed re-entry walker, a tenth of a 720-px frame tall, leaves at 6.7 heights a second
and was first found 3.9 heights in, 19 frames after he came back."""
ENTRY_SIZE_RATIO = 2.0
"""... and whose height is within this factor of the height it left with (often cut by the edge)."""
YOUNG_S = 1.0
"""A track at most this old may be merged into a lost track it matches (re-identification)."""
REID_APPEARANCE_GATE = 0.3
"""Largest appearance distance at which a young track is merged into a lost track."""
_GATED = 1e6
_ACCEL_PSD = np.array([CENTRE_ACCEL_PSD, CENTRE_ACCEL_PSD, SIZE_ACCEL_PSD, SIZE_ACCEL_PSD])
_ACCEL_PSD.setflags(write=False)
_EYE4 = np.eye(4)
_EYE4.setflags(write=False)
# The process noise's (8, 8) entries: diagonals of the position, position-rate, rate-position and rate blocks.
_NOISE_ROWS = np.concatenate([np.arange(4), np.arange(4), np.arange(4, 8), np.arange(4, 8)])
_NOISE_COLS = np.concatenate([np.arange(4), np.arange(4, 8), np.arange(4), np.arange(4, 8)])


def _as_xyxy(mean: np.ndarray) -> np.ndarray:
    centre, half = mean[..., 0:2], mean[..., 2:4] / 2
    return np.concatenate([centre - half, centre + half], axis=-1)


def _as_cxcywh(boxes_xyxy: np.ndarray) -> np.ndarray:
    low, high = boxes_xyxy[..., 0:2], boxes_xyxy[..., 2:4]
    return np.concatenate([(low + high) / 2, high - low], axis=-1)


def box_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(M, N) intersection over union of boxes ``a_xyxy`` (M, 4) and ``b_xyxy`` (N, 4)."""
    a = np.asarray(a_xyxy, dtype=np.float64)[:, None, :]
    b = np.asarray(b_xyxy, dtype=np.float64)[None, :, :]
    extent = np.maximum(np.minimum(a[..., 2:4], b[..., 2:4]) - np.maximum(a[..., 0:2], b[..., 0:2]), 0.0)
    inter = extent[..., 0] * extent[..., 1]
    size_a, size_b = a[..., 2:4] - a[..., 0:2], b[..., 2:4] - b[..., 0:2]
    area_a = size_a[..., 0] * size_a[..., 1]
    area_b = size_b[..., 0] * size_b[..., 1]
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


@dataclass
class _Track:
    """Mutable tracker-internal state: ``mean`` (8,) = cx, cy, w, h [px] and their rates [px/s], ``cov`` (8, 8)."""

    track_id: int
    mean: np.ndarray
    cov: np.ndarray
    state_time_s: float
    last_hit_s: float
    hits: int
    feature: np.ndarray | None
    interacting_until_s: float = -math.inf
    first_hit_s: float = 0.0
    first_cxcywh: np.ndarray | None = None  # (4,) the first measured box, for re-identification
    last_cxcywh: np.ndarray | None = None  # (4,) the latest measured box
    last_velocity: np.ndarray | None = None  # (2,) centre velocity px/s when last matched
    last_height: float = 0.0  # the filtered box height when last matched, px
    exit_edge: int = -1  # frame edge the track left through when lost (0 left, 1 top, 2 right, 3 bottom)


def _propagate(mean: np.ndarray, cov: np.ndarray, dt: float, damped: bool) -> tuple[np.ndarray, np.ndarray]:
    """Kalman predict by ``dt`` seconds: constant velocity, or exponentially decaying velocity if ``damped``."""
    if dt <= 0:
        return mean.copy(), cov.copy()
    if damped:
        decay = math.exp(-dt / LOST_VELOCITY_TAU_S)
        reach = LOST_VELOCITY_TAU_S * (1.0 - decay)  # integral of the decaying velocity over dt
    else:
        decay, reach = 1.0, dt
    # transition = [[I, reach I], [0, decay I]], applied block-wise (the same products as the (8, 8) matrix).
    # Continuous white-noise acceleration, discretised exactly for the undamped case
    # (and used as is for the damped one, where it is slightly conservative).
    h = max(float(mean[3]), 1.0)
    psd = _ACCEL_PSD * (h * h)
    out = np.empty(8)
    out[:4] = mean[:4] + reach * mean[4:]
    out[4:] = decay * mean[4:]
    out[2:4] = np.maximum(out[2:4], 1.0)
    # rows: T cov; then (T cov) T^T by columns.
    tc = np.empty((8, 8))
    tc[:4] = cov[:4] + reach * cov[4:]
    tc[4:] = decay * cov[4:]
    new_cov = np.empty((8, 8))
    new_cov[:, :4] = tc[:, :4] + reach * tc[:, 4:]
    new_cov[:, 4:] = decay * tc[:, 4:]
    new_cov[_NOISE_ROWS, _NOISE_COLS] += np.outer([dt ** 3 / 3.0, dt ** 2 / 2.0, dt ** 2 / 2.0, dt], psd).ravel()
    return out, new_cov


def _solve_spd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a^-1 b`` for a small symmetric positive-definite (K, K) ``a`` and ``b`` (K, M): OpenCV's Cholesky
    solve, 2.5 us for K = 4, M = 8, against 9 for ``np.linalg.solve`` (whose OpenBLAS LU also wakes its
    worker threads, which costs milliseconds per call on a busy machine) and 27 for elimination on
    Python floats.  ``np.linalg.solve`` only if ``a`` is not numerically positive definite."""
    import cv2

    ok, x = cv2.solve(a, b, flags=cv2.DECOMP_CHOLESKY)
    return x if ok else np.linalg.solve(a, b)


def _correct(mean: np.ndarray, cov: np.ndarray, cxcywh: np.ndarray, score: float) -> tuple[np.ndarray, np.ndarray]:
    """Kalman update with a measured (cx, cy, w, h); a low ``score`` means a noisier measurement."""
    h = max(float(cxcywh[3]), 1.0)
    meas_var = (MEASUREMENT_STD * h) ** 2 / min(max(float(score), 0.05), 1.0)
    innovation_cov = cov[:4, :4] + meas_var * _EYE4
    gain = _solve_spd(innovation_cov, cov[:4, :]).T  # (8, 4) = P H^T S^-1 (S symmetric)
    mean = mean + gain @ (cxcywh - mean[:4])
    mean[2:4] = np.maximum(mean[2:4], 1.0)
    cov = cov - gain @ cov[:4, :]
    return mean, 0.5 * (cov + cov.T)


def _edge_near(cxcywh: np.ndarray, velocity_xy: np.ndarray, frame_wh: tuple[int, int] | None) -> int:
    """The frame edge (0 left, 1 top, 2 right, 3 bottom) that box ``cxcywh`` (4,), moving at ``velocity_xy``
    (2,) px/s, is leaving by: within ``EDGE_GAP`` box sizes of it and heading to it at ``EDGE_SPEED`` box
    heights per second or more; the nearest if several; -1 for none or an unknown frame size."""
    if frame_wh is None:
        return -1
    (cx, cy, w, h), (width, height) = cxcywh, frame_wh
    gaps = np.array([(cx - w / 2) / w, (cy - h / 2) / h, (width - cx - w / 2) / w, (height - cy - h / 2) / h])
    gaps[(velocity_xy[[0, 1, 0, 1]] * [-1, -1, 1, 1]) < EDGE_SPEED * h] = np.inf  # not heading out that way
    edge = int(np.argmin(gaps))
    return edge if gaps[edge] <= EDGE_GAP else -1


def _remember_box(track: _Track, box_xyxy: np.ndarray, frame_wh: tuple[int, int] | None) -> None:
    """Note a matched box: where the track was last seen, how fast it moved, which edge it is leaving by."""
    track.last_cxcywh = _as_cxcywh(box_xyxy)
    track.last_velocity = track.mean[4:6].copy()
    track.last_height = float(track.mean[3])
    track.exit_edge = _edge_near(track.last_cxcywh, track.last_velocity, frame_wh)


def _initiate(cxcywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kalman state of a new track at a measured (cx, cy, w, h): at rest, with an uncertain velocity."""
    h = max(float(cxcywh[3]), 1.0)
    cov = np.diag(np.concatenate([np.full(4, (MEASUREMENT_STD * h) ** 2), np.full(4, (INITIAL_VELOCITY_STD * h) ** 2)]))
    return np.concatenate([cxcywh, np.zeros(4)]), cov


def _check_frame(boxes_xyxy: np.ndarray, scores: np.ndarray, appearance: np.ndarray | None,
                 known_dims: set[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Validate one frame's inputs; return boxes (N, 4), scores (N,), unit descriptors (N, D) or None, usable (N,)."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes_xyxy must be (N, 4), got {boxes.shape}")
    num_boxes = boxes.shape[0]
    if not (np.isfinite(boxes).all() and (boxes[:, 2:] > boxes[:, :2]).all()):
        bad = ~np.all(np.isfinite(boxes), axis=1) | np.any(boxes[:, 2:] <= boxes[:, :2], axis=1)
        row = int(np.argmax(bad))
        raise ValueError(f"boxes_xyxy must be finite with x2 > x1 and y2 > y1, got {boxes[row].tolist()} at row {row}")
    scores = np.asarray(scores, dtype=np.float64).reshape(-1) if np.size(scores) else np.zeros(0)
    if scores.shape != (num_boxes,) or not np.isfinite(scores).all():
        raise ValueError(f"scores must be (N,) finite with N={num_boxes}, got shape {np.shape(scores)}")
    if appearance is None:
        return boxes, scores, None, np.zeros(num_boxes, dtype=bool)
    appearance = np.asarray(appearance, dtype=np.float64)
    if appearance.size == 0 and num_boxes == 0:
        appearance = np.zeros((0, appearance.shape[1] if appearance.ndim == 2 else 0))
    if appearance.ndim != 2 or appearance.shape[0] != num_boxes:
        raise ValueError(f"appearance must be (N, D) with N={num_boxes}, got {appearance.shape}")
    if num_boxes and known_dims and appearance.shape[1] not in known_dims:
        raise ValueError(f"appearance must be (N, D) with D={sorted(known_dims)[0]} as before, got {appearance.shape}")
    norms = np.sqrt(np.einsum("nd,nd->n", appearance, appearance))
    usable = np.isfinite(norms) & (norms > 1e-9)
    if usable.all():
        return boxes, scores, appearance / norms[:, None], usable
    unit = np.zeros_like(appearance)
    unit[usable] = appearance[usable] / norms[usable, None]
    return boxes, scores, unit, usable


class BoxTracker:
    """Gives each person box a track id that follows the person across frames.

    ``iou_threshold``: pairs with a lower IoU are matched only if their
    centres are within the gate radius.  ``max_lost_s``: how long an unseen
    track lost inside the frame is kept for re-acquisition under its id;
    ``max_exit_s``: the same for a track that left at a frame edge (known
    only when :meth:`update` is given ``frame_wh``).  ``min_hits``: matches
    before a track is confirmed (listed by :meth:`live_ids`); an unconfirmed
    track that misses a frame is dropped.  ``appearance_weight``: share of the
    appearance distance in the cost when descriptors are given.  Ids start at
    0 and are never reused.
    """

    def __init__(self, iou_threshold: float = 0.2, max_lost_s: float = 2.0, min_hits: int = 1,
                 appearance_weight: float = 0.3, max_exit_s: float = 3.0) -> None:
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
        for name, value in (("max_lost_s", max_lost_s), ("max_exit_s", max_exit_s)):
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value}")
        if int(min_hits) != min_hits or min_hits < 1:
            raise ValueError(f"min_hits must be an integer >= 1, got {min_hits}")
        if not 0.0 <= appearance_weight <= 1.0:
            raise ValueError(f"appearance_weight must be in [0, 1], got {appearance_weight}")
        self.iou_threshold = float(iou_threshold)
        self.max_lost_s = float(max_lost_s)
        self.max_exit_s = float(max_exit_s)
        self.min_hits = int(min_hits)
        self.appearance_weight = float(appearance_weight)
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._time_s: float | None = None
        self._aliases: dict[int, int] = {}
        self._frame_wh: tuple[int, int] | None = None  # of the latest update given one (see search_boxes)

    # -- queries ---------------------------------------------------------------------------------

    def _is_lost(self, track: _Track) -> bool:
        return track.last_hit_s < (self._time_s if self._time_s is not None else -math.inf)

    def live_ids(self) -> list[int]:
        """Ids of confirmed tracks matched at the latest update."""
        return [tr.track_id for tr in self._tracks if tr.hits >= self.min_hits and not self._is_lost(tr)]

    def lost_ids(self) -> list[int]:
        """Ids of confirmed tracks unseen at the latest update but still kept for re-acquisition."""
        return [tr.track_id for tr in self._tracks if tr.hits >= self.min_hits and self._is_lost(tr)]

    def aliases(self) -> dict[int, int]:
        """{retired id: id it was merged into}: young tracks re-identified as a lost person (resolved, so
        every value is an id that was not retired)."""
        return dict(self._aliases)

    def _budget(self, track: _Track) -> float:
        return self.max_exit_s if track.exit_edge >= 0 else self.max_lost_s

    @property
    def time_s(self) -> float | None:
        """Time of the latest update, seconds (None before the first)."""
        return self._time_s

    def predict(self, time_s: float, include_lost: bool = False) -> dict[int, np.ndarray]:
        """Predicted (4,) xyxy box at ``time_s`` for each live track id (and lost ones if ``include_lost``).

        Does not change the tracker.  ``time_s`` must not precede the latest update.
        """
        time_s = self._check_time(time_s)
        wanted = set(self.live_ids()) | (set(self.lost_ids()) if include_lost else set())
        out = {}
        for tr in self._tracks:
            if tr.track_id in wanted:
                mean, _ = _propagate(tr.mean, tr.cov, time_s - tr.state_time_s, damped=self._is_lost(tr))
                out[tr.track_id] = _as_xyxy(mean)
        return out

    def search_boxes(self, time_s: float) -> dict[int, np.ndarray]:
        """Where each lost track (:meth:`lost_ids`) may be found at ``time_s``: a (4,) xyxy box in px per id.

        Where its lost gate (:meth:`_lost_gate`, which re-identification also asks of a young track) is
        centred, rather than its prediction: that prediction slows to a stop within ``LOST_VELOCITY_TAU_S`` (a
        person who stopped behind an occluder is not carried away), where a person walking on behind it comes
        out further along; and for a track that left at an edge it runs on beyond the edge (shrinking, as the
        edge cut its last boxes), so a search around it reads nothing of the frame where they come back.

        * A track lost inside the frame: the box around its last box and that box carried on by its last
          velocity for the time lost (the path its gate is centred on; the caller adds a margin).
        * A track that left at a frame edge: the strip along that edge where a person coming back in is first
          seen whole, ``ENTRY_DEPTH`` box heights deep (its gate reaches further, by the walk of ``ENTRY_LATE_S``,
          for a detector that finds them late; the strip is searched every few frames as long as it is kept),
          and along the edge the extent of its last box (at least its height, along a side edge).  Deeper, a
          search reads tiles over people standing further in, which changes what the detector reports of them:
          a strip as deep as the gate (304 px) made the composed re-entry clip's bystander, a third of a
          640x360 frame tall, lose the one whole-frame box that confirmed him (IDF1 0.990 -> 0.511).

        ``time_s`` must not precede the latest update."""
        time_s = self._check_time(time_s)
        lost = set(self.lost_ids())
        out = {}
        for tr in self._tracks:
            if tr.track_id not in lost:
                continue
            last = tr.last_cxcywh if tr.last_cxcywh is not None else tr.mean[:4]
            height = max(float(last[3]), tr.last_height, 1.0)
            if tr.exit_edge < 0 or self._frame_wh is None:
                velocity = tr.last_velocity if tr.last_velocity is not None else np.zeros(2)
                lost_s = max(time_s - tr.last_hit_s, 0.0)
                box, step = _as_xyxy(last), velocity * lost_s
                out[tr.track_id] = np.concatenate([np.minimum(box[:2], box[:2] + step),
                                                   np.maximum(box[2:], box[2:] + step)])
                continue
            axis = tr.exit_edge % 2  # 0: the left or right edge, across x; 1: the top or bottom, across y
            depth = ENTRY_DEPTH * height
            box = _as_xyxy(last)
            if axis == 0:  # along a side edge, the person's whole height (the edge cut their last boxes' width)
                box[1], box[3] = min(box[1], last[1] - height / 2), max(box[3], last[1] + height / 2)
            edge = 0.0 if tr.exit_edge < 2 else float(self._frame_wh[axis])
            box[axis], box[axis + 2] = (edge, edge + depth) if tr.exit_edge < 2 else (edge - depth, edge)
            out[tr.track_id] = box
        return out

    # -- update ----------------------------------------------------------------------------------

    def _check_time(self, time_s: float) -> float:
        time_s = float(time_s)
        if not math.isfinite(time_s):
            raise ValueError(f"time_s must be finite, got {time_s}")
        if self._time_s is not None and time_s < self._time_s:
            raise ValueError(f"time_s must not go backwards: latest update was at {self._time_s} s, got {time_s} s")
        return time_s

    def update(self, time_s: float, boxes_xyxy: np.ndarray, scores: np.ndarray,
               appearance: np.ndarray | None = None, frame_wh: tuple[int, int] | None = None) -> np.ndarray:
        """Match this frame's boxes to tracks; return (N,) int64 track ids, new ids for unmatched boxes.

        ``boxes_xyxy`` (N, 4) pixels, ``scores`` (N,) in [0, 1] (a low score
        makes the box a noisier measurement), ``appearance`` (N, D) optional
        descriptors such as :func:`appearance_descriptor` (all-zero rows mean
        unknown).  ``time_s`` is the frame's time in seconds, non-decreasing.
        ``frame_wh`` (width, height) in pixels lets tracks that leave at a
        frame edge be re-acquired at that edge (see the module docstring).
        """
        time_s = self._check_time(time_s)
        known_dims = {tr.feature.shape[0] for tr in self._tracks if tr.feature is not None}
        boxes, scores, unit, usable = _check_frame(boxes_xyxy, scores, appearance, known_dims)
        num_boxes = boxes.shape[0]

        self._tracks = [tr for tr in self._tracks if time_s - tr.last_hit_s <= self._budget(tr)]
        lost = np.array([self._is_lost(tr) for tr in self._tracks], dtype=bool)
        for tr, tr_lost in zip(self._tracks, lost):
            tr.mean, tr.cov = _propagate(tr.mean, tr.cov, time_s - tr.state_time_s, damped=bool(tr_lost))
            tr.state_time_s = time_s
        self._time_s = time_s
        if frame_wh is not None:
            self._frame_wh = (int(frame_wh[0]), int(frame_wh[1]))
        if len(self._tracks) > 1:
            predicted = _as_xyxy(np.array([tr.mean for tr in self._tracks]))
            overlap = box_iou(predicted, predicted)
            np.fill_diagonal(overlap, 0.0)
            for tr, tr_overlap in zip(self._tracks, overlap.max(axis=1)):
                if tr_overlap > INTERACTION_IOU:
                    tr.interacting_until_s = time_s + INTERACTION_MEMORY_S

        ids = np.full(num_boxes, -1, dtype=np.int64)
        matched_tracks: set[int] = set()
        if self._tracks and num_boxes:
            for row, col in self._associate(boxes, unit, usable, lost, frame_wh):
                tr = self._tracks[row]
                tr.mean, tr.cov = _correct(tr.mean, tr.cov, _as_cxcywh(boxes[col]), scores[col])
                tr.last_hit_s = time_s
                tr.hits += 1
                _remember_box(tr, boxes[col], frame_wh)
                ids[col] = tr.track_id
                matched_tracks.add(row)

        # Learn appearance only from boxes that overlap no other box.
        if unit is not None and num_boxes == 1:  # nothing to overlap
            clean = usable
        elif unit is not None and num_boxes:
            overlap = box_iou(boxes, boxes)
            np.fill_diagonal(overlap, 0.0)
            clean = usable & (overlap.max(axis=1, initial=0.0) <= OCCLUDED_IOU)
        else:
            clean = np.zeros(num_boxes, dtype=bool)
        by_id = {tr.track_id: tr for tr in self._tracks}
        for col in np.nonzero((ids >= 0) & clean)[0]:
            tr = by_id[int(ids[col])]
            if tr.feature is None:
                blended = unit[col]
            else:
                blended = FEATURE_MOMENTUM * tr.feature + (1 - FEATURE_MOMENTUM) * unit[col]
            tr.feature = blended / max(float(np.linalg.norm(blended)), 1e-12)

        # Unconfirmed tracks that missed this frame are dropped (they were likely false positives).
        self._tracks = [tr for i, tr in enumerate(self._tracks) if i in matched_tracks or tr.hits >= self.min_hits]

        for col in np.nonzero(ids < 0)[0]:
            mean, cov = _initiate(_as_cxcywh(boxes[col]))
            feature = unit[col].copy() if clean[col] else None
            track = _Track(self._next_id, mean, cov, time_s, time_s, 1, feature, first_hit_s=time_s,
                           first_cxcywh=_as_cxcywh(boxes[col]))
            _remember_box(track, boxes[col], frame_wh)
            self._tracks.append(track)
            ids[col] = self._next_id
            self._next_id += 1
        if any(tr.last_hit_s < time_s for tr in self._tracks):
            self._reidentify(ids, frame_wh)
        return ids

    def _reidentify(self, ids: np.ndarray, frame_wh: tuple[int, int] | None) -> None:
        """Merge young tracks into the lost tracks they are (see the module docstring); relabels ``ids``."""
        time_s = self._time_s
        for young in [tr for tr in self._tracks if tr.last_hit_s == time_s and tr.feature is not None
                      and time_s - tr.first_hit_s <= YOUNG_S and tr.first_cxcywh is not None]:
            best, best_distance = None, REID_APPEARANCE_GATE
            for old in self._tracks:
                if (old is young or old.feature is None or old.hits < self.min_hits
                        or old.last_hit_s >= young.first_hit_s or old.feature.shape != young.feature.shape):
                    continue
                distance = 1.0 - float(np.clip(old.feature @ young.feature, 0.0, 1.0))
                if distance <= best_distance and self._lost_gate(old, young.first_cxcywh[None],
                                                                 young.first_hit_s - old.last_hit_s, frame_wh)[0]:
                    best, best_distance = old, distance
            if best is None:
                continue
            # The lost track goes on with the young one's state; the young id is retired.
            best.mean, best.cov, best.state_time_s = young.mean, young.cov, young.state_time_s
            best.last_hit_s, best.hits = young.last_hit_s, best.hits + young.hits
            best.last_cxcywh, best.last_velocity, best.last_height = young.last_cxcywh, young.last_velocity, \
                young.last_height
            best.exit_edge = young.exit_edge
            best.interacting_until_s = max(best.interacting_until_s, young.interacting_until_s)
            blended = FEATURE_MOMENTUM * best.feature + (1 - FEATURE_MOMENTUM) * young.feature
            best.feature = blended / max(float(np.linalg.norm(blended)), 1e-12)
            self._tracks.remove(young)
            for retired, kept in self._aliases.items():
                if kept == young.track_id:
                    self._aliases[retired] = best.track_id
            self._aliases[young.track_id] = best.track_id
            ids[ids == young.track_id] = best.track_id

    def _lost_gate(self, track: _Track, cxcywh: np.ndarray, lost_s: float,
                   frame_wh: tuple[int, int] | None) -> np.ndarray:
        """(N,) whether boxes ``cxcywh`` (N, 4) may be the lost ``track`` after ``lost_s`` seconds unseen."""
        last = track.last_cxcywh if track.last_cxcywh is not None else track.mean[:4]
        # A box cut by the frame edge shrinks faster than the filtered height, which sets the scale then.
        height = max(float(last[3]), float(track.last_height), 1.0)
        centres = cxcywh[:, :2]
        if track.exit_edge >= 0 and frame_wh is not None:
            axis = track.exit_edge % 2  # 0: left/right edges measure x, 1: top/bottom measure y
            edge = 0.0 if track.exit_edge < 2 else float(frame_wh[axis])
            # A track is often last seen cut by the edge, so the new box's height also sets the scale.
            # A fast walker is some way in by the time the detector finds them: the depth grows with the speed
            # they left at, in their heights per second (see ENTRY_LATE_S).
            velocity = track.last_velocity if track.last_velocity is not None else np.zeros(2)
            depth = ENTRY_DEPTH + ENTRY_LATE_S * float(np.hypot(*velocity)) / height
            near_edge = np.abs(centres[:, axis] - edge) <= depth * np.maximum(cxcywh[:, 3], height)
            ratio = cxcywh[:, 3] / height
            return near_edge & (ratio <= ENTRY_SIZE_RATIO) & (ratio >= 1.0 / ENTRY_SIZE_RATIO)
        # Distance to the path from the last seen centre to where the last velocity would have taken it.
        start = last[:2]
        velocity = track.last_velocity if track.last_velocity is not None else np.zeros(2)
        step = velocity * max(lost_s, 0.0)
        along = np.clip(((centres - start) @ step) / max(float(step @ step), 1e-9), 0.0, 1.0)
        off_path = np.linalg.norm(centres - (start + along[:, None] * step), axis=1)
        return off_path <= math.sqrt(max(float(last[2]), 1.0) * height) + LOST_SPEED * height * max(lost_s, 0.0)

    def _associate(self, boxes: np.ndarray, unit: np.ndarray | None, usable: np.ndarray,
                   lost: np.ndarray, frame_wh: tuple[int, int] | None) -> list[tuple[int, int]]:
        """(track row, box column) pairs matching tracks, already predicted to this frame, to ``boxes`` (N, 4)."""

        means = np.array([tr.mean for tr in self._tracks])  # (M, 8); np.array is lighter than np.stack
        predicted = _as_xyxy(means)
        iou = box_iou(predicted, boxes)
        centres = _as_cxcywh(boxes)[:, :2]
        offset = means[:, None, :2] - centres[None, :, :]
        distance = np.sqrt(np.sum(offset * offset, axis=2))  # as np.linalg.norm(offset, axis=2)
        lost_s = np.array([self._time_s - tr.last_hit_s for tr in self._tracks])
        interacting = np.array([tr.interacting_until_s >= self._time_s for tr in self._tracks], dtype=bool)
        budget = np.array([self._budget(tr) for tr in self._tracks])
        lost_fraction = np.minimum(np.maximum(lost_s / np.maximum(budget, 1e-9), 0.0), 1.0)
        radius = np.sqrt(means[:, 2] * means[:, 3]) * (1.0 + np.where(lost, lost_fraction, 0.0))
        gate_ok = (iou >= self.iou_threshold) | (distance <= radius[:, None])
        if lost.any():
            cxcywh = _as_cxcywh(boxes)
            for row in np.nonzero(lost)[0]:
                tr = self._tracks[row]
                exited = tr.exit_edge >= 0 and frame_wh is not None
                gate_ok[row] = (False if exited else gate_ok[row]) | self._lost_gate(tr, cxcywh, lost_s[row], frame_wh)
                if not exited:  # and near its prediction, however long lost (see LOST_REACH)
                    gate_ok[row] &= distance[row] <= LOST_REACH * max(float(means[row, 3]), tr.last_height, 1.0)
        cost = 0.5 * (1.0 - iou) + 0.5 * np.minimum(distance / radius[:, None], 1.0)

        if unit is not None:
            features = [tr.feature for tr in self._tracks]
            has_feature = np.array([f is not None and f.shape[0] == unit.shape[1] for f in features], dtype=bool)
            if has_feature.any() and usable.any():
                track_unit = np.array([f if ok else np.zeros(unit.shape[1]) for f, ok in zip(features, has_feature)])
                appearance_distance = 1.0 - np.minimum(np.maximum(track_unit @ unit.T, 0.0), 1.0)
                both = has_feature[:, None] & usable[None, :]
                raised = max(self.appearance_weight, INTERACTION_APPEARANCE_WEIGHT)
                weight = np.where(lost | interacting, raised, self.appearance_weight)[:, None]
                cost = np.where(both, (1.0 - weight) * cost + weight * appearance_distance, cost)
                gate_ok &= ~(lost[:, None] & both & (appearance_distance > LOST_APPEARANCE_GATE))

        cost = cost + np.where(lost, LOST_PENALTY * lost_fraction, 0.0)[:, None]
        cost = np.where(gate_ok, cost, _GATED)
        if cost.shape[0] == 1 or cost.shape[1] == 1:  # one track or one box: the cheapest pair (as the solver)
            best = int(np.argmin(cost))
            rows, cols = np.unravel_index([best], cost.shape)
        else:
            # Imported here: scipy.optimize takes 0.3-0.8 s to import (scipy.special, fft, linprog), paid by
            # every run otherwise, and a single person's clip never gets here.
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(cost)
        return [(int(r), int(c)) for r, c in zip(rows, cols) if gate_ok[r, c]]


TURN_REACH = 0.5
"""Two ids take turns on one person (:func:`turn_takers`) when, each time the person's records pass from one id
to the other on consecutive frames, the two boxes' centres lie within this many box heights."""
MIN_TURNS = 2


def turn_takers(frame_index: np.ndarray, ids: np.ndarray, boxes_xyxy: np.ndarray) -> dict[int, int]:
    """{later id: earliest id} for ids that take turns on one person, from per-record ``frame_index`` (N,),
    ``ids`` (N,) and ``boxes_xyxy`` (N, 4).

    A person the tracker holds twice (a second track born on a second read of them, on a frame where the first
    read had slid off them) has one record a frame, given to one track or the other as their predictions
    cross: the ids alternate, each lost in turn and re-taken within its time budget.  Such ids share at most
    one frame, pass the person between them at least ``MIN_TURNS`` times within the span they share, and
    every hand-over is within ``TURN_REACH`` box heights.  Two people never do that: both seen, they share
    frames; one hidden behind the other, the hidden one's id has no records until they come out.  On OpenCV's
    vtest.avi, a walker 30 px tall on the far path passed between two ids 8 times over frames 106-129; gap
    filling then listed both ids on frames between their turns, a person counted twice."""
    frame_index, ids = np.asarray(frame_index, dtype=np.int64), np.asarray(ids, dtype=np.int64)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    firsts = {int(i): int(frame_index[ids == i].min()) for i in np.unique(ids)}
    order = sorted(firsts, key=lambda i: (firsts[i], i))
    rows = {i: np.flatnonzero(ids == i) for i in order}
    frames = {i: frame_index[rows[i]] for i in order}
    root = {i: i for i in order}
    for k, a in enumerate(order):
        fa = frames[a]
        for b in order[k + 1:]:  # by first frame: once one starts after a ends, all the rest do
            fb = frames[b]
            if fb.min() > fa.max():
                break
            if len(np.intersect1d(fa, fb)) > 1:
                continue
            if root[b] == b and _turns(frame_index, boxes, rows[a], rows[b]) >= MIN_TURNS:
                root[b] = a
    out = {}
    for i in order:  # resolved: every value is an id that was not merged away
        j = i
        while root[j] != j:
            j = root[j]
        if j != i:
            out[i] = j
    return out


def _turns(frame_index: np.ndarray, boxes: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> int:
    """Hand-overs between two ids' records (rows) on consecutive frames, all within ``TURN_REACH``; 0 if any
    hand-over is further."""
    rows = np.concatenate([rows_a, rows_b])
    owner = np.r_[np.zeros(len(rows_a), dtype=bool), np.ones(len(rows_b), dtype=bool)]
    order = np.lexsort((owner, frame_index[rows]))
    rows, owner, frames = rows[order], owner[order], frame_index[rows[order]]
    turns = 0
    for k in np.flatnonzero((owner[1:] != owner[:-1]) & (np.diff(frames) <= 1)):
        a, b = boxes[rows[k]], boxes[rows[k + 1]]
        height = max(a[3] - a[1], b[3] - b[1], 1.0)
        if np.hypot(*(0.5 * (a[:2] + a[2:] - b[:2] - b[2:]))) > TURN_REACH * height:
            return 0
        turns += 1
    return turns
