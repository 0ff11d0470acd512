"""Headless composites: a Take's overlays rendered over its footage to an H.264 MP4, with Blender.

    render(parse(["--footage", "in.mp4", "--take", "in.take.npz", "-o", "out.mp4"]), progress=print_progress)

``headless/render.py`` is the command-line door (``main``); ``rigcast render``
starts it.  The scene is the add-on's Import Take (``importer.load_take``):
the camera matched to the Take's intrinsics, size and exact frame rate, the
footage under the render through the compositor, faces with their mask and
face mesh, an armature per body track with its skeleton capsules and
character; Import Take also sets the Standard view transform, so footage
pixels come out as they went in (Filmic/AgX would change them).  This module
adds only what a render needs: engine and samples, a light, the FFmpeg H.264
output with the footage's audio as a sound strip (Blender mixes it into the
file), and the render loop with progress.

The video is rendered to a hidden file beside the output and renamed once
complete, so the output path never holds a partial video; the hidden file of
a render killed mid-way is removed by the next render to the same output
once its process is gone.  Blender aborts
(an assertion in libepoxy, not an exception) when EEVEE or Workbench find no
OpenGL, so on Linux EGL is probed first with ctypes and a missing driver is
a one-line error instead.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import bpy
from threadpoolctl import threadpool_limits

from . import importer
from .core_bridge import RigcastError, composite, take as core_take

Progress = Callable[[int, int, float], None]
"""progress(frames_done, frames_total, seconds_elapsed)."""

EEVEE_IDS = ("BLENDER_EEVEE", "BLENDER_EEVEE_NEXT")  # 5.0, then 4.2-4.5
ENGINE_IDS = {"workbench": ("BLENDER_WORKBENCH",), "cycles": ("CYCLES",), "eevee": EEVEE_IDS}
WORKBENCH_AA = ((1, 'FXAA'), (5, '5'), (8, '8'), (11, '11'), (16, '16'))
EGL_PLATFORM_SURFACELESS_MESA = 0x31DD
SUN_ROTATION_DEG = (55.0, 0.0, -25.0)  # from above and behind the camera (which looks along +Y), a little left
SUN_STRENGTH = 3.0
AMBIENT_RGB = (0.35, 0.35, 0.35)


# --------------------------------------------------------------------------- OpenGL


def egl_problem() -> str | None:
    """Why Blender's headless OpenGL (EGL, Linux) cannot start here, or None when it can (or is not used)."""
    if not sys.platform.startswith("linux") or not bpy.app.background:
        return None
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError as e:
        return f"libEGL.so.1 cannot be loaded ({e})"
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    egl.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    egl.eglTerminate.argtypes = [ctypes.c_void_p]
    get_platform_display = egl.eglGetProcAddress(b"eglGetPlatformDisplayEXT")
    if not get_platform_display:
        return "EGL has no eglGetPlatformDisplayEXT"
    # Without a display Blender renders on Mesa's surfaceless platform; no vendor driver gives no display.
    display = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p)(
        get_platform_display)(EGL_PLATFORM_SURFACELESS_MESA, None, None)
    major, minor = ctypes.c_int(), ctypes.c_int()
    if not display or not egl.eglInitialize(display, ctypes.byref(major), ctypes.byref(minor)):
        return "no EGL driver answers (install libegl1 libegl-mesa0 libgl1-mesa-dri)"
    egl.eglTerminate(display)
    return None


def check_opengl(engine: str) -> None:
    if engine == "cycles":
        return
    problem = egl_problem()
    if problem is not None:
        other = "--engine cycles (CPU)" if engine == "workbench" else "--engine workbench or --engine cycles"
        raise RigcastError(f"{engine} needs OpenGL, which is missing here: {problem}; try {other}")


# --------------------------------------------------------------------------- scene


def _set_engine(scene: bpy.types.Scene, engine: str) -> None:
    for identifier in ENGINE_IDS[engine]:
        try:
            scene.render.engine = identifier
            return
        except TypeError:  # not an engine of this Blender version
            continue
    raise RigcastError(f"this Blender has no {engine} engine ({' or '.join(ENGINE_IDS[engine])})")


