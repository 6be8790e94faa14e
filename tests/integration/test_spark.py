"""The spark destination on the real Thrift server, beyond the conformance suite: a merge interrupted between
the renames of its swap resumes without building again from a table already swapped, done-records are forgotten
by tombstones (Spark cannot delete them), values sent as literals arrive exactly, statements run before the
server answers (no polling), and a session close the server never answers does not block (through a proxy that
holds the answers back).

The server is ``setups.SPARK_URL`` (``scripts/spark.sh start``). The tests run when the ``spark`` setup does
(``--lb-setup spark``, or ``LOADBAY_TEST_SPARK`` set); then they skip with the reason when it does not answer, and
fail under CI=true. Each test drops its datasets afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import loadbay
from loadbay.common.exceptions import DestinationTransientError, DestinationUndefinedRelation
from loadbay.destinations import job_client
from loadbay.destinations.spark import swap
from loadbay.destinations.spark.sql_client import SparkSqlClient
from loadbay.destinations.testing.conformance.helpers import drop_datasets, query, run_ok
from loadbay.destinations.testing.setups import SPARK_URL, active, require_server
from tests.integration.support import new_dataset
from tests.integration.tcp_proxy import HoldingProxy, holding_proxy


@pytest.fixture
def spark_server() -> str:
    """The test server's URL, where the spark setup is part of the run and the server answers."""
    if "spark" not in active():
        pytest.skip("the spark setup is not part of this run: pass --lb-setup spark or set LOADBAY_TEST_SPARK")
    require_server("spark")
    return SPARK_URL


@pytest.fixture
def sp(tmp_path: Path, spark_server: str) -> Iterator[Callable[..., loadbay.Pipeline]]:
    """``sp(name, dataset_name=None, **settings)``: a spark pipeline on a fresh dataset (or the one named), dropped (with its
    staging twin) afterwards."""
    made: list[loadbay.Pipeline] = []

    def make(name: str = "spark_test", dataset_name: str | None = None, **settings: Any) -> loadbay.Pipeline:
        p = loadbay.pipeline(name, destination=loadbay.destination("spark", credentials=SPARK_URL),
                             dataset_name=dataset_name or new_dataset(), pipelines_dir=tmp_path / "pipelines", **settings)
        made.append(p)
        return p

    yield make
    for p in made:
        drop_datasets(p)


class Crash(Exception):
    """Stands for the process dying at a crash point (the loader does not catch it)."""


def test_a_merge_interrupted_mid_swap_resumes_without_rebuilding(sp, monkeypatch):
    p = sp()
    run_ok(p, [{"id": i, "v": f"a{i}", "items": [i]} for i in range(3)], table_name="t", write_disposition="merge",
           primary_key="id")

    def crash_at(name: str) -> None:
        if name == "spark.swapping":  # the root renamed to __old, its __new not yet renamed to t
            raise Crash(name)

    monkeypatch.setattr(swap, "crash_point", crash_at)
    second = [{"id": 1, "v": "b1", "items": [10, 11]}, {"id": 5, "v": "b5", "items": []}]
    with pytest.raises(Exception) as raised:
        p.run(second, table_name="t", write_disposition="merge", primary_key="id")
    assert any(isinstance(e, Crash) for e in _chain(raised.value))
    with p.sql_client() as client:
        left = client.table_names(p.dataset_name) or set()
    assert "t" not in left and any(n.endswith("__old") for n in left)  # the crash left the root half swapped

    monkeypatch.undo()
    run_ok(p)  # resumes the pending package: finishes the swaps, writes the record, drops the old tables
    assert query(p, "SELECT id, v FROM t ORDER BY id") == [(0, "a0"), (1, "b1"), (2, "a2"), (5, "b5")]
    assert query(p, "SELECT t.id, i.value FROM t JOIN t__items i ON i._lb_root_id = t._lb_id ORDER BY 1, 2") == [
        (0, 0), (1, 10), (1, 11), (2, 2)]
    with p.sql_client() as client:
        assert not {n for n in client.table_names(p.dataset_name) or set() if n.endswith(("__old", "__new"))}
    assert query(p, "SELECT count(*) FROM _lb_loads") == [(2,)]


