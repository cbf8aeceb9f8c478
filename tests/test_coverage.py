"""On-site coverage (rules.md "Events") through load_scenario: every edge case the rules name."""

from __future__ import annotations

import pandas as pd
import pytest
from scenario import D1, D2, D3, P1, P2, P3, S1, coverage_rows, findings, keys, load_scenario, table, world

ARR, END = "2026-03-01 10:00:00", "2026-03-01 10:40:00"


def _event(no: str, *officers: str, arrived: str = ARR, ended: str = END, **kw) -> dict:
    return {
        "incidents": [
            {"incident_no": no, "received_at": "2026-03-01 09:50:00", "arrived_at": arrived, "ended_at": ended, **kw}
        ],
        "incident_officers": [{"incident_no": no, "police_no": p} for p in officers],
    }


def _clip(cid: str, start: str, end: str, device: str = D1, police_no: str | None = P1, **kw) -> dict:
    return {"clip_id": cid, "device_sn": device, "police_no": police_no, "started_at": start, "ended_at": end, **kw}


def _load(url: str, events: list[dict], clips: list[dict], **extra) -> object:
    tables: dict[str, list[dict]] = {"incidents": [], "incident_officers": [], "clips": clips}
    for e in events:
        for k, v in e.items():
            tables[k].extend(v)
    for k, v in extra.items():
        tables.setdefault(k, []).extend(v)
    return load_scenario(url, world(**tables))


def test_full_coverage_and_tolerance_edges(sqlite_url):
    eng = _load(
        sqlite_url,
        [
            _event("J-FULL", P1),
            _event("J-30", P1, arrived="2026-03-02 10:00:00", ended="2026-03-02 10:40:00"),
            _event("J-31", P1, arrived="2026-03-03 10:00:00", ended="2026-03-03 10:40:00"),
        ],
        [
            _clip("C1", "2026-03-01 09:59:00", "2026-03-01 10:41:00"),
            # gap of exactly 30 s in the middle: not a gap (must be strictly longer)
            _clip("C2", "2026-03-02 10:00:00", "2026-03-02 10:20:00"),
            _clip("C3", "2026-03-02 10:20:30", "2026-03-02 10:40:00"),
            # gap of 31 s: a gap
            _clip("C4", "2026-03-03 10:00:00", "2026-03-03 10:20:00"),
            _clip("C5", "2026-03-03 10:20:31", "2026-03-03 10:40:00"),
        ],
    )
    cov = coverage_rows(eng)
    assert cov["J-FULL"]["status"] == "full" and cov["J-FULL"]["covered_s"] == 2400.0
    assert cov["J-FULL"]["covered_fraction"] == 1.0 and cov["J-FULL"]["gap_count"] == 0
    assert cov["J-30"]["status"] == "full" and cov["J-30"]["gap_count"] == 0
    assert cov["J-30"]["covered_s"] == 2370.0
    assert cov["J-31"]["status"] == "partial" and cov["J-31"]["gap_count"] == 1
    assert cov["J-31"]["covered_s"] == 2369.0
    gaps = findings(eng, "AV-GAP")
    assert list(gaps["incident_no"]) == ["J-31"]
    g = gaps.iloc[0]
    assert str(g["gap_start"]) == "2026-03-03 10:20:00" and str(g["gap_end"]) == "2026-03-03 10:20:31"
    assert g["gap_s"] == 31.0 and g["cause"] == "not_recorded"
    assert "2026-03-03 10:20:00" in g["detail"] and "31秒" in g["detail"] and "未录像" in g["detail"]
    assert str(g["occurred_at"]) == "2026-03-03 10:00:00" and g["unit_code"] == S1
    assert g["article"] == "第十五条、第十七条"
    assert keys(eng, "AV-NONE") == set()


def test_late_start_and_early_stop_are_gaps(sqlite_url):
    eng = _load(sqlite_url, [_event("J-LATE", P1)], [_clip("C1", "2026-03-01 10:05:00", "2026-03-01 10:35:00")])
    cov = coverage_rows(eng)["J-LATE"]
    assert cov["status"] == "partial" and cov["gap_count"] == 2 and cov["covered_s"] == 1800.0
    assert cov["covered_fraction"] == pytest.approx(0.75)
    g = table(eng, "event_gaps").sort_values("gap_no")
    assert [str(x) for x in g["gap_start"]] == ["2026-03-01 10:00:00", "2026-03-01 10:35:00"]
    assert [str(x) for x in g["gap_end"]] == ["2026-03-01 10:05:00", "2026-03-01 10:40:00"]
    details = findings(eng, "AV-GAP")["detail"].tolist()
    assert "未及时开始录像" in details[0] and "提前停止录像" in details[1]


