"""Any database SQLAlchemy speaks to; tested on SQLite files, MariaDB and PostgreSQL."""

from __future__ import annotations

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.destination import DestinationConfig
from loadbay.destinations.sqlalchemy.capabilities import capabilities as base_capabilities
from loadbay.destinations.sqlalchemy.capabilities import capabilities_for_dialect
from loadbay.destinations.sqlalchemy.configuration import SqlalchemyConfig
from loadbay.destinations.sql_destination import ClientClasses, SqlDestination


class sqlalchemy(SqlDestination):  # noqa: N801
    """``sqlalchemy(credentials="mysql+pymysql://root@127.0.0.1:3306/test")``; capabilities follow the dialect."""

    destination_type = "sqlalchemy"
    spec = SqlalchemyConfig
    capabilities = base_capabilities

    def capabilities_for(self, config: DestinationConfig) -> DestinationCapabilities:
        from sqlalchemy.engine import make_url

        dialect = make_url(config.credentials.url()).get_dialect()()  # type: ignore[attr-defined]
        return capabilities_for_dialect(dialect)

    def client_classes(self, config: DestinationConfig) -> ClientClasses:
        """The SQL and job clients of the URL's database family (``sql_client.FAMILIES``, ``job_client.JOB_CLIENTS``)."""
        from loadbay.destinations.sqlalchemy.job_client import job_client_class
        from loadbay.destinations.sqlalchemy.sql_client import sql_client_class

        dialect = config.credentials.dialect_name()  # type: ignore[attr-defined]
        return sql_client_class(dialect), job_client_class(dialect)


__all__ = ["sqlalchemy"]
