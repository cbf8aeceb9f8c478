"""The supervision pages under AppTest: 复核, 申诉, 情况说明, 发布 on a real ETL run of the small demo.

Every page under every role (allowed roles render, forbidden ones are unreachable); each write asks for its
reason first (an empty one writes nothing), is refused with the Chinese message when stale or outside the
scope, and is effective at once (an exempted finding reads 已豁免 and the unit's score rises).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

from dashboard import queries
from dashboard import supervision as sup
from dashboard.auth import PAGES, ROLE_PAGES
from etl.demo import generate
from etl.errors import SupervisionError
from etl.pipeline import run as etl_run
from tests.page_helpers import button, logged_in, open_page, rows, user, warehouse_env

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
SUPERVISION_PAGES = ("review", "appeals", "excuses", "publication")
SUP_TABLES = ("sup_finding_state", "sup_reviews", "sup_appeals", "sup_excuse_reviews", "sup_publications")


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    """The small demo (no media files) loaded by a real `etl run` into a fresh SQLite warehouse."""
    d = tmp_path_factory.mktemp("sup_pages")
    generate(d / "demo", scale="small", seed=2026, media=False)
    url = f"sqlite:///{d / 'w.sqlite'}"
    etl_run(d / "demo" / "sources.yaml", url)
    with warehouse_env(url):
        users = yaml.safe_load((d / "demo" / "users.yaml").read_text(encoding="utf-8"))["users"]
        yield {"url": url, "users": users, "users_file": d / "demo" / "users.yaml"}


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    yield


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every supervision table and the audit log (what a refused write must leave unchanged)."""
    out = {t: rows(url, f"SELECT * FROM {t}") for t in SUP_TABLES}
    out["audit_log"] = rows(url, "SELECT * FROM audit_log WHERE action <> 'login'")
    return out


def pick_month(at: AppTest, month: str, unit: str) -> AppTest:
    at.radio(key="period_kind").set_value("month").run()
    at.selectbox(key="period_month").set_value(month).run()
    at.selectbox(key="unit").set_value(unit).run()
    return at


def av_none_finding(url: str, scope_unit: str | None = None) -> tuple[str, str, str]:
    """(finding_key, unit_code, month) of an open AV-NONE finding whose event has no other finding."""
    cond = "" if scope_unit is None else "AND f.unit_code LIKE :u"
    found = rows(
        url,
        f"""
        SELECT f.finding_key, f.unit_code, f.month FROM v_findings f
        WHERE f.rule_id = 'AV-NONE' AND f.review_state = 'open' AND f.appeal_state IS NULL {cond}
          AND (SELECT COUNT(*) FROM v_findings g WHERE g.incident_no = f.incident_no) = 1
        ORDER BY f.occurred_at DESC, f.finding_key""",
        **({} if scope_unit is None else {"u": scope_unit}),
    )
    assert found, "the demo has open AV-NONE findings"
    return found[0]


@pytest.mark.parametrize("username", ["leader", "legal", "equipment", "it", "county", "station"])
def test_allowed_supervision_pages_render_and_forbidden_are_unreachable(wh, username):
    role = wh["users"][username]["role"]
    at = logged_in(wh, username)
    for page in SUPERVISION_PAGES:
        assert page in PAGES
        if page in ROLE_PAGES[role]:
            open_page(at, page)
            assert not [e.value for e in at.error], (username, page)
            assert at.title and at.title[0].value, (username, page)
        else:
            with pytest.raises(ValueError, match="navigation page"):
                at.switch_page(str(ROOT / "pages" / f"{page}.py")).run()


def test_page_rights_per_role():
    assert set(SUPERVISION_PAGES) <= set(ROLE_PAGES["legal"])
    assert "review" not in ROLE_PAGES["unit_admin"] and "appeals" in ROLE_PAGES["unit_admin"]
    assert not set(SUPERVISION_PAGES) & (set(ROLE_PAGES["equipment"]) | set(ROLE_PAGES["it"]))
    assert {"review", "publication"} <= set(ROLE_PAGES["leader"]) and "appeals" not in ROLE_PAGES["leader"]


