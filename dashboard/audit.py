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
    warehouse_audit.record(engine, user, page, action, obj, reason, at)
