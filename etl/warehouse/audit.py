"""The dashboard's audit log (Art. 32) in the warehouse: append-only, INSERT is the only statement here."""

from __future__ import annotations

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
