"""Equipment and service-window rules (rules.md "Equipment", "Service windows")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.rules import base
from etl.rules.context import Ctx, txt
from etl.sources.contract import LEDGER_STATUS

STATUS_CN = {v: k for k, v in LEDGER_STATUS.items()}


def equip_admin(ctx: Ctx) -> pd.DataFrame:
    """Station-level units owning at least one device (any status) with no admin row current at the
    evaluation date (from_at <= as_of < to_at, to_at null = open)."""
    units = ctx.t("org_units")
    stations = units.loc[units["level"] == "station", "unit_code"]
    devs = ctx.t("devices")
    owning = devs[devs["unit_code"].isin(stations)].groupby("unit_code").size()
    adm = ctx.t("unit_admins")
    t = ctx.as_of_s
    current = adm[(adm["from_at"] <= t) & (adm["to_at"].isna() | (adm["to_at"] > t))]["unit_code"]
    bad = owning[~owning.index.isin(current)]
    u = pd.Series(bad.index, dtype=object)
    when = base.fmt_ts(np.full(len(u), t))
    return pd.DataFrame(
        {
            "rule_id": "EQUIP-ADMIN",
            "unit_code": u,
            "occurred_at": t,
            "detail": ctx.unit_label(u)
            + " 配有执法记录仪等设备 "
            + pd.Series(bad.to_numpy()).astype(str)
            + " 台，评估日 "
            + when
            + " 没有在任的执法记录仪管理员",
        }
    )


def equip_repair(ctx: Ctx) -> pd.DataFrame:
    days = float(ctx.params["repair_days"])
    d = ctx.t("devices")
    t = ctx.as_of_s
    d = d[(d["status"] == "repair") & (t - d["status_since"] > days * 86400)]
    held = ((t - d["status_since"]) // 86400).astype("int64").astype(str)
    return pd.DataFrame(
        {
            "rule_id": "EQUIP-REPAIR",
            "unit_code": d["unit_code"],
            "device_sn": d["device_sn"],
            "occurred_at": t,
            "detail": "执法记录仪 "
            + txt(d["device_sn"])
            + "（"
            + txt(d["model"])
            + "）自 "
            + base.fmt_ts(d["status_since"]).to_numpy()
            + " 起处于维修状态，至评估日已 "
            + held
            + f" 天（超过{days:g}天），应及时修复或更换",
        }
    )


def _month_start(sec: pd.Series) -> pd.Series:
    """Epoch seconds -> epoch seconds of the first second of their calendar month."""
    m = sec.to_numpy(dtype=np.float64).astype("int64").astype("datetime64[s]").astype("datetime64[M]")
    return pd.Series(m.astype("datetime64[s]").astype("int64").astype(np.float64), index=sec.index)


def _month_seconds(month: pd.Series) -> np.ndarray:
    """'YYYY-MM' -> epoch seconds of the month's first second."""
    months = month.astype(str).to_numpy().astype("datetime64[M]")
    return months.astype("datetime64[s]").astype(np.int64).astype(np.float64)


def idle_candidates(ctx: Ctx) -> pd.DataFrame:
    """The in-use devices and months of EQUIP-IDLE before the clips are looked at, from the coverage's events:
    device_sn, month_s (epoch seconds of the month's start), police_no (the first assigned officer who attended
    an event that month), events (the events those officers attended that month).  An event belongs to one
    partition, so the candidates of several partitions add up (``combine_idle``)."""
    ev = ctx.coverage.events[["incident_no", "arrived_at"]]
    att = ctx.coverage.pairs[["incident_no", "police_no"]]
    x = ev.merge(att, on="incident_no")
    devs = ctx.t("devices")
    in_use = devs.loc[devs["status"] == "in_use", ["device_sn", "unit_code"]]
    asg = ctx.t("device_assignments")
    asg = asg[asg["device_sn"].isin(in_use["device_sn"])][["device_sn", "police_no", "from_at", "to_at"]]
    x = x.merge(asg, on="police_no")
    if x.empty:
        return pd.DataFrame(columns=["device_sn", "month_s", "police_no", "events"])
    x["month_s"] = _month_start(x["arrived_at"])
    month_end = _month_start(x["month_s"] + 32 * 86400)
    x = x[(x["from_at"] < month_end) & (x["to_at"].isna() | (x["to_at"] > x["month_s"]))]
    x = x.astype({"device_sn": object, "police_no": object, "incident_no": object})
    keys = ["device_sn", "month_s"]
    grp = x.sort_values([*keys, "police_no"]).drop_duplicates(keys)[[*keys, "police_no"]]
    events = x.drop_duplicates([*keys, "incident_no"]).groupby(keys).size().rename("events").reset_index()
    return grp.merge(events, on=keys)


