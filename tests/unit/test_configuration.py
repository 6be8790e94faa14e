"""Configuration: where values come from, how credentials merge, coercion, errors and masking.

Every test runs in its own empty cwd with its own empty HOME and without DESTINATION__*/PIPELINE__*
variables (the autouse ``isolated_env`` fixture of destinations/testing/plugin.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

import loadbay
from loadbay.common.configuration import (
    ConnectionStringCredentials,
    EnvProvider,
    TomlProvider,
    default_providers,
    resolve,
)
from loadbay.common.destination import Destination, DestinationConfig
from loadbay.common.exceptions import ConfigFieldMissingError, ConfigurationError
from loadbay.destinations.duckdb.configuration import DuckDbCredentials
from loadbay.destinations.noop.capabilities import capabilities as noop_capabilities
from loadbay.destinations.noop.job_client import NoopJobClient

PASSWORD = "s3cr3t-Pa55"
SPECIAL_PASSWORD = "p@ss:w/rd"
SPECIAL_PASSWORD_ENCODED = "p%40ss%3Aw%2Frd"


# -- a destination whose credentials are a connection string with a required database -----------

@dataclass
class SecretConfig(DestinationConfig):
    credentials: ConnectionStringCredentials


class SecretDest(Destination):
    """Loads nowhere (like noop) but carries connection-string credentials with a password."""

    destination_type = "secretdest"
    spec = SecretConfig
    capabilities = noop_capabilities

    def client(self, config: DestinationConfig) -> NoopJobClient:
        return NoopJobClient(config, self.capabilities)


@dataclass(repr=False)
class PasswordCredentials(ConnectionStringCredentials):
    REQUIRED: ClassVar[tuple[str, ...]] = ("database", "password")


@dataclass
class PasswordConfig(DestinationConfig):
    credentials: PasswordCredentials


class PasswordDest(SecretDest):
    destination_type = "passworddest"
    spec = PasswordConfig


@dataclass
class ServiceSettings:
    """A plain spec for calling ``resolve`` directly."""

    api_key: str
    retries: int = 3
    enabled: bool = False
    ratio: float = 1.0
    limit: int | None = None


# -- helpers -------------------------------------------------------------------------------------

LEVELS = ["explicit", "env", "cwd_secrets", "cwd_config", "home_secrets", "home_config"]


def cwd_file(name: str) -> Path:
    return Path.cwd() / ".loadbay" / name


def home_file(name: str) -> Path:
    return Path.home() / ".loadbay" / name


def level_file(level: str) -> Path:
    where, kind = level.split("_")
    return (cwd_file if where == "cwd" else home_file)(f"{kind}.toml")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def secret_config(destination: Destination | None = None) -> ConnectionStringCredentials:
    dest = destination or SecretDest()
    return dest.configuration("p", "ds").credentials  # type: ignore[return-value]


def abs_path(p: str) -> str:
    return str(Path(p).resolve())


# -- providers -----------------------------------------------------------------------------------

def test_default_providers_are_env_then_cwd_then_home_secrets_before_config() -> None:
    providers = default_providers()
    assert isinstance(providers[0], EnvProvider)
    assert [p.path for p in providers[1:]] == [
        cwd_file("secrets.toml"), cwd_file("config.toml"), home_file("secrets.toml"), home_file("config.toml")]


def test_env_provider_key_is_upper_case_joined_by_double_underscore() -> None:
    env = EnvProvider({"DESTINATION__WAREHOUSE__CREDENTIALS__PASSWORD": "x"})
    assert EnvProvider.key(("destination", "warehouse", "credentials", "password")) == \
        "DESTINATION__WAREHOUSE__CREDENTIALS__PASSWORD"
    assert env.get(("destination", "warehouse", "credentials", "password")) == "x"
    assert env.get(("destination", "warehouse", "credentials", "username")) is None


def test_missing_toml_file_is_an_empty_provider(tmp_path: Path) -> None:
    provider = TomlProvider(tmp_path / "nope.toml")
    assert provider.data == {}
    assert provider.get(("destination", "duckdb")) is None


def test_malformed_toml_raises_configuration_error_naming_the_file() -> None:
    path = write(cwd_file("secrets.toml"), "[destination.duckdb\ncredentials = ")
    with pytest.raises(ConfigurationError, match="cannot parse") as exc_info:
        loadbay.destination("duckdb").configuration("p", "ds")
    assert str(path) in str(exc_info.value)


# -- precedence ----------------------------------------------------------------------------------

@pytest.mark.parametrize("top", LEVELS)
def test_precedence_explicit_env_cwd_secrets_cwd_config_home_secrets_home_config(
        top: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every place from ``top`` downwards holds a value; the one at ``top`` must win."""
    present = LEVELS[LEVELS.index(top):]
    explicit: dict[str, Any] = {}
    for level in present:
        if level == "explicit":
            explicit = {"credentials": f"/data/{level}.duckdb", "replace_strategy": level}
        elif level == "env":
            monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", f"/data/{level}.duckdb")
            monkeypatch.setenv("DESTINATION__DUCKDB__REPLACE_STRATEGY", level)
        else:
            write(level_file(level), f'[destination.duckdb]\ncredentials = "/data/{level}.duckdb"\n'
                                     f'replace_strategy = "{level}"\n')
    config = loadbay.destination("duckdb", **explicit).configuration("p", "ds")
    assert config.replace_strategy == top
    assert config.credentials.database == abs_path(f"/data/{top}.duckdb")


