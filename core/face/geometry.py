"""MediaPipe's canonical face: the metric mesh that head pose is solved against.

``assets/models/canonical_face.npz`` holds MediaPipe's
``geometry_pipeline_metadata_landmarks`` (from ``@mediapipe/face_mesh``):
468 vertices in centimetres, their texture coordinates, 898 triangles, and
the landmark ids and weights that MediaPipe's Procrustes step uses.  The
canonical frame is right-handed: x towards the subject's left (image right
in a frontal view), y up, z out of the face (towards a camera it faces); the
origin lies inside the head, about 7.6 cm behind the nose tip.

Legend: V = 468 vertices, F = 898 triangles, K = Procrustes landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ModelError
from ..model_store import model_entry, models_dir, verify_file

CANONICAL_FACE = "canonical_face"
NUM_VERTICES = 468


@dataclass(frozen=True)
class CanonicalFace:
    """``xyz_cm`` (V, 3) canonical vertices in cm, ``uv`` (V, 2) texture coordinates (v down),
    ``triangles`` (F, 3) vertex ids, ``procrustes_ids`` (K,) and ``procrustes_weights`` (K,) > 0."""

    xyz_cm: np.ndarray
    uv: np.ndarray
    triangles: np.ndarray
    procrustes_ids: np.ndarray
    procrustes_weights: np.ndarray

    def __post_init__(self) -> None:
        xyz = np.array(self.xyz_cm, dtype=np.float64)
        uv = np.array(self.uv, dtype=np.float64)
        tri = np.array(self.triangles, dtype=np.int64)
        ids = np.array(self.procrustes_ids, dtype=np.int64).reshape(-1)
        weights = np.array(self.procrustes_weights, dtype=np.float64).reshape(-1)
        if xyz.shape != (NUM_VERTICES, 3) or not np.all(np.isfinite(xyz)):
            raise ValueError(f"xyz_cm must be ({NUM_VERTICES}, 3) finite, got {xyz.shape}")
        if uv.shape != (NUM_VERTICES, 2):
            raise ValueError(f"uv must be ({NUM_VERTICES}, 2), got {uv.shape}")
        if tri.ndim != 2 or tri.shape[1] != 3 or tri.size == 0 or tri.min() < 0 or tri.max() >= NUM_VERTICES:
            raise ValueError(f"triangles must be (F, 3) ids in [0, {NUM_VERTICES}), got {tri.shape} "
                             f"in [{tri.min(initial=0)}, {tri.max(initial=0)}]")
        if ids.size < 3 or ids.shape != weights.shape:
            raise ValueError(f"procrustes_ids and procrustes_weights must be (K,) with K >= 3, got "
                             f"{ids.shape} and {weights.shape}")
        if ids.min() < 0 or ids.max() >= NUM_VERTICES or not np.all(weights >= 0) or not weights.sum() > 0:
            raise ValueError("procrustes_ids must lie in [0, 468) and procrustes_weights be >= 0 with a positive sum")
        for a in (xyz, uv, tri, ids, weights):
            a.setflags(write=False)
        for name, a in (("xyz_cm", xyz), ("uv", uv), ("triangles", tri), ("procrustes_ids", ids),
                        ("procrustes_weights", weights)):
            object.__setattr__(self, name, a)

    @property
    def xyz_m(self) -> np.ndarray:
        """(V, 3) canonical vertices in metres."""
        return self.xyz_cm / 100.0

    @classmethod
    def from_npz(cls, path) -> "CanonicalFace":
        """Read the arrays ``xyz``, ``uv``, ``triangles``, ``procrustes_landmark_ids``, ``procrustes_weights``."""
        with np.load(path) as data:
            missing = {"xyz", "uv", "triangles", "procrustes_landmark_ids", "procrustes_weights"} - set(data.files)
            if missing:
                raise ModelError(f"canonical face file {path} lacks arrays {sorted(missing)}; found {data.files}")
            return cls(xyz_cm=data["xyz"], uv=data["uv"], triangles=data["triangles"],
                       procrustes_ids=data["procrustes_landmark_ids"], procrustes_weights=data["procrustes_weights"])


@lru_cache(maxsize=1)
def canonical_face() -> CanonicalFace:
    """The embedded canonical face, checked against the manifest's sha256; read once per process."""
    entry = model_entry(CANONICAL_FACE)
    path = models_dir() / entry["file"]
    verify_file(path, entry["sha256"])
    try:
        return CanonicalFace.from_npz(path)
    except ValueError as exc:
        raise ModelError(f"canonical face file {path} is malformed: {exc}") from exc
