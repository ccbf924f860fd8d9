"""Sites and webhooks declared in the config file (``[[sites]]``, ``[webhooks.NAME]``): what the
file says, read and validated whole before anything is changed. Making the database match it
is ``Sites.reload``; this module only reads.

A file with any error is refused whole (``DeclarationError``, one line naming the file, the
site's key or webhook's name, and the field), so a typo never deletes a site.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from uptimed.models import SiteIn


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
