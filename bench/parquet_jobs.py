"""PostgreSQL: ways to load a parquet load file, timed on the same files into the same tables.

Files (pyarrow, columns typed by ``arrow_type`` like every loadbay parquet file, row groups of
``--row-group`` rows as the normalizer writes them):

- flat: 1,000,000 rows, 12 columns: ``_lb_load_id``, ``_lb_id``, bigint, double (with NaN/±inf),
  text with quotes, commas and newlines, nullable text (NULLs and empty strings), timestamptz, bool
  (with NULLs), decimal(38,9), date, nullable bigint, short binary;
- nested: 200,000 rows of json-heavy records: two jsonb columns (an object of ~600 bytes with quotes,
  unicode and nested lists, and an array), text, timestamptz, binary.

Ways (each a load job class run inside one transaction, as the loader runs it):

- ``python_rows``: the job this replaced: each row group to Python dicts (``to_pylist``), loadbay's
  csv writer, one COPY per row group;
- ``duckdb_csv``: DuckDB's parquet reader and csv writer into a scratch file, then one COPY of it
  (the jsonl job's way). Not exact for decimals wider than 38 digits (DuckDB reads them as DOUBLE);
- ``arrow_csv_inline``: Arrow's csv writer, one batch rendered each time COPY asks for more bytes;
- ``arrow_csv``: the same, rendered one batch ahead by a thread (``ParquetCopyJob``, what loadbay uses);
- ``pgpq_binary``: ``COPY ... (FORMAT binary)`` encoded by pgpq (Rust), when pgpq is installed (it is
  not a loadbay dependency). It has no encoder for decimals wider than 38 digits.

With ``--duckdb`` (the default) DuckDB's ``ParquetJob`` is timed on the same files into a DuckDB file,
as it runs (rows inserted in any order) and with ``preserve_insertion_order`` left on.

Every PostgreSQL run is checked: row count and an order-independent checksum of the rows' text
(``sum(md5(row::text))``) must equal those of the first way; a mismatch exits non-zero. Each way runs
``--rounds`` times (CHECKPOINT before each, the table truncated); reported are the median and best wall
time and the median CPU seconds of the client process (all its threads) and of the server's backend
(read from /proc: the server must run on the same machine), which a busy machine disturbs less.

Usage: ``python bench/parquet_jobs.py [--scale 1.0] [--rounds 3] [--ways python_rows,arrow_csv]``;
the server comes from ``LOADBAY_BENCH_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/test``).

Figures (2-core VM shared with other work, load average ~7 during the run, so wall times are about
twice a quiet machine's; CPU seconds are the steadier measure. PostgreSQL 15 on the same machine,
pyarrow 26, DuckDB 2.0, pgpq 0.12, median of 3)::

    flat, 1,000,000 rows        wall     rows/s   client cpu  server cpu
      python_rows              27.90 s    35,843     10.49 s      1.76 s
      duckdb_csv                5.09 s   196,390      0.93 s      1.58 s
      arrow_csv_inline          4.24 s   235,580      0.77 s      1.61 s
      arrow_csv                 4.00 s   250,084      0.76 s      1.57 s   <- ParquetCopyJob
      pgpq_binary               2.07 s   482,046      0.43 s      0.76 s
      duckdb_ordered            2.93 s   341,692
      duckdb_read_parquet       2.04 s   491,095                           <- DuckDB's ParquetJob
    nested, 200,000 rows
      python_rows               6.63 s    30,170      2.42 s      1.18 s
      duckdb_csv                3.14 s    63,620      0.34 s      1.14 s
      arrow_csv_inline          2.62 s    76,224      0.28 s      1.15 s
      arrow_csv                 2.49 s    80,474      0.29 s      1.20 s   <- ParquetCopyJob
      pgpq_binary               1.81 s   110,333      0.15 s      0.84 s
      duckdb_ordered            0.81 s   246,616
      duckdb_read_parquet       0.79 s   253,665

On a quiet moment of the same machine, arrow_csv loaded the flat file in 2.2-2.4 s (~420,000 rows/s).
Aware timestamps are rendered through their naive UTC view (``arrow_csv.utc_text``): Arrow's own csv
rendering of them cost ~1.4 s a million values, as much as the rest of the flat file together.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import loadbay  # noqa: E402
from loadbay.common.destination import LoadJob  # noqa: E402
from loadbay.common.schema.types import Column, Table  # noqa: E402
from loadbay.common.storage.package import JobFile  # noqa: E402
from loadbay.common.storage.writers import CsvWriter, arrow_type  # noqa: E402
from loadbay.destinations.duckdb.jobs import DuckDbReaderJob, ParquetJob  # noqa: E402
from loadbay.destinations import arrow_csv  # noqa: E402
from loadbay.destinations.postgres.jobs import JsonlCopyJob, ParquetCopyJob, parquet_batch_rows  # noqa: E402
from loadbay.destinations.transcode import TRANSCODE_MEMORY  # noqa: E402
from loadbay.destinations.statements import copy_from_stdin, raw  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
DATASET = "lb_bench_parquet"
FLAT_ROWS, NESTED_ROWS = 1_000_000, 200_000
LOAD_ID = "1700000000.000001"


# -- the files -------------------------------------------------------------------------------------
def _columns(spec: dict[str, tuple[str, dict[str, Any]]]) -> Table:
    return Table("t", {name: Column(name, data_type, **extra) for name, (data_type, extra) in spec.items()})


FLAT = _columns({
    "_lb_load_id": ("text", {}), "_lb_id": ("text", {}), "id": ("bigint", {}), "amount": ("double", {}),
    "name": ("text", {}), "note": ("text", {}), "created_at": ("timestamp", {}), "is_ok": ("bool", {}),
    "price": ("decimal", {"precision": 38, "scale": 9}), "day": ("date", {}), "qty": ("bigint", {}),
    "tag": ("binary", {}),
})
NESTED = _columns({
    "_lb_load_id": ("text", {}), "_lb_id": ("text", {}), "id": ("bigint", {}), "doc": ("json", {}),
    "items": ("json", {}), "source": ("text", {}), "seen_at": ("timestamp", {}), "sig": ("binary", {}),
})


def _schema(table: Table, capabilities: Any) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c, capabilities)) for c in table.columns.values()])


def _ids(n: int) -> pa.Array:
    return pa.array([f"{i:014x}" for i in range(n)], pa.string())


def flat_table(n: int, capabilities: Any) -> pa.Table:
    rng = np.random.default_rng(42)
    i = np.arange(n, dtype=np.int64)
    amount = np.round(rng.random(n) * 1000, 2)
    amount[i % 1000 == 1] = np.nan
    amount[i % 1000 == 2] = np.inf
    amount[i % 1000 == 3] = -np.inf
    words = ["plain", 'say "hi"', "a,b,c", "two\nlines", "back\\slash", "ünïcödé 😀", "'single'", ""]
    name = [f"user {k} {words[k % len(words)]}" for k in range(n)]
    note = [None if k % 5 == 0 else ("" if k % 5 == 1 else f"note {k}") for k in range(n)]
    created = (dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1_000_000 + i * 1_000_003)
    is_ok = pa.array(np.where(i % 3 == 0, True, False), mask=(i % 11 == 0))
    price = pa.array([Decimal(k * 37 % 100_000_000) / 1000 for k in range(n)], pa.decimal128(38, 9))
    day = (i % 20000).astype(np.int32)
    qty = pa.array(i % 97, mask=(i % 4 == 0))
    tag = [None if k % 9 == 0 else (k % 65536).to_bytes(2, "big") + b"\x00\\\"," for k in range(n)]
    columns = [pa.array([LOAD_ID] * n), _ids(n), pa.array(i), pa.array(amount), pa.array(name), pa.array(note),
               pa.array(created.astype(np.int64)), is_ok, price, pa.array(day), qty, pa.array(tag)]
    schema = _schema(FLAT, capabilities)
    return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(columns, schema)], schema=schema)


def nested_table(n: int, capabilities: Any) -> pa.Table:
    sources = ["web", "ios", "android"]
    docs, items = [], []
    for k in range(n):
        docs.append(orjson.dumps({
            "user": {"id": k, "name": f'user "{k}"', "email": f"u{k}@example.com", "locale": "日本語"},
            "event": {"kind": ["click", "view", "purchase"][k % 3], "path": f"/p/{k % 977}?q=a,b&x=\\y",
                      "props": {"a": k % 7, "b": [1, 2, {"c": None}], "d": k * 0.5, "e": k % 2 == 0}},
            "labels": [f"l{j}" for j in range(k % 6)], "note": "line\nbreak, comma; 'quote'",
        }).decode())
        items.append(orjson.dumps([{"sku": f"sku-{(k + j) % 500:04d}", "qty": j + 1} for j in range(k % 4)]).decode())
    i = np.arange(n, dtype=np.int64)
    seen = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1_000_000 + i * 999_983
    sig = [k.to_bytes(8, "little") * 4 for k in range(n)]
    columns = [pa.array([LOAD_ID] * n), _ids(n), pa.array(i), pa.array(docs), pa.array(items),
               pa.array([sources[k % 3] for k in range(n)]), pa.array(seen.astype(np.int64)), pa.array(sig)]
    schema = _schema(NESTED, capabilities)
    return pa.Table.from_arrays([c.cast(f.type) for c, f in zip(columns, schema)], schema=schema)


# -- the ways ----------------------------------------------------------------------------------------
class PythonRowsJob(LoadJob):
    """The replaced job: row groups to dicts, loadbay's csv writer, a COPY per row group."""

    def run(self, client: Any) -> None:
        import dataclasses

        parquet = pq.ParquetFile(self.job_file.path)
        names = parquet.schema_arrow.names
        columns = {n: (dataclasses.replace(self.table.columns[n], data_type="text")
                       if self.table.columns[n].data_type == "json" else self.table.columns[n]) for n in names}
        table = Table(self.table.name, columns)
        for batch in parquet.iter_batches(batch_size=50_000):
            text = io.StringIO()
            CsvWriter.to_stream(text, table, client.capabilities, batch.to_pylist())
            client.sql_client.copy_from(copy_from_stdin(self.target, names),
                                        io.BytesIO(text.getvalue().encode("utf-8")))


