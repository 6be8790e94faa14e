"""The mysql destination (pymysql, LOAD DATA LOCAL INFILE) on the real MariaDB server, beyond the conformance
suite: exact values in every format (NULL and '', quotes, backslashes, line breaks, NUL, 4-byte characters,
65-digit decimals, DATETIME(6) as UTC wall time whatever the session's zone, binary), LOAD DATA warnings
failing the file by table, column, row and line with none of its rows kept, a server refusing LOAD DATA
LOCAL, ``dataset_prefix`` for a user with rights on one database, and a password never shown.

Errors are classified in the conformance suite (error_tables.MYSQL, provoked for real). Nothing is mocked but
the one pymysql quirk that cannot be provoked on demand. Every test uses its own dataset (or database and user)
and drops it afterwards.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import loadbay
from loadbay.common.exceptions import (ConfigurationError, DestinationTerminalError, DestinationTransientError,
                                       DestinationUndefinedRelation, LoadbayError)
from loadbay.destinations.testing.conformance.helpers import as_bytes, as_json, query, run_ok
from loadbay.destinations.testing.setups import MARIADB_URL, MYSQL_URL, require_server
from tests.integration.support import (SYSTEM_TABLES, closed_port, drop_maria_databases, exception_chain,
                                       kill_maria_connection, live_tables, maria_execute, maria_raw, maria_user,
                                       new_dataset)


def mysql_url(**changes: Any) -> str:
    """MYSQL_URL with some parts changed (username, password, host, port, database, query options)."""
    from sqlalchemy.engine import make_url

    query_options = changes.pop("query", {})
    url = make_url(MYSQL_URL).set(**changes)
    return url.update_query_dict(query_options).render_as_string(hide_password=False)


@pytest.fixture
def my(tmp_path: Path) -> Iterator[Callable[..., loadbay.Pipeline]]:
    """``my(name=..., dataset_name=None, credentials=MYSQL_URL, dataset_prefix=False, **settings)``: a mysql
    pipeline on a fresh dataset; its databases (dataset and staging) are dropped afterwards. A dataset_prefix
    pipeline's tables live in a database of the test's own (``one_database``), dropped with it."""
    require_server("mysql")
    made: list[loadbay.Pipeline] = []

    def make(name: str = "my_test", dataset_name: str | None = None, credentials: Any = MYSQL_URL,
             dataset_prefix: bool = False, **settings: Any) -> loadbay.Pipeline:
        destination = loadbay.destination("mysql", credentials=credentials, dataset_prefix=dataset_prefix)
        settings.setdefault("retry_backoff_seconds", 0.01)
        p = loadbay.pipeline(name, destination=destination, dataset_name=dataset_name or new_dataset(),
                             pipelines_dir=tmp_path / "p" / f"{name}_{len(made)}", **settings)
        if not dataset_prefix:
            made.append(p)
        return p

    yield make
    drop_maria_databases(*sorted({n for p in made for n in (p.dataset_name, p.config.staging_dataset_name)}))


def failed_error(info: loadbay.LoadInfo) -> str:
    [pkg] = info.load_packages
    [failed] = pkg.failed_jobs
    return str(failed.error)


# -- exact values ---------------------------------------------------------------------------------------------

FORMATS = ["jsonl", "csv", "parquet", "insert_values"]
PLUS_0530 = timezone(timedelta(hours=5, minutes=30))
TEXTS = ["", " ", "NULL", "\\N", "null", 'quotes \' " "" ,"', "back\\slash \\n \\' \\\\", "ends with backslash \\",
         "line\nbreak\r\nand\rreturn", "tab\there", "emoji 😀👍🏽 and 4-byte 𝄞", "a,b\n\"c\",d\r\ne",
         "%s %(x)s ? :x $1", "é" * 3000]
WIDE = Decimal("9" * 35 + "." + "1" * 30)  # DECIMAL(65, 30): MySQL's widest
MINUS_WIDE = Decimal("-" + str(WIDE))  # not -WIDE: Decimal arithmetic rounds to 28 digits
ROWS = [
    {"id": 1, "s": None, "ts": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=PLUS_0530), "naive": datetime(2024, 1, 2, 3, 4, 5),
     "d": WIDE, "big": 10 ** 30 + 7, "bin": bytes(range(256)), "b": True, "f": 2.5, "dd": date(2024, 2, 29),
     "tm": time(23, 59, 59, 999999), "js": {"s": "x'y\"z\\ 😀", "n": [1, None]}},
    {"id": 2, "s": "NUL\x00inside", "ts": datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone.utc), "d": MINUS_WIDE,
     "big": -(10 ** 30), "bin": b"", "b": False, "f": -0.0, "dd": date(1970, 1, 1), "tm": time(0, 0), "js": []},
    {"id": 3, "bin": b"\x00'\"\\,\n\r", "js": None},
    *({"id": 10 + i, "s": s, "bin": s.encode()} for i, s in enumerate(TEXTS)),
]
HINTS = {"d": {"data_type": "decimal", "precision": 65, "scale": 30}, "js": {"data_type": "json"},
         "naive": {"data_type": "timestamp", "timezone": False}}
NON_UTC = {"init_command": "SET time_zone = '-05:00'"}
"""A session that starts in another zone (as on a server whose default is not UTC): loadbay sets UTC after it."""


@pytest.mark.parametrize("file_format", FORMATS)
def test_every_value_arrives_exactly(my, file_format):
    p = my(credentials=mysql_url(query=NON_UTC))
    info = run_ok(p, ROWS, table_name="t", loader_file_format=file_format, columns=HINTS)
    assert {j.file_format for pkg in info.load_packages for j in pkg.jobs} == {file_format}
    types = dict(query(p, "SELECT column_name, column_type FROM information_schema.columns WHERE table_schema = %s "
                          "AND table_name = 't'", p.dataset_name))
    assert {k: types[k] for k in ("s", "ts", "naive", "d", "big", "bin", "b", "tm")} == {
        "s": "longtext", "ts": "datetime(6)", "naive": "datetime(6)", "d": "decimal(65,30)", "big": "decimal(65,0)",
        "bin": "longblob", "b": "tinyint(1)", "tm": "time(6)"}
    got = {row[0]: row[1:] for row in query(p, "SELECT id, s, ts, naive, d, big, bin, b, f, dd, tm, js FROM t")}
    assert got[1] == (None, datetime(2024, 1, 1, 21, 34, 5, 123456), datetime(2024, 1, 2, 3, 4, 5), WIDE,
                      Decimal(10 ** 30 + 7), bytes(range(256)), 1, 2.5, date(2024, 2, 29),
                      timedelta(hours=23, minutes=59, seconds=59, microseconds=999999), got[1][-1])
    assert as_json(got[1][-1]) == ROWS[0]["js"]
    assert got[2][:8] == ("NULinside", datetime(1999, 12, 31, 23, 59, 59), None, MINUS_WIDE, Decimal(-(10 ** 30)), b"", 0,
                          0.0)  # NUL is removed from text on every destination (README, "Bad values")
    assert str(got[2][7]) == "0.0"  # MariaDB keeps no negative zero, in any format
    assert as_json(got[2][-1]) == [] and got[3] == (None,) * 5 + (b"\x00'\"\\,\n\r",) + (None,) * 5
    assert [(got[10 + i][0], as_bytes(got[10 + i][5])) for i in range(len(TEXTS))] == [(s, s.encode()) for s in TEXTS]
    assert query(p, "SELECT count(*) FROM t WHERE s IS NULL") == [(2,)]
    # UTC sessions, whatever the session started in; DATETIME holds wall times, which no session zone changes
    assert query(p, "SELECT @@session.time_zone") == [("+00:00",)]
    raw = maria_raw(init_command="SET time_zone = '+09:00'")
    try:
        with raw.cursor() as cur:
            cur.execute(f"SELECT ts FROM `{p.dataset_name}`.t WHERE id = 1")
            assert cur.fetchall() == ((datetime(2024, 1, 1, 21, 34, 5, 123456),),)
    finally:
        raw.close()


def test_json_columns_read_back_as_json_and_keys_compare_byte_for_byte(my):
    """MariaDB's JSON is a checked LONGTEXT, read back as json; tables are utf8mb4_nopad_bin, so 'a' and 'A' (and
    'a ') are three keys, as on every other destination."""
    p = my()
    rows = [{"k": k, "v": i, "doc": {"i": i}} for i, k in enumerate(["a", "A", "a "])]
    run_ok(p, rows, table_name="t", write_disposition={"disposition": "merge", "strategy": "upsert"}, primary_key="k",
           columns={"doc": {"data_type": "json"}})
    run_ok(p, [{"k": "A", "v": 10, "doc": {"i": 10}}], table_name="t",
           write_disposition={"disposition": "merge", "strategy": "upsert"}, primary_key="k")
    assert query(p, "SELECT k, v FROM t ORDER BY k") == [("A", 10), ("a", 0), ("a ", 2)]
    with p.sql_client() as client:
        live = {name: data_type for name, data_type, *_ in client.table_columns(["t"])["t"]}
    assert (live["doc"], live["k"]) == ("json", "varchar(255)")


# -- LOAD DATA warnings fail the file ------------------------------------------------------------------------

@pytest.mark.parametrize(("file_format", "line"), [("csv", 6), ("jsonl", 3), ("parquet", None)])
def test_a_load_data_warning_fails_the_file_naming_table_column_row_and_line(my, file_format, line):
    """A text key is VARCHAR(255): a longer value would be truncated by LOAD DATA (a warning, not an error, as
    LOCAL cannot stop the transfer). The job fails terminally naming table, column, row, line and value, and
    none of the file's rows are kept."""
    p = my()
    long_key = "k" * 300
    rows = [{"code": "first\nspans\nlines", "n": 1}, {"code": "b", "n": 2}, {"code": long_key, "n": 3},
            {"code": "d", "n": 4}]
    info = p.run(rows, table_name="t", loader_file_format=file_format, columns={"code": {"data_type": "text",
                                                                                         "unique": True}})
    assert info.has_failed_jobs
    error = failed_error(info)
    place = "table 't' column 'code', row 3" + (f" (line {line})" if line else "")
    assert place in error and f"value {long_key[:57] + '...'!r}" in error, error  # header, then 3 lines for row 1
    assert "1265" in error and "Data truncated" in error and "nothing of the file is loaded" in error, error
    assert query(p, "SELECT count(*) FROM t") == [(0,)]
    assert query(p, "SELECT count(*) FROM _lb_jobs") == [(0,)]


