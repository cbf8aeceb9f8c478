"""Real browser: headless Debian Chromium driven by Playwright against `streamlit run dashboard/app.py`.

Logs in, opens every page, waits for a chart, downloads the workbook (when its builder exists), reloads
and stays logged in, logs out and is logged out.  Screenshots go to test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dashboard_fixtures as F
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = [("overview", "总览"), ("coverage", "现场记录"), ("cases", "案件检查"), ("equipment", "设备台账"),
         ("access", "调阅审计"), ("integrity", "完整性"), ("assessment", "考评"), ("data", "数据"),
         ("syslog", "系统日志")]
CHART = '[data-testid="stPlotlyChart"] .main-svg'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make system-deps`")
    w = F.build(tmp_path_factory.mktemp("browser"))
    port = _free_port()
    env = {**os.environ, "WAREHOUSE_URL": w.url, "DASHBOARD_COOKIE_KEY": "browser-test-key-" + str(port)}
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.port", str(port), "--server.headless", "true",
         "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(base + "/_stcore/health", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start")
        yield base, w
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def test_browser_walkthrough(server):
    from playwright.sync_api import sync_playwright

    base, w = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True, locale="zh-CN")
        dialogs: list[str] = []  # a fired alert() would mean the XSS payload ran
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(base)
        page.wait_for_selector('[data-testid="stForm"]', timeout=30000)
        page.get_by_label("用户名").fill("legal")
        page.get_by_label("密码").fill(F.PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_selector('[data-testid="stSidebarNav"] a', timeout=30000)
        # the re-login cookie is written by a component shortly after the login run
        for _ in range(60):
            if any(c["name"] == "avsup_auth" for c in page.context.cookies()):
                break
            page.wait_for_timeout(250)
        else:
            pytest.fail("no re-login cookie written after login")
        page.screenshot(path=str(ARTIFACTS / "browser_00_after_login.png"), full_page=True)

        for i, (path, title) in enumerate(PAGES, start=1):
            # the first page of st.navigation is the default one and lives at "/" (its url_path is not served)
            page.goto(f"{base}/" if i == 1 else f"{base}/{path}")
            assert page.get_by_text("Page not found").count() == 0
            page.get_by_role("heading", name=title).first.wait_for(timeout=30000)
            if path not in ("syslog",):
                if path in ("cases",):
                    page.wait_for_selector('[data-testid="stDataFrame"]', timeout=30000)
                else:
                    page.wait_for_selector(CHART, timeout=30000)
                    assert page.locator(CHART).first.text_content() is not None
            page.wait_for_timeout(800)
            page.screenshot(path=str(ARTIFACTS / f"browser_{i:02d}_{path}.png"), full_page=True)

        # the heatmap and trend use Chinese labels and category months
        page.goto(f"{base}/")
        page.wait_for_selector(CHART, timeout=30000)
        svg_text = " ".join(page.locator('[data-testid="stPlotlyChart"]').all_text_contents())
        assert "2026-07" in svg_text and "Jul" not in svg_text

        # an event's timeline after giving a reason
        page.goto(f"{base}/coverage")
        page.wait_for_selector(CHART, timeout=30000)
        page.locator('[data-testid="stSelectbox"]').filter(has_text="选择事件").locator("input").click()
        page.keyboard.type("INC-A1-002")
        page.keyboard.press("Enter")
        page.get_by_label("事由").wait_for(timeout=30000)
        page.get_by_label("事由").fill("督察抽查")
        page.get_by_role("button", name="确认").click()
        page.get_by_text("中断报告：").wait_for(timeout=30000)
        page.wait_for_function(
            "document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg').length >= 2", timeout=30000)
        page.locator('[data-testid="stPlotlyChart"]').last.scroll_into_view_if_needed()
        page.wait_for_timeout(800)
        page.screenshot(path=str(ARTIFACTS / "browser_10_event_timeline.png"))

        # the case whose title is the XSS payload: shown as text, no alert
        page.goto(f"{base}/cases")
        page.locator('[data-testid="stSelectbox"]').filter(has_text="选择案件").locator("input").click()
        page.keyboard.type("CASE-A1-001")
        page.keyboard.press("Enter")
        page.get_by_label("事由").fill("案件评查")
        page.get_by_role("button", name="确认").click()
        page.locator('[data-testid="stText"]').filter(has_text=F.XSS).first.wait_for(timeout=30000)
        assert page.locator('img[src="x"]').count() == 0
        page.get_by_role("heading", name="规则检查").scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "browser_11_case_detail.png"))

        # reload: still logged in (cookie), then log out and stay out after another reload
        page.reload()
        page.wait_for_selector('[data-testid="stSidebarNav"] a', timeout=30000)
        assert page.locator('[data-testid="stForm"]').count() == 0

        # workbook download (needs the reason first)
        page.goto(f"{base}/assessment")
        page.wait_for_selector(CHART, timeout=30000)
        page.get_by_label("事由").fill("季度考评")
        page.get_by_role("button", name="确认").click()
        button = page.locator('[data-testid="stDownloadButton"]')
        error = page.locator('[data-testid="stAlertContentError"]')
        button.or_(error).first.wait_for(timeout=60000)
        workbook_error = None
        if button.count():
            with page.expect_download(timeout=30000) as dl:
                button.first.click()
            target = ARTIFACTS / "browser_workbook.xlsx"
            dl.value.save_as(target)
            assert target.read_bytes()[:2] == b"PK"
        else:
            page.screenshot(path=str(ARTIFACTS / "browser_workbook_unavailable.png"), full_page=True)
            workbook_error = error.first.inner_text()

        stolen = [c for c in page.context.cookies() if c["name"] == "avsup_auth"]
        assert stolen, "no re-login cookie"
        page.get_by_role("button", name="退出登录").click()
        page.wait_for_selector('[data-testid="stForm"]', timeout=30000)
        for _ in range(60):  # the cookie is deleted by a component after the logout run
            if not any(c["name"] == "avsup_auth" for c in page.context.cookies()):
                break
            page.wait_for_timeout(250)
        else:
            pytest.fail("the re-login cookie survived the logout")
        page.reload()
        page.wait_for_selector('[data-testid="stForm"]', timeout=30000)
        assert page.locator('[data-testid="stSidebarNav"] a').count() == 0
        page.screenshot(path=str(ARTIFACTS / "browser_99_logged_out.png"), full_page=True)
        # a copy of the cookie taken before logout no longer logs in (server-side revocation)
        page.context.add_cookies(stolen)
        page.reload()
        page.wait_for_selector('[data-testid="stForm"]', timeout=30000)
        page.wait_for_timeout(2000)
        assert page.locator('[data-testid="stSidebarNav"] a').count() == 0
        browser.close()
    assert not dialogs, dialogs
    assert workbook_error is None, f"workbook download failed: {workbook_error}"
