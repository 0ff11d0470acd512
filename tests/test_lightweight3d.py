"""Lightweight 3D multi-person pose: planted heatmaps, PAFs and features maps decode to the planted people.

Maps are planted at the model's output size (32 x 56 for the exported 256 x 448 input).  A keypoint at
whole feature px p is a Gaussian centred at p + 0.25 (so that the x4 bilinear upsampling has one strict
maximum, at upsampled px 4p + 2): it decodes at p + 0.5 feature px.
"""

from __future__ import annotations

import numpy as np
import pytest

from rigcast.errors import InputError, ModelError
from rigcast.models.lightweight3d import (
    LIMB_KEYPOINTS, LIMB_PAF_CHANNELS, PANOPTIC_OF_2D, STRIDE, InputPlan, Lightweight3DEstimator, decode,
    find_peaks, group_people, input_plan, place_in_camera, read_root_relative)
from rigcast.runners import make_runner
from rigcast.skeletons import LW3D_19, get_skeleton

from byo_models import constant_model, lw3d_conv_model, planted_outputs_model

H, W = 32, 56  # output maps (feature px)
# A standing person, COCO-18 keypoints (OpenPose order) as whole feature px offsets (dx, dy) from the neck.
TEMPLATE = np.array([
    (0, -3), (0, 0), (-3, 0), (-4, 5), (-4, 10), (3, 0), (4, 5), (4, 10),  # nose, neck, r arm, l arm
    (-2, 10), (-2, 16), (-2, 22), (2, 10), (2, 16), (2, 22),  # r leg, l leg
    (-1, -4), (1, -4), (-2, -3), (2, -3),  # r_eye, l_eye, r_ear, l_ear
])
PLANTED_LIMBS = range(17)  # shoulder-ear limbs (17, 18) only fill in ears: left unplanted


def person(neck_xy, missing=()) -> dict[int, np.ndarray]:
    """COCO-18 keypoint → whole feature px xy, less the ``missing`` keypoints."""
    return {k: np.asarray(neck_xy) + TEMPLATE[k] for k in range(18) if k not in missing}


def plant_maps(people, scores=0.9, stray=()):
    """Heatmaps (19, H, W) and PAFs (38, H, W) for ``people`` (list of person dicts); ``stray`` adds lone
    (keypoint, xy) peaks with no limb."""
    gy, gx = np.mgrid[0:H, 0:W].astype(np.float64)
    heat = np.zeros((19, H, W))
    pafs = np.zeros((38, H, W))
    peaks = [(k, xy) for p in people for k, xy in p.items()] + list(stray)
    for k, xy in peaks:
        g = scores * np.exp(-((gx - xy[0] - 0.25) ** 2 + (gy - xy[1] - 0.25) ** 2) / (2 * 0.8 ** 2))
        heat[k] = np.maximum(heat[k], g)
    for p in people:
        for limb in PLANTED_LIMBS:
            ka, kb = LIMB_KEYPOINTS[limb]
            if ka not in p or kb not in p:
                continue
            a, b = p[ka].astype(float), p[kb].astype(float)
            unit = (b - a) / np.linalg.norm(b - a)
            # distance of each px to the segment a-b
            t = np.clip(((gx - a[0]) * unit[0] + (gy - a[1]) * unit[1]) / np.linalg.norm(b - a), 0, 1)
            d = np.hypot(gx - (a[0] + t * (b - a)[0]), gy - (a[1] + t * (b - a)[1]))
            cx, cy = LIMB_PAF_CHANNELS[limb]
            pafs[cx][d <= 1.5] = unit[0]
            pafs[cy][d <= 1.5] = unit[1]
    heat[18] = 1 - heat[:18].max(axis=0)  # background
    return heat.astype(np.float32), pafs.astype(np.float32)


