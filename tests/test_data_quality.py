"""The data-quality queue (etl.rules.data_quality, view v_data_quality): one positive and one negative per kind.

Kinds read from the mirrors go through ``load_scenario`` (mirrors filled directly); kinds read from the
quarantine go through a real ``etl run`` (staging refuses the row).  The view and the first/last-seen runs are
checked on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from scenario import AS_OF, D1, D2, D3, P1, P2, S1, load_scenario, world

from etl.pipeline import run
from etl.rules import config, data_quality
from etl.warehouse.db import make_engine, read_df
from tests.etl_fixtures import COUNTY2, STATION, base_tables, write_sources


def _queue(engine, run_id: int | None = 1) -> pd.DataFrame:  # noqa: ANN001
    with engine.begin() as conn:
        data_quality.compute(conn, datetime.strptime(AS_OF, "%Y-%m-%d %H:%M:%S"), config.load(), run_id=run_id)
    return read_df(engine, "SELECT * FROM v_data_quality ORDER BY kind, object_key")


def _keys(df: pd.DataFrame, kind: str) -> set[str]:
    return set(df.loc[df["kind"] == kind, "object_key"])


def _event(no: str, arrived: str = "2026-03-10 10:00:00", ended: str | None = "2026-03-10 10:30:00", **kw) -> dict:
    return {"incident_no": no, "received_at": "2026-03-10 09:50:00", "arrived_at": arrived, "ended_at": ended, **kw}


# --- kinds read from the mirrors ----------------------------------------------------------------------


def test_onsite_no_times(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            incidents=[
                _event("I-NOEND", ended=None),
                _event("I-NOARR", arrived=None),
                _event("I-OFFSITE", arrived=None, ended=None, on_site=0),
                _event("I-OK"),
            ],
            incident_officers=[{"incident_no": i, "police_no": P1} for i in ("I-NOEND", "I-NOARR", "I-OK")],
        ),
    )
    q = _queue(eng)
    assert _keys(q, "onsite_no_times") == {"I-NOEND", "I-NOARR"}
    row = q[q["object_key"] == "I-NOEND"].iloc[0]
    assert row["unit_code"] == S1 and row["source"] == "dispatch" and row["table_name"] == "incidents"
    assert "现场处置结束时间" in row["detail"]


def test_no_officers_events_and_cases(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            incidents=[_event("I-NOBODY"), _event("I-OK")],
            incident_officers=[{"incident_no": "I-OK", "police_no": P1}],
            cases=[{"case_no": "C-NOBODY"}, {"case_no": "C-OK", "unit_code": S1}],
            case_officers=[{"case_no": "C-OK", "police_no": P1, "role": "handler"}],
        ),
    )
    q = _queue(eng)
    got = q[q["kind"] == "no_officers"]
    assert set(zip(got["table_name"], got["object_key"], strict=True)) == {
        ("incidents", "I-NOBODY"),
        ("cases", "C-NOBODY"),
    }
    assert set(got["unit_code"]) == {S1}


@pytest.mark.parametrize("url_fixture", ["sqlite_url", pytest.param("pg_url", marks=pytest.mark.postgres)])
def test_unknown_action_and_document_types(request, url_fixture):
    eng = load_scenario(
        request.getfixturevalue(url_fixture),
        world(
            cases=[{"case_no": "C1"}],
            case_officers=[{"case_no": "C1", "police_no": P1, "role": "handler"}],
            case_actions=[
                {"action_id": "A-ODD", "case_no": "C1", "action_type": "dance", **_times()},
                {"action_id": "A-OK", "case_no": "C1", "action_type": "inquiry", **_times()},
                {"action_id": "A-NONE", "case_no": "C1", "action_type": None, **_times()},
                # an unknown code after the evaluation date: not (yet) in the queue
                {"action_id": "A-LATER", "case_no": "C1", "action_type": "later", "started_at": "2027-02-01 09:00:00"},
            ],
            case_documents=[
                {"doc_id": "D-ODD", "case_no": "C1", "doc_type": "poem", "created_at": "2026-02-01 10:00:00"},
                {"doc_id": "D-OK", "case_no": "C1", "doc_type": "inquiry_record", "created_at": "2026-02-01 10:00:00"},
                {"doc_id": "D-OK2", "case_no": "C1", "doc_type": "legal_review", "created_at": "2026-02-01 10:00:00"},
            ],
        ),
    )
    q = _queue(eng)
    assert _keys(q, "unknown_action_type") == {"A-ODD", "A-NONE"}
    assert _keys(q, "unknown_document_type") == {"D-ODD"}
    # the codes come from a loose scan of the code's index: every distinct value, and None for a row without one
    with eng.connect() as conn:
        assert data_quality.distinct_codes(conn, "case_actions", "action_type") == {"dance", "inquiry", "later", None}
        assert data_quality.distinct_codes(conn, "case_documents", "doc_type") == {
            "poem",
            "inquiry_record",
            "legal_review",
        }
    assert "dance" in q.loc[q["object_key"] == "A-ODD", "detail"].iloc[0]
    assert set(q.loc[q["kind"].isin(["unknown_action_type", "unknown_document_type"]), "unit_code"]) == {S1}


def _times() -> dict:
    return {"started_at": "2026-02-01 09:00:00", "ended_at": "2026-02-01 10:00:00"}


def test_clip_no_owner(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            clips=[
                # D3 (a phone of S1) has no assignment at all; D1 is held by P1 since T0
                _clip("K-NOBODY", D3, police_no=None),
                _clip("K-ASSIGNED", D1, police_no=None),
                _clip("K-WORN", D3, police_no=P2),
            ]
        ),
    )
    q = _queue(eng)
    assert _keys(q, "clip_no_owner") == {"K-NOBODY"}
    row = q[q["object_key"] == "K-NOBODY"].iloc[0]
    assert row["unit_code"] == S1 and row["table_name"] == "clips" and D3 in row["detail"]


def _clip(cid: str, device: str, start: str = "2026-03-10 10:00:00", end: str = "2026-03-10 10:20:00", **kw) -> dict:
    return {
        "clip_id": cid,
        "device_sn": device,
        "police_no": kw.pop("police_no", P1),
        "started_at": start,
        "ended_at": end,
        **kw,
    }


def test_clip_imported_before_it_ended(sqlite_url):
    eng = load_scenario(
        sqlite_url,
        world(
            clips=[
                _clip("K-EARLY", D1, imported_at="2026-03-10 10:05:00"),
                _clip("K-OK", D1, imported_at="2026-03-10 10:20:00"),
            ]
        ),
    )
    q = _queue(eng)
    assert _keys(q, "clip_bad_times") == {"K-EARLY"}
    assert "导入时间" in q.loc[q["object_key"] == "K-EARLY", "detail"].iloc[0]


def _drift_world(offset_s: int, events: int, device: str = D1, officer: str = P1) -> dict:
    incidents, attend, clips = [], [], []
    for i in range(events):
        arrived = pd.Timestamp("2026-03-20 10:00:00") + pd.Timedelta(days=i)
        no = f"I-{device}-{i}"
        incidents.append(_event(no, arrived=str(arrived), ended=str(arrived + pd.Timedelta(minutes=30))))
        attend.append({"incident_no": no, "police_no": officer})
        start = arrived + pd.Timedelta(seconds=offset_s)
        # the first tagged clip fixes the offset; a later one of the same event does not move it
        clips.append(_clip(f"K-{no}-a", device, str(start), str(start + pd.Timedelta(minutes=20)), incident_no=no))
        later = start + pd.Timedelta(minutes=20)
        clips.append(_clip(f"K-{no}-b", device, str(later), str(later + pd.Timedelta(minutes=5)), incident_no=no))
    return {"incidents": incidents, "incident_officers": attend, "clips": clips}


def test_clock_drift(sqlite_url):
    fast = _drift_world(-300, 3, D1, P1)  # 5 minutes early on every event: the clock is off
    fine = _drift_world(20, 3, D2, P2)  # 20 s after arrival: an officer switching on
    few = _drift_world(-300, 2, "SN-FEW", P1)  # too few events to call it systematic
    tables = world(
        devices=[{"device_sn": "SN-FEW", "kind": "bodycam", "model": "X", "unit_code": S1, "status": "in_use"}],
        **{k: fast[k] + fine[k] + few[k] for k in fast},
    )
    q = _queue(load_scenario(sqlite_url, tables))
    assert _keys(q, "clock_drift") == {D1}
    row = q[q["kind"] == "clock_drift"].iloc[0]
    assert row["unit_code"] == S1 and "早于" in row["detail"] and "5分00秒" in row["detail"]


# --- kinds read from the quarantine (a real run) -------------------------------------------------------


def _add(data: dict, table: str, **values) -> None:
    row = data[table].iloc[0].to_dict() | values
    data[table] = pd.concat([data[table], pd.DataFrame([row], dtype=object)], ignore_index=True)


def _messy() -> dict:
    data = base_tables()
    _add(data, "incident_officers", incident_no="J2026030500002", police_no="999999")  # unknown officer
    _add(
        data,
        "clips",
        clip_id="K-GHOSTDEV",
        device_sn="NO-SUCH-SN",
        police_no="023001",
        file_path="x/g.mp4",
        incident_no=None,
        case_no=None,
    )
    _add(
        data,
        "incidents",
        incident_no="J-BACKWARDS",
        unit_code=COUNTY2,
        arrived_at="2026-03-07 10:00:00",
        ended_at="2026-03-07 09:00:00",
        case_no=None,
    )
    _add(
        data,
        "clips",
        clip_id="K-REVERSED",
        started_at="2026-03-01 10:00:00",
        ended_at="2026-03-01 09:00:00",
        file_path="x/r.mp4",
    )
    # two different rows with one key
    _add(data, "devices", device_sn="DSJ-TWICE", model="A")
    _add(data, "devices", device_sn="DSJ-TWICE", model="B")
    _add(data, "cases", case_no="C-BADTIME", registered_at="not a time")
    return data


def _run(tmp_path, data: dict, url: str, name: str = "src"):  # noqa: ANN001, ANN202
    return run(write_sources(tmp_path / name, data), warehouse=url)


@pytest.mark.parametrize("url_fixture", ["sqlite_url", pytest.param("pg_url", marks=pytest.mark.postgres)])
def test_quarantine_kinds_and_view(tmp_path, request, url_fixture):
    url = request.getfixturevalue(url_fixture)
    res = _run(tmp_path, _messy(), url)
    q = read_df(make_engine(url), "SELECT * FROM v_data_quality ORDER BY kind, object_key")
    assert list(q.columns) == [
        "kind",
        "unit_code",
        "source",
        "table_name",
        "object_key",
        "detail",
        "first_seen_run",
        "last_seen_run",
    ]
    got = {(r.kind, r.table_name, r.object_key): r for r in q.itertuples()}
    assert ("unknown_officer", "incident_officers", "J2026030500002|999999") in got
    assert got[("unknown_officer", "incident_officers", "J2026030500002|999999")].unit_code == COUNTY2
    assert ("unknown_device", "clips", "K-GHOSTDEV") in got
    assert got[("unknown_device", "clips", "K-GHOSTDEV")].unit_code == COUNTY2  # the wearer's unit
    assert got[("end_before_arrival", "incidents", "J-BACKWARDS")].unit_code == COUNTY2
    assert got[("clip_bad_times", "clips", "K-REVERSED")].unit_code == STATION  # DSJ0001's unit
    assert ("duplicate_key", "devices", "DSJ-TWICE") in got
    assert ("source_rejected", "cases", "C-BADTIME") in got
    # negatives: the clean rows of the same tables are not in the queue
    keys = set(q["object_key"])
    assert not keys & {"J2026030100001", "K000001", "K000002", "DSJ0001", "C2026001", "J2026030500002|023001"}
    assert set(q["first_seen_run"]) == {res.run_id} and set(q["last_seen_run"]) == {res.run_id}
    assert res.rules["data_quality"]["unknown_officer"] == 1


@pytest.mark.parametrize("url_fixture", ["sqlite_url", pytest.param("pg_url", marks=pytest.mark.postgres)])
def test_first_seen_survives_reruns_and_fixes_leave(tmp_path, request, url_fixture):
    url = request.getfixturevalue(url_fixture)
    data = _messy()
    first = _run(tmp_path, data, url, "a")
    second = _run(tmp_path, data, url, "b")  # same data again
    eng = make_engine(url)
    q = read_df(eng, "SELECT kind, object_key, first_seen_run, last_seen_run FROM v_data_quality")
    assert set(q["first_seen_run"]) == {first.run_id} and set(q["last_seen_run"]) == {second.run_id}

    # the roster gets the unknown officer: the row loads, it leaves the queue, the others stay
    _add(data, "officers", police_no="999999", name="新警员", unit_code=COUNTY2)
    third = _run(tmp_path, data, url, "c")
    q = read_df(eng, "SELECT kind, object_key, first_seen_run, last_seen_run FROM v_data_quality")
    assert "J2026030500002|999999" not in set(q["object_key"])
    assert "K-GHOSTDEV" in set(q["object_key"])
    assert set(q["first_seen_run"]) == {first.run_id} and set(q["last_seen_run"]) == {third.run_id}
    kept = read_df(eng, "SELECT current, last_seen_run FROM data_quality WHERE object_key = 'J2026030500002|999999'")
    assert kept.to_dict("records") == [{"current": 0, "last_seen_run": second.run_id}]


def test_unknown_device_negative_and_no_quarantine_no_rows(tmp_path, sqlite_url):
    """The clean tiny data set: only its one deliberate oddity (action code on_site_inspection) is queued."""
    _run(tmp_path, base_tables(), sqlite_url)
    q = read_df(make_engine(sqlite_url), "SELECT kind, object_key FROM v_data_quality")
    assert set(zip(q["kind"], q["object_key"], strict=True)) == {("unknown_action_type", "A0002")}


# --- the workbook's sheet 数据质量 ---------------------------------------------------------------------


def test_workbook_sheet(tmp_path, sqlite_url):
    import io

    from openpyxl import load_workbook

    from etl.reports.workbook import build_workbook

    _run(tmp_path, _messy(), sqlite_url)
    eng = make_engine(sqlite_url)
    wb = load_workbook(io.BytesIO(build_workbook(eng, period="2026-03", generated_at=datetime(2026, 4, 1, 9, 0))))
    rows = [r for r in wb["数据质量"].iter_rows(values_only=True)]
    assert rows[0][:3] == ("单位代码", "单位", "问题类型")
    body = rows[1:]
    kinds = {r[2] for r in body}
    assert {"未知人员", "未知设备", "警情结束时间早于到达时间", "主键重复且内容不同"} <= kinds
    assert any(r[4] == "incident_officers J2026030500002|999999" for r in body)
    assert all(isinstance(r[6], int) for r in body)
    # a unit's workbook holds its scope only
    wb = load_workbook(
        io.BytesIO(build_workbook(eng, period="2026-03", unit_code=COUNTY2, generated_at=datetime(2026, 4, 1, 9, 0)))
    )
    units = {r[0] for r in list(wb["数据质量"].iter_rows(values_only=True))[1:]}
    assert units == {COUNTY2}


@pytest.mark.postgres
def test_the_queue_runs_without_jit_and_restores_the_setting(pg_url):
    """PostgreSQL: the queue's queries run with JIT off (compiling them cost more than running them); the run's
    transaction gets its setting back for the steps after the queue."""
    eng = load_scenario(pg_url, world(clips=[_clip("K-NOBODY", D3, police_no=None)]))
    with eng.begin() as conn:
        conn.exec_driver_sql("SET LOCAL jit = on")
        seen = []
        with data_quality._no_jit(conn):
            seen.append(conn.exec_driver_sql("SELECT current_setting('jit')").scalar())
        seen.append(conn.exec_driver_sql("SELECT current_setting('jit')").scalar())
        data_quality.compute(conn, datetime.strptime(AS_OF, "%Y-%m-%d %H:%M:%S"), config.load(), run_id=1)
        seen.append(conn.exec_driver_sql("SELECT current_setting('jit')").scalar())
    assert seen == ["off", "on", "on"]
    assert _keys(read_df(eng, "SELECT * FROM v_data_quality"), "clip_no_owner") == {"K-NOBODY"}
