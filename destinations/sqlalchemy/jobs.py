"""SQLAlchemy load job: jsonl rows bound as parameters, ``executemany`` in batches sized from the
dialect's parameter limit, all of one file in one transaction."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from common.destination import LoadJob
from common.exceptions import DestinationTerminalError
from common.schema.inference import parse_date, parse_datetime
from common.schema.types import Column
from common.storage.writers import dumps_json

if TYPE_CHECKING:
    from destinations.job_client import SqlJobClient

MAX_BATCH_ROWS = 5000


def _decimal_text(value: Any) -> str:
    return str(value)


def _time(value: Any) -> Any:
    from datetime import time

    return time.fromisoformat(value) if isinstance(value, str) else value


def _expect(kinds: tuple[type, ...], name: str) -> Callable[[Any], Any]:
    """Refuse values of the wrong Python type: SQLite would store text in an INTEGER column."""
    def check(value: Any) -> Any:
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            return value
        raise ValueError(f"{value!r:.60} is not a {name}")

    return check


def param_converter(column: Column, family: str) -> Callable[[Any], Any] | None:
    """How a value read back from jsonl becomes a bound parameter of the column's type."""
    t = column.data_type
    if t == "bigint":
        return _expect((int,), "bigint")
    if t == "double":
        return _expect((int, float), "double")
    if t == "bool":
        return _expect((bool,), "bool")
    if t == "binary":
        return lambda v: base64.b64decode(v) if isinstance(v, str) else v
    if t == "json":
        return dumps_json
    if family == "sqlite":  # SQLite keeps dates, times and decimals as text (exact, sortable)
        return _decimal_text if t == "decimal" else None
    if t == "timestamp":
        if family == "mysql":  # DATETIME has no time zone: the UTC wall time
            return lambda v: parse_datetime(v).replace(tzinfo=None) if isinstance(v, str) else v
        return lambda v: parse_datetime(v) if isinstance(v, str) else v
    if t == "date":
        return lambda v: parse_date(v) if isinstance(v, str) else v
    if t == "time":
        return _time
    if t == "decimal":
        from decimal import Decimal

        return lambda v: Decimal(str(v))
    return None


def _lines(path: Any) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


class ExecutemanyJob(LoadJob):
    def run(self, client: SqlJobClient) -> None:
        sql = client.sql_client
        columns = list(self.table.columns.values())
        family = getattr(sql, "family", "")
        converters = [(c.name, param_converter(c, family)) for c in columns]
        names = ", ".join(sql.render(sql.identifier(c.name)) for c in columns)
        marks = ", ".join(sql.placeholder() for _ in columns)
        insert = f"INSERT INTO {sql.render(self.target)} ({names}) VALUES ({marks})"
        limit = client.capabilities.max_parameters_per_statement or MAX_BATCH_ROWS * len(columns)
        batch_rows = max(1, min(MAX_BATCH_ROWS, limit // max(1, len(columns))))
        rows = _lines(self.job_file.path)
        line = 0
        with sql.begin_transaction():
            while batch := list(itertools.islice(rows, batch_rows)):
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
