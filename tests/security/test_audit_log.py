"""Threat: audit tampering, an audit write stuck behind an ETL run, views dropped under readers."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa
from helpers import ROOT, logged_in, open_page, rows

from etl.errors import AuditError
from etl.warehouse import audit
from etl.warehouse.db import make_engine
from etl.warehouse.schema import ensure_schema


class Actor:
    username, role, scope_label = "legal", "legal", "city"


def _warehouse(url: str, n: int = 5) -> sa.Engine:
    eng = make_engine(url)
    with eng.begin() as conn:
        ensure_schema(conn)
    for i in range(n):
        audit.record(eng, Actor(), "cases", "view_case", f"CASE-{i}", "评查")
    return eng


def _drop_guards(eng: sa.Engine) -> None:
    """What an attacker with the owner's rights would do first."""
    with eng.begin() as conn:
        if eng.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_delete")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_no_change ON audit_log")


def test_chain_verifies(warehouse):
    eng = _warehouse(warehouse)
    state = audit.verify(eng)
    assert state.ok and state.rows == 5 and state.head_id == 5


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET reason = 'x' WHERE id = 2", "DELETE FROM audit_log"])
def test_database_refuses_update_and_delete(warehouse, statement):
    eng = _warehouse(warehouse)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), eng.begin() as conn:
        conn.exec_driver_sql(statement)
    assert audit.verify(eng).ok


@pytest.mark.parametrize(
    "tamper, broken",
    [
        ("UPDATE audit_log SET reason = '无' WHERE id = 3", 3),  # an edited row
        ("DELETE FROM audit_log WHERE id = 3", 4),  # a deleted row: the next one's link breaks
        ("DELETE FROM audit_log WHERE id = 1", 2),  # the first row
        ("UPDATE audit_log SET at = at WHERE id = 2; UPDATE audit_log SET username = 'x' WHERE id = 2", 2),
    ],
)
def test_tampering_is_found(warehouse, tamper, broken):
    eng = _warehouse(warehouse)
    _drop_guards(eng)
    with eng.begin() as conn:
        for stmt in tamper.split(";"):
            conn.exec_driver_sql(stmt)
    state = audit.verify(eng)
    assert not state.ok and state.broken_id == broken, state


def test_rehashing_a_row_breaks_the_next_link(warehouse):
    """An attacker who recomputes the edited row's own hash still breaks the link of the row after it."""
    eng = _warehouse(warehouse)
    _drop_guards(eng)
    with eng.connect() as conn:
        r = dict(conn.execute(sa.text("SELECT * FROM audit_log WHERE id = 3")).mappings().one())
    r["reason"] = "改过的事由"
    forged = audit.row_hash(r, r["prev_hash"])
    with eng.begin() as conn:
        conn.execute(
            sa.text("UPDATE audit_log SET reason = :r, row_hash = :h WHERE id = 3"), {"r": r["reason"], "h": forged}
        )
    state = audit.verify(eng)
    assert not state.ok and state.broken_id == 4


def test_cli_verify_reports_the_first_broken_link(sqlite_url):
    eng = _warehouse(sqlite_url)
    cmd = [sys.executable, "-m", "dashboard", "audit", "verify", "--warehouse", sqlite_url]
    ok = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "哈希链完整" in ok.stdout
    _drop_guards(eng)
    with eng.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET object = 'CASE-X' WHERE id = 2")
    bad = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "第 2 行断开" in bad.stdout, bad.stdout


def test_legacy_log_is_sealed_into_the_chain(sqlite_url):
    """A warehouse of before the chain: its rows are sealed by the next ensure_schema, then guarded."""
    eng = make_engine(sqlite_url)
    with eng.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, at DATETIME, username TEXT, role TEXT, scope TEXT, "
            "page TEXT, action TEXT, object TEXT, reason TEXT)"
        )
        conn.exec_driver_sql(
            "INSERT INTO audit_log VALUES (1, '2026-07-01 08:00:00', 'a', 'it', 'city', 'p', 'login', NULL, NULL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO audit_log VALUES (5, '2026-07-01 09:00:00', 'b', 'it', 'city', 'p', 'login', NULL, NULL)"
        )
        ensure_schema(conn)
    audit.record(eng, Actor(), "p", "login")
    state = audit.verify(eng)
    assert state.ok and state.rows == 3 and state.head_id == 6


