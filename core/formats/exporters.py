"""Exporters from a Take to other tools' layouts.

* ``to_vitpose_json``: easy_ViTPose's JSON, ``{"keypoints": [ {"<id>": [[y, x, score], ...]} per frame ],
  "skeleton": {"0": "nose", ...}}`` with pixel coordinates; rigcast adds its own keys beside these.
* ``to_easy_vitpose_json``: exactly what easy_ViTPose's ``inference.py --save-json`` writes, nothing added:
  ``{"keypoints": [ {"<id>": [[y, x, score] x J]} per frame ], "skeleton": {"0": "nose", ...}}``, its 25
  keypoints (``coco_25``) or COCO's 17 (``coco``).
* ``to_videopose3d_npz``: VideoPose3D's custom-dataset 2D file (``positions_2d`` and ``metadata``) in
  COCO-17 order, which its ``run.py -d custom`` reads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .. import __version__
from ..face.head_pose import euler_ypr_deg_series
from ..fileio import write_atomic
from ..errors import InputError
from ..skeletons import BLAZEPOSE_33, COCO_17, VITPOSE_25, Skeleton, joint_mapping
from .take import Take


def _num(v: float, ndigits: int) -> float | None:
    return None if not math.isfinite(v) else round(float(v), ndigits)


def to_vitpose_dict(take: Take) -> dict:
    """easy_ViTPose-compatible dict: one keypoint dict per analysed frame, keyed by track id.

    Each joint is ``[y, x, score]`` in pixels (easy_ViTPose's row-first
    order); rigcast's extra ``xyz`` section holds ``[x, y, z]`` metres per
    joint in the same frame/track layout.  Missing joints are ``null``
    coordinates with score 0.
    """
    skeleton = take.tracks[0].skeleton if take.tracks else None
    frame_pos = {int(f): i for i, f in enumerate(take.frame_indices)}
    keypoints: list[dict] = [{} for _ in take.frame_indices]
    xyz: list[dict] = [{} for _ in take.frame_indices]
    roots: list[dict] = [{} for _ in take.frame_indices]
    for track in take.tracks:
        key = str(track.track_id)
        for t, f in enumerate(track.frame_index):
            i = frame_pos[int(f)]
            keypoints[i][key] = [[_num(p[1], 2), _num(p[0], 2), _num(c, 4)] for p, c in zip(track.xy[t], track.conf[t])]
            xyz[i][key] = [[_num(v, 4) for v in p] for p in track.xyz[t]]
            roots[i][key] = [_num(v, 4) for v in track.root_xyz[t]]
    out = {
        "keypoints": keypoints,
        "skeleton": {str(i): n for i, n in enumerate(skeleton.joint_names)} if skeleton else {},
        # rigcast's additions
        "rigcast_version": __version__,
        "fps": str(take.video.fps),
        "fps_float": float(take.video.fps),
        "frame_indices": take.frame_indices.tolist(),
        "timestamps_s": [round(float(t), 6) for t in take.timestamps_s],
        "video": take.video.to_dict(),
        "intrinsics": take.intrinsics.to_dict(),
        "skeleton_name": skeleton.name if skeleton else None,
        "parents": list(skeleton.parents) if skeleton else [],
        "xyz": xyz,
        "root_xyz": roots,
        "faces": _faces_section(take, frame_pos),
    }
    return out


def _faces_section(take: Take, frame_pos: dict[int, int]) -> list[dict]:
    """Per analysed frame, ``{"<face id>": {...}}`` with landmarks ``[[x, y], ...]`` in pixels, the head pose
    (rotation rows, translation in metres, yaw/pitch/roll in degrees) and the linked body id."""
    frames: list[dict] = [{} for _ in take.frame_indices]
    for face in take.faces:
        ypr = euler_ypr_deg_series(face.rotation)
        for t, f in enumerate(face.frame_index):
            frames[frame_pos[int(f)]][str(face.face_id)] = {
                "body_id": face.body_id if face.body_id >= 0 else None,
                "conf": _num(face.conf[t], 4),
                "landmarks": [[_num(p[0], 2), _num(p[1], 2)] for p in face.xy[t]],
                "rotation": [[_num(v, 6) for v in row] for row in face.rotation[t]],
                "translation": [_num(v, 4) for v in face.translation[t]],
                "yaw_pitch_roll_deg": [_num(v, 2) for v in ypr[t]],
            }
    return frames


def to_vitpose_json(take: Take, path: str | Path) -> Path:
    data = to_vitpose_dict(take)
    return write_atomic(Path(path), lambda f: f.write(json.dumps(data, allow_nan=False).encode()))


# VITPOSE_25 points that BlazePose-33 lacks by name: the midpoint of these joints (one joint: that joint).  Its
# small toes have no counterpart and are written missing.
_VITPOSE25_FROM_BLAZEPOSE = {"neck": ("left_shoulder", "right_shoulder"), "hip": ("left_hip", "right_hip"),
                             "left_big_toe": ("left_foot_index",), "right_big_toe": ("right_foot_index",)}


def as_vitpose25(xy: np.ndarray, conf: np.ndarray, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``xy`` (T, J, 2) and ``conf`` (T, J) of ``skeleton`` → VITPOSE_25's (T, 25, 2) and (T, 25).

    VITPOSE_25 passes through; BLAZEPOSE_33 gives the 19 joints of the same name, neck and pelvis ("hip") as
    midpoints of the shoulders and hips, big toes from the foot index points (conf: the least of the joints
    used); its small toes are missing (NaN, conf 0).
    """
    if skeleton.name == VITPOSE_25.name:
        return np.asarray(xy, dtype=np.float64), np.asarray(conf, dtype=np.float64)
    if skeleton.name != BLAZEPOSE_33.name:
        raise InputError(f"expected tracks of {VITPOSE_25.name}, {COCO_17.name} or {BLAZEPOSE_33.name} for "
                         f"easy_ViTPose's layout, found {skeleton.name}")
    xy, conf = np.asarray(xy, dtype=np.float64), np.asarray(conf, dtype=np.float64)
    out_xy = np.full(xy.shape[:1] + (VITPOSE_25.num_joints, 2), np.nan)
    out_conf = np.zeros(xy.shape[:1] + (VITPOSE_25.num_joints,))
    for j, name in enumerate(VITPOSE_25.joint_names):
        parts = [skeleton.index(n) for n in _VITPOSE25_FROM_BLAZEPOSE.get(name, (name,)) if n in skeleton.joint_names]
        if parts:
            out_xy[:, j] = xy[:, parts].mean(axis=1)
            out_conf[:, j] = conf[:, parts].min(axis=1)
    return out_xy, out_conf


