"""The config file's declared sites and webhooks, as read (uptimed/declared.py): what a valid
file gives, and the one line each kind of mistake gets. Applying them is tested in
test_sites_as_code.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from uptimed.config import load_settings
from uptimed.declared import (
    DeclarationError,
    DeclaredWebhook,
    read_declaration,
)

TEAM = "https://discord.com/api/webhooks/1/team-token"
OPS = "https://discord.com/api/webhooks/2/ops-token"
EXAMPLE = Path(__file__).resolve().parents[1] / "uptimed.toml.example"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "uptimed.toml"
    path.write_text(text)
    return path


def test_sites_and_webhooks_are_read_with_settings_beside_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
port = 8123
[webhooks.team]
url = "{TEAM}"
all_sites = true
[webhooks.ops]
url = "{OPS}"

[[sites]]
key = "shop"
name = "Shop"
url = "https://shop.example.com/health"
check_interval_seconds = 30
headers = {{ X-Check = "1" }}
alerts_muted_until = 2026-12-06T10:00:00Z
webhooks = ["ops", "https://discord.com/api/webhooks/3/own", "ops"]

[[sites]]
key = "db-1"
url = "tcp://db.example.com:5432"
""",
    )
    declaration = read_declaration(path, environ={})
    assert [s.key for s in declaration.sites] == ["shop", "db-1"]
    shop, db = declaration.sites
    assert shop.site.check_interval_seconds == 30
    assert shop.site.headers == {"X-Check": "1"}
    assert shop.site.alerts_muted_until == 1796551200000  # TOML's own datetime, as ISO 8601
    # A name and a URL each count once; the order is the file's.
    assert shop.webhooks == (
        DeclaredWebhook(url=OPS, name="ops"),
        DeclaredWebhook(url="https://discord.com/api/webhooks/3/own"),
    )
    # Fields the file leaves out are unset, so the settings' defaults apply to them.
    assert shop.site.model_fields_set == {
        "name",
        "url",
        "check_interval_seconds",
        "headers",
        "alerts_muted_until",
    }
    assert db.site.name == "db-1"  # the key, when no name is given
    assert db.webhooks == ()
    assert declaration.every_site == (DeclaredWebhook(url=TEAM, name="team"),)
    assert load_settings(config=path).port == 8123  # the settings read the same file


def test_variables_fill_any_string_from_the_environment_then_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        """
[webhooks.team]
url = "https://discord.com/api/webhooks/1/${TEAM_TOKEN}"
[[sites]]
key = "api"
url = "https://${API_HOST}/status"
headers = { Authorization = "Bearer ${API_TOKEN}" }
webhooks = ["team", "https://discord.com/api/webhooks/9/${OWN_TOKEN}"]
""",
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("API_TOKEN=from-dotenv\nAPI_HOST=dotenv.example.com\n")
    monkeypatch.setenv("TEAM_TOKEN", "t0k")
    monkeypatch.setenv("OWN_TOKEN", "own")
    monkeypatch.setenv("API_HOST", "api.example.com")  # the environment wins over .env
    (site,) = read_declaration(path).sites
    assert site.site.url == "https://api.example.com/status"
    assert site.site.headers == {"Authorization": "Bearer from-dotenv"}
    assert [w.url for w in site.webhooks] == [
        "https://discord.com/api/webhooks/1/t0k",
        "https://discord.com/api/webhooks/9/own",
    ]


def test_a_file_without_sites_declares_none(tmp_path: Path) -> None:
    declaration = read_declaration(write(tmp_path, "port = 8000\n"), environ={})
    assert declaration.sites == () and declaration.every_site == ()


SITE = 'key = "shop"\nurl = "https://shop.example.com"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[sites]]\nkey = \n", r"not valid TOML \(.*line 2"),
        (f"[[sites]]\n{SITE}[[sites]]\n{SITE}", r"\[\[sites\]\] #2: key 'shop' is also"),
        ('[[sites]]\nurl = "https://a.example"\n', r"\[\[sites\]\] #1: key is required"),
        (f'[[sites]]\nkey = "Shop!"\nurl = "{TEAM}"\n', r"key 'Shop!' may hold only a-z"),
        (f"[[sites]]\n{SITE}check_interval_seconds = 0\n", r"site 'shop': check_interval_sec"),
        (f"[[sites]]\n{SITE}intervall = 30\n", r"site 'shop': unknown field 'intervall'"),
        (f'[[sites]]\n{SITE}webhooks = ["tema"]\n', r"site 'shop': webhooks: no \[webhooks.tema\]"),
        (f'[[sites]]\n{SITE}webhooks = ["ftp://x"]\n', r"site 'shop': webhooks: "),
        (f'[[sites]]\n{SITE}webhooks = "{TEAM}"\n', r"site 'shop': webhooks must be a list"),
        (
            f'[[sites]]\n{SITE}headers = {{ A = "${{NOPE}}" }}\n',
            r"site 'shop': headers.A: environment variable NOPE is not set",
        ),
        (
            '[webhooks.team]\nurl = "${NOPE}"\n',
            r"\[webhooks.team\]: url: environment variable NOPE",
        ),
        ("[webhooks.team]\nall_sites = true\n", r"\[webhooks.team\]: url is required"),
        (f'[webhooks.team]\nurl = "{TEAM}"\nsite = 1\n', r"unknown field 'site'"),
        (f'[webhooks.team]\nurl = "{TEAM}"\nall_sites = "yes"\n', r"all_sites must be true or"),
        ('sites = "shop"\n', r"'sites' must be \[\[sites\]\] tables"),
    ],
)
def test_each_mistake_is_one_line_naming_the_file_and_where(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DeclarationError) as raised:
        read_declaration(path, environ={})
    message = str(raised.value)
    assert message.startswith(f"config file {path}: ")
    assert "\n" not in message
    assert re.search(expected, message), message


def test_a_mistake_does_not_print_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'[[sites]]\n{SITE}headers = {{ Authorization = "Bearer ${{TOKEN}}" }}\n'
        "check_interval_seconds = -1\n",
    )
    with pytest.raises(DeclarationError) as raised:
        read_declaration(path, environ={"TOKEN": "s3cret-value"})
    assert "s3cret-value" not in str(raised.value)


def test_the_examples_commented_sites_are_valid(tmp_path: Path) -> None:
    """uptimed.toml.example shows two declared sites and a shared webhook, commented out (a
    copied example monitors nothing of someone else's): uncommented, they must read."""
    lines = EXAMPLE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [webhooks.team]"))
    block = "\n".join(line.removeprefix("#").removeprefix(" ") for line in lines[start:])
    declaration = read_declaration(
        write(tmp_path, block), environ={"DISCORD_TEAM_TOKEN": "t", "API_STATUS_TOKEN": "a"}
    )
    assert [s.key for s in declaration.sites] == ["shop", "api"]
    team = "https://discord.com/api/webhooks/123456789012345678/t"
    for site in declaration.sites:
        assert site.webhooks == (DeclaredWebhook(url=team, name="team"),)
    assert declaration.sites[1].site.headers == {"Authorization": "Bearer a"}
