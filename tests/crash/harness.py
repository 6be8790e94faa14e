"""Kill a loading pipeline, recover it, and check the destination holds every batch exactly once.

A *segment* is one dataset and one pipeline folder on a destination. It loads the base batch
unkilled, then one unkilled batch (the control: it checks the comparison itself and times a
run), then one batch per case, each killed: at a named crash point (``LOADBAY_CRASH_AT``, the
process kills itself) or after a random delay drawn from the case's seed (the harness sends
SIGKILL). Recovery is what a user would do: run the pipeline again with no data (it finishes
pending packages), and, if the killed run left no package behind (it died while normalizing),
send the batch again. Then the whole dataset is compared with what all batches so far must give.

Batches chain: case *n* loads generation *n* on top of the state the earlier cases left, so a
segment is a pipeline's life through many crashes. After a case that is not exact the state is
unknown, and after ``REBASE_EVERY`` cases the tables have grown: both start a new segment.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.crash import process
from tests.crash.data import Batches, Expected
from tests.crash.targets import Target
from tests.crash.verify import check_contents, read

POINTS = ("normalize.batch", "normalize.committed", "job.loaded", "job.committed", "package.merged",
          "package.committed")
LATER_POINTS = ("normalize.batch:3", "job.loaded:5", "job.committed:5")
"""Also run at full strength: the same points reached again later in the run."""
REBASE_EVERY = 8
SCALE = int(os.environ.get("LOADBAY_CRASH_ROWS", "10000"))
FILE_MAX_ITEMS = int(os.environ.get("LOADBAY_CRASH_FILE_MAX_ITEMS", "400"))
BATCH_SIZE = 1000
"""Rows normalized at a time: several batches a run, so ``normalize.batch:3`` is reached."""


SEED_ENV = {"random": "LOADBAY_CRASH_SEED", "double": "LOADBAY_CRASH_DOUBLE_SEED"}


def replay_seeds(kind: str = "random") -> list[int] | None:
    """The seeds in ``LOADBAY_CRASH_SEED`` (``LOADBAY_CRASH_DOUBLE_SEED`` for double kills),
    comma-separated, to replay failures; None when not set."""
    given = os.environ.get(SEED_ENV[kind], "").strip()
    return [int(s) for s in given.split(",") if s.strip()] if given else None


class Seeds:
    """Fresh seeds until ``kills`` runs were really killed (a run may end before its kill lands),
    at most ``2 * kills + 5`` of them; or exactly the seeds to replay."""

    def __init__(self, kills: int, replay: list[int] | None = None) -> None:
        self.kills = kills
        self.replay = list(replay) if replay is not None else None
        self.drawn = 0
        self._rng = random.SystemRandom()

    def next(self, landed: int) -> int | None:
        """The next seed, given how many kills have landed so far; None when done."""
        if self.replay is not None:
            return self.replay.pop(0) if self.replay else None
        if landed >= self.kills or self.drawn >= 2 * self.kills + 5:
            return None
        self.drawn += 1
        return self._rng.randrange(2**31)


@dataclass
class CaseResult:
    """One killed (or control) run and its recovery."""

    destination: str
    scenario: str
    kind: str
    """"base", "control", "point", "random" or "double" (the resume run killed too)."""
    label: str
    """The point spec, or "seed <n>"."""
    seed: int | None = None
    delay: float | None = None
    phase: str = ""
    """Where the kill landed, read from the pipeline folder: start (nothing written yet), normalize,
    jobs k/n (done of all), final (all jobs done: merge and marker), done (package complete, not yet
    cleaned up); finished when the run ended before the kill."""
    killed: bool = False
    exact: bool = True
    """The destination held exactly what was sent (and _lb_loads every package) after recovery."""
    problems: list[str] = field(default_factory=list)

    def message(self) -> str:
        where = f"{self.destination} {self.scenario} {self.label if self.kind != 'point' else 'at ' + self.label}"
        if self.delay is not None:
            where += f" (kill {self.delay:.2f} s after start; replay: {SEED_ENV[self.kind]}={self.seed})"
        if self.phase:
            where += f", killed in phase {self.phase}"
        return f"{where}: " + " || ".join(self.problems)


class Segment:
    """One dataset and pipeline folder, and the generations loaded into it so far."""

    def __init__(self, target: Target, disposition: str, root: Path, *, scale: int = SCALE,
                 file_max_items: int = FILE_MAX_ITEMS) -> None:
        self.target = target
        self.disposition = disposition
        self.dataset = f"crash_{uuid.uuid4().hex[:10]}"
        self.workdir = root / self.dataset
        self.workdir.mkdir(parents=True)
        self.credentials = target.credentials(self.workdir)
        self.pipeline = "crash"
        self.pipeline_dir = self.workdir / "pipelines" / self.pipeline
        self.batches = Batches(disposition, scale)
        self.file_max_items = file_max_items
        self.applied: list[int] = []
        self.expected = Expected(self.batches)
        self.known_loads: set[str] = set()
        self.seen_leftovers: set[str] = set()
        self.runs = 0
        self.run_seconds: float | None = None
        """How long an unkilled batch took, READY to exit: random kills land within it."""

    def close(self, failed: CaseResult | None = None) -> None:
        """Drop the dataset; after a failed case keep the folder (worker logs, pipeline folder) and say where."""
        if failed is not None:
            failed.problems.append(f"worker logs and pipeline folder kept in {self.workdir}")
        self.target.drop(self.credentials, self.dataset, self.workdir, keep_files=failed is not None)

    @property
    def next_generation(self) -> int:
        return len(self.applied)

    # -- workers -------------------------------------------------------------------------------
    def args(self, generation: int | None) -> list[str]:
        args = ["--destination", self.target.name, "--credentials", self.credentials, "--pipeline", self.pipeline,
                "--pipelines-dir", str(self.pipeline_dir.parent), "--dataset", self.dataset,
                "--disposition", self.disposition, "--scale", str(self.batches.scale),
                "--file-max-items", str(self.file_max_items), "--batch-size", str(BATCH_SIZE)]
        return args + (["--resume-only"] if generation is None else ["--generation", str(generation)])

    def run(self, generation: int | None, *, crash_at: str | None = None,
            kill_after: float | None = None) -> process.WorkerRun:
        self.runs += 1
        env = process.worker_env(self.workdir / "home", {"LOADBAY_CRASH_AT": crash_at} if crash_at else None)
        done = process.run(self.args(generation), cwd=self.workdir / "cwd", env=env, kill_after=kill_after,
                           log=self.workdir / f"worker-{self.runs:03d}.log")
        if done.result:
            self.known_loads.update(p["load_id"] for p in done.result["packages"])
        return done

    # -- reading back --------------------------------------------------------------------------
    def loads(self) -> list[str]:
        rows = self.target.query(self.credentials, self.dataset,
                                 f"SELECT load_id FROM {self.target.qualified(self.dataset, '_lb_loads')}")
        return [r[0] for r in rows]

    def packages_on_disk(self) -> list[str]:
        folder = self.pipeline_dir / "packages"
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if folder.exists() else []

    def phase(self) -> str:
        """Where a killed run stopped, as the pipeline folder tells it."""
        packages = self.packages_on_disk()
        if packages:
            root = self.pipeline_dir / "packages" / packages[-1]
            counts = {state: len([p for p in (root / state).iterdir() if not p.name.endswith(".exception")])
                      if (root / state).exists() else 0
                      for state in ("new_jobs", "started_jobs", "completed_jobs", "failed_jobs")}
            total = sum(counts.values())
            done = counts["completed_jobs"]
            return "final" if total and done == total else f"jobs {done}/{total}"
        normalizing = self.pipeline_dir / "normalizing"
        if normalizing.exists() and any(normalizing.iterdir()):
            return "normalize"
        return "none"

    def leftovers(self) -> list[str]:
        found = []
        for folder in ("normalizing", "packages"):
            path = self.pipeline_dir / folder
            if path.exists():
                found += [f"{folder}/{p.name}" for p in path.iterdir()]
        return found

    def verify(self) -> tuple[list[str], list[str]]:
        """(problems with the data or _lb_loads, leftovers: files and staging tables)."""
        problems = check_contents(read(self.target, self.credentials, self.dataset), self.expected.roots,
                                  self.expected.children)
        try:
            loads = self.loads()
        except Exception as exc:  # noqa: BLE001 - reported, not raised: the case goes on to its summary
            problems.append(f"_lb_loads cannot be read: {exc}")
        else:
            missing = sorted(self.known_loads - set(loads))
            if missing:
                problems.append(f"_lb_loads lacks packages {missing} that completed")
            if len(loads) != len(self.applied):
                problems.append(f"_lb_loads has {len(loads)} rows, {len(self.applied)} packages were loaded")
        files = sorted(set(self.leftovers()) - self.seen_leftovers)
        staging = sorted(self.target.leftover_tables(self.credentials, self.dataset) - self.seen_leftovers)
        self.seen_leftovers.update(files + staging)  # reported once, by the case that left them
        leftover = [f"leftover in the pipeline folder: {files}"] if files else []
        if staging:
            leftover.append(f"leftover staging tables: {staging}")
        return problems, leftover

    # -- cases ---------------------------------------------------------------------------------
    def load_unkilled(self, result: CaseResult) -> CaseResult:
        """Load the next batch without a kill (the base batch, or the control batch)."""
        generation = self.next_generation
        done = self.run(generation)
        if not done.ok:
            result.exact = False
            result.problems.append(f"unkilled run of generation {generation} failed: {done.describe()}")
            return result
        if generation > 0:
            self.run_seconds = done.seconds
        self._applied(generation)
        self._check(result)
        return result

    def crash(self, result: CaseResult, *, crash_at: str | None = None, kill_after: float | None = None,
              kill_resume_after: float | None = None) -> CaseResult:
        """Load the next batch, killed; recover (with ``kill_resume_after``, the first resume run is
        killed too, then resumed again); compare."""
        generation = self.next_generation
        loads_before = len(self.applied)
        killed = self.run(generation, crash_at=crash_at, kill_after=kill_after)
        result.killed = killed.killed
        result.phase = self.phase() if killed.killed else ("finished" if killed.ok else "failed")
        if crash_at and killed.ok:
            result.problems.append(f"crash point {crash_at} never reached: the run exited 0 instead of being killed")
        elif not killed.killed and not killed.ok:
            result.problems.append(f"the run to be killed failed on its own: {killed.describe()}")
        if killed.ok:  # not killed: it loaded the batch itself
            self._applied(generation)
            self._check(result)
            return result
        pending = self.packages_on_disk()
        if kill_resume_after is not None:
            resumed = self.run(None, kill_after=kill_resume_after)
            if resumed.killed:
                result.phase += f", resume killed in {self.phase()}"
            elif not resumed.ok:
                result.problems.append(f"resume run (no data) failed: {resumed.describe()}")
        resumed = self.run(None)
        if not resumed.ok:
            result.problems.append(f"resume run (no data) failed: {resumed.describe()}")
            again = self.run(None)
            if not again.ok:
                result.exact = False
                result.problems.append(f"stuck: a second resume run failed too: {again.describe()}")
                return result
        try:
            loads = self.loads()
        except Exception:  # noqa: BLE001 - no _lb_loads yet: nothing was ever loaded
            loads = []
        if result.phase.startswith("none"):  # before anything was written, or after the package completed
            result.phase = result.phase.replace("none", "done" if len(loads) > loads_before else "start", 1)
        lost = [p for p in pending if p not in loads]
        if lost:
            result.problems.append(f"package(s) {lost} were committed to packages/ before the kill, "
                                   "but the resume run did not load them")
        if len(loads) == loads_before:
            if pending:
                result.exact = False
                return result
            again = self.run(generation)  # the kill came before the package existed: send the batch again
            if again.ok:
                self.run_seconds = again.seconds
            else:
                result.exact = False
                result.problems.append(f"sending the batch again after the kill failed: {again.describe()}")
                return result
        self._applied(generation)
        self._check(result)
        return result

    def _applied(self, generation: int) -> None:
        self.applied.append(generation)
        self.expected.apply(generation)

    def _check(self, result: CaseResult) -> None:
        problems, leftover = self.verify()
        if problems:
            result.exact = False
        result.problems += problems + leftover


def run_scenario(target: Target, disposition: str, root: Path, *, points: list[str], random_seeds: Seeds,
                 double_seeds: Seeds | None = None, scale: int = SCALE, file_max_items: int = FILE_MAX_ITEMS,
                 rebase_every: int = REBASE_EVERY) -> list[CaseResult]:
    """Base and control batches, then one killed batch per point and per seed; every case's result.

    A double seed kills the run, then the first resume run as well (a crash during recovery).
    """
    results: list[CaseResult] = []
    segment: Segment | None = None
    double_seeds = double_seeds if double_seeds is not None else Seeds(0)

    def fresh() -> Segment | None:
        seg = Segment(target, disposition, root, scale=scale, file_max_items=file_max_items)
        base = seg.load_unkilled(CaseResult(target.name, disposition, "base", f"generation 0, {seg.dataset}"))
        control = seg.load_unkilled(CaseResult(target.name, disposition, "control", "generation 1"))
        for res in (base, control):
            if res.problems:
                results.append(res)
        if not (base.exact and control.exact):
            seg.close(base if not base.exact else control)
            return None
        return seg

    def cases() -> Iterator[tuple[str, str, int | None]]:
        yield from (("point", p, None) for p in points)
        for kind, seeds in (("random", random_seeds), ("double", double_seeds)):
            while (seed := seeds.next(sum(r.killed for r in results if r.kind == kind))) is not None:
                yield kind, f"seed {seed}" + (" (resume killed too)" if kind == "double" else ""), seed

    for kind, label, seed in cases():
        if segment is not None and len(segment.applied) > rebase_every:
            segment.close()
            segment = None
        if segment is None:
            segment = fresh()
            if segment is None:  # not even an unkilled load is right: killing it tells nothing more
                break
        result = CaseResult(target.name, disposition, kind, label, seed=seed)
        if seed is None:
            segment.crash(result, crash_at=label)
        else:
            print(f"crash seed {seed} ({target.name} {disposition}{', double' if kind == 'double' else ''})",
                  flush=True)
            assert segment.run_seconds is not None
            rng = random.Random(seed)
            result.delay = rng.random() * segment.run_seconds
            second = rng.random() * segment.run_seconds * 0.6 if kind == "double" else None
            segment.crash(result, kill_after=result.delay, kill_resume_after=second)
        results.append(result)
        if not result.exact:
            segment.close(result)
            segment = None
    if segment is not None:
        segment.close()
    return results
