"""SQLAlchemy SQL client: one engine per URL, statements through ``exec_driver_sql``, and errors
classified from the driver's own codes on SQLAlchemy's wrapped exception (``exc.orig``)."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlglot import exp

from loadbay.common.exceptions import (DestinationError, DestinationTerminalError, DestinationTransientError,
                               DestinationUndefinedRelation)
from loadbay.destinations.sql_client import SqlClient, lock_key

MYSQL_CODES: dict[int, type[DestinationError]] = {
    1146: DestinationUndefinedRelation,  # ER_NO_SUCH_TABLE
    1049: DestinationUndefinedRelation,  # ER_BAD_DB_ERROR (unknown database)
    1205: DestinationTransientError,     # ER_LOCK_WAIT_TIMEOUT
    1213: DestinationTransientError,     # ER_LOCK_DEADLOCK
    1040: DestinationTransientError,     # ER_CON_COUNT_ERROR (too many connections)
    1053: DestinationTransientError,     # ER_SERVER_SHUTDOWN
    1927: DestinationTransientError,     # ER_CONNECTION_KILLED (MariaDB)
    2002: DestinationTransientError,     # CR_CONNECTION_ERROR
    2003: DestinationTransientError,     # CR_CONN_HOST_ERROR
    2006: DestinationTransientError,     # CR_SERVER_GONE_ERROR
    2013: DestinationTransientError,     # CR_SERVER_LOST
}
"""MySQL/MariaDB error codes (``orig.args[0]``); any other code is terminal: 1064 syntax, 1054 unknown
column, 1048 null, 1062 duplicate, 1264/1406 out of range / too long, 1045 access denied, ..."""

SQLITE_UNDEFINED = re.compile(r"^(no such table|unknown database)")
SQLITE_TRANSIENT_NAMES = ("SQLITE_BUSY", "SQLITE_LOCKED")
SQLITE_TRANSIENT = re.compile(r"database is locked|database table is locked")
"""SQLite has no codes before Python 3.11's ``sqlite_errorname``; these messages are tested verbatim."""

JSON_CHECK = re.compile(r"json_valid\(`([^`]+)`\)")

BEGIN = {"mysql": "START TRANSACTION", "mariadb": "START TRANSACTION", "sqlite": "BEGIN"}
NAMED_LOCK_TIMEOUT = 60
"""Seconds a MySQL/MariaDB session waits for another pipeline's schema changes (then: transient)."""

_engines: dict[tuple[str, str], Any] = {}
_engines_lock = threading.Lock()


def engine_for(credentials: Any, engine_args: dict[str, Any]) -> Any:
    """One engine (and its pool) per URL and options, shared by every client in the process."""
    import sqlalchemy

    url = credentials.url()
    key = (url.render_as_string(hide_password=False), repr(sorted(engine_args.items())))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = sqlalchemy.create_engine(url, **engine_args)
        return engine


