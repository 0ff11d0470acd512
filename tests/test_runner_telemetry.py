"""rigcast's onnxruntime sessions, and onnxruntime imported after rigcast, leave nothing in the user's home folder (onnxruntime 1.32 otherwise writes a
device id and a usage-event store under ~/.cache/Microsoft)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rigcast.model_store import models_dir

SCRIPT = """
import sys
import rigcast.cli  # as the add-on's check does: rigcast, then onnxruntime
import onnxruntime
from rigcast.runners import make_runner
make_runner(sys.argv[1], device="cpu")
if len(sys.argv) > 2:  # the control: onnxruntime on its own
    onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
"""


# onnxruntime 1.32 writes nothing on a CI service: it looks for these variables (CI=true here on the project's CI),
# read off its library's strings and checked one by one with CI and GITHUB_ACTIONS.
CI_MARKERS = ("CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL", "CODEBUILD_BUILD_ID",
              "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER")


def run_in_home(home: Path, *args: str, **env: str) -> list[Path]:
    """Runs SCRIPT with ``home`` as HOME, as a user's machine would (no ORT_ settings, no CI service, the cache
    under HOME), plus ``env``; returns the files it wrote there."""
    unset = {*CI_MARKERS, "XDG_CACHE_HOME"}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ORT_") and k not in unset}
    subprocess.run([sys.executable, "-c", SCRIPT, *args], env={**clean, "HOME": str(home), **env}, check=True,
                   timeout=120)
    return sorted(p.relative_to(home) for p in home.rglob("*") if p.is_file())


@pytest.mark.parametrize("opt_in", [False, True])
def test_sessions_write_nothing_in_the_home_folder(tmp_path, opt_in):
    model = str(models_dir() / "face_detection_short_range.onnx")
    if not opt_in:
        assert run_in_home(tmp_path, model) == []
    else:  # the check can fail: onnxruntime told to log, as it does by default, writes there
        written = run_in_home(tmp_path, model, "control", ORT_DISABLE_TELEMETRY="0", ORT_TELEMETRY_DISABLED="0")
        assert any("onnxruntime" in str(p) for p in written), written