@pytest.mark.parametrize("stop", ["killed", "connection lost"])
def test_an_append_stopped_between_a_files_insert_and_its_record_does_not_load_it_twice(sp, monkeypatch, caplog, stop):
    """Spark commits a file's INSERT before its done-record is written (no transactions). Stopped between the two,
    the next attempt finds the file's rows in the table and writes the record only: by the resume of a killed run
    (the job tried before: its file's retry count), or by the same run's retry after a lost connection."""
    p = sp(file_max_items=4)
    rows = [{"id": i, "tags": [f"{i}a", f"{i}b"]} for i in range(10)]  # 3 files of t, 5 of t__tags
    calls: list[str] = []

    def crash_at(name: str) -> None:
        if name == "job.loaded":
            calls.append(name)
            if len(calls) == 2:  # the second file's INSERT committed, its record not written
                raise Crash(name) if stop == "killed" else DestinationTransientError("connection lost (test)")

    monkeypatch.setattr(job_client, "crash_point", crash_at)
    caplog.set_level("INFO", logger="loadbay")
    if stop == "killed":
        with pytest.raises(Exception) as raised:
            p.run(rows, table_name="t")
        assert any(isinstance(e, Crash) for e in _chain(raised.value))
        loaded = query(p, "SELECT count(*) FROM t")[0][0] + query(p, "SELECT count(*) FROM t__tags")[0][0]
        assert loaded == 8  # two files of 4 rows in: the first, and the one whose record is missing
        monkeypatch.undo()
        run_ok(p)  # resumes the package
    else:
        run_ok(p, rows, table_name="t")  # the Loader's retry, on a new connection
    assert query(p, "SELECT count(*), count(DISTINCT id), sum(id) FROM t") == [(10, 10, 45)]
    assert query(p, "SELECT count(*), count(DISTINCT value) FROM t__tags") == [(20, 20)]
    records_only = [r.getMessage() for r in caplog.records if "the record only" in r.getMessage()]
    assert len(records_only) == 1, records_only
    assert query(p, "SELECT count(*) FROM _lb_loads") == [(1,)]


def test_done_records_are_forgotten_by_tombstones(sp):
    p = sp()
    run_ok(p, [{"id": 1}], table_name="t")
    client = p.destination.client(p.config)
    with client:
        client._insert_row("_lb_jobs", {"load_id": "L", "job_id": "a", "table_name": "t",
                                        "inserted_at": datetime(2024, 1, 1, tzinfo=timezone.utc)})
        client._insert_row("_lb_jobs", {"load_id": "L", "job_id": "b", "table_name": "u",
                                        "inserted_at": datetime(2024, 1, 1, tzinfo=timezone.utc)})
        assert client.loaded_jobs("L") == {"a", "b"}
        client._forget_jobs("L", ["t"])
        assert client.loaded_jobs("L") == {"b"}  # what _forget_jobs saw, less the tables it forgot
        assert client.loaded_jobs("L") == {"b"}  # read: the same
        client._insert_row("_lb_jobs", {"load_id": "L", "job_id": "c", "table_name": "t",
                                        "inserted_at": datetime.now(timezone.utc)})
        assert client.loaded_jobs("L") == {"b", "c"}
        client._forget_jobs("L")
        assert client.loaded_jobs("L") == set()


def test_parameters_arrive_as_exact_literals(sp):
    """The Thrift protocol has no bind parameters: loadbay's statements carry sqlglot literals instead, so quotes,
    backslashes, line breaks, decimals, microseconds and bytes arrive as they were."""
    p = sp()
    run_ok(p, [{"id": 1}], table_name="t")
    from sqlglot import exp

    values = ["it's a \\ back\nslash", Decimal("-12345.678900001"), datetime(2024, 2, 29, 23, 59, 59, 999999,
              tzinfo=timezone.utc), date(1, 1, 1), b"\x00\xff'", float("nan"), True, None]
    with p.sql_client() as client:
        row = client.execute_sql(exp.select(*[exp.Placeholder() for _ in values]), *values)[0]
    assert row[:4] == (values[0], values[1], datetime(2024, 2, 29, 23, 59, 59, 999999), values[3])
    assert bytes(row[4]) == values[4] and row[5] != row[5] and row[6:] == (True, None)


def test_a_session_opens_in_utc_with_time_on_and_the_dataset_current(sp):
    """The session settings travel with the session's opening (no SET statements): UTC and Spark's TIME type,
    whatever the server's defaults; the dataset is the current database once it exists, and a connection to a
    dataset not created yet opens without it."""
    p = sp()
    with p.sql_client() as client:
        assert client.execute_sql("SET spark.sql.session.timeZone") == [("spark.sql.session.timeZone", "UTC")]
        assert client.execute_sql("SET spark.sql.timeType.enabled") == [("spark.sql.timeType.enabled", "true")]
        assert client.execute_sql("SELECT current_database()") == [("default",)]  # no dataset yet
    run_ok(p, [{"id": 1}], table_name="t")
    with p.sql_client() as client:
        assert client.execute_sql("SELECT current_database()") == [(p.dataset_name,)]
        assert client.execute_sql("SELECT id FROM t") == [(1,)]


