"""Fixtures for the store tests: the tiny models and data of ``tests/capture/tiny.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from interp.capture.workers import load_factory

TINY = Path(__file__).parents[1] / "capture" / "tiny.py"


@pytest.fixture(scope="session")
def tiny():
    """``tests/capture/tiny.py`` as a module."""
    return sys.modules[load_factory(f"{TINY}:tiny_model").__module__]


@pytest.fixture
def model(tiny):
    return tiny.tiny_model()
