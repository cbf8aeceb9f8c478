"""Charts and small helpers of the dashboard as pure functions (no Streamlit run)."""

from __future__ import annotations

import io

import openpyxl
import pandas as pd
import pytest

from dashboard import charts, exports, logic
from dashboard.i18n import headers, tr
from etl import periods

XSS = "<img src=x onerror=alert(1)>"


def _all_text(fig) -> str:  # noqa: ANN001
    return fig.to_json()


def test_heatmap_grid_and_escaping():
    df = pd.DataFrame({"unit_name": [XSS, "东街派出所"], "month": ["2026-07", "2026-07"], "rate": [0.5, float("nan")]})
    fig = charts.heatmap(df)
    assert fig.layout.xaxis.type == "category"
    text = _all_text(fig)
    assert "<img" not in text and "&lt;img" in text


def test_bars_escape_labels_and_hover():
    df = pd.DataFrame({"label": [XSS], "count": [3], "hover": [XSS]})
    for fig in (
        charts.bars(df, "label", "count", "t", hover="hover"),
        charts.bars(df, "label", "count", "t", horizontal=True, hover="hover"),
    ):
        text = _all_text(fig)
        assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_empty_frame_gives_a_message_not_an_error():
    fig = charts.bars(pd.DataFrame(columns=["a", "b"]), "a", "b", "标题")
    assert fig.layout.annotations[0].text == "无数据"


def test_event_timeline_rows_and_clipped_segments():
    event = pd.Series(
        {"arrived_at": pd.Timestamp("2026-07-10 09:00:00"), "ended_at": pd.Timestamp("2026-07-10 09:30:00")}
    )
    officers = pd.DataFrame({"police_no": ["P1", "P2"], "name": [XSS, "乙"]})
    clips = pd.DataFrame(
        {
            "clip_id": ["C1"],
            "police_no": ["P1"],
            "started_at": [pd.Timestamp("2026-07-10 08:50:00")],
            "ended_at": [pd.Timestamp("2026-07-10 09:20:00")],
        }
    )
    gaps = pd.DataFrame(
        {
            "gap_start": [pd.Timestamp("2026-07-10 09:20:00")],
            "gap_end": [pd.Timestamp("2026-07-10 09:30:00")],
            "gap_s": [600.0],
        }
    )
    reports = pd.DataFrame({"police_no": ["P2"], "reported_at": [pd.Timestamp("2026-07-10 10:00:00")], "reason": ["x"]})
    fig = charts.event_timeline(event, clips, gaps, reports, officers)
    rows = list(fig.layout.yaxis.categoryarray)
    assert rows[0] == "窗口" and rows[-1] == "空档" and len(rows) == 4
    clip_bar = [d for d in fig.data if d.marker.color == charts.COLORS["clip"]][0]
    assert clip_bar.x[0] == pytest.approx(20 * 60 * 1000)  # clipped to the window: 09:00-09:20
    assert "<img" not in _all_text(fig)


def test_rates_show_dash_for_empty_denominator():
    assert logic.rate(0, 0) is None and logic.fmt_rate(None) == "—"
    view = logic.metrics_view(
        pd.DataFrame(
            {
                "metric_id": ["issue_rate", "whole_process_rate"],
                "numerator": [0.0, 3.0],
                "denominator": [0.0, 4.0],
                "value": [None, 0.75],
            }
        )
    )
    assert list(view["value"]) == ["—", "75.0%"]
    assert list(view["metric"]) == ["配发率", "全程记录率"]


def test_status_summary_counts_excused_as_recorded():
    s = logic.status_summary(pd.DataFrame({"status": ["full", "excused", "none"], "count": [2, 1, 1]}))
    assert (s["events"], s["ok"], s["rate"]) == (4, 3, 0.75)
    assert logic.status_summary(pd.DataFrame(columns=["status", "count"]))["rate"] is None


def test_case_checklist_passes_and_fails():
    f = pd.DataFrame({"rule_id": ["DOC-SIGNATURE", "DOC-SIGNATURE"]})
    c = logic.case_checklist(f, ("DOC-SIGNATURE", "DELIVERY"))
    assert list(c["status"]) == ["未通过", "通过"] and list(c["findings"]) == [2, 0]
    assert c.loc[0, "article"] == "第十一条、第十二条、第十三条"


def test_periods():
    assert periods.months("2026-Q3") == ["2026-07", "2026-08", "2026-09"]
    assert periods.bounds("2026-12")[1].isoformat() == "2027-01-01T00:00:00"
    assert periods.label("2026-Q3") == "2026年第3季度" and periods.label("2026") == "2026年度"
    assert periods.label("2026-07") == "2026年7月" and periods.label("2026-07", "en") == "2026-07"
    assert periods.periods_by_kind(["2026-06", "2026-07"]) == {
        "year": ["2026"],
        "quarter": ["2026-Q3", "2026-Q2"],
        "month": ["2026-07", "2026-06"],
    }
    with pytest.raises(ValueError):
        periods.kind("2026-13")


def test_xlsx_export_neutralises_formulas():
    df = pd.DataFrame({"设备编号": ['=HYPERLINK("http://x")', "DEV-1"], "数量": [1, 2]})
    wb = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(df)))
    ws = wb.active
    assert ws["A2"].value == '\'=HYPERLINK("http://x")' and ws["A2"].data_type == "s"
    assert ws.freeze_panes == "A2" and ws["B3"].value == 2


def test_i18n():
    assert tr("总览", "en") == "Overview" and tr("总览", "zh") == "总览" and tr("未知", "en") == "未知"
    assert list(headers(pd.DataFrame(columns=["unit_code"]), "zh").columns) == ["单位代码"]


def test_findings_by_rule_merges_articles():
    df = pd.DataFrame(
        {
            "rule_id": ["DOC-MISSING", "DOC-MISSING", "AV-GAP"],
            "article": ["第十三条", "第十八条", "第十五条"],
            "count": [2, 1, 5],
        }
    )
    out = logic.findings_by_rule(df)
    assert list(out["rule_id"]) == ["AV-GAP", "DOC-MISSING"]
    assert out.loc[1, "count"] == 3 and out.loc[1, "article"] == "第十三条；第十八条"


def test_level_averages_compare_like_with_like():
    scores = pd.DataFrame(
        {
            "level": ["city", "county", "county", "station", "station", "station"],
            "total": [60.0, 80.0, 90.0, 100.0, 70.0, None],
        }
    )
    out = logic.level_averages(scores)
    assert list(out["level"]) == ["city", "county", "station"]
    assert list(out["label"]) == ["市局", "县（区）局", "基层所队"]
    assert list(out["mean"]) == [60.0, 85.0, 85.0] and list(out["units"]) == [1, 2, 2]
    assert scores["total"].mean() != 85.0  # the old all-levels average mixed a city, counties and stations
    assert logic.level_averages(scores.iloc[0:0]).empty


def test_pages_and_workbook_share_one_vocabulary():
    from etl.reports.workbook import sheets

    view = logic.scores_view(pd.DataFrame({"level": ["city", "county", "station"], "veto": [0, 1, 0]}))
    assert list(view["level"]) == ["市局", "县（区）局", "基层所队"]
    assert [c.header for c in sheets.COVERAGE_COLS[4:8]] == [
        logic.STATUS_ZH[s] for s in ("full", "excused", "partial", "none")
    ]
    assert tr("县（区）局", "en") == "County/district bureau" and tr("全程记录", "en") == "fully recorded"
