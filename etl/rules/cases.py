"""Case rules (rules.md "Cases"): documents, supporting clips, procedure and service.

Objects are taken up to the evaluation date: actions by ``started_at``,
documents by ``created_at``, cases by ``registered_at``.  Supporting facts
(documents that satisfy a requirement, deliveries, clips) are taken as loaded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.rules import base
from etl.rules.context import Ctx, txt
from etl.sources.contract import TABLES

METHOD_CN = {
    "direct": "直接送达",
    "left": "留置送达",
    "mail": "邮寄送达",
    "entrusted": "委托送达",
    "public_notice": "公告送达",
}
FIELD_CN = {
    "receipt_signed": "受送达人签收的送达回证",
    "postal_receipt": "付邮凭证和回执",
    "reason": "采用该方式的理由",
    "entrustee": "受托人姓名和联系方式",
    "note": "情况说明",
}
SOURCE_CN = {
    "ex_officio": "依职权发现",
    "complaint": "投诉",
    "report": "举报",
    "assigned": "上级交办",
    "transferred": "其他机关移送",
    "other": "其他途径",
}
DECISION_FIELDS = {"drafter_no": "起草人", "reviewer_no": "审核人", "approver_no": "审批人", "legal_basis": "法律依据"}


def _cases(ctx: Ctx) -> pd.DataFrame:
    c = ctx.t("cases")
    return c[c["registered_at"] <= ctx.as_of_s]


def _actions(ctx: Ctx) -> pd.DataFrame:
    a = ctx.t("case_actions")
    a = a[a["started_at"] <= ctx.as_of_s]
    unit = ctx.t("cases").drop_duplicates("case_no").set_index("case_no")["unit_code"]
    return a.assign(unit_code=unit.reindex(a["case_no"].to_numpy()).to_numpy())


def _documents(ctx: Ctx, objects: bool) -> pd.DataFrame:
    """All documents with their case's unit; ``objects`` keeps those created up to the evaluation date."""
    d = ctx.t("case_documents")
    if objects:
        d = d[d["created_at"] <= ctx.as_of_s]
    unit = ctx.t("cases").drop_duplicates("case_no").set_index("case_no")["unit_code"]
    return d.assign(unit_code=unit.reindex(d["case_no"].to_numpy()).to_numpy())


def supporting_clip(ctx: Ctx, actions: pd.DataFrame) -> np.ndarray:
    """Per action: a clip overlapping [started_at, ended_at] (positive length) that is tagged with the
    action's case or belongs to the action's officer or one of the case's officers."""
    n = len(actions)
    if n == 0:
        return np.zeros(0, dtype=bool)
    runs = ctx.runs
    base_t = float(min(actions["started_at"].min(), runs.start.min() if len(runs.start) else np.inf)) - 1
    a_s = (actions["started_at"].to_numpy() - base_t).astype(np.int64)
    a_e = (actions["ended_at"].to_numpy() - base_t).astype(np.int64)

    # tagged with the action's case (few clips: read on their own)
    tagged = ctx.cache.get("_tagged_clips")
    if tagged is None:
        tagged = ctx.read(  # in a partition: tagged with its cases, whatever the clip's county
            "clips",
            ["clip_id", "case_no", "started_at", "ended_at"],
            where="case_no IS NOT NULL",
            kept=True,
            by=("case_no", "cases"),
        )
        tagged = tagged.dropna(subset=["started_at", "ended_at"])
        ctx.cache["_tagged_clips"] = tagged
    codes, _ = pd.factorize(pd.concat([tagged["case_no"], actions["case_no"]], ignore_index=True))
    k = len(tagged)
    ok = base.any_overlap(
        codes[:k].astype(np.int64),
        (tagged["started_at"].to_numpy() - base_t).astype(np.int64),
        (tagged["ended_at"].to_numpy() - base_t).astype(np.int64),
        codes[k:].astype(np.int64),
        a_s,
        a_e,
    )

    # belongs to the action's officer or one of the case's officers
    idx = pd.DataFrame(
        {"i": np.arange(n), "case_no": actions["case_no"].to_numpy(), "police_no": actions["police_no"].to_numpy()}
    )
    co = ctx.t("case_officers")[["case_no", "police_no"]]
    q = (
        pd.concat(
            [idx[["i", "police_no"]], idx[["i", "case_no"]].merge(co, on="case_no")[["i", "police_no"]]],
            ignore_index=True,
        )
        .dropna()
        .drop_duplicates()
    )
    code = runs.officers.get_indexer(q["police_no"].to_numpy())
    q = q[code >= 0]
    qi = q["i"].to_numpy()
    r_idx, _, _ = base.runs_in_windows(
        runs.group,
        (runs.start - base_t).astype(np.int64),
        (runs.end - base_t).astype(np.int64),
        code[code >= 0].astype(np.int64),
        a_s[qi],
        a_e[qi],
    )
    hit = np.zeros(len(qi), dtype=bool)
    hit[r_idx] = True
    ok[qi[hit]] = True
    return ok


