"""Spark job client: its type map (both ways), parquet tables (``USING parquet``), the parquet load job,
done-records forgotten by tombstones, and replace and merge as build-then-swap (``destinations/spark/swap.py``),
since Spark cannot delete rows from a parquet table."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, ClassVar

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.exceptions import DestinationTerminalError, DestinationUndefinedRelation
from loadbay.common.schema.types import Column, Schema, Table
from loadbay.destinations import statements as sql
from loadbay.destinations.job_client import JOBS_TABLE, LOADS_TABLE, STATE_TABLE, SqlJobClient
from loadbay.destinations.job_errors import where
from loadbay.destinations.spark.jobs import ParquetInsertJob
from loadbay.destinations.spark.sql_client import JSON_COMMENT
from loadbay.destinations.spark.swap import SwapPlan
from loadbay.destinations.type_mapping import DType, TypeMapper
from loadbay.faults import crash_point

logger = logging.getLogger(__name__)

FORGOTTEN = ""
"""The ``job_id`` of a tombstone in ``_lb_jobs``: the records of its load id and table (``*``: every table)
written before it no longer count."""
EVERY_TABLE = "*"


class SparkTypeMapper(TypeMapper):
    """STRING for text and json (JSON text: nested data becomes child tables, so native arrays and structs are
    not needed), TIMESTAMP (an instant; sessions in UTC) and TIMESTAMP_NTZ for ``timezone=False``, BINARY,
    DECIMAL(p, s) up to 38 digits, TIME(6) (Spark 4's TIME, enabled per session)."""

    TYPE_MAPPING: ClassVar[dict[str, DType]] = {
        **TypeMapper.TYPE_MAPPING,
        "text": DType.TEXT,
        "json": DType.TEXT,
        "binary": DType.BINARY,
        "timestamp": DType.TIMESTAMPTZ,
    }
    TIMESTAMP_WITHOUT_TZ: ClassVar[DType] = DType.TIMESTAMPNTZ

    def time_type(self, column: Column) -> exp.DataType:
        """``TIME(6)``: sqlglot's Spark dialect writes its TIME as TIMESTAMP, so the type is named as Spark 4 spells it."""
        return exp.DataType(this=DType.USERDEFINED, kind=f"TIME({self.capabilities.timestamp_precision})")

    def text_type(self, column: Column) -> exp.DataType | None:
        """STRING whatever the ``precision``: Spark's VARCHAR(n) is a STRING with a length check that fails loads."""
        return None

    HINTED: ClassVar[dict[str, Any]] = {**TypeMapper.HINTED, "time": time_type, "text": text_type}

    def from_db_type(self, db_type: str, precision: Any = None, scale: Any = None) -> tuple[str, dict[str, Any]]:
        """``timestamp_ntz`` is a timestamp without time zone, ``time(6)`` a time, ``json`` a STRING commented so
        (``SparkSqlClient.table_columns``); the rest as the base reads them (``timestamp`` is Spark's instant:
        sqlglot reads it as TIMESTAMPTZ)."""
        lowered = db_type.lower()
        if lowered == "json":
            return "json", {}
        if lowered == "timestamp_ntz":
            return "timestamp", {"timezone": False}
        if lowered.startswith("time(") or lowered == "time":
            return "time", {}
        return super().from_db_type(db_type, precision, scale)


class SparkJobClient(SqlJobClient):
    type_mapper_class = SparkTypeMapper
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {"parquet": ParquetInsertJob}
    _records: tuple[str, list[tuple[str, str]]] | None = None
    """(load id, its live done-records) as ``_forget_jobs`` left them, for the ``loaded_jobs`` that follows it in
    ``prepare_load``: one read of ``_lb_jobs``, not two. Used once; a job's record or a reconnect drops it."""
    _tried: set[tuple[str, str]]
    """(load id, job id) of the jobs this client has run: a second attempt checks what the first committed."""
    _swept: str | None = None
    """The package whose swapped-out tables ``complete_load`` just dropped, so its ``clean_up_package`` need not
    look for them again (used once)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tried = set()

    def forget_catalog(self) -> None:
        super().forget_catalog()
        self._records = self._swept = None

    def load_with_done_record(self, job: LoadJob, load_id: str) -> None:
        """The base's: the file's INSERT, then its done-record, two statements here. A job tried before (by a killed
        run, or by this one before its connection was lost) whose rows are in its table already committed its INSERT
        without the record: it gets the record only, where loading the file again would double its rows (a table
        loaded straight, not a staging table: those are emptied before a package's files load again)."""
        self._records = None  # the done-records ``_forget_jobs`` saw are no longer all there are
        key = (load_id, job.job_file.job_id)
        tried = job.job_file.retry_count > 0 or key in self._tried
        self._tried.add(key)
        if tried and not self.uses_staging(job.table) and self._rows_loaded(job):
            logger.info("%s: its rows are in the table, loaded by an earlier attempt that wrote no done-record; "
                        "the record only", where(job))
            statement, params = self.done_record(job, load_id)
            self.sql_client.execute_sql(statement, *params)
            return
        super().load_with_done_record(job, load_id)

    def _rows_loaded(self, job: LoadJob) -> bool:
        """Whether the first and the last row of the job's file are in its table, by ``_lb_id`` (unique: a random
        prefix per normalizer, then a count). One of the two only is a file loaded in part, which Spark's commit
        of one INSERT does not leave: an error, for a user to look at, rather than a guess."""
        import pyarrow.parquet as pq

        if "_lb_id" not in pq.read_schema(job.job_file.path).names:
            return False
        ids = pq.read_table(job.job_file.path, columns=["_lb_id"]).column("_lb_id")
        if len(ids) == 0:
            return False
        ends = sorted({ids[0].as_py(), ids[-1].as_py()})
        query = exp.select(exp.Count(this=exp.Star())).from_(job.target.copy()).where(
            exp.column("_lb_id", quoted=True).isin(*[exp.Placeholder() for _ in ends]))
        found = (self.sql_client.execute_sql(query, *ends) or [(0,)])[0][0]
        if found and found != len(ends):
            raise DestinationTerminalError(
                f"{where(job)}: {found} of its first and last rows are in the table after an interrupted load: "
                f"the file is in the table in part (rows with _lb_id {ends})")
        return bool(found)

    def column_sql(self, column: Column, for_alter: bool = False) -> exp.ColumnDef:
        """The base's, and a json column's ``COMMENT 'loadbay:json'`` (``JSON_COMMENT``): its type is STRING."""
        definition = super().column_sql(column, for_alter)
        if column.data_type == "json":
            definition.append("constraints", exp.ColumnConstraint(
                kind=exp.CommentColumnConstraint(this=exp.Literal.string(JSON_COMMENT))))
        return definition

    def add_columns_sql(self, table: Table, columns: list[Column]) -> list[exp.Expression]:
        """One ``ALTER TABLE ... ADD COLUMNS (a ..., b ...)``: Spark's grammar, where sqlglot's generic form repeats
        ``ADD COLUMN`` per column, which Spark's parser refuses for more than one."""
        if not columns:
            return []
        definitions = exp.Schema(expressions=[self.column_sql(c, for_alter=True) for c in columns])
        return [exp.Alter(this=self.sql_client.qualified(table.name), kind="TABLE", actions=[definitions])]

    def create_table_sql(self, table: Table, target: exp.Table | None = None) -> exp.Expression:
        """``CREATE TABLE IF NOT EXISTS ... USING parquet``: a data source table in the warehouse."""
        create = super().create_table_sql(table, target)
        create.set("properties", exp.Properties(expressions=[exp.FileFormatProperty(this=exp.var("parquet"))]))
        return create

    # -- done-records: Spark cannot DELETE them, so they are outdated by tombstones ----------------------
    def _forget_jobs(self, load_id: str, table_names: list[str] | None = None) -> None:
        """A tombstone (``FORGOTTEN`` as job id) per table of ``table_names`` that has records of the package, or
        one for every table (``*``) when none are named and it has any: older records stop counting
        (``loaded_jobs``). Nothing is written where there is nothing to forget (a package's first attempt)."""
        if table_names == []:
            return
        live = self._known_records(load_id)
        tables = {table for _, table in live}
        names = [EVERY_TABLE] if table_names is None and tables else [n for n in table_names or [] if n in tables]
        now = datetime.now(timezone.utc)
        self._records = None
        for name in names:
            self._insert_row(JOBS_TABLE, {"load_id": load_id, "job_id": FORGOTTEN, "table_name": name,
                                          "inserted_at": now})
        kept = [] if EVERY_TABLE in names else [(job, table) for job, table in live if table not in names]
        self._records = (load_id, kept)

    def is_load_completed(self, load_id: str) -> bool:
        """The base's; where the dataset was missing when this connection opened, the package has no done-records
        either (``_records``): only this run writes them."""
        missing = self.sql_client.dataset_found is False
        completed = super().is_load_completed(load_id)
        if missing:
            self._records = (load_id, [])
        return completed

    def loaded_jobs(self, load_id: str) -> set[str]:
        """Jobs of ``load_id`` whose record is newer than every tombstone of their table: those ``_forget_jobs`` just
        left (``_records``), else read. Only this run (it holds the pipeline's lock) writes the package's records."""
        return {job_id for job_id, _ in self._known_records(load_id)}

    def _known_records(self, load_id: str) -> list[tuple[str, str]]:
        """``_live_records``, or what ``_records`` holds of ``load_id`` (used up)."""
        known, self._records = self._records, None
        if known is not None and known[0] == load_id:
            return known[1]
        return self._live_records(load_id)

    def _live_records(self, load_id: str) -> list[tuple[str, str]]:
        """(job id, table) of the records of ``load_id`` that no tombstone outdates."""
        query = sql.select_rows(self.sql_client.qualified(JOBS_TABLE), ["job_id", "table_name", "inserted_at"],
                                ["load_id"])
        try:
            rows = self.sql_client.execute_sql(query, load_id) or []
        except DestinationUndefinedRelation:
            return []
        forgotten: dict[str, datetime] = {}
        for job_id, table, at in rows:
            if job_id == FORGOTTEN:
                forgotten[table] = max(at, forgotten.get(table, at))
        since = forgotten.get(EVERY_TABLE)
        return [(str(job_id), str(table)) for job_id, table, at in rows if job_id != FORGOTTEN
                and all(limit is None or at > limit for limit in (forgotten.get(table), since))]

    # -- completion: build every changed table, swap them in, then the _lb_loads record ------------------
    def complete_load(self, load_id: str, schema: Schema, table_names: list[str],
                      state: dict[str, Any] | None = None) -> list[str]:
        """Not atomic on Spark (no transactions): each staged root's group is rebuilt and swapped in
        (``SwapPlan.run``, resumable: a swap already done is not repeated), then the pipeline state, then
        the ``_lb_loads`` record, last; the old tables are dropped after it. A crash before the record leaves
        some groups swapped: the next run finishes the swaps and writes the record."""
        if self._marked_loaded(load_id):
            return []
        rendered: list[str] = []
        existing = self.sql_client.table_names(self.sql_client.dataset_name) or set()
        for plan in self.swap_plans(schema, table_names, load_id):
            rendered += plan.run(self.sql_client, existing)
        crash_point("package.merged")
        now = datetime.now(timezone.utc)
        if state is not None:
            self._insert_row(STATE_TABLE, {"pipeline_name": self.config.pipeline_name,
                                           "state": json.dumps(state, sort_keys=True), "created_at": now,
                                           "_lb_load_id": load_id})
        self._insert_row(LOADS_TABLE, {"load_id": load_id, "schema_name": schema.name, "status": 0,
                                       "inserted_at": now, "schema_version_hash": schema.version_hash})
        crash_point("package.committed")
        self.drop_swapped_out(schema, table_names, load_id, existing)
        self._swept = load_id
        self.compact_jobs(load_id)
        return rendered

    def compact_jobs(self, load_id: str) -> None:
        """Empty ``_lb_jobs`` (TRUNCATE) once package ``load_id`` is recorded, when it holds records of that
        package only: they are what a DELETE would have removed with the record. Records of another package
        in flight (a pipeline loading the same dataset) are left, tombstones and all: a record that pipeline
        writes between the look and the TRUNCATE is lost, and a crash of it then loads that file again. The look
        lists the table's files anew (``REFRESH TABLE``): this session's list is as of its own last record, and
        another pipeline's records written since would not be seen."""
        table = self.sql_client.qualified(JOBS_TABLE)
        others = exp.select(exp.Literal.number(1)).from_(table.copy()).where(
            exp.NEQ(this=exp.column("load_id", quoted=True), expression=exp.Placeholder())).limit(1)
        try:
            self.sql_client.execute_sql(sql.raw("REFRESH TABLE ", table.copy()))
            if not self.sql_client.execute_sql(others, load_id):
                self.sql_client.execute_sql(exp.TruncateTable(expressions=[table]))
        except DestinationUndefinedRelation:  # a dry run of a new dataset: no _lb_jobs to look at
            pass

    def swap_plans(self, schema: Schema, table_names: list[str], load_id: str) -> list[SwapPlan]:
        """One plan per staged root table of the package, its children with it."""
        plans = []
        for name in table_names:
            root = schema.tables[name]
            if root.parent is None and self.uses_staging(root):
                children = [c for c in schema.children_of(root.name) if c.name in table_names]
                plans.append(SwapPlan.for_group(root, children, load_id, client=self))
        return plans

    def drop_swapped_out(self, schema: Schema, table_names: list[str], load_id: str,
                         existing: set[str] | None = None) -> None:
        """The package's old and unfinished tables (``<table>__<load id>__old``/``__new``), if any are left: among
        ``existing`` (the dataset's tables as ``complete_load`` kept them), else those ``SHOW TABLES`` lists. Those names
        are the package's own: only this run, holding the pipeline's lock, makes them."""
        names = [n for n in table_names if n in schema.tables]
        leftovers = SwapPlan.leftovers(names, load_id, self.capabilities.max_identifier_length)
        if existing is None:
            existing = self.sql_client.table_names(self.sql_client.dataset_name) or set()
        drops = [sql.drop_tables([self.sql_client.qualified(n)]) for n in leftovers if n in existing]
        self.sql_client.execute_many(drops)
        existing.difference_update(leftovers)

    def reset_staging_tables(self, tables: list[Table], load_id: str) -> None:
        """The base's with one ``SHOW TABLES`` of the staging dataset, which says whether it exists and which of the
        package's staging tables an earlier attempt left (dropped); the others are only created. The names are the
        package's own: no other pipeline makes them."""
        staging = self.config.staging_dataset_name
        existing = self.sql_client.table_names(staging)
        if existing is None:
            self.sql_client.create_dataset(staging)
        targets = [self.staging_table(t.name, load_id) for t in tables]
        drops = [sql.drop_tables([target]) for target in targets if target.name in (existing or set())]
        self.sql_client.execute_many(drops + [self.create_table_sql(t, target) for t, target in zip(tables, targets)])

    def drop_staging_tables(self, table_names: list[str], load_id: str) -> None:
        """Those of the package's staging tables that ``SHOW TABLES`` lists in the staging dataset (none where it is
        missing)."""
        if not table_names:
            return
        existing = self.sql_client.table_names(self.config.staging_dataset_name) or set()
        targets = [self.staging_table(name, load_id) for name in table_names]
        self.sql_client.execute_many([sql.drop_tables([t]) for t in targets if t.name in existing])

    def clean_up_package(self, schema: Schema, table_names: list[str], load_id: str,
                         done_records: bool = True) -> None:
        """The base's (staging tables, and the done-records if asked: a package given up), the package's
        swapped-out tables (a crash after its record), and ``_lb_jobs`` emptied where only it had records."""
        super().clean_up_package(schema, table_names, load_id, done_records)
        swept, self._swept = self._swept, None
        if swept != load_id:  # complete_load dropped them just now on this connection
            self.drop_swapped_out(schema, table_names, load_id)
        if done_records:
            self.compact_jobs(load_id)
