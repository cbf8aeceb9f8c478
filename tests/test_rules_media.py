"""Access, integrity, retention and upload rules through load_scenario."""

from __future__ import annotations

import pandas as pd
from scenario import (
    D1,
    D2,
    D4,
    D5,
    K1,
    LEADER_CITY,
    LEADER_K1,
    LEADER_S1,
    P1,
    P2,
    P3,
    P4,
    S1,
    S2,
    findings,
    keys,
    load_scenario,
    world,
)


def _clip(
    cid: str, device: str = D1, start: str = "2026-01-10 10:00:00", end: str = "2026-01-10 10:10:00", **kw
) -> dict:
    return {
        "clip_id": cid,
        "device_sn": device,
        "police_no": kw.pop("police_no", P1),
        "started_at": start,
        "ended_at": end,
        **kw,
    }


def _log(lid: str, clip: str, action: str = "view", user: str | None = P1, **kw) -> dict:
    row = {
        "log_id": lid,
        "clip_id": clip,
        "action": action,
        "user_no": user,
        "at": "2026-02-01 10:00:00",
        "reason": "办案需要",
    }
    row.update(kw)
    return row


def test_access_record_fields(sqlite_url):
    ok_appr = {"approver_no": LEADER_S1, "approved_at": "2026-02-01 09:00:00"}
    eng = load_scenario(
        sqlite_url,
        world(
            clips=[_clip("C1")],
            access_log=[
                _log("L-OK", "C1"),
                _log("L-NOUSER", "C1", user=None),
                _log("L-NOREASON", "C1", reason=" "),
                _log("L-NOAT", "C1", at=None),
                _log("L-VIEW-NOAPPR", "C1"),  # view needs no approval
                _log("L-COPY-OK", "C1", "copy", **ok_appr),
                _log("L-COPY", "C1", "copy"),
                _log("L-DL", "C1", "download", approver_no=LEADER_S1),
                _log("L-DEL", "C1", "delete", approved_at="2026-02-01 09:00:00"),
            ],
        ),
    )
    assert keys(eng, "ACCESS-RECORD") == {
        ("L-NOUSER",),
        ("L-NOREASON",),
        ("L-NOAT",),
        ("L-COPY",),
        ("L-DL",),
        ("L-DEL",),
    }
    f = findings(eng, "ACCESS-RECORD").set_index("log_id")
    assert "审批时间" in f.loc["L-DL", "detail"] and "审批人" in f.loc["L-DEL", "detail"]
    assert f.loc["L-COPY", "unit_code"] == S1 and str(f.loc["L-COPY", "occurred_at"]) == "2026-02-01 10:00:00"
    assert str(f.loc["L-NOAT", "occurred_at"]) == "2026-03-31 23:59:59"


def test_access_scope_graded(sqlite_url):
    # clips of S1 (D1), S2 (D4), S3 (D5); users of S1 (P1), S2 (P3), S3 (P4), county K1, city
    eng = load_scenario(
        sqlite_url,
        world(
            clips=[_clip("C-S1"), _clip("C-S2", D4, police_no=P3), _clip("C-S3", D5, police_no=P4)],
            access_log=[
                _log("L-OWN", "C-S1", user=P1),
                _log("L-PEER", "C-S2", user=P1),  # peer station: no
                _log("L-COUNTY", "C-S2", user=LEADER_K1),  # county over its station: yes
                _log("L-COUNTY-OTHER", "C-S3", user=LEADER_K1),  # county over another county's station: no
                _log("L-CITY", "C-S3", user=LEADER_CITY),  # city over everything: yes
                _log("L-UP", "C-S1", user=P4),  # station of another county: no
                _log("L-UNKNOWN", "C-S1", user="999999"),  # not in officers: no unit, hence no scope: finding
                _log("L-NOUSER", "C-S1", user=None),  # left to ACCESS-RECORD
            ],
        ),
    )
    assert keys(eng, "ACCESS-SCOPE") == {("L-PEER",), ("L-COUNTY-OTHER",), ("L-UP",), ("L-UNKNOWN",)}
    f = findings(eng, "ACCESS-SCOPE").set_index("log_id")
    assert f.loc["L-PEER", "unit_code"] == S2  # the unit owning the clip's device
    assert "不在人员名录中" in f.loc["L-UNKNOWN", "detail"]
    assert "西街派出所" in f.loc["L-PEER", "detail"]


