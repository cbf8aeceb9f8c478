"""The whole supervision loop in a real browser (headless Chromium, Playwright) on the small demo with media.

The legal department draws a spot-check campaign of one station's on-site events, opens an event whose original
clip is a playable demo video (a reason first: audited), fails two checklist points and saves; issues a
rectification notice for the campaign's failures; the unit administrator logs in, finds it in 待办 and on 整改
and answers with the measures taken; the legal department logs in again, accepts it (closed) and downloads the
整改通知书 (.docx).  Screenshots go to a temporary directory (printed) for a human to look at.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from test_browser import ARGS, CHROMIUM, _streamlit

from etl.demo import DEMO_PASSWORD, generate
from etl.pipeline import run as etl_run

pytestmark = pytest.mark.browser
TODAY = "2026-11-30"


def _one(url: str, sql: str, **params) -> tuple:
    with sa.create_engine(url).connect() as c:
        return c.execute(sa.text(sql), params).fetchone()


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make system-deps`")
    d = tmp_path_factory.mktemp("loop")
    generate(d / "demo", scale="small", seed=2026, media=True)
    url = f"sqlite:///{d / 'w.sqlite'}"
    assert etl_run(d / "demo" / "sources.yaml", url).status == "ok"
    # an on-site event of the county administrator's scope whose original clip is a playable demo video
    incident, unit, month, clip = _one(
        url,
        """
        SELECT e.incident_no, e.unit_code, substr(e.arrived_at, 1, 7), c.clip_id FROM clips c
        JOIN event_coverage e ON e.incident_no = c.incident_no
        WHERE c.file_path LIKE '%.webm' AND e.unit_code LIKE '140403%' AND e.covered_s > 0
        ORDER BY c.started_at DESC""",
    )
    name = _one(url, "SELECT name FROM org_units WHERE unit_code = :u", u=unit)[0]
    shots = tmp_path_factory.mktemp("loop_screenshots")
    print(f"\nscreenshots: {shots}")
    return SimpleNamespace(
        dir=d, url=url, incident=incident, unit=unit, unit_name=name, month=month, clip=clip, shots=shots
    )


def _idle(page) -> None:  # noqa: ANN001 - a Playwright page
    page.wait_for_timeout(400)
    page.wait_for_selector('[data-testid="stStatusWidgetRunningIcon"]', state="detached", timeout=60000)
    page.wait_for_timeout(400)


def _see(page, text: str, shots: Path, timeout: int = 60000) -> None:  # noqa: ANN001
    try:
        page.get_by_text(text).first.wait_for(timeout=timeout)
    except Exception:
        page.screenshot(path=str(shots / "timeout.png"), full_page=True)
        raise


def _key(page, key: str):  # noqa: ANN001, ANN202
    """The element container of the widget with this key (Streamlit's class st-key-<key, other chars as ->)."""
    return page.locator("." + "st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key.strip())).first


def _choose(page, key: str, option: str) -> None:  # noqa: ANN001
    """Pick ``option`` (its label) in the select box whose widget key is ``key`` (typing filters the list)."""
    _key(page, key).locator("input").click()
    page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).first.click()
    page.wait_for_timeout(300)
    _idle(page)


def _login(browser, base: str, username: str):  # noqa: ANN001, ANN202
    """A fresh browser context logged in as ``username`` (its re-login cookie written)."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True, locale="zh-CN")
    page = context.new_page()
    page.goto(base)
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector('[data-testid="stSidebarNav"] a', timeout=30000)
    for _ in range(120):
        if any(c["name"] == "avsup_auth" for c in context.cookies()):
            break
        page.wait_for_timeout(250)
    else:
        pytest.fail("no re-login cookie written after login")
    return context, page


def test_draw_review_notice_answer_close(loop):
    from playwright.sync_api import sync_playwright

    s = loop
    old = os.environ.get("AVSUP_TODAY")
    os.environ["AVSUP_TODAY"] = TODAY  # the server's clock for deadlines and overdue
    try:
        with _streamlit(SimpleNamespace(url=s.url), s.dir) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            _legal_draws_and_reviews(browser, base, s)
            _legal_issues_notice(browser, base, s)
            _unit_answers(browser, base, s)
            _legal_closes(browser, base, s)
            browser.close()
    finally:
        if old is None:
            os.environ.pop("AVSUP_TODAY", None)
        else:
            os.environ["AVSUP_TODAY"] = old
    cid = _one(s.url, "SELECT campaign_id FROM sup_campaigns")[0]
    key = f"SPOT-CHECK:{s.incident}:{cid}"
    assert _one(s.url, "SELECT rule_id, unit_code FROM v_findings WHERE finding_key = :k", k=key) == (
        "SPOT-CHECK",
        s.unit,
    )
    assert _one(s.url, "SELECT state, overdue, closed_by FROM v_rectifications") == ("closed", 0, "legal")
    kinds = [
        r[0]
        for r in sa.create_engine(s.url).connect().execute(sa.text("SELECT kind FROM sup_notice_events ORDER BY id"))
    ]
    assert kinds == ["issue", "respond", "accept"]
    audited = {
        r[0]
        for r in sa.create_engine(s.url)
        .connect()
        .execute(sa.text("SELECT action FROM audit_log WHERE action <> 'login'"))
    }
    assert {
        "spotcheck:draw",
        "play_clip",
        "spotcheck:fail",
        "rectify:issue",
        "rectify:respond",
        "rectify:accept",
    } <= audited
    assert "export_notice" in audited


def _legal_draws_and_reviews(browser, base: str, s) -> None:  # noqa: ANN001
    context, page = _login(browser, base, "legal")
    page.goto(f"{base}/spotcheck")
    _see(page, "尚无抽查批次", s.shots)
    _idle(page)
    _choose(page, "draw_period", s.month)
    _choose(page, "draw_unit", s.unit_name)
    _key(page, "draw_per_unit").locator("input").fill("50")
    _key(page, "draw_reason").locator("input").fill(f"{s.month} 现场执法音像记录随机抽查")
    page.screenshot(path=str(s.shots / "loop_01_draw_form.png"), full_page=True)
    page.get_by_role("button", name="抽取", exact=True).click()
    _see(page, "抽查批次已抽取", s.shots)
    _idle(page)
    cid = _one(s.url, "SELECT campaign_id FROM sup_campaigns")[0]
    _choose(page, f"spot_object_{cid}", f"{s.incident}（待审查）")
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=30000)
    _choose(page, f"play_{s.incident}", s.clip)
    _key(page, f"reason_text_play_{s.clip}").locator("input").fill("抽查审看原始视频")
    page.get_by_role("button", name="确认").click()
    page.locator("video").first.wait_for(timeout=30000)
    page.wait_for_function(
        "document.querySelector('video') && document.querySelector('video').readyState >= 2", timeout=30000
    )
    page.locator("video").first.evaluate("v => { v.currentTime = 1.0; }")
    page.wait_for_timeout(800)
    for point, note in (("16.2", "未摄录现场整体环境"), ("11", "未表明执法身份")):
        _key(page, f"pt_{cid}_{s.incident}_{point}").get_by_text("不符合", exact=True).click()
        _key(page, f"ptn_{cid}_{s.incident}_{point}").locator("input").fill(note)
    _key(page, f"spot_note_{cid}_{s.incident}").locator("textarea").fill(
        "视频未见现场全景；民警未出示证件、未口述表明身份"
    )
    _key(page, "spot_reason").locator("input").fill("审看视频，逐项核对第十六条、第十一条")
    page.set_viewport_size({"width": 1440, "height": 2300})  # the whole review view in one picture
    page.wait_for_timeout(800)
    page.get_by_role("heading", name=s.incident).first.scroll_into_view_if_needed()
    page.mouse.wheel(0, -40)
    page.wait_for_timeout(600)
    page.screenshot(path=str(s.shots / "loop_02_review.png"))
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.get_by_role("button", name="保存抽查结论").click()
    _see(page, "抽查结论已保存", s.shots)
    _idle(page)
    page.screenshot(path=str(s.shots / "loop_03_review_saved.png"), full_page=True)
    context.close()


def _legal_issues_notice(browser, base: str, s) -> None:  # noqa: ANN001
    context, page = _login(browser, base, "legal")
    page.goto(f"{base}/rectification")
    _see(page, "下发整改通知", s.shots)
    _idle(page)
    _key(page, "notice_basis").get_by_text("抽查不合格项").click()
    _idle(page)
    _choose(page, "notice_unit", s.unit_name)
    cid = _one(s.url, "SELECT campaign_id FROM sup_campaigns")[0]
    _key(page, "notice_campaign").locator("input").click()
    page.get_by_role("option").filter(has_text=f"#{cid} ").first.click()
    _idle(page)
    officer = _one(s.url, "SELECT police_no FROM clips WHERE clip_id = :c", c=s.clip)[0]
    _key(page, "notice_officers").locator("input").click()
    page.keyboard.type(officer)
    page.get_by_role("option").filter(has_text=officer).first.click()
    page.keyboard.press("Escape")
    _choose(page, "notice_paragraph", "（二）不制作或不按要求制作执法全过程记录的")
    _key(page, "notice_reason").locator("input").fill("抽查不合格，责令限期整改")
    page.screenshot(path=str(s.shots / "loop_04_notice_form.png"), full_page=True)
    page.get_by_role("button", name="下发整改通知").click()
    _see(page, "整改通知已下发", s.shots)
    _idle(page)
    page.screenshot(path=str(s.shots / "loop_05_notice_issued.png"), full_page=True)
    context.close()


def _unit_answers(browser, base: str, s) -> None:  # noqa: ANN001
    context, page = _login(browser, base, "county")
    page.goto(f"{base}/todo")
    _see(page, "待整改通知（1）", s.shots)
    _idle(page)
    page.screenshot(path=str(s.shots / "loop_06_unit_todo.png"), full_page=True)
    page.goto(f"{base}/rectification")
    _see(page, "待整改", s.shots)
    _idle(page)
    nid = _one(s.url, "SELECT notice_id FROM sup_notices")[0]
    _key(page, "notice").locator("input").click()
    page.get_by_role("option").filter(has_text=f"#{nid} ").first.click()
    _idle(page)
    _key(page, "respond_text").locator("textarea").fill(
        "已组织所内民警学习《实施办法》第十六条、第十一条；涉事民警补写情况说明；每周抽看执法记录仪视频。"
    )
    page.screenshot(path=str(s.shots / "loop_07_unit_answer.png"), full_page=True)
    page.get_by_role("button", name="提交整改反馈").click()
    _see(page, "整改反馈已提交", s.shots)
    _idle(page)
    context.close()


def _legal_closes(browser, base: str, s) -> None:  # noqa: ANN001
    context, page = _login(browser, base, "legal")
    page.goto(f"{base}/rectification")
    _see(page, "整改通知", s.shots)
    _idle(page)
    nid = _one(s.url, "SELECT notice_id FROM sup_notices")[0]
    _key(page, "notice").locator("input").click()
    page.get_by_role("option").filter(has_text=f"#{nid} ").first.click()
    _idle(page)
    _key(page, "recheck_verdict").get_by_text("通过（办结）").click()
    _key(page, "recheck_note").locator("textarea").fill("整改措施具体，验收通过")
    page.screenshot(path=str(s.shots / "loop_08_recheck.png"), full_page=True)
    page.get_by_role("button", name="提交复查").click()
    _see(page, "复查已保存", s.shots)
    _idle(page)
    _choose(page, "notice", f"#{nid} {s.unit_name} 已办结")
    _idle(page)  # a rerun may still show the previous notice's forms beside the new ones
    reason = _key(page, f"reason_text_docx_{nid}")
    reason.locator("input").fill("打印整改通知书存档")
    form = page.get_by_test_id("stForm").filter(has=reason)
    form.get_by_role("button", name="确认").click()
    button = page.locator('[data-testid="stDownloadButton"]')
    button.first.wait_for(timeout=60000)
    with page.expect_download(timeout=60000) as dl:
        button.first.click()
    target = s.shots / "notice.docx"
    dl.value.save_as(target)
    with zipfile.ZipFile(target) as z:
        assert "整改通知书" in z.read("word/document.xml").decode("utf-8")
    _idle(page)
    page.set_viewport_size({"width": 1440, "height": 1900})
    page.wait_for_timeout(600)
    page.get_by_role("heading", name="整改通知").first.scroll_into_view_if_needed()
    page.wait_for_timeout(600)
    page.screenshot(path=str(s.shots / "loop_09_closed.png"))
    context.close()
