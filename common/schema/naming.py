"""Identifier naming: snake_case, path joining and deterministic shortening.

Every function here is pure and cached: the normalizer calls them once per distinct key, never
per value, so a million rows with twenty keys cost twenty calls.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

PATH_SEPARATOR = "__"
_CAMEL_1 = re.compile(r"([^_A-Z])([A-Z]+)")
_CAMEL_2 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_NOT_WORD = re.compile(r"[^\w]+", re.UNICODE)
_MANY_UNDERSCORES = re.compile(r"_{3,}")
_MINUS_NUMBER = re.compile(r"(?<!\w)-(?=\d)")  # a sign ("-1"), not a separator ("utf-8")
TAG_LENGTH = 8


@lru_cache(maxsize=65536)
def snake_case(name: str) -> str:
    """``"createdAt"`` → ``"created_at"``; ``"Foo Bar!"`` → ``"foo_bar_"``; ``"1st"`` → ``"_1st"``.

    >>> snake_case("HTTPRequest ID")
    'http_request_id'
    >>> snake_case("userId")
    'user_id'
    >>> snake_case("+1"), snake_case("-1")
    ('plus1', 'minus1')
    """
    out = _MINUS_NUMBER.sub("minus", name.strip().replace("+", "plus"))  # "+1"/"-1" stay apart
    out = _NOT_WORD.sub("_", out)
    if not out:
        return "_empty"
    out = _CAMEL_2.sub(r"\1_\2", _CAMEL_1.sub(r"\1_\2", out)).lower()
    out = _MANY_UNDERSCORES.sub(PATH_SEPARATOR, out)
    if out[0].isdigit():
        out = "_" + out
    return out


MAX_TABLE_NAME_BYTES = 200
"""The longest table name whatever the destination allows: a table's name starts the names of its load
files (``<table>.<file>.<retry>.<format>``, and scratch files beside them), and file systems take 255 bytes
a name. A longer one (a deeply nested child table, say) is shortened like any identifier."""


@lru_cache(maxsize=65536)
def shorten(name: str, max_length: int) -> str:
    """Fit ``name`` into ``max_length`` UTF-8 bytes, keeping a readable prefix and a hash tag.

    The tag is taken from the whole name, so two long names that share a prefix stay distinct,
    and the result is the same on every run and machine.
    """
    encoded = name.encode("utf-8")
    if len(encoded) <= max_length:
        return name
    tag = hashlib.sha256(encoded).hexdigest()[:TAG_LENGTH]
    keep = max_length - TAG_LENGTH - 1
    prefix = encoded[:keep].decode("utf-8", errors="ignore")
    return f"{prefix}_{tag}"


def tagged(name: str, source: str, max_length: int) -> str:
    """``name`` with a tag taken from ``source``: keeps apart two keys that normalize alike."""
    tag = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:TAG_LENGTH]  # keys may hold any str
    return shorten(f"{name}_{tag}", max_length)


def normalize_identifier(name: str, max_length: int) -> str:
    """snake_case, then shortened to the destination's limit."""
    return shorten(snake_case(name), max_length)


@lru_cache(maxsize=65536)
def join_path(parent: str, child: str, max_length: int) -> str:
    """Name of a flattened column or a child table: ``parent__child``, shortened as a whole."""
    return shorten(f"{parent}{PATH_SEPARATOR}{child}", max_length)


def variant_name(column: str, data_type: str, max_length: int) -> str:
    """Name of the column that holds values of ``column`` that could not be coerced."""
    return shorten(f"{column}__v_{data_type}", max_length)
