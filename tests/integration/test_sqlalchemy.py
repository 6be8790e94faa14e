"""SQLAlchemy destination on a real SQLite file and the real MariaDB server: capabilities derived from the
dialect, long identifiers, engine options, credentials from every source (password never shown), the
executemany job's value checks, and unqualified names resolving to the pipeline's own dataset.

Error classification is the conformance suite's (test_error_classes.py), retries in test_sqlalchemy_errors.py,
data types and dispositions in test_sqlalchemy_data.py. Every test uses its own dataset and drops it (and its
``_staging`` twin) afterwards; nothing is mocked.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

import loadbay
from loadbay.common.exceptions import DestinationTransientError, LoadbayError, LoadJobFailed
from loadbay.destinations.sqlalchemy.capabilities import SQLITE_MAX_VARIABLES
from loadbay.destinations.testing.conformance.helpers import file_holding, normalize_only, query, table_columns
from loadbay.destinations.testing.setups import MARIADB_URL
from tests.integration.sqlalchemy_support import (SYSTEM_TABLES, backend, closed_port, drop_maria_databases,  # noqa: F401
                                                  lite, live_tables, maria, maria_raw, maria_url, n_rows, new_dataset,
                                                  sa, sqlite_url, tbl)
from tests.integration.support import exception_chain, maria_user


def _write_toml(name: str, text: str) -> Path:
    """``./.loadbay/<name>`` in the test's own working directory (see the ``isolated_env`` fixture)."""
    folder = Path.cwd() / ".loadbay"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# -- 1. capabilities from the dialect -------------------------------------------------------------------

def test_sqlite_capabilities(lite):
    caps = lite().capabilities
    assert caps.sqlglot_dialect == "sqlite"
    assert caps.max_parameters_per_statement == SQLITE_MAX_VARIABLES
    assert SQLITE_MAX_VARIABLES == (32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999)
    assert caps.supports_ddl_transactions is True
    assert caps.supports_truncate is False
    assert caps.is_dataset_a_schema is False  # a dataset is an attached database file
    assert caps.supported_loader_file_formats == ("jsonl", "parquet", "arrow")
    assert caps.preferred_loader_file_format == "arrow"  # Arrow makes its parameters a column at a time
    assert "upsert" in caps.merge_strategies
    assert caps.max_identifier_length >= 1000  # SQLite has no practical limit


def test_mysql_capabilities_without_connecting(tmp_path):
    """Derived from the URL's dialect alone: an unreachable server still has capabilities."""
    for url in (maria_url(host="127.0.0.1", port=closed_port()), "mariadb+pymysql://u@127.0.0.1:1/x"):
        p = loadbay.pipeline("caps", destination=loadbay.destination("sqlalchemy", credentials=url),
                             dataset_name="d", pipelines_dir=tmp_path / "p")
        caps = p.capabilities
        assert caps.sqlglot_dialect == "mysql"
        assert caps.max_identifier_length == 64
        assert caps.supports_ddl_transactions is False
        assert caps.is_dataset_a_schema is False  # a dataset is a database
        assert caps.naive_timestamps is True
        assert caps.string_literal_escape == "backslash"
        assert caps.supported_loader_file_formats == ("jsonl", "parquet", "insert_values")
        assert "upsert" in caps.merge_strategies
        assert caps.max_parameters_per_statement == 65535


def test_other_dialects_capabilities(tmp_path):
    def caps(url: str) -> Any:
        return loadbay.pipeline("caps", destination=loadbay.destination("sqlalchemy", credentials=url),
                                dataset_name="d", pipelines_dir=tmp_path / "p").capabilities

    pg = caps("postgresql+psycopg2://u@127.0.0.1:1/x")
    assert (pg.sqlglot_dialect, pg.max_identifier_length, pg.supports_ddl_transactions) == ("postgres", 63, True)
    mssql = caps("mssql+pyodbc://u@127.0.0.1:1/x")  # untested dialect: sqlglot's name, the dialect's own limit
    assert mssql.sqlglot_dialect == "mssql"
    assert mssql.max_identifier_length == 128
    assert mssql.merge_strategies == ("delete-insert",)


def test_upsert_syntax_follows_the_dialect(sa, backend):
    p = sa()
    client = p.destination.client(p.config)
    assert client.upsert_syntax() == {"sqlite": "on_conflict", "mariadb": "on_duplicate_key"}[backend]
    assert client.sql_client.family == {"sqlite": "sqlite", "mariadb": "mysql"}[backend]


