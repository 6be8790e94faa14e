"""MySQL/MariaDB load jobs: csv through ``LOAD DATA LOCAL INFILE`` (pymysql streams the file in chunks, never
all in memory); jsonl and parquet become that csv first, by DuckDB into a scratch file
(``loadbay.destinations.transcode``).

A LOAD DATA LOCAL cannot stop the file's transfer, so the server turns what would be errors (a value too
long, a bad conversion, a duplicate key) into warnings and keeps going, truncating or skipping. Loadbay
keeps none of that: after the statement, ``@@warning_count`` (never capped; sessions count no notes); any
warning fails the job with a terminal error naming table, column, row (and line) and value from ``SHOW
WARNINGS``, and the job's transaction rolls back, so nothing of the file is loaded.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbay.common.destination import LoadJob
from loadbay.common.exceptions import DestinationKeyViolation, DestinationTerminalError
from loadbay.common.schema.types import Column
from loadbay.destinations import statements as sql
from loadbay.destinations.job_errors import columns_for, naming_file, where
from loadbay.destinations.sqlstate import MYSQL_CODES, mysql_code
from loadbay.destinations.transcode import arrow_batches, transcoded_csv

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient

LOCAL_INFILE_REFUSED = {1148, 2068, 3948, 4166}
"""The server (or the client) does not allow LOAD DATA LOCAL: ER_NOT_ALLOWED_COMMAND (MySQL 5.x),
CR_LOAD_DATA_LOCAL_INFILE_REJECTED, ER_CLIENT_LOCAL_FILES_DISABLED (MySQL 8), MariaDB's 4166."""

WARNING_COLUMN = re.compile(r"column (?:`[^`]*`\.)*[`']([^`']+)[`'] at row (\d+)")
"""``Data truncated for column 's' at row 2``, ``... for column `db`.`t`.`n` at row 4`` (MariaDB)."""
WARNING_ROW = re.compile(r"\b[Rr]ow (\d+)\b")
CHECK_FAILED = re.compile(r"CONSTRAINT `[^`]*\.([^`]+)` failed")
"""``Row 3 doesn't contain data for all columns``, ``Row 3 was truncated; ...``."""


class CsvLoadDataJob(LoadJob):
    """loadbay's csv (written for MySQL: NULL as the unquoted word, UTC wall times) loaded as it is."""

    def run(self, client: SqlJobClient) -> None:
        with open(self.job_file.path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f))
        load_data(self, client, self.job_file.path, columns_for(self, header),
                  line_of=lambda row: csv_record(self.job_file.path, row)[0])


class JsonlLoadDataJob(LoadJob):
    """jsonl → loadbay's csv for MySQL by DuckDB's C++ readers and writers, then the same LOAD DATA."""

    def run(self, client: SqlJobClient) -> None:
        columns = list(self.table.columns.values())
        with transcoded_csv(self, columns, client.capabilities) as csv_path:
            load_data(self, client, csv_path, columns, line_of=lambda row: row)  # a row a line, in order


class ParquetLoadDataJob(LoadJob):
    """parquet → loadbay's csv for MySQL by DuckDB over the file's Arrow record batches (decimals wider than
    DuckDB's as exact text), then the same LOAD DATA. A value that does not fit (a NaN, a uint64 past
    BIGINT) fails as a warning of LOAD DATA does, naming its column and row."""

    def run(self, client: SqlJobClient) -> None:
        import pyarrow.parquet as pq

        with naming_file(self):
            parquet = pq.ParquetFile(self.job_file.path)
            columns = columns_for(self, parquet.schema_arrow.names)
            with transcoded_csv(self, columns, client.capabilities, batches=lambda: arrow_batches(parquet)) as path:
                load_data(self, client, path, columns)


