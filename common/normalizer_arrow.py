"""Columnar normalizing of Arrow record batches: Arrow columns in, one Arrow table per schema table out.

The dict path (``RelationalNormalizer``) decides names and types key by key and value by value; this
path makes the same decisions once per Arrow column and does the work with Arrow kernels and numpy,
never a Python loop per row:

- names come from the same caches and rules (``state.names``, ``_column_name``: snake_case, shortening,
  tags for keys that normalize alike), so dicts and Arrow of the same data land in the same columns;
- a new column gets its type from the Arrow type (``arrow_types``), or from its first value where the
  dict path decides by value (ISO text, uint64); a column with no value in the batch gets no column yet;
- a column of another type than the schema's is converted (``arrow_convert``); values that do not fit go
  to the variant column the dict path would use, under the same schema contract;
- structs flatten to ``parent__child`` columns, lists become child tables linked by ``_lb_parent_id``,
  ``_lb_list_idx`` and ``_lb_root_id`` (a list directly inside a list is a json ``value``, as in the
  dict path), and ``_lb_id`` values come from the normalizer's own counter, hex-formatted by numpy.

A schema contract that discards rows marks them while the batch is walked; the batch is then walked
again without them, from the schema as it was before (``normalizer_undo``), so nothing of a discarded row
reaches any table, not even a column or table it would have made.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loadbay.common import arrow_build, arrow_json
from loadbay.common.arrow_convert import Rules, convert, sample, variant_types
from loadbay.common.arrow_types import kind_of, new_column_type, plain
from loadbay.common.exceptions import SchemaContractViolation, SchemaError
from loadbay.common.normalizer import _column
from loadbay.common.normalizer_refusals import (_DiscardRow, _TooManyColumns, refuse_variant_of_required,
                                                takes_no_variant)
from loadbay.common.normalizer_undo import Snapshot, discards_rows
from loadbay.common.row_hash import row_hash
from loadbay.common.schema import naming, scd2
from loadbay.common.schema.values import UnloadableValue
from loadbay.common.schema.types import LIST_IDX, LOAD_ID, PARENT_ID, ROOT_ID, ROW_ID, Column, Table

if TYPE_CHECKING:
    from loadbay.common.normalizer import RelationalNormalizer, _TableState

logger = logging.getLogger(__name__)
Fields = list[tuple[str, pa.Array]]
RawPath = tuple[str | None, ...]
"""Keys from a row down to a value; None steps into a list's elements."""
ExactRows = Callable[[np.ndarray], list[Any]]
"""The rows of a batch at the given positions, as ``json.loads`` gives them."""
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_PAIRS = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint16)  # byte → its 2 hex digits
ID_DIGITS = 12
"""Hex digits of the counter in an ``_lb_id``, after the normalizer's prefix (as ``_new_id`` formats it)."""


def normalize_arrow(norm: RelationalNormalizer, raw_table: str, batch: pa.RecordBatch | pa.Table,
                    exact_rows: ExactRows | None = None) -> dict[str, pa.Table]:
    """Per table name: a pyarrow Table of normalized rows of ``batch`` (items of the root table ``raw_table``),
    its column names schema column names, its columns typed for the load file (``arrow_types.storage_type``).

    ``exact_rows``, for a batch read from a JSON file: the batch's rows (by position) as ``json.loads`` gives
    them, asked for only where a struct or a list becomes json text (the struct does not tell a missing key
    from a null one; the dict path stores the object as it was written)."""
    name = norm.table_name(raw_table)
    try:
        state = norm._state(name)
    except _DiscardRow:  # a new table the contract does not let in: all its rows go
        return {}
    first = norm._items_seen.get(name, 0)
    norm._items_seen[name] = first + batch.num_rows
    fields: Fields = [(key, batch.column(i)) for i, key in enumerate(batch.schema.names)]
    if state.row_hash is not None:  # scd2: a hash per row, as the dict path makes it (one Python call a row)
        _refuse_duplicate_fields(norm, name, raw_table, fields)  # what to_pylist() cannot take either
        if state.row_hash in batch.schema.names:
            scd2.refuse_hash_column_key(norm.schema.name, name, state.row_hash)
        fields.append((state.row_hash, arrow_build.texts([row_hash(r) for r in batch.to_pylist()])))
    origin = np.arange(first, first + batch.num_rows)  # each row's place in the resource, for messages
    rows = np.arange(batch.num_rows)  # each row's place in the batch, for ``exact_rows``
    before = Snapshot(norm) if discards_rows(norm) else None  # what discarded rows taught is taken back
    while True:
        walker = _Walker(norm, raw_table, origin, exact_rows and (lambda at, rows=rows: exact_rows(rows[at])))
        root = walker.root(state, fields)
        if not walker.discard.any():
            return walker.tables(root) if root.n else {}
        assert before is not None  # only a contract that discards rows marks them
        before.restore(norm)
        keep = arrow_build.bools(~walker.discard)
        fields = [(key, plain(array).filter(keep)) for key, array in fields]
        origin, rows = origin[~walker.discard], rows[~walker.discard]


