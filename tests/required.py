"""What the suite compares against besides rigcast itself: MediaPipe (the reference implementation) and Blender
(bpy).  A missing one fails the tests that need it, never skips them silently; an explicit variable opts out:

    RIGCAST_SKIP_REFERENCE=1   skip the MediaPipe-reference tests (mediapipe, or its lite/heavy pose models)
    RIGCAST_SKIP_BLENDER=1     skip the tests that run real Blender (bpy)
    RIGCAST_SKIP_TORCH=1       skip the tests that compare against torch (VideoPose3D's own architecture)
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

OPT_OUTS = {
    "mediapipe": ("RIGCAST_SKIP_REFERENCE",
                  "pip install --no-deps mediapipe==0.10.21 (bash tools/dev.sh setup installs it)"),
    "bpy": ("RIGCAST_SKIP_BLENDER", "pip install -e '.[blender]' (bash tools/dev.sh setup installs it)"),
    "torch": ("RIGCAST_SKIP_TORCH", "pip install torch==2.13.0+cpu (bash tools/dev.sh setup installs it)"),
}


def require(module: str) -> ModuleType:
    """Import ``module`` (a key of :data:`OPT_OUTS`); fail the test, or the test module when called at module
    level, if it is missing, unless its opt-out variable is set to 1 (then skip, saying why)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing(module, f"{module} is not importable ({exc})")


def missing(module: str, found: str) -> None:
    """Fail (or, opted out, skip) because something the ``module`` tests need is absent, as ``found`` says."""
    variable, install = OPT_OUTS[module]
    if os.environ.get(variable) == "1":
        pytest.skip(f"{found}; skipped because {variable}=1", allow_module_level=True)
    pytest.fail(f"{found}: install it with {install}, or set {variable}=1 to skip these tests knowingly",
                pytrace=False)
