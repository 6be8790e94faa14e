"""Arrow record batches as the csv PostgreSQL's ``COPY ... (FORMAT csv, NULL '')`` reads, rendered by
Arrow's C++ csv writer: no Python per row or per value.

What makes Arrow's csv exactly loadbay's csv (each point is under test in tests/integration/test_parquet_jobs.py):

- every string is quoted (Arrow's "needed" quoting quotes all string values) and a NULL is an unquoted
  empty field, so ``''`` and NULL stay apart; quotes are doubled, newlines and backslashes need nothing;
- doubles are the shortest text that reads back to the same bits, ``nan``, ``inf``, ``-inf`` and
  ``-0`` included (PostgreSQL's float8 reads all of them);
- timestamps keep their microseconds, aware ones written in UTC with a ``Z`` (``utc_text``), so the
  session's time zone plays no part; decimals keep every digit
  (``0E-9`` is a valid numeric); bools are ``true``/``false``;
- an instant or a date before the year 1 (an offset text such as ``0001-01-01T00:00:00+01:00`` is in 1 BC
  in UTC) is spelled as PostgreSQL reads it, ``0001-12-31 23:00:00Z BC``, where Arrow writes the proleptic
  year 0 (``before_year_one``; only such values are touched, in Python);
- binary has no csv form Arrow writes: it becomes bytea's hex text (``\\x0aff``) here, by Arrow
  kernels (``bytea_hex``); dictionary-encoded columns are decoded first.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from loadbay.common import arrow_build

WRITE_OPTIONS = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
QUEUED_CHUNKS = 2
"""Rendered batches waiting for COPY: the renderer runs one ahead of the connection, no further."""


def _hex_pairs() -> pa.Array:
    """For each byte value, its two hex digits as one uint16 (in memory order): a lookup table."""
    return arrow_build.numbers(np.array([int.from_bytes(f"{b:02x}".encode(), sys.byteorder) for b in range(256)]),
                               pa.uint16())


HEX_PAIRS = _hex_pairs()
_Z, _EMPTY = arrow_build.scalar("Z", pa.string()), arrow_build.scalar("", pa.string())


def bytea_hex(array: pa.Array) -> pa.Array:
    """Binary values as PostgreSQL bytea hex text (``\\x`` and two digits a byte); NULLs stay NULL.

    Arrow has no hex kernel: the bytes index a table of digit pairs (``take``), whose buffer is the
    hex text of all values end to end; doubled offsets cut it into values, which get their prefix.
    """
    array = array.cast(pa.large_binary())  # 64-bit offsets: the text is twice the bytes
    n = len(array)
    if n == 0:
        return arrow_build.texts([], pa.large_string())
    _, offsets_buffer, data_buffer = array.buffers()
    offsets = pa.Array.from_buffers(pa.int64(), n + 1, [None, offsets_buffer], offset=array.offset)
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    data = pa.Array.from_buffers(pa.uint8(), end - start, [None, data_buffer], offset=start)
    pairs = pc.take(HEX_PAIRS, data)
    hex_offsets = pc.multiply(pc.subtract(offsets, arrow_build.scalar(start, pa.int64())),
                              arrow_build.scalar(2, pa.int64()))
    validity = array.is_valid().buffers()[1] if array.null_count else None
    digits = pa.Array.from_buffers(pa.large_string(), n, [validity, hex_offsets.buffers()[1], pairs.buffers()[1]],
                                   null_count=array.null_count)
    return pc.binary_join_element_wise(arrow_build.scalar("\\x", pa.large_string()), digits,
                                       arrow_build.scalar("", pa.large_string()))


def _is_binary(arrow_type: pa.DataType) -> bool:
    return (pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type)
            or pa.types.is_fixed_size_binary(arrow_type) or pa.types.is_binary_view(arrow_type))


def utc_text(array: pa.Array) -> pa.Array:
    """Aware timestamps as UTC text with a ``Z``: Arrow's csv writer converts each aware value through
    the time zone database (~1.4 s a million); the naive view of the same UTC instants is 10x cheaper."""
    wall = array.cast(pa.timestamp(array.type.unit)).cast(pa.string())
    return pc.binary_join_element_wise(wall, _Z, _EMPTY)  # NULL stays NULL


_YEAR_ONE_SECONDS = -62135596800  # 0001-01-01T00:00:00 from the epoch
_UNIT_SECONDS = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}


def _first_year_one(arrow_type: pa.DataType) -> tuple[pa.DataType, int]:
    """The integer storage of a timestamp or date type and its value at 0001-01-01."""
    if pa.types.is_timestamp(arrow_type):
        return pa.int64(), _YEAR_ONE_SECONDS * _UNIT_SECONDS[arrow_type.unit]
    if pa.types.is_date32(arrow_type):
        return pa.int32(), _YEAR_ONE_SECONDS // 86400
    return pa.int64(), _YEAR_ONE_SECONDS * 1000  # date64: milliseconds


def before_year_one(original: pa.Array, text: pa.Array | None = None) -> pa.Array | None:
    """``text`` (the csv text of ``original``, a timestamp or date column; None: Arrow's own cast) with the
    values before the year 1 spelled as PostgreSQL reads them (``-0001-…`` and ``0000-…`` → ``0002-… BC``,
    ``0001-… BC``); None when there is none (the usual case: one vectorized comparison)."""
    storage, first = _first_year_one(original.type)
    early = pc.less(original.view(storage), arrow_build.scalar(first, storage))  # no pandas import (pa.scalar)
    if not pc.any(early).as_py():
        return None
    values = (text if text is not None else original.cast(pa.string())).to_pylist()
    for i in np.flatnonzero(arrow_build.to_numpy(pc.fill_null(early, arrow_build.FALSE))):
        spelled = values[i]
        year, rest = (spelled[1:].split("-", 1) if spelled.startswith("-") else spelled.split("-", 1))
        proleptic = -int(year) if spelled.startswith("-") else int(year)
        values[i] = f"{1 - proleptic:04d}-{rest} BC"
    return pa.array(values, pa.string())


def copy_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with every column in a type whose Arrow csv text COPY reads as the column's value."""
    columns: list[pa.Array] = []
    changed = False
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            column, changed = column.dictionary_decode(), True
        if _is_binary(column.type):
            column, changed = bytea_hex(column), True
        elif pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            aware = pa.types.is_timestamp(column.type) and column.type.tz is not None
            text = utc_text(column) if aware else None
            early = before_year_one(column, text)
            if early is not None or text is not None:
                column, changed = (early if early is not None else text), True
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names) if changed else batch


