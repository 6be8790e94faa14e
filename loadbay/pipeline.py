"""Pipeline: extract → normalize → load, resuming unfinished packages first."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbay.common.capabilities import COLUMNAR_FORMATS, FILE_FORMATS, DestinationCapabilities
from loadbay.common.configuration import resolve
from loadbay.common.destination import STAGING_SUFFIX, Destination, DestinationConfig
from loadbay.common.exceptions import (ConfigurationError, DestinationError, DestinationUndefinedRelation, LoadbayError,
                               PipelineInterrupted, PipelineStepFailed, SourceError)
from loadbay.common.schema import naming
from loadbay.common.schema.contracts import SchemaContract
from loadbay.common.schema.types import Schema
from loadbay.common.storage.package import DamagedPackageError, LoadPackage, PackageStorage
from loadbay.common.storage.stage import Stage, stage_for
from loadbay.destinations import resolve_destination
from loadbay.extract import Resource, as_resources
from loadbay.info import LoadInfo, LoadPackageInfo
from loadbay.interrupts import RunStopped, stop_on_signals
from loadbay.cursor import CURSORS_KEY, STATE_KEY, Incremental, with_package_state
from loadbay.inspection import remember
from loadbay.load import Loader, LoadRetriesExhausted, RetryPolicy, SharedClient
from loadbay.load_feed import LoadFeed, created_tables, with_tables
from loadbay.normalize import normalize
from loadbay.progress import RunProgress, resolve_mode

logger = logging.getLogger(__name__)


@dataclass
class PipelineSettings:
    """Tunables, from ``[pipeline]`` in config.toml or ``PIPELINE__<NAME>`` variables."""

    pipelines_dir: str = "~/.loadbay/pipelines"
    batch_size: int | None = None  # None: 5,000 items of rows, 65,536 rows of Arrow data (sources.batch_sizes)
    file_max_items: int | None = None  # rows per load file; None: 100,000 (Arrow data: the destination's choice)
    max_retries: int = 3
    retry_backoff_seconds: float = 1.0
    lock_wait_seconds: float = 300.0  # how long to wait while another process holds the database (DuckDB)
    workers: int = 0  # 0: the destination's max_parallel_load_jobs
    load_while_normalizing: bool = True  # where the destination can (capabilities.load_while_normalizing)
    archive_completed_packages: bool = False
    atomic_appends: bool = False  # append packages all or nothing: through staging, moved in at the end
    max_table_nesting: int | None = None  # nesting levels below a root made columns and child tables; deeper: json
    progress: str = "auto"  # "auto" (bars on a terminal), "bar", "log" (counters to logging), "off"


def pipeline(pipeline_name: str, destination: str | Destination | type[Destination] = "duckdb",
             dataset_name: str | None = None, pipelines_dir: str | Path | None = None,
             **settings: Any) -> Pipeline:
    """Create (or reopen) the pipeline ``pipeline_name``; its local state lives under pipelines_dir."""
    if not pipeline_name or not isinstance(pipeline_name, str):
        raise ConfigurationError("pipeline_name must be a non-empty string")
    _refuse_unknown_settings(pipeline_name, destination, settings)
    resolved = resolve(PipelineSettings, [("pipelines", pipeline_name), ("pipeline",)],
                       {"pipelines_dir": str(pipelines_dir) if pipelines_dir else None, **settings})
    dest = resolve_destination(destination)
    return Pipeline(pipeline_name, dest, dataset_name or f"{pipeline_name}_dataset", resolved)


def _refuse_unknown_settings(pipeline_name: str, destination: object, settings: dict[str, Any]) -> None:
    """A keyword ``PipelineSettings`` lacks is an error, never dropped: ``credentials=`` given here was once ignored
    without a word, and the pipeline loaded into the destination's default server instead."""
    known = {f.name for f in dataclasses.fields(PipelineSettings)}
    unknown = sorted(set(settings) - known)
    if not unknown:
        return
    name = destination if isinstance(destination, str) else "<name>"
    hint = (f" Credentials go to the destination: destination=loadbay.destination({name!r}, credentials=...), or "
            f"[destination.{name}] in .loadbay/secrets.toml." if "credentials" in unknown else "")
    raise ConfigurationError(f"pipeline {pipeline_name!r}: unknown setting(s) {', '.join(map(repr, unknown))}; "
                             f"a pipeline takes {', '.join(sorted(known))}.{hint}")


