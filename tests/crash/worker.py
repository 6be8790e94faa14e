"""One pipeline ``run()`` in a process of its own, so the harness can kill it (SIGKILL) mid-load.

    python -m tests.crash.worker --destination duckdb --credentials /tmp/x/crash.duckdb \\
        --pipeline crash --pipelines-dir /tmp/x/pipelines --dataset crash_ab12 \\
        --disposition merge --scale 24000 --generation 1 --file-max-items 1000

``--resume-only`` calls ``run()`` with no data (it finishes pending packages). ``--barrier PATH``
waits for PATH to appear before running, so two workers start loading at the same moment.
Protocol on stdout: ``READY`` once the pipeline is built (the harness times kills from it), then
``RESULT <json>`` after a run that completed without failed jobs; exit 0. Any error: a traceback
on stderr and exit 1. A crash point (``LOADBAY_CRASH_AT``) ends it with SIGKILL.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from tests.crash.data import ROOT, Batches


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.crash.worker", description=__doc__)
    parser.add_argument("--destination", required=True, choices=("duckdb", "mysql", "postgres", "sqlite", "spark"))
    parser.add_argument("--credentials", required=True)
    parser.add_argument("--pipeline", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--disposition", required=True, choices=("append", "merge", "replace"))
    parser.add_argument("--scale", type=int, required=True, help="root rows of the base batch")
    parser.add_argument("--generation", type=int, default=0, help="0: the base batch; n: the n-th batch after it")
    parser.add_argument("--offset", type=int, default=0, help="added to every id (disjoint key ranges)")
    parser.add_argument("--file-max-items", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=1000, help="rows normalized at a time (normalize.batch)")
    parser.add_argument("--resume-only", action="store_true", help="run() with no data: finish pending packages")
    parser.add_argument("--barrier", help="wait for this file to exist before running")
    return parser.parse_args(argv)


NICE_ENV = "LOADBAY_CRASH_WORKER_NICE"
"""How much lower than the test session a worker runs (default 10): the scenarios run beside the rest
of ``make test``, whose tests then get the CPU first instead of queueing behind the workers' loads."""


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    os.nice(int(os.environ.get(NICE_ENV, "10")))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    import loadbay
    from loadbay.destinations.testing.setups import SETUPS

    # SQLite's files load in its worker process (sqlite_worker.py): the path large loads take, and the one with a
    # second process to kill around; the in-process executemany job is the other SQLAlchemy families' as well
    settings = {"sqlite_load_worker": "always"} if args.destination == "sqlite" else {}
    destination = loadbay.destination(SETUPS[args.destination].reference, credentials=args.credentials, **settings)
    p = loadbay.pipeline(args.pipeline, destination=destination, dataset_name=args.dataset,
                         pipelines_dir=args.pipelines_dir, file_max_items=args.file_max_items,
                         batch_size=args.batch_size)
    batches = Batches(args.disposition, args.scale, args.offset)
    print("READY", flush=True)
    if args.barrier:
        while not Path(args.barrier).exists():
            time.sleep(0.002)
    started = time.monotonic()
    if args.resume_only:
        info = p.run()
    else:
        info = p.run(batches.rows(args.generation), table_name=ROOT, write_disposition=args.disposition,
                     primary_key="id" if args.disposition == "merge" else None)
    info.raise_on_failed_jobs()
    result = {"seconds": round(time.monotonic() - started, 3),
              "packages": [{"load_id": pkg.load_id, "state": pkg.state} for pkg in info.load_packages]}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
