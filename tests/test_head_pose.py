"""Head pose: Procrustes and the lift on synthetic faces with a known pose, then on real footage against
OpenCV's solvePnP on MediaPipe's own landmarks, and a clip whose roll is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fixtures_images import astronaut
from footage import requires_models
from rigcast.camera import Intrinsics
from rigcast.errors import InputError, ModelError
from rigcast.face import (FRONTAL, CanonicalFace, HeadPose, canonical_face, euler_ypr_deg, rotation_from_ypr_deg,
                          smooth_head_poses, solve_head_pose, weighted_procrustes)
from test_face_models import MediaPipeReference, carphone_frames, multi_face_scene, nearest_face

POSE_TOLERANCE_DEG = 3.0


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """The angle of the rotation taking ``b`` to ``a``."""
    return math.degrees(math.acos(float(np.clip((np.trace(a.T @ b) - 1.0) / 2.0, -1.0, 1.0))))


def axis_rotation(axis: int, angle_deg: float) -> np.ndarray:
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def synthetic_landmarks(rotation: np.ndarray, translation_m: np.ndarray, intrinsics: Intrinsics):
    """The canonical face posed in the camera and seen as the landmark model reports a face:
    xy (468, 2) px, and z (468,) the depth relative to the mean, on the x scale of the mean depth."""
    points = canonical_face().xyz_m @ rotation.T + translation_m
    xy = points[:, :2] / points[:, 2:] * [intrinsics.fx, intrinsics.fy] + [intrinsics.cx, intrinsics.cy]
    mean_depth = points[:, 2].mean()
    z = (points[:, 2] - mean_depth) * intrinsics.fx / mean_depth
    return xy, z, points


# ----------------------------------------------------------------------------------------------------------------
# Geometry, conventions


def test_canonical_face_is_loaded_once_and_checked():
    face = canonical_face()
    assert face is canonical_face()
    assert face.xyz_cm.shape == (468, 3) and face.triangles.shape == (898, 3) and face.uv.shape == (468, 2)
    assert len(face.procrustes_ids) == len(face.procrustes_weights) == 33
    assert not face.xyz_cm.flags.writeable
    # x towards the subject's left (image right), y up, z out of the face.
    assert face.xyz_cm[263, 0] > 0 > face.xyz_cm[33, 0]
    assert face.xyz_cm[10, 1] > 0 > face.xyz_cm[152, 1]
    assert face.xyz_cm[4, 2] == face.xyz_cm[:, 2].max()
    assert np.allclose(face.xyz_m, face.xyz_cm / 100)


def test_canonical_face_file_is_validated(tmp_path):
    np.savez(tmp_path / "bad.npz", xyz=np.zeros((468, 3)))
    with pytest.raises(ModelError, match="lacks arrays"):
        CanonicalFace.from_npz(tmp_path / "bad.npz")
    face = canonical_face()
    with pytest.raises(ValueError, match=r"triangles must be \(F, 3\)"):
        CanonicalFace(face.xyz_cm, face.uv, face.triangles + 468, face.procrustes_ids, face.procrustes_weights)


@pytest.mark.parametrize("ypr", [(0, 0, 0), (30, 0, 0), (0, -20, 0), (0, 0, 45), (25, 15, -35), (-70, 40, 170)])
def test_euler_round_trip(ypr):
    assert np.allclose(euler_ypr_deg(rotation_from_ypr_deg(*ypr)), ypr, atol=1e-9)


@pytest.mark.parametrize("ypr, axis, expected", [
    ((0, 0, 0), "nose", (0, 0, -1)),  # facing the camera: the nose points back at it
    ((30, 0, 0), "nose", (0.5, 0, -math.sqrt(3) / 2)),  # yaw > 0: nose towards image right
    ((0, 30, 0), "nose", (0, -0.5, -math.sqrt(3) / 2)),  # pitch > 0: nose up (image y is down)
    ((0, 0, 30), "up", (0.5, -math.sqrt(3) / 2, 0)),  # roll > 0: the top of the head goes right (clockwise)
])
def test_euler_signs(ypr, axis, expected):
    canonical_axis = {"nose": (0, 0, 1), "up": (0, 1, 0)}[axis]
    assert np.allclose(rotation_from_ypr_deg(*ypr) @ canonical_axis, expected, atol=1e-12)


def test_camera_roll_changes_roll_only():
    pose = rotation_from_ypr_deg(12, -25, 5)
    for angle in (-40, 15, 60):
        yaw, pitch, roll = euler_ypr_deg(axis_rotation(2, angle) @ pose)
        assert (yaw, pitch, roll) == pytest.approx((12, -25, 5 + angle), abs=1e-9)


@pytest.mark.parametrize("scale, ypr, shift", [(1.0, (0, 0, 0), (0, 0, 0)), (0.013, (40, -10, 100), (1, -2, 60)),
                                              (3.0, (-170, 80, 5), (-5, 5, 5))])
def test_weighted_procrustes_recovers_a_similarity(scale, ypr, shift):
    rng = np.random.default_rng(0)
    source = rng.normal(size=(33, 3))
    weights = rng.uniform(0.1, 1.0, size=33)
    rotation = rotation_from_ypr_deg(*ypr)
    target = scale * source @ rotation.T + shift
    r, s, t = weighted_procrustes(source, target, weights)
    # (the matrices themselves: an angle from acos of the trace has a noise floor of about 1e-6 degrees)
    assert np.abs(r - rotation).max() < 1e-9 and s == pytest.approx(scale) and np.allclose(t, shift)
    # a mirrored target still gets a rotation, never a reflection
    r, _, _ = weighted_procrustes(source, target * [-1, 1, 1], weights)
    assert np.linalg.det(r) == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------------------
# Solving on synthetic faces


@pytest.mark.parametrize("ypr, position", [((0, 0, 0), (0, 0, 0.6)), ((25, -10, 15), (0.1, -0.05, 0.8)),
                                           ((-40, 20, -30), (-0.2, 0.1, 1.5)), ((5, 5, 170), (0.0, 0.3, 2.5))])
@pytest.mark.parametrize("method", ["pnp", "procrustes"])
def test_solve_recovers_a_known_pose(ypr, position, method):
    # an off-centre principal point, which MediaPipe's own pipeline cannot take
    intrinsics = Intrinsics(fx=900.0, fy=900.0, cx=650.0, cy=350.0, width=1280, height=720)
    rotation = rotation_from_ypr_deg(*ypr)
    xy, z, points = synthetic_landmarks(rotation, np.array(position), intrinsics)
    pose = solve_head_pose(xy, z, intrinsics, method=method)
    tolerance = {"pnp": 0.05, "procrustes": 1.0}[method]
    assert rotation_angle_deg(pose.rotation, rotation) < tolerance
    assert np.linalg.norm(pose.translation - position) < 0.01 * position[2]
    assert pose.scale == pytest.approx(1.0, abs=0.02)
    assert np.abs(pose.mesh_xyz - points).max() < 0.01 * position[2]
    assert pose.reprojection_px < 0.5
    # the mesh reprojects exactly onto the landmarks
    projected = pose.mesh_xyz[:, :2] / pose.mesh_xyz[:, 2:] * 900.0 + [650.0, 350.0]
    assert np.abs(projected - xy).max() < 1e-6


@pytest.mark.parametrize("method", ["pnp", "procrustes"])
def test_solving_frames_together_gives_each_frame_its_own_pose(method):
    """solve_head_poses on a block of frames: each pose is the one solved alone (to rounding), and a frame
    whose landmarks are collapsed or not finite gets None without spoiling the others."""
    from rigcast.face import solve_head_poses

    intrinsics = Intrinsics(fx=900.0, fy=900.0, cx=650.0, cy=350.0, width=1280, height=720)
    frames = [synthetic_landmarks(rotation_from_ypr_deg(4.0 * k, -2.0 * k, 3.0 * k), np.array([0.02 * k, 0.0, 0.7]),
                                  intrinsics)[:2] for k in range(6)]
    xy, z = np.stack([f[0] for f in frames]), np.stack([f[1] for f in frames])
    xy[2] = 300.0  # collapsed
    z[4, 7] = np.nan
    poses = solve_head_poses(xy, z, intrinsics, method=method)
    assert len(poses) == 6 and poses[2] is None and poses[4] is None
    for k in (0, 1, 3, 5):
        alone = solve_head_pose(xy[k], z[k], intrinsics, method=method)
        assert np.abs(poses[k].rotation - alone.rotation).max() < 1e-9
        assert np.abs(poses[k].mesh_xyz - alone.mesh_xyz).max() < 1e-9
        assert poses[k].reprojection_px == pytest.approx(alone.reprojection_px, abs=1e-6)
        assert not poses[k].rotation.flags.writeable
    assert solve_head_poses(xy[2:3], z[2:3], intrinsics) == [None]
    with pytest.raises(InputError, match=r"z must be \(6, 468\)"):
        solve_head_poses(xy, z[:, :400], intrinsics)


def test_solve_carries_the_iris_points():
    intrinsics = Intrinsics.from_fov(640, 480)
    xy, z, _ = synthetic_landmarks(FRONTAL, np.array([0.0, 0.0, 0.7]), intrinsics)
    xy478 = np.concatenate([xy, xy[[33] * 5 + [263] * 5]])
    z478 = np.concatenate([z, z[[33] * 5 + [263] * 5]])
    pose = solve_head_pose(xy478, z478, intrinsics)
    assert pose.mesh_xyz.shape == (478, 3)
    assert np.allclose(pose.mesh_xyz[468], pose.mesh_xyz[33])
    assert euler_ypr_deg(pose.rotation) == pytest.approx((0, 0, 0), abs=0.05)
    assert np.allclose(pose.as_matrix()[:3, 3], pose.translation)


@pytest.mark.parametrize("xy, z, message", [
    (np.zeros((33, 2)), np.zeros(33), r"P >= 468"),
    (np.zeros((468, 2)), np.zeros(478), r"z must be \(468,\)"),
    (np.full((468, 2), np.nan), np.zeros(468), "finite"),
    (np.full((468, 2), 100.0), np.zeros(468), "collapsed"),
])
def test_solve_rejects_bad_landmarks(xy, z, message):
    with pytest.raises(InputError, match=message):
        solve_head_pose(xy, z, Intrinsics.from_fov(640, 480))


def test_solve_rejects_bad_options():
    xy, z, _ = synthetic_landmarks(FRONTAL, np.array([0.0, 0.0, 0.7]), Intrinsics.from_fov(640, 480))
    with pytest.raises(ValueError, match="method must be one of"):
        solve_head_pose(xy, z, Intrinsics.from_fov(640, 480), method="dlt")
    with pytest.raises(InputError, match="Intrinsics"):
        solve_head_pose(xy, z, np.eye(3))
    with pytest.raises(ValueError, match="proper rotation"):
        HeadPose(rotation=-np.eye(3), translation=np.zeros(3), mesh_xyz=np.zeros((468, 3)), scale=1.0, residual=0.0)


def test_smoothing_keeps_gaps_and_removes_jitter():
    rng = np.random.default_rng(1)
    time_s = np.arange(60) / 30.0
    poses = []
    for t in range(60):
        if 20 <= t < 23:
            poses.append(None)
            continue
        jitter = rotation_from_ypr_deg(*rng.normal(scale=1.5, size=3)) @ FRONTAL
        poses.append(HeadPose(rotation=jitter @ rotation_from_ypr_deg(10, 0, 0),
                              translation=np.array([0.0, 0.0, 0.7]) + rng.normal(scale=0.003, size=3),
                              mesh_xyz=np.zeros((468, 3)), scale=1.0, residual=0.0))
    rotations, translations = smooth_head_poses(poses, time_s)
    assert np.all(np.isnan(rotations[20:23])) and np.all(np.isnan(translations[20:23]))
    truth = rotation_from_ypr_deg(10, 0, 0)
    raw = [rotation_angle_deg(p.rotation, truth) for p in poses[30:] if p is not None]
    smooth = [rotation_angle_deg(r, truth) for r in rotations[30:]]
    assert np.mean(smooth) < 0.6 * np.mean(raw)


# ----------------------------------------------------------------------------------------------------------------
# Real footage


@pytest.fixture(scope="module")
def face_models():
    from rigcast.pipeline.faces import make_face_models

    return make_face_models()


@requires_models
@pytest.mark.reference
def test_pose_matches_solvepnp_on_mediapipe_landmarks(face_models):
    """Our pose from our landmarks vs cv2.solvePnP of the canonical face onto MediaPipe's refined
    landmarks (its first 468), same intrinsics (60-degree horizontal field of view).  MediaPipe's own
    pose (Procrustes on the model's depth) is printed beside it: 1-17 degrees off, see head_pose.py."""
    import cv2

    detector, landmarker = face_models
    reference = MediaPipeReference()
    canvas, regions = multi_face_scene()
    cases = [("astronaut", astronaut(), reference.face_mesh(astronaut()))]
    cases += [(f"carphone[{i}]", carphone_frames()[i], reference.face_mesh(carphone_frames()[i]))
              for i in range(0, 120, 10)]
    cases += [(f"composite#{k}", canvas, reference.face_mesh_in(canvas, r)) for k, r in enumerate(regions[:2])]
    rows = []
    for name, rgb, refs in cases:
        h, w = rgb.shape[:2]
        intrinsics = Intrinsics.from_fov(w, h, 60.0)
        ours = [lm for lm in (landmarker(rgb, d.to_roi()) for d in detector(rgb)) if lm is not None]
        for ref in refs:
            ok, rvec, _ = cv2.solvePnP(canonical_face().xyz_cm, np.ascontiguousarray(ref[:468, :2]),
                                       intrinsics.matrix, None, flags=cv2.SOLVEPNP_ITERATIVE)
            assert ok
            expected = cv2.Rodrigues(rvec)[0]
            lm = nearest_face(ours, ref[:468, :2].mean(axis=0))
            pose = solve_head_pose(lm.xy, lm.z, intrinsics)
            mediapipe_pose = solve_head_pose(lm.xy, lm.z, intrinsics, method="procrustes")
            rows.append((name, rotation_angle_deg(pose.rotation, expected),
                         rotation_angle_deg(mediapipe_pose.rotation, expected), euler_ypr_deg(pose.rotation)))
    reference.close()
    print("\nhead pose vs solvePnP on MediaPipe's landmarks (degrees):")
    for name, err, mp_err, ypr in rows:
        print(f"  {name:>14}: {err:4.2f}   (MediaPipe's Procrustes pose: {mp_err:5.2f})   "
              f"yaw/pitch/roll {ypr[0]:6.1f} {ypr[1]:6.1f} {ypr[2]:6.1f}")
    errors = np.array([r[1] for r in rows])
    # 3 degrees, with a margin on the 52-61 px carphone faces: there MediaPipe's plain and attention
    # meshes give solvePnP poses up to 3.0 degrees apart themselves (carphone[90]), the reference's
    # own noise floor; ours measure 0.6-2.1 there (median 1.0) and 0.8-1.4 on the larger faces.
    assert np.median(errors) <= 2.0
    assert errors.max() <= POSE_TOLERANCE_DEG + 0.5


@requires_models
def test_roll_follows_an_in_plane_rotation(face_models):
    """A clip made by turning the astronaut photo about its centre (the principal point): a pure camera
    roll, so the estimated roll must follow the applied angle and yaw and pitch must stay put."""
    import cv2

    from rigcast.pipeline.faces import FaceAnalyzer

    analyzer = FaceAnalyzer(*face_models)
    state = analyzer.new_state()
    intrinsics = Intrinsics.from_fov(512, 512, 60.0)
    # 5 degrees a frame: the face (145 px from the centre) moves 13 px, an eighth of its width, as a
    # head turning at 150 degrees per second does at 30 fps.
    angles = np.concatenate([np.arange(0, 30, 5), np.arange(30, -30, -5), np.arange(-30, 1, 5)]).astype(float)
    ypr, ids = [], set()
    for i, angle in enumerate(angles):
        # cv2's positive angle turns the image counter-clockwise on screen: a roll of -angle.
        m = cv2.getRotationMatrix2D((intrinsics.cx, intrinsics.cy), float(angle), 1.0)
        frame = cv2.warpAffine(astronaut(), m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        records, _ = analyzer.process(frame, i / 30.0, state)
        assert len(records) == 1
        ids.add(records[0].face_id)
        lm = records[0].landmarks
        ypr.append(euler_ypr_deg(solve_head_pose(lm.xy, lm.z, intrinsics).rotation))
    ypr = np.array(ypr)
    roll_error = (ypr[:, 2] - ypr[0, 2]) + angles
    print(f"\nroll clip: |roll error| max {np.abs(roll_error).max():.2f} deg over {len(angles)} frames "
          f"(+-30 deg); yaw spread {np.ptp(ypr[:, 0]):.1f}, pitch spread {np.ptp(ypr[:, 1]):.1f}")
    assert ids == {0}
    assert np.abs(roll_error).max() <= POSE_TOLERANCE_DEG
    assert np.ptp(ypr[:, 0]) < 4 * POSE_TOLERANCE_DEG and np.ptp(ypr[:, 1]) < 4 * POSE_TOLERANCE_DEG