@dataclass
class _Level:
    """The rows of one table that one batch makes: the root's, or a list field's child rows."""

    state: _TableState
    n: int
    roots: np.ndarray | None = None  # root row of each row (None at the root itself)
    parents: np.ndarray | None = None  # parent row of each row, in the parent level
    list_idx: np.ndarray | None = None
    columns: dict[str, pa.Array] = field(default_factory=dict)
    lists: list[tuple[str, pa.Array, RawPath]] = field(default_factory=list)  # list fields: column-style name, array, keys
    raw: RawPath = ()  # the keys from a root row to this level's rows (None: into a list's elements)
    children: list[_Level] = field(default_factory=list)
    up: _Level | None = None  # the parent level
    field_pos: int = 0  # the place of this level's list among the parent's list fields

    def place(self, row: int) -> tuple[int, ...]:
        """Where row ``row`` stands in the order the dict path walks a batch (root row, then per level the
        list field and the element): a row is met before any row whose place sorts after it."""
        if self.up is None or self.parents is None or self.list_idx is None:
            return (row,)
        return (*self.up.place(int(self.parents[row])), self.field_pos, int(self.list_idx[row]))

    def root_rows(self, mask: Any) -> np.ndarray:
        """Root rows of the rows under ``mask``."""
        rows = np.flatnonzero(_numpy_mask(mask))
        return rows if self.roots is None else self.roots[rows]


