"""Headless composites (headless/render.py, rigcast render) on real footage, checked on the decoded pixels.

Every render runs in a subprocess: Blender aborts the process (no exception)
when OpenGL is missing.  Renders are tiny (at most 160x120, 4-8 frames, one
sample).  The footage is the carphone clip cropped to 160x120 with a 440 Hz
tone muxed in; the character check uses two real people walking past each
other (tests/footage.py), analysed by rigcast itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import footage
from rigcast.composite import DEFAULT_SAMPLES, parse, parse_frames, parse_resolution
from rigcast.errors import InputError
from rigcast.formats.take import Take
from rigcast.overlay import MaskAsset
from rigcast.overlay.figures import Mannequin, bone_capsules, capsule, track_rgb
from rigcast.retarget import default_rig
from rigcast.skeletons import BLAZEPOSE_33
from rigcast.video import open_footage
from test_overlay import SINE_HZ, clip_with_audio, covered, decode, dominant_frequency

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "headless" / "render.py"
RENDER_TIMEOUT_S = 900
CODEC_NOISE = 6.0  # mean absolute difference (0..255) of far-from-overlay pixels, source vs render
HIP = [BLAZEPOSE_33.index("left_hip"), BLAZEPOSE_33.index("right_hip")]
EARS = [BLAZEPOSE_33.index("left_ear"), BLAZEPOSE_33.index("right_ear")]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def talk(tmp_path_factory) -> tuple[Path, Path, list[np.ndarray]]:
    """(footage, take, source frames): 8 frames of carphone cropped to 160x120 at 29.97 fps with a tone, analysed."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    folder = tmp_path_factory.mktemp("talk")
    with open_footage(footage.carphone()) as f:
        frames = [frame.rgb[12:132, 8:168].copy() for _, frame in zip(range(8), f)]
    clip = clip_with_audio(folder / "talk.mp4", frames, Fraction(30000, 1001), "aac")
    take = analyze(clip, folder / "talk.take.npz", AnalyzeConfig())
    assert take.faces and take.tracks, "the carphone crop should yield a face and a body"
    source, _, _ = decode(clip)
    return clip, folder / "talk.take.npz", source


@pytest.fixture(scope="module")
def walkers(tmp_path_factory) -> tuple[Path, Path]:
    """(footage, take): two real people walking past each other, 640x360, 8 frames, bodies only."""
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    folder = tmp_path_factory.mktemp("walkers")
    frames, _ = footage.crossing_frames(num_frames=8)
    clip = footage.write_video(folder / "walkers.mp4", frames)
    take = analyze(clip, folder / "walkers.take.npz", AnalyzeConfig(faces=False))
    assert any(t.num_frames == 8 for t in take.tracks), "one walker should be tracked on every frame"
    return clip, folder / "walkers.take.npz"


