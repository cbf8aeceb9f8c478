"""The dashboard under AppTest: login, every page under every role, graded scope, audit, XSS."""

from __future__ import annotations

import json
from pathlib import Path

import dashboard_fixtures as F
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.auth import PAGES, ROLE_PAGES
from tests.page_helpers import warehouse_env

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    w = F.build(tmp_path_factory.mktemp("dash"))
    with warehouse_env(w.url):
        yield w


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    yield


def logged_in(username: str) -> AppTest:
    """The app with a session already authenticated as ``username`` (the login form is tested separately)."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = F.USERS[username][0]
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(str(ROOT / "pages" / f"{page}.py")).run()
    return at


def rendered_text(at: AppTest) -> str:
    """Everything a user could read on the page: tables, metrics, texts, options, charts."""
    parts: list[str] = []
    for df in at.dataframe:
        parts.append(df.value.to_csv())
    for kind in ("metric", "text", "markdown", "caption", "title", "subheader", "error", "warning", "info"):
        for el in at.get(kind):
            parts.append(str(getattr(el, "value", "")) + str(getattr(el, "label", "")))
    for sb in at.selectbox:
        parts.extend(str(o) for o in sb.options)
    for el in at.get("plotly_chart"):
        parts.append(el.proto.spec)
    return "\n".join(parts)


def audit_rows(url: str) -> list[tuple]:
    with sa.create_engine(url).connect() as c:
        return c.exec_driver_sql("SELECT username, role, scope, page, action, object, reason FROM audit_log").fetchall()


def test_login_form_logs_in_and_audits(wh):
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    at.text_input[0].input("station")
    at.text_input[1].input(F.PASSWORD)
    at.button[0].click().run()
    assert at.session_state["authentication_status"] is True
    assert not at.exception
    assert any(r[0] == "station" and r[4] == "login" and r[2] == F.code("A1") for r in audit_rows(wh.url))


def test_wrong_password_stays_logged_out(wh):
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.text_input[0].input("station")
    at.text_input[1].input("wrong")
    at.button[0].click().run()
    assert not at.session_state["authentication_status"]
    assert "用户名或密码错误" in [e.value for e in at.error]
    assert not at.dataframe


@pytest.mark.parametrize("username", list(F.USERS))
def test_every_allowed_page_renders(wh, username):
    at = logged_in(username)
    role = F.USERS[username][1]
    for page in ROLE_PAGES[role]:
        open_page(at, page)
        assert not at.exception, (username, page, at.exception)
        assert not [e.value for e in at.error], (username, page)
        assert at.title and at.title[0].value, (username, page)


@pytest.mark.parametrize("username", list(F.USERS))
def test_forbidden_pages_are_unreachable(wh, username):
    at = logged_in(username)
    role = F.USERS[username][1]
    for page in set(PAGES) - set(ROLE_PAGES[role]):
        with pytest.raises(ValueError, match="navigation page"):
            open_page(at, page)


def test_no_legacy_pages_folder_beside_the_entrypoint():
    # A pages/ folder beside the entrypoint puts Streamlit in legacy multipage mode, where a page file runs by URL
    # without the login.  The pages live in the top-level pages/, registered by path through st.navigation.
    assert (ROOT / "pages").is_dir()
    assert not (ROOT / "dashboard" / "pages").exists()


@pytest.mark.parametrize("page", PAGES)
def test_page_file_run_directly_without_login_shows_nothing(wh, page):
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=30).run()
    assert "无权访问本页面" in [e.value for e in at.error]
    assert not at.dataframe


def test_logout(wh):
    at = logged_in("legal")
    logout = [b for b in at.button if b.label == "退出登录"]
    assert logout
    logout[0].click().run()
    assert not at.session_state["authentication_status"]
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert not at.dataframe


@pytest.mark.parametrize("username", ["station", "county"])
def test_scoped_users_see_only_their_units(wh, username):
    tag = F.USER_TAG[username]
    foreign = F.foreign_markers(tag)
    own = "-A2-" if username == "county" else "-A1-"  # proves the pages do show rows: the county sees a station's
    seen = ""
    at = logged_in(username)
    for page in ROLE_PAGES["unit_admin"]:
        open_page(at, page)
        assert not at.exception, page
        # every period and every unit the pickers offer
        for kind in ("month", "quarter", "year"):
            radios = [r for r in at.radio if r.key == "period_kind"]
            if radios and kind in radios[0].options:
                radios[0].set_value(kind).run()
            units = [s for s in at.selectbox if s.key == "unit"]
            for code in units[0].options if units else [None]:
                if code is not None:
                    [s for s in at.selectbox if s.key == "unit"][0].set_value(code).run()
                text = rendered_text(at)
                seen += text
                leaked = [m for m in foreign if m in text]
                assert not leaked, (username, page, kind, code, leaked)
    assert own in seen


@pytest.mark.parametrize("username", ["station", "county"])
def test_query_parameters_do_not_widen_scope(wh, username):
    tag = F.USER_TAG[username]
    foreign = F.foreign_markers(tag)
    other = "B1"
    at = logged_in(username)
    at.query_params["unit"] = F.code(other)
    at.query_params["incident"] = f"INC-{other}-002"
    at.query_params["case"] = f"CASE-{other}-001"
    for page, select_key, obj in (
        ("coverage", "incident", f"INC-{other}-002"),
        ("cases", "case_no", f"CASE-{other}-001"),
    ):
        open_page(at, page)
        unit_box = [s for s in at.selectbox if s.key == "unit"][0]
        assert F.code(other) not in unit_box.options
        box = [s for s in at.selectbox if s.key == select_key][0]
        box.set_value(obj).run()
        at.text_input(key=f"reason_text_{'event' if page == 'coverage' else 'case'}").input("核查")
        [b for b in at.button if b.label == "确认"][0].click().run()
        assert "无数据" in [w.value for w in at.warning], page
        text = rendered_text(at).replace(obj, "")  # the id the user typed may echo in the picker, never its rows
        assert not [m for m in foreign if m in text], page


def test_caches_never_cross_scopes(wh):
    county = logged_in("county")
    for page in ("overview", "coverage", "equipment"):
        open_page(county, page)
    assert "东街派出所" in rendered_text(open_page(county, "overview"))
    station = logged_in("station")  # same process, caches now warm with the county's results
    for page in ("overview", "coverage", "equipment"):
        text = rendered_text(open_page(station, page))
        assert not [m for m in F.foreign_markers("A1") if m in text], page


def test_detail_view_needs_a_reason_and_is_audited(wh):
    at = open_page(logged_in("legal"), "cases")
    [s for s in at.selectbox if s.key == "case_no"][0].set_value("CASE-A2-001").run()
    assert not [s for s in at.subheader if s.value == "CASE-A2-001"]  # nothing before the reason
    [b for b in at.button if b.label == "确认"][0].click().run()
    assert "请填写事由" in [w.value for w in at.warning]
    at.text_input(key="reason_text_case").input("案件评查")
    [b for b in at.button if b.label == "确认"][0].click().run()
    assert [s for s in at.subheader if s.value == "CASE-A2-001"]
    checklist = at.dataframe[1].value
    assert "未通过" in set(checklist["状态"]) and "通过" in set(checklist["状态"])
    assert ("legal", "legal", "city", "cases", "view_case", "CASE-A2-001", "案件评查") in audit_rows(wh.url)


def test_xss_payload_stays_text(wh):
    at = open_page(logged_in("station"), "cases")
    titles = list(at.dataframe[0].value["案由"])
    assert F.XSS in titles  # shown verbatim as a table cell (text), not interpreted
    assert not any(F.XSS in (m.value or "") for m in at.markdown)
    [s for s in at.selectbox if s.key == "case_no"][0].set_value("CASE-A1-001").run()
    at.text_input(key="reason_text_case").input("检查")
    [b for b in at.button if b.label == "确认"][0].click().run()
    assert any(F.XSS in t.value for t in at.text)  # st.text: plain text element
    assert not any("<img" in (m.value or "") for m in at.markdown)
    # Plotly's JSON writes "<" as \u003c, so the raw spec never holds "<img" whatever the charts draw (the
    # assertion of before could not fail): decode it, then look at every string the charts would render.
    for chart in at.get("plotly_chart"):
        assert "<img" not in json.dumps(json.loads(chart.proto.spec), ensure_ascii=False)


def test_equipment_export_is_audited(wh):
    at = open_page(logged_in("equipment"), "equipment")
    assert not at.get("download_button")
    at.text_input(key="reason_text_ledger").input("年度盘点")
    [b for b in at.button if b.label == "确认"][0].click().run()
    assert at.get("download_button")
    assert any(r[0] == "equipment" and r[4] == "export_ledger" and r[6] == "年度盘点" for r in audit_rows(wh.url))


def test_english_switch(wh):
    at = logged_in("it")  # lands on the data page
    assert at.title[0].value == "数据"
    at.toggle(key="lang_en").set_value(True).run()
    assert at.title[0].value == "Data"
    assert "Rows per table" in [s.value for s in at.subheader]


def test_system_log_shows_audit_rows(wh):
    logged_in("it")
    at = open_page(logged_in("it"), "syslog")
    assert not at.exception
    assert "login" in set(
        at.dataframe[0].value["action"] if "action" in at.dataframe[0].value else at.dataframe[0].value["操作"]
    )


def test_without_users_file_the_app_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    monkeypatch.delenv("DASHBOARD_USERS_FILE", raising=False)
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert any("未找到用户文件" in e.value for e in at.error)
    assert not at.text_input  # no login form without users


def test_overview_averages_scores_per_level(wh):
    at = open_page(logged_in("legal"), "overview")
    labels = [m.label for m in at.metric]
    assert "平均得分（基层所队）" in labels and "平均得分（县（区）局）" in labels and "平均得分" not in labels
    levels = set(at.dataframe[-1].value["级别"])  # the ranking uses the workbook's level words
    assert levels <= {"市局", "县（区）局", "基层所队"} and "基层所队" in levels


def test_every_page_is_in_exactly_one_sidebar_section():
    """auth.NAV_SECTIONS (the sidebar app.py draws, and the page list the roles use) lists every page file of
    dashboard/app.py (read, not imported: it is a script) once."""
    import ast

    from dashboard.auth import NAV_SECTIONS, PAGES

    tree = ast.parse((ROOT / "dashboard" / "app.py").read_text(encoding="utf-8"))
    found = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id == "PAGE_FILES":
            found[target.id] = node.value
    pages = [k.value for k in found["PAGE_FILES"].keys]
    listed = [pid for ids in NAV_SECTIONS.values() for pid in ids]
    assert sorted(listed) == sorted(pages) and len(listed) == len(set(listed))
    assert list(PAGES) == listed
