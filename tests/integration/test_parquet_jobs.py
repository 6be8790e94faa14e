"""Parquet load files on every built-in destination (DuckDB ``read_parquet``, PostgreSQL COPY of Arrow's
csv, SQLAlchemy ``executemany`` of Arrow columns): every data type arrives exactly as the same rows do
through jsonl, NULL stays apart from '', odd text and wide decimals keep every character and digit,
100k rows load whole, and a bad file fails naming its file and table with none of its rows left behind.

Files are made by the pipeline (``loader_file_format="parquet"``); the failing ones are then edited on
disk with pyarrow (``normalize_only`` and a rewrite) before the load, like a damaged or hand-made file.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import loadbay
from loadbay.common.storage.package import JobFile
from loadbay.destinations.testing.conformance.helpers import (as_bool, as_bytes, as_date, as_int, as_json, as_time,
                                                              as_utc, count, ident, load_sample, normalize_only, query,
                                                              require_format, run_ok, select, table_columns,
                                                              wide_int_type)

PLUS2 = timezone(timedelta(hours=2))
ODD_TEXT = ["", " ", "NULL", "\\N", "\\.", "a\n\\.\nb", 'quotes \' " "" ,', "back\\slash \\n ends \\",
            "line\nbreak\r\nand\rreturn", "tab\tbell\x07esc\x1b", "😀 𝄞 日本語 e\u0301 \u2028", "é" * 2000]
TYPED = [
    {"id": 1, "t": "text", "empty": "", "n": -(2**63), "f": 1.5, "b": True,
     "ts": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc), "ts_local": datetime(2024, 1, 2, 3, 4, 5, 6),
     "dd": date(2024, 2, 29), "tm": time(13, 14, 15, 1), "d": Decimal("12.345"),
     "js": {"a": [1, 2.5, {"b": None}], "q": "x'y\"z\\", "u": "日本 😀", "t": True},
     "bin": bytes(range(256))},
    {"id": 2, "t": None, "empty": None, "n": 2**63 - 1, "f": -0.0, "b": False,
     "ts": datetime(1999, 12, 31, 23, 59, 59, tzinfo=PLUS2), "ts_local": datetime(1970, 1, 1),
     "dd": date(1970, 1, 1), "tm": time(0, 0), "d": Decimal("-0.001"), "js": [1, "two", [], {}], "bin": b""},
    {"id": 3, "n": 0, "f": 0.1, "b": None, "ts": datetime(2024, 3, 10, 6, 30, tzinfo=timezone.utc),
     "tm": time(23, 59, 59, 999999), "d": Decimal("0"), "js": {"just": "text"}, "bin": b"\x00'\"\\,\n"},
    {"id": 4, "f": 2.2250738585072014e-308, "d": Decimal("99999.999999"), "js": 0},
    {"id": 5, "f": 1.7976931348623157e308},
    {"id": 6},
]
HINTS = {"js": {"data_type": "json"}, "ts_local": {"data_type": "timestamp", "timezone": False},
         "d": {"data_type": "decimal", "precision": 15, "scale": 6}}
COMPARE = {"n": as_int, "id": as_int, "f": float, "b": as_bool, "ts": as_utc, "ts_local": as_utc, "dd": as_date,
           "tm": as_time, "d": lambda v: Decimal(str(v)), "js": as_json, "bin": as_bytes}
NAMES = ["id", "t", "empty", "n", "f", "b", "ts", "ts_local", "dd", "tm", "d", "js", "bin"]


def expected(value: Any, name: str) -> Any:
    """What a source value reads back as, after the helpers' driver-neutral normalization."""
    if name in ("ts", "ts_local"):
        return as_utc(value)
    return value


def formats_of(info: loadbay.LoadInfo) -> set[str]:
    return {j.file_format for pkg in info.load_packages for j in pkg.jobs}


def only_job_file(package: Any) -> JobFile:
    [job] = package.jobs("new_jobs")
    assert job.file_format == "parquet"
    return job


def rewrite(job: JobFile, change: Any, row_group_size: int = 1000) -> None:
    """Rewrite a parquet load file with ``change(table) -> table``, in several row groups."""
    pq.write_table(change(pq.read_table(job.path)), job.path, row_group_size=row_group_size)


