"""The built-in destinations' tables of real errors (see ``real_errors``), read by ``setups.SETUPS``.

Each table holds what the database raises for a missing table or schema (undefined relation), bad SQL or
data (terminal), and the transient errors that can be provoked for real: a lock timeout, a deadlock, a
killed connection, a refused connection. ``message`` is the driver's own word for the error: psycopg2's
exception class (one per SQLSTATE), MySQL's error code, SQLite's and DuckDB's text.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from loadbay.destinations.testing.real_errors import ErrorScene, ErrorTable, RealError, changed_url, closed_port


def _wait_until(what: str, check: Any, *, every: float = 0.01, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout}s")
        time.sleep(every)


def _blocked_update(scene: ErrorScene, other: Any, template: str) -> None:
    """``other`` runs ``template`` in a thread (it waits for a row lock the client under test holds); the
    thread is joined after the error."""
    failed: list[BaseException] = []

    def update() -> None:
        try:
            other.execute_sql(scene.sql(template))
        except BaseException as exc:  # noqa: BLE001 - reported when joined
            failed.append(exc)

    def join() -> None:
        thread.join(10)
        assert not thread.is_alive() and not failed, failed

    thread = threading.Thread(target=update, daemon=True)
    thread.start()
    scene.later(join)


# -- PostgreSQL ---------------------------------------------------------------------------------------------

def _pg_deadlock(scene: ErrorScene) -> None:
    """The client holds row 1 and asks for row 2, which the other connection holds while it waits for row 1.
    The deadlock is detected on the client's side (its deadlock_timeout is the short one)."""
    other, watcher = scene.other(), scene.other()
    other.execute_sql("BEGIN")
    other.execute_sql("SET LOCAL deadlock_timeout = '30s'")
    other.execute_sql(scene.sql("UPDATE {table} SET v = 2 WHERE a = 2"))
    pid = other.execute_sql("SELECT pg_backend_pid()")[0][0]  # type: ignore[index]
    scene.client.execute_sql("SET deadlock_timeout = '50ms'")
    scene.client.execute_sql("BEGIN")
    scene.client.execute_sql(scene.sql("UPDATE {table} SET v = 1 WHERE a = 1"))
    _blocked_update(scene, other, "UPDATE {table} SET v = 20 WHERE a = 1")
    _wait_until("the other connection waiting for the row lock", lambda: watcher.execute_sql(
        "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", pid) == [("Lock",)])


def _pg_terminate(scene: ErrorScene) -> None:
    pid = scene.client.execute_sql("SELECT pg_backend_pid()")[0][0]  # type: ignore[index]
    assert scene.other().execute_sql("SELECT pg_terminate_backend(%s)", pid) == [(True,)]


def _pg_terminate_and_fail_once(scene: ErrorScene) -> None:
    from loadbay.common.exceptions import DestinationTransientError

    _pg_terminate(scene)
    try:
        scene.client.execute_sql("SELECT 1")
    except DestinationTransientError:
        return  # the next statement meets the dead connection
    raise AssertionError("a statement on a terminated backend did not fail transiently")


def _close_underneath(scene: ErrorScene) -> None:
    scene.client.native_connection.close()


def _pg_role(scene: ErrorScene, options: str = "") -> str:
    """A new login role (dropped after the test) and the credentials to log in with it."""
    role = f"lb_role_{uuid.uuid4().hex[:8]}"
    quoted = scene.client.render(scene.client.identifier(role))
    scene.client.execute_sql(f"CREATE ROLE {quoted} LOGIN {options}")
    scene.later(scene.client.execute_sql, f"DROP ROLE IF EXISTS {quoted}")
    return changed_url(scene.credentials, username=role, password=None)


def _pg_permission_denied(scene: ErrorScene) -> None:
    scene.connect(_pg_role(scene)).execute_sql(scene.sql("SELECT * FROM {table}"))


def _pg_connection_limit(scene: ErrorScene) -> None:
    credentials = _pg_role(scene, "CONNECTION LIMIT 1")
    scene.connect(credentials)  # takes the role's only connection slot
    scene.connect(credentials)