class _Walker:
    """One pass over one batch: schema decisions as it goes, output columns per level."""

    def __init__(self, norm: RelationalNormalizer, raw_table: str, origin: np.ndarray,
                 exact_rows: ExactRows | None = None) -> None:
        self.norm = norm
        self.raw_table = raw_table
        self.origin = origin
        self.exact_rows = exact_rows  # rows of the batch (by position) as json.loads gives them (JSON files only)
        self._exact: list[Any] | None = None  # every row of the batch, once a json value needed them
        self._lines: dict[int, Any] = {}  # single rows read for the order of new columns
        self.rules = Rules(norm.decimal_precision, norm.max_decimal_precision, norm.nan_infinity)
        self.discard = np.zeros(len(origin), dtype=bool)
        self.created: list[tuple[Table, str, int, _Level, RawPath | None]] = []  # columns added: first row with a
        # value, level, keys (from the level's row; None where no key names it)
        self.created_tables: list[tuple[str, tuple[int, ...]]] = []  # child tables added, with where the dict
        # path meets their first row (``_Level.place`` of the parent row, then the list field)

    # -- walking ---------------------------------------------------------------------------------------

    def root(self, state: _TableState, fields: Fields) -> _Level:
        level = _Level(state, len(self.origin))
        self.walk(level, fields, "", state.depth)
        self.children(level)
        self.order_new_columns()
        return level

    def order_new_columns(self) -> None:
        """Put the columns this batch added in the order the dict path adds them, row by row: by the
        first row with a value, then in the order of the fields (a column at a time has added them
        field by field); for a JSON file's batch, columns first seen in one row in the order of that row's
        keys (its fields are in the order keys first appear anywhere in the file)."""
        tied = _tied(self.created) if self.exact_rows is not None else set()
        ordered = sorted(enumerate(self.created), key=lambda item: (
            item[1][2], self.key_places(*item[1][2:]) if (id(item[1][3]), item[1][2]) in tied else (), item[0]))
        for _, (table, name, *_rest) in ordered:
            table.columns[name] = table.columns.pop(name)
        tables = self.norm.schema.tables
        for _, (name, _row) in sorted(enumerate(self.created_tables), key=lambda item: (item[1][1], item[0])):
            tables[name] = tables.pop(name)

    def key_places(self, row: int, level: _Level, raw: RawPath | None) -> tuple[int, ...]:
        """Where the keys ``raw`` stand in row ``row`` of ``level`` (the place of each key among its
        object's keys), from the file's own line: the dict path adds columns in that order."""
        if raw is None:
            return (_LAST,)
        value = self.element(level, row)
        places = []
        for key in raw:
            if not isinstance(value, dict) or key not in value:
                places.append(_LAST)
                break
            places.append(list(value).index(key))
            value = value[key]
        return tuple(places)

    def element(self, level: _Level, row: int) -> Any:
        """Row ``row`` of ``level`` as ``json.loads`` gives it (for a child level: that list element)."""
        root = row if level.roots is None else int(level.roots[row])
        if self._exact is not None:
            line = self._exact[root]
        elif root in self._lines:
            line = self._lines[root]
        else:  # one line, read once: every column first seen in this row asks for it
            line = self._lines[root] = self.exact_rows(np.array([root]))[0]  # type: ignore[misc]
        if level.roots is None:
            return line
        elements: list[Any] = []
        _collect(line, level.raw, elements)
        return elements[row - int(np.searchsorted(level.roots, root))]

    def walk(self, level: _Level, fields: Fields, prefix: str, depth: int, raw: RawPath = ()) -> None:
        """Scalar columns of ``fields`` (at nesting ``depth``) into ``level``, structs flattened under
        ``prefix``, list fields noted; a struct or list at the table's ``max_nesting`` is json, as in the dict path.
        ``raw``: the keys from this level's row to ``fields``."""
        state = level.state
        self.check_unique(level, fields, prefix)
        names = state.names.get(prefix)
        if names is None:
            names = state.names[prefix] = {}
        for key, array in fields:
            name = names.get(key)
            if name is None:
                name = names[key] = self.norm._column_name(state, prefix, key)
            array = plain(array)
            if array.null_count == len(array):  # no value: nothing to store, no column to make
                continue
            kind = kind_of(array.type)
            if kind in ("struct", "list") and name not in state.json_columns and state.max_nesting is not None \
                    and depth >= state.max_nesting:
                state.json_columns.add(name)
            if kind == "struct" and name not in state.json_columns:
                self.walk(level, _struct_fields(array), name, depth + 1, raw + (key,))
            elif kind == "list" and name not in state.json_columns:
                state.list_levels.setdefault(name, depth)
                level.lists.append((name, array, raw + (key,)))
            elif self.exact_rows is not None and _holds_struct(array.type):  # json of the objects as written
                self.put(level, name, self.exact_values(level, name, raw + (key,)), "python", raw + (key,))
            else:
                self.put(level, name, *_scalar_kind(array, kind), raw=raw + (key,))

    def check_unique(self, level: _Level, fields: Fields, prefix: str) -> None:
        """Arrow lets a table (or a struct) have two fields of one name; a row cannot, and merging them
        would lose values, so such data is refused."""
        keys = [key for key, _ in fields]
        if len(set(keys)) != len(keys):
            raise _duplicate_fields(self.norm, level.state.table.name, self.raw_table, keys, prefix)

    def children(self, parent: _Level) -> None:
        for pos, (name, array, raw) in enumerate(parent.lists):
            self.child(parent, name, array, raw, pos)

    def child(self, parent: _Level, field_name: str, array: pa.Array, raw: RawPath, pos: int = 0) -> None:
        """The child rows of list field ``field_name``: one per element, null elements too."""
        norm, state = self.norm, parent.state
        lengths = pc.list_value_length(array)
        lengths = arrow_build.to_numpy(pc.fill_null(lengths, arrow_build.scalar(0, lengths.type))).astype(np.int64)
        total = int(lengths.sum())
        if not total or not (lengths[~self.discarded(parent)] > 0).any():  # no child rows (of rows kept): no table
            return
        child_name = state.child_tables.get(field_name)
        if child_name is None:
            child_name = norm.child_table_name(state, field_name)
            state.child_tables[field_name] = child_name
        is_new = child_name not in norm.schema.tables
        try:
            child_state = norm.known_state(child_name) or norm._state(child_name, state, field_name)
        except _DiscardRow:  # a new child table the contract keeps out: its rows' items go
            self.discard_rows(parent, lengths > 0)
            return
        if is_new:
            self.created_tables.append((child_name, (*parent.place(int(np.flatnonzero(lengths)[0])), pos)))
        parents = np.repeat(np.arange(parent.n), lengths)
        starts = np.cumsum(lengths) - lengths
        level = _Level(child_state, total, parents if parent.roots is None else parent.roots[parents], parents,
                       np.arange(total) - np.repeat(starts, lengths), raw=parent.raw + raw + (None,), up=parent,
                       field_pos=pos)
        values = plain(pc.list_flatten(array))
        kind = kind_of(values.type)
        if kind == "struct":
            self.walk(level, _struct_fields(values), "", child_state.depth)
        elif values.null_count < len(values):  # scalars (a list in a list too: json, as in the dict path)
            if kind == "list" and self.exact_rows is not None and _holds_struct(values.type):
                self.put(level, "value", self.exact_values(level, "value", ()), "python")
            else:
                self.put(level, "value", *_scalar_kind(values, "json" if kind == "list" else kind))
        parent.children.append(level)
        self.children(level)

    def exact_values(self, level: _Level, name: str, raw: RawPath) -> pa.Array:
        """The values at keys ``raw`` of ``level``'s rows (for column ``name``), from the rows as ``json.loads``
        gives them."""
        if self._exact is None:
            self._exact = self.exact_rows(np.arange(len(self.origin)))  # type: ignore[misc]
        values: list[Any] = []
        for row in self._exact:
            _collect(row, level.raw + raw, values)
        if len(values) != level.n:  # the file's rows and DuckDB's disagree: never expected, never guessed
            raise SchemaError(f"pipeline {self.norm.schema.name!r}: table {level.state.table.name!r}: the JSON file's "
                              f"rows give {len(values)} values at {raw!r} where its record batch has {level.n}")
        try:
            return arrow_json.json_values(values)
        except UnloadableValue as exc:  # name the item of the first value that cannot be written
            failing = np.array([v is not None and not _writable(v) for v in values])
            raise self.unloadable(level, name, arrow_build.bools(failing, valid=failing), exc) from None

    # -- columns ---------------------------------------------------------------------------------------

    def put(self, level: _Level, name: str, array: pa.Array, kind: str, raw: RawPath | None = None) -> None:
        """Values of column ``name`` (of the keys ``raw``): converted to its type; those that do not fit go to a
        variant."""
        if kind == "numbers":  # JSON ints and floats: each part as the dict path puts each value
            for part, part_kind in arrow_json.parts(array):
                self.put(level, name, part, part_kind, raw)
            return
        column = level.state.table.columns.get(name)
        if self.discard.any():  # rows already discarded decide nothing (they are walked again without)
            array = _nulled(array, self.discarded(level))
            if column is None and array.null_count == len(array):
                return
        try:
            if column is None:
                column = self.new_column(level, name, array, kind, raw)
                if column is None:
                    return
            values, failed = convert(array, kind, column, self.rules)
        except UnloadableValue as exc:  # values of a type loadbay does not know (decided value by value)
            raise self.unloadable(level, name, array, exc) from None
        previous = level.columns.get(name)  # two sources of one column (a variant named like a key)
        level.columns[name] = values if previous is None else pc.coalesce(previous, values)
        if failed is not None:
            self.variants(level, column, _where(failed, array), kind, raw)

    def new_column(self, level: _Level, name: str, array: pa.Array, kind: str,
                   raw: RawPath | None = None) -> Column | None:
        """Add column ``name`` as the dict path would for the first value, or None where the contract says no."""
        norm, state = self.norm, level.state
        table = state.table
        try:
            if not norm._may_add_column(state, name):  # discard_value: the values go
                return None
        except _DiscardRow:
            self.discard_rows(level, array.is_valid())
            return None
        self.check_room(level, name, array.is_valid(), source=state.sources.get(name))
        data_type, extra = new_column_type(array, kind, norm.max_decimal_precision, norm.decimal_precision)
        hints = norm._pending.get(table.name, {}).pop(name, {})
        column = table.columns[name] = _column({"name": name, "data_type": data_type, **extra, **hints})
        norm.new_columns.setdefault(table.name, []).append(name)
        self.created.append((table, name, _first(array.is_valid()), level, raw))
        if data_type == "json":
            state.json_columns.add(name)
        return column

    def variants(self, level: _Level, column: Column, failing: pa.Array, kind: str, raw: RawPath | None = None) -> None:
        """Values of ``column`` that did not fit, into the variant column of their own type."""
        norm, table = self.norm, level.state.table
        for data_type, extra, mask, non_finite in variant_types(failing, kind, column, self.rules):
            if takes_no_variant(column):
                if norm.contract.data_type == "discard_row":
                    self.discard_rows(level, mask)
                    continue
                refuse_variant_of_required(norm.schema.name, table.name, column, kind, sample(failing, mask))
            if column.variant_of is not None and data_type == column.data_type:  # no variant of a variant
                raise self.unloadable(level, column.name, failing, UnloadableValue(
                    f"cannot load {kind} value {sample(failing, mask)!r:.60} in a {data_type} column"))
            vname = naming.variant_name(column.name, data_type, norm.max_length)
            if vname not in table.columns:
                mode = norm.contract.data_type
                if mode == "freeze":
                    value = sample(failing, mask)
                    raise SchemaContractViolation(
                        norm.schema.name, table.name, "data types",
                        [f"{column.name} ({column.data_type}) got {type(value).__name__} {value!r:.40}"])
                if mode == "discard_row":
                    self.discard_rows(level, mask)
                    continue
                if mode == "discard_value":
                    continue
                self.check_room(level, vname, mask)
                if non_finite:
                    logger.warning("table %r column %r: this destination's double columns cannot hold NaN or "
                                   "infinities; such values go to column %r as 'NaN', 'Infinity', '-Infinity'",
                                   table.name, column.name, vname)
                table.columns[vname] = Column(vname, data_type, variant_of=column.name, **extra)
                norm.new_columns.setdefault(table.name, []).append(vname)
                self.created.append((table, vname, _first(mask), level, raw))
                if data_type == "json":
                    level.state.json_columns.add(vname)
            self.put(level, vname, _where(mask, failing), kind, raw)

    def check_room(self, level: _Level, name: str, mask: Any, *, source: tuple[str, str] | None = None) -> None:
        """``_check_room`` of the dict path, naming the first item that brought the column."""
        try:
            self.norm._check_room(level.state.table, name, source=source)
        except _TooManyColumns as exc:
            raise SchemaError(f"{exc}; {self.where(level, mask)}. {exc.advice}") from None

    def unloadable(self, level: _Level, name: str, array: pa.Array, exc: UnloadableValue) -> SchemaError:
        return SchemaError(f"pipeline {self.norm.schema.name!r}: table {level.state.table.name!r} column {name!r}: "
                           f"{exc}; {self.where(level, array.is_valid())}. Nothing of this run is loaded: convert "
                           "such values before loading, or leave the column out.")

    def where(self, level: _Level, mask: Any) -> str:
        """Which item brought the first value under ``mask``, counted from 1 in the resource (as the dict path says)."""
        rows = level.root_rows(mask)
        position = int(self.origin[rows[0]] if len(rows) else self.origin[0]) + 1
        return f"it appeared in item {position} of resource {self.raw_table!r} (counting from 1)"

    def discarded(self, level: _Level) -> np.ndarray:
        """Which rows of ``level`` belong to root rows the contract discarded so far in this walk."""
        return self.discard if level.roots is None else self.discard[level.roots]

    def discard_rows(self, level: _Level, mask: Any) -> None:
        """The contract drops the items of the rows under ``mask`` (the batch is walked again without them)."""
        self.discard[level.root_rows(mask)] = True

    # -- output ----------------------------------------------------------------------------------------

    def tables(self, root: _Level) -> dict[str, pa.Table]:
        out: dict[str, pa.Table] = {}
        root_ids = new_ids(self.norm, root.n)
        system = {LOAD_ID: pa.repeat(arrow_build.scalar(self.norm.load_id, pa.string()), root.n), ROW_ID: root_ids}
        self.emit(root, system, out)
        pending = [(child, root_ids) for child in root.children]
        while pending:
            level, parent_ids = pending.pop(0)
            ids = new_ids(self.norm, level.n)
            self.emit(level, {PARENT_ID: parent_ids.take(arrow_build.numbers(level.parents)),
                              LIST_IDX: arrow_build.numbers(level.list_idx),
                              ROOT_ID: root_ids.take(arrow_build.numbers(level.roots)), ROW_ID: ids}, out)
            pending.extend((child, ids) for child in level.children)
        return out

    def emit(self, level: _Level, system: dict[str, pa.Array], out: dict[str, pa.Table]) -> None:
        """``level``'s rows as a table, columns in schema order (columns without a value left out)."""
        columns = {**system, **level.columns}
        names = [name for name in level.state.table.columns if name in columns]
        table = pa.Table.from_arrays([columns[name] for name in names], names=names)
        name = level.state.table.name
        out[name] = table if name not in out else pa.concat_tables([out[name], table], promote_options="default")