class DuckDbCsvJob(JsonlCopyJob):
    """The jsonl job's way with DuckDB's parquet reader: scratch csv, then one COPY."""

    def _transcode(self, columns: list[Column], csv_path: Path, memory_limit: str) -> None:
        import duckdb

        projections = []
        for c in columns:
            ref = f'"{c.name}"'
            projections.append(f"'\\x' || hex({ref}) AS {ref}" if c.data_type == "binary" else ref)
        path = str(self.job_file.path).replace("'", "''")
        target = str(csv_path).replace("'", "''")
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET preserve_insertion_order = false")
            con.execute(f"SET memory_limit = '{TRANSCODE_MEMORY}'")
            con.execute("SET threads = 1")
            con.execute(f"COPY (SELECT {', '.join(projections)} FROM read_parquet('{path}')) TO '{target}' "
                        "(FORMAT csv, HEADER true, QUOTE '\"', ESCAPE '\"')")


class _InlineStream:
    """Arrow's csv, rendered in the reading thread when COPY asks for more bytes."""

    def __init__(self, batches: Any) -> None:
        self._batches = iter(batches)
        self._chunk = b""
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        while self._position >= len(self._chunk):
            batch = next(self._batches, None)
            if batch is None:
                return b""
            self._chunk, self._position = arrow_csv.render(batch), 0
        end = min(len(self._chunk), self._position + size)
        data = self._chunk[self._position:end].to_pybytes()
        self._position = end
        return data


