"""Per-frame face analysis: detect, follow landmark ROIs, assign face ids; link faces to bodies.

The same tracking mode as :mod:`.body` (MediaPipe's face mesh in video mode,
generalised to many faces): each face's next ROI comes from this frame's
mesh, so the detector only runs when nobody is followed, when a followed
face is lost, and every ``redetect_every`` frames to catch newcomers.
Identities come from :class:`~rigcast.track.BoxTracker` on the mesh boxes.

Two stages per frame: tracking (meshes, detector, next ROIs) and
finishing (face ids from the tracker and, with the separate iris model, the
eyes of every face in one iris-model batch).  The next frame needs only the
ROIs, never the ids or the irises (as in MediaPipe's iris graph), so
:meth:`FaceAnalyzer.submit` finishes frame t on a worker thread while the
caller goes on to track frame t + 1: the same records as
:meth:`FaceAnalyzer.process`.  The worker alone touches the tracker, in
frame order; the caller alone touches the ROIs.

Legend: N faces in a frame, J body keypoints, D appearance descriptor length.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..model_store import load_model
from ..models.face_detector import DETECTOR_MODES, FaceDetector
from ..models.face_landmarks import FACE_LANDMARK_MODELS, FaceLandmarker, FaceLandmarks
from .follow import FollowState, Result, box_iou, dedupe, follow, identify, scaled_box

HEAD_KEYPOINTS = tuple(range(9))
"""BlazePose-33 nose, eyes (inner, centre, outer, both sides) and ears: the body's head points."""

# The tracker's appearance cue looks at the middle of the box it is given (the "torso" band of a
# person box, see rigcast.track.appearance).  Given the face box doubled about its centre, that band is
# the face's width from the hair down to the nose: hair, skin and glasses, what tells faces apart.
APPEARANCE_BOX_SCALE = 2.0

# Fast motion.  The mesh model draws the face it is given at the centre of its crop: with the ROI
# 0.3 face widths off the face (the face moved that much since the last frame), the mesh lands
# 17-30 % of the face away from it, and the face flag stays at 1.0 (measured with the astronaut).
# Like MediaPipe's, the tracking ROIs follow faces that move less than about 0.2 face widths per
# frame (30 fps footage, mostly).  Two safeguards for the rest:
# * one fast face can come out twice, from its own ROI and from a detection, about 0.6 face
#   widths apart (crossing clip at 7.5 fps); real neighbours are a face width apart or more, so
#   boxes whose centres are closer than SAME_FACE_DISTANCE of the smaller face are one face;
# * when the detector runs and its box of a followed face is centred more than DRIFT_FRAC of the
#   face's size away from the mesh's box, the mesh is read again from the detection (the two
#   boxes' centres agree to 0.08 of the face on the test photos and clip, a rolled head included).
SAME_FACE_DISTANCE = 0.75
DRIFT_FRAC = 0.15


