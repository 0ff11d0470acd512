"""Target rigs, poses on them, and forward kinematics, in Blender's conventions.

Legend: T frames, B bones.

Conventions (Blender's, so the add-on can pass arrays straight through):

* Armature space is Z-up, right-handed, metres; a character faces -Y and its
  left is +X.
* ``rest_matrix[b]`` is ``bone.matrix_local``: the bone's rest frame in
  armature space.  Its columns are the bone's local axes, Y running from head
  to tail, and its translation is the head.
* A pose is, per bone, ``matrix_basis``: the pose-bone transform relative to
  the rest frame, ``T(location) @ R(rotation_quaternion)`` (scale is 1).
* Forward kinematics (``pose_bone.matrix``, armature space)::

      pose[b] = pose[parent] @ (rest[parent]^-1 @ rest[b]) @ basis[b]
      pose[root] = rest[root] @ basis[root]

  ``rest[parent]^-1 @ rest[b]`` is the bone's rest transform in its parent's
  frame, the part of the chain that no pose changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from ..errors import RigcastError
from .rotations import axis_angle_matrix, continuous_quat, matrix_to_quat_wxyz, normalize, quat_wxyz_to_matrix


class RetargetError(RigcastError):
    """A rig, bone map or motion is malformed or does not fit its partner."""


# --------------------------------------------------------------------------- bone roll

# Blender's vec_roll_to_mat3_normalized (blenkernel/intern/armature.cc): the
# rotation taking +Y to the bone direction n = (x, y, z) about the axis Y x n,
# written without trigonometry with theta = 1 + y (= 1 + cos of the angle):
#     column X = (1 - x^2/theta, -x, -x z/theta)
#     column Y = (x, y, z)
#     column Z = (-x z/theta, -z, 1 - z^2/theta)
# followed by the roll, a rotation about n: M = R(n, roll) @ B.  Near n = -Y
# theta loses precision and is recomputed from x^2 + z^2 by the Taylor series
# of cos; at n = -Y exactly the answer is diag(-1, -1, 1).
_SAFE_THRESHOLD = 6.1e-3
_CRITICAL_THRESHOLD = 2.5e-4


def _zero_roll_matrix(direction: np.ndarray) -> np.ndarray:
    n = normalize(direction)
    x, y, z = n[..., 0], n[..., 1], n[..., 2]
    theta = 1.0 + y
    theta_alt = x * x + z * z
    regular = (theta > _SAFE_THRESHOLD) | (theta_alt > _CRITICAL_THRESHOLD ** 2)
    theta = np.where(theta <= _SAFE_THRESHOLD, theta_alt * 0.5 + theta_alt * theta_alt * 0.125, theta)
    theta = np.where(regular, theta, 1.0)
    b = np.stack([np.stack([1.0 - x * x / theta, x, -x * z / theta], -1),
                  np.stack([-x, y, -z], -1),
                  np.stack([-x * z / theta, z, 1.0 - z * z / theta], -1)], -2)
    return np.where(regular[..., None, None], b, np.diag([-1.0, -1.0, 1.0]))


def vec_roll_to_matrix(direction: np.ndarray, roll: np.ndarray | float = 0.0) -> np.ndarray:
    """Blender's bone rest rotation (..., 3, 3) for a head->tail ``direction`` (..., 3) and ``roll`` (...) radians."""
    b = _zero_roll_matrix(direction)
    return axis_angle_matrix(normalize(direction), np.broadcast_to(roll, b.shape[:-2])) @ b


