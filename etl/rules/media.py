"""Access, integrity, retention and upload rules (rules.md "Access to recordings", "Integrity and retention").

Clips and access records belong to the unit owning the clip's device.  Clips
are taken up to the evaluation date by ``started_at``, access records by
``at`` (records without ``at`` are kept and dated at the evaluation date).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.rules import base
from etl.rules.context import Ctx, txt
from etl.sources.contract import TABLES
from etl.warehouse.scope import ancestors_map

ACTION_CN = {"view": "查看", "copy": "复制", "download": "下载", "external": "对外提供", "delete": "删除"}


def _access(ctx: Ctx) -> pd.DataFrame:
    """Access records up to the evaluation date (or without time) with the unit owning the clip's device."""
    if "_access" not in ctx.cache:
        conn = ctx.conn
        cols = TABLES["access_log"].column_names
        sel, dt_cols = base.select_list(conn, "access_log", cols, alias="a")
        log = base.fetch(
            conn,
            f"""SELECT {sel}, d.unit_code FROM access_log a
            LEFT JOIN clips c ON c.clip_id = a.clip_id AND c.county_code = a.county_code
            LEFT JOIN devices d ON d.device_sn = c.device_sn
            WHERE (a.at IS NULL OR a.at <= {base.sql_ts(ctx.as_of_s)}){ctx.and_partition("access_log", "a")}""",
            [*cols, "unit_code"],
            dt_cols,
        )
        ctx.cache["_access"] = log.assign(occurred_at=log["at"].fillna(ctx.as_of_s))
    return ctx.cache["_access"]


def _log_text(ctx: Ctx, log: pd.DataFrame) -> pd.Series:
    return (
        "调阅记录 "
        + txt(log["log_id"])
        + "（"
        + log["action"].map(ACTION_CN).fillna(txt(log["action"]))
        + " 录像 "
        + txt(log["clip_id"])
        + "，时间 "
        + base.fmt_ts(log["at"]).replace("", "未记录").to_numpy()
        + "，操作人 "
        + ctx.officer_label(log["user_no"]).to_numpy()
        + "）"
    )


def _frame(rule: str, log: pd.DataFrame, detail: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rule_id": rule,
            "unit_code": log["unit_code"],
            "log_id": log["log_id"],
            "clip_id": log["clip_id"],
            "police_no": log["user_no"],
            "occurred_at": log["occurred_at"],
            "detail": detail,
        }
    )


def _list(parts: dict[str, pd.Series], index: pd.Index) -> pd.Series:
    out = pd.Series([""] * len(index), index=index, dtype=object)
    for name, mask in parts.items():
        out = out + np.where(mask, np.where(out == "", name, "、" + name), "")
    return out


def access_record(ctx: Ctx) -> pd.DataFrame:
    log = _access(ctx)
    needs = log["action"].isin(ctx.cfg["access_approval_actions"])
    parts = {
        "操作人": base.blank(log["user_no"]),
        "时间": log["at"].isna(),
        "事由": base.blank(log["reason"]),
        "审批人": needs & base.blank(log["approver_no"]),
        "审批时间": needs & log["approved_at"].isna(),
    }
    what = _list(parts, log.index)
    bad = what != ""
    log = log[bad]
    return _frame("ACCESS-RECORD", log, _log_text(ctx, log) + " 缺少：" + what[bad])


def _in_scope(anc: dict[str, list[str]], scope_unit: np.ndarray, clip_unit: np.ndarray) -> np.ndarray:
    """Per pair: ``scope_unit`` (a unit code or null) has ``clip_unit`` in its scope (itself or below)."""
    return np.array(
        [
            isinstance(u, str) and isinstance(c, str) and u in anc.get(c, [c])
            for u, c in zip(scope_unit, clip_unit, strict=True)
        ],
        dtype=bool,
    )