def set_column(table: pa.Table, name: str, values: list[Any], arrow_type: Any = None) -> pa.Table:
    idx = table.schema.get_field_index(name)
    return table.set_column(idx, name, pa.array(values, arrow_type or table.schema.field(name).type))


# -- every type, exactly as jsonl loads it -------------------------------------------------------------------

def test_every_type_arrives_as_through_jsonl(make_pipeline):
    p = make_pipeline()
    require_format(p, "jsonl")  # the comparison needs both formats (Spark loads parquet only)
    jsonl = run_ok(p, TYPED, table_name="via_jsonl", loader_file_format="jsonl", columns=HINTS)
    parquet = run_ok(p, TYPED, table_name="via_parquet", loader_file_format="parquet", columns=HINTS)
    assert formats_of(jsonl) == {"jsonl"} and formats_of(parquet) == {"parquet"}
    assert table_columns(p, "via_parquet") == table_columns(p, "via_jsonl")

    got = select(p, "via_parquet", *NAMES, order_by=["id"])
    # what the driver returns is the same object for object (json compared parsed: DuckDB re-spells
    # the JSON text it reads from jsonl)
    same = [tuple(as_json(v) if n == "js" else v for n, v in zip(NAMES, row)) for row in got]
    assert same == [tuple(as_json(v) if n == "js" else v for n, v in zip(NAMES, row))
                    for row in select(p, "via_jsonl", *NAMES, order_by=["id"])]
    # and it is what was sent
    for source, row in zip(TYPED, got):
        for name, value in zip(NAMES, row):
            want = source.get(name)
            if want is None:
                assert value is None, (source["id"], name, value)
            else:
                assert COMPARE.get(name, lambda v: v)(value) == expected(want, name), (source["id"], name, value)
    f = NAMES.index("f")  # negative zero keeps its sign where jsonl keeps it (DuckDB, PostgreSQL)
    from_jsonl = select(p, "via_jsonl", *NAMES, order_by=["id"])
    assert math.copysign(1.0, got[1][f]) == math.copysign(1.0, from_jsonl[1][f])


def test_null_empty_and_odd_text_in_text_json_binary_and_child_tables(make_pipeline):
    p = make_pipeline()
    weird = load_sample("weird_rows.json")
    texts = [r["str"] for r in weird] + ODD_TEXT
    rows = [{"id": i, "s": s, "js": {"s": s, "l": [s]}, "bin": s.encode(), "items": [s, None, ""]}
            for i, s in enumerate(texts)]
    rows.append({"id": len(texts), "s": None, "js": None, "bin": None, "items": []})
    run_ok(p, rows, table_name="odd", loader_file_format="parquet", columns={"js": {"data_type": "json"}})

    got = select(p, "odd", "id", "s", "js", "bin", order_by=["id"])
    assert [(as_int(i), s, as_json(j), as_bytes(b)) for i, s, j, b in got] == [
        (r["id"], r["s"], r["js"], r["bin"]) for r in rows]
    assert query(p, f"SELECT count(*) FROM odd WHERE {ident(p, 's')} IS NULL") == [(1,)]
    assert query(p, f"SELECT count(*) FROM odd WHERE length({ident(p, 's')}) = 0") == [(1,)]  # MariaDB: ' ' = ''
    items = query(p, f"SELECT o.id, i.{ident(p, 'value')} FROM odd o JOIN odd__items i ON i._lb_parent_id = o._lb_id "
                     "ORDER BY o.id, i._lb_list_idx")
    assert [(as_int(i), v) for i, v in items] == [(i, v) for i, s in enumerate(texts) for v in (s, None, "")]


def test_nan_and_infinity_stay_in_the_double_column_or_go_to_the_text_variant(make_pipeline):
    p = make_pipeline()
    rows = [{"id": 1, "x": math.nan}, {"id": 2, "x": math.inf}, {"id": 3, "x": -math.inf}, {"id": 4, "x": 2.5}]
    run_ok(p, rows, table_name="f", loader_file_format="parquet")
    if p.capabilities.supports_nan_infinity:
        got = [r[0] for r in select(p, "f", "x", order_by=["id"])]
        assert math.isnan(got[0]) and got[1:] == [math.inf, -math.inf, 2.5]
    else:
        assert select(p, "f", "x", "x__v_text", order_by=["id"]) == [
            (None, "NaN"), (None, "Infinity"), (None, "-Infinity"), (2.5, None)]


