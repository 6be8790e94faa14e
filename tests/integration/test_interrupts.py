"""Signals, locks and damaged packages, through the real CLI and real processes on DuckDB files.

A signal lands at an exact moment by the crash points of ``loadbay.faults``: with
``LOADBAY_CRASH_SIGNAL`` the process sends itself that signal (instead of SIGKILL) there.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson
import pytest

import loadbay
from tests.conftest import REPO

ROWS = 6_000
FILE_ROWS = 1_000  # six files: a signal after the second job leaves four pending


def _events(path: Path, start: int = 0, count: int = ROWS) -> Path:
    path.write_bytes(b"".join(orjson.dumps({"id": i, "name": f"e{i}", "tags": [i, -i]}) + b"\n"
                              for i in range(start, start + count)))
    return path


def _cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadbay.cli", *args, "--pipelines-dir", str(cwd / "pipes"),
                           "--dataset", "ds", "--credentials", str(cwd / "lake.duckdb")],
                          capture_output=True, text=True, check=False, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO), "PIPELINE__FILE_MAX_ITEMS": str(FILE_ROWS),
                               **(env or {})})


def _count(cwd: Path, table: str = "events") -> int:
    with duckdb.connect(str(cwd / "lake.duckdb"), read_only=True) as con:
        return int(con.execute(f'SELECT count(*) FROM ds."{table}"').fetchone()[0])


def _load(cwd: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _cli(cwd, "load", "events.jsonl", "--pipeline", "gh", "--table", "events", *extra, env=env)


def _hold(path: Path, *, seconds: float, how: str = "duckdb") -> subprocess.Popen[str]:
    """Another process holding ``path`` for ``seconds``: a DuckDB connection to it, or a flock on
    it; returns once it holds it."""
    take = ("import duckdb; con = duckdb.connect(sys.argv[1])" if how == "duckdb" else
            "import fcntl; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX)")
    holder = subprocess.Popen([sys.executable, "-c", f"import sys, time; {take}; print('held', flush=True); "
                               f"time.sleep({seconds})", str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("signal_name,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_during_load_stops_after_the_job_in_progress_and_the_next_run_resumes(
        isolated_env: Path, signal_name: str, code: int) -> None:
    _events(isolated_env / "events.jsonl")
    done = _load(isolated_env, env={"LOADBAY_CRASH_AT": "job.committed:2", "LOADBAY_CRASH_SIGNAL": signal_name})
    assert done.returncode == code, done.stderr
    assert f"stopped by {signal_name} at a safe point" in done.stderr
    assert "Traceback" not in done.stderr
    assert "pending" in done.stderr and "loadbay pipeline gh resume" in done.stderr
    assert _count(isolated_env) == 2 * FILE_ROWS  # the job in progress committed, no other started
    resumed = _cli(isolated_env, "pipeline", "gh", "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert _count(isolated_env) == ROWS and _count(isolated_env, "events__tags") == 2 * ROWS
    assert not list((isolated_env / "pipes" / "gh" / "packages").iterdir())


def test_signal_while_normalizing_loads_nothing_and_says_to_send_the_data_again(isolated_env: Path) -> None:
    _events(isolated_env / "events.jsonl")
    first = _load(isolated_env)  # the dataset exists: what the interrupted run left can be counted
    assert first.returncode == 0, first.stderr
    # batches of 2,000 rows: the signal comes after the first of three (the file's JSON reader would otherwise hand
    # all 6,000 rows over as one Arrow batch, and normalizing would be over when the signal is seen)
    done = _load(isolated_env, env={"LOADBAY_CRASH_AT": "normalize.batch", "LOADBAY_CRASH_SIGNAL": "SIGINT",
                                    "PIPELINE__BATCH_SIZE": "2000"})
    assert done.returncode == 130, done.stderr
    assert "none of it was loaded: send it again" in done.stderr
    assert _count(isolated_env) == ROWS
    assert not list((isolated_env / "pipes" / "gh" / "packages").iterdir())
    assert not list((isolated_env / "pipes" / "gh" / "normalizing").iterdir())


def test_atomic_append_interrupted_shows_nothing_until_resumed(isolated_env: Path) -> None:
    _events(isolated_env / "events.jsonl")
    env = {"PIPELINE__ATOMIC_APPENDS": "true"}
    assert _load(isolated_env, env=env).returncode == 0
    done = _load(isolated_env, env={**env, "LOADBAY_CRASH_AT": "job.committed:3", "LOADBAY_CRASH_SIGNAL": "SIGINT"})
    assert done.returncode == 130, done.stderr
    assert _count(isolated_env) == ROWS  # the interrupted package's committed jobs sit in its staging tables
    assert _cli(isolated_env, "pipeline", "gh", "resume", env=env).returncode == 0
    assert _count(isolated_env) == 2 * ROWS and _count(isolated_env, "events__tags") == 4 * ROWS


def test_second_writer_waits_for_a_duckdb_file_held_by_another_process(isolated_env: Path) -> None:
    """DuckDB allows one writing process per file: the second waits and retries instead of failing."""
    _events(isolated_env / "events.jsonl")
    holder = _hold(isolated_env / "lake.duckdb", seconds=3)
    done = _load(isolated_env)
    holder.wait()
    assert done.returncode == 0, done.stderr
    assert "locked by another process" in done.stderr
    assert _count(isolated_env) == ROWS


def test_ctrl_c_while_waiting_for_a_locked_file_stops_at_once(isolated_env: Path) -> None:
    _events(isolated_env / "events.jsonl")
    holder = _hold(isolated_env / "lake.duckdb", seconds=60)
    try:
        run = subprocess.Popen(
            [sys.executable, "-m", "loadbay.cli", "load", "events.jsonl", "--pipeline", "gh", "--table", "events",
             "--pipelines-dir", str(isolated_env / "pipes"), "--dataset", "ds",
             "--credentials", str(isolated_env / "lake.duckdb")],
            stderr=subprocess.PIPE, text=True, cwd=isolated_env, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert run.stderr is not None
        for line in run.stderr:  # wait until it waits
            if "locked by another process" in line:
                break
        run.send_signal(signal.SIGINT)
        rest = run.stderr.read()
        run.wait(timeout=30)
        assert holder.poll() is None  # the holder still has the file: the run did not wait it out
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode == 130, rest
    assert "stopped by SIGINT" in rest and "send it again" in rest


def test_a_writer_that_waits_too_long_gives_up_naming_the_lock(isolated_env: Path) -> None:
    _events(isolated_env / "events.jsonl")
    holder = _hold(isolated_env / "lake.duckdb", seconds=30)
    try:
        done = _load(isolated_env, env={"PIPELINE__LOCK_WAIT_SECONDS": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2
    assert "stayed locked by another process" in done.stderr and "lock_wait_seconds" in done.stderr


def test_a_child_forked_while_the_duckdb_lock_is_open_never_locks_this_process_out(isolated_env: Path) -> None:
    """A thread that starts a subprocess while another lets the DuckDB lock go and takes it again (the
    crash harness beside the tests did, once in a few thousand connections) must not make this process
    refuse its own file: the forked child inherits the lock file's descriptor, not the lock."""
    from loadbay.destinations.duckdb import file_lock

    database = str(isolated_env / "lake.duckdb")
    file_lock.acquire(database)
    child = os.fork()
    if child == 0:  # the child of a fork that has not yet exec'd: holds every descriptor, does nothing
        time.sleep(30)
        os._exit(0)
    try:
        file_lock.release(database)
        file_lock.acquire(database)  # the child still has the old descriptor open
        other = subprocess.run([sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'a+'); "
                                "fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)", file_lock.lock_path(database) or ""],
                               capture_output=True, text=True, check=False)
        assert other.returncode != 0 and ("temporarily unavailable" in other.stderr  # still exclusive
                                          or "Permission denied" in other.stderr), other.stderr
        file_lock.release(database)
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    p = loadbay.pipeline("gh", destination=loadbay.destination("duckdb", credentials=database),
                         dataset_name="ds", pipelines_dir=isolated_env / "pipes")
    p.run(_events(isolated_env / "e.jsonl", count=10), table_name="events")
    assert _count(isolated_env) == 10