def _footage_facts(path: Path) -> tuple[int, int, int, float]:
    """(width, height, frame count, fps) of the footage as Blender reads it: the movie clip Import Take loaded under
    the render (the only one in the fresh file), so the file is opened once."""
    if len(bpy.data.movieclips) != 1:  # Import Take reports why (as a warning) and goes on without footage
        raise RigcastError(f"Blender cannot read the footage {path.name}")
    clip = bpy.data.movieclips[0]
    if clip.frame_duration <= 0 or clip.fps <= 0:  # not a video: Blender makes a 256x256 placeholder of it
        raise RigcastError(f"Blender cannot read the footage {path.name}: it finds no video frames in it")
    return int(clip.size[0]), int(clip.size[1]), int(clip.frame_duration), float(clip.fps)


def _import_options(options) -> importer.ImportOptions:
    overlays = set(options.overlays)
    character = (options.character or importer.MANNEQUIN) if "character" in overlays else ""
    return importer.ImportOptions(
        bodies=bool(overlays & {"skeleton", "character"}), faces=bool(overlays & {"mask", "facemesh"}),
        mask="mask" in overlays, face_mesh="facemesh" in overlays, face_mesh_style=options.facemesh_style,
        skeleton="skeleton" in overlays, character=character, character_map=options.bone_map,
        footage_path=str(options.footage))


def _light(scene: bpy.types.Scene, camera: bpy.types.Object, shadows: bool) -> None:
    """One sun from behind the camera and a grey ambient world (invisible: the film is transparent)."""
    data = bpy.data.lights.new("rigcast_sun", 'SUN')
    data.energy = SUN_STRENGTH
    data.use_shadow = shadows
    sun = bpy.data.objects.new("rigcast_sun", data)
    sun.rotation_euler = [math.radians(a) for a in SUN_ROTATION_DEG]
    sun.location = camera.location
    scene.collection.objects.link(sun)
    world = scene.world or bpy.data.worlds.new("rigcast_world")
    scene.world = world
    world.color = AMBIENT_RGB
    if world.node_tree is None and hasattr(world, "use_nodes"):
        world.use_nodes = True
    background = next((n for n in world.node_tree.nodes if n.type == 'BACKGROUND'), None) if world.node_tree else None
    if background is not None:
        background.inputs["Color"].default_value = (*AMBIENT_RGB, 1.0)


def _engine_settings(scene: bpy.types.Scene, engine: str, samples: int, shadows: bool) -> None:
    _set_engine(scene, engine)
    if engine == "eevee":
        eevee = scene.eevee
        eevee.taa_render_samples = samples
        eevee.use_shadows = shadows
        if hasattr(eevee, "use_raytracing"):
            eevee.use_raytracing = False  # no reflective surfaces to trace
    elif engine == "workbench":
        scene.display.render_aa = next((aa for limit, aa in WORKBENCH_AA if samples <= limit), '32')
        shading = scene.display.shading
        shading.light = 'STUDIO'
        shading.color_type = 'MATERIAL'
    else:
        cycles = scene.cycles
        cycles.device = 'CPU'
        cycles.samples = samples
        cycles.use_denoising = False


def _known_silent(video, footage: Path) -> bool:
    """Whether the Take's analysis found no audio in this very footage file: its ``VideoInfo`` names the same file by
    an absolute path (a relative one was relative to a folder the Take does not record) and says it has none.  Then
    probing for a sound stream again (Blender opens the file once more) is skipped."""
    source = Path(video.source)
    return (video.kind == "video" and not video.has_audio and source.is_absolute()
            and source.resolve() == footage.resolve())


def _video_output(scene: bpy.types.Scene, path: Path, footage: Path, frame_offset: int, probe_audio: bool = True
                  ) -> bool:
    """H.264 MP4 through Blender's FFmpeg writer; the footage's audio as a sound strip (unless ``probe_audio`` is
    False: known to have none).  Returns whether audio goes in."""
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = 'VIDEO'  # Blender 5.0: before file_format, which only lists the media type's formats
    settings.file_format = 'FFMPEG'
    ffmpeg = scene.render.ffmpeg
    ffmpeg.format = 'MPEG4'
    ffmpeg.codec = 'H264'
    ffmpeg.constant_rate_factor = 'HIGH'
    ffmpeg.ffmpeg_preset = 'GOOD'
    scene.render.filepath = str(path.resolve())  # Blender cannot write a bare relative name ("out.mp4")
    scene.render.use_file_extension = False
    has_audio = probe_audio and _audio_strip(scene, footage, frame_offset)
    ffmpeg.audio_codec = 'AAC' if has_audio else 'NONE'
    if has_audio:
        ffmpeg.audio_bitrate = 192
        ffmpeg.audio_mixrate = 48000
    return has_audio


