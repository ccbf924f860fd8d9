"""``uptimed export`` and ``uptimed import``: every site and webhook as a TOML document that the
config file's format reads (``[[sites]]``, ``[webhooks.NAME]``: uptimed/declared.py), and such a
document sent to a running daemon as one ``POST /sites/bulk``.

Export reads the database the settings name, while the daemon runs or not (WAL: it reads a
consistent snapshot and writes nothing). Import goes through the API, so its sites meet the
API's rules and become API sites (editable; their keys are dropped), all or none of them.

Exit codes: 0 done; 1 the daemon refused the sites or could not be reached; 2 the command
line, the settings or the file are wrong (one line on stderr, as a failed start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import tomli_w

from uptimed import redact
from uptimed.config import ConfigError, Settings, load
from uptimed.db import Store
from uptimed.db.files import DatabaseUnavailable
from uptimed.declared import KEY_RE, DeclarationError, read_declaration
from uptimed.models import Site, SiteIn, SiteView, Webhook

COMMANDS = ("export", "import")
EXIT_REFUSED = 1
EXIT_USAGE = 2
IMPORT_TIMEOUT_SECONDS = 120.0
# Fields whose default, when a site is created without them, is a setting (Sites.add).
SETTING_DEFAULTS = ("renotify_every_seconds", "tls_expiry_warn_days")


class TransferError(Exception):
    """The command cannot go on; ``str(e)`` is the line to print, ``code`` the exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str]) -> int:
    """``argv`` starts with the command's name (``export`` or ``import``)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "export":
            sys.stdout.write(export_text(_settings(args.config)))
            return 0
        print(import_file(args.file, args), file=sys.stdout)
        return 0
    except TransferError as e:
        print(f"uptimed {args.command}: {redact.redact(str(e))}", file=sys.stderr)
        return e.code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uptimed", description="Sites and webhooks as TOML.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export",
        help="print every site and webhook as TOML (the config file's [[sites]] format)",
        description="Print every site and webhook of the database the settings name, made "
        "through the API or declared, as TOML that --config and 'uptimed import' read.",
    )
    export.add_argument("--config", type=Path, help="TOML config file (or UPTIMED_CONFIG)")
    imp = commands.add_parser(
        "import",
        help="add a file's sites and webhooks to the running daemon, all or none",
        description="Send the [[sites]] and [webhooks.NAME] of FILE to the running daemon as "
        "one POST /sites/bulk: they become API sites (editable; keys are dropped), all of "
        "them or, if any is refused, none.",
    )
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--api", help="the daemon's URL (default http://HOST:PORT of the settings)")
    imp.add_argument("--user", help="API user (default VALID_USERNAME, else admin)")
    imp.add_argument("--password", help="API password (default VALID_PASSWORD)")
    imp.add_argument(
        "--config", type=Path, help="TOML config file for the defaults (or UPTIMED_CONFIG)"
    )
    return parser


def _settings(config: Path | None) -> Settings:
    try:
        return load(None, config).settings
    except ConfigError as e:
        raise TransferError(f"config error: {e}") from None


# --- export -------------------------------------------------------------------------------


def export_text(settings: Settings) -> str:
    """The TOML document of every site and webhook in the database ``settings`` names."""
    path = settings.db_path
    if not path.is_file():
        raise TransferError(f"no database at {path} (DATABASE_URL or --config names another?)")
    try:
        sites, webhooks = asyncio.run(_read(path))
    except DatabaseUnavailable as e:
        raise TransferError(str(e)) from None
    document = Document.of(sites, webhooks, settings)
    for warning in document.warnings:
        print(f"uptimed export: {warning}", file=sys.stderr)
    every = sum(1 for w in webhooks if w.site_id is None)
    head = (
        f"# uptimed export: {len(sites)} sites, {len(webhooks) - every} webhooks of sites and"
        f" {every} of every site.\n# Read by --config (as declared sites) or by"
        " 'uptimed import' (as API sites).\n\n"
    )
    return head + tomli_w.dumps(document.toml)


async def _read(path: Path) -> tuple[list[SiteView], list[Webhook]]:
    store = await Store.open(path)
    try:
        return await store.list_site_views(now=0), await store.list_webhooks()
    finally:
        await store.close()


@dataclass
class Document:
    """The TOML tables of an export and what it could not say (``warnings``)."""

    toml: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def of(
        cls, sites: Sequence[SiteView], webhooks: Sequence[Webhook], settings: Settings
    ) -> Document:
        """``[webhooks.NAME]`` for each URL of every site's webhooks (``all_sites = true``)
        and each URL that several sites share; each site's ``webhooks`` names those tables, or
        gives the URL itself. A URL that every site hears and a site hears too is written as
        the URL in that site's list, so its own webhook comes back as its own."""
        doc = cls()
        every = list(dict.fromkeys(w.discord_webhook_url for w in webhooks if w.site_id is None))
        own: dict[int, list[str]] = {}
        for w in webhooks:
            if w.site_id is not None:
                urls = own.setdefault(w.site_id, [])
                if w.discord_webhook_url not in urls:
                    urls.append(w.discord_webhook_url)
        users = Counter(url for urls in own.values() for url in urls)
        shared = [url for url, count in users.items() if count > 1 and url not in every]
        keys = {w.discord_webhook_url: w.key for w in webhooks if w.key}
        names = _Names()
        tables: dict[str, dict[str, Any]] = {}
        for url in every:
            tables[names.take(keys.get(url), "all-sites")] = {"url": url, "all_sites": True}
        table_of: dict[str, str] = {}
        for url in shared:
            name = names.take(keys.get(url), "shared")
            tables[name] = {"url": url}
            table_of[url] = name
        if tables:
            doc.toml["webhooks"] = tables
        defaults = _defaults(settings)
        site_keys = _site_keys(sites)
        site_tables = []
        for site in sites:
            key = site_keys[site.id]
            table = {"key": key, **doc._fields(site, key, defaults)}
            hooks = [table_of.get(url, url) for url in own.get(site.id, [])]
            if hooks:
                table["webhooks"] = hooks
            site_tables.append(table)
        if site_tables:
            doc.toml["sites"] = site_tables
        return doc

    def _fields(self, site: Site, key: str, defaults: dict[str, Any]) -> dict[str, Any]:
        """The site's writable fields that differ from their defaults, url and name always."""
        values = site.model_dump(mode="json", include=set(SiteIn.model_fields))
        out: dict[str, Any] = {"url": values.pop("url"), "name": values.pop("name")}
        for name, value in values.items():
            if value == defaults[name]:
                continue
            if value is None:  # the default is a setting's value: null is no TOML value
                self.warnings.append(
                    f"site {key!r}: {name} is null, which TOML cannot say; an import gives it"
                    " the importing daemon's setting"
                )
                continue
            if _holds_null(value):
                self.warnings.append(
                    f"site {key!r}: {name} holds a null, which TOML cannot say; left out"
                )
                continue
            out[name] = value
        for name, value in out.items():
            if "${" in json.dumps(value):
                self.warnings.append(
                    f"site {key!r}: {name} holds '${{', which a reader of the file takes for"
                    " an environment variable"
                )
        return out


