"""Arrow data end to end, on every destination: append, replace and merge with nested lists, schema
evolution across runs, and the same data loaded as dicts and as Arrow giving the same tables.

Arrow tables are normalized a column at a time (loadbay.common.normalizer_arrow) and written as parquet where
the destination loads parquet (rows of its own format elsewhere); each test asserts what the
destination holds afterwards, parent/child links included.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa

import loadbay
from loadbay.destinations.testing.conformance.helpers import (as_bytes, as_date, as_int, as_json, as_time, as_utc, count, ident,
                                                      load_sample, query, run_ok, table_columns)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def arrow_of(rows: list[dict[str, Any]]) -> pa.Table:
    """``pa.Table.from_pylist`` of ``rows`` with the schema of all rows (by itself it takes the first row's keys)."""
    return pa.Table.from_pylist(rows, schema=pa.schema(list(pa.array(rows).type)))


def orders(ids: range, version: int = 1) -> pa.Table:
    """Orders with a struct and two levels of lists; ``version`` changes names and list lengths."""
    return arrow_of([{"id": i, "name": f"order {i} v{version}", "placed_at": T0.replace(minute=i),
                      "customer": {"name": f"c{i}", "address": {"city": "Oslo" if i % 2 else None}},
                      "tags": [f"t{i}-{k}" for k in range((i + version) % 3)],
                      "lines": [{"sku": f"s{i}-{k}", "qty": k + version, "parts": [k, k + 1]}
                                for k in range(1 + (i + version) % 2)]} for i in ids])


def rows_of(p: loadbay.Pipeline, table: str, *columns: str) -> list[tuple[Any, ...]]:
    names = ", ".join(ident(p, c) for c in columns)
    return sorted(query(p, f"SELECT {names} FROM {ident(p, table)}"), key=repr)


def linked(p: loadbay.Pipeline, child: str, parent: str, parent_column: str, *columns: str) -> list[tuple[Any, ...]]:
    """``(parent's column, list index, child columns...)`` per child row, joined through ``_lb_parent_id``
    (an orphan would drop out), checked against ``_lb_root_id`` being the root's row id."""
    c, par = ident(p, "c"), ident(p, "par")
    names = "".join(f", {c}.{ident(p, col)}" for col in columns)
    sql = (f"SELECT {par}.{ident(p, parent_column)}, {c}.{ident(p, '_lb_list_idx')}{names} "
           f"FROM {ident(p, child)} {c} JOIN {ident(p, parent)} {par} ON {c}.{ident(p, '_lb_parent_id')} = "
           f"{par}.{ident(p, '_lb_id')}")
    got = sorted([(r[0], as_int(r[1]), *r[2:]) for r in query(p, sql)], key=repr)
    assert len(got) == count(p, child), "every child row has its parent"
    return got


def expected_lines(ids: range, version: int = 1) -> list[tuple[Any, ...]]:
    return sorted([(i, k, f"s{i}-{k}", k + version) for i in ids for k in range(1 + (i + version) % 2)], key=repr)


def test_append_loads_structs_and_nested_lists(make_pipeline):
    p = make_pipeline()
    run_ok(p, orders(range(1, 5)), table_name="orders")
    run_ok(p, orders(range(5, 7)), table_name="orders")

    columns = table_columns(p, "orders")
    assert {columns[c] for c in ("placed_at",)} == {"timestamp"} and "customer__address__city" in columns
    got = [(as_int(i), name, as_utc(at), city) for i, name, at, city in
           rows_of(p, "orders", "id", "name", "placed_at", "customer__address__city")]
    assert sorted(got) == [(i, f"order {i} v1", T0.replace(minute=i), "Oslo" if i % 2 else None) for i in range(1, 7)]
    assert [(i, k, sku, as_int(q)) for i, k, sku, q in linked(p, "orders__lines", "orders", "id", "sku", "qty")] == \
        expected_lines(range(1, 7))
    parts = linked(p, "orders__lines__parts", "orders__lines", "sku", "value")
    assert sorted((sku, k, as_int(v)) for sku, k, v in parts) == sorted(
        (f"s{i}-{k}", j, k + j) for i in range(1, 7) for k in range(1 + (i + 1) % 2) for j in range(2))
    roots = query(p, f"SELECT count(*) FROM {ident(p, 'orders__lines__parts')} g JOIN {ident(p, 'orders')} o "
                     f"ON g.{ident(p, '_lb_root_id')} = o.{ident(p, '_lb_id')}")
    assert as_int(roots[0][0]) == count(p, "orders__lines__parts")
    assert sorted(tag for _, _, tag in linked(p, "orders__tags", "orders", "id", "value")) == \
        sorted(f"t{i}-{k}" for i in range(1, 7) for k in range((i + 1) % 3))


def test_replace_replaces_the_root_table_and_its_children(make_pipeline):
    p = make_pipeline()
    run_ok(p, orders(range(1, 6)), table_name="orders", write_disposition="replace")
    run_ok(p, orders(range(10, 12), version=2), table_name="orders", write_disposition="replace")

    assert sorted(as_int(r[0]) for r in rows_of(p, "orders", "id")) == [10, 11]
    assert [(i, k, sku, as_int(q)) for i, k, sku, q in linked(p, "orders__lines", "orders", "id", "sku", "qty")] == \
        expected_lines(range(10, 12), version=2)
    assert count(p, "orders__lines__parts") == 2 * len(expected_lines(range(10, 12), version=2))


def test_merge_updates_rows_and_replaces_their_children(make_pipeline):
    p = make_pipeline()
    run_ok(p, orders(range(1, 4)), table_name="orders", write_disposition="merge", primary_key="id")
    run_ok(p, orders(range(2, 5), version=2), table_name="orders", write_disposition="merge", primary_key="id")

    assert sorted((as_int(i), n) for i, n in rows_of(p, "orders", "id", "name")) == \
        [(1, "order 1 v1"), (2, "order 2 v2"), (3, "order 3 v2"), (4, "order 4 v2")]
    got = [(i, k, sku, as_int(q)) for i, k, sku, q in linked(p, "orders__lines", "orders", "id", "sku", "qty")]
    assert got == sorted(expected_lines(range(1, 2)) + expected_lines(range(2, 5), version=2), key=repr)
    tags = sorted((i, tag) for i, _, tag in linked(p, "orders__tags", "orders", "id", "value"))
    assert tags == sorted([(1, f"t1-{k}") for k in range(2 % 3)] +
                          [(i, f"t{i}-{k}") for i in range(2, 5) for k in range((i + 2) % 3)])


def test_schema_evolves_across_runs_with_new_columns_and_variants(make_pipeline):
    p = make_pipeline()
    run_ok(p, pa.table({"id": [1, 2], "n": [10, 20], "at": ["2024-01-01T00:00:00Z", None]}), table_name="t")
    run_ok(p, pa.table({"id": [3, 4], "n": ["x", "40"], "at": ["later", "2024-01-02T00:00:00Z"], "extra": [1.5, None]}),
           table_name="t")

    columns = table_columns(p, "t")
    assert (columns["n"], columns["n__v_text"], columns["at"], columns["at__v_text"], columns["extra"]) == \
        ("bigint", "text", "timestamp", "text", "double")
    got = {as_int(i): (as_int(n), nv, at and as_utc(at), atv, extra)
           for i, n, nv, at, atv, extra in rows_of(p, "t", "id", "n", "n__v_text", "at", "at__v_text", "extra")}
    assert got == {1: (10, None, datetime(2024, 1, 1, tzinfo=timezone.utc), None, None),
                   2: (20, None, None, None, None),
                   3: (None, "x", None, "later", 1.5),
                   4: (None, "40", datetime(2024, 1, 2, tzinfo=timezone.utc), None, None)}


def test_github_issues_as_arrow_load_like_dicts(make_pipeline):
    p = make_pipeline(batch_size=40)  # several batches: columns appear batch by batch in both paths
    issues = load_sample("github_issues.json")
    run_ok(p, [loadbay.resource(issues, name="dicts"), loadbay.resource(arrow_of(issues), name="arrow")])

    for table in ("", "__labels", "__assignees"):
        by_dicts, by_arrow = table_columns(p, f"dicts{table}"), table_columns(p, f"arrow{table}")
        assert by_arrow == by_dicts
        data = [c for c in by_dicts if not c.startswith("_lb_")]
        assert len(data) > 5
        if not table:
            assert rows_of(p, "arrow", *data) == rows_of(p, "dicts", *data)
            assert count(p, "arrow") == len(issues)
        else:
            assert linked(p, f"arrow{table}", "arrow", "id", *data) == linked(p, f"dicts{table}", "dicts", "id", *data)
            assert count(p, f"arrow{table}") == sum(len(i.get(table[2:]) or []) for i in issues)


def test_every_type_and_bad_values_arrive(make_pipeline, caplog):
    p = make_pipeline()
    data = pa.table({
        "id": pa.array([1, 2, 3], pa.int32()),
        "f": [1.5, float("nan"), float("-inf")],
        "s": ["plain", "nul\x00inside", None],
        "b": pa.array([b"\x00\xff", None, b""], pa.large_binary()),
        "d": pa.array([Decimal("1.25"), Decimal("-0.50"), None], pa.decimal128(6, 2)),
        "day": pa.array([date(2024, 2, 29), None, date(1970, 1, 1)]),
        "tm": pa.array([time(13, 14, 15, 16), None, time(0, 0)], pa.time64("ns")),
        "naive": pa.array([datetime(2024, 1, 2, 3, 4, 5)] * 3, pa.timestamp("ns")),
        "cat": pa.array(["x", "y", "x"]).dictionary_encode(),
        "doc": pa.array([{"k": [1, 2]}, None, {"k": []}]),
    })
    run_ok(p, data, table_name="t", columns={"doc": {"data_type": "json"}})

    columns = table_columns(p, "t")
    assert (columns["b"], columns["d"], columns["day"], columns["tm"], columns["cat"], columns["doc"]) == \
        ("binary", "decimal", "date", "time", "text", "json")
    got = {as_int(r[0]): r[1:] for r in rows_of(p, "t", "id", "s", "b", "d", "day", "tm", "naive", "cat", "doc")}
    assert {i: (s, as_bytes(b), d if d is None else Decimal(str(d)), day and as_date(day),
                tm if tm is None else as_time(tm), as_utc(n), cat, as_json(doc))
            for i, (s, b, d, day, tm, n, cat, doc) in got.items()} == {
        1: ("plain", b"\x00\xff", Decimal("1.25"), date(2024, 2, 29), time(13, 14, 15, 16),
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "x", {"k": [1, 2]}),
        2: ("nulinside", None, Decimal("-0.50"), None, None, datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "y",
            None),
        3: (None, b"", None, date(1970, 1, 1), time(0, 0), datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "x",
            {"k": []})}
    floats = {as_int(i): f for i, f in rows_of(p, "t", "id", "f")}
    if p.capabilities.supports_nan_infinity:
        assert floats[1] == 1.5 and math.isnan(floats[2]) and floats[3] == -math.inf
    else:  # the text variant holds them, spelled as JSON writers spell them
        assert floats == {1: 1.5, 2: None, 3: None}
        assert {as_int(i): v for i, v in rows_of(p, "t", "id", "f__v_text")} == {1: None, 2: "NaN", 3: "-Infinity"}
    assert any("NUL" in r.getMessage() and "'s'" in r.getMessage() for r in caplog.records
               if r.name == "loadbay.common.storage.text_repair")


def test_decimals_list_views_and_old_nanoseconds_arrive_exactly(make_pipeline):
    """A narrow first decimal makes the destination's default decimal (a wider one later is not rounded),
    a negative scale loads as its integers, list views keep every element, and nanoseconds before 1970
    are floored to the microsecond."""
    p = make_pipeline()
    views = pa.ListViewArray.from_arrays(pa.array([2, 0, 0], pa.int32()), pa.array([2, 1, 2], pa.int32()),
                                         pa.array([1, 2, 3, 4]), mask=pa.array([False, True, False]))
    run_ok(p, pa.table({"id": [1, 2, 3], "x": pa.array([Decimal("1.5"), None, Decimal("-2.5")], pa.decimal128(2, 1)),
                        "neg": pa.array([Decimal("12300"), None, Decimal("-100")], pa.decimal128(5, -2)),
                        "at": pa.array([-1_000_000_000_000_000_001, None, 5], pa.timestamp("ns", "UTC")),
                        "l": views}), table_name="t")
    run_ok(p, pa.table({"id": [4], "x": pa.array([Decimal("2.25")], pa.decimal128(3, 2))}), table_name="t")

    assert "x__v_text" not in table_columns(p, "t")
    got = {as_int(i): (x if x is None else Decimal(str(x)), neg if neg is None else Decimal(str(neg)), at and as_utc(at))
           for i, x, neg, at in rows_of(p, "t", "id", "x", "neg", "at")}
    assert got == {1: (Decimal("1.5"), Decimal("12300"), datetime(1938, 4, 24, 22, 13, 19, 999999, tzinfo=timezone.utc)),
                   2: (None, None, None), 3: (Decimal("-2.5"), Decimal("-100"), datetime(1970, 1, 1, tzinfo=timezone.utc)),
                   4: (Decimal("2.25"), None, None)}
    assert [(i, k, as_int(v)) for i, k, v in linked(p, "t__l", "t", "id", "value")] == [(1, 0, 3), (1, 1, 4), (3, 0, 1),
                                                                                         (3, 1, 2)]


class _Extension(pa.ExtensionType):
    """Another library's extension type (as pandas' Interval is): loadbay knows only its storage."""

    def __init__(self, storage: pa.DataType, name: str) -> None:
        super().__init__(storage, name)

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> _Extension:
        return cls(storage_type, "test.extension")


def test_extension_types_of_other_libraries_load_as_their_storage(make_pipeline):
    point = pa.struct([("x", pa.int64()), ("y", pa.int64())])
    columns = {
        "pt": pa.array([{"x": 1, "y": 2}, None], point),
        "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
        "price": pa.array([Decimal("1.50"), Decimal("-2.25")], pa.decimal128(10, 2)),
    }
    table = pa.table({"id": [1, 2], **{name: pa.ExtensionArray.from_storage(_Extension(a.type, f"test.{name}"), a)
                                       for name, a in columns.items()}})
    p = make_pipeline()
    run_ok(p, table, table_name="ext")
    cols = table_columns(p, "ext")
    assert {k: cols[k] for k in ("pt__x", "pt__y", "price")} == {"pt__x": "bigint", "pt__y": "bigint", "price": "decimal"}
    rows = query(p, f"SELECT id, pt__x, pt__y, price FROM {ident(p, 'ext')} ORDER BY id")
    assert [(as_int(a), b if b is None else as_int(b), c if c is None else as_int(c), Decimal(str(d)))
            for a, b, c, d in rows] == [(1, 1, 2, Decimal("1.5")), (2, None, None, Decimal("-2.25"))]
    tags = query(p, f"SELECT value FROM {ident(p, 'ext__tags')} ORDER BY {ident(p, '_lb_list_idx')}")
    assert [r[0] for r in tags] == ["a", "b"]


def test_year_zero_text_stays_text_as_in_the_dict_path(make_pipeline):
    """Arrow parses 0000-01-01 (1 BC); Python's dates, so the dict path, do not: such text is a variant."""
    rows = [{"id": 1, "d": "2020-01-01", "t": "2020-01-01T00:00:00Z"},
            {"id": 2, "d": "0000-01-01", "t": "0000-01-01T00:00:00Z"}]
    as_dicts, as_arrow = make_pipeline("as_dicts"), make_pipeline("as_arrow")
    run_ok(as_dicts, rows, table_name="years")
    run_ok(as_arrow, pa.Table.from_pylist(rows), table_name="years")
    for p in (as_dicts, as_arrow):
        cols = table_columns(p, "years")
        assert (cols["d"], cols["d__v_text"], cols["t"], cols["t__v_text"]) == ("date", "text", "timestamp", "text")
        got = query(p, f"SELECT d__v_text, t__v_text FROM {ident(p, 'years')} WHERE id = 2")
        assert [tuple(r) for r in got] == [("0000-01-01", "0000-01-01T00:00:00Z")]
