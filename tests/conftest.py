"""The repo's own tests. Fixtures (``isolated_env``, ``make_pipeline``, ``data_dir``, ...) come from the
conformance plugin, ``loadbay.destinations.testing.plugin``, loaded for every run by ``addopts`` in pyproject.toml;
the conformance tests themselves live in ``destinations/testing/conformance`` (also in ``testpaths``)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
