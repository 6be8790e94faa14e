"""Type inference from Python values and coercion of values into a column's type."""

from __future__ import annotations

import enum
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from loadbay.common.schema.inference import (
    IDENTITY,
    INT64_MAX,
    INT64_MIN,
    NOT_COERCIBLE,
    NotCoercible,
    converter_for,
    infer_data_type,
    parse_datetime,
)
from loadbay.common.schema.types import Column

UTC = timezone.utc


class Color(enum.IntEnum):
    RED = 1


class Mood(str, enum.Enum):
    HAPPY = "happy"


# -- infer_data_type ---------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (0, "bigint"),
    (-1, "bigint"),
    (INT64_MAX, "bigint"),
    (INT64_MIN, "bigint"),
    (1.5, "double"),
    (float("inf"), "double"),
    (True, "bool"),
    (False, "bool"),
    ("hello", "text"),
    ("", "text"),
    (Decimal("1.25"), "decimal"),
    (b"\x00\xff", "binary"),
    (bytearray(b"ab"), "binary"),
    (memoryview(b"ab"), "binary"),
    ({"a": 1}, "json"),
    ([1, 2], "json"),
    ((1, 2), "json"),
    (datetime(2023, 1, 1, tzinfo=UTC), "timestamp"),
    (datetime(2023, 1, 1), "timestamp"),
    (date(2023, 1, 1), "date"),
    (time(10, 11, 12), "time"),
    (Color.RED, "bigint"),
    (Mood.HAPPY, "text"),
])
def test_infer_python_types(value: Any, expected: str) -> None:
    assert infer_data_type(value)[0] == expected


def test_bool_is_not_inferred_as_bigint() -> None:
    """bool is an int subclass in Python; a flag column must not become a number column."""
    assert infer_data_type(True) == ("bool", {})
    assert infer_data_type(False) == ("bool", {})


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 2**70, -(2**70), 10**38 - 1, -(10**38 - 1)])
def test_ints_beyond_64_bits_are_decimal_with_precision(value: int) -> None:
    assert infer_data_type(value) == ("decimal", {"precision": 38, "scale": 0})


@pytest.mark.parametrize("value", [10**38, -(10**38), 10**60])
def test_ints_beyond_max_decimal_precision_are_text(value: int) -> None:
    assert infer_data_type(value) == ("text", {})


def test_max_decimal_precision_is_a_parameter() -> None:
    assert infer_data_type(10**38, max_decimal_precision=76) == ("decimal", {"precision": 76, "scale": 0})
    assert infer_data_type(10**20, max_decimal_precision=18) == ("text", {})


@pytest.mark.parametrize("text", [
    "2023-01-01T00:00:00Z",
    "2023-01-01T00:00:00+00:00",
    "2023-06-15T12:34:56.789+02:00",
    "2023-06-15T12:34:56-0800",
    "2023-06-15T12:34:56+05",
    "2023-06-15T12:34:56",
    "2023-06-15 12:34:56",
    "2023-06-15T12:34",
    "2023-06-15T12:34:56.123456789Z",
])
def test_iso_timestamps_are_inferred(text: str) -> None:
    assert infer_data_type(text) == ("timestamp", {})


@pytest.mark.parametrize("text", ["2023-01-31", "2024-02-29", "0001-01-01"])
def test_iso_dates_are_inferred(text: str) -> None:
    assert infer_data_type(text) == ("date", {})


@pytest.mark.parametrize("text", [
    "2023-13-45",
    "2023-02-30",
    "2023-02-29",              # not a leap year
    "2023-01-01T25:00:00Z",
    "2023-01-01T10:61:00",
    "2023-13-01T00:00:00Z",
    "20230101",
    "2023-1-1",
    "2023-01-01T00:00:00.1234567890Z",
    "yesterday",
    "10:11:12",
    " 2023-01-01",
])
def test_invalid_or_non_iso_dates_stay_text(text: str) -> None:
    assert infer_data_type(text) == ("text", {})


