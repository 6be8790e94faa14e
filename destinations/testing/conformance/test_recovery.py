"""Recovery from the files on disk: pending packages, interrupted jobs, terminal failures and retries."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

import loadbay
from loadbay.common.exceptions import LoadJobFailed
from loadbay.destinations.testing.conformance.helpers import (ALL_FORMATS, count, file_holding, normalize_only,
                                                              normalize_resources, query, replace_value, require_format,
                                                              run_ok, select, staging_tables)

MARKER = 987654321  # a value that occurs once in a load file, to corrupt and restore it
BAD = "abcdefg"     # same length as MARKER once quoted: insert_values files stay well framed


def test_pending_package_is_loaded_by_next_run_exactly_once(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "kids": ["a"]}], table_name="t")
    package = normalize_only(p, [{"id": 2, "kids": ["b", "c"]}, {"id": 3}], "t")
    assert p.pending_packages() == [package.load_id]
    assert {j.table_name for j in package.jobs("new_jobs")} == {"t", "t__kids"}
    assert count(p, "t") == 1  # normalized, not loaded

    info = run_ok(p)  # no data: only the pending package
    assert info.loads_ids == [package.load_id]
    assert info.row_counts == {"t": 2, "t__kids": 2}
    assert p.pending_packages() == []
    assert select(p, "t", "id") == [(1,), (2,), (3,)]
    assert select(p, "t__kids", "value") == [("a",), ("b",), ("c",)]
    assert query(p, "SELECT count(*) FROM _lb_loads WHERE load_id = " + _literal(package.load_id)) == [(1,)]

    assert run_ok(p).load_packages == []  # nothing left to do, nothing loaded twice
    assert count(p, "t") == 3


def test_pending_package_loads_before_new_data(make_pipeline):
    p = make_pipeline()
    hints = {"write_disposition": "merge", "primary_key": "id"}
    run_ok(p, [{"id": 1, "v": "first"}], table_name="t", **hints)
    older = normalize_only(p, [{"id": 1, "v": "older"}, {"id": 2, "v": "older"}], "t", **hints)
    info = run_ok(p, [{"id": 1, "v": "newest"}], table_name="t", **hints)
    assert info.loads_ids[0] == older.load_id and len(info.loads_ids) == 2
    assert select(p, "t", "id", "v") == [(1, "newest"), (2, "older")]


def test_job_left_in_started_jobs_is_retried_and_loaded_once(make_pipeline):
    p = make_pipeline(archive_completed_packages=True)
    run_ok(p, [{"id": 0}], table_name="t")
    package = normalize_only(p, [{"id": 1}, {"id": 2}], "t")
    [job] = package.jobs("new_jobs")
    started = package.start_job(job)  # a crash while the job was running
    assert package.jobs("new_jobs") == [] and package.jobs("started_jobs") == [started]

    info = run_ok(p)
    assert info.loads_ids == [package.load_id]
    assert select(p, "t", "id") == [(0,), (1,), (2,)]
    assert p.pending_packages() == []
    [archived] = [pkg for pkg in p.storage.completed() if pkg.load_id == package.load_id]
    [done] = archived.jobs("completed_jobs")
    assert done.retry_count == started.retry_count + 1
    assert run_ok(p).load_packages == []
    assert count(p, "t") == 3


@pytest.mark.parametrize("left_in", ["started_jobs", "new_jobs"])
@pytest.mark.parametrize("disposition", ["append", "merge"])
def test_job_committed_before_a_crash_is_not_loaded_again(make_pipeline, left_in, disposition):
    """The process died after a job's transaction committed, before its file moved to completed_jobs
    (in started_jobs; or in new_jobs, where a job stopped by a signal goes back): the done-record in the
    destination, committed with the rows, says it is loaded."""
    p = make_pipeline(file_max_items=2)
    hints = {"write_disposition": disposition, "primary_key": "id"}
    run_ok(p, [{"id": 0, "kids": ["z"]}], table_name="t", **hints)
    package = normalize_only(p, [{"id": i, "kids": [f"k{i}"]} for i in range(1, 6)], "t", **hints)
    schema = package.schema()
    tables = [schema.tables["t"].name, "t__kids"]
    with p.destination.client(p.config) as client:  # what Loader.load does up to the first job
        client.initialize_storage()
        client.update_stored_schema(schema, tables)
        client.prepare_load(schema, tables, package.load_id)
        job = package.jobs("new_jobs")[0]
        started = package.start_job(job)
        client.run_job(client.create_load_job(started, schema), package.load_id)
    if left_in == "new_jobs":
        package.return_job(started)
    info = run_ok(p)
    assert info.loads_ids == [package.load_id]
    assert select(p, "t", "id") == [(i,) for i in range(6)]
    assert select(p, "t__kids", "value") == sorted((f"k{i}",) for i in range(1, 6)) + [("z",)]
    assert count(p, "_lb_jobs") == 0  # done-records go with the package's _lb_loads row
    assert staging_tables(p, package.load_id) == set()


@pytest.mark.parametrize("disposition", ["append", "merge", "replace"])
def test_a_final_transaction_retried_after_its_commit_applies_nothing_twice(make_pipeline, disposition):
    """The connection broke as the final transaction committed, and the loader retried it: the
    package is marked already, so its append (atomic here), merge or replace is not applied again."""
    p = make_pipeline(atomic_appends=True)
    hints = {"write_disposition": disposition, "primary_key": "id"}
    run_ok(p, [{"id": 0, "kids": ["z"]}], table_name="t", **hints)
    package = normalize_only(p, [{"id": 1, "kids": ["a"]}, {"id": 2}], "t", **hints)
    schema = package.schema()
    tables = ["t", "t__kids"]
    with p.destination.client(p.config) as client:
        client.initialize_storage()
        client.update_stored_schema(schema, tables)
        client.prepare_load(schema, tables, package.load_id)
        for job in package.jobs("new_jobs"):
            client.run_job(client.create_load_job(package.start_job(job), schema), package.load_id)
        assert client.complete_load(package.load_id, schema, tables, None)
        assert client.complete_load(package.load_id, schema, tables, None) == []  # the retry
    expected = [(1,), (2,)] if disposition == "replace" else [(0,), (1,), (2,)]
    assert select(p, "t", "id") == expected
    run_ok(p)  # the package on disk is found loaded, and cleaned up
    assert select(p, "t", "id") == expected
    assert select(p, "t__kids", "value") == ([("a",)] if disposition == "replace" else [("a",), ("z",)])
    assert count(p, "_lb_loads") == 2 and p.pending_packages() == []
    assert staging_tables(p, package.load_id) == set()


def test_a_package_the_loader_found_unmarked_is_asked_again_on_a_retry(make_pipeline):
    """The loader's look at the package's _lb_loads record serves the complete_load that follows on its connection;
    a retry after that (on the same connection, or after reconnecting) asks again, and applies nothing twice."""
    p = make_pipeline()
    hints = {"write_disposition": "merge", "primary_key": "id"}
    run_ok(p, [{"id": 0, "kids": ["z"]}], table_name="t", **hints)
    package = normalize_only(p, [{"id": 0, "kids": ["a"]}, {"id": 2}], "t", **hints)
    schema = package.schema()
    tables = ["t", "t__kids"]
    with p.destination.client(p.config) as client:
        assert not client.is_load_completed(package.load_id)
        client.prepare_storage(schema, tables)
        client.prepare_load(schema, tables, package.load_id)
        for job in package.jobs("new_jobs"):
            client.run_job(client.create_load_job(package.start_job(job), schema), package.load_id)
        assert client.complete_load(package.load_id, schema, tables, None)
        assert client.complete_load(package.load_id, schema, tables, None) == []  # the same connection
        assert client.is_load_completed(package.load_id)
        client.reconnect()
        assert client.complete_load(package.load_id, schema, tables, None) == []
    assert select(p, "t", "id") == [(0,), (2,)]
    assert select(p, "t__kids", "value") == [("a",)]
    run_ok(p)
    assert count(p, "_lb_loads") == 2 and p.pending_packages() == []


def test_atomic_append_with_a_failed_file_shows_nothing_until_it_completes(make_pipeline):
    p = make_pipeline(file_max_items=2, atomic_appends=True)
    run_ok(p, [{"id": 0, "n": 0}], table_name="t", columns={"n": {"data_type": "bigint"}})
    rows = [{"id": i, "n": i, "kids": [i]} for i in range(1, 7)]
    rows[3]["n"] = MARKER
    package = normalize_only(p, rows, "t")
    bad = file_holding(package, "n", MARKER)
    replace_value(bad.path, bad.file_format, "n", MARKER, BAD)
    info = p.run()
    assert info.has_failed_jobs
    assert sorted(j.state for j in info.load_packages[0].jobs if j.table_name == "t") == [
        "completed", "completed", "failed"]
    assert select(p, "t", "id") == [(0,)]  # two files committed, to the package's staging tables only
    assert count(p, "t__kids") == 0
    [failed] = p.storage.pending()[0].jobs("failed_jobs")
    replace_value(failed.path, failed.file_format, "n", BAD, MARKER)
    p.retry_failed_jobs()
    run_ok(p)
    assert select(p, "t", "id", "n") == [(0, 0)] + [(r["id"], r["n"]) for r in rows]
    assert count(p, "t__kids") == 6
    assert staging_tables(p, package.load_id) == set()


def test_package_committed_but_not_cleaned_up_is_not_loaded_again(make_pipeline):
    p = make_pipeline(archive_completed_packages=True)
    info = run_ok(p, [{"id": 1}, {"id": 2}], table_name="t")
    [load_id] = info.loads_ids
    # crash after the _lb_loads row was written, before the package left packages/
    os.replace(p.pipeline_dir / "completed" / load_id, p.pipeline_dir / "packages" / load_id)
    assert p.pending_packages() == [load_id]
    info = run_ok(p)
    assert [pkg.state for pkg in info.load_packages] == ["loaded"]
    assert p.pending_packages() == []
    assert count(p, "t") == 2
    assert count(p, "_lb_loads") == 1


def test_half_normalized_package_is_discarded(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1}], table_name="t")
    package = normalize_only(p, [{"id": 2}], "t")
    # pretend normalize crashed before the commit rename
    half = p.pipeline_dir / "normalizing" / package.load_id
    shutil.move(str(package.root), str(half))
    assert p.pending_packages() == []
    info = run_ok(p)
    assert info.load_packages == []
    assert not half.exists()
    assert select(p, "t", "id") == [(1,)]


@pytest.mark.parametrize("file_format", ALL_FORMATS)
def test_terminal_failure_keeps_package_and_loads_after_fix(make_pipeline, file_format):
    p = make_pipeline()
    require_format(p, file_format)
    hints = {"write_disposition": "merge", "primary_key": "id", "columns": {"n": {"data_type": "bigint"}}}
    run_ok(p, [loadbay.resource([{"id": 1, "n": 1}, {"id": 2, "n": 2}], name="good", **hints),
               loadbay.resource([{"id": 1, "n": 1}], name="bad", **hints)], loader_file_format=file_format)

    # the next package updates both tables; the database rejects the file of one of them
    resources = [loadbay.resource([{"id": 1, "n": 10}, {"id": 3, "n": 30}], name="good", **hints),
                 loadbay.resource([{"id": 1, "n": MARKER}, {"id": 4, "n": 40}], name="bad", **hints)]
    package = normalize_resources(p, resources, loader_file_format=file_format)
    bad_file = file_holding(package, "n", MARKER)
    assert bad_file.table_name == "bad"
    replace_value(bad_file.path, file_format, "n", MARKER, BAD)

    info = p.run()
    assert info.has_failed_jobs
    [pkg] = info.load_packages
    assert pkg.load_id == package.load_id and pkg.state == "failed"
    [failed] = pkg.failed_jobs
    assert failed.table_name == "bad" and failed.file_format == file_format and failed.error
    assert {(j.table_name, j.state) for j in pkg.jobs} == {("good", "completed"), ("bad", "failed")}
    with pytest.raises(LoadJobFailed) as err:
        info.raise_on_failed_jobs()
    message = str(err.value)
    assert "table bad" in message and bad_file.path.name in message and package.load_id in message

    # on disk, unapplied: neither table got anything of the package (merges run only on completion)
    assert p.pending_packages() == [package.load_id]
    [on_disk] = p.storage.pending()
    assert [j.path.name for j in on_disk.jobs("failed_jobs")] == [bad_file.path.name]
    assert on_disk.job_error(on_disk.jobs("failed_jobs")[0])
    assert select(p, "good", "id", "n") == [(1, 1), (2, 2)]
    assert select(p, "bad", "id", "n") == [(1, 1)]
    assert count(p, "_lb_loads") == 1

    # running again does not retry by itself, and says so
    again = p.run()
    assert again.has_failed_jobs and [(x.load_id, x.state) for x in again.load_packages] == [
        (package.load_id, "failed")]
    assert p.pending_packages() == [package.load_id]
    assert select(p, "bad", "id", "n") == [(1, 1)]

    # fix the file where it lies, retry, run
    [failed_file] = on_disk.jobs("failed_jobs")
    replace_value(failed_file.path, file_format, "n", BAD, MARKER)
    assert p.retry_failed_jobs() == 1
    assert [j.retry_count for j in on_disk.jobs("new_jobs")] == [failed_file.retry_count + 1]
    info = run_ok(p)
    assert info.loads_ids == [package.load_id]
    assert p.pending_packages() == []
    assert select(p, "good", "id", "n") == [(1, 10), (2, 2), (3, 30)]
    assert select(p, "bad", "id", "n") == [(1, MARKER), (4, 40)]
    assert count(p, "_lb_loads") == 2


def test_append_with_failed_file_loads_every_row_once_after_retry(make_pipeline):
    p = make_pipeline(file_max_items=2)
    rows = [{"id": i, "n": i} for i in range(6)]
    rows[3]["n"] = MARKER
    package = normalize_only(p, rows, "t", columns={"n": {"data_type": "bigint"}})
    files = package.jobs("new_jobs")
    assert len(files) == 3
    fmt = files[0].file_format
    replace_value(file_holding(package, "n", MARKER).path, fmt, "n", MARKER, BAD)

    info = p.run()
    assert info.has_failed_jobs
    assert sorted(j.state for j in info.load_packages[0].jobs) == ["completed", "completed", "failed"]
    assert count(p, "_lb_loads") == 0

    [pending] = p.storage.pending()
    [failed] = pending.jobs("failed_jobs")
    replace_value(failed.path, fmt, "n", BAD, MARKER)
    p.retry_failed_jobs()
    run_ok(p)
    assert select(p, "t", "id", "n") == [(r["id"], r["n"]) for r in rows]
    assert count(p, "_lb_loads") == 1


def test_drop_pending_packages_gives_up_on_failed_package(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "n": 1}], table_name="t", columns={"n": {"data_type": "bigint"}})
    package = normalize_only(p, [{"id": 2, "n": MARKER}], "t")
    [job] = package.jobs("new_jobs")
    replace_value(job.path, job.file_format, "n", MARKER, BAD)
    assert p.run().has_failed_jobs
    assert p.drop_pending_packages() == [package.load_id]
    assert p.pending_packages() == []
    assert run_ok(p, [{"id": 3, "n": 3}], table_name="t").load_packages[0].state == "loaded"
    assert select(p, "t", "id", "n") == [(1, 1), (3, 3)]


def test_dropping_a_failed_merge_package_drops_its_staging_tables(make_pipeline):
    p = make_pipeline()
    hints = {"write_disposition": "merge", "primary_key": "id", "columns": {"n": {"data_type": "bigint"}}}
    run_ok(p, [{"id": 1, "n": 1, "kids": [1]}], table_name="t", **hints)
    package = normalize_only(p, [{"id": 2, "n": MARKER, "kids": [2]}, {"id": 3, "n": 3}], "t", **hints)
    replace_value(file_holding(package, "n", MARKER).path, package.read_meta()["file_format"], "n", MARKER, BAD)
    assert p.run().has_failed_jobs
    assert staging_tables(p, package.load_id) == {"t", "t__kids"}
    assert count(p, "_lb_jobs") == 1  # the t__kids file loaded into staging; the file of t failed
    assert p.drop_pending_packages() == [package.load_id]
    assert staging_tables(p, package.load_id) == set()
    assert count(p, "_lb_jobs") == 0
    assert select(p, "t", "id", "n") == [(1, 1)]


def test_newer_packages_wait_for_a_failed_one_so_merges_apply_in_order(make_pipeline):
    p = make_pipeline()
    hints = {"write_disposition": "merge", "primary_key": "id", "columns": {"n": {"data_type": "bigint"}}}
    run_ok(p, [{"id": 1, "n": 1}], table_name="t", **hints)
    package = normalize_only(p, [{"id": 2, "n": MARKER}], "t", **hints)
    [job] = package.jobs("new_jobs")
    replace_value(job.path, job.file_format, "n", MARKER, BAD)
    assert p.run().has_failed_jobs
    # newer data for the same key is kept on disk, not loaded ahead of the failed package
    held = p.run([{"id": 2, "n": 20}, {"id": 3, "n": 3}], table_name="t", **hints)
    assert [x.state for x in held.load_packages] == ["failed", "pending"]
    assert len(p.pending_packages()) == 2
    assert select(p, "t", "id", "n") == [(1, 1)]
    [failed] = p.storage.pending()[0].jobs("failed_jobs")
    replace_value(failed.path, failed.file_format, "n", BAD, MARKER)
    p.retry_failed_jobs()
    info = run_ok(p)
    assert [x.state for x in info.load_packages] == ["loaded", "loaded"]
    assert p.pending_packages() == []
    assert select(p, "t", "id", "n") == [(1, 1), (2, 20), (3, 3)]  # the newer update wins


def test_failed_merge_retried_after_another_pipeline_replaced_the_shared_staging(make_pipeline):
    dataset = f"shared_{uuid.uuid4().hex[:8]}"
    hints = {"write_disposition": "merge", "primary_key": "id", "columns": {"n": {"data_type": "bigint"}}}
    first = make_pipeline(name="first", dataset_name=dataset)
    second = loadbay.pipeline("second", destination=first.destination, dataset_name=dataset,  # same database
                              pipelines_dir=first.pipeline_dir.parent)
    run_ok(first, [{"id": 1, "n": 1}], table_name="t", **hints)
    package = normalize_only(first, [{"id": 2, "n": MARKER}, {"id": 4, "n": 4}], "t", **hints)
    [job] = package.jobs("new_jobs")
    replace_value(job.path, job.file_format, "n", MARKER, BAD)
    assert first.run().has_failed_jobs
    run_ok(second, [{"id": 3, "n": 3}], table_name="t", **hints)  # recreates and drops staging "t"
    [failed] = first.storage.pending()[0].jobs("failed_jobs")
    replace_value(failed.path, failed.file_format, "n", BAD, MARKER)
    first.retry_failed_jobs()
    run_ok(first)
    assert first.pending_packages() == []
    assert select(first, "t", "id", "n") == [(1, 1), (2, MARKER), (3, 3), (4, 4)]


# -- helpers ---------------------------------------------------------------------------------------
def _literal(text: str) -> str:
    assert text.replace("_", "").isalnum()
    return f"'{text}'"


def test_a_package_held_back_names_what_holds_it_and_the_two_ways_out(make_pipeline, caplog):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "n": 1}], table_name="bad", columns={"n": {"data_type": "bigint"}})
    package = normalize_only(p, [{"id": 2, "n": MARKER}], "bad")
    bad_file = file_holding(package, "n", MARKER)
    replace_value(bad_file.path, bad_file.file_format, "n", MARKER, BAD)
    assert p.run().has_failed_jobs
    caplog.clear()
    with caplog.at_level("ERROR", logger="loadbay.pipeline"):
        info = p.run([{"id": 3, "n": 3}], table_name="bad")
    assert [x.state for x in info.load_packages] == ["failed", "pending"]  # the new one waits its turn
    [held] = [r.getMessage() for r in caplog.records if "is held back" in r.getMessage()]
    assert package.load_id in held and bad_file.path.name in held and "(table bad)" in held
    assert "retry-failed" in held and "drop-pending" in held and "retry_failed_jobs" in held
    assert select(p, "bad", "id") == [(1,)]
