"""Footage → enhanced footage: a super-resolution model run over every frame in overlapping tiles.

    enhancer = open_enhancer("RealESRGAN_x4plus.onnx")          # scale read from the model
    big = enhancer(rgb)                                          # (H, W, 3) uint8 → (4H, 4W, 3) uint8
    enhance_video("clip.mp4", "clip.x4.mp4", "RealESRGAN_x4plus.onnx", progress=bar)

The model is the user's own file, opened through :func:`rigcast.runners.make_runner`
(device auto / cpu / cuda / tensorrt).  It takes what ESRGAN's and
Real-ESRGAN's ONNX exports take: one input (1, 3, H, W) float32 RGB in [0, 1],
one output (1, 3, sH, sW) of the same kind, H and W dynamic or fixed.  The
scale s is the output's size over the input's (from the shapes, or from one
probe run when the axes are dynamic).

Tiling.  A 720p frame at x4 would need the model's activations for a
5120 x 2880 output at once (gigabytes for ESRGAN), so the frame is cut into
tiles of ``tile`` pixels (a fixed-size model: exactly its size) that
overlap their neighbours by at least ``overlap`` pixels, spread evenly so the
last tile ends at the frame's edge.  Within each overlap the two tiles'
outputs cross-fade linearly across the middle half; the outer quarter by
each tile's edge, where a convolution saw zero padding, is left to the
neighbour.  Weights are normalised to sum to 1 at every output pixel.  Rows of tiles are added into a float band
one tile-row high; rows of the output no later tile touches are rounded to
uint8 as soon as the band moves on, so the float working set is one band, not
the whole upscaled frame.  A frame smaller than a fixed-size model's input is
padded (reflected, or replicated when the frame is too small to reflect) and
the output cropped.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import InputError, ModelError
from .fileio import atomic_path
from .runners import Runner, make_runner

log = logging.getLogger(__name__)

DEFAULT_TILE = 256
DEFAULT_OVERLAP = 16
PROBE_SIZE = 64
"""Side of the zero image run once to read a dynamic model's scale (a multiple of the usual 2/4/8 strides)."""


def tile_starts(length: int, tile: int, overlap: int) -> np.ndarray:
    """(K,) int start positions of tiles of ``tile`` pixels covering [0, length), neighbours overlapping >= ``overlap``.

    The first tile starts at 0, the last ends at ``length``; the rest are
    spread evenly between, so no overlap is much wider than the others.
    ``tile`` must not exceed ``length`` (pad the frame first).
    """
    if tile >= length:
        return np.zeros(1, np.int64)
    count = math.ceil((length - tile) / (tile - overlap)) + 1
    return np.round(np.linspace(0, length - tile, count)).astype(np.int64)


def blend_weights(starts: np.ndarray, tile: int, length: int, scale: int) -> list[np.ndarray]:
    """Per tile, its (tile * scale,) float32 weights along one axis, in output pixels; they sum to 1 everywhere.

    A tile's weight is 0 in the outer quarter of its overlap with a neighbour,
    ramps linearly to 1 across the middle half and is 1 beyond; edges on the
    frame's border keep weight 1.  The 2D weight of a tile is the outer product of its row
    and column weights, which also sums to 1 (the product of two partitions of unity).
    """
    size = tile * scale
    raw = []
    for k, start in enumerate(starts):
        w = np.ones(size, np.float64)
        if k > 0:
            w = np.minimum(w, _ramp(int(starts[k - 1]) + tile - int(start), size, scale))  # overlap with the one before
        if k + 1 < len(starts):
            w = np.minimum(w, _ramp(int(start) + tile - int(starts[k + 1]), size, scale)[::-1])  # and the one after
        raw.append(w)
    total = np.zeros(length * scale, np.float64)
    for start, w in zip(starts, raw):
        total[start * scale:start * scale + size] += w
    return [(w / total[start * scale:start * scale + size]).astype(np.float32) for start, w in zip(starts, raw)]


