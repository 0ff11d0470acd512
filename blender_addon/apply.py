"""Apply: retarget one Take track onto an armature, as one new action.

props -> :class:`ApplyConfig` -> core (``take_source`` / ``load_source``, ``rested_rig``, ``retarget``) ->
``write_through_controls`` (-> ``bake_deform_bones``): the steps ``rigcast retarget`` takes, from the same core code.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from . import animation
from .core_bridge import RigcastError, amass, retarget, retarget_cli, take as core_take
from .rest_pose import armature_from_rig, object_matrix, read_rig

STORED_MAP_KEY = "rigcast_bone_map"
"""Custom property (JSON) on an armature object holding the bone map Detect / Load put there."""

MAP_AUTO, MAP_STORED, MAP_FILE = "AUTO", "STORED", "FILE"
PRESET_PREFIX = "PRESET:"
POINTS_TRACK = "track"
"""``ApplyConfig.points``: a Take track's own 3D points; any other value names a lift stored in the Take, as
``rigcast retarget --source`` does."""


@dataclass(frozen=True)
class ApplyConfig:
    """Everything Apply needs, read from the scene properties once.

    ``take_path``: a Take, a BVH clip or an AMASS/SMPL .npz.
    ``map_source``: ``AUTO`` (detect), ``STORED`` (the map on the armature),
    ``FILE`` (``map_path``) or ``PRESET:<name>``.  ``track_id`` -1: the take's
    longest track.  ``frame_offset``: the scene frame of source frame 0.
    ``source_rest`` / ``target_rest``: the CLI's ``--source-rest`` /
    ``--target-rest`` (``auto`` for the source only, ``zero``, ``tpose`` or a
    frame number; a target frame is one of the armature's current action).  ``bake``: the CLI's
    ``--bake``: key the deform bones' evaluated pose instead of the controls.
    ``points``: the CLI's ``--source``: ``track`` (a Take track's own 3D) or
    a lift stored in the Take (``lift``, what ``rigcast lift`` writes).
    """

    take_path: str
    track_id: int = -1
    map_source: str = MAP_AUTO
    map_path: str = ""
    foot_lock: str = "auto"
    frame_offset: int = 1
    use_face: bool = True
    source_rest: str = "auto"
    target_rest: str = "zero"
    bake: bool = False
    points: str = POINTS_TRACK

    @classmethod
    def from_props(cls, props) -> "ApplyConfig":
        take_path = bpy.path.abspath(props.take_path)
        # The panel offers a lift only for a Take that has it; a choice left from another Take is not shown,
        # so it is not used either.
        points = props.points if props.points in take_lift_sources(take_path) else POINTS_TRACK
        return cls(take_path=take_path, track_id=props.track_id, map_source=props.bone_map,
                   map_path=bpy.path.abspath(props.map_path), foot_lock=props.foot_lock.lower(),
                   frame_offset=props.frame_offset, use_face=props.use_face,
                   source_rest=props.source_rest.strip() or "auto", target_rest=props.target_rest.strip() or "zero",
                   bake=props.bake, points=points)


_LIFT_SOURCES: dict[str, tuple[tuple[int, int], tuple[str, ...]]] = {}


def take_lift_sources(path: str) -> tuple[str, ...]:
    """The names of the lifts stored in the Take at ``path`` (``("lift",)`` after ``rigcast lift``), sorted; ()
    for a Take without any, or a file that is no Take.  Read once per version of the file: panels redraw often."""
    file = Path(path) if path else None
    if file is None or not file.name.endswith(".npz") or not file.is_file():
        return ()
    stat = file.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _LIFT_SOURCES.get(str(file))
    if cached is None or cached[0] != stamp:
        try:
            sources = tuple(sorted({lf.source for lf in core_take.Take.load(file).lifts}))
        except RigcastError:  # an AMASS archive, or a broken file (Apply says why when it is used)
            sources = ()
        cached = _LIFT_SOURCES[str(file)] = (stamp, sources)
    return cached[1]


# --------------------------------------------------------------------------- bone maps


def stored_map(arm_obj) -> "retarget.BoneMap | None":
    text = arm_obj.get(STORED_MAP_KEY)
    if not text:
        return None
    try:
        return retarget.BoneMap.from_dict(json.loads(text))
    except json.JSONDecodeError as e:
        raise RigcastError(f"the bone map stored on {arm_obj.name!r} is not valid JSON: {e}") from None


def store_map(arm_obj, bone_map) -> None:
    arm_obj[STORED_MAP_KEY] = json.dumps(bone_map.to_dict())


def bone_map_for(arm_obj, rig, config: ApplyConfig) -> tuple["retarget.BoneMap", str]:
    """The bone map ``config`` asks for on ``rig`` (names as the rig spells them) and how it was found."""
    source = config.map_source
    if source == MAP_AUTO:
        return retarget_cli.resolve_bone_map("auto", rig)
    if source == MAP_STORED:
        found = stored_map(arm_obj)
        if found is None:
            raise RigcastError(f"{arm_obj.name!r} has no stored bone map: run Detect map or Load map first")
        return found.resolve(rig), f"bone map stored on {arm_obj.name}"
    if source == MAP_FILE:
        if not config.map_path:
            raise RigcastError("no bone map file given")
        return retarget.BoneMap.load(config.map_path).resolve(rig), f"bone map file {config.map_path}"
    if source.startswith(PRESET_PREFIX):
        name = source[len(PRESET_PREFIX):]
        return retarget.load_preset(name).resolve(rig), f"preset {name}"
    raise RigcastError(f"unknown bone map source {source!r}")


# --------------------------------------------------------------------------- solve and write


MOCAP_SUFFIXES = (".bvh", ".npz")
"""Sources Apply reads besides Takes: BVH clips and AMASS/SMPL archives (an .npz that is not a Take)."""


@dataclass
class Source:
    """What Apply retargets: a world-space core pose, the scene frames it plays at, and where it came from."""

    pose: object  # core CanonicalPose, world space
    frames: np.ndarray  # (T,) scene frames
    fps: object  # Fraction | None
    track_id: int  # -1 for mocap files
    stem: str
    text: str


def load_source(config: ApplyConfig) -> Source:
    """The source ``config`` names: a Take's track (its face too), or a BVH / AMASS clip read as the CLI reads it.

    ``source_rest`` applies to mocap clips only, as ``--source-rest`` does.
    """
    if not config.take_path:
        raise RigcastError("no take file given")
    path = Path(config.take_path)
    stem = path.name.split(".")[0]
    suffix = path.suffix.lower()
    if suffix in (".fbx", ".blend"):
        raise RigcastError(f"Apply reads Takes, BVH clips and AMASS .npz archives; for {path.name} use "
                           f"rigcast retarget (it opens .fbx/.blend files in a Blender of its own)")
    is_mocap = suffix == ".bvh" or (suffix == ".npz" and path.is_file() and amass.is_amass(path))
    if is_mocap:
        pose, text = retarget_cli.load_source(path, None, config.source_rest)
        frames = config.frame_offset + np.arange(pose.num_frames, dtype=np.float64)
        return Source(pose, frames, pose.fps, -1, stem, text)
    if retarget_cli.parse_rest(config.source_rest, "Source rest") not in ("auto", "zero"):
        raise RigcastError(f"Source rest applies to mocap clips (.bvh, AMASS .npz); a Take's points have no joint "
                           f"frames, got Source rest {config.source_rest}")
    take = core_take.Take.load(path)
    pose, track = retarget_cli.take_source(take, None if config.track_id < 0 else config.track_id,
                                           use_face=config.use_face, points=config.points)
    frames = config.frame_offset + track.frame_index.astype(np.float64)
    text = f"take {path.name}: track {track.track_id}"
    if config.points != POINTS_TRACK:
        text += f", points from its {config.points!r} lift"
    return Source(pose, frames, take.video.fps, track.track_id, stem, text)


@dataclass
class Solved:
    motion: object  # core Motion
    report: object  # core RetargetReport
    frames: np.ndarray  # (T,) scene frames
    track_id: int
    map_text: str
    missing: tuple[str, ...]
    rest_text: str = ""


def armature_motion(arm_obj, rig):
    """The core Motion of ``arm_obj``'s current action on ``rig``, sampled at every frame of its range."""
    from . import export

    if arm_obj.animation_data is None or arm_obj.animation_data.action is None:
        raise RigcastError(f"Target rest FRAME needs an action on {arm_obj.name!r}; it has none")
    start, end = export.action_frame_range(arm_obj, bpy.context.scene)
    return export.motion_from_pose(rig, export.sample_pose(bpy.context, arm_obj, range(start, end + 1)))


