"""DuckDB: bulk readers for every format, transactional DDL, 38-digit decimals."""

from __future__ import annotations

from loadbay.common.capabilities import DEFAULTS

capabilities = DEFAULTS.with_(
    preferred_loader_file_format="jsonl",
    supported_loader_file_formats=("jsonl", "csv", "parquet", "arrow", "insert_values"),
    columnar_file_format="arrow",
    escape_identifier_case="lower",
    max_identifier_length=65536,
    merge_strategies=("delete-insert", "upsert", "insert-only", "scd2"),
    sqlglot_dialect="duckdb",
    binary_literal_template="from_hex('{hex}')",
    columnar_file_max_items=1_000_000,
    # DuckDB 2.0.1 deletes and inserts a key in one transaction (delete-insert), upserts and MERGEs under a
    # primary key without the "over-eager" unique checks older versions' ART indexes made (tested for real)
    ddl_hints=("primary_key", "unique"),
)
