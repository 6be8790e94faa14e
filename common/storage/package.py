"""Load packages on disk: a folder per run holding its schema and its load files by state.

Layout under ``<pipelines_dir>/<pipeline>/``::

    normalizing/<load_id>/      a package being written; never loaded, removed if normalize fails
    packages/<load_id>/         normalized packages waiting for (or in the middle of) loading
        package.json  schema.json
        new_jobs/  started_jobs/  completed_jobs/  failed_jobs/
    completed/<load_id>/        loaded packages, kept when archiving is on

A job file is named ``<table>.<file_id>.<retry>.<format>``; moving it between state folders is a
rename, so the state on disk is always exactly one of them. Anything else found in a job folder
(a temporary file a killed process left behind) is a leftover: never taken for a job, removed by
``clean_leftovers``. Jobs write their own temporary files under ``scratch/``, outside the job folders.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

from loadbay.common.capabilities import FILE_FORMATS
from loadbay.common.exceptions import LoadbayError
from loadbay.common.schema.types import Schema

logger = logging.getLogger(__name__)

JOB_STATES = ("new_jobs", "started_jobs", "completed_jobs", "failed_jobs")
ERROR_SUFFIX = ".exception"
SCRATCH = "scratch"
TRASH_PREFIX = ".removing-"


class DamagedPackageError(LoadbayError):
    """A package's schema or metadata on disk cannot be read: it cannot be loaded as it is."""


@dataclass(frozen=True)
class JobFile:
    """A load file and what its name says: table, file id, retry count and format."""

    path: Path

    @property
    def parts(self) -> list[str]:
        return self.path.name.rsplit(".", 3)

    @property
    def table_name(self) -> str:
        return self.parts[0]

    @property
    def file_id(self) -> str:
        return self.parts[1]

    @property
    def retry_count(self) -> int:
        return int(self.parts[2])

    @property
    def file_format(self) -> str:
        return self.parts[3]

    @property
    def state(self) -> str:
        return self.path.parent.name

    @property
    def job_id(self) -> str:
        return f"{self.table_name}.{self.file_id}"

    @property
    def is_job(self) -> bool:
        """Whether the name is a job's: four parts, a numeric retry count and a known format."""
        parts = self.path.name.rsplit(".", 3)
        return len(parts) == 4 and all(parts) and parts[2].isdigit() and parts[3] in FILE_FORMATS


def job_file_name(table: str, file_id: str, retry: int, file_format: str) -> str:
    return f"{table}.{file_id}.{retry}.{file_format}"


class LoadPackage:
    """One package folder; every state change is a rename or an atomic file replace."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.load_id = root.name

    # metadata ------------------------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        return self.root / "package.json"

    def read_meta(self) -> dict[str, Any]:
        return json.loads(self.meta_path.read_text()) if self.meta_path.exists() else {}

    def write_meta(self, **changes: Any) -> None:
        meta = {**self.read_meta(), **changes}
        _atomic_write(self.meta_path, json.dumps(meta, indent=2, sort_keys=True))

    @property
    def state(self) -> str:
        return str(self.read_meta().get("state", "normalized"))

    def schema(self) -> Schema:
        return Schema.from_dict(json.loads((self.root / "schema.json").read_text()))

    def save_schema(self, schema: Schema) -> None:
        _atomic_write(self.root / "schema.json", json.dumps(schema.to_dict(), indent=1, ensure_ascii=False))

    def check(self) -> None:
        """Raise ``DamagedPackageError`` naming what is unreadable (after a disk fault or a hand edit)."""
        for name in ("package.json", "schema.json"):
            path = self.root / name
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise DamagedPackageError(f"package {self.load_id} in {self.root.parent}: {name} cannot be read "
                                          f"({type(exc).__name__}: {exc})") from exc

    # jobs ----------------------------------------------------------------------------------
    def jobs(self, state: str) -> list[JobFile]:
        folder = self.root / state
        if not folder.exists():
            return []
        found = (JobFile(p) for p in folder.iterdir() if not p.name.endswith(ERROR_SUFFIX))
        return sorted((j for j in found if j.is_job), key=lambda j: j.path.name)

    def scratch_path(self, job: JobFile, suffix: str) -> Path:
        """Where a job may write a temporary file (a transcode): outside the job folders, removed
        by ``clean_leftovers`` when a killed process left it."""
        folder = self.root / SCRATCH
        folder.mkdir(exist_ok=True)
        return folder / (job.path.name + suffix)

    def clean_leftovers(self) -> list[str]:
        """Remove what a killed process may have left: scratch files, and anything in a job folder
        that is neither a job file nor a failed job's error file. Returns the names removed."""
        removed: list[str] = []
        scratch = self.root / SCRATCH
        if scratch.exists():
            removed.extend(p.name for p in scratch.iterdir())
            shutil.rmtree(scratch, ignore_errors=True)
        for state in JOB_STATES:
            folder = self.root / state
            if not folder.exists():
                continue
            for path in folder.iterdir():
                if path.name.endswith(ERROR_SUFFIX) and state == "failed_jobs":
                    continue
                if not JobFile(path).is_job:
                    path.unlink(missing_ok=True) if not path.is_dir() else shutil.rmtree(path, ignore_errors=True)
                    removed.append(f"{state}/{path.name}")
        if removed:
            logger.warning("package %s: removed leftovers of an interrupted run: %s", self.load_id, removed)
        return removed

    def all_jobs(self) -> dict[str, list[JobFile]]:
        return {state: self.jobs(state) for state in JOB_STATES}

    def _move(self, job: JobFile, state: str, name: str | None = None) -> JobFile:
        target = self.root / state / (name or job.path.name)
        target.parent.mkdir(exist_ok=True)
        os.replace(job.path, target)
        return JobFile(target)

    def start_job(self, job: JobFile) -> JobFile:
        return self._move(job, "started_jobs")

    def complete_job(self, job: JobFile) -> JobFile:
        return self._move(job, "completed_jobs")

    def fail_job(self, job: JobFile, error: str) -> JobFile:
        moved = self._move(job, "failed_jobs")
        _atomic_write(moved.path.with_name(moved.path.name + ERROR_SUFFIX), error)
        return moved

    def return_job(self, job: JobFile) -> JobFile:
        """A started job back to new_jobs unchanged: it did not run, or it ran and was rolled back."""
        return self._move(job, "new_jobs")

    def retry_job(self, job: JobFile) -> JobFile:
        """Back to new_jobs with the retry count raised by one."""
        name = job_file_name(job.table_name, job.file_id, job.retry_count + 1, job.file_format)
        return self._move(job, "new_jobs", name)

    def job_error(self, job: JobFile) -> str | None:
        path = job.path.with_name(job.path.name + ERROR_SUFFIX)
        return path.read_text() if path.exists() else None


