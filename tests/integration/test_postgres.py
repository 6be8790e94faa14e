"""PostgreSQL-specific behaviour against a real server: long identifiers, upsert in both syntaxes,
staging-optimized replace, ALTER TABLE on a later run, and credentials that never show their password.

Error classification is the conformance suite's (test_error_classes.py), recovery in test_postgres_errors.py.
Every test uses its own dataset (schema) and drops it and its ``_staging`` twin afterwards.
"""

from __future__ import annotations

import logging
import uuid

import pytest

from loadbay.common.exceptions import DestinationTransientError, LoadbayError
from loadbay.destinations.testing.conformance.helpers import children, count, orphans, query, run_ok
from loadbay.destinations.testing.setups import POSTGRES_URL
from tests.integration.pg_helpers import (MAX_IDENT, _closed_port, make_url_password, live_columns, live_tables, pg_url)
from tests.integration.pg_helpers import pg, postgres_server  # noqa: F401 - fixtures
from tests.integration.support import SYSTEM_TABLES, exception_chain


# -- 5. long identifiers ----------------------------------------------------------------------------

LONG_TABLE = "events_" + "t" * 93
LONG_COLUMN = "measurement_" + "c" * 88


def test_long_table_and_column_names_are_shortened_deterministically(pg, tmp_path):
    assert len(LONG_TABLE) == 100 and len(LONG_COLUMN) == 100
    p = pg()
    run_ok(p, [{"id": 1, LONG_COLUMN: "first", "items": [1, 2]}], table_name=LONG_TABLE)
    tables = live_tables(p) - SYSTEM_TABLES
    assert len(tables) == 2, tables
    child = next(t for t in tables if "_lb_parent_id" in live_columns(p, t))
    root = next(t for t in tables if t != child)
    for name in tables:
        assert len(name.encode()) <= MAX_IDENT, name
    assert root.startswith("events_ttt")
    columns = live_columns(p, root)
    long_cols = [c for c in columns if c.startswith("measurement_")]
    assert len(long_cols) == 1 and len(long_cols[0].encode()) <= MAX_IDENT
    column = long_cols[0]

    # the same pipeline again, then a pipeline with no local state and another name (so nothing is restored)
    run_ok(p, [{"id": 2, LONG_COLUMN: "second", "items": [3]}], table_name=LONG_TABLE)
    fresh = pg(name="pg_other", dataset_name=p.dataset_name, pipelines_dir=tmp_path / "elsewhere")
    run_ok(fresh, [{"id": 3, LONG_COLUMN: "third", "items": [4]}], table_name=LONG_TABLE)

    assert live_tables(p) - SYSTEM_TABLES == tables
    assert [c for c in live_columns(p, root) if c.startswith("measurement_")] == [column]
    assert query(p, f'SELECT id, "{column}" FROM "{root}" ORDER BY id') == [(1, "first"), (2, "second"), (3, "third")]
    assert query(p, f'SELECT count(*) FROM "{child}"') == [(4,)]
    assert query(p, f'SELECT count(*) FROM "{child}" c WHERE NOT EXISTS '
                    f'(SELECT 1 FROM "{root}" r WHERE r._lb_id = c._lb_parent_id)') == [(0,)]


def test_long_names_sharing_a_prefix_stay_distinct(pg):
    prefix = "shared_prefix_" + "p" * 46
    assert len(prefix) == 60
    a, b = prefix + "a" * 40, prefix + "b" * 40
    p = pg()
    run_ok(p, [{"id": 1, a: "A", b: "B"}], table_name=a)
    run_ok(p, [{"id": 2, a: "A2", b: "B2"}], table_name=b)
    tables = sorted(live_tables(p) - SYSTEM_TABLES)
    assert len(tables) == 2 and tables[0] != tables[1]
    for table in tables:
        cols = [c for c in live_columns(p, table) if c.startswith("shared_prefix_")]
        assert len(cols) == 2 and cols[0] != cols[1], cols
        assert all(len(c.encode()) <= MAX_IDENT for c in cols + [table])
    holding: dict[str, str] = {}  # value → the column it landed in
    for table in tables:
        cols = sorted(c for c in live_columns(p, table) if c.startswith("shared_prefix_"))
        row = query(p, f'SELECT id, "{cols[0]}", "{cols[1]}" FROM "{table}"')
        assert len(row) == 1
        holding.update({row[0][1]: cols[0], row[0][2]: cols[1]})
    assert set(holding) == {"A", "B", "A2", "B2"}
    assert holding["A"] != holding["B"]
    # the same source key gets the same column name in both tables
    assert holding["A"] == holding["A2"] and holding["B"] == holding["B2"]