def matrix_to_roll(rotation: np.ndarray) -> np.ndarray:
    """The roll (...) in radians of bone rest rotations (..., 3, 3): the inverse of :func:`vec_roll_to_matrix`.

    As in Blender's mat3_vec_to_roll: ``B(y)^T @ M`` is a pure rotation about
    Y by the roll, so roll = atan2(m02 - m20, m00 + m22).
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    r = np.swapaxes(_zero_roll_matrix(rotation[..., :, 1]), -1, -2) @ rotation
    return np.arctan2(r[..., 0, 2] - r[..., 2, 0], r[..., 0, 0] + r[..., 2, 2])


# --------------------------------------------------------------------------- Rig


def _topological_order(parents: tuple[int, ...]) -> tuple[int, ...]:
    children: dict[int, list[int]] = {}
    for b, p in enumerate(parents):
        children.setdefault(p, []).append(b)
    order: list[int] = []
    stack = list(reversed(children.get(-1, [])))
    while stack:
        b = stack.pop()
        order.append(b)
        stack.extend(reversed(children.get(b, [])))
    return tuple(order)


@dataclass(frozen=True, eq=False)
class Rig:
    """An armature's bones in their rest pose.  B bones.

    ``bone_names`` (B,) and ``parents`` (B,) (-1 for a root) in any order
    (Blender's ``armature.bones`` order is fine; parents need not come first).
    ``head_xyz`` and ``tail_xyz`` (B, 3) are rest head/tail in armature space
    (``bone.head_local``/``tail_local``), ``rest_matrix`` (B, 4, 4) is
    ``bone.matrix_local``.  They must agree: the matrix translation is the
    head and its Y column points at the tail.  ``driven``: names of bones whose
    evaluated pose ignores their own channels (a Rigify ``DEF-`` bone copying
    its tweak through a constraint); a bone map never uses them.
    """

    name: str
    bone_names: tuple[str, ...]
    parents: tuple[int, ...]
    head_xyz: np.ndarray
    tail_xyz: np.ndarray
    rest_matrix: np.ndarray
    order: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _rest_relative: np.ndarray = field(init=False, repr=False, compare=False)
    driven: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.bone_names)
        parents = tuple(int(p) for p in self.parents)
        object.__setattr__(self, "bone_names", names)
        object.__setattr__(self, "parents", parents)
        driven = frozenset(str(d) for d in self.driven)
        if driven - set(names):
            raise RetargetError(f"rig {self.name!r}: driven names bones it lacks {sorted(driven - set(names))[:5]}")
        object.__setattr__(self, "driven", driven)
        n = len(names)
        if n == 0:
            raise RetargetError(f"rig {self.name!r}: has no bones")
        if len(set(names)) != n:
            dupes = sorted({x for x in names if names.count(x) > 1})
            raise RetargetError(f"rig {self.name!r}: bone names must be unique, repeated {dupes}")
        if len(parents) != n:
            raise RetargetError(f"rig {self.name!r}: parents must be (B,) with B={n}, got {len(parents)}")
        for b, p in enumerate(parents):
            if not (-1 <= p < n) or p == b:
                raise RetargetError(f"rig {self.name!r}: bone {names[b]!r} has invalid parent index {p}")
        for attr, shape in (("head_xyz", (n, 3)), ("tail_xyz", (n, 3)), ("rest_matrix", (n, 4, 4))):
            a = np.array(getattr(self, attr), dtype=np.float64)
            if a.shape != shape:
                raise RetargetError(f"rig {self.name!r}: {attr} must be {shape}, got {a.shape}")
            if not np.all(np.isfinite(a)):
                raise RetargetError(f"rig {self.name!r}: {attr} has non-finite values")
            a.setflags(write=False)
            object.__setattr__(self, attr, a)
        order = _topological_order(parents)
        if len(order) != n:
            raise RetargetError(f"rig {self.name!r}: the parent table has a cycle")
        object.__setattr__(self, "order", order)
        rot = self.rest_matrix[:, :3, :3]
        if np.max(np.abs(rot @ np.swapaxes(rot, 1, 2) - np.eye(3))) > 1e-4 or np.any(np.linalg.det(rot) < 0):
            raise RetargetError(f"rig {self.name!r}: rest_matrix rotations must be orthonormal and right-handed")
        if np.max(np.abs(self.rest_matrix[:, 3] - [0, 0, 0, 1])) > 1e-9:
            raise RetargetError(f"rig {self.name!r}: rest_matrix bottom rows must be (0, 0, 0, 1)")
        bad = np.linalg.norm(self.rest_matrix[:, :3, 3] - self.head_xyz, axis=1) > 1e-4
        if np.any(bad):
            raise RetargetError(f"rig {self.name!r}: rest_matrix translation must equal head_xyz; differs for "
                                f"{[names[i] for i in np.flatnonzero(bad)][:5]}")
        bone_vec = self.tail_xyz - self.head_xyz
        length = np.linalg.norm(bone_vec, axis=1)
        if np.any(length < 1e-6):
            raise RetargetError(f"rig {self.name!r}: zero-length bones "
                                f"{[names[i] for i in np.flatnonzero(length < 1e-6)][:5]}")
        parent_rest = np.where(np.array(parents)[:, None, None] >= 0, self.rest_matrix[np.maximum(parents, 0)],
                               np.eye(4))
        relative = np.linalg.inv(parent_rest) @ self.rest_matrix
        relative.setflags(write=False)
        object.__setattr__(self, "_rest_relative", relative)
        cos = np.sum(bone_vec / length[:, None] * rot[:, :, 1], axis=1)
        if np.any(cos < np.cos(np.radians(0.5))):
            raise RetargetError(f"rig {self.name!r}: rest_matrix Y axis must point from head to tail; off for "
                                f"{[names[i] for i in np.flatnonzero(cos < np.cos(np.radians(0.5)))][:5]}")

    # --- constructors

    @classmethod
    def from_heads_tails(cls, name: str, bone_names, parents, head_xyz, tail_xyz, roll=None) -> "Rig":
        """A rig from edit-bone data: heads, tails (B, 3) and rolls (B,) in radians (Blender's roll convention)."""
        head = np.asarray(head_xyz, dtype=np.float64)
        tail = np.asarray(tail_xyz, dtype=np.float64)
        roll = np.zeros(len(head)) if roll is None else np.asarray(roll, dtype=np.float64)
        if head.shape != tail.shape or head.ndim != 2 or head.shape[1] != 3 or roll.shape != head.shape[:1]:
            raise RetargetError(f"rig {name!r}: head/tail must be (B, 3) and roll (B,), got {head.shape}, "
                                f"{tail.shape}, {roll.shape}")
        rest = np.tile(np.eye(4), (len(head), 1, 1))
        rest[:, :3, :3] = vec_roll_to_matrix(tail - head, roll)
        rest[:, :3, 3] = head
        return cls(name=name, bone_names=tuple(bone_names), parents=tuple(parents), head_xyz=head, tail_xyz=tail,
                   rest_matrix=rest)

    @classmethod
    def from_rest_matrices(cls, name: str, bone_names, parents, rest_matrix, length) -> "Rig":
        """A rig from ``bone.matrix_local`` (B, 4, 4) and ``bone.length`` (B,), as the Blender layer reads them."""
        rest = np.asarray(rest_matrix, dtype=np.float64)
        length = np.asarray(length, dtype=np.float64)
        if rest.ndim != 3 or rest.shape[1:] != (4, 4) or length.shape != rest.shape[:1]:
            raise RetargetError(f"rig {name!r}: rest_matrix must be (B, 4, 4) and length (B,), got {rest.shape}, "
                                f"{length.shape}")
        head = rest[:, :3, 3]
        return cls(name=name, bone_names=tuple(bone_names), parents=tuple(parents), head_xyz=head,
                   tail_xyz=head + rest[:, :3, 1] * length[:, None], rest_matrix=rest)

    # --- views

    @property
    def num_bones(self) -> int:
        return len(self.bone_names)

    @property
    def length(self) -> np.ndarray:
        """(B,) rest bone lengths."""
        return np.linalg.norm(self.tail_xyz - self.head_xyz, axis=1)

    @property
    def roll(self) -> np.ndarray:
        """(B,) rest bone rolls in radians (Blender's convention)."""
        return matrix_to_roll(self.rest_matrix[:, :3, :3])

    @property
    def rest_relative(self) -> np.ndarray:
        """(B, 4, 4) ``rest[parent]^-1 @ rest[b]`` (``rest[b]`` for roots): each bone's rest in its parent's frame."""
        return self._rest_relative

    def index(self, bone_name: str) -> int:
        try:
            return self.bone_names.index(bone_name)
        except ValueError:
            raise RetargetError(f"rig {self.name!r} has no bone {bone_name!r}") from None

    def children(self, b: int) -> list[int]:
        return [c for c, p in enumerate(self.parents) if p == b]

    def ancestors(self, b: int) -> list[int]:
        """Parent, grandparent, ... of bone ``b``."""
        out = []
        p = self.parents[b]
        while p >= 0:
            out.append(p)
            p = self.parents[p]
        return out

    def descendants(self, b: int) -> list[int]:
        out, stack = [], self.children(b)
        while stack:
            c = stack.pop()
            out.append(c)
            stack.extend(self.children(c))
        return out

    def with_name(self, name: str) -> "Rig":
        return replace(self, name=name)

    def with_bone_names(self, bone_names) -> "Rig":
        """The same rig with its bones renamed, (B,) names in the same order."""
        rename = dict(zip(self.bone_names, bone_names))
        return replace(self, bone_names=tuple(bone_names), driven=frozenset(rename[d] for d in self.driven))

    def with_driven(self, driven) -> "Rig":
        """The same rig with ``driven`` (bone names) marked as driven by constraints."""
        return replace(self, driven=frozenset(driven))


# --------------------------------------------------------------------------- Motion


@dataclass(frozen=True, eq=False)
class Motion:
    """A pose per frame on a rig.  T frames, B bones.

    ``local_quat_wxyz`` (T, B, 4): each pose bone's ``rotation_quaternion``,
    the rotation part of ``matrix_basis`` (relative to the bone's rest frame).
    ``root_translation`` (T, 3): the ``location`` of bone ``root_bone`` (its
    ``matrix_basis`` translation, in that bone's rest frame, metres); every
    other bone's location is zero.  ``contact`` (T, 2) [left, right] foot
    contact flags when known.  ``fps`` when known.
    """

    local_quat_wxyz: np.ndarray
    root_translation: np.ndarray
    root_bone: int = 0
    contact: np.ndarray | None = None
    fps: Fraction | None = None

    def __post_init__(self) -> None:
        q = np.array(self.local_quat_wxyz, dtype=np.float64)
        if q.ndim != 3 or q.shape[2] != 4:
            raise RetargetError(f"local_quat_wxyz must be (T, B, 4), got {q.shape}")
        t = np.array(self.root_translation, dtype=np.float64)
        if t.shape != (q.shape[0], 3):
            raise RetargetError(f"root_translation must be (T, 3) with T={q.shape[0]}, got {t.shape}")
        if not (0 <= int(self.root_bone) < max(q.shape[1], 1)):
            raise RetargetError(f"root_bone must index one of the B={q.shape[1]} bones, got {self.root_bone}")
        norm = np.linalg.norm(q, axis=-1)
        if np.any(~np.isfinite(norm)) or np.any(np.abs(norm - 1.0) > 1e-3):
            raise RetargetError("local_quat_wxyz must hold finite unit quaternions")
        for a in (q, t):
            a.setflags(write=False)
        object.__setattr__(self, "local_quat_wxyz", q)
        object.__setattr__(self, "root_translation", t)
        object.__setattr__(self, "root_bone", int(self.root_bone))
        if self.contact is not None:
            c = np.array(self.contact, dtype=bool)
            if c.shape != (q.shape[0], 2):
                raise RetargetError(f"contact must be (T, 2) with T={q.shape[0]}, got {c.shape}")
            c.setflags(write=False)
            object.__setattr__(self, "contact", c)

    @classmethod
    def rest(cls, rig: Rig, num_frames: int, root_bone: int = 0) -> "Motion":
        """``num_frames`` frames of the rest pose."""
        q = np.zeros((num_frames, rig.num_bones, 4))
        q[..., 0] = 1.0
        return cls(local_quat_wxyz=q, root_translation=np.zeros((num_frames, 3)), root_bone=root_bone)

    @property
    def num_frames(self) -> int:
        return self.local_quat_wxyz.shape[0]

    @property
    def num_bones(self) -> int:
        return self.local_quat_wxyz.shape[1]

    def check(self, rig: Rig) -> None:
        """Raise unless this motion has one track per bone of ``rig``."""
        if self.num_bones != rig.num_bones:
            raise RetargetError(f"motion has B={self.num_bones} bones, rig {rig.name!r} has {rig.num_bones}")

    def local_matrix(self) -> np.ndarray:
        """(T, B, 4, 4) ``matrix_basis`` of every bone."""
        m = np.zeros(self.local_quat_wxyz.shape[:2] + (4, 4))
        m[..., :3, :3] = quat_wxyz_to_matrix(self.local_quat_wxyz)
        m[..., 3, 3] = 1.0
        m[:, self.root_bone, :3, 3] = self.root_translation
        return m

    def with_continuous_signs(self) -> "Motion":
        """The same motion with quaternion signs chosen so no component flips between frames."""
        return replace(self, local_quat_wxyz=continuous_quat(self.local_quat_wxyz))

    def with_contact(self, contact: np.ndarray | None) -> "Motion":
        return replace(self, contact=contact)

    def select(self, frames: np.ndarray | slice) -> "Motion":
        """A motion holding only ``frames`` (an index array, mask or slice over T)."""
        return replace(self, local_quat_wxyz=self.local_quat_wxyz[frames],
                       root_translation=self.root_translation[frames],
                       contact=None if self.contact is None else self.contact[frames])


def fk(rig: Rig, motion: Motion) -> np.ndarray:
    """Armature-space pose matrices (T, B, 4, 4), Blender's ``pose_bone.matrix``.

    ``pose[b] = pose[parent] @ rest_relative[b] @ basis[b]`` in parents-first
    order; vectorised over frames, looping over bones.
    """
    motion.check(rig)
    basis = motion.local_matrix()
    # Bones never posed (basis = identity every frame) skip a product.
    still = np.all(motion.local_quat_wxyz[..., 0] ** 2 > 1.0 - 1e-15, axis=0)
    still[motion.root_bone] = False
    rel = rig.rest_relative
    out = np.empty_like(basis)
    for b in rig.order:
        p = rig.parents[b]
        local = rel[b] if still[b] else rel[b] @ basis[:, b]
        out[:, b] = local if p < 0 else out[:, p] @ local
    return out


def motion_from_pose(rig: Rig, pose: np.ndarray, *, root_bone: int | None = None, fps: Fraction | None = None,
                     contact: np.ndarray | None = None) -> Motion:
    """A Motion on ``rig`` from armature-space pose matrices (T, B, 4, 4): :func:`fk` inverted.

    ``pose[b] = pose[parent] @ rest_relative[b] @ basis[b]`` gives
    ``basis[b] = (pose[parent] @ rest_relative[b])^-1 @ pose[b]`` (``rest_relative[b]^-1 @ pose[b]`` for a
    root).  Rotations are re-orthonormalised (Blender's pose matrices are float32).  Only ``root_bone``'s
    location is kept (the first root by default): a Motion moves one bone.
    """
    pose = np.asarray(pose, dtype=np.float64)
    rel = rig.rest_relative
    basis = np.empty_like(pose)
    for b in range(rig.num_bones):
        p = rig.parents[b]
        carrier = rel[b] if p < 0 else pose[:, p] @ rel[b]
        basis[:, b] = np.linalg.inv(carrier) @ pose[:, b]
    u, _, vt = np.linalg.svd(basis[..., :3, :3])
    root = rig.order[0] if root_bone is None else int(root_bone)
    return Motion(local_quat_wxyz=matrix_to_quat_wxyz(u @ vt, orthonormal=True),
                  root_translation=basis[:, root, :3, 3], root_bone=root, contact=contact,
                  fps=fps).with_continuous_signs()


def world_to_local_rotations(rig: Rig, world_rotation: np.ndarray) -> np.ndarray:
    """Pose-bone rotations (T, B, 3, 3) (``matrix_basis``) that give armature-space rotations (T, B, 3, 3).

    The input holds, per frame, every bone's wanted ``pose_bone.matrix``
    rotation Q_world (parents included: a parent's entry is what the child's
    solve was carried by).  See the derivation in the body.
    """
    # Blender chains a pose bone as
    #     pose_world[b] = pose_world[p] @ (p.matrix_local^-1 @ b.matrix_local) @ b.matrix_basis
    # where (p.matrix_local^-1 @ b.matrix_local) = R_rest_rel[b] is the bone's rest in its
    # parent's frame, fixed by the armature.  Solving for the pose-bone transform:
    #     b.matrix_basis = (pose_world[p] @ R_rest_rel[b])^-1 @ pose_world[b]
    #     q_local = (P_world @ R_rest_rel)^-1 @ Q_world = R_rest_rel^T @ P_world^T @ Q_world
    # (rotation parts only: translations do not change rotations, and every
    # inverse of a rotation is its transpose).  A root has P_world = I and
    # R_rest_rel = b.matrix_local, so q_local = R_rest^T @ Q_world.
    world_rotation = np.asarray(world_rotation, dtype=np.float64)
    rel = rig.rest_relative[:, :3, :3]
    out = np.empty_like(world_rotation)
    for b in range(rig.num_bones):
        p = rig.parents[b]
        parent = np.eye(3) if p < 0 else world_rotation[:, p]
        out[:, b] = rel[b].T @ np.swapaxes(parent, -1, -2) @ world_rotation[:, b]
    return out


# --------------------------------------------------------------------------- default armature

# Rest proportions of rigcast's own armature, a 1.75 m adult in a T-pose,
# standing on Z = 0, facing -Y, left = +X (segment lengths follow Drillis and
# Contini's fractions of stature, rounded).  Straight limbs.
_DEFAULT_JOINTS = {
    "pelvis": (0.0, 0.0, 0.96), "spine": (0.0, 0.01, 1.06), "chest": (0.0, 0.0, 1.24), "neck": (0.0, 0.01, 1.47),
    "head": (0.0, 0.015, 1.56), "head_end": (0.0, 0.015, 1.76),
    "clavicle": (0.02, -0.01, 1.43), "shoulder": (0.18, 0.01, 1.43), "elbow": (0.46, 0.01, 1.43),
    "wrist": (0.71, 0.01, 1.43), "hand_end": (0.80, 0.01, 1.43),
    "hip": (0.09, 0.0, 0.92), "knee": (0.09, 0.0, 0.50), "ankle": (0.09, 0.03, 0.08),
    "toe": (0.09, -0.10, 0.02), "toe_end": (0.09, -0.17, 0.02),
}


def default_rig(height: float = 1.75) -> Rig:
    """rigcast's own armature, one bone per canonical bone, named as the canonical bones.

    A T-pose of a ``height``-metre adult on Z = 0 facing -Y, roll 0 except
    the limbs, whose X axes are set to Blender's bend axis (elbows and knees
    hinge about +-X).  Used when no target rig is given.
    """
    j = {k: np.array(v) * (height / 1.75) for k, v in _DEFAULT_JOINTS.items()}
    mirror = np.array([-1.0, 1.0, 1.0])

    def side(point: str, sign: str) -> np.ndarray:
        return j[point] if sign == "L" else j[point] * mirror

    bones: list[tuple[str, str | None, np.ndarray, np.ndarray]] = [
        ("hips", None, j["pelvis"], j["spine"]),
        ("spine", "hips", j["spine"], j["chest"]),
        ("chest", "spine", j["chest"], j["neck"]),
        ("neck", "chest", j["neck"], j["head"]),
        ("head", "neck", j["head"], j["head_end"]),
    ]
    for s in ("L", "R"):
        bones += [
            (f"shoulder.{s}", "chest", side("clavicle", s), side("shoulder", s)),
            (f"upper_arm.{s}", f"shoulder.{s}", side("shoulder", s), side("elbow", s)),
            (f"lower_arm.{s}", f"upper_arm.{s}", side("elbow", s), side("wrist", s)),
            (f"hand.{s}", f"lower_arm.{s}", side("wrist", s), side("hand_end", s)),
            (f"thigh.{s}", "hips", side("hip", s), side("knee", s)),
            (f"shin.{s}", f"thigh.{s}", side("knee", s), side("ankle", s)),
            (f"foot.{s}", f"shin.{s}", side("ankle", s), side("toe", s)),
            (f"toes.{s}", f"foot.{s}", side("toe", s), side("toe_end", s)),
        ]
    names = [b[0] for b in bones]
    parents = [-1 if b[1] is None else names.index(b[1]) for b in bones]
    head = np.array([b[2] for b in bones])
    tail = np.array([b[3] for b in bones])
    # Roll: arms get X pointing up (+Z), so elbows hinge about local X as
    # knees do (legs already have X = +X at roll 0); everything else roll 0.
    roll = np.zeros(len(bones))
    for i, n in enumerate(names):
        if n.startswith(("upper_arm", "lower_arm", "hand")):
            zero_roll = vec_roll_to_matrix(tail[i] - head[i], 0.0)
            want_x = np.array([0.0, 0.0, 1.0])
            roll[i] = np.arctan2(np.dot(np.cross(zero_roll[:, 0], want_x), zero_roll[:, 1]),
                                 np.dot(zero_roll[:, 0], want_x))
    return Rig.from_heads_tails("rigcast", names, parents, head, tail, roll)
