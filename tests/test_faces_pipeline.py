"""FaceAnalyzer on real clips: tracking mode, ids, edge cases; faces linked to bodies."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures_images import astronaut
from footage import crossing_frames, requires_models
from rigcast.models.face_landmarks import NUM_MESH, NUM_REFINED, FaceLandmarker
from rigcast.pipeline.faces import FaceAnalyzer, FaceConfig, FaceRecord, body_heads, join_faces_on_bodies, \
    make_face_models, match_faces_to_bodies
from test_face_models import LANDMARK_TOLERANCE_PCT, MediaPipeReference, carphone_frames, face_size, multi_face_scene, \
    shifted


@pytest.fixture(scope="module")
def face_models():
    return make_face_models()


@pytest.fixture(scope="module")
def mesh_iris_models():
    return make_face_models(landmarks="mesh+iris")


@pytest.fixture(scope="module")
def analyzer(face_models):
    return FaceAnalyzer(*face_models)


# ----------------------------------------------------------------------------------------------------------------
# Tracking


@requires_models
@pytest.mark.reference
def test_carphone_is_one_face_followed_throughout(analyzer):
    """The clip at 15 fps (every second frame of 120), one face: one id, the detector only every 15
    frames, and the tracked mesh stays within 1.5 % (median) of MediaPipe's static-image mesh."""
    state = analyzer.new_state()
    reference = MediaPipeReference()
    detections, ids, errors = 0, set(), []
    for t, frame in enumerate(carphone_frames()):
        if t % 2:
            continue
        records, detected = analyzer.process(frame, t / 30.0, state)
        assert len(records) == 1, f"frame {t}: {len(records)} faces"
        detections += detected
        ids.add(records[0].face_id)
        assert records[0].landmarks.xy.shape == (NUM_REFINED, 2) and records[0].conf > 0.9
        if t % 10 == 0:
            (ref,) = reference.face_mesh(frame)
            errors.append(np.linalg.norm(records[0].landmarks.xy - ref[:, :2], axis=1) / face_size(ref) * 100.0)
    reference.close()
    errors = np.concatenate(errors)
    print(f"\ncarphone tracking: {detections} detector runs in 60 frames; mesh vs MediaPipe static: "
          f"median {np.median(errors):.2f} %, max {errors.max():.2f} %")
    assert ids == {0}
    assert detections <= 60 // 15 + 1
    assert np.median(errors) <= LANDMARK_TOLERANCE_PCT


@requires_models
@pytest.mark.parametrize("landmarks", ["attention", "mesh+iris"])
def test_submit_gives_what_process_gives(landmarks, face_models, mesh_iris_models):
    """With one frame in flight, the pipelined form (ids, and irises with the iris model, of frame t on
    the worker while frame t + 1 is tracked) gives exactly the records of process(), frame by frame:
    faces moving across the composite, so tracking and refinement both change every frame."""
    models = face_models if landmarks == "attention" else mesh_iris_models
    scene, _ = multi_face_scene()
    frames = [shifted(scene, 3 * t, 2 * t) for t in range(8)]
    one_at_a_time = FaceAnalyzer(*models)
    state = one_at_a_time.new_state()
    expected = [one_at_a_time.process(f, t / 30.0, state) for t, f in enumerate(frames)]
    with FaceAnalyzer(*models, FaceConfig(frames_in_flight=1)) as pipelined:
        state = pipelined.new_state()
        futures = [pipelined.submit(f, t / 30.0, state) for t, f in enumerate(frames)]
        got = [f.result() for f in futures]
    assert pipelined._worker is None  # closed on leaving the block
    for t, ((want, want_detected), (have, have_detected)) in enumerate(zip(expected, got)):
        assert have_detected == want_detected and len(have) == len(want) == 4, f"frame {t}"
        for a, b in zip(want, have):
            assert a.face_id == b.face_id and a.followed == b.followed
            assert a.landmarks.has_iris and b.landmarks.has_iris
            # Two code paths (models batched differently): equal to far below a pixel, not bit for bit.
            np.testing.assert_allclose(a.landmarks.xy, b.landmarks.xy, rtol=0, atol=1e-3)
            np.testing.assert_allclose(a.landmarks.z, b.landmarks.z, rtol=0, atol=1e-3)
            np.testing.assert_allclose(a.box_xyxy, b.box_xyxy, rtol=0, atol=1e-3)
            np.testing.assert_allclose(a.landmarks.next_roi().center_xy, b.landmarks.next_roi().center_xy,
                                       rtol=0, atol=1e-3)


