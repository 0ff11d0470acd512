"""rigcast's per-frame analysis: bodies (:mod:`.body`), faces (:mod:`.faces`), and the run that drives them
(:mod:`.analyze`).  Kept free of imports so that the CLI can read the choices below without loading models."""

FRAMES_IN_FLIGHT = (1, 2)
"""Frames whose faces :class:`~rigcast.pipeline.faces.FaceAnalyzer` tracks at once (see :mod:`.faces`)."""

DEFAULT_MAX_PEOPLE = 16
"""Most people followed at once unless asked otherwise (a crowd of 10 needs no flag)."""
PERSON_DETECTOR_CHOICES = ("auto", "nanodet", "blazepose")
"""``--person-detector``: auto picks BlazePose's own detector for one person, NanoDet's boxes for more."""
