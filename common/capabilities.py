"""What a destination can do, as one frozen dataclass.

A destination makes its own instance with ``DEFAULTS.with_(...)`` (a ``dataclasses.replace``), listing
only what differs from ``DEFAULTS``; the loader, normalizer and SQL generator read it instead of asking
the destination ad hoc questions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

FILE_FORMATS = ("jsonl", "csv", "insert_values", "parquet", "arrow")
COLUMNAR_FORMATS = ("parquet", "arrow")
"""Formats Arrow data is written in as it is (by Arrow, no Python per row); "arrow" is an Arrow IPC file."""
MERGE_STRATEGIES = ("delete-insert", "upsert", "insert-only", "scd2")
REPLACE_STRATEGIES = ("insert-from-staging", "truncate-and-insert", "staging-optimized")
DDL_HINTS = ("primary_key", "unique", "cluster")
STAGING = ("none", "optional", "required")


@dataclass(frozen=True)
class DestinationCapabilities:
    """Every fact about a destination that shared code branches on."""

    preferred_loader_file_format: str = "insert_values"
    """Format the normalizer writes when the user does not choose one."""
    supported_loader_file_formats: tuple[str, ...] = ("insert_values",)
    """Formats a load job exists for."""
    escape_identifier_case: str = "preserve"
    """How the database folds unquoted identifiers: "lower", "upper" or "preserve"."""
    max_identifier_length: int = 63
    """Longest table or column name; the normalizer shortens longer names deterministically."""
    max_query_length: int = 32 * 1024 * 1024
    """Longest SQL statement, in bytes; bounds one insert_values statement."""
    max_rows_per_insert: int = 1000
    """Rows in one INSERT ... VALUES statement."""
    max_parameters_per_statement: int | None = None
    """Bound parameters one statement may carry (SQLite: 32766); None means no limit."""
    decimal_precision: tuple[int, int] = (38, 9)
    """Default (precision, scale) of a decimal column without hints."""
    max_decimal_precision: int = 38
    """Widest decimal; integers with more digits go to a text variant column."""
    timestamp_precision: int = 6
    """Fractional digits of a timestamp."""
    supports_transactions: bool = True
    """Whether BEGIN/COMMIT group statements."""
    supports_ddl_transactions: bool = True
    """Whether CREATE/ALTER/DROP take part in a transaction (merge and replace can be atomic)."""
    supports_multi_column_alter: bool = False
    """Whether one ALTER TABLE may add several columns."""
    supports_truncate: bool = True
    """Whether TRUNCATE TABLE exists (else DELETE FROM is used)."""
    merge_strategies: tuple[str, ...] = ("delete-insert",)
    """Merge strategies sql_jobs.py may render for this destination."""
    replace_strategies: tuple[str, ...] = ("insert-from-staging", "truncate-and-insert")
    """Replace strategies sql_jobs.py may render for this destination."""
    sqlglot_dialect: str = ""
    """sqlglot dialect name used to render every statement."""
    max_parallel_load_jobs: int = 1
    """Load jobs run at once, each on its own connection."""
    merge_lookup_indexes: bool = False
    """Whether merges first index the keys they look up (the target root's ``_lb_id``, the staging root's
    primary and merge keys): MySQL/MariaDB run ``DELETE ... WHERE x IN (SELECT ...)`` as a probe of the
    subquery per row, quadratic without an index (30,000 roots: minutes; indexed: 0.3 s)."""
    load_while_normalizing: bool = False
    """Whether append files may load while the rest of the package is still being normalized
    (on another connection); rows of a package abandoned mid-normalize are deleted by row id."""
    string_literal_escape: str = "standard"
    """How insert_values quotes strings: "standard" doubles quotes, "backslash" also escapes \\."""
    binary_literal_template: str = "X'{hex}'"
    """SQL literal of a binary value in insert_values, with ``{hex}`` for its hex digits."""
    naive_timestamps: bool = False
    """Timestamps are stored without time zone (MySQL DATETIME): insert_values literals and csv fields
    carry the UTC wall time."""
    csv_null: str = ""
    """How csv load files spell NULL, as an unquoted field (every string is quoted, so a text equal to it
    stays text): "" (an empty field) for PostgreSQL's COPY and DuckDB; "NULL" for MySQL's LOAD DATA, which
    reads an empty field, quoted or not, as '' (or 0)."""
    is_dataset_a_schema: bool = True
    """Whether a dataset is a schema inside one database (else a database or attached file)."""
    supports_nan_infinity: bool = True
    """Whether a double column stores NaN, Infinity and -Infinity; where it cannot, the normalizer
    sends those values to the column's text variant (``<col>__v_text``: 'NaN', 'Infinity', '-Infinity')."""
    max_table_columns: int | None = None
    """Most columns a table may have, loadbay's own ``_lb_`` columns included; the normalizer stops a
    run that would pass it before anything loads. None means no limit worth checking."""
    columnar_file_format: str = "parquet"
    """What Arrow data (Arrow tables, DataFrames, parquet and csv files) is written as when the run names no
    ``loader_file_format``: a format of ``COLUMNAR_FORMATS`` the destination loads. DuckDB takes "arrow"
    (Arrow IPC files, which it scans memory-mapped as it scans an Arrow table: a million rows written in a
    fifth of parquet's time and inserted faster), PostgreSQL and SQLite too (their jobs read its record
    batches without parquet's decoding); where the destination does not load it, parquet; a destination that
    loads neither gets rows of its preferred format."""
    columnar_file_max_items: int | None = None
    """Rows per columnar file written from Arrow data unless the pipeline sets ``file_max_items``
    (None: 100,000, as for rows). DuckDB
    loads one 1M-row file in 40% of the time of ten 100k-row files (a transaction each), and writing
    Arrow costs no memory per row, so it takes bigger files than the dict path's."""

    costly_statements: bool = False
    """Whether every statement is a job of a distributed engine (Spark: 20-400 ms, where a database on this machine
    answers in about a millisecond): a load pays a fixed cost per table and per file, so few, large files pay.
    The conformance suite scales its heaviest cases down for such a destination (``heavy_case`` in
    ``destinations/testing/conformance/helpers.py``: fewer nesting levels, fewer sample tables), never skips them."""

    ddl_hints: tuple[str, ...] = ()
    """Column hints declared when loadbay creates a table, if the destination's ``create_indexes`` setting is
    on: "primary_key" (one ``PRIMARY KEY (...)`` over every column so hinted), "unique" (a ``UNIQUE``
    constraint per column), "cluster" (PostgreSQL: an index over the cluster columns, marked for ``CLUSTER``).
    Never on staging tables (a package may hold keys twice: merges dedupe them), never added to a table that
    exists. ``nullable=False`` is declared everywhere, whatever this says."""
    staging: str = "none"
    """Whether the engine reads load files itself from a stage (a folder or fsspec URL, the destination's
    ``[destination.<name>.staging]``) instead of being sent them through the driver: "none" (the client
    streams or names local files: DuckDB, PostgreSQL), "optional" (staged when ``bucket_url`` is set, jobs
    take the local path otherwise), "required" (a distributed engine, Spark, that cannot read this
    machine's disk: a run without ``bucket_url`` stops before anything is normalized). Not "none": the
    configuration class has a ``staging: StagingConfig`` field (``loadbay.common.staging``), and each job
    gets its file's staged URL as ``LoadJob.staged_url``."""

    def __post_init__(self) -> None:
        for what, listed, known in (("loader file formats", self.supported_loader_file_formats, FILE_FORMATS),
                                    ("DDL hints", self.ddl_hints, DDL_HINTS),
                                    ("merge strategies", self.merge_strategies, MERGE_STRATEGIES),
                                    ("replace strategies", self.replace_strategies, REPLACE_STRATEGIES)):
            unknown = set(listed) - set(known)
            if unknown:
                raise ValueError(f"unknown {what} {sorted(unknown)}; known: {known}")
        if self.staging not in STAGING:
            raise ValueError(f"unknown staging {self.staging!r}; known: {STAGING}")
        if self.max_table_columns is not None and self.max_table_columns < 5:
            raise ValueError(f"max_table_columns={self.max_table_columns} leaves no room for data: a child "
                             "table has four columns of loadbay's own")
        if self.columnar_file_format not in COLUMNAR_FORMATS:
            raise ValueError(f"columnar_file_format {self.columnar_file_format!r} is not one of {COLUMNAR_FORMATS}")
        if self.preferred_loader_file_format not in self.supported_loader_file_formats:
            raise ValueError(
                f"preferred format {self.preferred_loader_file_format!r} is not among the supported "
                f"{self.supported_loader_file_formats}"
            )

    def columnar_format(self, loader_file_format: str | None) -> str | None:
        """What a run writes Arrow data as: ``columnar_file_format`` when the run names no format (parquet where
        the destination does not load that one), the named format when it is columnar; None (rows of the run's
        format) otherwise or when the destination loads no such format."""
        candidates = [loader_file_format] if loader_file_format else [self.columnar_file_format, "parquet"]
        for file_format in candidates:  # a copy that dropped "arrow" from its formats still gets parquet
            if file_format in COLUMNAR_FORMATS and file_format in self.supported_loader_file_formats:
                return file_format
        return None

    def with_(self, **changes: object) -> DestinationCapabilities:
        """A copy with ``changes``; the original is never mutated."""
        return dataclasses.replace(self, **changes)


DEFAULTS = DestinationCapabilities()
