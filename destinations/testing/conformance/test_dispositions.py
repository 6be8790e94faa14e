"""append, replace (both strategies) and merge (dedup, compound keys, children, hard deletes, merge keys)."""

from __future__ import annotations

import pytest

import loadbay
from loadbay.destinations.testing.conformance.helpers import (count, github_events, load_sample, query,
                                                              require_replace_strategy, run_ok, select)

REPLACE_STRATEGIES = ["insert-from-staging", "truncate-and-insert", "staging-optimized"]


def _replace(strategy: str) -> dict[str, str]:
    return {"disposition": "replace", "strategy": strategy}


# -- append ----------------------------------------------------------------------------------------
def test_append_twice_doubles_rows_and_child_rows(make_pipeline):
    issues = load_sample("github_issues.json")
    n_labels = sum(len(i["labels"]) for i in issues)
    p = make_pipeline()
    first = run_ok(p, issues, table_name="issues", write_disposition="append")
    second = run_ok(p, issues, table_name="issues")  # append is the default
    assert count(p, "issues") == 2 * len(issues)
    assert count(p, "issues__labels") == 2 * n_labels
    assert query(p, "SELECT _lb_load_id, count(*) FROM issues GROUP BY _lb_load_id ORDER BY _lb_load_id") == [
        (first.loads_ids[0], len(issues)), (second.loads_ids[0], len(issues))]
    assert query(p, "SELECT count(DISTINCT _lb_id) FROM issues") == [(2 * len(issues),)]
    assert query(p, "SELECT count(DISTINCT _lb_id) FROM issues__labels") == [(2 * n_labels,)]


# -- replace ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", REPLACE_STRATEGIES)
def test_replace_keeps_only_second_run_including_children(make_pipeline, strategy):
    p = make_pipeline()
    require_replace_strategy(p, strategy)
    run_ok(p, [{"id": 1, "tags": ["a", "b"], "kids": [{"n": "k1", "g": [1, 2]}]},
               {"id": 2, "tags": ["c"]}], table_name="items", write_disposition=_replace(strategy))
    old_tag_ids = {r[0] for r in query(p, "SELECT _lb_id FROM items__tags")}
    assert len(old_tag_ids) == 3
    run_ok(p, [{"id": 3, "tags": ["z"], "kids": [{"n": "k3", "g": [9]}]}], table_name="items",
           write_disposition=_replace(strategy))
    assert select(p, "items", "id") == [(3,)]
    assert select(p, "items__tags", "value") == [("z",)]
    assert select(p, "items__kids", "n") == [("k3",)]
    assert select(p, "items__kids__g", "value") == [(9,)]
    new_tag_ids = {r[0] for r in query(p, "SELECT _lb_id FROM items__tags")}
    assert not new_tag_ids & old_tag_ids  # a child row of run 1 is gone
    # child rows point at the new parent
    assert query(p, "SELECT count(*) FROM items__tags t JOIN items i ON t._lb_parent_id = i._lb_id") == [(1,)]


@pytest.mark.parametrize("strategy", REPLACE_STRATEGIES)
def test_replace_without_lists_empties_child_tables(make_pipeline, strategy):
    p = make_pipeline()
    require_replace_strategy(p, strategy)
    run_ok(p, [{"id": 1, "tags": ["a", "b"]}], table_name="items", write_disposition=_replace(strategy))
    run_ok(p, [{"id": 2}], table_name="items", write_disposition=_replace(strategy))
    assert select(p, "items", "id") == [(2,)]
    assert count(p, "items__tags") == 0


@pytest.mark.parametrize("strategy", REPLACE_STRATEGIES)
def test_replace_with_empty_list_empties_table(make_pipeline, strategy):
    p = make_pipeline()
    require_replace_strategy(p, strategy)
    run_ok(p, [{"id": 1, "tags": ["a"]}, {"id": 2}], table_name="items", write_disposition=_replace(strategy))
    assert count(p, "items") == 2
    info = run_ok(p, [], table_name="items", write_disposition=_replace(strategy))
    assert [pkg.state for pkg in info.load_packages] == ["loaded"]
    assert count(p, "items") == 0
    assert count(p, "items__tags") == 0