def _pg_connect_with(**changes: Any) -> Any:
    return lambda scene: scene.connect(changed_url(scene.credentials, **changes))


def _pg_refused(scene: ErrorScene) -> None:
    scene.connect(changed_url(scene.credentials, host="127.0.0.1", port=closed_port()))


def _pg_no_socket(scene: ErrorScene) -> None:
    """No server socket in a folder whose name contains "role": not mistaken for "role ... does not exist"."""
    folder = scene.tmp_path / "payroles"
    folder.mkdir()
    scene.connect({"database": "test", "username": "postgres", "host": str(folder), "port": 5432})


PG_SQLSTATES: dict[str, Any] = {
    "42P01": "undefined_relation", "3F000": "undefined_relation",
    "40001": "transient", "40P01": "transient", "55P03": "transient", "57P01": "transient", "57P02": "transient",
    "57P03": "transient", "08006": "transient", "08001": "transient", "08003": "transient", "53100": "transient",
    "53200": "transient", "53300": "transient",
    "22012": "terminal", "22003": "terminal", "22P02": "terminal", "23505": "key_violation", "23502": "terminal",
    "23503": "terminal", "42601": "terminal", "42501": "terminal", "42703": "terminal", "42P07": "terminal",
    "P0001": "terminal", "XX000": "terminal", "55000": "terminal", "25P02": "terminal",
}
"""SQLSTATEs raised by a server-side ``RAISE``: the exact codes and whole classes classify() knows, and some
terminal ones."""

POSTGRES = ErrorTable("CREATE TABLE {table} (a integer NOT NULL, u integer UNIQUE, v integer)", (
    RealError("missing_table", "undefined_relation", "UndefinedTable", "SELECT * FROM lb_no_such_table"),
    RealError("missing_schema_select", "undefined_relation", "UndefinedTable", "SELECT * FROM lb_no_such_schema.t"),
    RealError("missing_schema_create", "undefined_relation", "InvalidSchemaName",
              "CREATE TABLE lb_no_such_schema.t (a int)"),
    RealError("syntax", "terminal", "SyntaxError", "SELEC 1"),
    RealError("missing_column", "terminal", "UndefinedColumn", "SELECT lb_no_such_column FROM {table}"),
    RealError("not_null", "terminal", "NotNullViolation", "INSERT INTO {table} (u) VALUES (3)"),
    RealError("unique", "key_violation", "UniqueViolation", "INSERT INTO {table} (a, u) VALUES (3, 7), (4, 7)"),
    RealError("bad_cast", "terminal", "InvalidTextRepresentation", "SELECT 'x'::integer"),
    RealError("integer_overflow", "terminal", "NumericValueOutOfRange", f"INSERT INTO {{table}} (a) VALUES ({2**40})"),
    RealError("numeric_overflow", "terminal", "NumericValueOutOfRange", "SELECT 1e400::numeric(5,2)"),
    RealError("division_by_zero", "terminal", "DivisionByZero", "SELECT 1 / (count(*) - 2) FROM {table}"),
    RealError("permission_denied", "terminal", "InsufficientPrivilege.*permission denied",
              provoke=_pg_permission_denied),
    RealError("lock_timeout", "transient", "LockNotAvailable", "SELECT * FROM {table}",
              before=("SET lock_timeout = '100ms'",),
              other=("BEGIN", "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")),
    RealError("serialization_failure", "transient", "SerializationFailure", "UPDATE {table} SET v = 3 WHERE a = 1",
              before=("BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT v FROM {table} WHERE a = 1"),
              other=("UPDATE {table} SET v = 2 WHERE a = 1",), after=("ROLLBACK",)),
    RealError("deadlock", "transient", "DeadlockDetected", "UPDATE {table} SET v = 1 WHERE a = 2",
              provoke=_pg_deadlock, after=("ROLLBACK",)),
    RealError("terminated_backend", "transient", "terminating connection|server closed the connection",
              "SELECT 1", provoke=_pg_terminate, reconnect=True),
    RealError("dead_connection_again", "transient", "InterfaceError: connection already closed", "SELECT 2",
              provoke=_pg_terminate_and_fail_once, reconnect=True),
    RealError("closed_underneath", "transient", "InterfaceError: connection already closed", "SELECT 1",
              provoke=_close_underneath, reconnect=True),
    RealError("connection_refused", "transient", "Connection refused", provoke=_pg_refused),
    RealError("no_server_socket", "transient", "No such file or directory", provoke=_pg_no_socket),
    RealError("connection_limit", "transient", "too many connections for role", provoke=_pg_connection_limit),
    RealError("wrong_database", "terminal", 'database "lb_no_such_database" does not exist',
              provoke=_pg_connect_with(database="lb_no_such_database")),
    RealError("wrong_role", "terminal", 'role "lb_no_such_role" does not exist',
              provoke=_pg_connect_with(username="lb_no_such_role", password=None)),
    *(RealError(f"sqlstate_{code}", kind, f"lb sqlstate {code}",
                f"DO $$ BEGIN RAISE EXCEPTION 'lb sqlstate {code}' USING ERRCODE = '{code}'; END $$")
      for code, kind in PG_SQLSTATES.items()),
))


