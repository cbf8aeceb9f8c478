"""Pages whose work must not grow with the warehouse (issue 18, part 4): 数据 (rows per table), 案件检查 (the case
search) and 设备台账 (the device list).  Each bounded query is checked against the whole-table computation it
replaced, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import dashboard_fixtures as F
import pandas as pd
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard import queries
from etl.warehouse import clip_days
from etl.warehouse.db import bulk_insert, make_engine

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
SCOPES = {"city": None, "county": tuple(F.code(t) for t in ("A0", "A1", "A2")), "station": (F.code("A1"),)}


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _ts(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S")


def _more_rows(url: str) -> None:
    """Beyond the fixture: 25 cases per data unit (equal registration times included), their findings (one of
    another unit, one exempted), and clips on the edges of July; then ``clip_days`` as the ETL keeps it."""
    cases, findings, clips = [], [], []
    for tag in F.DATA_UNITS:
        for n in range(25):
            case_no = f"CX-{tag}-{n:03d}"
            when = _ts(datetime(2026, 7, 1, 8) + timedelta(hours=n // 2))  # two cases per registration time
            title = "盗窃" if n % 3 == 0 else "纠纷"
            cases.append(
                {
                    "case_no": case_no,
                    "unit_code": F.code(tag),
                    "title": title,
                    "registered_at": when,
                    "updated_at": when,
                }
            )
            for k in range(n % 4):  # 0-3 findings per case; A1's third one is B1's (another county)
                owner = F.code("B1" if (tag == "A1" and k == 2) else tag)
                findings.append(
                    {
                        "finding_key": f"DOC-MISSING:{case_no}:{k}",
                        "rule_id": "DOC-MISSING",
                        "article": "第十三条",
                        "unit_code": owner,
                        "case_no": case_no,
                        "occurred_at": when,
                        "month": "2026-07",
                        "detail": "缺少文书",
                    }
                )
        edges = (datetime(2026, 6, 30, 23, 59, 59), datetime(2026, 7, 1), datetime(2026, 7, 31, 23, 59, 59))
        for d, start in enumerate((*edges, datetime(2026, 8, 1))):
            for j in range(d + 1):
                clip = f"CX-{tag}-{d}-{j}"
                clips.append(
                    {
                        "clip_id": clip,
                        "device_sn": f"DEV-{tag}-0{1 + j % 3}",
                        "started_at": _ts(start),
                        "ended_at": _ts(start + timedelta(minutes=5)),
                        "size_bytes": 1,
                        "sha256": "0" * 64,
                        "imported_at": _ts(start + timedelta(hours=1)),
                        "file_path": f"media/{clip}.mp4",
                        "is_evidence": 0,
                        "updated_at": _ts(start),
                    }
                )
    exempted = "DOC-MISSING:CX-A1-003:1"
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            bulk_insert(conn, "cases", pd.DataFrame(cases))
            bulk_insert(conn, "findings", pd.DataFrame(findings))
            bulk_insert(conn, "clips", pd.DataFrame(clips))
            bulk_insert(
                conn,
                "sup_finding_state",
                pd.DataFrame([{"finding_key": exempted, "state": "exempted", "version": 1, "reason": "数据错误"}]),
            )
            clip_days.rebuild(conn)
    finally:
        engine.dispose()


@pytest.fixture
def wh(warehouse, tmp_path):
    w = F.build(tmp_path / "wh", None if warehouse.startswith("sqlite") else warehouse)
    _more_rows(w.url)
    yield w
    queries.engine(w.url).dispose()


def _all_cases(url: str, scope, text: str = "", only: bool = False) -> pd.DataFrame:
    """The case search as it was: every case in scope with the count of all its findings, then the newest."""
    eff = queries.effective_units(url, scope, None)
    like = f"%{text}%" if text else "%"
    having = "AND f.n > 0" if only else ""
    return queries._df(
        url,
        f"""
        SELECT c.case_no, c.unit_code, c.title, c.procedure, c.registered_at, COALESCE(f.n, 0) AS findings
        FROM cases c LEFT JOIN (
            SELECT case_no, COUNT(*) AS n FROM v_findings
            WHERE case_no IS NOT NULL AND review_state <> 'exempted' AND {queries._in("unit_code", "units", eff)}
            GROUP BY case_no) f ON f.case_no = c.case_no
        WHERE {queries._in("c.unit_code", "units", eff)} AND (c.case_no LIKE :q OR c.title LIKE :q) {having}
        ORDER BY c.registered_at DESC, c.case_no DESC""",
        **queries._scope_params(eff),
        q=like,
    )


def _all_devices(url: str, scope, period: str) -> pd.DataFrame:
    """The device list as it was: the clips of every device in scope counted from the clip mirror."""
    eff = queries.effective_units(url, scope, None)
    p = queries._period_params(url, period)
    return queries._df(
        url,
        f"""
        SELECT d.device_sn, d.unit_code, d.kind, d.model, d.status, d.status_since, h.police_no AS holder,
               COALESCE(u.clips, 0) AS clips
        FROM devices d
        LEFT JOIN device_assignments h ON h.device_sn = d.device_sn AND h.to_at IS NULL
        LEFT JOIN (SELECT c.device_sn, COUNT(*) AS clips FROM clips c
                   WHERE c.started_at >= :p_start AND c.started_at < :p_end GROUP BY c.device_sn) u
               ON u.device_sn = d.device_sn
        WHERE {queries._in("d.unit_code", "units", eff)} ORDER BY d.unit_code, d.device_sn""",
        parse_dates=("status_since",),
        **queries._scope_params(eff),
        p_start=p["p_start"],
        p_end=p["p_end"],
    )


CASE_INDEXES = (  # what the case search probes by (etl.warehouse.schema adds them; older warehouses lack them)
    "CREATE INDEX ix_cases_registered_at_case_no ON cases (registered_at, case_no)",
    "CREATE INDEX ix_cases_unit_code_registered_at ON cases (unit_code, registered_at)",
    "CREATE INDEX ix_findings_case_no ON findings (case_no) WHERE case_no IS NOT NULL",
    "CREATE INDEX ix_excused_findings_case_no ON excused_findings (case_no) WHERE case_no IS NOT NULL",
)


def _add_case_indexes(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            existing = {
                ix["name"] for t in ("cases", "findings", "excused_findings") for ix in sa.inspect(conn).get_indexes(t)
            }
            for sql in CASE_INDEXES:
                if sql.split()[2] not in existing:
                    conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _drop_case_indexes(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for sql in CASE_INDEXES:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {sql.split()[2]}")
    finally:
        engine.dispose()


@pytest.mark.parametrize("indexed", [False, True], ids=["one-pass", "probed"])
@pytest.mark.parametrize("scope", SCOPES)
def test_case_search_equals_the_whole_count(wh, scope, indexed):
    """The newest cases with their findings' counts (in scope, exempted ones left out), whatever the page size,
    text or filter: the same rows as counting every case's findings first; with the indexes (cases probed newest
    first) and without them (one pass over the findings)."""
    if indexed:
        _add_case_indexes(wh.url)
    else:  # a warehouse the current ETL has not run on yet
        _drop_case_indexes(wh.url)
    assert queries._case_indexes(wh.url) is indexed
    units = SCOPES[scope]
    for text in ("", "盗窃", "CX-A1", "无此案"):
        for only in (False, True):
            full = _all_cases(wh.url, units, text, only)
            for limit in (1, 7, 200):
                got = queries.search_cases(wh.url, units, None, text, only, limit=limit)
                want = full.head(limit).reset_index(drop=True)
                assert list(got.columns) == list(want.columns)
                if want.empty:
                    assert got.empty
                    continue
                assert got["case_no"].tolist() == want["case_no"].tolist(), (scope, text, only, limit)
                assert got["findings"].tolist() == want["findings"].astype("int64").tolist(), (scope, text, only)
    # CX-A1-003 has three findings: one exempted, one of B1's (counted city-wide only)
    for scope, n in (("city", 2), ("county", 1), ("station", 1)):
        found = queries.search_cases(wh.url, SCOPES[scope], None, "CX-A1-003")
        assert found["findings"].tolist() == [n], scope


@pytest.mark.parametrize("scope", SCOPES)
def test_device_clips_are_the_etls_day_counts_of_the_period(wh, scope):
    """Clips per device in a period from ``clip_days``: equal to counting the clip mirror, edges of the period
    included; the page's limit picks the first devices in unit and device order."""
    units = SCOPES[scope]
    for period in ("2026-07", "2026-06", "2026-Q3", "2026"):
        want = _all_devices(wh.url, units, period)
        got = queries.devices(wh.url, units, None, period)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.astype({"clips": "int64"}), check_dtype=False)
        assert got["clips"].dtype == "int64"
        assert got["clips"].sum() > 0
        first = queries.devices(wh.url, units, None, period, limit=4)
        assert first["device_sn"].tolist() == want["device_sn"].head(4).tolist()
        assert first["clips"].tolist() == want["clips"].head(4).tolist()
    july = queries.devices(wh.url, None, None, "2026-07", kind="bodycam", status="in_use")
    assert set(july["status"]) == {"in_use"} and set(july["kind"]) == {"bodycam"}


