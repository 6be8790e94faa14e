"""Relational flattening: nested items → rows of a root table and its child tables.

Nested dicts become ``parent__child`` columns, lists become child tables linked by ``_lb_id``,
``_lb_parent_id``, ``_lb_list_idx`` and ``_lb_root_id``. Names and types are decided once per
distinct key and Python type and cached, so the cost per value is a couple of dict lookups.

What a resource's items may be (see ``RelationalNormalizer.normalize``): its first item decides. A
dict (or any mapping) makes every item a row, and an item that is not one (a string, a number, None,
a list of scalars) stops the run, naming the item. Anything else makes a resource of values: each item
is the ``value`` column of its row. A list item is a page of items (as generators of API pages yield
them): its elements are items in its place, one level deep.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Iterable
from itertools import chain
from types import NoneType
from typing import Any

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.exceptions import SchemaContractViolation, SchemaError, preview, shortened
from loadbay.common.schema import naming
from loadbay.common.schema.contracts import SchemaContract
from loadbay.common.schema.inference import IDENTITY, INT64_MAX, INT64_MIN, NotCoercible, converter_for, infer_data_type
from loadbay.common.normalizer_batch import normalize_batch
from loadbay.common.normalizer_refusals import (_DiscardRow, _ItemError, _last_resort, _TooDeep, _TooManyColumns,
                                                _UnloadableValue, refuse_variant_of_required, takes_no_variant)
from loadbay.common.normalizer_undo import RowGuard, discards_rows
from loadbay.common.row_hash import with_row_hashes
from loadbay.common.schema import scd2
from loadbay.common.schema.types import LIST_IDX, LOAD_ID, PARENT_ID, ROOT_ID, ROW_ID, Column, Schema, Table
from loadbay.common.schema.values import MAX_NESTING_LEVELS, NestedTooDeep, UnloadableValue, is_null, plain_value, type_name

logger = logging.getLogger(__name__)
Rows = dict[str, list[dict[str, Any]]]
_DISCARD = object()


class _TableState:
    """Per-table caches: raw key → column name per nesting prefix, and converters per column."""

    __slots__ = ("table", "names", "converters", "json_columns", "sources", "is_new", "passthrough",
                 "child_tables", "depth", "max_nesting", "list_levels", "row_hash")

    def __init__(self, table: Table, is_new: bool, depth: int = 0, max_nesting: int | None = None) -> None:
        self.table = table
        self.names: dict[str, dict[str, str]] = {}
        self.converters: dict[str, dict[type, Any]] = {}
        self.json_columns = {c.name for c in table.columns.values() if c.data_type == "json"}
        self.sources: dict[str, tuple[str, str]] = {}  # column name → (prefix, raw key) that made it
        self.is_new = is_new
        # top-level key → Python types whose values go into the row unchanged under the same name;
        # a row made only of such values skips the walk (the fast path for flat, clean data)
        self.passthrough: dict[str, set[type]] = {}
        self.child_tables: dict[str, str] = {}  # list field (its column-style path) → child table name
        self.depth = depth  # nesting level of the table's rows: 0 at the root, one more per dict or list above
        self.max_nesting = max_nesting  # levels a dict or list may open below the root; deeper: a json column
        self.list_levels: dict[str, int] = {}  # list field → nesting level of the rows it sits in
        self.row_hash = scd2.hash_column(table)  # scd2 root tables: the column each item's hash goes to


class RelationalNormalizer:
    """Turns items of one or more root tables into rows per table, evolving ``schema`` as it goes."""

    def __init__(self, schema: Schema, capabilities: DestinationCapabilities, load_id: str,
                 contract: SchemaContract | None = None, known_tables: Iterable[str] | None = None,
                 max_table_nesting: int | None = None) -> None:
        self.schema = schema
        if max_table_nesting is not None and max_table_nesting < 0:
            raise SchemaError(f"max_table_nesting must be 0 or more, not {max_table_nesting}")
        self.max_table_nesting = max_table_nesting
        """Default of every root table: nesting levels (flattened dicts, child tables) below the root; deeper
        dicts and lists stay json (``apply_hints(max_table_nesting=...)`` sets one root's)."""
        self._max_nesting: dict[str, int | None] = {}  # root table → its limit
        self.max_length = capabilities.max_identifier_length
        self.max_table_length = min(self.max_length, naming.MAX_TABLE_NAME_BYTES)
        self.max_decimal_precision = capabilities.max_decimal_precision
        self.decimal_precision = capabilities.decimal_precision
        self.nan_infinity = capabilities.supports_nan_infinity
        self.max_columns = capabilities.max_table_columns
        self.dialect = capabilities.sqlglot_dialect
        self.load_id = load_id
        self.contract = contract or SchemaContract()
        self._known = set(schema.tables if known_tables is None else known_tables)
        self._states: dict[str, _TableState] = {}
        self._ids = itertools.count()
        self._id_prefix = os.urandom(6).hex()
        self.new_columns: dict[str, list[str]] = {}
        self._items_seen: dict[str, int] = {}  # root table → items of its resource normalized so far
        self._pending: dict[str, dict[str, dict[str, Any]]] = {}  # hints of columns not yet typed
        self._value_items: dict[str, bool] = {}  # root table → whether its resource's items are values

    @property
    def id_prefix(self) -> str:
        """Hex digits every ``_lb_id`` this normalizer makes starts with: its rows can be found again."""
        return self._id_prefix

    # -- tables and hints -------------------------------------------------------------------------

    def table_name(self, raw: str) -> str:
        return naming.normalize_identifier(raw, self.max_table_length)

    def column_name(self, raw: str) -> str:
        return naming.normalize_identifier(raw, self.max_length)

    def apply_hints(self, raw_table: str, *, write_disposition: str | None = None,
                    strategy: str | None = None, primary_key: str | list[str] | None = None,
                    merge_key: str | list[str] | None = None,
                    columns: dict[str, dict[str, Any]] | None = None,
                    max_table_nesting: int | None = None,
                    validity_columns: tuple[str, str] | None = None) -> Table | None:
        """Create or update a root table with user hints; hints win over inference.

        Returns None when the schema contract keeps a new table out (``tables="discard_row"``).
        """
        name = self.table_name(raw_table)
        try:
            table = self._table(name, parent=None)
        except _DiscardRow:  # a new table the contract keeps out
            return None
        if max_table_nesting is not None:
            if max_table_nesting < 0:
                raise SchemaError(f"table {name!r}: max_table_nesting must be 0 or more, not {max_table_nesting}")
            self._max_nesting[name] = max_table_nesting
            if name in self._states:
                self._states[name].max_nesting = max_table_nesting
        if write_disposition:
            for t in (table, *self.schema.children_of(table.name)):  # children load like their root
                t.write_disposition = write_disposition
                t.strategy = strategy
        if scd2.is_scd2(table):
            scd2.add_version_columns(table, validity_columns, self.column_name,
                                     lambda column: self._check_room(table, column, hinted=True))
            if table.name in self._states:
                scd2.reserve_version_columns(self._states[table.name].sources, table)
        elif validity_columns is not None:
            raise SchemaError(f"table {name!r}: validity_columns are for the scd2 merge strategy only")
        pending = self._pending.setdefault(name, {})
        for hint, keys in (("primary_key", primary_key), ("merge_key", merge_key)):
            if keys is None:
                continue
            wanted = {self.column_name(k) for k in ([keys] if isinstance(keys, str) else keys)}
            for col in table.columns.values():
                setattr(col, hint, col.name in wanted)
                if hint == "primary_key" and col.name in wanted:
                    col.nullable = False
            for key in wanted - set(table.columns):
                pending.setdefault(key, {})[hint] = True
                if hint == "primary_key":
                    pending[key]["nullable"] = False
        for raw_col, hints in (columns or {}).items():
            col_name = self.column_name(raw_col)
            existing = table.columns.get(col_name)
            if existing is not None:
                wanted = hints.get("data_type")
                if wanted and existing.data_type and wanted != existing.data_type:
                    raise SchemaError(
                        f"pipeline {self.schema.name!r}: table {name!r}: column {col_name!r} is of type "
                        f"{existing.data_type} in the schema (and its table); the columns hint asks for {wanted}. "
                        "A column keeps its type once made (values of another type go to a variant column such "
                        f"as {col_name}__v_{wanted}): drop the hint, hint a new column, or drop the table first. "
                        "Nothing of this run is loaded.")
                table.columns[col_name] = _column({**existing.to_dict(), **hints, "name": col_name})
            elif "data_type" in hints:
                self._check_room(table, col_name, hinted=True)
                table.columns[col_name] = _column({**pending.pop(col_name, {}), **hints, "name": col_name})
            else:
                pending.setdefault(col_name, {}).update(hints)
        state = self._state(name)
        state.row_hash = scd2.hash_column(table)
        state.json_columns = {c.name for c in table.columns.values() if c.data_type == "json"}
        state.converters.clear()
        state.passthrough.clear()
        return table

    def _table(self, name: str, parent: str | None) -> Table:
        table = self.schema.tables.get(name)
        if table is None:
            if name not in self._known and self.contract.tables != "evolve":
                if self.contract.tables == "freeze":
                    raise SchemaContractViolation(self.schema.name, name, "tables", [name])
                raise _DiscardRow()
            table = Table(name=name, parent=parent)
            if parent:
                root = self.schema.root_of(parent)
                table.write_disposition = root.write_disposition
                table.strategy = root.strategy
            self.schema.tables[name] = table
        return table

    def _state(self, name: str, parent: _TableState | None = None, field: str = "") -> _TableState:
        """The caches of table ``name``: a root table, or the child table of ``parent``'s list ``field``."""
        state = self._states.get(name)
        if state is None:
            is_new = name not in self._known
            if parent is None:
                depth, limit = 0, self._max_nesting.get(name, self.max_table_nesting)
            else:
                depth, limit = parent.list_levels.get(field, parent.depth) + 1, parent.max_nesting
            table = self._table(name, None if parent is None else parent.table.name)
            state = self._states[name] = _TableState(table, is_new, depth, limit)
            self._add_system_columns(state, root=state.table.parent is None)
            scd2.reserve_version_columns(state.sources, table)
        return state

    def _add_system_columns(self, state: _TableState, root: bool) -> None:
        cols = state.table.columns
        for system in (LOAD_ID, ROW_ID, PARENT_ID, LIST_IDX, ROOT_ID):
            state.sources[system] = ("", "<loadbay>")
        if root:
            cols.setdefault(LOAD_ID, Column(LOAD_ID, "text", nullable=False))
            cols.setdefault(ROW_ID, Column(ROW_ID, "text", nullable=False, unique=True))
        else:
            cols.setdefault(PARENT_ID, Column(PARENT_ID, "text", nullable=False))
            cols.setdefault(LIST_IDX, Column(LIST_IDX, "bigint", nullable=False))
            cols.setdefault(ROOT_ID, Column(ROOT_ID, "text", nullable=False, root_key=True))
            cols.setdefault(ROW_ID, Column(ROW_ID, "text", nullable=False, unique=True))

    # -- items → rows ----------------------------------------------------------------------------

    def normalize(self, raw_table: str, items: Iterable[Any]) -> Rows:
        """Rows per table name for a batch of items of the root table ``raw_table``.

        The first item of the resource decides what its items are. A dict (or a mapping) makes it a
        resource of rows: every item must then be a dict or a mapping, and any other (a string, a
        number, None, a list of scalars) is a SchemaError naming the item's position, rather than a
        row of its own with a ``value`` column. Anything else makes it a resource of values, one row
        each with the value in column ``value`` (a dict among them is an error the same way). A list
        item is a page of items: its elements are items in its place (positions count them one by
        one), so a generator may yield pages of rows; only one level is taken apart.
        """
        out: Rows = {}
        name = self.table_name(raw_table)
        try:
            state = self._state(name)
        except _DiscardRow:  # a new table the contract does not let in: all its rows go
            return out
        if type(items) is not list:
            items = list(items)
        first = self._items_seen.get(name, 0)  # where this batch starts in the resource
        if set(map(type, items)) != {dict} or self._value_items.get(name):
            items = self._as_rows(name, raw_table, items, first)
        elif name not in self._value_items:
            self._value_items[name] = False
        self._items_seen[name] = first + len(items)
        if state.row_hash is not None:
            if any(state.row_hash in item for item in items):
                scd2.refuse_hash_column_key(self.schema.name, name, state.row_hash)
            try:
                items = with_row_hashes(items, state.row_hash)
            except NestedTooDeep as exc:
                raise SchemaError(f"pipeline {self.schema.name!r}: table {shortened(name)!r}: {exc}, found while hashing "
                                  f"an item for scd2; it appeared in item {first + (exc.index or 0) + 1} of resource "
                                  f"{raw_table!r} (counting from 1). {_TooDeep.advice}") from None
        batch = normalize_batch(self, state, items, all_dicts=True)  # the common case: nothing new, a column at a time
        if batch is not None:
            return batch
        rows = out.setdefault(name, [])
        load_id = self.load_id
        passthrough = state.passthrough
        ids, prefix = self._ids, self._id_prefix
        position = first  # in the resource: a table that gets too wide names the item that did it
        guard = RowGuard(self) if discards_rows(self) else None  # a discarded row teaches nothing
        try:
            for position, item in enumerate(items, first):
                if _passes(passthrough, item):
                    row = dict(item)
                    row[LOAD_ID] = load_id
                    row[ROW_ID] = f"{prefix}{next(ids):012x}"
                    rows.append(row)
                    continue
                row_id = self._new_id()
                row = {LOAD_ID: load_id, ROW_ID: row_id}
                children: list[tuple[str, list[Any]]] = []
                try:
                    self._walk(state, item, "", row, children, state.depth)
                    if children:
                        child_rows: Rows = {}  # kept apart until the whole item passed its contract
                        for child_name, values in children:
                            self._children(state, child_name, values, row_id, row_id, child_rows)
                        for child_name, crows in child_rows.items():
                            out.setdefault(child_name, []).extend(crows)
                except _DiscardRow:
                    if guard is not None:
                        guard.discarded()
                    continue
                if guard is not None:
                    guard.kept()
                rows.append(row)
        except _ItemError as exc:
            raise SchemaError(f"{exc}; it appeared in item {position + 1} of resource {raw_table!r} (counting "
                              f"from 1). {exc.advice}") from None
        return out

    def _as_rows(self, name: str, raw_table: str, items: list[Any], first: int) -> list[dict[str, Any]]:
        """The items of a batch as dict rows (the rules are in ``normalize``'s docstring)."""
        if any(type(item) is list for item in items):
            items = list(chain.from_iterable(item if type(item) is list else (item,) for item in items))
        if not items:
            return items
        values = self._value_items.get(name)
        if values is None:
            values = self._value_items[name] = not hasattr(items[0], "keys")
        rows = []
        for position, item in enumerate(items, first):
            if type(item) is dict and not values:
                rows.append(item)
            elif hasattr(item, "keys") and not values:
                rows.append(dict(item))
            elif values and not hasattr(item, "keys") and type(item) is not list:
                rows.append({"value": item})
            else:
                self._stray_item(name, raw_table, item, position + 1, values)
        return rows

    def _stray_item(self, name: str, raw_table: str, item: Any, position: int, values: bool) -> None:
        shown = f"{type_name(type(item))} ({preview(item)})"
        if type(item) is list:
            problem = (f"is a list inside a list item ({preview(item)}): a list item is a page of items, "
                       "taken apart one level only")
        elif values:
            problem = (f"is of type {shown}, but its first item was not a dict: the resource holds values "
                       "(a 'value' column), not rows")
        else:
            problem = f"is of type {shown}, but its first item was a dict: every item must then be a dict (a row)"
        raise SchemaError(f"pipeline {self.schema.name!r}: table {name!r}: item {position} of resource {raw_table!r} "
                          f"(counting from 1) {problem}. Nothing of this run is loaded: leave such items out, or make "
                          "every item a dict (a row).")

    def _new_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):012x}"  # fixed width: sorts in load order

    def new_ids(self, n: int) -> list[str]:
        """``n`` fresh row ids at once, the same as ``n`` calls of ``_new_id``."""
        return list(map(f"{self._id_prefix}%012x".__mod__, itertools.islice(self._ids, n)))

    def child_table_name(self, parent: _TableState, field: str) -> str:
        """The child table of ``parent``'s list ``field``: ``parent__field``, unless a list elsewhere has that
        name already (``o.n1`` of ``t`` and ``o[].n1`` of ``t__o`` both make ``t__o__n1``, a dict in one row and
        a list of dicts in another): then a tag from the parent keeps the two apart, one parent per table."""
        name = naming.join_path(parent.table.name, field, self.max_table_length)
        taken = self.schema.tables.get(name)
        if taken is None or taken.parent == parent.table.name:
            return name
        tagged = naming.tagged(name, f"{parent.table.name}.{field}", self.max_table_length)
        if tagged in self.schema.tables and self.schema.tables[tagged].parent != parent.table.name:
            raise SchemaError(f"pipeline {self.schema.name!r}: table {parent.table.name!r}: cannot find a distinct "
                              f"name for the child table of list {field!r}")
        logger.warning("table %r: list %r would make child table %r, which holds a list of table %r; its rows go "
                       "to table %r", parent.table.name, field, name, taken.parent, tagged)
        return tagged

    def known_state(self, table_name: str) -> _TableState | None:
        """The caches of a table this normalizer has already seen rows of."""
        return self._states.get(table_name)

    def _children(self, parent: _TableState, field: str, values: list[Any], parent_id: str,
                  root_id: str, out: Rows) -> None:
        child_name = parent.child_tables.get(field)
        if child_name is None:
            child_name = parent.child_tables[field] = self.child_table_name(parent, field)
        state = self._states.get(child_name) or self._state(child_name, parent, field)
        rows = out.setdefault(child_name, [])
        ids, prefix, passthrough = self._ids, self._id_prefix, state.passthrough
        for idx, value in enumerate(values):
            row_id = f"{prefix}{next(ids):012x}"
            row: dict[str, Any] = {PARENT_ID: parent_id, LIST_IDX: idx, ROOT_ID: root_id, ROW_ID: row_id}
            t = type(value)
            if t is dict:
                if _passes(passthrough, value):
                    row.update(value)
                    rows.append(row)
                    continue
                grandchildren: list[tuple[str, list[Any]]] = []
                self._walk(state, value, "", row, grandchildren, state.depth)
                rows.append(row)
                for gname, gvalues in grandchildren:
                    self._children(state, gname, gvalues, row_id, root_id, out)
                continue
            if value is not None:
                convs = state.converters.get("value")
                if convs is not None and t is not int and convs.get(t) is IDENTITY:  # a list of scalars
                    row["value"] = value
                else:
                    self._scalar(state, "value", "value", "", value, row)
            rows.append(row)

    def untyped_hinted_columns(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Hinted columns (keys, for example) that never received a value: table → column → hints."""
        return {t: dict(cols) for t, cols in self._pending.items() if cols}

    def _walk(self, state: _TableState, item: dict[str, Any], prefix: str, row: dict[str, Any],
              children: list[tuple[str, list[Any]]], level: int) -> None:
        """Columns of ``item`` (its keys at nesting ``level``) into ``row``, dicts flattened under ``prefix``,
        lists noted in ``children``; a dict or list at the table's ``max_nesting`` is a json value."""
        names = state.names.get(prefix)
        if names is None:
            names = state.names[prefix] = {}
        converters = state.converters
        for key, value in item.items():
            name = names.get(key)
            if name is None:
                name = names[key] = self._column_name(state, prefix, key)
            if value is None:
                if not prefix and name == key:
                    known = state.passthrough.get(key)
                    if known is None or NoneType not in known:
                        state.passthrough.setdefault(key, set()).add(NoneType)
                continue
            t = type(value)
            if (t is dict or t is list) and name not in state.json_columns:
                if state.max_nesting is not None and level >= state.max_nesting:
                    state.json_columns.add(name)  # for good: every later value of the column too
                elif level >= MAX_NESTING_LEVELS:
                    raise _TooDeep(f"pipeline {self.schema.name!r}: table {shortened(state.table.name)!r} column {shortened(name)!r}: "
                                   f"dicts and lists nested more than {MAX_NESTING_LEVELS} levels deep (a value that "
                                   "contains itself?)")
                elif t is dict:
                    self._walk(state, value, name, row, children, level + 1)
                    continue
                else:
                    if value:
                        state.list_levels.setdefault(name, level)
                        children.append((name, value))
                    continue
            convs = converters.get(name)
            if convs is not None and t is not int and convs.get(t) is IDENTITY:  # inlined common case
                row[name] = value
                continue
            self._scalar(state, name, key, prefix, value, row)

    def _column_name(self, state: _TableState, prefix: str, key: str) -> str:
        """Column for ``key``; a second key that normalizes alike gets a tag from its raw name."""
        if not isinstance(key, str):
            path = f"{prefix}__{key!r}" if prefix else repr(key)
            raise SchemaError(f"pipeline {self.schema.name!r}: table {state.table.name!r}: key {path} is of type "
                              f"{type(key).__name__}, not text; column names are made from text keys: give the "
                              "rows str keys (as json.dumps would write them)")
        name = (naming.join_path(prefix, naming.snake_case(key), self.max_length) if prefix
                else self.column_name(key))
        source = state.sources.setdefault(name, (prefix, key))
        if source == (prefix, key):
            return name
        tagged = naming.tagged(name, _dotted((prefix, key)), self.max_length)
        logger.warning("table %r: keys %r and %r both normalize to %r; %r goes to column %r",
                       state.table.name, _dotted(source), _dotted((prefix, key)), name,
                       _dotted((prefix, key)), tagged)
        if state.sources.setdefault(tagged, (prefix, key)) != (prefix, key):
            raise SchemaError(f"table {state.table.name!r}: cannot find a distinct column name for "
                              f"key {_dotted((prefix, key))!r}")
        return tagged

    def _scalar(self, state: _TableState, name: str, key: str, prefix: str, value: Any,
                row: dict[str, Any]) -> None:
        try:  # free until raised (3.11+); a value loadbay cannot load is named here
            convs = state.converters.get(name)
            if convs is None:
                if name not in state.table.columns and is_null(value):  # pandas' NaT or NA, numpy's NaT: like None
                    return
                convs = self._column_converters(state, name, value)
                if convs is None:  # contract discarded the value
                    return
            t = type(value)
            conv = convs.get(t)
            if conv is None:
                conv = convs[t] = converter_for(state.table.columns[name], t, self.decimal_precision,
                                                nan_infinity=self.nan_infinity)
                if conv is IDENTITY and not prefix and name == key:
                    state.passthrough.setdefault(key, set()).add(t)
            if conv is IDENTITY:
                if t is int and not INT64_MIN <= value <= INT64_MAX and \
                        state.table.columns[name].data_type == "bigint":
                    self._variant(state, name, value, row)
                    return
                row[name] = value
                return
            try:
                row[name] = conv(value)
            except NotCoercible:
                self._variant(state, name, value, row)
        except UnloadableValue as exc:
            raise self._unloadable(state, name, exc) from None

    def _unloadable(self, state: _TableState, name: str, exc: UnloadableValue) -> _UnloadableValue:
        source = state.sources.get(name)
        key = f" (key {_dotted(source)!r})" if source and _dotted(source) != name else ""
        return _UnloadableValue(f"pipeline {self.schema.name!r}: table {state.table.name!r} column {name!r}{key}: "
                                f"{exc}")

    def _column_converters(self, state: _TableState, name: str, value: Any) -> dict[type, Any] | None:
        table = state.table
        if name not in table.columns:
            if not self._may_add_column(state, name):
                return None
            self._check_room(table, name, source=state.sources.get(name))
            data_type, extra = infer_data_type(value, self.max_decimal_precision)
            hints = self._pending.get(table.name, {}).pop(name, {})
            table.columns[name] = _column({"name": name, "data_type": data_type, **extra, **hints})
            self.new_columns.setdefault(table.name, []).append(name)
            if data_type == "json":
                state.json_columns.add(name)
        convs = state.converters[name] = {}
        return convs

    def _check_room(self, table: Table, name: str, *, source: tuple[str, str] | None = None,
                    hinted: bool = False) -> None:
        """Stop before ``table`` gets more columns than the destination allows (``max_table_columns``)."""
        if self.max_columns is None:
            return
        count = len(table.columns)
        if hinted:  # hints come before the root table's system columns are added
            count += sum(system not in table.columns for system in (LOAD_ID, ROW_ID))
        if count < self.max_columns:
            return
        key = f" (key {_dotted(source)!r})" if source and _dotted(source) != name else ""
        message = (f"pipeline {self.schema.name!r}: table {table.name!r} would get column {name!r}{key} as its "
                   f"column number {count + 1}, but the destination ({self.dialect}) allows at most "
                   f"{self.max_columns} columns in a table (max_table_columns; loadbay's own _lb_ columns count)")
        if hinted:
            raise SchemaError(f"{message}; it is named in the column hints of the resource. Nothing was loaded.")
        raise _TooManyColumns(message)

    def _may_add_column(self, state: _TableState, name: str) -> bool:
        """New columns of a table that is itself new this run follow the tables contract."""
        mode = self.contract.columns
        if mode == "evolve" or state.table.name not in self._known:
            return True
        if mode == "freeze":
            raise SchemaContractViolation(self.schema.name, state.table.name, "columns", [name])
        if mode == "discard_row":
            raise _DiscardRow()
        return False

    def _variant(self, state: _TableState, name: str, value: Any, row: dict[str, Any]) -> None:
        column = state.table.columns[name]
        if takes_no_variant(column):
            if self.contract.data_type == "discard_row":
                raise _DiscardRow()
            refuse_variant_of_required(self.schema.name, state.table.name, column, type_name(type(value)), value)
        data_type, extra = infer_data_type(value, self.max_decimal_precision)
        non_finite = data_type == "double" and not self.nan_infinity and not math.isfinite(plain_value(value))
        if data_type == column.data_type or non_finite:  # fits the type but not this column (a too-wide
            data_type, extra = "text", {}                  # decimal), or NaN/±inf without a double for them
        if _last_resort(state.table, column):  # never a variant of a variant of ... (no loop, whatever the types)
            raise UnloadableValue(f"cannot load {type_name(type(value))} value {value!r:.60}")
        vname = naming.variant_name(name, data_type, self.max_length)
        if vname not in state.table.columns:
            mode = self.contract.data_type
            if mode == "freeze":
                raise SchemaContractViolation(
                    self.schema.name, state.table.name, "data types",
                    [f"{name} ({column.data_type}) got {type(value).__name__} {value!r:.40}"])
            if mode == "discard_row":
                raise _DiscardRow()
            if mode == "discard_value":
                return
            self._check_room(state.table, vname)
            if non_finite:
                logger.warning("table %r column %r: this destination's double columns cannot hold NaN or "
                               "infinities; such values go to column %r as 'NaN', 'Infinity', '-Infinity'",
                               state.table.name, name, vname)
            state.table.columns[vname] = Column(vname, data_type, variant_of=name, **extra)
            self.new_columns.setdefault(state.table.name, []).append(vname)
            if data_type == "json":
                state.json_columns.add(vname)
        self._scalar(state, vname, vname, "", value, row)


def _passes(passthrough: dict[str, set[type]], item: dict[str, Any]) -> bool:
    """Whether every value of ``item`` goes into its row unchanged, under its own key (a None
    value too: rows may carry None, which means NULL like a missing key)."""
    for key, value in item.items():
        t = type(value)
        types = passthrough.get(key)
        if types is None or t not in types or (t is int and not INT64_MIN <= value <= INT64_MAX):
            return False
    return True


def _column(d: dict[str, Any]) -> Column:
    try:
        return Column.from_dict(d)
    except TypeError as exc:
        raise SchemaError(f"column {d.get('name')!r}: bad hints {d}: {exc}") from exc


def _dotted(source: tuple[str, str]) -> str:
    prefix, key = source
    return f"{prefix}.{key}" if prefix else key
