"""Peak memory of extract + normalize + write as the row count grows (no-op destination).

Runs the same flat rows as bench/flat_duckdb.py through the pipeline in a fresh process per size
and prints each process's peak RSS: streaming means the figure must not grow with the rows.
Usage: ``python bench/memory_noop.py [rows ...]`` (default 200,000 and 2,000,000).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import resource, sys, time
sys.path.insert(0, {bench!r})
import loadbay
from flat_duckdb import rows
n = int(sys.argv[1])
p = loadbay.pipeline("mem", destination="noop", pipelines_dir=sys.argv[2])
started = time.perf_counter()
info = p.run(rows(n), table_name="events")
assert info.row_counts["events"] == n, info.row_counts
print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [200_000, 2_000_000]
    bench = str(Path(__file__).resolve().parent)
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD.format(bench=bench), str(n), tmp],
                                 capture_output=True, text=True, check=True).stdout.split()
        seconds, peak = float(out[0]), float(out[1])
        print(f"{n:>10,} rows: {seconds:6.2f} s, peak RSS {peak:5.0f} MiB")


if __name__ == "__main__":
    main()
