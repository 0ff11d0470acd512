"""Take + footage → an overlay video: the mask, face mesh, skeletons and head axes drawn on every frame.

    render_overlay("clip.mp4", take, "clip.overlay.mp4", draw=("mask", "axes"), progress=bar)

Drawing is OpenCV on RGB frames, per frame a pure function (:func:`draw_frame`):

* ``mask``: the fitted mask (:mod:`.mask`), triangles culled when facing away
  and painted back to front by mean depth, flat Lambert shading of the part
  colour times the asset's baked occlusion.  Painted into the frame's mask
  region upsampled (nearest) 1-4x and area-averaged back, so its edges are
  anti-aliased without seams between triangles, and pixels it does not touch
  come back bit-identical.  Ear-loop triangles behind the head (an ellipsoid
  in canonical space) are hidden: the face mesh would not hide them.
* ``mesh``: the face mesh as a wireframe of its triangle edges at the
  landmarks' pixels, or shaded (translucent grey, same painter as the mask).
  Faces whose landmarks are posed from a head pose, not measured
  (``Take.face_landmarks_posed``: a pose-only face model such as img2pose),
  are skipped with a warning; a face model's dense mesh (``Take.face_mesh``,
  3DDFA_V2's BFM) is drawn instead of the landmarks' where a face has one.
* ``skeleton``: every track's bones between joints with conf > 0.5.
* ``axes``: the head pose's x (red), y (green), z (blue) axes, 8 cm long, from
  the nose tip.  Canonical axes: x to the viewer's right, y up, z out of the face.

Layers are drawn in the order mesh, mask, skeleton, axes.  The video is
encoded with PyAV (libx264, yuv420p; yuv444p for odd sizes, which 4:2:0
cannot hold) at the source's size, the Take's frame rate and each frame's own
timestamp, so variable-rate footage keeps its timing; audio is copied
through, or re-encoded to AAC where the container cannot hold its codec.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..camera import Intrinsics
from ..errors import InputError
from ..fileio import atomic_path
from ..formats.take import Face, Take
from ..video import VideoInfo, open_footage
from ..video.mux import X264_PRESETS, Progress, check_output, reencode, source_timing  # noqa: F401 (re-exported)
from .mask import PART_LOOP, MaskAsset, fit_mask

LAYERS = ("mask", "mesh", "skeleton", "axes")
MESH_STYLES = ("wire", "shaded")

NEAR_M = 0.02
"""Geometry closer to the camera than this is not drawn (it would project without bound)."""

LIGHT_TOWARDS = np.array([-0.3, -0.6, -1.0]) / np.linalg.norm([-0.3, -0.6, -1.0])
"""Unit vector towards the light in camera axes: above, a little left of and behind the camera."""
AMBIENT, DIFFUSE = 0.35, 0.65

HEAD_CENTRE_M = np.array([0.0, 0.01, -0.05])
HEAD_RADII_M = np.array([0.075, 0.10, 0.095])
"""An ellipsoid inside the head (canonical frame), behind which ear loops are hidden."""

AXIS_LENGTH_M = 0.08
NOSE_TIP = 4
MIN_JOINT_CONF = 0.5
MESH_RGB = (120, 255, 200)
MESH_ALPHA = 0.6
SHADED_MESH_RGB = (0.85, 0.85, 0.85)
SHADED_MESH_ALPHA = 0.6
AXIS_RGB = ((235, 40, 40), (40, 220, 60), (50, 110, 255))
TRACK_RGB = ((255, 200, 40), (60, 200, 255), (255, 90, 200), (140, 255, 90), (255, 140, 60), (180, 140, 255))

_SHIFT = 4  # OpenCV fixed-point bits: coordinates are drawn to 1/16 px
_ONE = 1 << _SHIFT


# -- drawing --------------------------------------------------------------------------------------------------------


def project(xyz: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Pixels (..., 2) of camera-space points (..., 3) (OpenCV axes, z forward)."""
    z = xyz[..., 2]
    return np.stack([intrinsics.fx * xyz[..., 0] / z + intrinsics.cx, intrinsics.fy * xyz[..., 1] / z + intrinsics.cy],
                    axis=-1)


def _fixed(xy: np.ndarray) -> np.ndarray:
    """Pixel coordinates as OpenCV fixed-point int32, clamped far outside any image (drawing clips them)."""
    return np.round(np.clip(np.nan_to_num(xy), -1e5, 1e5) * _ONE).astype(np.int32)


def _supersampling(size: int) -> int:
    return 4 if size <= 160 else 3 if size <= 320 else 2 if size <= 960 else 1


