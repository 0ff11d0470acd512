"""Retargeting: round trips through the canonical humanoid, cross-topology sources, detection, root motion,
foot contact and locking, on synthetic rigs posed with known rotations."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from rigcast.frames import CV_TO_BLENDER
from rigcast.retarget import (BONE_NAMES, BoneMap, CanonicalPose, ContactOptions, Motion, RetargetError,
                              RetargetOptions, RetargetWarning, canonical_from_track, classify_name, default_rig,
                              detect_bone_map, detect_contact, fk, from_blazepose33, from_coco17, from_h36m17,
                              from_vitpose25, load_preset, pose_from_rig, preset_names, retarget, rig_markers)
from rigcast.retarget.canonical import BONES, P
from rigcast.retarget.contact import _local_quadratic_fit, contact_spans
from rigcast.retarget.rotations import (matrix_to_quat_wxyz, mean_rotation, quat_wxyz_to_matrix, rotation_angle_deg,
                                        shortest_arc, turn_toward)
from rigcast.skeletons import BLAZEPOSE_33, COCO_17, H36M_17, VITPOSE_25
from test_retarget_rigs import (ODD_NAMES, anonymous, blazepose_from_rig, metarig_rig, mixamo_rig, motion_like, odd_rig,
                                random_motion, rigify_deform_rig, smpl_rig, unreal_rig, walk)

NO_LOCK = RetargetOptions(foot_lock="never")


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


def segment_errors(points_a: np.ndarray, points_b: np.ndarray, bones) -> dict[str, float]:
    """Worst angle (degrees) per canonical bone between the segments of two (T, K, 3) point sets."""
    out = {}
    for name in bones:
        bone = BONES[name]
        tail = next(t for t in bone.tails if np.all(np.isfinite(points_a[:, P[t]])))
        out[name] = float(angle_deg(points_a[:, P[tail]] - points_a[:, P[bone.head]],
                                    points_b[:, P[tail]] - points_b[:, P[bone.head]]).max())
    return out


# Bones whose twist reference rides rigidly on the bone itself whatever the pose.
RIGID_TWIST = ("hips", "head", "hand.L", "hand.R", "foot.L", "foot.R")
# In an anatomical motion (hinge elbows and knees, symmetric shrugs, wrists and
# ankles flexing about their own axes) every twist reference is rigid except
# the spine's and neck's (blends of their neighbours') and the swing-only bones.
NOT_ANATOMICAL_TWIST = ("spine", "neck", "shoulder.L", "shoulder.R", "toes.L", "toes.R")

RIGS = {"mixamo": mixamo_rig, "metarig": metarig_rig, "odd": odd_rig}


@pytest.mark.parametrize("rig_name", sorted(RIGS))
@pytest.mark.parametrize("kind", ["random", "motion"])
def test_pose_round_trip_through_canonical_points(rig_name, kind):
    rig = RIGS[rig_name]()
    bone_map, _ = detect_bone_map(rig)
    idx = bone_map.indices(rig)
    assert len(idx) == len(BONE_NAMES)
    if kind == "random":
        motion = random_motion(rig, list(idx.values()), 40, max_deg=50, seed=7)
        twist_bones = RIGID_TWIST
    else:
        motion = motion_like(rig, idx, 60)
        twist_bones = tuple(b for b in BONE_NAMES if b not in NOT_ANATOMICAL_TWIST)
    pose = fk(rig, motion)
    source = pose_from_rig(rig, idx, pose)
    out = retarget(source, rig, bone_map, options=NO_LOCK)
    assert out.local_quat_wxyz.shape == motion.local_quat_wxyz.shape
    pose_out = fk(rig, out)
    markers = rig_markers(rig, idx)
    errors = segment_errors(markers.posed_xyz(pose), markers.posed_xyz(pose_out), idx)
    assert max(errors.values()) < 1.0, errors
    for limb in ("upper_arm", "lower_arm", "thigh", "shin"):  # the bones' own Y axes too
        for s in "LR":
            b = idx[f"{limb}.{s}"]
            assert angle_deg(pose[:, b, :3, 1], pose_out[:, b, :3, 1]).max() < 1.0
    twist = {c: float(rotation_angle_deg(np.swapaxes(pose[:, idx[c], :3, :3], 1, 2)
                                         @ pose_out[:, idx[c], :3, :3]).max()) for c in twist_bones}
    assert max(twist.values()) < 5.0, twist
    np.testing.assert_allclose(pose_out[:, idx["hips"], :3, 3], pose[:, idx["hips"], :3, 3], atol=1e-6)


def test_twist_is_really_checked():
    """A roll of the forearm about its own axis must show in the twist measure above (the test can fail)."""
    rig = mixamo_rig()
    bone_map, _ = detect_bone_map(rig)
    idx = bone_map.indices(rig)
    motion = motion_like(rig, idx, 20)
    pose = fk(rig, motion)
    out = retarget(pose_from_rig(rig, idx, pose), rig, bone_map, options=NO_LOCK)
    q = np.array(out.local_quat_wxyz)
    b = idx["lower_arm.L"]
    q[:, b] = (Rotation.from_quat(q[:, b], scalar_first=True) * Rotation.from_rotvec([0, np.radians(10), 0])).as_quat(
        scalar_first=True)
    rolled = fk(rig, Motion(q, out.root_translation, out.root_bone))
    err = rotation_angle_deg(np.swapaxes(pose[:, b, :3, :3], 1, 2) @ rolled[:, b, :3, :3])
    assert np.all(err > 9.0)
    assert angle_deg(pose[:, b, :3, 1], rolled[:, b, :3, 1]).max() < 1e-4  # direction untouched


def test_blazepose_onto_mixamo_matches_limb_directions():
    source_rig = metarig_rig()  # A-pose, smaller, other names
    sidx = detect_bone_map(source_rig)[0].indices(source_rig)
    pose = fk(source_rig, motion_like(source_rig, sidx, 60))
    points = blazepose_from_rig(source_rig, sidx, pose)
    target = mixamo_rig()  # T-pose
    bone_map, _ = detect_bone_map(target)
    out, report = retarget(from_blazepose33(points, fps=30), target, bone_map, options=NO_LOCK, return_report=True)
    assert set(report.skipped) == {"toes.L", "toes.R"}  # BlazePose has no ball of the foot
    assert report.scale == pytest.approx(1 / 0.92, rel=0.01)
    result = rig_markers(target, bone_map.indices(target)).posed_xyz(fk(target, out))
    bp = lambda n: points[:, BLAZEPOSE_33.index(n)]  # noqa: E731
    for side in ("left", "right"):
        pairs = [("shoulder", "elbow", "shoulder", "elbow"), ("elbow", "wrist", "elbow", "wrist"),
                 ("hip", "knee", "hip", "knee"), ("knee", "ankle", "knee", "ankle"),
                 ("ankle", "foot_index", "ankle", "toe_end")]
        for a, b, ta, tb in pairs:
            err = angle_deg(bp(f"{side}_{b}") - bp(f"{side}_{a}"),
                            result[:, P[f"{side}_{tb}"]] - result[:, P[f"{side}_{ta}"]])
            assert err.max() < 2.0, (side, a, b, err.max())
        hand = 0.5 * (bp(f"{side}_index") + bp(f"{side}_pinky")) - bp(f"{side}_wrist")
        assert angle_deg(hand, result[:, P[f"{side}_hand_end"]] - result[:, P[f"{side}_wrist"]]).max() < 2.0
    mid = lambda a, b: 0.5 * (a + b)  # noqa: E731
    torso = mid(bp("left_shoulder"), bp("right_shoulder")) - mid(bp("left_hip"), bp("right_hip"))
    torso_out = mid(result[:, P["left_shoulder"]], result[:, P["right_shoulder"]]) - mid(
        result[:, P["left_hip"]], result[:, P["right_hip"]])
    assert angle_deg(torso, torso_out).max() < 2.0
    # The head turns as the source's did (ears and nose read back through the face rule).
    hs, ht = sidx["head"], bone_map.indices(target)["head"]
    turn_s = pose[:, hs, :3, :3] @ source_rig.rest_matrix[hs, :3, :3].T
    pose_t = fk(target, out)
    turn_t = pose_t[:, ht, :3, :3] @ target.rest_matrix[ht, :3, :3].T
    assert rotation_angle_deg(np.swapaxes(turn_s, 1, 2) @ turn_t).max() < 2.0


def _detector_points(skeleton, pose_points: np.ndarray, blazepose: np.ndarray) -> np.ndarray:
    """Another detector's layout filled from BlazePose-placed points (T, 33, 3)."""
    bp = lambda n: blazepose[:, BLAZEPOSE_33.index(n)]  # noqa: E731
    out = np.full((blazepose.shape[0], skeleton.num_joints, 3), np.nan)
    for j, name in enumerate(skeleton.joint_names):
        if name in BLAZEPOSE_33.joint_names:
            out[:, j] = bp(name)
    shoulders, hips = 0.5 * (bp("left_shoulder") + bp("right_shoulder")), 0.5 * (bp("left_hip") + bp("right_hip"))
    extra = {"neck": shoulders, "hip": hips, "pelvis": hips, "thorax": shoulders,
             "spine": pose_points[:, P["spine"]], "neck_nose": pose_points[:, P["head"]],
             "head_top": pose_points[:, P["head_end"]]}
    for side in ("left", "right"):
        extra[f"{side}_big_toe"] = extra[f"{side}_small_toe"] = bp(f"{side}_foot_index")
        extra[f"{side}_heel"] = bp(f"{side}_heel")
    for j, name in enumerate(skeleton.joint_names):
        if name in extra:
            out[:, j] = extra[name]
    return out


