"""Per-frame bottom-up people: one model finds everyone in the frame → tracker (``--pose lw3d:PATH``).

The bottom-up twin of :mod:`.topdown`: no person detector; the model
(:class:`~rigcast.models.Lightweight3DEstimator`) gives every person's
keypoints at once, each person's box is the box of their confident keypoints
(:func:`~rigcast.pipeline.topdown.keypoint_box`), and the tracker gives ids.
Each record also carries the person's 3D joints (camera space, metres).

Legend: N persons in a frame, J joints.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from ..skeletons import Skeleton
from .follow import FollowState, completed
from .topdown import KeypointRecord, PersonKeypoints, keypoint_box, track_people


@dataclass(frozen=True, eq=False)
class PersonKeypoints3D(PersonKeypoints):
    """:class:`PersonKeypoints` plus ``xyz`` (J, 3): the joints in camera space (OpenCV axes), metres."""

    xyz: np.ndarray = None


@dataclass(frozen=True)
class BottomUpConfig:
    max_people: int = 16

    def __post_init__(self) -> None:
        if self.max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {self.max_people}")


class BottomUpAnalyzer:
    """Runs a bottom-up 3D pose model and the tracker over frames; holds no state itself.

    ``estimator(rgb)`` returns people with ``xy`` (N, J, 2), ``xyz`` (N, J, 3), ``conf`` (N, J) and
    ``skeleton``.
    """

    def __init__(self, estimator, config: BottomUpConfig = BottomUpConfig()):
        self.estimator = estimator
        self.config = config

    @property
    def skeleton(self) -> Skeleton:
        return self.estimator.skeleton

    def new_state(self) -> FollowState:
        return FollowState()

    def process(self, rgb: np.ndarray, time_s: float, state: FollowState) -> tuple[list[KeypointRecord], bool]:
        """Analyse one frame; updates ``state``.  Returns the people found and True (the model looks at every
        frame whole, as a detector would)."""
        found = self.estimator(rgb)
        people = []
        for xy, xyz, conf in zip(found.xy, found.xyz, found.conf):
            box = keypoint_box(xy, conf)
            if box is not None:
                people.append(PersonKeypoints3D(xy=xy, scores=np.clip(conf, 0.0, 1.0), box=box, xyz=xyz))
        return track_people(rgb, time_s, people, False, self.config.max_people, state), True

    def submit(self, rgb: np.ndarray, time_s: float, state: FollowState) -> Future:
        """:meth:`process`, done in place, as a finished future (the analysers' common interface)."""
        return completed(self.process(rgb, time_s, state))

    def close(self) -> None:
        """Nothing to stop: runs in the caller's thread."""
