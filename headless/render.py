"""Render a Take's overlays over its footage to an H.264 MP4 with Blender, headless.

    blender -b --python-exit-code 1 --python headless/render.py -- \\
        --footage IN.mp4 --take TAKE -o OUT.mp4 [--overlay mask,facemesh,skeleton,character] \\
        [--character RIG.fbx|.blend|.glb] [--map PRESET|auto|MAP.json] [--engine eevee|workbench|cycles] \\
        [--samples N] [--resolution WxH|source] [--frames S:E] [--png-dir DIR]
    python headless/render.py -- ARGS        # where pip's bpy is installed
    python headless/render.py ARGS

This file only finds the add-on and rigcast's core and hands the arguments
after ``--`` to ``rigcast_blender.render.main``: the scene building, the
render loop and the errors all live there, shared with the add-on and
``rigcast render``.  Exit status 0 on success, 2 with one line on stderr on
a bad argument or input (``--python-exit-code 1`` makes a real Blender exit
non-zero on anything else too).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _load_addon():
    """``rigcast_blender.render``: installed (pip, or the packaged extension's vendored core), else this checkout's."""
    if importlib.util.find_spec("rigcast") is None and (REPO / "core" / "__init__.py").is_file():
        # A checkout run by a Blender whose Python lacks rigcast: this checkout's core/ is the package rigcast.
        spec = importlib.util.spec_from_file_location("rigcast", REPO / "core" / "__init__.py",
                                                      submodule_search_locations=[str(REPO / "core")])
        module = importlib.util.module_from_spec(spec)
        sys.modules["rigcast"] = module
        spec.loader.exec_module(module)
    if importlib.util.find_spec("rigcast_blender") is not None:
        from rigcast_blender import render
    else:
        sys.path.insert(0, str(REPO))
        from blender_addon import render
    return render


if __name__ == "__main__":
    sys.exit(_load_addon().main(sys.argv))
