"""MySQL/MariaDB and SQLite: loadbay from an iterator of dicts vs each database's own fastest load (issue 12).

1,000,000 flat rows (``postgres_data.flat_rows``: ints, a float, a bool, a timezone-aware timestamp, nullable
text), each load in a process of its own, side by side in every round:

- MariaDB: the baseline is ``LOAD DATA LOCAL INFILE`` (pymysql, ``local_infile``) of the same rows as a csv
  written before the round (with the ``_lb_*`` columns loadbay adds) into a table made beforehand with the
  types loadbay makes; only the statement and its COMMIT are timed. Beside it: loadbay's native ``mysql``
  destination, the ``sqlalchemy`` destination on ``mysql+pymysql://`` (the MySQL family, LOAD DATA LOCAL
  through the raw pymysql connection), and dlt's ``sqlalchemy`` destination on the same URL.
- SQLite: the baseline is plain ``sqlite3`` ``executemany`` of the same rows as tuples prepared before the
  clock starts (the values loadbay stores: ISO text timestamps, 0/1 bools), into a table made beforehand, in
  one transaction; beside it loadbay's ``sqlalchemy`` destination on ``sqlite:///`` and dlt's.

loadbay and dlt are timed from ``run()`` on an unconsumed generator to its return (their time starts at the
first dict). Every loaded table is checked after every run against figures computed from the generator
(count, sums of ids, cents, bools, seconds past the base time, name lengths, distinct ids); a mismatch or a
failed run exits non-zero after the table is printed. Peak RSS is each child process's own (``VmHWM``), beside the peak SQLite's load worker reports (its own
``VmHWM``, logged when it is closed).
Medians of ``--rounds`` rounds, with each round's ratio.

Usage: ``python bench/mysql_sqlite.py [--rows 1000000] [--rounds 3] [--only mysql|sqlite] [--skip-dlt]
[--dlt-python PATH] [--profile]``; the server comes from ``LOADBAY_BENCH_MYSQL`` (default
``mysql://root@127.0.0.1:3306/test``; its ``local_infile`` must be ON). dlt 1.31 comes from ``pip install -e
'.[bench]'`` (or any interpreter that has it: ``--dlt-python``). ``--profile`` runs loadbay's children under
cProfile and prints the top 15 functions by tottime (main thread only; its timings include the overhead).
A smoke run: ``--rows 20000 --rounds 1``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from postgres_data import BASE_EPOCH, BASELINE_LOAD_ID, Ids, flat_rows, flat_sums  # noqa: E402

DEFAULT_URL = "mysql://root@127.0.0.1:3306/test"
TABLE = "events"
DATABASES = {who: f"lb_bench_my_{who}" for who in ("baseline", "mysql", "sqlalchemy", "dlt")}
MYSQL_COLUMNS = [("_lb_load_id", "LONGTEXT NOT NULL"), ("_lb_id", "LONGTEXT NOT NULL"), ("id", "BIGINT"),
                 ("user_id", "BIGINT"), ("amount", "DOUBLE"), ("is_ok", "BOOL"), ("created_at", "DATETIME(6)"),
                 ("name", "LONGTEXT"), ("kind", "LONGTEXT")]
"""What loadbay's mysql destination makes of the rows (InnoDB, utf8mb4, binary NO PAD collation)."""
SQLITE_COLUMNS = [("_lb_load_id", "TEXT NOT NULL"), ("_lb_id", "TEXT NOT NULL"), ("id", "BIGINT"),
                  ("user_id", "BIGINT"), ("amount", "FLOAT"), ("is_ok", "BOOLEAN"), ("created_at", "DATETIME"),
                  ("name", "TEXT"), ("kind", "TEXT")]
"""What loadbay's sqlalchemy destination makes of the rows on SQLite."""
CHECK_NAMES = ("count", "sum(id)", "sum(user_id)", "sum(cents)", "count(is_ok)", "sum(seconds)", "count(name)",
               "sum(length(name))", "count(purchase)", "count(distinct id)")
MYSQL_CHECK = ("SELECT count(*), sum(id), sum(user_id), sum(round(amount * 100)), sum(is_ok), "
               "sum(timestampdiff(SECOND, '2024-01-01 00:00:00', created_at)), count(name), sum(char_length(name)), "
               "sum(kind = 'purchase'), count(DISTINCT id) FROM `{db}`.`events`")
