"""Whole Arrow columns converted to a schema column's type, with the values that do not fit marked.

``convert`` is the Arrow twin of the dict path's converters (``schema.inference``): it returns the
column's values in their load-file type (``arrow_types.storage_type``) and a mask of the values that
cannot take the column's type, which the normalizer sends to a variant column, as the dict path does
value by value. The common cases are one Arrow cast (or none); ISO text parses with Arrow's own
parser behind the dict path's pattern. Conversions that only a type change across runs brings (a
float arriving in a text column, text in a decimal column, ...) go through the dict path's own
converters value by value, which keeps them exact without a second implementation.
``variant_types`` says which variant column each failing value goes to, as ``infer_data_type`` would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loadbay.common import arrow_build, arrow_json
from loadbay.common.arrow_shapes import uniform_shape
from loadbay.common.arrow_types import ISO_DATE, ISO_DATETIME, KIND_TYPES, new_column_type, storage_type
from loadbay.common.schema.inference import (INT64_MAX, NAT_TEXT, NOT_COERCIBLE, NotCoercible, converter_for,
                                     infer_data_type, parse_date, parse_datetime)
from loadbay.common.schema.types import Column
from loadbay.common.storage.writers import dumps_json

_TEXT = {text: arrow_build.scalar(text, pa.string())
         for text in ("true", "false", "NaN", "Infinity", "-Infinity", "Z", "", NAT_TEXT)}
"""Text scalars the conversions put in (made once: a Python str handed to a kernel makes pyarrow import pandas)."""

Mask = pa.BooleanArray
"""True where a non-null value cannot take the column's type (its place in the result is null)."""

_PY_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "text": str, "binary": bytes,
                              "date": date, "timestamp": datetime, "time": time, "decimal": Decimal,
                              "json": dict, "struct": dict, "list": list}
"""The Python type the dict path sees for values of each kind (it decides what converts)."""
_UTC = pa.timestamp("us", "UTC")
_ISO_DATETIME, _ISO_DATE = re.compile(ISO_DATETIME.encode()), re.compile(ISO_DATE.encode())
"""The patterns for ``uniform_shape`` (bytes: ``\\d`` is ``[0-9]`` as in RE2, which Arrow's kernel uses)."""


@dataclass(frozen=True)
class Rules:
    """The destination facts conversions depend on (copied from the normalizer)."""

    decimal_default: tuple[int, int]
    max_decimal_precision: int
    nan_infinity: bool


def convert(array: pa.Array, kind: str, column: Column, rules: Rules) -> tuple[pa.Array, Mask | None]:
    """``array`` (of ``kind``) as values of ``column``, and the mask of those that do not fit (None: all fit)."""
    target = column.data_type
    storage = storage_type(column, rules.decimal_default)
    if target == "json":
        if kind in ("json", "struct", "list", "text", "int", "float", "bool", "decimal", "python"):
            return to_json(array, kind), None
        return _all_fail(array, storage)
    if kind == "python" or pa.types.is_string(storage) and target == "decimal":  # decimals wider than Arrow
        return _per_value(array, column, storage, rules)
    if converter_for(column, _PY_TYPES[kind]) is NOT_COERCIBLE:  # e.g. text into bigint: the whole column
        return _all_fail(array, storage)
    vectorized = _VECTORIZED.get((kind, target))
    if vectorized is not None:
        try:
            return vectorized(array, column, storage, rules)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a value Arrow refuses: decide one by one
            pass
    return _per_value(array, column, storage, rules)


# -- the common conversions, a few Arrow kernels each ---------------------------------------------------

def _cast(array: pa.Array, storage: pa.DataType) -> pa.Array:
    return array if array.type == storage else array.cast(storage)


def _ints(array: pa.Array, column: Column, storage: pa.DataType, rules: Rules) -> tuple[pa.Array, Mask | None]:
    """Integers into bigint: uint64 values past int64, and values past a narrower hinted width, do not fit."""
    bits = column.precision if column.precision and column.precision < 64 else 64
    failed = None
    if bits < 64:
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        failed = pc.or_(pc.less(array, low), pc.greater(array, high))
    elif pa.types.is_uint64(array.type):
        failed = pc.greater(array, arrow_build.scalar(INT64_MAX, array.type))
    return _apply(array, failed, storage)


