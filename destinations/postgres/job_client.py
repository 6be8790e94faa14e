"""PostgreSQL job client: its type map, COPY load jobs, and the upsert syntax by server version."""

from __future__ import annotations

from typing import ClassVar

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.schema.types import Column
from loadbay.destinations.job_client import SqlJobClient
from loadbay.destinations.load_jobs import InsertValuesJob
from loadbay.destinations.postgres.jobs import CopyCsvJob, JsonlCopyJob, ParquetCopyJob
from loadbay.destinations.type_mapping import DType, TypeMapper

MERGE_SINCE = 150000
"""server_version_num from which ``MERGE`` exists (PostgreSQL 15)."""


class PostgresTypeMapper(TypeMapper):
    TYPE_MAPPING: ClassVar[dict[str, DType]] = {
        **TypeMapper.TYPE_MAPPING,
        "json": DType.JSONB,
        "binary": DType.VARBINARY,  # renders as BYTEA
    }

    INTEGER_BY_BITS: ClassVar[tuple[tuple[int, DType], ...]] = ((16, DType.SMALLINT), (32, DType.INT))
    """A bigint column hinted with ``precision`` (bits) gets the smallest integer type that holds it."""

    def to_db_type(self, column: Column) -> exp.DataType:
        if column.data_type == "bigint" and column.precision:
            for bits, dtype in self.INTEGER_BY_BITS:
                if column.precision <= bits:
                    return exp.DataType(this=dtype)
        if column.data_type == "timestamp" and column.precision is not None:
            base = "TIMESTAMP" if column.timezone is False else "TIMESTAMPTZ"
            return exp.DataType.build(f"{base}({int(column.precision)})", dialect="postgres")
        return super().to_db_type(column)


class PostgresJobClient(SqlJobClient):
    type_mapper_class = PostgresTypeMapper
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {
        "jsonl": JsonlCopyJob, "csv": CopyCsvJob, "parquet": ParquetCopyJob, "insert_values": InsertValuesJob,
    }

    def upsert_syntax(self) -> str:
        chosen = getattr(self.config, "upsert_syntax", "auto")
        if chosen != "auto":
            return chosen
        return "merge" if self.sql_client.server_version >= MERGE_SINCE else "on_conflict"  # type: ignore[attr-defined]

    def lock_tables_for_merge(self, table_names: list[str]) -> None:
        self.sql_client.lock_tables([self.sql_client.qualified(n) for n in table_names])  # type: ignore[attr-defined]