@dataclass(frozen=True)
class FaceConfig:
    """``max_faces`` per frame; ``redetect_every`` frames between detector runs while faces are followed;
    two results whose mesh boxes overlap more than ``duplicate_iou`` are one face; a detection whose box
    overlaps a followed face more than ``new_face_iou`` is that face (and so are boxes whose centres
    are closer than ``SAME_FACE_DISTANCE`` of a face);
    ``refine_new_faces``: run the mesh a second time on a new face's mesh-derived ROI.  Off by default:
    MediaPipe reads a new face from the detection ROI, and the second pass moves the landmarks of a
    rolled head by up to 1.8 % of the face (the tracking ROI, an axis-aligned bound grown 1.5x, is
    looser than the detection ROI); it helps when the detector's box is far off."""

    max_faces: int = 8
    redetect_every: int = 15
    duplicate_iou: float = 0.5
    new_face_iou: float = 0.3
    refine_new_faces: bool = False

    def __post_init__(self) -> None:
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {self.max_faces}")
        if self.redetect_every < 1:
            raise ValueError(f"redetect_every must be at least 1, got {self.redetect_every}")
        for name in ("duplicate_iou", "new_face_iou"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class FaceRecord:
    """One face in one frame: ``face_id`` (stable across frames), ``landmarks``, ``box_xyxy`` (4,) the
    mesh's bound in px, ``appearance`` (D,) the tracker's descriptor, ``followed`` whether it came from a
    previous frame's ROI (not from the detector)."""

    face_id: int
    landmarks: FaceLandmarks
    box_xyxy: np.ndarray
    appearance: np.ndarray
    followed: bool

    def __post_init__(self) -> None:
        box = np.array(self.box_xyxy, dtype=np.float64)
        appearance = np.array(self.appearance, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or not np.all(np.isfinite(box)):
            raise ValueError(f"box_xyxy must be (4,) finite, got {box.shape}")
        if not isinstance(self.landmarks, FaceLandmarks):
            raise ValueError(f"landmarks must be FaceLandmarks, got {type(self.landmarks).__name__}")
        for a in (box, appearance):
            a.setflags(write=False)
        object.__setattr__(self, "face_id", int(self.face_id))
        object.__setattr__(self, "box_xyxy", box)
        object.__setattr__(self, "appearance", appearance)
        object.__setattr__(self, "followed", bool(self.followed))

    @property
    def conf(self) -> float:
        """The landmarks' confidence (lowered for faces cut by the frame or tiny)."""
        return self.landmarks.conf


class FaceAnalyzer:
    """Runs face detector and landmarker over frames; holds no per-clip state itself.

    :meth:`submit` uses one worker thread, started on first use; :meth:`close`
    (or leaving a ``with`` block) stops it.
    """

    def __init__(self, detector: FaceDetector, landmarker: FaceLandmarker, config: FaceConfig = FaceConfig()):
        self.detector = detector
        self.landmarker = landmarker
        self.config = config
        self._worker: ThreadPoolExecutor | None = None

    def new_state(self) -> FollowState:
        return FollowState()

    def process(self, rgb: np.ndarray, time_s: float, state: FollowState) -> tuple[list[FaceRecord], bool]:
        """Analyse one frame (H, W, 3) uint8 at ``time_s``; updates ``state``.

        Returns the faces found (no more than ``max_faces``, followed faces
        first) and whether the detector ran.
        """
        results, detected = self.track(rgb, state)
        return self.finish(rgb, time_s, results, state), detected

    def submit(self, rgb: np.ndarray, time_s: float, state: FollowState) -> Future:
        """:meth:`process` with the finishing stage on the worker thread: tracks the frame now, updating
        ``state``'s ROIs, and returns a future of what :meth:`process` returns.  ``rgb`` must stay unchanged
        until the future is done."""
        results, detected = self.track(rgb, state)
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rigcast-faces")
        return self._worker.submit(lambda: (self.finish(rgb, time_s, results, state), detected))

    def close(self) -> None:
        """Stop the worker thread after the work already submitted."""
        if self._worker is not None:
            self._worker.shutdown(wait=True)
            self._worker = None

    def __enter__(self) -> "FaceAnalyzer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def track(self, rgb: np.ndarray, state: FollowState) -> tuple[list[Result], bool]:
        """The tracking stage: every face's landmarks from one model call each (the mesh, or the refined set
        of the attention model), and the next frame's ROIs in ``state``.  Returns the results for
        :meth:`finish` and whether the detector ran."""
        cfg = self.config
        mesh = self.landmarker.mesh
        results, lost_someone = follow(mesh, rgb, state)
        # As for bodies: with every face slot followed and nobody lost, the periodic
        # re-detection could find no newcomer to add, so it is skipped.
        detect = not results or lost_someone or (state.frames_since_detect + 1 >= cfg.redetect_every
                                                 and len(results) < cfg.max_faces)
        if detect:
            state.frames_since_detect = 0
            followed = len(results)
            for det in self.detector(rgb):
                same = [k for k in range(followed) if _same_face(det.box_xyxy, results[k][0].box_xyxy(),
                                                                 cfg.new_face_iou)]
                if same:
                    k = same[0]
                    if _drift(det.box_xyxy, results[k][0].box_xyxy()) > DRIFT_FRAC:
                        again = mesh(rgb, det.to_roi())
                        if again is not None:
                            results[k] = (again, True)
                    continue
                if len(results) < cfg.max_faces or lost_someone:
                    lm = mesh(rgb, det.to_roi())
                    if lm is not None and cfg.refine_new_faces:
                        refined = mesh(rgb, lm.next_roi())
                        lm = refined if refined is not None else lm
                    if lm is not None:
                        results.append((lm, False))
        else:
            state.frames_since_detect += 1

        # Two meshes are one face when their boxes overlap by more than ``duplicate_iou`` or their
        # centres are close (:func:`_same_face`): two ROIs that caught the same fast-moving face.
        results = dedupe(results, lambda a, b: _same_face(a, b, cfg.duplicate_iou))[: cfg.max_faces]
        state.rois = {k: lm.next_roi() for k, (lm, _) in enumerate(results)}
        return results, detect

    def finish(self, rgb: np.ndarray, time_s: float, results: list[Result], state: FollowState) -> list[FaceRecord]:
        """The finishing stage: :meth:`track`'s results of the frame at ``time_s`` as records, with face ids
        from ``state``'s tracker and, with an iris model, their refined 478-point landmarks.  Frames must be
        finished in order."""
        ids, boxes, appearance = identify(rgb, time_s, results, state.tracker, APPEARANCE_BOX_SCALE)
        landmarks = [lm for lm, _ in results]
        if self.landmarker.iris_runner is not None and results:
            landmarks = self.landmarker.refine_all(rgb, landmarks)
        return [FaceRecord(int(i), lm, boxes[k], appearance[k], followed)
                for k, (lm, (_, followed), i) in enumerate(zip(landmarks, results, ids))]


def _same_face(a: np.ndarray, b: np.ndarray, min_iou: float) -> bool:
    """Boxes (4,) of one face: overlapping by more than ``min_iou``, or centres closer than
    ``SAME_FACE_DISTANCE`` of the smaller box (two faces side by side are a face width apart)."""
    distance = float(np.hypot(*(0.5 * (a[:2] + a[2:]) - 0.5 * (b[:2] + b[2:]))))
    smaller = min(max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1]))
    return box_iou(a, b) > min_iou or distance < SAME_FACE_DISTANCE * smaller