def _audio_strip(scene: bpy.types.Scene, footage: Path, frame_offset: int) -> bool:
    """The footage's sound on the sequencer from the scene frame of source frame 0; False when it has none.

    Sound strips alone do not make the sequencer replace the render: only image strips would.
    """
    editor = scene.sequence_editor_create()
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences  # "sequences" before 4.4
    try:
        strip = strips.new_sound("rigcast_audio", str(footage), 1, frame_offset)
    except RuntimeError:  # no audio stream
        return False
    if strip.sound is None or strip.sound.channels == 'INVALID' or strip.frame_final_duration <= 0:
        strips.remove(strip)
        return False
    return True


def prepare(options, report: importer.Report | None = None) -> tuple[bpy.types.Scene, tuple[int, int], bool]:
    """Build the composite scene for ``options`` (a ``CompositeOptions``) from factory settings.

    Returns the scene, the scene frames [first, last] it renders, and whether it carries audio.
    """
    check_opengl(options.engine)
    take = core_take.Take.load(options.take)
    # An empty file from the factory startup: read_factory_settings would also reset the preferences, which wakes
    # the extensions add-on (half a second, urllib included) for nothing a render uses.
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    context = bpy.context
    import_options = _import_options(options)
    start, end = composite.frame_span(options, take.frame_indices, take.video.frame_count)
    # Faces are planned and built frame by frame (pose, mask fit, a shape key per frame): only the rendered frames
    # are.  Bodies keep all theirs: a retarget's foot contact and grounding look at the whole track.
    faces = tuple(f.select((f.frame_index >= start) & (f.frame_index < end)) for f in take.faces)
    # Planning the scene is small-matrix numpy: BLAS threads only cost there (0.1 s per call on a busy machine).
    with threadpool_limits(limits=1, user_api="blas"):
        importer.load_take(context, options.take, options=import_options, report=report,
                           take=dataclasses.replace(take, faces=faces))
    width, height, frame_count, fps = _footage_facts(options.footage)
    composite.check_footage(take.video, width, height, frame_count, fps, options.footage)
    out_w, out_h = composite.render_size(options, width, height)
    scene = context.scene
    composited = scene.compositing_node_group if hasattr(scene, "compositing_node_group") else scene.use_nodes
    if not composited:
        raise RigcastError(f"Blender could not put the footage {options.footage.name} under the render")
    scene.render.resolution_x, scene.render.resolution_y = out_w, out_h
    scene.frame_start = import_options.frame_offset + start
    scene.frame_end = import_options.frame_offset + end - 1
    shadows = "character" in options.overlays  # a figure reads better self-shadowed; masks and meshes need none
    _engine_settings(scene, options.engine, options.samples, shadows)
    _light(scene, scene.camera, shadows)
    has_audio = _video_output(scene, options.output, options.footage, import_options.frame_offset,
                              probe_audio=not _known_silent(take.video, options.footage))
    return scene, (scene.frame_start, scene.frame_end), has_audio


def _partial_path(output: Path, pid: int | str | None = None) -> Path:
    return output.with_name(f".{output.stem}.partial-{os.getpid() if pid is None else pid}{output.suffix}")


def _remove_orphaned_partials(output: Path) -> None:
    """Delete the hidden partial videos of renders to ``output`` whose process is gone (killed mid-way: a SIGKILL
    runs no cleanup).  Only on POSIX, where signal 0 probes a process without touching it."""
    if os.name != "posix":
        return
    for partial in output.parent.glob(_partial_path(output, "*").name):
        pid = partial.stem.rpartition("-")[2]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            partial.unlink(missing_ok=True)
        except PermissionError:  # alive, someone else's
            pass


