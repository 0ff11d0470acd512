"""Models: pure-numpy preprocess → runner → pure-numpy postprocess, one module per model family.

Pose (MediaPipe BlazePose converted to ONNX): :class:`PoseDetector` finds
people and their alignment keypoints, :class:`PersonDetection.to_roi` turns
one into a rotated square :class:`Roi`, :class:`PoseLandmarker` reads 33
landmarks from it, and :meth:`PoseLandmarks.next_roi` follows the person into
the next frame.

Bring-your-own models, loaded by path: :class:`YoloPersonDetector` (ultralytics YOLOv5/YOLOv8 ONNX exports)
gives person boxes like NanoDet's :class:`PersonDetector`; :class:`VitPoseEstimator` (easy_ViTPose ONNX
exports, or its torch checkpoints through :mod:`.vitpose_torch`, imported only for them) reads 17 or 25 keypoints
per box; :class:`Lightweight3DEstimator` (lightweight-human-pose-estimation-3d
ONNX exports) finds people bottom-up with 19 joints in 2D and 3D.
"""

from .anchors import POSE_DETECTOR_ANCHORS, SsdAnchorOptions, decode_boxes, ssd_anchors
from .lightweight3d import Lightweight3DEstimator, People3D
from .person_detector import PersonBox, PersonDetector
from .pose import PERSON_DETECTORS, POSE_LANDMARK_MODELS, make_keypoint_model, make_person_detector, make_pose_models
from .pose_detector import PersonDetection, PoseDetector, box_iou, merge_across_windows, plan_windows, weighted_nms
from .pose_landmarks import PoseLandmarker, PoseLandmarks, refine_landmarks_from_heatmap
from .roi import Roi, normalize_radians
from .vitpose import Keypoints2D, VitPoseEstimator
from .yolo import YoloPersonDetector

__all__ = [
    "PERSON_DETECTORS", "POSE_DETECTOR_ANCHORS", "POSE_LANDMARK_MODELS", "PersonBox", "PersonDetection",
    "PersonDetector", "PoseDetector", "PoseLandmarker",
    "PoseLandmarks", "Roi", "SsdAnchorOptions", "box_iou", "decode_boxes", "make_keypoint_model",
    "make_person_detector", "make_pose_models", "normalize_radians",
    "merge_across_windows", "plan_windows", "refine_landmarks_from_heatmap", "ssd_anchors", "weighted_nms",
    "Keypoints2D", "Lightweight3DEstimator", "People3D", "VitPoseEstimator", "YoloPersonDetector",
]
