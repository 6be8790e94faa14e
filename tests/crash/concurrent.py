"""Two pipelines loading the same table of the same dataset at the same moment.

Each trial makes a fresh dataset and two pipelines (different names and pipeline folders) whose
keys are disjoint (``OFFSET`` apart). Round 0 sends both base batches into the empty dataset
(both create the tables), round 1 a second batch each (merge: updates and new ids). Both workers
wait on a barrier file, so their runs start together. After each round both must have exited 0
and the dataset must hold: merge, the union of both key sets with the latest values and child
lists; append, both batches once; replace, exactly one of the two batches, whole. On DuckDB the
file takes one writer at a time, so the second must wait for the first rather than fail.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from tests.crash import process
from tests.crash.data import Batches, Expected
from tests.crash.harness import CaseResult
from tests.crash.targets import Target
from tests.crash.verify import Snapshot, check_contents, read

OFFSET = 10_000_000
ROUNDS = 2
CONCURRENT_ROWS = int(os.environ.get("LOADBAY_CONCURRENT_ROWS", "3000"))
CONCURRENT_FILE_MAX_ITEMS = int(os.environ.get("LOADBAY_CONCURRENT_FILE_MAX_ITEMS", "300"))


def _expected(disposition: str, sides: list[Expected]) -> list[tuple[Counter[Any], Counter[Any]]]:
    """The contents the dataset may hold: one possibility, or for replace one per side."""
    if disposition == "replace":
        return [(side.roots, side.children) for side in sides]
    return [(sum((s.roots for s in sides), Counter()), sum((s.children for s in sides), Counter()))]


def trial(target: Target, disposition: str, root: Path, number: int, *, scale: int = CONCURRENT_ROWS,
          file_max_items: int = CONCURRENT_FILE_MAX_ITEMS) -> CaseResult:
    """One trial of ``ROUNDS`` concurrent rounds; stops at the first round that is not exact."""
    result = CaseResult(target.name, f"concurrent {disposition}", "trial", f"trial {number}")
    dataset = f"crash_{uuid.uuid4().hex[:10]}"
    workdir = root / dataset
    workdir.mkdir(parents=True)
    credentials = target.credentials(workdir)
    sides = [Expected(Batches(disposition, scale, offset=n * OFFSET)) for n in range(2)]
    names = ["left", "right"]
    try:
        for generation in range(ROUNDS):
            wrong, leftover = _round(target, credentials, dataset, workdir, names, sides, generation, file_max_items)
            result.problems += [f"round {generation}: {p}" for p in wrong + leftover]
            if wrong:
                result.exact = False
                break
    finally:
        if not result.exact:
            result.problems.append(f"worker logs and pipeline folders kept in {workdir}")
        target.drop(credentials, dataset, workdir, keep_files=not result.exact)
    return result


def _round(target: Target, credentials: str, dataset: str, workdir: Path, names: list[str],
           sides: list[Expected], generation: int, file_max_items: int) -> tuple[list[str], list[str]]:
    """(what is wrong: a failed pipeline, contents, _lb_loads; what was left behind)."""
    barrier = workdir / f"go-{generation}"
    procs = []
    for name, side in zip(names, sides):
        args = ["--destination", target.name, "--credentials", credentials, "--pipeline", f"crash_{name}",
                "--pipelines-dir", str(workdir / name), "--dataset", dataset,
                "--disposition", side.batches.disposition, "--scale", str(side.batches.scale),
                "--offset", str(side.batches.offset), "--generation", str(generation),
                "--file-max-items", str(file_max_items), "--barrier", str(barrier)]
        log = workdir / f"{name}-{generation}.log"
        procs.append((name, process.start(args, cwd=workdir / f"cwd-{name}", log=log,
                                          env=process.worker_env(workdir / "home")), log))
    for _, proc, _ in procs:
        process.wait_ready(proc)
    barrier.touch()
    started = time.monotonic()
    runs = [(name, process.finish(proc, started=started, log=log)) for name, proc, log in procs]
    wrong = [f"pipeline {name} failed: {run.describe()}" for name, run in runs if not run.ok]
    for (name, run), side in zip(runs, sides):
        if run.ok:
            side.apply(generation)
    snap = read(target, credentials, dataset)
    wrong += _contents(sides[0].batches.disposition, snap, sides)
    try:
        loads = target.query(credentials, dataset, f"SELECT load_id FROM {target.qualified(dataset, '_lb_loads')}")
    except Exception as exc:  # noqa: BLE001 - reported with the rest
        wrong.append(f"_lb_loads cannot be read: {exc}")
    else:
        want = sum(len(side.applied) for side in sides)
        if len(loads) != want:
            wrong.append(f"_lb_loads has {len(loads)} rows, {want} packages were loaded")
    leftover = []
    for name in names:
        folder = workdir / name / f"crash_{name}"
        left = [f"{name}/{sub}/{p.name}" for sub in ("normalizing", "packages") if (folder / sub).exists()
                for p in (folder / sub).iterdir()]
        if left:
            leftover.append(f"leftover in the pipeline folder: {left}")
    staging = target.leftover_tables(credentials, dataset)
    if staging:
        leftover.append(f"leftover staging tables: {sorted(staging)}")
    return wrong, leftover


def _contents(disposition: str, snap: Snapshot, sides: list[Expected]) -> list[str]:
    options = _expected(disposition, sides)
    found = [check_contents(snap, roots, children) for roots, children in options]
    if any(not f for f in found):
        return []
    if disposition == "replace":
        return ["neither batch whole (expected exactly one of them): "
                + " / ".join(f"against {name}'s batch: " + " || ".join(f) for name, f in zip(("left", "right"), found))]
    return found[0]
