"""JSON numbers of both Python kinds in one column, kept columnar: ``JsonNumbers``.

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

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from loadbay.common import arrow_build

_STORAGE = pa.struct([pa.field("int", pa.int64()), pa.field("float", pa.float64())])


class JsonNumbersScalar(pa.ExtensionScalar):
    def as_py(self, *args: Any, **kwargs: Any) -> int | float | None:
        value = self.value
        if value is None:
            return None
        number = value["int"].as_py()
        return value["float"].as_py() if number is None else number


class JsonNumbers(pa.ExtensionType):
    """The type of a column of JSON numbers of both kinds (see the module doc). Made and read inside one
    process only, so it is not registered with Arrow."""

    def __init__(self) -> None:
        super().__init__(_STORAGE, "loadbay.json_numbers")

    def __arrow_ext_serialize__(self) -> bytes:
        return b""

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type: pa.DataType, serialized: bytes) -> JsonNumbers:
        return cls()

    def __arrow_ext_scalar_class__(self) -> type[pa.ExtensionScalar]:
        return JsonNumbersScalar


JSON_NUMBERS = JsonNumbers()


def is_json_numbers(t: pa.DataType) -> bool:
    return isinstance(t, JsonNumbers)


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
