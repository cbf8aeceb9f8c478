"""A small, complete warehouse for the workbook tests, inserted row by row (no ETL run needed).

``populate`` writes org units, officers, devices, assignments, clips,
event_coverage, findings, metrics, evaluation, etl_runs and the scores of
the ``measures-2026`` scheme for every month, quarter and year.  The scores
come from :func:`reference_scores`, a deliberately plain transcription of
rules.md "Assessment" over the objects this module generated, so the
workbook's 扣分明细 can be checked against them.

Deterministic for a seed; ``scale`` multiplies the object counts (the bench
uses it for a city-sized synthetic warehouse).  With ``payloads=True`` formula
payloads (``FORMULA_PAYLOADS``) are put into unit and officer names, device
models, object keys and finding details.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Connection

from etl.rules.keys import RULES, finding_key
from etl.scoring.schemes import load_scheme
from etl.warehouse.db import bulk_insert
from etl.warehouse.distribution import backfill as fill_counties
from etl.warehouse.schema import ensure_schema

ROOT = Path(__file__).resolve().parent.parent
SCHEME = load_scheme(ROOT / "config" / "schemes" / "measures-2026.yaml")  # the scoring's own parser
AS_OF = "2026-11-30 23:59:59"
CITY = "140400000000"

FORMULA_PAYLOADS = [
    '=HYPERLINK("http://evil.example/","点我")',
    "=1+1",
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=cmd|' /C calc'!A0",
    "\r=2*3",
    '=WEBSERVICE("http://x")',
]

# item id -> (finding column naming the object, rules that make it unclean)
ITEMS = {i["id"]: i for i in SCHEME["items"]}
KEY = {
    "onsite_events": "incident_no",
    "av_actions": "action_id",
    "cases_with_actions": "case_no",
    "cases": "case_no",
    "devices": "device_sn",
    "clips": "clip_id",
    "access_records": "log_id",
}
PREFIX = {
    "onsite_recording": "J",
    "measure_av": "A",
    "text_records": "CT",
    "procedure_service": "CP",
    "equipment": "D",
    "timely_upload": "CL",
    "access_integrity": "L",
}
# objects per station and item; procedure_service's cases are text_records' cases (which have actions)
# plus PER_STATION["procedure_service"] cases without actions
PER_STATION = {
    "onsite_recording": 20,
    "measure_av": 8,
    "text_records": 10,
    "procedure_service": 12,
    "equipment": 4,
    "timely_upload": 30,
    "access_integrity": 6,
}
DEVICE_STATUSES = ["in_use", "in_use", "spare", "repair", "scrapped"]


@dataclass
class Warehouse:
    units: pd.DataFrame
    objects: pd.DataFrame  # item_id, unit_code, key, month
    findings: pd.DataFrame
    extras: dict = field(default_factory=dict)


def _units(counties: int, stations: int, payloads: bool) -> pd.DataFrame:
    rows = [(CITY, "长治市公安局", None, "city")]
    for k in range(counties):
        kc = f"1404{k + 3:02d}000000"
        rows.append((kc, f"第{k + 1}县（区）公安局", CITY, "county"))
        for s in range(stations):
            name = f"第{k + 1}县第{s + 1}派出所"
            if payloads and k == 0 and s == 1:
                name = FORMULA_PAYLOADS[0]
            rows.append((f"1404{k + 3:02d}{s + 1:02d}0000", name, kc, "station"))
    return pd.DataFrame(rows, columns=["unit_code", "name", "parent_code", "level"])


def _month(rng: random.Random) -> str:
    return f"2026-{rng.randint(1, 11):02d}"


def _finding_keys(rule: str, key: str, obj: str, unit: str, rng: random.Random) -> dict:
    """The object columns a finding of ``rule`` on object ``obj`` (named by column ``key``) carries."""
    shape = RULES[rule]["key"]
    if shape == ("action_id", "doc_type"):  # DOC-MISSING: the case is found through its action
        keys = {"action_id": f"A{obj}", "doc_type": "inquiry_record"}
        if rng.random() < 0.5:
            keys["case_no"] = obj
        return keys
    if key == "case_no" and shape == ("doc_id",):
        return {"doc_id": f"D{obj}", "case_no": obj}
    if rule == "AV-OFFICER":
        return {key: obj, "police_no": f"P{unit[4:8]}01"}
    return {key: obj}


def generate(
    *, counties: int = 2, stations: int = 2, scale: int = 1, seed: int = 7, payloads: bool = True
) -> Warehouse:
    """Objects and findings (no database yet)."""
    rng = random.Random(seed)
    units = _units(counties, stations, payloads)
    station_codes = units.loc[units["level"] == "station", "unit_code"].tolist()
    objects, findings = [], []
    fid = 0
    seen: set[str] = set()

    def add(rule, unit, month, day=10, **keys):  # noqa: ANN001, ANN003
        nonlocal fid
        fid += 1
        row = {
            "rule_id": rule,
            "article": RULES[rule]["article"],
            "unit_code": unit,
            "occurred_at": f"{month}-{day:02d} 09:30:00",
            "month": month,
            "detail": f"{rule} 问题说明 {fid}",
            **keys,
        }
        key = finding_key(rule, {"gap_start": row["occurred_at"], **row})
        key = key if key not in seen else f"{key}#{fid}"  # a breach generated twice stays unique
        seen.add(key)
        row = {"finding_key": key, **row}
        findings.append(row)
        return row

    for n, unit in enumerate(station_codes):
        mine = []
        for item_id, per in PER_STATION.items():
            for i in range(per * scale):
                obj = f"{PREFIX[item_id]}{unit[4:8]}{i:05d}"
                if payloads and n == 0 and i == 0 and item_id == "onsite_recording":
                    obj = FORMULA_PAYLOADS[1]
                mine.append((item_id, unit, obj, _month(rng)))
        # the cases with actions are cases too
        mine += [("procedure_service", u, k, m) for it, u, k, m in mine if it == "text_records"]
        for item_id, _, obj, month in mine:
            item = ITEMS[item_id]
            key = KEY[item["objects"]]
            if rng.random() < 0.3:
                rules = [r for r in item["rules"] if r in RULES]  # SPOT-CHECK comes from reviews, not rules
                for rule in rng.sample(rules, k=rng.randint(1, min(2, len(rules)))):
                    for _ in range(rng.randint(1, 2)):  # several findings on one object
                        add(rule, unit, month, rng.randint(1, 28), **_finding_keys(rule, key, obj, unit, rng))
        objects += mine
        # deductions in the month of the evaluation date; the first station hits the equipment floor
        for _ in range(3 if n == 0 else rng.randint(0, 1)):
            add("EQUIP-ADMIN", unit, "2026-11", 30)
        if rng.random() < 0.5:
            add("WINDOW-CCTV", unit, "2026-11", 30, window_id=f"W{n}")
        if n % 2 == 1:
            add("INTEGRITY-MISSING", unit, "2026-07", 5, clip_id=f"CL{unit[4:8]}00000")
        if n == 0:  # every device of the first station unclean -> with the EQUIP-ADMIN deductions it floors at 0
            for it, u, k, m in mine:
                if it == "equipment":
                    add("EQUIP-REPAIR", u, m, 12, device_sn=k)
    # a veto in the last station, and a finding outside the year
    add("INTEGRITY-HASH", station_codes[-1], "2026-08", 3, clip_id=f"CL{station_codes[-1][4:8]}00001")
    add("AV-NONE", station_codes[0], "2025-12", 1, incident_no="J-OLD")
    if payloads:
        for j, p in enumerate(FORMULA_PAYLOADS):
            findings[j * 7 % len(findings)]["detail"] = p
    fdf = pd.DataFrame(findings)
    for c in (
        "case_no",
        "action_id",
        "doc_id",
        "incident_no",
        "clip_id",
        "device_sn",
        "log_id",
        "police_no",
        "doc_type",
        "window_id",
    ):
        if c not in fdf:
            fdf[c] = None
    obj = pd.DataFrame(objects, columns=["item_id", "unit_code", "key", "month"])
    obj["status"] = None
    dev = obj["item_id"] == "equipment"
    obj.loc[dev, "status"] = [device_status(i) for i in range(int(dev.sum()))]
    return Warehouse(units, obj, fdf)


def device_status(i: int) -> str:
    return DEVICE_STATUSES[i % len(DEVICE_STATUSES)]


# --- the reference scorer (rules.md "Assessment", written plainly) -------------------------------------


def periods(year_only: bool = False) -> list[tuple[str, set[str]]]:
    out = [("2026", {f"2026-{m:02d}" for m in range(1, 13)})]
    if year_only:
        return out
    out += [(f"2026-Q{q}", {f"2026-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)}) for q in range(1, 5)]
    out += [(f"2026-{m:02d}", {f"2026-{m:02d}"}) for m in range(1, 13)]
    return out


def _scope(units: pd.DataFrame, code: str) -> set[str]:
    kids = defaultdict(list)
    for c, p in zip(units["unit_code"], units["parent_code"], strict=True):
        kids[p].append(c)
    out, todo = set(), [code]
    while todo:
        c = todo.pop()
        out.add(c)
        todo += kids[c]
    return out


def _in_period(objs: pd.DataFrame, months: set[str]) -> pd.Series:
    """Timed objects: their month is in the period. Devices: owned unless scrapped/lost before it starts."""
    gone = objs["status"].isin(["scrapped", "lost"]) & (objs["month"] < min(months))
    return objs["month"].isin(months).where(objs["item_id"] != "equipment", ~gone)


def reference_scores(
    wh: Warehouse, case_of_action: dict[str, str], year_only: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """unit_scores and unit_item_scores rows for every unit and period."""
    f = wh.findings.copy()
    miss = f["case_no"].isna() & f["action_id"].notna()
    f.loc[miss, "case_no"] = f.loc[miss, "action_id"].map(case_of_action)
    item_rows, unit_rows = [], []
    scopes = {u: _scope(wh.units, u) for u in wh.units["unit_code"]}
    levels = dict(zip(wh.units["unit_code"], wh.units["level"], strict=True))
    for period, months in periods(year_only):
        fp = f[f["month"].isin(months)]
        op = wh.objects[_in_period(wh.objects, months)]
        for unit, scope in scopes.items():
            fu = fp[fp["unit_code"].isin(scope)]
            ou = op[op["unit_code"].isin(scope)]
            total, onsite = 0.0, 0.0
            for item in SCHEME["items"]:
                objs = set(ou.loc[ou["item_id"] == item["id"], "key"])
                bad = set(fu.loc[fu["rule_id"].isin(item["rules"]), KEY[item["objects"]]].dropna()) & objs
                n, clean = len(objs), len(objs) - len(bad)
                ded = sum(float(p) * int((fu["rule_id"] == r).sum()) for r, p in (item.get("deductions") or {}).items())
                score = max(0.0, (item["points"] * clean / n if n else item["points"]) - ded)
                total += score
                onsite = round(score, 2) if item["id"] == "onsite_recording" else onsite
                item_rows.append(
                    (
                        "measures-2026",
                        "2026.1",
                        1,
                        period,
                        unit,
                        item["id"],
                        item["name"],
                        float(item["points"]),
                        n,
                        clean,
                        ded,
                        round(score, 2),
                    )
                )
            veto = bool(fu["rule_id"].isin(SCHEME["veto"]["rules"]).any())
            total = round(min(total, 59.0) if veto else total, 2)
            grade = "不达标" if veto or total < 60 else ("优秀" if total >= 90 else "达标")
            unit_rows.append(
                ["measures-2026", "2026.1", 1, period, unit, levels[unit], total, grade, None, int(veto), onsite]
            )
    us = pd.DataFrame(
        unit_rows,
        columns=[
            "scheme_id",
            "scheme_version",
            "active",
            "period",
            "unit_code",
            "unit_level",
            "total",
            "grade",
            "rank",
            "veto",
            "_onsite",
        ],
    )
    us = us.sort_values(
        ["period", "unit_level", "total", "_onsite", "unit_code"], ascending=[True, True, False, False, True]
    )
    us["rank"] = us.groupby(["period", "unit_level"]).cumcount() + 1
    items = pd.DataFrame(
        item_rows,
        columns=[
            "scheme_id",
            "scheme_version",
            "active",
            "period",
            "unit_code",
            "item_id",
            "item_name",
            "points",
            "objects",
            "clean",
            "deductions",
            "score",
        ],
    )
    return us.drop(columns="_onsite").reset_index(drop=True), items


# --- into the database ----------------------------------------------------------------------------------


def _ts(month: str, day: int, hm: str) -> str:
    return f"{month}-{day:02d} {hm}:00"


def populate(conn: Connection, *, year_only: bool = False, **kw) -> Warehouse:  # noqa: ANN003
    """Create the schema and insert a complete small warehouse; returns what was generated.

    The source mirrors hold exactly the objects the scheme counts: on-site
    events (event_coverage), cases (with and without actions), AV actions,
    devices, clips and access records, each in the month generated for it.
    """
    ensure_schema(conn)
    wh = generate(**kw)
    payloads = kw.get("payloads", True)
    rng = random.Random(99)
    o = wh.objects
    bulk_insert(conn, "org_units", wh.units)
    stations = wh.units.loc[wh.units["level"] == "station", "unit_code"].tolist()

    officers = []
    for n, unit in enumerate(stations):
        for i in range(3):
            name = FORMULA_PAYLOADS[2] if payloads and n == 0 and i == 0 else f"警员{unit[4:8]}{i}"
            officers.append((f"P{unit[4:8]}{i:02d}", name, unit, "police", 0, 1))
    bulk_insert(conn, "officers", officers, ["police_no", "name", "unit_code", "kind", "leader", "active"])

    dev = o[o["item_id"] == "equipment"]
    devices = [
        (
            r.key,
            "bodycam" if i % 3 else "phone",
            FORMULA_PAYLOADS[3] if payloads and i == 1 else "DSJ-V9",
            r.unit_code,
            r.status,
            _ts(r.month, 1, "08:00"),
        )
        for i, r in enumerate(dev.itertuples())
    ]
    bulk_insert(conn, "devices", devices, ["device_sn", "kind", "model", "unit_code", "status", "status_since"])
    assign = [(d[0], f"P{d[3][4:8]}{i % 3:02d}", "2026-01-01 08:00:00", None) for i, d in enumerate(devices)]
    bulk_insert(conn, "device_assignments", assign, ["device_sn", "police_no", "from_at", "to_at"])

    by_unit = defaultdict(list)
    for d in devices:
        by_unit[d[3]].append(d[0])
    clips = o[o["item_id"] == "timely_upload"]
    rows = [
        (
            r.key,
            by_unit[r.unit_code][i % len(by_unit[r.unit_code])],
            _ts(r.month, 15, "10:00"),
            _ts(r.month, 15, "10:10"),
            _ts(r.month, 15, "10:10"),
        )
        for i, r in enumerate(clips.itertuples())
    ]
    bulk_insert(conn, "clips", rows, ["clip_id", "device_sn", "started_at", "ended_at", "updated_at"])
    # UPLOAD-LATE findings carry their clip's device and start, as etl.rules.media writes them (same month)
    device, start = ({r[0]: r[k] for r in rows} for k in (1, 2))
    late = (wh.findings["rule_id"] == "UPLOAD-LATE") & wh.findings["clip_id"].isin(list(device))
    wh.findings.loc[late, "device_sn"] = wh.findings.loc[late, "clip_id"].map(device)
    wh.findings.loc[late, "occurred_at"] = wh.findings.loc[late, "clip_id"].map(start)
    clip_of_unit = defaultdict(list)
    for r in rows:
        clip_of_unit[r[1][1:5]].append(r[0])
    logs = o[o["item_id"] == "access_integrity"]
    bulk_insert(
        conn,
        "access_log",
        [
            (
                r.key,
                clip_of_unit[r.unit_code[4:8]][0],
                "view",
                f"P{r.unit_code[4:8]}00",
                _ts(r.month, 20, "11:00"),
                "复核",
            )
            for r in logs.itertuples()
        ],
        ["log_id", "clip_id", "action", "user_no", "at", "reason"],
    )

    cases = o[o["item_id"] == "procedure_service"]
    bulk_insert(
        conn,
        "cases",
        [
            (r.key, r.unit_code, "general", "ex_officio", 0, 0, _ts(r.month, 3, "09:00"), 1, _ts(r.month, 3, "09:00"))
            for r in cases.itertuples()
        ],
        [
            "case_no",
            "unit_code",
            "procedure",
            "source",
            "is_major",
            "emergency_start",
            "registered_at",
            "enforcement_power",
            "updated_at",
        ],
    )
    with_actions = o[o["item_id"] == "text_records"]
    first_case = with_actions.groupby("unit_code")["key"].first()
    case_of_action = {f"A{r.key}": r.key for r in with_actions.itertuples()}
    actions = [
        (a, c, "inquiry", *(2 * [_ts(m, 3, "10:00")]), _ts(m, 3, "10:00"))
        for (a, c), m in zip(case_of_action.items(), with_actions["month"], strict=True)
    ]
    av = o[o["item_id"] == "measure_av"]
    actions += [
        (
            r.key,
            first_case[r.unit_code],
            "inspection",
            _ts(r.month, 5, "10:00"),
            _ts(r.month, 5, "11:00"),
            _ts(r.month, 5, "11:00"),
        )
        for r in av.itertuples()
    ]
    bulk_insert(
        conn, "case_actions", actions, ["action_id", "case_no", "action_type", "started_at", "ended_at", "updated_at"]
    )

    # on-site events: status from the findings on them
    ev = o[o["item_id"] == "onsite_recording"]
    f = wh.findings
    none = set(f.loc[f["rule_id"] == "AV-NONE", "incident_no"])
    gap = set(f.loc[f["rule_id"] == "AV-GAP", "incident_no"])
    cov = []
    for r in ev.itertuples():
        status = "none" if r.key in none else "partial" if r.key in gap else "excused" if rng.random() < 0.1 else "full"
        frac = {"none": 0.0, "partial": 0.6, "excused": 0.5, "full": 1.0}[status]
        cov.append(
            (
                r.key,
                r.unit_code,
                _ts(r.month, 8, "10:00"),
                _ts(r.month, 8, "10:30"),
                1800.0,
                1800 * frac,
                frac,
                0 if status == "full" else 1,
                status,
            )
        )
    bulk_insert(
        conn,
        "event_coverage",
        cov,
        [
            "incident_no",
            "unit_code",
            "arrived_at",
            "ended_at",
            "window_s",
            "covered_s",
            "covered_fraction",
            "gap_count",
            "status",
        ],
    )

    bulk_insert(conn, "findings", wh.findings)
    fill_counties(conn)  # the load and the rules write each row's county_code; these rows skip both
    unit_scores, item_scores = reference_scores(wh, case_of_action, year_only)
    bulk_insert(conn, "unit_scores", unit_scores)
    bulk_insert(conn, "unit_item_scores", item_scores)

    metrics = []
    for period, _ in periods(year_only):
        for u in wh.units["unit_code"]:
            metrics.append((period, u, "whole_process_rate", 8.0, 10.0, 0.8))
            metrics.append((period, u, "issue_rate", 0.0, 0.0, None))  # empty denominator -> "—"
    bulk_insert(conn, "metrics", metrics, ["period", "unit_code", "metric_id", "numerator", "denominator", "value"])
    bulk_insert(
        conn,
        "etl_runs",
        [(1, "2026-12-01 01:00:00", "2026-12-01 01:05:00", "ok", AS_OF)],
        ["run_id", "started_at", "ended_at", "status", "as_of"],
    )
    bulk_insert(
        conn,
        "evaluation",
        [(1, AS_OF, "2026-11-30 18:00:00", "measures-2026", "2026.1", 1, "2026-12-01 01:05:00")],
        ["run_id", "as_of", "data_as_of", "scheme_id", "scheme_version", "integrity_checked", "computed_at"],
    )
    wh.extras.update(unit_scores=unit_scores, item_scores=item_scores, case_of_action=case_of_action)
    return wh
