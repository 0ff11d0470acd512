"""``rigcast retarget`` with Blender files: real mocap out to glTF (read back by Blender's importer), and an
animated FBX as the source."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from required import require

bpy = require("bpy")

from rigcast.retarget import RetargetOptions, default_rig, detect_bone_map, fk, retarget  # noqa: E402
from rigcast.retarget.cli import bvh_source, main  # noqa: E402

CLIP = Path(__file__).resolve().parent / "data" / "cmu_02_01_walk.bvh"


@pytest.mark.parametrize("suffix", [".glb", ".gltf"])
def test_real_mocap_to_gltf_reads_back_as_the_same_motion(tmp_path, suffix):
    out = tmp_path / f"walk{suffix}"
    assert main([str(CLIP), "-o", str(out), "--foot-lock", "never"]) == 0 and out.is_file()
    pose, _ = bvh_source(CLIP)
    rig = default_rig()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        motion = retarget(pose, rig, detect_bone_map(rig)[0], options=RetargetOptions(foot_lock="never"))
    want = fk(rig, motion)[:, :, :3, 3]  # bone heads, armature space (= world: the armature sits at the origin)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 60  # the importer turns glTF seconds into frames at the scene's rate
    assert 'FINISHED' in bpy.ops.import_scene.gltf(filepath=str(out))
    arm = next(o for o in bpy.data.objects if o.type == 'ARMATURE')
    assert set(rig.bone_names) <= {b.name for b in arm.data.bones}
    for t in (0, 40, 90, motion.num_frames - 1):
        bpy.context.scene.frame_set(t + 1)  # the clip starts at scene frame 1
        world = np.array(arm.matrix_world)
        got = np.array([world[:3, :3] @ np.array(arm.pose.bones[n].head) + world[:3, 3] for n in rig.bone_names])
        np.testing.assert_allclose(got, want[t], atol=1e-3)


def test_an_animated_fbx_is_a_source_like_its_bvh(tmp_path, capsys):
    """The CMU walk written to FBX through Blender, then retargeted from the FBX: the same motion as from the BVH."""
    from rigcast.formats.bvh import read_bvh
    from rigcast.retarget.cli import load_source
    from rigcast_blender.headless_io import write_animation
    from retarget_checks import LIMBS, LINES, canonical_dict, direction_errors, summary

    rig, motion = read_bvh(CLIP).to_rig_motion(name="walk")
    fbx = write_animation(tmp_path / "walk.fbx", rig, motion)
    from_fbx, text = load_source(fbx)
    from_bvh, _ = load_source(CLIP)
    assert text.startswith("FBX walk.fbx") and "21/21" in text, text
    assert from_fbx.num_frames == from_bvh.num_frames
    median, p95, worst = summary(direction_errors(canonical_dict(from_bvh.xyz), canonical_dict(from_fbx.xyz),
                                                  LIMBS + LINES))
    assert p95 < 0.5, f"median {median:.3f}, p95 {p95:.3f}, worst {worst}"
    np.testing.assert_allclose(from_fbx.xyz[:, 0], from_bvh.xyz[:, 0], atol=0.01)  # same place, metres
    out = tmp_path / "out.bvh"
    assert main([str(fbx), "-o", str(out), "--foot-lock", "never"]) == 0 and out.is_file()
