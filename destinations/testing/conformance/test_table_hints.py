"""Hints in the DDL (``create_indexes``): primary keys and unique columns are constraints of the tables loadbay
creates, read back from the database's catalog; a repeated key fails its load naming the table; merges of
every strategy load exactly with the keys present; staging tables have none; PostgreSQL's cluster index."""

from __future__ import annotations

from typing import Any

import pytest
from sqlglot import exp

import loadbay
from loadbay.common.exceptions import LoadJobFailed, PipelineStepFailed
from loadbay.destinations.sql_destination import SqlDestination
from loadbay.destinations.testing.conformance.helpers import (children, count, ident, query, require_replace_strategy,
                                                              run_ok, select)
from loadbay.inspection import schema_ddl

KEYS_ON = {"create_indexes": True}
PK = ("primary_key", ("id", "region"))
EMAIL = ("unique", ("email",))


def keyed(make_pipeline: Any, **settings: Any) -> loadbay.Pipeline:
    """A pipeline with ``create_indexes`` on, on a destination that declares keys (else the test skips)."""
    p = make_pipeline(destination_settings=KEYS_ON, **settings)
    hints = p.capabilities.ddl_hints
    if "primary_key" not in hints or "unique" not in hints:
        pytest.skip(f"{p.destination.destination_type} declares no keys in DDL (ddl_hints={hints})")
    return p


