"""The supervision story in a real browser (headless Chromium, Playwright) on a real ETL run of the small demo.

The legal department exempts a finding on the review page and the unit's score on the assessment page rises at
once; it publishes the month; the sources then change (the media platform corrects the clips of one fully
recorded event to two days earlier: a late AV-NONE finding) and `etl run` runs again: the assessment page still shows the
published score (已发布 v1) and the workbook download equals the published one, while the publication page lists
the restatement and version 2 is published.  Screenshots go to test-artifacts/supervision_*.png.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from test_browser import ARGS, ARTIFACTS, CHROMIUM, _streamlit

from etl.demo import DEMO_PASSWORD, generate
from etl.pipeline import run as etl_run

pytestmark = pytest.mark.browser


def _one(url: str, sql: str, **params) -> tuple:
    with sa.create_engine(url).connect() as c:
        return c.execute(sa.text(sql), params).fetchone()


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `make system-deps`")
    d = tmp_path_factory.mktemp("sup_story")
    generate(d / "demo", scale="small", seed=2026, media=False)
    url = f"sqlite:///{d / 'w.sqlite'}"
    etl_run(d / "demo" / "sources.yaml", url)
    month = _one(
        url, "SELECT MAX(period) FROM unit_scores WHERE active = 1 AND period LIKE '____-__' AND period NOT LIKE '%Q%'"
    )[0]
    # an open AV-NONE finding of a station in the newest month (the pickers' default), alone on its event
    key, unit = _one(
        url,
        """
        SELECT f.finding_key, f.unit_code FROM v_findings f JOIN org_units o ON o.unit_code = f.unit_code
        WHERE f.rule_id = 'AV-NONE' AND o.level = 'station' AND substr(f.occurred_at, 1, 7) = :m
          AND (SELECT COUNT(*) FROM v_findings g WHERE g.incident_no = f.incident_no) = 1
        ORDER BY f.finding_key""",
        m=month,
    )
    return SimpleNamespace(dir=d, url=url, month=month, key=key, unit=unit)


def _score(url: str, unit: str, month: str) -> float:
    return float(_one(url, "SELECT total FROM v_unit_scores WHERE unit_code = :u AND period = :p", u=unit, p=month)[0])


def _see(page, text: str, timeout: int = 60000) -> None:  # noqa: ANN001 - a Playwright page
    """Wait for ``text`` on the page; on a time-out keep a screenshot of what the page showed instead."""
    try:
        page.get_by_text(text).first.wait_for(timeout=timeout)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "supervision_timeout.png"), full_page=True)
        raise


def _wait_idle(page) -> None:  # noqa: ANN001 - a Playwright page
    page.wait_for_timeout(400)
    page.wait_for_selector('[data-testid="stStatusWidgetRunningIcon"]', state="detached", timeout=60000)
    page.wait_for_timeout(400)


def _metric(page, label: str) -> str:  # noqa: ANN001
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _choose(page, label: str, option: str) -> None:  # noqa: ANN001
    """Pick ``option`` in the select box or multiselect labelled ``label`` (a multiselect: typing filters)."""
    multi = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label)
    box = multi.first if multi.count() else page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.locator("input").click()
    if multi.count():
        page.keyboard.type(option)
    page.get_by_role("option", name=option, exact=True).first.click()
    if multi.count():
        page.keyboard.press("Escape")
    page.wait_for_timeout(300)


def _workbook(page, tag: str) -> dict[str, list[tuple]]:  # noqa: ANN001
    """Download the assessment workbook (reason first) and return every sheet's cell values."""
    page.get_by_label("事由").fill(f"考评表核对 {tag}")
    page.get_by_role("button", name="确认").click()
    button = page.locator('[data-testid="stDownloadButton"]')
    button.first.wait_for(timeout=60000)
    with page.expect_download(timeout=60000) as dl:
        button.first.click()
    target = ARTIFACTS / f"supervision_workbook_{tag}.xlsx"
    dl.value.save_as(target)
    wb = load_workbook(io.BytesIO(target.read_bytes()), read_only=True)
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


def _same_but_generation_time(a: dict[str, list[tuple]], b: dict[str, list[tuple]]) -> list[tuple]:
    """The cells that differ, except on the cover's 生成时间 row."""
    out = []
    assert list(a) == list(b)
    for sheet in a:
        assert len(a[sheet]) == len(b[sheet]), sheet
        for i, (ra, rb) in enumerate(zip(a[sheet], b[sheet], strict=True)):
            if ra != rb and "生成时间" not in ra:
                out.append((sheet, i, ra, rb))
    return out


