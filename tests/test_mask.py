"""The medical mask asset (tools/make_mask.py → assets/mask/) and its placement on a head pose."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rigcast.errors import InputError
from rigcast.model_store import assets_dir, models_dir
from rigcast.overlay import MaskAsset, fit_mask, fit_masks

ROOT = Path(__file__).resolve().parent.parent
MASK_DIR = assets_dir() / "mask"
NPZ_DTYPES = {"vertices": ("f", (None, 3)), "faces": ("i", (None, 3)), "uv": ("f", (None, 2)), "part": ("u", (None,)),
              "colors": ("f", (2, 3)), "shade": ("f", (None,)), "deform_weight": ("f", (None,)),
              "anchor_landmark_ids": ("i", (None,)), "anchor_xyz": ("f", (None, 3)), "anchor_names": ("U", (None,)),
              "anchor_face": ("i", (None,)), "anchor_bary": ("f", (None, 3)), "anchor_landmark_xyz": ("f", (None, 3))}


@pytest.fixture(scope="module")
def asset() -> MaskAsset:
    return MaskAsset.load()


@pytest.fixture(scope="module")
def canonical_m() -> np.ndarray:
    with np.load(models_dir() / "canonical_face.npz") as d:
        return d["xyz"].astype(np.float64) / 100.0


def frontal_pose(yaw_deg: float = 0.0, distance_m: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A head facing the camera (canonical y up, z out of the face → OpenCV y down, z forward), turned by yaw."""
    y = np.radians(yaw_deg)
    turn = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    return np.diag([1.0, -1.0, -1.0]) @ turn, np.array([0.02, -0.01, distance_m])


# -- the asset ------------------------------------------------------------------------------------------------------


def test_npz_arrays_are_plain_typed_arrays():
    with np.load(MASK_DIR / "medical_mask.npz", allow_pickle=False) as d:
        assert set(NPZ_DTYPES) <= set(d.files)
        for name, (kind, shape) in NPZ_DTYPES.items():
            a = d[name]
            assert a.dtype.kind == kind, f"{name}: {a.dtype}"
            assert a.ndim == len(shape) and all(s is None or s == n for s, n in zip(shape, a.shape)), (name, a.shape)
        assert d["faces"].dtype == np.int32 and d["part"].dtype == np.uint8 and d["vertices"].dtype == np.float32


def test_mesh_is_valid_and_light(asset):
    v, f = asset.num_vertices, len(asset.faces)
    assert 500 < v < 5000
    assert f > v
    assert asset.faces.min() >= 0 and asset.faces.max() < v
    assert len(np.unique(asset.faces)) == v, "every vertex is used"
    tri = asset.xyz[asset.faces].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert area.min() > 1e-10, "no degenerate triangles"
    assert set(np.unique(asset.part)) == {0, 1}
    assert np.all(np.isfinite(asset.uv)) and asset.uv.min() >= 0 and asset.uv.max() <= 1
    body_uv = asset.uv[np.unique(asset.faces[asset.part == 0])]
    assert np.allclose(body_uv.min(axis=0), 0, atol=1e-6) and np.allclose(body_uv.max(axis=0), 1, atol=1e-6)
    assert np.all((asset.colors_rgb >= 0) & (asset.colors_rgb <= 1))
    body, loop = asset.colors_rgb
    assert body[2] > body[0], "the body is blue"
    assert loop.min() > 0.9, "the loops are white"


def test_body_faces_outwards_and_covers_the_lower_face(asset, canonical_m):
    import cv2

    body = asset.faces[asset.part == 0]
    open_cloth = (asset.part == 0) & (asset.shade == 1)  # not a pleat's fold, which faces down and back
    tri = asset.xyz[asset.faces[open_cloth]].astype(np.float64)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    outward = tri.mean(axis=1) - [0.0, 0.0, -0.03]  # away from a vertical line behind the face
    outward[:, 1] = 0
    assert np.mean(np.einsum("fk,fk->f", normal, outward) > 0) > 0.98
    # Seen from straight ahead (1 px = 1 mm), the body covers the mouth, chin and cheeks but neither eye.
    px = np.round((asset.xyz[:, :2] + [0.12, 0.12]) * 1000).astype(np.int32)
    seen = np.zeros((240, 240), np.uint8)
    for t in body:
        cv2.fillConvexPoly(seen, px[t], 1)
    at = lambda ids: seen[np.round((canonical_m[ids, 1] + 0.12) * 1000).astype(int),  # noqa: E731
                          np.round((canonical_m[ids, 0] + 0.12) * 1000).astype(int)]
    covered = {"lips": [13, 14], "mouth corners": [61, 291], "chin": [152], "nose tip": [1, 4],
               "cheeks": [147, 376], "jaw": [150, 379]}
    uncovered = {"eyes": [33, 133, 159, 145, 263, 362, 386, 374], "forehead": [10, 151]}
    for name, ids in covered.items():
        assert np.all(at(ids) == 1), f"{name} not covered"
    for name, ids in uncovered.items():
        assert np.all(at(ids) == 0), f"{name} covered"


