"""PostgreSQL credentials: a ``postgresql://`` URL or fields, turned into psycopg2 connect arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from loadbay.common.configuration import ServerCredentials
from loadbay.common.destination import DestinationConfig


@dataclass(repr=False)
class PostgresCredentials(ServerCredentials):
    drivername: str = "postgresql"
    port: int | None = 5432
    sslmode: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("database",)
    SCHEMES: ClassVar[tuple[str, ...]] = ("postgresql", "postgres")
    QUERY_FIELDS: ClassVar[dict[str, type]] = {**ServerCredentials.QUERY_FIELDS, "sslmode": str}

    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg2.connect``; free ``query`` options pass through as libpq ones."""
        args: dict[str, Any] = {"dbname": self.database, "user": self.username, "password": self.password,
                                "host": self.host, "port": self.port, "connect_timeout": self.connect_timeout,
                                "sslmode": self.sslmode, "application_name": "loadbay", **self.driver_options()}
        return {k: v for k, v in args.items() if v is not None}


@dataclass
class PostgresConfig(DestinationConfig):
    credentials: PostgresCredentials = field(default_factory=PostgresCredentials)
    upsert_syntax: str = "auto"
    """How ``upsert`` merges: "merge" (PostgreSQL 15+), "on_conflict", or "auto" by server version."""
