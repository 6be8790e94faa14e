"""SQLite's load worker (``destinations/sqlalchemy/sqlite_worker.py``): a process of its own that loads Arrow IPC
files beside normalizing. What it loads must be what this process loads; its errors must read the same; a worker or
a parent killed at any moment must leave nothing half-committed and no process behind. Real SQLite files, real
processes; the conformance suite and the crash test run on the worker too (``sqlite_load_worker = "always"`` in
tests/crash; every conformance case passed so before it was turned to "auto").
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pytest

import loadbay
from loadbay.common.exceptions import ConfigurationError, DestinationTransientError
from loadbay.destinations.sqlalchemy.sqlite_worker import MIN_ROWS, SqliteLoadWorker, WorkerEnded, WorkerError
from loadbay.destinations.testing.conformance.helpers import load_sample, normalize_only, query, run_ok

REPO = Path(__file__).resolve().parents[2]
WORKER_LOGGER = "loadbay.destinations.sqlalchemy.sqlite_worker"


def lite(tmp_path: Path, mode: str, name: str = "w", **settings: Any) -> loadbay.Pipeline:
    destination = loadbay.destination("sqlalchemy", credentials=f"sqlite:///{(tmp_path / f'{name}.db').as_posix()}",
                                      sqlite_load_worker=mode)
    return loadbay.pipeline(name, destination=destination, dataset_name="d", pipelines_dir=tmp_path / f"{name}_pipes",
                            **settings)


def flat_rows(n: int) -> list[dict[str, Any]]:
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return [{"id": i, "amount": i / 7, "ok": i % 3 == 0, "at": base + timedelta(microseconds=i * 1_000_003),
             "name": None if i % 5 == 0 else f"n{i} ü 🚀 'q' \\", "kind": ["a", "b", "c"][i % 3]} for i in range(n)]


def data_tables(p: loadbay.Pipeline) -> dict[str, list[tuple[Any, ...]]]:
    """Every data table's rows without the ids of the load (they differ between runs), sorted."""
    out = {}
    for table in p.schema.data_tables():
        names = [c for c in table.columns if c not in ("_lb_load_id", "_lb_id", "_lb_parent_id", "_lb_root_id")]
        cols = ", ".join(f'"{c}"' for c in names)
        out[table.name] = sorted(query(p, f'SELECT {cols} FROM "{table.name}"'), key=repr)
    return out


@pytest.mark.parametrize("data", ["github_events", "flat"])
def test_the_worker_loads_exactly_what_this_process_loads(tmp_path, data):
    rows = load_sample("github_events.json") if data == "github_events" else flat_rows(12_000)
    kwargs = {"write_disposition": "merge", "primary_key": "id"} if data == "github_events" else {}
    here, there = lite(tmp_path, "never", "here"), lite(tmp_path, "always", "there")
    for p in (here, there):
        run_ok(p, rows, table_name="t", **kwargs)
        run_ok(p, rows[:40], table_name="t", **kwargs)  # a second package: merges (or appends) again
    got_here, got_there = data_tables(here), data_tables(there)
    assert got_there == got_here
    assert len(got_here["t"]) == (len({r["id"] for r in rows}) if kwargs else len(rows) + 40)
    if data == "github_events":
        assert len(got_here) == 7 and len(got_here["t__payload__commits"]) > 0


