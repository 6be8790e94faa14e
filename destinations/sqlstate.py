"""Driver errors to loadbay's three classes, by table: SQLSTATE codes (PostgreSQL through psycopg2, on
its own destination or behind SQLAlchemy), MySQL/MariaDB error numbers, SQLite result names and
DuckDB's exception classes.

Codes first, the PEP 249 class next, message text last (each matched text is tested verbatim). Any
error not listed is terminal: a user must fix it, retrying cannot.
"""

from __future__ import annotations

import re

from loadbay.common.exceptions import (DestinationError, DestinationKeyViolation, DestinationLockedError,
                                       DestinationTerminalError, DestinationTransientError,
                                       DestinationUndefinedRelation)

SQLSTATE_EXACT: dict[str, type[DestinationError]] = {
    "42P01": DestinationUndefinedRelation,  # undefined_table
    "3F000": DestinationUndefinedRelation,  # invalid_schema_name
    "23505": DestinationKeyViolation,       # unique_violation (a primary key or unique constraint)
    "40001": DestinationTransientError,     # serialization_failure
    "40P01": DestinationTransientError,     # deadlock_detected
    "55P03": DestinationTransientError,     # lock_not_available
    "57P01": DestinationTransientError,     # admin_shutdown (pg_terminate_backend)
    "57P02": DestinationTransientError,     # crash_shutdown
    "57P03": DestinationTransientError,     # cannot_connect_now
}
"""SQLSTATE codes with their own meaning; looked up before the class table."""

SQLSTATE_CLASS: dict[str, type[DestinationError]] = {
    "08": DestinationTransientError,  # connection exception
    "53": DestinationTransientError,  # insufficient resources
    "22": DestinationTerminalError,   # data exception
    "23": DestinationTerminalError,   # integrity constraint violation
    "42": DestinationTerminalError,   # syntax error or access rule violation
}
"""The first two characters of a SQLSTATE; anything not listed is terminal (a user must fix it)."""

TERMINAL_CONNECT_MESSAGES = re.compile(
    r'password authentication failed|no password supplied|role "[^"]*" does not exist|'
    r'database "[^"]*" does not exist|is not permitted to log in|permission denied for database')
"""libpq reports refused logins without a SQLSTATE; these texts (and only these: "too many
connections for role" is transient) make such a failure terminal. Each is tested verbatim."""

MYSQL_CODES: dict[int, type[DestinationError]] = {
    1146: DestinationUndefinedRelation,  # ER_NO_SUCH_TABLE
    1049: DestinationUndefinedRelation,  # ER_BAD_DB_ERROR (unknown database)
    1205: DestinationTransientError,     # ER_LOCK_WAIT_TIMEOUT
    1213: DestinationTransientError,     # ER_LOCK_DEADLOCK
    1040: DestinationTransientError,     # ER_CON_COUNT_ERROR (too many connections)
    1053: DestinationTransientError,     # ER_SERVER_SHUTDOWN
    1927: DestinationTransientError,     # ER_CONNECTION_KILLED (MariaDB)
    2002: DestinationTransientError,     # CR_CONNECTION_ERROR
    2003: DestinationTransientError,     # CR_CONN_HOST_ERROR
    2006: DestinationTransientError,     # CR_SERVER_GONE_ERROR
    2013: DestinationTransientError,     # CR_SERVER_LOST
    1062: DestinationKeyViolation,       # ER_DUP_ENTRY (a primary key or unique index)
    1586: DestinationKeyViolation,       # ER_DUP_ENTRY_WITH_KEY_NAME
}
"""MySQL/MariaDB error codes (``orig.args[0]``); any other code is terminal: 1064 syntax, 1054 unknown
column, 1048 null, 1264/1406 out of range / too long, 1045 access denied, ..."""

SQLITE_UNDEFINED = re.compile(r"^(no such table|unknown database)")
SQLITE_KEY_VIOLATION = re.compile(r"^UNIQUE constraint failed")
"""A primary key (of a table with one that is not its rowid) or unique constraint: SQLite says UNIQUE for both."""
SQLITE_TRANSIENT_NAMES = ("SQLITE_BUSY", "SQLITE_LOCKED")
SQLITE_TRANSIENT = re.compile(r"database is locked|database table is locked")
"""SQLite has no codes before Python 3.11's ``sqlite_errorname``; these messages are tested verbatim."""


