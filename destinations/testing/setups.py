"""The destination setups the conformance suite runs against, and whether their servers are up.

``SETUPS`` is the one place a built-in setup is added: a name (shown in test ids) and a
``DestinationSetup`` saying which destination to resolve and with which credentials. A setup
with a ``probe`` lives on a server: the probe runs once per session, and an unreachable server
skips the tests with the probe's reason (or fails them when ``CI=true``, where every server must
be up). A setup whose credentials are made per test (``in_tmp``) gets a fresh database under the
test's ``tmp_path``; every other setup has its datasets dropped after each test.

This module imports no database driver and not loadbay itself: the pytest plugin imports it at
start-up.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from loadbay.destinations.testing import error_tables
from loadbay.destinations.testing.real_errors import ErrorTable

if TYPE_CHECKING:
    from loadbay.common.destination import Destination

POSTGRES_URL = os.environ.get("LOADBAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL server the built-in ``postgres`` setup (and tests/integration/test_postgres*.py) use."""
MARIADB_URL = os.environ.get("LOADBAY_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test")
"""The MariaDB server the built-in ``mariadb`` setup (the SQLAlchemy destination) and ``mysql`` setup use."""
MYSQL_URL = "mysql://" + MARIADB_URL.split("://", 1)[1]
"""The same server as the mysql destination's credentials (its own ``mysql://`` scheme)."""
SQLALCHEMY_POSTGRES_URL = "postgresql+psycopg2://" + POSTGRES_URL.split("://", 1)[1]
"""The PostgreSQL server as the SQLAlchemy destination's URL (the ``sqlalchemy_postgres`` setup)."""
SPARK_URL = os.environ.get("LOADBAY_TEST_SPARK", "spark://loadbay@127.0.0.1:10000")
"""The Spark Thrift server the built-in ``spark`` setup uses (``scripts/spark.sh start`` runs one). The setup runs
with ``--lb-setup spark``, and in the default run only when ``LOADBAY_TEST_SPARK`` is set: a Spark server costs a
JVM and about a gigabyte, and its part of the suite takes far longer than the others (README, "Scaling out")."""
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
"""Under CI every server must be reachable: an unreachable one fails the tests instead of skipping them."""

SAMPLE_DATA = Path(os.environ.get("LOADBAY_SHARED_DATA",
                                  Path(__file__).resolve().parents[2].parent / "shared" / "data"))
"""The sample data files (github_events.json, ...): ``--lb-data-dir``, else $LOADBAY_SHARED_DATA, else
``../shared/data`` beside the loadbay checkout."""

Probe = Callable[[], "str | None"]
"""Returns why a server cannot be used (shown as the skip reason), or None when it can."""


def in_tmp(template: str) -> Callable[[Path, str], str]:
    """Credentials made per test: ``template`` with ``{tmp_path}`` and ``{pipeline_name}`` filled in.

    >>> in_tmp("{tmp_path}/{pipeline_name}.duckdb")(Path("/tmp/t"), "events")
    '/tmp/t/events.duckdb'
    """
    def credentials(tmp_path: Path, pipeline_name: str) -> str:
        return template.format(tmp_path=tmp_path.as_posix(), pipeline_name=pipeline_name)

    return credentials


def tcp_probe(url: str, *, hint: str = "", timeout: float = 3.0) -> Probe:
    """A driver-free probe: can a TCP connection be opened to the host and port of ``url``?

    Only reachability is checked, so a destination that cannot log in fails its tests rather
    than skipping them.
    """
    parts = urlsplit(url)
    if not (parts.hostname and parts.port):
        raise ValueError(f"tcp_probe needs a URL with a host and a port, not {url!r}")

    def probe() -> str | None:
        where = f"{parts.hostname}:{parts.port}"
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=timeout).close()
        except OSError as exc:
            return f"server not reachable at {where} ({exc}){'; ' + hint if hint else ''}"
        return None

    return probe


def probe_postgres() -> str | None:
    import psycopg2

    try:
        psycopg2.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg2.Error as exc:
        return f"PostgreSQL not reachable at {POSTGRES_URL} ({str(exc).strip()}); set LOADBAY_TEST_POSTGRES"
    return None


def probe_spark() -> str | None:
    """A DB-API connection that answers ``SELECT 1``: the Thrift server listens long before it answers."""
    import shutil

    hint = "start one with scripts/spark.sh start (Java 17 and the 'spark' extra), or set LOADBAY_TEST_SPARK"
    if shutil.which("java") is None:
        hint = "no java on PATH (apt-get install openjdk-17-jre-headless); " + hint
    try:
        from impala.dbapi import connect
    except ImportError:
        return f"impyla is not installed (pip install -e '.[spark]'); {hint}"
    parts = urlsplit(SPARK_URL)
    try:
        conn = connect(host=parts.hostname, port=parts.port or 10000, user=parts.username or "loadbay",
                       password=parts.password or "x", auth_mechanism="PLAIN", timeout=30)
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchall()
        finally:
            conn.close()
    except Exception as exc:  # noqa: BLE001 - any failure is the reason to show
        return f"Spark Thrift server not answering at {parts.hostname}:{parts.port} ({type(exc).__name__}: {exc}); {hint}"
    return None


