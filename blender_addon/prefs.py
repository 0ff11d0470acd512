"""Add-on preferences: where to find rigcast for background analysis when Blender's Python has no rigcast."""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from . import background


def _forget_runner(self, context) -> None:
    background.clear_cache()


class RigcastPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    rigcast_command: StringProperty(
        name="rigcast command", subtype='FILE_PATH', update=_forget_runner,
        description="Path to a `rigcast` executable (e.g. .venv/bin/rigcast), used when Blender's Python lacks rigcast")
    python_path: StringProperty(
        name="Python with rigcast", subtype='FILE_PATH', update=_forget_runner,
        description="A Python interpreter with rigcast installed, run as `python -m rigcast`")

    def draw(self, context):
        layout = self.layout
        layout.label(text="Analysis runs rigcast in a separate process. Blender's own Python is tried first.")
        layout.prop(self, "rigcast_command")
        layout.prop(self, "python_path")


def get(context) -> RigcastPreferences | None:
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None
