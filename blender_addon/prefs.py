"""Add-on preferences: how background analysis runs (device, model, models folder, your own models, fallback
runners) and where the add-on keeps what it writes for itself.

The add-on never writes into its install folder (an extension's folder may be
read-only and is replaced on update): takes analysed without a chosen path go
to the cache folder, by default ``bpy.utils.extension_path_user(__package__)``.
It never downloads anything either (models and libraries ship in the
extension), so it needs no network permission and ``bpy.app.online_access``
has nothing to gate.
"""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import background
from .core_bridge import RigcastError, model_store

DEVICE_ITEMS = [
    ('auto', "Auto", "TensorRT, then CUDA, then CPU: whichever the bundled onnxruntime offers"),
    ('cpu', "CPU", "Run the models on the CPU"),
    ('cuda', "CUDA", "Run the models on an NVIDIA GPU (needs onnxruntime-gpu)"),
    ('tensorrt', "TensorRT", "Run the models with TensorRT (needs onnxruntime-gpu and TensorRT)"),
]
MODEL_ITEMS = [
    ('lite', "Lite", "BlazePose lite: fastest"),
    ('full', "Full", "BlazePose full: the default balance"),
    ('heavy', "Heavy", "BlazePose heavy: most accurate, slowest"),
]


# Bring-your-own model files: (preference, `rigcast analyze` option, the option's family prefix, what it is).
OWN_MODELS = (
    ("yolo_path", "--detector", "yolo", "the YOLO person detector"),
    ("vitpose_path", "--pose", "vitpose", "the ViTPose pose model"),
    ("lw3d_path", "--pose", "lw3d", "the lightweight 3D pose model"),
    ("videopose3d_path", "--lift", "videopose3d", "the VideoPose3D lifter"),
)


def _forget_runner(self, context) -> None:
    background.clear_cache()


class RigcastPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default='auto',
                         description="Where the analysis runs its models (rigcast analyze --device)")
    model: EnumProperty(name="Body model", items=MODEL_ITEMS, default='full',
                        description="BlazePose landmark model (rigcast analyze --model)")
    models_dir: StringProperty(
        name="Models folder", subtype='DIR_PATH',
        description="Bring your own models: a folder laid out like rigcast's assets (models/ with its manifest.json); "
                    "empty for the embedded models")
    yolo_path: StringProperty(
        name="YOLO person detector", subtype='FILE_PATH',
        description="Your own ultralytics YOLOv5/YOLOv8 ONNX export for person boxes (rigcast analyze --detector "
                    "yolo:PATH); empty for the embedded NanoDet / BlazePose detectors")
    vitpose_path: StringProperty(
        name="ViTPose pose model", subtype='FILE_PATH',
        description="Your own easy_ViTPose ONNX export or .pth checkpoint for 2D keypoints (rigcast analyze "
                    "--pose vitpose:PATH); its tracks are 2D only.  Empty for the embedded BlazePose models")
    lw3d_path: StringProperty(
        name="Lightweight 3D pose model", subtype='FILE_PATH',
        description="Your own lightweight-human-pose-estimation-3d ONNX export: every person's 19 joints in 2D "
                    "and 3D, found without a person detector (rigcast analyze --pose lw3d:PATH).  Empty for the "
                    "embedded BlazePose models; set it or the ViTPose model, not both")
    videopose3d_path: StringProperty(
        name="VideoPose3D lifter", subtype='FILE_PATH',
        description="Your own VideoPose3D checkpoint (.bin) or ONNX export, lifting every track to 3D after the "
                    "analysis (rigcast analyze --lift videopose3d:PATH); empty for no lifting")
    cache_dir: StringProperty(
        name="Cache folder", subtype='DIR_PATH',
        description="Where takes analysed without a chosen path are written; empty for the extension's user folder")
    rigcast_command: StringProperty(
        name="rigcast command", subtype='FILE_PATH', update=_forget_runner,
        description="Path to a `rigcast` executable (e.g. .venv/bin/rigcast), used when Blender's Python cannot run "
                    "the analysis")
    python_path: StringProperty(
        name="Python with rigcast", subtype='FILE_PATH', update=_forget_runner,
        description="A Python interpreter with rigcast installed, run as `python -m rigcast`")

    def draw(self, context):
        layout = self.layout
        col = layout.column(heading="Analysis")
        col.prop(self, "device")
        col.prop(self, "model")
        col.prop(self, "models_dir")
        col = layout.column(heading="Your own models")
        for name, *_ in OWN_MODELS:
            col.prop(self, name)
        layout.prop(self, "cache_dir")
        box = layout.box()
        box.label(text="Analysis runs in a separate process with Blender's own Python and the bundled libraries;")
        box.label(text="if that fails, the command or Python below is used instead.")
        box.prop(self, "rigcast_command")
        box.prop(self, "python_path")


def get(context) -> RigcastPreferences | None:
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def user_dir() -> Path:
    """The add-on's own writable folder: the extension's user folder when installed as an extension, else a
    ``rigcast`` folder in Blender's user data files (a legacy or development install)."""
    try:
        return Path(bpy.utils.extension_path_user(__package__, create=True))
    except ValueError:  # not an extension (bl_ext.*) package
        return Path(bpy.utils.user_resource('DATAFILES', path="rigcast", create=True))


def cache_dir(context) -> Path:
    """The folder for what the add-on writes for itself (chosen in the preferences, else :func:`user_dir`)."""
    preferences = get(context)
    chosen = getattr(preferences, "cache_dir", "")
    path = Path(bpy.path.abspath(chosen)) if chosen else user_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


def analysis_options(context) -> tuple[tuple[str, ...], dict[str, str]]:
    """The preferences as ``rigcast analyze`` arguments and environment: ``(extra argv, extra env)``.

    Raises RigcastError when a bring-your-own model path is set but is not a file, or when two set paths choose
    the same option (a ViTPose and a lightweight 3D model): said before the analysis starts, in the panel, rather
    than by the process that would fail on it."""
    preferences = get(context)
    if preferences is None:
        return (), {}
    argv = ("--device", preferences.device, "--model", preferences.model)
    chosen_for: dict[str, str] = {}  # option → what chose it: ViTPose and lightweight 3D both choose --pose
    for name, option, family, what in OWN_MODELS:
        chosen = getattr(preferences, name)
        if not chosen:
            continue
        if option in chosen_for:
            raise RigcastError(f"{chosen_for[option]} and {what} are both set (add-on preferences), and an analysis "
                               f"runs one {option} model: clear one of them")
        chosen_for[option] = what
        path = Path(bpy.path.abspath(chosen)).resolve()  # the analysis runs in the take's folder
        if not path.is_file():
            raise RigcastError(f"{what} must be a model file (add-on preferences), got {path} (not found)")
        argv += (option, f"{family}:{path}")
    env = {}
    if preferences.models_dir:
        env[model_store.ASSETS_ENV] = str(Path(bpy.path.abspath(preferences.models_dir)))
    return argv, env
