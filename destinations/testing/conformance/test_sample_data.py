"""Real sample data (GitHub events and issues, Ethereum blocks, adversarial strings) in every format."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loadbay.destinations.testing.conformance.helpers import (ALL_FORMATS, wide_int_type, as_bool, as_int, as_utc, count, ident, load_sample,
                                                      query, require_format, run_ok, table_columns)

pytestmark = pytest.mark.parametrize("file_format", ALL_FORMATS)


def test_github_events(make_pipeline, file_format):
    events = load_sample("github_events.json")
    p = make_pipeline(name="events")
    require_format(p, file_format)
    info = run_ok(p, events, table_name="events", loader_file_format=file_format)

    commits = {e["id"]: [c["sha"] for c in e["payload"].get("commits", [])] for e in events}
    n_commits = sum(len(v) for v in commits.values())
    assert n_commits > 0
    assert count(p, "events") == len(events)
    assert count(p, "events__payload__commits") == n_commits
    assert info.row_counts["events"] == len(events)
    assert info.row_counts["events__payload__commits"] == n_commits
    assert all(j.file_format == file_format for pkg in info.load_packages for j in pkg.jobs)

    # every child row points at an existing parent, which is also its root
    orphans = query(p, "SELECT count(*) FROM events__payload__commits c WHERE NOT EXISTS "
                       "(SELECT 1 FROM events e WHERE e._lb_id = c._lb_parent_id)")
    assert orphans == [(0,)]
    assert query(p, "SELECT count(*) FROM events__payload__commits "
                    "WHERE _lb_root_id <> _lb_parent_id") == [(0,)]
    # list order and content survive: commit shas per event, ordered by _lb_list_idx
    rows = query(p, "SELECT e.id, c.sha, c._lb_list_idx FROM events e JOIN events__payload__commits c "
                    "ON c._lb_parent_id = e._lb_id ORDER BY e.id, c._lb_list_idx")
    loaded: dict[str, list[str]] = {}
    for event_id, sha, idx in rows:
        assert idx == len(loaded.setdefault(event_id, []))
        loaded[event_id].append(sha)
    assert loaded == {k: v for k, v in commits.items() if v}

    # flattened nested dicts, inferred types and exact values
    cols = table_columns(p, "events")
    assert cols["actor__id"] == "bigint"
    assert cols["created_at"] == "timestamp"
    assert cols["public"] == "bool"
    by_id = {e["id"]: e for e in events}
    for event_id, actor_id, login, created_at, public in query(
            p, f"SELECT id, actor__id, actor__login, created_at, {ident(p, 'public')} FROM events"):
        source = by_id[event_id]
        assert actor_id == source["actor"]["id"]
        assert login == source["actor"]["login"]
        assert as_utc(created_at) == as_utc(source["created_at"])
        assert as_bool(public) is source["public"]
    # each root row got its package's load id
    assert query(p, "SELECT DISTINCT _lb_load_id FROM events") == [(info.loads_ids[0],)]


def test_github_issues(make_pipeline, file_format):
    issues = load_sample("github_issues.json")
    p = make_pipeline(name="issues")
    require_format(p, file_format)
    run_ok(p, issues, table_name="issues", loader_file_format=file_format)

    n_labels = sum(len(i["labels"]) for i in issues)
    assert n_labels > 0
    assert count(p, "issues") == len(issues)
    assert count(p, "issues__labels") == n_labels
    rows = query(p, "SELECT i.number, l.name FROM issues i JOIN issues__labels l ON l._lb_parent_id = i._lb_id "
                    "ORDER BY i.number, l._lb_list_idx")
    loaded: dict[int, list[str]] = {}
    for number, name in rows:
        loaded.setdefault(number, []).append(name)
    assert loaded == {i["number"]: [lb["name"] for lb in i["labels"]] for i in issues if i["labels"]}
    titles = dict(query(p, "SELECT number, title FROM issues"))
    assert titles == {i["number"]: i["title"] for i in issues}
    bodies = dict(query(p, "SELECT number, body FROM issues"))
    assert bodies == {i["number"]: i["body"] for i in issues}


def test_ethereum_blocks(make_pipeline, file_format):
    blocks = load_sample("ethereum_blocks.json")
    p = make_pipeline(name="blocks")
    require_format(p, file_format)
    run_ok(p, blocks, table_name="blocks", loader_file_format=file_format)

    txs = [t for b in blocks for t in b["transactions"]]
    assert count(p, "blocks") == len(blocks)
    assert count(p, "blocks__transactions") == len(txs)
    n_logs = sum(len(t["logs"]) for t in txs)
    if n_logs:
        assert count(p, "blocks__transactions__logs") == n_logs

    # integers beyond 64 bits arrive exactly, never through a float
    assert table_columns(p, "blocks")["total_difficulty"] == wide_int_type(p, blocks[0]["totalDifficulty"])
    difficulty = dict(query(p, "SELECT number, total_difficulty FROM blocks"))
    assert {n: as_int(v) for n, v in difficulty.items()} == {b["number"]: b["totalDifficulty"] for b in blocks}
    assert all(Decimal(str(v)) == Decimal(b["totalDifficulty"])
               for b in blocks for v in [difficulty[b["number"]]])

    # transaction values: those beyond bigint land in a variant column, each one exactly once
    value_cols = ["value"] + sorted(c for c in table_columns(p, "blocks__transactions") if c.startswith("value__v_"))
    assert any(t["value"] > 2**63 - 1 for t in txs)
    assert len(value_cols) > 1
    select = ", ".join(ident(p, c) for c in value_cols)
    loaded = {row[0]: row[1:] for row in query(p, f"SELECT {ident(p, 'hash')}, {select} FROM blocks__transactions")}
    assert len(loaded) == len(txs)
    for t in txs:
        present = [v for v in loaded[t["hash"]] if v is not None]
        assert len(present) == 1, (t["hash"], loaded[t["hash"]])
        assert as_int(present[0]) == t["value"]


def test_weird_rows_round_trip(make_pipeline, file_format):
    weird = load_sample("weird_rows.json")
    p = make_pipeline(name="weird")
    require_format(p, file_format)
    run_ok(p, weird, table_name="weird", loader_file_format=file_format)
    assert query(p, f"SELECT idx, {ident(p, 'str')} FROM weird ORDER BY idx") == [(r["idx"], r["str"]) for r in weird]
    # the injection attempt did not touch anything: every system table is still there
    assert count(p, "_lb_loads") == 1
