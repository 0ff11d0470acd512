"""Lifting a Take's 2D tracks with VideoPose3D: joint layouts, gap filling, the Take's lifts, ``rigcast lift``.

Legend: T frames, J joints.
"""

from __future__ import annotations

import numpy as np
import pytest

from rigcast.cli import main
from rigcast.errors import InputError, TakeError
from rigcast.formats.take import Lift, Take
from rigcast.lift.temporal import fill_gaps, lift_take, load_lifter
from rigcast.models.videopose3d import TemporalModel
from rigcast.skeletons import BLAZEPOSE_33, COCO_17, H36M_17, coco17_from, h36m17_from
from test_take import make_take
from test_torch_checkpoint import videopose3d_state


def coco_pose() -> np.ndarray:
    """One COCO-17 pose (17, 2) with simple numbers: joint i at (i, 10 * i)."""
    return np.stack([np.arange(17.0), 10.0 * np.arange(17)], axis=1)


def test_coco_to_h36m_known_answer():
    coco = coco_pose()
    h36m = h36m17_from(coco, COCO_17)
    name = dict(zip(H36M_17.joint_names, h36m))
    c = dict(zip(COCO_17.joint_names, coco))
    np.testing.assert_allclose(name["pelvis"], [11.5, 115])  # mid-hips (11, 12)
    np.testing.assert_allclose(name["thorax"], [5.5, 55])  # mid-shoulders (5, 6)
    np.testing.assert_allclose(name["spine"], [8.5, 85])
    np.testing.assert_allclose(name["neck_nose"], c["nose"])
    np.testing.assert_allclose(name["head_top"], [3.5 + 0.5 * (3.5 - 5.5), 35 + 0.5 * (35 - 55)])  # ears (3, 4)
    for joint in ("right_hip", "left_knee", "right_ankle", "left_shoulder", "right_elbow", "left_wrist"):
        np.testing.assert_allclose(name[joint], c[joint])


def test_blazepose_maps_through_coco_names_and_h36m_passes_through():
    rng = np.random.default_rng(0)
    blaze = rng.uniform(0, 100, (4, 33, 3))  # (T, J, 3): works for 3D too
    coco = coco17_from(blaze, BLAZEPOSE_33)
    assert coco.shape == (4, 17, 3)
    np.testing.assert_array_equal(coco[:, COCO_17.index("left_eye")], blaze[:, BLAZEPOSE_33.index("left_eye")])
    np.testing.assert_allclose(h36m17_from(blaze, BLAZEPOSE_33), h36m17_from(coco, COCO_17))
    h36m = rng.uniform(size=(4, 17, 2))
    np.testing.assert_array_equal(h36m17_from(h36m, H36M_17), h36m)
    with pytest.raises(KeyError, match="h36m17 lacks joints"):
        coco17_from(h36m, H36M_17)
    with pytest.raises(ValueError, match=r"must be \(\.\.\., 17, D\) for coco17, got \(4, 33, 3\)"):
        h36m17_from(blaze, COCO_17)


def test_fill_gaps_interpolates_and_holds_ends():
    xy = np.zeros((5, 2, 2))
    xy[:, 0, 0] = [np.nan, 2, np.nan, 6, np.nan]
    xy[:, 1] = 1.0
    filled = fill_gaps(xy)
    np.testing.assert_allclose(filled[:, 0, 0], [2, 2, 4, 6, 6])
    xy[:, 1] = np.nan
    with pytest.raises(InputError, match=r"joints \[1\] are never seen in 5 frames"):
        fill_gaps(xy)


def lifter_and_take(tmp_path):
    model = TemporalModel.from_state_dict(videopose3d_state((3, 3), channels=16, seed=1))
    take = make_take(num_tracks=2, frames=12)
    return model, take


def expected_lift(model, track, width, height):
    xy = fill_gaps(h36m17_from(track.xy, track.skeleton))
    out = model.lift(xy, width, height)
    out[:, 0] = 0
    return out


