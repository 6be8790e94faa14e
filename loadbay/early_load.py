"""Early loading: append files load while the rest of their package is still being normalized.

Normalizing is Python on one core; a COPY is the server's work (and DuckDB's, for jsonl) on
another. Loading each file as soon as the package writer rotates it overlaps the two, so a large
run costs about its normalizing time instead of normalizing plus loading. Only append tables take
part: staging and truncated tables are reset when the package loads, so their files wait.

Nothing is lost or doubled by it. Before a table's first early file loads, the package meta
records the table and the normalizer's row-id prefix (every ``_lb_id`` of the package starts with
it). If normalizing then fails, the rows loaded so far are deleted by that prefix, here or, when
the destination cannot be reached (or the process died), by the next run before it discards the
abandoned package. Any error in an early job puts its file back in ``new_jobs`` and stops early
loading: the regular loader runs the file later, with its retries and error classification.
"""

from __future__ import annotations

import logging
import queue
import threading

from loadbay.common.destination import Destination, DestinationConfig, JobClient
from loadbay.common.exceptions import LoadbayError
from loadbay.common.schema.types import Schema, Table
from loadbay.common.storage.package import JobFile, LoadPackage

logger = logging.getLogger(__name__)

TABLES_KEY = "early_loaded_tables"
PREFIX_KEY = "row_id_prefix"
DEFINITIONS_KEY = "early_table_definitions"


class EarlyLoaderFailed(LoadbayError):
    """Moving an early-loaded file between job folders failed: the package cannot say which rows it holds."""


