"""AV-NONE, AV-GAP, AV-OFFICER: findings from the on-site coverage (rules.md "Events")."""

from __future__ import annotations

import pandas as pd

from etl.rules import base
from etl.rules.context import Ctx, txt

CAUSE_CN = {
    "no_device": "到场时出警人员均未领用执法记录仪（无设备）",
    "device_repair": "到场时出警人员领用的执法记录仪处于维修或丢失状态",
    "not_recorded": "出警人员有可用设备但未录像",
}


def _window_text(ev: pd.DataFrame) -> pd.Series:
    return (
        "警情 "
        + txt(ev["incident_no"])
        + " 现场执法 "
        + base.fmt_ts(ev["arrived_at"]).to_numpy()
        + " 至 "
        + base.fmt_ts(ev["ended_at"]).to_numpy()
    )


def _officers_text(ctx: Ctx, cov, incidents: pd.Series) -> pd.Series:  # noqa: ANN001
    pairs = cov.pairs[cov.pairs["incident_no"].isin(incidents)].copy()
    pairs["label"] = ctx.officer_label(pairs["police_no"], with_kind=True).to_numpy()
    return pairs.sort_values(["incident_no", "police_no"]).groupby("incident_no")["label"].agg("、".join)


def rules(ctx: Ctx) -> list[pd.DataFrame]:
    """AV-NONE, AV-GAP and AV-OFFICER of every on-site event as judged (an excused event has none)."""
    return _rules(ctx, ctx.coverage.events)


def excused_rules(ctx: Ctx) -> list[pd.DataFrame]:
    """The AV findings each excused event would have without its interruption report: the same rules judged on
    its ``raw_status`` (the derived table ``excused_findings``; they count where the legal department rejects
    the excuse, or with ``excuse_review: required`` until it accepts it: ``etl.warehouse.verdicts``)."""
    ev = ctx.coverage.events
    ex = ev[ev["status"] == "excused"]
    return _rules(ctx, ex.assign(status=ex["raw_status"].to_numpy(dtype=object)))


def _rules(ctx: Ctx, ev: pd.DataFrame) -> list[pd.DataFrame]:
    cov = ctx.coverage
    bad = ev[ev["status"].isin(["none", "partial"])].copy()
    bad["cause_cn"] = bad["cause"].map(CAUSE_CN).fillna("")
    who = (
        _officers_text(ctx, cov, bad["incident_no"]).reindex(bad["incident_no"]).fillna("（无出警人员登记）").to_numpy()
    )

    none = bad[bad["status"] == "none"]
    who_none = who[(bad["status"] == "none").to_numpy()]
    av_none = pd.DataFrame(
        {
            "rule_id": "AV-NONE",
            "unit_code": none["unit_code"],
            "incident_no": none["incident_no"],
            "occurred_at": none["arrived_at"],
            "cause": none["cause"],
            "detail": (
                _window_text(none)
                + "（"
                + base.fmt_duration(none["window_s"]).to_numpy()
                + "），"
                + who_none
                + " 无任何录像；原因提示："
                + none["cause_cn"]
            ),
        }
    )

    part = bad[bad["status"] == "partial"]
    g = cov.gaps.merge(
        part[["incident_no", "unit_code", "arrived_at", "ended_at", "cause", "cause_cn"]], on="incident_no"
    )
    kind = pd.Series("录像中断", index=g.index)
    kind = kind.mask(g["gap_end"] == g["ended_at"], "提前停止录像")
    kind = kind.mask(g["gap_start"] == g["arrived_at"], "未及时开始录像")
    tol = ctx.params["gap_tolerance_s"]
    av_gap = pd.DataFrame(
        {
            "rule_id": "AV-GAP",
            "unit_code": g["unit_code"],
            "incident_no": g["incident_no"],
            "occurred_at": g["arrived_at"],
            "cause": g["cause"],
            "gap_start": g["gap_start"],
            "gap_end": g["gap_end"],
            "gap_s": g["gap_s"],
            "detail": (
                _window_text(g)
                + "，"
                + kind
                + "："
                + base.fmt_ts(g["gap_start"]).to_numpy()
                + " 至 "
                + base.fmt_ts(g["gap_end"]).to_numpy()
                + "，时长 "
                + base.fmt_duration(g["gap_s"]).to_numpy()
                + f"（超过允许的{tol:g}秒）；原因提示："
                + g["cause_cn"]
            ),
        }
    )

    ok = ev[ev["status"].isin(["full", "partial"])][["incident_no", "unit_code", "arrived_at", "ended_at"]]
    miss = cov.pairs[~cov.pairs["has_clip"]].merge(ok, on="incident_no")
    av_off = pd.DataFrame(
        {
            "rule_id": "AV-OFFICER",
            "unit_code": miss["unit_code"],
            "incident_no": miss["incident_no"],
            "police_no": miss["police_no"],
            "occurred_at": miss["arrived_at"],
            "detail": (
                _window_text(miss)
                + "，"
                + ctx.officer_label(miss["police_no"], with_kind=True)
                + " 没有与执法时段重叠的录像（应每名民警和辅警全程录音录像）"
            ),
        }
    )
    return [av_none, av_gap, av_off]
