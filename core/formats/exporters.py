"""Exporters from a Take to other tools' layouts.

* ``to_vitpose_json``: easy_ViTPose's JSON, ``{"keypoints": [ {"<id>": [[y, x, score], ...]} per frame ],
  "skeleton": {"0": "nose", ...}}`` with pixel coordinates; rigcast adds its own keys beside these.
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
from ..skeletons import COCO_17, joint_mapping
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
