"""``rigcast retarget``: a Take or mocap clip -> motion on a rig -> BVH, FBX, .blend or glTF (.glb/.gltf).

    rigcast retarget INPUT -o OUT [--rig RIG] [--map PRESET|auto|MAP.json] [--track ID]
                     [--foot-lock auto|always|never|grounding]
                     [--source-rest auto|zero|tpose|FRAME] [--target-rest zero|tpose|FRAME] [--bake]

INPUT is a Take (``.npz``), a BVH clip, an AMASS/SMPL ``.npz`` or an animated
``.fbx``/``.blend``; RIG a ``.bvh``, ``.fbx`` or ``.blend`` whose rest pose is
the target (rigcast's default armature without ``--rig``); OUT's extension
picks the writer.  BVH and AMASS in and BVH out are pure numpy; FBX, .blend
and glTF go through Blender as a Python module (``bpy``), imported
lazily from the add-on package ``rigcast_blender`` only when one is asked for,
so importing this module never pulls in bpy.

The helpers below (:func:`take_source`, :func:`in_armature_space`,
:func:`resolve_bone_map`) are shared with the Blender add-on's Apply.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import InputError, RigcastError
from .bone_map import BoneMap, detect_bone_map, load_preset, preset_names
from .canonical import (BONE_NAMES, CanonicalPose, canonical_from_track, head_rotation_from_face, rest_pose_kind,
                        rig_markers)
from .contact import FOOT_LOCK_MODES
from .rest import motion_onto_rig, parse_rest, resolve_rest, rest_matrices, rig_with_rest
from .rig import Motion, Rig, default_rig
from .solve import RetargetOptions, RetargetWarning, retarget, source_from_rig

RIG_SUFFIXES = (".bvh", ".fbx", ".blend")
OUT_SUFFIXES = (".bvh", ".fbx", ".blend", ".glb", ".gltf")


# --------------------------------------------------------------------------- sources


def head_rotation_for_track(take, track) -> np.ndarray | None:
    """Head rotations (T, 3, 3) for ``track`` from the first face linked to it, NaN on frames without one.

    None when no face is linked.  Face frames are matched to the track's by
    frame index.
    """
    faces = [f for f in take.faces if f.body_id == track.track_id and f.num_frames]
    if not faces:
        return None
    face = faces[0]
    out = np.full((track.num_frames, 3, 3), np.nan)
    pos = np.searchsorted(face.frame_index, track.frame_index)
    pos = np.minimum(pos, face.num_frames - 1)
    hit = face.frame_index[pos] == track.frame_index
    out[hit] = head_rotation_from_face(face.rotation[pos[hit]].astype(np.float64))
    return out


def pick_track(take, track_id: int | None):
    """The track ``track_id`` of ``take``, or its longest track when None."""
    if not take.tracks:
        raise InputError("the take has no body tracks to retarget")
    if track_id is None:
        return max(take.tracks, key=lambda t: (t.num_frames, -t.track_id))
    try:
        return take.track(int(track_id))
    except KeyError:
        raise InputError(f"the take has no track {track_id}; its tracks are "
                         f"{[t.track_id for t in take.tracks]}") from None


def take_source(take, track_id: int | None = None, *, use_face: bool = True, points: str = "track"
                ) -> tuple[CanonicalPose, object]:
    """The retarget source of one Take track (Z-up world, floor at Z = 0, first pelvis at the origin) and the track.

    A face linked to the track (``Face.body_id``) supplies the head rotation.  ``points`` picks the 3D points:
    ``"track"`` (the track's own), or the name of a lift stored in the Take (``"lift"``: ``rigcast lift``).
    """
    track = pick_track(take, track_id)
    if points != "track":
        try:
            track = take.as_lifted_track(track.track_id, points)
        except KeyError:
            raise InputError(f"track {track.track_id} has no {points!r} lift (run `rigcast lift`); the take's "
                             f"lifts are {[(lf.source, lf.track_id) for lf in take.lifts]}") from None
    pose = canonical_from_track(track, fps=take.video.fps)
    head = head_rotation_for_track(take, track) if use_face else None
    if head is not None:
        pose = pose.with_head_rotation(head)
    return pose, track


def in_armature_space(pose: CanonicalPose, matrix_world: np.ndarray | None) -> CanonicalPose:
    """``pose`` (world) seen from an armature object whose ``matrix_world`` is (4, 4); None means identity.

    Points go through the inverse matrix (scale included, so a rig in
    centimetres gets centimetres).  Head rotations H are relative to a neutral
    head facing -Y of the *armature*: the head's world orientation H @ N must
    equal A @ H_arm @ N for the object's rotation A, so H_arm = A^T @ H.
    Segment rotations are changes, so they are conjugated: A^T @ D @ A.
    """
    if matrix_world is None:
        return pose
    m = np.asarray(matrix_world, dtype=np.float64)
    if m.shape != (4, 4):
        raise RigcastError(f"matrix_world must be (4, 4), got {m.shape}")
    if np.allclose(m, np.eye(4)):
        return pose
    inv = np.linalg.inv(m)
    xyz = pose.xyz @ inv[:3, :3].T + inv[:3, 3]
    out = pose.with_xyz(xyz)
    if pose.rest_xyz is not None:
        out = replace(out, rest_xyz=pose.rest_xyz @ inv[:3, :3].T + inv[:3, 3])
    u, _, vt = np.linalg.svd(m[:3, :3])  # the rotation part, scale removed
    rot = u @ vt
    if pose.head_rotation is not None:
        out = out.with_head_rotation(rot.T @ pose.head_rotation)
    if pose.segment_rotation is not None:
        # A world rotation D seen from the armature is A^T @ D @ A.
        out = out.with_segment_rotation(rot.T @ pose.segment_rotation @ rot)
    if pose.finger_rotation is not None:
        out = replace(out, finger_rotation=rot.T @ pose.finger_rotation @ rot, finger_rest=pose.finger_rest @ rot)
    return out


def bvh_source(path: str | Path, rest: str | int | None = "auto") -> tuple[CanonicalPose, str]:
    """The retarget source of a BVH clip: its rig's canonical points through FK, and a description.

    ``rest``: the rest its joint frames are measured from (see :func:`rigcast.retarget.rest.parse_rest`).
    """
    from ..formats.bvh import read_bvh

    path = Path(path)
    rig, motion = read_bvh(path).to_rig_motion(name=path.stem)
    return rig_source(rig, motion, f"BVH {path.name}", rest=rest)


def rest_text(rig: Rig, indices: dict[str, int]) -> str:
    """Which rest ``rig`` stands in, as ``T-pose (upper arms 2 deg below horizontal)``."""
    kind, angle = rest_pose_kind(rig_markers(rig, indices).rest_xyz(rig))
    return f"{kind} (upper arms {angle:.0f} deg below horizontal)"


def rested_rig(rig: Rig, indices: dict[str, int], rest: str | int | None, motion: Motion | None,
               option: str) -> tuple[Rig, str]:
    """``rig`` resting where ``rest`` says, and a description of the rest found and the rest used."""
    found = rest_text(rig, indices)
    rest, reason = resolve_rest(rig, indices, parse_rest(rest, option), motion)
    chosen = rest_matrices(rig, indices, rest, motion, option)
    if chosen is None:
        return rig, found
    rested = rig_with_rest(rig, chosen)
    what = "a T-pose" if rest == "tpose" else f"frame {rest}"
    if reason is not None:
        return rested, (f"{found}, no standing pose ({reason}); joint frames measured from {what}, the clip's "
                        f"median pose, instead: {rest_text(rested, indices)}")
    return rested, f"{found}; {option} measures from {what} instead: {rest_text(rested, indices)}"


def rig_source(rig: Rig, motion: Motion, what: str, matrix_world: np.ndarray | None = None,
               rest: str | int | None = "auto") -> tuple[CanonicalPose, str]:
    """The retarget source of an animated rig (its bone map detected), in world space, and a description.

    ``rest``: ``auto`` (the rig's own, or its median pose where that is no standing pose), ``zero`` (the
    rig's own), ``tpose`` or a frame number: the rest
    its joint frames (``segment_rotation``) are measured from.
    """
    bone_map, report = detect_bone_map(rig, motion=motion)
    if "hips" not in bone_map.bones:
        raise InputError(f"{what}: cannot tell which joint is the hips; found {report.method}")
    indices = bone_map.indices(rig)
    rested, rest_found = rested_rig(rig, indices, rest, motion, "--source-rest")
    pose = source_from_rig(rig, motion, bone_map, rest_rig=rested)
    fingers = 0 if pose.finger_rest is None else int(np.all(np.isfinite(pose.finger_rest), axis=1).sum())
    if matrix_world is not None:
        pose = in_armature_space(pose, np.linalg.inv(np.asarray(matrix_world, dtype=np.float64)))
    return pose, (f"{what}: {rig.num_bones} joints, {motion.num_frames} frames"
                  f"{f' @ {float(motion.fps):.3f} fps' if motion.fps else ''}, read through {report.method} "
                  f"({len(bone_map.bones)}/{len(BONE_NAMES)} canonical bones, {fingers} finger bones); rest: "
                  f"{rest_found}" + "".join(f"\n  note: {n}" for n in report.notes))


def load_source(path: str | Path, track_id: int | None = None, rest: str | int | None = "auto",
                points: str = "track") -> tuple[CanonicalPose, str]:
    """A retarget source from a Take, a BVH clip, an AMASS/SMPL .npz or an animated .fbx/.blend, with a description.

    An .npz holding ``poses`` and ``trans`` is read as AMASS/SMPL (:mod:`rigcast.formats.amass`), else as a Take.

    ``rest`` (``--source-rest``) applies to animation files; a Take's points have no joint frames to measure.
    ``points`` (``--source``) picks a Take track's own 3D points or a stored lift (see :func:`take_source`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".bvh", ".fbx", ".blend") and track_id is not None:
        raise InputError("--track applies to Takes, not animation files")
    if points != "track" and (suffix != ".npz"):
        raise InputError(f"--source {points} applies to Takes, not {suffix or 'extensionless'} files")
    if suffix == ".bvh":
        return bvh_source(path, rest)
    if suffix in (".fbx", ".blend"):
        rig, motion, world = blender_io(f"reading {suffix} animation").load_animation(path)
        return rig_source(rig, motion, f"{suffix[1:].upper()} {path.name}", world, rest=rest)
    from ..formats.amass import is_amass, read_amass

    if suffix == ".npz" and is_amass(path):
        if points != "track":
            raise InputError(f"--source {points} applies to Takes, not AMASS/SMPL archives")
        if track_id is not None:
            raise InputError("--track applies to Takes, not AMASS/SMPL archives")
        rig, motion, info = read_amass(path)
        return rig_source(rig, motion, f"AMASS/SMPL {path.name} ({info})", rest=rest)
    if parse_rest(rest) not in ("auto", "zero"):
        raise InputError(f"--source-rest applies to animation files (.bvh, .fbx, .blend, AMASS .npz); a Take's "
                         f"points have no joint frames, got --source-rest {rest}")
    from ..formats.take import Take

    take = Take.load(path)
    pose, track = take_source(take, track_id, points=points)
    face = " with head rotation from its face" if pose.head_rotation is not None else ""
    return pose, (f"take {path.name}: track {track.track_id} ({track.skeleton.name}, {track.num_frames} frames "
                  f"@ {float(take.video.fps):.3f} fps){face}"
                  + (f", points from its {points!r} lift" if points != "track" else ""))


# --------------------------------------------------------------------------- rigs and maps


def blender_io(what: str):
    """The add-on's headless I/O module, or a RigcastError saying how to get Blender as a Python module.

    Core itself never imports bpy: the add-on package does, and only when a .fbx or .blend is involved.
    """
    from importlib.util import find_spec

    if find_spec("bpy") is None:
        raise RigcastError(f"{what} needs Blender as a Python module: pip install rigcast[blender]")
    try:
        from rigcast_blender import headless_io
    except ImportError as e:
        raise RigcastError(f"{what} needs rigcast's Blender package (rigcast_blender), which is not importable: "
                           f"{e}") from None
    return headless_io


def load_rig(path: str | Path | None) -> tuple[Rig, np.ndarray | None, str]:
    """The target rig, its armature object's world matrix (None for identity) and a description."""
    if path is None:
        rig = default_rig()
        return rig, None, f"rigcast default armature ({rig.num_bones} bones)"
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in RIG_SUFFIXES:
        raise InputError(f"--rig must be one of {', '.join(RIG_SUFFIXES)}, got {path.name}")
    if not path.is_file():
        raise InputError(f"rig not found: {path}")
    if suffix == ".bvh":
        from ..formats.bvh import read_bvh

        rig = read_bvh(path).to_rig(name=path.stem)
        return rig, None, f"{path.name}: rest pose of {rig.num_bones} joints"
    rig, world = blender_io(f"reading {suffix} rigs").load_rig(path)
    return rig, world, f"{path.name}: armature {rig.name!r}, {rig.num_bones} bones"


def load_rig_motion(path: str | Path | None, rig: Rig) -> Motion:
    """The animation a target rig file carries (for ``--target-rest FRAME``), on the bones of ``rig``."""
    if path is None:
        raise InputError("--target-rest FRAME needs a --rig file with animation; rigcast's armature has none")
    path = Path(path)
    if path.suffix.lower() == ".bvh":
        from ..formats.bvh import read_bvh

        _, motion = read_bvh(path).to_rig_motion(name=path.stem)
    else:
        animated, motion, _ = blender_io(f"reading {path.suffix} animation").load_animation(path)
        if animated.bone_names != rig.bone_names:
            raise InputError(f"{path.name}: the animated armature is not the rig's ({animated.num_bones} bones, "
                             f"the rig has {rig.num_bones})")
    return motion


def resolve_bone_map(spec: str | None, rig: Rig) -> tuple[BoneMap, str]:
    """The bone map for ``--map``: ``auto`` (or None) detects, a preset name loads it, a ``.json`` path reads it.

    Returns the map (names as spelled in the rig) and how it was found.
    """
    if spec is None or spec == "auto":
        bone_map, report = detect_bone_map(rig)
        return bone_map, str(report)
    if spec.lower().endswith(".json") or Path(spec).is_file():
        path = Path(spec)
        return BoneMap.load(path).resolve(rig), f"bone map file {path}"
    if spec in preset_names():
        return load_preset(spec).resolve(rig), f"preset {spec}"
    raise InputError(f"--map must be auto, a preset ({', '.join(preset_names())}) or a .json file, got {spec!r}")


def describe_map(bone_map: BoneMap, rig: Rig) -> str:
    """The map as 'canonical <- rig bone' lines, then the canonical bones the rig lacks."""
    lines = [f"  {c:<12} <- {b}" for c, b in bone_map.bones.items()]
    missing = bone_map.missing(rig)
    lines.append(f"  not found on the rig: {', '.join(missing)}" if missing else "  every canonical bone found")
    return "\n".join(lines)


# --------------------------------------------------------------------------- output


def check_output(out: str | Path, rig_path: str | Path | None, bake: bool = False) -> Path:
    """``out`` as a Path once its extension (and ``--bake``'s need of a .fbx/.blend rig) is checked."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise InputError(f"-o must end in one of {', '.join(OUT_SUFFIXES)}, got {out.name}")
    if bake and (suffix == ".bvh" or rig_path is None or Path(rig_path).suffix.lower() == ".bvh"):
        raise InputError(f"--bake bakes a .fbx/.blend --rig's deform bones into a .fbx, .blend or glTF output; "
                         f"got -o {out.name} with --rig {Path(rig_path).name if rig_path else '(none)'}")
    return out


def write_output(out: str | Path, rig: Rig, motion: Motion, rig_path: str | Path | None, bake: bool = False
                 ) -> Path:
    """Write ``motion`` on ``rig`` to ``out``: BVH with core's writer, FBX/.blend/glTF through Blender.

    ``bake``: key the deform bones' evaluated pose instead of the controls (Blender outputs only).
    """
    out = check_output(out, rig_path, bake)
    suffix = out.suffix.lower()
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".bvh":
        from ..formats.bvh import BvhClip, write_bvh

        write_bvh(BvhClip.from_rig_motion(rig, motion), out)
        return out
    blender_io(f"writing {suffix}").write_animation(out, rig, motion, rig_path=rig_path, bake=bake)
    return out


# --------------------------------------------------------------------------- command


def add_retarget_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``retarget`` to an argparse ``subparsers``; returns the new parser."""
    r = subparsers.add_parser("retarget", help="a Take or mocap clip → animation on a rig (BVH, FBX, .blend, glTF)",
                              description=__doc__.split("\n\n")[0])
    r.add_argument("input", help="a Take (.npz), a BVH clip, an AMASS/SMPL .npz (poses, trans), or an animated "
                                 ".fbx/.blend")
    r.add_argument("-o", "--output", required=True, help="file to write: .bvh, .fbx, .blend, .glb or .gltf")
    r.add_argument("--rig", help="target rig: .fbx, .blend or .bvh (its rest pose); default: rigcast's armature")
    r.add_argument("--map", default="auto",
                   help="bone map: auto (detect), a preset name or a .json map file (default auto)")
    r.add_argument("--save-map", metavar="MAP.json",
                   help="also write the bone map used (detected, preset or file) as JSON, for --map or the add-on")
    r.add_argument("--track", type=int, help="track id of a Take (default: its longest track)")
    r.add_argument("--source", default="track",
                   help="a Take track's 3D points: track (its own, default) or a stored lift's name, e.g. lift "
                        "(from `rigcast lift`)")
    r.add_argument("--foot-lock", choices=FOOT_LOCK_MODES, default="auto", help="foot contact handling (default auto)")
    r.add_argument("--source-rest", default="auto",
                   help="the rest the source's joint frames are measured from: auto (the file's own, or its median "
                        "pose where that is no standing pose; default), zero (the file's own), tpose (arms out, "
                        "legs down) or a frame number")
    r.add_argument("--target-rest", default="zero",
                   help="the rest the rig's rotations are solved from: zero (its own, default), tpose or a frame "
                        "number of the --rig file's animation; the output is keyed on the rig's own rest")
    r.add_argument("--bake", action="store_true",
                   help="for rigs animated through controls (Rigify): key the deform bones' evaluated pose "
                        "instead of the controls, their constraints removed (.fbx/.blend/glTF output)")
    r.set_defaults(func=cmd_retarget)
    return r


def cmd_retarget(args: argparse.Namespace) -> int:
    """Run ``rigcast retarget``; prints the source, rig, bone map, what was solved, and the file written."""
    check_output(args.output, args.rig, args.bake)
    pose, source_text = load_source(args.input, args.track, args.source_rest, points=args.source)
    print(f"source: {source_text}")
    rig, world, rig_text = load_rig(args.rig)
    bone_map, how = resolve_bone_map(args.map, rig)
    target_rest = parse_rest(args.target_rest, "--target-rest")
    rig_motion = load_rig_motion(args.rig, rig) if isinstance(target_rest, int) else None
    solve_rig, rig_rest = rested_rig(rig, bone_map.indices(rig), target_rest, rig_motion, "--target-rest")
    print(f"rig: {rig_text}; rest: {rig_rest}")
    print(f"bone map: {how.splitlines()[0] if args.map in (None, 'auto') else how}")
    print(describe_map(bone_map, rig))
    if args.save_map:
        try:
            bone_map.save(args.save_map)
        except OSError as e:
            raise InputError(f"--save-map: cannot write {args.save_map}: {e.strerror or e}") from None
        print(f"wrote the bone map to {args.save_map}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RetargetWarning)
        motion, report = retarget(in_armature_space(pose, world), solve_rig, bone_map,
                                  options=RetargetOptions(foot_lock=args.foot_lock), return_report=True)
    if solve_rig is not rig:
        motion = motion_onto_rig(solve_rig, motion, rig)
    for w in caught:
        if not issubclass(w.category, RetargetWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    print(report)
    out = write_output(args.output, rig, motion, args.rig, bake=args.bake)
    baked = " (deform bones baked)" if args.bake else ""
    print(f"wrote {out}: {motion.num_frames} frames on {rig.num_bones} bones{baked}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m rigcast.retarget.cli ...``: the command on its own (the ``rigcast`` CLI wires the same parser)."""
    parser = argparse.ArgumentParser(prog="rigcast")
    add_retarget_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["retarget", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except RigcastError as exc:
        print(f"rigcast: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
