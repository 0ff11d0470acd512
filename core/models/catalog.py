"""What ``rigcast models list`` shows: every model an analysis would use, embedded or the user's own, with its
family, its file, its tensors and what would run it.

Each user file is opened by the same code that runs it in an analysis, so a file of the wrong family or with
mismatched tensors fails here with the same one-line error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..model_store import load_model, manifest, models_dir
from ..runners import TensorSpec


@dataclass(frozen=True)
class ModelInfo:
    """One model: ``role`` (what it does in an analysis), ``family``, ``path``, its tensors and ``runs_on`` (the
    execution provider, or ``numpy`` for a VideoPose3D checkpoint read without torch)."""

    role: str
    family: str
    path: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    runs_on: str


def _runner_info(role: str, family: str, path: str | Path, runner) -> ModelInfo:
    return ModelInfo(role, family, Path(path), tuple(runner.inputs), tuple(runner.outputs), runner.provider)


def embedded_models(device: str = "auto") -> list[ModelInfo]:
    """The embedded models of ``assets/models`` (networks only, not data such as the canonical face), each opened
    on ``device``."""
    infos = []
    for name, entry in manifest()["models"].items():
        if not entry["file"].endswith(".onnx"):
            continue
        runner = load_model(name, device=device)
        infos.append(_runner_info("embedded", name, models_dir() / entry["file"], runner))
    return infos


def user_models(detector: str | None = None, pose: str | None = None, lift: str | None = None,
                device: str = "auto", face: str | None = None) -> list[ModelInfo]:
    """The user's own files as ``analyze`` takes them: ``detector`` "yolo:PATH", ``pose`` "vitpose:PATH" or "lw3d:PATH", ``lift``
    "videopose3d:PATH", ``face`` "img2pose:FILE"; each checked as an analysis checks it."""
    from ..lift.temporal import load_lifter
    from .pose import make_keypoint_model, make_person_detector

    infos = []
    if detector:
        family, _, path = detector.partition(":")
        found = make_person_detector(detector, device=device)
        infos.append(_runner_info("person detector", family, path, found.runner))
    if pose:
        family, _, path = pose.partition(":")
        infos.append(_runner_info("pose", family, path, make_keypoint_model(pose, device=device).runner))
    if lift:
        family, _, path = lift.partition(":")
        if family != "videopose3d" or not path:
            raise ModelError(f"a lifting model must be videopose3d:PATH, got {lift!r}")
        lifter = load_lifter(path, device=device)
        runner = getattr(lifter, "runner", None)
        if runner is not None:
            infos.append(_runner_info("lift", family, path, runner))
        else:  # a checkpoint, run in numpy
            frames = lifter.receptive_field
            infos.append(ModelInfo("lift", family, Path(path),
                                   (TensorSpec("keypoints_2d", (1, frames, lifter.num_joints_in, 2)),),
                                   (TensorSpec("pose_3d", (1, 1, lifter.num_joints_out, 3)),), "numpy"))
    if face:
        from ..pipeline.face_sources import open_face_model

        family, _, path = face.partition(":")
        infos.append(_runner_info("face", family, path, open_face_model(face, device=device).runner))
    return infos


def _tensors(specs: tuple[TensorSpec, ...]) -> str:
    return ", ".join(f"{s.name} {'x'.join('?' if d is None else str(d) for d in s.shape)} {s.dtype}" for s in specs)


def format_models(infos: list[ModelInfo]) -> str:
    """One block per model: role and family, file, inputs, outputs and what runs it."""
    lines = []
    for info in infos:
        lines += [f"{info.role}: {info.family}", f"  file     {info.path}", f"  inputs   {_tensors(info.inputs)}",
                  f"  outputs  {_tensors(info.outputs)}", f"  runs on  {info.runs_on}"]
    return "\n".join(lines)
