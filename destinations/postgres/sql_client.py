"""PostgreSQL SQL client on psycopg2: the dataset is a schema, errors by SQLSTATE, COPY FROM STDIN
(``copy_from``, from ``loadbay.destinations.copy_jobs``).

UTC sessions, the search path, the advisory schema-change lock and table locks for merges are the
``postgres`` entries of the tables in ``loadbay.destinations.statements``; the SQLSTATE tables are in
``loadbay.destinations.sqlstate``.
"""

from __future__ import annotations

from typing import Any

from loadbay.common.exceptions import DestinationError
from loadbay.destinations.copy_jobs import Psycopg2CopyClient
from loadbay.destinations.sqlstate import classify_psycopg2


class PostgresSqlClient(Psycopg2CopyClient):
    dbapi_paramstyle = "format"

    def connect(self) -> Any:
        import psycopg2

        conn = psycopg2.connect(**self.config.credentials.connect_args())
        conn.autocommit = True  # transactions are explicit BEGIN/COMMIT
        return conn

    def server_version(self) -> tuple[int, ...]:
        """From ``server_version_num``: 150004 is (15, 4)."""
        number = int(self.native_connection.server_version)
        return number // 10000, number % 10000

    @staticmethod
    def classify(exc: BaseException) -> type[DestinationError] | None:
        return classify_psycopg2(exc)
