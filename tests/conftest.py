"""The repo's own tests. Fixtures (``isolated_env``, ``make_pipeline``, ``data_dir``, ...) come from the
conformance plugin, ``loadbay.destinations.testing.plugin``, loaded for every run by ``addopts`` in pyproject.toml;
the conformance tests themselves live in ``destinations/testing/conformance`` (also in ``testpaths``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The suite starts a few hundred Python processes (CLI runs, crash workers, the conformance command,
# a killed load, ...), each importing loadbay from source. With PYTHONDONTWRITEBYTECODE set (this
# machine's environment sets it), every one of them compiled every module it imported again; they share
# one bytecode cache outside the tree instead, so the tree stays as clean as the variable keeps it.
if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
    os.environ["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "loadbay-tests-pycache")
    del os.environ["PYTHONDONTWRITEBYTECODE"]
