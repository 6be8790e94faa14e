"""PostgreSQL load jobs: csv through ``COPY ... FROM STDIN``, parquet converted to csv on the way."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import TYPE_CHECKING

from sqlglot import exp

from common.destination import LoadJob
from common.schema.types import Table
from common.storage.writers import CsvWriter

if TYPE_CHECKING:
    from destinations.job_client import SqlJobClient


def copy_statement(target: exp.Table, columns: list[str], client: SqlJobClient) -> str:
    """``COPY target (cols) FROM STDIN`` for loadbay's csv: NULL unquoted empty, '' quoted."""
    sql = client.sql_client
    names = ", ".join(sql.render(sql.identifier(c)) for c in columns)
    return f"COPY {sql.render(target)} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true, NULL '')"


class CopyCsvJob(LoadJob):
    """Streams the file to the server with COPY: one statement, one transaction, the file never in memory."""

    def run(self, client: SqlJobClient) -> None:
        with open(self.job_file.path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f))
            f.seek(0)
            client.sql_client.copy_from(copy_statement(self.target, header, client), f)  # type: ignore[attr-defined]


class ParquetCopyJob(LoadJob):
    """Reads parquet in row groups and COPYs each as loadbay csv, all in one transaction."""

    def run(self, client: SqlJobClient) -> None:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(self.job_file.path)
        names = parquet.schema_arrow.names
        # json values are already JSON text in parquet: write them as they are
        columns = {n: (dataclasses.replace(self.table.columns[n], data_type="text")
                       if self.table.columns[n].data_type == "json" else self.table.columns[n]) for n in names}
        table = Table(self.table.name, columns)
        sql_client = client.sql_client
        with sql_client.begin_transaction():
            for batch in parquet.iter_batches(batch_size=50_000):
                buffer = io.StringIO()
                CsvWriter.to_stream(buffer, table, client.capabilities, batch.to_pylist())
                buffer.seek(0)
                sql_client.copy_from(copy_statement(self.target, names, client), buffer)  # type: ignore[attr-defined]
