"""Real mocap (CMU clips in tests/data; a Mixamo clip with fingers and a MocapBank clip from a registry package:
three BVH naming families) onto every preset rig, pure numpy.

World directions of source and result segments are compared per frame with ``foot_lock="never"``: limbs,
the hip line and the chest line.  The rigs are built by ``test_retarget_rigs``; the generated Rigify rig is
checked in ``test_retarget_rigify``.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rigcast.formats.bvh import BvhClip, read_bvh, write_bvh
from rigcast.retarget import (RetargetOptions, default_rig, detect_bone_map, fk, pose_from_rig, retarget,
                              source_from_rig)
from rigcast.retarget.cli import bvh_source
from retarget_checks import CLIPS as ALL_CLIPS
from retarget_checks import CMU_CLIPS, LIMBS, LINES, angle_deg, canonical_dict, clip_path, direction_errors, summary
from test_retarget_rigs import (metarig_rig, mixamo_rig, odd_rig, rigify_deform_rig, smpl_rig, unreal_mannequin_rig,
                                unreal_rig)

DATA = Path(__file__).resolve().parent / "data"
CLIPS = CMU_CLIPS
BONES_READ = {"mocapbank.bvh": "19/21"}  # MocapBank's skeleton has no toes
RIGS = {"mixamo": mixamo_rig, "metarig": metarig_rig, "rigify_deform": rigify_deform_rig, "unreal": unreal_rig,
        "unreal_mannequin": unreal_mannequin_rig, "smpl": smpl_rig, "odd": odd_rig, "rigcast": default_rig}
"""Every preset of assets/maps on a rig laid out like its family's (rigify_control: test_retarget_rigify's
generated rig); ``rigcast`` is rigcast's own armature (:func:`rigcast.retarget.default_rig`)."""


def retarget_errors(pose, rig) -> dict[str, np.ndarray]:
    bone_map, _ = detect_bone_map(rig)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = retarget(pose, rig, bone_map, options=RetargetOptions(foot_lock="never"))
    result = pose_from_rig(rig, bone_map.indices(rig), fk(rig, motion)).xyz
    return direction_errors(canonical_dict(pose.xyz), canonical_dict(result), LIMBS + LINES)


@pytest.mark.parametrize("rig_name", list(RIGS))
@pytest.mark.parametrize("clip", ALL_CLIPS)
def test_real_mocap_onto_preset_rigs(clip, rig_name):
    pose, text = bvh_source(clip_path(clip))
    assert f"{BONES_READ.get(clip, '21/21')} canonical bones" in text, text
    median, p95, worst = summary(retarget_errors(pose, RIGS[rig_name]()))
    assert median <= 1.0 and p95 <= 3.0, f"{clip} -> {rig_name}: median {median:.2f}, p95 {p95:.2f}, worst {worst}"


def deepmimic_named(clip: BvhClip) -> BvhClip:
    """The clip with joints named for where segments start (DeepMimic: ``left_shoulder`` is the upper arm, no
    clavicle name) and every other joint given a name that says nothing (``j07``)."""
    names = {"Hips": "root", "Spine1": "chest", "Neck1": "neck", "Head": "head"}
    for s, side in (("Left", "left"), ("Right", "right")):
        names.update({f"{s}Arm": f"{side}_shoulder", f"{s}ForeArm": f"{side}_elbow", f"{s}Hand": f"{side}_wrist",
                      f"{s}UpLeg": f"{side}_hip", f"{s}Leg": f"{side}_knee", f"{s}Foot": f"{side}_ankle",
                      f"{s}ToeBase": f"{side}_toe"})
    return replace(clip, joint_names=tuple(names.get(n, f"j{i:02d}") for i, n in enumerate(clip.joint_names)))


