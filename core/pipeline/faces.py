"""Per-frame face analysis: detect, follow landmark ROIs, assign face ids; link faces to bodies.

The same tracking mode as :mod:`.body` (MediaPipe's face mesh in video mode,
generalised to many faces): each face's next ROI comes from this frame's
mesh, so the full-frame detector only runs on the first frame, when a
followed face is lost, and every ``redetect_every`` frames to catch
newcomers (also while no face is followed: it is the stage's dearest call).
Faces are also read from the frame's bodies, as MediaPipe Holistic does
(``FaceAnalyzer._face_from_body``): a body that shows its head and has no
face gets one from a ROI its face keypoints give, which finds turned and
small faces the detector misses.  Every face on a body, whatever found it,
must keep fitting its body's head (:func:`face_fits_head`) every frame, or it
is dropped (a mesh followed as a head turns away slides onto the hair),
unless the face detector found it and still finds it there; a body seen from
behind (:func:`shows_its_back`) gives no face.  A face with no body must be
found again by the detector when it runs, or it is flagged (its ``conf``
lowered) and, missed twice in a row, dropped (see ``UNCONFIRMED_RUNS``).  Each face sits on at most one body and
each body holds at most one face (:func:`match_faces_to_bodies`), and over
the clip :func:`join_faces_on_bodies` gives a face lost and found again on
its body its first id.  Identities come from
:class:`~rigcast.track.BoxTracker` on the mesh boxes.

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

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from ..model_store import load_model
from ..models.face_detector import DETECTOR_MODES, FaceDetector
from ..models.face_landmarks import FACE_LANDMARK_MODELS, FaceLandmarker, FaceLandmarks
from ..models.roi import Roi, normalize_radians
from . import FRAMES_IN_FLIGHT
from .follow import FollowState, Result, box_iou, dedupe, identify, scaled_box

FACE_KEYPOINTS = tuple(range(11))
"""BlazePose-33's face points: nose, eyes (inner, centre, outer, both sides), ears and mouth corners.  What
MediaPipe Holistic derives a body's face ROI from, and what links a face to its body."""
HEAD_MIN_VISIBILITY = 0.5  # a body's face point counts as seen above this BlazePose visibility
HEAD_MIN_POINTS = 3  # a body shows its head when at least this many face points are seen
LINK_MIN_POINTS = 2  # a face sits on a body whose seen face points fall, this many or more, in its grown box
LINK_MARGIN = 0.25  # the face box grown by this much of its size on each side (ears lie outside the mesh box)

# Faces from bodies (MediaPipe Holistic's face_landmarks_from_pose and face_landmarks_from_pose_to_recrop_roi):
# a window about the body's face points, BODY_WINDOW_SCALE times the face's size, square, is where the
# short-range face detector looks for the face; the detection's ROI then gives the landmarks.  Holistic
# stops there when the detector finds nothing, so it misses faces turned to profile.  Here the mesh is then
# read from the ROI the face points give (:func:`head_face_roi`).  Either way, while the model is unsure of
# the face (presence below the landmarker's 0.5), the mesh is read again, up to BODY_REREADS times, from its
# own landmarks' ROI: the presence flag needs a well-placed ROI.  Zidane's turned head in ultralytics'
# zidane.jpg: 0.003 on a ROI 10 % of the face off, 0.93 on the mesh's own ROI; from the detection's ROI, 0.0,
# 0.0, 0.16, then 0.99 on the third re-read.
#
# The face's size from its body's face points, whatever way it is turned.  Measured on the four faces of
# test_body_faces (frontal, three-quarter, turned, profile; each mirrored; 16 to 60 px), against the long side
# of the mesh read from a well-placed ROI: the long side of the points' box is 0.65-0.78 of the face
# frontally (ear to ear) but 0.51-0.64 in profile (ear to nose, the far ear hidden behind the head), and the
# eyes-to-mouth distance 0.29-0.49 at any yaw.  The face's size is the larger of the two estimates,
# span / HEAD_SPAN_FRAC and eyes-to-mouth / HEAD_EYE_MOUTH_FRAC: 0.77-1.09 of the mesh's side on those faces,
# but 0.51-0.67 on Zidane's head at 16-20 px (BlazePose's face points are 1-2 px off on a face that small).
# Holistic's window, three times the points' box, is 2.3 times a frontal face (BODY_WINDOW_SCALE): so it stays.
# The ROI is BODY_ROI_SCALE times that size (a tracking ROI is 1.5 times the mesh's side; a little more here,
# as the estimate errs low), centred on the points' mean (0.12 of the face from the mesh's centre on those
# faces, 0.3 on Zidane's mirrored head; the centre of their box sits up to 0.2 low, the points lying between
# eyes and mouth) and turned so that the mouth-to-eyes vector points up (a profile's pitch is an in-image
# roll: the cameraman's is 20 degrees).  From that ROI, the four faces at 20, 30 and 60 px, as shot, mirrored
# and tilted by 35 degrees (42 heads found): 40 read with presence 0.5 or more within BODY_REREADS re-reads,
# in 58 model calls; with the ROI upright, 37 in 72 calls.  The old ROI, twice the points' span about their
# box (1.1 times the cameraman's 20-px profile), made the mesh shrink onto a 13-px face.
BODY_WINDOW_SCALE = 2.3
BODY_ROI_SCALE = 1.6
BODY_REREADS = 3
HEAD_SPAN_FRAC = 0.75
HEAD_EYE_MOUTH_FRAC = 0.45
HEAD_EYES = slice(1, 7)  # BlazePose-33: 1-3 the left eye (inner, centre, outer), 4-6 the right eye
HEAD_EARS = slice(7, 9)
HEAD_MOUTH = slice(9, 11)  # the mouth's corners

