"""Spark job client: its type map (both ways), parquet tables (``USING parquet``), the parquet load job, and
the bookkeeping Spark cannot delete rows for."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.schema.types import Column, Table
from loadbay.destinations.job_client import SqlJobClient
from loadbay.destinations.spark.jobs import ParquetInsertJob
from loadbay.destinations.type_mapping import DType, TypeMapper


class SparkTypeMapper(TypeMapper):
    """STRING for text and json (JSON text: nested data becomes child tables, so native arrays and structs are
    not needed), TIMESTAMP (an instant; sessions in UTC) and TIMESTAMP_NTZ for ``timezone=False``, BINARY,
    DECIMAL(p, s) up to 38 digits, TIME(6) (Spark 4's TIME, enabled per session)."""

    TYPE_MAPPING: ClassVar[dict[str, DType]] = {
        **TypeMapper.TYPE_MAPPING,
        "text": DType.TEXT,
        "json": DType.TEXT,
        "binary": DType.BINARY,
        "timestamp": DType.TIMESTAMPTZ,
    }
    TIMESTAMP_WITHOUT_TZ: ClassVar[DType] = DType.TIMESTAMPNTZ

    def time_type(self, column: Column) -> exp.DataType:
        """``TIME(6)``: sqlglot's Spark dialect writes its TIME as TIMESTAMP, so the type is named as Spark 4 spells it."""
        return exp.DataType(this=DType.USERDEFINED, kind=f"TIME({self.capabilities.timestamp_precision})")

    def text_type(self, column: Column) -> exp.DataType | None:
        """STRING whatever the ``precision``: Spark's VARCHAR(n) is a STRING with a length check that fails loads."""
        return None

    HINTED: ClassVar[dict[str, Any]] = {**TypeMapper.HINTED, "time": time_type, "text": text_type}

    def from_db_type(self, db_type: str, precision: Any = None, scale: Any = None) -> tuple[str, dict[str, Any]]:
        """``timestamp_ntz`` is a timestamp without time zone, ``time(6)`` a time; the rest as the base reads them
        (``timestamp`` is Spark's instant: sqlglot reads it as TIMESTAMPTZ)."""
        lowered = db_type.lower()
        if lowered == "timestamp_ntz":
            return "timestamp", {"timezone": False}
        if lowered.startswith("time(") or lowered == "time":
            return "time", {}
        return super().from_db_type(db_type, precision, scale)


class SparkJobClient(SqlJobClient):
    type_mapper_class = SparkTypeMapper
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {"parquet": ParquetInsertJob}

    def create_table_sql(self, table: Table, target: exp.Table | None = None) -> exp.Expression:
        """``CREATE TABLE IF NOT EXISTS ... USING parquet``: a data source table in the warehouse."""
        create = super().create_table_sql(table, target)
        create.set("properties", exp.Properties(expressions=[exp.FileFormatProperty(this=exp.var("parquet"))]))
        return create

    def _forget_jobs(self, load_id: str, table_names: list[str] | None = None) -> None:
        """Nothing: Spark cannot DELETE from a parquet table. The done-records of a package stay in ``_lb_jobs``;
        they name a load id no other package has, so they only ever answer for their own package."""