def access_scope(ctx: Ctx) -> pd.DataFrame:
    """The user's unit (from ``officers``) must have the clip's unit in scope (itself or below), unless the
    access was approved (Art. 28: 未经批准不得越权调阅): ``approver_no`` set and ``approved_at`` not after ``at``,
    the approver a ``leader`` of a unit that has the clip's unit in scope.

    Records without a user are left to ACCESS-RECORD.  A user number unknown to
    ``officers`` has no unit, hence no scope: the access cannot have been within
    graded authorisation, so it is a finding too (detail says the user is unknown)
    unless it was approved so.  An approval that does not lift the breach is named
    in the detail with the reason (approver not a leader, not in charge of the
    clip's unit, or approved after the access).
    """
    log = _access(ctx)
    log = log[~base.blank(log["user_no"])]
    officers = ctx.t("officers").drop_duplicates("police_no").set_index("police_no")
    user_unit = officers["unit_code"].reindex(log["user_no"].to_numpy()).to_numpy()
    anc = ancestors_map(ctx.t("org_units"))
    clip_unit = log["unit_code"].to_numpy(dtype=object)
    within = _in_scope(anc, user_unit, clip_unit)
    appr = log["approver_no"].astype(object).where(~base.blank(log["approver_no"]), None).to_numpy()
    has_appr = pd.notna(appr)
    appr_leader = base.flag(pd.Series(officers["leader"].reindex(appr).to_numpy())).to_numpy()
    appr_unit = officers["unit_code"].reindex(appr).to_numpy()
    appr_scope = _in_scope(anc, appr_unit, clip_unit)
    at, approved_at = log["at"].to_numpy(dtype=float), log["approved_at"].to_numpy(dtype=float)
    timely = ~np.isnan(approved_at) & ~np.isnan(at) & (approved_at <= at)
    approved = has_appr & appr_leader & appr_scope & timely
    bad = ~within & ~approved
    log = log.assign(user_unit=user_unit)[bad]
    has_appr, appr_leader, appr_scope, timely = has_appr[bad], appr_leader[bad], appr_scope[bad], timely[bad]
    clip_label = ctx.unit_label(log["unit_code"].astype(object).fillna("")).to_numpy()
    known_user = log["user_unit"].notna().to_numpy()
    unit_text = ("调阅人所在单位 " + ctx.unit_label(log["user_unit"].astype(object).fillna(""))).to_numpy()
    unknown_text = ("调阅人 " + log["user_no"].astype(str) + " 不在人员名录中，无所属单位").to_numpy()
    user_text = np.where(known_user, unit_text, unknown_text)
    approver = ctx.officer_label(log["approver_no"]).to_numpy()
    why = np.where(
        ~appr_leader,
        "审批人 " + approver + " 不是单位负责人",
        np.where(
            ~appr_scope,
            "审批人 " + approver + " 所在单位对该录像所属单位无管辖权",
            np.where(~timely, "审批时间晚于调阅时间或未记录", ""),
        ),
    )
    appr_text = np.where(has_appr, "；虽经审批，但" + why + "，审批无效", "，且未经有权负责人批准")
    return _frame(
        "ACCESS-SCOPE",
        log,
        _log_text(ctx, log)
        + "："
        + user_text
        + "，录像属于 "
        + clip_label
        + "，不在其管辖范围内（上级可调阅下级，同级不可互相调阅）"
        + appr_text,
    )


def access_external(ctx: Ctx) -> pd.DataFrame:
    log = _access(ctx)
    log = log[log["action"] == "external"]
    off = ctx.t("officers").drop_duplicates("police_no").set_index("police_no")
    levels = ctx.t("org_units").drop_duplicates("unit_code").set_index("unit_code")["level"]
    appr = log["approver_no"].to_numpy()
    leader = base.flag(pd.Series(off["leader"].reindex(appr).to_numpy(), index=log.index))
    level = levels.reindex(off["unit_code"].reindex(appr).to_numpy()).to_numpy()
    qualified = leader & pd.Series(level, index=log.index).isin(ctx.cfg["external_approver_levels"])
    no_time = log["approved_at"].isna()
    late = log["approved_at"] > log["at"]
    why = np.where(
        base.blank(log["approver_no"]),
        "未经审批",
        np.where(
            ~qualified,
            "审批人 " + ctx.officer_label(log["approver_no"]).to_numpy() + " 不是县级或市级公安机关负责人",
            "",
        ),
    )
    why = pd.Series(why, index=log.index)
    why = why + np.where(no_time, np.where(why == "", "", "；") + "未记录审批时间", "")
    why = why + np.where(
        late,
        np.where(why == "", "", "；") + "审批时间 " + base.fmt_ts(log["approved_at"]).to_numpy() + " 晚于提供时间",
        "",
    )
    bad = why != ""
    log = log[bad]
    return _frame("ACCESS-EXTERNAL", log, _log_text(ctx, log) + "，接收方 " + txt(log["recipient"]) + "：" + why[bad])


