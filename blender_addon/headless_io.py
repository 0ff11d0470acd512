"""Blender-side file I/O without the UI: rigs in from .fbx/.blend, animation out to .fbx/.blend/.glb/.gltf.

Used in-process by ``rigcast retarget`` (``rigcast.retarget.cli``) through
Blender as a Python module, and by headless scripts.  Each call starts from
factory settings (or the rig's own .blend), so it assumes it owns the bpy
session: do not call it inside an interactive Blender.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from . import animation, export
from .core_bridge import RigcastError, frames
from .apply import bake_deform_bones, write_through_controls
from .rest_pose import armature_from_rig, object_matrix, read_rig

RIG_SUFFIXES = (".fbx", ".blend")
OUT_SUFFIXES = (".fbx", ".blend", ".glb", ".gltf")


def _export_gltf(arm: bpy.types.Object, out: Path) -> None:
    """The armature (and meshes parented to it) with its action, through Blender's glTF exporter: one binary .glb,
    or .gltf with its buffers beside it.  Sampled at every scene frame, so constraint-driven bones bake in."""
    for obj in bpy.context.view_layer.objects:
        obj.select_set(obj == arm or obj.parent == arm)
    bpy.context.view_layer.objects.active = arm
    result = bpy.ops.export_scene.gltf(filepath=str(out), export_format='GLB' if out.suffix.lower() == ".glb"
                                       else 'GLTF_SEPARATE', use_selection=True, export_animations=True,
                                       export_force_sampling=True, export_frame_range=True)
    if 'FINISHED' not in result:
        raise RigcastError(f"Blender's glTF exporter did not write {out.name} ({result})")


def _pick_armature(name: str | None = None) -> bpy.types.Object:
    """The armature named ``name``, else the one with the most bones in the current file."""
    armatures = [o for o in bpy.data.objects if o.type == 'ARMATURE']
    if name is not None:
        named = [o for o in armatures if o.name == name]
        armatures = named or armatures
    if not armatures:
        raise RigcastError("the rig file holds no armature")
    return max(armatures, key=lambda o: (len(o.data.bones), o.name))


def open_rig(path: str | Path, name: str | None = None) -> bpy.types.Object:
    """Load a rig file into a fresh session (FBX import into an empty scene, or open the .blend); its armature."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RIG_SUFFIXES:
        raise RigcastError(f"rigs load from {', '.join(RIG_SUFFIXES)} files, got {path.name}")
    if not path.is_file():
        raise RigcastError(f"rig not found: {path}")
    if suffix == ".blend":
        bpy.ops.wm.open_mainfile(filepath=str(path))
    else:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        # Blender's own bone axes both ways (export.FBX_OPTIONS writes them), no automatic orientation: the
        # rest pose read here is the one written back.
        result = bpy.ops.import_scene.fbx(filepath=str(path), automatic_bone_orientation=False,
                                          primary_bone_axis='Y', secondary_bone_axis='X')
        if 'FINISHED' not in result:
            raise RigcastError(f"Blender could not import {path.name} ({result})")
    arm = _pick_armature(name)
    if arm.mode != 'OBJECT':
        with bpy.context.temp_override(active_object=arm, object=arm):
            bpy.ops.object.mode_set(mode='OBJECT')
    return arm


def load_rig(path: str | Path):
    """The core Rig of the armature in an .fbx/.blend file (the one with most bones) and its matrix_world (4, 4)."""
    arm = open_rig(path)
    return read_rig(arm), object_matrix(arm)


def load_animation(path: str | Path):
    """An animated armature from an .fbx/.blend file as a retarget source.

    Returns the core Rig (armature space), its Motion sampled at every frame
    of the armature's action as Blender evaluates it (constraints included),
    and the object's matrix_world (4, 4).
    """
    arm = open_rig(path)
    if arm.animation_data is None or arm.animation_data.action is None:
        raise RigcastError(f"{Path(path).name}: armature {arm.name!r} has no animation to retarget")
    scene = bpy.context.scene
    start, end = export.action_frame_range(arm, scene)
    rig = read_rig(arm)
    render = scene.render
    fps = frames.as_fps(render.fps / render.fps_base)
    pose = export.sample_pose(bpy.context, arm, range(start, end + 1))
    return rig, export.motion_from_pose(rig, pose, fps=fps), object_matrix(arm)


def write_animation(out: str | Path, rig, motion, *, rig_path: str | Path | None = None,
                    action_name: str = "rigcast", bake: bool = False) -> Path:
    """Write ``motion`` (a core Motion on ``rig``) to ``out`` (.fbx, .blend, .glb or .gltf).

    With a ``rig_path`` (.fbx/.blend) the animation goes onto that file's
    armature, meshes and all; otherwise onto a new armature built from ``rig``.
    ``bake``: after keying the controls, replace the action by the deform
    bones' evaluated pose (:func:`rigcast_blender.apply.bake_deform_bones`).
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise RigcastError(f"Blender writes {', '.join(OUT_SUFFIXES)} here, got {out.name}")
    if rig_path is not None and Path(rig_path).suffix.lower() in RIG_SUFFIXES:
        arm = open_rig(rig_path, rig.name)
        lacking = sorted(set(rig.bone_names) - {b.name for b in arm.data.bones})
        if lacking:
            raise RigcastError(f"{Path(rig_path).name}: armature {arm.name!r} lacks bones {lacking[:5]}")
    else:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        arm = armature_from_rig(rig, rig.name, bpy.context.scene.collection)
    scene = bpy.context.scene
    if motion.fps is not None:
        scene.render.fps, scene.render.fps_base = frames.blender_fps(motion.fps)
    scene.frame_start, scene.frame_end = 1, max(motion.num_frames, 1)
    if rig_path is not None and Path(rig_path).suffix.lower() in RIG_SUFFIXES:
        write_through_controls(arm, rig, motion, frame_start=1, action_name=action_name)
    else:
        animation.write_bone_motion(arm, rig, motion, frame_start=1, action_name=action_name)
    if bake:
        bake_deform_bones(arm, 1 + np.arange(motion.num_frames), action_name=action_name + "_baked")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".fbx":
        export.export_fbx(bpy.context, arm, out)
    elif suffix in (".glb", ".gltf"):
        _export_gltf(arm, out)
    else:
        bpy.ops.wm.save_as_mainfile(filepath=str(out.resolve()), copy=True)
    return out
