"""Threats through data and filters: SQL injection, XSS from source text, formula injection, path traversal, and
the unit scope of exports."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
from helpers import F, logged_in, open_page

from dashboard import exports, queries
from etl.warehouse.scope import ScopeError

PAYLOADS = [
    "' OR '1'='1",
    "x'; DROP TABLE cases; --",
    "%' UNION SELECT name, sql, 1, 1, 1, 1, 1, 1 FROM sqlite_master --",
    '" OR 1=1 --',
    "\\' OR 1=1 --",
]


def _station_scope(url: str) -> tuple[str, ...]:
    return queries.effective_units(url, None, F.code("A1"))


def _foreign(text: str) -> list[str]:
    return [m for m in F.foreign_markers("A1") if m in text]


@pytest.mark.parametrize("evil", PAYLOADS)
def test_sql_through_every_filter(wh, evil):
    """Every text a user can type or a URL can carry reaches SQL as a bound value: no error, no extra rows."""
    url, scope = wh.url, _station_scope(wh.url)
    period = "2026-07"
    outputs = [
        queries.search_cases(url, scope, None, evil),
        queries.case_detail(url, scope, evil)["case"]
        if "case" in queries.case_detail(url, scope, evil)
        else pd.DataFrame(),
        queries.access_records(url, scope, None, period, user_no=evil, action=evil),
        queries.access_detail(url, scope, evil),
        queries.devices(url, scope, None, period, kind=evil, status=evil),
        queries.device_history(url, scope, evil),
        queries.review_queue(url, scope, None, period, rule=evil, state=evil, appeal_state=evil),
        queries.excused_events(url, scope, None, period, state=evil),
        queries.findings_list(url, scope, None, period, (evil,)),
        queries.audit_rows(url, "legal", evil, evil),
    ]
    for value in queries.event_detail(url, scope, evil).values():
        outputs.append(value)
    for out in outputs:
        assert isinstance(out, pd.DataFrame)
        assert out.empty or not _foreign(out.to_csv())
    assert not queries.search_cases(url, scope, None, evil).shape[0]
    for bad_unit in (evil, F.code("B1")):
        with pytest.raises(ScopeError):
            queries.effective_units(url, scope, bad_unit)
    with pytest.raises(ValueError):
        queries.events(url, scope, None, evil)  # a period is parsed, never pasted into SQL
    eng = sa.create_engine(url)
    with eng.connect() as c:
        assert c.exec_driver_sql("SELECT COUNT(*) FROM cases").scalar() > 0  # nothing dropped
    eng.dispose()


def test_xss_through_source_text_stays_text_in_every_element(wh):
    """The case title and a finding detail are `<img src=x onerror=alert(1)>`: they must reach the browser
    as text only (st.text / dataframe cells), never markdown or HTML, and the charts' strings never hold it."""
    at = open_page(logged_in("station"), "cases")
    assert F.XSS in list(at.dataframe[0].value["案由"])  # the payload is on the page: the checks below can fail
    [s for s in at.selectbox if s.key == "case_no"][0].set_value("CASE-A1-001").run()
    at.text_input(key="reason_text_case").input("检查")
    [b for b in at.button if b.label == "确认"][0].click().run()
    assert any(F.XSS in t.value for t in at.text)
    for page in ("cases", "overview", "coverage", "equipment", "access", "integrity", "assessment"):
        open_page(at, page)
        for md in (*at.markdown, *at.caption, *at.get("html")):
            assert "<img" not in str(getattr(md, "value", "") or getattr(md, "proto", "")), page
        for chart in at.get("plotly_chart"):
            assert "<img" not in json.dumps(json.loads(chart.proto.spec), ensure_ascii=False), page


@pytest.mark.parametrize("cell", ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1+1"])
def test_formula_injection_is_neutralised(cell):
    data = exports.to_xlsx(pd.DataFrame({"设备": [cell], "n": [1]}))
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    value = ws["A2"]
    assert value.data_type != "f" and not str(value.value).startswith(("=", "+", "-", "@"))


@pytest.mark.parametrize("rel", ["../secret.webm", "../../etc/passwd", "/etc/passwd", "a/../../secret.webm"])
def test_media_path_traversal(tmp_path, rel):
    from etl.warehouse import media
    from etl.warehouse.db import make_engine
    from etl.warehouse.schema import ensure_schema

    root = tmp_path / "media"
    root.mkdir()
    (tmp_path / "secret.webm").write_bytes(b"secret")
    eng = make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with eng.begin() as conn:
        ensure_schema(conn)
        conn.execute(sa.text("INSERT INTO clips (clip_id, device_sn, file_path) VALUES ('X1', 'D1', :p)"), {"p": rel})
        path, why = media.clip_file(conn, "X1", media_root=root)
    eng.dispose()
    assert path is None and why


def test_exports_refuse_units_outside_the_scope(wh):
    scope = _station_scope(wh.url)
    for unit in (F.code("B1"), F.code("A0"), None):
        if unit is None:
            continue
        with pytest.raises(ScopeError):
            exports.assessment_workbook(wh.url, "2026-07", unit, "station", scope, None, True)
        with pytest.raises(ScopeError):
            queries.device_ledger(wh.url, scope, unit, "2026-07")
    ledger, _ = queries.device_ledger(wh.url, scope, None, "2026-07")
    assert not ledger.empty and not _foreign(ledger.to_csv())
