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


def _imported_modules(path: Path) -> set[str]:
    """Absolute ``rigcast.*`` names of the modules a core file imports (relative imports resolved)."""
    import ast

    package = ["rigcast", *path.relative_to(ROOT / "core").parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {module} | {f"{module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_only_the_entry_point_imports_the_cli():
    # Imports run one way: the CLI sits on top, and no lower layer reaches back up into it.
    importers = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py")
                       if "rigcast.cli" in _imported_modules(p) and p.name != "__main__.py")
    assert importers == []


def test_a_missing_reference_fails_the_suite_unless_opted_out(tmp_path):
    """Tests that need MediaPipe or bpy fail where it is missing (hidden here), and skip, saying why, only
    with RIGCAST_SKIP_REFERENCE=1 / RIGCAST_SKIP_BLENDER=1."""
    import os

    (tmp_path / "conftest.py").write_text("import sys\nsys.modules['mediapipe'] = sys.modules['bpy'] = None\n")
    (tmp_path / "test_needs.py").write_text("from required import require\n\n"
                                           "def test_reference():\n    require('mediapipe')\n\n"
                                           "def test_blender():\n    require('bpy')\n")

    def run(**env):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RIGCAST_SKIP_")} | env
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--rootdir",
                               str(tmp_path), "-c", os.devnull, str(tmp_path)], capture_output=True, text=True,
                              env=env | {"PYTHONPATH": str(ROOT / "tests")}, cwd=tmp_path)

    failed = run()
    assert failed.returncode == 1 and "2 failed" in failed.stdout, failed.stdout
    assert "set RIGCAST_SKIP_REFERENCE=1" in failed.stdout and "set RIGCAST_SKIP_BLENDER=1" in failed.stdout
    skipped = run(RIGCAST_SKIP_REFERENCE="1", RIGCAST_SKIP_BLENDER="1")
    assert skipped.returncode == 0 and "2 skipped" in skipped.stdout, skipped.stdout
    assert "skipped because RIGCAST_SKIP_REFERENCE=1" in skipped.stdout
    half = run(RIGCAST_SKIP_BLENDER="1")
    assert half.returncode == 1 and "1 failed, 1 skipped" in half.stdout, half.stdout