SQLALCHEMY_POSTGRES = ErrorTable(POSTGRES.create, tuple(e for e in POSTGRES.errors if e.name not in {
    "lock_timeout", "serialization_failure", "deadlock", "terminated_backend", "dead_connection_again",
    "closed_underneath", "no_server_socket"}))
"""PostgreSQL through the SQLAlchemy destination: the postgres destination's errors but the scenes that set
session options (a pooled SQLAlchemy connection keeps them for the next test) or drive psycopg2's connection
and its connect arguments directly; the same SQLSTATEs are classified by the same ``classify_psycopg2``."""

# -- DuckDB -------------------------------------------------------------------------------------------------

DUCKDB = ErrorTable("CREATE TABLE {table} (a BIGINT NOT NULL, u INTEGER UNIQUE, v INTEGER)", (
    RealError("missing_table", "undefined_relation", "CatalogException", "SELECT * FROM {dataset}.no_such_table"),
    RealError("missing_schema", "undefined_relation", "CatalogException", "SELECT * FROM no_such_schema.t"),
    RealError("missing_schema_create", "undefined_relation", "CatalogException",
              "CREATE TABLE no_such_schema.t (a INT)"),
    RealError("drop_missing_table", "undefined_relation", "CatalogException", "DROP TABLE {dataset}.no_such_table"),
    RealError("syntax", "terminal", "ParserException", "SELEC 1"),
    RealError("missing_column", "terminal", "BinderException.*not found", "SELECT no_such_column FROM {table}"),
    RealError("not_null", "terminal", "ConstraintException", "INSERT INTO {table} (u) VALUES (3)"),
    RealError("unique", "key_violation", "ConstraintException", "INSERT INTO {table} (a, u) VALUES (3, 7), (4, 7)"),
    RealError("bad_cast", "terminal", "ConversionException", "SELECT CAST('abc' AS BIGINT)"),
    RealError("bad_cast_on_insert", "terminal", "ConversionException", "INSERT INTO {table} (a) VALUES ('abc')"),
    RealError("table_exists", "terminal", "CatalogException.*already exists", "CREATE TABLE {table} (a INT)"),
    RealError("schema_exists", "terminal", "CatalogException.*already exists", "CREATE SCHEMA {dataset}"),
    RealError("missing_function", "terminal", "CatalogException", "SELECT no_such_function(1)"),
    RealError("missing_type", "terminal", "CatalogException", "CREATE TABLE {dataset}.t2 (a no_such_type)"),
    RealError("write_conflict", "transient", "TransactionException", "UPDATE {table} SET v = 3 WHERE a = 1",
              before=("BEGIN TRANSACTION",), other=("BEGIN TRANSACTION", "UPDATE {table} SET v = 2 WHERE a = 1"),
              after=("ROLLBACK",)),
))


# -- SQLite (through SQLAlchemy) ----------------------------------------------------------------------------

