"""The destinations the crash harness runs against, each read back with its own driver.

The harness checks what loadbay wrote with the database's plain driver (duckdb, psycopg2,
sqlite3), not with loadbay's SQL client: a checker sharing code with what it checks could
share its bugs. Every connection is closed before the next worker starts (a DuckDB file
takes one writing process at a time).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadbay.common.destination import STAGING_SUFFIX
from loadbay.destinations.testing.setups import POSTGRES_URL, SETUPS

DESTINATIONS = ("duckdb", "postgres", "sqlite")


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
        if self.name == "duckdb":
            return str(workdir / "crash.duckdb")
        if self.name == "sqlite":
            return f"sqlite:///{(workdir / 'main.db').as_posix()}"
        return POSTGRES_URL

    # -- reading -----------------------------------------------------------------------------------
    @contextmanager
    def _connect(self, credentials: str, dataset: str) -> Iterator[Any]:
        if self.name == "duckdb":
            import duckdb

            if not Path(credentials).exists():
                raise TableMissing(f"no database file {credentials}")
            conn = duckdb.connect(credentials, read_only=True)
        elif self.name == "sqlite":
            import sqlite3

            path = self._sqlite_file(credentials, dataset)
            if not path.exists():
                raise TableMissing(f"no dataset file {path}")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        else:
            import psycopg2

            conn = psycopg2.connect(credentials)
            conn.autocommit = True
        try:
            yield conn
        finally:
            conn.close()

    @staticmethod
    def _sqlite_file(credentials: str, dataset: str) -> Path:
        """Where the SQLAlchemy destination keeps a dataset on SQLite: ``main.db`` → ``main__<dataset>.db``."""
        main = Path(credentials.removeprefix("sqlite:///"))
        return main.with_name(f"{main.stem}__{dataset}{main.suffix or '.db'}")

    def qualified(self, dataset: str, table: str) -> str:
        return f'"{table}"' if self.name == "sqlite" else f'"{dataset}"."{table}"'

    def query(self, credentials: str, dataset: str, sql: str) -> list[tuple[Any, ...]]:
        """Rows of ``sql``; ``{dataset}.{table}`` style names must come from ``qualified``."""
        with self._connect(credentials, dataset) as conn:
            cur = conn.cursor()
            try:
                cur.execute(sql)
            except Exception as exc:  # noqa: BLE001 - each driver has its own "no such table" class
                text = str(exc).lower()
                if any(s in text for s in ("does not exist", "no such table", "not found")):
                    raise TableMissing(str(exc).strip().splitlines()[0]) from exc
                raise
            return [tuple(r) for r in cur.fetchall()]

    def tables(self, credentials: str, dataset: str) -> set[str]:
        """Table names in ``dataset`` (empty when the dataset is not there)."""
        try:
            if self.name == "sqlite":
                rows = self.query(credentials, dataset, "SELECT name FROM sqlite_master WHERE type = 'table'")
            else:
                rows = self.query(credentials, dataset, "SELECT table_name FROM information_schema.tables "
                                                        f"WHERE table_schema = '{dataset}'")
        except TableMissing:
            return set()
        return {r[0] for r in rows}

    # -- clean-up ----------------------------------------------------------------------------------
    def drop(self, credentials: str, dataset: str, workdir: Path, *, keep_files: bool = False) -> None:
        """Remove the dataset and its staging twin (on a server), and the work folder (worker logs,
        pipeline folder, database files) unless ``keep_files``. ``LOADBAY_CRASH_KEEP=1`` keeps all."""
        if os.environ.get("LOADBAY_CRASH_KEEP") == "1":
            return
        if self.name == "postgres":
            from tests.integration.pg_helpers import drop_schemas

            drop_schemas(dataset, dataset + STAGING_SUFFIX)
        if not keep_files:
            shutil.rmtree(workdir, ignore_errors=True)


TARGETS = {name: Target(name) for name in DESTINATIONS}
