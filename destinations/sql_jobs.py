"""Replace and merge SQL, generated in one place as sqlglot expressions.

Every function is pure: ``(root table, its child tables, where tables live, capabilities) ->
[statement]``, chosen by ``STAGED_SQL``. The SQL client renders the statements in its dialect and runs
them in one transaction where the destination has transactional DDL. Snapshot tests render them for
every dialect without a database; the conformance suite runs them for real. Every other statement is
built in ``statements.py``, which also renders them all.

Merge ``delete-insert``, for a root table R with staging twin S and child tables C:

1. delete child rows whose root row is being replaced or deleted (by primary or merge key);
2. delete those root rows;
3. insert child rows that belong to the surviving staging root rows;
4. insert the staging root rows, one per primary key (the last one loaded, or the first by
   ``dedup_sort``), skipping rows flagged by a ``hard_delete`` column.

Merge ``scd2`` keeps every version of a record, told apart by the content hash the normalizer gives
each item (``_lb_row_hash``, children included): current versions of the target whose hash the package
does not have are retired (``valid_to`` = the package's time; with a merge key only those whose key the
package has), the package's versions the target has no current row of are inserted with ``valid_from``
= that time, and their child rows with them. Nothing is deleted or updated but ``valid_to``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlglot import exp

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.exceptions import SchemaError
from loadbay.common.schema.types import ROOT_ID, ROW_ID, Column, Table
from loadbay.destinations.statements import Statement, raw

TableRef = Callable[[str], exp.Table]
DEDUP_RANK = "_lb_dedup_rank"


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.Column(this=_ident(name), table=_ident(table) if table else None)


def _columns(table: Table) -> list[str]:
    return list(table.columns)


def insert_select(target: exp.Table, columns: Sequence[str], source: exp.Expression,
                  where: exp.Expression | None = None) -> exp.Insert:
    """``INSERT INTO target (cols) SELECT cols FROM source [WHERE ...]``."""
    select = exp.select(*[_col(c) for c in columns]).from_(source)
    if where is not None:
        select = select.where(where)
    schema = exp.Schema(this=target.copy(), expressions=[_ident(c) for c in columns])
    return exp.Insert(this=schema, expression=select)


def drop_table(target: exp.Table) -> exp.Drop:
    """``DROP TABLE IF EXISTS target``."""
    return exp.Drop(kind="TABLE", tables=[target.copy()], exists=True)


def delete_all(target: exp.Table) -> exp.Delete:
    return exp.Delete(this=target.copy())


def truncate(target: exp.Table, capabilities: DestinationCapabilities) -> exp.Expression:
    if capabilities.supports_truncate:
        return exp.TruncateTable(expressions=[target.copy()])
    return delete_all(target)


def truncate_tables(tables: Sequence[Table], target: TableRef,
                    capabilities: DestinationCapabilities) -> list[exp.Expression]:
    """``truncate-and-insert``: empty the tables before their files load straight into them."""
    return [truncate(target(t.name), capabilities) for t in tables]


def replace_from_staging(root: Table, children: Sequence[Table], target: TableRef, staging: TableRef,
                         capabilities: DestinationCapabilities) -> list[exp.Expression]:
    """``insert-from-staging``: swap every table's rows for the staging rows, atomically."""
    statements: list[exp.Expression] = []
    for table in (root, *children):
        statements.append(delete_all(target(table.name)))
        statements.append(insert_select(target(table.name), _columns(table), staging(table.name)))
    return statements


def append_from_staging(root: Table, children: Sequence[Table], target: TableRef, staging: TableRef,
                        capabilities: DestinationCapabilities) -> list[exp.Expression]:
    """Append ``insert-from-staging``: every table's staging rows inserted in the final transaction,
    so the package's rows appear together (or, after a failure, not at all)."""
    return [insert_select(target(t.name), _columns(t), staging(t.name)) for t in (root, *children)]


def _key_match(columns: Sequence[str], table: exp.Table, source: exp.Table) -> exp.Expression:
    """``(k1, k2) IN (SELECT k1, k2 FROM source)`` with the key columns of ``table``."""
    keys = [_col(c) for c in columns]
    lhs: exp.Expression = keys[0] if len(keys) == 1 else exp.Tuple(expressions=keys)
    return exp.In(this=lhs, query=exp.select(*[_col(c) for c in columns]).from_(source.copy()).subquery())