SQLITE_CHECK = ("SELECT count(*), sum(id), sum(user_id), sum(round(amount * 100)), sum(is_ok), "
                f"sum(CAST(strftime('%s', created_at) AS INTEGER) - {BASE_EPOCH}), count(name), sum(length(name)), "
                "sum(kind = 'purchase'), count(DISTINCT id) FROM {table}")


def expected_check(n: int) -> tuple[int, ...]:
    s = flat_sums(flat_rows(n))
    return (s[0], s[1], s[2], s[3], s[4], s[5] - s[0] * BASE_EPOCH, s[6], s[7], s[8], s[0])


# -- in the child processes: heavy imports stay inside these functions -----------------------------


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pymysql_args(url: str) -> dict[str, Any]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return {"host": parts.hostname, "port": parts.port or 3306, "user": parts.username or "root",
            "password": parts.password or "", "charset": "utf8mb4", "autocommit": True, "local_infile": True}


def child_baseline_mysql(url: str, database: str, csv_path: str) -> dict[str, Any]:
    import pymysql

    conn = pymysql.connect(**pymysql_args(url))
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(f"CREATE DATABASE `{database}`")
        columns = ", ".join(f"`{name}` {kind}" for name, kind in MYSQL_COLUMNS)
        cur.execute(f"CREATE TABLE `{database}`.`{TABLE}` ({columns}) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                    "COLLATE=utf8mb4_nopad_bin")
        started = time.perf_counter()
        cur.execute("BEGIN")
        cur.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE `{database}`.`{TABLE}` CHARACTER SET utf8mb4 "
                    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n'", (csv_path,))
        cur.execute("COMMIT")
        seconds = time.perf_counter() - started
        cur.execute("SHOW WARNINGS")
        warnings = cur.fetchall()
    conn.close()
    if warnings:
        raise SystemExit(f"LOAD DATA warned: {warnings[:3]}")
    return {"seconds": seconds}


def sqlite_row(row: dict[str, Any], ids: Ids) -> tuple[Any, ...]:
    return (BASELINE_LOAD_ID, ids(), row["id"], row["user_id"], row["amount"], row["is_ok"],
            row["created_at"].isoformat(timespec="microseconds"), row["name"], row["kind"])


def child_baseline_sqlite(db: str, rows: str) -> dict[str, Any]:
    import sqlite3

    ids = Ids()
    prepared = [sqlite_row(row, ids) for row in flat_rows(int(rows))]
    con = sqlite3.connect(db, isolation_level=None)
    con.execute(f"CREATE TABLE {TABLE} ({', '.join(f'{name} {kind}' for name, kind in SQLITE_COLUMNS)})")
    insert = f"INSERT INTO {TABLE} VALUES ({', '.join('?' * len(SQLITE_COLUMNS))})"
    started = time.perf_counter()
    con.execute("BEGIN")
    con.executemany(insert, prepared)
    con.execute("COMMIT")
    seconds = time.perf_counter() - started
    con.close()
    return {"seconds": seconds}


def child_loadbay(dest: str, target: str, dataset: str, pipelines_dir: str, rows: str, profile: str) -> dict[str, Any]:
    import loadbay
    from postgres import timed_run  # bench/postgres.py: run() timed, under cProfile if asked

    p = loadbay.pipeline("bench_my_sqlite", destination=loadbay.destination(dest, credentials=target),
                         dataset_name=dataset, pipelines_dir=pipelines_dir)
    import logging

    class WorkerPeak(logging.Handler):  # SQLite's load worker says its peak memory when it is closed
        peak = 0.0

        def emit(self, record: logging.LogRecord) -> None:
            if record.args and "peak memory" in record.msg:
                WorkerPeak.peak = max(WorkerPeak.peak, float(record.args[-1]))  # type: ignore[index]

    worker_log = logging.getLogger("loadbay.destinations.sqlalchemy.sqlite_worker")
    worker_log.setLevel(logging.DEBUG)
    worker_log.addHandler(WorkerPeak())
    reports: list[str] | None = [] if profile == "1" else None
    seconds, info = timed_run(p, flat_rows(int(rows)), reports, table_name=TABLE)
    return {"seconds": seconds, "timings": info.timings, "row_counts": info.row_counts,
            "profile": "\n".join(reports or []), "children_peak_mib": WorkerPeak.peak}


def child_dlt(target: str, dataset: str, pipelines_dir: str, rows: str) -> dict[str, Any]:
    import dlt

    p = dlt.pipeline("bench_my_sqlite_dlt", destination=dlt.destinations.sqlalchemy(target), dataset_name=dataset,
                     pipelines_dir=pipelines_dir)
    started = time.perf_counter()
    info = p.run(flat_rows(int(rows)), table_name=TABLE)
    seconds = time.perf_counter() - started
    info.raise_on_failed_jobs()
    return {"seconds": seconds}


CHILDREN = {"baseline-mysql": child_baseline_mysql, "baseline-sqlite": child_baseline_sqlite,
            "loadbay": child_loadbay, "dlt": child_dlt}


# -- the parent -------------------------------------------------------------------------------------


class Bench:
    def __init__(self, url: str, rows: int, work: Path, dlt_python: str | None, profile: bool) -> None:
        self.url, self.rows, self.work, self.dlt_python, self.profile = url, rows, work, dlt_python, profile
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.failures: list[str] = []
        self.profiles: dict[str, str] = {}
        self.expected = expected_check(rows)
        self._conn: Any = None

    def mysql(self) -> Any:
        if self._conn is None:
            import pymysql

            self._conn = pymysql.connect(**pymysql_args(self.url))
            with self._conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
        return self._conn

    def mysql_execute(self, statement: str) -> list[tuple[Any, ...]]:
        with self.mysql().cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())

    def mysql_reset(self) -> None:
        for database in DATABASES.values():
            for name in (database, f"{database}_staging"):
                self.mysql_execute(f"DROP DATABASE IF EXISTS `{name}`")

    def run_child(self, case: str, cmd: list[str], python: str = sys.executable) -> dict[str, Any] | None:
        out = subprocess.run([python, str(Path(__file__).resolve()), "--child", *cmd], capture_output=True, text=True,
                             env={**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false",
                                  "DLT_DATA_DIR": str(self.work / "dlt_home")})
        if out.returncode != 0:
            lines = [line for line in out.stderr.splitlines() if line.strip()]
            self.failures.append(f"{case}: exit {out.returncode}: {lines[-1] if lines else '(no output)'}")
            print(f"  {case:<28} FAILED: {lines[-1] if lines else ''}", file=sys.stderr, flush=True)
            return None
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        if result.get("profile"):
            self.profiles.setdefault(case, result.pop("profile"))
        self.results.setdefault(case, []).append(result)
        print(f"  {case:<28} {result['seconds']:.2f} s, peak {result['peak_mib']:.0f} MiB", file=sys.stderr, flush=True)
        return result

    def verify(self, case: str, got: Any) -> None:
        values = tuple(int(round(float(v))) if v is not None else None for v in got) if got else None
        if values != self.expected:
            diffs = [f"{n}: got {g} expected {e}" for n, g, e in zip(CHECK_NAMES, values or (), self.expected)
                     if g != e] or [f"got {values}"]
            self.failures.append(f"{case}: checksum mismatch: {', '.join(diffs)}")

    def check_mysql(self, case: str, database: str) -> None:
        try:
            self.verify(case, self.mysql_execute(MYSQL_CHECK.format(db=database))[0])
        except Exception as exc:  # a missing table: reported, not raised
            self.failures.append(f"{case}: checksum query failed: {exc}")

    def check_sqlite(self, case: str, folder: Path) -> None:
        """The table ``events`` in whichever database file of the run holds it (each tool names its own)."""
        import sqlite3

        for path in sorted(folder.glob("*.db")):
            con = sqlite3.connect(path)
            try:
                if con.execute(f"SELECT 1 FROM sqlite_master WHERE name = '{TABLE}'").fetchone():
                    self.verify(case, con.execute(SQLITE_CHECK.format(table=TABLE)).fetchone())
                    return
            finally:
                con.close()
        self.failures.append(f"{case}: no table {TABLE} in {sorted(p.name for p in folder.glob('*.db'))}")

    def fresh(self, name: str) -> Path:
        folder = self.work / "run" / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def round_mysql(self, csv_path: Path) -> None:
        mysql_url = self.url.replace("mysql+pymysql://", "mysql://")
        sa_url = "mysql+pymysql://" + mysql_url.split("://", 1)[1]
        n = str(self.rows)
        profile = "1" if self.profile else "0"
        self.mysql_reset()
        if self.run_child("mysql: LOAD DATA baseline", ["baseline-mysql", self.url, DATABASES["baseline"], str(csv_path)]):
            self.check_mysql("mysql: LOAD DATA baseline", DATABASES["baseline"])
        for case, dest, url, who in (("mysql: loadbay mysql", "mysql", mysql_url, "mysql"),
                                     ("mysql: loadbay sqlalchemy", "sqlalchemy", sa_url, "sqlalchemy")):
            folder = self.fresh(who)
            if self.run_child(case, ["loadbay", dest, url, DATABASES[who], str(folder / "pipelines"), n, profile]):
                self.check_mysql(case, DATABASES[who])
        if self.dlt_python:
            folder = self.fresh("dlt")
            if self.run_child("mysql: dlt sqlalchemy", ["dlt", sa_url, DATABASES["dlt"], str(folder / "pipelines"), n],
                              python=self.dlt_python):
                self.check_mysql("mysql: dlt sqlalchemy", DATABASES["dlt"])
        self.mysql_reset()

    def round_sqlite(self) -> None:
        n = str(self.rows)
        folder = self.fresh("sqlite_baseline")
        if self.run_child("sqlite: executemany baseline", ["baseline-sqlite", str(folder / "baseline.db"), n]):
            self.check_sqlite("sqlite: executemany baseline", folder)
        folder = self.fresh("sqlite_loadbay")
        if self.run_child("sqlite: loadbay sqlalchemy", ["loadbay", "sqlalchemy", f"sqlite:///{folder / 'lb.db'}",
                                                         "bench", str(folder / "pipelines"), n,
                                                         "1" if self.profile else "0"]):
            self.check_sqlite("sqlite: loadbay sqlalchemy", folder)
        if self.dlt_python:
            folder = self.fresh("sqlite_dlt")
            if self.run_child("sqlite: dlt sqlalchemy", ["dlt", f"sqlite:///{folder / 'dlt.db'}", "bench",
                                                         str(folder / "pipelines"), n], python=self.dlt_python):
                self.check_sqlite("sqlite: dlt sqlalchemy", folder)