@pytest.mark.parametrize("width", ["widest", "decimal256"])
def test_wide_decimals_keep_every_digit(make_pipeline, width):
    """The destination's widest decimal (PostgreSQL's 78 digits are text in parquet, wider than Arrow's 76)
    and one of 50 digits (Arrow's decimal256, where the destination has it)."""
    p = make_pipeline()
    digits = p.capabilities.max_decimal_precision if width == "widest" else min(50, p.capabilities.max_decimal_precision)
    scale = digits // 3
    widest = "9" * (digits - scale) + "." + "1" * scale  # Decimal's arithmetic would round it to 28 digits
    huge = 10 ** max(digits, 19) + 7  # past the widest decimal and 64 bits: an integer kept as exact text
    rows = [{"id": 1, "d": Decimal(widest), "big": huge}, {"id": 2, "d": Decimal("-" + widest), "big": -huge},
            {"id": 3, "d": Decimal(0)}]
    package = normalize_only(p, rows, "wide", loader_file_format="parquet",
                             columns={"d": {"data_type": "decimal", "precision": digits, "scale": scale}})
    arrow_d = pq.read_schema(only_job_file(package).path).field("d").type
    assert arrow_d == (pa.string() if digits > 76 else pa.decimal256(digits, scale) if digits > 38
                       else pa.decimal128(digits, scale))
    run_ok(p)
    assert table_columns(p, "wide")["big"] == wide_int_type(p, huge)
    got = select(p, "wide", "d", "big", order_by=["id"])
    if p.capabilities.max_decimal_precision > 15:  # SQLite keeps decimals as floating point
        assert [str(Decimal(str(d))) for d, _ in got] == [widest, "-" + widest, str(Decimal(0).quantize(
            Decimal(1).scaleb(-scale)))]
    assert [None if b is None else int(Decimal(str(b))) for _, b in got] == [huge, -huge, None]


# -- many rows -------------------------------------------------------------------------------------------------

