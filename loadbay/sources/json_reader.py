"""JSON Lines and JSON files → Arrow record batches, read by DuckDB's ``read_json`` (C++, in parallel).

The rows must come out as the same Python objects ``json.loads`` would give, typed the way the dict path
types them, so a file by path loads exactly as its parsed rows would. How a file is read:

1. DuckDB decides columns and types from every row of the file (``sample_size=-1``; objects become
   STRUCTs, arrays LISTs; map inference is off, so an object always becomes columns, as with dict rows)
   and streams record batches. Types from a sample would not do: DuckDB converts a later value of
   another JSON type to the sampled one without a word (1.5 into a BIGINT as 2, "12" as 12, true as 1,
   an object into a VARCHAR as its text). The whole-file pass costs about 1.2 s per million flat rows in
   one thread; an uncompressed JSON Lines file of 64 MB or more is typed in parallel parts instead
   (``json_parts``: one per core, their columns combined only where that gives what the whole-file pass
   gives), about half that on 2 cores.
2. Strings are read as text: DuckDB would take "01-02-2020" for a DATE (its guessed format) and
   "12:00:00" for a TIME, where the dict path types only ISO 8601 timestamps and ``YYYY-MM-DD`` dates;
   the Arrow path then types text columns as the dict path does. So DuckDB is not asked to try date and
   timestamp formats on every string of the whole-file pass either (``_NO_TEMPORAL_FORMAT``).
3. Leaves DuckDB cannot type (only NULLs or empty lists, or values of several kinds) are read as JSON
   text and must hold no value; one that does sends the rest of the file to Python rows, which load
   exactly as those dicts would (variant columns and all).
4. Numbers DuckDB would read as DOUBLE (or as integers past BIGINT) are read as JSON text and typed per
   batch in Arrow as each value is in Python: int64, or float64 for a fraction or exponent, so an integer
   is never rounded through a double. Where such a key holds numbers of both kinds in a batch (1 and 1.5:
   the dict path types them apart, as a bigint column and a variant), the column is handed on as
   ``JsonNumbers`` (``common/arrow_json``), which keeps each value's kind for the normalizer. A batch
   where it holds an integer beyond 64 bits (a decimal sized by the destination) goes on as Python rows,
   its numbers parsed as ``json.loads`` parses them; the next batch is columnar again.

Rows come out in file order. Memory is bounded by DuckDB's buffers and one batch. A ``.json`` document is
read by DuckDB as well (``format='auto'``: an array of objects, one object, or JSON lines); only the
Python rows of a ``.json`` document need the whole document in memory. A malformed file raises
``SourceError`` with the file and the line, found by parsing it in Python (on the error path only; what
Python parses and DuckDB refuses, such as NaN, goes on as Python rows).
"""

from __future__ import annotations

import io
import json
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from loadbay.common import arrow_build
from loadbay.common.arrow_json import has_long_digits, json_numbers
from loadbay.common.exceptions import SourceError
from loadbay.sources import json_parts
from loadbay.sources.json_rows import RowSource
from loadbay.sources.batch_sizes import arrow_batch_size, rows_batch_size

logger = logging.getLogger(__name__)

_FRACTIONAL = r"^-?(0|[1-9][0-9]*)(\.[0-9]+([eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)$"
"""A JSON number with a fraction or an exponent: a float in Python."""
_INTEGER = r"^-?(0|[1-9][0-9]*)$"
"""A JSON number without either: an int in Python. Every JSON number is one of the two."""
_NUMBER_TYPES = ("double", "ubigint", "hugeint", "uhugeint")  # read as JSON text, typed per batch
_TEMPORAL_TYPES = ("date", "time", "time with time zone", "timestamp", "timestamp with time zone",
                   "timestamp_s", "timestamp_ms", "timestamp_ns")  # read as VARCHAR: DuckDB guesses formats the dict path does not know
