"""CSV and Parquet files → Arrow record batches, read by Arrow's streaming readers.

CSV (``pyarrow.csv.open_csv``, block by block): the first row names the columns; an unquoted empty field
is NULL, a quoted one ``""`` the empty string; quoted values may span lines. Arrow types each column from
the first block (int64, float64, bool, date, timestamp, text). A later value that does not fit its
column's type does not fail the load: the rest of the file (from the first row not yet handed on) is read
again with that column widened (Arrow skips the rows handed on, blank lines counted among them, which
Python's csv module counts on this path only) (an int64 column to float64 where the value is a number, to text
otherwise; an all-empty column is typed afresh) and every other column as it was typed. A row longer than a
block is read again from it with blocks doubled until one holds it. Integers past 64 bits are never rounded through a
double: a column Arrow would hold them in as float64 is read as text instead. A malformed row raises ``SourceError`` naming the file
and line, found by Python's csv module on the error path only.

Parquet (``ParquetFile.iter_batches``): row group by row group, in batches; nothing to infer.
"""

from __future__ import annotations

import csv
import io
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from loadbay.common.exceptions import SourceError
from loadbay.sources.arrow import plain
from loadbay.sources.batch_sizes import arrow_batch_size

BLOCK_BYTES = 1 << 20
MAX_BLOCK_BYTES = 1 << 28
"""Blocks grow (doubling) to hold the longest row, up to this."""
_COLUMN = re.compile(r"In CSV column #(\d+)")
_VALUE = re.compile(r"invalid value '(.*)'", re.S)
_INTEGER = re.compile(r"^[+-]?\d+$")
EXACT_DOUBLE_INTEGERS = 2**53
"""From here on a double cannot hold every integer."""


def _open(path: Path, compression: str | None) -> pa.NativeFile:
    return pa.input_stream(str(path), compression=compression)


