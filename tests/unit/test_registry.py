"""The destination registry: built-in names, dotted paths, entry points, and DuckDB's default file."""

from __future__ import annotations

from pathlib import Path

import pytest

import loadbay
from loadbay.common.destination import Destination
from loadbay.common.exceptions import ConfigurationError, UnknownDestinationError
from loadbay.destinations import BUILTINS, ENTRY_POINT_GROUP, known_names, resolve_destination
from loadbay.destinations.duckdb import duckdb
from loadbay.destinations.duckdb.configuration import DuckDbCredentials
from loadbay.destinations.noop import noop
from tests.unit.custom_destination import MyDest

HELPER = "tests.unit.custom_destination"


def add_fake_distribution(root: Path, monkeypatch: pytest.MonkeyPatch, entry_points: str,
                          dist: str = "mydist") -> Path:
    """A ``<dist>-0.1.dist-info`` directory under ``root``, put on sys.path for importlib.metadata."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    return info


# -- built-in names -------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "cls"), [("duckdb", duckdb), ("noop", noop)])
def test_builtin_names_resolve_to_their_classes(name: str, cls: type[Destination]) -> None:
    dest = resolve_destination(name)
    assert type(dest) is cls
    assert dest.destination_type == name
    assert dest.destination_name == name
    assert type(loadbay.destination(name)) is cls


def test_builtins_are_listed() -> None:
    assert set(BUILTINS) == {"duckdb", "mysql", "noop", "postgres", "spark", "sqlalchemy"}
    assert {"duckdb", "mysql", "noop", "postgres", "spark", "sqlalchemy"} <= set(known_names())


def test_settings_are_passed_to_the_factory() -> None:
    dest = loadbay.destination("duckdb", credentials="/data/x.duckdb", destination_name="lake",
                               replace_strategy="truncate-and-insert")
    assert dest.destination_name == "lake"
    config = dest.configuration("p", "ds")
    assert config.credentials.database == str(Path("/data/x.duckdb").resolve())
    assert config.replace_strategy == "truncate-and-insert"


def test_unknown_setting_is_rejected_with_the_known_ones() -> None:
    with pytest.raises(TypeError, match="bogus") as exc_info:
        resolve_destination("duckdb", bogus=1)
    assert "replace_strategy" in str(exc_info.value)


def test_class_and_instance_references() -> None:
    made = resolve_destination(duckdb, credentials="x.duckdb")
    assert type(made) is duckdb
    assert resolve_destination(made) is made
    with pytest.raises(TypeError):
        resolve_destination(made, credentials="y.duckdb")
    with pytest.raises(TypeError):
        resolve_destination(42)  # type: ignore[arg-type]


# -- dotted paths ---------------------------------------------------------------------------------

@pytest.mark.parametrize("reference", [f"{HELPER}:MyDest", f"{HELPER}.MyDest"])
def test_dotted_path_resolves(reference: str) -> None:
    dest = resolve_destination(reference, destination_name="custom")
    assert type(dest) is MyDest
    assert dest.destination_type == "mydest"
    assert dest.destination_name == "custom"


def test_pipeline_runs_on_a_dotted_path_destination(tmp_path: Path) -> None:
    p = loadbay.pipeline("p", destination=f"{HELPER}:MyDest", pipelines_dir=tmp_path / "pipelines")
    assert type(p.destination) is MyDest
    info = p.run([{"a": 1}, {"a": 2}], table_name="t")
    assert info.destination_type == "mydest"
    assert info.row_counts == {"t": 2}
    assert not info.has_failed_jobs


@pytest.mark.parametrize("reference", [
    f"{HELPER}_missing:MyDest",            # no such module
    "no_such_package.module:Factory",      # no such package
    "no_such_package.module.Factory",      # dotted form, no such package
    f"{HELPER}:NoSuchClass",               # no such attribute
    f"{HELPER}:not_a_destination",         # a function
    f"{HELPER}:NotADestinationClass",      # a class that is not a Destination
    f"{HELPER}:",                          # a module
    "os.path:join",
    ":MyDest",
    ".MyDest",
    "..relative:MyDest",
])
def test_bad_dotted_path_raises_unknown_destination(reference: str) -> None:
    with pytest.raises(UnknownDestinationError) as exc_info:
        resolve_destination(reference)
    assert exc_info.value.reference == reference
    assert repr(reference) in str(exc_info.value)
    assert "duckdb" in str(exc_info.value) and "noop" in str(exc_info.value)


# -- unknown names --------------------------------------------------------------------------------

def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(UnknownDestinationError) as exc_info:
        resolve_destination("nosuchdest")
    message = str(exc_info.value)
    assert isinstance(exc_info.value, ConfigurationError)
    assert "'nosuchdest'" in message
    assert "Known destinations: duckdb, mysql, noop, postgres, spark, sqlalchemy" in message
    assert ENTRY_POINT_GROUP in message


def test_pipeline_with_unknown_destination_fails(tmp_path: Path) -> None:
    with pytest.raises(UnknownDestinationError, match="nosuchdest"):
        loadbay.pipeline("p", destination="nosuchdest", pipelines_dir=tmp_path)


# -- entry points ---------------------------------------------------------------------------------

def test_entry_point_destination_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "mydest" not in known_names()
    with pytest.raises(UnknownDestinationError):
        resolve_destination("mydest")
    add_fake_distribution(tmp_path / "site", monkeypatch,
                          f"[{ENTRY_POINT_GROUP}]\nmydest = {HELPER}:MyDest\n")
    dest = resolve_destination("mydest", destination_name="ep")
    assert type(dest) is MyDest
    assert dest.destination_name == "ep"
    assert "mydest" in known_names()
    with pytest.raises(UnknownDestinationError, match="duckdb, mydest, mysql, noop"):
        resolve_destination("stillunknown")


def test_pipeline_runs_on_an_entry_point_destination(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_fake_distribution(tmp_path / "site", monkeypatch, f"[{ENTRY_POINT_GROUP}]\nmydest = {HELPER}:MyDest\n")
    info = loadbay.pipeline("p", destination="mydest", pipelines_dir=tmp_path / "pipelines").run(
        [{"a": 1}], table_name="t")
    assert info.destination_name == "mydest"
    assert info.row_counts == {"t": 1}


def test_entry_point_to_a_non_destination_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_fake_distribution(tmp_path / "site", monkeypatch,
                          f"[{ENTRY_POINT_GROUP}]\nnotdest = {HELPER}:not_a_destination\n")
    with pytest.raises(UnknownDestinationError, match="not a Destination class"):
        resolve_destination("notdest")


def test_entry_point_cannot_shadow_a_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_fake_distribution(tmp_path / "site", monkeypatch, f"[{ENTRY_POINT_GROUP}]\nduckdb = {HELPER}:MyDest\n")
    assert type(resolve_destination("duckdb")) is duckdb


def test_entry_points_of_other_groups_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    add_fake_distribution(tmp_path / "site", monkeypatch, f"[other.group]\nmydest = {HELPER}:MyDest\n")
    assert "mydest" not in known_names()
    with pytest.raises(UnknownDestinationError):
        resolve_destination("mydest")


# -- DuckDB's database file -----------------------------------------------------------------------

def test_duckdb_without_credentials_creates_pipeline_name_file_in_cwd(tmp_path: Path) -> None:
    pipelines_dir = tmp_path / "pipelines"
    p = loadbay.pipeline("p", destination="duckdb", pipelines_dir=pipelines_dir)
    expected = Path.cwd() / "p.duckdb"
    assert not expected.exists()
    info = p.run([{"a": 1}], table_name="t")
    info.raise_on_failed_jobs()
    assert expected.is_file()
    assert p.config.credentials.database == str(expected.resolve())
    assert str(expected.resolve()) in str(info)
    assert not list(pipelines_dir.rglob("*.duckdb"))
    assert not list(Path.home().rglob("*.duckdb"))
    with p.sql_client() as client:
        assert client.execute_sql("SELECT a FROM t") == [(1,)]


def test_duckdb_default_file_is_absolute_and_stays_put_after_chdir(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first_cwd = Path.cwd()
    p = loadbay.pipeline("chdir_pipe", destination="duckdb", pipelines_dir=tmp_path / "pipelines")
    database = p.config.credentials.database
    assert Path(database).is_absolute()
    assert database == str((first_cwd / "chdir_pipe.duckdb").resolve())
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    p.run([{"a": 1}], table_name="t").raise_on_failed_jobs()
    assert (first_cwd / "chdir_pipe.duckdb").is_file()
    assert not (other / "chdir_pipe.duckdb").exists()


@pytest.mark.parametrize(("credentials", "expected"), [
    ("rel.duckdb", "CWD/rel.duckdb"),
    ("duckdb:///rel.duckdb", "CWD/rel.duckdb"),
    ("duckdb:////data/abs.duckdb", "/data/abs.duckdb"),
    ("/data/abs.duckdb", "/data/abs.duckdb"),
    (":memory:", ":memory:"),
    ("duckdb:///:memory:", ":memory:"),
])
def test_duckdb_credentials_strings(credentials: str, expected: str) -> None:
    database = loadbay.destination("duckdb", credentials=credentials).configuration("p", "ds").credentials.database
    if expected.startswith("CWD/"):
        expected = str((Path.cwd() / expected[4:]).resolve())
    elif expected != ":memory:":
        expected = str(Path(expected).resolve())
    assert database == expected


def test_one_duckdb_destination_gives_each_pipeline_its_own_default_file(tmp_path: Path) -> None:
    dest = loadbay.destination("duckdb")
    a = loadbay.pipeline("a", destination=dest, pipelines_dir=tmp_path / "pl")
    b = loadbay.pipeline("b", destination=dest, pipelines_dir=tmp_path / "pl")
    assert a.config.credentials.database == str((Path.cwd() / "a.duckdb").resolve())
    assert b.config.credentials.database == str((Path.cwd() / "b.duckdb").resolve())


def test_explicit_duckdb_credentials_instance_without_database_defaults_per_pipeline() -> None:
    creds = DuckDbCredentials()
    dest = loadbay.destination("duckdb", credentials=creds)
    a = dest.configuration("a", "ds").credentials.database
    b = dest.configuration("b", "ds").credentials.database
    assert a == str((Path.cwd() / "a.duckdb").resolve())
    assert b == str((Path.cwd() / "b.duckdb").resolve())
    assert creds.database is None  # the caller's object is left alone