def declared_keys(client: Any, table: exp.Table) -> set[tuple[str, tuple[str, ...]]]:
    """``{("primary_key", (columns...)), ("unique", (column,)), ...}`` of ``table`` (qualified), read from the
    catalog by the client's dialect: ``duckdb_constraints()``, SQLite's pragmas, INFORMATION_SCHEMA elsewhere.
    The unique index an upsert makes itself (``<table>__lb_upsert_key``, a constraint to MySQL) is left out."""
    dialect = client.capabilities.sqlglot_dialect
    kinds = {"PRIMARY KEY": "primary_key", "UNIQUE": "unique"}
    schema, name = exp.Literal.string(table.db).sql(), exp.Literal.string(table.name).sql()
    if dialect == "duckdb":
        rows = client.execute_sql(
            "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() WHERE database_name = "
            f"current_database() AND schema_name = {schema} AND table_name = {name} "
            "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')") or []
        return {(kinds[kind], tuple(columns)) for kind, columns in rows}
    if dialect == "sqlite":
        db, tbl = client.render(client.identifier(table.db)), client.render(client.identifier(table.name))
        info = client.execute_sql(f"PRAGMA {db}.table_info({tbl})") or []
        out = set()
        primary = tuple(row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        if primary:
            out.add(("primary_key", primary))
        for _, index, unique, origin, *_ in client.execute_sql(f"PRAGMA {db}.index_list({tbl})") or []:
            if unique and origin == "u":
                columns = client.execute_sql(f"PRAGMA {db}.index_info({client.render(client.identifier(index))})")
                out.add(("unique", tuple(row[2] for row in sorted(columns or []))))
        return out
    rows = client.execute_sql(
        "SELECT tc.constraint_name, tc.constraint_type, kcu.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage kcu ON kcu.constraint_schema = tc.constraint_schema AND "
        "kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name "
        f"WHERE tc.table_schema = {schema} AND tc.table_name = {name} AND tc.constraint_type IN ('PRIMARY KEY', "
        "'UNIQUE') ORDER BY tc.constraint_name, kcu.ordinal_position") or []
    grouped: dict[tuple[str, str], list[str]] = {}
    for constraint, kind, column in rows:
        grouped.setdefault((constraint, kinds[kind]), []).append(column)
    return {(kind, tuple(columns)) for (constraint, kind), columns in grouped.items()
            if not constraint.endswith("__lb_upsert_key")}


def keys_of(p: loadbay.Pipeline, table: str) -> set[tuple[str, tuple[str, ...]]]:
    with p.sql_client() as client:
        return declared_keys(client, client.qualified(table))


def _rows(version: str) -> list[dict[str, Any]]:
    return [{"id": 1, "region": "eu", "email": "a@x", "v": version, "tags": ["a"]},
            {"id": 2, "region": "eu", "email": "b@x", "v": f"{version}-first", "tags": ["b1"]},
            {"id": 2, "region": "eu", "email": "b@x", "v": f"{version}-last", "tags": ["b2", "b3"]}]


HINTS = {"primary_key": ["id", "region"], "columns": {"email": {"unique": True}}}
HINTS_ONE = {"primary_key": "id", "columns": {"email": {"unique": True}}}


def test_keys_are_declared_in_the_tables_loadbay_creates(make_pipeline):
    p = keyed(make_pipeline)
    run_ok(p, _rows("1")[:2], table_name="t", **HINTS)
    assert keys_of(p, "t") == {PK, EMAIL}  # one compound primary key; loadbay's own _lb_id is not declared
    assert keys_of(p, "t__tags") == set()
    ddl = "\n".join(schema_ddl(p))
    assert "PRIMARY KEY" in ddl and "UNIQUE" in ddl  # `loadbay pipeline NAME schema --format ddl` shows them


def test_keys_are_not_declared_by_default(make_pipeline):
    p = make_pipeline()
    if not isinstance(p.destination, SqlDestination):
        pytest.skip(f"{p.destination.destination_type} runs no SQL")
    run_ok(p, _rows("1")[:2], table_name="t", **HINTS)
    if p.capabilities.ddl_hints:  # a database that declares none may have no catalog of keys (Spark)
        assert keys_of(p, "t") == set()
    assert "PRIMARY KEY" not in "\n".join(schema_ddl(p))


def test_an_append_that_repeats_a_key_fails_naming_the_table_and_stays_pending(make_pipeline):
    p = keyed(make_pipeline)
    run_ok(p, [{"id": 1, "region": "eu", "email": "a@x"}], table_name="t", **HINTS)
    info = p.run([{"id": 1, "region": "eu", "email": "z@x"}], table_name="t")
    failed = [job for package in info.load_packages for job in package.failed_jobs]
    assert [job.table_name for job in failed] == ["t"]
    assert "table 't': a row repeats a key" in failed[0].error and "primary key (id, region)" in failed[0].error
    assert "retry-failed" in failed[0].error
    assert p.pending_packages() == info.loads_ids and info.load_packages[0].state == "failed"
    assert count(p, "t") == 1
    with pytest.raises(LoadJobFailed, match="table 't': a row repeats a key"):
        info.raise_on_failed_jobs()
    assert p.drop_pending_packages() == info.loads_ids

    plain = make_pipeline(name="plain")  # create_indexes off (the default): the same appends load
    run_ok(plain, [{"id": 1, "region": "eu", "email": "a@x"}], table_name="t", **HINTS)
    run_ok(plain, [{"id": 1, "region": "eu", "email": "z@x"}], table_name="t")
    assert count(plain, "t") == 2 and keys_of(plain, "t") == set()


def test_an_atomic_append_that_repeats_a_key_fails_naming_the_table(make_pipeline):
    p = keyed(make_pipeline, atomic_appends=True)
    run_ok(p, [{"id": 1, "region": "eu", "email": "a@x"}], table_name="t", **HINTS)
    with pytest.raises(PipelineStepFailed, match="table 't': a row repeats a key") as raised:
        p.run([{"id": 2, "region": "eu", "email": "a@x"}], table_name="t")  # a unique email, twice
    assert "unique (email)" in str(raised.value) and "run the pipeline again" in str(raised.value)
    assert len(p.pending_packages()) == 1 and count(p, "t") == 1


@pytest.mark.parametrize("strategy", ["delete-insert", "upsert", "insert-only"])
def test_merges_load_exactly_with_the_keys_declared(make_pipeline, strategy):
    p = keyed(make_pipeline)
    if strategy not in p.capabilities.merge_strategies:
        pytest.skip(f"{p.destination.destination_type} has no merge strategy {strategy!r}")
    merge = {"disposition": "merge", "strategy": strategy}
    run_ok(p, _rows("1"), table_name="t", write_disposition=merge, **HINTS)  # a key twice in one package
    assert keys_of(p, "t") == {PK, EMAIL}
    run_ok(p, [*_rows("2"), {"id": 3, "region": "eu", "email": "c@x", "v": "2", "tags": []}],
           table_name="t", write_disposition=merge, **HINTS)  # the same keys and emails again, and a new one
    kept = "1" if strategy == "insert-only" else "2"
    assert select(p, "t", "id", "region", "email", "v") == [
        (1, "eu", "a@x", kept), (2, "eu", "b@x", f"{kept}-last"), (3, "eu", "c@x", "2")]
    assert children(p, "t__tags") == {1: ["a"], 2: ["b2", "b3"]}
    assert keys_of(p, "t") == {PK, EMAIL}


def test_a_table_that_keeps_versions_of_a_key_declares_no_keys(make_pipeline):
    p = keyed(make_pipeline)
    if "scd2" not in p.capabilities.merge_strategies:
        pytest.skip(f"{p.destination.destination_type} has no merge strategy 'scd2'")
    scd2 = {"disposition": "merge", "strategy": "scd2"}
    run_ok(p, [{"id": 1, "email": "a@x", "v": "a"}], table_name="t", write_disposition=scd2, **HINTS_ONE)
    run_ok(p, [{"id": 1, "email": "a@x", "v": "b"}], table_name="t", write_disposition=scd2, **HINTS_ONE)
    assert select(p, "t", "id", "v") == [(1, "a"), (1, "b")]  # one key, two versions
    assert keys_of(p, "t") == set()


def test_staging_tables_have_no_keys(make_pipeline):
    p = keyed(make_pipeline)
    run_ok(p, _rows("1"), table_name="t", write_disposition="merge", **HINTS)
    dry = p.run(_rows("2"), table_name="t", write_disposition="merge", dry_run=True)
    staged = [s for s in dry.statements if s.startswith("CREATE TABLE") and p.config.staging_dataset_name in s]
    assert staged and not [s for s in staged if "PRIMARY KEY" in s or "UNIQUE" in s]
    with p.destination.client(p.config) as client:
        client.prepare_load(p.schema, ["t"], "1234567890_abcdef")
        try:
            staging = client.staging_table("t", "1234567890_abcdef")
            assert declared_keys(client.sql_client, staging) == set()
        finally:
            client.clean_up_package(p.schema, ["t"], "1234567890_abcdef")


@pytest.mark.parametrize("strategy", ["insert-from-staging", "truncate-and-insert", "staging-optimized"])
def test_replaced_tables_keep_their_keys(make_pipeline, strategy):
    p = keyed(make_pipeline)
    require_replace_strategy(p, strategy)
    replace = {"disposition": "replace", "strategy": strategy}
    hints = {**HINTS, "columns": {"email": {"unique": True}, "v": {"cluster": True}}}
    run_ok(p, _rows("1")[:2], table_name="t", write_disposition=replace, **hints)
    run_ok(p, _rows("2")[2:], table_name="t", write_disposition=replace, **hints)
    assert select(p, "t", "id", "v") == [(2, "2-last")]
    assert keys_of(p, "t") == {PK, EMAIL}
    if "cluster" in p.capabilities.ddl_hints:
        assert cluster_index(p, "t") == [("t__lb_cluster", True)]


def cluster_index(p: loadbay.Pipeline, table: str) -> list[tuple[str, bool]]:
    """(name, marked for CLUSTER) of the table's indexes that are neither its primary key nor unique (PostgreSQL)."""
    return [(name, bool(marked)) for name, marked in query(
        p, "SELECT i.relname, x.indisclustered FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
           "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
           f"WHERE n.nspname = {exp.Literal.string(p.dataset_name).sql()} AND t.relname = "
           f"{exp.Literal.string(table).sql()} AND NOT x.indisprimary AND NOT x.indisunique")]


def test_cluster_columns_get_an_index_that_cluster_uses(make_pipeline):
    p = make_pipeline(destination_settings=KEYS_ON)
    if "cluster" not in p.capabilities.ddl_hints:
        pytest.skip(f"{p.destination.destination_type} has no cluster index (ddl_hints={p.capabilities.ddl_hints})")
    rows = [{"id": i, "created": f"2024-01-{i:02d}"} for i in range(9, 0, -1)]
    run_ok(p, rows, table_name="events", columns={"created": {"cluster": True}})
    assert cluster_index(p, "events") == [("events__lb_cluster", True)]
    query(p, f"CLUSTER {ident(p, p.dataset_name)}.{ident(p, 'events')}")  # what a user runs: it orders the table
    assert count(p, "events") == 9
