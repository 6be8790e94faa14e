"""Issue 9: the data users bring (Arrow tables, DataFrames, parquet and JSONL files) vs the databases' own loaders.

Cases, each on DuckDB (a fresh file-backed database per run) and PostgreSQL (a fresh schema per run):

- Arrow table: ``loadbay.pipeline(...).run(table, table_name="events")`` vs DuckDB's
  ``CREATE TABLE events AS SELECT * FROM table`` (closed, so its data is on disk), and vs
  ``COPY events FROM STDIN (FORMAT csv)`` (psycopg2 ``copy_expert``) of the same rows as a CSV file
  written beforehand into a table created beforehand with the matching types. Only the call or
  the statement is timed; the table is read into memory before the clock starts. Target ≤1.5×.
- pandas / polars DataFrame of the same rows (``table.to_pandas()``, ``polars.from_arrow(table)``),
  timed like the Arrow table and compared with loadbay's own Arrow table figure. Target ≤2×.
- parquet / JSONL file by path through the CLI (``loadbay load FILE ...``), the whole process
  timed, vs a process that runs DuckDB's ``CREATE TABLE events AS SELECT * FROM read_parquet(...)``
  / ``read_json(...)``, or the COPY of the CSV on PostgreSQL (connect, create, COPY). Target ≤1.5×.
- dlt 1.31 beside loadbay for the Arrow table (fresh pipelines dir and dataset each run).

Every load runs in its own process, started by a small stdlib-only runner that reads the peak RSS
of that process with ``wait4`` (so no parent's pages count), and every destination table is checked
against the checksum DuckDB takes of the Arrow table (counts, sums, nulls per column); a mismatch or
a failed run exits non-zero after the table is printed. Medians of ``--rounds`` (per-round ratios in
the notes). ``--memory`` adds the peak RSS of the Arrow table and parquet cases at 1M and 5M rows
(generated into a temporary directory, removed afterwards).

Usage: ``python bench/arrow_inputs.py [--rows 1000000] [--rounds 3] [--only duckdb|postgres]
[--cases arrow,pandas,polars,parquet,jsonl] [--skip-dlt] [--memory [--memory-rows 1000000,5000000]]``;
the server comes from ``LOADBAY_BENCH_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
A smoke run: ``--rows 20000 --rounds 1 --memory --memory-rows 20000,50000``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
CASES = ("arrow", "pandas", "polars", "parquet", "jsonl")
DESTINATIONS = ("duckdb", "postgres")
MEMORY_ROWS = (1_000_000, 5_000_000)

# -- in the child processes: heavy imports stay inside these functions -----------------------------


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def read_table(ipc: str) -> Any:
    import pyarrow as pa

    with pa.OSFile(ipc, "rb") as source:
        return pa.ipc.open_file(source).read_all()


def child_loadbay(kind: str, dest: str, target: str, dataset: str, pipelines_dir: str, ipc: str,
                  warm: str = "cold") -> dict[str, Any]:
    """``p.run`` on an Arrow table or a DataFrame made from it (before the clock starts). ``warm``: first,
    before the clock, the same call on the table's first 1,000 rows into another database file or schema,
    as a long-lived process would have done (imports, the driver's first connection, sqlglot's caches)."""
    import loadbay

    data = read_table(ipc)
    if kind == "pandas":
        data = data.to_pandas()
    elif kind == "polars":
        import polars as pl

        data = pl.from_arrow(data)
    if warm == "warm":
        warm_target = target.replace(".duckdb", "_warm.duckdb") if dest == "duckdb" else target
        loadbay.pipeline("bench_arrow_warm", destination=loadbay.destination(dest, credentials=warm_target),
                         dataset_name=f"{dataset}_warm", pipelines_dir=pipelines_dir).run(
            data.head(WARM_ROWS) if kind != "arrow" else data.slice(0, WARM_ROWS),
            table_name="events").raise_on_failed_jobs()
    p = loadbay.pipeline("bench_arrow", destination=loadbay.destination(dest, credentials=target),
                         dataset_name=dataset, pipelines_dir=pipelines_dir)
    input_mib = rss_mib()
    started = time.perf_counter()
    info = p.run(data, table_name="events")
    seconds = time.perf_counter() - started
    info.raise_on_failed_jobs()
    return {"seconds": seconds, "input_mib": input_mib, "timings": info.timings, "row_counts": info.row_counts}


def child_dlt(dest: str, target: str, dataset: str, pipelines_dir: str, ipc: str) -> dict[str, Any]:
    import dlt

    table = read_table(ipc)
    factory = dlt.destinations.duckdb if dest == "duckdb" else dlt.destinations.postgres
    p = dlt.pipeline("bench_arrow_dlt", destination=factory(target), dataset_name=dataset,
                     pipelines_dir=pipelines_dir)
    input_mib = rss_mib()
    started = time.perf_counter()
    info = p.run(table, table_name="events")
    seconds = time.perf_counter() - started
    info.raise_on_failed_jobs()
    return {"seconds": seconds, "input_mib": input_mib}


def with_loadbay_columns(table: Any) -> Any:
    """``table`` with the two columns loadbay adds to every root row: a constant ``_lb_load_id`` and a
    unique 24-character ``_lb_id`` (the design's floor for the Arrow table case, measured beside it)."""
    import pyarrow as pa

    n = table.num_rows
    return (table.append_column("_lb_load_id", pa.array(["1795799523.2585460"] * n))
            .append_column("_lb_id", pa.array([f"{ID_PREFIX}{k:012d}" for k in range(n)])))


ID_PREFIX = "Xk3_9aQzLm0p"
WARM_ROWS = 1_000


def child_duckdb(db: str, source: str, path: str, warm: str = "cold") -> dict[str, Any]:
    """DuckDB's own load: CREATE TABLE AS from the Arrow table (read first) or from the file. With ``_ids``
    (``arrow_ids``, ``parquet_ids``, ``jsonl_ids``): loadbay's two columns added, for the Arrow table before
    the clock starts, for a file by DuckDB in the statement (the id of a parquet row from its row number, of
    a JSON row from a sequence). ``jsonl_exact``: ``read_json`` typing every row (``sample_size = -1``). ``warm`` (Arrow tables): first, before the clock, the same statement on the
    first 1,000 rows into another database file, as ``child_loadbay`` warms up."""
    import duckdb

    arrow_table = read_table(path) if source.startswith("arrow") else None  # DuckDB finds it by name
    if source == "arrow_ids":
        arrow_table = with_loadbay_columns(arrow_table)
    if warm == "warm" and arrow_table is not None:
        first_rows = arrow_table.slice(0, WARM_ROWS)  # noqa: F841 - DuckDB finds it by name
        with duckdb.connect(db.replace(".duckdb", "_warm.duckdb")) as con:
            con.execute("CREATE TABLE events AS SELECT * FROM first_rows")
    started = time.perf_counter()
    con = duckdb.connect(db)
    if source.startswith("arrow"):
        con.execute("CREATE TABLE events AS SELECT * FROM arrow_table")
    elif source == "parquet_ids":
        con.execute("CREATE TABLE events AS SELECT * EXCLUDE (file_row_number), $load_id AS _lb_load_id, "
                    "$prefix || lpad(to_hex(file_row_number), 12, '0') AS _lb_id "
                    "FROM read_parquet($path, file_row_number := true)",
                    {"load_id": "1795799523.2585460", "prefix": ID_PREFIX, "path": path})
    elif source == "jsonl_exact":  # every row typed, as loadbay types a file (the default samples 20,480)
        con.execute("CREATE TABLE events AS SELECT * FROM read_json(?, sample_size = -1)", [path])
    elif source == "jsonl_ids":
        con.execute("CREATE SEQUENCE lb_ids")
        con.execute("CREATE TABLE events AS SELECT *, $load_id AS _lb_load_id, "
                    "$prefix || lpad(to_hex(nextval('lb_ids')), 12, '0') AS _lb_id FROM read_json($path)",
                    {"load_id": "1795799523.2585460", "prefix": ID_PREFIX, "path": path})
    else:
        con.execute(f"CREATE TABLE events AS SELECT * FROM {'read_parquet' if source == 'parquet' else 'read_json'}(?)",
                    [path])
    con.close()
    return {"seconds": time.perf_counter() - started}


def child_copy(url: str, schema: str, csv_path: str) -> dict[str, Any]:
    """PostgreSQL's own load: COPY ... FROM STDIN (FORMAT csv) into a table made beforehand."""
    import psycopg2
    from psycopg2 import sql

    from arrow_data import PG_COLUMNS, TABLE

    conn = psycopg2.connect(url)
    conn.autocommit = True
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(TABLE))
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in PG_COLUMNS)))
        statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(target).as_string(conn)
        started = time.perf_counter()
        with open(csv_path, encoding="utf-8", newline="") as f:
            cur.copy_expert(statement, f, size=1 << 20)
        seconds = time.perf_counter() - started
    conn.close()
    return {"seconds": seconds}


