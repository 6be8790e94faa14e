"""Taking back what rows a schema contract discards taught the normalizer.

A row the contract discards (``discard_row``: a value of a new type, a new column, a new table) must leave
nothing behind: not its values, and not the columns, variant columns, child tables or column names the
part of it walked before the refusal made. Otherwise a later run finds a column typed by a row that never
loaded, and refuses (or discards) rows that would have made the column their own. Both normalizers take a
``Snapshot`` of what they know of the schema while a contract can discard rows, and go back to it for a
discarded row (the dict path) or before walking a batch again without its discarded rows (the Arrow path).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadbay.common.normalizer import RelationalNormalizer, _TableState

_STATE_CACHES = ("names", "converters", "json_columns", "sources", "passthrough", "child_tables", "list_levels")


def discards_rows(norm: RelationalNormalizer) -> bool:
    """Whether the normalizer's schema contract can discard whole rows."""
    contract = norm.contract
    return "discard_row" in (contract.tables, contract.columns, contract.data_type)


def _copied(value: Any) -> Any:
    """Two levels deep: every cache is a dict or set of dicts, sets or immutable values."""
    if isinstance(value, dict):
        return {k: v.copy() if isinstance(v, (dict, set)) else v for k, v in value.items()}
    return value.copy()


def size(norm: RelationalNormalizer) -> tuple[int, int, int]:
    """Tables, columns and claimed names: any row that teaches the normalizer something grows one of them."""
    tables = norm.schema.tables
    return (len(tables), sum(len(t.columns) for t in tables.values()),
            sum(len(s.sources) + len(s.child_tables) for s in norm._states.values()))


class Snapshot:
    """The schema's tables and columns, each known table's caches, new columns and pending hints."""

    def __init__(self, norm: RelationalNormalizer) -> None:
        self.tables = dict(norm.schema.tables)
        self.columns = {name: dict(table.columns) for name, table in self.tables.items()}
        self.states: dict[str, _TableState] = dict(norm._states)
        self.caches = {name: {cache: _copied(getattr(state, cache)) for cache in _STATE_CACHES}
                       for name, state in self.states.items()}
        self.new_columns = {table: list(columns) for table, columns in norm.new_columns.items()}
        self.pending = {table: _copied(columns) for table, columns in norm._pending.items()}
        self.size = size(norm)

    def restore(self, norm: RelationalNormalizer) -> None:
        """Back to the moment of the snapshot; objects are changed in place (callers hold table states)."""
        norm.schema.tables.clear()
        norm.schema.tables.update(self.tables)
        for name, table in self.tables.items():
            table.columns.clear()
            table.columns.update(self.columns[name])
        norm._states.clear()
        norm._states.update(self.states)
        for name, state in self.states.items():
            for cache, value in self.caches[name].items():
                held = getattr(state, cache)  # in place: the normalizer's loops hold some caches
                held.clear()
                held.update(_copied(value))
        norm.new_columns.clear()
        norm.new_columns.update({table: list(columns) for table, columns in self.new_columns.items()})
        norm._pending.clear()
        norm._pending.update(_copied(self.pending))


class RowGuard:
    """The dict path's undo, row by row: a snapshot taken again only after a kept row taught something, so
    rows that teach nothing (nearly all) cost one ``size`` each."""

    def __init__(self, norm: RelationalNormalizer) -> None:
        self.norm = norm
        self.snapshot = Snapshot(norm)

    def kept(self) -> None:
        if size(self.norm) != self.snapshot.size:
            self.snapshot = Snapshot(self.norm)

    def discarded(self) -> None:
        if size(self.norm) != self.snapshot.size:
            self.snapshot.restore(self.norm)
