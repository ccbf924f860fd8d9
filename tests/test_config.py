"""Settings precedence (CLI > env > .env > TOML > defaults) and one-line errors."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from tests.conftest import AppClient
from uptimed.config import ENV_FIELDS, ConfigError, Settings, database_path, load, load_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_env_names() -> list[str]:
    """The environment names in README's Configuration table: the documented ones."""
    return re.findall(r"^\| `([A-Z_]+)` \|", README.read_text(), re.MULTILINE)


ENV_NAMES = [
    *ENV_FIELDS, "UPTIMED_CONFIG", "PORT", "HOST", "LOG_LEVEL", "DATABASE", "KEEP_ALIVE"
]  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    s = load_settings()
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.database_url == "sqlite:///./uptimed.db"
    assert (s.rate_limit, s.rate_window, s.auth_failure_limit) == (120, 60, 10)
    assert (s.optimisation, s.default_timeout_seconds) == (False, 10)
    assert s.valid_username is None and s.valid_password is None


def test_precedence_cli_env_dotenv_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "uptimed.toml"
    toml.write_text(
        'host = "10.0.0.1"\nport = 1001\nrate_limit = 1\nrate_window = 1\noptimisation = true\n'
    )
    (tmp_path / ".env").write_text(
        "UPTIMED_PORT=2002\nRATE_LIMIT=2\nRATE_WINDOW=2\nOTHER_APP_SETTING=x\n"
    )
    monkeypatch.setenv("UPTIMED_PORT", "3003")
    monkeypatch.setenv("RATE_LIMIT", "3")

    s = load_settings({"port": 4004}, toml)
    assert s.port == 4004  # CLI beats everything
    assert s.rate_limit == 3  # environment beats .env
    assert s.rate_window == 2  # .env beats TOML
    assert s.host == "10.0.0.1" and s.optimisation is True  # TOML beats defaults

    monkeypatch.setenv("UPTIMED_CONFIG", str(toml))
    assert load_settings().port == 3003


def test_database_urls() -> None:
    assert database_path("sqlite:///relative/u.db") == Path("relative/u.db")
    assert database_path("sqlite:////var/lib/uptimed/u.db") == Path("/var/lib/uptimed/u.db")
    assert database_path("sqlite+aiosqlite:///./u.db") == Path("u.db")
    for bad in ("postgresql://x/y", "sqlite://", "sqlite:///", "sqlite:///:memory:", "u.db"):
        with pytest.raises(ValueError):
            database_path(bad)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"RATE_LIMIT": "0"}, "RATE_LIMIT"),
        ({"RATE_WINDOW": "-1"}, "RATE_WINDOW"),
        ({"OPTIMISATION": "2"}, "OPTIMISATION"),
        ({"DEFAULT_TIMEOUT_SECONDS": "soon"}, "DEFAULT_TIMEOUT_SECONDS"),
        ({"AUTH_FAILURE_LIMIT": "x"}, "AUTH_FAILURE_LIMIT"),
        ({"UPTIMED_PORT": "http"}, "UPTIMED_PORT"),
        ({"VALID_PASSWORD": ""}, "VALID_PASSWORD"),
    ],
)
def test_bad_values_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict, named: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert str(e.value).startswith(named + ":")
    assert "\n" not in str(e.value)


