"""Destinations by name: built-ins, ``package.module:Factory`` paths and entry points.

Importing this package imports each built-in factory with its capabilities and configuration only:
no database driver, no sqlglot, no Arrow. A destination imports its SQL and job clients when it
first makes a client (``SqlDestination.client_classes``) and its driver when it first connects.
"""

from __future__ import annotations

import importlib
from typing import Any

from loadbay.common.destination import Destination
from loadbay.common.exceptions import UnknownDestinationError

ENTRY_POINT_GROUP = "loadbay.destinations"
BUILTINS: dict[str, str] = {
    "duckdb": "loadbay.destinations.duckdb:duckdb",
    "mysql": "loadbay.destinations.mysql:mysql",
    "noop": "loadbay.destinations.noop:noop",
    "postgres": "loadbay.destinations.postgres:postgres",
    "spark": "loadbay.destinations.spark:spark",
    "sqlalchemy": "loadbay.destinations.sqlalchemy:sqlalchemy",
}


def _load(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def registered() -> dict[str, Any]:
    """Third-party destinations from the ``loadbay.destinations`` entry-point group (importlib.metadata is
    imported here, when a name is not a built-in: ~13 ms that a run on a built-in need not pay)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def known_names() -> list[str]:
    return sorted({*BUILTINS, *registered()})


def resolve_destination(reference: str | Destination | type[Destination], **config: Any) -> Destination:
    """A configured destination from a name, a dotted path, a factory class or an instance."""
    if isinstance(reference, Destination):
        if config:
            raise TypeError("settings cannot be applied to a destination instance; call its class instead")
        return reference
    if isinstance(reference, type) and issubclass(reference, Destination):
        return reference(**config)
    if not isinstance(reference, str):
        raise TypeError(f"destination must be a name, a 'module:Factory' path or a Destination, not {reference!r}")
    factory: Any
    if reference in BUILTINS:
        factory = _load(BUILTINS[reference])
    elif reference in (eps := registered()):
        factory = eps[reference].load()
    elif ":" in reference or "." in reference:
        path = reference if ":" in reference else "{}:{}".format(*reference.rsplit(".", 1))
        try:
            factory = _load(path)
        except (ImportError, AttributeError, ValueError, TypeError) as exc:
            raise UnknownDestinationError(reference, known_names(), f"cannot import: {exc}") from exc
    else:
        raise UnknownDestinationError(reference, known_names())
    if not (isinstance(factory, type) and issubclass(factory, Destination)):
        raise UnknownDestinationError(reference, known_names(), f"{factory!r} is not a Destination class")
    return factory(**config)


from loadbay.destinations.duckdb import duckdb  # noqa: E402 - factories users import by name
from loadbay.destinations.mysql import mysql  # noqa: E402
from loadbay.destinations.noop import noop  # noqa: E402
from loadbay.destinations.postgres import postgres  # noqa: E402
from loadbay.destinations.spark import spark  # noqa: E402
from loadbay.destinations.sqlalchemy import sqlalchemy  # noqa: E402

__all__ = ["BUILTINS", "ENTRY_POINT_GROUP", "duckdb", "known_names", "mysql", "noop", "postgres", "resolve_destination",
           "spark", "sqlalchemy"]
