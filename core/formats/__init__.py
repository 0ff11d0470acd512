"""File formats: the Take, and exporters to other tools' layouts."""
