"""MySQL/MariaDB: csv streamed by LOAD DATA LOCAL INFILE, DDL that commits implicitly, 64-character
identifiers, DECIMAL(65), DATETIME(6) in UTC.

``ENGINE`` holds what the database itself allows, whatever the driver: the SQLAlchemy destination's
MySQL family takes its capabilities from it too.
"""

from __future__ import annotations

from typing import Any

from loadbay.common.capabilities import DEFAULTS

INNODB_MAX_COLUMNS = 1017
"""InnoDB's limit per table (MySQL itself allows 4096): CREATE or ALTER past it fails with errno 185."""

MAX_ALLOWED_PACKET = 16 << 20
"""MariaDB's default ``max_allowed_packet`` (MySQL 8's is 64 MB): an insert_values statement longer than it
fails (1153). loadbay's statements stay a megabyte under it."""

ENGINE: dict[str, Any] = dict(
    sqlglot_dialect="mysql", max_identifier_length=64, max_parameters_per_statement=65535,
    supports_ddl_transactions=False, supports_multi_column_alter=True,
    merge_strategies=("delete-insert", "upsert", "insert-only", "scd2"), max_decimal_precision=65,
    string_literal_escape="backslash", is_dataset_a_schema=False,
    naive_timestamps=True, supports_nan_infinity=False, max_table_columns=INNODB_MAX_COLUMNS, csv_null="NULL",
    max_query_length=MAX_ALLOWED_PACKET - (1 << 20), merge_lookup_indexes=True,
    ddl_hints=("primary_key", "unique"),
)
"""MySQL and MariaDB themselves: a dataset is a database; DDL commits implicitly (only the DML of a
merge is atomic); DATETIME has no time zone (timestamps are stored as UTC wall time); DOUBLE has no NaN
or infinities (they go to the text variant); string literals take backslash escapes; LOAD DATA reads an empty
csv field as '' (or 0), so NULL is the unquoted word. Keys are declared: a text key column is a VARCHAR(255)
(the upsert's unique index needs that too); a key over a LONG column or past 3072 bytes is not
(``job_client.key_problem``)."""

capabilities = DEFAULTS.with_(
    **ENGINE,
    preferred_loader_file_format="jsonl",
    supported_loader_file_formats=("jsonl", "csv", "parquet", "insert_values"),
    max_parallel_load_jobs=2,
    load_while_normalizing=True,
)
