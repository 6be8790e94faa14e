"""PostgreSQL job client: its type map and COPY load jobs."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.schema.types import Column
from loadbay.destinations.job_client import SqlJobClient
from loadbay.destinations.load_jobs import InsertValuesJob
from loadbay.destinations.copy_jobs import ArrowIpcCopyJob, CopyCsvJob, JsonlCopyJob, ParquetCopyJob
from loadbay.destinations.type_mapping import DType, TypeMapper


class PostgresTypeMapper(TypeMapper):
    TYPE_MAPPING: ClassVar[dict[str, DType]] = {
        **TypeMapper.TYPE_MAPPING,
        "json": DType.JSONB,
        "binary": DType.VARBINARY,  # renders as BYTEA
    }

    INTEGER_BY_BITS: ClassVar[tuple[tuple[int, DType], ...]] = ((16, DType.SMALLINT), (32, DType.INT))
    """A bigint column hinted with ``precision`` (bits) gets the smallest integer type that holds it."""

    def integer_type(self, column: Column) -> exp.DataType | None:
        fits = [dtype for bits, dtype in self.INTEGER_BY_BITS if column.precision and column.precision <= bits]
        return exp.DataType(this=fits[0]) if fits else None

    def timestamp_type(self, column: Column) -> exp.DataType | None:
        """``TIMESTAMP(p)``/``TIMESTAMPTZ(p)`` for a column hinted with ``precision`` (fractional digits)."""
        if column.precision is None:
            return TypeMapper.timestamp_type(self, column)
        base = "TIMESTAMP" if column.timezone is False else "TIMESTAMPTZ"
        return exp.DataType.build(f"{base}({int(column.precision)})", dialect="postgres")

    HINTED: ClassVar[dict[str, Any]] = {**TypeMapper.HINTED, "bigint": integer_type, "timestamp": timestamp_type}


class PostgresJobClient(SqlJobClient):
    type_mapper_class = PostgresTypeMapper
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {
        "jsonl": JsonlCopyJob, "csv": CopyCsvJob, "parquet": ParquetCopyJob, "arrow": ArrowIpcCopyJob,
        "insert_values": InsertValuesJob,
    }
