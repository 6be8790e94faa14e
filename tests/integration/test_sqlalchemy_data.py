"""SQLAlchemy destination, data on a real SQLite file and the real MariaDB server: every data type read back
by reflection and by value in every supported file format, the shared sample data (weird rows, GitHub
events and issues, expected counts computed from the files), merges with nested tables, upserts and hard
deletes. Every test uses its own dataset and drops it afterwards.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from loadbay.destinations.testing.conformance.helpers import (as_bool, as_bytes, as_date, as_int, as_json, as_time,
                                                              as_utc, children, ident, load_sample, orphans, query,
                                                              table_columns)
from tests.integration.sqlalchemy_support import backend, lite, maria, n_rows, sa, tbl  # noqa: F401
from tests.integration.support import live_tables

FORMATS = {"sqlite": ("jsonl", "parquet", "arrow"), "mariadb": ("jsonl", "parquet", "insert_values")}
each_backend_and_format = pytest.mark.parametrize(
    "backend,file_format", [(b, f) for b, formats in FORMATS.items() for f in formats],
    indirect=["backend"], ids=[f"{b}-{f}" for b, formats in FORMATS.items() for f in formats])

UPSERT = {"disposition": "merge", "strategy": "upsert"}


def test_supported_formats_are_what_these_tests_cover(sa, backend):
    assert sa().capabilities.supported_loader_file_formats == FORMATS[backend]


# -- data types -----------------------------------------------------------------------------------------

TEXT = "it's \"quoted\" \\ back\\slash \\n not a newline\nnew\r\nline\ttab 😀 日本語 ∑ é \x01 end\\"
TYPED = [
    {"id": 1, "txt": TEXT, "big_max": 2**63 - 1, "big_min": -2**63, "dbl": 1.7976931348623157e308, "flag": True,
     "ts": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc), "d": date(2024, 2, 29),
     "tm": time(23, 59, 59, 999999), "amount": Decimal("12345678.91"),
     "js": {"a": [1, {"b": None, "c": "x'y\"z\\"}], "deep": {"deeper": {"deepest": [[], {}]}}, "u": "ü😀"},
     "bin": b"\x00\xff"},
    {"id": 2, "txt": "", "big_max": 0, "big_min": -1, "dbl": -5e-324, "flag": False,
     "ts": datetime(1970, 1, 1, tzinfo=timezone.utc), "d": date(1000, 1, 1), "tm": time(0, 0),
     "amount": Decimal("-0.01"), "js": [1, "two", 3.5, None, True], "bin": b"\x00\x01\xff'\"\\\x00"},
    {"id": 3},
]
HINTS = {"amount": {"data_type": "decimal", "precision": 10, "scale": 2}, "js": {"data_type": "json"}}
EXPECTED_TYPES = {"id": "bigint", "txt": "text", "big_max": "bigint", "big_min": "bigint", "dbl": "double",
                  "flag": "bool", "ts": "timestamp", "d": "date", "tm": "time", "amount": "decimal", "js": "json",
                  "bin": "binary", "_lb_id": "text", "_lb_load_id": "text"}
COMPARE = {"id": as_int, "big_max": as_int, "big_min": as_int, "dbl": float, "flag": as_bool, "ts": as_utc,
           "d": as_date, "tm": as_time, "amount": lambda v: Decimal(str(v)), "js": as_json, "bin": as_bytes}


@each_backend_and_format
def test_every_type_by_reflection_and_value(sa, backend, file_format):
    p = sa()
    info = p.run(TYPED, table_name="typed", loader_file_format=file_format, columns=HINTS)
    info.raise_on_failed_jobs()
    assert {j.file_format for pkg in info.load_packages for j in pkg.jobs} == {file_format}

    # live types, read back by SQLAlchemy reflection and mapped to loadbay types
    assert table_columns(p, "typed") == EXPECTED_TYPES
    with p.sql_client() as client:
        reflected = {c[0]: c[1] for c in client.table_columns(["typed"])["typed"]}
    assert (reflected["amount"].precision, reflected["amount"].scale) == (10, 2)

    names = [n for n in EXPECTED_TYPES if not n.startswith("_lb")]
    got = query(p, f"SELECT {', '.join(ident(p, n) for n in names)} FROM {tbl(p, 'typed')} ORDER BY {ident(p, 'id')}")
    assert len(got) == len(TYPED)
    for source, row in zip(TYPED, got):
        for name, value in zip(names, row):
            want = source.get(name)
            if want is None:
                assert value is None, (source["id"], name, value)
            else:
                assert COMPARE.get(name, lambda v: v)(value) == want, (source["id"], name, value)
    if backend == "mariadb":  # DATETIME has no zone: the UTC wall time, naive
        ts = got[0][names.index("ts")]
        assert ts == datetime(2024, 1, 2, 3, 4, 5, 123456) and ts.tzinfo is None
        with p.sql_client() as client:
            assert client.execute_sql("SELECT @@session.time_zone") == [("+00:00",)]


OFFSET_ROWS = [
    {"id": 1, "ts": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))},
    {"id": 2, "ts": "2024-06-30T23:59:59.5-05:00"},
    {"id": 3, "ts": datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)},
]


@pytest.mark.parametrize("backend,file_format", [
    ("sqlite", "jsonl"),
    ("mariadb", "jsonl"),
    ("mariadb", "insert_values"),
], indirect=["backend"])
def test_timestamps_with_offsets_are_stored_as_the_utc_instant(sa, backend, file_format):
    p = sa()
    p.run(OFFSET_ROWS, table_name="t", loader_file_format=file_format,
          columns={"ts": {"data_type": "timestamp"}}).raise_on_failed_jobs()
    got = dict(query(p, f"SELECT id, ts FROM {tbl(p, 't')}"))
    assert {k: as_utc(v) for k, v in got.items()} == {
        1: datetime(2024, 1, 2, 1, 4, 5, 123456, tzinfo=timezone.utc),
        2: datetime(2024, 7, 1, 4, 59, 59, 500000, tzinfo=timezone.utc),
        3: datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)}


@pytest.mark.parametrize("backend,file_format", [
    ("sqlite", "jsonl"),
    ("mariadb", "jsonl"),
    ("mariadb", "insert_values"),
], indirect=["backend"])
def test_dedup_sort_on_timestamps_with_offsets_keeps_the_latest_instant(sa, backend, file_format):
    p = sa()
    data = [{"id": 1, "updated": "2024-01-01T10:00:00+05:00", "v": "earlier (05:00Z)"},
            {"id": 1, "updated": "2024-01-01T06:00:00+00:00", "v": "later (06:00Z)"}]
    p.run(data, table_name="t", write_disposition="merge", primary_key="id", loader_file_format=file_format,
          columns={"updated": {"data_type": "timestamp", "dedup_sort": "desc"}}).raise_on_failed_jobs()
    assert query(p, f"SELECT id, v FROM {tbl(p, 't')}") == [(1, "later (06:00Z)")]


# -- sample data ------------------------------------------------------------------------------------------

def test_weird_rows_round_trip_in_every_supported_format(sa):
    weird = load_sample("weird_rows.json")
    p = sa()
    for file_format in p.capabilities.supported_loader_file_formats:
        table = f"weird_{file_format}"
        p.run(weird, table_name=table, loader_file_format=file_format).raise_on_failed_jobs()
        got = query(p, f"SELECT idx, {ident(p, 'str')} FROM {tbl(p, table)} ORDER BY idx")
        assert got == [(r["idx"], r["str"]) for r in weird], file_format
    # the injection attempt touched nothing: every package is recorded, every table is there
    assert n_rows(p, "_lb_loads") == len(p.capabilities.supported_loader_file_formats)


def test_github_events(sa, backend):
    events = load_sample("github_events.json")
    p = sa(name="events")
    info = p.run(events, table_name="events")
    info.raise_on_failed_jobs()
    commits = {e["id"]: [c["sha"] for c in e["payload"].get("commits", [])] for e in events}
    n_commits = sum(len(v) for v in commits.values())
    assert n_commits > 0
    assert info.row_counts["events"] == len(events) == n_rows(p, "events")
    assert info.row_counts["events__payload__commits"] == n_commits == n_rows(p, "events__payload__commits")

    # commit lists per event, in order, and every child points at an existing root
    got: dict[str, list[str]] = {}
    for event_id, sha, idx in query(p, f"SELECT e.id, c.sha, c._lb_list_idx FROM {tbl(p, 'events')} e JOIN "
                                      f"{tbl(p, 'events__payload__commits')} c ON c._lb_root_id = e._lb_id "
                                      "ORDER BY e.id, c._lb_list_idx"):
        assert as_int(idx) == len(got.setdefault(event_id, []))
        got[event_id].append(sha)
    assert got == {k: v for k, v in commits.items() if v}

    types = table_columns(p, "events")
    assert (types["actor__id"], types["created_at"], types["public"], types["type"]) == (
        "bigint", "timestamp", "bool", "text")
    if backend == "mariadb":
        assert all(len(c) <= 64 for c in types), [c for c in types if len(c) > 64]
    by_id = {e["id"]: e for e in events}
    for event_id, actor_id, login, created_at, public in query(
            p, f"SELECT id, actor__id, actor__login, created_at, {ident(p, 'public')} FROM {tbl(p, 'events')}"):
        source = by_id[event_id]
        assert (as_int(actor_id), login, as_bool(public)) == (source["actor"]["id"], source["actor"]["login"],
                                                              source["public"])
        assert as_utc(created_at) == as_utc(source["created_at"])
        if backend == "mariadb":
            assert created_at.tzinfo is None
    per_type = dict(query(p, f"SELECT type, count(*) FROM {tbl(p, 'events')} GROUP BY type"))
    expected: dict[str, int] = {}
    for e in events:
        expected[e["type"]] = expected.get(e["type"], 0) + 1
    assert per_type == expected


def test_github_issues(sa, backend):
    issues = load_sample("github_issues.json")
    p = sa(name="issues")
    info = p.run(issues, table_name="issues", primary_key="id", write_disposition="merge")
    info.raise_on_failed_jobs()
    n_labels = sum(len(i["labels"]) for i in issues)
    n_assignees = sum(len(i["assignees"] or []) for i in issues)
    assert n_labels > 0 and n_assignees > 0
    assert n_rows(p, "issues") == len(issues)
    assert n_rows(p, "issues__labels") == n_labels
    assert n_rows(p, "issues__assignees") == n_assignees
    labels: dict[int, list[str]] = {}
    for number, name in query(p, f"SELECT i.number, l.name FROM {tbl(p, 'issues')} i JOIN {tbl(p, 'issues__labels')} "
                                "l ON l._lb_parent_id = i._lb_id ORDER BY i.number, l._lb_list_idx"):
        labels.setdefault(number, []).append(name)
    assert labels == {i["number"]: [lb["name"] for lb in i["labels"]] for i in issues if i["labels"]}
    got = {r[0]: r[1:] for r in query(p, f"SELECT number, title, body, reactions__total_count, {ident(p, 'locked')} "
                                        f"FROM {tbl(p, 'issues')}")}
    assert {n: (t, b, as_int(r), as_bool(lk)) for n, (t, b, r, lk) in got.items()} == {
        i["number"]: (i["title"], i["body"], i["reactions"]["total_count"], i["locked"]) for i in issues}

    # the same issues again: merged by id, nothing duplicated, children replaced not appended
    p.run(issues, table_name="issues", primary_key="id", write_disposition="merge").raise_on_failed_jobs()
    assert (n_rows(p, "issues"), n_rows(p, "issues__labels"), n_rows(p, "issues__assignees")) == (
        len(issues), n_labels, n_assignees)


# -- merge with nested tables, upsert, hard delete ---------------------------------------------------------

@pytest.mark.parametrize("strategy", ["delete-insert", "upsert"])
def test_merge_replaces_children_of_updated_roots_only(sa, strategy):
    p = sa()
    hints = {"table_name": "t", "write_disposition": {"disposition": "merge", "strategy": strategy},
             "primary_key": "id"}
    p.run([{"id": 1, "v": "a", "items": ["a1", "a2"], "tags": [{"k": "t1", "notes": ["n1", "n2"]}]},
           {"id": 2, "v": "b", "items": ["b1"], "tags": [{"k": "t2", "notes": ["n3"]}]},
           {"id": 3, "v": "c", "items": ["c1"]}], **hints).raise_on_failed_jobs()
    untouched = query(p, f"SELECT c._lb_id, c.{ident(p, 'value')} FROM {tbl(p, 't__items')} c JOIN {tbl(p, 't')} t "
                        "ON c._lb_root_id = t._lb_id WHERE t.id = 2")
    p.run([{"id": 1, "v": "a2", "items": ["x"]}, {"id": 3, "v": "c2", "items": []},
           {"id": 4, "v": "d", "items": ["n1", "n2"]}], **hints).raise_on_failed_jobs()
    assert query(p, f"SELECT id, v FROM {tbl(p, 't')} ORDER BY id") == [(1, "a2"), (2, "b"), (3, "c2"), (4, "d")]
    assert children(p) == {1: ["x"], 2: ["b1"], 4: ["n1", "n2"]}
    assert query(p, f"SELECT c._lb_id, c.{ident(p, 'value')} FROM {tbl(p, 't__items')} c JOIN {tbl(p, 't')} t "
                   "ON c._lb_root_id = t._lb_id WHERE t.id = 2") == untouched
    # grandchildren follow their root: id 1 came back without tags, so its tags and their notes went
    assert query(p, f"SELECT t.id, g.k FROM {tbl(p, 't')} t JOIN {tbl(p, 't__tags')} g ON g._lb_parent_id = t._lb_id"
                ) == [(2, "t2")]
    assert query(p, f"SELECT {ident(p, 'value')} FROM {tbl(p, 't__tags__notes')}") == [("n3",)]
    for child in ("t__items", "t__tags", "t__tags__notes"):
        assert orphans(p, child) == 0, child
    assert live_tables(p, p.config.staging_dataset_name) == set()


@pytest.mark.parametrize("strategy", ["delete-insert", "upsert"])
def test_merge_hard_delete_removes_rows_and_children(sa, strategy):
    p = sa()
    hints = {"table_name": "t", "write_disposition": {"disposition": "merge", "strategy": strategy},
             "primary_key": "id", "columns": {"deleted": {"hard_delete": True, "data_type": "bool"}}}
    p.run([{"id": 1, "v": "a", "items": ["a1", "a2"]}, {"id": 2, "v": "b", "items": ["b1"]},
           {"id": 3, "v": "c", "items": ["c1"]}], **hints).raise_on_failed_jobs()
    p.run([{"id": 1, "deleted": True}, {"id": 2, "v": "b2", "deleted": False, "items": ["b2"]},
           {"id": 9, "v": "never", "deleted": True}, {"id": 5, "v": "new", "items": ["e1"]}],
          **hints).raise_on_failed_jobs()
    assert query(p, f"SELECT id, v FROM {tbl(p, 't')} ORDER BY id") == [(2, "b2"), (3, "c"), (5, "new")]
    assert children(p) == {2: ["b2"], 3: ["c1"], 5: ["e1"]}
    assert orphans(p, "t__items") == 0
    # delete then re-insert the same key in one package: the last row wins
    p.run([{"id": 3, "deleted": True}, {"id": 3, "v": "c-again", "items": ["c9"]}], **hints).raise_on_failed_jobs()
    assert query(p, f"SELECT id, v FROM {tbl(p, 't')} WHERE id = 3") == [(3, "c-again")]
    assert children(p)[3] == ["c9"]
    # and the other way round
    p.run([{"id": 5, "v": "zombie"}, {"id": 5, "deleted": True}], **hints).raise_on_failed_jobs()
    assert [r[0] for r in query(p, f"SELECT id FROM {tbl(p, 't')} ORDER BY id")] == [2, 3]
    assert orphans(p, "t__items") == 0
    assert live_tables(p, p.config.staging_dataset_name) == set()


def test_upsert_creates_a_unique_index_and_keeps_the_last_duplicate(sa, backend):
    p = sa()
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": "id"}
    p.run([{"id": 1, "v": "a", "n": 1}, {"id": 2, "v": "b", "n": 2}], **hints).raise_on_failed_jobs()
    p.run([{"id": 2, "v": "b-old", "n": 20}, {"id": 3, "v": "c-old", "n": 30}, {"id": 2, "v": "b2", "n": 21},
           {"id": 3, "v": "c2", "n": 31}], **hints).raise_on_failed_jobs()
    assert query(p, f"SELECT id, v, n FROM {tbl(p, 't')} ORDER BY id") == [(1, "a", 1), (2, "b2", 21), (3, "c2", 31)]
    p.run([{"id": 3, "v": "c2", "n": 31}], **hints).raise_on_failed_jobs()  # the same row again changes nothing
    assert query(p, f"SELECT id, v, n FROM {tbl(p, 't')} ORDER BY id") == [(1, "a", 1), (2, "b2", 21), (3, "c2", 31)]
    assert n_rows(p, "_lb_loads") == 3
    if backend == "mariadb":
        index = query(p, f"SHOW INDEX FROM {tbl(p, 't')} WHERE Non_unique = 0")
        assert [(r[2], r[4]) for r in index] == [("t__lb_upsert_key", "id")]
    else:
        with p.sql_client() as client:
            ds = client.render(client.identifier(p.dataset_name))
            indexes = client.execute_sql(f"PRAGMA {ds}.index_list('t')")
            unique = [r[1] for r in indexes or [] if r[2]]
            assert unique == ["t__lb_upsert_key"]
            assert [r[2] for r in client.execute_sql(f"PRAGMA {ds}.index_info('t__lb_upsert_key')") or []] == ["id"]


def test_upsert_with_text_and_compound_keys(sa):
    p = sa()
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": ["org", "name"]}
    keys = [("acme", "it's"), ("acme", "ü😀"), ("beta", "back\\slash"), ("beta", "x" * 200)]
    p.run([{"org": o, "name": n, "v": 1} for o, n in keys], **hints).raise_on_failed_jobs()
    p.run([{"org": o, "name": n, "v": 2} for o, n in keys[1:3]] + [{"org": "gamma", "name": "new", "v": 2}],
          **hints).raise_on_failed_jobs()
    got = query(p, f"SELECT org, name, v FROM {tbl(p, 't')}")
    assert sorted(got) == sorted([(o, n, 1) for o, n in (keys[0], keys[3])] + [(o, n, 2) for o, n in keys[1:3]]
                                 + [("gamma", "new", 2)])


def test_merge_with_a_column_added_in_a_later_run(sa):
    p = sa()
    hints = {"table_name": "t", "write_disposition": "merge", "primary_key": "id"}
    p.run([{"id": 1, "a": "x", "items": [{"k": 1}]}], **hints).raise_on_failed_jobs()
    p.run([{"id": 1, "a": "y", "b": datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc), "c": {"x": 5},
            "items": [{"k": 2, "extra": "e"}]}, {"id": 2, "a": "z"}], **hints).raise_on_failed_jobs()
    types = table_columns(p, "t")
    assert (types["b"], types["c__x"]) == ("timestamp", "bigint")
    assert table_columns(p, "t__items")["extra"] == "text"
    got = query(p, f"SELECT id, a, b, c__x FROM {tbl(p, 't')} ORDER BY id")
    assert [(r[0], r[1], as_utc(r[2]), r[3]) for r in got] == [
        (1, "y", datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc), 5), (2, "z", None, None)]
    assert query(p, f"SELECT k, extra FROM {tbl(p, 't__items')}") == [(2, "e")]


def test_json_column_reads_back_as_json_on_mariadb(maria):
    """MariaDB's JSON is LONGTEXT with a json_valid() check: reflection must still say json."""
    p = maria()
    doc = {"a": [1, {"b": "x"}], "s": "quote ' and \" and \\"}
    p.run([{"id": 1, "doc": doc}], table_name="t", columns={"doc": {"data_type": "json"}}).raise_on_failed_jobs()
    assert table_columns(p, "t")["doc"] == "json"
    assert json.loads(query(p, f"SELECT doc FROM {tbl(p, 't')}")[0][0]) == doc
    from loadbay.common.exceptions import DestinationTerminalError

    with p.sql_client() as client:  # the check constraint is real: invalid JSON is refused by the server
        with pytest.raises(DestinationTerminalError):
            client.execute_sql(f"UPDATE {client.quoted('t')} SET doc = 'not json'")