def test_replace_default_strategy_is_plain_replace(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1}, {"id": 2}], table_name="items", write_disposition="replace")
    run_ok(p, [{"id": 3}], table_name="items", write_disposition="replace")
    assert select(p, "items", "id") == [(3,)]


def test_append_after_replace_appends(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1}], table_name="items", write_disposition="replace")
    run_ok(p, [{"id": 2}], table_name="items", write_disposition="append")
    assert select(p, "items", "id") == [(1,), (2,)]


# -- merge -----------------------------------------------------------------------------------------
@pytest.fixture(params=["delete-insert", "upsert"])
def merge_wd(request, destination_name, destination_capabilities):
    """Each key-based merge test runs with every merge strategy the destination has."""
    strategies = destination_capabilities.merge_strategies
    if request.param not in strategies:
        pytest.skip(f"{destination_name} has no merge strategy {request.param!r} (supported: {strategies})")
    return {"disposition": "merge", "strategy": request.param}


def test_upsert_without_a_primary_key_is_refused_before_anything_is_written(make_pipeline, destination_capabilities):
    """Checked at run(), not by the loader: a package that could never load would wait on disk and hold
    back every newer one."""
    if "upsert" not in destination_capabilities.merge_strategies:
        pytest.skip("the destination has no upsert strategy")
    p = make_pipeline()
    upsert = {"disposition": "merge", "strategy": "upsert"}
    with pytest.raises(loadbay.common.exceptions.ConfigurationError,
                       match="pipeline 'test_pipeline': table 'm': the upsert strategy needs a primary_key"):
        p.run([{"id": 1, "v": "a"}], table_name="m", write_disposition=upsert)
    assert p.pending_packages() == []
    assert not p.schema.tables.get("m")  # nothing of the run was kept
    run_ok(p, [{"id": 1, "v": "a"}], table_name="m", write_disposition=upsert, primary_key="id")
    run_ok(p, [{"id": 1, "v": "b"}], table_name="m", write_disposition=upsert)  # the key is in the schema now
    assert select(p, "m", "id", "v") == [(1, "b")]


def test_merge_updates_and_inserts(make_pipeline, merge_wd):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}], table_name="m",
           write_disposition=merge_wd, primary_key="id")
    run_ok(p, [{"id": 2, "v": "b2"}, {"id": 4, "v": "d"}], table_name="m", write_disposition=merge_wd,
           primary_key="id")
    assert select(p, "m", "id", "v") == [(1, "a"), (2, "b2"), (3, "c"), (4, "d")]
    # idempotent: the same merge again changes nothing
    run_ok(p, [{"id": 2, "v": "b2"}, {"id": 4, "v": "d"}], table_name="m", write_disposition=merge_wd,
           primary_key="id")
    assert select(p, "m", "id", "v") == [(1, "a"), (2, "b2"), (3, "c"), (4, "d")]


def test_merge_github_events_by_id_twice(make_pipeline, merge_wd):
    p = make_pipeline()
    events = github_events(p)
    run_ok(p, events, table_name="events", write_disposition=merge_wd, primary_key="id")
    run_ok(p, events, table_name="events", write_disposition=merge_wd, primary_key="id")
    assert count(p, "events") == len({e["id"] for e in events})
    assert count(p, "events__payload__commits") == sum(len(e["payload"].get("commits", [])) for e in events)
    assert query(p, "SELECT count(*) FROM events__payload__commits c WHERE NOT EXISTS "
                    "(SELECT 1 FROM events e WHERE e._lb_id = c._lb_root_id)") == [(0,)]