_CLIP_COLS = [
    "clip_id",
    "device_sn",
    "police_no",
    "started_at",
    "ended_at",
    "sha256",
    "imported_at",
    "file_path",
    "incident_no",
    "case_no",
    "is_evidence",
    "deleted_at",
]


def _clips(ctx: Ctx, where: str, join: str = "", extra: tuple[str, ...] = ()) -> pd.DataFrame:
    """The clips (up to the evaluation date) matching ``where`` (SQL on alias c; epoch(x) available as {ep[x]}),
    with the unit owning their device and their resolved owner."""
    conn = ctx.conn
    sel, dt_cols = base.select_list(conn, "clips", _CLIP_COLS, alias="c")
    extra_sel = "".join(f", {e}" for e in extra)
    names = [*_CLIP_COLS, "unit_code", *[e.split(" AS ")[-1].strip() for e in extra]]
    c = base.fetch(
        conn,
        f"""SELECT {sel}, d.unit_code{extra_sel} FROM clips c
        LEFT JOIN devices d ON d.device_sn = c.device_sn {join}
        WHERE c.started_at <= {base.sql_ts(ctx.as_of_s)} AND ({where}){ctx.and_partition("clips", "c")}""",
        names,
        dt_cols,
    )
    c["owner"] = base.resolve_owners(c, ctx.t("device_assignments"))
    return c


def _ep(ctx: Ctx, col: str) -> str:
    return base.epoch_sql(ctx.conn.dialect.name, col)


def _clip_frame(rule: str, c: pd.DataFrame, detail: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rule_id": rule,
            "unit_code": c["unit_code"],
            "clip_id": c["clip_id"],
            "device_sn": c["device_sn"],
            "police_no": c["owner"],
            "incident_no": c["incident_no"],
            "case_no": c["case_no"],
            "occurred_at": c["started_at"],
            "detail": detail,
        }
    )


def _clip_text(c: pd.DataFrame) -> pd.Series:
    return (
        "录像 "
        + txt(c["clip_id"])
        + "（设备 "
        + txt(c["device_sn"])
        + "，拍摄 "
        + base.fmt_ts(c["started_at"]).to_numpy()
        + " 至 "
        + base.fmt_ts(c["ended_at"]).to_numpy()
        + "）"
    )


def integrity(ctx: Ctx) -> list[pd.DataFrame]:
    """INTEGRITY-HASH / INTEGRITY-MISSING from media_files (only after an integrity check).

    A clip not deleted whose file is absent, or which the check did not find at
    all (no media_files row), is missing.  A present file whose SHA-256 differs
    (case-insensitive) from a recorded digest is altered.
    """
    if not ctx.integrity_checked:
        return []
    c = _clips(
        ctx,
        """(c.deleted_at IS NULL AND (m.present IS NULL OR m.present <> 1))
                       OR (m.present = 1 AND c.sha256 IS NOT NULL AND m.sha256_actual IS NOT NULL
                           AND lower(trim(c.sha256)) <> lower(trim(m.sha256_actual)))""",
        join="LEFT JOIN media_files m ON m.clip_id = c.clip_id AND m.county_code = c.county_code",
        extra=("m.present AS mf_present", "m.sha256_actual AS mf_sha256"),
    )
    present = base.flag(c["mf_present"])
    actual = c["mf_sha256"]
    rec = c["sha256"].astype("string").str.strip().str.lower()
    act = actual.astype("string").str.strip().str.lower()
    altered = present & rec.notna() & act.notna() & (rec != act).fillna(False).astype(bool)
    h = c[altered]
    hash_f = _clip_frame(
        "INTEGRITY-HASH",
        h,
        _clip_text(h)
        + " 原始文件 "
        + txt(h["file_path"])
        + " 的 SHA-256 与采集时记录的不一致，原始文件可能被剪接、删改",
    )
    m = c[c["deleted_at"].isna() & ~present]
    miss_f = _clip_frame(
        "INTEGRITY-MISSING",
        m,
        _clip_text(m)
        + " 未登记删除，但原始文件 "
        + txt(m["file_path"]).replace("", "（未登记路径）")
        + " 不存在，录像已丢失",
    )
    return [hash_f, miss_f]


