"""A small but complete warehouse for the dashboard tests, built by inserting rows (no ETL, no rules).

Units: city C0 → counties A0 (潞州分局) and B0 (上党分局); A0 → stations A1, A2; B0 → station B1.
Every object id carries its unit tag (``INC-A1-002``, ``CASE-B1-001`` ...), so a test can tell from any
rendered text whether a row of another unit leaked: ``foreign_markers(tag)``.
Station A1's case title and one finding detail are an XSS payload that must stay text.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import bcrypt
import pandas as pd
import yaml

from etl.rules.keys import finding_key
from etl.warehouse.db import bulk_insert, make_engine
from etl.warehouse.schema import ensure_schema

PASSWORD = "Demo#2026"
XSS = "<img src=x onerror=alert(1)>"
AS_OF = datetime(2026, 7, 31, 23, 59, 59)
UNITS = {  # tag: (code, name, parent tag, level)
    "C0": ("140400000000", "长治市公安局", None, "city"),
    "A0": ("140403000000", "潞州分局", "C0", "county"),
    "A1": ("140403010000", "西街派出所", "A0", "station"),
    "A2": ("140403020000", "东街派出所", "A0", "station"),
    "B0": ("140404000000", "上党分局", "C0", "county"),
    "B1": ("140404010000", "韩店派出所", "B0", "station"),
}
# Units that own operational data (counties own some too, to test that a station does not see its county).
DATA_UNITS = ("A0", "A1", "A2", "B0", "B1")
SCOPES = {"C0": set(UNITS), "A0": {"A0", "A1", "A2"}, "A1": {"A1"}, "A2": {"A2"}, "B0": {"B0", "B1"}, "B1": {"B1"}}
USERS = {  # username: (name, role, unit tag)
    "leader": ("王建国", "leader", "C0"),
    "legal": ("李法", "legal", "C0"),
    "equipment": ("赵装", "equipment", "C0"),
    "it": ("钱信", "it", "C0"),
    "county": ("孙县", "unit_admin", "A0"),
    "station": ("周所", "unit_admin", "A1"),
}
USER_TAG = {"leader": "C0", "legal": "C0", "equipment": "C0", "it": "C0", "county": "A0", "station": "A1"}


def code(tag: str) -> str:
    return UNITS[tag][0]


def foreign_markers(tag: str) -> list[str]:
    """Substrings that must not appear anywhere for a user scoped to ``tag``: other units' ids, codes, names."""
    out = []
    for other in set(UNITS) - SCOPES[tag]:
        out += [f"-{other}-", code(other), UNITS[other][1]]
    return out


@functools.cache
def password_hash() -> str:
    """One bcrypt hash of the demo password for every test user (each hash costs ~0.35 s)."""
    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=12)).decode()


@dataclass
class Warehouse:
    url: str
    demo_dir: Path
    users_file: Path


def _ts(d: datetime) -> str:
    return d.strftime("%Y-%m-%d %H:%M:%S")


