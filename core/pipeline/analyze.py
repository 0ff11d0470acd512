"""footage → frames → people → tracks → Take, resumable.

Per-frame results go to an on-disk chunk cache (``<take>.parts/``) every
``chunk_frames`` frames, written atomically.  A run killed mid-clip picks up
after the last finished chunk: the tracker is rebuilt by replaying the
cached boxes (no model runs), and the next ROIs come from the cache.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .. import __version__
from ..camera import Intrinsics
from ..enhance import DEFAULT_OVERLAP, DEFAULT_TILE
from ..errors import InputError
from ..fileio import write_atomic
from ..formats.take import Face, FaceTopology, Take, Track
from ..lift import estimate_root_trajectory
from ..models import Roi, make_pose_models
from ..skeletons import BLAZEPOSE_33
from ..track.appearance import DESCRIPTOR_SIZE
from ..track.boxes import turn_takers
from ..smooth import ONE_EURO_LANDMARKS, SMOOTHING_LEVELS, KalmanConfig, OneEuroConfig, smooth_track_arrays
from ..video import VideoInfo, open_footage, prefetched
from ..video.cuts import MIN_CHANGE, ContentChange, shot_starts, split_ids_at
from ..models.face_landmarks import FACE_LANDMARK_MODELS
from . import (BOTTOM_UP_POSE_MODELS, DEFAULT_MAX_PEOPLE, FRAMES_IN_FLIGHT, split_face_source, split_person_detector,
               split_pose_model)
from .body import NUM_JOINTS, BodyAnalyzer, BodyConfig, PersonRecord, confirmed
from .follow import body_anchor

NUM_FACE_LANDMARKS = 478

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""progress(frames_done, frames_total); total is -1 when unknown."""

# 4: body records keep what the detector said of them (body/detection, detection_whole);
# 5: body records carry their image motion (follow.FollowState.measure_motions);
# 6: each frame's content change (video.cuts), for splitting ids at shot cuts
CACHE_VERSION = 6
PERSON_DETECTOR_MODELS = {"nanodet": "nanodet", "blazepose": "pose_detection"}  # detector → embedded model


@dataclass(frozen=True)
class AnalyzeConfig:
    """Every option of ``rigcast analyze``, with its default."""

    model: str = "full"  # lite | full | heavy
    device: str = "auto"  # auto | cpu | cuda | tensorrt
    strict_device: bool = False
    max_people: int = DEFAULT_MAX_PEOPLE
    person_detector: str = "auto"  # auto | nanodet | blazepose | yolo:PATH; auto: blazepose for 1 person, else nanodet
    pose: str = "blazepose"  # blazepose (embedded, 2D + 3D) | vitpose:PATH (the user's easy_ViTPose ONNX/.pth, 2D only)
    #                          | lw3d:PATH (the user's lightweight-human-pose-estimation-3d ONNX, bottom-up, 2D + 3D)
    detect_every: int = 1  # --pose vitpose: frames between detector runs; in between, the tracked people's boxes
    start: str | None = None  # time spec: seconds, [hh:]mm:ss, or "<n>f" for a frame number
    end: str | None = None
    image_fps: float = 30.0  # frame rate given to image sequences
    fov_deg: float | None = None  # horizontal field of view; default camera.DEFAULT_HFOV_DEG
    focal_px: float | None = None  # overrides fov_deg
    redetect_every: int = 15
    smooth: bool = True  # False is smoothing="off"
    smoothing: str = "default"  # off | light | default | strong: bodies' zero-lag smoother, see smooth.kalman
    min_cutoff: float | None = None  # One Euro (smooth.OneEuroConfig) for faces; given, for bodies too
    beta: float | None = None
    max_gap: int = 5  # frames; longer gaps stay missing
    min_track_frames: int = 3  # shorter tracks are dropped as spurious, in clips long enough (see min_track_length)
    chunk_frames: int = 64
    bodies: bool = True
    faces: bool = True
    max_faces: int = 8
    face_detector: str = "auto"  # auto | short | full: BlazeFace range (auto runs both as face sizes need)
    face_landmarks: str = "attention"  # attention | mesh+iris | mesh, see models.face_landmarks.FACE_LANDMARK_MODELS
    face_frames_in_flight: int = 2  # 1 | 2: frames whose faces are tracked at once, see pipeline.faces
    face_source: str = "mediapipe"  # mediapipe (embedded) | img2pose:FILE | 3ddfa:FOLDER, see pipeline.face_sources
    enhance: str | None = None  # a super-resolution model file: frames upscaled before analysis (see analyze)
    enhance_tile: int = DEFAULT_TILE  # its tiles and their least overlap, in footage pixels (rigcast.enhance)
    enhance_overlap: int = DEFAULT_OVERLAP

    def __post_init__(self) -> None:
        if self.model not in ("lite", "full", "heavy"):
            raise InputError(f"model must be lite, full or heavy, got {self.model!r}")
        try:
            _, detector_path = split_person_detector(self.person_detector)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if detector_path is not None and not Path(detector_path).is_file():
            raise InputError(f"person detector model file not found: {detector_path}")
        try:
            _, pose_path = split_pose_model(self.pose)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if pose_path is not None and not Path(pose_path).is_file():
            raise InputError(f"pose model file not found: {pose_path}")
        if pose_path is not None and self.person_detector == "blazepose" and not self.bottom_up:
            raise InputError(f"--pose {self.pose} reads people in person boxes: expected --person-detector auto, "
                             "nanodet or yolo:PATH, got blazepose (whose detector finds faces, not person boxes)")
        try:
            face_family, face_path = split_face_source(self.face_source)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if face_path is not None:
            from .face_sources import check_face_source_path

            check_face_source_path(face_family, face_path)
        if self.detect_every < 1:
            raise InputError(f"detect_every must be at least 1 frame, got {self.detect_every}")
        if self.face_detector not in ("auto", "short", "full"):
            raise InputError(f"face_detector must be auto, short or full, got {self.face_detector!r}")
        if self.face_landmarks not in FACE_LANDMARK_MODELS:
            raise InputError(f"face_landmarks must be one of {', '.join(FACE_LANDMARK_MODELS)}, "
                             f"got {self.face_landmarks!r}")
        if self.face_frames_in_flight not in FRAMES_IN_FLIGHT:
            raise InputError(f"face_frames_in_flight must be one of {FRAMES_IN_FLIGHT}, "
                             f"got {self.face_frames_in_flight!r}")
        if self.smoothing not in SMOOTHING_LEVELS:
            raise InputError(f"smoothing must be one of {', '.join(SMOOTHING_LEVELS)}, got {self.smoothing!r}")
        if self.enhance is not None and not Path(self.enhance).is_file():
            raise InputError(f"super-resolution model file not found: {self.enhance}")
        if self.enhance_overlap < 0 or self.enhance_tile <= 2 * self.enhance_overlap:
            raise InputError(f"enhance_tile must be larger than twice enhance_overlap (and overlap >= 0), got tile "
                             f"{self.enhance_tile} and overlap {self.enhance_overlap}")
        if self.chunk_frames < 1:
            raise InputError(f"chunk_frames must be at least 1, got {self.chunk_frames}")
        if self.max_gap < 0:
            raise InputError(f"max_gap must be >= 0 frames, got {self.max_gap}")
        if not (self.image_fps > 0 and np.isfinite(self.image_fps)):
            raise InputError(f"image_fps must be a positive frame rate, got {self.image_fps}")
        # The stages own their ranges; building their configs here turns an option out of range into one line
        # before any footage is read, instead of a traceback from deep inside the analysis.
        from .faces import FaceConfig

        try:
            BodyConfig(max_people=self.max_people, redetect_every=self.redetect_every)
            FaceConfig(max_faces=self.max_faces, redetect_every=self.redetect_every)
            _one_euro(self)
            if self.fov_deg is not None:
                Intrinsics.from_fov(2, 2, self.fov_deg)
            if self.focal_px is not None:
                Intrinsics.from_focal(2, 2, self.focal_px)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    def result_key(self) -> dict:
        """The options that change per-frame results; a cache is reused only when these match."""
        return {k: getattr(self, k) for k in ("model", "max_people", "person_detector", "pose", "detect_every", "start",
                                              "end", "image_fps", "redetect_every", "bodies", "faces", "max_faces",
                                              "face_detector", "face_landmarks", "face_frames_in_flight",
                                              "face_source", "enhance", "enhance_tile", "enhance_overlap")}

    def detector_name(self) -> str:
        """The person detector that runs: ``person_detector`` (a user's as "yolo:PATH"), or for "auto"
        MediaPipe's own BlazePose detector when one person is followed (MediaPipe's single-person pipeline)
        and NanoDet otherwise (always NanoDet's person boxes for a keypoint model of ``pose``)."""
        if self.person_detector != "auto":
            return self.person_detector
        return "blazepose" if self.max_people == 1 and self.pose == "blazepose" else "nanodet"

    @property
    def face_model(self) -> bool:
        """Whether faces come from a user's face model (``face_source`` "img2pose:FILE" ...), not MediaPipe's."""
        return self.face_source != "mediapipe"

    @property
    def keypoint_model(self) -> bool:
        """Whether bodies are read by a user's top-down 2D keypoint model (``pose`` "vitpose:PATH")."""
        return self.pose != "blazepose"

    @property
    def bottom_up(self) -> bool:
        """Whether the user's keypoint model finds people itself (``pose`` "lw3d:PATH"): no person detector runs."""
        return split_pose_model(self.pose)[0] in BOTTOM_UP_POSE_MODELS


