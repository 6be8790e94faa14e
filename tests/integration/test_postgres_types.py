"""Every loadbay data type through every file format PostgreSQL loads (csv, insert_values, parquet), checked
value by value and against the live column types in information_schema; odd text; the shared sample data.

Sessions start in America/New_York (a libpq ``options`` setting in the URL), so a naive timestamp that
came out anywhere but UTC would show.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg2
import pytest

import loadbay
from loadbay.destinations.testing.conformance.helpers import as_utc, count, load_sample, query, run_ok
from loadbay.destinations.testing.setups import POSTGRES_URL
from tests.integration.pg_helpers import live_columns, pg, postgres_server  # noqa: F401 - fixtures
from tests.integration.support import SYSTEM_TABLES, live_tables

FORMATS = ["jsonl", "csv", "insert_values", "parquet"]
each_format = pytest.mark.parametrize("file_format", FORMATS)


def _new_york_url() -> str:
    """POSTGRES_URL plus the libpq option ``-c TimeZone=America/New_York`` (percent-encoded for libpq and loadbay)."""
    return POSTGRES_URL + ("&" if "?" in POSTGRES_URL else "?") + "options=-c%20TimeZone%3DAmerica%2FNew_York"


NEW_YORK_URL = _new_york_url()


@pytest.fixture
def ny(pg: Callable[..., loadbay.Pipeline]) -> Callable[..., loadbay.Pipeline]:
    """The shared ``pg`` factory, its sessions starting in America/New_York."""
    return functools.partial(pg, name="pg_types", credentials=NEW_YORK_URL)


def test_sessions_really_start_outside_utc():
    """The premise of the naive-timestamp checks: without loadbay's SET TIME ZONE the session is not UTC."""
    conn = psycopg2.connect(NEW_YORK_URL)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TIME ZONE")
            assert cur.fetchone() == ("America/New_York",)
    finally:
        conn.close()


def select(p: loadbay.Pipeline, table: str, columns: list[str], order: str = "id") -> list[dict[str, Any]]:
    names = ", ".join(f'"{c}"' for c in columns)
    return [dict(zip(columns, row)) for row in query(p, f'SELECT {names} FROM "{table}" ORDER BY "{order}"')]


def failed_errors(info: loadbay.LoadInfo) -> list[str]:
    return [j.error or "" for pkg in info.load_packages for j in pkg.jobs if j.state == "failed"]


# -- every type, every format -------------------------------------------------------------------------

UTC = timezone.utc
PLUS5 = timezone(timedelta(hours=5))
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
ALL_BYTES = bytes(range(256))