@pytest.mark.parametrize("value", [
    0, INT64_MAX, 2**70, 10**38, 1.5, True, "x", "2023-13-45", "2023-01-01", "2023-01-01T00:00:00Z",
    Decimal("1.5"), b"ab", bytearray(b"ab"), {"a": 1}, [1], (1,), datetime(2023, 1, 1), date(2023, 1, 1),
    time(1, 2), Color.RED, Mood.HAPPY,
])
def test_a_value_fits_the_column_it_creates(value: Any) -> None:
    """The first value of a new column must never land in a variant column."""
    data_type, _ = infer_data_type(value)
    conv = converter_for(data_type, type(value))
    assert conv is not NOT_COERCIBLE
    conv(value)


# -- parse_datetime ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("2023-01-01T00:00:00Z", datetime(2023, 1, 1, tzinfo=UTC)),
    ("2023-01-01T02:00:00+02:00", datetime(2023, 1, 1, tzinfo=UTC)),
    ("2022-12-31T16:00:00-0800", datetime(2023, 1, 1, tzinfo=UTC)),
    ("2023-01-01T05:30:00+0530", datetime(2023, 1, 1, tzinfo=UTC)),
    ("2023-01-01 00:00:00", datetime(2023, 1, 1, tzinfo=UTC)),
    ("2023-01-01T00:00", datetime(2023, 1, 1, tzinfo=UTC)),
    ("2023-01-01T00:00:00.5Z", datetime(2023, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
])
def test_parse_datetime(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed.tzinfo is not None
    assert parsed == expected


def test_parse_datetime_keeps_the_offset() -> None:
    assert parse_datetime("2023-01-01T00:00:00+02:00").utcoffset() == timedelta(hours=2)


def test_parse_datetime_takes_naive_values_as_utc() -> None:
    assert parse_datetime("2023-06-15T12:00:00").utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["2023-13-45T00:00:00", "2023-01-01", "yesterday", "2023-01-01T24:30:00Z", ""])
def test_parse_datetime_rejects_invalid_text(text: str) -> None:
    with pytest.raises(NotCoercible):
        parse_datetime(text)


def test_lowercase_z_is_utc() -> None:
    """The pattern accepts "z"; Python 3.11's fromisoformat alone does not."""
    assert infer_data_type("2023-01-01T00:00:00z") == ("timestamp", {})
    assert parse_datetime("2023-01-01T00:00:00z") == datetime(2023, 1, 1, tzinfo=UTC)


# -- converter_for -----------------------------------------------------------------------------

@pytest.mark.parametrize(("data_type", "value", "expected"), [
    ("double", 3, 3.0),
    ("double", -(2**53), float(-(2**53))),
    ("text", 5, "5"),
    ("text", 1.5, "1.5"),
    ("text", True, "true"),
    ("text", False, "false"),
    ("text", Decimal("1.50"), "1.50"),
    ("text", date(2023, 1, 2), "2023-01-02"),
    ("text", datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC), "2023-01-02T03:04:05+00:00"),
    ("text", 2**70, str(2**70)),
    ("timestamp", "2023-01-01T02:00:00+02:00", datetime(2023, 1, 1, tzinfo=UTC)),
    ("timestamp", "2023-01-01 00:00:00", datetime(2023, 1, 1, tzinfo=UTC)),
    ("timestamp", date(2023, 1, 1), datetime(2023, 1, 1, tzinfo=UTC)),
    ("date", datetime(2023, 1, 1, 12, 0), date(2023, 1, 1)),
    ("date", "2023-01-31", date(2023, 1, 31)),
    ("time", "10:11:12", time(10, 11, 12)),
    ("decimal", 0.1, Decimal("0.1")),
    ("decimal", "1.25", Decimal("1.25")),
    ("decimal", 2**70, Decimal(2**70)),
    ("json", (1, 2), [1, 2]),
    ("binary", bytearray(b"ab"), b"ab"),
    ("binary", memoryview(b"ab"), b"ab"),
    ("text", Mood.HAPPY, "happy"),  # an enum is stored as its value (a plain str or int, not the member)
    ("bigint", Color.RED, 1),
])
def test_converters_change_values_that_need_it(data_type: str, value: Any, expected: Any) -> None:
    out = converter_for(data_type, type(value))(value)
    assert out == expected
    assert type(out) is type(expected)
    if isinstance(expected, datetime):
        assert out.tzinfo is not None


