"""The stage: a folder or fsspec URL that load files are copied to, for an engine that reads them itself.

A package's files go under one prefix, ``<bucket_url>/<dataset>/<load_id>/``, each named by its job
(``<table>.<file_id>.<format>``, without the retry count). The loader copies a file right before each
attempt of its job, overwriting whatever is there, so a copy cut short by a crash, or a file of a
failed package that is retried, is replaced before anything reads it; the job's done-record in the
destination stays what decides whether a file has loaded (a copy alone loads nothing). The prefix is
removed once the package is committed (unless ``keep_staged_files``), and when a package is given up;
a failed package keeps its files until then.

fsspec is imported here only, when a ``Stage`` is made; the filesystem of an ``s3://``, ``gs://`` or
``abfs://`` URL is imported by fsspec, and a missing one is a ``ConfigurationError`` naming the pip extra.
"""

from __future__ import annotations

import logging
import posixpath
from typing import Any

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.configuration import EnvProvider
from loadbay.common.destination import Destination, DestinationConfig
from loadbay.common.exceptions import ConfigFieldMissingError, ConfigurationError, DestinationTransientError
from loadbay.common.staging import StagingConfig
from loadbay.common.storage.package import JobFile

logger = logging.getLogger(__name__)

EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "abfs": "az", "abfss": "az", "az": "az", "adl": "az"}
"""URL scheme → the loadbay extra that installs its fsspec filesystem (``pip install 'loadbay[s3]'``)."""


class StagingError(DestinationTransientError):
    """A file could not be copied to (or listed on) the stage: retried like a lost connection, then the
    package stays on disk for the next run."""


class Stage:
    """One destination's stage for one dataset: copies a package's files and removes them again."""

    def __init__(self, config: StagingConfig, dataset_name: str, *, dry_run: bool = False) -> None:
        self.config = config
        self.dataset_name = dataset_name
        self.dry_run = dry_run
        """Name where files would go, copy and remove nothing (``p.run(..., dry_run=True)``)."""
        self.fs, self.root = open_filesystem(config)
        self._as_url = "://" in config.bucket_url  # a plain path stays a path for the engine

    def __repr__(self) -> str:
        return f"<stage {self.config.safe_url()} dataset {self.dataset_name}>"

    def prefix(self, load_id: str) -> str:
        """The package's folder on the stage, in the filesystem's own terms (no scheme)."""
        return posixpath.join(self.root, self.dataset_name, load_id)

    def path(self, load_id: str, job: JobFile) -> str:
        """Where ``job``'s copy goes, in the filesystem's own terms: named by the job, not by its retry."""
        return posixpath.join(self.prefix(load_id), f"{job.table_name}.{job.file_id}.{job.file_format}")

    def url(self, load_id: str, job: JobFile) -> str:
        """What a job reads: the staged copy of ``job``, as a URL (``s3://...``) or an absolute local path."""
        path = self.path(load_id, job)
        return str(self.fs.unstrip_protocol(path)) if self._as_url else path

    def put(self, load_id: str, job: JobFile) -> str:
        """Copy ``job``'s file to its place on the stage (overwriting it) and return ``url``."""
        url = self.url(load_id, job)
        if self.dry_run:
            return url
        try:
            self.fs.makedirs(self.prefix(load_id), exist_ok=True)
            self.fs.put_file(str(job.path), self.path(load_id, job))
        except (OSError, ValueError) as exc:
            raise StagingError(f"file {job.path.name} could not be copied to the stage at "
                               f"{self.config.safe_url()} ({type(exc).__name__}: {exc})", orig=exc) from exc
        return url

    def remove(self, load_id: str, *, force: bool = False) -> bool:
        """Remove the package's prefix (unless ``keep_staged_files``; ``force``: the package is given up, and
        its files go whatever the setting). True when something was removed."""
        if self.dry_run or (self.config.keep_staged_files and not force):
            return False
        prefix = self.prefix(load_id)
        try:
            if not self.fs.exists(prefix):
                return False
            self.fs.rm(prefix, recursive=True)
        except (OSError, ValueError) as exc:
            raise StagingError(f"the staged files of package {load_id} at {self.config.safe_url()} could not be "
                               f"removed ({type(exc).__name__}: {exc})", orig=exc) from exc
        logger.info("package %s: removed its staged files from %s", load_id, self.config.safe_url())
        return True


def open_filesystem(config: StagingConfig) -> tuple[Any, str]:
    """The fsspec filesystem of ``bucket_url`` with the credentials' storage options, and the URL's root
    path in it. A filesystem whose package is missing, or an unknown scheme, is a ``ConfigurationError``."""
    from fsspec.core import url_to_fs

    url = config.bucket_url
    scheme = url.split("://", 1)[0].lower() if "://" in url else "file"
    try:
        fs, root = url_to_fs(url, **config.credentials.options)
    except ImportError as exc:
        extra = EXTRAS.get(scheme)
        install = f"pip install 'loadbay[{extra}]'" if extra else f"install the fsspec filesystem of {scheme}://"
        raise ConfigurationError(f"staging at {config.safe_url()}: the filesystem for {scheme}:// is not "
                                 f"installed ({exc}); {install}") from exc
    except ValueError as exc:
        raise ConfigurationError(f"staging at {config.safe_url()}: {exc} (fsspec knows no {scheme}:// "
                                 "filesystem; use a local folder, file://, s3://, gs:// or abfs://)") from None
    except TypeError:  # a storage option the filesystem does not take: its name only, never its value
        raise ConfigurationError(f"staging at {config.safe_url()}: the {scheme}:// filesystem does not take the "
                                 f"storage options {sorted(config.credentials.options)}") from None
    return fs, str(root).rstrip("/") or "/"


def stage_for(destination: Destination, config: DestinationConfig, capabilities: DestinationCapabilities, *,
              dry_run: bool = False) -> Stage | None:
    """The stage a destination's jobs load from under ``config``, or None: its capabilities say "none", or
    "optional" without a ``bucket_url``. "required" without one is a ``ConfigFieldMissingError`` naming
    where to set it."""
    if capabilities.staging == "none":
        return None
    staging = getattr(config, "staging", None)
    if not isinstance(staging, StagingConfig):
        raise ConfigurationError(f"destination {destination.destination_type!r} declares staging "
                                 f"{capabilities.staging!r} but {type(config).__name__} has no field "
                                 "'staging: StagingConfig' (loadbay.common.staging)")
    if not staging.bucket_url:
        if capabilities.staging == "optional":
            return None
        sections = [s + ("staging",) for s in destination.sections()]
        places = ["argument staging={'bucket_url': ...}"]
        places += [f"env {EnvProvider.key(s + ('bucket_url',))}" for s in sections]
        places += [f"[{'.'.join(s)}] bucket_url in .loadbay/secrets.toml or .loadbay/config.toml (here or in "
                   "your home folder)" for s in sections]
        raise ConfigFieldMissingError("staging.bucket_url", f"{type(config).__name__} (destination "
                                      f"{destination.destination_name!r} loads from a stage only)", places)
    return Stage(staging, config.dataset_name, dry_run=dry_run)
