"""Operators: thin wrappers that read the scene properties, call one module, and report.

Every operator turns a ``RigcastError`` into ``self.report({'ERROR'}, ...)``
and ``{'CANCELLED'}``; anything else is a bug and propagates.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import bpy
from bpy.props import StringProperty

from . import background, export, importer, prefs
from .apply import MAP_STORED, ApplyConfig, apply_take, bone_map_for, create_default_armature, load_source, store_map
from .core_bridge import RigcastError, retarget
from .rest_pose import read_rig


def _props(context):
    return context.scene.rigcast


def _target(context, required: bool = True):
    """The armature the retarget operators work on: the panel's choice, else the active object if an armature."""
    props = _props(context)
    obj = props.target
    if obj is None and context.active_object is not None and context.active_object.type == 'ARMATURE':
        obj = context.active_object
    if obj is None and required:
        raise RigcastError("choose a target armature (or select one)")
    return obj


def _path(value: str, what: str = "the file") -> Path:
    return export.blend_path(value, what)


class _Guarded:
    """Mixin: ``run(context)`` does the work; a RigcastError becomes an error report and CANCELLED."""

    def run(self, context) -> set[str]:
        raise NotImplementedError

    def execute(self, context):
        try:
            return self.run(context)
        except RigcastError as e:
            self.report({'ERROR'}, str(e))
            return {'CANCELLED'}


# --------------------------------------------------------------------------- analysis


def _import_options(props) -> importer.ImportOptions:
    return importer.ImportOptions(frame_offset=props.frame_offset, foot_lock=props.foot_lock.lower())


def _on_progress(job: background.Job) -> None:
    wm = bpy.context.window_manager
    state = wm.rigcast_job
    state.progress = job.fraction
    state.status = (f"analysing {job.footage.name}: {job.done}/{job.total} frames" if job.total > 0
                    else f"analysing {job.footage.name}: {job.done} frames")
    wm.progress_update(int(round(100 * job.fraction)))
    _redraw()


def _on_finished(job: background.Job, ok: bool, message: str) -> None:
    context = bpy.context
    wm = context.window_manager
    wm.progress_end()
    state = wm.rigcast_job
    state.running = False
    state.progress = 1.0 if ok else state.progress
    state.status = message
    if ok:
        props = _props(context)
        props.take_path = str(job.take)
        # Timers run without a window in the context; building armatures switches modes, which wants one.
        window = context.window or (wm.windows[0] if len(wm.windows) else None)
        with context.temp_override(window=window) if window is not None else contextlib.nullcontext():
            try:
                importer.load_take(bpy.context, job.take, options=_import_options(props))
            except RigcastError as e:
                state.status = f"analysis done, import failed: {e}"
            else:
                if bpy.ops.ed.undo_push.poll():
                    bpy.ops.ed.undo_push(message="rigcast: import analysed take")
    _redraw()


def _redraw() -> None:
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == 'VIEW_3D':
                area.tag_redraw()


def tick() -> float | None:
    """The ``bpy.app.timers`` callback of a running analysis (tests call it directly)."""
    return background.poll(_on_progress, _on_finished)


class RIGCAST_OT_analyse(_Guarded, bpy.types.Operator):
    """Analyse the footage into a Take in a background process, then import it"""

    bl_idname = "rigcast.analyse"
    bl_label = "Analyse"

    @classmethod
    def poll(cls, context):
        return background.current() is None

    def run(self, context):
        props = _props(context)
        footage = _path(props.footage_path, "the footage")
        if not footage.is_file() and not footage.is_dir():
            raise RigcastError(f"footage not found: {footage}")
        # Without a chosen path the take (and its resumable .parts cache) goes to the cache folder: the footage's
        # folder may be read-only, and the add-on's install folder is never written.
        take = (_path(props.take_path, "the take") if props.take_path
                else prefs.cache_dir(context) / "takes" / f"{footage.stem}.take.npz")
        preferences = prefs.get(context)
        extra, env = prefs.analysis_options(context)  # first: a missing model file changes nothing
        take.parent.mkdir(parents=True, exist_ok=True)
        resolution = background.resolve_runner(getattr(preferences, "rigcast_command", ""),
                                               getattr(preferences, "python_path", ""))
        if resolution.runner is None:
            raise RigcastError(resolution.message)
        props.take_path = str(take)
        job = background.start(resolution.runner, footage, take, min_cutoff=props.min_cutoff, beta=props.beta,
                               extra=extra, env=env)
        background.set_current(job)
        wm = context.window_manager
        wm.rigcast_job.running = True
        wm.rigcast_job.progress = 0.0
        wm.rigcast_job.status = f"starting rigcast ({resolution.runner.origin})"
        wm.progress_begin(0, 100)
        if not bpy.app.timers.is_registered(tick):
            bpy.app.timers.register(tick, first_interval=background.POLL_S)
        return {'FINISHED'}


class RIGCAST_OT_cancel(_Guarded, bpy.types.Operator):
    """Stop the background analysis (finished chunks are kept; the next run resumes)"""

    bl_idname = "rigcast.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context):
        return background.current() is not None

    def run(self, context):
        job = background.current()
        if job is not None:
            job.cancel()
        return {'FINISHED'}


# --------------------------------------------------------------------------- import


