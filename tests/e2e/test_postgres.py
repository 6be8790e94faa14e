"""PostgreSQL-specific behaviour against a real server: SQLSTATE classification, a backend killed mid-COPY,
lock timeouts retried, long identifiers, upsert in both syntaxes, staging-optimized replace, ALTER TABLE
on a later run, and credentials that never show their password.

Every test uses its own dataset (schema) and drops it and its ``_staging`` twin afterwards. Nothing is
mocked: every error classified here was raised by the server (or by libpq talking to it).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2 import sql as pg_sql

import loadbay
from common.exceptions import (LoadbayError, DestinationError, DestinationTerminalError, DestinationTransientError,
                               DestinationUndefinedRelation)
from destinations.postgres.sql_client import PostgresSqlClient
from destinations.testing.conformance.helpers import count, query, run_ok
from destinations.testing.setups import POSTGRES_URL, require_server
from tests.e2e.pg_helpers import drop_schemas

MAX_IDENT = 63


def pg_url(query: dict[str, str] | None = None, **changes: Any) -> str:
    """POSTGRES_URL with some parts changed (username, password, port, database, query options)."""
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    if changes:
        url = url.set(**changes)
    if query:
        url = url.update_query_dict(query)
    return url.render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def _postgres_server() -> None:
    require_server("postgres")


def _raw() -> Any:
    """A psycopg2 connection of the test itself (not loadbay's), in autocommit."""
    conn = psycopg2.connect(POSTGRES_URL, application_name="loadbay_tests")
    conn.autocommit = True
    return conn


def _drop_schemas(*names: str) -> None:
    drop_schemas(*names)


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Callable[..., loadbay.Pipeline]]:
    """``pg(name=..., dataset_name=None, upsert_syntax=None, credentials=POSTGRES_URL, pipelines_dir=None,
    **settings)``: a postgres pipeline on a fresh dataset, dropped with its staging twin afterwards."""
    datasets: list[str] = []

    def make(name: str = "pg_test", dataset_name: str | None = None, upsert_syntax: str | None = None,
             credentials: str = POSTGRES_URL, pipelines_dir: Path | None = None, **settings: Any) -> loadbay.Pipeline:
        dataset = dataset_name or f"ds_{uuid.uuid4().hex[:12]}"
        config = {"upsert_syntax": upsert_syntax} if upsert_syntax else {}
        destination = loadbay.destination("postgres", credentials=credentials, **config)
        settings.setdefault("retry_backoff_seconds", 0.01)
        p = loadbay.pipeline(name, destination=destination, dataset_name=dataset,
                             pipelines_dir=pipelines_dir or tmp_path / "p", **settings)
        datasets.append(p.dataset_name)
        return p

    yield make
    for dataset in set(datasets):
        _drop_schemas(dataset, dataset + "_staging")


