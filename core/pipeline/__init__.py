"""rigcast's per-frame analysis: bodies (:mod:`.body`), faces (:mod:`.faces`), and the run that drives them
(:mod:`.analyze`).  Kept free of imports so that the CLI can read the choices below without loading models."""

FRAMES_IN_FLIGHT = (1, 2)
"""Frames whose faces :class:`~rigcast.pipeline.faces.FaceAnalyzer` tracks at once (see :mod:`.faces`)."""
