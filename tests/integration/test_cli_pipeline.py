"""``loadbay pipeline NAME <command>`` and ``loadbay tables`` run as subprocesses of the installed command, on a
DuckDB file and on PostgreSQL: a pipeline is reopened from what its last run remembered (no flags), every
command prints what the destination and the package folders hold, a password never shows, and a pipeline
that never ran is an error (exit 2) that creates nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

import loadbay
from loadbay.destinations.testing.setups import POSTGRES_URL, require_server
from loadbay.inspection import PIPELINE_FILE, PipelineNotFound, attach, table_counts
from tests.conftest import REPO
from tests.integration.test_cli_inputs import loadbay_command

ROWS = [{"id": i, "name": f"n{i}", "tags": [f"t{i}"] * (i % 3)} for i in range(6)]


def run_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command with only a pipelines_dir: everything else comes from the pipeline's last run."""
    return subprocess.run([*loadbay_command(), *args, "--pipelines-dir", str(cwd / "pipes")], capture_output=True,
                          text=True, check=False, cwd=cwd, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.fixture
def duck(isolated_env: Path) -> Path:
    """A pipeline ``gh`` that loaded ROWS into a DuckDB file, from Python."""
    p = loadbay.pipeline("gh", destination=loadbay.destination("duckdb", credentials=str(isolated_env / "lake.duckdb")),
                         dataset_name="raw", pipelines_dir=isolated_env / "pipes")
    p.run(ROWS, table_name="events", write_disposition="merge", primary_key="id").raise_on_failed_jobs()
    return isolated_env


def test_info_names_destination_dataset_loads_and_pending(duck: Path) -> None:
    out = run_cli(duck, "pipeline", "gh", "info")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "destination:   duckdb (duckdb)" in lines and "dataset:       raw" in lines
    assert f"location:      {duck / 'lake.duckdb'}" in lines
    import duckdb

    with duckdb.connect(str(duck / "lake.duckdb"), read_only=True) as con:
        loaded = con.execute("SELECT load_id FROM raw._lb_loads").fetchall()
    assert [line.split()[0] for line in lines if "status 0" in line] == [loaded[0][0]]
    assert "pending:       none" in lines


def test_schema_as_text_ddl_and_json(duck: Path) -> None:
    text = run_cli(duck, "pipeline", "gh", "schema").stdout
    assert "events (merge)" in text and "events__tags (merge, child of events)" in text
    assert any(line.split()[:3] == ["id", "bigint", "primary_key"] for line in text.splitlines())
    ddl = run_cli(duck, "pipeline", "gh", "schema", "--format", "ddl").stdout
    statements = [s for s in ddl.split(";\n") if s.strip()]
    assert len(statements) == 2 and all(s.startswith("CREATE TABLE IF NOT EXISTS") for s in statements)
    import duckdb  # the DDL runs as printed, in a fresh database with the dataset's name

    con = duckdb.connect(str(duck / "copy.duckdb"))
    con.execute("CREATE SCHEMA raw")
    for statement in statements:
        con.execute(statement.replace('"lake".', '"copy".'))
    assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw'").fetchone() == (2,)
    tables = json.loads(run_cli(duck, "pipeline", "gh", "schema", "--format", "json").stdout)
    assert [t["name"] for t in tables] == ["events", "events__tags"]


def test_schema_ddl_shows_the_keys_create_indexes_declares(duck: Path) -> None:
    env = {"DESTINATION__DUCKDB__CREATE_INDEXES": "true"}
    ddl = run_cli(duck, "pipeline", "gh", "schema", "--format", "ddl", env=env).stdout
    root, child = [s for s in ddl.split(";\n") if s.strip()]
    assert root.endswith('"name" TEXT, PRIMARY KEY ("id"))') and "PRIMARY KEY" not in child and "UNIQUE" not in ddl
    assert "PRIMARY KEY" not in run_cli(duck, "pipeline", "gh", "schema", "--format", "ddl").stdout


def test_tables_and_query_in_three_formats(duck: Path) -> None:
    out = run_cli(duck, "tables", "gh")
    assert out.returncode == 0, out.stderr
    counts = {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines() if line.endswith(" rows")}
    assert counts == {"events": 6, "events__tags": sum(i % 3 for i in range(6))}
    assert run_cli(duck, "pipeline", "gh", "tables").stdout == out.stdout
    sql = "SELECT id, name FROM events WHERE id < 3 ORDER BY id"
    as_csv = run_cli(duck, "pipeline", "gh", "query", sql, "--format", "csv").stdout
    assert list(csv.reader(io.StringIO(as_csv))) == [["id", "name"], ["0", "n0"], ["1", "n1"], ["2", "n2"]]
    as_json = json.loads(run_cli(duck, "pipeline", "gh", "query", sql, "--format", "json").stdout)
    assert as_json == [{"id": i, "name": f"n{i}"} for i in range(3)]
    table = run_cli(duck, "pipeline", "gh", "query", sql).stdout.splitlines()
    assert table[0].split() == ["id", "name"] and table[2].split() == ["0", "n0"] and table[-1] == "(3 rows)"
    bad = run_cli(duck, "pipeline", "gh", "query", "SELECT nope FROM events")
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_pending_shows_a_failed_job_and_retry_failed_loads_it(duck: Path) -> None:
    p = attach("gh", duck / "pipes")
    with p.sql_client() as client:
        client.execute_sql("CREATE TABLE raw.later (id BIGINT CHECK (id < 100))")
    info = p.run([{"id": 500}], table_name="later")
    assert info.has_failed_jobs
    out = run_cli(duck, "pipeline", "gh", "pending")
    assert out.returncode == 0
    assert "failed: 1" in out.stdout and "FAILED later." in out.stdout and "(table later)" in out.stdout
    with p.sql_client() as client:
        client.execute_sql("DROP TABLE raw.later")
    assert "1 failed job(s)" in run_cli(duck, "pipeline", "gh", "retry-failed").stdout
    resumed = run_cli(duck, "pipeline", "gh", "resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert dict(table_counts(p))["later"] == 1
    assert "pending:       none" in run_cli(duck, "pipeline", "gh", "info").stdout


def test_a_pipeline_that_never_ran_is_an_error_that_creates_nothing(duck: Path) -> None:
    before = sorted(p.name for p in duck.rglob("*"))
    for args in (["tables", "hg"], ["pipeline", "hg", "info"], ["pipeline", "hg", "schema"]):
        out = run_cli(duck, *args)
        assert out.returncode == 2
        assert "pipeline 'hg' not found" in out.stderr and "pipelines there: gh" in out.stderr
    assert sorted(p.name for p in duck.rglob("*")) == before
    with pytest.raises(PipelineNotFound):
        attach("hg", duck / "pipes")


def test_a_second_dataset_counts_only_its_own_tables_and_load_exits_0(duck: Path) -> None:
    """The same pipeline loaded into another dataset: ``tables`` and the load's summary count the tables
    that dataset has (the schema also knows the first dataset's)."""
    (duck / "more.jsonl").write_text(json.dumps({"id": 1}) + "\n")
    out = subprocess.run([*loadbay_command(), "load", str(duck / "more.jsonl"), "--pipeline", "gh", "--table", "more",
                          "--dataset", "second", "--credentials", str(duck / "lake.duckdb"), "--pipelines-dir",
                          str(duck / "pipes")], capture_output=True, text=True, cwd=duck, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "more " in out.stdout and "events " not in out.stdout.split("Tables in dataset second:")[1]
    counts = run_cli(duck, "tables", "gh").stdout  # the last run's dataset: second
    assert "Tables in dataset second:" in counts and "events" not in counts and "more" in counts
    first = run_cli(duck, "tables", "gh", "--dataset", "raw").stdout
    assert "events " in first and "more" not in first


def test_postgres_pipeline_reopens_with_the_password_from_the_environment_never_shown(isolated_env: Path) -> None:
    require_server("postgres")
    url = POSTGRES_URL.replace("postgresql://postgres@", "postgresql://postgres:hunter2-secret@")
    dataset = f"cli_{uuid.uuid4().hex[:8]}"
    env = {"DESTINATION__POSTGRES__CREDENTIALS__PASSWORD": "hunter2-secret"}
    p = loadbay.pipeline("pg", destination=loadbay.destination("postgres", credentials=url), dataset_name=dataset,
                         pipelines_dir=isolated_env / "pipes")
    try:
        p.run(ROWS, table_name="events").raise_on_failed_jobs()
        remembered = (isolated_env / "pipes" / "pg" / PIPELINE_FILE).read_text()
        assert "hunter2" not in remembered and '"host"' in remembered
        for args in (["pipeline", "pg", "info"], ["tables", "pg"], ["pipeline", "pg", "schema", "--format", "ddl"],
                     ["pipeline", "pg", "query", "SELECT count(*) AS n FROM events"]):
            out = run_cli(isolated_env, *args, env=env)
            assert out.returncode == 0, out.stderr
            assert "hunter2" not in out.stdout + out.stderr
        info = run_cli(isolated_env, "pipeline", "pg", "info", env=env).stdout
        assert "destination:   postgres (postgres)" in info and ":***@" in info and f"dataset:       {dataset}" in info
        assert run_cli(isolated_env, "pipeline", "pg", "query", "SELECT count(*) AS n FROM events",
                       "--format", "csv", env=env).stdout.splitlines() == ["n", "6"]
        dropped = run_cli(isolated_env, "pipeline", "pg", "drop", "--tables", "events", "--yes", env=env)
        assert dropped.returncode == 0, dropped.stderr
        import psycopg2

        with psycopg2.connect(POSTGRES_URL) as conn, conn.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (dataset,))
            assert {r[0] for r in cur.fetchall()} & {"events", "events__tags"} == set()
    finally:
        from tests.integration.pg_helpers import drop_schemas

        drop_schemas(dataset, dataset + "_staging")


def _duck_tables(path: Path, dataset: str = "raw") -> set[str]:
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                                          [dataset]).fetchall()}