def _rows_to_replace(root: Table, target: exp.Table, staging: exp.Table) -> exp.Expression | None:
    conditions = []
    primary = [c.name for c in root.columns_with("primary_key")]
    merge = [c.name for c in root.columns_with("merge_key")]
    if primary:
        conditions.append(_key_match(primary, target, staging))
    if merge:
        conditions.append(_key_match(merge, target, staging))
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else exp.or_(*conditions)


def _hard_delete_column(root: Table) -> Column | None:
    cols = root.columns_with("hard_delete")
    return cols[0] if cols else None


def _not_deleted(column: Column, table: str | None = None) -> exp.Expression:
    """True for rows the hard_delete column does not flag: NULL or FALSE (bool), NULL otherwise."""
    ref = _col(column.name, table)
    if column.data_type == "bool":
        return exp.or_(exp.Is(this=ref.copy(), expression=exp.Null()), exp.EQ(this=ref, expression=exp.false()))
    return exp.Is(this=ref, expression=exp.Null())


def _surviving_rows(root: Table, staging: exp.Table, drop_deleted: bool = True,
                    projection: list[exp.Expression] | None = None) -> exp.Expression:
    """The staging root rows to apply: deduplicated by primary key, minus hard deletes (if asked); with
    ``projection``, only those columns of them (plus what the filters need)."""
    primary = [c.name for c in root.columns_with("primary_key")]
    hard_delete = _hard_delete_column(root) if drop_deleted else None
    if not primary:
        source: exp.Expression = staging.copy()
        if hard_delete is None and projection is None:
            return source
        kept = exp.select(*(projection or [exp.Star()])).from_(source)
        return (kept if hard_delete is None else kept.where(_not_deleted(hard_delete))).subquery("_lb_kept")
    sort_cols = root.columns_with("dedup_sort")
    order = [exp.Ordered(this=_col(c.name), desc=c.dedup_sort == "desc", nulls_first=False)
             for c in sort_cols]
    order.append(exp.Ordered(this=_col(ROW_ID), desc=True))  # ids grow with load order: last wins
    rank = exp.Window(this=exp.RowNumber(), partition_by=[_col(c) for c in primary],
                      order=exp.Order(expressions=order))
    columns: list[exp.Expression] = [exp.Star()] if projection is None else [*projection]
    if projection is not None and hard_delete is not None:
        columns.append(_col(hard_delete.name))  # the filter below reads it
    ranked = exp.select(*columns, exp.alias_(rank, DEDUP_RANK, quoted=True)).from_(staging.copy())
    where: exp.Expression = exp.EQ(this=_col(DEDUP_RANK), expression=exp.Literal.number(1))
    if hard_delete is not None:
        where = exp.and_(where, _not_deleted(hard_delete))
    return exp.select("*").from_(ranked.subquery("_lb_ranked")).where(where).subquery("_lb_kept")


KEPT_ID = "_lb_kept_id"


def _surviving_ids(root: Table, staging: exp.Table, capabilities: DestinationCapabilities) -> exp.Select:
    """The ``_lb_id`` of each staging root row a merge applies, for its children's ``_lb_root_id IN (...)``.
    Where merges index their lookups (``merge_lookup_indexes``: MySQL/MariaDB), the ids are cast to CHAR(64) in a
    subquery holding nothing else: with loadbay's LONGTEXT columns in it, MariaDB cannot materialize the subquery
    for lookups and reads it once per child row (20,000 roots and children: 34 s; narrow and cast: 0.25 s)."""
    if not capabilities.merge_lookup_indexes:
        return exp.select(_col(ROW_ID)).from_(_surviving_rows(root, staging))
    return exp.select(_col(KEPT_ID)).from_(_surviving_rows(root, staging, projection=[_kept_id()]))