# A face read from a body must sit on its body's head (:func:`face_fits_head`), when it is read and every frame
# it is followed, until the full-frame detector finds it too.  A head turned away from the camera (the back of
# it and one cheek seen) still gives BlazePose face points, and from there the mesh model draws a face on the
# hair behind the cheek with a presence of up to 1.0 that grows as the face follows itself over frames: on a
# held-out photo (OpenCV's basketball1/2.png), the mesh's nose lay 0.58-0.74 face sizes (head_face_size) from
# the body's nose, behind it (towards the ears: -0.58 to -0.74 along the ears-to-nose direction), for 10
# frames, its box 1.1-2.0 face sizes.  The distance alone cannot tell that from a good face: on the 21 faces of
# test_body_faces (20-60 px, mirrored) followed over 10 frames, the mesh nose lies up to 0.97 face sizes from
# BlazePose's (Zidane mirrored, whose BlazePose face points sit on his cheek and ear, the mesh on his face),
# but always ahead of it or beside it (-0.01 to +0.67 along the ears-to-nose direction; 0.83-2.29 face sizes).
# So a face fits its head when its nose is at most NOSE_BEHIND face sizes behind the body's nose, at most
# NOSE_OFF from it, and its size within FACE_SIZE_RANGE face sizes.  A face that does not fit is dropped and
# not followed (its body is tried again in body_retry_every frames): such a mesh has no part on the face, and
# its presence flag cannot tell.  The rule holds for every face linked to a body, whatever found it: a face
# the detector found and the mesh then follows as the head turns away slides onto the hair the same way.
# But a body's face points can be far off on a good face: on the 90-frame pan over t1.jpg, the
# half-hidden woman behind the table (second from the left) has a frontal face the detector finds, and her
# body's points give a face 1.5-2 times too large with its nose 0.6-1.0 face sizes "behind"; held to them, her
# face was listed in 21 of the 90 frames.  So a face the detector found and that no longer fits its head is
# kept while the detector still finds it: this frame's full-frame run, or else the short-range model in a
# window about it (see CONFIRM_WINDOW_SCALE); a face read from a body has only its body to vouch for it.
#
# A body seen from behind.  BlazePose tells left from right on a back view too: its left ear then lies on the
# image's left of its right ear (on the right facing the camera), and its face points, seen with visibility
# up to 0.99, lie on the back of the head, from where the mesh model draws a face on the hair with presence up
# to 1.0.  vtest.avi's frames 593-698 enlarged 3 times (a woman walking away, her head 50 px): 17 meshes on her
# hair, from her body and from the detector.  The left ear's x less the right ear's, in the head's own frame
# and in face sizes: -0.24 to -0.91 on backs (3 people walking away, 13 frames), +0.23 to +0.74 on the faces
# of test_body_faces at 60 px (frontal to profile, as shot and mirrored), -0.05 to +0.07 on people walking
# across.  So a head with its ears (else its eyes' centres) the wrong way round by more than BACK_TURNED face
# sizes shows its back: no face is read from it, and a face on it is kept only while the face detector finds
# it there, flagged (conf at most UNCONFIRMED_CONF): a head turned a little past profile can still show a
# face the detector finds (the man in red at vtest.avi frame 558, 0.97).
BACK_TURNED = 0.15
NOSE_BEHIND = 0.3
NOSE_OFF = 1.25
FACE_SIZE_RANGE = (0.5, 3.0)
MESH_NOSE = 1  # the face mesh's nose tip

