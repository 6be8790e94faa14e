"""The README's promises, checked: its example runs, its capabilities table is current, the CLI works."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from loadbay.capabilities_table import render
from loadbay.destinations.testing.conformance.helpers import load_sample
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_readme_starts_with_the_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1)
    assert [line.split("#")[0].strip() for line in first_block.strip().splitlines()] == ["make run", "make test"]


def test_readme_example_runs(isolated_env: Path) -> None:
    shutil.copytree(REPO / "examples", isolated_env / "examples")
    example = re.search(r"## Use it\n\n```python\n(.*?)```", README, re.S).group(1)
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    p = namespace["p"]
    with p.sql_client() as client:  # type: ignore[attr-defined]
        count = client.execute_sql("SELECT count(*) FROM events")[0][0]
    assert count == len({e["id"] for e in load_sample("github_events.json")})


def test_readme_inputs_example_runs(isolated_env: Path) -> None:
    """The pandas / Arrow / parquet example under "What run() and loadbay.resource() take"."""
    section = README.split("### What `run()` and `loadbay.resource()` take", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    p = namespace["p"]
    with p.sql_client() as client:  # type: ignore[attr-defined]
        users = client.execute_sql("SELECT id, name, joined FROM users ORDER BY id")
        items = client.execute_sql("SELECT sku, qty FROM orders__items ORDER BY sku")
        orders = client.execute_sql("SELECT count(*) FROM orders")[0][0]
    assert [(u[0], u[1], u[2] is None) for u in users] == [(1, "Ada", False), (2, None, True)]
    assert users[0][2].isoformat().startswith("2024-01-02T10:00:00")
    assert orders == 4 and items == [("a-1", 2), ("a-1", 2), ("b-7", 1), ("b-7", 1)]


def test_capabilities_table_is_generated() -> None:
    block = re.search(r"<!-- capabilities:start -->\n(.*?)\n<!-- capabilities:end -->", README, re.S).group(1)
    assert block == render(), "README table is stale: paste the output of python -m loadbay.capabilities_table"


def test_cli_load_then_tables(isolated_env: Path) -> None:
    shutil.copy(REPO / "examples" / "github_events.json", isolated_env / "events.json")
    base = [sys.executable, "-m", "loadbay.cli"]
    common = ["--pipelines-dir", str(isolated_env / "pipes"), "--dataset", "gh"]
    done = subprocess.run([*base, "load", "events.json", "--pipeline", "gh", "--table", "events",
                           "--write-disposition", "merge", "--primary-key", "id", *common],
                          capture_output=True, text=True, check=False, cwd=isolated_env)
    assert done.returncode == 0, done.stderr
    assert "1 load package(s) were loaded to destination duckdb" in done.stdout
    assert (isolated_env / "gh.duckdb").exists()
    listed = subprocess.run([*base, "tables", "gh", *common], capture_output=True, text=True, check=True,
                            cwd=isolated_env)
    events = load_sample("github_events.json")
    assert re.search(rf"^\s+events\s+{len(events)} rows$", listed.stdout, re.M), listed.stdout
    commits = sum(len(e["payload"].get("commits", [])) for e in events)
    assert re.search(rf"^\s+events__payload__commits\s+{commits} rows$", listed.stdout, re.M)


def test_cli_reports_bad_input_without_a_traceback(isolated_env: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "loadbay.cli", "load", "missing.jsonl", "--pipeline", "gh",
                           "--pipelines-dir", str(isolated_env / "pipes")],
                          capture_output=True, text=True, check=False, cwd=isolated_env)
    assert done.returncode == 2
    assert "missing.jsonl does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_secrets_example_resolves(isolated_env: Path) -> None:
    """secrets.example.toml, copied as the README says, configures the destinations it shows."""
    import loadbay

    (isolated_env / ".loadbay").mkdir()
    shutil.copy(REPO / "secrets.example.toml", isolated_env / ".loadbay" / "secrets.toml")
    pg = loadbay.destination("postgres").configuration("p", "raw")
    assert (pg.credentials.database, pg.credentials.username, pg.credentials.port) == ("dwh", "loader", 5432)
    assert "change-me" not in pg.credentials.location() and "***" in pg.credentials.location()
    named = loadbay.destination("postgres", destination_name="warehouse").configuration("p", "raw")
    assert (named.credentials.host, named.credentials.sslmode) == ("db.internal", "require")
    duck = loadbay.destination("duckdb").configuration("p", "raw")
    assert duck.credentials.database == "/data/lake.duckdb"
    sa = loadbay.destination("sqlalchemy").configuration("p", "raw")
    assert (sa.credentials.drivername, sa.credentials.database) == ("mysql+pymysql", "dwh")
    assert sa.engine_args == {"pool_size": 5, "pool_pre_ping": True}
    assert "change-me" not in sa.credentials.location()
