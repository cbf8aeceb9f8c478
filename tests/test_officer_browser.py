"""The officer page (民警执法记录档案, issue 18) in a real browser (headless Chromium, Playwright) on the small demo.

The officer logs in and lands on their own record (no picker, no other page in the sidebar), opens one of their
events' timeline, and is refused another officer's number given in the URL.  The county administrator ranks the
officers of its scope, picks one, gives a reason and sees the record.  Screenshots go to test-artifacts/
(officer_*.png) for a human to look at.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from test_browser import ARGS, ARTIFACTS, CHROMIUM, _streamlit
from test_loop_browser import _choose, _idle, _key

from etl.demo import DEMO_PASSWORD, generate
from etl.pipeline import run as etl_run

pytestmark = pytest.mark.browser
CHART = '[data-testid="stPlotlyChart"] .main-svg'


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make system-deps`")
    d = tmp_path_factory.mktemp("officer_browser")
    generate(d / "demo", scale="small", seed=2026, media=False)
    url = f"sqlite:///{d / 'w.sqlite'}"
    assert etl_run(d / "demo" / "sources.yaml", url).status == "ok"
    users = yaml.safe_load((d / "demo" / "users.yaml").read_text(encoding="utf-8"))["users"]
    me = str(users["officer"]["police_no"])
    with sqlite3.connect(d / "w.sqlite") as c:
        mate = c.execute(
            "SELECT police_no FROM officers WHERE unit_code = ? AND police_no <> ? ORDER BY police_no",
            (users["officer"]["unit_code"], me),
        ).fetchone()[0]
        event = c.execute(
            "SELECT e.incident_no FROM event_coverage e JOIN incident_officers io ON io.incident_no = e.incident_no "
            "WHERE io.police_no = ? AND e.status = 'partial' ORDER BY e.arrived_at DESC",
            (me,),
        ).fetchone()[0]
    ARTIFACTS.mkdir(exist_ok=True)
    return SimpleNamespace(dir=d, url=url, me=me, name=users["officer"]["name"], mate=mate, event=event)


def _login_as(browser, base: str, username: str):  # noqa: ANN001, ANN202
    """``test_loop_browser._login`` for the officer too: with a single page there is no sidebar navigation, so
    the login is done once the page's heading is drawn and the re-login cookie is written."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.goto(base)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_role("button", name="退出登录").wait_for(timeout=30000)
    for _ in range(120):
        if any(c["name"] == "avsup_auth" for c in context.cookies()):
            break
        page.wait_for_timeout(250)
    else:
        pytest.fail("no re-login cookie written after login")
    _idle(page)
    return context, page


def _year(page) -> None:  # noqa: ANN001 - a Playwright page
    _key(page, "period_kind").get_by_text("年", exact=True).click()
    _idle(page)


def _top(page, heading: str) -> None:  # noqa: ANN001
    """Scroll the page so that this heading is at the top of the view."""
    page.get_by_role("heading", name=heading).first.evaluate("e => e.scrollIntoView({block: 'start'})")


def _shot(page, name: str, full: bool = True) -> None:  # noqa: ANN001
    page.wait_for_timeout(600)
    page.screenshot(path=str(ARTIFACTS / f"officer_{name}.png"), full_page=full)


def test_officer_and_unit_admin_in_the_browser(demo):
    from playwright.sync_api import sync_playwright

    s = demo
    with _streamlit(SimpleNamespace(url=s.url), s.dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # the officer: their own record is their only page
        context, page = _login_as(browser, base, "officer")
        page.get_by_role("heading", name="民警执法记录档案").first.wait_for(timeout=30000)
        assert page.locator('[data-testid="stSidebarNav"] a').count() == 0  # one page: no navigation at all
        _year(page)
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=30000)
        page.wait_for_selector(CHART, timeout=30000)
        assert page.get_by_text(s.me).count() and page.get_by_text("选择民警").count() == 0
        _shot(page, "01_own_record")
        _choose(page, "incident", s.event)
        page.wait_for_function(
            "document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg').length >= 3", timeout=30000
        )
        timeline = page.locator('[data-testid="stPlotlyChart"]').filter(has_text="时间轴").first
        timeline.evaluate("e => e.scrollIntoView({block: 'center'})")
        _shot(page, "02_own_timeline", full=False)
        _top(page, "涉及该民警的问题")
        _shot(page, "02b_own_findings", full=False)
        _top(page, "调阅操作")
        _shot(page, "02c_own_access", full=False)
        # another officer's number in the URL (the officer's only page is the app's main page "/"): refused
        page.goto(f"{base}/?police_no={s.mate}")
        page.get_by_text("无权查看该民警的记录").wait_for(timeout=30000)
        _idle(page)
        assert page.locator('[data-testid="stMetric"]').count() == 0
        assert page.locator('[data-testid="stDataFrame"]').count() == 0
        _shot(page, "03_other_number_refused")
        # another page's URL: never drawn for the officer
        page.goto(f"{base}/overview")
        _idle(page)
        page.wait_for_timeout(1500)
        assert page.get_by_role("heading", name="总览").count() == 0
        context.close()

        # the county administrator: the ranking of its scope, then one officer after a reason
        context, page = _login_as(browser, base, "county")
        page.goto(f"{base}/officer")
        page.get_by_role("heading", name="民警执法记录档案").first.wait_for(timeout=30000)
        _year(page)
        page.get_by_role("heading", name="民警排名").wait_for(timeout=30000)
        page.wait_for_selector('[data-testid="stDataFrame"]', timeout=30000)
        _shot(page, "04_county_ranking", full=False)
        _choose(page, "police_no", f"{s.me} {s.name}")
        page.get_by_label("事由").fill("年度执法档案核查")
        page.get_by_role("button", name="确认").click()
        page.locator('[data-testid="stMetric"]').first.wait_for(timeout=30000)
        page.wait_for_selector(CHART, timeout=30000)
        _idle(page)
        _shot(page, "05_county_officer_record")
        context.close()
        browser.close()
    with sqlite3.connect(s.dir / "w.sqlite") as c:
        audited = c.execute(
            "SELECT username, action, object, reason FROM audit_log WHERE page = 'officer' ORDER BY id"
        ).fetchall()
    assert ("officer", "view_officer", s.me, None) in audited
    assert ("officer", "view_event", s.event, None) in audited
    assert ("county", "view_officer", s.me, "年度执法档案核查") in audited
    assert not [a for a in audited if a[2] == s.mate]