def test_multibyte_long_names_fit_63_bytes(pg):
    name = "größe_" + "ü" * 94
    assert len(name) == 100 and len(name.encode()) > 190
    p = pg()
    run_ok(p, [{"id": 1, name: 1}], table_name=name)
    run_ok(p, [{"id": 2, name: 2}], table_name=name)
    tables = live_tables(p) - SYSTEM_TABLES
    assert len(tables) == 1
    table = tables.pop()
    assert len(table.encode()) <= MAX_IDENT and table.startswith("größe_ü")
    cols = [c for c in live_columns(p, table) if c.startswith("größe")]
    assert len(cols) == 1 and len(cols[0].encode()) <= MAX_IDENT
    assert query(p, f'SELECT id, "{cols[0]}" FROM "{table}" ORDER BY id') == [(1, 1), (2, 2)]


def test_long_dataset_name_keeps_staging_apart(pg):
    p = pg(dataset_name=f"ds_{uuid.uuid4().hex[:12]}_" + "d" * 90)
    assert len(p.dataset_name.encode()) <= MAX_IDENT
    run_ok(p, [{"id": 1, "v": 0}], table_name="t", write_disposition="merge", primary_key="id")
    run_ok(p, [{"id": 1, "v": 1}, {"id": 2, "v": 1}], table_name="t", write_disposition="merge", primary_key="id")
    with p.sql_client() as client:
        rows = client.execute_sql(f"SELECT id, v FROM {client.quoted('t')} ORDER BY id") \
            if client.table_columns(["t"]) else None
    assert rows == [(1, 1), (2, 1)]
    staging = p.config.staging_dataset_name
    assert len(staging.encode()) <= MAX_IDENT and staging != p.dataset_name


# -- 6. upsert and staging-optimized replace ----------------------------------------------------------

UPSERT = {"disposition": "merge", "strategy": "upsert"}
each_syntax = pytest.mark.parametrize("syntax", ["merge", "on_conflict"])


@each_syntax
def test_upsert_updates_inserts_and_keeps_the_last_duplicate(pg, syntax):
    p = pg(upsert_syntax=syntax)
    run_ok(p, [{"id": 1, "v": "a", "n": 1}, {"id": 2, "v": "b", "n": 2}], table_name="t",
           write_disposition=UPSERT, primary_key="id")
    run_ok(p, [{"id": 2, "v": "b-old", "n": 20}, {"id": 3, "v": "c-old", "n": 30}, {"id": 2, "v": "b2", "n": 21},
               {"id": 3, "v": "c2", "n": 31}], table_name="t", write_disposition=UPSERT, primary_key="id")
    assert query(p, "SELECT id, v, n FROM t ORDER BY id") == [(1, "a", 1), (2, "b2", 21), (3, "c2", 31)]
    # the same rows again change nothing
    run_ok(p, [{"id": 3, "v": "c2", "n": 31}], table_name="t", write_disposition=UPSERT, primary_key="id")
    assert query(p, "SELECT id, v, n FROM t ORDER BY id") == [(1, "a", 1), (2, "b2", 21), (3, "c2", 31)]
    assert query(p, "SELECT count(DISTINCT _lb_load_id) FROM t") == [(3,)]
    assert live_tables(p, p.config.staging_dataset_name) == set()
    indexes = query(p, "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = 't'", p.dataset_name)
    if syntax == "on_conflict":
        assert any("UNIQUE" in d and "(id)" in d for (d,) in indexes), indexes


@each_syntax
def test_upsert_compound_key(pg, syntax):
    p = pg(upsert_syntax=syntax)
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": ["a", "b"]}
    run_ok(p, [{"a": 1, "b": 1, "v": "x"}, {"a": 1, "b": 2, "v": "y"}, {"a": 2, "b": 1, "v": "z"}], **hints)
    run_ok(p, [{"a": 1, "b": 2, "v": "Y"}, {"a": 2, "b": 2, "v": "w"}, {"a": 2, "b": 2, "v": "W"}], **hints)
    assert query(p, "SELECT a, b, v FROM t ORDER BY a, b") == [(1, 1, "x"), (1, 2, "Y"), (2, 1, "z"), (2, 2, "W")]


