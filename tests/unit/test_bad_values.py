"""Bad values without a database: text repair, how writers find it, NaN/infinity and NaT conversion, the
column limit. ``tests/integration/test_bad_values.py`` checks what every destination stores."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest

from loadbay.common.capabilities import DEFAULTS
from loadbay.common.exceptions import SchemaError
from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.normalizer_batch import normalize_batch
from loadbay.common.schema.inference import FINITE_ONLY, IDENTITY, NULL, NotCoercible, converter_for, float_text
from loadbay.common.schema.types import Column, Schema, Table
from loadbay.common.storage.text_repair import TextRepairs, may_hold_nul, repair_text
from loadbay.common.storage.writers import WRITERS, read_insert_values

LOAD = "1700000000000001"
NO_NAN = DEFAULTS.with_(supports_nan_infinity=False)


# -- text repair ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected", "kinds"), [
    ("plain", "plain", []),
    ("a\x00b\x00", "ab", ["nul"]),
    ("a\ud800b", "a\ufffdb", ["surrogate"]),
    ("\udfff", "\ufffd", ["surrogate"]),
    ("\ud83d\ude00", "\U0001f600", ["surrogate"]),  # a pair written as two code points
    ("\ude00\ud83d", "\ufffd\ufffd", ["surrogate"]),  # the wrong order is no pair
    ("\x00\ud800", "\ufffd", ["nul", "surrogate"]),
    ("\\u0000", "\\u0000", []),  # a backslash that spells it: text, not a NUL
])
def test_repair_text(text: str, expected: str, kinds: list[str]) -> None:
    assert repair_text(text) == (expected, kinds)


@pytest.mark.parametrize(("data", "answer"), [
    (b'{"a":"x"}', False),
    (b'{"a":"x\\ty"}', False),
    (b'{"a":"x\\u0000y"}', True),
    (b'{"a":"x\\\\u0000y"}', True),  # an escaped backslash before "u0000": the repair finds nothing to change
    ('"x\\u0000"', True),
])
def test_may_hold_nul(data: bytes | str, answer: bool) -> None:
    assert may_hold_nul(data) is answer


def test_repairs_copy_rows_and_nested_values_and_warn_once_per_table(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    nested = {"k\x00": ["v\x00", {"deep": "\ud800"}], "n": 1}
    rows = [{"id": 1, "s": "a\x00", "j": nested}]
    repairs = TextRepairs()
    out = repairs.repair_rows("t", rows)
    assert out == [{"id": 1, "s": "a", "j": {"k": ["v", {"deep": "\ufffd"}], "n": 1}}]
    assert rows[0]["s"] == "a\x00" and nested == {"k\x00": ["v\x00", {"deep": "\ud800"}], "n": 1}
    repairs.repair_rows("t", rows)
    repairs.repair_row("other", {"x": "\x00"})
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3, messages  # t: NUL and surrogate, other: NUL
    assert "table 't'" in messages[0] and "columns 'j', 's'" in messages[0]
    assert "table 'other'" in messages[2] and "column 'x'" in messages[2]


# -- writers find bad strings in their own output -------------------------------------------------------

def _written(file_format: str, tmp_path: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as a writer of ``file_format`` wrote them (read back with the format's own reader)."""
    table = Table("t", {"id": Column("id", "bigint"), "s": Column("s", "text"), "j": Column("j", "json")})
    path = tmp_path / f"t.{file_format}"
    writer = WRITERS[file_format](path, table, DEFAULTS)
    writer.write_rows(rows)
    writer.close()
    if file_format == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if file_format == "csv":
        import csv

        with open(path, encoding="utf-8", newline="") as f:
            return [{"id": int(r["id"]), "s": r["s"], "j": json.loads(r["j"])} for r in csv.DictReader(f)]
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return [{**r, "j": json.loads(r["j"])} for r in pq.read_table(path).to_pylist()]
    if file_format == "arrow":
        import pyarrow as pa

        with pa.OSFile(str(path), "rb") as source:
            return [{**r, "j": json.loads(r["j"])} for r in pa.ipc.open_file(source).read_all().to_pylist()]
    _, bodies = read_insert_values(path)
    return [{"body": body} for body in bodies]


@pytest.mark.parametrize("file_format", ["jsonl", "csv", "parquet", "arrow", "insert_values"])
def test_every_writer_repairs_what_it_would_write(file_format: str, tmp_path: Path) -> None:
    rows = [{"id": 1, "s": "clean", "j": {"k": "\\u0000"}},
            {"id": 2, "s": "a\x00b\ud800", "j": {"k\x00": ["\ud83d\ude00", "\x00"]}}]
    written = _written(file_format, tmp_path, rows)
    if file_format == "insert_values":
        body = "".join(r["body"] for r in written)
        assert "\x00" not in body and "\\u0000" in body and "ab\ufffd" in body and "\U0001f600" in body
        return
    assert written == [{"id": 1, "s": "clean", "j": {"k": "\\u0000"}},
                       {"id": 2, "s": "ab\ufffd", "j": {"k": ["\U0001f600", ""]}}]


