"""Login, session and cookie safeguards of the dashboard (docs/SECURITY.md), free of Streamlit widgets.

- ``attempt_login``: lockout per user name and per client (``login.max_failures`` failures within
  ``login.lockout_min`` minutes, counted from the audit log, so it holds across sessions, server processes and
  restarts), the same bcrypt work for unknown and known user names (a dummy hash of the same cost), every failed
  attempt and every lockout audited.
- ``cookie_key_problem``: outside the demo the cookie key is required, of at least 32 random bytes.
- ``idle_expired``: the idle timeout (``session.idle_timeout_min``).
- ``error_id`` / ``log_error``: a short id for the user, the details for the log.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import bcrypt

from dashboard import queries
from etl import settings
from etl.errors import AuditError
from etl.warehouse import audit as warehouse_audit

log = logging.getLogger("avsup.dashboard")

USERNAME_MAX = 64
# Keys that are published somewhere (library examples, our tests, docs): never accepted outside the demo.
KNOWN_KEYS = {"some_signature_key", "random_signature_key", "abcdef", "secret", "changeme", "cookie_key"}


# --- cookie key --------------------------------------------------------------------------------------------


def _decoded(key: str) -> bytes:
    """The key's bytes: hex or (URL-safe) base64 decoded when it is that, else its UTF-8 bytes."""
    text = key.strip()
    try:
        if len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text):
            return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        padded = text + "=" * (-len(text) % 4)
        raw = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        if len(raw) >= 24:
            return raw
    except (binascii.Error, ValueError):
        pass
    return text.encode("utf-8")


def cookie_key_problem(key: str | None) -> str | None:
    """Why ``key`` may not sign the login cookies outside the demo (Chinese), or None when it may.

    Required: at least 32 bytes (hex or base64 of 32 random bytes, or 32+ characters of text) with at least 16
    different characters, and not a key published anywhere.
    """
    how = '生成方法：python -c "import secrets; print(secrets.token_urlsafe(32))"，填入 DASHBOARD_COOKIE_KEY 或 secrets 的 cookie_key'
    if not key:
        return f"未配置登录 Cookie 密钥。{how}"
    if key.strip().lower() in KNOWN_KEYS:
        return f"登录 Cookie 密钥是公开的示例值，不能使用。{how}"
    raw = _decoded(key)
    if len(raw) < 32:
        return f"登录 Cookie 密钥太短（{len(raw)} 字节，至少 32 字节随机数）。{how}"
    if len(set(key.strip())) < 16:
        return f"登录 Cookie 密钥过于简单（字符种类太少），应为随机生成。{how}"
    return None


def demo_cookie_key() -> str:
    """The demo's key when none is configured: random per server process (cookies last as long as the server)."""
    return _PROCESS_KEY


_PROCESS_KEY = secrets.token_urlsafe(32)


# --- login -------------------------------------------------------------------------------------------------


@functools.cache
def _dummy_hash(cost: int) -> bytes:
    return bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))


def _cost(users: dict[str, dict]) -> int:
    """The bcrypt cost most users' hashes have (the dummy hash costs the same, so timing says nothing)."""
    costs = [int(u["password_hash"][4:6]) for u in users.values() if u.get("password_hash", "")[4:6].isdigit()]
    return max(set(costs), key=costs.count) if costs else 12


def normalise(username: str | None) -> str:
    return (username or "").strip().lower()[:USERNAME_MAX]


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    username: str
    locked: bool = False
    message: str | None = None  # Chinese, for the login form


class _Attempt:
    """Who tried: ``etl.warehouse.audit.Actor`` for the audit rows of a login attempt."""

    def __init__(self, username: str, role: str | None = None) -> None:
        self.username = username
        self.role = role

    @property
    def scope_label(self) -> str:
        return ""


def lock_state(url: str, username: str, client: str, now: datetime | None = None) -> tuple[bool, bool]:
    """(user name locked, client locked): ``max_failures`` failed logins within ``lockout_min`` minutes.  A user
    name's count starts again after its last successful login; a client's does not."""
    cfg = settings.load()["login"]
    since = (now or datetime.now()) - timedelta(minutes=cfg["lockout_min"])
    after = queries.last_login_id(url, username)
    user_locked = queries.failed_logins(url, "username", username, since, after) >= cfg["max_failures"]
    client_locked = queries.failed_logins(url, "object", client, since) >= cfg["max_failures"]
    return user_locked, client_locked


def attempt_login(
    url: str, users: dict[str, dict], username: str, password: str, client: str, page: str = "login"
) -> LoginResult:
    """Check one login attempt; audits a failure (``login_failed``) and a lockout (``login_locked``).

    The same work whatever the user name: the lockout queries, one bcrypt check (against a dummy hash of the
    same cost for an unknown or disabled user) and, on failure, one audit row.  Raises ``AuditError`` when the
    audit row cannot be written (the caller refuses the login).
    """
    name = normalise(username)
    cfg = settings.load()["login"]
    engine = queries.engine(url)
    user_locked, client_locked = lock_state(url, name, client)
    u = users.get(name)
    known = u is not None and not u.get("disabled")
    stored = u["password_hash"].encode() if known else _dummy_hash(_cost(users))
    try:
        good = bcrypt.checkpw((password or "").encode("utf-8"), stored)
    except ValueError:
        good = False
    if user_locked or client_locked:
        warehouse_audit.record(
            engine, _Attempt(name), page, "login_locked", client, "用户名" if user_locked else "客户端"
        )
        return LoginResult(False, name, True, f"登录失败次数过多，已锁定，请 {cfg['lockout_min']} 分钟后再试")
    if good and known:
        return LoginResult(True, name)
    warehouse_audit.record(engine, _Attempt(name), page, "login_failed", client)
    user_locked, client_locked = lock_state(url, name, client)
    if user_locked or client_locked:
        warehouse_audit.record(engine, _Attempt(name), page, "lockout", client, "用户名" if user_locked else "客户端")
    return LoginResult(False, name, False, "用户名或密码错误")


__all__ = ["AuditError", "LoginResult", "attempt_login", "cookie_key_problem", "error_id", "idle_expired"]


# --- session ---------------------------------------------------------------------------------------------


def idle_timeout_s() -> float:
    return 60.0 * settings.load()["session"]["idle_timeout_min"]


def idle_expired(last_active: float | None, now: float) -> bool:
    """True when a session's last interaction lies more than the idle timeout before ``now``."""
    return last_active is not None and now - last_active > idle_timeout_s()


def client_id(ip_address: str | None, headers: dict | None) -> str:
    """The client a lockout counts against: the peer address, or the first X-Forwarded-For address when the
    settings trust the reverse proxy (``login.trust_forwarded_for``)."""
    if settings.load()["login"].get("trust_forwarded_for") and isinstance(headers, dict):
        forwarded = {str(k).lower(): v for k, v in headers.items()}.get("x-forwarded-for")
        if isinstance(forwarded, str) and forwarded:
            return forwarded.split(",")[0].strip()[:64]
    return ip_address[:64] if isinstance(ip_address, str) and ip_address else "unknown"


# --- errors ----------------------------------------------------------------------------------------------


def error_id() -> str:
    return uuid.uuid4().hex[:8].upper()


def log_error(exc: BaseException, where: str) -> str:
    """Log ``exc`` with its stack under a new error id; returns the id (what the user is shown)."""
    eid = error_id()
    log.error("error %s in %s", eid, where, exc_info=exc)
    return eid