def _defaults(settings: Settings) -> dict[str, Any]:
    """What a site created without a field gets: SiteIn's default, or the setting's."""
    defaults = {
        name: info.get_default(call_default_factory=True)
        for name, info in SiteIn.model_fields.items()
        if not info.is_required()
    }
    for name in SETTING_DEFAULTS:
        defaults[name] = getattr(settings, name)
    return defaults


def _holds_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return any(_holds_null(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_null(v) for v in value.values())
    return False


class _Names:
    """Unique ``[webhooks.NAME]`` names: a declared webhook's own, else ``base``, ``base-2``..."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def take(self, wanted: str | None, base: str) -> str:
        name = wanted or base
        number = 1
        while (candidate := name if number == 1 else f"{name}-{number}") in self._taken:
            number += 1
        self._taken.add(candidate)
        return candidate


def _site_keys(sites: Iterable[SiteView]) -> dict[int, str]:
    """Each site's key: a declared site's own; for an API site, its name as a slug, made
    unique (``shop``, ``shop-2``)."""
    sites = list(sites)
    taken = {site.key for site in sites if site.key}
    keys: dict[int, str] = {}
    for site in sites:
        if site.key:
            keys[site.id] = site.key
            continue
        base = slug(site.name)
        key, number = base, 1
        while key in taken:
            number += 1
            suffix = f"-{number}"
            key = base[: 100 - len(suffix)] + suffix
        taken.add(key)
        keys[site.id] = key
    return keys


def slug(name: str) -> str:
    """A key from a name: lower case, runs of anything but a-z and 0-9 as one '-' (at most
    100 characters, as declared.KEY_RE allows)."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:100].strip("-")
    return text if KEY_RE.fullmatch(text) else "site"


# --- import -------------------------------------------------------------------------------


def import_file(path: Path, args: argparse.Namespace) -> str:
    """Send the file's sites and webhooks as one ``POST /sites/bulk``; the summary line."""
    try:
        declaration = read_declaration(path)
    except DeclarationError as e:
        raise TransferError(str(e)) from None
    settings = _settings(args.config)
    api = (args.api or f"http://{settings.host}:{settings.port}").rstrip("/")
    user = args.user or settings.valid_username or "admin"
    password = args.password
    if password is None and settings.valid_password is not None:
        password = settings.valid_password.get_secret_value()
    if password is None:
        raise TransferError(
            "no password: VALID_PASSWORD is not configured, so pass the daemon's with --password"
        )
    body = {
        "sites": [
            {**d.site.model_dump(mode="json", exclude_unset=True), "webhooks": _urls(d.webhooks)}
            for d in declaration.sites
        ],
        "webhooks": [w.url for w in declaration.every_site],
    }
    status, answer = asyncio.run(
        _post(f"{api}/sites/bulk", body, aiohttp.BasicAuth(user, password))
    )
    if status == 200:
        hooks = sum(len(site["webhooks"]) for site in body["sites"])
        return (
            f"imported {len(answer)} sites ({hooks} webhooks of sites) and"
            f" {len(body['webhooks'])} webhooks of every site from {path} into {api}"
        )
    detail = answer.get("detail") if isinstance(answer, dict) else None
    if status == 401:
        detail = "wrong user or password (--user, --password)"
    raise TransferError(
        f"{api} refused the file, nothing was imported: {status} {detail or answer}",
        EXIT_REFUSED,
    )


def _urls(webhooks: Iterable[Any]) -> list[str]:
    return [w.url for w in webhooks]


async def _post(url: str, body: Any, auth: aiohttp.BasicAuth) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=IMPORT_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, json=body, auth=auth) as resp,
        ):
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, (await resp.text())[:200]
    except (aiohttp.ClientError, TimeoutError) as e:
        raise TransferError(
            f"cannot reach the daemon at {url}: {e or type(e).__name__}", EXIT_REFUSED
        ) from None