def test_access_external(sqlite_url):
    at = "2026-02-01 10:00:00"
    eng = load_scenario(
        sqlite_url,
        world(
            clips=[_clip("C1")],
            access_log=[
                _log(
                    "E-OK", "C1", "external", approver_no=LEADER_K1, approved_at="2026-02-01 09:00:00", recipient="法院"
                ),
                _log("E-SAME", "C1", "external", approver_no=LEADER_CITY, approved_at=at, recipient="检察院"),
                _log("E-STATION", "C1", "external", approver_no=LEADER_S1, approved_at="2026-02-01 09:00:00"),
                _log("E-NOTLEADER", "C1", "external", approver_no=P2, approved_at="2026-02-01 09:00:00"),
                _log("E-AFTER", "C1", "external", approver_no=LEADER_K1, approved_at="2026-02-01 10:00:01"),
                _log("E-NONE", "C1", "external"),
                _log("V-VIEW", "C1", "view"),
            ],
        ),
    )
    assert keys(eng, "ACCESS-EXTERNAL") == {("E-STATION",), ("E-NOTLEADER",), ("E-AFTER",), ("E-NONE",)}
    f = findings(eng, "ACCESS-EXTERNAL").set_index("log_id")
    assert "晚于" in f.loc["E-AFTER", "detail"] and "县级或市级" in f.loc["E-STATION", "detail"]


def _media(cid: str, present: int, sha: str | None) -> dict:
    return {
        "clip_id": cid,
        "file_path": f"{cid}.mp4",
        "present": present,
        "size_bytes": 1,
        "mtime_ns": 1,
        "sha256_actual": sha,
        "checked_at": "2026-03-31 00:00:00",
    }


def test_integrity_hash_and_missing(sqlite_url):
    good, bad = "ab" * 32, "cd" * 32
    clips = [
        _clip("C-OK", sha256=good, file_path="C-OK.mp4"),
        _clip("C-UPPER", sha256=good.upper()),
        _clip("C-ALTERED", sha256=good),
        _clip("C-GONE", sha256=good),
        _clip(
            "C-DELETED",
            sha256=good,
            deleted_at="2026-12-01 00:00:00",
            is_evidence=0,
            start="2025-01-01 00:00:00",
            end="2025-01-01 00:10:00",
        ),
        _clip("C-UNCHECKED", sha256=good),
    ]
    media = [
        _media("C-OK", 1, good),
        _media("C-UPPER", 1, good),
        _media("C-ALTERED", 1, bad),
        _media("C-GONE", 0, None),
        _media("C-DELETED", 0, None),
    ]
    eng = load_scenario(sqlite_url, world(clips=clips), media_files=media)
    assert keys(eng, "INTEGRITY-HASH") == {("C-ALTERED",)}
    assert keys(eng, "INTEGRITY-MISSING") == {("C-GONE",), ("C-UNCHECKED",)}
    f = findings(eng, "INTEGRITY-HASH").iloc[0]
    assert f["unit_code"] == S1 and "SHA-256" in f["detail"] and str(f["occurred_at"]) == "2026-01-10 10:00:00"


def test_integrity_skipped_without_check(sqlite_url):
    eng = load_scenario(sqlite_url, world(clips=[_clip("C-GONE")]), media_files=None, integrity_checked=False)
    assert keys(eng, "INTEGRITY-MISSING") == set() and keys(eng, "INTEGRITY-HASH") == set()


