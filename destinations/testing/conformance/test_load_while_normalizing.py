"""Loading while normalizing (``capabilities.load_while_normalizing``): append files load as they close,
through the Loader, while the source is still producing; a package that never finishes normalizing
leaves no row behind (a raised error, a killed process). Skipped for a destination without the capability.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import loadbay
from loadbay.common.exceptions import DestinationError
from loadbay.common.schema.types import Column, Schema, Table
from loadbay.destinations.testing.conformance.helpers import count, ident, query, run_ok, staging_tables, table_columns
from loadbay.load_feed import with_tables

SMALL_FILES = {"file_max_items": 1000, "batch_size": 500}


@pytest.fixture
def make_loading_pipeline(make_pipeline: Callable[..., loadbay.Pipeline], destination_name: str,
                          destination_capabilities: Any) -> Callable[..., loadbay.Pipeline]:
    """``make_pipeline`` with small load files, for a destination that loads while normalizing."""
    if not destination_capabilities.load_while_normalizing:
        pytest.skip(f"{destination_name} does not load while normalizing "
                    "(capabilities.load_while_normalizing is false)")

    def make(**settings: Any) -> loadbay.Pipeline:
        return make_pipeline(**{**SMALL_FILES, **settings})

    return make


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


def test_rows_arrive_while_the_source_is_still_producing(make_loading_pipeline):
    p = make_loading_pipeline()
    seen: list[int] = []
    info = run_ok(p, _events(20_000, during=lambda i: seen.append(_rows_loaded(p, "events")), at=15_000),
                  table_name="events")
    assert seen and seen[0] > 0, "no file was loaded before normalizing ended"
    assert count(p, "events") == 20_000
    assert count(p, "events__tags") == 20_000
    assert query(p, f"SELECT count(DISTINCT id), min(id), max(id) FROM {ident(p, 'events')}")[0] == (20_000, 0, 19_999)
    assert info.row_counts == {"events": 20_000, "events__tags": 20_000}
    assert p.pending_packages() == []


def test_a_column_that_appears_mid_file_is_added_before_the_file_loads(make_loading_pipeline):
    p = make_loading_pipeline()
    run_ok(p, _events(12_000, extra_from=6_250), table_name="events")
    assert table_columns(p, "events")["score"] == "double"
    assert query(p, f"SELECT count(score), sum(score) FROM {ident(p, 'events')}")[0] == (
        5_750, sum(i / 2 for i in range(6_250, 12_000)))


def test_failed_normalize_removes_the_rows_it_loaded(make_loading_pipeline):
    p = make_loading_pipeline()
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
    assert count(p, "_lb_jobs") == 0  # the jobs' done-records went with their rows
    run_ok(p, _events(3_000), table_name="events")  # and the pipeline goes on as before
    assert count(p, "events") == 3_001


def test_rows_of_a_killed_run_are_removed_by_the_next_run(make_loading_pipeline, destination_setup, tmp_path):
    p = make_loading_pipeline(name="killed")
    run_ok(p, [{"id": -1, "name": "kept"}], table_name="events")
    setup = destination_setup
    credentials = setup.credentials(tmp_path, "killed") if callable(setup.credentials) else setup.credentials
    script = textwrap.dedent(f"""
        import os
        import loadbay
        from {__name__} import _events, _rows_loaded
        destination = loadbay.destination({setup.reference!r}, credentials={credentials!r}, **{dict(setup.config)!r})
        p = loadbay.pipeline("killed", destination=destination, dataset_name={p.dataset_name!r},
                             pipelines_dir={str(p.pipeline_dir.parent)!r}, file_max_items=1000, batch_size=500)
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
    assert table_columns(p, "events")["score"] == "double"  # created by the dead run
    run_ok(p, [{"id": 99, "name": "next", "score": "x"}], table_name="events")
    assert query(p, f"SELECT id, score__v_text FROM {ident(p, 'events')} ORDER BY id") == [(-1, None), (99, "x")]
    assert count(p, "events__tags") == 0 and count(p, "_lb_jobs") == 0
    assert not any((p.pipeline_dir / "normalizing").iterdir())
    assert p.schema.tables["events"].columns["score"].data_type == "double"  # known from the dead run's meta