@pytest.mark.parametrize("skeleton, convert", [(COCO_17, from_coco17), (VITPOSE_25, from_vitpose25),
                                               (H36M_17, from_h36m17)])
def test_other_detectors_drive_the_limbs(skeleton, convert):
    source_rig = unreal_rig()
    sidx = detect_bone_map(source_rig)[0].indices(source_rig)
    pose = fk(source_rig, motion_like(source_rig, sidx, 30))
    points = rig_markers(source_rig, sidx).posed_xyz(pose)
    detector = _detector_points(skeleton, points, blazepose_from_rig(source_rig, sidx, pose))
    canon = convert(detector)
    assert canon.source == skeleton.name
    target = default_rig()
    bone_map = load_preset("rigcast")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = retarget(canon, target, bone_map, options=NO_LOCK)
    result = rig_markers(target, bone_map.indices(target)).posed_xyz(fk(target, out))
    errors = segment_errors(points, result, [f"{b}.{s}" for b in ("upper_arm", "lower_arm", "thigh", "shin")
                                             for s in "LR"])
    assert max(errors.values()) < 2.0, errors
    hands_known = np.all(np.isfinite(canon.point("left_hand_end")))
    assert hands_known == (skeleton is BLAZEPOSE_33)


DETECT_CASES = [
    (mixamo_rig, "preset:mixamo", lambda rig: load_preset("mixamo").resolve(rig).bones),
    (lambda: mixamo_rig(prefix="mixamorig1:"), "preset:mixamo", lambda rig: load_preset("mixamo").resolve(rig).bones),
    (metarig_rig, "preset:metarig", lambda rig: load_preset("metarig").bones),
    (rigify_deform_rig, "preset:rigify_deform", lambda rig: load_preset("rigify_deform").bones),
    (unreal_rig, "preset:unreal_manny", lambda rig: load_preset("unreal_manny").bones),
    (smpl_rig, "preset:smpl", lambda rig: load_preset("smpl").bones),
    (default_rig, "preset:rigcast", lambda rig: load_preset("rigcast").bones),
    (odd_rig, "names", lambda rig: {k: ("Armature|" + v if k == "hips" else v) for k, v in ODD_NAMES.items()}),
]