def test_integrity_deleted_retention(sqlite_url):
    s = "2025-06-01 10:00:00"
    eng = load_scenario(
        sqlite_url,
        world(
            clips=[
                _clip("C-179", start=s, end="2025-06-01 10:10:00", deleted_at="2025-11-27 10:00:00"),  # 179 days
                _clip("C-180", start=s, end="2025-06-01 10:10:00", deleted_at="2025-11-28 10:00:00"),  # exactly 180
                _clip("C-180M", start=s, end="2025-06-01 10:10:00", deleted_at="2025-11-28 09:59:59"),  # 1 s early
                _clip("C-EVID", start=s, end="2025-06-01 10:10:00", is_evidence=1, deleted_at="2026-03-01 00:00:00"),
                _clip("C-CASE", start=s, end="2025-06-01 10:10:00", case_no="A1", deleted_at="2026-03-01 00:00:00"),
                _clip("C-KEPT", start=s, end="2025-06-01 10:10:00", is_evidence=1),
                _clip(
                    "C-FUTURE-DEL", start=s, end="2025-06-01 10:10:00", is_evidence=1, deleted_at="2026-05-01 00:00:00"
                ),
            ]
        ),
    )
    assert keys(eng, "INTEGRITY-DELETED") == {("C-179",), ("C-180M",), ("C-EVID",), ("C-CASE",)}
    f = findings(eng, "INTEGRITY-DELETED").set_index("clip_id")
    assert "永久保存" in f.loc["C-CASE", "detail"] and "180天" in f.loc["C-179", "detail"]
    assert f.loc["C-CASE", "case_no"] == "A1"


def test_upload_late(sqlite_url):
    end = "2026-01-10 10:10:00"
    eng = load_scenario(
        sqlite_url,
        world(
            clips=[
                _clip("C-24H", end=end, imported_at="2026-01-11 10:10:00"),
                _clip("C-24H1S", end=end, imported_at="2026-01-11 10:10:01"),
                _clip("C-S2", D4, end=end, police_no=P3, imported_at="2026-01-15 00:00:00"),
            ]
        ),
    )
    assert keys(eng, "UPLOAD-LATE") == {("C-24H1S",), ("C-S2",)}
    f = findings(eng, "UPLOAD-LATE").set_index("clip_id")
    # rules.md v1.1: the provincial 24-hour upload rule under the unified management of Art. 31
    assert f.loc["C-S2", "unit_code"] == S2 and f.loc["C-S2", "article"] == "第三十一条"
    assert "24小时" in f.loc["C-24H1S", "detail"] and "24小时内上传" in f.loc["C-24H1S", "detail"]
    assert "第五条" not in f.loc["C-24H1S", "article"]


# --- rules.md v1.1 ---------------------------------------------------------------------------------------------


def test_access_scope_respects_approval(sqlite_url):
    """Art. 28: 未经批准不得越权调阅 -- an out-of-scope access approved in time by a leader of a unit that has the
    clip's unit in scope is no finding; every other approval leaves the finding, with the reason."""
    before, after = "2026-02-01 09:00:00", "2026-02-01 10:00:01"
    extra_officers = [  # a non-leader of the county; the leader of the peer station S2
        {"police_no": "010005", "name": "吴七", "unit_code": K1, "kind": "police", "leader": 0, "active": 1},
        {"police_no": "000004", "name": "郑所长", "unit_code": S2, "kind": "police", "leader": 1, "active": 1},
    ]
    eng = load_scenario(
        sqlite_url,
        world(
            officers=extra_officers,
            clips=[_clip("C-S1"), _clip("C-S2", D4, police_no=P3)],
            access_log=[
                # P1 (S1) views a clip of the peer station S2
                _log("L-NOAPPR", "C-S2", user=P1),  # no approval: finding (negative: v1 behaviour kept)
                _log("L-APPR-K1", "C-S2", user=P1, approver_no=LEADER_K1, approved_at=before),  # county over S2: ok
                _log("L-APPR-CITY", "C-S2", user=P1, approver_no=LEADER_CITY, approved_at="2026-02-01 10:00:00"),
                _log("L-APPR-S2", "C-S2", "copy", user=P1, approver_no="000004", approved_at=before),  # S2's own: ok
                _log("L-APPR-OWN", "C-S2", user=P1, approver_no=LEADER_S1, approved_at=before),  # S1 has no say
                _log("L-APPR-NOTLEAD", "C-S2", user=P1, approver_no="010005", approved_at=before),  # not a leader
                _log("L-APPR-LATE", "C-S2", user=P1, approver_no=LEADER_K1, approved_at=after),  # after the access
                _log("L-APPR-NOTIME", "C-S2", user=P1, approver_no=LEADER_K1),  # no approval time
                _log("L-APPR-UNKNOWN", "C-S2", user=P1, approver_no="999999", approved_at=before),  # not in officers
                _log("L-UNKNOWN-APPR", "C-S1", user="999999", approver_no=LEADER_S1, approved_at=before),  # ok
                _log("L-OWN", "C-S1", user=P1),  # in scope: no approval needed
            ],
        ),
    )
    assert keys(eng, "ACCESS-SCOPE") == {
        ("L-NOAPPR",),
        ("L-APPR-OWN",),
        ("L-APPR-NOTLEAD",),
        ("L-APPR-LATE",),
        ("L-APPR-NOTIME",),
        ("L-APPR-UNKNOWN",),
    }
    f = findings(eng, "ACCESS-SCOPE").set_index("log_id")
    assert "未经有权负责人批准" in f.loc["L-NOAPPR", "detail"]
    assert "无管辖权" in f.loc["L-APPR-OWN", "detail"] and "孙所长" in f.loc["L-APPR-OWN", "detail"]
    assert "不是单位负责人" in f.loc["L-APPR-NOTLEAD", "detail"]
    assert "审批时间晚于调阅时间" in f.loc["L-APPR-LATE", "detail"]
    assert "审批时间晚于调阅时间或未记录" in f.loc["L-APPR-NOTIME", "detail"]
    assert f.loc["L-NOAPPR", "police_no"] == P1 and f.loc["L-NOAPPR", "unit_code"] == S2


