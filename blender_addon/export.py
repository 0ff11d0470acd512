"""Export an animated armature with Blender's own exporters (FBX, BVH), selecting only that armature."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from .core_bridge import RigcastError, bvh, frames as frames_module, retarget
from .rest_pose import read_rig

# FBX settings for game engines and Mixamo-style pipelines:
# * -Z forward, Y up is what Unity, Unreal and Mixamo read (Blender's own FBX
#   defaults), and FBX_SCALE_ALL bakes Blender's metres into the file's units,
#   so the rig comes in at 1.0 scale instead of 0.01 / 100.
# * Primary Y / secondary X bone axes are Blender's bone axes: joints are
#   written as they are, so a re-import gives back the same pose-bone matrices.
# * No leaf bones (Unreal and Unity would show them as extra joints), only the
#   armature, only its active action, baked on every frame with no
#   simplification so nothing is lost.
FBX_OPTIONS = dict(
    use_selection=True,
    object_types={'ARMATURE'},
    apply_unit_scale=True,
    apply_scale_options='FBX_SCALE_ALL',
    axis_forward='-Z',
    axis_up='Y',
    primary_bone_axis='Y',
    secondary_bone_axis='X',
    add_leaf_bones=False,
    use_armature_deform_only=False,
    armature_nodetype='NULL',
    bake_anim=True,
    bake_anim_use_all_bones=True,
    bake_anim_use_nla_strips=False,
    bake_anim_use_all_actions=False,
    bake_anim_force_startend_keying=True,
    bake_anim_step=1.0,
    bake_anim_simplify_factor=0.0,
)


def blend_path(value: str | Path, what: str) -> Path:
    """A user path with Blender's ``//`` (next to the .blend) resolved; an error if that cannot be done."""
    value = str(value)
    if not value:
        raise RigcastError(f"no path given for {what}")
    if value.startswith("//") and not bpy.data.filepath:
        raise RigcastError(f"{what} {value!r} is relative to the .blend file: save it first, or give a full path")
    return Path(bpy.path.abspath(value))


def _check(arm_obj, path: str | Path, suffix: str) -> Path:
    if arm_obj is None or arm_obj.type != 'ARMATURE':
        raise RigcastError("choose an armature to export")
    path = blend_path(path, f"the {suffix} file")
    if path.suffix.lower() != suffix:
        path = path.with_suffix(suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _only(context, arm_obj):
    """A context in which ``arm_obj`` is the active, selected and only selected object."""
    return context.temp_override(active_object=arm_obj, object=arm_obj, selected_objects=[arm_obj],
                                 selected_editable_objects=[arm_obj])


def action_frame_range(arm_obj, scene) -> tuple[int, int]:
    """Integer frame range of the armature's action, or the scene's."""
    anim = arm_obj.animation_data
    if anim is not None and anim.action is not None:
        start, end = anim.action.frame_range
        return int(round(start)), int(round(end))
    return scene.frame_start, scene.frame_end


def export_fbx(context, arm_obj, path: str | Path) -> Path:
    """Write the armature and its action to an FBX file; returns the path written."""
    path = _check(arm_obj, path, ".fbx")
    if arm_obj.mode != 'OBJECT':
        raise RigcastError(f"{arm_obj.name!r} is in {arm_obj.mode.lower()} mode; switch to object mode to export")
    with _only(context, arm_obj):
        result = bpy.ops.export_scene.fbx(filepath=str(path), **FBX_OPTIONS)
    if 'FINISHED' not in result:
        raise RigcastError(f"the FBX exporter did not finish ({result})")
    return path


def export_bvh(context, arm_obj, path: str | Path, frame_range: tuple[int, int] | None = None,
               rotate_mode: str = 'NATIVE') -> Path:
    """Write the armature's animation to a BVH file with Blender's exporter; returns the path written."""
    path = _check(arm_obj, path, ".bvh")
    start, end = frame_range or action_frame_range(arm_obj, context.scene)
    with _only(context, arm_obj):
        result = bpy.ops.export_anim.bvh(filepath=str(path), frame_start=start, frame_end=end,
                                         rotate_mode=rotate_mode, global_scale=1.0)
    if 'FINISHED' not in result:
        raise RigcastError(f"the BVH exporter did not finish ({result})")
    return path


def sample_pose(context, arm_obj, frames) -> np.ndarray:
    """Armature-space pose matrices (T, B, 4, 4) (``pose_bone.matrix``) at scene ``frames``, bones in
    ``arm_obj.data.bones`` order."""
    scene = context.scene
    pose_bones = arm_obj.pose.bones
    count = len(pose_bones)
    order = [pose_bones.find(b.name) for b in arm_obj.data.bones]
    out = np.empty((len(frames), count, 4, 4))
    buf = np.empty(count * 16, dtype=np.float32)
    current = scene.frame_current
    try:
        for i, frame in enumerate(frames):
            scene.frame_set(int(frame))
            pose_bones.foreach_get("matrix", buf)
            out[i] = buf.reshape(count, 4, 4).transpose(0, 2, 1)[order]  # column-major blocks, see rest_pose
    finally:
        scene.frame_set(current)
    return out


def motion_from_pose(rig, pose: np.ndarray, fps=None):
    """A core Motion on ``rig`` from sampled armature-space pose matrices (T, B, 4, 4) (core's inverse FK)."""
    return retarget.motion_from_pose(rig, pose, fps=fps)


def export_bvh_rigcast(context, arm_obj, path: str | Path, frame_range: tuple[int, int] | None = None,
                       rotation_order: str = "ZXY") -> Path:
    """Write the armature's animation with rigcast's BVH writer (Y-up, centimetres, the usual BVH form)."""
    path = _check(arm_obj, path, ".bvh")
    start, end = frame_range or action_frame_range(arm_obj, context.scene)
    frames = np.arange(start, end + 1)
    rig = read_rig(arm_obj)
    render = context.scene.render
    fps = frames_module.as_fps(render.fps / render.fps_base)
    motion = motion_from_pose(rig, sample_pose(context, arm_obj, frames), fps=fps)
    clip = bvh.BvhClip.from_rig_motion(rig, motion, frame_time=render.fps_base / render.fps,
                                       rotation_order=rotation_order)
    bvh.write_bvh(clip, path)
    return path
