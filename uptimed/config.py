"""Settings: one validated object built from CLI flags > environment > ``.env`` > TOML > defaults.

Environment names are the ones users already have in their ``.env`` files (``VALID_USERNAME``,
``DATABASE_URL``, ``RATE_LIMIT``, ...); uptimed's own additions carry the ``UPTIMED_`` prefix.
Only those names (``ENV_FIELDS``, the table in README.md) are read: pydantic-settings would also
read a field's own name (``PORT``, ``HOST``), which shells and orchestrators set for other
programs. In the TOML file every setting is written by its field name (see
``uptimed.toml.example``). Any problem is a ``ConfigError`` with one line naming the setting
(the flag, when a flag gave the value), with secrets redacted.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from uptimed.fields import DEFAULT_WARN_DAYS, SiteUrl, WarnDays
from uptimed.redact import is_secret_name, redact

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_DATABASE_URL = "sqlite:///./uptimed.db"
SQLITE_PREFIXES = ("sqlite+aiosqlite:///", "sqlite:///")
CONFIG_ENV = "UPTIMED_CONFIG"
# The file's tables that declare sites and webhooks, not settings (uptimed/declared.py).
DECLARATION_KEYS = frozenset({"sites", "webhooks"})


class ConfigError(Exception):
    """A setting is missing, malformed or unreadable; the message is one line for the user."""


def _env(name: str, default: Any, **constraints: Any) -> Any:
    """A setting read from the environment variable ``name`` (TOML and flags use the field name)."""
    return Field(default, validation_alias=AliasChoices(name), **constraints)


class Settings(BaseSettings):
    """Every knob of the daemon; ``uptimed.toml.example`` documents each with its default."""

    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        case_sensitive=False,
    )

    host: str = _env("UPTIMED_HOST", DEFAULT_HOST)
    port: int = _env("UPTIMED_PORT", DEFAULT_PORT, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = _env(
        "UPTIMED_LOG_LEVEL", "INFO"
    )
    # Basic auth; with neither set, user "admin" gets a random password logged once at start.
    valid_username: str | None = Field(None, min_length=1)
    valid_password: SecretStr | None = Field(None, min_length=1)
    database_url: str = DEFAULT_DATABASE_URL
    rate_limit: int = Field(120, ge=1, description="API requests per window per user")
    rate_window: float = Field(60, gt=0, description="seconds")
    auth_failure_limit: int = Field(10, ge=1, description="wrong logins per minute per client IP")
    optimisation: bool = Field(False, description="1: unchanged checks append no history row")
    default_timeout_seconds: float = Field(10, gt=0, le=300)
    redis_url: str | None = Field(None, description="accepted for old .env files; unused")
    docs_public: bool = _env(
        "UPTIMED_DOCS_PUBLIC",
        True,
        description="/openapi.json, /docs and /redoc without auth (they hold no data)",
    )
    max_concurrent_checks: int | None = _env(
        "UPTIMED_MAX_CONCURRENT_CHECKS",
        None,
        ge=1,
        description="checks in flight at once; default: what the open-file limit allows",
    )
    keep_alive: bool = _env(
        "UPTIMED_KEEP_ALIVE",
        False,
        description="reuse connections between checks (a site's keep_alive overrides it)",
    )
    check_retries: int = _env("UPTIMED_CHECK_RETRIES", 2, ge=0, le=10)
    startup_spread_seconds: float = _env("UPTIMED_STARTUP_SPREAD_SECONDS", 60, ge=0)
    shutdown_grace_seconds: float = _env("UPTIMED_SHUTDOWN_GRACE_SECONDS", 5, ge=0)
    # Checks that change no status are written in one transaction per this many seconds; a
    # SIGKILL can lose at most that much history (never a transition or a message).
    history_flush_seconds: float = _env("UPTIMED_HISTORY_FLUSH_SECONDS", 0.1, gt=0, le=60)
    # History retention (days): raw check rows, then minute / hour / day rollups. Incidents are
    # kept as long as day rollups. Maintenance (rollups, pruning) runs every N seconds.
    history_retention_days: float = _env("UPTIMED_HISTORY_RETENTION_DAYS", 30, gt=0)
    rollup_minute_retention_days: float = _env("UPTIMED_ROLLUP_MINUTE_RETENTION_DAYS", 2, gt=0)
    rollup_hour_retention_days: float = _env("UPTIMED_ROLLUP_HOUR_RETENTION_DAYS", 90, gt=0)
    rollup_day_retention_days: float = _env("UPTIMED_ROLLUP_DAY_RETENTION_DAYS", 1825, gt=0)
    maintenance_interval_seconds: float = _env("UPTIMED_MAINTENANCE_INTERVAL_SECONDS", 60, gt=0)
    # Discord delivery: per-POST timeout, how long to keep retrying a message that fails
    # transiently (5xx, timeouts, network) before marking it failed, and the backoff bounds.
    discord_timeout_seconds: float = _env("UPTIMED_DISCORD_TIMEOUT_SECONDS", 10, gt=0, le=120)
    discord_give_up_after_seconds: float = _env(
        "UPTIMED_DISCORD_GIVE_UP_AFTER_SECONDS", 86400, gt=0
    )
    discord_backoff_initial_seconds: float = _env(
        "UPTIMED_DISCORD_BACKOFF_INITIAL_SECONDS", 1, gt=0
    )
    discord_backoff_max_seconds: float = _env("UPTIMED_DISCORD_BACKOFF_MAX_SECONDS", 300, gt=0)
    # The API server's defences (uptimed/api/server.py): connections served at once (default a
    # quarter of the soft open-files limit, so checks keep their descriptors; more are answered
    # 503 and closed), and seconds a connection has to send its request headers (also the idle
    # keep-alive timeout).
    max_connections: int | None = _env("UPTIMED_MAX_CONNECTIONS", None, ge=1)
    header_timeout_seconds: float = _env("UPTIMED_HEADER_TIMEOUT_SECONDS", 5, gt=0, le=300)
    # Reverse proxies whose X-Forwarded-For is believed (IPs or CIDRs; comma-separated in the
    # environment): only then is the login-failure limit keyed by the forwarded client address.
    trusted_proxies: Annotated[list[IPvAnyNetwork], NoDecode] = _env("UPTIMED_TRUSTED_PROXIES", [])
    # What a new site takes when it does not say (its renotify_every_seconds and
    # tls_expiry_warn_days): a reminder period while DOWN (none: never), and the days left of
    # a certificate that each bring one warning (comma-separated in the environment).
    renotify_every_seconds: int | None = _env(
        "UPTIMED_RENOTIFY_EVERY_SECONDS", None, ge=60, le=30 * 86400
    )
    tls_expiry_warn_days: Annotated[WarnDays, NoDecode] = _env(
        "UPTIMED_TLS_EXPIRY_WARN_DAYS", list(DEFAULT_WARN_DAYS)
    )
    # Events to one webhook URL within this many seconds of its last message (or while one is
    # in flight or waiting) share the next message: a storm is a few messages, not hundreds.
    # 0: every event is a message of its own.
    alert_group_window_seconds: float = _env(
        "UPTIMED_ALERT_GROUP_WINDOW_SECONDS", 10, ge=0, le=3600
    )
    # Targets that tell whether the monitor itself is online (http(s):// or tcp://host:port;
    # comma-separated in the environment; empty: off). A failed check is set aside, not
    # recorded, while every one of them fails too.
    connectivity_check_urls: Annotated[list[SiteUrl], NoDecode] = _env(
        "UPTIMED_CONNECTIVITY_CHECK_URLS", [], max_length=10
    )
    # The public status page (GET /status, the sites marked public): its title and the text
    # under it. /metrics needs the API's login unless metrics_public is true.
    status_page_title: str = _env(
        "UPTIMED_STATUS_PAGE_TITLE", "Service status", min_length=1, max_length=200
    )
    status_page_description: str = _env("UPTIMED_STATUS_PAGE_DESCRIPTION", "", max_length=2000)
    metrics_public: bool = _env("UPTIMED_METRICS_PUBLIC", False)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "trusted_proxies", "tls_expiry_warn_days", "connectivity_check_urls", mode="before"
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """``UPTIMED_TRUSTED_PROXIES=127.0.0.1, 10.0.0.0/8``, ``UPTIMED_TLS_EXPIRY_WARN_DAYS=14,7``
        (empty: none): the environment gives one string."""
        if isinstance(value, str):
            return [item for item in value.replace(",", " ").split() if item]
        return value

    @field_validator("database_url")
    @classmethod
    def _sqlite_only(cls, value: str) -> str:
        database_path(value)
        return value

    @property
    def db_path(self) -> Path:
        return database_path(self.database_url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            DocumentedNames(settings_cls, env_settings, environment=True),
            DocumentedNames(settings_cls, dotenv_settings, environment=False),
            TomlConfigSettingsSource(settings_cls),
        )


def env_name(field: str) -> str:
    """The environment name of a setting, the one a user would grep for (README's table)."""
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[0])
    return field.upper()