@pytest.mark.parametrize("page", SUPERVISION_PAGES)
def test_page_file_run_directly_without_login_shows_nothing(wh, page):
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=30).run()
    assert "无权访问本页面" in [e.value for e in at.error]
    assert not at.dataframe


def test_leader_reads_the_queue_without_a_form(wh):
    at = open_page(logged_in(wh, "leader"), "review")
    assert at.dataframe and not [b for b in at.button if b.label == "提交复核"]
    assert "review_reason" not in [t.key for t in at.text_input]


def test_empty_reason_writes_nothing(wh):
    key, unit, month = av_none_finding(wh["url"])
    before = snapshot(wh["url"])
    at = pick_month(open_page(logged_in(wh, "legal"), "review"), month, unit)
    at.multiselect(key="review_keys").set_value([key])
    at.radio(key="verdict").set_value("confirm")
    button(at, "提交复核").click().run()
    assert "请填写事由" in [w.value for w in at.warning]
    at.text_input(key="review_reason").input("   ")
    button(at, "提交复核").click().run()
    assert "请填写事由" in [w.value for w in at.warning]
    assert snapshot(wh["url"]) == before


def test_exempt_marks_the_finding_and_raises_the_score(wh):
    url = wh["url"]
    key, unit, month = av_none_finding(url)
    score_before = queries.scores(url, None, unit, month).set_index("unit_code").loc[unit, "total"]
    at = pick_month(open_page(logged_in(wh, "legal"), "review"), month, unit)
    assert key in list(at.dataframe[0].value["问题编号"])
    at.text_input(key="review_reason").input("设备故障有书面证明")
    at.multiselect(key="review_keys").set_value([key])
    at.radio(key="verdict").set_value("exempt")
    at.selectbox(key="review_category").set_value("不可抗力")
    button(at, "提交复核").click().run()
    assert not at.exception
    assert [s.value for s in at.success if s.value.startswith("复核已保存")], [e.value for e in at.error]
    table = at.dataframe[0].value.set_index("问题编号")
    assert table.loc[key, "复核状态"] == "已豁免"
    st.cache_data.clear()
    score_after = queries.scores(url, None, unit, month).set_index("unit_code").loc[unit, "total"]
    assert score_after > score_before
    assert rows(url, "SELECT state, category FROM sup_finding_state WHERE finding_key = :k", k=key) == [
        ("exempted", "不可抗力")
    ]
    assert rows(url, "SELECT username, page, action, reason FROM audit_log WHERE object = :k", k=key) == [
        ("legal", "review", "review:exempt", "[不可抗力] 设备故障有书面证明")
    ]


def test_stale_page_is_refused_not_overwritten(wh):
    url = wh["url"]
    key, unit, month = av_none_finding(url)
    first = pick_month(open_page(logged_in(wh, "legal"), "review"), month, unit)
    second = pick_month(open_page(logged_in(wh, "legal"), "review"), month, unit)
    for at, verdict, reason in ((first, "confirm", "核实无误"), (second, "exempt", "另一人的豁免")):
        at.text_input(key="review_reason").input(reason)
        at.multiselect(key="review_keys").set_value([key])
        at.radio(key="verdict").set_value(verdict)
        at.selectbox(key="review_category").set_value("其他")
        button(at, "提交复核").click().run()
    assert [s.value for s in first.success if s.value.startswith("复核已保存")]
    assert any("已被他人更新" in e.value for e in second.error), [e.value for e in second.error]
    assert rows(url, "SELECT state FROM sup_finding_state WHERE finding_key = :k", k=key) == [("confirmed",)]
    assert len(rows(url, "SELECT * FROM sup_reviews WHERE finding_key = :k", k=key)) == 1