def paint_triangles(rgb: np.ndarray, xy: np.ndarray, xyz: np.ndarray, faces: np.ndarray, face_rgb: np.ndarray,
                    keep: np.ndarray | None = None, alpha: float = 1.0) -> None:
    """Paint lit triangles into ``rgb`` (H, W, 3) uint8, in place.

    ``xy`` (V, 2) pixel positions and ``xyz`` (V, 3) camera-space positions
    of the vertices (depth order, facing and shading come from xyz);
    ``faces`` (F, 3) counter-clockwise seen from outside; ``face_rgb`` (F, 3)
    base colour 0..1; ``keep`` (F,) optional mask of faces allowed to show.
    """
    tri = xyz[faces]  # (F, 3, 3)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centroid = tri.mean(axis=1)
    # The camera sits at the origin: a face shows when its outward normal points back at it.
    show = (np.einsum("fk,fk->f", normal, centroid) < 0) & np.all(tri[..., 2] > NEAR_M, axis=1)
    show &= np.all(np.isfinite(tri), axis=(1, 2)) & np.all(np.isfinite(xy[faces]), axis=(1, 2))
    if keep is not None:
        show &= keep
    if not show.any():
        return
    unit = normal[show] / np.maximum(np.linalg.norm(normal[show], axis=1, keepdims=True), 1e-12)
    light = AMBIENT + DIFFUSE * np.clip(unit @ LIGHT_TOWARDS, 0.0, 1.0)
    colour = np.clip(face_rgb[show] * light[:, None] * 255.0, 0, 255)
    order = np.argsort(-centroid[show, 2], kind="stable")  # far to near
    corners = xy[faces[show]][order]  # (N, 3, 2)
    colour = colour[order]

    h, w = rgb.shape[:2]
    lo = np.floor(corners.reshape(-1, 2).min(axis=0)).astype(int)
    hi = np.ceil(corners.reshape(-1, 2).max(axis=0)).astype(int) + 1
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w), min(hi[1], h)
    if x1 <= x0 or y1 <= y0:
        return
    import cv2

    s = _supersampling(max(x1 - x0, y1 - y0))
    region = rgb[y0:y1, x0:x1]
    canvas = cv2.resize(region, None, fx=s, fy=s, interpolation=cv2.INTER_NEAREST) if s > 1 else region.copy()
    # Pixel centres sit on integers; original pixel u covers canvas pixels s*u .. s*u + s - 1.
    pts = _fixed((corners - [x0, y0] + 0.5) * s - 0.5)
    for p, c in zip(pts, colour.tolist()):
        cv2.fillConvexPoly(canvas, p, c, cv2.LINE_8, _SHIFT)
    painted = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA) if s > 1 else canvas
    if alpha < 1.0:
        painted = cv2.addWeighted(painted, alpha, region, 1.0 - alpha, 0.0)
    region[...] = painted


