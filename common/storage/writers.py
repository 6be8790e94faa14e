"""Load file writers: jsonl, csv, insert_values, parquet and Arrow IPC, each fed lists of normalized rows.

Writers do the per-row work in C where they can (orjson, the csv module, pyarrow) and convert
only the columns whose type needs it (json and binary), decided once per file from the table.
A writer's columns are fixed when its file opens; the package writer rotates to a new file when
a table gains columns, so csv, insert_values and parquet files always carry a complete header
(a jsonl file goes on, and takes the new columns as they come).
Strings with NUL characters or surrogates are repaired on the way (see ``text_repair``), found in
each batch's serialized output so that clean batches pay only a memchr.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime, time, timezone
from decimal import Decimal
from itertools import repeat
from pathlib import Path
from typing import IO, Any, ClassVar

import orjson

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.exceptions import SchemaError
from loadbay.common.storage.spelled import spell_non_finite, spell_times, time_text
from loadbay.common.schema.types import LOAD_ID, ROW_ID, Column, Table
from loadbay.common.schema.values import UnloadableValue, json_default
from loadbay.common.storage.rows_with_ids import RowsWithIds
from loadbay.common.storage.text_repair import TextRepairs, may_hold_nul, needs_repair, table_may_hold_nul

BUFFER_SIZE = 1 << 20
HEADER_ALLOWANCE = 1024  # room for "INSERT INTO <qualified name> (...) VALUES" around a body


_json_default = json_default
"""orjson's ``default`` in every writer: Decimal as text, bytes as base64, and what only a json value
holds nested (sets, UUIDs, numpy values, pandas' NaT...) as plain values (see loadbay.common.schema.values)."""


def dumps_json(value: Any) -> str:
    """JSON text of a nested value (json columns), keeping integers beyond 64 bits exact.

    Raises UnloadableValue for a value no JSON holds (an unknown type nested, a value that contains
    itself); ``unloadable_json_error`` names its column for the package writer."""
    try:
        return orjson.dumps(value, default=_json_default).decode()
    except orjson.JSONEncodeError:
        return _stdlib_dumps(value)


def _stdlib_dumps(value: Any) -> str:
    """The stdlib's JSON text of what orjson refuses: integers beyond 64 bits, surrogates, deep nesting."""
    try:
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    except (ValueError, RecursionError) as exc:  # "Circular reference detected", or nested too deeply
        raise UnloadableValue(f"cannot load a json value that contains itself or is nested too deeply "
                              f"({exc})") from None


def unloadable_json_error(pipeline: str, table: Table, rows: Sequence[dict[str, Any]],
                          exc: BaseException) -> SchemaError:
    """The error for a json value of ``rows`` a writer could not write (``exc``: an UnloadableValue,
    or a RecursionError from a value that contains itself), naming its json column.

    Found here, on the way out, rather than checked while normalizing: that check serializes every
    json value twice to catch what is rare (normalizing and writing github events with their
    payload, repo and actor hinted json took 20-40% longer with it)."""
    json_columns = [c.name for c in table.columns.values() if c.data_type == "json"]
    found = next(((name, error) for name in json_columns for row in rows
                  if (error := _unloadable(row.get(name))) is not None), None)
    where = ""
    if found is not None:
        where, exc = f" column {found[0]!r}", found[1]
    return SchemaError(f"pipeline {pipeline!r}: table {table.name!r}{where}: {exc}. Nothing of this run is loaded: "
                       "convert such values in the resource to str, int, float, bool, Decimal, datetime, date, "
                       "time, bytes, dict or list (for example str(value), or dataclasses.asdict(value)).")


def _unloadable(value: Any) -> UnloadableValue | None:
    try:
        dumps_json(value)
    except UnloadableValue as exc:
        return exc
    return None


class LoadFileWriter:
    """Writes rows of one table into one file; subclasses set ``file_format``."""

    file_format: ClassVar[str] = ""
    binary_mode: ClassVar[bool] = True
    from_arrow: ClassVar[bool] = False
    """Written from Arrow tables: its files take the destination's ``columnar_file_max_items`` rows. A flag
    rather than an isinstance check, so writing dict rows never imports the Arrow writer (pyarrow, numpy)."""
    takes_rows_with_ids: ClassVar[bool] = False
    """Whether ``write_rows`` reads a ``RowsWithIds`` as it is; others get its rows as a list (read once per column)."""

    def __init__(self, path: Path | None, table: Table, capabilities: DestinationCapabilities,
                 stream: IO[Any] | None = None, *, repairs: TextRepairs | None = None) -> None:
        self.path = path
        self.table = table
        self.table_name = table.name
        self.columns: list[Column] = list(table.columns.values())
        self.capabilities = capabilities
        self.repairs = repairs or TextRepairs()  # shared by a package's writers: one warning per table
        self.row_count = 0
        if stream is not None:
            self._file = stream
        elif self.binary_mode:
            self._file = open(path, "wb", buffering=BUFFER_SIZE)  # type: ignore[arg-type]
        else:
            self._file = open(path, "w", encoding="utf-8", newline="", buffering=BUFFER_SIZE)  # type: ignore[arg-type]
        self.write_header()

    @classmethod
    def to_stream(cls, stream: IO[Any], table: Table, capabilities: DestinationCapabilities,
                  rows: Sequence[dict[str, Any]]) -> None:
        """Write a complete file (header and rows) for ``rows`` into an open stream."""
        writer = cls(None, table, capabilities, stream=stream)
        writer.write_rows(rows)
        writer.write_footer()

    def write_header(self) -> None:
        """Called once when the file opens."""

    def write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        raise NotImplementedError

    def close(self) -> int:
        self.write_footer()
        self._file.close()
        return self.row_count

    def write_footer(self) -> None:
        """Called once before the file closes."""


class JsonlWriter(LoadFileWriter):
    """One JSON object per line, written by orjson; nested json values stay nested objects.

    JSON has no NaN or Infinity (orjson writes null): such floats are written as the strings
    "NaN", "Infinity" and "-Infinity", which the readers cast back into the double column.
    """

    file_format = "jsonl"

    def write_header(self) -> None:
        self._double_columns: list[str] = []
        self._time_columns: list[str] = []
        self._columns_seen = 0

    def write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        columns = self.table.columns
        if len(columns) != self._columns_seen:  # a jsonl file takes columns added after it opened
            self._double_columns = [c.name for c in columns.values() if c.data_type == "double"]
            self._time_columns = [c.name for c in columns.values() if c.data_type == "time"]
            self._columns_seen = len(columns)
        if self._time_columns:
            rows = spell_times(rows, self._time_columns)
        if self._double_columns:
            rows = spell_non_finite(rows, self._double_columns)
        data = self._encode(rows)
        if may_hold_nul(data):  # orjson escapes NUL as \u0000
            data = self._encode(self.repairs.repair_rows(self.table_name, rows))
        self._file.write(data)
        self.row_count += len(rows)

    def _encode(self, rows: Sequence[dict[str, Any]]) -> bytearray:
        """The batch as JSON lines, grown in one buffer (as cheap as one write per row, and
        searchable at once; a list of encoded rows costs ~5x more in allocation)."""
        data = bytearray()
        dumps = orjson.dumps
        default = _json_default
        newline = orjson.OPT_APPEND_NEWLINE
        for row in rows:
            try:
                data += dumps(row, default=default, option=newline)
            except orjson.JSONEncodeError:
                data += self._encode_refused(row)
        return data

    def _encode_refused(self, row: dict[str, Any]) -> bytes:
        """A row orjson refuses: a string with surrogates (repaired here), or an int beyond 64 bits
        inside a json value (the stdlib's json writes every digit)."""
        row = self.repairs.repair_row(self.table_name, row)
        try:
            return orjson.dumps(row, default=_json_default, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:
            return _stdlib_dumps(row).encode() + b"\n"


class _CsvNull(int):
    """A number to the csv module, so written unquoted under QUOTE_NONNUMERIC (where every string is
    quoted), as ``text``: NULL and '' (or 'NULL') stay distinct."""

    text: str

    def __new__(cls, text: str = "") -> _CsvNull:
        null = super().__new__(cls, 0)
        null.text = text
        return null

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


CSV_NULL = _CsvNull()


def _hex(value: Any) -> str:
    """PostgreSQL's bytea hex text (``\\x0a1b``); DuckDB strips the prefix when it reads the file."""
    return "\\x" + bytes(value).hex()


class CsvWriter(LoadFileWriter):
    """RFC 4180 csv with a header; NULL is an unquoted field (empty, or the destination's ``csv_null``), every
    string is quoted.

    Binary values are written as ``\\x`` and hex digits, json values as JSON text, timestamps as ISO text
    (the UTC wall time without offset where the destination has ``naive_timestamps``).
    """

    file_format = "csv"
    binary_mode = False

    def write_header(self) -> None:
        names = [c.name for c in self.columns]
        csv.writer(self._file, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerow(names)
        # how each column becomes text: None (the csv module's own str(), which both databases
        # read: numbers, True/False, text), ISO (dates and times, formatted by orjson for a whole
        # column at once: str(datetime) costs ~2 µs a value), or a per-value converter
        plan: list[tuple[str, Any]] = []
        self._null = _CsvNull(self.capabilities.csv_null) if self.capabilities.csv_null else CSV_NULL
        naive = self.capabilities.naive_timestamps
        for c in self.columns:
            if c.data_type == "timestamp" and naive:
                plan.append((c.name, _UTC_WALL))
            elif c.data_type == "time":
                plan.append((c.name, time_text))
            elif c.data_type in ("timestamp", "date"):
                plan.append((c.name, _ISO))
            elif c.data_type == "double":
                plan.append((c.name, _FLOAT))
            elif c.data_type == "json":
                plan.append((c.name, dumps_json))
            elif c.data_type == "binary":
                plan.append((c.name, _hex))
            else:
                plan.append((c.name, None))
        self._plan = plan

    def write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Renders the batch, then writes it: NULs (raw in text, escaped in json) and surrogates (which
        the UTF-8 file refuses before writing anything) send it through ``text_repair`` first."""
        if not rows:
            return
        text = self._render(rows)
        if NUL_CHAR in text or may_hold_nul(text):
            text = self._render(self.repairs.repair_rows(self.table_name, rows))
        try:
            self._file.write(text)
        except UnicodeEncodeError:
            self._file.write(self._render(self.repairs.repair_rows(self.table_name, rows)))
        self.row_count += len(rows)

    def _render(self, rows: Sequence[dict[str, Any]]) -> str:
        """The batch as csv text, built column by column (C-level maps), then written row by row.

        A missing key and a None value are both NULL.
        """
        buffer = io.StringIO()
        get, null = dict.get, self._null
        columns: list[list[Any]] = []
        for name, how in self._plan:
            if how is None:
                column = list(map(get, rows, repeat(name), repeat(null)))
                if None in column:  # a C-level scan; rows from pyarrow or a user may carry None
                    column = [null if v is None else v for v in column]
                columns.append(column)
            elif how is _ISO:
                encoded = orjson.dumps(list(map(get, rows, repeat(name))))[1:-1].split(b",")
                columns.append([null if v == b"null" else v[1:-1].decode() for v in encoded])
            elif how is _UTC_WALL:
                columns.append(_utc_wall_column(list(map(get, rows, repeat(name))), null))
            elif how is _FLOAT:
                columns.append(_float_column(list(map(get, rows, repeat(name))), null))
            else:
                columns.append([null if (v := get(row, name)) is None else how(v) for row in rows])
        csv.writer(buffer, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n").writerows(zip(*columns))
        return buffer.getvalue()


_ISO = object()
_UTC_WALL = object()
_FLOAT = object()
NUL_CHAR = "\x00"
UTC_SUFFIX = b"+00:00"


def _float_column(values: list[Any], null: _CsvNull) -> list[Any]:
    """Shortest round-trip text of each float, by orjson for the whole column (repr costs ~0.5 µs a
    value); orjson writes nan and ±inf as null, so a column holding them takes repr instead."""
    encoded = orjson.dumps(values)[1:-1].split(b",")
    if encoded.count(b"null") != values.count(None):
        return [null if v is None else repr(v) for v in values]
    return [null if v == b"null" else v.decode() for v in encoded]


def _utc_wall_column(values: list[Any], null: _CsvNull) -> list[Any]:
    """Timestamps as their UTC wall time without offset (``naive_timestamps``): orjson's ISO text for the
    whole column, its ``+00:00`` cut off; a value in another zone is converted on its own (rare: the
    normalizer keeps what the source gave, and most sources give UTC)."""
    encoded = orjson.dumps(values)[1:-1].split(b",")
    return [null if text == b"null" else
            text[1:-7].decode() if text.endswith(UTC_SUFFIX + b'"') else _utc_wall_time(value).replace(" ", "T")
            for text, value in zip(encoded, values)]


def _convert(row: dict[str, Any], converters: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    out = dict(row)
    for name, conv in converters.items():
        value = out.get(name)
        if value is not None:
            out[name] = conv(value)
    return out


class InsertValuesWriter(LoadFileWriter):
    """SQL VALUES bodies, framed by byte length so literals may hold any character.

    Layout: a JSON header line with the column names, then per statement ``<bytes>\\n<body>\\n``
    where body is ``(v, ...),\\n(v, ...)``; the load job wraps each body in its own INSERT.
    """

    file_format = "insert_values"

    def write_header(self) -> None:
        self._names = [c.name for c in self.columns]
        self._file.write(orjson.dumps(self._names) + b"\n")
        literal = sql_literal_renderer(self.capabilities)
        renderers = [_literal_for(c, literal, self.capabilities) for c in self.columns]
        self._renderers = list(zip(self._names, renderers))

    def write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Statements end at max_rows_per_insert rows, the parameter limit or max_query_length bytes."""
        step = self.capabilities.max_rows_per_insert
        params = self.capabilities.max_parameters_per_statement
        if params:
            step = max(1, min(step, params // max(1, len(self._names))))
        max_bytes = self.capabilities.max_query_length - HEADER_ALLOWANCE - len(",".join(self._names))
        encoded_rows = list(map(self._encode, rows))
        batch = b"".join(encoded_rows)
        if b"\x00" in batch or may_hold_nul(batch):  # raw in text literals, escaped in json ones
            encoded_rows = list(map(self._encode, self.repairs.repair_rows(self.table_name, rows)))
        tuples: list[bytes] = []
        size = 0
        for encoded in encoded_rows:
            if tuples and (len(tuples) >= step or size + len(encoded) + 2 > max_bytes):
                self._write_body(tuples)
                tuples, size = [], 0
            tuples.append(encoded)
            size += len(encoded) + 2
        if tuples:
            self._write_body(tuples)
        self.row_count += len(rows)

    def _encode(self, row: dict[str, Any]) -> bytes:
        """One row's ``(v, ...)`` tuple; a string with surrogates (UTF-8 refuses it) is repaired."""
        values = []
        for name, render in self._renderers:
            value = row.get(name)
            values.append("NULL" if value is None else render(value))
        try:
            return ("(" + ",".join(values) + ")").encode("utf-8")
        except UnicodeEncodeError:
            return self._encode(self.repairs.repair_row(self.table_name, row))

    def _write_body(self, tuples: list[bytes]) -> None:
        body = b",\n".join(tuples)
        self._file.write(b"%d\n" % len(body))
        self._file.write(body)
        self._file.write(b"\n")


def read_insert_values(path: Path) -> tuple[list[str], Iterator[str]]:
    """(column names, VALUES bodies) of an insert_values file; bodies are read lazily."""
    f = open(path, "rb")
    names = orjson.loads(f.readline())

    def bodies() -> Iterator[str]:
        with f:
            while True:
                size_line = f.readline()
                if not size_line:
                    return
                yield f.read(int(size_line)).decode("utf-8")
                f.readline()

    return names, bodies()


def sql_literal_renderer(capabilities: DestinationCapabilities) -> Callable[[str], str]:
    """Quotes a string for the destination's SQL: doubled quotes, plus backslashes where needed."""
    if capabilities.string_literal_escape == "backslash":
        def quote(text: str) -> str:
            return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    else:
        def quote(text: str) -> str:
            return "'" + text.replace("'", "''") + "'"
    return quote


def _utc_wall_time(value: Any) -> str:
    """``2024-01-02 03:04:05.123456`` in UTC, for databases whose timestamps have no time zone."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)


def _double_literal(quote: Callable[[str], str]) -> Callable[[Any], str]:
    """Finite floats as numbers; nan, ±inf and -0.0 as strings the column casts (a bare -0.0 is a
    numeric literal, which has no negative zero)."""
    def render(value: Any) -> str:
        v = float(value)
        if math.isfinite(v) and not (v == 0.0 and math.copysign(1.0, v) < 0):
            return repr(v)
        return quote(repr(v))

    return render


def _literal_for(column: Column, quote: Callable[[str], str],
                 capabilities: DestinationCapabilities) -> Callable[[Any], str]:
    t = column.data_type
    if t in ("bigint", "decimal"):
        return str
    if t == "double":
        return _double_literal(quote)
    if t == "bool":
        return lambda v: "TRUE" if v else "FALSE"
    if t == "timestamp" and capabilities.naive_timestamps:
        return lambda v: quote(_utc_wall_time(v))
    if t in ("timestamp", "date", "time"):
        return lambda v: quote(v.isoformat() if isinstance(v, (datetime, date, time)) else str(v))
    if t == "json":
        return lambda v: quote(dumps_json(v))
    if t == "binary":
        template = capabilities.binary_literal_template
        return lambda v: template.format(hex=bytes(v).hex())
    return lambda v: quote(v if isinstance(v, str) else str(v))


class ParquetWriter(LoadFileWriter):
    """Parquet through pyarrow (the optional ``parquet`` extra), one row group per batch."""

    file_format = "parquet"
    takes_rows_with_ids = True

    def write_header(self) -> None:
        import pyarrow as pa

        from loadbay.common.arrow_types import arrow_type

        self._pa = pa
        self._schema = pa.schema([pa.field(c.name, arrow_type(c, self.capabilities), nullable=True)
                                  for c in self.columns])
        self._converters: dict[str, Callable[[Any], Any]] = {}
        for c, field in zip(self.columns, self._schema):
            if c.data_type == "json":
                self._converters[c.name] = dumps_json
            elif c.data_type == "decimal" and pa.types.is_string(field.type):
                self._converters[c.name] = str
        self._struct = pa.struct(list(self._schema))
        names = self._schema.names
        self._has_ids = LOAD_ID in names and ROW_ID in names  # the schema can take a RowsWithIds' ids
        # the schema's fields but the load id and row id: the struct of ``RowsWithIds`` items
        from loadbay.common.storage.arrow_writer import GENERATED_IDS

        # text columns that may hold a NUL (by index), and whether each is JSON text (where NUL is escaped)
        self._nul_checked = [(i, c.data_type == "json") for i, (c, field) in enumerate(zip(self.columns, self._schema))
                             if pa.types.is_string(field.type) and c.name not in GENERATED_IDS]
        self._writer = self.open_writer()

    def open_writer(self) -> Any:
        import pyarrow.parquet as pq

        from loadbay.common.storage.arrow_writer import COMPRESSION, DICTIONARY_COLUMNS

        dictionary = [name for name in DICTIONARY_COLUMNS if name in self._schema.names]
        return pq.ParquetWriter(self._file, self._schema, compression=COMPRESSION,
                                use_dictionary=dictionary or False, write_statistics=False)

    def write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Arrow converts the rows first; a batch whose conversion met a surrogate, or whose text may hold a NUL
        (a byte search), is looked at closely, repaired and converted again (a JSON dump of every batch cost 6%)."""
        table = self._table(rows, surrogates_fail=False)
        if table is None or table_may_hold_nul(table, self._nul_checked):
            if needs_repair(rows):
                rows = self.repairs.repair_rows(self.table_name, rows)
            table = self._table(rows, surrogates_fail=True)
        self._writer.write_table(table)
        self.row_count += len(rows)

    def _table(self, rows: Sequence[dict[str, Any]], surrogates_fail: bool) -> Any:
        """The rows as an Arrow table of the file's schema; None when a string holds a surrogate (UTF-8 cannot
        hold one), unless ``surrogates_fail``."""
        try:
            if isinstance(rows, RowsWithIds) and self._has_ids:
                table = self._table_with_ids(rows)
                if table is not None:
                    return table
            if self._converters:
                rows = [_convert(row, self._converters) for row in rows]
            return rows_to_table(self._pa, rows, self._struct)
        except UnicodeEncodeError:
            if surrogates_fail:
                raise
            return None

    def _table_with_ids(self, rows: RowsWithIds) -> Any:
        """The normalizer's value lists converted by Arrow a column at a time, the ids added as whole columns; None
        for a batch whose text passes 2 GiB (Arrow returns chunks)."""
        pa = self._pa
        n = len(rows)
        arrays = {LOAD_ID: pa.array([rows.load_id] * n, pa.string()), ROW_ID: pa.array(rows.row_ids, pa.string())}
        for field in self._schema:  # the value lists the normalizer gathered: a column at a time
            if field.name in arrays:
                continue
            values = rows.columns.get(field.name)
            if values is None:
                arrays[field.name] = pa.nulls(n, field.type)
                continue
            convert = self._converters.get(field.name)
            if convert is not None:
                values = [None if v is None else convert(v) for v in values]
            arrays[field.name] = pa.array(values, type=field.type)
        if any(isinstance(array, pa.ChunkedArray) for array in arrays.values()):
            return None  # text past 2 GiB in one batch: the rows go the common way
        return pa.Table.from_batches([pa.RecordBatch.from_arrays([arrays[n] for n in self._schema.names],
                                                                 schema=self._schema)])

    def write_footer(self) -> None:
        self._writer.close()


class ArrowIpcRowsWriter(ParquetWriter):
    """Dict rows into an Arrow IPC file (``loader_file_format="arrow"``), converted as for parquet; one record
    batch per batch of rows."""

    file_format = "arrow"

    def open_writer(self) -> Any:
        import pyarrow.ipc

        return pyarrow.ipc.new_file(self._file, self._schema)


def rows_to_table(pa: Any, rows: Sequence[dict[str, Any]], struct: Any) -> Any:
    """Dict rows as an Arrow table of ``struct``'s fields (a missing key is NULL, another key is ignored):
    Arrow converts each dict in C++, two to three times faster than ``Table.from_pylist``, which gathers
    every column in Python first; the same values and the same errors. A text or binary column past 2 GiB
    in one batch makes Arrow return chunks, which ``Table.from_struct_array`` takes as they are."""
    array = pa.array(rows if isinstance(rows, list) else list(rows), type=struct)
    if isinstance(array, pa.ChunkedArray):
        return pa.Table.from_struct_array(array)
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(array)])


WRITERS: dict[str, type[LoadFileWriter]] = {
    w.file_format: w for w in (JsonlWriter, CsvWriter, InsertValuesWriter, ParquetWriter, ArrowIpcRowsWriter)
}
