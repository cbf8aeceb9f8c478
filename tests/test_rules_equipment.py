"""Equipment and service-window rules through load_scenario."""

from __future__ import annotations

from scenario import D1, D2, D3, D4, D5, K1, P1, P2, P3, S1, S2, S3, findings, keys, load_scenario, world


def test_equip_admin_station_owning_devices_without_current_admin(sqlite_url):
    w = world()
    w["unit_admins"] = [
        {"unit_code": S1, "police_no": P1, "from_at": "2026-01-01 00:00:00", "to_at": None},  # current
        {"unit_code": S2, "police_no": P3, "from_at": "2026-01-01 00:00:00", "to_at": "2026-03-01 00:00:00"},  # ended
        {"unit_code": S3, "police_no": "010004", "from_at": "2026-04-10 00:00:00", "to_at": None},  # not yet
    ]
    w["devices"].append(
        {
            "device_sn": "SN-K1",
            "kind": "bodycam",
            "model": "x",
            "unit_code": K1,
            "status": "in_use",
            "status_since": "2026-01-01 00:00:00",
        }
    )  # county, not a station
    eng = load_scenario(sqlite_url, w)
    assert keys(eng, "EQUIP-ADMIN") == {(S2,), (S3,)}
    f = findings(eng, "EQUIP-ADMIN").set_index("unit_code")
    assert str(f.loc[S2, "occurred_at"]) == "2026-03-31 23:59:59" and f.loc[S2, "article"] == "第三十一条"
    assert "西街派出所" in f.loc[S2, "detail"]


def test_equip_repair_more_than_30_days(sqlite_url):
    w = world()
    for d in w["devices"]:
        if d["device_sn"] == D1:
            d.update(status="repair", status_since="2026-03-01 23:59:58")  # 30 days + 1 s
        if d["device_sn"] == D2:
            d.update(status="repair", status_since="2026-03-01 23:59:59")  # exactly 30 days
        if d["device_sn"] == D4:
            d.update(status="lost", status_since="2026-01-01 00:00:00")
    eng = load_scenario(sqlite_url, w)
    assert keys(eng, "EQUIP-REPAIR") == {(D1,)}
    f = findings(eng, "EQUIP-REPAIR").iloc[0]
    assert f["unit_code"] == S1 and "维修" in f["detail"]


def test_equip_idle_per_device_and_month(sqlite_url):
    def ev(no: str, day: str, who: str) -> tuple[dict, dict]:
        return (
            {
                "incident_no": no,
                "received_at": f"{day} 09:00:00",
                "arrived_at": f"{day} 10:00:00",
                "ended_at": f"{day} 10:30:00",
            },
            {"incident_no": no, "police_no": who},
        )

    evs = [
        ev("J1", "2026-02-10", P1),
        ev("J2", "2026-03-10", P1),
        ev("J3", "2026-02-10", P3),
        ev("J4", "2026-03-10", P2),
        ev("J5", "2026-01-20", P3),
        ev("J6", "2026-03-20", P3),
    ]
    w = world(
        incidents=[e for e, _ in evs],
        incident_officers=[o for _, o in evs],
        clips=[
            # D1 used in February (any wearer), idle in March
            {
                "clip_id": "C1",
                "device_sn": D1,
                "police_no": None,
                "started_at": "2026-02-20 10:00:00",
                "ended_at": "2026-02-20 10:10:00",
            },
            # D4 used in February
            {
                "clip_id": "C2",
                "device_sn": D4,
                "police_no": P3,
                "started_at": "2026-02-01 00:00:00",
                "ended_at": "2026-02-01 00:10:00",
            },
        ],
    )
    for d in w["devices"]:
        if d["device_sn"] == D2:  # P2's device is spare: not in_use, no finding
            d["status"] = "spare"
    # D4 was P3's from January to 10 March only: assigned during January and March, P3 attended events then
    # (20 January, 20 March) and D4 has no clip in either month; February has a clip
    w["device_assignments"] = [a for a in w["device_assignments"] if a["device_sn"] != D4] + [
        {"device_sn": D4, "police_no": P3, "from_at": "2026-01-15 00:00:00", "to_at": "2026-03-10 00:00:00"}
    ]
    eng = load_scenario(sqlite_url, w)
    assert keys(eng, "EQUIP-IDLE", "device_sn", "month") == {(D1, "2026-03"), (D4, "2026-01"), (D4, "2026-03")}
    f = findings(eng, "EQUIP-IDLE").set_index(["device_sn", "month"]).loc[(D1, "2026-03")]
    assert str(f["occurred_at"]) == "2026-03-01 00:00:00" and f["police_no"] == P1 and f["unit_code"] == S1
    assert "2026年03月" in f["detail"]


def test_equip_ledger_mismatches(sqlite_url):
    w = world(
        ledger_entries=[
            {
                "unit_code": S1,
                "device_sn": D1,
                "police_no": P1,
                "from_at": "2026-01-01 00:00:00",
                "status": "in_use",
            },  # ok
            {
                "unit_code": S1,
                "device_sn": D2,
                "police_no": P1,
                "from_at": "2026-01-01 00:00:00",
                "status": "in_use",
            },  # holder
            {
                "unit_code": S1,
                "device_sn": D3,
                "police_no": None,
                "from_at": None,
                "status": "in_use",
            },  # status (spare)
            {"unit_code": S1, "device_sn": D4, "police_no": P3, "from_at": None, "status": "in_use"},  # other unit
            {
                "unit_code": S1,
                "device_sn": "SN-GHOST",
                "police_no": None,
                "from_at": None,
                "status": "spare",
            },  # unknown
        ],
        devices=[
            {
                "device_sn": "SN-MISS",
                "kind": "bodycam",
                "model": "x",
                "unit_code": S1,
                "status": "repair",
                "status_since": "2026-03-20 00:00:00",
            },  # platform device missing from the workbook
            {
                "device_sn": "SN-SCRAP",
                "kind": "bodycam",
                "model": "x",
                "unit_code": S1,
                "status": "scrapped",
                "status_since": "2026-01-01 00:00:00",
            },  # scrapped: may be missing
        ],
    )
    eng = load_scenario(sqlite_url, w)
    assert keys(eng, "EQUIP-LEDGER") == {(S1, D2), (S1, D3), (S1, D4), (S1, "SN-GHOST"), (S1, "SN-MISS")}
    f = findings(eng, "EQUIP-LEDGER").set_index("device_sn")
    assert "其他单位" in f.loc[D4, "detail"] and "不存在" in f.loc["SN-GHOST", "detail"]
    assert "使用人" in f.loc[D2, "detail"] and "状态" in f.loc[D3, "detail"]
    assert "未登记在台账" in f.loc["SN-MISS", "detail"]
    # S2 and S3 have no workbook: nothing about their devices
    assert D5 not in f.index


def test_window_cctv(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            service_windows=[
                {"unit_code": S1, "window_id": "W1", "cctv_installed": 1, "cctv_recording": 1},
                {"unit_code": S1, "window_id": "W2", "cctv_installed": 1, "cctv_recording": 0},
                {"unit_code": S2, "window_id": "W3", "cctv_installed": 0, "cctv_recording": 0},
                {"unit_code": S2, "window_id": "W4", "cctv_installed": None, "cctv_recording": 1},
            ]
        ),
    )
    assert keys(eng, "WINDOW-CCTV") == {(S1, "W2"), (S2, "W3"), (S2, "W4")}
    f = findings(eng, "WINDOW-CCTV").set_index("window_id")
    assert "未安装" in f.loc["W3", "detail"] and "未在录像" in f.loc["W2", "detail"]
