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


def _split(value: str, option: str, builtin: tuple[str, ...], user: dict[str, str]) -> tuple[str, str | None]:
    """A model choice ``value`` → (name, path): (name, None) for one of ``builtin``, (family, PATH) for
    "family:PATH" with a family of ``user`` (family → what PATH names, e.g. "path").  Raises ValueError, one line,
    naming ``option`` and what it accepts, for anything else."""
    family, sep, path = str(value).partition(":")
    if sep and family in user and path:
        return family, path
    if not sep and value in builtin:
        return value, None
    accepted = (f"one of {', '.join(builtin)}" if len(builtin) > 1 else builtin[0])
    raise ValueError(f"{option} must be {accepted} or {' or '.join(f'{f}:{k.upper()}' for f, k in user.items())}, "
                     f"got {value!r}")


def split_person_detector(value: str) -> tuple[str, str | None]:
    """A ``--person-detector`` value → (name, path): ("nanodet", None) for an embedded one, ("yolo", "x.onnx")
    for "yolo:x.onnx".  Raises ValueError, one line, for anything else."""
    return _split(value, "person_detector", PERSON_DETECTOR_CHOICES, dict.fromkeys(USER_PERSON_DETECTORS, "path"))


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
    return _split(value, "pose", ("blazepose",), dict.fromkeys(USER_POSE_MODELS, "path"))


FACE_SOURCES = ("mediapipe",)
"""``--face`` values without a file: ``mediapipe``, the embedded BlazeFace and face mesh (:mod:`.faces`)."""
USER_FACE_SOURCES = {"img2pose": "file", "3ddfa": "folder"}
"""``--face FAMILY:PATH``: a user's own face model (:mod:`.face_sources`), by family, and whether PATH is a file or
a folder (``img2pose``: an img2pose ONNX export, boxes and a 6DoF head pose per face, see
:mod:`rigcast.models.img2pose`; ``3ddfa``: a folder of 3DDFA_V2 exports, a dense BFM mesh per face)."""


def split_face_source(value: str) -> tuple[str, str | None]:
    """A ``--face`` value → (family, path): ("mediapipe", None) for the embedded models, ("img2pose", "i.onnx") for
    "img2pose:i.onnx".  Raises ValueError, one line, for anything else."""
    return _split(value, "face source", FACE_SOURCES, USER_FACE_SOURCES)
