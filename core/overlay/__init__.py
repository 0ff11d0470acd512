"""Take → overlay: a mask worn on tracked faces, face meshes, skeletons and head axes drawn on the footage.

    asset = MaskAsset.load()                                   # assets/mask/medical_mask.npz
    xyz = fit_mask(asset, face.rotation[k], face.translation[k], face.xyz[k])   # (V, 3) camera space
    render_overlay("clip.mp4", take, "clip.overlay.mp4", draw=("mask", "axes"), progress=bar)

Importing this package is cheap: OpenCV and PyAV are imported on first draw or encode.
"""

from .mask import DEFAULT_SIGMA_M, MaskAsset, default_mask_path, fit_mask, fit_masks
from .render import LAYERS, MESH_STYLES, X264_PRESETS, FrameDrawer, check_footage, draw_frame, project, render_overlay

__all__ = [
    "DEFAULT_SIGMA_M", "MaskAsset", "default_mask_path", "fit_mask", "fit_masks",
    "LAYERS", "MESH_STYLES", "X264_PRESETS", "FrameDrawer", "check_footage", "draw_frame", "project", "render_overlay",
]
