"""SqlJobClient: system tables, migrations, staging, load jobs and follow-up SQL for SQL databases.

A destination subclasses it to set ``type_mapper_class`` and ``load_jobs`` and, rarely, to
override a DDL hook. Migrations compare the package schema with the live tables read from
INFORMATION_SCHEMA (not only with the stored schema), so a table dropped or altered by hand is
noticed and recreated or extended. Every statement comes from ``sql_jobs.py`` or ``statements.py``.
"""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlglot import exp

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.destination import (DestinationConfig, JobClient, LoadJob, effective_strategy, strategy_problem,
                                        uses_staging)
from loadbay.common.exceptions import DestinationKeyViolation, DestinationTerminalError, DestinationUndefinedRelation
from loadbay.common.schema.naming import shorten
from loadbay.common.schema.types import Column, Schema, Table
from loadbay.common.storage.package import JobFile, PackageStorage
from loadbay.faults import crash_point
from loadbay.destinations import ddl_hints, sql_jobs
from loadbay.destinations import statements as sql
from loadbay.destinations.load_jobs import InsertValuesJob
from loadbay.destinations.sql_client import SqlClient
from loadbay.destinations.statements import Statement
from loadbay.destinations.type_mapping import TypeMapper

logger = logging.getLogger(__name__)

LOADS_TABLE = "_lb_loads"
VERSION_TABLE = "_lb_version"
STATE_TABLE = "_lb_pipeline_state"
JOBS_TABLE = "_lb_jobs"
"""Done-records of the jobs of packages in flight, each committed with the job's rows; a
package's records are deleted in the transaction that writes its ``_lb_loads`` row."""
ENGINE_VERSION = 1

SYSTEM_TABLES = {
    LOADS_TABLE: Table(LOADS_TABLE, {c.name: c for c in [
        Column("load_id", "text", nullable=False), Column("schema_name", "text"),
        Column("status", "bigint", nullable=False), Column("inserted_at", "timestamp", nullable=False),
        Column("schema_version_hash", "text")]}),
    VERSION_TABLE: Table(VERSION_TABLE, {c.name: c for c in [
        Column("version_hash", "text", nullable=False), Column("schema_name", "text", nullable=False),
        Column("engine_version", "bigint", nullable=False), Column("inserted_at", "timestamp", nullable=False),
        Column("schema", "text", nullable=False)]}),
    STATE_TABLE: Table(STATE_TABLE, {c.name: c for c in [
        Column("pipeline_name", "text", nullable=False), Column("state", "text", nullable=False),
        Column("created_at", "timestamp", nullable=False), Column("_lb_load_id", "text", nullable=False)]}),
    JOBS_TABLE: Table(JOBS_TABLE, {c.name: c for c in [
        Column("load_id", "text", nullable=False), Column("job_id", "text", nullable=False),
        Column("table_name", "text", nullable=False), Column("inserted_at", "timestamp", nullable=False)]}),
}


def staging_table_name(table_name: str, load_id: str, max_length: int) -> str:
    """A package's own staging table: pipelines loading one dataset at once never share one."""
    return shorten(f"{table_name}__{load_id}", max_length)