def test_a_source_named_for_segments_maps_by_shape(tmp_path):
    path = tmp_path / "deepmimic_named.bvh"
    write_bvh(deepmimic_named(read_bvh(DATA / "cmu_02_01_walk.bvh")), path)
    rig, _ = read_bvh(path).to_rig_motion()
    bone_map, report = detect_bone_map(rig)
    assert bone_map.bones["upper_arm.L"] == "left_shoulder" and bone_map.bones["lower_arm.R"] == "right_elbow"
    assert bone_map.bones["thigh.L"] == "left_hip" and bone_map.bones["shoulder.L"].startswith("j")
    assert any("left_shoulder" in n and "elbow" in n for n in report.notes), str(report)  # says what it guessed
    pose, _ = bvh_source(path)
    median, p95, worst = summary(retarget_errors(pose, mixamo_rig()))
    assert median <= 1.0 and p95 <= 3.0, f"median {median:.2f}, p95 {p95:.2f}, worst {worst}"


@pytest.mark.parametrize("clip", ALL_CLIPS)
def test_bvh_to_rig_to_bvh_round_trip(clip, tmp_path):
    """Source -> Mixamo rig -> BVH file -> back onto the source's own skeleton: every limb, the hip line and the
    chest line within 0.5 degrees on every frame (the maximum, not a percentile)."""
    pose, _ = bvh_source(clip_path(clip))
    rig = mixamo_rig()
    bone_map, _ = detect_bone_map(rig)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = retarget(pose, rig, bone_map, options=RetargetOptions(foot_lock="never"))
        out = tmp_path / "on_mixamo.bvh"
        write_bvh(BvhClip.from_rig_motion(rig, motion), out)
        back_rig, back_motion = read_bvh(out).to_rig_motion()
        middle = source_from_rig(back_rig, back_motion)
        source_rig, _ = read_bvh(clip_path(clip)).to_rig_motion()
        source_map, _ = detect_bone_map(source_rig)
        again = retarget(middle, source_rig, source_map, options=RetargetOptions(foot_lock="never"))
    result = pose_from_rig(source_rig, source_map.indices(source_rig), fk(source_rig, again)).xyz
    errors = direction_errors(canonical_dict(pose.xyz), canonical_dict(result), LIMBS + LINES)
    worst = {k: round(float(e.max()), 3) for k, e in errors.items()}
    print(clip, "round trip, worst per segment over all frames:", worst)
    assert max(worst.values()) <= 0.5, worst


LEGS = [(f"{s}_{a}", f"{s}_{b}") for s in ("left", "right")
        for a, b in (("hip", "knee"), ("knee", "ankle"), ("ankle", "toe"), ("toe", "toe_end"))]


