"""The runs of bench/arrow_inputs.py: which process runs each case, the checks after it, the report.

Every load is a process of its own (``arrow_inputs.py --child KIND ...``) started through the
stdlib-only runner (``--child spawn``), which reports the process's wall time and peak RSS; the
parent only prepares data, resets destinations, checks them and prints. Kept apart from the
children (which must import nothing at start-up) so each file fits on a few screens.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import arrow_data as data_mod

DATASET = "lb_bench_arrow"
SCHEMAS = {who: f"{DATASET}_{who}" for who in ("loadbay", "copy", "dlt")}
FILE_CASES = ("parquet", "jsonl")
FRAME_CASES = ("pandas", "polars")
TARGETS = {"arrow": 1.5, "pandas": 2.0, "polars": 2.0, "parquet": 1.5, "jsonl": 1.5}
LABELS = {"arrow": "Arrow table", "pandas": "pandas DataFrame", "polars": "polars DataFrame",
          "parquet": "parquet file, CLI", "jsonl": "JSONL file, CLI"}
BASELINES = {
    ("duckdb", "arrow"): "CREATE TABLE AS SELECT * FROM arrow_table",
    ("duckdb", "parquet"): "process: CREATE TABLE AS read_parquet",
    ("duckdb", "jsonl"): "process: CREATE TABLE AS read_json",
    ("postgres", "arrow"): "COPY FROM STDIN csv (statement)",
    ("postgres", "parquet"): "process: connect, create, COPY csv",
    ("postgres", "jsonl"): "process: connect, create, COPY csv",
}


@dataclass
class Measurement:
    """One process: the figure compared (a call's or the whole process's seconds), its peak RSS, errors."""

    seconds: float | None = None
    process_s: float | None = None
    peak_mib: float | None = None
    input_mib: float | None = None
    inner_seconds: float | None = None  # the child's own timer (for a whole-process figure: its statement)
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Data:
    rows: int
    paths: dict[str, Path]
    expected: tuple[int, ...]


def prepare(work: Path, rows: int, *, text_files: bool) -> Data:
    work.mkdir(parents=True, exist_ok=True)
    table = data_mod.make_table(rows)
    paths = data_mod.write_files(table, work, text_files=text_files)
    return Data(rows, paths, data_mod.expected_check(table))


def dlt_url(url: str) -> str:
    """dlt refuses PostgreSQL credentials without a password; a trust-auth server ignores this one."""
    parts = urlsplit(url)
    if parts.password is not None or not parts.username:
        return url
    host = parts.netloc.split("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:unused@{host}"))


def error_line(text: str, *, first: bool = False) -> str:
    """The line of an error text that says what happened: a traceback's last unindented line (not a
    caret marker), or with ``first`` a driver message's first line (the rest shows the query)."""
    lines = [line for line in text.splitlines() if line.strip() and not line[0].isspace()
             and set(line.strip()) - set("^~ ")]
    if not lines:
        return "(no output)"
    return (lines[0] if first else lines[-1]).strip()[:300]


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