_JSON_KINDS = ("bigint", "boolean", "varchar", "struct", "list", "null", "map", *_NUMBER_TYPES)
"""DuckDB types of what JSON itself holds; any other (UUID, ...) DuckDB guessed from text, which is read as
written."""
_NO_TEMPORAL_FORMAT = "<no date>"
"""The date and timestamp format DuckDB is given, which no date or time text has: strings are read as text
(point 2 of the module doc), so trying ISO formats on each one while typing the file is wasted (0.25 s of the
2 s pass over a million rows with two timestamp columns). What it may still make a DATE or TIMESTAMP (the
odd column of that very text) is read as text all the same."""
_Path = tuple[str | None, ...]  # field names from the top; None steps into a list's elements


class _Untyped(Exception):
    """A value DuckDB's types cannot hold: the rest of the file goes on as Python rows."""


def json_batches(path: Path, batch_size: int | None, *, fmt: str = "jsonl", compression: str | None = None,
                 display: str | None = None, first_line: int = 1) -> Iterator[pa.RecordBatch | list[Any]]:
    """Record batches of a JSON Lines (``fmt`` jsonl/ndjson) or JSON file; see the module doc.

    ``display`` names the file in errors (``<stdin>`` for a chunk of it), ``first_line`` is the line
    number of the file's first line there.
    """
    yield from _Reader(path, fmt, compression, display or str(path), first_line).batches(batch_size)


class _Reader:
    def __init__(self, path: Path, fmt: str, compression: str | None, display: str, first_line: int) -> None:
        self.path = path
        self.format = "newline_delimited" if fmt in ("jsonl", "ndjson") else "auto"
        self.compression = compression or "none"
        self.display = display
        self.first_line = first_line

    def batches(self, batch_size: int | None) -> Iterator[pa.RecordBatch | list[Any]]:
        with _literal_path(self.path) as duck_path:
            yield from self._batches(duck_path, batch_size)

    def _batches(self, duck_path: Path, batch_size: int | None) -> Iterator[pa.RecordBatch | list[Any]]:
        done = 0  # rows handed on so far
        try:
            for batch in self._duckdb_batches(duck_path, batch_size):
                done += len(batch) if isinstance(batch, list) else batch.num_rows
                yield batch
            return
        except _Untyped as exc:
            logger.info("file %s: %s after row %d; reading on as Python rows", self.display, exc, done)
        yield from python_rows(self.path, rows_batch_size(batch_size), fmt=self.format, compression=self.compression,
                               display=self.display, first_line=self.first_line, skip=done)

    def _duckdb_batches(self, duck_path: Path, batch_size: int | None) -> Iterator[pa.RecordBatch | list[Any]]:
        con = duckdb.connect()
        rows = RowSource(self.path, fmt=self.format, compression=self.compression, opener=_open, loads=loads,
                         refusal=self._malformed)
        try:
            relation, numbers, untyped = self._bind(con, duck_path)
            stream = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader  # DuckDB 2 / 1.x
            done = 0
            for batch in stream(arrow_batch_size(batch_size)):
                size = batch.num_rows
                rows.begin(done)  # first: the lines read for this batch are its own
                typed = _typed_leaves(batch, numbers, untyped) if numbers or untyped else batch
                if typed is None:  # numbers Arrow cannot type: the batch's rows as their lines parse
                    yield rows.rows(np.arange(done, done + size))
                else:
                    typed = rows.tag(typed, done)
                    if _holds_a_null_line(typed, rows, done):
                        raise _Untyped("a line holds null, not an object")
                    yield typed
                done += size
        except UnicodeDecodeError as exc:  # DuckDB's message cut inside a character (a duplicate key's text)
            raise _Untyped(f"DuckDB's error could not be read ({exc.reason})") from exc
        except (duckdb.Error, pa.ArrowException, OSError) as exc:  # errors inside the stream come as Arrow's
            message = str(exc)
            if "Malformed JSON" in message or "JSON parse error" in message:
                raise self._malformed(exc) from exc
            if any(sign in message for sign in _UNTYPED_SIGNS):
                raise _Untyped(message.splitlines()[0]) from exc
            raise SourceError(f"file {self.display}: cannot be read as JSON: {message}", path=self.display) from exc
        finally:
            rows.close()
            con.close()

    def _bind(self, con: duckdb.DuckDBPyConnection,
              duck_path: Path) -> tuple[duckdb.DuckDBPyRelation, list[_Path], list[_Path]]:
        """The relation reading the file with types from the whole file; the paths of its DOUBLE leaves and
        of its untyped ones (NULL or JSON: no value, or values of several kinds), both read as JSON text."""
        params = {"p": str(duck_path), "format": self.format, "compression": self.compression,
                  "no_format": _NO_TEMPORAL_FORMAT}
        query = ("SELECT * FROM read_json($p, format := $format, compression := $compression, records := 'true', "
                 "map_inference_threshold := -1, sample_size := -1, dateformat := $no_format, "
                 "timestampformat := $no_format{columns})")
        parted = None
        if self.format == "newline_delimited" and self.compression == "none":
            parted = json_parts.columns_in_parts(self.path, query.format(columns=""), params)
        relation = None if parted else con.sql(query.format(columns=""), params=params)
        names, types = parted or (relation.columns, relation.types)  # type: ignore[union-attr]
        numbers: list[_Path] = []
        untyped: list[_Path] = []
        texts: list[_Path] = []
        renamed = _renamed_by_case(list(names))
        if renamed:
            raise _Untyped(f"keys differing only by case ({', '.join(renamed)}), which DuckDB takes for one name")
        columns = {name: _spec(t, (name,), numbers, untyped, texts) for name, t in zip(names, types)}
        if relation is not None and not numbers and not untyped and not texts:
            return relation, [], []
        relation = con.sql(query.format(columns=", columns := $columns"), params={**params, "columns": columns})
        return relation, numbers, untyped

    def _malformed(self, exc: Exception) -> Exception:
        """A ``SourceError`` at the first line Python cannot parse (DuckDB's line count is off); where Python
        parses it all (NaN, Infinity), ``_Untyped``: the file goes on as Python rows."""
        found = find_malformed(self.path, fmt=self.format, compression=self.compression)
        if found is None:
            return _Untyped(f"DuckDB refused what Python reads ({str(exc).splitlines()[0]})")
        line, reason = found
        line += self.first_line - 1
        return SourceError(f"file {self.display}, line {line}: malformed JSON ({reason})", path=self.display,
                           line=line)