def combine_idle(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The candidates of several partitions as those of their union: per device and month the first officer
    and the sum of the events (each event counted in its own partition only).  Pure."""
    x = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    if x is None:
        return pd.DataFrame(columns=["device_sn", "month_s", "police_no", "events"])
    x = x.astype({"device_sn": object, "police_no": object})
    out = x.groupby(["device_sn", "month_s"], as_index=False, sort=True).agg(
        police_no=("police_no", "min"), events=("events", "sum")
    )
    return out[["device_sn", "month_s", "police_no", "events"]]


def equip_idle(ctx: Ctx, candidates: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per in-use device (current status) and calendar month: the device was assigned during that month
    (an assignment overlapping the month) to an officer who attended an on-site event arriving that
    month, and the device has no clip starting in that month.  ``candidates``: ``idle_candidates`` (of every
    partition, ``combine_idle``), else computed from the context's coverage."""
    grp = idle_candidates(ctx) if candidates is None else candidates
    if grp.empty:
        return pd.DataFrame()
    devs = ctx.t("devices")
    in_use = devs.loc[devs["status"] == "in_use", ["device_sn", "unit_code"]]
    used = ctx.clips_per_month()  # clips per device and month up to the evaluation date
    used = pd.DataFrame(
        {"device_sn": used["device_sn"].astype(object).to_numpy(), "month_s": _month_seconds(used["month"])}
    ).drop_duplicates()
    grp = grp.merge(used.assign(used=True), on=["device_sn", "month_s"], how="left")
    g = grp[grp["used"].isna()].merge(in_use, on="device_sn")
    month_cn = pd.to_datetime(g["month_s"], unit="s").dt.strftime("%Y年%m月")
    return pd.DataFrame(
        {
            "rule_id": "EQUIP-IDLE",
            "unit_code": g["unit_code"],
            "device_sn": g["device_sn"],
            "police_no": g["police_no"],
            "occurred_at": g["month_s"],
            "detail": "在用执法记录仪 "
            + txt(g["device_sn"])
            + " 的使用人 "
            + ctx.officer_label(g["police_no"])
            + " 于 "
            + month_cn
            + " 参加现场执法 "
            + g["events"].astype(str)
            + " 起，该设备当月没有任何录像",
        }
    )


def equip_ledger(ctx: Ctx) -> pd.DataFrame:
    """Workbook rows versus the platform, per unit that has a workbook (one finding per device)."""
    led = ctx.t("ledger_entries")
    if led.empty:
        return pd.DataFrame()
    led = led.drop_duplicates(["unit_code", "device_sn"])
    devs = ctx.t("devices").drop_duplicates("device_sn").set_index("device_sn")
    asg = ctx.t("device_assignments")
    open_ = asg[asg["to_at"].isna()].sort_values(["device_sn", "from_at"]).drop_duplicates("device_sn", keep="last")
    holder = open_.set_index("device_sn")["police_no"]

    sn = led["device_sn"].to_numpy()
    known = pd.Series(sn).isin(devs.index).to_numpy()
    p_unit = devs["unit_code"].reindex(sn).to_numpy()
    p_status = devs["status"].reindex(sn).to_numpy()
    p_holder = holder.reindex(sn).to_numpy()
    l_holder = led["police_no"].astype(object).where(~base.blank(led["police_no"]), None).to_numpy()
    l_status = led["status"].to_numpy()

    def _norm(v: np.ndarray) -> pd.Series:
        return pd.Series(v, dtype=object).where(pd.notna(pd.Series(v, dtype=object)), "")

    other = known & (p_unit != led["unit_code"].to_numpy())
    holder_diff = known & ~other & (_norm(l_holder) != _norm(p_holder)).to_numpy()
    status_diff = known & ~other & (_norm(l_status) != _norm(p_status)).to_numpy()
    why = np.where(~known, "台账登记的设备在平台中不存在", "")
    why = np.where(other, "台账登记的设备在平台中属于其他单位 " + _norm(p_unit).astype(str), why)
    h_txt = (
        "台账使用人 "
        + _norm(l_holder).replace("", "（空）").astype(str)
        + " 与平台领用人 "
        + _norm(p_holder).replace("", "（空）").astype(str)
        + " 不一致"
    )
    s_txt = (
        "台账状态 "
        + pd.Series(l_status, dtype=object).map(STATUS_CN).fillna("（空）")
        + " 与平台状态 "
        + pd.Series(p_status, dtype=object).map(STATUS_CN).fillna("（空）")
        + " 不一致"
    )
    why = np.where(holder_diff, h_txt, why)
    why = np.where(status_diff & holder_diff, why + "；" + s_txt, np.where(status_diff, s_txt, why))
    rows = led.assign(why=why)
    rows = rows[rows["why"] != ""][["unit_code", "device_sn", "why"]]

    units = led["unit_code"].unique()
    plat = ctx.t("devices")
    plat = plat[plat["unit_code"].isin(units) & (plat["status"] != "scrapped")]
    listed = set(zip(led["unit_code"], led["device_sn"], strict=True))
    missing = plat[[(u, s) not in listed for u, s in zip(plat["unit_code"], plat["device_sn"], strict=True)]]
    missing = pd.DataFrame(
        {
            "unit_code": missing["unit_code"],
            "device_sn": missing["device_sn"],
            "why": "平台在册设备（状态 " + missing["status"].map(STATUS_CN).fillna("") + "）未登记在台账中",
        }
    )
    f = pd.concat([rows, missing], ignore_index=True).drop_duplicates(["unit_code", "device_sn"])
    t = ctx.as_of_s
    return pd.DataFrame(
        {
            "rule_id": "EQUIP-LEDGER",
            "unit_code": f["unit_code"],
            "device_sn": f["device_sn"],
            "occurred_at": t,
            "detail": ctx.unit_label(f["unit_code"])
            + " 执法记录仪使用管理台账与平台不一致：设备 "
            + txt(f["device_sn"])
            + " "
            + f["why"],
        }
    )


def window_cctv(ctx: Ctx) -> pd.DataFrame:
    w = ctx.t("service_windows")
    if w.empty:
        return pd.DataFrame()
    inst, rec = base.flag(w["cctv_installed"]), base.flag(w["cctv_recording"])
    w = w[~(inst & rec)]
    why = np.where(~inst[w.index], "未安装视频监控", "视频监控未在录像")
    return pd.DataFrame(
        {
            "rule_id": "WINDOW-CCTV",
            "unit_code": w["unit_code"],
            "window_id": w["window_id"],
            "occurred_at": ctx.as_of_s,
            "detail": ctx.unit_label(w["unit_code"])
            + " 受理窗口 "
            + txt(w["window_id"])
            + " "
            + why
            + "，不能记录受理、办理全过程",
        }
    )


def rules(ctx: Ctx, idle: pd.DataFrame | None = None) -> list[pd.DataFrame]:
    """The equipment findings (reference tables and the clips per device and month: never by partition);
    ``idle``: EQUIP-IDLE's candidates of every partition (``combine_idle``), else from the context's coverage."""
    return [equip_admin(ctx), equip_repair(ctx), equip_idle(ctx, idle), equip_ledger(ctx), window_cctv(ctx)]