def run(args: list[str], form: str = "python", env: dict | None = None,
        cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run the renderer in a subprocess in one of its forms; returns the finished process (text output).

    ``blender``: the script as ``blender -b --python-exit-code 1 --python headless/render.py -- ARGS`` runs it
    (Blender runs it as __main__ with its own options first in sys.argv); ``python--``: ``python
    headless/render.py -- ARGS``; ``python``: ``python headless/render.py ARGS``; ``cli``: ``rigcast render ARGS``.
    """
    if form == "blender":
        argv = ["blender", "-b", "--python-exit-code", "1", "--python", str(SCRIPT), "--", *args]
        code = f"import runpy, sys; sys.argv = {argv!r}; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')"
        command = [sys.executable, "-c", code]
    elif form == "python--":
        command = [sys.executable, str(SCRIPT), "--", *args]
    elif form == "python":
        command = [sys.executable, str(SCRIPT), *args]
    else:
        command = [sys.executable, "-m", "rigcast.cli", "render", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S, cwd=cwd,
                          env=dict(os.environ, **(env or {})), stdin=subprocess.DEVNULL)


def rendered(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, f"render failed ({done.returncode}): {done.stderr[-2000:]}"


def changed(render: np.ndarray, source: np.ndarray, threshold: int = 30) -> np.ndarray:
    """(H, W) pixels an overlay changed: any channel off by more than ``threshold``, specks removed."""
    import cv2

    diff = (np.abs(render.astype(np.int16) - source.astype(np.int16)).max(axis=2) > threshold).astype(np.uint8)
    return cv2.morphologyEx(diff, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)).astype(bool)


def far_from(region: np.ndarray, pixels: int) -> np.ndarray:
    import cv2

    return ~cv2.dilate(region.astype(np.uint8), np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)).astype(bool)


# --------------------------------------------------------------------------- renders


def test_eevee_mask_lands_on_the_face_and_leaves_the_footage_alone(talk, tmp_path):
    """EEVEE (the default engine) through the ``blender -b ... --`` form: frames, size, rate, audio; the mask's
    changed pixels against the mask region projected in core (IoU >= 0.7); far pixels equal the footage."""
    clip, take_path, source = talk
    out = tmp_path / "mask.mp4"
    done = run(["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--overlay", "mask",
                "--samples", "1", "--frames", "2:6"], form="blender")
    rendered(done)
    assert "frame 4/4 (100%)" in done.stdout and "ETA" in done.stdout

    frames, times, facts = decode(out)
    assert len(frames) == 4 and frames[0].shape == (120, 160, 3)
    assert facts["rate"] == Fraction(30000, 1001) and facts["codec"] == "h264"
    assert facts["audio"] == 1 and dominant_frequency(out) == pytest.approx(SINE_HZ, abs=5.0)

    take, asset = Take.load(take_path), MaskAsset.load()
    for k, frame in enumerate(frames):
        region = covered(take, 2 + k, asset)
        drawn = changed(frame, source[2 + k])
        iou = (region & drawn).sum() / (region | drawn).sum()
        assert iou >= 0.7, f"frame {2 + k}: mask IoU {iou:.2f} with the region projected in core"
        far = far_from(region, 6)
        error = np.abs(frame.astype(np.float64) - source[2 + k])[far].mean()
        assert error < CODEC_NOISE, f"frame {2 + k}: pixels far from the mask differ by {error:.1f} on average"


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory) -> tuple[Path, Path, list[np.ndarray]]:
    """(footage, take, source frames): two people of insightface's t1.jpg (a real group photo), 160x120, 6 frames
    of a slow pan, analysed by rigcast: two faces, each found on every frame."""
    import cv2

    from fixtures_images import package_photo
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    folder = tmp_path_factory.mktemp("two_faces")
    t1 = package_photo("t1")
    frames = [cv2.resize(np.ascontiguousarray(t1[60:420, 180 - 4 * k:660 - 4 * k]), (160, 120),
                         interpolation=cv2.INTER_AREA) for k in range(6)]
    clip = footage.write_video(folder / "two.mp4", frames)
    take = analyze(clip, folder / "two.take.npz", AnalyzeConfig())
    assert len([f for f in take.faces if f.num_frames == 6]) >= 2, [(f.face_id, f.num_frames) for f in take.faces]
    return clip, folder / "two.take.npz", decode(clip)[0]


def test_a_mask_lands_on_each_of_two_faces(two_faces, tmp_path):
    """Footage with two faces: the changed pixels nearer each face's mask region (projected in core, that face
    alone) than the other's cover it with IoU >= 0.7, on every frame; pixels far from both equal the footage."""
    import cv2
    from dataclasses import replace

    clip, take_path, source = two_faces
    out = tmp_path / "two.mp4"
    rendered(run(["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--overlay", "mask",
                  "--engine", "workbench", "--samples", "1", "--frames", "0:4"]))
    frames, _, facts = decode(out)
    assert len(frames) == 4 and frames[0].shape == (120, 160, 3) and facts["audio"] == 0
    take, asset = Take.load(take_path), MaskAsset.load()
    faces = [f for f in take.faces if f.num_frames == 6]
    for k, frame in enumerate(frames):
        regions = [covered(replace(take, faces=(face,)), k, asset) for face in faces]  # (H, W) each
        assert all(r.sum() >= 40 for r in regions), f"frame {k}: mask regions of {[r.sum() for r in regions]} px"
        # Pixels go to the face whose region is nearest (distance 0 inside it).
        distance = np.stack([cv2.distanceTransform((~r).astype(np.uint8), cv2.DIST_L2, 3) for r in regions])
        nearest = np.argmin(distance, axis=0)
        drawn = changed(frame, source[k])
        for i, region in enumerate(regions):
            mine = drawn & (nearest == i)
            iou = (region & mine).sum() / (region | mine).sum()
            assert iou >= 0.7, f"frame {k}, face {faces[i].face_id}: mask IoU {iou:.2f} with its projected region"
        far = far_from(np.any(regions, axis=0), 6)
        error = np.abs(frame.astype(np.float64) - source[k])[far].mean()
        assert error < CODEC_NOISE, f"frame {k}: pixels far from both masks differ by {error:.1f} on average"


PREPARE_ONLY = """
import sys
import bpy
from rigcast_blender import render
from rigcast.composite import parse
render.prepare(parse(sys.argv[1:]))
print("IMPORTED", ",".join(sorted({m.split(".")[0] for m in sys.modules} & {"scipy", "onnxruntime", "av", "cv2"})))
print("SHAPE KEYS", sorted(len(m.shape_keys.key_blocks) for m in bpy.data.meshes if m.shape_keys))
"""