# A face with no body has no head to fit, so the face detector vouches for it instead: each time the
# full-frame detector runs (every redetect_every frames), a followed face without a body that it does not
# find is looked for again by the short-range detector in a window CONFIRM_WINDOW_SCALE times the face's size
# about it (as Holistic looks for a body's face; one model call).  On the faces of test_body_faces (frontal
# to profile, 20 to 60 px, mirrored), where the full-frame detector misses the 20-px ones, that window finds
# every one (scores 0.67-0.97).  A face found by neither is unsure: its conf is capped at UNCONFIRMED_CONF
# (below LOW_CONFIDENCE, so flagged) until a run finds it; missed by UNCONFIRMED_RUNS runs in a row, it is
# no face (the back of a head, hair) and is dropped.
CONFIRM_WINDOW_SCALE = 2.3
UNCONFIRMED_RUNS = 2
UNCONFIRMED_CONF = 0.5  # below LOW_CONFIDENCE

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
    docstring); :meth:`FaceAnalyzer.process` always tracks one.
    Faces from bodies (see :meth:`FaceAnalyzer.process`): a face read from a body's head, or followed where
    a body shows its head, is kept down to a face-presence probability of ``body_min_score`` (its ``conf``
    says how sure the model is) instead of the landmarker's 0.5; a body whose face is not found is tried again
    every ``body_retry_every`` frames (every frame for the first ones of a clip); heads whose face points
    give a face smaller than ``body_min_face_px`` (:func:`head_face_size`) are not tried (too small for the
    landmarks)."""

    max_faces: int = 8
    redetect_every: int = 15
    duplicate_iou: float = 0.5
    new_face_iou: float = 0.3
    refine_new_faces: bool = False
    frames_in_flight: int = 2
    body_min_score: float = 0.2
    body_retry_every: int = 5
    body_min_face_px: float = 12.0

    def __post_init__(self) -> None:
        if self.body_retry_every < 1:
            raise ValueError(f"body_retry_every must be at least 1, got {self.body_retry_every}")
        if not 0.0 <= self.body_min_score <= 1.0:
            raise ValueError(f"body_min_score must be in [0, 1], got {self.body_min_score}")
        if not self.body_min_face_px > 0:
            raise ValueError(f"body_min_face_px must be positive (pixels), got {self.body_min_face_px}")
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
    frames in flight; ``from_bodies`` the slots whose face was read from a body and that the detector has not
    found since (they must fit their head, see :func:`face_fits_head`); ``unconfirmed`` the slots of faces
    without a body that the detector did not find where they are, by how many of its runs in a row (see
    ``UNCONFIRMED_RUNS``).  ``frames_handed`` frames have handed theirs on; ``frames_submitted`` frames have
    been submitted in flight (only the submitting thread writes it)."""

    frames_handed: int = 0
    frames_submitted: int = 0
    next_slot: int = 0
    from_bodies: set[int] = field(default_factory=set)  # slots read from a body, not yet found by the detector
    unconfirmed: dict[int, int] = field(default_factory=dict)  # slot -> detector runs in a row that missed it
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
    previous frame's ROI (not from the detector or a body), ``body_id`` the body it sits on in this frame
    (-1: none; at most one face per body, see :func:`match_faces_to_bodies`)."""

    face_id: int
    landmarks: FaceLandmarks
    box_xyxy: np.ndarray
    appearance: np.ndarray
    followed: bool
    body_id: int = -1

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
        object.__setattr__(self, "body_id", int(self.body_id))

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

    def process(self, rgb: np.ndarray, time_s: float, state: FaceFollowState,
                heads: Mapping[int, np.ndarray] | None = None) -> tuple[list[FaceRecord], bool]:
        """Analyse one frame (H, W, 3) uint8 at ``time_s``; updates ``state``.

        ``heads``: the frame's bodies, body id → their face points (11, 2) px, NaN where unseen (see
        :func:`body_heads`).  A body without a face gets one read from its head, as MediaPipe Holistic
        does, and each face is matched to at most one body (the record's ``body_id``).  The full-frame
        detector runs on the first frame, when a followed face is lost, and every ``redetect_every`` frames
        (whether or not a face is followed) while fewer than ``max_faces`` are.

        Returns the faces found (no more than ``max_faces``, followed faces
        first) and whether the detector ran.
        """
        heads = dict(heads or {})
        results, detected = self.track(rgb, state, heads)
        return self.finish(rgb, time_s, results, state, heads), detected

    def submit(self, rgb: np.ndarray, time_s: float, state: FaceFollowState,
               heads: Mapping[int, np.ndarray] | None = None) -> Future:
        """:meth:`process` on worker threads, ``frames_in_flight`` frames tracked at once: returns a future
        of the frame's records and whether the detector ran.  Frames must be submitted in order, and
        ``rgb`` must stay unchanged until the future is done."""
        heads = dict(heads or {})
        if self.config.frames_in_flight > 1:
            return self._in_flight(rgb, time_s, state, heads)
        results, detected = self.track(rgb, state, heads)
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rigcast-faces")
        return self._worker.submit(lambda: (self.finish(rgb, time_s, results, state, heads), detected))

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

    def track(self, rgb: np.ndarray, state: FaceFollowState,
              heads: Mapping[int, np.ndarray] | None = None) -> tuple[list[Result], bool]:
        """The tracking stage: every face's landmarks from one model call each (the mesh, or the refined set
        of the attention model), faces read from the heads of ``heads``' bodies that have none, and the next
        frame's ROIs in ``state``.  Returns the results for :meth:`finish` and whether the detector ran."""
        heads = dict(heads or {})
        return self._settle(rgb, state.rois, self._follow(rgb, state.rois, heads), state, heads)

    def _in_flight(self, rgb: np.ndarray, time_s: float, state: FaceFollowState,
                   heads: dict[int, np.ndarray]) -> Future:
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
            followed = self._follow(rgb, rois, heads)  # while the frame before is still being tracked
            if previous is not None:
                previous.result()
            results, detected = self._settle(rgb, rois, followed, state, heads)
            return self.finish(rgb, time_s, results, state, heads), detected
        state.tracking[number] = future = self._trackers.submit(track_and_finish)
        return future

    def _follow(self, rgb: np.ndarray, rois: dict[int, Roi],
                heads: dict[int, np.ndarray]) -> dict[int, FaceLandmarks | None]:
        return {slot: self._mesh_on(rgb, roi, heads) for slot, roi in rois.items()}

    def _mesh_on(self, rgb: np.ndarray, roi: Roi, heads: dict[int, np.ndarray]) -> FaceLandmarks | None:
        """The mesh on ``roi``; kept down to ``body_min_score`` where a body shows its head in the ROI."""
        box = roi.as_box_xyxy()
        on_body = any(_points_in(head, box) >= LINK_MIN_POINTS for head in heads.values())
        return self.landmarker.mesh(rgb, roi, self.config.body_min_score if on_body else None)

    def _face_from_body(self, rgb: np.ndarray, head: np.ndarray) -> FaceLandmarks | None:
        """The face on a body's head (face points ``head`` (11, 2) px, NaN where unseen), or None.

        As MediaPipe Holistic: the short-range detector in a window about the face points (``BODY_WINDOW_SCALE``
        times the face's size, :func:`head_face_size`), and the mesh from the detection's ROI; without a
        detection (a face turned to profile, or too small for the detector), from :func:`head_face_roi`.
        Either way the mesh is read again from its own ROI while the model is unsure (see ``BODY_REREADS``),
        kept down to ``body_min_score``, and only when the face found holds the body's face points and fits
        its head (:func:`face_fits_head`)."""
        cfg = self.config
        from_points = head_face_roi(head)
        window = Roi(center_xy=from_points.center_xy, size=BODY_WINDOW_SCALE * head_face_size(head), rotation=0.0)
        near = [d for d in self.detector.detect_in(rgb, window) if _on_head(d.box_xyxy, head) >= LINK_MIN_POINTS]
        mesh = self.landmarker.mesh
        roi = near[0].to_roi() if near else from_points
        lm = mesh(rgb, roi, 0.0)
        for _ in range(BODY_REREADS):
            if lm is None or lm.score >= self.landmarker.min_score:
                break
            lm = mesh(rgb, lm.next_roi(), 0.0)
        if lm is None or lm.score < cfg.body_min_score or _on_head(lm.box_xyxy(), head) < LINK_MIN_POINTS \
                or not face_fits_head(lm, head):
            return None
        return lm

    def _settle(self, rgb: np.ndarray, followed_rois: dict[int, Roi], followed: dict[int, FaceLandmarks | None],
                state: FaceFollowState, heads: dict[int, np.ndarray]) -> tuple[list[Result], bool]:
        """:meth:`track` once the previous frame is tracked: ``followed`` holds the landmarks found on
        ``followed_rois``; ``state.rois`` are the previous frame's.  Keeps the faces the previous frame had,
        reading again from its ROI any of them not found on ``followed_rois``, runs the detector when due,
        reads the faces of bodies that have none, and hands the next ROIs on."""
        cfg = self.config
        mesh = self.landmarker.mesh
        number = state.frames_handed  # this frame's number in the clip: frames hand their ROIs on in order
        results: list[Result] = []
        slots: list[int] = []
        lost_someone = False
        detected: set[int] = set()  # the faces (indices in results) the full-frame detector finds this frame
        for slot, roi in state.rois.items():
            lm = followed.get(slot)
            if lm is None and followed_rois.get(slot) is not roi:
                lm = self._mesh_on(rgb, roi, heads)  # missed on an older ROI, or new in the previous frame
            if lm is None:
                lost_someone = True
            else:
                results.append((lm, True))
                slots.append(slot)
        # The full-frame detector is the face stage's dearest call (2 to 20 model runs), so it runs on a
        # cadence, as the body detector does: on the first frame, when a followed face is lost, and every
        # redetect_every frames; even with no face followed it waits for its turn (faces on bodies are
        # found from the bodies in between).  With max_faces followed it could add nobody and is skipped.
        detect = lost_someone or (state.frames_since_detect + 1 >= cfg.redetect_every
                                  and len(results) < cfg.max_faces)
        if detect:
            state.frames_since_detect = 0
            followed_count = len(results)
            for det in self.detector(rgb):
                same = [k for k in range(followed_count) if _same_face(det.box_xyxy, results[k][0].box_xyxy(),
                                                                       cfg.new_face_iou)]
                if same:
                    k = same[0]
                    detected.add(k)
                    state.from_bodies.discard(slots[k])  # the detector vouches for it
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
                        detected.add(len(results))
                        results.append((lm, False))
                        slots.append(state.next_slot)
                        state.next_slot += 1
            self._confirm(rgb, results[:followed_count], slots, detected, state, heads)
        else:
            state.frames_since_detect += 1

        # Every face on a body must sit on that body's head, whatever found it (see NOSE_BEHIND); it is never
        # checked against another body's head: a face between two heads is judged by the one it is linked to.
        # One that does not fit is dropped, unless the detector found it and still finds it.  A face without
        # a body that the detector has missed UNCONFIRMED_RUNS times in a row is dropped too.
        bodies = match_faces_to_bodies(np.array([lm.box_xyxy() for lm, _ in results]).reshape(-1, 4), heads)
        keep = [k for k, body_id in enumerate(bodies)
                if (self._on_its_head(rgb, results[k][0], heads[body_id], slots[k] in state.from_bodies,
                                      k in detected) if body_id >= 0
                    else state.unconfirmed.get(slots[k], 0) < UNCONFIRMED_RUNS)]
        unsure = set()  # slots of faces the detector vouches for on a head that shows its back: flagged
        for k in keep:
            if bodies[k] >= 0:
                state.unconfirmed.pop(slots[k], None)  # its body vouches for where it is
                if shows_its_back(heads[bodies[k]]):
                    unsure.add(slots[k])
        results, slots = [results[k] for k in keep], [slots[k] for k in keep]

        # Faces from bodies, body by body in id order (so the results never depend on timing).
        for body_id, head in sorted(heads.items()):
            if len(results) >= cfg.max_faces:
                break
            if number >= cfg.body_retry_every and (number + body_id) % cfg.body_retry_every:
                continue  # a body whose face is not found is tried again every body_retry_every frames
            if head_face_size(head) < cfg.body_min_face_px or shows_its_back(head) or any(
                    _on_head(lm.box_xyxy(), head) >= LINK_MIN_POINTS for lm, _ in results):
                continue
            lm = self._face_from_body(rgb, head)
            if lm is not None:
                results.append((lm, False))
                slots.append(state.next_slot)
                state.from_bodies.add(state.next_slot)
                state.next_slot += 1

        # Two meshes are one face when their boxes overlap by more than ``duplicate_iou`` or their
        # centres are close (:func:`_same_face`): two ROIs that caught the same fast-moving face.
        slot_of = {id(lm): slot for (lm, _), slot in zip(results, slots)}
        results = dedupe(results, lambda a, b: _same_face(a, b, cfg.duplicate_iou))[: cfg.max_faces]
        state.hand_on({slot_of[id(lm)]: lm.next_roi() for lm, _ in results})
        state.from_bodies &= set(state.rois)
        state.unconfirmed = {slot: runs for slot, runs in state.unconfirmed.items() if slot in state.rois}
        # A face the detector missed is flagged, not dropped, until the detector finds it again (or drops it).
        flagged = unsure | set(state.unconfirmed)
        return [(_flagged(lm) if slot_of[id(lm)] in flagged else lm, followed) for lm, followed in results], detect

    def _on_its_head(self, rgb: np.ndarray, lm: FaceLandmarks, head: np.ndarray, from_body: bool,
                     detected: bool) -> bool:
        """Whether to keep a face ``lm`` linked to a body whose face points are ``head``: it fits the head
        (:func:`face_fits_head`), or, for a face the detector found (not ``from_body``), the detector finds it
        here and now (``detected`` by this frame's full-frame run, else in a window about it)."""
        if face_fits_head(lm, head):
            return True
        return not from_body and (detected or self._detected_at(rgb, lm))

    def _confirm(self, rgb: np.ndarray, followed: list[Result], slots: list[int], found: set[int],
                 state: FaceFollowState, heads: dict[int, np.ndarray]) -> None:
        """After a detector run: count, in ``state.unconfirmed``, the ``followed`` faces (by ``slots``) that
        have no body and that neither the full-frame detector (``found``: their indices) nor the short-range
        detector in a window about them (``CONFIRM_WINDOW_SCALE`` times their size, as MediaPipe Holistic
        looks for a body's face) finds; forget the others."""
        bodies = match_faces_to_bodies(np.array([lm.box_xyxy() for lm, _ in followed]).reshape(-1, 4), heads)
        for k, ((lm, _), body_id) in enumerate(zip(followed, bodies)):
            if k in found or body_id >= 0 or self._detected_at(rgb, lm):
                state.unconfirmed.pop(slots[k], None)
            else:
                state.unconfirmed[slots[k]] = state.unconfirmed.get(slots[k], 0) + 1

    def _detected_at(self, rgb: np.ndarray, lm: FaceLandmarks) -> bool:
        """Whether the short-range detector finds a face where ``lm`` is, in a window ``CONFIRM_WINDOW_SCALE``
        times its size about it (one model call): one centred within ``SAME_FACE_DISTANCE`` of its size."""
        box = lm.box_xyxy()
        centre, size = 0.5 * (box[:2] + box[2:]), lm.size_px()
        window = Roi(center_xy=centre, size=CONFIRM_WINDOW_SCALE * size, rotation=0.0)
        return any(float(np.hypot(*(0.5 * (d.box_xyxy[:2] + d.box_xyxy[2:]) - centre))) < SAME_FACE_DISTANCE * size
                   for d in self.detector.detect_in(rgb, window))

    def finish(self, rgb: np.ndarray, time_s: float, results: list[Result], state: FollowState,
               heads: Mapping[int, np.ndarray] | None = None) -> list[FaceRecord]:
        """The finishing stage: :meth:`track`'s results of the frame at ``time_s`` as records, with face ids
        from ``state``'s tracker, the body each sits on among ``heads``' (see :func:`match_faces_to_bodies`)
        and, with an iris model, their refined 478-point landmarks.  Frames must be finished in order."""
        ids, boxes, appearance = identify(rgb, time_s, results, state.tracker, APPEARANCE_BOX_SCALE)
        bodies = match_faces_to_bodies(boxes, heads or {})
        landmarks = [lm for lm, _ in results]
        if self.landmarker.iris_runner is not None and results:
            landmarks = self.landmarker.refine_all(rgb, landmarks)
        return [FaceRecord(int(i), lm, boxes[k], appearance[k], followed, body)
                for k, (lm, (_, followed), i, body) in enumerate(zip(landmarks, results, ids, bodies))]


