"""Import a Take: camera matched to the footage, footage behind the render, an armature per body, faces.

Legend: T frames, B bones, V vertices, L face landmarks.

``load_take(context, path, report=...)`` runs headless (tests, scripts) as
well as from the Import operator.  It first
computes everything with core (pure numpy: nothing in Blender changes if that
fails), then builds into a new collection, and removes whatever it built if
building fails; scene settings (frame rate, range, resolution, camera,
compositor) change only once everything is built.

The scene.  Core's world for a take is the camera's: OpenCV camera axes
turned Z-up by ``rigcast.frames.cv_to_blender`` (camera at the origin looking
along +Y).  The scene moves that world so the floor under the main track is
Z = 0 and its first pelvis sits over the origin (``canonical_from_track``'s
grounding and centring); the camera goes where the origin went, and every
body and face is placed by the same offset, so they line up with the footage
seen through the camera.  Each body gets rigcast's default armature sized to
the person (their leg length), so it needs no source scaling and overlays them.

Faces.  An empty carries the head pose (world <- canonical face, keyed per
frame); the face mesh (the take's topology) and the fitted mask are its
children with vertices in the canonical face frame, and per-frame shape keys
(``animation.write_shape_key_frames``) carry what the rigid pose does not:
expression, and the mask's non-rigid fit.  A face model's dense mesh (the
Take's ``face_mesh``, 3DDFA_V2's BFM) is built instead of the landmark mesh:
its mean, one shape key per basis column and the face's coefficients keyed
as their values (``animation.write_shape_key_weights``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import bpy
import numpy as np

from . import animation
from .core_bridge import (RigcastError, figures_module, frames as core_frames, mask_module, retarget, retarget_cli,
                          take as core_take)
from .rest_pose import armature_from_rig, object_matrix, read_rig

Report = Callable[[set, str], None]

SENSOR_MM = 36.0
DEFAULT_HEIGHT_M = 1.75
HEIGHT_RANGE_M = (1.0, 2.4)


FACE_MESH_STYLES = ("shaded", "wire")
MANNEQUIN = "mannequin"
CHARACTER_SUFFIXES = (".fbx", ".blend", ".glb", ".gltf")
WIRE_THICKNESS_M = 0.0015
FACE_MESH_RGB = (0.85, 0.85, 0.85)


@dataclass(frozen=True)
class ImportOptions:
    """What Import Take builds.  ``frame_offset``: the scene frame of source frame 0.

    The headless renderer builds its scene with the same options: ``face_mesh``
    (and its style), ``skeleton`` (capsules per bone, coloured by track) and
    ``character`` ("" none, ``"mannequin"`` rigcast's default character, or a
    rig file retargeted with ``character_map``) are visible geometry on each
    body's armature; ``footage_path`` replaces the footage path the Take
    recorded.
    """

    frame_offset: int = 1
    foot_lock: str = "auto"
    bodies: bool = True
    faces: bool = True
    mask: bool = True
    footage: bool = True
    face_mesh: bool = True
    face_mesh_style: str = "shaded"
    skeleton: bool = False
    character: str = ""
    character_map: str = "auto"
    footage_path: str = ""

    def __post_init__(self) -> None:
        if self.face_mesh_style not in FACE_MESH_STYLES:
            raise RigcastError(f"face mesh style must be one of {', '.join(FACE_MESH_STYLES)}, "
                               f"got {self.face_mesh_style!r}")
        if self.character and self.character != MANNEQUIN:
            suffix = Path(self.character).suffix.lower()
            if suffix not in CHARACTER_SUFFIXES:
                raise RigcastError(f"a character rig is a {', '.join(CHARACTER_SUFFIXES)} file, got {self.character}")
            if not Path(self.character).is_file():
                raise RigcastError(f"character rig not found: {self.character}")


def _quiet(report: Report | None) -> Report:
    return report if report is not None else (lambda level, message: None)


def take_name(path: str | Path) -> str:
    name = Path(path).name
    for suffix in (".take.npz", ".npz"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or name
    return name


# --------------------------------------------------------------------------- pure planning (core only)


@dataclass
class BodyPlan:
    track_id: int
    rig: object  # core Rig
    motion: object  # core Motion
    frames: np.ndarray  # (T,) scene frames
    height_m: float
    report: str
    pose: object  # core CanonicalPose in the scene's world, what a character rig is retargeted from
    anchor: str = "pelvis"  # what the root follows: core retarget's anchor (the shoulders when no hips are seen)
    feet_seen: bool = True  # whether foot contact applies (retarget.track_feet_seen)


@dataclass
class FacePlan:
    face_id: int
    frames: np.ndarray  # (T,) scene frames
    head_matrix: np.ndarray  # (T, 4, 4) world <- canonical face
    face_basis: np.ndarray  # (468, 3) canonical face, metres
    face_local: np.ndarray  # (T, 468, 3) landmarks in the canonical face frame
    triangles: np.ndarray  # (F, 3)
    uv: np.ndarray  # (468, 2)
    mask: object | None  # core MaskAsset
    mask_local: np.ndarray | None  # (T, V, 3)
    # A face model's dense mesh (the Take's FaceMesh, D vertices), as a linear model in the canonical face frame:
    # mean (D, 3), K shape keys (K, D, 3), their weights (T, K) in [-1, 1], and its triangles (G, 3).
    dense: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


def scene_offset(take) -> np.ndarray:
    """(3,) translation from the camera world to the scene: floor to Z = 0, the longest track's first pelvis over 0."""
    if not take.tracks:
        return np.zeros(3)
    track = max(take.tracks, key=lambda t: t.num_frames)
    placed = retarget.canonical_from_track(track).xyz
    raw = retarget.canonical_from_track(track, ground=False, centre=False).xyz
    shift = (placed - raw).reshape(-1, 3)
    shift = shift[np.all(np.isfinite(shift), axis=1)]
    return np.median(shift, axis=0) if len(shift) else np.zeros(3)