def test_mariadb_scheme_url_loads(maria):
    """``mariadb+pymysql://`` (SQLAlchemy's mariadb dialect) works like ``mysql+pymysql://``."""
    p = maria(credentials=MARIADB_URL.replace("mysql+pymysql://", "mariadb+pymysql://", 1))
    assert p.capabilities.max_identifier_length == 64
    p.run([{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], table_name="t", write_disposition={
        "disposition": "merge", "strategy": "upsert"}, primary_key="id").raise_on_failed_jobs()
    p.run([{"id": 2, "v": "B"}], table_name="t", write_disposition={"disposition": "merge", "strategy": "upsert"},
          primary_key="id").raise_on_failed_jobs()
    assert query(p, f"SELECT id, v FROM {tbl(p, 't')} ORDER BY id") == [(1, "a"), (2, "B")]


# -- 2. long identifiers on MariaDB ------------------------------------------------------------------------

LONG_TABLE = "events_" + "t" * 93
LONG_COLUMN = "measurement_" + "c" * 88


def test_mariadb_long_names_are_shortened_to_64_and_stable(maria, tmp_path):
    assert len(LONG_TABLE) == 100 and len(LONG_COLUMN) == 100
    p = maria()
    p.run([{"id": 1, LONG_COLUMN: "first", "items": [1, 2]}], table_name=LONG_TABLE).raise_on_failed_jobs()
    tables = live_tables(p) - SYSTEM_TABLES
    assert len(tables) == 2, tables
    assert all(len(t) <= 64 for t in tables), tables
    child = next(t for t in tables if "_lb_parent_id" in table_columns(p, t))
    root = (tables - {child}).pop()
    assert root.startswith("events_ttt") and child.startswith("events_ttt")
    long_cols = [c for c in table_columns(p, root) if c.startswith("measurement_")]
    assert len(long_cols) == 1
    column = long_cols[0]
    assert len(column) <= 64 and column != LONG_COLUMN[:64]  # shortened with a hash tag, not cut

    # again from the same pipeline, then from a pipeline with no local state (nothing to restore from disk)
    p.run([{"id": 2, LONG_COLUMN: "second", "items": [3]}], table_name=LONG_TABLE).raise_on_failed_jobs()
    fresh = maria(name="other", dataset_name=p.dataset_name, pipelines_dir=tmp_path / "elsewhere")
    fresh.run([{"id": 3, LONG_COLUMN: "third"}], table_name=LONG_TABLE).raise_on_failed_jobs()
    assert live_tables(p) - SYSTEM_TABLES == tables
    assert [c for c in table_columns(p, root) if c.startswith("measurement_")] == [column]
    assert query(p, f"SELECT id, `{column}` FROM `{p.dataset_name}`.`{root}` ORDER BY id") == [
        (1, "first"), (2, "second"), (3, "third")]
    assert query(p, f"SELECT count(*) FROM `{p.dataset_name}`.`{child}`") == [(3,)]


def test_sqlite_keeps_long_names_whole(lite):
    p = lite()
    p.run([{"id": 1, LONG_COLUMN: "x"}], table_name=LONG_TABLE).raise_on_failed_jobs()
    assert live_tables(p) - SYSTEM_TABLES == {LONG_TABLE}
    assert LONG_COLUMN in table_columns(p, LONG_TABLE)


def test_mariadb_long_dataset_name_keeps_staging_apart(maria):
    p = maria(dataset_name=f"ds_{uuid.uuid4().hex[:12]}_" + "d" * 90)
    assert len(p.dataset_name) <= 64 - len("_staging")
    staging = p.config.staging_dataset_name
    assert len(staging) <= 64 and staging != p.dataset_name
    hints = {"table_name": "t", "write_disposition": "merge", "primary_key": "id"}
    p.run([{"id": 1, "v": 0}], **hints).raise_on_failed_jobs()
    p.run([{"id": 1, "v": 1}, {"id": 2, "v": 1}], **hints).raise_on_failed_jobs()
    assert query(p, f"SELECT id, v FROM {tbl(p, 't')} ORDER BY id") == [(1, 1), (2, 1)]


# -- 3. engine options ------------------------------------------------------------------------------------

def test_mariadb_engine_args_from_arguments_reach_the_engine(maria):
    marker = uuid.uuid4().int % 100000
    p = maria(engine_args={"pool_size": 2, "max_overflow": 1,
                           "connect_args": {"init_command": f"SET @lb_marker = {marker}"}})
    assert p.config.engine_args["pool_size"] == 2
    with p.sql_client() as client:
        assert client.engine.pool.size() == 2
        assert client.engine.pool._max_overflow == 1
        assert client.execute_sql("SELECT @lb_marker") == [(marker,)]  # connect_args reached pymysql
    p.run([{"id": 1}], table_name="t").raise_on_failed_jobs()
    assert n_rows(p, "t") == 1


def test_sqlite_engine_args_from_arguments_reach_the_engine(lite):
    p = lite(engine_args={"pool_size": 2, "connect_args": {"timeout": 7}})
    with p.sql_client() as client:
        assert client.engine.pool.size() == 2
        assert client.execute_sql("PRAGMA busy_timeout") == [(7000,)]  # sqlite3's timeout, in ms
    other = lite(engine_args={"connect_args": {"timeout": 3}})
    with other.sql_client() as client:  # different options, different engine
        assert client.execute_sql("PRAGMA busy_timeout") == [(3000,)]


def test_mariadb_engine_args_and_credentials_from_config_toml(maria):
    _write_toml("config.toml", f"""
[destination.sqlalchemy]
credentials = "{MARIADB_URL}"
engine_args = {{ pool_size = 3, connect_args = {{ init_command = "SET @lb_marker = 4242" }} }}
""")
    p = maria(credentials=None)
    assert p.config.engine_args == {"pool_size": 3, "connect_args": {"init_command": "SET @lb_marker = 4242"}}
    with p.sql_client() as client:
        assert client.engine.pool.size() == 3
        assert client.execute_sql("SELECT @lb_marker") == [(4242,)]
    p.run([{"id": 1}], table_name="t").raise_on_failed_jobs()
    assert n_rows(p, "t") == 1
    # an explicit argument wins over the toml
    explicit = maria(credentials=None, engine_args={"pool_size": 1})
    with explicit.sql_client() as client:
        assert client.engine.pool.size() == 1
        assert client.execute_sql("SELECT @lb_marker") == [(None,)]


def test_sqlite_engine_args_for_a_named_destination_from_config_toml(lite, tmp_path):
    db = tmp_path / "warehouse.db"
    _write_toml("config.toml", f"""
[destination.warehouse]
credentials = "sqlite:///{db.as_posix()}"

[destination.sqlalchemy]
engine_args = {{ pool_size = 4, connect_args = {{ timeout = 9 }} }}
""")
    p = lite(credentials=None, destination_name="warehouse")
    with p.sql_client() as client:
        assert client.engine.pool.size() == 4
        assert client.execute_sql("PRAGMA busy_timeout") == [(9000,)]
    p.run([{"id": 1}, {"id": 2}], table_name="t").raise_on_failed_jobs()
    # the dataset is a file beside the main database file
    assert (tmp_path / f"warehouse__{p.dataset_name}.db").exists()
    with sqlite3.connect(tmp_path / f"warehouse__{p.dataset_name}.db") as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)