def _kept_id() -> exp.Expression:
    """``CAST(_lb_id AS CHAR(64) CHARACTER SET utf8mb4) COLLATE utf8mb4_bin AS _lb_kept_id``: a row id a lookup can
    be built over (see ``_surviving_ids``). The collation is named because a cast takes the connection's
    (``utf8mb4_general_ci``) and the tables' differs (``utf8mb4_nopad_bin``): MariaDB then joins the ids without a
    lookup when the subquery holds a subquery of its own (scd2's: 5,000 roots 1.8 s, 20,000 roots 73 s; collated:
    0.04 s). It is binary, as ids compare, and both MySQL and MariaDB have it; the character set is named too, so
    a connection in another one (``?charset=latin1``) does not refuse the collation (error 1253)."""
    char64 = exp.DataType(this=exp.DataType.Type.CHARACTER_SET, kind=exp.var("utf8mb4"),
                          expressions=[exp.DataTypeParam(this=exp.Literal.number(64))])
    cast = exp.Cast(this=_col(ROW_ID), to=char64)
    return exp.alias_(exp.Collate(this=cast, expression=exp.var("utf8mb4_bin")), KEPT_ID, quoted=True)


def merge_delete_insert(root: Table, children: Sequence[Table], target: TableRef, staging: TableRef,
                        capabilities: DestinationCapabilities) -> list[exp.Expression]:
    """``delete-insert`` merge of a root table and its nested children (see module docstring)."""
    root_target, root_staging = target(root.name), staging(root.name)
    statements: list[exp.Expression] = [*merge_lookup_indexes(root, root_target, root_staging, capabilities)]
    replaced = _rows_to_replace(root, root_target, root_staging)
    if replaced is not None:
        replaced_ids = exp.select(_col(ROW_ID)).from_(root_target.copy()).where(replaced.copy())
        for child in children:
            statements.append(exp.Delete(this=target(child.name)).where(
                exp.In(this=_col(ROOT_ID), query=replaced_ids.subquery())))
        statements.append(exp.Delete(this=root_target.copy()).where(replaced))
    surviving = _surviving_rows(root, root_staging)
    for child in children:
        if ROOT_ID not in child.columns:
            raise SchemaError(f"child table {child.name!r} of {root.name!r} has no {ROOT_ID} column")
        surviving_ids = _surviving_ids(root, root_staging, capabilities)
        statements.append(insert_select(target(child.name), _columns(child), staging(child.name),
                                        exp.In(this=_col(ROOT_ID), query=surviving_ids.subquery())))
    statements.append(insert_select(root_target, _columns(root), surviving))
    return statements



def merge_insert_only(root: Table, children: Sequence[Table], target: TableRef, staging: TableRef,
                      capabilities: DestinationCapabilities) -> list[exp.Expression]:
    """``insert-only`` merge: staging root rows whose primary key the target does not have yet are
    inserted (one per key, as in ``delete-insert``, hard deletes skipped), with their child rows; rows
    whose key exists are left as they are, and nothing is deleted."""
    primary = [c.name for c in root.columns_with("primary_key")]
    if not primary:
        raise SchemaError(f"table {root.name!r}: the insert-only strategy needs a primary_key")
    root_target, root_staging = target(root.name), staging(root.name)
    statements: list[exp.Expression] = [
        *merge_lookup_indexes(root, root_target, root_staging, capabilities, target_keys=True)]
    keys = [_col(c) for c in primary]
    lhs: exp.Expression = keys[0] if len(keys) == 1 else exp.Tuple(expressions=keys)
    existing = exp.select(*[_col(c) for c in primary]).from_(root_target.copy())
    new_rows = exp.select("*").from_(_surviving_rows(root, root_staging)).where(
        exp.Not(this=exp.In(this=lhs, query=existing.subquery()))).subquery("_lb_new")
    for child in children:  # first: which roots are new is read from the target before they go in
        new_ids = exp.select(_col(ROW_ID)).from_(new_rows.copy())
        if capabilities.merge_lookup_indexes:  # narrow and cast, as ``_surviving_ids`` says why
            narrow = [_kept_id(), *[_col(c) for c in primary]]
            new_ids = exp.select(_col(KEPT_ID)).from_(_surviving_rows(root, root_staging, projection=narrow)).where(
                exp.Not(this=exp.In(this=lhs.copy(), query=existing.subquery())))
        statements.append(insert_select(target(child.name), _columns(child), staging(child.name),
                                        exp.In(this=_col(ROOT_ID), query=new_ids.subquery())))
    statements.append(insert_select(root_target, _columns(root), new_rows))
    return statements


