"""Sites and webhooks declared in the config file (``[[sites]]``, ``[webhooks.NAME]``): what the
file says, read and validated whole before anything is changed. Making the database match it
is ``Sites.reload``; this module only reads.

A file with any error is refused whole (``DeclarationError``, one line naming the file, the
site's key or webhook's name, and the field), so a typo never deletes a site.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from pydantic import TypeAdapter, ValidationError

from uptimed.config import ConfigError, read_toml
from uptimed.fields import HttpUrl
from uptimed.models import SiteIn

# A site's key: a stable name for it in the file (and in logs, 409s and exports).
KEY_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
# A [webhooks.NAME] name: what a TOML bare key may be.
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,100}")
VARIABLE_RE = re.compile(r"\$\{([^}]*)\}")
_SITE_FIELDS = frozenset(SiteIn.model_fields)
_WEBHOOK_FIELDS = frozenset({"url", "all_sites"})
_URL = TypeAdapter(HttpUrl)


class DeclarationError(Exception):
    """The file's sites or webhooks are not valid; the message is one line for the user."""


class ReadOnly(Exception):
    """A change through the API to a site or webhook that the config file declares: the file
    is its truth, so the API answers 409 and names where to change it."""

    def __init__(self, what: str, key: str | None, path: Path | None) -> None:
        where = f"the config file {path}" if path is not None else "the config file"
        name = f" {key!r}" if key else ""
        super().__init__(
            f"{what}{name} is declared in {where}: change it there, then reload"
            " (SIGHUP or POST /config/reload)"
        )


@dataclass(frozen=True)
class DeclaredWebhook:
    """A webhook URL, and the ``[webhooks.NAME]`` table it was written in (None: written as a
    URL in the site's own ``webhooks`` list)."""

    url: str
    name: str | None = None


@dataclass(frozen=True)
class DeclaredSite:
    """One ``[[sites]]`` table: its key, its settings as POST would take them (fields the file
    leaves out are unset, so a setting's default applies), and its webhooks, once per URL."""

    key: str
    site: SiteIn
    webhooks: tuple[DeclaredWebhook, ...] = ()


@dataclass(frozen=True)
class Declaration:
    """What one config file declares: its sites in file order, and the webhooks that hear
    every site (``all_sites = true``)."""

    path: Path
    sites: tuple[DeclaredSite, ...] = ()
    every_site: tuple[DeclaredWebhook, ...] = ()


def environment() -> dict[str, str]:
    """What ``${NAME}`` reads: the process environment over ``.env`` (as settings are read)."""
    return {
        **{k: v for k, v in dotenv_values(".env").items() if v is not None},
        **os.environ,
    }


def read_declaration(path: Path, environ: Mapping[str, str] | None = None) -> Declaration:
    """The sites and webhooks the TOML file at ``path`` declares (none: an empty declaration,
    which removes every declared site). ``environ`` fills ``${NAME}`` (default: the process
    environment over ``.env``)."""
    try:
        data = read_toml(path)
    except ConfigError as e:
        raise DeclarationError(str(e)) from None
    return parse_declaration(data, path, environ)


def parse_declaration(
    data: Mapping[str, Any], path: Path, environ: Mapping[str, str] | None = None
) -> Declaration:
    """The declaration in a parsed TOML document (its other keys are settings: ignored here)."""
    env = environment() if environ is None else environ
    fail = _Failure(path)
    named = _webhooks(data.get("webhooks", {}), env, fail)
    sites_data = data.get("sites", [])
    if not isinstance(sites_data, list) or not all(isinstance(t, dict) for t in sites_data):
        raise fail("'sites' must be [[sites]] tables")
    sites: list[DeclaredSite] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(sites_data, 1):
        site = _site(table, index, named, env, fail)
        if site.key in seen:
            first = seen[site.key]
            raise fail(f"[[sites]] #{index}: key {site.key!r} is also [[sites]] #{first}'s key")
        seen[site.key] = index
        sites.append(site)
    every = tuple(hook for hook, all_sites in named.values() if all_sites)
    return Declaration(path=path, sites=tuple(sites), every_site=every)