def test_integrity_deleted_names_who_deleted(sqlite_url):
    """police_no = the user of the clip's latest delete row in the register (null when none); the detail names
    the wearer too."""
    s, e = "2025-06-01 10:00:00", "2025-06-01 10:10:00"
    gone = "2026-03-01 00:00:00"
    eng = load_scenario(
        sqlite_url,
        world(
            clips=[
                _clip("C-ONE", start=s, end=e, is_evidence=1, deleted_at=gone),
                _clip("C-TWO", start=s, end=e, is_evidence=1, deleted_at=gone),
                _clip("C-NONE", start=s, end=e, is_evidence=1, deleted_at=gone),
                _clip("C-VIEWONLY", start=s, end=e, is_evidence=1, deleted_at=gone),
                _clip("C-NULLWEARER", D2, police_no=None, is_evidence=1, deleted_at=gone),
            ],
            access_log=[
                _log("D1", "C-ONE", "delete", user=LEADER_S1, at=gone),
                _log("D2A", "C-TWO", "delete", user=P2, at="2026-02-28 10:00:00"),  # an earlier attempt
                _log("D2B", "C-TWO", "delete", user=LEADER_K1, at=gone),  # the latest: responsible
                _log("V1", "C-VIEWONLY", "view", user=P2, at="2026-02-01 10:00:00"),  # a view names no deleter
                _log("D5", "C-NULLWEARER", "delete", user=LEADER_S1, at=gone),
            ],
        ),
    )
    f = findings(eng, "INTEGRITY-DELETED").set_index("clip_id")
    assert set(f.index) == {"C-ONE", "C-TWO", "C-NONE", "C-VIEWONLY", "C-NULLWEARER"}
    assert f.loc["C-ONE", "police_no"] == LEADER_S1
    assert f.loc["C-TWO", "police_no"] == LEADER_K1  # the latest delete row, not the first
    assert pd.isna(f.loc["C-NONE", "police_no"]) and pd.isna(f.loc["C-VIEWONLY", "police_no"])
    assert "删除人 孙所长(000002)" in f.loc["C-ONE", "detail"] and "摄录人 张三(010001)" in f.loc["C-ONE", "detail"]
    assert "删除人不明" in f.loc["C-NONE", "detail"] and "摄录人 张三" in f.loc["C-NONE", "detail"]
    # the wearer of a clip without police_no is the device's assignee at started_at (D2: P2)
    assert "摄录人 李四(010002)" in f.loc["C-NULLWEARER", "detail"] and f.loc["C-NULLWEARER", "police_no"] == LEADER_S1
    assert keys(eng, "DELETE-UNLOGGED") == {("C-NONE",), ("C-VIEWONLY",)}