def test_lift_take_stores_lifts_beside_the_tracks_and_round_trips(tmp_path):
    model, take = lifter_and_take(tmp_path)
    lifted = lift_take(take, model)
    assert [(lf.source, lf.track_id) for lf in lifted.lifts] == [("lift", 3), ("lift", 4)]
    assert lifted.tracks is take.tracks and take.lifts == ()  # originals kept, input unchanged
    for track in take.tracks:
        lf = lifted.lift(track.track_id)
        assert lf.skeleton == H36M_17
        np.testing.assert_array_equal(lf.frame_index, track.frame_index)
        np.testing.assert_allclose(lf.xyz, expected_lift(model, track, 640, 360), atol=1e-6)
        assert np.all(lf.xyz[:, 0] == 0)

    back = Take.load(lifted.save(tmp_path / "lifted.take.npz"))
    assert [(lf.source, lf.track_id, lf.model) for lf in back.lifts] == [("lift", 3, "videopose3d")] * 1 + \
        [("lift", 4, "videopose3d")]
    np.testing.assert_array_equal(back.lift(4).xyz, lifted.lift(4).xyz)
    np.testing.assert_array_equal(back.tracks[0].xyz, take.tracks[0].xyz)
    # Lifting again replaces the same source's lift; another source adds one.
    again = lift_take(back, model, track_ids=(3,))
    assert len(again.lifts) == 2
    assert len(lift_take(back, model, source="lift_causal").lifts) == 4
    with pytest.raises(KeyError, match="track 3 has no 'other' lift"):
        back.lift(3, "other")


def test_take_validates_its_lifts():
    take = make_take(num_tracks=1, frames=6)
    track = take.tracks[0]
    good = dict(source="lift", track_id=track.track_id, skeleton=H36M_17, frame_index=track.frame_index,
                xyz=np.zeros((6, 17, 3)))
    with pytest.raises(TakeError, match=r"lift refers to track 9, but the tracks are \[3\]"):
        take.with_lifts((Lift(**(good | {"track_id": 9})),))
    with pytest.raises(TakeError, match=r"covers frames \[6\] that the track does not"):
        take.with_lifts((Lift(**(good | {"frame_index": np.arange(1, 7), })),))
    with pytest.raises(TakeError, match=r"xyz must be .*\(6, 17, 3\).*got \(6, 33, 3\)"):
        Lift(**(good | {"xyz": np.zeros((6, 33, 3))}))
    with pytest.raises(TakeError, match="source must be a name"):
        Lift(**(good | {"source": "my lift"}))


def test_cli_lift_with_an_onnx_export(tmp_path, capsys):
    model, take = lifter_and_take(tmp_path)
    onnx_path = model.to_onnx(tmp_path / "videopose3d.onnx")
    take_path = take.save(tmp_path / "in.take.npz")
    out = tmp_path / "out.take.npz"
    assert main(["lift", str(take_path), "--model", str(onnx_path), "-o", str(out)]) == 0
    assert "'lift' lift of track(s) [3, 4] (receptive field 9 frames)" in capsys.readouterr().out
    lifted = Take.load(out)
    assert lifted.lift(3).model == "videopose3d:videopose3d.onnx"
    np.testing.assert_allclose(lifted.lift(3).xyz, expected_lift(model, take.tracks[0], 640, 360), atol=1e-4)


