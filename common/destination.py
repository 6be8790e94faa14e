"""The destination contract: a factory (Destination), a JobClient it makes, and LoadJobs.

Shared SQL machinery implements these in ``destinations/``; a destination that is not SQL (the
no-op one, say) implements them directly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any, ClassVar

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.configuration import Credentials, resolve
from loadbay.common.schema.types import Schema, Table
from loadbay.common.storage.package import JobFile

STAGING_SUFFIX = "_staging"
ATOMIC_APPEND = "insert-from-staging"
APPEND_STRATEGIES = ("insert", ATOMIC_APPEND)
"""``insert`` (default): each file straight into the table, visible once its job commits.
``insert-from-staging``: files into the package's staging tables, moved into the table in the
package's final transaction with its ``_lb_loads`` row, so the package is all or nothing."""
DEFAULT_STRATEGIES = {"append": "insert", "merge": "delete-insert"}
"""The strategy of a table that names none (replace: the destination's ``replace_strategy`` setting)."""


def replace_strategy(table: Table, default: str = "insert-from-staging") -> str:
    """The table's own replace strategy, else the destination's configured default."""
    return table.strategy or default


def effective_strategy(table: Table, default_replace: str = "insert-from-staging") -> str:
    """The strategy a table loads with: its own, else its disposition's default (replace: the
    destination's configured one)."""
    if table.write_disposition == "replace":
        return replace_strategy(table, default_replace)
    return table.strategy or DEFAULT_STRATEGIES.get(table.write_disposition, "")


def supported_strategies(disposition: str | None, capabilities: DestinationCapabilities) -> tuple[str, ...]:
    """The strategies a destination takes for ``disposition`` (None: append, the default): merge and
    replace from its capabilities; every destination appends both ways."""
    by_disposition = {"merge": capabilities.merge_strategies, "replace": capabilities.replace_strategies,
                      "append": APPEND_STRATEGIES}
    return tuple(by_disposition.get(disposition or "append", ()))


def strategy_problem(disposition: str | None, strategy: str, capabilities: DestinationCapabilities) -> str | None:
    """Why ``strategy`` cannot load a ``disposition`` table on this destination, or None when it can.

    The one check of strategies against capabilities: normalize runs it on what a resource asks for
    (before anything is written), the job client on what a staged table is about to run.
    """
    supported = supported_strategies(disposition, capabilities)
    if strategy in supported:
        return None
    return (f"{disposition or 'append'} strategy {strategy!r} is not supported by this destination; "
            f"supported: {supported}")


def uses_staging(table: Table, default_replace: str = "insert-from-staging") -> bool:
    """Whether the table's files load into the staging dataset first (merge, atomic replace and append)."""
    if table.write_disposition == "merge":
        return True
    if table.write_disposition == "append":
        return table.strategy == ATOMIC_APPEND
    return table.write_disposition == "replace" and replace_strategy(table, default_replace) != "truncate-and-insert"


def needs_preparation(table: Table) -> bool:
    """Tables whose destination side is reset before the package's files load (staging or truncate)."""
    return table.write_disposition in ("merge", "replace") or (
        table.write_disposition == "append" and table.strategy == ATOMIC_APPEND)


@dataclass
class DestinationConfig:
    """Settings every destination has; a destination subclasses it to type its credentials."""

    credentials: Credentials
    replace_strategy: str = "insert-from-staging"
    """Replace strategy for tables that do not name one in their write_disposition."""
    create_indexes: bool = False
    """Declare ``primary_key`` and ``unique`` hints as constraints (PostgreSQL: ``cluster`` as an index) in the
    tables loadbay creates from now on, where the destination can (``capabilities.ddl_hints``). Off by default:
    with it, an append that repeats a key fails (merges dedupe their keys and load as before)."""
    dataset_name: str = ""
    pipeline_name: str = ""

    @property
    def staging_dataset_name(self) -> str:
        return self.dataset_name + STAGING_SUFFIX


class LoadJob(ABC):
    """Loads one file into one table; raises a DestinationError subclass when it fails."""

    def __init__(self, job_file: JobFile, table: Table, target: Any, *, staged_url: str | None = None) -> None:
        self.job_file = job_file
        self.table = table
        self.target = target  # what the client loads into: a qualified table expression
        self.staged_url = staged_url
        """Where the file's copy on the stage is, for an engine that reads it itself (``capabilities.staging``):
        ``<bucket_url>/<dataset>/<load_id>/<table>.<file_id>.<format>``, a local path when ``bucket_url`` is
        one, else a URL (``file://``, ``s3://``, ...). None when the package is not staged."""

    @property
    def file_url(self) -> str:
        """What the engine reads: the staged URL when the package is staged, else the local file's path."""
        return self.staged_url or str(self.job_file.path)

    @abstractmethod
    def run(self, client: Any) -> None:
        """Load the file through ``client`` (the JobClient that made this job)."""