def test_a_jsonl_file_spells_nan_in_double_columns_added_after_it_opened(tmp_path: Path) -> None:
    """JSON has no NaN (orjson writes null): a column the table gained mid-file must be spelled too."""
    table = Table("t", {"id": Column("id", "bigint")})
    writer = WRITERS["jsonl"](tmp_path / "t.jsonl", table, DEFAULTS)
    writer.write_rows([{"id": 1}])
    table.columns["f"] = Column("f", "double")
    writer.write_rows([{"id": 2, "f": math.inf}])
    writer.close()
    assert [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()] == [
        {"id": 1}, {"id": 2, "f": "Infinity"}]


# -- NaN and infinities -----------------------------------------------------------------------------------

def test_double_converters_follow_the_capability() -> None:
    assert converter_for("double", float) is IDENTITY
    assert converter_for("double", float, nan_infinity=False) is FINITE_ONLY
    assert FINITE_ONLY(1.5) == 1.5
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(NotCoercible):
            FINITE_ONLY(value)


@pytest.mark.parametrize(("value", "text"), [(math.nan, "NaN"), (math.inf, "Infinity"), (-math.inf, "-Infinity"),
                                             (1.5, "1.5"), (1e300, "1e+300")])
def test_float_text(value: float, text: str) -> None:
    assert float_text(value) == text
    assert converter_for("text", float)(value) == text


def _rows(capabilities: Any, batches: list[list[dict[str, Any]]]) -> tuple[RelationalNormalizer, list[dict[str, Any]]]:
    norm = RelationalNormalizer(Schema("p"), capabilities, LOAD)
    rows: list[dict[str, Any]] = []
    for batch in batches:
        rows.extend(norm.normalize("t", batch)["t"])
    return norm, rows


def test_the_batch_path_hands_non_finite_floats_to_the_row_path_only_where_unsupported() -> None:
    first = [{"id": 1, "f": 1.5}, {"id": 2, "f": None}]
    norm, _ = _rows(NO_NAN, [first])
    state = norm.known_state("t")
    assert normalize_batch(norm, state, [{"id": 3, "f": 2.0}, {"id": 4, "f": None}]) is not None
    assert normalize_batch(norm, state, [{"id": 3, "f": 2.0}, {"id": 4, "f": math.nan}]) is None
    norm, _ = _rows(DEFAULTS, [first])
    assert normalize_batch(norm, norm.known_state("t"), [{"id": 3, "f": math.nan}, {"id": 4, "f": 1.0}]) is not None


def test_non_finite_floats_go_to_the_text_variant_where_unsupported() -> None:
    norm, rows = _rows(NO_NAN, [[{"id": 1, "f": 1.5}], [{"id": 2, "f": math.nan}, {"id": 3, "f": -math.inf}],
                                [{"id": 4, "f": 2.5}, {"id": 5, "f": math.inf}]])
    assert [(r.get("f"), r.get("f__v_text")) for r in rows] == [
        (1.5, None), (None, "NaN"), (None, "-Infinity"), (2.5, None), (None, "Infinity")]
    assert norm.schema.tables["t"].columns["f__v_text"].variant_of == "f"


# -- NaT ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("column", [Column("ts", "timestamp"), Column("d", "date"),
                                    Column("naive", "timestamp", timezone=False)])
def test_nat_text_is_null_in_timestamp_and_date_columns(column: Column) -> None:
    assert converter_for(column, str)("NaT") is None
    with pytest.raises(NotCoercible):
        converter_for(column, str)("NaN")


def test_pandas_nat_converts_to_null_in_any_column() -> None:
    pd = pytest.importorskip("pandas", reason="pandas is optional")
    for data_type in ("timestamp", "date", "text", "bigint", "json"):
        assert converter_for(data_type, type(pd.NaT)) is NULL


# -- the column limit --------------------------------------------------------------------------------------

def test_the_column_limit_names_table_column_limit_and_item_across_batches() -> None:
    norm = RelationalNormalizer(Schema("p"), DEFAULTS.with_(max_table_columns=5), LOAD)
    norm.normalize("events", [{"id": 1}, {"id": 2, "a": 1}])  # _lb_load_id, _lb_id, id, a
    with pytest.raises(SchemaError) as excinfo:
        norm.normalize("events", [{"id": 3, "a": 2}, {"id": 4, "nested": {"b": 1, "c": 2}}])
    message = str(excinfo.value)
    for part in ("pipeline 'p'", "table 'events'", "column 'nested__c' (key 'nested.c')", "column number 6",
                 "at most 5 columns", "item 4 of resource 'events'"):
        assert part in message, (part, message)


def test_the_column_limit_counts_child_tables_and_variants() -> None:
    norm = RelationalNormalizer(Schema("p"), DEFAULTS.with_(max_table_columns=5), LOAD)
    norm.normalize("t", [{"id": 1, "xs": [{"a": 1}]}])  # t__xs: four system columns and a
    with pytest.raises(SchemaError, match=r"table 't__xs' would get column 'b'.*item 2 "):
        norm.normalize("t", [{"id": 2, "xs": [{"b": 1}]}])
    norm = RelationalNormalizer(Schema("p"), DEFAULTS.with_(max_table_columns=5), LOAD)
    norm.normalize("t", [{"id": 1, "n": 1, "m": 1}])
    with pytest.raises(SchemaError, match=r"table 't' would get column 'n__v_text'.*item 2 "):
        norm.normalize("t", [{"id": 2, "n": "text"}])


def test_a_limit_below_the_system_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="max_table_columns=4"):
        DEFAULTS.with_(max_table_columns=4)
