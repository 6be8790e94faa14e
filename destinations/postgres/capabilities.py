"""PostgreSQL: COPY-loaded csv, transactional DDL, 63-byte identifiers, numeric wide enough for uint256."""

from __future__ import annotations

from loadbay.common.capabilities import DEFAULTS

capabilities = DEFAULTS.with_(
    preferred_loader_file_format="jsonl",
    supported_loader_file_formats=("jsonl", "csv", "insert_values", "parquet"),
    escape_identifier_case="lower",
    max_identifier_length=63,
    max_query_length=32 * 1024 * 1024,
    max_rows_per_insert=1000,
    max_parameters_per_statement=65535,
    decimal_precision=(38, 9),
    max_decimal_precision=78,
    timestamp_precision=6,
    supports_transactions=True,
    supports_ddl_transactions=True,
    supports_multi_column_alter=True,
    supports_truncate=True,
    merge_strategies=("delete-insert", "upsert"),
    replace_strategies=("insert-from-staging", "truncate-and-insert", "staging-optimized"),
    sqlglot_dialect="postgres",
    max_parallel_load_jobs=2,
    load_while_normalizing=True,
    string_literal_escape="standard",
    binary_literal_template="'\\x{hex}'::bytea",
    is_dataset_a_schema=True,
    supports_nan_infinity=True,
    max_table_columns=1600,  # MaxHeapAttributeNumber; columns dropped by ALTER TABLE still count
)
