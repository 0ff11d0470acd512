"""The Take: rigcast's self-describing analysis result.

On disk a Take is an ``.npz`` archive (never pickled) holding one JSON
header, ``header.json`` as a uint8 array, plus plain numeric arrays named
``tracks/<i>/<field>``.  The header carries the schema version, video info,
camera intrinsics, model and provider, and each track's skeleton (name,
joint names, parents), so a reader needs nothing but the file.

Face meshes.  Every face has the landmarks of MediaPipe's topology
(:class:`FaceTopology`, 468 or 478 points).  A face model with a dense mesh of
its own (3DDFA_V2's BFM: 38365 vertices, 76073 triangles) adds a
:class:`FaceMesh` to the Take, stored once: its topology (``name``,
``triangles``), its mean shape and a linear basis, both in the canonical face's
frame and units; each face then keeps only its K coefficients per frame
(``Face.mesh_coefficients``), and its dense mesh in camera space is
``scale * R @ (mean + basis @ c) + t`` with the face's own pose
(:meth:`Face.mesh_xyz`).  Sizes for the BFM (K = 50): the basis is stored as
float16 with every column scaled to a largest magnitude of 1 (the scale folded
into the coefficients), 38365 x 3 x 50 x 2 bytes = 11.5 MB once per Take
(10.6 MB compressed, measured on a random basis of that size), against 0.46 MB per frame for the vertices as
float32 (0.23 MB as float16); a frame of a face adds 200 bytes.  The float16
basis moves a vertex by at most 2^-11 of its deformation (under 0.02 mm for
the BFM's centimetre-sized deformations).
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..camera import Intrinsics
from ..errors import TakeError
from ..fileio import write_atomic
from ..skeletons import Skeleton
from ..video import VideoInfo

FORMAT_NAME = "rigcast-take"
SCHEMA_VERSION = 1

_TRACK_ARRAYS = ("frame_index", "xy", "xyz", "conf", "root_xyz")
_TRACK_OPTIONAL = ("bone_length", "contact")  # added later: a Take without them is still schema 1
_FACE_ARRAYS = ("frame_index", "xy", "xyz", "rotation", "translation", "conf", "scale")
_TOPOLOGY_ARRAYS = ("triangles", "uv", "canonical_xyz")
_LIFT_ARRAYS = ("frame_index", "xyz")
_FACE_MESH_ARRAYS = ("triangles", "mean_xyz", "basis")
LANDMARKS_MEASURED = "measured"
LANDMARKS_POSED = "posed"
"""meta["face_source"]["landmarks"]: the faces' landmarks were measured by a landmark model (MediaPipe), or are
the canonical face placed by a head pose (a pose-only face model, see rigcast.pipeline.face_sources)."""


def _check_shape(name: str, array: np.ndarray, shape: tuple, owner: str) -> None:
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        want = "(" + ", ".join("T" if s is None else str(s) for s in shape) + ")"
        raise TakeError(f"{owner}: {name} must be {want}, got {array.shape}")


def _frame_index(obj, owner: str) -> int:
    """Normalise ``obj.frame_index`` to strictly increasing int64 (T,) in place; returns T."""
    fi = np.asarray(obj.frame_index, dtype=np.int64)
    object.__setattr__(obj, "frame_index", fi)
    _check_shape("frame_index", fi, (None,), owner)
    if len(fi) > 1 and np.any(np.diff(fi) <= 0):
        raise TakeError(f"{owner}: frame_index must be strictly increasing")
    return len(fi)


def _float_fields(obj, owner: str, shapes: tuple[tuple[str, tuple], ...]) -> None:
    """Make each named field a float32 array of the given shape, or raise TakeError."""
    for name, shape in shapes:
        arr = np.asarray(getattr(obj, name), dtype=np.float32)
        object.__setattr__(obj, name, arr)
        _check_shape(name, arr, shape, owner)


@dataclass(frozen=True)
class Track:
    """One tracked person.

    T frames, J joints.  ``xy`` is image pixels; ``xyz`` is metric, centred
    on the hip midpoint, in camera-aligned axes (OpenCV: x right, y down,
    z forward); ``root_xyz`` is the hip midpoint's camera-space position in
    metres.  A missing joint is NaN with ``conf`` 0.  Optional:
    ``bone_length`` (J,) metres, each joint's distance to its skeleton parent,
    held constant over the track (NaN for the root); ``contact`` (T, 2) bool,
    [left, right] foot on the ground.
    """

    track_id: int
    skeleton: Skeleton
    frame_index: np.ndarray  # (T,) int64, increasing
    xy: np.ndarray  # (T, J, 2) float32
    xyz: np.ndarray  # (T, J, 3) float32
    conf: np.ndarray  # (T, J) float32 in [0, 1]
    root_xyz: np.ndarray  # (T, 3) float32
    bone_length: np.ndarray | None = None  # (J,) float32
    contact: np.ndarray | None = None  # (T, 2) bool

    def __post_init__(self) -> None:
        owner = f"track {self.track_id}"
        t, j = _frame_index(self, owner), self.skeleton.num_joints
        _float_fields(self, owner, (("xy", (t, j, 2)), ("xyz", (t, j, 3)), ("conf", (t, j)), ("root_xyz", (t, 3))))
        if self.bone_length is not None:
            _float_fields(self, owner, (("bone_length", (j,)),))
        if self.contact is not None:
            contact = np.asarray(self.contact)
            _check_shape("contact", contact, (t, 2), owner)
            object.__setattr__(self, "contact", contact.astype(bool))

    @property
    def num_frames(self) -> int:
        return len(self.frame_index)

    @property
    def has_xyz(self) -> bool:
        """Whether the track has 3D joints: a 2D keypoint model's tracks (``--pose vitpose``) have none, their
        ``xyz`` and ``root_xyz`` all NaN."""
        return bool(np.isfinite(self.xyz).any())

    def select(self, frame_mask: np.ndarray) -> "Track":
        """A new track holding only the frames where ``frame_mask`` (T,) is true."""
        m = np.asarray(frame_mask, dtype=bool)
        return replace(self, frame_index=self.frame_index[m], xy=self.xy[m], xyz=self.xyz[m], conf=self.conf[m],
                       root_xyz=self.root_xyz[m], contact=None if self.contact is None else self.contact[m])


@dataclass(frozen=True)
class Face:
    """One tracked face.

    T frames, L landmarks (478 with irises, 468 without).  ``xy`` is image
    pixels; ``xyz`` the metric mesh in camera space (OpenCV axes, metres);
    ``rotation``/``translation`` place the canonical face in camera space
    (x_cam = scale * R @ x_canonical + t, canonical units metres; ``scale``
    is the face's size relative to the canonical face, about 1).  ``body_id``
    is the body track this face belongs to, or -1.
    """

    face_id: int
    body_id: int
    frame_index: np.ndarray  # (T,) int64
    xy: np.ndarray  # (T, L, 2) float32
    xyz: np.ndarray  # (T, L, 3) float32
    rotation: np.ndarray  # (T, 3, 3) float32
    translation: np.ndarray  # (T, 3) float32
    conf: np.ndarray  # (T,) float32
    scale: np.ndarray | None = None  # (T,) float32; None means 1
    mesh_coefficients: np.ndarray | None = None  # (T, K) float32: the Take's FaceMesh coefficients, or None

    def __post_init__(self) -> None:
        owner = f"face {self.face_id}"
        if self.scale is None:
            object.__setattr__(self, "scale", np.ones(len(np.asarray(self.frame_index)), dtype=np.float32))
        t = _frame_index(self, owner)
        xy = np.asarray(self.xy)
        num = xy.shape[1] if xy.ndim == 3 else None
        if num not in (468, 478):
            raise TakeError(f"{owner}: xy must be (T, 468 or 478, 2), got {xy.shape}")
        _float_fields(self, owner, (("xy", (t, num, 2)), ("xyz", (t, num, 3)), ("rotation", (t, 3, 3)),
                                    ("translation", (t, 3)), ("conf", (t,)), ("scale", (t,))))
        if self.mesh_coefficients is not None:
            coefficients = np.asarray(self.mesh_coefficients, dtype=np.float32)
            object.__setattr__(self, "mesh_coefficients", coefficients)
            _check_shape("mesh_coefficients", coefficients, (t, None), owner)

    @property
    def num_frames(self) -> int:
        return len(self.frame_index)

    def select(self, frame_mask: np.ndarray) -> "Face":
        """A new face holding only the frames where ``frame_mask`` (T,) is true."""
        m = np.asarray(frame_mask, dtype=bool)
        return replace(self, frame_index=self.frame_index[m], xy=self.xy[m], xyz=self.xyz[m],
                       rotation=self.rotation[m], translation=self.translation[m], conf=self.conf[m],
                       scale=self.scale[m],
                       mesh_coefficients=None if self.mesh_coefficients is None else self.mesh_coefficients[m])

    def mesh_xyz(self, mesh: "FaceMesh", rows=slice(None)) -> np.ndarray:
        """The dense mesh (T, V, 3) in camera space (metres, OpenCV axes) of the frames ``rows`` (a slice or
        indices): ``scale * R @ (mean + basis @ c) + t``; NaN where the pose is missing."""
        if self.mesh_coefficients is None:
            raise TakeError(f"face {self.face_id} has no dense mesh coefficients")
        local = mesh.local_xyz(self.mesh_coefficients[rows])  # (T, V, 3)
        rotation = self.rotation[rows].astype(np.float64)
        return (self.scale[rows, None, None] * np.einsum("tij,tvj->tvi", rotation, local)
                + self.translation[rows, None, :].astype(np.float64))


@dataclass(frozen=True)
class FaceTopology:
    """The face mesh's topology, stored once per Take: triangles (F, 3) into the
    first 468 landmarks, uv (468, 2), and the canonical face (468, 3) in metres."""

    triangles: np.ndarray
    uv: np.ndarray
    canonical_xyz: np.ndarray

    def __post_init__(self) -> None:
        for name, dtype, shape in (("triangles", np.int32, (None, 3)), ("uv", np.float32, (468, 2)),
                                   ("canonical_xyz", np.float32, (468, 3))):
            arr = np.asarray(getattr(self, name), dtype=dtype)
            object.__setattr__(self, name, arr)
            _check_shape(name, arr, shape, "face topology")


@dataclass(frozen=True)
class FaceMesh:
    """A face model's dense mesh, stored once per Take (see the module docstring): ``name`` ("bfm"),
    ``triangles`` (F, 3) vertex ids, ``mean_xyz`` (V, 3) float32 and ``basis`` (V, 3, K) float16, both in the
    canonical face's frame and units (metres; x to the subject's left, y up, z out of the face)."""

    name: str
    triangles: np.ndarray
    mean_xyz: np.ndarray
    basis: np.ndarray

    def __post_init__(self) -> None:
        if not self.name or not str(self.name).isidentifier():
            raise TakeError(f"a face mesh's name must be a name like 'bfm', got {self.name!r}")
        mean = np.asarray(self.mean_xyz, dtype=np.float32)
        _check_shape("mean_xyz", mean, (None, 3), "face mesh")
        v = len(mean)
        basis = np.asarray(self.basis, dtype=np.float16)
        _check_shape("basis", basis, (v, 3, None), "face mesh")
        tri = np.asarray(self.triangles, dtype=np.int32)
        _check_shape("triangles", tri, (None, 3), "face mesh")
        if tri.size and (tri.min() < 0 or tri.max() >= v):
            raise TakeError(f"face mesh: triangles must be vertex ids in [0, {v}), got [{tri.min()}, {tri.max()}]")
        for name, arr in (("mean_xyz", mean), ("basis", basis), ("triangles", tri)):
            object.__setattr__(self, name, arr)

    @classmethod
    def from_basis(cls, name: str, triangles: np.ndarray, mean_xyz: np.ndarray,
                   basis: np.ndarray) -> tuple["FaceMesh", np.ndarray]:
        """A mesh whose float16 basis has every column scaled to a largest magnitude of 1; returns it and the
        column scales (K,): coefficients of ``basis`` times those are the stored mesh's coefficients."""
        basis = np.asarray(basis, dtype=np.float64)
        scales = np.abs(basis).max(axis=(0, 1))
        scales = np.where(scales > 0, scales, 1.0)
        return cls(name, triangles, mean_xyz, basis / scales), scales

    @property
    def num_vertices(self) -> int:
        return len(self.mean_xyz)

    @property
    def num_coefficients(self) -> int:
        return self.basis.shape[2]

    def local_xyz(self, coefficients: np.ndarray) -> np.ndarray:
        """The mesh (T, V, 3) in the canonical frame of coefficients (T, K)."""
        coefficients = np.asarray(coefficients, dtype=np.float32)
        if coefficients.ndim != 2 or coefficients.shape[1] != self.num_coefficients:
            raise TakeError(f"face mesh coefficients must be (T, {self.num_coefficients}), got {coefficients.shape}")
        flat = self.basis.reshape(-1, self.num_coefficients).astype(np.float32)
        return self.mean_xyz.astype(np.float64) + (coefficients @ flat.T).reshape(len(coefficients), -1, 3)


