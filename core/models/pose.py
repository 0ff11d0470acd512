"""The body models built from the embedded files: a person detector + the BlazePose landmarker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import DeviceError, ModelError
from ..model_store import load_model
from ..runners import TORCH_SUFFIXES, make_runner
from .lightweight3d import Lightweight3DEstimator
from .person_detector import PersonDetector
from .pose_detector import PoseDetector
from .pose_landmarks import PoseLandmarker
from .vitpose import VitPoseEstimator
from .yolo import YoloPersonDetector

POSE_LANDMARK_MODELS = ("lite", "full", "heavy")
# "nanodet": NanoDet person boxes, any number of people (top-down); "blazepose": MediaPipe's own pose
# detector, made for one person near the camera (MediaPipe's single-person pipeline exactly).
PERSON_DETECTORS = ("nanodet", "blazepose")


def make_person_detector(detector: str = "nanodet", device: str = "auto", strict_device: bool = False,
                         max_people: int | None = None) -> PoseDetector | PersonDetector | YoloPersonDetector:
    """The person ``detector``: "nanodet", "blazepose", or "yolo:PATH" for a user's YOLO ONNX file, on ``device``.
    ``max_people``: the most people the analysis follows; BlazePose's detector then skips its tiles on frames
    whose full view finds that many (:class:`PoseDetector`'s ``enough_people``; None: tiles always run)."""
    family, _, path = detector.partition(":")
    if family == "yolo" and path:
        return YoloPersonDetector(make_runner(path, device=device, strict_device=strict_device))
    if detector not in PERSON_DETECTORS:
        raise ModelError(f"person detector must be one of {PERSON_DETECTORS} or yolo:PATH, got {detector!r}")
    if detector == "nanodet":
        return PersonDetector(load_model("nanodet", device=device, strict_device=strict_device))
    return PoseDetector(load_model("pose_detection", device=device, strict_device=strict_device),
                        enough_people=max_people)


def make_pose_models(model: str = "full", device: str = "auto", strict_device: bool = False,
                     detector: str = "blazepose", max_people: int | None = None
                     ) -> tuple[PoseDetector | PersonDetector | YoloPersonDetector, PoseLandmarker]:
    """The ``detector`` ("nanodet", "blazepose", or "yolo:PATH" for a user's YOLO ONNX file) and the
    ``model`` landmark model ("lite", "full" or "heavy") on ``device``; ``max_people`` as
    :func:`make_person_detector` takes it."""
    if model not in POSE_LANDMARK_MODELS:
        raise ModelError(f"pose landmark model must be one of {POSE_LANDMARK_MODELS}, got {model!r}")
    # The two sessions are built at once (onnxruntime releases the GIL while it builds one): start-up is
    # the slower of the two rather than their sum.  A detector that fails to load is reported first.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rigcast-load") as pool:
        landmarks = pool.submit(load_model, f"pose_landmark_{model}", device=device, strict_device=strict_device)
        finder = make_person_detector(detector, device=device, strict_device=strict_device, max_people=max_people)
        landmarker = PoseLandmarker(landmarks.result())
    return finder, landmarker


def make_keypoint_model(pose: str, device: str = "auto", strict_device: bool = False, focal_px: float | None = None
                        ) -> VitPoseEstimator | Lightweight3DEstimator:
    """A user's keypoint model on ``device``: "vitpose:PATH" (an easy_ViTPose ONNX export, or its torch checkpoint
    run on torch; top-down 2D) or "lw3d:PATH" (a lightweight-human-pose-estimation-3d ONNX export, bottom-up 2D +
    3D, placed in the camera with ``focal_px``, None for its guess)."""
    family, _, path = pose.partition(":")
    if family not in ("vitpose", "lw3d") or not path:
        raise ModelError(f"expected a keypoint model vitpose:PATH or lw3d:PATH, got {pose!r}")
    if family == "vitpose" and Path(path).suffix.lower() in TORCH_SUFFIXES:
        return VitPoseEstimator(_vitpose_checkpoint(Path(path), device, strict_device))
    runner = make_runner(path, device=device, strict_device=strict_device)
    return VitPoseEstimator(runner) if family == "vitpose" else Lightweight3DEstimator(runner, fx=focal_px)


def _vitpose_checkpoint(path: Path, device: str, strict_device: bool):
    """easy_ViTPose's torch checkpoint ``path`` as a runner (torch, imported only here); ``device`` "tensorrt"
    is refused: a TensorRT engine is built from the ONNX export."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if device == "tensorrt":
        raise DeviceError(f"{path.name} is a torch checkpoint, run on cpu or cuda; for TensorRT, export it to "
                          f"ONNX (easy_ViTPose's export.py) and build an engine")
    from ..runners.torch import is_torchscript

    if is_torchscript(path):
        raise ModelError(f"{path.name}: expected easy_ViTPose's checkpoint (a state dict), found a TorchScript "
                         f"archive; pass the .pth checkpoint or its ONNX export")
    try:
        from .vitpose_torch import open_vitpose_checkpoint
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        raise ModelError(f"{path.name} is a torch checkpoint, which needs torch (not installed): install torch, "
                         f"or run easy_ViTPose's ONNX export of it") from None
    return open_vitpose_checkpoint(path, device=device, strict_device=strict_device)
