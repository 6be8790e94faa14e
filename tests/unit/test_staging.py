"""The staging mechanism without a database: its settings (sections, environment, masking), the stage on a
real local folder (prefix, overwrite, removal, dry run) and the errors of a stage that cannot be used.

The end-to-end runs through a destination that loads from the stage are tests/integration/test_staging.py.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

import loadbay
from loadbay.common.capabilities import DEFAULTS
from loadbay.common.exceptions import ConfigFieldMissingError, ConfigurationError
from loadbay.common.staging import StagingConfig, StagingCredentials
from loadbay.common.storage.package import JobFile
from loadbay.common.storage.stage import Stage, StagingError, stage_for
from tests.conftest import REPO
from tests.staged_duckdb import staged_duckdb

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def job_file(folder: Path, name: str = "events.abc123.0.parquet", content: bytes = b"first") -> JobFile:
    path = folder / "new_jobs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return JobFile(path)


# -- the capability ------------------------------------------------------------------------------

def test_staging_capability_takes_three_values_and_defaults_to_none() -> None:
    assert DEFAULTS.staging == "none"
    for value in ("none", "optional", "required"):
        assert DEFAULTS.with_(staging=value).staging == value
    with pytest.raises(ValueError, match="unknown staging 'yes'"):
        DEFAULTS.with_(staging="yes")


def test_built_in_destinations_gain_no_staging_setting() -> None:
    for name in ("duckdb", "postgres"):
        destination = loadbay.destination(name)
        assert destination.capabilities.staging == "none"
        assert "staging" not in {f for f in destination.spec.__dataclass_fields__}
        with pytest.raises(TypeError, match="unknown settings \\['staging'\\]"):
            loadbay.destination(name, staging={"bucket_url": "/tmp/stage"})


# -- settings --------------------------------------------------------------------------------------

def test_staging_section_and_its_credentials_from_toml(isolated_env: Path) -> None:
    write(isolated_env / ".loadbay" / "config.toml",
          '[destination.staged_duckdb.staging]\nbucket_url = "s3://bucket/stage"\nkeep_staged_files = true\n')
    write(isolated_env / ".loadbay" / "secrets.toml",
          f'[destination.staged_duckdb.staging.credentials]\nkey = "AKIA"\nsecret = "{SECRET}"\n'
          '[destination.staged_duckdb.staging.credentials.client_kwargs]\nregion_name = "eu-west-1"\n')
    staging = staged_duckdb().configuration("p", "ds").staging
    assert staging.bucket_url == "s3://bucket/stage" and staging.keep_staged_files is True
    assert staging.credentials.options == {"key": "AKIA", "secret": SECRET,
                                           "client_kwargs": {"region_name": "eu-west-1"}}


def test_staging_from_environment_variables_typed_and_over_toml(isolated_env: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write(isolated_env / ".loadbay" / "secrets.toml",
          '[destination.staged_duckdb.staging]\nbucket_url = "/from/toml"\n'
          '[destination.staged_duckdb.staging.credentials]\nkey = "toml-key"\nsecret = "toml-secret"\n')
    monkeypatch.setenv("DESTINATION__STAGED_DUCKDB__STAGING__BUCKET_URL", "gs://bucket/stage")
    monkeypatch.setenv("DESTINATION__STAGED_DUCKDB__STAGING__KEEP_STAGED_FILES", "true")
    monkeypatch.setenv("DESTINATION__STAGED_DUCKDB__STAGING__CREDENTIALS__SECRET", SECRET)
    monkeypatch.setenv("DESTINATION__STAGED_DUCKDB__STAGING__CREDENTIALS__ENDPOINT_URL", "http://minio:9000")
    staging = staged_duckdb().configuration("p", "ds").staging
    assert staging.bucket_url == "gs://bucket/stage"
    assert staging.keep_staged_files is True
    assert staging.credentials.options == {"key": "toml-key", "secret": SECRET, "endpoint_url": "http://minio:9000"}


def test_named_destination_reads_its_own_staging_section_first(isolated_env: Path) -> None:
    write(isolated_env / ".loadbay" / "config.toml",
          '[destination.staged_duckdb.staging]\nbucket_url = "/type/stage"\nkeep_staged_files = true\n'
          '[destination.lake.staging]\nbucket_url = "/lake/stage"\n')
    staging = staged_duckdb(destination_name="lake").configuration("p", "ds").staging
    assert staging.bucket_url == "/lake/stage"
    assert staging.keep_staged_files is True  # not in the named section: from the type's


def test_explicit_staging_argument_wins_field_by_field(isolated_env: Path) -> None:
    write(isolated_env / ".loadbay" / "config.toml",
          '[destination.staged_duckdb.staging]\nbucket_url = "/toml/stage"\nkeep_staged_files = true\n')
    staging = staged_duckdb(staging={"bucket_url": "/arg/stage"}).configuration("p", "ds").staging
    assert (staging.bucket_url, staging.keep_staged_files) == ("/arg/stage", True)
    given = StagingConfig(bucket_url="/given")
    assert staged_duckdb(staging=given).configuration("p", "ds").staging is given
    with pytest.raises(ConfigurationError, match="give a StagingConfig or a dict"):
        staged_duckdb(staging=42).configuration("p", "ds")


def test_staging_credentials_are_masked_in_every_rendering(isolated_env: Path) -> None:
    config = staged_duckdb(staging={"bucket_url": f"ftp://loader:{SECRET}@host/stage",
                                    "credentials": {"secret": SECRET, "token": SECRET}}).configuration("p", "ds")
    for text in (repr(config), str(config), repr(config.staging), str(config.staging.credentials),
                 config.staging.credentials.location(), config.staging.safe_url()):
        assert SECRET not in text
    assert "StagingCredentials(secret=***, token=***)" in repr(config)
    assert "ftp://loader:***@host/stage" in repr(config)
    assert config.staging.credentials.options["secret"] == SECRET  # masking does not change the value
    assert repr(StagingCredentials()) == "StagingCredentials()"


# -- the stage on a local folder --------------------------------------------------------------------

@pytest.mark.parametrize("form", ["plain", "relative", "file_url"])
def test_put_copies_under_the_package_prefix_and_names_the_url(tmp_path: Path, form: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "stage"
    bucket = {"plain": str(folder), "relative": "stage", "file_url": f"file://{folder}"}[form]
    stage = Stage(StagingConfig(bucket_url=bucket), "my_dataset")
    job = job_file(tmp_path / "package")
    url = stage.put("1700000000000000_abcdef", job)
    copy = folder / "my_dataset" / "1700000000000000_abcdef" / "events.abc123.parquet"
    assert copy.read_bytes() == b"first"
    assert url == (f"file://{copy}" if form == "file_url" else str(copy))  # a path stays a path, absolute


def test_put_overwrites_the_same_job_whatever_its_retry(tmp_path: Path) -> None:
    """A copy cut short, or a retried job (its retry count raised), lands on the same name, overwritten."""
    stage = Stage(StagingConfig(bucket_url=str(tmp_path / "stage")), "ds")
    stage.put("1_a", job_file(tmp_path / "p", "t.f1.0.jsonl", b"partial"))
    url = stage.put("1_a", job_file(tmp_path / "p", "t.f1.1.jsonl", b"whole file"))
    prefix = tmp_path / "stage" / "ds" / "1_a"
    assert [p.name for p in prefix.iterdir()] == ["t.f1.jsonl"]
    assert Path(url).read_bytes() == b"whole file"


def test_remove_takes_the_package_prefix_only_and_keep_staged_files_keeps_it(tmp_path: Path) -> None:
    root = tmp_path / "stage"
    stage = Stage(StagingConfig(bucket_url=str(root)), "ds")
    for load_id in ("1_a", "2_b"):
        stage.put(load_id, job_file(tmp_path / load_id))
    assert stage.remove("1_a") is True
    assert not (root / "ds" / "1_a").exists() and (root / "ds" / "2_b").exists()
    assert stage.remove("1_a") is False  # nothing left: removing again is harmless
    keeping = Stage(StagingConfig(bucket_url=str(root), keep_staged_files=True), "ds")
    assert keeping.remove("2_b") is False and (root / "ds" / "2_b").exists()
    assert keeping.remove("2_b", force=True) is True and not (root / "ds" / "2_b").exists()


def test_dry_run_names_the_url_and_copies_nothing(tmp_path: Path) -> None:
    stage = Stage(StagingConfig(bucket_url=str(tmp_path / "stage")), "ds", dry_run=True)
    url = stage.put("1_a", job_file(tmp_path / "p"))
    assert url == str(tmp_path / "stage" / "ds" / "1_a" / "events.abc123.parquet")
    assert not (tmp_path / "stage").exists()
    assert stage.remove("1_a", force=True) is False


def test_a_copy_that_fails_is_a_transient_staging_error_without_the_credentials(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the stage should be")
    stage = Stage(StagingConfig(bucket_url=str(blocker), credentials=StagingCredentials({"secret": SECRET})), "ds")
    with pytest.raises(StagingError, match="could not be copied to the stage") as caught:
        stage.put("1_a", job_file(tmp_path / "p"))
    assert SECRET not in str(caught.value) and isinstance(caught.value.orig, OSError)


# -- a stage that cannot be used ----------------------------------------------------------------------

@pytest.mark.parametrize(("url", "extra", "package"), [("s3://bucket/stage", "s3", "s3fs"),
                                                       ("gs://bucket/stage", "gs", "gcsfs"),
                                                       ("abfs://container@account.dfs.core.windows.net/stage", "az",
                                                        "adlfs")])
def test_a_missing_filesystem_package_names_the_pip_extra(url: str, extra: str, package: str) -> None:
    if importlib.util.find_spec(package) is not None:
        pytest.skip(f"{package} is installed here")
    config = StagingConfig(bucket_url=url, credentials=StagingCredentials({"secret": SECRET}))
    with pytest.raises(ConfigurationError, match=rf"pip install 'loadbay\[{extra}\]'") as caught:
        Stage(config, "ds")
    assert package in str(caught.value) and SECRET not in str(caught.value)


def test_an_unknown_scheme_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="fsspec knows no nosuch:// filesystem"):
        Stage(StagingConfig(bucket_url="nosuch://bucket/stage"), "ds")


def test_stage_for_follows_the_capability(isolated_env: Path) -> None:
    dest = staged_duckdb(staging={"bucket_url": str(isolated_env / "stage")})
    config = dest.configuration("p", "ds")
    assert isinstance(stage_for(dest, config, dest.capabilities), Stage)
    assert stage_for(dest, config, dest.capabilities.with_(staging="none")) is None
    bare = staged_duckdb().configuration("p", "ds")
    assert stage_for(dest, bare, dest.capabilities.with_(staging="optional")) is None
    with pytest.raises(ConfigFieldMissingError, match="DESTINATION__STAGED_DUCKDB__STAGING__BUCKET_URL") as caught:
        stage_for(staged_duckdb(), bare, dest.capabilities)
    assert "[destination.staged_duckdb.staging] bucket_url" in str(caught.value)
    plain = loadbay.destination("duckdb")
    with pytest.raises(ConfigurationError, match="has no field 'staging: StagingConfig'"):
        stage_for(plain, plain.configuration("p", "ds"), plain.capabilities.with_(staging="required"))


# -- the guide --------------------------------------------------------------------------------------

def test_the_guide_quotes_the_staged_destination_line_for_line() -> None:
    """docs/writing-a-destination.md, step 11: every line of its Python excerpts (but elisions) is a line of
    tests/staged_duckdb.py, so the page cannot drift from the destination the staging tests run."""
    guide = (REPO / "docs" / "writing-a-destination.md").read_text(encoding="utf-8")
    section = guide.split("\n## 11. Staging: loading by reference", 1)[1].split("\n## ", 1)[0]
    excerpts = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(excerpts) == 3
    real = {line.strip() for line in (REPO / "tests" / "staged_duckdb.py").read_text(encoding="utf-8").splitlines()}
    quoted = [line.strip() for block in excerpts for line in block.splitlines() if line.strip() not in ("", "...")]
    assert [line for line in quoted if line not in real] == []
