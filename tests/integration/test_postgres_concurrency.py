"""Pipelines loading one PostgreSQL dataset at once, in threads of one process (each with its own
connections): schema changes serialize on an advisory lock, staging tables are private to each
package, and merges into the same table wait for each other. The crash harness in tests/crash runs
the same with separate processes; these are the quick, exact cases.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import loadbay
from loadbay.destinations.testing.conformance.helpers import query
from loadbay.destinations.testing.setups import POSTGRES_URL
from tests.integration.pg_helpers import drop_schemas, live_columns, postgres_server  # noqa: F401 - fixture

THREADS = 4


def _at_once(work: list[Callable[[], Any]]) -> list[BaseException]:
    """Run every callable in its own thread, released together; the exceptions they raised."""
    barrier = threading.Barrier(len(work))
    errors: list[BaseException] = []

    def run(fn: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _pipelines(tmp_path: Any, dataset: str, n: int) -> list[loadbay.Pipeline]:
    destination = loadbay.destination("postgres", credentials=POSTGRES_URL)
    return [loadbay.pipeline(f"p{i}", destination=destination, dataset_name=dataset, pipelines_dir=tmp_path / f"p{i}",
                             retry_backoff_seconds=0.05) for i in range(n)]


def test_pipelines_creating_one_dataset_and_its_columns_at_once_all_succeed(tmp_path):
    """Each adds its own column to the same new table in the same new schema: without the advisory
    lock, CREATE SCHEMA IF NOT EXISTS and ALTER TABLE race and fail terminally."""
    dataset = f"ds_{uuid.uuid4().hex[:12]}"
    pipelines = _pipelines(tmp_path, dataset, THREADS)
    try:
        errors = _at_once([lambda p=p, i=i: p.run([{"id": i, f"col_{i}": i, "kids": [i]}], table_name="t")
                           .raise_on_failed_jobs() for i, p in enumerate(pipelines)])
        assert errors == []
        assert {f"col_{i}" for i in range(THREADS)} <= set(live_columns(pipelines[0], "t"))
        assert query(pipelines[0], "SELECT id FROM t ORDER BY id") == [(i,) for i in range(THREADS)]
        assert query(pipelines[0], "SELECT count(*) FROM t__kids") == [(THREADS,)]
    finally:
        drop_schemas(dataset, dataset + "_staging")


def test_merges_of_the_same_keys_at_once_keep_each_key_once(tmp_path):
    """Overlapping keys: LOCK TABLE in the final transaction makes one merge wait for the other, so
    every key ends once, with one pipeline's values and that pipeline's child rows."""
    dataset = f"ds_{uuid.uuid4().hex[:12]}"
    pipelines = _pipelines(tmp_path, dataset, 2)
    keys = range(2_000)
    hints = {"table_name": "t", "write_disposition": "merge", "primary_key": "id"}
    try:
        pipelines[0].run([{"id": k, "v": "base", "kids": ["base"]} for k in keys], **hints)
        errors = _at_once([lambda p=p: p.run([{"id": k, "v": p.pipeline_name, "kids": [p.pipeline_name] * 2}
                                              for k in keys], **hints).raise_on_failed_jobs() for p in pipelines])
        assert errors == []
        rows = query(pipelines[0], "SELECT count(*), count(DISTINCT id), count(DISTINCT v) FROM t")
        assert rows == [(len(keys), len(keys), 1)]
        [(winner,)] = query(pipelines[0], "SELECT DISTINCT v FROM t")
        assert winner in ("p0", "p1")
        assert query(pipelines[0], "SELECT value, count(*) FROM t__kids GROUP BY value") == [(winner, 2 * len(keys))]
        assert query(pipelines[0], "SELECT count(*) FROM _lb_jobs") == [(0,)]
    finally:
        drop_schemas(dataset, dataset + "_staging")


def test_replaces_at_once_leave_one_whole_batch(tmp_path):
    dataset = f"ds_{uuid.uuid4().hex[:12]}"
    pipelines = _pipelines(tmp_path, dataset, THREADS)
    try:
        errors = _at_once([lambda p=p, i=i: p.run([{"id": i * 1000 + k, "kids": [i]} for k in range(500)],
                                                  table_name="t", write_disposition="replace").raise_on_failed_jobs()
                           for i, p in enumerate(pipelines)])
        assert errors == []
        [(batches, rows)] = query(pipelines[0], "SELECT count(DISTINCT id / 1000), count(*) FROM t")
        assert (batches, rows) == (1, 500)
        [(kid_batches, kids)] = query(pipelines[0], "SELECT count(DISTINCT value), count(*) FROM t__kids")
        assert (kid_batches, kids) == (1, 500)
        assert query(pipelines[0], "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
                     dataset + "_staging") == [(0,)]
    finally:
        drop_schemas(dataset, dataset + "_staging")
