"""Load packages on disk: a folder per run holding its schema and its load files by state.

Layout under ``<pipelines_dir>/<pipeline>/``::

    normalizing/<load_id>/      a package being written; never loaded, removed if normalize fails
    packages/<load_id>/         normalized packages waiting for (or in the middle of) loading
        package.json  schema.json
        new_jobs/  started_jobs/  completed_jobs/  failed_jobs/
    completed/<load_id>/        loaded packages, kept when archiving is on

A job file is named ``<table>.<file_id>.<retry>.<format>``; moving it between state folders is a
rename, so the state on disk is always exactly one of them.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from common.schema.types import Schema

JOB_STATES = ("new_jobs", "started_jobs", "completed_jobs", "failed_jobs")


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

    # jobs ----------------------------------------------------------------------------------
    def jobs(self, state: str) -> list[JobFile]:
        folder = self.root / state
        if not folder.exists():
            return []
        return sorted((JobFile(p) for p in folder.iterdir() if not p.name.endswith(".exception")),
                      key=lambda j: j.path.name)

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
        _atomic_write(moved.path.with_name(moved.path.name + ".exception"), error)
        return moved

    def return_job(self, job: JobFile) -> JobFile:
        """A started job back to new_jobs unchanged: it did not run, or it ran and was rolled back."""
        return self._move(job, "new_jobs")

    def retry_job(self, job: JobFile) -> JobFile:
        """Back to new_jobs with the retry count raised by one."""
        name = job_file_name(job.table_name, job.file_id, job.retry_count + 1, job.file_format)
        return self._move(job, "new_jobs", name)

    def job_error(self, job: JobFile) -> str | None:
        path = job.path.with_name(job.path.name + ".exception")
        return path.read_text() if path.exists() else None


class PackageStorage:
    """All packages of one pipeline."""

    def __init__(self, pipeline_dir: Path) -> None:
        self.pipeline_dir = pipeline_dir
        for folder in ("normalizing", "packages", "completed"):
            (pipeline_dir / folder).mkdir(parents=True, exist_ok=True)

    _last_load_id: ClassVar[int] = 0
    _id_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def new_load_id(cls) -> str:
        """Microseconds since the epoch: sortable by creation time, and strictly increasing per process."""
        with cls._id_lock:
            now = max(time.time_ns() // 1000, cls._last_load_id + 1)
            cls._last_load_id = now
        return str(now)

    def create(self, load_id: str) -> LoadPackage:
        root = self.pipeline_dir / "normalizing" / load_id
        for state in JOB_STATES:
            (root / state).mkdir(parents=True, exist_ok=True)
        package = LoadPackage(root)
        package.write_meta(load_id=load_id, state="normalizing",
                           created_at=datetime.now(timezone.utc).isoformat())
        return package

    def commit(self, package: LoadPackage) -> LoadPackage:
        """Make a fully written package visible to the loader (one rename)."""
        package.write_meta(state="normalized")
        target = self.pipeline_dir / "packages" / package.load_id
        os.replace(package.root, target)
        return LoadPackage(target)

    def discard(self, package: LoadPackage) -> None:
        shutil.rmtree(package.root, ignore_errors=True)

    def pending(self) -> list[LoadPackage]:
        folder = self.pipeline_dir / "packages"
        return sorted((LoadPackage(p) for p in folder.iterdir() if p.is_dir()), key=lambda p: p.load_id)

    def abandoned_normalizing(self) -> list[LoadPackage]:
        folder = self.pipeline_dir / "normalizing"
        return [LoadPackage(p) for p in folder.iterdir() if p.is_dir()]

    def complete(self, package: LoadPackage, archive: bool) -> None:
        package.write_meta(state="loaded", loaded_at=datetime.now(timezone.utc).isoformat())
        if archive:
            os.replace(package.root, self.pipeline_dir / "completed" / package.load_id)
        else:
            shutil.rmtree(package.root)

    def completed(self) -> list[LoadPackage]:
        folder = self.pipeline_dir / "completed"
        return sorted((LoadPackage(p) for p in folder.iterdir() if p.is_dir()), key=lambda p: p.load_id)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
