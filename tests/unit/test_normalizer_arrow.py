"""The Arrow normalizer (loadbay.common.normalizer_arrow): the dict path's decisions, made a column at a time.

Most tests normalize the same data twice, as dicts with ``RelationalNormalizer.normalize`` and as Arrow
with ``normalize_arrow``, and assert that both give the same schema and the same rows (row ids aside,
parent/child links compared through the rows they point at); the others assert what only Arrow has
(its types) or what a hint does; contracts and scd2 are in test_normalizer_arrow_contracts.py.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from loadbay.common.exceptions import SchemaError
from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.normalizer_arrow import id_array, normalize_arrow
from loadbay.common.schema.contracts import SchemaContract
from loadbay.common.schema.types import Schema
from loadbay.common.storage.arrow_rows import arrow_rows
from loadbay.destinations.duckdb.capabilities import capabilities as DUCKDB
from loadbay.destinations.postgres.capabilities import capabilities as POSTGRES
from loadbay.destinations.sqlalchemy.capabilities import capabilities_for_dialect

SQLITE = capabilities_for_dialect("sqlite")  # no NaN in double columns, 15-digit decimals
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SYSTEM = ("_lb_id", "_lb_parent_id", "_lb_root_id", "_lb_load_id")


def normalizer(caps: Any = DUCKDB, schema: Schema | None = None, contract: SchemaContract | None = None,
               **hints: Any) -> RelationalNormalizer:
    norm = RelationalNormalizer(schema or Schema("s"), caps, "load1", contract,
                                known_tables=None if schema is not None else set())
    if hints:
        norm.apply_hints("t", **hints)
    return norm


def arrow_of(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table of ``rows`` typed from every row (``from_pylist`` would take the first row's keys only)."""
    return pa.Table.from_struct_array(pa.array(rows))


def run_arrow(norm: RelationalNormalizer, data: pa.Table | pa.RecordBatch, batch_size: int | None = None,
              table: str = "t") -> dict[str, list[dict[str, Any]]]:
    """Rows per table (json as Python values) that ``normalize_arrow`` makes of ``data``, in batches."""
    batches = data.to_batches(max_chunksize=batch_size) if isinstance(data, pa.Table) else [data]
    out: dict[str, list[dict[str, Any]]] = {}
    for batch in batches:
        for name, result in normalize_arrow(norm, table, batch).items():
            assert isinstance(result, pa.Table) and result.column_names == [
                c for c in norm.schema.tables[name].columns if c in result.column_names]
            out.setdefault(name, []).extend(arrow_rows(result, norm.schema.tables[name]))
    return out


def run_dicts(norm: RelationalNormalizer, rows: list[dict[str, Any]], batch_size: int | None = None,
              table: str = "t") -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    size = batch_size or len(rows) or 1
    for start in range(0, len(rows), size):
        for name, result in norm.normalize(table, rows[start:start + size]).items():
            out.setdefault(name, []).extend(result)
    return out


