"""SQLAlchemy job client: types through SQLAlchemy type objects, compiled by the engine's dialect."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.schema.types import Column
from loadbay.destinations.job_client import SqlJobClient
from loadbay.destinations.load_jobs import InsertValuesJob
from loadbay.destinations.copy_jobs import JsonlCopyJob, ParquetCopyJob
from loadbay.destinations.mysql.job_client import key_problem as mysql_key_problem
from loadbay.destinations.mysql.jobs import JsonlLoadDataJob, ParquetLoadDataJob
from loadbay.destinations.sqlalchemy.jobs import EXECUTEMANY_JOBS, ArrowIpcExecutemanyJob, BulkJob, param_converter
from loadbay.destinations.sqlalchemy.sql_client import SqlalchemySqlClient
from loadbay.destinations.sqlalchemy.sqlite_worker import MIN_ROWS, SqliteLoadWorker, WorkerEnded
from loadbay.destinations.type_mapping import TypeMapper


logger = logging.getLogger(__name__)


class SqlalchemyTypeMapper(TypeMapper):
    """loadbay types → SQLAlchemy types → the dialect's DDL; reflected SQLAlchemy types → loadbay types."""

    SA_TYPES: ClassVar[dict[str, Callable[[], Any]]] = {
        "text": sa.Text, "bigint": sa.BigInteger, "double": sa.Double, "bool": sa.Boolean,
        "timestamp": partial(sa.DateTime, timezone=True), "date": sa.Date, "time": sa.Time,
        "json": sa.JSON, "binary": sa.LargeBinary,
    }
    """loadbay data type → SQLAlchemy type of a column without hints (decimals always take a precision)."""
    NAIVE_TIMESTAMP: ClassVar[Callable[[], Any]] = partial(sa.DateTime, timezone=False)
    """The type of a timestamp column hinted ``timezone=False``."""

    REFLECTED: ClassVar[tuple[tuple[type, str], ...]] = (
        (sa.Boolean, "bool"), (sa.BigInteger, "bigint"), (sa.Integer, "bigint"), (sa.Float, "double"),
        (sa.Numeric, "decimal"), (sa.DateTime, "timestamp"), (sa.Date, "date"), (sa.Time, "time"),
        (sa.JSON, "json"), (sa.LargeBinary, "binary"), (sa.String, "text"),
    )
    """Reflected SQLAlchemy type → loadbay type, first match wins (``Float`` is a ``Numeric``)."""

    def __init__(self, capabilities: Any, dialect: Any = None) -> None:
        super().__init__(capabilities)
        self.dialect = dialect

    def sa_decimal(self, column: Column) -> Any:
        return sa.Numeric(*self.decimal_precision(column))

    def sa_text(self, column: Column) -> Any:
        return sa.String(int(column.precision)) if column.precision else None

    def sa_timestamp(self, column: Column) -> Any:
        return self.NAIVE_TIMESTAMP() if column.timezone is False else None

    SA_HINTED: ClassVar[dict[str, Callable[[Any, Column], Any]]] = {
        "decimal": sa_decimal, "text": sa_text, "timestamp": sa_timestamp,
    }
    """Hooks turning a column's hints into its SQLAlchemy type (None: the ``SA_TYPES`` one), as ``HINTED``."""

    def sqlalchemy_type(self, column: Column) -> Any:
        hook = self.SA_HINTED.get(column.data_type)
        hinted = hook(self, column) if hook is not None else None
        return hinted if hinted is not None else self.SA_TYPES[column.data_type]()

    def to_db_type(self, column: Column) -> exp.DataType:
        compiled = self.sqlalchemy_type(column).compile(dialect=self.dialect)
        # verbatim: the dialect's own name for the type (sqlglot would turn SQLite's BOOLEAN into INTEGER)
        return exp.DataType(this=exp.DataType.Type.USERDEFINED, kind=compiled)

    def from_db_type(self, db_type: Any, precision: Any = None, scale: Any = None) -> tuple[str, dict[str, Any]]:
        """A reflected SQLAlchemy type object (or a type name) back to a loadbay type."""
        if isinstance(db_type, str):
            return super().from_db_type(db_type, precision, scale)
        name = type(db_type).__name__.upper()
        if name == "TINYINT" and getattr(db_type, "display_width", None) == 1:  # MySQL's BOOLEAN
            return "bool", {}
        found = next((data_type for sa_type, data_type in self.REFLECTED if isinstance(db_type, sa_type)), None)
        if found is None:
            found = "binary" if "BLOB" in name or "BINARY" in name else "text"
        return found, {}


