"""The same scenario gives the same v_event_coverage and v_findings, value for value, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from scenario import D1, D2, D3, D4, LEADER_K1, P1, P2, P3, S1, S2, load_scenario, world

from etl.warehouse.db import read_df


def _rich_world() -> dict:
    ev = [
        ("J1", "2026-03-01", [P1, P2]),
        ("J2", "2026-03-02", [P1]),
        ("J3", "2026-03-03", [P3]),
        ("J4", "2026-02-04", [P2]),
        ("J5", "2026-02-05", [P1]),
    ]
    w = world(
        incidents=[
            {
                "incident_no": n,
                "received_at": f"{d} 09:00:00",
                "arrived_at": f"{d} 10:00:00",
                "ended_at": f"{d} 10:40:00",
                "unit_code": S1 if n != "J3" else S2,
            }
            for n, d, _ in ev
        ],
        incident_officers=[{"incident_no": n, "police_no": p} for n, _, ps in ev for p in ps],
        interruption_reports=[
            {
                "report_id": "R1",
                "incident_no": "J5",
                "police_no": P1,
                "reason": "没电",
                "reported_at": "2026-02-05 12:00:00",
            }
        ],
        clips=[
            {
                "clip_id": "C1",
                "device_sn": D1,
                "police_no": None,
                "started_at": "2026-03-01 10:00:00",
                "ended_at": "2026-03-01 10:20:00",
                "case_no": "A1",
            },
            {
                "clip_id": "C2",
                "device_sn": D1,
                "police_no": P1,
                "started_at": "2026-03-01 10:20:30",
                "ended_at": "2026-03-01 10:40:00",
                "imported_at": "2026-03-05 00:00:00",
            },
            {
                "clip_id": "C3",
                "device_sn": D3,
                "police_no": P1,
                "started_at": "2026-03-02 10:05:00",
                "ended_at": "2026-03-02 10:30:00",
                "deleted_at": "2026-03-20 00:00:00",
            },
            {
                "clip_id": "C4",
                "device_sn": D4,
                "police_no": P3,
                "started_at": "2026-02-10 10:00:00",
                "ended_at": "2026-02-10 10:30:00",
                "is_evidence": 1,
            },
        ],
        cases=[
            {
                "case_no": "A1",
                "source": "ex_officio",
                "started_at": "2026-02-01 10:00:00",
                "start_approved_at": "2026-02-03 10:00:00",
                "emergency_start": 1,
                "is_major": 1,
            }
        ],
        case_actions=[
            {
                "action_id": "X1",
                "case_no": "A1",
                "action_type": "inspection",
                "started_at": "2026-03-01 10:10:00",
                "ended_at": "2026-03-01 10:30:00",
            },
            {
                "action_id": "X2",
                "case_no": "A1",
                "action_type": "seize",
                "started_at": "2026-03-05 10:10:00",
                "ended_at": "2026-03-05 10:30:00",
            },
        ],
        case_documents=[
            {
                "doc_id": "PD",
                "case_no": "A1",
                "doc_type": "penalty_decision",
                "created_at": "2026-03-06 10:00:00",
                "drafter_no": P1,
            }
        ],
        deliveries=[
            {
                "delivery_id": "DL",
                "doc_id": "PD",
                "method": "mail",
                "delivered_at": "2026-03-07 10:00:00",
                "postal_receipt": 0,
            }
        ],
        access_log=[
            {
                "log_id": "L1",
                "clip_id": "C4",
                "action": "external",
                "user_no": P1,
                "at": "2026-03-10 10:00:00",
                "approver_no": LEADER_K1,
                "approved_at": "2026-03-10 11:00:00",
            }
        ],
        service_windows=[{"unit_code": S1, "window_id": "W1", "cctv_installed": 1, "cctv_recording": 0}],
        ledger_entries=[{"unit_code": S1, "device_sn": D2, "police_no": P1, "status": "in_use"}],
    )
    for d in w["devices"]:
        if d["device_sn"] == D2:
            d.update(status="repair", status_since="2026-01-15 00:00:00")
    return w


def _value(v):  # noqa: ANN001, ANN202
    if v is None or v is pd.NaT or (isinstance(v, float) and pd.isna(v)):
        return None
    if isinstance(v, (dt.datetime, pd.Timestamp)):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    return v


def _norm(df: pd.DataFrame) -> list[dict]:
    return [{k: _value(v) for k, v in row.items()} for row in df.astype(object).to_dict("records")]


@pytest.mark.postgres
def test_views_identical_on_sqlite_and_postgresql(sqlite_url, pg_url):
    w = _rich_world()
    views = {}
    for name, url in (("sqlite", sqlite_url), ("postgresql", pg_url)):
        eng = load_scenario(url, w)
        views[name] = {
            "cov": _norm(read_df(eng, "SELECT * FROM v_event_coverage ORDER BY incident_no")),
            "find": _norm(read_df(eng, "SELECT * FROM v_findings ORDER BY finding_key")),
        }
        eng.dispose()
    assert len(views["sqlite"]["find"]) > 10
    assert {r["status"] for r in views["sqlite"]["cov"]} == {"full", "partial", "none", "excused"}
    assert {r["rule_id"] for r in views["sqlite"]["find"]} >= {
        "AV-NONE",
        "AV-GAP",
        "AV-OFFICER",
        "DOC-MISSING",
        "AV-MEASURE",
        "START-APPROVAL",
        "MAJOR-REVIEW",
        "DECISION-RECORD",
        "RIGHTS-NOTICE",
        "DELIVERY",
        "EQUIP-REPAIR",
        "EQUIP-LEDGER",
        "ACCESS-EXTERNAL",
        "INTEGRITY-DELETED",
        "UPLOAD-LATE",
        "WINDOW-CCTV",
    }
    for k in ("cov", "find"):
        assert views["sqlite"][k] == views["postgresql"][k]
