"""PostgreSQL SQL client on psycopg2: the dataset is a schema, UTC sessions, errors by SQLSTATE."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlglot import exp

from loadbay.common.exceptions import (DestinationError, DestinationTerminalError, DestinationTransientError,
                               DestinationUndefinedRelation)
from loadbay.destinations.sql_client import SqlClient, lock_key

SQLSTATE_EXACT: dict[str, type[DestinationError]] = {
    "42P01": DestinationUndefinedRelation,  # undefined_table
    "3F000": DestinationUndefinedRelation,  # invalid_schema_name
    "40001": DestinationTransientError,     # serialization_failure
    "40P01": DestinationTransientError,     # deadlock_detected
    "55P03": DestinationTransientError,     # lock_not_available
    "57P01": DestinationTransientError,     # admin_shutdown (pg_terminate_backend)
    "57P02": DestinationTransientError,     # crash_shutdown
    "57P03": DestinationTransientError,     # cannot_connect_now
}
"""SQLSTATE codes with their own meaning; looked up before the class table."""

SQLSTATE_CLASS: dict[str, type[DestinationError]] = {
    "08": DestinationTransientError,  # connection exception
    "53": DestinationTransientError,  # insufficient resources
    "22": DestinationTerminalError,   # data exception
    "23": DestinationTerminalError,   # integrity constraint violation
    "42": DestinationTerminalError,   # syntax error or access rule violation
}
"""The first two characters of a SQLSTATE; anything not listed is terminal (a user must fix it)."""

TERMINAL_CONNECT_MESSAGES = re.compile(
    r'password authentication failed|no password supplied|role "[^"]*" does not exist|'
    r'database "[^"]*" does not exist|is not permitted to log in|permission denied for database')
"""libpq reports refused logins without a SQLSTATE; these texts (and only these: "too many
connections for role" is transient) make such a failure terminal. Each is tested verbatim."""


class PostgresSqlClient(SqlClient):
    dbapi_paramstyle = "format"

    def connect(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(**self.config.credentials.connect_args())
        conn.autocommit = True  # transactions are explicit BEGIN/COMMIT
        return conn

    def after_connect(self) -> None:
        self.execute_sql("SET TIME ZONE 'UTC'")
        self.use_dataset()

    def use_dataset(self) -> None:
        """Unqualified names resolve to the dataset once it exists."""
        if self.has_dataset():
            self.execute_sql(f"SET search_path TO {self.render(self.identifier(self.dataset_name))}, public")

    def create_dataset(self, dataset: str | None = None) -> None:
        super().create_dataset(dataset)
        if dataset in (None, self.dataset_name):
            self.use_dataset()

    @contextmanager
    def schema_change_lock(self) -> Iterator[None]:
        """One transaction holding an advisory lock keyed by the dataset: concurrent pipelines'
        CREATE/ALTER of one dataset run one after the other, each seeing what the last one made
        (without it, two ``CREATE SCHEMA IF NOT EXISTS`` may both fail on pg_namespace's unique index)."""
        with self.begin_transaction():
            self.execute_sql("SELECT pg_advisory_xact_lock(%s)", lock_key(self.dataset_name))
            yield

    def lock_tables(self, tables: Sequence[exp.Table]) -> None:
        """``LOCK TABLE`` in SHARE ROW EXCLUSIVE mode (conflicts with itself and with writers), in name
        order so two transactions locking the same tables cannot deadlock. Inside a transaction."""
        if tables:
            names = sorted(self.render(t) for t in tables)
            self.execute_sql(f"LOCK TABLE {', '.join(names)} IN SHARE ROW EXCLUSIVE MODE")

    @property
    def server_version(self) -> int:
        """``server_version_num``, e.g. 150004 for 15.4."""
        return int(self.native_connection.server_version)

    def copy_from(self, sql: exp.Expression | str, stream: Any) -> None:
        """``COPY ... FROM STDIN`` fed from a file object, streamed in chunks (never all in memory)."""
        text = self.render(sql)
        with self.translating(text), self.cursor() as cursor:
            cursor.copy_expert(text, stream, size=1 << 20)

    @staticmethod
    def classify(exc: BaseException) -> type[DestinationError] | None:
        import psycopg2

        if not isinstance(exc, psycopg2.Error):
            return None
        code = getattr(exc, "pgcode", None)
        if code:
            found = SQLSTATE_EXACT.get(code) or SQLSTATE_CLASS.get(code[:2])
            return found or DestinationTerminalError
        # no SQLSTATE: the client lost the server (closed connection, refused, timed out) or
        # the server refused the login, which retrying cannot fix
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
            if TERMINAL_CONNECT_MESSAGES.search(str(exc)):
                return DestinationTerminalError
            return DestinationTransientError
        return DestinationTerminalError
