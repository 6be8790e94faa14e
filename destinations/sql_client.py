"""SqlClient: one dbapi connection, transactions, rendering, and the error-translation boundary.

Every statement goes through ``execute_sql``/``execute_fragments``; a driver exception that
escapes is classified by the destination's pure ``classify(exc)`` and re-raised as
``DestinationTerminalError``, ``DestinationTransientError`` or ``DestinationUndefinedRelation``
that keep the driver error as ``.orig`` and the statement as ``.statement``.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any

from sqlglot import exp

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.destination import DestinationConfig
from loadbay.common.exceptions import DestinationError

MAX_STATEMENT_IN_ERROR = 2000


def lock_key(name: str) -> int:
    """A signed 64-bit number for ``name``, the same in every process: the key of a database-wide
    named lock (PostgreSQL's advisory locks take one)."""
    return int.from_bytes(hashlib.sha256(f"loadbay:{name}".encode()).digest()[:8], "big", signed=True)


class SqlClient(ABC):
    """Wraps one dbapi connection to one dataset (and its staging twin)."""

    dbapi_paramstyle: str = "qmark"
    """How ``execute_sql`` params are written in SQL text: the driver's own paramstyle."""
    begin_sql: str = "BEGIN TRANSACTION"
    """The statement that opens a transaction (MySQL says START TRANSACTION)."""

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
        """Session settings (time zone UTC, search path); runs after every (re)connect."""

    def open(self) -> SqlClient:
        if self._conn is None:
            try:
                self._conn = self.connect()
            except Exception as exc:  # translated like any statement: a refused connection is transient
                raise self.translate(exc, None) from exc
            self.after_connect()
        return self

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
                self.in_transaction = False

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
    def render(self, expression: exp.Expression | str) -> str:
        """SQL text of a sqlglot expression in this destination's dialect."""
        if isinstance(expression, str):
            return expression
        return expression.sql(dialect=self.dialect)

    def execute_sql(self, sql: exp.Expression | str, *params: Any) -> list[tuple[Any, ...]] | None:
        """Run one statement; returns its rows when it produces any (a SELECT), else None."""
        text = self.render(sql)
        with self.translating(text), self.cursor() as cursor:
            cursor.execute(text, params) if params else cursor.execute(text)
            if cursor.description is None:
                return None
            return [tuple(r) for r in cursor.fetchall()]

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A dbapi cursor on the connection, closed after use."""
        cursor = self.native_connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def execute_many(self, statements: Sequence[exp.Expression | str]) -> None:
        for statement in statements:
            self.execute_sql(statement)

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
        self.execute_sql(self.begin_sql)
        self.in_transaction = True
        try:
            yield self
        except BaseException:
            self.in_transaction = False
            try:
                self.execute_sql("ROLLBACK")
            except DestinationError:
                pass  # the connection may be gone; the server rolls back on disconnect
            raise
        self.in_transaction = False
        self.execute_sql("COMMIT")

    @contextmanager
    def schema_change_lock(self) -> Iterator[None]:
        """Around DDL that reads the live schema and then changes it (create dataset, create or alter
        tables). Pipelines loading one dataset at once would otherwise both see a column missing and
        both add it; a database whose DDL races fail terminally overrides this with a lock (PostgreSQL:
        an advisory lock per dataset, held until the transaction ends). The default takes no lock."""
        yield

    # -- names -----------------------------------------------------------------------------------
    @staticmethod
    def identifier(name: str) -> exp.Identifier:
        return exp.to_identifier(name, quoted=True)

    def qualified(self, table_name: str, staging: bool = False) -> exp.Table:
        dataset = self.config.staging_dataset_name if staging else self.dataset_name
        return exp.Table(this=self.identifier(table_name), db=self.identifier(dataset))

    def quoted(self, table_name: str, staging: bool = False) -> str:
        return self.render(self.qualified(table_name, staging))

    # -- datasets --------------------------------------------------------------------------------
    def has_dataset(self, dataset: str | None = None) -> bool:
        rows = self.execute_sql(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = " + self.placeholder(),
            dataset or self.dataset_name)
        return bool(rows)

    def create_dataset(self, dataset: str | None = None) -> None:
        name = self.identifier(dataset or self.dataset_name)
        self.execute_sql(exp.Create(kind="SCHEMA", this=exp.Table(db=name), exists=True))

    def drop_dataset(self, dataset: str | None = None) -> None:
        name = self.identifier(dataset or self.dataset_name)
        self.execute_sql(exp.Drop(kind="SCHEMA", tables=[exp.Table(db=name)], exists=True, cascade=True))

    def placeholder(self) -> str:
        """The positional parameter marker of the driver (named styles are not used by loadbay)."""
        return {"qmark": "?", "format": "%s", "pyformat": "%s"}[self.dbapi_paramstyle]

    def table_columns(self, table_names: Sequence[str], staging: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Live columns per table: (name, data_type, precision, scale, is_nullable) from INFORMATION_SCHEMA."""
        if not table_names:
            return {}
        dataset = self.config.staging_dataset_name if staging else self.dataset_name
        p = self.placeholder()
        marks = ",".join(p for _ in table_names)
        rows = self.execute_sql(
            "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable "
            f"FROM information_schema.columns WHERE table_schema = {p} AND table_name IN ({marks}) "
            "ORDER BY table_name, ordinal_position",
            dataset, *table_names) or []
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table, *rest in rows:
            out.setdefault(table, []).append(tuple(rest))
        return out