def _flagged(lm: FaceLandmarks) -> FaceLandmarks:
    """``lm`` with its confidence capped at ``UNCONFIRMED_CONF`` (below ``LOW_CONFIDENCE``: not reliable)."""
    return lm if lm.conf <= UNCONFIRMED_CONF else replace(lm, conf=UNCONFIRMED_CONF)


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


def body_heads(records: Sequence) -> dict[int, np.ndarray]:
    """Body id → face points (11, 2) px of each body that shows its head: ``records`` are the frame's
    body records (``track_id`` and BlazePose-33 ``landmarks.xy`` (33, 2), ``landmarks.visibility`` (33,));
    points seen less than ``HEAD_MIN_VISIBILITY`` are NaN, and bodies with fewer than ``HEAD_MIN_POINTS``
    seen are left out (their backs to the camera, or their heads out of the frame)."""
    heads = {}
    for record in records:
        xy = np.asarray(record.landmarks.xy, dtype=np.float64)[list(FACE_KEYPOINTS)]
        seen = np.asarray(record.landmarks.visibility, dtype=np.float64)[list(FACE_KEYPOINTS)] > HEAD_MIN_VISIBILITY
        seen &= np.all(np.isfinite(xy), axis=1)
        if seen.sum() >= HEAD_MIN_POINTS:
            heads[int(record.track_id)] = np.where(seen[:, None], xy, np.nan)
    return heads


