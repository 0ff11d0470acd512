"""The one module that creates actions and fcurves; every Blender-version shim for animation lives here.

Legend: T frames, B bones, V vertices.

Fcurves are written the way io_scene_fbx writes them: one interleaved float32
buffer of (frame, value) pairs per curve, ``keyframe_points.add(T)``,
``foreach_set("co", ...)`` and ``foreach_set("interpolation", ...)``, then one
``update()`` per curve.  Never ``keyframe_insert`` (one RNA call, undo push
and curve re-sort per key).

Actions are slotted in Blender 4.4+ (``Action.fcurves`` is gone in 5.0):
a slot for the animated ID, and a channelbag for that slot holding the curves,
reached through ``bpy_extras.anim_utils``.  Blender 4.2-4.3 have
``action.fcurves`` directly.
"""

from __future__ import annotations

import bpy
import numpy as np

from .core_bridge import rotations

try:  # Blender 4.4+: slotted actions
    from bpy_extras.anim_utils import action_ensure_channelbag_for_slot
except ImportError:  # Blender 4.2-4.3
    action_ensure_channelbag_for_slot = None

SLOTTED_ACTIONS = action_ensure_channelbag_for_slot is not None and "slots" in bpy.types.Action.bl_rna.properties

_INTERPOLATION = {name: item.value for name, item in
                  bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items.items()}


class ActionWriter:
    """A new action assigned to ``id_data`` (an object, a shape-key block ...), and a way to add curves to it."""

    def __init__(self, id_data: bpy.types.ID, action_name: str):
        self.id_data = id_data
        self.action = bpy.data.actions.new(action_name)
        anim = id_data.animation_data or id_data.animation_data_create()
        if SLOTTED_ACTIONS:
            slot = self.action.slots.new(id_data.id_type, id_data.name)
            anim.action = self.action
            anim.action_slot = slot
            self._curves = action_ensure_channelbag_for_slot(self.action, slot).fcurves
        else:
            anim.action = self.action
            self._curves = self.action.fcurves

    def new_fcurve(self, data_path: str, index: int, group: str) -> bpy.types.FCurve:
        if SLOTTED_ACTIONS:
            return self._curves.new(data_path, index=index, group_name=group)
        return self._curves.new(data_path, index=index, action_group=group)

    def write(self, data_path: str, frames: np.ndarray, values: np.ndarray, group: str = "",
              interpolation: str = 'LINEAR') -> list[bpy.types.FCurve]:
        """One fcurve per column of ``values`` (T, C) at ``frames`` (T,), array indices 0..C-1."""
        frames = np.asarray(frames, dtype=np.float32)
        values = np.asarray(values, dtype=np.float32).reshape(len(frames), -1)
        count = len(frames)
        co = np.empty(2 * count, dtype=np.float32)
        co[0::2] = frames
        # uint8 is the enum's raw C type: foreach_set copies it straight (int8/int32 go item by item, 12x slower).
        ipo = np.full(count, _INTERPOLATION[interpolation], dtype=np.uint8)
        curves = []
        for index in range(values.shape[1]):
            fcurve = self.new_fcurve(data_path, index, group)
            co[1::2] = values[:, index]
            points = fcurve.keyframe_points
            points.add(count)
            points.foreach_set("co", co)
            points.foreach_set("interpolation", ipo)
            fcurve.update()
            curves.append(fcurve)
        return curves


def fcurves_of(action: bpy.types.Action, id_data: bpy.types.ID | None = None):
    """The fcurves ``action`` holds for ``id_data`` (its assigned slot), or its first slot's; [] when none."""
    if not SLOTTED_ACTIONS:
        return action.fcurves
    slot = None
    if id_data is not None and id_data.animation_data is not None and id_data.animation_data.action == action:
        slot = id_data.animation_data.action_slot
    slot = slot or (action.slots[0] if len(action.slots) else None)
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    bag = action_get_channelbag_for_slot(action, slot)
    return bag.fcurves if bag is not None else []