@each_syntax
def test_upsert_replaces_children_of_updated_roots_only(pg, syntax):
    p = pg(upsert_syntax=syntax)
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": "id"}
    run_ok(p, [{"id": 1, "items": ["a", "b"], "tags": [{"k": "t1"}]}, {"id": 2, "items": ["c"], "tags": [{"k": "t2"}]},
               {"id": 3, "items": ["d"]}], **hints)
    untouched = query(p, "SELECT c._lb_id, c.value FROM t__items c JOIN t ON c._lb_root_id = t._lb_id WHERE t.id = 2")
    run_ok(p, [{"id": 1, "items": ["x"]}, {"id": 3, "items": []}, {"id": 4, "items": ["n1", "n2"]}], **hints)
    assert children(p) == {1: ["x"], 2: ["c"], 4: ["n1", "n2"]}
    assert query(p, "SELECT c._lb_id, c.value FROM t__items c JOIN t ON c._lb_root_id = t._lb_id "
                    "WHERE t.id = 2") == untouched
    tags = query(p, "SELECT t.id, c.k FROM t JOIN t__tags c ON c._lb_parent_id = t._lb_id ORDER BY t.id")
    assert tags == [(2, "t2")]  # id 1 came back without tags: its old tags went
    assert count(p, "t") == 4
    assert orphans(p, "t__items") == 0 and orphans(p, "t__tags") == 0


@each_syntax
def test_upsert_hard_delete_removes_row_and_children(pg, syntax):
    p = pg(upsert_syntax=syntax)
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": "id",
             "columns": {"deleted": {"hard_delete": True}}}
    run_ok(p, [{"id": 1, "v": "a", "items": ["a1", "a2"]}, {"id": 2, "v": "b", "items": ["b1"]},
               {"id": 3, "v": "c", "items": ["c1"]}], **hints)
    run_ok(p, [{"id": 1, "deleted": True}, {"id": 2, "v": "b2", "deleted": False, "items": ["b2"]},
               {"id": 9, "v": "never", "deleted": True}, {"id": 5, "v": "new", "items": ["e1"]}], **hints)
    assert query(p, "SELECT id, v FROM t ORDER BY id") == [(2, "b2"), (3, "c"), (5, "new")]
    assert children(p) == {2: ["b2"], 3: ["c1"], 5: ["e1"]}
    assert orphans(p, "t__items") == 0
    # delete then re-insert the same key in one batch: the last row wins
    run_ok(p, [{"id": 3, "deleted": True}, {"id": 3, "v": "c-again", "items": ["c9"]}], **hints)
    assert query(p, "SELECT id, v FROM t WHERE id = 3") == [(3, "c-again")]
    assert children(p)[3] == ["c9"]
    assert live_tables(p, p.config.staging_dataset_name) == set()


@pytest.mark.parametrize("syntax,table", [
    ("merge", "order"), ("merge", "excluded"), ("merge", "_lb_s"), ("on_conflict", "order"), ("on_conflict", "_lb_t"),
    ("on_conflict", "excluded"),
])
def test_upsert_into_tables_and_columns_named_like_sql(pg, syntax, table):
    p = pg(upsert_syntax=syntax)
    for i in range(2):
        run_ok(p, [{"id": 1, "select": i, "excluded": f"e{i}", "items": [i]},
                   {"id": 2 + i, "select": i, "excluded": "x", "items": [i]}],
               table_name=table, write_disposition=UPSERT, primary_key="id")
    assert query(p, f'SELECT id, "select", "excluded" FROM "{table}" ORDER BY id') == [
        (1, 1, "e1"), (2, 0, "x"), (3, 1, "x")]
    assert count(p, f"{table}__items") == 3


def test_auto_upsert_syntax_follows_the_server_version(pg):
    p = pg()
    client = p.destination.client(p.config)
    with client:
        version = int(client.sql_client.execute_sql("SHOW server_version_num")[0][0])
        assert client.upsert_syntax() == ("merge" if version >= 150000 else "on_conflict")
    for syntax in ("merge", "on_conflict"):
        explicit = pg(upsert_syntax=syntax)
        assert explicit.destination.client(explicit.config).upsert_syntax() == syntax