def test_union_of_two_officers_and_clips_of_others_ignored(sqlite_url):
    eng = _load(
        sqlite_url,
        [_event("J-U", P1, P2)],
        [
            _clip("C1", "2026-03-01 10:00:00", "2026-03-01 10:25:00"),
            _clip("C2", "2026-03-01 10:20:00", "2026-03-01 10:40:00", device=D2, police_no=P2),
            # a non-attending officer's clip does not count
            _clip("C3", "2026-03-01 09:00:00", "2026-03-01 11:00:00", device=D2, police_no=P3),
        ],
    )
    cov = coverage_rows(eng)["J-U"]
    assert cov["status"] == "full" and cov["covered_s"] == 2400.0
    assert keys(eng, "AV-OFFICER") == set()


def test_av_officer_when_one_officer_has_no_clip(sqlite_url):
    eng = _load(
        sqlite_url,
        [_event("J-O", P1, P2), _event("J-TOUCH", P1, P2, arrived="2026-03-02 10:00:00", ended="2026-03-02 10:40:00")],
        [
            _clip("C1", "2026-03-01 10:00:00", "2026-03-01 10:40:00"),
            _clip("C2", "2026-03-02 10:00:00", "2026-03-02 10:40:00"),
            # P2's clip only touches the window at its end: no positive-length overlap
            _clip("C3", "2026-03-02 10:40:00", "2026-03-02 10:50:00", device=D2, police_no=P2),
        ],
    )
    assert keys(eng, "AV-OFFICER") == {("J-O", P2), ("J-TOUCH", P2)}
    f = findings(eng, "AV-OFFICER").iloc[0]
    assert "李四(010002)" in f["detail"] and "辅警" in f["detail"]


def test_touching_clips_leave_no_gap(sqlite_url):
    eng = _load(
        sqlite_url,
        [_event("J-T", P1)],
        [
            _clip("C1", "2026-03-01 10:00:00", "2026-03-01 10:20:00"),
            _clip("C2", "2026-03-01 10:20:00", "2026-03-01 10:40:00"),
        ],
    )
    cov = coverage_rows(eng)["J-T"]
    assert cov["status"] == "full" and cov["covered_s"] == 2400.0 and cov["gap_count"] == 0


def test_null_police_no_resolved_through_assignment_boundaries(sqlite_url):
    asg = [
        {"device_sn": D3, "police_no": P1, "from_at": "2026-03-01 10:00:00", "to_at": "2026-03-01 10:20:00"},
        {"device_sn": D3, "police_no": P2, "from_at": "2026-03-01 10:20:00", "to_at": None},
    ]
    eng = _load(
        sqlite_url,
        [_event("J-P1", P1), _event("J-P2", P2)],
        [
            # phone stand-in, no wearer: belongs to P1 (assigned from 10:00, start inclusive)
            _clip("C1", "2026-03-01 10:00:00", "2026-03-01 10:40:00", device=D3, police_no=None),
            # starts exactly at the hand-over (to_at exclusive): belongs to P2
            _clip("C2", "2026-03-01 10:20:00", "2026-03-01 10:40:00", device=D3, police_no=None),
        ],
        device_assignments=asg,
    )
    cov = coverage_rows(eng)
    assert cov["J-P1"]["status"] == "full"
    assert cov["J-P2"]["covered_s"] == 1200.0 and cov["J-P2"]["status"] == "partial"


def test_clip_without_owner_counts_for_nobody(sqlite_url):
    # D3 is not assigned to anyone: a clip without police_no belongs to nobody
    eng = _load(
        sqlite_url,
        [_event("J-N", P1)],
        [_clip("C1", "2026-03-01 10:00:00", "2026-03-01 10:40:00", device=D3, police_no=None)],
    )
    assert coverage_rows(eng)["J-N"]["status"] == "none"


def test_deleted_clip_still_counts(sqlite_url):
    eng = _load(
        sqlite_url,
        [_event("J-D", P1)],
        [_clip("C1", "2026-03-01 10:00:00", "2026-03-01 10:40:00", deleted_at="2026-03-02 00:00:00")],
    )
    assert coverage_rows(eng)["J-D"]["status"] == "full"


