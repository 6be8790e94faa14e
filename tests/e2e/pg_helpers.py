"""Helpers shared by the PostgreSQL-specific tests: the tests' own connection, schema clean-up."""

from __future__ import annotations

from typing import Any

from destinations.testing.setups import POSTGRES_URL


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
