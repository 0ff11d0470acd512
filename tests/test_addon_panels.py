"""Every panel's and the preferences' draw() against the real scene and preferences (bpy 5.0.1), and what the
preferences change.

Panels cannot be drawn without a window, so a layout stand-in records each call and checks it the way Blender
would: a ``prop`` must name a property of its data, an ``operator`` a registered operator (and any property
set on it one of its properties), an icon one Blender knows.  A typo in a panel fails here, not in a sidebar.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from required import require

bpy = require("bpy")

from test_blender_addon import MODULE, addon  # noqa: E402,F401  (the fixture: factory settings, add-on enabled)

ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())


def _rna_of(data):
    return getattr(data, "_wrapped", data)


class OperatorProps:
    """What ``layout.operator`` returns: setting an attribute must name one of the operator's properties."""

    def __init__(self, idname: str, rna):
        object.__setattr__(self, "_idname", idname)
        object.__setattr__(self, "_names", {p.identifier for p in rna.properties})

    def __setattr__(self, name, value):
        assert name in self._names, f"operator {self._idname} has no property {name!r}"


class RecordingLayout:
    """Stands in for ``bpy.types.UILayout``; every call lands in ``calls`` (shared with sub-layouts)."""

    def __init__(self, calls: list | None = None):
        self.calls = [] if calls is None else calls
        self.enabled = self.active = True
        self.alert = False
        self.use_property_split = self.use_property_decorate = False
        self.operator_context = 'EXEC_DEFAULT'

    def _icon(self, icon):
        assert icon in ICONS, f"unknown icon {icon!r}"

    def _sub(self, *args, **kwargs) -> "RecordingLayout":
        return RecordingLayout(self.calls)

    row = column = box = split = column_flow = grid_flow = _sub

    def prop(self, data, prop, *, icon='NONE', **kwargs):
        self._icon(icon)
        rna = _rna_of(data).bl_rna
        assert prop in rna.properties.keys(), f"{rna.identifier} has no property {prop!r}"
        self.calls.append(("prop", rna.identifier, prop))

    def operator(self, idname, *, icon='NONE', **kwargs):
        self._icon(icon)
        category, _, name = idname.partition(".")
        op = getattr(getattr(bpy.ops, category), name)
        try:
            rna = op.get_rna_type()
        except KeyError:
            raise AssertionError(f"no operator {idname!r}") from None
        self.calls.append(("operator", idname))
        return OperatorProps(idname, rna)

    def label(self, *, text="", icon='NONE', **kwargs):
        self._icon(icon)
        self.calls.append(("label", text))

    def progress(self, *, factor=0.0, type='BAR', text=""):
        assert 0.0 <= factor <= 1.0 and type in {'BAR', 'RING'}
        self.calls.append(("progress", text))

    def separator(self, **kwargs):
        pass


class PreferencesProxy:
    """The real preferences with the stand-in as their layout (AddonPreferences.layout is read-only)."""

    def __init__(self, wrapped, layout):
        self._wrapped, self.layout = wrapped, layout

    def __getattr__(self, name):
        return getattr(self._wrapped, name)


def _panels(module):
    return [c for c in module.classes if issubclass(c, bpy.types.Panel)]


def draw_panel(cls) -> list:
    layout = RecordingLayout()
    if hasattr(cls, "poll"):
        assert cls.poll(bpy.context) in (True, False)
    cls.draw(SimpleNamespace(layout=layout), bpy.context)
    return layout.calls


def test_every_panel_draws_in_each_state(addon):
    from rigcast_blender.apply import MAP_FILE, MAP_STORED

    props = bpy.context.scene.rigcast
    state = bpy.context.window_manager.rigcast_job
    drawn = {}
    for cls in _panels(addon):
        drawn[cls.__name__] = draw_panel(cls)
    assert set(drawn) == {"RIGCAST_PT_analyse", "RIGCAST_PT_take", "RIGCAST_PT_retarget", "RIGCAST_PT_export"}
    assert ("operator", "rigcast.analyse") in drawn["RIGCAST_PT_analyse"]
    assert ("operator", "rigcast.import_take") in drawn["RIGCAST_PT_take"]
    assert ("operator", "rigcast.apply") in drawn["RIGCAST_PT_retarget"]
    assert {("operator", "rigcast.export_fbx"), ("operator", "rigcast.export_bvh")} <= set(drawn["RIGCAST_PT_export"])

    # the other branches: a running job, a map file, a stored map on an armature without one
    state.running, state.progress, state.status = True, 0.25, "analysing"
    running = draw_panel(addon.panels.RIGCAST_PT_analyse)
    assert ("operator", "rigcast.cancel") in running and ("progress", "analysing") in running
    state.running = False
    props.bone_map = MAP_FILE
    assert ("prop", "RigcastSceneProps", "map_path") in draw_panel(addon.panels.RIGCAST_PT_retarget)
    arm = bpy.data.objects.new("rig", bpy.data.armatures.new("rig"))
    bpy.context.scene.collection.objects.link(arm)
    props.target, props.bone_map = arm, MAP_STORED
    assert ("label", "No map stored on this armature yet") in draw_panel(addon.panels.RIGCAST_PT_retarget)