def version_columns(root: Table) -> tuple[str, str, str]:
    """The ``valid_from``, ``valid_to`` and ``row_hash`` columns of an scd2 table (the normalizer adds them)."""
    names = [next((c.name for c in root.columns.values() if getattr(c, hint)), None)
             for hint in ("valid_from", "valid_to", "row_hash")]
    if not all(names):
        raise SchemaError(f"table {root.name!r} has no scd2 columns (valid_from, valid_to, row_hash hints); "
                          "load it with the scd2 strategy so the normalizer adds them")
    return names[0], names[1], names[2]  # type: ignore[return-value]


def merge_scd2(root: Table, children: Sequence[Table], target: TableRef, staging: TableRef,
               capabilities: DestinationCapabilities, boundary: exp.Expression) -> list[exp.Expression]:
    """``scd2`` merge (see the module docstring): retire the current versions the package does not have,
    insert the versions the target has no current row of, children first. ``boundary`` is the package's
    time as a literal of the validity columns' type (the job client makes it)."""
    valid_from, valid_to, row_hash = version_columns(root)
    root_target, root_staging = target(root.name), staging(root.name)
    statements: list[exp.Expression] = [
        *merge_lookup_indexes(root, root_target, root_staging, capabilities, row_hash=row_hash)]
    hard_delete = _hard_delete_column(root)
    current = exp.Is(this=_col(valid_to), expression=exp.Null())
    # one new version per content, or per primary key where there is one (the last row loaded, as delete-insert)
    primary = [c.name for c in root.columns_with("primary_key")]
    rank = exp.Window(this=exp.RowNumber(), partition_by=[_col(c) for c in (primary or [row_hash])],
                      order=exp.Order(expressions=[exp.Ordered(this=_col(ROW_ID), desc=True)]))
    ranked = exp.select(exp.Star(), exp.alias_(rank, DEDUP_RANK, quoted=True)).from_(root_staging.copy())
    last = exp.EQ(this=_col(DEDUP_RANK), expression=exp.Literal.number(1))
    kept = exp.select(_col(row_hash)).from_(root_staging.copy())  # the versions the package holds
    if primary:  # per key only its last row: an earlier row of the key in the package is superseded
        kept = exp.select(_col(row_hash)).from_(ranked.copy().subquery("_lb_last")).where(last.copy())
    if hard_delete is not None:  # a row flagged deleted is a version no longer held
        kept = kept.where(_not_deleted(hard_delete))
    # a row without a hash was loaded before the table was scd2: its content is unknown, so it retires too
    unknown_or_gone = exp.or_(exp.Is(this=_col(row_hash), expression=exp.Null()),
                              exp.Not(this=exp.In(this=_col(row_hash), query=kept.subquery())))
    retired = exp.and_(current.copy(), exp.Paren(this=unknown_or_gone))
    merge = [c.name for c in root.columns_with("merge_key")]
    if merge:  # a partial load: only records whose merge key it holds can have gone
        retired = exp.and_(retired, _key_match(merge, root_target, root_staging))
    statements.append(exp.Update(this=root_target.copy(), expressions=[
        exp.EQ(this=_col(valid_to), expression=boundary.copy())], where=exp.Where(this=retired)))

    # rows without a hash (loaded before the table was scd2) must not make NOT IN unknown for every row
    current_hashes = exp.select(_col(row_hash)).from_(root_target.copy()).where(
        exp.and_(current, exp.Not(this=exp.Is(this=_col(row_hash), expression=exp.Null()))))
    new_where = exp.and_(last, exp.Not(this=exp.In(this=_col(row_hash), query=current_hashes.subquery())))
    if hard_delete is not None:
        new_where = exp.and_(new_where, _not_deleted(hard_delete))
    new_versions = exp.select("*").from_(ranked.subquery("_lb_ranked")).where(new_where).subquery("_lb_new")
    new_ids = exp.select(_col(ROW_ID)).from_(new_versions.copy())
    if capabilities.merge_lookup_indexes:  # narrow and cast, as ``_surviving_ids`` says why
        needed = dict.fromkeys([row_hash, *primary, *([hard_delete.name] if hard_delete is not None else [])])
        narrow = exp.select(_kept_id(), *[_col(c) for c in needed], exp.alias_(rank.copy(), DEDUP_RANK, quoted=True))
        new_ids = exp.select(_col(KEPT_ID)).from_(exp.select("*").from_(
            narrow.from_(root_staging.copy()).subquery("_lb_ranked")).where(new_where.copy()).subquery("_lb_new"))
    for child in children:  # first: which versions are new is read from the target before they go in
        if ROOT_ID not in child.columns:
            raise SchemaError(f"child table {child.name!r} of {root.name!r} has no {ROOT_ID} column")
        statements.append(insert_select(target(child.name), _columns(child), staging(child.name),
                                        exp.In(this=_col(ROOT_ID), query=new_ids.copy().subquery())))
    columns = _columns(root)
    # valid_to is NULL in every staging row (the normalizer never writes it): selected as it is, typed
    values = [exp.alias_(boundary.copy(), c, quoted=True) if c == valid_from else _col(c) for c in columns]
    schema = exp.Schema(this=root_target.copy(), expressions=[_ident(c) for c in columns])
    statements.append(exp.Insert(this=schema, expression=exp.select(*values).from_(new_versions)))
    return statements


