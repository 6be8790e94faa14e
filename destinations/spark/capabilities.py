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
    merge_strategies=("delete-insert", "upsert", "insert-only"),
    replace_strategies=("insert-from-staging", "truncate-and-insert"),
    sqlglot_dialect="spark",
    max_parallel_load_jobs=1,
    columnar_file_max_items=1_000_000,
    staging="optional",
    costly_statements=True,
)
"""Only parquet: Spark reads it natively with every type (jsonl and csv would lose types on the way).
Merges and ``insert-from-staging`` replaces rebuild each table and swap it in by renames
(``destinations/spark/swap.py``: not atomic, resumable); ``truncate-and-insert`` truncates, then loads the files
straight into the table. ``scd2`` (it updates rows) and ``staging-optimized`` (it moves tables across databases,
which Spark refuses) have no rebuild yet.
Each statement is a Spark job of its own, so few, large files (``columnar_file_max_items``) load faster.
One load job at a time: two INSERTs into one parquet table share its ``_temporary`` folder, and the first to
commit deletes it under the other (seen here: ``FileNotFoundException .../_temporary/0``), which may also have
committed the other's finished tasks. For the same reason two pipelines must not load one table at once."""
