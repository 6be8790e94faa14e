"""SQLAlchemy destination errors on a real SQLite file and the real MariaDB server, beyond what classify calls
them (that is the conformance suite's table of real errors, destinations/testing/error_tables.py): percent
signs through pymysql, a reconnect restoring the session, and the loader retrying what is transient (a
connection killed during a load, a locked staging file) or giving up on a port nobody listens on.

Nothing is mocked. MariaDB tests skip with a reason when the server is unreachable (and fail under CI=true);
every test works on its own dataset.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

import pytest

import loadbay
from loadbay.common.exceptions import DestinationTransientError, LoadbayError
from tests.integration.sqlalchemy_support import closed_port, maria_raw, maria_url, n_rows, tbl
from tests.integration.sqlalchemy_support import lite, maria  # noqa: F401 - fixtures
from tests.integration.support import exception_chain, kill_maria_connection, run_while_held


# -- MariaDB ----------------------------------------------------------------------------------------------

def test_mariadb_percent_signs_without_and_with_parameters(maria):
    """pymysql formats every statement: a literal % must survive with and without bound parameters."""
    p = maria()
    with p.sql_client() as client:
        assert client.execute_sql("SELECT 'a%b', 'x' LIKE '%'") == [("a%b", 1)]
        assert client.execute_sql("SELECT CONCAT(%s, '%%')", "50") == [("50%",)]


def test_mariadb_reconnect_after_a_killed_connection_restores_the_session_settings(maria):
    p = maria()
    with p.sql_client() as client:
        client.create_dataset()
        kill_maria_connection(client.execute_sql("SELECT CONNECTION_ID()")[0][0])
        with pytest.raises(DestinationTransientError):
            client.execute_sql("SELECT 1")
        client.reconnect()
        # UTC and the dataset as default database, on the new connection
        assert client.execute_sql("SELECT @@session.time_zone, DATABASE()") == [("+00:00", p.dataset_name)]


def _kill_insert_once(dataset: str, table: str, killed: list[int], stop: threading.Event,
                      release: Any) -> None:
    """Wait for loadbay's INSERT or LOAD DATA into ``table`` (blocked by a table lock), kill its connection, release."""
    admin = maria_raw()
    try:
        with admin.cursor() as cur:
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                cur.execute("SELECT id FROM information_schema.processlist WHERE (info LIKE %s OR info LIKE %s) "
                            "AND id <> CONNECTION_ID()", (f"INSERT INTO `{dataset}`.`{table}`%",
                                                          f"LOAD DATA LOCAL INFILE %INTO TABLE `{dataset}`.`{table}`%"))
                found = cur.fetchone()
                if found:
                    cur.execute(f"KILL CONNECTION {int(found[0])}")
                    killed.append(int(found[0]))
                    return
                time.sleep(0.01)
    finally:
        release()
        admin.close()


def test_mariadb_connection_killed_during_load_is_retried_and_loads_every_row_once(maria, caplog):
    caplog.set_level(logging.WARNING, logger="loadbay.load")
    p = maria(max_retries=5)
    loadbay_rows = [{"id": i, "s": f"row {i}"} for i in range(2000)]
    run_ok = p.run([{"id": -1, "s": "first"}], table_name="t")
    run_ok.raise_on_failed_jobs()

    holder = maria_raw()
    with holder.cursor() as cur:
        cur.execute(f"LOCK TABLES `{p.dataset_name}`.`t` WRITE")  # the load's INSERT waits here

    def release() -> None:
        with holder.cursor() as c:
            c.execute("UNLOCK TABLES")

    killed: list[int] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_insert_once, args=(p.dataset_name, "t", killed, stop, release),
                              daemon=True)
    killer.start()
    try:
        info = p.run(loadbay_rows, table_name="t")
    finally:
        stop.set()
        killer.join(30)
        holder.close()
    info.raise_on_failed_jobs()
    assert killed, "the INSERT was never seen blocked"
    retries = [r.getMessage() for r in caplog.records if "transient error, retry" in r.getMessage()]
    assert retries and retries[0].startswith("job t."), retries
    assert info.row_counts == {"t": len(loadbay_rows)}
    assert p.pending_packages() == []
    n = len(loadbay_rows)
    with p.sql_client() as client:
        got = client.execute_sql(f"SELECT count(*), count(DISTINCT id), sum(id) FROM {client.quoted('t')} "
                                 "WHERE id >= 0")
        assert [tuple(int(v) for v in r) for r in got or []] == [(n, n, n * (n - 1) // 2)]
    assert n_rows(p, "t") == n + 1
    assert n_rows(p, "_lb_loads") == 2


def test_mariadb_closed_port_is_retried_then_given_up(maria):
    p = maria(credentials=maria_url(host="127.0.0.1", port=closed_port()))
    with pytest.raises(LoadbayError) as run_err:
        p.run([{"id": 1}], table_name="t")
    chain = exception_chain(run_err.value)
    assert any(isinstance(e, DestinationTransientError) for e in chain), chain


# -- SQLite -----------------------------------------------------------------------------------------------

def test_sqlite_locked_staging_during_merge_load_is_retried(lite, caplog):
    """A merge package loads into the attached staging file; while another process holds that file
    exclusively, preparing the load fails with "database is locked" and is retried until it goes."""
    caplog.set_level(logging.WARNING, logger="loadbay.load")
    p = lite(engine_args={"connect_args": {"timeout": 0.05}}, max_retries=30, retry_backoff_seconds=0.02)
    hints = {"table_name": "t", "write_disposition": "merge", "primary_key": "id"}
    p.run([{"id": 0, "v": "old"}, {"id": 1, "v": "old"}], **hints).raise_on_failed_jobs()
    with p.sql_client() as client:
        staging_file = client._sqlite_file(p.config.staging_dataset_name)
    assert staging_file.exists()
    holder = sqlite3.connect(staging_file, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    def release() -> None:
        holder.execute("ROLLBACK")
        holder.close()

    info, retried = run_while_held(lambda: p.run([{"id": i, "v": "new"} for i in range(1, 101)], **hints), release,
                                   caplog, timeout=20)
    assert isinstance(info, loadbay.LoadInfo), info
    info.raise_on_failed_jobs()
    assert retried and "database is locked" in retried[0], retried
    assert [tuple(r) for r in _sum(p)] == [(101, 5050)]
    assert _rows(p, "SELECT v, count(*) FROM {t} GROUP BY v ORDER BY v") == [("new", 100), ("old", 1)]


def _rows(p: loadbay.Pipeline, sql: str) -> list[tuple[Any, ...]]:
    with p.sql_client() as client:
        return [tuple(r) for r in client.execute_sql(sql.format(t=tbl(p, "t"))) or []]


def _sum(p: loadbay.Pipeline) -> list[tuple[Any, ...]]:
    with p.sql_client() as client:
        return client.execute_sql(f"SELECT count(*), sum(id) FROM {tbl(p, 't')}") or []
