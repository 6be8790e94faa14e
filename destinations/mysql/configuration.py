"""MySQL/MariaDB credentials: a ``mysql://`` URL or fields, turned into pymysql connect arguments; and
the destination's settings (``dataset_prefix``: every dataset in one database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from loadbay.common.configuration import ServerCredentials
from loadbay.common.destination import DestinationConfig


@dataclass(repr=False)
class MysqlCredentials(ServerCredentials):
    drivername: str = "mysql"
    port: int | None = 3306

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    """No database is needed to connect: each dataset is a database of its own (unless ``dataset_prefix``)."""
    SCHEMES: ClassVar[tuple[str, ...]] = ("mysql", "mariadb")
    """``mysql+pymysql://`` works too, as it does for the SQLAlchemy destination."""
    PASSWORD_OPTIONS: ClassVar[tuple[str, ...]] = ("passwd",)
    QUERY_OPTIONS: ClassVar[dict[str, type]] = {"local_infile": bool, "ssl_disabled": bool, "read_timeout": int,
                                                "write_timeout": int, "max_allowed_packet": int}

    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect``: utf8mb4, autocommit, LOAD DATA LOCAL allowed; free
        ``query`` options pass through as pymysql's own (``ssl_ca``, ``unix_socket``, ``init_command``,
        ``local_infile=false``, ...)."""
        args: dict[str, Any] = {"database": self.database, "user": self.username, "password": self.password or "",
                                "host": self.host, "port": self.port, "connect_timeout": self.connect_timeout,
                                "charset": "utf8mb4", "autocommit": True, "local_infile": True,
                                "program_name": "loadbay", **self.driver_options()}
        return {k: v for k, v in args.items() if v is not None}


@dataclass
class MysqlConfig(DestinationConfig):
    credentials: MysqlCredentials = field(default_factory=MysqlCredentials)
    dataset_prefix: bool = False
    """False: each dataset is a database of its own (``<dataset>`` and ``<dataset>_staging``, created if
    missing). True: every dataset lives in the credentials' database, its tables named ``<dataset>__<table>``,
    for a user with rights on that one database only."""
