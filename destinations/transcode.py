"""jsonl (or parquet's Arrow record batches) → csv by DuckDB's C++ readers and writers, for the
destinations whose bulk load reads csv (PostgreSQL's ``COPY``, MySQL's ``LOAD DATA``): a fraction of the
Python csv writer's cost per row.

The csv is the one loadbay's csv writer writes for the destination (its capabilities ``csv_null`` and
``naive_timestamps``), so one load statement reads both. It lives in the package's scratch folder only
while it loads (a killed run's is removed when the package resumes). One in-memory DuckDB per process
does the transcodes, one at a time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlglot import exp

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.destination import LoadJob
from loadbay.common.exceptions import DestinationTerminalError
from loadbay.common.schema.types import Column
from loadbay.common.storage.package import JobFile, LoadPackage
from loadbay.destinations import statements as sql

logger = logging.getLogger(__name__)

# loadbay type → the DuckDB type a jsonl value is read as before it is written out as csv text
TRANSCODE_TYPES = {"text": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN",
                   "timestamp": "TIMESTAMPTZ", "date": "DATE", "time": "TIME", "decimal": "VARCHAR",
                   "json": "JSON", "binary": "VARCHAR"}
"""Decimals stay text (PostgreSQL's numeric is wider than DuckDB's); binary arrives as base64."""
TRANSCODE_MEMORY = "64MB"
TRANSCODE_MEMORY_FALLBACK = "1GB"
TRANSCODE_THREADS = 1
"""Enough to stream a 100k-row file (DuckDB's json reader takes ~60 MB whatever the file); a file
whose rows need more is retried with the fallback rather than failed."""
TRANSCODE_SLOTS = threading.Semaphore(1)
"""Transcodes at once in this process, whatever the number of load jobs: one bounds memory (the
pipeline stays under 200 MiB) and costs little, as a transcode takes a fraction of its load."""


class TranscodeRefused(DestinationTerminalError):
    """DuckDB refused the file (a value that does not fit its column): nothing of it reached the server. A
    destination with a slower exact path (the SQLAlchemy destination's executemany, which names the value)
    may load the file that way instead."""


def read_jsonl(path: str, columns: list[Column]) -> exp.Table:
    """DuckDB's ``read_json`` of a loadbay jsonl file, each column read as ``TRANSCODE_TYPES`` says."""
    read_as = []
    for c in columns:
        kind = "TIMESTAMP" if c.data_type == "timestamp" and c.timezone is False else TRANSCODE_TYPES[c.data_type]
        read_as.append(exp.PropertyEQ(this=exp.Literal.string(c.name), expression=exp.Literal.string(kind)))
    return exp.Table(this=exp.Anonymous(this="read_json", expressions=[
        exp.Literal.string(path),
        exp.PropertyEQ(this=exp.var("format"), expression=exp.Literal.string("newline_delimited")),
        exp.PropertyEQ(this=exp.var("columns"), expression=exp.Struct(expressions=read_as))]))


def transcode_select(source: exp.Table, columns: list[Column], capabilities: DestinationCapabilities, *,
                     binary_base64: bool = True) -> exp.Select:
    """DuckDB query turning ``source`` (``read_jsonl``, or a registered Arrow stream) into the destination's
    csv: binary as ``\\x`` hex (from base64 in jsonl), timestamps as their UTC wall time where the destination
    has ``naive_timestamps`` (the transcoder's session is UTC), the rest as text."""
    projections: list[exp.Expression] = []
    for c in columns:
        ref: exp.Expression = exp.column(c.name, quoted=True)
        if c.data_type == "binary":
            data = exp.Anonymous(this="from_base64", expressions=[ref]) if binary_base64 else ref
            hex_digits = exp.Anonymous(this="hex", expressions=[data])
            ref = exp.alias_(exp.DPipe(this=exp.Literal.string("\\x"), expression=hex_digits), c.name, quoted=True)
        elif c.data_type == "timestamp" and capabilities.naive_timestamps:
            ref = exp.alias_(exp.cast(ref, "TIMESTAMP"), c.name, quoted=True)
        projections.append(ref)
    return exp.select(*projections).from_(source)


DUCKDB_MAX_DECIMAL_DIGITS = 38
"""DuckDB's widest DECIMAL: it reads a wider Arrow decimal as DOUBLE, losing digits."""
ARROW_VIEW = "lb_arrow_batches"
"""The name an Arrow stream is registered under in the transcoder, for the one transcode that reads it."""


def arrow_batches(parquet: Any) -> Any:
    """A ``pyarrow.RecordBatchReader`` over a ``pyarrow.parquet.ParquetFile``, for DuckDB to scan: decimals
    wider than DuckDB's as their exact text (Arrow's cast keeps every digit)."""
    import pyarrow as pa

    schema = parquet.schema_arrow
    wide = [i for i, f in enumerate(schema) if pa.types.is_decimal(f.type) and f.type.precision > DUCKDB_MAX_DECIMAL_DIGITS]
    if not wide:
        return pa.RecordBatchReader.from_batches(schema, parquet.iter_batches())
    for i in wide:
        schema = schema.set(i, schema.field(i).with_type(pa.string()))

    def cast(batch: Any) -> Any:
        arrays = [column.cast(pa.string()) if i in wide else column for i, column in enumerate(batch.columns)]
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, map(cast, parquet.iter_batches()))


def scratch_path(job_file: JobFile, suffix: str) -> Path:
    """A temporary file of the job in its package's scratch folder, never among the job files."""
    return LoadPackage(job_file.path.parent.parent).scratch_path(job_file, suffix)


@contextmanager
def transcoded_csv(job: LoadJob, columns: list[Column], capabilities: DestinationCapabilities, *,
                   batches: Callable[[], Any] | None = None) -> Iterator[Path]:
    """The job's jsonl file (or the Arrow record batches ``batches()`` streams, for a parquet file) as the
    destination's csv (a header, then ``columns``), in the package's scratch folder while the ``with``
    block loads it. A file DuckDB refuses (it does not fit its columns) is a terminal error naming file and
    table: nothing reached the server."""
    import duckdb

    csv_path = scratch_path(job.job_file, ".csv")
    source = exp.to_table(ARROW_VIEW) if batches is not None else read_jsonl(str(job.job_file.path), columns)
    query = transcode_select(source, columns, capabilities, binary_base64=batches is None)
    statement = sql.copy_to_csv(query, str(csv_path), null=capabilities.csv_null)
    try:
        try:
            _transcode(statement, TRANSCODE_MEMORY, batches)
        except duckdb.OutOfMemoryException:  # very wide rows: more memory beats failing the load
            logger.warning("file %s: transcoding needs more than %s, retrying with %s", job.job_file.path.name,
                           TRANSCODE_MEMORY, TRANSCODE_MEMORY_FALLBACK)
            _transcode(statement, TRANSCODE_MEMORY_FALLBACK, batches)
        yield csv_path
    except duckdb.Error as exc:
        raise TranscodeRefused(f"file {job.job_file.path.name}: table {job.table.name!r}: "
                               f"{type(exc).__name__}: {exc}") from exc
    finally:
        csv_path.unlink(missing_ok=True)


def _transcode(statement: exp.Copy, memory_limit: str, batches: Callable[[], Any] | None) -> None:
    with transcoder(memory_limit) as con:
        if batches is None:
            con.execute(sql.render(statement, "duckdb"))
            return
        con.register(ARROW_VIEW, batches())  # a fresh stream for each attempt
        try:
            con.execute(sql.render(statement, "duckdb"))
        finally:
            con.unregister(ARROW_VIEW)


_kept: tuple[int, str, Any] | None = None
"""(process id, memory limit, in-memory DuckDB connection) kept for the process's next transcode."""


@contextmanager
def transcoder(memory_limit: str) -> Iterator[Any]:
    """An in-memory DuckDB connection set up for transcoding, one transcode at a time (``TRANSCODE_SLOTS``).

    Starting a DuckDB database costs ~20 ms, more than transcoding a 1,000-row file, so the one with
    the default memory limit is kept for the next transcode of the process (a forked child makes its
    own); one with a larger limit, or one a transcode failed in, is closed after use, giving its
    memory back.
    """
    global _kept
    import duckdb

    with TRANSCODE_SLOTS:
        keep = memory_limit == TRANSCODE_MEMORY
        con = _kept[2] if keep and _kept is not None and _kept[:2] == (os.getpid(), memory_limit) else None
        if con is None:
            con = duckdb.connect()
            for setting in [*sql.session_utc("duckdb"),
                            sql.set_variable("preserve_insertion_order", exp.false()),  # rows stream through
                            sql.set_variable("memory_limit", memory_limit),
                            sql.set_variable("threads", exp.Literal.number(TRANSCODE_THREADS))]:
                con.execute(sql.render(setting, "duckdb"))
            if keep:
                _kept = (os.getpid(), memory_limit, con)
        try:
            yield con
        except BaseException:
            if keep:
                _kept = None
            con.close()
            raise
        if not keep:
            con.close()
