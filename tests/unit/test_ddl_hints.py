"""Hints in the DDL (``create_indexes``), rendered by each built-in destination's job client without a
connection and compared with reviewed snapshots; MySQL's keys that cannot be indexed; the classes of the
errors a repeated key raises. Declared for real, read back from each catalog:
destinations/testing/conformance/test_table_hints.py.

Regenerate after an intended change with ``UPDATE_SNAPSHOTS=1 pytest tests/unit/test_ddl_hints.py``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import loadbay
from loadbay.common.capabilities import DEFAULTS
from loadbay.common.exceptions import DestinationKeyViolation, DestinationTerminalError
from loadbay.common.schema.types import LOAD_ID, ROW_ID, Column, Table
from loadbay.destinations.mysql.job_client import key_problem
from loadbay.destinations.sqlstate import classify_duckdb, classify_mysql, classify_sqlite
from tests.unit.snapshot import assert_snapshot

DESTINATIONS = {
    "duckdb": ("duckdb", "{tmp}/x.duckdb"),
    "postgres": ("postgres", "postgresql://loader@localhost:5432/dwh"),
    "mysql": ("mysql", "mysql://loader@localhost:3306"),
    "sqlite": ("sqlalchemy", "sqlite:///{tmp}/x.db"),
}
TABLE = Table("events", {c.name: c for c in [
    Column(LOAD_ID, "text", nullable=False), Column(ROW_ID, "text", nullable=False, unique=True),
    Column("shop", "text", nullable=False, primary_key=True), Column("id", "bigint", nullable=False, primary_key=True),
    Column("email", "text", unique=True), Column("created", "timestamp", cluster=True),
]})


def job_client(name: str, tmp_path: Path, **settings: Any) -> Any:
    reference, credentials = DESTINATIONS[name]
    destination = loadbay.destination(reference, credentials=credentials.format(tmp=tmp_path), **settings)
    client = destination.client(destination.configuration("p", "ds"))
    if name == "mysql":  # the collation is the server's to say (MariaDB's, here): no server in unit tests
        pytest.MonkeyPatch().setattr(client.sql_client, "table_collation", lambda: "utf8mb4_nopad_bin")
    return client


def ddl(client: Any, table: Table = TABLE) -> str:
    statements = [*client.create_table_statements(table),
                  client.create_table_sql(table, client.staging_table(table.name, "1234_ab"))]
    return ";\n".join(client.sql_client.render(s) for s in statements) + ";\n"


@pytest.mark.parametrize("name", sorted(DESTINATIONS))
def test_snapshot(name: str, tmp_path: Path) -> None:
    """A compound primary key is one constraint, a unique column one each (not ``_lb_id``: loadbay's own),
    the cluster index only on PostgreSQL; the staging table (last) has none of them."""
    assert_snapshot(f"ddl_hints.{name}.sql", ddl(job_client(name, tmp_path, create_indexes=True)))


@pytest.mark.parametrize("name", sorted(DESTINATIONS))
def test_nothing_is_declared_by_default(name: str, tmp_path: Path) -> None:
    sql = ddl(job_client(name, tmp_path))
    assert "PRIMARY KEY" not in sql and "UNIQUE" not in sql and "INDEX" not in sql


def test_a_unique_column_that_is_the_whole_primary_key_is_declared_once(tmp_path: Path) -> None:
    table = Table("t", {"id": Column("id", "bigint", primary_key=True, unique=True)})
    sql = ddl(job_client("postgres", tmp_path, create_indexes=True), table)
    assert sql.count("PRIMARY KEY") == 1 and "UNIQUE" not in sql


def test_a_table_that_keeps_versions_of_a_key_declares_no_keys(tmp_path: Path) -> None:
    versioned = Table("t", TABLE.columns, write_disposition="merge", strategy="scd2")
    sql = ddl(job_client("postgres", tmp_path, create_indexes=True), versioned)
    assert "PRIMARY KEY" not in sql and "UNIQUE" not in sql


def test_the_hints_a_destination_declares_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown DDL hints"):
        DEFAULTS.with_(ddl_hints=("primary_key", "sort"))


@pytest.mark.parametrize(("columns", "problem"), [
    ([Column("a", "text"), Column("b", "text"), Column("c", "text"), Column("d", "bigint")], None),
    ([Column(n, "text") for n in "abcd"], "past InnoDB's 3072"),  # four VARCHAR(255) of utf8mb4
    ([Column("a", "text", precision=800)], "past InnoDB's 3072"),
    ([Column("a", "bigint"), Column("b", "binary")], "column 'b' is binary"),
    ([Column("a", "json")], "column 'a' is json"),
], ids=["three text columns", "four text columns", "a long varchar", "binary", "json"])
def test_mysql_declares_only_keys_it_can_index(columns: list[Column], problem: str | None) -> None:
    found = key_problem(columns, 255)
    assert found == problem if problem is None else problem in found


def test_mysql_leaves_a_key_it_cannot_index_out_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    table = Table("files", {c.name: c for c in [Column("digest", "binary", primary_key=True),
                                                Column("name", "text", unique=True)]})
    with caplog.at_level(logging.WARNING):
        sql = ddl(job_client("mysql", tmp_path, create_indexes=True), table)
    assert "PRIMARY KEY" not in sql and "UNIQUE (`name`)" in sql
    assert "table 'files': its primary key (digest) is not declared: column 'digest' is binary" in caplog.text


class _Driver(Exception):
    """A stand-in for a driver error whose class and arguments are all the classifier reads."""


def test_repeated_keys_are_key_violations_by_code_or_text() -> None:
    assert classify_mysql(_Driver(1062, "Duplicate entry '1' for key 'PRIMARY'")) is DestinationKeyViolation
    assert classify_mysql(_Driver(1048, "Column 'a' cannot be null")) is DestinationTerminalError
    assert classify_sqlite(_Driver("UNIQUE constraint failed: t.a")) is DestinationKeyViolation
    assert classify_sqlite(_Driver("NOT NULL constraint failed: t.a")) is DestinationTerminalError


def test_duckdb_tells_a_repeated_key_from_a_null() -> None:
    import duckdb

    con = duckdb.connect()
    con.execute("CREATE TABLE t (a BIGINT PRIMARY KEY, u BIGINT UNIQUE, n BIGINT NOT NULL)")
    con.execute("INSERT INTO t VALUES (1, 1, 1)")
    for statement, expected in (("INSERT INTO t VALUES (1, 2, 1)", DestinationKeyViolation),
                                ("INSERT INTO t VALUES (2, 1, 1)", DestinationKeyViolation),
                                ("INSERT INTO t VALUES (5, 5, 1), (5, 6, 1)", DestinationKeyViolation),  # in one statement
                                ("INSERT INTO t VALUES (3, 3, NULL)", DestinationTerminalError)):
        with pytest.raises(duckdb.Error) as raised:
            con.execute(statement)
        assert classify_duckdb(raised.value) is expected, raised.value