@pytest.mark.parametrize(("data_type", "py_type"), [
    ("text", str), ("bigint", int), ("double", float), ("bool", bool), ("date", date), ("time", time),
    ("timestamp", datetime), ("json", dict), ("json", list), ("json", int), ("binary", bytes),
])
def test_identity_when_the_value_fits_as_it_is(data_type: str, py_type: type) -> None:
    assert converter_for(data_type, py_type) is IDENTITY


@pytest.mark.parametrize(("data_type", "py_type"), [
    ("bigint", float),
    ("bigint", bool),
    ("bigint", str),
    ("bigint", Decimal),
    ("double", bool),
    ("decimal", bool),
    ("bool", int),
    ("bool", str),
    ("timestamp", int),
    ("timestamp", float),
    ("date", int),
    ("binary", str),
    ("json", bytes),
    ("text", dict),
    ("text", list),
])
def test_not_coercible_pairs(data_type: str, py_type: type) -> None:
    assert converter_for(data_type, py_type) is NOT_COERCIBLE


def test_not_coercible_raises() -> None:
    with pytest.raises(NotCoercible):
        NOT_COERCIBLE(1.5)


@pytest.mark.parametrize(("data_type", "value"), [
    ("timestamp", "yesterday"),
    ("timestamp", "2023-13-45T00:00:00"),
    ("date", "2023-13-45"),
    ("date", "2023-01-01T00:00:00"),
    ("decimal", "abc"),
    ("decimal", float("nan")),
    ("decimal", float("inf")),
    ("time", "25:00"),
])
def test_converter_rejects_values_that_do_not_fit(data_type: str, value: Any) -> None:
    conv = converter_for(data_type, type(value))
    assert conv is not NOT_COERCIBLE  # the pair is fine; this particular value is not
    with pytest.raises(NotCoercible):
        conv(value)


@pytest.mark.parametrize(("precision", "scale", "fits", "too_wide"), [
    (38, 0, 10**38 - 1, 10**38),
    (38, 9, 10**29 - 1, 10**29),
    (10, 2, Decimal("99999999.99"), Decimal("100000000")),
])
def test_decimal_converter_checks_the_column_precision(precision: int, scale: int, fits: Any, too_wide: Any) -> None:
    column = Column("d", "decimal", precision=precision, scale=scale)
    conv = converter_for(column, type(fits))
    assert conv(fits) == Decimal(fits)
    negative = fits.copy_negate() if isinstance(fits, Decimal) else -fits
    assert conv(negative) == Decimal(negative)
    with pytest.raises(NotCoercible):
        conv(too_wide)


@pytest.mark.parametrize(("precision", "scale", "value", "rounded"), [
    (38, 9, Decimal("12345678901234567890.0123456789"), Decimal("12345678901234567890.012345679")),  # 30 digits
    (38, 9, Decimal("-99999999999999999999.9999999999"), Decimal("-100000000000000000000.000000000")),
    (76, 38, Decimal("1" * 38 + "." + "1" * 40), Decimal("1" * 38 + "." + "1" * 38)),
])
def test_rounding_to_the_scale_works_past_28_digits(precision: int, scale: int, value: Decimal,
                                                    rounded: Decimal) -> None:
    """Python's default decimal context holds 28 digits; rounding a wider value in it raised InvalidOperation."""
    assert converter_for(Column("d", "decimal", precision=precision, scale=scale), Decimal)(value) == rounded


def test_decimal_without_precision_uses_the_default() -> None:
    conv = converter_for("decimal", int, (20, 0))
    assert conv(10**20 - 1) == Decimal(10**20 - 1)
    with pytest.raises(NotCoercible):
        conv(10**20)