def merge_upsert(root: Table, children: Sequence[Table], target: TableRef, staging: TableRef,
                 capabilities: DestinationCapabilities, syntax: str = "merge") -> list[exp.Expression]:
    """``upsert`` merge: update rows whose primary key exists, insert the rest, delete hard deletes.

    ``syntax`` is ``"merge"`` (SQL:2003 MERGE), ``"on_conflict"`` (INSERT ... ON CONFLICT) or
    ``"on_duplicate_key"`` (MySQL/MariaDB); the last two need a unique index on the key, which the
    first statement creates if missing. Child tables follow their roots as in ``delete-insert``.
    """
    primary = [c.name for c in root.columns_with("primary_key")]
    if not primary:
        raise SchemaError(f"table {root.name!r}: the upsert strategy needs a primary_key")
    root_target, root_staging = target(root.name), staging(root.name)
    statements: list[exp.Expression] = [*merge_lookup_indexes(root, root_target, root_staging, capabilities)]
    if syntax in ("on_conflict", "on_duplicate_key"):
        statements.append(unique_index(root, primary, root_target, capabilities))
    replaced = _key_match(primary, root_target, root_staging)
    replaced_ids = exp.select(_col(ROW_ID)).from_(root_target.copy()).where(replaced)
    for child in children:
        statements.append(exp.Delete(this=target(child.name)).where(
            exp.In(this=_col(ROOT_ID), query=replaced_ids.subquery())))
    for child in children:
        surviving_ids = _surviving_ids(root, root_staging, capabilities)
        statements.append(insert_select(target(child.name), _columns(child), staging(child.name),
                                        exp.In(this=_col(ROOT_ID), query=surviving_ids.subquery())))
    latest = _surviving_rows(root, root_staging, drop_deleted=False)
    hard_delete = _hard_delete_column(root)
    if syntax == "merge":
        statements.append(_merge_statement(root, primary, root_target, latest, hard_delete))
    elif syntax in ("on_conflict", "on_duplicate_key"):
        if hard_delete is not None:
            deleted = exp.select(*[_col(c) for c in primary]).from_(latest.copy()).where(
                exp.Not(this=exp.Paren(this=_not_deleted(hard_delete))))
            keys = [_col(c) for c in primary]
            lhs = keys[0] if len(keys) == 1 else exp.Tuple(expressions=keys)
            statements.append(exp.Delete(this=root_target.copy()).where(exp.In(this=lhs, query=deleted.subquery())))
        statements.append(_insert_on_conflict(root, primary, root_target, latest, hard_delete, syntax))
    else:
        raise ValueError(f"upsert syntax must be 'merge', 'on_conflict' or 'on_duplicate_key', not {syntax!r}")
    return statements