@pytest.mark.parametrize("build, method, expected", DETECT_CASES)
def test_detect_bone_map(build, method, expected):
    rig = build()
    bone_map, report = detect_bone_map(rig)
    assert report.method == method
    assert dict(bone_map.bones) == dict(expected(rig))
    assert report.missing == ()
    assert str(report).count("<-") == len(BONE_NAMES)


@pytest.mark.parametrize("build, preset", [(mixamo_rig, "mixamo"), (metarig_rig, "metarig"),
                                           (rigify_deform_rig, "rigify_deform"), (unreal_rig, "unreal_manny"),
                                           (smpl_rig, "smpl"), (default_rig, "rigcast")])
def test_detect_without_names_from_geometry(build, preset):
    rig = build()
    nameless, renamed = anonymous(rig)
    bone_map, report = detect_bone_map(nameless)
    assert report.method == "geometry"
    assert dict(bone_map.bones) == {c: renamed[b] for c, b in load_preset(preset).resolve(rig).bones.items()}
    bone_map, report = detect_bone_map(rig, presets=())  # and from the names alone
    assert report.method == "names"
    assert dict(bone_map.bones) == dict(load_preset(preset).resolve(rig).bones)


def test_incomplete_rig_is_reported_and_still_retargeted():
    rig = mixamo_rig(drop=("LeftHand", "LeftToeBase", "RightToeBase", "Neck"))
    bone_map, report = detect_bone_map(rig)
    assert report.method == "preset:mixamo"
    assert set(report.missing) == {"hand.L", "toes.L", "toes.R", "neck", "head"}
    assert "missing: neck, head, hand.L, toes.L, toes.R" in str(report)
    full = mixamo_rig()
    fidx = detect_bone_map(full)[0].indices(full)
    source = pose_from_rig(full, fidx, fk(full, motion_like(full, fidx, 20)))
    with pytest.warns(RetargetWarning, match="neck, head, hand.L, toes.L, toes.R"):
        out = retarget(source, rig, bone_map, options=NO_LOCK)
    idx = bone_map.indices(rig)
    result = rig_markers(rig, idx).posed_xyz(fk(rig, out))
    errors = segment_errors(source.xyz, result, [c for c in idx if c != "chest"])
    assert max(errors.values()) < 1.0, errors
    unmapped = [b for b in range(rig.num_bones) if b not in idx.values()]
    np.testing.assert_allclose(np.abs(out.local_quat_wxyz[:, unmapped, 0]), 1.0)  # left at rest


def test_rigify_controls_preferred_and_lower_spine_absent_by_design():
    rig = rigify_deform_rig()
    # A generated Rigify rig: DEF bones plus the FK controls beside them (Blender 5.0's Rigify names toe_fk.L).
    controls = {"torso": "DEF-spine", "chest": "DEF-spine.003", "neck": "DEF-spine.004", "head": "DEF-spine.006"}
    for s in "LR":
        controls.update({f"shoulder.{s}": f"DEF-shoulder.{s}", f"upper_arm_fk.{s}": f"DEF-upper_arm.{s}",
                         f"forearm_fk.{s}": f"DEF-forearm.{s}", f"hand_fk.{s}": f"DEF-hand.{s}",
                         f"thigh_fk.{s}": f"DEF-thigh.{s}", f"shin_fk.{s}": f"DEF-shin.{s}",
                         f"foot_fk.{s}": f"DEF-foot.{s}", f"toe_fk.{s}": f"DEF-toe.{s}"})
    from rigcast.retarget import Rig
    names = list(rig.bone_names) + list(controls)
    parents = list(rig.parents) + [-1] * len(controls)
    copy = [rig.index(v) for v in controls.values()]
    both = Rig("rigify", names, parents, np.concatenate([rig.head_xyz, rig.head_xyz[copy]]),
               np.concatenate([rig.tail_xyz, rig.tail_xyz[copy]]),
               np.concatenate([rig.rest_matrix, rig.rest_matrix[copy]]))
    bone_map, report = detect_bone_map(both)
    assert report.method == "preset:rigify_control"
    assert report.missing == () and "spine" not in bone_map.bones and bone_map.absent == ("spine",)


@pytest.mark.parametrize("name, expected", [
    ("mixamorig:LeftForeArm", ("L", "forearm", 0)), ("Armature|chr:R_upperArm_jnt", ("R", "upperarm", 0)),
    ("DEF-forearm.L.001", ("L", "forearm", 1)), ("upperarm_twist_01_l", ("L", "upperarmtwist", 1)),
    ("Bip01 L Calf", ("L", "calf", 0)), ("lShldrBend", ("L", "shldr", 0)), ("spine_03", ("", "spine", 3)),
    ("thigh_fk.R", ("R", "thigh", 0)), ("LeftUpLeg", ("L", "upleg", 0)), ("Hips", ("", "hips", 0)),
])
def test_classify_name(name, expected):
    assert classify_name(name) == expected


def test_bone_map_files(tmp_path):
    assert {"mixamo", "metarig", "rigify_deform", "rigify_control", "unreal_manny", "unreal_mannequin", "smpl",
            "rigcast"} <= set(preset_names())
    m = load_preset("rigify_control")
    m.save(tmp_path / "m.json")
    back = BoneMap.load(tmp_path / "m.json")
    assert dict(back.bones) == dict(m.bones) and back.absent == ("spine",) and back.priority == 1
    assert m.missing() == ()
    assert load_preset("mixamo").with_bones({"toes.L": None, "toes.R": None}).missing() == ("toes.L", "toes.R")


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "bones": {"elbow.L": "a"}}, "unknown canonical bones"),
    ({"name": "x", "bones": {"hand.L": "a", "hand.R": "a"}}, "mapped twice"),
    ({"name": "x", "bones": {"hand.L": ""}}, "must map to a bone name"),
    ({"name": "x"}, "must be"),
])
def test_bone_map_errors(data, message):
    with pytest.raises(RetargetError, match=message):
        BoneMap.from_dict(data)