# -- 4. credentials --------------------------------------------------------------------------------------

def test_sqlite_credentials_from_config_toml(lite, tmp_path):
    db = tmp_path / "from_toml.db"
    _write_toml("config.toml", f'[destination.sqlalchemy]\ncredentials = "sqlite:///{db.as_posix()}"\n')
    p = lite(credentials=None)
    assert p.config.credentials.database == str(db)
    info = p.run([{"id": 1}], table_name="t")
    info.raise_on_failed_jobs()
    assert info.location == f"sqlite:///{db.as_posix()}"
    assert (tmp_path / f"from_toml__{p.dataset_name}.db").exists()
    assert n_rows(p, "t") == 1


def test_mariadb_credentials_from_env(maria, monkeypatch):
    monkeypatch.setenv("DESTINATION__SQLALCHEMY__CREDENTIALS", MARIADB_URL)
    _write_toml("config.toml", '[destination.sqlalchemy]\ncredentials = "sqlite:///never_used.db"\n')
    p = maria(credentials=None)  # env beats toml
    assert p.config.credentials.drivername == "mysql+pymysql"
    p.run([{"id": 1}], table_name="t").raise_on_failed_jobs()
    assert n_rows(p, "t") == 1
    assert not (Path.cwd() / "never_used.db").exists()


