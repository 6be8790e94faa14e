"""docs/writing-a-destination.md, followed literally: copy the PostgreSQL destination into a package
``presto`` with the page's own Python block, load GitHub events through it by dotted path, then run
the page's conformance command against it in a subprocess.

Needs the PostgreSQL server (skipped with the reason when it is unreachable, failed under CI=true).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import loadbay
from loadbay.destinations.testing.conformance.helpers import drop_datasets, query
from loadbay.destinations.testing.setups import POSTGRES_URL, require_server
from tests.conftest import REPO

DOC = (REPO / "docs" / "writing-a-destination.md").read_text(encoding="utf-8")
OUTCOME = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")


def doc_block(after_heading: str, language: str) -> str:
    """The first ``language`` code block under the heading that starts with ``after_heading``."""
    section = DOC.split(f"\n## {after_heading}", 1)[1].split("\n## ", 1)[0]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def conformance_command() -> list[str]:
    """The page's one command, as an argv (line continuations joined)."""
    block = doc_block("9. Run the conformance suite", "sh")
    return shlex.split(block.replace("\\\n", " "))


@pytest.fixture
def presto_package(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Step 1 of the page, run as written in the working directory; ``presto`` importable from there."""
    exec(compile(doc_block("1. Copy and rename", "python"), "writing-a-destination.md", "exec"), {})  # noqa: S102
    monkeypatch.syspath_prepend(str(isolated_env))
    yield isolated_env / "presto"
    for name in [m for m in sys.modules if m == "presto" or m.startswith("presto.")]:
        del sys.modules[name]


def test_the_copy_is_renamed_as_the_page_says(presto_package: Path) -> None:
    files = sorted(p.name for p in presto_package.glob("*.py"))
    assert files == ["__init__.py", "capabilities.py", "configuration.py", "job_client.py", "jobs.py",
                     "sql_client.py"]
    assert not any("loadbay.destinations.postgres" in p.read_text() for p in presto_package.glob("*.py"))
    init = (presto_package / "__init__.py").read_text()
    assert "class presto(SqlDestination)" in init and 'destination_type = "presto"' in init
    assert "from presto.sql_client import PostgresSqlClient" in init
    destination = loadbay.destination("presto:presto")
    assert repr(destination) == "<destination presto (presto)>"  # what the page's check prints
    assert type(destination).__module__ == "presto"
    # the page's sh check gives the same answer in a fresh interpreter
    check = doc_block("1. Copy and rename", "sh").splitlines()[0]
    assert check.startswith("PYTHONPATH=. python -c ")
    code = shlex.split(check)[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=presto_package.parent, env={**os.environ, "PYTHONPATH": "."})
    assert out.stdout.strip() == "<destination presto (presto)>"


def test_code_on_the_page_is_the_copied_code(presto_package: Path) -> None:
    """Every line of the excerpts in steps 2-7 (other than elisions) is a line of the copy or of the
    shared load jobs, so the page cannot drift from the code it describes."""
    shared = [REPO / "destinations" / "load_jobs.py", REPO / "destinations" / "copy_jobs.py"]
    real = {line.strip() for path in [*presto_package.glob("*.py"), *shared]
            for line in path.read_text(encoding="utf-8").splitlines()}
    steps = DOC.split("\n## 2. ", 1)[1].split("\n## 8. ", 1)[0]
    excerpts = re.findall(r"```python\n(.*?)```", steps, re.S)
    assert len(excerpts) >= 6
    missing = [line for block in excerpts for line in block.splitlines()
               if line.strip() and "..." not in line and line.strip() not in real]
    assert missing == []


def test_presto_loads_github_events_and_passes_the_conformance_suite(
        presto_package: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_server("postgres")
    events = json.loads((data_dir / "github_events.json").read_text(encoding="utf-8"))
    n_events = len({e["id"] for e in events})
    n_commits = sum(len(e["payload"].get("commits", [])) for e in events)
    assert n_events > 0 and n_commits > 0

    # step 8: credentials from the environment, the destination by dotted path
    monkeypatch.setenv("DESTINATION__PRESTO__CREDENTIALS", POSTGRES_URL)
    assert 'destination="presto:presto", dataset_name="airflow_events"' in DOC
    dataset = f"airflow_events_{uuid.uuid4().hex[:8]}"  # unique: the server is shared
    p = loadbay.pipeline("github_events", destination="presto:presto", dataset_name=dataset)
    try:
        info = p.run(events, table_name="events", write_disposition="merge", primary_key="id")
        info.raise_on_failed_jobs()
        assert type(p.destination).__module__ == "presto"
        assert p.destination.destination_type == "presto"
        assert "to destination presto (presto)" in str(info)
        assert info.row_counts["events"] == len(events)
        assert info.row_counts["events__payload__commits"] == n_commits
        assert query(p, "SELECT count(*) FROM events") == [(n_events,)]
        assert query(p, "SELECT count(*) FROM events__payload__commits") == [(n_commits,)]
        # it really is on the PostgreSQL server, in the (possibly shortened) dataset schema
        assert query(p, "SELECT current_schema()") == [(p.dataset_name,)]
    finally:
        drop_datasets(p)

    # step 9: the page's one command, run by this interpreter against the copy
    argv = conformance_command()
    assert argv[:4] == ["pytest", "--pyargs", "loadbay.destinations.testing", "-p"]
    assert argv[argv.index("--lb-destination") + 1] == "presto:presto"
    argv[argv.index("--lb-credentials") + 1] = POSTGRES_URL  # the page shows the default server
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(presto_package.parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", *argv, "-v", "-p", "no:cacheprovider"], capture_output=True,
                         text=True, check=False, cwd=presto_package.parent, env=env, timeout=600)
    output = run.stdout + run.stderr
    summary = output.strip().splitlines()[-1]
    outcomes = {kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in OUTCOME.findall(summary)}
    assert run.returncode == 0, output[-5000:]
    assert outcomes.get("passed", 0) > 50, summary
    assert outcomes.get("passed", 0) > outcomes.get("skipped", 0), summary
    assert not outcomes.get("failed") and not outcomes.get("error"), summary
    ran = re.findall(r"::\S+\[([^\]-]+)[^\]]*\] (?:PASSED|SKIPPED|FAILED|ERROR)", output)
    assert ran and set(ran) == {"presto"}, sorted(set(ran))