def hidden_by_head(xyz: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """(N,) whether camera-space points (N, 3) lie behind or inside the head ellipsoid of a pose."""
    # In the ellipsoid's unit-sphere frame the segment o + s (q - o), s in [0, 1], from the camera o to the point q
    # meets the sphere for s in [s1, s2], the roots of |o + s (q - o)|^2 = 1.  The point is hidden when the
    # segment enters the sphere before reaching it (s1 < 1) and the sphere is not wholly behind the camera (s2 > 0).
    o = ((-translation) @ rotation - HEAD_CENTRE_M) / HEAD_RADII_M
    d = ((xyz - translation) @ rotation - HEAD_CENTRE_M) / HEAD_RADII_M - o
    a = np.einsum("nk,nk->n", d, d)
    b = 2.0 * d @ o
    c = o @ o - 1.0
    disc = b * b - 4.0 * a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    s1, s2 = (-b - root) / (2.0 * a), (-b + root) / (2.0 * a)
    return (disc > 0) & (s1 < 1.0) & (s2 > 0.0)


class FrameDrawer:
    """Draws the chosen layers of one Take onto its frames; build once, call per frame."""

    def __init__(self, take: Take, draw: Sequence[str] = LAYERS, mask_asset: MaskAsset | None = None,
                 mesh_style: str = "wire"):
        draw = (draw,) if isinstance(draw, str) else tuple(draw)
        unknown = [d for d in draw if d not in LAYERS]
        if unknown:
            raise InputError(f"draw layers must be among {list(LAYERS)}, got {unknown}")
        if mesh_style not in MESH_STYLES:
            raise InputError(f"mesh_style must be one of {list(MESH_STYLES)}, got {mesh_style!r}")
        if "mesh" in draw and take.faces and take.face_landmarks_posed and take.face_mesh is None:
            # A pose-only face model measured no mesh: drawing the canonical face would pass it off as one.
            warnings.warn(f"the faces of this take come from {take.meta['face_source'].get('name', '?')}, "
                          "which measures a head pose, not a mesh: the mesh layer skips them")
            draw = tuple(d for d in draw if d != "mesh")
        self.take = take
        self.draw = frozenset(draw)
        self.mesh_style = mesh_style
        self.mask = None
        if "mask" in self.draw and take.faces:
            self.mask = mask_asset if mask_asset is not None else default_mask()
            self._mask_rgb = self.mask.colors_rgb[self.mask.part] * self.mask.shade[:, None]
            self._loop_faces = self.mask.part == PART_LOOP
        topo = take.face_topology
        self._edges = _unique_edges(topo.triangles) if topo is not None else np.zeros((0, 2), np.int64)
        dense = take.face_mesh
        self._dense_edges = _unique_edges(dense.triangles) if dense is not None else None
        self._nose = (topo.canonical_xyz[NOSE_TIP].astype(np.float64) if topo is not None else np.zeros(3))
        size = max(take.video.width, take.video.height)
        self._thick = max(1, round(size / 480))

    def __call__(self, rgb: np.ndarray, frame_index: int) -> np.ndarray:
        """The frame (H, W, 3) uint8 with the layers drawn on it (a new array)."""
        v = self.take.video
        if rgb.ndim != 3 or rgb.shape != (v.height, v.width, 3) or rgb.dtype != np.uint8:
            raise InputError(f"take was made from {v.width}x{v.height} footage, got a frame of shape "
                             f"{rgb.shape} {rgb.dtype} (expected ({v.height}, {v.width}, 3) uint8)")
        out = np.array(rgb, dtype=np.uint8, copy=True, order="C")
        faces = [(f, row) for f in self.take.faces
                 if (row := _row(f.frame_index, frame_index)) is not None and _posed(f, row)]
        if "mesh" in self.draw:
            for face, row in faces:
                self._draw_mesh(out, face, row)
        if self.mask is not None:
            for face, row in faces:
                self._draw_mask(out, face, row)
        if "skeleton" in self.draw:
            self._draw_skeletons(out, frame_index)
        if "axes" in self.draw:
            for face, row in faces:
                self._draw_axes(out, face, row)
        return out

    def _draw_mesh(self, out: np.ndarray, face: Face, row: int) -> None:
        import cv2

        if face.mesh_coefficients is not None and self.take.face_mesh is not None:
            # A face model's dense mesh (the BFM of 3DDFA_V2), placed by the face's pose.
            xyz = face.mesh_xyz(self.take.face_mesh, [row])[0]
            xy, tris, edges = project(xyz, self.take.intrinsics), self.take.face_mesh.triangles, self._dense_edges
        else:
            xy, tris, edges = face.xy[row, :468].astype(np.float64), self.take.face_topology.triangles, self._edges
            xyz = face.xyz[row, :468].astype(np.float64)
        if self.mesh_style == "shaded":
            paint_triangles(out, xy, xyz, tris, np.tile(SHADED_MESH_RGB, (len(tris), 1)), alpha=SHADED_MESH_ALPHA)
            return
        segments = xy[edges]
        segments = segments[np.all(np.isfinite(segments), axis=(1, 2))]
        if not len(segments):
            return
        # Drawn translucent within the mesh's bounding box, so that the face stays visible under dense wire.
        h, w = out.shape[:2]
        x0, y0 = np.maximum(np.floor(segments.reshape(-1, 2).min(axis=0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(segments.reshape(-1, 2).max(axis=0)).astype(int) + 2, [w, h])
        if x1 <= x0 or y1 <= y0:
            return
        region = out[y0:y1, x0:x1]
        wire = region.copy()
        cv2.polylines(wire, list(_fixed(segments - [x0, y0])), False, MESH_RGB, 1, cv2.LINE_AA, _SHIFT)
        cv2.addWeighted(wire, MESH_ALPHA, region, 1.0 - MESH_ALPHA, 0.0, dst=region)

    def _draw_mask(self, out: np.ndarray, face: Face, row: int) -> None:
        asset, r, t = self.mask, face.rotation[row].astype(np.float64), face.translation[row].astype(np.float64)
        xyz = fit_mask(asset, r, t, face.xyz[row]).astype(np.float64)
        loops = self._loop_faces
        keep = np.ones(len(asset.faces), bool)
        keep[loops] = ~hidden_by_head(xyz[asset.faces[loops]].mean(axis=1), r, t)
        paint_triangles(out, project(xyz, self.take.intrinsics), xyz, asset.faces, self._mask_rgb, keep)

    def _draw_skeletons(self, out: np.ndarray, frame_index: int) -> None:
        import cv2

        for track in self.take.tracks:
            row = _row(track.frame_index, frame_index)
            if row is None:
                continue
            xy, conf = track.xy[row].astype(np.float64), track.conf[row]
            ok = (conf > MIN_JOINT_CONF) & np.all(np.isfinite(xy), axis=1)
            colour = TRACK_RGB[track.track_id % len(TRACK_RGB)]
            edges = track.skeleton.edges
            edges = edges[ok[edges[:, 0]] & ok[edges[:, 1]]]
            p = _fixed(xy)
            for a, b in edges:
                cv2.line(out, tuple(p[a]), tuple(p[b]), colour, self._thick + 1, cv2.LINE_AA, _SHIFT)
            for j in np.flatnonzero(ok):
                cv2.circle(out, tuple(p[j]), (self._thick + 1) * _ONE, (255, 255, 255), -1, cv2.LINE_AA, _SHIFT)

    def _draw_axes(self, out: np.ndarray, face: Face, row: int) -> None:
        import cv2

        r, t = face.rotation[row].astype(np.float64), face.translation[row].astype(np.float64)
        origin = r @ self._nose + t
        ends = origin + AXIS_LENGTH_M * r.T  # row k: the tip of axis k
        pts = np.concatenate([origin[None], ends])
        if np.any(pts[:, 2] <= NEAR_M):
            return
        p = _fixed(project(pts, self.take.intrinsics))
        for k in np.argsort(-ends[:, 2], kind="stable"):  # farthest axis first
            cv2.arrowedLine(out, tuple(p[0]), tuple(p[k + 1]), AXIS_RGB[k], self._thick + 1, cv2.LINE_AA, _SHIFT,
                            0.15)


@lru_cache(maxsize=1)
def default_mask() -> MaskAsset:
    """The shipped medical mask, loaded once."""
    return MaskAsset.load()


def _posed(face: Face, row: int) -> bool:
    return bool(face.conf[row] > 0 and np.all(np.isfinite(face.rotation[row]))
                and np.all(np.isfinite(face.translation[row])))


def _row(frame_index: np.ndarray, index: int) -> int | None:
    pos = int(np.searchsorted(frame_index, index))
    return pos if pos < len(frame_index) and frame_index[pos] == index else None


def _unique_edges(triangles: np.ndarray) -> np.ndarray:
    """(E, 2) undirected edges of triangles (F, 3), each once."""
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]]).astype(np.int64)
    return np.unique(np.sort(e, axis=1), axis=0)