def solve(source: Source, rig, bone_map, map_text: str, config: ApplyConfig, matrix_world: np.ndarray | None,
          rig_motion=None) -> Solved:
    """Core only: the source's motion on ``rig`` (armature space of an object at ``matrix_world``).

    As ``rigcast retarget`` does: solved on the rig resting at ``target_rest``
    (``rig_motion``: the armature's animation, for a frame number), then
    carried back onto the rig's own rest.
    """
    pose = retarget_cli.in_armature_space(source.pose, matrix_world)
    solve_rig, rest_text = retarget_cli.rested_rig(rig, bone_map.indices(rig), config.target_rest, rig_motion,
                                                   "Target rest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", retarget.RetargetWarning)  # reported below instead
        motion, report = retarget.retarget(pose, solve_rig, bone_map, fps=source.fps, return_report=True,
                                           options=retarget.RetargetOptions(foot_lock=config.foot_lock))
    if solve_rig is not rig:
        motion = retarget_cli.motion_onto_rig(solve_rig, motion, rig)
    return Solved(motion, report, source.frames, source.track_id, map_text, bone_map.missing(rig), rest_text)


def create_default_armature(context, source: Source, name: str = "rigcast") -> bpy.types.Object:
    """rigcast's own armature, sized to the source's person, in the scene's active collection."""
    from .importer import default_rig_for

    rig, height = default_rig_for(source.pose)
    arm = armature_from_rig(rig, name, context.collection or context.scene.collection, context)
    arm["rigcast_height_m"] = height
    return arm