def test_audit_write_never_waits_on_an_etl_run_and_the_action_is_refused(sqlite_url):
    """An ETL run holds SQLite's write lock for its whole transaction: the audit write gives up after ~2 s."""
    eng = _warehouse(sqlite_url, 1)
    held, release = threading.Event(), threading.Event()

    def etl_run() -> None:
        other = make_engine(sqlite_url)
        with other.begin() as conn:
            conn.exec_driver_sql("INSERT INTO etl_runs (status) VALUES ('running')")  # takes the write lock
            held.set()
            release.wait(30)
        other.dispose()

    t = threading.Thread(target=etl_run)
    t.start()
    try:
        assert held.wait(10)
        t0 = time.monotonic()
        with pytest.raises(AuditError):
            audit.record(eng, Actor(), "cases", "view_case", "CASE-9", "评查")
        assert time.monotonic() - t0 < 3.0
    finally:
        release.set()
        t.join()
    assert rows(sqlite_url, "SELECT COUNT(*) FROM audit_log WHERE object = 'CASE-9'") == [(0,)]


def test_detail_is_refused_when_its_audit_row_fails(wh, monkeypatch):
    from dashboard import audit as dash_audit

    def failing(*_a, **_k):
        raise AuditError("系统日志写入失败（数据库正忙，可能正在运行 ETL），本次操作未执行，请稍后再试")

    at = open_page(logged_in("legal"), "cases")
    monkeypatch.setattr(dash_audit, "record", failing)
    [s for s in at.selectbox if s.key == "case_no"][0].set_value("CASE-A2-001").run()
    at.text_input(key="reason_text_case").input("案件评查")
    [b for b in at.button if b.label == "确认"][0].click().run()
    assert any("系统日志写入失败" in e.value for e in at.error)
    assert not [s for s in at.subheader if s.value == "CASE-A2-001"]  # the detail was not shown


def test_unchanged_views_are_not_replaced(warehouse):
    """A second ensure_schema (every run calls it) leaves the views alone: readers never see them missing."""
    eng = _warehouse(warehouse, 0)

    def identity(conn: sa.Connection):  # noqa: ANN202
        if eng.dialect.name == "sqlite":
            return conn.exec_driver_sql("PRAGMA schema_version").scalar()
        return conn.exec_driver_sql(
            "SELECT array_agg(oid ORDER BY relname) FROM pg_class WHERE relkind = 'v' AND left(relname, 2) = 'v_'"
        ).scalar()

    with eng.connect() as conn:
        before = identity(conn)
    with eng.begin() as conn:
        ensure_schema(conn)
    with eng.connect() as conn:
        assert identity(conn) == before


@pytest.mark.postgres
def test_postgres_app_role_can_only_insert_and_select(pg_url):
    """The GRANTs of docs/SECURITY.md: the application's role appends and reads, never edits or deletes."""
    _warehouse(pg_url, 2).dispose()
    role = "avsup_app_" + pg_url.rsplit("_", 1)[-1]
    grants = (ROOT / "docs" / "SECURITY.md").read_text(encoding="utf-8")
    block = grants.split("```sql", 1)[1].split("```", 1)[0].replace("avsup_app", role)
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        for stmt in [s for s in block.split(";") if s.strip()]:
            conn.exec_driver_sql(stmt.replace("'change-me'", "'pw'"))
    app_url = pg_url.replace("postgres@", f"{role}:pw@")
    app = make_engine(app_url)
    try:
        audit.record(app, Actor(), "cases", "view_case", "CASE-7", "评查")
        for stmt in ("UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(sa.exc.DBAPIError), app.begin() as conn:
                conn.exec_driver_sql(stmt)
        assert audit.verify(app).ok
    finally:
        app.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()