@dataclass(frozen=True)
class Lift:
    """A second 3D estimate of one body track, kept beside the track's own: ``source`` names it (``"lift"``
    for VideoPose3D's lifting of the track's 2D), ``model`` says what made it.

    T frames, J joints of ``skeleton`` (H36M-17 for VideoPose3D).  ``xyz`` is metric, root-relative (its
    root joint at 0), in camera-aligned axes (OpenCV: x right, y down, z forward), like ``Track.xyz``;
    ``frame_index`` are the frames of track ``track_id`` it covers.
    """

    source: str
    track_id: int
    skeleton: Skeleton
    frame_index: np.ndarray  # (T,) int64, increasing
    xyz: np.ndarray  # (T, J, 3) float32
    model: str = ""

    def __post_init__(self) -> None:
        owner = f"{self.source!r} lift of track {self.track_id}"
        if not self.source or not self.source.isidentifier():
            raise TakeError(f"a lift's source must be a name like 'lift', got {self.source!r}")
        t = _frame_index(self, owner)
        _float_fields(self, owner, (("xyz", (t, self.skeleton.num_joints, 3)),))

    @property
    def num_frames(self) -> int:
        return len(self.frame_index)


@dataclass(frozen=True)
class Take:
    """Everything one analysis produced.

    ``timestamps_s`` (F,) gives the presentation time of every analysed
    frame, ``frame_indices`` (F,) their indices in the source; tracks refer
    to those indices.
    """

    video: VideoInfo
    intrinsics: Intrinsics
    frame_indices: np.ndarray  # (F,) int64
    timestamps_s: np.ndarray  # (F,) float64
    tracks: tuple[Track, ...] = ()
    faces: tuple[Face, ...] = ()
    face_topology: FaceTopology | None = None
    meta: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    lifts: tuple[Lift, ...] = ()  # added later: a Take without them is still schema 1
    face_mesh: FaceMesh | None = None  # added later: a face model's dense mesh, see FaceMesh

    def __post_init__(self) -> None:
        fi = np.asarray(self.frame_indices, dtype=np.int64)
        ts = np.asarray(self.timestamps_s, dtype=np.float64)
        object.__setattr__(self, "frame_indices", fi)
        object.__setattr__(self, "timestamps_s", ts)
        object.__setattr__(self, "tracks", tuple(self.tracks))
        object.__setattr__(self, "faces", tuple(self.faces))
        object.__setattr__(self, "lifts", tuple(self.lifts))
        if self.faces and self.face_topology is None:
            raise TakeError("a take with faces needs a face_topology")
        if fi.ndim != 1 or ts.shape != fi.shape:
            raise TakeError(f"frame_indices and timestamps_s must both be (F,), got {fi.shape} and {ts.shape}")
        ids = [t.track_id for t in self.tracks]
        if len(set(ids)) != len(ids):
            raise TakeError(f"track ids must be unique, got {ids}")
        face_ids = [f.face_id for f in self.faces]
        if len(set(face_ids)) != len(face_ids):
            raise TakeError(f"face ids must be unique, got {face_ids}")
        known = set(fi.tolist())
        for kind, items, key in (("track", self.tracks, "track_id"), ("face", self.faces, "face_id")):
            for t in items:
                stray = set(t.frame_index.tolist()) - known
                if stray:
                    raise TakeError(f"{kind} {getattr(t, key)} refers to frames {sorted(stray)[:5]} "
                                    "that the take did not analyse")
        by_id = {t.track_id: t for t in self.tracks}
        keys = [(lf.source, lf.track_id) for lf in self.lifts]
        if len(set(keys)) != len(keys):
            raise TakeError(f"each track has at most one lift per source, got {keys}")
        for lf in self.lifts:
            if lf.track_id not in by_id:
                raise TakeError(f"{lf.source!r} lift refers to track {lf.track_id}, but the tracks are {ids}")
            stray = set(lf.frame_index.tolist()) - set(by_id[lf.track_id].frame_index.tolist())
            if stray:
                raise TakeError(f"{lf.source!r} lift of track {lf.track_id} covers frames {sorted(stray)[:5]} "
                                "that the track does not")
        for f in self.faces:
            if f.body_id != -1 and f.body_id not in ids:
                raise TakeError(f"face {f.face_id} links to body {f.body_id}, but the tracks are {ids}")
            if f.mesh_coefficients is not None and (self.face_mesh is None or f.mesh_coefficients.shape[1]
                                                    != self.face_mesh.num_coefficients):
                want = "no face mesh" if self.face_mesh is None else f"{self.face_mesh.num_coefficients} coefficients"
                raise TakeError(f"face {f.face_id} has {f.mesh_coefficients.shape[1]} mesh coefficients per frame, "
                                f"but the take has {want}")

    @property
    def face_landmarks_posed(self) -> bool:
        """Whether the faces' landmarks are posed from a head pose, not measured (``meta["face_source"]``; a Take
        from before face sources held MediaPipe's measured landmarks)."""
        source = self.meta.get("face_source") or {}
        return source.get("landmarks", LANDMARKS_MEASURED) == LANDMARKS_POSED

    def track(self, track_id: int) -> Track:
        for t in self.tracks:
            if t.track_id == track_id:
                return t
        raise KeyError(f"no track {track_id}; tracks are {[t.track_id for t in self.tracks]}")

    def face(self, face_id: int) -> Face:
        for f in self.faces:
            if f.face_id == face_id:
                return f
        raise KeyError(f"no face {face_id}; faces are {[f.face_id for f in self.faces]}")

    def lift(self, track_id: int, source: str = "lift") -> Lift:
        """The ``source`` lift of track ``track_id``."""
        for lf in self.lifts:
            if lf.track_id == track_id and lf.source == source:
                return lf
        raise KeyError(f"track {track_id} has no {source!r} lift; the take's lifts are "
                       f"{[(lf.source, lf.track_id) for lf in self.lifts]}")

    def as_lifted_track(self, track_id: int, source: str = "lift") -> Track:
        """Track ``track_id`` seen through its ``source`` lift: the lift's skeleton and ``xyz``, the track's
        own root trajectory and contact, its ``xy`` and ``conf`` laid out in the lift's skeleton (H36M-17:
        built joints take the mean confidence of the points they are built from)."""
        from ..skeletons import H36M_17, h36m17_from

        lf = self.lift(track_id, source)
        track = self.track(track_id).select(np.isin(self.track(track_id).frame_index, lf.frame_index))
        if lf.skeleton.joint_names != H36M_17.joint_names:
            raise TakeError(f"{source!r} lift of track {track_id} has skeleton {lf.skeleton.name}; only "
                            f"{H36M_17.name} lifts can stand in for a track")
        xy = h36m17_from(track.xy, track.skeleton)
        conf = h36m17_from(track.conf[..., None], track.skeleton)[..., 0]
        return Track(track_id=track_id, skeleton=lf.skeleton, frame_index=track.frame_index, xy=xy, xyz=lf.xyz,
                     conf=conf, root_xyz=track.root_xyz, contact=track.contact)

    def with_lifts(self, lifts: tuple[Lift, ...]) -> "Take":
        """A copy holding ``lifts`` in place of any earlier lift of the same source and track."""
        new = {(lf.source, lf.track_id) for lf in lifts}
        kept = tuple(lf for lf in self.lifts if (lf.source, lf.track_id) not in new)
        return replace(self, lifts=kept + tuple(lifts))

    def time_of(self, frame_index: np.ndarray) -> np.ndarray:
        """Presentation times (seconds) of the given analysed frame indices."""
        pos = np.searchsorted(self.frame_indices, frame_index)
        return self.timestamps_s[pos]

    # -- file I/O ---------------------------------------------------------

    def header(self) -> dict:
        return {
            "format": FORMAT_NAME,
            "schema_version": self.schema_version,
            "video": self.video.to_dict(),
            "intrinsics": self.intrinsics.to_dict(),
            "meta": self.meta,
            "tracks": [{"track_id": t.track_id, "skeleton": t.skeleton.to_dict(), "num_frames": t.num_frames}
                       for t in self.tracks],
            "faces": [{"face_id": f.face_id, "body_id": f.body_id, "num_frames": f.num_frames,
                       "num_landmarks": int(f.xy.shape[1])} for f in self.faces],
            **({"face_mesh": {"name": self.face_mesh.name, "num_vertices": self.face_mesh.num_vertices,
                              "num_triangles": len(self.face_mesh.triangles),
                              "num_coefficients": self.face_mesh.num_coefficients}}
               if self.face_mesh is not None else {}),
            "lifts": [{"source": lf.source, "track_id": lf.track_id, "skeleton": lf.skeleton.to_dict(),
                       "model": lf.model, "num_frames": lf.num_frames} for lf in self.lifts],
        }

    def save(self, path: str | Path) -> Path:
        """Write the Take atomically: a crash mid-write never leaves a half-written file at ``path``."""
        path = Path(path)
        arrays = {"header.json": np.frombuffer(json.dumps(self.header()).encode(), dtype=np.uint8),
                  "frame_indices": self.frame_indices, "timestamps_s": self.timestamps_s}
        for i, t in enumerate(self.tracks):
            for name in _TRACK_ARRAYS + _TRACK_OPTIONAL:
                if getattr(t, name) is not None:
                    arrays[f"tracks/{i}/{name}"] = getattr(t, name)
        for i, f in enumerate(self.faces):
            for name in _FACE_ARRAYS:
                arrays[f"faces/{i}/{name}"] = getattr(f, name)
            if f.mesh_coefficients is not None:
                arrays[f"faces/{i}/mesh_coefficients"] = f.mesh_coefficients
        if self.face_mesh is not None:
            for name in _FACE_MESH_ARRAYS:
                arrays[f"face_mesh/{name}"] = getattr(self.face_mesh, name)
        for i, lf in enumerate(self.lifts):
            for name in _LIFT_ARRAYS:
                arrays[f"lifts/{i}/{name}"] = getattr(lf, name)
        if self.face_topology is not None:
            for name in _TOPOLOGY_ARRAYS:
                arrays[f"face_topology/{name}"] = getattr(self.face_topology, name)
        return write_atomic(path, lambda f: np.savez_compressed(f, **arrays))

    @classmethod
    def load(cls, path: str | Path) -> "Take":
        """Read and validate a Take; :class:`TakeError` says what is wrong."""
        path = Path(path)
        if not path.is_file():
            raise TakeError(f"take not found: {path}")
        # The file is opened here, not by np.load: np.load leaves its own file open when the zip directory
        # turns out unreadable (a ResourceWarning on every corrupt Take).
        with open(path, "rb") as file:
            try:
                archive = np.load(file, allow_pickle=False)
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                raise TakeError(f"expected a rigcast Take (an .npz archive), but {path} is not one: {exc}") from exc
            with archive:
                if "header.json" not in archive.files:
                    raise TakeError(f"expected a rigcast Take with a header.json entry, "
                                    f"found entries {archive.files[:8]}")
                try:
                    header = json.loads(bytes(archive["header.json"]).decode())
                    header = migrate_header(header, path)
                    arrays = {k: archive[k] for k in archive.files if k != "header.json"}
                except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                    raise TakeError(f"{path} is a damaged Take: {exc}") from exc
        return cls.from_parts(header, arrays)

    @classmethod
    def from_parts(cls, header: dict, arrays: dict[str, np.ndarray]) -> "Take":
        try:
            tracks = []
            for i, th in enumerate(header["tracks"]):
                fields = {name: arrays[f"tracks/{i}/{name}"] for name in _TRACK_ARRAYS}
                fields |= {name: arrays[f"tracks/{i}/{name}"] for name in _TRACK_OPTIONAL
                           if f"tracks/{i}/{name}" in arrays}
                tracks.append(Track(track_id=int(th["track_id"]), skeleton=_registered(th["skeleton"]), **fields))
            faces = [Face(face_id=int(fh["face_id"]), body_id=int(fh["body_id"]),
                          mesh_coefficients=arrays.get(f"faces/{i}/mesh_coefficients"),
                          **{name: arrays[f"faces/{i}/{name}"] for name in _FACE_ARRAYS})
                     for i, fh in enumerate(header.get("faces", []))]
            face_mesh = (FaceMesh(name=str(header["face_mesh"]["name"]),
                                  **{n: arrays[f"face_mesh/{n}"] for n in _FACE_MESH_ARRAYS})
                         if "face_mesh" in header else None)
            lifts = [Lift(source=str(lh["source"]), track_id=int(lh["track_id"]),
                          skeleton=Skeleton.from_dict(lh["skeleton"]), model=str(lh.get("model", "")),
                          **{name: arrays[f"lifts/{i}/{name}"] for name in _LIFT_ARRAYS})
                     for i, lh in enumerate(header.get("lifts", []))]
            topology = (FaceTopology(**{n: arrays[f"face_topology/{n}"] for n in _TOPOLOGY_ARRAYS})
                        if "face_topology/triangles" in arrays else None)
            return cls(video=VideoInfo.from_dict(header["video"]), intrinsics=Intrinsics.from_dict(header["intrinsics"]),
                       frame_indices=arrays["frame_indices"], timestamps_s=arrays["timestamps_s"], tracks=tuple(tracks),
                       faces=tuple(faces), face_topology=topology, meta=header.get("meta", {}),
                       schema_version=int(header["schema_version"]), lifts=tuple(lifts), face_mesh=face_mesh)
        except KeyError as exc:
            raise TakeError(f"take is missing the entry {exc}") from exc
        except (ValueError, TypeError) as exc:
            raise TakeError(f"take is malformed: {exc}") from exc