def test_review_publish_restate_story(story):
    from playwright.sync_api import sync_playwright

    s = story
    ARTIFACTS.mkdir(exist_ok=True)
    before = _score(s.url, s.unit, s.month)
    with _streamlit(SimpleNamespace(url=s.url), s.dir) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True, locale="zh-CN")
        page.goto(base)
        page.get_by_label("用户名").fill("legal")
        page.get_by_label("密码").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_selector('[data-testid="stSidebarNav"] a', timeout=30000)
        # the re-login cookie is written by a component shortly after the login run: every page.goto below is a
        # new session that logs in from it, so wait for it (navigating earlier lands on the login form)
        for _ in range(120):
            if any(c["name"] == "avsup_auth" for c in page.context.cookies()):
                break
            page.wait_for_timeout(250)
        else:
            pytest.fail("no re-login cookie written after login")

        # 1. the assessment page before: the unit's current score, not yet published
        page.goto(f"{base}/assessment?unit={s.unit}")
        _see(page, "未发布（当前数据）")
        _wait_idle(page)
        assert float(_metric(page, "总分")) == pytest.approx(before)

        # 2. exempt the finding on the review page: one reason, a category
        page.goto(f"{base}/review?unit={s.unit}")
        page.get_by_role("heading", name="复核结论").wait_for(timeout=30000)
        _wait_idle(page)
        page.get_by_label("事由").fill("当日设备故障，有维修记录")
        _choose(page, "选择问题", s.key)
        page.get_by_text("豁免", exact=True).click()
        _choose(page, "豁免类别", "不可抗力")
        page.screenshot(path=str(ARTIFACTS / "supervision_01_review_form.png"), full_page=True)
        page.get_by_role("button", name="提交复核").click()
        _see(page, "复核已保存")
        _wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "supervision_02_review_saved.png"), full_page=True)
        exempted = _score(s.url, s.unit, s.month)
        assert exempted > before

        # 3. the assessment page at once: the score rose
        page.goto(f"{base}/assessment?unit={s.unit}")
        _see(page, "未发布（当前数据）")
        _wait_idle(page)
        assert float(_metric(page, "总分")) == pytest.approx(exempted)

        # 4. publish the month
        page.goto(f"{base}/publication")
        _see(page, "本期间尚未发布")
        page.get_by_label("发布理由").fill("月度考评结果发布")
        page.get_by_role("button", name="发布 v1").click()
        _see(page, "已发布（编号")
        _wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "supervision_03_published_v1.png"), full_page=True)

        page.goto(f"{base}/assessment?unit={s.unit}")
        _see(page, "已发布 v1")
        _wait_idle(page)
        assert float(_metric(page, "总分")) == pytest.approx(exempted)
        published_book = _workbook(page, "v1")

        # 5. the sources change: the media platform corrects the clips of one fully recorded event of the unit
        # (recorded two days earlier: the event was not recorded, a late AV-NONE); `etl run` again
        incident = _one(
            s.url,
            """SELECT incident_no FROM event_coverage WHERE unit_code = :u AND status = 'full'
               AND substr(arrived_at, 1, 7) = :m ORDER BY incident_no""",
            u=s.unit,
            m=s.month,
        )[0]
        with sqlite3.connect(s.dir / "demo" / "media.sqlite") as con:  # a late correction: two days earlier
            moved = con.execute(
                """UPDATE clips SET started_at = datetime(started_at, '-2 days'), ended_at = datetime(ended_at,
                   '-2 days'), imported_at = datetime(imported_at, '-2 days'),
                   updated_at = (SELECT datetime(MAX(updated_at), '+1 minute') FROM clips) WHERE incident_no = ?""",
                (incident,),
            ).rowcount
            assert moved > 0
        etl_run(s.dir / "demo" / "sources.yaml", s.url)
        late = _score(s.url, s.unit, s.month)
        assert late < exempted

        # 6. the assessment page still shows the published score; the workbook equals the published one
        page.goto(f"{base}/assessment?unit={s.unit}")
        _see(page, "已发布 v1")
        _wait_idle(page)
        assert float(_metric(page, "总分")) == pytest.approx(exempted)
        page.screenshot(path=str(ARTIFACTS / "supervision_04_assessment_published.png"), full_page=True)
        assert _same_but_generation_time(published_book, _workbook(page, "v1_after_change")) == []
        page.get_by_text("显示当前数据（草稿）").click()
        _see(page, "草稿（当前数据）")
        _wait_idle(page)
        assert float(_metric(page, "总分")) == pytest.approx(late)

        # 7. the restatement lists the difference; version 2 is published with a reason
        page.goto(f"{base}/publication")
        page.get_by_role("heading", name="重述差异").wait_for(timeout=30000)
        _wait_idle(page)
        assert page.get_by_text("当前数据与已发布版本一致").count() == 0
        page.get_by_role("heading", name="重述差异").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "supervision_05_restatement.png"), full_page=True)
        page.get_by_label("发布理由").fill("迟到数据：重述")
        page.get_by_role("button", name="发布 v2").click()
        _see(page, "已发布（编号")
        _wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "supervision_06_published_v2.png"), full_page=True)
        browser.close()
    versions = _one(s.url, "SELECT COUNT(*), MAX(version) FROM sup_publications WHERE period = :p", p=s.month)
    assert versions == (2, 2)
    assert _one(
        s.url,
        "SELECT total FROM v_published_scores WHERE period = :p AND version = 2 AND unit_code = :u",
        p=s.month,
        u=s.unit,
    )[0] == pytest.approx(late)
