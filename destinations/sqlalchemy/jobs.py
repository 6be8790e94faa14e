"""SQLAlchemy load jobs: jsonl rows or parquet record batches bound as parameters, ``executemany`` in
batches on the raw dbapi cursor, all of one file in one transaction; and, for the families whose driver has a
bulk path, the native destinations' own jobs (``BulkJob``) with ``executemany`` as the fallback."""

from __future__ import annotations

import base64
import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from loadbay.common.destination import LoadJob
from loadbay.common.exceptions import DestinationTerminalError
from loadbay.common.schema.inference import parse_date, parse_datetime
from loadbay.common.schema.types import Column
from loadbay.common.storage.writers import dumps_json
from loadbay.destinations import statements
from loadbay.destinations.job_errors import naming_file, where
from loadbay.destinations.load_jobs import arrow_ipc_batches
from loadbay.destinations.transcode import TranscodeRefused

if TYPE_CHECKING:
    from loadbay.destinations.sqlalchemy.job_client import SqlalchemyJobClient
    from loadbay.destinations.sqlalchemy.sqlite_worker import SqliteLoadWorker

logger = logging.getLogger(__name__)

MAX_BATCH_ROWS = 5000
PARQUET_BATCH_ROWS = 65_536
"""Rows per ``executemany`` of the parquet job: a one-row INSERT binds one row at a time, so no parameter
limit applies, and bigger batches spend less per batch on Arrow calls (memory: one batch as Python values)."""


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _expect(kinds: tuple[type, ...], name: str) -> Callable[[Any], Any]:
    """Refuse values of the wrong Python type: SQLite would store text in an INTEGER column."""
    def check(value: Any) -> Any:
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            if type(value) is int and name == "bigint" and not INT64_MIN <= value <= INT64_MAX:
                raise ValueError(f"{value} is outside the 64-bit range of a bigint")
            return value
        raise ValueError(f"{value!r:.60} is not a {name}")

    return check


def _utc(value: Any) -> datetime:
    """An ISO text (or datetime) as an aware UTC datetime; ValueError when it is not a timestamp."""
    parsed = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(parsed, datetime):
        raise ValueError(f"{value!r:.60} is not a timestamp")
    return parsed.astimezone(timezone.utc)


def _date(value: Any) -> date:
    return parse_date(value) if isinstance(value, str) else value


def _time(value: Any) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{value!r:.60} is not a time") from exc


def _decimal(value: Any) -> Decimal:
    try:
        result = Decimal(str(value))
    except ArithmeticError as exc:  # decimal.InvalidOperation is not a ValueError
        raise ValueError(f"{value!r:.60} is not a decimal") from exc
    if not result.is_finite():
        raise ValueError(f"{value!r:.60} is not a finite decimal")
    return result


def _binary(value: Any) -> Any:
    return base64.b64decode(value, validate=True) if isinstance(value, str) else value


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "bigint": _expect((int,), "bigint"), "double": _expect((int, float), "double"), "bool": _expect((bool,), "bool"),
    "binary": _binary, "json": dumps_json, "timestamp": _utc, "date": _date, "time": _time, "decimal": _decimal,
}
"""How a value read back from jsonl becomes a bound parameter of its column's type (text binds as it
is). Every converter raises ValueError for a value that does not fit: the job then fails naming the
file, line, table and column, whatever the database would have done with it."""

FAMILY_CONVERTERS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "sqlite": {  # SQLite keeps these as text: canonical forms, so they compare and sort right
        "timestamp": lambda v: _utc(v).isoformat(timespec="microseconds"), "date": lambda v: _date(v).isoformat(),
        "time": lambda v: _time(v).isoformat(), "decimal": lambda v: str(_decimal(v)),
    },
    "mysql": {"timestamp": lambda v: _utc(v).replace(tzinfo=None)},  # DATETIME has no time zone: the UTC wall time
}
"""What a database family binds differently (``SqlalchemySqlClient.family``)."""


def param_converter(column: Column, family: str) -> Callable[[Any], Any] | None:
    """The converter of ``column`` on ``family``; None binds the value as it is."""
    return FAMILY_CONVERTERS.get(family, {}).get(column.data_type) or CONVERTERS.get(column.data_type)


