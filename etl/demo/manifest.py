"""The manifest: the findings rules.md must produce on the demo, as of the default evaluation date.

The generator injects breaches at random; this module then states, rule by
rule and straight from the generated rows, which objects are in breach, so
the manifest is exact even where several injections meet on one object.  It
is written independently of ``etl/rules`` on purpose: the tests compare the
two.  All times are int64 epoch seconds (``NULL_T`` = missing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.demo.common import (
    ACTIONS,
    DAY,
    DELIVERY_NEEDS,
    EMERGENCY_BACKFILL,
    GAP_TOL,
    NULL_T,
    PERF_CHECK_DAYS,
    REPAIR_DAYS,
    REPORT_DEADLINE,
    RETENTION_DAYS,
    SERVED,
    SIGNATURE_REQUIRED,
    UPLOAD_DEADLINE,
    month_of,
)
from etl.rules.keys import MANIFEST_COLUMNS

INF = np.iinfo(np.int64).max


def _rows(rule: str, df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.insert(0, "rule_id", rule)
    return out


def clip_owners(clips: pd.DataFrame, assignments: pd.DataFrame) -> np.ndarray:
    """police_no of the clip, or the device's assignee at started_at when it is null."""
    owner = clips["police_no"].to_numpy(dtype=object).copy()
    null = pd.isna(owner)
    if null.any():
        q = pd.DataFrame(
            {
                "i": np.flatnonzero(null),
                "device_sn": clips["device_sn"].to_numpy()[null],
                "t": clips["started_at"].to_numpy()[null],
            }
        )
        m = q.merge(assignments, on="device_sn")
        to = np.where(m["to_at"].to_numpy() == NULL_T, INF, m["to_at"].to_numpy())
        m = m[(m["from_at"].to_numpy() <= m["t"].to_numpy()) & (m["t"].to_numpy() < to)]
        owner[m["i"].to_numpy()] = m["police_no"].to_numpy()
    return owner


