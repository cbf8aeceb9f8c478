"""Real browser: headless Debian Chromium driven by Playwright against `streamlit run dashboard/app.py`.

Logs in, opens every page, waits for a chart, downloads the workbook (when its builder exists), reloads
and stays logged in, logs out and is logged out.  On a fresh server, the very first request goes straight to
a page URL: every page URL (and the page-file and legacy views/ paths) shows the login form, never data.
Screenshots go to test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import ast
import contextlib
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
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGES = [
    ("overview", "总览"),
    ("coverage", "现场记录"),
    ("cases", "案件检查"),
    ("equipment", "设备台账"),
    ("access", "调阅审计"),
    ("integrity", "完整性"),
    ("assessment", "考评"),
    ("data", "数据"),
    ("syslog", "系统日志"),
]
PAGES_BY_ID = dict(PAGES)
CHART = '[data-testid="stPlotlyChart"] .main-svg'
# The first chart each page draws from the fixture's data (its title is part of the SVG).
CHART_TITLES = {
    "overview": "按条款统计问题",
    "coverage": "全程记录率热力图（单位×月）",
    "equipment": "设备",
    "access": "按用户汇总",
    "integrity": "完整性",
    "assessment": "总分",
    "data": "隔离数据（按原因）",
}
# What only a logged-in data page shows.
DATA_SELECTORS = (
    '[data-testid="stDataFrame"]',
    '[data-testid="stMetric"]',
    '[data-testid="stPlotlyChart"]',
    '[data-testid="stSidebarNav"] a',
    '[data-testid="stSelectbox"]',
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make system-deps`")
    return F.build(tmp_path_factory.mktemp("browser"))


@contextlib.contextmanager
def _streamlit(w, log_dir: Path):  # noqa: ANN001 - a dashboard_fixtures.Warehouse
    """A fresh ``streamlit run dashboard/app.py`` on a free port; yields its base URL once it is healthy.

    Only ``/_stcore/health`` is requested here: the app script has not run yet when this yields.
    """
    port = _free_port()
    env = {**os.environ, "WAREHOUSE_URL": w.url, "DASHBOARD_COOKIE_KEY": "browser-test-key-" + str(port)}
    log = open(log_dir / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "dashboard/app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
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
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def server(warehouse, tmp_path_factory):
    with _streamlit(warehouse, tmp_path_factory.mktemp("log")) as base:
        yield base, warehouse


def _page_ids() -> list[str]:
    """The url_path of every page: the keys of PAGE_FILES in dashboard/app.py (read, not imported: it is a script)."""
    tree = ast.parse((ROOT / "dashboard" / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PAGE_FILES" for t in node.targets):
            return [ast.literal_eval(k) for k in node.value.keys]
    raise AssertionError("PAGE_FILES not found in dashboard/app.py")


def _direct_urls() -> list[str]:
    """Every way a page might be asked for by URL: its url_path, its file name, its file under pages/ and the
    legacy views/ names (the first URL is the overview's url_path)."""
    urls = []
    for pid in _page_ids():
        urls += [
            f"/{pid}",
            f"/{pid}.py",
            f"/?page={pid}",
            f"/pages/{pid}.py",
            f"/pages/{pid}",
            f"/views/{pid}.py",
            f"/views/{pid}",
        ]
    return urls


def _assert_no_data(page, url: str) -> None:  # noqa: ANN001 - a Playwright page
    for selector in DATA_SELECTORS:
        assert page.locator(selector).count() == 0, (url, selector)
    for _, title in PAGES:
        assert page.get_by_role("heading", name=title, exact=True).count() == 0, (url, title)


def _assert_login_only(page, url: str) -> None:  # noqa: ANN001 - a Playwright page
    """A single-segment URL: the app starts, shows the login form and nothing a data page shows.

    A nested one (/pages/x.py, /views/x): Streamlit answers every path with its index page, whose scripts are
    relative (./static/...), so the app never starts there: no session, no script run, nothing at all.
    """
    if "/" in url.strip("/").split("?")[0]:
        page.wait_for_load_state("networkidle", timeout=30000)
        page.wait_for_timeout(1000)
        assert page.locator('[data-testid="stApp"]').count() == 0, url  # the app did not start: no script ran
        _assert_no_data(page, url)
        return
    page.wait_for_selector('[data-testid="stForm"]', timeout=30000)
    page.get_by_label("用户名").wait_for(timeout=30000)
    page.wait_for_timeout(1500)  # a page script that ran anyway would have drawn by now
    page.wait_for_selector('[data-testid="stStatusWidgetRunningIcon"]', state="detached", timeout=30000)
    assert page.get_by_label("密码").count() == 1, url
    _assert_no_data(page, url)
    assert page.get_by_text("无权访问本页面").count() == 0, url  # the entrypoint ran, not the page file
    if url.strip("/") in PAGES_BY_ID:  # a page's own URL is a login URL too (no "Page not found")
        assert page.get_by_text("Page not found").count() == 0, url


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
            page.get_by_role("heading", name=title).first.wait_for(timeout=30000)
            assert page.get_by_text("Page not found").count() == 0  # checked once the page has drawn
            if path in ("cases", "syslog"):
                page.wait_for_selector('[data-testid="stDataFrame"]', timeout=30000)
            else:
                # the page's first chart is drawn from data: its title, and not the empty "无数据" placeholder
                chart = page.locator('[data-testid="stPlotlyChart"]').filter(has_text=CHART_TITLES[path]).first
                chart.locator(".main-svg").first.wait_for(timeout=30000)
                assert "无数据" not in (chart.text_content() or ""), path
            page.wait_for_timeout(800)
            page.screenshot(path=str(ARTIFACTS / f"browser_{i:02d}_{path}.png"), full_page=True)

        # the trend uses Chinese labels and category months (the month of the year beside last year's: 7月)
        page.goto(f"{base}/")
        page.wait_for_selector(CHART, timeout=30000)
        # every chart drawn (on a loaded machine the trend's axis comes after the first chart): a month label
        page.locator('[data-testid="stPlotlyChart"]').filter(has_text="7月").first.wait_for(timeout=30000)
        svg_text = " ".join(page.locator('[data-testid="stPlotlyChart"]').all_text_contents())
        assert "7月" in svg_text and "Jul" not in svg_text

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
            "document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .main-svg').length >= 2", timeout=30000
        )
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


