#!/usr/bin/env python3
"""Build rigcast's Blender extension: one installable zip per platform.

    python build_addon.py [--platform linux-x64 windows-x64 macos-arm64 macos-x64] [-o dist/]
    python build_addon.py --check dist/rigcast-0.1.0-linux-x64.zip
    python build_addon.py --lock          # re-pin the wheels' files and sha256 (needs the registry)

Each zip holds one folder, ``rigcast/``: the add-on (``blender_addon/``), a
``blender_manifest.toml`` written here, rigcast's core vendored as
``rigcast/vendor/rigcast`` with its models and assets (checked against
``assets/models/manifest.json``), and the third-party wheels that the add-on
and its background analysis import, for that platform and Blender's Python
(3.11 for Blender 4.2-5.0).  Blender ships numpy; it is not bundled again.

Wheels are pinned by file and sha256 in ``tools/addon_wheels.lock.json`` and
fetched with ``pip download --only-binary=:all: --platform ... --require-hashes``
into a cache (``$RIGCAST_WHEEL_CACHE``, default ``~/.cache/rigcast-wheels``);
a cached wheel whose hash matches is never fetched again.

Every module ships with its bytecode, compiled here for Blender's Python
(``__pycache__/NAME.cpython-311.pyc``, hash-checked against its source, PEP
552): Blender would otherwise write those caches into the installed
extension's folder on first import, and the add-on never writes there.  So
the build runs on Python 3.11, as Blender 4.2-5.0 do.

The zip is deterministic: members sorted, timestamps fixed at 1980-01-01,
permissions 0644, fixed compression; the same tree gives the same bytes (the bytecode included: see
``bytecode``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent
ADDON_SRC = ROOT / "blender_addon"
CORE_SRC = ROOT / "core"
ASSETS_SRC = ROOT / "assets"
LOCK = ROOT / "tools" / "addon_wheels.lock.json"
ADDON_ID = "rigcast"
PYTHON_VERSION = "3.11"  # Blender 4.2 to 5.0
PYC_TAG = "cpython-311"  # sys.implementation.cache_tag of Blender's Python
PYC_CHECKED_HASH = 0b11  # PEP 552 flags: hash-based, checked against the source on import
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
SKIP_PARTS = {"__pycache__", ".git", ".pytest_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".blend1"}

# What the add-on (in Blender) and its background analysis (`python -m rigcast analyze`) import beyond numpy and
# the standard library, measured on a real analysis: rich's optional extras (pygments, markdown-it) never load.
PINS = {
    "onnxruntime": "1.32.0",
    "av": "18.1.0",
    "opencv-python-headless": "4.11.0.86",
    "scipy": "1.17.1",
    "rich": "15.0.0",
    "threadpoolctl": "3.8.0",
}
# Where the registry has no wheel of a pin for a platform: onnxruntime's last macOS x86-64 wheel is 1.23.2.
PIN_OVERRIDES = {"macos-x64": {"onnxruntime": "1.23.2"}}

# Blender's platform names -> the wheel platform tags accepted there, preferred first (on macOS the oldest system,
# so a zip runs on as many Macs as its wheels allow).  pip does not widen a --platform to older glibc or macOS
# versions by itself, so each is listed.
PLATFORM_TAGS = {
    "linux-x64": ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "windows-x64": ["win_amd64"],
    "macos-arm64": [f"macosx_{v}_arm64" for v in ("11_0", "12_0", "13_0", "14_0")]
    + [f"macosx_{v}_universal2" for v in ("10_9", "10_13", "10_15", "11_0", "12_0", "13_0", "14_0")],
    "macos-x64": [f"macosx_{v}_x86_64" for v in ("10_9", "10_13", "10_14", "10_15", "11_0", "12_0", "13_0", "14_0")]
    + [f"macosx_{v}_universal2" for v in ("10_9", "10_13", "10_15", "11_0", "12_0", "13_0", "14_0")],
}


class BuildError(Exception):
    """A build or check that cannot go on; printed as one line, exit status 2."""


# --------------------------------------------------------------------------- inputs


def project_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree(src: Path) -> list[Path]:
    """Files under ``src`` worth shipping (no caches, byte code or backups), sorted."""
    return sorted(p for p in src.rglob("*") if p.is_file() and not SKIP_PARTS.intersection(p.relative_to(src).parts)
                  and p.suffix not in SKIP_SUFFIXES)


def pins_for(platform: str) -> dict[str, str]:
    return {**PINS, **PIN_OVERRIDES.get(platform, {})}


def wheel_cache() -> Path:
    return Path(os.environ.get("RIGCAST_WHEEL_CACHE") or Path.home() / ".cache" / "rigcast-wheels")


def read_lock(platform: str) -> list[dict]:
    """The locked wheels of ``platform``: ``[{"name", "version", "file", "sha256"}]``, checked against PINS."""
    if not LOCK.is_file():
        raise BuildError(f"wheel lock not found: {LOCK} (run `python build_addon.py --lock`)")
    lock = json.loads(LOCK.read_text())
    if platform not in lock["platforms"]:
        raise BuildError(f"the wheel lock has no platform {platform!r}; it has {sorted(lock['platforms'])}")
    wheels = lock["platforms"][platform]
    found = {w["name"]: w["version"] for w in wheels}
    if found != pins_for(platform):
        raise BuildError(f"the wheel lock for {platform} pins {found}, build_addon.py expects {pins_for(platform)}; "
                         "run `python build_addon.py --lock`")
    return wheels


def _pip_download(platform: str, requirements: list[str], dest: Path, *, hashes: bool) -> None:
    """``pip download`` of wheels for ``platform`` and Blender's Python into ``dest``."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(requirements) + "\n")
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
            "--only-binary=:all:", "--python-version", PYTHON_VERSION, "--implementation", "cp", "-d", str(dest),
            "-r", f.name]
    for tag in PLATFORM_TAGS[platform]:
        argv += ["--platform", tag]
    if hashes:
        argv.append("--require-hashes")
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    if done.returncode != 0:
        errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")] or done.stderr.splitlines()[-1:]
        raise BuildError(f"pip download of {platform} wheels failed: {' '.join(errors)[:400]}")


