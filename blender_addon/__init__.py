"""rigcast for Blender: analyse footage in the background, import Takes, retarget onto any humanoid rig, export.

This module only registers: the classes below, then the properties that point at them.  The modules holding
them are imported by ``register`` (or on first use of ``classes``), not when the package is: the headless
renderer (``rigcast_blender.render``) imports this package but registers nothing, and the operators' imports
(the exporters, SciPy, the model store) cost it 0.1-0.4 s of start-up.
"""

from __future__ import annotations

from functools import cache

import bpy


@cache
def _classes() -> tuple:
    from . import operators, panels, prefs, props

    return (
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


def __getattr__(name: str):
    if name == "classes":  # PEP 562: ``rigcast_blender.classes``, built on first use
        return _classes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def register():
    from . import props

    for cls in _classes():
        bpy.utils.register_class(cls)
    bpy.types.Scene.rigcast = bpy.props.PointerProperty(type=props.RigcastSceneProps)
    bpy.types.WindowManager.rigcast_job = bpy.props.PointerProperty(type=props.RigcastJobProps)


def unregister():
    from . import background, operators

    job = background.current()
    if job is not None:
        job.cancel()
        background.set_current(None)
    if bpy.app.timers.is_registered(operators.tick):
        bpy.app.timers.unregister(operators.tick)
    del bpy.types.WindowManager.rigcast_job
    del bpy.types.Scene.rigcast
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
