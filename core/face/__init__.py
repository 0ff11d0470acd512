"""Faces beyond the models: the canonical face geometry and head pose from face landmarks.

:func:`canonical_face` loads MediaPipe's canonical metric face once;
:func:`solve_head_pose` lifts a face mesh into the camera frame and fits the
canonical face to it (rotation, translation, metric mesh), :func:`solve_head_poses`
does it for many frames at once;
:func:`euler_ypr_deg` reads yaw, pitch and roll off the rotation (:func:`euler_ypr_deg_series`, off T of them).
"""

from .geometry import CanonicalFace, canonical_face
from .head_pose import (FRONTAL, HEAD_POSE_METHODS, HeadPose, euler_ypr_deg, euler_ypr_deg_series,
                        rotation_from_ypr_deg, smooth_head_poses, solve_head_pose, solve_head_poses,
                        weighted_procrustes)

__all__ = [
    "CanonicalFace", "FRONTAL", "HEAD_POSE_METHODS", "HeadPose", "canonical_face", "euler_ypr_deg",
    "euler_ypr_deg_series", "rotation_from_ypr_deg", "smooth_head_poses", "solve_head_pose", "solve_head_poses",
    "weighted_procrustes",
]