def test_json_past_mariadbs_check_depth_fails_naming_the_column_and_what_loads_it(my):
    """MariaDB's JSON_VALID check constraint refuses json nested more than 32 levels deep (a warning naming the
    constraint, no row); the message names the column and says how such a value loads."""
    p = my()
    deep: Any = 1
    for _ in range(40):
        deep = {"a": deep}
    info = p.run(loadbay.resource([{"id": 1, "payload": deep}], "t", max_table_nesting=0))
    error = failed_error(info)
    assert "table 't' column 'payload'" in error and "JSON_VALID" in error and "max_table_nesting" in error, error
    assert "VARCHAR(255)" not in error
    assert query(p, "SELECT count(*) FROM t") == [(0,)]


def test_every_warning_counts_not_only_those_the_server_lists(my):
    """The server lists 64 warnings by default, notes included: a truncation after 64 notes went unseen.
    Sessions count no notes and list every warning, and ``@@warning_count`` (never capped) decides."""
    p = my()
    run_ok(p, [{"id": 0, "s": "abc"}], table_name="t")
    with p.sql_client() as client:
        assert client.execute_sql("SELECT @@sql_notes, @@max_error_count") == [(0, 65535)]
        client.execute_sql("ALTER TABLE t MODIFY s VARCHAR(3)")
    info = p.run([{"id": i, "s": "abcd"} for i in range(1, 101)], table_name="t")
    error = failed_error(info)
    assert "table 't' column 's', row 1 (line 1), value 'abcd'" in error and "(and 99 more warnings)" in error, error
    assert query(p, "SELECT count(*) FROM t") == [(1,)]


