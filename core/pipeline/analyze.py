"""footage → frames → people → tracks → Take, resumable.

Per-frame results go to an on-disk chunk cache (``<take>.parts/``) every
``chunk_frames`` frames, written atomically.  A run killed mid-clip picks up
after the last finished chunk: the tracker is rebuilt by replaying the
cached boxes (no model runs), and the next ROIs come from the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..camera import Intrinsics
from ..errors import InputError
from ..formats.take import Take, Track
from ..lift import estimate_root_trajectory
from ..models import Roi, make_pose_models
from ..skeletons import BLAZEPOSE_33
from ..smooth import ONE_EURO_LANDMARKS, OneEuroConfig, smooth_track_arrays
from ..video import VideoInfo, open_footage
from .body import BodyAnalyzer, BodyConfig, BodyState, PersonRecord

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""progress(frames_done, frames_total); total is -1 when unknown."""

CACHE_VERSION = 1


@dataclass(frozen=True)
class AnalyzeConfig:
    """Every option of ``rigcast analyze``, with its default."""

    model: str = "full"  # lite | full | heavy
    device: str = "auto"  # auto | cpu | cuda | tensorrt
    strict_device: bool = False
    max_people: int = 4
    start: str | None = None  # time spec: seconds, [hh:]mm:ss, or "<n>f" for a frame number
    end: str | None = None
    image_fps: float = 30.0  # frame rate given to image sequences
    fov_deg: float | None = None  # horizontal field of view; default camera.DEFAULT_HFOV_DEG
    focal_px: float | None = None  # overrides fov_deg
    redetect_every: int = 15
    smooth: bool = True
    min_cutoff: float = ONE_EURO_LANDMARKS.min_cutoff  # One Euro, see smooth.OneEuroConfig
    beta: float = ONE_EURO_LANDMARKS.beta
    max_gap: int = 5  # frames; longer gaps stay missing
    min_track_frames: int = 3  # shorter tracks are dropped as spurious
    chunk_frames: int = 64

    def __post_init__(self) -> None:
        if self.model not in ("lite", "full", "heavy"):
            raise InputError(f"model must be lite, full or heavy, got {self.model!r}")
        if self.chunk_frames < 1:
            raise InputError(f"chunk_frames must be at least 1, got {self.chunk_frames}")

    def result_key(self) -> dict:
        """The options that change per-frame results; a cache is reused only when these match."""
        return {k: getattr(self, k) for k in ("model", "max_people", "start", "end", "image_fps", "redetect_every")}


def camera_for(info: VideoInfo, config: AnalyzeConfig) -> Intrinsics:
    if config.focal_px is not None:
        return Intrinsics.from_focal(info.width, info.height, config.focal_px)
    if config.fov_deg is not None:
        return Intrinsics.from_fov(info.width, info.height, config.fov_deg)
    return Intrinsics.from_fov(info.width, info.height, source="default")


# -- chunk cache -------------------------------------------------------------

_REC_FIELDS = ("rec_frame", "rec_track", "xy", "z", "visibility", "presence", "world", "score", "box", "appearance",
               "next_roi")


def _records_to_arrays(frames: list[tuple[int, float, bool, list[PersonRecord]]]) -> dict[str, np.ndarray]:
    recs = [(f, r) for f, _, _, rs in frames for r in rs]
    d = len(recs[0][1].appearance) if recs else 0
    out = {
        "frame_index": np.array([f for f, _, _, _ in frames], dtype=np.int64),
        "time_s": np.array([t for _, t, _, _ in frames], dtype=np.float64),
        "detected": np.array([d_ for _, _, d_, _ in frames], dtype=bool),
        "rec_frame": np.array([f for f, _ in recs], dtype=np.int64),
        "rec_track": np.array([r.track_id for _, r in recs], dtype=np.int64),
        "xy": np.array([r.landmarks.xy for _, r in recs], dtype=np.float32).reshape(-1, 33, 2),
        "z": np.array([r.landmarks.z for _, r in recs], dtype=np.float32).reshape(-1, 33),
        "visibility": np.array([r.landmarks.visibility for _, r in recs], dtype=np.float32).reshape(-1, 33),
        "presence": np.array([r.landmarks.presence for _, r in recs], dtype=np.float32).reshape(-1, 33),
        "world": np.array([r.landmarks.world_xyz for _, r in recs], dtype=np.float32).reshape(-1, 33, 3),
        "score": np.array([r.landmarks.score for _, r in recs], dtype=np.float64),
        "box": np.array([r.box_xyxy for _, r in recs], dtype=np.float64).reshape(-1, 4),
        "appearance": np.array([r.appearance for _, r in recs], dtype=np.float64).reshape(-1, d),
        "next_roi": np.array([_roi_vec(r.landmarks.next_roi()) for _, r in recs], dtype=np.float64).reshape(-1, 4),
    }
    return out


