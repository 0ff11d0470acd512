"""rigcast core: footage → tracked skeletons, faces and head pose → Take.

Pure Python and numpy; never imports bpy.  Heavy libraries (onnxruntime,
PyAV, OpenCV) are imported by the modules that need them.
"""

__version__ = "0.1.0"
