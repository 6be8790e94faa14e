"""Reviewed snapshots of rendered SQL: ``tests/unit/snapshots/<name>``, rewritten with ``UPDATE_SNAPSHOTS=1``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"


def assert_snapshot(name: str, text: str) -> None:
    """``text`` equals the snapshot ``name``; with ``UPDATE_SNAPSHOTS`` set, or when it is missing, it is
    written instead (a missing one fails the test: review it and run again)."""
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text)
        if not os.environ.get("UPDATE_SNAPSHOTS"):
            pytest.fail(f"snapshot {path.name} was missing and has been written; review it and run again")
    assert text == path.read_text()