class Bench:
    def __init__(self, *, script: Path, url: str, destinations: list[str], cases: list[str], with_dlt: bool,
                 timeout: float) -> None:
        self.script, self.url, self.destinations, self.cases = script, url, destinations, cases
        self.with_dlt, self.timeout = with_dlt, timeout
        self.results: dict[tuple[Any, ...], list[Measurement]] = defaultdict(list)
        self.rounds = 0
        self.versions: dict[str, str] = {}
        self._pg: Any = None

    # -- destinations ----------------------------------------------------------------------------

    def pg(self) -> Any:
        if self._pg is None:
            import psycopg2

            self._pg = psycopg2.connect(self.url)
            self._pg.autocommit = True
            with self._pg.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
        return self._pg

    def pg_execute(self, statement: Any, fetch: bool = False) -> Any:
        with self.pg().cursor() as cur:
            cur.execute(statement)
            return cur.fetchone() if fetch else None

    def pg_reset(self) -> None:
        """Drops every schema a run may have made, then CHECKPOINT: no run pays for the one before."""
        from psycopg2 import sql

        for schema in SCHEMAS.values():
            for name in (schema, f"{schema}_staging", f"{schema}_warm", f"{schema}_warm_staging"):
                self.pg_execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
        self.pg_execute("CHECKPOINT")

    def check(self, dest: str, where: str, schema: str | None, expected: tuple[int, ...]) -> str | None:
        """None if the table ``events`` shows the expected checksum, else what differs."""
        try:
            if dest == "duckdb":
                import duckdb

                table = f'"{schema}"."{data_mod.TABLE}"' if schema else data_mod.TABLE
                con = duckdb.connect(where, read_only=True)
                try:
                    row = con.execute(data_mod.CHECK_SQL.format(table)).fetchone()
                finally:
                    con.close()
            else:
                from psycopg2 import sql

                table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(data_mod.TABLE))
                row = self.pg_execute(sql.SQL(data_mod.CHECK_SQL).format(table), fetch=True)
        except Exception as exc:  # a missing table or a column of the wrong type: reported, not raised
            return f"checksum query failed: {type(exc).__name__}: {error_line(str(exc), first=True)}"
        got = data_mod.normalized(row)
        if got == expected:
            return None
        diffs = [f"{n}: got {g} expected {e}" for n, g, e in zip(data_mod.CHECK_NAMES, got, expected) if g != e]
        return "checksum mismatch: " + ", ".join(diffs)

    def close(self) -> None:
        if self._pg is not None:
            self.pg_reset()
            self._pg.close()
            self._pg = None

    # -- processes -------------------------------------------------------------------------------

    def spawn(self, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
        runner = [sys.executable, str(self.script), "--child", "spawn", str(self.timeout), *cmd]
        out = subprocess.run(runner, capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})})
        if out.returncode != 0:
            raise SystemExit(f"the runner failed: {out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])

    def measure(self, key: tuple[Any, ...], cmd: list[str], *, work: Path, use: str,
                check: Callable[[], str | None]) -> Measurement:
        """Runs one process; ``use`` says which figure is compared: ``call`` (the child's timer) or ``process``."""
        env = {"RUNTIME__DLTHUB_TELEMETRY": "false", "DLT_DATA_DIR": str(work / "dlt_home")}
        r = self.spawn(cmd, work, env)
        inner = r["inner"] or {}
        m = Measurement(process_s=r["process_s"], peak_mib=r["peak_mib"], input_mib=inner.get("input_mib"),
                        inner_seconds=inner.get("seconds"), timings=inner.get("timings") or {})
        if r["rc"] != 0:
            m.error = f"exit {r['rc']}: {error_line(r['stderr'] or r['stdout'])}"
        else:
            m.seconds = inner.get("seconds") if use == "call" else r["process_s"]
            m.error = check()
        self.results[key].append(m)
        status = f"{m.seconds:.2f} s" if m.error is None else f"FAILED ({m.error[:120]})"
        print(f"  {' '.join(map(str, key)):<40} {status}, peak {m.peak_mib:.0f} MiB", file=sys.stderr, flush=True)
        return m

    def child(self, kind: str, *args: Any) -> list[str]:
        return [sys.executable, str(self.script), "--child", kind, *map(str, args)]

    def cli(self, dest: str, target: str, path: Path, pipelines: Path) -> list[str]:
        loadbay_bin = Path(sys.executable).parent / "loadbay"
        return [str(loadbay_bin), "load", str(path), "--pipeline", "bench_arrow", "--table", data_mod.TABLE,
                "--destination", dest, "--credentials", target, "--dataset", SCHEMAS["loadbay"],
                "--pipelines-dir", str(pipelines)]

    # -- one destination, one round --------------------------------------------------------------

    def fresh(self, work: Path, dest: str) -> Path:
        """An empty run directory (databases, pipelines dirs) and, on PostgreSQL, no leftover schemas."""
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if dest == "postgres":
            self.pg_reset()
        return work

    def target(self, dest: str, run: Path, who: str) -> str:
        return str(run / f"{who}.duckdb") if dest == "duckdb" else self.url

    def load_loadbay(self, key: tuple[Any, ...], dest: str, case: str, d: Data, run: Path,
                     warm: str = "cold") -> Measurement:
        target = self.target(dest, run, "loadbay")
        if case in FILE_CASES:
            cmd, use = self.cli(dest, target, d.paths[case], run / "pipelines"), "process"
        else:
            cmd, use = self.child("loadbay", case, dest, target, SCHEMAS["loadbay"], run / "pipelines",
                                  d.paths["arrow"], warm), "call"
        return self.measure(key, cmd, work=run, use=use,
                            check=lambda: self.check(dest, target, SCHEMAS["loadbay"], d.expected))

    def load_dlt(self, key: tuple[Any, ...], dest: str, d: Data, run: Path) -> Measurement:
        target = self.target(dest, run, "dlt") if dest == "duckdb" else dlt_url(self.url)
        cmd = self.child("dlt", dest, target, SCHEMAS["dlt"], run / "dlt_pipelines", d.paths["arrow"])
        where = target if dest == "duckdb" else self.url
        return self.measure(key, cmd, work=run, use="call",
                            check=lambda: self.check(dest, where, SCHEMAS["dlt"], d.expected))

    def load_baseline(self, key: tuple[Any, ...], dest: str, case: str, d: Data, run: Path,
                      source: str | None = None, warm: str = "cold") -> Measurement:
        use = "process" if case in FILE_CASES else "call"
        if dest == "duckdb":
            db = str(run / "baseline.duckdb")
            return self.measure(key, self.child("duckdb", db, source or case, d.paths[case], warm), work=run, use=use,
                                check=lambda: self.check(dest, db, None, d.expected))
        return self.measure(key, self.child("copy", self.url, SCHEMAS["copy"], d.paths["csv"]), work=run, use=use,
                            check=lambda: self.check(dest, self.url, SCHEMAS["copy"], d.expected))

    def round(self, work: Path, dest: str, d: Data) -> None:
        for case in self.cases:
            if case not in FRAME_CASES:  # DataFrames are compared with loadbay's Arrow table figure
                self.load_baseline(("timed", dest, case, "baseline"), dest, case, d, self.fresh(work, dest))
            if dest == "duckdb" and case in ("arrow", *FILE_CASES):  # with loadbay's two columns: the design's floor
                self.load_baseline(("timed", dest, case, "baseline_ids"), dest, case, d, self.fresh(work, dest),
                                   source=f"{case}_ids")
            if dest == "duckdb" and case == "jsonl":  # DuckDB typing every row, as loadbay does
                self.load_baseline(("timed", dest, case, "baseline_exact"), dest, case, d, self.fresh(work, dest),
                                   source="jsonl_exact")
            self.load_loadbay(("timed", dest, case, "loadbay"), dest, case, d, self.fresh(work, dest))
            if case not in FILE_CASES:  # a call: also as the second load of a long-lived process
                self.load_loadbay(("timed", dest, case, "loadbay_warm"), dest, case, d, self.fresh(work, dest), "warm")
            if dest == "duckdb" and case == "arrow":
                for source in ("arrow", "arrow_ids"):
                    self.load_baseline(("timed", dest, case, f"baseline_{source.replace('arrow', 'warm')}"), dest,
                                       case, d, self.fresh(work, dest), source=source, warm="warm")
            if case == "arrow" and self.with_dlt:
                self.load_dlt(("timed", dest, case, "dlt"), dest, d, self.fresh(work, dest))
        shutil.rmtree(work, ignore_errors=True)

    def run(self, work: Path, *, rows: int, rounds: int, memory_rows: tuple[int, ...]) -> None:
        self.record_versions()
        started = time.perf_counter()
        d = prepare(work / "data", rows, text_files=True)
        print(f"data: {rows:,} rows written in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for n in range(rounds):
            print(f"round {n + 1} of {rounds}", file=sys.stderr)
            for dest in self.destinations:
                self.round(work / "run", dest, d)
            self.rounds += 1
        for n in memory_rows:
            md = d if n == rows else prepare(work / f"data_{n}", n, text_files=False)
            print(f"memory: {n:,} rows", file=sys.stderr)
            for dest in self.destinations:
                for case in ("arrow", "parquet"):
                    self.load_loadbay(("memory", n, dest, case, "loadbay"), dest, case, md, self.fresh(work / "run", dest))
                if self.with_dlt:
                    self.load_dlt(("memory", n, dest, "arrow", "dlt"), dest, md, self.fresh(work / "run", dest))
            if md is not d:
                shutil.rmtree(work / f"data_{n}", ignore_errors=True)

    def record_versions(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        for name in ("duckdb", "pyarrow", "pandas", "polars", "dlt"):
            try:
                self.versions[name] = version(name)
            except PackageNotFoundError:
                self.versions[name] = "not installed"
        if "postgres" in self.destinations:
            self.versions["PostgreSQL"] = str(self.pg_execute("SHOW server_version", fetch=True)[0])


# -- the report ------------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "–" if value is None else format(value, spec)


def figures(ms: list[Measurement]) -> tuple[float | None, bool]:
    """The median of the successful runs, and whether any run failed."""
    ok = [m.seconds for m in ms if m.error is None and m.seconds is not None]
    return median(ok), any(m.error for m in ms) or not ms


def warm_notes(res: dict[tuple[Any, ...], list[Measurement]], dest: str, case: str,
               base_s: float | None) -> list[str]:
    """The warm figures of a call case: loadbay's second load in a process against the warm baselines
    (DuckDB's CTAS after a first one; PostgreSQL's COPY statement, timed after connecting anyway)."""
    warm, _ = figures(res.get(("timed", dest, case, "loadbay_warm"), []))
    if warm is None:
        return []
    if case in FRAME_CASES:
        against = {"loadbay's warm Arrow table": figures(res.get(("timed", dest, "arrow", "loadbay_warm"), []))[0]}
    elif dest == "duckdb":
        against = {"the warm CTAS": figures(res.get(("timed", dest, case, "baseline_warm"), []))[0],
                   "the warm CTAS with loadbay's two columns": figures(res.get(("timed", dest, case, "baseline_warm_ids"), []))[0]}
    else:
        against = {"COPY": base_s}
    ratios = [f"{warm / s:.2f}× of {name} ({s:.2f} s)" for name, s in against.items() if s]
    return [f"warm (a 1,000-row load before the clock, on both sides): loadbay {warm:.2f} s, " + ", ".join(ratios)]


def report(bench: Bench, rows: int, elapsed: float) -> bool:
    """Prints the markdown tables and the notes; True if any run failed or any table was wrong."""
    res = bench.results
    print(f"\nloadbay vs the databases' own loaders: {rows:,} rows × 10 columns, median of {bench.rounds} "
          "round(s); " + ", ".join(f"{k} {v}" for k, v in bench.versions.items()) + "\n")
    print("| case | baseline | loadbay s | baseline s | ratio | target | dlt s | peak MiB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    notes: list[str] = []
    for dest in bench.destinations:
        for case in bench.cases:
            lb = res[("timed", dest, case, "loadbay")]
            base_key = ("timed", dest, "arrow", "loadbay") if case in FRAME_CASES else ("timed", dest, case, "baseline")
            base = res[base_key]
            lb_s, lb_failed = figures(lb)
            base_s, base_failed = figures(base)
            dlt_s, dlt_failed = figures(res[("timed", dest, case, "dlt")]) if case == "arrow" and bench.with_dlt \
                else (None, False)
            ratio = lb_s / base_s if lb_s is not None and base_s else None
            target = TARGETS[case]
            verdict = "" if ratio is None else (" ✓" if ratio <= target else " ✗")
            peak = median([m.peak_mib for m in lb if m.peak_mib is not None and m.error is None])
            label = f"{LABELS[case]} → {'DuckDB' if dest == 'duckdb' else 'PostgreSQL'}"
            baseline = "loadbay, Arrow table" if case in FRAME_CASES else BASELINES[(dest, case)]
            lb_text = "failed" if lb_failed and lb_s is None else fmt(lb_s) + (" (some failed)" if lb_failed else "")
            dlt_text = "failed" if dlt_failed and dlt_s is None else fmt(dlt_s)
            ratio_text = "–" if ratio is None else f"{ratio:.2f}×{verdict}"
            base_text = fmt(base_s) + (" (some failed)" if base_failed and base_s is not None else "")
            print(f"| {label} | {baseline} | {lb_text} | {base_text if base_s is not None or not base_failed else 'failed'} | "
                  f"{ratio_text} | ≤{target:g}× | {dlt_text} | {fmt(peak, '.0f')} |")
            per_round = [f"{a.seconds / b.seconds:.2f}×" for a, b in zip(lb, base)
                         if a.seconds and b.seconds and a.error is None and b.error is None]
            extra = []
            if per_round:
                extra.append("ratio per round " + " ".join(per_round))
            inputs = [m.input_mib for m in lb if m.input_mib is not None]
            if inputs:
                extra.append(f"RSS before run() (imports and input): {median(inputs):.0f} MiB")
            split = {step: median([m.timings.get(step, 0.0) for m in lb if m.error is None and m.timings])
                     for step in ("normalize", "load")}
            if all(v is not None for v in split.values()):
                extra.append(f"loadbay normalize {split['normalize']:.2f} s + load {split['load']:.2f} s")
            with_ids, _ = figures(res.get(("timed", dest, case, "baseline_ids"), []))
            if with_ids is not None and base_s:
                made = "before the clock" if case == "arrow" else "by DuckDB in the statement"
                extra.append(f"the same baseline with loadbay's `_lb_load_id` and `_lb_id` columns added ({made}) "
                             f"{with_ids:.2f} s ({with_ids / base_s:.2f}× of the plain one; loadbay "
                             + (f"{lb_s / with_ids:.2f}× of it)" if lb_s else "–)"))
            exact, _ = figures(res.get(("timed", dest, case, "baseline_exact"), []))
            if exact is not None and base_s:
                extra.append(f"DuckDB typing every row as loadbay does (`read_json(..., sample_size = -1)`; the default "
                             f"types the first 20,480 rows: a later new key or text in a number column fails the "
                             f"statement, a later 1.5 in a BIGINT column loads as 2) {exact:.2f} s "
                             f"({exact / base_s:.2f}× of the default; loadbay "
                             + (f"{lb_s / exact:.2f}× of it)" if lb_s else "–)"))
            extra.extend(warm_notes(res, dest, case, base_s))
            inner = [m.inner_seconds for m in base if m.error is None and m.inner_seconds is not None]
            if case in FILE_CASES and inner:
                extra.append(f"baseline statement alone {median(inner):.2f} s")
            base_peaks = [m.peak_mib for m in base if m.error is None and m.peak_mib is not None]
            if base_peaks and case not in FRAME_CASES:
                extra.append(f"baseline process peak {median(base_peaks):.0f} MiB")
            if extra:
                notes.append(f"- {label}: " + "; ".join(extra))
    print("\nNotes (medians):")
    print("\n".join(notes))
    print("- seconds: the call (`run()`, the statement) for in-memory inputs; the whole process for files, "
          "on both sides. peak: max RSS of loadbay's process (its input included).")

    memory = sorted({k for k in res if k[0] == "memory" and k[4] == "loadbay"}, key=lambda k: (k[2], k[3], k[1]))
    if memory:
        print("\n| peak memory | rows | loadbay peak MiB | RSS before run() | loadbay s | dlt peak MiB |")
        print("|---|---:|---:|---:|---:|---:|")
        for key in memory:
            _, n, dest, case, _ = key
            m = res[key][0]
            dlt = res.get(("memory", n, dest, case, "dlt"))
            dlt_peak = fmt(dlt[0].peak_mib, ".0f") if dlt and dlt[0].error is None else ("failed" if dlt else "–")
            label = f"{LABELS[case]} → {'DuckDB' if dest == 'duckdb' else 'PostgreSQL'}"
            peak = "failed" if m.error else fmt(m.peak_mib, ".0f")
            print(f"| {label} | {n:,} | {peak} | {fmt(m.input_mib, '.0f')} | {fmt(m.seconds)} | {dlt_peak} |")

    failures = [(k, m.error) for k, ms in res.items() for m in ms if m.error]
    if failures:
        print("\nFailures (the first of each case):")
        seen = set()
        for key, error in failures:
            if key not in seen:
                seen.add(key)
                print(f"- {' '.join(map(str, key))}: {error}")
    print(f"\nwhole script: {elapsed:.0f} s")
    return bool(failures)