def decoded_xy(p) -> np.ndarray:
    """Planted person → expected LW3D_19 xy (19, 2) feature px, NaN where missing; the pelvis between the hips."""
    out = np.full((19, 2), np.nan)
    for k, xy in p.items():
        out[PANOPTIC_OF_2D[k]] = xy + 0.5
    out[2] = (out[6] + out[12]) / 2  # NaN without both hips
    return out


PLAN = InputPlan(scale=1.0, input_wh=(W * STRIDE, H * STRIDE), content_w=W * STRIDE)


def test_skeleton_registered():
    skel = get_skeleton("lw3d19")
    assert skel is LW3D_19 and skel.num_joints == 19
    assert skel.joint_names[:3] == ("neck", "nose", "pelvis")
    assert skel.joint_names[skel.mirror[skel.index("left_wrist")]] == "right_wrist"
    # COCO-18 → LW3D_19 by names: OpenPose's r_sho (2) is the right shoulder, its l_ear (17) the left ear
    assert skel.joint_names[PANOPTIC_OF_2D[2]] == "right_shoulder"
    assert skel.joint_names[PANOPTIC_OF_2D[17]] == "left_ear"


def test_find_peaks_suppresses_near_and_low():
    heat = np.zeros((20, 30))
    heat[5, 5], heat[5, 8], heat[10, 20], heat[15, 3] = 0.9, 0.8, 0.5, 0.05  # (5, 8) within 6 px; 0.05 too low
    peaks = find_peaks(heat)
    np.testing.assert_array_equal(peaks, [[5, 5, 0.9], [20, 10, 0.5]])


@pytest.mark.parametrize("people", [
    [person((8, 6)), person((27, 6)), person((46, 6))],
    [person((10, 5)), person((40, 6), missing=(6, 7, 9, 10))],  # no left elbow/wrist, no right knee/ankle
])
def test_planted_people_are_found(people):
    heat, pafs = plant_maps(people, stray=[(9, np.array([27, 30]))])  # a lone right knee joins nobody
    features = np.zeros((57, H, W), dtype=np.float32)
    found = decode(features, heat, pafs, PLAN, fx=400.0)
    assert found.xy.shape == (len(people), 19, 2)
    order = np.argsort(found.xy[:, 0, 0])  # by neck x
    for got_xy, got_conf, planted in zip(found.xy[order], found.conf[order], people):
        expected = decoded_xy(planted) * STRIDE
        np.testing.assert_allclose(got_xy, expected, atol=1e-9)
        has_pelvis = 8 in planted and 11 in planted
        assert (got_conf > 0.5).sum() == len(planted) + has_pelvis


def test_people_without_neck_or_enough_joints_are_dropped():
    people = [person((10, 6), missing=(1,)), person((40, 6), missing=tuple(range(2, 18)))]  # no neck; nose+neck
    heat, pafs = plant_maps(people)
    found = decode(np.zeros((57, H, W), np.float32), heat, pafs, PLAN, fx=400.0)
    assert found.xy.shape == (0, 19, 2) and found.xyz.shape == (0, 19, 3)


def test_group_people_reports_peak_indices():
    heat, pafs = plant_maps([person((10, 6)), person((40, 6))])
    import cv2
    up = lambda m: cv2.resize(m.transpose(1, 2, 0), None, fx=4, fy=4).transpose(2, 0, 1)
    peaks = [find_peaks(m) for m in up(heat[:18])]
    members, scores = group_people(peaks, up(pafs))
    assert members.shape == (2, 18) and (members >= 0).all()
    # peaks of each type are ordered by x: the left person holds peak 0 of every type
    assert sorted(members[:, 1].tolist()) == [0, 1] and (members[members[:, 1] == 0] == 0).all()
    assert (scores > 17 * 0.8).all()


