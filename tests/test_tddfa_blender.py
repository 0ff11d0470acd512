"""A face model's dense mesh (the Take's FaceMesh) imported into Blender: the mean mesh, one shape key per basis
column, the face's coefficients as their keyed values."""

from __future__ import annotations

import numpy as np
import pytest

from required import require

bpy = require("bpy")

from rigcast.frames import cv_to_blender  # noqa: E402
from test_blender_addon import addon, world_vertices  # noqa: E402,F401  (addon: the fixture)
from test_tddfa import _take_with_mesh  # noqa: E402


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
        np.testing.assert_allclose(world_vertices(mesh_obj), cv_to_blender(expected[row]), atol=2e-5)


@pytest.mark.slow
def test_the_headless_render_draws_the_dense_mesh_where_core_projects_it(tmp_path):
    """``rigcast render --overlay facemesh`` of a 3ddfa Take: the shaded BFM mesh covers the pixels core's overlay
    of the same mesh covers (IoU >= 0.7, as for MediaPipe's mesh in test_render.py)."""
    from fractions import Fraction

    import footage
    from fixtures_images import astronaut
    from rigcast.formats.take import Take
    from rigcast.pipeline.analyze import AnalyzeConfig, analyze
    from tddfa_models import regressor_output_for, tddfa_folder
    from test_overlay import decode
    from test_render import changed, face_mesh_region, rendered, run
    from test_tddfa import ASTRONAUT_FACE, _params, _pose, _rotation

    frames = [np.ascontiguousarray(astronaut())] * 3
    clip = footage.write_video(tmp_path / "astronaut.mp4", frames, fps=Fraction(30))
    params = _params(_pose(5e-4, _rotation(15, -5, 3), [60.0, 72.0, 0.0]), np.zeros(50))
    folder = tddfa_folder(tmp_path / "3ddfa", regressor_output=regressor_output_for(params), faceboxes_hw=(512, 512),
                          boxes_px=[ASTRONAUT_FACE], scores=[0.93])
    take_path = tmp_path / "a.take.npz"
    take = analyze(clip, take_path, AnalyzeConfig(face_source=f"3ddfa:{folder}", bodies=False, device="cpu"))
    assert take.face_mesh is not None and take.faces
    out = tmp_path / "shaded.mp4"
    rendered(run(["--footage", str(clip), "--take", str(take_path), "-o", str(out), "--overlay", "facemesh",
                  "--facemesh-style", "shaded", "--engine", "workbench", "--samples", "1", "--frames", "1:2"]))
    (frame,), _, _ = decode(out)
    region = face_mesh_region(Take.load(take_path), 1)
    drawn = changed(frame, frames[0])
    iou = (region & drawn).sum() / (region | drawn).sum()
    assert region.sum() > 1000 and iou >= 0.7, iou