def new_ids(norm: RelationalNormalizer, n: int) -> pa.StringArray:
    """``n`` row ids from the normalizer's counter, the same strings ``n`` calls of ``_new_id`` give,
    formatted by numpy into one buffer."""
    if not n:
        return arrow_build.texts([])
    start = next(norm._ids)
    norm._ids = itertools.count(start + n)  # the dict path takes its next id after these
    return id_array(norm.id_prefix, start, n)


def id_array(prefix: str, start: int, n: int) -> pa.StringArray:
    """``f"{prefix}{i:012x}"`` for i in start … start + n - 1, as an Arrow string array."""
    head = prefix.encode()
    width = len(head) + ID_DIGITS
    buffer = np.empty((n, width), dtype=np.uint8)
    buffer[:, :len(head)] = np.frombuffer(head, dtype=np.uint8)
    counter_bytes = np.arange(start, start + n, dtype=">u8").view(np.uint8).reshape(n, 8)[:, 8 - ID_DIGITS // 2:]
    buffer[:, len(head):] = _HEX_PAIRS[counter_bytes].view(np.uint8)  # big-endian bytes → 2 digits each
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buffer))


def _writable(value: Any) -> bool:
    try:
        arrow_json.json_values([value])
    except UnloadableValue:
        return False
    return True


