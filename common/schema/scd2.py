"""The columns an ``scd2`` table keeps its versions by, added and guarded by the normalizer.

``valid_from``/``valid_to`` timestamps are written by the merge SQL (``sql_jobs.merge_scd2``) and are NULL
in load files; ``_lb_row_hash`` holds the content hash of each item (``common/row_hash.py``). They are
column hints, so a stored schema knows them again.
"""

from __future__ import annotations

from collections.abc import Callable

from loadbay.common.exceptions import SchemaError
from loadbay.common.schema.types import ROW_HASH, VALID_FROM, VALID_TO, Column, Table


def is_scd2(table: Table) -> bool:
    return table.parent is None and table.write_disposition == "merge" and table.strategy == "scd2"


def hash_column(table: Table) -> str | None:
    """The column an scd2 root table's item hashes go to; None for any other table."""
    if not is_scd2(table):
        return None
    return next((c.name for c in table.columns.values() if c.row_hash), None)


def add_version_columns(table: Table, validity_columns: tuple[str, str] | None, column_name: Callable[[str], str],
                        check_room: Callable[[str], None]) -> None:
    """Give ``table`` its validity and hash columns: the names asked for (normalized by ``column_name``) on
    the first load, the ones it has after that; ``check_room`` is called before a column is added."""
    present = [next((c.name for c in table.columns.values() if getattr(c, hint)), None)
               for hint in ("valid_from", "valid_to")]
    asked = [column_name(n) for n in validity_columns] if validity_columns else None
    if asked is not None and len(set(asked)) != 2:
        raise SchemaError(f"table {table.name!r}: validity_columns must be two distinct names, not {validity_columns}")
    if all(present):
        if asked is not None and asked != present:
            raise SchemaError(f"table {table.name!r} keeps its versions in columns {present}, not {asked}: "
                              "validity columns cannot be renamed once the table exists")
        names = present
    else:
        names = asked or [VALID_FROM, VALID_TO]
    for name, hint in (*zip(names, ("valid_from", "valid_to"), strict=True), (ROW_HASH, "row_hash")):
        existing = table.columns.get(name)
        if existing is None:
            check_room(name)
        elif not getattr(existing, hint):
            raise SchemaError(f"table {table.name!r}: column {name!r} holds data of the resource; choose other "
                              "validity_columns for the scd2 strategy")
        table.columns[name] = Column(name, "text" if hint == "row_hash" else "timestamp", **{hint: True})


def reserve_version_columns(sources: dict[str, tuple[str, str]], table: Table) -> None:
    """A key of the data named like a validity column goes to a tagged column of its own (as a key named
    like ``_lb_id`` does): the merge SQL owns these columns. ``sources`` is the normalizer's column name →
    (prefix, raw key) of a table."""
    for column in table.columns.values():
        if column.valid_from or column.valid_to:
            sources[column.name] = ("", "<loadbay>")
        elif column.row_hash:
            sources[column.name] = ("", ROW_HASH)  # the key ``with_row_hashes`` adds to each item


def refuse_hash_column_key(pipeline: str, table: str, column: str) -> None:
    """A key of the data named like the hash column: its value would be overwritten by the hash (a key named
    like another loadbay column gets a tagged column; this one is the key the hash travels under)."""
    from loadbay.common.exceptions import SchemaError

    raise SchemaError(f"pipeline {pipeline!r}: table {table!r}: the data has a key {column!r}, the name of the "
                      "column scd2 keeps each record's content hash in; rename that key (its values would be "
                      "lost under the hash). Nothing of this run is loaded.")