def live_columns(p: loadbay.Pipeline, table: str, schema: str | None = None) -> dict[str, tuple[Any, ...]]:
    """column → (data_type, character_maximum_length, numeric_precision, numeric_scale, datetime_precision)."""
    rows = query(p, "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, "
                    "datetime_precision FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                    "ORDER BY ordinal_position", schema or p.dataset_name, table)
    return {r[0]: tuple(r[1:]) for r in rows}


def live_tables(p: loadbay.Pipeline, schema: str | None = None) -> set[str]:
    return {r[0] for r in query(p, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                 schema or p.dataset_name)}


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


def make_url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    return make_url(url).password  # type: ignore[return-value]


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once the socket closes


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


def test_backend_terminated_during_copy_is_retried_without_loss_or_duplicates(pg, caplog):
    caplog.set_level(logging.WARNING, logger="loadbay.load")
    p = pg(file_max_items=10_000_000)  # one file, one COPY
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


# -- 5. long identifiers ----------------------------------------------------------------------------

LONG_TABLE = "events_" + "t" * 93
LONG_COLUMN = "measurement_" + "c" * 88


def test_long_table_and_column_names_are_shortened_deterministically(pg, tmp_path):
    assert len(LONG_TABLE) == 100 and len(LONG_COLUMN) == 100
    p = pg()
    run_ok(p, [{"id": 1, LONG_COLUMN: "first", "items": [1, 2]}], table_name=LONG_TABLE)
    tables = live_tables(p) - {"_lb_loads", "_lb_version", "_lb_pipeline_state"}
    assert len(tables) == 2, tables
    child = next(t for t in tables if "_lb_parent_id" in live_columns(p, t))
    root = next(t for t in tables if t != child)
    for name in tables:
        assert len(name.encode()) <= MAX_IDENT, name
    assert root.startswith("events_ttt")
    columns = live_columns(p, root)
    long_cols = [c for c in columns if c.startswith("measurement_")]
    assert len(long_cols) == 1 and len(long_cols[0].encode()) <= MAX_IDENT
    column = long_cols[0]

    # the same pipeline again, then a pipeline with no local state and another name (so nothing is restored)
    run_ok(p, [{"id": 2, LONG_COLUMN: "second", "items": [3]}], table_name=LONG_TABLE)
    fresh = pg(name="pg_other", dataset_name=p.dataset_name, pipelines_dir=tmp_path / "elsewhere")
    run_ok(fresh, [{"id": 3, LONG_COLUMN: "third", "items": [4]}], table_name=LONG_TABLE)

    assert live_tables(p) - {"_lb_loads", "_lb_version", "_lb_pipeline_state"} == tables
    assert [c for c in live_columns(p, root) if c.startswith("measurement_")] == [column]
    assert query(p, f'SELECT id, "{column}" FROM "{root}" ORDER BY id') == [(1, "first"), (2, "second"), (3, "third")]
    assert query(p, f'SELECT count(*) FROM "{child}"') == [(4,)]
    assert query(p, f'SELECT count(*) FROM "{child}" c WHERE NOT EXISTS '
                    f'(SELECT 1 FROM "{root}" r WHERE r._lb_id = c._lb_parent_id)') == [(0,)]


def test_long_names_sharing_a_prefix_stay_distinct(pg):
    prefix = "shared_prefix_" + "p" * 46
    assert len(prefix) == 60
    a, b = prefix + "a" * 40, prefix + "b" * 40
    p = pg()
    run_ok(p, [{"id": 1, a: "A", b: "B"}], table_name=a)
    run_ok(p, [{"id": 2, a: "A2", b: "B2"}], table_name=b)
    tables = sorted(live_tables(p) - {"_lb_loads", "_lb_version", "_lb_pipeline_state"})
    assert len(tables) == 2 and tables[0] != tables[1]
    for table in tables:
        cols = [c for c in live_columns(p, table) if c.startswith("shared_prefix_")]
        assert len(cols) == 2 and cols[0] != cols[1], cols
        assert all(len(c.encode()) <= MAX_IDENT for c in cols + [table])
    holding: dict[str, str] = {}  # value → the column it landed in
    for table in tables:
        cols = sorted(c for c in live_columns(p, table) if c.startswith("shared_prefix_"))
        row = query(p, f'SELECT id, "{cols[0]}", "{cols[1]}" FROM "{table}"')
        assert len(row) == 1
        holding.update({row[0][1]: cols[0], row[0][2]: cols[1]})
    assert set(holding) == {"A", "B", "A2", "B2"}
    assert holding["A"] != holding["B"]
    # the same source key gets the same column name in both tables
    assert holding["A"] == holding["A2"] and holding["B"] == holding["B2"]


def test_multibyte_long_names_fit_63_bytes(pg):
    name = "größe_" + "ü" * 94
    assert len(name) == 100 and len(name.encode()) > 190
    p = pg()
    run_ok(p, [{"id": 1, name: 1}], table_name=name)
    run_ok(p, [{"id": 2, name: 2}], table_name=name)
    tables = live_tables(p) - {"_lb_loads", "_lb_version", "_lb_pipeline_state"}
    assert len(tables) == 1
    table = tables.pop()
    assert len(table.encode()) <= MAX_IDENT and table.startswith("größe_ü")
    cols = [c for c in live_columns(p, table) if c.startswith("größe")]
    assert len(cols) == 1 and len(cols[0].encode()) <= MAX_IDENT
    assert query(p, f'SELECT id, "{cols[0]}" FROM "{table}" ORDER BY id') == [(1, 1), (2, 2)]


def test_long_dataset_name_keeps_staging_apart(pg):
    p = pg(dataset_name=f"ds_{uuid.uuid4().hex[:12]}_" + "d" * 90)
    assert len(p.dataset_name.encode()) <= MAX_IDENT
    run_ok(p, [{"id": 1, "v": 0}], table_name="t", write_disposition="merge", primary_key="id")
    run_ok(p, [{"id": 1, "v": 1}, {"id": 2, "v": 1}], table_name="t", write_disposition="merge", primary_key="id")
    with p.sql_client() as client:
        rows = client.execute_sql(f"SELECT id, v FROM {client.quoted('t')} ORDER BY id") \
            if client.table_columns(["t"]) else None
    assert rows == [(1, 1), (2, 1)]
    staging = p.config.staging_dataset_name
    assert len(staging.encode()) <= MAX_IDENT and staging != p.dataset_name


# -- 6. upsert and staging-optimized replace ----------------------------------------------------------

UPSERT = {"disposition": "merge", "strategy": "upsert"}
each_syntax = pytest.mark.parametrize("syntax", ["merge", "on_conflict"])


def _staging_tables(p: loadbay.Pipeline) -> set[str]:
    return live_tables(p, p.dataset_name + "_staging")


@each_syntax
def test_upsert_updates_inserts_and_keeps_the_last_duplicate(pg, syntax):
    p = pg(upsert_syntax=syntax)
    run_ok(p, [{"id": 1, "v": "a", "n": 1}, {"id": 2, "v": "b", "n": 2}], table_name="t",
           write_disposition=UPSERT, primary_key="id")
    run_ok(p, [{"id": 2, "v": "b-old", "n": 20}, {"id": 3, "v": "c-old", "n": 30}, {"id": 2, "v": "b2", "n": 21},
               {"id": 3, "v": "c2", "n": 31}], table_name="t", write_disposition=UPSERT, primary_key="id")
    assert query(p, "SELECT id, v, n FROM t ORDER BY id") == [(1, "a", 1), (2, "b2", 21), (3, "c2", 31)]
    # the same rows again change nothing
    run_ok(p, [{"id": 3, "v": "c2", "n": 31}], table_name="t", write_disposition=UPSERT, primary_key="id")
    assert query(p, "SELECT id, v, n FROM t ORDER BY id") == [(1, "a", 1), (2, "b2", 21), (3, "c2", 31)]
    assert query(p, "SELECT count(DISTINCT _lb_load_id) FROM t") == [(3,)]
    assert _staging_tables(p) == set()
    indexes = query(p, "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 't'", p.dataset_name)
    if syntax == "on_conflict":
        assert any("UNIQUE" in d and "(id)" in d for (d,) in indexes), indexes


@each_syntax
def test_upsert_compound_key(pg, syntax):
    p = pg(upsert_syntax=syntax)
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": ["a", "b"]}
    run_ok(p, [{"a": 1, "b": 1, "v": "x"}, {"a": 1, "b": 2, "v": "y"}, {"a": 2, "b": 1, "v": "z"}], **hints)
    run_ok(p, [{"a": 1, "b": 2, "v": "Y"}, {"a": 2, "b": 2, "v": "w"}, {"a": 2, "b": 2, "v": "W"}], **hints)
    assert query(p, "SELECT a, b, v FROM t ORDER BY a, b") == [(1, 1, "x"), (1, 2, "Y"), (2, 1, "z"), (2, 2, "W")]


def _children(p: loadbay.Pipeline) -> dict[int, list[str]]:
    rows = query(p, f'SELECT t.id, c.{_q("value")} FROM t JOIN t__items c ON c._lb_parent_id = t._lb_id '
                    "ORDER BY t.id, c._lb_list_idx")
    out: dict[int, list[str]] = {}
    for root_id, value in rows:
        out.setdefault(root_id, []).append(value)
    return out


def _q(name: str) -> str:
    return f'"{name}"'


def _orphans(p: loadbay.Pipeline, child: str) -> int:
    return int(query(p, f'SELECT count(*) FROM "{child}" c WHERE NOT EXISTS '
                        "(SELECT 1 FROM t WHERE t._lb_id = c._lb_root_id)")[0][0])


@each_syntax
def test_upsert_replaces_children_of_updated_roots_only(pg, syntax):
    p = pg(upsert_syntax=syntax)
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": "id"}
    run_ok(p, [{"id": 1, "items": ["a", "b"], "tags": [{"k": "t1"}]}, {"id": 2, "items": ["c"], "tags": [{"k": "t2"}]},
               {"id": 3, "items": ["d"]}], **hints)
    untouched = query(p, "SELECT c._lb_id, c.value FROM t__items c JOIN t ON c._lb_root_id = t._lb_id WHERE t.id = 2")
    run_ok(p, [{"id": 1, "items": ["x"]}, {"id": 3, "items": []}, {"id": 4, "items": ["n1", "n2"]}], **hints)
    assert _children(p) == {1: ["x"], 2: ["c"], 4: ["n1", "n2"]}
    assert query(p, "SELECT c._lb_id, c.value FROM t__items c JOIN t ON c._lb_root_id = t._lb_id "
                    "WHERE t.id = 2") == untouched
    tags = query(p, "SELECT t.id, c.k FROM t JOIN t__tags c ON c._lb_parent_id = t._lb_id ORDER BY t.id")
    assert tags == [(2, "t2")]  # id 1 came back without tags: its old tags went
    assert count(p, "t") == 4
    assert _orphans(p, "t__items") == 0 and _orphans(p, "t__tags") == 0


@each_syntax
def test_upsert_hard_delete_removes_row_and_children(pg, syntax):
    p = pg(upsert_syntax=syntax)
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": "id",
             "columns": {"deleted": {"hard_delete": True}}}
    run_ok(p, [{"id": 1, "v": "a", "items": ["a1", "a2"]}, {"id": 2, "v": "b", "items": ["b1"]},
               {"id": 3, "v": "c", "items": ["c1"]}], **hints)
    run_ok(p, [{"id": 1, "deleted": True}, {"id": 2, "v": "b2", "deleted": False, "items": ["b2"]},
               {"id": 9, "v": "never", "deleted": True}, {"id": 5, "v": "new", "items": ["e1"]}], **hints)
    assert query(p, "SELECT id, v FROM t ORDER BY id") == [(2, "b2"), (3, "c"), (5, "new")]
    assert _children(p) == {2: ["b2"], 3: ["c1"], 5: ["e1"]}
    assert _orphans(p, "t__items") == 0
    # delete then re-insert the same key in one batch: the last row wins
    run_ok(p, [{"id": 3, "deleted": True}, {"id": 3, "v": "c-again", "items": ["c9"]}], **hints)
    assert query(p, "SELECT id, v FROM t WHERE id = 3") == [(3, "c-again")]
    assert _children(p)[3] == ["c9"]
    assert _staging_tables(p) == set()


