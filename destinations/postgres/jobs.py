"""PostgreSQL load jobs: csv through ``COPY ... FROM STDIN``; jsonl and parquet become that csv first
(jsonl by DuckDB into a scratch file, parquet by Arrow straight into the COPY stream)."""

from __future__ import annotations

import csv
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.exceptions import DestinationTerminalError
from loadbay.common.schema.types import Column
from loadbay.common.storage.package import JobFile, LoadPackage
from loadbay.destinations import statements as sql
from loadbay.destinations.job_errors import columns_for, naming_file

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient


class CopyCsvJob(LoadJob):
    """Streams the file to the server with COPY: one statement, one transaction, the file never in memory."""

    def run(self, client: SqlJobClient) -> None:
        with open(self.job_file.path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f))
        with open(self.job_file.path, "rb") as f:  # bytes go to the server as they are, no decoding
            client.sql_client.copy_from(sql.copy_from_stdin(self.target, header), f)


PARQUET_BATCH_BYTES = 8 << 20
"""Uncompressed bytes of parquet per rendered batch: a few batches in memory at once, whatever the rows."""
PARQUET_BATCH_ROWS = (1_000, 131_072)


def parquet_batch_rows(parquet: Any) -> int:
    """Rows per batch for ``PARQUET_BATCH_BYTES``, from the file's own row group sizes."""
    meta = parquet.metadata
    rows = sum(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
    size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    low, high = PARQUET_BATCH_ROWS
    return high if not rows or not size else max(low, min(high, PARQUET_BATCH_BYTES * rows // size))


class ParquetCopyJob(LoadJob):
    """parquet → csv by Arrow's C++ csv writer (``loadbay.destinations.arrow_csv``), streamed into one COPY
    while it is rendered: no Python per row, no scratch file, memory bounded by a few record batches.

    Measured against transcoding with DuckDB into a scratch csv and against the rows-in-Python path
    it replaces: bench/parquet_jobs.py (figures in its docstring).
    """

    def run(self, client: SqlJobClient) -> None:
        import pyarrow.parquet as pq

        from loadbay.destinations.arrow_csv import CsvStream

        with naming_file(self):
            parquet = pq.ParquetFile(self.job_file.path)
            names = [c.name for c in columns_for(self, parquet.schema_arrow.names)]
            statement = sql.copy_from_stdin(self.target, names, header=False)
            with CsvStream(parquet.iter_batches(batch_size=parquet_batch_rows(parquet))) as stream:
                client.sql_client.copy_from(statement, stream)


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
pipeline stays under 200 MiB) and costs little, as a transcode takes a fraction of its COPY."""


def transcode_select(path: str, columns: list[Column]) -> exp.Select:
    """DuckDB query turning a loadbay jsonl file into the csv COPY reads: bytea as \\x hex, the rest as text."""
    read_as = []
    for c in columns:
        kind = "TIMESTAMP" if c.data_type == "timestamp" and c.timezone is False else TRANSCODE_TYPES[c.data_type]
        read_as.append(exp.PropertyEQ(this=exp.Literal.string(c.name), expression=exp.Literal.string(kind)))
    reader = exp.Anonymous(this="read_json", expressions=[
        exp.Literal.string(path),
        exp.PropertyEQ(this=exp.var("format"), expression=exp.Literal.string("newline_delimited")),
        exp.PropertyEQ(this=exp.var("columns"), expression=exp.Struct(expressions=read_as))])
    projections: list[exp.Expression] = []
    for c in columns:
        ref = exp.column(c.name, quoted=True)
        if c.data_type == "binary":
            hex_digits = exp.Anonymous(this="hex", expressions=[exp.Anonymous(this="from_base64", expressions=[ref])])
            ref = exp.alias_(exp.DPipe(this=exp.Literal.string("\\x"), expression=hex_digits), c.name, quoted=True)
        projections.append(ref)
    return exp.select(*projections).from_(exp.Table(this=reader))


def scratch_path(job_file: JobFile, suffix: str) -> Path:
    """A temporary file of the job in its package's scratch folder, never among the job files."""
    return LoadPackage(job_file.path.parent.parent).scratch_path(job_file, suffix)


class JsonlCopyJob(LoadJob):
    """jsonl → csv by DuckDB's C++ readers and writers (a fraction of the Python csv writer's cost
    per row), then the same streamed COPY as a csv file. The csv lives in the package's scratch
    folder only while it loads (a killed run's is removed when the package resumes)."""

    def run(self, client: SqlJobClient) -> None:
        import duckdb

        columns = list(self.table.columns.values())
        csv_path = scratch_path(self.job_file, ".csv")
        try:
            try:
                self._transcode(columns, csv_path, TRANSCODE_MEMORY)
            except duckdb.OutOfMemoryException:  # very wide rows: more memory beats failing the load
                logger.warning("file %s: transcoding needs more than %s, retrying with %s", self.job_file.path.name,
                               TRANSCODE_MEMORY, TRANSCODE_MEMORY_FALLBACK)
                self._transcode(columns, csv_path, TRANSCODE_MEMORY_FALLBACK)
            with open(csv_path, "rb") as f:
                client.sql_client.copy_from(sql.copy_from_stdin(self.target, [c.name for c in columns]), f)
        except duckdb.Error as exc:  # the file does not fit its columns: nothing reached the server
            raise DestinationTerminalError(f"file {self.job_file.path.name}: table {self.table.name!r}: "
                                           f"{type(exc).__name__}: {exc}") from exc
        finally:
            csv_path.unlink(missing_ok=True)

    def _transcode(self, columns: list[Column], csv_path: Path, memory_limit: str) -> None:
        statement = sql.copy_to_csv(transcode_select(str(self.job_file.path), columns), str(csv_path))
        with transcoder(memory_limit) as con:
            con.execute(sql.render(statement, "duckdb"))


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
