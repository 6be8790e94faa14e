"""MySQL/MariaDB SQL client on pymysql: a dataset is a database (MySQL has no schemas inside one), or,
with ``dataset_prefix``, a name prefix of tables in one database; errors by MySQL error number.

UTC sessions, strict ``sql_mode``, ``USE`` of the dataset and the ``GET_LOCK`` schema-change lock are
the ``mysql`` entries of the tables in ``loadbay.destinations.statements``; the error numbers are
``MYSQL_CODES`` in ``loadbay.destinations.sqlstate`` (shared with the SQLAlchemy destination's MySQL
family). Bulk loads are plain statements (``LOAD DATA LOCAL INFILE``), run by ``load_data_local``: the driver
streams the file the statement names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlglot import exp

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.destination import STAGING_SUFFIX, DestinationConfig
from loadbay.common.exceptions import ConfigurationError, DestinationError, DestinationTerminalError
from loadbay.common.schema.naming import TAG_LENGTH, shorten
from loadbay.destinations import statements as sql
from loadbay.destinations.sql_client import SqlClient
from loadbay.destinations.sqlstate import classify_pymysql, mysql_code
from loadbay.destinations.statements import Statement

MARIADB = "MariaDB"
"""In the server's version text of MariaDB (``5.5.5-10.11.19-MariaDB-...``), not of MySQL."""


INDEX_IF_NOT_EXISTS = re.compile(r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+)IF\s+NOT\s+EXISTS\s+", re.IGNORECASE)
DUPLICATE_KEY_NAME = 1061
"""ER_DUP_KEYNAME: the index exists already."""
ACCESS_DENIED = {1044, 1142}
"""ER_DBACCESS_DENIED_ERROR (creating or using a database), ER_TABLEACCESS_DENIED_ERROR (its tables)."""


class LocalInfileClient(SqlClient):
    """``load_data_local`` on a pymysql connection opened with ``local_infile``: the mysql destination's client
    and the SQLAlchemy destination's MySQL family (whose engine opens pymysql connections so) share it."""

    def load_data_local(self, statement: Statement) -> bool:
        """``LOAD DATA LOCAL INFILE``: a plain statement, whose file pymysql streams in chunks.

        pymysql sends whatever file the server asks for, in answer to any statement: a connection that always
        allowed it would let a rogue server (or anyone in between) read any file this process can. The
        capability is negotiated at connect, but pymysql checks its ``_local_infile`` flag at each request:
        loadbay's connections keep it off (``refuse_local_files``) but inside this call.
        """
        if self._only_recorded(self.render(statement)):
            return False
        driver = self.local_files_connection()
        driver._local_infile = True
        try:
            self.execute_sql(statement)
        finally:
            driver._local_infile = False
        return True

    def local_files_connection(self) -> Any:
        """The pymysql connection (hook: the SQLAlchemy family's is under its pool's wrapper)."""
        return self.native_connection

    def execute_text(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]] | None:
        """The base's, except ``CREATE [UNIQUE] INDEX IF NOT EXISTS`` (the merge's lookup and upsert indexes) on
        MySQL, which has no IF NOT EXISTS for indexes (MariaDB has): sent without it, an index of that name
        already there (error 1061) counts as done."""
        if not INDEX_IF_NOT_EXISTS.match(text) or self.server_creates_index_if_not_exists():
            return super().execute_text(text, params)
        try:
            return super().execute_text(INDEX_IF_NOT_EXISTS.sub(r"\1", text, count=1), params)
        except DestinationTerminalError as exc:
            if mysql_code(exc.orig) == DUPLICATE_KEY_NAME:
                return None
            raise

    def server_creates_index_if_not_exists(self) -> bool:
        """MariaDB takes ``CREATE INDEX IF NOT EXISTS``; MySQL (8.4 included) does not."""
        return MARIADB in str(self.local_files_connection().get_server_info())

    @staticmethod
    def refuse_local_files(connection: Any) -> Any:
        """``connection`` (pymysql's, opened with ``local_infile``) refusing the server's file requests."""
        connection._local_infile = False
        return connection

    @contextmanager
    def translating(self, statement: str | None) -> Iterator[None]:
        """The base's boundary, and one pymysql quirk: when the connection drops while a LOAD DATA LOCAL file
        is sent, pymysql's clean-up writes to the closed socket, and its AttributeError hides the driver error
        that says what happened (2006, server gone): that one is translated (transient, retried)."""
        with super().translating(statement):
            try:
                yield
            except AttributeError as exc:
                lost = exc.__context__
                if lost is not None and self.classify(lost) is not None:
                    raise lost from None
                raise