def test_auto_starts_a_worker_only_for_large_files_loaded_while_normalizing(tmp_path, caplog):
    """A table appended past 20,000 rows starts the worker ahead of its first file, and its files load there.
    Fewer rows start none, and so does a merge's table (its files load after normalizing); without loading while
    normalizing there is none."""
    caplog.set_level(logging.DEBUG, logger=WORKER_LOGGER)
    merge = {"write_disposition": "merge", "primary_key": "id"}
    cases = [("large", 2 * MIN_ROWS + 10, {}, {}, "used"), ("small", 10_000, {}, {}, None),
             ("medium", 30_000, {}, {}, "used"), ("merged", 30_000, {}, merge, None),
             ("after", 2 * MIN_ROWS + 10, {"load_while_normalizing": False}, {}, None)]
    for name, n, settings, hints, expected in cases:
        caplog.clear()
        p = lite(tmp_path, "auto", name, **settings)
        run_ok(p, flat_rows(n), table_name="t", **hints)
        said = [r.getMessage() for r in caplog.records if r.name == WORKER_LOGGER]
        started = any("worker started" in m for m in said)
        used = any("closed after" in m and "closed after 0 jobs" not in m for m in said)
        unused = any("ended unused" in m for m in said)
        assert started is (expected is not None), (name, said)
        assert used is (expected == "used") and unused is (expected == "ended unused"), (name, said)
        assert query(p, "SELECT count(*), count(DISTINCT id) FROM t") == [(n, n)], name


def _rewrite_ipc(path: Path, change: Any) -> None:
    with pa.OSFile(str(path)) as source:  # read into memory: the file is written over below
        table = pa.ipc.open_file(source).read_all()
    table = change(table)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=5000)


def _set(table: pa.Table, name: str, row: int, value: Any) -> pa.Table:
    values = table.column(name).to_pylist()
    values[row] = value
    index = table.schema.get_field_index(name)
    return table.set_column(index, name, pa.array(values, table.schema.field(name).type))


@pytest.mark.parametrize(("column", "value", "words"), [("amount", float("nan"), "nan"),
                                                         ("doc", "{not json", "is not JSON")])
def test_a_value_the_worker_refuses_fails_the_file_naming_column_and_row_and_loads_nothing(tmp_path, column, value,
                                                                                           words):
    p = lite(tmp_path, "always")
    rows = [{**r, "doc": {"i": r["id"]}} for r in flat_rows(12_000)]
    package = normalize_only(p, rows, "t", columns={"doc": {"data_type": "json"}})
    [job] = [j for j in package.jobs("new_jobs") if j.table_name == "t"]
    assert job.file_format == "arrow"
    _rewrite_ipc(job.path, lambda t: _set(t, column, 11_000, value))
    info = p.run()
    [failed] = [j for pkg in info.load_packages for j in pkg.failed_jobs]
    assert f"table 't' column '{column}', row 11001" in failed.error and words in failed.error, failed.error
    assert job.path.name in failed.error
    assert query(p, "SELECT count(*) FROM t") == [(0,)]  # the file's transaction rolled back whole
    assert query(p, "SELECT count(*) FROM _lb_jobs") == [(0,)]


@pytest.mark.parametrize(("change", "words"), [
    (lambda t: t.append_column("ghost", pa.array(["boo"] * t.num_rows)), ": the file has columns ['ghost'] the table has not"),
    (lambda t: t.set_column(t.schema.get_field_index("id"), "id", t.column("id").cast(pa.string())),
     " column 'id': holds string values, which are not bigint")])
def test_a_file_whose_columns_do_not_fit_the_table_fails_in_the_worker_naming_them(tmp_path, change, words):
    p = lite(tmp_path, "always")
    package = normalize_only(p, flat_rows(100), "t")
    [job] = package.jobs("new_jobs")
    _rewrite_ipc(job.path, change)
    info = p.run()
    [failed] = [j for pkg in info.load_packages for j in pkg.failed_jobs]
    assert f"file {job.path.name}: table 't'{words}" in failed.error, failed.error
    assert query(p, "SELECT count(*) FROM t") == [(0,)]


# -- a worker killed, a parent killed ----------------------------------------------------------------------

def _database(tmp_path: Path) -> tuple[str, Path]:
    database = str(tmp_path / "main.db")
    conn = sqlite3.connect(database)
    conn.executescript('CREATE TABLE t (id BIGINT, name TEXT); CREATE TABLE jobs (job_id TEXT, at TEXT);')
    conn.close()
    path = tmp_path / "t.arrow"
    table = pa.table({"id": pa.array(range(1000), pa.int64()), "name": [f"n{i}" for i in range(1000)]})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return database, path


