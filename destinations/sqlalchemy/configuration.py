"""SQLAlchemy credentials: any SQLAlchemy URL, plus engine options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from loadbay.common.configuration import ConnectionStringCredentials
from loadbay.common.destination import DestinationConfig


@dataclass(repr=False)
class SqlalchemyCredentials(ConnectionStringCredentials):
    """``sqlite:///path.db``, ``mysql+pymysql://root@127.0.0.1:3306/test``, ``postgresql+psycopg2://...``."""

    REQUIRED: ClassVar[tuple[str, ...]] = ("drivername",)

    def url(self) -> Any:
        from sqlalchemy.engine import URL

        return URL.create(self.drivername, username=self.username, password=self.password, host=self.host,
                          port=self.port, database=self.database, query=self.query)

    def dialect_name(self) -> str:
        return self.drivername.split("+")[0]


@dataclass
class SqlalchemyConfig(DestinationConfig):
    credentials: SqlalchemyCredentials = field(default_factory=SqlalchemyCredentials)
    engine_args: dict[str, Any] = field(default_factory=dict)
    """Passed to ``sqlalchemy.create_engine``: ``pool_size``, ``connect_args``, ``echo``, ..."""
    sqlite_load_worker: str = "auto"
    """SQLite only: where Arrow IPC files load. "auto": in a worker process, which binds rows on a core of its own
    (``sqlite_worker``), once the run loads a table of 20,000 rows or more while it still normalizes; "always":
    every Arrow IPC file; "never": this process only."""

    def __post_init__(self) -> None:
        from loadbay.common.exceptions import ConfigurationError
        from loadbay.destinations.sqlalchemy.sqlite_worker import MODES

        if self.sqlite_load_worker not in MODES:
            raise ConfigurationError(f"sqlite_load_worker must be one of {MODES}, not {self.sqlite_load_worker!r}")