_UNTYPED_SIGNS = ("JSON transform error", "Could not convert", "expected records", "Duplicate name",
                  "maximum recursion depth", "Recursion level")
"""DuckDB's words for a file its types cannot read as it is (a nested key twice, differing only by case, is a
"Duplicate name" in a STRUCT; objects nested past 128 levels, or past 63 for its Arrow export): the rest of
the file goes on as Python rows."""
_SUFFIXED = re.compile(r"^(.*)_[0-9]+$")


def _renamed_by_case(names: list[str]) -> list[str]:
    """Columns DuckDB made by renaming a key that differs from another only by case (``a`` and ``A`` give
    ``a`` and ``A_1``; the dict path keeps both apart its own way, so such a file goes as Python rows). A key
    really named ``a_1`` beside ``a`` is not one: the base of a rename differs from the other key's case."""
    by_lower = {name.lower(): name for name in names}
    found = []
    for name in names:
        match = _SUFFIXED.match(name)
        if match:
            other = by_lower.get(match.group(1).lower())
            if other is not None and other != match.group(1):
                found.append(name)
    return found


@contextmanager
def _literal_path(path: Path) -> Iterator[Path]:
    """``path``, or a link to it whose name DuckDB does not take for a glob (``*``, ``?``, ``[``)."""
    if not any(ch in str(path) for ch in "*?["):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="loadbay-json-") as tmp:
        link = Path(tmp) / f"input{''.join(path.suffixes[-2:])}"
        link.symlink_to(path.resolve())
        yield link