def test_mariadb_credentials_as_fields_in_secrets_toml(maria):
    from sqlalchemy.engine import make_url

    url = make_url(MARIADB_URL)
    _write_toml("secrets.toml", f"""
[destination.sqlalchemy.credentials]
drivername = "{url.drivername}"
host = "{url.host}"
port = {url.port or 3306}
username = "{url.username}"
database = "{url.database}"
""")
    p = maria(credentials=None)
    assert p.config.credentials.port == (url.port or 3306)
    p.run([{"id": 1}], table_name="t").raise_on_failed_jobs()
    assert n_rows(p, "t") == 1


@pytest.fixture
def password_user() -> Any:
    """A MariaDB user with a password full of URL specials; dropped afterwards."""
    secret = "Pw@1:x/y%z?#&" + uuid.uuid4().hex[:6]
    with maria_user(secret, ["ALL PRIVILEGES ON *.*"]) as user:
        yield user, secret


def test_mariadb_password_in_url_is_used_and_never_shown(maria, password_user, caplog):
    from urllib.parse import quote

    user, secret = password_user
    url = maria_url(username=user, password=secret)
    assert secret not in url and "%40" in url  # the URL carries it escaped ("@" -> "%40")
    p = maria(credentials=url)
    info = p.run([{"id": 1}], table_name="t")
    info.raise_on_failed_jobs()
    credentials = p.config.credentials
    assert credentials.password == secret  # parsed and unescaped, and the server accepted it
    assert query(p, "SELECT CURRENT_USER()")[0][0].startswith(user + "@")
    shown = [str(info), repr(info), info.location, repr(credentials), str(credentials), credentials.location(),
             repr(p), repr(p.config)]
    for text in shown:
        assert secret not in text and quote(secret, safe="") not in text, text
    assert "***" in info.location and user in info.location

    # the same credentials against a closed port: retried, given up, and still nothing shows the password
    caplog.set_level(logging.DEBUG)
    closed = maria(credentials=maria_url(username=user, password=secret, host="127.0.0.1", port=closed_port()))
    with pytest.raises(LoadbayError) as err:
        closed.run([{"id": 1}], table_name="t")
    chain = exception_chain(err.value)
    assert any(isinstance(e, DestinationTransientError) for e in chain), chain
    texts = [str(e) for e in chain] + [repr(e) for e in chain] + [r.getMessage() for r in caplog.records]
    for text in texts:
        assert secret not in text and quote(secret, safe="") not in text, text


def test_mariadb_password_from_env_field_overrides_the_url(maria, password_user, monkeypatch):
    user, secret = password_user
    monkeypatch.setenv("DESTINATION__SQLALCHEMY__CREDENTIALS", maria_url(username=user, password="wrong"))
    monkeypatch.setenv("DESTINATION__SQLALCHEMY__CREDENTIALS__PASSWORD", secret)
    p = maria(credentials=None)
    info = p.run([{"id": 1}], table_name="t")
    info.raise_on_failed_jobs()
    assert p.config.credentials.password == secret
    assert secret not in str(info) and "wrong" not in str(info)


# -- 5. the executemany job refuses values that do not fit their column -------------------------------------

MARKER = 987654321
EXECUTEMANY_ONLY: dict[str, dict[str, Any]] = {
    "sqlite": {}, "mariadb": {"engine_args": {"connect_args": {"local_infile": False}}}}
"""Settings that load jsonl with the executemany job: SQLite always does; MariaDB does where LOAD DATA LOCAL is
refused (here by the client), and these tests are about that fallback's own checks."""


def _corrupt_jsonl(path: Path, old: Any, new_literal: str) -> None:
    """Put the JSON literal ``new_literal`` where ``old`` stood (jsonl has no framing to keep)."""
    text = path.read_text(encoding="utf-8")
    assert text.count(str(old)) == 1
    path.write_text(text.replace(str(old), new_literal), encoding="utf-8")


@pytest.mark.parametrize("literal,shown", [('"abcdefg"', "'abcdefg'"), ("1.5", "1.5"), ("true", "True"),
                                           ('{"a": 1}', "{'a': 1}"), ('"12"', "'12'")],
                         ids=["text", "float", "bool", "object", "numeric_text"])