def test_the_preferences_draw_every_setting(addon):
    preferences = bpy.context.preferences.addons[MODULE].preferences
    layout = RecordingLayout()
    type(preferences).draw(PreferencesProxy(preferences, layout), bpy.context)
    drawn = {call[2] for call in layout.calls if call[0] == "prop"}
    assert drawn == {"device", "model", "models_dir", "yolo_path", "vitpose_path", "lw3d_path", "videopose3d_path",
                     "cache_dir", "rigcast_command", "python_path"}
    assert drawn == {p.identifier for p in preferences.bl_rna.properties if p.identifier not in {"rna_type", "bl_idname"}}


@pytest.mark.parametrize("call", [
    lambda layout, props: layout.prop(props, "footage_pth"),
    lambda layout, props: layout.operator("rigcast.analyze"),
    lambda layout, props: setattr(layout.operator("rigcast.apply"), "track", 1),
    lambda layout, props: layout.label(text="x", icon='NO_SUCH_ICON'),
])
def test_the_stand_in_catches_typos(addon, call):
    with pytest.raises(AssertionError):
        call(RecordingLayout(), bpy.context.scene.rigcast)


def test_the_preferences_reach_the_analysis(addon, tmp_path):
    """Device and model become `rigcast analyze` arguments, the models folder RIGCAST_ASSETS, and a chosen cache
    folder is where Analyse puts a take it was given no path for (the default, the extension's user folder, is
    covered by the installed extension in test_build_addon.py)."""
    import time
    from pathlib import Path

    import footage
    from rigcast.model_store import ASSETS_ENV
    from rigcast_blender import background, operators, prefs

    preferences = bpy.context.preferences.addons[MODULE].preferences
    assert prefs.analysis_options(bpy.context) == (("--device", "auto", "--model", "full"), {})
    try:
        preferences.device, preferences.model, preferences.models_dir = 'cpu', 'heavy', str(tmp_path / "my-models")
        assert prefs.analysis_options(bpy.context) == (("--device", "cpu", "--model", "heavy"),
                                                       {ASSETS_ENV: str(tmp_path / "my-models")})
        preferences.cache_dir = str(tmp_path / "cache")
        assert prefs.cache_dir(bpy.context) == tmp_path / "cache" and (tmp_path / "cache").is_dir()
        # Analyse with no take path chosen writes its take there (stopped at once: analysis runs are tested elsewhere)
        props = bpy.context.scene.rigcast
        props.footage_path, props.take_path = str(footage.carphone()), ""
        assert bpy.ops.rigcast.analyse() == {'FINISHED'}
        try:
            assert Path(props.take_path) == tmp_path / "cache" / "takes" / f"{footage.carphone().stem}.take.npz"
        finally:
            bpy.ops.rigcast.cancel()
            started = time.monotonic()
            while operators.tick() is not None and time.monotonic() - started < 30:
                time.sleep(0.1)
        assert background.current() is None
    finally:  # preferences outlive factory resets in this process: later tests analyse with the defaults
        for name in ("device", "model", "models_dir", "cache_dir", "yolo_path", "vitpose_path", "lw3d_path",
                     "videopose3d_path"):
            preferences.property_unset(name)
    assert prefs.analysis_options(bpy.context) == (("--device", "auto", "--model", "full"), {})


