"""Extract: items of any accepted shape → named resources yielding bounded batches of dicts.

Accepted: a dict, an iterable or generator of dicts, a pyarrow Table or RecordBatch, a path to a
``.json`` (array) or ``.jsonl`` file, a ``Resource``, or a list of resources. Batches are small
and bounded, so a generator of any length streams through with flat memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from common.exceptions import LoadbayError

DEFAULT_BATCH_SIZE = 5000


@dataclass
class Resource:
    """Data plus the table hints it loads with: what ``loadbay.resource(...)`` returns."""

    data: Any
    name: str
    write_disposition: str | dict[str, str] | None = None
    primary_key: str | list[str] | None = None
    merge_key: str | list[str] | None = None
    columns: dict[str, dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def batches(self, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[list[Any]]:
        return iter_batches(self.data, batch_size)


def resource(data: Any, name: str | None = None, *, write_disposition: str | dict[str, str] | None = None,
             primary_key: str | list[str] | None = None, merge_key: str | list[str] | None = None,
             columns: dict[str, dict[str, Any]] | None = None) -> Resource:
    """Name data and give it table hints; several resources load in one package."""
    resolved = name or _name_of(data)
    if not resolved:
        raise LoadbayError("resource needs a name: pass name=... (it becomes the table name)")
    return Resource(data, resolved, write_disposition, primary_key, merge_key, columns)


def _name_of(data: Any) -> str | None:
    if isinstance(data, Path):
        return data.name.split(".")[0]
    for attr in ("__name__", "gi_code"):
        value = getattr(data, attr, None)
        if isinstance(value, str):
            return value
        if value is not None and hasattr(value, "co_name"):
            return str(value.co_name)
    return None


def as_resources(data: Any, table_name: str | None) -> list[Resource]:
    """Whatever ``Pipeline.run`` got, as a list of resources."""
    if isinstance(data, Resource):
        return [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, Resource) for d in data):
        return list(data)
    name = table_name or _name_of(data)
    if not name:
        raise LoadbayError("table_name is required for data that has no name (a list, an iterator or a "
                           "dict); pass table_name=... or wrap it in loadbay.resource(data, name=...)")
    return [Resource(data, name)]


def iter_batches(data: Any, batch_size: int) -> Iterator[Any]:
    if isinstance(data, dict):
        yield [data]
        return
    if isinstance(data, (str, bytes)):
        raise LoadbayError(f"cannot load a bare {type(data).__name__}; pass rows (dicts) or a pathlib.Path "
                           "to a .json or .jsonl file")
    if isinstance(data, Path):
        yield from _file_batches(data, batch_size)
        return
    arrow = _arrow_batches(data, batch_size)
    if arrow is not None:
        yield from arrow
        return
    if isinstance(data, (list, tuple)):
        for start in range(0, len(data), batch_size):
            yield list(data[start:start + batch_size])
        return
    if not isinstance(data, Iterable):
        raise LoadbayError(f"cannot load {type(data).__name__}: expected dicts, an iterable of dicts, "
                           "a pyarrow Table or a path to a json/jsonl file")
    iterator = iter(data)
    while batch := list(itertools.islice(iterator, batch_size)):
        yield batch


def _arrow_batches(data: Any, batch_size: int) -> Iterator[list[dict[str, Any]]] | None:
    module = type(data).__module__
    if not module.startswith("pyarrow"):
        return None
    if hasattr(data, "to_batches"):
        return iter(data.to_batches(max_chunksize=batch_size))
    if hasattr(data, "to_pylist"):
        return iter([data])
    return None


def _file_batches(path: Path, batch_size: int) -> Iterator[list[Any]]:
    if not path.exists():
        raise LoadbayError(f"file {path} does not exist")
    if path.suffix == ".jsonl":
        with open(path, "rb") as f:
            while lines := list(itertools.islice(f, batch_size)):
                yield [orjson.loads(line) for line in lines if line.strip()]
        return
    if path.suffix == ".json":
        items = orjson.loads(path.read_bytes())
        yield from iter_batches(items if isinstance(items, list) else [items], batch_size)
        return
    raise LoadbayError(f"file {path}: only .json and .jsonl files can be loaded directly")
