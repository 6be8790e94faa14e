"""The no-op destination takes every format and has no limits worth naming."""

from __future__ import annotations

from loadbay.common.capabilities import DEFAULTS

capabilities = DEFAULTS.with_(
    preferred_loader_file_format="jsonl",
    supported_loader_file_formats=("jsonl", "csv", "parquet", "insert_values"),
    max_identifier_length=65536,
    sqlglot_dialect="duckdb",
)
