"""Normalize only: nested rows through the no-op destination, with what the garbage collector did.

The rows are bench/postgres_data.py's nested records (a nested dict flattened to ``meta__...`` columns,
two lists made child tables), generated while the run consumes them. Each of ``--rounds`` runs goes
into a fresh pipeline in this process; printed per run: wall and CPU seconds of ``run()``, cyclic GC
collections per generation during it, the objects those collections examined (each collection's
generation and the younger ones: a figure that does not depend on the machine's load, counted at some
cost in time while the collector runs) and the gc-tracked objects alive after it. ``--no-gc`` runs with
``gc.disable()``: the difference between the two is the collector's cost.
Made for ``bench/before_after.py`` (public API only), e.g.
``python bench/before_after.py 7f95f87 --rounds 5 -- bench/nested_noop.py 100000 --rounds 3``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import loadbay

sys.path.insert(0, str(Path(__file__).resolve().parent))  # postgres_data, when run from elsewhere
from postgres_data import nested_rows


class GcCounter:
    """Collections per generation and the objects they had to examine, through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.examined = [0, 0, 0]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            g = info["generation"]
            self.collections[g] += 1
            self.examined[g] += sum(len(gc.get_objects(k)) for k in range(g + 1))

    def __enter__(self) -> GcCounter:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def one_run(n: int, pipelines_dir: str, name: str) -> dict[str, Any]:
    p = loadbay.pipeline(name, destination="noop", pipelines_dir=pipelines_dir)
    with GcCounter() as counter:
        wall, cpu = time.perf_counter(), time.process_time()
        info = p.run(nested_rows(n), table_name="orders")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert info.row_counts["orders"] == n, info.row_counts
    return {"wall": wall, "cpu": cpu, "collections": counter.collections, "examined": counter.examined,
            "alive": len(gc.get_objects()), "rows": info.row_counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int, nargs="?", default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-gc", action="store_true", help="gc.disable() for the whole process")
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            out = one_run(args.rows, tmp, f"nested{r}")
            walls.append(out["wall"])
            cpus.append(out["cpu"])
            print(f"run {r + 1}: collections {out['collections']}, examined {out['examined']}, "
                  f"alive after {out['alive']:,}; rows {out['rows']}")
            print(f"run {r + 1}: {out['wall']:.2f} s wall, {out['cpu']:.2f} s CPU")
    print(f"median of {args.rounds}: {statistics.median(walls):.2f} s wall, {statistics.median(cpus):.2f} s CPU"
          f" (gc {'off' if args.no_gc else 'on'})")


if __name__ == "__main__":
    main()
