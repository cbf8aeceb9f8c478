"""Pages whose work must not grow with the warehouse (issue 18, part 4), continued: 调阅审计 (the access records
and the per-user summary, narrowed by the county key ``access_log.county_code``) and 现场记录 (the unit × month
heatmap, counted per unit and month before its units are named).  Each query is checked against the computation it replaced, on SQLite
and PostgreSQL, with and without their indexes (an older warehouse lacks them), on warehouses with and without the
county key."""

from __future__ import annotations

from datetime import datetime, timedelta

import dashboard_fixtures as F
import pandas as pd
import pytest
import streamlit as st

from dashboard import queries
from etl.warehouse import distribution
from etl.warehouse.db import bulk_insert, make_engine

# (scope, unit chosen): the whole city, the city's top unit (the page's default for the city roles), a county
# bureau's own scope, a county's station chosen by the county, a station's own scope, a county chosen in the city
CASES = {
    "city": (None, None),
    "city-top": (None, F.code("C0")),
    "county": (tuple(F.code(t) for t in ("A0", "A1", "A2")), None),
    "county-station": (tuple(F.code(t) for t in ("A0", "A1", "A2")), F.code("A2")),
    "station": ((F.code("A1"),), None),
    "city-county": (None, F.code("B0")),
}
PERIODS = ("2026-07", "2026-06", "2026-08", "2026-Q3", "2026", "2025")
ACCESS_INDEXES = (  # as etl.warehouse.schema makes them (issue 18, part 4): same SQL, other plans; dropped to test without
    "CREATE INDEX ix_access_log_at_log_id ON access_log (at, log_id)",
    "CREATE INDEX ix_access_log_county_code_at_log_id ON access_log (county_code, at, log_id)",
)


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _ts(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S")


def _more_rows(url: str) -> None:
    """Beyond the fixture: access records of every data unit over months and their edges (equal times included),
    by several users and actions; on-site events over the months of 2026 and the edges of the year (one without a
    status, one of a unit not in the tree, one without a unit); an access record of a clip not in the warehouse
    and one of a clip whose device is not (both dropped by the join: their county is ``unowned``)."""
    access, events, clips = [], [], []
    times = [
        datetime(2025, 12, 31, 23, 59, 59),
        datetime(2026, 6, 30, 23, 59, 59),
        datetime(2026, 7, 1),
        datetime(2026, 7, 15, 12),
        datetime(2026, 7, 15, 12),  # the same second again: the list's order must not depend on the plan
        datetime(2026, 7, 31, 23, 59, 59),
        datetime(2026, 8, 1),
    ]
    actions = ("view", "copy", "download", "external", "delete")
    for tag in F.DATA_UNITS:
        for j, at in enumerate(times):
            for k in range(3):
                access.append(
                    {
                        "log_id": f"LX-{tag}-{j}-{k}",
                        "clip_id": f"CLIP-{tag}-{1 + k % 2:03d}",
                        "action": actions[(j + k) % len(actions)],
                        "user_no": f"U{k}-0{1 + j % 2}",
                        "at": _ts(at),
                        "reason": "复核",
                    }
                )
        for m in range(1, 13):
            for n, status in enumerate(("full", "partial", "excused", "none", "full")[: 1 + m % 5]):
                arrived = datetime(2026, m, 1) + timedelta(days=n, hours=n)
                events.append(
                    {
                        "incident_no": f"EX-{tag}-{m:02d}-{n}",
                        "unit_code": F.code(tag),
                        "arrived_at": _ts(arrived),
                        "ended_at": _ts(arrived + timedelta(minutes=30)),
                        "status": status,
                    }
                )
    edges = [
        ("EX-EDGE-1", F.code("A1"), datetime(2025, 12, 31, 23, 59, 59), "full"),
        ("EX-EDGE-2", F.code("A1"), datetime(2026, 12, 31, 23, 59, 59), "partial"),
        ("EX-EDGE-3", F.code("B1"), datetime(2027, 1, 1), "full"),
        ("EX-NOSTATUS", F.code("A2"), datetime(2026, 7, 2), None),
        ("EX-NOUNIT", None, datetime(2026, 7, 3), "full"),
        ("EX-GONE", "140499990000", datetime(2026, 7, 4), "none"),
    ]
    for no, unit, arrived, status in edges:
        events.append(
            {
                "incident_no": no,
                "unit_code": unit,
                "arrived_at": _ts(arrived),
                "ended_at": _ts(arrived),
                "status": status,
            }
        )
    when = datetime(2026, 7, 20, 8)
    clips.append(  # a clip of a device the warehouse does not know
        {
            "clip_id": "CLIP-NODEV",
            "device_sn": "DEV-UNKNOWN",
            "started_at": _ts(when),
            "ended_at": _ts(when + timedelta(minutes=5)),
            "updated_at": _ts(when),
        }
    )
    for log_id, clip in (("LX-NOCLIP", "CLIP-ABSENT"), ("LX-NODEV", "CLIP-NODEV")):
        access.append({"log_id": log_id, "clip_id": clip, "action": "view", "user_no": "U0-01", "at": _ts(when)})
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            bulk_insert(conn, "access_log", pd.DataFrame(access))
            bulk_insert(conn, "event_coverage", pd.DataFrame(events))
            bulk_insert(conn, "clips", pd.DataFrame(clips))
    finally:
        engine.dispose()


def _key(url: str) -> None:
    """The county key as the ETL keeps it (``distribution.backfill``: what a run does to a warehouse written
    without it); then two access rows written before the key (NULL) and one whose key says ``unowned`` though its
    clip's device is known now: both told apart by the join."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            distribution.backfill(conn)
            conn.exec_driver_sql("UPDATE access_log SET county_code = NULL WHERE log_id IN ('LX-A1-3-0', 'LX-B1-2-1')")
            conn.exec_driver_sql(
                f"UPDATE access_log SET county_code = '{distribution.UNOWNED}' WHERE log_id = 'LX-A2-3-2'"
            )
    finally:
        engine.dispose()


def _indexes(url: str, on: bool) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for sql in ACCESS_INDEXES:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {sql.split()[2]}")
                if on:
                    conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@pytest.fixture
def wh(warehouse, tmp_path):
    w = F.build(tmp_path / "wh", None if warehouse.startswith("sqlite") else warehouse)
    _more_rows(w.url)
    yield w
    queries.engine(w.url).dispose()


# --- the queries as they were -------------------------------------------------------------------------------

_JOINED = "access_log a JOIN clips c ON c.clip_id = a.clip_id JOIN devices d ON d.device_sn = c.device_sn"


def _old_where(url: str, eff, period: str, user_no=None, action=None) -> tuple[str, dict]:
    p = queries._period_params(url, period)
    conds = [queries._in("d.unit_code", "units", eff), "a.at >= :p_start", "a.at < :p_end"]
    params = {**queries._scope_params(eff), "p_start": p["p_start"], "p_end": p["p_end"]}
    queries._equal_filters(conds, params, {"a.user_no": ("user_no", user_no), "a.action": ("action", action)})
    return " AND ".join(conds), params


def _old_summary(url: str, scope, unit, period: str) -> pd.DataFrame:
    """Every access row of the period looked up in the clips and devices, then the unit scope."""
    where, params = _old_where(url, queries.effective_units(url, scope, unit), period)
    return queries._df(
        url,
        f"""SELECT a.user_no, a.action, COUNT(*) AS actions FROM {_JOINED} WHERE {where}
            GROUP BY a.user_no, a.action ORDER BY a.user_no, a.action LIMIT 5000""",
        **params,
    )


def _old_records(url: str, scope, unit, period: str, user_no=None, action=None) -> pd.DataFrame:
    """As before, with the order of equal times fixed (newest first, then by record id)."""
    where, params = _old_where(url, queries.effective_units(url, scope, unit), period, user_no, action)
    return queries._df(
        url,
        f"""SELECT a.log_id, a.clip_id, d.unit_code, a.action, a.user_no, a.at, a.reason, a.approver_no, a.recipient
            FROM {_JOINED} WHERE {where} ORDER BY a.at DESC, a.log_id DESC LIMIT 500""",
        **params,
    )


def _old_heatmap(url: str, scope, unit, period: str) -> pd.DataFrame:
    eff = queries.effective_units(url, scope, unit)
    p = queries._period_params(url, period)
    m = queries._month(url, "e.arrived_at")
    return queries._df(
        url,
        f"""
        SELECT e.unit_code, o.name AS unit_name, {m} AS month, COUNT(*) AS events,
               SUM(CASE WHEN e.status IN ('full', 'excused') THEN 1 ELSE 0 END) AS ok
        FROM event_coverage e LEFT JOIN org_units o ON o.unit_code = e.unit_code
        WHERE {queries._in("e.unit_code", "units", eff)} AND e.arrived_at >= :p_start AND e.arrived_at < :p_end
        GROUP BY e.unit_code, o.name, {m} ORDER BY e.unit_code, month""",
        **queries._scope_params(eff),
        p_start=p["p_start"],
        p_end=p["p_end"],
    )


def _same(got: pd.DataFrame, want: pd.DataFrame, *context) -> None:
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), obj=str(context))


# --- the tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("indexed", [False, True], ids=["scanned", "indexed"])
@pytest.mark.parametrize("keyed", [False, True], ids=["no-key", "county-key"])
@pytest.mark.parametrize("case", CASES)
def test_access_audit_equals_looking_every_row_up(wh, case, keyed, indexed):
    """The per-user summary and the records list: the same rows as looking every access row of the period up in
    the clips and devices, for every scope and unit choice, period (edges included), filter and limit; with the
    county key (rows without one, or of no county, told apart by the join) and without it (an older warehouse)."""
    if keyed:
        _key(wh.url)
    _indexes(wh.url, indexed)
    scope, unit = CASES[case]
    assert (queries._county_keys(wh.url, "access_log") is not None) is keyed
    for period in PERIODS:
        _same(queries.access_summary(wh.url, scope, unit, period), _old_summary(wh.url, scope, unit, period), case)
        for user_no, action in ((None, None), ("U0-01", None), (None, "view"), ("U1-02", "copy")):
            want = _old_records(wh.url, scope, unit, period, user_no, action)
            got = queries.access_records(wh.url, scope, unit, period, user_no, action)
            assert got["findings"].notna().all()
            _same(got.drop(columns="findings"), want, case, period, user_no, action)
        for limit in (1, 4):
            want = _old_records(wh.url, scope, unit, period).head(limit)
            _same(queries.access_records(wh.url, scope, unit, period, limit=limit).drop(columns="findings"), want)
    july = queries.access_summary(wh.url, scope, unit, "2026-07")
    assert july["actions"].sum() > 0
    # the rows without a key or of no county whose clip's device is known are there; those whose clip or device
    # is unknown are not
    listed = set(queries.access_records(wh.url, None, None, "2026-07")["log_id"])
    assert {"LX-A1-3-0", "LX-B1-2-1", "LX-A2-3-2"} <= listed
    assert not {"LX-NOCLIP", "LX-NODEV"} & listed


def test_summary_of_whole_counties_looks_no_clip_up(wh, monkeypatch):
    """A scope that covers its counties whole (a county bureau, the whole city) counts its rows by the county key
    alone; only a county split by the scope (a station chosen) and rows without a key join the clips."""
    _key(wh.url)
    sent: list[str] = []
    real = queries._df

    def spy(url, sql, *a, **kw):
        sent.append(sql)
        return real(url, sql, *a, **kw)

    monkeypatch.setattr(queries, "_df", spy)
    keys = queries._county_keys(wh.url, "access_log")
    county = CASES["county"][0]
    assert queries._county_split(keys, county) == ((F.code("A0"),), ())
    assert queries._county_split(keys, (F.code("A1"),)) == ((), (F.code("A0"),))
    assert queries._county_split(keys, tuple(F.code(t) for t in F.UNITS)) == (
        tuple(sorted(F.code(t) for t in ("C0", "A0", "B0"))),
        (),
    )
    queries.access_summary(wh.url, county, None, "2026-07")
    keyed, joined = sent[-1].split("UNION ALL")
    assert "clips" not in keyed and "county_code IN" in keyed
    assert "county_code IN" not in joined and "IS NULL" in joined  # the county is whole: only unkeyed rows join


def test_a_row_whose_device_left_the_ledger_counts_by_its_key(wh):
    """The one difference from looking every row up, kept by the summary's docstring: an access row whose clip's
    device was deleted from the device ledger after the row was written still counts in its county (its key);
    the records list, joined, leaves it out as before."""
    _key(wh.url)
    engine = make_engine(wh.url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM device_assignments WHERE device_sn = 'DEV-B1-01'")
            conn.exec_driver_sql("DELETE FROM devices WHERE device_sn = 'DEV-B1-01'")
    finally:
        engine.dispose()
    b0 = (F.code("B0"), F.code("B1"))
    got = queries.access_summary(wh.url, b0, None, "2026-07")["actions"].sum()
    want = _old_summary(wh.url, b0, None, "2026-07")["actions"].sum()
    gone = queries._df(
        wh.url,
        "SELECT COUNT(*) AS n FROM access_log a JOIN clips c ON c.clip_id = a.clip_id "
        "WHERE c.device_sn = 'DEV-B1-01' AND a.at >= :p_start AND a.at < :p_end AND a.county_code = :b0",
        **{k: v for k, v in queries._period_params(wh.url, "2026-07").items() if k != "months"},
        b0=F.code("B0"),
    )["n"].iloc[0]
    assert gone > 0 and got == want + gone
    assert queries.access_records(wh.url, b0, None, "2026-07")["unit_code"].notna().all()
    _same(
        queries.access_records(wh.url, b0, None, "2026-07").drop(columns="findings"),
        _old_records(wh.url, b0, None, "2026-07"),
    )


@pytest.mark.parametrize("case", CASES)
def test_heatmap_equals_grouping_every_event_with_its_unit_name(wh, case):
    """Events and fully recorded ones per unit and month: counted first and named afterwards, the same rows and
    types as grouping every event beside its unit's name (edges of the year, an event without a status, one of a
    unit not in the tree and one without a unit included)."""
    scope, unit = CASES[case]
    for year in ("2026", "2025", "2027", "2024"):
        want = _old_heatmap(wh.url, scope, unit, year)
        got = queries.coverage_by_unit_month(wh.url, scope, unit, year)
        _same(got, want, case, year)
    whole = queries.coverage_by_unit_month(wh.url, None, None, "2026")
    if case == "city":
        assert whole["unit_code"].isna().sum() == 1 and "140499990000" in set(whole["unit_code"])
        assert whole["unit_name"].isna().sum() == 2
        assert whole["events"].sum() > whole["ok"].sum() > 0


@pytest.mark.parametrize("username", ["legal", "county", "station"])
def test_pages_on_a_keyed_warehouse(wh, username, monkeypatch):
    """调阅审计 and 现场记录 render on a warehouse with the county key, for the city, a county and a station: the
    per-user table holds the scope's accesses of the latest month and nothing of another unit shows."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    _key(wh.url)
    monkeypatch.setenv("WAREHOUSE_URL", wh.url)
    root = Path(__file__).resolve().parent.parent
    at = AppTest.from_file(str(root / "dashboard" / "app.py"), default_timeout=60)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = F.USERS[username][0]
    at.run()
    assert not at.exception, at.exception
    tag = F.USERS[username][2]
    scope = None if tag == "C0" else tuple(sorted(F.code(t) for t in F.SCOPES[tag]))
    for page in ("access", "coverage"):
        at.switch_page(str(root / "pages" / f"{page}.py")).run()
        assert not at.exception, (page, at.exception)
        text = "\n".join(df.value.to_csv() for df in at.dataframe)
        if scope is not None:
            assert not [m for m in F.foreign_markers(tag) if m in text], page
        if page == "access":
            period = queries.available_periods(wh.url)["month"][0]
            want = _old_summary(wh.url, scope, queries.scope_root(wh.url, scope), period)
            pivot = at.dataframe[1].value
            assert pivot.drop(columns=pivot.columns[0]).to_numpy().sum() == want["actions"].sum() > 0
