"""SqlClient: one dbapi connection, transactions, rendering, and the error-translation boundary.

Every statement goes through ``execute_sql``/``execute_many``; a driver exception that escapes is
classified by the destination's pure ``classify(exc)`` and re-raised as ``DestinationTerminalError``,
``DestinationTransientError`` or ``DestinationUndefinedRelation`` that keep the driver error as
``.orig`` and the statement as ``.statement``.

A destination's client is a few hooks over this base: ``connect``, ``classify``, the driver's
``dbapi_paramstyle`` and, where the driver has them, the typed driver capabilities ``copy_from``
(COPY FROM STDIN), ``load_data_local`` (LOAD DATA LOCAL INFILE), ``execute_many_params`` (executemany) and
``server_version``, with ``bulk_load_refusal`` saying when the first two cannot be used. What differs by
dialect (UTC, the search path, locks) comes from the tables in ``statements.py``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from types import TracebackType
from typing import IO, Any, ClassVar

from sqlglot import exp

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.destination import DestinationConfig
from loadbay.common.exceptions import DestinationError, DestinationTransientError
from loadbay.destinations import statements as sql
from loadbay.destinations.statements import Statement

MAX_STATEMENT_IN_ERROR = 2000
PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
"""The positional parameter marker of each dbapi paramstyle (named styles are not used by loadbay)."""


def lock_key(name: str) -> int:
    """A signed 64-bit number for ``name``, the same in every process: the key of a database-wide
    named lock (PostgreSQL's advisory locks take one)."""
    return int.from_bytes(hashlib.sha256(f"loadbay:{name}".encode()).digest()[:8], "big", signed=True)


def merge_lock_name(table: exp.Table, dialect: str) -> str:
    """The named session lock concurrent merges into ``table`` take turns on (``SqlClient.merge_locks``)."""
    return f"loadbay-merge:{lock_key(table.sql(dialect=dialect)):x}"


DRY_RUN_READS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "PRAGMA", "EXPLAIN", "ATTACH"})
"""Statements a dry run runs: reads of the catalog and the rows (and SQLite's ATTACH, to read a dataset file)."""
DRY_RUN_CONTROL = frozenset({"BEGIN", "START", "COMMIT", "ROLLBACK"})
"""Statements a dry run runs and lists: the transactions the load would make."""
DRY_RUN_SESSION = frozenset({"SET", "RESET", "USE"})
"""Statements a dry run neither runs nor lists: session settings (a dataset a run would create is not there)."""


