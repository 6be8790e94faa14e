"""``classify`` on real errors: each case of the destination's table of real errors (``setups.SETUPS`` ->
``error_tables``, or ``--lb-errors``) is provoked on its database through the SQL client, and must come out
of ``execute_sql`` (or connecting) as exactly the class the table names, keeping the driver's error as
``.orig`` and the statement as ``.statement``; the pure ``classify`` must agree, and the client must still
work afterwards (after a reconnect where the error cost it the connection). Retrying is the loader's
business: whether it retries what is transient is tested where the loader runs (tests/integration)."""

from __future__ import annotations

import re
from contextlib import ExitStack
from typing import Any

import pytest

import loadbay
from loadbay.common.exceptions import (DestinationError, DestinationKeyViolation, DestinationTerminalError,
                                       DestinationTransientError, DestinationUndefinedRelation)
from loadbay.destinations.testing.real_errors import ErrorScene, RealError

ERROR_CLASSES: dict[str, type[DestinationError]] = {
    "terminal": DestinationTerminalError,
    "transient": DestinationTransientError,
    "undefined_relation": DestinationUndefinedRelation,
    "key_violation": DestinationKeyViolation,
}


def test_real_error_is_classified(make_pipeline, destination_name, destination_setup, real_error: RealError | None,
                                  tmp_path):
    if real_error is None:
        pytest.skip(f"{destination_name} has no table of real errors: pass --lb-errors pkg.module:TABLE "
                    "(see loadbay.destinations.testing.real_errors)")
    expected = ERROR_CLASSES[real_error.expected]
    p = make_pipeline()
    with p.sql_client() as client, ExitStack() as opened:
        client.create_dataset()

        def connect(credentials: Any) -> Any:
            destination = loadbay.destination(destination_setup.reference, credentials=credentials,
                                              **destination_setup.config)
            other = loadbay.pipeline(p.pipeline_name, destination=destination, dataset_name=p.dataset_name,
                                     pipelines_dir=tmp_path / "connect")
            return opened.enter_context(other.sql_client())

        credentials = destination_setup.credentials
        if callable(credentials):  # a database per test
            credentials = credentials(tmp_path, p.pipeline_name)
        scene = ErrorScene(client=client, table=client.quoted("lb_errors"),
                           dataset=client.render(client.identifier(p.dataset_name)), credentials=credentials,
                           tmp_path=tmp_path, other=lambda: opened.enter_context(p.sql_client()), connect=connect,
                           later=opened.callback)
        client.execute_sql(scene.sql(destination_setup.errors.create))
        client.execute_sql(scene.sql("INSERT INTO {table} (a, u, v) VALUES (1, 1, 0), (2, 2, 0)"))

        with pytest.raises(DestinationError) as raised:
            real_error.run(scene)
        error = raised.value
        assert type(error) is expected, f"{real_error.name}: {type(error).__name__}: {error}"
        assert error.orig is not None and error.__cause__ is error.orig
        assert client.classify(error.orig) is expected  # the pure function, without the boundary
        assert re.search(real_error.message, str(error)), (real_error.message, str(error))
        if real_error.statement is not None:
            statement = scene.sql(real_error.statement)
            assert error.statement == statement
            assert f"while running: {statement}" in str(error)

        for template in real_error.after:
            client.execute_sql(scene.sql(template))
        opened.close()  # other connections go, with their locks; clean-ups run
        if real_error.reconnect:
            client.reconnect()
        assert client.execute_sql(scene.sql("SELECT count(*) FROM {table}")) == [(2,)]


def test_classify_leaves_other_errors_alone(make_pipeline):
    """A non-driver exception is no destination error: ``classify`` gives None and it surfaces as it is."""
    with make_pipeline().sql_client() as client:
        for exc in (ValueError("not a driver error"), KeyError("x"), RuntimeError("boom"), OSError("disk")):
            assert client.classify(exc) is None, exc