def test_merge_and_replace_tables_wait_for_the_whole_package(make_loading_pipeline):
    p = make_loading_pipeline()
    run_ok(p, _events(5_000), table_name="events", write_disposition="merge", primary_key="id")
    before: list[int] = []

    def look(_: int) -> None:
        time.sleep(1.0)  # room for a file to load, were one loading
        before.append(count(p, "events"))

    info = run_ok(p, _events(20_000, during=look, at=15_000), table_name="events", write_disposition="merge",
                  primary_key="id")
    assert before == [5_000]  # the merge target was untouched while normalizing
    assert count(p, "events") == 20_000
    assert count(p, "events__tags") == 20_000
    assert staging_tables(p, info.loads_ids[0]) == set()


def _check_ids_below(p: loadbay.Pipeline, table: str, limit: int, *, drop: bool = False) -> None:
    """Make the database refuse rows of ``table`` with ``id >= limit``, as a check named ``below_<limit>``
    (``drop``: allow them again). SQLite cannot add a constraint to a table: a trigger aborts instead."""
    name = f"below_{limit}"
    if p.capabilities.sqlglot_dialect == "sqlite":
        trigger = f"{ident(p, p.dataset_name)}.{name}"
        query(p, f"DROP TRIGGER {trigger}" if drop else
                 f"CREATE TRIGGER {trigger} BEFORE INSERT ON {ident(p, table)} WHEN NEW.id >= {limit} "
                 f"BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END")
    else:
        query(p, f"ALTER TABLE {ident(p, table)} DROP CONSTRAINT {name}" if drop else
                 f"ALTER TABLE {ident(p, table)} ADD CONSTRAINT {name} CHECK (id < {limit})")


def test_a_file_that_fails_while_normalizing_fails_in_the_loader_with_its_error(make_loading_pipeline):
    p = make_loading_pipeline()
    run_ok(p, [{"id": -1, "name": "first", "tags": []}], table_name="events")
    _check_ids_below(p, "events", 5000)
    info = p.run(_events(10_000), table_name="events")
    assert info.has_failed_jobs
    failed = [job for package in info.load_packages for job in package.jobs if job.state == "failed"]
    assert failed and all(job.table_name == "events" for job in failed)
    assert "below_5000" in (failed[0].error or "")
    assert query(p, f"SELECT max(id) FROM {ident(p, 'events')}")[0][0] < 5000  # nothing past the check
    assert len(p.pending_packages()) == 1  # kept on disk to retry once the constraint is fixed
    _check_ids_below(p, "events", 5000, drop=True)
    p.retry_failed_jobs()
    run_ok(p)
    assert count(p, "events") == 10_001
    assert query(p, f"SELECT count(DISTINCT id) FROM {ident(p, 'events')}")[0][0] == 10_001


def test_loading_while_normalizing_can_be_turned_off(make_loading_pipeline):
    p = make_loading_pipeline(load_while_normalizing=False)
    seen: list[int] = []

    def look(_: int) -> None:
        time.sleep(1.0)
        seen.append(_rows_loaded(p, "events", timeout=0))

    run_ok(p, _events(20_000, during=look, at=15_000), table_name="events")
    assert seen == [0]
    assert count(p, "events") == 20_000