def draw_frame(rgb: np.ndarray, take: Take, frame_index: int, draw: Sequence[str] = LAYERS,
               mask_asset: MaskAsset | None = None, mesh_style: str = "wire") -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with the layers of ``take`` at source frame ``frame_index`` drawn on it (a copy).

    For many frames build a :class:`FrameDrawer` once instead.
    """
    return FrameDrawer(take, draw, mask_asset, mesh_style)(rgb, frame_index)


# -- video ----------------------------------------------------------------------------------------------------------


def check_footage(take: Take, info: VideoInfo) -> None:
    """Raise InputError unless ``info`` describes footage of the Take's size and frame rate."""
    v = take.video
    if (info.width, info.height) != (v.width, v.height):
        raise InputError(f"take was made from {v.width}x{v.height} footage, got {info.width}x{info.height}")
    if abs(info.fps / v.fps - 1) > Fraction(1, 1000):
        raise InputError(f"take was made from {float(v.fps):.3f} fps footage, got {float(info.fps):.3f} fps")


def render_overlay(source: str | Path, take: Take | str | Path, output: str | Path, draw: Sequence[str] = LAYERS,
                   mesh_style: str = "wire", progress: Progress | None = None, mask_asset: MaskAsset | None = None,
                   crf: int = 18, preset: str = "veryfast") -> Path:
    """Draw ``take`` onto every frame of ``source`` and write the video to ``output``; returns its path.

    Every source frame is written (frames the Take did not analyse pass
    unchanged, re-encoded) at the source's size, with its own timestamp and
    the Take's frame rate; audio is copied through.  The video is written to
    a temporary file beside ``output`` and renamed, so ``output`` is never
    half-written.  ``progress(done, total)`` is called after every frame.
    """
    import av

    source, output = Path(source), Path(output)
    if not isinstance(take, Take):
        take = Take.load(take)
    check_output(source, output, crf, preset)
    drawer = FrameDrawer(take, draw, mask_asset, mesh_style)
    with open_footage(source) as footage:
        info = footage.info
        check_footage(take, info)
        timing = source_timing(source, info)
        with atomic_path(output) as tmp, av.open(str(tmp), "w") as container:
            reencode(footage, drawer, container, take.video.fps, timing, source, info, progress, crf, preset)
    return output
