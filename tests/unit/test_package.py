"""Load packages on disk: job states, package lifecycle, and the package writer's file rotation."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from loadbay.common.capabilities import DEFAULTS
from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.schema.types import Schema
from loadbay.common.storage.package import JOB_STATES, DamagedPackageError, JobFile, LoadPackage, PackageStorage, job_file_name
from loadbay.common.storage.package_writer import PackageWriter
from loadbay.common.storage.writers import read_insert_values
from loadbay.destinations.testing.conformance.helpers import load_sample


@pytest.fixture
def storage(tmp_path: Path) -> PackageStorage:
    return PackageStorage(tmp_path / "pipeline")


def _new_job(package: LoadPackage, table: str = "events", file_id: str = "00000", fmt: str = "jsonl",
             content: bytes = b'{"a": 1}\n') -> JobFile:
    path = package.root / "new_jobs" / job_file_name(table, file_id, 0, fmt)
    path.write_bytes(content)
    return JobFile(path)


# -- job files and states ----------------------------------------------------------------------

def test_job_file_name_parts() -> None:
    job = JobFile(Path("x/new_jobs") / job_file_name("events__payload__commits", "00012", 3, "insert_values"))
    assert job.path.name == "events__payload__commits.00012.3.insert_values"
    assert (job.table_name, job.file_id, job.retry_count, job.file_format) == (
        "events__payload__commits", "00012", 3, "insert_values")
    assert job.job_id == "events__payload__commits.00012"
    assert job.state == "new_jobs"


def test_job_moves_new_started_completed(storage: PackageStorage) -> None:
    package = storage.create("1")
    job = _new_job(package)
    assert package.jobs("new_jobs") == [job]
    started = package.start_job(job)
    assert started.state == "started_jobs"
    assert not job.path.exists()
    assert package.jobs("new_jobs") == [] and package.jobs("started_jobs") == [started]
    done = package.complete_job(started)
    assert done.state == "completed_jobs"
    assert done.path.read_bytes() == b'{"a": 1}\n'
    states = package.all_jobs()
    assert list(states) == list(JOB_STATES)
    assert {s: [j.job_id for j in jobs] for s, jobs in states.items()} == {
        "new_jobs": [], "started_jobs": [], "completed_jobs": ["events.00000"], "failed_jobs": []}


def test_failed_job_keeps_its_error_next_to_it(storage: PackageStorage) -> None:
    package = storage.create("1")
    started = package.start_job(_new_job(package))
    failed = package.fail_job(started, "duplicate key value violates unique constraint")
    assert failed.state == "failed_jobs"
    exception_file = failed.path.with_name(failed.path.name + ".exception")
    assert exception_file.read_text() == "duplicate key value violates unique constraint"
    assert package.job_error(failed) == "duplicate key value violates unique constraint"
    assert package.jobs("failed_jobs") == [failed]  # the .exception file is not a job
    assert package.job_error(_new_job(package, file_id="00001")) is None


def test_retry_increments_the_retry_number(storage: PackageStorage) -> None:
    package = storage.create("1")
    job = _new_job(package)
    first = package.retry_job(package.start_job(job))
    assert (first.state, first.retry_count, first.job_id) == ("new_jobs", 1, job.job_id)
    assert first.path.name == "events.00000.1.jsonl"
    second = package.retry_job(package.start_job(first))
    assert second.retry_count == 2
    assert package.jobs("new_jobs") == [second] and package.jobs("started_jobs") == []


def test_a_failed_job_can_be_retried(storage: PackageStorage) -> None:
    package = storage.create("1")
    failed = package.fail_job(package.start_job(_new_job(package)), "boom")
    again = package.retry_job(failed)
    assert (again.state, again.retry_count) == ("new_jobs", 1)
    assert package.jobs("failed_jobs") == []


# -- packages ----------------------------------------------------------------------------------

def test_create_makes_a_normalizing_package(storage: PackageStorage) -> None:
    package = storage.create("1700000000000001")
    assert package.root == storage.pipeline_dir / "normalizing" / "1700000000000001"
    assert all((package.root / state).is_dir() for state in JOB_STATES)
    meta = package.read_meta()
    assert (meta["load_id"], meta["state"]) == ("1700000000000001", "normalizing")
    assert package.state == "normalizing"
    assert storage.pending() == []
    assert [p.load_id for p in storage.abandoned_normalizing()] == ["1700000000000001"]


def test_commit_makes_the_package_pending(storage: PackageStorage) -> None:
    package = storage.create("1")
    job = _new_job(package)
    committed = storage.commit(package)
    assert committed.root == storage.pipeline_dir / "packages" / "1"
    assert not package.root.exists()
    assert committed.state == "normalized"
    assert [j.path.name for j in committed.jobs("new_jobs")] == [job.path.name]
    assert [p.load_id for p in storage.pending()] == ["1"]
    assert storage.abandoned_normalizing() == []


def test_pending_is_in_load_id_order(storage: PackageStorage) -> None:
    for load_id in ("1700000000000003", "1700000000000001", "1700000000000002"):
        storage.commit(storage.create(load_id))
    storage.create("1700000000000000")  # never committed: not pending
    assert [p.load_id for p in storage.pending()] == ["1700000000000001", "1700000000000002", "1700000000000003"]


def test_complete_with_archive_keeps_the_package(storage: PackageStorage) -> None:
    package = storage.commit(storage.create("1"))
    _new_job(package)
    storage.complete(package, archive=True)
    assert storage.pending() == []
    (archived,) = storage.completed()
    assert archived.root == storage.pipeline_dir / "completed" / "1"
    assert archived.state == "loaded" and "loaded_at" in archived.read_meta()
    assert len(archived.jobs("new_jobs")) == 1


def test_complete_without_archive_removes_the_package(storage: PackageStorage) -> None:
    package = storage.commit(storage.create("1"))
    storage.complete(package, archive=False)
    assert storage.pending() == [] and storage.completed() == []
    assert not package.root.exists()


def test_discard_removes_a_package(storage: PackageStorage) -> None:
    package = storage.create("1")
    storage.discard(package)
    assert not package.root.exists()
    assert storage.abandoned_normalizing() == []


def test_meta_updates_merge(storage: PackageStorage) -> None:
    package = storage.create("1")
    package.write_meta(rows={"events.00000": 3})
    meta = package.read_meta()
    assert meta["rows"] == {"events.00000": 3} and meta["load_id"] == "1"


def test_package_schema_round_trips(storage: PackageStorage) -> None:
    schema = Schema("github")
    RelationalNormalizer(schema, DEFAULTS, "1").normalize("events", load_sample("github_events.json"))
    package = storage.create("1")
    package.save_schema(schema)
    again = package.schema()
    assert again.to_dict() == schema.to_dict()
    assert again.version_hash == schema.version_hash


def test_load_ids_sort_by_creation_time() -> None:
    first = PackageStorage.new_load_id()
    second = PackageStorage.new_load_id()
    assert all(re.fullmatch(r"\d{16}_[0-9a-f]{6}", i) for i in (first, second))
    assert sorted([second, first]) == [first, second]


def test_load_ids_are_unique_per_process() -> None:
    ids = [PackageStorage.new_load_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)


def test_leftovers_are_never_jobs_and_are_cleaned(storage: PackageStorage) -> None:
    """What a killed process leaves in a job folder (a transcode, a temp file) is not a job."""
    package = storage.commit(storage.create("1"))
    job = package.root / "new_jobs" / job_file_name("events", "00000", 0, "jsonl")
    job.write_text("{}\n")
    leftovers = [package.root / "started_jobs" / "events.00001.0.jsonl.csv",
                 package.root / "new_jobs" / "events.00002.x.jsonl", package.root / "new_jobs" / "notes.tmp",
                 package.root / "failed_jobs" / "events.00003.0.jsonl.exception.tmp"]
    for path in leftovers:
        path.write_text("partial")
    scratch = package.scratch_path(JobFile(job), ".csv")
    scratch.write_text("partial")
    assert [j.path.name for s in JOB_STATES for j in package.jobs(s)] == [job.name]
    removed = package.clean_leftovers()
    assert sorted(removed) == sorted([f"{p.parent.name}/{p.name}" for p in leftovers] + [scratch.name])
    assert not any(p.exists() for p in leftovers) and not scratch.exists() and job.exists()


def test_a_removal_cut_short_never_looks_like_a_pending_package(storage: PackageStorage) -> None:
    """complete() renames the folder before deleting it; a half-deleted one is finished, not loaded."""
    package = storage.commit(storage.create("1"))
    trash = package.root.with_name(".removing-1")
    package.root.rename(trash)  # what a kill during the delete leaves
    assert storage.pending() == [] and not trash.exists()


def test_a_damaged_package_names_what_cannot_be_read(storage: PackageStorage) -> None:
    package = storage.commit(storage.create("1"))
    package.save_schema(Schema("s"))
    package.check()
    (package.root / "schema.json").write_text('{"tables": ')
    with pytest.raises(DamagedPackageError, match=r"package 1 .*schema.json cannot be read"):
        package.check()


# -- package writer ----------------------------------------------------------------------------

def _rows_in(path: Path) -> int:
    fmt = path.name.rsplit(".", 1)[1]
    if fmt == "jsonl":
        return len(path.read_bytes().splitlines())
    if fmt == "csv":
        return len(list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))) - 1
    if fmt == "insert_values":
        _, bodies = read_insert_values(path)
        return sum(body.count("\n(") + 1 for body in bodies)
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def _header(path: Path) -> list[str]:
    fmt = path.name.rsplit(".", 1)[1]
    if fmt == "csv":
        return next(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))
    if fmt == "insert_values":
        return read_insert_values(path)[0]
    import pyarrow.parquet as pq

    return list(pq.read_schema(path).names)


def _writer(storage: PackageStorage, schema: Schema, fmt: str, max_items: int = 1000) -> PackageWriter:
    return PackageWriter(storage.create("1"), schema, fmt, DEFAULTS, file_max_items=max_items)


@pytest.mark.parametrize("batches", [[25], [7, 7, 7, 4], [10, 10, 5], [1] * 25])
def test_rotation_by_file_max_items(storage: PackageStorage, batches: list[int]) -> None:
    schema = Schema("s")
    normalizer = RelationalNormalizer(schema, DEFAULTS, "1")
    writer = _writer(storage, schema, "jsonl", max_items=10)
    start = 0
    for size in batches:
        rows = normalizer.normalize("t", [{"i": i} for i in range(start, start + size)])["t"]
        writer.write("t", rows)
        start += size
    assert writer.close() == {"t": 25}
    jobs = writer.package.jobs("new_jobs")
    assert [j.path.name for j in jobs] == ["t.00000.0.jsonl", "t.00001.0.jsonl", "t.00002.0.jsonl"]
    assert [_rows_in(j.path) for j in jobs] == [10, 10, 5]
    assert writer.rows_per_file == {"t.00000": 10, "t.00001": 10, "t.00002": 5}
    written = [orjson.loads(line)["i"] for j in jobs for line in j.path.read_bytes().splitlines()]
    assert written == list(range(25))


def test_each_table_gets_its_own_files(storage: PackageStorage) -> None:
    events = load_sample("github_events.json")
    schema = Schema("s")
    out = RelationalNormalizer(schema, DEFAULTS, "1").normalize("events", events)
    writer = _writer(storage, schema, "jsonl", max_items=40)
    for table, rows in out.items():
        writer.write(table, rows)
    assert writer.close() == {table: len(rows) for table, rows in out.items()}
    per_table: dict[str, int] = {}
    for job in writer.package.jobs("new_jobs"):
        per_table[job.table_name] = per_table.get(job.table_name, 0) + _rows_in(job.path)
        assert _rows_in(job.path) <= 40
    assert per_table == {table: len(rows) for table, rows in out.items() if rows}


def _write_growing_table(storage: PackageStorage, fmt: str) -> tuple[PackageWriter, list[list[dict[str, Any]]]]:
    """Three batches; the second adds column b, the third adds nothing."""
    schema = Schema("s")
    normalizer = RelationalNormalizer(schema, DEFAULTS, "1")
    writer = _writer(storage, schema, fmt)
    batches = [[{"a": 1}, {"a": 2}], [{"a": 3, "b": "x"}], [{"a": 4, "b": "y"}]]
    for items in batches:
        writer.write("t", normalizer.normalize("t", items)["t"])
    writer.close()
    return writer, batches


@pytest.mark.parametrize("fmt", ["csv", "insert_values", "parquet"])
def test_formats_with_a_header_rotate_on_new_columns(storage: PackageStorage, fmt: str) -> None:
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    writer, _ = _write_growing_table(storage, fmt)
    jobs = writer.package.jobs("new_jobs")
    assert [j.file_id for j in jobs] == ["00000", "00001"]
    assert [_header(j.path) for j in jobs] == [["_lb_load_id", "_lb_id", "a"], ["_lb_load_id", "_lb_id", "a", "b"]]
    assert [_rows_in(j.path) for j in jobs] == [2, 2]


def test_jsonl_does_not_rotate_on_new_columns(storage: PackageStorage) -> None:
    writer, batches = _write_growing_table(storage, "jsonl")
    (job,) = writer.package.jobs("new_jobs")
    rows = [orjson.loads(line) for line in job.path.read_bytes().splitlines()]
    assert [{k: v for k, v in r.items() if not k.startswith("_lb_")} for r in rows] == [
        item for batch in batches for item in batch]