class MysqlTypeMapper(SqlalchemyTypeMapper):
    """MySQL/MariaDB: LONGTEXT and LONGBLOB, microsecond DATETIME and TIME, and VARCHAR keys (MySQL cannot
    index TEXT without a prefix)."""

    SA_TYPES: ClassVar[dict[str, Callable[[], Any]]] = {
        **SqlalchemyTypeMapper.SA_TYPES,
        "text": mysql.LONGTEXT, "timestamp": partial(mysql.DATETIME, fsp=6), "time": partial(mysql.TIME, fsp=6),
        "binary": mysql.LONGBLOB,
    }
    NAIVE_TIMESTAMP: ClassVar[Callable[[], Any]] = partial(mysql.DATETIME, fsp=6)
    KEY_VARCHAR_LENGTH = 255
    """Length of a text column that is a primary, merge or unique key."""

    def sa_key_text(self, column: Column) -> Any:
        if column.precision:
            return sa.String(int(column.precision))
        return sa.String(self.KEY_VARCHAR_LENGTH) if column.primary_key or column.merge_key or column.unique else None

    SA_HINTED: ClassVar[dict[str, Callable[[Any, Column], Any]]] = {**SqlalchemyTypeMapper.SA_HINTED, "text": sa_key_text}


TYPE_MAPPERS: dict[str, type[SqlalchemyTypeMapper]] = {"mysql": MysqlTypeMapper}
"""The type mapper of a database family (``SqlalchemySqlClient.family``); any other: the base one."""


class SqlalchemyJobClient(SqlJobClient):
    """Any dialect (SQLite included): rows bound with the driver's ``executemany``."""

    sql_client: SqlalchemySqlClient
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {**EXECUTEMANY_JOBS, "insert_values": InsertValuesJob}
    bulk_jobs: ClassVar[dict[str, type[LoadJob]]] = {}
    """The native destination's job per file format that ``BulkJob`` runs where the driver's bulk path is allowed."""

    def make_type_mapper(self) -> TypeMapper:
        mapper_class = TYPE_MAPPERS.get(self.sql_client.family, SqlalchemyTypeMapper)
        return mapper_class(self.capabilities, self.sql_client.engine.dialect)

    def timestamp_literal(self, column: Column, value: datetime) -> exp.Expression:
        """Where the family keeps timestamps as text (SQLite), the text its jobs bind; else a typed literal."""
        convert = param_converter(column, self.sql_client.family)
        bound = convert(value) if convert is not None else value
        if isinstance(bound, str):
            return exp.Literal.string(bound)
        return super().timestamp_literal(column, value)