def _request(database: str, path: Path, job_id: str) -> dict[str, Any]:
    return {"database": database, "attach": [], "busy_timeout_ms": 5000, "file": str(path),
            "target": "t", "table_columns": [{"name": "id", "data_type": "bigint"}, {"name": "name", "data_type": "text"}],
            "done": ["INSERT INTO jobs (job_id, at) VALUES (?, ?)", [job_id, datetime.now(timezone.utc)]]}


def _counts(database: str) -> tuple[int, int]:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("SELECT count(*) FROM t").fetchone()[0], conn.execute("SELECT count(*) FROM jobs").fetchone()[0]
    finally:
        conn.close()


def test_a_worker_killed_before_its_commit_leaves_nothing_and_the_next_job_starts_another(tmp_path, monkeypatch):
    database, path = _database(tmp_path)
    mark = uuid.uuid4().hex
    monkeypatch.setenv("LOADBAY_TEST_MARK", mark)  # the workers inherit it: how the test below finds its worker
    worker = SqliteLoadWorker()
    try:
        def kill_it() -> None:
            assert worker._proc is not None
            os.kill(worker._proc.pid, signal.SIGKILL)
            worker._proc.wait()

        with pytest.raises(WorkerEnded, match="ended before committing anything") as ended:
            worker.load(_request(database, path, "a"), before_commit=kill_it)
        assert isinstance(ended.value, DestinationTransientError) and not ended.value.may_have_committed
        assert not worker.running
        assert _counts(database) == (0, 0)  # its rows and done-record were never committed
        worker.load(_request(database, path, "b"))  # a new worker
        assert worker.running and _counts(database) == (1000, 1)
        assert worker._proc is not None
        pid = worker._proc.pid
        assert pid in _processes_marked(mark)  # (other processes started meanwhile may carry the mark too)
        with pytest.raises(WorkerError) as raised:  # SQLite's own error comes back with its class
            worker.load({**_request(database, path, "c"), "target": "missing"})
        assert raised.value.error["type"] == "OperationalError" and "no such table" in raised.value.error["message"]
        assert isinstance(raised.value.sqlite_exception(), sqlite3.OperationalError)
        assert _counts(database) == (1000, 1)
    finally:
        worker.close()
    assert not worker.running and pid not in _processes_marked(mark) and not Path(f"/proc/{pid}").exists()


@pytest.mark.parametrize("how", ["interpreter_fails", "no_interpreter"])
def test_a_worker_that_cannot_start_leaves_the_load_to_this_process(tmp_path, monkeypatch, caplog, how):
    if how == "interpreter_fails":  # the worker's interpreter cannot start; this one runs on
        monkeypatch.setenv("PYTHONHOME", str(tmp_path / "nowhere"))
    else:  # an embedded interpreter: sys.executable is no Python at all
        monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    p = lite(tmp_path, "always")
    run_ok(p, flat_rows(3000), table_name="t")
    assert query(p, "SELECT count(*), count(DISTINCT id) FROM t") == [(3000, 3000)]
    warned = [r.getMessage() for r in caplog.records if "bind their rows in this process" in r.getMessage()]
    assert len(warned) == 1 and "SQLite load worker" in warned[0], warned


def test_a_worker_interrupted_mid_job_is_ended_and_nothing_of_the_job_commits(tmp_path):
    database, path = _database(tmp_path)
    worker = SqliteLoadWorker()
    try:
        def interrupted() -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            worker.load(_request(database, path, "a"), before_commit=interrupted)
        assert not worker.running and _counts(database) == (0, 0)
        worker.load(_request(database, path, "b"))  # a new worker, not the one with an answer on its way
        assert _counts(database) == (1000, 1)
    finally:
        worker.close()


