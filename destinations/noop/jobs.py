"""A load job that reads nothing and writes nothing."""

from __future__ import annotations

from typing import Any

from loadbay.common.destination import LoadJob


class NoopJob(LoadJob):
    def run(self, client: Any) -> None:
        """Accept the file as loaded."""
