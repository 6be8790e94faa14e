"""Loading Arrow data never imports pandas.

pyarrow imports pandas (when installed) the first time it is handed numpy or Python values, which costs a
fresh process 0.3-0.8 s, more than normalizing a million Arrow rows; loadbay's Arrow path builds what it
makes from buffers instead (loadbay.common.arrow_build). Values that need converting one at a time in Python
(a column of another type than its table's that Arrow cannot cast, scd2's row hashes) still go through
pyarrow's Python conversions, which may import it. Each case runs in a fresh interpreter with pandas
installed, loads real data and asserts both the rows in the destination and that pandas stayed out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadbay.destinations.testing.setups import POSTGRES_URL, require_server

pytest.importorskip("pandas", reason="the check needs pandas installed (it proves pandas is not imported)")

READ_TABLE = """
import sys
import pyarrow as pa
with pa.OSFile({ipc!r}, "rb") as source:
    table = pa.ipc.open_file(source).read_all()
assert "pandas" not in sys.modules, "reading the input imported pandas: the check would prove nothing"
"""


def write_orders(path: Path) -> str:
    """1,000 orders with nulls, binary, doubles (checked for NaN where a database stores none), uint64, timestamps,
    a struct and two levels of lists, as an Arrow IPC file
    (made in this process: building a table from Python rows imports pandas; reading the file does not)."""
    import datetime

    import pyarrow as pa

    rows = [{"id": i, "name": None if i % 7 == 0 else f"n{i}", "ok": i % 2 == 0, "blob": bytes([i % 256]) * 3,
             "amount": i / 8, "count": i,
             "at": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(seconds=i),
             "customer": {"city": None if i % 3 else "Oslo", "zip": i},
             "tags": [f"t{k}" for k in range(i % 3)],
             "lines": [{"sku": f"s{k}", "parts": [k, k + 1]} for k in range(i % 2)]} for i in range(1000)]
    table = pa.Table.from_pylist(rows)
    table = table.set_column(table.schema.get_field_index("count"), "count", table.column("count").cast(pa.uint64()))
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    return str(path)


CLI_PRELUDE = """
import sys
assert "pandas" not in sys.modules
"""

RUN = """
import json, sys
import loadbay
p = loadbay.pipeline("no_pandas", destination=loadbay.destination({dest!r}, credentials={cred!r}),
                     dataset_name={dataset!r}, pipelines_dir={pipelines!r})
info = p.run(table, table_name="orders", write_disposition="replace")
info.raise_on_failed_jobs()
print(json.dumps({{"pandas": "pandas" in sys.modules, "rows": info.row_counts}}))
"""

CLI = """
import json, sys
import pyarrow.parquet as pq
pq.write_table(table, {path!r})
from loadbay.cli import main
code = main(["load", {path!r}, "--pipeline", "no_pandas_cli", "--table", "orders", "--quiet",
             "--destination", "duckdb", "--credentials", {cred!r}, "--pipelines-dir", {pipelines!r}])
print(json.dumps({{"pandas": "pandas" in sys.modules, "code": code}}))
"""

EXPECTED = {"orders": 1000, "orders__tags": 999, "orders__lines": 500, "orders__lines__parts": 1000}


def fresh_process(script: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dest", ["duckdb", "postgres", "sqlalchemy"])
def test_an_arrow_table_loads_without_importing_pandas(dest: str, tmp_path: Path) -> None:
    if dest == "postgres":
        require_server("postgres")
    cred = {"duckdb": str(tmp_path / "db.duckdb"), "postgres": POSTGRES_URL,
            "sqlalchemy": f"sqlite:///{tmp_path / 'db.sqlite'}"}[dest]
    ipc = write_orders(tmp_path / "orders.arrow")
    result = fresh_process(READ_TABLE.format(ipc=ipc) + RUN.format(dest=dest, cred=cred, dataset=f"no_pandas_{tmp_path.name[-12:]}",
                                                   pipelines=str(tmp_path / "pipelines")))
    assert result["rows"] == EXPECTED
    assert result["pandas"] is False, "loading an Arrow table imported pandas"


def test_a_parquet_file_loads_through_the_cli_without_importing_pandas(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    ipc = write_orders(tmp_path / "orders.arrow")
    result = fresh_process(READ_TABLE.format(ipc=ipc) + CLI.format(path=str(tmp_path / "orders.parquet"), cred=str(db),
                                                   pipelines=str(tmp_path / "pipelines")))
    assert result == {"pandas": False, "code": 0}
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        counts = {name: con.execute(f'SELECT count(*) FROM "no_pandas_cli_dataset"."{name}"').fetchone()[0]
                  for name in EXPECTED}
    assert counts == EXPECTED


JSONL_CLI = """
import json, sys
from loadbay.cli import main
code = main(["load", {path!r}, "--pipeline", "no_pandas_jsonl", "--table", "events", "--quiet", "--dataset", {dataset!r},
             "--destination", {dest!r}, "--credentials", {cred!r}, "--pipelines-dir", {pipelines!r}])
print(json.dumps({{"pandas": "pandas" in sys.modules, "code": code}}))
"""


@pytest.mark.parametrize("dest", ["duckdb", "postgres"])
def test_a_jsonl_file_with_timestamps_loads_through_the_cli_without_importing_pandas(dest: str, tmp_path: Path) -> None:
    """ISO timestamps read as text are parsed in Arrow (a "NaT" text is compared with an Arrow scalar, which
    a plain str would have made pyarrow import pandas for), doubles are typed from JSON text."""
    if dest == "postgres":
        require_server("postgres")
    import datetime

    start = datetime.datetime(2024, 2, 28, 23, 59, 58, tzinfo=datetime.timezone.utc)
    path = tmp_path / "events.jsonl"
    with path.open("w") as f:
        for i in range(1000):
            f.write(json.dumps({"id": i, "amount": i / 8, "name": None if i % 7 == 0 else f"n{i}",
                                "at": (start + datetime.timedelta(seconds=i)).isoformat(),
                                "maybe": None if i % 2 else (start + datetime.timedelta(microseconds=i)).isoformat()}) + "\n")
    cred = str(tmp_path / "db.duckdb") if dest == "duckdb" else POSTGRES_URL
    dataset = f"no_pandas_jsonl_{tmp_path.name[-12:]}"
    result = fresh_process(CLI_PRELUDE + JSONL_CLI.format(path=str(path), dest=dest, cred=cred, dataset=dataset,
                                                          pipelines=str(tmp_path / "pipelines")))
    assert result == {"pandas": False, "code": 0}
    query = (f'SELECT count(*), count(maybe), min("at"), max("at"), sum(amount) FROM "{dataset}"."events"')
    if dest == "duckdb":
        import duckdb

        with duckdb.connect(cred, read_only=True) as con:
            row = con.execute(query).fetchone()
    else:
        import psycopg2

        with psycopg2.connect(POSTGRES_URL) as con, con.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone()
            cur.execute(f'DROP SCHEMA "{dataset}" CASCADE')
    assert row[:2] == (1000, 500)
    assert row[2] == start and row[3] == start + datetime.timedelta(seconds=999)
    assert float(row[4]) == sum(i / 8 for i in range(1000))
