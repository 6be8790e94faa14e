"""Small loads: seconds of one ``run()`` of 1,000 rows, a fresh pipeline and a warm one, on DuckDB and PostgreSQL.

Frequent small incremental loads pay a load's fixed cost (connections, system-table reads, DDL checks,
package files) every time; this measures it. Each (tool, destination, row shape) runs in a child process
of its own, which first makes one throwaway load of its own (the lazy imports of drivers, sqlglot
dialects and the like are paid there; reported apart as "first load in the process"), then:

- fresh: ``--rounds`` loads, each by a new pipeline: a new pipelines_dir, a new dataset and, for
  DuckDB, a new database file (what a first run on a new machine or a new dataset costs);
- warm: one pipeline object, one load not counted, then ``--rounds`` loads into the same tables
  (what a scheduler or a service calling ``run()`` again and again pays);
- kept (loadbay only): the same inside a ``with pipeline:`` block, which keeps one connection open
  across its runs (dlt has no such block: "-").

Only ``run()`` is timed, on a list of rows made before the clock starts (flat: the seven columns of
``bench/postgres_data.flat_rows``; nested with ``--nested``: ``nested_rows``, a root and two child tables).
After each load the row counts in the destination are checked; a mismatch fails the script. dlt 1.31
(``pip install '.[bench]'``, or any interpreter that has it: ``--dlt-python``) loads the same rows beside
loadbay unless ``--skip-dlt``. ``--spans`` loads once more per mode with perf_counter spans around the
steps listed in ``SPANS`` and prints where the time of one load goes (mean ms per load, per thread); spans
cost some time themselves, so their totals run a little above the plain figures. PostgreSQL schemas
``lb_bench_small_*`` are dropped at the end.

Usage: ``python bench/small_loads.py [--rows 1000] [--rounds 9] [--only duckdb|postgres] [--nested]
[--skip-dlt] [--dlt-python PATH] [--spans]``; the server comes from ``LOADBAY_BENCH_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Timings on a shared machine are noisy: keep ``--rounds``
at 7 or more and read the medians.
"""

from __future__ import annotations

import argparse
import collections
import functools
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "lb_bench_small"
DESTINATIONS = ("duckdb", "postgres")
TARGET_S = 0.1
SPAN_LOADS = 3
"""Loads per mode under ``--spans``; the tree shows their mean."""

# -- the rows ------------------------------------------------------------------------------------------


def make_rows(shape: str, n: int) -> list[dict[str, Any]]:
    sys.path.insert(0, str(HERE))
    from postgres_data import flat_rows, nested_rows

    return list(flat_rows(n) if shape == "flat" else nested_rows(n))


def expected_counts(shape: str, rows: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"events": len(rows)} if shape == "flat" else {
        "orders": len(rows), "orders__items": sum(len(r["items"]) for r in rows),
        "orders__tags": sum(len(r["tags"]) for r in rows)}
    return {table: n for table, n in counts.items() if n}


# -- the tools, as the child processes use them ---------------------------------------------------------


class Tool:
    """Makes pipelines, runs one load, counts rows: the same steps for loadbay and dlt."""

    def __init__(self, dest: str, url: str, work: Path) -> None:
        self.dest, self.url, self.work = dest, url, work

    def target(self, tag: str) -> str:
        return str(self.work / f"{tag}.duckdb") if self.dest == "duckdb" else self.url

    def pipeline(self, tag: str) -> Any:
        raise NotImplementedError

    def run(self, p: Any, rows: list[dict[str, Any]], table: str) -> None:
        raise NotImplementedError

    def counts(self, p: Any, tables: list[str]) -> dict[str, int]:
        raise NotImplementedError

    def kept(self, p: Any) -> Any:
        """A context in which ``p`` keeps its connection across runs; None if the tool has none."""
        return None


class LoadbayTool(Tool):
    def pipeline(self, tag: str) -> Any:
        import loadbay

        destination = loadbay.destination(self.dest, credentials=self.target(tag))
        return loadbay.pipeline(f"small_{tag}", destination=destination,
                                dataset_name=f"{SCHEMA_PREFIX}_lb_{os.getpid()}_{tag}",
                                pipelines_dir=self.work / f"pipelines_{tag}")

    def run(self, p: Any, rows: list[dict[str, Any]], table: str) -> None:
        p.run(rows, table_name=table).raise_on_failed_jobs()

    def counts(self, p: Any, tables: list[str]) -> dict[str, int]:
        with p.sql_client() as client:
            return {t: int(client.execute_sql(f'SELECT count(*) FROM "{t}"')[0][0]) for t in tables}  # the dataset's

    def kept(self, p: Any) -> Any:
        return p if hasattr(p, "__enter__") else None  # older loadbay (bench/before_after.py): none


