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

from ..models.roi import Roi
from ..track import BoxTracker, appearance_descriptor
from ..track import box_iou as _box_iou_pairs


class Landmarks(Protocol):
    score: float

    def box_xyxy(self) -> np.ndarray: ...

    def next_roi(self) -> Roi: ...


Result = tuple[Landmarks, bool]  # (landmarks, followed from a previous frame rather than just detected)


@dataclass
class FollowState:
    """What carries from one frame to the next (all of it derivable from past records)."""

    tracker: BoxTracker = field(default_factory=BoxTracker)
    # Next ROI per followed subject: keyed by track id for bodies; faces key them by slot, since their
    # ids are assigned on a worker thread (rigcast.pipeline.faces).
    rois: dict[int, Roi] = field(default_factory=dict)
    frames_since_detect: int = 10**9

    def hand_on(self, rois: dict[int, Roi]) -> None:
        """The ROIs the next frame follows (the ones this frame's landmarks give)."""
        self.rois = rois


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
    state.hand_on({int(i): lm.next_roi() for (lm, _), i in zip(results, ids)})
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
