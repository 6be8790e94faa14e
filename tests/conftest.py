"""Shared fixtures: an isolated working directory and HOME, the sample data, pipelines per destination."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loadbay

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LOADBAY_SHARED_DATA", REPO.parent / "shared" / "data"))

# Destinations the conformance tests run against. Later destinations add themselves here.
CONFORMANCE_DESTINATIONS = ["duckdb", "postgres"]
POSTGRES_URL = os.environ.get("LOADBAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_server_errors: dict[str, str | None] = {}


def _probe_postgres() -> str | None:
    import psycopg2

    try:
        psycopg2.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg2.Error as exc:
        return f"PostgreSQL not reachable at {POSTGRES_URL} ({str(exc).strip()}); set LOADBAY_TEST_POSTGRES"
    return None


PROBES = {"postgres": _probe_postgres}


def require_server(name: str) -> None:
    """Skip (on a laptop) or fail (in CI, where every server must be up) when ``name`` is unreachable."""
    if name not in PROBES:
        return
    if name not in _server_errors:
        _server_errors[name] = PROBES[name]()
    error = _server_errors[name]
    if error:
        if IN_CI:
            pytest.fail(f"CI=true and a required server is down: {error}")
        pytest.skip(error)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own working directory with its own HOME and no loadbay env vars."""
    work = tmp_path / "work"
    home = tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    for key in list(os.environ):
        if key.startswith(("DESTINATION__", "PIPELINE__", "PIPELINES__")):
            monkeypatch.delenv(key)
    return work


@pytest.fixture
def data_dir() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"sample data not found at {SHARED_DATA}; set LOADBAY_SHARED_DATA")
    return SHARED_DATA


def load_sample(name: str) -> Any:
    """A sample data file from ../shared/data, parsed."""
    return json.loads((SHARED_DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(params=CONFORMANCE_DESTINATIONS)
def destination_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_pipeline(destination_name: str, tmp_path: Path) -> Iterator[Callable[..., loadbay.Pipeline]]:
    """``make_pipeline(name="p", dataset_name=None, **settings)``: a pipeline on the destination under test,
    with its own dataset (unique per test) and pipelines_dir under tmp_path."""
    made: list[loadbay.Pipeline] = []
    require_server(destination_name)

    def make(name: str = "test_pipeline", dataset_name: str | None = None, **settings: Any) -> loadbay.Pipeline:
        dataset = dataset_name or f"ds_{uuid.uuid4().hex[:10]}"
        destination = _destination(destination_name, tmp_path, name)
        settings.setdefault("retry_backoff_seconds", 0.01)
        p = loadbay.pipeline(name, destination=destination, dataset_name=dataset,
                             pipelines_dir=tmp_path / "pipelines", **settings)
        made.append(p)
        return p

    yield make
    for p in made:
        if p.destination.destination_type != "duckdb":  # server datasets outlive the test otherwise
            drop_datasets(p)


def drop_datasets(p: loadbay.Pipeline) -> None:
    with p.sql_client() as client:
        client.drop_dataset(p.dataset_name)
        client.drop_dataset(p.config.staging_dataset_name)


def _destination(name: str, tmp_path: Path, pipeline_name: str) -> loadbay.Destination:
    if name == "duckdb":
        return loadbay.destination("duckdb", credentials=str(tmp_path / f"{pipeline_name}.duckdb"))
    if name == "postgres":
        return loadbay.destination("postgres", credentials=POSTGRES_URL)
    raise ValueError(f"no conformance setup for destination {name!r}")


def query(pipeline: loadbay.Pipeline, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` run on the pipeline's dataset."""
    with pipeline.sql_client() as client:
        return client.execute_sql(sql, *params) or []


def table_columns(pipeline: loadbay.Pipeline, table: str) -> dict[str, str]:
    """Live column name → loadbay data type of ``table`` as the destination reports it."""
    with pipeline.sql_client() as client:
        live = client.table_columns([table]).get(table, [])
    mapper_client = pipeline.destination.client(pipeline.config)
    return {name: mapper_client.type_mapper.from_db_type(db_type, p, s)[0] for name, db_type, p, s, _ in live}