def _points_in(points: np.ndarray, box: np.ndarray) -> int:
    """How many of ``points`` (K, 2), NaN for none, lie in the xyxy ``box`` (4,)."""
    x, y = points[:, 0], points[:, 1]
    with np.errstate(invalid="ignore"):
        return int(np.count_nonzero((x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])))


def _on_head(face_box: np.ndarray, head: np.ndarray) -> int:
    """How many of a body's face points ``head`` (11, 2) lie in ``face_box`` (4,) grown by ``LINK_MARGIN``."""
    return _points_in(head, scaled_box(face_box, 1.0 + 2.0 * LINK_MARGIN))


def face_fits_head(landmarks: FaceLandmarks, head: np.ndarray) -> bool:
    """Whether a face's ``landmarks`` sit on the head whose face points are ``head`` (11, 2) px, NaN where
    unseen: its size is within ``FACE_SIZE_RANGE`` of :func:`head_face_size`, and, where the body's nose is
    seen, the mesh's nose tip is at most ``NOSE_OFF`` face sizes from it and (where an ear is seen too) at
    most ``NOSE_BEHIND`` behind it, towards the ears (see the constants); and the head does not show its
    back (:func:`shows_its_back`)."""
    head = np.asarray(head, dtype=np.float64)
    size = head_face_size(head)
    if size <= 0.0:
        return True  # no point seen: nothing to check against
    if shows_its_back(head):
        return False
    if not FACE_SIZE_RANGE[0] <= landmarks.size_px() / size <= FACE_SIZE_RANGE[1]:
        return False
    nose = head[0]
    if not np.all(np.isfinite(nose)):
        return True
    off_xy = (landmarks.xy[MESH_NOSE] - nose) / size
    if float(np.hypot(*off_xy)) > NOSE_OFF:
        return False
    ears = head[HEAD_EARS][np.all(np.isfinite(head[HEAD_EARS]), axis=1)]
    facing_xy = nose - ears.mean(axis=0) if len(ears) else np.zeros(2)
    length = float(np.hypot(*facing_xy))
    return length == 0.0 or float(off_xy @ facing_xy) / length >= -NOSE_BEHIND