INDEXED_ID_PREFIX = 64
"""Characters of ``_lb_id`` a lookup index holds (ids are 24): MySQL indexes a LONGTEXT column by a prefix."""


def merge_lookup_indexes(root: Table, root_target: exp.Table, root_staging: exp.Table,
                         capabilities: DestinationCapabilities, *, target_keys: bool = False,
                         row_hash: str | None = None) -> list[exp.Create]:
    """``CREATE INDEX IF NOT EXISTS`` on what a merge looks rows up by, where the engine needs it
    (``capabilities.merge_lookup_indexes``): the target root's ``_lb_id`` (child rows are found through
    it) and the staging root's primary and merge keys (the target's rows to replace are); ``target_keys``:
    the target root's keys too (``insert-only`` looks each staging key up there); ``row_hash``: that
    column on both sides (``scd2`` looks each version up in the other table)."""
    from loadbay.common.schema.naming import shorten

    if not capabilities.merge_lookup_indexes:
        return []
    key_sets = [(suffix, [c.name for c in root.columns_with(hint)])
                for suffix, hint in (("__lb_key_lookup", "primary_key"), ("__lb_merge_key_lookup", "merge_key"))]
    prefix = exp.Anonymous(this=_ident(ROW_ID), expressions=[exp.Literal.number(INDEXED_ID_PREFIX)])
    wanted = [(root_target, "__lb_id_lookup", [prefix])]
    if row_hash is not None:
        hashed = exp.Anonymous(this=_ident(row_hash), expressions=[exp.Literal.number(INDEXED_ID_PREFIX)])
        wanted += [(root_target, "__lb_hash_lookup", [hashed]), (root_staging, "__lb_hash_lookup", [hashed.copy()])]
    for suffix, keys in key_sets:  # each key set is looked up on its own (pk IN ... OR mk IN ...)
        if keys:
            wanted.append((root_staging, suffix, [_col(c) for c in keys]))
            if target_keys:
                wanted.append((root_target, suffix, [_col(c) for c in keys]))
    return [exp.Create(kind="INDEX", exists=True, this=exp.Index(
        this=_ident(shorten(f"{root.name}{suffix}", capabilities.max_identifier_length)), table=table.copy(),
        params=exp.IndexParameters(columns=columns))) for table, suffix, columns in wanted]


def unique_index(root: Table, primary: Sequence[str], root_target: exp.Table,
                 capabilities: DestinationCapabilities) -> exp.Create:
    """``CREATE UNIQUE INDEX IF NOT EXISTS`` on the key, named from the table (shortened to fit)."""
    from loadbay.common.schema.naming import shorten

    name = shorten(f"{root.name}__lb_upsert_key", capabilities.max_identifier_length)
    index_name: exp.Expression = _ident(name)
    table = root_target.copy()
    if capabilities.sqlglot_dialect == "sqlite":  # SQLite qualifies the index, not its table
        index_name = exp.Table(this=_ident(name), db=table.args.get("db"))
        table = exp.Table(this=table.this)
    index = exp.Index(this=index_name, table=table, params=exp.IndexParameters(columns=[_col(c) for c in primary]))
    return exp.Create(kind="INDEX", this=index, unique=True, exists=True)


def _merge_statement(root: Table, primary: Sequence[str], root_target: exp.Table, latest: exp.Expression,
                     hard_delete: Column | None) -> exp.Merge:
    columns = _columns(root)
    target_alias, source_alias = "_lb_t", "_lb_s"
    on = exp.and_(*[exp.EQ(this=_col(c, target_alias), expression=_col(c, source_alias)) for c in primary])
    deleted = exp.Not(this=exp.Paren(this=_not_deleted(hard_delete, source_alias))) if hard_delete else None
    whens: list[exp.When] = []
    if deleted is not None:
        whens.append(exp.When(matched=True, condition=deleted.copy(), then=exp.var("DELETE")))
    whens.append(exp.When(matched=True, then=exp.Update(expressions=[
        exp.EQ(this=_col(c), expression=_col(c, source_alias)) for c in columns if c not in primary])))
    insert = exp.Insert(this=exp.Tuple(expressions=[_col(c) for c in columns]),
                        expression=exp.Tuple(expressions=[_col(c, source_alias) for c in columns]))
    whens.append(exp.When(matched=False, condition=_not_deleted(hard_delete, source_alias) if hard_delete else None,
                          then=insert))
    source = latest.copy()
    if isinstance(source, exp.Subquery):
        source.set("alias", exp.TableAlias(this=_ident(source_alias)))
    else:
        source = exp.select("*").from_(source).subquery(source_alias)
    target = root_target.copy()
    target.set("alias", exp.TableAlias(this=_ident(target_alias)))
    return exp.Merge(this=target, using=source, on=on, whens=exp.Whens(expressions=whens))


