"""Type inference from Python values, and coercion of values to a column's type.

Both are decided per (column type, Python type) pair and cached by the normalizer, so the hot
path per value is one ``type(value)`` and one dict lookup. A converter is ``IDENTITY`` when the
value can be written as it is, a function when it must change, or ``NOT_COERCIBLE`` when the
value belongs in a variant column (``FINITE_ONLY`` is the identity for finite floats, for double
columns that hold no NaN or infinity; the batch path checks a whole column of them at once).

Values of types that are not plain (UUIDs, enums, numpy scalars, sets, ... see ``values``) are
adapted to a plain value first, and that is inferred and converted as if it had been given; a type
loadbay does not know raises ``UnknownType`` in both, never a guess. A json column's dicts and lists
go in as they are: what they hold nested is adapted by the writers (``values.json_default``).
"""

from __future__ import annotations

import base64
import math
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from loadbay.common.schema.types import Column
from loadbay.common.schema.values import adapter_for, fits_int64, is_null_type

Converter = Callable[[Any], Any]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def IDENTITY(value: Any) -> Any:  # noqa: N802 - a sentinel that is also a valid converter
    return value


class NotCoercible(ValueError):
    """Raised by a converter when this particular value cannot take the column's type."""


def NOT_COERCIBLE(value: Any) -> Any:  # noqa: N802
    raise NotCoercible(value)


def FINITE_ONLY(value: float) -> float:  # noqa: N802 - a sentinel the batch path checks at C speed
    """A float for a double column of a destination without NaN and infinities: finite ones only."""
    if math.isfinite(value):
        return value
    raise NotCoercible(value)


def NULL(value: Any) -> None:  # noqa: N802
    """pandas' ``NaT`` (not a time) and ``NA`` are missing values: NULL in whatever column they meet."""
    return None


def is_nat_type(py_type: type) -> bool:
    """Whether ``py_type`` is pandas' NaTType, told by name so pandas stays optional (and unimported)."""
    return py_type.__name__ == "NaTType" and py_type.__module__.startswith("pandas")


NAT_TEXT = "NaT"
"""What ``str(pd.NaT)`` and ``DataFrame.astype(str)`` make of a missing timestamp or date."""
NON_FINITE_TEXT = {math.inf: "Infinity", -math.inf: "-Infinity"}
"""How NaN and the infinities are spelled as text: as JSON writers, PostgreSQL and DuckDB spell them."""


def float_text(value: float) -> str:
    """A float as text: the shortest round-trip digits, or 'NaN', 'Infinity', '-Infinity'."""
    if math.isfinite(value):
        return repr(float(value))
    return "NaN" if value != value else NON_FINITE_TEXT[value]


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
    """The loadbay type (and hints such as precision) for a value seen in a new column.

    A value that is not plain is inferred as the plain value it adapts to (a str enum as text, a
    numpy int64 as bigint...); a value meaning NULL (numpy's NaT) as text, though the normalizer
    makes no column for those. Raises UnknownType for a type loadbay does not know.
    """
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
    adapt = adapter_for(t)
    if adapt is not None:
        plain = adapt(value)
        return ("text", {}) if plain is None else infer_data_type(plain, max_decimal_precision)
    if isinstance(value, datetime):
        return "timestamp", {}
    if isinstance(value, date):
        return "date", {}
    if isinstance(value, time):
        return "time", {}
    if isinstance(value, bytes):
        return "binary", {}
    if isinstance(value, (dict, list, tuple)):
        return "json", {}
    if isinstance(value, int):  # int subclasses
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


def _timestamp_from_text(value: str) -> datetime | None:
    """ISO text → datetime; "NaT" (a missing pandas timestamp written as text) → NULL."""
    try:
        return parse_datetime(value)
    except NotCoercible:
        if value == NAT_TEXT:
            return None
        raise


def _date_from_text(value: str) -> date | None:
    try:
        return parse_date(value)
    except NotCoercible:
        if value == NAT_TEXT:
            return None
        raise


# (column data type) → {python type → converter}; anything not listed is NOT_COERCIBLE.
_COERCIONS: dict[str, dict[type, Converter]] = {
    "text": {str: IDENTITY, int: _to_text, float: float_text, bool: _to_text, Decimal: _to_text,
             datetime: _to_text, date: _to_text, time: _to_text},
    "bigint": {int: IDENTITY},  # range checked by the normalizer (cheaper inline than a call)
    "double": {float: IDENTITY, int: float},
    "bool": {bool: IDENTITY},
    "timestamp": {datetime: IDENTITY, str: _timestamp_from_text, date: _datetime_from_date},
    "date": {date: IDENTITY, datetime: datetime.date, str: _date_from_text},
    "time": {time: IDENTITY, str: lambda v: _time_from_text(v)},
    "decimal": {Decimal: _to_decimal, int: _to_decimal, float: _to_decimal, str: _to_decimal},
    "json": {dict: IDENTITY, list: IDENTITY, tuple: list, str: IDENTITY, int: IDENTITY,
             float: IDENTITY, bool: IDENTITY, Decimal: IDENTITY},
    "binary": {bytes: IDENTITY},
}