class SqliteJobClient(SqlalchemyJobClient):
    """SQLite: large Arrow IPC files loaded beside normalizing go to a worker process with a connection of its own
    (``sqlite_worker``: ``sqlite3`` holds the GIL while it binds rows, so a thread would only take turns with the
    normalizer); everything else loads on this client's connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker = SqliteLoadWorker()
        self.worker_failed: str | None = None
        """Why the worker ended before committing a job: this client's jobs then load on its own connection."""
        self._busy_timeout_ms: int | None = None

    def close(self) -> None:
        try:
            self.worker.close()
        finally:
            super().close()

    def prepare_for_large_files(self) -> None:
        """Start the worker while the first file is still being written (its start and imports take ~0.3 s)."""
        if self._worker_allowed() and self.beside_normalizing:
            try:
                self.worker.start()
            except WorkerEnded as exc:
                logger.debug("%s: files load on the run's connection", exc)

    def _worker_allowed(self) -> bool:
        """Whether this client may send files to a worker at all (the mode, the driver, a file database)."""
        if getattr(self.config, "sqlite_load_worker", "auto") == "never" or self.worker_failed:
            return False
        database = self.config.credentials.database or ""
        return self.sql_client.engine.dialect.driver == "pysqlite" and database not in ("", ":memory:") \
            and not database.startswith("file:")

    def load_with_done_record(self, job: LoadJob, load_id: str) -> None:
        request = self.worker_request(job)
        if request is None:
            super().load_with_done_record(job, load_id)
            return
        statement, params = self.done_record(job, load_id)
        assert isinstance(job, ArrowIpcExecutemanyJob)
        try:
            job.run_in_worker(self, self.worker, request, (self.sql_client.render(statement), params))
        except WorkerEnded as exc:
            if exc.may_have_committed:
                raise  # transient: the retry reads the done-record first
            self.worker_failed = str(exc)
            logger.warning("%s; %s and the rest of this load bind their rows in this process", exc, job.job_file.path.name)
            super().load_with_done_record(job, load_id)

    def worker_request(self, job: LoadJob) -> dict[str, Any] | None:
        """Where the worker finds the database (the main file, the attached dataset files, the busy timeout), if
        ``job`` loads there (``sqlite_load_worker``); None: it loads on this connection."""
        mode = getattr(self.config, "sqlite_load_worker", "auto")
        sql = self.sql_client
        if not isinstance(job, ArrowIpcExecutemanyJob) or sql.recorder is not None or sql.in_transaction \
                or not self._worker_allowed():  # a dry run; a transaction the job belongs in
            return None
        # "auto": any file once a worker runs (started ahead of large files: it costs nothing more); else a large one
        # loaded beside normalizing (its row count read from the file: 20-30 ms the worker would wait for)
        if mode == "auto" and not (self.worker.running or (self.beside_normalizing and job.row_count() >= MIN_ROWS)):
            return None
        files = {str(row[1]): str(row[2]) for row in sql.execute_sql(exp.Pragma(this=exp.var("database_list"))) or []}
        if not files.get("main"):  # an in-memory database: no other connection sees it
            return None
        if self._busy_timeout_ms is None:
            busy = sql.execute_sql(exp.Pragma(this=exp.var("busy_timeout"))) or [(5000,)]
            self._busy_timeout_ms = int(busy[0][0])
        return {"database": files["main"], "busy_timeout_ms": self._busy_timeout_ms,
                "attach": [[name, path] for name, path in files.items() if name not in ("main", "temp") and path]}


class MysqlJobClient(SqlalchemyJobClient):
    """MySQL/MariaDB: the mysql destination's LOAD DATA LOCAL INFILE jobs, executemany where refused; keys as
    the mysql destination declares them."""

    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {**SqlalchemyJobClient.load_jobs, "jsonl": BulkJob, "parquet": BulkJob}
    bulk_jobs: ClassVar[dict[str, type[LoadJob]]] = {"jsonl": JsonlLoadDataJob, "parquet": ParquetLoadDataJob}

    def key_problem(self, columns: list[Column]) -> str | None:
        return mysql_key_problem(columns, MysqlTypeMapper.KEY_VARCHAR_LENGTH)


class PostgresqlJobClient(SqlalchemyJobClient):
    """PostgreSQL: the postgres destination's COPY jobs (psycopg2), executemany with any other driver."""

    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {**SqlalchemyJobClient.load_jobs, "jsonl": BulkJob, "parquet": BulkJob}
    bulk_jobs: ClassVar[dict[str, type[LoadJob]]] = {"jsonl": JsonlCopyJob, "parquet": ParquetCopyJob}


JOB_CLIENTS: dict[str, type[SqlalchemyJobClient]] = {
    "sqlite": SqliteJobClient, "mysql": MysqlJobClient, "mariadb": MysqlJobClient, "postgresql": PostgresqlJobClient,
}
"""The job client of a URL's dialect name (as ``sql_client.FAMILIES``); any other: the base one."""


def job_client_class(dialect_name: str) -> type[SqlalchemyJobClient]:
    return JOB_CLIENTS.get(dialect_name, SqlalchemyJobClient)
