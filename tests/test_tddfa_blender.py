"""A face model's dense mesh (the Take's FaceMesh) imported into Blender: the mean mesh, one shape key per basis
column, the face's coefficients as their keyed values."""

from __future__ import annotations

import numpy as np
import pytest

from required import require

bpy = require("bpy")
import addon_utils  # noqa: E402

from rigcast.frames import cv_to_blender  # noqa: E402
from test_blender_addon import MODULE, disable, enable  # noqa: E402
from test_tddfa import _take_with_mesh  # noqa: E402


@pytest.fixture
def addon():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    module = enable()
    yield module
    if addon_utils.check(MODULE)[1]:
        disable()


def _world_vertices(obj) -> np.ndarray:
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    evaluated.to_mesh_clear()
    m = np.array(evaluated.matrix_world)
    return co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3]


def test_a_dense_face_mesh_imports_as_shape_keys_that_follow_the_coefficients(addon, tmp_path):
    take = _take_with_mesh()
    path = take.save(tmp_path / "dense.take.npz")
    assert bpy.ops.rigcast.import_take(filepath=str(path)) == {'FINISHED'}
    mesh_obj = bpy.data.objects["dense_face1_mesh"]
    assert len(mesh_obj.data.vertices) == take.face_mesh.num_vertices
    assert len(mesh_obj.data.shape_keys.key_blocks) == 1 + take.face_mesh.num_coefficients
    face = take.faces[0]
    expected = face.mesh_xyz(take.face_mesh)
    for row, frame in enumerate(face.frame_index):
        bpy.context.scene.frame_set(1 + int(frame))
        np.testing.assert_allclose(_world_vertices(mesh_obj), cv_to_blender(expected[row]), atol=2e-5)