TYPED_ROWS: list[dict[str, Any]] = [
    {"id": 1, "big": INT64_MIN, "dbl": 1.5, "flag": True, "txt": "plain",
     "ts": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=PLUS5), "ts_naive": datetime(2024, 7, 1, 12, 0, 0, 1),
     "ts_text": "2024-07-01T12:00:00.5", "ts_z": "2024-07-01T12:00:00.000001Z",
     "local": datetime(2024, 7, 1, 12, 30, 0, 999999), "day": date(2024, 2, 29), "tm": time(13, 14, 15, 123456),
     "amount": Decimal("123456.1234"), "wide": 2**255, "js": {"a": [1, {"b": None}], "big": 2**70, "u": "日本"},
     "bin": b"\x00\xff", "small": 32767, "mid": 2**31 - 1, "code": "abcde",
     "ts_ms": datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)},
    {"id": 2, "big": INT64_MAX, "dbl": -2.25, "flag": False, "txt": "", "ts": datetime(1, 1, 1, tzinfo=UTC),
     "ts_naive": datetime(1999, 12, 31, 23, 59, 59, 999999), "day": date(1, 1, 1), "tm": time(0, 0),
     "amount": Decimal("-0.0001"), "wide": 2**256 - 1, "js": [1, "two", 3.5, None, True],
     "bin": b"", "small": -32768, "mid": -(2**31), "code": "",
     "ts_ms": datetime(2024, 1, 1, 0, 0, 0, 999600, tzinfo=UTC)},
    {"id": 3, "big": 0, "dbl": 5e-324, "txt": None, "ts": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
     "day": date(9999, 12, 31), "tm": time(23, 59, 59, 999999), "amount": Decimal("999999.9999"),
     "wide": -(2**255), "js": {"s": "x'y\"z\\ \n", "nested": {"deep": [[[]]]}}, "bin": ALL_BYTES},
    {"id": 4, "dbl": 1.7976931348623157e308, "wide": 10**77, "js": "just a string", "amount": Decimal("0")},
    {"id": 5},
]
HINTS = {
    "js": {"data_type": "json"},
    "amount": {"data_type": "decimal", "precision": 10, "scale": 4},
    "small": {"data_type": "bigint", "precision": 16},
    "mid": {"data_type": "bigint", "precision": 32},
    "code": {"data_type": "text", "precision": 5},
    "ts_ms": {"data_type": "timestamp", "precision": 3},
    "local": {"data_type": "timestamp", "timezone": False},
}
# column → (data_type, character_maximum_length, numeric_precision, numeric_scale, datetime_precision)
LIVE_TYPES = {
    "id": ("bigint", None, 64, 0, None),
    "big": ("bigint", None, 64, 0, None),
    "dbl": ("double precision", None, 53, None, None),
    "flag": ("boolean", None, None, None, None),
    "txt": ("text", None, None, None, None),
    "ts": ("timestamp with time zone", None, None, None, 6),
    "ts_naive": ("timestamp with time zone", None, None, None, 6),
    "ts_text": ("timestamp with time zone", None, None, None, 6),
    "ts_z": ("timestamp with time zone", None, None, None, 6),
    "local": ("timestamp without time zone", None, None, None, 6),
    "day": ("date", None, None, None, 0),
    "tm": ("time without time zone", None, None, None, 6),
    "amount": ("numeric", None, 10, 4, None),
    "wide": ("numeric", None, 78, 0, None),
    "js": ("jsonb", None, None, None, None),
    "bin": ("bytea", None, None, None, None),
    "small": ("smallint", None, 16, 0, None),
    "mid": ("integer", None, 32, 0, None),
    "code": ("character varying", 5, None, None, None),
    "ts_ms": ("timestamp with time zone", None, None, None, 3),
}


def _expected(name: str, value: Any) -> Any:
    """What PostgreSQL gives back for a source value of column ``name``."""
    if value is None:
        return None
    if name in ("ts_naive",):
        return value.replace(tzinfo=UTC)  # naive means UTC, whatever the session's time zone was
    if name in ("ts_text", "ts_z"):
        return as_utc(value)
    if name == "ts_ms":  # timestamp(3): rounded to milliseconds
        micro = round(value.microsecond, -3)
        return value.replace(microsecond=0) + timedelta(microseconds=micro)
    if name == "ts":
        return value.astimezone(UTC)
    if name == "wide":
        return Decimal(value)
    return value