def _by_id(records: list[FaceRecord]) -> dict[int, FaceRecord]:
    return {r.face_id: r for r in records}


@requires_models
def test_two_frames_in_flight_find_the_same_faces_as_one(face_models):
    """Two frames in flight (frame t + 1 followed from frame t - 1's ROIs, moved on at their speed): the
    same faces under the same ids in every frame as process(), with faces moving 3.6 px a frame (the
    smallest, 28 px, by 13 % of its size a frame), landmarks close to process()'s; and the same records
    on a second run (nothing depends on thread timing)."""
    scene, _ = multi_face_scene()
    frames = [shifted(scene, 3 * t, 2 * t) for t in range(10)]
    one_at_a_time = FaceAnalyzer(*face_models)
    state = one_at_a_time.new_state()
    expected = [one_at_a_time.process(f, t / 30.0, state)[0] for t, f in enumerate(frames)]
    runs = []
    for _ in range(2):
        with FaceAnalyzer(*face_models, FaceConfig(frames_in_flight=2)) as pipelined:
            state = pipelined.new_state()
            futures = [pipelined.submit(f, t / 30.0, state) for t, f in enumerate(frames)]
            runs.append([f.result() for f in futures])
    assert [d for _, d in runs[0]] == [True] + [False] * (len(frames) - 1)  # frame 1 takes frame 0's faces
    differences = []  # per face and frame: median landmark distance, % of the face
    for t, want in enumerate(expected):
        have = _by_id(runs[0][t][0])
        assert set(have) == set(_by_id(want)) and len(have) == 4, f"frame {t}"
        for a in want:
            b = have[a.face_id]
            size = np.ptp(a.landmarks.xy, axis=0).max()
            differences.append(np.median(np.linalg.norm(a.landmarks.xy - b.landmarks.xy, axis=1)) / size * 100)
        again = _by_id(runs[1][t][0])
        for fid, rec in have.items():
            np.testing.assert_array_equal(rec.landmarks.xy, again[fid].landmarks.xy)
    print(f"\ntwo frames in flight vs one, % of the face: median {np.median(differences):.3f}, "
          f"worst {max(differences):.3f}")
    assert np.median(differences) < LANDMARK_TOLERANCE_PCT / 3
    assert max(differences) < LANDMARK_TOLERANCE_PCT


@requires_models
def test_two_frames_in_flight_pick_up_a_face_the_frame_before_found(face_models):
    """A face that appears in frame t is found there by the detector; frame t + 1, already following the
    ROIs of frame t - 1 (without it), reads it again from frame t's ROI, and it keeps its id.  (The detector
    runs on frames 0, 3 and 6 here; with nothing followed it waits for its turn, see the cadence test.)"""
    image = astronaut()
    blank = np.full_like(image, 90)
    frames = [blank, blank, blank, image, image, image, image]
    with FaceAnalyzer(*face_models, FaceConfig(frames_in_flight=2, redetect_every=3)) as pipelined:
        state = pipelined.new_state()
        got = [f.result() for f in [pipelined.submit(f, t / 30.0, state) for t, f in enumerate(frames)]]
    counts = [len(records) for records, _ in got]
    assert counts == [0, 0, 0, 1, 1, 1, 1]
    assert got[3][1] and not got[4][1] and not got[5][1]  # found by the detector, then followed
    assert {records[0].face_id for records, _ in got[3:]} == {got[3][0][0].face_id}
    assert all(records[0].followed for records, _ in got[4:])


