"""DuckDB SQL client: a database file, the dataset as a schema, UTC, exceptions by class."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlglot import exp

from loadbay.common.exceptions import (DestinationError, DestinationLockedError, DestinationTerminalError,
                               DestinationTransientError, DestinationUndefinedRelation)
from loadbay.destinations.duckdb import file_lock
from loadbay.destinations.sql_client import SqlClient

# DuckDB exception class name → loadbay error; looked up along the exception's MRO.
ERROR_CLASSES: dict[str, type[DestinationError]] = {
    "ParserException": DestinationTerminalError,
    "SyntaxException": DestinationTerminalError,
    "BinderException": DestinationTerminalError,
    "ConstraintException": DestinationTerminalError,
    "ConversionException": DestinationTerminalError,
    "TypeMismatchException": DestinationTerminalError,
    "OutOfRangeException": DestinationTerminalError,
    "InvalidInputException": DestinationTerminalError,
    "InvalidTypeException": DestinationTerminalError,
    "NotImplementedException": DestinationTerminalError,
    "PermissionException": DestinationTerminalError,
    "DependencyException": DestinationTerminalError,
    "SequenceException": DestinationTerminalError,
    "SerializationException": DestinationTerminalError,
    "InternalException": DestinationTerminalError,
    "FatalException": DestinationTerminalError,
    "IOException": DestinationTransientError,
    "ConnectionException": DestinationTransientError,
    "HTTPException": DestinationTransientError,
    "TransactionException": DestinationTransientError,
    "InterruptException": DestinationTransientError,
    "OutOfMemoryException": DestinationTransientError,
    "CatalogException": DestinationTerminalError,  # refined by message below
    "Error": DestinationTerminalError,
}
UNDEFINED_RELATION = re.compile(r"\b(Table|Schema|View|Catalog) with name .* does not exist")
"""Message text that turns a CatalogException into an undefined relation (a missing function or
type is terminal). Tested against DuckDB's real messages."""
FILE_LOCKED = re.compile(r"Could not set lock on file")
"""An IOException saying another process has the database file open for writing."""


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
        self.execute_sql("SET TimeZone = 'UTC'")
        self._catalog = str(self.execute_sql("SELECT current_database()")[0][0])  # type: ignore[index]
        self.use_dataset()

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

    def use_dataset(self) -> None:
        """Unqualified names resolve to the dataset once it exists."""
        if self.has_dataset():
            path = self.render(exp.Table(this=self.identifier(self.dataset_name), db=self.identifier(self.catalog)))
            self.execute_sql(exp.Set(expressions=[exp.SetItem(this=exp.EQ(
                this=exp.var("search_path"), expression=exp.Literal.string(f"{path},main")))]))

    def create_dataset(self, dataset: str | None = None) -> None:
        super().create_dataset(dataset)
        if dataset in (None, self.dataset_name):
            self.use_dataset()

    def has_dataset(self, dataset: str | None = None) -> bool:
        rows = self.execute_sql(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = ? AND catalog_name = current_database()",
            dataset or self.dataset_name)
        return bool(rows)

    @staticmethod
    def classify(exc: BaseException) -> type[DestinationError] | None:
        import duckdb

        if not isinstance(exc, duckdb.Error):
            return None
        for cls in type(exc).__mro__:
            found = ERROR_CLASSES.get(cls.__name__)
            if found is None:
                continue
            if cls.__name__ == "CatalogException" and UNDEFINED_RELATION.search(str(exc)):
                return DestinationUndefinedRelation
            if cls.__name__ == "IOException" and FILE_LOCKED.search(str(exc)):
                return DestinationLockedError
            return found
        return DestinationTerminalError
