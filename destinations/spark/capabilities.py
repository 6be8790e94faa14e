"""Spark SQL on parquet tables: no transactions, no DELETE/UPDATE/MERGE (a parquet table is rewritten
whole or appended to), parquet load files read by the cluster itself, 128-character names (the Hive
metastore's), DECIMAL(38), microsecond timestamps in UTC sessions."""

from __future__ import annotations

from loadbay.common.capabilities import DEFAULTS

capabilities = DEFAULTS.with_(
    preferred_loader_file_format="parquet",
    supported_loader_file_formats=("parquet",),
    escape_identifier_case="lower",
    max_identifier_length=128,
    supports_transactions=False,
    supports_ddl_transactions=False,
    supports_multi_column_alter=True,
    merge_strategies=(),
    replace_strategies=("truncate-and-insert",),
    sqlglot_dialect="spark",
    max_parallel_load_jobs=1,
    columnar_file_max_items=1_000_000,
)
"""Only parquet: Spark reads it natively with every type (jsonl and csv would lose types on the way).
Merge and replace through staging need DELETE or a build-then-swap, which this destination does not
have yet: only ``truncate-and-insert`` replaces (TRUNCATE, then the files load straight into the table).
Each statement is a Spark job of its own, so few, large files (``columnar_file_max_items``) load faster.
One load job at a time: two INSERTs into one parquet table share its ``_temporary`` folder, and the first to
commit deletes it under the other (seen here: ``FileNotFoundException .../_temporary/0``), which may also have
committed the other's finished tasks. For the same reason two pipelines must not load one table at once."""