def _action_text(ctx: Ctx, a: pd.DataFrame, with_end: bool = False) -> pd.Series:
    when = base.fmt_ts(a["started_at"]).to_numpy()
    if with_end:
        when = when + " 至 " + base.fmt_ts(a["ended_at"]).to_numpy()
    return (
        "案件 "
        + txt(a["case_no"])
        + " 的"
        + ctx.action_name(a["action_type"])
        + "（执法行为 "
        + txt(a["action_id"])
        + "，"
        + when
        + "，负责人 "
        + ctx.officer_label(a["police_no"])
        + "）"
    )


def _missing_documents(ctx: Ctx, a: pd.DataFrame) -> pd.DataFrame:
    """One row per (action of ``a``, document its type requires) with no such document filed under the action:
    the action's columns and ``doc_type``.

    Matched on integer codes (action, document type), not by merging the wide frames: the required pairs of
    a city year (~800k) against its documents (~700k) in a fraction of a second.
    """
    req = pd.DataFrame(
        [(k, d) for k, v in ctx.cfg["actions"].items() for d in v["documents"]], columns=["action_type", "doc_type"]
    )
    pairs = pd.DataFrame({"i": np.arange(len(a)), "action_type": a["action_type"].to_numpy()}).merge(
        req, on="action_type"
    )
    docs = ctx.t("case_documents")[["action_id", "doc_type"]].dropna()
    action_code, actions = pd.factorize(a["action_id"].to_numpy(dtype=object))  # -1: no action_id
    types = pd.Index(pd.unique(req["doc_type"].to_numpy(dtype=object)), dtype=object)
    d_action = pd.Index(actions, dtype=object).get_indexer(docs["action_id"].to_numpy(dtype=object))
    d_type = types.get_indexer(docs["doc_type"].to_numpy(dtype=object))
    filed = (d_action.astype(np.int64) * len(types) + d_type)[(d_action >= 0) & (d_type >= 0)]
    p_action = action_code[pairs["i"].to_numpy()].astype(np.int64)
    p_key = p_action * len(types) + types.get_indexer(pairs["doc_type"].to_numpy(dtype=object))
    missing = (p_action < 0) | ~np.isin(p_key, filed)
    pairs = pairs[missing]
    return a.iloc[pairs["i"].to_numpy()].assign(doc_type=pairs["doc_type"].to_numpy())


def doc_missing_and_av_measure(ctx: Ctx) -> list[pd.DataFrame]:
    acts_cfg = ctx.cfg["actions"]
    a = _actions(ctx)
    a = a[a["action_type"].isin(list(acts_cfg))].reset_index(drop=True)
    av_types = [k for k, v in acts_cfg.items() if v["av"]] + list(ctx.cfg["av_replaces_document"])
    need = a["action_type"].isin(av_types).to_numpy()
    support = np.zeros(len(a), dtype=bool)
    support[need] = supporting_clip(ctx, a[need])
    a["support"] = support

    exp = _missing_documents(ctx, a)
    repl = pd.DataFrame(
        [(k, d) for k, v in ctx.cfg["av_replaces_document"].items() for d in v], columns=["action_type", "doc_type"]
    ).assign(replaceable=True)
    exp = exp.merge(repl, on=["action_type", "doc_type"], how="left")
    exp = exp[~(exp["replaceable"].fillna(False).astype(bool) & exp["support"])]
    articles = {k: v["article"] for k, v in acts_cfg.items()}
    missing = pd.DataFrame(
        {
            "rule_id": "DOC-MISSING",
            "article": exp["action_type"].map(articles),
            "unit_code": exp["unit_code"],
            "case_no": exp["case_no"],
            "action_id": exp["action_id"],
            "doc_type": exp["doc_type"],
            "police_no": exp["police_no"],
            "occurred_at": exp["started_at"],
            "detail": _action_text(ctx, exp)
            + " 缺少"
            + ctx.doc_name(exp["doc_type"])
            + "（"
            + txt(exp["doc_type"])
            + "）",
        }
    )

    av = a[a["action_type"].isin([k for k, v in acts_cfg.items() if v["av"]]) & ~a["support"]]
    av_articles = {k: v["av_article"] for k, v in acts_cfg.items()}
    measure = pd.DataFrame(
        {
            "rule_id": "AV-MEASURE",
            "article": av["action_type"].map(av_articles),
            "unit_code": av["unit_code"],
            "case_no": av["case_no"],
            "action_id": av["action_id"],
            "police_no": av["police_no"],
            "occurred_at": av["started_at"],
            "detail": _action_text(ctx, av, with_end=True)
            + " 没有同步音像记录：无与该时段重叠、且关联本案或属于本案执法人员的录像",
        }
    )
    return [missing, measure]