def _parse(line: bytes, path: Any, number: int) -> dict[str, Any]:
    try:
        return orjson.loads(line)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError as exc:
        raise DestinationTerminalError(f"file {path.name}, line {number}: not a JSON object ({exc})") from exc


def _lines(path: Any) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield _parse(line, path, number)


def batch_rows(client: SqlalchemyJobClient, column_count: int) -> int:
    """Rows per ``executemany``: MAX_BATCH_ROWS, fewer when the dialect's parameter limit says so."""
    limit = client.capabilities.max_parameters_per_statement or MAX_BATCH_ROWS * column_count
    return max(1, min(MAX_BATCH_ROWS, limit // max(1, column_count)))


class ExecutemanyJob(LoadJob):
    def run(self, client: SqlalchemyJobClient) -> None:
        sql = client.sql_client
        columns = list(self.table.columns.values())
        converters = [(c.name, param_converter(c, sql.family)) for c in columns]
        insert = statements.insert_row(self.target, [c.name for c in columns])
        rows_per_batch = batch_rows(client, len(columns))
        rows = _lines(self.job_file.path)
        line = 0
        with sql.begin_transaction():
            while batch := list(itertools.islice(rows, rows_per_batch)):
                try:
                    params = [tuple(None if (v := row.get(name)) is None else (conv(v) if conv else v)
                                    for name, conv in converters) for row in batch]
                except ValueError as exc:
                    raise self._bad_value(batch, converters, line, exc) from exc
                sql.execute_many_params(insert, params)
                line += len(batch)

    def _bad_value(self, batch: list[dict[str, Any]], converters: list[tuple[str, Any]], first_line: int,
                   exc: ValueError) -> DestinationTerminalError:
        """Name the file, table, column and line of the first value that does not fit its column."""
        for offset, row in enumerate(batch):
            for name, conv in converters:
                value = row.get(name)
                if value is None or conv is None:
                    continue
                try:
                    conv(value)
                except ValueError as error:
                    return DestinationTerminalError(
                        f"file {self.job_file.path.name}, line {first_line + offset + 1}: table "
                        f"{self.table.name!r} column {name!r}: {error}")
        return DestinationTerminalError(f"file {self.job_file.path.name}: {exc}")


class ParquetExecutemanyJob(LoadJob):
    """parquet record batches bound with ``executemany``: the jsonl job's batches, transaction and
    values, but parameters built a column at a time from Arrow (``loadbay.destinations.arrow_params``), not a
    value at a time.

    A file whose column types do not fit the table fails before anything is sent; a value that does
    not fit (NaN in a double column, say) fails the job naming its column and row, and the file's
    transaction rolls back.
    """

    def run(self, client: SqlalchemyJobClient) -> None:
        import pyarrow as pa

        from loadbay.destinations.arrow_params import BadValue, column_values

        sql = client.sql_client
        with naming_file(self), self.record_batches() as (schema, batches):
            columns = self.checked_columns(schema)
            insert = statements.insert_row(self.target, schema.names)
            first_row = 0
            with sql.begin_transaction():
                for batch in batches:
                    values = []
                    for array, column in zip(batch.columns, columns):
                        try:
                            values.append(column_values(array, column, sql.family))
                        except BadValue as exc:
                            raise DestinationTerminalError(
                                f"{where(self)} column {column.name!r}, row {first_row + exc.row + 1}: {exc}") from exc
                        except pa.ArrowInvalid as exc:  # a cast that would lose data: a uint64 past int64, say
                            raise DestinationTerminalError(f"{where(self)} column {column.name!r}: {exc}") from exc
                    sql.execute_many_params(insert, zip(*values))  # a tuple at a time, reused by zip
                    first_row += batch.num_rows

    def checked_columns(self, schema: Any) -> list[Column]:
        """The table's columns for the file's, each checked to hold its Arrow type exactly (before anything is sent)."""
        from loadbay.destinations.arrow_params import file_columns_problem

        found = file_columns_problem(schema, self.table.columns)
        if found is not None:
            column, problem = found
            raise DestinationTerminalError(f"{where(self)}{'' if column is None else f' column {column!r}'}: {problem}")
        return [self.table.columns[name] for name in schema.names]

    @contextmanager
    def record_batches(self) -> Iterator[tuple[Any, Iterator[Any]]]:
        """The file's Arrow schema and its record batches."""
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.job_file.path)
        yield parquet.schema_arrow, parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS)