def scene_frames(num_frames: int, frame_start: float, frames: np.ndarray | None = None) -> np.ndarray:
    """Scene frames (T,): ``frames`` when given, else ``frame_start + 0..T-1``."""
    if frames is None:
        return frame_start + np.arange(num_frames, dtype=np.float64)
    frames = np.asarray(frames, dtype=np.float64)
    if frames.shape != (num_frames,):
        raise ValueError(f"frames must be (T,) with T={num_frames}, got {frames.shape}")
    return frames


def write_bone_motion(arm_obj: bpy.types.Object, rig, motion, frame_start: float = 1, action_name: str = "rigcast",
                      frames: np.ndarray | None = None,
                      constants: dict[str, float] | None = None) -> bpy.types.Action:
    """A new action on ``arm_obj`` playing ``motion`` (a core ``Motion`` on ``rig``).

    Pose bones get ``rotation_quaternion`` (w, x, y, z) curves and the root
    bone ``location`` curves, keyed at ``frames`` (T,) or ``frame_start +
    0..T-1``.  Bones at rest in every frame (unmapped) get no curves; their
    pose is reset to rest so they keep it.  ``constants``: data paths (custom
    properties such as a rig's IK/FK switch) held at a value for the clip,
    keyed at its first and last frame.
    """
    motion.check(rig)
    frames = scene_frames(motion.num_frames, frame_start, frames)
    quat = rotations.continuous_quat(motion.local_quat_wxyz)
    still = np.all(np.abs(quat - [1.0, 0.0, 0.0, 0.0]) < 1e-7, axis=(0, 2))
    still[motion.root_bone] = False
    pose_bones = arm_obj.pose.bones
    missing = [n for n in rig.bone_names if pose_bones.get(n) is None]
    if missing:
        raise KeyError(f"armature {arm_obj.name!r} has no pose bones {missing[:5]}")
    writer = ActionWriter(arm_obj, action_name)
    for b, name in enumerate(rig.bone_names):
        pb = pose_bones[name]
        pb.rotation_mode = 'QUATERNION'
        pb.location = (0.0, 0.0, 0.0)
        pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
        pb.scale = (1.0, 1.0, 1.0)
        if still[b]:
            continue
        path = f'pose.bones["{bpy.utils.escape_identifier(name)}"]'
        writer.write(f"{path}.rotation_quaternion", frames, quat[:, b], group=name)
        if b == motion.root_bone:
            writer.write(f"{path}.location", frames, motion.root_translation, group=name)
    ends = frames[[0, -1]]
    for data_path, value in (constants or {}).items():
        writer.write(data_path, ends, np.full(2, value), interpolation='CONSTANT')
    return writer.action


