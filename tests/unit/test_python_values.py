"""Python values in dict rows, without a database: how each known type becomes a plain value, what it is
inferred as and converted to, what a json value holds nested, and what the normalizer says about a type
it does not know or an item that is not a row. The end-to-end twin is tests/integration/test_python_values.py."""

from __future__ import annotations

import enum
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import MappingProxyType
from typing import Any

import pytest

import loadbay.common.normalizer
from loadbay.common.capabilities import DEFAULTS
from loadbay.common.exceptions import SchemaError
from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.normalizer_batch import normalize_batch
from loadbay.common.schema.inference import NOT_COERCIBLE, NotCoercible, converter_for, infer_data_type
from loadbay.common.schema.types import LOAD_ID, ROW_ID, Column, Schema
from loadbay.common.schema.values import UnknownType, UnloadableValue, is_null, plain_value, type_name
from loadbay.common.storage.writers import dumps_json

np = pytest.importorskip("numpy", reason="numpy is optional; its scalars are tested where it is installed")
pd = pytest.importorskip("pandas", reason="pandas is optional; its values are tested where it is installed")

UTC = timezone.utc
U = uuid.UUID("12345678-1234-5678-1234-567812345678")
REPO = Path(__file__).resolve().parents[2]


class Color(str, enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    L = 3


class Day(enum.Enum):
    FIRST = date(2024, 1, 1)


class Nested(enum.Enum):
    BIG = Size.L  # an enum whose value is an enum: adapted in turn


class Mixed(enum.Enum):
    ONE = 1
    TEXT = "x"
    NOTHING = None


class Thing:
    """A type loadbay does not know."""


def _normalizer(name: str = "p") -> RelationalNormalizer:
    return RelationalNormalizer(Schema(name), DEFAULTS, "1700000000000001")


def _rows(out: dict[str, list[dict[str, Any]]], table: str = "t") -> list[dict[str, Any]]:
    """Rows of ``table`` without loadbay's own columns."""
    return [{k: v for k, v in row.items() if not k.startswith("_lb_")} for row in out[table]]


# -- plain values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (U, "12345678-1234-5678-1234-567812345678"),
    (Color.RED, "red"), (Size.L, 3), (Day.FIRST, date(2024, 1, 1)), (Nested.BIG, 3), (Mixed.TEXT, "x"),
    (np.int8(-128), -128), (np.int16(-3), -3), (np.int32(2**31 - 1), 2**31 - 1), (np.int64(-(2**63)), -(2**63)),
    (np.uint8(255), 255), (np.uint16(65535), 65535), (np.uint32(2**32 - 1), 2**32 - 1),
    (np.uint64(2**64 - 1), 2**64 - 1),  # past int64: a big int, as in a dict row
    (np.float16(1.5), 1.5), (np.float32(0.1), 0.10000000149011612), (np.float64(2.25), 2.25),
    (np.bool_(True), True), (np.bool_(False), False), (np.str_("txt"), "txt"), (np.bytes_(b"\x00b"), b"\x00b"),
    (np.datetime64("2024-01-02T03:04:05"), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    (np.datetime64("2024-01-02T03:04:05.123"), datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)),
    (np.datetime64("2024-01-02T03:04:05.123456789"), datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    (np.datetime64("2024-01-02T03", "h"), datetime(2024, 1, 2, 3, tzinfo=UTC)),
    (np.datetime64("2024-01-02"), date(2024, 1, 2)), (np.datetime64("2024-02", "M"), date(2024, 2, 1)),
    (np.datetime64("2024", "Y"), date(2024, 1, 1)),
    (np.datetime64("10000-01-01"), "10000-01-01"),  # past Python's years: text, which no date column takes
    (pd.Timestamp("2024-01-02 03:04:05", tz="Europe/Berlin"), datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC)),
    (pd.Timestamp("2024-01-02 03:04:05.123456789"), datetime(2024, 1, 2, 3, 4, 5, 123456)),
    ({"b", "c", "a"}, ["a", "b", "c"]), (frozenset({3, 1, 2}), [1, 2, 3]), (set(), []),
    ({1, "a", (2,)}, [1, "a", (2,)]),  # items that do not sort: by type name, then repr, every time
    (bytearray(b"ab"), b"ab"), (memoryview(b"ab"), b"ab"),
    (PurePosixPath("/in put/a.csv"), "/in put/a.csv"), (PureWindowsPath(r"C:\a\b.csv"), r"C:\a\b.csv"),
    (Path("rel/a"), "rel/a"),
])
def test_known_types_become_plain_values(value: Any, expected: Any) -> None:
    out = plain_value(value)
    assert out == expected and type(out) is type(expected)  # aware datetimes: the same instant
    if isinstance(expected, datetime):
        assert (out.tzinfo is None) == (expected.tzinfo is None)