def test_a_scene_is_built_without_scipy_or_inference_libraries(talk, tmp_path):
    """Start-up cost: preparing a render imports neither SciPy (0.25-0.3 s) nor onnxruntime, PyAV or OpenCV,
    whether it draws faces (mask, face mesh) or retargets bodies (skeleton, character).  Faces are built
    for the rendered frames only: ``--frames 2:5`` gives the mask and the face mesh a shape key per frame of those
    three (and their basis), not one per analysed frame."""
    clip, take_path, _ = talk
    imported = {}
    for overlay in ("mask,facemesh", "skeleton,character"):
        done = subprocess.run([sys.executable, "-c", PREPARE_ONLY, "--footage", str(clip), "--take", str(take_path),
                               "-o", str(tmp_path / "out.mp4"), "--overlay", overlay, "--engine", "cycles",
                               "--frames", "2:5"], capture_output=True, text=True, timeout=300,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr[-2000:]
        imported[overlay] = done.stdout.split("IMPORTED")[-1].splitlines()[0].strip()
        if overlay == "mask,facemesh":
            keys = done.stdout.split("SHAPE KEYS")[-1].strip()
            dense = Take.load(take_path).face_mesh is not None  # a dense mesh keys its coefficients instead
            assert keys == ("[4]" if dense else "[4, 4]"), keys
    assert imported == {"mask,facemesh": "", "skeleton,character": ""}


def face_mesh_region(take: Take, frame_index: int) -> np.ndarray:
    """(H, W) pixels core's shaded face mesh covers on ``frame_index``, found by drawing on black and on white."""
    from rigcast.overlay import draw_frame

    h, w = take.video.height, take.video.width
    black, white = (draw_frame(np.full((h, w, 3), v, np.uint8), take, frame_index, ("mesh",), mesh_style="shaded")
                    for v in (0, 255))
    return black.any(axis=2) | (white.min(axis=2) < 255)


def test_facemesh_shaded_covers_the_face_and_wire_leaves_it_showing(talk, tmp_path):
    """Both face mesh styles, on the decoded pixels, rendered at 3x the footage (a wireframe needs the room):
    shaded, the changed pixels are the face mesh region projected in core (IoU >= 0.7); wire, they lie within that
    region and cover only part of it, the footage showing between the edges."""
    import cv2

    clip, take_path, source = talk
    take = Take.load(take_path)
    size = (480, 360)
    drawn = {}
    for style in ("shaded", "wire"):
        out = tmp_path / f"{style}.mp4"
        rendered(run(["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--overlay", "facemesh",
                      "--facemesh-style", style, "--engine", "workbench", "--samples", "1", "--frames", "2:4",
                      "--resolution", f"{size[0]}x{size[1]}"]))
        frames, _, _ = decode(out)
        assert len(frames) == 2 and frames[0].shape == (size[1], size[0], 3)
        drawn[style] = [changed(frame, cv2.resize(source[2 + k], size, interpolation=cv2.INTER_LINEAR))
                        for k, frame in enumerate(frames)]
    inner = np.zeros(size[::-1], bool)
    inner[4:-4, 4:-4] = True  # the frame's edge, where Blender's footage scaling and OpenCV's differ most
    for k in range(2):
        region = cv2.resize(face_mesh_region(take, 2 + k).astype(np.uint8), size,
                            interpolation=cv2.INTER_NEAREST).astype(bool)
        shaded, wire = drawn["shaded"][k] & inner, drawn["wire"][k] & inner
        iou = (region & shaded).sum() / (region | shaded).sum()
        inside = (wire & ~far_from(region, 6)).sum() / max(wire.sum(), 1)
        fill = (wire & region).sum() / region.sum()
        assert iou >= 0.7, f"frame {2 + k}: shaded face mesh IoU {iou:.2f} with the region projected in core"
        assert inside >= 0.95, f"frame {2 + k}: {1 - inside:.0%} of the wireframe lies off the face mesh region"
        # Measured 9 %: thin grey edges over a face; shaded changes 80 % of the region (a grey face on a pale one).
        assert 0.03 <= fill <= 0.4 * (region & shaded).sum() / region.sum(), \
            f"frame {2 + k}: the wireframe changes {fill:.0%} of the face mesh region"


PROBE_HIPS = """
import bpy, json, sys
from bpy_extras.object_utils import world_to_camera_view
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
scene, out = bpy.context.scene, {}
for name in sys.argv[2:]:
    arm, rows = bpy.data.objects[name], []
    for f in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(f)
        hip = 0.5 * (arm.pose.bones["thigh.L"].head + arm.pose.bones["thigh.R"].head)
        ndc = world_to_camera_view(scene, scene.camera, arm.matrix_world @ hip)
        rows.append([ndc.x, 1.0 - ndc.y])
    out[name] = rows
print("HIPS" + json.dumps(out))
"""


def projected_hips(blend: Path, armatures: list[str]) -> dict[str, np.ndarray]:
    """(frames, 2) hip of each of ``armatures`` in the saved scene seen through its camera, as fractions of width and
    height, by armature name."""
    done = subprocess.run([sys.executable, "-c", PROBE_HIPS, str(blend), *armatures], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return {name: np.array(rows) for name, rows in json.loads(done.stdout.split("HIPS")[-1]).items()}


def check_character_on_the_walker(walkers, out: Path, blend: Path, armature: str) -> None:
    """Every track's character follows its own person: its hip, projected through the rendered scene's camera, lies
    within 5 % of the frame height of that track's 2D hip in the Take on each of the track's frames (both walkers
    walk in opposite directions, one of them across most of the frame, the other until the first hides them); and
    the rendered pixels at the front walker's hip are a character's."""
    import cv2

    clip, take_path = walkers
    frames, _, facts = decode(out)
    assert len(frames) == 8 and frames[0].shape == (90, 160, 3) and facts["audio"] == 0
    with open_footage(clip) as f:
        source = [cv2.resize(fr.rgb, (160, 90), interpolation=cv2.INTER_AREA) for fr in f]
    take = Take.load(take_path)
    names = {track.track_id: armature.format(track=track.track_id) for track in take.tracks}
    got_all = projected_hips(blend, list(names.values()))
    directions = set()
    for track in take.tracks:
        want = 0.5 * (track.xy[:, HIP[0]] + track.xy[:, HIP[1]]) / [take.video.width, take.video.height]  # (T, 2)
        seen = np.all(np.isfinite(want), axis=1)
        assert seen.sum() >= 4, f"track {track.track_id}: hips seen on {seen.sum()} frames"
        if np.ptp(want[seen, 0]) > 0.1:  # a walker, not a standing false detection
            directions.add(np.sign(want[seen][-1, 0] - want[seen][0, 0]))
        got = got_all[names[track.track_id]][track.frame_index]
        error = np.linalg.norm((got - want) * [16 / 9, 1], axis=1)[seen]  # in frame heights (16:9 frame)
        assert error.max() <= 0.05, f"track {track.track_id}: hip off by {error.max():.3f} of the frame height"
        if track is not max(take.tracks, key=lambda t: t.num_frames):
            continue  # the other walker is partly hidden by the first, and so may its character be
        for k in np.flatnonzero(seen):
            f = track.frame_index[k]
            x, y = np.round(want[k] * [160, 90]).astype(int)
            near = changed(frames[f], source[f])[max(y - 4, 0):y + 5, max(x - 4, 0):x + 5]
            assert near.mean() > 0.5, f"frame {f}: the character is not drawn at the person's hip"
    assert directions == {-1.0, 1.0}, "both walkers, going opposite ways, should be tracked"
    crossed = max(np.nanmax(t.xy[:, HIP, 0]) - np.nanmin(t.xy[:, HIP, 0]) for t in take.tracks)
    assert crossed > 0.4 * take.video.width, "a walker should cross most of the frame"


@pytest.fixture(scope="module")
def mannequin_render(walkers, tmp_path_factory) -> tuple[Path, Path]:
    """Workbench, the character overlay (rigcast's mannequin) at 160x90 from 640x360, and the scene it rendered."""
    clip, take_path = walkers
    folder = tmp_path_factory.mktemp("mannequin")
    out, blend = folder / "walkers.mp4", folder / "walkers.blend"
    rendered(run(["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--overlay", "character",
                  "--engine", "workbench", "--samples", "1", "--resolution", "160x90", "--save-blend", str(blend)]))
    return out, blend


def test_workbench_mannequin_follows_the_person(walkers, mannequin_render):
    check_character_on_the_walker(walkers, *mannequin_render, "walkers_body{track}")


def test_a_character_rig_from_a_blend_file_follows_the_person(walkers, mannequin_render, tmp_path):
    """A user's rig (a .blend holding other things too: here the mannequin scene rendered above, whose armatures
    carry rigcast's bone names) is sized to the person and retargeted with --map."""
    clip, take_path = walkers
    out, blend = tmp_path / "rig.mp4", tmp_path / "rig.blend"
    rendered(run(["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--overlay", "character",
                  "--character", str(mannequin_render[1]), "--map", "rigcast", "--engine", "workbench",
                  "--samples", "1", "--resolution", "160x90", "--save-blend", str(blend)]))
    check_character_on_the_walker(walkers, out, blend, "walkers_character{track}")


EXPORT_CHARACTER = """
import bpy, sys
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
arm = min((o for o in bpy.data.objects if o.type == 'ARMATURE' and o.name.startswith(sys.argv[2])),
          key=lambda o: o.name)
out = sys.argv[3]
arm.animation_data_clear()  # the character alone, at rest: the render retargets it
for obj in bpy.data.objects:
    obj.select_set(obj == arm or obj.parent == arm)
bpy.context.view_layer.objects.active = arm
if out.endswith(".fbx"):
    done = bpy.ops.export_scene.fbx(filepath=out, use_selection=True, add_leaf_bones=False, bake_anim=False,
                                    primary_bone_axis='Y', secondary_bone_axis='X')
else:
    done = bpy.ops.export_scene.gltf(filepath=out, export_format='GLB', use_selection=True, export_animations=False)
assert done == {'FINISHED'}, done
"""


@pytest.mark.parametrize("suffix", [".fbx", ".glb"])
def test_a_character_rig_from_fbx_or_gltf_follows_the_person(walkers, mannequin_render, tmp_path, suffix):
    """A user's rig as FBX or binary glTF (the mannequin, armature and skinned mesh, written by Blender's own
    exporters, so the bone names are rigcast's): imported by the render, sized, retargeted, and on the person."""
    clip, take_path = walkers
    rig = tmp_path / f"character{suffix}"
    done = subprocess.run([sys.executable, "-c", EXPORT_CHARACTER, str(mannequin_render[1]), "walkers_body",
                           str(rig)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and rig.is_file(), done.stderr[-2000:]
    out, blend = tmp_path / "rig.mp4", tmp_path / "rig.blend"
    rendered(run(["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--overlay", "character",
                  "--character", str(rig), "--map", "rigcast", "--engine", "workbench", "--samples", "1",
                  "--resolution", "160x90", "--save-blend", str(blend)]))
    check_character_on_the_walker(walkers, out, blend, "walkers_character{track}")


def test_cycles_skeleton_with_a_png_sequence(talk, tmp_path):
    """Cycles, the skeleton overlay and --png-dir, through ``python headless/render.py ARGS`` (no ``--``)."""
    clip, take_path, source = talk
    out, pngs = tmp_path / "skeleton.mp4", tmp_path / "png"
    rendered(run(["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--overlay", "skeleton",
                  "--engine", "cycles", "--samples", "1", "--frames", "0:4", "--png-dir", str(pngs)]))
    import cv2

    frames, _, _ = decode(out)
    files = sorted(pngs.glob("*.png"))
    assert len(frames) == 4 and [p.name for p in files] == [f"{k:06d}.png" for k in range(4)]
    take = Take.load(take_path)
    track = take.tracks[0]
    for k, (frame, png) in enumerate(zip(frames, files)):
        still = cv2.cvtColor(cv2.imread(str(png)), cv2.COLOR_BGR2RGB)
        assert np.abs(still.astype(np.float64) - frame).mean() < CODEC_NOISE, "the PNG is not the video's frame"
        drawn = changed(still, source[k])
        assert drawn.any(), f"frame {k}: the skeleton drew nothing"
        # Capsules sit on the track's confident joints: the drawn pixels' centre is the visible skeleton's.
        ok = (track.conf[k] > 0.5) & np.all((track.xy[k] >= 0) & (track.xy[k] < [160, 120]), axis=1)
        ys, xs = np.nonzero(drawn)
        assert abs(xs.mean() - track.xy[k][ok, 0].mean()) < 0.15 * 160


def test_relative_output_and_png_paths_are_the_working_folders(talk, tmp_path):
    """``-o out.mp4 --png-dir png`` from another folder: Blender's writer cannot create a bare relative name, so the
    render resolves them against the working folder (it once wrote nothing and failed)."""
    clip, take_path, _ = talk
    rendered(run(["--footage", str(clip), "--take", str(take_path), "-o", "out.mp4", "--overlay", "mask",
                  "--engine", "workbench", "--samples", "1", "--frames", "0:2", "--png-dir", "png"], cwd=tmp_path))
    assert len(decode(tmp_path / "out.mp4")[0]) == 2
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["000000.png", "000001.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4", "png"]


def demo_render_args() -> list[str]:
    """The arguments of the README demo's render step: the ``rigcast render`` line of ``tools/dev.sh demo``."""
    import shlex

    script = (REPO / "tools" / "dev.sh").read_text().replace("\\\n", " ")
    lines = [line for line in script.splitlines() if '/bin/rigcast" render ' in line]
    assert len(lines) == 1, f"tools/dev.sh should render once in its demo, found {len(lines)} render lines"
    return shlex.split(lines[0].split('/bin/rigcast" render ', 1)[1])


@pytest.mark.slow
def test_the_demo_render_step_runs_on_a_short_cut_of_the_demo_clip(tmp_path):
    """``tools/dev.sh demo``'s ``rigcast render`` command line, as written there (EEVEE, mask, face mesh and
    character, 12 frames, 1 sample), on the first 12 frames of the demo clip analysed by rigcast: 12 frames at the
    clip's size and rate, and the face drawn over (the mask and face mesh regions projected in core, changed)."""
    from rigcast.overlay import draw_frame
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze

    source, _, facts = decode(footage.carphone())
    clip = footage.write_video(tmp_path / "carphone12.mp4", source[:12], fps=facts["rate"])
    take = analyze(clip, tmp_path / "carphone.take.npz", AnalyzeConfig())
    out = tmp_path / "carphone_composite.mp4"
    paths = {"$clip": str(clip), "out/carphone.take.npz": str(tmp_path / "carphone.take.npz"),
             "out/carphone_composite.mp4": str(out)}
    args = [paths.get(a, a) for a in demo_render_args()]
    assert not [a for a in args if "$" in a or a.startswith("out/")], f"unknown paths in the demo's render: {args}"
    done = run(args, form="cli")
    rendered(done)
    assert "frame 12/12 (100%)" in done.stdout
    frames, _, got = decode(out)
    assert len(frames) == 12 and frames[0].shape == source[0].shape and got["rate"] == facts["rate"]
    h, w = frames[0].shape[:2]
    for k in (0, 11):
        face = np.zeros((h, w), bool)
        for layers, style in ((("mask",), "shaded"), (("mesh",), "shaded")):
            black, white = (draw_frame(np.full((h, w, 3), v, np.uint8), take, k, layers, mesh_style=style)
                            for v in (0, 255))
            face |= black.any(axis=2) | (white.min(axis=2) < 255)
        assert face.sum() > 100, f"frame {k}: no face projected"
        drawn = changed(frames[k], source[k]) & face
        assert drawn.sum() >= 0.7 * face.sum(), f"frame {k}: {drawn.sum() / face.sum():.0%} of the face drawn over"


@pytest.mark.parametrize("case, match", [
    ("missing footage", "footage not found"),
    ("unknown overlay", "--overlay takes .* got bogus"),
    ("missing take", "take not found"),
    ("other footage", "the take was made from footage of 160x120, 8 frames"),
    ("shorter footage", r"the take was made from footage of 160x120, 8 frames .*; short.mp4 is 160x120, 5 frames"),
    ("unreadable rig", "cannot read the character rig rig.fbx"),
    ("unreadable glTF rig", "cannot read the character rig rig.glb"),
    ("missing rig", "character rig not found"),
    ("rig of another kind", r"a character rig is a \.fbx, \.blend, \.glb, \.gltf file, got .*rig\.obj"),
    ("frames outside", "--frames must lie within the footage's 0:8"),
    ("no OpenGL", "eevee needs OpenGL.*--engine workbench or --engine cycles"),
    ("no OpenGL for Workbench", r"workbench needs OpenGL.*--engine cycles \(CPU\)"),
    ("unreadable footage", "Blender cannot read the footage garbage.mp4"),
])
def test_bad_input_fails_in_one_line_and_writes_nothing(talk, tmp_path, case, match):
    import re

    clip, take_path, source = talk
    out = tmp_path / "out.mp4"
    args = ["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--engine", "workbench", "--samples",
            "1"]
    env, form = None, "python--"
    if case == "missing footage":
        args[1] = str(tmp_path / "nowhere.mp4")
    elif case == "missing take":
        args[3] = str(tmp_path / "nowhere.take.npz")
    elif case == "shorter footage":  # the same size and rate, three frames fewer
        args[1] = str(footage.write_video(tmp_path / "short.mp4", source[:5], fps=Fraction(30000, 1001)))
    elif case in ("unreadable glTF rig", "missing rig", "rig of another kind"):
        name = {"unreadable glTF rig": "rig.glb", "missing rig": "none.fbx", "rig of another kind": "rig.obj"}[case]
        rig = tmp_path / name
        if case != "missing rig":
            rig.write_bytes(b"glTF\x02\x00\x00\x00 truncated" if rig.suffix == ".glb" else b"o cube\n")
        args += ["--overlay", "character", "--character", str(rig)]
    elif case == "unknown overlay":
        args += ["--overlay", "mask,bogus"]
    elif case == "other footage":
        args[1] = str(footage.carphone())  # the uncropped clip: 176x144, 120 frames
        form = "cli"
    elif case == "unreadable rig":
        rig = tmp_path / "rig.fbx"
        rig.write_text("not an fbx file\n")
        args += ["--overlay", "character", "--character", str(rig)]
    elif case == "frames outside":
        args += ["--frames", "4:12"]
    elif case == "unreadable footage":
        args[1] = str(tmp_path / "garbage.mp4")
        Path(args[1]).write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video at all" * 40)
    elif case == "no OpenGL for Workbench":
        env = {"__EGL_VENDOR_LIBRARY_FILENAMES": str(tmp_path / "none.json")}
    else:  # no EGL vendor driver: Blender itself would abort here
        args[args.index("workbench")] = "eevee"
        env = {"__EGL_VENDOR_LIBRARY_FILENAMES": str(tmp_path / "none.json")}
    done = run(args, form=form, env=env)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("rigcast: error:")]
    assert len(errors) == 1 and re.search(match, errors[0]), done.stderr[-2000:]
    assert [p.name for p in tmp_path.glob("*.mp4") if p.name not in ("short.mp4", "garbage.mp4")] == [], \
        "a failed render left a video"
    assert not list(tmp_path.glob(".*partial*")), "a failed render left its hidden video behind"


def test_a_render_killed_mid_way_leaves_nothing_under_the_output_name(talk, tmp_path):
    """SIGKILL (no cleanup can run) after the second frame: the output name stays free, the half-written video lies
    under its hidden name, and the next render to that output removes it as its process is gone."""
    import signal

    clip, take_path, _ = talk
    out = tmp_path / "out.mp4"
    args = ["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--overlay", "skeleton", "--engine",
            "cycles", "--samples", "64"]
    render = subprocess.Popen([sys.executable, str(SCRIPT), "--", *args], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True, cwd=REPO)
    try:
        for line in render.stdout:
            if line.startswith("rigcast render: frame 2/8"):
                render.send_signal(signal.SIGKILL)
                break
        assert render.wait(timeout=RENDER_TIMEOUT_S) == -signal.SIGKILL, "the render ended before it was killed"
    finally:
        render.kill()
        render.stdout.close()
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [f".out.partial-{render.pid}.mp4"]
    rendered(run(args[:-4] + ["--engine", "workbench", "--samples", "1", "--frames", "0:2"]))
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"] and len(decode(out)[0]) == 2


# --------------------------------------------------------------------------- without Blender


def test_rigcast_render_picks_blender_then_bpy_and_otherwise_says_how():
    from rigcast.cli import render_command

    args = ["--footage", "a.mp4", "--take", "a.take.npz", "-o", "b.mp4"]
    command = render_command(args, "/opt/blender/blender", True)
    assert command[:6] == ["/opt/blender/blender", "-b", "--python-exit-code", "1", "--python", str(SCRIPT)]
    assert command[6:] == ["--", *args]
    assert render_command(args, None, True) == [sys.executable, "-m", "rigcast_blender.render", "--", *args]
    with pytest.raises(Exception, match=r"needs Blender: pass --blender PATH .*`pip install \"rigcast\[blender\]\"`"):
        render_command(args, None, False)


FAKE_BLENDER = """#!/bin/sh
printf '%s\\n' "$@" > "$(dirname "$0")/argv.txt"
exit 3
"""


def test_rigcast_render_runs_the_blender_on_path_and_passes_its_exit_status_on(tmp_path):
    """``rigcast render ARGS`` with a ``blender`` on PATH (a stand-in recording its arguments, exiting 3): that binary
    runs headless/render.py after Blender's own options, gets ARGS after ``--``, and its status is rigcast's."""
    source, take = tmp_path / "in.mp4", tmp_path / "in.take.npz"
    source.write_bytes(b"0")
    take.write_bytes(b"0")
    fake = tmp_path / "bin" / "blender"
    fake.parent.mkdir()
    fake.write_text(FAKE_BLENDER)
    fake.chmod(0o755)
    args = ["--footage", str(source), "--take", str(take), "-o", str(tmp_path / "out.mp4"), "--engine", "workbench"]
    done = subprocess.run([sys.executable, "-m", "rigcast.cli", "render", *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}"),
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 3, done.stderr[-2000:]
    argv = (fake.parent / "argv.txt").read_text().splitlines()
    assert argv == ["-b", "--python-exit-code", "1", "--python", str(SCRIPT), "--", *args]


@pytest.mark.parametrize("args, result", [
    (["--engine", "cycles"], {"engine": "cycles", "samples": DEFAULT_SAMPLES["cycles"]}),
    (["--overlay", "mask, skeleton", "--samples", "2"], {"overlays": ("mask", "skeleton"), "samples": 2}),
    (["--resolution", "640x360", "--frames", "10:"], {"resolution": (640, 360), "frames": (10, None)}),
    (["--overlay", "mask,cape"], InputError("--overlay takes .* got cape")),
    (["--resolution", "641x360"], InputError("positive and even")),
    (["--frames", "5:5"], InputError("must end after it starts")),
    (["--samples", "0"], InputError("at least 1")),
    (["--engine", "vray"], InputError("invalid choice: 'vray'")),
    (["--overlay", "mask", "--character", "x.fbx"], InputError("character overlay is not in --overlay")),
])
def test_arguments_are_checked_before_blender_starts(tmp_path, args, result):
    source, take = tmp_path / "in.mp4", tmp_path / "in.take.npz"
    source.write_bytes(b"0")
    take.write_bytes(b"0")
    base = ["--footage", str(source), "--take", str(take), "-o", str(tmp_path / "out.mp4")]
    if isinstance(result, Exception):
        with pytest.raises(InputError, match=str(result)):
            parse(base + args)
    else:
        options = parse(base + args)
        for key, value in result.items():
            assert getattr(options, key) == value


def test_resolution_and_frame_spans_parse():
    assert parse_resolution("source") is None and parse_resolution("320X180") == (320, 180)
    assert parse_frames("") is None and parse_frames(":8") == (None, 8)


def test_capsules_are_closed_outward_and_of_the_right_volume():
    import trimesh

    vertices, faces = capsule([0, 0, 0], [0, 0.3, 0.4], 0.05, 0.05, sides=48, rings=16)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    exact = np.pi * 0.05 ** 2 * 0.5 + 4 / 3 * np.pi * 0.05 ** 3
    assert mesh.volume == pytest.approx(exact, rel=0.02)  # positive: faces point outwards
    rig = default_rig()
    vertices, faces, bone = bone_capsules(rig.head_xyz, rig.tail_xyz)
    assert set(bone) == set(range(rig.num_bones))
    for b in range(rig.num_bones):  # every capsule surrounds its own bone's midpoint
        mid = 0.5 * (rig.head_xyz[b] + rig.tail_xyz[b])
        assert np.linalg.norm(vertices[bone == b].mean(axis=0) - mid) < 0.02


def test_the_mannequin_asset_is_current_deterministic_and_fits_the_armature(tmp_path):
    """Regenerating gives the shipped asset (integers and names exactly, floats within 1e-6: the generator rounds to
    1e-5 m, so the bytes match too unless another CPU lands on a rounding edge) and the same bytes twice here."""
    for out in ("a", "b"):
        done = subprocess.run([sys.executable, str(REPO / "tools" / "make_mannequin.py"), "--out", str(tmp_path / out)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    for name in ("mannequin.npz", "mannequin.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    shipped = REPO / "assets" / "mannequin"
    with np.load(tmp_path / "a" / "mannequin.npz") as new, np.load(shipped / "mannequin.npz") as old:
        assert sorted(new.files) == sorted(old.files)
        for name in new.files:
            a, b = new[name], old[name]
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert np.allclose(a, b, rtol=0, atol=1e-6) if a.dtype.kind == "f" else np.array_equal(a, b), \
                f"{name} differs: rerun tools/make_mannequin.py"
    new_json, old_json = (json.loads((d / "mannequin.json").read_text()) for d in (tmp_path / "a", shipped))
    assert {**new_json, "files": None} == {**old_json, "files": None}
    mannequin = Mannequin.load()
    rig = default_rig(1.6)
    assert mannequin.bone_names == tuple(rig.bone_names)
    vertices = mannequin.vertices_for_height(1.6)
    assert vertices[:, 2].max() == pytest.approx(1.6, abs=0.03) and vertices[:, 2].min() > -0.03
    for b in range(rig.num_bones):  # the bone's middle lies inside its own parts' bounds
        part = vertices[mannequin.bone == b]
        if not len(part):  # the clavicles ("shoulder") carry no geometry of their own
            assert rig.bone_names[b].startswith("shoulder."), rig.bone_names[b]
            continue
        mid = 0.5 * (rig.head_xyz[b] + rig.tail_xyz[b])
        assert np.all(part.min(axis=0) < mid) and np.all(mid < part.max(axis=0)), rig.bone_names[b]


def test_the_mannequin_without_its_head_keeps_every_other_part_whole():
    mannequin = Mannequin.load()
    head = mannequin.bone_names.index("head")
    headless = mannequin.without_bones(("head",))
    kept = mannequin.bone != head
    assert head not in headless.bone and headless.bone_names == mannequin.bone_names
    np.testing.assert_array_equal(headless.vertices, mannequin.vertices[kept])
    np.testing.assert_array_equal(headless.bone, mannequin.bone[kept])
    # Every face not touching the head survives, on the same vertices.
    whole = mannequin.faces[np.all(kept[mannequin.faces], axis=1)]
    np.testing.assert_array_equal(headless.vertices[headless.faces], mannequin.vertices[whole])
    assert 0 < len(mannequin.faces) - len(headless.faces) < 0.1 * len(mannequin.faces)
    with pytest.raises(InputError, match="no bones .*'tail'"):
        mannequin.without_bones(("tail",))


def test_skeleton_and_mannequin_are_skinned_to_their_bones(talk):
    """In-process scene building (no render): each skeleton capsule and mannequin part moves with its own pose bone,
    as Blender evaluates it after the armature modifier; the wire face mesh style is a wireframe modifier; the
    mannequin of a person whose face is drawn has no head."""
    import bpy
    from rigcast_blender import importer

    clip, take_path, _ = talk
    bpy.ops.wm.read_factory_settings(use_empty=True)
    importer.load_take(bpy.context, take_path, options=importer.ImportOptions(
        skeleton=True, character=importer.MANNEQUIN, face_mesh_style="wire", footage_path=str(clip)))
    scene = bpy.context.scene
    arm = bpy.data.objects["talk_body0"]
    assert [m.type for m in bpy.data.objects["talk_face0_mesh"].modifiers] == ['WIREFRAME']
    assert scene.view_settings.view_transform == 'Standard'
    # Capsules take their track's colour (the OpenCV overlay's), linear in Blender.
    want = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
            for c in track_rgb(arm["rigcast_track_id"])]
    assert list(bpy.data.objects["talk_body0_skeleton"].active_material.diffuse_color)[:3] == pytest.approx(want)
    for frame in (scene.frame_start, scene.frame_end):
        scene.frame_set(frame)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        for name, within in (("talk_body0_skeleton", 0.02), ("talk_body0_mannequin", 0.12)):
            obj = bpy.data.objects[name]
            mesh = obj.evaluated_get(depsgraph).to_mesh()
            xyz = np.empty(len(mesh.vertices) * 3)
            mesh.vertices.foreach_get("co", xyz)
            world = np.asarray(obj.matrix_world) @ np.c_[xyz.reshape(-1, 3), np.ones(len(mesh.vertices))].T
            owner = np.array([obj.vertex_groups[v.groups[0].group].name for v in obj.data.vertices])
            obj.evaluated_get(depsgraph).to_mesh_clear()
            # The face carries a mask and a face mesh: the mannequin's head, which would hide them, is left out.
            assert ("head" in owner) == name.endswith("skeleton"), name
            for pb in arm.pose.bones:
                part = world[:3, owner == pb.name].T
                if not len(part):
                    continue
                mid = np.asarray(arm.matrix_world @ ((pb.head + pb.tail) / 2))
                assert np.linalg.norm(part.mean(axis=0) - mid) < within, (name, pb.name, frame)


def test_a_person_seen_from_the_chest_up_gets_the_characters_head_on_their_head(talk):
    """The demo's seated man (carphone, hips below the frame: the pose model guesses them): the body is anchored on
    its shoulders and sized by their width, so the mannequin's head (its head bone's middle, projected through the
    scene camera) lies within 8 % of the frame height of the Take's 2D head (the ears' midpoint) on every frame
    (measured 2-3 %).  Sized and placed by the guessed legs and pelvis it was 37-39 % of the frame height low, at
    his chin."""
    import bpy
    from bpy_extras.object_utils import world_to_camera_view
    from rigcast_blender import importer

    clip, take_path, _ = talk
    bpy.ops.wm.read_factory_settings(use_empty=True)
    importer.load_take(bpy.context, take_path, options=importer.ImportOptions(
        faces=False, character=importer.MANNEQUIN, footage_path=str(clip)))
    scene, take = bpy.context.scene, Take.load(take_path)
    track = max(take.tracks, key=lambda t: t.num_frames)
    arm = bpy.data.objects[f"talk_body{track.track_id}"]
    assert arm["rigcast_anchor"] == "shoulders" and 1.4 <= arm["rigcast_height_m"] <= 2.0
    size = np.array([take.video.width, take.video.height])
    errors = []
    for k, frame in enumerate(track.frame_index):
        scene.frame_set(int(frame) + 1)
        head = arm.pose.bones["head"]
        ndc = world_to_camera_view(scene, scene.camera, arm.matrix_world @ ((head.head + head.tail) / 2))
        got = np.array([ndc.x, 1.0 - ndc.y]) * size
        want = track.xy[k, EARS].mean(axis=0)
        errors.append(np.linalg.norm(got - want) / take.video.height)
    assert max(errors) <= 0.08, f"head off by {np.round(errors, 3)} of the frame height"


def hidden_frames(track) -> np.ndarray:
    """(T,) bool: the frames of ``track`` on which it is hidden (mean joint confidence under 0.5)."""
    return np.nanmean(track.conf, axis=1) < 0.5


def followed_through_occlusion(take: Take, seed: int = 0) -> Take:
    """The crossing Take with its partly hidden walker's track continued over every frame he is hidden, as a tracker
    following him through the occlusion would give it: on those frames his joints are junk (the walker in front's,
    scattered by 10 % of the frame, in 2D and 3D) at low confidence (0.05-0.3)."""
    rng = np.random.default_rng(seed)
    hidden, front = sorted(take.tracks, key=lambda t: hidden_frames(t).sum(), reverse=True)
    seen = ~hidden_frames(hidden)  # what a tracker that lost him lists; then his hidden frames are filled with junk
    hidden = dataclasses.replace(hidden, contact=None, **{name: getattr(hidden, name)[seen] for name in
                                                          ("frame_index", "conf", "xy", "xyz", "root_xyz")})
    frames = np.union1d(hidden.frame_index, front.frame_index)
    own = np.isin(frames, hidden.frame_index)
    in_front = np.searchsorted(front.frame_index, frames[~own])
    j = hidden.skeleton.num_joints
    fields = {}
    for name, junk_scale in (("xy", 0.1 * take.video.height), ("xyz", 0.15), ("root_xyz", 0.3)):
        mine, theirs = getattr(hidden, name), getattr(front, name)[in_front]
        out = np.empty((len(frames),) + mine.shape[1:], np.float32)
        out[own] = mine
        out[~own] = theirs + rng.normal(0, junk_scale, theirs.shape)
        fields[name] = out
    conf = np.empty((len(frames), j), np.float32)
    conf[own] = hidden.conf
    conf[~own] = rng.uniform(0.05, 0.3, (int((~own).sum()), j))
    followed = dataclasses.replace(hidden, frame_index=frames, conf=conf, contact=None, **fields)
    return dataclasses.replace(take, tracks=tuple(followed if t is hidden else t for t in take.tracks))


def test_a_walker_followed_through_an_occlusion_keeps_his_character(walkers, tmp_path):
    """A person hidden behind another and followed through (his track goes on over the hidden frames with junk
    joints at low confidence) keeps his character on him: on the frames he is seen, its projected hip lies within
    5 % of the frame height of his 2D hip, as without the hidden frames.  The junk once set his floor, his foot
    contact and his scale: his character was 0.055-0.088 of the frame height off his hip on every frame."""
    clip, take_path = walkers
    take = Take.load(take_path)
    assert any(hidden_frames(t).any() for t in take.tracks), "the second walker should be hidden on some frames"
    followed = followed_through_occlusion(take)
    followed.save(tmp_path / "followed.take.npz")
    out, blend = tmp_path / "followed.mp4", tmp_path / "followed.blend"
    rendered(run(["--footage", str(clip), "--take", str(tmp_path / "followed.take.npz"), "-o", str(out),
                  "--overlay", "character", "--engine", "workbench", "--samples", "1", "--resolution", "160x90",
                  "--save-blend", str(blend)]))
    hidden = max(followed.tracks, key=lambda t: hidden_frames(t).sum())
    got = projected_hips(blend, [f"followed_body{hidden.track_id}"])[f"followed_body{hidden.track_id}"]
    want = 0.5 * (hidden.xy[:, HIP[0]] + hidden.xy[:, HIP[1]]) / [take.video.width, take.video.height]
    seen = np.all(np.isfinite(want), axis=1) & ~hidden_frames(hidden)
    error = np.linalg.norm((got[hidden.frame_index] - want) * [16 / 9, 1], axis=1)[seen]
    assert seen.sum() >= 4 and error.max() <= 0.05, \
        f"the followed walker's character is off his hip by {np.round(error, 3)} of the frame height"
