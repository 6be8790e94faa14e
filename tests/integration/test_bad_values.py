"""Bad values never take good rows down silently or crash without a name, and get the same treatment on
every destination (DuckDB, PostgreSQL, SQLite and MariaDB through SQLAlchemy):

- NUL characters are removed from text and from the strings (and keys) of json values, with a warning
  naming the table and columns once per table (PostgreSQL refuses them in text and jsonb);
- UTF-16 surrogates become U+FFFD (a pair written as two code points becomes its character), warned
  the same way (UTF-8 cannot encode them);
- "NaT" text is NULL in a timestamp or date column (text elsewhere), pandas' ``NaT`` object is NULL;
- a table that would pass ``max_table_columns`` stops the run while normalizing, naming table, column,
  limit and item, and leaves nothing loaded and no package behind.

Each test asserts what the destination holds afterwards.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from typing import Any

import pytest

import loadbay
from loadbay.common.destination import Destination
from loadbay.common.exceptions import SchemaError
from loadbay.destinations.testing.conformance.helpers import (ALL_FORMATS, as_date, as_json, as_utc, by_id,
                                                              count_or_none, ident, query, require_format, run_ok,
                                                              table_columns, values_of)

JSON_HINT = {"j": {"data_type": "json"}}


def repair_warnings(caplog: pytest.LogCaptureFixture, table: str, words: str) -> list[str]:
    """Warnings of the text repair about ``table`` that contain ``words``."""
    messages = [r.getMessage() for r in caplog.records if r.name == "loadbay.common.storage.text_repair"]
    return [m for m in messages if f"table {table!r}" in m and words in m]


# -- NUL characters ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("file_format", ALL_FORMATS)
def test_nul_characters_are_removed_from_text_and_json(make_pipeline, file_format, caplog):
    p = make_pipeline(batch_size=2)
    require_format(p, file_format)
    caplog.set_level(logging.WARNING)
    rows = [{"id": 1, "s": "clean", "j": {"k": "v"}, "l": ["x"]},
            {"id": 2, "s": "a\x00b", "j": {"k\x00ey": "x\x00y", "n": ["\x00"]}, "l": ["p\x00q"]},
            {"id": 3, "s": "spells \\u0000 as text", "j": {"k": "\\u0000"}},  # a backslash, not a NUL: kept
            {"id": 4, "s": "\x00\x00late"}]  # a second batch with NULs: still one warning
    run_ok(p, rows, table_name="t", columns=JSON_HINT, loader_file_format=file_format)

    got = by_id(p, "t", "s", "j")
    assert {i: s for i, (s, _) in got.items()} == {1: "clean", 2: "ab", 3: "spells \\u0000 as text", 4: "late"}
    assert {i: as_json(j) for i, (_, j) in got.items()} == {
        1: {"k": "v"}, 2: {"key": "xy", "n": [""]}, 3: {"k": "\\u0000"}, 4: None}
    assert values_of(p, "t__l") == ["x", "pq"]
    warned = repair_warnings(caplog, "t", "NUL")
    assert len(warned) == 1 and "'j'" in warned[0] and "'s'" in warned[0], warned
    assert len(repair_warnings(caplog, "t__l", "NUL")) == 1


# -- surrogates -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("file_format", ALL_FORMATS)
def test_surrogates_become_replacement_characters(make_pipeline, file_format, caplog):
    p = make_pipeline()
    require_format(p, file_format)
    caplog.set_level(logging.WARNING)
    rows = [{"id": 1, "s": "ok"},
            {"id": 2, "s": "a\ud800b", "j": {"k\udc00": "\ud83d\ude00"}, "l": ["x\udfff"]},
            {"id": 3, "s": "\ud83d\ude00 pair"}]  # a pair written as two code points: the real character
    run_ok(p, rows, table_name="t", columns=JSON_HINT, loader_file_format=file_format)

    got = by_id(p, "t", "s", "j")
    assert {i: s for i, (s, _) in got.items()} == {1: "ok", 2: "a\ufffdb", 3: "\U0001f600 pair"}
    assert as_json(got[2][1]) == {"k\ufffd": "\U0001f600"}
    assert values_of(p, "t__l") == ["x\ufffd"]
    warned = repair_warnings(caplog, "t", "surrogate")
    assert len(warned) == 1 and "'j'" in warned[0] and "'s'" in warned[0], warned


@pytest.mark.parametrize("file_format", ALL_FORMATS)
def test_flat_rows_are_repaired_as_nested_ones(make_pipeline, file_format, caplog):
    """Flat batches take the batch normalizer's fast path (no copy of the rows; Arrow writers convert its value
    lists a column at a time): a NUL or a surrogate there is repaired the same way, in any batch of a file."""
    p = make_pipeline(batch_size=2)
    require_format(p, file_format)
    caplog.set_level(logging.WARNING)
    rows = [{"id": 1, "s": "clean"}, {"id": 2, "s": "ok"},
            {"id": 3, "s": "a\x00b"}, {"id": 4, "s": "spells \\u0000"},
            {"id": 5, "s": "x\ud800y"}, {"id": 6, "s": "\ud83d\ude00 pair"}]
    run_ok(p, rows, table_name="f", loader_file_format=file_format)
    got = {i: s for i, (s,) in by_id(p, "f", "s").items()}
    assert got == {1: "clean", 2: "ok", 3: "ab", 4: "spells \\u0000", 5: "x\ufffdy", 6: "\U0001f600 pair"}
    assert len(repair_warnings(caplog, "f", "NUL")) == 1 and len(repair_warnings(caplog, "f", "surrogate")) == 1


# -- pandas' NaT ----------------------------------------------------------------------------------------

def test_nat_text_is_null_in_timestamp_and_date_columns_and_text_elsewhere(make_pipeline):
    p = make_pipeline(batch_size=2)
    rows = [{"id": 1, "ts": "2024-01-01T10:00:00Z", "d": "2024-01-02", "naive": "2024-01-03T04:05:06Z", "s": "x"},
            {"id": 2, "ts": "NaT", "d": "NaT", "naive": "NaT", "s": "NaT"},
            {"id": 3, "ts": "NaT", "d": "NaT", "naive": "NaT", "s": "NaT"},  # the column-at-a-time path
            {"id": 4, "ts": "2024-01-04T00:00:00Z", "d": "2024-01-05", "naive": "2024-01-06T00:00:00Z", "s": "y"}]
    run_ok(p, rows, table_name="t", columns={"naive": {"data_type": "timestamp", "timezone": False}})

    assert not [c for c in table_columns(p, "t") if "__v_" in c]  # no variant column: NaT is no bad value
    got = by_id(p, "t", "ts", "d", "naive", "s")
    assert {i: (as_utc(ts), d and as_date(d), naive is None, s) for i, (ts, d, naive, s) in got.items()} == {
        1: (datetime(2024, 1, 1, 10, tzinfo=timezone.utc), date(2024, 1, 2), False, "x"),
        2: (None, None, True, "NaT"), 3: (None, None, True, "NaT"),
        4: (datetime(2024, 1, 4, tzinfo=timezone.utc), date(2024, 1, 5), False, "y")}


def test_pandas_nat_is_null(make_pipeline):
    pd = pytest.importorskip("pandas", reason="pandas is optional; its NaT is tested where it is installed")
    p = make_pipeline(batch_size=2)
    first = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [{"id": 1, "ts": first, "d": date(2024, 1, 2), "s": "x"},
            {"id": 2, "ts": pd.NaT, "d": pd.NaT, "s": pd.NaT, "only_nat": pd.NaT},  # only_nat: like None
            {"id": 3, "ts": pd.NaT, "d": pd.NaT, "s": "y", "j": {"when": pd.NaT}},
            {"id": 4, "ts": pd.Timestamp("2024-01-04", tz="UTC"), "d": date(2024, 1, 5), "s": "z"}]
    run_ok(p, rows, table_name="t", columns=JSON_HINT)

    assert "only_nat" not in table_columns(p, "t")
    got = by_id(p, "t", "ts", "d", "s", "j")
    assert {i: (as_utc(ts), d and as_date(d), s, as_json(j)) for i, (ts, d, s, j) in got.items()} == {
        1: (first, date(2024, 1, 2), "x", None), 2: (None, None, None, None), 3: (None, None, "y", {"when": None}),
        4: (datetime(2024, 1, 4, tzinfo=timezone.utc), date(2024, 1, 5), "z", None)}


# -- too many columns -----------------------------------------------------------------------------------

def narrower(destination: Destination, max_table_columns: int) -> Destination:
    """The same destination (type and settings) with a lower column limit, as a subclass sets it."""
    base = type(destination)

    class Narrower(base):  # type: ignore[valid-type, misc]
        def capabilities_for(self, config: Any) -> Any:
            return base.capabilities_for(self, config).with_(max_table_columns=max_table_columns)

    return Narrower(destination_name=destination.destination_name, **destination.explicit)


def assert_no_package(p: loadbay.Pipeline) -> None:
    assert p.storage.pending() == [] and p.storage.abandoned_normalizing() == []


def test_too_many_columns_stop_the_run_before_anything_loads(make_pipeline, destination_name):
    p = make_pipeline()
    limit = p.capabilities.max_table_columns
    if limit is None:  # DuckDB: no limit worth checking, a 2,100-column row loads
        run_ok(p, [{"id": 1, **{f"c{i}": i for i in range(2100)}}], table_name="wide")
        assert len(table_columns(p, "wide")) == 2100 + 3
        assert by_id(p, "wide", "c0", "c2099") == {1: (0, 2099)}
        return
    # _lb_load_id, _lb_id, id and c0 .. c{limit - 4} fill the table; c{limit - 3} is one too many
    rows = [{"id": 1}, {"id": 2}, {"id": 3, **{f"c{i}": i for i in range(limit)}}]
    with pytest.raises(SchemaError) as excinfo:
        p.run(rows, table_name="wide")
    message = str(excinfo.value)
    for part in ("pipeline 'test_pipeline'", "table 'wide'", f"column 'c{limit - 3}'", f"number {limit + 1}",
                 f"at most {limit} columns", "item 3 of resource 'wide'"):
        assert part in message, (part, message)
    assert count_or_none(p, "wide") is None
    assert_no_package(p)


def test_a_table_exactly_at_the_column_limit_loads(make_pipeline, destination_name):
    p = make_pipeline()
    limit = p.capabilities.max_table_columns
    if limit is None:
        pytest.skip(f"{destination_name} has no column limit (see the 2,100-column row above)")
    # one value per row: wide tables with mostly NULL rows stay under every row-size limit
    rows = [{"id": 0}] + [{"id": i, f"c{i}": i} for i in range(1, limit - 2)]
    run_ok(p, rows, table_name="wide")
    assert len(table_columns(p, "wide")) == limit
    assert count_or_none(p, "wide") == limit - 2
    last = f"c{limit - 3}"
    assert query(p, f"SELECT {ident(p, last)} FROM {ident(p, 'wide')} WHERE {ident(p, 'id')} = {limit - 3}") == [
        (limit - 3,)]


def test_a_column_limit_reached_late_leaves_nothing_loaded(make_pipeline, destination_name):
    """Files written (on PostgreSQL already loaded) before the wide item are undone with the package."""
    first = make_pipeline(batch_size=2, file_max_items=2)
    p = loadbay.Pipeline(first.pipeline_name, narrower(first.destination, 8), first.requested_dataset_name,
                         first.settings)
    rows = [{"id": i, "name": f"n{i}", "tags": ["a", "b"]} for i in range(6)]
    rows.append({"id": 6, "name": "wide", **{f"k{i}": i for i in range(6)}})  # 4 + k0..k3 fit; k4 does not
    with pytest.raises(SchemaError) as excinfo:
        p.run(rows, table_name="t")
    message = str(excinfo.value)
    for part in ("table 't'", "column 'k4'", "at most 8 columns", "item 7 of resource 't'"):
        assert part in message, (part, message)
    assert count_or_none(p, "t") in (None, 0) and count_or_none(p, "t__tags") in (None, 0)
    assert_no_package(p)

    run_ok(p, [{"id": 7, "name": "fits", "tags": ["c"]}], table_name="t")  # the pipeline goes on as before
    assert by_id(p, "t", "name") == {7: ("fits",)}
    assert values_of(p, "t__tags") == ["c"]


def test_hinted_columns_count_against_the_limit(make_pipeline):
    first = make_pipeline()
    p = loadbay.Pipeline(first.pipeline_name, narrower(first.destination, 5), first.requested_dataset_name,
                         first.settings)
    hints = {name: {"data_type": "text"} for name in ("a", "b", "c", "d")}
    with pytest.raises(SchemaError) as excinfo:
        p.run([{"id": 1}], table_name="t", columns=hints)
    message = str(excinfo.value)
    for part in ("table 't'", "column 'd'", "at most 5 columns", "column hints"):
        assert part in message, (part, message)
    assert count_or_none(p, "t") is None
    assert_no_package(p)