def _saved_and_opened(scene: bpy.types.Scene, save_blend: Path | None) -> bpy.types.Scene:
    """The prepared scene saved (to ``save_blend``, else to a temporary file) and opened again: the scene to render.

    The scene as built renders more slowly than the same scene opened from a file: about 0.3 s more CPU time over
    8 Workbench frames at 640x360 (mask and face mesh; 2.55-2.8 s against 2.15-2.45 s, measured six times each), and
    removing the compositor's node group closes the gap too, so it seems to lie in the compositor's handling of a
    node tree built from Python.  Saving and opening costs 0.02-0.03 s.  Paths are saved absolute, so the footage
    and the output resolve whatever the file's folder.
    """
    name = scene.name
    with tempfile.TemporaryDirectory(prefix="rigcast-render-") as folder:
        path = Path(folder) / "scene.blend" if save_blend is None else save_blend.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backup beside a scene saved again
        bpy.ops.wm.save_as_mainfile(filepath=str(path), copy=True, relative_remap=False)
        bpy.ops.wm.open_mainfile(filepath=str(path), load_ui=False)
    return bpy.data.scenes[name]


@dataclasses.dataclass(frozen=True)
class Rendered:
    """What a render wrote: the video (written only once complete), its frame count and the render loop's seconds
    (Blender's render call alone, the scene building before it and the rename after it excluded)."""

    path: Path
    frames: int
    seconds: float


def render(options, progress: Progress | None = None, report: importer.Report | None = None) -> Rendered:
    """Render the composite ``options`` asks for."""
    scene, (first, last), _ = prepare(options, report)
    scene = _saved_and_opened(scene, options.save_blend)
    output = options.output
    output.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphaned_partials(output)
    partial = _partial_path(output.resolve())
    scene.render.filepath = str(partial)
    png_dir = None if options.png_dir is None else options.png_dir.resolve()
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
    total = last - first + 1
    started = time.monotonic()
    done = [0]

    def after_frame(bl_scene, *_):
        if png_dir is not None:
            # The composited frame (footage included), through the scene's view transform.
            bpy.data.images["Render Result"].save_render(
                str(png_dir / f"{bl_scene.frame_current - first:06d}.png"), scene=bl_scene)
        done[0] += 1
        if progress is not None:
            progress(done[0], total, time.monotonic() - started)

    bpy.app.handlers.render_write.append(after_frame)
    try:
        try:
            bpy.ops.render.render(animation=True, scene=scene.name)
            seconds = time.monotonic() - started
        except RuntimeError as e:
            raise RigcastError(f"Blender could not render: {str(e).strip().splitlines()[-1]}") from None
        if done[0] != total or not partial.is_file() or partial.stat().st_size == 0:
            raise RigcastError(f"Blender rendered {done[0]} of {total} frames and wrote no complete video")
        os.replace(partial, output)
    finally:
        bpy.app.handlers.render_write.remove(after_frame)
        partial.unlink(missing_ok=True)
    return Rendered(output, total, seconds)


# --------------------------------------------------------------------------- command line


def print_progress(done: int, total: int, elapsed_s: float) -> None:
    """One stdout line per frame: count, percent, seconds per frame and ETA."""
    per_frame = elapsed_s / max(done, 1)
    eta = per_frame * (total - done)
    print(f"rigcast render: frame {done}/{total} ({100 * done / total:.0f}%), {per_frame:.2f} s/frame, "
          f"ETA {int(eta // 60)}:{int(eta % 60):02d}", flush=True)


def print_warnings(level: set, message: str) -> None:
    """The import's warnings (a face mesh asked of posed faces, footage Blender cannot read), one stderr line each."""
    if 'WARNING' in level:
        print(f"rigcast render: warning: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``headless/render.py``: arguments after ``--`` (or all of them); 0 on success, 2 with one line on error."""
    argv = sys.argv if argv is None else argv
    try:
        options = composite.parse(composite.script_args(argv))
        done = render(options, progress=print_progress, report=print_warnings)
    except RigcastError as e:
        print(f"rigcast: error: {e}", file=sys.stderr, flush=True)
        return 2
    print(f"wrote {done.path}: {done.frames} frames rendered in {done.seconds:.2f} s", flush=True)
    return 0


if __name__ == "__main__":  # python -m rigcast_blender.render -- ARGS (what `rigcast render` starts)
    sys.exit(main())
