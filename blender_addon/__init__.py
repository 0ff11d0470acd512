"""rigcast for Blender: analyse footage in the background, import Takes, retarget onto any humanoid rig, export.

This module only registers: the classes below, then the properties that point at them.
"""

from __future__ import annotations

import bpy

from . import background, operators, panels, prefs, props

classes = (
    props.RigcastSceneProps,
    props.RigcastJobProps,
    prefs.RigcastPreferences,
    operators.RIGCAST_OT_analyse,
    operators.RIGCAST_OT_cancel,
    operators.RIGCAST_OT_import_take,
    operators.RIGCAST_OT_detect_map,
    operators.RIGCAST_OT_load_map,
    operators.RIGCAST_OT_save_map,
    operators.RIGCAST_OT_apply,
    operators.RIGCAST_OT_export_fbx,
    operators.RIGCAST_OT_export_bvh,
    panels.RIGCAST_PT_analyse,
    panels.RIGCAST_PT_take,
    panels.RIGCAST_PT_retarget,
    panels.RIGCAST_PT_export,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.rigcast = bpy.props.PointerProperty(type=props.RigcastSceneProps)
    bpy.types.WindowManager.rigcast_job = bpy.props.PointerProperty(type=props.RigcastJobProps)


def unregister():
    job = background.current()
    if job is not None:
        job.cancel()
        background.set_current(None)
    if bpy.app.timers.is_registered(operators.tick):
        bpy.app.timers.unregister(operators.tick)
    del bpy.types.WindowManager.rigcast_job
    del bpy.types.Scene.rigcast
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
