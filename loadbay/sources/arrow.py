"""Columnar input (pandas, polars, pyarrow, anything with an Arrow stream) → bounded Arrow record batches.

Objects are recognized by the module and name of their type, so neither pandas nor polars is imported
unless the data is theirs. Every batch has at most ``batch_size`` rows (65,536 unless set: see
``sources.batch_sizes``) and plain columns (dictionary columns, such as pandas categoricals, are decoded
to their values).

pandas: ``NaN``/``NaT``/``pd.NA`` become NULL, nullable dtypes keep their type, and the index is dropped
unless every level of it is named (``df.set_index("id")`` keeps ``id`` as a column; a plain row-number
index is noise; ``df.reset_index()`` keeps any index). MultiIndex columns are flattened, their levels
joined with ``__`` as nested keys are (``("a", "x")`` → ``a__x``; empty levels left out); column labels that
are not text (``read_csv(header=None)`` gives 0, 1, …) load under their ``str``. An object column whose
Python values Arrow would not keep as they are (several kinds, ``[1, "a"]`` or ``[date, Decimal]``, which
Arrow refuses or coerces; dicts, lists, tuples, sets, UUIDs, which Arrow turns into structs and lists the
dict path does not make) makes the frame load row by row instead, exactly as the same rows given as dicts
would; as does a polars ``Object`` column.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from datetime import date as _date
from typing import Any

import pyarrow as pa

from loadbay.common.exceptions import SourceError
from loadbay.sources.batch_sizes import arrow_batch_size, rows_batch_size
from loadbay.sources.kinds import columnar_kind

logger = logging.getLogger(__name__)


def optional_import(module: str, extra: str) -> Any:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SourceError(f"loading this data needs {module}, which is not installed: "
                          f"pip install 'loadbay[{extra}]'") from exc


def arrow_batches(data: Any, batch_size: int | None = None,
                  kind: str | None = None) -> Iterator[pa.RecordBatch | list[Any]]:
    """Bounded record batches of a columnar object (a pandas frame Arrow cannot type gives dict rows)."""
    kind = kind or columnar_kind(data)
    if kind == "pandas":
        yield from pandas_batches(data, batch_size)
        return
    batch_size = arrow_batch_size(batch_size)
    if kind == "polars":
        yield from polars_batches(data, batch_size)
    elif kind == "polars_lazy":
        yield from polars_lazy_batches(data, batch_size)
    elif kind == "table":
        yield from _plain_all(data.to_batches(max_chunksize=batch_size), batch_size)
    elif kind == "record_batch":
        yield from _plain_all([data], batch_size)
    elif kind == "reader":
        yield from _plain_all(data, batch_size)
    elif kind == "dataset":
        yield from _plain_all(data.to_batches(batch_size=batch_size), batch_size)
    elif kind == "stream":
        try:
            reader = pa.RecordBatchReader.from_stream(data)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise SourceError(f"cannot read {type(data).__name__} as an Arrow stream of record batches: {exc}") from exc
        yield from _plain_all(reader, batch_size)
    else:
        raise SourceError(f"cannot read {type(data).__name__} as Arrow data")


def _plain_all(batches: Any, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Each batch sliced to ``batch_size`` rows, with dictionary columns decoded; empty ones skipped."""
    for batch in batches:
        if isinstance(batch, pa.Table):  # some readers hand out tables
            yield from _plain_all(batch.to_batches(max_chunksize=batch_size), batch_size)
            continue
        batch = plain(batch)
        for start in range(0, batch.num_rows, batch_size):
            yield batch.slice(start, batch_size)


