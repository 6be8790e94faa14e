"""Tables of real errors: what the conformance suite provokes on a destination's database to check its
``classify`` (conformance/test_error_classes.py).

An ``ErrorTable`` is a ``CREATE TABLE`` for the test table and a tuple of ``RealError`` cases. Each case runs
for real on a fresh dataset whose test table holds two rows, and names the class ``SqlClient.classify`` must
give: ``"terminal"``, ``"transient"``, ``"undefined_relation"`` or ``"key_violation"``. Most cases are statements; a case that
needs more (a second connection killing the first, a deadlock, credentials that cannot log in) has a
``provoke`` function. The built-in destinations' tables are in ``error_tables``; a third-party destination
passes its own with ``--lb-errors pkg.module:TABLE``, and without one its error test is skipped.

Like ``setups``, this module imports no database driver and nothing of loadbay beyond it.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from loadbay.destinations.sql_client import SqlClient

Kind = Literal["terminal", "transient", "undefined_relation", "key_violation"]
"""``DestinationTerminalError``, ``DestinationTransientError``, ``DestinationUndefinedRelation`` or
``DestinationKeyViolation`` (a repeated primary or unique key)."""


@dataclass
class ErrorScene:
    """What a case works with. Statements are templates: ``{table}`` is the test table, dataset-qualified and
    quoted, ``{dataset}`` the quoted dataset."""

    client: SqlClient
    """The client under test: open, on the dataset, its table holding rows (1, 1, 0) and (2, 2, 0) of (a, u, v)."""
    table: str
    dataset: str
    credentials: Any
    """The credentials the destination under test was configured with (to derive wrong ones from)."""
    tmp_path: Path
    other: Callable[[], SqlClient]
    """Another open connection to the same dataset; closed (its transaction rolled back) after the error."""
    connect: Callable[[Any], SqlClient]
    """An open client of the same destination with other credentials: raises where connecting fails."""
    later: Callable[..., Any]
    """``later(function, *args)``: clean-up after the error, before the connections of ``other`` close
    (the last registered runs first)."""

    def sql(self, template: str) -> str:
        return template.format(table=self.table, dataset=self.dataset)


@dataclass(frozen=True)
class RealError:
    """One error the database raises for real, and the class ``classify`` must give it."""

    name: str
    """Shown in the test id: ``test_real_error_is_classified[postgres-deadlock]``."""
    expected: Kind
    message: str
    """A regular expression the translated error's text must contain (the driver's own words or code)."""
    statement: str | None = None
    """The statement that fails, on the client under test, after everything below; its text must be kept as
    the error's ``.statement``. None where ``provoke`` raises by itself."""
    before: tuple[str, ...] = ()
    """Statements the client under test runs first (session settings, a transaction)."""
    other: tuple[str, ...] = ()
    """Statements a second connection runs next; it holds what they take until the error is raised."""
    provoke: Callable[[ErrorScene], None] | None = None
    """Runs after ``other``: sets the scene up for ``statement``, or raises the error itself."""
    after: tuple[str, ...] = ()
    """Statements the client under test runs after the error (a ROLLBACK)."""
    reconnect: bool = False
    """The error cost the client its connection: it reconnects before the test checks it still works."""

    def run(self, scene: ErrorScene) -> None:
        """Provoke the error (every step through the SQL clients, so it arrives translated)."""
        for template in self.before:
            scene.client.execute_sql(scene.sql(template))
        if self.other:
            other = scene.other()
            for template in self.other:
                other.execute_sql(scene.sql(template))
        if self.provoke is not None:
            self.provoke(scene)
        if self.statement is not None:
            scene.client.execute_sql(scene.sql(self.statement))


@dataclass(frozen=True)
class ErrorTable:
    """The real errors of one destination."""

    create: str
    """``CREATE TABLE {table} (...)`` with at least ``a`` (integer, NOT NULL), ``u`` (integer, UNIQUE) and ``v``
    (integer); further columns as the cases need them."""
    errors: tuple[RealError, ...]


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def changed_url(url: str, **changes: Any) -> str:
    """``url`` with some parts changed (``port=``, ``database=``, ``username=``, ``password=``), password shown."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(**changes).render_as_string(hide_password=False)
