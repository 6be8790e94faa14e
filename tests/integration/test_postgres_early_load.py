"""Loading while normalizing on the real PostgreSQL server: rows arrive before the source is done,
and a package that never finishes normalizing leaves no row behind (a raised error, a killed process).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loadbay
from loadbay.common.exceptions import DestinationError
from loadbay.destinations.testing.conformance.helpers import count, ident, query, run_ok
from loadbay.destinations.testing.setups import POSTGRES_URL
from tests.integration.pg_helpers import (live_columns, live_tables, pg, pg_url, postgres_server,  # noqa: F401 - fixtures
                                  raw_connection)

SMALL_FILES = {"file_max_items": 1000, "batch_size": 500}
REPO = Path(__file__).resolve().parents[2]


def _rows_loaded(p: loadbay.Pipeline, table: str, at_least: int = 1, timeout: float = 20.0) -> int:
    """Poll (on a connection of its own) until ``table`` holds ``at_least`` rows; returns the count."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            n = count(p, table)
        except DestinationError:  # not created yet
            n = 0
        if n >= at_least or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def _events(n: int, *, during: Callable[[int], None] | None = None, at: int = -1,
            extra_from: int | None = None) -> Iterator[dict[str, Any]]:
    for i in range(n):
        if i == at and during is not None:
            during(i)
        row: dict[str, Any] = {"id": i, "name": f"event {i}", "tags": ["a", "b"] if i % 2 else []}
        if extra_from is not None and i >= extra_from:
            row["score"] = i / 2
        yield row


def test_rows_arrive_while_the_source_is_still_producing(pg):
    p = pg(**SMALL_FILES)
    seen: list[int] = []
    info = run_ok(p, _events(20_000, during=lambda i: seen.append(_rows_loaded(p, "events")), at=15_000),
                  table_name="events")
    assert seen and seen[0] > 0, "no file was loaded before normalizing ended"
    assert count(p, "events") == 20_000
    assert count(p, "events__tags") == 20_000
    assert query(p, f"SELECT count(DISTINCT id), min(id), max(id) FROM {ident(p, 'events')}")[0] == (20_000, 0, 19_999)
    assert info.row_counts == {"events": 20_000, "events__tags": 20_000}
    assert p.pending_packages() == []


def test_a_column_that_appears_mid_file_is_added_before_the_file_loads(pg):
    p = pg(**SMALL_FILES)
    run_ok(p, _events(12_000, extra_from=6_250), table_name="events")
    assert live_columns(p, "events")["score"][0] == "double precision"
    assert query(p, f"SELECT count(score), sum(score) FROM {ident(p, 'events')}")[0] == (
        5_750, sum(i / 2 for i in range(6_250, 12_000)))


def test_failed_normalize_removes_the_rows_it_loaded_early(pg):
    p = pg(**SMALL_FILES)
    run_ok(p, [{"id": -1, "name": "kept", "tags": ["k"]}], table_name="events")

    def fail(_: int) -> None:
        assert _rows_loaded(p, "events", at_least=2) > 1  # rows of this run are in the tables now
        assert _rows_loaded(p, "events__tags", at_least=2) > 1
        raise RuntimeError("the source broke")

    with pytest.raises(Exception, match="the source broke"):
        p.run(_events(20_000, during=fail, at=15_000), table_name="events")
    assert query(p, f"SELECT id, name FROM {ident(p, 'events')}") == [(-1, "kept")]
    assert query(p, f"SELECT value FROM {ident(p, 'events__tags')}") == [("k",)]
    assert p.pending_packages() == []
    assert not any((p.pipeline_dir / "normalizing").iterdir())
    assert count(p, "_lb_jobs") == 0  # the early jobs' done-records went with their rows
    run_ok(p, _events(3_000), table_name="events")  # and the pipeline goes on as before
    assert count(p, "events") == 3_001


def test_rows_of_a_killed_run_are_removed_by_the_next_run(pg, tmp_path):
    p = pg(name="killed", pipelines_dir=tmp_path / "pipes", **SMALL_FILES)
    run_ok(p, [{"id": -1, "name": "kept"}], table_name="events")
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        import loadbay
        from tests.integration.test_postgres_early_load import _events, _rows_loaded
        p = loadbay.pipeline("killed", destination=loadbay.destination("postgres", credentials={POSTGRES_URL!r}),
                             dataset_name={p.dataset_name!r}, pipelines_dir={str(tmp_path / "pipes")!r},
                             file_max_items=1000, batch_size=500)
        def die(_):
            _rows_loaded(p, "events", at_least=2)
            _rows_loaded(p, "events__tags")
            os._exit(17)  # no clean-up of any kind: as if the machine went down
        p.run(_events(20_000, during=die, at=15_000, extra_from=0), table_name="events")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 17, done.stderr
    assert count(p, "events") > 1 and count(p, "events__tags") > 0  # the dead run's rows are in ...
    assert count(p, "_lb_jobs") > 0  # ... each file's with its done-record ...
    assert any((p.pipeline_dir / "normalizing").iterdir())  # ... and its package is still half written
    assert live_columns(p, "events")["score"][0] == "double precision"  # created by the dead run
    run_ok(p, [{"id": 99, "name": "next", "score": "x"}], table_name="events")
    assert query(p, f"SELECT id, score__v_text FROM {ident(p, 'events')} ORDER BY id") == [(-1, None), (99, "x")]
    assert count(p, "events__tags") == 0 and count(p, "_lb_jobs") == 0
    assert not any((p.pipeline_dir / "normalizing").iterdir())
    assert p.schema.tables["events"].columns["score"].data_type == "double"  # known from the dead run's meta