def test_quaternion_signs_are_continuous():
    rig = default_rig()
    idx = load_preset("rigcast").indices(rig)
    num_frames = 90
    q = np.zeros((num_frames, rig.num_bones, 4))
    q[..., 0] = 1.0
    spin = Rotation.from_euler("y", np.linspace(0, 4 * np.pi, num_frames)[:, None])  # hips turn twice about their axis
    q[:, idx["hips"]] = spin.as_quat(scalar_first=True)
    roll = Rotation.from_euler("x", np.linspace(0, 3 * np.pi, num_frames)[:, None])
    q[:, idx["upper_arm.L"]] = roll.as_quat(scalar_first=True)
    motion = Motion(q, np.zeros((num_frames, 3)), idx["hips"])
    out = retarget(pose_from_rig(rig, idx, fk(rig, motion)), rig, load_preset("rigcast"), options=NO_LOCK)
    dots = np.sum(out.local_quat_wxyz[1:] * out.local_quat_wxyz[:-1], axis=-1)
    assert dots.min() > 0.9
    assert out.local_quat_wxyz[0, :, 0].min() >= 0
    # scipy's own w >= 0 convention would flip: the check above can fail.
    canonical = Rotation.from_quat(out.local_quat_wxyz[:, idx["hips"]], scalar_first=True).as_quat(
        canonical=True, scalar_first=True)
    assert np.sum(canonical[1:] * canonical[:-1], axis=-1).min() < 0
    np.testing.assert_allclose(fk(rig, out)[:, idx["hips"], :3, :3], fk(rig, motion)[:, idx["hips"], :3, :3],
                               atol=1e-9)


def test_root_motion_is_scaled_and_can_ride_on_a_root_bone():
    source_rig = default_rig()
    sidx = load_preset("rigcast").indices(source_rig)
    motion = random_motion(source_rig, list(sidx.values()), 20, max_deg=30, seed=3, translation=0.5)
    source = pose_from_rig(source_rig, sidx, fk(source_rig, motion))
    target = default_rig(height=2.1)
    out = retarget(source, target, load_preset("rigcast"), options=NO_LOCK)
    np.testing.assert_allclose(fk(target, out)[:, 0, :3, 3], source.point("pelvis") * 1.2, atol=1e-9)
    flat = retarget(source, target, load_preset("rigcast"), options=RetargetOptions(foot_lock="never",
                                                                                        root_motion="in_place"))
    hips = fk(target, flat)[:, 0, :3, 3]
    np.testing.assert_allclose(hips[:, :2], np.broadcast_to(target.head_xyz[0, :2], (20, 2)), atol=1e-9)
    np.testing.assert_allclose(hips[:, 2], source.point("pelvis")[:, 2] * 1.2, atol=1e-9)
    still = retarget(source, target, load_preset("rigcast"), options=RetargetOptions(foot_lock="never",
                                                                                         root_motion="none"))
    assert np.all(still.root_translation == 0)

    odd = odd_rig()
    bone_map = detect_bone_map(odd)[0]
    idx = bone_map.indices(odd)
    root = odd.index("Armature|chr:root_jnt")
    on_root = retarget(source, odd, bone_map, options=RetargetOptions(foot_lock="never",
                                                                      root_bone="Armature|chr:root_jnt"))
    on_hips = retarget(source, odd, bone_map, options=NO_LOCK)
    assert on_root.root_bone == root and on_hips.root_bone == idx["hips"]
    np.testing.assert_allclose(fk(odd, on_root)[:, idx["hips"]], fk(odd, on_hips)[:, idx["hips"]], atol=1e-9)
    with pytest.raises(RetargetError, match="ancestors"):
        retarget(source, odd, bone_map, options=RetargetOptions(foot_lock="never", root_bone="chr:L_knee_jnt"))


def test_a_shoulders_anchor_holds_the_shoulders_whatever_the_guessed_pelvis_and_legs():
    """A source whose pelvis and legs are wrong (as a pose model's guesses for hips out of frame are): anchored on
    the shoulders, the rig's shoulder midpoint is the source's times the shoulder-width scale on every frame, while
    the pelvis anchor puts it elsewhere."""
    source_rig = default_rig()
    sidx = load_preset("rigcast").indices(source_rig)
    motion = random_motion(source_rig, list(sidx.values()), 20, max_deg=30, seed=5, translation=0.5)
    source = pose_from_rig(source_rig, sidx, fk(source_rig, motion))
    xyz = np.array(source.xyz)
    lower = [P[n] for n in ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
                            "right_ankle", "left_heel", "right_heel", "left_toe", "right_toe", "left_toe_end",
                            "right_toe_end")]
    xyz[:, lower] += [0.0, 0.1, -0.25]  # guessed too low and too far
    xyz[:, lower, 2] = 0.6 * xyz[:, lower, 2] + 0.2  # and legs too short
    guessed = source.with_xyz(xyz)
    target = default_rig(height=2.1)
    markers = rig_markers(target, load_preset("rigcast").indices(target))
    shoulders = [P["left_shoulder"], P["right_shoulder"]]
    got, scale = {}, {}
    for anchor in ("shoulders", "pelvis"):
        out, report = retarget(guessed, target, load_preset("rigcast"), return_report=True,
                               options=RetargetOptions(foot_lock="never", anchor=anchor))
        got[anchor], scale[anchor] = markers.posed_xyz(fk(target, out))[:, shoulders].mean(axis=1), report.scale
    # Shoulder widths: a 2.1 m rig over a 1.75 m source, within what the clavicles' random turns change.
    assert scale["shoulders"] == pytest.approx(1.2, rel=0.05) and scale["pelvis"] > 1.5  # legs 0.6 x as long
    want = xyz[:, shoulders].mean(axis=1) * scale["shoulders"]
    np.testing.assert_allclose(got["shoulders"], want, atol=1e-9)
    assert np.linalg.norm(got["pelvis"] - want, axis=1).min() > 0.1