def test_delete_unlogged(sqlite_url):
    """A deletion without a delete row in the access register, whatever the retention; police_no null; the
    detail gives the deletion time; owned by the unit owning the clip's device, in the clip's period."""
    s, e = "2025-01-01 10:00:00", "2025-01-01 10:10:00"  # retention long over: a routine deletion
    eng = load_scenario(
        sqlite_url,
        world(
            clips=[
                _clip("C-LOGGED", start=s, end=e, deleted_at="2026-01-05 08:00:00"),
                _clip("C-UNLOGGED", D4, start=s, end=e, police_no=P3, deleted_at="2026-01-05 08:00:00"),
                _clip("C-COPIED", start=s, end=e, deleted_at="2026-01-05 08:00:00"),  # copied, never registered
                _clip("C-ALIVE", start=s, end=e),  # not deleted: nothing
                _clip("C-LATER", start=s, end=e, deleted_at="2026-05-01 00:00:00"),  # after the evaluation date
                _clip("C-LOG-LATER", start=s, end=e, deleted_at="2026-03-30 00:00:00"),  # registered after as_of
            ],
            access_log=[
                _log(
                    "DEL-1",
                    "C-LOGGED",
                    "delete",
                    user=LEADER_S1,
                    at="2026-01-05 08:00:00",
                    approver_no=LEADER_S1,
                    approved_at="2026-01-05 07:00:00",
                ),
                _log("CP-1", "C-COPIED", "copy", user=P1, approver_no=LEADER_S1, approved_at="2026-01-04 00:00:00"),
                _log("DEL-LATE", "C-LOG-LATER", "delete", user=LEADER_S1, at="2026-04-02 00:00:00"),
            ],
        ),
    )
    assert keys(eng, "DELETE-UNLOGGED") == {("C-UNLOGGED",), ("C-COPIED",), ("C-LOG-LATER",)}
    f = findings(eng, "DELETE-UNLOGGED").set_index("clip_id")
    row = f.loc["C-UNLOGGED"]
    assert pd.isna(row["police_no"]) and row["unit_code"] == S2 and row["article"] == "第三十二条、第三十三条"
    assert "2026-01-05 08:00:00" in row["detail"] and "删除" in row["detail"]
    assert str(row["occurred_at"]) == s and row["finding_key"] == "DELETE-UNLOGGED:C-UNLOGGED"
    assert keys(eng, "INTEGRITY-DELETED") == set()  # routine deletions after retention


def test_delete_unlogged_deducts_3_in_access_and_integrity(sqlite_url):
    """measures-2026 v2026.3: 3 points per DELETE-UNLOGGED in 调阅与完整性 (of the unit owning the device, in the
    clip's period); a registered deletion deducts nothing."""
    from datetime import datetime

    from scenario import AS_OF

    from etl.evaluation import evaluate
    from etl.warehouse.db import read_df

    s, e = "2025-01-01 10:00:00", "2025-01-01 10:10:00"
    clips = [
        _clip("C-S1-A", start=s, end=e, deleted_at="2026-01-05 08:00:00"),
        _clip("C-S1-B", start=s, end=e, deleted_at="2026-01-06 08:00:00"),
        _clip("C-S2", D4, start=s, end=e, police_no=P3, deleted_at="2026-01-05 08:00:00"),
    ]
    log = [_log("DEL-S2", "C-S2", "delete", user=P3, at="2026-01-05 08:00:00")]
    eng = load_scenario(sqlite_url, world(clips=clips, access_log=log), evaluate=False)
    with eng.begin() as conn:
        evaluate(conn, as_of=datetime.strptime(AS_OF, "%Y-%m-%d %H:%M:%S"), integrity_checked=False)
    assert keys(eng, "DELETE-UNLOGGED") == {("C-S1-A",), ("C-S1-B",)}
    items = read_df(
        eng,
        "SELECT unit_code, period, deductions, score, scheme_version FROM v_unit_item_scores "
        "WHERE item_id = 'access_integrity'",
    ).set_index(["unit_code", "period"])
    assert items.loc[(S1, "2025-01"), "deductions"] == 6 and items.loc[(S1, "2025-01"), "score"] == 9
    assert items.loc[(S1, "2025"), "deductions"] == 6
    assert (S2, "2025-01") not in items.index or items.loc[(S2, "2025-01"), "deductions"] == 0
    assert set(items["scheme_version"]) == {"2026.3"}
