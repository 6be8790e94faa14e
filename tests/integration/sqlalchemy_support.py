"""Fixtures and helpers shared by tests/integration/test_sqlalchemy*.py: SQLAlchemy pipelines on a real SQLite
file and on the real MariaDB server, each on its own dataset that is dropped after the test.

Test modules import the fixtures they use by name (pytest finds fixtures in a module's namespace).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loadbay
from loadbay.destinations.testing.conformance.helpers import query
from loadbay.destinations.testing.setups import MARIADB_URL, require_server
from tests.integration.support import (SYSTEM_TABLES, closed_port, drop_maria_databases,  # noqa: F401 - re-exported
                                       live_tables, maria_raw, maria_url, new_dataset)

BACKENDS = ["sqlite", "mariadb"]


def sqlite_url(tmp_path: Path, name: str = "main") -> str:
    return f"sqlite:///{(tmp_path / f'{name}.db').as_posix()}"


PipelineFactory = Callable[..., loadbay.Pipeline]
DEFAULT: Any = object()
"""``credentials=DEFAULT``: the backend's own URL; ``credentials=None``: resolved from toml / env."""


def _factory(backend: str, tmp_path: Path, made: list[loadbay.Pipeline]) -> PipelineFactory:
    def make(name: str = "sa_test", dataset_name: str | None = None, credentials: Any = DEFAULT,
             pipelines_dir: Path | None = None, destination_name: str | None = None,
             **settings: Any) -> loadbay.Pipeline:
        config = {k: settings.pop(k) for k in ("engine_args", "replace_strategy") if k in settings}
        if credentials is DEFAULT:
            credentials = sqlite_url(tmp_path, "lite") if backend == "sqlite" else MARIADB_URL
        destination = loadbay.destination("sqlalchemy", credentials=credentials, destination_name=destination_name,
                                          **config)
        settings.setdefault("retry_backoff_seconds", 0.01)
        p = loadbay.pipeline(name, destination=destination, dataset_name=dataset_name or new_dataset(),
                             pipelines_dir=pipelines_dir or tmp_path / "pipelines" / name, **settings)
        made.append(p)
        return p

    return make


def _drop(backend: str, made: list[loadbay.Pipeline]) -> None:
    if backend == "mariadb":
        names = {n for p in made for n in (p.dataset_name, p.config.staging_dataset_name)}
        drop_maria_databases(*sorted(names))
        return
    for p in made:  # SQLite: detach and delete the dataset files (they live under tmp_path anyway)
        try:
            with p.sql_client() as client:
                client.drop_dataset(p.dataset_name)
                client.drop_dataset(p.config.staging_dataset_name)
        except Exception:  # noqa: BLE001 - a test that broke its credentials on purpose; tmp_path goes anyway
            pass


@pytest.fixture
def maria(tmp_path: Path) -> Iterator[PipelineFactory]:
    """``maria(name=..., dataset_name=None, credentials=MARIADB_URL, engine_args=None, **settings)``."""
    require_server("mariadb")
    made: list[loadbay.Pipeline] = []
    yield _factory("mariadb", tmp_path, made)
    _drop("mariadb", made)


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[PipelineFactory]:
    """``lite(name=..., dataset_name=None, credentials=sqlite:///<tmp>/lite.db, engine_args=None, **settings)``."""
    made: list[loadbay.Pipeline] = []
    yield _factory("sqlite", tmp_path, made)
    _drop("sqlite", made)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``mariadb``; MariaDB tests skip (or fail under CI=true) when the server is down."""
    if request.param == "mariadb":
        require_server("mariadb")
    return str(request.param)


@pytest.fixture
def sa(backend: str, tmp_path: Path) -> Iterator[PipelineFactory]:
    """A pipeline factory on the backend under test (runs once per backend)."""
    made: list[loadbay.Pipeline] = []
    yield _factory(backend, tmp_path, made)
    _drop(backend, made)


# -- reading back ------------------------------------------------------------------------------------
def tbl(p: loadbay.Pipeline, table: str) -> str:
    """The dataset-qualified table name (never relies on the session's default database)."""
    client = p.destination.sql_client(p.config)
    return client.quoted(table)


def n_rows(p: loadbay.Pipeline, table: str) -> int:
    """Rows of ``table``, named with its dataset (``count`` relies on the session's default one)."""
    return int(query(p, f"SELECT count(*) FROM {tbl(p, table)}")[0][0])
