"""Every error rigcast raises on purpose derives from :class:`RigcastError`.

Messages say what was expected and what was found, so that the CLI and the
Blender add-on can show them to users verbatim.
"""

from __future__ import annotations


class RigcastError(Exception):
    """Base class for errors meant to be shown to the user as they are."""


class InputError(RigcastError):
    """Footage or another input file is missing, unreadable or malformed."""


class ModelError(RigcastError):
    """A model file is missing, or its checksum or tensor shapes are wrong."""


class DeviceError(RigcastError):
    """A requested execution device or backend is not available."""


class TakeError(RigcastError):
    """A Take file is malformed or of an unsupported schema version."""
