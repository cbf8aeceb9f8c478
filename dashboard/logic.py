"""Small pure helpers behind the pages: rates, labels, the case checklist, repair ages."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pandas as pd

from dashboard.i18n import tr
from etl.rules.keys import RULES
from etl.times import ts_text
from etl.vocabulary import COVERAGE_STATUS, LEVEL_ORDER, LEVELS, level_label

STATUS_ZH = COVERAGE_STATUS  # 全程记录 / 已报备中断 / 部分记录 / 未记录: the workbook's words (etl.vocabulary)
CAUSE_ZH = {"no_device": "未配发设备", "device_repair": "设备维修或丢失", "not_recorded": "未开启记录"}
METRIC_ZH = {
    "issue_rate": "配发率",
    "usage_rate": "使用率",
    "timely_import_rate": "及时导入率",
    "incident_link_rate": "警情关联率",
    "incident_association_rate": "警情关联率",
    "case_link_rate": "案件关联率",
    "case_association_rate": "案件关联率",
    "whole_process_rate": "全程记录率",
    "mean_coverage": "平均覆盖率",
    "spotcheck_pass_rate": "抽查合格率",
    "rectify_ontime_rate": "整改按期完成率",
}
RULE_ZH = {
    "AV-NONE": "现场未记录",
    "AV-GAP": "记录中断",
    "AV-OFFICER": "民警未记录",
    "DOC-MISSING": "文书缺失",
    "AV-MEASURE": "措施无音像",
    "DOC-SIGNATURE": "签名缺失",
    "START-APPROVAL": "立案审批",
    "MAJOR-REVIEW": "重大案件审核",
    "NOT-FILED-NOTICE": "不予立案告知",
    "DECISION-RECORD": "决定记录",
    "RIGHTS-NOTICE": "权利告知",
    "SIMPLE-PROCEDURE": "简易程序",
    "DELIVERY": "送达",
    "PERFORMANCE-CHECK": "履行检查",
    "EQUIP-ADMIN": "设备管理员",
    "EQUIP-REPAIR": "维修超期",
    "EQUIP-IDLE": "设备闲置",
    "EQUIP-LEDGER": "台账不符",
    "ACCESS-RECORD": "调阅登记",
    "ACCESS-SCOPE": "越权调阅",
    "ACCESS-EXTERNAL": "对外提供",
    "DELETE-UNLOGGED": "删除未登记",
    "INTEGRITY-HASH": "原始文件被篡改",
    "INTEGRITY-MISSING": "原始文件缺失",
    "INTEGRITY-DELETED": "提前删除",
    "UPLOAD-LATE": "上传超时",
    "WINDOW-CCTV": "窗口监控",
}


PROCEDURE_ZH = {"simple": "简易程序", "general": "普通程序"}


def cases_view(cases: pd.DataFrame) -> pd.DataFrame:
    d = cases.copy()
    if "procedure" in d:
        d["procedure"] = d["procedure"].map(lambda v: PROCEDURE_ZH.get(v, v))
    return d


def rate(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None for an empty denominator (shown as "—", never 0 % or 100 %)."""
    if denominator is None or pd.isna(denominator) or denominator == 0:
        return None
    return float(numerator or 0) / float(denominator)


def fmt_rate(value: float | None) -> str:
    return "—" if value is None or pd.isna(value) else f"{value * 100:.1f}%"


def fmt_num(value: float | None) -> str:
    if value is None or pd.isna(value):
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def fmt_time(value: object) -> str:
    """'YYYY-MM-DD HH:MM:SS' of a datetime or text (``etl.times.ts_text``), "—" when missing."""
    return ts_text(value) or "—"


def with_rate(df: pd.DataFrame, num: str = "ok", den: str = "events", out: str = "rate") -> pd.DataFrame:
    """Adds ``out`` = num/den with NaN (not 0) where the denominator is empty."""
    d = df.copy()
    den_s = pd.to_numeric(d[den], errors="coerce")
    d[out] = pd.to_numeric(d[num], errors="coerce") / den_s.where(den_s > 0)
    return d


def status_summary(counts: pd.DataFrame) -> dict:
    """events / ok (full or excused) / rate from (status, count) rows."""
    by = dict(zip(counts["status"], counts["count"], strict=True)) if not counts.empty else {}
    events = int(sum(by.values()))
    ok = int(by.get("full", 0) + by.get("excused", 0))
    return {"events": events, "ok": ok, "rate": rate(ok, events), "by_status": by}


def metrics_view(df: pd.DataFrame) -> pd.DataFrame:
    """Metrics with a Chinese name and a text value ("—" when the denominator is empty)."""
    d = df.copy()
    d["metric"] = d["metric_id"].map(lambda m: METRIC_ZH.get(str(m), str(m)))
    d["value"] = [fmt_rate(rate(n, den)) for n, den in zip(d["numerator"], d["denominator"], strict=True)]
    d["numerator"] = d["numerator"].map(fmt_num)
    d["denominator"] = d["denominator"].map(fmt_num)
    return d[["metric", "numerator", "denominator", "value"]]


def metric_loss_view(df: pd.DataFrame) -> pd.DataFrame:
    """A metric item's drill-down (queries.item_lost_points ``metric``): the metric against its target and the
    points its value lost, as text ("—" when the denominator is empty: full points)."""
    d = metrics_view(df)
    d["target"] = [fmt_rate(v) for v in df["target"]]
    d["points_lost"] = [f"{float(v):.2f}" for v in df["points_lost"]]
    return d


