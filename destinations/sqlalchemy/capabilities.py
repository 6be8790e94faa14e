"""Capabilities derived from the SQLAlchemy dialect a URL names.

``DIALECTS`` holds what differs per database family; anything not listed there comes from the
dialect object itself (identifier length) or from ``BASE``, which lists only what differs from
``loadbay.common.capabilities.DEFAULTS``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from loadbay.common.capabilities import DEFAULTS, DestinationCapabilities
from loadbay.destinations.mysql.capabilities import ENGINE as MYSQL_ENGINE

BASE = DEFAULTS.with_(
    preferred_loader_file_format="jsonl",
    supported_loader_file_formats=("jsonl", "parquet", "insert_values"),
    supports_nan_infinity=False,
)
"""Any dialect: jsonl rows or parquet record batches bound as parameters with executemany (or loaded by
the driver's bulk path: COPY on PostgreSQL, LOAD DATA LOCAL on MySQL/MariaDB, from the jsonl through the
DuckDB transcoder), delete-insert merges. NaN and ±Infinity go to text variant columns on every dialect:
the jsonl job binds a double column's values only from JSON numbers, and JSON has none for them (the
parquet job refuses them alike: SQLite would store NaN as NULL)."""

SQLITE_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
SQLITE_MAX_COLUMN = 2000
"""SQLite's compile-time default (a build may lower it: ``getlimit(SQLITE_LIMIT_COLUMN)`` says)."""

DIALECTS: dict[str, dict[str, Any]] = {
    "sqlite": dict(
        # no insert_values or csv: type affinity stores any SQL literal in any column, so only the
        # executemany jobs can refuse a bad file: jsonl checks each value against its column type,
        # parquet is typed and its job checks each column's Arrow type (and NaN, decimal text, json).
        # Arrow IPC is preferred (parquet as good, but slower to write and read): its job makes the parameters
        # a column at a time with Arrow, several times faster than the jsonl job's converter per value
        # (bench/mysql_sqlite.py). Files load while
        # normalizing, the large ones in a worker process (sqlite_worker.py: sqlite3 holds the GIL while it binds
        # a row, so a thread would take turns with the normalizer); one connection writes to a file at a time
        supported_loader_file_formats=("jsonl", "parquet", "arrow"), preferred_loader_file_format="arrow",
        columnar_file_format="arrow",
        sqlglot_dialect="sqlite", max_parameters_per_statement=SQLITE_MAX_VARIABLES, supports_truncate=False,
        merge_strategies=("delete-insert", "upsert", "insert-only", "scd2"), max_decimal_precision=15, decimal_precision=(15, 6),
        is_dataset_a_schema=False, max_table_columns=SQLITE_MAX_COLUMN, load_while_normalizing=True,
        ddl_hints=("primary_key", "unique"),
    ),
    # the database's own limits, shared with the mysql destination; loads as the mysql destination's do
    # (LOAD DATA LOCAL, the server doing the work): two at once, while normalizing
    "mysql": dict(MYSQL_ENGINE, max_parallel_load_jobs=2, load_while_normalizing=True),
    "postgresql": dict(
        sqlglot_dialect="postgres", max_parameters_per_statement=65535,
        max_parallel_load_jobs=2, load_while_normalizing=True,  # COPY, as the postgres destination's
        supports_multi_column_alter=True, merge_strategies=("delete-insert", "upsert", "insert-only", "scd2"), max_decimal_precision=78,
        binary_literal_template="'\\x{hex}'::bytea", max_table_columns=1600,
        ddl_hints=("primary_key", "unique", "cluster"),
    ),
}
DIALECTS["mariadb"] = DIALECTS["mysql"]
"""Per dialect name (``engine.dialect.name``); "sqlite" datasets are attached database files, and
SQLite keeps decimals as floating point (NUMERIC affinity), so wider integers are stored as exact text."""


def capabilities_for_dialect(dialect: Any) -> DestinationCapabilities:
    """Capabilities for an SQLAlchemy dialect object (or a bare dialect name)."""
    name = dialect if isinstance(dialect, str) else dialect.name
    overrides = dict(DIALECTS.get(name, {}))
    if not overrides:  # a dialect we have not tested: delete-insert only, sqlglot's dialect of that name
        overrides = {"sqlglot_dialect": name}
    if not isinstance(dialect, str) and "max_identifier_length" not in overrides:
        overrides["max_identifier_length"] = int(getattr(dialect, "max_identifier_length", 63) or 63)
    return BASE.with_(**overrides)


capabilities = BASE.with_(sqlglot_dialect="sqlite")
"""The class-level table (before a URL is known); real runs use ``capabilities_for_dialect``."""
