"""Fixtures for the capture tests: the tiny seeded models and data of ``tiny.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from interp.capture.workers import load_factory

#: Factories of tiny.py are named ``f"{TINY}:function"`` on worker command lines.
TINY = Path(__file__).with_name("tiny.py")


@pytest.fixture(scope="session")
def tiny():
    """``tiny.py`` as a module (the tests are not a package under importlib mode)."""
    return sys.modules[load_factory(f"{TINY}:tiny_model").__module__]


@pytest.fixture
def model(tiny):
    return tiny.tiny_model()