def plain(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with dictionary-encoded columns (categoricals) decoded to their value type, metadata dropped."""
    schema = batch.schema
    if not any(pa.types.is_dictionary(f.type) for f in schema) and not schema.metadata:
        return batch
    columns = [c.dictionary_decode() if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=schema.names)


# -- pandas ----------------------------------------------------------------------------------------

def keeps_index(df: Any) -> bool:
    """Whether the index of ``df`` loads as columns: only when every level has a name."""
    names = list(df.index.names)
    return bool(names) and all(name is not None for name in names)


_UNTYPEABLE = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, OverflowError,
               UnicodeError)
"""What Arrow raises for values it cannot type (an int past 64 bits, a sparse column, a lone surrogate): the
frame loads row by row, as the dict path loads such values."""


def pandas_batches(df: Any, batch_size: int | None = None) -> Iterator[pa.RecordBatch | list[dict[str, Any]]]:
    """A pandas DataFrame in slices of ``batch_size`` rows, typed once from the whole frame."""
    df = _flat_columns(df)
    index = keeps_index(df)
    if index:
        both = sorted({str(n) for n in df.index.names} & {str(c) for c in df.columns})
        if both:
            raise SourceError(f"DataFrame index level(s) {both} have the name of a column: rename one, or "
                              "df.reset_index(drop=True) to leave the index out")
    coerced = _coerced_object_columns(df)
    if coerced:
        yield from _pandas_rows(df, rows_batch_size(batch_size), index, coerced, "Arrow would change their values")
        return
    try:
        schema = pa.Schema.from_pandas(df, preserve_index=index).remove_metadata()
    except _UNTYPEABLE as exc:
        yield from _pandas_rows(df, rows_batch_size(batch_size), index, _untypeable_columns(df), str(exc))
        return
    except ValueError as exc:  # duplicate column names
        raise SourceError(f"DataFrame cannot be loaded: {exc}") from exc
    batch_size = arrow_batch_size(batch_size)
    for start in range(0, len(df), batch_size):
        chunk = df.iloc[start:start + batch_size]
        try:  # a Table, not a RecordBatch: an Arrow-backed column may be chunked (pd.concat of pandas 3 strings)
            table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=index).combine_chunks()
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SourceError(f"DataFrame rows {start}..{start + len(chunk) - 1}: {exc}") from exc
        for batch in table.to_batches() or [pa.RecordBatch.from_pylist([], schema=schema)]:
            yield plain(batch)


def _flat_columns(df: Any) -> Any:
    """``df`` with MultiIndex column names joined by ``__`` (Arrow finds no column by a tuple name), and
    every column label as text (Arrow names a column ``0`` "0" but then looks it up by the label)."""
    if getattr(df.columns, "nlevels", 1) > 1:
        names = ["__".join(str(level) for level in name if level is not None and level != "") for name in df.columns]
        return df.set_axis(names, axis=1)
    if all(isinstance(name, str) for name in df.columns):
        return df
    return df.set_axis([str(name) for name in df.columns], axis=1)


_KEPT_KINDS = {"string", "bytes", "integer", "floating", "boolean", "decimal", "date", "datetime", "time", "empty"}
"""pandas' ``infer_dtype`` of an object column whose values Arrow keeps as they are; any other (``mixed``:
dicts, lists, tuples, UUIDs; ``mixed-integer-float``: ``[1, 2.5]``, which the dict path keeps as a bigint and
a double variant) is loaded by the dict path."""


def _coerced_object_columns(df: Any) -> list[str]:
    """Object columns Arrow would type by coercing some of their values (a date from a Decimal, a double
    from a bool, a date from a datetime, a naive timestamp from an aware one) or by making structs and
    lists of them; one pass of pandas' C type inference per object column, none for typed columns."""
    from pandas.api.types import infer_dtype

    found = []
    for name, column in df.items():
        if column.dtype != object:
            continue
        kind = infer_dtype(column, skipna=True)
        if kind == "mixed" and _all_arrays(column):  # list columns of Arrow's own to_pandas(): typed arrays
            continue
        if kind not in _KEPT_KINDS or (kind in ("date", "datetime") and not _one_temporal_kind(column, kind)):
            found.append(str(name))
    return found