def test_body_stands_off_the_face(asset, canonical_m):
    from scipy.spatial import cKDTree

    body = asset.xyz[np.unique(asset.faces[asset.part == 0])]
    gap, _ = cKDTree(canonical_m).query(body)
    assert gap.min() > 0.004, f"mask within {gap.min() * 1000:.1f} mm of a landmark"
    assert np.median(gap) < 0.015


def test_anchors_sit_in_front_of_their_landmarks(asset, canonical_m):
    assert len(asset.anchor_names) >= 6
    assert {"nose_bridge", "chin", "cheek_left", "cheek_right"} <= set(asset.anchor_names)
    assert np.allclose(asset.anchor_landmark_xyz, canonical_m[asset.anchor_landmark_ids], atol=1e-6)
    assert np.all(asset.part[asset.anchor_face] == 0), "anchors lie on the body"
    offset = asset.anchor_xyz - asset.anchor_landmark_xyz
    assert np.all(np.linalg.norm(offset, axis=1) < 0.015)
    assert np.all(offset[:, 2] > 0), "each anchor is in front of its landmark"
    assert np.allclose(offset[:, :2], 0, atol=1e-5), "straight in front (along +z)"
    with np.load(MASK_DIR / "medical_mask.npz") as d:
        assert np.allclose(d["anchor_xyz"], asset.anchor_xyz, atol=1e-6)
        assert [str(n) for n in d["anchor_names"]] == list(asset.anchor_names)


def test_glb_holds_both_parts(asset):
    import trimesh

    scene = trimesh.load(MASK_DIR / "medical_mask.glb", force="scene")
    faces = {name: len(g.faces) for name, g in scene.geometry.items()}
    assert faces == {"mask_body": int((asset.part == 0).sum()), "ear_loops": int((asset.part == 1).sum())}


def test_provenance_names_the_shipped_files():
    info = json.loads((MASK_DIR / "mask.json").read_text())
    assert info["generator"] == "tools/make_mask.py"
    for name in ("medical_mask.npz", "medical_mask.glb"):
        assert info["files"][name]["sha256"] == hashlib.sha256((MASK_DIR / name).read_bytes()).hexdigest(), name
    assert info["source"]["sha256"] == hashlib.sha256((models_dir() / "canonical_face.npz").read_bytes()).hexdigest()


def _without_file_hashes(provenance: dict) -> dict:
    return {k: v for k, v in provenance.items() if k != "files"}


def test_generator_reproduces_the_shipped_asset(tmp_path):
    """Regenerating gives the shipped mask: integers and names exactly, floats within 1e-6 (the generator rounds to
    1e-7 so the bytes usually match too, but the construction's last bits may differ on another CPU)."""
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_mask.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    hint = "rerun tools/make_mask.py to regenerate assets/mask/"
    with np.load(tmp_path / "medical_mask.npz") as new, np.load(MASK_DIR / "medical_mask.npz") as shipped:
        assert sorted(new.files) == sorted(shipped.files)
        for name in new.files:
            a, b = new[name], shipped[name]
            assert a.dtype == b.dtype and a.shape == b.shape, f"{name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}; {hint}"
            if a.dtype.kind == "f":
                assert np.allclose(a, b, rtol=0, atol=1e-6), f"{name} differs by {np.abs(a - b).max()}; {hint}"
            else:
                assert np.array_equal(a, b), f"{name} differs; {hint}"
    new_json = json.loads((tmp_path / "mask.json").read_text())
    shipped_json = json.loads((MASK_DIR / "mask.json").read_text())
    assert _without_file_hashes(new_json) == _without_file_hashes(shipped_json), hint

    import trimesh
    new_glb = trimesh.load(tmp_path / "medical_mask.glb", force="scene")
    shipped_glb = trimesh.load(MASK_DIR / "medical_mask.glb", force="scene")
    assert sorted(new_glb.geometry) == sorted(shipped_glb.geometry)
    for name, mesh in new_glb.geometry.items():
        other = shipped_glb.geometry[name]
        assert np.array_equal(mesh.faces, other.faces), f"{name} faces differ; {hint}"
        assert np.allclose(mesh.vertices, other.vertices, rtol=0, atol=1e-6), f"{name} vertices differ; {hint}"


