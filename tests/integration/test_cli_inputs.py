"""``loadbay load`` run as a subprocess: every input format by name, a quoted glob, a folder, several files,
stdin (JSON lines, or --format csv), a forced --format, on DuckDB files and on PostgreSQL, and each format
once on every destination under test, checked by the rows in the destination; malformed, missing and unknown
files exit 2 with a message naming them.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loadbay.destinations.testing.setups import POSTGRES_URL, require_server
from tests.conftest import REPO

ROWS = [{"id": i, "name": f"n{i}", "tags": [f"t{i}"] * (i % 3)} for i in range(6)]


def loadbay_command() -> list[str]:
    """The installed ``loadbay`` script beside this interpreter (``.venv/bin/loadbay``)."""
    script = Path(sys.executable).parent / "loadbay"
    return [str(script)] if script.exists() else [sys.executable, "-m", "loadbay.cli"]


def cli(cwd: Path, *args: str, stdin: bytes | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*loadbay_command(), *args, "--pipelines-dir", str(cwd / "pipes"), "--dataset", "ds",
                           "--credentials", str(cwd / "lake.duckdb")], input=stdin, capture_output=True,
                          check=False, cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})}, timeout=120)


def duck_rows(path: Path, table: str, columns: str = "id, name") -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(f'SELECT {columns} FROM ds."{table}" ORDER BY id').fetchall()


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def csv_text(rows: list[dict[str, Any]]) -> bytes:
    return ("id,name\n" + "".join(f"{r['id']},{r['name']}\n" for r in rows)).encode()


EXPECTED = [(r["id"], r["name"]) for r in ROWS]


@pytest.mark.parametrize("name", ["events.csv", "events.parquet", "events.jsonl.gz", "events.json.zst"])
def test_load_a_file_of_each_format(isolated_env: Path, name: str) -> None:
    data = {"csv": csv_text(ROWS), "parquet": None, "ndjson": jsonl(ROWS), "jsonl": jsonl(ROWS),
            "json": json.dumps(ROWS).encode()}[name.split(".")[1]]
    if name.endswith(".gz"):
        data = gzip.compress(data)
    if name.endswith(".zst"):
        data = pytest.importorskip("zstandard").ZstdCompressor().compress(data)
    if data is None:
        pq.write_table(pa.Table.from_pylist(ROWS), isolated_env / name)
    else:
        (isolated_env / name).write_bytes(data)
    done = cli(isolated_env, "load", name, "--pipeline", "p")  # the table is named after the file
    assert done.returncode == 0, done.stderr.decode()
    assert duck_rows(isolated_env / "lake.duckdb", "events") == EXPECTED
    if not name.startswith("events.csv"):
        with duckdb.connect(str(isolated_env / "lake.duckdb"), read_only=True) as con:
            tags = con.execute('SELECT count(*) FROM ds."events__tags"').fetchone()[0]
        assert tags == sum(len(r["tags"]) for r in ROWS)


def test_load_a_quoted_glob_a_folder_and_several_files(isolated_env: Path) -> None:
    parts = isolated_env / "parts"
    parts.mkdir()
    for i in range(3):
        (parts / f"part-{i}.jsonl").write_bytes(jsonl(ROWS[2 * i:2 * i + 2]))
    (parts / "notes.txt").write_text("skipped")
    done = cli(isolated_env, "load", "parts/part-*.jsonl", "--pipeline", "p", "--table", "by_glob")
    assert done.returncode == 0, done.stderr.decode()
    done = cli(isolated_env, "load", "parts", "--pipeline", "p")
    assert done.returncode == 0, done.stderr.decode()
    assert b"notes.txt" in done.stderr  # skipped, with a warning
    files = [str(p.relative_to(isolated_env)) for p in sorted(parts.glob("*.jsonl"))]
    done = cli(isolated_env, "load", *files, "--pipeline", "p", "--table", "by_list")
    assert done.returncode == 0, done.stderr.decode()
    for table in ("by_glob", "parts", "by_list"):
        assert duck_rows(isolated_env / "lake.duckdb", table) == EXPECTED, table


def test_load_from_stdin_as_json_lines_or_a_given_format(isolated_env: Path) -> None:
    done = cli(isolated_env, "load", "-", "--pipeline", "p", "--table", "piped", stdin=jsonl(ROWS))
    assert done.returncode == 0, done.stderr.decode()
    done = cli(isolated_env, "load", "-", "--pipeline", "p", "--table", "piped_csv", "--format", "csv",
               stdin=csv_text(ROWS))
    assert done.returncode == 0, done.stderr.decode()
    assert duck_rows(isolated_env / "lake.duckdb", "piped") == EXPECTED
    assert duck_rows(isolated_env / "lake.duckdb", "piped_csv") == EXPECTED
    done = cli(isolated_env, "load", "-", "--pipeline", "p", stdin=jsonl(ROWS))
    assert done.returncode == 2 and b"--table is required" in done.stderr


def test_format_forces_the_input_format_and_loader_file_format_the_load_files(isolated_env: Path) -> None:
    (isolated_env / "export.txt").write_bytes(csv_text(ROWS))
    done = cli(isolated_env, "load", "export.txt", "--pipeline", "p")
    assert done.returncode == 2
    message = done.stderr.decode()
    assert "export.txt" in message and ".jsonl, .ndjson, .json, .csv, .parquet" in message and "--format" in message
    done = cli(isolated_env, "load", "export.txt", "--pipeline", "p", "--format", "csv",
               "--loader-file-format", "parquet", env={"PIPELINE__ARCHIVE_COMPLETED_PACKAGES": "true"})
    assert done.returncode == 0, done.stderr.decode()
    assert duck_rows(isolated_env / "lake.duckdb", "export") == EXPECTED
    written = {p.suffix for p in (isolated_env / "pipes" / "p" / "completed").glob("*/completed_jobs/*")}
    assert written == {".parquet"}


def test_malformed_and_missing_files_exit_2_naming_file_and_line(isolated_env: Path) -> None:
    (isolated_env / "bad.jsonl").write_bytes(jsonl(ROWS[:2]) + b'{"id": 2, "name": "n2"\n' + jsonl(ROWS[3:]))
    done = cli(isolated_env, "load", "bad.jsonl", "--pipeline", "p")
    message = done.stderr.decode()
    assert done.returncode == 2, message
    assert "pipeline 'p', table 'bad': file bad.jsonl, line 3: malformed JSON" in message
    assert "Traceback" not in message
    (isolated_env / "bad.csv").write_bytes(b"id,name\n1,a\n2,b,extra\n")
    done = cli(isolated_env, "load", "bad.csv", "--pipeline", "p")
    assert done.returncode == 2 and b"bad.csv, line 3: malformed CSV" in done.stderr
    done = cli(isolated_env, "load", "nowhere/*.jsonl", "--pipeline", "p")
    assert done.returncode == 2 and b"no file matches 'nowhere/*.jsonl'" in done.stderr
    done = cli(isolated_env, "load", "missing.csv", "--pipeline", "p")
    assert done.returncode == 2 and b"missing.csv does not exist" in done.stderr


@pytest.fixture
def postgres_dataset() -> Iterator[str]:
    require_server("postgres")
    psycopg2 = pytest.importorskip("psycopg2")
    dataset = f"cli_{uuid.uuid4().hex[:8]}"
    yield dataset
    with psycopg2.connect(POSTGRES_URL) as con, con.cursor() as cur:
        for schema in (dataset, f"{dataset}_staging"):
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_load_files_and_stdin_into_postgres(isolated_env: Path, postgres_dataset: str) -> None:
    import psycopg2

    shutil.copy(REPO / "examples" / "github_events.json", isolated_env / "events.json")
    server = ("--destination", "postgres", "--credentials", POSTGRES_URL)

    def run(*args: str, stdin: bytes | None = None) -> None:
        done = subprocess.run([*loadbay_command(), *args, "--pipelines-dir", str(isolated_env / "pipes"),
                               "--dataset", postgres_dataset, *server], input=stdin, capture_output=True,
                              check=False, cwd=isolated_env, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
        assert done.returncode == 0, done.stderr.decode()

    run("load", "events.json", "--pipeline", "pg", "--write-disposition", "merge", "--primary-key", "id")
    run("load", "-", "--pipeline", "pg", "--table", "piped", "--format", "csv", stdin=csv_text(ROWS))
    events = json.loads((isolated_env / "events.json").read_text())
    with psycopg2.connect(POSTGRES_URL) as con, con.cursor() as cur:
        cur.execute(f'SELECT count(*), count(DISTINCT actor__login) FROM "{postgres_dataset}".events')
        assert cur.fetchone() == (len({e["id"] for e in events}), len({e["actor"]["login"] for e in events}))
        cur.execute(f'SELECT id, name FROM "{postgres_dataset}".piped ORDER BY id')
        assert cur.fetchall() == EXPECTED


def test_every_format_and_stdin_load_through_the_cli_on_every_destination(make_pipeline, destination_setup, tmp_path):
    """The CLI is a thin layer over ``Pipeline.run``; this runs it once per format on each destination under
    test (its own credentials and dataset), checked by the rows and child rows the destination holds."""
    from loadbay.destinations.testing.conformance.helpers import ident, query

    p = make_pipeline("cli")  # names the dataset, and drops it afterwards on a server
    credentials = destination_setup.credentials
    credentials = credentials(tmp_path, "cli") if callable(credentials) else credentials
    zstd = pytest.importorskip("zstandard").ZstdCompressor().compress
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "rows.parquet")
    (tmp_path / "rows.csv.gz").write_bytes(gzip.compress(csv_text(ROWS)))
    (tmp_path / "rows.ndjson.zst").write_bytes(zstd(jsonl(ROWS)))
    (tmp_path / "rows.json").write_bytes(json.dumps(ROWS).encode())
    common = ["--pipeline", "cli", "--pipelines-dir", str(tmp_path / "cli_pipes"), "--dataset", p.dataset_name,
              "--destination", destination_setup.reference, "--credentials", str(credentials)]
    tables = {"parquet_t": "rows.parquet", "csv_t": "rows.csv.gz", "ndjson_t": "rows.ndjson.zst",
              "json_t": "rows.json", "stdin_t": "-"}
    for table, name in tables.items():
        done = subprocess.run([*loadbay_command(), "load", name, "--table", table, *common],
                              input=jsonl(ROWS) if name == "-" else None, capture_output=True, check=False,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=180)
        assert done.returncode == 0, f"{name}: {done.stderr.decode()[-2000:]}"
    for table in tables:
        rows = query(p, f"SELECT {ident(p, 'id')}, {ident(p, 'name')} FROM {ident(p, p.dataset_name)}.{ident(p, table)}")
        assert sorted((int(i), n) for i, n in rows) == EXPECTED, table
        if table != "csv_t":
            tags = query(p, f"SELECT count(*) FROM {ident(p, p.dataset_name)}.{ident(p, table + '__tags')}")
            assert tags[0][0] == sum(len(r["tags"]) for r in ROWS), table
