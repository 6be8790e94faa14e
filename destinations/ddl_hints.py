"""Column hints in the DDL of the tables loadbay creates: keys and PostgreSQL's cluster index.

With a destination's ``create_indexes`` setting on, ``SqlJobClient.create_table_sql`` declares the hints its
capabilities list (``ddl_hints``): one ``PRIMARY KEY (...)`` over every column hinted ``primary_key`` (a
compound key is one constraint), a ``UNIQUE`` constraint per column hinted ``unique``, and for ``cluster``
columns an index that PostgreSQL's ``CLUSTER`` uses. Pure functions of the table: snapshot-tested per dialect.

loadbay's own columns are left out: ``_lb_id`` is unique by construction, and declaring it would index every
table, child tables included, at a cost to every load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from loadbay.common.schema.naming import shorten
from loadbay.common.schema.types import SYSTEM_PREFIX, Column, Table
from loadbay.destinations.statements import Statement, raw

KEY_HINTS = ("primary_key", "unique")
VERSIONED_STRATEGIES = ("scd2",)
"""Merge strategies that keep a row per version of a record: their tables hold a key many times, so they
declare no keys (a table made with keys and given such a strategy later fails its second version of a key)."""
CLUSTER_INDEX_SUFFIX = "__lb_cluster"
"""The cluster index is named ``<table>__lb_cluster`` (shortened to the identifier limit)."""

Ident = Callable[[str], exp.Identifier]


def hinted(table: Table, hint: str) -> list[Column]:
    """The table's columns with ``hint``, in column order, loadbay's own (``_lb_*``) left out."""
    return [c for c in table.columns_with(hint) if not c.name.startswith(SYSTEM_PREFIX)]


def hinted_keys(table: Table, hints: Sequence[str] = KEY_HINTS) -> list[tuple[str, list[Column]]]:
    """The keys ``hints`` ask of ``table``: ``("primary_key", its columns)`` once, then ``("unique", [column])``
    per unique column, except a column that is the whole primary key already (its constraint is unique).
    None for a table of a ``VERSIONED_STRATEGIES`` merge.

    >>> t = Table("t", {c.name: c for c in [Column("a", "bigint", primary_key=True, unique=True),
    ...                                     Column("b", "text", unique=True), Column("_lb_id", "text", unique=True)]})
    >>> [(kind, [c.name for c in cols]) for kind, cols in hinted_keys(t)]
    [('primary_key', ['a']), ('unique', ['b'])]
    """
    keys: list[tuple[str, list[Column]]] = []
    if table.write_disposition == "merge" and table.strategy in VERSIONED_STRATEGIES:
        return keys
    primary = hinted(table, "primary_key") if "primary_key" in hints else []
    if primary:
        keys.append(("primary_key", primary))
    if "unique" in hints:
        keys.extend(("unique", [c]) for c in hinted(table, "unique") if [c.name] != [p.name for p in primary])
    return keys


def key_constraint(kind: str, columns: Sequence[Column], ident: Ident) -> exp.Expression:
    """``PRIMARY KEY (a, b)`` or ``UNIQUE (a)``: a table constraint, for ``CREATE TABLE`` or ``ADD``."""
    names = [ident(c.name) for c in columns]
    if kind == "primary_key":
        return exp.PrimaryKey(expressions=names)
    if kind == "unique":
        return exp.UniqueColumnConstraint(this=exp.Schema(expressions=names))
    raise ValueError(f"no constraint for hint {kind!r}; keys are {KEY_HINTS}")


def add_constraint(target: exp.Table, constraint: exp.Expression) -> exp.Alter:
    """``ALTER TABLE target ADD <constraint>``: a table moved in by ``staging-optimized`` gets its keys back."""
    return exp.Alter(this=target.copy(), kind="TABLE", actions=[exp.AddConstraint(expressions=[constraint])])


def cluster_index(table: Table, target: exp.Table, ident: Ident, max_identifier_length: int) -> list[Statement]:
    """PostgreSQL: ``CREATE INDEX <table>__lb_cluster ON target (cluster columns)`` and ``ALTER TABLE target
    CLUSTER ON`` it, so a plain ``CLUSTER target`` (or ``CLUSTER`` of the whole database) orders the table by
    those columns; loadbay never runs CLUSTER itself (it locks the table and rewrites it). Nothing without
    cluster columns. Not ``IF NOT EXISTS``: it is made with its table, in the same transaction.

    >>> t = Table("t", {"a": Column("a", "bigint", cluster=True)})
    >>> [s.sql("postgres") for s in cluster_index(t, exp.to_table("ds.t"), exp.to_identifier, 63)]
    ['CREATE INDEX t__lb_cluster ON ds.t(a)', 'ALTER TABLE ds.t CLUSTER ON t__lb_cluster']
    """
    columns = hinted(table, "cluster")
    if not columns:
        return []
    name = shorten(f"{table.name}{CLUSTER_INDEX_SUFFIX}", max_identifier_length)
    index = exp.Index(this=ident(name), table=target.copy(),
                      params=exp.IndexParameters(columns=[exp.column(ident(c.name)) for c in columns]))
    return [exp.Create(kind="INDEX", this=index), raw("ALTER TABLE ", target.copy(), " CLUSTER ON ", ident(name))]
