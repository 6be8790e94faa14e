"""MySQL and MariaDB through pymysql: csv loaded with LOAD DATA LOCAL INFILE."""

from __future__ import annotations

from loadbay.common.destination import DestinationConfig
from loadbay.destinations.mysql.capabilities import capabilities as mysql_capabilities
from loadbay.destinations.mysql.configuration import MysqlConfig
from loadbay.destinations.sql_destination import ClientClasses, SqlDestination


class mysql(SqlDestination):  # noqa: N801
    """``mysql(credentials="mysql://loader:***@localhost:3306/dwh")``; ``dataset_prefix=True`` keeps every
    dataset in that one database."""

    destination_type = "mysql"
    spec = MysqlConfig
    capabilities = mysql_capabilities

    def client_classes(self, config: DestinationConfig) -> ClientClasses:
        """Datasets as databases, or (``dataset_prefix``) as table-name prefixes in one database."""
        from loadbay.destinations.mysql.job_client import MysqlJobClient
        from loadbay.destinations.mysql.sql_client import MysqlSqlClient, PrefixedMysqlSqlClient

        return PrefixedMysqlSqlClient if config.dataset_prefix else MysqlSqlClient, MysqlJobClient  # type: ignore[attr-defined]


__all__ = ["mysql"]
