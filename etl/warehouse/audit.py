"""The dashboard's audit log (Art. 32) in the warehouse: append-only and tamper-evident.

INSERT is the only statement here that writes.  Each row carries the hash of the row before it (``prev_hash``)
and the hash of its own content and ``prev_hash`` (``row_hash``): a hash chain in ``id`` order.  Editing or
deleting a row breaks the chain at that row, which ``verify`` reports (``python -m dashboard audit verify``).
The database refuses UPDATE and DELETE as well (``etl.warehouse.schema.ensure_schema``: triggers; on PostgreSQL
the application's role holds only INSERT and SELECT, docs/SECURITY.md).  Removing the newest rows is caught only
against an earlier head: ``verify`` prints the head (id and hash) to note down elsewhere.

Writes are serialised: PostgreSQL takes a transaction-level advisory lock before reading the chain's head;
SQLite serialises writers itself and the primary key refuses a second row with the same id.  On an engine
the write waits at most ``WAIT_S`` seconds for the database (an ETL run holds SQLite's write lock for its whole
transaction); when it cannot be written, ``AuditError`` is raised and the caller must not perform the action.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl.errors import AuditError
from etl.warehouse.chain import CONTENT_COLUMNS, GENESIS, row_hash
from etl.warehouse.schema import AUDIT_CHAIN_COLUMNS, audit_log

__all__ = ["GENESIS", "WAIT_S", "ChainState", "append", "record", "row_hash", "verify"]
WAIT_S = 2.0  # the longest an audit write waits for the database (SQLite busy timeout)
_PG_LOCK_KEY = 0x41564155  # pg_advisory_xact_lock key of the audit chain ("AVAU")
_TEXT_LIMIT = 2000  # attacker-supplied text (a username typed at the login) is cut to this


def _head(conn: Connection) -> tuple[int, str]:
    """(id, row_hash) of the newest row; (0, GENESIS) for an empty log."""
    last = conn.execute(
        sa.select(audit_log.c.id, audit_log.c.row_hash).order_by(audit_log.c.id.desc()).limit(1)
    ).first()
    if last is None:
        return 0, GENESIS
    return int(last[0]), str(last[1] or GENESIS)


def _insert(conn: Connection, row: dict) -> int:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
    last_id, prev = _head(conn)
    full = {c.name: row.get(c.name) for c in audit_log.columns if c.name not in AUDIT_CHAIN_COLUMNS}
    for key in ("username", "object", "reason"):
        if isinstance(full.get(key), str):
            full[key] = full[key][:_TEXT_LIMIT]
    full["id"] = last_id + 1
    full["prev_hash"] = prev
    full["row_hash"] = row_hash(full, prev)
    conn.execute(sa.insert(audit_log), full)
    return full["id"]


def _busy_timeout(conn: Connection, ms: int | None = None) -> int:
    """SQLite's busy timeout of the connection (ms); set to ``ms`` when given.  Returns the value before."""
    raw = conn.connection.dbapi_connection
    before = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])  # type: ignore[union-attr]
    if ms is not None:
        raw.execute(f"PRAGMA busy_timeout={int(ms)}")  # type: ignore[union-attr]
    return before


def append(conn_or_engine: Connection | Engine, row: dict) -> int:
    """Append one audit row (columns of ``audit_log`` without ``id`` and the hashes); returns its id.

    On a connection: inside the caller's transaction (the action and its audit row commit together).  On an
    engine: committed at once, waiting at most ``WAIT_S`` seconds; ``AuditError`` when it cannot be written.
    """
    if not isinstance(conn_or_engine, Engine):
        return _insert(conn_or_engine, row)
    engine = conn_or_engine
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            with engine.connect() as conn:
                sqlite = conn.dialect.name == "sqlite"
                before = 0
                if sqlite:
                    before = _busy_timeout(conn, max(1, int((deadline - time.monotonic()) * 1000)))
                elif conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(WAIT_S * 1000)}ms'")
                try:
                    new_id = _insert(conn, row)
                    conn.commit()
                    return new_id
                finally:
                    if sqlite:
                        _busy_timeout(conn, before)
        except sa.exc.DBAPIError as exc:
            # SQLite: busy (an ETL run holds the write lock) or a stale snapshot / taken id (another writer
            # committed since we read the head): retry within the deadline, then refuse
            if time.monotonic() >= deadline or not _retryable(exc):
                raise AuditError(
                    "系统日志写入失败（数据库正忙，可能正在运行 ETL），本次操作未执行，请稍后再试"
                ) from exc
            time.sleep(0.05)


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(s in text for s in ("locked", "busy", "unique", "duplicate", "lock timeout", "serializ"))


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
) -> int:
    """Append one row: who (user, role, scope), when, where (page or 'cli'), what (action, object), why (reason)."""
    return append(
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


# --- verification -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainState:
    """The result of ``verify``: ``ok``, the rows checked, the head, and the first broken link (None if ok)."""

    ok: bool
    rows: int
    head_id: int
    head_hash: str
    broken_id: int | None = None
    problem: str | None = None

    def message(self) -> str:
        if self.ok:
            return f"审计日志哈希链完整：共 {self.rows} 行，末行 {self.head_id}，末行哈希 {self.head_hash}"
        return f"审计日志哈希链在第 {self.broken_id} 行断开：{self.problem}（已检查 {self.rows} 行）"


def _rows(conn: Connection, batch: int = 5000) -> Iterator[dict]:
    cols = [audit_log.c[c] for c in (*CONTENT_COLUMNS, "prev_hash", "row_hash")]
    after = -1
    while True:
        chunk = conn.execute(
            sa.select(*cols).where(audit_log.c.id > after).order_by(audit_log.c.id).limit(batch)
        ).mappings()
        rows = [dict(r) for r in chunk]
        if not rows:
            return
        yield from rows
        after = int(rows[-1]["id"])


def verify(target: Connection | Engine) -> ChainState:
    """Walk the chain in id order: each row's ``prev_hash`` is the row before's ``row_hash`` (the first row's:
    ``GENESIS``) and its ``row_hash`` matches its content.  The first row that fails is the broken link."""
    if isinstance(target, Engine):
        with target.connect() as conn:
            return verify(conn)
    prev, last_id, n = GENESIS, 0, 0
    for r in _rows(target):
        n += 1
        rid = int(r["id"])
        if r["prev_hash"] != prev:
            problem = (
                f"其前的第 {last_id + 1}–{rid - 1} 行缺失（被删除）"
                if rid > last_id + 1 and (last_id or rid > 1)
                else "前一行哈希不符（前一行被修改、删除或本行被改动）"
            )
            return ChainState(False, n, last_id, prev, rid, problem)
        if r["row_hash"] != row_hash(r, prev):
            return ChainState(False, n, last_id, prev, rid, "本行内容与其哈希不符（本行被修改）")
        prev, last_id = r["row_hash"], rid
    return ChainState(True, n, last_id, prev)