DUCKDB_ERROR_CLASSES: dict[str, type[DestinationError]] = {
    "ParserException": DestinationTerminalError,
    "SyntaxException": DestinationTerminalError,
    "BinderException": DestinationTerminalError,
    "ConstraintException": DestinationTerminalError,
    "ConversionException": DestinationTerminalError,
    "TypeMismatchException": DestinationTerminalError,
    "OutOfRangeException": DestinationTerminalError,
    "InvalidInputException": DestinationTerminalError,
    "InvalidTypeException": DestinationTerminalError,
    "NotImplementedException": DestinationTerminalError,
    "PermissionException": DestinationTerminalError,
    "DependencyException": DestinationTerminalError,
    "SequenceException": DestinationTerminalError,
    "SerializationException": DestinationTerminalError,
    "InternalException": DestinationTerminalError,
    "FatalException": DestinationTerminalError,
    "IOException": DestinationTransientError,
    "ConnectionException": DestinationTransientError,
    "HTTPException": DestinationTransientError,
    "TransactionException": DestinationTransientError,
    "InterruptException": DestinationTransientError,
    "OutOfMemoryException": DestinationTransientError,
    "CatalogException": DestinationTerminalError,  # refined by DUCKDB_REFINED
    "Error": DestinationTerminalError,
}
"""DuckDB exception class name → loadbay error; looked up along the exception's MRO."""

DUCKDB_REFINED: dict[str, tuple[re.Pattern[str], type[DestinationError]]] = {
    "CatalogException": (re.compile(r"\b(Table|Schema|View|Catalog) with name .* does not exist"),
                         DestinationUndefinedRelation),
    "IOException": (re.compile(r"Could not set lock on file"), DestinationLockedError),
    "ConstraintException": (re.compile(r"violates (primary key|unique) constraint|PRIMARY KEY or UNIQUE constraint "
                                       r"violation"), DestinationKeyViolation),
}
"""Message texts that refine a class: a missing table or schema is an undefined relation (a missing
function or type stays terminal); another process holding the database file is a lock to wait for; a
repeated key is a key violation (a NOT NULL or CHECK failure stays terminal). Tested against DuckDB's real
messages."""


def classify_duckdb(exc: BaseException) -> type[DestinationError] | None:
    """A DuckDB error by its class (nearest listed along the MRO), refined by message; None otherwise."""
    import duckdb

    if not isinstance(exc, duckdb.Error):
        return None
    for cls in type(exc).__mro__:
        found = DUCKDB_ERROR_CLASSES.get(cls.__name__)
        if found is None:
            continue
        pattern, refined = DUCKDB_REFINED.get(cls.__name__, (None, found))
        return refined if pattern is not None and pattern.search(str(exc)) else found
    return DestinationTerminalError


def classify_psycopg2(exc: BaseException) -> type[DestinationError] | None:
    """A psycopg2 error by its SQLSTATE; without one, the client lost the server (transient) or the
    server refused the login (terminal). None for anything that is not a psycopg2 error."""
    import psycopg2

    if not isinstance(exc, psycopg2.Error):
        return None
    code = getattr(exc, "pgcode", None)
    if code:
        return SQLSTATE_EXACT.get(code) or SQLSTATE_CLASS.get(code[:2]) or DestinationTerminalError
    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return DestinationTerminalError if TERMINAL_CONNECT_MESSAGES.search(str(exc)) else DestinationTransientError
    return DestinationTerminalError


def mysql_code(exc: BaseException | None) -> int | None:
    """The error number of a MySQL/MariaDB driver error (``args[0]`` in every driver), or None."""
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def classify_mysql(exc: BaseException) -> type[DestinationError]:
    """A MySQL/MariaDB driver error (pymysql, mysqlclient, mysql-connector) by its error number; without
    one, an ``InterfaceError`` (PEP 249: the client's side of the connection, as pymysql's ``(0, '')`` on a
    connection the server dropped) is transient, anything else terminal."""
    code = mysql_code(exc)
    if code:
        return MYSQL_CODES.get(code, DestinationTerminalError)
    is_interface_error = any(cls.__name__ == "InterfaceError" for cls in type(exc).__mro__)
    return DestinationTransientError if is_interface_error else DestinationTerminalError