def _cast_to_text(array: pa.Array, column: Column, storage: pa.DataType,
                  rules: Rules) -> tuple[pa.Array, Mask | None]:
    """Integers and dates, whose Arrow text is their Python ``str`` / ``isoformat``."""
    return _bounded_text(array.cast(pa.string()), column)


def _texts(array: pa.Array, column: Column, storage: pa.DataType, rules: Rules) -> tuple[pa.Array, Mask | None]:
    return _bounded_text(_cast(array, pa.string()), column)


def _bounded_text(text: pa.Array, column: Column) -> tuple[pa.Array, Mask | None]:
    """A text column hinted ``precision=n`` (varchar(n)) keeps the strings of at most n characters."""
    if not column.precision:
        return text, None
    return _apply(text, pc.greater(pc.utf8_length(text), column.precision), pa.string())


def _bools_to_text(array: pa.Array, column: Column, storage: pa.DataType,
                   rules: Rules) -> tuple[pa.Array, Mask | None]:
    return _bounded_text(pc.if_else(array, _TEXT["true"], _TEXT["false"]), column)


def _floats(array: pa.Array, column: Column, storage: pa.DataType, rules: Rules) -> tuple[pa.Array, Mask | None]:
    """Floats into double; where the destination stores no NaN or infinity those do not fit."""
    values = _cast(array, pa.float64())
    if rules.nan_infinity or not values.null_count < len(values):
        return values, None
    return _apply(values, pc.invert(pc.is_finite(values)), pa.float64())


def _non_finite_text(array: pa.Array, column: Column, storage: pa.DataType,
                     rules: Rules) -> tuple[pa.Array, Mask | None]:
    """NaN and infinities (a double column's variant) spelled 'NaN', 'Infinity', '-Infinity'; other floats
    take the dict path's repr, value by value."""
    values = _cast(array, pa.float64())
    if pc.any(pc.is_finite(values)).as_py():
        raise pa.ArrowInvalid("finite floats: repr them one by one")
    text = pc.if_else(pc.is_nan(values), _TEXT["NaN"],
                      pc.if_else(pc.greater(values, arrow_build.scalar(0, values.type)), _TEXT["Infinity"],
                                 _TEXT["-Infinity"]))
    return _bounded_text(text, column)


def _timestamps(array: pa.Array, column: Column, storage: pa.DataType,
                rules: Rules) -> tuple[pa.Array, Mask | None]:
    return timestamps_utc(array, storage), None


def timestamps_utc(array: pa.Array, storage: pa.DataType = _UTC) -> pa.Array:
    """Timestamps of any unit and zone as microseconds in UTC (naive ones are UTC wall time, as the
    dict path takes naive datetimes); nanoseconds are dropped (floored, so times before 1970 do not
    move forward). ``storage`` may be naive: UTC wall time."""
    unit = array.type.unit
    if array.type.tz is None:  # a cast to a zone reinterprets naive values as UTC
        array = array.cast(pa.timestamp(unit, "UTC"))
    return _cast(_cast(floor_nanoseconds(array), _UTC), storage)


def floor_nanoseconds(array: pa.Array) -> pa.Array:
    """Nanosecond timestamps floored to whole microseconds in the microsecond type (a plain cast truncates
    toward 1970: 1938-04-24 22:13:19.999999999 would become ...:20.000000); other units as they are."""
    t = array.type
    if t.unit != "ns":
        return array
    earliest = pc.min(array.cast(pa.int64())).as_py()
    if earliest is None or earliest >= 0:  # from 1970 on truncating is flooring, and 20 times faster
        return array.cast(pa.timestamp("us", t.tz), safe=False)
    if t.tz is not None:  # floored in UTC: no local time, so no ambiguous or missing hour to refuse
        array = array.cast(pa.timestamp("ns", "UTC"))
    return pc.floor_temporal(array, unit="microsecond").cast(pa.timestamp("us", array.type.tz)).cast(
        pa.timestamp("us", t.tz))


def _dates_to_timestamps(array: pa.Array, column: Column, storage: pa.DataType,
                         rules: Rules) -> tuple[pa.Array, Mask | None]:
    return array.cast(pa.date32()).cast(_UTC).cast(storage), None


