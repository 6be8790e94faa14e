"""Merge and replace SQL rendered per dialect, compared with reviewed snapshots.

Regenerate after an intended change with ``UPDATE_SNAPSHOTS=1 pytest tests/unit/test_sql_jobs.py``
and review the diff: these files are the SQL every destination runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from loadbay.common.capabilities import DEFAULTS
from loadbay.common.schema.types import LIST_IDX, LOAD_ID, PARENT_ID, ROOT_ID, ROW_ID, Column, Table
from loadbay.destinations import sql_jobs

SNAPSHOTS = Path(__file__).parent / "snapshots"
DIALECTS = ["duckdb", "postgres", "mysql", "sqlite"]


def _table(name: str, *columns: Column, parent: str | None = None, disposition: str = "merge") -> Table:
    system = ([Column(PARENT_ID, "text"), Column(LIST_IDX, "bigint"), Column(ROOT_ID, "text", root_key=True)]
              if parent else [Column(LOAD_ID, "text")])
    cols = [*system, Column(ROW_ID, "text"), *columns]
    return Table(name, {c.name: c for c in cols}, write_disposition=disposition, parent=parent)


def _ref(dataset: str):
    return lambda name: exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier(dataset, quoted=True))


TARGET, STAGING = _ref("ds"), _ref("ds_staging")
ROOT = _table("events", Column("id", "bigint", primary_key=True, nullable=False), Column("name", "text"))
CHILD = _table("events__tags", Column("value", "text"), parent="events")
HARD_DELETE_ROOT = _table("events", Column("shop", "text", primary_key=True), Column("id", "bigint", primary_key=True),
                          Column("updated_at", "timestamp", dedup_sort="desc"), Column("deleted", "bool", hard_delete=True))
GRANDCHILD = _table("events__tags__x", Column("value", "text"), parent="events__tags")

CASES = {
    "merge_pk_children": lambda caps: sql_jobs.merge_delete_insert(ROOT, [CHILD, GRANDCHILD], TARGET, STAGING, caps),
    "merge_compound_dedup_sort_hard_delete": lambda caps: sql_jobs.merge_delete_insert(
        _table("orders", Column("shop", "text", primary_key=True), Column("id", "bigint", primary_key=True),
               Column("updated_at", "timestamp", dedup_sort="desc"), Column("deleted", "bool", hard_delete=True)),
        [], TARGET, STAGING, caps),
    "merge_key_only": lambda caps: sql_jobs.merge_delete_insert(
        _table("days", Column("day", "date", merge_key=True), Column("v", "double")), [], TARGET, STAGING, caps),
    "replace_from_staging": lambda caps: sql_jobs.replace_from_staging(ROOT, [CHILD], TARGET, STAGING, caps),
    "truncate_and_insert": lambda caps: sql_jobs.truncate_tables([ROOT, CHILD], TARGET, caps),
    "upsert_merge": lambda caps: sql_jobs.merge_upsert(HARD_DELETE_ROOT, [CHILD], TARGET, STAGING, caps, "merge"),
    "upsert_on_conflict": lambda caps: sql_jobs.merge_upsert(HARD_DELETE_ROOT, [CHILD], TARGET, STAGING, caps,
                                                             "on_conflict"),
    "upsert_on_duplicate_key": lambda caps: sql_jobs.merge_upsert(HARD_DELETE_ROOT, [CHILD], TARGET, STAGING, caps,
                                                                  "on_duplicate_key"),
    "replace_staging_optimized": lambda caps: sql_jobs.replace_staging_optimized(ROOT, [CHILD], TARGET, STAGING, caps),
    "append_from_staging": lambda caps: sql_jobs.append_from_staging(ROOT, [CHILD], TARGET, STAGING, caps),
}
# statements some dialects do not have are rendered only where a destination uses them
DIALECTS_OF = {"upsert_merge": ["duckdb", "postgres"], "upsert_on_conflict": ["postgres", "sqlite"],
               "upsert_on_duplicate_key": ["mysql"],
               "replace_staging_optimized": ["postgres"]}
PAIRS = [(case, dialect) for case in sorted(CASES) for dialect in DIALECTS_OF.get(case, DIALECTS)]


def render(case: str, dialect: str) -> str:
    caps = DEFAULTS.with_(sqlglot_dialect=dialect, supports_truncate=dialect != "sqlite")
    return ";\n".join(s.sql(dialect=dialect) for s in CASES[case](caps)) + ";\n"


@pytest.mark.parametrize(("case", "dialect"), PAIRS)
def test_snapshot(case: str, dialect: str) -> None:
    sql = render(case, dialect)
    path = SNAPSHOTS / f"{case}.{dialect}.sql"
    if os.environ.get("UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(sql)
        if not os.environ.get("UPDATE_SNAPSHOTS"):
            pytest.fail(f"snapshot {path.name} was missing and has been written; review it and run again")
    assert sql == path.read_text()


@pytest.mark.parametrize(("case", "dialect"), PAIRS)
def test_rendered_sql_parses_back(case: str, dialect: str) -> None:
    """What we render is valid SQL in its dialect (sqlglot reads every statement back)."""
    for statement in render(case, dialect).split(";\n"):
        if statement.strip():
            sqlglot.parse_one(statement, read=dialect)


def test_merge_deletes_children_before_their_roots_and_inserts_children_first() -> None:
    statements = sql_jobs.merge_delete_insert(ROOT, [CHILD, GRANDCHILD], TARGET, STAGING, DEFAULTS)
    kinds = [(type(s).__name__, s.find(exp.Table).name) for s in statements]
    assert kinds == [("Delete", "events__tags"), ("Delete", "events__tags__x"), ("Delete", "events"),
                     ("Insert", "events__tags"), ("Insert", "events__tags__x"), ("Insert", "events")]


def test_identifiers_are_quoted_not_pasted() -> None:
    evil = _table('x"; DROP TABLE y; --', Column('id"--', "bigint", primary_key=True))
    for statement in sql_jobs.merge_delete_insert(evil, [], TARGET, STAGING, DEFAULTS):
        sql = statement.sql(dialect="postgres")
        assert '"x""; DROP TABLE y; --"' in sql
        assert '"id""--"' in sql
        parsed = sqlglot.parse_one(sql, read="postgres")  # one statement: the name did not split it
        assert parsed.find(exp.Table).name == 'x"; DROP TABLE y; --'


def test_append_only_merge_without_keys_inserts_everything() -> None:
    table = _table("plain", Column("v", "text"))
    statements = sql_jobs.merge_delete_insert(table, [], TARGET, STAGING, DEFAULTS)
    assert [type(s).__name__ for s in statements] == ["Insert"]
    assert "ROW_NUMBER" not in statements[0].sql()


def test_truncate_falls_back_to_delete_without_truncate_support() -> None:
    caps = DEFAULTS.with_(supports_truncate=False)
    (statement,) = sql_jobs.truncate_tables([ROOT], TARGET, caps)
    assert isinstance(statement, exp.Delete)


def test_upsert_needs_a_primary_key() -> None:
    with pytest.raises(Exception, match="upsert strategy needs a primary_key"):
        sql_jobs.merge_upsert(_table("plain", Column("v", "text")), [], TARGET, STAGING, DEFAULTS)


def test_upsert_on_conflict_creates_the_unique_key_first_and_uses_the_excluded_pseudo_table() -> None:
    statements = sql_jobs.merge_upsert(HARD_DELETE_ROOT, [], TARGET, STAGING, DEFAULTS, "on_conflict")
    first = statements[0].sql(dialect="postgres")
    assert first.startswith("CREATE UNIQUE INDEX IF NOT EXISTS") and '("shop", "id")' in first
    last = statements[-1].sql(dialect="postgres")
    assert 'ON CONFLICT("shop", "id") DO UPDATE SET' in last and '"updated_at" = excluded."updated_at"' in last


def test_staging_optimized_renames_a_package_staging_table_to_its_target() -> None:
    """Staging tables are named per package (``<table>__<load_id>``): moved in, they take the table's name."""
    caps = DEFAULTS.with_(sqlglot_dialect="postgres")
    private = lambda name: TARGET(name).__class__(this=sql_jobs._ident(f"{name}__17_ab"),  # noqa: E731
                                                  db=sql_jobs._ident("ds_staging"))
    sql = [s.sql(dialect="postgres") for s in sql_jobs.replace_staging_optimized(ROOT, [], TARGET, private, caps)]
    assert sql == ['DROP TABLE IF EXISTS "ds"."events"', 'ALTER TABLE "ds_staging"."events__17_ab" SET SCHEMA "ds"',
                   'ALTER TABLE "ds"."events__17_ab" RENAME TO "events"']


def test_staging_optimized_moves_every_table_of_the_resource() -> None:
    caps = DEFAULTS.with_(sqlglot_dialect="postgres")
    sql = [s.sql(dialect="postgres") for s in sql_jobs.replace_staging_optimized(ROOT, [CHILD], TARGET, STAGING, caps)]
    assert sql == ['DROP TABLE IF EXISTS "ds"."events"', 'ALTER TABLE "ds_staging"."events" SET SCHEMA "ds"',
                   'DROP TABLE IF EXISTS "ds"."events__tags"', 'ALTER TABLE "ds_staging"."events__tags" SET SCHEMA "ds"']
