"""A fresh process's cost of loadbay: ``import loadbay`` and the first ``run()`` of ROWS nested rows into
PostgreSQL (``LOADBAY_BENCH_PG``, default the local test server), each timed, the dataset dropped after.

Made for ``bench/before_after.py`` (``python bench/before_after.py 7f95f87 --rounds 7 -- bench/import_and_run.py
10000``): code that moves imports from ``import loadbay`` into the run shows here as what it is.
"""

from __future__ import annotations

import time

started = time.perf_counter()
import os  # noqa: E402 - the clock starts before any import
import sys  # noqa: E402
import uuid  # noqa: E402

import loadbay  # noqa: E402

imported = time.perf_counter()
URL = os.environ.get("LOADBAY_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")


def main(rows: int) -> None:
    data = [{"id": i, "name": f"n{i}", "items": [{"k": j, "tags": [f"t{j}", "x"]} for j in range(i % 4)]}
            for i in range(rows)]
    dataset = "bench_" + uuid.uuid4().hex[:8]
    p = loadbay.pipeline("bench_import", destination=loadbay.destination("postgres", credentials=URL),
                         dataset_name=dataset, pipelines_dir=f"/tmp/{dataset}", progress=False)
    before_run = time.perf_counter()
    p.run(data, table_name="t").raise_on_failed_jobs()
    ran = time.perf_counter() - before_run
    with p.sql_client() as client:
        client.drop_dataset(dataset)
        client.drop_dataset(p.config.staging_dataset_name)
    print(f"import loadbay: {imported - started:.3f} s")
    print(f"first run():    {ran:.3f} s")
    print(f"import + run:   {imported - started + ran:.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
