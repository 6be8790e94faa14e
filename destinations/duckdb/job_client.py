"""DuckDB job client: its type map and which job loads which file format."""

from __future__ import annotations

from typing import ClassVar

from loadbay.common.destination import LoadJob
from loadbay.destinations.duckdb.jobs import ArrowIpcJob, CsvJob, JsonlJob, ParquetJob
from loadbay.destinations.job_client import SqlJobClient
from loadbay.destinations.load_jobs import InsertValuesJob
from loadbay.destinations.type_mapping import DType, TypeMapper


class DuckDbTypeMapper(TypeMapper):
    TYPE_MAPPING: ClassVar[dict[str, DType]] = {
        **TypeMapper.TYPE_MAPPING,
        "text": DType.VARCHAR,
        "binary": DType.BLOB,
    }


class DuckDbJobClient(SqlJobClient):
    type_mapper_class = DuckDbTypeMapper
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {
        "jsonl": JsonlJob, "csv": CsvJob, "parquet": ParquetJob, "arrow": ArrowIpcJob, "insert_values": InsertValuesJob,
    }