def test_rows_per_table_on_sqlite_are_exact(tmp_path):
    w = F.build(tmp_path)
    got = queries.table_rows(w.url)
    assert not got["estimated"].any()
    with sa.create_engine(w.url).connect() as c:
        for name, n in zip(got["table_name"], got["rows"], strict=True):
            assert n == c.exec_driver_sql(f"SELECT COUNT(*) FROM {name}").scalar(), name


@pytest.mark.postgres
def test_rows_per_table_on_postgresql_estimate_the_large_ones(tmp_path, pg_url, monkeypatch):
    """PostgreSQL: tables above the size bound are the planner's estimate (after ANALYZE: exact on tables this
    small) and marked; the others counted.  The data page shows the estimates with 约."""
    w = F.build(tmp_path, pg_url)
    try:
        with sa.create_engine(pg_url, isolation_level="AUTOCOMMIT").connect() as c:
            c.exec_driver_sql("ANALYZE")
            exact = {n: c.exec_driver_sql(f"SELECT COUNT(*) FROM {n}").scalar() for n in queries.COUNTED_TABLES}
        counted = queries.table_rows(w.url)
        assert not counted["estimated"].any()  # every table of the fixture is small
        assert dict(zip(counted["table_name"], counted["rows"], strict=True)) == exact

        monkeypatch.setattr(queries, "EXACT_COUNT_BYTES", 0)
        st.cache_data.clear()
        estimated = queries.table_rows(w.url)
        assert dict(zip(estimated["table_name"], estimated["rows"], strict=True)) == exact
        flags = dict(zip(estimated["table_name"], estimated["estimated"], strict=True))
        assert flags["clips"] and flags["findings"] and flags["cases"]

        monkeypatch.setenv("WAREHOUSE_URL", w.url)
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["authentication_status"] = True
        at.session_state["username"] = "it"  # lands on the data page
        at.session_state["name"] = F.USERS["it"][0]
        at.run()
        assert not at.exception and at.title[0].value == "数据"
        shown = next(df.value for df in at.dataframe if "表" in df.value.columns)
        row = dict(zip(shown["表"], shown["行数"], strict=True))
        assert row["clips"] == f"约 {exact['clips']:,}"
        assert any(c.value.startswith("约：") for c in at.caption)
    finally:
        queries.engine(w.url).dispose()