def overlapping(
    q_owner: np.ndarray, q_s: np.ndarray, q_e: np.ndarray, owner: np.ndarray, cs: np.ndarray, ce: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (query, clip) pairs where the clip belongs to the query's officer and overlaps ]q_s, q_e[ (positive length).

    Clips are sorted by (owner, start); the running maximum of their ends is
    then sorted too, so two binary searches bound the candidates of each query.
    """
    own = np.where(pd.isna(owner), "", owner).astype(str)
    order = np.lexsort((cs, own))
    o_owner, o_s, o_e = own[order], cs[order].astype(np.int64), ce[order].astype(np.int64)
    uniq = np.unique(o_owner)
    rank = np.searchsorted(uniq, o_owner).astype(np.int64)
    running_end = pd.Series(o_e).groupby(rank).cummax().to_numpy()
    qo = np.asarray(q_owner).astype(str)
    q_rank = np.searchsorted(uniq, qo).astype(np.int64)
    valid = (
        (q_rank < len(uniq)) & (uniq[np.minimum(q_rank, max(len(uniq) - 1, 0))] == qo)
        if len(uniq)
        else np.zeros(len(qo), bool)
    )
    big = np.int64(1) << 33
    hi = np.searchsorted(rank * big + o_s, q_rank * big + np.asarray(q_e, np.int64), "left")
    lo = np.searchsorted(rank * big + running_end, q_rank * big + np.asarray(q_s, np.int64), "right")
    cnt = np.where(valid, np.maximum(hi - lo, 0), 0)
    qi = np.repeat(np.arange(len(qo)), cnt)
    off = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    ci = order[np.repeat(lo, cnt) + off]
    keep = (cs[ci] < np.asarray(q_e)[qi]) & (ce[ci] > np.asarray(q_s)[qi])
    return qi[keep], ci[keep]


def coverage(d: dict) -> pd.DataFrame:
    """Per on-site event: covered_s, gap count, status (rules.md "Events")."""
    inc = d["incidents"]
    ev = inc[(inc["on_site"] == 1) & (inc["arrived_at"] != NULL_T) & (inc["ended_at"] != NULL_T)].reset_index(drop=True)
    att = d["incident_officers"].merge(ev[["incident_no", "arrived_at", "ended_at"]], on="incident_no")
    clips = d["clips"]
    qi, ci = overlapping(
        att["police_no"].to_numpy(),
        att["arrived_at"].to_numpy(),
        att["ended_at"].to_numpy(),
        d["owner"],
        clips["started_at"].to_numpy(),
        clips["ended_at"].to_numpy(),
    )
    att["has_clip"] = np.bincount(qi, minlength=len(att)) > 0
    a = att["arrived_at"].to_numpy()[qi]
    e = att["ended_at"].to_numpy()[qi]
    iv = pd.DataFrame(
        {
            "incident_no": att["incident_no"].to_numpy()[qi],
            "s": np.maximum(clips["started_at"].to_numpy()[ci], a),
            "e": np.minimum(clips["ended_at"].to_numpy()[ci], e),
        }
    ).drop_duplicates()
    iv = iv.sort_values(["incident_no", "s", "e"]).reset_index(drop=True)
    win = ev.set_index("incident_no")
    iv["a"] = win["arrived_at"].reindex(iv["incident_no"]).to_numpy()
    iv["w_e"] = win["ended_at"].reindex(iv["incident_no"]).to_numpy()
    run = iv.groupby("incident_no")["e"].cummax()
    prev = run.groupby(iv["incident_no"]).shift(1)
    prev = np.where(prev.isna(), iv["a"], prev).astype(np.int64)
    gap_before = iv["s"].to_numpy() - prev
    covered_piece = np.maximum(iv["e"].to_numpy() - np.maximum(iv["s"].to_numpy(), prev), 0)
    iv["gap"] = gap_before > GAP_TOL
    iv["cov"] = covered_piece
    g = iv.groupby("incident_no").agg(covered=("cov", "sum"), gaps=("gap", "sum"), last=("e", "max"))
    out = ev[["incident_no", "arrived_at", "ended_at"]].copy()
    out["covered"] = g["covered"].reindex(out["incident_no"]).fillna(0).to_numpy()
    last = g["last"].reindex(out["incident_no"]).to_numpy(dtype=float)
    last = np.where(np.isnan(last), out["arrived_at"].to_numpy(), last)
    tail = (out["ended_at"].to_numpy() - last) > GAP_TOL
    out["gaps"] = g["gaps"].reindex(out["incident_no"]).fillna(0).to_numpy().astype(int) + tail
    out["status"] = np.where(out["covered"] == 0, "none", np.where(out["gaps"] == 0, "full", "partial"))
    rep = d["reports"].merge(d["incident_officers"], on=["incident_no", "police_no"])
    rep = rep.merge(ev[["incident_no", "ended_at"]], on="incident_no")
    ok = rep[rep["reported_at"] <= rep["ended_at"] + REPORT_DEADLINE]["incident_no"].unique()
    excused = out["status"].isin(["none", "partial"]) & out["incident_no"].isin(ok)
    out.loc[excused, "status"] = "excused"
    out.attrs["attendance"] = att
    return out


def supporting(d: dict) -> np.ndarray:
    """Per action (in d['actions'] order): has a supporting clip (rules.md "Cases")."""
    act = d["actions"].reset_index(drop=True)
    clips = d["clips"]
    has = np.zeros(len(act), dtype=bool)
    # tagged with the action's case
    tagged = clips[pd.notna(clips["case_no"])][["case_no", "started_at", "ended_at"]]
    m = act[["case_no", "started_at", "ended_at"]].reset_index().merge(tagged, on="case_no", suffixes=("", "_c"))
    ok = (m["started_at_c"] < m["ended_at"]) & (m["ended_at_c"] > m["started_at"])
    has[m.loc[ok, "index"].to_numpy()] = True
    # belongs to the action's officer or one of the case's officers
    who = pd.concat(
        [
            act[["case_no", "police_no"]].reset_index(),
            act[["case_no"]].reset_index().merge(d["case_officers"][["case_no", "police_no"]], on="case_no"),
        ]
    )
    who = who.dropna(subset=["police_no"]).drop_duplicates(["index", "police_no"]).sort_values(["index", "police_no"])
    s = act["started_at"].to_numpy()[who["index"].to_numpy()]
    e = act["ended_at"].to_numpy()[who["index"].to_numpy()]
    qi, _ = overlapping(
        who["police_no"].to_numpy(), s, e, d["owner"], clips["started_at"].to_numpy(), clips["ended_at"].to_numpy()
    )
    has[who["index"].to_numpy()[qi]] = True
    return has


def build_manifest(d: dict, integrity: dict | None) -> pd.DataFrame:  # noqa: C901
    """Every finding as (rule_id, key columns); ``integrity``: {'hash': clip_ids, 'missing': clip_ids} or None."""
    eval_t = d["eval_t"]
    parts: list[pd.DataFrame] = []
    clips = d["clips"]
    d["owner"] = clip_owners(clips, d["device_assignments"])

    # events
    cov = coverage(d)
    d["coverage"] = cov
    parts.append(_rows("AV-NONE", cov.loc[cov["status"] == "none", ["incident_no"]]))
    parts.append(_rows("AV-GAP", cov.loc[cov["status"] == "partial", ["incident_no"]]))
    att = cov.attrs["attendance"]
    fp = cov.loc[cov["status"].isin(["full", "partial"]), "incident_no"]
    parts.append(
        _rows("AV-OFFICER", att.loc[att["incident_no"].isin(fp) & ~att["has_clip"], ["incident_no", "police_no"]])
    )

    # cases
    act = d["actions"].reset_index(drop=True)
    docs = d["case_documents"]
    sup = supporting(d)
    table = pd.DataFrame(
        [(code, t) for code, (docs_, _) in ACTIONS.items() for t in docs_], columns=["action_type", "doc_type"]
    )
    req = act[["action_id", "action_type"]].merge(table, on="action_type")[["action_id", "doc_type"]]
    present = docs.dropna(subset=["action_id"])[["action_id", "doc_type"]].drop_duplicates()
    miss = req.merge(present, how="left", indicator=True)
    miss = miss[miss["_merge"] == "left_only"].drop(columns="_merge")
    insp_ok = set(act.loc[(act["action_type"] == "inspection") & sup, "action_id"])
    miss = miss[~((miss["doc_type"] == "inspection_record") & miss["action_id"].isin(insp_ok))]
    parts.append(_rows("DOC-MISSING", miss))
    # an action of a code the configuration does not know requires nothing (the rules list it in the queue)
    av = act["action_type"].map(lambda c: c in ACTIONS and ACTIONS[c][1]).to_numpy(bool)
    parts.append(_rows("AV-MEASURE", act.loc[av & ~sup, ["action_id"]]))
    sig = docs[docs["doc_type"].isin(SIGNATURE_REQUIRED)]
    good = (sig["party_signed"] == 1) | (
        (sig["party_refused"] == 1) & (sig["officer_signed"] == 1) & (sig["witness_signed"] == 1)
    )
    parts.append(_rows("DOC-SIGNATURE", sig.loc[~good, ["doc_id"]]))
    cases = d["cases"]
    gx = cases[(cases["procedure"] == "general") & (cases["source"] == "ex_officio")]
    limit = gx["started_at"] + np.where(gx["emergency_start"] == 1, EMERGENCY_BACKFILL, 0)
    bad = (gx["start_approved_at"] == NULL_T) | (gx["start_approved_at"] > limit)
    parts.append(_rows("START-APPROVAL", gx.loc[bad, ["case_no"]]))
    decision = docs[docs["doc_type"].isin(["penalty_decision", "on_spot_decision"])][["case_no", "created_at"]]
    first_dec = decision.groupby("case_no")["created_at"].min()
    major = cases[(cases["is_major"] == 1) & cases["case_no"].isin(first_dec.index)][["case_no"]]
    rev = docs[docs["doc_type"] == "legal_review"].groupby("case_no")["created_at"].min()
    ok = rev.reindex(major["case_no"]).to_numpy() <= first_dec.reindex(major["case_no"]).to_numpy()
    parts.append(_rows("MAJOR-REVIEW", major[~ok]))
    nf = cases[(cases["filed"] == 0) & cases["source"].isin(["complaint", "report", "assigned", "transferred"])]
    has_nf = set(docs.loc[docs["doc_type"] == "not_filed_notice", "case_no"])
    parts.append(_rows("NOT-FILED-NOTICE", nf.loc[~nf["case_no"].isin(has_nf), ["case_no"]]))
    pen = docs[docs["doc_type"] == "penalty_decision"]
    incomplete = pen[["drafter_no", "reviewer_no", "approver_no", "legal_basis"]].isna().any(axis=1)
    parts.append(_rows("DECISION-RECORD", pen.loc[incomplete, ["doc_id"]]))
    gen_pen = pen.merge(cases[cases["procedure"] == "general"][["case_no"]], on="case_no")
    rn = docs[docs["doc_type"] == "rights_notice"][["case_no", "created_at"]]
    m = gen_pen[["case_no", "created_at"]].merge(rn, on="case_no", how="left", suffixes=("", "_rn"))
    m["ok"] = m["created_at_rn"].notna() & (m["created_at_rn"] < m["created_at"])
    okc = m.groupby("case_no")["ok"].any()
    parts.append(_rows("RIGHTS-NOTICE", pd.DataFrame({"case_no": okc.index[~okc.to_numpy()]})))
    simple = cases[(cases["procedure"] == "simple") & (cases["decided_at"] != NULL_T)]
    lacks = np.zeros(len(simple), dtype=bool)
    for need in ("on_spot_decision", "statement_record", "filing_record"):
        lacks |= ~simple["case_no"].isin(docs.loc[docs["doc_type"] == need, "case_no"]).to_numpy()
    parts.append(_rows("SIMPLE-PROCEDURE", simple.loc[lacks, ["case_no"]]))
    served = docs[docs["doc_type"].isin(SERVED)][["doc_id"]]
    dl = d["deliveries"]
    m = served.merge(dl, on="doc_id", how="left")
    ok = pd.Series(m["method"].notna().to_numpy(), index=m.index)
    for method, fields in DELIVERY_NEEDS.items():
        sel = m["method"] == method
        for f in fields:
            val = m[f]
            good_f = (val == 1) if f in ("receipt_signed", "postal_receipt") else val.notna() & (val.astype(str) != "")
            ok &= ~sel | good_f
    bad_doc = m.loc[~ok, "doc_id"].unique()
    parts.append(_rows("DELIVERY", pd.DataFrame({"doc_id": bad_doc})))
    pdl = pen[["doc_id", "case_no"]].merge(dl[["doc_id", "delivered_at"]], on="doc_id")
    due = pdl[pdl["delivered_at"] < eval_t - PERF_CHECK_DAYS * DAY]["case_no"].unique()
    checked = set(act.loc[act["action_type"] == "performance_check", "case_no"])
    parts.append(_rows("PERFORMANCE-CHECK", pd.DataFrame({"case_no": [c for c in due if c not in checked]})))

    # equipment
    dev = d["devices"]
    units = d["org_units"]
    adm = d["unit_admins"]
    cur = adm[(adm["from_at"] <= eval_t) & ((adm["to_at"] == NULL_T) | (adm["to_at"] > eval_t))]
    owning = units[(units["level"] == "station") & units["unit_code"].isin(dev["unit_code"])]
    parts.append(_rows("EQUIP-ADMIN", owning.loc[~owning["unit_code"].isin(cur["unit_code"]), ["unit_code"]]))
    rep = dev[(dev["status"] == "repair") & (dev["status_since"] < eval_t - REPAIR_DAYS * DAY)]
    parts.append(_rows("EQUIP-REPAIR", rep[["device_sn"]]))
    parts.append(_rows("EQUIP-IDLE", equip_idle(d, cov)))
    parts.append(_rows("EQUIP-LEDGER", ledger_findings(d)))

    # access
    log = d["access_log"]
    need_appr = log["action"].isin(["copy", "download", "external", "delete"])
    bad = (
        log["user_no"].isna()
        | (log["at"] == NULL_T)
        | log["reason"].isna()
        | (need_appr & (log["approver_no"].isna() | (log["approved_at"] == NULL_T)))
    )
    parts.append(_rows("ACCESS-RECORD", log.loc[bad, ["log_id"]]))
    offs = d["officers"].set_index("police_no")
    parent = dict(zip(units["unit_code"], units["parent_code"], strict=True))
    dev_unit = dev.set_index("device_sn")["unit_code"]
    clip_unit = dev_unit.reindex(clips.set_index("clip_id")["device_sn"].reindex(log["clip_id"])).to_numpy()
    user_unit = offs["unit_code"].reindex(log["user_no"]).to_numpy()

    def in_scope(user: str, unit: str) -> bool:
        while unit is not None:
            if unit == user:
                return True
            unit = parent.get(unit)
        return False

    # an unknown user has no unit, hence no scope; a missing user is ACCESS-RECORD's alone.  v1.1: unless
    # approved in time (approved_at <= at) by a leader of a unit that has the clip's unit in scope
    appr_unit = offs["unit_code"].reindex(log["approver_no"]).to_numpy()
    appr_lead = offs["leader"].reindex(log["approver_no"]).to_numpy()
    appr_time = log["approved_at"].to_numpy()
    log_at = log["at"].to_numpy()
    approved = [
        isinstance(a, str)
        and lead == 1
        and isinstance(au, str)
        and in_scope(au, c)
        and t != NULL_T
        and w != NULL_T
        and t <= w
        for a, lead, au, c, t, w in zip(
            log["approver_no"], appr_lead, appr_unit, clip_unit, appr_time, log_at, strict=True
        )
    ]
    scope_bad = [
        isinstance(n, str) and not (isinstance(u, str) and in_scope(u, c)) and not ok
        for n, u, c, ok in zip(log["user_no"], user_unit, clip_unit, approved, strict=True)
    ]
    parts.append(_rows("ACCESS-SCOPE", log.loc[np.array(scope_bad, bool), ["log_id"]]))
    ext = log[log["action"] == "external"]
    level = units.set_index("unit_code")["level"]
    a_unit = offs["unit_code"].reindex(ext["approver_no"]).to_numpy()
    a_lead = offs["leader"].reindex(ext["approver_no"]).to_numpy()
    a_level = level.reindex(a_unit).to_numpy()
    good = (
        (a_lead == 1)
        & np.isin(a_level, ["county", "city"])
        & (ext["approved_at"].to_numpy() != NULL_T)
        & (ext["approved_at"].to_numpy() <= ext["at"].to_numpy())
    )
    parts.append(_rows("ACCESS-EXTERNAL", ext.loc[~good, ["log_id"]]))

    # integrity and retention
    if integrity is not None:
        parts.append(_rows("INTEGRITY-HASH", pd.DataFrame({"clip_id": sorted(integrity["hash"])})))
        parts.append(_rows("INTEGRITY-MISSING", pd.DataFrame({"clip_id": sorted(integrity["missing"])})))
    dele = clips[clips["deleted_at"] != NULL_T]
    evid = (dele["is_evidence"] == 1) | dele["case_no"].notna()
    early = dele["deleted_at"] < dele["started_at"] + RETENTION_DAYS * DAY
    parts.append(_rows("INTEGRITY-DELETED", dele.loc[evid | early, ["clip_id"]]))
    # v1.1: a deletion with no delete row in the register (as of the evaluation date)
    registered = set(log.loc[(log["action"] == "delete") & (log["at"] <= eval_t), "clip_id"])
    parts.append(_rows("DELETE-UNLOGGED", dele.loc[~dele["clip_id"].isin(registered), ["clip_id"]]))
    late = clips["imported_at"] > clips["ended_at"] + UPLOAD_DEADLINE
    parts.append(_rows("UPLOAD-LATE", clips.loc[late, ["clip_id"]]))
    win = d["service_windows"]
    bad = ~((win["cctv_installed"] == 1) & (win["cctv_recording"] == 1))
    parts.append(_rows("WINDOW-CCTV", win.loc[bad, ["unit_code", "window_id"]]))

    out = pd.concat(parts, ignore_index=True)
    for c in MANIFEST_COLUMNS:
        if c not in out:
            out[c] = None
    out = out[MANIFEST_COLUMNS].astype(object).where(out[MANIFEST_COLUMNS].notna(), None)
    return out.sort_values(MANIFEST_COLUMNS, na_position="first", kind="stable").reset_index(drop=True)


def equip_idle(d: dict, cov: pd.DataFrame, at_event: bool = False) -> pd.DataFrame:
    """(device_sn, month) of in_use devices whose holder attended on-site events that month but never recorded on it.

    ``at_event``: count a device only when it was assigned at the event's arrival
    (the stricter reading); the default counts any assignment during the month.
    The generator keeps both readings equal; the tests check that.
    """
    dev = d["devices"]
    asg = d["device_assignments"].merge(dev.loc[dev["status"] == "in_use", ["device_sn"]], on="device_sn")
    att = cov.attrs["attendance"][["incident_no", "police_no", "arrived_at"]]
    ev = att.merge(asg, on="police_no")
    to = np.where(ev["to_at"] == NULL_T, INF, ev["to_at"])
    ev["month"] = month_of(ev["arrived_at"].to_numpy())
    if at_event:
        ev = ev[(ev["from_at"] <= ev["arrived_at"]) & (ev["arrived_at"] < to)]
    else:
        m_start = pd.to_datetime(ev["month"]).astype("datetime64[s]").astype(np.int64).to_numpy()
        m_end = (pd.to_datetime(ev["month"]) + pd.offsets.MonthBegin(1)).astype("datetime64[s]").astype(np.int64)
        ev = ev[(ev["from_at"].to_numpy() < m_end.to_numpy()) & (to > m_start)]
    pairs = ev[["device_sn", "month"]].drop_duplicates()
    clips = d["clips"]
    used = pd.DataFrame({"device_sn": clips["device_sn"], "month": month_of(clips["started_at"].to_numpy())})
    used = used.drop_duplicates()
    m = pairs.merge(used, how="left", indicator=True)
    return m.loc[m["_merge"] == "left_only", ["device_sn", "month"]].reset_index(drop=True)


def ledger_findings(d: dict) -> pd.DataFrame:
    from etl.sources.contract import LEDGER_STATUS

    dev = d["devices"].set_index("device_sn")
    asg = d["device_assignments"]
    holder = asg[asg["to_at"] == NULL_T].set_index("device_sn")["police_no"]
    rows = []
    for unit, book in sorted(d["ledgers"].items()):
        sns = book["设备编号"].tolist()
        for sn, who, st in zip(sns, book["使用人警号"], book["状态"], strict=True):
            if sn not in dev.index or dev.at[sn, "unit_code"] != unit:
                rows.append((unit, sn))
                continue
            h = holder.get(sn)
            if (who or None) != (h if isinstance(h, str) else None) or LEDGER_STATUS[st] != dev.at[sn, "status"]:
                rows.append((unit, sn))
        mine = dev[(dev["unit_code"] == unit) & (dev["status"] != "scrapped")].index
        rows.extend((unit, sn) for sn in mine if sn not in set(sns))
    return pd.DataFrame(sorted(set(rows)), columns=["unit_code", "device_sn"])
