"""The Take file: round trip, validation and schema versions."""

import gc
import io
import json
import warnings
from fractions import Fraction

import numpy as np
import pytest

from rigcast.camera import Intrinsics
from rigcast.errors import TakeError
from rigcast.formats.take import SCHEMA_VERSION, Face, FaceTopology, Take, Track
from rigcast.skeletons import BLAZEPOSE_33
from rigcast.video import VideoInfo


def make_take(num_tracks=2, frames=10, seed=0) -> Take:
    rng = np.random.default_rng(seed)
    info = VideoInfo(width=640, height=360, fps=Fraction(30000, 1001), frame_count=frames, source="clip.mp4",
                     kind="video", codec="h264")
    tracks = []
    for k in range(num_tracks):
        fi = np.arange(k, frames, dtype=np.int64)
        t = len(fi)
        xy = rng.uniform(0, 300, (t, 33, 2))
        xy[0, 5] = np.nan
        conf = rng.uniform(0, 1, (t, 33))
        conf[0, 5] = 0
        tracks.append(Track(track_id=k + 3, skeleton=BLAZEPOSE_33, frame_index=fi, xy=xy,
                            xyz=rng.normal(size=(t, 33, 3)), conf=conf, root_xyz=rng.normal(size=(t, 3))))
    return Take(video=info, intrinsics=Intrinsics.from_fov(640, 360), frame_indices=np.arange(frames),
                timestamps_s=np.arange(frames) * 1001 / 30000, tracks=tuple(tracks), meta={"provider": "CPU"})


def test_round_trip(tmp_path):
    take = make_take()
    path = take.save(tmp_path / "a.take.npz")
    back = Take.load(path)
    assert back.video == take.video
    assert back.video.fps == Fraction(30000, 1001)
    assert back.intrinsics == take.intrinsics
    assert back.meta == take.meta
    assert [t.track_id for t in back.tracks] == [3, 4]
    for a, b in zip(take.tracks, back.tracks):
        assert b.skeleton == a.skeleton
        np.testing.assert_array_equal(a.frame_index, b.frame_index)
        np.testing.assert_array_equal(a.xy, b.xy)  # NaN positions equal too
        np.testing.assert_array_equal(a.conf, b.conf)
        np.testing.assert_array_equal(a.root_xyz, b.root_xyz)
    np.testing.assert_array_equal(back.timestamps_s, take.timestamps_s)


def test_file_is_not_pickled(tmp_path):
    path = make_take().save(tmp_path / "a.npz")
    with np.load(path, allow_pickle=False) as z:
        header = json.loads(bytes(z["header.json"]).decode())
        assert all(z[k].dtype != object for k in z.files)
    assert header["format"] == "rigcast-take"
    assert header["tracks"][0]["skeleton"]["joint_names"][0] == "nose"


