"""The content hash of an item, by which ``scd2`` merges tell a changed record from an unchanged one.

The hash covers the whole item as the resource gave it, nested dicts and lists included: a version of a
record is its root row *and* its child rows, so a change in a nested list opens a new version too. It
is made once per item in Python, before the item is flattened, so every database compares versions by
one text column instead of by its own (unportable) row hashing in SQL; dicts and Arrow rows of the same
data get the same hash (keys sorted, null values and empty lists left out; values written as in json
columns).

Two items that differ only in how a value is typed (``1`` and ``1.0``) hash differently: a resource
that flips such a type opens a new version once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

import orjson

from loadbay.common.schema.values import MAX_NESTING_LEVELS, NestedTooDeep, UnknownType, json_default

HASH_BYTES = 16
"""128 bits: 32 hex digits; a collision between two versions of one table is out of reach."""

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _lenient_default(value: Any) -> Any:
    """``json_default``, or the value's text for a type loadbay does not know: hashing must not fail
    first; the normalizer's walk that follows names such a value's table, column and item."""
    try:
        return json_default(value)
    except UnknownType:
        return f"{type(value).__qualname__}:{value!s}"


def _empty(value: Any) -> bool:
    """An empty list or dict (by type: a numpy array would not say whether it equals ``[]``)."""
    return (type(value) is list or type(value) is dict) and not value


def _without_nulls(value: Any, depth: int = 0) -> Any:
    """``value`` with its None, ``[]`` and ``{}`` dict values left out, at every depth: a missing key, a null
    one and an empty list or dict load the same (an Arrow row has every field of its schema, a dict only
    those it was given). ``NestedTooDeep`` past ``MAX_NESTING_LEVELS`` (a dict that contains itself)."""
    t = type(value)
    if t is not dict and t is not list:
        return value
    if depth >= MAX_NESTING_LEVELS:
        raise NestedTooDeep(f"dicts and lists nested more than {MAX_NESTING_LEVELS} levels deep (a value that "
                            "contains itself?)")
    if t is dict:
        return {k: _without_nulls(v, depth + 1) for k, v in value.items() if v is not None and not _empty(v)}
    return [_without_nulls(v, depth + 1) for v in value]


def row_hash(item: Any) -> str:
    """32 hex digits of ``item``'s content (a dict, or a value of a resource of values)."""
    item = _without_nulls(item)
    try:
        text = orjson.dumps(item, default=_lenient_default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits, mixed key types: the stdlib's json
        text = json.dumps(item, default=_lenient_default, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":")).encode()
    return hashlib.blake2b(text, digest_size=HASH_BYTES).hexdigest()


def with_row_hashes(items: Iterable[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    """Each item copied with its hash under ``column`` (the resource's own dicts are never changed). A
    ``NestedTooDeep`` says in ``.index`` which item (from 0) raised it."""
    out = []
    for index, item in enumerate(items):
        try:
            out.append({**item, column: row_hash(item)})
        except NestedTooDeep as exc:
            exc.index = index
            raise
    return out