def test_unit_admin_appeals_only_in_scope_and_legal_decides(wh):
    url = wh["url"]
    county = user(wh, "county")
    at = open_page(logged_in(wh, "county"), "appeals")
    key, unit, month = av_none_finding(url, county.unit_code[:6] + "%")
    pick_month(at, month, unit)
    options = at.selectbox(key="appeal_key").options
    assert key in options
    with sa.create_engine(url).connect() as c:  # every key offered is a finding of a unit of the county's scope
        stmt = sa.text("SELECT DISTINCT unit_code FROM v_findings WHERE finding_key IN :k").bindparams(
            sa.bindparam("k", expanding=True)
        )
        offered_units = {r[0] for r in c.execute(stmt, {"k": list(options)})}
    assert offered_units and offered_units <= set(county.scope)
    # the reason first: without it nothing is filed
    before = snapshot(url)
    at.selectbox(key="appeal_key").set_value(key)
    button(at, "提交申诉").click().run()
    assert "请填写事由" in [w.value for w in at.warning] and snapshot(url) == before
    at.text_input(key="appeal_reason").input("当日设备送修，有维修单")
    button(at, "提交申诉").click().run()
    assert [s.value for s in at.success if s.value.startswith("申诉已提交")], [e.value for e in at.error]
    assert rows(url, "SELECT filed_by, decision FROM sup_appeals WHERE finding_key = :k", k=key) == [("county", None)]
    # outside the scope: refused with the Chinese message, nothing written
    other_key = av_none_finding(url, "140423%")[0]
    before = snapshot(url)
    with pytest.raises(SupervisionError, match="管辖范围"):
        sup.file_appeal(url, county, other_key, reason="越权申诉")
    assert snapshot(url) == before
    # the legal department decides it: upheld -> exempted, marked on the unit's page
    legal = open_page(logged_in(wh, "legal"), "appeals")
    appeal_id = rows(url, "SELECT appeal_id FROM sup_appeals WHERE finding_key = :k", k=key)[0][0]
    legal.selectbox(key="appeal_id").set_value(appeal_id)
    legal.radio(key="decision").set_value("upheld")
    legal.text_input(key="decide_reason").input("维修单属实")
    button(legal, "提交决定").click().run()
    assert [s.value for s in legal.success if s.value.startswith("申诉已处理")], [e.value for e in legal.error]
    assert rows(url, "SELECT state FROM sup_finding_state WHERE finding_key = :k", k=key) == [("exempted",)]
    at.run()
    mine = at.dataframe[-1].value
    assert list(mine.loc[mine["问题编号"] == key, "决定"]) == ["申诉成立（豁免）"]
    found = at.dataframe[0].value.set_index("问题编号")
    assert found.loc[key, "复核状态"] == "已豁免"


def test_rejected_excuse_makes_the_event_count(wh):
    url = wh["url"]
    event = rows(
        url,
        """SELECT e.incident_no, e.unit_code, substr(e.arrived_at, 1, 7) FROM event_coverage e
           WHERE e.report_id IS NOT NULL AND EXISTS (SELECT 1 FROM excused_findings x WHERE x.incident_no = e.incident_no)
           ORDER BY e.arrived_at DESC""",
    )[0]
    incident, unit, month = event
    assert not rows(url, "SELECT 1 FROM v_findings WHERE incident_no = :n", n=incident)
    at = pick_month(open_page(logged_in(wh, "legal"), "excuses"), month, unit)
    at.selectbox(key="incident").set_value(incident).run()
    assert any("中断原因" in t.value for t in at.text)
    at.text_input(key="reason_text_excuse_event").input("核查中断")
    button(at, "确认").click().run()
    assert at.get("plotly_chart")  # the event's timeline
    at.radio(key="excuse_verdict").set_value("reject")
    at.text_input(key="excuse_reason").input("报告理由与记录不符")
    button(at, "提交审查").click().run()
    assert [s.value for s in at.success if s.value.startswith("审查已保存")], [e.value for e in at.error]
    assert rows(url, "SELECT verdict FROM sup_excuse_reviews WHERE incident_no = :n", n=incident) == [("rejected",)]
    assert rows(url, "SELECT 1 FROM v_findings WHERE incident_no = :n", n=incident)