def test_generator_is_byte_deterministic_on_one_machine(tmp_path):
    for out in ("a", "b"):
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_mask.py"), "--out", str(tmp_path / out)],
                       check=True, capture_output=True)
    for name in ("medical_mask.npz", "medical_mask.glb", "mask.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_load_refuses_what_is_not_a_mask(tmp_path):
    np.savez(tmp_path / "other.npz", vertices=np.zeros((3, 3)))
    with pytest.raises(InputError, match="lacks"):
        MaskAsset.load(tmp_path / "other.npz")
    with pytest.raises(InputError, match="not found"):
        MaskAsset.load(tmp_path / "missing.npz")


# -- placement ------------------------------------------------------------------------------------------------------


def test_rigid_placement_when_landmarks_follow_the_pose(asset, canonical_m):
    r, t = frontal_pose(20.0)
    rigid = asset.xyz.astype(np.float64) @ r.T + t
    assert np.allclose(fit_mask(asset, r, t), rigid, atol=1e-6)
    landmarks = canonical_m @ r.T + t
    assert np.allclose(fit_mask(asset, r, t, landmarks), rigid, atol=1e-6)


def test_uniform_residual_moves_the_body_and_not_the_loops_behind_the_ears(asset, canonical_m):
    r, t = frontal_pose(-10.0)
    shift = np.array([0.004, -0.003, 0.002])
    fitted = fit_mask(asset, r, t, canonical_m @ r.T + t + shift).astype(np.float64)
    moved = fitted - (asset.xyz.astype(np.float64) @ r.T + t)
    expected = asset.deform_weight[:, None] * shift
    assert np.allclose(moved, expected, atol=1e-6)
    assert np.any(asset.deform_weight == 0) and np.any(asset.deform_weight == 1)


def test_anchors_follow_their_landmarks_exactly(asset, canonical_m):
    r, t = frontal_pose(15.0)
    landmarks = canonical_m @ r.T + t
    rng = np.random.default_rng(0)
    residual = rng.normal(scale=0.004, size=(len(asset.anchor_names), 3))
    residual[asset.anchor_names.index("chin")] = [0.0, 0.015, 0.0]  # the jaw drops 1.5 cm (camera y is down)
    landmarks[asset.anchor_landmark_ids] += residual
    fitted = fit_mask(asset, r, t, landmarks)
    rigid_anchor = asset.anchor_xyz.astype(np.float64) @ r.T + t
    # Exact at the blend centres; the anchor points interpolate their triangle linearly: 0.1 mm.
    assert np.allclose(asset.anchor_points(fitted), rigid_anchor + residual, atol=1e-4)
    # Smooth: the top edge over the nose bridge hardly follows the chin.
    assert np.all(np.isfinite(fitted))


def test_missing_landmarks_drop_out(asset, canonical_m):
    r, t = frontal_pose()
    landmarks = canonical_m @ r.T + t + [0.0, 0.01, 0.0]
    chin = asset.anchor_landmark_ids[asset.anchor_names.index("chin")]
    landmarks[chin] = np.nan
    fitted = fit_mask(asset, r, t, landmarks)
    assert np.all(np.isfinite(fitted))
    body = asset.deform_weight == 1
    moved = fitted - (asset.xyz @ r.T + t)
    assert np.allclose(moved[body], [0.0, 0.01, 0.0], atol=1e-5), "the other anchors still carry the shift"
    assert np.allclose(fit_mask(asset, r, t, np.full((478, 3), np.nan)), fit_mask(asset, r, t), atol=1e-6)


def test_batched_equals_one_at_a_time(asset, canonical_m):
    poses = [frontal_pose(y) for y in (-30.0, 0.0, 25.0)]
    rng = np.random.default_rng(1)
    landmarks = np.stack([canonical_m @ r.T + t + rng.normal(scale=0.003, size=canonical_m.shape) for r, t in poses])
    batched = fit_masks(asset, np.stack([p[0] for p in poses]), np.stack([p[1] for p in poses]), landmarks)
    for k, (r, t) in enumerate(poses):
        assert np.allclose(batched[k], fit_mask(asset, r, t, landmarks[k]), atol=1e-6)


@pytest.mark.parametrize("rotation, translation, landmarks, match", [
    (np.eye(3)[None], np.zeros((2, 3)), None, "translation"),
    (np.eye(4)[None], np.zeros((1, 3)), None, "rotation"),
    (np.eye(3)[None], np.zeros((1, 3)), np.zeros((1, 100, 3)), "L >= 468"),
    (np.eye(3)[None], np.zeros((1, 3)), np.zeros((2, 468, 3)), "T=1"),
])
def test_fit_masks_rejects_bad_shapes(asset, rotation, translation, landmarks, match):
    with pytest.raises(InputError, match=match):
        fit_masks(asset, rotation, translation, landmarks)
