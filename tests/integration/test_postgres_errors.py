"""PostgreSQL error handling against a real server: SQLSTATE classification of real errors, a backend
killed mid-COPY, lock timeouts retried. Nothing is mocked: every error classified here was raised by the
server (or by libpq talking to it).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql as pg_sql

import loadbay
from loadbay.common.exceptions import (DestinationError, DestinationTerminalError, DestinationTransientError,
                               DestinationUndefinedRelation)
from loadbay.destinations.postgres.sql_client import PostgresSqlClient
from loadbay.destinations.testing.conformance.helpers import count, query, run_ok
from tests.integration.pg_helpers import (_closed_port, _raw, pg_url)
from tests.integration.pg_helpers import pg, postgres_server  # noqa: F401 - fixtures


# -- 1. classification of real server errors -------------------------------------------------------

def _expect(client: PostgresSqlClient, sql: str, cls: type[DestinationError], pgcode: str | None) -> DestinationError:
    with pytest.raises(DestinationError) as err:
        client.execute_sql(sql)
    exc = err.value
    assert type(exc) is cls, (sql, type(exc), str(exc))
    assert isinstance(exc.orig, psycopg2.Error)
    if pgcode is not None:
        assert exc.orig.pgcode == pgcode, (sql, exc.orig.pgcode, str(exc.orig))
    assert exc.statement == sql
    assert "while running: " + sql in str(exc)
    return exc


STATEMENT_ERRORS = [
    ("syntax", "SELEC 1", DestinationTerminalError, "42601"),
    ("missing_table", "SELECT * FROM lb_no_such_table", DestinationUndefinedRelation, "42P01"),
    ("missing_schema_select", "SELECT * FROM lb_no_such_schema.t", DestinationUndefinedRelation, "42P01"),
    ("missing_schema_create", "CREATE TABLE lb_no_such_schema.t (a int)", DestinationUndefinedRelation, "3F000"),
    ("missing_column", "SELECT lb_no_such_column FROM {t}", DestinationTerminalError, "42703"),
    ("not_null", "INSERT INTO {t} (u) VALUES (1)", DestinationTerminalError, "23502"),
    ("integer_overflow", f"INSERT INTO {{t}} (a) VALUES ({2**40})", DestinationTerminalError, "22003"),
    ("numeric_overflow", "SELECT 1e400::numeric(5,2)", DestinationTerminalError, "22003"),
    ("unique", "INSERT INTO {t} (a, u) VALUES (1, 7), (2, 7)", DestinationTerminalError, "23505"),
    ("division_by_zero", "SELECT 1 / (SELECT count(*) FROM {t})", DestinationTerminalError, "22012"),
    ("bad_text_for_int", "SELECT 'x'::integer", DestinationTerminalError, "22P02"),
]


@pytest.mark.parametrize("sql,cls,pgcode", [e[1:] for e in STATEMENT_ERRORS], ids=[e[0] for e in STATEMENT_ERRORS])
def test_statement_errors_are_classified_by_sqlstate(pg, sql, cls, pgcode):
    p = pg()
    with p.sql_client() as client:
        client.create_dataset()
        table = client.quoted("tt")
        client.execute_sql(f"CREATE TABLE {table} (a integer NOT NULL, u integer UNIQUE)")
        exc = _expect(client, sql.format(t=table), cls, pgcode)
        if cls is DestinationTerminalError:
            assert not isinstance(exc, DestinationUndefinedRelation)
        assert not isinstance(exc, DestinationTransientError)
        # the connection is still usable after a statement error (autocommit: nothing left aborted)
        assert client.execute_sql(f"SELECT count(*) FROM {table}") == [(0,)]


def test_permission_denied_is_terminal(pg):
    role = f"lb_noperm_{uuid.uuid4().hex[:8]}"
    owner = pg()
    with owner.sql_client() as client:
        client.create_dataset()
        client.execute_sql(f"CREATE TABLE {client.quoted('secret')} (a integer)")
    admin = _raw()
    try:
        with admin.cursor() as cur:
            cur.execute(pg_sql.SQL("CREATE ROLE {} LOGIN").format(pg_sql.Identifier(role)))
        url = pg_url(username=role, password=None)
        p = pg(dataset_name=owner.dataset_name, credentials=url)
        with p.sql_client() as client:
            assert client.execute_sql("SELECT current_user") == [(role,)]
            exc = _expect(client, f"SELECT * FROM {client.quoted('secret')}", DestinationTerminalError, "42501")
            assert "permission denied" in str(exc)
            _expect(client, f"CREATE TABLE {client.quoted('mine')} (a integer)", DestinationTerminalError, "42501")
    finally:
        with admin.cursor() as cur:
            cur.execute(pg_sql.SQL("DROP ROLE IF EXISTS {}").format(pg_sql.Identifier(role)))
        admin.close()


def test_lock_timeout_is_transient(pg):
    p = pg()
    with p.sql_client() as client:
        client.create_dataset()
        table = client.quoted("locked")
        client.execute_sql(f"CREATE TABLE {table} (a integer)")
        holder = _raw()
        try:
            holder.autocommit = False
            with holder.cursor() as cur:
                cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            client.execute_sql("SET lock_timeout = '100ms'")
            _expect(client, f"SELECT * FROM {table}", DestinationTransientError, "55P03")
        finally:
            holder.rollback()
            holder.close()
        assert client.execute_sql(f"SELECT count(*) FROM {table}") == [(0,)]


def test_serialization_failure_is_transient(pg):
    p = pg()
    with p.sql_client() as client:
        client.create_dataset()
        table = client.quoted("rows")
        client.execute_sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, v integer)")
        client.execute_sql(f"INSERT INTO {table} VALUES (1, 0)")
        client.execute_sql("BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert client.execute_sql(f"SELECT v FROM {table} WHERE id = 1") == [(0,)]  # takes the snapshot
        other = _raw()
        try:
            with other.cursor() as cur:
                cur.execute(f"UPDATE {table} SET v = 1 WHERE id = 1")
        finally:
            other.close()
        _expect(client, f"UPDATE {table} SET v = 2 WHERE id = 1", DestinationTransientError, "40001")
        client.execute_sql("ROLLBACK")
        assert client.execute_sql(f"SELECT v FROM {table}") == [(1,)]


def test_deadlock_is_transient(pg):
    p = pg()
    with p.sql_client() as client:
        client.create_dataset()
        table = client.quoted("dl")
        client.execute_sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, v integer)")
        client.execute_sql(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
        other = _raw()
        other.autocommit = False
        blocked = threading.Event()
        other_error: list[BaseException] = []

        def other_side() -> None:
            try:
                with other.cursor() as cur:
                    cur.execute(f"UPDATE {table} SET v = 20 WHERE id = 1")  # waits for the client's row lock
            except BaseException as exc:  # noqa: BLE001 - reported below
                other_error.append(exc)

        try:
            with other.cursor() as cur:
                cur.execute("SET deadlock_timeout = '30s'")  # the deadlock is detected on the client's side
                cur.execute(f"UPDATE {table} SET v = 2 WHERE id = 2")
            client.execute_sql("SET deadlock_timeout = '50ms'")
            client.execute_sql("BEGIN")
            client.execute_sql(f"UPDATE {table} SET v = 1 WHERE id = 1")
            thread = threading.Thread(target=other_side, daemon=True)
            thread.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not blocked.is_set():
                waiting = client.execute_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'loadbay_tests' "
                    "AND wait_event_type = 'Lock'")
                if waiting and waiting[0][0]:
                    blocked.set()
                time.sleep(0.01)
            assert blocked.is_set(), "the other session never waited for the row lock"
            _expect(client, f"UPDATE {table} SET v = 1 WHERE id = 2", DestinationTransientError, "40P01")
            client.execute_sql("ROLLBACK")
            thread.join(10)
            assert not other_error, other_error
            other.commit()
        finally:
            other.close()
        assert sorted(client.execute_sql(f"SELECT id, v FROM {table}")) == [(1, 20), (2, 2)]


def test_terminated_backend_is_transient_and_reconnect_recovers(pg):
    p = pg()
    with p.sql_client() as client:
        pid = client.execute_sql("SELECT pg_backend_pid()")[0][0]
        admin = _raw()
        try:
            with admin.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                assert cur.fetchone() == (True,)
        finally:
            admin.close()
        with pytest.raises(DestinationTransientError) as err:
            client.execute_sql("SELECT 1")
        assert isinstance(err.value.orig, psycopg2.Error)
        assert err.value.statement == "SELECT 1"
        # the dead connection keeps failing transiently until the client reconnects
        with pytest.raises(DestinationTransientError):
            client.execute_sql("SELECT 2")
        client.reconnect()
        assert client.execute_sql("SELECT 3") == [(3,)]
        assert client.execute_sql("SHOW TIME ZONE") == [("UTC",)]  # session settings restored


def test_connection_refused_is_transient(pg):
    port = _closed_port()
    p = pg(credentials=pg_url(host="127.0.0.1", port=port))
    with pytest.raises(DestinationTransientError) as err:
        with p.sql_client():
            pass
    assert isinstance(err.value.orig, psycopg2.OperationalError)
    assert err.value.statement is None
    assert str(port) in str(err.value)


@pytest.mark.parametrize("url,needle", [
    ({"database": "lb_no_such_database"}, "lb_no_such_database"),
    ({"username": "lb_no_such_role", "password": None}, "lb_no_such_role"),
], ids=["wrong_database", "wrong_role"])
def test_refused_login_is_terminal(pg, url, needle):
    p = pg(credentials=pg_url(**url))
    with pytest.raises(DestinationError) as err:
        with p.sql_client():
            pass
    assert isinstance(err.value, DestinationTerminalError)
    assert not isinstance(err.value, DestinationTransientError)
    assert needle in str(err.value)
    assert isinstance(err.value.orig, psycopg2.OperationalError)


def test_connection_limit_reached_is_transient(pg):
    role = f"lb_limited_{uuid.uuid4().hex[:8]}"
    admin = _raw()
    holder = None
    try:
        with admin.cursor() as cur:
            cur.execute(pg_sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 1").format(pg_sql.Identifier(role)))
        url = pg_url(username=role, password=None)
        holder = psycopg2.connect(url)  # the role's only connection slot is taken
        p = pg(credentials=url)
        with pytest.raises(DestinationError) as err:
            with p.sql_client():
                pass
        assert "too many connections" in str(err.value)
        holder.close()
        _wait_for_no_backends(admin, role)  # a backend leaves a moment after its client hangs up
        with p.sql_client() as client:  # the slot is free again: retrying was the right call
            assert client.execute_sql("SELECT current_user") == [(role,)]
        # SQLSTATE 53300 (too_many_connections): classify's own class table calls class 53 transient
        assert isinstance(err.value, DestinationTransientError), type(err.value)
    finally:
        if holder is not None:
            holder.close()
        with admin.cursor() as cur:
            cur.execute(pg_sql.SQL("DROP ROLE IF EXISTS {}").format(pg_sql.Identifier(role)))
        admin.close()


def _wait_for_no_backends(admin: Any, role: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with admin.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (role,))
            if cur.fetchone()[0] == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"role {role}'s backend did not exit within {timeout}s")


def test_no_server_on_a_host_whose_name_contains_role_is_transient(pg, tmp_path):
    sockets = tmp_path / "payroles"
    sockets.mkdir()
    control = tmp_path / "payments"
    control.mkdir()
    kinds = {}
    for directory in (control, sockets):
        p = pg(credentials={"database": "test", "username": "postgres", "host": str(directory), "port": 5432})
        with pytest.raises(DestinationError) as err:
            with p.sql_client():
                pass
        assert "No such file or directory" in str(err.value)
        kinds[directory.name] = type(err.value)
    assert kinds["payments"] is DestinationTransientError
    assert kinds["payroles"] is DestinationTransientError


def test_connection_already_closed_is_transient(pg):
    """psycopg2's own InterfaceError (no SQLSTATE) on a connection closed underneath the client."""
    p = pg()
    with p.sql_client() as client:
        client.native_connection.close()
        with pytest.raises(DestinationTransientError) as err:
            client.execute_sql("SELECT 1")
        assert isinstance(err.value.orig, psycopg2.InterfaceError)


