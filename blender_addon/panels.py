"""The sidebar (N panel), category "rigcast": Analyse, Take, Retarget, Export."""

from __future__ import annotations

import bpy

from . import background, prefs
from .apply import MAP_FILE, MAP_STORED, stored_map, take_lift_sources


class _RigcastPanel:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "rigcast"


class RIGCAST_PT_analyse(_RigcastPanel, bpy.types.Panel):
    bl_idname = "RIGCAST_PT_analyse"
    bl_label = "Analyse"

    def draw(self, context):
        layout = self.layout
        props = context.scene.rigcast
        state = context.window_manager.rigcast_job
        layout.prop(props, "footage_path")
        row = layout.row(align=True)
        row.prop(props, "min_cutoff")
        row.prop(props, "beta")
        preferences = prefs.get(context)
        unavailable = background.cached_message(getattr(preferences, "rigcast_command", ""),
                                                getattr(preferences, "python_path", ""))
        if unavailable:
            layout.label(text=unavailable, icon='ERROR')
        if state.running:
            layout.progress(factor=state.progress, type='BAR', text=state.status or "analysing")
            layout.operator("rigcast.cancel", icon='CANCEL')
        else:
            layout.operator("rigcast.analyse", icon='PLAY')
            if state.status:
                layout.label(text=state.status)


class RIGCAST_PT_take(_RigcastPanel, bpy.types.Panel):
    bl_idname = "RIGCAST_PT_take"
    bl_label = "Take"

    def draw(self, context):
        layout = self.layout
        props = context.scene.rigcast
        layout.prop(props, "take_path")
        layout.prop(props, "frame_offset")
        layout.operator("rigcast.import_take", icon='IMPORT')


class RIGCAST_PT_retarget(_RigcastPanel, bpy.types.Panel):
    bl_idname = "RIGCAST_PT_retarget"
    bl_label = "Retarget"

    def draw(self, context):
        layout = self.layout
        props = context.scene.rigcast
        layout.prop(props, "create_armature")
        row = layout.row()
        row.enabled = not props.create_armature
        row.prop(props, "target")
        layout.prop(props, "bone_map")
        if props.bone_map == MAP_FILE:
            layout.prop(props, "map_path")
        elif props.bone_map == MAP_STORED and props.target is not None and stored_map(props.target) is None:
            layout.label(text="No map stored on this armature yet", icon='INFO')
        row = layout.row(align=True)
        row.operator("rigcast.detect_map")
        row.operator("rigcast.load_map")
        row.operator("rigcast.save_map")
        if props.bone_map != MAP_FILE:
            layout.prop(props, "map_path")
        layout.prop(props, "track_id")
        if take_lift_sources(bpy.path.abspath(props.take_path)):
            layout.prop(props, "points")
        layout.prop(props, "foot_lock")
        layout.prop(props, "use_face")
        layout.prop(props, "source_rest")
        layout.prop(props, "target_rest")
        layout.prop(props, "bake")
        layout.operator("rigcast.apply", icon='ARMATURE_DATA')


class RIGCAST_PT_export(_RigcastPanel, bpy.types.Panel):
    bl_idname = "RIGCAST_PT_export"
    bl_label = "Export"

    def draw(self, context):
        layout = self.layout
        props = context.scene.rigcast
        layout.prop(props, "fbx_path")
        layout.operator("rigcast.export_fbx", icon='EXPORT')
        layout.prop(props, "bvh_path")
        layout.prop(props, "bvh_writer")
        layout.operator("rigcast.export_bvh", icon='EXPORT')