@pytest.mark.parametrize("syntax,table", [
    ("merge", "order"), ("merge", "excluded"), ("merge", "_lb_s"), ("on_conflict", "order"), ("on_conflict", "_lb_t"),
    ("on_conflict", "excluded"),
])
def test_upsert_into_tables_and_columns_named_like_sql(pg, syntax, table):
    p = pg(upsert_syntax=syntax)
    for i in range(2):
        run_ok(p, [{"id": 1, "select": i, "excluded": f"e{i}", "items": [i]},
                   {"id": 2 + i, "select": i, "excluded": "x", "items": [i]}],
               table_name=table, write_disposition=UPSERT, primary_key="id")
    assert query(p, f'SELECT id, "select", "excluded" FROM "{table}" ORDER BY id') == [
        (1, 1, "e1"), (2, 0, "x"), (3, 1, "x")]
    assert count(p, f"{table}__items") == 3


def test_auto_upsert_syntax_follows_the_server_version(pg):
    p = pg()
    client = p.destination.client(p.config)
    with client:
        version = int(client.sql_client.execute_sql("SHOW server_version_num")[0][0])
        assert client.upsert_syntax() == ("merge" if version >= 150000 else "on_conflict")
    for syntax in ("merge", "on_conflict"):
        explicit = pg(upsert_syntax=syntax)
        assert explicit.destination.client(explicit.config).upsert_syntax() == syntax


