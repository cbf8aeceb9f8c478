"""Media platform: device swaps, the clips body cameras produce, deletions, access log; windows and ledgers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.demo.cases import Cases
from etl.demo.common import (
    DAY,
    EVAL_T,
    HORIZON,
    HOUR,
    LAST_T,
    NULL_T,
    YEAR_START,
    compact_stamps,
    group_rank,
    lapse_factor,
    month_of,
)
from etl.demo.org import PREFIX, Org
from etl.demo.timeline import EVENT, FULL, Timeline


def swap_devices(rng: np.random.Generator, org: Org, tl: Timeline) -> None:
    """Some officers change device during the year (old one to repair, scrapped, lost or spare).

    The swap happens 10 minutes before one of the officer's fully recorded
    events, so the new device records in the month it is handed out.
    """
    teams = org.teams
    ev = tl.incidents
    good = ev[
        (ev["on_site"] == 1)
        & (ev["scenario"] == FULL)
        & (ev["arrived_at"] != NULL_T)
        & (ev["start"] > YEAR_START + 20 * DAY)
        & (ev["start"] < HORIZON - 2 * DAY)
    ]
    good = good.merge(teams[["team_id", "police_no"]], on="team_id")
    officers = np.sort(teams["police_no"].unique())
    chosen = np.sort(rng.choice(officers, size=min(len(officers), max(5, round(0.12 * len(officers)))), replace=False))
    by_officer = {p: g["start"].to_numpy() for p, g in good[good["police_no"].isin(chosen)].groupby("police_no")}
    counters: dict[str, int] = {}
    for sn in org.devices["device_sn"]:
        counters[sn[3:7]] = max(counters.get(sn[3:7], 0), int(sn[7:]))
    dev = org.devices.set_index("device_sn")
    asg = org.assignments
    new_dev, new_asg, swaps = [], [], []
    for p in chosen:
        starts = by_officer.get(p)
        if starts is None or not len(starts):
            continue
        t_swap = int(starts[int(rng.integers(0, len(starts)))]) - 600
        old = org.main_device[p]
        unit = dev.at[old, "unit_code"]
        status = str(rng.choice(["repair", "scrapped", "lost", "spare"], p=[0.45, 0.2, 0.1, 0.25]))
        if len(swaps) < 4:  # every status at least once, even in a small demo
            status = ["repair", "scrapped", "lost", "spare"][len(swaps)]
        since = t_swap + (int(rng.integers(0, 3 * DAY)) if status == "repair" else 0)
        dev.loc[old, ["status", "status_since"]] = [status, min(since, LAST_T)]
        asg.loc[(asg["device_sn"] == old) & (asg["to_at"] == NULL_T), "to_at"] = t_swap
        c4 = unit[2:6]
        counters[c4] = counters.get(c4, 0) + 1
        sn = f"{PREFIX['bodycam']}{c4}{counters[c4]:05d}"
        new_dev.append(
            [
                sn,
                "bodycam",
                "DSJ-V9",
                unit,
                "in_use",
                t_swap,
                str(np.datetime64(t_swap - 20 * DAY, "s").astype("datetime64[D]")),
            ]
        )
        new_asg.append((sn, p, t_swap, NULL_T))
        swaps.append((p, old, sn, t_swap, status))
    org.devices = pd.concat([dev.reset_index(), pd.DataFrame(new_dev, columns=org.devices.columns)], ignore_index=True)
    org.assignments = pd.concat([asg, pd.DataFrame(new_asg, columns=asg.columns)], ignore_index=True)
    org.swaps = pd.DataFrame(swaps, columns=["police_no", "old_sn", "new_sn", "at", "old_status"])


def attach_devices(rng: np.random.Generator, org: Org, tl: Timeline) -> pd.DataFrame:
    """Device of every recording; a few officer-months recorded on a stand-in instead (EQUIP-IDLE)."""
    recs = tl.recs.copy()
    recs["device_sn"] = recs["police_no"].map(org.main_device)
    sw = org.swaps
    if len(sw):
        m = recs.merge(sw[["police_no", "new_sn", "at"]], on="police_no", how="left")
        after = m["at"].notna().to_numpy() & (recs["s"].to_numpy() >= m["at"].fillna(0).to_numpy())
        recs.loc[after, "device_sn"] = m.loc[after, "new_sn"].to_numpy()
    recs["month"] = month_of(recs["s"].to_numpy())
    slot_kind = tl.slots.set_index("slot_id")["kind"]
    recs["is_event"] = slot_kind.reindex(recs["slot_id"]).to_numpy() == EVENT
    pairs = recs.loc[recs["is_event"] & ~recs["police_no"].isin(sw["police_no"]), ["police_no", "month"]]
    pairs = pairs.drop_duplicates().sort_values(["police_no", "month"]).reset_index(drop=True)
    idle = pairs[rng.random(len(pairs)) < 0.04]
    unit_of = org.officers.set_index("police_no")["unit_code"]
    stand_in = {u: s[0] for u, s in org.spares.items()}
    hit = recs.set_index(["police_no", "month"]).index.isin(pd.MultiIndex.from_frame(idle))
    recs.loc[hit, "device_sn"] = unit_of.reindex(recs.loc[hit, "police_no"]).map(stand_in).to_numpy()
    recs["explicit"] = hit | (rng.random(len(recs)) < 0.9)
    return recs.drop(columns=["is_event"])


def expand_clips(rng: np.random.Generator, recs: pd.DataFrame) -> pd.DataFrame:
    """Cut every recording into 10-30 minute segments that abut, overlap by 1-2 s or restart after a few s."""
    s = recs["s"].to_numpy(np.int64)
    t = recs["t"].to_numpy(np.int64)
    length = t - s
    target = rng.integers(600, 1800, len(recs))
    nseg = np.maximum(np.ceil(length / target).astype(np.int64), 1)
    idx = np.repeat(np.arange(len(recs)), nseg)
    k = group_rank(idx)
    n_i = nseg[idx]
    lo = s[idx] + (length[idx] * k) // n_i
    hi = s[idx] + (length[idx] * (k + 1)) // n_i
    u = rng.random(len(idx))
    shift = np.where(u < 0.45, 0, np.where(u < 0.96, -rng.integers(1, 3, len(idx)), rng.integers(3, 26, len(idx))))
    start = np.where(k > 0, lo + shift, lo)
    clips = pd.DataFrame({"rec": idx, "started_at": start, "ended_at": hi})
    for col in ("slot_id", "police_no", "device_sn", "explicit"):
        clips[col] = recs[col].to_numpy()[idx]
    return clips


def tag_clips(rng: np.random.Generator, clips: pd.DataFrame, tl: Timeline, cases: Cases, recs: pd.DataFrame) -> None:
    n = len(clips)
    inc = tl.incidents.set_index("slot_id")["incident_no"]
    case_of = cases.slot_case.drop_duplicates("slot_id").set_index("slot_id")["case_no"]
    inc_tag = inc.reindex(clips["slot_id"]).to_numpy()
    case_tag = case_of.reindex(clips["slot_id"]).to_numpy()
    u = rng.random(n)
    clips["incident_no"] = np.where(pd.notna(inc_tag) & (u < 0.93), inc_tag, None)
    v = rng.random(n)
    clips["case_no"] = np.where(pd.notna(case_tag) & (v < 0.92), case_tag, None)
    w = rng.random(n)
    has_case = pd.notna(clips["case_no"]).to_numpy()
    clips["is_evidence"] = np.where(has_case, (w < 0.85), pd.notna(clips["incident_no"]).to_numpy() & (w < 0.05))
    clips["is_evidence"] = clips["is_evidence"].astype(int)
    # docking-station import, hours after the end of the recording; some late
    r = recs["t"].to_numpy()[clips["rec"].to_numpy()]
    nrec = len(recs)
    delay = rng.integers(1800, 20 * HOUR, nrec)
    late = rng.random(nrec) < 0.03 * lapse_factor(recs["t"].to_numpy())  # more in earlier years of --years
    delay = np.where(late, rng.integers(25 * HOUR, 120 * HOUR, nrec), delay)
    imported = np.minimum(recs["t"].to_numpy() + delay, LAST_T)
    clips["imported_at"] = np.maximum(imported[clips["rec"].to_numpy()], r)


def delete_clips(rng: np.random.Generator, clips: pd.DataFrame) -> None:
    """Routine deletions after retention; a few too early or of evidence (INTEGRITY-DELETED)."""
    n = len(clips)
    st = clips["started_at"].to_numpy()
    evidence = (clips["is_evidence"].to_numpy() == 1) | pd.notna(clips["case_no"]).to_numpy()
    u = rng.random(n)
    routine = ~evidence & (st < EVAL_T - 200 * DAY) & (u < 0.10)
    early = ~evidence & (u >= 0.10) & (u < 0.104)
    evid = evidence & (u < 0.002)
    deleted = np.full(n, NULL_T, dtype=np.int64)
    deleted[routine] = st[routine] + rng.integers(185 * DAY, 330 * DAY, routine.sum())
    deleted[early] = st[early] + rng.integers(20 * DAY, 170 * DAY, early.sum())
    deleted[evid] = st[evid] + rng.integers(20 * DAY, 200 * DAY, evid.sum())
    imp = clips["imported_at"].to_numpy()
    deleted = np.where((deleted != NULL_T) & (deleted < imp + DAY), imp + DAY, deleted)
    deleted[deleted > LAST_T] = NULL_T
    clips["deleted_at"] = deleted


def number_clips(clips: pd.DataFrame, units_of_device: pd.Series) -> pd.DataFrame:
    clips = clips.sort_values(["started_at", "device_sn", "police_no"], kind="stable").reset_index(drop=True)
    n = len(clips)
    clips["clip_id"] = "V" + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(9)
    unit = pd.Series(units_of_device.reindex(clips["device_sn"]).to_numpy().astype(str))
    stamp = pd.Series(compact_stamps(clips["started_at"].to_numpy()))
    clips["file_path"] = (
        unit
        + "/"
        + stamp.str[:6]
        + "/"
        + clips["device_sn"]
        + "_"
        + clips["police_no"]
        + "_"
        + stamp
        + "_"
        + clips["clip_id"].str[-6:]
        + ".MP4"
    ).to_numpy()
    clips["updated_at"] = np.where(clips["deleted_at"] != NULL_T, clips["deleted_at"], clips["imported_at"])
    return clips


REASONS = ["案件审核调阅", "执法质量考评抽查", "投诉核查", "复议诉讼取证", "信访调查", "法制审核"]
RECIPIENTS = ["长治市潞州区人民法院", "长治市人民检察院", "长治市司法局行政复议办公室", "长治市纪委监委"]


def access_log(
    rng: np.random.Generator, org: Org, clips: pd.DataFrame, v11: np.random.Generator | None = None
) -> pd.DataFrame:
    """Views, copies, downloads, external provisions and deletions, mostly in order.

    ``v11``: a generator of its own for the cases rules v1.1 adds (``rules_v11``), so that they leave every other
    row of the demo as it was."""
    offs = org.officers[org.officers["active"] == 1]
    units = org.units.set_index("unit_code")
    dev_unit = org.devices.set_index("device_sn")["unit_code"]
    n = len(clips)
    pick = np.flatnonzero(rng.random(n) < 0.03)
    deleted = np.flatnonzero(clips["deleted_at"].to_numpy() != NULL_T)
    k = len(pick)
    action = rng.choice(["view", "copy", "download", "external"], k, p=[0.72, 0.1, 0.12, 0.06])
    rows = pd.DataFrame({"ci": np.r_[pick, deleted], "action": np.r_[action, np.full(len(deleted), "delete")]})
    m = len(rows)
    clip_unit = dev_unit.reindex(clips["device_sn"].to_numpy()[rows["ci"]]).to_numpy()
    county = units["parent_code"].reindex(clip_unit).to_numpy()
    by_unit = {u: g["police_no"].to_numpy() for u, g in offs.groupby("unit_code")}
    lead = offs[offs["leader"] == 1].groupby("unit_code")["police_no"].first()
    stations = org.units.loc[org.units["level"] == "station", "unit_code"].to_numpy()
    city = org.units.loc[org.units["level"] == "city", "unit_code"].iloc[0]  # the city's top unit
    u = rng.random(m)
    who = np.where(u < 0.6, clip_unit, np.where(u < 0.85, county, city))
    scope_bad = rng.random(m) < 0.02
    peer = stations[rng.integers(0, len(stations), m)]
    peer = np.where(peer == clip_unit, stations[(np.searchsorted(stations, peer) + 1) % len(stations)], peer)
    who = np.where(scope_bad & (rows["action"].to_numpy() != "delete"), peer, who)
    r = rng.random(m)
    user = np.array([by_unit[w][int(x * len(by_unit[w]))] for w, x in zip(who, r, strict=True)], dtype=object)
    base = np.where(
        rows["action"] == "delete",
        clips["deleted_at"].to_numpy()[rows["ci"]],
        clips["imported_at"].to_numpy()[rows["ci"]] + rng.integers(HOUR, 60 * DAY, m),
    )
    at = np.minimum(base, LAST_T)
    act = rows["action"].to_numpy()
    needs = act != "view"
    approver = np.where(act == "external", county, clip_unit)
    approver_no = np.where(needs, lead.reindex(approver).to_numpy(), None).astype(object)
    approved_at = np.where(needs, at - rng.integers(600, 2 * DAY, m), NULL_T)
    reason = rng.choice(REASONS, m).astype(object)
    reason[act == "delete"] = "超过保存期限，按规定删除"
    recipient = np.where(act == "external", rng.choice(RECIPIENTS, m), None).astype(object)
    # injected: ACCESS-RECORD and ACCESS-EXTERNAL breaches
    v = rng.random(m)
    reason[v < 0.015] = None
    drop_appr = needs & (v >= 0.015) & (v < 0.03)
    approver_no[drop_appr & (rng.random(m) < 0.5)] = None
    approved_at[drop_appr & (approver_no != None)] = NULL_T  # noqa: E711
    ext = act == "external"
    w = rng.random(m)
    approver_no[ext & (w < 0.06)] = lead.reindex(clip_unit).to_numpy()[ext & (w < 0.06)]  # station leader
    late = ext & (w >= 0.06) & (w < 0.12)
    approved_at[late] = at[late] + rng.integers(HOUR, 3 * DAY, late.sum())
    raw = pd.DataFrame(
        {
            "ci": rows["ci"].to_numpy(),
            "clip_id": clips["clip_id"].to_numpy()[rows["ci"]],
            "action": act,
            "user_no": user,
            "at": at,
            "reason": reason,
            "approver_no": approver_no,
            "approved_at": approved_at,
            "recipient": recipient,
        }
    )
    if v11 is not None:
        raw = rules_v11(v11, raw, scope_bad & (act == "view"), clip_unit, county, who, lead, by_unit)
    order = np.lexsort((raw["ci"].to_numpy(), raw["at"].to_numpy()))
    log = raw.drop(columns="ci").iloc[order].reset_index(drop=True)
    log.insert(0, "log_id", "L" + pd.Series(np.arange(1, len(log) + 1)).astype(str).str.zfill(8))
    return log


def rules_v11(
    rng: np.random.Generator,
    raw: pd.DataFrame,
    peer_view: np.ndarray,
    clip_unit: np.ndarray,
    county: np.ndarray,
    who: np.ndarray,
    lead: pd.Series,
    by_unit: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The cases of rules.md v1.1 in the access register (rows of ``access_log`` before ordering, ``ci`` the clip):

    - cross-scope views (``peer_view``: a peer station's user) approved in time by the leader of the clip's
      station or county: no ACCESS-SCOPE finding any more; others approved by the user's own station leader
      (no say over the clip's unit) or after the view: still a finding;
    - a few deleted clips with an earlier ``delete`` row by another user (INTEGRITY-DELETED names the latest);
    - deletions whose ``delete`` row is missing: DELETE-UNLOGGED (at least one, even in a small demo).
    """
    raw = raw.copy()
    m = len(raw)
    at = raw["at"].to_numpy()
    u = rng.random(m)
    ok = peer_view & (u < 0.45)
    approver = np.where(rng.random(m) < 0.5, clip_unit, county)
    raw.loc[ok, "approver_no"] = lead.reindex(approver[ok]).to_numpy()
    own = peer_view & (u >= 0.45) & (u < 0.6)
    raw.loc[own, "approver_no"] = lead.reindex(who[own]).to_numpy()
    late = peer_view & (u >= 0.6) & (u < 0.7)
    raw.loc[late, "approver_no"] = lead.reindex(clip_unit[late]).to_numpy()
    gap = rng.integers(600, 2 * DAY, m)
    raw.loc[ok | own, "approved_at"] = at[ok | own] - gap[ok | own]
    raw.loc[late, "approved_at"] = at[late] + gap[late]

    dele = np.flatnonzero(raw["action"].to_numpy() == "delete")
    v = rng.random(len(dele))
    twice = dele[v < 0.02]  # an earlier delete row by another user of the clip's unit
    first = raw.iloc[twice].copy()
    first["at"] = first["at"].to_numpy() - rng.integers(HOUR, DAY, len(twice))
    first["approved_at"] = first["at"].to_numpy() - 600
    others = [by_unit[c] for c in clip_unit[twice]]
    first["user_no"] = [o[int(x * len(o))] for o, x in zip(others, rng.random(len(twice)), strict=True)]
    unlogged = dele[(v >= 0.02) & (v < 0.06)]
    if not len(unlogged):
        unlogged = np.setdiff1d(dele, twice)[-1:]
    keep = np.ones(m, dtype=bool)
    keep[unlogged] = False
    return pd.concat([raw[keep], first], ignore_index=True)