def test_tables_and_columns_an_abandoned_run_created_stay_known(make_loading_pipeline):
    """The rows go, the DDL stays (empty columns): the pipeline's schema keeps it, so a later run
    with another type for the same key uses a variant column instead of failing its load."""
    p = make_loading_pipeline()

    def fail(_: int) -> None:
        _rows_loaded(p, "events", at_least=2)
        raise RuntimeError("the source broke")

    with pytest.raises(Exception, match="the source broke"):
        p.run(_events(20_000, during=fail, at=15_000, extra_from=0), table_name="events")
    assert count(p, "events") == 0
    assert table_columns(p, "events")["score"] == "double"
    assert p.schema.tables["events"].columns["score"].data_type == "double"
    run_ok(p, [{"id": 1, "name": "a", "score": "high"}, {"id": 2, "name": "b", "score": 2.5}], table_name="events")
    assert query(p, f"SELECT id, score, score__v_text FROM {ident(p, 'events')} ORDER BY id") == [
        (1, None, "high"), (2, 2.5, None)]


def test_with_tables_adds_new_tables_and_columns_and_keeps_what_was_known() -> None:
    """What an abandoned package created joins the pipeline's schema; nothing known changes type."""
    schema = Schema("s", {"events": Table("events", {"id": Column("id", "bigint")})})
    created = [Table("events__tags", {"value": Column("value", "text")}, parent="events"),
               Table("events", {"id": Column("id", "text"), "score": Column("score", "double")})]
    out = with_tables(schema, created)
    assert {n: c.data_type for n, c in out.tables["events"].columns.items()} == {"id": "bigint", "score": "double"}
    assert out.tables["events__tags"].parent == "events"
    assert out.root_of("events__tags").name == "events"
    assert "score" not in schema.tables["events"].columns  # the input is not changed


# -- a connection lost in the middle of a file loading while normalizing ----------------------------

def _end_postgres_load(client: Any, p: loadbay.Pipeline, table: str) -> bool:
    """Through ``client`` (a session of its own), terminate the session copying into ``table`` now;
    True if there was one."""
    mark = client.placeholder()
    pattern = f"COPY {ident(p, p.dataset_name)}.{ident(p, table)}%"
    rows = client.execute_sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'loadbay' AND state = "
                              f"'active' AND pid <> pg_backend_pid() AND query LIKE {mark}", pattern)
    return any(client.execute_sql(f"SELECT pg_terminate_backend({mark})", pid) == [(True,)] for (pid,) in rows or [])


def _end_mysql_load(client: Any, p: loadbay.Pipeline, table: str) -> bool:
    """Through ``client``, kill the connection running ``LOAD DATA`` into ``table`` now; True if there was one."""
    mark = client.placeholder()
    pattern = f"LOAD DATA LOCAL INFILE % INTO TABLE {ident(p, p.dataset_name)}.{ident(p, table)} %"
    rows = client.execute_sql("SELECT id FROM information_schema.processlist WHERE id <> CONNECTION_ID() "
                              f"AND info LIKE {mark}", pattern)
    for (connection_id,) in rows or []:
        client.execute_sql(f"KILL CONNECTION {int(connection_id)}")
    return bool(rows)


END_LOAD: dict[str, Callable[[Any, loadbay.Pipeline, str], bool]] = {"postgres": _end_postgres_load,
                                                                      "mysql": _end_mysql_load}
"""By sqlglot dialect: how to end, from another session, the session loading a file into a table."""

MYSQL_WRITE_TIMEOUT = 10
"""Seconds pymysql waits to send a piece of the file (``write_timeout``) in the loading session of a MySQL
dialect. A ``KILL CONNECTION`` that lands while the server's socket has stopped taking data (zero window)
closes it without a reset: the client's send of the next piece then waits until the kernel gives up on the
half-closed connection (about 110 s on Linux: ``tcp_fin_timeout`` and the zero-window probes' back-off), in
a third to a half of the kills here, before the error the retry needs. The timeout ends that wait with the same error
(2006, server gone); it does not change which sessions are killed or what is checked."""