def _normalize(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "bin":
        return bytes(value)
    return value


@each_format
def test_every_type_round_trips(ny, file_format):
    p = ny()
    info = run_ok(p, TYPED_ROWS, table_name="typed", loader_file_format=file_format, columns=HINTS)
    assert {j.file_format for pkg in info.load_packages for j in pkg.jobs} == {file_format}
    live = live_columns(p, "typed")
    assert {c: live.get(c) for c in LIVE_TYPES} == LIVE_TYPES
    assert not [c for c in live if "__v_" in c], "no value should have needed a variant column"
    names = list(LIVE_TYPES)
    loaded = select(p, "typed", names)
    assert len(loaded) == len(TYPED_ROWS)
    for source, row in zip(TYPED_ROWS, loaded):
        for name in names:
            want = _expected(name, source.get(name))
            got = _normalize(name, row[name])
            assert got == want and type(got) is type(want), (file_format, source["id"], name, got, want)
    # aware values come back in UTC: the session is UTC even though it started in New York
    assert loaded[0]["ts"].utcoffset() == timedelta(0)
    assert loaded[0]["ts"] == datetime(2024, 1, 1, 22, 4, 5, 123456, tzinfo=UTC)
    # integers beyond 64 bits: exactly, never through a float
    assert query(p, "SELECT wide::text FROM typed WHERE id = 2") == [(str(2**256 - 1),)]
    assert query(p, "SELECT (js->>'big')::numeric::text, js->>'u' FROM typed WHERE id = 1") == [(str(2**70), "日本")]
    assert query(p, "SELECT jsonb_typeof(js) FROM typed ORDER BY id") == [
        ("object",), ("array",), ("object",), ("string",), (None,)]
    assert query(p, "SELECT octet_length(bin), encode(bin, 'hex') FROM typed WHERE id = 1") == [(2, "00ff")]


def test_live_columns_from_pg_catalog_read_as_information_schema_does(ny):
    """loadbay reads live columns from pg_catalog (``statements.LIVE_COLUMNS``, several times cheaper);
    what it reads must be what INFORMATION_SCHEMA says, type names and numeric precision included."""
    p = ny()
    run_ok(p, TYPED_ROWS, table_name="typed", columns=HINTS)
    run_ok(p, [{"id": 1, "n": Decimal("1.5")}], table_name="plain")
    with p.sql_client() as client:
        client.execute_sql('CREATE TABLE "by_hand" (a numeric, b integer[], c varchar, d real NOT NULL)')
        client.execute_sql('ALTER TABLE "typed" DROP COLUMN "dbl"')
        tables = ["typed", "plain", "by_hand", "_lb_loads", "no_such_table"]
        read = client.table_columns(tables)
        info = {}
        for table, *rest in query(p, "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, "
                                     "is_nullable FROM information_schema.columns WHERE table_schema = %s AND "
                                     "table_name = ANY(%s) ORDER BY table_name, ordinal_position",
                                  p.dataset_name, tables):
            info.setdefault(table, []).append(tuple(rest))
    assert set(read) == {"typed", "plain", "by_hand", "_lb_loads"}
    assert "dbl" not in [c[0] for c in read["typed"]]
    for table, columns in info.items():
        got = [(name, db_type, precision, scale, nullable) for name, db_type, precision, scale, nullable in read[table]]
        # information_schema gives every integer type's bits as its precision, pg_catalog only numerics':
        # loadbay reads precision for decimals only (TypeMapper.from_db_type)
        want = [(name, "ARRAY" if db_type == "ARRAY" else db_type, precision if db_type == "numeric" else None,
                 scale if db_type == "numeric" else None, nullable) for name, db_type, precision, scale, nullable in columns]
        got = [(name, "ARRAY" if db_type.endswith("[]") else db_type, precision, scale, nullable)
               for name, db_type, precision, scale, nullable in got]
        assert got == want, table


@each_format
def test_double_special_values(ny, file_format):
    values = [float("inf"), float("-inf"), float("nan"), 0.0, 5e-324, -1.7976931348623157e308, 0.1 + 0.2]
    p = ny()
    run_ok(p, [{"id": i, "x": v} for i, v in enumerate(values)], table_name="dbl", loader_file_format=file_format)
    assert live_columns(p, "dbl")["x"][0] == "double precision"
    got = [r[0] for r in query(p, "SELECT x FROM dbl ORDER BY id")]
    assert len(got) == len(values)
    for want, value in zip(values, got):
        if math.isnan(want):
            assert math.isnan(value)
        else:
            assert value == want and math.copysign(1.0, value) == math.copysign(1.0, want), (value, want)
    assert query(p, "SELECT count(*) FROM dbl WHERE x = 'NaN'::float8") == [(1,)]
    assert query(p, "SELECT count(*) FROM dbl WHERE x = 'Infinity'::float8 OR x = '-Infinity'::float8") == [(2,)]


@pytest.mark.parametrize("file_format", [
    "csv", "parquet",
    "insert_values",
])
def test_negative_zero_keeps_its_sign(ny, file_format):
    p = ny()
    run_ok(p, [{"id": 1, "x": -0.0}, {"id": 2, "x": 0.0}, {"id": 3, "x": 1.5}], table_name="zero",
           loader_file_format=file_format)
    got = [r[0] for r in query(p, "SELECT x FROM zero ORDER BY id")]
    assert [math.copysign(1.0, v) for v in got] == [-1.0, 1.0, 1.0]


ODD_TEXT = [
    "",
    " ",
    "NULL",
    "null",
    "\\N",
    "\\.",
    "a\n\\.\nb",
    "\\.\n",
    "quotes ' '' \" \"\" ` ,',\",\"",
    "back\\slash \\n \\t \\\\ ends with \\",
    "line\nbreaks\r\nand\rcarriage returns",
    "tab\tvertical\x0bformfeed\x0cbell\x07backspace\x08escape\x1bdel\x7f",
    "".join(chr(c) for c in range(1, 32)),
    "unicode: 日本語 ऄअआ עברית العربية e\u0301 \u200b\u2028\u2029\ufeff",
    "emoji 😀👍🏽🏳️‍🌈 and 4-byte 𝄞",
    "$$ dollar $tag$ quoting $$ %s %(x)s ? :1 $1",
    "-- comment /* block */ ; DROP TABLE odd; --",
    "x" * 20000,
]


@each_format
def test_text_null_empty_and_odd_characters(ny, file_format):
    rows = [{"id": i, "s": s, "nested": {"s": s}, "items": [s]} for i, s in enumerate(ODD_TEXT)]
    rows.append({"id": len(ODD_TEXT), "s": None, "nested": {"s": None}, "items": [None, ""]})
    rows.append({"id": len(ODD_TEXT) + 1})
    p = ny()
    run_ok(p, rows, table_name="odd", loader_file_format=file_format)
    got = query(p, "SELECT id, s, nested__s FROM odd ORDER BY id")
    assert got == [(i, s, s) for i, s in enumerate(ODD_TEXT)] + [(len(ODD_TEXT), None, None),
                                                                  (len(ODD_TEXT) + 1, None, None)]
    assert query(p, "SELECT count(*) FROM odd WHERE s IS NULL") == [(2,)]
    assert query(p, "SELECT count(*) FROM odd WHERE s = ''") == [(1,)]
    items = query(p, 'SELECT o.id, i."value" FROM odd o JOIN odd__items i ON i._lb_parent_id = o._lb_id '
                     "ORDER BY o.id, i._lb_list_idx")
    assert items == [(i, s) for i, s in enumerate(ODD_TEXT)] + [(len(ODD_TEXT), None), (len(ODD_TEXT), "")]
    assert count(p, "_lb_loads") == 1


@each_format
def test_nul_characters_are_removed_not_failing_the_file(ny, file_format):
    """PostgreSQL text cannot hold U+0000: loadbay removes it (on every destination, with a warning;
    tests/integration/test_bad_values.py), so the other rows of the file load."""
    p = ny()
    run_ok(p, [{"id": 1, "s": "before\x00after"}, {"id": 2, "s": "fine"}], table_name="nul",
           loader_file_format=file_format)
    assert query(p, "SELECT id, s FROM nul ORDER BY id") == [(1, "beforeafter"), (2, "fine")]
    assert p.pending_packages() == []


@each_format
def test_integers_beyond_64_bits_are_exact(ny, file_format):
    p = ny()
    uint256_max = 2**256 - 1
    rows = [{"id": 1, "u": uint256_max, "mixed": 1, "neg": -(2**255), "edge": 2**63},
            {"id": 2, "u": 0, "mixed": uint256_max, "neg": -1, "edge": INT64_MAX},
            {"id": 3, "u": 10**77 + 1, "mixed": INT64_MIN, "too_wide": 10**78}]
    run_ok(p, rows, table_name="ints", loader_file_format=file_format)
    live = live_columns(p, "ints")
    assert live["u"][:4] == ("numeric", None, 78, 0)
    assert live["neg"][:4] == ("numeric", None, 78, 0)
    assert live["edge"][:4] == ("numeric", None, 78, 0)  # 2**63 did not fit a bigint
    assert live["mixed"][0] == "bigint"
    assert live["mixed__v_decimal"][:4] == ("numeric", None, 78, 0)
    assert live["too_wide"][0] == "text"  # 79 digits: wider than numeric(78, 0), kept as exact text
    got = query(p, "SELECT id, u::text, mixed, mixed__v_decimal::text, neg::text, edge::text, too_wide "
                   "FROM ints ORDER BY id")
    assert got == [
        (1, str(uint256_max), 1, None, str(-(2**255)), str(2**63), None),
        (2, "0", None, str(uint256_max), "-1", str(INT64_MAX), None),
        (3, str(10**77 + 1), INT64_MIN, None, None, None, str(10**78)),
    ]


@each_format
def test_binary_and_json_values(ny, file_format):
    blobs = [ALL_BYTES, b"\x00", b"\xff" * 1000, b"", b"\\x00", b"'\"\\,\n"]
    docs = [{"k": [1, 2, {"x": None}], "big": -(2**80)}, [], {}, {"quote": "'\"\\", "nl": "a\nb"},
            {"unicode": "😀 日本", "float": 1.25, "bool": False}, [[1, [2, [3]]]]]
    p = ny()
    run_ok(p, [{"id": i, "b": b, "j": d} for i, (b, d) in enumerate(zip(blobs, docs))], table_name="bj",
           loader_file_format=file_format, columns={"j": {"data_type": "json"}})
    live = live_columns(p, "bj")
    assert live["b"][0] == "bytea" and live["j"][0] == "jsonb"
    got = query(p, "SELECT b, j FROM bj ORDER BY id")
    assert [bytes(b) for b, _ in got] == blobs
    assert [j for _, j in got] == docs
    assert query(p, "SELECT octet_length(b) FROM bj ORDER BY id") == [(len(b),) for b in blobs]


@each_format
def test_naive_timestamps_are_utc_whatever_the_session_zone(ny, file_format):
    p = ny()
    naive = datetime(2024, 3, 10, 6, 30, 0, 250000)  # a DST switch day in New York
    run_ok(p, [{"id": 1, "ts": naive, "ts_text": "2024-03-10T06:30:00.25", "day": "2024-03-10"}],
           table_name="naive", loader_file_format=file_format)
    expected = naive.replace(tzinfo=UTC)
    assert query(p, "SELECT ts, ts_text, day FROM naive") == [(expected, expected, date(2024, 3, 10))]
    assert query(p, "SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM naive") == [
        ("2024-03-10 06:30:00.250000",)]


@pytest.mark.parametrize("file_format", [
    "csv",
    "insert_values",
    "parquet",
])
def test_aware_timestamp_into_a_column_without_time_zone_is_stored_as_utc(ny, file_format):
    p = ny()
    aware = datetime(2024, 1, 2, 3, 4, 5, tzinfo=PLUS5)
    run_ok(p, [{"id": 1, "ts": aware, "ts_text": "2024-01-02T03:04:05+05:00"}], table_name="local",
           loader_file_format=file_format,
           columns={"ts": {"data_type": "timestamp", "timezone": False},
                    "ts_text": {"data_type": "timestamp", "timezone": False}})
    utc_wall = datetime(2024, 1, 1, 22, 4, 5)
    assert query(p, "SELECT ts, ts_text FROM local") == [(utc_wall, utc_wall)]


# -- values outside a hinted type --------------------------------------------------------------------

@each_format
def test_value_outside_a_narrow_integer_hint_is_kept(ny, file_format):
    p = ny()
    info = p.run([{"id": 1, "n": 1}, {"id": 2, "n": 40000}], table_name="narrow", loader_file_format=file_format,
                 columns={"n": {"data_type": "bigint", "precision": 16}})
    assert failed_errors(info) == []
    variants = [c for c in live_columns(p, "narrow") if c.startswith("n__v_")]
    cols = ", ".join(["n"] + variants)
    rows = query(p, f"SELECT id, {cols} FROM narrow ORDER BY id")
    assert [(r[0], [int(v) for v in r[1:] if v is not None]) for r in rows] == [(1, [1]), (2, [40000])]


@each_format
def test_string_longer_than_a_varchar_hint_is_kept(ny, file_format):
    p = ny()
    info = p.run([{"id": 1, "code": "abc"}, {"id": 2, "code": "abcdefgh"}], table_name="codes",
                 loader_file_format=file_format, columns={"code": {"data_type": "text", "precision": 5}})
    assert failed_errors(info) == []
    variants = [c for c in live_columns(p, "codes") if c.startswith("code__v_")]
    cols = ", ".join(["code"] + variants)
    rows = query(p, f"SELECT id, {cols} FROM codes ORDER BY id")
    assert [(r[0], [v for v in r[1:] if v is not None]) for r in rows] == [(1, ["abc"]), (2, ["abcdefgh"])]


@each_format
def test_decimal_hint_overflow_is_the_same_in_every_format(ny, file_format):
    p = ny()
    rows = [{"id": 1, "amount": Decimal("1.5")}, {"id": 2, "amount": Decimal("1234567.1")},
            {"id": 3, "amount": Decimal("1.123456")}]
    run_ok(p, rows, table_name="money", loader_file_format=file_format,
           columns={"amount": {"data_type": "decimal", "precision": 10, "scale": 4}})
    # too many integer digits: the exact value goes to a variant column; too many fraction digits: rounded
    assert query(p, "SELECT id, amount, amount__v_text FROM money ORDER BY id") == [
        (1, Decimal("1.5000"), None), (2, None, "1234567.1"), (3, Decimal("1.1235"), None)]


# -- shared sample data ---------------------------------------------------------------------------------

@each_format
def test_weird_rows_round_trip_exactly(ny, file_format):
    weird = load_sample("weird_rows.json")
    p = ny()
    run_ok(p, weird, table_name="weird", loader_file_format=file_format)
    assert query(p, 'SELECT idx, "str" FROM weird ORDER BY idx') == [(r["idx"], r["str"]) for r in weird]
    assert query(p, 'SELECT sum(octet_length("str")) FROM weird') == [
        (sum(len(r["str"].encode()) for r in weird),)]
    # the injection attempt touched nothing: the public schema and every system table are still there
    assert query(p, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'public'") == [(1,)]
    assert live_tables(p) == SYSTEM_TABLES | {"weird"}
    assert count(p, "_lb_loads") == 1


@each_format
def test_github_events(ny, file_format):
    events = load_sample("github_events.json")
    p = ny()
    info = run_ok(p, events, table_name="events", loader_file_format=file_format)
    n_commits = sum(len(e["payload"].get("commits", [])) for e in events)
    assert n_commits > 0
    assert count(p, "events") == len(events)
    assert count(p, "events__payload__commits") == n_commits
    assert info.row_counts["events"] == len(events)
    live = live_columns(p, "events")
    assert live["created_at"][0] == "timestamp with time zone"
    assert live["public"][0] == "boolean"
    assert live["actor__id"][0] == "bigint"
    for name in live:
        assert len(name.encode()) <= 63
    loaded = dict(query(p, "SELECT id, created_at FROM events"))
    assert loaded == {e["id"]: as_utc(e["created_at"]) for e in events}
    assert query(p, "SELECT count(*) FROM events__payload__commits c WHERE NOT EXISTS "
                    "(SELECT 1 FROM events e WHERE e._lb_id = c._lb_root_id)") == [(0,)]


@each_format
def test_github_issues(ny, file_format):
    issues = load_sample("github_issues.json")
    p = ny()
    run_ok(p, issues, table_name="issues", loader_file_format=file_format)
    assert count(p, "issues") == len(issues)
    assert count(p, "issues__labels") == sum(len(i["labels"]) for i in issues)
    assert dict(query(p, "SELECT number, body FROM issues")) == {i["number"]: i["body"] for i in issues}
    assert dict(query(p, "SELECT number, title FROM issues")) == {i["number"]: i["title"] for i in issues}
    assert dict(query(p, "SELECT number, reactions__total_count FROM issues")) == {
        i["number"]: i["reactions"]["total_count"] for i in issues}


@each_format
def test_ethereum_blocks(ny, file_format):
    blocks = load_sample("ethereum_blocks.json")
    p = ny()
    run_ok(p, blocks, table_name="blocks", loader_file_format=file_format)
    txs = [t for b in blocks for t in b["transactions"]]
    assert count(p, "blocks") == len(blocks)
    assert count(p, "blocks__transactions") == len(txs)
    access = sum(len(t.get("accessList") or []) for t in txs)
    assert access > 0
    assert count(p, "blocks__transactions__access_list") == access
    logs = sum(len(t.get("logs") or []) for t in txs)
    if logs:
        assert count(p, "blocks__transactions__logs") == logs

    assert live_columns(p, "blocks")["total_difficulty"][:4] == ("numeric", None, 78, 0)
    assert dict(query(p, "SELECT number, total_difficulty::text FROM blocks")) == {
        b["number"]: str(b["totalDifficulty"]) for b in blocks}

    tx_cols = live_columns(p, "blocks__transactions")
    value_cols = ["value"] + sorted(c for c in tx_cols if c.startswith("value__v_"))
    assert any(t["value"] > INT64_MAX for t in txs) and len(value_cols) > 1
    for c in value_cols[1:]:
        assert tx_cols[c][:4] == ("numeric", None, 78, 0), (c, tx_cols[c])
    text_values = ", ".join(f'"{c}"::text' for c in value_cols)
    loaded = {r[0]: r[1:] for r in query(p, f'SELECT "hash", {text_values} FROM blocks__transactions')}
    assert len(loaded) == len(txs)
    for t in txs:
        present = [v for v in loaded[t["hash"]] if v is not None]
        assert present == [str(t["value"])], (t["hash"], loaded[t["hash"]])
    total = " + ".join(f'coalesce(sum("{c}"), 0)' for c in value_cols)
    assert query(p, f"SELECT ({total})::text FROM blocks__transactions") == [(str(sum(t["value"] for t in txs)),)]
