"""loadbay: load rows into SQL databases through dbapi.

>>> import loadbay
>>> p = loadbay.pipeline("demo", destination="duckdb", dataset_name="raw")  # doctest: +SKIP
>>> p.run([{"id": 1}], table_name="events").raise_on_failed_jobs()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from loadbay.common.destination import Destination
from loadbay.cursor import Incremental, incremental
from loadbay.destinations import resolve_destination
from loadbay.extract import Resource, resource
from loadbay.info import JobInfo, LoadInfo, LoadPackageInfo
from loadbay.pipeline import Pipeline, pipeline
from loadbay.sources.files import Files, files

__version__ = "0.1.0"


def destination(reference: str | type[Destination], *, credentials: Any = None,
                destination_name: str | None = None, **config: Any) -> Destination:
    """A configured destination: ``loadbay.destination("postgres", destination_name="warehouse")``."""
    return resolve_destination(reference, credentials=credentials, destination_name=destination_name, **config)


__all__ = ["Destination", "Files", "Incremental", "JobInfo", "LoadInfo", "LoadPackageInfo", "Pipeline", "Resource",
           "destination", "files", "incremental", "pipeline", "resource"]
