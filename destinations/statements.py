"""Every statement loadbay runs besides the replace and merge SQL (``sql_jobs.py``): sessions, datasets,
locks, rows of loadbay's own tables, bulk loads; and ``render``, the one place a statement becomes text.

Statements are sqlglot expressions. What sqlglot cannot express is made by ``raw()``, a named piece of
SQL whose identifiers are still sqlglot's; a plain string is refused by ``render``. What differs by
dialect (the session time zone, the search path, locks, the upsert syntax) is a table here keyed by
the sqlglot dialect name, so every destination speaking a dialect runs the same SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlglot import exp

from loadbay.common.schema.types import ROW_ID, Column


def _ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def _col(name: str) -> exp.Column:
    return exp.Column(this=_ident(name))


def _equals_params(columns: Sequence[str]) -> exp.Expression:
    """``c1 = ? AND c2 = ?``: values are bind parameters, never literals pasted into the text."""
    return exp.and_(*[exp.EQ(this=_col(c), expression=exp.Placeholder()) for c in columns])


# -- rendering ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Raw:
    """A statement sqlglot cannot express, made by ``raw()``: never a string passed along by accident."""

    parts: tuple[str | exp.Expression, ...]

    def sql(self, dialect: str | None = None) -> str:
        """The text in ``dialect`` (placeholders as the dialect writes them; ``render`` uses the driver's)."""
        return render(self, dialect or "", None)


Statement = exp.Expression | Raw
"""What ``render`` and ``SqlClient.execute_sql`` take from loadbay's own code."""


def raw(*parts: str | exp.Expression) -> Raw:
    """SQL that sqlglot cannot express (``LOCK TABLE ... IN ... MODE``, ``SET search_path TO``, ``RESET``,
    the VALUES text of an insert_values file), written as pieces: a string piece stands as it is, an
    expression piece (a table, a name) is rendered in the dialect, so identifiers are still quoted by
    sqlglot and never pasted by hand.

    >>> raw("LOCK TABLE ", exp.to_table("t"), " IN SHARE MODE").sql("postgres")
    'LOCK TABLE t IN SHARE MODE'
    """
    return Raw(parts)


def render(statement: Statement, dialect: str, placeholder: str | None = "?") -> str:
    """SQL text of ``statement`` in ``dialect``, with each ``exp.Placeholder`` written as the driver's
    ``placeholder`` (``?`` or ``%s``; None keeps the dialect's own). The one place SQL text is made:
    plain strings are refused, so SQL built as text cannot slip in unnoticed.

    >>> render(exp.select(exp.Placeholder()), "mysql", "%s")
    'SELECT %s'
    """
    if isinstance(statement, Raw):
        return "".join(p if isinstance(p, str) else render(p, dialect, placeholder) for p in statement.parts)
    if not isinstance(statement, exp.Expression):
        raise TypeError(f"render() takes a sqlglot expression or raw(...), not {type(statement).__name__}: build "
                        "the statement with sqlglot, or with raw() where sqlglot cannot express it")
    if placeholder is not None and statement.find(exp.Placeholder) is not None:
        marker = exp.var(placeholder)
        statement = statement.transform(lambda node: marker.copy() if isinstance(node, exp.Placeholder) else node)
    return statement.sql(dialect=dialect or None)


# -- sessions, datasets and locks, by dialect ----------------------------------------------------------
UTC_SESSION: dict[str, tuple[str, str]] = {
    "postgres": ("timezone", "UTC"),
    "duckdb": ("TimeZone", "UTC"),
    "mysql": ("time_zone", "+00:00"),
}
"""The session setting that makes a connection's time zone UTC; SQLite has no session time zone."""

SESSION_SETTINGS: dict[str, tuple[tuple[str, str | exp.Expression], ...]] = {
    "mysql": (
        ("sql_mode", "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"),
        ("innodb_strict_mode", exp.var("OFF")),
        ("sql_notes", exp.Literal.number(0)),
        ("max_error_count", exp.Literal.number(65535)),
    ),
}
"""``SET SESSION`` settings a dialect's connections get after the UTC time zone. MySQL/MariaDB: strict
``sql_mode`` (a value that does not fit its column fails the statement instead of being truncated or
zeroed; backslash escapes stay on, as insert_values literals need them); ``innodb_strict_mode`` off,
because nested JSON flattens into hundreds of mostly-NULL columns and strict mode refuses such a table by
its worst-case row size, although real rows fit (an oversized row still fails); notes off and the
warning list as long as it goes, so that ``@@warning_count`` after a LOAD DATA counts every warning and
``SHOW WARNINGS`` lists them (its default cap, 64, counted notes too: a truncation could go unseen)."""

XACT_LOCK_FUNCTION: dict[str, str] = {"postgres": "pg_advisory_xact_lock"}
"""A function taking a 64-bit key that locks until the transaction ends: the schema-change lock of a
dialect whose concurrent DDL fails terminally."""

SESSION_LOCK_FUNCTIONS: dict[str, tuple[str, str]] = {"mysql": ("GET_LOCK", "RELEASE_LOCK")}
"""(acquire, release) of a dialect's named lock held by the session, for a dialect without a
transaction-scoped one: MySQL/MariaDB commit DDL implicitly, so no transaction could hold the lock."""

SESSION_LOCK_TIMEOUT = 60
"""Seconds a session waits for another pipeline's schema changes (then: transient)."""

MERGE_LOCK_TIMEOUT = 600
"""Seconds a session waits for another pipeline's merge into the same table (then: transient)."""

ANALYZE_BEFORE_MERGE = frozenset({"mysql"})
"""Dialects whose optimizer is given fresh statistics of the tables a merge writes, just before it
(``ANALYZE TABLE``, outside the transaction: it commits). InnoDB refreshes them in the background after
large changes; a merge planned on stale ones (another pipeline's merge just changed the table) looked
each child row's root up as if ``_lb_id`` had two distinct values and ran minutes instead of a second.
Not on MySQL before 8.0.24 (its client decides): an ANALYZE there makes later queries of the table wait
for the long ones running ("Waiting for table flush"); MariaDB 10.11 does not (checked)."""

TABLE_LOCK_MODE: dict[str, str] = {"postgres": "SHARE ROW EXCLUSIVE"}
"""``LOCK TABLE`` mode that makes concurrent merges into one table wait (conflicts with itself and writers)."""

UPSERT_SYNTAX: dict[str, str] = {"mysql": "on_duplicate_key", "sqlite": "on_conflict"}
"""How a dialect upserts when it has no ``MERGE``; any other dialect uses ``MERGE``."""

MERGE_SINCE: dict[str, tuple[int, ...]] = {"postgres": (15,)}
"""Server version from which a dialect has ``MERGE``; an older server upserts with ``INSERT ... ON CONFLICT``."""

DROP_DROPS_TABLES = {"mysql"}
"""Dialects whose ``DROP SCHEMA`` (a database) takes its tables along and knows no ``CASCADE``."""


def set_variable(name: str, value: str | exp.Expression, *, session: bool = False) -> exp.Set:
    """``SET [SESSION] name = 'value'`` (an expression value, e.g. ``exp.var("OFF")``, stands as it is)."""
    literal = exp.Literal.string(value) if isinstance(value, str) else value
    item = exp.SetItem(this=exp.EQ(this=exp.var(name), expression=literal), kind="SESSION" if session else None)
    return exp.Set(expressions=[item])


def session_utc(dialect: str) -> list[exp.Expression]:
    """The statements that put a session in UTC (none where the dialect has no session time zone)."""
    setting = UTC_SESSION.get(dialect)
    return [set_variable(*setting)] if setting else []


def session_setup(dialect: str) -> list[exp.Expression]:
    """What every new connection of ``dialect`` runs: UTC (``session_utc``), then ``SESSION_SETTINGS``."""
    settings = [set_variable(name, value, session=True) for name, value in SESSION_SETTINGS.get(dialect, ())]
    return [*session_utc(dialect), *settings]


USE_DATASET: dict[str, Callable[[exp.Identifier], Statement]] = {
    "postgres": lambda dataset: raw("SET search_path TO ", dataset, ", public"),
    "mysql": lambda dataset: exp.Use(this=dataset),
}
"""The statement after which unqualified names resolve to a dataset; a dialect without one (SQLite's
attached files, DuckDB's catalog-qualified search path) leaves it to its client."""


def use_dataset(dataset: exp.Identifier, dialect: str) -> Statement | None:
    """``USE_DATASET`` of the dialect for ``dataset``, or None."""
    make = USE_DATASET.get(dialect)
    return make(dataset.copy()) if make else None


def dataset_exists(*, in_current_catalog: bool = False, dialect: str = "") -> exp.Select:
    """``SELECT 1 FROM information_schema.schemata WHERE schema_name = ?`` (DuckDB: in this database file;
    PostgreSQL: from ``pg_namespace``, several times cheaper than its INFORMATION_SCHEMA views)."""
    if dialect == "postgres":
        return (exp.select(exp.Literal.number(1)).from_(exp.table_("pg_namespace", db="pg_catalog"))
                .where(exp.EQ(this=exp.column("nspname"), expression=exp.Placeholder())))
    where: exp.Expression = exp.EQ(this=exp.column("schema_name"), expression=exp.Placeholder())
    if in_current_catalog:
        where = exp.and_(where, exp.EQ(this=exp.column("catalog_name"),
                                       expression=exp.Anonymous(this="current_database", expressions=[])))
    return exp.select(exp.Literal.number(1)).from_(exp.table_("schemata", db="information_schema")).where(where)


def tables_like() -> exp.Select:
    """``SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE ?``:
    the tables of a dataset that is a name prefix (the parameters: the database, the escaped pattern)."""
    where = exp.and_(exp.EQ(this=exp.column("table_schema"), expression=exp.Placeholder()),
                     exp.Like(this=exp.column("table_name"), expression=exp.Placeholder()))
    return (exp.select("table_name").from_(exp.table_("tables", db="information_schema")).where(where)
            .order_by("table_name"))


def like_prefix(prefix: str) -> str:
    """A LIKE pattern matching names that start with ``prefix``, its own ``%``, ``_`` and ``\\`` taken literally.

    >>> like_prefix("ds__")
    'ds\\\\_\\\\_%'
    """
    return "".join("\\" + ch if ch in "%_\\" else ch for ch in prefix) + "%"


def drop_tables(targets: Sequence[exp.Table]) -> exp.Drop:
    """``DROP TABLE IF EXISTS a, b, ...``."""
    return exp.Drop(kind="TABLE", tables=[t.copy() for t in targets], exists=True)


def create_dataset(dataset: exp.Identifier) -> exp.Create:
    return exp.Create(kind="SCHEMA", this=exp.Table(db=dataset.copy()), exists=True)


def drop_dataset(dataset: exp.Identifier, dialect: str) -> exp.Drop:
    """``DROP SCHEMA IF EXISTS ... CASCADE`` (no CASCADE where dropping the schema drops its tables)."""
    return exp.Drop(kind="SCHEMA", tables=[exp.Table(db=dataset.copy())], exists=True,
                    cascade=dialect not in DROP_DROPS_TABLES)


LIVE_COLUMN_NAMES = ("table_name", "column_name", "data_type", "numeric_precision", "numeric_scale", "is_nullable")


def live_columns(table_count: int, dialect: str = "") -> exp.Select:
    """Columns of ``table_count`` tables of one schema, in table and column order: (table_name,
    column_name, data_type, numeric_precision, numeric_scale, is_nullable) as INFORMATION_SCHEMA
    gives them (the type from ``LIVE_TYPE_COLUMN`` of the dialect); the dialect's own catalog query
    (``LIVE_COLUMNS``) where that is much cheaper."""
    tables = [exp.Placeholder() for _ in range(table_count)]
    own = LIVE_COLUMNS.get(dialect)
    if own is not None:
        return own(tables)
    name: exp.Expression = exp.column("table_name")
    if dialect in BYTEWISE_NAMES:
        name = exp.cast(name, exp.DataType.build("BINARY", dialect=dialect))
    where = exp.and_(exp.EQ(this=exp.column("table_schema"), expression=exp.Placeholder()),
                     exp.In(this=name, expressions=tables))
    type_column = LIVE_TYPE_COLUMN.get(dialect)
    projections = [exp.alias_(exp.column(type_column), name) if name == "data_type" and type_column else exp.column(name)
                   for name in LIVE_COLUMN_NAMES]
    return (exp.select(*projections).from_(exp.table_("columns", db="information_schema")).where(where)
            .order_by("table_name", "ordinal_position"))


BYTEWISE_NAMES = {"mysql"}
"""Dialects whose INFORMATION_SCHEMA compares table names ignoring case and accents (MariaDB's ``IN`` even
returns one of 'café' and 'cafe' for both): ``live_columns`` compares them as bytes."""

LIVE_TYPE_COLUMN: dict[str, str] = {"mysql": "column_type"}
"""The INFORMATION_SCHEMA column a dialect's ``live_columns`` reads a type from, where ``data_type`` says too
little: MySQL's ``data_type`` of a boolean is ``tinyint``, its ``column_type`` ``tinyint(1)``."""


PG_NUMERIC_OID = 1700


def _pg_live_columns(tables: list[exp.Expression]) -> exp.Select:
    """``live_columns`` from pg_catalog: INFORMATION_SCHEMA's views cost several ms a read on a server
    with many schemas, this a fraction of one. Type names from ``format_type(oid, NULL)`` are the
    names INFORMATION_SCHEMA gives built-in types; a numeric's precision and scale come from its typmod."""
    a, c, n = (lambda name: exp.column(name, table="a")), (lambda name: exp.column(name, table="c")), \
        (lambda name: exp.column(name, table="n"))
    typmod = exp.Sub(this=a("atttypmod"), expression=exp.Literal.number(4))
    is_numeric = exp.and_(exp.EQ(this=a("atttypid"), expression=exp.Literal.number(PG_NUMERIC_OID)),
                          exp.GT(this=a("atttypmod"), expression=exp.Literal.number(0)))
    mask = exp.Literal.number(65535)
    precision = exp.BitwiseAnd(this=exp.Paren(this=exp.BitwiseRightShift(this=exp.Paren(this=typmod.copy()),
                                                                         expression=exp.Literal.number(16))),
                               expression=mask.copy())
    scale = exp.BitwiseAnd(this=exp.Paren(this=typmod.copy()), expression=mask.copy())
    nullable = exp.If(this=a("attnotnull"), true=exp.Literal.string("NO"), false=exp.Literal.string("YES"))
    projections = [c("relname"), a("attname"),
                   exp.Anonymous(this="format_type", expressions=[a("atttypid"), exp.Null()]),
                   exp.If(this=is_numeric.copy(), true=precision), exp.If(this=is_numeric.copy(), true=scale), nullable]
    where = exp.and_(exp.EQ(this=n("nspname"), expression=exp.Placeholder()),
                     exp.In(this=c("relname"), expressions=tables),
                     exp.GT(this=a("attnum"), expression=exp.Literal.number(0)), exp.not_(a("attisdropped")),
                     exp.In(this=c("relkind"), expressions=[exp.Literal.string(k) for k in "rpvf"]))
    return (exp.select(*[exp.alias_(p, name) for p, name in zip(projections, LIVE_COLUMN_NAMES)])
            .from_(exp.table_("pg_attribute", db="pg_catalog", alias="a"))
            .join(exp.table_("pg_class", db="pg_catalog", alias="c"), on=exp.EQ(this=c("oid"), expression=a("attrelid")))
            .join(exp.table_("pg_namespace", db="pg_catalog", alias="n"),
                  on=exp.EQ(this=n("oid"), expression=c("relnamespace")))
            .where(where).order_by(c("relname"), a("attnum")))


def _duckdb_live_columns(tables: list[exp.Expression]) -> exp.Select:
    """``live_columns`` from ``duckdb_columns()`` of this database file: INFORMATION_SCHEMA.COLUMNS is a view
    over it (of every attached database) that costs twice as much to read."""
    nullable = exp.If(this=exp.column("is_nullable"), true=exp.Literal.string("YES"), false=exp.Literal.string("NO"))
    projections = [*(exp.column(n) for n in LIVE_COLUMN_NAMES[:-1]), exp.alias_(nullable, "is_nullable")]
    where = exp.and_(exp.EQ(this=exp.column("database_name"),
                            expression=exp.Anonymous(this="current_database", expressions=[])),
                     exp.EQ(this=exp.column("schema_name"), expression=exp.Placeholder()),
                     exp.In(this=exp.column("table_name"), expressions=tables))
    return (exp.select(*projections).from_(exp.Table(this=exp.Anonymous(this="duckdb_columns", expressions=[])))
            .where(where).order_by("table_name", "column_index"))


LIVE_COLUMNS: dict[str, Callable[[list[exp.Expression]], exp.Select]] = {"postgres": _pg_live_columns,
                                                                        "duckdb": _duckdb_live_columns}
"""A dialect's own query for ``live_columns``, given the table-name placeholders."""


def xact_lock(dialect: str) -> exp.Select | None:
    """``SELECT pg_advisory_xact_lock(?)`` where the dialect has a transaction-scoped lock."""
    function = XACT_LOCK_FUNCTION.get(dialect)
    return exp.select(exp.Anonymous(this=function, expressions=[exp.Placeholder()])) if function else None


def session_lock(dialect: str, timeout_seconds: int = SESSION_LOCK_TIMEOUT) -> tuple[exp.Select, exp.Select] | None:
    """``(SELECT GET_LOCK(?, 60), SELECT RELEASE_LOCK(?))`` where the dialect has a named session lock
    (``SESSION_LOCK_FUNCTIONS``); the parameter is the lock's name."""
    functions = SESSION_LOCK_FUNCTIONS.get(dialect)
    if functions is None:
        return None
    acquire, release = functions
    timeout = exp.Literal.number(timeout_seconds)
    return (exp.select(exp.Anonymous(this=acquire, expressions=[exp.Placeholder(), timeout])),
            exp.select(exp.Anonymous(this=release, expressions=[exp.Placeholder()])))


def analyze_tables(tables: Sequence[exp.Table], dialect: str) -> Raw | None:
    """``ANALYZE TABLE a, b`` where the dialect wants fresh statistics before a merge (``ANALYZE_BEFORE_MERGE``)."""
    if dialect not in ANALYZE_BEFORE_MERGE or not tables:
        return None
    names: list[str | exp.Expression] = []
    for table in tables:
        names.extend([", ", table.copy()] if names else [table.copy()])
    return raw("ANALYZE TABLE ", *names)


def lock_tables(tables: Sequence[exp.Table], dialect: str) -> Raw | None:
    """``LOCK TABLE a, b IN ... MODE``, in name order so two transactions locking the same tables cannot
    deadlock; None where the dialect has no table locks worth taking (or there are no tables)."""
    mode = TABLE_LOCK_MODE.get(dialect)
    if mode is None or not tables:
        return None
    names: list[str | exp.Expression] = []
    for table in sorted(tables, key=lambda t: t.sql(dialect=dialect)):
        names.extend([", ", table.copy()] if names else [table.copy()])
    return raw("LOCK TABLE ", *names, f" IN {mode} MODE")


def upsert_syntax(dialect: str, server_version: Callable[[], tuple[int, ...]]) -> str:
    """"merge", "on_conflict" or "on_duplicate_key" for ``dialect``; ``server_version`` is asked only
    where ``MERGE`` came with a version (PostgreSQL 15)."""
    since = MERGE_SINCE.get(dialect)
    if since is not None:
        return "merge" if server_version() >= since else "on_conflict"
    return UPSERT_SYNTAX.get(dialect, "merge")


# -- rows of loadbay's own tables ------------------------------------------------------------------
def select_rows(table: exp.Table, columns: Sequence[str], where: Sequence[str], *,
                newest_first: str | None = None) -> exp.Select:
    """``SELECT columns FROM table WHERE w1 = ? AND ...`` (only the row newest by ``newest_first``, if given)."""
    select = exp.select(*[_col(c) for c in columns]).from_(table.copy()).where(_equals_params(where))
    if newest_first is not None:
        select = select.order_by(exp.Ordered(this=_col(newest_first), desc=True)).limit(1)
    return select


def insert_row(table: exp.Table, columns: Sequence[str]) -> exp.Insert:
    """``INSERT INTO table (columns) VALUES (?, ...)``: one row of bind parameters (also for executemany)."""
    values = exp.Values(expressions=[exp.Tuple(expressions=[exp.Placeholder() for _ in columns])])
    return exp.Insert(this=exp.Schema(this=table.copy(), expressions=[_ident(c) for c in columns]), expression=values)


def delete_rows(table: exp.Table, where: Sequence[str], *, in_column: str | None = None,
                in_count: int = 0) -> exp.Delete:
    """``DELETE FROM table WHERE w1 = ? [AND in_column IN (?, ...)]``."""
    condition = _equals_params(where)
    if in_column is not None:
        condition = exp.and_(condition, exp.In(this=_col(in_column),
                                               expressions=[exp.Placeholder() for _ in range(in_count)]))
    return exp.Delete(this=table.copy()).where(condition)


def delete_by_id_prefix(table: exp.Table, id_prefix: str) -> exp.Delete:
    """The rows of one abandoned package: ``_lb_id LIKE '<prefix>%'`` (a checked hex prefix)."""
    return exp.delete(table.copy()).where(exp.Like(this=_col(ROW_ID), expression=exp.Literal.string(id_prefix + "%")))


def insert_values(target: exp.Table, columns: Sequence[str], values: str) -> Raw:
    """``INSERT INTO target (columns) VALUES <values>`` for the VALUES text of an insert_values file
    (written by loadbay's own writer: parsing it back into sqlglot would cost more than the insert)."""
    head = exp.Insert(this=exp.Schema(this=target.copy(), expressions=[_ident(c) for c in columns]))
    return raw(head, " VALUES\n", values)


def copy_from_stdin(target: exp.Table, columns: Sequence[str], *, header: bool = True) -> exp.Copy:
    """``COPY target (cols) FROM STDIN`` for loadbay's csv: NULL an unquoted empty field, '' a quoted one,
    the bytes UTF-8 whatever the session's client_encoding (files are sent as they are)."""
    params = [("FORMAT", exp.var("csv")), ("HEADER", exp.Boolean(this=header)), ("NULL", exp.Literal.string("")),
              ("ENCODING", exp.Literal.string("UTF8"))]
    return exp.Copy(this=exp.Schema(this=target.copy(), expressions=[_ident(c) for c in columns]), kind=True,
                    files=[exp.to_identifier("STDIN")],
                    params=[exp.CopyParameter(this=exp.var(k), expression=v) for k, v in params])


def copy_to_csv(query: exp.Query, path: str, *, null: str = "") -> exp.Copy:
    """DuckDB's ``COPY (query) TO 'path' (FORMAT csv, HEADER, '"' quoting)``; NULL written as ``null``, an
    unquoted field (every other value then quoted, so a text equal to it stays text)."""
    params: list[tuple[str, exp.Expression]] = [
        ("FORMAT", exp.var("csv")), ("HEADER", exp.true()), ("QUOTE", exp.Literal.string('"')),
        ("ESCAPE", exp.Literal.string('"'))]
    if null:
        params += [("NULLSTR", exp.Literal.string(null)), ("FORCE_QUOTE", exp.Star())]
    return exp.Copy(this=query.subquery(), kind=False, files=[exp.Literal.string(path)],
                    params=[exp.CopyParameter(this=exp.var(k), expression=v) for k, v in params])


def _listed(items: Sequence[exp.Expression]) -> list[str | exp.Expression]:
    """``a, b, c`` as ``raw()`` pieces."""
    pieces: list[str | exp.Expression] = []
    for item in items:
        pieces.extend([", ", item] if pieces else [item])
    return pieces


def load_data_local_infile(path: str, target: exp.Table, columns: Sequence[Column]) -> Raw:
    """``LOAD DATA LOCAL INFILE 'path' INTO TABLE target ... (columns) SET ...`` (MySQL/MariaDB; sqlglot has no
    such statement) for loadbay's csv as written for MySQL: a header line, every value quoted but NULL, which
    is the unquoted word ``NULL`` (capabilities ``csv_null``), quotes doubled, backslashes plain
    (``ESCAPED BY ''``), timestamps as UTC wall time (``naive_timestamps``). Two types go through user
    variables: binary arrives as ``\\x`` and hex digits, bool as True/False (loadbay's writer) or true/false
    (DuckDB). ``columns`` are the file's, in its header's order.

    >>> print(load_data_local_infile("/p/f.csv", exp.to_table("ds.t", dialect="mysql"), [Column("b", "binary")]).sql("mysql"))
    LOAD DATA LOCAL INFILE '/p/f.csv' INTO TABLE ds.t CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '"' ESCAPED BY '' LINES TERMINATED BY '\\n' IGNORE 1 LINES (@lb_1) SET `b` = UNHEX(SUBSTRING(@lb_1, 3))
    """
    names: list[exp.Expression] = []
    assignments: list[exp.Expression] = []
    for i, column in enumerate(columns, 1):
        variable = exp.Parameter(this=exp.var(f"lb_{i}"))
        if column.data_type == "binary":
            value: exp.Expression = exp.Anonymous(this="UNHEX", expressions=[
                exp.Substring(this=variable.copy(), start=exp.Literal.number(3))])
        elif column.data_type == "bool":
            value = exp.Case(this=exp.Lower(this=variable.copy()), ifs=[
                exp.If(this=exp.Literal.string("true"), true=exp.true()),
                exp.If(this=exp.Literal.string("false"), true=exp.false())], default=variable.copy())
        else:
            names.append(_col(column.name))
            continue
        names.append(variable)
        assignments.append(exp.EQ(this=_col(column.name), expression=value))
    pieces: list[str | exp.Expression] = [
        "LOAD DATA LOCAL INFILE ", exp.Literal.string(path), " INTO TABLE ", target.copy(),
        " CHARACTER SET utf8mb4 FIELDS TERMINATED BY ", exp.Literal.string(","),
        " OPTIONALLY ENCLOSED BY ", exp.Literal.string('"'), " ESCAPED BY ", exp.Literal.string(""),
        " LINES TERMINATED BY ", exp.Literal.string("\n"), " IGNORE 1 LINES (", *_listed(names), ")"]
    if assignments:
        pieces += [" SET ", *_listed(assignments)]
    return raw(*pieces)


def global_variable(name: str) -> exp.Select:
    """MySQL's ``SELECT @@GLOBAL.name``: the server's setting (``local_infile``: whether LOAD DATA LOCAL may run).

    >>> global_variable("local_infile").sql("mysql")
    'SELECT @@GLOBAL.local_infile'
    """
    return exp.select(exp.SessionParameter(this=exp.var(name), kind="GLOBAL"))


def warning_count() -> exp.Select:
    """MySQL's ``SELECT @@warning_count``: warnings of the session's last statement, never capped.

    >>> warning_count().sql("mysql")
    'SELECT @@warning_count'
    """
    return exp.select(exp.SessionParameter(this=exp.var("warning_count")))


def show_warnings() -> exp.Show:
    """MySQL's ``SHOW WARNINGS``: (Level, Code, Message) of the session's last statement."""
    return exp.Show(this="WARNINGS")


def json_checks() -> exp.Select:
    """(table_name, check_clause) of the CHECK constraints of one MariaDB database (the parameter): MariaDB's
    JSON is a LONGTEXT with a ``json_valid(`column`)`` check, and reports only the LONGTEXT elsewhere."""
    checks = exp.select("table_name", "check_clause").from_(exp.table_("check_constraints", db="information_schema"))
    return checks.where(exp.EQ(this=exp.column("constraint_schema"), expression=exp.Placeholder()))


JSON_CHECK = re.compile(r"json_valid\(`([^`]+)`\)")


def json_checked_columns(rows: Sequence[tuple[str, str | None]]) -> set[tuple[str, str]]:
    """(table, column) of the JSON columns among the rows of ``json_checks``."""
    return {(table, match.group(1)) for table, clause in rows if (match := JSON_CHECK.search(clause or ""))}
