"""Spark load jobs: Spark reads each parquet load file itself, ``INSERT INTO t (cols) SELECT cols FROM
parquet.`<file>```; rows never pass through the driver."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.schema.types import Column
from loadbay.common.storage.package import JobFile
from loadbay.destinations.job_errors import columns_for, naming_file, where

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient


def staged_path(job_file: JobFile, staged_url: str | None = None) -> str:
    """Where Spark reads ``job_file``: its copy on the stage when ``[destination.spark.staging]`` names one
    (``staged_url``), else the package's own file by its absolute path, which a Spark on this machine (or
    sharing this filesystem) can read."""
    return staged_url or str(job_file.path.resolve())


def parquet_file(path: str) -> exp.Table:
    """``parquet.`<path>```: Spark's query over a file, the path quoted as an identifier by sqlglot."""
    return exp.Table(this=exp.to_identifier(path, quoted=True), db=exp.to_identifier("parquet"))


def checked(column: Column, where: str) -> exp.Expression:
    """The file's ``column``, failing the statement (``raise_error``: the INSERT then commits nothing) where Spark
    itself would not: a NULL in a column that is not nullable (parquet tables keep no NOT NULL) and text that is not
    JSON in a json column (a STRING to Spark)."""
    ref = exp.column(column.name, quoted=True)
    bad: list[tuple[exp.Expression, str]] = []
    if not column.nullable:
        bad.append((exp.Is(this=ref.copy(), expression=exp.Null()), "is NULL"))
    if column.data_type == "json":
        parsed = exp.Anonymous(this="try_parse_json", expressions=[ref.copy()])
        bad.append((exp.and_(exp.Not(this=exp.Is(this=ref.copy(), expression=exp.Null())),
                             exp.Is(this=parsed, expression=exp.Null())), "is not JSON"))
    if not bad:
        return ref
    ifs = [exp.If(this=condition, true=exp.Anonymous(this="raise_error", expressions=[
        exp.Literal.string(f"{where}: a value of column {column.name!r} {what}")])) for condition, what in bad]
    return exp.Case(ifs=ifs, default=ref)


class ParquetInsertJob(LoadJob):
    """One ``INSERT INTO ... SELECT ... FROM parquet.`<file>``` statement: one Spark job per file. The file's
    columns (read from its footer) are named on both sides, so a table that gained columns since takes it; values
    Spark would store unchecked are checked in the SELECT (``checked``)."""

    def run(self, client: SqlJobClient) -> None:
        with naming_file(self):
            client.sql_client.execute_sql(self.insert())

    def insert(self) -> exp.Insert:
        import pyarrow.parquet as pq

        columns = columns_for(self, pq.read_schema(self.job_file.path).names)
        source = parquet_file(staged_path(self.job_file, self.staged_url))
        select = exp.select(*[checked(c, where(self)) for c in columns]).from_(source)
        schema = exp.Schema(this=self.target.copy(), expressions=[exp.to_identifier(c.name, quoted=True)
                                                                  for c in columns])
        return exp.Insert(this=schema, expression=select)