def decompose(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Location (T, 3), quaternion w-first (T, 4, sign-continuous) and scale (T, 3) of (T, 4, 4) matrices (no shear)."""
    m = np.asarray(matrices, dtype=np.float64)
    location = m[:, :3, 3]
    scale = np.linalg.norm(m[:, :3, :3], axis=1)
    rot = m[:, :3, :3] / scale[:, None, :]
    negative = np.linalg.det(rot) < 0
    scale[negative, 0] *= -1.0
    rot[negative, :, 0] *= -1.0
    quat = rotations.matrix_to_quat_wxyz(rot)  # numpy, vectorised (re-orthonormalised where it must be)
    return location, rotations.continuous_quat(quat), scale


def write_object_transforms(obj: bpy.types.Object, frames: np.ndarray, matrices: np.ndarray,
                            action_name: str | None = None) -> bpy.types.Action:
    """A new action on ``obj`` (an empty, a camera ...) keying its ``matrix_basis`` (T, 4, 4) at ``frames`` (T,).

    Writes location, rotation_quaternion and scale curves; the object is set to quaternion rotation.
    """
    frames = np.asarray(frames, dtype=np.float64)
    location, quat, scale = decompose(matrices)
    obj.rotation_mode = 'QUATERNION'
    writer = ActionWriter(obj, action_name or obj.name)
    writer.write("location", frames, location, group="Object Transforms")
    writer.write("rotation_quaternion", frames, quat, group="Object Transforms")
    writer.write("scale", frames, scale, group="Object Transforms")
    return writer.action


def write_shape_key_weights(mesh_obj: bpy.types.Object, frames: np.ndarray, key_xyz: np.ndarray, weights: np.ndarray,
                            action_name: str | None = None) -> bpy.types.Action:
    """Animate a mesh as a linear model: K shape keys with vertex positions ``key_xyz`` (K, V, 3) (object space,
    relative to the basis), their values keyed to ``weights`` (T, K) at ``frames`` (T,), linear in between.

    The dense face meshes of face models (3DDFA_V2's BFM, 38365 vertices) are the mean plus a basis times K = 50
    coefficients per frame: K keys and K curves of T keys, where :func:`write_shape_key_frames` would hold a full
    copy of the mesh per frame.  Values may lie in [-1, 1] (the sliders are opened to that range).
    """
    frames = np.asarray(frames, dtype=np.float64)
    keys = np.asarray(key_xyz, dtype=np.float32)
    weights = np.asarray(weights, dtype=np.float64)
    mesh = mesh_obj.data
    if keys.ndim != 3 or keys.shape[1:] != (len(mesh.vertices), 3):
        raise ValueError(f"key_xyz must be (K, V, 3) with V={len(mesh.vertices)}, got {keys.shape}")
    if weights.shape != (len(frames), len(keys)):
        raise ValueError(f"weights must be (T, K) = ({len(frames)}, {len(keys)}), got {weights.shape}")
    if mesh.shape_keys is None:
        mesh_obj.shape_key_add(name="Basis", from_mix=False)
    names = []
    for k in range(len(keys)):
        block = mesh_obj.shape_key_add(name=f"coefficient {k:02d}", from_mix=False)
        block.points.foreach_set("co", keys[k].ravel())
        block.slider_min, block.slider_max = -1.0, 1.0
        names.append(block.name)
    key = mesh.shape_keys
    key.use_relative = True
    writer = ActionWriter(key, action_name or f"{mesh_obj.name} coefficients")
    for k, name in enumerate(names):
        writer.write(f'key_blocks["{bpy.utils.escape_identifier(name)}"].value', frames, weights[:, k:k + 1],
                     group="Coefficients")
    return writer.action


def write_shape_key_frames(mesh_obj: bpy.types.Object, frames: np.ndarray, vertex_xyz: np.ndarray,
                           action_name: str | None = None) -> bpy.types.Action:
    """Animate a mesh through per-frame vertex positions (T, V, 3) (object space) at ``frames`` (T,).

    One shape key per frame, its ``value`` keyed 1 on its frame and 0 on the
    neighbouring frames, linear in between.  Why this and not a frame-change
    handler reading a cached array: the animation is ordinary Blender data,
    so it is saved in the .blend, renders on a farm without the add-on,
    exports to FBX as blend shapes, scrubs backwards, and sub-frames (motion
    blur) get the linear blend of the two neighbouring frames for free.  Its
    cost is memory (T x V x 12 bytes: 56 MB for 10,000 frames of a 468-vertex
    face) and T small curves.  Gaps between tracked frames interpolate
    linearly; before the first and after the last, the nearest frame holds.
    """
    frames = np.asarray(frames, dtype=np.float64)
    xyz = np.asarray(vertex_xyz, dtype=np.float32)
    mesh = mesh_obj.data
    if xyz.shape != (len(frames), len(mesh.vertices), 3):
        raise ValueError(f"vertex_xyz must be (T, V, 3) with T={len(frames)}, V={len(mesh.vertices)}, got {xyz.shape}")
    if mesh.shape_keys is None:
        mesh_obj.shape_key_add(name="Basis", from_mix=False)
    names = []
    for t, frame in enumerate(frames):
        block = mesh_obj.shape_key_add(name=f"frame {int(round(frame)):06d}", from_mix=False)
        block.points.foreach_set("co", xyz[t].ravel())
        names.append(block.name)
    key = mesh.shape_keys
    key.use_relative = True
    writer = ActionWriter(key, action_name or f"{mesh_obj.name} frames")
    for t, name in enumerate(names):
        lo, hi = max(t - 1, 0), min(t + 1, len(frames) - 1)
        keys = [(frames[i], 1.0 if i == t else 0.0) for i in range(lo, hi + 1)]
        writer.write(f'key_blocks["{bpy.utils.escape_identifier(name)}"].value', np.array([k[0] for k in keys]),
                     np.array([k[1] for k in keys])[:, None], group="Frames")
    return writer.action
