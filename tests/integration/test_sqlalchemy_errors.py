"""SQLAlchemy destination: ``classify`` on real errors from a real SQLite file and the real MariaDB server.

Every error here is raised by the database (or by the driver talking to it) through
``p.sql_client().execute_sql(...)`` or a real load; nothing is mocked. MariaDB tests skip with a reason
when the server is unreachable (and fail under CI=true); every test works on its own dataset.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

import pymysql
import pytest
import sqlalchemy.exc as sa_exc

import loadbay
from loadbay.common.exceptions import (DestinationError, DestinationTerminalError, DestinationTransientError,
                               DestinationUndefinedRelation, LoadbayError)
from loadbay.destinations.sqlalchemy.sql_client import SqlalchemySqlClient
from tests.integration.sqlalchemy_support import closed_port, lite, maria, maria_raw, maria_url, n_rows, tbl  # noqa: F401
from tests.integration.support import exception_chain


def _expect(client: Any, sql: str, cls: type[DestinationError]) -> DestinationError:
    """Run ``sql``; it must fail as exactly ``cls``, keeping SQLAlchemy's error as .orig and the statement."""
    with pytest.raises(DestinationError) as err:
        client.execute_sql(sql)
    exc = err.value
    assert type(exc) is cls, (sql, type(exc), str(exc))
    assert isinstance(exc.orig, sa_exc.DBAPIError), type(exc.orig)
    assert exc.statement == sql
    assert "while running: " + sql in str(exc)
    assert SqlalchemySqlClient.classify(exc.orig) is cls  # the pure function agrees with the boundary
    return exc


def _mysql_code(exc: DestinationError) -> int:
    driver_error = exc.orig.orig  # type: ignore[union-attr]
    assert isinstance(driver_error, pymysql.err.MySQLError), type(driver_error)
    return int(driver_error.args[0])


# -- MariaDB: statement errors by error code -----------------------------------------------------------

MARIADB_ERRORS = [
    ("no_such_table", "SELECT * FROM lb_no_such_table", DestinationUndefinedRelation, 1146),
    ("no_such_table_qualified", "SELECT * FROM lb_no_such_db.t", DestinationUndefinedRelation, 1146),
    ("unknown_database_use", "USE lb_no_such_db", DestinationUndefinedRelation, 1049),
    ("unknown_database_create", "CREATE TABLE lb_no_such_db.t (a int)", DestinationUndefinedRelation, 1049),
    ("syntax", "SELEC 1", DestinationTerminalError, 1064),
    ("unknown_column", "SELECT lb_no_such_column FROM {t}", DestinationTerminalError, 1054),
    ("not_null", "INSERT INTO {t} (a, u) VALUES (NULL, 1)", DestinationTerminalError, 1048),
    ("no_default", "INSERT INTO {t} (u) VALUES (1)", DestinationTerminalError, 1364),
    ("duplicate_key", "INSERT INTO {t} (a, u) VALUES (1, 7), (2, 7)", DestinationTerminalError, 1062),
    ("out_of_range", "INSERT INTO {t} (a, small) VALUES (1, 1000)", DestinationTerminalError, 1264),
    ("data_too_long", "INSERT INTO {t} (a, s) VALUES (1, 'abcdef')", DestinationTerminalError, 1406),
]


@pytest.mark.parametrize("sql,cls,code", [e[1:] for e in MARIADB_ERRORS], ids=[e[0] for e in MARIADB_ERRORS])
def test_mariadb_statement_errors_are_classified_by_error_code(maria, sql, cls, code):
    p = maria()
    with p.sql_client() as client:
        client.create_dataset()
        table = client.quoted("tt")
        client.execute_sql(f"CREATE TABLE {table} (a integer NOT NULL, u integer UNIQUE, small tinyint, "
                           "s varchar(3))")
        exc = _expect(client, sql.format(t=table), cls)
        assert _mysql_code(exc) == code, str(exc)
        assert not isinstance(exc, DestinationTransientError)
        if cls is DestinationTerminalError:
            assert not isinstance(exc, DestinationUndefinedRelation)
        # the connection is still usable, still on the dataset, and the failed insert left nothing behind
        assert client.execute_sql(f"SELECT count(*) FROM {table}") == [(0,)]
        assert client.execute_sql("SELECT DATABASE()") == [(p.dataset_name,)]


