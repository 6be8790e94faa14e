"""Looking at a pipeline without loading anything: what the CLI's ``loadbay pipeline NAME <command>`` prints.

A pipeline remembers, in ``pipeline.json`` beside its packages, which destination and dataset its runs
used (credentials without their secret: a password comes from config or the environment again), so
``attach("gh")`` and ``loadbay pipeline gh info`` need no flags. Inspecting a pipeline that never ran on
this machine is an error that creates nothing: no folder, no database file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadbay.common.configuration import Credentials
from loadbay.common.exceptions import DestinationUndefinedRelation, LoadbayError

if TYPE_CHECKING:
    from loadbay.pipeline import Pipeline

PIPELINE_FILE = "pipeline.json"
SECRET_NAME = re.compile(r"pass|secret|token|key|cred", re.IGNORECASE)
"""Query options never written to pipeline.json (``sslpassword``, ``api_key``, ...): config supplies them again."""
LAST_LOADS = 10
"""Loads ``info`` lists, newest first."""


class PipelineNotFound(LoadbayError):
    """No pipeline of that name has run with this pipelines_dir."""


def remember(p: Pipeline) -> None:
    """Write what ``attach`` needs to reopen ``p``: its destination, dataset and credentials without secrets."""
    from loadbay.destinations import BUILTINS

    destination = p.destination
    cls = type(destination)
    reference = destination.destination_type if destination.destination_type in BUILTINS \
        else f"{cls.__module__}:{cls.__qualname__}"
    record = {"pipeline_name": p.pipeline_name, "destination": reference,
              "destination_name": destination.destination_name, "dataset_name": p.requested_dataset_name,
              "credentials": _without_secrets(p.config.credentials)}
    path = p.pipeline_dir / PIPELINE_FILE
    text = json.dumps(record, indent=1, sort_keys=True)
    if path.exists() and path.read_text() == text:
        return
    p.pipeline_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _without_secrets(credentials: Any) -> dict[str, Any] | None:
    """The credentials' fields that are not secret (a file path, host, user, database)."""
    if not isinstance(credentials, Credentials):
        return None
    out = {}
    for f in fields(credentials):  # type: ignore[arg-type]
        value = getattr(credentials, f.name)
        if f.name in credentials.SECRET_FIELDS or value in (None, "", {}):
            continue
        out[f.name] = {k: v for k, v in value.items() if k not in credentials.SECRET_FIELDS and not SECRET_NAME.search(k)} \
            if isinstance(value, dict) else value
    database = out.get("database")
    if isinstance(database, str) and database != ":memory:" and out.get("drivername", "sqlite").startswith("sqlite"):
        out["database"] = str(Path(database).expanduser().absolute())  # a file: found from any folder
    return out


def attach(pipeline_name: str, pipelines_dir: str | Path | None = None, *, destination: Any = None,
           credentials: Any = None, dataset_name: str | None = None) -> Pipeline:
    """The pipeline ``pipeline_name`` as its last run left it; arguments given here win over what it
    remembers. Raises ``PipelineNotFound`` (creating nothing) when it has not run with this pipelines_dir."""
    import loadbay
    from loadbay.common.configuration import resolve
    from loadbay.pipeline import PipelineSettings

    folder = Path(resolve(PipelineSettings, [("pipelines", pipeline_name), ("pipeline",)],
                          {"pipelines_dir": str(pipelines_dir) if pipelines_dir else None}).pipelines_dir).expanduser()
    record_path = folder / pipeline_name / PIPELINE_FILE
    if not record_path.is_file():
        known = sorted(p.parent.name for p in folder.glob(f"*/{PIPELINE_FILE}")) if folder.is_dir() else []
        raise PipelineNotFound(
            f"pipeline {pipeline_name!r} not found in {folder}: no run of it with this pipelines_dir"
            + (f" (pipelines there: {', '.join(known)})" if known else " (no pipelines there)"))
    record = json.loads(record_path.read_text())
    if destination is None:
        destination = loadbay.destination(record["destination"], destination_name=record.get("destination_name"),
                                          credentials=credentials or record.get("credentials"))
    elif credentials is not None:
        destination = loadbay.destination(destination, credentials=credentials)
    return loadbay.pipeline(pipeline_name, destination=destination,
                            dataset_name=dataset_name or record.get("dataset_name"), pipelines_dir=folder)


