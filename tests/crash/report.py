"""The summary of a crash run: per destination and scenario, kills, exact recoveries, failures.

The pytest run collects every case here and prints the table at its end (``conftest.py``); with
``LOADBAY_CRASH_REPORT=path.json`` it also writes the cases, which ``python -m tests.crash.report
path.json`` turns into the table again (for the README).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from tests.crash.harness import CaseResult

RESULTS: list[CaseResult] = []
_lock = threading.Lock()
REPORT_ENV = "LOADBAY_CRASH_REPORT"
HEADER = ("destination", "scenario", "random kills", "at points", "exact recoveries", "random kills landed in",
          "failures (point, seed or trial)")


def record(results: list[CaseResult]) -> None:
    with _lock:
        RESULTS.extend(results)


def rows(results: list[CaseResult]) -> list[tuple[str, ...]]:
    groups: dict[tuple[str, str], list[CaseResult]] = defaultdict(list)
    for r in results:
        groups[(r.destination, r.scenario)].append(r)
    out = []
    for (destination, scenario), cases in sorted(groups.items()):
        runs = [c for c in cases if c.kind in ("point", "random", "double", "trial")]
        random_kills = sum(c.killed for c in runs if c.kind == "random")
        double_kills = sum(c.killed for c in runs if c.kind == "double")
        point_kills = sum(c.killed for c in runs if c.kind == "point")
        exact = sum(c.exact and not c.problems for c in runs)
        phases = Counter(_phase_group(c.phase) for c in runs if c.kind in ("random", "double"))
        failed = [_failure_label(c) for c in cases if c.problems]
        trials = scenario.startswith("concurrent")
        kills = f"{random_kills} + {double_kills} double" if double_kills else str(random_kills)
        out.append((destination, scenario, "-" if trials else kills, "-" if trials else str(point_kills),
                    f"{exact}/{len(runs)}", ", ".join(f"{k} {n}" for k, n in sorted(phases.items())) or "-",
                    ", ".join(failed) or "none"))
    return out


def _phase_group(phase: str) -> str:
    """The first kill's phase, without job counts."""
    first = phase.split(",")[0]
    return "jobs" if first.startswith("jobs") else first or "-"


def _failure_label(case: CaseResult) -> str:
    label = {"random": f"seed {case.seed}", "double": f"double seed {case.seed}"}.get(case.kind, case.label)
    return f"{label}{'' if case.exact else ' (data)'}"


def table(results: list[CaseResult]) -> str:
    """A markdown table: one row per destination and scenario. "exact recoveries" counts cases with
    the data exact and nothing left behind; "(data)" marks failures where the data was wrong."""
    body = rows(results)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def write(results: list[CaseResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([dataclasses.asdict(r) for r in results], indent=1, ensure_ascii=False))


def load(path: Path) -> list[CaseResult]:
    data: list[dict[str, Any]] = json.loads(path.read_text())
    return [CaseResult(**d) for d in data]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else os.environ.get(REPORT_ENV, "crash-report.json"))
    results = load(path)
    print(table(results))
    for r in results:
        if r.problems:
            print(f"- {r.message()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
