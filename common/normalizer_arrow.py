"""Columnar normalizing of Arrow record batches (placeholder: goes through the dict path for now)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from common.normalizer import RelationalNormalizer


def is_arrow_batch(batch: Any) -> bool:
    """Whether an extracted batch is columnar (a pyarrow RecordBatch) rather than a list of items."""
    return type(batch).__module__.startswith("pyarrow") and hasattr(batch, "schema")


def normalize_arrow(norm: RelationalNormalizer, raw_table: str, batch: Any) -> dict[str, Any]:
    """Per table: a pyarrow Table of normalized rows (or, for now, a list of dict rows)."""
    return norm.normalize(raw_table, batch.to_pylist())
