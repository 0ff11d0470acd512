"""tools/convert_models.py's rewrite of MediaPipe's custom ops, without TensorFlow: the NumPy transcriptions
of MediaPipe's kernels on hand-checked cases, and the ONNX rewrite against them on a graph built the way
tf2onnx passes the ops through (its custom domain, the flexbuffer options as attributes).  The embedded
attention model itself is compared with MediaPipe's FaceMesh in test_face_models.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import convert_models as cm  # noqa: E402

EYE_ATTRS = dict(left_rotation_idx=0, right_rotation_idx=1, output_height=16, output_width=16, scale_x=1.5,
                 scale_y=1.5, subset_idxs=[0, 1, 2, 3, 4, 5], target_rotation_radians=0.0)


def test_transform_matrix_of_an_axis_aligned_box():
    """Points spanning [10, 20] x [30, 40], rotation points level: the 16 x 16 crop is that box grown 1.5x
    about its centre, so crop (0, 0) → (7.5, 27.5), (8, 8) → the centre (15, 35), (16, 16) → (22.5, 42.5)."""
    landmarks = np.array([[[10, 35, 0], [20, 35, 0], [10, 30, 0], [20, 40, 0], [15, 30, 0], [15, 40, 0]]], float)
    m = cm.reference_landmarks_to_transform_matrix(landmarks, EYE_ATTRS)[0]
    for crop, image in (((0, 0), (7.5, 27.5)), ((8, 8), (15, 35)), ((16, 16), (22.5, 42.5))):
        np.testing.assert_allclose(m[:2, :2] @ crop + m[:2, 3], image, atol=1e-12)
    np.testing.assert_array_equal(m[2:], [[0, 0, 1, 0], [0, 0, 0, 1]])


def test_bilinear_crop_reads_pixels_and_zeros_outside():
    """A translation by whole pixels (after the half-pixel correction) reads the feature map's own values;
    sample points outside [0, W - 1] read zero, those inside are interpolated."""
    rng = np.random.default_rng(0)
    feature = rng.normal(size=(1, 48, 48, 8))
    shift = np.eye(4)
    shift[:2, 3] = [5, 7]
    crop = cm.reference_transform_tensor_bilinear(feature, shift[None], 16, 16)
    np.testing.assert_allclose(crop[0], feature[0, 7:23, 5:21])
    shift[:2, 3] = [40.5, 7]  # columns 40.5 .. 55.5: 40.5 .. 46.5 inside, the rest outside
    crop = cm.reference_transform_tensor_bilinear(feature, shift[None], 16, 16)
    np.testing.assert_allclose(crop[0, :, 0], 0.5 * (feature[0, 7:23, 40] + feature[0, 7:23, 41]))
    assert np.all(crop[0, :, 7:] == 0)


def _passed_through_graph(target_rotation: float) -> tuple[bytes, list[dict]]:
    """Two Landmarks2TransformMatrix ops on one mesh (subsets of different lengths, so the batch is padded),
    each feeding a TransformTensorBilinear of one feature map, and a TransformLandmarks, as tf2onnx emits
    them (its custom domain, the options as attributes)."""
    from onnx import TensorProto, helper

    attrs = [dict(EYE_ATTRS, target_rotation_radians=target_rotation, subset_idxs=list(range(2, 40))),
             dict(EYE_ATTRS, left_rotation_idx=40, right_rotation_idx=41, scale_x=1.2, subset_idxs=list(range(42, 50)))]
    domain = cm.TF2ONNX_CUSTOM_DOMAIN
    nodes = [helper.make_node("TFL_Landmarks2TransformMatrix", ["landmarks"], [f"matrix{k}"], domain=domain, **a)
             for k, a in enumerate(attrs)]
    nodes += [helper.make_node("TFL_TransformTensorBilinear", ["feature", f"matrix{k}"], [f"crop{k}"], domain=domain,
                               output_height=16, output_width=16) for k in range(2)]
    nodes.append(helper.make_node("TFL_TransformLandmarks", ["points", "matrix0"], ["moved"], domain=domain))
    outputs = [("matrix0", [1, 4, 4]), ("matrix1", [1, 4, 4]), ("crop0", [1, 16, 16, 32]), ("crop1", [1, 16, 16, 32]),
               ("moved", [1, 71, 2])]
    graph = helper.make_graph(
        nodes, "mediapipe_ops",
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, [1, 60, 3]),
         helper.make_tensor_value_info("feature", TensorProto.FLOAT, [1, 48, 48, 32]),
         helper.make_tensor_value_info("points", TensorProto.FLOAT, [1, 71, 2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in outputs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", cm.OPSET), helper.make_opsetid(domain, 1)])
    return model.SerializeToString(), attrs


@pytest.mark.parametrize("target_rotation", [0.0, 0.7])
def test_rewritten_ops_compute_mediapipes_kernels(target_rotation):
    """The standard-op rewrite (ops on one input batched together) matches the transcriptions, on rotated
    crops partly outside the feature map."""
    data, attrs = _passed_through_graph(target_rotation)
    model = onnx.load_from_string(data)
    assert cm.replace_mediapipe_ops(model) == {"Landmarks2TransformMatrix": 2, "TransformTensorBilinear": 2,
                                               "TransformLandmarks": 1}
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert sum(n.op_type == "Gather" for n in model.graph.node) == 2 + 3, "one batch per kind of op"
    rng = np.random.default_rng(1)
    centre = np.array([30.0, 20.0])  # near the right edge: part of the grown crops falls outside the 48 x 48 map
    xy = centre + rng.normal(scale=8.0, size=(60, 2))
    xy[1] = xy[0] + [10.0, 4.0]  # the rotation points: a tilted eye
    xy[41] = xy[40] + [6.0, -5.0]
    feeds = {"landmarks": np.concatenate([xy, rng.normal(size=(60, 1))], axis=1)[None].astype(np.float32),
             "feature": rng.normal(size=(1, 48, 48, 32)).astype(np.float32),
             "points": rng.uniform(0, 16, size=(1, 71, 2)).astype(np.float32)}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip(["matrix0", "matrix1", "crop0", "crop1", "moved"],
                   session.run(["matrix0", "matrix1", "crop0", "crop1", "moved"], feeds)))
    for k in range(2):
        matrix = got[f"matrix{k}"]
        np.testing.assert_allclose(matrix, cm.reference_landmarks_to_transform_matrix(feeds["landmarks"], attrs[k]),
                                   atol=1e-4)
        expected_crop = cm.reference_transform_tensor_bilinear(feeds["feature"], matrix, 16, 16)
        assert np.any(expected_crop == 0) and np.any(expected_crop != 0), "the premise: a crop partly outside"
        np.testing.assert_allclose(got[f"crop{k}"], expected_crop, atol=1e-4)
    np.testing.assert_allclose(got["moved"], cm.reference_transform_landmarks(feeds["points"], got["matrix0"]),
                               atol=1e-4)


def _two_headed_model(side: int = 8) -> onnx.ModelProto:
    """A pose-landmark-shaped graph: an NHWC (1, side, side, 3) image, a shared convolution, a landmark head
    (1, 4) and a segmentation head (1, side, side, 1) of its own convolution, sigmoid and transpose."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    consts = {"w_trunk": rng.normal(size=(4, 3, 3, 3)), "w_mask": rng.normal(size=(1, 4, 1, 1)),
              "shape_lm": np.array([1, 4], dtype=np.int64)}
    nodes = [helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("Conv", ["nchw", "w_trunk"], ["trunk"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["trunk"], ["pooled"]),
             helper.make_node("Reshape", ["pooled", "shape_lm"], ["landmarks"]),
             helper.make_node("Conv", ["trunk", "w_mask"], ["mask_logits"]),
             helper.make_node("Sigmoid", ["mask_logits"], ["mask_nchw"]),
             helper.make_node("Transpose", ["mask_nchw"], ["mask"], perm=[0, 2, 3, 1])]
    graph = helper.make_graph(
        nodes, "two_heads", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, side, side, 3])],
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, [1, 4]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, side, side, 1])],
        [numpy_helper.from_array(v.astype(np.int64 if v.dtype == np.int64 else np.float32), k)
         for k, v in consts.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_dropping_the_segmentation_mask_keeps_the_other_outputs_exact():
    model = _two_headed_model()
    image = np.random.default_rng(1).random((1, 8, 8, 3), dtype=np.float32)
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"image": image})

    assert cm.drop_segmentation_mask(model) == 3  # the mask's convolution, sigmoid and transpose
    assert [o.name for o in model.graph.output] == ["landmarks"]
    assert {n.op_type for n in model.graph.node} == {"Transpose", "Conv", "GlobalAveragePool", "Reshape"}
    assert sorted(t.name for t in model.graph.initializer) == ["shape_lm", "w_trunk"]
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"image": image})
    np.testing.assert_array_equal(after[0], before[0])
    assert cm.drop_segmentation_mask(model) == 0  # idempotent, as --rewrite-only needs


def test_shipped_pose_landmark_models_have_no_segmentation_mask():
    from rigcast.model_store import manifest, models_dir

    for name in ("pose_landmark_lite", "pose_landmark_full", "pose_landmark_heavy"):
        entry = manifest()["models"][name]
        assert "drop_segmentation_mask" in entry["graph_passes"]
        outputs = onnx.load(str(models_dir() / entry["file"])).graph.output
        dims = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in outputs]
        assert dims == [[1, 195], [1, 1], [1, 64, 64, 39], [1, 117]], name  # landmarks, flag, heatmap, world
