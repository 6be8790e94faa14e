"""Strings that no destination stores the same way: NUL characters and UTF-16 surrogates.

PostgreSQL refuses NUL (``"\\x00"``) in text and in jsonb, and UTF-8 (the encoding of every load file)
cannot encode a surrogate code point (``"\\ud800"``, as a JSON ``\\ud800`` escape or a surrogateescape
decode leaves them). Rather than fail a whole file on one destination and store the value on another,
the writers change such strings the same way everywhere: NULs are removed, a surrogate pair written as
two code points becomes its character and a lone surrogate becomes U+FFFD. A warning names the table
and columns, once per table.

Writers find these strings in what they serialize anyway (orjson refuses surrogates and escapes NUL as
``\\u0000``), so clean batches cost a memchr; only a batch that holds one comes here, value by value.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson

logger = logging.getLogger(__name__)

NUL = "\x00"
ESCAPED_NUL = b"\\u0000"
"""How JSON writers spell a NUL character; PostgreSQL's jsonb refuses it as well."""

KINDS = {
    "nul": "removed NUL characters (\\x00) from values of {columns}: PostgreSQL cannot store them, so loadbay "
           "removes them on every destination",
    "surrogate": "values of {columns} held UTF-16 surrogate code points, which UTF-8 cannot encode: lone ones "
                 "were replaced by U+FFFD, pairs written as two code points were joined into their character",
}
"""Each kind of repair and its warning (logged once per table, for the columns of the batch that had it)."""


def may_hold_nul(data: bytes | bytearray | str) -> bool:
    """Whether JSON text may hold an escaped NUL. A memchr for a backslash first: most batches have
    none, and the 6-byte search is 80 times slower. An escaped backslash before ``u0000`` (text that
    spells it) answers True too; the repair then looks at the values and changes nothing."""
    if isinstance(data, str):
        first = data.find("\\")
        return first >= 0 and data.find("\\u0000", first) >= 0
    first = data.find(b"\\")
    return first >= 0 and data.find(ESCAPED_NUL, first) >= 0


def repair_text(text: str) -> tuple[str, list[str]]:
    """``text`` without NULs and with surrogates resolved, and the kinds of repair it needed.

    >>> repair_text("a\\x00b\\ud800")
    ('ab\\ufffd', ['nul', 'surrogate'])
    >>> repair_text("\\ud83d\\ude00")
    ('😀', ['surrogate'])
    """
    kinds = []
    if NUL in text:
        text = text.replace(NUL, "")
        kinds.append("nul")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        kinds.append("surrogate")
    return text, kinds


class TextRepairs:
    """Repairs the strings of rows (nested json values and their keys too) and warns once per table.

    One instance serves all the files of a package, so a table that spans many files warns once.
    """

    def __init__(self) -> None:
        self._warned: set[tuple[str, str]] = set()

    def repair_rows(self, table: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` with every string repaired; rows and nested values are copied, never changed."""
        found: dict[str, set[str]] = {}
        out = [_repair_row(row, found) for row in rows]
        self._warn(table, found)
        return out

    def repair_row(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, set[str]] = {}
        out = _repair_row(row, found)
        self._warn(table, found)
        return out

    def report(self, table: str, kind: str, columns: set[str]) -> None:
        """Warn (once per table and kind) of a repair made elsewhere: the Arrow writer repairs whole columns."""
        self._warn(table, {kind: columns})

    def _warn(self, table: str, found: dict[str, set[str]]) -> None:
        for kind, columns in found.items():
            if (table, kind) in self._warned:
                continue
            self._warned.add((table, kind))
            names = ", ".join(repr(c) for c in sorted(columns))
            logger.warning("table %r: %s (warned once per table)", table,
                           KINDS[kind].format(columns=f"column {names}" if len(columns) == 1 else f"columns {names}"))


def _repair_row(row: dict[str, Any], found: dict[str, set[str]]) -> dict[str, Any]:
    return {column: _repair(value, column, found) for column, value in row.items()}


def _repair(value: Any, column: str, found: dict[str, set[str]]) -> Any:
    if isinstance(value, str):
        text, kinds = repair_text(value)
        for kind in kinds:
            found.setdefault(kind, set()).add(column)
        return text
    if isinstance(value, dict):
        return {_repair(k, column, found): _repair(v, column, found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_repair(v, column, found) for v in value]
    return value


def holds_byte(column: Any, byte: int) -> bool:
    """Whether the text of ``column`` (a string column) may hold ``byte``: one numpy pass over its
    data buffer, ten times cheaper than a string kernel (a NULL's slot may hold any bytes: the
    caller confirms with one)."""
    import numpy as np

    for chunk in column.chunks:
        if chunk.null_count == len(chunk):
            continue
        _, offsets, data = chunk.buffers()
        bounds = np.frombuffer(offsets, dtype=np.int32)
        start, end = int(bounds[chunk.offset]), int(bounds[chunk.offset + len(chunk)])
        if end > start and byte in np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start):
            return True
    return False


def needs_repair(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether a string of ``rows`` (dicts) holds a NUL or a surrogate: orjson serializes the batch in C
    (refusing surrogates, escaping NUL), a memchr looks for backslashes. Ints beyond 64 bits make
    orjson refuse too: then the repair looks at the values and changes nothing."""
    try:
        data = orjson.dumps(rows if isinstance(rows, (list, tuple)) else list(rows), default=_skip)
    except orjson.JSONEncodeError:
        return True
    return may_hold_nul(data)


def _skip(value: Any) -> None:
    """orjson's default for values that hold no string worth checking (Decimal, bytes, ...)."""
    return None


def table_may_hold_nul(table: Any, checked: list[tuple[int, bool]]) -> bool:
    """Whether the text columns ``checked`` of an Arrow table (index, whether JSON text, where NUL is escaped as
    ``\\u0000``) may hold a NUL: a byte search of each one's buffer, a string kernel only for JSON text that has
    a backslash. A true answer is confirmed by ``needs_repair`` (a NULL's slot may hold any bytes)."""
    import pyarrow.compute as pc

    for i, is_json in checked:
        column = table.column(i)
        if holds_byte(column, 0):
            return True
        if is_json and holds_byte(column, ord("\\")) and pc.any(pc.match_substring(column, ESCAPED_NUL.decode())).as_py():
            return True
    return False