@pytest.mark.parametrize("top", LEVELS[1:])
def test_precedence_for_a_single_credentials_field(top: str, monkeypatch: pytest.MonkeyPatch) -> None:
    present = LEVELS[LEVELS.index(top):]
    for level in present:
        if level == "env":
            monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS__PASSWORD", f"pw-{level}")
        else:
            write(level_file(level), f'[destination.secretdest.credentials]\npassword = "pw-{level}"\n'
                                     f'database = "db-{level}"\n')
    creds = secret_config()
    assert creds.password == f"pw-{top}"
    # the database comes from the highest toml file that has one (env set only the password)
    first_toml = next(lv for lv in present if lv not in ("env", "explicit"))
    assert creds.database == f"db-{first_toml}"


def test_explicit_connection_string_beats_env_and_toml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS__PASSWORD", "from-env")
    write(cwd_file("secrets.toml"), '[destination.secretdest]\n'
                                    'credentials = "postgresql://tomluser:from-toml@tomlhost/tomldb"\n')
    creds = secret_config(SecretDest(credentials="postgresql://argu:from-arg@arghost:6000/argdb"))
    assert (creds.username, creds.password, creds.host, creds.port, creds.database) == \
        ("argu", "from-arg", "arghost", 6000, "argdb")


def test_explicit_credentials_instance_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS__PASSWORD", "from-env")
    given = ConnectionStringCredentials(drivername="postgresql", database="db", password="given")
    creds = secret_config(SecretDest(credentials=given))
    assert creds is given
    assert creds.password == "given"


def test_explicit_credentials_dict_overrides_single_fields_and_keeps_the_rest() -> None:
    write(cwd_file("secrets.toml"), '[destination.secretdest.credentials]\n'
                                    'drivername = "postgresql"\ndatabase = "dwh"\nhost = "tomlhost"\n'
                                    'password = "from-toml"\n')
    creds = secret_config(SecretDest(credentials={"password": "from-arg", "port": "7000"}))
    assert (creds.password, creds.port, creds.host, creds.database) == ("from-arg", 7000, "tomlhost", "dwh")


# -- credentials shapes ---------------------------------------------------------------------------

def test_credentials_as_connection_string_in_toml() -> None:
    write(cwd_file("secrets.toml"),
          '[destination.secretdest]\n'
          f'credentials = "postgresql://loader:{PASSWORD}@db.example.com:5433/dwh?sslmode=require"\n')
    creds = secret_config()
    assert isinstance(creds, ConnectionStringCredentials)
    assert (creds.drivername, creds.username, creds.password, creds.host, creds.port, creds.database) == \
        ("postgresql", "loader", PASSWORD, "db.example.com", 5433, "dwh")
    assert creds.query == {"sslmode": "require"}


def test_credentials_as_table_of_fields_in_toml() -> None:
    write(cwd_file("secrets.toml"),
          '[destination.secretdest.credentials]\n'
          'drivername = "postgresql"\ndatabase = "dwh"\nusername = "loader"\n'
          f'password = "{PASSWORD}"\nhost = "db.example.com"\nport = 5433\n')
    creds = secret_config()
    assert (creds.drivername, creds.username, creds.password, creds.host, creds.port, creds.database) == \
        ("postgresql", "loader", PASSWORD, "db.example.com", 5433, "dwh")
    assert creds.to_url(masked=False) == f"postgresql://loader:{PASSWORD}@db.example.com:5433/dwh"