def _time_from_text(value: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise NotCoercible(value) from exc


def decimal_converter(precision: int, scale: int) -> Converter:
    """Decimal rounded (half up, as the databases do) to ``scale`` places, with at most
    ``precision - scale`` integer digits; wider values are not coercible (they go to a variant)."""
    max_integer_digits = precision - scale
    quantum = Decimal(1).scaleb(-scale)

    def convert(value: Any) -> Decimal:
        result = _to_decimal(value)
        if result.as_tuple().exponent < -scale:  # type: ignore[operator]
            # digits enough for the rounded value (the default context's 28 raised InvalidOperation past them)
            digits = Context(prec=max(28, result.adjusted() + scale + 2))
            result = result.quantize(quantum, rounding=ROUND_HALF_UP, context=digits)
        if result and result.adjusted() + 1 > max_integer_digits:
            raise NotCoercible(value)
        return result

    return convert


def _bounded_int(bits: int) -> Converter:
    """An integer column hinted narrower than 64 bits (smallint, integer) keeps what fits."""
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def convert(value: int) -> int:
        if low <= value <= high:
            return value
        raise NotCoercible(value)

    return convert


def _bounded_text(length: int, inner: Converter) -> Converter:
    """A text column hinted ``precision=n`` (varchar(n)) keeps strings that fit."""
    def convert(value: Any) -> str:
        text = inner(value)
        if len(text) <= length:
            return text
        raise NotCoercible(value)

    return convert


def _naive_utc(inner: Converter) -> Converter:
    """For timestamp columns without time zone: the UTC wall time, offset dropped, in every format."""
    def convert(value: Any) -> datetime | None:
        result = inner(value)
        return result.astimezone(timezone.utc).replace(tzinfo=None) if result and result.tzinfo else result

    return convert


def converter_for(column: Column | str, py_type: type, decimal_default: tuple[int, int] = (38, 9), *,
                  nan_infinity: bool = True) -> Converter:
    """The converter for values of ``py_type`` in ``column`` (a Column, or just its data type);
    ``nan_infinity=False`` where a double column cannot hold NaN or the infinities.

    Raises UnknownType for a type loadbay does not know."""
    if isinstance(column, str):
        column = Column("_", column)
    data_type = column.data_type
    if is_null_type(py_type):
        return NULL
    adapt = adapter_for(py_type)
    if adapt is not None:
        return _adapted(column, py_type, adapt, decimal_default, nan_infinity)
    if data_type == "decimal" and py_type in (Decimal, int, float, str):
        precision = column.precision or decimal_default[0]
        scale = column.scale if column.scale is not None else decimal_default[1]
        return decimal_converter(precision, scale)
    base = _base_converter(data_type, py_type)
    if base is IDENTITY and data_type == "double" and not nan_infinity:
        return FINITE_ONLY
    if base is NOT_COERCIBLE or not column.precision and column.timezone is not False:
        return base
    if data_type == "bigint" and column.precision and column.precision < 64:
        return _bounded_int(column.precision)
    if data_type == "text" and column.precision:
        return _bounded_text(column.precision, base)
    if data_type == "timestamp" and column.timezone is False:
        return _naive_utc(base)
    return base


_SAME_TYPE_ADAPTERS = (bool, int, float, str, bytes)
"""Adapters that are the plain type they make (numpy ints → ``int``, UUIDs → ``str``, ...)."""


def _adapted(column: Column, py_type: type, adapt: Callable[[Any], Any], decimal_default: tuple[int, int],
             nan_infinity: bool) -> Converter:
    """Adapt the value to a plain one, then convert that as the column converts values of its type.

    An adapter that always makes one type (``int`` for numpy's int64, ``str`` for a UUID) is itself the
    converter where that type goes in as it is: one C call per value, a C ``map`` in the batch path.
    Otherwise the converter is looked up per plain type (an enum's members, or a datetime64's NaT,
    may differ in type), and an int past int64 (a uint64, an enum's value) goes to a variant."""
    bigint = column.data_type == "bigint"
    if adapt in _SAME_TYPE_ADAPTERS and not (adapt is int and bigint and not fits_int64(py_type)):
        conv = converter_for(column, adapt, decimal_default, nan_infinity=nan_infinity)
        if conv is IDENTITY or conv is NOT_COERCIBLE:
            return adapt if conv is IDENTITY else NOT_COERCIBLE
        return lambda value: conv(adapt(value))
    inner: dict[type, Converter] = {}

    def convert(value: Any) -> Any:
        plain = adapt(value)
        if plain is None:
            return None
        t = type(plain)
        conv = inner.get(t)
        if conv is None:
            conv = inner[t] = converter_for(column, t, decimal_default, nan_infinity=nan_infinity)
        if conv is IDENTITY:
            if bigint and t is int and not INT64_MIN <= plain <= INT64_MAX:  # a uint64 past int64: a variant
                raise NotCoercible(value)
            return plain
        return conv(plain)

    return convert


def _base_converter(data_type: str, py_type: type) -> Converter:
    table = _COERCIONS[data_type]
    conv = table.get(py_type)
    if conv is not None:
        return conv
    for base, base_conv in table.items():  # subclasses: IntEnum, str enums, pendulum datetimes
        if issubclass(py_type, base) and not (py_type is bool and base is int):
            return base_conv
    return NOT_COERCIBLE
