"""Trends across periods (issue 18, part 3): the pure functions (环比, 同比, the monthly series), the two-year demo
(``etl demo --years 2``), every metric, item score and total kept per unit and month across years
(``v_unit_metrics`` on SQLite and PostgreSQL), the overview, assessment and unit pages under every role that may
open them, and the workbook's 趋势 sheet (live, frozen at publication, opened by LibreOffice)."""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
import streamlit as st
import yaml
from page_helpers import logged_in, open_page
from streamlit.testing.v1 import AppTest

from dashboard import charts, logic, queries
from dashboard.auth import ROLE_PAGES
from etl import periods
from etl.demo import build, generate
from etl.demo.common import NULL_T
from etl.errors import ConfigError
from etl.pipeline import run as etl_run
from etl.reports.workbook import build_workbook, data
from etl.reports.workbook import trend as trend_sheet
from etl.rules.keys import object_key
from etl.scoring import trends
from etl.users import User
from etl.warehouse.db import make_engine, read_df
from etl.warehouse.scope import ScopeError
from tests.page_helpers import warehouse_env

ARROW = re.compile(r"^[↑↓→] \d")
GEN_AT = datetime(2026, 12, 1, 9, 0, 0)
LEGAL = User("legal", "李法", "legal", None, None)
CITY, COUNTY = "140400000000", "140403000000"
OTHER_COUNTY = "140423000000"


# --- pure: periods, changes, the monthly series ----------------------------------------------------------


@pytest.mark.parametrize(
    "period,previous,year_ago",
    [
        ("2026-07", "2026-06", "2025-07"),
        ("2026-01", "2025-12", "2025-01"),
        ("2026-Q3", "2026-Q2", "2025-Q3"),
        ("2026-Q1", "2025-Q4", "2025-Q1"),
        ("2026", "2025", "2025"),
    ],
)
def test_previous_period_and_year_ago(period: str, previous: str, year_ago: str) -> None:
    assert periods.previous(period) == previous
    assert periods.year_ago(period) == year_ago
    assert periods.kind(periods.previous(period)) == periods.kind(period)


def test_arrow_respects_the_tolerance() -> None:
    assert trends.arrow(0.01) == "↑"
    assert trends.arrow(-0.01) == "↓"
    assert trends.arrow(0.0) == "→"
    assert trends.arrow(0.00004, trends.RATE_TOLERANCE) == "→"
    assert trends.arrow(-0.0002, trends.RATE_TOLERANCE) == "↓"
    assert trends.arrow(None) == "" and trends.arrow(float("nan")) == ""


def _values(**by_period: float | None) -> pd.DataFrame:
    return pd.DataFrame({"period": list(by_period), "value": list(by_period.values())})


def test_change_against_previous_period_and_year_ago() -> None:
    v = _values(**{"2025-06": 0.90, "2026-05": 0.95, "2026-06": 0.93, "2025-Q2": 0.9, "2026-Q2": 0.94, "2026-Q1": None})
    c = trends.change(v, "2026-06", trends.RATE_TOLERANCE)
    assert (c["previous_period"], c["year_ago_period"]) == ("2026-05", "2025-06")
    assert c["change"] == pytest.approx(-0.02) and c["arrow"] == "↓"
    assert c["year_change"] == pytest.approx(0.03) and c["year_arrow"] == "↑"
    assert (c["label"], c["year_label"]) == ("较上月", "较去年同月")
    q = trends.change(v, "2026-Q2")
    assert q["previous"] is None and q["change"] is None and q["arrow"] == ""  # 2026-Q1 had no value
    assert q["year_change"] == pytest.approx(0.04) and q["label"] == "较上季度"
    none = trends.change(v, "2027-01")
    assert none["value"] is None and none["previous_period"] == "2026-12" and none["year_arrow"] == ""