def test_fields_split_between_secrets_and_config_are_merged() -> None:
    write(cwd_file("config.toml"), '[destination.secretdest.credentials]\n'
                                   'drivername = "postgresql"\ndatabase = "dwh"\nhost = "db.example.com"\n')
    write(home_file("secrets.toml"), f'[destination.secretdest.credentials]\npassword = "{PASSWORD}"\n')
    creds = secret_config()
    assert (creds.database, creds.host, creds.password) == ("dwh", "db.example.com", PASSWORD)


def test_env_whole_string_for_duckdb_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "x.duckdb"
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(target))
    write(cwd_file("secrets.toml"), '[destination.duckdb]\ncredentials = "/data/from_toml.duckdb"\n')
    config = loadbay.destination("duckdb").configuration("p", "ds")
    assert config.credentials.database == str(target.resolve())


def test_env_whole_string_duckdb_url_relative_path_is_made_absolute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", "duckdb:///rel.duckdb")
    config = loadbay.destination("duckdb").configuration("p", "ds")
    assert config.credentials.database == str((Path.cwd() / "rel.duckdb").resolve())


def test_env_whole_string_for_connection_string_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS",
                       f"postgresql://envuser:{PASSWORD}@envhost:5439/envdb")
    creds = secret_config()
    assert (creds.username, creds.password, creds.host, creds.port, creds.database) == \
        ("envuser", PASSWORD, "envhost", 5439, "envdb")


def test_env_single_field_beats_env_whole_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS", "postgresql://u:old@h/db")
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS__PASSWORD", "new")
    creds = secret_config()
    assert (creds.password, creds.username, creds.host, creds.database) == ("new", "u", "h", "db")


def test_env_single_field_overrides_toml_table_field_and_others_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    write(cwd_file("secrets.toml"), '[destination.warehouse.credentials]\n'
                                    'drivername = "postgresql"\ndatabase = "dwh"\nusername = "loader"\n'
                                    'password = "toml-pw"\nhost = "db.example.com"\nport = 5432\n')
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS__PASSWORD", "env-pw")
    creds = secret_config(SecretDest(destination_name="warehouse"))
    assert creds.password == "env-pw"
    assert (creds.drivername, creds.database, creds.username, creds.host, creds.port) == \
        ("postgresql", "dwh", "loader", "db.example.com", 5432)


def test_env_single_field_overrides_field_of_toml_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    write(cwd_file("secrets.toml"), '[destination.secretdest]\n'
                                    'credentials = "postgresql://loader:toml-pw@db.example.com:5432/dwh"\n')
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS__PASSWORD", "env-pw")
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS__PORT", "6543")
    creds = secret_config()
    assert (creds.password, creds.port) == ("env-pw", 6543)
    assert (creds.username, creds.host, creds.database) == ("loader", "db.example.com", "dwh")


# -- named destinations ---------------------------------------------------------------------------

def test_named_destination_reads_its_own_section_before_the_type_section() -> None:
    write(cwd_file("secrets.toml"),
          '[destination.warehouse]\ncredentials = "postgresql://wh:wh-pw@whhost/whdb"\n'
          'replace_strategy = "staging-optimized"\n'
          '[destination.secretdest]\ncredentials = "postgresql://ty:ty-pw@tyhost/tydb"\n'
          'replace_strategy = "truncate-and-insert"\n')
    config = SecretDest(destination_name="warehouse").configuration("p", "ds")
    assert (config.credentials.username, config.credentials.password, config.credentials.database) == \
        ("wh", "wh-pw", "whdb")
    assert config.replace_strategy == "staging-optimized"
    # the unnamed destination reads the type section
    plain = SecretDest().configuration("p", "ds")
    assert (plain.credentials.username, plain.replace_strategy) == ("ty", "truncate-and-insert")


