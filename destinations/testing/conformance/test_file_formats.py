"""Every loader file format the destination supports carries every data type, NULLs and odd text exactly."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal

import pytest

from loadbay.common.exceptions import ConfigurationError
from loadbay.destinations.testing.conformance.helpers import (ALL_FORMATS, as_bool, as_bytes, as_date, as_int, as_json,
                                                      as_time, as_utc, count, ident, query, require_format, run_ok,
                                                      table_columns)

each_format = pytest.mark.parametrize("file_format", ALL_FORMATS)

TYPED_ROWS = [
    {"id": 1, "t": "text", "empty": "", "b": True, "f": 1.5, "d": Decimal("12.345"),
     "ts": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc), "dd": date(2024, 2, 29),
     "tm": time(13, 14, 15, 13000), "bin": b"\x00\x01\xff'\"\\", "js": {"a": [1, 2, {"b": None}], "s": "x'y\"z"}},
    {"id": 2, "t": None, "empty": None, "b": False, "f": -2.25, "d": Decimal("-0.001"),
     "ts": datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone.utc), "dd": date(1970, 1, 1),
     "tm": time(0, 0), "bin": b"", "js": [1, "two", 3.5]},
    {"id": 3},
]
EXPECTED_TYPES = {"id": "bigint", "t": "text", "empty": "text", "b": "bool", "f": "double", "d": "decimal",
                  "ts": "timestamp", "dd": "date", "tm": "time", "bin": "binary", "js": "json"}


@each_format
def test_all_data_types_round_trip(make_pipeline, file_format):
    p = make_pipeline()
    require_format(p, file_format)
    info = run_ok(p, TYPED_ROWS, table_name="typed", loader_file_format=file_format,
                  columns={"js": {"data_type": "json"}})
    assert {j.file_format for pkg in info.load_packages for j in pkg.jobs} == {file_format}
    cols = table_columns(p, "typed")
    assert {k: cols[k] for k in EXPECTED_TYPES} == EXPECTED_TYPES
    names = list(EXPECTED_TYPES)
    rows = query(p, f"SELECT {', '.join(ident(p, n) for n in names)} FROM typed ORDER BY id")
    assert len(rows) == len(TYPED_ROWS)
    for source, row in zip(TYPED_ROWS, rows):
        got = dict(zip(names, row))
        for name in names:
            want, value = source.get(name), got[name]
            if want is None:
                assert value is None, (source["id"], name, value)
            else:
                assert COMPARE.get(name, _same)(value) == want, (source["id"], name, value)


def _same(value):
    return value


COMPARE = {"ts": as_utc, "bin": as_bytes, "js": as_json, "d": lambda v: Decimal(str(v)), "b": as_bool,
           "dd": as_date, "tm": as_time, "f": float, "id": as_int}


@each_format
def test_null_and_empty_string_stay_distinct(make_pipeline, file_format):
    p = make_pipeline()
    require_format(p, file_format)
    run_ok(p, [{"id": 1, "s": ""}, {"id": 2, "s": None}, {"id": 3}, {"id": 4, "s": "NULL"}, {"id": 5, "s": " "}],
           table_name="t", loader_file_format=file_format)
    assert query(p, f"SELECT id, {ident(p, 's')} FROM t ORDER BY id") == [
        (1, ""), (2, None), (3, None), (4, "NULL"), (5, " ")]
    assert query(p, f"SELECT count(*) FROM t WHERE {ident(p, 's')} IS NULL") == [(2,)]


ADVERSARIAL = [
    "back\\slash \\n \\' \\\\",
    "ends with backslash \\",
    "placeholders ? %s %(name)s :name $1 {0} {}",
    "quotes ' '' \" \"\" ` `` ',' \",\"",
    "emoji 😀👍🏽 and 4-byte 𝄞",
    "csv-ish a,b\n\"c\",d\r\ne",
    "  leading and trailing spaces  ",
    "$$ dollar $tag$ quoting $$",
    "-- comment /* block */ ;",
    "é" * 3000,
]


@each_format
def test_adversarial_strings_round_trip(make_pipeline, file_format):
    p = make_pipeline()
    require_format(p, file_format)
    rows = [{"id": i, "s": s, "nested": {"s": s}, "items": [s, s]} for i, s in enumerate(ADVERSARIAL)]
    run_ok(p, rows, table_name="t", loader_file_format=file_format)
    assert query(p, f"SELECT id, {ident(p, 's')}, nested__s FROM t ORDER BY id") == [
        (i, s, s) for i, s in enumerate(ADVERSARIAL)]
    assert query(p, f"SELECT t.id, i.{ident(p, 'value')} FROM t JOIN t__items i ON i._lb_parent_id = t._lb_id "
                    "ORDER BY t.id, i._lb_list_idx") == [(i, s) for i, s in enumerate(ADVERSARIAL) for _ in (0, 1)]


@each_format
def test_many_rows_over_several_files(make_pipeline, file_format):
    p = make_pipeline(file_max_items=300)
    require_format(p, file_format)
    rows = [{"id": i, "s": f"row {i}", **({"late": i} if i >= 700 else {})} for i in range(1000)]
    info = run_ok(p, rows, table_name="t", loader_file_format=file_format)
    jobs = [j for pkg in info.load_packages for j in pkg.jobs]
    assert len(jobs) >= 4
    assert sum(j.rows for j in jobs) == len(rows)
    assert info.row_counts == {"t": len(rows)}
    assert count(p, "t") == len(rows)
    assert query(p, "SELECT count(DISTINCT id), min(id), max(id), count(late) FROM t") == [(1000, 0, 999, 300)]


@pytest.mark.parametrize("file_format", [f for f in ALL_FORMATS] + ["xml"])
def test_unsupported_format_is_refused_before_anything_is_written(make_pipeline, file_format):
    p = make_pipeline()
    if file_format in p.capabilities.supported_loader_file_formats:
        pytest.skip(f"{file_format} is supported by {p.destination.destination_type}")
    with pytest.raises(ConfigurationError) as err:
        p.run([{"id": 1}], table_name="t", loader_file_format=file_format)
    assert repr(file_format) in str(err.value)
    assert p.pending_packages() == []
    with p.sql_client() as client:
        assert client.table_columns(["t"]) == {}
