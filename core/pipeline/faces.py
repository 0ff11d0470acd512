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
:meth:`FaceAnalyzer.submit` finishes frame t on a worker thread while frame
t + 1 is tracked.  Frames are finished one at a time, in frame order, so the
tracker sees them in order.

Frames in flight (``FaceConfig.frames_in_flight``).  With 1, each frame
follows the ROIs of the frame before it, as MediaPipe does, and
:meth:`~FaceAnalyzer.submit` gives exactly :meth:`~FaceAnalyzer.process`'s
records.  The face model's call is most of a frame's work and each call runs
on one core, so with 2 (the default for :meth:`~FaceAnalyzer.submit`)
frame t + 1 starts its model calls on the ROIs of frame t - 1 while frame t
is still being tracked, and both cores run the model.  Once frame t is done,
frame t + 1 keeps only the faces frame t had, and reads again, from frame
t's ROI, any face it did not find on the older ROI (a face frame t found
anew, or one that moved too far in two frames).  Which ROI each frame
follows does not depend on timing, so the records are the same on every run.
Faces are keyed by slot while followed (their ids come later, when the
frame is finished).  Each frame is tracked and then finished by one task on
the tracking threads, once the frame before it is finished: one hand-off
between threads per frame, not two.

Legend: N faces in a frame, J body keypoints, D appearance descriptor length.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..model_store import load_model
from ..models.face_detector import DETECTOR_MODES, FaceDetector
from ..models.face_landmarks import FACE_LANDMARK_MODELS, FaceLandmarker, FaceLandmarks
from ..models.roi import Roi
from . import FRAMES_IN_FLIGHT
from .follow import FollowState, Result, box_iou, dedupe, identify, scaled_box

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
    looser than the detection ROI); it helps when the detector's box is far off.
    ``frames_in_flight``: frames :meth:`FaceAnalyzer.submit` tracks at once, 1 or 2 (see the module
    docstring); :meth:`FaceAnalyzer.process` always tracks one."""

    max_faces: int = 8
    redetect_every: int = 15
    duplicate_iou: float = 0.5
    new_face_iou: float = 0.3
    refine_new_faces: bool = False
    frames_in_flight: int = 2

    def __post_init__(self) -> None:
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {self.max_faces}")
        if self.frames_in_flight not in FRAMES_IN_FLIGHT:
            raise ValueError(f"frames_in_flight must be one of {FRAMES_IN_FLIGHT}, got {self.frames_in_flight}")
        if self.redetect_every < 1:
            raise ValueError(f"redetect_every must be at least 1, got {self.redetect_every}")
        for name in ("duplicate_iou", "new_face_iou"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")


@dataclass
class FaceFollowState(FollowState):
    """:class:`FollowState` for faces: ``rois`` keyed by slot, and the ROIs the last frames handed on, for
    frames in flight.  ``frames_handed`` frames have handed theirs on; ``frames_submitted`` frames have been
    submitted in flight (only the submitting thread writes it)."""

    frames_handed: int = 0
    frames_submitted: int = 0
    next_slot: int = 0
    handed_on: dict[int, dict[int, Roi]] = field(default_factory=dict)  # frame number -> its ``rois``
    tracking: dict[int, Future] = field(default_factory=dict)  # frame number -> future of (records, detected)

    def hand_on(self, rois: dict[int, Roi]) -> None:
        """Also kept by frame number, as long as frames in flight may ask for them (and the frame before,
        for their speed).  Called in frame order: by tracking, or by replaying a cache."""
        self.rois = rois
        self.handed_on[self.frames_handed] = rois
        self.handed_on.pop(self.frames_handed - max(FRAMES_IN_FLIGHT) - 1, None)
        self.frames_handed += 1
        self.next_slot = max([self.next_slot, *(k + 1 for k in rois)])


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

    :meth:`submit` uses worker threads, started on first use: with two frames
    in flight, two that track and finish them; with one, one that finishes
    them.  :meth:`close` (or leaving a ``with`` block) stops them.
    """

    def __init__(self, detector: FaceDetector, landmarker: FaceLandmarker, config: FaceConfig = FaceConfig()):
        self.detector = detector
        self.landmarker = landmarker
        self.config = config
        self._worker: ThreadPoolExecutor | None = None
        self._trackers: ThreadPoolExecutor | None = None

    def new_state(self) -> FaceFollowState:
        return FaceFollowState()

    def process(self, rgb: np.ndarray, time_s: float, state: FaceFollowState) -> tuple[list[FaceRecord], bool]:
        """Analyse one frame (H, W, 3) uint8 at ``time_s``; updates ``state``.

        Returns the faces found (no more than ``max_faces``, followed faces
        first) and whether the detector ran.
        """
        results, detected = self.track(rgb, state)
        return self.finish(rgb, time_s, results, state), detected

    def submit(self, rgb: np.ndarray, time_s: float, state: FaceFollowState) -> Future:
        """:meth:`process` on worker threads, ``frames_in_flight`` frames tracked at once: returns a future
        of the frame's records and whether the detector ran.  Frames must be submitted in order, and
        ``rgb`` must stay unchanged until the future is done."""
        if self.config.frames_in_flight > 1:
            return self._in_flight(rgb, time_s, state)
        results, detected = self.track(rgb, state)
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rigcast-faces")
        return self._worker.submit(lambda: (self.finish(rgb, time_s, results, state), detected))

    def close(self) -> None:
        """Stop the worker threads after the work already submitted."""
        for pool in (self._trackers, self._worker):
            if pool is not None:
                pool.shutdown(wait=True)
        self._worker = self._trackers = None

    def __enter__(self) -> "FaceAnalyzer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def track(self, rgb: np.ndarray, state: FaceFollowState) -> tuple[list[Result], bool]:
        """The tracking stage: every face's landmarks from one model call each (the mesh, or the refined set
        of the attention model), and the next frame's ROIs in ``state``.  Returns the results for
        :meth:`finish` and whether the detector ran."""
        return self._settle(rgb, state.rois, self._follow(rgb, state.rois), state)

    def _in_flight(self, rgb: np.ndarray, time_s: float, state: FaceFollowState) -> Future:
        """Start tracking the next frame on the ROIs of ``frames_in_flight`` frames before it (see the module
        docstring); a future of its records and whether the detector ran, once it is tracked and finished."""
        lag = self.config.frames_in_flight
        # Frames tracked one at a time (process(), or a replayed cache) count too; while frames are in
        # flight, frames_handed (written by the tracking threads) trails frames_submitted.
        number = max(state.frames_submitted, state.frames_handed)
        state.frames_submitted = number + 1
        older = state.tracking.pop(number - lag, None)
        previous = state.tracking.get(number - 1)
        if self._trackers is None:
            self._trackers = ThreadPoolExecutor(max_workers=lag, thread_name_prefix="rigcast-face-tracking")

        def track_and_finish() -> tuple[list[FaceRecord], bool]:
            # The tracking threads take frames in order and wait here, not the caller: a thread that has
            # just finished frame t goes straight on to frame t + lag.  Earlier frames only are waited for,
            # and they were taken first, so they are running or done.
            if older is not None:
                older.result()  # its ROIs are handed on
            rois = _extrapolate(state.handed_on.get(number - lag, {}), state.handed_on.get(number - lag - 1, {}),
                                lag - 1)
            followed = self._follow(rgb, rois)  # while the frame before is still being tracked
            if previous is not None:
                previous.result()
            results, detected = self._settle(rgb, rois, followed, state)
            return self.finish(rgb, time_s, results, state), detected
        state.tracking[number] = future = self._trackers.submit(track_and_finish)
        return future

    def _follow(self, rgb: np.ndarray, rois: dict[int, Roi]) -> dict[int, FaceLandmarks | None]:
        mesh = self.landmarker.mesh
        return {slot: mesh(rgb, roi) for slot, roi in rois.items()}

    def _settle(self, rgb: np.ndarray, followed_rois: dict[int, Roi], followed: dict[int, FaceLandmarks | None],
                state: FaceFollowState) -> tuple[list[Result], bool]:
        """:meth:`track` once the previous frame is tracked: ``followed`` holds the landmarks found on
        ``followed_rois``; ``state.rois`` are the previous frame's.  Keeps the faces the previous frame had,
        reading again from its ROI any of them not found on ``followed_rois``, runs the detector when due,
        and hands the next ROIs on."""
        cfg = self.config
        mesh = self.landmarker.mesh
        results: list[Result] = []
        slots: list[int] = []
        lost_someone = False
        for slot, roi in state.rois.items():
            lm = followed.get(slot)
            if lm is None and followed_rois.get(slot) is not roi:
                lm = mesh(rgb, roi)  # missed on an older ROI, or new in the previous frame
            if lm is None:
                lost_someone = True
            else:
                results.append((lm, True))
                slots.append(slot)
        # As for bodies: with every face slot followed and nobody lost, the periodic
        # re-detection could find no newcomer to add, so it is skipped.
        detect = not results or lost_someone or (state.frames_since_detect + 1 >= cfg.redetect_every
                                                 and len(results) < cfg.max_faces)
        if detect:
            state.frames_since_detect = 0
            followed_count = len(results)
            for det in self.detector(rgb):
                same = [k for k in range(followed_count) if _same_face(det.box_xyxy, results[k][0].box_xyxy(),
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
                        slots.append(state.next_slot)
                        state.next_slot += 1
        else:
            state.frames_since_detect += 1

        # Two meshes are one face when their boxes overlap by more than ``duplicate_iou`` or their
        # centres are close (:func:`_same_face`): two ROIs that caught the same fast-moving face.
        slot_of = {id(lm): slot for (lm, _), slot in zip(results, slots)}
        results = dedupe(results, lambda a, b: _same_face(a, b, cfg.duplicate_iou))[: cfg.max_faces]
        state.hand_on({slot_of[id(lm)]: lm.next_roi() for lm, _ in results})
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


def _extrapolate(rois: dict[int, Roi], before: dict[int, Roi], frames: int) -> dict[int, Roi]:
    """``rois`` moved on by ``frames`` frames at the speed each moved since ``before`` (the ROIs one frame
    earlier, by slot); a slot new in ``rois`` stays where it is."""
    if not frames:
        return rois
    return {slot: roi if slot not in before else
            roi.moved_to(roi.center_xy + frames * (roi.center_xy - before[slot].center_xy))
            for slot, roi in rois.items()}


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