def min_track_length(config: AnalyzeConfig, num_frames: int) -> int:
    """Fewest frames a track needs to be kept.  Tracks shorter than ``config.min_track_frames`` are dropped
    as spurious only in clips of at least twice that many frames; in shorter clips (a photo, a clip of a
    few frames) a person seen once is all there is to see, so every track is kept."""
    return config.min_track_frames if num_frames >= 2 * config.min_track_frames else 1


def landmark_euro(config: AnalyzeConfig) -> OneEuroConfig | None:
    """The One Euro filter of face landmarks (and of bodies given ``min_cutoff`` or ``beta``); None: smoothing off."""
    if not config.smooth or config.smoothing == "off":
        return None
    return _one_euro(config)


def _one_euro(config: AnalyzeConfig) -> OneEuroConfig:
    """The One Euro parameters of ``config``: the user's, or rigcast's defaults for landmarks."""
    return OneEuroConfig(min_cutoff=ONE_EURO_LANDMARKS.min_cutoff if config.min_cutoff is None else config.min_cutoff,
                         beta=ONE_EURO_LANDMARKS.beta if config.beta is None else config.beta)


def body_smoother(config: AnalyzeConfig) -> KalmanConfig | OneEuroConfig | None:
    """Bodies: the zero-lag Kalman smoother of ``config.smoothing``, or One Euro when the user tuned it."""
    if config.min_cutoff is not None or config.beta is not None:
        return landmark_euro(config)
    return SMOOTHING_LEVELS[config.smoothing] if config.smooth else None


def _smoothing_meta(config: AnalyzeConfig) -> dict:
    """What smoothed the bodies, for the Take's header."""
    smoother = body_smoother(config)
    if smoother is None:
        return {"bodies": "off"}
    if isinstance(smoother, OneEuroConfig):
        return {"bodies": "one_euro", **asdict(smoother), "planted_feet": "held"}
    return {"bodies": "kalman_rts", "level": config.smoothing, **asdict(smoother), "bone_lengths": "held",
            "planted_feet": "held"}


def camera_for(info: VideoInfo, config: AnalyzeConfig) -> Intrinsics:
    if config.focal_px is not None:
        return Intrinsics.from_focal(info.width, info.height, config.focal_px)
    if config.fov_deg is not None:
        return Intrinsics.from_fov(info.width, info.height, config.fov_deg)
    return Intrinsics.from_fov(info.width, info.height, source="default")


# -- stages and their per-frame records ------------------------------------------

@dataclass(frozen=True)
class Stage:
    """One per-frame analyser (bodies or faces) and how its records go to and from the cache.

    Every record carries what its tracker saw (id, box, score, appearance)
    and the ROI it hands to the next frame, so a resumed run can rebuild the
    stage's state by replaying the tracker, without running any model.
    """

    key: str  # "body" | "face"; prefixes the stage's arrays in the cache
    analyzer: Any  # BodyAnalyzer | FaceAnalyzer: new_state(), process/submit(rgb, time_s, state), close()
    record_id: Callable[[Any], int]
    payload: Callable[[list], dict[str, np.ndarray]]  # records -> per-record model outputs (P, ...)

    def pack(self, frames: list[tuple[int, bool, list]]) -> dict[str, np.ndarray]:
        """(frame_index, detector ran, records) per frame → the stage's cache arrays."""
        recs = [(f, r) for f, _, rs in frames for r in rs]
        k = self.key
        arrays = {
            f"{k}/detected": np.array([d for _, d, _ in frames], dtype=bool),
            f"{k}/frame": np.array([f for f, _ in recs], dtype=np.int64),
            f"{k}/id": np.array([self.record_id(r) for _, r in recs], dtype=np.int64),
            f"{k}/box": np.array([r.box_xyxy for _, r in recs], dtype=np.float64).reshape(-1, 4),
            f"{k}/score": np.array([r.landmarks.score for _, r in recs], dtype=np.float64),
            f"{k}/appearance": np.array([r.appearance for _, r in recs], dtype=np.float64).reshape(-1, DESCRIPTOR_SIZE),
            f"{k}/next_roi": np.array([_roi_vec(r.landmarks.next_roi()) for _, r in recs],
                                      dtype=np.float64).reshape(-1, 4),
        }
        arrays.update({f"{k}/{name}": v for name, v in self.payload([r for _, r in recs]).items()})
        return arrays

    def restore(self, chunks: list[dict[str, np.ndarray]], frame_wh: tuple[int, int]):
        """The stage's state after the cached frames: the tracker replayed on cached boxes of
        ``frame_wh`` (width, height) frames."""
        k = self.key
        state = self.analyzer.new_state()
        for c in chunks:
            for f, t, det in zip(c["frame_index"], c["time_s"], c[f"{k}/detected"]):
                m = c[f"{k}/frame"] == f
                appearance = c[f"{k}/appearance"][m] if m.any() else None
                ids = state.tracker.update(float(t), c[f"{k}/box"][m], c[f"{k}/score"][m], appearance,
                                           frame_wh=frame_wh)
                if not np.array_equal(ids, c[f"{k}/id"][m]):
                    raise InputError("the chunk cache does not replay consistently; run again with --restart")
                state.frames_since_detect = 0 if det else state.frames_since_detect + 1
                rois = {int(i): Roi(center_xy=v[:2].copy(), size=float(v[2]), rotation=float(v[3]))
                        for i, v in zip(c[f"{k}/id"][m], c[f"{k}/next_roi"][m])}
                if getattr(state, "roi_filter", None) is not None:  # steadied ROIs: the filter replays with times
                    # and bodies' image motions (follow.FollowState.measure_motions, as cached)
                    motions = ({int(i): v for i, v in zip(c[f"{k}/id"][m], c[f"{k}/motion"][m])}
                               if f"{k}/motion" in c else None)
                    state.hand_on(rois, float(t), motions)
                else:
                    state.hand_on(rois)
        return state

    def prime(self, state, chunks: list[dict[str, np.ndarray]], rgb: np.ndarray) -> None:
        """Give a restored body ``state`` the last cached frame ``rgb`` (H, W, 3) and its bodies' anchor points
        (as cached), which the next frame's image motion is measured from (FollowState.measure_motions)."""
        if self.key != "body" or getattr(state, "roi_filter", None) is None or not chunks:
            return
        c = chunks[-1]
        m = c["body/frame"] == c["frame_index"][-1]
        state.measure_motions(rgb, {int(i): body_anchor(xy) for i, xy in zip(c["body/id"][m], c["body/xy"][m])})