def fronto_parallel(neck_xy, depth_cm, focal, centre):
    """A planted person whose joints all lie at ``depth_cm``: their camera-space xyz (19, 3) cm from the 2D
    (decoded px, pinhole), and the root-relative map values (19, 3) (xyz less the pelvis, / 180)."""
    xy = decoded_xy(person(neck_xy))  # the pelvis between the hips
    xyz = np.concatenate([(xy - centre) * depth_cm / focal, np.full((19, 1), depth_cm)], axis=1)
    return xyz, (xyz - xyz[2]) / 180.0


def test_planted_features_give_planted_3d():
    necks = [(10, 6), (40, 6)]
    heat, pafs = plant_maps([person(n) for n in necks])
    fx, plan = 500.0, InputPlan(scale=0.5, input_wh=(W * STRIDE, H * STRIDE), content_w=W * STRIDE)
    focal, centre = fx * plan.scale / STRIDE, np.array([W / 2, H / 2])
    features = np.zeros((57, H, W), dtype=np.float32)
    truths = []
    for (nx, ny), depth in zip(necks, (300.0, 450.0)):
        xyz, relative = fronto_parallel((nx, ny), depth, focal, centre)
        features[:, :, nx - 6:nx + 7] = relative.reshape(57, 1, 1)  # the person's columns hold its pose
        truths.append(xyz)
    found = decode(features, heat, pafs, plan, fx)
    order = np.argsort(found.xy[:, 0, 0])
    np.testing.assert_allclose(found.xyz[order], np.array(truths) / 100.0, atol=1e-5)
    np.testing.assert_allclose(found.xyz[order][:, :, 2], [[3.0] * 19, [4.5] * 19], atol=1e-5)


def test_limbs_are_read_at_their_first_confident_joint():
    features = np.zeros((57, H, W))
    xy = np.full((19, 2), np.nan)
    conf = np.zeros(19)
    xy[0], conf[0] = (10.7, 5.2), 0.9  # neck
    xy[4], conf[4] = (20.5, 7.9), 0.9  # left elbow; left wrist (5) missing
    features[:, 5, 10] = 1.0  # at the neck
    features[:, 7, 20] = 2.0  # at the elbow
    got = read_root_relative(features, xy, conf)
    chain = [5, 4, 3]  # left wrist, elbow, shoulder: read at the elbow
    np.testing.assert_array_equal(got[chain], 360.0)
    others = [j for j in range(19) if j not in chain]
    np.testing.assert_array_equal(got[others], 180.0)
    conf[0] = 0.05
    assert np.isnan(read_root_relative(features, xy, conf)).all()


def test_place_in_camera_needs_spread():
    xy = np.full((19, 2), np.nan)
    xy[0] = (3, 4)
    assert np.isnan(place_in_camera(np.zeros((19, 3)), xy, (0, 0), 100.0)).all()


@pytest.mark.parametrize("frame_wh, model_wh, expected", [
    ((1280, 720), (None, None), InputPlan(256 / 720, (448, 256), 448)),  # 455 px wide, cut to 448
    ((1280, 720), (448, 256), InputPlan(256 / 720, (448, 256), 448)),
    ((640, 720), (448, 256), InputPlan(256 / 720, (448, 256), 224)),  # 228 → 224, padded to 448
])
def test_input_plan(frame_wh, model_wh, expected):
    assert input_plan(frame_wh, model_wh) == expected


