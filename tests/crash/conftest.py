"""Runs the crash and concurrency scenarios selected for this session in a background pool, and
prints their summary table at the end.

The scenarios spend their time waiting for worker processes, so they run on threads of a
session-wide pool, in the order pytest will ask for them; each test then waits for its own
scenario and asserts on its cases. The pool starts as soon as collection ends, and the crash and concurrency tests are
moved to the end of the run: the rest of the suite runs while the scenarios do (collected first,
they kept the whole session waiting for the pool for minutes). Beside other tests the pool runs
one scenario at a time and its workers run niced, so the rest of the suite is slowed as little as
can be; once every other test is done (the first crash or concurrency test waits) it runs two at a
time, as a session of crash tests only (``make crash``) does from the start. Settings (environment
variables):

- ``LOADBAY_CRASH_KILLS`` random kills per scenario (default 2; seeds are drawn until that many
  runs were really killed, not ended first); ``LOADBAY_CRASH_SEED=s1,s2``
  replays those seeds instead (with ``LOADBAY_CRASH_POINTS=none`` and ``-k`` for one scenario);
- ``LOADBAY_CRASH_DOUBLE_KILLS`` random kills whose first resume run is killed too (default 0;
  ``LOADBAY_CRASH_DOUBLE_SEED`` replays);
- ``LOADBAY_CRASH_POINTS``: comma-separated points (``job.committed:3``; ``own`` stands for the destination's own
  points in each disposition, ``Target.own_points``: Spark's swap), ``all`` (every point, and some reached again
  later in the run), ``none``; default: each point once, the destination's own among them;
- ``LOADBAY_CONCURRENT_TRIALS`` trials per concurrency scenario (default 2);
- ``LOADBAY_CRASH_ROWS`` / ``LOADBAY_CRASH_FILE_MAX_ITEMS`` data size and files (default 10,000
  base root rows, 400 rows a file: 10 to 60 files a table and batch), ``LOADBAY_CONCURRENT_ROWS`` /
  ``LOADBAY_CONCURRENT_FILE_MAX_ITEMS`` the same for the concurrency trials (3,000 and 300);
- ``LOADBAY_CRASH_PARALLEL`` scenarios at once, throughout (default 1 beside other tests and 2 once they
  are done, 2 in a session of crash tests only); ``LOADBAY_CRASH_WORKER_NICE`` how much lower than the
  session the workers run (default 10);
- ``LOADBAY_CRASH_REPORT=path.json`` writes every case; ``LOADBAY_CRASH_KEEP=1`` keeps every dataset and work folder (failed cases keep their folder anyway);
- ``LOADBAY_CRASH_MYSQL``: the dispositions the ``mysql`` scenarios (crash and concurrency) run in,
  comma-separated, or ``all``; default: all in a session of crash tests only, ``merge`` alone beside
  other tests.

Which scenarios run: every destination and disposition the selected tests name (``-k`` narrows
them; the destinations are those whose setup the session runs, ``--lb-setup spark`` for the Spark cluster:
``targets.session_destinations``), except that beside other tests (``make test``) the ``mysql`` destination runs one
disposition, ``merge`` (``BESIDE_SUITE``); its append and replace scenarios are deselected (pytest
counts them, and the summary names them). A crash scenario costs 20 to 45 s (mysql merge ~65 s),
a concurrency one 5 to 15 s, and the pool runs one at a time beside other tests: all six mysql
scenarios would add ~2.5 minutes of pool time to ``make test``, merge alone ~80 s. Merge is the one
kept, though the dearest: it goes through everything the others do (load jobs, staging tables,
the final transaction, ``package.merged``) plus the DDL a merge runs first on MySQL (its lookup
indexes, committed on their own). Deselecting, rather than parametrizing fewer scenarios, keeps
every id there for ``-k``, so a session of crash tests only (``make crash``, ``pytest tests/crash
-k mysql``) runs every disposition, with nothing to set.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from loadbay.destinations.testing.setups import SETUPS, require_server
from tests.crash import report
from tests.crash.concurrent import trial
from tests.crash.harness import LATER_POINTS, POINTS, CaseResult, Seeds, replay_seeds, run_scenario
from tests.crash.targets import TARGETS

KILLS = int(os.environ.get("LOADBAY_CRASH_KILLS", "2"))
DOUBLE_KILLS = int(os.environ.get("LOADBAY_CRASH_DOUBLE_KILLS", "0"))
TRIALS = int(os.environ.get("LOADBAY_CONCURRENT_TRIALS", "2"))
PARALLEL_ENV = "LOADBAY_CRASH_PARALLEL"
"""Scenarios at once; unset: 2 in a session of crash tests only, 1 beside other tests (2 once they are done)."""
ALONE_PARALLEL = 2
"""Scenarios at once with no other test left to slow down."""
Key = tuple[str, str, str]
"""(kind, destination, disposition); kind is "crash" or "concurrent"."""
KINDS = {"crash_results": "crash", "concurrent_results": "concurrent"}
MYSQL_ENV = "LOADBAY_CRASH_MYSQL"
BESIDE_SUITE = {"mysql": ("merge",)}
"""The only dispositions a destination's scenarios run in beside other tests (``make test``): those
whose every disposition costs too much there. A session of crash tests only runs them all."""


def selected_dispositions(destination: str, *, alone: bool) -> tuple[str, ...] | None:
    """The dispositions ``destination``'s scenarios run in this session; None: every one."""
    spec = os.environ.get(MYSQL_ENV, "").strip() if destination == "mysql" else ""
    if spec:
        return None if spec == "all" else tuple(d.strip() for d in spec.split(",") if d.strip())
    return None if alone else BESIDE_SUITE.get(destination)


