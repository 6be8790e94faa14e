"""What atomic appends cost: the same append, straight into the table vs through staging.

``atomic_appends = true`` loads a package's files into its staging tables and moves the rows into
the table in the package's final transaction (one INSERT ... SELECT per table), so an interrupted
append shows nothing. This times both ways side by side, in alternating rounds, into a table that
already holds a first batch (as a daily append would), on DuckDB and on the PostgreSQL server if
reachable, and checks the row counts and a checksum after every run. Medians of the rounds.

Usage: ``python bench/atomic_append.py [rows] [rounds]`` (default 500,000 rows, 3 rounds).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import loadbay

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
POSTGRES_URL = os.environ.get("LOADBAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CHECK_SQL = "SELECT count(*), sum(id), (SELECT count(*) FROM events__tags) FROM events"


def rows(start: int, n: int) -> Iterator[dict[str, Any]]:
    for i in range(start, start + n):
        yield {"id": i, "user_id": i % 100_000, "amount": (i % 1000) / 10, "is_ok": i % 3 == 0,
               "created_at": BASE + dt.timedelta(seconds=i), "name": None if i % 7 == 0 else f"user {i % 5000}",
               "tags": ["a", "b"] if i % 10 == 0 else []}


def expected(n: int) -> tuple[int, int, int]:
    """Count, sum of ids and child rows after a first batch and a second one of ``n`` rows each."""
    ids = range(2 * n)
    return len(ids), sum(ids), 2 * sum(1 for i in ids if i % 10 == 0)


def destination(kind: str, folder: Path) -> Any:
    if kind == "duckdb":
        return loadbay.destination("duckdb", credentials=str(folder / f"{uuid.uuid4().hex}.duckdb"))
    return loadbay.destination("postgres", credentials=POSTGRES_URL)


def one_run(kind: str, atomic: bool, n: int, folder: Path) -> float:
    dataset = f"bench_{uuid.uuid4().hex[:10]}"
    p = loadbay.pipeline(f"atomic_{atomic}", destination=destination(kind, folder), dataset_name=dataset,
                         pipelines_dir=folder / uuid.uuid4().hex, atomic_appends=atomic)
    try:
        p.run(rows(0, n), table_name="events").raise_on_failed_jobs()
        started = time.perf_counter()
        p.run(rows(n, n), table_name="events").raise_on_failed_jobs()
        elapsed = time.perf_counter() - started
        with p.sql_client() as client:
            check = tuple(int(v) for v in client.execute_sql(CHECK_SQL)[0])
        if check != expected(n):
            raise SystemExit(f"{kind} atomic={atomic}: contents {check} != expected {expected(n)}")
        return elapsed
    finally:
        if kind == "postgres":
            with p.sql_client() as client:
                client.drop_dataset()
                client.drop_dataset(p.config.staging_dataset_name)


def postgres_reachable() -> bool:
    try:
        import psycopg2

        psycopg2.connect(POSTGRES_URL, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means: skip PostgreSQL
        return False


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500_000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    kinds = ["duckdb"] + (["postgres"] if postgres_reachable() else [])
    print(f"append of {n:,} rows (+{n // 10 * 2:,} child rows) into a table holding as many, "
          f"median of {rounds} rounds; contents checked after every run")
    print(f"{'destination':<12}{'direct':>10}{'atomic':>10}{'cost':>8}   rounds (direct/atomic)")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(rounds):
                for atomic in (False, True):
                    times[atomic].append(one_run(kind, atomic, n, Path(tmp)))
            direct, atomic = statistics.median(times[False]), statistics.median(times[True])
            spread = " ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(times[False], times[True]))
            print(f"{kind:<12}{direct:>9.2f}s{atomic:>9.2f}s{(atomic / direct - 1) * 100:>+7.0f}%   {spread}")


if __name__ == "__main__":
    main()
