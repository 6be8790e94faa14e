"""Helpers shared by the PostgreSQL-specific tests: the tests' own connection, schema clean-up."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loadbay
from loadbay.destinations.testing.conformance.helpers import query
from loadbay.destinations.testing.real_errors import changed_url
from loadbay.destinations.testing.setups import POSTGRES_URL, require_server
from tests.integration.support import closed_port as _closed_port  # noqa: F401 - re-exported
from tests.integration.support import live_tables  # noqa: F401 - re-exported


def raw_connection(url: str = POSTGRES_URL, **kwargs: Any) -> Any:
    """A psycopg2 connection of the test itself (not loadbay's), in autocommit."""
    import psycopg2

    conn = psycopg2.connect(url, **kwargs)
    conn.autocommit = True
    return conn


def drop_schemas(*names: str) -> None:
    """DROP SCHEMA ... CASCADE for each name, quoted by psycopg2."""
    from psycopg2 import sql

    conn = raw_connection()
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    finally:
        conn.close()


MAX_IDENT = 63


def pg_url(query: dict[str, str] | None = None, **changes: Any) -> str:
    """POSTGRES_URL with some parts changed (username, password, port, database, query options)."""
    url = changed_url(POSTGRES_URL, **changes)
    if not query:
        return url
    from sqlalchemy.engine import make_url

    return make_url(url).update_query_dict(query).render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def postgres_server() -> None:
    """Every PostgreSQL test needs the server: skip with the reason, or fail under CI=true."""
    require_server("postgres")


def _raw() -> Any:
    """A psycopg2 connection of the test itself (not loadbay's), in autocommit."""
    return raw_connection(application_name="loadbay_tests")


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Callable[..., loadbay.Pipeline]]:
    """``pg(name=..., dataset_name=None, upsert_syntax=None, credentials=POSTGRES_URL, pipelines_dir=None,
    **settings)``: a postgres pipeline on a fresh dataset, dropped with its staging twin afterwards."""
    datasets: list[str] = []

    def make(name: str = "pg_test", dataset_name: str | None = None, upsert_syntax: str | None = None,
             credentials: str = POSTGRES_URL, pipelines_dir: Path | None = None, **settings: Any) -> loadbay.Pipeline:
        dataset = dataset_name or f"ds_{uuid.uuid4().hex[:12]}"
        config = {"upsert_syntax": upsert_syntax} if upsert_syntax else {}
        destination = loadbay.destination("postgres", credentials=credentials, **config)
        settings.setdefault("retry_backoff_seconds", 0.01)
        p = loadbay.pipeline(name, destination=destination, dataset_name=dataset,
                             pipelines_dir=pipelines_dir or tmp_path / "p", **settings)
        datasets.append(p.dataset_name)
        return p

    yield make
    for dataset in set(datasets):
        drop_schemas(dataset, dataset + "_staging")


def live_columns(p: loadbay.Pipeline, table: str, schema: str | None = None) -> dict[str, tuple[Any, ...]]:
    """column → (data_type, character_maximum_length, numeric_precision, numeric_scale, datetime_precision)."""
    rows = query(p, "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale, "
                    "datetime_precision FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                    "ORDER BY ordinal_position", schema or p.dataset_name, table)
    return {r[0]: tuple(r[1:]) for r in rows}


def make_url_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    return make_url(url).password  # type: ignore[return-value]
