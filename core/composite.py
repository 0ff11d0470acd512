"""What a headless composite renders: its arguments, parsed and checked without Blender.

``headless/render.py`` (through ``rigcast_blender.render``) and ``rigcast render``
parse the same arguments here, so a bad option fails in one line before
Blender starts.  Blender's own arguments come first on its command line; ours
follow ``--``::

    blender -b --python-exit-code 1 --python headless/render.py -- --footage IN.mp4 --take T -o OUT.mp4
    python headless/render.py -- --footage IN.mp4 --take T -o OUT.mp4
    python headless/render.py --footage IN.mp4 --take T -o OUT.mp4
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .errors import InputError

OVERLAYS = ("mask", "facemesh", "skeleton", "character")
ENGINES = ("eevee", "workbench", "cycles")
DEFAULT_SAMPLES = {"eevee": 4, "workbench": 8, "cycles": 16}
"""Few samples by default: EEVEE on a CPU (Mesa's software OpenGL) costs about 1 s per sample per small frame."""
OUTPUT_SUFFIXES = (".mp4",)


class _Parser(argparse.ArgumentParser):
    """argparse that raises InputError (one line, exit status 2 upstream) instead of printing usage and exiting."""

    def error(self, message: str):
        raise InputError(f"render: {message}")


def build_parser(prog: str = "headless/render.py") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Render a Take's overlays over its footage to an H.264 MP4 with Blender.")
    p.add_argument("--footage", required=True, help="the footage the Take was made from")
    p.add_argument("--take", required=True, help="the Take (.take.npz)")
    p.add_argument("-o", "--output", required=True, help="video to write (.mp4, H.264, the source's audio)")
    p.add_argument("--overlay", default=",".join(OVERLAYS),
                   help=f"comma-separated overlays: {', '.join(OVERLAYS)} (default all)")
    p.add_argument("--character", default="",
                   help="character rig (.fbx, .blend, .glb) for the character overlay; default rigcast's mannequin")
    p.add_argument("--map", default="auto", help="bone map of --character: a preset, auto or a .json file")
    p.add_argument("--engine", choices=ENGINES, default="eevee", help="render engine (default eevee)")
    p.add_argument("--samples", type=int, help="samples per pixel (default: eevee 4, workbench 8, cycles 16)")
    p.add_argument("--resolution", default="source", help="WxH or source (default); same aspect as the footage")
    p.add_argument("--frames", default="", help="S:E source frames, end exclusive (default the Take's frames)")
    p.add_argument("--facemesh-style", choices=("shaded", "wire"), default="shaded",
                   help="face mesh drawing (default shaded)")
    p.add_argument("--png-dir", default="", help="also write every frame as a PNG into this folder")
    p.add_argument("--save-blend", default="", help="also save the prepared scene as this .blend")
    return p


@dataclass(frozen=True)
class CompositeOptions:
    """A checked render request.  ``resolution`` None: the footage's own size; ``frames`` None: the Take's."""

    footage: Path
    take: Path
    output: Path
    overlays: tuple[str, ...]
    character: str
    bone_map: str
    engine: str
    samples: int
    resolution: tuple[int, int] | None
    frames: tuple[int | None, int | None] | None
    facemesh_style: str
    png_dir: Path | None
    save_blend: Path | None


def script_args(argv: list[str]) -> list[str]:
    """The script's own arguments: everything after the first ``--`` when there is one, else all but argv[0]."""
    return argv[argv.index("--") + 1:] if "--" in argv else argv[1:]


def parse_resolution(text: str) -> tuple[int, int] | None:
    if text == "source":
        return None
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--resolution must be WxH (e.g. 640x360) or source, got {text!r}") from None
    if w <= 0 or h <= 0 or w % 2 or h % 2:
        raise InputError(f"--resolution must be positive and even for H.264, got {w}x{h}")
    return w, h


def parse_frames(text: str) -> tuple[int | None, int | None] | None:
    if not text:
        return None
    try:
        start, end = text.split(":")
        span = (int(start) if start else None, int(end) if end else None)
    except ValueError:
        raise InputError(f"--frames must be S:E (source frames, end exclusive), got {text!r}") from None
    if span[0] is not None and span[1] is not None and span[1] <= span[0]:
        raise InputError(f"--frames must end after it starts, got {text!r}")
    return span


def parse(args: list[str]) -> CompositeOptions:
    """Check the script's arguments (after ``--``); raises InputError with one line on anything wrong."""
    ns = build_parser().parse_args(args)
    overlays = tuple(x.strip() for x in ns.overlay.split(",") if x.strip())
    unknown = sorted(set(overlays) - set(OVERLAYS))
    if unknown or not overlays:
        raise InputError(f"--overlay takes a comma-separated list of {', '.join(OVERLAYS)}; "
                         f"got {', '.join(unknown) or 'nothing'}")
    if ns.samples is not None and ns.samples < 1:
        raise InputError(f"--samples must be at least 1, got {ns.samples}")
    output = Path(ns.output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"expected an output ending in {', '.join(OUTPUT_SUFFIXES)}, got {output}")
    footage, take = Path(ns.footage), Path(ns.take)
    if not footage.is_file():
        raise InputError(f"footage not found: {footage}")
    if not take.is_file():
        raise InputError(f"take not found: {take}")
    if output.resolve() == footage.resolve():
        raise InputError(f"expected an output path other than the footage, got {output} for both")
    if ns.character and "character" not in overlays:
        raise InputError("--character is given but the character overlay is not in --overlay")
    return CompositeOptions(footage=footage, take=take, output=output, overlays=overlays, character=ns.character,
                            bone_map=ns.map, engine=ns.engine, samples=ns.samples or DEFAULT_SAMPLES[ns.engine],
                            resolution=parse_resolution(ns.resolution), frames=parse_frames(ns.frames),
                            facemesh_style=ns.facemesh_style, png_dir=Path(ns.png_dir) if ns.png_dir else None,
                            save_blend=Path(ns.save_blend) if ns.save_blend else None)


def check_footage(video, width: int, height: int, frame_count: int, fps: float, footage: Path) -> None:
    """Raise InputError unless the footage (as Blender reads it) is what the Take's ``video`` (VideoInfo) describes.

    Blender estimates a movie's frame count from its duration, so one frame of
    difference is accepted.
    """
    want = f"{video.width}x{video.height}, {video.frame_count} frames at {float(video.fps):.3f} fps"
    found = f"{width}x{height}, {frame_count} frames at {fps:.3f} fps"
    if ((width, height) != (video.width, video.height) or abs(frame_count - video.frame_count) > 1
            or abs(fps / float(video.fps) - 1.0) > 1e-3):
        raise InputError(f"the take was made from footage of {want}; {footage.name} is {found}")


def frame_span(options: CompositeOptions, frame_indices, frame_count: int) -> tuple[int, int]:
    """Source frames [start, end) to render: ``--frames``, else the Take's first to last analysed frame."""
    if options.frames is None:
        if not len(frame_indices):
            raise InputError("the take has no analysed frames to render")
        return int(frame_indices[0]), int(frame_indices[-1]) + 1
    start = 0 if options.frames[0] is None else options.frames[0]
    end = frame_count if options.frames[1] is None else options.frames[1]
    if not 0 <= start < end <= frame_count:
        raise InputError(f"--frames must lie within the footage's 0:{frame_count}, got {start}:{end}")
    return start, end


def render_size(options: CompositeOptions, width: int, height: int) -> tuple[int, int]:
    """The output size: ``--resolution`` when its aspect matches the footage's (within 1 %), else the footage's."""
    if options.resolution is None:
        if width % 2 or height % 2:
            raise InputError(f"H.264 needs an even width and height, the footage is {width}x{height}: pass "
                             "--resolution WxH")
        return width, height
    w, h = options.resolution
    if abs(Fraction(w, h) / Fraction(width, height) - 1) > Fraction(1, 100):
        raise InputError(f"--resolution must keep the footage's aspect {width}x{height}, got {w}x{h}")
    return w, h
