"""Type inference from Python values, and coercion of values to a column's type.

Both are decided per (column type, Python type) pair and cached by the normalizer, so the hot
path per value is one ``type(value)`` and one dict lookup. A converter is ``IDENTITY`` when the
value can be written as it is, a function when it must change, or ``NOT_COERCIBLE`` when the
value belongs in a variant column.
"""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from common.schema.types import Column

Converter = Callable[[Any], Any]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def IDENTITY(value: Any) -> Any:  # noqa: N802 - a sentinel that is also a valid converter
    return value


class NotCoercible(ValueError):
    """Raised by a converter when this particular value cannot take the column's type."""


def NOT_COERCIBLE(value: Any) -> Any:  # noqa: N802
    raise NotCoercible(value)


_ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)?$"
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FRACTION = re.compile(r"\.(\d{1,9})")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})?$")


def parse_datetime(text: str) -> datetime:
    """ISO 8601 text → datetime; naive values are taken as UTC. Raises NotCoercible."""
    if not _ISO_DATETIME.match(text):
        raise NotCoercible(text)
    if text[-1] in "zZ":  # 3.10 knows neither; 3.11 knows only "Z"
        text = text[:-1] + "+00:00"
    if sys.version_info < (3, 11):  # pragma: no cover - 3.10 wants 6-digit fractions and "+hh:mm"
        text = _FRACTION.sub(lambda m: "." + (m[1] + "00000")[:6], text)
        text = _OFFSET.sub(lambda m: f"{m[1]}{m[2]}:{m[3] or '00'}", text)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise NotCoercible(text) from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def parse_date(text: str) -> date:
    if not _ISO_DATE.match(text):
        raise NotCoercible(text)
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise NotCoercible(text) from exc


def infer_data_type(value: Any, max_decimal_precision: int = 38) -> tuple[str, dict[str, Any]]:
    """The loadbay type (and hints such as precision) for a value seen in a new column."""
    t = type(value)
    if t is bool:
        return "bool", {}
    if t is int:
        if INT64_MIN <= value <= INT64_MAX:
            return "bigint", {}
        if len(str(abs(value))) <= max_decimal_precision:
            return "decimal", {"precision": max_decimal_precision, "scale": 0}
        return "text", {}
    if t is float:
        return "double", {}
    if t is str:
        if _ISO_DATETIME.match(value):
            try:
                parse_datetime(value)
                return "timestamp", {}
            except NotCoercible:
                return "text", {}
        if _ISO_DATE.match(value):
            try:
                parse_date(value)
                return "date", {}
            except NotCoercible:
                return "text", {}
        return "text", {}
    if t is Decimal:
        return "decimal", {}
    if isinstance(value, datetime):
        return "timestamp", {}
    if isinstance(value, date):
        return "date", {}
    if isinstance(value, time):
        return "time", {}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "binary", {}
    if isinstance(value, (dict, list, tuple)):
        return "json", {}
    if isinstance(value, int):  # int subclasses such as IntEnum
        return "bigint", {}
    if isinstance(value, float):
        return "double", {}
    if isinstance(value, str):
        return "text", {}
    return "text", {}


def _to_decimal(value: Any) -> Decimal:
    try:
        result = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
    except (InvalidOperation, ValueError) as exc:
        raise NotCoercible(value) from exc
    if not result.is_finite():
        raise NotCoercible(value)
    return result


def _to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return str(value)


def _datetime_from_date(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)


def _date_from_text(value: str) -> date:
    return parse_date(value)


def _bytes(value: Any) -> bytes:
    return bytes(value)


# (column data type) → {python type → converter}; anything not listed is NOT_COERCIBLE.
_COERCIONS: dict[str, dict[type, Converter]] = {
    "text": {str: IDENTITY, int: _to_text, float: _to_text, bool: _to_text, Decimal: _to_text,
             datetime: _to_text, date: _to_text, time: _to_text},
    "bigint": {int: IDENTITY},  # range checked by the normalizer (cheaper inline than a call)
    "double": {float: IDENTITY, int: float},
    "bool": {bool: IDENTITY},
    "timestamp": {datetime: IDENTITY, str: parse_datetime, date: _datetime_from_date},
    "date": {date: IDENTITY, datetime: datetime.date, str: _date_from_text},
    "time": {time: IDENTITY, str: lambda v: _time_from_text(v)},
    "decimal": {Decimal: _to_decimal, int: _to_decimal, float: _to_decimal, str: _to_decimal},
    "json": {dict: IDENTITY, list: IDENTITY, tuple: list, str: IDENTITY, int: IDENTITY,
             float: IDENTITY, bool: IDENTITY, Decimal: IDENTITY},
    "binary": {bytes: IDENTITY, bytearray: _bytes, memoryview: _bytes},
}


def _time_from_text(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise NotCoercible(value) from exc


def decimal_converter(precision: int, scale: int) -> Converter:
    """Decimal with at most ``precision - scale`` integer digits; wider values are not coercible."""
    max_integer_digits = precision - scale

    def convert(value: Any) -> Decimal:
        result = _to_decimal(value)
        if result and result.adjusted() + 1 > max_integer_digits:
            raise NotCoercible(value)
        return result

    return convert


def converter_for(column: Column | str, py_type: type, decimal_default: tuple[int, int] = (38, 9)) -> Converter:
    """The converter for values of ``py_type`` in ``column`` (a Column, or just its data type)."""
    if isinstance(column, str):
        column = Column("_", column)
    data_type = column.data_type
    if data_type == "decimal" and py_type in (Decimal, int, float, str):
        precision = column.precision or decimal_default[0]
        scale = column.scale if column.scale is not None else decimal_default[1]
        return decimal_converter(precision, scale)
    table = _COERCIONS[data_type]
    conv = table.get(py_type)
    if conv is not None:
        return conv
    for base, base_conv in table.items():  # subclasses: IntEnum, str enums, pendulum datetimes
        if issubclass(py_type, base) and not (py_type is bool and base is int):
            return base_conv
    return NOT_COERCIBLE
