"""Temporal lifting of a Take's 2D tracks to 3D with VideoPose3D: each body track's ``xy`` → a ``Lift``.

Legend: T frames, J joints.

Per track: its 2D points are laid out as the model was trained (H36M-17 for VideoPose3D's CPN and
ground-truth models; COCO-17 for its Detectron COCO model, ``layout="coco17"``), missing points (NaN) are
filled by linear interpolation over the track's frames (held at either end), the sequence is normalised to
the screen and edge-padded as VideoPose3D's evaluation does, and the model's H36M-17 output has its root
set to 0 (VideoPose3D evaluates root-relative poses).  The track's frames are taken as one contiguous
sequence, as the tracker hands them over.  The original 2D and 3D stay as they are; the result is stored
beside them under ``source``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError
from ..formats.take import Lift, Take, Track
from ..skeletons import H36M_17, coco17_from, h36m17_from

log = logging.getLogger(__name__)

LAYOUTS = ("h36m17", "coco17")


def load_lifter(path: str | Path, causal: bool = False, device: str = "cpu"):
    """A VideoPose3D lifter from ``path``: a checkpoint (run in numpy, no torch), an exported ``.onnx``
    (onnxruntime), or a TorchScript archive (torch).  Each has ``lift(xy, width, height)``."""
    from ..models.videopose3d import RunnerTemporalModel, TemporalModel
    from ..runners import TensorSpec, make_runner
    from ..runners.torch import is_torchscript

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"lifting model not found: {path}")
    if path.suffix.lower() == ".onnx":
        return RunnerTemporalModel(make_runner(path, device=device), causal=causal)
    if is_torchscript(path):
        specs = {"inputs": (TensorSpec("keypoints_2d", (1, None, 17, 2)),),
                 "outputs": (TensorSpec("pose_3d", (1, None, None, 3)),)}
        return RunnerTemporalModel(make_runner(path, backend="torch", device=device, **specs), causal=causal)
    return TemporalModel.from_checkpoint(path, causal=causal)


def fill_gaps(xy: np.ndarray) -> np.ndarray:
    """``xy (T, J, D)`` with NaN points filled by linear interpolation over frames, held at the ends.

    Raises :class:`InputError` naming the joints that are never seen.
    """
    xy = np.array(xy, dtype=np.float64)
    seen = np.isfinite(xy).all(axis=-1)  # (T, J)
    never = np.flatnonzero(~seen.any(axis=0))
    if len(never):
        raise InputError(f"joints {never.tolist()} are never seen in {len(xy)} frames; cannot lift them")
    frames = np.arange(len(xy))
    for j in np.flatnonzero(~seen.all(axis=0)):
        for d in range(xy.shape[-1]):
            xy[:, j, d] = np.interp(frames, frames[seen[:, j]], xy[seen[:, j], j, d])
    return xy


def lift_track(track: Track, lifter, width: int, height: int, layout: str = "h36m17") -> np.ndarray:
    """Lift one track's pixel ``xy (T, J, 2)`` to root-relative H36M-17 ``xyz (T, 17, 3)``."""
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    try:
        xy = h36m17_from(track.xy, track.skeleton) if layout == "h36m17" else coco17_from(track.xy, track.skeleton)
    except KeyError as exc:
        raise InputError(f"track {track.track_id} ({track.skeleton.name}) cannot be laid out as {layout}: "
                         f"{exc.args[0]}") from None
    xyz = lifter.lift(fill_gaps(xy), width, height)
    if xyz.shape[1:] != (H36M_17.num_joints, 3):
        raise ModelError(f"a VideoPose3D lifter for rigcast returns H36M-17 joints (T, 17, 3), got {xyz.shape}")
    xyz = xyz.astype(np.float32)
    xyz[:, 0] = 0.0
    return xyz


def lift_take(take: Take, lifter, source: str = "lift", layout: str = "h36m17", model: str = "videopose3d",
              track_ids: tuple[int, ...] | None = None) -> Take:
    """A copy of ``take`` with each body track (or those in ``track_ids``) lifted under ``source``.

    A track whose joints are never all seen is skipped with a warning; it keeps no ``source`` lift.
    """
    lifts = []
    for track in take.tracks:
        if track_ids is not None and track.track_id not in track_ids:
            continue
        try:
            xyz = lift_track(track, lifter, take.video.width, take.video.height, layout)
        except InputError as exc:
            log.warning("track %d not lifted: %s", track.track_id, exc)
            continue
        lifts.append(Lift(source=source, track_id=track.track_id, skeleton=H36M_17, frame_index=track.frame_index,
                          xyz=xyz, model=model))
    return take.with_lifts(tuple(lifts))
