"""Faces from a user's face model instead of MediaPipe's: ``rigcast analyze --face img2pose:FILE | 3ddfa:FOLDER``.

The interface a face model implements (:class:`FaceSourceModel`):

* ``family`` (str): the ``--face`` family that opened it, e.g. ``"img2pose"``;
* ``runner``: its :mod:`rigcast.runners` runner (``runner.provider`` names what ran it in the Take);
* ``mesh_topology``: None for a pose-only model, or a :class:`MeshTopology` for one that also gives a dense
  mesh (3DDFA_V2: the BFM mesh's triangles);
* ``camera(width, height)``: the :class:`~rigcast.camera.Intrinsics` its poses are expressed in, for frames of
  that size (img2pose: focal ``width + height``, principal point at the centre);
* ``__call__(rgb)``: one frame (H, W, 3) uint8 RGB → the faces in it, a list of :class:`FaceObservation`:
  ``box_xyxy`` (4,) px, ``score`` in [0, 1], and the head pose that places MediaPipe's canonical face
  (:mod:`rigcast.face.geometry`, metres) in the model's camera, OpenCV axes, as ``Face.rotation`` and
  ``Face.translation`` do: ``x_cam = scale * rotation @ x_canonical + translation``; optionally ``mesh_xyz``
  (V, 3) camera-space metres in ``mesh_topology``.  A model whose own reference face differs from the
  canonical one (img2pose's 68 points, the BFM) converts its pose to the canonical face itself.

Around the model (:class:`SourceFaceAnalyzer`, :func:`assemble_source_faces`): the poses are moved into the
Take's camera (:func:`to_camera`: the posed canonical face's projection in the model's camera is fitted again,
by PnP, in the Take's; nothing moves when the two cameras agree), face ids come from
:class:`~rigcast.track.BoxTracker` on the boxes (:func:`~rigcast.pipeline.follow.identify`, as the MediaPipe path),
each face is linked to the body whose head it covers (:func:`~rigcast.pipeline.faces.match_faces_to_bodies`,
then :func:`~rigcast.pipeline.faces.join_faces_on_bodies` over the clip), the head pose is One Euro smoothed as
MediaPipe's (:func:`~rigcast.face.head_pose.smooth_head_poses`), and each face becomes a Take
:class:`~rigcast.formats.take.Face`.

A pose-only model measures no landmarks: the Face's 468 landmarks are the canonical face placed by the pose
(``xyz = scale * R @ canonical + t``, ``xy`` its projection with the Take's intrinsics).  The mask overlay, the
add-on's importer and the headless render read them as they read MediaPipe's; the Take says they are posed
(``meta["face_source"]["landmarks"] == "posed"``, :attr:`Take.face_landmarks_posed
<rigcast.formats.take.Take.face_landmarks_posed>`), and the face-mesh overlays skip
such faces instead of drawing the canonical mesh as if it had been measured.

Adding a source: a module of :mod:`rigcast.models` with ``open_<family>(path, device, strict_device)`` returning a
:class:`FaceSourceModel`, its branch in :func:`open_face_model`, and its family and path kind in
:data:`rigcast.pipeline.USER_FACE_SOURCES`.  A dense source's ``mesh_xyz`` is moved into the Take's camera by
:func:`to_camera` already; the chunk cache (:func:`source_face_payload`) and the Take (:func:`assemble_source_faces`,
``Face``) do not carry it yet.

Legend: N faces in a frame, V mesh vertices, T frames of one face.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol

import numpy as np

from ..camera import Intrinsics
from ..errors import InputError
from ..formats.take import LANDMARKS_MEASURED, LANDMARKS_POSED
from ..models.roi import Roi
from . import USER_FACE_SOURCES, split_face_source
from .follow import FollowState, completed, dedupe, identify


DEFAULT_MIN_SCORE = 0.5
"""Faces scored below this are dropped (img2pose's own demo draws from 0.9, the seed filter too; lower keeps
turned and small faces, which the tracker then confirms over frames)."""
DUPLICATE_IOU = 0.5
"""Two boxes of one frame overlapping more than this are one face (the higher score kept)."""
APPEARANCE_BOX_SCALE = 2.0
"""The tracker's appearance cue reads the face box doubled, as the MediaPipe path (see :mod:`.faces`)."""