class DltTool(Tool):
    def target(self, tag: str) -> str:
        """dlt refuses PostgreSQL credentials without a password; a trust-auth server ignores this one."""
        parts = urlsplit(super().target(tag))
        if self.dest == "duckdb" or parts.password is not None or not parts.username:
            return super().target(tag)
        return urlunsplit(parts._replace(netloc=f"{parts.username}:unused@{parts.netloc.split('@', 1)[1]}"))

    def pipeline(self, tag: str) -> Any:
        import dlt

        factory = dlt.destinations.duckdb if self.dest == "duckdb" else dlt.destinations.postgres
        return dlt.pipeline(f"small_dlt_{tag}", destination=factory(self.target(tag)),
                            dataset_name=f"{SCHEMA_PREFIX}_dlt_{os.getpid()}_{tag}",
                            pipelines_dir=str(self.work / f"pipelines_{tag}"))

    def run(self, p: Any, rows: list[dict[str, Any]], table: str) -> None:
        p.run(rows, table_name=table).raise_on_failed_jobs()

    def counts(self, p: Any, tables: list[str]) -> dict[str, int]:
        with p.sql_client() as client:
            return {t: int(client.execute_sql(f"SELECT count(*) FROM {client.make_qualified_table_name(t)}")[0][0])
                    for t in tables}


TOOLS: dict[str, type[Tool]] = {"loadbay": LoadbayTool, "dlt": DltTool}


def child(tool_name: str, dest: str, shape: str, rounds: int, n: int, url: str, work: str,
          spans: bool) -> dict[str, Any]:
    """One load to warm the process up, then the fresh and the warm rounds; seconds of each ``run()``."""
    tool = TOOLS[tool_name](dest, url, Path(work))
    table = "events" if shape == "flat" else "orders"
    rows = make_rows(shape, n)
    expected = expected_counts(shape, rows)
    out: dict[str, Any] = {"fresh": [], "warm": [], "kept": [], "errors": []}

    def timed(p: Any, loads_before: int) -> float:
        started = time.perf_counter()
        tool.run(p, rows, table)
        seconds = time.perf_counter() - started
        got = tool.counts(p, list(expected))
        want = {t: c * (loads_before + 1) for t, c in expected.items()}
        if got != want:
            out["errors"].append(f"row counts {got}, expected {want}")
        return seconds

    out["first"] = timed(tool.pipeline("first"), 0)
    for r in range(rounds):
        out["fresh"].append(timed(tool.pipeline(f"fresh{r}"), 0))
    warm = tool.pipeline("warm")
    timed(warm, 0)
    for r in range(rounds):
        out["warm"].append(timed(warm, r + 1))
    kept = tool.pipeline("kept")
    block = tool.kept(kept)
    if block is not None:
        with block:
            timed(kept, 0)
            for r in range(rounds):
                out["kept"].append(timed(kept, r + 1))
    if spans:
        out["spans"] = {}
        with Spans() as recorder:
            for mode in ("fresh", "warm"):
                recorder.reset()
                for r in range(SPAN_LOADS):
                    tool.run(warm if mode == "warm" else tool.pipeline(f"spans{r}"), rows, table)
                out["spans"][mode] = recorder.tree(SPAN_LOADS)
            out["spans_missing"] = recorder.missing
    return out


# -- spans: where one load's time goes ------------------------------------------------------------------

