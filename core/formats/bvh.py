"""BVH (Biovision Hierarchy) motion files: reading, writing, and conversion to rigs and motions.

Legend: T frames, J joints, C channels (all joints' channels side by side).

A BVH file holds a HIERARCHY of joints (``OFFSET`` from the parent in the
parent's rest frame, ``CHANNELS`` naming the animated values, ``End Site``
offsets for leaves) and a MOTION table, one row of C numbers per frame.

Conventions kept here:

* Rest frames are axis-aligned with the file's world: a joint's rotation is
  relative to its parent's frame and zero rotation is the rest (OFFSET) pose.
* Rotation channels compose in the order listed, intrinsically:
  ``Zrotation Xrotation Yrotation`` means ``R = Rz @ Rx @ Ry`` (scipy's
  ``from_euler("ZXY", [z, x, y])`` with upper-case = intrinsic axes), degrees.
* Position channels are the joint's translation in its parent's frame,
  replacing OFFSET; for the root that is its absolute position (Blender's
  importer reads it so; OFFSET is then only the rest position).
* Files are Y-up, the character facing +Z; :func:`yup_to_zup` is the one
  place that turns them into Blender's Z-up, facing -Y.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..errors import InputError
from ..frames import as_fps
from ..retarget.rig import Motion, Rig, fk, world_to_local_rotations
from ..retarget.rotations import matrix_to_quat_wxyz

POSITION_CHANNELS = ("Xposition", "Yposition", "Zposition")
ROTATION_CHANNELS = ("Xrotation", "Yrotation", "Zrotation")
ROTATION_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


class BvhError(InputError):
    """A BVH file or clip is malformed."""


# Y-up (BVH: x left of a character facing +Z, y up, z forward) to Blender's
# Z-up (x, y, z) -> (x, -z, y): up y becomes z, the character's forward +Z
# becomes -Y, and x (the character's left) stays +X.  det = +1, a rotation;
# the same axes Blender's BVH importer uses (axis_forward='-Z', axis_up='Y').
YUP_TO_ZUP = np.array([[1.0, 0.0, 0.0],
                       [0.0, 0.0, -1.0],
                       [0.0, 1.0, 0.0]])


def yup_to_zup(xyz: np.ndarray) -> np.ndarray:
    """Points or directions (..., 3) from BVH's Y-up axes to Blender's Z-up axes."""
    return np.asarray(xyz) @ YUP_TO_ZUP.T


def zup_to_yup(xyz: np.ndarray) -> np.ndarray:
    """Points or directions (..., 3) from Blender's Z-up axes to BVH's Y-up axes (inverse of :func:`yup_to_zup`)."""
    return np.asarray(xyz) @ YUP_TO_ZUP


@dataclass(frozen=True, eq=False)
class BvhClip:
    """One BVH file's content, numbers in file units.  J joints, C channels, T frames.

    ``joint_names``/``parents`` (J,) in file (depth-first) order, -1 for roots;
    ``offsets`` (J, 3); ``channels``: per joint, its channel names in file
    order; ``end_sites`` (J, 3) End Site offsets, NaN for joints without one;
    ``frame_time`` seconds; ``motion`` (T, C).
    """

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    channels: tuple[tuple[str, ...], ...]
    end_sites: np.ndarray
    frame_time: float
    motion: np.ndarray

    def __post_init__(self) -> None:
        names = tuple(self.joint_names)
        parents = tuple(int(p) for p in self.parents)
        channels = tuple(tuple(c) for c in self.channels)
        object.__setattr__(self, "joint_names", names)
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "channels", channels)
        j = len(names)
        if j == 0:
            raise BvhError("a BVH clip needs at least one joint")
        if len(parents) != j or len(channels) != j:
            raise BvhError(f"parents and channels must have J={j} entries, got {len(parents)}, {len(channels)}")
        if len(set(names)) != j:
            raise BvhError("joint names must be unique")
        bad = [n for n in names if not n or re.search(r"\s", n)]
        if bad:
            raise BvhError(f"joint names must be non-empty without spaces, got {bad[:3]}")
        for i, p in enumerate(parents):
            if not (-1 <= p < i):
                raise BvhError(f"joint {names[i]!r}: parent {p} must come before it (depth-first order)")
        for i, ch in enumerate(channels):
            unknown = [c for c in ch if c not in POSITION_CHANNELS + ROTATION_CHANNELS]
            if unknown or len(set(ch)) != len(ch):
                raise BvhError(f"joint {names[i]!r}: bad channels {list(ch)}")
            rot = [c for c in ch if c in ROTATION_CHANNELS]
            if rot and len(rot) != 3:
                raise BvhError(f"joint {names[i]!r}: needs all three rotation channels or none, got {rot}")
        for attr in ("offsets", "end_sites"):
            a = np.array(getattr(self, attr), dtype=np.float64)
            if a.shape != (j, 3):
                raise BvhError(f"{attr} must be (J, 3) with J={j}, got {a.shape}")
            a.setflags(write=False)
            object.__setattr__(self, attr, a)
        m = np.array(self.motion, dtype=np.float64)
        c = sum(len(ch) for ch in channels)
        if m.ndim != 2 or m.shape[1] != c:
            raise BvhError(f"motion must be (T, C) with C={c} channels, got {m.shape}")
        if not np.all(np.isfinite(m)):
            raise BvhError("motion holds non-finite values")
        m.setflags(write=False)
        object.__setattr__(self, "motion", m)
        if not (self.frame_time > 0 and np.isfinite(self.frame_time)):
            raise BvhError(f"frame_time must be positive seconds, got {self.frame_time}")
        object.__setattr__(self, "frame_time", float(self.frame_time))

    @property
    def num_frames(self) -> int:
        return self.motion.shape[0]

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def fps(self) -> Fraction:
        return as_fps(1.0 / self.frame_time)

    def channel_start(self) -> np.ndarray:
        """(J,) column of each joint's first channel in ``motion``."""
        return np.concatenate([[0], np.cumsum([len(c) for c in self.channels])[:-1]]).astype(int)

    def rotation_order(self, joint: int) -> str | None:
        """Axis order of a joint's rotation channels, e.g. ``"ZXY"``, or None without rotations."""
        order = "".join(c[0] for c in self.channels[joint] if c in ROTATION_CHANNELS)
        return order or None

    def local_rotations(self) -> np.ndarray:
        """(T, J, 3, 3) each joint's rotation in its parent's frame (identity without rotation channels)."""
        out = np.tile(np.eye(3), (self.num_frames, self.num_joints, 1, 1))
        start = self.channel_start()
        for j, ch in enumerate(self.channels):
            cols = [start[j] + k for k, c in enumerate(ch) if c in ROTATION_CHANNELS]
            if cols:
                out[:, j] = Rotation.from_euler(self.rotation_order(j), self.motion[:, cols], degrees=True).as_matrix()
        return out

    def local_translations(self) -> np.ndarray:
        """(T, J, 3) each joint's translation in its parent's frame: position channels where present, else OFFSET."""
        out = np.broadcast_to(self.offsets, (self.num_frames, self.num_joints, 3)).copy()
        start = self.channel_start()
        for j, ch in enumerate(self.channels):
            for k, c in enumerate(ch):
                if c in POSITION_CHANNELS:
                    out[:, j, POSITION_CHANNELS.index(c)] = self.motion[:, start[j] + k]
        return out

    def world_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame world rotations (T, J, 3, 3) and positions (T, J, 3), file axes and units."""
        rot_local, trans_local = self.local_rotations(), self.local_translations()
        rot = np.empty_like(rot_local)
        pos = np.empty_like(trans_local)
        for j, p in enumerate(self.parents):
            if p < 0:
                rot[:, j], pos[:, j] = rot_local[:, j], trans_local[:, j]
            else:
                rot[:, j] = rot[:, p] @ rot_local[:, j]
                pos[:, j] = pos[:, p] + np.einsum("tij,tj->ti", rot[:, p], trans_local[:, j])
        return rot, pos

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions in the rest (OFFSET) pose, file axes and units."""
        pos = np.zeros((self.num_joints, 3))
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] if p < 0 else pos[p] + self.offsets[j]
        return pos

    # --- conversions

    def auto_scale(self) -> float:
        """Metres per file unit guessed from the rest height: 1 under 3 units, 0.01 over 50, else 1.7 m / height."""
        pts = self.rest_positions()
        ends = pts + self.end_sites
        pts = np.concatenate([pts, ends[np.all(np.isfinite(ends), axis=1)]])
        height = float(np.ptp(pts[:, 1])) or 1.0
        if height < 3.0:
            return 1.0
        if height > 50.0:
            return 0.01
        return 1.7 / height

    def to_rig(self, name: str = "bvh", scale: float | None = None) -> Rig:
        """A rig with one bone per joint, from the rest offsets, in Blender's Z-up metres.

        Each bone runs from its joint to its child with the largest subtree
        (the spine, for the hips) or its End Site; a zero-length bone points
        along its parent, 5 % of the skeleton's height long.  Roll 0.
        """
        scale = self.auto_scale() if scale is None else float(scale)
        head = yup_to_zup(self.rest_positions()) * scale
        ends = yup_to_zup(self.end_sites) * scale
        size = [1] * self.num_joints
        for j in reversed(range(self.num_joints)):
            if self.parents[j] >= 0:
                size[self.parents[j]] += size[j]
        children = {j: [c for c, p in enumerate(self.parents) if p == j] for j in range(self.num_joints)}
        height = max(float(np.ptp(head[:, 2])), 1e-3)
        tail = np.empty_like(head)
        for j in range(self.num_joints):
            options = sorted(children[j], key=lambda c: -size[c])
            vectors = [head[c] - head[j] for c in options]
            if np.all(np.isfinite(ends[j])):
                vectors.append(ends[j])
            vec = next((v for v in vectors if np.linalg.norm(v) > 1e-4 * height), None)
            if vec is None:
                p = self.parents[j]
                along = tail[p] - head[p] if p >= 0 else np.array([0.0, 0.0, 1.0])
                vec = 0.05 * height * along / np.linalg.norm(along)
            tail[j] = head[j] + vec
        return Rig.from_heads_tails(name, self.joint_names, self.parents, head, tail)

    def to_rig_motion(self, name: str = "bvh", scale: float | None = None) -> tuple[Rig, Motion]:
        """The rig (see :meth:`to_rig`) and its motion: pose-bone quaternions (T, J, 4), root location (T, 3).

        BVH world rotations W (Y-up) are changes from the axis-aligned rest, so
        in Blender's axes the bone's world change is ``D = M @ W @ M^T`` (M =
        YUP_TO_ZUP) and its armature-space orientation ``D @ R_rest``; pose-bone
        rotations follow from :func:`rigcast.retarget.rig.world_to_local_rotations`.
        The first root's position becomes the location of bone 0:
        ``L = R_rest^T (position - rest_head)``.
        """
        scale = self.auto_scale() if scale is None else float(scale)
        rig = self.to_rig(name, scale)
        rot, pos = self.world_transforms()
        delta = YUP_TO_ZUP @ rot @ YUP_TO_ZUP.T
        world = delta @ rig.rest_matrix[:, :3, :3]
        local = world_to_local_rotations(rig, world)
        roots = [j for j, p in enumerate(self.parents) if p < 0]
        translations = self.local_translations()
        moving = [self.joint_names[j] for j in range(self.num_joints)
                  if j != roots[0] and self.num_frames and np.ptp(translations[:, j], axis=0).max() > 1e-9]
        if moving:
            warnings.warn(f"BVH position channels of {moving[:5]} vary but only the root's translation is kept",
                          RuntimeWarning, stacklevel=2)
        root_world = yup_to_zup(pos[:, roots[0]]) * scale
        translation = (root_world - rig.head_xyz[roots[0]]) @ rig.rest_matrix[roots[0], :3, :3]
        motion = Motion(local_quat_wxyz=matrix_to_quat_wxyz(local, orthonormal=True), root_translation=translation,
                        root_bone=roots[0], fps=self.fps).with_continuous_signs()
        return rig, motion

    @classmethod
    def from_rig_motion(cls, rig: Rig, motion: Motion, *, frame_time: float | None = None,
                        rotation_order: str = "ZXY", scale: float = 100.0) -> "BvhClip":
        """A BVH clip of ``motion`` on ``rig``: joints at bone heads, End Sites at leaf tails.

        ``scale`` file units per metre (100: centimetres).  Rotations per joint
        are ``L = W_parent^T @ W`` with ``W = M^T @ D @ M`` the change since rest
        in Y-up axes and ``D = pose_rotation @ R_rest^T`` in Blender's.
        ``frame_time`` defaults to 1 / motion.fps (1/30 when unknown).
        """
        if rotation_order not in ROTATION_ORDERS:
            raise BvhError(f"rotation_order must be one of {ROTATION_ORDERS}, got {rotation_order!r}")
        motion.check(rig)
        if frame_time is None:
            frame_time = 1.0 / float(motion.fps) if motion.fps else 1.0 / 30.0
        order = list(rig.order)  # depth-first, parents first
        new_index = {b: i for i, b in enumerate(order)}
        parents = tuple(new_index[rig.parents[b]] if rig.parents[b] >= 0 else -1 for b in order)
        head_y = zup_to_yup(rig.head_xyz[order]) * scale
        offsets = np.array([head_y[i] - head_y[p] if p >= 0 else head_y[i] for i, p in enumerate(parents)])
        leaves = {b for b in order if not rig.children(b)}
        end_sites = np.array([zup_to_yup(rig.tail_xyz[b] - rig.head_xyz[b]) * scale if b in leaves
                              else np.full(3, np.nan) for b in order])
        rot_names = tuple(f"{a}rotation" for a in rotation_order)
        channels = tuple((POSITION_CHANNELS + rot_names) if p < 0 else rot_names for p in parents)

        pose = fk(rig, motion)
        delta = pose[:, order, :3, :3] @ np.swapaxes(rig.rest_matrix[order, :3, :3], -1, -2)
        world = YUP_TO_ZUP.T @ delta @ YUP_TO_ZUP
        columns = []
        for i, p in enumerate(parents):
            local = world[:, i] if p < 0 else np.swapaxes(world[:, p], -1, -2) @ world[:, i]
            angles = Rotation.from_matrix(local).as_euler(rotation_order, degrees=True)
            if p < 0:
                columns.append(zup_to_yup(pose[:, order[i], :3, 3]) * scale)
            columns.append(angles)
        return cls(joint_names=tuple(rig.bone_names[b] for b in order), parents=parents, offsets=offsets,
                   channels=channels, end_sites=end_sites, frame_time=frame_time, motion=np.concatenate(columns, 1))

    def with_motion(self, motion: np.ndarray) -> "BvhClip":
        return replace(self, motion=motion)


