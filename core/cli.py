"""The ``rigcast`` command."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

from . import __version__
from .errors import RigcastError
from .models.face_landmarks import FACE_LANDMARK_MODELS
from .pipeline import DEFAULT_MAX_PEOPLE, FRAMES_IN_FLIGHT, split_face_source, split_person_detector, split_pose_model
from .smooth.kalman import SMOOTHING_LEVELS
from .smooth.one_euro import ONE_EURO_LANDMARKS


def _progress_bar(description: str):
    """A rich progress bar with frames/s and ETA; returns (context manager, callback)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    class FpsColumn(TextColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return super().render(task) if speed is None else f"{speed:5.1f} fps"

    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   FpsColumn(""), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                   transient=False, redirect_stderr=False)
    task = bar.add_task(description, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total if total and total > 0 else None)

    return bar, update


def cmd_analyze(args: argparse.Namespace) -> int:
    from .pipeline.analyze import AnalyzeConfig, analyze

    config = AnalyzeConfig(model=args.model, device=args.device, strict_device=args.strict_device,
                           max_people=args.max_people, person_detector=args.person_detector, pose=args.pose,
                           detect_every=args.detect_every,
                           start=args.start, end=args.end, image_fps=args.fps,
                           fov_deg=args.fov, focal_px=args.focal, redetect_every=args.redetect_every,
                           smooth=not args.no_smooth, smoothing=args.smooth, min_cutoff=args.min_cutoff,
                           beta=args.beta,
                           max_gap=args.max_gap, chunk_frames=args.chunk_frames, bodies=args.bodies, faces=args.faces,
                           max_faces=args.max_faces, face_detector=args.face_detector,
                           face_landmarks=args.face_landmarks, face_frames_in_flight=args.face_frames_in_flight,
                           face_source=args.face,
                           enhance=args.enhance, enhance_tile=args.enhance_tile, enhance_overlap=args.enhance_overlap)
    out = Path(args.output)
    lifter = None
    if args.lift:  # loaded first, so that a bad model file fails before the analysis, not after it
        from .lift.temporal import load_lifter

        kind, _, model_path = args.lift.partition(":")
        if kind != "videopose3d" or not model_path:
            raise RigcastError(f"--lift must be videopose3d:PATH, got {args.lift!r}")
        lifter = load_lifter(model_path, device="cpu" if args.device == "tensorrt" else args.device)
    name = Path(args.input).name
    bar, update = _progress_bar(name if args.enhance is None else f"{name} (enhanced by {Path(args.enhance).name})")
    with bar:
        take = analyze(args.input, out, config, progress=update, restart=args.restart)
    if lifter is not None:
        from .lift.temporal import lift_take

        take = lift_take(take, lifter, model=f"videopose3d:{Path(model_path).name}")
        take.save(out)
        print(f"lifted track(s) {[lf.track_id for lf in take.lifts]} with {Path(model_path).name} (source 'lift')")
    print(f"wrote {out}: {len(take.tracks)} body track(s), {len(take.faces)} face(s) over "
          f"{len(take.frame_indices)} frame(s) "
          f"on {take.meta.get('provider')}")
    return 0