@requires_models
def test_tracking_never_reads_the_irises(mesh_iris_models):
    """Tracking (ids, boxes, next ROIs) is what it is without an iris model; only the landmarks differ."""
    detector, landmarker = mesh_iris_models
    mesh_only = FaceAnalyzer(detector, FaceLandmarker(landmarker.face_runner))
    with_irises = FaceAnalyzer(detector, landmarker)
    scene, _ = multi_face_scene()
    states = [mesh_only.new_state(), with_irises.new_state()]
    for t in range(4):
        frame = shifted(scene, 4 * t, 0)
        plain, _ = mesh_only.process(frame, t / 30.0, states[0])
        refined, _ = with_irises.process(frame, t / 30.0, states[1])
        assert [r.face_id for r in plain] == [r.face_id for r in refined]
        for a, b in zip(plain, refined):
            assert a.landmarks.xy.shape == (NUM_MESH, 2) and b.landmarks.xy.shape == (NUM_REFINED, 2)
            np.testing.assert_array_equal(a.box_xyxy, b.box_xyxy)
            roi_a, roi_b = a.landmarks.next_roi(), b.landmarks.next_roi()
            np.testing.assert_array_equal(roi_a.center_xy, roi_b.center_xy)
            assert (roi_a.size, roi_a.rotation) == (roi_b.size, roi_b.rotation)
        # The big faces' eye contours were moved by the iris model, so the refined points differ.
        assert any(not np.array_equal(a.landmarks.xy, b.landmarks.xy[:NUM_MESH]) for a, b in zip(plain, refined))


@requires_models
def test_composite_faces_keep_their_ids(analyzer):
    """The four faces of the composite, drifting a few px per frame: four records per frame, four ids
    that never change; the 26-px face is flagged unreliable, the others are not."""
    canvas, regions = multi_face_scene()
    state = analyzer.new_state()
    first_ids = None
    for t in range(6):
        frame = shifted(canvas, 3 * t, 2 * t)
        records, detected = analyzer.process(frame, t / 30.0, state)
        assert detected == (t == 0)
        assert len(records) == 4
        by_patch = {}
        for r in records:
            centre = 0.5 * (r.box_xyxy[:2] + r.box_xyxy[2:]) - [3 * t, 2 * t]
            (k,) = [k for k, (x, y, w, h) in enumerate(regions) if x <= centre[0] <= x + w and y <= centre[1] <= y + h]
            by_patch[k] = r
        assert set(by_patch) == {0, 1, 2, 3}
        assert [by_patch[k].landmarks.is_reliable for k in range(4)] == [True, True, False, True]
        ids = [by_patch[k].face_id for k in range(4)]
        first_ids = first_ids or ids
        assert ids == first_ids and len(set(ids)) == 4


@requires_models
@pytest.mark.parametrize("landmarks", ["mesh+iris", "attention"])
def test_a_drifted_mesh_is_reread_when_the_detector_runs(landmarks, face_models, mesh_iris_models):
    """A face that moved 0.3 of its size between frames is drawn by the mesh model at the centre of the
    stale ROI, with full confidence (the attention model sees no face there: the face is lost); the next
    detector run puts it back where the face is, under its id."""
    from rigcast.models.roi import Roi

    analyzer = FaceAnalyzer(*(mesh_iris_models if landmarks == "mesh+iris" else face_models))
    state = analyzer.new_state()
    (first,), _ = analyzer.process(astronaut(), 0.0, state)
    size = first.landmarks.size_px()
    ((key, stale),) = state.rois.items()
    state.rois[key] = Roi(center_xy=stale.center_xy + [0.0, 0.3 * size], size=stale.size, rotation=stale.rotation)
    drifted = analyzer.landmarker(astronaut(), state.rois[key])
    if landmarks == "attention":
        assert drifted is None
    else:
        assert drifted is not None and drifted.score > 0.99
        assert np.linalg.norm(drifted.box_xyxy() - first.box_xyxy) > 0.1 * size, "the premise: a displaced mesh"
    state.frames_since_detect = analyzer.config.redetect_every  # the detector runs on this frame
    (again,), detected = analyzer.process(astronaut(), 1 / 30.0, state)
    assert detected and again.face_id == first.face_id
    assert np.abs(again.box_xyxy - first.box_xyxy).max() < 0.05 * size


@requires_models
def test_max_faces_keeps_the_best(face_models):
    analyzer = FaceAnalyzer(*face_models, FaceConfig(max_faces=2))
    records, _ = analyzer.process(multi_face_scene()[0], 0.0, analyzer.new_state())
    assert len(records) == 2 and all(r.landmarks.score > 0.99 for r in records)


