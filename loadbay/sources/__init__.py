"""Sources: whatever users bring → bounded batches for normalize.

A batch is either a ``list`` of items (dict rows or scalars: the row path) or a ``pyarrow.RecordBatch``
(the columnar path). Accepted:

- a dict, a list/tuple/iterable/generator of dicts (or scalars), in batches of ``batch_size`` items
  (see ``sources.batch_sizes``);
- pandas and polars DataFrames, a polars LazyFrame, a pyarrow Table, RecordBatch, RecordBatchReader or
  Dataset, or any object with an Arrow stream (``__arrow_c_stream__``): see ``sources.arrow``;
- a ``pathlib.Path`` to a file or folder, or ``loadbay.files(...)`` for globs, stdin, a forced format:
  see ``sources.files``;
- sequences and generators may mix these (a generator of DataFrames, a list of Paths): each columnar
  object or path is read in turn between the rows around it.

A bare ``str`` or ``bytes`` is refused: it is as likely data as a path.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from loadbay.common.exceptions import SourceError
from loadbay.sources.batch_sizes import rows_batch_size
from loadbay.sources.kinds import columnar_kind, kind_of_type
from loadbay.sources.files import Files, expand, name_of

__all__ = ["Files", "iter_batches", "name_of", "source_name"]


def source_name(data: Any) -> str | None:
    """The table name ``data`` suggests: a file's or folder's name, or ``Files.name``."""
    if isinstance(data, Path):
        return name_of(data)
    if isinstance(data, Files):
        return data.name
    return None


def iter_batches(data: Any, batch_size: int | None = None) -> Iterator[Any]:
    """Bounded batches of ``data``: lists of items, or Arrow record batches (None: each kind's default size)."""
    if isinstance(data, dict):
        yield [data]
        return
    if isinstance(data, (str, bytes)):
        raise SourceError(f"cannot load a bare {type(data).__name__}: pass rows (dicts), a pathlib.Path to a file "
                          "or folder, or loadbay.files('data/*.jsonl') for a glob")
    if isinstance(data, Path):
        yield from Files(tuple(expand(data, None))).batches(batch_size)
        return
    if isinstance(data, Files):
        yield from data.batches(batch_size)
        return
    kind = columnar_kind(data)
    if kind is not None:
        from loadbay.sources.arrow import arrow_batches  # pyarrow (and pandas/polars) only for columnar data

        yield from arrow_batches(data, batch_size, kind)
        return
    size = rows_batch_size(batch_size)
    if isinstance(data, (list, tuple)):
        chunks: Iterable[list[Any]] = (list(data[start:start + size]) for start in range(0, len(data), size))
    elif isinstance(data, Iterable):
        iterator = iter(data)
        chunks = iter(lambda: list(itertools.islice(iterator, size)), [])
    else:
        raise SourceError(f"cannot load {type(data).__name__}: expected dicts, an iterable of dicts, a pandas or "
                          "polars DataFrame, Arrow data, a pathlib.Path or loadbay.files(...)")
    for chunk in chunks:
        yield from _split(chunk, batch_size)


def _is_source_type(cls: type) -> bool:
    """Whether items of type ``cls`` are read as sources of their own (a path, files, columnar data)."""
    return issubclass(cls, (Path, Files)) or kind_of_type(cls) is not None


def _split(chunk: list[Any], batch_size: int | None) -> Iterator[Any]:
    """``chunk`` as it is when it holds rows only (the common case, checked with a C loop over the item
    types); otherwise its rows in order with each columnar object or path read in its place."""
    if not any(map(_is_source_type, set(map(type, chunk)))):
        yield chunk
        return
    rows: list[Any] = []
    for item in chunk:
        if _is_source_type(type(item)):
            if rows:
                yield rows
                rows = []
            yield from iter_batches(item, batch_size)
        else:
            rows.append(item)
    if rows:
        yield rows