def fetch_wheels(platform: str) -> list[Path]:
    """The locked wheels of ``platform`` from the cache, fetched (hash-checked) when missing; returns their paths."""
    wheels = read_lock(platform)
    cache = wheel_cache()
    cache.mkdir(parents=True, exist_ok=True)

    def cached_ok(w: dict) -> bool:
        path = cache / w["file"]
        return path.is_file() and sha256_file(path) == w["sha256"]

    missing = [w for w in wheels if not cached_ok(w)]
    if missing:
        for w in missing:
            (cache / w["file"]).unlink(missing_ok=True)
        _pip_download(platform, [f"{w['name']}=={w['version']} --hash=sha256:{w['sha256']}" for w in missing],
                      cache, hashes=True)
        still = [w["file"] for w in missing if not cached_ok(w)]
        if still:
            raise BuildError(f"pip did not fetch the locked wheels {still} for {platform} (another file matched?)")
    return [cache / w["file"] for w in wheels]


def write_lock(platforms: list[str]) -> None:
    """Pin each platform's wheels (file name and sha256) as the registry serves them today."""
    lock = json.loads(LOCK.read_text()) if LOCK.is_file() else {"python_version": PYTHON_VERSION, "platforms": {}}
    for platform in platforms:
        with tempfile.TemporaryDirectory() as tmp:
            pins = pins_for(platform)
            _pip_download(platform, [f"{n}=={v}" for n, v in pins.items()], Path(tmp), hashes=False)
            files = sorted(Path(tmp).glob("*.whl"))
            entries = []
            for name, version in pins.items():
                prefix = name.replace("-", "_").lower() + "-" + version + "-"
                matches = [p for p in files if p.name.lower().startswith(prefix)]
                if len(matches) != 1:
                    raise BuildError(f"expected one {name} {version} wheel for {platform}, pip gave {matches}")
                match = matches[0]
                entries.append({"name": name, "version": version, "file": match.name, "sha256": sha256_file(match)})
                cached = wheel_cache() / match.name
                cached.parent.mkdir(parents=True, exist_ok=True)
                if not cached.is_file():
                    cached.write_bytes(match.read_bytes())
        lock["platforms"][platform] = entries
        print(f"locked {platform}: " + ", ".join(e["file"] for e in entries))
    lock["platforms"] = dict(sorted(lock["platforms"].items()))
    LOCK.write_text(json.dumps(lock, indent=2) + "\n")


