"""LoadInfo and friends: what a run did, safe to print (no secrets)."""

from __future__ import annotations

from dataclasses import dataclass, field

from loadbay.common.exceptions import LoadJobFailed


@dataclass
class JobInfo:
    table_name: str
    file_format: str
    rows: int | None
    state: str  # "completed" | "failed" | "new" | "started"
    file_path: str
    error: str | None = None


@dataclass
class LoadPackageInfo:
    load_id: str
    state: str  # "loaded" | "failed" (a job failed terminally; the package stays on disk) | "pending"
    jobs: list[JobInfo] = field(default_factory=list)

    @property
    def failed_jobs(self) -> list[JobInfo]:
        return [j for j in self.jobs if j.state == "failed"]

    def rows_per_table(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for job in self.jobs:
            if job.state == "completed" and job.rows is not None:
                out[job.table_name] = out.get(job.table_name, 0) + job.rows
        return out


@dataclass
class LoadInfo:
    pipeline_name: str
    destination_name: str
    destination_type: str
    dataset_name: str
    location: str  # password masked
    load_packages: list[LoadPackageInfo] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    dry_run: bool = False
    statements: list[str] = field(default_factory=list)
    """A dry run's: every statement the load would run that changes the destination, in order (transaction
    control included); the catalog reads it made to plan them are not listed."""

    @property
    def has_failed_jobs(self) -> bool:
        return any(p.failed_jobs for p in self.load_packages)

    @property
    def loads_ids(self) -> list[str]:
        return [p.load_id for p in self.load_packages]

    @property
    def row_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for package in self.load_packages:
            for table, rows in package.rows_per_table().items():
                out[table] = out.get(table, 0) + rows
        return out

    def raise_on_failed_jobs(self) -> None:
        failed = [(p.load_id, j) for p in self.load_packages for j in p.failed_jobs]
        if failed:
            lines = "\n".join(f"  package {lid}, table {j.table_name}, file {j.file_path}: {j.error}"
                              for lid, j in failed)
            raise LoadJobFailed(f"pipeline {self.pipeline_name!r}: {len(failed)} load job(s) failed "
                                f"terminally; their packages stay on disk to fix and retry:\n{lines}")

    def __str__(self) -> str:
        if self.dry_run:
            rows = ", ".join(f"{t}: {n}" for t, n in sorted(self.row_counts.items())) or "none"
            return "\n".join([f"Pipeline {self.pipeline_name} dry run: nothing was loaded to destination "
                              f"{self.destination_name} ({self.destination_type}), dataset {self.dataset_name}, at "
                              f"{self.location}. Rows normalized per table: {rows}. A run would execute:",
                              *(f"  {s.strip()};" for s in self.statements)])
        loaded = [p for p in self.load_packages if p.state == "loaded"]
        steps = ("extract", "normalize", "load")
        lines = [f"Pipeline {self.pipeline_name} completed in {sum(self.timings.get(s, 0.0) for s in steps):.2f} "
                 "seconds (" + ", ".join(f"{s} {self.timings.get(s, 0.0):.2f} s" for s in steps) + ")",
                 f"{len(loaded)} load package(s) were loaded to destination {self.destination_name} "
                 f"({self.destination_type}) and into dataset {self.dataset_name}",
                 f"The {self.destination_type} destination used {self.location} location to store data"]
        for package in self.load_packages:
            failed = len(package.failed_jobs)
            lines.append(f"Load package {package.load_id} is {package.state.upper()} and contains "
                         f"{'no failed jobs' if not failed else f'{failed} FAILED job(s)!'}")
            for job in package.failed_jobs:
                lines.append(f"  FAILED {job.table_name} ({job.file_path}): {job.error}")
        counts = self.row_counts
        if counts:
            lines.append("Rows loaded per table: " + ", ".join(f"{t}: {n}" for t, n in sorted(counts.items())))
        lines.extend(self.next_steps())
        return "\n".join(lines)

    def next_steps(self) -> list[str]:
        """What to run when a package did not load: the API call and the CLI command."""
        name = self.pipeline_name
        if any(p.state == "failed" for p in self.load_packages):
            return [f"Packages with failed jobs stay on disk and hold back newer ones. Fix the cause, then "
                    f"p.retry_failed_jobs() (loadbay pipeline {name} retry-failed) and run again; or give them "
                    f"up with p.drop_pending_packages() (loadbay pipeline {name} drop-pending)."]
        if any(p.state == "pending" for p in self.load_packages):
            return [f"Pending packages load on the next run of pipeline {name} (p.run(), or "
                    f"loadbay pipeline {name} resume)."]
        return []

    def progress(self) -> str:
        """One line per package: jobs done of all, for an interrupted run's report."""
        lines = []
        for package in self.load_packages:
            done = sum(1 for j in package.jobs if j.state == "completed")
            lines.append(f"  package {package.load_id}: {package.state}, {done} of {len(package.jobs)} "
                         "job(s) loaded")
        return "\n".join(lines) or "  no package was loaded"