def test_corrupted_bigint_value_fails_terminally_naming_file_table_and_column(sa, backend, literal, shown):
    p = sa(**EXECUTEMANY_ONLY[backend])
    p.run([{"id": 0, "n": 1}], table_name="t").raise_on_failed_jobs()
    package = normalize_only(p, [{"id": 1, "n": 5}, {"id": 2, "n": MARKER}, {"id": 3, "n": 7}], "t",
                             loader_file_format="jsonl")
    job = file_holding(package, "n", MARKER)
    assert job.file_format == "jsonl"
    _corrupt_jsonl(job.path, MARKER, literal)

    info = p.run()
    assert info.has_failed_jobs
    [failed] = info.load_packages[0].failed_jobs
    first_line = failed.error.splitlines()[0]
    assert first_line == f"file {job.path.name}, line 2: table 't' column 'n': {shown} is not a bigint"
    with pytest.raises(LoadJobFailed):
        info.raise_on_failed_jobs()
    # nothing of the file was loaded (the rows before the bad one neither), the package waits on disk
    assert query(p, f"SELECT id, n FROM {tbl(p, 't')} ORDER BY id") == [(0, 1)]
    assert p.pending_packages() == [package.load_id]


def test_bad_value_in_a_later_batch_names_its_line_and_rolls_back_the_whole_file(sa, backend):
    p = sa(**EXECUTEMANY_ONLY[backend])
    n = 7000  # more than one executemany batch (5000 rows at most)
    data = [{"id": i, "n": i} for i in range(n)]
    data[6500]["n"] = MARKER
    package = normalize_only(p, data, "t", loader_file_format="jsonl")
    job = file_holding(package, "n", MARKER)
    _corrupt_jsonl(job.path, MARKER, '"bad"')
    info = p.run()
    [failed] = info.load_packages[0].failed_jobs
    assert failed.error.startswith(f"file {job.path.name}, line 6501: table 't' column 'n': 'bad' is not a bigint")
    assert query(p, f"SELECT count(*) FROM {tbl(p, 't')}") == [(0,)]  # the first batch was rolled back too


@pytest.mark.parametrize("sa_backend", [
    "sqlite",
    "mariadb"])
def test_integer_beyond_bigint_fails_the_job_terminally(request, sa_backend):
    p = request.getfixturevalue("lite" if sa_backend == "sqlite" else "maria")(**EXECUTEMANY_ONLY[sa_backend])
    p.run([{"id": 0, "n": 1}], table_name="t").raise_on_failed_jobs()
    package = normalize_only(p, [{"id": 1, "n": MARKER}], "t", loader_file_format="jsonl")
    job = file_holding(package, "n", MARKER)
    _corrupt_jsonl(job.path, MARKER, str(2**63))
    info = p.run()  # must not raise: a bad value is the job's failure, not the pipeline's crash
    assert info.has_failed_jobs
    with pytest.raises(LoadJobFailed) as err:
        info.raise_on_failed_jobs()
    assert job.path.name in str(err.value) and "table t" in str(err.value) and "'n'" in str(err.value)
    assert query(p, f"SELECT id FROM {tbl(p, 't')}") == [(0,)]


def test_garbled_jsonl_line_fails_the_job_terminally(sa, backend):
    p = sa(**EXECUTEMANY_ONLY[backend])
    p.run([{"id": 0, "n": 1}], table_name="t").raise_on_failed_jobs()
    package = normalize_only(p, [{"id": 1, "n": 5}, {"id": 2, "n": MARKER}], "t", loader_file_format="jsonl")
    job = file_holding(package, "n", MARKER)
    lines = job.path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1] = lines[1][:15] + "\n"  # a line cut short, as a full disk would leave it
    job.path.write_text("".join(lines), encoding="utf-8")
    info = p.run()
    assert info.has_failed_jobs
    [failed] = info.load_packages[0].failed_jobs
    assert job.path.name in failed.error and "line 2" in failed.error


TYPED_VALUES = {"ts": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "dd": date(2024, 2, 29),
                "tm": time(13, 14, 15), "amount": Decimal("12.345")}


@pytest.mark.parametrize("column,bad", [("ts", '"not a timestamp"'), ("dd", '"yesterday"'), ("tm", '"teatime"'),
                                        ("amount", '"twelve"')])