@dataclass(frozen=True)
class DestinationSetup:
    """How the conformance suite makes one destination."""

    reference: str
    """What ``loadbay.destination()`` resolves: a built-in name, an entry-point name or ``pkg.module:Factory``."""
    credentials: Callable[[Path, str], Any] | str | None = None
    """Credentials, or ``f(tmp_path, pipeline_name) -> credentials`` for a fresh database per test."""
    probe: Probe | None = None
    """For a server: tells whether it is reachable; None for embedded databases."""
    config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Further destination settings, e.g. ``{"upsert_syntax": "on_conflict"}``."""
    errors: ErrorTable | None = None
    """Real errors to provoke on its database, for conformance/test_error_classes.py (None: that test skips)."""
    in_default_run: bool = True
    """Whether a run without ``--lb-setup`` includes it (then under CI=true its server must be up)."""

    @property
    def database_per_test(self) -> bool:
        """Whether each test gets its own database (under tmp_path): nothing to drop afterwards."""
        return callable(self.credentials)

    def destination(self, tmp_path: Path, pipeline_name: str, **settings: Any) -> Destination:
        """The destination, configured (no connection is opened); ``settings`` over the setup's ``config``
        (``credentials`` among them over the setup's credentials)."""
        import loadbay

        credentials = self.credentials(tmp_path, pipeline_name) if callable(self.credentials) else self.credentials
        return loadbay.destination(self.reference, **{"credentials": credentials, **self.config, **settings})


SETUPS: dict[str, DestinationSetup] = {
    "duckdb": DestinationSetup("duckdb", in_tmp("{tmp_path}/{pipeline_name}.duckdb"), errors=error_tables.DUCKDB),
    "postgres": DestinationSetup("postgres", POSTGRES_URL, probe=probe_postgres, errors=error_tables.POSTGRES),
    "sqlite": DestinationSetup("sqlalchemy", in_tmp("sqlite:///{tmp_path}/{pipeline_name}.db"),
                               errors=error_tables.SQLITE),
    "mariadb": DestinationSetup("sqlalchemy", MARIADB_URL,
                                probe=tcp_probe(MARIADB_URL, hint="set LOADBAY_TEST_MARIADB"),
                                errors=error_tables.MARIADB),
    "mysql": DestinationSetup("mysql", MYSQL_URL, probe=tcp_probe(MYSQL_URL, hint="set LOADBAY_TEST_MARIADB"),
                              errors=error_tables.MYSQL),
    "sqlalchemy_postgres": DestinationSetup("sqlalchemy", SQLALCHEMY_POSTGRES_URL, probe=probe_postgres,
                                            errors=error_tables.SQLALCHEMY_POSTGRES),
    "spark": DestinationSetup("spark", SPARK_URL, probe=probe_spark, errors=error_tables.SPARK,
                              in_default_run="LOADBAY_TEST_SPARK" in os.environ),
}
"""Built-in setups, by the name test ids show. Adding a destination to the repo's own test run is one line."""


def setup_from_options(reference: str, credentials: str | None, errors: ErrorTable | None = None) -> DestinationSetup:
    """The setup for ``--lb-destination`` / ``--lb-credentials`` / ``--lb-errors``.

    Credentials with ``{tmp_path}`` (or ``{pipeline_name}``) make a database per test; a URL with a
    host and port is a server (probed over TCP, datasets dropped after each test); anything else is
    used as it is (datasets dropped after each test).
    """
    if credentials is None:
        return DestinationSetup(reference, errors=errors)
    if "{tmp_path}" in credentials or "{pipeline_name}" in credentials:
        return DestinationSetup(reference, in_tmp(credentials), errors=errors)
    parts = urlsplit(credentials)
    if parts.scheme and parts.hostname and parts.port:
        return DestinationSetup(reference, credentials,
                                probe=tcp_probe(credentials, hint="is --lb-credentials right?"), errors=errors)
    return DestinationSetup(reference, credentials, errors=errors)


def setup_name(reference: str) -> str:
    """The name test ids show for a destination reference: ``mypkg.presto:presto`` -> ``presto``."""
    return reference.replace(":", ".").rpartition(".")[2]


# -- the session's state: set once by the plugin at start-up ---------------------------------------
_active: dict[str, DestinationSetup] = {}
_server_errors: dict[str, str | None] = {}
_sample_data = SAMPLE_DATA


def activate(setups: Mapping[str, DestinationSetup], *, sample_data: Path | None = None) -> None:
    """Called by the plugin at start-up with the setups this session runs and the sample data folder."""
    global _sample_data
    _active.clear()
    _active.update(setups)
    _server_errors.clear()
    _sample_data = sample_data or SAMPLE_DATA


def sample_data_dir() -> Path:
    """Where ``load_sample`` reads from."""
    return _sample_data


def active() -> dict[str, DestinationSetup]:
    return dict(_active)


def require_server(name: str) -> None:
    """Skip (on a laptop) or fail (in CI, where every server must be up) when ``name``'s server is unreachable.

    ``name`` is a setup of this session or of ``SETUPS``; a setup without a probe needs no server.
    """
    setup = _active.get(name) or SETUPS.get(name)
    if setup is None or setup.probe is None:
        return
    if name not in _server_errors:
        _server_errors[name] = setup.probe()
    error = _server_errors[name]
    if error:
        if IN_CI:
            pytest.fail(f"CI=true and a required server is down: {error}")
        pytest.skip(error)