def test_compare_is_per_unit() -> None:
    v = pd.DataFrame(
        {
            "unit_code": ["A", "A", "B", "B"],
            "period": ["2026-06", "2026-07", "2026-06", "2026-07"],
            "value": [80.0, 85.0, 90.0, 90.0],
        }
    )
    out = trends.compare(v, ["2026-07"], trends.POINTS_TOLERANCE).set_index("unit_code")
    assert out.at["A", "change"] == pytest.approx(5.0) and out.at["A", "arrow"] == "↑"
    assert out.at["B", "change"] == pytest.approx(0.0) and out.at["B", "arrow"] == "→"
    assert out.at["A", "year_ago"] is None and out.at["A", "year_arrow"] == ""


def test_monthly_aligns_the_same_month_of_last_year() -> None:
    v = _values(**{"2025-01": 0.8, "2025-02": 0.82, "2025-12": 0.85, "2026-01": 0.9, "2026-02": None, "2026-Q1": 0.5})
    m = trends.monthly(v, "2026-Q1")
    assert list(m["label"]) == ["1月", "2月", "12月"]
    jan = m.iloc[0]
    assert (jan["period"], jan["year_ago_period"]) == ("2026-01", "2025-01")
    assert jan["year_change"] == pytest.approx(0.1)
    assert m.iloc[1]["value"] is None and m.iloc[1]["year_change"] is None  # no value: no change
    assert m.iloc[2]["value"] is None and m.iloc[2]["year_ago"] == pytest.approx(0.85)
    assert list(trends.window(v, "2026-02", 2)["period"]) == ["2026-01", "2026-02"]


def test_change_cards_read_as_arrows_and_numbers() -> None:
    v = _values(**{"2025-06": 0.90, "2026-05": 0.95, "2026-06": 0.93})
    cards = logic.change_cards(v, "2026-06", "whole_process_rate")
    assert [c["value"] for c in cards] == ["93.0%", "90.0%"]
    assert cards[0]["delta"] == "↓ 2.0 个百分点" and cards[0]["delta_color"] == "red"
    assert cards[0]["delta_description"] == "较上月"
    assert cards[1]["delta"] == "↑ 3.0 个百分点" and cards[1]["delta_color"] == "green"
    assert cards[1]["delta_description"] == "本期较去年同月"
    assert all(c["delta_arrow"] == "off" for c in cards)  # the arrow is ours, in the text
    totals = logic.change_cards(_values(**{"2025": 80.0, "2026": 80.0}), "2026", "total")
    assert len(totals) == 1  # a year: the previous period is the year before
    assert totals[0]["delta"] == "→ 0.00 分" and totals[0]["delta_color"] == "gray"
    assert totals[0]["delta_description"] == "较上年"
    en = logic.change_cards(v, "2026-06", "whole_process_rate", "en")
    assert en[0]["delta"] == "↓ 2.0 pp" and en[0]["delta_description"] == "vs previous month"
    events = logic.change_cards(_values(**{"2026-05": 10.0, "2026-06": 12.0}), "2026-06", "events")
    assert events[0]["delta"] == "↑ 2 起" and events[1]["delta"] is None


def test_trend_values_pick_the_series() -> None:
    scores = pd.DataFrame({"period": ["2026-06", "2026-05"], "total": [90.0, 80.0]})
    metrics = pd.DataFrame(
        {
            "period": ["2026-06", "2026-06"],
            "metric": ["whole_process_rate", "usage_rate"],
            "numerator": [9.0, 0.0],
            "denominator": [10.0, 0.0],
            "value": [0.9, None],
        }
    )
    assert list(logic.trend_values("total", scores, metrics)["value"]) == [80.0, 90.0]  # by period
    assert list(logic.trend_values("events", scores, metrics)["value"]) == [10.0]
    assert logic.trend_values("usage_rate", scores, metrics)["value"].isna().all()
    assert list(logic.trend_options())[:3] == ["whole_process_rate", "total", "events"]