def test_named_destination_falls_back_to_the_type_section() -> None:
    write(cwd_file("config.toml"),
          '[destination.secretdest]\nreplace_strategy = "truncate-and-insert"\n'
          '[destination.secretdest.credentials]\ndrivername = "postgresql"\ndatabase = "tydb"\n'
          'host = "tyhost"\nusername = "ty"\n')
    write(cwd_file("secrets.toml"), '[destination.warehouse.credentials]\npassword = "wh-pw"\n')
    config = SecretDest(destination_name="warehouse").configuration("p", "ds")
    assert config.replace_strategy == "truncate-and-insert"
    creds = config.credentials
    assert (creds.password, creds.database, creds.host, creds.username) == ("wh-pw", "tydb", "tyhost", "ty")


def test_named_destination_does_not_read_other_named_sections() -> None:
    write(cwd_file("secrets.toml"), '[destination.other.credentials]\ndatabase = "otherdb"\n'
                                    '[destination.secretdest.credentials]\ndatabase = "tydb"\n')
    assert secret_config(SecretDest(destination_name="warehouse")).database == "tydb"


def test_named_destination_env_section_is_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS", "/data/warehouse.duckdb")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", "/data/type.duckdb")
    named = loadbay.destination("duckdb", destination_name="warehouse").configuration("p", "ds")
    plain = loadbay.destination("duckdb").configuration("p", "ds")
    assert named.credentials.database == abs_path("/data/warehouse.duckdb")
    assert plain.credentials.database == abs_path("/data/type.duckdb")


# -- missing values -------------------------------------------------------------------------------

def test_missing_database_lists_every_toml_key_and_env_name() -> None:
    with pytest.raises(ConfigFieldMissingError) as exc_info:
        PasswordDest(destination_name="warehouse").configuration("p", "ds")
    exc = exc_info.value
    message = str(exc)
    assert exc.field == "credentials.database"
    for expected in [
        "argument credentials=",
        "env DESTINATION__WAREHOUSE__CREDENTIALS__DATABASE",
        "env DESTINATION__PASSWORDDEST__CREDENTIALS__DATABASE",
        "env DESTINATION__WAREHOUSE__CREDENTIALS",
        f"[destination.warehouse.credentials] database in {cwd_file('secrets.toml')}",
        f"[destination.warehouse.credentials] database in {cwd_file('config.toml')}",
        f"[destination.warehouse.credentials] database in {home_file('secrets.toml')}",
        f"[destination.warehouse.credentials] database in {home_file('config.toml')}",
        f"[destination.passworddest.credentials] database in {cwd_file('secrets.toml')}",
        f"[destination.warehouse] credentials in {cwd_file('secrets.toml')}",
    ]:
        assert expected in message, expected
    # places come in precedence order: env, cwd secrets, cwd config, home secrets, home config
    key_places = [p for p in exc.places if p.startswith(("env DESTINATION__WAREHOUSE__CREDENTIALS__DATABASE",
                                                         "[destination.warehouse.credentials] database"))]
    assert key_places == [
        "env DESTINATION__WAREHOUSE__CREDENTIALS__DATABASE",
        f"[destination.warehouse.credentials] database in {cwd_file('secrets.toml')}",
        f"[destination.warehouse.credentials] database in {cwd_file('config.toml')}",
        f"[destination.warehouse.credentials] database in {home_file('secrets.toml')}",
        f"[destination.warehouse.credentials] database in {home_file('config.toml')}",
    ]


def test_missing_password_is_reported_when_database_is_present() -> None:
    write(cwd_file("config.toml"), '[destination.warehouse.credentials]\ndatabase = "dwh"\n')
    with pytest.raises(ConfigFieldMissingError) as exc_info:
        PasswordDest(destination_name="warehouse").configuration("p", "ds")
    assert exc_info.value.field == "credentials.password"
    assert "DESTINATION__WAREHOUSE__CREDENTIALS__PASSWORD" in str(exc_info.value)
    assert str(cwd_file("secrets.toml")) in str(exc_info.value)


def test_empty_string_does_not_satisfy_a_required_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS__DATABASE", "")
    with pytest.raises(ConfigFieldMissingError, match="DESTINATION__SECRETDEST__CREDENTIALS__DATABASE"):
        secret_config()


def test_missing_plain_required_field_lists_places(tmp_path: Path) -> None:
    toml = tmp_path / "settings.toml"
    with pytest.raises(ConfigFieldMissingError) as exc_info:
        resolve(ServiceSettings, [("service",)], providers=[EnvProvider({}), TomlProvider(toml)])
    assert exc_info.value.field == "api_key"
    assert exc_info.value.places == ["env SERVICE__API_KEY", f"[service] api_key in {toml}"]
    assert "ServiceSettings" in str(exc_info.value)


