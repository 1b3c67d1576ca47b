"""Fixtures the widget tests share (the viewer, notifications and settings isolation are in tests/conftest.py)."""

from __future__ import annotations

import pytest
from widget_helpers import spy_engine


@pytest.fixture
def seen(monkeypatch):
    """What the engine got in the last run: its keyword arguments (positional ones under ``args``)."""
    return spy_engine(monkeypatch)