def crash_points(own: tuple[str, ...] = ()) -> list[str]:
    """The points to kill at: ``LOADBAY_CRASH_POINTS`` when it lists them, else the shared ones and the
    destination's ``own`` (``Target.own_points``)."""
    spec = os.environ.get("LOADBAY_CRASH_POINTS", "").strip()
    if not spec:
        return list(POINTS + own)
    if spec == "all":
        return list(POINTS + LATER_POINTS + own)
    if spec == "none":
        return []
    points: list[str] = []
    for token in filter(None, (p.strip() for p in spec.split(","))):
        points.extend(own if token == "own" else (token,))
    return points


class Scheduler:
    """Runs each selected scenario once, ``parallel`` at a time, as soon as the session starts; ``widen``
    lets ``widened`` run at a time from then on."""

    def __init__(self, root: Path, keys: list[Key], parallel: int, *, widened: int | None = None) -> None:
        self.root = root
        self.parallel = max(1, parallel)
        self.widened = max(self.parallel, widened or self.parallel)
        self.widened_at: float | None = None
        """When ``widen`` was first called (seconds after collection), if it was."""
        self.started = time.monotonic()
        self.finished: float | None = None
        self._slots = threading.Condition()
        self._running = 0
        self._limit = self.parallel
        self._next = 0  # the submission number of the next scenario to start: they start in order
        self._closing = False
        self.pool = ThreadPoolExecutor(max_workers=self.widened, thread_name_prefix="crash")
        self.futures: dict[Key, Future[list[CaseResult]]] = {}
        self.seconds: dict[Key, float] = {}
        """How long each scenario that ran took, start to end."""
        reachable: dict[str, bool] = {}
        for key in keys:
            destination = key[1]
            probe = SETUPS[destination].probe
            if destination not in reachable:
                reachable[destination] = probe is None or probe() is None
            if reachable[destination]:  # an unreachable server: the test skips (or fails in CI) itself
                self.futures[key] = self.pool.submit(self._run, key, len(self.futures))

    def widen(self) -> None:
        """From now on run ``widened`` scenarios at a time (no other test is left to slow down)."""
        with self._slots:
            if self._limit < self.widened:
                self._limit = self.widened
                self.widened_at = time.monotonic() - self.started
                self._slots.notify_all()

    def _run(self, key: Key, number: int) -> list[CaseResult]:
        with self._slots:
            self._slots.wait_for(lambda: self._closing or (self._running < self._limit and self._next == number))
            if self._closing:
                raise CancelledError(f"session ended before scenario {key} started")
            self._next += 1
            self._running += 1
        try:
            return self._run_scenario(key)
        finally:
            with self._slots:
                self._running -= 1
                self._slots.notify_all()

    def _run_scenario(self, key: Key) -> list[CaseResult]:
        kind, destination, disposition = key
        started = time.monotonic()
        target = TARGETS[destination]
        folder = self.root / f"{kind}-{destination}-{disposition}"
        if kind == "crash":
            results = run_scenario(target, disposition, folder, points=crash_points(target.own_points(disposition)),
                                   random_seeds=Seeds(KILLS, replay_seeds("random")),
                                   double_seeds=Seeds(DOUBLE_KILLS, replay_seeds("double")))
        else:
            results = [trial(target, disposition, folder, n) for n in range(1, TRIALS + 1)]
        report.record(results)
        self.finished = time.monotonic()
        self.seconds[key] = self.finished - started
        return results

    def results(self, key: Key) -> list[CaseResult]:
        """The scenario's cases, once it has run. Crash and concurrency tests run last: the first to wait
        means no other test is left, so the pool widens."""
        self.widen()
        return self.futures[key].result()

    def close(self) -> None:
        with self._slots:
            self._closing = True
            self._slots.notify_all()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _declared_skip(item: pytest.Item) -> bool:
    return item.get_closest_marker("skip") is not None


def _key(item: pytest.Item) -> Key | None:
    """The scenario a collected test waits for; None for any other test."""
    kind = next((KINDS[f] for f in getattr(item, "fixturenames", ()) if f in KINDS), None)
    callspec = getattr(item, "callspec", None)
    if kind is None or callspec is None or _declared_skip(item):
        return None  # a scenario declared out of reach (test_concurrent.py: spark) is not run
    return kind, callspec.params["destination"], callspec.params["disposition"]


