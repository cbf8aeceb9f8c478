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
import yaml

from etl.errors import ConfigError
from etl.vocabulary import ROLES
from etl.warehouse.scope import user_scope

__all__ = ["ROLES"]  # role id -> Chinese name (etl.vocabulary), re-exported for the pages and demo_logins
# Page ids in navigation order.
PAGES: tuple[str, ...] = (
    "overview",
    "coverage",
    "cases",
    "equipment",
    "access",
    "integrity",
    "assessment",
    "data",
    "syslog",
)
ROLE_PAGES: dict[str, tuple[str, ...]] = {
    "leader": ("overview", "coverage", "cases", "equipment", "access", "integrity", "assessment", "data"),
    "legal": PAGES,
    "equipment": ("equipment",),
    "it": ("data", "syslog"),
    "unit_admin": ("overview", "coverage", "cases", "equipment", "access", "integrity", "assessment"),
}
CITY_ROLES = ("leader", "legal", "equipment", "it")
EXPORT_ROLES = ("leader", "legal", "equipment", "unit_admin")
COOKIE_NAME = "avsup_auth"
COOKIE_EXPIRY_DAYS = 0.5  # short: the JWT stays valid after logout until it expires (upstream issue)

# A random key for this process when none is configured: cookies then last as long as the server.
_PROCESS_COOKIE_KEY = secrets.token_hex(32)


@dataclass(frozen=True)
class UserContext:
    """Who is looking and what they may see. ``scope`` None means the whole city."""

    username: str
    name: str
    role: str
    unit_code: str | None
    scope: tuple[str, ...] | None

    @property
    def scope_label(self) -> str:
        return "city" if self.scope is None else (self.unit_code or "")

    def may_open(self, page: str) -> bool:
        return page in ROLE_PAGES.get(self.role, ())

    @property
    def may_export(self) -> bool:
        return self.role in EXPORT_ROLES


def load_users(path: Path) -> dict[str, dict]:
    """The users of a users file, keys lower-cased; ConfigError when malformed."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"无法读取用户文件 {path}：{exc}") from exc
    users = raw.get("users") if isinstance(raw, dict) else None
    if not isinstance(users, dict) or not users:
        raise ConfigError(f"用户文件 {path} 缺少 users 列表")
    out: dict[str, dict] = {}
    for username, u in users.items():
        if not isinstance(u, dict) or u.get("role") not in ROLES or not u.get("password_hash"):
            raise ConfigError(f"用户文件 {path} 中的用户 {username} 缺少角色或密码")
        if u["role"] == "unit_admin" and not u.get("unit_code"):
            raise ConfigError(f"单位管理员 {username} 缺少 unit_code")
        out[str(username).strip().lower()] = {
            "name": str(u.get("name") or username),
            "role": u["role"],
            "unit_code": None if u.get("unit_code") is None else str(u["unit_code"]),
            "password_hash": str(u["password_hash"]),
        }
    return out


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
            }
        }
    )


def demo_users_file(sources_file: str | None) -> Path | None:
    """users.yaml beside ``sources_file`` (the latest successful ETL run's, ``queries.latest_sources_file``)."""
    if not sources_file:
        return None
    path = Path(str(sources_file)).parent / "users.yaml"
    return path if path.is_file() else None


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
    u = users.get((username or "").lower())
    if u is None:
        return None
    scope = None if u["role"] in CITY_ROLES else user_scope(org_units, u["unit_code"])
    return UserContext(username=username.lower(), name=u["name"], role=u["role"], unit_code=u["unit_code"], scope=scope)
