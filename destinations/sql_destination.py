"""SqlDestination: the factory of every SQL destination, light to import.

A destination's ``__init__.py`` imports only this, its capabilities and its configuration; its SQL
client, job client and load jobs (sqlglot, Arrow, the driver's helpers) are imported by its
``client_classes`` the first time a client is made, so ``import loadbay`` stays fast and imports no
driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Tuple, Type

from loadbay.common.destination import Destination, DestinationConfig

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient
    from loadbay.destinations.sql_client import SqlClient

ClientClasses = Tuple[Type["SqlClient"], Type["SqlJobClient"]]  # noqa: UP006 - names not imported at run time
"""What ``client_classes`` returns: the SQL client class and the job client class."""


class SqlDestination(Destination):
    """A destination with a SQL client: ``sql_client()`` and ``client()`` are made from the two classes
    its one hook, ``client_classes``, imports and returns."""

    def client_classes(self, config: DestinationConfig) -> ClientClasses:
        """Hook: ``(SqlClient subclass, SqlJobClient subclass)`` for ``config``, imported inside the
        method (not at the top of ``__init__.py``) so that importing the factory stays light."""
        raise NotImplementedError(f"{type(self).__name__} names no client classes")

    def sql_client(self, config: DestinationConfig) -> SqlClient:
        sql_client_class, _ = self.client_classes(config)
        return sql_client_class(config, self.capabilities_for(config))

    def client(self, config: DestinationConfig) -> SqlJobClient:
        sql_client_class, job_client_class = self.client_classes(config)
        capabilities = self.capabilities_for(config)
        return job_client_class(config, capabilities, sql_client_class(config, capabilities))