def _registered(stored: dict) -> Skeleton:
    """A track's stored skeleton, as the registry's own object when it names a registered skeleton (say
    ``vitpose25`` or ``coco17``: the joint layout is then known by name).  A stored skeleton that takes a
    registered name but lists other joints is refused: its joints would be read in the wrong order."""
    from ..skeletons import get_skeleton

    skeleton = Skeleton.from_dict(stored)
    try:
        known = get_skeleton(skeleton.name)
    except KeyError:
        return skeleton
    if known.joint_names != skeleton.joint_names:
        raise TakeError(f"track skeleton {skeleton.name!r}: expected its registered {known.num_joints} joints "
                        f"{list(known.joint_names)[:3]}..., found {skeleton.num_joints} joints "
                        f"{list(skeleton.joint_names)[:3]}... (another order or number)")
    return known if known == skeleton else skeleton  # a drawing tree since changed: the stored one is kept


def migrate_header(header: dict, path: Path | str = "<take>") -> dict:
    """Check the header's format and version; upgrade older versions in place of a copy."""
    if header.get("format") != FORMAT_NAME:
        raise TakeError(f"{path}: expected format {FORMAT_NAME!r}, found {header.get('format')!r}")
    version = header.get("schema_version")
    if not isinstance(version, int):
        raise TakeError(f"{path}: expected an integer schema_version, found {version!r}")
    if version > SCHEMA_VERSION:
        raise TakeError(f"{path}: take schema version {version} is newer than this rigcast supports "
                        f"({SCHEMA_VERSION}); upgrade rigcast to read it")
    if version < 1:
        raise TakeError(f"{path}: take schema version {version} is not supported (expected 1..{SCHEMA_VERSION})")
    return header
