"""3DDFA_V2 (FaceBoxes, the 120 x 120 3DMM regressor, the BFM) and the restricted unpickler its files need."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from rigcast.camera import Intrinsics
from rigcast.errors import InputError, ModelError
from rigcast.formats.safe_pickle import load_numpy_pickle
from rigcast.models.faceboxes import FaceBoxesDetector, decode_faceboxes, faceboxes_priors
from rigcast.models.tddfa import (BFM_UNIT_M, FLIP_YZ, Bfm, Tddfa, camera_pose, canonical_in_bfm, find_files,
                                  roi_from_box, roi_to_image)
from rigcast.runners import make_runner
from tddfa_models import (BFM_OFFSET_UM, bfm_head_model, encode_boxes, planted_faceboxes, regressor_output_for,
                          synthetic_bfm, tddfa_folder, write_pickle)

# -- the restricted unpickler ----------------------------------------------------------------------------------------


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_refuses_a_pickle_that_would_run_code(tmp_path, protocol):
    marker = tmp_path / "ran"
    path = tmp_path / "bfm_noneck_v3.pkl"
    path.write_bytes(pickle.dumps({"u": np.zeros(3, np.float32), "evil": _RunsCode(marker)}, protocol=protocol))
    with pytest.raises(ModelError, match=r"refused to load global (posix|os|nt)\.system") as caught:
        load_numpy_pickle(path)
    assert "\n" not in str(caught.value)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the same file through pickle.load does run it: the test can fail
    assert marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_reads_numpy_arrays_in_plain_containers(tmp_path, protocol):
    tri = np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4))
    obj = {"mean": np.linspace(0, 1, 62, dtype=np.float32), "big": np.arange(6, dtype=">f8").reshape(2, 3),
           "tri": tri, "meta": [1, 2.5, "x", (np.float64(3.5), None)]}
    path = tmp_path / "p.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    got = load_numpy_pickle(path)
    for key in ("mean", "big", "tri"):
        np.testing.assert_array_equal(got[key], obj[key])
        assert got[key].dtype == obj[key].dtype.newbyteorder("=")
    assert got["meta"] == [1, 2.5, "x", (3.5, None)]


def test_restricted_unpickler_refuses_object_arrays(tmp_path):
    path = tmp_path / "o.pkl"
    path.write_bytes(pickle.dumps({"u": np.array([1, "a"], dtype=object)}, protocol=3))
    with pytest.raises(ModelError, match="refused"):
        load_numpy_pickle(path)


def test_bfm_with_a_missing_key_is_named(tmp_path):
    bfm = synthetic_bfm()
    del bfm["w_exp"]
    with pytest.raises(ModelError, match="w_exp"):
        Bfm.load(write_pickle(tmp_path / "bfm_noneck_v3.pkl", bfm))


# -- FaceBoxes -------------------------------------------------------------------------------------------------------


def test_priors_follow_the_published_layout():
    h, w = 100, 130  # feature maps ceil(h / step) x ceil(w / step): 4 x 5, 2 x 3, 1 x 2
    priors = faceboxes_priors(h, w)
    assert priors.shape == (21 * 4 * 5 + 2 * 3 + 1 * 2, 4)
    # Cell (0, 0) of stride 32: 16 anchors of size 32 on a 4 x 4 grid at quarter cells, row by row...
    first = priors[:16]
    np.testing.assert_allclose(first[:4, 0] * w, [0, 8, 16, 24])
    np.testing.assert_allclose(first[::4, 1] * h, [0, 8, 16, 24])
    np.testing.assert_allclose(first[:, 2:] * [w, h], np.full((16, 2), 32.0))
    # ... then 4 of size 64 at half cells, one of 128 at the cell centre; then cell (0, 1).
    np.testing.assert_allclose(priors[16:20, :2] * [w, h], [[0, 0], [16, 0], [0, 16], [16, 16]])
    np.testing.assert_allclose(priors[20] * [w, h, w, h], [16, 16, 128, 128])
    np.testing.assert_allclose(priors[21, :2] * [w, h], [32, 0])
    # The last stride-32 cell is row 3, column 4; then stride 64 (one anchor of 256), then 128 (512).
    np.testing.assert_allclose(priors[21 * 20 - 1] * [w, h, w, h], [4.5 * 32, 3.5 * 32, 128, 128])
    np.testing.assert_allclose(priors[21 * 20] * [w, h, w, h], [32, 32, 256, 256])
    np.testing.assert_allclose(priors[-1] * [w, h, w, h], [1.5 * 128, 64, 512, 512])


@pytest.mark.parametrize("hw", [(100, 77), (720, 1080), (301, 403)])
def test_the_faceboxes_network_gives_one_output_per_prior(tmp_path, hw):
    from tddfa_models import faceboxes_net_model

    runner = make_runner(faceboxes_net_model(tmp_path / "FaceBoxesProd.onnx"), device="cpu")
    out = runner({"input": np.zeros((1, 3) + hw, np.float32)})
    priors = len(faceboxes_priors(*hw))
    assert out["output"].shape == (1, priors, 4) and out["scores"].shape == (1, priors, 2)


def test_decode_inverts_the_ssd_encoding():
    rng = np.random.default_rng(3)
    priors = faceboxes_priors(240, 320)
    pick = rng.choice(len(priors), 50, replace=False)
    x0y0 = rng.uniform(0, 0.6, (50, 2))
    boxes = np.concatenate([x0y0, x0y0 + rng.uniform(0.05, 0.4, (50, 2))], 1)
    np.testing.assert_allclose(decode_faceboxes(encode_boxes(boxes, priors[pick]), priors[pick]), boxes, atol=1e-12)


@pytest.mark.parametrize("frame_hw, input_hw", [((360, 480), (360, 480)), ((1440, 1080), (720, 540)),
                                                ((600, 2160), (300, 1080))])
def test_planted_boxes_come_back_in_frame_px(tmp_path, frame_hw, input_hw):
    boxes_in = [[40, 50, 120, 150], [200, 30, 260, 90], [205, 35, 262, 95], [10, 200, 60, 250]]
    scores = [0.97, 0.9, 0.8, 0.3]  # the third overlaps the second (NMS), the fourth is under 0.5
    path = planted_faceboxes(tmp_path / "FaceBoxesProd.onnx", input_hw, boxes_in, scores)
    detector = FaceBoxesDetector(make_runner(path, device="cpu"))
    assert detector.input_size(*frame_hw) == input_hw
    faces = detector(np.zeros(frame_hw + (3,), np.uint8))
    ratio = np.array([frame_hw[1] / input_hw[1], frame_hw[0] / input_hw[0]] * 2)
    assert [round(f.score, 4) for f in faces] == [0.97, 0.9]
    np.testing.assert_allclose(faces[0].box_xyxy, np.array(boxes_in[0]) * ratio, atol=1e-3)
    np.testing.assert_allclose(faces[1].box_xyxy, np.array(boxes_in[1]) * ratio, atol=1e-3)


def test_faceboxes_input_is_bgr_minus_the_published_mean(tmp_path):
    path = planted_faceboxes(tmp_path / "f.onnx", (64, 64), [], [])
    detector = FaceBoxesDetector(make_runner(path, device="cpu"))
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = 200  # red
    x = detector.preprocess(rgb)
    assert x.shape == (1, 3, 64, 64)
    np.testing.assert_allclose(x[0, :, 0, 0], [0 - 104, 0 - 117, 200 - 123])


# -- the 3DMM and the BFM --------------------------------------------------------------------------------------------


def _pose(scale: float, rotation: np.ndarray, offset) -> np.ndarray:
    return np.concatenate([scale * rotation, np.asarray(offset, float).reshape(3, 1)], axis=1)


def _params(pose: np.ndarray, coefficients=None) -> np.ndarray:
    return np.concatenate([pose.reshape(-1), np.zeros(50) if coefficients is None else coefficients])


def _rotation(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("yxz", [yaw_deg, pitch_deg, roll_deg], degrees=True).as_matrix()


@pytest.mark.parametrize("bfm_head", [False, True])
def test_mean_face_parameters_give_the_mean_bfm_mesh(tmp_path, bfm_head):
    box = np.array([200.0, 150.0, 320.0, 290.0])
    pose = _pose(4e-4, np.eye(3), [60.0, 70.0, -50.0])
    folder = tddfa_folder(tmp_path, regressor_output=regressor_output_for(_params(pose)), faceboxes_hw=(480, 640),
                          boxes_px=[box], scores=[0.95], bfm_head=bfm_head)
    model = Tddfa.open(folder, device="cpu")
    assert (model.bfm_runner is not None) == bfm_head
    (face,) = model(np.zeros((480, 640, 3), np.uint8))
    np.testing.assert_allclose(face.coefficients, 0, atol=1e-4)
    np.testing.assert_allclose(face.box.box_xyxy, box, atol=1e-3)
    # The mean mesh, scaled by the pose, moved to the ROI, y flipped, then to frame px (similar_transform).
    mean = synthetic_bfm()["u"].reshape(-1, 3).astype(np.float64)
    roi = face.roi
    side = roi[2] - roi[0]
    assert side == int(1.58 * 130) and roi[3] - roi[1] == pytest.approx(side)
    np.testing.assert_allclose((roi[0] + roi[2]) / 2, 260)
    np.testing.assert_allclose((roi[1] + roi[3]) / 2, 220 + 0.14 * 130)
    expect_x = (4e-4 * mean[:, 0] + 60.0 - 1) * side / 120 + roi[0]
    expect_y = (120 - (4e-4 * mean[:, 1] + 70.0)) * side / 120 + roi[1]
    np.testing.assert_allclose(face.vertices_px[:, 0], expect_x, atol=0.02)  # float32 outputs
    np.testing.assert_allclose(face.vertices_px[:, 1], expect_y, atol=0.02)


def test_bfm_head_and_numpy_agree_on_any_parameters(tmp_path):
    bfm = synthetic_bfm()
    head = make_runner(bfm_head_model(tmp_path / "bfm.onnx", bfm), device="cpu")
    folder = tddfa_folder(tmp_path / "d", bfm_head=False)
    plain = Tddfa.open(folder, device="cpu")
    with_head = Tddfa(plain.detector, plain.runner, plain.stats, plain.bfm, head)
    params = _params(_pose(5e-4, _rotation(20, -10, 5), [55, 65, 0]), np.random.default_rng(0).normal(0, 3e4, 50))
    a, b = plain.vertices_roi(params), with_head.vertices_roi(params)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
    assert not np.allclose(a, plain.vertices_roi(_params(_pose(5e-4, _rotation(20, -10, 5), [55, 65, 0]))),
                           atol=1e-2)  # the coefficients moved the mesh


@pytest.mark.parametrize("ypr", [(0, 0, 0), (30, -15, 10), (-50, 20, -25)])
def test_a_known_pose_reprojects_the_mesh_where_3ddfa_puts_it(ypr):
    intrinsics = Intrinsics.from_fov(1280, 720)
    bfm = Bfm(*(lambda d: (d["u"].reshape(-1, 3), np.concatenate([d["w_shp"], d["w_exp"]], 1).reshape(-1, 3, 50),
                           d["tri"].T, d["keypoints"][0::3] // 3))(synthetic_bfm()))
    rotation = _rotation(*ypr)
    pose = _pose(4e-4, rotation, [58, 66, 10])
    roi = roi_from_box(np.array([700.0, 200.0, 820.0, 340.0]))
    r_cam, t_cam = camera_pose(pose, roi, intrinsics)
    np.testing.assert_allclose(r_cam, FLIP_YZ @ rotation, atol=1e-12)
    mesh = bfm.mean_xyz.astype(np.float64)
    seen = roi_to_image(pose[:, :3] @ mesh.T + pose[:, 3:], roi)[:, :2]  # 3DDFA_V2's own vertices
    xyz = mesh * BFM_UNIT_M @ r_cam.T + t_cam
    xy = xyz[:, :2] / xyz[:, 2:] * [intrinsics.fx, intrinsics.fy] + [intrinsics.cx, intrinsics.cy]
    origin = t_cam[:2] / t_cam[2] * [intrinsics.fx, intrinsics.fy] + [intrinsics.cx, intrinsics.cy]
    np.testing.assert_allclose(origin, roi_to_image(pose[:, 3:], roi)[0, :2], atol=1e-9)
    # Weak perspective against perspective: a vertex at depth Z0 + dz is off by its distance from the principal
    # point times |dz| / (Z0 + dz).
    relief = np.abs(xyz[:, 2] - t_cam[2]) / xyz[:, 2]
    spread = np.linalg.norm(seen - [intrinsics.cx, intrinsics.cy], axis=1)
    assert np.all(np.linalg.norm(xy - seen, axis=1) <= 1.01 * relief * spread + 1e-6)
    # The face is metric: at the depth where its BFM size (µm) spans the pixels the pose scale gives it.
    side = roi[2] - roi[0]
    np.testing.assert_allclose(t_cam[2], intrinsics.fx * BFM_UNIT_M / (4e-4 * side / 120), rtol=1e-9)


def test_canonical_face_is_found_in_the_bfm():
    bfm_dict = synthetic_bfm()
    bfm = Bfm(bfm_dict["u"].reshape(-1, 3), np.zeros((468, 3, 50), np.float32), bfm_dict["tri"].T,
              bfm_dict["keypoints"][0::3] // 3)
    rotation, scale, offset = canonical_in_bfm(bfm)
    np.testing.assert_allclose(rotation, np.eye(3), atol=1e-6)
    np.testing.assert_allclose(scale, 1.0, atol=1e-6)
    np.testing.assert_allclose(offset, BFM_OFFSET_UM * BFM_UNIT_M, atol=1e-8)


# -- the folder ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["flat", "checkout"])
def test_folder_layouts_are_found(tmp_path, layout):
    files = find_files(tddfa_folder(tmp_path, layout=layout))
    assert files["regressor"].name == "mb1_120x120.onnx" and files["bfm_onnx"].name == "bfm_noneck_v3.onnx"
    if layout == "checkout":
        assert files["detector"].parent.name == "weights" and files["bfm"].parent.name == "configs"


def test_a_folder_missing_a_file_is_named(tmp_path):
    folder = tddfa_folder(tmp_path)
    (folder / "param_mean_std_62d_120x120.pkl").unlink()
    with pytest.raises(InputError, match="lacks param_mean_std_62d_120x120.pkl"):
        find_files(folder)
    with pytest.raises(InputError, match="does not exist"):
        find_files(tmp_path / "nowhere")


# -- through rigcast: analyze, the Take, info ------------------------------------------------------------------------

ASTRONAUT_FACE = np.array([181.0, 67.0, 270.0, 176.0])  # what 3DDFA_V2's published FaceBoxes finds in the photo


def _photo_and_folder(tmp_path):
    import cv2
    from fixtures_images import astronaut

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), np.ascontiguousarray(astronaut()[..., ::-1]))
    coefficients = np.random.default_rng(5).normal(0, 2e4, 50)
    params = _params(_pose(5e-4, _rotation(15, -5, 3), [60.0, 72.0, 0.0]), coefficients)
    folder = tddfa_folder(tmp_path / "3ddfa", regressor_output=regressor_output_for(params), faceboxes_hw=(512, 512),
                          boxes_px=[ASTRONAUT_FACE], scores=[0.93], layout="checkout")
    return photo, folder, params


def test_analyze_face_3ddfa_on_a_photo(tmp_path):
    import subprocess
    import sys

    from rigcast.formats.take import Take

    photo, folder, params = _photo_and_folder(tmp_path)
    out = tmp_path / "a.take.npz"
    proc = subprocess.run([sys.executable, "-m", "rigcast", "analyze", photo, "-o", out, "--face", f"3ddfa:{folder}",
                           "--no-bodies", "--device", "cpu"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    take = Take.load(out)
    assert take.meta["face_source"] == {"name": "3ddfa", "file": "3ddfa", "landmarks": "posed", "mesh": "bfm"}
    (face,) = take.faces
    assert take.face_mesh is not None and take.face_mesh.name == "bfm" and take.face_mesh.num_vertices == 468
    # The Take's dense mesh is the model's (3DDFA_V2's vertices in rigcast's camera, see
    # test_a_known_pose_reprojects_the_mesh_where_3ddfa_puts_it), kept as coefficients of a float16 basis.
    from rigcast.models.tddfa import TddfaSource

    (obs,) = TddfaSource.open(folder, device="cpu")(np.ascontiguousarray(cv2_read_rgb(photo)))
    xyz = face.mesh_xyz(take.face_mesh)[0]
    assert np.abs(xyz - obs.mesh_xyz).max() < 2e-4  # metres
    k = take.intrinsics
    xy = xyz[:, :2] / xyz[:, 2:] * [k.fx, k.fy] + [k.cx, k.cy]
    np.testing.assert_allclose(face.mesh_coefficients[0], obs.mesh_coefficients, rtol=1e-6)
    # The synthetic BFM's mean is the canonical face moved: in the Take's canonical frame it is the canonical face
    # again, so the posed landmarks are the mean BFM face's vertices (the mesh is that plus its coefficients).
    np.testing.assert_allclose(take.face_mesh.mean_xyz, take.face_topology.canonical_xyz, atol=1e-6)
    deformation = np.linalg.norm(xyz - face.xyz[0], axis=1)
    np.testing.assert_allclose(deformation, np.linalg.norm(
        (take.face_mesh.local_xyz(face.mesh_coefficients[:1])[0] - take.face_mesh.mean_xyz), axis=1), atol=1e-5)
    assert np.all((xy > ASTRONAUT_FACE[:2] - 40) & (xy < ASTRONAUT_FACE[2:] + 40))
    # The overlay's mesh layer draws that dense mesh: shaded pixels within its outline, none elsewhere.
    from rigcast.overlay.render import FrameDrawer

    rgb = np.ascontiguousarray(cv2_read_rgb(photo))
    for style in ("shaded", "wire"):
        drawn = FrameDrawer(take, draw=("mesh",), mesh_style=style)(rgb, int(face.frame_index[0]))
        ys, xs = np.nonzero(np.any(drawn != rgb, axis=2))
        assert len(xs) > 500
        assert xs.min() >= xy[:, 0].min() - 2 and xs.max() <= xy[:, 0].max() + 2
        assert ys.min() >= xy[:, 1].min() - 2 and ys.max() <= xy[:, 1].max() + 2
    info = subprocess.run([sys.executable, "-m", "rigcast", "info", out], capture_output=True, text=True)
    assert info.returncode == 0 and "dense bfm mesh" in info.stdout, info.stdout + info.stderr


def cv2_read_rgb(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]


def test_the_stored_mesh_is_the_models_mesh(tmp_path):
    from rigcast.models.tddfa import TddfaSource

    photo, folder, params = _photo_and_folder(tmp_path)
    source = TddfaSource.open(folder, device="cpu")
    (obs,) = source(np.ascontiguousarray(cv2_read_rgb(photo)))
    mesh = source.face_mesh
    local = mesh.local_xyz(obs.mesh_coefficients[None])[0]
    posed = obs.scale * local @ obs.rotation.T + obs.translation
    # The stored mesh (float16 basis, canonical frame) is the model's mesh to well under a millimetre ...
    assert np.abs(posed - obs.mesh_xyz).max() < 1e-4
    assert mesh.basis.dtype == np.float16 and np.abs(mesh.basis).max() == 1.0
    # ... and the model's mesh is the regressor's: mean + basis @ coefficients, placed by its pose.
    bfm = source.tddfa.bfm
    np.testing.assert_allclose(obs.mesh_xyz[:, 2].mean(), obs.translation[2] + 0, rtol=0.5)
    np.testing.assert_allclose(np.linalg.norm(np.diff(obs.mesh_xyz, axis=0), axis=1),
                               np.linalg.norm(np.diff(bfm.mesh(params[12:]) * BFM_UNIT_M, axis=0), axis=1),
                               rtol=1e-4, atol=1e-8)  # rigid: the same edge lengths as the BFM mesh in metres


def _take_with_mesh(coefficients_k: int = 50, mesh_k: int = 50):
    from dataclasses import replace

    from rigcast.face.geometry import canonical_face
    from rigcast.formats.take import Face, FaceMesh, FaceTopology
    from test_take import make_take

    rng = np.random.default_rng(2)
    canon = canonical_face()
    mesh, _ = FaceMesh.from_basis("bfm", canon.triangles, canon.xyz_m, rng.normal(0, 1e-3, (468, 3, mesh_k)))
    t = 4
    rotation = np.stack([_rotation(10 * i, 0, 0) @ FLIP_YZ for i in range(t)])
    face = Face(face_id=1, body_id=-1, frame_index=np.arange(t), xy=np.zeros((t, 468, 2)),
                xyz=np.zeros((t, 468, 3)), rotation=rotation, translation=np.tile([0.0, 0.0, 1.5], (t, 1)),
                conf=np.ones(t), mesh_coefficients=rng.normal(0, 1, (t, coefficients_k)))
    topology = FaceTopology(canon.triangles, canon.uv, canon.xyz_m)
    return replace(make_take(num_tracks=0), faces=(face,), face_topology=topology, face_mesh=mesh)


def test_a_take_with_a_dense_mesh_round_trips(tmp_path):
    from rigcast.formats.take import Take

    take = _take_with_mesh()
    back = Take.load(take.save(tmp_path / "m.take.npz"))
    assert back.face_mesh.name == "bfm" and back.face_mesh.basis.dtype == np.float16
    np.testing.assert_array_equal(back.face_mesh.basis, take.face_mesh.basis)
    np.testing.assert_array_equal(back.faces[0].mesh_coefficients, take.faces[0].mesh_coefficients)
    np.testing.assert_allclose(back.faces[0].mesh_xyz(back.face_mesh), take.faces[0].mesh_xyz(take.face_mesh))
    # Posed: frame 0 faces the camera, so the mesh is the local mesh flipped (y, z) and moved to z = 1.5 m.
    local = take.face_mesh.local_xyz(take.faces[0].mesh_coefficients[:1])[0]
    np.testing.assert_allclose(take.faces[0].mesh_xyz(take.face_mesh, slice(0, 1))[0],
                               local * [1, -1, -1] + [0, 0, 1.5], atol=1e-9)
    from test_take import make_take

    old = Take.load(make_take().save(tmp_path / "old.take.npz"))  # a Take without a mesh has none
    assert old.face_mesh is None and "face_mesh" not in old.header()


def test_coefficients_must_match_the_mesh():
    from rigcast.errors import TakeError

    with pytest.raises(TakeError, match="has 40 mesh coefficients per frame, but the take has 50 coefficients"):
        _take_with_mesh(coefficients_k=40)


@pytest.mark.parametrize("frame_hw", [(64, 64), (1440, 1000)])
def test_faceboxes_input_is_the_resized_bgr_frame_minus_the_mean(tmp_path, frame_hw):
    import cv2

    detector = FaceBoxesDetector(make_runner(planted_faceboxes(tmp_path / "f.onnx", (64, 64), [], []), device="cpu"))
    rgb = np.random.default_rng(0).integers(0, 256, frame_hw + (3,), dtype=np.uint8)
    h, w = detector.input_size(*frame_hw)
    bgr = cv2.resize(np.ascontiguousarray(rgb[..., ::-1]), (w, h)).astype(np.float32)
    np.testing.assert_allclose(detector.preprocess(rgb)[0], (bgr - [104, 117, 123]).transpose(2, 0, 1), atol=1e-4)


def test_the_roi_crop_is_zero_outside_the_frame_and_normalised():
    from rigcast.models.tddfa import crop_roi, regressor_input

    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    crop = crop_roi(image, np.array([-4.4, 10.6, 6.0, 25.2]))  # corners round to (-4, 11) and (6, 25)
    assert crop.shape == (14, 10, 3)
    assert not crop[:, :4].any() and not crop[9:].any()  # left of and below the frame
    np.testing.assert_array_equal(crop[:9, 4:], image[11:20, 0:6])
    x = regressor_input(np.full((50, 50, 3), 255, np.uint8), np.array([0.0, 0.0, 50.0, 50.0]))
    assert x.shape == (1, 3, 120, 120) and x.dtype == np.float32
    np.testing.assert_allclose(x, (255 - 127.5) / 128)


@pytest.mark.parametrize("which, message", [
    ("regressor", r"gives one output \(1, 62\)"),
    ("detector", r"two outputs, loc \(1, A, 4\) and conf \(1, A, 2\)"),
])
def test_a_model_of_the_wrong_shape_is_refused_in_one_line(tmp_path, which, message):
    from byo_models import constant_model

    folder = tddfa_folder(tmp_path, regressor_output=np.zeros(62), faceboxes_hw=(64, 64))
    if which == "regressor":
        constant_model(folder / "mb1_120x120.onnx", "input", [1, 3, 120, 120], "output", np.zeros((1, 60)))
    else:
        constant_model(folder / "FaceBoxesProd.onnx", "input", [1, 3, "h", "w"], "output", np.zeros((1, 10, 4)))
    with pytest.raises(ModelError, match=message) as caught:
        Tddfa.open(folder, device="cpu")
    assert "\n" not in str(caught.value)
