"""build_addon.py: the extension zips are sound and reproducible; the linux-x64 one works in a Blender without rigcast.

The install test runs real bpy 5.0.1 in a Python that has bpy and numpy and nothing else (a bare venv beside
the test's: `import rigcast`, onnxruntime and PyAV fail there), with a fresh Blender user folder.  Wheels come
from the registry once and are then reused from ``~/.cache/rigcast-wheels``; only an unreachable registry (with
an empty cache) skips, and says so.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from required import require

import footage

ROOT = Path(__file__).resolve().parent.parent
SESSION = Path(__file__).resolve().parent / "extension_session.py"
PLATFORM = "linux-x64"


def _load_build_addon():
    spec = importlib.util.spec_from_file_location("build_addon", ROOT / "build_addon.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_addon"] = module
    spec.loader.exec_module(module)
    return module


build_addon = _load_build_addon()


def _registry_reachable(tmp: Path) -> bool:
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                           "-d", str(tmp), "threadpoolctl==3.8.0"], capture_output=True, timeout=120)
    return done.returncode == 0


def build_or_skip(out: Path, platform: str = PLATFORM) -> Path:
    try:
        return build_addon.build(platform, out)
    except build_addon.BuildError as e:
        if str(e).startswith("pip download") and not _registry_reachable(out / "probe"):
            pytest.skip(f"the package registry is unreachable and ~/.cache/rigcast-wheels lacks the wheels: {e}")
        raise


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return build_or_skip(tmp_path_factory.mktemp("dist"))


# --------------------------------------------------------------------------- the zip


def test_core_imports_itself_only_relatively():
    """Vendored as ``<add-on>.vendor.rigcast``, core must never name ``rigcast`` absolutely: that would load (or
    miss) another copy at the top level, where two add-ons clash."""
    import re

    absolute = re.compile(r"^\s*(from\s+rigcast(\.|\s)|import\s+rigcast\b)", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "core").rglob("*.py") if absolute.search(p.read_text())]
    assert offenders == []


def test_the_zip_passes_its_check_and_blenders_own_validation(built):
    assert build_addon.check(built) == []
    done = subprocess.run([sys.executable, str(ROOT / "build_addon.py"), "--check", str(built)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"{built.name}: ok", done.stdout + done.stderr

    done = _blenders_validation(built)
    assert done.returncode == 0 and "Success" in done.stdout, done.stdout + done.stderr


def _blenders_validation(path: Path) -> subprocess.CompletedProcess:
    require("bpy")
    import addon_utils

    tool = Path(addon_utils.__file__).resolve().parent.parent / "addons_core/bl_pkg/cli/blender_ext.py"
    return subprocess.run([sys.executable, str(tool), "validate", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("platform", ["windows-x64", "macos-arm64", "macos-x64"])
def test_the_other_platforms_zips_build_and_pass_both_checks(platform, tmp_path):
    """Built here like Linux's (their wheels fetched once into the cache): each zip names its platform, carries
    its locked wheels, built for it, and passes --check and Blender's own validation."""
    path = build_or_skip(tmp_path, platform)
    assert path.name.endswith(f"-{platform}.zip") and build_addon.check(path) == []
    with zipfile.ZipFile(path) as zf:
        manifest = tomllib.loads(zf.read("rigcast/blender_manifest.toml").decode())
    lock = json.loads((ROOT / "tools/addon_wheels.lock.json").read_text())["platforms"][platform]
    assert manifest["platforms"] == [platform]
    assert manifest["wheels"] == [f"./wheels/{w['file']}" for w in lock]
    done = _blenders_validation(path)
    assert done.returncode == 0 and "Success" in done.stdout, done.stdout + done.stderr
    print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB")