# -- coercion -------------------------------------------------------------------------------------

def test_env_strings_are_coerced_to_field_types() -> None:
    env = EnvProvider({"SERVICE__API_KEY": "k", "SERVICE__RETRIES": "5", "SERVICE__ENABLED": "true",
                       "SERVICE__RATIO": "0.25", "SERVICE__LIMIT": "10"})
    settings = resolve(ServiceSettings, [("service",)], providers=[env])
    assert settings == ServiceSettings(api_key="k", retries=5, enabled=True, ratio=0.25, limit=10)
    assert type(settings.retries) is int and type(settings.enabled) is bool and type(settings.limit) is int


@pytest.mark.parametrize(("text", "expected"), [("1", True), ("TRUE", True), ("yes", True), ("On", True),
                                                ("0", False), ("false", False), ("NO", False), ("off", False)])
def test_bool_strings(text: str, expected: bool) -> None:
    env = EnvProvider({"SERVICE__API_KEY": "k", "SERVICE__ENABLED": text})
    assert resolve(ServiceSettings, [("service",)], providers=[env]).enabled is expected


@pytest.mark.parametrize(("name", "value", "type_name"), [("RETRIES", "three", "int"), ("LIMIT", "1.5", "int"),
                                                          ("ENABLED", "maybe", "bool"), ("RATIO", "x", "float")])
def test_bad_typed_env_value_gives_clear_configuration_error(name: str, value: str, type_name: str) -> None:
    env = EnvProvider({"SERVICE__API_KEY": "k", f"SERVICE__{name}": value})
    with pytest.raises(ConfigurationError) as exc_info:
        resolve(ServiceSettings, [("service",)], providers=[env])
    assert not isinstance(exc_info.value, ConfigFieldMissingError)
    message = str(exc_info.value)
    assert name.lower() in message and repr(value) in message and type_name in message


def test_toml_string_is_coerced_too(tmp_path: Path) -> None:
    toml = write(tmp_path / "c.toml", '[service]\napi_key = "k"\nretries = "7"\n')
    assert resolve(ServiceSettings, [("service",)], providers=[TomlProvider(toml)]).retries == 7


def test_credentials_port_from_env_is_int_and_bad_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    write(cwd_file("secrets.toml"), '[destination.secretdest.credentials]\ndatabase = "dwh"\n')
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS__PORT", "6543")
    assert secret_config().port == 6543
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS__PORT", "sixty")
    with pytest.raises(ConfigurationError, match=r"'port'.*'sixty'.*int"):
        secret_config()


def test_duckdb_read_only_from_env_is_bool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__READ_ONLY", "true")
    creds = loadbay.destination("duckdb").configuration("p", "ds").credentials
    assert isinstance(creds, DuckDbCredentials)
    assert creds.read_only is True


def test_pipeline_settings_from_env_are_typed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PIPELINE__BATCH_SIZE", "7")
    monkeypatch.setenv("PIPELINE__ARCHIVE_COMPLETED_PACKAGES", "yes")
    monkeypatch.setenv("PIPELINE__RETRY_BACKOFF_SECONDS", "0.25")
    monkeypatch.setenv("PIPELINE__PIPELINES_DIR", str(tmp_path / "from_env"))
    p = loadbay.pipeline("p", destination="noop")
    assert p.settings.batch_size == 7
    assert p.settings.archive_completed_packages is True
    assert p.settings.retry_backoff_seconds == 0.25
    assert p.pipeline_dir == tmp_path / "from_env" / "p"


def test_pipeline_settings_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write(home_file("config.toml"), '[pipeline]\nmax_retries = 9\nworkers = 2\nbatch_size = 11\n')
    write(cwd_file("config.toml"), '[pipeline]\nworkers = 4\n')
    monkeypatch.setenv("PIPELINE__BATCH_SIZE", "13")
    p = loadbay.pipeline("p", destination="noop", pipelines_dir=tmp_path / "pl", batch_size=17)
    assert p.settings.max_retries == 9  # only in home config
    assert p.settings.workers == 4  # cwd config beats home config
    assert p.settings.batch_size == 17  # explicit beats env
    assert p.pipeline_dir == tmp_path / "pl" / "p"


