"""Solid figures for rendered overlays: capsules along bones (the ``skeleton`` overlay) and the mannequin asset.

Legend: B bones, P parts, V vertices, F triangles.

Both are meshes whose every vertex belongs to exactly one bone of rigcast's
armature (``bone (V,)``), so the Blender layer skins them rigidly (one vertex
group per bone, weight 1) and they follow the retargeted animation.  Faces are
counter-clockwise seen from outside.

The mannequin (``assets/mannequin/mannequin.npz``, made by
``tools/make_mannequin.py``) is a wooden artist's mannequin: rounded capsules
per body segment whose ends overlap at the joints, in the rest pose of
``retarget.default_rig(MANNEQUIN_HEIGHT_M)``.  ``default_rig(h)`` scales every
joint by ``h / 1.75``, so :meth:`Mannequin.vertices_for_height` scales the
vertices by the same factor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..model_store import assets_dir
from .render import TRACK_RGB

MANNEQUIN_HEIGHT_M = 1.75
"""The height the mannequin asset is built at (``default_rig``'s default)."""

SKELETON_RADIUS_FRACTION = 0.12
SKELETON_RADIUS_RANGE_M = (0.012, 0.035)
"""Skeleton capsules: radius a fraction of the bone's length, clipped to this range."""

def track_rgb(track_id: int) -> tuple[float, float, float]:
    """sRGB 0..1 colour of a body track: the OpenCV overlay's skeleton colour (``TRACK_RGB``)."""
    return tuple(c / 255.0 for c in TRACK_RGB[int(track_id) % len(TRACK_RGB)])


def _frame(axis: np.ndarray) -> np.ndarray:
    """(3, 3) columns u, v, w: an orthonormal frame whose w is ``axis`` (unit)."""
    w = axis / np.linalg.norm(axis)
    helper = np.array([1.0, 0.0, 0.0]) if abs(w[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(helper, w)
    u /= np.linalg.norm(u)
    return np.stack([u, np.cross(w, u), w], axis=1)


def capsule(start, end, radius_start: float, radius_end: float | None = None, sides: int = 12,
            rings: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A closed capsule from ``start`` to ``end`` (3,): vertices (V, 3), triangles (F, 3).

    Hemispherical caps of ``radius_start`` / ``radius_end`` (a cone frustum
    between them), ``sides`` around, ``rings`` per cap.  A zero-length axis
    gives a sphere.
    """
    start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
    r0 = float(radius_start)
    r1 = r0 if radius_end is None else float(radius_end)
    axis = end - start
    length = float(np.linalg.norm(axis))
    basis = _frame(axis if length > 1e-9 else np.array([0.0, 0.0, 1.0]))
    # Profile (z along the axis, ring radius) from the start pole to the end pole, poles excluded.
    phi = np.linspace(-np.pi / 2, 0.0, rings + 1)[1:]
    profile = [(r0 * np.sin(p), r0 * np.cos(p)) for p in phi]
    profile += [(length + r1 * np.sin(p), r1 * np.cos(p)) for p in -phi[::-1]]
    angles = 2 * np.pi * np.arange(sides) / sides
    ring_xy = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    local = [np.array([[0.0, 0.0, -r0]])]
    local += [np.column_stack([ring_xy * rad, np.full(sides, z)]) for z, rad in profile]
    local.append(np.array([[0.0, 0.0, length + r1]]))
    vertices = start + np.concatenate(local) @ basis.T

    n_rings = len(profile)
    ring = lambda k: 1 + k * sides + np.arange(sides)  # noqa: E731  (vertex ids of ring k)
    nxt = lambda ids: np.roll(ids, -1)  # noqa: E731
    last = 1 + n_rings * sides
    faces = [np.column_stack([np.zeros(sides, int), nxt(ring(0)), ring(0)])]
    for k in range(n_rings - 1):
        a, b = ring(k), ring(k + 1)
        faces += [np.column_stack([a, nxt(a), nxt(b)]), np.column_stack([a, nxt(b), b])]
    top = ring(n_rings - 1)
    faces.append(np.column_stack([top, nxt(top), np.full(sides, last)]))
    return vertices, np.concatenate(faces).astype(np.int32)


def merge_parts(parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate ``(bone_index, vertices (V, 3), triangles (F, 3))`` parts: vertices, triangles, bone (V,)."""
    vertices, faces, bones, offset = [], [], [], 0
    for bone, v, f in parts:
        vertices.append(v)
        faces.append(f + offset)
        bones.append(np.full(len(v), bone, np.int32))
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(faces).astype(np.int32), np.concatenate(bones)


def bone_capsules(heads: np.ndarray, tails: np.ndarray, sides: int = 10,
                  rings: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Skeleton capsules, one per bone from head (B, 3) to tail (B, 3): vertices, triangles, bone (V,).

    Radius: ``SKELETON_RADIUS_FRACTION`` of the bone's length within
    ``SKELETON_RADIUS_RANGE_M``; the tail end is 70 % of the head end, so a
    bone's direction reads on screen.
    """
    heads, tails = np.asarray(heads, np.float64), np.asarray(tails, np.float64)
    if heads.shape != tails.shape or heads.ndim != 2 or heads.shape[1] != 3:
        raise InputError(f"bone heads and tails must both be (B, 3), got {heads.shape} and {tails.shape}")
    lengths = np.linalg.norm(tails - heads, axis=1)
    radii = np.clip(SKELETON_RADIUS_FRACTION * lengths, *SKELETON_RADIUS_RANGE_M)
    return merge_parts((b, *capsule(h, t, r, 0.7 * r, sides, rings)) for b, (h, t, r) in
                       enumerate(zip(heads, tails, radii)))


def default_mannequin_path() -> Path:
    return assets_dir() / "mannequin" / "mannequin.npz"


@dataclass(frozen=True, eq=False)
class Mannequin:
    """The default character: ``vertices`` (V, 3) metres in ``default_rig(height_m)``'s armature space, ``faces``
    (F, 3), ``bone`` (V,) index into ``bone_names`` (B,), ``color_rgb`` (3,) sRGB 0..1; the file stores ``height_m`` as (1,)."""

    vertices: np.ndarray
    faces: np.ndarray
    bone: np.ndarray
    bone_names: tuple[str, ...]
    color_rgb: np.ndarray
    height_m: float = MANNEQUIN_HEIGHT_M

    def __post_init__(self) -> None:
        v, f, b = self.vertices, self.faces, self.bone
        if v.ndim != 2 or v.shape[1] != 3:
            raise InputError(f"mannequin: vertices must be (V, 3), got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or (f.size and (f.min() < 0 or f.max() >= len(v))):
            raise InputError(f"mannequin: faces must be (F, 3) indices below {len(v)}, got {f.shape}")
        if b.shape != (len(v),) or (b.size and (b.min() < 0 or b.max() >= len(self.bone_names))):
            raise InputError(f"mannequin: bone must be ({len(v)},) indices below {len(self.bone_names)}, "
                             f"got {b.shape}")

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Mannequin":
        path = Path(path) if path is not None else default_mannequin_path()
        if not path.is_file():
            raise InputError(f"expected the mannequin asset at {path} (tools/make_mannequin.py writes it), found "
                             "nothing")
        with np.load(path, allow_pickle=False) as z:
            return cls(z["vertices"].astype(np.float64), z["faces"].astype(np.int32), z["bone"].astype(np.int32),
                       tuple(str(n) for n in z["bone_names"]), z["color"].astype(np.float64),
                       float(z["height_m"].reshape(-1)[0]))

    def vertices_for_height(self, height_m: float) -> np.ndarray:
        """(V, 3) vertices in the rest pose of ``default_rig(height_m)`` (a uniform scale of the asset's)."""
        return self.vertices * (float(height_m) / self.height_m)

    def without_bones(self, names) -> "Mannequin":
        """A new mannequin without the parts skinned to the bones ``names`` (their vertices and the faces using
        them), the same bone list: the headless render drops the head of a person whose face it draws."""
        unknown = sorted(set(names) - set(self.bone_names))
        if unknown:
            raise InputError(f"mannequin: no bones {unknown}; it has {list(self.bone_names)}")
        keep = ~np.isin(self.bone, [self.bone_names.index(n) for n in names])
        new_index = np.cumsum(keep) - 1
        faces = self.faces[np.all(keep[self.faces], axis=1)]
        return replace(self, vertices=self.vertices[keep], faces=new_index[faces].astype(self.faces.dtype),
                       bone=self.bone[keep])
