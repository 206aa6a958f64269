"""Environment variables in tests."""

from __future__ import annotations

import pytest


def unset(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Unset ``names`` for this test only: whatever the code under test sets them to is removed afterwards too
    (``monkeypatch.delenv`` of an unset variable records nothing to undo)."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