def apply_take(context, arm_obj, config: ApplyConfig) -> tuple[bpy.types.Action, Solved]:
    """Retarget ``config``'s track onto ``arm_obj`` as a new action, assigned to it; returns it and what was solved."""
    source = load_source(config)
    rig = read_rig(arm_obj)
    bone_map, map_text = bone_map_for(arm_obj, rig, config)
    target_rest = retarget_cli.parse_rest(config.target_rest, "Target rest")
    rig_motion = armature_motion(arm_obj, rig) if isinstance(target_rest, int) else None
    solved = solve(source, rig, bone_map, map_text, config, object_matrix(arm_obj), rig_motion)
    name = source.stem if source.track_id < 0 else f"{source.stem}_track{source.track_id}"
    action = write_through_controls(arm_obj, rig, solved.motion, frames=solved.frames, action_name=name)
    if config.bake:
        action, _ = bake_deform_bones(arm_obj, solved.frames, action_name=f"{name}_baked")
    return action, solved


# --------------------------------------------------------------------------- rigs animated through controls

MAX_PASSES = 4
SETTLED = 1e-8
"""Bones solved again stop once no quaternion moves by more than this (1 - |q . q'|, about 0.02 deg)."""
FK_SWITCHES = ("IK_FK",)
"""Custom pose-bone properties that blend a limb between IK (0) and FK (1): Rigify's limbs."""


def switch_to_fk(arm_obj) -> list[str]:
    """Set every IK/FK switch property of ``arm_obj``'s pose bones to FK; the data paths set."""
    paths = []
    for pb in arm_obj.pose.bones:
        for key in FK_SWITCHES:
            if key in pb.keys():
                pb[key] = 1.0
                paths.append(f'pose.bones["{bpy.utils.escape_identifier(pb.name)}"]["{key}"]')
    return paths


def needs_evaluated_solve(arm_obj, rig, motion) -> bool:
    """Whether constraints sit on or above the bones ``motion`` turns, so parents must be read evaluated."""
    moving = _moving_bones(rig, motion)
    above = set(moving)
    for b in moving:
        above.update(rig.ancestors(b))
    pose_bones = arm_obj.pose.bones
    return any(c.enabled and c.influence > 0 for b in above for c in pose_bones[rig.bone_names[b]].constraints)