def _stored_tables(path: Path) -> set[str]:
    """Data tables of the newest schema stored in the destination (what a new machine restores)."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT schema FROM raw._lb_version WHERE schema_name = 'gh' "
                           "ORDER BY inserted_at DESC LIMIT 1").fetchall()
    if not rows:
        return set()
    tables = json.loads(rows[0][0])["tables"]
    names = [t["name"] for t in tables] if isinstance(tables, list) else list(tables)
    return {name for name in names if not name.startswith("_lb_")}


def test_drop_tables_takes_their_children_and_leaves_the_rest(duck: Path) -> None:
    p = attach("gh", duck / "pipes")
    p.run([{"id": 1}], table_name="other").raise_on_failed_jobs()
    refused = run_cli(duck, "pipeline", "gh", "drop", "--tables", "events")  # stdin is no terminal: asks for --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert {"events", "events__tags"} <= _duck_tables(duck / "lake.duckdb")
    unknown = run_cli(duck, "pipeline", "gh", "drop", "--tables", "evnets", "--yes")
    assert unknown.returncode == 2 and "'evnets'" in unknown.stderr and "events" in unknown.stderr
    out = run_cli(duck, "pipeline", "gh", "drop", "--tables", "events", "--yes")
    assert out.returncode == 0, out.stderr
    assert "drop 2 table(s): events, events__tags" in out.stdout
    assert _duck_tables(duck / "lake.duckdb") & {"events", "events__tags"} == set()
    assert "other" in _duck_tables(duck / "lake.duckdb")
    assert {t.name for t in attach("gh", duck / "pipes").schema.data_tables()} == {"other"}
    assert _stored_tables(duck / "lake.duckdb") == {"other"}  # a new machine does not bring them back
    again = attach("gh", duck / "pipes")  # the table can be loaded afresh, with new types even
    again.run([{"id": "text now"}], table_name="events").raise_on_failed_jobs()
    assert dict(table_counts(again)) == {"other": 1, "events": 1}


def test_drop_of_the_whole_pipeline_removes_its_tables_schemas_and_state(duck: Path) -> None:
    out = run_cli(duck, "pipeline", "gh", "drop", "--yes")
    assert out.returncode == 0, out.stderr
    left = _duck_tables(duck / "lake.duckdb")
    assert left & {"events", "events__tags"} == set() and "_lb_loads" in left
    assert _stored_tables(duck / "lake.duckdb") == set()
    import duckdb

    with duckdb.connect(str(duck / "lake.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM raw._lb_pipeline_state WHERE pipeline_name = 'gh'").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM raw._lb_loads").fetchone() == (1,)  # the history stays
    assert not (duck / "pipes" / "gh" / "schema.json").exists()
    p = attach("gh", duck / "pipes")
    p.run(ROWS[:2], table_name="events").raise_on_failed_jobs()
    assert dict(table_counts(p)) == {"events": 2, "events__tags": 1}


def test_drop_of_tables_waits_for_pending_packages(duck: Path) -> None:
    p = attach("gh", duck / "pipes")
    with p.sql_client() as client:
        client.execute_sql("CREATE TABLE raw.later (id BIGINT CHECK (id < 100))")
    assert p.run([{"id": 500}], table_name="later").has_failed_jobs
    out = run_cli(duck, "pipeline", "gh", "drop", "--tables", "events", "--yes")
    assert out.returncode == 2 and "pending package" in out.stderr
    assert "events" in _duck_tables(duck / "lake.duckdb")


def test_sync_restores_a_pipeline_on_a_new_machine(duck: Path) -> None:
    fresh = duck / "elsewhere"
    fresh.mkdir()
    args = ["--credentials", str(duck / "lake.duckdb"), "--dataset", "raw"]
    missing = run_cli(fresh, "pipeline", "nope", "sync", *args)
    assert missing.returncode == 2 and "holds no schema of pipeline 'nope'" in missing.stderr
    out = run_cli(fresh, "pipeline", "gh", "sync", *args)
    assert out.returncode == 0, out.stderr
    assert "2 table(s)" in out.stdout
    assert (fresh / "pipes" / "gh" / PIPELINE_FILE).exists()
    counts = run_cli(fresh, "tables", "gh").stdout  # no flags: the synced pipeline remembers
    assert "events " in counts and "events__tags" in counts
    p = attach("gh", fresh / "pipes")
    assert p.schema.tables["events"].columns["id"].primary_key  # the hints came back too
    p.run([{"id": 0, "name": "changed", "tags": []}], table_name="events").raise_on_failed_jobs()  # merges
    assert dict(table_counts(p))["events"] == 6


def test_load_dry_run_prints_the_statements_and_loads_nothing(isolated_env: Path) -> None:
    (isolated_env / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    out = subprocess.run([*loadbay_command(), "load", "events.jsonl", "--pipeline", "dry", "--dry-run",
                          "--write-disposition", "merge", "--primary-key", "id", "--credentials",
                          str(isolated_env / "lake.duckdb"), "--pipelines-dir", str(isolated_env / "pipes")],
                         capture_output=True, text=True, cwd=isolated_env, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "dry run: nothing was loaded" in out.stdout and "Rows normalized per table: events: 6, events__tags: 6" \
        in out.stdout
    assert 'CREATE TABLE IF NOT EXISTS "lake"."dry_dataset"."events__tags"' in out.stdout
    assert "READ_JSON(" in out.stdout or "read_parquet(" in out.stdout.lower() or '"_lb_scan_' in out.stdout
    assert 'DELETE FROM "lake"."dry_dataset"."events__tags"' in out.stdout  # the merge
    import duckdb

    with duckdb.connect(str(isolated_env / "lake.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM information_schema.tables").fetchone() == (0,)
    assert run_cli(isolated_env, "tables", "dry").returncode == 2  # it never ran


def test_dropping_a_table_forgets_its_incremental_cursor(duck: Path) -> None:
    p = attach("gh", duck / "pipes")
    rows = [{"id": i, "t": i} for i in range(5)]
    p.run(loadbay.resource(rows, "ev", incremental=loadbay.incremental("t"))).raise_on_failed_jobs()
    assert run_cli(duck, "pipeline", "gh", "drop", "--tables", "ev", "--yes").returncode == 0
    again = attach("gh", duck / "pipes")
    assert "ev" not in again.state().get("incremental", {})
    again.run(loadbay.resource(rows, "ev", incremental=loadbay.incremental("t"))).raise_on_failed_jobs()
    assert dict(table_counts(again))["ev"] == 5  # loaded again from the start, once
    import shutil

    shutil.rmtree(duck / "pipes" / "gh")  # a new machine: the stored state forgot it too
    fresh = loadbay.pipeline("gh", destination=loadbay.destination("duckdb", credentials=str(duck / "lake.duckdb")),
                             dataset_name="raw", pipelines_dir=duck / "pipes")
    fresh.run(loadbay.resource(rows, "ev", incremental=loadbay.incremental("t"))).raise_on_failed_jobs()
    assert dict(table_counts(fresh))["ev"] == 5


def test_load_with_a_strategy_and_merge_key_keeps_history(isolated_env: Path) -> None:
    """``loadbay load --write-disposition merge --strategy scd2 --merge-key id``: a changed record is a closed
    row and a new one; a record the second file does not hold stays current (a partial extract)."""
    first, second = isolated_env / "a.jsonl", isolated_env / "b.jsonl"
    first.write_text('{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n')
    second.write_text('{"id": 1, "name": "a2"}\n')
    for path in (first, second):
        done = subprocess.run([*loadbay_command(), "load", str(path), "--pipeline", "hist", "--table", "people",
                               "--write-disposition", "merge", "--strategy", "scd2", "--merge-key", "id",
                               "--dataset", "raw", "--credentials", str(isolated_env / "h.duckdb"),
                               "--pipelines-dir", str(isolated_env / "pipes")],
                              capture_output=True, text=True, check=False, cwd=isolated_env, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 0, done.stderr
    out = run_cli(isolated_env, "pipeline", "hist", "query",
                  "SELECT id, name, _lb_valid_to IS NULL AS current FROM people ORDER BY id, name", "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert list(csv.reader(io.StringIO(out.stdout)))[1:] == [["1", "a", "False"], ["1", "a2", "True"], ["2", "b", "True"]]
    schema = run_cli(isolated_env, "pipeline", "hist", "schema").stdout
    assert "people (merge scd2)" in schema and "_lb_valid_from" in schema and "valid_from" in schema
    bad = subprocess.run([*loadbay_command(), "load", str(first), "--pipeline", "x", "--strategy", "nope"],
                         capture_output=True, text=True, check=False, cwd=isolated_env, timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'nope'" in bad.stderr