# Every environment name uptimed reads, with its field; UPTIMED_CONFIG is read by load().
ENV_FIELDS: dict[str, str] = {env_name(field): field for field in Settings.model_fields}


def is_service_address(value: str | None) -> bool:
    """``tcp://10.0.0.11:8000``: what Kubernetes sets as ``UPTIMED_PORT`` for a Service named
    ``uptimed`` (docker links did the same). It is where the Service is, not a port to listen on."""
    return value is not None and value.strip().lower().startswith("tcp://")


class DocumentedNames(PydanticBaseSettingsSource):
    """The values of one pydantic-settings environment source (the process environment or
    ``.env``), read by the documented names only. pydantic-settings parses; this picks."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        source: PydanticBaseSettingsSource,
        *,
        environment: bool,
    ) -> None:
        super().__init__(settings_cls)
        assert isinstance(source, EnvSettingsSource)  # DotEnvSettingsSource is one too
        self._vars: Mapping[str, str | None] = source.env_vars  # keys lower-cased
        self._environment = environment

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._vars.get(env_name(field_name).lower()), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in ENV_FIELDS.items():
            value = self._vars.get(name.lower())
            if value is None:
                continue
            if self._environment and name == "UPTIMED_PORT" and is_service_address(value):
                continue  # Kubernetes' Service address: see is_service_address, load()
            # Keyed as pydantic-settings keys them (the alias if any), so sources merge.
            values[name if Settings.model_fields[field].validation_alias else field] = value
        return values


def database_path(url: str) -> Path:
    """``sqlite:///rel/path`` is relative to the working directory, ``sqlite:////abs`` absolute."""
    for prefix in SQLITE_PREFIXES:
        if url.startswith(prefix):
            rest = url.removeprefix(prefix).split("?", 1)[0]
            if not rest or rest == ":memory:":
                raise ValueError("needs a file path, e.g. sqlite:///./uptimed.db")
            return Path(rest)
    raise ValueError(
        "only SQLite is supported: use sqlite:///relative/path or sqlite:////absolute/path"
    )