def _to_storage(array: pa.Array, column: Column, storage: pa.DataType,
                rules: Rules) -> tuple[pa.Array, Mask | None]:
    """Same kind, another width or unit (binary, date, time, decimal, int to double): one safe cast;
    a value it refuses (too many digits for a decimal, a nanosecond fraction) sends the column value by value."""
    if pa.types.is_decimal(array.type) and pa.types.is_decimal(storage) and array.type.scale > storage.scale:
        array = pc.round(array, ndigits=storage.scale, round_mode="half_towards_infinity")  # ROUND_HALF_UP
    elif pa.types.is_time64(array.type) and array.type.unit == "ns":  # times hold microseconds: truncated
        array = array.cast(pa.time64("us"), safe=False)
    return _cast(array, storage), None


def _text_to_timestamps(array: pa.Array, column: Column, storage: pa.DataType,
                        rules: Rules) -> tuple[pa.Array, Mask | None]:
    parsed, ok = parse_timestamps(array)
    return _parsed(array, parsed.cast(storage), ok)


def _text_to_dates(array: pa.Array, column: Column, storage: pa.DataType,
                   rules: Rules) -> tuple[pa.Array, Mask | None]:
    parsed, ok = parse_dates(array)
    return _parsed(array, parsed, ok)


def _parsed(array: pa.Array, parsed: pa.Array, ok: Mask) -> tuple[pa.Array, Mask | None]:
    """Text that parsed, and as failures the rest except "NaT" (a missing pandas value: NULL)."""
    if ok.true_count == len(array) - array.null_count:  # every value parsed: no comparison with "NaT"
        return parsed, None
    failed = pc.and_(pc.invert(ok), pc.not_equal(array, _TEXT[NAT_TEXT]))
    return parsed, failed if pc.any(failed).as_py() else None


_VECTORIZED = {
    ("int", "bigint"): _ints, ("int", "double"): _to_storage, ("int", "text"): _cast_to_text,
    ("int", "decimal"): _to_storage, ("float", "double"): _floats, ("float", "text"): _non_finite_text,
    ("bool", "bool"): _to_storage, ("bool", "text"): _bools_to_text, ("text", "text"): _texts,
    ("text", "timestamp"): _text_to_timestamps, ("text", "date"): _text_to_dates,
    ("binary", "binary"): _to_storage, ("date", "date"): _to_storage, ("date", "timestamp"): _dates_to_timestamps,
    ("date", "text"): _cast_to_text, ("timestamp", "timestamp"): _timestamps, ("timestamp", "date"): _to_storage,
    ("time", "time"): _to_storage, ("decimal", "decimal"): _to_storage,
}


# -- ISO text ------------------------------------------------------------------------------------------

def parse_timestamps(array: pa.Array) -> tuple[pa.Array, Mask]:
    """ISO 8601 text → UTC timestamps exactly where ``inference.parse_datetime`` parses, and the mask
    of the values that parsed. Arrow parses what the dict path's pattern lets through once the text
    is brought into a form it reads (a zone, at most 6 fraction digits: the dict path truncates);
    a value it still refuses (Feb 30) makes the column parse value by value."""
    text = _cast(array, pa.string())
    if uniform_shape(text, _ISO_DATETIME):  # every value matches: no regex per value
        candidates = text
    else:
        matches = pc.fill_null(pc.match_substring_regex(text, ISO_DATETIME), arrow_build.FALSE)
        if not pc.any(matches).as_py():
            return pa.nulls(len(text), _UTC), matches
        candidates = pc.if_else(matches, text, arrow_build.scalar(None, pa.string()))
    candidates = _without_year_zero(candidates)
    try:
        parsed = candidates.cast(_UTC)
    except pa.ArrowInvalid:
        parsed = _canonical_timestamps(candidates)
    return parsed, pc.fill_null(parsed.is_valid(), arrow_build.FALSE)


