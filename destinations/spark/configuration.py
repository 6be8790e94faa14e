"""Spark Thrift server credentials: a ``spark://`` URL or fields, turned into impyla connect arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from loadbay.common.configuration import ServerCredentials
from loadbay.common.destination import DestinationConfig
from loadbay.common.staging import StagingConfig


@dataclass(repr=False)
class SparkCredentials(ServerCredentials):
    drivername: str = "spark"
    host: str | None = "127.0.0.1"
    port: int | None = 10000
    username: str | None = "loadbay"
    auth_mechanism: str = "PLAIN"
    """impyla's SASL mechanism: PLAIN (the Thrift server's default ``NONE`` authentication takes any user and
    password over SASL PLAIN), NOSASL, LDAP or GSSAPI, as the server's ``hive.server2.authentication`` wants."""

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    """No database is needed to connect: each dataset is a Spark database of its own."""
    SCHEMES: ClassVar[tuple[str, ...]] = ("spark", "hive")
    QUERY_FIELDS: ClassVar[dict[str, type]] = {**ServerCredentials.QUERY_FIELDS, "auth_mechanism": str}
    QUERY_OPTIONS: ClassVar[dict[str, type]] = {"use_ssl": bool, "use_http_transport": bool}

    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments for ``impala.dbapi.connect``; free ``query`` options pass through as impyla's own
        (``use_ssl``, ``ca_cert``, ``http_path``, ...). SASL PLAIN needs a non-empty password even where the server
        checks none (its default ``NONE`` authentication refuses an empty one): ``x`` is sent then, as PyHive does. ``connect_timeout`` is not passed: impyla's ``timeout`` bounds every
        read of the socket, and a Spark job answers when it is done (minutes, for a large load)."""
        args: dict[str, Any] = {"host": self.host, "port": self.port, "user": self.username,
                                "password": self.password or ("x" if self.auth_mechanism == "PLAIN" else None),
                                "auth_mechanism": self.auth_mechanism,
                                **self.driver_options()}
        return {k: v for k, v in args.items() if v is not None}


@dataclass
class SparkConfig(DestinationConfig):
    credentials: SparkCredentials = field(default_factory=SparkCredentials)
    staging: StagingConfig = field(default_factory=StagingConfig)
    """``[destination.spark.staging]``: where the cluster reads load files (``s3a://``, ``hdfs://``, a shared
    folder); unset, Spark reads the package's own files, which a server on this machine can."""
