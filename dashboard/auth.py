"""Users, roles, pages a role may open, and the logged-in user's context.

The users file (``users: {username: {name, role, unit_code, password_hash}}``)
is the one source of roles: the role is looked up here on every run, never
taken from the browser cookie.  Production: ``$DASHBOARD_USERS_FILE`` or the
``users_file`` secret; demo: ``users.yaml`` beside the ``sources.yaml`` of the
latest successful ETL run.
"""

from __future__ import annotations

import copy
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from etl.users import (
    CITY_ROLES,
    ROLES,
    User,
    demo_info,
    demo_users_file,
    is_demo_warehouse,
    load_users,
    user_for,
)

# ROLES: role id -> Chinese name (etl.vocabulary); the users file logic lives in etl.users (the CLI uses it too)
__all__ = ["CITY_ROLES", "ROLES", "demo_info", "demo_users_file", "is_demo_warehouse", "load_users"]
# The sidebar's sections and their page ids, in navigation order (dashboard/app.py draws them; every page of its
# PAGE_FILES in exactly one: tests/test_dashboard_app.py).  Section titles are shown through the i18n table.
NAV_SECTIONS: dict[str, tuple[str, ...]] = {
    "考评与检查": (
        "overview",
        "coverage",
        "cases",
        "equipment",
        "access",
        "integrity",
        "assessment",
        "officer",
        "unit",
    ),
    "督察记录": ("todo", "review", "appeals", "excuses", "spotcheck", "rectification", "publication"),
    "系统": ("data", "data_quality", "syslog"),
}
INSPECTION = NAV_SECTIONS["考评与检查"]  # the inspection pages every role with a scope reads
# Page ids in navigation order.
PAGES: tuple[str, ...] = tuple(pid for ids in NAV_SECTIONS.values() for pid in ids)
# The supervision pages: the legal department acts on all of them; a unit administrator appeals (and sees the
# state of every finding of its scope there), answers its rectification notices and has its 待办; leaders read
# the review queue, the spot-checks, the notices and the publications (no forms).  Spot-checks are the legal
# department's own inspection: a unit administrator does not see the campaigns (a failed review reaches the unit
# as a SPOT-CHECK finding it may appeal, and as a rectification notice).
ROLE_PAGES: dict[str, tuple[str, ...]] = {
    "leader": (
        *INSPECTION,
        "data",
        "data_quality",
        "review",
        "spotcheck",
        "rectification",
        "publication",
    ),
    "legal": PAGES,
    "equipment": ("equipment",),
    "it": ("data", "data_quality", "syslog"),
    "unit_admin": (
        *INSPECTION,
        "data_quality",
        "todo",
        "appeals",
        "rectification",
    ),
    # an officer (民警) sees its own record only (issue 18): the officer page, nothing unit-wide
    "officer": ("officer",),
}
EXPORT_ROLES = ("leader", "legal", "equipment", "unit_admin")
COOKIE_NAME = "avsup_auth"
COOKIE_EXPIRY_DAYS = 0.5  # short: the JWT stays valid after logout until it expires (upstream issue)

# A random key for this process when none is configured: cookies then last as long as the server.
_PROCESS_COOKIE_KEY = secrets.token_hex(32)


@dataclass(frozen=True)
class UserContext(User):
    """Who is looking and what they may see (``etl.users.User`` plus the dashboard's page rights)."""

    def may_open(self, page: str) -> bool:
        return page in ROLE_PAGES.get(self.role, ())

    @property
    def may_export(self) -> bool:
        return self.role in EXPORT_ROLES


def credentials(users: dict[str, dict]) -> dict:
    """The credentials dict streamlit-authenticator expects (a fresh deep copy each call)."""
    return copy.deepcopy(
        {
            "usernames": {
                name: {
                    "name": u["name"],
                    "email": f"{name}@localhost",
                    "password": u["password_hash"],
                    "roles": [u["role"]],
                }
                for name, u in users.items()
                if not u.get("disabled")  # a disabled user's re-login cookie is refused as well
            }
        }
    )


def users_file(url: str, configured: str | None = None) -> Path | None:
    """Production file from the environment or secrets, else the demo's (found from the warehouse at ``url``)."""
    configured = configured or os.environ.get("DASHBOARD_USERS_FILE")
    if configured:
        return Path(configured)
    from dashboard.queries import latest_sources_file  # the query layer runs the SQL

    return demo_users_file(latest_sources_file(url))


def cookie_key(configured: str | None = None) -> str:
    return configured or os.environ.get("DASHBOARD_COOKIE_KEY") or _PROCESS_COOKIE_KEY


def is_revoked(token: dict | None, logouts: dict[str, float]) -> bool:
    """True when a re-login cookie was issued before its user last logged out (in this server process).

    The JWT of streamlit-authenticator stays valid after logout until it expires (upstream issue); this
    closes that gap for a copied or stale cookie.  ``token`` has ``username`` and ``exp_date``.
    """
    if not token or not isinstance(token, dict) or "username" not in token:
        return False
    logged_out = logouts.get(str(token["username"]).lower())
    if logged_out is None:
        return False
    issued = float(token.get("exp_date", 0)) - COOKIE_EXPIRY_DAYS * 86400
    return issued <= logged_out


def context_for(username: str, users: dict[str, dict], org_units: pd.DataFrame) -> UserContext | None:
    """The context of a logged-in user from the users file and the unit tree; None if unknown."""
    user = user_for(username, users, org_units)
    return None if user is None else UserContext(**user.__dict__)