def test_two_runs_of_one_pipeline_take_turns(isolated_env: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A second process running the same pipeline (an overlapping cron job) waits for the first."""
    p = loadbay.pipeline("gh", destination=loadbay.destination("duckdb", credentials=str(isolated_env / "l.duckdb")),
                         dataset_name="ds", pipelines_dir=isolated_env / "pipes")
    lock_file = p.pipeline_dir / ".lock"
    holder = _hold(lock_file, seconds=2, how="flock")
    with caplog.at_level("WARNING"):
        p.run([{"id": 1}], table_name="t")
    assert holder.poll() is not None  # the run went on only once the other process let go
    assert "another process is running this pipeline" in caplog.text
    with open(lock_file, "a+") as f:  # and the run released it
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_damaged_package_names_itself_and_the_command_that_drops_it(isolated_env: Path) -> None:
    _events(isolated_env / "events.jsonl", count=10)
    done = _load(isolated_env, env={"LOADBAY_CRASH_AT": "normalize.committed"})
    assert done.returncode == -9
    [package] = list((isolated_env / "pipes" / "gh" / "packages").iterdir())
    (package / "schema.json").write_text('{"name": "gh", "tab')  # a disk fault, say
    again = _load(isolated_env)
    assert again.returncode == 2
    assert f"package {package.name}" in again.stderr and "schema.json cannot be read" in again.stderr
    assert "loadbay pipeline gh drop-pending" in again.stderr
    dropped = _cli(isolated_env, "pipeline", "gh", "drop-pending")
    assert dropped.returncode == 0 and package.name in dropped.stdout
    assert _load(isolated_env).returncode == 0 and _count(isolated_env) == 10


def test_a_failed_job_is_listed_with_its_error_and_retried_after_the_fix(isolated_env: Path) -> None:
    """A package with a failed job stays on disk; the CLI says which file failed, why, and what to run."""
    _events(isolated_env / "events.jsonl", count=10)
    # jsonl load files (a file by path is Arrow data, written as parquet unless the run names a format)
    assert _load(isolated_env, "--loader-file-format", "jsonl",
                 env={"LOADBAY_CRASH_AT": "normalize.committed"}).returncode == -9
    [package] = list((isolated_env / "pipes" / "gh" / "packages").iterdir())
    [job] = list((package / "new_jobs").glob("events.*"))
    good = job.read_bytes()
    job.write_bytes(good.replace(b'"id":3,', b'"id":"three",'))
    failed = _cli(isolated_env, "pipeline", "gh", "resume")
    assert failed.returncode == 1
    assert "FAILED" in failed.stdout and "loadbay pipeline gh retry-failed" in failed.stdout
    listed = _cli(isolated_env, "pipeline", "gh", "pending")
    assert f"FAILED {job.name}" in listed.stdout and "three" in listed.stdout, listed.stdout
    [failed_file] = list((package / "failed_jobs").glob("events.*[!n]"))
    failed_file.write_bytes(good)  # the fix
    assert _cli(isolated_env, "pipeline", "gh", "retry-failed").returncode == 0
    assert _cli(isolated_env, "pipeline", "gh", "resume").returncode == 0
    assert _count(isolated_env) == 10 and _count(isolated_env, "events__tags") == 20


def test_interrupt_of_a_library_call_raises_with_what_is_pending(isolated_env: Path) -> None:
    code = (
        "import loadbay, sys\n"
        "from loadbay.common.exceptions import PipelineInterrupted\n"
        "p = loadbay.pipeline('gh', destination=loadbay.destination('duckdb', credentials=sys.argv[1]),\n"
        "                     dataset_name='ds', pipelines_dir=sys.argv[2], file_max_items=500)\n"
        "try:\n"
        "    p.run(({'id': i} for i in range(3000)), table_name='t')\n"
        "except PipelineInterrupted as exc:\n"
        "    print('pending', p.pending_packages() == [exc.load_info.load_packages[-1].load_id], exc.signal_number)\n")
    done = subprocess.run([sys.executable, "-c", code, str(isolated_env / "l.duckdb"), str(isolated_env / "pipes")],
                          capture_output=True, text=True, cwd=isolated_env, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO), "LOADBAY_CRASH_AT": "job.committed:1",
                               "LOADBAY_CRASH_SIGNAL": "SIGINT"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pending", "True", "2"]