def _moving_bones(rig, motion) -> list[int]:
    still = np.all(np.abs(motion.local_quat_wxyz - [1.0, 0.0, 0.0, 0.0]) < 1e-7, axis=(0, 2))
    still[motion.root_bone] = False
    return [b for b in rig.order if not still[b]]


def solve_through_constraints(arm_obj, rig, motion):
    """``motion`` re-expressed for a rig whose controls sit under constraint-driven bones (Rigify's MCH chain).

    Core's Motion assumes every unkeyed bone follows its parent rigidly; in
    Rigify the controls hang from MCH bones that constraints move, so a local
    rotation computed that way lands wrong.  Core's armature-space targets
    ``fk(rig, motion)`` are right, though: per frame, parents first, each
    turned bone is given its target rotation through ``pose_bone.matrix``
    (Blender solves the basis against the parent's *evaluated* matrix), with
    one depsgraph update per hierarchy level.  The root keeps its target
    location too.  Bones hanging from constrained bones that no turned bone
    is above in the hierarchy, and the turned bones below them, are solved
    again at the end of each frame until they settle (their evaluated parents
    may follow bones posed after them).  Returns a new core Motion whose local rotations play back the targets on
    the real rig.
    """
    from mathutils import Matrix

    moving = _moving_bones(rig, motion)
    targets = retarget.fk(rig, motion)
    moving_set = set(moving)
    depth = {}
    for b in moving:  # rig.order lists parents first
        up = [a for a in rig.ancestors(b) if a in moving_set]
        depth[b] = 1 + max((depth[a] for a in up), default=-1)
    levels = [[b for b in moving if depth[b] == d] for d in range(max(depth.values(), default=-1) + 1)]
    pose_bones = arm_obj.pose.bones
    # A bone hanging from constrained bones may follow turned bones the hierarchy does not show (Rigify's
    # fingers hang from ORG-hand, which copies the FK hand): such bones are solved again once all are posed.
    constrained = {b for b in range(rig.num_bones)
                   if any(c.enabled and c.influence > 0 for c in pose_bones[rig.bone_names[b]].constraints)}

    def hangs_from_constraints(b: int) -> bool:
        for a in rig.ancestors(b):
            if a in moving_set:
                return False
            if a in constrained:
                return True
        return False

    again: set[int] = set()
    for b in moving:  # parents first: a bone below one solved again is solved again too
        if hangs_from_constraints(b) or any(a in again for a in rig.ancestors(b)):
            again.add(b)
    again_levels = [[b for b in level if b in again] for level in levels if any(b in again for b in level)]
    anim = arm_obj.animation_data
    saved_action = anim.action if anim is not None else None
    if anim is not None:
        anim.action = None  # the solve poses bones by hand; an action would overwrite them on update
    view_layer = bpy.context.view_layer
    for b in moving:
        pb = pose_bones[rig.bone_names[b]]
        pb.rotation_mode = 'QUATERNION'
        pb.matrix_basis = Matrix.Identity(4)
    quat = np.array(motion.local_quat_wxyz)
    location = np.array(motion.root_translation)
    try:
        def pose_levels(t: int, order: list[list[int]]) -> None:
            for level in order:
                view_layer.update()
                for b in level:
                    pb = pose_bones[rig.bone_names[b]]
                    m = np.array(targets[t, b])
                    if b != motion.root_bone:
                        m[:3, 3] = np.array(pb.matrix.translation)  # rotation only: the head stays put
                    pb.matrix = Matrix(m.tolist())

        again_bones = [pose_bones[rig.bone_names[b]] for level in again_levels for b in level]
        for t in range(motion.num_frames):
            pose_levels(t, levels)
            # Solved again until they settle (Rigify's finger drivers lag an evaluation behind).
            for _ in range(MAX_PASSES):
                before = np.array([tuple(pb.rotation_quaternion) for pb in again_bones]).reshape(-1, 4)
                pose_levels(t, again_levels)
                after = np.array([tuple(pb.rotation_quaternion) for pb in again_bones]).reshape(-1, 4)
                if np.max(np.abs(np.abs(np.sum(before * after, axis=1)) - 1.0), initial=0.0) < SETTLED:
                    break
            for b in moving:
                pb = pose_bones[rig.bone_names[b]]
                quat[t, b] = tuple(pb.rotation_quaternion)
            location[t] = tuple(pose_bones[rig.bone_names[motion.root_bone]].location)
    finally:
        if anim is not None:
            anim.action = saved_action
    return retarget.Motion(local_quat_wxyz=quat, root_translation=location, root_bone=motion.root_bone,
                           fps=motion.fps, contact=motion.contact).with_continuous_signs()