@pytest.mark.parametrize("value", [None, pd.NaT, pd.NA, np.datetime64("NaT"), np.datetime64("NaT", "D"), Mixed.NOTHING])
def test_missing_values_are_null(value: Any) -> None:
    assert is_null(value)
    assert plain_value(value) is None


@pytest.mark.parametrize("value", [1, "x", 0.0, np.float64("nan"), Thing(), False])
def test_other_values_are_not_null(value: Any) -> None:
    assert not is_null(value)


@pytest.mark.parametrize("value", [
    "x", 1, 1.5, True, Decimal("1"), datetime(2024, 1, 1), date(2024, 1, 1), time(1), b"x", {"a": 1}, [1], (1,),
])
def test_plain_values_stay_as_they_are(value: Any) -> None:
    assert plain_value(value) is value


@pytest.mark.parametrize("value", [Thing(), len, lambda: 1, object(), 1j, timedelta(1), range(3), Thing,
                                   np.complex128(1j), np.timedelta64(1, "s"), np.array([1, 2]), pd.Timedelta(1)])
def test_unknown_types_raise_naming_the_type(value: Any) -> None:
    with pytest.raises(UnknownType) as excinfo:
        plain_value(value)
    assert excinfo.value.py_type is type(value)
    assert f"cannot load a value of type {type_name(type(value))}" in str(excinfo.value)
    with pytest.raises(UnknownType):
        infer_data_type(value)
    with pytest.raises(UnknownType):
        converter_for("text", type(value))


def test_type_names_carry_the_module_except_for_builtins() -> None:
    assert type_name(Thing) == f"{__name__}.Thing"
    assert type_name(complex) == "complex"
    assert type_name(np.int64) == "numpy.int64"


# -- inference and conversion -------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (U, "text"), (Color.RED, "text"), (Size.L, "bigint"), (Day.FIRST, "date"), (Nested.BIG, "bigint"),
    (np.int8(1), "bigint"), (np.uint64(2**63 - 1), "bigint"), (np.float16(1), "double"), (np.float32(1), "double"),
    (np.bool_(True), "bool"), (np.str_("x"), "text"), (np.str_("2024-01-02"), "date"), (np.bytes_(b"x"), "binary"),
    (np.datetime64("2024-01-02T03:04"), "timestamp"), (np.datetime64("2024-01-02"), "date"),
    (pd.Timestamp("2024-01-02"), "timestamp"), ({1}, "json"), (frozenset(), "json"), ((1,), "json"),
    (bytearray(b"x"), "binary"), (memoryview(b"x"), "binary"), (PurePosixPath("/a"), "text"),
])
def test_known_types_are_inferred_as_their_plain_value(value: Any, expected: str) -> None:
    assert infer_data_type(value) == (expected, {})


def test_an_unsigned_int_past_int64_is_inferred_as_a_big_int() -> None:
    assert infer_data_type(np.uint64(2**64 - 1)) == infer_data_type(2**64 - 1) == (
        "decimal", {"precision": 38, "scale": 0})
    assert infer_data_type(np.uint64(2**64 - 1), max_decimal_precision=15) == ("text", {})


@pytest.mark.parametrize("value", [
    U, Color.RED, Size.L, Day.FIRST, Nested.BIG, Mixed.ONE, np.int8(1), np.uint64(2**64 - 1), np.float32(0.5),
    np.bool_(True), np.str_("x"), np.bytes_(b"x"), np.datetime64("2024-01-02T03:04"), np.datetime64("2024-01-02"),
    pd.Timestamp("2024-01-02", tz="UTC"), {1, 2}, frozenset({"a"}), bytearray(b"x"), memoryview(b"x"),
    PureWindowsPath("C:/x"),
])
def test_a_value_fits_the_column_it_creates(value: Any) -> None:
    """The first value of a new column never lands in a variant column (nor loops between variants)."""
    data_type, extra = infer_data_type(value)
    out = converter_for(Column("c", data_type, **extra), type(value))(value)
    assert out is not None
    assert plain_value(out) is out  # what a writer gets is plain