def describe(take) -> str:
    """A readable multi-line summary of a Take."""
    from .face.head_pose import euler_ypr_deg_series

    v = take.video
    k = take.intrinsics
    lines = [
        f"take       schema v{take.schema_version}, rigcast {take.meta.get('rigcast_version', '?')}",
        f"source     {v.source} ({v.kind}, {v.codec or '?'})",
        f"video      {v.width}x{v.height} @ {v.fps} fps ({float(v.fps):.3f}){'  VFR' if v.variable_fps else ''}, "
        f"{len(take.frame_indices)} frame(s) analysed"
        + (f" [{take.frame_indices[0]}..{take.frame_indices[-1]}]" if len(take.frame_indices) else ""),
        f"camera     fx={k.fx:.1f} fy={k.fy:.1f} cx={k.cx:.1f} cy={k.cy:.1f} (hfov {k.hfov_deg:.1f} deg, {k.source})",
        f"models     {take.meta.get('models', {})} on {take.meta.get('provider', '?')}",
        f"tracks     {len(take.tracks)}",
    ]
    enhanced = take.meta.get("enhance")
    if enhanced:
        lines.insert(-1, f"enhanced   x{enhanced['scale']} by {Path(enhanced['path']).name} before analysis "
                         f"(coordinates in the footage's pixels)")
    for t in take.tracks:
        visible = np.isfinite(t.xy[..., 0]) & (t.conf > 0.5)
        root = t.root_xyz[np.isfinite(t.root_xyz).all(axis=1)]
        depth = f"depth {np.median(root[:, 2]):.2f} m" if len(root) else "no root"
        if not t.has_xyz:
            depth = "2D only (no 3D joints or root)"
        lines.append(f"  #{t.track_id:<3} {t.skeleton.name}, {t.num_frames} frames "
                     f"[{t.frame_index[0]}..{t.frame_index[-1]}], {visible.mean():.0%} joints visible, {depth}")
    for lf in take.lifts:
        lines.append(f"  #{lf.track_id:<3} {lf.source!r} lift: {lf.skeleton.name}, {lf.num_frames} frames "
                     f"({lf.model or '?'})")
    from .pipeline.face_sources import describe_face_source

    lines.append(f"faces      {len(take.faces)}" + (f" from {describe_face_source(take.meta)}" if take.faces else ""))
    for f in take.faces:
        ypr = euler_ypr_deg_series(f.rotation)
        ok = np.isfinite(ypr[:, 0])
        body = f"body #{f.body_id}" if f.body_id >= 0 else "no body"
        pose = ("yaw/pitch/roll median " + "/".join(f"{v:+.0f}" for v in np.median(ypr[ok], axis=0))
                + f" deg (range yaw {ypr[ok, 0].min():+.0f}..{ypr[ok, 0].max():+.0f})") if ok.any() else "no pose"
        depth = np.nanmedian(f.translation[:, 2]) if ok.any() else float("nan")
        lines.append(f"  face {f.face_id:<3} {body}, {f.num_frames} frames [{f.frame_index[0]}..{f.frame_index[-1]}], "
                     f"{f.xy.shape[1]} landmarks, {pose}, depth {depth:.2f} m")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from .formats.take import Take

    print(describe(Take.load(args.take)))
    return 0


EXPORT_FORMATS = ("json", "easy-vitpose", "npz")


def cmd_export(args: argparse.Namespace) -> int:
    from .formats.exporters import to_easy_vitpose_json, to_videopose3d_npz, to_vitpose_json
    from .formats.take import Take

    take = Take.load(args.take)
    fmt = args.format or {".json": "json", ".npz": "npz"}.get(Path(args.output).suffix.lower())
    if fmt is None:
        raise RigcastError(f"cannot tell the export format from {args.output!r}; pass --format "
                           f"{'|'.join(EXPORT_FORMATS)}")
    writer = {"json": to_vitpose_json, "easy-vitpose": to_easy_vitpose_json, "npz": to_videopose3d_npz}[fmt]
    out = writer(take, args.output)
    print(f"wrote {out}")
    return 0


def cmd_lift(args: argparse.Namespace) -> int:
    from .formats.take import Take
    from .lift.temporal import lift_take, load_lifter

    take = Take.load(args.take)
    lifter = load_lifter(args.model, causal=args.causal, device=args.device)
    tracks = tuple(args.track) if args.track else None
    lifted = lift_take(take, lifter, source=args.source, layout=args.layout,
                       model=f"videopose3d:{Path(args.model).name}", track_ids=tracks)
    old = {id(lf) for lf in take.lifts}
    done = [lf.track_id for lf in lifted.lifts if id(lf) not in old]
    if not done:
        raise RigcastError(f"no track of {args.take} could be lifted (tracks {[t.track_id for t in take.tracks]})")
    out = lifted.save(args.output)
    print(f"wrote {out}: {args.source!r} lift of track(s) {done} (receptive field {lifter.receptive_field} frames)")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from .models.catalog import embedded_models, format_models, user_models

    detector = args.detector if args.detector and ":" in args.detector else None  # embedded ones are listed anyway
    pose = args.pose if args.pose and ":" in args.pose else None
    face = args.face if args.face and ":" in args.face else None
    infos = user_models(detector, pose, args.lift, device=args.device, face=face)
    if args.embedded:
        infos += embedded_models(device=args.device)
    print(format_models(infos) if infos else "no models (--no-embedded and none of --detector, --pose, --lift, --face)")
    return 0