def csv_batches(path: Path, batch_size: int | None, *, compression: str | None = None, delimiter: str = ",",
                display: str | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of at most ``batch_size`` rows of a CSV file; see the module doc."""
    display = display or str(path)
    batch_size = arrow_batch_size(batch_size)
    done = 0  # rows handed on so far
    forced: dict[str, pa.DataType] = {}  # columns widened after a value did not fit
    types: dict[str, pa.DataType] = {}  # every column's type as last read
    block_bytes = BLOCK_BYTES
    while True:
        progress_at_start = done
        try:
            reader = pacsv.open_csv(
                _open(path, compression),
                read_options=pacsv.ReadOptions(block_size=block_bytes,
                                               skip_rows_after_names=_rows_to_skip(path, compression, delimiter, done)),
                parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(column_types=forced, null_values=[""], strings_can_be_null=True,
                                                     quoted_strings_can_be_null=False))
            _check_header(reader.schema, path, compression, display)
            types = {f.name: f.type for f in reader.schema}
            rounded = None
            last: pa.RecordBatch | None = None
            for block in reader:
                rounded = _rounded_column(block)
                if rounded is not None:  # read again from here with that column as text
                    _hold_types(forced, types)
                    forced[rounded] = pa.string()
                    break
                for start in range(0, block.num_rows, batch_size):
                    batch = last = block.slice(start, batch_size)
                    done += batch.num_rows
                    yield batch
            if rounded is None:
                if last is not None and _ends_in_a_line_break(last):
                    _check_quotes_close(path, compression, delimiter, display)
                return
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "Empty CSV file" in message:
                return
            if "straddles two block boundaries" in message and block_bytes < MAX_BLOCK_BYTES:
                if block_bytes == BLOCK_BYTES:  # first a quote that never closes (the rest of the file as a value)
                    _check_quotes_close(path, compression, delimiter, display)
                block_bytes *= 2  # a row longer than a block: read again from it with blocks that hold it
                _hold_types(forced, types)
                continue
            column_number = _COLUMN.search(message)
            if not types or column_number is None or "conversion error" not in message:
                raise _malformed(path, compression, delimiter, display, exc) from exc
            column = list(types)[int(column_number.group(1))]
            current = forced.get(column, types[column])  # a forced type may fail as the reader opens
            if pa.types.is_string(current) or pa.types.is_large_string(current):  # bytes that are not UTF-8
                raise _bad_text(path, compression, display, column, exc) from exc
            value = _VALUE.search(message)
            widened = _widened(current, value.group(1) if value else "")
            if widened is None and done == progress_at_start:
                widened = pa.string()  # typed afresh and still no fit: take it as text
            _hold_types(forced, types)
            if widened is None:
                forced.pop(column, None)
            else:
                forced[column] = widened


def _hold_types(forced: dict[str, pa.DataType], types: dict[str, pa.DataType]) -> None:
    """Every column typed so far keeps its type when the file is read again from a later row: typed afresh
    from a later block, a text column of zip codes could become int64 and lose its zeros when cast back. A
    column of no value yet (null) is typed afresh."""
    for name, data_type in types.items():
        if not pa.types.is_null(data_type):
            forced.setdefault(name, data_type)


class _FieldLimit:
    """Python's csv module refuses values over 128 KiB; Arrow reads any size, and so must the checks that
    follow it. The module-wide limit is raised while any check runs (in any thread), then restored."""

    lock = threading.Lock()
    users = 0
    saved = 0

    @classmethod
    @contextmanager
    def lifted(cls) -> Iterator[None]:
        with cls.lock:
            if cls.users == 0:
                cls.saved = csv.field_size_limit(2**31 - 1)  # what a C long holds everywhere
            cls.users += 1
        try:
            yield
        finally:
            with cls.lock:
                cls.users -= 1
                if cls.users == 0:
                    csv.field_size_limit(cls.saved)


def _ends_in_a_line_break(batch: pa.RecordBatch) -> bool:
    """Whether a text value of the file's last row holds a line break: what a quote that never closes makes
    of the rest of the file (Arrow reads it to the end as one value, without an error)."""
    row = batch.slice(batch.num_rows - 1)
    for column in row.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            value = column[0].as_py()
            if value is not None and ("\n" in value or "\r" in value):
                return True
    return False


def _check_quotes_close(path: Path, compression: str | None, delimiter: str, display: str) -> None:
    """Raise ``SourceError`` at the row whose quoted value never closes (Python's csv module, strict: only
    for a file whose last value spans lines)."""
    start = 2
    try:
        with _FieldLimit.lifted(), _text_lines(path, compression) as f:
            rows = csv.reader(f, delimiter=delimiter, strict=True)
            next(rows, None)
            for _ in rows:
                start = rows.line_num + 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise SourceError(f"file {display}, line {start}: malformed CSV: a quoted value opened on this line "
                              "never closes (it would take the rest of the file)", path=display, line=start) from exc
    except UnicodeDecodeError:  # not ours to report: the text columns' own check does
        pass


def _check_header(schema: pa.Schema, path: Path, compression: str | None, display: str) -> None:
    """Column names must be unique; a column Arrow typed as binary holds text that is not UTF-8."""
    try:
        schema.names
    except UnicodeDecodeError as exc:
        raise _bad_text(path, compression, display, "the header", exc) from exc
    seen: set[str] = set()
    for name in schema.names:
        if name in seen:
            raise SourceError(f"file {display}, line 1: the header names column {name!r} twice", path=display,
                              line=1)
        seen.add(name)
    binary = [f.name for f in schema if pa.types.is_binary(f.type)]
    if binary:
        raise _bad_text(path, compression, display, binary[0], None)


def _rows_to_skip(path: Path, compression: str | None, delimiter: str, data_rows: int) -> int:
    """What Arrow's ``skip_rows_after_names`` must be to pass the first ``data_rows`` rows: Arrow counts
    each blank line (outside quoted values) as a row there, so those before the last of them are added."""
    if not data_rows:
        return 0
    seen = blank = 0
    stream = io.BufferedReader(_open(path, compression))  # type: ignore[arg-type]
    with _FieldLimit.lifted(), io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="") as f:
        rows = csv.reader(f, delimiter=delimiter)
        next((row for row in rows if row), None)  # the header
        for row in rows:
            if not row:
                blank += 1
                continue
            seen += 1
            if seen == data_rows:
                break
    return data_rows + blank


def _rounded_column(block: pa.RecordBatch) -> str | None:
    """A column Arrow typed (or a column widened to) float64 whose values reach 2**53, where a double no
    longer holds every integer: integers past 64 bits (``12345678901234567890123``) are typed so and would
    lose digits. Such a column is read as text instead, which keeps every digit (a double that large written
    in the file is kept as its text)."""
    for field, column in zip(block.schema, block.columns):
        if pa.types.is_floating(field.type) and column.null_count < len(column):
            largest = pc.max(pc.abs(column)).as_py()
            if largest is not None and largest >= EXACT_DOUBLE_INTEGERS and math.isfinite(largest):
                return field.name
    return None


def _widened(current: pa.DataType, value: str) -> pa.DataType | None:
    """The type to read a column as once ``value`` did not fit ``current``; None: infer it afresh. An integer
    column meeting a wider integer becomes text, not a double that would round it."""
    if pa.types.is_null(current):
        return None
    if pa.types.is_integer(current) and not _INTEGER.match(value.strip()):
        try:
            float(value)
            return pa.float64()
        except ValueError:
            pass
    return pa.string()


def _text_lines(path: Path, compression: str | None) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BufferedReader(_open(path, compression)), encoding="utf-8", newline="")  # type: ignore[arg-type]


def _malformed(path: Path, compression: str | None, delimiter: str, display: str, exc: Exception) -> SourceError:
    """A ``SourceError`` naming the first line whose number of fields differs from the header's."""
    try:
        with _FieldLimit.lifted(), _text_lines(path, compression) as f:
            rows = csv.reader(f, delimiter=delimiter)
            header = next(rows, [])
            for row in rows:
                if row and len(row) != len(header):
                    return SourceError(f"file {display}, line {rows.line_num}: malformed CSV: {len(row)} field(s) "
                                       f"where the header has {len(header)}", path=display, line=rows.line_num)
    except (UnicodeDecodeError, csv.Error):
        pass
    return SourceError(f"file {display}: malformed CSV: {exc}", path=display)


def _bad_text(path: Path, compression: str | None, display: str, column: str, exc: Exception | None) -> SourceError:
    """A ``SourceError`` naming the first line that is not UTF-8 (what a text column cannot take)."""
    with io.BufferedReader(_open(path, compression)) as f:  # type: ignore[arg-type]
        for number, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                return SourceError(f"file {display}, line {number}: column {column!r} is not UTF-8 text ({bad.reason} "
                                   f"at byte {bad.start}); convert the file to UTF-8 first, e.g. with iconv",
                                   path=display, line=number)
    return SourceError(f"file {display}: column {column!r} is not UTF-8 text{f': {exc}' if exc else ''}", path=display)


def parquet_batches(path: Path, batch_size: int | None, *, display: str | None = None) -> Iterator[pa.RecordBatch]:
    """Record batches of a Parquet file, row group by row group."""
    display = display or str(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"file {display}: not a readable Parquet file ({exc})", path=display) from exc
    with parquet:
        try:
            for batch in parquet.iter_batches(batch_size=arrow_batch_size(batch_size)):
                yield plain(batch)
        except (pa.ArrowException, OSError) as exc:  # a damaged page past a readable footer
            raise SourceError(f"file {display}: a damaged Parquet file ({exc})", path=display) from exc