@each_syntax
def test_failed_upsert_rolls_back_every_statement_and_resumes(pg, syntax):
    p = pg(upsert_syntax=syntax)
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": "id"}
    run_ok(p, [{"id": 1, "v": "a", "items": ["a1"]}, {"id": 2, "v": "b", "items": ["b1"]}], **hints)
    with p.sql_client() as client:
        client.execute_sql(f"ALTER TABLE {client.quoted('t')} ADD CONSTRAINT no_bad CHECK (v <> 'bad')")
    before = query(p, "SELECT id, v, _lb_id FROM t ORDER BY id"), _children(p)
    with pytest.raises(LoadbayError) as err:
        p.run([{"id": 1, "v": "a2", "items": ["a2"]}, {"id": 3, "v": "bad", "items": ["c1"]}], **hints)
    assert "no_bad" in str(err.value)
    # child deletes and inserts ran before the failing statement: all of it rolled back, nothing marked done
    assert (query(p, "SELECT id, v, _lb_id FROM t ORDER BY id"), _children(p)) == before
    assert count(p, "_lb_loads") == 1
    assert len(p.pending_packages()) == 1
    with p.sql_client() as client:
        client.execute_sql(f"ALTER TABLE {client.quoted('t')} DROP CONSTRAINT no_bad")
    run_ok(p)  # resumes the pending package
    assert query(p, "SELECT id, v FROM t ORDER BY id") == [(1, "a2"), (2, "b"), (3, "bad")]
    assert _children(p) == {1: ["a2"], 2: ["b1"], 3: ["c1"]}
    assert count(p, "_lb_loads") == 2 and p.pending_packages() == []
    assert _staging_tables(p) == set()


