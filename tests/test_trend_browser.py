"""Trends in a real browser (headless Chromium, Playwright) on the two-year small demo (``etl demo --years 2``).

The leader opens 总览 and 考评: the monthly trend (this year over the same months of last year, the latter
dashed) and the change against the previous month and the same month of last year, with arrows and numbers;
then 单位画像 over 12 and 24 months.  A county administrator opens 单位画像 of its scope: the unit picker offers
only its own units.  Screenshots go to a temporary directory (printed) for a human to look at.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_browser import ARGS, CHROMIUM, _streamlit
from test_loop_browser import _choose, _idle, _key, _login

from etl.demo import generate
from etl.pipeline import run as etl_run

pytestmark = pytest.mark.browser
ARROW = re.compile(r"[↑↓→] \d")


@pytest.fixture(scope="module")
def demo2(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make system-deps`")
    d = tmp_path_factory.mktemp("trend")
    generate(d / "demo", scale="small", seed=2026, media=True, years=2)
    url = f"sqlite:///{d / 'w.sqlite'}"
    assert etl_run(d / "demo" / "sources.yaml", url).status == "ok"
    shots = tmp_path_factory.mktemp("trend_screenshots")
    print(f"\nscreenshots: {shots}")
    return SimpleNamespace(dir=d, url=url, shots=shots)


def _open(page, base: str, path: str, heading: str) -> None:  # noqa: ANN001 - a Playwright page
    page.goto(f"{base}/{'' if path == 'overview' else path}")  # the first page is the default one, at /
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60000)
    _idle(page)


def _shot(page, path: Path, height: int = 2600) -> None:  # noqa: ANN001
    """The whole page: Streamlit scrolls inside its own container, so the window is made tall for the shot."""
    page.set_viewport_size({"width": 1440, "height": height})
    page.wait_for_timeout(1200)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": 1440, "height": 1000})
    page.wait_for_timeout(300)


def _metric_deltas(page) -> list[str]:  # noqa: ANN001
    return [t.strip() for t in page.locator('[data-testid="stMetricDelta"]').all_inner_texts()]


def _trend_section(page, shots: Path, name: str) -> str:  # noqa: ANN001
    """Scroll to the trend panel, screenshot it, and return the text of its chart (legend and axis)."""
    head = page.get_by_role("heading", name="月度趋势（同比）").first
    head.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots / name))
    chart = page.locator('[data-testid="stPlotlyChart"]', has_text="月度趋势（同比）").first
    chart.wait_for(timeout=30000)
    return chart.inner_text()


def test_trends_in_the_browser(demo2):
    from playwright.sync_api import sync_playwright

    s = demo2
    with _streamlit(SimpleNamespace(url=s.url), s.dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context, page = _login(browser, base, "leader")

        _open(page, base, "overview", "总览")
        text = _trend_section(page, s.shots, "trend_01_overview.png")
        assert "2026年" in text and "2025年" in text
        for month in ("1月", "11月"):
            assert month in text
        deltas = _metric_deltas(page)
        assert sum(bool(ARROW.search(d)) for d in deltas) >= 2, deltas  # 环比 and 同比, arrow and number
        assert any("个百分点" in d for d in deltas)
        _shot(page, s.shots / "trend_02_overview_full.png")

        # the total instead of 全程记录率
        _choose(page, "trend_series", "总分")
        assert any(d.endswith(" 分") and ARROW.search(d) for d in _metric_deltas(page)), _metric_deltas(page)
        page.screenshot(path=str(s.shots / "trend_03_overview_total.png"))

        _open(page, base, "assessment", "考评")
        text = _trend_section(page, s.shots, "trend_04_assessment.png")
        assert "2025年" in text
        assert sum(bool(ARROW.search(d)) for d in _metric_deltas(page)) >= 2

        _open(page, base, "unit", "单位画像")
        page.get_by_text("每月总分与等级").first.wait_for(timeout=30000)
        page.get_by_text("主要指标（每月）").first.wait_for(timeout=30000)
        page.get_by_text("指标一览").first.wait_for(timeout=30000)
        assert any(ARROW.search(d) for d in _metric_deltas(page))
        _shot(page, s.shots / "trend_05_unit_12.png")
        page.get_by_text("近 24 个月").first.click()
        _idle(page)
        chart = page.locator('[data-testid="stPlotlyChart"]', has_text="每月总分与等级").first
        assert "2024-12" in chart.inner_text()  # two years of months
        _shot(page, s.shots / "trend_06_unit_24.png")
        context.close()

        context, page = _login(browser, base, "county")
        _open(page, base, "unit", "单位画像")
        _key(page, "unit").locator("input").click()
        offered = page.get_by_role("option").all_inner_texts()
        page.keyboard.press("Escape")
        assert offered and all("潞州" in o for o in offered), offered  # its own county and stations only
        _shot(page, s.shots / "trend_07_unit_county.png")
        context.close()
        browser.close()