def test_corrupted_temporal_and_decimal_values_fail_terminally(sa, backend, column, bad, request):
    typed = TYPED_VALUES[column]
    p = sa(**EXECUTEMANY_ONLY[backend])
    p.run([{"id": 0, column: typed}], table_name="t").raise_on_failed_jobs()
    package = normalize_only(p, [{"id": 1, column: typed}], "t", loader_file_format="jsonl")
    [job] = package.jobs("new_jobs")
    text = job.path.read_text(encoding="utf-8")
    new, replaced = re.subn(rf'"{column}":("[^"]*"|[-0-9.eE]+)', f'"{column}":{bad}', text)
    assert replaced == 1, text
    job.path.write_text(new, encoding="utf-8")
    info = p.run()
    assert info.has_failed_jobs
    [failed] = info.load_packages[0].failed_jobs
    assert failed.error.startswith(f"file {job.path.name}, line 1: table 't' column '{column}'"), failed.error
    assert query(p, f"SELECT id FROM {tbl(p, 't')}") == [(0,)]


# -- 6. unqualified names resolve to the pipeline's own dataset -------------------------------------------

def test_sqlite_unqualified_names_read_the_own_dataset_when_two_share_a_file(lite, tmp_path):
    shared = sqlite_url(tmp_path, "shared")
    a = lite(name="a", credentials=shared)
    b = lite(name="b", credentials=shared)
    a.run([{"id": 1}, {"id": 2}], table_name="t").raise_on_failed_jobs()
    b.run([{"id": 1}, {"id": 2}, {"id": 3}], table_name="t").raise_on_failed_jobs()
    assert query(a, "SELECT count(*) FROM t") == [(2,)]
    assert query(b, "SELECT count(*) FROM t") == [(3,)]


def test_mariadb_unqualified_names_never_read_another_dataset(maria):
    engine_args = {"pool_size": 1, "max_overflow": 0}  # one connection: both pipelines get the same one
    # no loading while normalizing: its feed would wait for a second connection (pool_timeout, 30 s) before
    # giving up, and the test is about the one connection the two pipelines share
    a = maria(name="a", engine_args=engine_args, load_while_normalizing=False)
    b = maria(name="b", engine_args=engine_args)
    a.run([{"id": 1}, {"id": 2}], table_name="t").raise_on_failed_jobs()
    with b.sql_client() as client:  # b has loaded nothing: its dataset does not exist, nor does its table t
        with pytest.raises(LoadbayError):
            client.execute_sql("SELECT count(*) FROM t")  # today it returns [(2,)]: the rows of a
        assert client.execute_sql("SELECT DATABASE()") != [(a.dataset_name,)]


# -- 7. the driver's bulk path, shared with the native destinations -----------------------------------------