def _frames() -> dict[str, list[dict]]:  # noqa: PLR0915 - one flat recipe reads best
    t: dict[str, list[dict]] = {
        k: []
        for k in (
            "org_units",
            "officers",
            "devices",
            "device_assignments",
            "incidents",
            "incident_officers",
            "interruption_reports",
            "clips",
            "event_coverage",
            "event_gaps",
            "cases",
            "case_officers",
            "case_actions",
            "case_documents",
            "deliveries",
            "access_log",
            "findings",
            "metrics",
            "unit_scores",
            "unit_item_scores",
            "quarantine",
            "watermarks",
            "media_files",
        )
    }
    for c, name, parent, level in UNITS.values():
        t["org_units"].append(
            {"unit_code": c, "name": name, "parent_code": code(parent) if parent else None, "level": level}
        )
    fid = 0
    seen: set[str] = set()

    def finding(rule: str, article: str, tag: str, when: datetime, detail: str, **objs) -> None:
        nonlocal fid
        fid += 1
        row = {
            "rule_id": rule,
            "article": article,
            "unit_code": code(tag),
            "occurred_at": _ts(when),
            "month": when.strftime("%Y-%m"),
            "detail": detail,
            **objs,
        }
        key = finding_key(rule, {"gap_start": row["occurred_at"], **row})
        key = key if key not in seen else f"{key}#{fid}"  # a breach written twice stays unique
        seen.add(key)
        t["findings"].append({"finding_key": key, **row})

    for i, tag in enumerate(DATA_UNITS):
        uc = code(tag)
        p1, p2 = f"P-{tag}-01", f"P-{tag}-02"
        for p, nm in ((p1, f"民警{tag}甲"), (p2, f"辅警{tag}乙")):
            t["officers"].append(
                {"police_no": p, "name": nm, "unit_code": uc, "kind": "police", "leader": 0, "active": 1}
            )
        d1, d2, d3 = f"DEV-{tag}-01", f"DEV-{tag}-02", f"DEV-{tag}-03"
        t["devices"] += [
            {
                "device_sn": d1,
                "kind": "bodycam",
                "model": "DSJ-V9",
                "unit_code": uc,
                "status": "in_use",
                "status_since": "2026-01-01 00:00:00",
            },
            {
                "device_sn": d2,
                "kind": "bodycam",
                "model": "DSJ-V9",
                "unit_code": uc,
                "status": "repair",
                "status_since": _ts(AS_OF - timedelta(days=40 + i)),
            },
            {
                "device_sn": d3,
                "kind": "camera",
                "model": "HD-2",
                "unit_code": uc,
                "status": "spare",
                "status_since": "2026-01-01 00:00:00",
            },
        ]
        t["device_assignments"] += [
            {"device_sn": d1, "police_no": p1, "from_at": "2026-01-01 00:00:00", "to_at": None},
            {"device_sn": d2, "police_no": p2, "from_at": "2026-01-01 00:00:00", "to_at": "2026-05-01 00:00:00"},
        ]
        base = datetime(2026, 7, 10 + i, 9, 0, 0)
        events = [  # (no, arrived, minutes, status, cause, covered minutes)
            (1, base, 30, "full", None, 30),
            (2, base + timedelta(hours=3), 30, "partial", "not_recorded", 20),
            (3, base + timedelta(hours=6), 20, "none", "no_device", 0),
            (4, base + timedelta(hours=8), 20, "excused", None, 0),
            (5, datetime(2026, 6, 5 + i, 10, 0, 0), 30, "full", None, 30),
        ]
        for no, arr, mins, status, cause, cov in events:
            inc = f"INC-{tag}-{no:03d}"
            end = arr + timedelta(minutes=mins)
            t["incidents"].append(
                {
                    "incident_no": inc,
                    "unit_code": uc,
                    "category": "治安纠纷",
                    "received_at": _ts(arr - timedelta(minutes=10)),
                    "arrived_at": _ts(arr),
                    "ended_at": _ts(end),
                    "on_site": 1,
                    "case_no": None,
                    "updated_at": _ts(end),
                }
            )
            t["incident_officers"] += [{"incident_no": inc, "police_no": p1}, {"incident_no": inc, "police_no": p2}]
            report = None
            if status == "excused":
                report = f"RPT-{tag}-{no:03d}"
                t["interruption_reports"].append(
                    {
                        "report_id": report,
                        "incident_no": inc,
                        "police_no": p1,
                        "reason": "设备电量耗尽",
                        "reported_at": _ts(end + timedelta(hours=1)),
                    }
                )
            if cov:
                clip = f"CLIP-{tag}-{no:03d}"
                t["clips"].append(
                    {
                        "clip_id": clip,
                        "device_sn": d1,
                        "police_no": None,
                        "started_at": _ts(arr),
                        "ended_at": _ts(arr + timedelta(minutes=cov)),
                        "size_bytes": 1000,
                        "sha256": "0" * 64,
                        "imported_at": _ts(end + timedelta(hours=30 if no == 1 else 2)),
                        "file_path": f"media/{clip}.mp4",
                        "incident_no": inc,
                        "case_no": None,
                        "is_evidence": 0,
                        "deleted_at": None,
                        "updated_at": _ts(end),
                    }
                )
            gap_count = 0 if status in ("full",) else 1
            t["event_coverage"].append(
                {
                    "incident_no": inc,
                    "unit_code": uc,
                    "arrived_at": _ts(arr),
                    "ended_at": _ts(end),
                    "window_s": mins * 60.0,
                    "covered_s": cov * 60.0,
                    "covered_fraction": cov / mins,
                    "gap_count": gap_count,
                    "status": status,
                    "raw_status": "none" if status == "excused" else status,
                    "cause": cause,
                    "officers": 2,
                    "report_id": report,
                }
            )
            if gap_count:
                gs = arr + timedelta(minutes=cov)
                t["event_gaps"].append(
                    {
                        "incident_no": inc,
                        "gap_no": 1,
                        "gap_start": _ts(gs),
                        "gap_end": _ts(end),
                        "gap_s": (end - gs).total_seconds(),
                    }
                )
        finding(
            "AV-GAP",
            "第十五条、第十七条",
            tag,
            base + timedelta(hours=3),
            f"INC-{tag}-002 记录中断 600 秒",
            incident_no=f"INC-{tag}-002",
            cause="not_recorded",
        )
        finding(
            "AV-NONE",
            "第五条、第十五条",
            tag,
            base + timedelta(hours=6),
            XSS if tag == "A1" else f"INC-{tag}-003 未记录",
            incident_no=f"INC-{tag}-003",
            cause="no_device",
        )
        finding(
            "AV-NONE",
            "第五条、第十五条",
            tag,
            datetime(2026, 6, 5 + i, 10),
            f"INC-{tag}-005 六月",
            incident_no=f"INC-{tag}-005",
        )
        # a case with one inspection, an unsigned record and a delivery
        case, act, doc = f"CASE-{tag}-001", f"ACT-{tag}-001", f"DOC-{tag}-001"
        t["cases"].append(
            {
                "case_no": case,
                "unit_code": uc,
                "title": XSS if tag == "A1" else f"{UNITS[tag][1]}殴打他人案",
                "procedure": "general",
                "source": "report",
                "is_major": 0,
                "emergency_start": 0,
                "registered_at": _ts(base - timedelta(days=2)),
                "started_at": _ts(base - timedelta(days=2)),
                "start_approved_at": _ts(base - timedelta(days=2)),
                "filed": 1,
                "decided_at": None,
                "closed_at": None,
                "enforcement_power": 1,
                "updated_at": _ts(base),
            }
        )
        t["case_officers"] += [
            {"case_no": case, "police_no": p1, "role": "handler"},
            {"case_no": case, "police_no": p2, "role": "assistant"},
        ]
        t["case_actions"].append(
            {
                "action_id": act,
                "case_no": case,
                "action_type": "inspection",
                "started_at": _ts(base),
                "ended_at": _ts(base + timedelta(minutes=20)),
                "police_no": p1,
                "updated_at": _ts(base),
            }
        )
        t["case_documents"].append(
            {
                "doc_id": doc,
                "case_no": case,
                "action_id": act,
                "doc_type": "inspection_record",
                "created_at": _ts(base + timedelta(minutes=25)),
                "party_signed": 0,
                "party_refused": 0,
                "officer_signed": 1,
                "witness_signed": 0,
                "updated_at": _ts(base),
            }
        )
        t["deliveries"].append(
            {
                "delivery_id": f"DLV-{tag}-001",
                "doc_id": doc,
                "method": "direct",
                "delivered_at": _ts(base + timedelta(hours=1)),
                "receipt_signed": 1,
            }
        )
        finding(
            "DOC-SIGNATURE",
            "第十一条、第十二条、第十三条",
            tag,
            base + timedelta(minutes=25),
            f"{doc} 缺当事人签名",
            case_no=case,
            doc_id=doc,
            action_id=act,
        )
        # access records: one ordinary view, one external release without approval
        for n, action in ((1, "view"), (2, "external")):
            t["access_log"].append(
                {
                    "log_id": f"LOG-{tag}-{n:03d}",
                    "clip_id": f"CLIP-{tag}-001",
                    "action": action,
                    "user_no": p2,
                    "at": _ts(base + timedelta(days=1, hours=n)),
                    "reason": "复核",
                    "approver_no": None,
                    "approved_at": None,
                    "recipient": None,
                }
            )
        finding(
            "ACCESS-EXTERNAL",
            "第三十三条",
            tag,
            base + timedelta(days=1, hours=2),
            f"LOG-{tag}-002 对外提供未审批",
            log_id=f"LOG-{tag}-002",
            clip_id=f"CLIP-{tag}-001",
        )
        finding(
            "INTEGRITY-HASH", "第三十三条、第三十五条", tag, base, f"CLIP-{tag}-002 哈希不符", clip_id=f"CLIP-{tag}-002"
        )
        finding("UPLOAD-LATE", "第五条", tag, base, f"CLIP-{tag}-001 超时上传", clip_id=f"CLIP-{tag}-001")
        finding("EQUIP-IDLE", "第五条", tag, datetime(2026, 7, 1), f"DEV-{tag}-03 闲置", device_sn=d3)
        finding("EQUIP-REPAIR", "第三十五条", tag, AS_OF, f"DEV-{tag}-02 维修超期", device_sn=d2)
        finding("EQUIP-LEDGER", "第三十一条", tag, AS_OF, f"DEV-{tag}-01 台账不符", device_sn=d1)

    # metrics and scores for every unit (over its scope) and period
    for tag in UNITS:
        for k, period in enumerate(("2026-06", "2026-07", "2026-Q2", "2026-Q3", "2026")):
            den = 4.0 * len([u for u in SCOPES[tag] if u in DATA_UNITS])
            t["metrics"] += [
                {
                    "period": period,
                    "unit_code": code(tag),
                    "metric_id": "whole_process_rate",
                    "numerator": den / 2,
                    "denominator": den,
                    "value": 0.5 if den else None,
                },
                {
                    "period": period,
                    "unit_code": code(tag),
                    "metric_id": "issue_rate",
                    "numerator": 0.0,
                    "denominator": 0.0,
                    "value": None,
                },
            ]
            for scheme, active in (("measures-2026", 1), ("platform-style", 0)):
                total = 70.0 + list(UNITS).index(tag) + k
                t["unit_scores"].append(
                    {
                        "scheme_id": scheme,
                        "scheme_version": "2026.1",
                        "active": active,
                        "period": period,
                        "unit_code": code(tag),
                        "unit_level": UNITS[tag][3],
                        "total": total,
                        "grade": "达标",
                        "rank": 1,
                        "veto": 0,
                    }
                )
                for item, name, pts, score in (
                    ("onsite_recording", "现场执法音像记录", 30, 20.5),
                    ("text_records", "文字记录", 20, 20.0),
                ):
                    t["unit_item_scores"].append(
                        {
                            "scheme_id": scheme,
                            "scheme_version": "2026.1",
                            "active": active,
                            "period": period,
                            "unit_code": code(tag),
                            "item_id": item,
                            "item_name": name,
                            "points": pts,
                            "objects": 4,
                            "clean": 3,
                            "deductions": 0.0,
                            "score": score,
                        }
                    )
    t["quarantine"] += [
        {
            "run_id": 1,
            "source": "cases",
            "table_name": "cases",
            "row_key": "CASE-X",
            "reason": "未知单位",
            "payload": "{}",
        },
        {
            "run_id": 1,
            "source": "media",
            "table_name": "clips",
            "row_key": "CLIP-X",
            "reason": "结束早于开始",
            "payload": "{}",
        },
    ]
    t["watermarks"] += [{"table_name": "clips", "updated_at": _ts(AS_OF), "row_key": "CLIP-B1-005"}]
    return t


