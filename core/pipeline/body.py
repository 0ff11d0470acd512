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
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from ..models import PoseLandmarker, PoseLandmarks, Roi
from .follow import FollowState, assign_ids, box_iou, completed, dedupe, follow

NUM_JOINTS = 33  # BlazePose-33
DEFAULT_MAX_PEOPLE = 16


class Detection(Protocol):
    """What a person detector returns per person (``PersonBox`` or BlazePose's ``PersonDetection``)."""

    score: float
    aligned: bool  # to_roi() is already rotated with the body (True) or upright (False)

    def to_roi(self) -> Roi: ...

    def followed_by(self, box_xyxy: np.ndarray) -> bool: ...


@dataclass(frozen=True)
class BodyConfig:
    max_people: int = DEFAULT_MAX_PEOPLE
    redetect_every: int = 15  # frames between detector runs while people are followed
    duplicate_iou: float = 0.5  # two results overlapping more than this are one person

    def __post_init__(self) -> None:
        if self.max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {self.max_people}")
        if self.redetect_every < 1:
            raise ValueError(f"redetect_every must be at least 1, got {self.redetect_every}")


@dataclass
class PersonRecord:
    """One person in one frame, as the landmark model saw them."""

    track_id: int
    landmarks: PoseLandmarks
    box_xyxy: np.ndarray  # (4,)
    appearance: np.ndarray  # (D,)


class BodyAnalyzer:
    """Runs detector and landmarker over frames; holds no model state itself."""

    def __init__(self, detector: Callable[[np.ndarray], list[Detection]], landmarker: PoseLandmarker,
                 config: BodyConfig = BodyConfig()):
        self.detector = detector
        self.landmarker = landmarker
        self.config = config

    def new_state(self) -> FollowState:
        return FollowState()

    def process(self, rgb: np.ndarray, time_s: float, state: FollowState) -> tuple[list[PersonRecord], bool]:
        """Analyse one frame; updates ``state``. Returns the people found and whether the detector ran."""
        cfg = self.config
        results, lost_someone = follow(self.landmarker, rgb, state)
        followed_boxes = [lm.box_xyxy() for lm, _ in results]
        detect = (not results or lost_someone or state.frames_since_detect + 1 >= cfg.redetect_every)
        if detect:
            state.frames_since_detect = 0
            if len(results) < cfg.max_people or lost_someone:
                for det in self.detector(rgb):
                    if any(det.followed_by(b) for b in followed_boxes):
                        continue
                    lm = self.landmarks_from(rgb, det)
                    if lm is not None:
                        results.append((lm, False))
        else:
            state.frames_since_detect += 1

        results = dedupe(results, lambda a, b: box_iou(a, b) > cfg.duplicate_iou)[: cfg.max_people]
        ids, boxes, appearance = assign_ids(rgb, time_s, results, state)
        records = [PersonRecord(int(i), lm, boxes[k], appearance[k]) for k, ((lm, _), i) in enumerate(zip(results, ids))]
        return records, detect

    def landmarks_from(self, rgb: np.ndarray, detection: Detection) -> PoseLandmarks | None:
        """Landmarks of a detected person.  An upright ROI (a box's) is only a first guess at the person's
        scale and lean: the landmarks it gives are read again from the rotated ROI they define, the ROI
        that following the person into the next frame would use."""
        lm = self.landmarker(rgb, detection.to_roi())
        if lm is None or detection.aligned:
            return lm
        return self.landmarker(rgb, lm.next_roi()) or lm

    def submit(self, rgb: np.ndarray, time_s: float, state: FollowState) -> Future:
        """:meth:`process`, done in place; returns its result as a finished future (the analysers'
        common interface, see ``FaceAnalyzer.submit``)."""
        return completed(self.process(rgb, time_s, state))

    def close(self) -> None:
        """Nothing to stop: bodies run in the caller's thread."""