class JobClient(ABC):
    """One connection's worth of work against a destination, used as a context manager."""

    beside_normalizing: bool = False
    """Set by the load feed on its client (``load_while_normalizing``): its files load while this process still
    normalizes on another core, so a destination whose driver holds the GIL while binding rows may load them in
    a process of its own (SQLite's worker)."""

    def __init__(self, config: DestinationConfig, capabilities: DestinationCapabilities) -> None:
        self.config = config
        self.capabilities = capabilities

    def prepare_for_large_files(self) -> None:
        """Hook: the load feed's client hears that a table of the package being normalized passed 20,000 rows,
        before its first file closes (SQLite starts its load worker, whose start then costs the load nothing)."""

    def __enter__(self) -> JobClient:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        """Open the connection."""

    def close(self) -> None:
        """Close the connection."""

    @abstractmethod
    def initialize_storage(self) -> None:
        """Create the dataset and the system tables if missing."""

    @abstractmethod
    def update_stored_schema(self, schema: Schema, table_names: list[str]) -> list[str]:
        """Create or alter ``table_names`` to match ``schema``; returns the statements run."""

    def prepare_storage(self, schema: Schema, table_names: list[str]) -> list[str]:
        """What a package needs before its jobs: ``initialize_storage`` then ``update_stored_schema``.
        One call, so that a client can read the live catalog once for both."""
        self.initialize_storage()
        return self.update_stored_schema(schema, table_names)

    def migrate_tables(self, tables: list[Table]) -> None:
        """Create or alter ``tables`` (not staging) without recording a schema version: what a file
        loading while its package is still normalized needs first. Destinations with
        ``load_while_normalizing`` implement it."""
        raise NotImplementedError(f"{type(self).__name__} does not load while normalizing")

    def delete_rows_by_id_prefix(self, table_names: list[str], id_prefix: str, load_id: str) -> None:
        """Delete the rows whose ``_lb_id`` starts with ``id_prefix`` (one abandoned package's rows)
        and the done-records of package ``load_id``."""
        raise NotImplementedError(f"{type(self).__name__} does not load while normalizing")

    @abstractmethod
    def prepare_load(self, schema: Schema, table_names: list[str], load_id: str) -> None:
        """Before any job: recreate the package's staging tables, truncate for truncate-and-insert,
        and forget the done-records of the jobs of those tables (their files load again)."""

    @abstractmethod
    def create_load_job(self, job_file: JobFile, schema: Schema, *, staged_url: str | None = None) -> LoadJob:
        """The job loading ``job_file``; ``staged_url``: where the loader copied it (``LoadJob.staged_url``)."""

    def run_job(self, job: LoadJob, load_id: str) -> None:
        """Load one file. A destination that can should commit the job's rows together with a
        done-record of ``(load_id, job id)``, which ``loaded_jobs`` reads back: then a process
        killed between the commit and the file's move to completed_jobs never loads it twice."""
        job.run(self)

    def loaded_jobs(self, load_id: str) -> set[str]:
        """Job ids (``table.file_id``) of package ``load_id`` whose rows are committed."""
        return set()

    def clean_up_package(self, schema: Schema, table_names: list[str], load_id: str,
                         done_records: bool = True) -> None:
        """Remove what package ``load_id`` keeps in the destination besides rows: its staging tables
        and (unless ``done_records`` is false: ``complete_load`` deleted them already) its done-records
        (it completed, or it is being dropped)."""

    def reconnect(self) -> None:
        """Drop and reopen the connection before a retry."""
        self.close()
        self.open()

    def forget_catalog(self) -> None:
        """Hook: forget what this client remembers of the destination (a kept connection starts a new run: another
        process may have changed it in between)."""

    @abstractmethod
    def is_load_completed(self, load_id: str) -> bool:
        ...

    @abstractmethod
    def complete_load(self, load_id: str, schema: Schema, table_names: list[str],
                      state: dict[str, Any] | None = None) -> list[str]:
        """Apply merges/replaces and write the package's commit marker, atomically where possible."""


class Destination(ABC):
    """A configured destination: the object users pass as ``destination=``.

    Subclasses set the class tables and implement ``client``; calling the class with overrides
    is all a user does: ``duckdb(credentials="/data/x.duckdb")``.
    """

    destination_type: ClassVar[str]
    spec: ClassVar[type[DestinationConfig]] = DestinationConfig
    capabilities: ClassVar[DestinationCapabilities]

    def __init__(self, credentials: Any = None, destination_name: str | None = None, **config: Any) -> None:
        self.destination_name = destination_name or self.destination_type
        known = {f.name for f in fields(self.spec)}
        unknown = set(config) - known
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown settings {sorted(unknown)}; known: {sorted(known)}")
        self.explicit = {"credentials": credentials, **config}

    def __repr__(self) -> str:
        return f"<destination {self.destination_name} ({self.destination_type})>"

    def sections(self) -> list[tuple[str, ...]]:
        names = [self.destination_name]
        if self.destination_type != self.destination_name:
            names.append(self.destination_type)
        return [("destination", n) for n in names]

    def configuration(self, pipeline_name: str, dataset_name: str, providers: Any = None) -> DestinationConfig:
        config = resolve(self.spec, self.sections(),
                         {**self.explicit, "dataset_name": dataset_name, "pipeline_name": pipeline_name},
                         providers)
        return self.finalize_config(config)

    def capabilities_for(self, config: DestinationConfig) -> DestinationCapabilities:
        """Capabilities under ``config``; most destinations have one fixed set (the class table)."""
        return self.capabilities

    def finalize_config(self, config: DestinationConfig) -> DestinationConfig:
        """Hook: fill defaults that depend on the pipeline (DuckDB's file name)."""
        return config

    @abstractmethod
    def client(self, config: DestinationConfig) -> JobClient:
        ...

    def sql_client(self, config: DestinationConfig) -> Any:
        raise NotImplementedError(f"destination {self.destination_type!r} cannot run SQL")
