"""Load: runs a package's jobs, retries what is transient, stops on what is terminal.

Order for one package: migrate tables → reset staging and truncated tables → every job (each
file's rows and its done-record in ``_lb_jobs`` in one transaction; ``new → started → completed |
failed``; where the destination loads by reference, the file is copied to its stage first,
``loadbay.common.storage.stage``) → merge/replace and the ``_lb_loads`` marker in one transaction →
remove the package's staged files → archive or remove the package. A crash at any point resumes
from the files on disk and the records in the destination:
a job whose done-record exists is never loaded again. A package with a failed job stays on disk,
unapplied.

Where the destination can (``capabilities.load_while_normalizing``), the Loader also takes the
files of a package still being normalized (``Loader.feed``, a ``PackageFollower`` of normalize):
append files load as the writer closes them, so a large run costs about its normalizing time
instead of normalizing plus loading. They run through the same ``_run_job`` as every other job.
Staging and truncated tables are reset when the package loads, so their files wait for it.

Nothing is lost or doubled by it. Before a table's first file loads this way, the package meta
records the table, its definition and the normalizer's row-id prefix (every ``_lb_id`` of the
package starts with it). If normalizing then fails, the rows loaded so far are deleted by that
prefix, at once or, when the destination cannot be reached (or the process died), by the next run
before it discards the abandoned package (``remove_abandoned_rows``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.destination import Destination, DestinationConfig, JobClient, needs_preparation
from loadbay.common.exceptions import (DestinationLockedError, DestinationTerminalError, DestinationTransientError,
                                       LoadbayError)
from loadbay.common.schema.types import Schema
from loadbay.common.storage.package import JOB_STATES, DamagedPackageError, JobFile, LoadPackage, PackageStorage
from loadbay.common.storage.stage import Stage
from loadbay.info import JobInfo, LoadPackageInfo
from loadbay.interrupts import RunStopped
from loadbay.cursor import with_package_state
from loadbay.progress import RunProgress

if TYPE_CHECKING:
    from loadbay.load_feed import LoadFeed

logger = logging.getLogger(__name__)
T = TypeVar("T")

TABLES_KEY = "tables_loaded_while_normalizing"
"""Package meta: tables that may hold rows of the package while it is not yet committed."""
DEFINITIONS_KEY = "table_definitions_loaded_while_normalizing"
"""Package meta: what those tables (and their parents) were created or altered to."""
PREFIX_KEY = "row_id_prefix"
"""Package meta: the prefix of every ``_lb_id`` of the package's rows."""
BYTES_PER_EXTRA_WORKER = 4 << 20
"""Load files a package needs before a second (third, ...) connection loads them in parallel."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_seconds: float = 1.0
    lock_wait_seconds: float = 300.0
    """How long to keep retrying while another process holds the database (a DuckDB file)."""

    def delay(self, attempt: int) -> float:
        return self.backoff_seconds * (2 ** attempt)

    def lock_delay(self, attempt: int) -> float:
        """Short, growing to a few seconds, with jitter so waiting writers do not retry in step."""
        return min(5.0, 0.05 * (2 ** attempt)) * random.uniform(0.5, 1.5)


class LoadRetriesExhausted(LoadbayError):
    """A transient error outlasted every retry; the package stays on disk and the next run resumes it."""


def with_retries(retry: RetryPolicy, action: Callable[[], T], what: str,
                 reconnect: Callable[[], None] | None = None, stop: threading.Event | None = None) -> T:
    """Run ``action``, retrying transient errors with backoff (and a fresh connection), and lock
    conflicts until ``retry.lock_wait_seconds`` have passed; a set ``stop`` ends the waiting
    (``RunStopped``)."""
    retries = 0  # transient errors so far
    waits = 0    # lock conflicts so far
    waited = 0.0
    while True:
        try:
            return action()
        except DestinationLockedError as exc:
            if waited >= retry.lock_wait_seconds:
                raise LoadRetriesExhausted(
                    f"{what}: the database stayed locked by another process for {waited:.0f} s: {exc}. "
                    "Raise lock_wait_seconds or run the pipelines one after the other.") from exc
            if waits == 0:
                logger.warning("%s: the database is locked by another process; waiting up to %.0f s",
                               what, retry.lock_wait_seconds)
            delay = retry.lock_delay(waits)
            waits += 1
            waited += delay
        except DestinationTransientError as exc:
            if retries >= retry.max_retries:
                raise LoadRetriesExhausted(
                    f"{what}: still failing after {retries} retries: {exc}. The package stays on disk; "
                    "run the pipeline again to resume it.") from exc
            delay = retry.delay(retries)
            retries += 1
            logger.warning("%s: transient error, retry %d/%d in %.1fs: %s", what, retries,
                           retry.max_retries, delay, exc)
        if stop is not None and stop.wait(delay):
            raise RunStopped(f"{what}: stopped by a signal while waiting to retry")
        if stop is None:
            time.sleep(delay)
        if reconnect is not None:
            try:
                reconnect()
            except DestinationTransientError as reconnect_exc:  # the next attempt connects again
                level = logging.DEBUG if isinstance(reconnect_exc, DestinationLockedError) else logging.WARNING
                logger.log(level, "%s: reconnect failed: %s", what, reconnect_exc)


class SharedClient:
    """One job client for a whole pipeline run (or a ``with pipeline:`` block), opened on first use.

    A load's fixed cost is mostly connecting: a DuckDB file starts its database on the first
    connection and checkpoints it when the last one closes, PostgreSQL authenticates and sets up
    the session. Restoring the schema and loading every package of a run through one connection
    pays that once. The caller closes it; retries reconnect it in place.
    """

    def __init__(self, destination: Destination, config: DestinationConfig, retry: RetryPolicy,
                 what: str = "connect", recorder: list[str] | None = None) -> None:
        self.destination, self.config, self.retry, self.what = destination, config, retry, what
        self.recorder = recorder
        """A dry run's list: the client's SQL client notes what would change the destination instead of running it."""
        self._client: JobClient | None = None

    def get(self, stop: threading.Event | None = None) -> JobClient:
        """The open client; connects (with retries) the first time."""
        if self._client is None:
            client = self.destination.client(self.config)
            if self.recorder is not None:
                sql_client = getattr(client, "sql_client", None)
                if sql_client is None:
                    raise LoadbayError(f"{self.destination.destination_type} has no SQL client: no dry run")
                sql_client.recorder = self.recorder
            with_retries(self.retry, client.open, self.what, client.reconnect, stop)
            self._client = client
        return self._client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def forget_catalog(self) -> None:
        """A kept client serves a new run: what it remembers of the destination goes (``JobClient.forget_catalog``)."""
        if self._client is not None:
            self._client.forget_catalog()


class Loader:
    def __init__(self, destination: Destination, config: DestinationConfig, storage: PackageStorage,
                 *, capabilities: DestinationCapabilities, retry: RetryPolicy, workers: int | None = None,
                 archive_completed: bool = False, state: dict[str, Any] | None = None,
                 stop: threading.Event | None = None, shared_client: SharedClient | None = None,
                 progress: RunProgress | None = None,
                 on_committed: Callable[[dict[str, Any]], None] | None = None, stage: Stage | None = None) -> None:
        self.destination = destination
        self.stage = stage
        """Where each file is copied before its job runs, for a destination that loads by reference
        (``capabilities.staging``); None: jobs read the package's own files."""
        self.on_committed = on_committed
        """Told (with the package's meta) once a package is committed in the destination, before it leaves the
        pending packages: what is kept beside the packages (the incremental cursors) moves on first."""
        self.progress = progress
        """Counts jobs to load and jobs done, for the run's progress display."""
        self.config = config
        self.storage = storage
        self.retry = retry
        self.shared_client = shared_client
        """Where the caller keeps a connection open across packages; None: one connection per package."""
        self.workers = max(1, workers or capabilities.max_parallel_load_jobs)
        self.archive_completed = archive_completed
        self.state = state
        self.stop = stop or threading.Event()
        """Set (by a signal handler) to start no further job; the package stays on disk to resume."""

    def load(self, package: LoadPackage) -> LoadPackageInfo:
        """Load ``package``; stopped by a signal, it is described as pending (it stays on disk)."""
        try:
            return self._load(package)
        except RunStopped:
            return self.describe(package, "pending")

    def _load(self, package: LoadPackage) -> LoadPackageInfo:
        package.check()
        package.clean_leftovers()
        schema = package.schema()
        meta = package.read_meta()
        if self.shared_client is not None:
            client = self.shared_client.get(self.stop)
        else:
            client = self.destination.client(self.config)
            self._with_retries(client, client.open, f"connect for package {package.load_id}")
        try:
            completed = self._with_retries(client, lambda: client.is_load_completed(package.load_id),
                                           f"check package {package.load_id}")
            if completed:  # crashed after commit, before cleanup
                self._clean_up(client, package, schema)
                info = self.describe(package, "loaded")
                if self.on_committed is not None:
                    self.on_committed(meta)
                self.storage.complete(package, self.archive_completed)
                return info
            tables = self._tables(package, schema, meta)
            if self.progress is not None:
                self.progress.add_jobs([f"{package.load_id}/{job.job_id}"
                                        for state in ("new_jobs", "started_jobs") for job in package.jobs(state)])
            self._with_retries(client, lambda: self._prepare(client, package, schema, tables), "prepare")
            if package.jobs("failed_jobs"):
                return self.describe(package, "failed")
            self._run_jobs(client, package, schema)
            if package.jobs("failed_jobs"):
                return self.describe(package, "failed")
            if package.jobs("new_jobs"):  # stopped by a signal before every job ran
                return self.describe(package, "pending")
            state = with_package_state(self.state, meta)
            self._with_retries(client, lambda: client.complete_load(package.load_id, schema, tables, state),
                               f"complete package {package.load_id}")
            self._clean_up(client, package, schema)
        finally:
            if self.shared_client is None:
                client.close()
        info = self.describe(package, "loaded")
        if self.on_committed is not None:
            self.on_committed(meta)
        self.storage.complete(package, self.archive_completed)
        return info

    def _clean_up(self, client: JobClient, package: LoadPackage, schema: Schema) -> None:
        """Drop the loaded package's staging tables and done-records. The package is loaded either
        way: a failure here is reported, never allowed to hold the package (and newer ones) back."""
        try:
            # its done-records went in the transaction that marked it loaded
            self._with_retries(client, lambda: client.clean_up_package(schema, list(schema.tables), package.load_id,
                                                                       done_records=False),
                               f"clean up package {package.load_id}")
        except LoadbayError as exc:
            logger.error("package %s is loaded, but its staging tables (<table>__%s) or done-records could not "
                         "be removed: %s", package.load_id, package.load_id, exc)
        self.remove_staged_files(package.load_id)

    def remove_staged_files(self, load_id: str, *, force: bool = False) -> None:
        """Remove the package's prefix on the stage (``force``: even with ``keep_staged_files``, the package
        is given up). Never raises: the package is loaded or gone either way, the prefix is logged instead."""
        stage = self.stage
        if stage is None:
            return
        try:
            with_retries(self.retry, lambda: stage.remove(load_id, force=force),
                         f"remove the staged files of package {load_id}", None, self.stop)
        except (LoadbayError, RunStopped) as exc:
            logger.error("package %s: its staged files under %s could not be removed (remove them by hand): %s",
                         load_id, stage.prefix(load_id), exc)

    def _tables(self, package: LoadPackage, schema: Schema, meta: dict[str, Any]) -> list[str]:
        """Tables with files, plus every table of each root in the package (replace clears them all)."""
        names: list[str] = []
        roots = list(meta.get("root_tables", []))
        for state in JOB_STATES:
            for job in package.jobs(state):
                if job.table_name not in schema.tables:
                    raise DamagedPackageError(
                        f"package {package.load_id}: file {state}/{job.path.name} names table "
                        f"{job.table_name!r}, which the package's schema does not have")
                root = schema.root_of(job.table_name).name
                if root not in roots:
                    roots.append(root)
        for root in roots:
            for table in (schema.tables[root], *schema.children_of(root)):
                if table.name not in names:
                    names.append(table.name)
        return names

    def _prepare(self, client: JobClient, package: LoadPackage, schema: Schema, tables: list[str]) -> None:
        """Migrate; reset staging and truncated tables (their files all load again); then settle the
        jobs a killed run left behind by the destination's done-records, never by guessing.

        A job in started_jobs (or in new_jobs, if the process died between the job's commit and the
        move of its file) whose done-record is in the destination is completed; the others run.
        """
        client.prepare_storage(schema, tables)
        reset = {t for t in tables if needs_preparation(schema.tables[t])}
        for job in package.jobs("completed_jobs"):
            if job.table_name in reset:
                package.retry_job(job)
        client.prepare_load(schema, tables, package.load_id)
        loaded = client.loaded_jobs(package.load_id)
        for job in package.jobs("started_jobs"):
            if job.job_id in loaded:
                package.complete_job(job)
            else:
                package.retry_job(job)
        for job in package.jobs("new_jobs"):
            if job.job_id in loaded:
                logger.info("package %s: %s was loaded before the last run stopped", package.load_id, job.job_id)
                package.complete_job(job)

    def _run_jobs(self, client: JobClient, package: LoadPackage, schema: Schema) -> None:
        jobs = package.jobs("new_jobs")
        workers = self.workers_for(jobs)
        if workers == 1:
            for job in jobs:
                if self.stop.is_set():
                    return
                self._run_job(client, package, schema, job)
            return
        local = threading.local()
        clients: list[JobClient] = []
        lock = threading.Lock()
        spare = [client]  # the package's own connection serves the first worker

        def run(job: JobFile) -> None:
            if self.stop.is_set():
                return
            worker_client = getattr(local, "client", None)
            if worker_client is None:
                with lock:
                    worker_client = spare.pop() if spare else None
                if worker_client is None:
                    worker_client = self.destination.client(self.config)
                    with lock:
                        clients.append(worker_client)
                    self._with_retries(worker_client, worker_client.open, "connect")
                local.client = worker_client
            self._run_job(worker_client, package, schema, job)

        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for future in [pool.submit(run, job) for job in jobs]:
                    future.result()
        finally:
            for c in clients:
                c.close()

    def workers_for(self, jobs: list[JobFile]) -> int:
        """Connections to load ``jobs`` with: one more per ``BYTES_PER_EXTRA_WORKER`` of files, up to
        ``workers``. A connection costs milliseconds to open; small files load faster one after
        the other on the package's own connection than spread over new ones."""
        size = sum(map(_file_size, jobs))
        return max(1, min(self.workers, len(jobs), 1 + size // BYTES_PER_EXTRA_WORKER))

    def _run_job(self, client: JobClient, package: LoadPackage, schema: Schema, job: JobFile) -> bool:
        """Run one job with retries; True once it completed, False when it failed terminally (its
        file in failed_jobs with the error). Raises when retries ran out or a signal stopped it (its
        file back in new_jobs)."""
        started = package.start_job(job)
        attempts = 0

        def attempt() -> None:
            nonlocal attempts
            attempts += 1
            # after a lost connection the commit may have gone through: the done-record decides
            if attempts > 1 and started.job_id in client.loaded_jobs(package.load_id):
                return
            # a copy before each attempt: the stage holds this file whole before the job reads it
            staged_url = self.stage.put(package.load_id, started) if self.stage is not None else None
            client.run_job(client.create_load_job(started, schema, staged_url=staged_url), package.load_id)

        try:
            self._with_retries(client, attempt, f"job {started.path.name}")
        except DestinationTerminalError as exc:
            logger.error("load job %s failed terminally: %s", started.path, exc)
            package.fail_job(started, f"{exc}\n\n{traceback.format_exc()}")
            return False
        except LoadRetriesExhausted:
            package.retry_job(started)
            raise
        except RunStopped:  # rolled back (or never begun): it runs again on resume
            package.return_job(started)
            raise
        package.complete_job(started)
        if self.progress is not None:
            self.progress.job_done()
        return True

    def feed(self) -> LoadFeed:
        """A follower for normalize: loads a package's append files while it is still being written."""
        from loadbay.load_feed import LoadFeed

        return LoadFeed(self)

    def remove_abandoned_rows(self, package: LoadPackage) -> None:
        """Delete every row that loaded while ``package`` was normalized, and its done-records (one
        transaction): the package was abandoned before it was committed."""
        meta = package.read_meta()
        tables, prefix = list(meta.get(TABLES_KEY, [])), meta.get(PREFIX_KEY)
        if not tables or not prefix:
            return
        with self.destination.client(self.config) as client:  # rare: a connection of its own
            client.delete_rows_by_id_prefix(tables, prefix, package.load_id)
        self.remove_staged_files(package.load_id, force=True)
        logger.warning("removed the rows that package %s loaded while it was normalized, before it was "
                       "abandoned, from %s", package.load_id, tables)

    def _with_retries(self, client: JobClient, action: Callable[[], T], what: str) -> T:
        return with_retries(self.retry, action, what, client.reconnect, self.stop)

    def describe(self, package: LoadPackage, state: str) -> LoadPackageInfo:
        """What is on disk for ``package`` (its jobs by state, rows, errors), without loading it."""
        rows = package.read_meta().get("rows", {})
        jobs = []
        for job_state, files in package.all_jobs().items():
            for job in files:
                jobs.append(JobInfo(table_name=job.table_name, file_format=job.file_format,
                                    rows=rows.get(job.job_id), state=job_state.removesuffix("_jobs"),
                                    file_path=str(job.path), error=package.job_error(job)))
        return LoadPackageInfo(load_id=package.load_id, state=state, jobs=jobs)


def _file_size(job: JobFile) -> int:
    """Bytes of ``job``'s file; 0 once it has moved on (a job the feed's thread started)."""
    try:
        return job.path.stat().st_size
    except FileNotFoundError:
        return 0
