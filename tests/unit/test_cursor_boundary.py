"""The rows an incremental cursor keeps at its boundary value are recognised by content: a missing key and
a null one alike (a dict, an Arrow row, a row of a later file with more keys), and by the hash cursors
stored before that rule (20 hex digits of the row as given)."""

from __future__ import annotations

import hashlib

import orjson
import pyarrow as pa

from loadbay.cursor import Incremental


def legacy_hash(row: dict) -> str:
    """What a cursor stored for a boundary row before 2026-11-28 (the oracle of old state)."""
    return hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                                       default=str)).hexdigest()[:20]


def cursor_after(rows: list[dict]) -> Incremental:
    first = Incremental("ts")
    first.bind(None)
    first.filter(rows, "events")
    later = Incremental("ts")
    later.bind(first.state())
    return later


def test_a_boundary_row_with_a_null_key_more_is_the_same_row():
    later = cursor_after([{"id": 1, "ts": 5}, {"id": 2, "ts": 7}])
    assert later.filter([{"id": 2, "ts": 7, "extra": None}, {"id": 3, "ts": 7}], "events") == [{"id": 3, "ts": 7}]


def test_an_arrow_row_at_the_boundary_is_the_dict_it_was():
    later = cursor_after([{"id": 2, "ts": 7, "tags": []}])
    batch = pa.RecordBatch.from_pylist([{"id": 2, "ts": 7, "tags": None, "extra": None},
                                        {"id": 4, "ts": 7, "tags": ["a"], "extra": "x"}])
    assert later.filter(batch, "events").column("id").to_pylist() == [4]


def test_a_boundary_stored_by_an_older_version_is_still_recognised():
    row = {"id": 2, "ts": 7}
    later = Incremental("ts")
    later.bind({"cursor_path": "ts", "last_value": 7, "boundary": [legacy_hash(row)]})
    assert later.filter([dict(row), {"id": 3, "ts": 7}, {"id": 1, "ts": 6}], "events") == [{"id": 3, "ts": 7}]


def test_a_changed_row_at_the_boundary_is_new():
    later = cursor_after([{"id": 2, "ts": 7, "v": "a"}])
    assert later.filter([{"id": 2, "ts": 7, "v": "b"}], "events") == [{"id": 2, "ts": 7, "v": "b"}]
