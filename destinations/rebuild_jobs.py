"""Replace and merge for engines that cannot delete rows (Spark's parquet tables): every table a package changes
is rebuilt whole, as a SELECT of its new contents, then swapped in by renames.

``new_contents`` is pure, like ``sql_jobs``: ``(root, children, target, staging, strategy) -> {table name:
SELECT}``. Each SELECT reads the live targets as they were before the package, so the job client builds every
table of a root's group before it swaps any (``swap_names`` names the tables a swap goes through).

- replace: the staging rows;
- append (``insert-from-staging``): the target rows, then the staging rows;
- merge ``delete-insert`` and ``upsert``: target rows whose key the package does not hold (``LEFT ANTI JOIN``
  on the primary key, and on the merge key; a NULL key never matches, as in a DELETE), then the package's rows
  deduplicated by primary key without hard deletes; child rows follow their root (those of replaced roots
  go, those of the package's surviving roots come);
- merge ``insert-only``: the target rows, then the package's rows whose key the target has not.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from loadbay.common.exceptions import SchemaError
from loadbay.common.schema.naming import shorten
from loadbay.common.schema.types import ROOT_ID, ROW_ID, Table
from loadbay.destinations.sql_jobs import TableRef, _surviving_rows

REBUILT = {("replace", "insert-from-staging"), ("append", "insert-from-staging"), ("merge", "delete-insert"),
           ("merge", "upsert"), ("merge", "insert-only")}
"""(disposition, strategy) pairs ``new_contents`` rebuilds."""


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_ident(name), table=_ident(table) if table else None)


def _rows(table: Table, source: exp.Expression, alias: str = "_lb_t") -> exp.Select:
    """``SELECT <table's columns> FROM source AS alias``, columns in the schema's order (both sides of a UNION ALL)."""
    aliased = source.copy()
    if isinstance(aliased, exp.Subquery):
        aliased.set("alias", exp.TableAlias(this=_ident(alias)))
    else:
        aliased = aliased.as_(alias, quoted=True)
    return exp.select(*[_col(c, alias) for c in table.columns]).from_(aliased)


def _keys(root: Table, hint: str) -> list[str]:
    return [c.name for c in root.columns_with(hint)]


def _match(keys: Sequence[str], left: str, right: str) -> exp.Expression:
    return exp.and_(*[exp.EQ(this=_col(k, left), expression=_col(k, right)) for k in keys])


def _distinct_keys(keys: Sequence[str], source: exp.Expression) -> exp.Subquery:
    return exp.select(*[_col(k) for k in keys]).from_(source.copy()).distinct().subquery(_ident("_lb_k"))


def _without_keys_of(select: exp.Select, key_sets: Sequence[Sequence[str]], source: exp.Expression) -> exp.Select:
    """``select`` (aliased ``_lb_t``) less the rows whose key ``source`` holds: a LEFT ANTI JOIN per key set."""
    for keys in key_sets:
        select = select.join(_distinct_keys(keys, source), on=_match(keys, "_lb_t", "_lb_k"), join_type="LEFT ANTI")
    return select


def _union_all(first: exp.Select, second: exp.Select) -> exp.Union:
    return exp.union(first, second, distinct=False)


def _children_of(roots: exp.Expression, child: Table, source: exp.Expression) -> exp.Select:
    """The rows of ``child`` in ``source`` whose root is among ``roots`` (a query yielding ``_lb_id``)."""
    if ROOT_ID not in child.columns:
        raise SchemaError(f"child table {child.name!r} has no {ROOT_ID} column")
    ids = exp.select(_col(ROW_ID)).from_(roots.copy())
    return _rows(child, source).where(exp.In(this=_col(ROOT_ID, "_lb_t"), query=ids.subquery()))


def new_contents(root: Table, children: Sequence[Table], target: TableRef, staging: TableRef,
                 disposition: str, strategy: str) -> dict[str, exp.Query]:
    """The new contents of ``root`` and each of ``children``, by name, read from the live targets and the
    package's staging tables (see the module docstring)."""
    tables = (root, *children)
    if disposition == "replace":
        return {t.name: _rows(t, staging(t.name)) for t in tables}
    if disposition == "append":
        return {t.name: _union_all(_rows(t, target(t.name)), _rows(t, staging(t.name), "_lb_s")) for t in tables}
    primary, merge = _keys(root, "primary_key"), _keys(root, "merge_key")
    if strategy in ("upsert", "insert-only") and not primary:
        raise SchemaError(f"table {root.name!r}: the {strategy} strategy needs a primary_key")
    surviving = _surviving_rows(root, staging(root.name))
    if strategy == "insert-only":
        new_roots = _without_keys_of(_rows(root, surviving), [primary], target(root.name)).subquery("_lb_new")
        out: dict[str, exp.Query] = {root.name: _union_all(_rows(root, target(root.name)), _rows(root, new_roots, "_lb_n"))}
        for child in children:
            out[child.name] = _union_all(_rows(child, target(child.name)),
                                         _children_of(new_roots, child, staging(child.name)))
        return out
    key_sets = [keys for keys in ([primary] if strategy == "upsert" else [primary, merge]) if keys]
    out = {root.name: _union_all(_without_keys_of(_rows(root, target(root.name)), key_sets, staging(root.name)),
                                 _rows(root, surviving, "_lb_s"))}
    replaced = [exp.select(_col(ROW_ID, "_lb_t")).from_(target(root.name).as_("_lb_t", quoted=True)).join(
        _distinct_keys(keys, staging(root.name)), on=_match(keys, "_lb_t", "_lb_k"), join_type="LEFT SEMI")
        for keys in key_sets]
    for child in children:
        kept = _rows(child, target(child.name))
        for ids in replaced:
            kept = kept.join(ids.subquery(_ident("_lb_r")),
                             on=exp.EQ(this=_col(ROOT_ID, "_lb_t"), expression=_col(ROW_ID, "_lb_r")),
                             join_type="LEFT ANTI")
        out[child.name] = _union_all(kept, _children_of(surviving, child, staging(child.name)))
    return out


def swap_names(table_name: str, load_id: str, max_length: int) -> tuple[str, str]:
    """(new, old): the names a table's rebuild is built under and its old contents are moved to, in its own
    dataset (Spark renames within a database only); private to the package like its staging tables."""
    return (shorten(f"{table_name}__{load_id}__new", max_length), shorten(f"{table_name}__{load_id}__old", max_length))
