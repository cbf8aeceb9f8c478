"""Audit log of the dashboard itself (Art. 32): append-only (``etl.warehouse.audit.append`` writes the row)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine

from dashboard.auth import UserContext
from etl.warehouse import audit as warehouse_audit


def record(
    engine: Engine,
    user: UserContext,
    page: str,
    action: str,
    obj: str | None = None,
    reason: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append one row: who (user, role, scope), when, where (page), what (action, object) and why (reason)."""
    row = {
        "at": (at or datetime.now()).replace(microsecond=0),
        "username": user.username,
        "role": user.role,
        "scope": user.scope_label,
        "page": page,
        "action": action,
        "object": obj,
        "reason": reason,
    }
    warehouse_audit.append(engine, row)