def _spec(t: duckdb.DuckDBPyType, path: _Path, numbers: list[_Path], untyped: list[_Path],
          texts: list[_Path]) -> str:
    """DuckDB type text of ``t`` with number leaves that may not be exact (DOUBLE, and the integers past
    BIGINT) and untyped leaves read as JSON text (their paths noted), dates and times as VARCHAR."""
    kind = t.id
    if kind in _NUMBER_TYPES:
        numbers.append(path)
        return "JSON"
    if kind in _TEMPORAL_TYPES or kind not in _JSON_KINDS:  # a type DuckDB guessed from text (UUID: its case lost)
        texts.append(path)
        return "VARCHAR"
    if kind == "null" or str(t) == "JSON":
        untyped.append(path)
        return "JSON"
    if kind == "struct":
        fields = ", ".join(f'"{name.replace(chr(34), chr(34) * 2)}" {_spec(child, (*path, name), numbers, untyped, texts)}'
                           for name, child in t.children)
        return f"STRUCT({fields})"
    if kind == "list":
        (_, child), = t.children
        return f"{_spec(child, (*path, None), numbers, untyped, texts)}[]"
    return str(t)


def _holds_a_null_line(batch: pa.RecordBatch, rows: RowSource, first_row: int) -> bool:
    """Whether a row of ``batch`` that is null in every column is a ``null`` line, which DuckDB reads as a
    record of nulls and the dict path refuses as an item that is no dict (``{}`` reads the same and is fine):
    such rows are few, and only their lines are parsed."""
    if not batch.num_columns:
        return False
    empty = batch.column(0).is_null()
    for column in batch.columns[1:]:
        empty = pc.and_(empty, column.is_null())
    positions = np.flatnonzero(arrow_build.to_numpy(empty))
    return bool(positions.size) and any(row is None for row in rows.rows(first_row + positions))


# -- leaves typed per batch ------------------------------------------------------------------------

class _MixedNumbers(Exception):
    """Under one key in a batch, numbers beside other values, or an integer beyond 64 bits."""


def _typed_leaves(batch: pa.RecordBatch, numbers: list[_Path], untyped: list[_Path]) -> pa.RecordBatch | None:
    """``batch`` with untyped leaves, which must hold no value (else ``_Untyped``), as Arrow nulls, and number
    leaves typed by ``number_array``; None where ``number_array`` cannot type one (the caller then takes
    the batch's rows from its lines, as ``json.loads`` reads them: DuckDB's structs would add every key of
    the file to each object)."""
    arrays = list(batch.columns)
    for paths, leaf in ((untyped, _no_values), (numbers, number_array)):
        for path in paths:
            index = batch.schema.get_field_index(path[0])  # type: ignore[arg-type]
            try:
                arrays[index] = _replace_leaf(arrays[index], path[1:], leaf)
            except _MixedNumbers:
                return None
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _no_values(array: pa.Array) -> pa.Array:
    if array.null_count != len(array):
        raise _Untyped("a key DuckDB could not type holds a value")
    return pa.nulls(len(array))


