"""Small helpers shared by the destination-specific integration tests (tests/integration)."""

from __future__ import annotations

from sqlglot import exp

import loadbay
from loadbay.destinations.testing.real_errors import closed_port  # noqa: F401 - re-exported

SYSTEM_TABLES = frozenset({"_lb_loads", "_lb_version", "_lb_pipeline_state", "_lb_jobs"})
"""The tables loadbay keeps in every dataset beside the data."""


def exception_chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and every exception it was raised from or during, outermost first."""
    chain: list[BaseException] = []
    while exc is not None:
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


def live_tables(p: loadbay.Pipeline, dataset: str | None = None) -> set[str]:
    """Every table the database lists in ``dataset`` (default: the pipeline's), also those loadbay's schema
    does not know, such as a staging table left behind. SQLite has no information_schema, so a SQLAlchemy
    connection is asked through SQLAlchemy's inspector instead."""
    import sqlalchemy

    dataset = dataset or p.dataset_name
    with p.sql_client() as client:
        if not client.has_dataset(dataset):
            return set()
        connection = client.native_connection
        if isinstance(connection, sqlalchemy.engine.Connection):
            return set(sqlalchemy.inspect(connection).get_table_names(schema=dataset))
        listed = (exp.select("table_name").from_(exp.table_("tables", db="information_schema"))
                  .where(exp.column("table_schema").eq(exp.Literal.string(dataset))))
        return {row[0] for row in client.execute_sql(listed) or []}
