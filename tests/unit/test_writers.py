"""Load file writers: every format round-trips adversarial text; NULL, '' and big ints stay exact."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlglot
from sqlglot import exp

from loadbay.common.capabilities import DEFAULTS, DestinationCapabilities
from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.schema.types import Column, Schema, Table
from loadbay.common.storage.writers import (
    WRITERS,
    CsvWriter,
    InsertValuesWriter,
    JsonlWriter,
    LoadFileWriter,
    ParquetWriter,
    read_insert_values,
)
from loadbay.destinations.testing.conformance.helpers import load_sample

UTC = timezone.utc


def _table(**types: str) -> Table:
    return Table("t", {name: Column(name, data_type) for name, data_type in types.items()})


WEIRD = _table(idx="bigint", str="text")


def _write(writer_class: type[LoadFileWriter], path: Path, table: Table, *batches: list[dict[str, Any]],
           capabilities: DestinationCapabilities = DEFAULTS) -> int:
    writer = writer_class(path, table, capabilities)
    for rows in batches:
        writer.write_rows(rows)
    return writer.close()


# -- readers -----------------------------------------------------------------------------------

def _csv_records(text: str) -> list[list[str | None]]:
    """RFC 4180 fields of ``text``; an unquoted empty field is None (NULL), a quoted one is ''."""
    records: list[list[str | None]] = []
    record: list[str | None] = []
    i = 0
    while i < len(text):
        value: str | None
        if text[i] == '"':
            parts, j = [], i + 1
            while True:
                k = text.index('"', j)
                parts.append(text[j:k])
                if text.startswith('""', k):
                    parts.append('"')
                    j = k + 2
                else:
                    j = k + 1
                    break
            value = "".join(parts)
        else:
            j = i
            while j < len(text) and text[j] not in ",\n":
                j += 1
            value = text[i:j] or None
        record.append(value)
        if j >= len(text) or text[j] == "\n":
            records.append(record)
            record = []
        i = j + 1
    return records


def _read_csv(path: Path) -> list[list[str | None]]:
    text = path.read_bytes().decode("utf-8")  # no newline translation: "\r" inside a value must stay
    records = _csv_records(text)
    # the csv module must read the same file the same way, save for NULL vs ''
    assert list(csv.reader(io.StringIO(text, newline=""))) == [[v or "" for v in r] for r in records]
    return records


def _literal(node: exp.Expression) -> Any:
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.HexString):
        return bytes.fromhex(node.this)
    if isinstance(node, exp.Neg):
        return -_literal(node.this)
    if isinstance(node, exp.Literal) and not node.is_string:
        text = str(node.this)
        return int(text) if text.lstrip("-").isdigit() else float(text)
    assert isinstance(node, exp.Literal), node
    return node.this


def _read_insert_values(path: Path, dialect: str = "postgres") -> tuple[list[str], list[list[list[Any]]]]:
    """(column names, statements as lists of value tuples), parsed by sqlglot."""
    names, bodies = read_insert_values(path)
    statements = []
    for body in bodies:
        insert = sqlglot.parse_one(f"INSERT INTO t VALUES {body}", read=dialect)
        statements.append([[_literal(v) for v in row.expressions] for row in insert.expression.expressions])
    return names, statements


# -- weird rows round-trip in every format -----------------------------------------------------

def test_jsonl_round_trips_weird_rows(tmp_path: Path) -> None:
    rows = load_sample("weird_rows.json")
    path = tmp_path / "t.jsonl"
    assert _write(JsonlWriter, path, WEIRD, rows) == len(rows)
    lines = path.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == rows


def test_csv_round_trips_weird_rows(tmp_path: Path) -> None:
    rows = load_sample("weird_rows.json")
    path = tmp_path / "t.csv"
    assert _write(CsvWriter, path, WEIRD, rows) == len(rows)
    header, *records = _read_csv(path)
    assert header == ["idx", "str"]
    assert [{"idx": int(i), "str": s} for i, s in records] == rows


def test_insert_values_round_trips_weird_rows(tmp_path: Path) -> None:
    rows = load_sample("weird_rows.json")
    path = tmp_path / "t.insert_values"
    assert _write(InsertValuesWriter, path, WEIRD, rows) == len(rows)
    names, statements = _read_insert_values(path)
    assert names == ["idx", "str"]
    assert [dict(zip(names, values)) for stmt in statements for values in stmt] == rows


def test_insert_values_with_backslash_escaping_round_trips(tmp_path: Path) -> None:
    rows = [*load_sample("weird_rows.json"), {"idx": 6, "str": "C:\\path\\' OR 1=1 --\\"}]
    path = tmp_path / "t.insert_values"
    _write(InsertValuesWriter, path, WEIRD, rows, capabilities=DEFAULTS.with_(string_literal_escape="backslash"))
    names, statements = _read_insert_values(path, dialect="mysql")
    assert [dict(zip(names, values)) for stmt in statements for values in stmt] == rows


def test_parquet_round_trips_weird_rows(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    rows = load_sample("weird_rows.json")
    path = tmp_path / "t.parquet"
    assert _write(ParquetWriter, path, WEIRD, rows) == len(rows)
    assert pq.read_table(path).to_pylist() == rows


def test_writers_registry_names_its_formats() -> None:
    assert {name: cls.file_format for name, cls in WRITERS.items()} == {
        "jsonl": "jsonl", "csv": "csv", "insert_values": "insert_values", "parquet": "parquet", "arrow": "arrow"}


# -- NULL versus empty string ------------------------------------------------------------------

NULLS = [{"a": "", "b": 1}, {"b": 2}, {"a": None, "b": 3}, {"a": "x", "b": None}]
NULLS_EXPECTED = [("", 1), (None, 2), (None, 3), ("x", None)]


def test_csv_writes_null_unquoted_and_empty_string_quoted(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    _write(CsvWriter, path, _table(a="text", b="bigint"), NULLS)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == ['"a","b"', '"",1', ",2", ",3", '"x",']
    _, *records = _read_csv(path)
    assert [(a, int(b) if b is not None else None) for a, b in records] == NULLS_EXPECTED


def test_csv_for_mysql_spells_null_as_the_unquoted_word_and_timestamps_as_utc_wall_time(tmp_path: Path) -> None:
    """``csv_null="NULL"`` (LOAD DATA reads an empty field, quoted or not, as ''); ``naive_timestamps``: the UTC
    wall time without offset, from any zone (the fast path cuts orjson's ``+00:00``)."""
    from datetime import timedelta

    caps = DEFAULTS.with_(csv_null="NULL", naive_timestamps=True)
    path = tmp_path / "t.csv"
    rows = [*NULLS, {"a": "NULL", "b": 4}]
    _write(CsvWriter, path, _table(a="text", b="bigint"), rows, capabilities=caps)
    assert path.read_text(encoding="utf-8").splitlines() == ['"a","b"', '"",1', "NULL,2", "NULL,3", '"x",NULL',
                                                            '"NULL",4']
    table = _table(ts="timestamp", f="double")
    stamps = [datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
              datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
              datetime(2024, 1, 2, 3, 4, 5, 7), None]
    _write(CsvWriter, path, table, [{"ts": ts, "f": None if ts is None else 1.5} for ts in stamps], capabilities=caps)
    assert path.read_text(encoding="utf-8").splitlines()[1:] == [
        '"2024-01-02T03:04:05.123456","1.5"', '"2024-01-02T03:04:05","1.5"', '"2024-01-01T21:34:05","1.5"',
        '"2024-01-02T03:04:05.000007","1.5"', "NULL,NULL"]


def test_insert_values_tells_null_from_empty_string(tmp_path: Path) -> None:
    path = tmp_path / "t.insert_values"
    _write(InsertValuesWriter, path, _table(a="text", b="bigint"), NULLS)
    _, statements = _read_insert_values(path)
    assert [tuple(v) for v in statements[0]] == NULLS_EXPECTED


def test_jsonl_and_parquet_tell_null_from_empty_string(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    table = _table(a="text", b="bigint")
    _write(JsonlWriter, tmp_path / "t.jsonl", table, NULLS)
    _write(ParquetWriter, tmp_path / "t.parquet", table, NULLS)
    jsonl = [orjson.loads(line) for line in (tmp_path / "t.jsonl").read_bytes().splitlines()]
    assert [(r.get("a"), r.get("b")) for r in jsonl] == NULLS_EXPECTED
    assert [(r["a"], r["b"]) for r in pq.read_table(tmp_path / "t.parquet").to_pylist()] == NULLS_EXPECTED


# -- insert_values statements ------------------------------------------------------------------

def test_insert_values_splits_statements_by_max_rows_per_insert(tmp_path: Path) -> None:
    rows = [{"idx": i, "str": f"row {i}"} for i in range(25)]
    path = tmp_path / "t.insert_values"
    _write(InsertValuesWriter, path, WEIRD, rows, capabilities=DEFAULTS.with_(max_rows_per_insert=10))
    _, statements = _read_insert_values(path)
    assert [len(s) for s in statements] == [10, 10, 5]
    assert [v[0] for s in statements for v in s] == list(range(25))


def test_insert_values_splits_each_batch_on_its_own(tmp_path: Path) -> None:
    batches = [[{"idx": i, "str": "x"} for i in range(start, start + size)] for start, size in ((0, 3), (3, 4))]
    path = tmp_path / "t.insert_values"
    _write(InsertValuesWriter, path, WEIRD, *batches, capabilities=DEFAULTS.with_(max_rows_per_insert=2))
    _, statements = _read_insert_values(path)
    assert [len(s) for s in statements] == [2, 1, 2, 2]


def test_insert_values_respects_max_parameters_per_statement(tmp_path: Path) -> None:
    table = _table(a="bigint", b="bigint", c="bigint", d="bigint")
    rows = [{"a": i, "b": i, "c": i, "d": i} for i in range(7)]
    path = tmp_path / "t.insert_values"
    caps = DEFAULTS.with_(max_rows_per_insert=1000, max_parameters_per_statement=10)
    _write(InsertValuesWriter, path, table, rows, capabilities=caps)
    _, statements = _read_insert_values(path)
    assert [len(s) for s in statements] == [2, 2, 2, 1]
    assert all(len(s) * 4 <= 10 for s in statements)


def test_insert_values_statements_fit_max_query_length(tmp_path: Path) -> None:
    rows = [{"idx": i, "str": "y" * 100} for i in range(50)]
    path = tmp_path / "t.insert_values"
    caps = DEFAULTS.with_(max_query_length=1000, max_rows_per_insert=1000)
    _write(InsertValuesWriter, path, WEIRD, rows, capabilities=caps)
    _, bodies = read_insert_values(path)
    sizes = [len(body.encode("utf-8")) for body in bodies]
    assert sum(sizes) > 1000  # the rows cannot fit one statement
    assert max(sizes) <= 1000


def test_insert_values_literals_by_type(tmp_path: Path) -> None:
    table = _table(b="bool", bin="binary", d="double", dec="decimal", ts="timestamp", j="json")
    row = {"b": True, "bin": b"\x00\xffx", "d": -1.5, "dec": Decimal("12.50"),
           "ts": datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC), "j": {"k": ["v", 1]}}
    path = tmp_path / "t.insert_values"
    _write(InsertValuesWriter, path, table, [row, {"b": False}])
    _, [[first, second]] = _read_insert_values(path)
    assert first[:3] == [True, b"\x00\xffx", -1.5]
    assert Decimal(str(first[3])) == Decimal("12.50")
    assert datetime.fromisoformat(first[4]) == row["ts"]
    assert json.loads(first[5]) == row["j"]
    assert second == [False, None, None, None, None, None]


# -- big integers and typed columns ------------------------------------------------------------

BIG = {"n": 2**70, "neg": -(2**65), "nested": [{"m": 10**30}]}


def test_jsonl_keeps_ints_beyond_64_bits_inside_json_values(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    _write(JsonlWriter, path, _table(id="bigint", j="json"), [{"id": 1, "j": {"a": 1}}, {"id": 2, "j": BIG}])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert [json.loads(line) for line in lines] == [{"id": 1, "j": {"a": 1}}, {"id": 2, "j": BIG}]


@pytest.mark.parametrize("writer_class", [CsvWriter, InsertValuesWriter])
def test_json_text_keeps_ints_beyond_64_bits(tmp_path: Path, writer_class: type[LoadFileWriter]) -> None:
    path = tmp_path / f"t.{writer_class.file_format}"
    _write(writer_class, path, _table(j="json"), [{"j": BIG}])
    if writer_class is CsvWriter:
        text = _read_csv(path)[1][0]
    else:
        text = _read_insert_values(path)[1][0][0][0]
    assert json.loads(text) == BIG


def test_jsonl_big_int_in_json_next_to_a_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    ts = datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)
    _write(JsonlWriter, path, _table(ts="timestamp", j="json"), [{"ts": ts, "j": BIG}])
    (row,) = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert row["j"] == BIG
    assert datetime.fromisoformat(row["ts"]) == ts


def test_csv_converts_typed_columns(tmp_path: Path) -> None:
    table = _table(b="bool", bin="binary", ts="timestamp", d="date", t="time", j="json", dec="decimal")
    row = {"b": False, "bin": b"\x00\xff", "ts": datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC),
           "d": date(2023, 1, 2), "t": time(3, 4, 5), "j": {"k": "v,\"q\"\n"}, "dec": Decimal("1.10")}
    path = tmp_path / "t.csv"
    _write(CsvWriter, path, table, [row])
    header, values = _read_csv(path)
    got = dict(zip(header, values))
    assert got["b"] == "False"  # str(bool): PostgreSQL and DuckDB both read it
    assert got["bin"].startswith("\\x") and bytes.fromhex(got["bin"][2:]) == row["bin"]  # bytea hex text
    assert datetime.fromisoformat(got["ts"]) == row["ts"]
    assert (got["d"], got["t"]) == ("2023-01-02", "03:04:05")
    assert json.loads(got["j"]) == row["j"]
    assert Decimal(got["dec"]) == row["dec"]


