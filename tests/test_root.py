"""Root trajectory from synthetic projections of a known skeleton."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from rigcast.camera import Intrinsics
from rigcast.lift import RootSolve, estimate_root_trajectory
from rigcast.skeletons import BLAZEPOSE_33


def _rest_pose() -> np.ndarray:
    """(33, 3) hip-centred BlazePose joints in metres (x right, y down, z away), arms a little forward."""
    s = BLAZEPOSE_33
    pose = {}
    for side, sx in (("left", 1.0), ("right", -1.0)):  # subject's left is image right for a person facing the camera
        pose[f"{side}_hip"] = (0.10 * sx, 0.0, 0.0)
        pose[f"{side}_knee"] = (0.11 * sx, 0.43, -0.05 if side == "left" else 0.02)
        pose[f"{side}_ankle"] = (0.12 * sx, 0.85, 0.03)
        pose[f"{side}_heel"] = (0.12 * sx, 0.90, 0.08)
        pose[f"{side}_foot_index"] = (0.14 * sx, 0.92, -0.12)
        pose[f"{side}_shoulder"] = (0.19 * sx, -0.50, 0.0)
        pose[f"{side}_elbow"] = (0.28 * sx, -0.25, -0.10 if side == "left" else 0.05)
        pose[f"{side}_wrist"] = (0.30 * sx, -0.05, -0.30 if side == "left" else 0.0)
        for k, dz in (("pinky", -0.02), ("index", -0.06), ("thumb", -0.04)):
            wx, wy, wz = pose[f"{side}_wrist"]
            pose[f"{side}_{k}"] = (wx + 0.02 * sx, wy + 0.08, wz + dz)
        pose[f"{side}_eye_inner"] = (0.015 * sx, -0.70, -0.09)
        pose[f"{side}_eye"] = (0.035 * sx, -0.70, -0.085)
        pose[f"{side}_eye_outer"] = (0.05 * sx, -0.70, -0.08)
        pose[f"{side}_ear"] = (0.075 * sx, -0.68, 0.0)
    pose["nose"] = (0.0, -0.66, -0.11)
    pose["mouth_left"] = (0.025, -0.62, -0.09)
    pose["mouth_right"] = (-0.025, -0.62, -0.09)
    return np.array([pose[name] for name in s.joint_names], dtype=np.float64)


INTRINSICS = Intrinsics.from_fov(1280, 720, hfov_deg=60.0)


def _scene(num_frames: int = 40, max_angle_deg: float = 12.0, seed: int = 0):
    """Known root path and rotations, projected with 0.5 px noise: (xy, xyz, conf, root_true, rotations)."""
    rng = np.random.default_rng(seed)
    u = np.linspace(0.0, 1.0, num_frames)
    root_true = np.stack([-0.8 + 1.6 * u, 0.2 + 0.1 * np.sin(6 * u), 3.0 + 3.0 * u], axis=1)
    rotvecs = np.radians(max_angle_deg) * np.stack([0.5 * np.sin(5 * u), np.cos(3 * u), 0.3 * np.sin(2 * u)], axis=1)
    rotations = Rotation.from_rotvec(rotvecs)
    model = _rest_pose()
    xyz = np.repeat(model[None], num_frames, axis=0)
    cam = np.stack([rotations[i].apply(model) + root_true[i] for i in range(num_frames)])
    k = INTRINSICS.matrix
    xy = np.stack([k[0, 0] * cam[..., 0] / cam[..., 2] + k[0, 2],
                   k[1, 1] * cam[..., 1] / cam[..., 2] + k[1, 2]], axis=-1)
    xy = xy + rng.normal(0.0, 0.5, xy.shape)
    conf = np.full(xy.shape[:2], 0.9)
    return xy, xyz, conf, root_true, rotations


def _relative_depth_error(solve: RootSolve, root_true: np.ndarray) -> np.ndarray:
    return np.linalg.norm(solve.root_xyz - root_true, axis=1) / root_true[:, 2]


def test_full_pnp_recovers_root_and_rotation():
    xy, xyz, conf, root_true, rotations = _scene()
    solve = estimate_root_trajectory(xy, xyz, conf, INTRINSICS)
    assert solve.ok.all() and not solve.fallback.any()
    assert _relative_depth_error(solve, root_true).max() < 0.02
    angle_error = (Rotation.from_rotvec(solve.root_rotvec) * rotations.inv()).magnitude()
    assert np.degrees(angle_error).max() < 3.0
    assert solve.reproj_error_px.max() < 1.5


def test_fallback_translation_only_when_rotation_is_implausible():
    # The model is truly camera-aligned; forbidding any rotation forces the R = I path on every frame.
    xy, xyz, conf, root_true, _ = _scene(max_angle_deg=0.0, seed=1)
    solve = estimate_root_trajectory(xy, xyz, conf, INTRINSICS, max_rotation_deg=0.0)
    assert solve.ok.all() and solve.fallback.all()
    np.testing.assert_array_equal(solve.root_rotvec, 0.0)
    assert _relative_depth_error(solve, root_true).max() < 0.02


def test_fallback_rejects_a_rotation_beyond_the_limit():
    # A model rotated 60 deg about y from what the camera sees: PnP finds ~60 deg, above the 45 deg limit.
    xy, xyz, conf, root_true, _ = _scene(max_angle_deg=0.0, seed=2)
    turned = Rotation.from_euler("y", 60, degrees=True).inv().apply(xyz.reshape(-1, 3)).reshape(xyz.shape)
    solve = estimate_root_trajectory(xy, turned, conf, INTRINSICS)
    assert solve.fallback.all()
    loose = estimate_root_trajectory(xy, turned, conf, INTRINSICS, max_rotation_deg=90.0)
    assert not loose.fallback.any()
    assert _relative_depth_error(loose, root_true).max() < 0.02


@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 179.0, 181.0, 300.0, 359.0, 725.0])
def test_rotation_vectors_come_back_with_their_angle_in_0_to_180_degrees(angle_deg):
    # solvePnP may return any angle; the Take records the same rotation with its angle in [0, pi], as scipy's
    # as_rotvec does (the root solve works through cv2.Rodrigues, so that it need not import scipy.spatial).
    from rigcast.lift.root import _canonical_rotvec

    axis = np.array([0.3, -0.8, 0.52]) / np.linalg.norm([0.3, -0.8, 0.52])
    rvec = np.radians(angle_deg) * axis
    out = _canonical_rotvec(rvec)
    assert np.linalg.norm(out) <= np.pi + 1e-12
    np.testing.assert_allclose(out, Rotation.from_rotvec(rvec).as_rotvec(), atol=1e-12)


def test_root_solve_does_not_import_scipy_spatial():
    # scipy.spatial costs a process 0.3-0.5 s to import; the --no-faces analysis needs nothing else from it.
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from rigcast.camera import Intrinsics\n"
            "from rigcast.lift import estimate_root_trajectory\n"
            "xyz = np.random.default_rng(0).normal(size=(3, 33, 3)) * 0.3\n"
            "xy = 640 + 800 * xyz[..., :2] / (xyz[..., 2:] + 3.0)\n"
            "solve = estimate_root_trajectory(xy, xyz, np.ones((3, 33)), Intrinsics.from_fov(1280, 720, 60.0))\n"
            "print(solve.ok.sum(), 'scipy.spatial' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["3", "False"]


def test_frames_with_too_few_joints_are_nan():
    xy, xyz, conf, root_true, _ = _scene(num_frames=12, seed=3)
    conf = conf.copy()
    conf[3, 4:] = 0.1                       # 4 joints left: still solvable
    conf[5, 3:] = 0.0                       # 3 joints: not
    xy = xy.copy()
    xy[7] = np.nan                          # image landmarks missing altogether
    xy_before, conf_before = xy.copy(), conf.copy()
    solve = estimate_root_trajectory(xy, xyz, conf, INTRINSICS)
    np.testing.assert_array_equal(solve.ok, ~np.isin(np.arange(12), [5, 7]))
    for frame in (5, 7):
        assert np.isnan(solve.root_xyz[frame]).all() and np.isnan(solve.reproj_error_px[frame])
    assert np.isfinite(solve.root_xyz[3]).all()
    good = solve.ok
    assert _relative_depth_error(solve, root_true)[good & (np.arange(12) != 3)].max() < 0.02
    np.testing.assert_array_equal(xy, xy_before, strict=True)
    np.testing.assert_array_equal(conf, conf_before)


@pytest.mark.parametrize("xy_shape, xyz_shape, conf_shape, message", [
    ((5, 33, 3), (5, 33, 3), (5, 33), "xy must be"),
    ((5, 33, 2), (5, 17, 3), (5, 33), "xyz must be"),
    ((5, 33, 2), (5, 33, 3), (5, 32), "conf must be"),
])
def test_shape_errors(xy_shape, xyz_shape, conf_shape, message):
    with pytest.raises(ValueError, match=message):
        estimate_root_trajectory(np.zeros(xy_shape), np.zeros(xyz_shape), np.ones(conf_shape), INTRINSICS)
