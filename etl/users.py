"""Users of the platform: the users file, roles and each user's unit scope (the dashboard and the CLI alike).

The users file (``users: {username: {name, role, unit_code, police_no, password_hash}}``) is the one source of
roles: a role is looked up here on every request, never taken from a browser cookie or a command line flag.
An ``officer`` (民警, issue 18) names its own ``police_no``: it sees its own record only (scope: no unit at all).
Production: ``$DASHBOARD_USERS_FILE`` (or the dashboard's ``users_file`` secret); demo: ``users.yaml`` beside
the ``sources.yaml`` of the warehouse's latest successful ETL run (``etl demo`` writes it there).

``dashboard.auth`` builds its login on these functions; the CLI's ``--by USER`` resolves through ``resolve``.
A low module: it reads the unit tree and the latest run straight with SQL and computes the scope with
``etl.warehouse.scope`` (the one scope module); nothing of ``etl.warehouse`` or below imports it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection, Engine

from etl.errors import ConfigError
from etl.vocabulary import ROLES
from etl.warehouse.scope import roots, user_scope

__all__ = [
    "CITY_ROLES",
    "OFFICER_ROLE",
    "ROLES",
    "User",
    "is_demo_warehouse",
    "load_users",
    "password_problem",
    "resolve",
    "user_for",
    "users_file",
]

# The role that sees only its own record: no unit scope at all (an empty scope), its own police number only.
OFFICER_ROLE = "officer"
# Roles that always see the whole city.  The legal department is city-wide too, unless its users entry names a
# unit below the top of the tree (a county's legal office): then it acts in that unit's scope.
CITY_ROLES = ("leader", "legal", "equipment", "it")


@dataclass(frozen=True)
class User:
    """Who acts and what they may touch. ``scope`` None means the whole city, ``()`` no unit (an officer).

    ``police_no``: the user's own police number (an officer's record is the one of this number)."""

    username: str
    name: str
    role: str
    unit_code: str | None
    scope: tuple[str, ...] | None
    police_no: str | None = None

    @property
    def scope_label(self) -> str:
        """'city' for the whole city, else the user's unit code (the audit log's ``scope`` column)."""
        return "city" if self.scope is None else (self.unit_code or "")


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
        if u["role"] == OFFICER_ROLE and not str(u.get("police_no") or "").strip():
            raise ConfigError(f"民警用户 {username} 缺少 police_no")
        if not is_bcrypt_hash(str(u["password_hash"])):
            raise ConfigError(f"用户文件 {path} 中的用户 {username} 的密码不是 bcrypt 哈希（用户文件只存哈希）")
        out[str(username).strip().lower()] = {
            "name": str(u.get("name") or username),
            "role": u["role"],
            "unit_code": None if u.get("unit_code") is None else str(u["unit_code"]),
            "police_no": None if u.get("police_no") is None else str(u["police_no"]).strip(),
            "password_hash": str(u["password_hash"]),
            "disabled": bool(u.get("disabled", False)),
        }
    return out


_BCRYPT = re.compile(r"^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")


def is_bcrypt_hash(text: str) -> bool:
    return bool(_BCRYPT.match(text or ""))


def demo_info(path: Path) -> dict | None:
    """The demo marker of a users file (``etl demo`` writes ``demo: {sources_sha256: ...}``); None without one."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    demo = raw.get("demo") if isinstance(raw, dict) else None
    return demo if isinstance(demo, dict) and demo.get("sources_sha256") else None


def latest_sources_hash(target: str | Engine | Connection) -> str | None:
    """The ``sources_hash`` the warehouse's latest successful run recorded (SHA-256 of its sources.yaml)."""
    try:
        rows = _read(target, "SELECT sources_hash FROM etl_runs WHERE status = 'ok' ORDER BY run_id DESC LIMIT 1")
    except sa.exc.DBAPIError:
        return None
    return str(rows[0][0]) if rows and rows[0][0] else None


def is_demo_warehouse(target: str | Engine | Connection, users_path: Path | None) -> bool:
    """True when the warehouse was loaded from ``etl demo`` data whose accounts ``users_path`` holds.

    The marker is the warehouse's own: its latest successful run recorded the SHA-256 of the sources.yaml it
    loaded, and the demo's users file names the SHA-256 of the demo's sources.yaml (``etl demo`` writes both).
    A users file copied beside a production sources.yaml, or a production warehouse, never matches.
    """
    demo = demo_info(users_path) if users_path is not None else None
    if demo is None:
        return False
    return latest_sources_hash(target) == str(demo["sources_sha256"])


# --- managing a production users file (``python -m dashboard users ...``) -------------------------------------
MIN_PASSWORD_LENGTH = 12
_COMMON = {"password", "qwerty", "123456", "admin", "changeme", "welcome", "letmein", "iloveyou", "demo", "abc123"}