_LAST = 1 << 30  # the place of a key a row does not hold


def _tied(created: list[tuple[Table, str, int, _Level, RawPath | None]]) -> set[tuple[int, int]]:
    """(level, row) of the rows where more than one new column first got a value."""
    counts: dict[tuple[int, int], int] = {}
    for _table, _name, row, level, _raw in created:
        counts[(id(level), row)] = counts.get((id(level), row), 0) + 1
    return {place for place, n in counts.items() if n > 1}


def _holds_struct(t: pa.DataType) -> bool:
    """Whether values of ``t`` hold objects (a struct, or lists of them at any depth): only those lose the
    difference between a missing key and a null one."""
    if pa.types.is_struct(t):
        return True
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _holds_struct(t.value_type)
    return False


def _collect(value: Any, raw: RawPath, out: list[Any]) -> None:
    """Append to ``out`` the values at keys ``raw`` of ``value`` (a row): one per element where ``raw`` steps
    into a list (None), none for a missing or null list, one None for a missing or null key."""
    if not raw:
        out.append(value)
        return
    step, rest = raw[0], raw[1:]
    if step is None:
        if isinstance(value, list):
            for item in value:
                _collect(item, rest, out)
        return
    found = value.get(step) if isinstance(value, dict) else None
    if found is None:
        if None not in rest:
            out.append(None)
        return
    _collect(found, rest, out)