@each_syntax
def test_failed_upsert_rolls_back_every_statement_and_resumes(pg, syntax):
    p = pg(upsert_syntax=syntax)
    hints = {"table_name": "t", "write_disposition": UPSERT, "primary_key": "id"}
    run_ok(p, [{"id": 1, "v": "a", "items": ["a1"]}, {"id": 2, "v": "b", "items": ["b1"]}], **hints)
    with p.sql_client() as client:
        client.execute_sql(f"ALTER TABLE {client.quoted('t')} ADD CONSTRAINT no_bad CHECK (v <> 'bad')")
    before = query(p, "SELECT id, v, _lb_id FROM t ORDER BY id"), children(p)
    with pytest.raises(LoadbayError) as err:
        p.run([{"id": 1, "v": "a2", "items": ["a2"]}, {"id": 3, "v": "bad", "items": ["c1"]}], **hints)
    assert "no_bad" in str(err.value)
    # child deletes and inserts ran before the failing statement: all of it rolled back, nothing marked done
    assert (query(p, "SELECT id, v, _lb_id FROM t ORDER BY id"), children(p)) == before
    assert count(p, "_lb_loads") == 1
    assert len(p.pending_packages()) == 1
    with p.sql_client() as client:
        client.execute_sql(f"ALTER TABLE {client.quoted('t')} DROP CONSTRAINT no_bad")
    run_ok(p)  # resumes the pending package
    assert query(p, "SELECT id, v FROM t ORDER BY id") == [(1, "a2"), (2, "b"), (3, "bad")]
    assert children(p) == {1: ["a2"], 2: ["b1"], 3: ["c1"]}
    assert count(p, "_lb_loads") == 2 and p.pending_packages() == []
    assert live_tables(p, p.config.staging_dataset_name) == set()


def test_replace_staging_optimized(pg):
    p = pg()
    replace = {"disposition": "replace", "strategy": "staging-optimized"}
    run_ok(p, [{"id": 1, "items": ["a", "b"]}, {"id": 2, "items": ["c"]}], table_name="t", write_disposition=replace)
    assert query(p, "SELECT count(*) FROM t") == [(2,)]  # works on the first run
    assert count(p, "t__items") == 3
    run_ok(p, [{"id": 3, "items": ["d"]}], table_name="t", write_disposition=replace)
    assert query(p, "SELECT id FROM t") == [(3,)]
    assert children(p) == {3: ["d"]}
    assert orphans(p, "t__items") == 0
    # the tables live in the dataset (not in staging) and behave as ordinary tables afterwards
    assert {"t", "t__items"} <= live_tables(p)
    assert not ({"t", "t__items"} & live_tables(p, p.config.staging_dataset_name))
    assert query(p, f'SELECT count(*) FROM "{p.dataset_name}".t') == [(1,)]
    assert query(p, "SELECT count(*) FROM t WHERE id = 3") == [(1,)]
    with p.sql_client() as client:  # an ordinary table: writable, alterable
        client.execute_sql(f"INSERT INTO {client.quoted('t')} (_lb_load_id, _lb_id, id) VALUES ('x', 'y', 99)")
        client.execute_sql(f"ALTER TABLE {client.quoted('t')} ADD COLUMN by_hand text")
    assert count(p, "t") == 2
    run_ok(p, [{"id": 5, "v": "new column"}], table_name="t", write_disposition=replace)  # no child rows
    assert query(p, "SELECT id, v FROM t") == [(5, "new column")]
    assert count(p, "t__items") == 0  # replaced by an empty child table
    assert "by_hand" not in live_columns(p, "t")
    assert live_tables(p, p.config.staging_dataset_name) == set()


@pytest.mark.parametrize("first", [{"disposition": "replace", "strategy": "staging-optimized"}, "merge"],
                         ids=["staging-optimized", "merge"])
def test_append_after_replace_keeps_child_rows(pg, first):
    p = pg()
    run_ok(p, [{"id": 1, "items": ["a"]}], table_name="t", write_disposition=first, primary_key="id")
    info = run_ok(p, [{"id": 2, "items": ["b", "c"]}], table_name="t", write_disposition="append")
    assert info.row_counts == {"t": 1, "t__items": 2}  # what LoadInfo says it loaded
    assert query(p, "SELECT id FROM t ORDER BY id") == [(1,), (2,)]
    assert children(p) == {1: ["a"], 2: ["b", "c"]}


