"""The dashboard's audit log (Art. 32) in the warehouse: append-only, INSERT is the only statement here."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl.warehouse.schema import audit_log


def append(conn_or_engine: Connection | Engine, row: dict) -> None:
    """Append one audit row (columns of ``audit_log`` without ``id``); an engine commits it at once."""
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.begin() as conn:
            conn.execute(sa.insert(audit_log), row)
    else:
        conn_or_engine.execute(sa.insert(audit_log), row)


class Actor(Protocol):
    """Who acts: ``etl.users.User`` and the dashboard's ``UserContext`` both are one."""

    username: str
    role: str

    @property
    def scope_label(self) -> str: ...


def record(
    conn_or_engine: Connection | Engine,
    user: Actor,
    page: str,
    action: str,
    obj: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append one row: who (user, role, scope), when, where (page or 'cli'), what (action, object), why (reason)."""
    append(
        conn_or_engine,
        {
            "at": (at or datetime.now()).replace(microsecond=0),
            "username": user.username,
            "role": user.role,
            "scope": user.scope_label,
            "page": page,
            "action": action,
            "object": obj,
            "reason": reason,
        },
    )