def _struct_fields(array: pa.StructArray) -> Fields:
    """The fields of a struct array, null where the struct itself is null."""
    return [(array.type.field(i).name, child) for i, child in enumerate(array.flatten())]


def _scalar_kind(array: pa.Array, kind: str) -> tuple[pa.Array, str]:
    """Durations as bigint microseconds, uuids as their canonical text; other kinds as they are."""
    if kind == "duration":
        return array.cast(pa.duration("us"), safe=False).cast(pa.int64()), "int"
    if kind == "uuid":
        return uuid_text(array), "text"
    return array, kind


def uuid_text(array: pa.Array) -> pa.StringArray:
    """Canonical ``8-4-4-4-12`` hex text of uuid (16-byte) values, formatted by numpy."""
    storage = array.storage if isinstance(array.type, pa.BaseExtensionType) else array
    n = len(storage)
    raw = np.frombuffer(storage.buffers()[1], dtype=np.uint8)[storage.offset * 16:(storage.offset + n) * 16]
    raw = raw.reshape(n, 16)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX[raw >> 4]
    hexed[:, 1::2] = _HEX[raw & 15]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    for start, end, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        text[:, at:at + end - start] = hexed[:, start:end]
    offsets = np.arange(0, (n + 1) * 36, 36, dtype=np.int32)
    text_array = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text))
    return text_array if not storage.null_count else pc.if_else(storage.is_valid(), text_array, arrow_build.scalar(None, pa.string()))