def _drift(detection_box: np.ndarray, mesh_box: np.ndarray) -> float:
    """Distance between a detection's and a mesh's box centres, in mesh sizes."""
    distance = float(np.hypot(*(0.5 * (detection_box[:2] + detection_box[2:]) - 0.5 * (mesh_box[:2] + mesh_box[2:]))))
    return distance / max(float(max(mesh_box[2] - mesh_box[0], mesh_box[3] - mesh_box[1])), 1e-9)


def make_face_models(device: str = "auto", strict_device: bool = False, detector_mode: str = "auto",
                     min_face_px: float | None = 24.0,
                     landmarks: str = "attention") -> tuple[FaceDetector, FaceLandmarker]:
    """The embedded face detector (``detector_mode`` "auto", "short" or "full") and the face landmarker
    (``landmarks``, one of :data:`~rigcast.models.face_landmarks.FACE_LANDMARK_MODELS`) on ``device``."""
    if detector_mode not in DETECTOR_MODES:
        raise ValueError(f"detector_mode must be one of {DETECTOR_MODES}, got {detector_mode!r}")
    if landmarks not in FACE_LANDMARK_MODELS:
        raise ValueError(f"landmarks must be one of {tuple(FACE_LANDMARK_MODELS)}, got {landmarks!r}")
    short = load_model("face_detection_short_range", device=device, strict_device=strict_device) \
        if detector_mode in ("auto", "short") else None
    full = load_model("face_detection_full_range", device=device, strict_device=strict_device) \
        if detector_mode in ("auto", "full") else None
    detector = FaceDetector(short, full, mode=detector_mode, min_face_px=min_face_px)
    runners = [load_model(name, device=device, strict_device=strict_device) for name in FACE_LANDMARK_MODELS[landmarks]]
    return detector, FaceLandmarker(*runners)