def test_password_is_never_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALID_PASSWORD", "")
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "got" not in str(e.value)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [("port = [", "not valid TOML"), ("prot = 1", "unknown setting 'prot'"), (None, "cannot read")],
)
def test_bad_config_files(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "c.toml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(config=path)


def test_example_config_is_complete_and_loads() -> None:
    example = Path(__file__).resolve().parents[1] / "uptimed.toml.example"
    s = load_settings(config=example)
    text = example.read_text()
    for name in Settings.model_fields:
        assert f"{name} =" in text or f"# {name} =" in text, name
    assert s.port == 8000


async def test_redis_url_is_accepted_and_ignored(
    start_app: AppClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="uptimed.app"):
        client = await start_app(
            settings.model_copy(update={"redis_url": "redis://localhost:6379/0"})
        )
    assert (await client.get("/healthz")).status == 200
    assert [
        r for r in caplog.records if "REDIS_URL" in r.getMessage() and "no broker" in r.getMessage()
    ]


def test_readme_documents_exactly_the_names_read() -> None:
    assert sorted(readme_env_names()) == sorted([*ENV_FIELDS, "UPTIMED_CONFIG"])


def test_field_names_in_the_environment_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """pydantic-settings reads ``PORT`` for the field ``port``; shells export ``HOST``."""
    for name, value in {"PORT": "8017", "HOST": "0.0.0.0", "KEEP_ALIVE": "1"}.items():
        monkeypatch.setenv(name, value)
    (Path(".env")).write_text("LOG_LEVEL=DEBUG\nMAX_CONCURRENT_CHECKS=3\n")
    s = load_settings()
    assert (s.port, s.host, s.keep_alive) == (8000, "127.0.0.1", False)
    assert (s.log_level, s.max_concurrent_checks) == ("INFO", None)
    monkeypatch.setenv("UPTIMED_KEEP_ALIVE", "1")
    (Path(".env")).write_text("UPTIMED_LOG_LEVEL=DEBUG\nrate_limit=7\n")
    s = load_settings()
    assert (s.keep_alive, s.log_level, s.rate_limit) == (True, "DEBUG", 7)


def test_kubernetes_service_address_is_ignored_with_a_notice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPTIMED_PORT", "tcp://10.0.0.11:8000")
    loaded = load()
    assert loaded.settings.port == 8000
    (notice,) = loaded.notices
    assert notice.startswith("UPTIMED_PORT=tcp://10.0.0.11:8000 ignored: Kubernetes")
    monkeypatch.setenv("UPTIMED_PORT", "8017")
    assert load().notices == () and load().settings.port == 8017


def test_sources_name_what_gave_a_value(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load().sources == ()
    toml = tmp_path / "u.toml"
    toml.write_text("rate_limit = 5\n")
    Path(".env").write_text("OTHER_APP=1\n")  # no name of ours: not a source
    assert load(config=toml).sources == (str(toml),)
    Path(".env").write_text("RATE_LIMIT=6\n")
    monkeypatch.setenv("RATE_WINDOW", "7")
    assert load({"port": 1}, toml).sources == (str(toml), ".env", "environment", "flags")


@pytest.mark.parametrize(
    ("env", "secret", "shown"),
    [
        ({"DATABASE_URL": "postgresql://u:pw-1@host/db"}, "pw-1", "postgresql://***@host/db"),
        ({"DATABASE_URL": "mysql://admin@db/x"}, "admin", "mysql://***@db/x"),
        ({"VALID_PASSWORD": ""}, None, "VALID_PASSWORD: "),
    ],
)
def test_config_errors_redact_secrets(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], secret: str | None, shown: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert shown in str(e.value)
    assert secret is None or secret not in str(e.value)


def test_a_flag_error_names_the_flag() -> None:
    with pytest.raises(ConfigError, match=r"^--port: .*\(got 'abc'\)$"):
        load_settings({"port": "abc"})


def test_certificate_warning_days_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("UPTIMED_TLS_EXPIRY_WARN_DAYS", "7, 30,1,7")
    monkeypatch.setenv("UPTIMED_RENOTIFY_EVERY_SECONDS", "3600")
    got = load_settings()
    assert (got.tls_expiry_warn_days, got.renotify_every_seconds) == ([30, 7, 1], 3600)
    monkeypatch.setenv("UPTIMED_TLS_EXPIRY_WARN_DAYS", "")
    assert load_settings().tls_expiry_warn_days == []
    monkeypatch.setenv("UPTIMED_TLS_EXPIRY_WARN_DAYS", "soon")
    with pytest.raises(ConfigError, match=r"^UPTIMED_TLS_EXPIRY_WARN_DAYS: "):
        load_settings()
    monkeypatch.setenv("UPTIMED_TLS_EXPIRY_WARN_DAYS", "7")
    monkeypatch.setenv("UPTIMED_RENOTIFY_EVERY_SECONDS", "30")
    with pytest.raises(ConfigError, match=r"^UPTIMED_RENOTIFY_EVERY_SECONDS: .* 60"):
        load_settings()