def _doc_text(ctx: Ctx, d: pd.DataFrame) -> pd.Series:
    return (
        "案件 "
        + txt(d["case_no"])
        + " 的"
        + ctx.doc_name(d["doc_type"])
        + "（文书 "
        + txt(d["doc_id"])
        + "，"
        + base.fmt_ts(d["created_at"]).to_numpy()
        + "）"
    )


def _documents_where(ctx: Ctx, where: str) -> pd.DataFrame:
    """Documents created up to the evaluation date matching ``where`` (all columns), with their case's unit."""
    cols = TABLES["case_documents"].column_names
    sel, dt_cols = base.select_list(ctx.conn, "case_documents", cols, alias="d")
    d = base.fetch(
        ctx.conn,
        f"""SELECT {sel}, c.unit_code FROM case_documents d
        LEFT JOIN cases c ON c.case_no = d.case_no AND c.county_code = d.county_code
        WHERE d.created_at <= {base.sql_ts(ctx.as_of_s)} AND ({where}){ctx.and_partition("case_documents", "d")}""",
        [*cols, "unit_code"],
        dt_cols,
    )
    return d.sort_values("doc_id").reset_index(drop=True)


def doc_signature(ctx: Ctx) -> pd.DataFrame:
    d = _documents_where(
        ctx,
        f"""d.doc_type IN {base.sql_list(ctx.cfg["signature_required"])}
        AND NOT (COALESCE(d.party_signed, 0) = 1 OR (COALESCE(d.party_refused, 0) = 1
                 AND COALESCE(d.officer_signed, 0) = 1 AND COALESCE(d.witness_signed, 0) = 1))""",
    )
    signed, refused = base.flag(d["party_signed"]), base.flag(d["party_refused"])
    officer, witness = base.flag(d["officer_signed"]), base.flag(d["witness_signed"])
    bad = ~(signed | (refused & officer & witness))
    d = d[bad]
    refused, officer, witness = refused[bad], officer[bad], witness[bad]
    miss = np.where(~officer & ~witness, "执法人员和见证人签字", np.where(~officer, "执法人员签字", "见证人签字"))
    why = np.where(refused, "当事人拒绝签字，但缺少" + pd.Series(miss, index=d.index), "没有当事人签字或盖章")
    return pd.DataFrame(
        {
            "rule_id": "DOC-SIGNATURE",
            "unit_code": d["unit_code"],
            "case_no": d["case_no"],
            "doc_id": d["doc_id"],
            "action_id": d["action_id"],
            "occurred_at": d["created_at"],
            "detail": _doc_text(ctx, d) + " " + why,
        }
    )


def _case_frame(c: pd.DataFrame, rule: str, detail: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rule_id": rule,
            "unit_code": c["unit_code"],
            "case_no": c["case_no"],
            "occurred_at": c["registered_at"],
            "detail": detail,
        }
    )


def start_approval(ctx: Ctx) -> pd.DataFrame:
    c = _cases(ctx)
    c = c[(c["procedure"] == "general") & c["source"].isin(ctx.cfg["start_approval_sources"])]
    emergency = base.flag(c["emergency_start"])
    limit = c["started_at"] + np.where(emergency, float(ctx.params["emergency_backfill_h"]) * 3600, 0.0)
    none = c["start_approved_at"].isna()
    late = c["start_approved_at"] > limit
    bad = none | late
    c, emergency, none = c[bad], emergency[bad], none[bad]
    h = ctx.params["emergency_backfill_h"]
    late_text = (
        "程序启动审批表于 "
        + base.fmt_ts(c["start_approved_at"]).to_numpy()
        + " 批准，晚于程序启动时间 "
        + base.fmt_ts(c["started_at"]).to_numpy()
        + np.where(emergency, f"（情况紧急先行启动，超过{h:g}小时补报期限）", "")
    )
    text = np.where(
        none, "没有程序启动审批表的批准记录（程序启动时间 " + base.fmt_ts(c["started_at"]).to_numpy() + "）", late_text
    )
    return _case_frame(
        c, "START-APPROVAL", "一般程序、依职权启动的案件 " + txt(c["case_no"]) + " " + pd.Series(text, index=c.index)
    )


