"""Live progress of a run: rows normalized per table, files written, load jobs done, rows per second.

A run updates one ``RunProgress``; what shows it is chosen by the ``progress`` setting: ``"auto"`` (the
default) draws bars on a terminal (stderr) and nothing elsewhere, ``"bar"`` always draws them, ``"log"``
writes the same counters to logging every ``LOG_EVERY_SECONDS`` and at the end of each step, ``"off"``
shows nothing. Bars are tqdm's: small, pure Python, and it turns itself off where stderr is no terminal.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

MODES = ("auto", "bar", "log", "off")
LOG_EVERY_SECONDS = 10.0
TOP_TABLES = 3
"""Tables named in a progress line (the ones with most rows)."""


def resolve_mode(setting: Any) -> str:
    """``True``/``False`` or one of ``MODES``; ``auto`` becomes ``bar`` on a terminal, else ``off``."""
    if setting is True:
        return "bar"
    if setting in (False, None):
        return "off"
    mode = str(setting).lower()
    if mode not in MODES:
        raise ValueError(f"progress must be one of {MODES} (or True/False), not {setting!r}")
    if mode == "auto":
        return "bar" if sys.stderr.isatty() else "off"
    return mode


class RunProgress:
    """Counters of one run, shown as the mode says. Thread-safe: load jobs finish on worker threads."""

    def __init__(self, pipeline_name: str, mode: str) -> None:
        self.pipeline_name = pipeline_name
        self.mode = mode
        self.rows: dict[str, int] = {}
        self.files = 0
        self.bytes = 0
        self.jobs_done = 0
        self.jobs_total = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._last_log = self.started
        self._bars: dict[str, Any] = {}
        self._job_ids: set[str] = set()

    # -- normalize ---------------------------------------------------------------------------------
    def normalized(self, table: str, rows: int) -> None:
        with self._lock:
            self.rows[table] = self.rows.get(table, 0) + rows
            self._show("normalize", rows)

    def file_written(self, job_id: str, size: int) -> None:
        """A load file is complete: one more job to load."""
        with self._lock:
            self.files += 1
            self.bytes += size
            self._count_jobs([job_id])
            self._show("normalize", 0)

    # -- load --------------------------------------------------------------------------------------
    def add_jobs(self, job_ids: list[str]) -> None:
        """Jobs a package will load (those of this run's files are counted already)."""
        with self._lock:
            self._count_jobs(job_ids)
            self._show("load", 0)

    def _count_jobs(self, job_ids: list[str]) -> None:
        self._job_ids.update(job_ids)
        self.jobs_total = len(self._job_ids)

    def job_done(self) -> None:
        with self._lock:
            self.jobs_done += 1
            self._show("load", 1)

    def close(self) -> None:
        """End the bars (their last state stays on screen) and log the totals."""
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            if self.mode == "log" and (self.rows or self.jobs_total):
                logger.info("%s", self.line())

    # -- showing -----------------------------------------------------------------------------------
    def line(self) -> str:
        """``pipeline gh: 1,200,000 rows normalized (events 1,000,000, ...), 12 files 96.0 MB, 11/12 jobs loaded, 250,000 rows/s``."""
        total = sum(self.rows.values())
        seconds = max(time.monotonic() - self.started, 1e-9)
        top = sorted(self.rows.items(), key=lambda item: -item[1])[:TOP_TABLES]
        tables = ", ".join(f"{t} {n:,}" for t, n in top) + (", ..." if len(self.rows) > TOP_TABLES else "")
        return (f"pipeline {self.pipeline_name}: {total:,} rows normalized ({tables or '-'}), {self.files} file(s) "
                f"{self.bytes / 1e6:.1f} MB, {self.jobs_done}/{self.jobs_total} job(s) loaded, "
                f"{total / seconds:,.0f} rows/s")

    def _show(self, step: str, advance: int) -> None:
        if self.mode == "log":
            now = time.monotonic()
            if now - self._last_log >= LOG_EVERY_SECONDS:
                self._last_log = now
                logger.info("%s", self.line())
        elif self.mode == "bar":
            bar = self._bars.get(step)
            if bar is None:
                bar = self._bar(step)
            if step == "load":
                bar.total = self.jobs_total
            bar.update(advance)
            bar.set_postfix_str(self._postfix(step), refresh=False)

    def _bar(self, step: str) -> Any:
        from tqdm import tqdm

        unit = " rows" if step == "normalize" else " jobs"
        bar = self._bars[step] = tqdm(desc=f"{self.pipeline_name} {step}", unit=unit, unit_scale=step == "normalize",
                                      total=self.jobs_total if step == "load" else None, file=sys.stderr,
                                      leave=True, mininterval=0.2, dynamic_ncols=True)
        return bar

    def _postfix(self, step: str) -> str:
        if step == "load":
            return ""
        top = sorted(self.rows.items(), key=lambda item: -item[1])[:TOP_TABLES]
        return f"{self.files} files {self.bytes / 1e6:.1f} MB; " + ", ".join(f"{t} {n:,}" for t, n in top)
