"""The one module that reads rest poses (armature -> core ``Rig``) and builds armatures from them.

Legend: B bones.

Rest poses are read once, with ``foreach_get``, into a (B, 4, 4) array of
``bone.matrix_local`` (armature space) and (B,) lengths; core does every
pose computation from those numbers.
"""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from .core_bridge import retarget

ARMATURE_SPACE_NOTE = "rest matrices are bone.matrix_local: armature space, Y from head to tail"


def _bone_names_parents(bones) -> tuple[list[str], list[int]]:
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    parents = [index[b.parent.name] if b.parent is not None else -1 for b in bones]
    return names, parents


def read_rest_matrices(armature_data: bpy.types.Armature) -> tuple[list[str], list[int], np.ndarray, np.ndarray]:
    """Bone names (B,), parent indices (B,) (-1 for roots), ``matrix_local`` (B, 4, 4) and lengths (B,)."""
    bones = armature_data.bones
    count = len(bones)
    flat = np.empty(count * 16, dtype=np.float32)
    bones.foreach_get("matrix_local", flat)
    # foreach_get hands over Blender's float[4][4] memory, which is column-major:
    # each 16-float block is the matrix transposed.
    matrices = flat.reshape(count, 4, 4).transpose(0, 2, 1).astype(np.float64)
    lengths = np.empty(count, dtype=np.float32)
    bones.foreach_get("length", lengths)
    names, parents = _bone_names_parents(bones)
    return names, parents, matrices, lengths.astype(np.float64)


def read_rig(arm_obj: bpy.types.Object) -> "retarget.Rig":
    """The core ``Rig`` of an armature object's rest pose (armature space, the object's own units)."""
    if arm_obj is None or arm_obj.type != 'ARMATURE':
        raise retarget.RetargetError(f"expected an armature object, got {getattr(arm_obj, 'type', None)!r}")
    if len(arm_obj.data.bones) == 0:
        raise retarget.RetargetError(f"armature {arm_obj.name!r} has no bones")
    names, parents, matrices, lengths = read_rest_matrices(arm_obj.data)
    rig = retarget.Rig.from_rest_matrices(arm_obj.name, names, parents, matrices, lengths)
    return rig.with_driven(driven_deform_bones(arm_obj))


DRIVEN_TEST_DEG = 20.0
"""Turn given to every deform bone's own rotation when testing which ones constraints drive."""


def driven_deform_bones(arm_obj: bpy.types.Object) -> list[str]:
    """Deform bones whose evaluated pose ignores their own rotation channels (constraints set it).

    Every deform bone of a constrained armature is turned DRIVEN_TEST_DEG about
    its own X at once and the depsgraph evaluated: a bone whose evaluated
    rotation moved by under a tenth of that copies its pose from elsewhere (a
    Rigify ``DEF-`` bone following its tweak through Copy Transforms).  The
    pose is restored afterwards.  Armatures without constraints skip the test.
    """
    pose_bones = arm_obj.pose.bones
    if not any(c.enabled and c.influence > 0 for pb in pose_bones for c in pb.constraints):
        return []
    deform = [pb for pb in pose_bones if pb.bone.use_deform]
    if not deform:
        return []
    view_layer = bpy.context.view_layer

    def rotations() -> np.ndarray:
        return np.array([np.array(pb.matrix.to_3x3()) for pb in deform])

    saved = [pb.matrix_basis.copy() for pb in deform]
    view_layer.update()
    before = rotations()
    turn = np.radians(DRIVEN_TEST_DEG)
    c, s = np.cos(turn), np.sin(turn)
    for pb in deform:
        basis = np.array(pb.matrix_basis)
        basis[:3, :3] = basis[:3, :3] @ np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
        pb.matrix_basis = Matrix(basis.tolist())
    view_layer.update()
    after = rotations()
    for pb, m in zip(deform, saved):
        pb.matrix_basis = m
    view_layer.update()
    cos = np.clip((np.trace(np.swapaxes(before, 1, 2) @ after, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    moved = np.degrees(np.arccos(cos))
    return [pb.name for pb, d in zip(deform, moved) if d < 0.1 * DRIVEN_TEST_DEG]


def object_matrix(obj: bpy.types.Object) -> np.ndarray:
    """The object's ``matrix_world`` as a (4, 4) float64 array."""
    return np.array(obj.matrix_world, dtype=np.float64)


def armature_from_rig(rig: "retarget.Rig", name: str, collection: bpy.types.Collection,
                      context: bpy.types.Context | None = None) -> bpy.types.Object:
    """A new armature object with ``rig``'s bones (heads, tails, rolls, parents), linked into ``collection``.

    ``collection`` must be in the current view layer: edit bones only exist
    in edit mode, which needs the object active.  On failure nothing is left
    behind; the previously active object stays active.
    """
    context = bpy.context if context is None else context
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    collection.objects.link(obj)
    view_layer = context.view_layer
    previous = view_layer.objects.active
    view_layer.objects.active = obj
    try:
        with context.temp_override(active_object=obj, object=obj, edit_object=None):
            bpy.ops.object.mode_set(mode='EDIT')
            try:
                _add_edit_bones(data, rig)
            finally:
                bpy.ops.object.mode_set(mode='OBJECT')
    except Exception:
        view_layer.objects.active = previous
        bpy.data.batch_remove([obj, data])
        raise
    view_layer.objects.active = previous
    for pb in obj.pose.bones:
        pb.rotation_mode = 'QUATERNION'
    return obj


def _add_edit_bones(data: bpy.types.Armature, rig: "retarget.Rig") -> None:
    roll = rig.roll
    edit_bones = []
    for b, bone_name in enumerate(rig.bone_names):
        eb = data.edit_bones.new(bone_name)
        eb.head = rig.head_xyz[b]
        eb.tail = rig.tail_xyz[b]
        eb.roll = float(roll[b])
        edit_bones.append(eb)
    for b, p in enumerate(rig.parents):
        if p >= 0:
            edit_bones[b].parent = edit_bones[p]
            edit_bones[b].use_connect = False