class SqlClient(ABC):
    """Wraps one dbapi connection to one dataset (and its staging twin)."""

    recorder: list[str] | None = None
    """A dry run's list: statements that would change the destination are appended, not run."""
    dataset_found: bool | None = None
    """Whether the dataset existed when this connection opened, as far as this client saw it since (its own
    ``create_dataset``/``drop_dataset``); None: not known. Where it is False, reads of what only this run could have
    written there (its packages' ``_lb_loads`` records) need no statement. A destination that learns it while
    connecting sets it (Spark's ``USE``); ``close`` and ``forget_catalog`` forget it. ``create_dataset`` and
    ``drop_dataset`` update it as they run, so only a destination whose DDL is not transactional may track it
    (a rolled-back CREATE SCHEMA would leave it True)."""

    dbapi_paramstyle: str = "qmark"
    """How ``execute_sql`` params are written in SQL text: the driver's own paramstyle."""
    SESSION_SETTINGS: ClassVar[tuple[tuple[str, str | exp.Expression], ...]] = ()
    """``SET SESSION name = value`` run after every (re)connect, besides the dialect's UTC time zone."""

    def __init__(self, config: DestinationConfig, capabilities: DestinationCapabilities) -> None:
        self.config = config
        self.capabilities = capabilities
        self.dialect = capabilities.sqlglot_dialect
        self.dataset_name = config.dataset_name
        self._conn: Any = None
        self.in_transaction = False

    # -- connection ------------------------------------------------------------------------------
    @abstractmethod
    def connect(self) -> Any:
        """Open and return a dbapi connection in autocommit mode."""

    def after_connect(self) -> None:
        """Session settings after every (re)connect: UTC and the dialect's settings (``statements.session_setup``),
        ``SESSION_SETTINGS``, the dataset on the search path."""
        settings = [sql.set_variable(name, value, session=True) for name, value in self.SESSION_SETTINGS]
        self.execute_many([*sql.session_setup(self.dialect), *settings])
        self.use_dataset()

    def open(self) -> SqlClient:
        if self._conn is None:
            try:
                self._conn = self.connect()
            except Exception as exc:  # translated like any statement: a refused connection is transient
                raise self.translate(exc, None) from exc
            self.after_connect()
        return self

    def close(self) -> None:
        self.forget_catalog()
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
                self.in_transaction = False

    def forget_catalog(self) -> None:
        """Forget what this client knows of the catalog (``dataset_found``): another process may have changed it
        since. Called when the connection closes and when a kept connection serves a new run."""
        self.dataset_found = None

    def reconnect(self) -> None:
        """Drop a connection that may be dead and open a fresh one (used before a retry)."""
        try:
            self.close()
        except Exception:  # noqa: BLE001 - the old connection is gone either way
            self._conn = None
        self.open()

    def __enter__(self) -> SqlClient:
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def native_connection(self) -> Any:
        if self._conn is None:
            self.open()
        return self._conn

    # -- statements ------------------------------------------------------------------------------
    def render(self, statement: Statement) -> str:
        """SQL text of a sqlglot expression (or ``raw()``) in this destination's dialect, parameters
        written in the driver's style. A plain string is refused: see ``statements.render``."""
        return sql.render(statement, self.dialect, self.placeholder())

    def execute_sql(self, statement: Statement | str, *params: Any) -> list[tuple[Any, ...]] | None:
        """Run one statement; returns its rows when it produces any (a SELECT), else None.

        loadbay's own statements are expressions or ``raw()``; a string is the caller's own SQL
        (``p.sql_client()`` users, tests), run exactly as written.
        """
        text = statement if isinstance(statement, str) else self.render(statement)
        return self.execute_text(text, params)

    def execute_text(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
        """The driver call for one rendered statement, inside the translation boundary."""
        if self._only_recorded(text):
            return None
        with self.translating(text), self.cursor() as cursor:
            cursor.execute(text, tuple(params)) if params else cursor.execute(text)
            if cursor.description is None:
                return None
            return [tuple(r) for r in cursor.fetchall()]

    def execute_many(self, statements: Sequence[Statement]) -> list[str]:
        """Run each statement (no parameters), in order; returns the SQL text run."""
        texts = [self.render(s) for s in statements]
        for text in texts:
            self.execute_text(text)
        return texts

    def _only_recorded(self, text: str) -> bool:
        """In a dry run (``recorder`` set): note ``text`` and say whether to skip it. Reads, session settings
        and transaction control run (the plan needs the live catalog); whatever would change the destination
        is only noted."""
        if self.recorder is None:
            return False
        keyword = text.lstrip("( \n").split(None, 1)[0].upper() if text.strip() else ""
        if keyword in DRY_RUN_READS:
            return False
        if keyword in DRY_RUN_SESSION:
            return True
        self.recorder.append(text)
        return keyword not in DRY_RUN_CONTROL

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A dbapi cursor on the connection, closed after use."""
        cursor = self.native_connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    # -- driver capabilities -----------------------------------------------------------------------
    def execute_many_params(self, statement: Statement, rows: Iterable[tuple[Any, ...]]) -> None:
        """One statement, many parameter tuples: the dbapi ``executemany``. ``rows`` may be an iterator
        (``zip`` over columns): a driver that binds one row at a time then never holds them all."""
        text = self.render(statement)
        if self._only_recorded(text):
            return
        with self.translating(text), self.cursor() as cursor:
            cursor.executemany(text, rows)

    def copy_from(self, statement: Statement, stream: IO[bytes]) -> None:
        """``COPY ... FROM STDIN`` fed from a binary file object, streamed (never all in memory).
        Only drivers with a COPY protocol have it (psycopg2); load jobs that call it belong to them."""
        raise NotImplementedError(f"{type(self).__name__}: the driver has no COPY FROM STDIN")

    def load_data_local(self, statement: Statement) -> bool:
        """``LOAD DATA LOCAL INFILE``: the driver streams the file the statement names (never all in memory);
        False when it did not run (a dry run: no warnings to read). Only drivers that can (pymysql opened
        with ``local_infile``); load jobs that call it belong to them."""
        raise NotImplementedError(f"{type(self).__name__}: the driver has no LOAD DATA LOCAL INFILE")

    def bulk_load_refusal(self) -> str | None:
        """Why this connection cannot take its driver's bulk path (``copy_from``, ``load_data_local``), for a
        destination that then binds rows with ``execute_many_params`` instead; None when it can. A native
        destination's bulk path is its only one: a refusal there fails the job, saying what to do."""
        return None

    def server_version(self) -> tuple[int, ...]:
        """The server's version, e.g. ``(15, 4)``; asked only where SQL depends on it (``MERGE``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot tell its server's version")

    # -- errors ------------------------------------------------------------------------------------
    @contextmanager
    def translating(self, statement: str | None) -> Iterator[None]:
        """The one place driver errors become loadbay errors."""
        try:
            yield
        except DestinationError:
            raise
        except Exception as exc:
            raise self.translate(exc, statement) from exc

    def translate(self, exc: BaseException, statement: str | None) -> DestinationError:
        cls = self.classify(exc)
        if cls is None:
            raise exc  # not a database error: a bug, let it surface as it is
        shown = statement if statement is None or len(statement) <= MAX_STATEMENT_IN_ERROR else (
            statement[:MAX_STATEMENT_IN_ERROR] + " ...")
        message = self.error_text(exc)
        if shown:
            message += f"\n  while running: {shown}"
        return cls(message, orig=exc, statement=statement)

    @staticmethod
    def error_text(exc: BaseException) -> str:
        """The driver's message, kept short (some drivers repeat the whole statement in it)."""
        text = f"{type(exc).__name__}: {str(exc).strip()}"
        return text if len(text) <= MAX_STATEMENT_IN_ERROR else text[:MAX_STATEMENT_IN_ERROR] + " ..."

    @staticmethod
    @abstractmethod
    def classify(exc: BaseException) -> type[DestinationError] | None:
        """Terminal, transient or undefined relation for a driver exception; None for non-driver errors."""

    # -- transactions ----------------------------------------------------------------------------
    @contextmanager
    def begin_transaction(self) -> Iterator[SqlClient]:
        """BEGIN ... COMMIT, ROLLBACK on any error; nested use joins the outer transaction."""
        if self.in_transaction or not self.capabilities.supports_transactions:
            yield self
            return
        self.execute_sql(exp.Transaction())
        self.in_transaction = True
        try:
            yield self
        except BaseException:
            self.in_transaction = False
            try:
                self.execute_sql(exp.Rollback())
            except DestinationError:
                pass  # the connection may be gone; the server rolls back on disconnect
            raise
        self.in_transaction = False
        self.execute_sql(exp.Commit())

    @contextmanager
    def schema_change_lock(self) -> Iterator[None]:
        """Around DDL that reads the live schema and then changes it (create dataset, create or alter
        tables). Pipelines loading one dataset at once would otherwise both see a column missing and
        both add it. Where the dialect has a transaction-scoped lock (PostgreSQL's advisory lock,
        ``statements.XACT_LOCK_FUNCTION``), one transaction holds it, keyed by the dataset; where it has
        a named lock of the session (MySQL's ``GET_LOCK``, ``statements.SESSION_LOCK_FUNCTIONS``: DDL
        commits there, so no transaction could hold a lock), the session takes and releases it; elsewhere
        no lock is taken (SQLite and DuckDB lock the whole file for every write)."""
        lock = sql.xact_lock(self.dialect)
        if lock is not None:
            with self.begin_transaction():
                self.execute_sql(lock, lock_key(self.dataset_name))
                yield
            return
        with self.session_locks([f"loadbay:{lock_key(self.dataset_name):x}"], sql.SESSION_LOCK_TIMEOUT,
                                f"dataset {self.dataset_name!r}: another pipeline held the schema-change lock"):
            yield

    @contextmanager
    def merge_locks(self, tables: Sequence[exp.Table]) -> Iterator[None]:
        """Around the final transaction of a package that merges into ``tables``, where the dialect has no
        table locks but named session locks (MySQL/MariaDB): concurrent merges into one table take turns.
        InnoDB's row locks alone keep them correct, but two merges of overlapping keys then wait on each
        other's rows statement by statement (lock-wait timeouts, deadlocks, minutes instead of seconds)."""
        names = sorted(merge_lock_name(t, self.dialect) for t in tables)  # one order for all: no deadlock
        with self.session_locks(names, sql.MERGE_LOCK_TIMEOUT, "another pipeline was merging into the same tables"):
            yield

    @contextmanager
    def session_locks(self, names: Sequence[str], timeout_seconds: int, waited_for: str) -> Iterator[None]:
        """Named session locks (``statements.SESSION_LOCK_FUNCTIONS``), taken in the given order and all
        released after; nothing where the dialect has none. Not got in time: a transient error."""
        named = sql.session_lock(self.dialect, timeout_seconds)
        if named is None or not names:
            yield
            return
        acquire, release = named
        held: list[str] = []
        try:
            for name in names:
                got = self.execute_sql(acquire, name)
                if not got or got[0][0] != 1:
                    raise DestinationTransientError(f"{waited_for} ({name!r}) for {timeout_seconds} s")
                held.append(name)
            yield
        except BaseException:
            for name in reversed(held):  # the error in flight is the one to report; a lost session frees them
                with suppress(Exception):
                    self.execute_sql(release, name)
            raise
        for name in reversed(held):
            self.execute_sql(release, name)

    def refresh_statistics(self, tables: Sequence[exp.Table]) -> None:
        """Before the final transaction of a merge: fresh optimizer statistics of the tables it writes,
        where the dialect needs them (``statements.ANALYZE_BEFORE_MERGE``)."""
        statement = sql.analyze_tables(tables, self.dialect)
        if statement is not None:
            self.execute_sql(statement)

    def lock_tables(self, tables: Sequence[exp.Table]) -> None:
        """Inside the final transaction: concurrent merges into these tables wait for each other, where
        the dialect has table locks (``statements.TABLE_LOCK_MODE``)."""
        statement = sql.lock_tables(tables, self.dialect)
        if statement is not None:
            self.execute_sql(statement)

    # -- names -----------------------------------------------------------------------------------
    @staticmethod
    def identifier(name: str) -> exp.Identifier:
        return exp.to_identifier(name, quoted=True)

    def qualified(self, table_name: str, staging: bool = False) -> exp.Table:
        dataset = self.config.staging_dataset_name if staging else self.dataset_name
        return exp.Table(this=self.identifier(table_name), db=self.identifier(dataset))

    def quoted(self, table_name: str, staging: bool = False) -> str:
        return self.render(self.qualified(table_name, staging))

    def placeholder(self) -> str:
        """The positional parameter marker of the driver."""
        return PLACEHOLDERS[self.dbapi_paramstyle]

    # -- datasets --------------------------------------------------------------------------------
    def has_dataset(self, dataset: str | None = None) -> bool:
        return bool(self.execute_sql(sql.dataset_exists(dialect=self.dialect), dataset or self.dataset_name))

    def ensure_dataset(self) -> None:
        """Create the dataset unless it exists (before its system tables)."""
        if not self.has_dataset():
            self.create_dataset()

    def create_dataset(self, dataset: str | None = None) -> None:
        self.execute_sql(sql.create_dataset(self.identifier(dataset or self.dataset_name)))
        if dataset in (None, self.dataset_name):
            if self.dataset_found is not None and self.recorder is None:  # tracked, and not only noted (a dry run)
                self.dataset_found = True
            statement = self.use_dataset_sql(self.dataset_name)  # it exists now: no need to ask
            if statement is not None:
                self.execute_sql(statement)

    def drop_dataset(self, dataset: str | None = None) -> None:
        self.execute_sql(sql.drop_dataset(self.identifier(dataset or self.dataset_name), self.dialect))
        if dataset in (None, self.dataset_name) and self.dataset_found is not None and self.recorder is None:
            self.dataset_found = False

    def use_dataset(self) -> None:
        """Unqualified names resolve to the dataset once it exists (after connecting and creating it)."""
        statement = self.use_dataset_sql(self.dataset_name if self.has_dataset() else None)
        if statement is not None:
            self.execute_sql(statement)

    def use_dataset_sql(self, dataset: str | None) -> Statement | None:
        """Hook: the statement that puts ``dataset`` on the search path, or None for nothing to run;
        ``dataset`` is None while the dataset does not exist. By default the dialect's
        (``statements.USE_DATASET``)."""
        return None if dataset is None else sql.use_dataset(self.identifier(dataset), self.dialect)

    def table_columns(self, table_names: Sequence[str], staging: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Live columns per table: (name, data_type, precision, scale, is_nullable) as INFORMATION_SCHEMA has them."""
        if not table_names:
            return {}
        dataset = self.config.staging_dataset_name if staging else self.dataset_name
        rows = self.execute_sql(sql.live_columns(len(table_names), self.dialect), dataset, *table_names) or []
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table, *rest in rows:
            out.setdefault(table, []).append(tuple(rest))
        return out
