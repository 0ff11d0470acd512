"""rigcast core: footage → tracked skeletons, faces and head pose → Take.

Pure Python and numpy; never imports bpy.  Heavy libraries (onnxruntime,
PyAV, OpenCV) are imported by the modules that need them.
"""

import os

# onnxruntime 1.29+ on Linux writes a device id and a usage-event store for upload under
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime unless told not to before it is imported: set here, where any use
# of rigcast starts.  1.32 reads the first name, later sources the second; a user's own setting is kept.
for _name in ("ORT_DISABLE_TELEMETRY", "ORT_TELEMETRY_DISABLED"):
    os.environ.setdefault(_name, "1")

__version__ = "0.1.0"
