"""A DuckDB destination that loads by reference from a stage, for the staging tests only.

Not a test module: named by dotted path (``tests.staged_duckdb:staged_duckdb``), also from
the killed subprocesses of ``test_staging.py``. It is what a destination that declares staging looks
like (docs/writing-a-destination.md, "Staging: loading by reference", quotes it): a capability, a
``staging`` field in its configuration, and jobs that name ``self.staged_url`` in their SQL. Its jobs
read the staged copy only, so a row that arrives proves the stage held the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from sqlglot import exp

from loadbay.common.destination import DestinationConfig, LoadJob
from loadbay.common.staging import StagingConfig
from loadbay.destinations.duckdb import duckdb
from loadbay.destinations.duckdb.capabilities import capabilities as duckdb_capabilities
from loadbay.destinations.duckdb.configuration import DuckDbConfig
from loadbay.destinations.duckdb.job_client import DuckDbJobClient
from loadbay.destinations.duckdb.jobs import DuckDbReaderJob, JsonlJob, ParquetJob
from loadbay.destinations.duckdb.sql_client import DuckDbSqlClient
from loadbay.destinations.job_client import SqlJobClient
from loadbay.destinations.sql_destination import ClientClasses


@dataclass
class StagedDuckDbConfig(DuckDbConfig):
    staging: StagingConfig = field(default_factory=StagingConfig)


def from_stage(job: DuckDbReaderJob, insert: exp.Insert) -> exp.Insert:
    """``insert`` reading ``job.staged_url`` instead of the package's file (its reader's first argument)."""
    reader = insert.find(exp.Anonymous)  # read_parquet(<file>, ...) / read_json(<file>, ...)
    reader.set("expressions", [exp.Literal.string(job.staged_url), *reader.expressions[1:]])
    return insert


class StagedParquetJob(ParquetJob):
    def insert(self, client: SqlJobClient) -> exp.Insert:
        return from_stage(self, super().insert(client))


class StagedJsonlJob(JsonlJob):
    def insert(self, client: SqlJobClient) -> exp.Insert:
        return from_stage(self, super().insert(client))


class StagedDuckDbJobClient(DuckDbJobClient):
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {"parquet": StagedParquetJob, "jsonl": StagedJsonlJob}


class staged_duckdb(duckdb):  # noqa: N801 - lower case like the name users type
    """DuckDB loading parquet and jsonl from ``[destination.staged_duckdb.staging] bucket_url``."""

    destination_type = "staged_duckdb"
    spec = StagedDuckDbConfig
    capabilities = duckdb_capabilities.with_(
        staging="required",
        preferred_loader_file_format="parquet",
        supported_loader_file_formats=("parquet", "jsonl"),
    )

    def client_classes(self, config: DestinationConfig) -> ClientClasses:
        return DuckDbSqlClient, StagedDuckDbJobClient