def write_csv(path: Path, n: int) -> None:
    """The baseline's csv: the rows with loadbay's columns, NULL as MySQL's ``\\N``, UTC wall times."""
    ids = Ids()
    with open(path, "w", newline="", encoding="utf-8") as f:
        write = csv.writer(f, lineterminator="\n").writerow
        for row in flat_rows(n):
            write([BASELINE_LOAD_ID, ids(), row["id"], row["user_id"], row["amount"], int(row["is_ok"]),
                   row["created_at"].strftime("%Y-%m-%d %H:%M:%S.%f"), "\\N" if row["name"] is None else row["name"],
                   row["kind"]])


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def report(bench: Bench, rounds: int, versions: dict[str, str], elapsed: float) -> None:
    res = bench.results
    print(f"\nloadbay vs the databases' own loads: {bench.rows:,} flat rows from an iterator of dicts, median of "
          f"{rounds} round(s); " + ", ".join(f"{k} {v}" for k, v in versions.items()) + "\n")
    print("| target | load | seconds | ratio to baseline | ratio per round | loadbay extract + normalize + load s | peak MiB |")
    print("|---|---|---:|---:|---|---|---:|")
    groups = {"mysql": "mysql: LOAD DATA baseline", "sqlite": "sqlite: executemany baseline"}
    for group, baseline in groups.items():
        base = res.get(baseline, [])
        base_s = median([r["seconds"] for r in base])
        for case, runs in res.items():
            if not case.startswith(group + ":"):
                continue
            seconds = median([r["seconds"] for r in runs])
            ratio = seconds / base_s if seconds is not None and base_s else None
            per_round = " ".join(f"{a['seconds'] / b['seconds']:.2f}×" for a, b in zip(runs, base)) \
                if case != baseline else ""
            split = ""
            if runs and runs[0].get("timings"):
                steps = [median([r["timings"].get(step, 0.0) for r in runs]) for step in ("extract", "normalize", "load")]
                split = " + ".join(f"{step:.2f}" for step in steps)
            peak = median([r["peak_mib"] for r in runs])
            children = median([r.get("children_peak_mib", 0.0) for r in runs]) or 0.0
            target = {"mysql": "MariaDB", "sqlite": "SQLite"}[group]
            what = case.split(": ", 1)[1]
            ratio_text = "–" if case == baseline or ratio is None else f"{ratio:.2f}×"
            peak_text = f"{peak:.0f}" + (f" + {children:.0f}" if children >= 1 else "")
            print(f"| {target} | {what} | {seconds:.2f} | {ratio_text} | {per_round} | {split} | {peak_text} |")
    print("\n- seconds: loadbay and dlt from run() on an unconsumed generator to its return; the baselines their "
          "statement (LOAD DATA + COMMIT of a csv written beforehand; executemany + COMMIT of tuples made "
          "beforehand). peak: the child process's peak RSS (the baseline's includes its prepared tuples); '+ N': the peak of "
          "SQLite's load worker, a process of its own.")
    print(f"- checksums: {'MISMATCH or FAILED' if bench.failures else 'every table matches the generator, every run'}")
    print(f"- whole script: {elapsed:.0f} s")
    for case, text in bench.profiles.items():
        print(f"\n== cProfile, {case}, top 15 by tottime (main thread only) ==\n{text.strip()}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        result = CHILDREN[kind](*rest)
        result["peak_mib"] = peak_mib()
        result.setdefault("children_peak_mib", 0.0)
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every case; medians are reported")
    parser.add_argument("--only", choices=("mysql", "sqlite"), help="one target only")
    parser.add_argument("--skip-dlt", action="store_true", help="no dlt figures")
    parser.add_argument("--dlt-python", default=sys.executable, help="the interpreter that runs dlt (has dlt 1.31)")
    parser.add_argument("--profile", action="store_true", help="cProfile loadbay's runs (first round's shown)")
    args = parser.parse_args()
    if args.rows < 1 or args.rounds < 1:
        parser.error("--rows and --rounds must be positive")
    dlt_python = None
    if not args.skip_dlt:
        probe = subprocess.run([args.dlt_python, "-c", "import dlt; print(dlt.__version__)"], capture_output=True,
                               text=True)
        if probe.returncode == 0:
            dlt_python = args.dlt_python
        else:
            print(f"dlt is not importable by {args.dlt_python} (pip install -e '.[bench]'): no dlt figures",
                  file=sys.stderr)
    started = time.perf_counter()
    url = os.environ.get("LOADBAY_BENCH_MYSQL", DEFAULT_URL)
    from importlib.metadata import version

    versions = {name: version(name) for name in ("pymysql", "sqlalchemy", "duckdb", "pyarrow")}
    if dlt_python:
        versions["dlt"] = subprocess.run([dlt_python, "-c", "import dlt; print(dlt.__version__)"],
                                         capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="lb_bench_my_") as tmp:
        bench = Bench(url, args.rows, Path(tmp), dlt_python, args.profile)
        import sqlite3

        versions["SQLite"] = sqlite3.sqlite_version
        csv_path = Path(tmp) / "flat.csv"
        if args.only != "sqlite":
            versions["server"] = str(bench.mysql_execute("SELECT VERSION()")[0][0])
            write_csv(csv_path, args.rows)
        try:
            for n in range(args.rounds):
                print(f"round {n + 1} of {args.rounds}", file=sys.stderr)
                bench.profile = args.profile and n == 0
                # SQLite first: after MariaDB's group the server still flushes and purges for seconds (3M rows
                # loaded, four databases dropped), which took CPU from the SQLite runs that followed
                if args.only != "mysql":
                    bench.round_sqlite()
                if args.only != "sqlite":
                    bench.round_mysql(csv_path)
        finally:
            if args.only != "sqlite":
                bench.mysql_reset()
        report(bench, args.rounds, versions, time.perf_counter() - started)
    if bench.failures:  # exits non-zero, the failures on stderr
        raise SystemExit("\n".join(f"FAIL {failure}" for failure in bench.failures))


if __name__ == "__main__":
    main()