CLASSIFY_TABLE = [
    ("42P01", DestinationUndefinedRelation), ("3F000", DestinationUndefinedRelation),
    ("40001", DestinationTransientError), ("40P01", DestinationTransientError), ("55P03", DestinationTransientError),
    ("57P01", DestinationTransientError), ("57P02", DestinationTransientError), ("57P03", DestinationTransientError),
    ("08006", DestinationTransientError), ("08001", DestinationTransientError), ("08003", DestinationTransientError),
    ("53100", DestinationTransientError), ("53200", DestinationTransientError), ("53300", DestinationTransientError),
    ("22012", DestinationTerminalError), ("22003", DestinationTerminalError), ("22P02", DestinationTerminalError),
    ("23505", DestinationTerminalError), ("23502", DestinationTerminalError), ("23503", DestinationTerminalError),
    ("42601", DestinationTerminalError), ("42501", DestinationTerminalError), ("42703", DestinationTerminalError),
    ("42P07", DestinationTerminalError), ("P0001", DestinationTerminalError), ("XX000", DestinationTerminalError),
    ("55000", DestinationTerminalError), ("25P02", DestinationTerminalError),
]


def test_classify_table_on_real_server_exceptions():
    """Real psycopg2 exceptions, raised by the server with each SQLSTATE, through the pure classify()."""
    conn = _raw()
    seen: dict[str, type[DestinationError] | None] = {}
    try:
        for code, _ in CLASSIFY_TABLE:
            with pytest.raises(psycopg2.Error) as err:
                with conn.cursor() as cur:
                    cur.execute(f"DO $$ BEGIN RAISE EXCEPTION 'lb test' USING ERRCODE = '{code}'; END $$")
            assert err.value.pgcode == code
            seen[code] = PostgresSqlClient.classify(err.value)
        assert seen == dict(CLASSIFY_TABLE)
        with pytest.raises(psycopg2.Error) as err:  # an error psycopg2 reports without a SQLSTATE
            conn.close()
            conn.cursor()
        assert getattr(err.value, "pgcode", None) is None
        assert PostgresSqlClient.classify(err.value) is DestinationTransientError
    finally:
        conn.close()
    assert PostgresSqlClient.classify(ValueError("not a driver error")) is None
    assert PostgresSqlClient.classify(KeyError("x")) is None


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