class ArrowInlineJob(LoadJob):
    def run(self, client: Any) -> None:
        parquet = pq.ParquetFile(self.job_file.path)
        names = parquet.schema_arrow.names
        stream = _InlineStream(parquet.iter_batches(batch_size=parquet_batch_rows(parquet)))
        client.sql_client.copy_from(copy_from_stdin(self.target, names, header=False), stream)


class _BinaryStream:
    """PostgreSQL's binary COPY format of each batch, encoded by pgpq (Rust) as COPY reads."""

    def __init__(self, parquet: Any, json_columns: set[str]) -> None:
        import pgpq
        from pgpq import encoders, schema

        fields = parquet.schema_arrow
        encoders = {f.name: (encoders.StringEncoderBuilder.new_with_output(f, schema.Jsonb())
                             if f.name in json_columns else pgpq.ArrowToPostgresBinaryEncoder.infer_encoder(f))
                    for f in fields}
        self._encoder = pgpq.ArrowToPostgresBinaryEncoder.new_with_encoders(fields, encoders)
        self._batches = parquet.iter_batches(batch_size=parquet_batch_rows(parquet))
        self._chunk, self._position, self._state = self._encoder.write_header(), 0, "rows"

    def read(self, size: int = -1) -> bytes:
        while self._position >= len(self._chunk):
            if self._state == "done":
                return b""
            batch = next(self._batches, None)
            if batch is None:
                self._chunk, self._state = self._encoder.finish(), "done"
            else:
                self._chunk = self._encoder.write_batch(batch)
            self._position = 0
        end = min(len(self._chunk), self._position + size)
        data = self._chunk[self._position:end]
        self._position = end
        return bytes(data)


