"""Staging settings: where a destination that loads by reference finds the package's files.

A destination whose capabilities declare ``staging`` ("optional" or "required") adds one field to its
configuration class, ``staging: StagingConfig = field(default_factory=StagingConfig)``; users then set
``[destination.<name>.staging]`` (``bucket_url``, ``keep_staged_files``) and
``[destination.<name>.staging.credentials]`` (the fsspec storage options of the URL's filesystem), or
``DESTINATION__<NAME>__STAGING__BUCKET_URL`` and ``DESTINATION__<NAME>__STAGING__CREDENTIALS__<OPTION>``.
Nothing here imports fsspec: the copying is ``loadbay.common.storage.stage``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from loadbay.common.configuration import MASK, Credentials, mask_url_text


@dataclass(repr=False)
class StagingCredentials(Credentials):
    """The storage options of the stage's filesystem, passed to fsspec as they are (s3fs: ``key``,
    ``secret``, ``endpoint_url``; gcsfs: ``token``; adlfs: ``account_name``, ``account_key``, ...). Any key
    is taken and every value is a secret: ``repr``, logs and errors show the keys only."""

    options: dict[str, Any] = field(default_factory=dict)

    OPEN: ClassVar[bool] = True
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("options",)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{key}={MASK}' for key in sorted(self.options))})"

    __str__ = __repr__

    def location(self) -> str:
        return repr(self)


@dataclass
class StagingConfig:
    """``[destination.<name>.staging]``: a folder or fsspec URL the package's load files are copied to."""

    bucket_url: str = ""
    """A local folder (``/data/stage``, ``file:///data/stage``) or an fsspec URL (``s3://bucket/stage``,
    ``gs://...``, ``abfs://container@account.dfs.core.windows.net/...``); empty: no staging."""
    credentials: StagingCredentials = field(default_factory=StagingCredentials)
    """fsspec storage options of that filesystem; every value masked wherever it is shown."""
    keep_staged_files: bool = False
    """Keep a package's staged files after it completes (default: its prefix is removed)."""

    def __repr__(self) -> str:
        return (f"StagingConfig(bucket_url={self.safe_url()!r}, credentials={self.credentials!r}, "
                f"keep_staged_files={self.keep_staged_files!r})")

    def safe_url(self) -> str:
        """``bucket_url`` with any ``user:password@`` masked, fit for messages and logs."""
        return mask_url_text(self.bucket_url)