# -- 7. schema evolution and credentials ----------------------------------------------------------------

@pytest.mark.parametrize("disposition", ["append", "merge"])
def test_column_added_in_a_later_run(pg, disposition):
    p = pg()
    hints = {"table_name": "t", "write_disposition": disposition,
             "primary_key": "id" if disposition == "merge" else None}
    run_ok(p, [{"id": 1, "a": "x", "items": [{"k": 1}]}], **hints)
    before = live_columns(p, "t")
    assert "b" not in before
    run_ok(p, [{"id": 2, "a": "y", "b": "2024-05-06T07:08:09.123456Z", "c": {"x": 5}, "order": True,
                "items": [{"k": 2, "extra": "e"}]}], **hints)
    after = live_columns(p, "t")
    assert list(after)[:len(before)] == list(before)  # added at the end, nothing rebuilt
    assert after["b"][0] == "timestamp with time zone"
    assert after["c__x"][0] == "bigint"
    assert after["order"][0] == "boolean"
    assert live_columns(p, "t__items")["extra"][0] == "text"
    rows = query(p, 'SELECT id, a, b IS NULL, c__x, "order" FROM t ORDER BY id')
    assert rows == [(1, "x", True, None, None), (2, "y", False, 5, True)]
    assert query(p, "SELECT k, extra FROM t__items ORDER BY k") == [(1, None), (2, "e")]


def test_password_never_shown(pg, caplog):
    secret = "Pw-4xQ9zZ"
    if make_url_password(POSTGRES_URL):
        pytest.skip("needs a server with trust auth (any password accepted)")
    url = pg_url(password=secret)
    p = pg(credentials=url)  # trust auth: the server accepts any password
    info = run_ok(p, [{"id": 1}], table_name="t")
    credentials = p.config.credentials
    assert credentials.password == secret  # it was parsed, and used
    shown = [str(info), repr(info), repr(credentials), str(credentials), credentials.location(), repr(p)]
    for text in shown:
        assert secret not in text, text
    assert "***" in credentials.location()

    # the same pipeline (same local state) once the server is unreachable: retried, then given up
    caplog.set_level(logging.WARNING)
    port = _closed_port()
    closed = pg(credentials=pg_url(password=secret, host="127.0.0.1", port=port))
    with pytest.raises(LoadbayError) as err:
        closed.run([{"id": 1}], table_name="t")
    chain = exception_chain(err.value)
    assert any(isinstance(e, DestinationTransientError) for e in chain), chain
    texts = [str(e) for e in chain] + [repr(e) for e in chain] + [closed.config.credentials.location()]
    texts += [r.getMessage() for r in caplog.records]
    assert any(str(port) in t for t in texts)
    for text in texts:
        assert secret not in text, text


def test_password_in_url_query_never_shown(pg):
    secret = "Qry-7kW2pL"
    if make_url_password(POSTGRES_URL):
        pytest.skip("needs a server with trust auth (any password accepted)")
    url = pg_url({"password": secret})
    p = pg(credentials=url)
    info = run_ok(p, [{"id": 1}], table_name="t")  # libpq took the password from the query
    for text in (str(info), repr(p.config.credentials), p.config.credentials.location()):
        assert secret not in text, text


def test_jsonl_transcode_that_runs_out_of_memory_retries_with_more(pg, monkeypatch, caplog):
    """The default jsonl path transcodes with DuckDB under a memory cap; a file that needs more is
    retried with the fallback limit instead of failing the load."""
    from loadbay.destinations import transcode

    monkeypatch.setattr(transcode, "TRANSCODE_MEMORY", "1MB")  # too little for any file
    p = pg()
    rows = [{"id": i, "s": f"row {i}", "f": i / 3} for i in range(2000)]
    with caplog.at_level(logging.WARNING, logger="loadbay.destinations.transcode"):
        run_ok(p, rows, table_name="t")
    assert count(p, "t") == 2000
    assert query(p, "SELECT sum(id) FROM t") == [(sum(range(2000)),)]
    assert any("retrying with 1GB" in r.getMessage() for r in caplog.records)