def _where(mask: pa.BooleanArray, array: pa.Array) -> pa.Array:
    """``array`` where ``mask`` is true, NULL elsewhere (a take for types ``if_else`` has no kernel for:
    extension types, unions)."""
    try:
        return pc.if_else(mask, array, arrow_build.scalar(None, array.type))
    except pa.ArrowNotImplementedError:
        keep = _numpy_mask(mask)
        return array.take(arrow_build.numbers(np.arange(len(array)), valid=keep))


def _duplicate_fields(norm: RelationalNormalizer, table: str, raw_table: str, keys: list[str],
                      prefix: str) -> SchemaError:
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    where = f" in struct {prefix!r}" if prefix else ""
    return SchemaError(f"pipeline {norm.schema.name!r}: table {table!r}: the Arrow data has more than one field "
                       f"named {', '.join(map(repr, duplicated))}{where} (resource {raw_table!r}). Rename or drop "
                       "the duplicates before loading.")


def _refuse_duplicate_fields(norm: RelationalNormalizer, table: str, raw_table: str, fields: Fields) -> None:
    """``check_unique`` for every struct (also in lists) at once, by the types alone, before the walk: the scd2
    row hash reads rows first (``to_pylist`` cannot take two fields of one name either)."""
    pending: list[tuple[str, list[tuple[str, pa.DataType]]]] = [("", [(key, array.type) for key, array in fields])]
    while pending:
        prefix, named = pending.pop()
        keys = [key for key, _ in named]
        if len(set(keys)) != len(keys):
            raise _duplicate_fields(norm, table, raw_table, keys, prefix)
        for key, data_type in named:
            while pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
                data_type = data_type.value_type
            if pa.types.is_struct(data_type):
                inner = [(data_type.field(i).name, data_type.field(i).type) for i in range(data_type.num_fields)]
                pending.append((f"{prefix}__{key}" if prefix else key, inner))


def _nulled(array: pa.Array, mask: np.ndarray) -> pa.Array:
    """``array`` with NULL where ``mask`` is set (as it is where Arrow has no kernel for its type)."""
    if not mask.any():
        return array
    try:
        return pc.if_else(arrow_build.bools(mask), pa.scalar(None, array.type), array)
    except pa.ArrowNotImplementedError:
        return array


def _first(mask: Any) -> int:
    """Index of the first true value of a boolean Arrow array (-1 when none is)."""
    return arrow_build.first_true(mask)


def _numpy_mask(mask: Any) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask
    return arrow_build.to_numpy(pc.fill_null(mask, arrow_build.FALSE))
