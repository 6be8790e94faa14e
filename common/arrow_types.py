"""Arrow types seen as loadbay types: what kind of values an Arrow column holds, decided once per column.

The Arrow normalizer asks two questions of every column, never of every value: what *kind* of values
it holds (``kind_of``), and which loadbay type a new column of that kind gets (``new_column_type``).
Kinds group the Arrow types that load alike::

    int       int8 … int64, uint8 … uint64             bigint (uint64 past int64: see below)
    float     float16, float32, float64                 double
    bool      bool                                      bool
    text      string, large_string, string_view         text, or timestamp / date (ISO text, as the dict path)
    binary    binary, large_binary, fixed_size_binary,  binary
              binary_view
    date      date32, date64                            date
    timestamp timestamp (with a time zone or naive:     timestamp (naive values are UTC wall time)
              naive values are taken as UTC)
    time      time32, time64                            time
    decimal   decimal32 … decimal256                    the destination's default decimal where the Arrow
                                                        type fits it, else decimal(precision, scale); text
                                                        when wider than max_decimal_precision (a negative
                                                        scale: scale 0, the same integers)
    duration  duration                                  bigint: microseconds (exact, sortable, summable;
                                                        the dict path refuses a timedelta value)
    uuid      the uuid extension type                   text, canonical 8-4-4-4-12 hex
    json      map, union, the json extension type       json
    numbers   JsonNumbers: JSON ints and floats in one  each part as its kind (``arrow_json.parts``),
              column (the JSON reader makes it)         the first value's first, as the dict path
    python    JsonValues (JSON objects as written),     decided value by value, as the dict path does
              anything else (intervals, ...)
    struct    struct                                    flattened to parent__child columns
    list      list, large_list, fixed_size_list,        a child table
              list_view, large_list_view
    null      null                                      no column (a key that was only ever None)

Dictionary (pandas categoricals) and run-end encoded arrays are decoded to their value type first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loadbay.common import arrow_build, arrow_json
from loadbay.common.arrow_build import first_true
from loadbay.common.schema.inference import INT64_MAX, infer_data_type
from loadbay.common.schema.types import Column

if TYPE_CHECKING:
    from loadbay.common.capabilities import DestinationCapabilities

MAX_ARROW_DECIMAL_PRECISION = 76
"""Widest decimal Arrow holds (decimal256); wider decimal columns are stored as exact text."""

ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)?$"
"""The dict path's ISO 8601 timestamp pattern (``inference._ISO_DATETIME``), in RE2 syntax for Arrow."""
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"

_STORAGE: dict[str, Any] = {
    "text": pa.string(), "bigint": pa.int64(), "double": pa.float64(), "bool": pa.bool_(),
    "date": pa.date32(), "time": pa.time64("us"), "json": pa.string(), "binary": pa.binary(),
}


def storage_type(column: Column, decimal_default: tuple[int, int]) -> pa.DataType:
    """The Arrow type a column's values have in a load file (json as JSON text, decimals wider than
    Arrow as exact text, timestamps as UTC microseconds; naive where the column is hinted so)."""
    t = column.data_type
    if t == "decimal":
        p = column.precision or decimal_default[0]
        s = column.scale if column.scale is not None else decimal_default[1]
        if p > MAX_ARROW_DECIMAL_PRECISION:
            return pa.string()
        return pa.decimal128(p, s) if p <= 38 else pa.decimal256(p, s)
    if t == "timestamp":
        return pa.timestamp("us", tz="UTC" if column.timezone is not False else None)
    return _STORAGE[t]