def classify_pymysql(exc: BaseException) -> type[DestinationError] | None:
    """A pymysql error by its error number (``classify_mysql``); None for anything that is not one."""
    import pymysql

    return classify_mysql(exc) if isinstance(exc, pymysql.err.MySQLError) else None


def classify_sqlite(exc: BaseException) -> type[DestinationError]:
    """A sqlite3 error by its result name where Python gives one, else by its message."""
    message = str(exc)
    if SQLITE_UNDEFINED.search(message):
        return DestinationUndefinedRelation
    if SQLITE_KEY_VIOLATION.search(message):
        return DestinationKeyViolation
    if getattr(exc, "sqlite_errorname", None) in SQLITE_TRANSIENT_NAMES or SQLITE_TRANSIENT.search(message):
        return DestinationTransientError
    return DestinationTerminalError


SPARK_ERROR_CLASS = re.compile(r"\[([A-Z][A-Z0-9_]*)(?:\.[A-Z0-9_]+)*\]")
"""Spark's error class at the head of its message (``[TABLE_OR_VIEW_NOT_FOUND]``, ``[PARSE_SYNTAX_ERROR]``): the
documented, stable name of each error (Spark's ``error-conditions.json``); the Thrift server passes it in the text."""
SPARK_SQLSTATE = re.compile(r"SQLSTATE: ([0-9A-Z]{5})")
"""The SQLSTATE Spark appends to its message, where the error has one."""

SPARK_ERROR_CLASSES: dict[str, type[DestinationError]] = {
    "TABLE_OR_VIEW_NOT_FOUND": DestinationUndefinedRelation,  # 42P01
    "SCHEMA_NOT_FOUND": DestinationUndefinedRelation,         # 42704: the database (dataset) is missing
    "TABLE_OR_VIEW_ALREADY_EXISTS": DestinationTerminalError,
    "SCHEMA_ALREADY_EXISTS": DestinationTerminalError,
    # KD001: a file the session listed for the table is gone (another session truncated or swapped it since);
    # a new connection's session lists the files again. Other FAILED_READ_FILE errors (a corrupt file) are terminal
    "FAILED_READ_FILE.FILE_NOT_EXIST": DestinationTransientError,
}
"""Spark error classes (or ``CLASS.SUBCLASS``, looked up first) with their own meaning; looked up before the SQLSTATE
(a class without an entry is classified by its SQLSTATE: analysis and parse errors are 42xxx, data errors 22xxx,
both terminal)."""

SPARK_TRANSIENT = re.compile(r"Invalid SessionHandle|Invalid OperationHandle|Connection reset|Broken pipe")
"""The Thrift server's words for a session it no longer has (it restarted) or a connection that broke: a new
connection may work. Each is tested verbatim."""


SPARK_REFUSED_LOGIN = re.compile(r"Error validating the login")
"""The Thrift server refusing the credentials (a SASL failure arrives as a transport error): terminal."""


def classify_impyla(exc: BaseException) -> type[DestinationError] | None:
    """Spark's Thrift server through impyla: transport failures (refused, reset, closed) are transient; a
    server error by its Spark error class, then its SQLSTATE, then impyla's class; None for anything else.
    impyla keeps no SQLSTATE field (Spark puts both in the message)."""
    from thrift.transport.TTransport import TTransportException

    if isinstance(exc, (TTransportException, ConnectionError, TimeoutError, EOFError)):
        return DestinationTerminalError if SPARK_REFUSED_LOGIN.search(str(exc)) else DestinationTransientError
    from impala import error as impala_error

    if not isinstance(exc, impala_error.Error):
        return None
    text = str(exc)
    error_class = SPARK_ERROR_CLASS.search(text)
    if error_class is not None:
        for name in (error_class.group(0)[1:-1], error_class.group(1)):  # CLASS.SUBCLASS, then CLASS
            if name in SPARK_ERROR_CLASSES:
                return SPARK_ERROR_CLASSES[name]
    state = SPARK_SQLSTATE.search(text)
    if state is not None:
        code = state.group(1)
        return SQLSTATE_EXACT.get(code) or SQLSTATE_CLASS.get(code[:2], DestinationTerminalError)
    if error_class is None and SPARK_TRANSIENT.search(text):
        return DestinationTransientError
    return DestinationTerminalError