def test_your_own_models_become_the_clis_options(addon, tmp_path):
    """Each bring-your-own model path becomes the `rigcast analyze` option that loads it, as the CLI parses it; a
    path that is not a file stops Analyse in one line before anything starts or changes."""
    from rigcast.cli import build_parser
    from rigcast_blender import background, prefs

    preferences = bpy.context.preferences.addons[MODULE].preferences
    files = {name: tmp_path / f"{name}.onnx" for name in ("yolo_path", "vitpose_path", "videopose3d_path")}
    try:
        for name, path in files.items():
            path.write_bytes(b"model")
            setattr(preferences, name, str(path))
        chosen = (f"yolo:{files['yolo_path']}", f"vitpose:{files['vitpose_path']}",
                  f"videopose3d:{files['videopose3d_path']}")
        extra, _ = prefs.analysis_options(bpy.context)
        assert extra == ("--device", "auto", "--model", "full", "--detector", chosen[0], "--pose", chosen[1],
                         "--lift", chosen[2])
        args = build_parser().parse_args(["analyze", "clip.mp4", "-o", "clip.take.npz", *extra])
        assert (args.person_detector, args.pose, args.lift) == chosen

        preferences.vitpose_path = str(tmp_path / "missing.onnx")
        props = bpy.context.scene.rigcast
        props.footage_path, props.take_path = str(files["yolo_path"]), ""
        with pytest.raises(RuntimeError, match=r"the ViTPose pose model must be a model file \(add-on preferences\), "
                                               r"got .*missing.onnx \(not found\)"):
            bpy.ops.rigcast.analyse()
        assert background.current() is None and props.take_path == ""
    finally:
        for name in files:
            preferences.property_unset(name)
    assert prefs.analysis_options(bpy.context) == (("--device", "auto", "--model", "full"), {})


def test_a_lightweight_3d_model_becomes_the_pose_option_and_excludes_vitpose(addon, tmp_path):
    """The lightweight 3D model path becomes ``--pose lw3d:PATH``, which the CLI parses and the analysis config
    takes as a bottom-up model; set beside a ViTPose model (both choose --pose), Analyse stops in one line."""
    from rigcast.cli import build_parser
    from rigcast.pipeline.analyze import AnalyzeConfig
    from rigcast_blender import background, prefs

    from byo_models import lw3d_conv_model

    preferences = bpy.context.preferences.addons[MODULE].preferences
    lw3d = lw3d_conv_model(tmp_path / "human-pose-estimation-3d.onnx")
    vitpose = tmp_path / "vitpose-s-coco_25.pth"
    vitpose.write_bytes(b"model")
    try:
        preferences.lw3d_path = str(lw3d)
        extra, _ = prefs.analysis_options(bpy.context)
        assert extra == ("--device", "auto", "--model", "full", "--pose", f"lw3d:{lw3d}")
        args = build_parser().parse_args(["analyze", "clip.mp4", "-o", "clip.take.npz", *extra])
        assert args.pose == f"lw3d:{lw3d}" and AnalyzeConfig(pose=args.pose).bottom_up

        preferences.vitpose_path = str(vitpose)
        props = bpy.context.scene.rigcast
        props.footage_path, props.take_path = str(lw3d), ""
        with pytest.raises(RuntimeError, match=r"the ViTPose pose model and the lightweight 3D pose model are both "
                                               r"set \(add-on preferences\), and an analysis runs one --pose model: "
                                               r"clear one of them"):
            bpy.ops.rigcast.analyse()
        assert background.current() is None and props.take_path == ""
    finally:
        for name in ("lw3d_path", "vitpose_path"):
            preferences.property_unset(name)
    assert prefs.analysis_options(bpy.context) == (("--device", "auto", "--model", "full"), {})


def test_the_analysis_runs_your_own_detector(addon, tmp_path):
    """A YOLOv8 export (built here, one box planted around skimage's astronaut) set in the preferences is the
    detector the background analysis ran: the Take records it, and the body found lies in the planted box."""
    import cv2
    import numpy as np
    from byo_models import constant_model
    from fixtures_images import astronaut
    from rigcast.formats.take import Take
    from rigcast.models.yolo import letterbox_plan
    from test_blender_addon import _run_ticks

    person_xyxy = np.array([50.0, 20.0, 430.0, 512.0])  # as in test_byo_yolo_vitpose.py
    box = letterbox_plan((512, 512), (640, 640)).to_input(person_xyxy[None])[0]
    planted = np.zeros((1, 84, 8400), dtype=np.float32)  # YOLOv8: (1, 4 + 80 classes, candidates), cxcywh in px
    planted[0, :4, 100] = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]]
    planted[0, 4, 100] = 0.88  # class 0, person
    model = constant_model(tmp_path / "yolov8n.onnx", "images", [1, 3, 640, 640], "output0", planted)
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), np.ascontiguousarray(astronaut()[..., ::-1]))

    preferences = bpy.context.preferences.addons[MODULE].preferences
    props = bpy.context.scene.rigcast
    try:
        preferences.yolo_path, preferences.device = str(model), 'cpu'
        props.footage_path, props.take_path = str(photo), str(tmp_path / "astronaut.take.npz")
        assert bpy.ops.rigcast.analyse() == {'FINISHED'}
        _run_ticks()
    finally:
        for name in ("yolo_path", "device"):
            preferences.property_unset(name)
    status = bpy.context.window_manager.rigcast_job.status
    assert status.startswith("analysed astronaut.png"), status
    take = Take.load(tmp_path / "astronaut.take.npz")
    assert take.meta["models"]["detector"] == f"yolo:{model}"
    (track,) = take.tracks
    nose = track.xy[0, track.skeleton.joint_names.index("nose")]
    assert ((nose >= person_xyxy[:2]) & (nose <= person_xyxy[2:])).all()


