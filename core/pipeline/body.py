"""Per-frame body analysis: detect, follow landmark ROIs, assign track ids.

MediaPipe's tracking mode, generalised to several people: each person's
next ROI comes from this frame's landmarks, so the detector only runs when
nobody is followed, periodically to catch newcomers, or when a person is
lost.  Identities come from :class:`~rigcast.track.BoxTracker`, whose motion
model and appearance cue carry people through crossings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..models import PersonDetection, PoseDetector, PoseLandmarker, PoseLandmarks, Roi
from ..track import BoxTracker, appearance_descriptor, box_iou as _box_iou_pairs

NUM_JOINTS = 33  # BlazePose-33


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two xyxy boxes (4,)."""
    return float(_box_iou_pairs(np.asarray(a)[None], np.asarray(b)[None])[0, 0])


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


@dataclass
class BodyState:
    """What carries from one frame to the next (all of it derivable from past records)."""

    tracker: BoxTracker
    rois: dict[int, Roi] = field(default_factory=dict)  # next ROI per followed track id
    frames_since_detect: int = 10**9


class BodyAnalyzer:
    """Runs detector and landmarker over frames; holds no model state itself."""

    def __init__(self, detector: PoseDetector, landmarker: PoseLandmarker, config: BodyConfig = BodyConfig()):
        self.detector = detector
        self.landmarker = landmarker
        self.config = config

    def new_state(self) -> BodyState:
        return BodyState(tracker=BoxTracker())

    def process(self, rgb: np.ndarray, time_s: float, state: BodyState) -> tuple[list[PersonRecord], bool]:
        """Analyse one frame; updates ``state``. Returns the people found and whether the detector ran."""
        cfg = self.config
        results: list[tuple[PoseLandmarks, bool]] = []  # (landmarks, followed from a previous frame)
        for roi in state.rois.values():
            lm = self.landmarker(rgb, roi)
            if lm is not None:
                results.append((lm, True))
        followed_boxes = [lm.box_xyxy() for lm, _ in results]

        lost_someone = len(results) < len(state.rois)
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

        results = self._dedupe(results)[: cfg.max_people]
        if results:
            boxes = np.stack([lm.box_xyxy() for lm, _ in results])
            scores = np.array([lm.score for lm, _ in results], dtype=np.float64)
            appearance = np.stack([appearance_descriptor(rgb, b) for b in boxes])
            ids = state.tracker.update(time_s, boxes, scores, appearance)
        else:
            boxes, appearance, ids = np.zeros((0, 4)), None, np.zeros(0, dtype=np.int64)
            state.tracker.update(time_s, np.zeros((0, 4)), np.zeros(0))
        records = [PersonRecord(int(i), lm, boxes[k], appearance[k]) for k, ((lm, _), i) in enumerate(zip(results, ids))]
        state.rois = {r.track_id: r.landmarks.next_roi() for r in records}
        return records, detect

    def _dedupe(self, results: list[tuple[PoseLandmarks, bool]]) -> list[tuple[PoseLandmarks, bool]]:
        """Drop results that cover a person already kept; followed people and higher scores win."""
        order = sorted(results, key=lambda r: (not r[1], -r[0].score))
        kept: list[tuple[PoseLandmarks, bool]] = []
        for lm, followed in order:
            box = lm.box_xyxy()
            if all(box_iou(box, k.box_xyxy()) <= self.config.duplicate_iou for k, _ in kept):
                kept.append((lm, followed))
        return kept