def _insert_on_conflict(root: Table, primary: Sequence[str], root_target: exp.Table, latest: exp.Expression,
                        hard_delete: Column | None, syntax: str) -> exp.Insert:
    columns = _columns(root)
    # a WHERE always: SQLite reads "SELECT ... FROM x ON CONFLICT" as a join constraint otherwise
    where = _not_deleted(hard_delete) if hard_delete is not None else exp.true()
    non_keys = [c for c in columns if c not in primary]
    if syntax == "on_duplicate_key":
        insert = insert_select(root_target, columns, latest, where)
        updates = [exp.EQ(this=_col(c), expression=exp.Anonymous(this="VALUES", expressions=[_col(c)]))
                   for c in non_keys]
        insert.set("conflict", exp.OnConflict(duplicate=True, action=exp.var("UPDATE"), expressions=updates))
        return insert
    aliased = root_target.copy()  # a table named "excluded" would clash with the pseudo-table
    aliased.set("alias", exp.TableAlias(this=_ident("_lb_t")))
    insert = insert_select(aliased, columns, latest, where)
    excluded = exp.to_identifier("excluded")  # the pseudo-table; quoted it would name a real table
    updates = [exp.EQ(this=_col(c), expression=exp.Column(this=_ident(c), table=excluded.copy()))
               for c in non_keys]
    insert.set("conflict", exp.OnConflict(conflict_keys=[_col(c) for c in primary],
                                          action=exp.var("DO UPDATE"), expressions=updates))
    return insert


def replace_staging_optimized(root: Table, children: Sequence[Table], target: TableRef, staging: TableRef,
                              capabilities: DestinationCapabilities) -> list[Statement]:
    """``staging-optimized`` replace: drop each target table and move its staging twin into place.

    Fastest for large tables (no row copy), but the new tables carry no grants or indexes of the
    old ones. PostgreSQL only (``ALTER TABLE ... SET SCHEMA``).
    """
    statements: list[Statement] = []
    for table in (root, *children):
        destination = target(table.name)
        staged = staging(table.name)
        statements.append(exp.Drop(kind="TABLE", tables=[destination.copy()], exists=True))
        statements.append(raw("ALTER TABLE ", staged.copy(), " SET SCHEMA ", _ident(destination.db)))
        if staged.name != destination.name:  # the package's own staging name: back to the table's
            moved = exp.Table(this=staged.this.copy(), db=destination.args["db"].copy())
            statements.append(exp.Alter(this=moved, kind="TABLE", actions=[
                exp.AlterRename(this=exp.Table(this=destination.this.copy()))]))
    return statements


StagedSql = Callable[[Table, Sequence[Table], TableRef, TableRef, DestinationCapabilities], Sequence[Statement]]
STAGED_SQL: dict[tuple[str, str], StagedSql] = {
    ("append", "insert-from-staging"): append_from_staging,
    ("replace", "insert-from-staging"): replace_from_staging,
    ("replace", "staging-optimized"): replace_staging_optimized,
    ("merge", "delete-insert"): merge_delete_insert,
    ("merge", "insert-only"): merge_insert_only,
}
"""The SQL that applies a staged root table, by (write disposition, strategy). ``upsert`` is
``merge_upsert``, which also takes the database's upsert syntax, and ``scd2`` is ``merge_scd2``, which
also takes the package's time. A strategy without an entry has no
SQL: the job client fails the table rather than run another strategy's SQL."""