def write_through_controls(arm_obj, rig, motion, *, frames=None, frame_start: float = 1,
                           action_name: str = "rigcast"):
    """Write ``motion`` onto ``arm_obj`` as an action, through its controls when constraints drive it.

    IK/FK switches go to FK (and are keyed so the clip holds them); a rig with
    constraints on or above the turned bones is solved against its evaluated
    parents (:func:`solve_through_constraints`).  Returns the action.
    """
    switches = switch_to_fk(arm_obj)
    if needs_evaluated_solve(arm_obj, rig, motion):
        motion = solve_through_constraints(arm_obj, rig, motion)
    return animation.write_bone_motion(arm_obj, rig, motion, frame_start=frame_start, frames=frames,
                                       action_name=action_name, constants=dict.fromkeys(switches, 1.0))


def bake_deform_bones(arm_obj, frames, action_name: str = "rigcast_baked") -> tuple[bpy.types.Action, int]:
    """Replace ``arm_obj``'s action by one keying only its deform bones with the pose Blender evaluates now.

    For a rig animated through controls (Rigify): per scene frame of
    ``frames`` (T,), each deform bone's evaluated ``pose_bone.matrix`` M is
    read; then every pose bone goes back to rest, the deform bones' own
    constraints are removed (they would override the keys), and each deform
    bone is keyed with ``matrix_basis = (P @ rest_relative)^-1 @ M``, P being
    its parent's matrix as it will evaluate: the baked M of a deform parent,
    else the parent's pose with no action (its own constraints still acting).
    Location, rotation (quaternion) and scale are keyed, as constraints may
    stretch.  Returns the new action and the number of bones baked.
    """
    scene = bpy.context.scene
    frames = np.asarray(frames, dtype=np.float64)
    pose_bones = arm_obj.pose.bones
    deform = [pb for pb in pose_bones if pb.bone.use_deform]
    if not deform:
        raise RigcastError(f"armature {arm_obj.name!r} has no deform bones to bake")
    index = {pb.name: k for k, pb in enumerate(deform)}
    baked = np.empty((len(frames), len(deform), 4, 4))
    for t, frame in enumerate(frames):
        scene.frame_set(int(round(frame)))
        for k, pb in enumerate(deform):
            baked[t, k] = np.array(pb.matrix)
    anim = arm_obj.animation_data
    if anim is not None:
        anim.action = None
    for pb in pose_bones:
        pb.rotation_mode = 'QUATERNION'
        pb.location = (0.0, 0.0, 0.0)
        pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
        pb.scale = (1.0, 1.0, 1.0)
    for pb in deform:
        for c in list(pb.constraints):
            pb.constraints.remove(c)
    bpy.context.view_layer.update()
    writer = animation.ActionWriter(arm_obj, action_name)
    for k, pb in enumerate(deform):
        bone = pb.bone
        rest_relative = np.array(bone.matrix_local)
        if bone.parent is not None:
            rest_relative = np.linalg.inv(np.array(bone.parent.matrix_local)) @ rest_relative
            parent = (baked[:, index[bone.parent.name]] if bone.parent.name in index
                      else np.broadcast_to(np.array(pose_bones[bone.parent.name].matrix), baked.shape[:1] + (4, 4)))
            basis = np.linalg.inv(parent @ rest_relative) @ baked[:, k]
        else:
            basis = np.linalg.inv(rest_relative) @ baked[:, k]
        location, quat, scale = animation.decompose(basis)
        path = f'pose.bones["{bpy.utils.escape_identifier(pb.name)}"]'
        writer.write(f"{path}.location", frames, location, group=pb.name)
        writer.write(f"{path}.rotation_quaternion", frames, quat, group=pb.name)
        writer.write(f"{path}.scale", frames, scale, group=pb.name)
    return writer.action, len(deform)
