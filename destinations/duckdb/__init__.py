"""DuckDB, the embedded default destination."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from loadbay.common.destination import DestinationConfig
from loadbay.destinations.duckdb.capabilities import capabilities as duckdb_capabilities
from loadbay.destinations.duckdb.configuration import MEMORY, DuckDbConfig
from loadbay.destinations.sql_destination import ClientClasses, SqlDestination


class duckdb(SqlDestination):  # noqa: N801 - lower case like the name users type
    """``duckdb(credentials="/data/lake.duckdb")``; the file defaults to ``<pipeline_name>.duckdb``."""

    destination_type = "duckdb"
    spec = DuckDbConfig
    capabilities = duckdb_capabilities

    def finalize_config(self, config: DestinationConfig) -> DestinationConfig:
        creds = config.credentials = dataclasses.replace(config.credentials)  # never the caller's object
        if not creds.database:
            creds.database = f"{config.pipeline_name}.duckdb"
        if creds.database != MEMORY:
            creds.database = str(Path(creds.database).expanduser().resolve())
        return config

    def client_classes(self, config: DestinationConfig) -> ClientClasses:
        from loadbay.destinations.duckdb.job_client import DuckDbJobClient
        from loadbay.destinations.duckdb.sql_client import DuckDbSqlClient

        return DuckDbSqlClient, DuckDbJobClient


__all__ = ["duckdb"]