def _ramp(overlap: int, size: int, scale: int) -> np.ndarray:
    """(size,) weights rising from 0 to 1 across the first ``overlap`` input pixels, less a margin at either end.

    The outer quarter of an overlap is left to the neighbour alone (weight 0):
    a convolutional net sees zero padding there, within its receptive field of
    the tile's edge, and its output is worst.  The middle half is a linear cross-fade.
    """
    u = np.arange(size, dtype=np.float64)
    if overlap <= 0:  # tiles that only touch
        return np.ones(size)
    margin = overlap // 4
    return np.clip((u - margin * scale + 0.5) / ((overlap - 2 * margin) * scale), 0.0, 1.0)


def _pad_to(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """``rgb`` (H, W, 3) grown at the bottom and right to at least (height, width), mirrored or else replicated."""
    import cv2

    h, w = rgb.shape[:2]
    bottom, right = max(height - h, 0), max(width - w, 0)
    if not bottom and not right:
        return rgb
    # BORDER_REFLECT_101 mirrors about the edge pixel, so it needs more pixels than it adds.
    border = cv2.BORDER_REFLECT_101 if bottom < h and right < w else cv2.BORDER_REPLICATE
    return cv2.copyMakeBorder(rgb, 0, bottom, 0, right, border)


class Enhancer:
    """A super-resolution model applied to whole frames, tile by tile; build once, call per frame.

    ``runner`` has one input (1|None, 3|None, H|None, W|None) and one output
    (1, 3, sH, sW), RGB in [0, 1].  ``scale``, when given, must match the
    model's.  ``tile`` and ``overlap`` are in input pixels; a fixed-size model
    sets the tile size itself.
    """

    def __init__(self, runner: Runner, scale: int | None = None, tile: int = DEFAULT_TILE,
                 overlap: int = DEFAULT_OVERLAP):
        if len(runner.inputs) != 1 or len(runner.inputs[0].shape) != 4 or runner.inputs[0].shape[1] not in (3, None):
            found = [(s.name, s.shape) for s in runner.inputs]
            raise ModelError(f"expected a super-resolution model with one input (1, 3, H, W), found inputs {found}")
        self.runner = runner
        self.input = runner.inputs[0]
        self.output_name = runner.outputs[0].name
        self.dtype = np.float16 if self.input.dtype == "float16" else np.float32
        fixed_h, fixed_w = self.input.shape[2], self.input.shape[3]
        self.tile_hw = (fixed_h or tile, fixed_w or tile)
        if overlap < 0 or min(self.tile_hw) <= 2 * overlap:
            raise InputError(f"tile must be larger than twice the overlap (and overlap >= 0), got tile "
                             f"{'x'.join(map(str, self.tile_hw))} and overlap {overlap}")
        self.fixed = (fixed_h is not None, fixed_w is not None)
        if any(self.fixed) and self.tile_hw != (tile, tile):
            log.info("%s takes %dx%d tiles only; tile %d ignored", _name(runner), *self.tile_hw, tile)
        self.overlap = overlap
        self.scale = self._model_scale()
        if scale is not None and scale != self.scale:
            raise ModelError(f"scale {scale} was asked for, but the model {_name(runner)} upscales x{self.scale}")

    def _model_scale(self) -> int:
        """The model's integer upscaling factor, from its shapes or one run on a zero image."""
        out = self.runner.outputs[0].shape
        h, w = (d if d is not None else PROBE_SIZE for d in self.input.shape[2:])
        if len(out) == 4 and all(isinstance(d, int) for d in out[2:]) and all(self.fixed):
            out_shape = out
        else:
            probe = np.zeros((1, 3, h, w), self.dtype)
            out_shape = self.runner({self.input.name: probe})[self.output_name].shape
        if len(out_shape) != 4 or out_shape[1] != 3:
            raise ModelError(f"expected a super-resolution model whose output is (1, 3, s*H, s*W), found "
                             f"{tuple(out_shape)} for an input of (1, 3, {h}, {w})")
        oh, ow = out_shape[2], out_shape[3]
        if oh % h or ow % w or oh // h != ow // w or oh < h:
            raise ModelError(f"expected a super-resolution model whose output is a whole multiple of its input, "
                             f"found output {oh}x{ow} for input {h}x{w}")
        return oh // h

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the enhanced frame of a (width, height) frame."""
        return width * self.scale, height * self.scale

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """The frame ``rgb`` (H, W, 3) uint8 upscaled to (sH, sW, 3) uint8."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError(f"expected an RGB frame (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        s = self.scale
        th = self.tile_hw[0] if self.fixed[0] else min(self.tile_hw[0], h)
        tw = self.tile_hw[1] if self.fixed[1] else min(self.tile_hw[1], w)
        padded = _pad_to(rgb, th, tw)
        ph, pw = padded.shape[:2]
        chw = np.ascontiguousarray(padded.transpose(2, 0, 1)).astype(self.dtype)  # (3, H, W) in [0, 255]
        chw *= self.dtype(1 / 255)
        ys, xs = tile_starts(ph, th, self.overlap), tile_starts(pw, tw, self.overlap)
        wy, wx = blend_weights(ys, th, ph, s), blend_weights(xs, tw, pw, s)

        out = np.empty((ph * s, pw * s, 3), np.uint8)
        band = np.zeros((3, th * s, pw * s), np.float32)  # weighted sums of output rows band_top.., not yet final
        band_top = 0
        for k, (y, wy_k) in enumerate(zip(ys, wy)):
            top = int(y) * s
            if k:  # rows above this tile row are final; the overlap carries over to the top of the band
                done = top - band_top
                _to_uint8(band[:, :done], out[band_top:top])
                carry = band[:, done:].copy()
                band[:, :carry.shape[1]] = carry
                band[:, carry.shape[1]:] = 0.0
                band_top = top
            for x, wx_k in zip(xs, wx):
                tile = chw[None, :, y:y + th, x:x + tw]
                result = self.runner({self.input.name: tile})[self.output_name]
                if result.shape != (1, 3, th * s, tw * s):
                    raise ModelError(f"expected output (1, 3, {th * s}, {tw * s}) for a {th}x{tw} tile, "
                                     f"got {result.shape}")
                tile_out = result[0].astype(np.float32, copy=False)  # (3, th*s, tw*s), the runner's fresh array
                _weigh(tile_out, wy_k, wx_k)
                band[:, :, x * s:(x + tw) * s] += tile_out
        _to_uint8(band, out[band_top:])
        return out[:h * s, :w * s] if (ph, pw) != (h, w) else out


def _unit_span(weights: np.ndarray) -> tuple[int, int]:
    """(lo, hi) such that ``weights[lo:hi]`` are all exactly 1 (lo = hi = len when there is no such middle)."""
    ones = np.flatnonzero(weights == 1.0)
    if len(ones) and np.all(weights[ones[0]:ones[-1] + 1] == 1.0):
        return int(ones[0]), int(ones[-1]) + 1
    return len(weights), len(weights)


def _weigh(tile_chw: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> None:
    """Multiply ``tile_chw`` (3, h, w) in place by the outer product of ``wy`` (h,) and ``wx`` (w,).

    Only the strips by the edges where a weight differs from 1 are touched: the interior is most of a tile.
    """
    lo, hi = _unit_span(wy)
    tile_chw[:, :lo] *= wy[:lo, None]
    tile_chw[:, hi:] *= wy[hi:, None]
    lo, hi = _unit_span(wx)
    tile_chw[:, :, :lo] *= wx[:lo]
    tile_chw[:, :, hi:] *= wx[hi:]


def _to_uint8(chw: np.ndarray, out_hwc: np.ndarray) -> None:
    """Write (3, H, W) float values in [0, 1] (clipped) into ``out_hwc`` (H, W, 3) uint8, rounded half up.

    Works in place on ``chw`` (no band-sized float temporaries); its values are spent afterwards.
    """
    import cv2

    np.multiply(chw, 255.0, out=chw)
    np.add(chw, 0.5, out=chw)
    np.clip(chw, 0.0, 255.0, out=chw)
    planes = chw.astype(np.uint8)  # truncates: floor(v + 0.5)
    # Interleaving the planes is one cv2.merge; numpy's strided transpose copy takes about 30 times as long.
    merged = cv2.merge(list(planes), dst=out_hwc)  # rows of the output frame: contiguous, so written in place
    if merged is not out_hwc and not np.shares_memory(merged, out_hwc):
        out_hwc[...] = merged


def _name(runner: Runner) -> str:
    path = getattr(runner, "path", None)
    return Path(path).name if path is not None else repr(runner)


def open_enhancer(model: str | Path, scale: int | None = None, tile: int = DEFAULT_TILE,
                  overlap: int = DEFAULT_OVERLAP, device: str = "auto", strict_device: bool = False,
                  threads: int = 0) -> Enhancer:
    """An :class:`Enhancer` for the super-resolution model file ``model`` (.onnx, or a TensorRT engine) on
    ``device``.

    ``threads``: onnxruntime's intra-op threads on CPU (0: one per core).
    """
    model = Path(model)
    if not model.is_file():
        raise ModelError(f"super-resolution model not found: {model}")
    # The runner gives models under a few MB one CPU thread (right for the small face models), but a compact SR
    # net of a few hundred kB still does billions of operations per frame: by default use every core.
    runner = make_runner(model, device=device, strict_device=strict_device, threads=threads or os.cpu_count() or 1)
    return Enhancer(runner, scale=scale, tile=tile, overlap=overlap)


def check_paths(source: str | Path, output: str | Path, crf: int = 18, preset: str = "veryfast") -> None:
    """Raise InputError unless ``source`` exists and ``output`` is another video path, crf/preset x264's."""
    from .video.mux import check_output

    check_output(Path(source), Path(output), crf, preset)
    if not Path(source).exists():
        raise InputError(f"footage not found: {source}")


def enhance_video(source: str | Path, output: str | Path, model: str | Path | Enhancer, scale: int | None = None,
                  tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, device: str = "auto",
                  strict_device: bool = False, progress: Callable[[int, int], None] | None = None, crf: int = 18,
                  preset: str = "veryfast") -> Path:
    """Upscale every frame of ``source`` with ``model`` and write H.264 video to ``output``; returns its path.

    Frames keep their timestamps and the source's frame rate; audio is
    copied through (:mod:`rigcast.video.mux`).  The video is written to a
    temporary file beside ``output`` and renamed when complete, so ``output``
    is never half-written.  ``progress(done, total)`` is called after every frame.
    ``model`` is a model file, or an :class:`Enhancer` already built (then
    ``scale``, ``tile``, ``overlap`` and the device arguments are its own).
    """
    import av

    from .video import open_footage
    from .video.mux import reencode, source_timing

    source, output = Path(source), Path(output)
    check_paths(source, output, crf, preset)
    enhancer = model if isinstance(model, Enhancer) else open_enhancer(model, scale, tile, overlap, device,
                                                                       strict_device)
    with open_footage(source) as footage:
        info = footage.info
        size = enhancer.output_size(info.width, info.height)
        log.info("enhancing %dx%d -> %dx%d with %s", info.width, info.height, *size, _name(enhancer.runner))
        timing = source_timing(source, info)
        with atomic_path(output) as tmp, av.open(str(tmp), "w") as container:
            reencode(footage, lambda rgb, _index: enhancer(rgb), container, info.fps, timing, source, info, progress,
                     crf, preset, size=size)
    return output
