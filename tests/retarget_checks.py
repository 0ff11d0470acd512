"""Shared checks for retargeting real mocap: world directions of source and result segments, per frame."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from rigcast.retarget.canonical import P

DATA = Path(__file__).resolve().parent / "data"
CMU_CLIPS = ["cmu_02_01_walk.bvh", "cmu_131_03_hop.bvh"]
"""Committed under tests/data (CMU's BVH conversion, see ATTRIBUTION.md): CMU's naming (LHipJoint, LowerBack)."""
PACKAGE_MOCAP = {
    "freebvh_mixamo_fingers.bvh": ("bvhtoolbox==0.1.3", "bvhtoolbox-0.1.3.tar.gz",
                                   "bvhtoolbox-0.1.3/tests/example_files/test_freebvh.bvh"),
    "mocapbank.bvh": ("bvhtoolbox==0.1.3", "bvhtoolbox-0.1.3.tar.gz",
                      "bvhtoolbox-0.1.3/tests/example_files/test_mocapbank.bvh"),
}
"""Real mocap inside a registry package (bvhtoolbox's sdist, MIT), fetched at test setup, never committed:
a Mixamo-rigged clip (``mixamorig:`` names, five fingers of three segments, 55 joints with its eyes, 69 frames) and a
MocapBank clip, a third naming family (``Chest``/``Chest2``, ``LeftCollar``, ``LeftShoulder`` for the upper arm,
``LeftHip``/``LeftKnee``/``LeftAnkle``; 19 joints, 455 frames)."""
CLIPS = CMU_CLIPS + list(PACKAGE_MOCAP)


@lru_cache(maxsize=None)
def clip_path(name: str) -> Path:
    """The path of a real mocap clip of :data:`CLIPS`: committed, or fetched from its package into a cache."""
    if name not in PACKAGE_MOCAP:
        return DATA / name
    from fixtures_images import package_file, photo_cache

    path = photo_cache() / "mocap" / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(package_file(*PACKAGE_MOCAP[name]))
    return path

LIMBS = [(f"{side}_{a}", f"{side}_{b}") for side in ("left", "right")
         for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"), ("ankle", "toe"))]
LINES = [("right_hip", "left_hip"), ("right_shoulder", "left_shoulder")]
"""Lines across branching joints: the hip line (thigh roots) and the chest line (upper-arm roots)."""


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(...) angles in degrees between direction vectors (..., 3)."""
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


def direction_errors(source: dict[str, np.ndarray], result: dict[str, np.ndarray], segments) -> dict[str, np.ndarray]:
    """Per segment (a, b), the (T,) angles between the source's and the result's a -> b directions.

    ``source``/``result``: point name -> (T, 3) world positions (canonical point names).
    """
    return {f"{a}->{b}": angle_deg(source[b] - source[a], result[b] - result[a]) for a, b in segments}


def summary(errors: dict[str, np.ndarray]) -> tuple[float, float, str]:
    """Median and p95 over all segments and frames, and the segment with the worst p95."""
    values = np.concatenate([e for e in errors.values()])
    worst = max(errors, key=lambda k: np.percentile(errors[k], 95))
    return float(np.median(values)), float(np.percentile(values, 95)), worst


def canonical_dict(xyz: np.ndarray) -> dict[str, np.ndarray]:
    """Canonical points (T, K, 3) as name -> (T, 3)."""
    return {name: xyz[:, i] for name, i in P.items()}