# --------------------------------------------------------------------------- text


def parse_bvh(text: str) -> BvhClip:
    """A :class:`BvhClip` from BVH text."""
    tokens = text.split()
    pos = 0

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise BvhError("BVH text ends early")
        pos += 1
        return tokens[pos - 1]

    def expect(word: str) -> None:
        got = take()
        if got.upper() != word.upper():
            raise BvhError(f"BVH: expected {word!r}, found {got!r} (token {pos})")

    def numbers(n: int) -> list[float]:
        try:
            return [float(take()) for _ in range(n)]
        except ValueError:
            raise BvhError(f"BVH: expected {n} numbers near token {pos}") from None

    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    ends: list[list[float]] = []

    def joint(parent: int) -> None:
        names.append(take())
        parents.append(parent)
        me = len(names) - 1
        offsets.append([0.0, 0.0, 0.0])
        channels.append(())
        ends.append([np.nan] * 3)
        expect("{")
        while True:
            word = take()
            key = word.upper()
            if key == "OFFSET":
                offsets[me] = numbers(3)
            elif key == "CHANNELS":
                try:
                    n = int(take())
                except ValueError:
                    raise BvhError(f"BVH: bad channel count for joint {names[me]!r}") from None
                channels[me] = tuple(take() for _ in range(n))
            elif key == "JOINT":
                joint(me)
            elif key == "END":
                expect("Site")
                expect("{")
                expect("OFFSET")
                ends[me] = numbers(3)
                expect("}")
            elif key == "}":
                return
            else:
                raise BvhError(f"BVH: unexpected {word!r} in joint {names[me]!r}")

    expect("HIERARCHY")
    while pos < len(tokens) and tokens[pos].upper() == "ROOT":
        take()
        joint(-1)
    expect("MOTION")
    expect("Frames:")
    try:
        num_frames = int(take())
    except ValueError:
        raise BvhError("BVH: bad frame count") from None
    expect("Frame")
    expect("Time:")
    frame_time = numbers(1)[0]
    width = sum(len(c) for c in channels)
    values = tokens[pos:]
    if len(values) != num_frames * width:
        raise BvhError(f"BVH: MOTION must hold Frames x channels = {num_frames} x {width} numbers, "
                       f"found {len(values)}")
    try:
        motion = np.array(values, dtype=np.float64).reshape(num_frames, width)
    except ValueError:
        raise BvhError("BVH: MOTION holds something that is not a number") from None
    return BvhClip(joint_names=tuple(names), parents=tuple(parents), offsets=np.array(offsets).reshape(-1, 3),
                   channels=tuple(channels), end_sites=np.array(ends).reshape(-1, 3), frame_time=frame_time,
                   motion=motion)