def _all_arrays(column: Any) -> bool:
    """Whether every value of an object column is a numpy array (what ``Table.to_pandas()`` makes of a list
    column; Arrow converts them back exactly)."""
    values = column.dropna()
    return bool(len(values)) and all(type(v).__name__ == "ndarray" for v in values)


def _one_temporal_kind(column: Any, kind: str) -> bool:
    """Dates without datetimes among them (a datetime is a date to ``infer_dtype``; Arrow truncates it), or
    datetimes all aware or all naive (Arrow makes the rest like the first)."""
    values = column.dropna()
    if kind == "date":
        return not any(type(v) is not _date for v in values)
    aware = {getattr(v, "tzinfo", None) is not None for v in values}
    return len(aware) <= 1


def _pandas_rows(df: Any, batch_size: int, index: bool, columns: list[str],
                 reason: str) -> Iterator[list[dict[str, Any]]]:
    """The frame as dict rows (missing values as None), for columns Arrow cannot type as the dict path would."""
    logger.warning("DataFrame column(s) %s hold Python values one Arrow column cannot keep as they are (%s); "
                   "the frame loads row by row, like a list of dicts", columns or "?", reason)
    if index:
        df = df.reset_index()
    for start in range(0, len(df), batch_size):
        chunk = df.iloc[start:start + batch_size].astype(object)
        yield [{key: _listed(value) for key, value in row.items()}
               for row in chunk.where(chunk.notna(), None).to_dict("records")]


def _listed(value: Any) -> Any:
    """``value`` with numpy arrays (a list column's cells, also inside dicts) as lists, as in the frame's dicts."""
    if type(value).__name__ == "ndarray":
        return [_listed(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _listed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_listed(v) for v in value]
    return value


def _untypeable_columns(df: Any) -> list[str]:
    found = []
    for name, column in df.items():
        try:
            pa.array(column, from_pandas=True)
        except _UNTYPEABLE:
            found.append(str(name))
    return found


# -- polars ----------------------------------------------------------------------------------------

def _to_arrow(frame: Any) -> pa.Table:
    """A polars frame as Arrow with the widest-read layouts (large_string, not string views)."""
    polars = optional_import("polars", "polars")
    try:
        return frame.to_arrow(compat_level=polars.CompatLevel.oldest())
    except Exception as exc:  # noqa: BLE001 - polars raises its own tree (e.g. for Object columns)
        raise SourceError(f"polars DataFrame cannot be converted to Arrow: {exc}") from exc


def polars_batches(df: Any, batch_size: int) -> Iterator[pa.RecordBatch | list[dict[str, Any]]]:
    """A polars frame's Arrow record batches; as dict rows (as the dict path loads its values) a frame with
    an ``Object`` column (Python objects, which Arrow would export as their 8-byte addresses) or a type Arrow
    has not (``Int128``)."""
    objects = [name for name, dtype in df.schema.items() if "Object" in str(dtype)]  # also in a List or Struct
    reason = f"column(s) {objects} hold Python objects" if objects else None
    if reason is None:
        try:
            _to_arrow(df.head(0))  # a type Arrow cannot take fails on the schema alone
        except SourceError as exc:
            reason = str(exc)
    if reason is not None:
        logger.warning("polars %s; the frame loads row by row, like a list of dicts", reason)
        for chunk in df.iter_slices(n_rows=rows_batch_size(None)):
            yield chunk.to_dicts()
        return
    for chunk in df.iter_slices(n_rows=batch_size):
        yield from _plain_all(_to_arrow(chunk).to_batches(max_chunksize=batch_size), batch_size)


def polars_lazy_batches(lf: Any, batch_size: int) -> Iterator[pa.RecordBatch | list[dict[str, Any]]]:
    """A LazyFrame collected in chunks where polars streams them (``collect_batches``), else at once."""
    collect_batches = getattr(lf, "collect_batches", None)
    frames = collect_batches(chunk_size=batch_size) if collect_batches is not None else [lf.collect()]
    for frame in frames:
        yield from polars_batches(frame, batch_size)
