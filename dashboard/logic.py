"""Small pure helpers behind the pages: rates, labels, the case checklist, repair ages."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

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
    """One row per case rule: article, failed count and 通过/未通过."""
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
