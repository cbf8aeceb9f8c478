"""Audit log of the dashboard itself (Art. 32): append-only, INSERT is the only statement here."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from dashboard.auth import UserContext
from etl.warehouse.schema import audit_log


def record(engine: sa.Engine, user: UserContext, page: str, action: str, obj: str | None = None,
           reason: str | None = None, at: datetime | None = None) -> None:
    """Append one row: who (user, role, scope), when, where (page), what (action, object) and why (reason)."""
    row = {
        "at": (at or datetime.now()).replace(microsecond=0), "username": user.username, "role": user.role,
        "scope": user.scope_label, "page": page, "action": action, "object": obj, "reason": reason,
    }
    with engine.begin() as conn:
        conn.execute(sa.insert(audit_log), row)