class RIGCAST_OT_import_take(_Guarded, bpy.types.Operator):
    """Import a Take: camera and footage, an armature per person, faces"""

    bl_idname = "rigcast.import_take"
    bl_label = "Import Take"
    bl_options = {'REGISTER', 'UNDO'}

    filepath: StringProperty(subtype='FILE_PATH', options={'SKIP_SAVE'})
    filter_glob: StringProperty(default="*.npz", options={'HIDDEN'})

    def invoke(self, context, event):
        if not self.filepath and _props(context).take_path:
            self.filepath = bpy.path.abspath(_props(context).take_path)
            return self.execute(context)
        context.window_manager.fileselect_add(self)
        return {'RUNNING_MODAL'}

    def run(self, context):
        props = _props(context)
        path = _path(self.filepath or props.take_path, "the take")
        importer.load_take(context, path, options=_import_options(props), report=self.report)
        props.take_path = str(path)
        return {'FINISHED'}


# --------------------------------------------------------------------------- bone maps


class RIGCAST_OT_detect_map(_Guarded, bpy.types.Operator):
    """Detect which bones of the armature play which canonical bones, and store the map on it"""

    bl_idname = "rigcast.detect_map"
    bl_label = "Detect map"
    bl_options = {'REGISTER', 'UNDO'}

    def run(self, context):
        arm = _target(context)
        rig = read_rig(arm)
        bone_map, report = retarget.detect_bone_map(rig)
        store_map(arm, bone_map)
        _props(context).bone_map = MAP_STORED
        missing = bone_map.missing(rig)
        self.report({'WARNING'} if missing else {'INFO'},
                    f"{report.method}: {len(bone_map.bones)} bones mapped"
                    + (f"; not found: {', '.join(missing)}" if missing else ""))
        return {'FINISHED'}


class RIGCAST_OT_load_map(_Guarded, bpy.types.Operator):
    """Load a bone map .json and store it on the armature"""

    bl_idname = "rigcast.load_map"
    bl_label = "Load map"
    bl_options = {'REGISTER', 'UNDO'}

    def run(self, context):
        props = _props(context)
        arm = _target(context)
        if not props.map_path:
            raise RigcastError("no bone map file given")
        bone_map = retarget.BoneMap.load(_path(props.map_path, "the bone map"))
        store_map(arm, bone_map)
        props.bone_map = MAP_STORED
        missing = bone_map.missing(read_rig(arm))
        self.report({'WARNING'} if missing else {'INFO'}, f"loaded {bone_map.name or 'bone map'}"
                    + (f"; not on {arm.name}: {', '.join(missing)}" if missing else ""))
        return {'FINISHED'}


class RIGCAST_OT_save_map(_Guarded, bpy.types.Operator):
    """Save the armature's bone map (as the Bone map setting picks it) to the map file"""

    bl_idname = "rigcast.save_map"
    bl_label = "Save map"

    def run(self, context):
        props = _props(context)
        arm = _target(context)
        if not props.map_path:
            raise RigcastError("no bone map file given")
        config = ApplyConfig.from_props(props)
        bone_map, _ = bone_map_for(arm, read_rig(arm), config)
        path = _path(props.map_path, "the bone map")
        path.parent.mkdir(parents=True, exist_ok=True)
        bone_map.save(path)
        self.report({'INFO'}, f"saved {len(bone_map.bones)} bones to {path}")
        return {'FINISHED'}


# --------------------------------------------------------------------------- apply and export


class RIGCAST_OT_apply(_Guarded, bpy.types.Operator):
    """Retarget the chosen track of the Take, or a BVH / AMASS clip, onto the armature as a new action"""

    bl_idname = "rigcast.apply"
    bl_label = "Apply"
    bl_options = {'REGISTER', 'UNDO'}

    def run(self, context):
        props = _props(context)
        config = ApplyConfig.from_props(props)
        if not config.take_path:
            raise RigcastError("no take file given")
        arm = None if props.create_armature else _target(context, required=False)
        if arm is None:
            if bpy.ops.object.mode_set.poll() and context.mode != 'OBJECT':
                bpy.ops.object.mode_set(mode='OBJECT')
            arm = create_default_armature(context, load_source(config))
            props.target = arm
            props.create_armature = False
        action, solved = apply_take(context, arm, config)
        if solved.missing:
            self.report({'WARNING'}, f"{arm.name}: no bone for {', '.join(solved.missing)} (left at rest)")
        what = f"track {solved.track_id}" if solved.track_id >= 0 else "clip"
        baked = " (deform bones baked)" if config.bake else ""
        self.report({'INFO'}, f"{action.name}: {what} on {arm.name}{baked} with {solved.map_text.splitlines()[0]}; "
                              f"{str(solved.report).splitlines()[0]}")
        return {'FINISHED'}


class RIGCAST_OT_export_fbx(_Guarded, bpy.types.Operator):
    """Export the armature and its action to FBX (for Unreal, Unity, Mixamo pipelines)"""

    bl_idname = "rigcast.export_fbx"
    bl_label = "Export FBX"

    filepath: StringProperty(subtype='FILE_PATH', options={'SKIP_SAVE'})

    def run(self, context):
        path = export.export_fbx(context, _target(context), self.filepath or _props(context).fbx_path)
        self.report({'INFO'}, f"wrote {path}")
        return {'FINISHED'}


class RIGCAST_OT_export_bvh(_Guarded, bpy.types.Operator):
    """Export the armature's animation to BVH"""

    bl_idname = "rigcast.export_bvh"
    bl_label = "Export BVH"

    filepath: StringProperty(subtype='FILE_PATH', options={'SKIP_SAVE'})

    def run(self, context):
        props = _props(context)
        arm = _target(context)
        path = self.filepath or props.bvh_path
        if props.bvh_writer == 'BLENDER':
            written = export.export_bvh(context, arm, path)
        else:
            written = export.export_bvh_rigcast(context, arm, path)
        self.report({'INFO'}, f"wrote {written}")
        return {'FINISHED'}
