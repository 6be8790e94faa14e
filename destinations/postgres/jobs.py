"""PostgreSQL load jobs: csv through ``COPY ... FROM STDIN``; jsonl, parquet and Arrow IPC become that csv first. The jobs
live in ``loadbay.destinations.copy_jobs``, shared with the SQLAlchemy destination's PostgreSQL family."""

from __future__ import annotations

from loadbay.destinations.copy_jobs import (PARQUET_BATCH_BYTES, PARQUET_BATCH_ROWS, ArrowIpcCopyJob, CopyCsvJob,
                                            JsonlCopyJob, ParquetCopyJob, parquet_batch_rows)

__all__ = ["PARQUET_BATCH_BYTES", "PARQUET_BATCH_ROWS", "ArrowIpcCopyJob", "CopyCsvJob", "JsonlCopyJob",
           "ParquetCopyJob", "parquet_batch_rows"]
