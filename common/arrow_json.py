"""Arrow extension types the JSON reader hands on to keep what ``json.loads`` gives where no plain Arrow
type can: ``JsonNumbers`` (ints and floats in one column) and ``JsonValues`` (objects and arrays as they were
written, for json columns).

``JsonNumbers``:

A JSON key may hold ``10`` in one row and ``10.5`` in the next (JavaScript writes ``10.0`` as ``10``).
``json.loads`` makes an ``int`` of the first and a ``float`` of the second, and the dict path types them
apart: the first value's kind makes the column (bigint or double), a float then goes to the bigint
column's ``__v_double`` variant, an int into a double column is converted. A single Arrow type would lose
that difference (both are numbers in a DOUBLE), so the JSON reader hands such a column on in this
extension type: a struct of an ``int`` (int64) and a ``float`` (float64) child, exactly one of them set
in a row that has a value. The Arrow normalizer puts each part into the column as the dict path puts
each value (``parts``), never a Python loop per row; ``as_py`` of a value is the ``int`` or ``float``
``json.loads`` gives, so row hashes and messages see what the dict path sees.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from loadbay.common import arrow_build
from loadbay.common.storage.writers import dumps_json

_DIGITS_AS_ZERO = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_NINETEEN_DIGITS = b"0" * 19
_STORAGE = pa.struct([pa.field("int", pa.int64()), pa.field("float", pa.float64())])


class JsonNumbersScalar(pa.ExtensionScalar):
    def as_py(self, *args: Any, **kwargs: Any) -> int | float | None:
        value = self.value
        if value is None:
            return None
        number = value["int"].as_py()
        return value["float"].as_py() if number is None else number


class _InProcessType(pa.ExtensionType):
    """An extension type without parameters, made and read inside one process (never written to a file, so
    not registered with Arrow); ``scalar`` gives its values' ``as_py``."""

    scalar: ClassVar[type[pa.ExtensionScalar]]

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> _InProcessType:
        return cls()  # type: ignore[call-arg]

    def __arrow_ext_scalar_class__(self) -> type[pa.ExtensionScalar]:
        return self.scalar


class JsonNumbers(_InProcessType):
    """The type of a column of JSON numbers of both kinds (see the module doc)."""

    scalar = JsonNumbersScalar

    def __init__(self) -> None:
        super().__init__(_STORAGE, "loadbay.json_numbers")


JSON_NUMBERS = JsonNumbers()


def is_json_numbers(t: pa.DataType) -> bool:
    return isinstance(t, JsonNumbers)


def kind(t: pa.DataType) -> str | None:
    """The Arrow normalizer's kind of these types (``arrow_types.kind_of``), None for any other type."""
    if isinstance(t, JsonNumbers):
        return "numbers"
    if isinstance(t, JsonValues):
        return "python"  # decided value by value, as the dict path does
    return None


def json_numbers(text: pa.Array, fractional: pa.BooleanArray) -> pa.ExtensionArray:
    """JSON number texts (integers within 64 bits, fractions, exponents) as ``JsonNumbers``; ``fractional``
    is true where a text has a fraction or an exponent (a ``float`` in Python). Raises ``pa.ArrowInvalid``
    where an integer text does not fit int64."""
    none = arrow_build.scalar(None, pa.string())
    ints = pc.cast(pc.if_else(fractional, none, text), pa.int64())
    floats = pc.cast(pc.if_else(fractional, text, none), pa.float64())
    storage = pa.StructArray.from_arrays([ints, floats], fields=list(_STORAGE), mask=text.is_null())
    return pa.ExtensionArray.from_storage(JSON_NUMBERS, storage)


def parts(array: pa.ExtensionArray) -> list[tuple[pa.Array, str]]:
    """The integers and the floats of ``array``, each as long as ``array`` (null where the other kind or no
    value is), with their kind (``int``, ``float``); the part holding the first value comes first, as that
    value makes a new column's type in the dict path. A part with no value is left out."""
    storage = array.storage
    found = []
    for index, kind in ((0, "int"), (1, "float")):
        part = storage.field(index)
        if storage.null_count:  # a struct's null rows may hide child values: keep only the struct's valid rows
            part = pc.if_else(storage.is_valid(), part, arrow_build.scalar(None, part.type))
        if part.null_count < len(part):
            found.append((arrow_build.first_true(part.is_valid()), part, kind))
    return [(part, kind) for _, part, kind in sorted(found, key=lambda item: item[0])]


# -- JSON values -------------------------------------------------------------------------------------
# DuckDB reads a JSON object into a STRUCT of every key the file has, so a key an object lacks and a key
# that holds null look alike. Flattened into columns, both are NULL, as for dicts; stored as json text they
# differ ({"a": 1} against {"a": 1, "b": null}). Where a struct becomes json, the normalizer takes the values
# from the file's rows as json.loads gives them (``normalize_arrow``'s ``exact_rows``) and hands them on in
# this type, which the Arrow path decides value by value as the dict path does (kind "python").


class JsonValuesScalar(pa.ExtensionScalar):
    def as_py(self, *args: Any, **kwargs: Any) -> Any:
        text = self.value.as_py() if self.value is not None else None
        return None if text is None else _loads(text)


class JsonValues(_InProcessType):
    """Python values (as ``json.loads`` gives them) carried as the json text the dict path stores for them
    (``dumps_json``); ``as_py`` gives them back equal."""

    scalar = JsonValuesScalar

    def __init__(self) -> None:
        super().__init__(pa.string(), "loadbay.json_values")


JSON_VALUES = JsonValues()


def is_json_values(t: pa.DataType) -> bool:
    return isinstance(t, JsonValues)


def json_values(values: list[Any]) -> pa.ExtensionArray:
    """``values`` (what ``json.loads`` gives: dicts, lists, str, int of any size, float, bool, None) as
    ``JsonValues``, each the text ``dumps_json`` writes for a json column, which a json column takes as it
    is; ``None`` is a null. Raises ``UnloadableValue`` for a value nested too deeply to write."""
    texts = [None if v is None else dumps_json(v) for v in values]
    return pa.ExtensionArray.from_storage(JSON_VALUES, pa.array(texts, pa.string()))


def has_long_digits(text: bytes) -> bool:
    """Whether ``text`` holds a run of 19 digits or more (where JSON may hold an integer past 64 bits, which
    orjson would read as a float): every digit mapped to ``0`` and searched for, ten times the speed of a
    regex on a 13 KB line of GitHub events."""
    return _NINETEEN_DIGITS in text.translate(_DIGITS_AS_ZERO)


def _loads(text: str) -> Any:
    """JSON text back to the value: by orjson, except where it would read an integer past 64 bits as a float."""
    data = text.encode()
    return json.loads(text) if has_long_digits(data) else orjson.loads(data)
