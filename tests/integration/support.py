"""Small helpers shared by the destination-specific integration tests (tests/integration)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlglot import exp

import loadbay
from loadbay.destinations.testing.real_errors import changed_url
from loadbay.destinations.testing.real_errors import closed_port  # noqa: F401 - re-exported
from loadbay.destinations.testing.setups import MARIADB_URL

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


RETRY_LOGGED = "transient error, retry"


def run_while_held(run: Callable[[], Any], release: Callable[[], None], caplog: Any,
                   timeout: float = 30.0) -> tuple[Any, list[str]]:
    """``run()`` on a thread while something holds a lock it needs; ``release()`` once the loader has
    logged a transient retry (or after ``timeout``). Returns what ``run`` returned (or raised) and the
    retry messages, so a test asserts the run outlived the lock by retrying."""
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(run())
        except BaseException as exc:  # noqa: BLE001 - returned to the test, which asserts on it
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not any(RETRY_LOGGED in r.getMessage() for r in caplog.records):
            time.sleep(0.01)
    finally:
        release()
    thread.join(30)
    assert result, "the run did not end within 30 s of the lock's release"
    return result[0], [r.getMessage() for r in caplog.records if RETRY_LOGGED in r.getMessage()]


# -- the MariaDB server (the SQLAlchemy destination's MySQL family and the mysql destination) -------------
def new_dataset() -> str:
    return f"ds_{uuid.uuid4().hex[:12]}"


def maria_url(**changes: Any) -> str:
    """MARIADB_URL with some parts changed (username, password, port, database ...), password kept visible."""
    return changed_url(MARIADB_URL, **changes)


def maria_raw(autocommit: bool = True, **kwargs: Any) -> Any:
    """A pymysql connection of the test itself (not loadbay's)."""
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(MARIADB_URL)
    return pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
                           database=url.database, autocommit=autocommit, charset="utf8mb4", **kwargs)


def maria_execute(*statements: str) -> None:
    """Run ``statements`` on a connection of the test's own (autocommit), closed afterwards."""
    conn = maria_raw()
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def drop_maria_databases(*names: str) -> None:
    maria_execute(*(f"DROP DATABASE IF EXISTS `{name}`" for name in names))


def kill_maria_connection(connection_id: int) -> None:
    maria_execute(f"KILL CONNECTION {int(connection_id)}")


@contextmanager
def maria_user(password: str, grants: Sequence[str]) -> Iterator[str]:
    """A MariaDB user (``lb_user_<random>``@'%' with ``password``) holding ``grants`` (``"ALL PRIVILEGES ON
    *.*"``, ``"ALL PRIVILEGES ON `db`.*"``), dropped afterwards; yields its name."""
    user = f"lb_user_{uuid.uuid4().hex[:8]}"
    admin = maria_raw()
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            for grant in grants:
                cur.execute(f"GRANT {grant} TO `{user}`@'%'")
        yield user
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        admin.close()
