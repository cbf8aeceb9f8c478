"""The 随机抽查 and 待办 pages under AppTest on a real ETL run of the small demo (a private copy per test).

Every role: the legal department draws, reviews and records; leaders read without a form; a unit administrator,
equipment and IT cannot open the page (and a unit administrator's direct write is refused).  The draw and the
review ask for their reason first (an empty one writes nothing, with a Chinese message); a failed review is a
SPOT-CHECK finding at once; opening an original clip asks for a reason, is audited, and a missing file says so
while the review can still be recorded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
import yaml
from streamlit.testing.v1 import AppTest

from dashboard import supervision as sup
from dashboard.auth import PAGES, ROLE_PAGES
from etl.errors import SupervisionError
from tests.page_helpers import button, logged_in, open_page, rows, successes, user

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
USERS = ("leader", "legal", "equipment", "it", "county", "station")


@pytest.fixture
def wh(fresh_sqlite, demo_sources, monkeypatch):
    """A private copy of the demo warehouse; its users.yaml beside the demo's sources."""
    monkeypatch.setenv("WAREHOUSE_URL", fresh_sqlite)
    monkeypatch.delenv("DASHBOARD_USERS_FILE", raising=False)
    users_file = demo_sources.parent / "users.yaml"
    st.cache_data.clear()
    yield {
        "url": fresh_sqlite,
        "users": yaml.safe_load(users_file.read_text(encoding="utf-8"))["users"],
        "users_file": users_file,
    }
    st.cache_data.clear()


def month_of(url: str) -> str:
    return rows(url, "SELECT MAX(substr(arrived_at, 1, 7)) FROM event_coverage WHERE covered_s > 0")[0][0]


def draw(at: AppTest, period: str, per_unit: int = 2, kind: str = "events", reason: str = "月度随机抽查") -> AppTest:
    at.selectbox(key="draw_period").set_value(period)
    at.radio(key="draw_kind").set_value(kind)
    at.number_input(key="draw_per_unit").set_value(per_unit)
    at.text_input(key="draw_reason").input(reason)
    button(at, "抽取").click().run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("username", USERS)
def test_each_role_sees_or_is_refused_the_loop_pages(wh, username):
    role = wh["users"][username]["role"]
    at = logged_in(wh, username)
    for page in ("spotcheck", "rectification", "todo"):
        assert page in PAGES
        if page in ROLE_PAGES[role]:
            open_page(at, page)
            assert not [e.value for e in at.error], (username, page)
            assert at.title and at.title[0].value, (username, page)
        else:
            with pytest.raises(ValueError, match="navigation page"):
                at.switch_page(str(ROOT / "pages" / f"{page}.py")).run()
    assert ("spotcheck" in ROLE_PAGES[role]) == (role in ("legal", "leader"))


@pytest.mark.parametrize("page", ["spotcheck", "rectification", "todo"])
def test_page_file_run_directly_without_login_shows_nothing(wh, page):
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=30).run()
    assert "无权访问本页面" in [e.value for e in at.error]
    assert not at.dataframe


def test_draw_refuses_an_empty_reason_then_draws(wh):
    url = wh["url"]
    month = month_of(url)
    at = open_page(logged_in(wh, "legal"), "spotcheck")
    assert "尚无抽查批次" in [i.value for i in at.info]
    draw(at, month, reason="   ")
    assert "请填写事由" in [w.value for w in at.warning]
    assert rows(url, "SELECT COUNT(*) FROM sup_campaigns") == [(0,)]
    draw(at, month, per_unit=200)  # larger than any unit's population: the whole population, said so
    done = successes(at, "抽查批次已抽取")
    assert done and "已全部抽取" in done[0], [e.value for e in at.error]
    ((cid, drawn, note),) = rows(url, "SELECT campaign_id, drawn, draw_note FROM sup_campaigns")
    assert drawn > 0 and "已全部抽取" in note
    table = at.dataframe[0].value
    assert list(table["批次"]) == [cid] and list(table["进度"]) == [f"0 / {drawn}"]
    assert rows(url, "SELECT username, page, action FROM audit_log WHERE action = 'spotcheck:draw'") == [
        ("legal", "spotcheck", "spotcheck:draw")
    ]


