"""Arrow arrays and scalars made from numpy buffers and Python values without importing pandas.

pyarrow asks whether pandas is installed the first time ``pa.array`` or ``pa.scalar`` is handed numpy or
Python values (and so does every compute function given a plain Python value), and when it is, imports
it: 0.3-0.8 s of a fresh process's first Arrow load, more than normalizing a million rows takes. Loading
an Arrow table or a parquet file needs nothing of pandas, so the Arrow path builds the few arrays and
scalars it makes itself here, from buffers (``Array.from_buffers`` never looks for pandas).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

_NUMPY_TYPES = {pa.int8(): np.int8, pa.int16(): np.int16, pa.int32(): np.int32, pa.int64(): np.int64,
                pa.uint8(): np.uint8, pa.uint16(): np.uint16, pa.uint32(): np.uint32, pa.uint64(): np.uint64,
                pa.float32(): np.float32, pa.float64(): np.float64}


def validity_bitmap(valid: np.ndarray) -> pa.Buffer | None:
    """Arrow's validity bitmap of a boolean numpy mask (None when every value is valid)."""
    if valid.all():
        return None
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


def bools(values: np.ndarray, valid: np.ndarray | None = None) -> pa.BooleanArray:
    """A boolean Arrow array of a numpy bool array (NULL where ``valid`` is false)."""
    values = np.asarray(values, dtype=bool)
    bitmap = None if valid is None else validity_bitmap(valid)
    return pa.Array.from_buffers(pa.bool_(), len(values),
                                 [bitmap, pa.py_buffer(np.packbits(values, bitorder="little"))])


def numbers(values: np.ndarray, type_: pa.DataType = pa.int64(), valid: np.ndarray | None = None) -> pa.Array:
    """A fixed-width numeric Arrow array of ``values`` (copied only when its dtype differs from ``type_``'s)."""
    values = np.ascontiguousarray(values, dtype=_NUMPY_TYPES[type_])
    bitmap = None if valid is None else validity_bitmap(valid)
    return pa.Array.from_buffers(type_, len(values), [bitmap, pa.py_buffer(values)])


def texts(values: list[str], type_: pa.DataType = pa.string()) -> pa.Array:
    """A string (or large string) Arrow array of Python strings (no NULLs)."""
    encoded = [value.encode() for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64 if pa.types.is_large_string(type_) else np.int32)
    np.cumsum([len(value) for value in encoded], out=offsets[1:])
    return pa.Array.from_buffers(type_, len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def scalar(value: Any, type_: pa.DataType) -> pa.Scalar:
    """An Arrow scalar of a bool, number, str or None of ``type_``; other values go through ``pa.scalar``."""
    if value is None:
        return pa.nulls(1, type_)[0]
    if pa.types.is_boolean(type_):
        return bools(np.array([value]))[0]
    if type_ in _NUMPY_TYPES:
        return numbers(np.array([value]), type_)[0]
    if (pa.types.is_string(type_) or pa.types.is_large_string(type_)) and isinstance(value, str):
        return texts([value], type_)[0]
    return pa.scalar(value, type_)


FALSE = scalar(False, pa.bool_())
TRUE = scalar(True, pa.bool_())


def to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numpy view (or copy) of a numeric or boolean Arrow array without NULLs (``Array.to_numpy`` asks
    for pandas too); other arrays go through ``to_numpy``."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count == 0 and (array.type in _NUMPY_TYPES or pa.types.is_boolean(array.type)):
        data, n, offset = array.buffers()[1], len(array), array.offset
        if pa.types.is_boolean(array.type):
            bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
            return bits[offset:offset + n].astype(bool)
        return np.frombuffer(data, dtype=_NUMPY_TYPES[array.type])[offset:offset + n]
    return array.to_numpy(zero_copy_only=False)


def first_true(mask: pa.BooleanArray | pa.ChunkedArray) -> int:
    """Index of the first true value of a boolean Arrow array (NULL counts as false; -1 when none is)."""
    import pyarrow.compute as pc

    return int(pc.index(pc.fill_null(mask, FALSE), TRUE).as_py())
