"""A year of work per patrol team: dispatches, case visits and patrols, and the recordings they produce.

Every team has one timeline of non-overlapping *slots* separated by at least
25 minutes; recordings stay within a slot's window plus a few minutes, so a
clip can only ever overlap the window of the slot it was made for.  That keeps
the manifest exact: coverage of an event is decided by its own recordings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from etl.demo.common import DAY, HORIZON, HOUR, NULL_T, YEAR_START, group_rank, lapse_factor, month_of
from etl.demo.org import Org

MIN_GAP = 25 * 60
# slot kinds
EVENT, VISIT, PATROL = 0, 1, 2
# on-site event scenarios
FULL, GAP, LATE, EARLY, MISSING_OFFICER, NONE = "full", "gap", "late", "early", "missing_officer", "none"
CATEGORIES = [
    "治安纠纷",
    "噪音扰民",
    "交通事故",
    "交通违法",
    "盗窃",
    "打架斗殴",
    "寻衅滋事",
    "赌博",
    "无证经营",
    "违法停车",
    "阻碍执行职务",
    "邻里纠纷",
    "消防隐患",
    "聚众扰乱秩序",
]


@dataclass
class Timeline:
    slots: pd.DataFrame  # slot_id, team_id, unit_code, kind, start, end
    incidents: pd.DataFrame
    incident_officers: pd.DataFrame
    reports: pd.DataFrame
    recs: pd.DataFrame  # slot_id, police_no, device_sn, s, t, explicit (police_no written on clip)


def build_slots(rng: np.random.Generator, teams: pd.DataFrame, n_events: int, start: int = YEAR_START) -> pd.DataFrame:
    """Non-overlapping slots per team (vectorised over teams x slots) from ``start`` to HORIZON."""
    first = start
    team_ids = np.sort(teams["team_id"].unique())
    team_unit = teams.drop_duplicates("team_id").set_index("team_id")["unit_code"]
    p = np.array([0.55, 0.075, 0.375])
    per_team = n_events / (p[EVENT] * 0.86) / len(team_ids)
    span = HORIZON - first
    mean_dur = 2400
    mean_gap = max(span / per_team - mean_dur - MIN_GAP, 600)
    n_max = int(per_team * 1.6) + 20
    shape = (len(team_ids), n_max)
    kind = rng.choice(3, size=shape, p=p)
    dur = np.where(
        kind == EVENT,
        np.clip(rng.lognormal(np.log(1900), 0.55, shape), 600, 3 * HOUR),
        np.where(kind == VISIT, rng.uniform(1500, 4200, shape), rng.uniform(900, 3600, shape)),
    )
    dur = dur.astype(np.int64)
    gap = (MIN_GAP + rng.exponential(mean_gap, shape)).astype(np.int64)
    start = first + rng.integers(0, DAY, size=(len(team_ids), 1)) + np.cumsum(gap + dur, axis=1) - dur
    end = start + dur
    keep = end < HORIZON
    t_idx, _ = np.nonzero(keep)
    slots = pd.DataFrame(
        {
            "team_id": team_ids[t_idx],
            "kind": kind[keep],
            "start": start[keep],
            "end": end[keep],
        }
    )
    slots["unit_code"] = team_unit.reindex(slots["team_id"]).to_numpy()
    slots = slots.sort_values(["start", "team_id"], kind="stable").reset_index(drop=True)
    slots["slot_id"] = np.arange(len(slots))
    return slots


def _scenarios(rng: np.random.Generator, ev: pd.DataFrame) -> pd.DataFrame:
    """Pick the recording scenario of every on-site event and whether it is excused."""
    n = len(ev)
    r = rng.random(n)
    sc = np.full(n, FULL, dtype=object)
    cuts = [(NONE, 0.022), (GAP, 0.030), (LATE, 0.012), (EARLY, 0.008), (MISSING_OFFICER, 0.035)]
    more = lapse_factor(ev["start"].to_numpy())  # earlier years of a --years demo: more lapses (1 in the last)
    lo = np.zeros(n)
    for name, share in cuts:
        sc[(r >= lo) & (r < lo + share * more)] = name
        lo = lo + share * more
    sc[(sc == MISSING_OFFICER) & (ev["size"].to_numpy() < 2)] = FULL
    ev = ev.assign(scenario=sc)
    bad = np.isin(sc, [NONE, GAP, LATE, EARLY])
    u = rng.random(n)
    # report: timely (excuses), late (does not), by a non-attending colleague (does not)
    ev["report"] = np.where(
        bad & (u < 0.35),
        "timely",
        np.where(
            bad & (u < 0.45), "late", np.where(bad & (u < 0.50), "outsider", np.where(~bad & (u < 0.006), "timely", ""))
        ),
    )
    return ev


def build_timeline(rng: np.random.Generator, org: Org, n_events: int, start: int = YEAR_START) -> Timeline:
    teams = org.teams
    slots = build_slots(rng, teams, n_events, start)
    members = slots[["slot_id", "team_id"]].merge(teams[["team_id", "police_no"]], on="team_id", how="inner")
    members = members.sort_values(["slot_id", "police_no"], kind="stable").reset_index(drop=True)
    size = members.groupby("slot_id").size()
    slots["size"] = size.reindex(slots["slot_id"]).to_numpy()

    # --- incidents -------------------------------------------------------
    ev = slots[slots["kind"] == EVENT].copy()
    n = len(ev)
    ev["on_site"] = (rng.random(n) < 0.86).astype(int)
    ev["category"] = rng.choice(CATEGORIES, n)
    day = pd.Series(month_of(ev["start"].to_numpy())).str.replace("-", "").to_numpy()
    ev["incident_no"] = (
        "J" + ev["unit_code"].str[:6].to_numpy() + day + pd.Series(np.arange(n)).astype(str).str.zfill(7).to_numpy()
    )
    off_site = ev["on_site"].to_numpy() == 0
    no_arrival = off_site & (rng.random(n) < 0.5)
    ev["arrived_at"] = np.where(no_arrival, NULL_T, ev["start"].to_numpy())
    ev["ended_at"] = np.where(no_arrival, NULL_T, ev["end"].to_numpy())
    ev["received_at"] = ev["start"].to_numpy() - rng.integers(180, 1500, n)
    ev = _scenarios(rng, ev)
    ev.loc[off_site, ["scenario", "report"]] = [FULL, ""]
    ev.loc[no_arrival, "scenario"] = NONE

    # --- recordings ------------------------------------------------------
    recs = _event_recs(rng, ev, members)
    vis = slots[slots["kind"] == VISIT]
    vis_unrec = rng.random(len(vis)) < 0.05
    vm = members.merge(vis[["slot_id", "start", "end"]].assign(unrec=vis_unrec), on="slot_id")
    vm = vm[~vm["unrec"]]
    vrec = pd.DataFrame(
        {
            "slot_id": vm["slot_id"].to_numpy(),
            "police_no": vm["police_no"].to_numpy(),
            "s": vm["start"].to_numpy() - rng.integers(0, 120, len(vm)),
            "t": vm["end"].to_numpy() + rng.integers(0, 150, len(vm)),
        }
    )
    pat = slots[slots["kind"] == PATROL]
    pm = members.merge(pat[["slot_id", "start", "end", "size"]], on="slot_id")
    solo = rng.random(len(pm)) < 0.25
    first = group_rank(pm["slot_id"].to_numpy()) == 0
    pm = pm[~solo | first]
    prec = pd.DataFrame(
        {
            "slot_id": pm["slot_id"].to_numpy(),
            "police_no": pm["police_no"].to_numpy(),
            "s": pm["start"].to_numpy(),
            "t": pm["end"].to_numpy(),
        }
    )
    recs = pd.concat([recs, vrec, prec], ignore_index=True)
    recs = recs.sort_values(["slot_id", "police_no", "s"], kind="stable").reset_index(drop=True)

    # --- reports ----------------------------------------------------------
    reports = _reports(rng, ev, members, teams)
    inc_off = members.merge(ev[["slot_id", "incident_no"]], on="slot_id")[["incident_no", "police_no"]]
    return Timeline(slots, ev.reset_index(drop=True), inc_off, reports, recs)


def _event_recs(rng: np.random.Generator, ev: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    m = members.merge(ev[["slot_id", "scenario", "arrived_at", "ended_at", "on_site"]], on="slot_id")
    n = len(m)
    a = m["arrived_at"].to_numpy()
    e = m["ended_at"].to_numpy()
    d = e - a
    sc = m["scenario"].to_numpy()
    s = a - rng.integers(-20, 100, n)
    t = e + rng.integers(-20, 150, n)
    record = sc != NONE
    # off-site incidents with an arrival: half of them recorded anyway
    record &= ~((m["on_site"].to_numpy() == 0) & (rng.random(n) < 0.5))
    # one officer of a missing_officer event does not record
    rank = group_rank(m["slot_id"].to_numpy())
    pick = rng.integers(0, 3, n)
    size = m.groupby("slot_id")["police_no"].transform("size").to_numpy()
    record &= ~((sc == MISSING_OFFICER) & (rank == pick % np.maximum(size, 1)))
    late = rng.integers(60, 900, n) % np.maximum(d // 2, 61)
    s = np.where(sc == LATE, a + np.maximum(late, 61) + rng.integers(0, 5, n), s)
    t = np.where(sc == EARLY, e - np.maximum(late, 61) - rng.integers(0, 5, n), t)
    # shared gap: same gap for every officer of the event (seeded per slot)
    slot_seed = m["slot_id"].to_numpy().astype(np.int64)
    g_len = 45 + (slot_seed * 7919) % np.maximum(np.minimum(860, d // 3 - 45), 1)
    g_start = a + d // 5 + (slot_seed * 104729) % np.maximum(d * 2 // 5, 1)
    is_gap = sc == GAP
    base = pd.DataFrame({"slot_id": m["slot_id"], "police_no": m["police_no"], "s": s, "t": t})
    whole = base[record & ~is_gap]
    g = record & is_gap
    part1 = base[g].assign(t=(g_start - rng.integers(0, 5, n))[g])
    part2 = base[g].assign(s=(g_start + g_len + rng.integers(0, 5, n))[g])
    return pd.concat([whole, part1, part2], ignore_index=True)


def _reports(rng: np.random.Generator, ev: pd.DataFrame, members: pd.DataFrame, teams: pd.DataFrame) -> pd.DataFrame:
    r = ev[ev["report"] != ""][["slot_id", "incident_no", "team_id", "unit_code", "ended_at", "report"]]
    firsts = members.drop_duplicates("slot_id").set_index("slot_id")["police_no"]
    writer = firsts.reindex(r["slot_id"]).to_numpy().astype(object)
    # outsider: an officer of a neighbouring team (not attending, so the report excuses nothing)
    alt = teams.groupby("team_id")["police_no"].first()
    tid = r["team_id"].to_numpy()
    next_tid = np.where(np.isin(tid + 1, alt.index), tid + 1, np.where(np.isin(tid - 1, alt.index), tid - 1, tid))
    out = r["report"].to_numpy() == "outsider"
    writer[out] = alt.reindex(next_tid[out]).to_numpy()
    n = len(r)
    delay = np.where(
        r["report"].to_numpy() == "late", rng.integers(25 * HOUR, 96 * HOUR, n), rng.integers(HOUR, 20 * HOUR, n)
    )
    reasons = np.array(
        ["执法记录仪电量耗尽", "设备故障自动关机", "现场情况紧急未及时开启", "存储卡已满", "设备进水损坏"]
    )
    return pd.DataFrame(
        {
            "report_id": ["BG" + str(x).zfill(8) for x in range(1, n + 1)],
            "incident_no": r["incident_no"].to_numpy(),
            "police_no": writer,
            "reason": rng.choice(reasons, n),
            "reported_at": r["ended_at"].to_numpy() + delay,
        }
    )
