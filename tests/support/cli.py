"""Signing the command line in, as a person uses it: an escr account and an API token in ESCR_TOKEN."""

from __future__ import annotations

from collections.abc import Sequence

from escr.app import accounts
from escr.errors import NotFound
from escr.record.events import Actor
from escr.services import Services

SETUP = Actor(kind="user", name="setup")


def cli_env(services: Services, username: str, role: str = "business_support", *, teams: Sequence[str] = (),
            third_party: bool = False) -> dict[str, str]:
    """The environment for `CliRunner.invoke(..., env=...)` that signs `escr` in as this user.

    The user is created (with their teams) unless they exist; each call makes a fresh token."""
    with services.db.session() as session:
        try:
            user = accounts.get_user(session, username)
        except NotFound:
            for team in teams:
                try:
                    accounts.get_team(session, team)
                except NotFound:
                    accounts.add_team(session, team, actor=SETUP)
            user, _ = accounts.add_user(session, username, role=role, actor=SETUP, teams=teams,
                                        third_party=third_party, password="a password for the tests")
        token = accounts.create_token(session, user, "tests", actor=SETUP,
                                      scope="admin" if role == "administrator" else "write").secret
    return {**home_env(services), "ESCR_TOKEN": token}


def home_env(services: Services) -> dict[str, str]:
    """Where escr's data is (no account: for the host operator's commands)."""
    env = {"ESCR_HOME": str(services.settings.home), "ESCR_TOKEN": ""}
    if services.settings.database_url:
        env["ESCR_DATABASE_URL"] = services.settings.database_url
    return env