SQLITE = ErrorTable("CREATE TABLE {table} (a integer NOT NULL, u integer UNIQUE, v integer, "
                    "c integer CHECK (c >= 0))", (
    RealError("missing_table", "undefined_relation", "no such table", "SELECT * FROM lb_no_such_table"),
    RealError("missing_table_in_dataset", "undefined_relation", "no such table",
              "SELECT * FROM {dataset}.lb_no_such_table"),
    RealError("missing_dataset", "undefined_relation", "no such table", "SELECT * FROM lb_no_such_ds.t"),
    RealError("syntax", "terminal", "syntax error", "SELEC 1"),
    RealError("missing_column", "terminal", "no such column", "SELECT lb_no_such_column FROM {table}"),
    RealError("not_null", "terminal", "NOT NULL constraint failed", "INSERT INTO {table} (u) VALUES (3)"),
    RealError("unique", "key_violation", "UNIQUE constraint failed", "INSERT INTO {table} (a, u) VALUES (3, 7), (4, 7)"),
    RealError("check", "terminal", "CHECK constraint failed", "INSERT INTO {table} (a, c) VALUES (3, -1)"),
    RealError("bad_cast", "terminal", "cannot store TEXT value in INTEGER column",
              "INSERT INTO {dataset}.lb_strict (a) VALUES ('abc')",
              before=("CREATE TABLE {dataset}.lb_strict (a INTEGER) STRICT",)),
    RealError("locked_write", "transient", "database is locked", "INSERT INTO {table} (a) VALUES (3)",
              before=("PRAGMA busy_timeout = 200",), other=("BEGIN EXCLUSIVE",)),
    RealError("locked_read", "transient", "database is locked", "SELECT count(*) FROM {table}",
              before=("PRAGMA busy_timeout = 200",), other=("BEGIN EXCLUSIVE",)),
))


# -- MariaDB (through SQLAlchemy) ---------------------------------------------------------------------------

def _maria_deadlock(scene: ErrorScene) -> None:
    """As on PostgreSQL, rows found through the unique key (InnoDB would lock every row it scans otherwise).
    InnoDB rolls back the transaction that changed fewer rows, so the other one first writes 200 rows
    elsewhere and the client's is the victim."""
    other, watcher = scene.other(), scene.other()
    scene.client.execute_sql(scene.sql("CREATE TABLE {dataset}.lb_heavy (id integer PRIMARY KEY) ENGINE=InnoDB"))
    other.execute_sql("START TRANSACTION")
    other.execute_sql(scene.sql("INSERT INTO {dataset}.lb_heavy SELECT seq FROM seq_1_to_200"))
    other.execute_sql(scene.sql("UPDATE {table} SET v = 2 WHERE u = 2"))
    other_id = int(other.execute_sql("SELECT CONNECTION_ID()")[0][0])  # type: ignore[index]
    scene.client.execute_sql("START TRANSACTION")
    scene.client.execute_sql(scene.sql("UPDATE {table} SET v = 1 WHERE u = 1"))
    _blocked_update(scene, other, "UPDATE {table} SET v = 20 WHERE u = 1")
    # InnoDB refreshes innodb_trx only when it was not read for 0.1 s: polled faster, it never changes
    _wait_until("the other connection waiting for the row lock", lambda: watcher.execute_sql(
        "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT' "
        f"AND trx_mysql_thread_id = {other_id}") == [(1,)], every=0.2)


def _maria_kill(scene: ErrorScene) -> None:
    connection_id = int(scene.client.execute_sql("SELECT CONNECTION_ID()")[0][0])  # type: ignore[index]
    scene.other().execute_sql(f"KILL CONNECTION {connection_id}")


def _maria_kill_and_fail_once(scene: ErrorScene) -> None:
    from loadbay.common.exceptions import DestinationTransientError

    _maria_kill(scene)
    try:
        scene.client.execute_sql("SELECT 1")
    except DestinationTransientError:
        return
    raise AssertionError("a statement on a killed connection did not fail transiently")


def _maria_refused(scene: ErrorScene) -> None:
    scene.connect(changed_url(scene.credentials, host="127.0.0.1", port=closed_port()))


def _maria_wrong_password(scene: ErrorScene) -> None:
    scene.connect(changed_url(scene.credentials, username="lb_no_such_user", password="nope"))