@dataclass(frozen=True)
class MeshTopology:
    """A dense mesh's topology: ``name`` (e.g. "bfm"), ``triangles`` (F, 3) vertex ids, ``num_vertices`` V."""

    name: str
    triangles: np.ndarray
    num_vertices: int

    def __post_init__(self) -> None:
        tri = np.asarray(self.triangles, dtype=np.int32)
        if tri.ndim != 2 or tri.shape[1] != 3 or (tri.size and (tri.min() < 0 or tri.max() >= self.num_vertices)):
            raise ValueError(f"triangles must be (F, 3) ids in [0, {self.num_vertices}), got {tri.shape}")
        tri.setflags(write=False)
        object.__setattr__(self, "triangles", tri)


@dataclass(frozen=True)
class FaceObservation:
    """One face a face model found in one frame: ``box_xyxy`` (4,) px, ``score`` in [0, 1], ``rotation`` (3, 3)
    camera <- canonical and ``translation`` (3,) metres placing MediaPipe's canonical face in the model's camera
    (OpenCV axes) scaled by ``scale``, and for a dense model ``mesh_xyz`` (V, 3) camera-space metres and, when the
    model's mesh is linear (3DDFA_V2's BFM), ``mesh_coefficients`` (K,) of its ``face_mesh``
    (:class:`~rigcast.formats.take.FaceMesh`), which is what the Take stores."""

    box_xyxy: np.ndarray
    score: float
    rotation: np.ndarray
    translation: np.ndarray
    scale: float = 1.0
    mesh_xyz: np.ndarray | None = None
    mesh_coefficients: np.ndarray | None = None

    def __post_init__(self) -> None:
        box = np.array(self.box_xyxy, dtype=np.float64).reshape(-1)
        rotation = np.array(self.rotation, dtype=np.float64)
        translation = np.array(self.translation, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.all(np.isfinite(box)) or not np.all(box[2:] > box[:2]):
            raise ValueError(f"box_xyxy must be (4,) finite with x1 > x0 and y1 > y0, got {box}")
        if rotation.shape != (3, 3) or not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-5) \
                or not np.linalg.det(rotation) > 0:
            raise ValueError(f"rotation must be a (3, 3) proper rotation matrix, got shape {rotation.shape}")
        if translation.shape != (3,) or not np.all(np.isfinite(translation)):
            raise ValueError(f"translation must be (3,) finite metres, got {translation.shape}")
        if not (np.isfinite(self.score) and np.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"score must be finite and scale positive, got {self.score} and {self.scale}")
        if self.mesh_xyz is not None:
            mesh = np.array(self.mesh_xyz, dtype=np.float64)
            if mesh.ndim != 2 or mesh.shape[1] != 3:
                raise ValueError(f"mesh_xyz must be (V, 3) metres, got {mesh.shape}")
            object.__setattr__(self, "mesh_xyz", mesh)
        if self.mesh_coefficients is not None:
            coefficients = np.array(self.mesh_coefficients, dtype=np.float32).reshape(-1)
            object.__setattr__(self, "mesh_coefficients", coefficients)
        object.__setattr__(self, "box_xyxy", box)
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", translation)
        object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "scale", float(self.scale))


class FaceSourceModel(Protocol):
    """What a non-MediaPipe face model implements (see the module docstring)."""

    family: str
    runner: object
    mesh_topology: MeshTopology | None

    def camera(self, width: int, height: int) -> Intrinsics: ...

    def __call__(self, rgb: np.ndarray) -> list[FaceObservation]: ...


