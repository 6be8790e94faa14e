"""DuckDB credentials: a database file path (``duckdb:///path`` or the bare path)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from loadbay.common.configuration import Credentials
from loadbay.common.destination import DestinationConfig

MEMORY = ":memory:"


@dataclass(repr=False)
class DuckDbCredentials(Credentials):
    database: str | None = None
    """Path of the database file; defaults to ``<pipeline_name>.duckdb`` in the working directory."""
    read_only: bool = False

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def parse_string(cls, value: str) -> dict[str, Any]:
        for prefix in ("duckdb:///", "duckdb://"):
            if value.startswith(prefix):
                value = value[len(prefix):]
                break
        return {"database": value}

    def location(self) -> str:
        return str(self.database)


@dataclass
class DuckDbConfig(DestinationConfig):
    credentials: DuckDbCredentials = field(default_factory=DuckDbCredentials)