def test_replace_staging_optimized(pg):
    p = pg()
    replace = {"disposition": "replace", "strategy": "staging-optimized"}
    run_ok(p, [{"id": 1, "items": ["a", "b"]}, {"id": 2, "items": ["c"]}], table_name="t", write_disposition=replace)
    assert query(p, "SELECT count(*) FROM t") == [(2,)]  # works on the first run
    assert count(p, "t__items") == 3
    run_ok(p, [{"id": 3, "items": ["d"]}], table_name="t", write_disposition=replace)
    assert query(p, "SELECT id FROM t") == [(3,)]
    assert _children(p) == {3: ["d"]}
    assert _orphans(p, "t__items") == 0
    # the tables live in the dataset (not in staging) and behave as ordinary tables afterwards
    assert {"t", "t__items"} <= live_tables(p)
    assert not ({"t", "t__items"} & _staging_tables(p))
    assert query(p, f'SELECT count(*) FROM "{p.dataset_name}".t') == [(1,)]
    assert query(p, "SELECT count(*) FROM t WHERE id = 3") == [(1,)]
    with p.sql_client() as client:  # an ordinary table: writable, alterable
        client.execute_sql(f"INSERT INTO {client.quoted('t')} (_lb_load_id, _lb_id, id) VALUES ('x', 'y', 99)")
        client.execute_sql(f"ALTER TABLE {client.quoted('t')} ADD COLUMN by_hand text")
    assert count(p, "t") == 2
    run_ok(p, [{"id": 5, "v": "new column"}], table_name="t", write_disposition=replace)  # no child rows
    assert query(p, "SELECT id, v FROM t") == [(5, "new column")]
    assert count(p, "t__items") == 0  # replaced by an empty child table
    assert "by_hand" not in live_columns(p, "t")
    assert _staging_tables(p) == set()