class PgpqBinaryJob(LoadJob):
    """COPY ... (FORMAT binary) fed by pgpq; decimals wider than 38 digits have no encoder there."""

    def run(self, client: Any) -> None:
        parquet = pq.ParquetFile(self.job_file.path)
        names = parquet.schema_arrow.names
        json_columns = {n for n in names if self.table.columns[n].data_type == "json"}
        sql = client.sql_client
        columns = ", ".join(sql.render(sql.identifier(n)) for n in names)
        sql.copy_from(raw("COPY ", self.target, f" ({columns}) FROM STDIN WITH (FORMAT binary)"),
                      _BinaryStream(parquet, json_columns))


WAYS: dict[str, type[LoadJob]] = {"python_rows": PythonRowsJob, "duckdb_csv": DuckDbCsvJob,
                                  "arrow_csv_inline": ArrowInlineJob, "arrow_csv": ParquetCopyJob,
                                  "pgpq_binary": PgpqBinaryJob}
"""``pgpq_binary`` needs pgpq (``pip install pgpq``, not a loadbay dependency); it is left out without it."""


class OrderedParquetJob(ParquetJob):
    """DuckDB's job as it was: the rows inserted in file order (``preserve_insertion_order`` on)."""

    def run(self, client: Any) -> None:
        DuckDbReaderJob.run(self, client)


DUCKDB_WAYS: dict[str, type[LoadJob]] = {"duckdb_ordered": OrderedParquetJob, "duckdb_read_parquet": ParquetJob}


def run_duckdb(d: loadbay.Pipeline, way: str, table: Table, job_file: JobFile) -> tuple[float, tuple[Any, ...]]:
    """Wall seconds of one DuckDB load, and (count, sum(id), distinct _lb_id) of what it left."""
    with d.destination.client(d.config) as client:
        sql = client.sql_client
        target = sql.qualified(table.name)
        sql.execute_sql(f"DELETE FROM {sql.render(target)}")
        sql.execute_sql("CHECKPOINT")
        job = DUCKDB_WAYS[way](job_file, table, target)
        started = time.perf_counter()
        with sql.begin_transaction():
            job.run(client)
        elapsed = time.perf_counter() - started
        found = sql.execute_sql(f"SELECT count(*), sum(id), count(DISTINCT _lb_id) FROM {sql.render(target)}")
        return elapsed, tuple(found[0])


def bench_duckdb(work: Path, table: Table, job_file: JobFile, rows: int, rounds: int) -> bool:
    d = loadbay.pipeline("bench_parquet_duckdb", destination=loadbay.destination(
        "duckdb", credentials=str(work / "bench.duckdb")), dataset_name=DATASET, pipelines_dir=work / "pipelines")
    with d.destination.client(d.config) as client:
        sql = client.sql_client
        sql.create_dataset()
        columns = ", ".join(f'"{c.name}" {client.type_mapper.render(c)}' for c in table.columns.values())
        sql.execute_sql(f"CREATE OR REPLACE TABLE {sql.render(sql.qualified(table.name))} ({columns})")
    ok = True
    for way in DUCKDB_WAYS:
        runs = [run_duckdb(d, way, table, job_file) for _ in range(rounds)]
        times = [r[0] for r in runs]
        good = all(r[1] == (rows, rows * (rows - 1) // 2, rows) for r in runs)
        ok &= good
        median = statistics.median(times)
        print(f"  {way:18s} {median:6.2f} s {rows / median:>9,.0f} rows/s  best {min(times):5.2f} s  "
              f"{'ok' if good else f'MISMATCH {runs[0][1]}'}")
    return ok


# -- timing and checks -------------------------------------------------------------------------------
def checksum(conn: Any, table: str) -> tuple[int, int]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0) "
                    f"FROM {DATASET}.{table} t")
        return tuple(cur.fetchone())  # type: ignore[return-value]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a local process (the PostgreSQL backend), 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_way(p: loadbay.Pipeline, conn: Any, way: str, table: Table, job_file: JobFile) -> tuple[float, float, float]:
    """Wall seconds, client CPU seconds (all threads), server backend CPU seconds of one load."""
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE {DATASET}.{table.name}")
        cur.execute("CHECKPOINT")
    with p.destination.client(p.config) as client:
        job = WAYS[way](job_file, table, client.sql_client.qualified(table.name))
        backend = int(client.sql_client.execute_sql("SELECT pg_backend_pid()")[0][0])
        server, cpu, started = _cpu_seconds(backend), time.process_time(), time.perf_counter()
        with client.sql_client.begin_transaction():
            job.run(client)
        return (time.perf_counter() - started, time.process_time() - cpu, _cpu_seconds(backend) - server)


