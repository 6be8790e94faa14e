"""Spark: loadbay from an iterator of 1,000,000 flat dicts vs Spark's own ``INSERT INTO ... SELECT * FROM
parquet.`<file>``` of the same rows, written to a parquet file beforehand (untimed).

loadbay is timed from ``run()`` on an unconsumed generator to its return (normalize, the parquet load files,
the system tables, one INSERT ... SELECT per file); the baseline from its INSERT to its return, into a table
created beforehand with the same columns loadbay makes (its ``_lb_*`` columns included). Row counts and a
checksum of ``id`` are compared; a mismatch exits non-zero. Both datasets are dropped at the end.

Usage: ``python bench/spark.py [--rows 1000000] [--rounds 1]``; the server is ``LOADBAY_TEST_SPARK`` (default
``spark://loadbay@127.0.0.1:10000``, ``scripts/spark.sh start``), and must see this machine's files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import loadbay

URL = os.environ.get("LOADBAY_TEST_SPARK", "spark://loadbay@127.0.0.1:10000")
START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def rows(n: int) -> Iterator[dict[str, Any]]:
    """Flat events: ints, a float, a bool, an aware timestamp, a nullable text."""
    for i in range(n):
        yield {"id": i, "user_id": i % 9973, "amount": i * 0.25, "paid": i % 3 == 0,
               "created_at": START + timedelta(seconds=i), "note": None if i % 5 else f"note {i}"}


def loadbay_round(n: int, workdir: Path) -> tuple[float, loadbay.Pipeline]:
    name = f"bench_spark_{uuid.uuid4().hex[:8]}"
    p = loadbay.pipeline(name, destination="spark", dataset_name=name, credentials=URL, pipelines_dir=workdir)
    began = time.perf_counter()
    p.run(rows(n), table_name="events").raise_on_failed_jobs()
    return time.perf_counter() - began, p


def baseline_round(n: int, p: loadbay.Pipeline, workdir: Path) -> float:
    """The same rows (with loadbay's columns) as one parquet file, loaded by Spark's own INSERT ... SELECT."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with p.sql_client() as client:
        columns = [str(r[0]) for r in client.execute_sql("DESCRIBE TABLE events") or []]
        data = client.execute_sql("SELECT _lb_load_id FROM events LIMIT 1")
    load_id = data[0][0] if data else "0"
    table = pa.Table.from_pylist([{**r, "_lb_load_id": load_id, "_lb_id": f"{i:024x}"} for i, r in enumerate(rows(n))])
    path = workdir / "baseline.parquet"
    pq.write_table(table.select([c for c in columns if c in table.column_names]), path)
    from sqlglot import exp

    from loadbay.destinations.spark.jobs import parquet_file

    names = [c for c in columns if c in table.column_names]
    insert = exp.Insert(this=exp.Schema(this=exp.to_table("baseline"), expressions=[exp.to_identifier(c, quoted=True)
                                                                                  for c in names]),
                        expression=exp.select(*[exp.column(c, quoted=True) for c in names]).from_(parquet_file(str(path))))
    with p.sql_client() as client:
        client.execute_sql("CREATE TABLE baseline USING parquet AS SELECT * FROM events WHERE false")
        began = time.perf_counter()
        client.execute_sql(insert)
        took = time.perf_counter() - began
        counts = client.execute_sql("SELECT (SELECT count(*) FROM events), (SELECT sum(id) FROM events), "
                                    "(SELECT count(*) FROM baseline), (SELECT sum(id) FROM baseline)")
    expected = (n, n * (n - 1) // 2)
    if counts is None or tuple(counts[0][:2]) != expected or tuple(counts[0][2:]) != expected:
        sys.exit(f"row counts or checksums differ: {counts} (expected {expected} twice)")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    ours, theirs = [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            took, p = loadbay_round(args.rows, Path(tmp))
            try:
                ours.append(took)
                theirs.append(baseline_round(args.rows, p, Path(tmp)))
            finally:
                with p.sql_client() as client:
                    client.drop_dataset()
                    client.drop_dataset(p.config.staging_dataset_name)
        print(f"round: loadbay {ours[-1]:.1f} s, Spark INSERT ... SELECT FROM parquet {theirs[-1]:.1f} s", flush=True)
    print(f"{args.rows:,} flat rows into Spark: loadbay from dicts {statistics.median(ours):.1f} s, Spark's own "
          f"INSERT ... SELECT FROM parquet of a file written beforehand {statistics.median(theirs):.1f} s "
          f"(median of {args.rounds})")


if __name__ == "__main__":
    main()
