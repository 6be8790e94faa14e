"""What the normalizers (dict rows and Arrow data alike) refuse, and the errors that say so: a row a
contract drops, an item that cannot load (too many columns, nested too deep, a value of an unknown type),
and a value that would leave a key or NOT NULL column NULL by going to a variant column."""

from __future__ import annotations

from typing import Any

from loadbay.common.exceptions import SchemaError
from loadbay.common.schema.types import Column, Table


class _DiscardRow(Exception):
    """A contract says: drop the row being normalized."""


class _ItemError(SchemaError):
    """An error caused by one item: ``normalize`` adds the item's position and ``advice``."""

    advice = ""


class _TooManyColumns(_ItemError):
    """A table would pass the destination's ``max_table_columns``."""

    advice = ("Nothing of this run is loaded: hint a nested field as json to keep it in one column "
              "(columns={'<field>': {'data_type': 'json'}}), or leave fields out.")


class _TooDeep(_ItemError):
    """Dicts and lists nested past ``MAX_NESTING_LEVELS``: a value that contains itself, as a rule."""

    advice = ("Nothing of this run is loaded: a dict or list that contains itself cannot be loaded, break the "
              "cycle; for data really nested this deep, set max_table_nesting or hint the field as json.")


class _UnloadableValue(_ItemError):
    """A value of a type loadbay does not know (or a json value it cannot write)."""

    advice = ("Nothing of this run is loaded: convert such values in the resource to str, int, float, bool, "
              "Decimal, datetime, date, time, bytes, dict or list (for example str(value), or "
              "dataclasses.asdict(value) for a json column).")


def _required_role(column: Column) -> str | None:
    return ("primary key" if column.primary_key else "merge key" if column.merge_key
            else "NOT NULL" if not column.nullable else None)


def takes_no_variant(column: Column) -> bool:
    """A key or NOT NULL column: a value that does not fit it discards its row under a ``discard_row``
    data-type contract (even where a variant column exists, made before the column became a key), and
    is refused otherwise (``refuse_variant_of_required``)."""
    return _required_role(column) is not None


def refuse_variant_of_required(pipeline: str, table: str, column: Column, kind: str, value: Any) -> None:
    """A value that does not fit a key or NOT NULL column cannot go to a variant column: the row would hold
    NULL there (a merge on NULL keys, a NOT NULL violation when the file loads). Refused while normalizing,
    naming it, before anything is written."""
    role = _required_role(column)
    if role is None:
        return
    raise SchemaError(f"pipeline {pipeline!r}: table {table!r}: column {column.name!r} ({role}, {column.data_type}) "
                      f"got {kind} value {value!r:.60}, which does not fit it; a {role} column takes no variant "
                      "column (the row would hold NULL in it): send its values as one type. Nothing of this "
                      "run is loaded.")


def _last_resort(table: Table, column: Column) -> bool:
    """Whether ``column`` is a variant that must take what it gets: a text variant (text takes every
    scalar), or a variant of a variant (a too-wide decimal's text is the deepest there is)."""
    if column.variant_of is None:
        return False
    parent = table.columns.get(column.variant_of)
    return column.data_type == "text" or parent is None or parent.variant_of is not None
