"""Data of the Arrow-inputs benchmark: one deterministic Arrow table, the files made from it, and a
checksum that DuckDB and PostgreSQL compute alike (compared with the one DuckDB takes of the table).

The columns are the flat bench columns (bench/postgres_data.py) widened to ten and given nulls:
int64, int32 with nulls, float64 (with and without nulls), bool, a UTC timestamp with and without
nulls, text with nulls, low-cardinality text. Built with numpy, so 5,000,000 rows take seconds.
Kept apart from ``bench/arrow_inputs.py`` (which times and verifies) so each fits on a few screens.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

TABLE = "events"
BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
BASE_EPOCH = int(BASE.timestamp())
KINDS = ("click", "view", "purchase", "signup")
NAMES = tuple(f"user {k}" for k in range(5000))

# PostgreSQL column types matching the Arrow types, for the COPY baseline's table.
PG_COLUMNS = (("id", "bigint"), ("user_id", "bigint"), ("qty", "integer"), ("amount", "double precision"),
              ("score", "double precision"), ("is_ok", "boolean"), ("created_at", "timestamptz"),
              ("updated_at", "timestamptz"), ("name", "text"), ("kind", "text"))

# The same SQL on DuckDB and PostgreSQL; every figure is a whole number once rounded (see ``normalized``).
CHECK_SQL = (
    "SELECT count(*), sum(id), sum(user_id), count(qty), sum(qty), sum(round(amount * 100)), count(score), "
    "sum(round(score * 1000)), count(*) FILTER (WHERE is_ok), "
    f"sum(extract(epoch FROM created_at) - {BASE_EPOCH}), count(updated_at), "
    f"sum(extract(epoch FROM updated_at) - {BASE_EPOCH}), count(name), sum(length(name)), "
    "count(*) FILTER (WHERE kind = 'purchase') FROM {}")
CHECK_NAMES = ("count", "sum(id)", "sum(user_id)", "count(qty)", "sum(qty)", "sum(amount)", "count(score)",
               "sum(score)", "count(is_ok)", "sum(created_at)", "count(updated_at)", "sum(updated_at)",
               "count(name)", "sum(length(name))", "count(purchase)")


def make_table(n: int, seed: int = 42) -> pa.Table:
    """``n`` rows; nulls every 7th name, 11th qty, 5th score and every other updated_at."""
    rng = np.random.default_rng(seed)
    i = np.arange(n, dtype=np.int64)
    created = BASE_EPOCH + i * 37  # whole seconds: epoch sums stay exact in a double
    names = pa.array(np.array(NAMES, dtype=object)[i % len(NAMES)], type=pa.string())
    kinds = pa.array(np.array(KINDS, dtype=object)[i % len(KINDS)], type=pa.string())
    return pa.table({
        "id": pa.array(i),
        "user_id": pa.array((i * 2654435761) % 100_000 + 1),
        "qty": pa.array((i % 50).astype(np.int32), mask=i % 11 == 0),
        "amount": pa.array(np.round(rng.random(n) * 1000, 2)),
        "score": pa.array(np.round(rng.random(n) * 100, 3), mask=i % 5 == 0),
        "is_ok": pa.array(i % 3 == 0),
        "created_at": pa.array(created * 1_000_000, type=pa.timestamp("us", tz="UTC")),
        "updated_at": pa.array((created + 3600) * 1_000_000, type=pa.timestamp("us", tz="UTC"), mask=i % 2 == 1),
        "name": pa.compute.if_else(pa.array(i % 7 == 0), pa.scalar(None, pa.string()), names),
        "kind": kinds,
    })


def normalized(row: tuple[Any, ...]) -> tuple[int, ...]:
    """A checksum row as whole numbers (drivers return int, Decimal or float for the same figure)."""
    return tuple(0 if v is None else int(round(float(v))) for v in row)


def write_files(table: pa.Table, work: Path, *, text_files: bool = True) -> dict[str, Path]:
    """The table as Arrow IPC (how children get it), parquet, and, if asked, JSONL and headerless CSV."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    paths = {"arrow": work / f"{TABLE}.arrow", "parquet": work / f"{TABLE}.parquet"}
    with pa.OSFile(str(paths["arrow"]), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    pq.write_table(table, paths["parquet"])
    if text_files:
        paths["jsonl"], paths["csv"] = work / f"{TABLE}.jsonl", work / f"{TABLE}.csv"
        write_jsonl(table, paths["jsonl"])
        pacsv.write_csv(table, paths["csv"], pacsv.WriteOptions(include_header=False))
    return paths


def write_jsonl(table: pa.Table, path: Path) -> None:
    """One JSON object a line, timestamps as ISO 8601 with offset, nulls as JSON null (polars writes
    the same bytes as orjson over ``to_pylist()``, 25 times faster)."""
    import polars as pl

    pl.from_arrow(table).write_ndjson(path)


def expected_check(table: pa.Table) -> tuple[int, ...]:
    """CHECK_SQL computed by DuckDB over the Arrow table itself: what every destination must show."""
    import duckdb

    con = duckdb.connect()
    con.register("source", table)
    row = con.execute(CHECK_SQL.format("source")).fetchone()
    con.close()
    return normalized(row)