def test_merge_duplicate_keys_in_one_batch_last_wins(make_pipeline, merge_wd):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "v": "old"}], table_name="m", write_disposition=merge_wd, primary_key="id")
    run_ok(p, [{"id": 1, "v": "first"}, {"id": 2, "v": "x"}, {"id": 1, "v": "second"}, {"id": 1, "v": "last"}],
           table_name="m", write_disposition=merge_wd, primary_key="id")
    assert select(p, "m", "id", "v") == [(1, "last"), (2, "x")]


def test_merge_duplicate_keys_on_first_load_are_deduplicated(make_pipeline, merge_wd):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "v": "a"}, {"id": 1, "v": "b"}], table_name="m", write_disposition=merge_wd,
           primary_key="id")
    assert select(p, "m", "id", "v") == [(1, "b")]


def test_merge_duplicates_across_files_last_wins(make_pipeline, merge_wd):
    p = make_pipeline(file_max_items=2)
    rows = [{"id": i % 3, "v": f"v{i}"} for i in range(9)]
    info = run_ok(p, rows, table_name="m", write_disposition=merge_wd, primary_key="id")
    assert len(info.load_packages[0].jobs) > 1  # the rows really were spread over several files
    last = {}
    for r in rows:
        last[r["id"]] = r["v"]
    assert select(p, "m", "id", "v") == sorted(last.items())


@pytest.mark.parametrize(("direction", "expected"), [("desc", (1, "high", 30)), ("asc", (1, "low", 10))])
def test_merge_dedup_sort_picks_by_column(make_pipeline, merge_wd, direction, expected):
    p = make_pipeline()
    rows = [{"id": 1, "v": "mid", "seq": 20}, {"id": 1, "v": "high", "seq": 30}, {"id": 1, "v": "low", "seq": 10},
            {"id": 1, "v": "mid2", "seq": 20}]
    run_ok(p, rows, table_name="m", write_disposition=merge_wd, primary_key="id",
           columns={"seq": {"dedup_sort": direction}})
    assert select(p, "m", "id", "v", "seq") == [expected]


def test_merge_dedup_keeps_children_of_the_winning_row_only(make_pipeline, merge_wd):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "seq": 2, "kids": ["winner-a", "winner-b"]}, {"id": 1, "seq": 1, "kids": ["loser"]},
               {"id": 2, "seq": 1, "kids": ["other"]}],
           table_name="m", write_disposition=merge_wd, primary_key="id", columns={"seq": {"dedup_sort": "desc"}})
    assert select(p, "m", "id", "seq") == [(1, 2), (2, 1)]
    assert select(p, "m__kids", "value") == [("other",), ("winner-a",), ("winner-b",)]
    assert query(p, "SELECT count(*) FROM m__kids k WHERE NOT EXISTS "
                    "(SELECT 1 FROM m WHERE m._lb_id = k._lb_parent_id)") == [(0,)]


def test_merge_compound_primary_key(make_pipeline, merge_wd):
    p = make_pipeline()
    run_ok(p, [{"a": 1, "b": 1, "v": "x"}, {"a": 1, "b": 2, "v": "y"}, {"a": 2, "b": 1, "v": "z"}],
           table_name="m", write_disposition=merge_wd, primary_key=["a", "b"])
    run_ok(p, [{"a": 1, "b": 2, "v": "y2"}, {"a": 2, "b": 2, "v": "new"}, {"a": 2, "b": 2, "v": "new2"}],
           table_name="m", write_disposition=merge_wd, primary_key=["a", "b"])
    # (1, 1) and (2, 1) share one key column with updated rows but are distinct keys: untouched
    assert select(p, "m", "a", "b", "v") == [(1, 1, "x"), (1, 2, "y2"), (2, 1, "z"), (2, 2, "new2")]


