"""Incremental loading: a cursor per resource, so a run loads only the rows newer than the last run's.

``loadbay.resource(rows, "events", incremental=loadbay.incremental("updated_at", initial_value=...))``: the
pipeline gives the resource its last cursor value before the run (``start_value``, which a generator may
use to ask its API for less), drops the rows at or below it, and records the new highest value with the
package. Rows whose cursor equals the last value are told apart by a hash of the whole row, so a row
that arrives again at the boundary is not loaded twice and a new one with the same timestamp is.

Where the cursor lives: in the package's meta until the package loads, then in ``_lb_pipeline_state``,
written in the same transaction as the package's ``_lb_loads`` row, and in the pipeline's local
``state.json``. A run that dies before its package is complete leaves the cursor where it was; a new
machine (no local state) reads it back from the destination.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from loadbay.common.exceptions import LoadbayError, SourceError
from loadbay.common.row_hash import row_hash

STATE_KEY = "incremental"
"""Key of the cursors in the pipeline state: resource name → ``Incremental.state()``."""
CURSORS_KEY = "cursors"
"""Package meta: the cursors of the package's resources once it is loaded (resource name → ``state()``)."""


@dataclass
class Incremental:
    """A cursor on ``cursor_path`` (a key, or ``a.b`` into nested dicts); ``initial_value`` bounds the first run.

    ``bind`` fixes where a run starts (``start_value`` and the rows already loaded at it); filtering compares
    every row with that, whatever order the rows come in, and keeps the highest value kept separately, for
    ``state()`` at the end of the run.
    """

    cursor_path: str
    initial_value: Any = None
    last_value: Any = None
    """The highest cursor value loaded (or normalized into a pending package) before this run; None at first."""
    boundary: set[str] = field(default_factory=set)
    """Hashes of the rows at ``last_value`` loaded before this run."""
    _top: Any = field(default=None, repr=False)
    _top_rows: set[str] = field(default_factory=set, repr=False)  # hashes at _top from before this run
    _top_new: list[Any] = field(default_factory=list, repr=False)  # rows at _top kept now: hashed by state()

    @property
    def start_value(self) -> Any:
        """Where this run starts: the last value, or ``initial_value`` on the first run."""
        return self.initial_value if self.last_value is None else self.last_value

    def bind(self, state: dict[str, Any] | None) -> None:
        """Take the cursor a resource's earlier runs left (``state()`` of then); a changed cursor path starts over."""
        if not state or state.get("cursor_path") != self.cursor_path:
            self.last_value, self.boundary = None, set()
        else:
            self.last_value = _decode(state.get("last_value"))
            self.boundary = set(state.get("boundary", []))
        self._top, self._top_rows, self._top_new = self.last_value, set(self.boundary), []

    def state(self) -> dict[str, Any]:
        """The cursor after this run: the highest value kept (or the start), with the rows at it."""
        boundary = self._top_rows | {_row_hash(row) for row in self._top_new}
        return {"cursor_path": self.cursor_path, "last_value": _encode(self._top), "boundary": sorted(boundary)}

    # -- filtering -------------------------------------------------------------------------------
    def filter(self, batch: Any, resource: str) -> Any:
        """The rows of ``batch`` (dicts, pages of dicts, or an Arrow table or record batch) past the start."""
        if hasattr(batch, "schema") and hasattr(batch, "num_rows"):
            if not _compared_by_value(batch, self.cursor_path):
                return self._filter_arrow(batch, resource)
            batch = batch.to_pylist()
        rows = [row for item in batch for row in (item if isinstance(item, list) else [item])]  # pages: their rows
        return [row for position, row in enumerate(rows) if self._keep(row, self._value(row, resource, position))]

    def _value(self, row: Any, resource: str, position: int) -> Any:
        value = row
        for key in self.cursor_path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            raise SourceError(f"resource {resource!r}: row {position + 1} of a batch has no value at incremental "
                               f"cursor {self.cursor_path!r}; every row needs one (or load it without incremental)")
        return value

    def _keep(self, row: Any, value: Any) -> bool:
        start, last = self.initial_value, self.last_value
        try:
            if last is None:
                if start is not None and value < start:
                    return False
            elif value < last or (value == last and _loaded_before(row, self.boundary)):
                return False
            self._advance(value, row)
        except TypeError as exc:
            raise SourceError(f"incremental cursor {self.cursor_path!r}: {value!r} cannot be compared with "
                               f"{last if last is not None else start!r} ({exc})") from exc
        return True

    def _advance(self, value: Any, row: Any) -> None:
        """Note ``row`` if its value is the highest so far; rows are hashed only once the run's top is known
        (``state()``), not each time a new top comes along."""
        if self._top is None or value > self._top:
            self._top, self._top_rows, self._top_new = value, set(), [row]
        elif value == self._top:
            self._top_new.append(row)

    def _filter_arrow(self, batch: Any, resource: str) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        from loadbay.sources import json_rows

        column = batch.column(self.cursor_path) if "." not in self.cursor_path else None
        if column is None or column.null_count:
            where = "no column" if column is None else "nulls in column"
            raise SourceError(f"resource {resource!r}: Arrow data with {where} {self.cursor_path!r}, the "
                               "incremental cursor (a top-level column without nulls)")
        bound = self.start_value
        if bound is None:
            keep = pa.array([True] * batch.num_rows)
        else:
            keep = pc.greater(column, pa.scalar(bound, type=column.type))
            at_bound = pc.equal(column, pa.scalar(bound, type=column.type))
            if self.last_value is not None and pc.any(at_bound).as_py():  # the boundary rows: as dicts, by hash
                rows = batch.filter(at_bound).to_pylist()
                fresh = iter([not _loaded_before(r, self.boundary) for r in rows])
                mask = [next(fresh) if eq else False for eq in at_bound.to_pylist()]
                keep = pc.or_(keep, pa.array(mask))
            elif self.last_value is None:
                keep = pc.or_(keep, at_bound)  # the first run keeps initial_value itself
        kept = json_rows.filtered(batch, keep) if isinstance(batch, pa.RecordBatch) else batch.filter(keep)
        if kept.num_rows:
            top = pc.max(kept.column(self.cursor_path)).as_py()
            if self._top is None or top >= self._top:
                for row in kept.filter(pc.equal(kept.column(self.cursor_path),
                                                pa.scalar(top, type=column.type))).to_pylist():
                    self._advance(top, row)
        return kept


