"""The add-on's one door to rigcast's core.

The packaged extension carries a vendored copy of core in ``vendor/rigcast``
(written by ``build_addon.py``); a development checkout uses the ``rigcast``
installed in Blender's Python.  Whichever is found, the rest of the add-on
imports core only from here::

    from .core_bridge import retarget, take, RigcastError
"""

from __future__ import annotations

import importlib
import importlib.util

if importlib.util.find_spec(f"{__package__}.vendor") is not None:
    from .vendor import rigcast  # noqa: F401  (a broken vendored copy must fail loudly, not fall back)
else:
    try:
        import rigcast
    except ImportError as e:
        raise ImportError("rigcast's core is not importable from Blender's Python: install the packaged "
                          f"extension (which vendors it) or `pip install rigcast` into that Python ({e})") from e


def _core(name: str):
    return importlib.import_module(f"{rigcast.__name__}.{name}")


errors = _core("errors")
frames = _core("frames")
retarget = _core("retarget")
retarget_cli = _core("retarget.cli")
take = _core("formats.take")
bvh = _core("formats.bvh")
amass = _core("formats.amass")
rotations = _core("retarget.rotations")
one_euro = _core("smooth.one_euro")
composite = _core("composite")
model_store = _core("model_store")

RigcastError = errors.RigcastError


def mask_module():
    """``rigcast.overlay.mask`` when this core has it (the mask asset arrived after the add-on), else None."""
    if importlib.util.find_spec(f"{rigcast.__name__}.overlay") is None:
        return None
    return _core("overlay.mask")


def figures_module():
    """``rigcast.overlay.figures``: skeleton capsules and the mannequin character for renders."""
    return _core("overlay.figures")
