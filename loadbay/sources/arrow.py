"""Columnar input (pandas, polars, pyarrow, anything with an Arrow stream) → bounded Arrow record batches.

Objects are recognized by the module and name of their type, so neither pandas nor polars is imported
unless the data is theirs. Every batch has at most ``batch_size`` rows (65,536 unless set: see
``sources.batch_sizes``) and plain columns (dictionary columns, such as pandas categoricals, are decoded
to their values).

pandas: ``NaN``/``NaT``/``pd.NA`` become NULL, nullable dtypes keep their type, and the index is dropped
unless every level of it is named (``df.set_index("id")`` keeps ``id`` as a column; a plain row-number
index is noise; ``df.reset_index()`` keeps any index). MultiIndex columns are flattened, their levels
joined with ``__`` as nested keys are (``("a", "x")`` → ``a__x``; empty levels left out). A frame with an object column Arrow cannot give one
type (``[1, "a"]``) loads row by row instead, exactly as the same rows given as dicts would.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
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
    columns = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(columns, names=schema.names)


# -- pandas ----------------------------------------------------------------------------------------

def keeps_index(df: Any) -> bool:
    """Whether the index of ``df`` loads as columns: only when every level has a name."""
    names = list(df.index.names)
    return bool(names) and all(name is not None for name in names)


def pandas_batches(df: Any, batch_size: int | None = None) -> Iterator[pa.RecordBatch | list[dict[str, Any]]]:
    """A pandas DataFrame in slices of ``batch_size`` rows, typed once from the whole frame."""
    df = _flat_columns(df)
    index = keeps_index(df)
    try:
        schema = pa.Schema.from_pandas(df, preserve_index=index).remove_metadata()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        yield from _pandas_rows(df, rows_batch_size(batch_size), index, exc)
        return
    except ValueError as exc:  # duplicate column names, an index name that is also a column
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
    """``df`` with MultiIndex column names joined by ``__`` (Arrow finds no column by a tuple name)."""
    if getattr(df.columns, "nlevels", 1) == 1:
        return df
    names = ["__".join(str(level) for level in name if level is not None and level != "") for name in df.columns]
    return df.set_axis(names, axis=1)


def _pandas_rows(df: Any, batch_size: int, index: bool, cause: Exception) -> Iterator[list[dict[str, Any]]]:
    """The frame as dict rows (missing values as None), for columns that mix Python types."""
    mixed = [str(c) for c in df.columns if not _arrow_typeable(df[c])]
    logger.warning("DataFrame column(s) %s mix Python types that one Arrow column cannot hold (%s); "
                   "the frame loads row by row, like a list of dicts", mixed or "?", cause)
    if index:
        df = df.reset_index()
    for start in range(0, len(df), batch_size):
        chunk = df.iloc[start:start + batch_size].astype(object)
        yield chunk.where(chunk.notna(), None).to_dict("records")


def _arrow_typeable(column: Any) -> bool:
    try:
        pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return True


# -- polars ----------------------------------------------------------------------------------------

def _to_arrow(frame: Any) -> pa.Table:
    """A polars frame as Arrow with the widest-read layouts (large_string, not string views)."""
    polars = optional_import("polars", "polars")
    try:
        return frame.to_arrow(compat_level=polars.CompatLevel.oldest())
    except Exception as exc:  # noqa: BLE001 - polars raises its own tree (e.g. for Object columns)
        raise SourceError(f"polars DataFrame cannot be converted to Arrow: {exc}") from exc


def polars_batches(df: Any, batch_size: int) -> Iterator[pa.RecordBatch]:
    for chunk in df.iter_slices(n_rows=batch_size):
        yield from _plain_all(_to_arrow(chunk).to_batches(max_chunksize=batch_size), batch_size)


def polars_lazy_batches(lf: Any, batch_size: int) -> Iterator[pa.RecordBatch]:
    """A LazyFrame collected in chunks where polars streams them (``collect_batches``), else at once."""
    collect_batches = getattr(lf, "collect_batches", None)
    frames = collect_batches(chunk_size=batch_size) if collect_batches is not None else [lf.collect()]
    for frame in frames:
        yield from polars_batches(frame, batch_size)