@pytest.mark.parametrize(("column", "value", "expected"), [
    (Column("c", "text"), U, str(U)),
    (Column("c", "text"), Size.L, "3"),
    (Column("c", "text"), np.float32(0.5), "0.5"),
    (Column("c", "text"), np.datetime64("2024-01-02T03:04:05"), "2024-01-02T03:04:05+00:00"),
    (Column("c", "bigint"), np.uint32(7), 7),
    (Column("c", "double"), np.int16(3), 3.0),
    (Column("c", "decimal", precision=10, scale=2), np.int64(5), Decimal("5")),
    (Column("c", "decimal", precision=10, scale=2), np.float64(1.005), Decimal("1.01")),  # rounded half up
    (Column("c", "timestamp"), np.datetime64("2024-01-02"), datetime(2024, 1, 2, tzinfo=UTC)),
    (Column("c", "timestamp", timezone=False), pd.Timestamp("2024-01-02 03:00", tz="Europe/Berlin"),
     datetime(2024, 1, 2, 2)),  # naive column: the UTC wall time
    (Column("c", "date"), np.datetime64("2024-01-02T23:00"), date(2024, 1, 2)),
    (Column("c", "json"), {2, 1}, [1, 2]),
    (Column("c", "json"), U, str(U)),
    (Column("c", "binary"), np.bytes_(b"ab"), b"ab"),
    (Column("c", "bool"), np.bool_(False), False),
])
def test_adapted_values_convert_as_their_plain_value_would(column: Column, value: Any, expected: Any) -> None:
    out = converter_for(column, type(value))(value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(("column", "value"), [
    (Column("c", "bigint"), np.uint64(2**63)),  # past int64: the variant, as for a Python int
    (Column("c", "bigint", precision=16), np.int32(2**15)),
    (Column("c", "text", precision=10), U),  # 36 characters do not fit varchar(10)
    (Column("c", "timestamp"), np.datetime64("10000-01-01")),
    (Column("c", "bool"), np.int8(1)),
])
def test_adapted_values_that_do_not_fit_go_to_a_variant(column: Column, value: Any) -> None:
    with pytest.raises(NotCoercible):
        converter_for(column, type(value))(value)


def test_non_finite_numpy_floats_follow_the_destination() -> None:
    nan = np.float64("nan")
    assert converter_for("double", type(nan))(nan) != converter_for("double", type(nan))(nan)  # NaN kept
    with pytest.raises(NotCoercible):
        converter_for("double", type(nan), nan_infinity=False)(nan)


def test_one_converter_serves_every_member_of_an_enum() -> None:
    convert = converter_for("text", Mixed)
    assert (convert(Mixed.ONE), convert(Mixed.TEXT), convert(Mixed.NOTHING)) == ("1", "x", None)
    assert converter_for("bigint", Mixed) is not NOT_COERCIBLE
    with pytest.raises(NotCoercible):
        converter_for("bigint", Mixed)(Mixed.TEXT)


# -- values nested in json ------------------------------------------------------------------------------

def test_values_nested_in_json_serialize() -> None:
    value = {"u": U, "n": np.int64(5), "f": np.float32(1.5), "b": np.bool_(True), "s": {3, 1, 2},
             "l": [frozenset({"b", "a"}), (np.uint8(1), Color.RED)], "e": Size.L, "d": Day.FIRST,
             "p": PurePosixPath("/a"), "na": pd.NA, "nat": pd.NaT, "nat64": np.datetime64("NaT"),
             "at": np.datetime64("2024-01-02T03:04:05"), "ts": pd.Timestamp("2024-01-02 03:04:05.123456789"),
             "dec": Decimal("1.10"), "raw": b"\x00", "ba": bytearray(b"\x01")}
    assert json.loads(dumps_json(value)) == {
        "u": str(U), "n": 5, "f": 1.5, "b": True, "s": [1, 2, 3], "l": [["a", "b"], [1, "red"]], "e": 3,
        "d": "2024-01-01", "p": "/a", "na": None, "nat": None, "nat64": None, "at": "2024-01-02T03:04:05+00:00",
        "ts": "2024-01-02T03:04:05.123456", "dec": "1.10", "raw": "AA==", "ba": "AQ=="}


def test_integers_past_64_bits_nested_in_json_keep_every_digit() -> None:
    assert dumps_json([np.uint64(2**64 - 1), 2**70, {"u": U}]) == f'[{2**64 - 1}, {2**70}, {{"u": "{U}"}}]'


def test_an_unknown_type_nested_in_json_raises_naming_it() -> None:
    with pytest.raises(UnknownType, match=f"type {__name__}.Thing nested in its json value"):
        dumps_json({"a": [1, {"b": Thing()}]})
    with pytest.raises(UnknownType, match="nested"):
        dumps_json([2**70, Thing()])  # past orjson (a big int): the stdlib's json finds it too
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(UnloadableValue, match="contains itself"):
        dumps_json(loop)


# -- the normalizer ---------------------------------------------------------------------------------------

def test_rows_hold_plain_values_on_both_paths() -> None:
    """Row by row (the first batch) and column at a time (the next, with the same types)."""
    norm = _normalizer()
    batch = [{"id": np.int64(i), "u": U, "f": np.float32(0.5), "e": Color.RED, "at": np.datetime64("2024-01-02T03:04"),
              "tags": {"b", "a"}, "na": pd.NA if i else "x"} for i in range(3)]
    first = _rows(norm.normalize("t", batch))
    assert normalize_batch(norm, norm.known_state("t"), batch) is not None  # the next batch takes the fast path
    second = _rows(norm.normalize("t", batch))
    expected = [{"id": i, "u": str(U), "f": 0.5, "e": "red", "at": datetime(2024, 1, 2, 3, 4, tzinfo=UTC),
                 "tags": ["a", "b"], "na": None if i else "x"} for i in range(3)]
    for rows in (first, second):
        assert [{k: v for k, v in row.items() if v is not None or k != "na"} for row in rows] == [
            {k: v for k, v in row.items() if v is not None} for row in expected]
        assert {type(v) for row in rows for v in row.values()} <= {int, str, float, datetime, list, NoneType}


NoneType = type(None)


def test_a_column_is_not_made_for_a_value_that_means_null() -> None:
    norm = _normalizer()
    norm.normalize("t", [{"id": 1, "a": pd.NA, "b": np.datetime64("NaT"), "c": Mixed.NOTHING}])
    assert set(norm.schema.tables["t"].columns) == {LOAD_ID, ROW_ID, "id"}


@pytest.mark.parametrize("batch_size", [1, 3])
def test_an_unknown_type_names_pipeline_table_column_type_and_item(batch_size: int) -> None:
    norm = _normalizer("events_pipeline")
    items = [{"id": 1, "x": "a", "meta": {"k": 1}}, {"id": 2, "x": "b", "meta": {"k": 2}},
             {"id": 3, "x": "c", "meta": {"k": 3}}, {"id": 4, "x": "d", "meta": {"k": Thing()}}]
    with pytest.raises(SchemaError) as excinfo:
        for start in range(0, len(items), batch_size):
            norm.normalize("Events", items[start:start + batch_size])
    message = str(excinfo.value)
    for part in ("pipeline 'events_pipeline'", "table 'events'", "column 'meta__k'", "(key 'meta.k')",
                 f"type {__name__}.Thing", "item 4 of resource 'Events'", "convert"):
        assert part in message, (part, message)


def test_an_unknown_type_never_loops_between_variant_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should inference and conversion ever disagree, the variant of a variant stops instead of recursing."""
    norm = _normalizer()
    norm.normalize("t", [{"x": "text"}])
    monkeypatch.setattr(loadbay.common.normalizer, "converter_for", lambda *args, **kwargs: NOT_COERCIBLE)
    with pytest.raises(SchemaError, match="column 'x__v_bigint__v_text': cannot load int value 5"):
        norm.normalize("t", [{"x": 5}])  # x → x__v_bigint → x__v_bigint__v_text, which must take it
    with pytest.raises(SchemaError, match="column 'y__v_text': cannot load float value 1.5"):
        norm.normalize("t", [{"y": 1.5}])  # y → y__v_text (a double's own type goes to text), which must take it


class Row(Mapping[str, Any]):
    """A mapping that is not a dict."""

    def __init__(self, **values: Any) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def test_mappings_are_rows() -> None:
    norm = _normalizer()
    out = norm.normalize("t", [Row(id=1), MappingProxyType({"id": 2}), {"id": 3}])
    assert _rows(out) == [{"id": 1}, {"id": 2}, {"id": 3}]


@pytest.mark.parametrize(("items", "position", "shown"), [
    ([{"id": 1}, "x"], 2, "of type str ('x')"),
    ([{"id": 1}, {"id": 2}, None], 3, "of type NoneType (None)"),
    ([{"id": 1}, 1.5], 2, "of type float (1.5)"),
    ([{"id": 1}, [7]], 2, "of type int (7)"),  # a page of values among rows
    ([{"id": 1}, U], 2, "of type uuid.UUID"),
    ([{"id": 1}, [[{"id": 2}]]], 2, "a list inside a list item"),
    (["a", {"id": 1}], 2, "of type dict ({'id': 1})"),
    ([None, {"id": 1}], 2, "first item was not a dict"),  # None first: a resource of values
    (["a", Row(id=1)], 2, f"of type {__name__}.Row"),
])
def test_an_item_unlike_the_first_is_an_error_naming_it(items: list[Any], position: int, shown: str) -> None:
    norm = _normalizer()
    with pytest.raises(SchemaError) as excinfo:
        norm.normalize("t", items)
    message = str(excinfo.value)
    for part in ("pipeline 'p'", "table 't'", f"item {position} of resource 't'", shown):
        assert part in message, (part, message)


def test_positions_count_across_batches_and_pages() -> None:
    norm = _normalizer()
    norm.normalize("t", [{"id": 1}, [{"id": 2}, {"id": 3}]])  # items 1-3
    norm.normalize("t", [{"id": 4}])
    with pytest.raises(SchemaError, match="item 6 of resource 't'"):
        norm.normalize("t", [[{"id": 5}, "stray"]])


def test_pages_and_values() -> None:
    norm = _normalizer()
    assert _rows(norm.normalize("t", [[{"id": 1}, {"id": 2}], [], {"id": 3}])) == [{"id": 1}, {"id": 2}, {"id": 3}]
    assert _rows(norm.normalize("v", [[1, 2], 3, None, [np.int8(4)]]), "v") == [
        {"value": 1}, {"value": 2}, {"value": 3}, {}, {"value": 4}]
    assert _rows(norm.normalize("s", [{1, 2}, (3, 4)]), "s") == [{"value": [1, 2]}, {"value": [3, 4]}]
    assert norm.schema.tables["s"].columns["value"].data_type == "json"


def test_each_resource_is_decided_by_its_own_first_item() -> None:
    norm = _normalizer()
    norm.normalize("rows", [{"id": 1}])
    norm.normalize("values", [1])
    assert _rows(norm.normalize("rows", [{"id": 2}]), "rows") == [{"id": 2}]
    assert _rows(norm.normalize("values", [2]), "values") == [{"value": 2}]
    with pytest.raises(SchemaError, match="item 3 of resource 'values'"):
        norm.normalize("values", [{"value": 3}])  # a dict later in a resource of values


def test_numpy_and_pandas_stay_unimported() -> None:
    """Their types are told by module and name: rows without them never import them."""
    code = """
import sys, uuid, enum, pathlib
from loadbay.common.capabilities import DEFAULTS
from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.schema.types import Schema
from loadbay.common.storage.writers import dumps_json
class E(enum.Enum):
    A = 1
norm = RelationalNormalizer(Schema("p"), DEFAULTS, "1")
rows = [{"u": uuid.uuid4(), "e": E.A, "s": {1}, "p": pathlib.Path("x"), "j": [frozenset()]}] * 3
norm.normalize("t", rows)
norm.normalize("t", rows)
dumps_json(rows)
try:
    norm.normalize("t", [{"u": object()}])
except Exception as exc:
    assert "cannot load a value of type object" in str(exc), exc
assert "numpy" not in sys.modules and "pandas" not in sys.modules, sorted(sys.modules)
"""
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
