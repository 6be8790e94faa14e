"""Progress and timings: bars on a terminal only (a pseudo-terminal here), counters in logging with
``progress="log"``, nothing on a pipe or with ``--quiet``; extract, normalize and load times that add up to the
run and put the time spent in the user's generator under extract."""

from __future__ import annotations

import fcntl
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
import textwrap
import time
from pathlib import Path

import loadbay
import loadbay.progress
from tests.conftest import REPO
from tests.integration.test_cli_inputs import loadbay_command

SCRIPT = textwrap.dedent("""
    import sys, loadbay
    p = loadbay.pipeline("prog", destination=loadbay.destination("duckdb", credentials=sys.argv[1]),
                         pipelines_dir=sys.argv[2], file_max_items=5000)
    p.run(({"id": i, "tags": ["a"]} for i in range(30000)), table_name="events").raise_on_failed_jobs()
    print("done")
""")


def _on_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``args`` with stdout and stderr on a pseudo-terminal; its exit code and everything it wrote."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # a terminal has a size
    proc = subprocess.Popen(args, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL, cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "120"})
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_bars_on_a_terminal_and_nothing_on_a_pipe(isolated_env: Path) -> None:
    script = isolated_env / "load.py"
    script.write_text(SCRIPT)
    code, seen = _on_terminal([sys.executable, str(script), str(isolated_env / "a.duckdb"), str(isolated_env / "pa")],
                              isolated_env)
    assert code == 0 and "done" in seen
    assert "prog normalize" in seen and "60.0k rows" in seen and "events 30,000" in seen  # rows of both tables
    assert "prog load" in seen and "12/12" in seen  # 6 + 6 files, all loaded
    piped = subprocess.run([sys.executable, str(script), str(isolated_env / "b.duckdb"), str(isolated_env / "pb")],
                           capture_output=True, text=True, cwd=isolated_env, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    assert piped.returncode == 0 and piped.stdout == "done\n"
    assert "normalize" not in piped.stderr and "jobs" not in piped.stderr


def test_the_cli_is_quiet_when_asked_even_on_a_terminal(isolated_env: Path) -> None:
    (isolated_env / "e.jsonl").write_text("".join(f'{{"id": {i}}}\n' for i in range(2000)))
    base = [*loadbay_command(), "load", "e.jsonl", "--pipeline", "cli", "--table", "e", "--credentials",
            str(isolated_env / "c.duckdb"), "--pipelines-dir", str(isolated_env / "pc")]
    code, seen = _on_terminal(base, isolated_env)
    assert code == 0 and "cli normalize" in seen
    code, seen = _on_terminal([*base, "--quiet"], isolated_env)
    assert code == 0 and "cli normalize" not in seen and "completed in" in seen


def test_log_mode_writes_the_counters_to_logging(isolated_env: Path, caplog, monkeypatch) -> None:
    monkeypatch.setattr(loadbay.progress, "LOG_EVERY_SECONDS", 0.0)
    p = loadbay.pipeline("logged", destination=loadbay.destination("duckdb", credentials=str(isolated_env / "l.duckdb")),
                         pipelines_dir=isolated_env / "p", file_max_items=5000)
    with caplog.at_level(logging.INFO, logger="loadbay.progress"):
        p.run(({"id": i} for i in range(20000)), table_name="events", progress="log").raise_on_failed_jobs()
    lines = [r.getMessage() for r in caplog.records if r.name == "loadbay.progress"]
    assert len(lines) > 2 and all(line.startswith("pipeline logged: ") for line in lines)
    assert "20,000 rows normalized (events 20,000), 4 file(s)" in lines[-1] and "4/4 job(s) loaded" in lines[-1]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="loadbay.progress"):
        p.run([{"id": 1}], table_name="events", progress=False)
    assert not [r for r in caplog.records if r.name == "loadbay.progress"]


def test_timings_add_up_and_a_slow_source_counts_as_extract(isolated_env: Path) -> None:
    def slow() -> object:
        for i in range(20000):
            if i % 5000 == 0:
                time.sleep(0.2)  # the user's source waiting on something: 0.8 s in all
            yield {"id": i}

    p = loadbay.pipeline("timed", destination=loadbay.destination("duckdb", credentials=str(isolated_env / "t.duckdb")),
                         pipelines_dir=isolated_env / "p")
    started = time.monotonic()
    info = p.run(slow(), table_name="events")
    wall = time.monotonic() - started
    steps = [info.timings[s] for s in ("extract", "normalize", "load")]
    assert all(s >= 0 for s in steps) and sum(steps) <= wall
    assert info.timings["extract"] >= 0.8  # the sleeps are the source's, not loadbay's
    assert wall - sum(steps) < 0.05 * wall + 0.05  # nothing of the run is left out
    assert f"completed in {sum(steps):.2f} seconds (extract {steps[0]:.2f} s" in str(info)