def test_failed_review_is_a_spot_check_finding_at_once(wh):
    url = wh["url"]
    month = month_of(url)
    at = draw(open_page(logged_in(wh, "legal"), "spotcheck"), month)
    cid = rows(url, "SELECT campaign_id FROM sup_campaigns")[0][0]
    key, unit = rows(url, "SELECT object_key, unit_code FROM sup_spotcheck_items ORDER BY draw_order")[0]
    at.selectbox(key=f"spot_object_{cid}").set_value(key).run()
    assert not at.exception, at.exception
    assert at.get("plotly_chart")  # the event's timeline
    points = [r.key for r in at.radio if r.key and r.key.startswith(f"pt_{cid}_{key}_")]
    assert len(points) == 9  # Art. 16 (1)-(7), its voice explanation, Art. 11
    at.radio(key=f"pt_{cid}_{key}_16.2").set_value("fail")
    at.text_input(key=f"ptn_{cid}_{key}_16.2").input("未摄录现场整体环境")
    at.radio(key=f"pt_{cid}_{key}_11").set_value("fail")
    at.radio(key=f"pt_{cid}_{key}_16.7").set_value("n/a")
    button(at, "保存抽查结论").click().run()
    assert "请填写事由" in [w.value for w in at.warning]
    assert rows(url, "SELECT verdict FROM sup_spotcheck_items WHERE object_key = :k", k=key) == [(None,)]
    at.text_input(key="spot_reason").input("抽查审看视频")
    button(at, "保存抽查结论").click().run()
    assert not at.exception, at.exception
    done = successes(at, "抽查结论已保存")
    assert done and "不合格" in done[0] and "16.2" in done[0], [e.value for e in at.error]
    assert rows(url, "SELECT verdict, failed_points FROM sup_spotcheck_items WHERE object_key = :k", k=key) == [
        ("fail", "11,16.2")
    ] or rows(url, "SELECT verdict, failed_points FROM sup_spotcheck_items WHERE object_key = :k", k=key) == [
        ("fail", "16.2,11")
    ]
    found = rows(url, "SELECT rule_id, unit_code FROM v_findings WHERE finding_key = :k", k=f"SPOT-CHECK:{key}:{cid}")
    assert found == [("SPOT-CHECK", unit)]
    assert rows(
        url, "SELECT result, note FROM sup_spotcheck_points WHERE object_key = :k AND point_id = '16.2'", k=key
    ) == [("fail", "未摄录现场整体环境")]
    assert rows(url, "SELECT result FROM sup_spotcheck_points WHERE object_key = :k AND point_id = '16.7'", k=key) == [
        ("n/a",)
    ]
    # the item list and the campaign progress show it at once
    items = at.dataframe[1].value.set_index("抽查对象")
    assert items.loc[key, "结论"] == "不合格"
    assert [m.value for m in at.metric if m.label == "不合格"] == ["1"]
    # the recorded checklist comes back into the form
    assert at.radio(key=f"pt_{cid}_{key}_16.2").value == "fail"