def load_data(job: LoadJob, client: SqlJobClient, path: Path, columns: list[Column], *,
              line_of: Callable[[int], int] | None = None) -> None:
    """``LOAD DATA LOCAL INFILE`` of the csv at ``path`` into the job's target, then ``SHOW WARNINGS`` in
    the same transaction; ``line_of`` turns the row number a warning names into a line of the job's file."""
    sql_client = client.sql_client
    statement = sql.load_data_local_infile(str(path), job.target, columns)
    with sql_client.begin_transaction():  # joins the job's own (its rows and its done-record)
        try:
            if not sql_client.load_data_local(statement):
                return  # a dry run: nothing ran, no warnings to read
        except DestinationTerminalError as exc:
            if mysql_code(exc.orig) in LOCAL_INFILE_REFUSED:
                raise DestinationTerminalError(
                    f"{where(job)}: the server refuses LOAD DATA LOCAL INFILE ({exc.orig}). Turn it on in the "
                    "server's configuration (local_infile=ON; MySQL 8 has it off by default), or load this "
                    "pipeline with loader_file_format='insert_values'", orig=exc.orig, statement=exc.statement) from exc
            raise
        counted = sql_client.execute_sql(sql.warning_count()) or [(0,)]
        warnings = (sql_client.execute_sql(sql.show_warnings()) or []) if counted[0][0] else []
    if counted[0][0]:  # the count decides (SHOW WARNINGS stops at max_error_count), the list explains
        # LOAD DATA LOCAL skips a row that repeats a key with a warning (1062): a key violation as an INSERT's
        first = next((w for w in warnings if w[0] != "Note"), None)
        kind = DestinationKeyViolation if first is not None and MYSQL_CODES.get(first[1]) is DestinationKeyViolation \
            else DestinationTerminalError
        raise kind(warning_error(job, warnings, path, [c.name for c in columns], line_of, count=int(counted[0][0])))


def warning_error(job: LoadJob, warnings: list[tuple[Any, ...]], path: Path, names: list[str],
                  line_of: Callable[[int], int] | None, count: int = 0) -> str:
    """The message for the first warning of a LOAD DATA (the notes before it explain it): table, column, row
    and line, the value, what happened and what to do. Only the first: once the server skipped a row, the
    row numbers of later warnings no longer count it. ``count`` (``@@warning_count``) says there were
    warnings even when the server lists none."""
    first = next((i for i, w in enumerate(warnings) if w[0] != "Note"), None)
    if first is None:
        return (f"{where(job)}: LOAD DATA raised {count} warning(s) that the server does not list (max_error_count)."
                " loadbay keeps no data the server truncated, converted or skipped, so nothing of the file is loaded")
    level, code, message = warnings[first][:3]
    place, row, column = "", None, None
    if found := WARNING_COLUMN.search(message):
        column, row = found.group(1), int(found.group(2))
        place = f" column {column!r}, row {row}"
    elif found := WARNING_ROW.search(message):
        row = int(found.group(1))
        place = f", row {row}"
    advice = "fix the value, or widen the column in the schema hints (a key column of text is VARCHAR(255))"
    if column is None and (found := CHECK_FAILED.search(message)):  # a json column's JSON_VALID check
        column = found.group(1)
        place = f" column {column!r}"
        advice = ("MariaDB checks a json column with JSON_VALID, which refuses json nested more than 32 levels "
                  "deep: a max_table_nesting that flattens the value into columns and child tables, or a text "
                  "hint for the column, loads it")
    if row is not None and line_of is not None:
        place += f" (line {line_of(row)})"
    fields = csv_record(path, row)[1] if row is not None and column in names else []
    if column in names and names.index(column) < len(fields):
        value = fields[names.index(column)]
        place += f", value {value if len(value) <= 60 else value[:57] + '...'!r}"
    notes = "".join(f" ({w[0]} {w[1]}: {w[2]})" for w in warnings[:first])
    more = max(sum(1 for w in warnings[first + 1:] if w[0] != "Note"), count - first - 1)
    return (f"{where(job)}{place}: LOAD DATA warned {level} {code}: {message}{notes}"
            f"{f' (and {more} more warnings)' if more else ''}. loadbay keeps no data the server truncated, "
            f"converted or skipped, so nothing of the file is loaded: {advice}")


def csv_record(path: Path, row: int) -> tuple[int, list[str]]:
    """(the line where data row ``row`` starts, its fields) in the csv file at ``path`` (1-based, after the
    header; a quoted value may span lines). Read only to report an error."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        line, fields = reader.line_num + 1, []
        for _ in range(row):
            line = reader.line_num + 1
            fields = next(reader, [])
    return line, fields
