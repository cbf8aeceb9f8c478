"""Per officer (issue 18 part 1): v_event_officers, v_case_officers, finding_officers and v_officer_records."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scenario import (
    AS_OF,
    D1,
    D2,
    LEADER_K1,
    P1,
    P2,
    P4,
    S1,
    T0,
    load_scenario,
    table,
    world,
)

from etl.warehouse.db import read_df

DAY = "2026-01-10"
D6 = "SN-D6"


def _inc(no: str, arrived: str, ended: str) -> dict:
    return {"incident_no": no, "received_at": f"{DAY} 08:00:00", "arrived_at": arrived, "ended_at": ended}


def _clip(cid: str, start: str, end: str, police_no: str | None = P1, device: str = D1, **kw) -> dict:
    return {"clip_id": cid, "device_sn": device, "police_no": police_no, "started_at": start, "ended_at": end, **kw}


def _evaluate(engine) -> None:  # noqa: ANN001
    from etl.evaluation import evaluate

    with engine.begin() as conn:
        evaluate(conn, as_of=datetime.strptime(AS_OF, "%Y-%m-%d %H:%M:%S"), integrity_checked=False)


def _world() -> dict:
    t = f"{DAY} 10:"
    return world(
        devices=[  # P4's device is in repair since before the events
            {"device_sn": D6, "kind": "bodycam", "model": "DSJ-1", "unit_code": S1, "status": "repair",
             "status_since": T0},
        ],
        device_assignments=[{"device_sn": D6, "police_no": P4, "from_at": T0, "to_at": None}],
        incidents=[
            _inc("E-FULL", t + "00:00", t + "10:00"),  # P1 records it all; P2 attends without a clip
            _inc("E-NONE", t + "20:00", t + "30:00"),  # P1 (device), LEADER_K1 (no device), P4 (device in repair)
            _inc("E-GAP", t + "40:00", t + "50:00"),  # P1 and P2 record the first half each: one gap
            _inc("E-EXCUSED", f"{DAY} 11:00:00", f"{DAY} 11:10:00"),  # nobody records, P1 reports in time
        ],
        incident_officers=[
            {"incident_no": "E-FULL", "police_no": P1},
            {"incident_no": "E-FULL", "police_no": P2},
            {"incident_no": "E-NONE", "police_no": P1},
            {"incident_no": "E-NONE", "police_no": LEADER_K1},
            {"incident_no": "E-NONE", "police_no": P4},
            {"incident_no": "E-GAP", "police_no": P1},
            {"incident_no": "E-GAP", "police_no": P2},
            {"incident_no": "E-EXCUSED", "police_no": P1},
        ],
        interruption_reports=[
            {"report_id": "R1", "incident_no": "E-EXCUSED", "police_no": P1, "reason": "设备故障",
             "reported_at": f"{DAY} 12:00:00"},
        ],
        clips=[
            _clip("C-FULL", t + "00:00", t + "10:00"),
            _clip("C-GAP1", t + "40:00", t + "43:00"),
            _clip("C-GAP2", t + "41:00", t + "45:00", police_no=None, device=D2),  # P2's by the assignment
            _clip(  # deleted as evidence by LEADER_K1 (INTEGRITY-DELETED names them)
                "C-DEL", f"{DAY} 14:00:00", f"{DAY} 14:10:00", is_evidence=1, deleted_at="2026-02-01 00:00:00"
            ),
            _clip("C-GONE", f"{DAY} 15:00:00", f"{DAY} 15:10:00", deleted_at="2026-02-02 00:00:00"),  # unlogged
        ],
        access_log=[
            {"log_id": "L-DEL", "clip_id": "C-DEL", "action": "delete", "user_no": LEADER_K1,
             "at": "2026-02-01 00:00:00", "reason": "清理", "approver_no": LEADER_K1,
             "approved_at": "2026-01-31 00:00:00"},
        ],
        cases=[  # ex officio without start approval: START-APPROVAL, a case-level finding with no police_no
            {"case_no": "A1", "title": "案件", "source": "ex_officio", "started_at": "2026-01-12 09:00:00",
             "registered_at": "2026-01-12 09:00:00"},
        ],
        case_officers=[
            {"case_no": "A1", "police_no": P2, "role": "handler"},
            {"case_no": "A1", "police_no": P1, "role": "assistant"},
        ],
    )  # fmt: skip


@pytest.fixture
def loaded(warehouse):  # SQLite and PostgreSQL
    engine = load_scenario(warehouse, _world(), evaluate=False)
    _evaluate(engine)
    return engine


def _named(engine) -> dict[str, set[tuple]]:  # noqa: ANN001
    fo = table(engine, "v_finding_officers")
    out: dict[str, set[tuple]] = {}
    for r in fo.itertuples(index=False):
        out.setdefault(r.finding_key, set()).add((r.police_no, None if pd.isna(r.cause) else r.cause, r.basis))
    return out


def test_event_and_case_officers_views(loaded):
    ev = table(loaded, "v_event_officers")
    assert set(ev.columns) == {"incident_no", "police_no"} and len(ev) == 8
    assert set(ev.loc[ev["incident_no"] == "E-NONE", "police_no"]) == {P1, LEADER_K1, P4}
    co = table(loaded, "v_case_officers")
    assert set(map(tuple, co[["case_no", "police_no", "role"]].to_numpy())) == {
        ("A1", P2, "handler"),
        ("A1", P1, "assistant"),
    }


def test_av_findings_name_their_officers_with_a_cause(loaded):
    f = table(loaded, "findings")
    keys = set(f["finding_key"])
    # finding keys are unchanged: one finding per breach, not one per officer
    assert "AV-NONE:E-NONE" in keys and f"AV-OFFICER:E-FULL:{P2}" in keys
    assert len(f[f["rule_id"] == "AV-NONE"]) == 1 and len(f[f["rule_id"] == "AV-GAP"]) == 1
    named = _named(loaded)
    assert named["AV-NONE:E-NONE"] == {
        (P1, "not_recorded", "attended"),
        (LEADER_K1, "no_device", "attended"),
        (P4, "device_repair", "attended"),
    }
    gap_key = f.loc[f["rule_id"] == "AV-GAP", "finding_key"].iloc[0]
    assert named[gap_key] == {(P1, "not_recorded", "attended"), (P2, "not_recorded", "attended")}
    assert named[f"AV-OFFICER:E-FULL:{P2}"] == {(P2, "not_recorded", "officer")}
    # the excused event's finding (excused_findings) names its officer too
    assert named["AV-NONE:E-EXCUSED"] == {(P1, "not_recorded", "attended")}


def test_other_findings_name_the_responsible(loaded):
    named = _named(loaded)
    assert named["START-APPROVAL:A1"] == {(P2, None, "case_handler")}  # the handler, not the assistant
    assert named["INTEGRITY-DELETED:C-DEL"] == {(LEADER_K1, None, "officer")}  # who deleted (rules v1.1)
    assert "DELETE-UNLOGGED:C-GONE" not in named  # names nobody


def test_officer_records(loaded):
    rec = read_df(loaded, "SELECT * FROM v_officer_records ORDER BY period, police_no")
    assert list(rec.columns) == [
        "period",
        "police_no",
        "unit_code",
        "events_attended",
        "events_fully_recorded",
        "own_coverage",
        "findings_av",
        "findings_text",
        "findings_access",
        "findings_integrity",
    ]
    r = rec.set_index(["period", "police_no"])
    p1 = r.loc[("2026-01", P1)]
    # E-FULL (own 600/600), E-NONE (0), E-GAP (180/600), E-EXCUSED (0): 4 events, 1 full, mean 0.325
    assert (p1["events_attended"], p1["events_fully_recorded"]) == (4, 1)
    assert p1["own_coverage"] == pytest.approx((1 + 0 + 0.3 + 0) / 4)
    # AV-NONE:E-NONE, AV-GAP (E-GAP); the excused event's finding does not count (excuse effective)
    assert (p1["findings_av"], p1["findings_text"], p1["findings_access"], p1["findings_integrity"]) == (2, 0, 0, 0)
    assert p1["unit_code"] == S1
    p2 = r.loc[("2026-01", P2)]
    assert (p2["events_attended"], p2["events_fully_recorded"]) == (2, 1)
    assert p2["own_coverage"] == pytest.approx((0 + 240 / 600) / 2)  # C-GAP2 by the device assignment
    assert (p2["findings_av"], p2["findings_text"]) == (2, 1)  # AV-OFFICER, AV-GAP; START-APPROVAL as handler
    k1 = r.loc[("2026-01", LEADER_K1)]  # INTEGRITY-DELETED counts in the clip's period (started 2026-01-10)
    assert (k1["events_attended"], k1["findings_av"], k1["findings_integrity"]) == (1, 1, 1)
    assert k1["own_coverage"] == 0 and k1["unit_code"] == "140403000000"
    # quarters and the year sum the months; own_coverage is the mean over all their events
    for who in (P1, P2, LEADER_K1, P4):
        months = rec[(rec["police_no"] == who) & rec["period"].str.fullmatch(r"\d{4}-\d{2}")]
        for period in ("2026-Q1", "2026"):
            row = r.loc[(period, who)]
            for col in ("events_attended", "events_fully_recorded", "findings_av", "findings_text"):
                assert row[col] == months[col].sum(), (who, period, col)


def test_exempted_findings_count_nowhere(loaded):
    with loaded.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO sup_finding_state (finding_key, state, version, rule_id) VALUES (:k, 'exempted', 1, :r)"
            ),
            {"k": "AV-NONE:E-NONE", "r": "AV-NONE"},
        )
    _evaluate(loaded)
    r = read_df(loaded, "SELECT * FROM v_officer_records WHERE period = '2026-01'").set_index("police_no")
    assert r.loc[P1, "findings_av"] == 1 and r.loc[P4, "findings_av"] == 0
    assert "AV-NONE:E-NONE" in _named(loaded)  # still named: the record shows it, marked exempted


def test_records_pure_against_brute_force() -> None:
    """``records`` on random frames against a plain per-row count."""
    from etl.scoring.officers import records

    rng = np.random.default_rng(7)
    n_ev, n_off = 300, 12
    t0 = pd.Timestamp("2025-11-01").timestamp()
    events = pd.DataFrame(
        {
            "incident_no": [f"E{i:04d}" for i in range(n_ev)],
            "unit_code": rng.choice(["U1", "U2"], n_ev),
            "arrived_at": t0 + rng.integers(0, 200 * 86400, n_ev).astype(float),
            "window_s": rng.choice([0.0, 600.0, 1200.0], n_ev),
            "status": rng.choice(["full", "partial", "none", "excused"], n_ev),
        }
    )
    pairs = pd.DataFrame(
        {
            "incident_no": np.repeat(events["incident_no"].to_numpy(), 2),
            "police_no": [f"P{x}" for x in rng.integers(0, n_off, 2 * n_ev)],
        }
    ).drop_duplicates(ignore_index=True)
    pairs["own_s"] = rng.uniform(0, 1300, len(pairs))
    fk = [f"K{i}" for i in range(200)]
    counted = pd.DataFrame(
        {
            "finding_key": fk,
            "rule_id": rng.choice(["AV-NONE", "DOC-MISSING", "ACCESS-SCOPE", "UPLOAD-LATE", "EQUIP-IDLE"], 200),
            "month": rng.choice(["2025-11", "2025-12", "2026-01", "2026-03"], 200),
        }
    )
    links = pd.DataFrame({"finding_key": rng.choice(fk, 300), "police_no": [f"P{x}" for x in rng.integers(0, 14, 300)]})
    links = links.drop_duplicates(ignore_index=True)  # as etl.rules.officers.frame gives them: one row a pair
    officers = pd.DataFrame({"police_no": [f"P{i}" for i in range(n_off)], "unit_code": "U9"})
    got = records(events, pairs, counted, links, officers).set_index(["period", "police_no"])

    ev = events.set_index("incident_no")
    p = pairs.join(ev, on="incident_no")
    p["month"] = pd.to_datetime(p["arrived_at"], unit="s").dt.strftime("%Y-%m")
    fam = {"AV-NONE": "av", "DOC-MISSING": "text", "ACCESS-SCOPE": "access", "UPLOAD-LATE": "integrity"}
    lk = links.drop_duplicates().merge(counted, on="finding_key")
    lk = lk[lk["rule_id"].isin(list(fam))]
    for (period, who), row in got.iterrows():

        def inside(month: pd.Series, period: str = period) -> pd.Series:
            if len(period) == 4:
                return month.str[:4] == period
            if "Q" in period:
                q = (month.str[5:7].astype(int) - 1) // 3 + 1
                return (month.str[:4] == period[:4]) & (q == int(period[-1]))
            return month == period

        mine = p[(p["police_no"] == who) & inside(p["month"])]
        assert row["events_attended"] == len(mine)
        assert row["events_fully_recorded"] == (mine["status"] == "full").sum()
        w = mine[mine["window_s"] > 0]
        expect = np.minimum(w["own_s"] / w["window_s"], 1).mean() if len(w) else np.nan
        assert (pd.isna(row["own_coverage"]) and pd.isna(expect)) or row["own_coverage"] == pytest.approx(expect)
        f = lk[(lk["police_no"] == who) & inside(lk["month"])]
        for rule, family in fam.items():
            assert row[f"findings_{family}"] == (f["rule_id"] == rule).sum(), (period, who, family)
        assert row["unit_code"] == ("U9" if who in set(officers["police_no"]) else None) or who not in set(
            officers["police_no"]
        )
    # every officer-month with an event or a finding has a row
    assert {(m, w) for m, w in zip(p["month"], p["police_no"], strict=True)} <= set(got.index)