SPANS: dict[str, tuple[str, ...]] = {
    "loadbay.pipeline": ("Pipeline.run", "Pipeline._load_pending", "Pipeline._restore_schema", "Pipeline._normalize",
                         "Pipeline._save_schema", "Pipeline._load_one", "normalize"),
    "loadbay.common.normalizer": ("RelationalNormalizer.normalize",),
    "loadbay.common.storage.package_writer": ("PackageWriter.write", "PackageWriter.close"),
    "loadbay.common.storage.package": ("PackageStorage.lock", "PackageStorage.create", "PackageStorage.commit",
                                       "PackageStorage.complete", "PackageStorage.pending", "LoadPackage.save_schema",
                                       "LoadPackage.schema", "LoadPackage.write_meta", "LoadPackage.clean_leftovers"),
    "loadbay.destinations.job_client": (
        "SqlJobClient.prepare_storage", "SqlJobClient.migrate_tables",
        "SqlJobClient.prepare_load", "SqlJobClient.loaded_jobs", "SqlJobClient.is_load_completed",
        "SqlJobClient.run_job", "SqlJobClient.complete_load", "SqlJobClient.clean_up_package",
        "SqlJobClient.stored_schema"),
    "loadbay.destinations.sql_client": ("SqlClient.open", "SqlClient.after_connect", "SqlClient.close",
                                        "SqlClient.table_columns"),
    "loadbay.destinations.duckdb.sql_client": ("DuckDbSqlClient.connect", "DuckDbSqlClient.after_connect",
                                               "DuckDbSqlClient.close"),
    "loadbay.destinations.postgres.sql_client": ("PostgresSqlClient.connect", "PostgresSqlClient.copy_from"),
    "loadbay.destinations.duckdb.jobs": ("DuckDbReaderJob.run",),
    "loadbay.destinations.postgres.jobs": ("JsonlCopyJob.run",),
    "loadbay.destinations.transcode": ("_transcode", "transcoded_csv"),
    "loadbay.load": ("Loader._load", "Loader._prepare", "Loader._run_jobs", "Loader._run_job", "Loader._clean_up",
                     "Loader.describe", "SharedClient.get", "SharedClient.close"),
    "loadbay.load_feed": ("LoadFeed.finish", "LoadFeed._load"),
}
"""Callables (``Class.method`` or ``function`` per module) timed by ``--spans``; those the code no longer has
are listed as missing, not fatal (the modules change)."""
STATEMENTS = ("loadbay.destinations.sql_client:SqlClient.execute_text",
              "loadbay.destinations.sql_client:SqlClient.execute_sql")
"""Every statement is timed too, labelled by its text: at the first of these the code has."""
THREAD_KIND = re.compile(r"[^0-9]*")
"""A thread's name up to its first digit (its load id, its number): threads of one kind add up across loads."""
QUALIFIED = re.compile(r'("[^"]*"\.)+')
"""Catalog and dataset before a table name, dropped from statement labels: loads into other datasets add up."""


