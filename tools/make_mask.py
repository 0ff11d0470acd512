#!/usr/bin/env python3
"""Generate the medical (surgical) mask overlay asset from the canonical face.

    .venv/bin/python tools/make_mask.py [--out assets/mask]

Writes, deterministically (byte-identical on every run):

* ``medical_mask.npz`` -- the mesh rigcast draws (no pickled objects):
  ``vertices`` (V, 3) float32 canonical metres; ``faces`` (F, 3) int32,
  counter-clockwise seen from outside; ``uv`` (V, 2) float32 (OpenGL/Blender
  convention, origin bottom-left); ``part`` (F,) uint8 (0 body, 1 ear loop);
  ``colors`` (2, 3) float32 sRGB 0..1 per part; ``shade`` (F,) float32
  baked occlusion 0..1 (darker in the pleats' folds); ``deform_weight`` (V,)
  float32, how much of the non-rigid jaw correction a vertex takes (1 on the
  body, fading to 0 where the loops hook behind the ears); ``anchor_names``
  (A,) unicode; ``anchor_landmark_ids`` (A,) int32 canonical landmark ids;
  ``anchor_face`` (A,) int32 and ``anchor_bary`` (A, 3) float32, the body
  point straight in front of each landmark (along +z) as a triangle and its
  barycentric coordinates; ``anchor_xyz`` (A, 3) float32, that point;
  ``anchor_landmark_xyz`` (A, 3) float32, the landmarks' canonical positions.
* ``medical_mask.glb`` -- the same mesh for Blender: two meshes (mask_body,
  ear_loops) with their UVs and a PBR colour each (glTF linear colour).
* ``mask.json`` -- provenance: generator, parameters, counts, clearance and
  the sha256 of both files.

Frame: the canonical face of ``assets/models/canonical_face.npz`` converted
from centimetres to metres, axes unchanged (x towards the viewer's right, y
up, z out of the face towards the viewer; the nose tip, landmark 4, has the
largest z).  That is also glTF's frame (+Y up, front faces +Z), so the .glb
needs no axis change.  A head pose (x_cam = R @ x_canonical + t) places the
mask directly.

How the body is built:

1. Take the face points below the eyes plus "under-jaw" points (the jaw
   contour moved down and back) and form their convex hull.  A real mask is
   a drape: it spans from the nose tip to the chin and from the nose to the
   cheeks instead of dipping into the lips, which is what a convex hull does.
2. Cast rays from a vertical axis behind the face (x = 0, z = AXIS_Z) on a
   grid of angles (cheek to cheek) and heights (nose bridge to below the
   chin, the edges following a surgical mask's outline) and keep each ray's
   exit point from the hull (exact: half-space clipping).  Where the ray also
   meets the face (Möller-Trumbore against the canonical mesh) the drape
   stands at most MAX_STANDOFF_M off it, so the mask follows the face
   loosely instead of tenting far in front of the mouth corners.
3. Smooth how far out the drape lies along each ray (never inwards, which
   would cut into the nose), push the sheet out along its normals by OFFSET_M
   plus three sawtooth pleats (the zig-zag profile of a folded mask),
   tapering the pleats where the side binding presses them flat, and bake a
   darker shade into each fold's underside and the band below it.
4. UVs are normalised arc lengths along the grid's rows and columns.

Ear loops are thin tubes along Catmull-Rom curves from each side's top
corner over and behind the ear root to its bottom corner.  Their UVs are
their own 0..1 strip (u along the loop, v around the tube) in the loop
material, separate from the body's 0..1 square.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "assets" / "mask"
CANONICAL_FACE = REPO_ROOT / "assets" / "models" / "canonical_face.npz"
GENERATOR = "tools/make_mask.py"
FORMAT = 1

# -- parameters (metres, radians) ---------------------------------------------
AXIS_Z = -0.025  # the ray-casting axis: vertical, through (0, y, AXIS_Z)
SIDE_ANGLE = np.radians(86.0)  # the body spans [-SIDE_ANGLE, SIDE_ANGLE] around the axis
COLUMNS = 41
OFFSET_M = 0.005  # clearance from the drape
MAX_STANDOFF_M = 0.010  # the drape stands at most this far off the face before the offset
PLEATS = 3
PLEAT_DEPTH_M = 0.004  # outward step at each pleat's fold
PLEAT_ZONE = (0.2, 0.8)  # pleated part of the body's height, as a fraction top -> bottom
FOLD_SHADE = (0.55, 0.75)  # baked occlusion of a fold's underside and of the band below it
SMOOTH_CELLS = 2.0  # Gaussian smoothing of the drape's distance along the rays, in grid cells
TOP_CENTRE_Y, TOP_SIDE_Y, TOP_FALLOFF = 0.027, 0.010, np.radians(25.0)  # top edge: nose bridge, under the eyes
BOTTOM_CENTRE_Y, BOTTOM_SIDE_Y = -0.110, -0.045  # bottom edge: under the chin, rising to the jaw angle
UNDER_JAW_SHIFT = np.array([0.0, -0.025, -0.025])  # jaw contour -> under-jaw hull points
HULL_MAX_Y = 0.030  # face points above this (eyes, forehead) are not part of the drape
LOOP_RADIUS_M = 0.0015
LOOP_SIDES = 6
LOOP_SAMPLES = 40
# Loop path on the subject's left (+x) side after the top corner, before the
# bottom corner: over the ear root, behind the ear, under the lobe (mirrored for -x).
LOOP_VIA = np.array([[0.080, 0.022, -0.045], [0.082, 0.010, -0.085], [0.080, -0.025, -0.080],
                     [0.077, -0.040, -0.045]])
BODY_RGB = (0.55, 0.77, 0.90)  # light surgical blue, sRGB
LOOP_RGB = (0.96, 0.96, 0.96)  # white elastic, sRGB

# Jaw contour from the subject's right ear, round the chin, to the left ear (MediaPipe ids).
JAW_CONTOUR = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288, 361, 323,
               454)
# Anchors: subject's own left/right, as MediaPipe names its eyes (33, the right eye, is at x < 0).
# The mouth corners (61, 291) sit in the hollow the drape spans, too far behind it to anchor it.
ANCHORS = (("nose_bridge", 6), ("nose_tip", 4), ("lower_lip", 17), ("chin", 152), ("cheek_right", 147),
           ("cheek_left", 376), ("jaw_right", 150), ("jaw_left", 379))


def load_canonical(path: Path = CANONICAL_FACE) -> tuple[np.ndarray, np.ndarray]:
    """Canonical face (468, 3) in metres and its triangles (F, 3)."""
    with np.load(path, allow_pickle=False) as d:
        xyz = d["xyz"].astype(np.float64) / 100.0  # centimetres -> metres
        triangles = d["triangles"].astype(np.int64)
    if xyz.shape != (468, 3) or int(np.argmax(xyz[:, 2])) != 4 or not xyz[10, 1] > 0 > xyz[152, 1]:
        raise SystemExit(f"{path}: expected MediaPipe's canonical face (y up, z towards the viewer, nose tip 4 "
                         f"frontmost), found shape {xyz.shape}, frontmost landmark {int(np.argmax(xyz[:, 2]))}")
    return xyz, triangles


# -- body ---------------------------------------------------------------------------------------------------------


def drape_hull(face_xyz: np.ndarray) -> np.ndarray:
    """Half-space equations (K, 4) of the convex drape over the lower face: n . x + b <= 0 inside."""
    from scipy.spatial import ConvexHull

    lower = face_xyz[face_xyz[:, 1] <= HULL_MAX_Y]
    under_jaw = face_xyz[list(JAW_CONTOUR)] + UNDER_JAW_SHIFT
    hull = ConvexHull(np.concatenate([lower, under_jaw]))
    return hull.equations


def exit_distances(equations: np.ndarray, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """How far (N,) along unit rays (N, 3) each leaves the convex hull: the nearest plane ahead crossed outwards."""
    normals, offsets = equations[:, :3], equations[:, 3]
    facing = directions @ normals.T  # (N, K)
    dist = -(origins @ normals.T + offsets)  # (N, K): signed distance to each plane along its normal
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(facing > 1e-12, dist / facing, np.inf)
    t_exit = t.min(axis=1)
    if not np.all(np.isfinite(t_exit)) or np.any(t_exit <= 0):
        raise SystemExit("a mask ray missed the face drape: the outline parameters reach beyond the face")
    return t_exit


def ray_hits(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray,
             directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Möller-Trumbore, all rays (N, 3) against all triangles (F, 3): distance (N, F) along each unit ray (NaN
    where it misses) and barycentric coordinates u, v (N, F) of the hit in (v0, v1, v2)."""
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    e1, e2 = v1 - v0, v2 - v0  # (F, 3)
    p = np.cross(directions[:, None, :], e2[None])  # (N, F, 3)
    det = np.einsum("nfk,fk->nf", p, e1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / det
        s = origins[:, None, :] - v0[None]
        u = np.einsum("nfk,nfk->nf", s, p) * inv
        q = np.cross(s, e1[None])
        v = np.einsum("nfk,nk->nf", q, directions) * inv
        t = np.einsum("nfk,fk->nf", q, e2) * inv
    hit = (np.abs(det) > 1e-15) & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return np.where(hit, t, np.nan), u, v


def face_distances(face_xyz: np.ndarray, triangles: np.ndarray, origins: np.ndarray,
                   directions: np.ndarray) -> np.ndarray:
    """How far (N,) along unit rays (N, 3) each last crosses the face surface; NaN where it misses the face."""
    t, _, _ = ray_hits(face_xyz, triangles, origins, directions)
    missed = np.all(np.isnan(t), axis=1)
    return np.where(missed, np.nan, np.nanmax(np.where(missed[:, None], 0.0, t), axis=1))


def row_fractions() -> tuple[np.ndarray, np.ndarray]:
    """Row positions v (R,) from 0 (top) to 1 (bottom), and the pleat profile (R,) 0..1 at each row.

    Each pleat rises over its width, steepest just above its fold (s ** 1.5, so
    that the lit slope reads), and drops back at the fold; the drop
    is a pair of rows 1/400 apart, so the fold is a crisp zig-zag step.
    """
    v = list(np.linspace(0.0, PLEAT_ZONE[0], 5, endpoint=False))
    profile = [0.0] * len(v)
    width = (PLEAT_ZONE[1] - PLEAT_ZONE[0]) / PLEATS
    for k in range(PLEATS):
        start = PLEAT_ZONE[0] + k * width
        for s in np.linspace(0.0, 1.0, 6):
            v.append(start + s * (width - 0.0025))
            profile.append(s ** 1.5)
    tail = np.linspace(PLEAT_ZONE[1], 1.0, 5)
    v += list(tail)
    profile += [0.0] * len(tail)
    return np.asarray(v), np.asarray(profile)


def outline(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top and bottom edge heights (y, metres) of the body at angles ``theta`` (C,)."""
    a = np.abs(theta)
    top = TOP_SIDE_Y + (TOP_CENTRE_Y - TOP_SIDE_Y) * np.exp(-(a / TOP_FALLOFF) ** 2)
    bottom = BOTTOM_SIDE_Y + (BOTTOM_CENTRE_Y - BOTTOM_SIDE_Y) * np.cos(0.5 * np.pi * a / SIDE_ANGLE)
    return top, bottom


def grid_normals(p: np.ndarray) -> np.ndarray:
    """Unit normals (R, C, 3) of a grid surface (R, C, 3) whose rows run left to right, columns top to bottom."""
    du = np.gradient(p, axis=1)
    dv = np.gradient(p, axis=0)
    n = np.cross(dv, du)  # rows go down (v), columns go right (u): dv x du points out of the face
    return n / np.linalg.norm(n, axis=2, keepdims=True)


def arc_fractions(p: np.ndarray, axis: int) -> np.ndarray:
    """Normalised cumulative arc length (R, C) along ``axis`` of a grid (R, C, 3)."""
    step = np.linalg.norm(np.diff(p, axis=axis), axis=2)
    pad = [(0, 0), (0, 0)]
    pad[axis] = (1, 0)
    cum = np.cumsum(np.pad(step, pad), axis=axis)
    return cum / np.take(cum, [-1], axis=axis)


def grid_faces(rows: int, cols: int) -> np.ndarray:
    """Two triangles per cell (C, 3) of a row-major vertex grid (counter-clockwise seen from outside when rows run
    down and columns to the right on an outward-facing grid)."""
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = r * cols + c
    b = a + 1
    d = a + cols
    e = d + 1
    # Rows run down the mask, columns across it to the viewer's right: (a, d, b) is counter-clockwise from outside.
    tris = np.concatenate([np.stack([a, d, b], -1).reshape(-1, 3), np.stack([b, d, e], -1).reshape(-1, 3)])
    return tris.astype(np.int64)


def build_body(face_xyz: np.ndarray, triangles: np.ndarray) -> dict:
    from scipy.ndimage import gaussian_filter

    theta = np.linspace(-SIDE_ANGLE, SIDE_ANGLE, COLUMNS)
    v, pleat = row_fractions()
    top, bottom = outline(theta)
    y = top[None, :] + v[:, None] * (bottom - top)[None, :]  # (R, C)
    rows = len(v)
    origins = np.stack([np.zeros_like(y), y, np.full_like(y, AXIS_Z)], axis=-1).reshape(-1, 3)
    directions = np.stack(np.broadcast_arrays(np.sin(theta)[None, :], 0.0 * y, np.cos(theta)[None, :]),
                          axis=-1).reshape(-1, 3)
    along = exit_distances(drape_hull(face_xyz), origins, directions)
    # Where the ray meets the face, the drape may stand at most MAX_STANDOFF_M off it.
    on_face = face_distances(face_xyz, triangles, origins, directions)
    along = np.where(np.isnan(on_face), along, np.minimum(along, on_face + MAX_STANDOFF_M))
    # Round off the drape's facets by smoothing how far out it lies along each ray, never pulling it inwards
    # (smoothing alone would cut into ridges such as the nose).
    along = along.reshape(rows, COLUMNS)
    along = np.maximum(gaussian_filter(along, SMOOTH_CELLS, mode="nearest"), along)
    smooth = origins.reshape(rows, COLUMNS, 3) + along[..., None] * directions.reshape(rows, COLUMNS, 3)
    normals = grid_normals(smooth)
    u_frac = (theta + SIDE_ANGLE) / (2 * SIDE_ANGLE)
    taper = 0.35 + 0.65 * np.clip(np.minimum(u_frac, 1 - u_frac) / 0.15, 0.0, 1.0)  # pressed flat at the sides
    push = OFFSET_M + PLEAT_DEPTH_M * pleat[:, None] * taper[None, :]
    surface = smooth + push[..., None] * normals
    uv = np.stack([arc_fractions(surface, 1), 1.0 - arc_fractions(surface, 0)], axis=-1)  # v = 1 at the top edge
    faces = grid_faces(rows, COLUMNS)
    # Baked occlusion: each fold's underside and the band just below it lie in the fold's shadow; without it
    # the pleats barely read under a frontal light.
    fold = np.flatnonzero((pleat[:-1] == 1.0) & (pleat[1:] == 0.0))
    cell_row = faces.min(axis=1) // COLUMNS
    shade = np.ones(len(faces))
    shade[np.isin(cell_row, fold)] = FOLD_SHADE[0]
    shade[np.isin(cell_row, fold + 1)] = FOLD_SHADE[1]
    return {"vertices": surface.reshape(-1, 3), "uv": uv.reshape(-1, 2), "faces": faces, "shade": shade,
            "rows": rows}


# -- ear loops ----------------------------------------------------------------------------------------------------


def catmull_rom(points: np.ndarray, samples: int) -> np.ndarray:
    """A uniform Catmull-Rom curve (samples, 3) through ``points`` (P, 3), ends included."""
    p = np.concatenate([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    segments = len(points) - 1
    s = np.linspace(0.0, segments, samples)
    i = np.minimum(s.astype(int), segments - 1)
    t = (s - i)[:, None]
    p0, p1, p2, p3 = p[i], p[i + 1], p[i + 2], p[i + 3]
    return 0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                  + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3)


def tube(path: np.ndarray, radius: float, sides: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A tube around ``path`` (N, 3): vertices (N * (sides + 1), 3), faces, uv; frames by parallel transport.

    Each ring repeats its first vertex at its end, so the UV strip's v runs 0..1 without wrapping across the seam.
    """
    tangents = np.gradient(path, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    ref = np.array([0.0, 1.0, 0.0]) if abs(tangents[0, 1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    normal = np.cross(tangents[0], ref)
    normal /= np.linalg.norm(normal)
    rings = []
    angles = 2 * np.pi * np.arange(sides + 1) / sides
    angles[-1] = 0.0  # the seam vertex sits exactly on the first one
    for k, tangent in enumerate(tangents):
        if k:  # parallel transport: drop the normal's component along the new tangent
            normal = normal - tangent * (normal @ tangent)
            normal /= np.linalg.norm(normal)
        binormal = np.cross(tangent, normal)
        rings.append(path[k] + radius * (np.cos(angles)[:, None] * normal + np.sin(angles)[:, None] * binormal))
    vertices = np.concatenate(rings)
    # Around the tube the angle grows from normal to binormal (= tangent x normal): (a, b, d) then faces outwards.
    faces = grid_faces(len(path), sides + 1)[:, [0, 2, 1]]
    along = np.repeat(np.linspace(0.0, 1.0, len(path)), sides + 1)
    around = np.tile(np.linspace(0.0, 1.0, sides + 1), len(path))
    return vertices, faces, np.stack([along, around], axis=1)


def build_loops(body: np.ndarray, rows: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per side: (vertices, faces, uv, deform_weight) of an ear loop from the top to the bottom corner."""
    grid = body.reshape(rows, COLUMNS, 3)
    loops = []
    for col, sign in ((0, -1.0), (COLUMNS - 1, 1.0)):
        top, bottom = grid[0, col], grid[-1, col]
        via = LOOP_VIA * np.array([sign, 1.0, 1.0])
        path = catmull_rom(np.concatenate([top[None], via, bottom[None]]), LOOP_SAMPLES)
        vertices, faces, uv = tube(path, LOOP_RADIUS_M, LOOP_SIDES)
        # The loop follows the mask's corner where it leaves it and the rigid head behind the ear.
        s = np.linspace(0.0, 1.0, LOOP_SAMPLES)
        weight = np.clip(np.maximum(1.0 - s / 0.25, (s - 0.75) / 0.25), 0.0, 1.0)
        loops.append((vertices, faces, uv, np.repeat(weight, LOOP_SIDES + 1)))
    return loops


# -- assembly -----------------------------------------------------------------------------------------------------


def anchor_points(body_vertices: np.ndarray, body_faces: np.ndarray,
                  landmark_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For landmarks (A, 3): the body triangle (A,) straight in front of each (along +z, the view of a camera
    facing the face) and the barycentric coordinates (A, 3) of that point in it."""
    directions = np.tile([0.0, 0.0, 1.0], (len(landmark_xyz), 1))
    t, u, v = ray_hits(body_vertices, body_faces, landmark_xyz, directions)
    if np.any(np.all(np.isnan(t), axis=1)):
        raise SystemExit(f"anchor landmarks {np.flatnonzero(np.all(np.isnan(t), axis=1)).tolist()} "
                         "have no mask in front of them")
    faces = np.nanargmin(t, axis=1)
    rows = np.arange(len(faces))
    bary = np.stack([1.0 - u[rows, faces] - v[rows, faces], u[rows, faces], v[rows, faces]], axis=1)
    return faces, bary


def build_mask(face_xyz: np.ndarray, triangles: np.ndarray) -> dict[str, np.ndarray]:
    """Every array of medical_mask.npz."""
    body = build_body(face_xyz, triangles)
    loops = build_loops(body["vertices"], body["rows"])
    vertices, faces, uv, part, deform = [body["vertices"]], [body["faces"]], [body["uv"]], [], []
    shade = [body["shade"], np.ones(sum(len(loop[1]) for loop in loops))]
    part.append(np.zeros(len(body["faces"]), np.uint8))
    deform.append(np.ones(len(body["vertices"])))
    base = len(body["vertices"])
    for lv, lf, luv, lw in loops:
        vertices.append(lv)
        faces.append(lf + base)
        uv.append(luv)
        part.append(np.ones(len(lf), np.uint8))
        deform.append(lw)
        base += len(lv)
    vertices = np.concatenate(vertices)
    names, ids = zip(*ANCHORS)
    landmark_xyz = face_xyz[list(ids)]
    anchor_face, anchor_bary = anchor_points(body["vertices"], body["faces"], landmark_xyz)
    anchor_xyz = np.einsum("ak,akj->aj", anchor_bary, vertices[body["faces"][anchor_face]])
    return {
        "vertices": stable_float32(vertices),
        "faces": np.concatenate(faces).astype(np.int32),
        "uv": stable_float32(np.concatenate(uv)),
        "part": np.concatenate(part),
        "colors": np.array([BODY_RGB, LOOP_RGB], np.float32),
        "shade": stable_float32(np.concatenate(shade)),
        "deform_weight": stable_float32(np.concatenate(deform)),
        "anchor_names": np.array(names, dtype="<U16"),
        "anchor_landmark_ids": np.array(ids, np.int32),
        "anchor_face": anchor_face.astype(np.int32),
        "anchor_bary": stable_float32(anchor_bary),
        "anchor_xyz": stable_float32(anchor_xyz),
        "anchor_landmark_xyz": stable_float32(landmark_xyz),
    }


def stable_float32(x: np.ndarray, decimals: int = 7) -> np.ndarray:
    """``x`` rounded to ``decimals`` places (0.1 um in metres) as float32, with -0.0 made 0.0.

    The construction's last bits differ between CPUs of the same kind (values that are zero on one machine come
    out as 4e-18 on another), so the shipped asset is only reproducible byte for byte once rounded.
    """
    return (np.round(np.asarray(x, np.float64), decimals) + 0.0).astype(np.float32)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive with fixed zip timestamps, so equal arrays give equal bytes (np.savez stamps the time)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(arrays[name]), allow_pickle=False)
    return buf.getvalue()


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def glb_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The mask as a glTF binary: one mesh per part, each with its UVs and a PBR base colour."""
    import trimesh
    from trimesh.visual.material import PBRMaterial
    from trimesh.visual.texture import TextureVisuals

    scene = trimesh.Scene()
    for p, name in ((0, "mask_body"), (1, "ear_loops")):
        faces = arrays["faces"][arrays["part"] == p]
        used = np.unique(faces)
        remap = np.full(len(arrays["vertices"]), -1, np.int64)
        remap[used] = np.arange(len(used))
        rgba = np.append(srgb_to_linear(arrays["colors"][p]), 1.0)
        material = PBRMaterial(name=f"{name}_material", baseColorFactor=(rgba * 255).round().astype(np.uint8),
                               metallicFactor=0.0, roughnessFactor=0.9, doubleSided=(p == 0))
        mesh = trimesh.Trimesh(vertices=arrays["vertices"][used], faces=remap[faces], process=False,
                               visual=TextureVisuals(uv=arrays["uv"][used], material=material))
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    return scene.export(file_type="glb")


def clearance(vertices: np.ndarray, face_xyz: np.ndarray) -> tuple[float, float]:
    """(min, median) distance in metres from the body's vertices to the canonical face's landmarks."""
    from scipy.spatial import cKDTree

    d, _ = cKDTree(face_xyz).query(vertices)
    return float(d.min()), float(np.median(d))


def parameters() -> dict:
    keys = ("AXIS_Z", "SIDE_ANGLE", "COLUMNS", "OFFSET_M", "MAX_STANDOFF_M", "PLEATS", "PLEAT_DEPTH_M", "PLEAT_ZONE",
            "FOLD_SHADE", "SMOOTH_CELLS", "TOP_CENTRE_Y", "TOP_SIDE_Y", "TOP_FALLOFF", "BOTTOM_CENTRE_Y",
            "BOTTOM_SIDE_Y", "UNDER_JAW_SHIFT", "HULL_MAX_Y", "LOOP_RADIUS_M", "LOOP_SIDES", "LOOP_SAMPLES", "LOOP_VIA",
            "BODY_RGB", "LOOP_RGB")
    g = globals()
    return {k.lower(): np.asarray(g[k]).round(6).tolist() for k in keys}


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; assets are read by everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default assets/mask)")
    parser.add_argument("--canonical", type=Path, default=CANONICAL_FACE, help="canonical_face.npz to wrap")
    args = parser.parse_args(argv)

    face_xyz, triangles = load_canonical(args.canonical)
    arrays = build_mask(face_xyz, triangles)
    body = arrays["vertices"][arrays["deform_weight"] == 1.0]
    if len(arrays["vertices"]) >= 5000:
        raise SystemExit(f"expected fewer than 5000 vertices, built {len(arrays['vertices'])}")
    npz, glb = npz_bytes(arrays), glb_bytes(arrays)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "medical_mask.npz", npz)
    write_atomic(args.out / "medical_mask.glb", glb)
    min_gap, median_gap = clearance(body, face_xyz)
    anchor_gap = np.linalg.norm(arrays["anchor_xyz"] - arrays["anchor_landmark_xyz"], axis=1)
    provenance = {
        "format": FORMAT,
        "generator": GENERATOR,
        "source": {"file": "assets/models/canonical_face.npz", "sha256": hashlib.sha256(
            args.canonical.read_bytes()).hexdigest(), "units": "centimetres, converted to metres"},
        "frame": "canonical face, metres: x to the viewer's right, y up, z out of the face (glTF's +Y up, +Z front)",
        "parameters": parameters(),
        "counts": {"vertices": int(len(arrays["vertices"])), "faces": int(len(arrays["faces"])),
                   "body_faces": int((arrays["part"] == 0).sum()), "loop_faces": int((arrays["part"] == 1).sum())},
        "clearance_m": {"body_to_landmarks_min": round(min_gap, 5), "body_to_landmarks_median": round(median_gap, 5)},
        "anchors": [{"name": str(n), "landmark": int(i), "face": int(f), "distance_m": round(float(d), 5)}
                    for n, i, f, d in zip(arrays["anchor_names"], arrays["anchor_landmark_ids"],
                                          arrays["anchor_face"], anchor_gap)],
        "files": {"medical_mask.npz": {"sha256": hashlib.sha256(npz).hexdigest(), "bytes": len(npz)},
                  "medical_mask.glb": {"sha256": hashlib.sha256(glb).hexdigest(), "bytes": len(glb)}},
    }
    write_atomic(args.out / "mask.json", (json.dumps(provenance, indent=2) + "\n").encode())
    print(f"wrote {args.out}: {len(arrays['vertices'])} vertices, {len(arrays['faces'])} faces, "
          f"clearance min {min_gap * 1000:.1f} mm, anchors at most {anchor_gap.max() * 100:.2f} cm from landmarks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