def measured_height(pose, anchor: str = "pelvis") -> float:
    """The person's height in metres as ``pose`` measures them: rigcast's default armature's height scaled by their
    leg length (with ``anchor="shoulders"`` their shoulder width; else torso) against its own; NaN when the pose
    has neither."""
    rig = retarget.default_rig()
    indices = retarget.load_preset("rigcast").indices(rig)
    rest = retarget.rig_markers(rig, indices).rest_xyz(rig)
    factor = retarget.source_scale(rest, np.asarray(pose.xyz), anchor)
    return DEFAULT_HEIGHT_M / factor if factor > 0 else float("nan")


def default_rig_for(pose, anchor: str = "pelvis") -> tuple[object, float]:
    """rigcast's default armature scaled to the person in ``pose`` (their leg length, or shoulder width for
    ``anchor="shoulders"``), and its height in metres.

    Sized to the person, the armature needs no source scaling, so its root
    moves as the person does in the footage and it overlays them through the
    matched camera.  A height outside ``HEIGHT_RANGE_M`` is clamped (the
    armature then no longer matches the pose: ``plan_body`` scales the pose
    first so that it does).
    """
    height = measured_height(pose, anchor)
    height = float(np.clip(height, *HEIGHT_RANGE_M)) if np.isfinite(height) else DEFAULT_HEIGHT_M
    return retarget.default_rig(height), height


def depth_scale(take, track, raw, offset: np.ndarray, anchor: str = "pelvis") -> float:
    """The factor by which ``raw`` (``track``'s pose in the camera's world, camera at the origin) is scaled about the
    camera to stand on the scene's floor at a height within ``HEIGHT_RANGE_M``.

    One view cannot tell a small near person from a large far one: scaling a
    pose about the camera keeps every joint's projection.  The lift's depth for
    a person goes wrong where another walks in front of them, and retargeting,
    which grounds the feet on the rig's floor (foot contact), then pulls them
    off their image: a second walker's character once stood 70 % of the frame
    height away from them.  So each person is scaled until their own floor
    (``canonical_from_track``'s grounding) is the scene's, the main track's
    (``offset``'s height is the camera's above it), and then, if their height
    is still out of range, to the nearest height in range (measured as ``anchor`` says: see
    ``measured_height``).
    """
    placed = retarget.canonical_from_track(track, fps=take.video.fps, centre=False)
    lift = (placed.xyz - raw.xyz)[..., 2]
    own_camera_height = float(np.median(lift[np.isfinite(lift)])) if np.isfinite(lift).any() else float("nan")
    scale = offset[2] / own_camera_height if own_camera_height > 0 and offset[2] > 0 else 1.0
    height = measured_height(raw, anchor) * scale
    if np.isfinite(height) and not HEIGHT_RANGE_M[0] <= height <= HEIGHT_RANGE_M[1]:
        scale *= float(np.clip(height, *HEIGHT_RANGE_M)) / height
    return float(scale)