def service_windows(rng: np.random.Generator, units: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for code, level, name in zip(units["unit_code"], units["level"], units["name"], strict=True):
        n = 3 if level == "county" else (1 if name.endswith("派出所") else 0)
        for k in range(n):
            u = rng.random()
            inst, rec = (1, 1) if u > 0.1 else ((0, 0) if u < 0.04 else (1, 0))
            rows.append((code, f"CK{k + 1:02d}", inst, rec))
    return pd.DataFrame(rows, columns=["unit_code", "window_id", "cctv_installed", "cctv_recording"])


STATUS_ZH = {"in_use": "在用", "spare": "备用", "repair": "维修", "scrapped": "报废", "lost": "丢失"}


def ledgers(rng: np.random.Generator, org: Org) -> dict[str, pd.DataFrame]:
    """Ledger workbooks of most stations: the platform's view, with a few disagreements."""
    dev = org.devices
    open_asg = org.assignments[org.assignments["to_at"] == NULL_T].set_index("device_sn")
    stations = org.units.loc[org.units["level"] == "station", "unit_code"].tolist()
    with_book = [u for u in stations if rng.random() < 0.7] or stations[:1]
    books: dict[str, pd.DataFrame] = {}
    for unit in with_book:
        d = dev[dev["unit_code"] == unit]
        d = d[~((d["status"] == "scrapped") & (rng.random(len(d)) < 0.5))]
        holder = open_asg["police_no"].reindex(d["device_sn"]).to_numpy()
        frm = open_asg["from_at"].reindex(d["device_sn"]).to_numpy()
        book = pd.DataFrame(
            {
                "设备编号": d["device_sn"].to_numpy(),
                "使用人警号": np.where(pd.isna(holder), "", holder),
                "领用时间": [None if pd.isna(f) else str(np.datetime64(int(f), "s")).replace("T", " ") for f in frm],
                "状态": d["status"].map(STATUS_ZH).to_numpy(),
            }
        )
        u = rng.random(len(book))
        other = org.officers.loc[org.officers["unit_code"] == unit, "police_no"].to_numpy()
        h = (u < 0.025) & (book["使用人警号"] != "").to_numpy()
        book.loc[h, "使用人警号"] = other[rng.integers(0, len(other), h.sum())]
        book.loc[h & (book["使用人警号"] == holder), "使用人警号"] = "009999"
        s = (u >= 0.025) & (u < 0.045)
        book.loc[s, "状态"] = np.where(book.loc[s, "状态"] == "在用", "维修", "在用")
        drop = (u >= 0.045) & (u < 0.06)
        book = book[~drop]
        if rng.random() < 0.3:
            extra = pd.DataFrame(
                [
                    {
                        "设备编号": f"ZFY{unit[2:6]}9{int(rng.integers(1000, 9999)):04d}",
                        "使用人警号": "",
                        "领用时间": None,
                        "状态": "备用",
                    }
                ]
            )
            book = pd.concat([book, extra], ignore_index=True)
        if rng.random() < 0.2:
            foreign = dev[dev["unit_code"] != unit]["device_sn"].to_numpy()
            sn = foreign[int(rng.integers(0, len(foreign)))]
            if sn not in book["设备编号"].to_numpy():
                book = pd.concat(
                    [book, pd.DataFrame([{"设备编号": sn, "使用人警号": "", "领用时间": None, "状态": "备用"}])],
                    ignore_index=True,
                )
        books[unit] = book.reset_index(drop=True)
    return books