def cmd_models_build_trt(args: argparse.Namespace) -> int:
    from .runners.tensorrt import build_engine, parse_shape

    shapes = dict(parse_shape(text) for text in args.shape)  # checked before the GPU is looked for
    if not Path(args.model).is_file():
        raise RigcastError(f"ONNX model not found: {args.model}")
    if args.workspace <= 0:
        raise RigcastError(f"--workspace must be positive GiB, got {args.workspace}")
    out = build_engine(args.model, args.output, fp16=args.fp16, shapes=shapes, workspace_gib=args.workspace)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_overlay(args: argparse.Namespace) -> int:
    from .overlay import LAYERS, render_overlay

    draw = tuple(x.strip() for x in args.draw.split(",") if x.strip())
    unknown = sorted(set(draw) - set(LAYERS))
    if unknown:
        raise RigcastError(f"--draw takes a comma-separated list of {', '.join(LAYERS)}; got {', '.join(unknown)}")
    bar, update = _progress_bar(Path(args.input).name)
    with bar:
        out = render_overlay(args.input, args.take, args.output, draw=draw, mesh_style=args.mesh_style, crf=args.crf,
                             preset=args.preset, progress=update)
    print(f"wrote {out}")
    return 0


def cmd_enhance(args: argparse.Namespace) -> int:
    from .enhance import check_paths, enhance_video, open_enhancer

    check_paths(args.input, args.output, args.crf, args.preset)
    enhancer = open_enhancer(args.model, scale=args.scale, tile=args.tile, overlap=args.overlap, device=args.device,
                             strict_device=args.strict_device)
    bar, update = _progress_bar(Path(args.input).name)
    with bar:
        out = enhance_video(args.input, args.output, enhancer, crf=args.crf, preset=args.preset, progress=update)
    print(f"wrote {out}: x{enhancer.scale} on {enhancer.runner.provider}")
    return 0


def render_command(args: list[str], blender: str | None, bpy_available: bool) -> list[str]:
    """The command line that renders a composite: ``blender`` when given, else this Python with bpy.

    A checkout's ``headless/render.py`` runs under the Blender binary; an
    installed rigcast runs ``rigcast_blender.render`` there from where it is
    installed.  Blender takes its own options first and the script's after ``--``.
    """
    import importlib.util

    if blender:
        script = Path(__file__).resolve().parent.parent / "headless" / "render.py"
        if script.is_file():
            run = ["--python", str(script)]
        else:
            spec = importlib.util.find_spec("rigcast_blender")
            site = str(Path(spec.origin).parent.parent) if spec is not None and spec.origin else ""
            run = ["--python-expr", f"import sys; sys.path.insert(0, {site!r}); "
                                    "from rigcast_blender.render import main; sys.exit(main())"]
        return [blender, "-b", "--python-exit-code", "1", *run, "--", *args]
    if bpy_available:
        return [sys.executable, "-m", "rigcast_blender.render", "--", *args]
    raise RigcastError("rigcast render needs Blender: pass --blender PATH or put blender on PATH (4.2+), or install "
                       "Blender as a module here with `pip install \"rigcast[blender]\"` (bpy 5.0.1, Python 3.11)")


def cmd_render(args: argparse.Namespace) -> int:
    import importlib.util
    import shutil
    import subprocess

    from .composite import parse

    parse(args.render_args)  # a bad argument fails here, in one line, before Blender starts
    blender = args.blender or shutil.which("blender")
    if args.blender and not (Path(args.blender).is_file() or shutil.which(args.blender)):
        raise RigcastError(f"--blender must be a Blender executable, got {args.blender} (not found)")
    command = render_command(args.render_args, blender, importlib.util.find_spec("bpy") is not None)
    # A separate process: a Blender without OpenGL aborts instead of raising, and the script owns its bpy session.
    return subprocess.run(command, stdin=subprocess.DEVNULL).returncode


