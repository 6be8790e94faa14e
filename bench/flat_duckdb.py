"""Flat append into DuckDB: loadbay from an iterator of dicts vs DuckDB's own read_json.

Both load the same deterministic rows (ints, floats, bools, timestamps, nullable strings). The
baseline reads a JSONL file of those rows with ``read_json`` and explicit column types into a
pre-created table; loadbay gets the rows as a generator of dicts, as a user's code would hand them
over. Prints seconds, the ratio loadbay / read_json, and peak RSS, and verifies row counts and a
checksum after each run. Usage: ``python bench/flat_duckdb.py [rows]`` (default 1,000,000).
"""

from __future__ import annotations

import datetime as dt
import random
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson

import loadbay

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
CHECKSUM_SQL = "SELECT count(*), sum(id), sum(user_id), round(sum(amount), 3), sum(CASE WHEN is_ok THEN 1 ELSE 0 END), count(name) FROM {}"


def rows(n: int) -> Iterator[dict[str, Any]]:
    r = random.Random(42)
    for i in range(n):
        yield {"id": i, "user_id": r.randint(1, 100_000), "amount": round(r.random() * 1000, 2),
               "is_ok": i % 3 == 0, "created_at": BASE + dt.timedelta(seconds=i),
               "name": None if i % 7 == 0 else f"user {i % 5000}", "kind": "click"}


def baseline(path: Path, jsonl: Path) -> tuple[float, tuple[Any, ...]]:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE events (id BIGINT, user_id BIGINT, amount DOUBLE, is_ok BOOLEAN, "
                "created_at TIMESTAMPTZ, name VARCHAR, kind VARCHAR)")
    started = time.perf_counter()
    con.execute("INSERT INTO events SELECT * FROM read_json(?, format='newline_delimited', columns={"
                "'id': 'BIGINT', 'user_id': 'BIGINT', 'amount': 'DOUBLE', 'is_ok': 'BOOLEAN', "
                "'created_at': 'TIMESTAMPTZ', 'name': 'VARCHAR', 'kind': 'VARCHAR'})", [str(jsonl)])
    elapsed = time.perf_counter() - started
    check = con.execute(CHECKSUM_SQL.format("events")).fetchone()
    con.close()
    return elapsed, check


def with_loadbay(path: Path, pipelines: Path, n: int) -> tuple[float, tuple[Any, ...]]:
    p = loadbay.pipeline("bench", destination=loadbay.destination("duckdb", credentials=str(path)),
                         dataset_name="bench", pipelines_dir=pipelines)
    started = time.perf_counter()
    p.run(rows(n), table_name="events").raise_on_failed_jobs()
    elapsed = time.perf_counter() - started
    with p.sql_client() as client:
        check = client.execute_sql(CHECKSUM_SQL.format("events"))[0]
    return elapsed, check


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jsonl = work / "events.jsonl"
        with open(jsonl, "wb") as f:
            for row in rows(n):
                f.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        started = time.perf_counter()
        for _ in rows(n):
            pass
        gen_s = time.perf_counter() - started
        base_s, base_check = baseline(work / "baseline.duckdb", jsonl)
        lb_s, lb_check = with_loadbay(work / "loadbay.duckdb", work / "pipelines", n)
    if base_check != lb_check or base_check[0] != n:
        raise SystemExit(f"checksum mismatch: read_json {base_check} vs loadbay {lb_check}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows: {n:,}  checksums match: {lb_check}")
    print(f"making the dicts alone (the generator):   {gen_s:6.2f} s")
    print(f"duckdb read_json (file already written): {base_s:6.2f} s")
    print(f"loadbay from a generator of dicts:       {lb_s:6.2f} s")
    print(f"ratio loadbay / read_json:               {lb_s / base_s:6.1f}x")
    print(f"peak RSS of this process:                {peak:6.0f} MiB")


if __name__ == "__main__":
    main()