class _Failure:
    """Makes the one-line errors, all starting with the file's path."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, message: str) -> DeclarationError:
        return DeclarationError(f"config file {self.path}: {message}")


def _webhooks(
    tables: Any, env: Mapping[str, str], fail: _Failure
) -> dict[str, tuple[DeclaredWebhook, bool]]:
    """``[webhooks.NAME]`` tables: name -> (webhook, hears every site)."""
    if not isinstance(tables, dict):
        raise fail("'webhooks' must be [webhooks.NAME] tables")
    named: dict[str, tuple[DeclaredWebhook, bool]] = {}
    for name, table in tables.items():
        where = f"[webhooks.{name}]"
        if not NAME_RE.fullmatch(name):
            raise fail(f"{where}: a webhook name may hold only letters, digits, '-' and '_'")
        if not isinstance(table, dict):
            raise fail(f'{where}: must be a table with url = "https://discord.com/api/..."')
        if unknown := sorted(set(table) - _WEBHOOK_FIELDS):
            raise fail(f"{where}: unknown field {unknown[0]!r} (a webhook has url and all_sites)")
        if "url" not in table:
            raise fail(f"{where}: url is required")
        all_sites = table.get("all_sites", False)
        if not isinstance(all_sites, bool):
            raise fail(f"{where}: all_sites must be true or false")
        url = _url(_substitute(table["url"], env, f"{where}: url", fail), f"{where}: url", fail)
        named[name] = (DeclaredWebhook(url=url, name=name), all_sites)
    return named


def _site(
    table: dict[str, Any],
    index: int,
    named: Mapping[str, tuple[DeclaredWebhook, bool]],
    env: Mapping[str, str],
    fail: _Failure,
) -> DeclaredSite:
    key = table.get("key")
    if key is None:
        raise fail(f"[[sites]] #{index}: key is required (a stable name: a-z, 0-9 and '-')")
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise fail(
            f"[[sites]] #{index}: key {key!r} may hold only a-z, 0-9 and '-' (at most 100,"
            " not starting with '-')"
        )
    where = f"site {key!r}"
    values: dict[str, Any] = {}
    for field, value in table.items():
        if field in ("key", "webhooks"):
            continue
        if field not in _SITE_FIELDS:
            raise fail(f"{where}: unknown field {field!r}")
        values[field] = _substitute(value, env, f"{where}: {field}", fail)
    values.setdefault("name", key)
    try:
        site = SiteIn.model_validate(values)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        field = ".".join(str(part) for part in err["loc"]) or "site"
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise fail(f"{where}: {field}: {msg}") from None
    hooks = table.get("webhooks", [])
    if not isinstance(hooks, list):
        raise fail(f"{where}: webhooks must be a list of URLs or [webhooks.NAME] names")
    webhooks: dict[str, DeclaredWebhook] = {}
    for item in hooks:
        if not isinstance(item, str):
            raise fail(f"{where}: webhooks must be a list of URLs or [webhooks.NAME] names")
        if item in named:
            hook = named[item][0]
        elif "://" in item or "${" in item:
            text = _substitute(item, env, f"{where}: webhooks", fail)
            hook = DeclaredWebhook(url=_url(text, f"{where}: webhooks", fail))
        else:
            raise fail(f"{where}: webhooks: no [webhooks.{item}] table in the file")
        webhooks.setdefault(hook.url, hook)
    return DeclaredSite(key=key, site=site, webhooks=tuple(webhooks.values()))


def _substitute(value: Any, env: Mapping[str, str], where: str, fail: _Failure) -> Any:
    """``${NAME}`` in every string, nested ones too, from ``env``; TOML's own dates become
    ISO 8601 text, as the API takes them."""
    if isinstance(value, str):

        def variable(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise fail(f"{where}: environment variable {name} is not set (${{{name}}})")
            return env[name]

        return VARIABLE_RE.sub(variable, value)
    if isinstance(value, list):
        return [_substitute(item, env, where, fail) for item in value]
    if isinstance(value, dict):
        return {k: _substitute(v, env, f"{where}.{k}", fail) for k, v in value.items()}
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return value


def _url(value: Any, where: str, fail: _Failure) -> str:
    try:
        return str(_URL.validate_python(value))
    except ValidationError as e:
        msg = str(e.errors(include_url=False)[0]["msg"]).removeprefix("Value error, ")
        raise fail(f"{where}: {msg}") from None