_DELETED_OR_LATE_COLS = [
    "clip_id",
    "device_sn",
    "police_no",
    "started_at",
    "ended_at",
    "imported_at",
    "incident_no",
    "case_no",
    "is_evidence",
    "deleted_at",
]


def _deleted_or_late(ctx: Ctx) -> pd.DataFrame:
    """Clips (up to the evaluation date) deleted up to the evaluation date or imported after the upload
    deadline, with the unit owning their device and their resolved owner: one scan of the clip table serves
    INTEGRITY-DELETED and UPLOAD-LATE (each filters its own rows).

    The SQL filter depends on the row alone, the dates are applied here: so the rows can be kept between
    runs (``etl.warehouse.snapshots``) and a daily run reads only the clips its load touched.
    """
    if "_deleted_or_late" not in ctx.cache:
        h = float(ctx.params["upload_deadline_h"])
        where = (
            f"deleted_at IS NOT NULL OR (imported_at IS NOT NULL "
            f"AND {_ep(ctx, 'imported_at')} > {_ep(ctx, 'ended_at')} + {h * 3600:.0f})"
        )
        c = ctx.read("clips", _DELETED_OR_LATE_COLS, where=where, kept=True)
        late = c["imported_at"].to_numpy() > c["ended_at"].to_numpy() + h * 3600
        deleted = c["deleted_at"].to_numpy() <= ctx.as_of_s
        c = c[(c["started_at"].to_numpy() <= ctx.as_of_s) & (deleted | late)].reset_index(drop=True)
        unit = ctx.t("devices").drop_duplicates("device_sn").set_index("device_sn")["unit_code"]
        unit = unit.reindex(c["device_sn"].to_numpy()).to_numpy(dtype=object)
        c["unit_code"] = pd.Series(np.where(pd.isna(unit), None, unit), index=c.index, dtype=object)
        c["owner"] = base.resolve_owners(c, ctx.t("device_assignments"))
        ctx.cache["_deleted_or_late"] = c
    return ctx.cache["_deleted_or_late"]


def _deleters(ctx: Ctx) -> pd.Series:
    """clip_id -> the user of the clip's latest ``delete`` row in the access register (as of the evaluation date;
    ties on ``at`` broken by the larger log_id; rows without a user are skipped: they name nobody)."""
    log = _access(ctx)
    d = log[(log["action"] == "delete") & ~base.blank(log["user_no"])]
    d = d.sort_values(["clip_id", "at", "log_id"], na_position="first", kind="stable").drop_duplicates(
        "clip_id", keep="last"
    )
    return pd.Series(d["user_no"].to_numpy(dtype=object), index=pd.Index(d["clip_id"].to_numpy(dtype=object)))


def _deleted(ctx: Ctx) -> pd.DataFrame:
    """Clips deleted up to the evaluation date (see ``_deleted_or_late``)."""
    c = _deleted_or_late(ctx)
    return c[c["deleted_at"].notna() & (c["deleted_at"] <= ctx.as_of_s)]