def plain(array: Any) -> pa.Array:
    """``array`` as one contiguous array of a non-encoded type: chunks combined, dictionaries and
    run-end encoding decoded, view types in their classic layout, decimals of negative scale at scale 0,
    extension types other than uuid, json and loadbay's own as their storage."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    t = array.type
    if isinstance(t, pa.BaseExtensionType) and not isinstance(t, (pa.JsonType, pa.UuidType)) \
            and arrow_json.kind(t) is None:  # another library's type: its values are its storage's
        return plain(array.storage)
    if pa.types.is_dictionary(t):
        return plain(array.dictionary_decode())
    if pa.types.is_run_end_encoded(t):
        return plain(pc.run_end_decode(array))
    if pa.types.is_string_view(t):
        return array.cast(pa.string())
    if pa.types.is_binary_view(t):
        return array.cast(pa.binary())
    if pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return _list_from_view(array)
    if pa.types.is_decimal(t) and t.scale < 0:
        return _scale_zero(array)
    return array


def _list_from_view(array: pa.Array) -> pa.Array:
    """A (large) list view as a (large) list of the same values. Arrow's own cast is wrong for views whose
    sizes do not match the next offset (a null view over values, a slice, out-of-order views: rows lost or
    an invalid array), so the list is rebuilt from the views' values in row order and their lengths."""
    large = pa.types.is_large_list_view(array.type)
    lengths = pc.list_value_length(array)
    lengths = arrow_build.to_numpy(pc.fill_null(lengths, arrow_build.scalar(0, lengths.type))).astype(np.int64)
    offsets = np.zeros(len(array) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    value_field = array.type.value_field
    build, list_type, offset_type = ((pa.LargeListArray, pa.large_list(value_field), pa.int64()) if large
                                     else (pa.ListArray, pa.list_(value_field), pa.int32()))
    mask = array.is_null() if array.null_count else None
    result = build.from_arrays(arrow_build.numbers(offsets, offset_type), pc.list_flatten(array), type=list_type, mask=mask)
    result.validate()
    return result


def _scale_zero(array: pa.Array) -> pa.Array:
    """A decimal of negative scale (``decimal(5, -2)`` holds 1234500) as the same integers at scale 0: no
    database and no parquet file takes a negative scale. Past Arrow's widest decimal, exact text."""
    t = array.type
    precision = t.precision - t.scale
    if precision > MAX_ARROW_DECIMAL_PRECISION:
        return pa.array([None if v is None else format(v, "f") for v in array.to_pylist()], pa.string())
    return array.cast(pa.decimal128(precision, 0) if precision <= 38 else pa.decimal256(precision, 0))


_KIND_TESTS: tuple[tuple[Callable[[pa.DataType], bool], str], ...] = (
    (pa.types.is_null, "null"), (pa.types.is_boolean, "bool"), (pa.types.is_integer, "int"),
    (pa.types.is_floating, "float"), (pa.types.is_string, "text"), (pa.types.is_large_string, "text"),
    (pa.types.is_binary, "binary"), (pa.types.is_large_binary, "binary"), (pa.types.is_fixed_size_binary, "binary"),
    (pa.types.is_timestamp, "timestamp"), (pa.types.is_date, "date"), (pa.types.is_time, "time"),
    (pa.types.is_decimal, "decimal"), (pa.types.is_duration, "duration"), (pa.types.is_struct, "struct"),
    (pa.types.is_list, "list"), (pa.types.is_large_list, "list"), (pa.types.is_fixed_size_list, "list"),
    (pa.types.is_map, "json"), (pa.types.is_union, "json"),
)
"""Arrow type test → kind, first match wins (a ``plain`` array's type; anything else is "python")."""


def kind_of(t: pa.DataType) -> str:
    """The kind of an Arrow type (see the module docstring); ``t`` is a ``plain`` array's type."""
    if isinstance(t, pa.BaseExtensionType):
        own = arrow_json.kind(t)
        if own is not None:
            return own
        if isinstance(t, pa.JsonType):
            return "json"
        if isinstance(t, pa.UuidType):
            return "uuid"
        return kind_of(t.storage_type)
    for is_kind, kind in _KIND_TESTS:
        if is_kind(t):
            return kind
    return "python"


KIND_TYPES = {"int": "bigint", "float": "double", "bool": "bool", "text": "text", "binary": "binary",
              "date": "date", "timestamp": "timestamp", "time": "time", "duration": "bigint", "uuid": "text",
              "json": "json", "struct": "json", "list": "json"}
"""The loadbay type of each kind (before the per-column refinements of ``new_column_type``)."""


def new_column_type(array: pa.Array, kind: str, max_decimal_precision: int,
                    decimal_default: tuple[int, int]) -> tuple[str, dict[str, Any]]:
    """Type and extra hints (precision, scale) of a new column for a non-empty ``array`` of ``kind``.

    Where the dict path decides by the first value, so does this (one value, never a scan): ISO text
    is a timestamp or a date, and a uint64 column whose first value passes int64 is a decimal.
    A decimal column is the destination's default decimal (``decimal_default``), as the dict path
    makes it, when every value of the Arrow type fits it unrounded; otherwise it takes the Arrow
    precision and scale (text past ``max_decimal_precision``), so no value is ever rounded.
    """
    if kind == "decimal":
        p, s = array.type.precision, array.type.scale
        default_p, default_s = decimal_default
        if s <= default_s and p - s <= default_p - default_s:
            return "decimal", {}
        return ("text", {}) if p > max_decimal_precision else ("decimal", {"precision": p, "scale": s})
    if kind in ("text", "python") or (kind == "int" and pa.types.is_uint64(array.type)):
        first = first_value(array)
        if kind == "int" and first <= INT64_MAX:
            return "bigint", {}
        return infer_data_type(first, max_decimal_precision)
    return KIND_TYPES[kind], {}


def first_value(array: pa.Array) -> Any:
    """The first non-null value of ``array`` as a Python object (``array`` has one)."""
    return array[first_true(array.is_valid())].as_py()


def arrow_type(column: Column, capabilities: DestinationCapabilities) -> Any:
    """The Arrow type of ``column`` in parquet files: ``arrow_types.storage_type``, which the Arrow
    normalizer converts to as well (json as JSON text, decimals wider than Arrow as exact text)."""
    return storage_type(column, capabilities.decimal_precision)
