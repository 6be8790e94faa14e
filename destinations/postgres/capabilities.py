"""PostgreSQL: COPY-loaded csv, transactional DDL, 63-byte identifiers, numeric wide enough for uint256."""

from __future__ import annotations

from loadbay.common.capabilities import DEFAULTS

capabilities = DEFAULTS.with_(
    preferred_loader_file_format="jsonl",
    supported_loader_file_formats=("jsonl", "csv", "insert_values", "parquet", "arrow"),
    columnar_file_format="arrow",  # Arrow IPC: no parquet encoding while normalizing nor decoding in the COPY job
    escape_identifier_case="lower",
    max_parameters_per_statement=65535,
    max_decimal_precision=78,
    supports_multi_column_alter=True,
    merge_strategies=("delete-insert", "upsert", "insert-only", "scd2"),
    replace_strategies=("insert-from-staging", "truncate-and-insert", "staging-optimized"),
    sqlglot_dialect="postgres",
    max_parallel_load_jobs=2,
    load_while_normalizing=True,
    binary_literal_template="'\\x{hex}'::bytea",
    max_table_columns=1600,  # MaxHeapAttributeNumber; columns dropped by ALTER TABLE still count
    ddl_hints=("primary_key", "unique", "cluster"),
)