class SqlJobClient(JobClient):
    type_mapper_class: ClassVar[type[TypeMapper]] = TypeMapper
    """Maps loadbay types to this database's types and back."""
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {"insert_values": InsertValuesJob}
    """Load job class per file format."""

    def __init__(self, config: DestinationConfig, capabilities: DestinationCapabilities,
                 sql_client: SqlClient) -> None:
        super().__init__(config, capabilities)
        self.sql_client = sql_client
        self.type_mapper = self.make_type_mapper()
        self._unmarked: str | None = None
        """The package ``is_load_completed`` last found without its ``_lb_loads`` record on this connection, for the
        ``complete_load`` that follows (``_marked_loaded``): one read of the record per package, not two."""

    def make_type_mapper(self) -> TypeMapper:
        """Hook: the type mapper of this client (SQLAlchemy's depends on the connection's dialect)."""
        return self.type_mapper_class(self.capabilities)

    def uses_staging(self, table: Table) -> bool:
        return uses_staging(table, self.config.replace_strategy)

    def open(self) -> None:
        self.sql_client.open()

    def close(self) -> None:
        self.forget_catalog()
        self.sql_client.close()

    def reconnect(self) -> None:
        self.forget_catalog()
        self.sql_client.reconnect()

    def forget_catalog(self) -> None:
        """What this client remembers of the destination goes: a retry (after a commit whose answer was lost) and
        a new run ask again."""
        self._unmarked = None
        self.sql_client.forget_catalog()

    # -- storage and schema ----------------------------------------------------------------------
    def initialize_storage(self) -> None:
        self._update_storage(None, [])

    def update_stored_schema(self, schema: Schema, table_names: list[str]) -> list[str]:
        return self._update_storage(schema, table_names, system_tables=False)

    def prepare_storage(self, schema: Schema, table_names: list[str]) -> list[str]:
        """The dataset, the system tables and the package's tables with one read of the catalog."""
        return self._update_storage(schema, table_names)

    def _update_storage(self, schema: Schema | None, table_names: list[str], system_tables: bool = True) -> list[str]:
        """Under the schema-change lock: the dataset and system tables (if ``system_tables``), the
        tables ``table_names`` of ``schema``, and ``schema`` stored as a version if it is new."""
        tables = [schema.tables[n] for n in table_names] if schema is not None else []
        with self.sql_client.schema_change_lock():
            if system_tables:
                self.sql_client.ensure_dataset()
                tables = [*SYSTEM_TABLES.values(), *tables]
            created: set[str] = set()
            statements = self._migrate(tables, created)
            # a version table created just now holds no version: no need to ask
            if schema is not None and (VERSION_TABLE in created or not self._has_schema_version(schema.version_hash)):
                self._store_schema(schema)
        return statements

    def migrate_tables(self, tables: list[Table]) -> None:
        with self.sql_client.schema_change_lock():
            self._migrate(tables)

    def delete_rows_by_id_prefix(self, table_names: list[str], id_prefix: str, load_id: str) -> None:
        """One transaction over every table: a package's rows go from all of them or none."""
        if not all(ch in "0123456789abcdef" for ch in id_prefix) or not id_prefix:
            raise ValueError(f"row id prefix {id_prefix!r} is not lower-case hex")
        live = self.sql_client.table_columns(table_names)
        statements = [sql.delete_by_id_prefix(self.sql_client.qualified(name), id_prefix)
                      for name in table_names if name in live]
        with self.sql_client.begin_transaction():
            self.sql_client.execute_many(statements)
            self._forget_jobs(load_id)

    def _migrate(self, tables: list[Table], created: set[str] | None = None) -> list[str]:
        """Create or alter ``tables`` to match the live catalog; the names of those created go to ``created``."""
        live = self.sql_client.table_columns([t.name for t in tables])
        statements: list[Statement] = []
        for table in tables:
            existing = live.get(table.name)
            if existing is None:
                statements.extend(self.create_table_statements(table))
                if created is not None:
                    created.add(table.name)
                continue
            live_names = {row[0] for row in existing}
            self._warn_on_type_drift(table, existing)
            new = [c for c in table.columns.values() if c.name not in live_names]
            statements.extend(self.add_columns_sql(table, new))
        if not statements:
            return []
        with self._ddl_transaction():
            return self.sql_client.execute_many(statements)

    def _ddl_transaction(self) -> Any:
        if self.capabilities.supports_ddl_transactions:
            return self.sql_client.begin_transaction()
        return nullcontext()

    def _warn_on_type_drift(self, table: Table, live: list[tuple[Any, ...]]) -> None:
        for name, db_type, precision, scale, _ in live:
            column = table.columns.get(name)
            if column is None:
                continue
            live_type, _hints = self.type_mapper.from_db_type(db_type, precision, scale)
            if live_type != column.data_type:
                logger.warning("table %r column %r is %s in the destination but %s in the schema",
                               table.name, name, db_type, column.data_type)

    def column_sql(self, column: Column, for_alter: bool = False) -> exp.ColumnDef:
        """Column definition; columns added to an existing table are nullable (it may hold rows)."""
        constraints = []
        if not column.nullable and not for_alter:
            constraints.append(exp.ColumnConstraint(kind=exp.NotNullColumnConstraint()))
        return exp.ColumnDef(this=self.sql_client.identifier(column.name),
                             kind=self.type_mapper.to_db_type(column), constraints=constraints)

    def create_table_sql(self, table: Table, target: exp.Table | None = None) -> exp.Expression:
        """``CREATE TABLE IF NOT EXISTS`` for ``table`` in the dataset, with its keys (``key_constraints``), or
        at ``target``: a staging table, which never has keys (a package may repeat a key; merges dedupe it)."""
        where = target.copy() if target is not None else self.sql_client.qualified(table.name)
        columns: list[exp.Expression] = [self.column_sql(c) for c in table.columns.values()]
        if target is None:
            columns.extend(ddl_hints.key_constraint(kind, cols, self.sql_client.identifier)
                           for kind, cols in self.key_constraints(table))
        return exp.Create(kind="TABLE", this=exp.Schema(this=where, expressions=columns), exists=True)

    def create_table_statements(self, table: Table) -> list[Statement]:
        """What makes a new table in the dataset: ``create_table_sql`` and its indexes (``index_sql``)."""
        return [self.create_table_sql(table), *self.index_sql(table)]

    def declared_hints(self) -> tuple[str, ...]:
        """The hints this client declares in DDL: the destination's ``ddl_hints`` when ``create_indexes`` is on."""
        return self.capabilities.ddl_hints if self.config.create_indexes else ()

    def key_constraints(self, table: Table) -> list[tuple[str, list[Column]]]:
        """The keys ``table`` declares (``ddl_hints.hinted_keys`` of ``declared_hints``), less those the
        database cannot index (``key_problem``: logged as a warning naming the table and columns)."""
        keys = []
        for kind, columns in ddl_hints.hinted_keys(table, self.declared_hints()):
            problem = self.key_problem(columns)
            if problem is None:
                keys.append((kind, columns))
            else:
                logger.warning("table %r: its %s (%s) is not declared: %s", table.name, kind.replace("_", " "),
                               ", ".join(c.name for c in columns), problem)
        return keys

    def key_problem(self, columns: list[Column]) -> str | None:
        """Hook: why this database cannot declare a key over ``columns`` (None: it can). MySQL indexes no
        LONGTEXT or LONGBLOB without a prefix length, and no key past 3072 bytes."""
        return None

    def index_sql(self, table: Table, target: exp.Table | None = None) -> list[Statement]:
        """Indexes a new ``table`` (at ``target``, default its place in the dataset) gets after its CREATE
        TABLE: the cluster index where the destination declares ``cluster`` (``ddl_hints.cluster_index``)."""
        if "cluster" not in self.declared_hints():
            return []
        where = target if target is not None else self.sql_client.qualified(table.name)
        return ddl_hints.cluster_index(table, where, self.sql_client.identifier, self.capabilities.max_identifier_length)

    def redeclare_sql(self, table: Table) -> list[Statement]:
        """A table that ``staging-optimized`` moved in from staging (a new table, without keys) gets the keys
        and indexes ``create_table_statements`` would have given it."""
        target = self.sql_client.qualified(table.name)
        return [*(ddl_hints.add_constraint(target, ddl_hints.key_constraint(kind, cols, self.sql_client.identifier))
                  for kind, cols in self.key_constraints(table)), *self.index_sql(table, target)]

    def add_columns_sql(self, table: Table, columns: list[Column]) -> list[exp.Expression]:
        if not columns:
            return []
        target = self.sql_client.qualified(table.name)
        defs = [self.column_sql(c, for_alter=True) for c in columns]
        if self.capabilities.supports_multi_column_alter:
            return [exp.Alter(this=target, kind="TABLE", actions=defs)]
        return [exp.Alter(this=target.copy(), kind="TABLE", actions=[d]) for d in defs]

    def _has_schema_version(self, version_hash: str) -> bool:
        table = self.sql_client.qualified(VERSION_TABLE)
        return bool(self.sql_client.execute_sql(sql.select_rows(table, ["version_hash"], ["version_hash"]),
                                                version_hash))

    def _store_schema(self, schema: Schema) -> None:
        self._insert_row(VERSION_TABLE, {
            "version_hash": schema.version_hash, "schema_name": schema.name, "engine_version": ENGINE_VERSION,
            "inserted_at": datetime.now(timezone.utc), "schema": schema.to_json()})

    def stored_schema(self, schema_name: str) -> Schema | None:
        """The newest schema stored in the destination, to restore a pipeline on a new machine; None without asking
        where the dataset was missing when this connection opened (a new pipeline's first run)."""
        if self.sql_client.dataset_found is False:
            return None
        newest = sql.select_rows(self.sql_client.qualified(VERSION_TABLE), ["schema"], ["schema_name"],
                                 newest_first="inserted_at")
        rows = self.sql_client.execute_sql(newest, schema_name)
        return Schema.from_dict(json.loads(rows[0][0])) if rows else None

    def stored_state(self, pipeline_name: str) -> dict[str, Any] | None:
        """The pipeline state stored with the newest load of ``pipeline_name`` that knew its incremental
        cursors, to resume on a new machine (a load from a machine that had none, before it restored them,
        does not count)."""
        from loadbay.cursor import STATE_KEY

        if self.sql_client.dataset_found is False:  # no dataset when this connection opened: no state either
            return None
        newest = sql.select_rows(self.sql_client.qualified(STATE_TABLE), ["state"], ["pipeline_name"],
                                 newest_first="created_at")
        newest = newest.where(exp.Like(this=exp.column("state", quoted=True), expression=exp.Placeholder()))
        rows = self.sql_client.execute_sql(newest, pipeline_name, f'%"{STATE_KEY}"%')  # bound: % is a paramstyle mark
        return json.loads(rows[0][0]) if rows else None

    def _insert_row(self, table_name: str, row: dict[str, Any]) -> None:
        self.sql_client.execute_sql(sql.insert_row(self.sql_client.qualified(table_name), list(row)), *row.values())

    # -- loading ---------------------------------------------------------------------------------
    def staging_table(self, table_name: str, load_id: str) -> exp.Table:
        """Where package ``load_id`` stages ``table_name``: its own table in the staging dataset."""
        name = staging_table_name(table_name, load_id, self.capabilities.max_identifier_length)
        return self.sql_client.qualified(name, staging=True)

    def prepare_load(self, schema: Schema, table_names: list[str], load_id: str) -> None:
        """Forget the done-records of staged and truncated tables first, then reset them: a kill in
        between leaves records missing (the files load again), never records of rows that are gone."""
        staged = [schema.tables[n] for n in table_names if self.uses_staging(schema.tables[n])]
        truncated = [schema.tables[n] for n in table_names
                     if schema.tables[n].write_disposition == "replace" and not self.uses_staging(schema.tables[n])]
        if not staged and not truncated:  # appends only: nothing to reset
            return
        with self.sql_client.begin_transaction():
            self._forget_jobs(load_id, [t.name for t in staged + truncated])
            if truncated:
                self.sql_client.execute_many(
                    sql_jobs.truncate_tables(truncated, self.sql_client.qualified, self.capabilities))
        if staged:
            self.reset_staging_tables(staged, load_id)

    def reset_staging_tables(self, tables: list[Table], load_id: str) -> None:
        """The package's staging tables of ``tables``, empty: the staging dataset made if missing, each table dropped
        (an earlier attempt may have left it) and created."""
        with self.sql_client.schema_change_lock():
            if not self.sql_client.has_dataset(self.config.staging_dataset_name):
                self.sql_client.create_dataset(self.config.staging_dataset_name)
        targets = [self.staging_table(t.name, load_id) for t in tables]
        drops = [sql_jobs.drop_table(target) for target in targets]
        creates = [self.create_table_sql(t, target) for t, target in zip(tables, targets)]
        self.sql_client.execute_many(drops + creates)

    def clean_up_package(self, schema: Schema, table_names: list[str], load_id: str,
                         done_records: bool = True) -> None:
        """Every table's staging name is dropped if it exists, whatever the strategy now: the package
        may have staged under a replace strategy or setting that changed since."""
        self.drop_staging_tables([n for n in table_names if n in schema.tables], load_id)
        if not done_records:
            return
        try:
            self._forget_jobs(load_id)
        except DestinationUndefinedRelation:  # nothing of the package ever reached the dataset
            pass

    def drop_staging_tables(self, table_names: list[str], load_id: str) -> None:
        """The package's staging tables of ``table_names``, where the staging dataset exists."""
        if table_names and self.sql_client.has_dataset(self.config.staging_dataset_name):
            self.sql_client.execute_many([sql_jobs.drop_table(self.staging_table(n, load_id)) for n in table_names])

    def drop_tables(self, table_names: list[str], schema: Schema | None,
                    state: dict[str, Any] | None = None) -> list[str]:
        """Drop ``table_names`` (and their twins in the staging dataset), then store ``schema`` (the
        pipeline's schema without them) as the newest version, so a new machine does not restore them;
        ``schema`` None: the pipeline is dropped whole, its stored schemas and state go too. One
        transaction where the database has transactional DDL. ``state``: the pipeline state without the
        dropped tables' incremental cursors, stored as the newest. Returns the SQL run."""
        staging = self.sql_client.has_dataset(self.config.staging_dataset_name)
        drops = [sql.drop_tables([self.sql_client.qualified(name)]) for name in table_names]
        if staging:
            drops += [sql.drop_tables([self.sql_client.qualified(name, staging=True)]) for name in table_names]
        system = set(self.sql_client.table_columns([VERSION_TABLE, STATE_TABLE]))  # none before a first load
        with self.sql_client.begin_transaction():
            run = self.sql_client.execute_many(drops)
            if schema is not None:
                if VERSION_TABLE in system:
                    self._store_schema(schema)
                if state is not None and STATE_TABLE in system:
                    self._insert_row(STATE_TABLE, {"pipeline_name": self.config.pipeline_name,
                                                   "state": json.dumps(state, sort_keys=True),
                                                   "created_at": datetime.now(timezone.utc), "_lb_load_id": "drop"})
                return run
            for table, column in ((VERSION_TABLE, "schema_name"), (STATE_TABLE, "pipeline_name")):
                if table in system:
                    delete = sql.delete_rows(self.sql_client.qualified(table), [column])
                    self.sql_client.execute_sql(delete, self.config.pipeline_name)
                    run.append(self.sql_client.render(delete))
        return run

    def create_load_job(self, job_file: JobFile, schema: Schema, *, staged_url: str | None = None) -> LoadJob:
        table = schema.tables[job_file.table_name]
        job_class = self.load_jobs.get(job_file.file_format)
        if job_class is None:
            raise DestinationTerminalError(
                f"file {job_file.path.name}: format {job_file.file_format!r} cannot be loaded by "
                f"{type(self).__name__}; it loads {sorted(self.load_jobs)}")
        load_id = job_file.path.parent.parent.name
        target = self.staging_table(table.name, load_id) if self.uses_staging(table) else \
            self.sql_client.qualified(table.name)
        return job_class(job_file, table, target, staged_url=staged_url)

    def run_job(self, job: LoadJob, load_id: str) -> None:
        """The job's rows and its done-record in one transaction (``load_with_done_record``)."""
        try:
            self.load_with_done_record(job, load_id)
        except DestinationKeyViolation as exc:
            retry = f"p.retry_failed_jobs() (loadbay pipeline {self.config.pipeline_name} retry-failed) and run again"
            raise self.key_violation(exc, job.table, retry) from exc
        crash_point("job.committed")

    def load_with_done_record(self, job: LoadJob, load_id: str) -> None:
        """The job's rows and its done-record in one transaction on this client's connection. A hook: SQLite's
        client may have a worker process do both (``destinations/sqlalchemy/sqlite_worker.py``)."""
        with self.sql_client.begin_transaction():
            job.run(self)
            crash_point("job.loaded")
            statement, params = self.done_record(job, load_id)
            self.sql_client.execute_sql(statement, *params)

    def done_record(self, job: LoadJob, load_id: str) -> tuple[Statement, list[Any]]:
        """The INSERT of the row in ``_lb_jobs`` that says ``job`` of package ``load_id`` committed, and its values."""
        row = {"load_id": load_id, "job_id": job.job_file.job_id, "table_name": job.table.name,
               "inserted_at": datetime.now(timezone.utc)}
        return sql.insert_row(self.sql_client.qualified(JOBS_TABLE), list(row)), list(row.values())

    def key_violation(self, exc: DestinationKeyViolation, table: Table | None, retry: str) -> DestinationKeyViolation:
        """``exc`` (a row repeats a key) naming the table, its declared keys and the ways out; ``retry`` says
        how the package is tried again."""
        keys = "; ".join(f"{kind.replace('_', ' ')} ({', '.join(c.name for c in cols)})"
                         for kind, cols in (ddl_hints.hinted_keys(table) if table is not None else []))
        where = f"table {table.name!r}" if table is not None else "a table of the package"
        name = self.config.pipeline_name
        return DestinationKeyViolation(
            f"{where}: a row repeats a key that a constraint of the table forbids (its key hints: {keys or 'none'}); "
            f"nothing of it was loaded and the package stays on disk. Drop the constraint from the table (loadbay "
            f"declares primary_key and unique hints in the tables it creates while the destination's create_indexes "
            f"setting is on), then {retry}; or give the package up (p.drop_pending_packages(), loadbay pipeline "
            f"{name} drop-pending) and load the data again without the repeated keys. {exc}",
            orig=exc.orig, statement=exc.statement)

    def loaded_jobs(self, load_id: str) -> set[str]:
        try:
            rows = self.sql_client.execute_sql(
                sql.select_rows(self.sql_client.qualified(JOBS_TABLE), ["job_id"], ["load_id"]), load_id)
        except DestinationUndefinedRelation:  # a new dataset: nothing was loaded
            return set()
        return {str(r[0]) for r in rows or []}

    def _forget_jobs(self, load_id: str, table_names: list[str] | None = None) -> None:
        """Delete done-records of package ``load_id`` (of ``table_names`` only, if given)."""
        if table_names == []:
            return
        table = self.sql_client.qualified(JOBS_TABLE)
        if table_names:
            statement = sql.delete_rows(table, ["load_id"], in_column="table_name", in_count=len(table_names))
            self.sql_client.execute_sql(statement, load_id, *table_names)
        else:
            self.sql_client.execute_sql(sql.delete_rows(table, ["load_id"]), load_id)

    def followup_statements(self, schema: Schema, table_names: list[str], load_id: str) -> list[Statement]:
        """Merge or replace SQL for every staged root table in the package, children included."""
        statements: list[Statement] = []
        for name in table_names:
            root = schema.tables[name]
            if root.parent is None and self.uses_staging(root):
                children = [c for c in schema.children_of(root.name) if c.name in table_names]
                statements.extend(self.followup_sql(root, children, load_id))
                if effective_strategy(root, self.config.replace_strategy) == "staging-optimized":
                    # the tables moved in are new ones: they get the keys new tables get
                    statements.extend(s for table in (root, *children) for s in self.redeclare_sql(table))
        return statements

    def followup_sql(self, root: Table, children: list[Table], load_id: str) -> list[Statement]:
        """The central SQL for one staged root table, by disposition and strategy (``sql_jobs.STAGED_SQL``),
        the strategy checked against the capabilities first. A strategy with no SQL fails the table:
        it never falls back to another strategy's SQL."""
        disposition = root.write_disposition
        strategy = effective_strategy(root, self.config.replace_strategy)
        problem = strategy_problem(disposition, strategy, self.capabilities)
        if problem is None and (disposition, strategy) not in sql_jobs.STAGED_SQL and strategy not in ("upsert", "scd2"):
            problem = f"{disposition} strategy {strategy!r} has no staged SQL in loadbay"
        if problem is not None:
            raise DestinationTerminalError(f"table {root.name!r}: {problem}")
        target = self.sql_client.qualified
        staging = lambda name: self.staging_table(name, load_id)  # noqa: E731
        if strategy == "upsert":  # merge only: strategy_problem refused it for other dispositions
            return sql_jobs.merge_upsert(root, children, target, staging, self.capabilities,
                                         syntax=self.upsert_syntax())
        if strategy == "scd2":
            valid_from = root.columns[sql_jobs.version_columns(root)[0]]
            boundary = self.timestamp_literal(valid_from, PackageStorage.created_at(load_id))
            return sql_jobs.merge_scd2(root, children, target, staging, self.capabilities, boundary)
        return list(sql_jobs.STAGED_SQL[disposition, strategy](root, children, target, staging, self.capabilities))

    def timestamp_literal(self, column: Column, value: datetime) -> exp.Expression:
        """``value`` (aware, UTC) as a literal of ``column``'s type, for SQL that writes a time the database
        did not choose (scd2's validity columns): ``CAST('… +00:00' AS <type>)``, or the UTC wall time where
        timestamps have no zone (``naive_timestamps``)."""
        text = (value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
                if self.capabilities.naive_timestamps else value.isoformat(sep=" ", timespec="microseconds"))
        return exp.Cast(this=exp.Literal.string(text), to=self.type_mapper.to_db_type(column))

    def upsert_syntax(self) -> str:
        """"merge", "on_conflict" or "on_duplicate_key": the configured ``upsert_syntax`` if the
        destination has that setting and it is not "auto", else the dialect's
        (``statements.upsert_syntax``: PostgreSQL has MERGE from version 15)."""
        chosen = getattr(self.config, "upsert_syntax", "auto")
        if chosen != "auto":
            return str(chosen)
        return sql.upsert_syntax(self.capabilities.sqlglot_dialect, self.sql_client.server_version)

    # -- completion ------------------------------------------------------------------------------
    def is_load_completed(self, load_id: str) -> bool:
        """Whether package ``load_id`` has its ``_lb_loads`` record; without asking where the dataset was missing when
        this connection opened (only this run, which holds the pipeline's lock, loads the package). A package found
        without one is remembered for the ``complete_load`` that follows (``_unmarked``)."""
        self._unmarked = None
        rows: list[tuple[Any, ...]] | None = None
        if self.sql_client.dataset_found is not False:
            try:
                rows = self.sql_client.execute_sql(
                    sql.select_rows(self.sql_client.qualified(LOADS_TABLE), ["load_id"], ["load_id"]), load_id)
            except DestinationUndefinedRelation:  # a new dataset: nothing was ever loaded
                rows = None
        if not rows:
            self._unmarked = load_id
        return bool(rows)

    def _marked_loaded(self, load_id: str) -> bool:
        """``is_load_completed`` for ``complete_load``: False without asking when the loader just found the package
        unmarked on this connection (``_unmarked``, used once); asked again otherwise: a retry after a commit whose
        answer was lost (the connection then reconnected) must see the record."""
        if self._unmarked == load_id:
            self._unmarked = None
            return False
        marked = self.is_load_completed(load_id)
        self._unmarked = None
        return marked

    def complete_load(self, load_id: str, schema: Schema, table_names: list[str],
                      state: dict[str, Any] | None = None) -> list[str]:
        """Merge/replace from staging and write the ``_lb_loads`` marker in one transaction.

        Either the package is fully applied and marked, or nothing is. A package already marked
        (a retry after a commit whose answer was lost) is not applied again. The caller removes
        its staging tables afterwards (``clean_up_package``).
        """
        statements = self.followup_statements(schema, table_names, load_id)
        # idempotent DDL (IF NOT EXISTS: lookup and upsert indexes) first: on MySQL it would commit the
        # transaction; an index of a table the transaction makes (staging-optimized) is made after it
        def is_idempotent(statement: Statement) -> bool:
            return isinstance(statement, exp.Create) and bool(statement.args.get("exists"))

        idempotent = [s for s in statements if is_idempotent(s)]
        ddl: list[str] = []
        if idempotent:
            with self.sql_client.schema_change_lock():
                ddl = self.sql_client.execute_many(idempotent)
        now = datetime.now(timezone.utc)
        merged = [n for n in table_names if self.uses_staging(schema.tables[n])]
        targets = [self.sql_client.qualified(n) for n in merged]
        with self.sql_client.merge_locks(targets):
            self.sql_client.refresh_statistics(targets)
            with self.sql_client.begin_transaction():
                self.lock_tables_for_merge(merged)
                if self._marked_loaded(load_id):
                    return []
                rendered = self._execute_naming_tables([s for s in statements if not is_idempotent(s)], schema,
                                                       table_names)
                crash_point("package.merged")
                self._forget_jobs(load_id)
                if state is not None:
                    self._insert_row(STATE_TABLE, {"pipeline_name": self.config.pipeline_name,
                                                   "state": json.dumps(state, sort_keys=True),
                                                   "created_at": now, "_lb_load_id": load_id})
                self._insert_row(LOADS_TABLE, {"load_id": load_id, "schema_name": schema.name, "status": 0,
                                               "inserted_at": now, "schema_version_hash": schema.version_hash})
        crash_point("package.committed")
        return ddl + rendered

    def _execute_naming_tables(self, statements: list[Statement], schema: Schema, table_names: list[str]) -> list[str]:
        """``execute_many``, with a key violation named by the table its statement writes (``key_violation``)."""
        rendered: list[str] = []
        for statement in statements:
            try:
                rendered.extend(self.sql_client.execute_many([statement]))
            except DestinationKeyViolation as exc:
                written = statement.this if isinstance(statement, exp.Expression) else None
                written = written.this if isinstance(written, exp.Schema) else written
                names = {self.sql_client.qualified(n).name: n for n in table_names}
                table = schema.tables.get(names.get(written.name, "")) if isinstance(written, exp.Table) else None
                raise self.key_violation(exc, table, "run the pipeline again (the package is applied again)") from exc
        return rendered

    def lock_tables_for_merge(self, table_names: list[str]) -> None:
        """Make concurrent merges into the same tables wait for each other (inside the final
        transaction). Without it, two packages merging overlapping keys at once could both insert
        a key; disjoint keys are safe either way. Only dialects with table locks take them (PostgreSQL)."""
        self.sql_client.lock_tables([self.sql_client.qualified(n) for n in table_names])
