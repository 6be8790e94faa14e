"""Load: runs a package's jobs, retries what is transient, stops on what is terminal.

Order for one package: migrate tables → reset staging and truncated tables →
every job (each file in one transaction; ``new → started → completed | failed``) → merge/replace
and the ``_lb_loads`` marker in one transaction → archive or remove the package. A crash at any
point resumes from the files on disk; a package with a failed job stays on disk, unapplied.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from common.capabilities import DestinationCapabilities
from common.destination import Destination, DestinationConfig, JobClient, needs_preparation
from common.exceptions import DestinationTerminalError, DestinationTransientError, LoadbayError
from common.schema.types import Schema
from common.storage.package import JobFile, LoadPackage, PackageStorage
from loadbay.info import JobInfo, LoadPackageInfo

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    backoff_seconds: float = 1.0

    def delay(self, attempt: int) -> float:
        return self.backoff_seconds * (2 ** attempt)


class LoadRetriesExhausted(LoadbayError):
    """A transient error outlasted every retry; the package stays on disk and the next run resumes it."""


class Loader:
    def __init__(self, destination: Destination, config: DestinationConfig, storage: PackageStorage,
                 *, capabilities: DestinationCapabilities, retry: RetryPolicy, workers: int | None = None, archive_completed: bool = False,
                 state: dict[str, Any] | None = None) -> None:
        self.destination = destination
        self.config = config
        self.storage = storage
        self.retry = retry
        self.workers = max(1, workers or capabilities.max_parallel_load_jobs)
        self.archive_completed = archive_completed
        self.state = state

    def load(self, package: LoadPackage) -> LoadPackageInfo:
        schema = package.schema()
        meta = package.read_meta()
        with self.destination.client(self.config) as client:
            completed = self._with_retries(client, lambda: client.is_load_completed(package.load_id),
                                           f"check package {package.load_id}")
            if completed:  # crashed after commit, before cleanup
                info = self.describe(package, "loaded")
                self.storage.complete(package, self.archive_completed)
                return info
            tables = self._tables(package, schema, meta)
            self._with_retries(client, lambda: self._prepare(client, package, schema, tables), "prepare")
            for job in package.jobs("started_jobs"):  # a crashed run left it mid-flight: run it again
                package.retry_job(job)
            if package.jobs("failed_jobs"):
                return self.describe(package, "failed")
            self._run_jobs(client, package, schema)
            if package.jobs("failed_jobs"):
                return self.describe(package, "failed")
            self._with_retries(client, lambda: client.complete_load(package.load_id, schema, tables, self.state),
                               f"complete package {package.load_id}")
        info = self.describe(package, "loaded")
        self.storage.complete(package, self.archive_completed)
        return info

    def _tables(self, package: LoadPackage, schema: Schema, meta: dict[str, Any]) -> list[str]:
        """Tables with files, plus every table of each root in the package (replace clears them all)."""
        names: list[str] = []
        roots = list(meta.get("root_tables", []))
        for job in package.jobs("new_jobs") + package.jobs("started_jobs") + package.jobs("completed_jobs"):
            root = schema.root_of(job.table_name).name
            if root not in roots:
                roots.append(root)
        for root in roots:
            for table in (schema.tables[root], *schema.children_of(root)):
                if table.name not in names:
                    names.append(table.name)
        return names

    def _prepare(self, client: JobClient, package: LoadPackage, schema: Schema, tables: list[str]) -> None:
        """Migrate, then reset staging and truncated tables, reloading their files on a resume.

        Staging tables are shared by name (another pipeline on the same dataset may have replaced
        them since this package last ran), so their contents are rebuilt from the files on disk
        on every attempt rather than trusted.
        """
        client.initialize_storage()
        client.update_stored_schema(schema, tables)
        reset = {t for t in tables if needs_preparation(schema.tables[t])}
        for job in package.jobs("completed_jobs"):
            if job.table_name in reset:
                package.retry_job(job)
        client.prepare_load(schema, tables)

    def _run_jobs(self, client: JobClient, package: LoadPackage, schema: Schema) -> None:
        jobs = package.jobs("new_jobs")
        if self.workers == 1 or len(jobs) <= 1:
            for job in jobs:
                self._run_job(client, package, schema, job)
            return
        local = threading.local()
        clients: list[JobClient] = []
        lock = threading.Lock()

        def run(job: JobFile) -> None:
            worker_client = getattr(local, "client", None)
            if worker_client is None:
                worker_client = local.client = self.destination.client(self.config)
                worker_client.open()
                with lock:
                    clients.append(worker_client)
            self._run_job(worker_client, package, schema, job)

        try:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                for future in [pool.submit(run, job) for job in jobs]:
                    future.result()
        finally:
            for c in clients:
                c.close()

    def _run_job(self, client: JobClient, package: LoadPackage, schema: Schema, job: JobFile) -> None:
        started = package.start_job(job)
        try:
            self._with_retries(client, lambda: client.run_job(client.create_load_job(started, schema)),
                               f"job {started.path.name}")
        except DestinationTerminalError as exc:
            logger.error("load job %s failed terminally: %s", started.path, exc)
            package.fail_job(started, f"{exc}\n\n{traceback.format_exc()}")
            return
        except LoadRetriesExhausted:
            package.retry_job(started)
            raise
        package.complete_job(started)

    def _with_retries(self, client: JobClient, action: Callable[[], T], what: str) -> T:
        attempt = 0
        while True:
            try:
                return action()
            except DestinationTransientError as exc:
                if attempt >= self.retry.max_retries:
                    raise LoadRetriesExhausted(
                        f"{what}: still failing after {attempt} retries: {exc}. The package stays on disk; "
                        "run the pipeline again to resume it.") from exc
                delay = self.retry.delay(attempt)
                logger.warning("%s: transient error, retry %d/%d in %.1fs: %s", what, attempt + 1,
                               self.retry.max_retries, delay, exc)
                time.sleep(delay)
                attempt += 1
                try:
                    client.reconnect()
                except DestinationTransientError as reconnect_exc:
                    logger.warning("%s: reconnect failed: %s", what, reconnect_exc)

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