def _replace_leaf(array: pa.Array, path: _Path, leaf: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``array`` with the leaf at ``path`` (inside structs and lists) replaced by ``leaf(values)``."""
    if not path:
        return leaf(array)
    step, rest = path[0], path[1:]
    mask = array.is_null() if array.null_count else None
    if step is None:  # into the elements of a list
        offsets = array.offsets
        first, last = offsets[0].as_py(), offsets[-1].as_py()
        values = _replace_leaf(array.values.slice(first, last - first), rest, leaf)
        if first:
            offsets = pc.subtract(offsets, offsets[0])
        return pa.ListArray.from_arrays(offsets, values, mask=mask)
    names = [array.type.field(i).name for i in range(array.type.num_fields)]
    children = [array.field(i) for i in range(len(names))]
    position = array.type.get_field_index(step)
    children[position] = _replace_leaf(children[position], rest, leaf)
    return pa.StructArray.from_arrays(children, names=names, mask=mask)


def number_array(text: pa.Array) -> pa.Array:
    """JSON number texts as the Arrow type of what each is in Python: int64 (all integers that fit), float64
    (all with a fraction or exponent), or ``JsonNumbers`` where they are of both kinds (the normalizer puts
    each kind as the dict path does). Raises ``_MixedNumbers`` where they are not all numbers, or hold an
    integer beyond 64 bits (the dict path sizes its decimal column by the destination's precision, which
    the reader does not know)."""
    text = text.cast(pa.string())
    if text.null_count == len(text):
        return pa.nulls(len(text))
    # one regex pass for a batch of floats, the most common case (two before: JSON number, then integer)
    fractional = pc.match_substring_regex(text, _FRACTIONAL)
    if pc.all(fractional).as_py():
        return pc.cast(text, pa.float64())
    integer = pc.match_substring_regex(text, _INTEGER)
    if not pc.all(pc.or_(fractional, integer)).as_py():
        raise _MixedNumbers
    try:
        if pc.any(fractional).as_py():
            return json_numbers(text, fractional)
        return pc.cast(text, pa.int64())
    except pa.ArrowInvalid:
        raise _MixedNumbers from None


# -- the Python way: fallback rows and finding malformed lines ---------------------------------------

def _open(path: Path, compression: str) -> io.BufferedReader:
    stream = pa.input_stream(str(path), compression=None if compression == "none" else compression)
    return io.BufferedReader(stream, buffer_size=1 << 20)  # type: ignore[arg-type]


def loads(text: bytes) -> Any:
    """One JSON document as the Python objects ``json.loads`` gives: by orjson (fast), except where orjson
    would differ: an integer of 19 digits or more (orjson reads those past 64 bits as floats), or what
    orjson refuses and ``json`` takes (NaN, Infinity, 1e400). Raises ValueError for malformed text."""
    if not has_long_digits(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text)
    except RecursionError:  # orjson refuses past 1024 levels, json past Python's recursion limit
        raise ValueError("nested too deeply to be read") from None


def python_rows(path: Path, batch_size: int, *, fmt: str, compression: str, display: str, first_line: int = 1,
                skip: int = 0) -> Iterator[list[Any]]:
    """Rows parsed in Python (``loads``), after the first ``skip`` (those went on already), in batches."""
    if fmt == "auto":
        with _open(path, compression) as f:
            data = f.read()
        try:
            document = loads(data)
        except ValueError:
            pass  # JSON lines in a .json file, or malformed: read line by line
        else:
            items = document if isinstance(document, list) else [document]
            for start in range(skip, len(items), batch_size):
                yield items[start:start + batch_size]
            return
        del data
    batch: list[Any] = []
    seen = 0
    with _open(path, compression) as f:
        for number, line in enumerate(f, first_line):
            if not line.strip():
                continue
            seen += 1
            if seen <= skip:
                continue
            try:
                batch.append(loads(line))
            except ValueError as exc:
                raise SourceError(f"file {display}, line {number}: malformed JSON ({_reason(exc)})", path=display,
                                  line=number) from exc
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def find_malformed(path: Path, *, fmt: str, compression: str) -> tuple[int, str] | None:
    """``(line, reason)`` of the first place Python cannot parse, or None when it parses it all."""
    if fmt == "auto":
        with _open(path, compression) as f:
            data = f.read()
        try:
            loads(data)
            return None
        except ValueError as exc:
            whole = exc
        if data.lstrip()[:1] not in (b"[", b""):  # maybe JSON lines: the first bad line says more
            found = find_malformed(path, fmt="newline_delimited", compression=compression)
            if found is not None and found[0] > 1:
                return found
        return getattr(whole, "lineno", 1), _reason(whole)
    with _open(path, compression) as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    loads(line)
                except ValueError as exc:
                    return number, _reason(exc)
    return None


def _reason(exc: ValueError) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8: {exc.reason} at byte {exc.start}"
    if isinstance(exc, json.JSONDecodeError):  # some messages end in "at" ("Invalid control character at")
        return f"{exc.msg}{'' if exc.msg.endswith(' at') else ' at'} column {exc.colno}" if exc.colno else exc.msg
    return str(exc)