def test_statements_run_before_the_server_answers_unless_they_move_data(sp):
    """A statement that moves no data goes to the server with ``runAsync`` false (``WaitingSession``): it has ended
    when the ExecuteStatement call returns, so the cursor never sleeps between polls; results and errors come as
    before. An INSERT ... SELECT or a CTAS runs in the background, which the server cancels if the client goes."""
    p = sp()
    asked: list[bool] = []
    with p.sql_client() as client:
        client.create_dataset()
        with client.cursor() as cursor:
            session = cursor.session._session
            real_execute = session.execute

            def spy(statement: str, configuration: object = None, run_async: bool = False) -> object:
                asked.append(run_async)
                return real_execute(statement, configuration, run_async=run_async)

            session.execute = spy
        assert client.execute_sql("SELECT 1 + 1") == [(2,)]
        with pytest.raises(DestinationUndefinedRelation):
            client.execute_sql("SELECT * FROM lb_no_such_table")
        client.execute_sql("CREATE TABLE t USING parquet AS SELECT 1 AS id")
        client.execute_sql("INSERT INTO t SELECT 2")
        client.execute_sql("INSERT INTO t VALUES (3)")
        assert client.execute_sql("SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]
    assert asked == [False, False, True, True, False, False]


def _recording(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the Spark SQL clients run from now on, in order (they still run)."""
    from loadbay.destinations.spark.sql_client import SparkSqlClient

    run: list[str] = []
    real = SparkSqlClient.execute_text

    def execute_text(self: SparkSqlClient, text: str, params: tuple = ()) -> object:
        run.append(text)
        return real(self, text, params)

    monkeypatch.setattr(SparkSqlClient, "execute_text", execute_text)
    return run


def test_a_run_reads_the_catalog_and_its_records_once(sp, monkeypatch):
    """What a run's client read or made itself is not asked again within the run: the dataset's tables answer
    whether it exists (no SHOW DATABASES), the package's _lb_loads record and done-records are read once, the
    staging dataset is listed, not dropped into table by table; a new dataset asks nothing of its system tables."""
    p = sp()
    run = _recording(monkeypatch)
    run_ok(p, [{"id": 1, "kids": [1, 2]}], table_name="t", write_disposition="merge", primary_key="id")
    first = list(run)
    reads = [s for s in first if s.startswith(("SHOW DATABASES", "DESCRIBE", "SELECT"))]
    assert len(reads) == 1 and reads[0].startswith("SELECT 1 FROM"), first  # only compact_jobs' look at _lb_jobs
    run.clear()
    run_ok(p, [{"id": 1, "kids": [3]}, {"id": 2}], table_name="t", write_disposition="merge", primary_key="id")
    second = list(run)

    def matching(prefix: str, table: str = "") -> list[str]:
        return [s for s in second if s.startswith(prefix) and table in s]

    assert not matching("SHOW DATABASES")
    assert len(matching("SELECT", "`_lb_loads`")) == 1
    assert len(matching("SELECT `job_id`", "`_lb_jobs`")) == 1
    assert len(matching("SHOW TABLES")) == 4  # the dataset and the staging dataset, each before and after the jobs
    assert len(matching("DROP TABLE")) == 4  # two __old tables, two staging tables; no staging table was left
    assert len(second) <= 36, second
    assert query(p, "SELECT t.id, k.value FROM t LEFT JOIN t__kids k ON k._lb_root_id = t._lb_id ORDER BY 1, 2") == [
        (1, 3), (2, None)]


def test_a_kept_connection_sees_what_another_changed_between_runs(sp):
    """``with p:`` keeps one connection across runs; what it learned of the catalog goes at each run's start, so
    a dataset or a table another connection dropped in between is made again, and a table another connection made
    with a column the data lacks is used as it is."""
    p = sp()
    with p:  # inside the block p.sql_client() is the kept connection: "another" is a client of its own
        run_ok(p, [{"id": 1}], table_name="t")
        with p.destination.sql_client(p.config) as other:
            other.drop_dataset(p.dataset_name)
            other.drop_dataset(p.config.staging_dataset_name)
        run_ok(p, [{"id": 2}], table_name="t")
        assert query(p, "SELECT id FROM t") == [(2,)]
        with p.destination.sql_client(p.config) as other:
            other.execute_sql(f"DROP TABLE {p.dataset_name}.t")
            other.execute_sql(f"CREATE TABLE {p.dataset_name}.u (_lb_load_id STRING, _lb_id STRING, id BIGINT, "
                              "extra STRING) USING parquet")
        run_ok(p, [{"id": 3}], table_name="t")
        run_ok(p, [{"id": 4}], table_name="u")
    assert query(p, "SELECT id FROM t") == [(3,)]
    assert query(p, "SELECT id, extra FROM u") == [(4, None)]


def test_a_kept_connection_reads_what_another_pipeline_loaded_between_its_runs(sp):
    """A Spark session keeps the files of each table it read: a merge on a kept connection rebuilt the table from
    the files it saw in its previous run, and the rows another pipeline appended in between were lost (seen here).
    Each run on a kept connection starts a new session."""
    p = sp("keeps")
    other = sp("appends", dataset_name=p.dataset_name)
    with p:
        run_ok(p, [{"id": 1, "v": "a"}], table_name="t", write_disposition="merge", primary_key="id")
        assert query(p, "SELECT id FROM t") == [(1,)]  # the kept session reads t (and the loads table)
        run_ok(other, [{"id": 2, "v": "b"}], table_name="t", write_disposition="append")
        run_ok(p, [{"id": 3, "v": "c"}, {"id": 1, "v": "a2"}], table_name="t", write_disposition="merge",
               primary_key="id")
        assert query(p, "SELECT id, v FROM t ORDER BY id") == [(1, "a2"), (2, "b"), (3, "c")]


def test_a_dataset_made_by_another_connection_during_the_first_run_is_used(sp):
    """The first run's connection found no dataset; while it normalizes, another connection makes the dataset and
    the table the run loads, without the run's column and with one more: the run reads the catalog it did not make
    (not what it saw at connecting), adds the column and loads."""
    p = sp()

    def rows() -> Iterator[dict[str, int]]:
        with p.sql_client() as other:  # a connection of its own
            other.create_dataset()
            other.execute_sql(f"CREATE TABLE {p.dataset_name}.t (_lb_load_id STRING, _lb_id STRING, extra STRING) "
                              "USING parquet")  # without the run's column id: the run must see it and add it
        yield {"id": 1}

    run_ok(p, rows(), table_name="t")
    assert query(p, "SELECT id, extra FROM t") == [(1, None)]
    run_ok(p, [{"id": 2}], table_name="t")
    assert query(p, "SELECT id FROM t ORDER BY id") == [(1,), (2,)]


def _chain(exc: BaseException | None) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _in_thread(work: Callable[[], Any], seconds: float = 60) -> Any:
    """``work()``'s result, run on a thread given ``seconds``: a client blocked for good fails the test, not the run."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("value", work()))
        except BaseException as exc:  # noqa: BLE001 - raised again on the test's thread
            outcome.append(("error", exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"still blocked after {seconds} s"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return value


@pytest.fixture
def through_proxy(spark_server: str, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HoldingProxy, loadbay.Pipeline]]:
    """A pipeline whose connections go through a ``HoldingProxy`` in front of the test server (on a dataset never
    created: nothing to drop), with a session close bounded to one second."""
    monkeypatch.setattr(SparkSqlClient, "SESSION_CLOSE_TIMEOUT", 1.0)
    server = urlsplit(spark_server)
    with holding_proxy(server.hostname or "127.0.0.1", server.port or 10000) as proxy:
        url = server._replace(netloc=f"{server.username or 'loadbay'}@127.0.0.1:{proxy.port}").geturl()
        yield proxy, loadbay.pipeline("spark_close", destination=loadbay.destination("spark", credentials=url),
                                      dataset_name=new_dataset(), pipelines_dir=tmp_path / "pipelines")


def test_a_session_close_that_gets_no_answer_ends_with_its_connection(through_proxy):
    """A close the server never answers (a Spark 4 server without Hive's LLAP jar hangs them all) drops the connection
    after ``SESSION_CLOSE_TIMEOUT`` instead of blocking the pipeline for good."""
    proxy, p = through_proxy

    def use_then_close() -> Any:
        with p.sql_client() as client:
            answer = client.execute_sql("SELECT 1")
            proxy.hold()
        return answer, client._conn

    assert _in_thread(use_then_close) == ([(1,)], None)


def test_a_renewed_session_whose_old_one_gets_no_close_answer_runs_on_a_new_connection(through_proxy):
    """A kept connection renews its session for a new run (``forget_catalog``); when the old session's close gets no
    answer, the statement runs on a new connection instead of waiting."""
    proxy, p = through_proxy

    def renew() -> Any:
        with p.sql_client() as client:
            client.execute_sql("SELECT 1")
            first = client._conn
            proxy.hold()
            client.forget_catalog()
            return client.execute_sql("SELECT 2"), client._conn is not first

    assert _in_thread(renew) == ([(2,)], True)