def test_a_connection_lost_inside_a_with_block_is_reconnected(pg, caplog):
    """``with p:`` keeps one session across runs; the server ending it (a restart, an idle timeout) costs
    the next run a retry on a new connection, not a failure."""
    name = f"lb_kept_{uuid.uuid4().hex[:8]}"
    p = pg(credentials=pg_url({"application_name": name}))
    with p:
        run_ok(p, [{"id": 1}], table_name="t")
        assert query(p, "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()") == [(name,)], \
            "inside the block, the pipeline's SQL client is the kept session"
        other = pg(credentials=pg_url({"application_name": "lb_killer"}))  # a session of its own, outside the block
        ended = query(other, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", name)
        assert ended == [(True,)], "exactly loadbay's kept session is ended"
        with caplog.at_level(logging.WARNING, logger="loadbay"):
            run_ok(p, [{"id": 2}], table_name="t")
    assert query(p, "SELECT id FROM t ORDER BY id") == [(1,), (2,)]
    assert any("transient error" in r.getMessage() for r in caplog.records)


# -- partitioned tables: made by the user, loaded by loadbay ---------------------------------------------

def test_a_partitioned_table_made_beforehand_is_extended_and_merged_into(pg):
    """loadbay declares no partitioning (the partitions are the user's to know): a partitioned table the user
    made before the first load is found, gets new columns and takes appends and merges, rows in their partitions."""
    from datetime import date

    p = pg()
    table = f'"{p.dataset_name}"."events"'
    with p.sql_client() as client:
        client.create_dataset()
        client.execute_sql(f"CREATE TABLE {table} (day date NOT NULL, id bigint NOT NULL, PRIMARY KEY (day, id)) "
                           "PARTITION BY RANGE (day)")
        for year in (2024, 2025):
            client.execute_sql(f'CREATE TABLE "{p.dataset_name}"."events_{year}" PARTITION OF {table} '
                               f"FOR VALUES FROM ('{year}-01-01') TO ('{year + 1}-01-01')")
    hints = {"write_disposition": "merge", "primary_key": ["day", "id"],
             "columns": {"day": {"data_type": "date", "partition": True}}}
    run_ok(p, [{"day": "2024-05-01", "id": 1, "v": "a"}, {"day": "2025-02-01", "id": 2, "v": "b"}],
           table_name="events", **hints)
    run_ok(p, [{"day": "2024-05-01", "id": 1, "v": "a2", "tags": ["x"]}], table_name="events", **hints)
    assert query(p, f"SELECT day, id, v FROM {table} ORDER BY id") == [(date(2024, 5, 1), 1, "a2"),
                                                                       (date(2025, 2, 1), 2, "b")]
    assert query(p, f'SELECT id FROM "{p.dataset_name}"."events_2024"') == [(1,)]
    assert query(p, f"SELECT relkind FROM pg_class WHERE oid = '{table}'::regclass") == [("p",)]


def test_an_instant_before_the_year_one_loads_from_arrow_as_from_dicts(pg):
    """``0001-01-01T00:00:00+01:00`` is in 1 BC in UTC: the dict path's jsonl gives PostgreSQL the text, the Arrow
    path's csv spells it ``0001-12-31 23:00:00…Z BC`` (Arrow writes the proleptic year 0, which PostgreSQL
    refuses); naive timestamps and dates before the year 1 likewise."""
    import pyarrow as pa

    text = ["2020-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", None]
    p = pg()
    run_ok(p, [{"id": i, "at": v} for i, v in enumerate(text)], table_name="from_dicts")
    run_ok(p, pa.table({"id": [0, 1, 2], "at": text}), table_name="from_arrow")
    year_one = -62135596800 * 10**6
    run_ok(p, pa.table({"id": [0, 1], "naive": pa.array([year_one - 3600 * 10**6, 0], pa.timestamp("us")),
                        "day": pa.array([-719162 - 1, -719162 - 366], pa.date32())}), table_name="early")

    def texts(table: str, columns: str) -> list[tuple]:
        return query(p, f"SELECT {columns} FROM {p.dataset_name}.{table} ORDER BY id")

    assert texts("from_arrow", "at::text") == texts("from_dicts", "at::text") == [
        ("2020-01-01 00:00:00+00",), ("0001-12-31 23:00:00+00 BC",), (None,)]
    assert texts("early", "naive::text, day::text") == [("0001-12-31 23:00:00+00 BC", "0001-12-31 BC"),  # naive: UTC
                                                       ("1970-01-01 00:00:00+00", "0001-01-01 BC")]
