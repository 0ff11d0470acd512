"""Warnings reach the CLI's user as one line, ``rigcast: warning: ...``, not Python's two-line RuntimeWarning."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from rigcast import cli
from rigcast.runners.onnx import available_devices


MISSING = [d for d in ("cuda", "tensorrt") if d not in available_devices()]


@pytest.mark.skipif(not MISSING, reason="this onnxruntime has both CUDA and TensorRT: no fallback to see")
def test_device_fallback_is_one_clean_line(carphone_path, tmp_path):
    out = tmp_path / "t.npz"
    device, have = MISSING[0], available_devices()
    proc = subprocess.run([sys.executable, "-m", "rigcast", "analyze", str(carphone_path), "-o", str(out),
                           "--end", "2f", "--no-faces", "--device", device], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"rigcast: warning: device {device!r} was requested but this onnxruntime offers only {have} (install "
        f"rigcast[gpu] and a CUDA driver for 'cuda', TensorRT for 'tensorrt'); falling back to {have[0]!r}"]
    assert out.is_file()


def test_main_prints_warnings_in_one_line_and_restores_the_hook(capsys, monkeypatch):
    def warn_twice(args):
        warnings.warn("first line\n  second line", RuntimeWarning)
        return 0

    before = warnings.showwarning
    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["info"].set_defaults(func=warn_twice)
    assert cli.main(["info", "any.npz"]) == 0
    assert capsys.readouterr().err == "rigcast: warning: first line second line\n"
    assert warnings.showwarning is before
