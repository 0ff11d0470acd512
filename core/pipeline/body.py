"""Per-frame body analysis: detect, follow landmark ROIs, assign track ids.

MediaPipe's tracking mode, generalised to several people: each person's
next ROI comes from this frame's landmarks, so the detector only runs when
nobody is followed, periodically to catch newcomers, or when a person is
lost.  Identities come from :class:`~rigcast.track.BoxTracker`, whose motion
model and appearance cue carry people through crossings.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ..models import PersonDetection, PoseDetector, PoseLandmarker, PoseLandmarks
from .follow import ROI_BAND, ROI_SHAPE_BAND, ROI_STEADYING, FollowState, assign_ids, box_iou, completed, dedupe, follow

NUM_JOINTS = 33  # BlazePose-33


def _is_followed(detection: PersonDetection, followed_box: np.ndarray) -> bool:
    """Whether a detection is a person already followed: its hip or shoulder centre lies in their landmark box.

    (The detector's own box frames the face at a fixed fraction of its window,
    so box overlap says little about whether two results are one person.)
    """
    x0, y0, x1, y1 = followed_box
    pts = detection.keypoints_xy[[0, 2]]
    return bool(np.any((pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)))


@dataclass(frozen=True)
class BodyConfig:
    max_people: int = 4
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

    def __init__(self, detector: PoseDetector, landmarker: PoseLandmarker, config: BodyConfig = BodyConfig()):
        self.detector = detector
        self.landmarker = landmarker
        self.config = config

    def new_state(self) -> FollowState:
        return FollowState(roi_filter=ROI_STEADYING, roi_band=ROI_BAND, roi_shape_band=ROI_SHAPE_BAND)

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
                    if any(_is_followed(det, b) for b in followed_boxes):
                        continue
                    lm = self.landmarker(rgb, det.to_roi())
                    if lm is not None:
                        results.append((lm, False))
        else:
            state.frames_since_detect += 1

        results = dedupe(results, lambda a, b: box_iou(a, b) > cfg.duplicate_iou)[: cfg.max_people]
        ids, boxes, appearance = assign_ids(rgb, time_s, results, state)
        records = [PersonRecord(int(i), lm, boxes[k], appearance[k]) for k, ((lm, _), i) in enumerate(zip(results, ids))]
        return records, detect

    def submit(self, rgb: np.ndarray, time_s: float, state: FollowState) -> Future:
        """:meth:`process`, done in place; returns its result as a finished future (the analysers'
        common interface, see ``FaceAnalyzer.submit``)."""
        return completed(self.process(rgb, time_s, state))

    def close(self) -> None:
        """Nothing to stop: bodies run in the caller's thread."""