def test_check_rejects_wheels_built_for_another_platform(built, tmp_path):
    """Linux wheels in a zip whose manifest says Windows: each binary wheel is named, the pure ones pass."""
    with zipfile.ZipFile(built) as zf:
        items = [build_addon.Member(i.filename, zf.read(i.filename)) for i in zf.infolist()]
    wheels = [m.name.removeprefix("rigcast/wheels/") for m in items if m.name.endswith(".whl")]
    manifest = build_addon.manifest_text("windows-x64", wheels).encode()
    doctored = tmp_path / "mislabelled.zip"
    build_addon.write_zip(doctored, [build_addon.Member(m.name, manifest) if m.name == "rigcast/blender_manifest.toml"
                                     else m for m in items])
    problems = build_addon.check(doctored)
    binary = sorted(w for w in wheels if not w.endswith("-none-any.whl"))
    tags = {w: sorted(w.removesuffix(".whl").split("-")[-1].split(".")) for w in binary}
    assert len(binary) == 4
    assert problems == [f"wheel wheels/{w} is not built for windows-x64 (platform tags {tags[w]})" for w in binary]


def test_the_manifest_and_members(built):
    with zipfile.ZipFile(built) as zf:
        names = zf.namelist()
        manifest = tomllib.loads(zf.read("rigcast/blender_manifest.toml").decode())
        infos = zf.infolist()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert built.name == f"rigcast-{pyproject['project']['version']}-{PLATFORM}.zip"
    assert (manifest["id"], manifest["version"], manifest["blender_version_min"], manifest["platforms"]) == (
        "rigcast", pyproject["project"]["version"], "4.2.0", [PLATFORM])
    assert manifest["license"] == ["SPDX:Apache-2.0"]
    assert set(manifest["permissions"]) == {"files"}  # no network
    lock = json.loads((ROOT / "tools/addon_wheels.lock.json").read_text())["platforms"][PLATFORM]
    assert manifest["wheels"] == [f"./wheels/{w['file']}" for w in lock]
    assert {w["name"] for w in lock} == {"onnxruntime", "av", "opencv-python-headless", "scipy", "rich",
                                          "threadpoolctl"}  # numpy is Blender's; headless OpenCV, not the full one
    assert names == sorted(names) and all(n.startswith("rigcast/") for n in names)
    assert {(i.date_time, i.external_attr >> 16) for i in infos} == {((1980, 1, 1, 0, 0, 0), 0o100644)}
    # the add-on, its vendored core and every embedded asset, and nothing that is not shipped
    for src, dst in ((ROOT / "blender_addon", "rigcast"), (ROOT / "core", "rigcast/vendor/rigcast"),
                     (ROOT / "assets", "rigcast/vendor/rigcast/assets")):
        for path in src.rglob("*.py"):
            if "__pycache__" not in path.parts:
                assert f"{dst}/{path.relative_to(src).as_posix()}" in names, path
    for path in (ROOT / "assets/models").iterdir():
        assert f"rigcast/vendor/rigcast/assets/models/{path.name}" in names
    # every module ships its bytecode for Blender's Python, and nothing else is byte code
    modules = [n for n in names if n.endswith(".py")]
    assert sorted(n for n in names if n.endswith(".pyc")) == sorted(build_addon.pyc_name(n) for n in modules)
    assert not [n for n in names if n.endswith(".pyc") and ".cpython-311." not in n]