def test_a_track_without_seen_hips_is_anchored_on_its_shoulders():
    from rigcast.formats.take import Track
    from rigcast.retarget import track_anchor

    conf = np.ones((8, 33))
    hips = [BLAZEPOSE_33.index("left_hip"), BLAZEPOSE_33.index("right_hip")]
    xy = np.full((8, 33, 2), 80.0)
    xy[:, hips] = [[70.0, 150.0], [90.0, 150.0]]  # below a 160x120 picture

    def track(conf, xy=xy):
        return Track(track_id=0, skeleton=BLAZEPOSE_33, frame_index=np.arange(8), xy=xy,
                     xyz=np.zeros((8, 33, 3)), conf=conf, root_xyz=np.zeros((8, 3)))

    assert track_anchor(track(conf)) == track_anchor(track(conf), (160, 120)) == "pelvis"
    conf[:, hips] = 0.0
    assert track_anchor(track(conf)) == track_anchor(track(conf), (160, 120)) == "shoulders"
    # Unseen but inside the picture (a small far person's): the pelvis, frames without keypoints not counted.
    assert track_anchor(track(conf), (160, 160)) == "pelvis"
    gaps = xy.copy()
    gaps[:6] = np.nan
    gaps[6:, hips] = [[70.0, 100.0], [90.0, 100.0]]
    assert track_anchor(track(conf, gaps), (160, 120)) == "pelvis"
    conf[:2, hips[0]] = conf[:2, hips[1]] = 0.9  # both hips seen on a quarter of the frames
    assert track_anchor(track(conf), (160, 120)) == "pelvis"
    conf[:2, hips[1]] = 0.1  # one hip alone is not enough
    assert track_anchor(track(conf), (160, 120)) == "shoulders"


def test_head_rotation_from_a_face_tracker_overrides_the_ears():
    rig = default_rig()
    bone_map = load_preset("rigcast")
    idx = bone_map.indices(rig)
    source = pose_from_rig(rig, idx, fk(rig, Motion.rest(rig, 10)))
    turn = Rotation.from_euler("zx", np.stack([np.linspace(0, 60, 10), np.linspace(0, -20, 10)], 1),
                               degrees=True).as_matrix()
    out = retarget(source, rig, bone_map, head_rotation=turn, options=NO_LOCK)
    head = idx["head"]
    got = fk(rig, out)[:, head, :3, :3] @ rig.rest_matrix[head, :3, :3].T
    np.testing.assert_allclose(got, turn, atol=1e-9)
    still = fk(rig, Motion.rest(rig, 10))
    np.testing.assert_allclose(fk(rig, out)[:, idx["neck"], :3, :3], still[:, idx["neck"], :3, :3], atol=1e-9)


def test_face_tracker_rotations_become_head_rotations():
    from rigcast.retarget import head_rotation_from_face

    frontal = np.diag([1.0, -1.0, -1.0])  # rigcast.face.FRONTAL: looking into the camera
    np.testing.assert_allclose(head_rotation_from_face(frontal[None])[0], np.eye(3), atol=1e-12)
    # Turned 30 degrees to the subject's left (about the face's own up axis): a turn
    # about world +Z that brings forward (-Y) toward the left (+X).
    turned = frontal @ Rotation.from_euler("y", 30, degrees=True).as_matrix()
    np.testing.assert_allclose(head_rotation_from_face(turned[None])[0],
                               Rotation.from_euler("z", 30, degrees=True).as_matrix(), atol=1e-12)


def test_missing_frames_leave_the_bone_at_rest_relative_to_its_parent():
    rig = default_rig()
    bone_map = load_preset("rigcast")
    idx = bone_map.indices(rig)
    motion = random_motion(rig, list(idx.values()), 10, max_deg=40, seed=8)
    source = pose_from_rig(rig, idx, fk(rig, motion))
    xyz = np.array(source.xyz)
    xyz[4, P["left_wrist"]] = np.nan  # the forearm and the hand lose their target at frame 4
    out = retarget(source.with_xyz(xyz), rig, bone_map, options=NO_LOCK)
    for bone in ("lower_arm.L", "hand.L"):
        np.testing.assert_allclose(np.abs(out.local_quat_wxyz[4, idx[bone], 0]), 1.0)
    full = retarget(source, rig, bone_map, options=NO_LOCK)
    np.testing.assert_allclose(out.local_quat_wxyz[:4], full.local_quat_wxyz[:4], atol=1e-12)


def _planted_motion_mm(rig, motion, planted) -> float:
    """Worst movement (mm) of ankle, heel, ball and toe tip over the inner frames of each planted span."""
    idx = load_preset("rigcast").indices(rig)
    pts = rig_markers(rig, idx).posed_xyz(fk(rig, motion))
    worst = 0.0
    for i, side in enumerate(("left", "right")):
        for a, b in contact_spans(planted[:, i]):
            a, b = a + 3, b - 3  # a contact is found a frame or two after landing
            for n in ("ankle", "heel", "toe", "toe_end"):
                p = pts[a:b, P[f"{side}_{n}"]]
                if len(p) > 2:
                    worst = max(worst, 1000 * float(np.linalg.norm(p - np.median(p, axis=0), axis=1).max()))
    return worst


