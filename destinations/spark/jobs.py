"""Spark load jobs: Spark reads each parquet load file itself, ``INSERT INTO t (cols) SELECT cols FROM
parquet.`<file>```; rows never pass through the driver."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.storage.package import JobFile
from loadbay.destinations.job_errors import columns_for, naming_file

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient


def staged_path(job_file: JobFile) -> str:
    """Where Spark reads ``job_file``: for now the package's own file by its absolute path, which a Spark on
    this machine (or sharing this filesystem) can read. The one place to change when load files are copied to
    shared storage first: return the staged URL (``s3a://...``, ``hdfs://...``) instead."""
    return str(job_file.path.resolve())


def parquet_file(path: str) -> exp.Table:
    """``parquet.`<path>```: Spark's query over a file, the path quoted as an identifier by sqlglot."""
    return exp.Table(this=exp.to_identifier(path, quoted=True), db=exp.to_identifier("parquet"))


class ParquetInsertJob(LoadJob):
    """One ``INSERT INTO ... SELECT ... FROM parquet.`<file>``` statement: one Spark job per file. The file's
    columns (read from its footer) are named on both sides, so a table that gained columns since takes it."""

    def run(self, client: SqlJobClient) -> None:
        with naming_file(self):
            client.sql_client.execute_sql(self.insert())

    def insert(self) -> exp.Insert:
        import pyarrow.parquet as pq

        columns = [c.name for c in columns_for(self, pq.read_schema(self.job_file.path).names)]
        select = exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(
            parquet_file(staged_path(self.job_file)))
        schema = exp.Schema(this=self.target.copy(), expressions=[exp.to_identifier(c, quoted=True) for c in columns])
        return exp.Insert(this=schema, expression=select)
