"""SQLAlchemy load jobs: jsonl rows or parquet record batches bound as parameters, ``executemany`` in
batches sized from the dialect's parameter limit, all of one file in one transaction."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from loadbay.common.destination import LoadJob
from loadbay.common.exceptions import DestinationTerminalError
from loadbay.common.schema.inference import parse_date, parse_datetime
from loadbay.common.schema.types import Column
from loadbay.common.storage.writers import dumps_json
from loadbay.destinations.job_errors import columns_for, naming_file, where

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient

MAX_BATCH_ROWS = 5000


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


def param_converter(column: Column, family: str) -> Callable[[Any], Any] | None:
    """How a value read back from jsonl becomes a bound parameter of the column's type.

    Every converter raises ValueError for a value that does not fit: the job then fails naming the
    file, line, table and column, whatever the database would have done with it.
    """
    t = column.data_type
    if t == "bigint":
        return _expect((int,), "bigint")
    if t == "double":
        return _expect((int, float), "double")
    if t == "bool":
        return _expect((bool,), "bool")
    if t == "binary":
        return lambda v: base64.b64decode(v, validate=True) if isinstance(v, str) else v
    if t == "json":
        return dumps_json
    if family == "sqlite":  # SQLite keeps these as text: canonical forms, so they compare and sort right
        return {"timestamp": lambda v: _utc(v).isoformat(timespec="microseconds"),
                "date": lambda v: _date(v).isoformat(), "time": lambda v: _time(v).isoformat(),
                "decimal": lambda v: str(_decimal(v))}.get(t)
    if t == "timestamp":
        if family == "mysql":  # DATETIME has no time zone: the UTC wall time
            return lambda v: _utc(v).replace(tzinfo=None)
        return _utc
    if t == "date":
        return _date
    if t == "time":
        return _time
    if t == "decimal":
        return _decimal
    return None


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


def insert_statement(client: SqlJobClient, target: Any, names: list[str]) -> str:
    """``INSERT INTO target (names) VALUES (?, ...)`` in the driver's parameter style."""
    sql = client.sql_client
    columns = ", ".join(sql.render(sql.identifier(n)) for n in names)
    marks = ", ".join(sql.placeholder() for _ in names)
    return f"INSERT INTO {sql.render(target)} ({columns}) VALUES ({marks})"


def batch_rows(client: SqlJobClient, column_count: int) -> int:
    """Rows per ``executemany``: MAX_BATCH_ROWS, fewer when the dialect's parameter limit says so."""
    limit = client.capabilities.max_parameters_per_statement or MAX_BATCH_ROWS * column_count
    return max(1, min(MAX_BATCH_ROWS, limit // max(1, column_count)))


class ExecutemanyJob(LoadJob):
    def run(self, client: SqlJobClient) -> None:
        sql = client.sql_client
        columns = list(self.table.columns.values())
        family = getattr(sql, "family", "")
        converters = [(c.name, param_converter(c, family)) for c in columns]
        insert = insert_statement(client, self.target, [c.name for c in columns])
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
                sql.execute_many_params(insert, params)  # type: ignore[attr-defined]
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

    def run(self, client: SqlJobClient) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from loadbay.destinations.arrow_params import BadValue, check_type, column_values

        sql = client.sql_client
        family = getattr(sql, "family", "")
        with naming_file(self):
            parquet = pq.ParquetFile(self.job_file.path)
            schema = parquet.schema_arrow
            columns = columns_for(self, schema.names)
            for field, column in zip(schema, columns):
                if problem := check_type(field, column):
                    raise DestinationTerminalError(f"{where(self)} column {column.name!r}: {problem}")
            insert = insert_statement(client, self.target, schema.names)
            first_row = 0
            with sql.begin_transaction():
                for batch in parquet.iter_batches(batch_size=batch_rows(client, len(columns))):
                    values = []
                    for array, column in zip(batch.columns, columns):
                        try:
                            values.append(column_values(array, column, family))
                        except BadValue as exc:
                            raise DestinationTerminalError(
                                f"{where(self)} column {column.name!r}, row {first_row + exc.row + 1}: {exc}") from exc
                        except pa.ArrowInvalid as exc:  # a cast that would lose data: a uint64 past int64, say
                            raise DestinationTerminalError(f"{where(self)} column {column.name!r}: {exc}") from exc
                    sql.execute_many_params(insert, list(zip(*values)))  # type: ignore[attr-defined]
                    first_row += batch.num_rows
