"""The translation boundary of ``SqlClient.execute_sql``, on a DuckDB file: a driver error comes out as a
loadbay error keeping the driver's exception and the statement, a long statement is shortened in the
message only, and the client goes on working. What ``classify`` calls each real error, on every destination:
destinations/testing/conformance/test_error_classes.py."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import loadbay
from loadbay.common.exceptions import DestinationError, DestinationTerminalError, DestinationUndefinedRelation


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