def plain(value: Any) -> Any:
    """A value as both paths may hold it: datetimes as UTC instants, json as parsed."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value


def canonical(tables: dict[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """Rows per table with row ids replaced by what they point at: a child row carries its parent's
    canonical row (and so on up to the root), so equal results mean equal links."""
    by_id: dict[str, str] = {}
    out: dict[str, list[str]] = {}
    for name in sorted(tables, key=lambda n: n.count("__")):  # parents before children
        rows = []
        for row in tables[name]:
            values = {k: plain(v) for k, v in row.items() if k not in SYSTEM and v is not None}
            text = json.dumps(values, sort_keys=True, default=str)
            if "_lb_parent_id" in row:
                text = f"{by_id[row['_lb_parent_id']]} / {text}"
                assert by_id[row["_lb_root_id"]].split(" / ")[0] == text.split(" / ")[0]
            by_id[row["_lb_id"]] = text
            rows.append(text)
        out[name] = sorted(rows)
    return out


def columns(norm: RelationalNormalizer) -> dict[str, dict[str, dict[str, Any]]]:
    return {name: {c.name: c.to_dict() for c in table.columns.values()} for name, table in norm.schema.tables.items()}


def assert_same(rows: list[dict[str, Any]], *, data: pa.Table | None = None, batch_size: int | None = None,
                caps: Any = DUCKDB, **hints: Any) -> RelationalNormalizer:
    """Dicts and Arrow of ``rows`` give the same schema (columns, types, order) and the same rows."""
    by_dicts, by_arrow = normalizer(caps, **hints), normalizer(caps, **hints)
    expected = run_dicts(by_dicts, rows, batch_size)
    got = run_arrow(by_arrow, data if data is not None else arrow_of(rows), batch_size)
    assert columns(by_arrow) == columns(by_dicts)
    assert [list(t.columns) for t in by_arrow.schema.tables.values()] == \
        [list(t.columns) for t in by_dicts.schema.tables.values()]
    assert canonical(got) == canonical({k: v for k, v in expected.items() if v})
    return by_arrow


# -- the same as the dict path ----------------------------------------------------------------------------

def test_flat_rows_with_iso_text_give_the_dict_paths_columns_and_rows():
    rows = [{"id": 1, "name": "a", "score": 1.5, "ok": True, "at": "2024-01-02T03:04:05Z", "day": "2024-01-02",
             "naive": "2024-01-02 03:04", "frac": "2024-01-02T03:04:05.123456789+02:00"},
            {"id": 2, "name": None, "score": None, "ok": False, "at": "2024-02-03T00:00:00+01:00", "day": None,
             "naive": "2024-01-02T03:04:05", "frac": None}]
    norm = assert_same(rows)
    t = norm.schema.tables["t"].columns
    assert [t[c].data_type for c in ("id", "name", "score", "ok", "at", "day", "naive", "frac")] == [
        "bigint", "text", "double", "bool", "timestamp", "date", "timestamp", "timestamp"]


def test_structs_flatten_and_lists_become_child_tables_like_the_dict_path():
    rows = [{"id": 1, "user": {"login": "a", "address": {"city": "X"}},
             "tags": ["x", "y"], "items": [{"k": 1, "subs": [{"v": "p"}, {"v": None}]}, None, {"k": 2, "subs": []}],
             "grid": [[1, 2], [], None]},
            {"id": 2, "user": None, "tags": [], "items": None, "grid": [[3]]},
            {"id": 3, "user": {"login": None, "address": None}, "tags": None, "items": [{"k": 3, "subs": None}]}]
    norm = assert_same(rows)
    assert set(norm.schema.tables) == {"t", "t__tags", "t__items", "t__items__subs", "t__grid"}
    assert norm.schema.tables["t__grid"].columns["value"].data_type == "json"  # a list in a list, as the dict path
    assert norm.schema.tables["t__items__subs"].parent == "t__items"


def test_child_rows_carry_position_parent_and_root():
    norm = normalizer()
    data = arrow_of([{"id": 1, "xs": [{"ys": [10, 11]}, {"ys": [12]}]}, {"id": 2, "xs": None},
                     {"id": 3, "xs": [{"ys": [13]}]}])
    out = run_arrow(norm, data)
    roots = {r["_lb_id"]: r["id"] for r in out["t"]}
    xs = {r["_lb_id"]: (roots[r["_lb_parent_id"]], r["_lb_list_idx"]) for r in out["t__xs"]}
    assert sorted(xs.values()) == [(1, 0), (1, 1), (3, 0)]
    assert all(roots[r["_lb_root_id"]] == xs[r["_lb_parent_id"]][0] for r in out["t__xs__ys"])
    assert sorted((xs[r["_lb_parent_id"]], r["_lb_list_idx"], r["value"]) for r in out["t__xs__ys"]) == [
        ((1, 0), 0, 10), ((1, 0), 1, 11), ((1, 1), 0, 12), ((3, 0), 0, 13)]


@pytest.mark.parametrize("name,batch_size", [("github_issues.json", 7), ("github_events.json", 1000)])
def test_sample_data_as_arrow_loads_like_dicts(name, batch_size):
    path = DATA / name
    if not path.exists():
        pytest.skip(f"sample data not found at {path}")
    rows = json.loads(path.read_text(encoding="utf-8"))
    by_dicts, by_arrow = normalizer(), normalizer()
    expected = run_dicts(by_dicts, rows, batch_size)
    got = run_arrow(by_arrow, arrow_of(rows), batch_size)
    assert columns(by_arrow) == columns(by_dicts)  # names and types; the order of columns may differ where
    assert list(by_arrow.schema.tables) == list(by_dicts.schema.tables)  # rows order their keys differently
    assert canonical(got) == canonical(expected)


def test_names_are_normalized_and_collisions_tagged_like_the_dict_path(caplog):
    rows = [{"userId": 1, "user_id": 2, "Some Key!": "x", "+1": 1, "-1": 2, "nested": {"innerKey": 1}}]
    norm = assert_same(rows)
    names = list(norm.schema.tables["t"].columns)
    assert "user_id" in names and any(n.startswith("user_id_") for n in names) and "nested__inner_key" in names
    assert "plus1" in names and "minus1" in names


def test_long_names_are_shortened_like_the_dict_path():
    rows = [{"a" * 80: 1, "b" * 40: {"c" * 40: 2}, "l" * 70: [{"x": 1}]}]
    assert_same(rows, caps=POSTGRES)  # 63-byte identifiers


# -- Arrow types ------------------------------------------------------------------------------------------

def test_arrow_types_map_to_loadbay_types():
    ts = datetime(2024, 1, 2, 3, 4, 5, 123456)
    data = pa.table({
        "i8": pa.array([1], pa.int8()), "u32": pa.array([2], pa.uint32()), "f32": pa.array([0.5], pa.float32()),
        "s": pa.array(["x"], pa.large_string()), "sv": pa.array(["y"], pa.string_view()),
        "b": pa.array([b"\x00\x01"], pa.large_binary()), "fb": pa.array([b"ab"], pa.binary(2)),
        "d32": pa.array([date(2024, 1, 2)], pa.date32()), "d64": pa.array([date(2024, 1, 3)], pa.date64()),
        "tz": pa.array([ts], pa.timestamp("us", "Asia/Tokyo")), "naive": pa.array([ts], pa.timestamp("ns")),
        "sec": pa.array([ts.replace(microsecond=0)], pa.timestamp("s", "UTC")),
        "t64": pa.array([time(1, 2, 3, 4)], pa.time64("ns")), "t32": pa.array([time(1, 2, 3)], pa.time32("s")),
        "dec": pa.array([Decimal("12.34")], pa.decimal128(10, 2)), "flag": pa.array([True]),
        "dur": pa.array([timedelta(seconds=1, microseconds=5)], pa.duration("ns")),
        "u": pa.array([uuid.UUID(int=1).bytes], pa.uuid()),
        "m": pa.array([[("k", 1)]], pa.map_(pa.string(), pa.int64())),
        "nothing": pa.nulls(1),
    })
    norm = normalizer()
    row = run_arrow(norm, data)["t"][0]
    types = {c.name: (c.data_type, c.precision, c.scale) for c in norm.schema.tables["t"].columns.values()}
    assert types == {
        "_lb_load_id": ("text", None, None), "_lb_id": ("text", None, None),
        "i8": ("bigint", None, None), "u32": ("bigint", None, None), "f32": ("double", None, None),
        "s": ("text", None, None), "sv": ("text", None, None), "b": ("binary", None, None),
        "fb": ("binary", None, None),
        "d32": ("date", None, None), "d64": ("date", None, None), "tz": ("timestamp", None, None),
        "naive": ("timestamp", None, None), "sec": ("timestamp", None, None), "t64": ("time", None, None),
        "t32": ("time", None, None), "dec": ("decimal", None, None), "flag": ("bool", None, None),
        "dur": ("bigint", None, None), "u": ("text", None, None), "m": ("json", None, None)}  # no "nothing"
    assert row["tz"] == ts.replace(tzinfo=timezone.utc)  # the same instant (Arrow holds UTC)
    assert row["naive"] == ts.replace(tzinfo=timezone.utc)  # naive values are UTC wall time
    assert (row["t64"], row["t32"], row["dur"]) == (time(1, 2, 3, 4), time(1, 2, 3), 1_000_005)
    assert (row["b"], row["fb"], row["dec"]) == (b"\x00\x01", b"ab", Decimal("12.34"))
    assert row["u"] == "00000000-0000-0000-0000-000000000001" and row["m"] == {"k": 1}


@pytest.mark.parametrize("list_type", [pa.list_view, pa.large_list_view])
def test_list_views_load_every_element_like_lists(list_type):
    rows = [{"id": 1, "l": [1, 2]}, {"id": 2, "l": None}, {"id": 3, "l": [3, 4]}, {"id": 4, "l": [5]}]
    views = pa.array([r["l"] for r in rows], list_type(pa.int64()))
    assert_same(rows, data=pa.table({"id": [1, 2, 3, 4], "l": views}))
    assert_same(rows[1:], data=pa.table({"id": [1, 2, 3, 4], "l": views}).slice(1))
    offset_type = pa.int64() if list_type is pa.large_list_view else pa.int32()
    shuffled = pa.ListViewArray if list_type is pa.list_view else pa.LargeListViewArray
    out_of_order = shuffled.from_arrays(pa.array([4, 0, 2, 1], offset_type), pa.array([2, 2, 2, 3], offset_type),
                                        pa.array([1, 2, 3, 4, 5, 6]), mask=pa.array([False, True, False, False]))
    assert_same([{"id": 1, "l": [5, 6]}, {"id": 2, "l": None}, {"id": 3, "l": [3, 4]}, {"id": 4, "l": [2, 3, 4]}],
                data=pa.table({"id": [1, 2, 3, 4], "l": out_of_order}))


def test_duplicate_field_names_are_refused_naming_pipeline_table_and_name():
    data = pa.table([pa.array([1, 2]), pa.array([10, None]), pa.array([20, 30])], names=["id", "a", "a"])
    with pytest.raises(SchemaError, match=r"pipeline 's'.*table 't'.*'a'"):
        run_arrow(normalizer(), data)
    nested = pa.table({"id": [1], "s": pa.StructArray.from_arrays([pa.array([1]), pa.array([2])], names=["k", "k"])})
    with pytest.raises(SchemaError, match=r"table 't'.*'k' in struct 's'"):
        run_arrow(normalizer(), nested)


def test_dictionary_arrays_load_their_values():
    cats = pa.array(["red", "blue", None, "red"]).dictionary_encode()
    norm = normalizer()
    out = run_arrow(norm, pa.table({"color": cats, "n": pa.array([1, 2, 3, 4]).dictionary_encode()}))
    assert [r["color"] for r in out["t"]] == ["red", "blue", None, "red"]
    assert norm.schema.tables["t"].columns["color"].data_type == "text"
    assert norm.schema.tables["t"].columns["n"].data_type == "bigint"


def test_null_columns_make_no_column_until_a_value_comes():
    norm = normalizer()
    run_arrow(norm, pa.table({"id": [1], "later": pa.nulls(1), "typed": pa.array([None], pa.int64())}))
    assert "later" not in norm.schema.tables["t"].columns and "typed" not in norm.schema.tables["t"].columns
    run_arrow(norm, pa.table({"id": [2], "later": ["now"], "typed": pa.array([5], pa.int64())}))
    assert norm.schema.tables["t"].columns["later"].data_type == "text"
    assert norm.schema.tables["t"].columns["typed"].data_type == "bigint"


def test_uint64_follows_the_dict_paths_rule_for_big_integers():
    big = 2**64 - 1
    rows = [{"a": 1, "b": big}, {"a": big, "b": 2}]
    data = pa.table({"a": pa.array([1, big], pa.uint64()), "b": pa.array([big, 2], pa.uint64())})
    norm = assert_same(rows, data=data)
    cols = norm.schema.tables["t"].columns
    assert cols["a"].data_type == "bigint" and cols["a__v_decimal"].precision == 38  # first value fits int64
    assert cols["b"].data_type == "decimal" and cols["b"].scale == 0  # first value does not
    on_sqlite = assert_same(rows, data=data, caps=SQLITE)  # 15 digits: 20-digit integers are text
    assert on_sqlite.schema.tables["t"].columns["a__v_text"].data_type == "text"


def test_decimals_take_the_default_decimal_where_they_fit_else_their_own_precision_or_text():
    data = pa.table({"d": pa.array([Decimal("1.5"), None], pa.decimal128(12, 3)),
                     "fine": pa.array([Decimal("1.0123456789")] * 2, pa.decimal128(11, 10)),
                     "wide": pa.array([Decimal(10**59)], pa.decimal256(60, 0)).take([0, 0])})
    norm = normalizer()
    out = run_arrow(norm, data)
    cols = norm.schema.tables["t"].columns
    assert (cols["d"].data_type, cols["d"].precision, cols["d"].scale) == ("decimal", None, None)  # as dicts
    assert (cols["fine"].data_type, cols["fine"].precision, cols["fine"].scale) == ("decimal", 11, 10)  # unrounded
    assert cols["wide"].data_type == "text" and out["t"][0]["wide"] == str(10**59)
    assert out["t"][0]["d"] == Decimal("1.5") and out["t"][0]["fine"] == Decimal("1.0123456789")
    on_postgres = normalizer(POSTGRES)  # 78 digits: a decimal column
    run_arrow(on_postgres, data)
    assert on_postgres.schema.tables["t"].columns["wide"].precision == 60
    on_sqlite = normalizer(SQLITE)  # default decimal(15, 6): 12 - 3 integer digits fit, 20 do not
    run_arrow(on_sqlite, pa.table({"d": data["d"], "big": pa.array([Decimal(10**19), None], pa.decimal128(20, 0))}))
    assert on_sqlite.schema.tables["t"].columns["d"].precision is None
    assert on_sqlite.schema.tables["t"].columns["big"].data_type == "text"  # past 15 digits, as today


def test_a_narrow_first_decimal_does_not_round_or_divert_wider_later_ones():
    rows = [[{"id": 1, "x": Decimal("1.5")}], [{"id": 2, "x": Decimal("2.25")}, {"id": 3, "x": Decimal("1234.5678")}]]
    by_dicts, by_arrow = normalizer(), normalizer()
    expected = [r for batch in rows for r in run_dicts(by_dicts, batch)["t"]]
    got = [r for batch in rows for r in run_arrow(by_arrow, arrow_of(batch))["t"]]
    assert columns(by_arrow) == columns(by_dicts)
    assert [r["x"] for r in got] == [r["x"] for r in expected] == \
        [Decimal("1.5"), Decimal("2.25"), Decimal("1234.5678")]


def test_hints_win_and_the_arrow_column_is_cast_to_them():
    norm = normalizer(columns={"n": {"data_type": "text"}, "f": {"data_type": "double"},
                               "s": {"data_type": "json"}, "when": {"data_type": "timestamp", "timezone": False},
                               "d": {"data_type": "decimal", "precision": 10, "scale": 1}},
                      primary_key="id")
    data = pa.table({"id": [1, 2], "n": [7, None], "f": [1, 2], "s": pa.array([{"a": 1, "b": [1, 2]}, None]),
                     "when": pa.array([datetime(2024, 1, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))],
                                      pa.timestamp("us", "Europe/Paris")).take([0, 0]),
                     "d": pa.array([Decimal("1.25"), Decimal("-1.25")], pa.decimal128(5, 2))})
    out = run_arrow(norm, data)["t"]
    cols = norm.schema.tables["t"].columns
    assert cols["id"].primary_key and not cols["id"].nullable  # a pending hint, typed by the first value
    assert "s__a" not in cols and cols["s"].data_type == "json"
    assert [(r["n"], r["f"], r["s"]) for r in out] == [("7", 1.0, {"a": 1, "b": [1, 2]}), (None, 2.0, None)]
    assert out[0]["when"] == datetime(2024, 1, 1, 11)  # UTC wall time, no zone: the hint says naive
    assert [r["d"] for r in out] == [Decimal("1.3"), Decimal("-1.3")]  # rounded half up, as the dict path


def test_timestamps_of_any_zone_and_unit_are_utc_instants():
    moment = datetime(2024, 3, 1, 12, 30, 15, 250000, tzinfo=timezone.utc)
    data = pa.table({"ns": pa.array([moment], pa.timestamp("ns", "America/New_York")),
                     "ms": pa.array([moment], pa.timestamp("ms", "+05:30")),
                     "text": [moment.isoformat()], "z": ["2024-03-01T12:30:15.25z"]})
    row = run_arrow(normalizer(), data)["t"][0]
    assert row["ns"] == row["ms"] == row["text"] == row["z"] == moment


def test_nanoseconds_before_1970_are_floored_to_the_microsecond():
    ns = -1_000_000_000_000_000_001  # 1938-04-24 22:13:19.999999999 UTC
    expected = datetime(1938, 4, 24, 22, 13, 19, 999999, tzinfo=timezone.utc)
    data = pa.table({"naive": pa.array([ns], pa.timestamp("ns")), "zoned": pa.array([ns], pa.timestamp("ns", "Europe/Berlin")),
                     "v": [1]})
    norm = normalizer()
    row = run_arrow(norm, data)["t"][0]
    assert row["naive"] == row["zoned"] == expected
    run_arrow(norm, pa.table({"v": pa.array([ns], pa.timestamp("ns"))}))  # into a bigint column: value by value
    assert [r["v__v_timestamp"] for r in run_arrow(norm, pa.table({"v": pa.array([ns], pa.timestamp("ns"))}))["t"]] \
        == [expected]


# -- evolution and variants -----------------------------------------------------------------------------

def test_a_type_change_across_batches_goes_to_variants_like_the_dict_path():
    batches = [[{"id": 1, "v": 1, "s": "2024-01-01T00:00:00Z", "f": 1.5}],
               [{"id": 2, "v": "two", "s": "not a time", "f": 2}],
               [{"id": 3, "v": 3.5, "s": "2024-01-02", "f": "x"}],
               [{"id": 4, "v": True, "s": "NaT", "f": None, "new": "col"}]]
    by_dicts, by_arrow = normalizer(), normalizer()
    expected: dict[str, list[Any]] = {}
    got: dict[str, list[Any]] = {}
    for rows in batches:
        for k, v in run_dicts(by_dicts, rows).items():
            expected.setdefault(k, []).extend(v)
        for k, v in run_arrow(by_arrow, pa.Table.from_pylist(rows)).items():
            got.setdefault(k, []).extend(v)
    assert columns(by_arrow) == columns(by_dicts)
    assert set(by_arrow.schema.tables["t"].columns) >= {"v__v_text", "v__v_double", "v__v_bool", "s__v_text",
                                                        "s__v_date", "f__v_text", "new"}
    assert canonical(got) == canonical(expected)
    assert by_arrow.new_columns["t"][-1] == "new"


def test_values_of_one_column_split_between_it_and_its_variants():
    rows = [{"s": "2024-01-01T00:00:00Z"}, {"s": "oops"}, {"s": "2024-01-03"}, {"s": "2024-02-30T00:00:00"},
            {"s": None}, {"s": "2024-01-04T05:06Z"}]
    norm = assert_same(rows)
    assert list(norm.schema.tables["t"].columns)[2:] == ["s", "s__v_text", "s__v_date"]


def test_a_narrow_hinted_integer_and_varchar_keep_what_fits():
    rows = [{"small": 1, "code": "ab"}, {"small": 40000, "code": "abcdef"}]
    assert_same(rows, columns={"small": {"data_type": "bigint", "precision": 16},
                               "code": {"data_type": "text", "precision": 3}})


def test_ints_widen_into_a_double_column_and_anything_plain_into_text():
    batches = [pa.table({"d": [1.5], "t": ["x"]}), pa.table({"d": [2], "t": pa.array([7], pa.int16())}),
               pa.table({"d": [None], "t": [True]}), pa.table({"d": [3.0], "t": pa.array([date(2024, 1, 2)])}),
               pa.table({"d": [4.0], "t": [0.1]})]
    norm = normalizer()
    out = [row for batch in batches for row in run_arrow(norm, batch)["t"]]
    assert [(r.get("d"), r["t"]) for r in out] == [
        (1.5, "x"), (2.0, "7"), (None, "true"), (3.0, "2024-01-02"), (4.0, "0.1")]
    assert [c for c in norm.schema.tables["t"].columns if "__v_" in c] == []


def test_nan_and_infinities_go_to_the_text_variant_where_doubles_cannot_hold_them(caplog):
    caplog.set_level(logging.WARNING)
    rows = [{"f": 1.5}, {"f": math.nan}, {"f": math.inf}, {"f": -math.inf}, {"f": None}, {"xs": [0.5, math.nan]}]
    norm = assert_same(rows, caps=SQLITE)
    out = run_arrow(normalizer(SQLITE), arrow_of(rows))
    assert [(r.get("f"), r.get("f__v_text")) for r in out["t"]] == [
        (1.5, None), (None, "NaN"), (None, "Infinity"), (None, "-Infinity"), (None, None), (None, None)]
    assert norm.schema.tables["t__xs"].columns["value__v_text"].variant_of == "value"
    assert any("'f__v_text'" in r.getMessage() and "table 't' column 'f'" in r.getMessage() for r in caplog.records)
    on_duckdb = run_arrow(normalizer(DUCKDB), arrow_of(rows))["t"]
    assert math.isnan(on_duckdb[1]["f"]) and on_duckdb[2]["f"] == math.inf


# -- ids ------------------------------------------------------------------------------------------------

def test_ids_come_from_the_normalizers_counter_and_format():
    norm = normalizer()
    first = run_dicts(norm, [{"id": 1, "xs": [1]}])
    arrow = run_arrow(norm, pa.table({"id": [2, 3], "xs": [[1, 2], None]}))
    last = run_dicts(norm, [{"id": 4}])
    ids = [r["_lb_id"] for rows in (first, arrow, last) for t in rows.values() for r in t]
    prefix = norm.id_prefix
    assert all(len(i) == len(prefix) + 12 and i.startswith(prefix) for i in ids)
    assert sorted(int(i[len(prefix):], 16) for i in ids) == list(range(len(ids)))  # no gap, no repeat
    assert id_array("ab", 2**40 + 10, 2).to_pylist() == [f"ab{2**40 + 10:012x}", f"ab{2**40 + 11:012x}"]


def test_items_seen_counts_arrow_rows_like_items():
    norm = normalizer()
    normalize_arrow(norm, "t", pa.record_batch({"id": [1, 2, 3]}))
    assert norm._items_seen["t"] == 3
    assert normalize_arrow(norm, "t", pa.record_batch({"id": pa.array([], pa.int64())})) == {}


def test_child_tables_inherit_the_roots_write_disposition():
    norm = normalizer(write_disposition="merge", primary_key="id")
    run_arrow(norm, pa.Table.from_pylist([{"id": 1, "xs": [{"a": 1}]}]))
    assert norm.schema.tables["t__xs"].write_disposition == "merge"


def test_json_text_and_unions_load_as_json_and_go_to_a_json_variant_elsewhere():
    norm = normalizer()
    union = pa.UnionArray.from_sparse(pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])])
    out = run_arrow(norm, pa.table({"doc": pa.array(['{"a": [1]}', None], pa.json_()), "u": union}))["t"]
    assert [(r["doc"], r["u"]) for r in out] == [({"a": [1]}, 1), (None, "b")]
    assert {norm.schema.tables["t"].columns[c].data_type for c in ("doc", "u")} == {"json"}
    run_arrow(norm, pa.table({"s": ["text"]}))
    out = run_arrow(norm, pa.table({"s": pa.array(['{"b": 2}'], pa.json_())}))["t"]
    assert out[0]["s__v_json"] == {"b": 2} and out[0].get("s") is None