def _rewrite_header(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["header.json"]).decode())
    header.update(changes)
    arrays["header.json"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("changes, message", [
    ({"schema_version": SCHEMA_VERSION + 1}, "newer than this rigcast supports"),
    ({"schema_version": 0}, "not supported"),
    ({"schema_version": "1"}, "integer schema_version"),
    ({"format": "something-else"}, "expected format 'rigcast-take'"),
])
def test_wrong_schema_is_refused(tmp_path, changes, message):
    path = tmp_path / "a.npz"
    make_take().save(path)
    _rewrite_header(path, **changes)
    with pytest.raises(TakeError, match=message):
        Take.load(path)


def test_faces_round_trip(tmp_path):
    take = make_take()
    rng = np.random.default_rng(3)
    fi = np.arange(2, 8)
    face = Face(face_id=7, body_id=3, frame_index=fi, xy=rng.uniform(0, 300, (6, 478, 2)),
                xyz=rng.normal(size=(6, 478, 3)), rotation=np.tile(np.eye(3), (6, 1, 1)),
                translation=rng.normal(size=(6, 3)), conf=rng.uniform(size=6), scale=np.full(6, 1.02))
    topo = FaceTopology(triangles=rng.integers(0, 468, (898, 3)), uv=rng.uniform(size=(468, 2)),
                        canonical_xyz=rng.normal(size=(468, 3)))
    with_face = Take(video=take.video, intrinsics=take.intrinsics, frame_indices=take.frame_indices,
                     timestamps_s=take.timestamps_s, tracks=take.tracks, faces=(face,), face_topology=topo)
    back = Take.load(with_face.save(tmp_path / "f.npz"))
    got = back.face(7)
    assert got.body_id == 3
    for name in ("frame_index", "xy", "xyz", "rotation", "translation", "conf", "scale"):
        np.testing.assert_allclose(getattr(got, name), getattr(face, name), rtol=1e-6)
    np.testing.assert_array_equal(back.face_topology.triangles, topo.triangles)
    with pytest.raises(TakeError, match="links to body 99"):
        Take(video=take.video, intrinsics=take.intrinsics, frame_indices=take.frame_indices,
             timestamps_s=take.timestamps_s, tracks=take.tracks,
             faces=(Face(**{**face.__dict__, "body_id": 99}),), face_topology=topo)
    with pytest.raises(TakeError, match="needs a face_topology"):
        Take(video=take.video, intrinsics=take.intrinsics, frame_indices=take.frame_indices,
             timestamps_s=take.timestamps_s, faces=(face,))
    with pytest.raises(TakeError, match=r"xy must be \(T, 468 or 478, 2\)"):
        Face(**{**face.__dict__, "xy": np.zeros((6, 100, 2))})


def test_face_select_keeps_the_chosen_frames_of_every_field():
    rng = np.random.default_rng(4)
    face = Face(face_id=1, body_id=-1, frame_index=np.arange(3, 9), xy=rng.uniform(0, 300, (6, 478, 2)),
                xyz=rng.normal(size=(6, 478, 3)), rotation=rng.normal(size=(6, 3, 3)),
                translation=rng.normal(size=(6, 3)), conf=rng.uniform(size=6), scale=rng.uniform(0.9, 1.1, 6),
                mesh_coefficients=rng.normal(size=(6, 5)))
    keep = (face.frame_index >= 4) & (face.frame_index < 7)
    part = face.select(keep)
    assert part.face_id == 1 and part.num_frames == 3 and part.frame_index.tolist() == [4, 5, 6]
    for name in ("xy", "xyz", "rotation", "translation", "conf", "scale", "mesh_coefficients"):
        np.testing.assert_array_equal(getattr(part, name), getattr(face, name)[1:4], err_msg=name)
    assert face.num_frames == 6 and face.select(np.zeros(6, bool)).num_frames == 0


def test_not_a_take(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("hello")
    with pytest.raises(TakeError, match="not one"):
        Take.load(bad)
    with pytest.raises(TakeError, match="not found"):
        Take.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    with pytest.raises(TakeError, match="header.json"):
        Take.load(tmp_path / "plain.npz")


def _damaged(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[: len(data) // 2]
    if how == "zip magic, then zeros":
        return b"PK\x03\x04" + bytes(200)
    if how == "a flipped byte":  # the zip directory still reads; one member's CRC does not match
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
    if how == "a header that is not JSON":
        arrays = {"header.json": np.frombuffer(b"{not json", dtype=np.uint8)}
    else:
        raise ValueError(how)
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


@pytest.mark.parametrize("how, message", [
    ("truncated", "is not one"),
    ("zip magic, then zeros", "is not one"),
    ("a flipped byte", "damaged Take: Bad CRC"),
    ("a header that is not JSON", "damaged Take"),
])
def test_a_damaged_take_is_refused_and_leaves_no_file_open(tmp_path, how, message):
    path = tmp_path / "damaged.npz"
    path.write_bytes(_damaged(make_take().save(tmp_path / "good.npz").read_bytes(), how))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)  # an unclosed file warns when it is collected
        with pytest.raises(TakeError, match=message):
            Take.load(path)
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


@pytest.mark.parametrize("field, value, message", [
    ("xy", np.zeros((5, 17, 2)), r"xy must be \(5, 33, 2\), got \(5, 17, 2\)"),
    ("conf", np.zeros((4, 33)), r"conf must be \(5, 33\)"),
    ("root_xyz", np.zeros((5, 2)), r"root_xyz must be \(5, 3\)"),
    ("frame_index", np.array([0, 1, 1, 2, 3]), "strictly increasing"),
])
def test_track_validation(field, value, message):
    good = dict(track_id=1, skeleton=BLAZEPOSE_33, frame_index=np.arange(5), xy=np.zeros((5, 33, 2)),
                xyz=np.zeros((5, 33, 3)), conf=np.zeros((5, 33)), root_xyz=np.zeros((5, 3)))
    good[field] = value
    with pytest.raises(TakeError, match=message):
        Track(**good)


def test_take_rejects_stray_frames():
    take = make_take()
    with pytest.raises(TakeError, match="did not analyse"):
        Take(video=take.video, intrinsics=take.intrinsics, frame_indices=np.arange(5), timestamps_s=np.zeros(5),
             tracks=take.tracks)


def test_failed_save_keeps_previous_file(tmp_path):
    path = tmp_path / "a.npz"
    make_take(seed=1).save(path)
    before = path.read_bytes()
    take = make_take()
    object.__setattr__(take, "meta", {"unserialisable": object()})
    with pytest.raises(TypeError):
        take.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]


def test_empty_take_round_trips(tmp_path):
    take = make_take(num_tracks=0)
    back = Take.load(take.save(tmp_path / "e.npz"))
    assert back.tracks == ()
    assert len(back.frame_indices) == 10