def slide_cm(pose, result: np.ndarray, contact: np.ndarray, scale: float, leg_length: float) -> float:
    """Worst slide (cm) of a planted ankle against the source's own foot motion: the result's ankle moved from
    mid-contact minus where the source's pelvis -> ankle offset (scaled, on the result's pelvis) moved it.

    Contacts where the source's own ankle travels more than ContactOptions.auto_max_drift (a dancer's glide, not a
    planted foot; ``auto`` leaves those alone and says so) are not counted, nor frames where the result's leg is
    stretched to 99 % of ``leg_length`` (thigh + shin): no leg pose reaches farther."""
    from rigcast.retarget import ContactOptions, contact_spans
    from rigcast.retarget.canonical import P

    worst = 0.0
    for i, side in enumerate(("left", "right")):
        ankle = P[f"{side}_ankle"]
        for a, b in contact_spans(contact[:, i]):
            own = scale * pose.xyz[a:b, ankle]
            if np.linalg.norm(own - np.median(own, axis=0), axis=1).max() > ContactOptions().auto_max_drift:
                continue
            expected = result[a:b, P["pelvis"]] + scale * (pose.xyz[a:b, ankle] - pose.xyz[a:b, P["pelvis"]])
            moved = result[a:b, ankle] - expected
            slide = np.linalg.norm(moved - moved[(b - a) // 2], axis=1)
            reach = np.linalg.norm(result[a:b, ankle] - result[a:b, P[f"{side}_hip"]], axis=1)
            slide = slide[reach < 0.99 * leg_length]
            worst = max(worst, 100 * float(slide.max(initial=0.0)))
    return worst


@pytest.mark.parametrize("rig_name", ["unreal", "smpl"])
@pytest.mark.parametrize("clip", CLIPS)
def test_foot_lock_only_fixes_sliding_on_clean_mocap(clip, rig_name):
    """Clean mocap onto a rig of other proportions: ``auto`` changes the legs by <= 1 deg median and <= 5 deg p95
    against ``never``, and holds planted feet to the source's own foot motion (heel roll, toe pivot) within 1 cm."""
    pose, _ = bvh_source(DATA / clip)
    rig = RIGS[rig_name]()
    bone_map, _ = detect_bone_map(rig)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mode in ("never", "auto"):
            motion, report = retarget(pose, rig, bone_map, options=RetargetOptions(foot_lock=mode), return_report=True)
            out[mode] = (motion, pose_from_rig(rig, bone_map.indices(rig), fk(rig, motion)).xyz)
    never, auto = canonical_dict(out["never"][1]), canonical_dict(out["auto"][1])
    median, p95, worst = summary(direction_errors(never, auto, LEGS))
    assert median <= 1.0 and p95 <= 5.0, f"{clip} -> {rig_name}: legs changed median {median:.2f}, p95 {p95:.2f}"
    contact = out["auto"][0].contact
    assert contact.any(axis=0).all()  # both feet plant somewhere
    idx = bone_map.indices(rig)
    leg = min(rig.length[idx[f"thigh.{s}"]] + rig.length[idx[f"shin.{s}"]] for s in "LR")
    assert slide_cm(pose, out["auto"][1], contact, report.scale, leg) < 1.0
    assert slide_cm(pose, out["never"][1], contact, report.scale, leg) > 1.0  # there was sliding to fix


def scrambled(rig, seed: int = 11):
    """``rig`` with every bone rolled at random about its own axis: same rest geometry, other joint frames."""
    from rigcast.retarget import Rig

    roll = np.random.default_rng(seed).uniform(-np.pi, np.pi, rig.num_bones)
    return Rig.from_heads_tails(rig.name + "_scrambled", rig.bone_names, rig.parents, rig.head_xyz, rig.tail_xyz,
                                roll)


@pytest.mark.parametrize("clip", ALL_CLIPS)
def test_joint_frames_carry_twist_and_scrambled_frames_change_nothing(clip):
    """A clip onto its own skeleton with scrambled bone rolls: every limb bone turns as the source's did, twist
    included (a straight limb's roll), read from the source's own joint frames.  Before they were read, the upper
    arms and forearms were 29-30 deg off (p95) and the thighs 4.

    (The torso is fitted to lines between points instead, checked by the tests above: in CMU's skeletons extra
    joints, LHipJoint, LowerBack + Spine, Neck + Neck1, move those lines on their own.)"""
    from rigcast.retarget.rotations import rotation_angle_deg

    source_rig, source_motion = read_bvh(clip_path(clip)).to_rig_motion()
    pose = source_from_rig(source_rig, source_motion)
    target = scrambled(source_rig)
    bone_map, _ = detect_bone_map(target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = retarget(pose, target, bone_map, options=RetargetOptions(foot_lock="never"))
    want, got = fk(source_rig, source_motion), fk(target, motion)
    errors = {}
    for name, b in bone_map.indices(target).items():
        if not name.startswith(("upper_arm", "lower_arm", "hand", "thigh", "shin", "foot")):
            continue
        change_src = want[:, b, :3, :3] @ source_rig.rest_matrix[b, :3, :3].T
        change_tgt = got[:, b, :3, :3] @ target.rest_matrix[b, :3, :3].T
        errors[name] = float(np.percentile(rotation_angle_deg(np.swapaxes(change_src, 1, 2) @ change_tgt), 95))
    assert max(errors.values()) < 1.0, {k: round(v, 2) for k, v in errors.items() if v >= 1.0}


@pytest.mark.parametrize("build, kind", [
    (lambda: read_bvh(DATA / "cmu_02_01_walk.bvh").to_rig(), "T-pose"),
    (lambda: read_bvh(DATA / "cmu_131_03_hop.bvh").to_rig(), "arms down"),
    (metarig_rig, "A-pose"),
    (mixamo_rig, "T-pose"),
])
def test_rest_poses_are_recognised(build, kind):
    from rigcast.retarget.canonical import rest_pose_kind, rig_markers

    rig = build()
    assert rest_pose_kind(rig_markers(rig, detect_bone_map(rig)[0].indices(rig)).rest_xyz(rig))[0] == kind


@pytest.mark.parametrize("build", [lambda: read_bvh(DATA / "cmu_131_03_hop.bvh").to_rig(), metarig_rig, odd_rig])
def test_a_tpose_rest_is_built_from_any_rest(build):
    """Arms-down, A-pose and bent-elbow rests posed into a T-pose: limbs on the body axes, lengths kept, the torso
    where it was."""
    from rigcast.retarget.canonical import P, body_axes, rest_pose_kind, rig_markers
    from rigcast.retarget.rest import rig_with_rest, tpose_matrices

    rig = build()
    indices = detect_bone_map(rig)[0].indices(rig)
    own = rig_markers(rig, indices).rest_xyz(rig)
    tposed = rig_with_rest(rig, tpose_matrices(rig, indices))
    pts = rig_markers(tposed, indices).rest_xyz(tposed)
    kind, angle = rest_pose_kind(pts)
    assert kind == "T-pose" and abs(angle) < 0.5, (kind, angle)
    lateral, up, _ = body_axes(own)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for a, b, want in (("shoulder", "elbow", sign * lateral), ("elbow", "wrist", sign * lateral),
                           ("hip", "knee", -up), ("knee", "ankle", -up)):
            d = pts[P[f"{side}_{b}"]] - pts[P[f"{side}_{a}"]]
            assert angle_deg(d, want) < 0.1, (side, a, b, angle_deg(d, want))
    np.testing.assert_allclose(tposed.length, rig.length, atol=1e-9)
    for point in ("pelvis", "chest", "neck", "head", "left_shoulder", "right_hip"):
        np.testing.assert_allclose(pts[P[point]], own[P[point]], atol=1e-9)


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("rest", ["tpose", "12"])
def test_motion_solved_on_another_rest_is_keyed_on_the_rigs_own(clip, rest):
    """A motion on a re-rested copy of a rig, turned back into the rig's own pose-bone values, poses the armature
    the same (heads and bone axes within 1e-6)."""
    from rigcast.retarget.rest import motion_onto_rig, rest_matrices, rig_with_rest

    rig, motion = read_bvh(DATA / clip).to_rig_motion()
    indices = detect_bone_map(rig)[0].indices(rig)
    rested = rig_with_rest(rig, rest_matrices(rig, indices, rest, motion))
    on_rested = motion_onto_rig(rig, motion, rested)  # the same pose, measured from the other rest
    np.testing.assert_allclose(fk(rested, on_rested), fk(rig, motion), atol=1e-6)
    back = motion_onto_rig(rested, on_rested, rig)
    np.testing.assert_allclose(fk(rig, back), fk(rig, motion), atol=1e-6)
    if rest == "12":  # frame 12 is the rested rig's rest: every bone's basis is the identity there
        np.testing.assert_allclose(np.abs(on_rested.local_quat_wxyz[12, :, 0]), 1.0, atol=1e-6)


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("rest", ["tpose", "0", "12", "80"])
def test_source_and_target_rests_chosen_alike_keep_every_twist(clip, rest):
    """The clip onto its own skeleton with scrambled rolls, both sides measured from the same chosen rest (a
    T-pose built from the arms-down hop's rest, or frame 12): every limb bone turns as the source's did, twist
    included.  The chosen rest is what each side's zero means, so only rests chosen alike agree.

    Feet are checked on rests where they stand flat (a T-pose, the hop's frames): a foot's twist reference, the
    heel, is synthesised under the ankle at rest, and on a walk frame whose foot points down (12, 80) it lies
    nearly along the foot, so part of the foot's roll is lost (9-12 deg p95 measured)."""
    from rigcast.retarget import Motion, world_to_local_rotations
    from rigcast.retarget.cli import rested_rig
    from rigcast.retarget.rest import motion_onto_rig
    from rigcast.retarget.rotations import matrix_to_quat_wxyz, rotation_angle_deg

    source_rig, source_motion = read_bvh(DATA / clip).to_rig_motion()
    source_map, _ = detect_bone_map(source_rig)
    source_rest, text = rested_rig(source_rig, source_map.indices(source_rig), rest, source_motion, "--source-rest")
    assert ("T-pose" if rest == "tpose" else f"frame {rest}") in text.split(";")[1], text
    pose = source_from_rig(source_rig, source_motion, source_map, rest_rig=source_rest)
    target = scrambled(source_rig)
    bone_map, _ = detect_bone_map(target)
    # The target's own animation: every bone turned as the source's since rest (on its own scrambled axes).
    change = fk(source_rig, source_motion)[..., :3, :3] @ np.swapaxes(source_rig.rest_matrix[:, :3, :3], 1, 2)
    root = source_motion.root_bone
    local = world_to_local_rotations(target, change @ target.rest_matrix[:, :3, :3])
    target_motion = Motion(matrix_to_quat_wxyz(local, orthonormal=True),
                           source_motion.root_translation @ source_rig.rest_matrix[root, :3, :3].T
                           @ target.rest_matrix[root, :3, :3], root_bone=root)
    target_rest, _ = rested_rig(target, bone_map.indices(target), rest, target_motion, "--target-rest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = motion_onto_rig(target_rest, retarget(pose, target_rest, bone_map,
                                                       options=RetargetOptions(foot_lock="never")), target)
    got = fk(target, motion)
    want = fk(source_rig, source_motion)
    errors = {}
    for name, b in bone_map.indices(target).items():
        flat = rest == "tpose" or "hop" in clip
        if name.startswith(("upper_arm", "lower_arm", "hand", "thigh", "shin") + (("foot",) if flat else ())):
            change_src = want[:, b, :3, :3] @ source_rig.rest_matrix[b, :3, :3].T
            change_tgt = got[:, b, :3, :3] @ target.rest_matrix[b, :3, :3].T
            errors[name] = float(np.percentile(rotation_angle_deg(np.swapaxes(change_src, 1, 2) @ change_tgt), 95))
    assert max(errors.values()) < 1.0, {k: round(v, 2) for k, v in errors.items() if v >= 1.0}


def test_rest_options_are_checked():
    from rigcast.errors import InputError
    from rigcast.retarget.rest import parse_rest, rest_matrices

    assert [parse_rest(v) for v in (None, "zero", "T-pose", "tpose", "7")] == ["zero", "zero", "tpose", "tpose", 7]
    rig, motion = read_bvh(DATA / "cmu_131_03_hop.bvh").to_rig_motion()
    indices = detect_bone_map(rig)[0].indices(rig)
    assert rest_matrices(rig, indices, "zero", motion) is None
    for bad, needs in (("apose", "zero, tpose or a frame"), ("9999", "frame must be in 0..")):
        with pytest.raises(InputError, match=needs):
            rest_matrices(rig, indices, bad, motion)
    with pytest.raises(InputError, match="no animation"):
        rest_matrices(rig, indices, "3", None, "--target-rest")
