"""Which columnar shape a value is, told from its type's module and name alone.

Kept apart from ``loadbay.sources.arrow`` so that recognizing (or ruling out) a DataFrame or Arrow object
imports neither pyarrow nor pandas nor polars: ``import loadbay`` and a run over plain dicts stay cheap.
"""

from __future__ import annotations

import functools
from typing import Any

ARROW_KINDS = ("pandas", "polars", "polars_lazy", "table", "record_batch", "reader", "dataset", "stream")

# (top-level package, class name) of a type or one of its bases → kind
KIND_OF_CLASS: dict[tuple[str, str], str] = {
    ("pandas", "DataFrame"): "pandas",
    ("polars", "DataFrame"): "polars",
    ("polars", "LazyFrame"): "polars_lazy",
    ("pyarrow", "Table"): "table",
    ("pyarrow", "RecordBatch"): "record_batch",
    ("pyarrow", "RecordBatchReader"): "reader",
    ("pyarrow", "Dataset"): "dataset",
}


def columnar_kind(data: Any) -> str | None:
    """Which columnar shape ``data`` is (one of ``ARROW_KINDS``), or None; imports nothing."""
    return kind_of_type(type(data))


@functools.lru_cache(maxsize=256)
def kind_of_type(cls: type) -> str | None:
    """``columnar_kind`` by type, from the module and name of the type and its bases (so subclasses such as
    a GeoDataFrame count), else the Arrow PyCapsule stream protocol (DuckDB relations, nanoarrow, ...)."""
    for base in cls.__mro__:
        kind = KIND_OF_CLASS.get((base.__module__.partition(".")[0], base.__name__))
        if kind is not None:
            return kind
    return "stream" if hasattr(cls, "__arrow_c_stream__") else None
