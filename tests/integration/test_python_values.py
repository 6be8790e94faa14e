"""Python values users bring in dict rows load as the types they stand for, on every destination and in
every loader file format it supports (the rules are in ``common/schema/values.py``):

- ``uuid.UUID`` and ``pathlib`` paths → text; an ``Enum`` → its value's type (str → text, int → bigint,
  date → date); numpy scalars → bigint, double, bool, text, binary, timestamp or date (a uint64 past
  int64 goes where a Python int that big goes); ``numpy.datetime64`` and ``pd.Timestamp`` → timestamp
  (naive as UTC, aware as the instant), day units → date; NaT and ``pd.NA`` → NULL;
- ``set``/``frozenset``/``tuple`` → json (a set as a sorted array); ``bytearray``/``memoryview`` → binary;
- the same values nested in a json column serialize in every writer;
- a value of a type loadbay does not know stops the run while normalizing, naming pipeline, table,
  column, type and item, and leaves nothing loaded and no package behind;
- a resource's first item decides what its items are: a stray non-dict among dicts (or a dict among
  values) is such an error too; a list item is a page of items.

Each test asserts what the destination holds afterwards (or that it holds nothing).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import pytest

import loadbay
from loadbay.common.exceptions import SchemaError
from loadbay.destinations.testing.conformance.helpers import (ALL_FORMATS, as_bool, as_bytes, as_date, as_int, as_json,
                                                              as_utc, by_id, count, count_or_none, ident, query,
                                                              require_format, run_ok, table_columns, wide_int_type)

np = pytest.importorskip("numpy", reason="numpy is optional; its scalars are tested where it is installed")
pd = pytest.importorskip("pandas", reason="pandas is optional; its values are tested where it is installed")

UTC = timezone.utc
U1 = uuid.UUID("12345678-1234-5678-1234-567812345678")
U2 = uuid.UUID(int=7)
UINT64_MAX = 2**64 - 1


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class Size(enum.IntEnum):
    S = 1
    L = 3


class Day(enum.Enum):
    FIRST = date(2024, 1, 1)
    LAST = date(2024, 12, 31)


class Thing:
    """A type loadbay does not know."""

    def __str__(self) -> str:
        return "a thing"


def column(p: loadbay.Pipeline, table: str, name: str) -> dict[int, Any]:
    """``{id: value}`` of one column."""
    return {i: values[0] for i, values in by_id(p, table, name).items()}


def failed_run(p: loadbay.Pipeline, data: Any, **kwargs: Any) -> str:
    """Run ``data``, expect the SchemaError that names the bad item, check that no package is left behind,
    and return its message."""
    with pytest.raises(SchemaError) as excinfo:
        p.run(data, **kwargs)
    assert type(excinfo.value) is SchemaError, repr(excinfo.value)
    assert "RecursionError" not in repr(excinfo.value)
    assert p.storage.pending() == [] and p.storage.abandoned_normalizing() == []
    return str(excinfo.value)


def assert_names(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, (part, message)


# -- top-level values -------------------------------------------------------------------------------------

def python_rows() -> list[dict[str, Any]]:
    """Four rows: the first two make the columns (row by row), the last two take the column-at-a-time path
    (batch_size=2) with the converters the first ones chose."""
    return [
        {"id": 1, "u": U1, "color": Color.RED, "size": Size.L, "day": Day.FIRST,
         "i8": np.int8(-128), "u32": np.uint32(4_000_000_000), "i64": np.int64(-(2**63)), "u64": np.uint64(2**63 - 1),
         "f16": np.float16(1.5), "f32": np.float32(0.1), "f64": np.float64(2.25), "flag": np.bool_(True),
         "s": np.str_("numpy text"), "raw": np.bytes_(b"\x00\x01np"),
         "at": np.datetime64("2024-01-02T03:04:05.123456"), "at_ns": np.datetime64("2024-01-02T03:04:05.123456789"),
         "day64": np.datetime64("2024-02-29"), "ts_aware": pd.Timestamp("2024-01-02 03:04:05.5", tz="Europe/Berlin"),
         "ts_naive": pd.Timestamp("2024-01-02 03:04:05"), "maybe": "x",
         "tags": {"c", "a", "b"}, "frozen": frozenset({3, 1, 2}), "pair": (1, "a"),
         "ba": bytearray(b"\xffba"), "mv": memoryview(b"mv\x00"),
         "path": PurePosixPath("/data/in put/file.csv"), "win": PureWindowsPath(r"C:\data\file.csv"),
         "big": np.int64(1)},
        {"id": 2, "u": U2, "color": Color.BLUE, "size": Size.S, "day": Day.LAST, "i8": np.int8(127),
         "at": np.datetime64("NaT"), "day64": np.datetime64("NaT", "D"), "ts_aware": pd.NaT, "maybe": pd.NA,
         "f32": np.float32(-0.5), "flag": np.bool_(False), "big": np.uint64(UINT64_MAX)},
        {"id": 3, "u": U1, "color": Color.RED, "size": Size.S, "i8": np.int8(5), "f32": np.float32(3.0),
         "flag": np.bool_(True), "at": np.datetime64("1970-01-01T00:00:00"), "maybe": pd.NA, "tags": set(),
         "path": PurePosixPath("relative/p")},
        {"id": 4, "u": U2, "color": Color.BLUE, "size": Size.L, "i8": np.int8(-1), "f32": np.float32(0.1),
         "flag": np.bool_(False), "at": np.datetime64("NaT"), "maybe": "y", "tags": {"z"},
         "path": PurePosixPath("/")},
    ]


@pytest.mark.parametrize("file_format", ALL_FORMATS)
def test_python_values_load_as_the_types_they_stand_for(make_pipeline, file_format):
    p = make_pipeline(batch_size=2)
    require_format(p, file_format)
    run_ok(p, python_rows(), table_name="t", loader_file_format=file_format)

    big_variant = f"big__v_{wide_int_type(p, UINT64_MAX)}"
    types = table_columns(p, "t")
    assert {name: types[name] for name in sorted(types) if not name.startswith("_lb_")} == {
        "id": "bigint", "u": "text", "color": "text", "size": "bigint", "day": "date",
        "i8": "bigint", "u32": "bigint", "i64": "bigint", "u64": "bigint",
        "f16": "double", "f32": "double", "f64": "double", "flag": "bool", "s": "text", "raw": "binary",
        "at": "timestamp", "at_ns": "timestamp", "day64": "date", "ts_aware": "timestamp", "ts_naive": "timestamp",
        "maybe": "text", "tags": "json", "frozen": "json", "pair": "json", "ba": "binary", "mv": "binary",
        "path": "text", "win": "text", "big": "bigint", big_variant: wide_int_type(p, UINT64_MAX)}

    assert column(p, "t", "u") == {1: str(U1), 2: str(U2), 3: str(U1), 4: str(U2)}
    assert column(p, "t", "color") == {1: "red", 2: "blue", 3: "red", 4: "blue"}
    assert {i: as_int(v) for i, v in column(p, "t", "size").items()} == {1: 3, 2: 1, 3: 1, 4: 3}
    assert {i: v and as_date(v) for i, v in column(p, "t", "day").items()} == {
        1: date(2024, 1, 1), 2: date(2024, 12, 31), 3: None, 4: None}

    first = by_id(p, "t", "i8", "u32", "i64", "u64", "f16", "f64", "s", "raw", "ba", "mv")[1]
    assert tuple(map(as_int, first[:4])) == (-128, 4_000_000_000, -(2**63), 2**63 - 1)
    assert first[4:7] == (1.5, 2.25, "numpy text")
    assert tuple(map(as_bytes, first[7:])) == (b"\x00\x01np", b"\xffba", b"mv\x00")
    assert {i: as_int(v) for i, v in column(p, "t", "i8").items()} == {1: -128, 2: 127, 3: 5, 4: -1}
    assert column(p, "t", "f32") == {1: 0.10000000149011612, 2: -0.5, 3: 3.0, 4: 0.10000000149011612}
    assert {i: as_bool(v) for i, v in column(p, "t", "flag").items()} == {1: True, 2: False, 3: True, 4: False}

    assert {i: as_utc(v) for i, v in column(p, "t", "at").items()} == {
        1: datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), 2: None, 3: datetime(1970, 1, 1, tzinfo=UTC), 4: None}
    assert as_utc(column(p, "t", "at_ns")[1]) == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)  # µs kept
    assert {i: v and as_date(v) for i, v in column(p, "t", "day64").items()} == {
        1: date(2024, 2, 29), 2: None, 3: None, 4: None}
    assert {i: as_utc(v) for i, v in column(p, "t", "ts_aware").items()} == {
        1: datetime(2024, 1, 2, 2, 4, 5, 500000, tzinfo=UTC), 2: None, 3: None, 4: None}  # Berlin is UTC+1
    assert as_utc(column(p, "t", "ts_naive")[1]) == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert column(p, "t", "maybe") == {1: "x", 2: None, 3: None, 4: "y"}

    assert {i: as_json(v) for i, v in column(p, "t", "tags").items()} == {
        1: ["a", "b", "c"], 2: None, 3: [], 4: ["z"]}
    assert as_json(column(p, "t", "frozen")[1]) == [1, 2, 3]
    assert as_json(column(p, "t", "pair")[1]) == [1, "a"]
    assert column(p, "t", "path") == {1: "/data/in put/file.csv", 2: None, 3: "relative/p", 4: "/"}
    assert column(p, "t", "win")[1] == r"C:\data\file.csv"
    # a uint64 past int64 goes where a Python int that big goes: the decimal (or text) variant
    assert {i: (as_int(b), as_int(v)) for i, (b, v) in by_id(p, "t", "big", big_variant).items()} == {
        1: (1, None), 2: (None, UINT64_MAX), 3: (None, None), 4: (None, None)}


def test_a_resource_of_python_values_loads_them_in_its_value_column(make_pipeline):
    p = make_pipeline(batch_size=2)
    run_ok(p, [np.int64(1), np.int32(2), np.int16(3), np.uint8(4), Size.L], table_name="numbers")
    run_ok(p, [U1, U2, U1], table_name="ids")
    assert sorted(as_int(r[0]) for r in query(p, f"SELECT {ident(p, 'value')} FROM {ident(p, 'numbers')}")) == [
        1, 2, 3, 3, 4]
    assert table_columns(p, "numbers")["value"] == "bigint"
    assert sorted(r[0] for r in query(p, f"SELECT {ident(p, 'value')} FROM {ident(p, 'ids')}")) == sorted(
        [str(U1), str(U1), str(U2)])


def test_values_in_lists_load_into_child_tables(make_pipeline):
    p = make_pipeline(batch_size=2)
    rows = [{"id": 1, "xs": [np.int64(1), np.int64(2)], "ids": [U1]},
            {"id": 2, "xs": [np.int64(3)], "ids": [U2, U1]},
            {"id": 3, "xs": [np.int64(4), np.int64(5)], "ids": [U2]}]
    run_ok(p, rows, table_name="t")
    order = f"ORDER BY {ident(p, '_lb_root_id')}, {ident(p, '_lb_list_idx')}"
    assert [as_int(r[0]) for r in query(p, f"SELECT {ident(p, 'value')} FROM {ident(p, 't__xs')} {order}")] == [
        1, 2, 3, 4, 5]
    assert table_columns(p, "t__xs")["value"] == "bigint"
    assert [r[0] for r in query(p, f"SELECT {ident(p, 'value')} FROM {ident(p, 't__ids')} {order}")] == [
        str(U1), str(U2), str(U1), str(U2)]


# -- values nested in json ----------------------------------------------------------------------------------

@pytest.mark.parametrize("file_format", ALL_FORMATS)
def test_values_nested_in_json_serialize_in_every_writer(make_pipeline, file_format):
    p = make_pipeline(batch_size=2)
    require_format(p, file_format)
    rows = [{"id": 1, "j": {"u": U1, "n": np.int64(5), "f": np.float32(1.5), "flag": np.bool_(True),
                            "set": {3, 1, 2}, "sets": [{"b", "a"}, frozenset()], "color": Color.RED, "size": Size.L,
                            "path": PurePosixPath("/a/b"), "na": pd.NA, "nat": pd.NaT, "nat64": np.datetime64("NaT"),
                            "at": np.datetime64("2024-01-02T03:04:05"), "ts": pd.Timestamp("2024-01-02", tz="UTC"),
                            "day": np.datetime64("2024-01-03"), "dec": Decimal("1.10"), "tup": (np.int8(1), U2)}},
            {"id": 2, "j": [np.uint64(UINT64_MAX), {"deep": [{"u": U2}]}]},  # beyond 64 bits: every digit
            {"id": 3, "j": {"n": np.int64(7)}},  # the column-at-a-time path
            {"id": 4, "j": (U1, np.float64(0.5))}]  # a tuple is a json array
    run_ok(p, rows, table_name="t", columns={"j": {"data_type": "json"}}, loader_file_format=file_format)

    got = {i: as_json(v) for i, v in column(p, "t", "j").items()}
    assert got == {
        1: {"u": str(U1), "n": 5, "f": 1.5, "flag": True, "set": [1, 2, 3], "sets": [["a", "b"], []],
            "color": "red", "size": 3, "path": "/a/b", "na": None, "nat": None, "nat64": None,
            "at": "2024-01-02T03:04:05+00:00", "ts": "2024-01-02T00:00:00+00:00", "day": "2024-01-03",
            "dec": "1.10", "tup": [1, str(U2)]},
        2: [UINT64_MAX, {"deep": [{"u": str(U2)}]}],
        3: {"n": 7},
        4: [str(U1), 0.5]}


# -- values loadbay does not know ----------------------------------------------------------------------------

def test_a_value_of_an_unknown_type_stops_the_run_naming_it(make_pipeline):
    p = make_pipeline(batch_size=2)
    rows = [{"id": 1, "x": "a"}, {"id": 2, "x": "b"}, {"id": 3, "x": "c"}, {"id": 4, "x": Thing()}]
    message = failed_run(p, rows, table_name="events")  # item 4: in a batch the column-at-a-time path gives back
    assert_names(message, "pipeline 'test_pipeline'", "table 'events'", "column 'x'",
                 f"type {__name__}.Thing", "item 4 of resource 'events'", "convert")
    assert count_or_none(p, "events") is None

    message = failed_run(p, [{"id": 1, "meta": {"when": len}}], table_name="events")  # a function, nested
    assert_names(message, "table 'events'", "column 'meta__when'", "(key 'meta.when')",
                 "builtin_function_or_method", "item 1")
    assert count_or_none(p, "events") is None

    run_ok(p, [{"id": 5, "x": "fine"}], table_name="events")  # the pipeline goes on as before
    assert column(p, "events", "x") == {5: "fine"}


@pytest.mark.parametrize("file_format", ALL_FORMATS)
def test_an_unknown_type_nested_in_json_stops_the_run_naming_the_column(make_pipeline, file_format):
    p = make_pipeline()
    require_format(p, file_format)
    loop: list[Any] = []
    loop.append(loop)
    for value in ({"deep": [1, {"thing": Thing()}]}, [1, loop]):
        message = failed_run(p, [{"id": 1, "j": {"ok": 1}}, {"id": 2, "j": value}], table_name="t",
                             columns={"j": {"data_type": "json"}}, loader_file_format=file_format)
        assert_names(message, "pipeline 'test_pipeline'", "table 't'", "column 'j'")
        assert f"type {__name__}.Thing nested in its json value" in message or "contains itself" in message, message
        assert count_or_none(p, "t") is None


def test_a_dict_that_contains_itself_stops_the_run_naming_the_column_not_a_recursion_error(make_pipeline):
    """Flattened into columns (a dict in a dict) or child tables (through a list), a cycle would recurse
    until Python gives up; it is an error naming the table and column, and deep real data still loads."""
    p = make_pipeline()
    in_dict: dict[str, Any] = {"x": 1}
    in_dict["self"] = in_dict
    through_list: dict[str, Any] = {"id": 3}
    through_list["kids"] = [through_list]
    for row, table, column in (({"id": 1, "a": in_dict}, "'t'", "column 'a__self__self"),
                               ({"id": 2, "deep": {"k": [{"m": in_dict}]}}, "'t__deep__k'", "column 'm__self__self"),
                               (through_list, "'t__kids__kids__kids", "column 'kids")):
        message = failed_run(p, [{"id": 0}, row], table_name="t")
        assert_names(message, "pipeline 'test_pipeline'", f"table {table}", column, "nested more than 400 levels",
                     "item 2 of resource 't'", "contains itself")
        assert "RecursionError" not in message and count_or_none(p, "t") is None
    if "scd2" in p.capabilities.merge_strategies:  # scd2 hashes each item whole before flattening it
        message = failed_run(p, [{"id": 0}, {"id": 1, "a": in_dict}], table_name="t",
                             write_disposition={"disposition": "merge", "strategy": "scd2"})
        assert_names(message, "pipeline 'test_pipeline'", "table 't'", "hashing an item for scd2",
                     "item 2 of resource 't'", "contains itself")
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(60):
        deep = {"k": deep}
    run_ok(p, [{"id": 4, "deep": deep}], table_name="deep")
    assert count(p, "deep") == 1


# -- what a resource's items may be -----------------------------------------------------------------------

@pytest.mark.parametrize(("stray", "shown"), [("oops", "of type str ('oops')"), (None, "of type NoneType (None)"),
                                              (7, "of type int (7)"), ([1, 2], "of type int (1)")])
def test_a_stray_item_among_dicts_stops_the_run(make_pipeline, stray, shown):
    p = make_pipeline(batch_size=2)
    rows = [{"id": 1}, {"id": 2}, {"id": 3}, stray, {"id": 5}]
    message = failed_run(p, rows, table_name="events")
    assert_names(message, "pipeline 'test_pipeline'", "table 'events'", "item 4 of resource 'events'", shown,
                 "first item was a dict")
    assert count_or_none(p, "events") is None


def test_a_dict_among_values_stops_the_run(make_pipeline):
    p = make_pipeline()
    message = failed_run(p, ["a", "b", {"value": "c"}], table_name="letters")
    assert_names(message, "table 'letters'", "item 3 of resource 'letters'", "of type dict",
                 "first item was not a dict")
    assert count_or_none(p, "letters") is None


def test_list_items_are_pages_of_items(make_pipeline):
    """A generator that yields pages of rows (as API clients do) loads the rows; only one level."""
    p = make_pipeline(batch_size=2)

    def pages() -> Iterator[Any]:
        yield [{"id": 1}, {"id": 2}, {"id": 3}]
        yield {"id": 4}
        yield []
        yield [{"id": 5, "tags": ["a"]}]

    run_ok(p, loadbay.resource(pages(), name="rows"))
    assert sorted(column(p, "rows", "id")) == [1, 2, 3, 4, 5]
    assert query(p, f"SELECT {ident(p, 'value')} FROM {ident(p, 'rows__tags')}") == [("a",)]

    run_ok(p, [[1, 2], [3]], table_name="numbers")  # pages of values
    assert sorted(as_int(r[0]) for r in query(p, f"SELECT {ident(p, 'value')} FROM {ident(p, 'numbers')}")) == [
        1, 2, 3]

    message = failed_run(p, [[{"id": 6}], [[{"id": 7}]]], table_name="rows")  # a page of pages: not taken apart
    assert_names(message, "item 2 of resource 'rows'", "a list inside a list item")
    assert sorted(column(p, "rows", "id")) == [1, 2, 3, 4, 5]
