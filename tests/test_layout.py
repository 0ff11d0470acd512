"""Project-wide rules that are cheap to check."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_core_imports_no_blender_or_heavy_backends():
    code = ("import sys, rigcast, rigcast.cli, rigcast.formats.take, rigcast.formats.exporters, "
            "rigcast.pipeline.analyze, rigcast.runners, rigcast.model_store\n"
            "bad = [m for m in ('bpy', 'mathutils', 'bmesh', 'torch', 'tensorrt') if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"core imported {out}"


def test_every_core_package_is_packaged():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"rigcast"} | {"rigcast." + p.parent.name for p in (ROOT / "core").glob("*/__init__.py")}
    assert found - listed == set(), "packages missing from pyproject.toml"


def test_cli_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "rigcast", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("rigcast ")