def to_easy_vitpose_dict(take: Take) -> dict:
    """easy_ViTPose's own JSON layout (its ``inference.py --save-json``), nothing added.

    ``keypoints``: one dict per analysed frame, ``{"<track id>": [[y, x,
    score], ...]}`` (easy_ViTPose's row-first order: its decoder's (x, y) are
    flipped, then the score appended), frame px; ``skeleton``: ``{"0":
    "nose", ...}``, the joint names by index.  Tracks of ``VITPOSE_25``
    (``--pose vitpose`` with a 25-keypoint model) and ``BLAZEPOSE_33`` (see
    :func:`as_vitpose25`) are written with its 25 keypoints (its ``coco_25``);
    ``COCO_17`` tracks with COCO's 17 (its ``coco``).  A joint the Take has
    not got (NaN) is written ``[0.0, 0.0, 0.0]``: score 0, so easy_ViTPose's
    readers, which threshold the score, skip it, and the list stays numeric.
    """
    names = {t.skeleton.name for t in take.tracks}
    if len(names) > 1:
        raise InputError(f"expected one skeleton for all tracks in easy_ViTPose's layout, found {sorted(names)}")
    coco = names == {COCO_17.name}
    skeleton = COCO_17 if coco else VITPOSE_25
    frame_pos = {int(f): i for i, f in enumerate(take.frame_indices)}
    keypoints: list[dict] = [{} for _ in take.frame_indices]
    for track in take.tracks:
        xy, conf = (track.xy.astype(np.float64), track.conf.astype(np.float64)) if coco else \
            as_vitpose25(track.xy, track.conf, track.skeleton)
        missing = ~(np.all(np.isfinite(xy), axis=2) & (conf > 0))
        yx_score = np.concatenate([xy[..., ::-1], conf[..., None]], axis=2)
        yx_score[missing] = 0.0
        for t, f in enumerate(track.frame_index):
            keypoints[frame_pos[int(f)]][str(track.track_id)] = [
                [round(float(y), 3), round(float(x), 3), round(float(c), 4)] for y, x, c in yx_score[t]]
    return {"keypoints": keypoints, "skeleton": {str(i): n for i, n in enumerate(skeleton.joint_names)}}


def to_easy_vitpose_json(take: Take, path: str | Path) -> Path:
    """Write :func:`to_easy_vitpose_dict` as JSON to ``path``."""
    data = to_easy_vitpose_dict(take)
    return write_atomic(Path(path), lambda f: f.write(json.dumps(data, allow_nan=False).encode()))


def _dense_coco_xy(take: Take, track) -> tuple[np.ndarray, int]:
    """(T, 17, 2) COCO keypoints over the track's whole frame span, gaps linearly interpolated."""
    idx = joint_mapping(track.skeleton, COCO_17)
    first, last = int(track.frame_index[0]), int(track.frame_index[-1])
    span = take.frame_indices[(take.frame_indices >= first) & (take.frame_indices <= last)]
    xy = track.xy[:, idx, :].astype(np.float64)
    out = np.empty((len(span), len(idx), 2), dtype=np.float32)
    for j in range(len(idx)):
        for c in range(2):
            v = xy[:, j, c]
            ok = np.isfinite(v)
            out[:, j, c] = np.interp(span, track.frame_index[ok], v[ok]) if ok.any() else 0.0
    return out, first


def to_videopose3d_npz(take: Take, path: str | Path, name: str | None = None) -> Path:
    """VideoPose3D custom-dataset 2D keypoints: one entry per track, ``<name>_track<id>``.

    The layout (``positions_2d[video]["custom"] = [(T, 17, 2)]`` and
    ``metadata`` with ``layout_name``, ``num_joints``, ``keypoints_symmetry``
    and ``video_metadata``) is what VideoPose3D's ``data/prepare_data_2d_custom.py``
    writes, stored as object arrays because that is how VideoPose3D reads it.
    """
    name = name or Path(take.video.source).stem or "video"
    positions, video_meta, first_frames = {}, {}, {}
    for track in take.tracks:
        key = f"{name}_track{track.track_id}"
        xy, first = _dense_coco_xy(take, track)
        positions[key] = {"custom": [xy]}
        video_meta[key] = {"w": int(take.video.width), "h": int(take.video.height)}
        first_frames[key] = first
    left = [i for i, n in enumerate(COCO_17.joint_names) if n.startswith("left_")]
    metadata = {
        "layout_name": "coco",
        "num_joints": COCO_17.num_joints,
        "keypoints_symmetry": [left, [COCO_17.mirror[i] for i in left]],
        "video_metadata": video_meta,
        "rigcast": {"fps": str(take.video.fps), "first_frame": first_frames, "version": __version__},
    }
    return write_atomic(Path(path), lambda f: np.savez_compressed(f, positions_2d=positions, metadata=metadata))