def _mysql_local_infile_refused(scene: ErrorScene) -> None:
    """A client that does not allow LOAD DATA LOCAL (the server's local_infile=OFF answers alike)."""
    from sqlglot import exp

    data = scene.tmp_path / "refused.csv"
    data.write_text("a\n1\n", encoding="utf-8")
    refusing = scene.connect(f"{scene.credentials}{'&' if '?' in scene.credentials else '?'}local_infile=false")
    path = refusing.render(exp.Literal.string(str(data)))
    refusing.execute_sql(f"LOAD DATA LOCAL INFILE {path} INTO TABLE {scene.table} IGNORE 1 LINES (a)")


def _mysql_family(dead_connection: str, *extra: RealError) -> ErrorTable:
    """MySQL/MariaDB's real errors: the same server errors through any driver, and ``dead_connection``, what
    the driver (or SQLAlchemy around it) says about a connection it already lost."""
    return ErrorTable("CREATE TABLE {table} (a integer NOT NULL, u integer UNIQUE, v integer, small tinyint, "
                      "s varchar(3)) ENGINE=InnoDB", (
        RealError("missing_table", "undefined_relation", r"\b1146\b", "SELECT * FROM lb_no_such_table"),
        RealError("missing_table_qualified", "undefined_relation", r"\b1146\b", "SELECT * FROM lb_no_such_db.t"),
        RealError("missing_database_use", "undefined_relation", r"\b1049\b", "USE lb_no_such_db"),
        RealError("missing_database_create", "undefined_relation", r"\b1049\b",
                  "CREATE TABLE lb_no_such_db.t (a int)"),
        RealError("syntax", "terminal", r"\b1064\b", "SELEC 1"),
        RealError("missing_column", "terminal", r"\b1054\b", "SELECT lb_no_such_column FROM {table}"),
        RealError("not_null", "terminal", r"\b1048\b", "INSERT INTO {table} (a, u) VALUES (NULL, 3)"),
        RealError("no_default", "terminal", r"\b1364\b", "INSERT INTO {table} (u) VALUES (3)"),
        RealError("unique", "key_violation", r"\b1062\b", "INSERT INTO {table} (a, u) VALUES (3, 7), (4, 7)"),
        RealError("bad_cast", "terminal", r"\b1366\b", "INSERT INTO {table} (a) VALUES ('abc')"),
        RealError("out_of_range", "terminal", r"\b1264\b", "INSERT INTO {table} (a, small) VALUES (3, 1000)"),
        RealError("too_long", "terminal", r"\b1406\b", "INSERT INTO {table} (a, s) VALUES (3, 'abcdef')"),
        RealError("lock_wait_timeout", "transient", r"\b1205\b",  # SET STATEMENT: pooled sessions keep no setting
                  "SET STATEMENT innodb_lock_wait_timeout = 1 FOR UPDATE {table} SET v = 1 WHERE u = 1",
                  other=("START TRANSACTION", "SELECT * FROM {table} WHERE u = 1 FOR UPDATE")),
        RealError("deadlock", "transient", r"\b1213\b", "UPDATE {table} SET v = 1 WHERE u = 2",
                  provoke=_maria_deadlock, after=("ROLLBACK",)),
        RealError("killed_connection", "transient", r"\b(1927|2006|2013)\b", "SELECT 1", provoke=_maria_kill,
                  reconnect=True),
        RealError("dead_connection_again", "transient", dead_connection, "SELECT 2",
                  provoke=_maria_kill_and_fail_once, reconnect=True),
        RealError("connection_refused", "transient", r"\b2003\b.*Connection refused", provoke=_maria_refused),
        RealError("wrong_password", "terminal", r"\b(1045|1698)\b.*Access denied", provoke=_maria_wrong_password),
        *extra,
    ))


MARIADB = _mysql_family("PendingRollbackError")
"""MariaDB through the SQLAlchemy destination."""

MYSQL = _mysql_family(
    r"InterfaceError: \(0, ''\)",
    RealError("local_infile_refused", "terminal", r"\b(1148|2068|3948|4166)\b", provoke=_mysql_local_infile_refused),
)
"""MariaDB (or MySQL) through the mysql destination (pymysql)."""