def build(directory: Path, url: str | None = None) -> Warehouse:
    """Write the warehouse (SQLite in ``directory`` unless ``url`` names another database) and the demo
    users file into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    demo = directory / "demo"
    demo.mkdir(exist_ok=True)
    (demo / "sources.yaml").write_text("# fixture\n", encoding="utf-8")
    sources_sha = hashlib.sha256((demo / "sources.yaml").read_bytes()).hexdigest()
    users = {
        "demo": {"sources_sha256": sources_sha},  # the demo marker (etl.users.is_demo_warehouse)
        "users": {
            u: {"name": n, "role": r, "unit_code": code(tag), "password_hash": password_hash()}
            for u, (n, r, tag) in USERS.items()
        },
    }
    (demo / "users.yaml").write_text(yaml.safe_dump(users, allow_unicode=True), encoding="utf-8")
    url = url or f"sqlite:///{directory / 'warehouse.sqlite'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        ensure_schema(conn)
        for name, rows in _frames().items():
            if rows:
                bulk_insert(conn, name, pd.DataFrame(rows))
        bulk_insert(
            conn,
            "etl_runs",
            pd.DataFrame(
                [
                    {
                        "run_id": 1,
                        "started_at": _ts(AS_OF),
                        "ended_at": _ts(AS_OF),
                        "status": "ok",
                        "sources_hash": sources_sha,
                        "sources_file": str(demo / "sources.yaml"),
                        "as_of": _ts(AS_OF),
                        "stats": "{}",
                        "message": "完成",
                    }
                ]
            ),
        )
        bulk_insert(
            conn,
            "evaluation",
            pd.DataFrame(
                [
                    {
                        "run_id": 1,
                        "as_of": _ts(AS_OF),
                        "data_as_of": _ts(AS_OF),
                        "scheme_id": "measures-2026",
                        "scheme_version": "2026.1",
                        "integrity_checked": 1,
                        "computed_at": _ts(AS_OF),
                    }
                ]
            ),
        )
    engine.dispose()
    return Warehouse(url=url, demo_dir=demo, users_file=demo / "users.yaml")
