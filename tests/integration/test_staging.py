"""Staging end to end, on DuckDB and a local folder as the stage, through ``tests/staged_duckdb.py``: a DuckDB
destination whose jobs read only the staged copy of each file (``read_parquet('<stage>/...')``), so a row in
a table proves its file was on the stage. Every assertion is on the database or on the disk.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import duckdb
import pytest

import loadbay
from loadbay.common.exceptions import ConfigurationError, PipelineStepFailed
from tests.conftest import REPO

REF = "tests.staged_duckdb:staged_duckdb"
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY"
ENV = "DESTINATION__STAGED_DUCKDB__STAGING__"
ROWS = 20
FILE_ROWS = 5  # rows per load file: several files per table, so a kill can fall between two

WORKER = f"""
import loadbay
p = loadbay.pipeline("staged", destination={REF!r}, dataset_name="ds", pipelines_dir="pipes",
                     file_max_items={FILE_ROWS})
p.run([{{"id": i, "name": f"n{{i}}", "tags": [i, i + 1]}} for i in range({ROWS})], table_name="events")
"""


def rows(count: int = ROWS, start: int = 0) -> list[dict[str, object]]:
    return [{"id": i, "name": f"n{i}", "tags": [i, i + 1]} for i in range(start, start + count)]


def staged_pipeline(**settings: object) -> loadbay.Pipeline:
    return loadbay.pipeline("staged", destination=REF, dataset_name="ds", pipelines_dir="pipes",
                            file_max_items=FILE_ROWS, **settings)


def counts(work: Path) -> tuple[int, int, int]:
    """Rows of events, distinct ids among them, rows of events__tags: what the destination holds."""
    with duckdb.connect(str(work / "staged.duckdb"), read_only=True) as con:
        total, distinct = con.execute("SELECT count(*), count(DISTINCT id) FROM ds.events").fetchone()
        tags = con.execute("SELECT count(*) FROM ds.events__tags").fetchone()[0]
    return int(total), int(distinct), int(tags)


def staged(stage: Path) -> dict[str, list[str]]:
    """Files on the stage, by package prefix: ``{load_id: [file names]}``."""
    root = stage / "ds"
    if not root.exists():
        return {}
    return {p.name: sorted(f.name for f in p.iterdir()) for p in sorted(root.iterdir())}


def job_names(p: loadbay.Pipeline, load_id: str) -> list[str]:
    """The package's job files as the stage names them: ``<table>.<file_id>.<format>`` (no retry count)."""
    package = next(pkg for pkg in p.storage.pending() if pkg.load_id == load_id)
    return sorted(f"{j.table_name}.{j.file_id}.{j.file_format}" for jobs in package.all_jobs().values() for j in jobs)


