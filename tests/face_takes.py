"""Takes with real faces for overlay tests and benchmarks, until rigcast's own face pipeline lands.

Scaffolding, not product code: MediaPipe's FaceMesh (the reference
implementation, installed --no-deps) finds 478 landmarks per frame; OpenCV's
solvePnP fits the canonical face to the 33 landmarks MediaPipe itself uses
for its head pose (``procrustes_landmark_ids`` of canonical_face.npz: eyes,
nose, forehead, cheekbones; none move with the jaw); metric landmarks are the
observed pixels back-projected at the depth the pose gives each landmark, so
they carry the real expression (an open mouth) that the rigid pose does not.
Iris points (468..477) are back-projected at the mean depth of their four
nearest mesh landmarks in the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rigcast.camera import Intrinsics
from rigcast.formats.take import Face, FaceTopology, Take
from rigcast.model_store import models_dir
from rigcast.video import open_footage


def canonical_face() -> dict[str, np.ndarray]:
    """canonical_face.npz with xyz converted to metres (axes unchanged: y up, z out of the face)."""
    with np.load(models_dir() / "canonical_face.npz", allow_pickle=False) as d:
        out = {k: d[k] for k in d.files}
    out["xyz"] = out["xyz"].astype(np.float64) / 100.0
    return out


def face_landmarks_px(frames: list[np.ndarray]) -> np.ndarray:
    """(T, 478, 2) MediaPipe FaceMesh landmarks in pixels, NaN where no face was found."""
    import mediapipe as mp

    out = np.full((len(frames), 478, 2), np.nan)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True,
                                         min_detection_confidence=0.5) as mesh:
        for k, rgb in enumerate(frames):
            found = mesh.process(rgb).multi_face_landmarks
            if found:
                h, w = rgb.shape[:2]
                out[k] = [(p.x * w, p.y * h) for p in found[0].landmark]
    return out


def head_pose(landmarks_px: np.ndarray, intrinsics: Intrinsics, canonical: dict, guess=None):
    """(R (3, 3), t (3,)) of the canonical face (metres) from one frame's (478, 2) landmarks."""
    import cv2

    ids = canonical["procrustes_landmark_ids"]
    obj = canonical["xyz"][ids].astype(np.float64)
    img = landmarks_px[ids].astype(np.float64)
    if guess is None:
        ok, rvec, tvec = cv2.solvePnP(obj, img, intrinsics.matrix, None, flags=cv2.SOLVEPNP_SQPNP)
        ok, rvec, tvec = cv2.solvePnP(obj, img, intrinsics.matrix, None, rvec, tvec, useExtrinsicGuess=True,
                                      flags=cv2.SOLVEPNP_ITERATIVE)
    else:
        rvec, tvec = cv2.Rodrigues(guess[0])[0], guess[1].reshape(3, 1).copy()
        ok, rvec, tvec = cv2.solvePnP(obj, img, intrinsics.matrix, None, rvec, tvec, useExtrinsicGuess=True,
                                      flags=cv2.SOLVEPNP_ITERATIVE)
    assert ok
    return cv2.Rodrigues(rvec)[0], tvec.ravel()


def metric_landmarks(landmarks_px: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
                     intrinsics: Intrinsics, canonical: dict) -> np.ndarray:
    """(478, 3) camera-space landmarks: the observed pixels at the depths the head pose gives them."""
    depth = np.empty(len(landmarks_px))
    depth[:468] = (canonical["xyz"] @ rotation.T + translation)[:, 2]
    for first in (468, 473):  # each iris: centre + 4 ring points
        iris = landmarks_px[first:first + 5]
        d = np.linalg.norm(landmarks_px[None, :468] - iris.mean(0)[None, None], axis=2)[0]
        depth[first:first + 5] = depth[:468][np.argsort(d)[:4]].mean()
    x = (landmarks_px[:, 0] - intrinsics.cx) / intrinsics.fx * depth
    y = (landmarks_px[:, 1] - intrinsics.cy) / intrinsics.fy * depth
    return np.stack([x, y, depth], axis=1)


def face_take(path: Path, hfov_deg: float = 60.0) -> Take:
    """A Take of ``path`` with one face (478 landmarks) on every frame where FaceMesh finds one."""
    with open_footage(path) as footage:
        frames, times, indices = [], [], []
        for frame in footage:
            frames.append(frame.rgb)
            times.append(frame.time_s)
            indices.append(frame.index)
        info = footage.info
    intrinsics = Intrinsics.from_fov(info.width, info.height, hfov_deg)
    canonical = canonical_face()
    px = face_landmarks_px(frames)
    found = np.all(np.isfinite(px), axis=(1, 2))
    rotations, translations, xyz = [], [], []
    guess = None
    for k in np.flatnonzero(found):
        guess = head_pose(px[k], intrinsics, canonical, guess)
        rotations.append(guess[0])
        translations.append(guess[1])
        xyz.append(metric_landmarks(px[k], *guess, intrinsics, canonical))
    face = Face(face_id=0, body_id=-1, frame_index=np.asarray(indices)[found], xy=px[found], xyz=np.asarray(xyz),
                rotation=np.asarray(rotations), translation=np.asarray(translations),
                conf=np.ones(int(found.sum())))
    topology = FaceTopology(triangles=canonical["triangles"], uv=canonical["uv"], canonical_xyz=canonical["xyz"])
    return Take(video=info, intrinsics=intrinsics, frame_indices=np.asarray(indices), timestamps_s=np.asarray(times),
                faces=(face,), face_topology=topology, meta={"source": "tests/face_takes.py (MediaPipe FaceMesh)"})