class EarlyLoader:
    """Background threads, each with its own connection, loading files of one package being normalized.

    While normalizing goes on, one file loads at a time (the normalizing thread keeps a core); once
    it is done, ``drain`` hands over the last files and every worker loads. ``submit``, ``drain``,
    ``finish`` and ``stop`` are called from the normalizing thread; ``finish`` or ``stop`` must be
    called before the package is committed or discarded.
    """

    def __init__(self, destination: Destination, config: DestinationConfig, package: LoadPackage,
                 id_prefix: str, workers: int = 1) -> None:
        self.destination = destination
        self.config = config
        self.package = package
        self.id_prefix = id_prefix
        self.workers = max(1, workers)
        self.tables: list[str] = []  # tables that may hold rows of this package (also in its meta)
        self.definitions: dict[str, Table] = {}  # what the destination may have been given: tables and their parents
        self._migrated: dict[str, int] = {}  # table → columns its live table has been given
        self._queue: queue.SimpleQueue[tuple[JobFile, list[Table]] | None] = queue.SimpleQueue()
        self._slots = threading.Semaphore(1)  # files loading at once: one until drain()
        self._stopped = threading.Event()
        self._lock = threading.Lock()  # the package meta, DDL and the fields above
        self._initialized = False
        self._failure: BaseException | None = None
        self._submitted: set[str] = set()
        self._threads: list[threading.Thread] = []

    def submit(self, job: JobFile, tables: list[Table]) -> None:
        """Load ``job`` (a closed file in new_jobs) into ``tables[0]``: snapshots, with every column
        the file has, of its table and then of that table's parents."""
        if self._stopped.is_set() or job.path.name in self._submitted:
            return
        self._submitted.add(job.path.name)
        if not self._threads:
            self._threads = [threading.Thread(target=self._run, name=f"early-load-{self.package.load_id}-{n}",
                                              daemon=True) for n in range(self.workers)]
            for thread in self._threads:
                thread.start()
        self._queue.put((job, tables))

    def drain(self, jobs: list[tuple[JobFile, list[Table]]]) -> None:
        """Normalizing is over: load these last files too (any already handed over are skipped), on every worker."""
        for job, tables in jobs:
            self.submit(job, tables)
        for _ in range(self.workers - 1):
            self._slots.release()

    def finish(self) -> None:
        """Wait for the files handed over (all of them, unless a load failed); raises if the
        package's state on disk could not be kept true."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []
        self._stopped.set()
        if self._failure is not None:
            raise EarlyLoaderFailed(f"package {self.package.load_id}: early loading failed: "
                                    f"{self._failure}") from self._failure

    def stop(self) -> None:
        """Take no more files and wait for those loading now; files not started stay in new_jobs."""
        self._stopped.set()
        try:
            self.finish()
        except EarlyLoaderFailed:  # the caller is discarding the package already
            logger.debug("early loading had failed too", exc_info=True)

    def _run(self) -> None:
        connection: list[JobClient] = []  # this thread's client, opened on its first file
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                if self._stopped.is_set():
                    continue  # left in new_jobs for the loader
                with self._slots:
                    if not self._stopped.is_set():  # stop() or a failure while this thread waited
                        self._load(connection, *item)
        except BaseException as exc:  # noqa: BLE001 - a job folder could not be updated: fail the package
            self._failure = exc
            self._stopped.set()
        finally:
            for client in connection:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                    logger.debug("closing an early-load connection failed", exc_info=True)

    def _load(self, connection: list[JobClient], job: JobFile, tables: list[Table]) -> None:
        table = tables[0]
        started = self.package.start_job(job)
        try:
            if not connection:
                client = self.destination.client(self.config)
                client.open()
                connection.append(client)
            client = connection[0]
            with self._lock:  # one thread creates or alters a table; the others wait for it
                if len(table.columns) > self._migrated.get(table.name, 0):  # snapshots only ever grow
                    self._record(tables)  # in the meta before the table's DDL or rows
                    if not self._initialized:
                        client.initialize_storage()
                        self._initialized = True
                    client.migrate_tables([table])
                    self._migrated[table.name] = len(table.columns)
            client.run_job(client.create_load_job(started, Schema(self.package.load_id, {table.name: table})),
                           self.package.load_id)
        except Exception as exc:  # noqa: BLE001 - the regular loader retries or reports it
            self.package.return_job(started)
            self._stopped.set()
            logger.warning("early loading stopped at %s; the loader runs it and the rest after normalizing: %s",
                           started.path.name, exc)
            return
        self.package.complete_job(started)

    def _record(self, tables: list[Table]) -> None:
        """Note ``tables`` in the package meta: which may hold rows (deleted if the package is
        abandoned) and what their definitions were (kept in the pipeline's schema then)."""
        if tables[0].name not in self.tables:
            self.tables.append(tables[0].name)
        for table in tables:
            known = self.definitions.get(table.name)
            if known is None or len(table.columns) > len(known.columns):
                self.definitions[table.name] = table
        self.package.write_meta(**{TABLES_KEY: self.tables, PREFIX_KEY: self.id_prefix,
                                   DEFINITIONS_KEY: [t.to_dict() for t in self.definitions.values()]})


def early_rows(package: LoadPackage) -> tuple[list[str], str | None]:
    """Tables that may hold rows an early load put there for ``package``, and their row-id prefix."""
    meta = package.read_meta()
    return list(meta.get(TABLES_KEY, [])), meta.get(PREFIX_KEY)


def early_definitions(package: LoadPackage) -> list[Table]:
    """Definitions of the tables (and their parents) an early load may have created for ``package``."""
    return [Table.from_dict(d) for d in package.read_meta().get(DEFINITIONS_KEY, [])]


def with_tables(schema: Schema, tables: list[Table]) -> Schema:
    """``schema`` plus ``tables`` and their columns: what an abandoned package created in the
    destination stays known, so later runs agree with it (a column created as double gets a
    variant for a str instead of a COPY that fails)."""
    out = Schema.from_dict(schema.to_dict())
    for table in tables:
        known = out.tables.get(table.name)
        if known is None:
            out.tables[table.name] = Table.from_dict(table.to_dict())
            continue
        for column in table.columns.values():
            known.columns.setdefault(column.name, column)
    return out


def remove_early_rows(destination: Destination, config: DestinationConfig, package: LoadPackage) -> None:
    """Delete every row an early load put into the destination for ``package`` (one transaction)."""
    tables, prefix = early_rows(package)
    if not tables or not prefix:
        return
    with destination.client(config) as client:
        client.delete_rows_by_id_prefix(tables, prefix, package.load_id)
    logger.warning("removed the rows that package %s loaded early, before it was abandoned, from %s",
                   package.load_id, tables)
