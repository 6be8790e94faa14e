"""Connections: a run connects once, whatever it does (restore the schema, load pending packages and
its own, several tables); a ``with pipeline:`` block keeps that one connection across its runs and
closes it at the end. A load's fixed cost is mostly connecting (bench/small_loads.py), so these
counts are what keeps a small load cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import loadbay
from loadbay.destinations.sql_destination import SqlDestination
from loadbay.destinations.testing.conformance.helpers import (count, file_holding, normalize_only,
                                                              normalize_resources, replace_value, run_ok, select)


class Counts:
    """Connections the SQL client class under test opened and closed (the driver's own, not loadbay's calls)."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0


@pytest.fixture
def connections(make_pipeline: Callable[..., loadbay.Pipeline], monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    """Counts every dbapi connection the destination's SQL client opens and closes from now on."""
    probe = make_pipeline(name="probe")
    if not isinstance(probe.destination, SqlDestination):
        pytest.skip(f"{probe.destination.destination_type} has no SQL connection")
    client_class = type(probe.destination.sql_client(probe.config))
    counts = Counts()
    connect, close = client_class.connect, client_class.close

    def counted_connect(self: Any) -> Any:
        conn = connect(self)
        counts.opened += 1
        return conn

    def counted_close(self: Any) -> None:
        if self._conn is not None:
            counts.closed += 1
        close(self)

    monkeypatch.setattr(client_class, "connect", counted_connect)
    monkeypatch.setattr(client_class, "close", counted_close)
    yield counts


def _orders(n: int, start: int = 0) -> list[dict[str, Any]]:
    """Rows with two child tables: three tables, three load files."""
    return [{"id": i, "name": f"order {i}", "items": [{"sku": f"s{i}-{k}", "qty": k} for k in range(2)],
             "tags": ["a", "b"]} for i in range(start, start + n)]


def test_a_fresh_run_connects_once(make_pipeline, connections):
    """Restoring the schema (a new pipelines_dir asks the destination), creating the dataset and three
    tables and loading three files: one connection, closed when run() returns."""
    p = make_pipeline(load_while_normalizing=False)
    run_ok(p, _orders(50), table_name="orders")
    assert (connections.opened, connections.closed) == (1, 1)
    assert (count(p, "orders"), count(p, "orders__items"), count(p, "orders__tags")) == (50, 100, 100)


def test_a_run_loading_a_pending_package_and_its_own_connects_once(make_pipeline, connections):
    p = make_pipeline(load_while_normalizing=False)
    pending = normalize_only(p, _orders(10), "orders")  # on a new pipelines_dir: restores the schema too
    opened = connections.opened
    info = run_ok(p, _orders(5, start=100), table_name="orders")
    assert info.loads_ids[0] == pending.load_id and len(info.loads_ids) == 2
    assert connections.opened - opened == 1
    assert count(p, "orders") == 15


def test_a_with_block_keeps_one_connection_across_runs(make_pipeline, connections):
    p = make_pipeline(load_while_normalizing=False)
    with p:
        for batch in range(3):
            rows = _orders(20, start=batch * 20)
            if batch == 2:  # a new column: the live table is altered on the kept connection
                rows = [{**row, "note": "new"} for row in rows]
            run_ok(p, rows, table_name="orders")
        assert count(p, "orders") == 60  # p.sql_client() inside the block: the block's connection, no new one
        assert (connections.opened, connections.closed) == (1, 0)
    assert (connections.opened, connections.closed) == (1, 1)
    run_ok(p, _orders(1, start=1000), table_name="orders")  # after the block: a connection per run again
    assert (connections.opened, connections.closed) == (2, 2)
    assert (count(p, "orders"), count(p, "orders__items")) == (61, 122)


MARKER = 987654321  # a value that occurs once in a load file, to corrupt
BAD = "abcdefg"     # same length as MARKER once quoted: insert_values files stay well framed


def test_a_failed_run_inside_a_with_block_leaves_the_next_run_working(make_pipeline, connections):
    """A job that fails terminally rolls back its transaction; the kept connection loads the next run."""
    p = make_pipeline(load_while_normalizing=False)
    hints = {"columns": {"n": {"data_type": "bigint"}}}
    with p:
        run_ok(p, [{"id": 1, "n": 1}], table_name="t", **hints)
        package = normalize_resources(p, [loadbay.resource([{"id": 2, "n": MARKER}], name="t", **hints)])
        bad_file = file_holding(package, "n", MARKER)
        replace_value(bad_file.path, bad_file.file_format, "n", MARKER, BAD)
        assert p.run().has_failed_jobs
        p.drop_pending_packages()
        run_ok(p, [{"id": 3, "n": 3}], table_name="t", **hints)
        assert connections.opened == 1
    assert select(p, "t", "id", "n") == [(1, 1), (3, 3)]
    assert connections.opened == connections.closed


def test_small_files_load_on_the_run_connection_large_ones_in_parallel(make_pipeline, connections, monkeypatch,
                                                                       destination_capabilities):
    """A package's files load one after the other on the run's connection until they are large enough
    (``BYTES_PER_EXTRA_WORKER`` each) to pay for more connections, up to ``max_parallel_load_jobs``."""
    import loadbay.load

    workers = destination_capabilities.max_parallel_load_jobs
    if workers < 2:
        pytest.skip("the destination loads one file at a time (max_parallel_load_jobs = 1)")
    p = make_pipeline(load_while_normalizing=False, file_max_items=20)
    run_ok(p, _orders(100), table_name="orders")  # 5 + 10 + 10 small files
    assert (connections.opened, connections.closed) == (1, 1)
    monkeypatch.setattr(loadbay.load, "BYTES_PER_EXTRA_WORKER", 1)  # every file counts as large
    run_ok(p, _orders(100, start=100), table_name="orders")
    assert connections.opened - 1 == workers  # the run's own and workers - 1 more
    assert connections.opened == connections.closed
    assert (count(p, "orders"), count(p, "orders__items"), count(p, "orders__tags")) == (200, 400, 400)


def test_files_waiting_when_normalizing_ends_load_in_parallel_before_the_commit(make_pipeline, connections, monkeypatch,
                                                                                destination_capabilities):
    """Loading while normalizing takes one file at a time (the normalizing thread keeps its core); the files
    still waiting when the last one is written load on ``max_parallel_load_jobs`` connections at once, before
    the package is committed, as they would in the loader."""
    import threading

    import loadbay.load

    workers = destination_capabilities.max_parallel_load_jobs
    if workers < 2 or not destination_capabilities.load_while_normalizing:
        pytest.skip("the destination loads one file at a time, or none while normalizing")
    p = make_pipeline(file_max_items=20)
    run_ok(p, _orders(20), table_name="orders")  # the tables exist: the next run's files need no DDL
    monkeypatch.setattr(loadbay.load, "BYTES_PER_EXTRA_WORKER", 1)  # every file counts as large
    threads: set[str] = set()
    run_job = loadbay.load.Loader._run_job

    def on_thread(self: Any, *args: Any) -> bool:
        threads.add(threading.current_thread().name)
        return run_job(self, *args)

    monkeypatch.setattr(loadbay.load.Loader, "_run_job", on_thread)
    opened = connections.opened
    run_ok(p, _orders(300, start=20), table_name="orders")  # 15 + 30 + 30 files, written in milliseconds
    feed_threads = {name for name in threads if name.startswith("load-feed-")}
    assert len(feed_threads) == workers, threads  # the feed's own thread and workers - 1 for the drain
    assert threads <= feed_threads, threads  # every file loaded before the commit: none left to the loader
    assert connections.opened - opened == 1 + workers  # the run's and one per feed thread
    assert connections.opened == connections.closed
    assert (count(p, "orders"), count(p, "orders__items"), count(p, "orders__tags")) == (320, 640, 640)
