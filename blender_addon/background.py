"""Analyse in the background: ``rigcast analyze FOOTAGE -o TAKE`` in a separate process, polled by a timer.

Inference never runs in Blender's process: Blender's Python may lack
onnxruntime and PyAV, and a model run would freeze the UI.  The job runs the
first interpreter that works, in this order:

1. Blender's own Python (``sys.executable -m rigcast``) when a quick
   subprocess check can import rigcast, onnxruntime and PyAV there.  The
   child gets Blender's ``sys.path`` plus the extension's ``vendor/`` folder:
   in the packaged extension that is the vendored core (``vendor/rigcast``,
   a top-level ``rigcast`` only inside that child process) and the wheels
   Blender installed with the extension; in a development install, the
   ``rigcast`` installed in Blender's Python;
2. the ``rigcast`` command set in the add-on preferences;
3. the Python set in the add-on preferences (``python -m rigcast``).

If none works, :func:`resolve_runner` says so in one line, which the panel shows.

Progress: rigcast's rich bar prints ``N/M`` frames; rich only redraws when it
thinks it writes to an interactive terminal, so the job sets
``TTY_COMPATIBLE=1`` and ``TTY_INTERACTIVE=1`` (rich 14+; and ``NO_COLOR``),
strips the escape codes and takes the last ``N/M`` it sees.  A
``bpy.app.timers`` callback on the main thread copies it to the window
manager's properties and the status bar, and imports the Take when the
process exits 0.  Cancel interrupts the process (SIGINT, so rigcast says where
it stopped); its chunk cache lets the next run resume.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

CHECK_CODE = "import rigcast.cli, onnxruntime, av"
POLL_S = 0.25
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_PROGRESS = re.compile(r"(\d+)/(\d+|\?)")
_WARNING = re.compile(r"rigcast: warning: ([^\r\n]*)[\r\n]")  # the CLI's one-line warnings, once terminated


@dataclass(frozen=True)
class Runner:
    """How to start rigcast: the argv prefix before ``analyze ...``, and where it came from."""

    argv: tuple[str, ...]
    origin: str


@dataclass
class Resolution:
    runner: Runner | None
    message: str  # one line for the panel, empty when a runner was found
    tried: list[str] = field(default_factory=list)


_cache: dict[tuple, Resolution] = {}


def child_env(**extra: str) -> dict[str, str]:
    """The environment for rigcast subprocesses: Blender's import path first, so a plain Python started from
    Blender finds the vendored core and the extension's wheels as Blender's own Python does."""
    vendor = Path(__file__).resolve().parent / "vendor"
    paths = [str(vendor)] if vendor.is_dir() else []
    paths += [p for p in sys.path if p and os.path.isdir(p)]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    # No byte code written: the vendored core sits in the extension's install folder, which is never written.
    # (onnxruntime's telemetry is turned off by rigcast's package, imported before it.)
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), PYTHONDONTWRITEBYTECODE="1", **extra)


def _works(argv: list[str], timeout: float = 60.0) -> tuple[bool, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=child_env(),
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        return False, str(e)
    tail = (done.stderr or done.stdout).strip().splitlines()
    return done.returncode == 0, tail[-1] if tail else f"exit status {done.returncode}"


def resolve_runner(command: str = "", python: str = "", *, refresh: bool = False) -> Resolution:
    """The first working way to run ``rigcast analyze`` (see the module docstring); cached per preference values."""
    key = (sys.executable, command, python)
    if not refresh and key in _cache:
        return _cache[key]
    tried = []
    resolution = None
    ok, why = _works([sys.executable, "-c", CHECK_CODE])
    if ok:
        resolution = Resolution(Runner((sys.executable, "-m", "rigcast"), "Blender's Python"), "")
    else:
        tried.append(f"Blender's Python ({why})")
    if resolution is None and command:
        ok, why = _works([command, "--version"])
        if ok:
            resolution = Resolution(Runner((command,), f"command {command}"), "")
        else:
            tried.append(f"command {command!r} ({why})")
    if resolution is None and python:
        ok, why = _works([python, "-c", CHECK_CODE])
        if ok:
            resolution = Resolution(Runner((python, "-m", "rigcast"), f"Python {python}"), "")
        else:
            tried.append(f"Python {python!r} ({why})")
    if resolution is None:
        resolution = Resolution(None, "rigcast analysis unavailable: set a rigcast command or a Python with rigcast "
                                      "in the add-on preferences", tried)
    _cache[key] = resolution
    return resolution


def clear_cache() -> None:
    _cache.clear()


def cached_message(command: str = "", python: str = "") -> str:
    """The panel's one line about the runner, from the cache only (never starts a process while drawing)."""
    found = _cache.get((sys.executable, command, python))
    return found.message if found is not None else ""


