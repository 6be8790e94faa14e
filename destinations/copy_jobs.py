"""COPY FROM STDIN through psycopg2, shared by the postgres destination and the SQLAlchemy destination's
PostgreSQL family: the SQL client's ``copy_from`` (``Psycopg2CopyClient``, over whichever dbapi cursor the
client's ``cursor()`` gives) and the load jobs that call it. csv goes as it is; jsonl and parquet become that
csv first (jsonl by DuckDB into a scratch file, ``loadbay.destinations.transcode``; parquet by Arrow straight
into the COPY stream)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from loadbay.common.destination import LoadJob
from loadbay.common.exceptions import DestinationTerminalError
from loadbay.common.schema.types import Column
from loadbay.destinations import statements as sql
from loadbay.destinations.job_errors import columns_for, naming_file, where
from loadbay.destinations.load_jobs import arrow_ipc_batches
from loadbay.destinations.sql_client import SqlClient
from loadbay.destinations.statements import Statement
from loadbay.destinations.transcode import transcoded_csv

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient

COPY_CHUNK = 1 << 20
"""Bytes psycopg2 reads from the stream per message of the COPY."""


class Psycopg2CopyClient(SqlClient):
    """``copy_from`` by psycopg2's ``copy_expert`` on the client's dbapi cursor: the postgres destination's
    client and the SQLAlchemy destination's PostgreSQL family (over its raw dbapi connection) share it."""

    def copy_from(self, statement: Statement, stream: IO[bytes]) -> None:
        """``COPY ... FROM STDIN`` fed from a file object, streamed in chunks (never all in memory)."""
        text = self.render(statement)
        if self._only_recorded(text):
            return
        with self.translating(text), self.cursor() as cursor:
            cursor.copy_expert(text, stream, size=COPY_CHUNK)


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
        from loadbay.destinations.arrow_csv import CsvStream

        with naming_file(self), self.record_batches() as (names, batches):
            columns = columns_for(self, names)
            statement = sql.copy_from_stdin(self.target, [c.name for c in columns], header=False)
            if not client.capabilities.supports_nan_infinity:
                batches = self.finite_doubles(batches, columns)
            with CsvStream(batches) as stream:
                client.sql_client.copy_from(statement, stream)

    @contextmanager
    def record_batches(self) -> Iterator[tuple[list[str], Iterator[Any]]]:
        """The file's column names and its record batches, a few MB each."""
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.job_file.path)
        yield parquet.schema_arrow.names, parquet.iter_batches(batch_size=parquet_batch_rows(parquet))

    def finite_doubles(self, batches: Iterator[Any], columns: list[Column]) -> Iterator[Any]:
        """The batches, each double column checked first: where the destination declares no NaN or ±infinity
        (the SQLAlchemy destination's PostgreSQL family), one fails the job naming its column and row, and the
        COPY, stopped mid-stream, leaves nothing of the file."""
        import pyarrow as pa

        from loadbay.destinations.arrow_params import BadValue, finite

        doubles = [i for i, c in enumerate(columns) if c.data_type == "double"]
        first_row = 0
        for batch in batches:
            for i in doubles:
                if pa.types.is_floating(batch.column(i).type):
                    try:
                        finite(batch.column(i))
                    except BadValue as exc:
                        raise DestinationTerminalError(f"{where(self)} column {columns[i].name!r}, row "
                                                       f"{first_row + exc.row + 1}: {exc}") from exc
            first_row += batch.num_rows
            yield batch


class ArrowIpcCopyJob(ParquetCopyJob):
    """An Arrow IPC file (what Arrow data is written as for PostgreSQL), memory-mapped: its record batches go
    to Arrow's csv writer as they lie on disk, no parquet decoding (the normalizer, for its part, skips the
    parquet encoding)."""

    @contextmanager
    def record_batches(self) -> Iterator[tuple[list[str], Iterator[Any]]]:
        with arrow_ipc_batches(self.job_file.path) as (schema, batches):
            yield schema.names, batches


class JsonlCopyJob(LoadJob):
    """jsonl → csv by DuckDB's C++ readers and writers (``loadbay.destinations.transcode``), then the same
    streamed COPY as a csv file."""

    def run(self, client: SqlJobClient) -> None:
        columns = list(self.table.columns.values())
        with transcoded_csv(self, columns, client.capabilities) as csv_path, open(csv_path, "rb") as f:
            client.sql_client.copy_from(sql.copy_from_stdin(self.target, [c.name for c in columns]), f)