def test_yoy_chart_draws_last_year_dashed_and_escapes() -> None:
    df = logic.monthly_trend(_values(**{"2025-07": 0.9, "2026-07": 0.95}), "2026-07", "whole_process_rate")
    fig = charts.yoy(df, "<b>趋势</b>", "2026年", "2025年")
    assert [t.name for t in fig.data] == ["2025年", "2026年"]
    assert fig.data[0].line.dash == "dash" and fig.data[1].line.dash == "solid"
    assert list(fig.data[1].y) == [pytest.approx(95.0)]
    assert "<b>" not in fig.layout.title.text
    low, high = fig.layout.yaxis.range
    assert high - low >= 10 and low <= 90 and high >= 95  # a rate: at least 10 points, both years inside
    totals = logic.monthly_trend(_values(**{"2025-07": 59.0, "2026-07": 59.0}), "2026-07", "total")
    assert list(charts.yoy(totals, "总分", scale=logic.trend_scale("total")).layout.yaxis.range) == [0, 105]
    assert charts.yoy(df.iloc[0:0], "空").layout.annotations[0].text == "无数据"


def test_unit_profile_and_its_charts() -> None:
    months = [str(p) for p in pd.period_range("2025-01", "2026-06", freq="M")]
    scores = pd.DataFrame(
        {
            "period": [*months, "2026-Q2", "2026"],
            "total": [60.0 + i for i in range(len(months))] + [70.0, 70.0],
            "grade": ["达标"] * (len(months) - 1) + ["优秀", "达标", "达标"],
            "rank": [1] * (len(months) + 2),
            "veto": [1] + [0] * (len(months) + 1),
        }
    )
    metrics = pd.DataFrame(
        [
            (p, m, 1.0, 2.0 if m != "spotcheck_pass_rate" else 0.0, 0.5 if m != "spotcheck_pass_rate" else None)
            for p in months
            for m in ("whole_process_rate", "usage_rate", "spotcheck_pass_rate")
        ],
        columns=["period", "metric", "numerator", "denominator", "value"],
    )
    p = logic.unit_profile(scores, metrics, 12)
    assert p["last"] == "2026-06"
    assert (p["grade"], p["rank"]) == ("优秀", "1")
    assert list(p["totals"]["month"]) == months[-12:]
    summary = p["summary"].set_index("指标")
    assert summary.at["全程记录率", "最新月"] == "50.0%"
    assert summary.at["全程记录率", "较上月"] == "→ 0.0 个百分点"
    assert len(summary.at["全程记录率", "走势（%）"]) == 12
    assert summary.at["抽查合格率", "最新月"] == "—"
    assert list(p["table"]["month"])[0] == "2026-06"  # newest first
    assert len(logic.unit_profile(scores, metrics, 24)["totals"]) == 18
    assert logic.unit_profile(scores.iloc[0:0], metrics.iloc[0:0], 12)["last"] is None
    fig = charts.unit_totals(p["totals"], "每月总分与等级")
    assert {t.name for t in fig.data} >= {"达标", "优秀"}
    fig = charts.small_multiples(p["metrics"], "主要指标")
    assert [a.text for a in fig.layout.annotations if a.text == "无数据"] == ["无数据"]  # 抽查合格率: none


# --- the two-year demo -----------------------------------------------------------------------------------


def test_demo_years_argument() -> None:
    from etl.cli import build_parser

    assert build_parser().parse_args(["demo", "--out", "x"]).years == 1
    assert build_parser().parse_args(["demo", "--out", "x", "--years", "2"]).years == 2
    for bad in (0, 6):
        with pytest.raises(ConfigError, match="演示年数"):
            build("small", 2026, years=bad)


def _lapses(events: pd.DataFrame) -> float:
    on = events[(events["on_site"] == 1)]
    return float(on["scenario"].isin(["none", "gap", "late", "early", "missing_officer"]).mean())


def test_two_year_demo_spans_two_years_and_improves() -> None:
    one, two = build("small", 2026), build("small", 2026, years=2)
    first = pd.to_datetime(two["incidents"]["received_at"], unit="s").min()
    assert first < pd.Timestamp("2025-01-01") and first >= pd.Timestamp("2024-11-30")
    assert len(two["incidents"]) > 1.8 * len(one["incidents"])
    assert len(two["cases"]) == 2 * len(one["cases"])
    inc = two["incidents"][two["incidents"]["start"] != NULL_T]
    start = pd.to_datetime(inc["start"], unit="s")
    earlier, last = inc[start < "2025-12-01"], inc[start >= "2025-12-01"]
    assert _lapses(earlier) > 1.3 * _lapses(last)  # the first year records worse: a visible trend
    # devices and admins are in place before the first year's data
    starts = two["incidents"]["start"]
    assert int(two["device_assignments"]["from_at"].min()) < int(starts[starts != NULL_T].min())


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo2") / "demo"
    assert "2 年" in generate(out, scale="small", seed=2026, media=False, years=2)
    return out


