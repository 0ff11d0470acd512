"""What body and face analysis share: MediaPipe's tracking mode for several subjects.

Each followed subject's next ROI comes from this frame's landmarks; results
that cover one subject twice are merged; a :class:`~rigcast.track.BoxTracker`
gives every result its id.  The analysers differ only in when a detection is
a subject already followed, and in what counts as one subject twice.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
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
ROI_SETTLE_FRAMES = 6
ROI_DEAD_BAND = 2.0
"""How a body track's next ROI is steadied: its centre, side and rotation One Euro filtered (speed in ROI
sides per second); then the centre is held while it stays within ``ROI_BAND`` of the side from the centre
held so far, and the side and rotation while they stay within ``ROI_SHAPE_BAND`` (of the side; radians).
Past a band, a ROI that creeps (filtered speed under ``ROI_CREEP_SPEED`` sides, or radians, per second) is
still held, up to twice the band; past that, it follows its reading a dead band behind (see below).
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

Carried along with the image.  A held ROI is moved with the image under the body's head and shoulders: the
similarity (shift, scale, turn) that :func:`image_motion` measures on the pixels around its
:data:`ANCHOR_JOINTS` (optical flow of corners there, fitted with RANSAC), accumulated until it would move
the crop's corners by ``CARRY_MIN_SHIFT`` of its side.  Measured on the pixels, it does not move with the
crop, where landmarks do: on the moving astronaut a similarity fitted to her face and shoulder landmarks
grew by 3 % while she shrank by 7 % (her face points spread with the crop, her right shoulder is a guess),
and carrying the centre alone by those points (this module until December 2026) left her crop's side and
turn behind.  On still clips the measured motion is 0.002-0.004 px a frame, so a still person's crop stays
exactly held; a crop that touches another person's (:func:`_touch`) is not carried.
Dead band.  Carried so, the astronaut's crop stayed fixed on her (in photo coordinates: side 615 px, turn
13.5 degrees, to 0.5 px) while the model's reading of it wandered by 3 % (615-634 px: the frame's edges cut
her differently as she moves) and, once a release put the crop onto a reading, grew with the crop: she has
no hips in view, so the next ROI her landmarks give is 1.00-1.06 times the crop they were read in (the bus.jpg
man's, whole, 0.92-1.08: it pulls back).  Each release stepped up, and the crop ran away (side 615 -> 900 px
in 25 frames, at the end of the 60-frame clip; MediaPipe's guesses run away there too, later).  So once a
track has settled, past ``ROI_DEAD_BAND`` times its band a side or turn follows its reading only by what
exceeds that (a creeping centre, by what exceeds its band; a centre on the move is released onto its reading:
held a band behind, a walker a tenth of the frame tall, 16 px a frame in an 88 px crop, stepped out of it and
took a new id on tests/test_ids.py's re-entry), which stops any feedback of gain under 1 + that band.  Next to
another person (ROIs touching) the dead band is one band: held two bands back, a read at a crowded table
(tests/test_body_faces.py's pan over t1.jpg) slid between two people and lost one body's face.  A
dead band of one band was not enough: on the 90-frame clip with two other noise seeds, and with corners
sought in a window rather than the whole frame, her reading ran 4 % ahead of each crop from frame 51 and the
crop ran away again (RMS over all joints 34-38 px against MediaPipe's 41-44); with two bands, 7.6-9.3.  In a
track's first ``ROI_SETTLE_FRAMES`` (the detector's first ROI settling) a ROI is still released onto its
reading, as before (held a band short of it, the bus.jpg man's still 2D jitter went 0.12 -> 0.20 px).
Astronaut moving (sway, zoom and roll), RMS error over frames and joints, face and shoulders | all 33 px,
rigcast then MediaPipe: 60 frames 3.5 | 29.8 -> 1.1 | 8.1 (MediaPipe 3.4 | 20.3), 90 frames 5.4 | 49.0 ->
1.2 | 8.3 (5.0 | 40.5); still clips unchanged (benchmarks/bench_steadiness.py)."""


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
    while they move slower than ``roi_creep_speed``, past that following their reading a dead band behind (see
    :data:`ROI_STEADYING`); a held ROI is carried along with the image's motion under a body's head and
    shoulders.  From the landmarks' own ROIs, the measured motions and times: replaying the same ROIs and
    motions rebuilds the same state (and the last frame with its anchor points, the next motion).
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

    # Image motion (see :meth:`measure_motions`): the previous frame in grey and each body's anchor points there.
    motions: dict[int, np.ndarray] = field(default_factory=dict)  # this frame's, per key (for the records)
    _gray: np.ndarray | None = None
    _anchors: dict[int, np.ndarray] = field(default_factory=dict)
    _motion_job: tuple[np.ndarray, Future] | None = None  # (frame, its (grey, motions)): start_motions

    def start_motions(self, rgb: np.ndarray) -> None:
        """Start measuring, on a worker thread, how the image around the previous frame's anchor points moved
        into ``rgb`` (H, W, 3), while this frame's landmarks are read (onnxruntime and OpenCV release the
        GIL); :meth:`measure_motions` with the same ``rgb`` takes the result, the same as measured in place."""
        if self.roi_filter is None or not self._anchors:
            return
        self._motion_job = (rgb, _motion_worker().submit(_motions_since, self._gray, rgb, self._anchors))

    def measure_motions(self, rgb: np.ndarray, anchors: dict[int, np.ndarray | None]) -> dict[int, np.ndarray]:
        """How the image around each body's anchor points (per key, (J', 2) px: :func:`body_anchor`) of the
        previous frame moved into ``rgb`` (H, W, 3): per key a motion (4,) (:func:`image_motion`), NaN where
        none was measured (a new body, too few corners followed).  Keeps this frame and these points for the
        next.  Only for steadied ROIs (``roi_filter`` set): otherwise {}.  Takes what :meth:`start_motions`
        started for ``rgb``; a job the worker has not begun yet is cancelled and done here."""
        if self.roi_filter is None:
            return {}
        job, self._motion_job = self._motion_job, None
        measured = None
        if job is not None and job[0] is rgb and not job[1].cancel():
            measured = job[1].result()
        if measured is None:
            measured = _motions_since(self._gray, rgb, {k: p for k, p in self._anchors.items() if k in anchors})
        gray, by_key = measured
        motions = {}
        for key in anchors:
            motion = by_key.get(key)
            motions[key] = np.full(4, np.nan) if motion is None else motion
        self._gray = gray
        self._anchors = {k: p for k, p in anchors.items() if p is not None}
        return motions

    def hand_on(self, rois: dict[int, Roi], time_s: float | None = None,
                motions: dict[int, np.ndarray] | None = None) -> None:
        """The ROIs the next frame follows: the ones this frame's landmarks give (at ``time_s``), filtered
        when ``roi_filter`` is set.  ``motions`` (per key, (4,): :meth:`measure_motions`; NaN: none measured)
        carry a held ROI along with the image under it (see :data:`ROI_STEADYING`)."""
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
            motion = None if motions is None else motions.get(key)
            held, pending = value, IDENTITY
            if old is not None and self.roi_band > 0:
                side = old.held[2]
                # The image's motion since the held ROI was last carried or set.  Near someone else a read can
                # slide onto them: a carried crop would follow, so a crowded ROI is only held.
                pending = old.pending
                if crowded:
                    pending = IDENTITY
                elif motion is not None and np.all(np.isfinite(motion)):
                    pending = compose(motion, pending)
                base = old.held
                if corner_shift(old.held, pending) >= CARRY_MIN_SHIFT * side:  # moved: carried along
                    base, pending = carried(old.held, pending), IDENTITY
                d, speed = np.abs(value - base), np.abs(filt.speed)
                # Within the band, or creeping within twice the band: held (see ROI_STEADYING).
                creep = self.roi_creep_speed
                reach = (2.0 if speed[0] + speed[1] <= creep * side else 1.0,
                         2.0 if speed[2] <= creep * side and speed[3] <= creep else 1.0)
                held = base.copy()
                bands = (reach[0] * self.roi_band * side, reach[1] * self.roi_shape_band * side,
                         reach[1] * self.roi_shape_band)
                out_centre, out_shape = d[0] + d[1] > bands[0], d[2] > bands[1] or d[3] > bands[2]
                if old.age < ROI_SETTLE_FRAMES:  # a new track's ROI, still settling: released onto its reading
                    if out_centre:
                        held[:2] = value[:2]
                    if out_shape:
                        held[2:] = value[2:]
                else:  # then only by what its reading exceeds the band by: a dead band (see ROI_STEADYING)
                    dead = 1.0 if crowded else ROI_DEAD_BAND  # next to someone, a read held back slides onto them
                    bands = (bands[0], dead * bands[1], dead * bands[2])
                    if out_centre:  # a centre on the move (past creeping) is released onto its reading
                        lag = bands[0] / (d[0] + d[1]) if reach[0] > 1 else 0.0
                        held[:2] = value[:2] - (value[:2] - base[:2]) * lag
                    for k, band in ((2, bands[1]), (3, bands[2])):
                        if d[k] > band:
                            held[k] = value[k] - np.sign(value[k] - base[k]) * band
                if np.any(held != base):  # released: set afresh where the image is now
                    pending = IDENTITY
            filters[key] = _SteadiedRoi(filt, value, held, pending, 0 if old is None else old.age + 1)
            out[key] = Roi(center_xy=held[:2], size=float(held[2]), rotation=normalize_radians(float(held[3])))
        self._filters = filters
        self.rois = out


ANCHOR_JOINTS = np.arange(13)
"""BlazePose's nose, eyes, ears, mouth corners and shoulders: where a body's image motion is measured."""
ANCHOR_CONTEXT = 0.25  # the anchor points' box grown by this much of its size on each side: the patch followed
MOTION_REACH = 0.5  # the window the corners are followed in: the box grown by this much of its size, and 16 px
CORNER_MARGIN = 4  # px: the 3x3 gradients, 3x3 sums and 3x3 maximum a corner's test reads reach 3 px out
MOTION_MIN_POINTS = 8  # image points a motion must rest on (RANSAC inliers), else none is measured
MOTION_RANSAC_PX = 1.0  # a tracked point further than this from the fitted motion is an outlier
CARRY_MIN_SHIFT = 0.002  # see FollowState.hand_on: carry once the crop's corners would move this much of its side
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
"""The motion (4,) ``a, b, tx, ty`` of a similarity ``x' = [[a, -b], [b, a]] x + t`` that moves nothing."""


def _touch(a: Roi, b: Roi) -> bool:
    """Whether two ROIs come within half their summed sides of each other (centre to centre).  A held ROI
    touching another person's is not carried: as a person goes behind another, their landmarks slide onto
    the one in front, and a crop carried by them slid along (tests/test_multiperson.py's crossing: 37 px
    off him, against 21 px held)."""
    return float(np.hypot(*(a.center_xy - b.center_xy))) < 0.5 * (a.size + b.size)


def body_anchor(lm) -> np.ndarray | None:
    """(J', 2) px a body's :data:`ANCHOR_JOINTS` from its landmarks (or their cached (J, 2) ``xy``), or None
    for landmarks without them (faces).  Rounded to float32, as the chunk cache stores them, so a resumed
    run measures the same image motion."""
    if isinstance(lm, np.ndarray):
        xy = lm
    else:
        lm = getattr(lm, "landmarks", lm)  # a person just found in a box (body._TrackedBox)
        xy = getattr(lm, "xy", None)
        if xy is None or getattr(lm, "visibility", None) is None:
            return None
    if len(xy) < len(ANCHOR_JOINTS):
        return None
    return np.asarray(np.asarray(xy, np.float32)[ANCHOR_JOINTS], np.float64)


def _motions_since(before_gray: np.ndarray | None, rgb: np.ndarray, anchors: dict[int, np.ndarray]
                   ) -> tuple[np.ndarray, dict[int, np.ndarray | None]]:
    """``rgb`` (H, W, 3) in grey (H, W), and per key the motion (:func:`image_motion`) of the image around
    ``anchors`` (per key (J', 2) px in ``before_gray``) into it; none without a previous frame of that size."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    if before_gray is None or before_gray.shape != gray.shape:
        return gray, {}
    return gray, {key: image_motion(before_gray, gray, points) for key, points in anchors.items()}


_MOTION_WORKER: ThreadPoolExecutor | None = None


def _motion_worker() -> ThreadPoolExecutor:
    """The one thread :meth:`FollowState.start_motions` measures image motion on, started on first use."""
    global _MOTION_WORKER
    if _MOTION_WORKER is None:
        _MOTION_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rigcast-motion")
    return _MOTION_WORKER


def image_motion(before_gray: np.ndarray, gray: np.ndarray, points_xy: np.ndarray) -> np.ndarray | None:
    """How the image around ``points_xy`` (J', 2) px of frame ``before_gray`` (H, W) uint8 moved in ``gray``:
    the similarity (4,) ``a, b, tx, ty`` (:data:`IDENTITY`'s layout) fitted with RANSAC to corners of the
    points' box (grown by ``ANCHOR_CONTEXT``) followed by pyramidal Lucas-Kanade optical flow; None when too
    few corners follow.  Measured on the pixels, not on landmarks: it does not move with the crop."""
    import cv2

    if not np.all(np.isfinite(points_xy)):
        return None
    lo, hi = points_xy.min(axis=0), points_xy.max(axis=0)
    height, width = gray.shape
    # Corners of the grown box, followed within a window around it that also holds a fast move (both frames
    # cut to it: the cost does not grow with the frame).
    inner = np.concatenate([lo - ANCHOR_CONTEXT * (hi - lo) - 4.0, hi + ANCHOR_CONTEXT * (hi - lo) + 4.0])
    outer = inner + np.concatenate([-(hi - lo), hi - lo]) * MOTION_REACH - 16.0 * np.array([1, 1, -1, -1])
    x0, y0 = int(max(0, np.floor(outer[0]))), int(max(0, np.floor(outer[1])))
    x1, y1 = int(min(width, np.ceil(outer[2]))), int(min(height, np.ceil(outer[3])))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    before, after = before_gray[y0:y1, x0:x1], gray[y0:y1, x0:x1]
    ix0, iy0 = (int(max(0, np.floor(v))) for v in inner[:2] - [x0, y0])
    ix1, iy1 = (int(max(0, np.ceil(v))) for v in inner[2:] - [x0, y0])
    ix1, iy1 = min(ix1, x1 - x0), min(iy1, y1 - y0)
    if ix1 <= ix0 or iy1 <= iy0:  # the grown box is out of the frame
        return None
    corners = box_corners(before, (ix0, iy0, ix1, iy1))
    if corners is None or len(corners) < MOTION_MIN_POINTS:
        return None
    moved, status, _ = cv2.calcOpticalFlowPyrLK(before, after, corners, None, winSize=(15, 15), maxLevel=3)
    ok = status.ravel() == 1
    if ok.sum() < MOTION_MIN_POINTS:
        return None
    offset = np.array([x0, y0], np.float32)
    m, inliers = cv2.estimateAffinePartial2D(corners[ok] + offset, moved[ok] + offset, method=cv2.RANSAC,
                                             ransacReprojThreshold=MOTION_RANSAC_PX)
    if m is None or inliers is None or inliers.sum() < MOTION_MIN_POINTS:
        return None
    return np.array([m[0, 0], m[1, 0], m[0, 2], m[1, 2]])


def box_corners(gray: np.ndarray, box_xyxy: tuple[int, int, int, int]) -> np.ndarray | None:
    """The corners (K, 1, 2) float32 px that ``cv2.goodFeaturesToTrack`` finds in ``gray`` (H, W) uint8 masked
    to the pixel box ``box_xyxy`` (ends excluded), or None.  Sought in the box and :data:`CORNER_MARGIN` px
    around it (all that the corner measure and its local-maximum test read there), not over the whole image:
    the same corners, for a quarter of the work (the carphone man's motion window at 640x480: 6.8 -> 1.9 CPU
    ms a frame, on a busy machine)."""
    import cv2

    x0, y0, x1, y1 = box_xyxy
    height, width = gray.shape
    cx0, cy0 = max(0, x0 - CORNER_MARGIN), max(0, y0 - CORNER_MARGIN)
    cx1, cy1 = min(width, x1 + CORNER_MARGIN), min(height, y1 + CORNER_MARGIN)
    patch = gray[cy0:cy1, cx0:cx1]
    mask = np.zeros_like(patch)
    mask[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] = 255
    corners = cv2.goodFeaturesToTrack(patch, maxCorners=200, qualityLevel=0.01, minDistance=4, mask=mask)
    return None if corners is None else corners + np.array([cx0, cy0], np.float32)


def compose(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """The motion (4,) ``earlier`` then ``later``."""
    a1, b1, x1, y1 = later
    a0, b0, x0, y0 = earlier
    return np.array([a1 * a0 - b1 * b0, a1 * b0 + b1 * a0, a1 * x0 - b1 * y0 + x1, b1 * x0 + a1 * y0 + y1])


def carried(roi: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """The ROI vector (4,) centre x, y, side, rotation moved by ``motion`` (4,): its centre mapped, its side
    scaled and its rotation turned with the image."""
    a, b, tx, ty = motion
    x, y = roi[:2]
    return np.array([a * x - b * y + tx, b * x + a * y + ty, roi[2] * np.hypot(a, b), roi[3] + np.arctan2(b, a)])


def corner_shift(roi: np.ndarray, motion: np.ndarray) -> float:
    """How far (px) ``motion`` moves the ROI's farthest corner."""
    a, b, tx, ty = motion
    c, s, half = np.cos(roi[3]), np.sin(roi[3]), 0.5 * roi[2]
    corners = roi[:2] + np.array([[c * u - s * v, s * u + c * v] for u in (-half, half) for v in (-half, half)])
    moved = corners @ np.array([[a, b], [-b, a]]) + [tx, ty]
    return float(np.max(np.linalg.norm(moved - corners, axis=1)))


@dataclass
class _SteadiedRoi:
    """One key's steadied ROI: its filter, the filtered (4,) ``value``, the (4,) ``held`` one handed on, and
    the image's motion (4,) since ``held`` was last carried or set, ``pending`` (:data:`IDENTITY`'s layout)."""

    filter: OneEuroFilter
    value: np.ndarray
    held: np.ndarray
    pending: np.ndarray
    age: int  # frames handed on before this one


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
    """Landmarks from every followed ROI; also whether someone followed was lost this frame.  The image
    motion :func:`assign_ids` needs is measured meanwhile (:meth:`FollowState.start_motions`)."""
    state.start_motions(rgb)
    results = [(lm, True) for lm in (landmarker(rgb, roi) for roi in state.rois.values())
               if lm is not None and in_frame(lm.box_xyxy())]
    return results, len(results) < len(state.rois)


def in_frame(box_xyxy: np.ndarray) -> bool:
    """Whether a box ``[x0, y0, x1, y1]`` clipped to the frame keeps an area: landmarks read wholly beyond an
    edge (a person followed out of the frame) clip to a line, and that person is lost, not found."""
    return bool(np.all(box_xyxy[2:] > box_xyxy[:2]))


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
    state.motions = state.measure_motions(rgb, {i: body_anchor(lm) for i, lm in keyed.items()})
    state.hand_on({i: lm.next_roi() for i, lm in keyed.items()}, time_s, state.motions)
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
