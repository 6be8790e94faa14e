"""Merge and replace SQL rendered per dialect, compared with reviewed snapshots.

Regenerate after an intended change with ``UPDATE_SNAPSHOTS=1 pytest tests/unit/test_sql_jobs.py``
and review the diff: these files are the SQL every destination runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from loadbay.common.capabilities import DEFAULTS
from loadbay.common.exceptions import SchemaError
from loadbay.common.schema.types import LIST_IDX, LOAD_ID, PARENT_ID, ROOT_ID, ROW_ID, Column, Table
from loadbay.destinations import sql_jobs
from tests.unit.snapshot import assert_snapshot

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

SCD2_ROOT = _table("events", Column("id", "bigint", merge_key=True), Column("name", "text"),
                   Column("deleted", "bool", hard_delete=True), Column("_lb_valid_from", "timestamp", valid_from=True),
                   Column("_lb_valid_to", "timestamp", valid_to=True), Column("_lb_row_hash", "text", row_hash=True))
BOUNDARY = exp.Cast(this=exp.Literal.string("2024-01-02 03:04:05.678901+00:00"), to=exp.DataType.build("timestamptz"))

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
    "merge_insert_only": lambda caps: sql_jobs.merge_insert_only(HARD_DELETE_ROOT, [CHILD], TARGET, STAGING, caps),
    "upsert_merge": lambda caps: sql_jobs.merge_upsert(HARD_DELETE_ROOT, [CHILD], TARGET, STAGING, caps, "merge"),
    "upsert_on_conflict": lambda caps: sql_jobs.merge_upsert(HARD_DELETE_ROOT, [CHILD], TARGET, STAGING, caps,
                                                             "on_conflict"),
    "upsert_on_duplicate_key": lambda caps: sql_jobs.merge_upsert(HARD_DELETE_ROOT, [CHILD], TARGET, STAGING, caps,
                                                                  "on_duplicate_key"),
    "replace_staging_optimized": lambda caps: sql_jobs.replace_staging_optimized(ROOT, [CHILD], TARGET, STAGING, caps),
    "append_from_staging": lambda caps: sql_jobs.append_from_staging(ROOT, [CHILD], TARGET, STAGING, caps),
    "merge_scd2": lambda caps: sql_jobs.merge_scd2(SCD2_ROOT, [CHILD], TARGET, STAGING, caps, BOUNDARY),
}
# statements some dialects do not have are rendered only where a destination uses them
DIALECTS_OF = {"upsert_merge": ["duckdb", "postgres"], "upsert_on_conflict": ["postgres", "sqlite"],
               "upsert_on_duplicate_key": ["mysql"],
               "replace_staging_optimized": ["postgres"]}
PAIRS = [(case, dialect) for case in sorted(CASES) for dialect in DIALECTS_OF.get(case, DIALECTS)]


def render(case: str, dialect: str) -> str:
    caps = DEFAULTS.with_(sqlglot_dialect=dialect, supports_truncate=dialect != "sqlite",
                          merge_lookup_indexes=dialect == "mysql")  # as the mysql destination's
    return ";\n".join(s.sql(dialect=dialect) for s in CASES[case](caps)) + ";\n"


@pytest.mark.parametrize(("case", "dialect"), PAIRS)
def test_snapshot(case: str, dialect: str) -> None:
    assert_snapshot(f"{case}.{dialect}.sql", render(case, dialect))


MOVE_TO_SCHEMA = re.compile(r"ALTER TABLE (?P<table>.+) SET SCHEMA (?P<schema>[^ ]+)")
"""The one statement sqlglot can only read back as an opaque ``Command`` (staging-optimized replace)."""


@pytest.mark.parametrize(("case", "dialect"), PAIRS)
def test_rendered_sql_parses_back(case: str, dialect: str) -> None:
    """What we render is valid SQL in its dialect: sqlglot reads every statement back as a real expression.
    Any text at all reads back as an opaque ``Command``, so a statement read that way must be exactly the
    staging-optimized move: a staging table of the case, quoted, into the quoted target dataset."""
    for statement in render(case, dialect).split(";\n"):
        if not statement.strip() or not isinstance(sqlglot.parse_one(statement, read=dialect), exp.Command):
            continue
        move = MOVE_TO_SCHEMA.fullmatch(statement)
        assert move, f"sqlglot cannot read {statement!r} ({case}, {dialect})"
        table = exp.to_table(move["table"], dialect=dialect)
        assert table.sql(dialect=dialect) == move["table"], statement  # the whole name, quoted by sqlglot
        assert (table.db, table.name) in {("ds_staging", t.name) for t in (ROOT, CHILD, GRANDCHILD)}, statement
        assert move["schema"] == exp.to_identifier("ds", quoted=True).sql(dialect=dialect), statement


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
    with pytest.raises(SchemaError) as raised:
        sql_jobs.merge_upsert(_table("plain", Column("v", "text")), [], TARGET, STAGING, DEFAULTS)
    assert type(raised.value) is SchemaError
    assert str(raised.value) == "table 'plain': the upsert strategy needs a primary_key"


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



# -- statements.py: rendering, raw(), the dialect tables; strategies; one place per rule ----------------
from loadbay.destinations import statements  # noqa: E402


def test_render_refuses_a_plain_string_so_no_sql_is_built_as_text() -> None:
    with pytest.raises(TypeError, match=r"render\(\) takes a sqlglot expression or raw\(\.\.\.\), not str"):
        statements.render("SELECT 1", "duckdb")
    assert statements.render(exp.select(exp.Literal.number(1)), "duckdb") == "SELECT 1"


def test_raw_quotes_its_names_with_sqlglot_and_keeps_its_text() -> None:
    evil = exp.Table(this=exp.to_identifier('t"; DROP TABLE x; --', quoted=True), db=exp.to_identifier("ds", quoted=True))
    locked = statements.lock_tables([evil, TARGET("a")], "postgres")
    assert locked is not None
    assert locked.sql("postgres") == ('LOCK TABLE "ds"."a", "ds"."t""; DROP TABLE x; --" IN SHARE ROW EXCLUSIVE MODE')
    assert statements.lock_tables([TARGET("a")], "duckdb") is None  # no table locks worth taking there


@pytest.mark.parametrize(("dialect", "marker"), [("mysql", "%s"), ("postgres", "%s"), ("sqlite", "?"), ("duckdb", "?")])
def test_placeholders_are_written_in_the_drivers_style_not_the_dialects(dialect: str, marker: str) -> None:
    text = statements.render(statements.insert_row(TARGET("t"), ["a", "b"]), dialect, marker)
    assert text.endswith(f"VALUES ({marker}, {marker})"), text


def test_copy_from_stdin_is_a_sqlglot_copy_with_loadbays_csv_options() -> None:
    copy = statements.copy_from_stdin(TARGET("t"), ["a", 'b"c'], header=False)
    assert isinstance(copy, exp.Copy)
    assert copy.sql("postgres") == ('COPY "ds"."t" ("a", "b""c") FROM STDIN WITH '
                                    "(FORMAT csv, HEADER FALSE, NULL '', ENCODING 'UTF8')")


def test_load_data_local_infile_reads_loadbays_csv_for_mysql_with_names_quoted_by_sqlglot() -> None:
    """Every column by name, binary and bool through user variables; the path a quoted literal."""
    columns = [Column("id", "bigint"), Column("b`in", "binary"), Column("ok", "bool"), Column("s", "text")]
    statement = statements.load_data_local_infile("/tmp/it's.csv", TARGET("t"), columns)
    assert isinstance(statement, statements.Raw)
    assert statements.render(statement, "mysql", "%s") == (
        "LOAD DATA LOCAL INFILE '/tmp/it''s.csv' INTO TABLE `ds`.`t` CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' "
        "OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '' LINES TERMINATED BY '\\n' IGNORE 1 LINES (`id`, @lb_2, @lb_3, `s`) "
        "SET `b``in` = UNHEX(SUBSTRING(@lb_2, 3)), "
        "`ok` = CASE LOWER(@lb_3) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE ELSE @lb_3 END")


def test_session_setup_and_named_lock_are_dialect_tables() -> None:
    """MySQL sessions: UTC, strict sql_mode, innodb_strict_mode off; schema changes under GET_LOCK (DDL
    commits there, so no transaction-scoped lock); other dialects have none of these."""
    setup = [statements.render(s, "mysql") for s in statements.session_setup("mysql")]
    assert setup[0] == "SET time_zone = '+00:00'"
    assert setup[1].startswith("SET SESSION sql_mode = 'STRICT_ALL_TABLES,") and "NO_BACKSLASH_ESCAPES" not in setup[1]
    assert setup[2] == "SET SESSION innodb_strict_mode = OFF"
    assert [statements.render(s, "postgres") for s in statements.session_setup("postgres")] == ["SET timezone = 'UTC'"]
    acquire, release = statements.session_lock("mysql")  # type: ignore[misc]
    assert (statements.render(acquire, "mysql", "%s"), statements.render(release, "mysql", "%s")) == (
        "SELECT GET_LOCK(%s, 60)", "SELECT RELEASE_LOCK(%s)")
    assert statements.session_lock("postgres") is None and statements.xact_lock("mysql") is None


def test_upsert_syntax_is_a_table_and_merge_needs_postgresql_15() -> None:
    asked: list[str] = []

    def version(answer: tuple[int, ...]):
        return lambda: asked.append("version") or answer

    assert statements.upsert_syntax("postgres", version((15, 0))) == "merge"
    assert statements.upsert_syntax("postgres", version((14, 9))) == "on_conflict"
    assert asked == ["version", "version"]
    assert statements.upsert_syntax("mysql", version(())) == "on_duplicate_key"
    assert statements.upsert_syntax("sqlite", version(())) == "on_conflict"
    assert statements.upsert_syntax("duckdb", version(())) == "merge"
    assert asked == ["version", "version"]  # only a dialect whose MERGE came with a version asks the server


def test_capabilities_refuse_strategies_loadbay_does_not_know() -> None:
    with pytest.raises(ValueError, match=r"unknown merge strategies \['bogus'\]"):
        DEFAULTS.with_(merge_strategies=("delete-insert", "bogus"))
    with pytest.raises(ValueError, match=r"unknown replace strategies \['swap'\]"):
        DEFAULTS.with_(replace_strategies=("swap",))


def _duckdb_job_client(tmp_path: Path, **capabilities: object):
    """A real DuckDB job client (a file in tmp_path), its capabilities changed as given."""
    from loadbay.destinations.duckdb import duckdb

    destination = duckdb(credentials=str(tmp_path / "strategies.duckdb"))
    config = destination.configuration("strategies", "ds")
    sql_client_class, job_client_class = destination.client_classes(config)
    caps = destination.capabilities_for(config).with_(**capabilities)
    return job_client_class(config, caps, sql_client_class(config, caps))


@pytest.mark.parametrize(("disposition", "strategy", "message"), [
    ("merge", "insert-only", "merge strategy 'insert-only' has no staged SQL in loadbay"),
    ("merge", "upsert", "merge strategy 'upsert' is not supported by this destination; supported: ('delete-insert', 'insert-only')"),
    ("replace", "staging-optimized", "replace strategy 'staging-optimized' is not supported by this destination"),
    ("append", "upsert", "append strategy 'upsert' is not supported by this destination"),
])
def test_followup_sql_never_runs_another_strategys_sql(tmp_path: Path, disposition: str, strategy: str,
                                                       message: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staged table whose strategy has no SQL, or is not in the capabilities, fails naming it: it is
    never sent to delete-insert (or any other strategy's SQL) instead."""
    from loadbay.common.exceptions import DestinationTerminalError

    monkeypatch.delitem(sql_jobs.STAGED_SQL, ("merge", "insert-only"))  # a known strategy without SQL

    client = _duckdb_job_client(tmp_path, merge_strategies=("delete-insert", "insert-only"))
    table = _table("events", Column("id", "bigint", primary_key=True), disposition=disposition)
    table.strategy = strategy
    with client, pytest.raises(DestinationTerminalError) as raised:
        client.followup_sql(table, [], "1700000000.1")
    assert type(raised.value) is DestinationTerminalError
    assert str(raised.value).startswith(f"table 'events': {message}"), str(raised.value)


