"""The add-on's background job repeats the CLI's ``rigcast: warning:`` lines in its finished status.

background.py imports no bpy, so it is loaded from its file here and run on a stand-in ``rigcast``
process that prints what the CLI prints: a warning, then a progress bar that redraws many times.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
import time
from pathlib import Path

ADDON = Path(__file__).resolve().parents[1] / "blender_addon"

FAKE_CLI = r"""
import sys
sys.stderr.write("rigcast: warning: device 'cuda' was requested; falling back to 'cpu'\n")
sys.stderr.flush()
for i in range(2000):  # 60 kB of redraws: far past the 8 kB tail the job keeps
    sys.stdout.write(f"\rclip.mp4 \x1b[91m" + "-" * 10 + f"\x1b[0m {i}/2000  9.8 fps")
sys.stdout.write("\n")
sys.stdout.flush()
open(sys.argv[1], "w").close()
"""


def _background():
    spec = importlib.util.spec_from_file_location("rigcast_addon_background_under_test", ADDON / "background.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module


def test_finished_status_repeats_the_cli_warning(tmp_path):
    background = _background()
    take = tmp_path / "t.npz"
    process = subprocess.Popen([sys.executable, "-c", FAKE_CLI, str(take)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    job = background.Job(footage=Path("clip.mp4"), take=take, process=process)
    job.reader = threading.Thread(target=job.read, daemon=True)
    job.reader.start()
    background.set_current(job)
    finished = []
    deadline = time.monotonic() + 60
    while background.poll(lambda j: None, lambda j, ok, message: finished.append((ok, message))) is not None:
        assert time.monotonic() < deadline, "the stand-in process did not finish"
        time.sleep(0.05)
    assert "rigcast: warning" not in job.tail  # pushed out of the tail by the redraws...
    assert job.warnings == ["device 'cuda' was requested; falling back to 'cpu'"]  # ...but kept
    (ok, message), = finished
    assert ok and (job.done, job.total) == (1999, 2000)
    assert message.startswith("analysed clip.mp4 in ")
    assert message.endswith(" s; warning: device 'cuda' was requested; falling back to 'cpu'")
