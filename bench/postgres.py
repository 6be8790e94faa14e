"""PostgreSQL: loadbay from iterators of dicts vs a raw ``COPY ... FROM STDIN (FORMAT csv)``.

Three scenarios, each loadbay run into its own fresh dataset (schema):

- flat append: 1,000,000 event rows (ints, float, bool, timezone-aware timestamp, nullable text);
- nested append: 100,000 records with a nested dict (flattened to ``meta__...`` columns) and two
  lists that loadbay turns into child tables (``orders__items``, ``orders__tags``);
- merge: the flat rows first, then a batch of 30% of that size (20% of the ids with a changed
  amount, 10% new ids) merged with ``write_disposition="merge", primary_key="id"``.

The baseline gets the same rows as CSV files written before timing, with the same columns loadbay
makes (its ``_lb_*`` columns included), and COPYs them with psycopg2's ``copy_expert`` into
pre-created tables; for the merge it COPYs the batch into a staging table and runs one
``INSERT ... ON CONFLICT (id) DO UPDATE`` into a pre-loaded table with a primary key. Only the
COPY (and upsert) statements are timed; loadbay is timed from ``run()`` on an unconsumed
generator to its return. The flat loadbay run happens in a child process, so its peak RSS is the
pipeline's own. Every table is checked (row counts and checksums) against what the generators
made; a mismatch exits non-zero. All schemas the run made are dropped at the end.

Every step runs ``--rounds`` times (default 3; a CHECKPOINT before each timed step) and the
medians are reported, with each round's ratio: on a shared 2-core machine one round can be 30%
off either way.

Usage: ``python bench/postgres.py [--scale 1.0] [--rounds 3] [--profile]``; the server comes from
``LOADBAY_BENCH_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``). ``--profile``
runs the loadbay parts under cProfile (main thread only: parallel load jobs show up as waits)
and prints the top 15 functions by tottime; its timings include the profiler's overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))  # postgres_data, when imported from elsewhere
from postgres_data import (FLAT_CHECK_NAMES, FLAT_CHECK_SQL, FLAT_COLUMNS, FLAT_TABLE, ITEMS_TABLE, NESTED_CHECK_NAMES,
                           NESTED_CHECK_SQL, NESTED_COLUMNS, NESTED_TABLE, TAGS_TABLE, Ids, flat_expected, flat_rows,
                           flat_sums, merge_rows, nested_expected, nested_rows, updated_ids, write_flat_csv,
                           write_nested_csv)

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "lb_bench_pg"
COPY_SCHEMA = f"{SCHEMA_PREFIX}_copy"
DATASETS = {"flat": f"{SCHEMA_PREFIX}_flat", "nested": f"{SCHEMA_PREFIX}_nested", "merge": f"{SCHEMA_PREFIX}_merge"}
FLAT_ROWS, NESTED_ROWS = 1_000_000, 100_000
COPY_CHUNK = 1 << 20  # the same read size loadbay's COPY job uses

# -- database helpers ------------------------------------------------------------------------------


def connect(url: str) -> Any:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET TIME ZONE 'UTC'")
    return conn


def qualified(schema: str, table: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))


def execute(conn: Any, statement: sql.Composable | str, fetch: bool = False) -> Any:
    with conn.cursor() as cur:
        cur.execute(statement)
        return cur.fetchall() if fetch else None


def create_table(conn: Any, schema: str, table: str, columns: list[tuple[str, str]],
                 primary_key: str | None = None) -> None:
    defs = [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in columns]
    if primary_key:
        defs.append(sql.SQL("PRIMARY KEY ({})").format(sql.Identifier(primary_key)))
    execute(conn, sql.SQL("CREATE TABLE {} ({})").format(qualified(schema, table), sql.SQL(", ").join(defs)))


def copy_csv(conn: Any, schema: str, table: str, columns: list[tuple[str, str]], path: Path) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        qualified(schema, table), sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns))
    with open(path, encoding="utf-8", newline="") as f, conn.cursor() as cur:
        cur.copy_expert(statement.as_string(conn), f, size=COPY_CHUNK)


def drop_schemas(conn: Any, schemas: Iterable[str]) -> None:
    for schema in schemas:
        execute(conn, sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def flat_check(conn: Any, schema: str, table: str) -> tuple[Any, ...]:
    return tuple(execute(conn, sql.SQL(FLAT_CHECK_SQL).format(qualified(schema, table)), fetch=True)[0])


def nested_check(conn: Any, schema: str) -> tuple[Any, ...]:
    statement = sql.SQL(NESTED_CHECK_SQL).format(root=qualified(schema, NESTED_TABLE),
                                                 items=qualified(schema, ITEMS_TABLE), tags=qualified(schema, TAGS_TABLE))
    return tuple(execute(conn, statement, fetch=True)[0])


def masked(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


# -- loadbay ---------------------------------------------------------------------------------------


def lb_pipeline(name: str, dataset: str, pipelines_dir: Path, url: str) -> Any:
    import loadbay

    return loadbay.pipeline(name, destination=loadbay.destination("postgres", credentials=url),
                            dataset_name=dataset, pipelines_dir=pipelines_dir)


def timed_run(p: Any, data: Iterable[dict[str, Any]], profile: list[str] | None, **kwargs: Any) -> tuple[float, Any]:
    """Seconds of ``p.run(data, **kwargs)`` and its LoadInfo; under cProfile if ``profile`` collects reports."""
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    info = p.run(data, **kwargs)
    elapsed = time.perf_counter() - started
    if profiler is not None:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
        profile.append(out.getvalue())
    info.raise_on_failed_jobs()
    return elapsed, info


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started running its program.

    Linux's ``ru_maxrss`` survives exec: a child forked from the (larger) benchmark process would
    report the parent's size. ``VmHWM`` belongs to the current address space only."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_flat(n: int, pipelines_dir: str, dataset: str, url: str, profile: bool) -> None:
    """In its own process: the flat append; prints profile text (if asked) and then one JSON line."""
    reports: list[str] | None = [] if profile else None
    p = lb_pipeline("bench_pg_flat", dataset, Path(pipelines_dir), url)
    elapsed, info = timed_run(p, flat_rows(n), reports, table_name=FLAT_TABLE)
    for report in reports or []:
        print(report)
    print(json.dumps({"seconds": elapsed, "peak_mib": peak_rss_mib(), "timings": info.timings,
                      "row_counts": info.row_counts}))


# -- the run ---------------------------------------------------------------------------------------


class Report:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, float, float, float, dict[str, float]]] = []
        self.failures: list[str] = []
        self.profiles: list[tuple[str, str]] = []

    def verify(self, what: str, got: tuple[Any, ...], expected: tuple[Any, ...], names: tuple[str, ...]) -> None:
        if tuple(got) != tuple(expected):
            diffs = ", ".join(f"{n}: got {g} expected {e}" for n, g, e in zip(names, got, expected) if g != e)
            self.failures.append(f"{what}: checksum mismatch: {diffs}")

    def verify_counts(self, what: str, got: dict[str, int], expected: dict[str, int]) -> None:
        if got != expected:
            self.failures.append(f"{what}: LoadInfo row counts {got}, expected {expected}")


class Round:
    """Seconds of one round of every timed step, plus what the loadbay runs reported."""

    def __init__(self) -> None:
        self.copy: dict[str, float] = {}
        self.loadbay: dict[str, float] = {}
        self.timings: dict[str, dict[str, float]] = {}
        self.first_merge_load = 0.0
        self.peak_mib = 0.0


def checkpoint(conn: Any) -> None:
    """Flush dirty buffers before a timed step, so it does not pay for the writes of the one before."""
    execute(conn, "CHECKPOINT")


def run_round(conn: Any, url: str, work: Path, data: dict[str, Any], report: Report, profiles: list[str] | None,
              profile: bool) -> Round:
    """COPY baselines, then the three loadbay scenarios, each into fresh schemas; verifies every table."""
    n_flat, n_nested, updated = data["n_flat"], data["n_nested"], data["updated"]
    flat_csv, merge_csv, nested_paths = data["flat_csv"], data["merge_csv"], data["nested_paths"]
    flat_s, merged_s, nested_s, n_batch = data["flat_s"], data["merged_s"], data["nested_s"], data["n_batch"]
    drop_schemas(conn, data["schemas"])
    pipelines = work / "pipelines"
    shutil.rmtree(pipelines, ignore_errors=True)
    r = Round()

    # -- baseline: COPY (and upsert) -------------------------------------------------------------
    execute(conn, sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(COPY_SCHEMA)))
    create_table(conn, COPY_SCHEMA, FLAT_TABLE, FLAT_COLUMNS)
    checkpoint(conn)
    started = time.perf_counter()
    copy_csv(conn, COPY_SCHEMA, FLAT_TABLE, FLAT_COLUMNS, flat_csv)
    r.copy["flat"] = time.perf_counter() - started
    report.verify("COPY flat", flat_check(conn, COPY_SCHEMA, FLAT_TABLE), flat_expected(flat_s), FLAT_CHECK_NAMES)

    for table, columns in NESTED_COLUMNS.items():
        create_table(conn, COPY_SCHEMA, table, columns)
    checkpoint(conn)
    started = time.perf_counter()
    for table, columns in NESTED_COLUMNS.items():
        copy_csv(conn, COPY_SCHEMA, table, columns, nested_paths[table])
    r.copy["nested"] = time.perf_counter() - started
    report.verify("COPY nested", nested_check(conn, COPY_SCHEMA), nested_expected(nested_s), NESTED_CHECK_NAMES)

    merged, staging = "events_merged", "events_merge_staging"
    create_table(conn, COPY_SCHEMA, merged, FLAT_COLUMNS, primary_key="id")
    copy_csv(conn, COPY_SCHEMA, merged, FLAT_COLUMNS, flat_csv)  # the pre-loaded table (untimed)
    create_table(conn, COPY_SCHEMA, staging, FLAT_COLUMNS)
    names = [name for name, _ in FLAT_COLUMNS]
    upsert = sql.SQL("INSERT INTO {t} ({cols}) SELECT {cols} FROM {s} ON CONFLICT ({pk}) DO UPDATE SET {sets}").format(
        t=qualified(COPY_SCHEMA, merged), s=qualified(COPY_SCHEMA, staging),
        cols=sql.SQL(", ").join(map(sql.Identifier, names)), pk=sql.Identifier("id"),
        sets=sql.SQL(", ").join(sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
                                for c in names if c != "id"))
    checkpoint(conn)
    started = time.perf_counter()
    copy_csv(conn, COPY_SCHEMA, staging, FLAT_COLUMNS, merge_csv)
    execute(conn, upsert)
    r.copy["merge"] = time.perf_counter() - started
    report.verify("COPY + upsert merge", flat_check(conn, COPY_SCHEMA, merged), flat_expected(merged_s),
                  FLAT_CHECK_NAMES)

    # -- loadbay ---------------------------------------------------------------------------------
    # flat append, in a child process: its peak RSS is the pipeline's own
    checkpoint(conn)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-flat", str(n_flat),
           str(pipelines), DATASETS["flat"], url] + (["--profile"] if profile else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the loadbay flat append child failed:\n{out.stderr}")
    *child_text, result_line = out.stdout.rstrip("\n").split("\n")
    child = json.loads(result_line)
    if profiles is not None:
        profiles.append("\n".join(child_text))
    r.loadbay["flat"], r.timings["flat"], r.peak_mib = child["seconds"], child["timings"], child["peak_mib"]
    report.verify_counts("loadbay flat", child["row_counts"], {FLAT_TABLE: n_flat})
    report.verify("loadbay flat", flat_check(conn, DATASETS["flat"], FLAT_TABLE), flat_expected(flat_s),
                  FLAT_CHECK_NAMES)

    p = lb_pipeline("bench_pg_nested", DATASETS["nested"], pipelines, url)
    checkpoint(conn)
    r.loadbay["nested"], info = timed_run(p, nested_rows(n_nested), profiles, table_name=NESTED_TABLE)
    r.timings["nested"] = info.timings
    report.verify_counts("loadbay nested", info.row_counts,
                         {NESTED_TABLE: nested_s[0], ITEMS_TABLE: nested_s[8], TAGS_TABLE: nested_s[13]})
    report.verify("loadbay nested", nested_check(conn, DATASETS["nested"]), nested_expected(nested_s),
                  NESTED_CHECK_NAMES)

    p = lb_pipeline("bench_pg_merge", DATASETS["merge"], pipelines, url)
    merge_hints = {"table_name": FLAT_TABLE, "write_disposition": "merge", "primary_key": "id"}
    r.first_merge_load, info = timed_run(p, flat_rows(n_flat), None, **merge_hints)
    report.verify_counts("loadbay merge (first load)", info.row_counts, {FLAT_TABLE: n_flat})
    report.verify("loadbay merge (first load)", flat_check(conn, DATASETS["merge"], FLAT_TABLE),
                  flat_expected(flat_s), FLAT_CHECK_NAMES)
    checkpoint(conn)
    r.loadbay["merge"], info = timed_run(p, merge_rows(n_flat, updated), profiles, **merge_hints)
    r.timings["merge"] = info.timings
    report.verify_counts("loadbay merge", info.row_counts, {FLAT_TABLE: n_batch})
    report.verify("loadbay merge", flat_check(conn, DATASETS["merge"], FLAT_TABLE), flat_expected(merged_s),
                  FLAT_CHECK_NAMES)
    report.verify("loadbay merge vs COPY + upsert", flat_check(conn, DATASETS["merge"], FLAT_TABLE),
                  flat_check(conn, COPY_SCHEMA, merged), FLAT_CHECK_NAMES)
    return r


def prepare_data(work: Path, n_flat: int, n_nested: int) -> dict[str, Any]:
    """The baseline's CSV files, and the figures every table must show afterwards."""
    updated = updated_ids(n_flat)
    is_updated = bytearray(n_flat)
    for i in updated:
        is_updated[i] = 1
    replaced = [0] * 9  # flat_sums of the original rows the merge replaces

    def note_replaced(row: dict[str, Any]) -> None:
        if is_updated[row["id"]]:
            for k, v in enumerate(flat_sums([row])):
                replaced[k] += v

    ids = Ids()
    flat_csv, merge_csv = work / "flat.csv", work / "merge.csv"
    flat_s = write_flat_csv(flat_csv, flat_rows(n_flat), ids, note_replaced)
    batch_s = write_flat_csv(merge_csv, merge_rows(n_flat, updated), ids)
    nested_paths = {t: work / f"{t}.csv" for t in NESTED_COLUMNS}
    return {"n_flat": n_flat, "n_nested": n_nested, "updated": updated, "flat_csv": flat_csv, "merge_csv": merge_csv,
            "nested_paths": nested_paths, "flat_s": flat_s, "n_batch": batch_s[0],
            "merged_s": [a - b + c for a, b, c in zip(flat_s, replaced, batch_s)],
            "nested_s": write_nested_csv(nested_paths, nested_rows(n_nested))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every row count (0.05: a smoke run)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every step; medians are reported")
    parser.add_argument("--profile", action="store_true", help="cProfile the loadbay runs (top 15 by tottime)")
    parser.add_argument("--child-flat", nargs=4, metavar=("ROWS", "PIPELINES_DIR", "DATASET", "URL"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_flat:
        rows, pipelines_dir, dataset, url = args.child_flat
        child_flat(int(rows), pipelines_dir, dataset, url, args.profile)
        return
    if args.scale <= 0 or args.rounds < 1:
        parser.error("--scale must be positive and --rounds at least 1")

    script_started = time.perf_counter()
    url = os.environ.get("LOADBAY_BENCH_POSTGRES", DEFAULT_URL)
    n_flat = max(10, round(FLAT_ROWS * args.scale))
    n_nested = max(10, round(NESTED_ROWS * args.scale))
    schemas = [COPY_SCHEMA] + [s for d in DATASETS.values() for s in (d, f"{d}_staging")]
    report = Report()
    profiles: list[str] | None = [] if args.profile else None
    conn = connect(url)
    version = execute(conn, "SHOW server_version", fetch=True)[0][0]
    rounds: list[Round] = []
    try:
        with tempfile.TemporaryDirectory(prefix="lb_bench_pg_") as tmp:
            work = Path(tmp)
            data = prepare_data(work, n_flat, n_nested)
            data["schemas"] = schemas
            floors = {}  # the floor: making the dicts, nothing else
            for key, make in (("flat", lambda: flat_rows(n_flat)), ("nested", lambda: nested_rows(n_nested)),
                              ("merge", lambda: merge_rows(n_flat, data["updated"]))):
                started = time.perf_counter()
                for _ in make():
                    pass
                floors[key] = time.perf_counter() - started
            for n in range(args.rounds):
                rounds.append(run_round(conn, url, work, data, report, profiles if n == 0 else None, args.profile))
    finally:
        drop_schemas(conn, schemas)
        conn.close()

    def median(values: Iterable[float]) -> float:
        return statistics.median(list(values))

    def split(key: str) -> str:
        """LoadInfo's step timings (medians); "other" is the rest of run(): configuration, schema restore."""
        total = median(r.loadbay[key] for r in rounds)
        norm = median(r.timings[key].get("normalize", 0.0) for r in rounds)
        load = median(r.timings[key].get("load", 0.0) for r in rounds)
        return f"{key} normalize {norm:.2f} + load {load:.2f} + other {total - norm - load:.2f} s"

    nested_s, n_batch = data["nested_s"], data["n_batch"]
    print(f"loadbay vs COPY FROM STDIN (csv) into PostgreSQL {version} at {masked(url)}, scale {args.scale:g}, "
          f"median of {len(rounds)} rounds")
    print(f"{'scenario':<15}{'rows':>40}{'generator':>11}{'COPY':>9}{'loadbay':>9}{'ratio':>8}   ratio per round")
    rows_text = {
        "flat": f"{n_flat:,}",
        "nested": f"{nested_s[0]:,} + {nested_s[8]:,} items + {nested_s[13]:,} tags",
        "merge": f"{n_batch:,} into {n_flat:,} (+{n_batch - len(data['updated']):,} new)",
    }
    for key, label in (("flat", "flat append"), ("nested", "nested append"), ("merge", "merge")):
        copy_s, lb_s = median(r.copy[key] for r in rounds), median(r.loadbay[key] for r in rounds)
        per_round = " ".join(f"{r.loadbay[key] / r.copy[key]:.1f}x" for r in rounds)
        print(f"{label:<15}{rows_text[key]:>40}{floors[key]:>9.2f} s{copy_s:>7.2f} s{lb_s:>7.2f} s"
              f"{lb_s / copy_s:>7.1f}x   {per_round}")
    print(f"loadbay split: {split('flat')}; {split('nested')}; {split('merge')}")
    print(f"loadbay first load of the merge scenario (merge into an empty table, not compared): "
          f"{median(r.first_merge_load for r in rounds):.2f} s")
    print("peak RSS of the child process running the loadbay flat append: "
          f"{' '.join(f'{r.peak_mib:.0f}' for r in rounds)} MiB (each round)")
    print(f"checksums: {'MISMATCH' if report.failures else 'all tables match the generators, every round'}")
    print(f"whole script: {time.perf_counter() - script_started:.1f} s")
    if profiles:
        for title, text in zip(("flat append (child process)", "nested append", "merge"), profiles):
            print(f"\n== cProfile, loadbay {title}, top 15 by tottime (main thread only) ==\n{text.strip()}")
    if report.failures:
        for failure in report.failures:
            print(f"FAIL {failure}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