def open_face_model(face_source: str, device: str = "auto", strict_device: bool = False) -> FaceSourceModel:
    """The face model of a ``--face FAMILY:PATH`` value, loaded.  Raises :class:`InputError` for a value
    that names no user model (``mediapipe`` is not one: see :mod:`.faces`)."""
    try:
        family, path = split_face_source(face_source)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if family not in USER_FACE_SOURCES:
        raise InputError(f"expected a face model as {' or '.join(f + ':PATH' for f in USER_FACE_SOURCES)}, "
                         f"got {face_source!r}")
    check_face_source_path(family, path)
    if family == "img2pose":
        from ..models.img2pose import open_img2pose

        return open_img2pose(path, device=device, strict_device=strict_device)
    if family == "3ddfa":
        from ..models.tddfa import TddfaSource

        return TddfaSource.open(path, device=device, strict_device=strict_device)
    raise InputError(f"--face {family}:PATH is not available in this build of rigcast")


def check_face_source_path(family: str, path: str) -> None:
    """Raise :class:`InputError` unless ``path`` is what ``family`` reads: a file or a folder."""
    kind = USER_FACE_SOURCES[family]
    p = Path(path)
    if kind == "file" and not p.is_file():
        raise InputError(f"--face {family}: expected a model file, {path} " +
                         ("is a folder" if p.is_dir() else "does not exist"))
    if kind == "folder" and not p.is_dir():
        raise InputError(f"--face {family}: expected a folder of model files, {path} " +
                         ("is a file" if p.is_file() else "does not exist"))


def face_source_meta(face_source: str, mesh_topology: MeshTopology | None = None) -> dict:
    """meta["face_source"] of a Take: ``name`` (the family), ``file`` (the model's file or folder name, absent
    for MediaPipe), ``landmarks`` (:data:`LANDMARKS_MEASURED` or :data:`LANDMARKS_POSED`) and, for a dense
    model, ``mesh`` (its topology's name)."""
    family, path = split_face_source(face_source)
    if path is None:
        return {"name": family, "landmarks": LANDMARKS_MEASURED}
    out = {"name": family, "file": Path(path).name, "landmarks": LANDMARKS_POSED}
    if mesh_topology is not None:
        out["mesh"] = mesh_topology.name
    return out


def describe_face_source(meta: Mapping) -> str:
    """One line for ``rigcast info``: where a Take's faces came from."""
    source = meta.get("face_source") or {"name": "mediapipe", "landmarks": LANDMARKS_MEASURED}
    text = source.get("name", "?") + (f" ({source['file']})" if source.get("file") else "")
    if source.get("landmarks") == LANDMARKS_POSED:
        text += ", landmarks posed from the head pose (the canonical face, not measured)"
    if source.get("mesh"):
        text += f", dense {source['mesh']} mesh"
    return text


# -- cameras ---------------------------------------------------------------------------------------------------------