def test_missing_clip_says_so_is_audited_and_the_review_still_records(wh):
    url = wh["url"]
    month = month_of(url)
    at = draw(open_page(logged_in(wh, "legal"), "spotcheck"), month)
    cid = rows(url, "SELECT campaign_id FROM sup_campaigns")[0][0]
    at.selectbox(key=f"spot_object_{cid}").set_value(
        rows(url, "SELECT object_key FROM sup_spotcheck_items ORDER BY draw_order")[0][0]
    ).run()
    key = at.selectbox(key=f"spot_object_{cid}").value
    clips = at.selectbox(key=f"play_{key}").options
    assert clips
    at.selectbox(key=f"play_{key}").set_value(clips[0]).run()
    button(at, "确认").click().run()  # the reason first
    assert "请填写事由" in [w.value for w in at.warning] and not at.get("video")
    at.text_input(key=f"reason_text_play_{clips[0]}").input("审看原始视频")
    button(at, "确认").click().run()
    assert not at.exception, at.exception
    assert any("无法播放该视频" in w.value for w in at.warning), [w.value for w in at.warning]  # demo without media
    assert not at.get("video")
    assert rows(url, "SELECT page, action, object, reason FROM audit_log WHERE action = 'play_clip'") == [
        ("spotcheck", "play_clip", clips[0], "审看原始视频")
    ]
    at.text_input(key="spot_reason").input("视频缺失，按其他材料审查")
    button(at, "保存抽查结论").click().run()
    assert successes(at, "抽查结论已保存"), [e.value for e in at.error]
    assert rows(url, "SELECT verdict FROM sup_spotcheck_items WHERE object_key = :k", k=key) == [("pass",)]


def test_case_campaign_shows_the_case_and_the_text_record_checklist(wh):
    url = wh["url"]
    month = rows(url, "SELECT MAX(substr(registered_at, 1, 7)) FROM cases")[0][0]
    at = draw(open_page(logged_in(wh, "legal"), "spotcheck"), month, per_unit=1, kind="cases")
    assert successes(at, "抽查批次已抽取"), [e.value for e in at.error]
    cid = rows(url, "SELECT campaign_id FROM sup_campaigns")[0][0]
    key = rows(url, "SELECT object_key FROM sup_spotcheck_items ORDER BY draw_order")[0][0]
    at.selectbox(key=f"spot_object_{cid}").set_value(key).run()
    assert not at.exception, at.exception
    points = {r.key.rsplit("_", 1)[1] for r in at.radio if r.key and r.key.startswith(f"pt_{cid}_{key}_")}
    assert {"10", "11", "12", "13", "19", "22", "23", "24", "25", "26", "27"} <= points
    assert at.get("plotly_chart")  # the case's action and document timeline


def test_leader_reads_without_a_form_and_unit_admin_is_refused(wh):
    url = wh["url"]
    legal = user(wh, "legal")
    month = month_of(url)
    result = sup.draw_campaign(
        url, legal, period=month, kind="events", per_unit=1, seed=7, unit_code=None, reason="抽查"
    )
    cid = result["campaign_id"]
    key = rows(url, "SELECT object_key FROM sup_spotcheck_items ORDER BY draw_order")[0][0]
    at = open_page(logged_in(wh, "leader"), "spotcheck")
    assert "draw_reason" not in [t.key for t in at.text_input]
    at.selectbox(key=f"spot_object_{cid}").set_value(key).run()
    assert not at.exception and not [b for b in at.button if b.label == "保存抽查结论"]
    assert "只读：抽查结论由法制部门记录" in [c.value for c in at.caption]
    county = user(wh, "county")
    before = rows(url, "SELECT * FROM sup_spotcheck_items")
    with pytest.raises(SupervisionError):
        sup.record_review(
            url, county, cid, key, points={"16.1": ("fail", None)}, note=None, reason="越权", version=None
        )
    with pytest.raises(SupervisionError):
        sup.draw_campaign(url, county, period=month, kind="events", per_unit=1, seed=1, unit_code=None, reason="越权")
    assert rows(url, "SELECT * FROM sup_spotcheck_items") == before


def test_todo_lists_the_items_waiting_for_legal_with_a_link(wh):
    url = wh["url"]
    sup.draw_campaign(
        url, user(wh, "legal"), period=month_of(url), kind="events", per_unit=1, seed=3, unit_code=None, reason="抽查"
    )
    at = open_page(logged_in(wh, "legal"), "todo")
    assert not [e.value for e in at.error]
    heads = [s.value for s in at.subheader]
    assert heads and any("抽查" in h for h in heads), heads
    links = [p.proto.page for p in at.get("page_link")]
    assert "spotcheck" in " ".join(links), links