def _body_payload(records: list[PersonRecord]) -> dict[str, np.ndarray]:
    lms = [r.landmarks for r in records]
    n = len(lms)
    return {
        "xy": np.array([lm.xy for lm in lms], dtype=np.float32).reshape(n, NUM_JOINTS, 2),
        "z": np.array([lm.z for lm in lms], dtype=np.float32).reshape(n, NUM_JOINTS),
        "visibility": np.array([lm.visibility for lm in lms], dtype=np.float32).reshape(n, NUM_JOINTS),
        "presence": np.array([lm.presence for lm in lms], dtype=np.float32).reshape(n, NUM_JOINTS),
        "world": np.array([lm.world_xyz for lm in lms], dtype=np.float32).reshape(n, NUM_JOINTS, 3),
        "detection": np.array([r.detection_score for r in records], dtype=np.float32).reshape(n),
        "detection_whole": np.array([r.detection_whole for r in records], dtype=bool).reshape(n),
        "motion": np.array([r.motion for r in records], dtype=np.float64).reshape(n, 4),
    }


def _keypoint_payload(records, joints: int, with_xyz: bool = False) -> dict[str, np.ndarray]:
    """Keypoint records (:class:`~rigcast.pipeline.topdown.KeypointRecord`) of a ``joints``-joint model →
    xy (P, J, 2), scores (P, J), and for a 3D model (``with_xyz``) xyz (P, J, 3) camera-space metres; (0, J, ...)
    for none, so that chunks without people concatenate with others."""
    kps = [r.landmarks for r in records]
    out = {"xy": np.array([k.xy for k in kps], dtype=np.float32).reshape(len(kps), joints, 2),
           "scores": np.array([k.scores for k in kps], dtype=np.float32).reshape(len(kps), joints)}
    if with_xyz:
        out["xyz"] = np.array([k.xyz for k in kps], dtype=np.float32).reshape(len(kps), joints, 3)
    return out


def _face_payload(records) -> dict[str, np.ndarray]:
    lms = [r.landmarks for r in records]
    n = len(lms)
    num = lms[0].xy.shape[0] if lms else NUM_FACE_LANDMARKS
    if any(lm.xy.shape[0] != num for lm in lms):
        raise InputError("face landmark counts differ between faces; expected one landmark set per analysis")
    return {
        "xy": np.array([lm.xy for lm in lms], dtype=np.float32).reshape(n, num, 2),
        "z": np.array([lm.z for lm in lms], dtype=np.float32).reshape(n, num),
        "conf": np.array([lm.conf for lm in lms], dtype=np.float32),
        "body": np.array([r.body_id for r in records], dtype=np.int64),
    }


def _roi_vec(roi: Roi) -> np.ndarray:
    return np.array([roi.center_xy[0], roi.center_xy[1], roi.size, roi.rotation], dtype=np.float64)


def _pack_chunk(stages: list[Stage], frames: list[tuple[int, float, dict[str, tuple[list, bool]], float]]) -> dict:
    """(frame index, time, each stage's (records, detector ran), content change) per frame → a chunk's arrays."""
    arrays = {"frame_index": np.array([f[0] for f in frames], dtype=np.int64),
              "time_s": np.array([f[1] for f in frames], dtype=np.float64),
              "content_change": np.array([f[3] for f in frames], dtype=np.float32)}
    for stage in stages:
        arrays.update(stage.pack([(f, res[stage.key][1], res[stage.key][0]) for f, _, res, _ in frames]))
    return arrays