def test_foot_locking_holds_planted_feet_against_noise():
    xyz, planted = walk(num_frames=150, noise=0.006, seed=1)
    rig = default_rig()
    source = CanonicalPose(xyz, fps=30)
    loose = retarget(source, rig, load_preset("rigcast"), options=NO_LOCK)
    locked, report = retarget(source, rig, load_preset("rigcast"), options=RetargetOptions(foot_lock="always"),
                              return_report=True)
    auto = retarget(source, rig, load_preset("rigcast"))
    assert _planted_motion_mm(rig, loose, planted) > 15.0  # 6 mm jitter on every joint shows at the feet
    assert _planted_motion_mm(rig, locked, planted) < 5.0
    assert _planted_motion_mm(rig, auto, planted) < 5.0
    assert locked.contact.shape == (150, 2) and (locked.contact == planted).mean() > 0.85
    assert loose.contact is None
    # Swing feet are not held: the swing foot still travels a stride.
    left_ankle = rig_markers(rig, load_preset("rigcast").indices(rig)).posed_xyz(fk(rig, locked))[:, P["left_ankle"]]
    assert np.ptp(left_ankle[:, 1]) > 3.0


def test_auto_mode_does_not_lock_a_sliding_foot():
    xyz, planted = walk(num_frames=90, noise=0.0, slide=0.5)
    source = CanonicalPose(xyz, fps=30)
    rig = default_rig()
    options = ContactOptions(speed_on=1.0, speed_off=1.5)  # gliding at 0.5 m/s still counts as contact
    auto, report = retarget(source, rig, load_preset("rigcast"),
                            options=RetargetOptions(foot_lock="auto", contact=options), return_report=True)
    always = retarget(source, rig, load_preset("rigcast"), options=RetargetOptions(foot_lock="always", contact=options))
    assert sum("left foot slides" in n for n in report.notes) == 3
    assert not any("right foot" in n for n in report.notes)
    assert _planted_motion_mm(rig, auto, planted) > 50.0  # the glide is kept
    # Held at its median, the foot asks the leg for +-15 cm more reach than it
    # has at the ends of the glide; what the leg can reach is held.
    assert _planted_motion_mm(rig, always, planted) < 20.0


def test_grounding_puts_planted_feet_on_the_floor():
    xyz, planted = walk(num_frames=90, noise=0.0)
    lifted = CanonicalPose(xyz + [0.0, 0.0, 0.25], fps=30)
    rig = default_rig()
    idx = load_preset("rigcast").indices(rig)
    markers = rig_markers(rig, idx)
    floor = markers.rest_xyz(rig)[[P[f"{s}_{n}"] for s in ("left", "right") for n in ("heel", "toe_end")], 2].min()
    for mode, expect_on_floor in (("never", False), ("grounding", True)):
        out = retarget(lifted, rig, load_preset("rigcast"), options=RetargetOptions(foot_lock=mode))
        pts = markers.posed_xyz(fk(rig, out))
        low = np.min([pts[planted[:, i], P[f"{s}_heel"], 2].min() for i, s in enumerate(("left", "right"))])
        assert (abs(low - floor) < 0.005) == expect_on_floor


@pytest.mark.parametrize("height, speed, expected", [
    ([0.0] * 10, [0.0] * 10, [1] * 10),
    ([0.2] * 10, [0.0] * 10, [0] * 10),
    # hysteresis: 6 cm is between the on (5) and off (8) heights, so the state holds
    ([0.0, 0.0, 0.0, 0.06, 0.06, 0.06, 0.09, 0.06, 0.06, 0.06], [0.0] * 10, [1] * 6 + [0] * 4),
    # speeds are central differences over +-1 frame here, so the burst shows on 3 frames
    ([0.0] * 10, [0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 0.0, 0.0], [1] * 4 + [0] * 3 + [1] * 3),
    ([0.0, 0.0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.0, 0.0, 0.2], [0.0] * 10, [0] * 10),  # spans under 3 frames dropped
])
def test_detect_contact(height, speed, expected):
    num = len(height)
    fps = 10.0
    # A foot whose height and speed are as given (speed along x, integrated).
    x = np.concatenate([[0.0], np.cumsum(np.array(speed)[:-1] / fps)])
    foot = np.zeros((num, 2, 1, 3))
    foot[:, :, 0, 0] = x[:, None]
    foot[:, :, 0, 2] = np.array(height)[:, None]
    got = detect_contact(foot, fps, 0.0, ContactOptions(speed_window_s=0.1))
    np.testing.assert_array_equal(got[:, 0], np.array(expected, bool))


@pytest.mark.parametrize("kwargs, message", [
    (dict(foot_lock="sometimes"), "foot_lock"), (dict(root_motion="fly"), "root_motion"),
    (dict(scale=-1.0), "scale"), (dict(twist_min_deg=30, twist_full_deg=20), "twist_min_deg"),
    (dict(anchor="knees"), "anchor"),
])
def test_options_are_validated(kwargs, message):
    with pytest.raises(RetargetError, match=message):
        RetargetOptions(**kwargs)


def test_canonical_points_from_a_take_track():
    from rigcast.formats.take import Track

    rig = default_rig()
    idx = load_preset("rigcast").indices(rig)
    pose = fk(rig, motion_like(rig, idx, 12))
    world = blazepose_from_rig(rig, idx, pose)
    # A camera 4 m in front, 1.2 m up, looking along +Y: world -> camera is the inverse of cv_to_blender.
    camera = (world - [0.0, -4.0, 1.2]) @ CV_TO_BLENDER
    root = 0.5 * (camera[:, 23] + camera[:, 24])
    track = Track(track_id=0, skeleton=BLAZEPOSE_33, frame_index=np.arange(12), xy=np.zeros((12, 33, 2)),
                  xyz=camera - root[:, None], conf=np.ones((12, 33)), root_xyz=root)
    canon = canonical_from_track(track, fps=30)
    assert canon.source == "blazepose33" and "spine" in canon.derived
    np.testing.assert_allclose(canon.point("pelvis")[0, :2], 0.0, atol=1e-5)
    feet = [P["left_heel"], P["right_heel"], P["left_toe_end"], P["right_toe_end"]]
    lowest = np.nanmin(canon.xyz[:, feet, 2], axis=1)
    assert abs(np.percentile(lowest, 5)) < 1e-5
    expected = from_blazepose33(world)
    shift = canon.point("pelvis")[0] - expected.point("pelvis")[0]
    np.testing.assert_allclose(canon.xyz, expected.xyz + shift, atol=1e-4)  # float32 track storage


