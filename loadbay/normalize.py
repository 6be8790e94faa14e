"""Normalize: resources → one load package on disk (schema + load files), or nothing at all.

The package is written under ``normalizing/`` and moved to ``packages/`` in one rename when it
is complete, so a failure here (bad data, a frozen contract) leaves no half package behind.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.destination import APPEND_STRATEGIES, ATOMIC_APPEND, needs_preparation
from loadbay.common.exceptions import DestinationError, SchemaError
from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.normalizer_arrow import is_arrow_batch, normalize_arrow
from loadbay.common.schema.contracts import SchemaContract
from loadbay.common.schema.types import Schema, Table
from loadbay.common.storage.package import JobFile, LoadPackage, PackageStorage
from loadbay.common.storage.package_writer import PackageWriter
from loadbay.early_load import EarlyLoader, remove_early_rows, with_tables
from loadbay.extract import Resource
from loadbay.faults import crash_point
from loadbay.interrupts import RunStopped

logger = logging.getLogger(__name__)
EarlyLoaderFactory = Callable[[LoadPackage, str], EarlyLoader]
GC_THRESHOLD = 100_000

WRITE_DISPOSITIONS = ("append", "replace", "merge")


def parse_disposition(value: str | dict[str, str] | None) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        disposition, strategy = value, None
    else:
        disposition, strategy = value.get("disposition"), value.get("strategy")
    if disposition not in WRITE_DISPOSITIONS:
        raise ValueError(f"write_disposition must be one of {WRITE_DISPOSITIONS}, not {disposition!r}")
    return disposition, strategy


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Run the cyclic garbage collector less often while normalizing, and restore it afterwards.

    Normalizing allocates millions of short-lived, acyclic dicts; with the default threshold
    (700 allocations) the collector scans them hundreds of times per batch for no garbage, about
    15% of the time of a nested run. Reference counting still frees them at once.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], GC_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def normalize(resources: Sequence[Resource], schema: Schema, capabilities: DestinationCapabilities,
              storage: PackageStorage, *, file_format: str, contract: SchemaContract,
              batch_size: int, file_max_items: int | None, early_loader: EarlyLoaderFactory | None = None,
              save_schema: Callable[[Schema], None] | None = None,
              stop: threading.Event | None = None, atomic_appends: bool = False,
              columnar: bool = True) -> tuple[LoadPackage, Schema]:
    """Write a committed package for ``resources``; returns it and the evolved schema.

    With ``early_loader``, append files start loading as they rotate and the last ones load before
    this returns (see loadbay.early_load). Should the package not complete, the rows they loaded
    are removed again before the error propagates, and the tables and columns they created are
    given to ``save_schema`` (with the schema as it was), so later runs agree with the destination.
    """
    evolved = Schema.from_dict(schema.to_dict())  # the pipeline's schema changes only on success
    load_id = storage.new_load_id()
    package = storage.create(load_id)
    early: EarlyLoader | None = None
    try:
        normalizer = RelationalNormalizer(evolved, capabilities, load_id, contract,
                                          known_tables=set(schema.tables))
        on_rotate = None
        if early_loader is not None:
            early = early_loader(package, normalizer.id_prefix)
            on_rotate = _early_submitter(early, evolved)
        writer = PackageWriter(package, evolved, file_format, capabilities, file_max_items, on_rotate=on_rotate,
                               columnar=columnar)
        roots: list[str] = []
        for res in resources:
            disposition, strategy = parse_disposition(res.write_disposition)
            _check_strategy(res.name, disposition, strategy, capabilities)
            if atomic_appends and strategy is None and _disposition(normalizer, res, disposition) == "append":
                disposition, strategy = "append", ATOMIC_APPEND
            table = normalizer.apply_hints(res.name, write_disposition=disposition, strategy=strategy,
                                           primary_key=res.primary_key, merge_key=res.merge_key,
                                           columns=res.columns)
            if table is None:
                continue
            roots.append(table.name)
            for batch in res.batches(batch_size):
                if stop is not None and stop.is_set():
                    raise RunStopped(f"normalizing of package {load_id} stopped by a signal")
                if is_arrow_batch(batch):  # columnar: Arrow tables per table, no Python per row
                    for table_name, data in normalize_arrow(normalizer, res.name, batch).items():
                        if data.num_rows:
                            writer.write_arrow(table_name, data)
                else:
                    for table_name, rows in normalizer.normalize(res.name, batch).items():
                        if rows:
                            writer.write(table_name, rows)
                crash_point("normalize.batch")
        writer.close()
        _check_keys(normalizer, writer, roots)
        if early is not None:
            early.drain([(job, _lineage(evolved, job.table_name)) for job in package.jobs("new_jobs")
                         if not needs_preparation(evolved.tables[job.table_name])])
            early.finish()
        package.save_schema(evolved)
        package.write_meta(root_tables=roots, file_format=file_format, rows=writer.rows_per_file,
                           schema_name=evolved.name)
        committed = storage.commit(package)
        crash_point("normalize.committed")
        return committed, evolved
    except BaseException:
        _abandon(storage, package, early)
        if early is not None and early.definitions and save_schema is not None:
            save_schema(with_tables(schema, list(early.definitions.values())))
        raise


def _early_submitter(early: EarlyLoader, schema: Schema) -> Callable[[JobFile], None]:
    def submit(job: JobFile) -> None:
        if not needs_preparation(schema.tables[job.table_name]):
            early.submit(job, _lineage(schema, job.table_name))
    return submit


def _lineage(schema: Schema, name: str) -> list[Table]:
    """Snapshots of table ``name`` and its parents (the schema goes on evolving in this thread)."""
    out = []
    table: Table | None = schema.tables[name]
    while table is not None:
        out.append(Table.from_dict(table.to_dict()))
        table = schema.tables[table.parent] if table.parent else None
    return out


def _abandon(storage: PackageStorage, package: LoadPackage, early: EarlyLoader | None) -> None:
    """Discard a package that did not complete, with any rows it loaded early."""
    if early is not None:
        early.stop()
        if early.tables:
            try:
                remove_early_rows(early.destination, early.config, package)
            except DestinationError as exc:  # kept under normalizing/: the next run removes them
                logger.error("package %s did not complete and its early-loaded rows in %s could not be "
                             "removed now (%s); the next run of the pipeline removes them", package.load_id,
                             early.tables, exc)
                return
    storage.discard(package)


def _disposition(normalizer: RelationalNormalizer, res: Resource, asked: str | None) -> str:
    """The disposition the resource's table will load with: asked for, else the table's own."""
    if asked:
        return asked
    known = normalizer.schema.tables.get(normalizer.table_name(res.name))
    return known.write_disposition if known is not None else "append"


def _check_strategy(name: str, disposition: str | None, strategy: str | None,
                    capabilities: DestinationCapabilities) -> None:
    if strategy is None:
        return
    allowed: Sequence[str] = (capabilities.merge_strategies if disposition == "merge"
                              else capabilities.replace_strategies if disposition == "replace"
                              else APPEND_STRATEGIES)
    if strategy not in allowed:
        raise ValueError(f"resource {name!r}: {disposition} strategy {strategy!r} is not supported by this "
                         f"destination; supported: {tuple(allowed)}")


def _check_keys(normalizer: RelationalNormalizer, writer: PackageWriter, roots: list[str]) -> None:
    """A merge key that never got a value would merge nothing silently: name it instead."""
    for root in roots:
        pending = normalizer.untyped_hinted_columns().get(root, {})
        keys = [name for name, hints in pending.items() if hints.get("primary_key") or hints.get("merge_key")]
        if keys and writer.rows_per_table.get(root):
            raise SchemaError(f"table {root!r}: key column(s) {keys} never received a value; check "
                              "primary_key / merge_key against the field names in the data")
