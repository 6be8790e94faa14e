"""SQLAlchemy SQL client: one engine per URL, statements through ``exec_driver_sql``, and errors
classified from the driver's own codes on SQLAlchemy's wrapped exception (``exc.orig``).

What a database family does differently is a small subclass picked by ``FAMILIES`` from the URL's
dialect name: SQLite keeps each dataset in an attached file, MySQL/MariaDB switch databases with
``USE``. Everything else (UTC and session settings, the search path, the locks, the upsert syntax)
comes from the dialect tables in ``loadbay.destinations.statements``.

Bulk loads go through the raw dbapi connection under the engine's (``cursor``): ``executemany`` on the
driver's own cursor, and the typed driver methods the native destinations' clients have, shared with them
by inheritance: ``copy_from`` (psycopg2's ``copy_expert``, the PostgreSQL family) and ``load_data_local``
(pymysql's LOAD DATA LOCAL INFILE, the MySQL family, whose engine opens its connections with
``local_infile``). ``bulk_load_refusal`` tells the load jobs when they cannot be used.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlglot import exp

from loadbay.common.exceptions import DestinationError, DestinationTerminalError, DestinationTransientError
from loadbay.destinations import sqlstate, statements
from loadbay.destinations.copy_jobs import Psycopg2CopyClient
from loadbay.destinations.mysql.sql_client import LocalInfileClient
from loadbay.destinations.sql_client import SqlClient
from loadbay.destinations.statements import Statement

logger = logging.getLogger(__name__)

DRIVER_ERRORS: dict[str, Callable[[BaseException], type[DestinationError] | None]] = {
    "pymysql": sqlstate.classify_mysql, "MySQLdb": sqlstate.classify_mysql, "mysql": sqlstate.classify_mysql,
    "sqlite3": sqlstate.classify_sqlite, "psycopg2": sqlstate.classify_psycopg2,
}
"""The classifier of each driver (the top-level module of ``exc.orig``); other drivers' errors are terminal."""

_engines: dict[tuple[str, str], Any] = {}
_engines_lock = threading.Lock()
_refusals_told: set[tuple[str, str | None]] = set()
"""(URL, reason) of each bulk-path refusal already logged: one warning per server and reason in a process,
however many clients (runs, load workers) decide it."""


def engine_for(credentials: Any, engine_args: dict[str, Any],
               on_connect: Callable[[Any], Any] | None = None) -> Any:
    """One engine (and its pool) per URL and options, shared by every client in the process; ``on_connect``
    gets each new dbapi connection (the URL's family is the same for every client, so is its hook)."""
    import sqlalchemy

    url = credentials.url()
    key = (url.render_as_string(hide_password=False), repr(sorted(engine_args.items())))
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = sqlalchemy.create_engine(url, **engine_args)
            if on_connect is not None:
                sqlalchemy.event.listen(engine, "connect", lambda dbapi_connection, record: on_connect(dbapi_connection))
        return engine