def test_mariadb_percent_signs_without_and_with_parameters(maria):
    """pymysql formats every statement: a literal % must survive with and without bound parameters."""
    p = maria()
    with p.sql_client() as client:
        assert client.execute_sql("SELECT 'a%b', 'x' LIKE '%'") == [("a%b", 1)]
        assert client.execute_sql("SELECT CONCAT(%s, '%%')", "50") == [("50%",)]


def test_mariadb_lock_wait_timeout_is_transient(maria):
    p = maria()
    with p.sql_client() as client:
        client.create_dataset()
        table = client.quoted("locked")
        client.execute_sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, v integer) ENGINE=InnoDB")
        client.execute_sql(f"INSERT INTO {table} VALUES (1, 0)")
        holder = maria_raw(autocommit=False)
        try:
            with holder.cursor() as cur:
                cur.execute(f"SELECT * FROM {table} WHERE id = 1 FOR UPDATE")
            client.execute_sql("SET SESSION innodb_lock_wait_timeout = 1")
            started = time.monotonic()
            exc = _expect(client, f"UPDATE {table} SET v = 1 WHERE id = 1", DestinationTransientError)
            assert _mysql_code(exc) == 1205
            assert time.monotonic() - started < 10
        finally:
            holder.rollback()
            holder.close()
        client.execute_sql(f"UPDATE {table} SET v = 2 WHERE id = 1")  # the lock is gone: retrying works
        assert client.execute_sql(f"SELECT v FROM {table}") == [(2,)]


