"""DuckDB: bulk readers for every format, transactional DDL, 38-digit decimals."""

from __future__ import annotations

from loadbay.common.capabilities import DEFAULTS

capabilities = DEFAULTS.with_(
    preferred_loader_file_format="jsonl",
    supported_loader_file_formats=("jsonl", "csv", "parquet", "insert_values"),
    escape_identifier_case="lower",
    max_identifier_length=65536,
    max_rows_per_insert=1000,
    decimal_precision=(38, 9),
    max_decimal_precision=38,
    timestamp_precision=6,
    supports_transactions=True,
    supports_ddl_transactions=True,
    supports_multi_column_alter=False,
    supports_truncate=True,
    merge_strategies=("delete-insert", "upsert"),
    replace_strategies=("insert-from-staging", "truncate-and-insert"),
    sqlglot_dialect="duckdb",
    max_parallel_load_jobs=1,
    binary_literal_template="from_hex('{hex}')",
    is_dataset_a_schema=True,
    supports_nan_infinity=True,
    max_table_columns=None,  # no column limit short of memory
    columnar_file_max_items=1_000_000,
)