def plan_body(take, track, offset: np.ndarray, options: ImportOptions) -> BodyPlan:
    """``track``'s armature and motion.  A person whose hips the footage does not show (``track_anchor``) is sized
    by shoulder width and followed by the shoulders, not by the guessed legs and pelvis; their feet are guesses
    too, so they get no foot contact."""
    anchor = retarget.track_anchor(track, (take.video.width, take.video.height))
    raw = retarget.canonical_from_track(track, fps=take.video.fps, ground=False, centre=False)
    raw = raw.with_xyz(raw.xyz * depth_scale(take, track, raw, offset, anchor))
    pose = raw.with_xyz(raw.xyz + offset)
    head = retarget_cli.head_rotation_for_track(take, track)
    if head is not None:
        pose = pose.with_head_rotation(head)
    rig, height = default_rig_for(pose, anchor)
    bone_map = retarget.load_preset("rigcast").resolve(rig)
    feet_seen = retarget.track_feet_seen(track)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", retarget.RetargetWarning)
        motion, report = retarget.retarget(pose, rig, bone_map,
                                           options=_retarget_options(options.foot_lock, anchor, feet_seen),
                                           fps=take.video.fps, return_report=True)
    return BodyPlan(track.track_id, rig, motion, options.frame_offset + track.frame_index.astype(np.float64), height,
                    str(report), pose, anchor, feet_seen)


def _retarget_options(foot_lock: str, anchor: str, feet_seen: bool = True):
    """Core's retarget options for a body followed by ``anchor``: with the shoulders the feet are guesses, and a
    person whose feet are rarely seen whole (``retarget.track_feet_seen``) has them guessed too, so no foot
    contact.  Planted feet are grounded where the person's own feet are in the scene (``ground_on="source"``), not
    on Z = 0: the scene's floor is the main person's, and another one's may lie a little off it."""
    return retarget.RetargetOptions(foot_lock=foot_lock if anchor == "pelvis" and feet_seen else "never",
                                    anchor=anchor, contact=retarget.ContactOptions(ground_on="source"))


def plan_face(take, face, offset: np.ndarray, options: ImportOptions, mask) -> FacePlan:
    topology = take.face_topology
    rot = face.rotation.astype(np.float64)  # camera <- canonical face
    trans = face.translation.astype(np.float64)
    cv = core_frames.CV_TO_BLENDER
    head = np.tile(np.eye(4), (face.num_frames, 1, 1))
    head[:, :3, :3] = cv @ rot
    head[:, :3, 3] = core_frames.cv_to_blender(trans) + offset

    def to_local(xyz_cam: np.ndarray) -> np.ndarray:  # x_canonical = R^T (x_cam - t): as rows, (x_cam - t) @ R
        return (xyz_cam - trans[:, None, :]) @ rot

    basis = topology.canonical_xyz.astype(np.float64)
    local = to_local(face.xyz[:, :468].astype(np.float64))
    local = np.where(np.all(np.isfinite(local), axis=2, keepdims=True), local, basis[None])
    mask_local = None
    if mask is not None:
        fitted = mask_module().fit_masks(mask, rot, trans, face.xyz.astype(np.float64))
        mask_local = to_local(fitted.astype(np.float64))
    dense = None
    if take.face_mesh is not None and face.mesh_coefficients is not None:
        dense = plan_dense_mesh(take.face_mesh, face)
    return FacePlan(face.face_id, options.frame_offset + face.frame_index.astype(np.float64), head, basis, local,
                    topology.triangles, topology.uv, mask, mask_local, dense)