def test_core_retarget_imports_no_blender():
    code = ("import sys, rigcast.retarget, rigcast.formats.bvh, rigcast.skeletons\n"
            "bad = ('bpy', 'mathutils', 'bmesh', 'torch', 'onnxruntime', 'cv2')\n"
            "print(','.join(m for m in bad if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_shortest_arc_handles_opposite_and_missing_directions():
    a = np.array([[1.0, 0, 0], [0, 0, 1], [np.nan, 0, 0]])
    b = np.array([[-1.0, 0, 0], [0, 1, 0], [1, 0, 0]])
    r = shortest_arc(a, b)
    np.testing.assert_allclose(r[0] @ a[0], b[0], atol=1e-12)
    np.testing.assert_allclose(r[1] @ a[1], b[1], atol=1e-12)
    assert np.all(np.isnan(r[2]))


# --------------------------------------------------------------------------- numpy rotations against SciPy


def _random_rotations(n: int, seed: int) -> np.ndarray:
    return Rotation.random(n, random_state=seed).as_matrix()


def test_matrix_to_quat_wxyz_matches_scipy_on_rotations_near_rotations_and_nan():
    """SciPy stays the reference: its branch and sign on exact rotations, its nearest-rotation projection on
    matrices off orthonormal (a float32 pose matrix, a noisy estimate), NaN passed through, no rotation refused."""
    m = _random_rotations(500, 1)
    m[:4] = [np.eye(3), np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])]  # branch ties
    noisy = m + np.random.default_rng(2).normal(0, 0.05, m.shape)
    for mats in (m, m.astype(np.float32).astype(np.float64), noisy):
        np.testing.assert_allclose(matrix_to_quat_wxyz(mats), Rotation.from_matrix(mats).as_quat(scalar_first=True),
                                   atol=1e-12)
    np.testing.assert_allclose(matrix_to_quat_wxyz(m.reshape(50, 10, 3, 3), orthonormal=True),
                               Rotation.from_matrix(m, assume_valid=True).as_quat(scalar_first=True).reshape(50, 10, 4),
                               atol=1e-12)
    with_nan = m[:3].copy()
    with_nan[1, 0, 0] = np.nan
    q = matrix_to_quat_wxyz(with_nan)
    assert np.all(np.isnan(q[1])) and np.all(np.isfinite(q[[0, 2]]))
    with pytest.raises(ValueError, match="determinant"):
        matrix_to_quat_wxyz(np.diag([1.0, 1.0, -1.0]))