# -- Spark (Thrift server, impyla) ----------------------------------------------------------------------------

def _spark_refused(scene: ErrorScene) -> None:
    scene.connect(changed_url(scene.credentials, port=closed_port()))


def _spark_transport_closed(scene: ErrorScene) -> None:
    """The socket under the client closes (a network cut): impyla opens a new one for the next statement, and
    the server no longer knows the session the client sends it (``Invalid SessionHandle``)."""
    scene.client.native_connection.service.client._iprot.trans.close()


SPARK = ErrorTable("CREATE TABLE {table} (a BIGINT NOT NULL, u INT, v INT, s VARCHAR(3), d DECIMAL(5, 2)) USING parquet", (
    RealError("missing_table", "undefined_relation", r"\[TABLE_OR_VIEW_NOT_FOUND\]", "SELECT * FROM lb_no_such_table"),
    RealError("missing_schema_select", "undefined_relation", r"\[TABLE_OR_VIEW_NOT_FOUND\]",
              "SELECT * FROM lb_no_such_schema.t"),
    RealError("missing_schema_create", "undefined_relation", r"\[SCHEMA_NOT_FOUND\]",
              "CREATE TABLE lb_no_such_schema.t (a INT) USING parquet"),
    RealError("missing_schema_use", "undefined_relation", r"\[SCHEMA_NOT_FOUND\]", "USE lb_no_such_schema"),
    RealError("missing_schema_show", "undefined_relation", r"\[SCHEMA_NOT_FOUND\]", "SHOW TABLES IN lb_no_such_schema"),
    RealError("describe_missing_table", "undefined_relation", r"\[TABLE_OR_VIEW_NOT_FOUND\]",
              "DESCRIBE TABLE {dataset}.lb_no_such_table"),
    RealError("syntax", "terminal", r"\[PARSE_SYNTAX_ERROR\]", "SELEC 1"),
    RealError("missing_column", "terminal", r"\[UNRESOLVED_COLUMN", "SELECT lb_no_such_column FROM {table}"),
    RealError("missing_function", "terminal", r"\[UNRESOLVED_ROUTINE\]", "SELECT lb_no_such_function(1)"),
    RealError("bad_cast", "terminal", r"\[CAST_INVALID_INPUT\]", "SELECT CAST('abc' AS BIGINT)"),
    RealError("division_by_zero", "terminal", r"\[DIVIDE_BY_ZERO\]", "SELECT 1 / (count(*) - 2) FROM {table}"),
    RealError("too_long", "terminal", r"\[EXCEED_LIMIT_LENGTH\]", "INSERT INTO {table} (a, s) VALUES (3, 'abcdef')"),
    RealError("numeric_overflow", "terminal", r"\[CAST_OVERFLOW_IN_TABLE_INSERT\]",
              "INSERT INTO {table} (a, d) VALUES (3, 123456.78)"),
    RealError("delete_unsupported", "terminal", r"\[UNSUPPORTED_FEATURE\.TABLE_OPERATION\]",
              "DELETE FROM {table} WHERE a = 1"),
    RealError("table_exists", "terminal", r"\[TABLE_OR_VIEW_ALREADY_EXISTS\]", "CREATE TABLE {table} (a INT) USING parquet"),
    RealError("schema_exists", "terminal", r"\[SCHEMA_ALREADY_EXISTS\]", "CREATE SCHEMA {dataset}"),
    RealError("file_listed_then_removed", "transient", r"\[FAILED_READ_FILE\.FILE_NOT_EXIST\]", "SELECT * FROM {table}",
              before=("SELECT * FROM {table}",), reconnect=True,  # the session's list of the table's files is stale
              other=("TRUNCATE TABLE {table}", "INSERT INTO {table} (a, u, v) VALUES (1, 1, 0), (2, 2, 0)")),
    RealError("transport_closed", "transient", "Invalid (Session|Operation)Handle", "SELECT 1", provoke=_spark_transport_closed,
              reconnect=True),
    RealError("connection_refused", "transient", "Could not connect", provoke=_spark_refused),
))
"""Spark's Thrift server through impyla: errors by Spark error class (in the message; impyla keeps no SQLSTATE)."""