@pytest.mark.parametrize("first", [{"disposition": "replace", "strategy": "staging-optimized"}, "merge"],
                         ids=["staging-optimized", "merge"])
def test_append_after_replace_keeps_child_rows(pg, first):
    p = pg()
    run_ok(p, [{"id": 1, "items": ["a"]}], table_name="t", write_disposition=first, primary_key="id")
    info = run_ok(p, [{"id": 2, "items": ["b", "c"]}], table_name="t", write_disposition="append")
    assert info.row_counts == {"t": 1, "t__items": 2}  # what LoadInfo says it loaded
    assert query(p, "SELECT id FROM t ORDER BY id") == [(1,), (2,)]
    assert _children(p) == {1: ["a"], 2: ["b", "c"]}


# -- 7. schema evolution and credentials ----------------------------------------------------------------

@pytest.mark.parametrize("disposition", ["append", "merge"])
def test_column_added_in_a_later_run(pg, disposition):
    p = pg()
    hints = {"table_name": "t", "write_disposition": disposition,
             "primary_key": "id" if disposition == "merge" else None}
    run_ok(p, [{"id": 1, "a": "x", "items": [{"k": 1}]}], **hints)
    before = live_columns(p, "t")
    assert "b" not in before
    run_ok(p, [{"id": 2, "a": "y", "b": "2024-05-06T07:08:09.123456Z", "c": {"x": 5}, "order": True,
                "items": [{"k": 2, "extra": "e"}]}], **hints)
    after = live_columns(p, "t")
    assert list(after)[:len(before)] == list(before)  # added at the end, nothing rebuilt
    assert after["b"][0] == "timestamp with time zone"
    assert after["c__x"][0] == "bigint"
    assert after["order"][0] == "boolean"
    assert live_columns(p, "t__items")["extra"][0] == "text"
    rows = query(p, 'SELECT id, a, b IS NULL, c__x, "order" FROM t ORDER BY id')
    assert rows == [(1, "x", True, None, None), (2, "y", False, 5, True)]
    assert query(p, "SELECT k, extra FROM t__items ORDER BY k") == [(1, None), (2, "e")]


def test_password_never_shown(pg, caplog):
    secret = "Pw-4xQ9zZ"
    if make_url_password(POSTGRES_URL):
        pytest.skip("needs a server with trust auth (any password accepted)")
    url = pg_url(password=secret)
    p = pg(credentials=url)  # trust auth: the server accepts any password
    info = run_ok(p, [{"id": 1}], table_name="t")
    credentials = p.config.credentials
    assert credentials.password == secret  # it was parsed, and used
    shown = [str(info), repr(info), repr(credentials), str(credentials), credentials.location(), repr(p)]
    for text in shown:
        assert secret not in text, text
    assert "***" in credentials.location()

    # the same pipeline (same local state) once the server is unreachable: retried, then given up
    caplog.set_level(logging.WARNING)
    port = _closed_port()
    closed = pg(credentials=pg_url(password=secret, host="127.0.0.1", port=port))
    with pytest.raises(LoadbayError) as err:
        closed.run([{"id": 1}], table_name="t")
    chain, exc = [], err.value
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, DestinationTransientError) for e in chain), chain
    texts = [str(e) for e in chain] + [repr(e) for e in chain] + [closed.config.credentials.location()]
    texts += [r.getMessage() for r in caplog.records]
    assert any(str(port) in t for t in texts)
    for text in texts:
        assert secret not in text, text


def test_password_in_url_query_never_shown(pg):
    secret = "Qry-7kW2pL"
    if make_url_password(POSTGRES_URL):
        pytest.skip("needs a server with trust auth (any password accepted)")
    url = pg_url({"password": secret})
    p = pg(credentials=url)
    info = run_ok(p, [{"id": 1}], table_name="t")  # libpq took the password from the query
    for text in (str(info), repr(p.config.credentials), p.config.credentials.location()):
        assert secret not in text, text