@contextmanager
def statements_run(p: loadbay.Pipeline) -> Iterator[list[str]]:
    """The statements SQLAlchemy runs on the pipeline's engine meanwhile (executemany on the raw dbapi cursor,
    and psycopg2's COPY, do not pass through SQLAlchemy: they are not listed)."""
    client = p.destination.sql_client(p.config)
    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sqlalchemy.event.listen(client.engine, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        sqlalchemy.event.remove(client.engine, "before_cursor_execute", listen)


ROWS = [{"id": i, "s": f"row {i}", "ts": datetime(2024, 1, 2, 3, 4, 5, i, tzinfo=timezone.utc), "ok": i % 2 == 0}
        for i in range(50)]


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_mariadb_loads_with_load_data_local_infile(maria, caplog, file_format):
    caplog.set_level(logging.WARNING)
    p = maria()
    with statements_run(p) as seen:
        p.run(ROWS, table_name="t", loader_file_format=file_format).raise_on_failed_jobs()
    assert any(s.startswith("LOAD DATA LOCAL INFILE") for s in seen), seen
    assert not [r for r in caplog.records if "LOAD DATA LOCAL INFILE cannot be used" in r.getMessage()]
    got = query(p, f"SELECT id, s, ts, ok FROM {tbl(p, 't')} ORDER BY id")
    assert got == [(r["id"], r["s"], r["ts"].replace(tzinfo=None), int(r["ok"])) for r in ROWS]


def test_mariadb_refused_load_data_local_falls_back_to_executemany_with_one_warning(maria, caplog, monkeypatch):
    """The connection opened without local_infile: decided once per client, one warning saying why (per server
    and reason in a process: other tests' are forgotten here), and every file of two runs (three tables, two
    formats) loaded with executemany, the same values."""
    from loadbay.destinations.sqlalchemy import sql_client

    monkeypatch.setattr(sql_client, "_refusals_told", set())
    caplog.set_level(logging.WARNING)
    p = maria(engine_args={"connect_args": {"local_infile": False}})
    with statements_run(p) as seen:
        p.run([loadbay.resource(ROWS, name="t"), loadbay.resource(ROWS[:5], name="u")]).raise_on_failed_jobs()
        p.run(ROWS[:3], table_name="v", loader_file_format="parquet").raise_on_failed_jobs()
    assert not any(s.startswith("LOAD DATA") for s in seen), seen
    warned = [r.getMessage() for r in caplog.records if "LOAD DATA LOCAL INFILE cannot be used" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "without local_infile" in warned[0] and "executemany" in warned[0], warned
    got = query(p, f"SELECT id, s, ts, ok FROM {tbl(p, 't')} ORDER BY id")
    assert got == [(r["id"], r["s"], r["ts"].replace(tzinfo=None), int(r["ok"])) for r in ROWS]
    assert (n_rows(p, "u"), n_rows(p, "v")) == (5, 3)


def test_mariadb_server_gets_no_local_file_but_inside_loadbays_own_load_data(maria, tmp_path):
    """The engine opens pymysql connections with local_infile for loadbay's LOAD DATA, and each refuses the
    server's file requests but inside it, as the mysql destination's do."""
    from pymysql.constants import CLIENT

    p = maria()
    p.run([{"id": 1, "s": "loaded"}], table_name="t").raise_on_failed_jobs()  # loadbay's own LOAD DATA works
    (tmp_path / "secret.txt").write_text("2\tstolen\n")
    client = p.destination.sql_client(p.config).open()
    pymysql_connection = client.local_files_connection()
    assert pymysql_connection.client_flag & CLIENT.LOCAL_FILES  # offered at connect, refused per request:
    assert pymysql_connection._local_infile is False
    stolen = f"LOAD DATA LOCAL INFILE '{tmp_path / 'secret.txt'}' INTO TABLE {tbl(p, 't')} (id, s)"
    with pytest.raises(Exception, match="local_infile option is false"):
        client.execute_sql(stolen)
    client.native_connection.invalidate()  # the protocol was broken off mid-request: the connection is gone
    assert query(p, f"SELECT id, s FROM {tbl(p, 't')}") == [(1, "loaded")]


def test_mariadb_load_data_path_names_bad_values(maria):
    """A value DuckDB cannot read for its column: nothing reached the server, the executemany job names it; a
    value DuckDB reads but the column refuses: LOAD DATA's warning names it. Either way nothing is loaded."""
    p = maria()
    p.run([{"id": 0, "n": 1, "amount": Decimal("1.5")}], table_name="t",
          columns={"amount": {"data_type": "decimal", "precision": 10, "scale": 2}}).raise_on_failed_jobs()
    for column, old, bad, expected in (
            ("n", MARKER, '"abcdefg"', "line 1: table 't' column 'n': 'abcdefg' is not a bigint"),
            ("amount", "98.76", '"twelve"', "table 't' column 'amount', row 1 (line 1), value 'twelve'")):
        package = normalize_only(p, [{"id": 1, "n": MARKER, "amount": Decimal("98.76")}], "t",
                                 loader_file_format="jsonl")
        [job] = package.jobs("new_jobs")
        _corrupt_jsonl(job.path, f'"{old}"' if column == "amount" else old, bad)
        info = p.run()
        [failed] = info.load_packages[0].failed_jobs
        assert expected in failed.error, failed.error
        assert query(p, f"SELECT id FROM {tbl(p, 't')}") == [(0,)]
        p.drop_pending_packages()


def test_postgresql_family_copies_through_psycopg2():
    """The PostgreSQL family's client is the postgres destination's COPY client over the raw dbapi connection;
    the conformance suite's ``sqlalchemy_postgres`` setup loads every type through it."""
    from loadbay.destinations.copy_jobs import Psycopg2CopyClient
    from loadbay.destinations.sqlalchemy.job_client import PostgresqlJobClient, job_client_class
    from loadbay.destinations.sqlalchemy.sql_client import sql_client_class

    assert issubclass(sql_client_class("postgresql"), Psycopg2CopyClient)
    assert job_client_class("postgresql") is PostgresqlJobClient
    destination = loadbay.destination("sqlalchemy", credentials="postgresql+psycopg2://u@127.0.0.1:1/db")
    client = destination.sql_client(destination.configuration("p", "raw"))
    assert client.bulk_load_refusal() is None
