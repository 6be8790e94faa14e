"""Arrow columns of a parquet load file as lists of bound parameters, one column at a time (the
SQLAlchemy destination's parquet job; any dbapi destination binding Python values may use it).

The values are the ones the SQLAlchemy jsonl job binds for the same rows
(``loadbay.destinations.sqlalchemy.jobs.param_converter``), made with Arrow casts and one ``to_pylist`` per
column instead of a converter call per value: timestamps naive UTC on MySQL/MariaDB, canonical ISO
text on SQLite (which keeps dates, times, timestamps and decimals as text), json as its JSON text,
binary as bytes. What the jsonl job checks per value is checked per column here: the Arrow type
against the column's (``check_type``, once per file) and NaN and ±infinity (no SQLAlchemy dialect
stores them in a double column) by Arrow kernels; json text on SQLite, which stores any text, is
parsed by orjson; only decimals kept as text (wider than Arrow's 76 digits) are checked a value at
a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from loadbay.common import arrow_build
from loadbay.common.schema.types import Column

_UTC_OFFSET, _EMPTY = arrow_build.scalar("+00:00", pa.string()), arrow_build.scalar("", pa.string())


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_binary(t: pa.DataType) -> bool:
    return (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
            or pa.types.is_binary_view(t))


ARROW_KINDS: dict[str, Callable[[pa.DataType], bool]] = {
    "text": _is_text,
    "json": _is_text,
    "bigint": pa.types.is_integer,
    "double": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    "bool": pa.types.is_boolean,
    "timestamp": pa.types.is_timestamp,
    "date": pa.types.is_date,
    "time": pa.types.is_time,
    "decimal": lambda t: pa.types.is_decimal(t) or pa.types.is_integer(t) or _is_text(t),
    "binary": _is_binary,
}
"""Arrow types that hold each loadbay type exactly (decimals wider than Arrow's come as text)."""


class BadValue(ValueError):
    """A value that does not fit its column; ``row`` is its index in the batch."""

    def __init__(self, message: str, row: int) -> None:
        super().__init__(message)
        self.row = row


def check_type(field: pa.Field, column: Column) -> str | None:
    """Why ``field`` cannot load into ``column`` (None when it can): a file of the wrong types fails whole."""
    arrow_type = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    if pa.types.is_null(arrow_type) or ARROW_KINDS[column.data_type](arrow_type):
        return None
    return f"holds {arrow_type} values, which are not {column.data_type}"


def file_columns_problem(schema: pa.Schema, table_columns: dict[str, Column]) -> tuple[str | None, str] | None:
    """Why a file of ``schema`` cannot load into a table of ``table_columns``: (None, ...) for columns the table has
    not (the file belongs to another schema version or was edited by hand), (column, ...) for a column whose Arrow
    type it cannot hold; None when it can load."""
    unknown = [name for name in schema.names if name not in table_columns]
    if unknown:
        return None, f"the file has columns {unknown} the table has not"
    for field in schema:
        if problem := check_type(field, table_columns[field.name]):
            return field.name, problem
    return None


def _first(mask: pa.Array) -> int:
    return int(pc.index(mask, arrow_build.TRUE).as_py())


def _text(array: pa.Array) -> pa.Array:
    return array.cast(pa.string()) if not pa.types.is_string(array.type) else array


def _utc_wall(array: pa.Array) -> pa.Array:
    """Aware timestamps as naive UTC wall times (the same instants: a zero-copy view), in microseconds."""
    return array.cast(pa.timestamp("us", tz=array.type.tz)).cast(pa.timestamp("us"))


ISO_MICROS_LENGTH = len("2024-01-02 03:04:05.123456")
"""Arrow's text of a microsecond timestamp in years 1 to 9999 (every year a Python datetime holds)."""


def _sqlite_timestamps(array: pa.Array) -> list[Any]:
    """``2024-01-02T03:04:05.123456+00:00``, what ``datetime.isoformat(timespec="microseconds")`` writes: Arrow's
    cast to text (``2024-01-02 03:04:05.123456``, ASCII of a fixed width) with the ``T`` and the offset put in
    by byte position, eight times faster than ``strftime``, which stays for text of another width."""
    text = _utc_wall(array).cast(pa.string())
    lengths = pc.min_max(pc.binary_length(text)).as_py()
    if lengths["min"] not in (None, ISO_MICROS_LENGTH) or lengths["max"] not in (None, ISO_MICROS_LENGTH):
        text = pc.strftime(_utc_wall(array), format="%Y-%m-%dT%H:%M:%S")  # %S carries the microseconds
        return pc.binary_join_element_wise(text, _UTC_OFFSET, _EMPTY).to_pylist()  # type: ignore[no-any-return]
    text = pc.binary_replace_slice(text, start=10, stop=11, replacement="T")
    return pc.binary_replace_slice(text, start=ISO_MICROS_LENGTH, stop=ISO_MICROS_LENGTH,  # type: ignore[no-any-return]
                                   replacement="+00:00").to_pylist()


def _sqlite_times(array: pa.Array) -> list[Any]:
    """``13:14:15`` or ``13:14:15.000004``, what ``time.isoformat()`` writes."""
    text = array.cast(pa.time64("us")).cast(pa.string())
    return pc.replace_substring_regex(text, pattern=r"\.000000$", replacement="").to_pylist()  # type: ignore[no-any-return]


def finite(array: pa.Array) -> pa.Array:
    """NaN and ±infinity have no place in a double column of these dialects (the jsonl job refuses them too)."""
    array = array.cast(pa.float64())
    bad = pc.invert(pc.is_finite(array))
    if pc.any(bad).as_py():
        row = _first(bad)
        raise BadValue(f"{array[row].as_py()!r} is not a finite double", row)
    return array


def _decimal_text(array: pa.Array) -> list[Any]:
    """Decimals kept as text (wider than Arrow's): each must parse as a finite decimal."""
    from decimal import Decimal, InvalidOperation

    values = array.to_pylist()
    out: list[Any] = []
    for row, value in enumerate(values):
        if value is None:
            out.append(None)
            continue
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise BadValue(f"{value!r:.60} is not a finite decimal", row)
        out.append(number)
    return out


def _json_checked(array: pa.Array) -> list[Any]:
    """The JSON texts of a json column, each parsed once by orjson (SQLite would store any text)."""
    loads = orjson.loads
    try:
        list(map(loads, array.drop_null().to_pylist()))
    except orjson.JSONDecodeError:
        for row, value in enumerate(array.to_pylist()):
            if value is not None:
                try:
                    loads(value)
                except orjson.JSONDecodeError as exc:
                    raise BadValue(f"{value!r:.60} is not JSON ({exc})", row) from exc
    return array.to_pylist()  # type: ignore[no-any-return]


def _integer_decimals(array: pa.Array) -> pa.Array:
    """Integers as exact decimals (unsigned 64-bit ones need 20 digits)."""
    if not pa.types.is_integer(array.type):
        return array
    return array.cast(pa.decimal128(38, 0) if pa.types.is_signed_integer(array.type) else pa.decimal128(20, 0))


def _decimals(array: pa.Array) -> list[Any]:
    """Decimal objects: from decimal or integer columns by Arrow, from text (wider than Arrow) checked each."""
    array = _integer_decimals(array)
    return array.to_pylist() if pa.types.is_decimal(array.type) else _decimal_text(array)  # type: ignore[no-any-return]


def _sqlite_decimals(array: pa.Array) -> list[Any]:
    """Decimals as their exact text (SQLite's NUMERIC would round them to a double)."""
    array = _integer_decimals(array)
    if pa.types.is_decimal(array.type):
        return array.cast(pa.string()).to_pylist()  # type: ignore[no-any-return]
    return [None if v is None else str(v) for v in _decimal_text(array)]


VALUES: dict[str, Callable[[pa.Array], list[Any]]] = {
    "double": lambda a: finite(a).to_pylist(),
    "bigint": lambda a: a.cast(pa.int64()).to_pylist(),
    "decimal": _decimals,
    "json": lambda a: _text(a).to_pylist(),
}
"""The parameters of a column by its loadbay type; any other type: ``to_pylist`` as it is."""

FAMILY_VALUES: dict[str, dict[str, Callable[[pa.Array], list[Any]]]] = {
    "sqlite": {  # SQLite keeps these as text: the jsonl job's canonical forms
        "json": lambda a: _json_checked(_text(a)), "timestamp": _sqlite_timestamps, "time": _sqlite_times,
        "date": lambda a: a.cast(pa.string()).to_pylist(), "decimal": _sqlite_decimals,
    },
    "mysql": {"timestamp": lambda a: _utc_wall(a).to_pylist()},  # DATETIME has no time zone: the UTC wall time
}
"""What a database family binds differently (the SQLAlchemy client's ``family``)."""


def column_values(array: pa.Array, column: Column, family: str) -> list[Any]:
    """The parameters of one column (``check_type`` passed): Python values, or text on SQLite."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_null(array.type):
        return [None] * len(array)
    convert = FAMILY_VALUES.get(family, {}).get(column.data_type) or VALUES.get(column.data_type)
    return convert(array) if convert is not None else array.to_pylist()  # type: ignore[no-any-return]