@dataclass(frozen=True)
class LoadRecord:
    load_id: str
    status: int
    inserted_at: Any
    schema_version_hash: str | None


def last_loads(p: Pipeline, limit: int = LAST_LOADS) -> list[LoadRecord]:
    """The pipeline's newest loads from ``_lb_loads`` (none when the dataset has none yet)."""
    from sqlglot import exp

    from loadbay.destinations.job_client import LOADS_TABLE

    with p.sql_client() as client:
        select = (exp.select(*[exp.column(c) for c in ("load_id", "status", "inserted_at", "schema_version_hash")])
                  .from_(client.qualified(LOADS_TABLE))
                  .where(exp.column("schema_name").eq(exp.Literal.string(p.pipeline_name)))
                  .order_by(exp.Ordered(this=exp.column("load_id"), desc=True)).limit(limit))
        try:
            rows = client.execute_sql(select) or []
        except DestinationUndefinedRelation:
            return []
    return [LoadRecord(str(r[0]), int(r[1]), r[2], r[3]) for r in rows]


def pending(p: Pipeline) -> list[dict[str, Any]]:
    """Packages on disk waiting to load: their jobs per state and the first line of each failed job's error."""
    out = []
    for package in p.storage.pending():
        jobs = {state.removesuffix("_jobs"): len(package.jobs(state))
                for state in ("new_jobs", "started_jobs", "completed_jobs", "failed_jobs")}
        failed = []
        for job in package.jobs("failed_jobs"):
            lines = (package.job_error(job) or "").strip().splitlines()
            failed.append({"file": job.path.name, "table": job.table_name, "error": lines[0] if lines else ""})
        out.append({"load_id": package.load_id, "jobs": jobs, "failed": failed})
    return out


def info(p: Pipeline) -> dict[str, Any]:
    """Destination, dataset, where it is (password masked), the last loads and the pending packages."""
    return {"pipeline": p.pipeline_name, "destination": f"{p.destination.destination_name} "
            f"({p.destination.destination_type})", "dataset": p.dataset_name,
            "location": p.config.credentials.location() if isinstance(p.config.credentials, Credentials) else "-",
            "pipelines_dir": str(p.pipeline_dir.absolute()), "last_loads": last_loads(p), "pending": pending(p)}


def table_counts(p: Pipeline) -> list[tuple[str, int]]:
    """Row counts of the pipeline's tables that exist in the dataset (a table the schema knows but the
    dataset lacks, such as one of another dataset, is left out)."""
    from sqlglot import exp

    names = [t.name for t in p.schema.data_tables()]
    with p.sql_client() as client:
        try:
            live = set(client.table_columns(names))
        except DestinationUndefinedRelation:
            return []
        out = []
        for name in names:
            if name in live:
                rows = client.execute_sql(exp.select(exp.func("count", exp.Star())).from_(client.qualified(name)))
                out.append((name, int(rows[0][0]) if rows else 0))
    return out


def schema_ddl(p: Pipeline) -> list[str]:
    """``CREATE TABLE`` statements of the pipeline's tables in the destination's dialect, as a first
    load would run them (nothing runs): with their keys and indexes when ``create_indexes`` is on."""
    client = p.destination.client(p.config)
    return [client.sql_client.render(s) for t in p.schema.data_tables() for s in client.create_table_statements(t)]