class Spans:
    """Replaces the listed callables with timed wrappers while in use; ``tree`` sums inclusive seconds per
    call path (``thread/outer/inner``) over the loads since ``reset``."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: dict[str, int] = collections.defaultdict(int)
        self.missing: list[str] = []
        self.undo: list[Callable[[], None]] = []

    def __enter__(self) -> Spans:
        for module, names in SPANS.items():
            for name in names:
                self._wrap(f"{module}:{name}")
        for spec in STATEMENTS:
            if self._wrap(spec, statement=True):
                break
            self.missing.remove(spec)
        return self

    def __exit__(self, *exc: object) -> None:
        for undo in reversed(self.undo):
            undo()

    def _wrap(self, spec: str, statement: bool = False) -> bool:
        module_name, _, path = spec.partition(":")
        try:
            owner: Any = importlib.import_module(module_name)
            *outer, attr = path.split(".")
            for part in outer:
                owner = getattr(owner, part)
            original = owner.__dict__[attr]
        except (ImportError, AttributeError, KeyError):
            self.missing.append(spec)
            return False
        function = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
        label = path.rsplit(".", 1)[-1] if not outer else path

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            name = self._statement_label(args) if statement else label
            stack = self._stack()
            stack.append(name)
            key = "/".join(stack)
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - started
                self.calls[key] += 1
                stack.pop()

        wrapped = type(original)(timed) if isinstance(original, (staticmethod, classmethod)) else timed
        setattr(owner, attr, wrapped)
        self.undo.append(lambda: setattr(owner, attr, original))
        return True

    @staticmethod
    def _statement_label(args: tuple[Any, ...]) -> str:
        statement = args[1] if len(args) > 1 else ""
        text = statement if isinstance(statement, str) else f"<{type(statement).__name__}> {statement}"
        return "sql: " + QUALIFIED.sub("", " ".join(text.split()))[:60]

    def _stack(self) -> list[str]:
        stack = getattr(self.local, "stack", None)
        if stack is None:
            current = threading.current_thread()
            kind = THREAD_KIND.match(current.name)
            thread = "main" if current is threading.main_thread() or kind is None else kind.group()
            stack = self.local.stack = [thread]
        return stack

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def tree(self, loads: int) -> list[tuple[str, float, float]]:
        """(path, ms per load, calls per load), sorted so that a path follows its parent."""
        return [(key, self.seconds[key] * 1000 / loads, self.calls[key] / loads) for key in sorted(self.seconds)]


# -- the parent: runs the children, checks, prints ------------------------------------------------------


def run_child(python: str, args: list[str], timeout: float) -> dict[str, Any]:
    cmd = [python, str(Path(__file__).resolve()), "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines or not lines[-1].startswith("{"):
        last = [line for line in proc.stderr.splitlines() if line.strip() and not line[0].isspace()][-1:]
        return {"fresh": [], "warm": [], "errors": [f"exit {proc.returncode}: {' '.join(last)[:300]}"]}
    return dict(json.loads(lines[-1]))


def drop_schemas(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", [SCHEMA_PREFIX + "%"])
        for (name,) in cur.fetchall():
            cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    conn.close()


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}" if values else "-"


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}" if values else "-"


def print_spans(label: str, result: dict[str, Any]) -> None:
    for mode, rows in result.get("spans", {}).items():
        print(f"\n{label}, {mode} pipeline: ms per load (mean of {SPAN_LOADS}; inclusive; calls per load)\n")
        print("```")
        for key, ms, calls in rows:
            if ms >= 0.2:
                *parents, name = key.split("/")
                print(f"{'  ' * len(parents)}{name:<{78 - 2 * len(parents)}} {ms:6.1f} ms  x{calls:g}")
        print("```")
    if result.get("spans_missing"):
        print(f"\nspans not found (the code changed): {', '.join(result['spans_missing'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000, help="rows per load (default 1,000)")
    parser.add_argument("--rounds", type=int, default=9, help="timed loads per mode; medians are reported")
    parser.add_argument("--only", choices=DESTINATIONS, help="one destination only")
    parser.add_argument("--nested", action="store_true", help="nested rows too (a root and two child tables)")
    parser.add_argument("--skip-dlt", action="store_true", help="no dlt figures")
    parser.add_argument("--dlt-python", default=sys.executable,
                        help="the interpreter that runs dlt (one with dlt 1.31 installed; default: this one)")
    parser.add_argument("--spans", action="store_true", help="print where the time of one loadbay load goes")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one child process may take")
    args = parser.parse_args()
    url = os.environ.get("LOADBAY_BENCH_POSTGRES", DEFAULT_URL)
    dests = [args.only] if args.only else list(DESTINATIONS)
    shapes = ["flat", "nested"] if args.nested else ["flat"]
    tools = ["loadbay"]
    if not args.skip_dlt:
        probe = subprocess.run([args.dlt_python, "-c", "import dlt"], capture_output=True)
        if probe.returncode == 0:
            tools.append("dlt")
        else:
            print(f"dlt is not importable by {args.dlt_python} (pip install '.[bench]'): no dlt figures",
                  file=sys.stderr)
    results: dict[tuple[str, str, str], dict[str, Any]] = {}
    started = time.perf_counter()
    try:
        for shape in shapes:
            for dest in dests:
                for tool in tools:
                    python = args.dlt_python if tool == "dlt" else sys.executable
                    print(f"{tool} {dest} {shape}: {args.rounds} rounds", file=sys.stderr, flush=True)
                    with tempfile.TemporaryDirectory(prefix="lb_small_") as work:
                        spans = args.spans and tool == "loadbay"
                        results[tool, dest, shape] = run_child(
                            python, [tool, dest, shape, str(args.rounds), str(args.rows), url, work, str(int(spans))],
                            args.timeout)
    finally:
        if "postgres" in dests:
            drop_schemas(url)
    print(f"\n{args.rows:,}-row loads, seconds of run() (median of {args.rounds}, min-max beside; target "
          f"loadbay <= {TARGET_S} s)\n")
    print("| rows | destination | tool | fresh s | fresh min-max | warm s | warm min-max | kept s | kept min-max "
          "| first load in the process s |")
    print("|---|---|---|---:|---|---:|---|---:|---|---:|")
    failures = []
    for (tool, dest, shape), r in results.items():
        first = f"{r['first']:.3f}" if "first" in r else "-"
        print(f"| {shape} | {dest} | {tool} | {fmt(r['fresh'])} | {spread(r['fresh'])} | {fmt(r['warm'])} | "
              f"{spread(r['warm'])} | {fmt(r.get('kept', []))} | {spread(r.get('kept', []))} | {first} |")
        failures.extend(f"{tool} {dest} {shape}: {e}" for e in r["errors"])
    for (tool, dest, shape), r in results.items():
        if "spans" in r:
            print_spans(f"{tool} {dest} {shape}", r)
    print(f"\nwhole script: {time.perf_counter() - started:.0f} s")
    if failures:
        print("\nFailures:\n" + "\n".join(f"- {f}" for f in failures))
        raise SystemExit(1)


def child_main(argv: list[str]) -> None:
    tool, dest, shape, rounds, n, url, work, spans = argv
    print(json.dumps(child(tool, dest, shape, int(rounds), int(n), url, work, spans == "1")))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
