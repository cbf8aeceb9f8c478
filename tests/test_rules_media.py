"""Access, integrity, retention and upload rules through load_scenario."""

from __future__ import annotations

from scenario import (
    D1,
    D4,
    D5,
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
    assert f.loc["C-S2", "unit_code"] == S2 and f.loc["C-S2", "article"] == "第五条"
    assert "24小时" in f.loc["C-24H1S", "detail"]
