"""The 整改 page (and the loop's metrics and 待办) under AppTest on a real ETL run of the small demo (a private copy
per test, today's date set by ``AVSUP_TODAY``).

The legal department issues notices (chosen findings, a period's open findings, a campaign's failures) with a
deadline, a text, an optional Art. 35 accountability recommendation and a reason; the unit administrator sees
its 待整改 with what is due and overdue and answers; the legal department returns or accepts; the 整改通知书 .docx
download asks for a reason and is audited; leaders read; a unit administrator cannot issue.  Empty reasons and
answers are refused with a Chinese message and write nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

from dashboard import queries
from dashboard import supervision as sup
from etl.errors import SupervisionError
from tests.page_helpers import button, logged_in, open_page, rows, successes, user

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
TODAY = date(2026, 12, 1)
STATION, COUNTY = "140403510000", "140403000000"  # the demo's `station` and `county` administrators' units
MONTH = "2026-11"


@pytest.fixture
def wh(fresh_sqlite, demo_sources, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", fresh_sqlite)
    monkeypatch.setenv("AVSUP_TODAY", TODAY.isoformat())
    monkeypatch.delenv("DASHBOARD_USERS_FILE", raising=False)
    users_file = demo_sources.parent / "users.yaml"
    st.cache_data.clear()
    yield {
        "url": fresh_sqlite,
        "users": yaml.safe_load(users_file.read_text(encoding="utf-8"))["users"],
        "users_file": users_file,
    }
    st.cache_data.clear()


def station_findings(url: str, n: int = 2) -> list[str]:
    keys = rows(
        url,
        "SELECT finding_key FROM v_findings WHERE unit_code = :u AND month = :m AND review_state <> 'exempted' "
        "ORDER BY finding_key LIMIT :n",
        u=STATION,
        m=MONTH,
        n=n,
    )
    assert len(keys) == n
    return [k for (k,) in keys]


def issued(wh, keys: list[str] | None = None, deadline: date | None = None) -> int:
    """A notice to the station (via the same function the page calls); its id."""
    keys = keys or station_findings(wh["url"])
    return sup.issue_notice(
        wh["url"],
        user(wh, "legal"),
        STATION,
        finding_keys=keys,
        deadline=deadline,
        text="请整改",
        accountability=None,
        reason="督察发现问题",
    )["notice_id"]


def pick_findings_form(at: AppTest, unit: str = STATION) -> AppTest:
    at.radio(key="notice_basis").set_value("findings").run()
    at.selectbox(key="notice_unit").set_value(unit).run()
    at.radio(key="notice_period_kind").set_value("month").run()
    at.selectbox(key="notice_period_month").set_value(MONTH).run()
    assert not at.exception, at.exception
    return at


def test_legal_issues_a_notice_for_chosen_findings_reason_first(wh):
    url = wh["url"]
    keys = station_findings(url)
    at = pick_findings_form(open_page(logged_in(wh, "legal"), "rectification"))
    assert at.date_input(key="deadline").value == TODAY + timedelta(days=15)  # today + rectify_days
    at.multiselect(key="notice_keys").set_value(keys)
    officer = rows(url, "SELECT police_no FROM officers WHERE unit_code = :u ORDER BY police_no", u=STATION)[0][0]
    at.multiselect(key="notice_officers").set_value([officer])
    at.selectbox(key="notice_paragraph").set_value("2")
    button(at, "下发整改通知").click().run()
    assert "请填写事由" in [w.value for w in at.warning]
    assert rows(url, "SELECT COUNT(*) FROM sup_notices") == [(0,)]
    at.text_input(key="notice_reason").input("月度督察发现问题")
    button(at, "下发整改通知").click().run()
    assert not at.exception, at.exception
    assert successes(at, "整改通知已下发"), [e.value for e in at.error]
    ((nid, unit, deadline, state, acc),) = rows(
        url, "SELECT notice_id, unit_code, deadline, state, accountability FROM sup_notices"
    )
    assert (unit, str(deadline)[:10], state) == (STATION, (TODAY + timedelta(days=15)).isoformat(), "open")
    assert officer in acc and "第三十五条" not in acc and "不制作或不按要求制作" in acc
    assert sorted(k for (k,) in rows(url, "SELECT finding_key FROM sup_notice_findings")) == sorted(keys)
    listed = next(d.value for d in at.dataframe if "通知编号" in d.value.columns)
    assert list(listed["通知编号"]) == [nid] and list(listed["状态"]) == ["待整改"]
    assert not set(keys) & set(at.dataframe[0].value["问题编号"])  # no longer offered: on a notice now
    assert rows(url, "SELECT username, page, action FROM audit_log WHERE action = 'rectify:issue'") == [
        ("legal", "rectification", "rectify:issue")
    ]


def test_issue_from_a_period_and_from_a_campaign(wh):
    url = wh["url"]
    legal = user(wh, "legal")
    rules = rows(url, "SELECT DISTINCT rule_id FROM v_findings WHERE unit_code = :u AND month = :m", u=STATION, m=MONTH)
    at = open_page(logged_in(wh, "legal"), "rectification")
    at.radio(key="notice_basis").set_value("period").run()
    at.selectbox(key="notice_unit").set_value(STATION).run()
    at.radio(key="notice_period_kind").set_value("month").run()
    at.selectbox(key="notice_period_month").set_value(MONTH).run()
    at.multiselect(key="notice_rules").set_value([rules[0][0]]).run()
    at.text_input(key="notice_reason").input("按期间整改")
    button(at, "下发整改通知").click().run()
    assert successes(at, "整改通知已下发"), [e.value for e in at.error]
    expected = rows(
        url,
        "SELECT COUNT(*) FROM v_findings WHERE unit_code = :u AND month = :m AND rule_id = :r AND review_state <> 'exempted'",
        u=STATION,
        m=MONTH,
        r=rules[0][0],
    )[0][0]
    assert rows(url, "SELECT basis, findings FROM v_rectifications") == [("period", expected)]
    # a campaign's failures: draw, fail one item of the station, then issue from the campaign
    camp = sup.draw_campaign(
        url, legal, period=MONTH, kind="events", per_unit=1, seed=5, unit_code=STATION, reason="抽查"
    )
    key = rows(url, "SELECT object_key FROM sup_spotcheck_items WHERE campaign_id = :c", c=camp["campaign_id"])[0][0]
    sup.record_review(
        url,
        legal,
        camp["campaign_id"],
        key,
        points={"16.2": ("fail", "无全景")},
        note=None,
        reason="审查",
        version=None,
    )
    at = open_page(logged_in(wh, "legal"), "rectification")
    at.radio(key="notice_basis").set_value("campaign").run()
    at.selectbox(key="notice_unit").set_value(STATION).run()
    at.selectbox(key="notice_campaign").set_value(camp["campaign_id"]).run()
    at.text_input(key="notice_reason").input("抽查不合格整改")
    button(at, "下发整改通知").click().run()
    assert successes(at, "整改通知已下发"), [e.value for e in at.error]
    assert rows(
        url,
        "SELECT finding_key FROM sup_notice_findings nf JOIN sup_notices n ON n.notice_id = nf.notice_id "
        "WHERE n.basis = 'campaign'",
    ) == [(f"SPOT-CHECK:{key}:{camp['campaign_id']}",)]


def test_refusals_write_nothing(wh):
    url = wh["url"]
    legal, county = user(wh, "legal"), user(wh, "county")
    keys = station_findings(url)
    with pytest.raises(SupervisionError, match="早于下发日期"):
        sup.issue_notice(
            url,
            legal,
            STATION,
            finding_keys=keys,
            deadline=TODAY - timedelta(days=1),
            text="请整改",
            accountability=None,
            reason="督察",
        )
    other = rows(url, "SELECT finding_key FROM v_findings WHERE unit_code LIKE '140423%' ORDER BY finding_key")[0][0]
    with pytest.raises(SupervisionError, match="不属于单位"):
        sup.issue_notice(
            url, legal, STATION, finding_keys=[other], deadline=None, text="请整改", accountability=None, reason="督察"
        )
    with pytest.raises(SupervisionError):  # a unit administrator cannot issue
        sup.issue_notice(
            url, county, STATION, finding_keys=keys, deadline=None, text="请整改", accountability=None, reason="越权"
        )
    assert rows(url, "SELECT COUNT(*) FROM sup_notices") == [(0,)]
    nid = issued(wh, keys)
    with pytest.raises(SupervisionError, match="尚未答复"):
        sup.close_notice(url, legal, nid, "accept", note="通过", version=None)
    at = open_page(logged_in(wh, "county"), "rectification")
    assert not [b for b in at.button if b.label == "下发整改通知"] and "notice_reason" not in [
        t.key for t in at.text_input
    ]


def test_unit_admin_answers_legal_returns_then_accepts(wh):
    url = wh["url"]
    nid = issued(wh)
    at = open_page(logged_in(wh, "station"), "rectification")
    assert {m.label: m.value for m in at.metric if m.label in ("待整改", "已逾期")} == {"待整改": "1", "已逾期": "0"}
    at.selectbox(key="notice").set_value(nid).run()
    assert not at.exception, at.exception
    button(at, "提交整改反馈").click().run()
    assert "请填写整改措施" in [w.value for w in at.warning]
    assert rows(url, "SELECT state FROM sup_notices") == [("open",)]
    at.text_area(key="respond_text").input("已组织全所民警培训，补录说明")
    button(at, "提交整改反馈").click().run()
    assert successes(at, "整改反馈已提交"), [e.value for e in at.error]
    assert rows(url, "SELECT state FROM sup_notices") == [("responded",)]
    # the legal department returns it with a new deadline
    legal = open_page(logged_in(wh, "legal"), "rectification")
    legal.selectbox(key="notice").set_value(nid).run()
    legal.radio(key="recheck_verdict").set_value("return")
    button(legal, "提交复查").click().run()
    assert "请填写复查意见" in [w.value for w in legal.warning]
    legal.text_area(key="recheck_note").input("培训记录不全，请补充")
    legal.date_input(key="recheck_deadline").set_value(TODAY + timedelta(days=30))
    button(legal, "提交复查").click().run()
    assert successes(legal, "复查已保存"), [e.value for e in legal.error]
    assert rows(url, "SELECT state, deadline FROM sup_notices") == [
        ("returned", (TODAY + timedelta(days=30)).isoformat())
    ]
    # answered again, then accepted: closed on time
    at = open_page(logged_in(wh, "station"), "rectification")
    at.selectbox(key="notice").set_value(nid).run()
    at.text_area(key="respond_text").input("已补充培训签到表")
    button(at, "提交整改反馈").click().run()
    assert successes(at, "整改反馈已提交"), [e.value for e in at.error]
    legal = open_page(logged_in(wh, "legal"), "rectification")
    legal.selectbox(key="notice").set_value(nid).run()
    legal.radio(key="recheck_verdict").set_value("accept")
    legal.text_area(key="recheck_note").input("整改到位")
    button(legal, "提交复查").click().run()
    assert successes(legal, "复查已保存"), [e.value for e in legal.error]
    assert rows(url, "SELECT state, closed_by FROM sup_notices") == [("closed", "legal")]
    kinds = [k for (k,) in rows(url, "SELECT kind FROM sup_notice_events ORDER BY id")]
    assert kinds == ["issue", "respond", "return", "respond", "accept"]
    assert "该通知已办结" in [c.value for c in legal.caption]


def test_overdue_against_today_and_the_unit_inbox(wh, monkeypatch):
    nid = issued(wh, deadline=TODAY + timedelta(days=3))
    monkeypatch.setenv("AVSUP_TODAY", (TODAY + timedelta(days=4)).isoformat())
    st.cache_data.clear()
    at = open_page(logged_in(wh, "station"), "rectification")
    assert {m.label: m.value for m in at.metric if m.label in ("待整改", "已逾期")} == {"待整改": "1", "已逾期": "1"}
    table = at.dataframe[0].value.set_index("通知编号")
    assert table.loc[nid, "逾期"] == "是"
    todo = open_page(logged_in(wh, "station"), "todo")
    heads = [s.value for s in todo.subheader]
    assert "待整改通知（1）" in heads and "逾期整改通知（1）" in heads, heads
    assert any("rectification" in p.proto.page for p in todo.get("page_link"))
    monkeypatch.setenv("AVSUP_TODAY", (TODAY + timedelta(days=2)).isoformat())
    st.cache_data.clear()
    at = open_page(logged_in(wh, "station"), "rectification")
    assert at.dataframe[0].value.set_index("通知编号").loc[nid, "逾期"] == "否"


def test_notice_docx_download_asks_a_reason_and_is_audited(wh):
    url = wh["url"]
    nid = issued(wh)
    at = open_page(logged_in(wh, "legal"), "rectification")
    at.selectbox(key="notice").set_value(nid).run()
    assert not at.get("download_button")
    button(at, "确认").click().run()
    assert "请填写事由" in [w.value for w in at.warning] and not at.get("download_button")
    at.text_input(key=f"reason_text_docx_{nid}").input("打印盖章")
    button(at, "确认").click().run()
    assert not at.exception and not [e.value for e in at.error], [e.value for e in at.error]
    assert at.get("download_button")
    assert rows(url, "SELECT page, action, object, reason FROM audit_log WHERE action = 'export_notice'") == [
        ("rectification", "export_notice", str(nid), "打印盖章")
    ]
    from dashboard import exports

    assert exports.notice_docx(url, None, nid)[:2] == b"PK"  # a .docx (zip) package
    with pytest.raises(LookupError):  # outside the county's scope: refused
        exports.notice_docx(url, ("140423000000",), nid)


def test_leader_reads_notices_without_forms(wh):
    nid = issued(wh)
    at = open_page(logged_in(wh, "leader"), "rectification")
    assert not [b for b in at.button if b.label in ("下发整改通知", "提交复查", "提交整改反馈")]
    at.selectbox(key="notice").set_value(nid).run()
    assert not at.exception
    assert "只读：整改通知由法制部门下发和复查" in [c.value for c in at.caption]


def test_loop_metrics_on_overview_and_assessment(wh):
    url = wh["url"]
    legal = user(wh, "legal")
    nid = issued(wh, deadline=TODAY + timedelta(days=5))
    sup.respond_notice(url, user(wh, "station"), nid, text="已整改", version=None)
    sup.close_notice(url, legal, nid, "accept", note="通过", version=None)
    for page in ("overview", "assessment"):
        at = open_page(logged_in(wh, "legal"), page)
        labels = {m.label: m.value for m in at.metric}
        assert "抽查合格率" in labels and "整改按期完成率" in labels, (page, labels)
    rate = queries.loop_metrics(url, None, STATION, (TODAY + timedelta(days=5)).strftime("%Y-%m"), TODAY)
    assert rate["ontime"]["numerator"] == 1 and rate["ontime"]["denominator"] == 1
    # 抽查合格率: a failed review of the station's month counts at once (reviewed 1, passed 0)
    camp = sup.draw_campaign(
        url, legal, period=MONTH, kind="events", per_unit=1, seed=9, unit_code=STATION, reason="抽查"
    )
    key = rows(url, "SELECT object_key FROM sup_spotcheck_items")[0][0]
    sup.record_review(
        url, legal, camp["campaign_id"], key, points={"11": ("fail", None)}, note=None, reason="审查", version=None
    )
    rate = queries.loop_metrics(url, None, STATION, MONTH, TODAY)["spotcheck_pass_rate"]
    assert (rate["numerator"], rate["denominator"]) == (0, 1)
    at = open_page(logged_in(wh, "legal"), "overview")
    at.radio(key="period_kind").set_value("month").run()
    at.selectbox(key="period_month").set_value(MONTH).run()
    at.selectbox(key="unit").set_value(STATION).run()
    assert {m.label: m.value for m in at.metric}["抽查合格率"] == "0.0%"


@pytest.mark.postgres
def test_loop_reads_and_writes_on_postgresql(wh, demo_sources, pg_url):
    """The query layer and the writes of the loop pages on PostgreSQL: draw, record, issue, answer, close."""
    from dashboard import exports
    from tests.supervision_fixtures import load_pg

    url = load_pg(demo_sources, pg_url)
    legal, station = user(wh, "legal"), user(wh, "station")
    camp = sup.draw_campaign(
        url, legal, period=MONTH, kind="events", per_unit=2, seed=11, unit_code=STATION, reason="抽查"
    )
    cid = camp["campaign_id"]
    listed = queries.campaigns(url, None)
    assert list(listed["campaign_id"]) == [cid] and int(listed["drawn"].iloc[0]) == camp["drawn"]
    items = queries.campaign_items(url, station.scope, cid)
    key = items["object_key"].iloc[0]
    item = queries.spot_item(url, None, cid, key)
    assert item is not None and queries.spot_item(url, ("140423000000",), cid, key) is None
    sup.record_review(
        url,
        legal,
        cid,
        key,
        points={"16.2": ("fail", "无全景")},
        note=None,
        reason="审查",
        version=int(items["version"].iloc[0]),
    )
    st.cache_data.clear()
    assert queries.campaign_items(url, None, cid).set_index("object_key").loc[key, "verdict"] == "fail"
    cands = queries.notice_candidates(url, None, STATION, MONTH)
    assert f"SPOT-CHECK:{key}:{cid}" in set(cands["finding_key"])
    assert not queries.unit_officers(url, None, STATION).empty
    nid = sup.issue_notice(
        url, legal, STATION, campaign_id=cid, deadline=None, text="请整改", accountability=None, reason="抽查不合格"
    )["notice_id"]
    st.cache_data.clear()
    assert f"SPOT-CHECK:{key}:{cid}" not in set(queries.notice_candidates(url, None, STATION, MONTH)["finding_key"])
    notes = queries.notices(url, station.scope, TODAY)
    assert list(notes["notice_id"]) == [nid] and list(notes["state"]) == ["open"]
    todo = queries.todo(url, station.username, station.scope, TODAY, station)
    assert list(todo["notices"]["notice_id"]) == [nid]
    sup.respond_notice(url, station, nid, text="已整改", version=int(notes["version"].iloc[0]))
    sup.close_notice(url, legal, nid, "accept", note="通过", version=None)
    st.cache_data.clear()
    assert queries.notice(url, station.scope, nid)["state"] == "closed"
    assert queries.notice(url, ("140423000000",), nid) is None
    assert exports.notice_docx(url, station.scope, nid)[:2] == b"PK"
    m = queries.loop_metrics(url, None, STATION, MONTH, TODAY)
    assert (m["spotcheck_pass_rate"]["numerator"], m["spotcheck_pass_rate"]["denominator"]) == (0, 1)