def to_camera(observation: FaceObservation, source: Intrinsics, target: Intrinsics) -> FaceObservation:
    """``observation``, posed in the ``source`` camera, re-expressed in the ``target`` camera (same image size).

    The posed canonical face's 468 vertices are projected with ``source`` and the canonical face (at the same
    scale) is fitted to those pixels with ``target`` (PnP, OpenCV's iterative solver started from the pose with
    its depth scaled by the focal lengths' ratio): the pose that puts the face where the model saw it, in the
    Take's camera.  A dense mesh moves rigidly with the pose.  Cameras that agree return ``observation``.
    """
    import cv2
    from scipy.spatial.transform import Rotation

    from ..face.geometry import canonical_face

    if np.allclose([source.fx, source.fy, source.cx, source.cy], [target.fx, target.fy, target.cx, target.cy],
                   rtol=1e-9, atol=1e-9):
        return observation
    model = observation.scale * canonical_face().xyz_m
    posed = model @ observation.rotation.T + observation.translation
    xy = posed[:, :2] / posed[:, 2:] * [source.fx, source.fy] + [source.cx, source.cy]
    guess = observation.translation.copy()
    guess[2] *= 0.5 * (target.fx / source.fx + target.fy / source.fy)
    ok, rvec, tvec = cv2.solvePnP(model, np.ascontiguousarray(xy), target.matrix, None,
                                  Rotation.from_matrix(observation.rotation).as_rotvec().reshape(3, 1),
                                  guess.reshape(3, 1), useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        raise InputError("could not re-express a face's pose in the Take's camera (PnP failed)")
    rotation, translation = Rotation.from_rotvec(rvec.reshape(3)).as_matrix(), tvec.reshape(3)
    mesh = observation.mesh_xyz
    if mesh is not None:  # rigidly along: into the canonical frame with the old pose, out with the new one
        mesh = (mesh - observation.translation) @ observation.rotation @ rotation.T + translation
    return FaceObservation(observation.box_xyxy, observation.score, rotation, translation, observation.scale, mesh,
                           observation.mesh_coefficients)


def posed_landmarks(rotation: np.ndarray, translation: np.ndarray, scale: np.ndarray, intrinsics: Intrinsics
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The canonical face's 468 vertices placed by T poses: xyz (T, 468, 3) metres (NaN where the pose is) and
    xy (T, 468, 2) px, their projection with ``intrinsics``."""
    from ..face.geometry import canonical_face

    canon = canonical_face().xyz_m
    xyz = np.asarray(scale, dtype=np.float64)[:, None, None] * np.einsum("tij,vj->tvi", rotation, canon) \
        + np.asarray(translation, dtype=np.float64)[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = xyz[..., :2] / xyz[..., 2:] * [intrinsics.fx, intrinsics.fy] + [intrinsics.cx, intrinsics.cy]
    return xyz, xy


# -- per frame -------------------------------------------------------------------------------------------------------


class _Seen:
    """An observation as :func:`~rigcast.pipeline.follow.identify` and the chunk cache read a result:
    ``score``, ``box_xyxy()`` and ``next_roi()`` (the box's square; a face model needs no ROI, but the cache
    keeps one per record)."""

    def __init__(self, observation: FaceObservation):
        self.observation = observation
        self.score = observation.score

    def box_xyxy(self) -> np.ndarray:
        return self.observation.box_xyxy

    def next_roi(self) -> Roi:
        box = self.observation.box_xyxy
        return Roi(center_xy=0.5 * (box[:2] + box[2:]), size=float(np.max(box[2:] - box[:2])), rotation=0.0)


@dataclass(frozen=True)
class SourceFaceRecord:
    """One face in one frame from a face model: ``face_id``, ``landmarks`` (the observation, see :class:`_Seen`),
    ``box_xyxy`` (4,) px, ``appearance`` (D,) the tracker's descriptor, ``body_id`` the body it sits on (-1)."""

    face_id: int
    landmarks: _Seen
    box_xyxy: np.ndarray
    appearance: np.ndarray
    body_id: int = -1

    @property
    def observation(self) -> FaceObservation:
        return self.landmarks.observation


class SourceFaceAnalyzer:
    """Runs a :class:`FaceSourceModel` over frames and gives its faces ids; holds no per-clip state itself.

    Every frame runs the model (it is its own detector), so each frame counts as detected.  ``intrinsics``:
    the Take's camera, into which poses are moved (:func:`to_camera`).
    """

    def __init__(self, model: FaceSourceModel, intrinsics: Intrinsics, max_faces: int = 8,
                 min_score: float = DEFAULT_MIN_SCORE):
        if max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {max_faces}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        self.model = model
        self.intrinsics = intrinsics
        self.max_faces = max_faces
        self.min_score = min_score

    def new_state(self) -> FollowState:
        return FollowState()

    def process(self, rgb: np.ndarray, time_s: float, state: FollowState,
                heads: Mapping[int, np.ndarray] | None = None) -> tuple[list[SourceFaceRecord], bool]:
        """The faces of one frame (H, W, 3) uint8 at ``time_s``, at most ``max_faces``, highest scores first,
        each with its id and the body among ``heads`` (body id → face points (11, 2) px) it sits on."""
        from ..track import box_iou
        from .faces import match_faces_to_bodies

        height, width = rgb.shape[:2]
        camera = self.model.camera(width, height)
        seen = [_Seen(to_camera(o, camera, self.intrinsics)) for o in self.model(rgb) if o.score >= self.min_score]
        results = dedupe([(s, False) for s in seen],
                         lambda a, b: box_iou(a[None], b[None])[0, 0] > DUPLICATE_IOU)[: self.max_faces]
        ids, boxes, appearance = identify(rgb, time_s, results, state.tracker, APPEARANCE_BOX_SCALE)
        state.frames_since_detect = 0
        bodies = match_faces_to_bodies(boxes, heads or {})
        return [SourceFaceRecord(int(i), s, b, a, body) for (s, _), i, b, a, body
                in zip(results, ids, boxes, appearance, bodies)], True

    def submit(self, rgb: np.ndarray, time_s: float, state: FollowState,
               heads: Mapping[int, np.ndarray] | None = None):
        """:meth:`process`, done at once: a future of its result."""
        return completed(self.process(rgb, time_s, state, heads))

    def close(self) -> None:
        pass


def source_face_payload(records: list[SourceFaceRecord], num_coefficients: int = 0) -> dict[str, np.ndarray]:
    """Records → the chunk cache's face arrays: rotation (N, 3, 3), translation (N, 3), scale (N,), conf (N,),
    body (N,); for a model with ``num_coefficients`` K > 0 mesh coefficients, coefficients (N, K) too."""
    obs = [r.observation for r in records]
    n = len(obs)
    extra = ({"coefficients": np.array([o.mesh_coefficients for o in obs],
                                       dtype=np.float32).reshape(n, num_coefficients)} if num_coefficients else {})
    return extra | {"rotation": np.array([o.rotation for o in obs], dtype=np.float64).reshape(n, 3, 3),
            "translation": np.array([o.translation for o in obs], dtype=np.float64).reshape(n, 3),
            "scale": np.array([o.scale for o in obs], dtype=np.float64),
            "conf": np.array([o.score for o in obs], dtype=np.float32),
            "body": np.array([r.body_id for r in records], dtype=np.int64)}


# -- over the clip ---------------------------------------------------------------------------------------------------


def assemble_source_faces(arrays: dict[str, np.ndarray], intrinsics: Intrinsics, euro, shortest: int,
                          track_ids: set[int]):
    """Per-frame face-model records (concatenated chunks) → Take faces and the canonical face's topology.

    Faces are joined on their bodies (:func:`~rigcast.pipeline.faces.join_faces_on_bodies`), faces seen in fewer
    than ``shortest`` frames dropped, the head pose One Euro smoothed (``euro`` not None) as MediaPipe's, and the
    landmarks posed (:func:`posed_landmarks`).  Returns (faces, topology or None without faces).
    """
    from ..face.geometry import canonical_face
    from ..face.head_pose import HeadPose, smooth_head_poses
    from ..formats.take import Face, FaceTopology
    from .faces import join_faces_on_bodies

    if "face/id" not in arrays or not len(arrays["face/id"]):
        return [], None
    frame_index, time_s = arrays["frame_index"], arrays["time_s"]
    links, face_ids = join_faces_on_bodies(arrays["face/id"], arrays["face/body"], arrays["face/frame"], track_ids)
    canon = canonical_face()
    faces = []
    for fid in np.unique(face_ids):
        m = face_ids == fid
        if m.sum() < shortest:
            continue
        fi = arrays["face/frame"][m]
        order = np.argsort(fi, kind="stable")
        fi = fi[order]
        ts = time_s[np.searchsorted(frame_index, fi)]
        rotation, translation = arrays["face/rotation"][m][order], arrays["face/translation"][m][order]
        scale, conf = arrays["face/scale"][m][order], arrays["face/conf"][m][order]
        coefficients = arrays["face/coefficients"][m][order] if "face/coefficients" in arrays else None
        if euro is not None:
            poses = [HeadPose(r, t, canon.xyz_m, 1.0, 0.0) for r, t in zip(rotation, translation)]
            rotation, translation = smooth_head_poses(poses, ts)
        xyz, xy = posed_landmarks(rotation, translation, scale, intrinsics)
        faces.append(Face(face_id=int(fid), body_id=links[int(fid)], frame_index=fi, xy=xy, xyz=xyz,
                          rotation=rotation, translation=translation, conf=conf, scale=scale,
                          mesh_coefficients=coefficients))
    topology = FaceTopology(triangles=canon.triangles, uv=canon.uv, canonical_xyz=canon.xyz_m) if faces else None
    return faces, topology