def test_a_column_narrowed_by_hand_fails_the_next_file_and_keeps_the_earlier_rows(my):
    p = my()
    run_ok(p, [{"id": 1, "s": "abc"}], table_name="t")
    with p.sql_client() as client:
        client.execute_sql("ALTER TABLE t MODIFY s VARCHAR(3)")
    info = p.run([{"id": 2, "s": "abcd"}, {"id": 3, "s": "x"}], table_name="t")
    error = failed_error(info)
    assert "table 't' column 's', row 1 (line 1), value 'abcd'" in error, error
    assert query(p, "SELECT id, s FROM t") == [(1, "abc")]


def test_the_server_gets_no_local_file_but_inside_loadbays_own_load_data(my, tmp_path):
    """pymysql sends any file the server names: loadbay's connections refuse such requests but for the files
    of its own LOAD DATA, so a rogue server (or anyone in between) cannot read the loading machine's files."""
    p = my()
    run_ok(p, [{"id": 1, "s": "loaded"}], table_name="t")  # LOAD DATA LOCAL of loadbay's own file works
    secret = tmp_path / "secret.txt"
    secret.write_text("2\tstolen\n")
    client = p.destination.sql_client(p.config).open()
    try:
        with pytest.raises(RuntimeError, match="local_infile option is false"):
            client.execute_sql(f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE t (id, s)")
    finally:
        client._conn.close()  # the protocol is broken off mid-request: the connection is gone
    assert query(p, "SELECT id, s FROM t") == [(1, "loaded")]


def test_insert_values_statements_fit_the_servers_packet_limit(my):
    """Wide rows: insert_values statements end before MariaDB's default max_allowed_packet (16 MB)."""
    p = my()
    rows = [{"id": i, "s": "x" * 20_000} for i in range(1000)]  # 20 MB of text
    run_ok(p, rows, table_name="t", loader_file_format="insert_values")
    assert query(p, "SELECT count(*), sum(length(s)) FROM t") == [(1000, 20_000_000)]


def test_a_server_refusing_load_data_local_fails_clearly_and_insert_values_still_loads(my):
    """LOAD DATA LOCAL refused (here by the client, as local_infile=OFF on the server answers): a terminal error
    saying what to change, not a silent switch to a slower path."""
    p = my(credentials=mysql_url(query={"local_infile": "false"}))
    info = p.run([{"id": 1}], table_name="t")
    error = failed_error(info)
    assert "refuses LOAD DATA LOCAL INFILE" in error and "local_infile=ON" in error, error
    assert "loader_file_format='insert_values'" in error and "4166" in error, error
    assert len(p.drop_pending_packages()) == 1
    run_ok(p, [{"id": 2}], table_name="t", loader_file_format="insert_values")
    assert query(p, "SELECT id FROM t") == [(2,)]


# -- dataset_prefix: one database for every dataset -------------------------------------------------------------

@pytest.fixture
def one_database() -> Iterator[tuple[str, str, str]]:
    """A database and a user with rights on it only: (database, user, password); both dropped afterwards."""
    require_server("mysql")
    database, password = f"lb_one_{uuid.uuid4().hex[:8]}", "One-" + uuid.uuid4().hex[:8]
    maria_execute(f"CREATE DATABASE `{database}`")
    try:
        with maria_user(password, [f"ALL PRIVILEGES ON `{database}`.*"]) as user:
            yield database, user, password
    finally:
        drop_maria_databases(database)


def tables_of(p: loadbay.Pipeline, database: str) -> set[str]:
    return {row[0] for row in query(p, "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                                    database)}


def test_dataset_prefix_lets_a_user_with_one_database_load_every_disposition(my, one_database):
    database, user, password = one_database
    url = mysql_url(username=user, password=password, database=database)
    p = my(credentials=url, dataset_prefix=True, dataset_name="raw")
    rows = [{"id": i, "tags": [f"t{i}", "x"]} for i in range(3)]
    dispositions = {"appended": "append", "replaced": "replace", "upserted": {"disposition": "merge",
                                                                              "strategy": "upsert"},
                    "merged": "merge", "truncated": {"disposition": "replace", "strategy": "truncate-and-insert"}}
    for table, disposition in dispositions.items():
        run_ok(p, rows, table_name=table, write_disposition=disposition, primary_key="id")
    for table in ("upserted", "merged"):
        run_ok(p, [{"id": 1, "tags": ["new"]}, {"id": 5, "tags": []}], table_name=table,
               write_disposition=dispositions[table], primary_key="id")
        assert query(p, f"SELECT id FROM raw__{table} ORDER BY id") == [(0,), (1,), (2,), (5,)]
        assert query(p, f"SELECT value FROM raw__{table}__tags ORDER BY value") == [
            ("new",), ("t0",), ("t2",), ("x",), ("x",)]
    tables = tables_of(p, database)
    assert tables == {f"raw__{t}" for t in SYSTEM_TABLES} | {f"raw__{t}{c}" for t in dispositions
                                                             for c in ("", "__tags")}  # no staging left behind
    with p.sql_client() as client:
        assert client.quoted("merged") == f"`{database}`.`raw__merged`"
        assert {c[0] for c in client.table_columns(["merged"])["merged"]} == {"id", "_lb_load_id", "_lb_id"}

    # a second dataset in the same database sees none of the first one's tables, and dropping it drops its own
    other = my(credentials=url, dataset_prefix=True, dataset_name="raw_2")
    run_ok(other, [{"id": 9}], table_name="merged")
    assert query(other, "SELECT id FROM raw_2__merged") == [(9,)]
    with other.sql_client() as client:
        client.drop_dataset()
        assert not client.has_dataset()
    assert tables_of(p, database) == tables
    with p.sql_client() as client:
        assert client.has_dataset()


def test_dataset_prefix_tells_datasets_apart_by_case_and_accents(my, one_database):
    """INFORMATION_SCHEMA compares names ignoring case and accents; datasets 'café' and 'cafe' (and 'Cafe')
    are three, each seeing and dropping only its own tables."""
    database, user, password = one_database
    url = mysql_url(username=user, password=password, database=database)
    first = my(credentials=url, dataset_prefix=True, dataset_name="café")
    run_ok(first, [{"id": 1}], table_name="t")
    before = tables_of(first, database)
    for name in ("cafe", "Cafe"):
        other = my(credentials=url, dataset_prefix=True, dataset_name=name)
        with other.sql_client() as client:
            assert not client.has_dataset(), name
        run_ok(other, [{"id": 2}, {"id": 3}], table_name="t")
        assert query(other, f"SELECT count(*) FROM `{other.dataset_name}__t`") == [(2,)]
        with other.sql_client() as client:
            client.drop_dataset()
    assert tables_of(first, database) == before
    assert query(first, "SELECT id FROM `café__t`") == [(1,)]


def test_tables_named_alike_but_for_accents_are_two_tables(my):
    p = my()
    run_ok(p, [{"id": 1, "a": "x"}], table_name="café")
    run_ok(p, [{"id": 2, "b": 5}], table_name="cafe")
    with p.sql_client() as client:
        live = client.table_columns(["café", "cafe"])
    assert {t: {c[0] for c in cols} for t, cols in live.items()} == {
        "café": {"id", "a", "_lb_load_id", "_lb_id"}, "cafe": {"id", "b", "_lb_load_id", "_lb_id"}}
    assert query(p, "SELECT id, a FROM `café`") == [(1, "x")] and query(p, "SELECT id, b FROM cafe") == [(2, 5)]


def test_without_dataset_prefix_the_same_user_cannot_create_a_dataset(my, one_database):
    database, user, password = one_database
    p = my(credentials=mysql_url(username=user, password=password, database=database))
    with pytest.raises(LoadbayError) as err:
        p.run([{"id": 1}], table_name="t")
    [error] = [e for e in exception_chain(err.value) if isinstance(e, DestinationTerminalError)]
    assert re.search(r"\b(1044|1142)\b.* denied to user", str(error)), error  # the dataset's database is not its
    assert "dataset_prefix=True" in str(error), error


@pytest.mark.parametrize(("dataset", "problem"), [("a__b", "'__'"), ("ends_", "end with '_'"), ("x" * 46, "45"),
                                                  ("sales_staging", "'_staging'"), ("д" * 23, "45 bytes")])
def test_dataset_prefix_refuses_names_that_would_share_a_prefix(my, dataset, problem):
    p = my(credentials=mysql_url(database="lb_never_created"), dataset_prefix=True, dataset_name=dataset)
    with pytest.raises(ConfigurationError, match=problem):
        p.destination.sql_client(p.config)
    without_database = loadbay.destination("mysql", credentials=MYSQL_URL.rsplit("/", 1)[0], dataset_prefix=True)
    with pytest.raises(ConfigurationError, match="none is given"):
        without_database.sql_client(without_database.configuration("p", "raw"))


# -- credentials and sessions ------------------------------------------------------------------------------------

def test_password_is_used_and_never_shown(my, caplog):
    secret = "Pw@1:x/y%z?#&" + uuid.uuid4().hex[:6]
    with maria_user(secret, ["ALL PRIVILEGES ON *.*"]) as user:
        url = mysql_url(username=user, password=secret)
        p = my(credentials=url)
        info = run_ok(p, [{"id": 1}], table_name="t")
        credentials = p.config.credentials
        assert credentials.password == secret and query(p, "SELECT CURRENT_USER()")[0][0].startswith(user + "@")
        shown = [str(info), repr(info), info.location, repr(credentials), str(credentials), credentials.location(),
                 repr(p), repr(p.config)]
        assert "***" in info.location and user in info.location
        caplog.set_level(logging.DEBUG)
        texts: list[str] = []
        for broken in (mysql_url(username=user, password=secret, host="127.0.0.1", port=closed_port()),
                       mysql_url(username=user, password=secret + "-wrong")):
            with pytest.raises(LoadbayError) as err:
                my(credentials=broken).run([{"id": 1}], table_name="t")
            chain = exception_chain(err.value)
            texts += [str(e) for e in chain] + [repr(e) for e in chain]
        assert any("2003" in t for t in texts) and any("1045" in t for t in texts)
        for text in shown + texts + [r.getMessage() for r in caplog.records]:
            assert secret not in text and quote(secret, safe="") not in text, text


def test_a_password_given_as_pymysqls_passwd_option_is_used_and_masked(my):
    secret = "Pw-" + uuid.uuid4().hex[:8]
    with maria_user(secret, ["ALL PRIVILEGES ON *.*"]) as user:
        p = my(credentials=mysql_url(username=user, query={"passwd": secret}))
        info = run_ok(p, [{"id": 1}], table_name="t")
        assert p.config.credentials.password == secret and "passwd" not in p.config.credentials.query
        for text in (str(info), info.location, repr(p.config), p.config.credentials.location()):
            assert secret not in text, text


def test_credentials_as_fields_and_as_urls_of_either_scheme(my, monkeypatch):
    monkeypatch.setenv("DESTINATION__MYSQL__CREDENTIALS__HOST", "127.0.0.1")
    monkeypatch.setenv("DESTINATION__MYSQL__CREDENTIALS__USERNAME", "root")
    monkeypatch.setenv("DESTINATION__MYSQL__CREDENTIALS__CONNECT_TIMEOUT", "5")
    p = my(credentials=None)
    assert (p.config.credentials.host, p.config.credentials.port, p.config.credentials.connect_timeout) == (
        "127.0.0.1", 3306, 5)
    run_ok(p, [{"id": 1}], table_name="t")
    for scheme in ("mariadb://", "mysql+pymysql://"):
        q = my(credentials=MYSQL_URL.replace("mysql://", scheme, 1))
        run_ok(q, [{"id": 1}], table_name="t")
        assert q.config.credentials.drivername == "mysql"
    with pytest.raises(ConfigurationError, match="starts with mysql:// or mariadb://, not postgresql://"):
        loadbay.destination("mysql", credentials="postgresql://u@h/db").configuration("p", "raw")


def test_sessions_are_utc_and_strict_after_every_reconnect(my):
    p = my(credentials=mysql_url(query=NON_UTC))
    with p.sql_client() as client:
        client.create_dataset()
        kill_maria_connection(client.execute_sql("SELECT CONNECTION_ID()")[0][0])
        with pytest.raises(DestinationTransientError):
            client.execute_sql("SELECT 1")
        with pytest.raises(DestinationTransientError):  # pymysql's InterfaceError (0, ''): the same lost connection
            client.execute_sql("SELECT 1")
        client.reconnect()
        [(zone, mode, strict, database)] = client.execute_sql(
            "SELECT @@session.time_zone, @@session.sql_mode, @@session.innodb_strict_mode, DATABASE()")
        assert (zone, strict, database) == ("+00:00", 0, p.dataset_name)
        assert "STRICT_ALL_TABLES" in mode and "NO_ZERO_DATE" in mode and "NO_BACKSLASH_ESCAPES" not in mode
        with pytest.raises(DestinationUndefinedRelation):
            client.execute_sql("SELECT * FROM lb_no_such_table")


def test_system_tables_and_the_dataset_is_a_database(my):
    p = my()
    run_ok(p, [{"id": 1, "items": [1, 2]}], table_name="t")
    assert live_tables(p) == SYSTEM_TABLES | {"t", "t__items"}
    assert query(p, "SELECT schema_name FROM information_schema.schemata WHERE schema_name = %s",
                 p.dataset_name) == [(p.dataset_name,)]


# -- pymysql's one quirk, which no server can provoke on demand --------------------------------------------------

def test_a_lost_connection_during_load_data_is_transient_not_pymysqls_attribute_error():
    """pymysql's LOAD DATA LOCAL clean-up writes to the socket the lost connection closed: its AttributeError
    must not hide the OperationalError (2006) that says what happened."""
    import pymysql

    destination = loadbay.destination("mysql", credentials="mysql://u@127.0.0.1:1/db")
    client = destination.sql_client(destination.configuration("p", "raw"))
    with pytest.raises(DestinationTransientError) as err:
        with client.translating("LOAD DATA LOCAL INFILE 'x' INTO TABLE t"):
            try:
                raise pymysql.err.OperationalError(2006, "MySQL server has gone away (BrokenPipeError(32))")
            except pymysql.err.OperationalError:
                raise AttributeError("'NoneType' object has no attribute 'sendall'")  # noqa: B904 - pymysql's way
    assert isinstance(err.value.orig, pymysql.err.OperationalError) and err.value.orig.args[0] == 2006
    assert err.value.__cause__ is err.value.orig and "LOAD DATA LOCAL INFILE 'x'" in str(err.value)
    with pytest.raises(AttributeError):  # an AttributeError of loadbay's own is a bug, shown as it is
        with client.translating("SELECT 1"):
            raise AttributeError("bug")


@pytest.mark.parametrize("strategy", ["delete-insert", "upsert"])
def test_merges_index_the_keys_they_look_up(my, strategy, monkeypatch):
    """MariaDB runs ``DELETE ... WHERE x IN (SELECT ...)`` as a probe of the subquery per row: without an
    index on the target root's ``_lb_id`` and the staging root's key, a merge is quadratic (30,000 roots
    with children took minutes). The merge indexes both first, and the rows are right."""
    from loadbay.destinations.mysql.job_client import MysqlJobClient

    p = my()
    merge = {"disposition": "merge", "strategy": strategy}
    rows = [{"id": i, "name": f"n{i}", "tags": ["a", "b"]} for i in range(3000)]
    run_ok(p, rows, table_name="events", write_disposition=merge, primary_key="id")
    staged: list[str] = []
    clean_up = MysqlJobClient.clean_up_package  # the staging table is dropped there: look just before

    def look(self: MysqlJobClient, schema: Any, table_names: list[str], load_id: str, **kwargs: Any) -> None:
        staging = self.staging_table("events", load_id)
        staged.extend(r[0] for r in self.sql_client.execute_sql(
            "SELECT index_name FROM information_schema.statistics WHERE table_schema = %s AND table_name = %s",
            staging.db, staging.name) or [])
        clean_up(self, schema, table_names, load_id, **kwargs)

    monkeypatch.setattr(MysqlJobClient, "clean_up_package", look)
    changed = [{"id": i, "name": f"changed {i}", "tags": ["c"]} for i in range(0, 3000, 2)]
    run_ok(p, changed, table_name="events", write_disposition=merge, primary_key="id")
    indexes = {r[0] for r in query(p, "SELECT index_name FROM information_schema.statistics "
                                      "WHERE table_schema = DATABASE() AND table_name = 'events'")}
    assert "events__lb_id_lookup" in indexes
    assert "events__lb_key_lookup" in staged
    assert query(p, "SELECT count(*), sum(name LIKE 'changed%') FROM events") == [(3000, 1500)]
    assert query(p, "SELECT count(*), sum(value = 'c') FROM events__tags") == [(4500, 1500)]


@pytest.mark.parametrize("strategy", ["delete-insert", "upsert", "insert-only"])
def test_merges_on_a_server_without_create_index_if_not_exists(my, strategy, monkeypatch):
    """MySQL (8.4 included) has no CREATE INDEX IF NOT EXISTS: the statement goes without it and an index
    that exists already (error 1061) counts as done. Checked on MariaDB by taking it for MySQL."""
    from loadbay.destinations.mysql.sql_client import LocalInfileClient
    from loadbay.destinations.sql_client import SqlClient

    sent: list[str] = []
    execute = SqlClient.execute_text  # what reaches the driver

    def recording(self: SqlClient, text: str, params: Any = ()) -> Any:
        if " INDEX " in text:
            sent.append(text)
        return execute(self, text, params)

    monkeypatch.setattr(LocalInfileClient, "server_creates_index_if_not_exists", lambda self: False)
    monkeypatch.setattr(SqlClient, "execute_text", recording)
    p = my()
    merge = {"disposition": "merge", "strategy": strategy}
    for n in range(3):  # the second and third merges meet the indexes of the first
        run_ok(p, [{"id": i, "v": n, "tags": [n]} for i in range(5)], table_name="events", write_disposition=merge,
               primary_key="id")
    assert sent and not [s for s in sent if "IF NOT EXISTS" in s.upper()]
    target_index = [s for s in sent if "events__lb_id_lookup" in s]
    assert len(target_index) == 3  # sent each merge: the second and third got 1061, taken as done
    expected = 0 if strategy == "insert-only" else 2
    assert query(p, "SELECT count(*), min(v), max(v) FROM events") == [(5, expected, expected)]
    assert query(p, "SELECT count(*) FROM events__tags") == [(5,)]


@pytest.mark.parametrize("strategy", ["delete-insert", "upsert", "insert-only", "scd2"])
@pytest.mark.parametrize("charset", ["utf8mb3", "latin1"])
def test_merges_with_children_on_a_connection_in_another_character_set(my, tmp_path, strategy, charset):
    """The children's root-id filter compares ids collated ``utf8mb4_bin`` (MariaDB joins them without a lookup
    otherwise): the cast names its character set, so a connection in another one (``?charset=``, native or through
    SQLAlchemy) merges too instead of refusing the collation (error 1253)."""
    merge = {"disposition": "merge", "strategy": strategy}
    native = my(credentials=mysql_url(query={"charset": charset}))
    alchemy = loadbay.pipeline("alchemy", destination=loadbay.destination(
        "sqlalchemy", credentials=f"{MARIADB_URL}?charset={charset}"), dataset_name=new_dataset(),
        pipelines_dir=tmp_path / "alchemy")
    try:
        for p in (native, alchemy):
            run_ok(p, [{"id": i, "v": "a", "tags": [i, i + 1]} for i in range(4)], table_name="events",
                   write_disposition=merge, primary_key="id")
            run_ok(p, [{"id": i, "v": "b", "tags": [10 * i]} for i in (1, 2, 7)], table_name="events",
                   write_disposition=merge, primary_key="id")
            rows = query(p, "SELECT e.id, e.v, t.value FROM events e JOIN events__tags t ON t._lb_parent_id = e._lb_id "
                            + ("WHERE e._lb_valid_to IS NULL " if strategy == "scd2" else "") + "ORDER BY 1, 3")
            kept = {"insert-only": [(0, "a", 0), (0, "a", 1), (1, "a", 1), (1, "a", 2), (2, "a", 2), (2, "a", 3),
                                    (3, "a", 3), (3, "a", 4), (7, "b", 70)]}
            # scd2 retires the versions the second load lacks (0 and 3); the others replace rows and children
            expected = kept.get(strategy, [(0, "a", 0), (0, "a", 1), (1, "b", 10), (2, "b", 20), (3, "a", 3),
                                           (3, "a", 4), (7, "b", 70)])
            if strategy == "scd2":
                expected = [(1, "b", 10), (2, "b", 20), (7, "b", 70)]
            assert rows == expected, (p.destination.destination_type, rows)
    finally:
        drop_maria_databases(alchemy.dataset_name, alchemy.config.staging_dataset_name)


def test_merges_into_one_table_take_turns_and_overlapping_keys_land_once(my):
    """InnoDB's row locks alone keep concurrent merges right, but two merges of overlapping keys then
    wait on each other statement by statement (lock-wait timeouts, deadlocks retried, minutes). A merge
    takes the table's named lock for its final transaction: one held elsewhere makes it wait, and two
    pipelines merging overlapping keys at once leave each key once, its children with it."""
    import threading

    from loadbay.destinations.sql_client import merge_lock_name
    from tests.integration.test_postgres_concurrency import _at_once

    first = my(name="p0")
    second = my(name="p1", dataset_name=first.dataset_name)
    hints = {"table_name": "events", "write_disposition": "merge", "primary_key": "id"}
    run_ok(first, [{"id": k, "v": "base", "tags": [k, k]} for k in range(2000)], **hints)
    with first.sql_client() as client:
        lock = merge_lock_name(client.qualified("events"), "mysql")
    holder = maria_raw()
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, 0)", (lock,))
            assert cur.fetchone() == (1,)
        waiting = threading.Thread(target=lambda: run_ok(first, [{"id": 1, "v": "waited", "tags": []}], **hints))
        waiting.start()
        waiting.join(5)
        assert waiting.is_alive()  # its merge waits for the lock
        assert query(first, "SELECT v FROM events WHERE id = 1") == [("base",)]
        with holder.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
        waiting.join(60)
        assert not waiting.is_alive()
    finally:
        holder.close()
    assert query(first, "SELECT v FROM events WHERE id = 1") == [("waited",)]

    errors = _at_once([lambda p=p, start=start: run_ok(p, [{"id": k, "v": p.pipeline_name, "tags": [k]}
                                                             for k in range(start, start + 1500)], **hints)
                       for p, start in ((first, 0), (second, 500))])
    assert errors == []
    assert query(first, "SELECT count(*), count(DISTINCT id) FROM events") == [(2000, 2000)]
    winners = dict(query(first, "SELECT v, count(*) FROM events WHERE id BETWEEN 500 AND 1499 GROUP BY v"))
    assert sum(winners.values()) == 1000 and len(winners) == 1  # the shared keys: all of the later merge
    assert query(first, "SELECT count(*) FROM events__tags t WHERE NOT EXISTS "
                        "(SELECT 1 FROM events e WHERE e._lb_id = t._lb_root_id)") == [(0,)]
    assert query(first, "SELECT count(*) FROM events__tags") == [(2000,)]  # every key merged again: one tag each