def integrity_deleted(ctx: Ctx) -> pd.DataFrame:
    """Deleted (deleted_at up to the evaluation date) before retention ended: evidence (is_evidence = 1 or
    tagged with a case) never; other clips not before started_at + retention_days.

    ``police_no`` is the person who deleted: the user of the clip's latest ``delete`` row in the access
    register (null when there is none: DELETE-UNLOGGED then flags the deletion as well); the detail names the
    wearer too (rules.md v1.1)."""
    days = float(ctx.params["retention_days"])
    c = _deleted(ctx)
    evidence = base.flag(c["is_evidence"]) | ~base.blank(c["case_no"])
    early = c["deleted_at"] < c["started_at"] + days * 86400
    bad = evidence | early
    c, evidence = c[bad], evidence[bad]
    ev_txt = (
        "为执法证据"
        + np.where(base.blank(c["case_no"]), "", "（关联案件 " + txt(c["case_no"]) + "）")
        + "，应随案卷永久保存，却于 "
        + base.fmt_ts(c["deleted_at"]).to_numpy()
        + " 被删除"
    )
    other = (
        "于 "
        + base.fmt_ts(c["deleted_at"]).to_numpy()
        + f" 被删除，未满{days:g}天保存期限（应保存至 "
        + base.fmt_ts(c["started_at"] + days * 86400).to_numpy()
        + "）"
    )
    deleter = _deleters(ctx).reindex(c["clip_id"].to_numpy(dtype=object)).to_numpy(dtype=object)
    deleter = pd.Series(np.where(pd.isna(deleter), None, deleter), index=c.index, dtype=object)
    who = np.where(
        deleter.notna(),
        "；删除人 " + ctx.officer_label(deleter).to_numpy(),
        "；调阅登记中无删除记录，删除人不明",
    )
    wearer = "；摄录人 " + ctx.officer_label(c["owner"].astype(object)).to_numpy()
    out = _clip_frame("INTEGRITY-DELETED", c, _clip_text(c) + " " + np.where(evidence, ev_txt, other) + who + wearer)
    out["police_no"] = deleter
    return out


def delete_unlogged(ctx: Ctx) -> pd.DataFrame:
    """A clip deleted (deleted_at up to the evaluation date) with no ``delete`` row in the access register (as of
    the evaluation date) (Art. 32: every handling is registered; Art. 33: no deletion outside the rules).
    ``police_no`` is null (nobody is named by the register); the detail gives the deletion time.  Owned by the
    unit owning the clip's device, in the period of the clip's ``started_at`` (the object is the clip)."""
    c = _deleted(ctx)
    log = _access(ctx)
    logged = log.loc[log["action"] == "delete", "clip_id"].to_numpy(dtype=object)
    c = c[~c["clip_id"].isin(logged)]
    out = _clip_frame(
        "DELETE-UNLOGGED",
        c,
        _clip_text(c)
        + " 于 "
        + base.fmt_ts(c["deleted_at"]).to_numpy()
        + " 被删除，调阅登记中没有该录像的删除记录（删除未经登记）",
    )
    out["police_no"] = None
    return out


def upload_late(ctx: Ctx) -> pd.DataFrame:
    """Imported more than ``upload_deadline_h`` hours after the end of the recording: the provincial 24-hour
    upload requirement, under the unified management of Art. 31 (rules.md v1.1: article 第三十一条)."""
    h = float(ctx.params["upload_deadline_h"])
    c = _deleted_or_late(ctx)
    c = c[c["imported_at"] > c["ended_at"] + h * 3600]
    late = base.fmt_duration(c["imported_at"] - c["ended_at"]).to_numpy()
    return _clip_frame(
        "UPLOAD-LATE",
        c,
        _clip_text(c)
        + " 于 "
        + base.fmt_ts(c["imported_at"]).to_numpy()
        + " 才上传导入，距拍摄结束 "
        + late
        + f"，超过{h:g}小时，违反“拍摄结束后{h:g}小时内上传至执法记录仪管理平台”的规定（第三十一条统一管理）",
    )


def rules(ctx: Ctx) -> list[pd.DataFrame]:
    return [
        access_record(ctx),
        access_scope(ctx),
        access_external(ctx),
        *integrity(ctx),
        integrity_deleted(ctx),
        delete_unlogged(ctx),
        upload_late(ctx),
    ]