class SqlalchemySqlClient(SqlClient):
    def __init__(self, config: Any, capabilities: Any) -> None:
        super().__init__(config, capabilities)
        self.dialect_name = config.credentials.dialect_name()
        self.family = "mysql" if self.dialect_name in ("mysql", "mariadb") else self.dialect_name
        self.begin_sql = BEGIN.get(self.dialect_name, "BEGIN")

    @property
    def engine(self) -> Any:
        return engine_for(self.config.credentials, self.config.engine_args)

    def connect(self) -> Any:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.dbapi_paramstyle = self.engine.dialect.paramstyle
        return conn

    def after_connect(self) -> None:
        if self.family == "mysql":
            self.execute_sql("SET time_zone = '+00:00'")
            # nested JSON flattens into hundreds of mostly-NULL columns; strict mode refuses such a
            # table by its worst-case row size, although real rows fit (an oversized one still fails)
            self.execute_sql("SET SESSION innodb_strict_mode = OFF")
            self._use_dataset()
        elif self.family == "postgresql":
            self.execute_sql("SET TIME ZONE 'UTC'")
            self._use_dataset()
        elif self.family == "sqlite":
            # a pooled connection keeps what an earlier client attached: another pipeline's dataset
            # would answer unqualified names, so only this client's datasets stay attached
            own = {"main", "temp", self.dataset_name, self.config.staging_dataset_name}
            for row in self.execute_sql("PRAGMA database_list") or []:
                if row[1] not in own:
                    self.execute_sql(f"DETACH DATABASE {self.render(self.identifier(row[1]))}")
            for dataset in (self.dataset_name, self.config.staging_dataset_name):
                if self._sqlite_file(dataset).exists():
                    self._attach(dataset)

    # -- statements --------------------------------------------------------------------------
    def execute_sql(self, sql: exp.Expression | str, *params: Any) -> list[tuple[Any, ...]] | None:
        text = self.render(sql)
        with self.translating(text):
            conn = self.native_connection
            if params:
                result = conn.exec_driver_sql(text, tuple(params))
            else:
                result = conn.exec_driver_sql(self._escape_percent(text))
            if not result.returns_rows:
                return None
            return [tuple(r) for r in result.fetchall()]

    def execute_many_params(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """``executemany``: one statement, many parameter tuples."""
        if rows:
            with self.translating(sql):
                self.native_connection.exec_driver_sql(sql, rows)

    def _escape_percent(self, text: str) -> str:
        """Drivers with % placeholders format even a statement without parameters."""
        return text.replace("%", "%%") if self.dbapi_paramstyle in ("format", "pyformat") else text

    # -- concurrency -------------------------------------------------------------------------
    @contextmanager
    def schema_change_lock(self) -> Iterator[None]:
        """DDL of pipelines sharing a dataset, one at a time: PostgreSQL's advisory lock (in a
        transaction) or MySQL/MariaDB's named lock (GET_LOCK, per session: DDL commits implicitly
        there). SQLite locks the whole database file for every write already."""
        if self.family == "postgresql":
            with self.begin_transaction():
                self.execute_sql(f"SELECT pg_advisory_xact_lock({self.placeholder()})", lock_key(self.dataset_name))
                yield
            return
        if self.family != "mysql":
            yield
            return
        name = f"loadbay:{lock_key(self.dataset_name):x}"
        got = self.execute_sql(f"SELECT GET_LOCK({self.placeholder()}, {NAMED_LOCK_TIMEOUT})", name)
        if not got or got[0][0] != 1:
            raise DestinationTransientError(f"dataset {self.dataset_name!r}: another pipeline held the schema-change "
                                            f"lock {name!r} for {NAMED_LOCK_TIMEOUT} s")
        try:
            yield
        finally:
            self.execute_sql(f"SELECT RELEASE_LOCK({self.placeholder()})", name)

    def lock_tables(self, tables: list[exp.Table]) -> None:
        """PostgreSQL only (inside the final transaction): concurrent merges into a table wait."""
        if self.family == "postgresql" and tables:
            names = sorted(self.render(t) for t in tables)
            self.execute_sql(f"LOCK TABLE {', '.join(names)} IN SHARE ROW EXCLUSIVE MODE")

    # -- datasets ----------------------------------------------------------------------------
    def _sqlite_file(self, dataset: str) -> Path:
        main = Path(self.config.credentials.database or "loadbay.db")
        return main.with_name(f"{main.stem}__{dataset}{main.suffix or '.db'}")

    def _attach(self, dataset: str) -> None:
        attached = {row[1] for row in self.execute_sql("PRAGMA database_list") or []}
        if dataset not in attached:
            self.execute_sql(f"ATTACH DATABASE {self.render(exp.Literal.string(str(self._sqlite_file(dataset))))} "
                             f"AS {self.render(self.identifier(dataset))}")

    def has_dataset(self, dataset: str | None = None) -> bool:
        if self.family == "sqlite":
            attached = {row[1] for row in self.execute_sql("PRAGMA database_list") or []}
            return (dataset or self.dataset_name) in attached
        return super().has_dataset(dataset)

    def create_dataset(self, dataset: str | None = None) -> None:
        if self.family == "sqlite":
            self._attach(dataset or self.dataset_name)
            return
        super().create_dataset(dataset)
        if dataset in (None, self.dataset_name):
            self._use_dataset()

    def _use_dataset(self) -> None:
        """Unqualified names resolve to the dataset once it exists (on MySQL, until then to the URL's
        database: a pooled connection would otherwise keep an earlier client's USE)."""
        if not self.has_dataset():
            default = self.config.credentials.database
            if self.family == "mysql" and default:
                self.execute_sql(f"USE {self.render(self.identifier(default))}")
            return
        name = self.render(self.identifier(self.dataset_name))
        if self.family == "mysql":
            self.execute_sql(f"USE {name}")
        elif self.family == "postgresql":
            self.execute_sql(f"SET search_path TO {name}, public")

    def drop_dataset(self, dataset: str | None = None) -> None:
        name = dataset or self.dataset_name
        if self.family == "sqlite":
            if self.has_dataset(name):
                self.execute_sql(f"DETACH DATABASE {self.render(self.identifier(name))}")
            path = self._sqlite_file(name)
            if path.exists():
                os.remove(path)
            return
        if self.family == "mysql":  # no CASCADE: dropping a database drops its tables
            self.execute_sql(exp.Drop(kind="SCHEMA", tables=[exp.Table(db=self.identifier(name))], exists=True))
            return
        super().drop_dataset(dataset)

    def table_columns(self, table_names: Any, staging: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Live columns by SQLAlchemy reflection: (name, SQLAlchemy type, None, None, nullable)."""
        import sqlalchemy

        dataset = self.config.staging_dataset_name if staging else self.dataset_name
        if not table_names or not self.has_dataset(dataset):
            return {}
        inspector = sqlalchemy.inspect(self.native_connection)
        out: dict[str, list[tuple[Any, ...]]] = {}
        existing = set(inspector.get_table_names(schema=dataset))
        json_columns = self._mariadb_json_columns(dataset) if self.family == "mysql" else set()
        for table in table_names:
            if table in existing:
                out[table] = [(c["name"], sqlalchemy.JSON() if (table, c["name"]) in json_columns else c["type"],
                               None, None, c.get("nullable", True))
                              for c in inspector.get_columns(table, schema=dataset)]
        return out

    def _mariadb_json_columns(self, dataset: str) -> set[tuple[str, str]]:
        """MariaDB's JSON is LONGTEXT plus a json_valid() check: reflection sees only the LONGTEXT."""
        rows = self.execute_sql(
            "SELECT table_name, check_clause FROM information_schema.check_constraints "
            f"WHERE constraint_schema = {self.placeholder()}", dataset) or []
        found = set()
        for table, clause in rows:
            match = JSON_CHECK.search(clause or "")
            if match:
                found.add((table, match.group(1)))
        return found

    # -- errors ------------------------------------------------------------------------------
    @staticmethod
    def error_text(exc: BaseException) -> str:
        """The driver's own error (SQLAlchemy's text repeats the whole statement)."""
        orig = getattr(exc, "orig", None)
        return SqlClient.error_text(orig if orig is not None else exc)

    @staticmethod
    def classify(exc: BaseException) -> type[DestinationError] | None:
        import sqlalchemy.exc as sa_exc

        if not isinstance(exc, sa_exc.SQLAlchemyError):
            return None
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return DestinationTransientError
        if isinstance(exc, (sa_exc.PendingRollbackError, sa_exc.ResourceClosedError)):
            return DestinationTransientError  # the connection broke earlier; a fresh one may work
        orig = getattr(exc, "orig", None)
        if orig is None:
            return DestinationTerminalError
        module = type(orig).__module__
        if module.startswith(("pymysql", "MySQLdb", "mysql")):
            code = orig.args[0] if orig.args and isinstance(orig.args[0], int) else None
            return MYSQL_CODES.get(code, DestinationTerminalError) if code is not None else DestinationTerminalError
        if module.startswith("sqlite3"):
            name = getattr(orig, "sqlite_errorname", None)
            message = str(orig)
            if SQLITE_UNDEFINED.search(message):
                return DestinationUndefinedRelation
            if name in SQLITE_TRANSIENT_NAMES or SQLITE_TRANSIENT.search(message):
                return DestinationTransientError
            return DestinationTerminalError
        if module.startswith("psycopg2"):
            from loadbay.destinations.postgres.sql_client import PostgresSqlClient

            return PostgresSqlClient.classify(orig)
        return DestinationTerminalError
