"""Extract: items of any accepted shape → named resources yielding bounded batches.

What is accepted and how each shape is read lives in ``loadbay.sources`` (rows, DataFrames and Arrow
data, files). A batch is a list of items or an Arrow record batch, never more than ``batch_size`` rows
(unset: 5,000 items, 65,536 Arrow rows; ``sources.batch_sizes``), so a generator or a file of any length
streams through with flat memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from loadbay.common.exceptions import LoadbayError, SourceError
from loadbay.cursor import Incremental
from loadbay.sources import iter_batches, source_name
from loadbay.sources.batch_sizes import ROWS_BATCH_SIZE

DEFAULT_BATCH_SIZE = ROWS_BATCH_SIZE  # items of rows; Arrow data: sources.batch_sizes.ARROW_BATCH_SIZE


@dataclass
class Resource:
    """Data plus the table hints it loads with: what ``loadbay.resource(...)`` returns."""

    data: Any
    name: str
    write_disposition: str | dict[str, Any] | None = None
    primary_key: str | list[str] | None = None
    merge_key: str | list[str] | None = None
    columns: dict[str, dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    max_table_nesting: int | None = None
    """Nesting levels (flattened dicts, child tables) below the root table; deeper dicts and lists load as
    json columns. None: the pipeline's ``max_table_nesting`` setting (unlimited by default)."""
    incremental: Incremental | None = None
    """A cursor: only rows newer than the last run's load (``loadbay.incremental``)."""

    def batches(self, batch_size: int | None = None) -> Iterator[Any]:
        """Lists of items or Arrow record batches of at most ``batch_size`` rows; a source error names
        this resource's table too."""
        try:
            if self.incremental is None:
                yield from iter_batches(self.data, batch_size)
                return
            for batch in iter_batches(self.data, batch_size):
                kept = self.incremental.filter(batch, self.name)
                if len(kept) if isinstance(kept, list) else kept.num_rows:
                    yield kept
        except SourceError as exc:
            raise exc.within(table=self.name) from exc


def resource(data: Any, name: str | None = None, *, write_disposition: str | dict[str, Any] | None = None,
             primary_key: str | list[str] | None = None, merge_key: str | list[str] | None = None,
             columns: dict[str, dict[str, Any]] | None = None, max_table_nesting: int | None = None,
             incremental: Incremental | None = None) -> Resource:
    """Name data and give it table hints; several resources load in one package."""
    resolved = name or _name_of(data)
    if not resolved:
        raise LoadbayError("resource needs a name: pass name=... (it becomes the table name)")
    return Resource(data, resolved, write_disposition, primary_key, merge_key, columns,
                    max_table_nesting=max_table_nesting, incremental=incremental)


def _name_of(data: Any) -> str | None:
    named = source_name(data)
    if named:
        return named
    for attr in ("__name__", "gi_code"):
        value = getattr(data, attr, None)
        if isinstance(value, str):
            return value
        if value is not None and hasattr(value, "co_name"):
            return str(value.co_name)
    return None


def as_resources(data: Any, table_name: str | None) -> list[Resource]:
    """Whatever ``Pipeline.run`` got, as a list of resources."""
    if isinstance(data, Resource):
        return [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, Resource) for d in data):
        return list(data)
    name = table_name or _name_of(data)
    if not name:
        raise LoadbayError("table_name is required for data that has no name (a list, an iterator, a dict, a "
                           "DataFrame, Arrow data, stdin); pass table_name=... or wrap it in "
                           "loadbay.resource(data, name=...)")
    return [Resource(data, name)]


__all__ = ["DEFAULT_BATCH_SIZE", "Resource", "as_resources", "iter_batches", "resource"]
