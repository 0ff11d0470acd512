"""Other skeletons made from real mocap: fewer joints, extra joints, other names, other joint frames.

Each helper returns a new :class:`BvhClip` built from a real clip's world joint rotations (file axes, Y-up), so
the new skeleton moves as the real one did.  All of them go through :func:`clip_from_world`, which writes every
joint with ``Zrotation Xrotation Yrotation`` channels (the root with positions too) in depth-first order.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from rigcast.formats.bvh import POSITION_CHANNELS, BvhClip
from rigcast.retarget.rotations import shortest_arc

ROTATION = ("Zrotation", "Xrotation", "Yrotation")


def clip_from_world(names, parents, offsets: np.ndarray, world: np.ndarray, root_xyz: np.ndarray,
                    end_sites: np.ndarray, frame_time: float) -> BvhClip:
    """A clip whose joints turn by the world rotations ``world`` (T, J, 3, 3), each measured from a rest whose
    joint frames are the file's axes, with ``offsets`` (J, 3) and the first root at ``root_xyz`` (T, 3).

    Local rotations are ``L = W_parent^T @ W``.  Joints are written parents first, depth first.
    """
    parents = list(parents)
    children = {j: [c for c, p in enumerate(parents) if p == j] for j in range(len(names))}
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in children[j]:
            visit(c)

    for root in (j for j, p in enumerate(parents) if p < 0):
        visit(root)
    new = {j: i for i, j in enumerate(order)}
    columns = []
    for j in order:
        p = parents[j]
        local = world[:, j] if p < 0 else np.swapaxes(world[:, p], -1, -2) @ world[:, j]
        if p < 0:
            columns.append(root_xyz)
        columns.append(Rotation.from_matrix(local).as_euler("ZXY", degrees=True))
    return BvhClip(joint_names=tuple(names[j] for j in order),
                   parents=tuple(new[parents[j]] if parents[j] >= 0 else -1 for j in order),
                   offsets=np.asarray(offsets)[order],
                   channels=tuple((POSITION_CHANNELS + ROTATION) if parents[j] < 0 else ROTATION for j in order),
                   end_sites=np.asarray(end_sites)[order], frame_time=frame_time,
                   motion=np.concatenate(columns, axis=1))


def _root_xyz(clip: BvhClip) -> np.ndarray:
    _, pos = clip.world_transforms()
    return pos[:, clip.parents.index(-1)]


def keep_joints(clip: BvhClip, keep: dict[str, str]) -> BvhClip:
    """Only the joints named in ``keep`` (old name -> new name), each under its nearest kept ancestor.

    A kept joint turns in the world as it did (its local rotation is ``inv(parent world) @ world`` with the kept
    parent); its offset is the difference of the two joints' rest positions.  Joints dropped in between turned
    on their own, so the new skeleton's positions differ slightly from the original's (a few cm where CMU's
    ``LowerBack``/``Spine`` or clavicles moved): the new clip is its own source, compared with itself.  A kept
    joint left without kept children ends at its first original child (or its own End Site).
    """
    names = clip.joint_names
    missing = [n for n in keep if n not in names]
    if missing:
        raise KeyError(f"the clip has no joints {missing}")
    kept = [j for j in range(clip.num_joints) if names[j] in keep]
    rest = clip.rest_positions()
    world, _ = clip.world_transforms()

    def kept_parent(j: int) -> int:
        p = clip.parents[j]
        while p >= 0 and p not in kept:
            p = clip.parents[p]
        return p

    parents = [kept.index(kept_parent(j)) if kept_parent(j) >= 0 else -1 for j in kept]
    offsets = np.array([rest[j] - rest[kept_parent(j)] if kept_parent(j) >= 0 else clip.offsets[j] for j in kept])
    end_sites = np.full((len(kept), 3), np.nan)
    for i, j in enumerate(kept):
        if i in parents:
            continue
        first_child = next((c for c, p in enumerate(clip.parents) if p == j), None)
        end_sites[i] = clip.end_sites[j] if first_child is None else rest[first_child] - rest[j]
    return clip_from_world([keep[names[j]] for j in kept], parents, offsets, world[:, kept], _root_xyz(clip),
                           end_sites, clip.frame_time)


def with_extra_joints(clip: BvhClip, extras: list[tuple[str, str, tuple[float, float, float], str | None]]
                      ) -> BvhClip:
    """``clip`` with joints added that never turn: ``(name, parent, offset, child)``.

    With ``child`` None the new joint is a leaf (a twist helper, a face joint) at ``offset`` from its parent,
    ending 1 file unit further along it; else it is put in the chain between ``parent`` and ``child`` at
    ``offset``, the child's offset shortened by as much (``offset`` equal to the child's own gives a zero-length
    child, as in rigs with roll or socket joints on a chain).  Every original joint moves as before.
    """
    names = list(clip.joint_names)
    parents = list(clip.parents)
    offsets = [np.array(o) for o in clip.offsets]
    ends = [np.array(e) for e in clip.end_sites]
    world, _ = clip.world_transforms()
    worlds = [world[:, j] for j in range(clip.num_joints)]
    for name, parent, offset, child in extras:
        p = names.index(parent)
        offset = np.asarray(offset, dtype=np.float64)
        names.append(name)
        parents.append(p)
        offsets.append(offset)
        worlds.append(worlds[p])  # zero local rotation: the parent's world rotation
        if child is None:
            ends.append(offset / max(np.linalg.norm(offset), 1e-9))
        else:
            c = names.index(child)
            if parents[c] != p:
                raise ValueError(f"{child!r} is not a child of {parent!r}")
            parents[c] = len(names) - 1
            offsets[c] = offsets[c] - offset
            ends.append(np.full(3, np.nan))
    return clip_from_world(names, parents, np.array(offsets), np.stack(worlds, axis=1), _root_xyz(clip),
                           np.array(ends), clip.frame_time)


def reframed(clip: BvhClip, frames: np.ndarray) -> BvhClip:
    """The same motion with each joint's frame turned by ``frames`` (J, 3, 3): world rotations ``W @ Q``,
    offsets ``Q_parent^T @ offset`` and End Sites ``Q^T @ end``, so every joint is where it was on every frame.

    Only the rest changes: at zero rotation the joints lie along the turned offsets, a pose that means
    nothing (random frames: joint frames scrambled; frames that lay each offset along x: Bandai-Namco-style).
    """
    world, _ = clip.world_transforms()
    q = np.asarray(frames, dtype=np.float64)
    offsets = np.array([o if p < 0 else q[p].T @ o for o, p in zip(clip.offsets, clip.parents)])
    ends = np.einsum("jki,jk->ji", q, np.nan_to_num(clip.end_sites))  # Q^T e (q[j].T @ e)
    ends[~np.all(np.isfinite(clip.end_sites), axis=1)] = np.nan
    return clip_from_world(clip.joint_names, clip.parents, offsets, world @ q, _root_xyz(clip), ends,
                           clip.frame_time)


def random_frames(num_joints: int, seed: int = 7) -> np.ndarray:
    """(J, 3, 3) random rotations."""
    return Rotation.random(num_joints, random_state=seed).as_matrix()


def offsets_along_x(clip: BvhClip) -> np.ndarray:
    """(J, 3, 3) joint frames that put each joint's offset to its first child on its local +x, as Bandai-Namco-style
    exports store them (leaves: the End Site); a joint without either keeps the file's axes."""
    out = np.tile(np.eye(3), (clip.num_joints, 1, 1))
    for j in range(clip.num_joints):
        child = next((c for c, p in enumerate(clip.parents) if p == j and np.linalg.norm(clip.offsets[c]) > 1e-6),
                     None)
        v = clip.offsets[child] if child is not None else clip.end_sites[j]
        if np.all(np.isfinite(v)) and np.linalg.norm(v) > 1e-6:
            out[j] = shortest_arc(np.array([1.0, 0.0, 0.0]), v)  # Q @ x = v / |v|, so Q^T @ v = |v| x
    return out