@requires_models
def test_face_leaving_the_frame(analyzer):
    """The astronaut slides left out of the frame: conf falls as the face leaves, flagged once about half
    of it is out; once it is gone nothing is reported (no mesh is invented from the border pixels)."""
    state = analyzer.new_state()
    face_centre_x = 225
    confs = []
    for t, dx in enumerate(range(0, -301, 25)):
        records, _ = analyzer.process(shifted(astronaut(), dx), t / 30.0, state)
        assert len(records) <= 1
        visible = face_centre_x + dx  # where the face centre is now
        if records:
            conf = records[0].conf
            confs.append(conf)
            if visible <= 0:
                assert not records[0].landmarks.is_reliable
            if visible > 60:
                assert conf > 0.9
        if visible < -40:
            assert records == [], f"a face reported at dx={dx}, its centre {-visible} px out of the frame"
    assert np.all(np.diff(confs) <= 1e-6)


@requires_models
def test_edge_cases_through_the_pipeline(analyzer):
    """A real profile (the cameraman) is followed; a backdrop gives nothing; the 16-px astronaut is
    either missed or flagged."""
    import cv2
    from skimage import data

    from fixtures_images import background

    camera = np.ascontiguousarray(np.repeat(data.camera()[..., None], 3, axis=2))
    records, _ = analyzer.process(camera, 0.0, analyzer.new_state())
    assert len(records) == 1 and 150 < records[0].box_xyxy[0] < 250
    assert analyzer.process(background(480, 640), 0.0, analyzer.new_state())[0] == []
    scale = 16.0 / 95.3
    small = cv2.resize(astronaut(), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = background(240, 320).copy()
    canvas[100:100 + small.shape[0], 150:150 + small.shape[1]] = small
    records, _ = analyzer.process(canvas, 0.0, analyzer.new_state())
    assert all(not r.landmarks.is_reliable for r in records)


# ----------------------------------------------------------------------------------------------------------------
# Faces and bodies


def _box(cx, cy, size=40.0):
    return np.array([cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2])


def _head(cx, cy, spread=10.0, missing=()):
    """A body's 11 face points (nose, eyes, ears, mouth corners) around (cx, cy), NaN for ``missing``."""
    offsets = [(0, 0), (-0.3, -0.3), (-0.5, -0.3), (-0.7, -0.3), (0.3, -0.3), (0.5, -0.3), (0.7, -0.3), (-1.2, 0),
               (1.2, 0), (-0.4, 0.5), (0.4, 0.5)]
    head = np.array([cx, cy]) + spread * np.array(offsets)
    head[list(missing)] = np.nan
    return head


@pytest.mark.parametrize("boxes, heads, expected", [
    ([_box(100, 100)], {3: _head(100, 100)}, [3]),
    # two people side by side
    ([_box(100, 100), _box(300, 100)], {10: _head(300, 100), 11: _head(100, 100)}, [11, 10]),
    # no body near the face, and no bodies at all
    ([_box(100, 100)], {5: _head(400, 400)}, [-1]),
    ([_box(100, 100)], {}, [-1]),
    # face points mostly unseen: fewer than two inside -> no link
    ([_box(100, 100)], {4: _head(100, 100, missing=range(1, 11))}, [-1]),
    # two faces over one body: the body goes to the face holding more of its points, the other has none
    ([_box(100, 100), _box(125, 100)], {4: _head(100, 100)}, [4, -1]),
    # one face over two heads: the face goes to the head with more points inside
    ([_box(100, 100)], {1: _head(125, 100), 2: _head(100, 100)}, [2]),
])
def test_match_faces_to_bodies(boxes, heads, expected):
    assert match_faces_to_bodies(np.array(boxes), heads) == expected


def test_match_faces_to_bodies_checks_inputs():
    with pytest.raises(ValueError, match=r"\(11, 2\)"):
        match_faces_to_bodies(np.array([_box(0, 0)]), {2: np.zeros((9, 2))})


@pytest.mark.parametrize("faces, bodies, frames, known, links, renamed", [
    # one face on one body
    ([7, 7, 7], [3, 3, 3], [0, 1, 2], None, {7: 3}, [7, 7, 7]),
    # majority of the frames it sat on a body: 3 of 4, and 1 of 1 with unlinked frames beside it
    ([1, 1, 1, 1], [4, 4, 4, 5], [0, 1, 2, 3], None, {1: 4}, [1, 1, 1, 1]),
    ([1, 1, 1], [-1, -1, 4], [0, 1, 2], None, {1: 4}, [1, 1, 1]),
    # a tie is no majority; a body dropped from the Take is no body
    ([1, 1], [4, 5], [0, 1], None, {1: -1}, [1, 1]),
    ([1, 1], [4, 4], [0, 1], {5}, {1: -1}, [1, 1]),
    # lost and found again on the same body: the second face takes the first one's id
    ([2, 2, 9, 9], [6, 6, 6, 6], [0, 1, 40, 41], None, {2: 6}, [2, 2, 2, 2]),
    # two faces on one body at once (in turn, never in the same frame): the one on it more often keeps it
    ([2, 2, 2, 9, 9], [6, 6, 6, 6, 6], [0, 1, 2, 1, 3], None, {2: 6, 9: -1}, [2, 2, 2, 9, 9]),
])
def test_join_faces_on_bodies(faces, bodies, frames, known, links, renamed):
    got_links, got_ids = join_faces_on_bodies(np.array(faces), np.array(bodies), np.array(frames), known)
    assert got_links == links
    assert got_ids.tolist() == renamed


def test_join_faces_on_bodies_checks_inputs():
    with pytest.raises(ValueError, match=r"\(R,\) alike"):
        join_faces_on_bodies(np.array([1, 2]), np.array([1]), np.array([0, 1]))


@requires_models
def test_faces_link_to_their_bodies_on_a_real_clip(analyzer):
    """The crossing clip: the astronaut and the cameraman walk past each other, the cameraman in front.
    Faces and bodies (rigcast's body pipeline, lite model) on every frame.  Each record's body is judged
    against the clip's construction: the face and the body's nose lie in the same person's patch."""
    from rigcast.models import make_pose_models
    from rigcast.pipeline.body import BodyAnalyzer

    frames, centres = crossing_frames()
    half_w, half_h = 0.5 * 240 * 512 / 512, 0.5 * 240  # both patches are 240 px tall; the astronaut's is square
    bodies = BodyAnalyzer(*make_pose_models("lite"))
    body_state, face_state = bodies.new_state(), analyzer.new_state()

    def person_at(xy, t):
        """The person whose patch holds ``xy`` in frame t, the one in front (the cameraman, 1) first."""
        for k in (1, 0):
            if np.all(np.abs(np.asarray(xy) - centres[k][t]) <= [half_w, half_h]):
                return k
        return None

    linked = checked = 0
    for t, frame in enumerate(frames):
        people, _ = bodies.process(frame, t / 30.0, body_state)
        faces, _ = analyzer.process(frame, t / 30.0, face_state, body_heads(people))
        nose = {p.track_id: p.landmarks.xy[0] for p in people}
        links = [r.body_id for r in faces if r.body_id >= 0]
        assert len(links) == len(set(links)), f"frame {t}: two faces on one body"
        for r in faces:
            checked += 1
            if r.body_id >= 0:
                linked += 1
                face_person = person_at(0.5 * (r.box_xyxy[:2] + r.box_xyxy[2:]), t)
                assert face_person == person_at(nose[r.body_id], t), f"frame {t}: face {r.face_id} on another's body"
    print(f"\ncrossing clip: {linked} of {checked} face records on a body")
    assert linked >= 0.8 * checked


# ----------------------------------------------------------------------------------------------------------------
# Construction


@requires_models
def test_make_face_models_options(face_models):
    default_detector, default_landmarker = face_models
    assert default_detector.mode == "auto" and default_landmarker.attention
    detector, landmarker = make_face_models(detector_mode="short", landmarks="mesh")
    assert detector.mode == "short" and detector.full is None and landmarker.iris_runner is None
    assert not landmarker.attention
    roi = detector(astronaut())[0].to_roi()
    assert landmarker(astronaut(), roi).xy.shape == (NUM_MESH, 2)
    assert default_landmarker(astronaut(), roi).xy.shape == (NUM_REFINED, 2)
    with pytest.raises(ValueError, match="detector_mode"):
        make_face_models(detector_mode="medium")
    with pytest.raises(ValueError, match="landmarks must be one of"):
        make_face_models(landmarks="dense")


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_faces=0), "max_faces"),
    (dict(redetect_every=0), "redetect_every"),
    (dict(duplicate_iou=0.0), "duplicate_iou"),
    (dict(new_face_iou=1.5), "new_face_iou"),
    (dict(frames_in_flight=3), "frames_in_flight"),
])
def test_face_config_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FaceConfig(**kwargs)


def test_face_record_is_validated():
    with pytest.raises(ValueError, match="landmarks must be FaceLandmarks"):
        FaceRecord(face_id=0, landmarks=None, box_xyxy=np.zeros(4), appearance=np.zeros(64), followed=False)
