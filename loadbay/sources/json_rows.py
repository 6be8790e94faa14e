"""A JSON file's record batches, tied back to the file's rows as ``json.loads`` gives them.

DuckDB reads a JSON object into a STRUCT of every key the file has: a key an object lacks and a key that
holds null become the same NULL. Flattened into columns that is what the dict path stores too, but where
an object is stored as json text (a ``json`` column hint, ``max_table_nesting``, lists in lists) the dict
path stores it as it was written (``{"a": 1}``, not ``{"a": 1, "b": null}``). So each record batch the JSON
reader hands on names its file and its first row (``tag``); the Arrow normalizer asks for the batch's rows
(``exact_rows``) only when it meets such a value, and this module parses just those lines with the
reader's own ``loads``, reading the file forward as the batches come. A second ask within one batch (the
reader's null-line check, then the normalizer) seeks back to the batch's first line; a compressed file
cannot seek, so the lines of its current batch read so far are held in memory until the next batch.

A batch lives while its reader does: the reader closes its ``RowSource`` when its last batch has been
taken, which the normalizer has then finished with. A batch filtered on the way (an incremental cursor)
keeps its rows' places (``filtered``).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loadbay.common import arrow_build
from loadbay.common.exceptions import SourceError

SOURCE = b"loadbay.json_rows.source"
FIRST_ROW = b"loadbay.json_rows.first_row"
KEPT = b"loadbay.json_rows.kept"  # int64 positions in the batch as read, after a filter

_OPEN: dict[str, RowSource] = {}


class RowSource:
    """The rows of one JSON file (or stdin chunk), parsed on request, reading the file forward."""

    def __init__(self, path: Path, *, fmt: str, compression: str, opener: Callable[[Path, str], io.BufferedReader],
                 loads: Callable[[bytes], Any], refusal: Callable[[ValueError], Exception] | None = None) -> None:
        """``refusal``: the error for a line ``loads`` refuses though DuckDB read it (``nan``, pretty-printed
        objects one after another): the reader's, naming the file's first malformed line."""
        self.path, self.format, self.compression = path, fmt, compression
        self._opener, self._loads, self._refusal = opener, loads, refusal
        self.token = uuid.uuid4().hex
        self._lines: Iterator[bytes] | None = None
        self._file: io.BufferedReader | None = None
        self._next = 0  # the row the next non-blank line holds
        self._offset = 0  # the byte offset of the next line
        self._batch_start = 0  # the first row of the batch tagged last
        self._anchor: tuple[int, int] | None = None  # (row, offset) of that batch's start, once read past
        self._held: list[bytes] = []  # a file that cannot seek (compressed): lines of the batch read so far,
        self._held_from = 0  # the first of them row ``_held_from``
        self._items: list[Any] | None = None  # a JSON document's items (format auto)
        _OPEN[self.token] = self

    def begin(self, first_row: int) -> None:
        """The batch read now starts at row ``first_row``: lines before it are not asked for again."""
        self._batch_start, self._held, self._held_from = first_row, [], first_row

    def tag(self, batch: pa.RecordBatch, first_row: int) -> pa.RecordBatch:
        """``batch``, whose first row is row ``first_row`` of the file, with this source named in its metadata."""
        meta = dict(batch.schema.metadata or {})
        meta.update({SOURCE: self.token.encode(), FIRST_ROW: str(first_row).encode()})
        if first_row != self._batch_start:
            self.begin(first_row)
        return batch.replace_schema_metadata(meta)

    def _parsed(self, line: bytes) -> Any:
        try:
            return self._loads(line)
        except ValueError as exc:
            found = self._refusal(exc) if self._refusal is not None else None
            if isinstance(found, SourceError):
                raise found from exc
            raise SourceError(f"file {self.path}: a line DuckDB read does not parse as JSON ({exc})",
                              path=str(self.path)) from exc

    def rows(self, rows: np.ndarray) -> list[Any]:
        """Rows ``rows`` (ascending) of the file, as ``loads`` gives them."""
        if self.format == "auto" and self._document() is not None:
            items = self._items or []
            if len(rows) and int(rows[-1]) >= len(items):
                raise ValueError(f"file {self.path}: has {len(items)} rows, row {int(rows[-1])} was asked for")
            return [items[int(r)] for r in rows]
        wanted = [int(r) for r in rows]
        if not wanted:
            return []
        out: list[Any] = []
        at = 0
        held_end = self._held_from + len(self._held)
        if self._held and self._held_from <= wanted[0] and held_end == self._next:  # read past: kept in memory
            while at < len(wanted) and wanted[at] < held_end:
                out.append(self._parsed(self._held[wanted[at] - self._held_from]))
                at += 1
            if at == len(wanted):
                return out
        elif self._lines is None or wanted[0] < self._next:
            self._restart(wanted[0])
        hold = self._file is not None and not self._file.seekable()
        for line in self._lines:  # type: ignore[union-attr]
            if self._next == self._batch_start:  # a later ask within this batch starts from here, not row 0
                self._anchor = (self._next, self._offset)
            self._offset += len(line)
            if not line.strip():
                continue
            if hold and self._next == self._held_from + len(self._held):
                self._held.append(line)
            if self._next == wanted[at]:
                out.append(self._parsed(line))
                at += 1
            self._next += 1
            if at == len(wanted):
                break
        if at != len(wanted):
            raise ValueError(f"file {self.path}: has {self._next} rows, row {wanted[at]} was asked for")
        return out

    def _document(self) -> list[Any] | None:
        """A ``.json`` document's items (an array's, or the one object), or None when it is JSON lines."""
        if self._items is None:
            with self._opener(self.path, self.compression) as f:
                data = f.read()
            try:
                document = self._loads(data)
            except ValueError:
                self.format = "newline_delimited"  # JSON lines in a .json file
                return None
            self._items = document if isinstance(document, list) else [document]
        return self._items

    def _restart(self, row: int) -> None:
        """Read on from the start of the current batch if ``row`` is in it and the file can seek, else from
        the start of the file (a compressed file's batch lines are held instead: ``_held``)."""
        anchor = self._anchor
        if anchor is not None and anchor[0] <= row and self._file is not None and self._file.seekable():
            self._file.seek(anchor[1])
            self._lines = iter(self._file)
            self._next, self._offset = anchor
            return
        self._rewind()

    def _rewind(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._opener(self.path, self.compression)
        self._lines = iter(self._file)
        self._next, self._offset = 0, 0
        self._held, self._held_from = [], self._batch_start

    def close(self) -> None:
        _OPEN.pop(self.token, None)
        if self._file is not None:
            self._file.close()
            self._file = None
        self._lines, self._items = None, None


def exact_rows(batch: Any) -> Callable[[np.ndarray], list[Any]] | None:
    """For a batch a ``RowSource`` tagged: the function giving its rows (by position in ``batch``) as
    ``loads`` gives them; None for any other batch, or one whose reader is gone."""
    meta = getattr(batch.schema, "metadata", None) or {}
    source = _OPEN.get(meta.get(SOURCE, b"").decode())
    if source is None:
        return None
    first = int(meta[FIRST_ROW])
    kept = np.frombuffer(meta[KEPT], dtype=np.int64) if KEPT in meta else None

    def rows(positions: np.ndarray) -> list[Any]:
        return source.rows(first + (positions if kept is None else kept[positions]))

    return rows


def filtered(batch: pa.RecordBatch, keep: pa.BooleanArray) -> pa.RecordBatch:
    """``batch.filter(keep)``, still tied to its file's rows when a ``RowSource`` tagged it."""
    kept = batch.filter(keep)
    meta = batch.schema.metadata or {}
    if SOURCE not in meta:
        return kept
    positions = np.flatnonzero(arrow_build.to_numpy(pc.fill_null(keep, arrow_build.FALSE))).astype(np.int64)
    if KEPT in meta:
        positions = np.frombuffer(meta[KEPT], dtype=np.int64)[positions]
    return kept.replace_schema_metadata({**meta, KEPT: positions.tobytes()})