def test_pipeline_bad_int_in_env_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPELINE__MAX_RETRIES", "three")
    with pytest.raises(ConfigurationError, match=r"'max_retries'.*'three'.*int"):
        loadbay.pipeline("p", destination="noop")


# -- parsing and masking --------------------------------------------------------------------------

def test_percent_encoded_special_characters_in_password_parse() -> None:
    url = f"postgresql://loader:{SPECIAL_PASSWORD_ENCODED}@db.example.com:5432/dwh"
    creds = ConnectionStringCredentials(**ConnectionStringCredentials.parse_string(url))
    assert creds.password == SPECIAL_PASSWORD
    assert (creds.username, creds.host, creds.port, creds.database) == ("loader", "db.example.com", 5432, "dwh")
    # the unmasked URL round-trips
    again = ConnectionStringCredentials.parse_string(creds.to_url(masked=False))
    assert again["password"] == SPECIAL_PASSWORD and again["host"] == "db.example.com"


def test_percent_encoded_password_through_env_and_toml(monkeypatch: pytest.MonkeyPatch) -> None:
    write(cwd_file("secrets.toml"), '[destination.secretdest]\n'
                                    f'credentials = "postgresql://loader:{SPECIAL_PASSWORD_ENCODED}@tomlhost/dwh"\n')
    assert secret_config().password == SPECIAL_PASSWORD
    monkeypatch.setenv("DESTINATION__SECRETDEST__CREDENTIALS",
                       f"postgresql://loader:{SPECIAL_PASSWORD_ENCODED}@envhost/dwh")
    creds = secret_config()
    assert (creds.password, creds.host) == (SPECIAL_PASSWORD, "envhost")


def test_raw_special_password_field_renders_an_escaped_url() -> None:
    write(cwd_file("secrets.toml"), '[destination.secretdest.credentials]\ndrivername = "postgresql"\n'
                                    f'database = "dwh"\nhost = "h"\npassword = "{SPECIAL_PASSWORD}"\n'
                                    'username = "loader"\n')
    creds = secret_config()
    assert creds.password == SPECIAL_PASSWORD
    assert ConnectionStringCredentials.parse_string(creds.to_url(masked=False))["password"] == SPECIAL_PASSWORD


@pytest.mark.parametrize("password", [PASSWORD, SPECIAL_PASSWORD])
def test_password_masked_in_repr_str_location_and_to_url(password: str) -> None:
    creds = ConnectionStringCredentials(drivername="postgresql", database="dwh", username="loader",
                                        password=password, host="db.example.com", port=5432)
    renderings = {"repr": repr(creds), "str": str(creds), "location": creds.location(),
                  "to_url": creds.to_url(), "to_url masked": creds.to_url(masked=True),
                  "config repr": repr(SecretConfig(credentials=creds))}
    encoded = creds.to_url(masked=False).split("loader:")[1].split("@db.example.com")[0]
    for what, text in renderings.items():
        assert password not in text, what
        assert encoded not in text, what
        assert "db.example.com" in text, what
    assert "password='***'" in repr(creds)
    assert "password='***'" in str(creds)
    assert creds.password == password  # masking does not change the value


def test_masked_url_shows_the_mask_literally() -> None:
    creds = ConnectionStringCredentials(drivername="postgresql", database="dwh", username="loader",
                                        password=PASSWORD, host="db.example.com", port=5432)
    assert creds.location() == "postgresql://loader:***@db.example.com:5432/dwh"
    assert creds.to_url(masked=True) == "postgresql://loader:***@db.example.com:5432/dwh"


def test_no_password_renders_without_mask() -> None:
    creds = ConnectionStringCredentials(drivername="duckdb", database="x")
    assert "***" not in repr(creds) and "%2A" not in creds.location()
    assert "password=None" in repr(creds)