def _canonical_timestamps(candidates: pa.Array) -> pa.Array:
    text = pc.replace_substring_regex(candidates, "z$", "Z")
    text = pc.replace_substring_regex(text, r"(\.\d{6})\d+", r"\1")
    zoned = pc.match_substring_regex(text, r"(Z|[+-]\d{2}(:?\d{2})?)$")
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, _TEXT["Z"], _TEXT[""]))
    try:
        return text.cast(_UTC)
    except pa.ArrowInvalid:
        return pa.array([_try(parse_datetime, v) for v in candidates.to_pylist()], _UTC)


def parse_dates(array: pa.Array) -> tuple[pa.Array, Mask]:
    """ISO dates (``YYYY-MM-DD`` only, as ``inference.parse_date``) → date32, and the mask of those that parsed."""
    text = _cast(array, pa.string())
    if uniform_shape(text, _ISO_DATE):
        candidates = text
    else:
        matches = pc.fill_null(pc.match_substring_regex(text, ISO_DATE), arrow_build.FALSE)
        if not pc.any(matches).as_py():
            return pa.nulls(len(text), pa.date32()), matches
        candidates = pc.if_else(matches, text, arrow_build.scalar(None, pa.string()))
    candidates = _without_year_zero(candidates)
    try:
        parsed = candidates.cast(pa.date32())
    except pa.ArrowInvalid:
        parsed = pa.array([_try(parse_date, v) for v in candidates.to_pylist()], pa.date32())
    return parsed, pc.fill_null(parsed.is_valid(), arrow_build.FALSE)


def _without_year_zero(text: pa.Array) -> pa.Array:
    """``text`` without the values of year 0000, which Arrow parses (as 1 BC) and Python's dates, so the dict
    path, refuse: they stay text (a variant), as there."""
    zero = pc.starts_with(text, "0000")
    if not pc.any(zero).as_py():
        return text
    return pc.if_else(zero, arrow_build.scalar(None, pa.string()), text)


