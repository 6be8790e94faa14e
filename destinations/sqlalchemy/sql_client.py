"""SQLAlchemy SQL client: one engine per URL, statements through ``exec_driver_sql``, and errors
classified from the driver's own codes on SQLAlchemy's wrapped exception (``exc.orig``).

What a database family does differently is a small subclass picked by ``FAMILIES`` from the URL's
dialect name: SQLite keeps each dataset in an attached file, MySQL/MariaDB switch databases with
``USE``. Everything else (UTC and session settings, the search path, the locks, the upsert syntax)
comes from the dialect tables in ``loadbay.destinations.statements``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from sqlglot import exp

from loadbay.common.exceptions import DestinationError, DestinationTerminalError, DestinationTransientError
from loadbay.destinations import sqlstate, statements
from loadbay.destinations.sql_client import SqlClient
from loadbay.destinations.statements import Statement

DRIVER_ERRORS: dict[str, Callable[[BaseException], type[DestinationError] | None]] = {
    "pymysql": sqlstate.classify_mysql, "MySQLdb": sqlstate.classify_mysql, "mysql": sqlstate.classify_mysql,
    "sqlite3": sqlstate.classify_sqlite, "psycopg2": sqlstate.classify_psycopg2,
}
"""The classifier of each driver (the top-level module of ``exc.orig``); other drivers' errors are terminal."""

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
    """Any dialect: INFORMATION_SCHEMA datasets, columns by SQLAlchemy reflection."""

    family: ClassVar[str] = ""
    """The database family this class is for (the key of ``FAMILIES``; "" for any other dialect)."""

    @property
    def engine(self) -> Any:
        return engine_for(self.config.credentials, self.config.engine_args)

    def connect(self) -> Any:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.dbapi_paramstyle = self.engine.dialect.paramstyle
        return conn

    # -- statements --------------------------------------------------------------------------
    def execute_text(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
        with self.translating(text):
            conn = self.native_connection
            if params:
                result = conn.exec_driver_sql(text, tuple(params))
            else:
                result = conn.exec_driver_sql(self._escape_percent(text))
            if not result.returns_rows:
                return None
            return [tuple(r) for r in result.fetchall()]

    def execute_many_params(self, statement: Statement, rows: Sequence[tuple[Any, ...]]) -> None:
        """``executemany`` through SQLAlchemy: one statement, many parameter tuples."""
        if rows:
            text = self.render(statement)
            with self.translating(text):
                self.native_connection.exec_driver_sql(text, list(rows))

    def _escape_percent(self, text: str) -> str:
        """Drivers with % placeholders format even a statement without parameters."""
        return text.replace("%", "%%") if self.dbapi_paramstyle in ("format", "pyformat") else text

    def server_version(self) -> tuple[int, ...]:
        return tuple(self.native_connection.dialect.server_version_info or ())

    # -- datasets ----------------------------------------------------------------------------
    def table_columns(self, table_names: Any, staging: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Live columns by SQLAlchemy reflection: (name, SQLAlchemy type, None, None, nullable)."""
        import sqlalchemy

        dataset = self.config.staging_dataset_name if staging else self.dataset_name
        if not table_names or not self.has_dataset(dataset):
            return {}
        inspector = sqlalchemy.inspect(self.native_connection)
        out: dict[str, list[tuple[Any, ...]]] = {}
        existing = set(inspector.get_table_names(schema=dataset))
        json_columns = self.json_columns(dataset)
        for table in table_names:
            if table in existing:
                out[table] = [(c["name"], sqlalchemy.JSON() if (table, c["name"]) in json_columns else c["type"],
                               None, None, c.get("nullable", True))
                              for c in inspector.get_columns(table, schema=dataset)]
        return out

    def json_columns(self, dataset: str) -> set[tuple[str, str]]:
        """Hook: (table, column) pairs that are JSON although reflection says otherwise."""
        return set()

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
        classify_driver = DRIVER_ERRORS.get(type(orig).__module__.split(".")[0]) if orig is not None else None
        found = classify_driver(orig) if classify_driver is not None else None
        return found or DestinationTerminalError


class SqliteSqlClient(SqlalchemySqlClient):
    """SQLite: each dataset is a database file beside the URL's (``main.db`` → ``main__<dataset>.db``),
    attached under the dataset's name; SQLite locks the whole file for every write already."""

    family = "sqlite"

    def after_connect(self) -> None:
        # a pooled connection keeps what an earlier client attached: another pipeline's dataset
        # would answer unqualified names, so only this client's datasets stay attached
        own = {"main", "temp", self.dataset_name, self.config.staging_dataset_name}
        for name in self._attached() - own:
            self.execute_sql(exp.Detach(this=self.identifier(name)))
        for dataset in (self.dataset_name, self.config.staging_dataset_name):
            if self._sqlite_file(dataset).exists():
                self.create_dataset(dataset)

    def _attached(self) -> set[str]:
        return {row[1] for row in self.execute_sql(exp.Pragma(this=exp.var("database_list"))) or []}

    def _sqlite_file(self, dataset: str) -> Path:
        main = Path(self.config.credentials.database or "loadbay.db")
        return main.with_name(f"{main.stem}__{dataset}{main.suffix or '.db'}")

    def has_dataset(self, dataset: str | None = None) -> bool:
        return (dataset or self.dataset_name) in self._attached()

    def create_dataset(self, dataset: str | None = None) -> None:
        name = dataset or self.dataset_name
        if name not in self._attached():
            path = exp.Literal.string(str(self._sqlite_file(name)))
            self.execute_sql(exp.Attach(this=exp.alias_(path, self.identifier(name))))

    def drop_dataset(self, dataset: str | None = None) -> None:
        name = dataset or self.dataset_name
        if self.has_dataset(name):
            self.execute_sql(exp.Detach(this=self.identifier(name)))
        path = self._sqlite_file(name)
        if path.exists():
            os.remove(path)


class MysqlSqlClient(SqlalchemySqlClient):
    """MySQL and MariaDB: a dataset is a database, chosen with ``USE``. The session settings and the
    schema-change lock (a named lock of the session: DDL commits implicitly) are the ``mysql`` entries of
    the tables in ``loadbay.destinations.statements``, shared with the mysql destination."""

    family = "mysql"

    def use_dataset_sql(self, dataset: str | None) -> Statement | None:
        """Until the dataset exists, the URL's database: a pooled connection would otherwise keep an
        earlier client's ``USE``."""
        default = dataset or self.config.credentials.database
        return exp.Use(this=self.identifier(default)) if default else None

    def json_columns(self, dataset: str) -> set[tuple[str, str]]:
        """MariaDB's JSON is LONGTEXT plus a json_valid() check: reflection sees only the LONGTEXT."""
        return statements.json_checked_columns(self.execute_sql(statements.json_checks(), dataset) or [])


FAMILIES: dict[str, type[SqlalchemySqlClient]] = {
    "sqlite": SqliteSqlClient, "mysql": MysqlSqlClient, "mariadb": MysqlSqlClient,
}
"""The client class of a URL's dialect name; any other dialect (PostgreSQL included) is served by the
base class and the dialect tables."""


def sql_client_class(dialect_name: str) -> type[SqlalchemySqlClient]:
    return FAMILIES.get(dialect_name, SqlalchemySqlClient)