def shows_its_back(head: np.ndarray) -> bool:
    """Whether the head whose face points are ``head`` (11, 2) px, NaN where unseen, has its back to the camera:
    in the head's own frame (upright from the mouth-to-eyes line, see :func:`head_face_roi`), its left ear lies
    more than ``BACK_TURNED`` face sizes left of its right ear in the image (its left eye of its right eye when
    an ear is unseen), as BlazePose places them on a back view (see the constant)."""
    head = np.asarray(head, dtype=np.float64)
    _, size, rotation = _head_frame(head)
    for left, right in ((7, 8), (2, 5)):  # BlazePose-33: the ears, then the eyes' centres
        if size > 0.0 and np.all(np.isfinite(head[[left, right]])):
            turn = Roi(center_xy=(0.0, 0.0), size=1.0, rotation=rotation).rotation_matrix()
            return float(((head[left] - head[right]) @ turn)[0]) < -BACK_TURNED * size
    return False


def head_face_size(head: np.ndarray) -> float:
    """The size (px) of the face on a head whose face points are ``head`` (11, 2) px, NaN where unseen: the
    larger of the long side of the points' box (in the head's own frame, see :func:`head_face_roi`) /
    ``HEAD_SPAN_FRAC`` and the eyes-to-mouth distance / ``HEAD_EYE_MOUTH_FRAC``, which holds from frontal to
    profile (see the constants); 0 with no point seen."""
    return _head_frame(head)[1]