def parse_progress(text: str) -> tuple[int, int] | None:
    """The last (done, total) in rich progress output (total -1 when unknown), or None."""
    found = _PROGRESS.findall(_ANSI.sub("", text))
    if not found:
        return None
    done, total = found[-1]
    return int(done), -1 if total == "?" else int(total)


@dataclass
class Job:
    """One running analysis.  The reader thread fills ``done``/``total``/``tail`` and ``warnings`` (the
    CLI's ``rigcast: warning:`` lines, which the finished status repeats); the main thread polls."""

    footage: Path
    take: Path
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    total: int = -1
    tail: str = ""
    cancelled: bool = False
    reader: threading.Thread | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total > 0 else 0.0

    def read(self) -> None:
        stream = self.process.stdout
        while True:
            chunk = stream.read1(4096) if hasattr(stream, "read1") else stream.read(4096)
            if not chunk:
                return
            text = chunk.decode("utf-8", errors="replace")
            self.tail = (self.tail + text)[-8192:]
            # Kept apart from the tail, which the progress bar's redraws push a warning out of.
            for found_warning in _WARNING.finditer(_ANSI.sub("", self.tail)):
                if found_warning.group(1).strip() not in self.warnings:
                    self.warnings.append(found_warning.group(1).strip())
            found = parse_progress(self.tail[-512:])
            if found is not None:
                self.done, self.total = found

    def error_line(self) -> str:
        """The most telling line of the process output (rigcast's own error message when there is one)."""
        lines = [ln.strip() for ln in _ANSI.sub("", self.tail).replace("\r", "\n").splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("rigcast: error:") or "Error" in ln]
        return (errors or lines or [f"exit status {self.process.returncode}"])[-1]

    def cancel(self, grace_s: float = 5.0) -> None:
        """Interrupt the process (finished chunks stay cached for a resume), then kill it if it lingers."""
        self.cancelled = True
        if self.process.poll() is not None:
            return
        if os.name == "posix":
            self.process.send_signal(signal.SIGINT)
        else:
            self.process.terminate()
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def analysis_argv(runner: Runner, footage: Path, take: Path, *, min_cutoff: float, beta: float,
                  extra: tuple[str, ...] = ()) -> list[str]:
    """The ``rigcast analyze`` command line; One Euro settings are passed only when changed from the defaults
    (given, they replace the bodies' zero-lag smoother)."""
    from .core_bridge import one_euro

    default = one_euro.ONE_EURO_LANDMARKS
    euro = [] if (min_cutoff, beta) == (default.min_cutoff, default.beta) else [
        "--min-cutoff", f"{min_cutoff:g}", "--beta", f"{beta:g}"]
    return [*runner.argv, "analyze", str(footage), "-o", str(take), *euro, *extra]


def start(runner: Runner, footage: Path, take: Path, *, min_cutoff: float, beta: float,
          extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Job:
    """Start ``rigcast analyze`` (``extra`` arguments and ``env`` variables added) and a thread reading its
    output; returns the job."""
    env = child_env(TTY_COMPATIBLE="1", TTY_INTERACTIVE="1", NO_COLOR="1", COLUMNS="120", PYTHONUNBUFFERED="1",
                    **(env or {}))
    argv = analysis_argv(runner, footage, take, min_cutoff=min_cutoff, beta=beta, extra=extra)
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=env, cwd=str(take.parent))
    job = Job(footage=footage, take=take, process=process)
    job.reader = threading.Thread(target=job.read, name="rigcast-analyse-reader", daemon=True)
    job.reader.start()
    return job


# --------------------------------------------------------------------------- the one job, polled on the main thread

_job: Job | None = None


def current() -> Job | None:
    return _job


def set_current(job: Job | None) -> None:
    global _job
    _job = job


def poll(on_progress: Callable[[Job], None], on_finished: Callable[[Job, bool, str], None]) -> float | None:
    """One timer tick: report progress, or finish the job.  Returns the next interval, None when the job is over."""
    job = _job
    if job is None:
        return None
    code = job.process.poll()
    if code is None:
        on_progress(job)
        return POLL_S
    if job.reader is not None:
        job.reader.join(timeout=2.0)
    set_current(None)
    if job.cancelled:
        on_finished(job, False, "analysis cancelled; run it again to resume")
    elif code == 0 and job.take.is_file():
        warned = "".join(f"; warning: {w}" for w in job.warnings)
        on_finished(job, True, f"analysed {job.footage.name} in {time.monotonic() - job.started:.0f} s{warned}")
    else:
        on_finished(job, False, job.error_line())
    return None
