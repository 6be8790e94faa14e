"""Worker processes: start one, time a kill from its READY line, collect how it ended.

A worker is ``python -m tests.crash.worker`` in a folder of its own with the repo on PYTHONPATH,
HOME pointed into that folder and no loadbay settings inherited from the environment, so only
its command line decides what it does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT = float(os.environ.get("LOADBAY_CRASH_WORKER_TIMEOUT", "300"))
"""Seconds before a worker is taken for hung (killed, and reported as such)."""
KILLED = -signal.SIGKILL
PYTHON = sys.executable
ENVIRON = dict(os.environ)
"""The interpreter and environment of the session as it started: the scenarios run on threads beside the other
tests, some of which patch ``sys.executable`` or ``PYTHONHOME`` for a moment (tests/integration/test_sqlite_worker.py);
a worker started in that moment could not start (seen in CI: FileNotFoundError for the patched interpreter)."""


@dataclass
class WorkerRun:
    """How one worker process ended."""

    returncode: int
    seconds: float
    """From its READY line (or its start, without one) to its exit."""
    killed_by_harness: bool
    hung: bool
    result: dict[str, Any] | None
    log: Path

    @property
    def killed(self) -> bool:
        return self.returncode == KILLED

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.result is not None

    def tail(self, lines: int = 6) -> str:
        """The end of its stderr, the traceback's last lines, for a failure message."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        kept = [line for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(kept) or "(no output on stderr)"

    def describe(self) -> str:
        if self.hung:
            return f"hung: still running after {WORKER_TIMEOUT:.0f} s (killed); stderr: {self.tail()}"
        if self.killed:
            return "killed (SIGKILL)"
        return f"exit code {self.returncode}; stderr: {self.tail()}"


def worker_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in ENVIRON.items()
           if not k.startswith(("DESTINATION__", "PIPELINE__", "PIPELINES__", "LOADBAY_CRASH_AT"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [ENVIRON.get("PYTHONPATH")])])
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def start(args: list[str], *, cwd: Path, log: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as stderr:
        return subprocess.Popen([PYTHON, "-m", "tests.crash.worker", *args], cwd=cwd, env=env,
                                stdout=subprocess.PIPE, stderr=stderr, text=True)


def wait_ready(proc: subprocess.Popen[str]) -> bool:
    """Block until the worker printed READY (True) or ended without it (False); one that hangs
    before READY is killed after WORKER_TIMEOUT."""
    assert proc.stdout is not None
    watchdog = threading.Timer(WORKER_TIMEOUT, _kill, args=(proc,))
    watchdog.start()
    try:
        while True:
            line = proc.stdout.readline()
            if not line:
                return False
            if line.strip() == "READY":
                return True
    finally:
        watchdog.cancel()


def finish(proc: subprocess.Popen[str], *, started: float, log: Path, kill_after: float | None = None) -> WorkerRun:
    """Wait for ``proc`` (READY already read), killing it ``kill_after`` seconds after ``started``."""
    killed_by_harness = hung = False
    deadline = started + WORKER_TIMEOUT
    if kill_after is not None:
        try:
            proc.wait(timeout=max(0.0, started + kill_after - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill(proc)
            killed_by_harness = True
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill(proc)
        hung = True
    seconds = time.monotonic() - started
    assert proc.stdout is not None
    result = None
    for line in proc.stdout.read().splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line.removeprefix("RESULT "))
    proc.stdout.close()
    return WorkerRun(returncode=proc.returncode, seconds=seconds, killed_by_harness=killed_by_harness, hung=hung,
                     result=result, log=log)


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # it ended on its own just now
        pass
    proc.wait()


def run(args: list[str], *, cwd: Path, log: Path, env: dict[str, str], kill_after: float | None = None) -> WorkerRun:
    """Run one worker to its end; with ``kill_after``, SIGKILL it that many seconds after READY."""
    proc = start(args, cwd=cwd, log=log, env=env)
    ready = wait_ready(proc)
    started = time.monotonic()
    return finish(proc, started=started, log=log, kill_after=kill_after if ready else None)