def _checked_by(split):
    """An argparse ``type`` that keeps a value ``split`` accepts and reports its ValueError as the usage error."""
    def check(value: str) -> str:
        try:
            split(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value
    return check


_person_detector = _checked_by(split_person_detector)
_pose_model = _checked_by(split_pose_model)
_face_source = _checked_by(split_face_source)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rigcast", description="Turn footage into animation.")
    p.add_argument("--version", action="version", version=f"rigcast {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="footage → Take with tracked 2D and 3D skeletons")
    a.add_argument("input", help="video file, image folder, glob pattern or single image")
    a.add_argument("-o", "--output", required=True, help="Take file to write (e.g. clip.take.npz)")
    a.add_argument("--model", choices=("lite", "full", "heavy"), default="full", help="BlazePose landmark model")
    a.add_argument("--device", choices=("auto", "cpu", "cuda", "tensorrt"), default="auto",
                   help="execution device; auto prefers TensorRT, then CUDA, then CPU")
    a.add_argument("--strict-device", action="store_true", help="fail instead of falling back when --device is missing")
    a.add_argument("--max-people", type=int, default=DEFAULT_MAX_PEOPLE,
                   help=f"most people followed at once (default {DEFAULT_MAX_PEOPLE}; 1 runs MediaPipe's "
                        "single-person pipeline)")
    a.add_argument("--person-detector", "--detector", dest="person_detector", type=_person_detector,
                   default="auto", metavar="{auto,nanodet,blazepose,yolo:PATH}",
                   help="auto (default): BlazePose's own detector with --max-people 1, NanoDet person boxes "
                        "otherwise; yolo:PATH: your own ultralytics YOLOv5/v8 or end-to-end ONNX export")
    a.add_argument("--pose", type=_pose_model, default="blazepose", metavar="{blazepose,vitpose:PATH,lw3d:PATH}",
                   help="blazepose (default): the embedded 2D + 3D landmark models; vitpose:PATH: your own "
                        "easy_ViTPose ONNX export or .pth checkpoint (torch), 2D keypoints (17 or 25) read in the "
                        "person detector's boxes; "
                        "lw3d:PATH: your own lightweight-human-pose-estimation-3d ONNX export, every person's 19 "
                        "joints in 2D and 3D, no person detector")
    a.add_argument("--detect-every", type=int, default=1,
                   help="with --pose vitpose: frames between person detector runs; in between, each tracked "
                        "person's box is predicted by the tracker (default 1: detect on every frame)")
    a.add_argument("--start", help="first frame: seconds, [hh:]mm:ss(.ms) or <n>f for a frame number")
    a.add_argument("--end", help="end (exclusive), same forms as --start")
    a.add_argument("--fps", type=float, default=30.0, help="frame rate of image sequences (default 30)")
    cam = a.add_mutually_exclusive_group()
    cam.add_argument("--fov", type=float, help="horizontal field of view in degrees (default 60)")
    cam.add_argument("--focal", type=float, help="focal length in pixels")
    a.add_argument("--redetect-every", type=int, default=15, help="frames between detector runs while following")
    a.add_argument("--smooth", choices=tuple(SMOOTHING_LEVELS), default="default",
                   help="how hard to smooth bodies (zero-lag Kalman smoother; default 'default'); off: raw landmarks")
    a.add_argument("--no-smooth", action="store_true", help="skip all smoothing (same as --smooth off)")
    a.add_argument("--min-cutoff", type=float, default=None,
                   help=f"One Euro minimum cutoff in Hz for faces (default {ONE_EURO_LANDMARKS.min_cutoff}); given, "
                        "bodies use that One Euro filter too instead of the zero-lag smoother; lower is smoother")
    a.add_argument("--beta", type=float, default=None,
                   help=f"One Euro speed coefficient, per body height per second (default {ONE_EURO_LANDMARKS.beta}); "
                        "higher lags less on fast moves; given, bodies use One Euro too")
    a.add_argument("--max-gap", type=int, default=5, help="longest gap in frames to fill by interpolation")
    a.add_argument("--bodies", action=argparse.BooleanOptionalAction, default=True,
                   help="track bodies (default on)")
    a.add_argument("--faces", action=argparse.BooleanOptionalAction, default=True,
                   help="track faces: head pose and dense mesh (default on)")
    a.add_argument("--max-faces", type=int, default=8, help="most faces followed at once (default 8)")
    a.add_argument("--face-detector", choices=("auto", "short", "full"), default="auto",
                   help="BlazeFace range: short for near faces, full for small or far ones; auto picks by face size")
    a.add_argument("--face-landmarks", choices=tuple(FACE_LANDMARK_MODELS), default="attention",
                   help="face landmark model: attention (default; MediaPipe's refined 478 points in one model), "
                        "mesh+iris (468-point mesh plus the iris model per eye) or mesh (468 points, no irises)")
    a.add_argument("--face", type=_face_source, default="mediapipe", metavar="{mediapipe,img2pose:FILE,3ddfa:FOLDER}",
                   help="where faces come from: mediapipe (default): the embedded face detector and mesh, 478 "
                        "measured landmarks; img2pose:FILE: your own img2pose ONNX export, a box and 6DoF head pose "
                        "per face (the landmarks are the canonical face placed by that pose); 3ddfa:FOLDER: your own "
                        "3DDFA_V2 exports, a dense BFM mesh per face")
    a.add_argument("--face-frames-in-flight", type=int, choices=FRAMES_IN_FLIGHT, default=2,
                   help="frames whose faces are tracked at once: 2 (default) runs the face model on two frames "
                        "in parallel, each following the ROIs of two frames before; 1 follows the frame before, "
                        "as MediaPipe does")
    a.add_argument("--lift", metavar="videopose3d:PATH",
                   help="also lift every track with a VideoPose3D model (H36M-17 layout, non-causal), stored "
                        "under 'lift' as `rigcast lift` does")
    a.add_argument("--enhance", metavar="SR.onnx",
                   help="upscale every frame with this super-resolution model (as `rigcast enhance`, on the fly: "
                        "no video is written) before analysing it, for small faces and people; the Take stays in "
                        "the footage's pixels")
    a.add_argument("--enhance-tile", type=int, default=256,
                   help="with --enhance: tile side in footage pixels (default 256; a fixed-size model uses its own)")
    a.add_argument("--enhance-overlap", type=int, default=16,
                   help="with --enhance: least overlap between tiles in footage pixels (default 16)")
    a.add_argument("--restart", action="store_true", help="discard a partial analysis instead of resuming it")
    a.add_argument("--chunk-frames", type=int, default=64, help="frames per resumable cache chunk (default 64)")
    a.set_defaults(func=cmd_analyze)

    i = sub.add_parser("info", help="summarise a Take")
    i.add_argument("take")
    i.set_defaults(func=cmd_info)

    e = sub.add_parser("export", help="export a Take to easy_ViTPose JSON or VideoPose3D NPZ")
    e.add_argument("take")
    e.add_argument("--format", choices=EXPORT_FORMATS,
                   help="json: easy_ViTPose's layout plus rigcast's 3D, faces and timing; easy-vitpose: exactly "
                        "easy_ViTPose's --save-json layout (keypoints [y, x, score], its skeleton names); npz: "
                        "VideoPose3D's 2D input.  Default: from the output's extension (.json, .npz)")
    e.add_argument("-o", "--output", required=True)
    e.set_defaults(func=cmd_export)
    lf = sub.add_parser("lift", help="lift a Take's 2D tracks to 3D with VideoPose3D, stored beside the originals",
                        description="Each body track's 2D points, laid out as H36M-17 (or COCO-17), are lifted "
                                    "by VideoPose3D's temporal model and stored in the Take under --source; the "
                                    "tracks' own 2D and 3D are kept.  `rigcast retarget --source lift` uses it.")
    lf.add_argument("take")
    lf.add_argument("--model", required=True,
                    help="VideoPose3D model: a checkpoint with model_pos (.bin; run in numpy), an .onnx export "
                         "or a TorchScript file")
    lf.add_argument("-o", "--output", required=True, help="Take to write (may be the input)")
    lf.add_argument("--layout", choices=("h36m17", "coco17"), default="h36m17",
                    help="2D joint order the model was trained on: h36m17 (CPN, ground truth) or coco17 "
                         "(Detectron COCO); default h36m17")
    lf.add_argument("--causal", action="store_true", help="the model was trained causal (VideoPose3D --causal)")
    lf.add_argument("--source", default="lift", help="name to store the result under (default lift)")
    lf.add_argument("--track", type=int, action="append", help="track id to lift (repeatable; default all)")
    lf.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="for .onnx/TorchScript models")
    lf.set_defaults(func=cmd_lift)

    o = sub.add_parser("overlay", help="draw masks, face meshes, skeletons and head axes over the footage")
    o.add_argument("input", help="the footage the Take was made from")
    o.add_argument("take")
    o.add_argument("-o", "--output", required=True, help="video to write (e.g. out.mp4)")
    o.add_argument("--draw", default="mask,mesh,skeleton,axes",
                   help="comma-separated layers: mask, mesh, skeleton, axes (default all)")
    o.add_argument("--mesh-style", choices=("wire", "shaded"), default="wire", help="face mesh drawing (default wire)")
    o.add_argument("--crf", type=int, default=18, help="x264 quality, lower is better (default 18)")
    o.add_argument("--preset", default="veryfast", help="x264 preset (default veryfast; ultrafast is quickest)")
    o.set_defaults(func=cmd_overlay)

    n = sub.add_parser("enhance", help="upscale footage with a super-resolution model (e.g. ESRGAN x4), in tiles")
    n.add_argument("input", help="the footage to upscale")
    n.add_argument("-o", "--output", required=True, help="video to write (e.g. out.mp4)")
    n.add_argument("--model", required=True, help="super-resolution ONNX model: (1, 3, H, W) RGB in [0, 1] in, "
                                                  "(1, 3, sH, sW) out")
    n.add_argument("--scale", type=int, help="expected upscaling factor, checked against the model (default: the "
                                             "model's)")
    n.add_argument("--tile", type=int, default=256, help="tile side in input pixels (default 256; a fixed-size "
                                                         "model uses its own)")
    n.add_argument("--overlap", type=int, default=16, help="least overlap between tiles in input pixels (default 16)")
    n.add_argument("--device", choices=("auto", "cpu", "cuda", "tensorrt"), default="auto",
                   help="execution device; auto prefers TensorRT, then CUDA, then CPU")
    n.add_argument("--strict-device", action="store_true", help="fail instead of falling back when --device is missing")
    n.add_argument("--crf", type=int, default=18, help="x264 quality, lower is better (default 18)")
    n.add_argument("--preset", default="veryfast", help="x264 preset (default veryfast; ultrafast is quickest)")
    n.set_defaults(func=cmd_enhance)

    r = sub.add_parser("render", help="render overlays over the footage with Blender (EEVEE) to an H.264 MP4",
                       description="Takes headless/render.py's arguments: --footage IN.mp4 --take TAKE -o OUT.mp4 "
                                   "[--overlay mask,facemesh,skeleton,character] [--character RIG] [--map MAP] "
                                   "[--engine eevee|workbench|cycles] [--samples N] [--resolution WxH|source] "
                                   "[--frames S:E] [--png-dir DIR] [--facemesh-style shaded|wire] [--save-blend F]")
    r.add_argument("--blender", help="Blender executable (default: blender on PATH, else bpy in this Python)")
    r.set_defaults(func=cmd_render)

    from .retarget.cli import add_retarget_parser

    add_retarget_parser(sub)

    m = sub.add_parser("models", help="the models an analysis would use: family, file, tensors, what runs them")
    msub = m.add_subparsers(dest="models_command", required=True)
    ml = msub.add_parser("list", help="list the embedded models and your own files, each opened and checked")
    ml.add_argument("--detector", type=_person_detector, metavar="yolo:PATH", help="your own person detector")
    ml.add_argument("--pose", type=_pose_model, metavar="vitpose:PATH|lw3d:PATH", help="your own keypoint model")
    ml.add_argument("--lift", metavar="videopose3d:PATH", help="your own lifting model")
    ml.add_argument("--face", type=_face_source, metavar="img2pose:FILE", help="your own face model")
    ml.add_argument("--device", choices=("auto", "cpu", "cuda", "tensorrt"), default="auto",
                    help="the device to open them on (default auto: TensorRT, then CUDA, then CPU)")
    ml.add_argument("--no-embedded", dest="embedded", action="store_false", help="only your own files")
    ml.set_defaults(func=cmd_models_list)
    mb = msub.add_parser("build-trt", help="build a TensorRT engine from an ONNX model (NVIDIA GPU and tensorrt)")
    mb.add_argument("model", help="the ONNX model")
    mb.add_argument("-o", "--output", required=True, help="the engine file to write (.engine)")
    mb.add_argument("--fp16", action="store_true", help="allow half-precision kernels")
    mb.add_argument("--shape", action="append", default=[], metavar="NAME:DxD...[,OPT,MAX]",
                    help="a dynamic input's shape (repeat per input): one shape fixes it, MIN,OPT,MAX gives a range")
    mb.add_argument("--workspace", type=float, default=4.0, help="builder workspace in GiB (default 4)")
    mb.set_defaults(func=cmd_models_build_trt)
    return p


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning for the CLI: one line, ``rigcast: warning: ...``, without Python's source line."""
    text = " ".join(str(message).split())
    # One write, so that the progress bar's output (the add-on reads both streams as one) cannot split the line.
    (sys.stderr if file is None else file).write(f"rigcast: warning: {text}\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "render":
        args.render_args = extra  # the render script's own arguments, checked by rigcast.composite
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    with warnings.catch_warnings():  # restores the filters and showwarning for callers of main()
        warnings.simplefilter("default")
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except RigcastError as exc:
            print(f"rigcast: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            if args.command == "enhance":
                print("rigcast: interrupted; no output was written", file=sys.stderr)
            else:
                print("rigcast: interrupted; finished frames are kept and the next run resumes", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