# --------------------------------------------------------------------------- the manifest


def _toml_value(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML writer for {type(value).__name__}")


def manifest_text(platform: str, wheel_names: list[str]) -> str:
    """``blender_manifest.toml`` for one platform: the add-on's own manifest, with the version from pyproject,
    the platform and the bundled wheels."""
    src = tomllib.loads((ADDON_SRC / "blender_manifest.toml").read_text())
    top = {k: v for k, v in src.items() if not isinstance(v, dict)}
    if top.get("id") != ADDON_ID:
        raise BuildError(f"blender_addon/blender_manifest.toml has id {top.get('id')!r}, expected {ADDON_ID!r}")
    top.update(version=project_version(), blender_version_min="4.2.0", platforms=[platform],
               wheels=[f"./wheels/{n}" for n in wheel_names])
    lines = ["# Written by build_addon.py from blender_addon/blender_manifest.toml and pyproject.toml.", ""]
    lines += [f"{k} = {_toml_value(v)}" for k, v in top.items()]
    lines += ["", "[permissions]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in src.get("permissions", {}).items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the zip


@dataclass(frozen=True)
class Member:
    name: str  # path inside the zip
    data: bytes | None = None
    path: Path | None = None

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


def verified_assets() -> list[Member]:
    """Every shipped asset under ``vendor/rigcast/assets``; each model checked against the manifest's sha256."""
    manifest = json.loads((ASSETS_SRC / "models" / "manifest.json").read_text())
    for name, entry in manifest["models"].items():
        path = ASSETS_SRC / "models" / entry["file"]
        if not path.is_file():
            raise BuildError(f"model {name} not found: {path}")
        found = sha256_file(path)
        if found != entry["sha256"]:
            raise BuildError(f"model {path} has sha256 {found}, the manifest expects {entry['sha256']}")
    prefix = f"{ADDON_ID}/vendor/rigcast/assets"
    return [Member(f"{prefix}/{p.relative_to(ASSETS_SRC).as_posix()}", path=p) for p in _tree(ASSETS_SRC)]


def pyc_name(source_name: str) -> str:
    """``a/b/mod.py`` -> ``a/b/__pycache__/mod.cpython-311.pyc``, where Blender's Python looks for its bytecode."""
    folder, _, file = source_name.rpartition("/")
    return f"{folder}/__pycache__/{file.removesuffix('.py')}.{PYC_TAG}.pyc"


_COMPILER = """
import importlib.util, json, marshal, sys
sources = json.load(sys.stdin)
out = {}
for name in sorted(sources):
    source = sources[name].encode("latin-1")
    code = compile(source, name, "exec", dont_inherit=True)  # Python sets the real path on import
    header = importlib.util.MAGIC_NUMBER + int(sys.argv[1]).to_bytes(4, "little") + importlib.util.source_hash(source)
    out[name] = (header + marshal.dumps(code, 2)).hex()
json.dump(out, sys.stdout)
"""


def bytecode(sources: dict[str, bytes]) -> dict[str, bytes]:
    """Checked-hash .pyc files (PEP 552) of ``sources`` (zip member name -> source): loaded while the source's hash
    matches, never rewritten.

    Timestamp-based caches would not do: unpacking the zip gives the sources new mtimes, so Python would compile
    them again and write the caches into the install folder.  Compiled in a fresh, bare Python with a fixed hash
    seed, in marshal's format 2, so the bytes depend on the sources alone: format 3+ marks objects as shared by
    their reference counts at the time, an interned one-letter string's flag depends on what else the process
    has loaded, and frozenset constants follow the hash seed.
    """
    if sys.implementation.cache_tag != PYC_TAG:
        raise BuildError(f"the bytecode must be compiled by Blender's Python {PYTHON_VERSION} ({PYC_TAG}); this is "
                         f"{sys.implementation.cache_tag}: run build_addon.py with Python {PYTHON_VERSION}")
    env = {"PYTHONHASHSEED": "0", **{k: os.environ[k] for k in ("SYSTEMROOT",) if k in os.environ}}  # Windows
    done = subprocess.run([sys.executable, "-S", "-s", "-c", _COMPILER, str(PYC_CHECKED_HASH)],
                          input=json.dumps({k: v.decode("latin-1") for k, v in sources.items()}),
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BuildError(f"compiling the add-on's bytecode failed: {done.stderr.strip().splitlines()[-1:]}")
    return {name: bytes.fromhex(pyc) for name, pyc in json.loads(done.stdout).items()}


def with_bytecode(items: list[Member]) -> list[Member]:
    """``items`` and the bytecode of each Python module among them."""
    compiled = bytecode({m.name: m.read() for m in items if m.name.endswith(".py")})
    return items + [Member(pyc_name(name), pyc) for name, pyc in compiled.items()]


def members(platform: str) -> list[Member]:
    wheels = fetch_wheels(platform)
    out = [Member(f"{ADDON_ID}/blender_manifest.toml", manifest_text(platform, [w.name for w in wheels]).encode())]
    out += [Member(f"{ADDON_ID}/{p.relative_to(ADDON_SRC).as_posix()}", path=p) for p in _tree(ADDON_SRC)
            if p.name != "blender_manifest.toml"]
    out.append(Member(f"{ADDON_ID}/vendor/__init__.py",
                      b'"""Third-party code vendored by build_addon.py: rigcast\'s core as `vendor.rigcast`."""\n'))
    out += [Member(f"{ADDON_ID}/vendor/rigcast/{p.relative_to(CORE_SRC).as_posix()}", path=p) for p in _tree(CORE_SRC)]
    out += verified_assets()
    out = with_bytecode(out)
    out += [Member(f"{ADDON_ID}/wheels/{w.name}", path=w) for w in wheels]
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise BuildError(f"two files map to the same zip member: {sorted(n for n in names if names.count(n) > 1)}")
    return sorted(out, key=lambda m: m.name)


def write_zip(path: Path, items: list[Member]) -> None:
    """A byte-reproducible zip: given order, fixed timestamps and permissions; wheels stored, the rest deflated."""
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for m in items:
            info = zipfile.ZipInfo(m.name, date_time=ZIP_EPOCH)
            info.create_system = 3  # unix, so the permissions below are read on every platform
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_STORED if m.name.endswith(".whl") else zipfile.ZIP_DEFLATED
            # Level 1: models deflate to 61 % as at level 6, six times faster (the heavy pose model 4.5 vs 27 s).
            zf.writestr(info, m.read(), compresslevel=1 if info.compress_type == zipfile.ZIP_DEFLATED else None)
    tmp.replace(path)


def build(platform: str, out_dir: Path) -> Path:
    if platform not in PLATFORM_TAGS:
        raise BuildError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORM_TAGS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{ADDON_ID}-{project_version()}-{platform}.zip"
    write_zip(path, members(platform))
    problems = check(path)
    if problems:
        raise BuildError(f"{path.name} fails its own check: {problems[0]}")
    return path


# --------------------------------------------------------------------------- --check


def _unsafe(name: str) -> str | None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "an absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "a '..' component"
    if not name.startswith(f"{ADDON_ID}/"):
        return f"outside the add-on folder {ADDON_ID}/"
    return None


def check(path: Path) -> list[str]:
    """Everything wrong with an extension zip (empty when it is sound): member paths, the manifest and its wheels
    list, and every model's sha256 against the bundled ``manifest.json``."""
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        return [f"{path} is not a readable zip: {e}"]
    with zf:
        names = zf.namelist()
        problems += [f"member {n!r} is {why}" for n in names if (why := _unsafe(n))]
        problems += [f"member {n!r} appears {names.count(n)} times" for n in sorted(set(names)) if names.count(n) > 1]
        manifest_name = f"{ADDON_ID}/blender_manifest.toml"
        if manifest_name not in names:
            return problems + [f"no {manifest_name} in the zip"]
        try:
            manifest = tomllib.loads(zf.read(manifest_name).decode())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            return problems + [f"{manifest_name} does not parse: {e}"]
        for key, want in (("id", ADDON_ID), ("blender_version_min", "4.2.0")):
            if manifest.get(key) != want:
                problems.append(f"manifest {key} is {manifest.get(key)!r}, expected {want!r}")
        for key in ("version", "license", "platforms", "permissions"):
            if not manifest.get(key):
                problems.append(f"manifest has no {key}")
        if "network" in manifest.get("permissions", {}):
            problems.append("manifest asks for network access; rigcast never uses the network")
        listed = {w.removeprefix("./") for w in manifest.get("wheels", [])}
        bundled = {n.removeprefix(f"{ADDON_ID}/") for n in names if n.endswith(".whl")}
        if listed != bundled:
            problems.append(f"manifest wheels {sorted(listed)} differ from the bundled wheels {sorted(bundled)}")
        problems += _wheel_platform_problems(manifest.get("platforms") or [], sorted(bundled))
        models_dir = f"{ADDON_ID}/vendor/rigcast/assets/models"
        try:
            models = json.loads(zf.read(f"{models_dir}/manifest.json"))["models"]
        except KeyError:
            return problems + [f"no {models_dir}/manifest.json in the zip"]
        for name, entry in sorted(models.items()):
            member = f"{models_dir}/{entry['file']}"
            if member not in names:
                problems.append(f"model {name} is missing ({member})")
            elif (found := sha256_bytes(zf.read(member))) != entry["sha256"]:
                problems.append(f"model {member} has sha256 {found}, the manifest expects {entry['sha256']}")
        if f"{ADDON_ID}/vendor/rigcast/__init__.py" not in names:
            problems.append("rigcast's core is not vendored (no vendor/rigcast/__init__.py)")
        problems += _bytecode_problems(zf, names)
    return problems


def _wheel_platform_problems(platforms: list[str], wheels: list[str]) -> list[str]:
    """Each bundled wheel installs on every platform the manifest names: pure (``any``) or built for it."""
    unknown = [p for p in platforms if p not in PLATFORM_TAGS]
    if unknown:
        return [f"manifest platforms {unknown} are not among {', '.join(PLATFORM_TAGS)}"]
    problems = []
    for wheel in wheels:
        tags = set(wheel.removesuffix(".whl").split("-")[-1].split("."))  # name-version-python-abi-platform(s)
        for platform in platforms:
            if "any" not in tags and not tags & set(PLATFORM_TAGS[platform]):
                problems.append(f"wheel {wheel} is not built for {platform} (platform tags {sorted(tags)})")
    return problems


def _bytecode_problems(zf: zipfile.ZipFile, names: list[str]) -> list[str]:
    """Each module's bytecode present and current (a stale one would be compiled again and written on import)."""
    problems = []
    for name in names:
        if not name.endswith(".py") or _unsafe(name):  # an unsafe member is a problem of its own
            continue
        pyc = pyc_name(name)
        if pyc not in names:
            problems.append(f"module {name} has no bytecode {pyc}")
            continue
        if sys.implementation.cache_tag != PYC_TAG:  # another Python's magic and hash key: presence only
            continue
        header = zf.read(pyc)[:16]
        if (header[:4] != importlib.util.MAGIC_NUMBER or int.from_bytes(header[4:8], "little") != PYC_CHECKED_HASH
                or header[8:16] != importlib.util.source_hash(zf.read(name))):
            problems.append(f"bytecode {pyc} is not a checked-hash cache of its source for {PYC_TAG}")
    return problems


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build_addon.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--platform", nargs="+", choices=list(PLATFORM_TAGS), default=list(PLATFORM_TAGS),
                   help="platforms to build (default: all)")
    p.add_argument("-o", "--output", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    p.add_argument("--check", type=Path, metavar="ZIP", help="validate a built zip instead of building")
    p.add_argument("--lock", action="store_true", help="re-pin the wheels of --platform from the registry")
    args = p.parse_args(argv)
    try:
        if args.check is not None:
            problems = check(args.check)
            for line in problems:
                print(f"{args.check.name}: {line}", file=sys.stderr)
            if not problems:
                print(f"{args.check.name}: ok")
            return 1 if problems else 0
        if args.lock:
            write_lock(args.platform)
            return 0
        for platform in args.platform:
            path = build(platform, args.output)
            print(f"{path}  {path.stat().st_size / 1e6:.1f} MB")
    except BuildError as e:
        print(f"build_addon.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