def test_followup_sql_picks_each_strategys_own_sql(tmp_path: Path) -> None:
    client = _duckdb_job_client(tmp_path)
    table = _table("events", Column("id", "bigint", primary_key=True))
    with client:
        for strategy, first in (("delete-insert", exp.Delete), ("upsert", exp.Delete), (None, exp.Delete)):
            table.strategy = strategy
            statements_run = client.followup_sql(table, [CHILD], "1700000000.1")
            assert isinstance(statements_run[0], first)
            assert any(isinstance(s, exp.Merge) for s in statements_run) is (strategy == "upsert"), strategy


def test_every_statement_loadbay_runs_is_an_expression_not_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real DuckDB pipeline through every disposition (children, upsert, replace, atomic append): each
    statement reaches the SQL client as a sqlglot expression or raw(), never as SQL text."""
    import loadbay
    from loadbay.destinations.sql_client import SqlClient

    seen: list[object] = []
    original = SqlClient.execute_sql

    def recording(self: SqlClient, statement: object, *params: object) -> object:
        seen.append(statement)
        return original(self, statement, *params)  # type: ignore[arg-type]

    monkeypatch.setattr(SqlClient, "execute_sql", recording)
    p = loadbay.pipeline("statements", destination=loadbay.destination("duckdb", credentials=str(tmp_path / "s.duckdb")),
                         dataset_name="ds", pipelines_dir=str(tmp_path / "pipelines"))
    rows = [{"id": 1, "tags": ["a", "b"], "doc": {"k": 1}}, {"id": 2, "tags": []}]
    for disposition in ({"disposition": "merge", "strategy": "upsert"}, "merge", "replace",
                        {"disposition": "append", "strategy": "insert-from-staging"}, "append"):
        for file_format in ("jsonl", "insert_values"):
            p.run(rows, table_name=f"t_{file_format}", write_disposition=disposition, primary_key="id",
                  loader_file_format=file_format).raise_on_failed_jobs()
    texts = [s for s in seen if isinstance(s, str)]
    assert texts == []
    assert len(seen) > 50 and any(isinstance(s, statements.Raw) for s in seen)


def test_importing_the_destination_factories_imports_no_sql_machinery_or_driver() -> None:
    """``from loadbay.destinations import duckdb, postgres, sqlalchemy`` is light: the SQL and job clients
    (sqlglot, Arrow, drivers) are imported when a client is first made."""
    import subprocess
    import sys

    code = ("import sys\nfrom loadbay.destinations import duckdb, noop, postgres, sqlalchemy\n"
            "heavy = ('sqlglot', 'pyarrow', 'duckdb', 'psycopg2', 'sqlalchemy', 'pymysql', "
            "'loadbay.destinations.sql_client', 'loadbay.destinations.job_client')\n"
            "print(sorted(m for m in sys.modules if m in heavy))\n"
            "duckdb(credentials=':memory:').sql_client(duckdb(credentials=':memory:').configuration('p', 'ds'))\n"
            "print(sorted(m for m in sys.modules if m in heavy))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1] == "['loadbay.destinations.job_client', 'loadbay.destinations.sql_client', 'sqlglot']"  # no driver yet


def test_the_sqlalchemy_destination_takes_nothing_from_the_postgres_one() -> None:
    """PostgreSQL's SQLSTATEs, locks and MERGE rule are shared modules, not the postgres destination's."""
    package = Path(__file__).parents[2] / "destinations" / "sqlalchemy"
    for path in package.glob("*.py"):
        assert "destinations.postgres" not in path.read_text(encoding="utf-8"), path.name


def test_mysql_merges_refresh_statistics_first_and_others_do_not():
    """InnoDB refreshes statistics in the background; a merge planned on stale ones (another pipeline's
    merge just changed the table) ran minutes instead of a second on MariaDB."""
    from loadbay.destinations import statements

    tables = [exp.to_table("d.t"), exp.to_table("d.t__kids")]
    assert statements.analyze_tables(tables, "mysql").sql("mysql") == "ANALYZE TABLE d.t, d.t__kids"
    assert statements.analyze_tables(tables, "postgres") is None
    assert statements.analyze_tables([], "mysql") is None