def test_two_year_demo_same_seed_same_bytes(demo2: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", scale="small", seed=2026, media=False, years=2)
    first, second = _files(demo2), _files(tmp_path / "again")
    assert sorted(first) == sorted(second)
    assert [n for n in first if first[n] != second[n]] == []


@pytest.fixture(scope="module")
def wh2(demo2: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    url = f"sqlite:///{tmp_path_factory.mktemp('wh2') / 'w.sqlite'}"
    assert etl_run(demo2 / "sources.yaml", url).status == "ok"
    users = yaml.safe_load((demo2 / "users.yaml").read_text(encoding="utf-8"))["users"]
    return {"url": url, "users": users, "users_file": demo2 / "users.yaml", "demo": demo2}


def test_etl_on_two_years_finds_exactly_the_manifest(wh2: dict) -> None:
    manifest = pd.read_csv(wh2["demo"] / "manifest.csv", dtype=str, keep_default_na=False)
    found = read_df(make_engine(wh2["url"]), "SELECT * FROM v_findings")
    found = found.astype(object).where(found.notna(), None)
    found["month"] = np.where(found["rule_id"] == "EQUIP-IDLE", found["occurred_at"].astype(str).str[:7], None)
    expected = {object_key(r["rule_id"], r) for r in manifest.to_dict("records")}
    got = {object_key(r["rule_id"], r) for r in found.to_dict("records")}
    assert sorted(expected - got, key=str)[:10] == []
    assert sorted(got - expected, key=str)[:10] == []
    assert {str(m)[:4] for m in found["occurred_at"]} >= {"2025", "2026"}


def _months(periods_: pd.Series) -> set[str]:
    return {p for p in periods_ if re.fullmatch(r"\d{4}-\d{2}", p)}


def test_every_metric_item_and_total_per_unit_and_month_across_years(wh2: dict) -> None:
    engine = make_engine(wh2["url"])
    units = set(read_df(engine, "SELECT unit_code FROM org_units")["unit_code"])
    events = read_df(engine, "SELECT DISTINCT substr(arrived_at, 1, 7) AS m FROM event_coverage")
    months = set(events["m"])
    assert {"2024-12", "2025-06", "2026-06", "2026-11"} <= months
    m = read_df(engine, "SELECT * FROM v_unit_metrics")
    assert list(m.columns[:6]) == ["period", "unit_code", "metric", "numerator", "denominator", "value"]
    from etl.scoring.metrics import METRICS

    for metric in METRICS:
        mine = m[m["metric"] == metric]
        for unit in units:
            assert months <= _months(mine.loc[mine["unit_code"] == unit, "period"]), (metric, unit)
    assert m.loc[m["denominator"] == 0, "value"].isna().all()
    assert m.loc[m["denominator"] > 0, "value"].notna().all()
    assert {"2025", "2026", "2025-Q4", "2026-Q1"} <= set(m["period"])
    for view in ("v_unit_scores", "v_unit_item_scores"):
        s = read_df(engine, f"SELECT period, unit_code FROM {view}")
        for unit in units:
            assert months <= _months(s.loc[s["unit_code"] == unit, "period"]), (view, unit)
    # the city's whole-process rate: the demo's first year records worse than its second
    wpr = m[(m["unit_code"] == CITY) & (m["metric"] == "whole_process_rate")].set_index("period")["value"]
    assert wpr["2025"] < wpr["2026"]
    engine.dispose()


@pytest.mark.postgres
def test_v_unit_metrics_on_postgres_equals_sqlite(wh2: dict, pg_url: str) -> None:
    assert etl_run(wh2["demo"] / "sources.yaml", pg_url).status == "ok"
    sql = "SELECT period, unit_code, metric, numerator, denominator, value FROM v_unit_metrics"
    key = ["period", "unit_code", "metric"]
    pg = read_df(make_engine(pg_url), sql).sort_values(key, ignore_index=True)
    lite = read_df(make_engine(wh2["url"]), sql).sort_values(key, ignore_index=True)
    assert len(pg) == len(lite) > 0
    assert pg[key].equals(lite[key])
    for col in ("numerator", "denominator", "value"):
        a, b = pd.to_numeric(pg[col]), pd.to_numeric(lite[col])
        assert (a.isna() == b.isna()).all(), col
        assert np.allclose(a.dropna(), b.dropna()), col
    assert pg.loc[pg["denominator"] == 0, "value"].isna().all()


# --- pages: overview, assessment, unit profile -----------------------------------------------------------


@pytest.fixture
def dash(wh2: dict):
    with warehouse_env(wh2["url"]):
        st.cache_data.clear()
        yield wh2


def _chart(at, title: str) -> str:  # noqa: ANN001 - an AppTest
    """The plotly spec (JSON text, non-ASCII as written) of the chart whose title holds ``title``."""
    specs = [json.dumps(json.loads(c.proto.spec), ensure_ascii=False) for c in at.get("plotly_chart")]
    return next(s for s in specs if title in s)


def _trend_deltas(at) -> list[str]:  # noqa: ANN001 - an AppTest
    return [m.proto.delta for m in at.metric if m.proto.delta and "（" in m.label]


@pytest.mark.parametrize("username", ["leader", "legal", "county", "station"])
def test_trend_pages_under_every_role_that_may_open_them(dash: dict, username: str) -> None:
    role = dash["users"][username]["role"]
    at = logged_in(dash, username)
    for page in ("overview", "assessment", "unit"):
        assert page in ROLE_PAGES[role]
        open_page(at, page)
        assert not at.error, (page, [e.value for e in at.error])
        deltas = _trend_deltas(at)
        assert deltas and all(ARROW.match(d) for d in deltas), (page, deltas)
        charts_ = at.get("plotly_chart")
        assert charts_, page
    # the unit picker of the unit page offers only the user's scope
    offered = set([s for s in at.selectbox if s.key == "unit"][0].options)  # as shown: the units' names
    scope = queries.units(dash["url"], at.session_state["_ctx"].scope)
    assert offered == set(scope["name"])
    names = queries.unit_names(dash["url"])
    if role == "unit_admin":
        assert names[CITY] not in offered and names[OTHER_COUNTY] not in offered


def test_overview_trend_follows_the_series_and_the_period(dash: dict) -> None:
    at = logged_in(dash, "leader")
    open_page(at, "overview")
    at.selectbox(key="trend_series").set_value("total").run()
    assert any(d.endswith(" 分") for d in _trend_deltas(at))
    at.radio(key="period_kind").set_value("year").run()
    labels = [m.label for m in at.metric if "（" in m.label and "年度" in m.label]
    assert labels and not [m for m in at.metric if "去年同期" in m.label]  # a year: 较上年 only
    chart = _chart(at, "月度趋势（同比）")
    assert "2026年" in chart and "2025年" in chart


@pytest.mark.parametrize("username", ["equipment", "it"])
def test_unit_page_is_closed_to_other_roles(dash: dict, username: str) -> None:
    at = logged_in(dash, username)
    assert "unit" not in ROLE_PAGES[dash["users"][username]["role"]]
    with pytest.raises(ValueError, match="navigation page"):  # not in the navigation at all
        open_page(at, "unit")
    # and the page file itself, run without the app's login, shows nothing
    direct = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "pages" / "unit.py"), default_timeout=60)
    direct.run()
    assert "无权访问本页面" in [e.value for e in direct.error]
    assert not direct.metric and not direct.get("plotly_chart")


