"""PostgreSQL errors against a real server, beyond what classify calls them (that is the conformance suite's
table of real errors, destinations/testing/error_tables.py): a reconnect restoring the session, a backend
killed mid-COPY and lock timeouts retried by the loader. Nothing is mocked.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

import loadbay
from loadbay.common.exceptions import DestinationTransientError
from loadbay.destinations.testing.conformance.helpers import count, query, run_ok
from tests.integration.pg_helpers import _raw, pg_url
from tests.integration.support import run_while_held
from tests.integration.pg_helpers import pg, postgres_server  # noqa: F401 - fixtures


# -- 1. a reconnect after the server ended the session ---------------------------------------------
# (what classify calls each real error: destinations/testing/conformance/test_error_classes.py)

def test_reconnect_after_a_terminated_backend_restores_the_session_settings(pg):
    p = pg()
    with p.sql_client() as client:
        client.create_dataset()
        pid = client.execute_sql("SELECT pg_backend_pid()")[0][0]
        admin = _raw()
        try:
            with admin.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                assert cur.fetchone() == (True,)
        finally:
            admin.close()
        with pytest.raises(DestinationTransientError):
            client.execute_sql("SELECT 1")
        client.reconnect()
        assert client.execute_sql("SELECT pg_backend_pid() <> %s", pid) == [(True,)]
        assert client.execute_sql("SHOW TIME ZONE") == [("UTC",)]
        assert client.execute_sql("SELECT current_schema()") == [(p.dataset_name,)]


# -- 2. a backend terminated in the middle of COPY ------------------------------------------------

def _kill_copy_once(dataset: str, table: str, stop: threading.Event, killed: list[int], deadline: float) -> None:
    conn = _raw()
    try:
        with conn.cursor() as cur:
            while not stop.is_set() and time.monotonic() < deadline:
                cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'loadbay' "
                            "AND state = 'active' AND query LIKE %s", (f'COPY "{dataset}"."{table}"%',))
                row = cur.fetchone()
                if row:
                    cur.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                    if cur.fetchone() == (True,):
                        killed.append(row[0])
                        return
                time.sleep(0.002)
    finally:
        conn.close()


def test_backend_terminated_during_copy_is_retried_without_loss_or_duplicates(pg, caplog):
    """Killed in the loader: its retry runs the job again. (A COPY killed while normalizing goes on:
    conformance/test_load_while_normalizing.py.)"""
    caplog.set_level(logging.INFO, logger="loadbay")
    p = pg(file_max_items=10_000_000, load_while_normalizing=False)  # one file, one COPY
    n = 300_000
    for attempt in range(3):
        table = f"flat_{attempt}"
        caplog.clear()
        stop, killed = threading.Event(), []
        killer = threading.Thread(target=_kill_copy_once, args=(p.dataset_name, table, stop, killed,
                                                                time.monotonic() + 60), daemon=True)
        killer.start()
        try:
            info = run_ok(p, ({"id": i, "name": f"row {i}", "v": i / 3} for i in range(n)),
                          table_name=table, loader_file_format="csv")
        finally:
            stop.set()
            killer.join(10)
        assert info.row_counts == {table: n}
        assert query(p, f'SELECT count(*), count(DISTINCT id), sum(id) FROM "{table}"') == [(n, n, n * (n - 1) // 2)]
        if killed:
            break
        n *= 2  # COPY ended before the poller saw it: try again with more rows, never pass vacuously
    assert killed, "COPY finished before it could be terminated, three times"
    retries = [r.getMessage() for r in caplog.records
               if r.name == "loadbay.load" and "transient error, retry" in r.getMessage()]
    assert retries, [r.getMessage() for r in caplog.records]
    assert all(m.startswith(f"job {table}.") for m in retries), retries  # the COPY job itself was retried
    assert not p.pending_packages()
    assert count(p, "_lb_loads") >= 1


def test_lock_timeout_during_load_is_retried_until_the_lock_goes(pg, caplog):
    caplog.set_level(logging.WARNING, logger="loadbay.load")
    url = pg_url({"options": "-c lock_timeout=150"})
    p = pg(credentials=url, max_retries=20, retry_backoff_seconds=0.02)
    run_ok(p, [{"id": 0}], table_name="t")
    holder = _raw()
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute(f'LOCK TABLE "{p.dataset_name}"."t" IN ACCESS EXCLUSIVE MODE')
    def release() -> None:
        holder.rollback()
        holder.close()

    info, retried = run_while_held(lambda: p.run([{"id": i} for i in range(1, 101)], table_name="t"), release, caplog)
    assert isinstance(info, loadbay.LoadInfo), info
    info.raise_on_failed_jobs()
    assert retried and "LockNotAvailable" in retried[0]
    assert query(p, "SELECT count(*), sum(id) FROM t") == [(101, 5050)]
