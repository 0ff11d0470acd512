"""The BlazePose family built from the embedded models: detector + landmarker."""

from __future__ import annotations

from ..errors import ModelError
from ..model_store import load_model
from .pose_detector import PoseDetector
from .pose_landmarks import PoseLandmarker

POSE_LANDMARK_MODELS = ("lite", "full", "heavy")


def make_pose_models(model: str = "full", device: str = "auto",
                     strict_device: bool = False) -> tuple[PoseDetector, PoseLandmarker]:
    """The person detector and the ``model`` landmark model ("lite", "full" or "heavy") on ``device``."""
    if model not in POSE_LANDMARK_MODELS:
        raise ModelError(f"pose landmark model must be one of {POSE_LANDMARK_MODELS}, got {model!r}")
    detector = PoseDetector(load_model("pose_detection", device=device, strict_device=strict_device))
    landmarker = PoseLandmarker(load_model(f"pose_landmark_{model}", device=device, strict_device=strict_device))
    return detector, landmarker
