"""DuckDbSqlClient.classify on real DuckDB exceptions, and the translation boundary in execute_sql."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import loadbay
from loadbay.common.exceptions import (DestinationError, DestinationTerminalError, DestinationTransientError,
                               DestinationUndefinedRelation)
from loadbay.destinations.duckdb.sql_client import DuckDbSqlClient


@pytest.fixture
def conn(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / "classify.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute("CREATE TABLE ds.t (id BIGINT NOT NULL, s VARCHAR)")
    con.execute("INSERT INTO ds.t VALUES (1, 'a')")
    yield con
    con.close()


def _raised(con, sql: str) -> duckdb.Error:
    with pytest.raises(duckdb.Error) as err:
        con.execute(sql)
    return err.value


CASES = [
    # (what, sql, DuckDB exception class name, expected loadbay class)
    ("syntax error", "SELEC 1", "ParserException", DestinationTerminalError),
    ("missing table", "SELECT * FROM ds.no_such_table", "CatalogException", DestinationUndefinedRelation),
    ("missing schema", "SELECT * FROM no_such_schema.t", "CatalogException", DestinationUndefinedRelation),
    ("missing schema on create", "CREATE TABLE no_such_schema.t (a INT)", "CatalogException",
     DestinationUndefinedRelation),
    ("drop a missing table", "DROP TABLE ds.no_such_table", "CatalogException", DestinationUndefinedRelation),
    ("missing column", "SELECT no_such_column FROM ds.t", "BinderException", DestinationTerminalError),
    ("not null violation", "INSERT INTO ds.t VALUES (NULL, 'x')", "ConstraintException", DestinationTerminalError),
    ("conversion error", "SELECT CAST('abc' AS BIGINT)", "ConversionException", DestinationTerminalError),
    ("conversion error on insert", "INSERT INTO ds.t VALUES ('abc', 'x')", "ConversionException",
     DestinationTerminalError),
    ("table already exists", "CREATE TABLE ds.t (a INT)", "CatalogException", DestinationTerminalError),
    ("schema already exists", "CREATE SCHEMA ds", "CatalogException", DestinationTerminalError),
]


@pytest.mark.parametrize(("what", "sql", "duckdb_class", "expected"), CASES, ids=[c[0] for c in CASES])
def test_classify_real_exceptions(conn, what, sql, duckdb_class, expected):
    exc = _raised(conn, sql)
    assert type(exc).__name__ == duckdb_class, f"{what}: DuckDB raised {type(exc).__name__}: {exc}"
    assert DuckDbSqlClient.classify(exc) is expected, f"{what}: {exc}"


def test_already_exists_is_terminal_not_undefined_relation(conn):
    exc = _raised(conn, "CREATE TABLE ds.t (a INT)")
    assert "already exists" in str(exc)
    cls = DuckDbSqlClient.classify(exc)
    assert issubclass(cls, DestinationTerminalError)
    assert not issubclass(cls, DestinationUndefinedRelation)


def test_missing_column_is_not_an_undefined_relation(conn):
    exc = _raised(conn, "SELECT no_such_column FROM ds.t")
    assert "not found" in str(exc)  # the marker text appears, but this is not a CatalogException
    assert not issubclass(DuckDbSqlClient.classify(exc), DestinationUndefinedRelation)


@pytest.mark.parametrize("sql", ["SELECT no_such_function(1)", "CREATE TABLE ds.t2 (a no_such_type)"],
                         ids=["missing function", "missing type"])
def test_missing_function_or_type_is_terminal_not_undefined_relation(conn, sql):
    exc = _raised(conn, sql)
    assert type(exc).__name__ == "CatalogException"
    assert DuckDbSqlClient.classify(exc) is DestinationTerminalError


def test_write_conflict_is_transient(tmp_path):
    con = duckdb.connect(str(tmp_path / "conflict.duckdb"))
    try:
        con.execute("CREATE TABLE x (id INT PRIMARY KEY, v INT)")
        con.execute("INSERT INTO x VALUES (1, 1)")
        other = con.cursor()  # a second connection with its own transaction
        con.execute("BEGIN TRANSACTION")
        con.execute("UPDATE x SET v = 2 WHERE id = 1")
        other.execute("BEGIN TRANSACTION")
        exc = _raised(other, "UPDATE x SET v = 3 WHERE id = 1")
        assert type(exc).__name__ == "TransactionException"
        assert DuckDbSqlClient.classify(exc) is DestinationTransientError
    finally:
        con.close()


def test_non_driver_errors_are_not_classified():
    assert DuckDbSqlClient.classify(ValueError("not from the driver")) is None
    assert DuckDbSqlClient.classify(KeyError("x")) is None


# -- the translation boundary -------------------------------------------------------------------------
@pytest.fixture
def client(tmp_path: Path):
    dest = loadbay.destination("duckdb", credentials=str(tmp_path / "client.duckdb"))
    config = dest.configuration("classify_test", "ds")
    with dest.sql_client(config) as sql_client:
        sql_client.create_dataset()
        sql_client.execute_sql('CREATE TABLE ds.t (id BIGINT NOT NULL)')
        yield sql_client


@pytest.mark.parametrize(("sql", "expected", "orig_class"), [
    ("SELEC 1", DestinationTerminalError, "ParserException"),
    ("SELECT * FROM no_such_table", DestinationUndefinedRelation, "CatalogException"),
    ("INSERT INTO t VALUES (NULL)", DestinationTerminalError, "ConstraintException"),
    ("SELECT CAST('abc' AS BIGINT)", DestinationTerminalError, "ConversionException"),
], ids=["syntax", "undefined relation", "not null", "conversion"])
def test_execute_sql_raises_translated_error_keeping_orig_and_statement(client, sql, expected, orig_class):
    with pytest.raises(DestinationError) as err:
        client.execute_sql(sql)
    exc = err.value
    assert type(exc) is expected
    assert isinstance(exc.orig, duckdb.Error) and type(exc.orig).__name__ == orig_class
    assert exc.statement == sql
    assert exc.__cause__ is exc.orig
    assert sql in str(exc) and type(exc.orig).__name__ in str(exc)


def test_execute_sql_with_params_translates_too(client):
    with pytest.raises(DestinationTerminalError) as err:
        client.execute_sql("INSERT INTO t VALUES (?)", "not a number")
    assert type(err.value.orig).__name__ == "ConversionException"
    assert err.value.statement == "INSERT INTO t VALUES (?)"


def test_long_statement_is_shortened_in_the_message_but_kept_whole(client):
    sql = "SELECT * FROM no_such_table WHERE " + " OR ".join(f"id = {i}" for i in range(1000))
    with pytest.raises(DestinationUndefinedRelation) as err:
        client.execute_sql(sql)
    assert err.value.statement == sql
    assert len(str(err.value)) < len(sql)


def test_client_keeps_working_after_a_translated_error(client):
    with pytest.raises(DestinationUndefinedRelation):
        client.execute_sql("SELECT * FROM no_such_table")
    assert client.execute_sql("SELECT count(*) FROM t") == [(0,)]