class ArrowIpcExecutemanyJob(ParquetExecutemanyJob):
    """An Arrow IPC file, memory-mapped, bound as the parquet job binds (SQLite's preferred format: writing
    and reading it cost a fraction of parquet's encoding and decoding). On SQLite a worker process may bind it
    instead (``run_in_worker``), the same values with the same checks."""

    def record_batches(self) -> Any:
        return arrow_ipc_batches(self.job_file.path)

    def row_count(self) -> int:
        """Rows in the file: the record batches' lengths, read from the memory-mapped file (nothing decoded)."""
        with self.record_batches() as (_schema, batches):
            return sum(batch.num_rows for batch in batches)

    def run_in_worker(self, client: SqlalchemyJobClient, worker: SqliteLoadWorker, request: dict[str, Any],
                      done: tuple[str, list[Any]]) -> None:
        """The file's rows and the done-record ``done`` (SQL text, values) committed by ``worker`` in one transaction
        of its own connection (``request``: where the database and its datasets are); its errors raised as this
        process's own would be: the file, table, column and row of a value that does not fit, the SQL client's
        class for SQLite's."""
        from loadbay.destinations.sqlalchemy.sqlite_worker import WorkerError, column_dicts
        from loadbay.faults import crash_point

        sql = client.sql_client
        # the worker reads the file's columns, checks them against the table's and builds the INSERT: this process
        # does not open the file (each call that lets go of the GIL costs the waiting worker up to 5 ms)
        request = {**request, "file": str(self.job_file.path), "target": sql.render(self.target),
                   "table_columns": column_dicts(list(self.table.columns.values())), "done": list(done)}
        with naming_file(self):
            try:
                worker.load(request, before_commit=lambda: crash_point("job.loaded"))
            except WorkerError as exc:
                error = exc.error
                column = error.get("column")
                if error["kind"] == "columns":
                    raise DestinationTerminalError(f"{where(self)}: {error['message']}") from exc
                if error["kind"] == "value":
                    raise DestinationTerminalError(
                        f"{where(self)} column {column!r}, row {error['row'] + 1}: {error['message']}") from exc
                if error["kind"] in ("type", "arrow"):
                    raise DestinationTerminalError(f"{where(self)} column {column!r}: {error['message']}") from exc
                if error["kind"] == "sqlite":
                    statement = done[0] if error.get("step") == "done" else error.get("statement")
                    raise sql.translate(exc.sqlite_exception(), statement) from exc
                raise RuntimeError(f"{where(self)}: the SQLite load worker failed: {error.get('type')}: "
                                   f"{error.get('message')}") from exc


EXECUTEMANY_JOBS: dict[str, type[LoadJob]] = {"jsonl": ExecutemanyJob, "parquet": ParquetExecutemanyJob,
                                              "arrow": ArrowIpcExecutemanyJob}
"""The executemany job of each file format: any dialect's, and the fallback of ``BulkJob``."""


class BulkJob(LoadJob):
    """The native destination's job for this file format (the job client's ``bulk_jobs``: COPY, LOAD DATA
    LOCAL) where the connection allows its driver's bulk path (``bulk_load_refusal``), else the executemany
    job (``EXECUTEMANY_JOBS``). A file the bulk job's transcoder refuses (nothing of it reached the server)
    loads with the executemany job too: it takes the values it can, and names the line, column and value of
    one it cannot."""

    def run(self, client: SqlalchemyJobClient) -> None:
        file_format = self.job_file.file_format
        if client.sql_client.bulk_load_refusal() is None:
            try:
                client.bulk_jobs[file_format](self.job_file, self.table, self.target).run(client)
                return
            except TranscodeRefused as exc:
                logger.info("%s; binding its rows with executemany instead", exc)
        EXECUTEMANY_JOBS[file_format](self.job_file, self.table, self.target).run(client)