def renamed(clip: BvhClip, rename) -> BvhClip:
    """``clip`` with every joint name passed through ``rename``."""
    from dataclasses import replace

    return replace(clip, joint_names=tuple(rename(n) for n in clip.joint_names))


def trimmed(clip: BvhClip, frames: int = 120) -> BvhClip:
    """The first ``frames`` frames of ``clip``."""
    return clip.with_motion(clip.motion[:frames])


def with_twist(clip: BvhClip, twists: dict[str, np.ndarray]) -> BvhClip:
    """``clip`` with joints turned further about their own bone: joint name -> (T,) degrees about the rest
    direction to its first child (or, where that sits on the joint, its first child's): ``L @ R(axis, angle)``,
    so the joint and everything below it turn about the bone as it lies on each frame.  Offsets are unchanged."""
    local = clip.local_rotations()
    for name, degrees in twists.items():
        j = clip.joint_names.index(name)
        rest = clip.rest_positions()
        down = j  # follow first children to the first one apart from the joint (CMU's Neck sits on Spine1)
        while np.linalg.norm(rest[down] - rest[j]) < 1e-6:
            down = next(c for c, p in enumerate(clip.parents) if p == down)
        axis = (rest[down] - rest[j]) / np.linalg.norm(rest[down] - rest[j])
        local[:, j] = local[:, j] @ Rotation.from_rotvec(np.radians(degrees)[:, None] * axis).as_matrix()
    world = np.empty_like(local)
    for j, p in enumerate(clip.parents):
        world[:, j] = local[:, j] if p < 0 else world[:, p] @ local[:, j]
    return clip_from_world(clip.joint_names, clip.parents, clip.offsets, world, _root_xyz(clip), clip.end_sites,
                           clip.frame_time)