def head_face_roi(head: np.ndarray) -> Roi:
    """The ROI the face mesh is first read from on a head whose face points are ``head`` (11, 2) px, NaN where
    unseen (at least one seen): centred on the seen points' mean, ``BODY_ROI_SCALE`` times
    :func:`head_face_size`, turned so that the mouth-to-eyes vector points up (upright without an eye or the
    mouth)."""
    centre, size, rotation = _head_frame(head)
    if centre is None:
        raise ValueError("head_face_roi needs at least one seen face point, got none")
    return Roi(center_xy=centre, size=max(BODY_ROI_SCALE * size, 1.0), rotation=rotation)


def _head_frame(head: np.ndarray) -> tuple[np.ndarray | None, float, float]:
    """A head's face: (centre (2,) px or None with no point seen, size px, rotation in radians as a ROI's)."""
    head = np.asarray(head, dtype=np.float64)
    seen = head[np.all(np.isfinite(head), axis=1)]
    if not len(seen):
        return None, 0.0, 0.0
    up = _mouth_to_eyes(head)
    # atan2(-dy, dx): image y is down; MediaPipe's rotation turns that vector to 90 degrees (straight up).
    rotation = 0.0 if up is None or not np.any(up) else normalize_radians(math.pi / 2 - math.atan2(-up[1], up[0]))
    turn = Roi(center_xy=(0.0, 0.0), size=1.0, rotation=rotation).rotation_matrix()
    own = seen @ turn  # the points in the head's frame: turn.T @ p for each point p
    size = float(np.max(own.max(axis=0) - own.min(axis=0))) / HEAD_SPAN_FRAC
    if up is not None:
        size = max(size, float(np.hypot(*up)) / HEAD_EYE_MOUTH_FRAC)
    return seen.mean(axis=0), size, rotation