def test_excused_by_timely_report_only(sqlite_url):
    rep = [
        {
            "report_id": "R1",
            "incident_no": "J-EXC",
            "police_no": P1,
            "reason": "电量耗尽",
            "reported_at": "2026-03-02 10:40:00",
        },  # exactly ended_at + 24 h
        {
            "report_id": "R2",
            "incident_no": "J-LATEREP",
            "police_no": P1,
            "reason": "电量耗尽",
            "reported_at": "2026-03-02 10:40:01",
        },  # one second late
        {
            "report_id": "R3",
            "incident_no": "J-OTHER",
            "police_no": P3,
            "reason": "x",
            "reported_at": "2026-03-01 11:00:00",
        },  # not an attending officer
    ]
    eng = _load(
        sqlite_url,
        [
            _event("J-EXC", P1),
            _event("J-LATEREP", P1),
            _event("J-OTHER", P1),
            _event("J-EXC-PART", P1, arrived="2026-03-05 10:00:00", ended="2026-03-05 10:40:00"),
        ],
        [_clip("C1", "2026-03-05 10:00:00", "2026-03-05 10:10:00")],
        interruption_reports=[
            *rep,
            {
                "report_id": "R4",
                "incident_no": "J-EXC-PART",
                "police_no": P1,
                "reason": "故障",
                "reported_at": "2026-03-05 12:00:00",
            },
        ],
    )
    cov = coverage_rows(eng)
    assert cov["J-EXC"]["status"] == "excused" and cov["J-EXC"]["gap_count"] == 1
    assert cov["J-LATEREP"]["status"] == "none"
    assert cov["J-OTHER"]["status"] == "none"
    assert cov["J-EXC-PART"]["status"] == "excused" and cov["J-EXC-PART"]["gap_count"] == 1
    assert keys(eng, "AV-NONE") == {("J-LATEREP",), ("J-OTHER",)}
    assert keys(eng, "AV-GAP") == set()
    assert keys(eng, "AV-OFFICER") == set()


def test_none_event_has_one_gap_and_short_none_has_none(sqlite_url):
    eng = _load(
        sqlite_url,
        [
            _event("J-NONE", P1),
            _event("J-SHORT", P1, arrived="2026-03-02 10:00:00", ended="2026-03-02 10:00:20"),
            _event("J-ZERO", P1, arrived="2026-03-03 10:00:00", ended="2026-03-03 10:00:00"),
        ],
        [],
    )
    cov = coverage_rows(eng)
    assert cov["J-NONE"]["status"] == "none" and cov["J-NONE"]["gap_count"] == 1
    assert cov["J-SHORT"]["status"] == "none" and cov["J-SHORT"]["gap_count"] == 0
    assert cov["J-ZERO"]["window_s"] == 0.0 and pd.isna(cov["J-ZERO"]["covered_fraction"])
    assert cov["J-ZERO"]["status"] == "none"
    assert len(findings(eng, "AV-GAP")) == 0
    d = findings(eng, "AV-NONE").set_index("incident_no").loc["J-NONE", "detail"]
    assert "张三(010001)" in d and "无任何录像" in d and "2026-03-01 10:00:00" in d


def test_only_on_site_events_with_both_times(sqlite_url):
    eng = _load(
        sqlite_url,
        [
            _event("J-OFF", P1, on_site=0),
            _event("J-NOEND", P1, ended=None),
            _event("J-FUTURE", P1, arrived="2026-04-02 10:00:00", ended="2026-04-02 10:40:00"),
        ],
        [],
    )
    assert coverage_rows(eng) == {}  # as of 2026-03-31 23:59:59


def test_cause_hints(sqlite_url):
    devices_extra = [
        {
            "device_sn": "SN-R",
            "kind": "bodycam",
            "model": "x",
            "unit_code": S1,
            "status": "repair",
            "status_since": "2026-02-01 00:00:00",
        }
    ]
    asg = [{"device_sn": "SN-R", "police_no": P3, "from_at": "2026-01-01 00:00:00", "to_at": None}]
    tables: dict[str, list] = {"incidents": [], "incident_officers": []}
    for e in [_event("J-NODEV", "010004"), _event("J-REPAIR", P3), _event("J-NOTREC", P1)]:
        for k, v in e.items():
            tables[k].extend(v)
    w = world(**tables, devices=devices_extra)
    # P3 holds only the device in repair (drop the base assignment of SN-D4 to P3)
    w["device_assignments"] = [a for a in w["device_assignments"] if a["police_no"] != P3] + asg
    eng = load_scenario(sqlite_url, w)
    cov = coverage_rows(eng)
    assert cov["J-NODEV"]["cause"] == "no_device"
    assert cov["J-REPAIR"]["cause"] == "device_repair"
    assert cov["J-NOTREC"]["cause"] == "not_recorded"
    causes = dict(zip(findings(eng, "AV-NONE")["incident_no"], findings(eng, "AV-NONE")["cause"], strict=True))
    assert causes == {"J-NODEV": "no_device", "J-REPAIR": "device_repair", "J-NOTREC": "not_recorded"}
    assert "维修或丢失" in findings(eng, "AV-NONE").set_index("incident_no").loc["J-REPAIR", "detail"]