def password_problem(password: str, username: str = "") -> str | None:
    """Why ``password`` is too weak (Chinese), or None: at least 12 characters of at least 3 of the 4 kinds
    (lower case, upper case, digits, symbols), not containing the username, not a common word with digits."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少 {MIN_PASSWORD_LENGTH} 个字符"
    kinds = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if kinds < 3:
        return "密码须包含大写字母、小写字母、数字、符号中的至少三类"
    low = password.lower()
    if username and username.lower() in low:
        return "密码不得包含用户名"
    core = re.sub(r"[^a-z]", "", low)
    if core in _COMMON or len(set(password)) < 6:
        return "密码过于常见或重复字符过多"
    return None


def hash_password(password: str, rounds: int = 12) -> str:
    import bcrypt

    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode()


def read_users_file(path: Path) -> dict:
    """The raw users file (``{"users": {...}}``) for editing; an empty one when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return {"users": {}}
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("users", {}), dict):
        raise ConfigError(f"用户文件 {path} 格式错误")
    raw.setdefault("users", {})
    return raw


def write_users_file(path: Path, data: dict) -> None:
    """Write the users file atomically, readable by its owner only (it holds password hashes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def demo_users_file(sources_file: str | None) -> Path | None:
    """users.yaml beside ``sources_file`` (the latest successful ETL run's); None when there is none."""
    if not sources_file:
        return None
    path = Path(str(sources_file)).parent / "users.yaml"
    return path if path.is_file() else None


def _read(target: str | Engine | Connection, sql: str) -> list[tuple]:
    if isinstance(target, Connection):
        return [tuple(r) for r in target.exec_driver_sql(sql)]
    engine = sa.create_engine(target) if isinstance(target, str) else target
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        if isinstance(target, str):
            engine.dispose()


def latest_sources_file(target: str | Engine | Connection) -> str | None:
    """The sources file of the warehouse's latest successful ETL run; None without one (or without a warehouse)."""
    try:
        rows = _read(target, "SELECT sources_file FROM etl_runs WHERE status = 'ok' ORDER BY run_id DESC LIMIT 1")
    except sa.exc.DBAPIError:  # no warehouse (or no run table) yet
        return None
    return str(rows[0][0]) if rows and rows[0][0] else None


def users_file(target: str | Engine | Connection, configured: str | None = None) -> Path | None:
    """``configured``, else ``$DASHBOARD_USERS_FILE``, else the demo's users file of the warehouse ``target``."""
    configured = configured or os.environ.get("DASHBOARD_USERS_FILE")
    if configured:
        return Path(configured)
    return demo_users_file(latest_sources_file(target))


def org_units(target: str | Engine | Connection) -> pd.DataFrame:
    """The unit tree (unit_code, parent_code) of the warehouse; empty without one."""
    try:
        rows = _read(target, "SELECT unit_code, parent_code FROM org_units ORDER BY unit_code")
    except sa.exc.DBAPIError:
        rows = []
    return pd.DataFrame(rows, columns=["unit_code", "parent_code"], dtype=object)


def user_scope_of(role: str, unit_code: str | None, units: pd.DataFrame) -> tuple[str, ...] | None:
    """The scope of a user: None (the whole tree) for the city roles, else its unit and every unit below it.

    A city-role user whose unit lies below the top of the tree (a county's legal office; in a province warehouse,
    one city's leader, legal office, equipment manager or IT) gets that unit's scope.  An officer gets no unit at
    all (``()``): its own record only, by its police number (``User.police_no``).
    """
    if role == OFFICER_ROLE:
        return ()
    if role in CITY_ROLES:
        if unit_code is None or units.empty or unit_code in roots(units):
            return None
        if unit_code not in set(units["unit_code"].astype(str)):
            return None  # a unit not (yet) in the tree: the whole tree, as before this rule existed
    return user_scope(units, unit_code)


def user_for(username: str, users: dict[str, dict], units: pd.DataFrame) -> User | None:
    """The user ``username`` of a users file (``load_users``) with its scope in the unit tree; None if unknown."""
    u = users.get((username or "").strip().lower())
    if u is None or u.get("disabled"):
        return None
    return User(
        username=(username or "").strip().lower(),
        name=u["name"],
        role=u["role"],
        unit_code=u["unit_code"],
        scope=user_scope_of(u["role"], u["unit_code"], units),
        police_no=u.get("police_no"),
    )


def resolve(username: str, target: str | Engine | Connection, configured: str | None = None) -> User:
    """The user named ``username`` (the CLI's ``--by``) for the warehouse ``target``; ConfigError if unknown."""
    explicit = configured or os.environ.get("DASHBOARD_USERS_FILE")
    path = users_file(target, configured)
    if path is None:
        raise ConfigError("找不到用户文件：请设置 DASHBOARD_USERS_FILE，或先用演示数据运行 etl run")
    if not explicit and not is_demo_warehouse(target, path):  # demo accounts act on the demo's warehouse only
        raise ConfigError(
            f"用户文件 {path} 不是本数据仓库的演示账号（无演示标记或与所加载的数据不符）：请设置 DASHBOARD_USERS_FILE"
        )
    user = user_for(username, load_users(path), org_units(target))
    if user is None:
        raise ConfigError(f"用户文件 {path} 中没有用户：{username}")
    return user