def _first_doc(docs: pd.DataFrame, types: list[str]) -> pd.DataFrame:
    """Earliest document of the given types per case: case_no, doc_id, doc_type, created_at."""
    d = docs[docs["doc_type"].isin(types)].sort_values(["case_no", "created_at", "doc_id"])
    return d.drop_duplicates("case_no")[["case_no", "doc_id", "doc_type", "created_at"]]


def _has_doc_before(docs: pd.DataFrame, first: pd.DataFrame, doc_type: str, inclusive: bool) -> pd.Series:
    """Per row of ``first``: a document of ``doc_type`` of the same case created before (or at) it."""
    earliest = docs[docs["doc_type"] == doc_type].groupby("case_no")["created_at"].min()
    t = pd.Series(earliest.reindex(first["case_no"].to_numpy()).to_numpy(), index=first.index)
    return (t <= first["created_at"]) if inclusive else (t < first["created_at"])


def major_review(ctx: Ctx) -> pd.DataFrame:
    c = _cases(ctx)
    c = c[base.flag(c["is_major"])]
    docs = ctx.t("case_documents")
    first = _first_doc(docs, ctx.cfg["decision_documents"]).merge(c, on="case_no")
    first = first[~_has_doc_before(docs, first, "legal_review", inclusive=True)]
    return _case_frame(
        first,
        "MAJOR-REVIEW",
        "重大执法案件 "
        + txt(first["case_no"])
        + " 于 "
        + base.fmt_ts(first["created_at"]).to_numpy()
        + " 作出"
        + ctx.doc_name(first["doc_type"])
        + "（文书 "
        + txt(first["doc_id"])
        + "），此前没有法制审核意见",
    ).assign(doc_id=first["doc_id"])


def not_filed_notice(ctx: Ctx) -> pd.DataFrame:
    c = _cases(ctx)
    filed = pd.to_numeric(c["filed"], errors="coerce")
    c = c[(filed == 0) & c["source"].isin(ctx.cfg["not_filed_notice_sources"])]
    has = ctx.t("case_documents").query("doc_type == 'not_filed_notice'")["case_no"]
    c = c[~c["case_no"].isin(has)]
    return _case_frame(
        c,
        "NOT-FILED-NOTICE",
        "案件 "
        + txt(c["case_no"])
        + "（来源："
        + c["source"].map(SOURCE_CN).fillna("")
        + "）经审查不予立案，但没有书面告知的不予立案告知书",
    )


def decision_record(ctx: Ctx) -> pd.DataFrame:
    blank_sql = " OR ".join(f"d.{c} IS NULL OR trim(d.{c}) = ''" for c in DECISION_FIELDS)
    d = _documents_where(ctx, f"d.doc_type = 'penalty_decision' AND ({blank_sql})")
    lacks = pd.DataFrame({col: base.blank(d[col]) for col in DECISION_FIELDS}, index=d.index)
    d, lacks = d[lacks.any(axis=1)], lacks[lacks.any(axis=1)]
    what = pd.Series([""] * len(d), index=d.index, dtype=object)
    for col, name in DECISION_FIELDS.items():
        what = what + np.where(lacks[col], np.where(what == "", name, "、" + name), "")
    return pd.DataFrame(
        {
            "rule_id": "DECISION-RECORD",
            "unit_code": d["unit_code"],
            "case_no": d["case_no"],
            "doc_id": d["doc_id"],
            "occurred_at": d["created_at"],
            "detail": _doc_text(ctx, d) + " 未载明：" + what,
        }
    )


def rights_notice(ctx: Ctx) -> pd.DataFrame:
    c = _cases(ctx)
    c = c[c["procedure"] == "general"]
    docs = ctx.t("case_documents")
    first = _first_doc(docs, ["penalty_decision"]).merge(c, on="case_no")
    first = first[~_has_doc_before(docs, first, "rights_notice", inclusive=False)]
    return _case_frame(
        first,
        "RIGHTS-NOTICE",
        "一般程序案件 "
        + txt(first["case_no"])
        + " 于 "
        + base.fmt_ts(first["created_at"]).to_numpy()
        + " 作出行政处罚决定书（文书 "
        + txt(first["doc_id"])
        + "），此前没有权利义务告知书",
    ).assign(doc_id=first["doc_id"])