def _roi_vec(roi: Roi) -> np.ndarray:
    return np.array([roi.center_xy[0], roi.center_xy[1], roi.size, roi.rotation], dtype=np.float64)


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
            _atomic_write(job_file, json.dumps(self.job, indent=1).encode())
        chunks = []
        for p in sorted(self.dir.glob("chunk_*.npz")):
            with np.load(p, allow_pickle=False) as z:
                chunks.append({k: z[k] for k in z.files})
        return chunks

    def write(self, number: int, arrays: dict[str, np.ndarray]) -> None:
        def save(f):
            np.savez(f, **arrays)
        _atomic_write(self.dir / f"chunk_{number:06d}.npz", save)

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _atomic_write(path: Path, data) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            data(f) if callable(data) else f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _source_fingerprint(path: Path) -> dict:
    p = Path(path)
    if p.is_file():
        st = p.stat()
        return {"path": str(p.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"path": str(p.resolve()) if p.exists() else str(p)}


def _restore_state(analyzer: BodyAnalyzer, chunks: list[dict[str, np.ndarray]]) -> BodyState:
    """Rebuild the per-frame state after the cached frames by replaying the tracker on cached boxes."""
    state = analyzer.new_state()
    for c in chunks:
        for f, t, det in zip(c["frame_index"], c["time_s"], c["detected"]):
            m = c["rec_frame"] == f
            boxes = c["box"][m]
            ids = state.tracker.update(float(t), boxes, c["score"][m], c["appearance"][m] if m.any() else None)
            if not np.array_equal(ids, c["rec_track"][m]):
                raise InputError("the chunk cache does not replay consistently; run again with --restart")
            state.frames_since_detect = 0 if det else state.frames_since_detect + 1
            state.rois = {int(i): Roi(center_xy=v[:2].copy(), size=float(v[2]), rotation=float(v[3]))
                          for i, v in zip(c["rec_track"][m], c["next_roi"][m])}
    return state


# -- assembly ------------------------------------------------------------------

def assemble_take(arrays: dict[str, np.ndarray], info: VideoInfo, intrinsics: Intrinsics, config: AnalyzeConfig,
                  meta: dict) -> Take:
    """Per-frame records (concatenated chunks) → smoothed tracks with root trajectories."""
    frame_index, time_s = arrays["frame_index"], arrays["time_s"]
    tracks = []
    euro = OneEuroConfig(min_cutoff=config.min_cutoff, beta=config.beta) if config.smooth else None
    for tid in np.unique(arrays["rec_track"]):
        m = arrays["rec_track"] == tid
        if m.sum() < config.min_track_frames:
            continue
        fi = arrays["rec_frame"][m]
        conf = arrays["visibility"][m]
        ts = time_s[np.searchsorted(frame_index, fi)]
        fi, ts, xy, xyz, conf = smooth_track_arrays(fi, ts, arrays["xy"][m], arrays["world"][m], conf, frame_index, time_s,
                                             euro, max_gap=config.max_gap)
        root = estimate_root_trajectory(xy, xyz, conf, intrinsics)
        tracks.append(Track(track_id=int(tid), skeleton=BLAZEPOSE_33, frame_index=fi, xy=xy, xyz=xyz, conf=conf,
                            root_xyz=root.root_xyz))
    return Take(video=info, intrinsics=intrinsics, frame_indices=frame_index, timestamps_s=time_s,
                tracks=tuple(tracks), meta=meta)


def _concat(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    keys = chunks[0].keys()
    return {k: np.concatenate([c[k] for c in chunks]) for k in keys}


def analyze(source: str | Path, take_path: str | Path, config: AnalyzeConfig = AnalyzeConfig(),
            progress: Progress | None = None, restart: bool = False, keep_cache: bool = False) -> Take:
    """Analyse ``source`` and write the Take to ``take_path``; returns the Take.

    Resumes from ``<take_path>.parts/`` when a previous run of the same job
    was interrupted.
    """
    take_path = Path(take_path)
    t0 = time.perf_counter()
    with open_footage(source, start=config.start, end=config.end, fps=config.image_fps) as footage:
        info = footage.info
        detector, landmarker = make_pose_models(config.model, device=config.device, strict_device=config.strict_device)
        analyzer = BodyAnalyzer(detector, landmarker, BodyConfig(max_people=config.max_people,
                                                                 redetect_every=config.redetect_every))
        job = {"cache_version": CACHE_VERSION, "rigcast": __version__, "source": _source_fingerprint(Path(source)),
               "options": config.result_key()}
        cache = ChunkCache(take_path, job)
        chunks = cache.open(restart)
        state = _restore_state(analyzer, chunks)
        done = sum(len(c["frame_index"]) for c in chunks)
        resume_from = int(chunks[-1]["frame_index"][-1]) + 1 if chunks else None
        if chunks:
            log.info("resuming after %d cached frames (frame %d)", done, resume_from)
        total = info.frame_count
        if progress:
            progress(done, total)
        pending: list[tuple[int, float, bool, list[PersonRecord]]] = []
        frames_iter = footage.frames(from_index=resume_from) if resume_from is not None else iter(footage)
        for frame in frames_iter:
            records, detected = analyzer.process(frame.rgb, frame.time_s, state)
            pending.append((frame.index, frame.time_s, detected, records))
            done += 1
            if len(pending) >= config.chunk_frames:
                arrays = _records_to_arrays(pending)
                cache.write(len(chunks), arrays)
                chunks.append(arrays)
                pending = []
            if progress:
                progress(done, total)
        if pending:
            arrays = _records_to_arrays(pending)
            cache.write(len(chunks), arrays)
            chunks.append(arrays)
    if not chunks:
        raise InputError(f"expected at least one frame in {source} (range {config.start}..{config.end}), found none")
    arrays = _concat(chunks)
    if info.frame_count != len(arrays["frame_index"]):
        info = _with_frame_count(info, len(arrays["frame_index"]))
    meta = {
        "rigcast_version": __version__,
        "created_unix": time.time(),
        "models": {"detector": "pose_detection", "landmarks": f"pose_landmark_{config.model}"},
        "provider": getattr(landmarker.runner, "provider", "unknown"),
        "config": asdict(config),
        "detector_frames": int(arrays["detected"].sum()),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    intrinsics = camera_for(info, config)
    take = assemble_take(arrays, info, intrinsics, config, meta)
    take.save(take_path)
    if not keep_cache:
        cache.remove()
    return take


def _with_frame_count(info: VideoInfo, n: int) -> VideoInfo:
    from dataclasses import replace

    return replace(info, frame_count=n)
