"""AMASS/SMPL pose archives (.npz) as retarget sources: SMPL's axes and joint tree, and real mocap through them.

No AMASS file may be committed (its licence forbids redistribution), so the archives with real motion are built
at test time from the CMU clips in tests/data: each clip retargeted onto SMPL's neutral rig and written in
AMASS's layout (``smpl_archives.write_amass``: Z-up world, axis-angle ``poses``, ``trans``, frame rate, gender,
betas).  The facts of the format itself (axes, knee sign, up axis) are checked on hand-made archives.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from rigcast.errors import InputError
from rigcast.formats.amass import SMPL_JOINTS, read_amass, smpl_rig
from rigcast.retarget import RetargetOptions, detect_bone_map, fk, pose_from_rig, retarget
from rigcast.retarget.cli import bvh_source, load_source, main
from retarget_checks import LIMBS, LINES, canonical_dict, direction_errors, summary
from smpl_archives import write_amass
from test_retarget_mocap import CLIPS, RIGS

DATA = Path(__file__).resolve().parent / "data"
QUARTER_X = np.pi / 2  # AMASS's usual root_orient: a quarter turn about X stands SMPL's Y-up body in a Z-up world


def joints(path: Path) -> dict[str, np.ndarray]:
    rig, motion, _ = read_amass(path)
    pose = fk(rig, motion)
    return {n: pose[:, i, :3, 3] for i, n in enumerate(SMPL_JOINTS)}


def archive(path: Path, root_orient, *, knee: float = 0.0, width: int = 72) -> Path:
    poses = np.zeros((2, width))
    poses[:, :3] = root_orient
    poses[1, 3 * SMPL_JOINTS.index("L_Knee")] = knee
    np.savez(path, poses=poses, trans=np.zeros((2, 3)), mocap_framerate=np.array(60.0), gender=np.array("male"))
    return path


@pytest.mark.parametrize("root_orient, up", [((QUARTER_X, 0, 0), "Z-up"), ((0, 0, 0), "Y-up"),
                                             ((np.pi, 0, 0), "Y-down")])
def test_smpl_axes_stand_the_body_up_facing_minus_y(tmp_path, root_orient, up):
    """Whatever the archive's world (AMASS Z-up, SMPL's Y-up, a camera's Y-down): upright, facing -Y, left +X, and
    a positive rotation of the left knee about X bends the shin backwards."""
    path = archive(tmp_path / "a.npz", root_orient, knee=0.6)
    assert read_amass(path)[2].up_axis == up
    j = joints(path)
    assert j["Head"][0, 2] - j["Pelvis"][0, 2] > 0.55
    assert j["L_Hip"][0, 0] - j["R_Hip"][0, 0] > 0.12
    assert j["L_Foot"][0, 1] - j["L_Ankle"][0, 1] < -0.1  # toes ahead of the ankle: facing -Y
    shin = j["L_Ankle"][1] - j["L_Knee"][1]
    assert shin[1] > 0.2 and shin[2] < -0.3, shin  # swung back (+Y), still below the knee


@pytest.mark.parametrize("width, fps_key", [(72, "mocap_framerate"), (156, "mocap_framerate"),
                                            (165, "mocap_frame_rate")])
@pytest.mark.parametrize("clip", CLIPS)
def test_real_mocap_through_an_amass_archive_onto_every_preset_rig(clip, width, fps_key, tmp_path):
    """CMU clip -> SMPL rig -> AMASS archive (SMPL, SMPL-H, SMPL-X widths) -> read -> every preset rig: world
    directions against the original CMU clip, median <= 1 deg and p95 <= 3 deg."""
    original, _ = bvh_source(DATA / clip)
    rig = smpl_rig()
    bone_map, _ = detect_bone_map(rig)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = retarget(original, rig, bone_map, options=RetargetOptions(foot_lock="never"))
    path = write_amass(tmp_path / "clip.npz", rig, motion, width=width, fps_key=fps_key)
    pose, text = load_source(path)
    model = {72: "SMPL", 156: "SMPL-H", 165: "SMPL-X"}[width]
    assert f"{model} poses ({width} values a frame) @ {float(original.fps):.3f} fps, Z-up world" in text, text
    assert "21/21 canonical bones" in text and "rest: T-pose" in text, text
    assert pose.fps == original.fps
    for name, build in RIGS.items():
        target = build()
        target_map, _ = detect_bone_map(target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            on_target = retarget(pose, target, target_map, options=RetargetOptions(foot_lock="never"))
        result = canonical_dict(pose_from_rig(target, target_map.indices(target), fk(target, on_target)).xyz)
        for what, source in (("archive", pose), ("CMU", original)):
            median, p95, worst = summary(direction_errors(canonical_dict(source.xyz), result, LIMBS + LINES))
            assert median <= 1.0 and p95 <= 3.0, f"{clip} -> {name} vs {what}: {median:.2f} / {p95:.2f}, {worst}"


def test_the_cli_reads_an_archive_and_says_what_it_holds(tmp_path, capsys):
    path = archive(tmp_path / "stand.npz", (QUARTER_X, 0, 0), knee=0.6, width=156)
    out = tmp_path / "out.bvh"
    assert main([str(path), "-o", str(out), "--foot-lock", "never"]) == 0
    printed = capsys.readouterr().out
    assert "AMASS/SMPL stand.npz (SMPL-H poses (156 values a frame) @ 60.000 fps, Z-up world, gender male" in printed
    assert out.is_file()


@pytest.mark.parametrize("content, message", [
    (dict(poses=np.zeros((3, 70)), trans=np.zeros((3, 3))), "poses must be (T, 72), (T, 156) or (T, 165)"),
    (dict(poses=np.zeros((3, 72)), trans=np.zeros((2, 3))), "trans must be (T, 3) with T=3"),
    (dict(poses=np.full((3, 72), np.nan), trans=np.zeros((3, 3))), "poses and trans must be finite"),
])
def test_bad_archives_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **content)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_source(path)
    with pytest.raises(InputError, match="--track applies to Takes"):
        load_source(archive(tmp_path / "ok.npz", (QUARTER_X, 0, 0)), track_id=1)