def simple_procedure(ctx: Ctx) -> pd.DataFrame:
    c = _cases(ctx)
    c = c[(c["procedure"] == "simple") & c["decided_at"].notna()].reset_index(drop=True)
    have = ctx.t("case_documents")[["case_no", "doc_type"]].drop_duplicates()
    what = pd.Series([""] * len(c), dtype=object)
    for dt in ctx.cfg["simple_procedure_documents"]:
        present = c["case_no"].isin(have.loc[have["doc_type"] == dt, "case_no"])
        name = ctx.cfg["documents"].get(dt, dt)
        what = what + np.where(~present, np.where(what == "", name, "、" + name), "")
    c, what = c[what != ""], what[what != ""]
    return _case_frame(
        c,
        "SIMPLE-PROCEDURE",
        "简易程序案件 "
        + txt(c["case_no"])
        + "（决定时间 "
        + base.fmt_ts(c["decided_at"]).to_numpy()
        + "）缺少："
        + what,
    )


def delivery(ctx: Ctx) -> pd.DataFrame:
    """Served documents with no delivery, or with a delivery lacking what its method needs (each
    recorded delivery must be complete)."""
    d = _documents(ctx, objects=True)
    d = d[d["doc_type"].isin(ctx.cfg["served_documents"])]
    dl = ctx.t("deliveries")
    dl = dl[dl["doc_id"].isin(d["doc_id"])].copy()
    reqs = ctx.cfg["delivery_requirements"]
    lack = pd.Series([""] * len(dl), index=dl.index, dtype=object)
    for method, fields in reqs.items():
        m = dl["method"] == method
        for f in fields:
            missing = ~base.flag(dl[f]) if f in ("receipt_signed", "postal_receipt") else base.blank(dl[f])
            miss = m & missing
            lack = lack + np.where(miss, np.where(lack == "", FIELD_CN.get(f, f), "、" + FIELD_CN.get(f, f)), "")
    dl["lack"] = lack
    bad = dl[dl["lack"] != ""].sort_values(["doc_id", "delivered_at", "delivery_id"])
    bad_text = (
        "送达记录 "
        + txt(bad["delivery_id"])
        + "（"
        + bad["method"].map(METHOD_CN).fillna(txt(bad["method"]))
        + "，"
        + base.fmt_ts(bad["delivered_at"]).to_numpy()
        + "）缺少"
        + bad["lack"]
    )
    per_doc = bad_text.groupby(bad["doc_id"]).agg("；".join)
    none = ~d["doc_id"].isin(dl["doc_id"])
    text = np.where(none, "没有送达记录", per_doc.reindex(d["doc_id"]).fillna("").to_numpy())
    d = d.assign(why=text)
    d = d[d["why"] != ""]
    return pd.DataFrame(
        {
            "rule_id": "DELIVERY",
            "unit_code": d["unit_code"],
            "case_no": d["case_no"],
            "doc_id": d["doc_id"],
            "occurred_at": d["created_at"],
            "detail": _doc_text(ctx, d) + " " + d["why"],
        }
    )


def performance_check(ctx: Ctx) -> pd.DataFrame:
    days = float(ctx.params["performance_check_days"])
    docs = ctx.t("case_documents")
    pd_docs = docs[docs["doc_type"] == "penalty_decision"][["doc_id", "case_no"]]
    dl = ctx.t("deliveries").dropna(subset=["delivered_at"]).merge(pd_docs, on="doc_id")
    first = dl.groupby("case_no")["delivered_at"].min()
    first = first[first < ctx.as_of_s - days * 86400]
    acts = ctx.t("case_actions")
    done = acts.loc[acts["action_type"] == "performance_check", "case_no"]
    c = _cases(ctx)
    c = c[c["case_no"].isin(first.index) & ~c["case_no"].isin(done)]
    when = base.fmt_ts(first.reindex(c["case_no"]).to_numpy())
    return _case_frame(
        c,
        "PERFORMANCE-CHECK",
        "案件 "
        + txt(c["case_no"])
        + " 的行政处罚决定书于 "
        + when.to_numpy()
        + f" 送达，至评估日已超过{days:g}天，没有履行情况检查（整改核查）记录",
    )


def rules(ctx: Ctx) -> list[pd.DataFrame]:
    return [
        *doc_missing_and_av_measure(ctx),
        doc_signature(ctx),
        start_approval(ctx),
        major_review(ctx),
        not_filed_notice(ctx),
        decision_record(ctx),
        rights_notice(ctx),
        simple_procedure(ctx),
        delivery(ctx),
        performance_check(ctx),
    ]