def test_cli_lift_names_a_bad_model_file_in_one_line(tmp_path, capsys):
    _, take = lifter_and_take(tmp_path)
    take_path = take.save(tmp_path / "in.take.npz")
    bad = tmp_path / "junk.bin"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["lift", str(take_path), "--model", str(bad), "-o", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rigcast: error: ") and "junk.bin" in err and "\n" not in err
    assert main(["lift", str(take_path), "--model", str(tmp_path / "missing.bin"), "-o", "o.npz"]) == 2
    assert "lifting model not found" in capsys.readouterr().err


def test_load_lifter_reads_a_checkpoint_without_torch(tmp_path, monkeypatch):
    from test_torch_checkpoint import write_checkpoint

    state = videopose3d_state((3, 3), channels=8)
    path = tmp_path / "pretrained.bin"
    write_checkpoint(path, {"model_pos": state}, monkeypatch)
    lifter = load_lifter(path)
    assert isinstance(lifter, TemporalModel) and lifter.receptive_field == 9


def test_retarget_source_lift_uses_the_lifted_points(tmp_path, capsys):
    from dataclasses import replace

    from rigcast.retarget.canonical import P
    from rigcast.retarget.cli import load_source, take_source

    take = make_take(num_tracks=1, frames=8)
    track = take.tracks[0]
    track = replace(track, xyz=np.nan_to_num(track.xyz) * 0.2)
    take = replace(take, tracks=(track,))
    # A lift that holds the track's own 3D in H36M order, root at 0, except the left wrist moved 10 cm.
    xyz = h36m17_from(track.xyz, track.skeleton)
    xyz -= xyz[:, :1]
    xyz[:, H36M_17.index("left_wrist"), 0] += 0.1
    lifted = take.with_lifts((Lift("lift", track.track_id, H36M_17, track.frame_index, xyz),))
    own, _ = take_source(lifted, use_face=False)
    via_lift, used = take_source(lifted, use_face=False, points="lift")
    assert used.skeleton == H36M_17
    rel = lambda pose, name: pose.xyz[:, P[name]] - pose.xyz[:, P["pelvis"]]  # noqa: E731
    for name in ("left_knee", "right_ankle", "left_shoulder", "right_elbow", "right_wrist"):
        np.testing.assert_allclose(rel(via_lift, name), rel(own, name), atol=1e-5)
    moved = np.linalg.norm(rel(via_lift, "left_wrist") - rel(own, "left_wrist"), axis=-1)
    np.testing.assert_allclose(moved, 0.1, atol=1e-5)

    path = lifted.save(tmp_path / "lifted.take.npz")
    assert "points from its 'lift' lift" in load_source(path, points="lift")[1]
    with pytest.raises(InputError, match=r"track 3 has no 'other' lift \(run `rigcast lift`\)"):
        load_source(path, points="other")


def test_lifting_modules_import_without_torch_or_onnx():
    import subprocess
    import sys

    code = ("import sys, rigcast.cli, rigcast.lift.temporal, rigcast.models.videopose3d, rigcast.runners, "
            "rigcast.retarget.cli; print(sorted(m for m in ('torch', 'onnx', 'bpy', 'tensorrt') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_analyze_lift_flag_lifts_the_new_take(tmp_path, monkeypatch, capsys):
    """``rigcast analyze --lift videopose3d:PATH`` (the analysis itself stubbed: it is tested elsewhere)."""
    import rigcast.pipeline.analyze as analyze_module

    model, take = lifter_and_take(tmp_path)
    onnx_path = model.to_onnx(tmp_path / "vp3d.onnx")
    out = tmp_path / "a.take.npz"

    def fake_analyze(source, output, config, progress=None, restart=False):
        return take.save(output) and take

    monkeypatch.setattr(analyze_module, "analyze", fake_analyze)
    assert main(["analyze", "clip.mp4", "-o", str(out), "--lift", f"videopose3d:{onnx_path}"]) == 0
    lifted = Take.load(out)
    assert [lf.track_id for lf in lifted.lifts] == [3, 4]
    np.testing.assert_allclose(lifted.lift(4).xyz, expected_lift(model, take.tracks[1], 640, 360), atol=1e-4)
    assert main(["info", str(out)]) == 0
    assert "'lift' lift: h36m17, 11 frames (videopose3d:vp3d.onnx)" in capsys.readouterr().out
    assert main(["analyze", "clip.mp4", "-o", str(out), "--lift", str(onnx_path)]) == 2
    assert "--lift must be videopose3d:PATH" in capsys.readouterr().err