def test_quat_wxyz_to_matrix_matches_scipy_and_normalises():
    q = np.random.default_rng(3).normal(size=(400, 4))
    np.testing.assert_allclose(quat_wxyz_to_matrix(q), Rotation.from_quat(q, scalar_first=True).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(quat_wxyz_to_matrix(q.reshape(20, 20, 4)).reshape(400, 3, 3),
                               quat_wxyz_to_matrix(q), atol=1e-15)
    assert np.all(np.isnan(quat_wxyz_to_matrix(np.array([np.nan, 0.0, 0.0, 1.0]))))
    with pytest.raises(ValueError, match="zero quaternion"):
        quat_wxyz_to_matrix(np.zeros(4))


@pytest.mark.parametrize("spread", [0.05, 0.6, np.pi])
def test_mean_rotation_matches_scipy(spread):
    """Clustered (a planted foot's rotations over a contact) and scattered rotations; the quaternions' signs are
    shuffled, which the mean must ignore."""
    rng = np.random.default_rng(4)
    centre = Rotation.random(random_state=5)
    for n in (1, 2, 17):
        rots = (Rotation.from_rotvec(rng.normal(0, spread, (n, 3))) * centre)
        m = rots.as_matrix()
        np.testing.assert_allclose(mean_rotation(m), Rotation.from_matrix(m).mean().as_matrix(), atol=1e-12)


def test_turn_toward_matches_scipys_scaled_rotation_vector():
    a, b = _random_rotations(300, 6), _random_rotations(300, 7)
    b[:3] = a[:3]  # no turn at all
    w = np.random.default_rng(8).uniform(0, 1, 300)
    w[3:5] = 0.0, 1.0
    step = Rotation.from_matrix(b @ np.swapaxes(a, -1, -2)).as_rotvec() * w[:, None]
    np.testing.assert_allclose(turn_toward(a, b, w), Rotation.from_rotvec(step).as_matrix() @ a, atol=1e-12)


@pytest.mark.parametrize("n", [7, 8, 40])
def test_local_quadratic_fit_is_savitzky_golay(n):
    from scipy.signal import savgol_filter

    x = np.random.default_rng(n).normal(size=(n, 3))
    np.testing.assert_allclose(_local_quadratic_fit(x, 7), savgol_filter(x, 7, 2, axis=0), atol=1e-12)


RETARGET_WITHOUT_SCIPY = """
import sys
import numpy as np
from rigcast.retarget import CanonicalPose, RetargetOptions, default_rig, load_preset, retarget
xyz = np.load(sys.argv[1])
for mode in ("auto", "always"):
    motion = retarget(CanonicalPose(xyz, fps=30), default_rig(), load_preset("rigcast"),
                      options=RetargetOptions(foot_lock=mode))
    assert motion.contact.any()
print("SCIPY", ",".join(sorted(m for m in sys.modules if m.split(".")[0] == "scipy"))[:200] or "none")
"""


def test_retargeting_with_foot_locking_imports_no_scipy(tmp_path):
    """Start-up cost: a render of a character retargets its bodies, and importing ``scipy.spatial`` (0.17 s of
    CPU, 0.25-0.3 s of wall) was most of the render's fixed overhead; retargeting is numpy alone."""
    np.save(tmp_path / "walk.npy", walk(num_frames=60, noise=0.006, seed=1)[0])  # the rigs module imports SciPy
    done = subprocess.run([sys.executable, "-c", RETARGET_WITHOUT_SCIPY, str(tmp_path / "walk.npy")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("SCIPY")[-1].strip() == "none"


# --------------------------------------------------------------------------- frames the source does not show


def test_unseen_frames_are_filled_between_seen_ones_and_never_planted():
    """A person hidden for 12 frames mid-walk (a followed track's junk, unknown to the retarget): the bone poses
    there lie between those of the frames around the gap, the feet never count as planted there, and the floor
    and the seen frames' contact are those of the walk without the gap's frames."""
    xyz, planted = walk(num_frames=90, noise=0.0)
    rig = default_rig()
    gap = slice(40, 52)
    hidden = xyz.copy()
    hidden[gap] = np.nan
    full = retarget(CanonicalPose(xyz, fps=30), rig, load_preset("rigcast"))
    out = retarget(CanonicalPose(hidden, fps=30), rig, load_preset("rigcast"))
    q = out.local_quat_wxyz
    assert np.all(np.isfinite(q)) and np.all(np.isfinite(out.root_translation))
    assert not out.contact[gap].any()
    assert full.contact[gap].any()  # the walk does plant a foot in the gap: the check above can fail
    # Interpolated: each bone turns from its pose at frame 39 to that at 52 through the gap, no farther.
    before, after = quat_wxyz_to_matrix(q[39]), quat_wxyz_to_matrix(q[52])
    span = rotation_angle_deg(np.swapaxes(before, -1, -2) @ after)
    for f in range(40, 52):
        now = quat_wxyz_to_matrix(q[f])
        from_before = rotation_angle_deg(np.swapaxes(before, -1, -2) @ now)
        assert np.all(from_before <= span + 1e-6), f"frame {f} turns past its neighbours"
    # The seen frames' grounding: planted feet stand on the rig's floor, as without the gap.
    markers = rig_markers(rig, load_preset("rigcast").indices(rig))
    soles = [P["left_heel"], P["right_heel"], P["left_toe_end"], P["right_toe_end"]]
    floor = np.nanmin(markers.rest_xyz(rig)[soles, 2])
    lowest = np.nanmin(markers.posed_xyz(fk(rig, out))[:, soles, 2], axis=1)
    np.testing.assert_allclose(lowest[out.contact.any(axis=1)], floor, atol=0.005)


@pytest.mark.parametrize("hide, expected", [
    ((), True),
    (("left_heel",), False),  # a foot is seen whole, or not at all
    (("right_foot_index",), False),
    (("left_hip",), True),  # only the feet count
])
def test_track_feet_seen(hide, expected):
    from rigcast.formats.take import Track
    from rigcast.retarget import track_feet_seen

    conf = np.full((20, 33), 0.9)
    for name in hide:
        conf[:16, BLAZEPOSE_33.index(name)] = 0.2  # seen on 4 of 20 frames: under a quarter
    track = Track(track_id=0, skeleton=BLAZEPOSE_33, frame_index=np.arange(20), xy=np.zeros((20, 33, 2)),
                  xyz=np.zeros((20, 33, 3)), conf=conf, root_xyz=np.zeros((20, 3)))
    assert track_feet_seen(track) is expected
    conf[:15, BLAZEPOSE_33.index(hide[0]) if hide else 0] = 0.9  # on 5 of 20 frames: a quarter, enough
    track = Track(track_id=0, skeleton=BLAZEPOSE_33, frame_index=np.arange(20), xy=np.zeros((20, 33, 2)),
                  xyz=np.zeros((20, 33, 3)), conf=conf, root_xyz=np.zeros((20, 3)))
    assert track_feet_seen(track)


def test_ground_on_source_keeps_the_planted_feet_where_the_source_has_them():
    """A walk 0.25 m above Z = 0 (a person on a step, in a scene whose floor is another's): ``floor`` grounding
    brings the planted feet down to the rig's floor, ``source`` leaves them on the source's, 0.25 m up."""
    xyz, planted = walk(num_frames=90, noise=0.0)
    rig = default_rig()
    markers = rig_markers(rig, load_preset("rigcast").indices(rig))
    soles = [P["left_heel"], P["right_heel"], P["left_toe_end"], P["right_toe_end"]]
    source_floor = np.nanmin(xyz[:, soles, 2], axis=1)[planted.any(axis=1)].mean() + 0.25
    lows = {}
    for ground_on in ("floor", "source"):
        options = RetargetOptions(foot_lock="grounding", contact=ContactOptions(ground_on=ground_on))
        out = retarget(CanonicalPose(xyz + [0.0, 0.0, 0.25], fps=30), rig, load_preset("rigcast"), options=options)
        lowest = np.nanmin(markers.posed_xyz(fk(rig, out))[:, soles, 2], axis=1)
        lows[ground_on] = float(np.median(lowest[out.contact.any(axis=1)]))
    assert abs(lows["floor"] - np.nanmin(markers.rest_xyz(rig)[soles, 2])) < 0.01
    assert abs(lows["source"] - source_floor) < 0.01
    with pytest.raises(RetargetError, match="ground_on"):
        ContactOptions(ground_on="camera")
