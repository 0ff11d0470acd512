"""rigcast's per-frame analysis: bodies (:mod:`.body`), faces (:mod:`.faces`), and the run that drives them
(:mod:`.analyze`).  Kept free of imports so that the CLI can read the choices below without loading models."""

FRAMES_IN_FLIGHT = (1, 2)
"""Frames whose faces :class:`~rigcast.pipeline.faces.FaceAnalyzer` tracks at once (see :mod:`.faces`)."""

DEFAULT_MAX_PEOPLE = 16
"""Most people followed at once unless asked otherwise (a crowd of 10 needs no flag)."""
PERSON_DETECTOR_CHOICES = ("auto", "nanodet", "blazepose")
"""``--person-detector``: auto picks BlazePose's own detector for one person, NanoDet's boxes for more."""
USER_PERSON_DETECTORS = ("yolo",)
"""``--person-detector FAMILY:PATH``: a user's own model file of that family (``yolo``: an ultralytics YOLOv5 or
YOLOv8 ONNX export, see :mod:`rigcast.models.yolo`)."""


def split_person_detector(value: str) -> tuple[str, str | None]:
    """A ``--person-detector`` value → (name, path): ("nanodet", None) for an embedded one, ("yolo", "x.onnx")
    for "yolo:x.onnx".  Raises ValueError, one line, for anything else."""
    family, sep, path = str(value).partition(":")
    if sep and family in USER_PERSON_DETECTORS and path:
        return family, path
    if not sep and value in PERSON_DETECTOR_CHOICES:
        return value, None
    raise ValueError(f"person_detector must be one of {', '.join(PERSON_DETECTOR_CHOICES)} or "
                     f"{' or '.join(f + ':PATH' for f in USER_PERSON_DETECTORS)}, got {value!r}")


USER_POSE_MODELS = ("vitpose", "lw3d")
"""``--pose FAMILY:PATH``: a user's own keypoint model file instead of the embedded BlazePose (``vitpose``: an
easy_ViTPose ONNX export or torch checkpoint, 17 or 25 keypoints in person boxes, see :mod:`rigcast.models.vitpose`; ``lw3d``: a
lightweight-human-pose-estimation-3d ONNX export, bottom-up, 19 joints in 2D and 3D, see
:mod:`rigcast.models.lightweight3d`)."""
BOTTOM_UP_POSE_MODELS = ("lw3d",)
"""Of ``USER_POSE_MODELS``, those that find people themselves: no person detector runs."""


def split_pose_model(value: str) -> tuple[str, str | None]:
    """A ``--pose`` value → (family, path): ("blazepose", None) for the embedded models, ("vitpose", "v.onnx") for
    "vitpose:v.onnx".  Raises ValueError, one line, for anything else."""
    family, sep, path = str(value).partition(":")
    if sep and family in USER_POSE_MODELS and path:
        return family, path
    if not sep and value == "blazepose":
        return value, None
    raise ValueError(f"pose must be blazepose or {' or '.join(f + ':PATH' for f in USER_POSE_MODELS)}, "
                     f"got {value!r}")


FACE_SOURCES = ("mediapipe",)
"""``--face`` values without a file: ``mediapipe``, the embedded BlazeFace and face mesh (:mod:`.faces`)."""
USER_FACE_SOURCES = {"img2pose": "file", "3ddfa": "folder"}
"""``--face FAMILY:PATH``: a user's own face model (:mod:`.face_sources`), by family, and whether PATH is a file or
a folder (``img2pose``: an img2pose ONNX export, boxes and a 6DoF head pose per face, see
:mod:`rigcast.models.img2pose`; ``3ddfa``: a folder of 3DDFA_V2 exports, a dense BFM mesh per face)."""


def split_face_source(value: str) -> tuple[str, str | None]:
    """A ``--face`` value → (family, path): ("mediapipe", None) for the embedded models, ("img2pose", "i.onnx") for
    "img2pose:i.onnx".  Raises ValueError, one line, for anything else."""
    family, sep, path = str(value).partition(":")
    if sep and family in USER_FACE_SOURCES and path:
        return family, path
    if not sep and value in FACE_SOURCES:
        return value, None
    raise ValueError(f"face source must be {' or '.join(FACE_SOURCES)} or "
                     f"{' or '.join(f'{f}:{k.upper()}' for f, k in USER_FACE_SOURCES.items())}, got {value!r}")