@pytest.mark.parametrize("early", [False, True], ids=["loader", "early-load"])
def test_backend_terminated_during_copy_is_retried_without_loss_or_duplicates(pg, caplog, early):
    """Killed in the loader: its retry runs the job again. Killed in an early load (the file loads
    while normalizing ends): the file goes back to new_jobs and the loader runs it."""
    caplog.set_level(logging.INFO, logger="loadbay")
    p = pg(file_max_items=10_000_000, load_while_normalizing=early)  # one file, one COPY
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
    if early:
        retries = [r.getMessage() for r in caplog.records
                   if r.name == "loadbay.early_load" and "early loading stopped at" in r.getMessage()]
        assert retries and all(f"stopped at {table}." in m for m in retries), retries
    else:
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
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(p.run([{"id": i} for i in range(1, 101)], table_name="t"))
        except BaseException as exc:  # noqa: BLE001
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any("transient error, retry" in r.getMessage()
                                                      for r in caplog.records):
            time.sleep(0.01)
    finally:
        holder.rollback()
        holder.close()
    thread.join(30)
    assert result and isinstance(result[0], loadbay.LoadInfo), result
    result[0].raise_on_failed_jobs()
    retried = [r.getMessage() for r in caplog.records if "transient error, retry" in r.getMessage()]
    assert retried and "LockNotAvailable" in retried[0]
    assert query(p, "SELECT count(*), sum(id) FROM t") == [(101, 5050)]
