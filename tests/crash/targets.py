"""The destinations the crash harness runs against, each read back with its own driver.

The harness checks what loadbay wrote with the database's plain driver (duckdb, psycopg2,
sqlite3, pymysql, impyla), not with loadbay's SQL client: a checker sharing code with what it checks could
share its bugs. Every connection is closed before the next worker starts (a DuckDB file
takes one writing process at a time).

Each destination is a ``Target`` subclass; what differs between their SQL dialects is one method
each (``quote`` for identifiers, ``tables_sql``, ``is_missing`` for "no such table" errors,
``drop_datasets``), so the checks build their SQL through the target and hold no dialect branches.
``mysql`` is the native mysql destination on the MariaDB server of ``MYSQL_URL`` (user root,
database ``test``): there a dataset is a database of its own, and ``<dataset>_staging`` another; so it is on
``spark``, the Thrift server of ``SPARK_URL``, read through impyla.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from loadbay.common.destination import STAGING_SUFFIX
from loadbay.destinations.testing.setups import MYSQL_URL, POSTGRES_URL, SETUPS, SPARK_URL, active


class TableMissing(Exception):
    """The table (or the dataset) is not there at all."""


@dataclass(frozen=True)
class Target:
    """One destination: the credentials a worker gets for a work folder, and how to read it back."""

    name: str

    @property
    def reference(self) -> str:
        """What ``loadbay.destination()`` resolves for this target."""
        return SETUPS[self.name].reference

    @property
    def needs_server(self) -> bool:
        return SETUPS[self.name].probe is not None

    def credentials(self, workdir: Path) -> str:
        raise NotImplementedError

    def own_points(self, disposition: str) -> tuple[str, ...]:
        """Crash points of this destination's own code that a load in ``disposition`` passes, run beside the
        shared ones (``harness.POINTS``)."""
        return ()

    # -- the dialect -------------------------------------------------------------------------------
    def quote(self, identifier: str) -> str:
        """An identifier quoted for this database (standard SQL: double quotes)."""
        return f'"{identifier}"'

    def qualified(self, dataset: str, table: str) -> str:
        """``table`` of ``dataset``, quoted, for the SQL given to ``query``."""
        return f"{self.quote(dataset)}.{self.quote(table)}"

    def tables_sql(self, dataset: str) -> str:
        """SQL listing the table names of ``dataset`` (a name per row)."""
        return f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{dataset}'"

    def is_missing(self, exc: Exception) -> bool:
        """Whether a driver's error says the table (or the dataset) does not exist."""
        text = str(exc).lower()
        return any(s in text for s in ("does not exist", "no such table", "not found"))

    def _connect(self, credentials: str, dataset: str) -> AbstractContextManager[Any]:
        """A connection for reading ``dataset``, closed on leaving; raises ``TableMissing`` when it cannot be there."""
        raise NotImplementedError

    DROP_DATABASE: ClassVar[str | None] = None
    """Where a dataset is a database of its own (MySQL, Spark): the statement dropping one, ``{}`` its quoted name."""

    def drop_datasets(self, credentials: str, dataset: str) -> None:
        """Drop ``dataset`` and its staging twin, where they live on a server (files go with the work folder)."""
        if self.DROP_DATABASE is None:
            return
        with self._connect(credentials, dataset) as conn:
            cur = conn.cursor()
            for name in (dataset, dataset + STAGING_SUFFIX):
                cur.execute(self.DROP_DATABASE.format(self.quote(name)))

    # -- reading -----------------------------------------------------------------------------------
    def query(self, credentials: str, dataset: str, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql``; ``{dataset}.{table}`` style names must come from ``qualified``."""
        with self._connect(credentials, dataset) as conn:
            cur = conn.cursor()
            try:
                cur.execute(sql)
            except Exception as exc:  # noqa: BLE001 - each driver has its own "no such table" class
                if self.is_missing(exc):
                    raise TableMissing(str(exc).strip().splitlines()[0]) from exc
                raise
            return [tuple(r) for r in cur.fetchall()]

    def tables(self, credentials: str, dataset: str) -> set[str]:
        """Table names in ``dataset`` (empty when the dataset is not there)."""
        try:
            rows = self.query(credentials, dataset, self.tables_sql(dataset))
        except TableMissing:
            return set()
        return {r[0] for r in rows}

    def leftover_tables(self, credentials: str, dataset: str) -> set[str]:
        """Tables a completed load must not leave: those of the staging dataset (``<dataset>_staging``)."""
        return self.tables(credentials, dataset + STAGING_SUFFIX)

    # -- clean-up ----------------------------------------------------------------------------------
    def drop(self, credentials: str, dataset: str, workdir: Path, *, keep_files: bool = False) -> None:
        """Remove the dataset and its staging twin (on a server), and the work folder (worker logs,
        pipeline folder, database files) unless ``keep_files``. ``LOADBAY_CRASH_KEEP=1`` keeps all."""
        if os.environ.get("LOADBAY_CRASH_KEEP") == "1":
            return
        self.drop_datasets(credentials, dataset)
        if not keep_files:
            shutil.rmtree(workdir, ignore_errors=True)


class DuckdbTarget(Target):
    """A DuckDB file per work folder; a dataset is a schema in it."""

    def credentials(self, workdir: Path) -> str:
        return str(workdir / "crash.duckdb")

    @contextmanager
    def _connect(self, credentials: str, dataset: str) -> Iterator[Any]:
        import duckdb

        if not Path(credentials).exists():
            raise TableMissing(f"no database file {credentials}")
        conn = duckdb.connect(credentials, read_only=True)
        try:
            yield conn
        finally:
            conn.close()


class SqliteTarget(Target):
    """The SQLAlchemy destination on SQLite: a database file per dataset beside ``main.db``."""

    def credentials(self, workdir: Path) -> str:
        return f"sqlite:///{(workdir / 'main.db').as_posix()}"

    @staticmethod
    def _sqlite_file(credentials: str, dataset: str) -> Path:
        """Where the SQLAlchemy destination keeps a dataset on SQLite: ``main.db`` → ``main__<dataset>.db``."""
        main = Path(credentials.removeprefix("sqlite:///"))
        return main.with_name(f"{main.stem}__{dataset}{main.suffix or '.db'}")

    def qualified(self, dataset: str, table: str) -> str:
        return self.quote(table)  # the connection is to the dataset's own file

    def tables_sql(self, dataset: str) -> str:
        return "SELECT name FROM sqlite_master WHERE type = 'table'"

    @contextmanager
    def _connect(self, credentials: str, dataset: str) -> Iterator[Any]:
        import sqlite3

        path = self._sqlite_file(credentials, dataset)
        if not path.exists():
            raise TableMissing(f"no dataset file {path}")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            yield conn
        finally:
            conn.close()


class PostgresTarget(Target):
    """The PostgreSQL server of ``POSTGRES_URL``; a dataset is a schema."""

    def credentials(self, workdir: Path) -> str:
        return POSTGRES_URL

    @contextmanager
    def _connect(self, credentials: str, dataset: str) -> Iterator[Any]:
        import psycopg2

        conn = psycopg2.connect(credentials)
        conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    def drop_datasets(self, credentials: str, dataset: str) -> None:
        from tests.integration.pg_helpers import drop_schemas

        drop_schemas(dataset, dataset + STAGING_SUFFIX)


class MysqlTarget(Target):
    """The native mysql destination on the MariaDB server of ``MYSQL_URL``; a dataset is a database."""

    DROP_DATABASE = "DROP DATABASE IF EXISTS {}"
    MISSING_CODES = (1146, 1049)
    """ER_NO_SUCH_TABLE ("Table 'd.t' doesn't exist"), ER_BAD_DB_ERROR ("Unknown database")."""

    def credentials(self, workdir: Path) -> str:
        return MYSQL_URL

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    def is_missing(self, exc: Exception) -> bool:
        import pymysql

        return isinstance(exc, pymysql.err.MySQLError) and bool(exc.args) and exc.args[0] in self.MISSING_CODES

    @contextmanager
    def _connect(self, credentials: str, dataset: str) -> Iterator[Any]:
        """A connection to the credentials' database (``test``): every name read is qualified by its
        dataset's database, so a dataset not (yet) there is a missing table, not a failed login."""
        import pymysql

        url = urlsplit(credentials)
        conn = pymysql.connect(host=url.hostname, port=url.port or 3306, user=unquote(url.username or "root"),
                               password=unquote(url.password or ""), database=url.path.lstrip("/") or None,
                               charset="utf8mb4", autocommit=True, connect_timeout=10)
        try:
            yield conn
        finally:
            conn.close()


class SparkTarget(Target):
    """The Spark Thrift server of ``SPARK_URL``, read through impyla (the driver, not loadbay's client); a dataset is
    a Spark database. Each read opens a new connection, so a new session: it lists every table's files anew (a
    session keeps the file lists of the tables it has read)."""

    DROP_DATABASE = "DROP DATABASE IF EXISTS {} CASCADE"

    def credentials(self, workdir: Path) -> str:
        return SPARK_URL

    def own_points(self, disposition: str) -> tuple[str, ...]:
        """Merge and replace build new tables, then rename them over the targets (``destinations/spark/swap.py``):
        killed once every table is built, and between the two renames of the first table (the root: renamed away,
        its new one not yet in place) and of the second (the child table, the root swapped already)."""
        return ("spark.built", "spark.swapping", "spark.swapping:2") if disposition != "append" else ()

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    def tables_sql(self, dataset: str) -> str:
        return f"SHOW TABLES IN {self.quote(dataset)}"

    def tables(self, credentials: str, dataset: str) -> set[str]:
        """``SHOW TABLES`` answers (database, table, is temporary)."""
        try:
            rows = self.query(credentials, dataset, self.tables_sql(dataset))
        except TableMissing:
            return set()
        return {r[1] for r in rows}

    def is_missing(self, exc: Exception) -> bool:
        return any(code in str(exc) for code in ("TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND"))

    def leftover_tables(self, credentials: str, dataset: str) -> set[str]:
        """The staging dataset's tables, and the dataset's own ``<t>__<load id>__new`` / ``__old`` of a swap."""
        swapped = {n for n in self.tables(credentials, dataset) if n.endswith(("__new", "__old"))}
        return super().leftover_tables(credentials, dataset) | swapped

    @contextmanager
    def _connect(self, credentials: str, dataset: str) -> Iterator[Any]:
        from impala.dbapi import connect

        url = urlsplit(credentials)
        conn = connect(host=url.hostname, port=url.port or 10000, user=unquote(url.username or "loadbay"),
                       password=unquote(url.password or "x"), auth_mechanism="PLAIN", timeout=120)
        try:
            yield conn
        finally:
            conn.close()


TARGETS: dict[str, Target] = {target.name: target for target in (
    DuckdbTarget("duckdb"), PostgresTarget("postgres"), SqliteTarget("sqlite"), MysqlTarget("mysql"),
    SparkTarget("spark"))}


def session_destinations(names: tuple[str, ...] = tuple(TARGETS)) -> tuple[str, ...]:
    """Those of ``names`` (a setup's name in ``SETUPS``, and the worker's ``--destination``) whose setup this session
    runs, as the conformance suite does: every built-in one but ``spark`` by default (``spark`` where
    ``LOADBAY_TEST_SPARK`` names a cluster), those of ``--lb-setup`` when given (``.ci/spark``: spark alone). Called
    by the test modules, which are imported after the plugin has read the options."""
    chosen = active()
    return tuple(name for name in names if name in chosen)