def test_mariadb_deadlock_is_transient(maria):
    p = maria()
    with p.sql_client() as client:
        client.create_dataset()
        table, heavy = client.quoted("dl"), client.quoted("heavy")
        client.execute_sql(f"CREATE TABLE {table} (id integer PRIMARY KEY, v integer) ENGINE=InnoDB")
        client.execute_sql(f"CREATE TABLE {heavy} (id integer PRIMARY KEY) ENGINE=InnoDB")
        client.execute_sql(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
        other = maria_raw(autocommit=False)
        other_error: list[BaseException] = []

        def other_side() -> None:
            try:
                with other.cursor() as cur:
                    cur.execute(f"UPDATE {table} SET v = 20 WHERE id = 1")  # waits for the client's row lock
            except BaseException as exc:  # noqa: BLE001 - reported below
                other_error.append(exc)

        try:
            with other.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = 30")
                # the heavier transaction survives: InnoDB rolls back the one that changed fewer rows
                cur.executemany(f"INSERT INTO {heavy} VALUES (%s)", [(i,) for i in range(200)])
                cur.execute(f"UPDATE {table} SET v = 2 WHERE id = 2")
                other_id = other.thread_id()
            client.execute_sql("START TRANSACTION")
            client.execute_sql(f"UPDATE {table} SET v = 1 WHERE id = 1")
            thread = threading.Thread(target=other_side, daemon=True)
            thread.start()
            assert _waits_for_lock(other_id), "the other session never waited for the row lock"
            exc = _expect(client, f"UPDATE {table} SET v = 1 WHERE id = 2", DestinationTransientError)
            assert _mysql_code(exc) == 1213
            client.execute_sql("ROLLBACK")
            thread.join(10)
            assert not other_error, other_error
            other.commit()
        finally:
            other.close()
        # the client's transaction was rolled back whole; the other one committed
        assert sorted(client.execute_sql(f"SELECT id, v FROM {table}")) == [(1, 20), (2, 2)]


def _waits_for_lock(connection_id: int, timeout: float = 10) -> bool:
    """Whether the connection ``connection_id`` is seen waiting for a row lock (watched from a third one)."""
    watcher = maria_raw()
    try:
        with watcher.cursor() as cur:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                cur.execute("SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT' "
                            "AND trx_mysql_thread_id = %s", (int(connection_id),))
                if cur.fetchone()[0]:
                    return True
                time.sleep(0.01)
            return False
    finally:
        watcher.close()


def _kill(connection_id: int) -> None:
    admin = maria_raw()
    try:
        with admin.cursor() as cur:
            cur.execute(f"KILL CONNECTION {int(connection_id)}")
    finally:
        admin.close()


def test_mariadb_killed_connection_is_transient_and_reconnect_recovers(maria):
    p = maria()
    with p.sql_client() as client:
        client.create_dataset()
        assert client.execute_sql("SELECT DATABASE()") == [(p.dataset_name,)]
        _kill(client.execute_sql("SELECT CONNECTION_ID()")[0][0])
        with pytest.raises(DestinationError) as err:
            client.execute_sql("SELECT 1")
        assert type(err.value) is DestinationTransientError, str(err.value)
        assert _mysql_code(err.value) in (1927, 2006, 2013), str(err.value)
        assert err.value.statement == "SELECT 1"
        client.reconnect()
        assert client.execute_sql("SELECT 3") == [(3,)]
        # session settings are back on the new connection: UTC and the dataset as default database
        assert client.execute_sql("SELECT @@session.time_zone, DATABASE()") == [("+00:00", p.dataset_name)]


def test_mariadb_dead_connection_keeps_failing_transiently_until_reconnect(maria):
    p = maria()
    with p.sql_client() as client:
        _kill(client.execute_sql("SELECT CONNECTION_ID()")[0][0])
        with pytest.raises(DestinationTransientError):
            client.execute_sql("SELECT 1")
        with pytest.raises(DestinationError) as err:  # same dead connection, not reconnected yet
            client.execute_sql("SELECT 2")
        assert type(err.value) is DestinationTransientError, repr(err.value.orig)


def _kill_insert_once(dataset: str, table: str, killed: list[int], stop: threading.Event,
                      release: Any) -> None:
    """Wait for loadbay's INSERT into ``table`` (blocked by a table lock), kill its connection, release."""
    admin = maria_raw()
    try:
        with admin.cursor() as cur:
            deadline = time.monotonic() + 20
            while not stop.is_set() and time.monotonic() < deadline:
                cur.execute("SELECT id FROM information_schema.processlist WHERE info LIKE %s AND id <> "
                            "CONNECTION_ID()", (f"INSERT INTO `{dataset}`.`{table}`%",))
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


def test_mariadb_closed_port_is_transient(maria):
    port = closed_port()
    p = maria(credentials=maria_url(host="127.0.0.1", port=port))
    with pytest.raises(DestinationError) as err:
        with p.sql_client():
            pass
    assert type(err.value) is DestinationTransientError, str(err.value)
    assert _mysql_code(err.value) == 2003
    assert err.value.statement is None
    assert "Connection refused" in str(err.value)
    # a run through the loader retries and then gives up, keeping the package on disk
    with pytest.raises(LoadbayError) as run_err:
        p.run([{"id": 1}], table_name="t")
    chain = exception_chain(run_err.value)
    assert any(isinstance(e, DestinationTransientError) for e in chain), chain


def test_mariadb_wrong_password_is_terminal(maria):
    p = maria(credentials=maria_url(username="lb_no_such_user", password="nope"))
    with pytest.raises(DestinationError) as err:
        with p.sql_client():
            pass
    assert type(err.value) is DestinationTerminalError, str(err.value)
    assert _mysql_code(err.value) in (1045, 1698)  # access denied (1698: no such user on MariaDB)
    assert "Access denied" in str(err.value)
    assert "nope" not in str(err.value)


# -- SQLite ---------------------------------------------------------------------------------------------

SQLITE_ERRORS = [
    ("no_such_table", "SELECT * FROM lb_no_such_table", DestinationUndefinedRelation, "no such table"),
    ("no_such_table_in_dataset", "SELECT * FROM {ds}.lb_no_such_table", DestinationUndefinedRelation,
     "no such table"),
    ("unknown_database", "SELECT * FROM lb_no_such_ds.t", DestinationUndefinedRelation, "no such table"),
    ("syntax", "SELEC 1", DestinationTerminalError, "syntax error"),
    ("no_such_column", "SELECT lb_no_such_column FROM {t}", DestinationTerminalError, "no such column"),
    ("not_null", "INSERT INTO {t} (u) VALUES (1)", DestinationTerminalError, "NOT NULL constraint failed"),
    ("unique", "INSERT INTO {t} (a, u) VALUES (1, 7), (2, 7)", DestinationTerminalError, "UNIQUE constraint failed"),
    ("check", "INSERT INTO {t} (a, c) VALUES (1, -1)", DestinationTerminalError, "CHECK constraint failed"),
]


@pytest.mark.parametrize("sql,cls,needle", [e[1:] for e in SQLITE_ERRORS], ids=[e[0] for e in SQLITE_ERRORS])
def test_sqlite_statement_errors_are_classified(lite, sql, cls, needle):
    p = lite()
    with p.sql_client() as client:
        client.create_dataset()
        table = client.quoted("tt")
        client.execute_sql(f"CREATE TABLE {table} (a integer NOT NULL, u integer UNIQUE, c integer CHECK (c >= 0))")
        exc = _expect(client, sql.format(t=table, ds=client.render(client.identifier(p.dataset_name))), cls)
        assert isinstance(exc.orig.orig, sqlite3.Error)  # type: ignore[union-attr]
        assert needle in str(exc)
        assert not isinstance(exc, DestinationTransientError)
        if cls is DestinationTerminalError:
            assert not isinstance(exc, DestinationUndefinedRelation)
        assert client.execute_sql(f"SELECT count(*) FROM {table}") == [(0,)]


def test_sqlite_database_locked_is_transient(lite):
    p = lite(engine_args={"connect_args": {"timeout": 0.2}})
    with p.sql_client() as client:
        client.create_dataset()
        table = client.quoted("t")
        client.execute_sql(f"CREATE TABLE {table} (a integer)")
        dataset_file = client._sqlite_file(p.dataset_name)
        assert dataset_file.exists()
        holder = sqlite3.connect(dataset_file, isolation_level=None, timeout=0.2)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            for sql in (f"INSERT INTO {table} VALUES (1)", f"SELECT count(*) FROM {table}"):
                started = time.monotonic()
                exc = _expect(client, sql, DestinationTransientError)
                assert "database is locked" in str(exc)
                assert isinstance(exc.orig.orig, sqlite3.OperationalError)  # type: ignore[union-attr]
                assert time.monotonic() - started < 3  # connect_args timeout=0.2 reached the driver
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        client.execute_sql(f"INSERT INTO {table} VALUES (1)")  # the lock is gone: retrying works
        assert client.execute_sql(f"SELECT count(*) FROM {table}") == [(1,)]


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
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(p.run([{"id": i, "v": "new"} for i in range(1, 101)], **hints))
        except BaseException as exc:  # noqa: BLE001 - asserted below
            result.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any("transient error, retry" in r.getMessage()
                                                      for r in caplog.records):
            time.sleep(0.01)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    runner.join(30)
    assert result and isinstance(result[0], loadbay.LoadInfo), result
    result[0].raise_on_failed_jobs()
    retried = [r.getMessage() for r in caplog.records if "transient error, retry" in r.getMessage()]
    assert retried and "database is locked" in retried[0], retried
    assert [tuple(r) for r in _sum(p)] == [(101, 5050)]
    assert _rows(p, "SELECT v, count(*) FROM {t} GROUP BY v ORDER BY v") == [("new", 100), ("old", 1)]


def _rows(p: loadbay.Pipeline, sql: str) -> list[tuple[Any, ...]]:
    with p.sql_client() as client:
        return [tuple(r) for r in client.execute_sql(sql.format(t=tbl(p, "t"))) or []]


def _sum(p: loadbay.Pipeline) -> list[tuple[Any, ...]]:
    with p.sql_client() as client:
        return client.execute_sql(f"SELECT count(*), sum(id) FROM {tbl(p, 't')}") or []


# -- the pure function ------------------------------------------------------------------------------------

def test_classify_is_none_for_non_database_exceptions():
    for exc in (ValueError("not a driver error"), KeyError("x"), RuntimeError("boom"), OSError("disk")):
        assert SqlalchemySqlClient.classify(exc) is None


def test_classify_on_real_sqlalchemy_exceptions_without_loadbay(tmp_path):
    """SQLAlchemy's wrapped errors straight from an engine (no loadbay client in between)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'pure.db'}")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (a integer PRIMARY KEY)")
            cases = [("SELECT * FROM nope", DestinationUndefinedRelation), ("SELEC 1", DestinationTerminalError),
                     ("INSERT INTO t VALUES (1), (1)", DestinationTerminalError)]
            for sql, cls in cases:
                with pytest.raises(sa_exc.DBAPIError) as err:
                    conn.exec_driver_sql(sql)
                assert SqlalchemySqlClient.classify(err.value) is cls, sql
                conn.rollback()
    finally:
        engine.dispose()
