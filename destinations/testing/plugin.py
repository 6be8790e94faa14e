"""pytest plugin of the conformance suite: options, the destination under test, isolated test runs.

Check any destination with one command (the suite is collected from the installed package)::

    pytest --pyargs loadbay.destinations.testing -p loadbay.destinations.testing.plugin \\
        --lb-destination mypkg.presto:presto \\
        --lb-credentials postgresql://postgres@127.0.0.1:5432/test

Options:

``--lb-destination REF``
    The destination under test: a ``pkg.module:Factory`` path, an entry-point name or a built-in
    name. Without it the built-in setups of ``loadbay.destinations.testing.setups.SETUPS`` run (those
    ``in_default_run``: Spark only when ``LOADBAY_TEST_SPARK`` is set).
``--lb-credentials VALUE``
    Its credentials. A URL with a host and port is a server: it is probed over TCP once (an
    unreachable server skips the tests, or fails them under ``CI=true``) and every test's datasets
    are dropped afterwards. ``{tmp_path}`` and ``{pipeline_name}`` placeholders make a database per
    test, e.g. ``--lb-credentials "{tmp_path}/{pipeline_name}.duckdb"``.
``--lb-errors pkg.module:TABLE``
    The destination's table of real errors (a ``real_errors.ErrorTable``) for the error-class test;
    without it that test is skipped for ``--lb-destination``.
``--lb-setup NAME``
    Run only these built-in setups (repeatable), e.g. ``--lb-setup postgres``.
``--lb-data-dir PATH``
    The sample data folder (default: $LOADBAY_SHARED_DATA, else ``../shared/data`` beside the checkout).

Fixtures: ``make_pipeline``, ``destination_name``, ``destination_setup``, ``destination_capabilities``,
``data_dir`` and the autouse ``isolated_env`` (own working directory and HOME, no loadbay
environment variables). At import this module touches neither loadbay nor any database driver.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from loadbay.destinations.testing.real_errors import ErrorTable
from loadbay.destinations.testing.setups import (SETUPS, DestinationSetup, activate, active, require_server,
                                                 sample_data_dir, setup_from_options, setup_name)

if TYPE_CHECKING:
    import loadbay
    from loadbay.common.capabilities import DestinationCapabilities

pytest.register_assert_rewrite("loadbay.destinations.testing.conformance.helpers")

# The folder of ``loadbay.destinations``. In a source checkout it is ``destinations/`` at the repository
# top, a name pytest would import it under when collecting by path; the collectors below import every
# module and package under it by its real name instead, so no top-level ``destinations`` module appears.
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_PACKAGE_NAME = __name__.rsplit(".", 2)[0]


def _package_name(path: Path) -> str | None:
    """``loadbay.destinations.x.y`` for a file or package folder under ``_PACKAGE_DIR``, else None."""
    resolved = path.resolve()
    if resolved != _PACKAGE_DIR and _PACKAGE_DIR not in resolved.parents:
        return None
    parts = list(resolved.relative_to(_PACKAGE_DIR).parts)
    if parts and parts[-1].endswith(".py"):
        parts[-1] = parts[-1][:-3]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join((_PACKAGE_NAME, *parts))


def _import(name: str, config: pytest.Config) -> Any:
    module = importlib.import_module(name)
    config.pluginmanager.consider_module(module)
    return module


class _NamedModule(pytest.Module):
    def _getobj(self) -> Any:
        return _import(str(_package_name(self.path)), self.config)


class _NamedPackage(pytest.Package):
    def setup(self) -> None:  # pytest's own setup imports __init__.py by path; this one only by name
        _import(str(_package_name(self.path)), self.config)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if _package_name(module_path) is None:
        return None
    return _NamedModule.from_parent(parent, path=module_path)


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _package_name(path) is None or not (path / "__init__.py").is_file():
        return None
    return _NamedPackage.from_parent(parent, path=path)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("loadbay", "loadbay destination conformance suite")
    group.addoption("--lb-destination", metavar="REF",
                    help="destination under test: 'pkg.module:Factory', an entry-point name or a built-in name "
                         "(default: every built-in setup)")
    group.addoption("--lb-credentials", metavar="VALUE",
                    help="its credentials; a URL with host and port is a server (probed, datasets dropped); "
                         "'{tmp_path}' and '{pipeline_name}' placeholders make a database per test")
    group.addoption("--lb-errors", metavar="REF",
                    help="the destination's table of real errors, 'pkg.module:TABLE' (an ErrorTable); "
                         "without it the error-class test skips")
    group.addoption("--lb-setup", metavar="NAME", action="append", default=[],
                    help=f"run only this built-in setup (repeatable; known: {', '.join(SETUPS)})")
    group.addoption("--lb-data-dir", metavar="PATH",
                    help="sample data folder (default: $LOADBAY_SHARED_DATA, else ../shared/data beside the checkout)")


def pytest_configure(config: pytest.Config) -> None:
    reference = config.getoption("lb_destination")
    credentials = config.getoption("lb_credentials")
    chosen = config.getoption("lb_setup")
    if reference and chosen:
        raise pytest.UsageError("--lb-setup picks built-in setups; it cannot be combined with --lb-destination")
    errors = config.getoption("lb_errors")
    if credentials is not None and not reference:
        raise pytest.UsageError("--lb-credentials needs --lb-destination")
    if errors is not None and not reference:
        raise pytest.UsageError("--lb-errors needs --lb-destination")
    unknown = sorted(set(chosen) - set(SETUPS))
    if unknown:
        raise pytest.UsageError(f"unknown --lb-setup {unknown}; known: {sorted(SETUPS)}")
    setups: dict[str, DestinationSetup]
    if reference:
        setups = {setup_name(reference): setup_from_options(reference, credentials, _error_table(errors))}
    else:
        setups = {name: SETUPS[name] for name in (chosen or [n for n, s in SETUPS.items() if s.in_default_run])}
    data_dir = config.getoption("lb_data_dir")
    activate(setups, sample_data=Path(data_dir) if data_dir else None)


def _error_table(reference: str | None) -> ErrorTable | None:
    """The ``ErrorTable`` that ``--lb-errors pkg.module:NAME`` names."""
    if reference is None:
        return None
    module, _, name = reference.partition(":")
    try:
        table = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise pytest.UsageError(f"--lb-errors {reference}: {exc}") from exc
    if not isinstance(table, ErrorTable):
        raise pytest.UsageError(f"--lb-errors {reference} is a {type(table).__name__}, not an ErrorTable")
    return table


def pytest_report_header(config: pytest.Config) -> str:
    return f"loadbay conformance setups: {', '.join(active())}; sample data: {sample_data_dir()}"


@pytest.hookimpl(tryfirst=True)  # the setup comes first in test ids: [postgres-upsert]
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses ``destination_name`` (directly or through ``make_pipeline``) runs once per setup;
    one that takes ``real_error`` once per case of each setup's table of real errors (None without a table)."""
    if "real_error" in metafunc.fixturenames:
        cases = [(name, case) for name, setup in active().items()
                 for case in (setup.errors.errors if setup.errors else (None,))]
        ids = [name if case is None else f"{name}-{case.name}" for name, case in cases]
        metafunc.parametrize(("destination_name", "real_error"), cases, ids=ids, indirect=["destination_name"])
        return
    if "destination_name" in metafunc.fixturenames:
        names = list(active())
        metafunc.parametrize("destination_name", names, ids=names, indirect=True)


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
    """The sample data folder; fails the test when it is missing."""
    path = sample_data_dir()
    if not path.exists():
        pytest.fail(f"sample data not found at {path}; set LOADBAY_SHARED_DATA or pass --lb-data-dir")
    return path