class MysqlSqlClient(LocalInfileClient):
    """Each dataset a database of its own (created by ``create_dataset``)."""

    dbapi_paramstyle = "format"
    DATASET_PREFIX_HINT = ("each dataset is a database of its own (and <dataset>_staging another): a user with "
                           "rights on one database only loads into it with the destination setting dataset_prefix=True")
    """Added to an access-denied error (``ACCESS_DENIED``): what to do next."""

    def connect(self) -> Any:
        import pymysql

        # autocommit: explicit BEGIN/COMMIT; local files sent only inside load_data_local
        return self.refuse_local_files(pymysql.connect(**self.config.credentials.connect_args()))

    def server_version(self) -> tuple[int, ...]:
        """From the server's version text: ``5.5.5-10.11.19-MariaDB-0+deb12u1`` is (10, 11, 19)."""
        text = self.native_connection.get_server_info()
        if MARIADB in text and text.startswith("5.5.5-"):  # MariaDB's prefix for old replication clients
            text = text[len("5.5.5-"):]
        return tuple(int(part) for part in text.split("-")[0].split(".") if part.isdigit())

    @property
    def is_mariadb(self) -> bool:
        return MARIADB in self.native_connection.get_server_info()

    def refresh_statistics(self, tables: Sequence[exp.Table]) -> None:
        """As the base does, but not on MySQL before 8.0.24, where an ANALYZE makes every later query of the
        table wait for the long ones running ("Waiting for table flush"); MariaDB does not."""
        if self.is_mariadb or self.server_version() >= (8, 0, 24):
            super().refresh_statistics(tables)

    def table_collation(self) -> str:
        """The collation of loadbay's tables: binary and NO PAD, so keys 'a', 'A' and 'a ' are three keys, as on
        every other destination (``utf8mb4_bin`` pads: 'a' = 'a '). MySQL before 8.0.17 has only that one."""
        if self.is_mariadb:
            return "utf8mb4_nopad_bin"
        return "utf8mb4_0900_bin" if self.server_version() >= (8, 0, 17) else "utf8mb4_bin"

    @staticmethod
    def classify(exc: BaseException) -> type[DestinationError] | None:
        return classify_pymysql(exc)

    def translate(self, exc: BaseException, statement: str | None) -> DestinationError:
        """The base's translation; a user denied a database (or its tables) is told about ``dataset_prefix``."""
        error = super().translate(exc, statement)
        if self.DATASET_PREFIX_HINT and mysql_code(exc) in ACCESS_DENIED:
            return type(error)(f"{error}\n  {self.DATASET_PREFIX_HINT}", orig=error.orig, statement=error.statement)
        return error

    # -- datasets ------------------------------------------------------------------------------------
    def catalog_names(self, table_names: Sequence[str], staging: bool = False) -> tuple[str, dict[str, str]]:
        """Where ``table_names`` live in the catalog: (database, {name in the database: table name})."""
        return (self.config.staging_dataset_name if staging else self.dataset_name), {n: n for n in table_names}

    def table_columns(self, table_names: Sequence[str], staging: bool = False) -> dict[str, list[tuple[Any, ...]]]:
        """Live columns from INFORMATION_SCHEMA (``column_type``, so ``tinyint(1)`` tells a bool); on MariaDB a
        LONGTEXT column with a ``json_valid`` check is reported as ``json``, as it was created."""
        database, names = self.catalog_names(table_names, staging)
        if not names:
            return {}
        rows = self.execute_sql(sql.live_columns(len(names), self.dialect), database, *names) or []
        json_columns: set[tuple[str, str]] = set()
        if self.is_mariadb and any(str(row[2]).lower() == "longtext" for row in rows):
            json_columns = sql.json_checked_columns(self.execute_sql(sql.json_checks(), database) or [])
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table, column, data_type, *rest in rows:
            if table not in names:  # INFORMATION_SCHEMA matched it ignoring case and accents: another table
                continue
            shown = "json" if (table, column) in json_columns else data_type
            out.setdefault(names[table], []).append((column, shown, *rest))
        return out