def test_planted_onnx_runs_by_path(tmp_path):
    necks = [(10, 6), (30, 6), (48, 6)]
    people = [person(n) for n in necks]
    heat, pafs = plant_maps(people)
    rgb = np.full((720, 1280, 3), 90, dtype=np.uint8)
    plan = input_plan((1280, 720), (448, 256))
    fx = 0.8 * 1280
    focal, centre = fx * plan.scale / STRIDE, np.array([plan.content_w / STRIDE / 2, H / 2])
    features = np.zeros((57, H, W), dtype=np.float32)
    truths = []
    for (nx, ny), depth in zip(necks, (250.0, 400.0, 600.0)):
        xyz, relative = fronto_parallel((nx, ny), depth, focal, centre)
        features[:, :, nx - 5:nx + 6] = relative.reshape(57, 1, 1)
        truths.append(xyz)
    path = planted_outputs_model(tmp_path / "human-pose-estimation-3d.onnx", "data", [1, 3, 256, 448],
                                 {"features": features[None], "heatmaps": heat[None], "pafs": pafs[None]})
    model = Lightweight3DEstimator(make_runner(path, device="cpu"))
    batch, got_plan = model.preprocess(rgb)
    assert got_plan == plan and batch.shape == (1, 3, 256, 448)
    np.testing.assert_allclose(batch, (90 - 128) / 255, atol=1e-6)
    found = model(rgb)
    order = np.argsort(found.xy[:, 0, 0])
    expected_xy = np.array([decoded_xy(p) for p in people]) * STRIDE / plan.scale
    np.testing.assert_allclose(found.xy[order], expected_xy, atol=1e-6)
    np.testing.assert_allclose(found.xyz[order], np.array(truths) / 100.0, atol=1e-4)


def test_preprocess_is_bgr_scaled_and_padded(tmp_path):
    model = Lightweight3DEstimator(make_runner(lw3d_conv_model(tmp_path / "m.onnx"), device="cpu"))
    rgb = np.zeros((360, 320, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # red
    batch, plan = model.preprocess(rgb)
    assert plan.content_w == 224 and batch.shape == (1, 3, 256, 448)  # 227.6 → 228 → 224
    expected_bgr = np.array([-128 / 255, -128 / 255, 127 / 255]).reshape(3, 1, 1)
    np.testing.assert_allclose(batch[0, :, :, :224], np.broadcast_to(expected_bgr, (3, 256, 224)), atol=1e-6)
    np.testing.assert_array_equal(batch[0, :, :, 224:], 0.0)
    raw = Lightweight3DEstimator(model.runner, raw_pixels=True).preprocess(rgb)[0]  # normalisation built in
    np.testing.assert_array_equal(raw[0, :, 0, 0], [0, 0, 255])
    np.testing.assert_array_equal(raw[0, :, 0, 300], 128)
    assert model(rgb).xy.shape[1:] == (19, 2)  # random weights: whatever people, the right shapes


def test_wrong_models_and_frames_are_refused(tmp_path):
    vit = constant_model(tmp_path / "vit.onnx", "input_0", [1, 3, 256, 192], "output_0",
                         np.zeros((1, 17, 64, 48)))
    with pytest.raises(ModelError, match="expected a lightweight 3D pose model.*found inputs"):
        Lightweight3DEstimator(make_runner(vit, device="cpu"))
    model = Lightweight3DEstimator(make_runner(lw3d_conv_model(tmp_path / "m.onnx"), device="cpu"))
    with pytest.raises(InputError, match=r"expected an RGB frame \(H, W, 3\) uint8, got \(10, 10\)"):
        model(np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match="expected a frame at least 8 px wide once scaled to 256 px high, got 2x720"):
        model(np.zeros((720, 2, 3), np.uint8))


def test_limb_tables_are_the_published_ones():
    # spot checks against the seed's BODY_PARTS_KPT_IDS / BODY_PARTS_PAF_IDS: neck-r_sho on PAF 12/13,
    # neck-r_hip on 0/1, nose-l_eye on 32/33, l_sho-l_ear on 26/27
    table = dict(zip(LIMB_KEYPOINTS, LIMB_PAF_CHANNELS))
    assert len(table) == 19 and LIMB_KEYPOINTS[0] == (1, 2)
    assert table[(1, 2)] == (12, 13) and table[(1, 8)] == (0, 1)
    assert table[(0, 15)] == (32, 33) and table[(5, 17)] == (26, 27)
    assert sorted(c for pair in LIMB_PAF_CHANNELS for c in pair) == list(range(38))