def _try(parse: Any, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse(value)
    except NotCoercible:
        return None


# -- json ----------------------------------------------------------------------------------------------

def to_json(array: pa.Array, kind: str) -> pa.Array:
    """JSON text of each value, written by the dict path's own serializer (one call per value: json columns
    only) so both paths store the same text. The json extension type already holds JSON text."""
    if isinstance(array.type, pa.JsonType):
        return array.storage.cast(pa.string())
    if arrow_json.is_json_values(array.type):  # already the text dumps_json writes
        return array.storage
    values = array.to_pylist()
    if pa.types.is_map(array.type):
        values = [None if v is None else dict(v) for v in values]
    return pa.array([None if v is None else dumps_json(v) for v in values], pa.string())


# -- value by value ------------------------------------------------------------------------------------

def python_values(array: pa.Array) -> list[Any]:
    """The values as the dict path would get them (microsecond datetimes and times, not pandas objects)."""
    t = array.type
    if pa.types.is_timestamp(t):
        array = floor_nanoseconds(array)
    elif pa.types.is_time64(t) and t.unit == "ns":
        array = array.cast(pa.time64("us"), safe=False)
    return array.to_pylist()


def _per_value(array: pa.Array, column: Column, storage: pa.DataType,
               rules: Rules) -> tuple[pa.Array, Mask | None]:
    """The dict path's converters, value by value: for conversions only a type change brings."""
    converters: dict[type, Any] = {}
    check_range = column.data_type == "bigint"
    out: list[Any] = []
    failed: list[bool] = []
    for value in python_values(array):
        if value is None:
            out.append(None)
            failed.append(False)
            continue
        t = type(value)
        conv = converters.get(t)
        if conv is None:
            conv = converters[t] = converter_for(column, t, rules.decimal_default, nan_infinity=rules.nan_infinity)
        try:
            result = conv(value)
            if check_range and t is int and not -INT64_MAX - 1 <= result <= INT64_MAX:
                raise NotCoercible(value)
        except NotCoercible:
            out.append(None)
            failed.append(True)
            continue
        out.append(str(result) if pa.types.is_string(storage) and isinstance(result, Decimal) else result)
        failed.append(False)
    mask = arrow_build.bools(np.array(failed, dtype=bool))
    return pa.array(out, storage), mask if any(failed) else None


def _all_fail(array: pa.Array, storage: pa.DataType) -> tuple[pa.Array, Mask | None]:
    failed = pc.fill_null(array.is_valid(), arrow_build.FALSE) if array.null_count < len(array) else None
    return pa.nulls(len(array), storage), failed


def _apply(array: pa.Array, failed: Mask | None, storage: pa.DataType) -> tuple[pa.Array, Mask | None]:
    """``array`` cast to ``storage`` with the failing values nulled first."""
    if failed is not None:
        failed = pc.fill_null(failed, arrow_build.FALSE)
        if not pc.any(failed).as_py():
            failed = None
        else:
            array = pc.if_else(failed, arrow_build.scalar(None, array.type), array)
    return _cast(array, storage), failed


# -- where failing values go -----------------------------------------------------------------------------

def variant_types(array: pa.Array, kind: str, column: Column,
                  rules: Rules) -> list[tuple[str, dict[str, Any], Mask, bool]]:
    """``(data_type, extra hints, mask, non_finite)`` per variant column the non-null values of ``array``
    (values that did not fit ``column``) go to: each value's own type as ``infer_data_type`` gives it,
    text where that is the column's type (a too-wide value) or a non-finite float without a double
    for it (``non_finite``). Values of one type share a variant column."""
    groups: list[tuple[str, dict[str, Any], Mask, bool]] = []
    valid = pc.fill_null(array.is_valid(), arrow_build.FALSE)
    if kind == "text":
        is_ts = parse_timestamps(array)[1]
        is_date = pc.and_(parse_dates(array)[1], pc.invert(is_ts))
        groups = [("timestamp", {}, is_ts, False), ("date", {}, is_date, False),
                  ("text", {}, pc.and_(valid, pc.invert(pc.or_(is_ts, is_date))), False)]
    elif kind == "int" and pa.types.is_uint64(array.type):
        big = pc.fill_null(pc.greater(array, arrow_build.scalar(INT64_MAX, array.type)), arrow_build.FALSE)
        wide = pc.fill_null(pc.greater_equal(array, arrow_build.scalar(10 ** rules.max_decimal_precision, array.type)), arrow_build.FALSE) \
            if rules.max_decimal_precision < 20 else arrow_build.bools(np.zeros(len(array), dtype=bool))
        groups = [("bigint", {}, pc.and_(valid, pc.invert(big)), False),
                  ("decimal", {"precision": rules.max_decimal_precision, "scale": 0},
                   pc.and_(big, pc.invert(wide)), False),
                  ("text", {}, wide, False)]
    elif kind == "float":
        non_finite = pc.and_(valid, pc.invert(pc.fill_null(pc.is_finite(array.cast(pa.float64())), arrow_build.TRUE)))
        finite = pc.and_(valid, pc.invert(non_finite))
        groups = [("double", {}, finite, False), ("double", {}, non_finite, not rules.nan_infinity)]
    elif kind == "python":
        groups = _python_groups(array, rules)
    elif kind == "decimal":
        groups = [(*new_column_type(array, kind, rules.max_decimal_precision, rules.decimal_default), valid, False)]
    else:
        groups = [(KIND_TYPES[kind], {}, valid, False)]
    out: dict[str, tuple[str, dict[str, Any], Mask, bool]] = {}
    for data_type, extra, mask, non_finite in groups:
        if not pc.any(mask).as_py():
            continue
        if data_type == column.data_type or non_finite:
            data_type, extra = "text", {}
        if data_type in out:
            kept = out[data_type]
            out[data_type] = (data_type, kept[1], pc.or_(kept[2], mask), kept[3] or non_finite)
        else:
            out[data_type] = (data_type, extra, mask, non_finite)
    return list(out.values())


def _python_groups(array: pa.Array, rules: Rules) -> list[tuple[str, dict[str, Any], Mask, bool]]:
    types: list[str | None] = []
    extras: dict[str, dict[str, Any]] = {}
    for value in python_values(array):
        if value is None:
            types.append(None)
            continue
        data_type, extra = infer_data_type(value, rules.max_decimal_precision)
        extras.setdefault(data_type, extra)
        types.append(data_type)
    names = np.array([t or "" for t in types], dtype=object)
    return [(t, extras[t], arrow_build.bools(names == t), False) for t in extras]


def sample(array: pa.Array, mask: Mask) -> Any:
    """The first value of ``array`` under ``mask``, for a message."""
    return array.filter(mask)[0].as_py()