class ChunkCache:
    """The ``<take>.parts/`` folder: a job description plus numbered chunk files."""

    def __init__(self, take_path: Path, job: dict):
        self.dir = take_path.with_name(take_path.name + ".parts")
        self.job = job

    def open(self, restart: bool) -> list[dict[str, np.ndarray]]:
        """Existing chunks for this job, oldest first; raises if the folder belongs to another job."""
        job_file = self.dir / "job.json"
        if restart and self.dir.exists():
            shutil.rmtree(self.dir)
        if job_file.is_file():
            found = json.loads(job_file.read_text())
            if found != self.job:
                changed = sorted(k for k in set(found) | set(self.job) if found.get(k) != self.job.get(k))
                raise InputError(f"{self.dir} holds a partial analysis of different input or options "
                                 f"(differs in {changed}); run again with --restart to discard it")
        else:
            self.dir.mkdir(parents=True, exist_ok=True)
            payload = json.dumps(self.job, indent=1).encode()
            write_atomic(job_file, lambda f: f.write(payload))
        chunks = []
        for p in sorted(self.dir.glob("chunk_*.npz")):
            with np.load(p, allow_pickle=False) as z:
                chunks.append({k: z[k] for k in z.files})
        return chunks

    def write(self, number: int, arrays: dict[str, np.ndarray]) -> None:
        write_atomic(self.dir / f"chunk_{number:06d}.npz", lambda f: np.savez(f, **arrays))

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _source_fingerprint(path: Path) -> dict:
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return {"path": str(p.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"path": str(p.resolve()) if p.exists() else str(p)}


# -- assembly ------------------------------------------------------------------

def _stage_rows(arrays: dict[str, np.ndarray], key: str, record_id: int) -> np.ndarray:
    return arrays[f"{key}/id"] == record_id


def assemble_tracks(arrays: dict[str, np.ndarray], intrinsics: Intrinsics, config: AnalyzeConfig) -> list[Track]:
    """Per-frame body records (concatenated chunks) → smoothed tracks with held bone lengths, root
    trajectories on one common floor and foot contact flags (see :func:`ground_tracks`)."""
    return _assemble_tracks(arrays, intrinsics, config)[0]


def _assemble_tracks(arrays: dict[str, np.ndarray], intrinsics: Intrinsics, config: AnalyzeConfig
                     ) -> tuple[list[Track], dict | None]:
    """:func:`assemble_tracks`, and the floor (``Ground.to_dict()``, None without feet) for the Take's meta.

    With NanoDet, in clips long enough to drop short tracks (:func:`min_track_length`), a track is kept only
    once it is a person (:func:`~rigcast.pipeline.body.confirmed`: boxes on several detector runs, sure ones or
    the whole frame's on a large enough person, on a pose with a head; or steady travel).  A track lists only
    the frames where it has data (:func:`with_data_only`)."""
    if "body/id" not in arrays:
        return [], None
    from ..lift.feet import pin_planted_feet
    from ..lift.ground import ground_tracks
    from ..smooth.bones import bone_lengths, hold_bone_lengths

    frame_index, time_s = arrays["frame_index"], arrays["time_s"]
    smoother = body_smoother(config)
    parts = []
    shortest = min_track_length(config, len(frame_index))
    # Long enough to tell a person by boxes or travel, and found by NanoDet, whose tiles keep unsure boxes
    # (MediaPipe's single-person path and a user's YOLO keep whatever their detector finds).
    judged = len(frame_index) >= 2 * config.min_track_frames and config.detector_name() == "nanodet"
    for tid in np.unique(arrays["body/id"]):
        m = _stage_rows(arrays, "body", tid)
        if m.sum() < shortest:
            continue
        if judged and not confirmed(arrays["body/frame"][m], arrays["body/detection"][m],
                                    arrays["body/detection_whole"][m], arrays["body/xy"][m], arrays["body/box"][m],
                                    intrinsics.height):
            continue
        fi = arrays["body/frame"][m]
        ts = time_s[np.searchsorted(frame_index, fi)]
        fi, ts, xy, xyz, conf = smooth_track_arrays(fi, ts, arrays["body/xy"][m], arrays["body/world"][m],
                                                    arrays["body/visibility"][m], frame_index, time_s, smoother,
                                                    max_gap=config.max_gap)
        lengths = bone_lengths(xyz, conf, BLAZEPOSE_33)
        if smoother is not None:  # bones do not stretch: one length per bone and track, held
            xyz = hold_bone_lengths(xyz, lengths, BLAZEPOSE_33)
        root = estimate_root_trajectory(xy, xyz, conf, intrinsics)
        parts.append((int(tid), fi, ts, xy, xyz, conf, root.root_xyz, lengths))
    if not parts:
        return [], None
    fps = 1.0 / float(np.median(np.diff(time_s))) if len(time_s) > 1 else 30.0
    ground, roots, contacts = ground_tracks([p[4] for p in parts], [p[6] for p in parts], [p[2] for p in parts],
                                            fps, tracks_conf=[p[5] for p in parts])
    pin = pin_planted_feet if smoother is not None else (lambda xyz, root, contact: xyz)  # planted feet held
    tracks = [with_data_only(Track(track_id=tid, skeleton=BLAZEPOSE_33, frame_index=fi, xy=xy,
                                   xyz=pin(xyz, root, contact), conf=conf, root_xyz=root, bone_length=lengths,
                                   contact=contact))
              for (tid, fi, _, xy, xyz, conf, _, lengths), root, contact in zip(parts, roots, contacts)]
    return tracks, None if ground is None else ground.to_dict()


def assemble_keypoint_tracks(arrays: dict[str, np.ndarray], config: AnalyzeConfig, skeleton) -> list[Track]:
    """Per-frame keypoint records → tracks of ``skeleton``, smoothed like bodies' keypoints.  A top-down 2D model's
    (VITPOSE_25, COCO_17) have no 3D: ``xyz`` and ``root_xyz`` are NaN (``Track.has_xyz``).  A 3D model's
    (LW3D_19, whose camera-space joints are recorded as ``keypoints/xyz``) have ``root_xyz`` the pelvis
    joint's camera position and ``xyz`` the joints about it."""
    if "keypoints/id" not in arrays:
        return []
    frame_index, time_s = arrays["frame_index"], arrays["time_s"]
    smoother = body_smoother(config)
    shortest = min_track_length(config, len(frame_index))
    tracks = []
    for tid in np.unique(arrays["keypoints/id"]):
        m = _stage_rows(arrays, "keypoints", tid)
        if m.sum() < shortest:
            continue
        fi = arrays["keypoints/frame"][m]
        ts = time_s[np.searchsorted(frame_index, fi)]
        camera = arrays["keypoints/xyz"][m] if "keypoints/xyz" in arrays else None
        fi, _, xy, camera, conf = smooth_track_arrays(fi, ts, arrays["keypoints/xy"][m], camera,
                                                      arrays["keypoints/scores"][m], frame_index, time_s, smoother,
                                                      max_gap=config.max_gap)
        frames, joints = xy.shape[:2]
        if camera is None:
            xyz, root = np.full((frames, joints, 3), np.nan), np.full((frames, 3), np.nan)
        else:
            root = camera[:, skeleton.index("pelvis")]
            xyz = camera - root[:, None]
        tracks.append(with_data_only(Track(track_id=int(tid), skeleton=skeleton, frame_index=fi, xy=xy, xyz=xyz,
                                           conf=conf, root_xyz=root)))
    return tracks


def with_data_only(track: Track) -> Track:
    """``track`` without the frames on which it has no joint at all: the frames of a gap longer than
    ``max_gap`` (the person hidden or away), which the smoother's dense range holds as NaN.  A Take lists a
    person on a frame only where it says something about them (on vtest.avi, frames 50 and 100 listed two and
    three people with no joint there)."""
    return track.select(np.isfinite(track.xy).any(axis=(1, 2)))


@dataclass
class StreamedFace:
    """One face as :class:`FacePoseStream` saw it: ``frame_index`` (T,), filtered ``xy`` (T, P, 2) and
    ``z`` (T, P), a head pose per frame (None for collapsed landmarks)."""

    frame_index: np.ndarray
    xy: np.ndarray
    z: np.ndarray
    poses: list


POSE_BLOCK_FRAMES = 16
"""Frames of one face whose head poses :class:`FacePoseStream` solves together, with
:func:`rigcast.face.head_pose.solve_head_poses`: 0.4 ms a frame against 1.5 one frame at a time."""


class _FaceSoFar:
    """:class:`FacePoseStream`'s lists for one face, and its landmark filter (None without smoothing)."""

    def __init__(self, landmark_filter):
        self.frames: list[int] = []
        self.xy: list[np.ndarray] = []
        self.z: list[np.ndarray] = []
        self.poses: list = []
        self.filter = landmark_filter


class FacePoseStream:
    """:func:`assemble_faces`' landmark filtering and head poses, on a worker thread, so that they run
    while later frames are analysed instead of after the last one.

    Each face's One Euro filter (:class:`~rigcast.smooth.OneEuroFilter`, on x, y and z) sees its frames
    in order, with the values the cache holds (``_face_payload``'s float32), so :func:`assemble_faces` gets
    the numbers it would compute itself.  Frames go to the worker ``POSE_BLOCK_FRAMES`` at a time, and each
    face's head poses are solved as soon as it has that many frames without one; :meth:`result` does the
    rest.  :meth:`add` returns at once; :meth:`result` waits for the worker and stops it.
    """

    def __init__(self, intrinsics: Intrinsics, config: AnalyzeConfig):
        from concurrent.futures import ThreadPoolExecutor

        self.intrinsics = intrinsics
        self.euro = landmark_euro(config)
        self._faces: dict[int, _FaceSoFar] = {}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rigcast-face-poses")
        self._futures: list = []
        self._frames: list[tuple] = []  # added, not yet handed to the worker

    def add(self, frame_index: int, time_s: float, face_ids: np.ndarray, payload: dict[str, np.ndarray]) -> None:
        """The faces of one frame: ``face_ids`` (N,) and ``_face_payload``'s arrays for them."""
        self._frames.append((int(frame_index), float(time_s), face_ids, payload["xy"], payload["z"]))
        if len(self._frames) >= POSE_BLOCK_FRAMES:
            self._futures.append(self._worker.submit(self._filter_frames, self._frames))
            self._frames = []

    def _filter_frames(self, frames: list[tuple]) -> None:
        for frame in frames:
            self._filter(*frame)

    def _filter(self, frame_index: int, time_s: float, face_ids: np.ndarray, xy: np.ndarray, z: np.ndarray) -> None:
        from ..smooth import OneEuroFilter

        xyz = np.concatenate([xy, z[..., None]], axis=2, dtype=np.float64)  # (N, P, 3): x, y, z filtered alike
        for fid, xyz_f in zip(face_ids.tolist(), xyz):
            face = self._faces.get(fid)
            if face is None:
                self._faces[fid] = face = _FaceSoFar(OneEuroFilter(self.euro, xyz_f.shape) if self.euro else None)
            if face.filter is not None:
                height = float(np.ptp(xyz_f[:, 1]))  # the face height in px: the speed scale
                xyz_f = face.filter.step(xyz_f, time_s, height)
            xy_f, z_f = xyz_f[:, :2], xyz_f[:, 2]
            face.frames.append(frame_index)
            face.xy.append(xy_f)
            face.z.append(z_f)
            if len(face.xy) - len(face.poses) >= POSE_BLOCK_FRAMES:
                self._solve(face)

    def _solve(self, face: _FaceSoFar) -> None:
        """The head poses of ``face``'s frames that have none yet (None for collapsed landmarks)."""
        from ..face import solve_head_poses

        start = len(face.poses)
        if start < len(face.xy):
            face.poses += solve_head_poses(np.stack(face.xy[start:]), np.stack(face.z[start:]), self.intrinsics)

    def result(self) -> dict[int, StreamedFace]:
        """Every face seen so far; waits for the worker (re-raising its error, if any) and stops it."""
        self.close()
        for future in self._futures:
            future.result()
        self._filter_frames(self._frames)  # the last frames, fewer than a block
        self._frames = []
        for face in self._faces.values():
            self._solve(face)
        return {fid: StreamedFace(np.array(face.frames, dtype=np.int64), np.stack(face.xy), np.stack(face.z),
                                  face.poses)
                for fid, face in self._faces.items()}

    def close(self) -> None:
        self._worker.shutdown(wait=True)


def assemble_faces(arrays: dict[str, np.ndarray], intrinsics: Intrinsics, config: AnalyzeConfig,
                   track_ids: set[int], streamed: dict[int, "StreamedFace"] | None = None
                   ) -> tuple[list[Face], FaceTopology | None]:
    """Per-frame face records → faces with smoothed landmarks, head pose and metric mesh, linked to bodies
    (:func:`~rigcast.pipeline.faces.join_faces_on_bodies`: one face per body, a face found again on its body
    keeps its id).

    Landmarks are One Euro filtered (speed in face heights per second), the
    head pose is solved on the filtered landmarks, then its rotation is
    filtered on the rotation manifold and its translation as a vector.
    The landmark filtering and the poses are :class:`FacePoseStream`'s:
    ``streamed`` is what one already computed while the frames were
    analysed; without it, the cached frames go through a new one here.
    """
    if "face/id" not in arrays or not len(arrays["face/id"]):
        return [], None
    from ..face.geometry import canonical_face
    from ..face.head_pose import smooth_head_poses
    from .faces import join_faces_on_bodies

    frame_index, time_s = arrays["frame_index"], arrays["time_s"]
    if streamed is None:
        stream = FacePoseStream(intrinsics, config)
        bounds = np.searchsorted(arrays["face/frame"], frame_index, side="left").tolist() + [len(arrays["face/frame"])]
        for k, (f, t) in enumerate(zip(frame_index, time_s)):
            rows = slice(bounds[k], bounds[k + 1])  # the cache holds each frame's faces together, frames in order
            stream.add(f, t, arrays["face/id"][rows], {"xy": arrays["face/xy"][rows], "z": arrays["face/z"][rows]})
        streamed = stream.result()
    links, face_ids = join_faces_on_bodies(arrays["face/id"], arrays["face/body"], arrays["face/frame"], track_ids)
    streamed = _join_streamed(streamed, arrays["face/id"], face_ids)
    euro = landmark_euro(config)
    faces = []
    shortest = min_track_length(config, len(frame_index))
    for fid in np.unique(face_ids):
        m = face_ids == fid
        if m.sum() < shortest:
            continue
        fi = arrays["face/frame"][m]
        ts = time_s[np.searchsorted(frame_index, fi)]
        conf = arrays["face/conf"][m]
        done = streamed[int(fid)]
        if not np.array_equal(done.frame_index, fi):
            raise RuntimeError(f"face {fid}: the streamed head poses cover frames other than the cached ones")
        xy, z, poses = done.xy, done.z, done.poses
        if euro is not None:
            rotation, translation = smooth_head_poses(poses, ts)
        else:
            rotation = np.stack([p.rotation if p else np.full((3, 3), np.nan) for p in poses])
            translation = np.stack([p.translation if p else np.full(3, np.nan) for p in poses])
        mesh = np.stack([p.mesh_xyz if p else np.full((xy.shape[1], 3), np.nan) for p in poses])
        scale = np.array([p.scale if p else np.nan for p in poses])
        conf = np.where([p is not None for p in poses], conf, 0.0)
        faces.append(Face(face_id=int(fid), body_id=links[int(fid)], frame_index=fi, xy=xy, xyz=mesh,
                          rotation=rotation, translation=translation, conf=conf, scale=scale))
    canon = canonical_face()
    topology = FaceTopology(triangles=canon.triangles, uv=canon.uv, canonical_xyz=canon.xyz_m) if faces else None
    return faces, topology


def _join_streamed(streamed: dict[int, StreamedFace], old_ids: np.ndarray, new_ids: np.ndarray
                   ) -> dict[int, StreamedFace]:
    """``streamed`` (by the ids the records had) by the ids :func:`~rigcast.pipeline.faces.join_faces_on_bodies`
    gave them: the parts of a face lost and found again on its body, joined in frame order.  Each part kept
    its own landmark filter, which starts afresh after the gap."""
    parts: dict[int, list[StreamedFace]] = {}
    for old, new in sorted(set(zip(old_ids.tolist(), new_ids.tolist()))):
        parts.setdefault(new, []).append(streamed[old])
    joined = {}
    for new, faces in parts.items():
        if len(faces) == 1:
            joined[new] = faces[0]
            continue
        frames = np.concatenate([f.frame_index for f in faces])
        order = np.argsort(frames, kind="stable")  # the parts never share a frame, but may take turns
        poses = [p for f in faces for p in f.poses]
        joined[new] = StreamedFace(frames[order], np.concatenate([f.xy for f in faces])[order],
                                   np.concatenate([f.z for f in faces])[order], [poses[i] for i in order])
    return joined


def _resolve_aliases(ids: np.ndarray, aliases: dict[int, int]) -> np.ndarray:
    """``ids`` (N,) with each retired id replaced by the id it was merged into."""
    if not aliases:
        return ids
    return np.array([aliases.get(i, i) for i in ids.tolist()], dtype=np.int64)


def _repeated_rows(frame_index: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices of records whose (frame, id) another record with a higher ``score`` (or, tied, earlier) holds."""
    order = np.lexsort((-np.asarray(scores, dtype=np.float64), ids, frame_index))
    key = np.stack([frame_index[order], ids[order]], axis=1)
    repeat = np.r_[False, np.all(key[1:] == key[:-1], axis=1)]
    return np.sort(order[repeat])


def _drop_rows(arrays: dict[str, np.ndarray], key: str, rows: np.ndarray) -> None:
    """The stage ``key``'s per-record arrays without ``rows`` (its per-frame ``detected`` kept whole), in place."""
    if rows.size:
        for name in [n for n in arrays if n.startswith(f"{key}/") and n != f"{key}/detected"]:
            arrays[name] = np.delete(arrays[name], rows, axis=0)


def _split_at_cuts(arrays: dict[str, np.ndarray], cuts: np.ndarray, keys: list[str], body_key: str | None) -> None:
    """Every stage's ids split at the shot ``cuts`` (:func:`~rigcast.video.cuts.split_ids_at`), in place; a face's
    body link follows its body into the same shot."""
    for key in keys:
        ids = arrays[f"{key}/id"]
        first_new = int(ids.max()) + 1 if ids.size else 0
        arrays[f"{key}/id"], mapping = split_ids_at(cuts, arrays[f"{key}/frame"], ids, first_new)
        if key == body_key and "face/body" in arrays:
            shot = np.searchsorted(cuts, arrays["face/frame"], side="right")
            arrays["face/body"] = np.array([mapping.get((s, b), -1) if b >= 0 else -1
                                            for s, b in zip(shot.tolist(), arrays["face/body"].tolist())],
                                           dtype=np.int64)


def _concat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def make_stages(config: AnalyzeConfig, camera: Intrinsics | None = None) -> list[Stage]:
    """The per-frame analysers ``config`` asks for, with their models loaded.  A 3D keypoint model places people
    with ``camera``'s focal length (the Take's), or without one ``config.focal_px`` or the model's own guess."""
    stages = []
    if config.bodies and config.bottom_up:
        from ..models import make_keypoint_model
        from .bottomup import BottomUpAnalyzer, BottomUpConfig

        estimator = make_keypoint_model(config.pose, device=config.device, strict_device=config.strict_device,
                                        focal_px=config.focal_px if camera is None else camera.fx)
        analyzer = BottomUpAnalyzer(estimator, BottomUpConfig(max_people=config.max_people))
        joints = estimator.skeleton.num_joints
        stages.append(Stage("keypoints", analyzer, lambda r: r.track_id,
                            lambda rs: _keypoint_payload(rs, joints, with_xyz=True)))
    elif config.bodies and config.keypoint_model:
        from ..models import make_keypoint_model, make_person_detector
        from .topdown import TopDownAnalyzer, TopDownConfig

        detector = make_person_detector(config.detector_name(), device=config.device,
                                        strict_device=config.strict_device)
        estimator = make_keypoint_model(config.pose, device=config.device, strict_device=config.strict_device)
        analyzer = TopDownAnalyzer(detector, estimator, TopDownConfig(max_people=config.max_people,
                                                                      detect_every=config.detect_every))
        joints = estimator.skeleton.num_joints
        stages.append(Stage("keypoints", analyzer, lambda r: r.track_id, lambda rs: _keypoint_payload(rs, joints)))
    elif config.bodies:
        detector, landmarker = make_pose_models(config.model, device=config.device, strict_device=config.strict_device,
                                                detector=config.detector_name(), max_people=config.max_people)
        body = BodyAnalyzer(detector, landmarker, BodyConfig(max_people=config.max_people,
                                                             redetect_every=config.redetect_every))
        stages.append(Stage("body", body, lambda r: r.track_id, _body_payload))
    if config.faces and config.face_model:
        from .face_sources import SourceFaceAnalyzer, open_face_model, source_face_payload

        if camera is None:
            raise ValueError("a face model needs the Take's camera: pass make_stages(config, camera)")
        model = open_face_model(config.face_source, device=config.device, strict_device=config.strict_device)
        faces = SourceFaceAnalyzer(model, camera, max_faces=config.max_faces)
        k = getattr(model, "num_coefficients", 0)
        stages.append(Stage("face", faces, lambda r: r.face_id, lambda rs: source_face_payload(rs, k)))
    elif config.faces:
        from .faces import FaceAnalyzer, FaceConfig, make_face_models

        detector, landmarker = make_face_models(device=config.device, strict_device=config.strict_device,
                                                detector_mode=config.face_detector,
                                                landmarks=config.face_landmarks)
        faces = FaceAnalyzer(detector, landmarker, FaceConfig(max_faces=config.max_faces,
                                                              redetect_every=config.redetect_every,
                                                              frames_in_flight=config.face_frames_in_flight))
        stages.append(Stage("face", faces, lambda r: r.face_id, _face_payload))
    if not stages:
        raise InputError("nothing to analyse: both bodies and faces are switched off")
    return stages


def _keypoint_skeleton(stages: list[Stage]):
    """The skeleton of the top-down keypoint stage's model, None without one."""
    return next((s.analyzer.skeleton for s in stages if s.key == "keypoints"), None)


def user_model_meta(family: str, path: str | Path) -> dict:
    """What a Take records of a user's model file: its family, absolute path and sha256."""
    from ..model_store import sha256_file

    path = Path(path)
    return {"family": family, "path": str(path.resolve()), "sha256": sha256_file(path)}


def _body_models_meta(config: AnalyzeConfig, stages: list[Stage]) -> dict:
    """meta["models"] for bodies: the detector ("yolo:PATH" for a user's file, described again under
    ``detector_file``), and the landmark model or, for a user's keypoint model, ``pose`` (file and skeleton)."""
    name = config.detector_name()
    out = {"detector": None if config.bottom_up else PERSON_DETECTOR_MODELS.get(name, name)}
    family, detector_path = split_person_detector(name)
    if detector_path is not None and not config.bottom_up:
        out["detector_file"] = user_model_meta(family, detector_path)
    if config.keypoint_model:
        family, pose_path = split_pose_model(config.pose)
        out["pose"] = user_model_meta(family, pose_path) | {"skeleton": _keypoint_skeleton(stages).name}
    else:
        out["landmarks"] = f"pose_landmark_{config.model}"
    return out


def _face_models_meta(config: AnalyzeConfig, stages: list[Stage]) -> dict:
    """meta["models"] for faces: MediaPipe's detector range and landmark models, or the user's face model
    (``face``: family, path and sha256)."""
    if not config.faces:
        return {}
    if config.face_model:
        family, path = split_face_source(config.face_source)
        if Path(path).is_dir():  # a folder of model files (3DDFA_V2's): recorded by path
            return {"face": {"family": family, "path": str(Path(path).resolve())}}
        return {"face": user_model_meta(family, path)}
    return {"face_detector": config.face_detector,
            "face_landmarks": "+".join(FACE_LANDMARK_MODELS[config.face_landmarks])}


def _face_source_meta(config: AnalyzeConfig, stages: list[Stage]) -> dict | None:
    """meta["face_source"] (:func:`~rigcast.pipeline.face_sources.face_source_meta`); None without faces."""
    if not config.faces:
        return None
    from .face_sources import face_source_meta

    face = next((s.analyzer for s in stages if s.key == "face"), None)
    return face_source_meta(config.face_source, getattr(getattr(face, "model", None), "mesh_topology", None))


def _providers(stages: list[Stage]) -> str:
    found = []
    for stage in stages:
        for part in vars(stage.analyzer).values():
            runner = getattr(part, "runner", None)
            if runner is not None and runner.provider not in found:
                found.append(runner.provider)
    return ",".join(found) or "unknown"


def _open_enhancer(config: AnalyzeConfig):
    """(the :class:`~rigcast.enhance.Enhancer` of ``config.enhance``, what the Take's meta records of it), or
    (None, None) without one.  Opened before any footage is read, so a file that is not an upscaler fails first."""
    if config.enhance is None:
        return None, None
    from ..enhance import open_enhancer

    enhancer = open_enhancer(config.enhance, tile=config.enhance_tile, overlap=config.enhance_overlap,
                             device=config.device, strict_device=config.strict_device)
    meta = user_model_meta("super_resolution", config.enhance) | {
        "scale": enhancer.scale, "tile": list(enhancer.tile_hw), "overlap": enhancer.overlap,
        "provider": enhancer.runner.provider}
    log.info("frames upscaled x%d by %s before analysis", enhancer.scale, Path(config.enhance).name)
    return enhancer, meta


def enhanced_frames(frames: Iterator, enhancer) -> Iterator:
    """``frames`` (:class:`~rigcast.video.Frame`) with each picture upscaled by ``enhancer``; closing this
    closes ``frames``."""
    try:
        for frame in frames:
            yield replace(frame, rgb=enhancer(frame.rgb))
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


SUBMIT_AHEAD = 2
"""Frames :func:`analyze` submits beyond the one whose results it is waiting for (:func:`submit_ahead`)."""


def submit_ahead(items: Iterable, submit: Callable[[Any], Any], ahead: int = SUBMIT_AHEAD
                 ) -> Iterator[tuple[Any, Any]]:
    """``(item, submit(item))`` for each of ``items`` in order, each handed out only once ``ahead`` more items
    have been submitted (or the items ran out).

    The analysers work on their own threads (``FaceAnalyzer.submit``), so
    the caller never holds them up: with ``ahead=2`` and faces two frames in
    flight, frame t + 2 is queued before frame t is collected, and its face
    model starts on frame t's ROIs as soon as frame t is done.
    With ``ahead=1`` the face pipeline ran in lock-step, both cores waiting
    for each pair of frames to be finished: 9-13 % fewer faces per second
    (benchmarks/bench_faces.py, 100 frames, 15 interleaved rounds).
    """
    if ahead < 1:
        raise ValueError(f"ahead must be at least 1, got {ahead}")
    waiting: deque = deque()
    for item in items:
        waiting.append((item, submit(item)))
        if len(waiting) > ahead:
            yield waiting.popleft()
    while waiting:
        yield waiting.popleft()


@contextmanager
def single_threaded_libraries():
    """Run OpenCV and the BLAS under numpy single-threaded for the duration.

    While analysing, onnxruntime and rigcast's worker threads keep the cores
    busy, and the libraries' own thread pools only contend with them:
    OpenCV's pool for the small crops (measured: 36 → 43 body frames/s on 2
    cores), and OpenBLAS's threads, which spin on the other core after each
    small matrix product (landmark post-processing, head-pose fits, the
    Kalman trackers) and so starve the workers (face pipeline with head
    poses: 8.8-10.0 → 5.4-6.2 ms per frame on 2 cores).
    """
    import cv2
    from threadpoolctl import threadpool_limits

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        cv2.setNumThreads(before)


def analyze(source: str | Path, take_path: str | Path, config: AnalyzeConfig = AnalyzeConfig(),
            progress: Progress | None = None, restart: bool = False, keep_cache: bool = False) -> Take:
    """Analyse ``source`` and write the Take to ``take_path``; returns the Take.

    Resumes from ``<take_path>.parts/`` when a previous run of the same job
    was interrupted.

    With ``config.enhance`` (a super-resolution model, :mod:`rigcast.enhance`)
    every frame is upscaled on the fly, on the decoding thread, and the
    analysers see only the upscaled frames, through the same camera scaled
    alike (:meth:`Intrinsics.scaled`): small faces and people get the pixels
    their models need, and no upscaled video is written.  The Take is then
    put back in the footage's own pixels (2D divided by the scale; 3D, in
    metres, is the same in both), so overlays and renders match the footage;
    its meta names the model and its scale under ``enhance``.
    """
    take_path = Path(take_path)
    t0 = time.perf_counter()
    enhancer, enhance_meta = _open_enhancer(config)
    scale = 1 if enhancer is None else enhancer.scale
    with open_footage(source, start=config.start, end=config.end, fps=config.image_fps) as footage, \
            single_threaded_libraries():
        info = footage.info
        seen = camera_for(info, config).scaled(scale)  # the camera of the frames the analysers see
        stages = make_stages(config, seen)
        job = {"cache_version": CACHE_VERSION, "rigcast": __version__, "source": _source_fingerprint(Path(source)),
               "options": config.result_key()}
        if enhance_meta is not None:
            job["enhance_sha256"] = enhance_meta["sha256"]
        cache = ChunkCache(take_path, job)
        chunks = cache.open(restart)
        states = {stage.key: stage.restore(chunks, (info.width * scale, info.height * scale)) for stage in stages}
        done = sum(len(c["frame_index"]) for c in chunks)
        resume_from = int(chunks[-1]["frame_index"][-1]) + 1 if chunks else None
        if chunks:
            log.info("resuming after %d cached frames (frame %d)", done, resume_from)
        total = info.frame_count
        if progress:
            progress(done, total)
        pending: list = []
        # Decoded on a worker thread, a frame or two ahead of the analysis.
        # A resume decodes the last cached frame again: the bodies' image motion is measured from it.
        frames = footage.frames(from_index=resume_from - 1) if resume_from is not None else iter(footage)
        frames_iter = prefetched(frames if enhancer is None else enhanced_frames(frames, enhancer))
        change = ContentChange()
        if chunks:
            last = next(frames_iter)
            change(last.rgb)
            for stage in stages:
                stage.prime(states[stage.key], chunks, last.rgb)
        # Face poses are solved while later frames are analysed; a resumed run solves them all at the end.
        poses = (FacePoseStream(seen, config)
                 if config.faces and not config.face_model and not chunks else None)

        if config.faces:
            from .faces import body_heads
            from .topdown import keypoint_heads

        changes: dict[int, float] = {}  # frame index → content change, from submit to the chunk

        def submit(frame) -> dict:
            changes[frame.index] = changes_now = change(frame.rgb)
            if changes_now >= MIN_CHANGE and hasattr(states.get("body"), "new_shot"):  # (body runs in submit)
                states["body"].new_shot()
            futures = {}
            for s in stages:
                if s.key == "face" and "body" in futures:  # faces are also read from the bodies' heads
                    heads = body_heads(futures["body"].result()[0])
                    futures[s.key] = s.analyzer.submit(frame.rgb, frame.time_s, states[s.key], heads)
                elif s.key == "face" and "keypoints" in futures:  # or from a keypoint model's face points
                    heads = keypoint_heads(futures["keypoints"].result()[0], _keypoint_skeleton(stages))
                    futures[s.key] = s.analyzer.submit(frame.rgb, frame.time_s, states[s.key], heads)
                else:
                    futures[s.key] = s.analyzer.submit(frame.rgb, frame.time_s, states[s.key])
            return futures

        try:
            for frame, futures in submit_ahead(frames_iter, submit):
                pending.append((frame.index, frame.time_s, {key: f.result() for key, f in futures.items()},
                                changes.pop(frame.index)))
                if poses is not None:
                    face_records = pending[-1][2]["face"][0]
                    poses.add(frame.index, frame.time_s, np.array([r.face_id for r in face_records], dtype=np.int64),
                              _face_payload(face_records))
                done += 1
                if len(pending) >= config.chunk_frames:
                    chunks.append(_pack_chunk(stages, pending))
                    cache.write(len(chunks) - 1, chunks[-1])
                    pending = []
                if progress:
                    progress(done, total)
        finally:
            frames_iter.close()  # stops the decoding thread before the footage closes
            for stage in stages:
                stage.analyzer.close()
            if poses is not None:
                poses.close()
        if pending:
            chunks.append(_pack_chunk(stages, pending))
            cache.write(len(chunks) - 1, chunks[-1])
        info = footage.info  # exact frame count and VFR flag after a full pass
    if not chunks:
        raise InputError(f"expected at least one frame in {source} (range {config.start}..{config.end}), found none")
    arrays = _concat(chunks)
    # People and faces re-identified after a first sighting under a new id take their old id for every frame.
    merged = {key: state.tracker.aliases() for key, state in states.items()}
    for key, aliases in merged.items():
        arrays[f"{key}/id"] = _resolve_aliases(arrays[f"{key}/id"], aliases)
        # Two ids that took turns on one person are one (turn_takers); on the frame both were given, the surer
        # read stays.
        turns = turn_takers(arrays[f"{key}/frame"], arrays[f"{key}/id"], arrays[f"{key}/box"])
        if turns:
            arrays[f"{key}/id"] = _resolve_aliases(arrays[f"{key}/id"], turns)
            _drop_rows(arrays, key, _repeated_rows(arrays[f"{key}/frame"], arrays[f"{key}/id"],
                                                   arrays[f"{key}/score"]))
            merged[key] = {**{i: turns.get(j, j) for i, j in aliases.items()}, **turns}
    body_key = next((k for k in ("body", "keypoints") if f"{k}/id" in arrays), None)
    if "face/body" in arrays and body_key is not None:  # a face sits on the body its body merged into
        arrays["face/body"] = _resolve_aliases(arrays["face/body"], merged[body_key])
    # Edited footage: whoever stands in a followed ROI after a cut is another person (or the same, unknown).
    cuts = shot_starts(arrays["frame_index"], arrays["time_s"], arrays["content_change"])
    if cuts.size:
        _split_at_cuts(arrays, cuts, [s.key for s in stages], body_key)
    if info.frame_count != len(arrays["frame_index"]):
        info = replace(info, frame_count=len(arrays["frame_index"]))
    intrinsics = camera_for(info, config)
    seen = intrinsics.scaled(scale)
    tracks, ground = _assemble_tracks(arrays, seen, config)
    tracks += assemble_keypoint_tracks(arrays, config, _keypoint_skeleton(stages))
    # The streamed head poses followed each face id as first given; merged faces are filtered again.
    streamed = poses.result() if poses is not None and poses.intrinsics == seen else None
    streamed = None if merged.get("face") or cuts.size else streamed
    if config.face_model:
        from .face_sources import assemble_source_faces

        faces, topology = assemble_source_faces(arrays, seen, landmark_euro(config),
                                                min_track_length(config, len(arrays["frame_index"])),
                                                {t.track_id for t in tracks})
    else:
        faces, topology = assemble_faces(arrays, seen, config, {t.track_id for t in tracks}, streamed)
    if scale != 1:  # back in the footage's pixels
        tracks = [replace(t, xy=t.xy / np.float32(scale)) for t in tracks]
        faces = [replace(f, xy=f.xy / np.float32(scale)) for f in faces]
    meta = {
        "rigcast_version": __version__,
        "created_unix": time.time(),
        "models": (_body_models_meta(config, stages) if config.bodies else {}) | _face_models_meta(config, stages),
        "face_source": _face_source_meta(config, stages),
        "provider": _providers(stages),
        "config": asdict(config),
        "smoothing": _smoothing_meta(config),
        "ground": ground,
        **({"enhance": enhance_meta} if enhance_meta is not None else {}),
        "detector_frames": {s.key: int(arrays[f"{s.key}/detected"].sum()) for s in stages},
        "shot_cuts": cuts.tolist(),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    face_stage = next((s.analyzer for s in stages if s.key == "face"), None)
    face_mesh = getattr(getattr(face_stage, "model", None), "face_mesh", None)
    if not any(f.mesh_coefficients is not None for f in faces):
        face_mesh = None
    take = Take(video=info, intrinsics=intrinsics, frame_indices=arrays["frame_index"], timestamps_s=arrays["time_s"],
                tracks=tuple(tracks), faces=tuple(faces), face_topology=topology, meta=meta, face_mesh=face_mesh)
    take.save(take_path)
    if not keep_cache:
        cache.remove()
    return take