def test_publish_shows_versions_and_the_published_badge(wh):
    url = wh["url"]
    month = rows(url, "SELECT MAX(period) FROM unit_scores WHERE period LIKE '____-__' AND period NOT LIKE '%Q%'")[0][0]
    at = open_page(logged_in(wh, "legal"), "publication")
    at.radio(key="period_kind").set_value("month").run()
    at.selectbox(key="period_month").set_value(month).run()
    assert "本期间尚未发布" in [i.value for i in at.info]
    before = snapshot(url)
    button(at, "发布 v1").click().run()
    assert "请填写事由" in [w.value for w in at.warning] and snapshot(url) == before
    at.text_input(key="publish_reason").input("月度考评结果发布")
    button(at, "发布 v1").click().run()
    assert [s.value for s in at.success if s.value.startswith("已发布")], [e.value for e in at.error]
    assert rows(url, "SELECT version, published_by, reason FROM sup_publications WHERE period = :p", p=month) == [
        (1, "legal", "月度考评结果发布")
    ]
    assert [b for b in at.button if b.label == "发布 v2"]  # the next version is offered
    assert not at.exception and len(at.dataframe) >= 2  # versions and the published scores
    # leaders read it without a form; the assessment page shows the published figures with the badge
    leader = open_page(logged_in(wh, "leader"), "publication")
    leader.radio(key="period_kind").set_value("month").run()
    leader.selectbox(key="period_month").set_value(month).run()
    assert not leader.exception and not [b for b in leader.button if b.label.startswith("发布")]
    assess = open_page(logged_in(wh, "leader"), "assessment")
    assess.radio(key="period_kind").set_value("month").run()
    assess.selectbox(key="period_month").set_value(month).run()
    assert any("已发布 v1" in m.value for m in assess.markdown), [m.value for m in assess.markdown]
    assess.toggle(key="show_current").set_value(True).run()
    assert any("草稿（当前数据）" in m.value for m in assess.markdown)


@pytest.mark.postgres
def test_supervision_reads_and_writes_on_postgresql(wh, pg_url, tmp_path):
    """The same query layer and writes on PostgreSQL: queue, version guard, appeals, excuses, publication."""
    generate(tmp_path / "demo", scale="small", seed=2026, media=False)
    etl_run(tmp_path / "demo" / "sources.yaml", pg_url)
    legal = user(wh, "legal")
    county = user(wh, "county")
    key, unit, month = av_none_finding(pg_url, county.unit_code[:6] + "%")
    queue = queries.review_queue(pg_url, None, unit, month, "AV-NONE")
    assert key in list(queue["finding_key"]) and set(queue["review_state"]) == {"open"}
    shown = dict(zip(queue["finding_key"], queue["version"], strict=True))
    sup.review(pg_url, legal, [key], "exempt", reason="不可抗力", category="不可抗力", versions=shown)
    with pytest.raises(SupervisionError, match="已被他人更新"):  # the same page again: stale
        sup.review(pg_url, legal, [key], "confirm", reason="再次确认", category=None, versions=shown)
    after = queries.review_queue(pg_url, None, unit, month, "AV-NONE", "exempted")
    assert list(after["finding_key"]) == [key] and list(after["version"]) == [1]
    other = av_none_finding(pg_url, county.unit_code[:6] + "%")[0]
    appeal_id = sup.file_appeal(pg_url, county, other, reason="有维修单")
    pending = queries.appeals(pg_url, county.scope, "pending")
    assert list(pending["appeal_id"]) == [appeal_id] and list(pending["finding_key"]) == [other]
    assert queries.appeals(pg_url, county.scope, "decided").empty
    events = queries.excused_events(pg_url, None, None, month[:4])
    assert not events.empty and set(events["excuse_state"]) == {"pending"}
    assert (events["report_id"].notna()).all()
    assert queries.publications(pg_url, month).empty
    sup.publish(pg_url, legal, month, reason="发布")
    pubs = queries.publications(pg_url, month)
    assert list(pubs["version"]) == [1]
    published = queries.published_scores(pg_url, None, None, month)
    current = queries.scores(pg_url, None, None, month)
    assert dict(zip(published["unit_code"], published["total"], strict=True)) == pytest.approx(
        dict(zip(current["unit_code"], current["total"], strict=True))
    )
    assert queries.restatement(pg_url, None, month).empty