@pytest.fixture
def destination_name(request: pytest.FixtureRequest) -> str:
    """Name of the setup under test (``duckdb``, ``postgres``, or the one ``--lb-destination`` names)."""
    return str(request.param)


@pytest.fixture
def destination_setup(destination_name: str) -> DestinationSetup:
    """The ``DestinationSetup`` of ``destination_name``: reference, credentials, probe."""
    return active()[destination_name]


@pytest.fixture
def destination_capabilities(destination_setup: DestinationSetup, tmp_path: Path) -> DestinationCapabilities:
    """What the configured destination under test can do (resolved without connecting)."""
    import loadbay

    p = loadbay.pipeline("capabilities", destination=destination_setup.destination(tmp_path, "capabilities"),
                         dataset_name="capabilities", pipelines_dir=tmp_path / "capabilities")
    return p.capabilities


@pytest.fixture
def make_pipeline(destination_name: str, destination_setup: DestinationSetup,
                  tmp_path: Path) -> Iterator[Callable[..., loadbay.Pipeline]]:
    """``make_pipeline(name="p", dataset_name=None, destination_settings=None, **settings)``: a pipeline on the
    destination under test, with its own dataset (unique per test) and pipelines_dir under tmp_path;
    ``destination_settings`` (``{"create_indexes": True}``) over the setup's own (``credentials`` too)."""
    import loadbay
    from loadbay.destinations.testing.conformance.helpers import drop_datasets

    made: list[loadbay.Pipeline] = []
    require_server(destination_name)

    def make(name: str = "test_pipeline", dataset_name: str | None = None,
             destination_settings: dict[str, Any] | None = None, **settings: Any) -> loadbay.Pipeline:
        dataset = dataset_name or f"ds_{uuid.uuid4().hex[:10]}"
        destination = destination_setup.destination(tmp_path, name, **(destination_settings or {}))
        settings.setdefault("retry_backoff_seconds", 0.01)
        p = loadbay.pipeline(name, destination=destination, dataset_name=dataset,
                             pipelines_dir=tmp_path / "pipelines", **settings)
        made.append(p)
        return p

    yield make
    if not destination_setup.database_per_test:  # datasets on a server outlive the test otherwise
        for p in made:
            drop_datasets(p)
