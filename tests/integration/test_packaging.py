"""loadbay installs one import name, ``loadbay``: the folders ``common/`` and ``destinations/`` at the
repository top are packaged as ``loadbay.common`` and ``loadbay.destinations`` (pyproject's package-dir),
so a user's own ``common`` or ``destinations`` neither breaks loadbay nor gets loadbay's modules.

The wheel test builds the wheel as a user's pip would (build isolation), installs it without its
dependencies into a fresh venv that borrows this venv's third-party packages, and loads rows from a
folder holding the user's ``common.py``/``common/`` and ``destinations/``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE_ROOTS = {"loadbay": REPO / "loadbay", "loadbay.common": REPO / "common",
                 "loadbay.destinations": REPO / "destinations"}
# what a bare `import loadbay` must not import: the drivers, and the heavy libraries a run imports only
# when it needs them (pyarrow and numpy for columnar data, sqlglot for SQL, importlib.metadata for a
# destination that is not a built-in)
HEAVY = ("duckdb", "psycopg2", "sqlalchemy", "pymysql", "pandas", "polars", "pyarrow", "numpy", "sqlglot",
         "importlib.metadata")


def run_python(code: str, cwd: Path, python: str = sys.executable) -> dict:
    """Run ``code`` in a fresh interpreter in ``cwd``; it prints one JSON object as its last line."""
    done = subprocess.run([python, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_package_folder_is_listed_in_pyproject() -> None:
    """A mapped folder is not found by setuptools' packages.find, so the list must name every package."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join((root_name, *init.parent.relative_to(root).parts))
               for root_name, root in PACKAGE_ROOTS.items() for init in root.rglob("__init__.py")}
    assert listed == on_disk
    mapping = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    assert {name: REPO / folder for name, folder in mapping.items()} == PACKAGE_ROOTS


def test_loading_every_destination_imports_no_top_level_common_or_destinations(tmp_path: Path) -> None:
    """Every module of loadbay imported, every built-in destination resolved and its clients built,
    rows loaded on DuckDB and noop: no module named ``common*``/``destinations*`` exists, and a bare
    ``import loadbay`` imported no database driver, nor pyarrow, numpy or sqlglot."""
    code = f"""
    import importlib, json, pkgutil, sys
    import loadbay
    heavy_at_import = sorted(m for m in {HEAVY!r} if m in sys.modules)
    for package in ("loadbay", "loadbay.common", "loadbay.destinations"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            importlib.import_module(info.name)
    from loadbay.destinations import duckdb, mysql, noop, postgres, sqlalchemy
    rows = [{{"id": i, "nested": {{"a": [1, 2]}}}} for i in range(10)]
    for name in ("duckdb", "noop"):
        p = loadbay.pipeline("pkg_" + name, destination=name, dataset_name="raw", pipelines_dir="pipelines")
        p.run(rows, table_name="t").raise_on_failed_jobs()
    for name, creds in (("postgres", "postgresql://u:secret@127.0.0.1:1/db"), ("sqlalchemy", "sqlite:///x.db"),
                        ("mysql", "mysql://u:secret@127.0.0.1:1/db")):
        p = loadbay.pipeline("pkg_" + name, destination=loadbay.destination(name, credentials=creds),
                             dataset_name="raw", pipelines_dir="pipelines")
        p.destination.client(p.config)
    with loadbay.pipeline("pkg_duckdb", destination="duckdb", dataset_name="raw",
                          pipelines_dir="pipelines").sql_client() as client:
        count = client.execute_sql("SELECT count(*) FROM raw.t")[0][0]
    stray = sorted(m for m in sys.modules if m.split(".")[0] in ("common", "destinations"))
    print(json.dumps({{"stray": stray, "heavy_at_import": heavy_at_import, "count": count}}))
    """
    result = run_python(code, tmp_path)
    assert result == {"stray": [], "heavy_at_import": [], "count": 10}


def test_dict_rows_into_jsonl_files_import_no_arrow(tmp_path: Path) -> None:
    """Nested dict rows normalized into jsonl files, several batches per table (so open files are checked for
    rotation), import neither pyarrow nor numpy: an import that size (0.2 s, ~40,000 objects the garbage
    collector then examines) inside normalize would be paid by every first run of a process."""
    code = """
    import json, sys
    import loadbay
    rows = [{"id": i, "meta": {"k": i}, "tags": ["a", "b"]} for i in range(20)]
    p = loadbay.pipeline("no_arrow", destination="noop", pipelines_dir="pipelines", batch_size=5)
    p.run(rows, table_name="t").raise_on_failed_jobs()
    print(json.dumps(sorted(m for m in ("pyarrow", "numpy") if m in sys.modules)))
    """
    assert run_python(code, tmp_path) == []


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with loadbay's wheel installed (no editable finder); its dependencies come from this
    venv's site-packages through a .pth file, so the test needs no network beyond the build backend."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "bench", ".loadbay",
                                                               "__pycache__", "*.egg-info", "build", "dist"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(work / "dist"),
                    str(source)], check=True, capture_output=True, timeout=600)
    wheel = next((work / "dist").glob("loadbay-*.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    site = Path(run_python("import json, sysconfig; print(json.dumps(sysconfig.get_paths()['purelib']))",
                           work, str(python)))
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.parametrize("user_files", [["common.py", "destinations/__init__.py"],
                                        ["common/__init__.py", "destinations/__init__.py"]],
                         ids=["common.py", "common-package"])
def test_wheel_loads_beside_a_users_common_and_destinations(installed_wheel: Path, tmp_path: Path,
                                                            user_files: list[str]) -> None:
    for name in user_files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("OWNER = 'user'\n")
    code = """
    import json, sys
    import loadbay
    from loadbay.destinations import duckdb
    p = loadbay.pipeline("user_project", destination=duckdb(credentials="user.duckdb"), dataset_name="raw",
                         pipelines_dir="pipelines")
    p.run([{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": []}], table_name="t").raise_on_failed_jobs()
    with p.sql_client() as client:
        counts = [client.execute_sql(f"SELECT count(*) FROM raw.{t}")[0][0] for t in ("t", "t__tags")]
    import common, destinations
    print(json.dumps({"counts": counts, "common": common.OWNER, "destinations": destinations.OWNER,
                      "loadbay": loadbay.__file__, "editable": any("__editable__" in m for m in sys.modules)}))
    """
    result = run_python(code, tmp_path, str(installed_wheel))
    assert result["counts"] == [2, 2]
    assert result["common"] == result["destinations"] == "user"
    assert Path(result["loadbay"]).is_relative_to(installed_wheel.parents[1])  # the wheel's copy, not the repo
    assert result["editable"] is False
