"""Normalize: resources → one load package on disk (schema + load files), or nothing at all.

The package is written under ``normalizing/`` and moved to ``packages/`` in one rename when it
is complete, so a failure here (bad data, a frozen contract) leaves no half package behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from common.capabilities import DestinationCapabilities
from common.exceptions import SchemaError
from common.normalizer import RelationalNormalizer
from common.schema.contracts import SchemaContract
from common.schema.types import Schema
from common.storage.package import LoadPackage, PackageStorage
from common.storage.package_writer import PackageWriter
from loadbay.extract import Resource

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


def normalize(resources: Sequence[Resource], schema: Schema, capabilities: DestinationCapabilities,
              storage: PackageStorage, *, file_format: str, contract: SchemaContract,
              batch_size: int, file_max_items: int) -> tuple[LoadPackage, Schema]:
    """Write a committed package for ``resources``; returns it and the evolved schema."""
    evolved = Schema.from_dict(schema.to_dict())  # the pipeline's schema changes only on success
    load_id = storage.new_load_id()
    package = storage.create(load_id)
    try:
        normalizer = RelationalNormalizer(evolved, capabilities, load_id, contract,
                                          known_tables=set(schema.tables))
        writer = PackageWriter(package, evolved, file_format, capabilities, file_max_items)
        roots: list[str] = []
        for res in resources:
            disposition, strategy = parse_disposition(res.write_disposition)
            _check_strategy(res.name, disposition, strategy, capabilities)
            table = normalizer.apply_hints(res.name, write_disposition=disposition, strategy=strategy,
                                           primary_key=res.primary_key, merge_key=res.merge_key,
                                           columns=res.columns)
            if table is None:
                continue
            roots.append(table.name)
            for batch in res.batches(batch_size):
                for table_name, rows in normalizer.normalize(res.name, batch).items():
                    if rows:
                        writer.write(table_name, rows)
        writer.close()
        _check_keys(normalizer, writer, roots)
        package.save_schema(evolved)
        package.write_meta(root_tables=roots, file_format=file_format, rows=writer.rows_per_file,
                           schema_name=evolved.name)
        return storage.commit(package), evolved
    except BaseException:
        storage.discard(package)
        raise


def _check_strategy(name: str, disposition: str | None, strategy: str | None,
                    capabilities: DestinationCapabilities) -> None:
    if strategy is None:
        return
    allowed: Sequence[str] = (capabilities.merge_strategies if disposition == "merge"
                              else capabilities.replace_strategies if disposition == "replace" else ())
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
