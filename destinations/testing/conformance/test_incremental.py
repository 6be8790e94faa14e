"""Incremental loading: each run loads only rows past the cursor its last loaded package left; the cursor
moves with the package (in ``_lb_pipeline_state``, in the transaction of its ``_lb_loads`` row), stays put
when a run fails, counts a normalized-but-unloaded package, and is read back on a new machine."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest

import loadbay
from loadbay.destinations.testing.conformance.helpers import count, normalize_resources, query, run_ok, select

BASE = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _rows(lo: int, hi: int) -> list[dict]:
    """Two rows per hour: a boundary value is shared by two rows."""
    return [{"id": i, "updated_at": BASE + timedelta(hours=i // 2), "v": f"v{i}"} for i in range(lo, hi)]


def _events(rows: list[dict], initial_value: object = None) -> loadbay.Resource:
    return loadbay.resource(rows, "events", incremental=loadbay.incremental("updated_at", initial_value=initial_value))


def _ids(p: loadbay.Pipeline) -> list[int]:
    return [int(r[0]) for r in select(p, "events", "id")]


def test_each_run_loads_only_rows_past_the_cursor(make_pipeline):
    p = make_pipeline()
    run_ok(p, _events(_rows(0, 10), initial_value=BASE + timedelta(hours=1)))
    assert _ids(p) == list(range(2, 10))  # initial_value itself is in, what is before it is not
    run_ok(p, _events(_rows(0, 15)))  # the source sends everything again, and five more
    assert _ids(p) == list(range(2, 15))
    # a row at the boundary hour (14 shares 7:00 with 15): the one already loaded stays single, a new one loads
    boundary = [{"id": 14, "updated_at": BASE + timedelta(hours=7), "v": "v14"},
                {"id": 15, "updated_at": BASE + timedelta(hours=7), "v": "v15"}]
    run_ok(p, _events(boundary))
    assert _ids(p) == list(range(2, 16))
    resource = _events([])
    run_ok(p, resource)
    assert resource.incremental.start_value == BASE + timedelta(hours=7)  # what a generator may ask its API from
    stored = query(p, "SELECT count(*) FROM _lb_pipeline_state")[0][0]
    assert int(stored) >= 3  # one state row per loaded package


def test_a_failed_run_leaves_the_cursor_where_it_was(make_pipeline):
    p = make_pipeline()
    run_ok(p, _events(_rows(0, 4)))

    def broken():
        yield from _rows(4, 8)
        raise RuntimeError("the API went away")

    with pytest.raises(Exception, match="the API went away"):
        p.run(_events(broken()))  # type: ignore[arg-type]
    assert _ids(p) == [0, 1, 2, 3]
    run_ok(p, _events(_rows(0, 10)))
    assert _ids(p) == list(range(10))


def test_a_package_normalized_before_a_crash_counts_and_loads_once(make_pipeline):
    p = make_pipeline()
    run_ok(p, _events(_rows(0, 4)))
    normalize_resources(p, [_events(_rows(0, 8))])  # killed after normalizing: rows 4..7 wait on disk
    assert p.state()["incremental"]["events"]["last_value"] == {"datetime": (BASE + timedelta(hours=3)).isoformat()}
    run_ok(p, _events(_rows(0, 12)))  # the pending package first, then only 8..11
    assert _ids(p) == list(range(12))
    assert count(p, "events") == 12


def test_dropping_a_pending_package_gives_its_rows_back_to_the_next_run(make_pipeline):
    p = make_pipeline()
    run_ok(p, _events(_rows(0, 4)))
    normalize_resources(p, [_events(_rows(0, 8))])
    p.drop_pending_packages()
    run_ok(p, _events(_rows(0, 8)))
    assert _ids(p) == list(range(8))


def test_a_new_machine_resumes_from_the_destination(make_pipeline):
    first = make_pipeline()
    run_ok(first, _events(_rows(0, 6)))
    shutil.rmtree(first.pipeline_dir)  # local state lost
    other = loadbay.pipeline(first.pipeline_name, destination=first.destination, dataset_name=first.dataset_name,
                             pipelines_dir=first.pipeline_dir.parent)
    assert not other.state_path.exists()
    run_ok(other, _events(_rows(0, 9)))
    assert _ids(other) == list(range(9))


def test_arrow_data_is_filtered_by_the_same_cursor(make_pipeline):
    import pyarrow as pa

    p = make_pipeline()
    run_ok(p, _events(_rows(0, 6)))
    table = pa.Table.from_pylist(_rows(0, 10))
    run_ok(p, loadbay.resource(table, "events", incremental=loadbay.incremental("updated_at")))
    assert _ids(p) == list(range(10))


def test_a_json_file_whose_cursor_mixes_ints_and_floats_is_filtered_exactly(make_pipeline, tmp_path):
    """Read columnar, such a cursor column holds JSON ints and floats side by side (``JsonNumbers``), which
    Arrow cannot compare: its batches are filtered as dicts, comparing the numbers as Python does."""
    import json

    from loadbay.sources import json_reader

    def write(count: int):
        path = tmp_path / f"events_{count}.jsonl"
        rows = [{"id": i, "ts": i // 2 + 0.5 if i % 2 else i // 2} for i in range(count)]  # 0, 0.5, 1, 1.5, ...
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return path

    first = write(6)
    assert [b.schema.field("ts").type.extension_name for b in json_reader.json_batches(first, None)] == \
        ["loadbay.json_numbers"]
    p = make_pipeline()
    run_ok(p, loadbay.resource(first, "events", incremental=loadbay.incremental("ts")))
    run_ok(p, loadbay.resource(write(10), "events", incremental=loadbay.incremental("ts")))
    assert _ids(p) == list(range(10))


def test_a_dry_run_filters_by_the_cursor_and_leaves_it(make_pipeline):
    p = make_pipeline()
    run_ok(p, _events(_rows(0, 6)))
    before = p.state()
    info = p.run(_events(_rows(0, 9)), dry_run=True)
    assert info.row_counts == {"events": 3}  # only what a run would load now
    assert p.state() == before
    run_ok(p, _events(_rows(0, 9)))
    assert _ids(p) == list(range(9))


def test_rows_in_any_order_and_in_pages_are_compared_with_the_start_not_with_each_other(make_pipeline):
    p = make_pipeline()
    newest_first = list(reversed(_rows(0, 10)))  # as many APIs return them
    run_ok(p, _events([newest_first[:5], newest_first[5:]]))  # two pages of rows
    assert _ids(p) == list(range(10))
    run_ok(p, _events(list(reversed(_rows(0, 14)))))
    assert _ids(p) == list(range(14))


def test_one_run_level_cursor_serves_each_resource_apart(make_pipeline):
    p = make_pipeline()
    late = [{"id": i, "updated_at": BASE + timedelta(days=100, hours=i)} for i in range(5)]
    early = [{"id": i, "updated_at": BASE + timedelta(hours=i)} for i in range(5)]
    run_ok(p, [loadbay.resource(late, "late"), loadbay.resource(early, "early")],
           incremental=loadbay.incremental("updated_at"))
    assert count(p, "late") == 5 and count(p, "early") == 5
    shared = loadbay.incremental("updated_at")
    with pytest.raises(loadbay.common.exceptions.ConfigurationError, match="share one loadbay.incremental"):
        p.run([loadbay.resource(late, "late", incremental=shared), loadbay.resource(early, "early", incremental=shared)])


def test_a_new_machine_keeps_the_cursors_through_a_run_without_one(make_pipeline):
    first = make_pipeline()
    run_ok(first, _events(_rows(0, 6)))
    shutil.rmtree(first.pipeline_dir)
    other = loadbay.pipeline(first.pipeline_name, destination=first.destination, dataset_name=first.dataset_name,
                             pipelines_dir=first.pipeline_dir.parent)
    run_ok(other, [{"id": 1}], table_name="plain")  # no cursor in this run
    shutil.rmtree(other.pipeline_dir)
    third = loadbay.pipeline(first.pipeline_name, destination=first.destination, dataset_name=first.dataset_name,
                             pipelines_dir=first.pipeline_dir.parent)
    run_ok(third, _events(_rows(0, 8)))
    assert _ids(third) == list(range(8))