def render(batch: pa.RecordBatch) -> pa.Buffer:
    """One batch as csv rows (no header), in Arrow's memory."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(copy_ready(batch), sink, WRITE_OPTIONS)
    return sink.getvalue()


class CsvStream:
    """A read-only file object for ``copy_expert``: the csv of ``batches``, rendered one batch ahead by a
    thread (Arrow's reader and writer release the GIL) while the connection sends the previous one.

    An error while rendering (an unreadable file) is raised from ``read``, so COPY fails and rolls back.
    """

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._stop = threading.Event()
        self._chunk = pa.py_buffer(b"")
        self._position = 0
        self._done = False
        self._thread = threading.Thread(target=self._render_all, args=(iter(batches),), daemon=True,
                                        name="parquet-csv")
        self._thread.start()

    def _render_all(self, batches: Iterator[pa.RecordBatch]) -> None:
        try:
            for batch in batches:
                if self._stop.is_set():
                    return
                self._put(render(batch))
            self._put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, which raises it
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int = -1) -> bytes:
        while self._position >= len(self._chunk):
            if self._done:
                return b""
            item = self._queue.get()
            if item is None:
                self._done = True
                return b""
            if isinstance(item, BaseException):
                self._done = True
                raise item
            self._chunk, self._position = item, 0
        end = len(self._chunk) if size is None or size < 0 else min(len(self._chunk), self._position + size)
        data = self._chunk[self._position:end].to_pybytes()
        self._position = end
        return data

    def close(self) -> None:
        """Stop the renderer (COPY failed or finished) and wait for it."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> CsvStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