class Pipeline:
    def __init__(self, pipeline_name: str, destination: Destination, dataset_name: str,
                 settings: PipelineSettings) -> None:
        self.pipeline_name = pipeline_name
        self.destination = destination
        self.requested_dataset_name = dataset_name
        self.settings = settings
        self.pipeline_dir = Path(settings.pipelines_dir).expanduser() / pipeline_name
        self.storage = PackageStorage(self.pipeline_dir)
        self._config: DestinationConfig | None = None
        self._stop = threading.Event()  # the current run's: set by SIGINT/SIGTERM
        self._capabilities: DestinationCapabilities | None = None
        self._stage: tuple[Stage | None] | None = None  # made on first use, with the configuration
        self._kept_client: SharedClient | None = None  # a ``with pipeline:`` block's, across runs
        self._run_client: SharedClient | None = None  # the current run's: restore schema, load packages
        self._progress: RunProgress | None = None  # the current run's counters

    def __enter__(self) -> Pipeline:
        """Keep one connection to the destination open across the runs of this block.

        A run connects once (not per package) anyway; a service or scheduler calling ``run()``
        many times saves the connection and, on DuckDB, the database start and checkpoint of
        every run. While the block is open the connection holds what it holds: on DuckDB, the
        file (other processes wait for it). Without a block, every run closes its connection.
        """
        if self._kept_client is None:
            self._kept_client = self._shared_client()
        return self

    def __exit__(self, *exc_info: object) -> None:
        kept, self._kept_client = self._kept_client, None
        if kept is not None:
            self._close(kept)

    def __repr__(self) -> str:
        return f"<pipeline {self.pipeline_name} → {self.destination!r} dataset {self.requested_dataset_name}>"

    @property
    def config(self) -> DestinationConfig:
        """The destination's resolved configuration (resolved on first use, not at construction)."""
        if self._config is None:
            config = self.destination.configuration(self.pipeline_name, self.requested_dataset_name)
            capabilities = self.destination.capabilities_for(config)
            # short enough that "<dataset>_staging" fits too: a truncated staging name would be the dataset
            dataset = naming.normalize_identifier(self.requested_dataset_name,
                                                  capabilities.max_identifier_length - len(STAGING_SUFFIX))
            self._config = dataclasses.replace(config, dataset_name=dataset)
            self._capabilities = capabilities
        return self._config

    @property
    def capabilities(self) -> DestinationCapabilities:
        """What the destination can do, for this configuration (the SQLAlchemy one varies by dialect)."""
        self.config  # noqa: B018 - resolves both
        assert self._capabilities is not None
        return self._capabilities

    @property
    def dataset_name(self) -> str:
        return self.config.dataset_name

    @property
    def stage(self) -> Stage | None:
        """Where load files are copied for a destination that loads by reference (``capabilities.staging``);
        None for the others. Made on first use: a run makes it before anything else, so a stage that cannot
        be used (no ``bucket_url`` where one is required, a filesystem not installed) stops it at once."""
        if self._stage is None:
            self._stage = (stage_for(self.destination, self.config, self.capabilities),)
        return self._stage[0]

    # -- state -----------------------------------------------------------------------------------
    @property
    def schema_path(self) -> Path:
        return self.pipeline_dir / "schema.json"

    @property
    def schema(self) -> Schema:
        """The pipeline's schema as of its last successful normalize."""
        if self.schema_path.exists():
            return Schema.from_dict(json.loads(self.schema_path.read_text()))
        return Schema(self.pipeline_name)

    def _restore_schema(self) -> None:
        """On a machine without local state, continue from the schema stored in the destination,
        so names, types and variant columns stay what earlier loads made them; the incremental cursors
        come back with it."""
        if self.schema_path.exists():
            return
        stored, state = self._from_destination("stored_schema", "stored_state")
        if state and state.get(STATE_KEY) and not self.state_path.exists():
            self._save_state({STATE_KEY: state[STATE_KEY]})
        if stored is not None:
            logger.info("restored schema %s from the destination", stored.version_hash)
            self._save_schema(stored)

    def _from_destination(self, *methods: str) -> list[Any]:
        """What the job client's ``methods`` (``stored_schema``, ``stored_state``) say of this pipeline, on the
        run's connection (or one of its own); None for each where the destination keeps no such thing or
        the dataset does not exist yet."""
        shared = self._run_client or self._shared_client()
        try:
            client = shared.get(self._stop)
            out = []
            for method in methods:
                ask = getattr(client, method, None)
                try:
                    out.append(ask(self.pipeline_name) if ask is not None else None)
                except DestinationUndefinedRelation:  # a new dataset
                    out.append(None)
            return out
        finally:
            if shared is not self._run_client:
                shared.close()

    def _save_schema(self, schema: Schema) -> None:
        tmp = self.schema_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(schema.to_dict(), indent=1, ensure_ascii=False))
        tmp.replace(self.schema_path)

    # -- run -------------------------------------------------------------------------------------
    def run(self, data: Any = None, *, table_name: str | None = None,
            write_disposition: str | dict[str, Any] | None = None, primary_key: str | list[str] | None = None,
            merge_key: str | list[str] | None = None, columns: dict[str, dict[str, Any]] | None = None,
            loader_file_format: str | None = None, schema_contract: str | dict[str, str] | None = None,
            dry_run: bool = False, progress: bool | str | None = None,
            incremental: Incremental | None = None) -> LoadInfo:
        """Finish pending packages, then extract, normalize and load ``data`` (if any).

        ``dry_run``: normalize ``data`` and return (in ``LoadInfo.statements``) every statement its load
        would run, DDL, COPY or insert, merge or replace, without changing the destination or the
        pipeline (its schema, its packages); pending packages are left for a real run. ``progress``:
        ``"auto"`` (the ``progress`` setting's default: bars on a terminal), ``"bar"``/True, ``"log"``, ``"off"``/False.
        ``incremental``: a cursor (``loadbay.incremental``) for resources that have none of their own.

        One run of a pipeline at a time (a second process waits). SIGINT/SIGTERM stop the run at
        a safe point and raise ``PipelineInterrupted``; the next run resumes (loadbay.interrupts).
        """
        info = self._new_info()
        started = time.monotonic()
        if dry_run:
            if data is None:
                raise ConfigurationError(f"pipeline {self.pipeline_name!r}: a dry run plans the load of data given to "
                                         "it; pending packages load only in a real run (p.run())")
            resources = [self._with_run_hints(res, write_disposition, primary_key, merge_key, columns, incremental)
                         for res in as_resources(data, table_name)]
            return self._dry_run(resources, loader_file_format, schema_contract, info)
        stop = self._stop = threading.Event()
        received: list[int] = []
        normalized = data is None
        self._progress = RunProgress(self.pipeline_name,
                                     resolve_mode(self.settings.progress if progress is None else progress))
        with self.storage.lock(f"pipeline {self.pipeline_name!r}"), stop_on_signals(stop, received), \
                self._one_connection(), closing(self._progress):
            try:
                self.stage  # noqa: B018 - a misconfigured stage fails the run before it starts
                remember(self)  # what ``loadbay pipeline NAME ...`` reopens it with
                self._load_pending(info, stop)
                if data is not None and not stop.is_set():
                    resources = [self._with_run_hints(res, write_disposition, primary_key, merge_key, columns,
                                                      incremental) for res in as_resources(data, table_name)]
                    self._bind_cursors(resources)
                    package = self._normalize(resources, loader_file_format, schema_contract, info, stop)
                    normalized = True
                    self._load_one(package, info, stop)
            except RunStopped:
                pass  # stopped at a safe point; reported below
            # extract (waiting for the data) + normalize + load (pending packages, this run's, the rest) = wall time
            info.timings["load"] = max(0.0, time.monotonic() - started - info.timings.get("normalize", 0.0)
                                       - info.timings.get("extract", 0.0))
            if stop.is_set():
                if normalized and not self.storage.pending():  # the signal came after the last commit
                    logger.warning("pipeline %r: the signal came when everything was loaded already",
                                   self.pipeline_name)
                    return info
                raise self._interrupted(received[0] if received else 0, info, normalized)
        return info

    def _dry_run(self, resources: list[Resource], loader_file_format: str | None, schema_contract: Any,
                 info: LoadInfo) -> LoadInfo:
        """Normalize into a scratch folder and load through a client that notes, not runs, what would change
        the destination (``SqlClient.recorder``); catalog reads run, so the plan is what a run would do now."""
        import tempfile

        info.dry_run = True
        file_format = self._file_format(loader_file_format)
        shared = SharedClient(self.destination, self.config, self._retry_policy(),
                              f"pipeline {self.pipeline_name!r}: connect", recorder=info.statements)
        stop = threading.Event()
        try:
            schema = self.schema
            if not self.schema_path.exists():  # as a run would restore it, without saving it here
                try:
                    schema = getattr(shared.get(stop), "stored_schema", lambda _: None)(self.pipeline_name) or schema
                except DestinationUndefinedRelation:
                    pass
            self._bind_cursors(resources, keep=False)  # the rows a run would load now
            with tempfile.TemporaryDirectory(prefix="loadbay-dry-run-") as scratch:
                storage = PackageStorage(Path(scratch))
                started = time.monotonic()
                package, _ = normalize(resources, schema, self.capabilities, storage, file_format=file_format,
                                       contract=SchemaContract.parse(schema_contract),
                                       batch_size=self.settings.batch_size, file_max_items=self.settings.file_max_items,
                                       stop=stop, atomic_appends=self.settings.atomic_appends,
                                       columnar_format=self.capabilities.columnar_format(loader_file_format),
                                       max_table_nesting=self.settings.max_table_nesting)
                info.timings["normalize"] = time.monotonic() - started
                loader = Loader(self.destination, self.config, storage, capabilities=self.capabilities,
                                retry=self._retry_policy(), workers=1, stop=stop, shared_client=shared,
                                stage=stage_for(self.destination, self.config, self.capabilities, dry_run=True),
                                state={"pipeline_name": self.pipeline_name, "dataset_name": self.dataset_name,
                                       "destination": self.destination.destination_name})
                result = loader.load(package)
                info.load_packages.append(dataclasses.replace(result, state="dry run"))
        finally:
            shared.close()
        return info

    def _file_format(self, loader_file_format: str | None) -> str:
        file_format = loader_file_format or self.capabilities.preferred_loader_file_format
        if file_format not in self.capabilities.supported_loader_file_formats:
            raise ConfigurationError(
                f"loader_file_format {file_format!r} is not supported by {self.destination.destination_type}; "
                f"supported: {self.capabilities.supported_loader_file_formats} (all formats: {FILE_FORMATS})")
        if file_format in COLUMNAR_FORMATS and importlib.util.find_spec("pyarrow") is None:
            raise ConfigurationError(f"loader_file_format {file_format!r} needs pyarrow: pip install 'loadbay[parquet]'")
        return file_format

    def _close(self, shared: SharedClient) -> None:
        """Close a run's or a block's connection; a failure is only warned of: what was committed stays committed."""
        try:
            shared.close()
        except DestinationError as exc:
            logger.warning("pipeline %r: closing the connection failed: %s", self.pipeline_name, exc)

    def _shared_client(self) -> SharedClient:
        return SharedClient(self.destination, self.config, self._retry_policy(),
                            f"pipeline {self.pipeline_name!r}: connect")

    @contextmanager
    def _one_connection(self) -> Iterator[None]:
        """The run's client: the ``with`` block's if there is one, else one for this run, closed at its end."""
        own = self._kept_client is None
        if self._kept_client is not None:
            self._kept_client.forget_catalog()
        self._run_client = self._kept_client or self._shared_client()
        try:
            yield
        finally:
            shared, self._run_client = self._run_client, None
            if own:
                self._close(shared)

    def _interrupted(self, signum: int, info: LoadInfo, normalized: bool) -> PipelineInterrupted:
        import signal

        name = signal.Signals(signum).name if signum else "a signal"
        pending = self.pending_packages()
        lines = [f"pipeline {self.pipeline_name!r} stopped by {name} at a safe point: every load job either "
                 "committed whole or not at all, and no merge or replace is half applied (a truncate-and-insert "
                 "table may be partly loaded until the package is resumed).", info.progress()]
        if pending:
            lines.append(f"Pending package(s) {', '.join(pending)} stay on disk; the next run of the pipeline "
                         f"loads them first (p.run(), or loadbay pipeline {self.pipeline_name} resume).")
        if not normalized:
            lines.append("The data of this run was not normalized completely, so none of it was loaded: "
                         "send it again.")
        lines.append("Rows of append jobs that completed are visible in the destination already; resuming "
                     "adds only the rest (sending the same data again would add it twice). Set "
                     "atomic_appends = true to make an append package all or nothing.")
        return PipelineInterrupted("\n".join(lines), signal_number=signum, load_info=info)

    @staticmethod
    def _with_run_hints(res: Resource, write_disposition: Any, primary_key: Any, merge_key: Any,
                        columns: Any, incremental: Incremental | None = None) -> Resource:
        """A copy of ``res`` where run()'s arguments fill in what the resource did not say itself."""
        return dataclasses.replace(
            res, write_disposition=res.write_disposition or write_disposition,
            primary_key=res.primary_key or primary_key, merge_key=res.merge_key or merge_key,
            columns={**(columns or {}), **(res.columns or {})} or None,
            incremental=res.incremental or (copy.deepcopy(incremental) if incremental is not None else None))

    # -- incremental state ---------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.pipeline_dir / "state.json"

    def state(self, *, keep: bool = True) -> dict[str, Any]:
        """The pipeline state as the next run starts from it: the last loaded package's (``state.json``, or
        on a new machine the destination's ``_lb_pipeline_state``, kept here unless not ``keep``), moved on
        by every pending package."""
        state = self._loaded_state()
        if not self.state_path.exists():
            stored = self._stored_state()
            if stored and stored.get(STATE_KEY):
                state = {STATE_KEY: stored[STATE_KEY]}
                if keep:  # kept here as the restored schema is
                    self._save_state(state)
        for package in self.storage.pending():
            state = with_package_state(state, package.read_meta()) or state
        return state

    def _stored_state(self) -> dict[str, Any] | None:
        return self._from_destination("stored_state")[0]  # type: ignore[no-any-return]

    def _bind_cursors(self, resources: list[Resource], *, keep: bool = True) -> None:
        """Give each resource with a cursor the value its last run left."""
        if not any(res.incremental is not None for res in resources):
            return
        owners: dict[int, str] = {}
        for res in resources:
            if res.incremental is not None and owners.setdefault(id(res.incremental), res.name) != res.name:
                raise ConfigurationError(
                    f"pipeline {self.pipeline_name!r}: resources {owners[id(res.incremental)]!r} and {res.name!r} "
                    "share one loadbay.incremental(...) object; give each resource its own cursor")
        try:
            cursors = self.state(keep=keep).get(STATE_KEY, {})
        except (DestinationError, LoadRetriesExhausted) as exc:  # cannot tell where the cursors are
            raise PipelineStepFailed(self.pipeline_name, "restore state", None, exc) from exc
        for res in resources:
            if res.incremental is not None:
                res.incremental.bind(cursors.get(res.name))

    def _save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
        tmp.replace(self.state_path)

    def _normalize(self, resources: list[Resource], loader_file_format: str | None,
                   schema_contract: Any, info: LoadInfo, stop: threading.Event) -> LoadPackage:
        file_format = self._file_format(loader_file_format)
        try:
            self._restore_schema()
        except (DestinationError, LoadRetriesExhausted) as exc:  # cannot tell what the destination holds
            raise PipelineStepFailed(self.pipeline_name, "restore schema", None, exc) from exc
        started = time.monotonic()
        feed = self._feed(stop)
        try:
            package, schema = normalize(
                resources, self.schema, self.capabilities, self.storage, file_format=file_format,
                contract=SchemaContract.parse(schema_contract), batch_size=self.settings.batch_size,
                file_max_items=self.settings.file_max_items, follower=feed, stop=stop,
                atomic_appends=self.settings.atomic_appends, columnar_format=self.capabilities.columnar_format(loader_file_format),
                max_table_nesting=self.settings.max_table_nesting, progress=self._progress, timings=info.timings)
        except BaseException as exc:
            if feed is not None and feed.definitions:  # the tables it created stay known
                self._save_schema(with_tables(self.schema, list(feed.definitions.values())))
            if isinstance(exc, SourceError):  # a malformed file, a missing one: name the pipeline too
                raise exc.within(pipeline_name=self.pipeline_name) from exc
            raise
        self._save_schema(schema)
        drained = info.timings.pop("drain", 0.0)  # loading the last files before the commit counts as load
        info.timings["normalize"] = time.monotonic() - started - info.timings.get("extract", 0.0) - drained
        return package

    def _feed(self, stop: threading.Event) -> LoadFeed | None:
        """The loader takes the package's files while it is normalized, where the destination can and
        no older package waits (packages apply in order)."""
        if not (self.capabilities.load_while_normalizing and self.settings.load_while_normalizing):
            return None
        if self.storage.pending():
            return None
        return self._loader(stop).feed()

    def _loader(self, stop: threading.Event) -> Loader:
        return Loader(self.destination, self.config, self.storage, capabilities=self.capabilities,
                      retry=self._retry_policy(), workers=self.settings.workers or None,
                      archive_completed=self.settings.archive_completed_packages,
                      state={"pipeline_name": self.pipeline_name, "dataset_name": self.dataset_name,
                             "destination": self.destination.destination_name, **self._loaded_state()}, stop=stop,
                      shared_client=self._run_client, progress=self._progress, on_committed=self._package_committed,
                      stage=self.stage)

    def _package_committed(self, meta: dict[str, Any]) -> None:
        """A package is in the destination: its cursors are the loaded state now (before it leaves the
        pending packages, so a crash in between cannot leave an older cursor here than there)."""
        if CURSORS_KEY in meta:
            self._save_state(with_package_state(self._loaded_state(), meta) or {})

    def _retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.settings.max_retries, self.settings.retry_backoff_seconds,
                           self.settings.lock_wait_seconds)

    def _load_pending(self, info: LoadInfo, stop: threading.Event) -> None:
        for package in self.storage.abandoned_normalizing():
            logger.warning("removing package %s that a crashed run left half normalized", package.load_id)
            try:
                self._loader(stop).remove_abandoned_rows(package)
            except DestinationError as exc:
                raise PipelineStepFailed(self.pipeline_name, "remove rows of an abandoned package",
                                         package.load_id, exc) from exc
            created = created_tables(package)
            if created:
                self._save_schema(with_tables(self.schema, created))
            self.storage.discard(package)
        for package in self.storage.pending():
            if stop.is_set():
                return
            self._load_one(package, info, stop)

    def _load_one(self, package: LoadPackage, info: LoadInfo, stop: threading.Event) -> LoadPackageInfo:
        """Load ``package`` unless an older package is stuck with failed jobs.

        Packages apply in order: loading a newer one first would let the older one's merge
        overwrite newer rows once it is retried. Held packages stay on disk, nothing is lost.
        """
        loader = self._loader(stop)
        blocked = any(p.state in ("failed", "pending") for p in info.load_packages)
        if blocked or package.jobs("failed_jobs"):
            result = loader.describe(package, "pending" if blocked else "failed")
            if blocked:
                logger.error("package %s is held back by %s", package.load_id, self._blocker(info))
        else:
            try:
                result = loader.load(package)
            except DamagedPackageError as exc:
                hint = DamagedPackageError(
                    f"{exc}. It holds back every newer package. Give it up with p.drop_pending_packages() "
                    f"(loadbay pipeline {self.pipeline_name} drop-pending): rows of its append jobs that "
                    "completed stay in the destination, nothing of its merges or replaces was applied.")
                raise PipelineStepFailed(self.pipeline_name, "load", package.load_id, hint) from exc
            except LoadbayError as exc:
                raise PipelineStepFailed(self.pipeline_name, "load", package.load_id, exc) from exc
        info.load_packages.append(result)
        return result

    def _loaded_state(self) -> dict[str, Any]:
        """The cursors of the packages loaded so far (not moved on by pending ones), as kept here."""
        if self.state_path.exists():
            return json.loads(self.state_path.read_text())  # type: ignore[no-any-return]
        return {}

    def _blocker(self, info: LoadInfo) -> str:
        """The older package that holds newer ones back: its failed job, the cause, the two ways out."""
        for older in info.load_packages:
            failed = [job for job in older.jobs if job.state == "failed"]
            if older.state in ("failed", "pending"):
                first = failed[0] if failed else None
                cause = ((first.error or "").strip().splitlines() or ["(no error recorded)"])[0] if first else ""
                what = (f"package {older.load_id}, whose job {Path(first.file_path).name} (table {first.table_name}) "
                        f"failed: {cause}" if first else f"package {older.load_id}, which did not load completely")
                return (f"{what}. Packages apply in order. Fix the cause and run p.retry_failed_jobs() (loadbay "
                        f"pipeline {self.pipeline_name} retry-failed), or give the packages up with "
                        f"p.drop_pending_packages() (loadbay pipeline {self.pipeline_name} drop-pending)")
        return "an older package"

    def _new_info(self) -> LoadInfo:
        return LoadInfo(pipeline_name=self.pipeline_name, destination_name=self.destination.destination_name,
                        destination_type=self.destination.destination_type, dataset_name=self.dataset_name,
                        location=self.config.credentials.location())

    # -- packages --------------------------------------------------------------------------------
    def pending_packages(self) -> list[str]:
        return [p.load_id for p in self.storage.pending()]

    def retry_failed_jobs(self) -> int:
        """Move failed jobs back to new_jobs (after fixing their cause); the next run loads them."""
        moved = 0
        with self.storage.lock(f"pipeline {self.pipeline_name!r}"):
            for package in self.storage.pending():
                for job in package.jobs("failed_jobs"):
                    package.retry_job(job)
                    moved += 1
        return moved

    def drop_pending_packages(self) -> list[str]:
        """Give up on every package not yet loaded: files not yet loaded never will be (rows of
        append files that did load, while normalizing or in a job that completed, stay in the destination).
        Their staging tables are dropped where the destination can be reached, their staged files removed."""
        dropped = []
        if self._kept_client is not None:  # what it knows is the last run's (on Spark, the table files too)
            self._kept_client.forget_catalog()
        with self.storage.lock(f"pipeline {self.pipeline_name!r}"):
            for package in self.storage.pending():
                self._clean_up(package)
                try:
                    self._loader(threading.Event()).remove_staged_files(package.load_id, force=True)
                except ConfigurationError as exc:  # the stage cannot be reached as configured now
                    logger.warning("package %s: its staged files could not be removed: %s", package.load_id, exc)
                self.storage.discard(package)
                dropped.append(package.load_id)
        return dropped

    def _clean_up(self, package: LoadPackage) -> None:
        try:
            schema = package.schema()
            if self._kept_client is not None:
                self._kept_client.get().clean_up_package(schema, list(schema.tables), package.load_id)
            else:
                with self.destination.client(self.config) as client:
                    client.clean_up_package(schema, list(schema.tables), package.load_id)
        except (DestinationError, LoadRetriesExhausted, OSError, ValueError) as exc:
            logger.warning("package %s: its staging tables (named <table>__%s in dataset %s) and done-records "
                           "in _lb_jobs could not be removed: %s", package.load_id, package.load_id,
                           self.config.staging_dataset_name, exc)

    # -- querying --------------------------------------------------------------------------------
    @contextmanager
    def sql_client(self) -> Iterator[Any]:
        """An open SQL client on the dataset: ``client.execute_sql("SELECT count(*) FROM events")``. Inside
        ``with pipeline:`` it is the block's connection (no second connect, which on DuckDB would also
        start and checkpoint the database again); otherwise a new one, closed at the end."""
        kept = getattr(self._kept_client.get(), "sql_client", None) if self._kept_client is not None else None
        if kept is not None:
            yield kept
            return
        client = self.destination.sql_client(self.config)
        with client:
            yield client