def plan_dense_mesh(mesh, face) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A face's dense mesh as shape keys: in the head empty's frame (the canonical face's, unscaled) the mesh is
    ``scale * (mean + basis @ c)``; key k is ``mean + basis_k * span_k`` times the face's (median) scale, with
    ``span_k`` the largest |c_k| of the face, so that its weights ``c_k / span_k`` lie in [-1, 1]."""
    coefficients = face.mesh_coefficients.astype(np.float64)
    finite = np.all(np.isfinite(coefficients), axis=1)
    coefficients = np.where(finite[:, None], coefficients, 0.0)
    span = np.abs(coefficients).max(axis=0)
    span = np.where(span > 0, span, 1.0)
    scale = float(np.median(face.scale)) if np.all(np.isfinite(face.scale)) else 1.0
    mean = scale * mesh.mean_xyz.astype(np.float64)
    keys = mean[None] + scale * np.moveaxis(mesh.basis.astype(np.float64), 2, 0) * span[:, None, None]
    return mean, keys, coefficients / span, mesh.triangles


# --------------------------------------------------------------------------- building


class _Build:
    """IDs created so far, so a failed import can remove exactly those."""

    def __init__(self):
        self.ids: list[bpy.types.ID] = []

    def add(self, id_data):
        self.ids.append(id_data)
        return id_data

    def rollback(self) -> None:
        alive = []
        for id_data in self.ids:
            try:
                id_data.name  # noqa: B018  (raises ReferenceError once removed)
            except ReferenceError:
                continue
            alive.append(id_data)
        bpy.data.batch_remove(alive)


def _camera(build: _Build, name: str, take, offset: np.ndarray, collection) -> bpy.types.Object:
    """A camera matching the take's intrinsics, at the scene position of the footage's camera, looking along +Y."""
    k = take.intrinsics
    data = build.add(bpy.data.cameras.new(name))
    data.sensor_width = SENSOR_MM
    data.sensor_height = SENSOR_MM
    if k.width >= k.height:
        data.sensor_fit = 'HORIZONTAL'
        data.lens = k.fx * SENSOR_MM / k.width  # f_mm / sensor_mm = f_px / width_px
    else:
        data.sensor_fit = 'VERTICAL'
        data.lens = k.fy * SENSOR_MM / k.height
    # Shifts are fractions of the larger image side; +x moves the frame right,
    # +y up, so a principal point right of / below centre shifts left / up.
    size = float(max(k.width, k.height))
    data.shift_x = (0.5 * k.width - k.cx) / size
    data.shift_y = (k.cy - 0.5 * k.height) / size
    data.clip_start = 0.01
    data.clip_end = 1000.0
    obj = build.add(bpy.data.objects.new(name, data))
    # A Blender camera looks down its local -Z with +Y up; rotating +90 degrees
    # about X makes that +Y (forward) with +Z up: core's camera world.
    obj.rotation_mode = 'XYZ'
    obj.rotation_euler = (math.pi / 2, 0.0, 0.0)
    obj.location = offset
    collection.objects.link(obj)
    return obj


def _footage_clip(build: _Build, take, options: ImportOptions, report: Report):
    video = take.video
    source = Path(options.footage_path or video.source)
    if not options.footage:
        return None
    if not source.is_file():
        report({'WARNING'}, f"footage {source} not found: no background")
        return None
    try:
        clip = build.add(bpy.data.movieclips.load(str(source), check_existing=False))
    except RuntimeError as e:  # Blender cannot read the file
        report({'WARNING'}, f"Blender cannot open the footage {source.name}: {e}")
        return None
    # Movie frame 1 (source frame 0) plays at the scene frame of source frame 0.
    clip.frame_start = options.frame_offset
    if video.rotation:
        report({'WARNING'}, f"footage is rotated {video.rotation} degrees in its container; Blender shows it unrotated")
    return clip


def _compositor_tree_5(build: _Build, name: str, clip) -> bpy.types.NodeTree:
    """Blender 5.0+: a compositor node group (render over the scaled footage) for ``scene.compositing_node_group``."""
    tree = build.add(bpy.data.node_groups.new(name, 'CompositorNodeTree'))
    tree.interface.new_socket("Image", in_out='OUTPUT', socket_type='NodeSocketColor')
    nodes, links = tree.nodes, tree.links
    layers = nodes.new("CompositorNodeRLayers")
    movie = nodes.new("CompositorNodeMovieClip")
    movie.clip = clip
    scale = nodes.new("CompositorNodeScale")
    scale.inputs["Type"].default_value = "Render Size"
    scale.inputs["Frame Type"].default_value = "Fit"
    over = nodes.new("CompositorNodeAlphaOver")
    out = nodes.new("NodeGroupOutput")
    links.new(movie.outputs["Image"], scale.inputs["Image"])
    links.new(scale.outputs[0], over.inputs["Background"])
    links.new(layers.outputs["Image"], over.inputs["Foreground"])
    links.new(over.outputs[0], out.inputs[0])
    for i, node in enumerate((movie, scale, layers, over, out)):
        node.location = (200 * i, 0)
    return tree


def _compositor_tree_4(scene: bpy.types.Scene, clip) -> None:
    """Blender 4.2-4.5: the same graph in ``scene.node_tree`` (composite output)."""
    scene.use_nodes = True
    tree = scene.node_tree
    tree.nodes.clear()
    layers = tree.nodes.new("CompositorNodeRLayers")
    movie = tree.nodes.new("CompositorNodeMovieClip")
    movie.clip = clip
    scale = tree.nodes.new("CompositorNodeScale")
    scale.space = 'RENDER_SIZE'
    scale.frame_method = 'FIT'
    over = tree.nodes.new("CompositorNodeAlphaOver")
    out = tree.nodes.new("CompositorNodeComposite")
    tree.links.new(movie.outputs["Image"], scale.inputs["Image"])
    tree.links.new(scale.outputs[0], over.inputs[1])
    tree.links.new(layers.outputs["Image"], over.inputs[2])
    tree.links.new(over.outputs[0], out.inputs["Image"])


def colour_management_for_footage(scene: bpy.types.Scene) -> None:
    """Standard view transform, no look, exposure 0, gamma 1: composited footage pixels come out unchanged."""
    view = scene.view_settings
    view.view_transform = 'Standard'
    view.look = 'None'
    view.exposure = 0.0
    view.gamma = 1.0
    scene.display_settings.display_device = 'sRGB'
    scene.sequencer_colorspace_settings.name = 'sRGB'


def _mesh(build: _Build, name: str, vertices: np.ndarray, triangles: np.ndarray, uv: np.ndarray | None = None,
          material_index: np.ndarray | None = None) -> bpy.types.Mesh:
    """A triangle mesh from (V, 3) vertices and (F, 3) triangles, with per-vertex uv (V, 2) when given."""
    mesh = build.add(bpy.data.meshes.new(name))
    tri = np.asarray(triangles, dtype=np.int32)
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", np.asarray(vertices, dtype=np.float32).ravel())
    mesh.loops.add(tri.size)
    mesh.loops.foreach_set("vertex_index", tri.ravel())
    mesh.polygons.add(len(tri))
    mesh.polygons.foreach_set("loop_start", np.arange(0, tri.size, 3, dtype=np.int32))
    if material_index is not None:
        mesh.polygons.foreach_set("material_index", np.asarray(material_index, dtype=np.int32))
    if uv is not None:
        layer = mesh.uv_layers.new(name="UVMap")
        layer.data.foreach_set("uv", np.asarray(uv, dtype=np.float32)[tri.ravel()].ravel())
    mesh.update()
    mesh.validate()
    return mesh


def _srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _material(build: _Build, name: str, srgb) -> bpy.types.Material:
    mat = build.add(bpy.data.materials.new(name))
    linear = [*_srgb_to_linear(srgb), 1.0]
    mat.diffuse_color = linear
    if mat.node_tree is None:  # Blender 4.x creates materials without nodes
        mat.use_nodes = True
    bsdf = next((n for n in mat.node_tree.nodes if n.type == 'BSDF_PRINCIPLED'), None)
    if bsdf is not None:
        bsdf.inputs["Base Color"].default_value = linear
    return mat


def _build_face(build: _Build, plan: FacePlan, prefix: str, collection, options: ImportOptions) -> bpy.types.Object:
    name = f"{prefix}_face{plan.face_id}"
    head = build.add(bpy.data.objects.new(f"{name}_head", None))
    head.empty_display_type = 'ARROWS'
    head.empty_display_size = 0.1
    collection.objects.link(head)
    build.add(animation.write_object_transforms(head, plan.frames, plan.head_matrix, f"{name}_head"))

    if options.face_mesh and plan.dense is not None:
        mean, keys, weights, triangles = plan.dense
        mesh = _mesh(build, f"{name}_mesh", mean, triangles)
        mesh.materials.append(_material(build, f"{name}_mesh", FACE_MESH_RGB))
        face_obj = build.add(bpy.data.objects.new(f"{name}_mesh", mesh))
        collection.objects.link(face_obj)
        face_obj.parent = head
        if options.face_mesh_style == "wire":
            wire = face_obj.modifiers.new("wire", 'WIREFRAME')
            wire.thickness = WIRE_THICKNESS_M
            wire.use_even_offset = False
        build.add(animation.write_shape_key_weights(face_obj, plan.frames, keys, weights, f"{name}_mesh"))
    elif options.face_mesh:
        mesh = _mesh(build, f"{name}_mesh", plan.face_basis, plan.triangles, plan.uv)
        mesh.materials.append(_material(build, f"{name}_mesh", FACE_MESH_RGB))
        face_obj = build.add(bpy.data.objects.new(f"{name}_mesh", mesh))
        collection.objects.link(face_obj)
        face_obj.parent = head  # vertices live in the canonical face frame the head empty carries
        if options.face_mesh_style == "wire":
            wire = face_obj.modifiers.new("wire", 'WIREFRAME')
            wire.thickness = WIRE_THICKNESS_M
            wire.use_even_offset = False
        action = animation.write_shape_key_frames(face_obj, plan.frames, plan.face_local, f"{name}_mesh")
        build.add(action)

    if plan.mask is not None:
        asset = plan.mask
        materials = [_material(build, f"{name}_mask_{part}", asset.colors_rgb[i])
                     for i, part in enumerate(("body", "loops"))]
        mesh = _mesh(build, f"{name}_mask", asset.xyz, asset.faces, asset.uv, asset.part)
        for mat in materials:
            mesh.materials.append(mat)
        mask_obj = build.add(bpy.data.objects.new(f"{name}_mask", mesh))
        collection.objects.link(mask_obj)
        mask_obj.parent = head
        build.add(animation.write_shape_key_frames(mask_obj, plan.frames, plan.mask_local, f"{name}_mask"))
    return head


def _skinned_mesh(build: _Build, name: str, arm: bpy.types.Object, vertices: np.ndarray, triangles: np.ndarray,
                  bone: np.ndarray, bone_names, material, collection) -> bpy.types.Object:
    """A mesh whose vertex v follows bone ``bone_names[bone[v]]`` of ``arm`` rigidly (weight 1, armature modifier)."""
    mesh = _mesh(build, name, vertices, triangles)
    mesh.materials.append(material)
    # Capsules are round: smooth shading hides their facets.
    mesh.polygons.foreach_set("use_smooth", np.ones(len(mesh.polygons), dtype=bool))
    obj = build.add(bpy.data.objects.new(name, mesh))
    collection.objects.link(obj)
    for b, bone_name in enumerate(bone_names):
        members = np.flatnonzero(bone == b)
        if len(members):
            obj.vertex_groups.new(name=bone_name).add(members.tolist(), 1.0, 'REPLACE')
    obj.parent = arm
    obj.modifiers.new("armature", 'ARMATURE').object = arm
    return obj


def _build_skeleton(build: _Build, body: BodyPlan, arm: bpy.types.Object, collection) -> bpy.types.Object:
    figures = figures_module()
    vertices, triangles, bone = figures.bone_capsules(body.rig.head_xyz, body.rig.tail_xyz)
    material = _material(build, f"{arm.name}_skeleton", figures.track_rgb(body.track_id))
    return _skinned_mesh(build, f"{arm.name}_skeleton", arm, vertices, triangles, bone, body.rig.bone_names,
                         material, collection)


def _build_mannequin(build: _Build, body: BodyPlan, arm: bpy.types.Object, mannequin, collection) -> bpy.types.Object:
    if tuple(mannequin.bone_names) != tuple(body.rig.bone_names):
        raise RigcastError(f"the mannequin asset is skinned to bones {list(mannequin.bone_names)[:4]}..., rigcast's "
                           f"armature has {list(body.rig.bone_names)[:4]}...: regenerate it (tools/make_mannequin.py)")
    material = _material(build, f"{arm.name}_mannequin", mannequin.color_rgb)
    return _skinned_mesh(build, f"{arm.name}_mannequin", arm, mannequin.vertices_for_height(body.height_m),
                         mannequin.faces, mannequin.bone, mannequin.bone_names, material, collection)


def _import_character_file(build: _Build, path: Path, collection) -> bpy.types.Object:
    """Bring the objects of the rig file at ``path`` into ``collection``; returns its armature (most bones)."""
    before = set(bpy.data.objects)
    suffix = path.suffix.lower()
    try:
        if suffix == ".blend":
            with bpy.data.libraries.load(str(path), link=False) as (source, target):
                target.objects = list(source.objects)
        elif suffix == ".fbx":
            # Blender's own bone axes, as headless_io reads rigs: the rest pose read is the one the file holds.
            bpy.ops.import_scene.fbx(filepath=str(path), automatic_bone_orientation=False, primary_bone_axis='Y',
                                     secondary_bone_axis='X')
        else:
            bpy.ops.import_scene.gltf(filepath=str(path))
    except (RuntimeError, OSError) as e:
        new = [o for o in bpy.data.objects if o not in before]
        bpy.data.batch_remove(new)
        raise RigcastError(f"cannot read the character rig {path.name}: {str(e).strip().splitlines()[-1]}") from None
    new = [o for o in bpy.data.objects if o not in before]
    for obj in new:
        build.add(obj)
    armatures = [o for o in new if o.type == 'ARMATURE' and len(o.data.bones)]
    if not armatures:
        raise RigcastError(f"the character rig {path.name} holds no armature with bones")
    arm = max(armatures, key=lambda o: (len(o.data.bones), o.name))
    if suffix == ".blend":  # a .blend holds a whole scene: keep the character alone (its armature and children)
        keep = {arm, *arm.children_recursive}
        bpy.data.batch_remove([o for o in new if o not in keep])
        new = [o for o in new if o in keep]
    for obj in new:
        for owner in list(obj.users_collection):
            owner.objects.unlink(obj)
        collection.objects.link(obj)
    return arm


def _build_character_rig(build: _Build, body: BodyPlan, path: Path, bone_map_spec: str, foot_lock: str, take,
                         name: str, context, collection) -> bpy.types.Object:
    """The rig file's character, sized to the person, retargeted from ``body``'s pose in the scene's world."""
    arm = _import_character_file(build, path, collection)
    arm.name = name
    rig = read_rig(arm)
    bone_map, _ = retarget_cli.resolve_bone_map(bone_map_spec, rig)
    # Scale the object so the rig is the person's size (legs, else torso): retargeting then needs no source
    # scaling and the root follows the person's own trajectory, as rigcast's armature sized by default_rig_for does.
    rest = retarget.rig_markers(rig, bone_map.indices(rig)).rest_xyz(rig)
    factor = retarget.source_scale(rest, np.asarray(body.pose.xyz), body.anchor)
    arm.location = (0.0, 0.0, 0.0)
    arm.scale = (1.0 / factor,) * 3 if factor > 0 else (1.0, 1.0, 1.0)
    context.view_layer.update()
    pose = retarget_cli.in_armature_space(body.pose, object_matrix(arm))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", retarget.RetargetWarning)
        motion = retarget.retarget(pose, rig, bone_map, fps=take.video.fps,
                                   options=_retarget_options(foot_lock, body.anchor, body.feet_seen))
    build.add(animation.write_bone_motion(arm, rig, motion, frames=body.frames, action_name=f"{name}_action"))
    return arm


def load_take(context: bpy.types.Context, path: str | Path, *, options: ImportOptions = ImportOptions(),
              report: Report | None = None, take=None) -> bpy.types.Collection:
    """Import the Take at ``path`` into ``context.scene``; returns the new collection (named after the take).

    ``take``: the Take already loaded from ``path``, when the caller has it (the renderer), so it is read once.
    Raises ``RigcastError`` (a bad take, a failed retarget) with the scene unchanged.
    """
    report = _quiet(report)
    path = Path(path)
    take = core_take.Take.load(path) if take is None else take
    name = take_name(path)
    scene = context.scene

    # 1. Core: everything computed before Blender is touched.
    offset = scene_offset(take)
    bodies = [plan_body(take, t, offset, options) for t in take.tracks] if options.bodies else []
    if options.faces and options.face_mesh and take.faces and take.face_landmarks_posed and take.face_mesh is None:
        # A pose-only face model measured no mesh; the head pose and the mask are still imported.
        report({'WARNING'}, f"faces from {take.meta['face_source'].get('name', '?')} have a head pose but no measured "
                            "mesh: no face mesh drawn")
        options = replace(options, face_mesh=False)
    mask = None
    if options.faces and take.faces and options.mask:
        module = mask_module()
        if module is None:
            report({'INFO'}, "this rigcast has no mask asset module: faces come without masks")
        else:
            try:
                mask = module.MaskAsset.load()
            except RigcastError as e:  # a missing or broken asset costs the mask, not the import
                report({'WARNING'}, f"no mask: {e}")
    faces = [plan_face(take, f, offset, options, mask) for f in take.faces if f.num_frames] if options.faces else []
    mannequin = figures_module().Mannequin.load() if bodies and options.character == MANNEQUIN else None
    # The mannequin's head would hide the mask or face mesh drawn on the same person (it encloses the face once the
    # body is placed right): a body whose face is drawn gets a mannequin without its head.
    drawn = options.faces and (mask is not None or options.face_mesh)
    faced = {f.body_id for f in take.faces if f.num_frames} if drawn else set()

    # 2. Blender: build into a new collection; on any failure remove what was built.
    build = _Build()
    try:
        collection = build.add(bpy.data.collections.new(name))
        scene.collection.children.link(collection)
        collection["rigcast_take"] = str(path)
        camera = _camera(build, f"{name}_camera", take, offset, collection)
        clip = _footage_clip(build, take, options, report)
        tree = None
        if clip is not None and hasattr(scene, "compositing_node_group"):
            tree = _compositor_tree_5(build, f"{name}_footage", clip)
        for body in bodies:
            arm = armature_from_rig(body.rig, f"{name}_body{body.track_id}", collection, context)
            build.add(arm.data)
            build.add(arm)
            arm["rigcast_take"] = str(path)
            arm["rigcast_track_id"] = body.track_id
            arm["rigcast_height_m"] = body.height_m
            arm["rigcast_anchor"] = body.anchor
            build.add(animation.write_bone_motion(arm, body.rig, body.motion, action_name=f"{name}_track{body.track_id}",
                                                  frames=body.frames))
            report({'INFO'}, f"track {body.track_id}: {body.report.splitlines()[0]}")
            if options.skeleton:
                _build_skeleton(build, body, arm, collection)
            if options.character == MANNEQUIN:
                _build_mannequin(build, body, arm, mannequin.without_bones(("head",)) if body.track_id in faced
                                 else mannequin, collection)
            elif options.character:
                _build_character_rig(build, body, Path(options.character), options.character_map, options.foot_lock,
                                     take, f"{name}_character{body.track_id}", context, collection)
        for face in faces:
            _build_face(build, face, name, collection, options)
    except Exception:
        build.rollback()
        raise

    # 3. Scene settings, once everything exists.
    render = scene.render
    render.fps, render.fps_base = core_frames.blender_fps(take.video.fps)
    render.resolution_x, render.resolution_y = take.video.width, take.video.height
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.film_transparent = True
    if len(take.frame_indices):
        scene.frame_start = options.frame_offset + int(take.frame_indices[0])
        scene.frame_end = options.frame_offset + int(take.frame_indices[-1])
    scene.camera = camera
    if tree is not None:
        scene.compositing_node_group = tree
    elif clip is not None:
        _compositor_tree_4(scene, clip)
    if clip is not None:
        colour_management_for_footage(scene)
    report({'INFO'}, f"imported {name}: {len(bodies)} bod{'y' if len(bodies) == 1 else 'ies'}, "
                     f"{len(faces)} face(s), {len(take.frame_indices)} frames")
    return collection