def test_100k_rows_load_whole(make_pipeline):
    p = make_pipeline()
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    n = 100_000
    rows = ({"id": i, "s": None if i % 7 == 0 else ("" if i % 7 == 1 else f"row {i}, \"q\"\n"), "x": i / 4,
             "ts": start + timedelta(microseconds=i * 1001), "ok": i % 3 == 0} for i in range(n))
    info = run_ok(p, rows, table_name="many", loader_file_format="parquet")
    assert formats_of(info) == {"parquet"} and info.row_counts == {"many": n}
    s = ident(p, "s")
    [(total, ids, nulls, empties, length, xs, oks)] = query(
        p, f"SELECT count(*), sum(id), sum(CASE WHEN {s} IS NULL THEN 1 ELSE 0 END), "
           f"sum(CASE WHEN {s} = '' THEN 1 ELSE 0 END), sum(length({s})), sum(x), "
           f"sum(CASE WHEN {ident(p, 'ok')} THEN 1 ELSE 0 END) FROM many")
    assert (as_int(total), as_int(ids), as_int(nulls), as_int(empties)) == (n, n * (n - 1) // 2, 14286, 14286)
    assert as_int(length) == sum(len(f"row {i}, \"q\"\n") for i in range(n) if i % 7 > 1)
    assert float(xs) == sum(i / 4 for i in range(n)) and as_int(oks) == 33334
    [(first, last)] = query(p, f"SELECT min({ident(p, 'ts')}), max({ident(p, 'ts')}) FROM many")
    assert (as_utc(first), as_utc(last)) == (start, start + timedelta(microseconds=(n - 1) * 1001))


def test_file_columns_in_another_order_or_missing_load_by_name(make_pipeline):
    """The Arrow normalizer may write a file's columns in its own order, and leave out all-NULL ones."""
    p = make_pipeline()
    rows = [{"id": i, "a": f"a{i}", "b": i * 10, "c": None if i else "only in row 0"} for i in range(5)]
    package = normalize_only(p, rows, "t", loader_file_format="parquet")
    job = only_job_file(package)
    rewrite(job, lambda t: t.select(list(reversed([n for n in t.column_names if n != "c"]))))
    run_ok(p)
    assert [(as_int(i), a, as_int(b), c) for i, a, b, c in select(p, "t", "id", "a", "b", "c")] == [
        (i, f"a{i}", i * 10, None) for i in range(5)]


# -- bad files --------------------------------------------------------------------------------------------------

def failed_error(info: loadbay.LoadInfo) -> str:
    [pkg] = info.load_packages
    [failed] = pkg.failed_jobs
    assert failed.file_format == "parquet"
    return str(failed.error)


def load_bad_file(p: loadbay.Pipeline, change: Any, columns: dict[str, Any] | None = None, n: int = 12_000,
                  ) -> tuple[JobFile, loadbay.LoadInfo]:
    """A file of ``n`` good rows (in row groups of 1000, so a row-at-a-time loader would have sent
    most of them before the bad one) damaged near its end by ``change``, then loaded."""
    rows = [{"id": i, "s": f"row {i}", "x": i / 2, "js": {"i": i}} for i in range(n)]
    hints = {"js": {"data_type": "json"}, **(columns or {})}
    package = normalize_only(p, rows, "t", loader_file_format="parquet", columns=hints)
    job = only_job_file(package)
    rewrite(job, change)
    info = p.run()
    assert info.has_failed_jobs
    return job, info


def assert_nothing_loaded(p: loadbay.Pipeline, job: JobFile, error: str) -> None:
    assert job.path.name in error and "table 't'" in error, error
    with p.sql_client() as client:
        live = client.table_columns(["t"])
    assert not live or count(p, "t") == 0
    assert count(p, "_lb_loads") == 0


def test_a_null_in_a_not_null_column_fails_the_file_and_leaves_none_of_its_rows(make_pipeline):
    p = make_pipeline()
    last = 11_500

    def null_near_the_end(t: pa.Table) -> pa.Table:
        values = t.column("s").to_pylist()
        values[last] = None
        return set_column(t, "s", values)

    job, info = load_bad_file(p, null_near_the_end, {"s": {"data_type": "text", "nullable": False}})
    assert_nothing_loaded(p, job, failed_error(info))


def test_a_value_of_the_wrong_type_fails_the_file_and_leaves_none_of_its_rows(make_pipeline):
    p = make_pipeline()

    def text_in_a_bigint_column(t: pa.Table) -> pa.Table:
        values = [str(v) for v in t.column("id").to_pylist()]
        values[11_000] = "not a number"
        return set_column(t, "id", values, pa.string())

    job, info = load_bad_file(p, text_in_a_bigint_column)
    error = failed_error(info)
    assert_nothing_loaded(p, job, error)
    if p.destination.destination_type == "sqlalchemy" and p.capabilities.sqlglot_dialect == "sqlite":
        assert "column 'id'" in error and "string" in error  # the executemany job: by the column's Arrow type


def test_text_that_is_not_json_in_a_json_column_fails_the_file(make_pipeline):
    p = make_pipeline()

    def broken_json(t: pa.Table) -> pa.Table:
        values = t.column("js").to_pylist()
        values[11_999] = '{"unclosed": '
        return set_column(t, "js", values)

    job, info = load_bad_file(p, broken_json)
    assert_nothing_loaded(p, job, failed_error(info))


def test_nan_in_a_double_column_where_the_destination_stores_none_fails_naming_column_and_row(make_pipeline):
    p = make_pipeline()
    if p.capabilities.supports_nan_infinity:
        pytest.skip(f"{p.destination.destination_type} stores NaN in double columns")

    def nan_near_the_end(t: pa.Table) -> pa.Table:
        values = t.column("x").to_pylist()
        values[11_000] = math.nan
        return set_column(t, "x", values)

    job, info = load_bad_file(p, nan_near_the_end)
    error = failed_error(info)
    assert_nothing_loaded(p, job, error)
    assert "column 'x', row 11001" in error and "nan" in error, error


def test_a_file_that_is_not_parquet_fails_naming_it(make_pipeline):
    p = make_pipeline()
    package = normalize_only(p, [{"id": 1}], "t", loader_file_format="parquet")
    job = only_job_file(package)
    job.path.write_bytes(b"PAR1 this is not a parquet file")
    info = p.run()
    error = failed_error(info)
    assert job.path.name in error and "table 't'" in error, error


def test_a_failed_file_loads_after_it_is_fixed(make_pipeline):
    p = make_pipeline()
    job, info = load_bad_file(p, lambda t: set_column(t, "js", ["[" if i == 5 else v for i, v in
                                                                enumerate(t.column("js").to_pylist())]), n=10)
    [pending] = p.storage.pending()
    [failed] = pending.jobs("failed_jobs")
    rewrite(failed, lambda t: set_column(t, "js", ['{"i": %d}' % i for i in range(10)]))
    assert p.retry_failed_jobs() == 1
    run_ok(p)
    got = select(p, "t", "id", "js", order_by=["id"])
    assert [(as_int(i), as_json(j)) for i, j in got] == [(i, {"i": i}) for i in range(10)]


# -- the SQLAlchemy destination on PostgreSQL (not one of the built-in setups) -----------------------------------

@pytest.fixture
def sqlalchemy_postgres(tmp_path: Path) -> Any:
    """A pipeline of the SQLAlchemy destination on the test PostgreSQL server (psycopg2 dialect)."""
    import uuid

    from loadbay.destinations.testing.conformance.helpers import drop_datasets
    from loadbay.destinations.testing.setups import POSTGRES_URL, require_server

    require_server("postgres")
    url = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg2://", 1)
    p = loadbay.pipeline("sa_pg", destination=loadbay.destination("sqlalchemy", credentials=url),
                         dataset_name=f"ds_{uuid.uuid4().hex[:10]}", pipelines_dir=tmp_path / "p")
    yield p
    drop_datasets(p)


def test_sqlalchemy_on_postgresql_loads_parquet_as_jsonl(sqlalchemy_postgres):
    p = sqlalchemy_postgres
    assert "parquet" in p.capabilities.supported_loader_file_formats
    run_ok(p, TYPED, table_name="via_jsonl", loader_file_format="jsonl", columns=HINTS)
    info = run_ok(p, TYPED, table_name="via_parquet", loader_file_format="parquet", columns=HINTS)
    assert formats_of(info) == {"parquet"}
    got = select(p, "via_parquet", *NAMES, order_by=["id"])
    assert got == select(p, "via_jsonl", *NAMES, order_by=["id"])
    for source, row in zip(TYPED, got):
        for name, value in zip(NAMES, row):
            want = source.get(name)
            assert (value is None) if want is None else COMPARE.get(name, lambda v: v)(value) == expected(want, name), (
                source["id"], name, value)


def test_a_file_with_a_column_the_table_has_not_fails_naming_it(make_pipeline):
    p = make_pipeline()
    package = normalize_only(p, [{"id": 1, "s": "x"}], "t", loader_file_format="parquet")
    job = only_job_file(package)
    rewrite(job, lambda t: t.append_column("ghost", pa.array(["boo"])))
    error = failed_error(p.run())
    assert job.path.name in error and "table 't'" in error and "'ghost'" in error, error
    with p.sql_client() as client:
        assert not client.table_columns(["t"]) or count(p, "t") == 0


def test_an_unsigned_integer_past_64_bits_fails_naming_its_column(make_pipeline):
    """uint64 is an integer type (the Arrow normalizer may keep a source's), but not every value fits a bigint."""
    p = make_pipeline()
    package = normalize_only(p, [{"id": 1, "n": 5}, {"id": 2, "n": 6}], "t", loader_file_format="parquet")
    job = only_job_file(package)
    rewrite(job, lambda t: set_column(t, "n", [5, 2**64 - 1], pa.uint64()))
    error = failed_error(p.run())
    assert job.path.name in error and "table 't'" in error, error
    with p.sql_client() as client:
        assert not client.table_columns(["t"]) or count(p, "t") == 0