@pytest.mark.parametrize("bad", [
    "postgresql://loader:s3cr3t-Pa55@db.example.com:notaport/dwh",
    "loader:s3cr3t-Pa55@db.example.com:5432/dwh",
    "postgresql:/loader:s3cr3t-Pa55@db.example.com/dwh",
    "postgresql://loader@db.example.com:notaport/dwh?password=s3cr3t-Pa55",  # libpq takes it in the query too
    "host=db.example.com port=5432 user=loader password=s3cr3t-Pa55 dbname=dwh",  # a libpq keyword string
    "host=db.example.com password='s3cr3t-Pa55 x' dbname=dwh",
    "postgresql://loader:s3cr3t@Pa55@db.example.com:notaport/dwh",  # an '@' in the password, unquoted
])
def test_unparseable_connection_string_error_does_not_show_the_password(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot parse connection string") as exc_info:
        ConnectionStringCredentials.parse_string(bad)
    assert "s3cr3t" not in str(exc_info.value) and "Pa55" not in str(exc_info.value)
    assert "db.example.com" in str(exc_info.value)


def test_load_info_never_contains_the_password(tmp_path: Path) -> None:
    url = f"postgresql://loader:{SPECIAL_PASSWORD_ENCODED}@db.example.com:5432/dwh"
    p = loadbay.pipeline("secret_pipe", destination=SecretDest(credentials=url), dataset_name="raw_events",
                         pipelines_dir=tmp_path / "pipelines")
    assert p.config.credentials.password == SPECIAL_PASSWORD
    info = p.run([{"a": 1}, {"a": 2}], table_name="t")
    text = str(info)
    assert "secret_pipe" in text
    assert "secretdest" in text
    assert "raw_events" in text
    assert "db.example.com" in text and "loader" in text  # the location
    for secret in (SPECIAL_PASSWORD, SPECIAL_PASSWORD_ENCODED):
        assert secret not in text
        assert secret not in repr(info)
        assert secret not in info.location
    assert info.row_counts == {"t": 2}


def test_load_info_of_named_destination_with_env_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write(cwd_file("config.toml"), '[destination.warehouse.credentials]\ndrivername = "postgresql"\n'
                                   'database = "dwh"\nhost = "db.example.com"\nusername = "loader"\n')
    monkeypatch.setenv("DESTINATION__WAREHOUSE__CREDENTIALS__PASSWORD", PASSWORD)
    dest = loadbay.destination(PasswordDest, destination_name="warehouse")
    p = loadbay.pipeline("named_pipe", destination=dest, pipelines_dir=tmp_path / "pipelines")
    info = p.run([{"a": 1}], table_name="t")
    text = str(info)
    assert p.config.credentials.password == PASSWORD
    assert "named_pipe" in text and "warehouse" in text and "passworddest" in text
    assert "named_pipe_dataset" in text and "db.example.com" in text
    assert PASSWORD not in text and PASSWORD not in repr(info)


@dataclass
class _WithDefaultCredentials(DestinationConfig):
    credentials: DuckDbCredentials = field(default_factory=DuckDbCredentials)


def test_resolve_with_explicit_providers_only_reads_those(tmp_path: Path) -> None:
    """Files in cwd/HOME are ignored when providers are passed explicitly."""
    write(cwd_file("secrets.toml"), '[destination.duckdb]\ncredentials = "/data/cwd.duckdb"\n')
    toml = write(tmp_path / "mine.toml", '[destination.duckdb]\ncredentials = "/data/mine.duckdb"\n')
    config = resolve(_WithDefaultCredentials, [("destination", "duckdb")],
                     providers=[EnvProvider({}), TomlProvider(toml)])
    assert config.credentials.database == "/data/mine.duckdb"
    env_first = resolve(_WithDefaultCredentials, [("destination", "duckdb")],
                        providers=[EnvProvider({"DESTINATION__DUCKDB__CREDENTIALS": "/data/env.duckdb"}),
                                   TomlProvider(toml)])
    assert env_first.credentials.database == "/data/env.duckdb"


def test_a_pipeline_refuses_a_setting_it_does_not_have_naming_it(tmp_path):
    """``credentials=`` on ``loadbay.pipeline`` was once dropped without a word (the pipeline then loaded into the
    destination's default server); a misspelt setting was too. Both are errors that name the keyword."""
    with pytest.raises(ConfigurationError, match=r"pipeline 'p': unknown setting\(s\) 'credentials'.*"
                                                 r"loadbay\.destination\('postgres', credentials=\.\.\.\)"):
        loadbay.pipeline("p", destination="postgres", pipelines_dir=tmp_path, credentials="postgresql://u@h:5499/db")
    with pytest.raises(ConfigurationError, match=r"unknown setting\(s\) 'batchsize'.*batch_size"):
        loadbay.pipeline("p", pipelines_dir=tmp_path, batchsize=10)
    assert loadbay.pipeline("p", pipelines_dir=tmp_path, batch_size=10).settings.batch_size == 10
