"""PostgreSQL through psycopg2: csv loaded with COPY FROM STDIN."""

from __future__ import annotations

from loadbay.common.destination import DestinationConfig
from loadbay.destinations.postgres.capabilities import capabilities as postgres_capabilities
from loadbay.destinations.postgres.configuration import PostgresConfig
from loadbay.destinations.sql_destination import ClientClasses, SqlDestination


class postgres(SqlDestination):  # noqa: N801
    """``postgres(credentials="postgresql://loader:***@localhost:5432/dwh")``."""

    destination_type = "postgres"
    spec = PostgresConfig
    capabilities = postgres_capabilities

    def client_classes(self, config: DestinationConfig) -> ClientClasses:
        from loadbay.destinations.postgres.job_client import PostgresJobClient
        from loadbay.destinations.postgres.sql_client import PostgresSqlClient

        return PostgresSqlClient, PostgresJobClient


__all__ = ["postgres"]