def test_a_worker_locks_only_the_dataset_file_it_writes(tmp_path):
    """Two pipelines loading other datasets of the same main file: one worker holds its transaction open while the
    other's loads and commits (each BEGIN is deferred, as the run's own connection's: an immediate one would lock
    the main file and every attached one, and the second would wait for the first's whole file)."""
    database, path = _database(tmp_path)
    for name in ("a", "b"):
        conn = sqlite3.connect(tmp_path / f"{name}.db")
        conn.executescript("CREATE TABLE t (id BIGINT, name TEXT); CREATE TABLE jobs (job_id TEXT, at TEXT);")
        conn.close()

    def request(name: str) -> dict[str, Any]:
        return {**_request(database, path, name), "attach": [[name, str(tmp_path / f"{name}.db")]],
                "busy_timeout_ms": 200, "target": f"{name}.t",
                "done": [f"INSERT INTO {name}.jobs (job_id, at) VALUES (?, ?)", [name, "now"]]}

    first, second = SqliteLoadWorker(), SqliteLoadWorker()
    try:
        first.load(request("a"), before_commit=lambda: second.load(request("b")))
    finally:
        first.close()
        second.close()
    conn = sqlite3.connect(database)
    for name in ("a", "b"):
        conn.execute(f"ATTACH DATABASE ? AS {name}", (str(tmp_path / f"{name}.db"),))
        assert conn.execute(f"SELECT count(*) FROM {name}.t").fetchone() == (1000,)
    conn.close()


def _processes_marked(mark: str) -> list[int]:
    """Processes whose environment holds ``LOADBAY_TEST_MARK=<mark>``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"LOADBAY_TEST_MARK={mark}".encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds the worker by its environment in /proc")
def test_a_run_killed_while_its_worker_holds_the_rows_uncommitted_leaves_no_rows_and_no_worker(tmp_path):
    """``job.loaded`` is where the worker has written a file's rows and done-record and waits to be told to commit:
    the run is killed there (SIGKILL), the worker must roll back and end, and the next run loads every row once."""
    mark = uuid.uuid4().hex
    script = f"""
import loadbay, sys
sys.path.insert(0, {str(REPO)!r})
from tests.integration.test_sqlite_worker import lite, flat_rows
from pathlib import Path
p = lite(Path({str(tmp_path)!r}), "always", load_while_normalizing=False)  # the package is committed first
p.run(flat_rows(3000), table_name="t")
"""
    env = {**os.environ, "LOADBAY_CRASH_AT": "job.loaded", "LOADBAY_TEST_MARK": mark}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    deadline = time.monotonic() + 10
    while _processes_marked(mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_marked(mark) == []  # the worker saw its parent go and ended
    p = lite(tmp_path, "always")
    assert query(p, "SELECT count(*) FROM t") == [(0,)]  # rolled back: nothing of the killed run's file
    run_ok(p)  # the pending package
    assert query(p, "SELECT count(*), count(DISTINCT id) FROM t") == [(3000, 3000)]
    assert p.pending_packages() == []


def test_an_unknown_mode_is_refused_naming_the_setting(tmp_path):
    with pytest.raises(ConfigurationError, match="sqlite_load_worker must be one of .'auto', 'always', 'never'.") as raised:
        run_ok(lite(tmp_path, "sometimes"), [{"a": 1}], table_name="t")
    assert "'sometimes'" in str(raised.value)


def test_a_worker_started_ahead_that_gets_no_job_is_ended_at_once(caplog):
    caplog.set_level(logging.DEBUG, logger=WORKER_LOGGER)
    worker = SqliteLoadWorker()
    worker.start()
    assert worker._proc is not None
    pid = worker._proc.pid
    worker.close()
    assert not worker.running and not Path(f"/proc/{pid}").exists()
    assert any("ended unused" in r.getMessage() for r in caplog.records)