def read_toml(path: Path) -> dict[str, Any]:
    """The config file as parsed TOML; ``ConfigError`` (one line) if unreadable or not TOML.
    Its settings are read here, its sites and webhooks by ``uptimed.declared``."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot read it ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path}: not valid TOML ({e})") from None


def _read_toml(path: Path) -> dict[str, Any]:
    data = read_toml(path)
    known = set(Settings.model_fields) | DECLARATION_KEYS
    for key in data:
        if key not in known:
            raise ConfigError(f"config file {path}: unknown setting {key!r}")
    return data


@dataclass(frozen=True)
class Loaded:
    """Settings and how they were made: ``sources`` lowest first (the TOML path, ``.env``,
    ``environment``, ``flags``: those that gave at least one value) and ``notices``, WARNING
    lines for the caller to log once logging is set up."""

    settings: Settings
    sources: tuple[str, ...]
    notices: tuple[str, ...]


def load_settings(overrides: dict[str, Any] | None = None, config: Path | None = None) -> Settings:
    """Build Settings; ``overrides`` are CLI flags (field names), ``config`` the TOML path."""
    return load(overrides, config).settings


def load(overrides: dict[str, Any] | None = None, config: Path | None = None) -> Loaded:
    """``load_settings``, with the sources used and the notices to log."""
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    path = config or (Path(p) if (p := os.environ.get(CONFIG_ENV)) else None)
    cls: type[Settings] = Settings
    if path is not None:
        _read_toml(path)
        cls = type(
            "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}
        )
    try:
        settings = cls(**flags)
    except ValidationError as e:
        raise ConfigError(_first_error(e, flags)) from None
    sources = [str(path)] if path is not None else []
    if DocumentedNames(Settings, DotEnvSettingsSource(Settings), environment=False)():
        sources.append(".env")
    if DocumentedNames(Settings, EnvSettingsSource(Settings), environment=True)():
        sources.append("environment")
    if flags:
        sources.append("flags")
    notices = []
    if is_service_address(port := os.environ.get("UPTIMED_PORT")):
        notices.append(
            f"UPTIMED_PORT={port} ignored: Kubernetes sets it for a Service named uptimed (the"
            f" Service's address, not a port to listen on); listening on port {settings.port}"
        )
    return Loaded(settings, tuple(sources), tuple(notices))


def _first_error(e: ValidationError, flags: Mapping[str, Any]) -> str:
    """One line: the setting by the name the user gave it (``--port`` for a flag, else the
    environment name), pydantic's reason, and the value unless it is a secret (redacted)."""
    err = e.errors()[0]
    loc = str(err["loc"][0]) if err["loc"] else ""
    field = ENV_FIELDS.get(loc, loc)
    if field in flags:
        where = "--" + field.replace("_", "-")
    else:
        where = env_name(field) if field else "config"
    msg = str(err["msg"]).removeprefix("Value error, ")
    got = err.get("input")
    secret = is_secret_name(where) or isinstance(got, (dict, SecretStr))
    shown = "" if secret else f" (got {got!r})"
    return redact(f"{where}: {msg}{shown}")