def test_unit_page_ignores_a_unit_outside_the_scope(dash: dict) -> None:
    at = logged_in(dash, "county")
    at.query_params["unit"] = OTHER_COUNTY
    open_page(at, "unit")
    box = [s for s in at.selectbox if s.key == "unit"][0]
    assert box.value == COUNTY and queries.unit_names(dash["url"])[OTHER_COUNTY] not in box.options
    scope = at.session_state["_ctx"].scope
    with pytest.raises(ScopeError):
        queries.unit_metric_history(dash["url"], scope, OTHER_COUNTY)
    with pytest.raises(ScopeError):
        queries.unit_score_history(dash["url"], scope, CITY)


def test_unit_page_24_months(dash: dict) -> None:
    at = logged_in(dash, "leader")
    open_page(at, "unit")
    at.radio(key="unit_months").set_value(24).run()
    spec = _chart(at, "每月总分与等级")
    assert "2024-12" in spec and "2026-11" in spec
    table = at.dataframe[-1].value
    assert len(table) == 24 and {"月份", "总分", "等级", "名次", "全程记录率"} <= set(table.columns)


# --- the workbook's 趋势 sheet ------------------------------------------------------------------------


def _book(url: str, **kw) -> openpyxl.Workbook:  # noqa: ANN003
    engine = make_engine(url)
    try:
        return openpyxl.load_workbook(io.BytesIO(build_workbook(engine, generated_at=GEN_AT, **kw)))
    finally:
        engine.dispose()