def child_spawn(timeout: str, cmd: list[str]) -> dict[str, Any]:
    """The runner: starts ``cmd``, times the whole process and takes its peak RSS from wait4.

    This process imports nothing big: ``ru_maxrss`` survives exec, so a child started from a large
    process would report that process's high-water mark. Past ``timeout`` seconds the child is killed."""
    import signal

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        signal.signal(signal.SIGALRM, lambda *_: proc.kill())
        signal.alarm(max(1, round(float(timeout))))
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        signal.alarm(0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        err.seek(0)
        lines = out.read().decode(errors="replace").strip().splitlines()
        stderr = err.read().decode(errors="replace")
    inner = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None
    return {"process_s": elapsed, "peak_mib": usage.ru_maxrss / 1024, "rc": proc.returncode, "inner": inner,
            "stdout": "\n".join(lines[-20:]), "stderr": stderr[-3000:]}


def child_main(argv: list[str]) -> None:
    kind, *rest = argv
    sys.path.insert(0, str(HERE))
    if kind == "spawn":
        result = child_spawn(rest[0], rest[1:])
    elif kind == "loadbay":
        result = child_loadbay(*rest)
    elif kind == "dlt":
        result = child_dlt(*rest)
    elif kind == "duckdb":
        result = child_duckdb(*rest)
    elif kind == "copy":
        result = child_copy(*rest)
    else:
        raise SystemExit(f"unknown child kind {kind}")
    print(json.dumps(result))


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    child_main(sys.argv[2:])
    raise SystemExit(0)

# -- the parent ------------------------------------------------------------------------------------

sys.path.insert(0, str(HERE))
from arrow_runs import Bench, report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the timed cases (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every case; medians are reported")
    parser.add_argument("--only", choices=DESTINATIONS, help="one destination only")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--skip-dlt", action="store_true", help="no dlt figures")
    parser.add_argument("--memory", action="store_true",
                        help="peak RSS of the Arrow table and parquet cases at 1M and 5M rows (one run each)")
    parser.add_argument("--memory-rows", default=",".join(map(str, MEMORY_ROWS)),
                        help="row counts of --memory (default 1000000,5000000)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one load may take before it counts as failed")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    memory_rows = tuple(int(n) for n in args.memory_rows.split(",") if n.strip()) if args.memory else ()
    if args.rows < 1 or args.rounds < 1 or not cases or set(cases) - set(CASES) or any(n < 1 for n in memory_rows):
        parser.error(f"row counts and --rounds must be positive; --cases a subset of {','.join(CASES)}")
    with_dlt = not args.skip_dlt and importlib.util.find_spec("dlt") is not None
    if not args.skip_dlt and not with_dlt:
        print("dlt is not installed (pip install -e '.[bench]'): no dlt figures", file=sys.stderr)
    bench = Bench(script=Path(__file__).resolve(), url=os.environ.get("LOADBAY_BENCH_POSTGRES", DEFAULT_URL),
                  destinations=[args.only] if args.only else list(DESTINATIONS), cases=cases,
                  with_dlt=with_dlt, timeout=args.timeout)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lb_bench_arrow_") as tmp:
        try:
            bench.run(Path(tmp), rows=args.rows, rounds=args.rounds, memory_rows=memory_rows)
        finally:
            bench.close()
    failed = report(bench, args.rows, time.perf_counter() - started)
    if failed:
        raise SystemExit(1)

if __name__ == "__main__":
    main()