def test_the_analysis_runs_your_own_lightweight_3d_model(addon, tmp_path):
    """A lightweight 3D export (built here, its outputs planted: one person) set in the preferences is the pose
    model the background analysis ran: the Take records it, with that person's 19 joints in 2D and 3D."""
    import cv2
    import numpy as np
    from byo_models import planted_outputs_model
    from fixtures_images import astronaut
    from rigcast.camera import Intrinsics
    from rigcast.formats.take import Take
    from rigcast.skeletons import LW3D_19
    from test_blender_addon import _run_ticks
    from test_lightweight3d import H, W, fronto_parallel, person, plant_maps

    neck = (16, 6)  # feature px: the 512 px photo is 256 px wide at the model's 256 px height, 32 feature px
    heat, pafs = plant_maps([person(neck)])
    features = np.zeros((57, H, W), dtype=np.float32)
    focal = Intrinsics.from_fov(512, 512, source="default").fx * 0.5 / 8  # the Take's focal, in feature px
    features[:, :, neck[0] - 6:neck[0] + 7] = fronto_parallel(neck, 300.0, focal, (16.0, 16.0))[1].reshape(57, 1, 1)
    model = planted_outputs_model(tmp_path / "human-pose-estimation-3d.onnx", "data", [1, 3, 256, 448],
                                  {"features": features[None], "heatmaps": heat[None], "pafs": pafs[None]})
    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), np.ascontiguousarray(astronaut()[..., ::-1]))

    preferences = bpy.context.preferences.addons[MODULE].preferences
    props = bpy.context.scene.rigcast
    try:
        preferences.lw3d_path, preferences.device = str(model), 'cpu'
        props.footage_path, props.take_path = str(photo), str(tmp_path / "astronaut.take.npz")
        assert bpy.ops.rigcast.analyse() == {'FINISHED'}
        _run_ticks()
    finally:
        for name in ("lw3d_path", "device"):
            preferences.property_unset(name)
    status = bpy.context.window_manager.rigcast_job.status
    assert status.startswith("analysed astronaut.png"), status
    take = Take.load(tmp_path / "astronaut.take.npz")
    assert take.meta["models"]["pose"]["family"] == "lw3d" and take.meta["models"]["pose"]["path"] == str(model)
    (track,) = take.tracks
    assert track.skeleton is LW3D_19 and np.isfinite(track.xyz).all()
    # The planted neck (feature px centres at +0.5, 8 input px each, the photo at half scale), 3 m away.
    np.testing.assert_allclose(track.xy[0, LW3D_19.index("neck")], (np.array(neck) + 0.5) * 8 * 2, atol=0.5)
    assert track.root_xyz[0, 2] == pytest.approx(3.0, rel=1e-3)


def test_the_fallback_runners_come_in_the_preferences_order(monkeypatch, addon):
    """When Blender's Python cannot run rigcast: the rigcast command first, then the Python with rigcast; with
    neither working, each one tried is named."""
    import sys
    from pathlib import Path

    from rigcast_blender import background

    python = sys.executable
    command = str(Path(python).with_name("rigcast"))
    assert Path(command).is_file()
    background.clear_cache()
    monkeypatch.setattr(sys, "executable", "/nonexistent/blender-python")
    try:
        both = background.resolve_runner(command, python)
        assert both.runner == background.Runner((command,), f"command {command}")
        broken = background.resolve_runner("/nonexistent/rigcast", python)
        assert broken.runner == background.Runner((python, "-m", "rigcast"), f"Python {python}")
        none = background.resolve_runner("/nonexistent/rigcast", "/nonexistent/python")
        assert none.runner is None and [t.split(" (")[0] for t in none.tried] == [
            "Blender's Python", "command '/nonexistent/rigcast'", "Python '/nonexistent/python'"]
    finally:
        background.clear_cache()
