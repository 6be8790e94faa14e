"""PostgreSQL through psycopg2: csv loaded with COPY FROM STDIN."""

from __future__ import annotations

from loadbay.common.destination import Destination, DestinationConfig
from loadbay.destinations.postgres.capabilities import capabilities as postgres_capabilities
from loadbay.destinations.postgres.configuration import PostgresConfig
from loadbay.destinations.postgres.job_client import PostgresJobClient
from loadbay.destinations.postgres.sql_client import PostgresSqlClient


class postgres(Destination):  # noqa: N801
    """``postgres(credentials="postgresql://loader:***@localhost:5432/dwh")``."""

    destination_type = "postgres"
    spec = PostgresConfig
    capabilities = postgres_capabilities

    def sql_client(self, config: DestinationConfig) -> PostgresSqlClient:
        return PostgresSqlClient(config, self.capabilities_for(config))

    def client(self, config: DestinationConfig) -> PostgresJobClient:
        return PostgresJobClient(config, self.capabilities_for(config), self.sql_client(config))


__all__ = ["postgres"]
