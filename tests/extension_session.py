"""One Blender session with the packaged extension, run by tests/test_build_addon.py in a Python that has bpy
but not rigcast, onnxruntime or PyAV (Blender's user folder in BLENDER_USER_RESOURCES).

    python extension_session.py ZIP FOOTAGE OUT_DIR

Installs ZIP through Blender's own extension operator, enables it, analyses FOOTAGE in the background (which
imports the Take), imports the Take again with Import Take, applies it to a new rigcast armature, exports FBX and
BVH into OUT_DIR, then disables and uninstalls the extension.  It asserts nothing itself: it prints one
``RESULT {json}`` line of what it saw, for the test to judge (a Python exception exits non-zero with its
traceback).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

import bpy
import addon_utils  # noqa: E402  (on the path once bpy is imported)

PKG = "bl_ext.user_default.rigcast"


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


def importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def main(archive: Path, footage: Path, out: Path) -> dict:
    result: dict = {"importable_before": {m: importable(m) for m in ("rigcast", "onnxruntime", "av", "cv2", "scipy")}}
    user = Path(os.environ["BLENDER_USER_RESOURCES"])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    result["user_files_before"] = files_under(user)

    # Installed first, enabled after: what the zip unpacked is known before any of the add-on's code runs, so
    # whatever appears later in the install folder (bytecode caches included) was written by running it.
    result["install"] = sorted(bpy.ops.extensions.package_install_files(
        filepath=str(archive), repo="user_default", enable_on_install=False))
    install_dir = Path(bpy.utils.user_resource('EXTENSIONS')) / "user_default" / "rigcast"
    shipped = set(files_under(install_dir))
    result["shipped_pycache"] = sorted(f for f in shipped if "__pycache__" in f)
    addon_utils.enable(PKG, default_set=True)
    result["enabled"] = addon_utils.check(PKG)[1]
    result["install_dir_new_after_enable"] = sorted(set(files_under(install_dir)) - shipped)
    bridge = sys.modules[f"{PKG}.core_bridge"]
    result["core_module"] = bridge.rigcast.__name__
    result["top_level_rigcast_loaded"] = "rigcast" in sys.modules or "core" in sys.modules
    result["panels"] = sorted(c.bl_idname for c in sys.modules[PKG].classes if issubclass(c, bpy.types.Panel))

    operators = sys.modules[f"{PKG}.operators"]
    background = sys.modules[f"{PKG}.background"]
    preferences = bpy.context.preferences.addons[PKG].preferences
    preferences.model = 'lite'
    props = bpy.context.scene.rigcast
    props.footage_path = str(footage)
    started = time.monotonic()
    result["analyse"] = sorted(bpy.ops.rigcast.analyse())
    state = bpy.context.window_manager.rigcast_job
    result["runner"] = state.status
    job = background.current()
    result["analysis_argv"] = list(job.process.args) if job is not None else []
    while operators.tick() is not None and time.monotonic() - started < 240:
        time.sleep(0.1)
    result["analysis_s"] = round(time.monotonic() - started, 1)
    result["analysis_status"] = state.status
    result["take_path"] = props.take_path
    result["extension_user_dir"] = bpy.utils.extension_path_user(PKG)
    result["armatures_after_import"] = sorted(o.name for o in bpy.data.objects if o.type == 'ARMATURE')
    # The Import Take operator on its own: a second copy of what the analysis imported
    result["import_take"] = sorted(bpy.ops.rigcast.import_take(filepath=result["take_path"]))
    result["armatures_after_import_take"] = sorted(o.name for o in bpy.data.objects if o.type == 'ARMATURE')

    props.create_armature = True
    result["apply"] = sorted(bpy.ops.rigcast.apply())
    result["actions"] = sorted(a.name for a in bpy.data.actions)
    result["fbx"] = sorted(bpy.ops.rigcast.export_fbx(filepath=str(out / "take.fbx")))
    props.bvh_path = str(out / "take.bvh")
    result["bvh"] = sorted(bpy.ops.rigcast.export_bvh(filepath=str(out / "take.bvh")))
    result["install_dir_new_files"] = sorted(set(files_under(install_dir)) - shipped)

    addon_utils.disable(PKG, default_set=True)
    result["install_dir_new_after_disable"] = sorted(set(files_under(install_dir)) - shipped)
    result["disabled"] = not addon_utils.check(PKG)[1] and not hasattr(bpy.types.Scene, "rigcast")
    result["left_registered"] = sorted(n for n in dir(bpy.types) if n.startswith(("RIGCAST_", "Rigcast")))
    result["left_preferences"] = PKG in bpy.context.preferences.addons
    result["left_timers"] = bpy.app.timers.is_registered(operators.tick)
    repo_index = next(i for i, r in enumerate(bpy.context.preferences.extensions.repos) if r.module == "user_default")
    result["uninstall"] = sorted(bpy.ops.extensions.package_uninstall(repo_index=repo_index, pkg_id="rigcast"))
    result["user_files_after"] = files_under(user)
    return result


if __name__ == "__main__":
    archive, footage, out = (Path(a) for a in sys.argv[1:4])
    print("RESULT " + json.dumps(main(archive, footage, out)), flush=True)