def test_merge_and_replace_tables_wait_for_the_whole_package(pg):
    p = pg(**SMALL_FILES)
    run_ok(p, _events(5_000), table_name="events", write_disposition="merge", primary_key="id")
    before: list[int] = []

    def look(_: int) -> None:
        time.sleep(1.0)  # room for an early load, were there one
        before.append(count(p, "events"))

    run_ok(p, _events(20_000, during=look, at=15_000), table_name="events", write_disposition="merge",
           primary_key="id")
    assert before == [5_000]  # the merge target was untouched while normalizing
    assert count(p, "events") == 20_000
    assert count(p, "events__tags") == 20_000
    assert "events" not in live_tables(p, p.dataset_name + "_staging")


def test_a_file_that_fails_early_fails_in_the_loader_with_its_error(pg):
    p = pg(**SMALL_FILES)
    run_ok(p, [{"id": -1, "name": "first", "tags": []}], table_name="events")
    query(p, f"ALTER TABLE {ident(p, 'events')} ADD CONSTRAINT below_5000 CHECK (id < 5000)")
    info = p.run(_events(10_000), table_name="events")
    assert info.has_failed_jobs
    failed = [job for package in info.load_packages for job in package.jobs if job.state == "failed"]
    assert failed and all(job.table_name == "events" for job in failed)
    assert "below_5000" in (failed[0].error or "")
    assert query(p, f"SELECT max(id) FROM {ident(p, 'events')}")[0][0] < 5000  # nothing past the check
    assert len(p.pending_packages()) == 1  # kept on disk to retry once the constraint is fixed
    query(p, f"ALTER TABLE {ident(p, 'events')} DROP CONSTRAINT below_5000")
    p.retry_failed_jobs()
    run_ok(p)
    assert count(p, "events") == 10_001
    assert query(p, f"SELECT count(DISTINCT id) FROM {ident(p, 'events')}")[0][0] == 10_001


def test_early_loading_can_be_turned_off(pg):
    p = pg(load_while_normalizing=False, **SMALL_FILES)
    seen: list[int] = []

    def look(_: int) -> None:
        time.sleep(1.0)
        seen.append(_rows_loaded(p, "events", timeout=0))

    run_ok(p, _events(20_000, during=look, at=15_000), table_name="events")
    assert seen == [0]
    assert count(p, "events") == 20_000


def test_tables_and_columns_an_abandoned_run_created_stay_known(pg):
    """The rows go, the DDL stays (empty columns): the pipeline's schema keeps it, so a later run
    with another type for the same key uses a variant column instead of failing its COPY."""
    p = pg(**SMALL_FILES)

    def fail(_: int) -> None:
        _rows_loaded(p, "events", at_least=2)
        raise RuntimeError("the source broke")

    with pytest.raises(Exception, match="the source broke"):
        p.run(_events(20_000, during=fail, at=15_000, extra_from=0), table_name="events")
    assert count(p, "events") == 0
    assert live_columns(p, "events")["score"][0] == "double precision"
    assert p.schema.tables["events"].columns["score"].data_type == "double"
    run_ok(p, [{"id": 1, "name": "a", "score": "high"}, {"id": 2, "name": "b", "score": 2.5}], table_name="events")
    assert query(p, f"SELECT id, score, score__v_text FROM {ident(p, 'events')} ORDER BY id") == [
        (1, None, "high"), (2, 2.5, None)]


@pytest.mark.parametrize("file_format", ["jsonl", "csv", "parquet"])
def test_copy_reads_files_as_utf8_whatever_the_client_encoding(pg, file_format):
    p = pg(credentials=pg_url({"options": "-c client_encoding=LATIN1"}))
    words = ["café", "日本語", "emoji 🙂", "Ωmega"]
    run_ok(p, [{"id": i, "word": w} for i, w in enumerate(words)], table_name="words",
           loader_file_format=file_format)
    conn = raw_connection()  # UTF-8, the test's own
    try:
        with conn.cursor() as cur:
            cur.execute(f'SELECT word FROM "{p.dataset_name}"."words" ORDER BY id')
            assert [r[0] for r in cur.fetchall()] == words
    finally:
        conn.close()