@pytest.fixture
def stage(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local folder as the stage, set as a plain path through the environment, with a secret credential."""
    folder = isolated_env / "stage"
    monkeypatch.setenv(ENV + "BUCKET_URL", str(folder))
    monkeypatch.setenv(ENV + "CREDENTIALS__SECRET", SECRET)  # LocalFileSystem takes it and ignores it
    return folder


@pytest.mark.parametrize(("form", "file_format"), [("plain", "parquet"), ("plain", "jsonl"),
                                                   ("file_url", "parquet"), ("file_url", "jsonl")])
def test_rows_load_from_the_stage_and_the_prefix_goes_after_the_package(
        stage: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, form: str, file_format: str) -> None:
    if form == "file_url":
        monkeypatch.setenv(ENV + "BUCKET_URL", f"file://{stage}")
    p = staged_pipeline()
    info = p.run(rows(), table_name="events", loader_file_format=file_format)
    info.raise_on_failed_jobs()
    assert counts(isolated_env) == (ROWS, ROWS, 2 * ROWS)
    assert {j.file_format for pkg in info.load_packages for j in pkg.jobs} == {file_format}
    assert staged(stage) == {}  # the package's prefix is gone; the dataset folder may stay
    assert p.pending_packages() == []


def test_merge_and_replace_load_through_the_stage(stage: Path, isolated_env: Path) -> None:
    p = staged_pipeline()
    p.run(rows(), table_name="events", write_disposition="merge", primary_key="id").raise_on_failed_jobs()
    p.run(rows(10, start=15), table_name="events", write_disposition="merge", primary_key="id").raise_on_failed_jobs()
    assert counts(isolated_env) == (25, 25, 50)
    p.run(rows(3), table_name="events", write_disposition="replace").raise_on_failed_jobs()
    assert counts(isolated_env) == (3, 3, 6)
    assert staged(stage) == {}


def test_keep_staged_files_keeps_one_file_per_job_under_the_package_prefix(
        stage: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV + "KEEP_STAGED_FILES", "true")
    p = staged_pipeline()
    info = p.run(rows(), table_name="events")
    (package,) = info.load_packages
    names = sorted(f"{Path(j.file_path).name.rsplit('.', 3)[0]}.{Path(j.file_path).name.rsplit('.', 3)[1]}"
                   f".{j.file_format}" for j in package.jobs)
    assert staged(stage) == {package.load_id: names}
    assert len(names) == ROWS // FILE_ROWS * 3  # events and events__tags (twice the rows)
    assert counts(isolated_env) == (ROWS, ROWS, 2 * ROWS)


@pytest.mark.parametrize(("point", "staged_at_kill"), [("job.loaded", 1), ("job.committed:2", 2),
                                                       ("package.committed", ROWS // FILE_ROWS * 3)])
def test_a_run_killed_after_staging_resumes_without_duplicates_and_cleans_up(
        stage: Path, isolated_env: Path, point: str, staged_at_kill: int) -> None:
    killed = subprocess.run([sys.executable, "-c", WORKER], cwd=isolated_env, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "LOADBAY_CRASH_AT": point}, check=False)
    assert killed.returncode == -9, killed.stderr
    p = staged_pipeline()
    (load_id,) = p.pending_packages()
    on_stage = staged(stage)
    assert list(on_stage) == [load_id]  # under the package's own prefix, named by job
    assert len(on_stage[load_id]) == staged_at_kill
    assert set(on_stage[load_id]) <= set(job_names(p, load_id))
    p.run().raise_on_failed_jobs()  # resumes the pending package
    assert counts(isolated_env) == (ROWS, ROWS, 2 * ROWS)
    assert staged(stage) == {}
    assert p.pending_packages() == []


def test_a_package_given_up_takes_its_staged_files_along(stage: Path, isolated_env: Path) -> None:
    killed = subprocess.run([sys.executable, "-c", WORKER], cwd=isolated_env, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "LOADBAY_CRASH_AT": "job.committed"},
                            check=False)
    assert killed.returncode == -9, killed.stderr
    p = staged_pipeline()
    on_stage = list(staged(stage))
    assert on_stage == p.pending_packages()
    assert p.drop_pending_packages() == on_stage
    assert staged(stage) == {}


def test_a_stage_that_cannot_be_written_keeps_the_package_and_the_next_run_loads_it(
        stage: Path, isolated_env: Path) -> None:
    stage.write_text("a file where the stage folder should be")
    p = staged_pipeline(max_retries=1, retry_backoff_seconds=0.01)
    with pytest.raises(PipelineStepFailed, match="could not be copied to the stage") as caught:
        p.run(rows(), table_name="events")
    assert SECRET not in "".join(traceback.format_exception(caught.value))
    (load_id,) = p.pending_packages()
    stage.unlink()
    p.run().raise_on_failed_jobs()
    assert counts(isolated_env) == (ROWS, ROWS, 2 * ROWS)
    assert staged(stage) == {} and p.pending_packages() == []


def test_staging_credentials_never_show(stage: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(ENV + "CREDENTIALS__SECRET")
    secrets = isolated_env / ".loadbay" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text(f'[destination.staged_duckdb.staging.credentials]\nsecret = "{SECRET}"\ntoken = "{SECRET}"\n')
    caplog.set_level(logging.DEBUG)
    p = staged_pipeline()
    assert p.config.staging.credentials.options == {"secret": SECRET, "token": SECRET}
    info = p.run(rows(), table_name="events", progress="log")
    print(info)
    print(p.config)
    shown = [capsys.readouterr().out, repr(info), repr(p.config), repr(p), caplog.text,
             (isolated_env / "pipes" / "staged" / "pipeline.json").read_text()]
    assert "StagingCredentials(secret=***, token=***)" in shown[0]
    for text in shown:
        assert SECRET not in text
    monkeypatch.setenv(ENV + "BUCKET_URL", "s3://bucket/stage")  # an error naming the stage
    with pytest.raises(ConfigurationError) as caught:
        staged_pipeline().run(rows(), table_name="events")
    assert SECRET not in "".join(traceback.format_exception(caught.value))


def test_a_missing_filesystem_package_stops_the_run_before_anything_is_made(
        stage: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed here")
    monkeypatch.setenv(ENV + "BUCKET_URL", "s3://bucket/stage")
    p = staged_pipeline()
    with pytest.raises(ConfigurationError, match=r"s3://.*not installed.*pip install 'loadbay\[s3\]'"):
        p.run(rows(), table_name="events")
    assert p.pending_packages() == []
    assert not (isolated_env / "staged.duckdb").exists()


def test_dry_run_names_the_staged_files_and_copies_nothing(stage: Path, isolated_env: Path) -> None:
    p = staged_pipeline()
    info = p.run(rows(), table_name="events", dry_run=True)
    reads = [s for s in info.statements if "read_parquet(" in s.lower()]
    assert reads and all(f"'{stage}/ds/" in s for s in reads)
    assert not stage.exists()
