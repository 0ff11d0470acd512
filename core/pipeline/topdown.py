"""Per-frame top-down 2D keypoints: person boxes → keypoint model → tracker (``--pose vitpose:PATH``).

rtmlib's ``PoseTracker`` shape, with rigcast's parts: a person detector
(NanoDet, or the user's YOLO) gives boxes every ``detect_every`` frames; in
between, each tracked person's box is the :class:`~rigcast.track.BoxTracker`'s
prediction for this frame, as easy_ViTPose's ``yolo_step`` takes SORT's
predicted boxes.  The keypoint model (:class:`~rigcast.models.VitPoseEstimator`)
reads each box; the tracker gives ids.

The tracker follows one kind of box throughout: the box of the person's
confident keypoints, grown by ``PERSON_BOX_MARGIN`` of its size on each side
(about a detector's box: the head's top above the eyes, the feet's ends).
Unlike SORT between detections, which only predicts, each tracked frame thus
corrects the track with where the keypoints found the person.  A detected
person whose keypoints are all unsure is tracked by the detector's box; on a
detection frame, a tracked person the detector misses is lost (as in
easy_ViTPose), and the tracker may take them up again later.  Each body's
COCO face points (:func:`keypoint_heads`) link the face stage's faces to it.

Legend: N persons in a frame, J joints.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ..models.roi import Roi
from ..skeletons import BLAZEPOSE_33, Skeleton
from .follow import FollowState, box_iou, completed, identify

BOX_MIN_SCORE = 0.3  # keypoints scoring at least this make a person's box
PERSON_BOX_MARGIN = 0.1  # of the keypoints' box width (height) added left and right (top and bottom)
MIN_TRACKED_SCORE = 0.3  # a predicted box whose keypoints score less on average holds nobody: the person is lost
DUPLICATE_IOU = 0.6  # two people whose boxes overlap more are one


def keypoint_box(xy: np.ndarray, scores: np.ndarray, min_score: float = BOX_MIN_SCORE,
                 margin: float = PERSON_BOX_MARGIN) -> np.ndarray | None:
    """The person box (4,) xyxy of keypoints ``xy`` (J, 2) with ``scores`` (J,): the box of those scoring at
    least ``min_score``, grown by ``margin`` of its size on each side (at least 1 px); None for fewer than two."""
    sure = (np.asarray(scores) >= min_score) & np.all(np.isfinite(xy), axis=1)
    if sure.sum() < 2:
        return None
    low, high = xy[sure].min(axis=0), xy[sure].max(axis=0)
    grow = np.maximum(margin * (high - low), 1.0)
    return np.concatenate([low - grow, high + grow])


@dataclass(frozen=True, eq=False)
class PersonKeypoints:
    """One person's keypoints in one frame: ``xy`` (J, 2) frame px, ``scores`` (J,), and the ``box`` (4,) xyxy
    the tracker follows them by.  Offers what the tracker and the chunk cache read of a landmark result."""

    xy: np.ndarray
    scores: np.ndarray
    box: np.ndarray

    @property
    def score(self) -> float:
        """The mean keypoint score, in [0, 1]: how sure the model is that the box holds a person."""
        return float(np.clip(np.mean(self.scores), 0.0, 1.0)) if len(self.scores) else 0.0

    def box_xyxy(self) -> np.ndarray:
        return self.box

    def next_roi(self) -> Roi:
        """The box as an upright square (what the chunk cache records of every stage's next ROI)."""
        side = float(max(self.box[2] - self.box[0], self.box[3] - self.box[1], 1.0))
        return Roi(center_xy=0.5 * (self.box[:2] + self.box[2:]), size=side, rotation=0.0)


@dataclass
class KeypointRecord:
    """One person in one frame, as the keypoint model saw them."""

    track_id: int
    landmarks: PersonKeypoints
    box_xyxy: np.ndarray  # (4,)
    appearance: np.ndarray  # (D,)


HEAD_MIN_SCORE = 0.5  # a face keypoint counts as seen at this score or more (as BlazePose's visibility 0.5)
HEAD_MIN_POINTS = 3  # of the five COCO face points, seen, for a body to show its head


def keypoint_heads(records: list[KeypointRecord], skeleton: Skeleton) -> dict[int, np.ndarray]:
    """Body id → face points (11, 2) px in BlazePose's order (what the face stage takes from bodies, see
    :func:`rigcast.pipeline.faces.body_heads`), from top-down keypoint records of ``skeleton``: COCO's nose,
    eyes and ears go to BlazePose's points of the same name; the inner and outer eye corners and the mouth,
    which COCO lacks, are NaN, as are points scoring under ``HEAD_MIN_SCORE``.  Bodies with fewer than
    ``HEAD_MIN_POINTS`` seen are left out."""
    names = [n for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear") if n in skeleton.joint_names]
    source = [skeleton.index(n) for n in names]
    target = [BLAZEPOSE_33.index(n) for n in names]
    heads = {}
    for record in records:
        xy, scores = record.landmarks.xy[source], record.landmarks.scores[source]
        seen = (scores >= HEAD_MIN_SCORE) & np.all(np.isfinite(xy), axis=1)
        if seen.sum() >= HEAD_MIN_POINTS:
            head = np.full((11, 2), np.nan)
            head[np.array(target)[seen]] = xy[seen]
            heads[int(record.track_id)] = head
    return heads


def track_people(rgb: np.ndarray, time_s: float, people: list[PersonKeypoints], followed: bool,
                 max_people: int, state: FollowState) -> list[KeypointRecord]:
    """The best ``max_people`` of a frame's ``people`` (by score; one whose box overlaps a kept one by more than
    ``DUPLICATE_IOU`` is that person again), identified by ``state``'s tracker and handed on as the next frame's
    ROIs.  ``followed``: the people were read in boxes the tracker predicted, not in detections."""
    kept: list[PersonKeypoints] = []
    for person in sorted(people, key=lambda p: -p.score):
        if len(kept) < max_people and all(box_iou(person.box, k.box) <= DUPLICATE_IOU for k in kept):
            kept.append(person)
    ids, tracked, appearance = identify(rgb, time_s, [(p, followed) for p in kept], state.tracker)
    state.hand_on({int(i): p.next_roi() for p, i in zip(kept, ids)})
    return [KeypointRecord(int(i), p, tracked[k], appearance[k]) for k, (p, i) in enumerate(zip(kept, ids))]


@dataclass(frozen=True)
class TopDownConfig:
    max_people: int = 16
    detect_every: int = 1  # frames between detector runs; in between, the tracker's boxes

    def __post_init__(self) -> None:
        if self.max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {self.max_people}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, got {self.detect_every}")


class TopDownAnalyzer:
    """Runs a person detector, a top-down keypoint model and the tracker over frames; holds no state itself.

    ``detector(rgb)`` returns people with ``box_xyxy`` (4,) and ``score``;
    ``estimator(rgb, boxes_xyxy (N, 4))`` returns keypoints with ``xy``
    (N, J, 2), ``scores`` (N, J) and ``skeleton``.
    """

    def __init__(self, detector, estimator, config: TopDownConfig = TopDownConfig()):
        self.detector = detector
        self.estimator = estimator
        self.config = config

    @property
    def skeleton(self) -> Skeleton:
        return self.estimator.skeleton

    def new_state(self) -> FollowState:
        return FollowState()

    def process(self, rgb: np.ndarray, time_s: float, state: FollowState) -> tuple[list[KeypointRecord], bool]:
        """Analyse one frame; updates ``state``.  Returns the people found and whether the detector ran."""
        cfg = self.config
        predicted = state.tracker.predict(time_s) if state.tracker.live_ids() else {}
        detect = not predicted or state.frames_since_detect + 1 >= cfg.detect_every
        if detect:
            state.frames_since_detect = 0
            people = list(self.detector(rgb))
            boxes = np.array([p.box_xyxy for p in people], dtype=np.float64).reshape(-1, 4)
        else:
            state.frames_since_detect += 1
            boxes = np.array(list(predicted.values()), dtype=np.float64).reshape(-1, 4)
        found = self.estimator(rgb, boxes) if len(boxes) else None
        people_kp = []
        for k in range(len(boxes)):
            xy, scores = found.xy[k], found.scores[k]
            box = keypoint_box(xy, scores)
            if box is None or not detect and np.mean(scores) < MIN_TRACKED_SCORE:
                if not detect:
                    continue  # a predicted box that holds nobody: the tracker loses them
                box = boxes[k]
            people_kp.append(PersonKeypoints(xy=xy, scores=np.clip(scores, 0.0, 1.0), box=box))
        return track_people(rgb, time_s, people_kp, not detect, cfg.max_people, state), detect

    def submit(self, rgb: np.ndarray, time_s: float, state: FollowState) -> Future:
        """:meth:`process`, done in place, as a finished future (the analysers' common interface)."""
        return completed(self.process(rgb, time_s, state))

    def close(self) -> None:
        """Nothing to stop: runs in the caller's thread."""