class SqlalchemySqlClient(SqlClient):
    """Any dialect: INFORMATION_SCHEMA datasets, columns by SQLAlchemy reflection."""

    family: ClassVar[str] = ""
    """The database family this class is for (the key of ``FAMILIES``; "" for any other dialect)."""
    DRIVER_CONNECT_ARGS: ClassVar[dict[str, dict[str, Any]]] = {}
    """``connect_args`` the engine passes to each driver (by ``dialect.driver``) unless the user's
    ``engine_args`` set them: what the family's bulk path needs from the connection."""

    @property
    def engine(self) -> Any:
        return engine_for(self.config.credentials, self.engine_args(), self.on_connect)

    @staticmethod
    def on_connect(dbapi_connection: Any) -> None:
        """Hook: settings of each new dbapi connection of the engine, before the pool hands it out."""

    def engine_args(self) -> dict[str, Any]:
        """The configured ``engine_args``, with ``DRIVER_CONNECT_ARGS`` under the user's own ``connect_args``."""
        args = dict(self.config.engine_args)
        driver = self.config.credentials.drivername.partition("+")[2] or self.default_driver()
        defaults = self.DRIVER_CONNECT_ARGS.get(driver)
        if defaults:
            args["connect_args"] = {**defaults, **args.get("connect_args", {})}
        return args

    def default_driver(self) -> str:
        """The driver of a URL that names none (``mysql://``): SQLAlchemy's default for the dialect."""
        from sqlalchemy.engine import make_url

        return str(make_url(self.config.credentials.url()).get_dialect().driver)

    def connect(self) -> Any:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.dbapi_paramstyle = self.engine.dialect.paramstyle
        return conn

    # -- statements --------------------------------------------------------------------------
    def execute_text(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
        if self._only_recorded(text):
            return None
        with self.translating(text):
            conn = self.native_connection
            if params:
                result = conn.exec_driver_sql(text, tuple(params))
            else:
                result = conn.exec_driver_sql(self._escape_percent(text))
            if not result.returns_rows:
                return None
            return [tuple(r) for r in result.fetchall()]

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor of the raw dbapi connection under the engine's: the base's ``execute_many_params`` (the
        driver's own ``executemany``, with nothing of SQLAlchemy's per-row work) and the bulk methods use it."""
        cursor = self.native_connection.connection.dbapi_connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def _escape_percent(self, text: str) -> str:
        """Drivers with % placeholders format even a statement without parameters."""
        return text.replace("%", "%%") if self.dbapi_paramstyle in ("format", "pyformat") else text

    def server_version(self) -> tuple[int, ...]:
        return tuple(self.native_connection.dialect.server_version_info or ())

    def refresh_statistics(self, tables: Any) -> None:
        """Not on MySQL before 8.0.24 (see the mysql destination's); MariaDB and other dialects as the base."""
        dialect = self.native_connection.dialect
        if self.dialect != "mysql" or getattr(dialect, "is_mariadb", False) or self.server_version() >= (8, 0, 24):
            super().refresh_statistics(tables)

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

        if not isinstance(exc, sa_exc.SQLAlchemyError):  # raised on the raw dbapi connection (``cursor``)
            classify_raw = DRIVER_ERRORS.get(type(exc).__module__.split(".")[0])
            if classify_raw is None:
                return None
            return classify_raw(exc) or DestinationTerminalError
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


class MysqlSqlClient(LocalInfileClient, SqlalchemySqlClient):
    """MySQL and MariaDB: a dataset is a database, chosen with ``USE``. The session settings and the
    schema-change lock (a named lock of the session: DDL commits implicitly) are the ``mysql`` entries of
    the tables in ``loadbay.destinations.statements``, shared with the mysql destination, and so is
    ``load_data_local`` (pymysql connections are opened with ``local_infile``)."""

    family = "mysql"
    DRIVER_CONNECT_ARGS: ClassVar[dict[str, dict[str, Any]]] = {
        "pymysql": {"local_infile": True, "program_name": "loadbay"}}

    def __init__(self, config: Any, capabilities: Any) -> None:
        super().__init__(config, capabilities)
        self._bulk_decided = False
        self._bulk_refusal: str | None = None

    @staticmethod
    def on_connect(dbapi_connection: Any) -> None:
        """A pymysql connection sends no local file but inside ``load_data_local`` (``refuse_local_files``)."""
        if type(dbapi_connection).__module__.startswith("pymysql"):
            LocalInfileClient.refuse_local_files(dbapi_connection)

    def local_files_connection(self) -> Any:
        """The pymysql connection under the pool's wrapper."""
        return self.native_connection.connection.dbapi_connection

    def bulk_load_refusal(self) -> str | None:
        """Decided once per client, warned once per server and reason (``_refusals_told``): pymysql, opened with
        ``local_infile``, on a server with ``@@GLOBAL.local_infile`` on."""
        if not self._bulk_decided:
            self._bulk_refusal = self._local_infile_refusal()
            self._bulk_decided = True
            where = self.engine.url.render_as_string(hide_password=True)
            with _engines_lock:
                first = self._bulk_refusal is not None and (where, self._bulk_refusal) not in _refusals_told
                _refusals_told.add((where, self._bulk_refusal))
            if first:
                logger.warning("%s: LOAD DATA LOCAL INFILE cannot be used: %s; loading with executemany instead "
                               "(several times slower)", where, self._bulk_refusal)
        return self._bulk_refusal

    def _local_infile_refusal(self) -> str | None:
        driver = self.engine.dialect.driver
        if driver != "pymysql":
            return f"the {driver} driver (loadbay turns local_infile on for pymysql only)"
        from pymysql.constants import CLIENT

        if not self.local_files_connection().client_flag & CLIENT.LOCAL_FILES:
            return "the connection was opened without local_infile (engine_args connect_args local_infile=False)"
        if not (self.execute_sql(statements.global_variable("local_infile")) or [(0,)])[0][0]:
            return "the server has local_infile=OFF (SET GLOBAL local_infile=ON, or local_infile=1 in its configuration)"
        return None

    def use_dataset_sql(self, dataset: str | None) -> Statement | None:
        """Until the dataset exists, the URL's database: a pooled connection would otherwise keep an
        earlier client's ``USE``."""
        default = dataset or self.config.credentials.database
        return exp.Use(this=self.identifier(default)) if default else None

    def json_columns(self, dataset: str) -> set[tuple[str, str]]:
        """MariaDB's JSON is LONGTEXT plus a json_valid() check: reflection sees only the LONGTEXT."""
        return statements.json_checked_columns(self.execute_sql(statements.json_checks(), dataset) or [])


class PostgresqlSqlClient(Psycopg2CopyClient, SqlalchemySqlClient):
    """PostgreSQL: everything from the dialect tables, and ``copy_from`` (psycopg2's COPY FROM STDIN, shared
    with the postgres destination) when the driver is psycopg2."""

    family = "postgresql"
    DRIVER_CONNECT_ARGS: ClassVar[dict[str, dict[str, Any]]] = {"psycopg2": {"application_name": "loadbay"}}
    """The server shows loadbay's sessions by name, as the postgres destination's."""

    def bulk_load_refusal(self) -> str | None:
        driver = self.engine.dialect.driver
        return None if driver == "psycopg2" else f"the {driver} driver has no COPY FROM STDIN that loadbay uses"


FAMILIES: dict[str, type[SqlalchemySqlClient]] = {
    "sqlite": SqliteSqlClient, "mysql": MysqlSqlClient, "mariadb": MysqlSqlClient,
    "postgresql": PostgresqlSqlClient,
}
"""The client class of a URL's dialect name; any other dialect is served by the base class and the dialect
tables."""


def sql_client_class(dialect_name: str) -> type[SqlalchemySqlClient]:
    return FAMILIES.get(dialect_name, SqlalchemySqlClient)
