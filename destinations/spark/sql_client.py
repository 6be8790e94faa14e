"""Spark SQL client on impyla (the Thrift JDBC/ODBC server's HiveServer2 protocol): a dataset is a Spark
database; the live schema comes from ``SHOW TABLES`` and ``DESCRIBE TABLE``; errors by Spark error class.

The Thrift protocol has no bind parameters (every driver for it interpolates them into the text), so
loadbay's own statements get their values as sqlglot literals (``spark_literal``) before rendering, never
through a driver's string escaping.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

from sqlglot import exp

from loadbay.common.exceptions import DestinationError, DestinationUndefinedRelation
from loadbay.destinations.sql_client import SqlClient
from loadbay.destinations.sqlstate import classify_impyla
from loadbay.destinations.statements import Statement, raw

JSON_COMMENT = "loadbay:json"
"""The column comment that marks a STRING column as loadbay's json (JSON text): ``DESCRIBE TABLE`` shows it, and
Spark keeps it through CREATE TABLE ... AS SELECT, so the live schema tells json from text."""

SESSION_SETTINGS: dict[str, str] = {
    "set:hiveconf:spark.sql.session.timeZone": "UTC",
    "set:hiveconf:spark.sql.timeType.enabled": "true",
}
"""Sent with the session's opening (HiveServer2 ``OpenSession``), not as statements: UTC for the session, and
Spark's TIME type on (off by default in Spark 4: without it a parquet ``time`` column cannot even be read). Each
``SET`` statement would be a round trip of its own on every connection."""

ROW_STATEMENTS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES", "FROM", "TABLE", "SET"})
"""Statements whose results are fetched. impyla gives every Spark command a one-column description
(``Result``) with no column behind it, and fails fetching it: commands are run, not fetched."""


class WaitingSession:
    """impyla's server session, asking the server to run a statement before it answers (``runAsync`` false) unless it
    moves data (``wait`` false: ``moves_data``).

    impyla's cursor always asks for a statement in the background, then polls its state with sleeps of 10 ms, 50 ms
    past 50 ms and longer past a second: a metadata statement of ~10 ms waited up to 50 ms past its end. The Thrift
    server runs a statement within the request that is not asked to run in the background, so the answer comes when
    it ends. Statements that move data (an ``INSERT ... SELECT``, a CTAS) still run in the background: the server
    cancels a background statement when its session's connection drops (a killed process, a broken socket), where
    it would finish one run within the request, so an INSERT whose client is gone could land after a retry had
    loaded the file again. Errors of a waited statement come as ``HiveServer2Error`` rather than
    ``OperationalError``, with the same text (``classify_impyla`` reads the text)."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.wait = True
        """Whether the next statement runs within the request (set per statement by ``execute_text``)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def execute(self, statement: str, configuration: dict[str, str] | None = None, run_async: bool = False) -> Any:
        return self._session.execute(statement, configuration, run_async=not self.wait)


_SELECT = re.compile(r"\bSELECT\b", re.IGNORECASE)


def transport_socket(connection: Any) -> socket.socket | None:
    """The TCP socket under an impyla connection (thrift's ``TSocket``, under a SASL or buffered transport); None
    over HTTP, whose transport keeps no socket between requests."""
    transport = getattr(getattr(getattr(connection, "service", None), "client", None), "_iprot", None)
    transport = getattr(transport, "trans", None)
    for _ in range(3):
        handle = getattr(transport, "handle", None)
        if isinstance(handle, socket.socket):
            return handle
        transport = getattr(transport, "_trans", None) or getattr(transport, "_TBufferedTransport__trans", None)
    return None


def moves_data(keyword: str, text: str) -> bool:
    """Whether a statement reads or writes rows in bulk: an INSERT or CREATE with a query in it. A VALUES insert of a
    record whose text happens to hold the word counts too, which only costs it the background run's polling."""
    return keyword in ("INSERT", "CREATE") and _SELECT.search(text) is not None


def spark_literal(value: Any) -> exp.Expression:
    """``value`` as a Spark SQL literal of its type: timestamps as UTC instants (``TIMESTAMP``), naive ones as
    ``TIMESTAMP_NTZ``, bytes through ``UNHEX``, NaN and infinities as casts of their names.

    >>> spark_literal(datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc)).sql("spark")
    "CAST('2024-01-02 03:04:05.000006+00:00' AS TIMESTAMP)"
    """
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return exp.Literal.number(repr(value))
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return exp.cast(exp.Literal.string(name), "DOUBLE")
    if isinstance(value, Decimal):
        return exp.cast(exp.Literal.string(str(value)), "DECIMAL(38, {})".format(max(0, -value.as_tuple().exponent)))
    if isinstance(value, str):
        return exp.Literal.string(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return exp.Unhex(this=exp.Literal.string(bytes(value).hex()))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP_NTZ", dialect="spark"))
        return exp.cast(exp.Literal.string(value.astimezone(timezone.utc).isoformat(sep=" ")),
                        exp.DataType.build("TIMESTAMP", dialect="spark"))
    if isinstance(value, date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, time):
        return exp.Literal.string(value.isoformat())
    raise TypeError(f"no Spark literal for a {type(value).__name__}: {value!r}")


def bind_literals(statement: exp.Expression, params: Sequence[Any]) -> exp.Expression:
    """``statement`` with its placeholders, in the order they are written, replaced by ``params`` as literals."""
    statement = statement.copy()
    placeholders = list(statement.find_all(exp.Placeholder, bfs=False))
    if len(placeholders) != len(params):
        raise ValueError(f"{len(params)} parameters for {len(placeholders)} placeholders")
    for placeholder, value in zip(placeholders, params):
        placeholder.replace(spark_literal(value))
    return statement


class SparkSqlClient(SqlClient):
    """Each dataset a Spark database (``CREATE SCHEMA``), in the session catalog of the Thrift server."""

    dbapi_paramstyle = "format"
    _listed: tuple[str, set[str]] | None = None
    """(dataset, its tables) as ``ensure_dataset``'s ``SHOW TABLES`` just found them, for the ``table_names`` call that
    follows it; any statement run in between drops it (``execute_text``)."""
    _session: Any = None
    """The connection's one impyla cursor: impyla opens a server session per cursor, and a session holds the
    time zone, the TIME setting and the current database, so every statement of a connection goes through it.
    Statements that move no data run before the server answers (``WaitingSession``)."""

    def connect(self) -> Any:
        from impala.dbapi import connect

        return connect(**self.config.credentials.connect_args())  # type: ignore[attr-defined]

    _needs_use: bool = False
    """A renewed session that has not run its ``USE`` yet (``_renew_session``)."""
    _renew_session: bool = False
    """Set by ``forget_catalog`` on a connection with a session: the next statement runs in a new session. A Spark
    session keeps the files of every table it has read (its relation cache) and does not see files another session
    writes later: a kept connection's merge rebuilt a table without the rows another pipeline had appended between
    its runs (seen here). Users of ``p.sql_client()`` between runs meet the same cache (``REFRESH TABLE``)."""

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """The connection's session cursor (``_session``), opened on first use and kept until ``close`` or, once
        ``forget_catalog`` ran, until the next statement: that one runs in a new session, after its ``USE``."""
        connection = self.native_connection
        if self._session is not None and self._renew_session:
            self._renew_session = False
            if not self._end_session():  # the connection went with the session: a new one, whose USE opens a session
                self._needs_use = False
                self.open()
                connection = self.native_connection
        if self._session is None:
            self._session = self._new_session(connection)
        if self._needs_use:  # the new session's current database; this call's own cursor() finds the session set
            self._needs_use = False
            try:
                self.use_dataset()
            except BaseException:
                self._needs_use = True  # asked again by the next statement, or by a reconnect's new session
                raise
        yield self._session

    @staticmethod
    def _new_session(connection: Any) -> Any:
        session = connection.cursor(configuration=dict(SESSION_SETTINGS))
        session.session = WaitingSession(session.session)
        return session

    SESSION_CLOSE_TIMEOUT: float = 30.0
    """Seconds a session's close (``CloseSession``) may take before its connection is dropped instead. A Spark 4
    Thrift server without Hive's LLAP jar (the pyspark wheel has none) can hang every close for good: its first close
    on a handler thread registers Hive's functions, fails on ``LlapSigner`` (SPARK-51041), and later ones wait on
    it. A healthy close takes milliseconds."""

    def _end_session(self) -> bool:
        """Close the session, within ``SESSION_CLOSE_TIMEOUT``; False when the close failed or timed out, and the
        connection (no longer in step with the server) was closed with it."""
        session, self._session = self._session, None
        if session is None or self._conn is None:
            return True
        sock = transport_socket(self._conn)
        before = sock.gettimeout() if sock is not None else None
        try:
            if sock is not None:
                sock.settimeout(self.SESSION_CLOSE_TIMEOUT)
            session.close()
            if sock is not None:
                sock.settimeout(before)
            return True
        except Exception:  # noqa: BLE001 - the session ends with its connection
            self._drop_connection()
            return False

    def _drop_connection(self) -> None:
        connection, self._conn = self._conn, None
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - a connection out of step with its server is gone either way
            pass

    def close(self) -> None:
        self._renew_session = self._needs_use = False  # a new connection runs its USE in after_connect
        try:
            self._end_session()
        finally:
            super().close()

    @staticmethod
    def error_text(exc: BaseException) -> str:
        """The driver's message without the Java stack trace the Thrift server appends to it."""
        return SqlClient.error_text(exc).split("\n\tat ", 1)[0]

    def after_connect(self) -> None:
        """The dataset as the current database, where it exists (the session's settings come with the session:
        ``SESSION_SETTINGS``)."""
        self.use_dataset()

    def use_dataset(self) -> None:
        """``USE`` the dataset, tried at once: one statement where asking first (``SHOW DATABASES``) makes two, and
        every connection of a load runs it. A dataset not created yet is left to ``create_dataset``; whether it was
        there is kept (``dataset_found``)."""
        statement = self.use_dataset_sql(self.dataset_name)
        if statement is None:
            return
        try:
            self.execute_sql(statement)
        except DestinationUndefinedRelation:
            self.dataset_found = False
        else:  # a dry run does not run USE: nothing learned
            self.dataset_found = True if self.recorder is None else None

    def use_dataset_sql(self, dataset: str | None) -> Statement | None:
        return None if dataset is None else exp.Use(this=self.identifier(dataset))

    def server_version(self) -> tuple[int, ...]:
        """From ``version()``: ``4.3.0 98bc02...`` is (4, 3, 0)."""
        rows = self.execute_sql(exp.select(exp.Anonymous(this="version", expressions=[]))) or [("",)]
        return tuple(int(part) for part in str(rows[0][0]).split()[0].split(".") if part.isdigit())

    @staticmethod
    def classify(exc: BaseException) -> type[DestinationError] | None:
        return classify_impyla(exc)

    # -- statements ------------------------------------------------------------------------------
    def execute_sql(self, statement: Statement | str, *params: Any) -> list[tuple[Any, ...]] | None:
        """loadbay's own statements get their parameters as literals (``bind_literals``); a caller's own SQL
        text with parameters is left to the driver's interpolation, as written."""
        if params and isinstance(statement, exp.Expression):
            return super().execute_sql(bind_literals(statement, params))
        if params and not isinstance(statement, str):
            raise TypeError("parameters of a raw() statement cannot be bound on Spark: build it with sqlglot")
        return super().execute_sql(statement, *params)

    def execute_text(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
        """The base's, fetching only statements that return rows (``ROW_STATEMENTS``)."""
        self._listed = None
        if self._only_recorded(text):
            return None
        keyword = text.lstrip("( \n").split(None, 1)[0].upper() if text.strip() else ""
        with self.translating(text), self.cursor() as cursor:
            cursor.session.wait = not moves_data(keyword, text)
            cursor.execute(text, tuple(params)) if params else cursor.execute(text)
            if keyword not in ROW_STATEMENTS or cursor.description is None:
                return None
            return [tuple(r) for r in cursor.fetchall()]

    # -- datasets and the live schema --------------------------------------------------------------
    def has_dataset(self, dataset: str | None = None) -> bool:
        name = dataset or self.dataset_name
        rows = self.execute_sql(raw("SHOW DATABASES")) or []
        return any(row[0] == name for row in rows)

    def ensure_dataset(self) -> None:
        """Create the dataset unless ``SHOW TABLES`` in it answers, whose answer the ``table_names`` right after it (the
        migration's) takes (``_listed``); created at once (``IF NOT EXISTS``) where it was missing when this connection
        opened (``dataset_found``)."""
        if self.dataset_found is not False:
            names = self.table_names(self.dataset_name)
            if names is not None:
                self._listed = (self.dataset_name, names)
                return
        self.create_dataset()

    def forget_catalog(self) -> None:
        """The base's, and a new session for the next statement (``_renew_session``): nothing is sent here, since a
        reconnect after a dead connection comes this way too."""
        super().forget_catalog()
        self._listed = None
        self._renew_session = self._needs_use = self._session is not None

    def table_names(self, dataset: str) -> set[str] | None:
        """The tables of ``dataset``; None when it does not exist. ``SHOW TABLES`` unless ``ensure_dataset`` just
        ran it, with no statement since (``_listed``)."""
        listed, self._listed = self._listed, None
        if listed is not None and listed[0] == dataset:
            return set(listed[1])
        try:
            rows = self.execute_sql(raw("SHOW TABLES IN ", self.identifier(dataset))) or []
        except DestinationUndefinedRelation:
            return None
        return {str(row[1]) for row in rows if not row[2]}  # (database, tableName, isTemporary)

    def table_columns(self, table_names: Sequence[str], staging: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Live columns per table from ``DESCRIBE TABLE``: (name, type, precision, scale, 'YES'), precision and
        scale parsed from a ``decimal(p,s)``. Spark keeps no NOT NULL on parquet tables: every column is nullable."""
        dataset = self.config.staging_dataset_name if staging else self.dataset_name
        existing = self.table_names(dataset) or set()
        out: dict[str, list[tuple[Any, ...]]] = {}
        for name in table_names:
            if name not in existing:
                continue
            try:
                rows = self.execute_sql(raw("DESCRIBE TABLE ", self.qualified(name, staging))) or []
            except DestinationUndefinedRelation:  # dropped since SHOW TABLES
                continue
            out[name] = [describe_row(row) for row in rows_before_sections(rows)]
        return out


def rows_before_sections(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The column rows of ``DESCRIBE TABLE``: those before its first empty or ``# ...`` row (partition and
    detail sections follow)."""
    out = []
    for row in rows:
        if not row[0] or str(row[0]).startswith("#"):
            break
        out.append(row)
    return out


def describe_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """(name, type, precision, scale, 'YES') of one ``DESCRIBE TABLE`` row (name, type, comment); a string
    commented ``JSON_COMMENT`` is ``json``.

    >>> describe_row(("amount", "decimal(38,9)", None))
    ('amount', 'decimal(38,9)', 38, 9, 'YES')
    >>> describe_row(("doc", "string", JSON_COMMENT))
    ('doc', 'json', None, None, 'YES')
    """
    name, data_type = str(row[0]), str(row[1])
    if data_type.lower() == "string" and len(row) > 2 and row[2] == JSON_COMMENT:
        data_type = "json"
    precision = scale = None
    if data_type.lower().startswith("decimal(") and data_type.endswith(")"):
        digits, _, places = data_type[len("decimal("):-1].partition(",")
        precision, scale = int(digits), int(places or 0)
    return name, data_type, precision, scale, "YES"