def test_fresh_server_first_request_to_a_page_url_gets_the_login_form(warehouse, tmp_path_factory):
    """The issue: the first request after a fresh server start goes straight to a page URL."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    urls = _direct_urls()
    assert urls[0] == "/overview" and {f"/{pid}" for pid in PAGES_BY_ID} <= set(urls)
    with _streamlit(warehouse, tmp_path_factory.mktemp("fresh")) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for i, url in enumerate(urls):
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
            page = context.new_page()
            page.goto(base + url)  # i == 0: the very first script run of this server process
            _assert_login_only(page, url)
            if i == 0:
                page.screenshot(path=str(ARTIFACTS / "browser_direct_overview_login.png"), full_page=True)
                # logging in there opens the page asked for, now with its data
                page.get_by_label("用户名").fill("legal")
                page.get_by_label("密码").fill(F.PASSWORD)
                page.get_by_role("button", name="登录").click()
                page.get_by_role("heading", name="总览", exact=True).first.wait_for(
                    timeout=30000
                )  # a rerun may briefly hold two
                page.locator('[data-testid="stMetric"]').first.wait_for(timeout=30000)
                page.wait_for_selector(CHART, timeout=30000)
                page.wait_for_timeout(800)
                page.screenshot(path=str(ARTIFACTS / "browser_direct_overview_after_login.png"), full_page=True)
            context.close()
        browser.close()