def test_merge_replaces_nested_children_of_updated_parents(make_pipeline, merge_wd):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "kids": [{"n": "a", "g": [1, 2]}, {"n": "b"}]},
               {"id": 2, "kids": [{"n": "c", "g": [3]}]},
               {"id": 3, "kids": [{"n": "d"}]}],
           table_name="m", write_disposition=merge_wd, primary_key="id")
    old_kid_ids = {r[0] for r in query(p, "SELECT k._lb_id FROM m__kids k JOIN m ON k._lb_root_id = m._lb_id "
                                          "WHERE m.id IN (1, 3)")}
    untouched = query(p, "SELECT k._lb_id, k.n FROM m__kids k JOIN m ON k._lb_root_id = m._lb_id WHERE m.id = 2")
    # id 1: the list changed; id 3: the list is gone; id 2 is not in this run
    run_ok(p, [{"id": 1, "kids": [{"n": "x", "g": [7]}]}, {"id": 3, "note": "no kids now"}],
           table_name="m", write_disposition=merge_wd, primary_key="id")
    assert select(p, "m", "id", "note") == [(1, None), (2, None), (3, "no kids now")]
    assert select(p, "m__kids", "n") == [("c",), ("x",)]
    assert select(p, "m__kids__g", "value") == [(3,), (7,)]
    kid_ids = {r[0] for r in query(p, "SELECT _lb_id FROM m__kids")}
    assert not kid_ids & old_kid_ids
    assert query(p, "SELECT k._lb_id, k.n FROM m__kids k JOIN m ON k._lb_root_id = m._lb_id WHERE m.id = 2") == untouched
    for child in ("m__kids", "m__kids__g"):
        assert query(p, f"SELECT count(*) FROM {child} c WHERE NOT EXISTS "
                        "(SELECT 1 FROM m WHERE m._lb_id = c._lb_root_id)") == [(0,)]


def test_merge_hard_delete_removes_rows_and_children(make_pipeline, merge_wd):
    p = make_pipeline()
    hints = {"columns": {"deleted": {"hard_delete": True}}}
    run_ok(p, [{"id": 1, "v": "a", "kids": [1, 2]}, {"id": 2, "v": "b", "kids": [3]}, {"id": 3, "v": "c", "kids": [4]}],
           table_name="m", write_disposition=merge_wd, primary_key="id", **hints)
    run_ok(p, [{"id": 1, "deleted": True},                      # delete an existing row
               {"id": 2, "deleted": False, "v": "b2", "kids": [5]},  # update, flag false
               {"id": 9, "deleted": True, "v": "never"}],       # delete a row that never existed
           table_name="m", write_disposition=merge_wd, primary_key="id", **hints)
    assert select(p, "m", "id", "v") == [(2, "b2"), (3, "c")]
    assert select(p, "m__kids", "value") == [(4,), (5,)]


def test_merge_hard_delete_last_row_per_key_decides(make_pipeline, merge_wd):
    p = make_pipeline()
    hints = {"write_disposition": merge_wd, "primary_key": "id", "columns": {"deleted": {"hard_delete": True}}}
    run_ok(p, [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], table_name="m", **hints)
    run_ok(p, [{"id": 1, "deleted": True}, {"id": 1, "v": "back"},   # deleted, then written again
               {"id": 2, "v": "b2"}, {"id": 2, "deleted": True}],    # written, then deleted
           table_name="m", **hints)
    assert select(p, "m", "id", "v") == [(1, "back")]


def test_merge_hard_delete_on_non_bool_column(make_pipeline, merge_wd):
    p = make_pipeline()
    hints = {"write_disposition": merge_wd, "primary_key": "id", "columns": {"deleted_at": {"hard_delete": True}}}
    run_ok(p, [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], table_name="m", **hints)
    run_ok(p, [{"id": 1, "deleted_at": "2024-01-01T00:00:00Z"}, {"id": 2, "v": "b2"}], table_name="m", **hints)
    assert select(p, "m", "id", "v") == [(2, "b2")]


def test_merge_key_replaces_whole_partitions(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"day": "mon", "n": 1}, {"day": "mon", "n": 2}, {"day": "tue", "n": 3}], table_name="m",
           write_disposition="merge", merge_key="day")
    run_ok(p, [{"day": "mon", "n": 10}, {"day": "wed", "n": 4}, {"day": "wed", "n": 5}], table_name="m",
           write_disposition="merge", merge_key="day")
    assert select(p, "m", "day", "n") == [("mon", 10), ("tue", 3), ("wed", 4), ("wed", 5)]