def _rows(ws) -> pd.DataFrame:  # noqa: ANN001
    rows = list(ws.iter_rows(values_only=True))
    return pd.DataFrame(rows[1:], columns=rows[0])


@pytest.mark.parametrize("period,unit", [("2026-07", None), ("2026-Q3", COUNTY), ("2026", None)])
def test_trend_sheet_matches_the_warehouse(wh2: dict, period: str, unit: str | None) -> None:
    wb = _book(wh2["url"], period=period, unit_code=unit)
    assert wb.sheetnames.index("趋势") == wb.sheetnames.index("指标") + 1
    ws = wb["趋势"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:L")
    assert ws.page_setup.orientation == "landscape" and str(ws.page_setup.paperSize) == ws.PAPERSIZE_A4
    assert ws.cell(2, 6).number_format == '"↑ "0.00;"↓ "0.00;"→ "0.00'
    df = _rows(ws)
    engine = make_engine(wh2["url"])
    scores = read_df(engine, "SELECT unit_code, period, total, grade FROM v_unit_scores")
    rates = read_df(engine, "SELECT unit_code, period, value FROM v_unit_metrics WHERE metric = 'whole_process_rate'")
    engine.dispose()
    summary = _rows(wb["汇总"])
    scored = [u for u in summary["单位代码"] if isinstance(u, str) and u.isdigit()]
    per = periods.parse(period)
    shown = list(dict.fromkeys([*per.months, per.code]))
    assert list(dict.fromkeys(df["单位代码"])) == scored  # the summary's order
    with_data = [p for p in shown if p <= "2026-11" or not re.fullmatch(r"\d{4}-\d{2}", p)]  # the demo ends in Nov.
    assert len(df) == len(scored) * len(with_data)
    total = scores.set_index(["unit_code", "period"])["total"]
    rate = rates.set_index(["unit_code", "period"])["value"]
    for r in df.itertuples(index=False):
        u, p = r[0], r[2]
        assert r[3] == pytest.approx(total[(u, p)], abs=0.005)
        prev = total.get((u, periods.previous(p)))
        if prev is None:
            assert r[5] == "—"
        else:
            assert r[5] == pytest.approx(round(total[(u, p)] - prev, 2), abs=0.0051)
        ago = total.get((u, periods.year_ago(p)))
        assert r[6] == ("—" if ago is None else pytest.approx(ago, abs=0.005))
        now, ago_rate = rate.get((u, p)), rate.get((u, periods.year_ago(p)))
        assert r[8] == ("—" if now is None or pd.isna(now) else pytest.approx(now, abs=0.00005))
        unknown = any(v is None or pd.isna(v) for v in (now, ago_rate))
        assert r[11] == ("—" if unknown else pytest.approx(round((now - ago_rate) * 100, 1), abs=0.051))
    # a year before the data began has no year-ago figures, a later one has
    assert (df["总分\n去年同期"] != "—").any()


def test_trend_rows_pure() -> None:
    per = periods.parse("2026-Q1")
    frame = pd.DataFrame(
        {
            "unit_code": ["U"] * 5,
            "period": ["2025-12", "2026-01", "2026-02", "2026-Q1", "2025-01"],
            "total": [80.0, 82.5, 80.0, 81.0, 79.0],
            "grade": ["达标"] * 5,
            "rate": [0.9, 0.95, None, 0.93, 0.85],
        }
    )
    rows = trend_sheet.trend_rows(frame, per, {"U": "单位"}, {"U": 0, "V": 1})
    assert [r[2] for r in rows] == ["2026-01", "2026-02", "2026-Q1"]  # no March: no figures yet
    jan, feb, q1 = rows
    assert jan[5] == 2.5 and jan[7] == 3.5 and jan[9] == 5.0 and jan[11] == 10.0
    assert feb[5] == -2.5 and feb[8] == "—" and feb[9] == "—"
    assert q1[5] == "—" and q1[6] == "—"  # no 2025-Q4 and no 2025-Q1 rows
    assert trend_sheet.trend_rows(None, per, {}, {})[0][0] == trend_sheet.NOT_FROZEN
    assert data.trend_periods(periods.parse("2026-07")) == ["2025-07", "2026-06", "2026-07"]


def test_trend_sheet_frozen_at_publication(wh2: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from etl.supervision.publish import publish

    monkeypatch.setenv("AVSUP_TODAY", "2026-11-30")
    copy = tmp_path / "w.sqlite"
    with sqlite3.connect(wh2["url"][len("sqlite:///") :]) as a, sqlite3.connect(copy) as b:
        a.backup(b)
    a.close()
    b.close()
    url = f"sqlite:///{copy}"
    engine = make_engine(url)
    before = _book(url, period="2026-10")
    pid, _ = publish(engine, LEGAL, "2026-10", reason="发布")
    published = _book(url, period="2026-10")
    assert list(published["趋势"].values) == list(before["趋势"].values)
    with engine.begin() as conn:  # later: last year's October restated
        conn.exec_driver_sql("UPDATE unit_scores SET total = total - 10 WHERE period = '2025-10'")
    again = _book(url, period="2026-10")
    current = _book(url, period="2026-10", current=True)
    assert list(again["趋势"].values) == list(before["趋势"].values)
    assert list(current["趋势"].values) != list(before["趋势"].values)
    with engine.begin() as conn:  # a publication made before the sheet existed
        conn.exec_driver_sql("DELETE FROM sup_published_frames WHERE publication_id = ? AND name = 'trend'", (pid,))
    old = _book(url, period="2026-10")
    assert old["趋势"].cell(2, 1).value == trend_sheet.NOT_FROZEN and old["趋势"].max_row == 2
    engine.dispose()


@pytest.mark.libreoffice
def test_trend_sheet_opens_in_libreoffice(wh2: dict, tmp_path: Path) -> None:
    if not shutil.which("soffice"):
        pytest.fail("LibreOffice is required (make system-deps)")
    engine = make_engine(wh2["url"])
    xlsx = tmp_path / "kaoping.xlsx"
    xlsx.write_bytes(build_workbook(engine, period="2026-Q3", generated_at=GEN_AT))
    engine.dispose()
    sheet = openpyxl.load_workbook(xlsx).sheetnames.index("趋势") + 1
    profile = f"file:///tmp/lo_profile_{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            f"csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,{sheet}",
            "--outdir",
            str(tmp_path),
            str(xlsx),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    out = next(tmp_path.glob("kaoping*.csv"))
    text = out.read_text(encoding="utf-8")
    assert "2026-Q3" in text and "长治市公安局" in text
    assert re.search(r"[↑↓→] \d+\.\d", text)  # the changes read with their arrows, as formatted