def case_checklist(findings: pd.DataFrame, rule_ids: tuple[str, ...]) -> pd.DataFrame:
    """One row per case rule: article, failed count and 通过/未通过 (an exempted finding fails nothing)."""
    if "review_state" in findings.columns:
        findings = findings[findings["review_state"].ne("exempted")]
    counts = findings["rule_id"].value_counts() if not findings.empty else pd.Series(dtype=int)
    rows = []
    for r in rule_ids:
        n = int(counts.get(r, 0))
        rows.append(
            {
                "rule_id": r,
                "name": RULE_ZH.get(r, r),
                "article": RULES[r]["article"],
                "findings": n,
                "status": "通过" if n == 0 else "未通过",
            }
        )
    return pd.DataFrame(rows)


def signature_status(docs: pd.DataFrame) -> pd.Series:
    """已签名 / 拒签 / 未签名 per document (party signature)."""

    def one(signed, refused) -> str:  # noqa: ANN001
        if refused == 1:
            return "拒签"
        return "已签名" if signed == 1 else "未签名"

    return pd.Series(
        [one(s, r) for s, r in zip(docs["party_signed"], docs["party_refused"], strict=True)],
        index=docs.index,
        dtype=object,
    )


def repair_age(devices: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """Devices in repair with the days since they went there, longest first."""
    d = devices[devices["status"] == "repair"].copy()
    d["repair_days"] = (pd.Timestamp(as_of) - pd.to_datetime(d["status_since"])).dt.days
    return d.sort_values("repair_days", ascending=False)


def label_codes(df: pd.DataFrame, names: dict[str, str], col: str = "unit_code") -> pd.DataFrame:
    """Adds unit_name after unit_code."""
    if col not in df.columns:
        return df
    d = df.copy()
    d.insert(d.columns.get_loc(col) + 1, "unit_name", d[col].map(lambda c: names.get(str(c), str(c))))
    return d


ACCESS_ZH = {"view": "查看", "copy": "复制", "download": "下载", "external": "对外提供", "delete": "删除"}
ACCESS_COLORS = dict(zip(ACCESS_ZH, ("#90a4ae", "#1565c0", "#ef6c00", "#6a1b9a", "#c62828"), strict=True))
DEVICE_STATUS_ZH = {"in_use": "在用", "spare": "备用", "repair": "维修", "scrapped": "报废", "lost": "丢失"}
DEVICE_KIND_ZH = {"bodycam": "执法记录仪", "camera": "摄像机", "phone": "执法手机"}


def device_view(devices: pd.DataFrame) -> pd.DataFrame:
    """Devices with Chinese kind and status words."""
    d = devices.copy()
    if "kind" in d:
        d["kind"] = d["kind"].map(lambda k: DEVICE_KIND_ZH.get(k, k))
    if "status" in d:
        d["status"] = d["status"].map(lambda s: DEVICE_STATUS_ZH.get(s, s))
    return d


LEVEL_ZH = LEVELS  # 市局 / 县（区）局 / 基层所队: the workbook's words (etl.vocabulary)


def scores_view(scores: pd.DataFrame) -> pd.DataFrame:
    """Scores with Chinese level words and 是/否 for the veto."""
    d = scores.copy()
    if "level" in d:
        d["level"] = d["level"].map(level_label)
    if "veto" in d:
        d["veto"] = d["veto"].map(lambda v: "是" if v == 1 else "否")
    return d


def level_averages(scores: pd.DataFrame) -> pd.DataFrame:
    """The mean total per unit level, top level first (level, label, units, mean).

    A city's, a county's and a station's totals are not comparable (each is scored over its own scope and
    ranked among its level), so an average is only ever taken over units of one level.  Rows without a
    total do not count; a level whose units all lack one is left out.
    """
    cols = ["level", "label", "units", "mean"]
    if scores.empty or "level" not in scores or "total" not in scores:
        return pd.DataFrame(columns=cols)
    d = scores.assign(total=pd.to_numeric(scores["total"], errors="coerce")).dropna(subset=["total"])
    g = d.groupby("level", as_index=False).agg(units=("total", "size"), mean=("total", "mean"))
    g["label"] = g["level"].map(level_label)
    g["_order"] = g["level"].map(LEVEL_ORDER).fillna(len(LEVEL_ORDER))
    return g.sort_values(["_order", "level"], ignore_index=True)[cols]


def events_view(events: pd.DataFrame) -> pd.DataFrame:
    """Events with Chinese status and cause words and the coverage as a percentage text."""
    d = events.copy()
    d["status"] = d["status"].map(lambda s: STATUS_ZH.get(s, s))
    d["cause"] = d["cause"].map(lambda c: CAUSE_ZH.get(c, c) if isinstance(c, str) else "")
    d["covered_fraction"] = d["covered_fraction"].map(fmt_rate)
    return d


def findings_by_rule(by_article: pd.DataFrame) -> pd.DataFrame:
    """One row per rule (a rule may cite different articles per action type): label, articles, count."""
    if by_article.empty:
        return pd.DataFrame(columns=["rule_id", "label", "article", "count"])
    g = by_article.groupby("rule_id", as_index=False).agg(
        article=("article", lambda a: "；".join(sorted({str(x) for x in a if x}))), count=("count", "sum")
    )
    g["label"] = g["rule_id"].map(lambda r: f"{RULE_ZH.get(r, r)}（{r}）")
    return g.sort_values(["count", "rule_id"], ascending=[False, True], ignore_index=True)


# --- the supervision record ----------------------------------------------------------------------
REVIEW_STATE_ZH = {"open": "待复核", "confirmed": "已确认", "exempted": "已豁免"}
APPEAL_STATE_ZH = {"pending": "申诉中", "upheld": "申诉成立", "rejected": "申诉驳回"}
VERDICT_ZH = {"confirm": "确认", "exempt": "豁免", "reopen": "重新打开"}
DECISION_ZH = {"upheld": "申诉成立（豁免）", "rejected": "驳回（确认）"}
EXCUSE_STATE_ZH = {"pending": "待审查", "accepted": "已采纳", "rejected": "不予采纳"}
EXCUSE_VERDICT_ZH = {"accept": "采纳", "reject": "不予采纳"}
EXEMPT_CATEGORIES = ("不可抗力", "数据错误", "已书面说明", "其他")


def _words(d: pd.DataFrame, col: str, words: dict[str, str], empty: str = "") -> None:
    if col in d:
        d[col] = d[col].map(lambda v: words.get(v, v) if isinstance(v, str) else empty)


def review_view(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings with their review and appeal state in words: an exempted finding reads 已豁免 wherever it is
    listed (it stays visible, marked, and counts nowhere)."""
    d = findings.copy()
    _words(d, "review_state", REVIEW_STATE_ZH, REVIEW_STATE_ZH["open"])
    _words(d, "appeal_state", APPEAL_STATE_ZH)
    return d


def appeals_view(appeals: pd.DataFrame) -> pd.DataFrame:
    """Appeals with the decision in words (申诉中 while pending) and 是/否 for a late appeal."""
    d = appeals.copy()
    if "decision" in d:
        d["decision"] = d["decision"].map(lambda v: DECISION_ZH.get(v, v) if isinstance(v, str) else "申诉中")
    if "late" in d:
        d["late"] = d["late"].map(lambda v: "是" if v == 1 else "否")
    return d


def excuses_view(events: pd.DataFrame) -> pd.DataFrame:
    """Excused events with the judgement and the uncovered status in words, the coverage as a percentage."""
    d = events.copy()
    _words(d, "excuse_state", EXCUSE_STATE_ZH)
    _words(d, "raw_status", STATUS_ZH)
    if "covered_fraction" in d:
        d["covered_fraction"] = d["covered_fraction"].map(fmt_rate)
    return d


def rule_label(rule_id: str | None) -> str:
    """全部 for no rule, else the rule's Chinese name with its id."""
    return "全部" if not rule_id else f"{RULE_ZH.get(rule_id, rule_id)}（{rule_id}）"


def appealable(findings: pd.DataFrame) -> list[str]:
    """Keys of the findings a unit may appeal: open (not confirmed, not exempted) and no appeal pending."""
    if findings.empty:
        return []
    ok = findings["review_state"].fillna("open").eq("open") & findings["appeal_state"].ne("pending")
    return list(findings.loc[ok, "finding_key"])


def excuse_report_lines(event: pd.Series) -> list[tuple[str, str]]:
    """(label, text) lines of an excused event's interruption report and judgement, for plain-text display."""

    def text(v: object) -> str:
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

    state = text(event.get("excuse_state")) or "pending"
    lines = [
        ("报告人", text(event.get("reporter"))),
        ("报告时间", fmt_time(event.get("reported_at"))),
        ("中断原因", text(event.get("report_reason"))),
        ("审查状态", EXCUSE_STATE_ZH.get(state, state)),
    ]
    if text(event.get("verdict_reason")):
        lines.append(("审查理由", f"{text(event.get('verdict_reason'))}（{text(event.get('judged_by'))}）"))
    return lines


def publication_badge(version: int | None, published_at: object = None, current: bool = False) -> str:
    """The words beside a period's figures: '已发布 vN（YYYY-MM-DD HH:MM）' for its published figures (``version`` of
    ``etl.supervision.publish``), '草稿（当前数据）' for the current ones of a published period (``current``),
    '未发布（当前数据）' when the period was never published (``version`` None)."""
    if version is None:
        return "未发布（当前数据）"
    if current:
        return "草稿（当前数据）"
    at = "" if published_at is None or published_at != published_at else f"（{str(published_at)[:16]}）"  # noqa: PLR0124
    return f"已发布 v{int(version)}{at}"


# --- the supervision loop: spot-checks (随机抽查) and rectification (整改) ---------------------------------
KIND_ZH = {"events": "现场执法事件", "cases": "案件"}
SPOT_VERDICT_ZH = {"pass": "合格", "fail": "不合格"}
POINT_RESULT_ZH = {"pass": "符合", "fail": "不符合", "n/a": "不适用"}
CAMPAIGN_STATE_ZH = {"open": "进行中", "closed": "已结束"}
NOTICE_STATE_ZH = {"open": "待整改", "responded": "已反馈待复查", "returned": "已退回重改", "closed": "已办结"}
NOTICE_EVENT_ZH = {"issue": "下发", "respond": "反馈", "return": "退回", "accept": "复查通过"}
CLOSE_VERDICT_ZH = {"accept": "通过（办结）", "return": "退回重改"}
NOTICE_BASIS_ZH = {"findings": "选定问题", "period": "期间未整改问题", "campaign": "抽查不合格项"}
# Art. 35 of the Measures: the paragraph an accountability recommendation (追责建议) cites (stored as its text).
ART35_PARAGRAPHS = {
    "1": "（一）因失职导致行政执法记录设备不能正常使用的",
    "2": "（二）不制作或不按要求制作执法全过程记录的",
    "3": "（三）违反规定擅自复制、保存、传播、泄露执法记录信息，造成严重后果的",
    "4": "（四）故意毁损、删除、修改执法全过程中文字或音像记录信息的",
    "5": "（五）不按规定储存或维护致使执法记录损毁、丢失，造成严重后果的",
    "6": "（六）其他违反执法全过程记录规定，造成严重后果的",
}


def campaigns_view(campaigns: pd.DataFrame, names: dict[str, str] | None = None) -> pd.DataFrame:
    """Campaigns with kind, state in words and the progress 'reviewed / drawn' (failed counted apart)."""
    cols = ("campaign_id", "period", "object_kind", "scope_unit", "per_unit", "seed", "drawn", "reviewed", "failed")
    d = campaigns[[c for c in (*cols, "state", "created_by", "draw_note") if c in campaigns.columns]].copy()
    _words(d, "object_kind", KIND_ZH)
    _words(d, "state", CAMPAIGN_STATE_ZH)
    if {"reviewed", "drawn"} <= set(d.columns):
        d.insert(
            min(len(d.columns), 3),
            "progress",
            [f"{int(r or 0)} / {int(n or 0)}" for r, n in zip(d["reviewed"], d["drawn"], strict=True)],
        )
    if "scope_unit" in d:
        d["scope_unit"] = d["scope_unit"].map(lambda u: (names or {}).get(u, u) if isinstance(u, str) and u else "全市")
    return d


def campaign_label(campaign_id: int, row: pd.Series) -> str:
    """'#3 2026-07 现场执法事件（已审 2/10）' for a campaign picker."""
    kind = KIND_ZH.get(str(row.get("object_kind")), str(row.get("object_kind")))
    done = f"{int(row.get('reviewed') or 0)}/{int(row.get('drawn') or 0)}"
    return f"#{int(campaign_id)} {row.get('period')} {kind}（已审 {done}）"


ITEM_VIEW_COLUMNS = (
    "draw_order",
    "object_key",
    "unit_code",
    "month",
    "verdict",
    "failed_points",
    "reviewed_by",
    "reviewed_at",
    "assigned_to",
    "orphaned",
)


def items_view(items: pd.DataFrame) -> pd.DataFrame:
    """Sampled objects with the verdict in words (待审查 until reviewed), 对象已消失 as 是/否."""
    d = items[[c for c in ITEM_VIEW_COLUMNS if c in items.columns]].copy()
    _words(d, "verdict", SPOT_VERDICT_ZH, "待审查")
    if "orphaned" in d:
        d["orphaned"] = d["orphaned"].map(lambda v: "是" if v in (1, True) else "否")
    if "reviewed_at" in d:
        d["reviewed_at"] = d["reviewed_at"].map(fmt_time).replace("—", "")
    if "failed_points" in d:
        d["failed_points"] = d["failed_points"].map(lambda v: v.replace(",", "、") if isinstance(v, str) else "")
    for col in ("reviewed_by", "assigned_to"):
        if col in d:
            d[col] = d[col].map(lambda v: v if isinstance(v, str) else "")
    return d


def item_label(object_key: str, verdict: object) -> str:
    """'INC-1（不合格）' for an item picker (待审查 until reviewed)."""
    word = SPOT_VERDICT_ZH.get(verdict, "待审查") if isinstance(verdict, str) else "待审查"
    return f"{object_key}（{word}）"


def table_height(rows: int, limit: int = 10, tall: int = 360) -> int | None:
    """None (the table's own height, no empty rows) for a short table, else a fixed height that scrolls."""
    return None if rows <= limit else tall


def filter_notices(notices: pd.DataFrame, state: str | None, overdue_only: bool) -> pd.DataFrame:
    """Notices of one state (None: all), optionally only the overdue ones."""
    d = notices if state is None else notices[notices["state"] == state]
    return d[d["overdue"] == 1] if overdue_only else d


def notice_counts(notices: pd.DataFrame) -> tuple[int, int]:
    """(due: open or returned, overdue) of a unit's notices."""
    if notices.empty:
        return 0, 0
    return int(notices["state"].isin(["open", "returned"]).sum()), int((notices["overdue"] == 1).sum())


def checklist_rows(checklist: list[tuple[str, str]], points: dict | None) -> list[dict]:
    """The checklist with the current result and note of each point (pass when never reviewed)."""
    points = points or {}
    out = []
    for pid, label in checklist:
        result, note = points.get(pid, ("pass", None))
        out.append({"point_id": pid, "label": label, "result": result or "pass", "note": note or ""})
    return out


def points_view(rows: list[dict]) -> pd.DataFrame:
    """A recorded checklist as a table: point, label, result in words, note."""
    return pd.DataFrame(
        [
            {"point_id": r["point_id"], "label": r["label"], "result": POINT_RESULT_ZH.get(r["result"], r["result"])}
            | {"note": r["note"]}
            for r in rows
        ],
        columns=["point_id", "label", "result", "note"],
    )


NOTICE_VIEW_COLUMNS = (
    "notice_id",
    "unit_code",
    "state",
    "overdue",
    "deadline",
    "findings",
    "issued_by",
    "issued_at",
    "closed_at",
    "basis",
    "period",
)


def notices_view(notices: pd.DataFrame) -> pd.DataFrame:
    """Notices (the list's columns) with the state in words and 逾期 as 是/否."""
    d = notices[[c for c in NOTICE_VIEW_COLUMNS if c in notices.columns]].copy()
    _words(d, "state", NOTICE_STATE_ZH)
    _words(d, "basis", NOTICE_BASIS_ZH)
    if "overdue" in d:
        d["overdue"] = d["overdue"].map(lambda v: "是" if v in (1, True) else "否")
    for col in ("deadline", "issued_at", "closed_at"):
        if col in d:
            d[col] = d[col].map(lambda v: "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)[:16])
    return d


def notice_history_lines(events: pd.DataFrame) -> list[str]:
    """A notice's history as plain lines: '2026-11-30 09:12 下发（legal）：text（整改期限 2026-12-15）'."""
    out = []
    for e in events.itertuples(index=False):
        due = getattr(e, "deadline", None)
        due_text = "" if due is None or (not isinstance(due, str) and pd.isna(due)) else f"（整改期限 {str(due)[:10]}）"
        when = fmt_time(getattr(e, "at", None))[:16]
        out.append(f"{when} {NOTICE_EVENT_ZH.get(e.kind, e.kind)}（{e.by_user}）：{e.text}{due_text}")
    return out or ["—"]


def accountability_text(acc: object) -> str:
    """'追责建议：第三十五条（二）…；责任人员：P1、P2' from the notice's accountability (dict or JSON text)."""
    import json

    if isinstance(acc, str) and acc.strip():
        try:
            acc = json.loads(acc)
        except ValueError:
            return acc
    if not isinstance(acc, dict) or not acc:
        return ""
    para = str(acc.get("paragraph") or "")
    words = ART35_PARAGRAPHS.get(para, para)
    officers = "、".join(str(o) for o in acc.get("officers") or [])
    return f"第三十五条{words}；责任人员：{officers or '—'}"


def default_deadline(today: object, days: int) -> object:
    """The default deadline of a notice: issue date + ``rectify_days``."""
    from datetime import timedelta

    return today + timedelta(days=int(days))


# The 待办 sections (etl.supervision.inbox.SECTIONS): the page that handles each, what to do there, what to show.
TODO_PAGES = {
    "appeals": "appeals",
    "responses": "rectification",
    "spotchecks": "spotcheck",
    "excuses": "excuses",
    "notices": "rectification",
    "overdue": "rectification",
    "appealable": "appeals",
}
TODO_HINTS = {
    "appeals": "在「申诉」页选择申诉，作出决定并说明理由",
    "responses": "在「整改」页选择通知，复查单位答复：验收通过或退回",
    "spotchecks": "在「随机抽查」页选择批次和对象，逐项审查后保存结论",
    "excuses": "在「情况说明」页选择事件，采纳或不予采纳",
    "notices": "在「整改」页选择通知，填写整改措施后提交答复",
    "overdue": "已超过整改期限：请尽快整改并答复",
    "appealable": "如有异议，可在「申诉」页提出申诉",
}
_TODO_COLUMNS = {
    "appeals": ("appeal_id", "finding_key", "unit_code", "reason", "filed_by", "filed_at", "late"),
    "spotchecks": ("campaign_id", "object_kind", "object_key", "unit_code", "period", "assigned_to"),
    "excuses": ("incident_no", "unit_code", "arrived_at", "police_no", "reported_at", "reason"),
    "appealable": ("finding_key", "rule_id", "article", "unit_code", "occurred_at", "detail"),
}


def todo_page(section: str) -> str | None:
    """The page id that handles a 待办 section; None when unknown."""
    return TODO_PAGES.get(section)


def todo_view(section: str, rows: pd.DataFrame) -> pd.DataFrame:
    """One 待办 section's rows as shown: its own columns, states and kinds in words."""
    if section in ("responses", "notices", "overdue"):
        return notices_view(rows)
    d = rows[[c for c in _TODO_COLUMNS.get(section, rows.columns) if c in rows.columns]].copy()
    _words(d, "object_kind", KIND_ZH)
    if section == "appeals":
        d = appeals_view(d)
    for col in ("filed_at", "arrived_at", "reported_at", "occurred_at"):
        if col in d:
            d[col] = d[col].map(fmt_time)
    return d


# --- trends (issue 18): a unit's figures across periods, 环比 and 同比 (etl.scoring.trends) --------------------
# The series a trend can show: the total (unit_scores), on-site events (the denominator of 全程记录率) and every
# standard metric (v_unit_metrics), 全程记录率 first.
TREND_TOTAL, TREND_EVENTS = "total", "events"


def trend_options() -> dict[str, str]:
    """Series id -> Chinese name, in the order the pickers offer them."""
    from etl.scoring.metrics import METRICS

    first = "whole_process_rate"
    return {first: METRICS[first], TREND_TOTAL: "总分", TREND_EVENTS: "现场执法事件"} | {
        m: name for m, name in METRICS.items() if m != first
    }


def is_rate(series: str) -> bool:
    return series not in (TREND_TOTAL, TREND_EVENTS)


def trend_scale(series: str) -> str:
    """How the trend chart scales a series (``charts.yoy``): 'points' (the total), 'count' (events), 'rate'."""
    return {TREND_TOTAL: "points", TREND_EVENTS: "count"}.get(series, "rate")


def year_names(period: str, lang: str = "zh") -> tuple[str, str]:
    """The legend of the year-on-year chart: the period's year and the year before ('2026年', '2025年')."""
    year = int(str(period)[:4])
    return (str(year), str(year - 1)) if lang == "en" else (f"{year}年", f"{year - 1}年")


def period_text(period: str, lang: str = "zh") -> str:
    """A period as users read it: 2026年7月 (the code itself in English)."""
    from etl import periods

    return periods.label(period, lang)


def trend_values(series: str, scores: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """(period, value) of one series from a unit's score history (period, total, ...) and metric history
    (period, metric, numerator, denominator, value; value None when the denominator is 0)."""
    if series == TREND_TOTAL:
        d = scores[["period", "total"]].rename(columns={"total": "value"})
    else:
        m = metrics[metrics["metric"] == ("whole_process_rate" if series == TREND_EVENTS else series)]
        d = m[["period", "denominator" if series == TREND_EVENTS else "value"]]
        d = d.rename(columns={"denominator": "value"})
    d = d.assign(value=pd.to_numeric(d["value"], errors="coerce"))
    return d.sort_values("period", ignore_index=True)


def fmt_value(value: float | None, series: str) -> str:
    """A value of the series as shown: a rate in %, a total with 2 decimals, events as a count ("—" unknown)."""
    if value is None or pd.isna(value):
        return "—"
    if is_rate(series):
        return fmt_rate(value)
    return f"{float(value):,.0f}" if series == TREND_EVENTS else f"{float(value):.2f}"


def fmt_change(delta: float | None, arrow: str, series: str, lang: str = "zh") -> str:
    """A change as arrow and number: '↑ 1.2 个百分点' (rates), '↓ 2.50 分' (totals), '→ 0 起' (events)."""
    if delta is None or pd.isna(delta):
        return "—"
    size = abs(float(delta))
    if is_rate(series):
        text = f"{size * 100:.1f} {tr('个百分点', lang)}"
    elif series == TREND_EVENTS:
        text = f"{size:,.0f} {tr('起', lang)}"
    else:
        text = f"{size:.2f} {tr('分', lang)}"
    return f"{arrow} {text}"


ARROW_COLORS = {"↑": "green", "↓": "red", "→": "gray", "": "gray"}  # every series: higher is better


def change_cards(values: pd.DataFrame, period: str, series: str, lang: str = "zh") -> list[dict]:
    """The st.metric arguments of a series in ``period``: the value with its change against the previous period
    (环比: ↑/↓/→ and the number, green/red/gray, Streamlit's own arrow off), and, but for a year (whose previous
    period is the year before), the same period of the year before with the period's change against it (同比)."""
    from etl import periods
    from etl.scoring import trends

    tol = trends.RATE_TOLERANCE if is_rate(series) else trends.POINTS_TOLERANCE
    c = trends.change(values, period, tol)
    name = tr(trend_options().get(series, series), lang)
    previous = f"{periods.label(c['previous_period'], lang)}：{fmt_value(c['previous'], series)}"
    cards = [
        {
            "label": f"{name}（{periods.label(period, lang)}）",
            "value": fmt_value(c["value"], series),
            "delta": None if c["change"] is None else fmt_change(c["change"], c["arrow"], series, lang),
            "delta_color": ARROW_COLORS[c["arrow"]],
            "delta_arrow": "off",
            "delta_description": tr(c["label"], lang),
            "help": f"{tr(c['label'], lang)}（{previous}）",
        }
    ]
    if periods.kind(period) != "year":
        year_change = c["year_change"]
        cards.append(
            {
                "label": f"{name}（{tr('去年同期', lang)} {periods.label(c['year_ago_period'], lang)}）",
                "value": fmt_value(c["year_ago"], series),
                "delta": None if year_change is None else fmt_change(year_change, c["year_arrow"], series, lang),
                "delta_color": ARROW_COLORS[c["year_arrow"]],
                "delta_arrow": "off",
                "delta_description": tr(f"本期{c['year_label']}", lang),
            }
        )
    return cards


def monthly_trend(values: pd.DataFrame, period: str, series: str) -> pd.DataFrame:
    """The chart's frame: the months of the period's year beside the same months of the year before
    (``etl.scoring.trends.monthly``), values in the unit shown (rates in %)."""
    from etl.scoring import trends

    d = trends.monthly(values, period)
    if is_rate(series):
        for col in ("value", "year_ago", "year_change"):
            d[col] = pd.to_numeric(d[col], errors="coerce") * 100
    return d


# the unit profile's metric table: headers as shown (the sparkline column is the last)
PROFILE_SUMMARY_COLUMNS = ("指标", "最新月", "较上月", "较去年同月", "走势（%）")


def unit_profile(scores: pd.DataFrame, metrics: pd.DataFrame, months: int, lang: str = "zh") -> dict:
    """One unit's last ``months`` months at a glance (pages/unit.py), from its score and metric histories.

    Returns {"last": the latest month with a score or metric (None: no data), "grade" and "rank" of that month
    (text, "—" when unscored), "totals": month, total, grade,
    rank, veto; "metrics": month, metric, name, value (%); "summary": one row per metric: name, latest (text),
    change against the month before and against the same month a year before (arrow and number), and the
    months' values (%) as a list for a sparkline; "table": per month the total, grade, rank and every metric
    as text}."""
    from etl.scoring import metrics as metric_ids
    from etl.scoring import trends

    is_month = r"\d{4}-\d{2}"
    s = scores[scores["period"].astype(str).str.fullmatch(is_month)]
    m = metrics[metrics["metric"].isin(list(metric_ids.METRICS))]
    m = m[m["period"].astype(str).str.fullmatch(is_month)]
    known = sorted(set(s["period"]) | set(m.loc[pd.to_numeric(m["denominator"], errors="coerce") > 0, "period"]))
    if not known:
        return {"last": None}
    last = known[-1]
    s = trends.window(s, last, months).rename(columns={"period": "month"})
    mw = trends.window(m, last, months).rename(columns={"period": "month"})
    mw = mw.assign(name=mw["metric"].map(metric_ids.METRICS), value=pd.to_numeric(mw["value"], errors="coerce") * 100)
    summary = []
    for metric, name in metric_ids.METRICS.items():
        values = m.loc[m["metric"] == metric, ["period", "value"]]
        c = trends.change(values, last, trends.RATE_TOLERANCE)
        spark = mw.loc[mw["metric"] == metric, "value"]
        summary.append(
            (
                name,
                fmt_rate(c["value"]),
                fmt_change(c["change"], c["arrow"], metric, lang),
                fmt_change(c["year_change"], c["year_arrow"], metric, lang),
                [None if pd.isna(v) else round(float(v), 1) for v in spark],
            )
        )
    table = s[["month", "total", "grade", "rank"]].copy()
    wide = mw.pivot_table(index="month", columns="metric", values="value", aggfunc="first")
    for metric, name in metric_ids.METRICS.items():
        col = wide[metric] if metric in wide else pd.Series(dtype=float)
        table[name] = table["month"].map(col).map(lambda v: "—" if pd.isna(v) else f"{v:.1f}%")
    latest = s[s["month"] == last]
    return {
        "last": last,
        "grade": str(latest["grade"].iloc[0]) if len(latest) and isinstance(latest["grade"].iloc[0], str) else "—",
        "rank": fmt_num(latest["rank"].iloc[0]) if len(latest) else "—",
        "totals": s[["month", "total", "grade", "rank", "veto"]].reset_index(drop=True),
        "metrics": mw[["month", "metric", "name", "value"]].reset_index(drop=True),
        "summary": pd.DataFrame(summary, columns=list(PROFILE_SUMMARY_COLUMNS)),
        "table": table.sort_values("month", ascending=False, ignore_index=True),
    }


# --- the officer's record (issue 18, 民警执法记录档案): pure helpers of pages/officer.py -------------------------
FAMILY_ZH = {"av": "音视频记录", "text": "文字记录", "access": "调阅管理", "integrity": "完整性"}
BASIS_ZH = {"attended": "出警人员", "officer": "当事民警", "case_handler": "办案人员"}
_POLICE_NO = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,31}$")
RANKING_COLUMNS = (
    "rank",
    "police_no",
    "name",
    "unit_code",
    "events_attended",
    "events_fully_recorded",
    "full_rate",
    "own_coverage",
    "findings_total",
    "findings_av",
    "findings_text",
    "findings_access",
    "findings_integrity",
)


def valid_police_no(text: object) -> bool:
    """A police number as the sources write it (letters, digits, '-'; at most 32): safe to look up and to show."""
    return isinstance(text, str) and bool(_POLICE_NO.match(text))


def officer_ranking(records: pd.DataFrame) -> pd.DataFrame:
    """The officers of a unit ranked (1 = best): own coverage, then the share of events fully recorded, then fewer
    findings, then the police number.  An officer without an event of measurable length ranks after the others."""
    if records.empty:
        return pd.DataFrame(columns=list(RANKING_COLUMNS))
    d = records.copy()
    att = pd.to_numeric(d["events_attended"], errors="coerce")
    d["full_rate"] = pd.to_numeric(d["events_fully_recorded"], errors="coerce") / att.where(att > 0)
    fams = ["findings_av", "findings_text", "findings_access", "findings_integrity"]
    d["findings_total"] = d[fams].apply(pd.to_numeric, errors="coerce").fillna(0).sum(axis=1).astype(int)
    d["own_coverage"] = pd.to_numeric(d["own_coverage"], errors="coerce")
    d = d.sort_values(
        ["own_coverage", "full_rate", "findings_total", "police_no"],
        ascending=[False, False, True, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    d["rank"] = np.arange(1, len(d) + 1)
    return d[[c for c in RANKING_COLUMNS if c in d.columns]]


def ranking_view(ranking: pd.DataFrame) -> pd.DataFrame:
    """The ranking as shown: rates as percentage text, the officer's name headed 姓名."""
    d = ranking.rename(columns={"name": "officer_name"})
    for col in ("full_rate", "own_coverage"):
        if col in d:
            d[col] = d[col].map(fmt_rate)
    return d


def officer_labels(ranking: pd.DataFrame) -> dict[str, str]:
    """police_no -> 'police_no name' for the officer picker, built once per run (a city's ranking holds ~3,000
    officers: a look-up per option must not rebuild anything); a number the ranking does not name shows alone."""
    return {
        str(p): f"{p} {n}" if isinstance(n, str) and n else str(p)
        for p, n in zip(ranking.get("police_no", []), ranking.get("name", []), strict=False)
    }


def officer_options(ranked: list[str], wanted: str | None) -> tuple[list[str], int | None]:
    """The officer picker's options and preselection: the ranking's numbers, a deep link's well-formed number
    first when the ranking lacks it (the query layer checks its scope); a malformed one is never offered."""
    deep = wanted if valid_police_no(wanted) else None
    options = ([deep] if deep and deep not in set(ranked) else []) + list(ranked)
    return options, (options.index(deep) if deep in options else None)


def officer_events_view(events: pd.DataFrame) -> pd.DataFrame:
    """The officer's events: status and cause in words, the event's and the officer's own coverage as text."""
    d = events_view(events) if not events.empty else events.copy()
    if "own_share" in d:
        d["own_share"] = d["own_share"].map(fmt_rate)
    for col in ("arrived_at", "ended_at"):
        if col in d:
            d[col] = d[col].map(fmt_time)
    return d.drop(columns=[c for c in ("window_s",) if c in d.columns])


_OBJECT_COLUMNS = ("log_id", "clip_id", "incident_no", "case_no")  # the most specific object first
_FINDING_VIEW_ORDER = (
    "occurred_at",
    "rule_id",
    "article",
    "object",
    "basis",
    "cause",
    "detail",
    "review_state",
    "appeal_state",
    "unit_code",
    "finding_key",
)


def officer_findings_view(findings: pd.DataFrame) -> pd.DataFrame:
    """Findings naming the officer: when, the rule in words, the object it concerns (event, case, access record or
    clip: one column), why the officer is named and their cause hint in words, the detail and the states."""
    d = findings.copy()
    if "rule_id" in d:
        d["rule_id"] = d["rule_id"].map(lambda r: f"{RULE_ZH.get(r, r)}（{r}）")
    _words(d, "cause", CAUSE_ZH)
    _words(d, "basis", BASIS_ZH)
    if "occurred_at" in d:
        d["occurred_at"] = d["occurred_at"].map(fmt_time)
    objs = [c for c in _OBJECT_COLUMNS if c in d.columns]
    if objs:
        d["object"] = d[objs].bfill(axis=1).iloc[:, 0].map(lambda v: "" if pd.isna(v) else str(v))
    return d[[c for c in _FINDING_VIEW_ORDER if c in d.columns]]


def officer_access_view(access: pd.DataFrame) -> pd.DataFrame:
    """The officer's access-register actions: action in words, time as text."""
    d = access.copy()
    _words(d, "action", ACCESS_ZH)
    if "at" in d:
        d["at"] = d["at"].map(fmt_time)
    return d


def findings_total(record: pd.DataFrame) -> int:
    """All findings of an officer's record row (every family)."""
    if record.empty:
        return 0
    fams = [c for c in record.columns if c.startswith("findings_")]
    return int(pd.to_numeric(record.iloc[0][fams], errors="coerce").fillna(0).sum())


def officer_headline(record: pd.DataFrame) -> list[tuple[str, str]]:
    """The officer's figures of the period as (label, value): events attended, fully recorded, their share, own
    coverage, findings.  "—" throughout without a record."""
    labels = ("出警事件", "全程记录", "全程记录占比", "本人记录覆盖率", "问题")
    if record.empty:
        return [(label, "—") for label in labels]
    r = record.iloc[0]
    values = (
        fmt_num(r["events_attended"]),
        fmt_num(r["events_fully_recorded"]),
        fmt_rate(rate(r["events_fully_recorded"], r["events_attended"])),
        fmt_rate(pd.to_numeric(r["own_coverage"], errors="coerce")),
        f"{findings_total(record):,}",
    )
    return list(zip(labels, values, strict=True))


def findings_by_family(record: pd.DataFrame) -> str:
    """'音视频记录 13 · 文字记录 17 · 调阅管理 0 · 完整性 8' of a record row (empty without one)."""
    if record.empty:
        return ""
    r = record.iloc[0]
    return " · ".join(f"{name} {fmt_num(r[f'findings_{f}'])}" for f, name in FAMILY_ZH.items())


def with_unit_names(df: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The frame with its unit_code replaced by the unit's name (narrow tables: the name says enough)."""
    return label_codes(df, names).drop(columns=["unit_code"]) if "unit_code" in df.columns else df


def unknown_officer_note(police_no: str | None, refs: int) -> str:
    """What the page says for a police number no roster or record knows (the data-quality notice, not an error)."""
    who = f"警号 {police_no}" if police_no else "所输入的警号"
    text = f"{who} 不在人员名册中，也没有执法记录：无法生成执法记录档案"
    if refs:
        text += f"；数据质量队列中有 {refs:,} 条记录因引用该警号（未知人员）未装入"
    return text