class PrefixedMysqlSqlClient(MysqlSqlClient):
    """``dataset_prefix``: every dataset in the credentials' database, table ``t`` of dataset ``d`` named
    ``d__t`` (shortened to 64 characters with a hash tag, like any long name). A dataset is its tables:
    it exists while one of them does, and dropping it drops them.

    So that ``d__`` starts the tables of dataset ``d`` and of no other, a dataset name has no ``__``, does
    not end with ``_`` or ``_staging`` (the staging tables of dataset ``d`` start with ``d_staging__``), and
    is short enough in UTF-8 bytes (what shortening counts) for ``d_staging__`` to survive it. Names are
    compared exactly: INFORMATION_SCHEMA's own comparisons ignore case and accents.
    """

    DATASET_PREFIX_HINT = ""
    MAX_DATASET_LENGTH = 64 - TAG_LENGTH - 1 - len("_staging__")
    """45 bytes: a longer dataset name would be cut by the shortening of its staging tables' names."""

    def __init__(self, config: DestinationConfig, capabilities: DestinationCapabilities) -> None:
        super().__init__(config, capabilities)
        if not config.credentials.database:  # type: ignore[attr-defined]
            raise ConfigurationError("mysql destination: dataset_prefix=True keeps every dataset in the "
                                     "credentials' database, and none is given: add it to the URL "
                                     "(mysql://user@host/<database>) or set credentials.database")
        name = config.dataset_name
        if ("__" in name or name.endswith(("_", STAGING_SUFFIX))
                or len(name.encode("utf-8")) > self.MAX_DATASET_LENGTH):
            raise ConfigurationError(
                f"mysql destination: with dataset_prefix=True the dataset name {name!r} must have no '__', must "
                f"not end with '_' or '{STAGING_SUFFIX}' and must be at most {self.MAX_DATASET_LENGTH} bytes in "
                f"UTF-8, so that its '{name}__' prefix names its tables and no other dataset's: choose another "
                "dataset_name")

    @property
    def database(self) -> str:
        return str(self.config.credentials.database)  # type: ignore[attr-defined]

    def table_name(self, table_name: str, staging: bool = False) -> str:
        """The name in the database: ``<dataset>__<table>``."""
        dataset = self.config.staging_dataset_name if staging else self.dataset_name
        return shorten(f"{dataset}__{table_name}", self.capabilities.max_identifier_length)

    def qualified(self, table_name: str, staging: bool = False) -> exp.Table:
        return exp.Table(this=self.identifier(self.table_name(table_name, staging)), db=self.identifier(self.database))

    def catalog_names(self, table_names: Sequence[str], staging: bool = False) -> tuple[str, dict[str, str]]:
        return self.database, {self.table_name(n, staging): n for n in table_names}

    def _tables_of(self, dataset: str) -> list[str]:
        prefix = f"{dataset}__"
        rows = self.execute_sql(sql.tables_like(), self.database, sql.like_prefix(prefix)) or []
        return [row[0] for row in rows if str(row[0]).startswith(prefix)]  # LIKE ignores case and accents

    def has_dataset(self, dataset: str | None = None) -> bool:
        return bool(self._tables_of(dataset or self.dataset_name))

    def create_dataset(self, dataset: str | None = None) -> None:
        """Nothing to create: the database is the user's, a dataset its tables."""

    def drop_dataset(self, dataset: str | None = None) -> None:
        names = self._tables_of(dataset or self.dataset_name)
        if names:
            self.execute_sql(sql.drop_tables([exp.Table(this=self.identifier(n), db=self.identifier(self.database))
                                              for n in names]))

    def use_dataset(self) -> None:
        """The connection opened on the credentials' database and stays there: nothing to look up or switch
        (an unqualified name in a caller's own SQL is a table of that database: ``<dataset>__<table>``)."""