class PackageStorage:
    """All packages of one pipeline."""

    def __init__(self, pipeline_dir: Path) -> None:
        self.pipeline_dir = pipeline_dir
        for folder in ("normalizing", "packages", "completed"):
            (pipeline_dir / folder).mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lock(self, owner: str) -> Iterator[None]:
        """One run of a pipeline at a time: a second process running the same pipeline (an
        overlapping cron job) waits here instead of loading the first one's package as well."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks of this kind; runs are not serialized
            yield
            return
        with open(self.pipeline_dir / ".lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                logger.warning("%s: another process is running this pipeline (%s); waiting for it to finish",
                               owner, self.pipeline_dir)
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    _last_load_id: ClassVar[int] = 0
    _id_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def new_load_id(cls) -> str:
        """Microseconds since the epoch and six random hex digits: sortable by creation time,
        strictly increasing per process, and unique across processes (two pipelines starting in
        the same microsecond would otherwise share a load id, its done-records and its staging)."""
        with cls._id_lock:
            now = max(time.time_ns() // 1000, cls._last_load_id + 1)
            cls._last_load_id = now
        return f"{now}_{secrets.token_hex(3)}"

    @staticmethod
    def created_at(load_id: str) -> datetime:
        """When the package ``load_id`` was created (its id's microseconds), in UTC: the time an scd2
        merge of the package opens and closes versions at, the same on every retry."""
        return datetime.fromtimestamp(0, timezone.utc) + timedelta(microseconds=int(load_id.split("_", 1)[0]))

    def create(self, load_id: str) -> LoadPackage:
        root = self.pipeline_dir / "normalizing" / load_id
        for state in JOB_STATES:
            (root / state).mkdir(parents=True, exist_ok=True)
        package = LoadPackage(root)
        package.write_meta(load_id=load_id, state="normalizing",
                           created_at=datetime.now(timezone.utc).isoformat())
        return package

    def commit(self, package: LoadPackage, **meta: Any) -> LoadPackage:
        """Make a fully written package visible to the loader (one rename); ``meta`` is written
        with its state in the same file write."""
        package.write_meta(**meta, state="normalized")
        target = self.pipeline_dir / "packages" / package.load_id
        os.replace(package.root, target)
        return LoadPackage(target)

    def discard(self, package: LoadPackage) -> None:
        _remove_tree(package.root)

    def pending(self) -> list[LoadPackage]:
        return self._packages("packages")

    def abandoned_normalizing(self) -> list[LoadPackage]:
        return self._packages("normalizing")

    def _packages(self, folder_name: str) -> list[LoadPackage]:
        """Package folders in load-id order; removals a killed process left half done are finished."""
        folder = self.pipeline_dir / folder_name
        packages = []
        for path in folder.iterdir():
            if path.name.startswith(TRASH_PREFIX):
                shutil.rmtree(path, ignore_errors=True)
            elif path.is_dir():
                packages.append(LoadPackage(path))
        return sorted(packages, key=lambda p: p.load_id)

    def complete(self, package: LoadPackage, archive: bool) -> None:
        """Archive the loaded package (its meta says when it loaded), or remove it (unread, its meta is
        not rewritten first: replacing a file costs a few ms on ext4, a fair part of a small load)."""
        if archive:
            package.write_meta(state="loaded", loaded_at=datetime.now(timezone.utc).isoformat())
            os.replace(package.root, self.pipeline_dir / "completed" / package.load_id)
        else:
            _remove_tree(package.root)

    def completed(self) -> list[LoadPackage]:
        folder = self.pipeline_dir / "completed"
        return sorted((LoadPackage(p) for p in folder.iterdir() if p.is_dir()), key=lambda p: p.load_id)


def _remove_tree(root: Path) -> None:
    """Rename, then delete: a process killed while deleting leaves a hidden folder (finished by
    the next listing), never a half-deleted package that looks pending."""
    if not root.exists():
        return
    trash = root.with_name(TRASH_PREFIX + root.name)
    os.replace(root, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