def read_bvh(path: str | Path) -> BvhClip:
    """Read a BVH file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise BvhError(f"cannot read BVH file {path}: {e}") from None
    return parse_bvh(text)


_NEGATIVE_ZERO = re.compile(r"(?<![\d.])-(0\.0+)(?![\d])")


def _fmt(values: np.ndarray, precision: int) -> str:
    return _NEGATIVE_ZERO.sub(r"\1", " ".join(f"{v:.{precision}f}" for v in values))


def format_bvh(clip: BvhClip, precision: int = 6) -> str:
    """BVH text for ``clip``, numbers with ``precision`` decimals (tabs indent, one frame per line)."""
    lines = ["HIERARCHY"]
    children = {j: [c for c, p in enumerate(clip.parents) if p == j] for j in range(clip.num_joints)}

    def joint(j: int, depth: int) -> None:
        pad = "\t" * depth
        lines.append(f"{pad}{'ROOT' if clip.parents[j] < 0 else 'JOINT'} {clip.joint_names[j]}")
        lines.append(pad + "{")
        lines.append(f"{pad}\tOFFSET {_fmt(clip.offsets[j], precision)}")
        if clip.channels[j]:
            lines.append(f"{pad}\tCHANNELS {len(clip.channels[j])} {' '.join(clip.channels[j])}")
        for c in children[j]:
            joint(c, depth + 1)
        if np.all(np.isfinite(clip.end_sites[j])):
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{", f"{pad}\t\tOFFSET {_fmt(clip.end_sites[j], precision)}",
                          f"{pad}\t}}"])
        lines.append(pad + "}")

    for root in (j for j, p in enumerate(clip.parents) if p < 0):
        joint(root, 0)
    lines += ["MOTION", f"Frames: {clip.num_frames}", f"Frame Time: {clip.frame_time!r}"]
    lines += [_fmt(row, precision) for row in clip.motion]
    return "\n".join(lines) + "\n"


def write_bvh(clip: BvhClip, path: str | Path, precision: int = 6) -> None:
    """Write ``clip`` as a BVH file."""
    Path(path).write_text(format_bvh(clip, precision), encoding="utf-8")