@pytest.mark.postgres
def test_row_estimates_of_partitioned_and_unanalysed_tables(pg_url, monkeypatch):
    """A partitioned table: the sum over its partitions; a table never analysed: its live-row count, or left out
    (then counted) when there is none."""
    monkeypatch.setattr(queries, "EXACT_COUNT_BYTES", 0)
    with sa.create_engine(pg_url, isolation_level="AUTOCOMMIT").connect() as c:
        c.exec_driver_sql("CREATE TABLE parted (k int) PARTITION BY RANGE (k)")
        c.exec_driver_sql("CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (500)")
        c.exec_driver_sql("CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (500) TO (1000)")
        c.exec_driver_sql("INSERT INTO parted SELECT g FROM generate_series(0, 899) g")
        c.exec_driver_sql("ANALYZE parted")
        c.exec_driver_sql("CREATE TABLE fresh (k int)")
        c.exec_driver_sql("INSERT INTO fresh SELECT g FROM generate_series(1, 300) g")
    try:
        got = queries._pg_row_estimates(pg_url, ["parted", "fresh", "absent"])
        assert got["parted"] == 900
        assert got.get("fresh", 300) == 300  # from pg_stat_user_tables once the insert's statistics are flushed
        assert "absent" not in got
    finally:
        queries.engine(pg_url).dispose()


@pytest.mark.postgres
def test_dashboard_sessions_on_postgresql_run_without_jit(pg_url):
    """Compiling the pages' bounded queries cost more than running them (the case search's probe: 0.3 s of 0.31 s)."""
    try:
        for _ in range(2):  # a new connection, then one back from the pool
            assert queries._df(pg_url, "SELECT current_setting('jit') AS jit")["jit"].iloc[0] == "off"
        with queries.engine(pg_url).begin() as conn:  # the supervision writes' transactions too
            assert conn.exec_driver_sql("SELECT current_setting('jit')").scalar() == "off"
    finally:
        queries.engine(pg_url).dispose()
