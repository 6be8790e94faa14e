"""How many rows one batch holds: the pipeline's ``batch_size`` when set, else a default per kind of batch.

Dict rows go in batches of 5,000 items: each row is a Python object, and a batch is what the normalizer
holds at once. Arrow data (tables, DataFrames, parquet, csv and typed JSON files) goes in record batches
of 65,536 rows: a batch is a slice of columns, and each costs a fixed ~0.5 ms in normalize and the writers
whatever its length (200 batches of 5,000 rows were a quarter of the time of a 1M-row Arrow table into
DuckDB). A ``batch_size`` the user sets applies to both.
"""

from __future__ import annotations

ROWS_BATCH_SIZE = 5_000
ARROW_BATCH_SIZE = 65_536


def rows_batch_size(batch_size: int | None) -> int:
    """Items per batch of Python rows."""
    return batch_size or ROWS_BATCH_SIZE


def arrow_batch_size(batch_size: int | None) -> int:
    """Rows per Arrow record batch."""
    return batch_size or ARROW_BATCH_SIZE
