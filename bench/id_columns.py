"""What loadbay's own columns cost DuckDB, apart from everything else loadbay does (issue 9's design question).

Issue 9 asks for a 1,000,000-row Arrow table or parquet file loaded into DuckDB within 1.5x of DuckDB's own
``CREATE TABLE ... AS SELECT *``, and for ``_lb_load_id`` and ``_lb_id`` on every row. This times the bare
statement with those columns added in different ways, so the floor they set is a measured figure, not a guess:

- ``plain``: ``CREATE TABLE e AS SELECT * FROM read_parquet(f)``, the issue's baseline;
- ``+ load id``: the same with ``_lb_load_id``, one constant;
- ``+ bigint id``: and an integer ``_lb_id`` from DuckDB's ``file_row_number`` (an id loadbay does not use);
- ``+ text id in SQL``: and loadbay's ``_lb_id`` (12 hex digits of prefix, 12 of counter) made by DuckDB;
- the same rows as an Arrow table (read before the clock): DuckDB's ``CREATE TABLE AS`` of it, plain and with
  both columns added as loadbay's Arrow path makes them (``normalizer_arrow.id_array``, also before the clock).

Each statement runs into a fresh database file and is followed by ``CHECKPOINT`` (so the data is on disk); medians
of ``--rounds``. Usage: ``python bench/id_columns.py [--rows 1000000] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arrow_data import make_table  # noqa: E402 - the bench folder is not a package

from loadbay.common.normalizer_arrow import id_array  # noqa: E402

LOAD_ID = "1764300000.123456"
PREFIX = "ab12cd34ef56"


def sql_cases() -> dict[str, str]:
    """The statements over ``read_parquet($path)``, the file's path bound as a parameter."""
    source = "read_parquet($path, file_row_number := true)"
    keep = f"* EXCLUDE (file_row_number), '{LOAD_ID}' AS _lb_load_id"
    return {
        "plain": "CREATE TABLE e AS SELECT * FROM read_parquet($path)",
        "+ load id": f"CREATE TABLE e AS SELECT *, '{LOAD_ID}' AS _lb_load_id FROM read_parquet($path)",
        "+ bigint id": f"CREATE TABLE e AS SELECT {keep}, file_row_number + 4000000000 AS _lb_id FROM {source}",
        "+ text id in SQL": f"CREATE TABLE e AS SELECT {keep}, "
                            f"'{PREFIX}' || lpad(to_hex(file_row_number), 12, '0') AS _lb_id FROM {source}",
    }


def timed(work: Path, run: Callable[[duckdb.DuckDBPyConnection], None], rounds: int) -> list[float]:
    seconds = []
    for r in range(rounds):
        con = duckdb.connect(str(work / f"round{r}_{time.monotonic_ns()}.duckdb"))
        started = time.perf_counter()
        run(con)
        con.execute("CHECKPOINT")
        seconds.append(time.perf_counter() - started)
        con.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loadbay-idcols-") as tmp:
        work = Path(tmp)
        path = str(work / "events.parquet")
        pq.write_table(make_table(args.rows), path)
        results = {name: timed(work, lambda con, sql=sql: con.execute(sql, {"path": path}), args.rounds)
                   for name, sql in sql_cases().items()}
        table = pq.read_table(path)
        with_ids = table.append_column("_lb_load_id", pa.array([LOAD_ID] * table.num_rows)).append_column(
            "_lb_id", id_array(PREFIX, 0, table.num_rows))

        def from_arrow(arrow_table: pa.Table) -> Callable[[duckdb.DuckDBPyConnection], None]:
            def run(con: duckdb.DuckDBPyConnection) -> None:
                con.register("source", arrow_table)
                con.execute("CREATE TABLE e AS SELECT * FROM source")
            return run

        arrow = {"plain": timed(work, from_arrow(table), args.rounds),
                 "+ load id + text id (made by numpy)": timed(work, from_arrow(with_ids), args.rounds)}
    print(f"DuckDB {duckdb.__version__}, {args.rows:,} rows, median of {args.rounds} (statement + CHECKPOINT)\n")
    print("| source | columns | s | vs its plain | rounds |\n|---|---|---:|---:|---|")
    for source, group in (("read_parquet", results), ("Arrow table", arrow)):
        base = statistics.median(next(iter(group.values())))
        for name, seconds in group.items():
            median = statistics.median(seconds)
            print(f"| {source} | {name} | {median:.3f} | {median / base:.2f}x | {' '.join(f'{x:.2f}' for x in seconds)} |")


if __name__ == "__main__":
    main()
