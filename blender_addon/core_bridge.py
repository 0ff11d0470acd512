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


_MODULES = {
    "errors": "errors", "frames": "frames", "retarget": "retarget", "retarget_cli": "retarget.cli",
    "take": "formats.take", "bvh": "formats.bvh", "amass": "formats.amass", "rotations": "retarget.rotations",
    "one_euro": "smooth.one_euro", "composite": "composite", "model_store": "model_store",
}
"""The core modules this door opens, by the name the add-on uses.  Each is imported on first use (PEP 562
``__getattr__``), not here: a headless render of masks loads neither SciPy (through ``formats.bvh``) nor the
runners (through ``model_store``), which would add about 0.3 s to its start-up."""


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _core(_MODULES[name])
    globals()[name] = module
    return module


RigcastError = _core("errors").RigcastError


def mask_module():
    """``rigcast.overlay.mask`` when this core has it (the mask asset arrived after the add-on), else None."""
    if importlib.util.find_spec(f"{rigcast.__name__}.overlay") is None:
        return None
    return _core("overlay.mask")


def figures_module():
    """``rigcast.overlay.figures``: skeleton capsules and the mannequin character for renders."""
    return _core("overlay.figures")