def test_merge_key_with_children(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"day": "mon", "tags": ["x", "y"]}, {"day": "tue", "tags": ["z"]}], table_name="m",
           write_disposition="merge", merge_key="day")
    run_ok(p, [{"day": "mon", "tags": ["new"]}], table_name="m", write_disposition="merge", merge_key="day")
    assert select(p, "m__tags", "value") == [("new",), ("z",)]


def test_several_dispositions_in_one_package(make_pipeline):
    p = make_pipeline()
    first = [loadbay.resource([{"id": 1}], name="app", write_disposition="append"),
             loadbay.resource([{"id": 1, "v": "a"}], name="mer", write_disposition="merge", primary_key="id"),
             loadbay.resource([{"id": 1}], name="rep", write_disposition="replace")]
    info = run_ok(p, first)
    assert len(info.load_packages) == 1
    second = [loadbay.resource([{"id": 2}], name="app", write_disposition="append"),
              loadbay.resource([{"id": 1, "v": "b"}, {"id": 2, "v": "c"}], name="mer", write_disposition="merge",
                               primary_key="id"),
              loadbay.resource([{"id": 2}], name="rep", write_disposition="replace")]
    info = run_ok(p, second)
    assert info.row_counts == {"app": 1, "mer": 2, "rep": 1}
    assert select(p, "app", "id") == [(1,), (2,)]
    assert select(p, "mer", "id", "v") == [(1, "b"), (2, "c")]
    assert select(p, "rep", "id") == [(2,)]
    assert count(p, "_lb_loads") == 2


def test_list_field_named_like_another_resource(make_pipeline):
    p = make_pipeline()
    run_ok(p, [loadbay.resource([{"name": "t1"}], name="tags"),
               loadbay.resource([{"id": 1, "tags": ["a", "b"]}], name="posts")])
    assert select(p, "tags", "name") == [("t1",)]
    assert select(p, "posts__tags", "value") == [("a",), ("b",)]


def _insert_only_model(batches: list[list[dict]]) -> dict[int, dict]:
    """What insert-only must leave: per batch the last row of each key (rows load in order), inserted only
    when the key is new, with its tags; nothing is ever updated or deleted."""
    table: dict[int, dict] = {}
    for batch in batches:
        last = {row["id"]: row for row in batch}
        for key, row in last.items():
            table.setdefault(key, row)
    return table


def test_insert_only_keeps_existing_rows_and_adds_new_keys_with_their_children(make_pipeline,
                                                                              destination_capabilities):
    if "insert-only" not in destination_capabilities.merge_strategies:
        pytest.skip("the destination has no insert-only strategy")
    p = make_pipeline()
    insert_only = {"disposition": "merge", "strategy": "insert-only"}
    batches = [
        [{"id": 1, "v": "a", "tags": ["x"]}, {"id": 2, "v": "b", "tags": []}],
        [{"id": 2, "v": "b2", "tags": ["changed"]}, {"id": 3, "v": "c", "tags": ["y", "z"]},
         {"id": 3, "v": "c-last", "tags": ["last"]}],  # a duplicate key in one batch: the last row counts
        [{"id": 1, "v": "a2", "tags": []}, {"id": 4, "v": "d", "tags": ["w"]}],
    ]
    for batch in batches:
        run_ok(p, batch, table_name="m", write_disposition=insert_only, primary_key="id")
    model = _insert_only_model(batches)
    assert select(p, "m", "id", "v") == [(k, model[k]["v"]) for k in sorted(model)]
    tags = query(p, "SELECT m.id, t.value FROM m JOIN m__tags t ON t._lb_root_id = m._lb_id ORDER BY m.id, t.value")
    assert [(int(i), v) for i, v in tags] == sorted((k, t) for k, row in model.items() for t in row["tags"])
    assert count(p, "m__tags") == sum(len(row["tags"]) for row in model.values())  # no orphans, none doubled