def create_table(p: loadbay.Pipeline, conn: Any, table: Table) -> None:
    with p.destination.client(p.config) as client:
        mapper = client.type_mapper
        columns = ", ".join(f'"{c.name}" {mapper.render(c)}' for c in table.columns.values())
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {DATASET}.{table.name}")
        cur.execute(f"CREATE TABLE {DATASET}.{table.name} ({columns})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--row-group", type=int, default=5000)
    parser.add_argument("--ways", default=",".join(WAYS if importlib.util.find_spec("pgpq") else list(WAYS)[:-1]))
    parser.add_argument("--files", default="flat,nested")
    parser.add_argument("--duckdb", action=argparse.BooleanOptionalAction, default=True,
                        help="also time DuckDB's read_parquet job, with and without insertion order")
    args = parser.parse_args()
    url = os.environ.get("LOADBAY_BENCH_POSTGRES", DEFAULT_URL)
    ways = args.ways.split(",")
    work = Path(tempfile.mkdtemp(prefix="lb_bench_parquet_"))
    p = loadbay.pipeline("bench_parquet", destination=loadbay.destination("postgres", credentials=url),
                         dataset_name=DATASET, pipelines_dir=work / "pipelines")
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {DATASET} CASCADE")
        cur.execute(f"CREATE SCHEMA {DATASET}")
    failed = False
    try:
        for name in args.files.split(","):
            rows = int((FLAT_ROWS if name == "flat" else NESTED_ROWS) * args.scale)
            spec = FLAT if name == "flat" else NESTED
            table = Table(name, spec.columns)
            make: Callable[[int, Any], pa.Table] = flat_table if name == "flat" else nested_table
            folder = work / "packages" / LOAD_ID / "started_jobs"
            folder.mkdir(parents=True, exist_ok=True)
            job_file = JobFile(folder / f"{name}.abcdef.0.parquet")
            pq.write_table(make(rows, p.capabilities), job_file.path, row_group_size=args.row_group)
            size = job_file.path.stat().st_size
            create_table(p, conn, table)
            print(f"\n{name}: {rows:,} rows, parquet {size / 2**20:.1f} MiB, "
                  f"{pq.ParquetFile(job_file.path).metadata.num_row_groups} row groups")
            reference: tuple[int, int] | None = None
            for way in ways:
                runs = [run_way(p, conn, way, table, job_file) for _ in range(args.rounds)]
                got = checksum(conn, name)
                reference = reference or got
                ok = got == reference and got[0] == rows
                failed |= not ok
                times = [r[0] for r in runs]
                median = statistics.median(times)
                client_cpu = statistics.median(r[1] for r in runs)
                server_cpu = statistics.median(r[2] for r in runs)
                print(f"  {way:18s} {median:6.2f} s {rows / median:>9,.0f} rows/s  best {min(times):5.2f} s  "
                      f"cpu client {client_cpu:5.2f} s server {server_cpu:5.2f} s  "
                      f"{'ok' if ok else f'MISMATCH {got} != {reference}'}")
            if args.duckdb:
                failed |= not bench_duckdb(work, table, job_file, rows, args.rounds)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {DATASET} CASCADE")
        conn.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