def link_faces_to_bodies(face_boxes_per_frame: Sequence[Mapping[int, np.ndarray]],
                         body_keypoints_per_frame: Sequence[Mapping[int, np.ndarray]], min_points: int = 2,
                         margin: float = 0.25) -> dict[int, int | None]:
    """Which body each face belongs to: ``{face_id: body_id or None}``, by majority vote over frames.

    ``face_boxes_per_frame[t]`` maps face id → box (4,) xyxy px in frame t;
    ``body_keypoints_per_frame[t]`` maps body id → BlazePose-33 keypoints
    (J >= 9, 2) px in the same frame, NaN where missing.  In each frame, a
    face votes for the body with the most head keypoints (nose, eyes, ears:
    indices 0..8) inside its box grown by ``margin`` of its size on each
    side (ears sit just outside a face mesh's box), if that is at least
    ``min_points`` and more than any other body has; a body claimed by two
    faces in one frame goes to the face holding more of its points.  A face
    is linked to the body that won more than half of its votes, else None
    (never seen with a body, or claimed by two bodies in turn).
    """
    if len(face_boxes_per_frame) != len(body_keypoints_per_frame):
        raise ValueError(f"face boxes and body keypoints must cover the same frames, got "
                         f"{len(face_boxes_per_frame)} and {len(body_keypoints_per_frame)}")
    if min_points < 1:
        raise ValueError(f"min_points must be at least 1, got {min_points}")
    votes: dict[int, Counter] = defaultdict(Counter)
    seen: set[int] = set()
    for t, (faces, bodies) in enumerate(zip(face_boxes_per_frame, body_keypoints_per_frame)):
        head_points = {}
        for body_id, kps in bodies.items():
            kps = np.asarray(kps, dtype=np.float64)
            if kps.ndim != 2 or kps.shape[0] < len(HEAD_KEYPOINTS) or kps.shape[1] < 2:
                raise ValueError(f"body {body_id} keypoints in frame {t} must be (J >= {len(HEAD_KEYPOINTS)}, 2), "
                                 f"got {kps.shape}")
            head_points[body_id] = kps[list(HEAD_KEYPOINTS), :2]
        claims = []  # (count, face_id, body_id)
        for face_id, box in faces.items():
            seen.add(int(face_id))
            box = np.asarray(box, dtype=np.float64).reshape(-1)
            if box.shape != (4,):
                raise ValueError(f"face {face_id} box in frame {t} must be (4,) xyxy, got {box.shape}")
            grown = scaled_box(box, 1.0 + 2.0 * margin)
            counts = {}
            for body_id, pts in head_points.items():
                ok = np.all(np.isfinite(pts), axis=1)
                inside = ok & (pts[:, 0] >= grown[0]) & (pts[:, 0] <= grown[2]) & (pts[:, 1] >= grown[1]) \
                    & (pts[:, 1] <= grown[3])
                counts[body_id] = int(inside.sum())
            ranked = sorted(counts.items(), key=lambda kv: -kv[1])
            if ranked and ranked[0][1] >= min_points and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
                claims.append((ranked[0][1], int(face_id), ranked[0][0]))
        taken: set = set()
        for _, face_id, body_id in sorted(claims, key=lambda c: -c[0]):
            if body_id not in taken:
                taken.add(body_id)
                votes[face_id][body_id] += 1
    links: dict[int, int | None] = {}
    for face_id in sorted(seen):
        tally = votes.get(face_id)
        if not tally:
            links[face_id] = None
            continue
        body_id, count = tally.most_common(1)[0]
        links[face_id] = int(body_id) if count > 0.5 * sum(tally.values()) else None
    return links
