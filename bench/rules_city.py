"""Benchmark of the rules step at city scale on a synthetic warehouse (prints figures, asserts nothing).

    .venv/bin/python bench/rules_city.py [--warehouse URL] [--events 250000] [--clips 2500000] [--reuse]

Writes a synthetic warehouse (mirror tables only: 1 city, 12 counties, 150
stations, 3,000 officers, 3,500 devices, the given numbers of on-site events
and clips, ~80k cases with actions, documents, deliveries and access records),
builds the officers' clip runs (``etl.warehouse.clip_runs``, as the load does),
then times ``coverage.compute`` and ``findings.compute`` in one transaction
(rolled back) and prints the per-step seconds and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from etl.warehouse import clip_runs  # noqa: E402
from etl.warehouse.db import bulk_insert, make_engine  # noqa: E402
from etl.warehouse.schema import ensure_schema  # noqa: E402

T0 = np.datetime64("2026-01-01T00:00:00")
YEAR = 365 * 86400


def _ts(sec: np.ndarray) -> np.ndarray:
    return np.char.replace((T0 + sec.astype("timedelta64[s]")).astype("datetime64[s]").astype(str), "T", " ").astype(
        object
    )


def build(n_events: int, n_clips: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    t: dict[str, pd.DataFrame] = {}
    counties = [f"1404{c:02d}000000" for c in range(1, 13)]
    stations = [f"{c[:6]}{s:02d}0000" for c in counties for s in range(51, 51 + 13)][:150]
    t["org_units"] = pd.DataFrame(
        [("140400000000", "长治市公安局", None, "city")]
        + [(c, f"县局{i}", "140400000000", "county") for i, c in enumerate(counties)]
        + [(s, f"派出所{i}", s[:6] + "000000", "station") for i, s in enumerate(stations)],
        columns=["unit_code", "name", "parent_code", "level"],
    )
    n_off = 3000
    off = np.array([f"{i:06d}" for i in range(1, n_off + 1)], dtype=object)
    off_unit = np.array(stations, dtype=object)[rng.integers(0, len(stations), n_off)]
    t["officers"] = pd.DataFrame(
        {
            "police_no": off,
            "name": [f"民警{i}" for i in range(n_off)],
            "unit_code": off_unit,
            "kind": np.where(rng.random(n_off) < 0.3, "auxiliary", "police"),
            "leader": (rng.random(n_off) < 0.05).astype(int),
            "active": 1,
        }
    )
    n_dev = 3500
    sn = np.array([f"SN{i:07d}" for i in range(n_dev)], dtype=object)
    status = np.where(rng.random(n_dev) < 0.9, "in_use", rng.choice(["spare", "repair", "scrapped", "lost"], n_dev))
    status[:n_off] = np.where(rng.random(n_off) < 0.98, "in_use", "repair")
    dev_unit = np.concatenate(
        [off_unit, np.array(stations, dtype=object)[rng.integers(0, len(stations), n_dev - n_off)]]
    )
    t["devices"] = pd.DataFrame(
        {
            "device_sn": sn,
            "kind": rng.choice(["bodycam", "bodycam", "phone"], n_dev),
            "model": "DSJ",
            "unit_code": dev_unit,
            "status": status,
            "status_since": "2025-12-01 00:00:00",
            "purchased_at": "2025-01-01",
        }
    )
    t["device_assignments"] = pd.DataFrame(
        {"device_sn": sn[:n_off], "police_no": off, "from_at": "2025-12-01 00:00:00", "to_at": None}
    )
    t["unit_admins"] = pd.DataFrame(
        {
            "unit_code": stations[:-5],
            "police_no": off[: len(stations) - 5],
            "from_at": "2025-12-01 00:00:00",
            "to_at": None,
        }
    )

    # on-site events: 1-2 officers, 10-90 minutes
    arr = np.sort(rng.integers(0, YEAR - 86400, n_events))
    dur = rng.integers(600, 5400, n_events)
    inc = np.array([f"J{i:09d}" for i in range(n_events)], dtype=object)
    o1 = rng.integers(0, n_off, n_events)
    two = rng.random(n_events) < 0.5
    o2 = (o1 + rng.integers(1, n_off, n_events)) % n_off
    t["incidents"] = pd.DataFrame(
        {
            "incident_no": inc,
            "unit_code": off_unit[o1],
            "category": "纠纷",
            "received_at": _ts(arr - 600),
            "arrived_at": _ts(arr),
            "ended_at": _ts(arr + dur),
            "on_site": 1,
            "case_no": None,
            "updated_at": "2026-01-01 00:00:00",
        }
    )
    t["incident_officers"] = pd.DataFrame(
        {"incident_no": np.concatenate([inc, inc[two]]), "police_no": np.concatenate([off[o1], off[o2[two]]])}
    )
    t["interruption_reports"] = pd.DataFrame(
        {
            "report_id": [f"R{i}" for i in range(n_events // 50)],
            "incident_no": inc[: n_events // 50],
            "police_no": off[o1[: n_events // 50]],
            "reason": "电量不足",
            "reported_at": _ts(arr[: n_events // 50] + 7200),
        }
    )

    # clips: three pieces per (event, officer) with small random gaps, the rest at random times
    pe = np.concatenate([np.arange(n_events), np.flatnonzero(two)])
    po = np.concatenate([o1, o2[two]])
    k = 3
    ev_rep = np.repeat(pe, k)
    part = np.tile(np.arange(k), len(pe))
    a, d = arr[ev_rep], dur[ev_rep]
    jitter = np.where(rng.random(len(ev_rep)) < 0.03, 120, 10)  # ~3 % of pieces leave a real gap
    cs = a + d * part // k + rng.integers(0, 1, len(ev_rep)) * 0 + (part > 0) * jitter
    ce = a + d * (part + 1) // k
    co = np.repeat(po, k)
    n_rest = max(n_clips - len(cs), 0)
    rs = rng.integers(0, YEAR, n_rest)
    cs = np.concatenate([cs, rs])
    ce = np.maximum(np.concatenate([ce, rs + rng.integers(60, 1800, n_rest)]), cs + 1)
    co = np.concatenate([co, rng.integers(0, n_off, n_rest)])
    n = len(cs)
    pn = off[co].copy()
    pn[rng.random(n) < 0.3] = None
    case_tag = np.where(rng.random(n) < 0.05, "A" + pd.Series(rng.integers(0, 80000, n)).astype(str).str.zfill(8), None)
    t["clips"] = pd.DataFrame(
        {
            "clip_id": np.array([f"C{i:09d}" for i in range(n)], dtype=object),
            "device_sn": sn[co],
            "police_no": pn,
            "started_at": _ts(cs),
            "ended_at": _ts(ce),
            "size_bytes": 1000,
            "sha256": "ab" * 32,
            "imported_at": _ts(ce + rng.integers(600, 25 * 3600, n)),
            "file_path": None,
            "incident_no": None,
            "case_no": case_tag,
            "is_evidence": (rng.random(n) < 0.05).astype(int),
            "deleted_at": np.where(rng.random(n) < 0.01, _ts(cs + 100 * 86400), None),
            "updated_at": "2026-01-01 00:00:00",
        }
    )

    # cases, actions, documents, deliveries, access
    n_case = 80000
    cno = np.array([f"A{i:08d}" for i in range(n_case)], dtype=object)
    reg = rng.integers(0, YEAR - 40 * 86400, n_case)
    c_off = rng.integers(0, n_off, n_case)
    t["cases"] = pd.DataFrame(
        {
            "case_no": cno,
            "unit_code": off_unit[c_off],
            "title": "案",
            "procedure": "general",
            "source": rng.choice(["ex_officio", "complaint", "report", "other"], n_case),
            "is_major": (rng.random(n_case) < 0.05).astype(int),
            "emergency_start": (rng.random(n_case) < 0.1).astype(int),
            "registered_at": _ts(reg),
            "started_at": _ts(reg + 3600),
            "start_approved_at": _ts(reg + 1800),
            "filed": 1,
            "decided_at": _ts(reg + 20 * 86400),
            "closed_at": None,
            "enforcement_power": 0,
            "updated_at": "2026-01-01 00:00:00",
        }
    )
    t["case_officers"] = pd.DataFrame({"case_no": cno, "police_no": off[c_off], "role": "handler"})
    # per case: a rights notification (day 1), a performance check (day 30), and random others
    types = np.array(["inquiry", "inquiry", "statement_defence", "evidence_preservation", "freeze"], dtype=object)
    n_other = 300000 - 2 * n_case
    ac = np.concatenate([np.arange(n_case), np.arange(n_case), rng.integers(0, n_case, n_other)])
    ast = reg[ac] + np.concatenate(
        [np.full(n_case, 86400), np.full(n_case, 50 * 86400), rng.integers(3600, 10 * 86400, n_other)]
    )
    atype = np.concatenate(
        [
            np.full(n_case, "rights_notification", dtype=object),
            np.full(n_case, "performance_check", dtype=object),
            types[rng.integers(0, len(types), n_other)],
        ]
    )
    n_act = len(ac)
    aid = np.array([f"X{i:09d}" for i in range(n_act)], dtype=object)
    t["case_actions"] = pd.DataFrame(
        {
            "action_id": aid,
            "case_no": cno[ac],
            "action_type": atype,
            "started_at": _ts(ast),
            "ended_at": _ts(ast + 1800),
            "police_no": off[c_off[ac]],
            "updated_at": "2026-01-01 00:00:00",
        }
    )
    doc_of = {
        "inquiry": "inquiry_record",
        "inspection": "inspection_record",
        "evidence_preservation": "preservation_record",
        "freeze": "freeze_decision",
        "rights_notification": "rights_notice",
        "statement_defence": "statement_record",
        "performance_check": "performance_check_record",
    }
    keep = rng.random(n_act) < 0.97
    major = t["cases"]["is_major"].to_numpy() == 1
    d_case = np.concatenate([cno[ac[keep]], cno[major], cno])
    d_type = np.concatenate(
        [
            pd.Series(atype[keep]).map(doc_of).to_numpy(),
            np.full(major.sum(), "legal_review"),
            np.full(n_case, "penalty_decision"),
        ]
    )
    d_time = np.concatenate([ast[keep] + 2000, reg[major] + 10 * 86400, reg + 20 * 86400])
    n_doc = len(d_case)
    did = np.array([f"D{i:09d}" for i in range(n_doc)], dtype=object)
    t["case_documents"] = pd.DataFrame(
        {
            "doc_id": did,
            "case_no": d_case,
            "action_id": np.concatenate([aid[keep], np.full(n_doc - keep.sum(), None)]),
            "doc_type": d_type,
            "created_at": _ts(d_time),
            "drafter_no": "000001",
            "reviewer_no": "000002",
            "approver_no": "000003",
            "legal_basis": "法",
            "party_signed": (rng.random(n_doc) < 0.98).astype(int),
            "party_refused": 0,
            "officer_signed": 1,
            "witness_signed": 0,
            "updated_at": "2026-01-01 00:00:00",
        }
    )
    t["deliveries"] = pd.DataFrame(
        {
            "delivery_id": [f"DL{i}" for i in range(n_case)],
            "doc_id": did[-n_case:],
            "method": "direct",
            "delivered_at": _ts(reg + 21 * 86400),
            "receipt_signed": (rng.random(n_case) < 0.99).astype(int),
            "postal_receipt": None,
            "reason": None,
            "entrustee": None,
            "note": None,
        }
    )
    n_log = 100000
    t["access_log"] = pd.DataFrame(
        {
            "log_id": [f"L{i}" for i in range(n_log)],
            "action": rng.choice(["view", "view", "copy", "download", "external"], n_log),
            "user_no": off[
                np.where(
                    rng.random(n_log) < 0.98,
                    co[(li := rng.integers(0, n, n_log))] % n_off,
                    rng.integers(0, n_off, n_log),
                )
            ],
            "at": _ts(rng.integers(0, YEAR, n_log)),
            "reason": "办案",
            "approver_no": "000001",
            "approved_at": "2026-01-01 00:00:00",
            "recipient": None,
        }
    )
    t["access_log"].insert(1, "clip_id", t["clips"]["clip_id"].to_numpy()[li])
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warehouse", default="sqlite:////tmp/rules_eng/bench_city.sqlite")
    ap.add_argument("--events", type=int, default=250_000)
    ap.add_argument("--clips", type=int, default=2_500_000)
    ap.add_argument("--reuse", action="store_true", help="keep an already written synthetic warehouse")
    args = ap.parse_args()
    engine = make_engine(args.warehouse)
    if not args.reuse:
        t = time.perf_counter()
        tables = build(args.events, args.clips)
        print(f"generate: {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        with engine.begin() as conn:
            ensure_schema(conn)
            for name, df in tables.items():
                conn.exec_driver_sql(f"DELETE FROM {name}")
                bulk_insert(conn, name, df)
            t_runs = time.perf_counter()
            clip_runs.rebuild(conn)  # what the load keeps up to date in a real run
            print(f"clip runs (load step): {time.perf_counter() - t_runs:.1f} s")
        print(
            f"write warehouse: {time.perf_counter() - t:.1f} s "
            f"({len(tables['incidents']):,} events, {len(tables['clips']):,} clips)"
        )
        del tables

    from etl.rules import config, coverage, findings
    from etl.warehouse import clip_days

    cfg = config.load()
    as_of = datetime(2026, 12, 31, 23, 59, 59)
    with engine.connect() as conn:
        tx = conn.begin()
        t = time.perf_counter()  # the steps as etl.evaluation wires them
        runs = clip_runs.read(conn)
        cov = coverage.compute(conn, as_of, cfg, runs=runs)
        t_cov = time.perf_counter() - t
        t = time.perf_counter()
        counts = findings.compute(
            conn,
            as_of,
            cfg,
            integrity_checked=False,
            runs=runs,
            coverage=cov,
            clip_months=clip_days.per_month(conn, as_of),
        ).counts
        t_rules = time.perf_counter() - t
        tx.rollback()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"dialect: {engine.dialect.name}")
    print(f"coverage step: {t_cov:.2f} s")
    print(f"other rules:   {t_rules:.2f} s ({sum(counts.values()):,} findings)")
    print(f"peak RSS:      {rss:,.0f} MB")
    for rule, n in counts.items():
        print(f"  {rule:<18} {n:>9,}")


if __name__ == "__main__":
    main()