_SCHEDULER = pytest.StashKey["Scheduler"]()


def _start(session: pytest.Session) -> Scheduler:
    """The session's scheduler, started (once) with every scenario its selected tests wait for."""
    scheduler = session.config.stash.get(_SCHEDULER, None)
    if scheduler is None:
        keys: list[Key] = []
        for item in session.items:
            key = _key(item)
            if key is not None and key not in keys:
                keys.append(key)
        parallel = os.environ.get(PARALLEL_ENV)
        alone = all(_key(item) is not None or _declared_skip(item) for item in session.items)
        # the session's own basetemp (what the tmp_path_factory fixture returns), so kept folders of
        # failed cases sit beside every other test's
        factory: pytest.TempPathFactory = session.config._tmp_path_factory  # type: ignore[attr-defined]
        scheduler = Scheduler(factory.mktemp("crash"), keys,
                              int(parallel) if parallel else ALONE_PARALLEL if alone else 1,
                              widened=None if parallel else ALONE_PARALLEL)
        session.config.stash[_SCHEDULER] = scheduler
    return scheduler


_DESELECTED = pytest.StashKey["list[str]"]()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scenarios not selected for this session deselected (``selected_dispositions``); crash and
    concurrency tests last (their order kept): they only wait for the pool, which runs from the
    start, so every other test runs in the meantime instead of after it."""
    alone = all(_key(item) is not None or _declared_skip(item) for item in items)
    kept, dropped = [], []
    for item in items:
        key = _key(item)
        wanted = None if key is None else selected_dispositions(key[1], alone=alone)
        (dropped if key is not None and wanted is not None and key[2] not in wanted else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        config.stash[_DESELECTED] = [item.name for item in dropped]
        items[:] = kept
    waiting = [item for item in items if _key(item) is not None]
    if waiting and len(waiting) < len(items):
        items[:] = [item for item in items if _key(item) is None] + waiting


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the scenarios as soon as the tests are known (not under --collect-only)."""
    if session.config.option.collectonly:
        return
    if any(_key(item) is not None for item in session.items):
        _start(session)


@pytest.hookimpl(tryfirst=True)  # before pytest removes the basetemp the scenarios work in
def pytest_sessionfinish(session: pytest.Session) -> None:
    scheduler = session.config.stash.get(_SCHEDULER, None)
    if scheduler is not None:
        scheduler.close()


@pytest.fixture(scope="session")
def crash_scheduler(request: pytest.FixtureRequest) -> Scheduler:
    return _start(request.session)


@pytest.fixture
def crash_results(crash_scheduler: Scheduler, destination: str, disposition: str) -> list[CaseResult]:
    """Every case of the crash scenario (destination, disposition), once it has run."""
    require_server(destination)
    return crash_scheduler.results(("crash", destination, disposition))


@pytest.fixture
def concurrent_results(crash_scheduler: Scheduler, destination: str, disposition: str) -> list[CaseResult]:
    """Every trial of the concurrency scenario (destination, disposition), once it has run."""
    require_server(destination)
    return crash_scheduler.results(("concurrent", destination, disposition))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    results = list(report.RESULTS)
    if not results:
        return
    terminalreporter.section("loadbay crash summary")
    terminalreporter.write_line(report.table(results))
    deselected = terminalreporter.config.stash.get(_DESELECTED, [])
    if deselected:
        terminalreporter.write_line(f"{len(deselected)} scenarios deselected ({', '.join(deselected)}): "
                                    f"{MYSQL_ENV}=all runs them")
    scheduler = terminalreporter.config.stash.get(_SCHEDULER, None)
    if scheduler is not None and scheduler.finished is not None:
        n = len(scheduler.futures)
        at_once = f"{scheduler.parallel} at a time"
        if scheduler.widened_at is not None and scheduler.widened > scheduler.parallel:
            at_once += f" ({scheduler.widened} from {scheduler.widened_at:.0f} s, when the other tests were done)"
        terminalreporter.write_line(f"{n} scenario{'s' if n != 1 else ''}, {at_once}, "
                                    f"done {scheduler.finished - scheduler.started:.0f} s after collection")
        terminalreporter.write_line("seconds per scenario: " + ", ".join(
            f"{kind} {destination} {disposition} {seconds:.0f}"
            for (kind, destination, disposition), seconds in scheduler.seconds.items()))
    seeds_used = [f"{r.destination} {r.scenario} {r.seed}" for r in results if r.seed is not None]
    if 0 < len(seeds_used) <= 40:
        terminalreporter.write_line("random kill seeds: " + ", ".join(seeds_used))
    elif seeds_used:
        terminalreporter.write_line(f"{len(seeds_used)} random kills; every seed is printed with -s "
                                    f"and written with {report.REPORT_ENV}=path.json")
    path = os.environ.get(report.REPORT_ENV)
    if path:
        report.write(results, Path(path))
        terminalreporter.write_line(f"cases written to {path} (python -m tests.crash.report {path})")