def test_the_shipped_bytecode_is_what_python_compiles_and_loads_without_writing(built, tmp_path):
    """Python 3.11 (Blender's) imports a module of the unpacked zip from its shipped checked-hash .pyc: same code
    as compiling the source, and no cache written.  A source edited after the build fails --check."""
    import marshal

    with zipfile.ZipFile(built) as zf:
        zf.extractall(tmp_path / "unpacked")
    source = tmp_path / "unpacked/rigcast/vendor/rigcast/frames.py"
    pyc = source.parent / "__pycache__" / "frames.cpython-311.pyc"
    shipped = pyc.read_bytes()
    assert marshal.loads(shipped[16:]).co_code == compile(source.read_bytes(), str(source), "exec").co_code
    probe = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('probe', sys.argv[1]); "
             "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
             "print(module.__spec__.cached, module.__cached__)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = sorted(p.name for p in pyc.parent.iterdir())
    done = subprocess.run([sys.executable, "-c", probe, str(source)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert pyc.read_bytes() == shipped and sorted(p.name for p in pyc.parent.iterdir()) == before
    # The same import with the source changed: Python notices (and here rewrites the cache), so must --check.
    source.write_text(source.read_text() + "\n# edited\n")
    subprocess.run([sys.executable, "-c", probe, str(source)], capture_output=True, text=True, env=env, check=True)
    assert pyc.read_bytes() != shipped
    edited = tmp_path / "edited.zip"
    with zipfile.ZipFile(built) as zf:
        items = [build_addon.Member(m.filename, zf.read(m.filename)) for m in zf.infolist()]
    build_addon.write_zip(edited, [build_addon.Member(m.name, m.data + b"\n# edited\n")
                                   if m.name == "rigcast/vendor/rigcast/frames.py" else m for m in items])
    problems = build_addon.check(edited)
    assert problems == ["bytecode rigcast/vendor/rigcast/__pycache__/frames.cpython-311.pyc is not a checked-hash "
                        "cache of its source for cpython-311"]


def test_two_builds_give_identical_bytes(built, tmp_path, capsys):
    """The second build through the command line (the wheels now cached), which prints the zip's size."""
    assert build_addon.main(["--platform", PLATFORM, "-o", str(tmp_path)]) == 0
    again = tmp_path / built.name
    assert capsys.readouterr().out == f"{again}  {again.stat().st_size / 1e6:.1f} MB\n"
    assert again.read_bytes() == built.read_bytes()


def _appended(built: Path, tmp_path: Path, name: str) -> Path:
    doctored = tmp_path / f"doctored-{len(list(tmp_path.iterdir()))}.zip"
    shutil.copyfile(built, doctored)
    with zipfile.ZipFile(doctored, "a") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"payload")
    return doctored


@pytest.mark.parametrize("name, problem", [
    ("rigcast/../../escaped.py", "member 'rigcast/../../escaped.py' is a '..' component"),
    ("/etc/rigcast.py", "member '/etc/rigcast.py' is an absolute path"),
    ("C:/rigcast.py", "member 'C:/rigcast.py' is an absolute path"),
    ("other_addon/__init__.py", "member 'other_addon/__init__.py' is outside the add-on folder rigcast/"),
    ("rigcast/wheels/extra-1.0-py3-none-any.whl", "manifest wheels"),
])
def test_check_rejects_a_doctored_member(built, tmp_path, name, problem):
    problems = build_addon.check(_appended(built, tmp_path, name))
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_check_rejects_a_manifest_asking_for_the_network(built, tmp_path):
    with zipfile.ZipFile(built) as zf:
        items = [build_addon.Member(i.filename, zf.read(i.filename)) for i in zf.infolist()]
    doctored = tmp_path / "online.zip"
    build_addon.write_zip(doctored, [
        build_addon.Member(m.name, m.data + b'network = "Download models"\n')
        if m.name == "rigcast/blender_manifest.toml" else m for m in items])
    assert build_addon.check(doctored) == ["manifest asks for network access; rigcast never uses the network"]


def test_check_rejects_a_model_with_the_wrong_hash(built, tmp_path):
    wrong = "rigcast/vendor/rigcast/assets/models/face_detection_short_range.onnx"
    items = [build_addon.Member(m.name, m.read()[:-1] + b"\0") if m.name == wrong else m
             for m in build_addon.members(PLATFORM)]
    doctored = tmp_path / "wrong-hash.zip"
    build_addon.write_zip(doctored, items)
    problems = build_addon.check(doctored)
    assert len(problems) == 1 and problems[0].startswith(f"model {wrong} has sha256"), problems
    done = subprocess.run([sys.executable, str(ROOT / "build_addon.py"), "--check", str(doctored)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "has sha256" in done.stderr


def test_the_build_refuses_a_model_that_does_not_match_its_manifest(tmp_path, monkeypatch):
    assets = tmp_path / "assets"
    shutil.copytree(ROOT / "assets", assets)
    model = assets / "models" / "iris_landmark.onnx"
    model.write_bytes(model.read_bytes() + b"\0")
    monkeypatch.setattr(build_addon, "ASSETS_SRC", assets)
    with pytest.raises(build_addon.BuildError, match=r"iris_landmark.onnx has sha256 [0-9a-f]{64}, the manifest"):
        build_addon.verified_assets()


# --------------------------------------------------------------------------- installed in a Blender without rigcast


@pytest.fixture(scope="module")
def bare_blender_python(tmp_path_factory) -> Path:
    """A Python 3.11 venv holding only bpy and numpy (linked from this one): Blender's Python, as shipped."""
    bpy_spec = importlib.util.find_spec("bpy")
    if bpy_spec is None:
        pytest.fail("bpy is not installed in the test environment (pip install -e '.[blender]')")
    site = Path(bpy_spec.origin).resolve().parent.parent
    venv = tmp_path_factory.mktemp("bare-blender") / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    target = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for name in ("bpy", "numpy", "numpy.libs"):
        if (site / name).exists():
            (target / name).symlink_to(site / name, target_is_directory=True)
    return venv / "bin" / "python"


# Loaded by every Python the session starts (Blender's stand-in and the analysis it runs, which inherits
# PYTHONPATH): an audit hook that logs each attempt to reach the network, one line per event, to $RIGCAST_NET_LOG.
NET_WATCH = """
import os, socket, sys

def _watch(event, args):
    if event == "socket.connect" and args[0].family not in (socket.AF_INET, socket.AF_INET6):
        return  # local sockets (AF_UNIX pipes between processes) are not the network
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"):
        with open(os.environ["RIGCAST_NET_LOG"], "a") as log:
            log.write(f"{os.getpid()} {event} {args[1] if event == 'socket.connect' else args[0]!r}\\n")

if os.environ.get("RIGCAST_NET_LOG"):
    sys.addaudithook(_watch)
"""


def session_env(out: Path) -> dict[str, str]:
    """The session's environment: a fresh Blender user folder and home, nothing of this venv, the network watch."""
    # Blender writes bytecode beside the modules it imports unless told not to: so must this stand-in.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE")}
    watch = out / "net-watch"
    watch.mkdir(exist_ok=True)
    (watch / "sitecustomize.py").write_text(NET_WATCH)
    (out / "home").mkdir(exist_ok=True)
    env.update(BLENDER_USER_RESOURCES=str(out / "blender-user"), HOME=str(out / "home"), PYTHONPATH=str(watch),
               RIGCAST_NET_LOG=str(out / "net.log"))
    return env


@pytest.fixture(scope="module")
def session(built, bare_blender_python, tmp_path_factory) -> tuple[dict, Path]:
    from rigcast.video import open_footage

    out = tmp_path_factory.mktemp("session")
    with open_footage(footage.carphone(), end="6f") as clip:
        clip_path = footage.write_video(out / "short.mp4", [f.rgb for f in clip], fps=clip.info.fps)
    done = subprocess.run([str(bare_blender_python), str(SESSION), str(built), str(clip_path), str(out)],
                          capture_output=True, text=True, env=session_env(out), timeout=480, cwd=out)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT ")), out


def test_the_extension_installs_and_runs_in_a_blender_without_rigcast(session):
    result, out = session
    assert result["importable_before"] == {m: False for m in ("rigcast", "onnxruntime", "av", "cv2", "scipy")}
    assert result["install"] == ["FINISHED"] and result["enabled"]
    # Blender unpacked the shipped bytecode; enabling (importing every module) wrote nothing into the install folder
    assert "vendor/rigcast/formats/__pycache__/take.cpython-311.pyc" in result["shipped_pycache"]
    assert "__pycache__/__init__.cpython-311.pyc" in result["shipped_pycache"]
    assert result["install_dir_new_after_enable"] == []
    # core is the vendored copy, reached relatively: no top-level rigcast or core to clash with another add-on
    assert result["core_module"] == "bl_ext.user_default.rigcast.vendor.rigcast"
    assert not result["top_level_rigcast_loaded"]
    assert result["panels"] == ["RIGCAST_PT_analyse", "RIGCAST_PT_export", "RIGCAST_PT_retarget", "RIGCAST_PT_take"]
    for op in ("analyse", "apply", "fbx", "bvh"):
        assert result[op] == ["FINISHED"], (op, result)


def test_background_analysis_runs_with_blenders_python_and_the_bundled_wheels(session):
    result, _ = session
    assert result["runner"] == "starting rigcast (Blender's Python)"
    argv = result["analysis_argv"]
    assert argv[1:3] == ["-m", "rigcast"] and argv[argv.index("--model") + 1] == "lite"
    assert result["analysis_status"].startswith("analysed short.mp4"), result["analysis_status"]
    # the take went to the extension's user folder, not beside the footage nor into the install folder
    take_path = Path(result["take_path"])
    assert take_path.parent == Path(result["extension_user_dir"]) / "takes"
    assert result["install_dir_new_files"] == []  # after analysis, import, apply and exports: bytecode neither
    assert result["armatures_after_import"] == ["short_body0"]
    assert result["import_take"] == ["FINISHED"]
    assert result["armatures_after_import_take"] == ["short_body0", "short_body0.001"]
    # one action per import (the analysis's, Import Take's) and Apply's
    assert [a for a in result["actions"] if a.startswith("short_track0")] == [
        "short_track0", "short_track0.001", "short_track0.002"]
    print(f"background analysis of 6 frames from the installed extension: {result['analysis_s']} s")
    assert not take_path.exists()  # uninstalling removed the extension's user folder with it


def test_the_exports_read_back(session):
    """The BVH through rigcast's reader, the FBX through Blender's importer: six frames of moving bones."""
    import numpy as np
    from rigcast.formats.bvh import read_bvh

    _, out = session
    clip = read_bvh(out / "take.bvh")
    assert clip.num_frames == 6 and clip.num_joints >= 19
    rotations = clip.local_rotations()
    assert np.ptp(rotations, axis=0).max() > 1e-3  # the pose changes over the clip

    bpy = require("bpy")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.import_scene.fbx(filepath=str(out / "take.fbx")) == {'FINISHED'}
    (arm,) = [o for o in bpy.data.objects if o.type == 'ARMATURE']
    start, end = arm.animation_data.action.frame_range
    assert round(end - start) + 1 == 6 and len(arm.data.bones) >= 19


def test_disable_and_uninstall_leave_nothing_behind(session):
    result, out = session
    assert result["disabled"] and result["uninstall"] == ["FINISHED"]
    assert (result["left_registered"], result["left_preferences"], result["left_timers"]) == ([], False, False)
    assert result["install_dir_new_after_disable"] == []
    assert result["user_files_after"] == result["user_files_before"]
    assert not (out / "blender-user/extensions/user_default/rigcast").exists()
    leftovers = [p for p in (out / "blender-user/extensions/.local").rglob("*") if p.is_file()]
    assert leftovers == []  # the wheels Blender unpacked are gone too


def test_nothing_reaches_for_the_network_and_nothing_is_written_outside_blenders_user_folder(
        session, bare_blender_python, tmp_path):
    """Installing, enabling, analysing (in Blender's process and the analysis process), importing, exporting and
    uninstalling: no host looked up, no internet socket connected, and nothing written into the home folder
    (the user folder is BLENDER_USER_RESOURCES, back to as it was: see the uninstall test).  The watch itself
    is shown to see a lookup.  It sees Python's sockets only: onnxruntime's native telemetry uploader is kept off
    by the opt-out the analysis starts with, whose absence the device id it would write in the home shows."""
    result, out = session
    assert not (out / "net.log").exists(), (out / "net.log").read_text()
    assert result["analysis_status"].startswith("analysed")  # the analysis process ran under the watch too
    # Blender itself makes (empty) thumbnail folders in the home's .cache; a file there was written by someone:
    # onnxruntime's telemetry device id, were the analysis not started with its opt-out.
    assert [p for p in (out / "home").rglob("*") if p.is_file()] == []

    env = session_env(tmp_path)
    probe = "import socket\ntry:\n    socket.getaddrinfo('localhost', 80)\nexcept OSError:\n    pass\n"
    subprocess.run([str(bare_blender_python), "-c", probe], env=env, check=True, timeout=60)
    assert "socket.getaddrinfo 'localhost'" in (tmp_path / "net.log").read_text()