def _noticing_a_lost_connection(setup: Any, dialect: str) -> dict[str, Any]:
    """Destination settings for the killed session: a MySQL-dialect server URL with ``write_timeout``."""
    credentials = setup.credentials
    if dialect != "mysql" or not isinstance(credentials, str) or not credentials.startswith(("mysql", "mariadb")) \
            or "write_timeout=" in credentials:
        return {}
    return {"credentials": f"{credentials}{'&' if '?' in credentials else '?'}write_timeout={MYSQL_WRITE_TIMEOUT}"}


def _flat(n: int, *, during: Callable[[int], None], at: int) -> Iterator[dict[str, Any]]:
    for i in range(n):
        if i == at:
            during(i)
        yield {"id": i, "name": f"row {i}", "v": i / 3}


def test_a_connection_lost_while_normalizing_is_retried_by_the_loader(make_loading_pipeline, caplog,
                                                                      destination_setup, destination_capabilities):
    """The session loading a file is terminated while the source still produces: the Loader's retry
    (the one every job has) runs the file again on a new connection, without loss or duplicates."""
    caplog.set_level(logging.INFO, logger="loadbay")
    batch = 5_000
    settings = _noticing_a_lost_connection(destination_setup, destination_capabilities.sqlglot_dialect)
    for attempt in range(3):
        size = 100_000 * 2 ** attempt  # rows a file: bigger files load longer, to be caught in the middle
        p = make_loading_pipeline(file_max_items=size, batch_size=batch, destination_settings=settings)
        end_load = END_LOAD.get(p.capabilities.sqlglot_dialect)
        if end_load is None:
            pytest.skip(f"no way known to end a loading session on dialect {p.capabilities.sqlglot_dialect!r}")
        n, table = 3 * size, "flat"
        caplog.clear()
        killed: list[bool] = []

        def kill(_: int, p: loadbay.Pipeline = p, end_load: Callable[..., bool] = end_load) -> None:
            deadline = time.monotonic() + 10  # file 00000 closed two batches ago: it is loading now
            with p.sql_client() as client:
                while not killed and time.monotonic() < deadline:
                    killed.extend([True] if end_load(client, p, table) else [])
                    time.sleep(0.002)

        file_format = "csv" if "csv" in p.capabilities.supported_loader_file_formats else None  # one statement
        info = run_ok(p, _flat(n, during=kill, at=size + 2 * batch), table_name=table, loader_file_format=file_format)
        assert info.row_counts == {table: n}
        assert query(p, f"SELECT count(*), count(DISTINCT id), sum(id) FROM {ident(p, table)}") == [
            (n, n, n * (n - 1) // 2)]
        if killed:
            break
    assert killed, "the file loading while normalizing finished before its session could be ended, three times"
    retries = [r.getMessage() for r in caplog.records
               if r.name == "loadbay.load" and "transient error, retry" in r.getMessage()]
    assert retries, [r.getMessage() for r in caplog.records]
    assert all(m.startswith(f"job {table}.00000.") for m in retries), retries  # the first file's job was retried
    assert not p.pending_packages()
    assert count(p, "_lb_loads") >= 1


def test_a_feed_without_a_client_leaves_every_file_to_the_loader(make_loading_pipeline, monkeypatch, caplog):
    """The feed's own client cannot be made: the feed ends, the package does not fail, and every file
    loads after normalizing, once."""
    p = make_loading_pipeline()
    make_client = p.destination.client

    def client(config: Any) -> Any:
        if threading.current_thread().name.startswith("load-feed"):
            raise RuntimeError("no client for the feed")
        return make_client(config)

    monkeypatch.setattr(p.destination, "client", client)
    with caplog.at_level(logging.WARNING, logger="loadbay.load"):
        run_ok(p, _events(5_000), table_name="events")
    assert count(p, "events") == 5_000
    assert query(p, f"SELECT count(DISTINCT id) FROM {ident(p, 'events')}")[0][0] == 5_000
    assert any("no client for the feed" in r.getMessage() for r in caplog.records)
