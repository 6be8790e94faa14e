"""PostgreSQL credentials: a ``postgresql://`` URL or fields, turned into psycopg2 connect arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from loadbay.common.configuration import ConnectionStringCredentials
from loadbay.common.destination import DestinationConfig


@dataclass(repr=False)
class PostgresCredentials(ConnectionStringCredentials):
    drivername: str = "postgresql"
    host: str | None = "localhost"
    port: int | None = 5432
    connect_timeout: int = 15
    """Seconds to wait for a connection before the attempt counts as a transient failure."""
    sslmode: str | None = None

    REQUIRED: ClassVar[tuple[str, ...]] = ("database",)

    @classmethod
    def parse_string(cls, value: str) -> dict[str, Any]:
        parsed = super().parse_string(value)
        query = dict(parsed.get("query", {}))
        for key, kind in (("connect_timeout", int), ("sslmode", str)):
            if key in query:
                parsed[key] = kind(query.pop(key))
        parsed["query"] = query
        if parsed.get("drivername", "").split("+")[0] not in ("postgresql", "postgres"):
            from loadbay.common.exceptions import ConfigurationError

            raise ConfigurationError(f"a postgres connection string starts with postgresql://, not "
                                     f"{parsed.get('drivername')}://")
        parsed["drivername"] = "postgresql"
        return parsed

    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg2.connect``; free ``query`` options pass through as libpq ones."""
        args: dict[str, Any] = {"dbname": self.database, "user": self.username, "password": self.password,
                                "host": self.host, "port": self.port, "connect_timeout": self.connect_timeout,
                                "sslmode": self.sslmode, "application_name": "loadbay", **self.query}
        return {k: v for k, v in args.items() if v is not None}


@dataclass
class PostgresConfig(DestinationConfig):
    credentials: PostgresCredentials = field(default_factory=PostgresCredentials)
    upsert_syntax: str = "auto"
    """How ``upsert`` merges: "merge" (PostgreSQL 15+), "on_conflict", or "auto" by server version."""