def _compared_by_value(batch: Any, cursor_path: str) -> bool:
    """Whether the cursor column holds JSON ints and floats side by side (``JsonNumbers``, from a JSON file):
    Arrow cannot compare those, and a float would round a large int, so such a batch is filtered as dicts."""
    from loadbay.common.arrow_json import is_json_numbers

    names = batch.schema.names
    return cursor_path in names and is_json_numbers(batch.schema.field(cursor_path).type)


def with_package_state(state: dict[str, Any] | None, meta: dict[str, Any]) -> dict[str, Any] | None:
    """``state`` (the pipeline's, as of the packages loaded before) with the cursors ``meta`` (a package's)
    moved on: what ``_lb_pipeline_state`` holds once that package is loaded."""
    moved = meta.get(CURSORS_KEY)
    if state is None or not moved:
        return state
    return {**state, STATE_KEY: {**state.get(STATE_KEY, {}), **moved}}


def incremental(cursor_path: str, initial_value: Any = None) -> Incremental:
    """A cursor for ``loadbay.resource(..., incremental=...)`` (or ``p.run(..., incremental=...)``)."""
    if not cursor_path or not isinstance(cursor_path, str):
        raise LoadbayError("incremental needs the name of the cursor column, e.g. incremental('updated_at')")
    return Incremental(cursor_path, initial_value)


def _row_hash(row: Any) -> str:
    """The hash a boundary row is kept by: scd2's content hash, for which a missing key and a null one are
    alike, so a row hashes the same as a dict, as an Arrow row (every field of its schema) and read from
    a later file whose other rows bring new keys."""
    return row_hash(row)


def _loaded_before(row: Any, boundary: set[str]) -> bool:
    """Whether ``row`` is a boundary row a run before loaded: by ``_row_hash``, or by the hash of the rows
    as given (20 hex digits) that cursors stored before 2026-11-28."""
    if _row_hash(row) in boundary:
        return True
    legacy = orjson.dumps(row, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(legacy).hexdigest()[:20] in boundary


def _encode(value: Any) -> Any:
    """A cursor value as JSON (datetimes and dates tagged, so they come back as themselves)."""
    if isinstance(value, datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise LoadbayError(f"an incremental cursor of type {type(value).__name__} cannot be stored; use a number, "
                       "a string, a date or a datetime")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "datetime" in value:
            return datetime.fromisoformat(value["datetime"])
        if "date" in value:
            return date.fromisoformat(value["date"])
    return value
