"""Column, Table and Schema: the loadbay data model, serializable to JSON.

A schema is plain data: it is stored in every load package and, by hash, in the destination's
``_lb_version`` table, so it must round-trip through ``to_dict``/``from_dict`` exactly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

DATA_TYPES = ("text", "bigint", "double", "bool", "timestamp", "date", "time", "decimal", "json", "binary")
HINTS = ("primary_key", "merge_key", "unique", "partition", "cluster", "sort", "dedup_sort",
         "hard_delete", "root_key", "valid_from", "valid_to", "row_hash")
WRITE_DISPOSITIONS = ("append", "replace", "merge")

# Columns loadbay adds itself.
LOAD_ID = "_lb_load_id"
ROW_ID = "_lb_id"
PARENT_ID = "_lb_parent_id"
LIST_IDX = "_lb_list_idx"
ROOT_ID = "_lb_root_id"
ROW_HASH = "_lb_row_hash"  # scd2: a hash of the whole item, children included
VALID_FROM = "_lb_valid_from"  # scd2: default names of the validity columns
VALID_TO = "_lb_valid_to"
SYSTEM_PREFIX = "_lb_"


@dataclass
class Column:
    """One column: its type and the hints that steer DDL and merges."""

    name: str
    data_type: str
    nullable: bool = True
    precision: int | None = None
    scale: int | None = None
    timezone: bool | None = None
    primary_key: bool = False
    merge_key: bool = False
    unique: bool = False
    partition: bool = False
    cluster: bool = False
    sort: bool = False
    dedup_sort: str | None = None  # "asc" | "desc"
    hard_delete: bool = False
    root_key: bool = False
    valid_from: bool = False  # scd2: when the row's version became current
    valid_to: bool = False  # scd2: when it stopped being current (NULL while it is)
    row_hash: bool = False  # scd2: the version's content hash, what versions are compared by
    variant_of: str | None = None  # set on `<col>__v_<type>` columns

    def __post_init__(self) -> None:
        if self.data_type not in DATA_TYPES:
            raise ValueError(f"column {self.name!r}: unknown data_type {self.data_type!r}; known: {DATA_TYPES}")
        if self.dedup_sort not in (None, "asc", "desc"):
            raise ValueError(f"column {self.name!r}: dedup_sort must be 'asc' or 'desc'")

    def to_dict(self) -> dict[str, Any]:
        """``name``, ``data_type`` and every field that is not its default, in field order (every
        value is a str, bool, int or None: nothing to copy deeply, unlike ``dataclasses.asdict``)."""
        out: dict[str, Any] = {"name": self.name, "data_type": self.data_type}
        for name, default in _COLUMN_DEFAULTS:
            value = getattr(self, name)
            if value != default:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Column:
        return cls(**d)


_COLUMN_DEFAULTS = tuple((f.name, f.default) for f in fields(Column) if f.name not in ("name", "data_type"))


@dataclass
class Table:
    """A table: columns in order, its disposition, and its parent when it holds a nested list."""

    name: str
    columns: dict[str, Column] = field(default_factory=dict)
    write_disposition: str = "append"
    strategy: str | None = None  # merge or replace strategy; None means the default
    parent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "write_disposition": self.write_disposition,
                             "columns": [c.to_dict() for c in self.columns.values()]}
        if self.strategy:
            d["strategy"] = self.strategy
        if self.parent:
            d["parent"] = self.parent
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Table:
        cols = {c["name"]: Column.from_dict(c) for c in d.get("columns", [])}
        return cls(name=d["name"], columns=cols, write_disposition=d.get("write_disposition", "append"),
                   strategy=d.get("strategy"), parent=d.get("parent"))

    def columns_with(self, hint: str) -> list[Column]:
        return [c for c in self.columns.values() if getattr(c, hint)]


@dataclass
class Schema:
    """All tables a pipeline loads, keyed by normalized table name."""

    name: str
    tables: dict[str, Table] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tables": [t.to_dict() for t in self.tables.values()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Schema:
        return cls(name=d["name"], tables={t["name"]: Table.from_dict(t) for t in d.get("tables", [])})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @property
    def version_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:20]

    def root_of(self, table_name: str) -> Table:
        table = self.tables[table_name]
        while table.parent:
            table = self.tables[table.parent]
        return table

    def children_of(self, root_name: str) -> list[Table]:
        """Every table nested (at any depth) under ``root_name``, parents before children."""
        out: list[Table] = []
        frontier = [root_name]
        while frontier:
            parent = frontier.pop(0)
            kids = [t for t in self.tables.values() if t.parent == parent]
            out.extend(kids)
            frontier.extend(k.name for k in kids)
        return out

    def data_tables(self) -> list[Table]:
        return [t for t in self.tables.values() if not t.name.startswith(SYSTEM_PREFIX)]
