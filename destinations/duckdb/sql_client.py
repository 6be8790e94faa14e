"""DuckDB SQL client: a database file (one writing process, ``file_lock``), the dataset as a schema
of that file's catalog, exceptions by class (``loadbay.destinations.sqlstate``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlglot import exp

from loadbay.common.exceptions import DestinationError
from loadbay.destinations import statements as sql
from loadbay.destinations.duckdb import file_lock
from loadbay.destinations.sql_client import SqlClient
from loadbay.destinations.sqlstate import classify_duckdb
from loadbay.destinations.statements import Statement


class DuckDbSqlClient(SqlClient):
    dbapi_paramstyle = "qmark"
    _catalog: str | None = None

    def connect(self) -> Any:
        import duckdb

        creds = self.config.credentials
        if creds.read_only:
            return duckdb.connect(str(creds.database), read_only=True)
        file_lock.acquire(str(creds.database))
        try:
            return duckdb.connect(str(creds.database))
        except BaseException:
            file_lock.release(str(creds.database))
            raise

    def close(self) -> None:
        opened = self._conn is not None
        try:
            super().close()
        finally:
            if opened and not self.config.credentials.read_only:
                file_lock.release(str(self.config.credentials.database))

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """The connection itself: a DuckDB cursor is a second connection with its own transaction."""
        yield self.native_connection

    def after_connect(self) -> None:
        rows = self.execute_sql(exp.select(exp.Anonymous(this="current_database", expressions=[]))) or []
        self._catalog = str(rows[0][0])
        super().after_connect()

    @property
    def catalog(self) -> str:
        """The attached database's name (the file name without extension)."""
        if self._catalog is None:
            self.open()
        return str(self._catalog)

    def qualified(self, table_name: str, staging: bool = False) -> exp.Table:
        """``catalog.dataset.table``: a dataset named like the database file is otherwise ambiguous."""
        table = super().qualified(table_name, staging)
        table.set("catalog", self.identifier(self.catalog))
        return table

    def use_dataset_sql(self, dataset: str | None) -> Statement | None:
        """``SET search_path = 'catalog.dataset,main'``, the dataset qualified by this file's catalog."""
        if dataset is None:
            return None
        path = self.render(exp.Table(this=self.identifier(dataset), db=self.identifier(self.catalog)))
        return sql.set_variable("search_path", f"{path},main")

    def has_dataset(self, dataset: str | None = None) -> bool:
        return bool(self.execute_sql(sql.dataset_exists(in_current_catalog=True), dataset or self.dataset_name))

    @staticmethod
    def classify(exc: BaseException) -> type[DestinationError] | None:
        return classify_duckdb(exc)