def test_jsonl_encodes_binary_as_base64_and_decimal_exactly(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    _write(JsonlWriter, path, _table(bin="binary", dec="decimal"),
           [{"bin": b"\x00\xff", "dec": Decimal("12345678901234567890.123456789")}])
    row = orjson.loads(path.read_bytes())
    assert base64.b64decode(row["bin"]) == b"\x00\xff"
    assert Decimal(str(row["dec"])) == Decimal("12345678901234567890.123456789")


def test_parquet_types(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = Table("t", {"ts": Column("ts", "timestamp"), "dec": Column("dec", "decimal", precision=38, scale=0),
                        "bin": Column("bin", "binary"), "j": Column("j", "json"), "d": Column("d", "date")})
    row = {"ts": datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC), "dec": Decimal(2**70), "bin": b"\x00",
           "j": {"n": 2**70}, "d": date(2023, 1, 2)}
    path = tmp_path / "t.parquet"
    _write(ParquetWriter, path, table, [row], [{"d": date(2024, 1, 1)}])
    read = pq.read_table(path)
    assert read.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert read.schema.field("dec").type == pa.decimal128(38, 0)
    first, second = read.to_pylist()
    assert first["ts"] == row["ts"] and first["dec"] == row["dec"] and first["bin"] == row["bin"]
    assert json.loads(first["j"]) == row["j"]
    assert second == {"ts": None, "dec": None, "bin": None, "j": None, "d": date(2024, 1, 1)}


@pytest.mark.parametrize("writer_class", [JsonlWriter, CsvWriter, InsertValuesWriter, ParquetWriter])
def test_close_returns_the_row_count_of_all_batches(tmp_path: Path, writer_class: type[LoadFileWriter]) -> None:
    if writer_class is ParquetWriter:
        pytest.importorskip("pyarrow")
    rows = load_sample("weird_rows.json")
    count = _write(writer_class, tmp_path / f"t.{writer_class.file_format}", WEIRD, rows, rows[:2])
    assert count == len(rows) + 2


def test_normalized_wide_ints_write_to_parquet(tmp_path: Path) -> None:
    """Variant decimal columns must carry a precision that holds the ints sent to them."""
    pq = pytest.importorskip("pyarrow.parquet")
    schema = Schema("s")
    values = [1, 2**70, 10**35, -(10**37), 10**40]
    rows = RelationalNormalizer(schema, DEFAULTS, "1").normalize("t", [{"v": v} for v in values])["t"]
    path = tmp_path / "t.parquet"
    _write(ParquetWriter, path, schema.tables["t"], rows)
    back = pq.read_table(path).to_pylist()
    got = [r["v"] if r["v"] is not None else r["v__v_decimal"] if r["v__v_decimal"] is not None
           else int(r["v__v_text"]) for r in back]
    assert got == values