def query(p: Pipeline, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of ``sql`` (the user's own SQL, run as written) on the pipeline's dataset."""
    with p.sql_client() as client, client.translating(sql), client.cursor() as cursor:
        cursor.execute(sql)
        if cursor.description is None:
            return [], []
        return [d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()]


@dataclass(frozen=True)
class DropPlan:
    """What ``drop`` removes: ``tables`` (children after their parents) and, when ``whole``, the pipeline's
    stored schemas and state in the destination and its local schema and pending packages."""

    pipeline: Pipeline
    tables: list[str]
    whole: bool
    pending: list[str]

    def describe(self) -> str:
        p = self.pipeline
        lines = [f"pipeline {p.pipeline_name!r}, dataset {p.dataset_name!r} on {p.destination.destination_name}: "
                 f"drop {len(self.tables)} table(s): {', '.join(self.tables) or '-'}"]
        if self.whole:
            lines.append("and its stored schemas and state (_lb_version, _lb_pipeline_state; _lb_loads keeps its "
                         "history), its local schema" + (f" and pending package(s) {', '.join(self.pending)}"
                                                         if self.pending else ""))
        return "\n".join(lines)


def plan_drop(p: Pipeline, tables: list[str] | None = None) -> DropPlan:
    """The tables ``drop`` would remove: ``tables`` with every child table of theirs, or every table of
    the pipeline (None). A table the schema does not know is an error naming the known ones; dropping
    tables while packages are pending is refused (they may hold rows of them)."""
    schema = p.schema
    pending_ids = p.pending_packages()
    if tables is None:
        return DropPlan(p, [t.name for t in schema.data_tables()], True, pending_ids)
    if pending_ids:
        raise LoadbayError(f"pipeline {p.pipeline_name!r} has pending package(s) {', '.join(pending_ids)} that may "
                           "hold rows of these tables: load them (resume) or drop them (drop-pending) first")
    known = {t.name for t in schema.data_tables()}
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise LoadbayError(f"pipeline {p.pipeline_name!r} has no table(s) {', '.join(map(repr, unknown))}; "
                           f"its tables: {', '.join(sorted(known)) or '-'}")
    names: list[str] = []
    for name in tables:
        for table in (schema.tables[name], *schema.children_of(name)):
            if table.name not in names:
                names.append(table.name)
    return DropPlan(p, names, False, [])


def drop(plan: DropPlan) -> list[str]:
    """Carry out ``plan``: the tables go from the destination (in one transaction where the database has
    transactional DDL), then from the pipeline's schema here. Returns the SQL run."""
    from loadbay.common.schema import naming
    from loadbay.cursor import STATE_KEY

    p = plan.pipeline
    with p.storage.lock(f"pipeline {p.pipeline_name!r}"):  # no run of it meanwhile
        schema = p.schema
        remaining = None
        state = None
        if not plan.whole:
            remaining = schema
            for name in plan.tables:
                remaining.tables.pop(name, None)
            cursors = p._loaded_state().get(STATE_KEY, {})
            kept = {res: c for res, c in cursors.items()
                    if naming.normalize_identifier(res, p.capabilities.max_identifier_length) not in plan.tables}
            if kept != cursors:  # a dropped table's rows load again from the start
                state = {STATE_KEY: kept}
        with p.destination.client(p.config) as client:
            run = client.drop_tables(list(reversed(plan.tables)), remaining, state)  # children before parents
        if state is not None:
            p._save_state(state)
        if remaining is not None:
            p._save_schema(remaining)
    if remaining is None:
        p.drop_pending_packages()
        p.schema_path.unlink(missing_ok=True)
        p.state_path.unlink(missing_ok=True)  # incremental cursors start over with the tables
    return run


def sync(pipeline_name: str, pipelines_dir: str | Path | None = None, *, destination: Any = "duckdb",
         credentials: Any = None, dataset_name: str | None = None) -> Pipeline:
    """Restore a pipeline's local state (its schema, and what ``attach`` needs) from the destination, on a
    machine where it never ran; raises when the destination holds no schema of that pipeline."""
    import loadbay

    if credentials is not None:
        destination = loadbay.destination(destination, credentials=credentials)
    p = loadbay.pipeline(pipeline_name, destination=destination, dataset_name=dataset_name, pipelines_dir=pipelines_dir)
    with p.destination.client(p.config) as client:
        try:
            stored = client.stored_schema(pipeline_name)
        except DestinationUndefinedRelation:
            stored = None
    if stored is None:
        raise PipelineNotFound(f"dataset {p.dataset_name!r} on {p.destination.destination_name} holds no schema of "
                               f"pipeline {pipeline_name!r}: nothing to sync (is the dataset right?)")
    p.pipeline_dir.mkdir(parents=True, exist_ok=True)
    p._save_schema(stored)
    p.state()  # the incremental cursors, kept in state.json
    remember(p)
    return p
