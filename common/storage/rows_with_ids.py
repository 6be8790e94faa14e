"""A flat batch's rows as the user's items plus the two columns loadbay adds to each (load id, row id).

Copying every item into a new dict only to add ``_lb_load_id`` and ``_lb_id`` cost a fifth of normalizing flat
rows, and Arrow then converted both texts a row at a time. The batch normalizer hands writers this sequence
instead: a writer that builds columns (parquet, Arrow IPC) converts the value lists the normalizer gathered while it
checked them (``columns``: one list per key, twice as fast for Arrow as converting the dicts) and adds the ids as
two whole columns; any other reader gets each row as the dict it always got, made when it is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

from loadbay.common.schema.types import LOAD_ID, ROW_ID


class RowsWithIds(Sequence[dict[str, Any]]):
    """``items[i]`` with ``LOAD_ID: load_id, ROW_ID: row_ids[i]`` added, for every i; the items are not copied
    (nor changed). ``columns`` holds each key's values in item order (every item has every key)."""

    __slots__ = ("items", "load_id", "row_ids", "columns")

    def __init__(self, items: list[dict[str, Any]], load_id: str, row_ids: list[str],
                 columns: dict[str, list[Any]]) -> None:
        self.items, self.load_id, self.row_ids, self.columns = items, load_id, row_ids, columns

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> RowsWithIds: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | RowsWithIds:
        if isinstance(index, slice):
            columns = {k: v[index] for k, v in self.columns.items()}
            return RowsWithIds(self.items[index], self.load_id, self.row_ids[index], columns)
        return {**self.items[index], LOAD_ID: self.load_id, ROW_ID: self.row_ids[index]}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        load_id = self.load_id
        return ({**item, LOAD_ID: load_id, ROW_ID: row_id} for item, row_id in zip(self.items, self.row_ids))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]
