"""Python values loadbay knows besides the plain ones, and how each becomes a plain value.

Plain values are what rows hold after normalizing and what the writers write: ``str``, ``int``,
``float``, ``bool``, ``Decimal``, ``datetime``, ``date``, ``time``, ``bytes`` and, for json, ``dict``
and ``list`` (``None`` is NULL). Other types a user's rows commonly carry are *adapted* to one of them:

>>> import uuid, enum
>>> plain_value(uuid.UUID(int=1))
'00000000-0000-0000-0000-000000000001'
>>> class Size(enum.IntEnum):
...     BIG = 3
>>> plain_value(Size.BIG), plain_value(frozenset({"b", "a"}))
(3, ['a', 'b'])

- ``uuid.UUID`` → its canonical hyphenated text; ``pathlib.PurePath`` → ``str(path)`` (the spelling of
  its own flavour: a ``PureWindowsPath`` keeps its backslashes, ``Path(text)`` gives it back);
- ``Enum`` (``IntEnum``, str enums, ``Flag``...) → its value, adapted in turn;
- ``set``/``frozenset`` → a list, sorted when its items sort (else by type name and repr), so the
  same set always loads as the same JSON array; ``tuple`` stays a sequence (json);
- ``bytearray``/``memoryview`` → ``bytes``;
- numpy scalars → ``bool``, ``int`` (any width: beyond int64 it is a big int, as in a dict row),
  ``float``, ``str``, ``bytes``; ``numpy.datetime64`` → an aware UTC ``datetime`` (a naive value is
  UTC, as for ``datetime``), or a ``date`` for day, week, month and year units; NaT → None;
- pandas: ``Timestamp`` → ``datetime`` (its time zone kept; nanoseconds beyond the microsecond dropped,
  as timestamps hold microseconds), ``NaT`` and ``NA`` → None.

numpy and pandas stay optional: their types are told by module and name, and numpy's classes are
taken from ``sys.modules`` (a numpy value exists only once numpy is imported). Anything else is
*unknown* (:class:`UnknownType`): loadbay refuses it rather than store a ``repr`` (data loss), and the
normalizer names pipeline, table, column and type. Adapters are found once per Python type and cached.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timezone
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from types import NoneType
from typing import Any
from uuid import UUID

Adapter = Callable[[Any], Any]

PLAIN_TYPES: tuple[type, ...] = (str, bool, int, float, Decimal, datetime, date, time, bytes, dict, list,
                                 tuple, NoneType)
"""Stored as they are (subclasses too, once the adapted kinds below are ruled out)."""


class UnloadableValue(TypeError):
    """A value loadbay cannot store; the normalizer adds pipeline, table, column and item."""


MAX_NESTING_LEVELS = 400
"""Levels of dicts and lists loadbay walks into below a root row (flattening it, hashing it for scd2). Deeper
is an error naming where (a dict that contains itself would otherwise recurse until Python's RecursionError;
Python's default limit is 1,000 frames, and a level costs about one)."""


class NestedTooDeep(UnloadableValue):
    """Dicts and lists nested past ``MAX_NESTING_LEVELS``: a value that contains itself, as a rule. ``index``:
    the item's place in its batch, where the raiser knows it."""

    index: int | None = None


class UnknownType(UnloadableValue):
    """A value of a type loadbay does not know how to store; ``py_type`` names it, ``nested`` says
    whether it was found inside a json value rather than being the column's value itself."""

    def __init__(self, py_type: type, *, nested: bool = False) -> None:
        self.py_type = py_type
        self.nested = nested
        where = " nested in its json value" if nested else ""
        super().__init__(f"cannot load a value of type {type_name(py_type)}{where}")


def type_name(py_type: type) -> str:
    """``module.QualName`` of a type, just ``QualName`` for builtins: what an error shows."""
    module = py_type.__module__
    return py_type.__qualname__ if module == "builtins" else f"{module}.{py_type.__qualname__}"


def is_null_type(py_type: type) -> bool:
    """pandas' ``NaT`` and ``NA``: missing values, NULL in any column (told by name: pandas stays unimported)."""
    return py_type.__name__ in ("NaTType", "NAType") and py_type.__module__.startswith("pandas")


def _null(value: Any) -> None:
    return None


def _enum_value(value: Enum) -> Any:
    return plain_value(value.value)


def _sorted_items(value: set[Any] | frozenset[Any]) -> list[Any]:
    """A set as a list in a stable order: sorted, or by (type name, repr) when its items do not sort."""
    try:
        return sorted(value)
    except TypeError:
        return sorted(value, key=lambda v: (type(v).__qualname__, repr(v)))


def _pandas_timestamp(value: Any) -> datetime:
    return value.to_pydatetime(warn=False)  # type: ignore[no-any-return]


_DAY_UNITS = frozenset({"Y", "M", "W", "D"})


def _datetime64(value: Any) -> datetime | date | str | None:
    np = sys.modules["numpy"]
    if np.isnat(value):
        return None
    if np.datetime_data(value.dtype)[0] in _DAY_UNITS:
        result = value.astype("datetime64[D]").item()
    else:
        result = value.astype("datetime64[us]").item()
        if isinstance(result, datetime):
            return result.replace(tzinfo=timezone.utc)
    if isinstance(result, date):
        return result
    return str(value)  # beyond Python's years 1..9999: ISO text, which no timestamp column takes


def _numpy_adapter(py_type: type) -> Adapter | None:
    """The adapter of a numpy scalar type, or None for one loadbay does not know (complex, timedelta64...)."""
    np = sys.modules.get("numpy")
    if np is None or not issubclass(py_type, np.generic):
        return None
    if issubclass(py_type, np.timedelta64):  # an integer subclass in numpy, but a duration: unknown
        return None
    for base, adapt in ((np.bool_, bool), (np.integer, int), (np.floating, float), (np.str_, str),
                        (np.bytes_, bytes), (np.datetime64, _datetime64)):
        if issubclass(py_type, base):
            return adapt  # type: ignore[no-any-return]
    return None


def fits_int64(py_type: type) -> bool:
    """Whether every value of ``py_type`` fits 64 signed bits: numpy's integer types but uint64."""
    np = sys.modules.get("numpy")
    if np is None or not issubclass(py_type, np.integer):
        return False
    info = np.iinfo(py_type)
    return -(2**63) <= int(info.min) and int(info.max) <= 2**63 - 1


_PLAIN = object()
_UNKNOWN = object()
_ADAPTERS: dict[type, Any] = {t: _PLAIN for t in PLAIN_TYPES}


def _find_adapter(py_type: type) -> Any:
    if is_null_type(py_type):
        return _null
    if issubclass(py_type, Enum):  # before str and int: an IntEnum is an int, but stored as its value
        return _enum_value
    if py_type.__module__.startswith("numpy"):  # before float: numpy's float64 is a float subclass
        return _numpy_adapter(py_type) or _UNKNOWN
    if py_type.__name__ == "Timestamp" and py_type.__module__.startswith("pandas"):
        return _pandas_timestamp
    if issubclass(py_type, UUID):
        return str
    if issubclass(py_type, PurePath):
        return str
    if issubclass(py_type, (set, frozenset)):
        return _sorted_items
    if issubclass(py_type, (bytearray, memoryview)):
        return bytes
    if issubclass(py_type, PLAIN_TYPES):  # subclasses: pendulum datetimes, str subclasses, OrderedDict...
        return _PLAIN
    return _UNKNOWN


def adapter_for(py_type: type) -> Adapter | None:
    """How a value of ``py_type`` becomes a plain value: None when it already is one.

    Raises UnknownType for a type loadbay does not know.
    """
    adapt = _ADAPTERS.get(py_type)
    if adapt is None:
        adapt = _ADAPTERS[py_type] = _find_adapter(py_type)
    if adapt is _PLAIN:
        return None
    if adapt is _UNKNOWN:
        raise UnknownType(py_type)
    return adapt  # type: ignore[no-any-return]


def plain_value(value: Any) -> Any:
    """``value`` as a plain value (see the module docstring); raises UnknownType."""
    adapt = adapter_for(type(value))
    return value if adapt is None else adapt(value)


def is_null(value: Any) -> bool:
    """Whether ``value`` means NULL: None, pandas' NaT or NA, numpy's NaT, an Enum whose value is None."""
    if value is None:
        return True
    try:
        adapt = adapter_for(type(value))
    except UnknownType:
        return False
    return adapt is not None and adapt(value) is None


def json_default(value: Any) -> Any:
    """The ``default`` of orjson (and json) for a value nested in a json value: a plain one it can write.

    orjson writes UUIDs, enums, datetimes and subclasses of str, int, dict and list itself; this gets
    the rest: Decimal as text (every digit kept), bytes as base64, dates and times in ISO format (for
    the stdlib's json, which the writers fall back to for integers beyond 64 bits), and every adapted
    type above (a set becomes a sorted list, a numpy int an int, ...). Raises UnknownType.
    """
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    try:
        plain = plain_value(value)
    except UnknownType as exc:
        raise UnknownType(exc.py_type, nested=True) from None
    if plain is not value:
        return plain
    if isinstance(value, (datetime, date, time)):  # for the stdlib fallback; orjson does these itself
        return value.isoformat()
    for base in (float, int, str, dict, list, tuple):  # a plain subclass the encoder did not take
        if isinstance(value, base):
            return base(value)
    raise UnknownType(type(value), nested=True)
