"""A mask mesh worn on a tracked face: the asset, and its placement per frame.

Legend: V mask vertices, F mask triangles, A anchors, L face landmarks
(468 or 478), T frames.

The asset (``assets/mask/medical_mask.npz``, made by ``tools/make_mask.py``)
lives in the canonical face's frame, in metres: x to the viewer's right,
y up, z out of the face.  A head pose (x_cam = R @ x_canonical + t) places it
rigidly; :func:`fit_masks` then bends it so that it follows the jaw.

The non-rigid correction.  Each anchor a is a point of the mask tied to a
face landmark: the mask straight in front of it.  Its residual is where the
landmark really is minus where the rigid pose puts the canonical landmark::

    r_a = landmarks_xyz[id_a] - (R @ anchor_landmark_xyz_a + t)        (A, 3)

so a rigid head gives zero residuals, and an open mouth gives the chin and
lower-lip anchors a downward one.  The residuals are interpolated by a
normalised Gaussian radial basis (canonical distances, width sigma)::

    psi_a(x) = g_a(x) / sum_b g_b(x),   g_a(x) = exp(-|x - x_a|^2 / (2 sigma^2))
    d(x) = sum_a psi_a(x) c_a,          with c solving  sum_b psi_b(x_a) c_b = r_a  (A x A)

and vertex v moves by k_v d(x_v).  Solving for c makes every anchor move by
exactly its residual, so it stays where it sits relative to its landmark
(in front of it by its canonical offset, rotated by the pose).  The
normalisation makes psi a partition of unity: a uniform residual (a face a
little off its rigid pose) moves the whole mask uniformly, and far from every
anchor a vertex takes the nearest anchors' correction instead of fading to
nothing.  ``k_v`` (``deform_weight``) is 1 on the body and fades to 0 where
the ear loops hook behind the ears, which do not move with the jaw.  Anchors
whose landmark is missing (NaN) drop out of both sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..model_store import assets_dir

DEFAULT_SIGMA_M = 0.02
"""Width of the residual blend (metres): about the spacing of the anchors round the mouth."""

RIDGE = 1e-6
"""Tikhonov term of the anchor system: keeps it solvable, far too small to move an anchor visibly."""

PART_BODY, PART_LOOP = 0, 1

_ARRAYS = ("vertices", "faces", "uv", "part", "colors", "shade", "deform_weight", "anchor_names",
           "anchor_landmark_ids", "anchor_face", "anchor_bary", "anchor_landmark_xyz")


def default_mask_path() -> Path:
    return assets_dir() / "mask" / "medical_mask.npz"


def _shape(name: str, array: np.ndarray, shape: tuple) -> None:
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise InputError(f"mask asset: {name} must be {want}, got {array.shape}")


@dataclass(frozen=True, eq=False)
class MaskAsset:
    """A mask mesh in canonical face space (metres).

    ``xyz`` (V, 3) vertices; ``faces`` (F, 3) counter-clockwise seen from
    outside; ``uv`` (V, 2); ``part`` (F,) 0 body / 1 ear loop;
    ``colors_rgb`` (P, 3) sRGB 0..1 per part; ``shade`` (F,) baked occlusion
    0..1 (the pleats' folds); ``deform_weight`` (V,) share of
    the non-rigid correction; anchors: ``anchor_names`` (A,),
    ``anchor_landmark_ids`` (A,) face landmark ids, ``anchor_face`` (A,) and
    ``anchor_bary`` (A, 3) the point of the mask straight in front of each
    landmark as a triangle and barycentric coordinates,
    ``anchor_landmark_xyz`` (A, 3) the landmarks' canonical positions.
    """

    xyz: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    part: np.ndarray
    colors_rgb: np.ndarray
    shade: np.ndarray
    deform_weight: np.ndarray
    anchor_names: tuple[str, ...]
    anchor_landmark_ids: np.ndarray
    anchor_face: np.ndarray
    anchor_bary: np.ndarray
    anchor_landmark_xyz: np.ndarray
    source: str = ""
    _weights: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        conv = {"xyz": np.float32, "faces": np.int32, "uv": np.float32, "part": np.uint8, "colors_rgb": np.float32,
                "shade": np.float32, "deform_weight": np.float32, "anchor_landmark_ids": np.int32,
                "anchor_face": np.int32, "anchor_bary": np.float32, "anchor_landmark_xyz": np.float32}
        for name, dtype in conv.items():
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), dtype=dtype))
        object.__setattr__(self, "anchor_names", tuple(str(n) for n in self.anchor_names))
        v, f, a = len(self.xyz), len(self.faces), len(self.anchor_names)
        for name, shape in (("xyz", (None, 3)), ("faces", (None, 3)), ("uv", (v, 2)), ("part", (f,)),
                            ("colors_rgb", (None, 3)), ("shade", (f,)), ("deform_weight", (v,)),
                            ("anchor_landmark_ids", (a,)), ("anchor_face", (a,)), ("anchor_bary", (a, 3)),
                            ("anchor_landmark_xyz", (a, 3))):
            _shape(name, getattr(self, name), shape)
        if v == 0 or f == 0:
            raise InputError(f"mask asset: expected a mesh, found {v} vertices and {f} faces")
        if self.faces.min() < 0 or self.faces.max() >= v:
            raise InputError(f"mask asset: face indices must lie in [0, {v}), found [{self.faces.min()}, "
                             f"{self.faces.max()}]")
        if self.part.max() >= len(self.colors_rgb):
            raise InputError(f"mask asset: {len(self.colors_rgb)} part colours, but parts go up to {self.part.max()}")
        if a and (self.anchor_face.min() < 0 or self.anchor_face.max() >= f):
            raise InputError(f"mask asset: anchor faces must lie in [0, {f}), found {self.anchor_face.tolist()}")
        if a and not np.allclose(self.anchor_bary.sum(axis=1), 1.0, atol=1e-4):
            raise InputError(f"mask asset: anchor barycentric coordinates must sum to 1, found "
                             f"{self.anchor_bary.sum(axis=1).round(4).tolist()}")
        if a and (self.anchor_landmark_ids.min() < 0 or self.anchor_landmark_ids.max() >= 468):
            raise InputError(f"mask asset: anchor landmark ids must lie in [0, 468), found "
                             f"{self.anchor_landmark_ids.tolist()}")
        if not (np.all(np.isfinite(self.xyz)) and np.all(np.isfinite(self.anchor_landmark_xyz))):
            raise InputError("mask asset: vertices and anchors must be finite")

    @property
    def num_vertices(self) -> int:
        return len(self.xyz)

    @property
    def anchor_xyz(self) -> np.ndarray:
        """(A, 3) canonical positions of the anchor points."""
        return self.anchor_points(self.xyz)

    def anchor_points(self, xyz: np.ndarray) -> np.ndarray:
        """The anchor points (..., A, 3) of placed vertices ``xyz`` (..., V, 3), e.g. a :func:`fit_masks` result."""
        corners = np.asarray(xyz)[..., self.faces[self.anchor_face], :]  # (..., A, 3, 3)
        return np.einsum("ak,...akj->...aj", self.anchor_bary, corners)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "MaskAsset":
        """Read a mask .npz (default: the shipped ``assets/mask/medical_mask.npz``)."""
        path = default_mask_path() if path is None else Path(path)
        if not path.is_file():
            raise InputError(f"mask asset not found: {path} (tools/make_mask.py writes it)")
        try:
            with np.load(path, allow_pickle=False) as d:
                missing = [k for k in _ARRAYS if k not in d.files]
                if missing:
                    raise InputError(f"expected a mask asset with arrays {list(_ARRAYS)}, {path} lacks {missing}")
                arrays = {k: d[k] for k in _ARRAYS}
        except (OSError, ValueError) as exc:
            raise InputError(f"expected a mask asset (.npz), but {path} is not one: {exc}") from exc
        return cls(xyz=arrays["vertices"], faces=arrays["faces"], uv=arrays["uv"], part=arrays["part"],
                   colors_rgb=arrays["colors"], shade=arrays["shade"], deform_weight=arrays["deform_weight"],
                   anchor_names=tuple(arrays["anchor_names"].tolist()),
                   anchor_landmark_ids=arrays["anchor_landmark_ids"], anchor_face=arrays["anchor_face"],
                   anchor_bary=arrays["anchor_bary"], anchor_landmark_xyz=arrays["anchor_landmark_xyz"],
                   source=str(path))

    def blend_weights(self, sigma_m: float = DEFAULT_SIGMA_M) -> np.ndarray:
        """(V, A) unnormalised Gaussian weights of each anchor at each vertex (cached per sigma)."""
        return self._gaussian("vertices", self.xyz, sigma_m)

    def anchor_blend_weights(self, sigma_m: float = DEFAULT_SIGMA_M) -> np.ndarray:
        """(A, A) unnormalised Gaussian weights of each anchor at each anchor (cached per sigma)."""
        return self._gaussian("anchors", self.anchor_xyz, sigma_m)

    def _gaussian(self, kind: str, xyz: np.ndarray, sigma_m: float) -> np.ndarray:
        if not sigma_m > 0:
            raise InputError(f"sigma_m must be positive, got {sigma_m}")
        w = self._weights.get((kind, sigma_m))
        if w is None:
            d2 = ((xyz[:, None, :].astype(np.float64) - self.anchor_xyz[None, :, :]) ** 2).sum(-1)
            # exp underflows only beyond ~36 sigma; the floor keeps every row usable all the same.
            w = np.maximum(np.exp(-d2 / (2.0 * sigma_m ** 2)), 1e-30)
            self._weights[(kind, sigma_m)] = w
        return w


def fit_masks(asset: MaskAsset, rotation: np.ndarray, translation: np.ndarray,
              landmarks_xyz: np.ndarray | None = None, sigma_m: float = DEFAULT_SIGMA_M) -> np.ndarray:
    """Camera-space mask vertices (T, V, 3) for T head poses.

    ``rotation`` (T, 3, 3) and ``translation`` (T, 3) place the canonical
    face (x_cam = R @ x + t, metres); ``landmarks_xyz`` (T, L, 3) are the
    face's camera-space landmarks, L >= 468, NaN where missing.  Without
    landmarks the placement is rigid.  See the module docstring for the
    non-rigid correction.
    """
    r = np.asarray(rotation, dtype=np.float64)
    t = np.asarray(translation, dtype=np.float64)
    if r.ndim != 3 or r.shape[1:] != (3, 3) or t.shape != (len(r), 3):
        raise InputError(f"expected rotation (T, 3, 3) and translation (T, 3), got {r.shape} and {t.shape}")
    xyz = asset.xyz.astype(np.float64)
    rigid = np.einsum("tij,vj->tvi", r, xyz) + t[:, None, :]
    if landmarks_xyz is None or len(asset.anchor_names) == 0:
        return rigid.astype(np.float32)
    lm = np.asarray(landmarks_xyz, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[0] != len(r) or lm.shape[1] < 468 or lm.shape[2] != 3:
        raise InputError(f"landmarks_xyz must be (T, L, 3) with T={len(r)}, L >= 468, got {lm.shape}")
    expected = np.einsum("tij,aj->tai", r, asset.anchor_landmark_xyz.astype(np.float64)) + t[:, None, :]
    residual = lm[:, asset.anchor_landmark_ids] - expected  # (T, A, 3)
    valid = np.all(np.isfinite(residual), axis=2)  # (T, A)
    residual = np.where(valid[..., None], residual, 0.0)
    w_vertex = _partition(asset.blend_weights(sigma_m)[None], valid)  # (T, V, A)
    w_anchor = _partition(asset.anchor_blend_weights(sigma_m)[None], valid)  # (T, A, A)
    # Blend coefficients c with sum_b w_anchor[a, b] c_b = r_a, so that each valid anchor lands on its landmark;
    # an invalid anchor gets the equation c_a = 0 (its column has zero weight everywhere anyway).
    eye = np.eye(len(asset.anchor_names))
    system = np.where(valid[:, :, None], w_anchor, eye[None]) + RIDGE * eye
    coeff = np.linalg.solve(system, residual)  # (T, A, 3)
    shift = np.einsum("tva,tai->tvi", w_vertex, coeff)
    return (rigid + asset.deform_weight.astype(np.float64)[None, :, None] * shift).astype(np.float32)


def _partition(weights: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Normalise Gaussian weights (1, N, A) over the valid anchors (T, A): (T, N, A), rows sum to 1 (or 0 if none)."""
    w = weights * valid[:, None, :]
    total = w.sum(axis=2, keepdims=True)
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)


def fit_mask(asset: MaskAsset, rotation: np.ndarray, translation: np.ndarray, landmarks_xyz: np.ndarray | None = None,
             sigma_m: float = DEFAULT_SIGMA_M) -> np.ndarray:
    """Camera-space mask vertices (V, 3) for one head pose: rotation (3, 3), translation (3,), landmarks (L, 3)."""
    lm = None if landmarks_xyz is None else np.asarray(landmarks_xyz)[None]
    return fit_masks(asset, np.asarray(rotation)[None], np.asarray(translation)[None], lm, sigma_m)[0]