def _mouth_to_eyes(head: np.ndarray) -> np.ndarray | None:
    """(2,) px from the mean of a head's seen mouth corners to the mean of its seen eye points, or None."""
    eyes, mouth = head[HEAD_EYES], head[HEAD_MOUTH]
    eyes, mouth = eyes[np.all(np.isfinite(eyes), axis=1)], mouth[np.all(np.isfinite(mouth), axis=1)]
    if not (len(eyes) and len(mouth)):
        return None
    return eyes.mean(axis=0) - mouth.mean(axis=0)


def match_faces_to_bodies(face_boxes: np.ndarray, heads: Mapping[int, np.ndarray]) -> list[int]:
    """The body each face of one frame sits on: a body id per face box (N, 4) xyxy px, -1 for none.

    ``heads`` maps body id → its face points (11, 2) px, NaN where unseen
    (:func:`body_heads`).  A face and a body may pair when at least
    ``LINK_MIN_POINTS`` of the body's face points lie in the face box grown by
    ``LINK_MARGIN`` on each side.  Pairs are taken most points first (then the
    face centre nearer the points' mean, then the lower ids), so a body gets
    at most one face and a face at most one body.
    """
    boxes = np.asarray(face_boxes, dtype=np.float64).reshape(-1, 4)
    pairs = []  # (-points, distance, face index, body id)
    for k, box in enumerate(boxes):
        centre = 0.5 * (box[:2] + box[2:])
        for body_id, head in heads.items():
            head = np.asarray(head, dtype=np.float64)
            if head.shape != (len(FACE_KEYPOINTS), 2):
                raise ValueError(f"body {body_id} face points must be ({len(FACE_KEYPOINTS)}, 2), got {head.shape}")
            count = _on_head(box, head)
            if count >= LINK_MIN_POINTS:
                seen = head[np.all(np.isfinite(head), axis=1)]
                pairs.append((-count, float(np.hypot(*(seen.mean(axis=0) - centre))), k, int(body_id)))
    bodies = [-1] * len(boxes)
    taken: set[int] = set()
    for _, _, k, body_id in sorted(pairs):
        if bodies[k] < 0 and body_id not in taken:
            bodies[k] = body_id
            taken.add(body_id)
    return bodies


def join_faces_on_bodies(face_ids: np.ndarray, body_ids: np.ndarray, frames: np.ndarray,
                         bodies: set[int] | None = None) -> tuple[dict[int, int], np.ndarray]:
    """One face per body over a clip, from per-record links: ``({face id: body id or -1}, face ids (R,))``.

    ``face_ids``, ``body_ids`` (-1: none) and ``frames`` (R,) are one row per
    face record (:attr:`FaceRecord.body_id`, never two faces on one body in a
    frame).  ``bodies``: the body ids that made it into the Take (others
    count as none; None keeps all).  A face belongs to the body it sat on in
    more than half of the frames it sat on one.  Faces of one body that never
    share a frame are one face lost and found again: they all take the first
    one's id (the returned ids).  Of faces of one body that do share frames,
    the one on it more often keeps it and the other goes without a body.
    """
    face_ids = np.asarray(face_ids, dtype=np.int64)
    body_ids = np.asarray(body_ids, dtype=np.int64)
    frames = np.asarray(frames, dtype=np.int64)
    if not face_ids.shape == body_ids.shape == frames.shape or face_ids.ndim != 1:
        raise ValueError(f"face_ids, body_ids and frames must be (R,) alike, got {face_ids.shape}, "
                         f"{body_ids.shape}, {frames.shape}")
    if bodies is not None:
        body_ids = np.where(np.isin(body_ids, sorted(bodies)), body_ids, -1)
    links: dict[int, int] = {}
    votes: dict[int, int] = {}
    for fid in np.unique(face_ids).tolist():
        tally = Counter(body_ids[(face_ids == fid) & (body_ids >= 0)].tolist())
        best = tally.most_common(1)
        links[fid] = best[0][0] if best and best[0][1] > 0.5 * sum(tally.values()) else -1
        votes[fid] = best[0][1] if best else 0
    renamed = face_ids.copy()
    for body_id in sorted(set(links.values()) - {-1}):
        claimants = sorted((f for f, b in links.items() if b == body_id), key=lambda f: (-votes[f], f))
        chain, covered = [claimants[0]], set(frames[face_ids == claimants[0]].tolist())
        for fid in claimants[1:]:
            own = set(frames[face_ids == fid].tolist())
            if own & covered:
                links[fid] = -1
            else:
                chain.append(fid)
                covered |= own
        first = min(chain)
        for fid in chain:
            renamed[face_ids == fid] = first
            links.pop(fid)
        links[first] = body_id
    return dict(sorted(links.items())), renamed
