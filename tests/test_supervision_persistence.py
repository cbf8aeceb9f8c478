"""The supervision record survives every ETL run (shared/spec/supervision.md "Persistent").

Rows in every supervision table (plain inserts: the actions are tested elsewhere), then, on SQLite and on
PostgreSQL: a full run, an incremental run with changed sources, a failed run (an unreadable source), a
crashed run (SIGKILL mid-run) and a run with a changed config/rules.yaml.  After each, every supervision
table, dumped in order, is byte-identical to before.  A judgement whose finding left the sources stays and
is shown as orphaned.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.demo import generate
from etl.errors import SourceError
from etl.pipeline import run
from etl.rules import config
from etl.warehouse.db import make_engine
from etl.warehouse.schema import SUPERVISION_TABLES, ensure_schema, metadata

ROOT = Path(__file__).resolve().parent.parent
AT = datetime(2026, 11, 20, 10, 0, 0)


def _dump(url: str) -> bytes:
    """Every supervision table, rows ordered by every column, as bytes."""
    engine = sa.create_engine(url)
    parts = []
    try:
        with engine.connect() as conn:
            for name in SUPERVISION_TABLES:
                cols = [c.name for c in metadata.tables[name].columns]
                order = ", ".join(str(i + 1) for i in range(len(cols)))
                rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {name} ORDER BY {order}")).fetchall()
                assert rows, f"{name} holds no row: the test must cover every supervision table"
                parts.append(f"{name}\n" + "\n".join(repr(tuple(r)) for r in rows))
    finally:
        engine.dispose()
    return "\n\n".join(parts).encode()


def _seed(url: str, key: str) -> None:
    """One or two rows in every supervision table; ``key`` is a finding of the sources (it will disappear), its
    event failed a spot-check (a SPOT-CHECK finding while the event is in the sources)."""
    incident = key.split(":", 1)[1]
    engine = make_engine(url)
    rows = {
        "sup_finding_state": [
            dict(finding_key=key, state="exempted", category="不可抗力", reason="暴雨断电", version=2),
            dict(finding_key="DOC-MISSING:A-OLD:inquiry_record", state="confirmed", category=None, reason="属实", version=1),
        ],
        "sup_reviews": [
            dict(finding_key=key, verdict="confirm", category=None, reason="属实", source="review"),
            dict(finding_key=key, verdict="exempt", category="不可抗力", reason="暴雨断电", source="appeal"),
        ],
        "sup_appeals": [
            dict(finding_key=key, unit_code="140403510000", reason="设备断电", filed_by="county", filed_at=AT, late=0,
                 decision="upheld", decision_reason="情况属实", decided_by="legal", decided_at=AT, version=2),
        ],
        "sup_excuse_reviews": [
            dict(incident_no="J-EXCUSED", report_id="BG1", verdict="rejected", reason="理由不成立", by_user="legal",
                 at=AT, version=1),
        ],
        "sup_excuse_history": [
            dict(incident_no="J-EXCUSED", report_id="BG1", verdict="rejected", reason="理由不成立", by_user="legal",
                 at=AT),
        ],
        "sup_publications": [
            dict(period="2026-10", version=1, scheme_id="measures-2026", scheme_version="2026.1", reason="月度发布",
                 published_by="legal", published_at=AT, as_of=AT, data_as_of=AT),
        ],
        "sup_published_scores": [
            dict(publication_id=1, period="2026-10", version=1, unit_code="140400000000", unit_level="city",
                 total=87.5, grade="良好", rank=1, veto=0),
        ],
        "sup_published_items": [
            dict(publication_id=1, unit_code="140400000000", item_id="onsite_recording", item_name="现场执法音像记录",
                 points=30.0, objects=100, clean=90, deductions=0.0, score=27.0),
        ],
        "sup_published_findings": [
            dict(publication_id=1, finding_key=key, rule_id="AV-NONE", article="第五条、第十五条",
                 unit_code="140403510000", review_state="open", month="2026-10", occurred_at=AT, detail="无任何录像"),
        ],
        "sup_published_frames": [dict(publication_id=1, name="scores", data=b"\x28\xb5\x2f\xfd\x00frozen")],
        "sup_campaigns": [
            dict(period="2026-10", object_kind="events", scope_unit=None, per_unit=2, seed=7, population=40, drawn=2,
                 draw_note=None, reviewers="legal", reason="月度抽查", created_by="legal", created_at=AT, state="open",
                 version=1),
        ],
        "sup_spotcheck_items": [
            dict(campaign_id=1, object_key=incident, object_kind="events", unit_code="140403510000", period="2026-10",
                 month="2026-10", occurred_at=AT, draw_order=1, assigned_to="legal", verdict="fail",
                 failed_points="16.2", note="画面晃动", reviewed_by="legal", reviewed_at=AT, version=2),
            dict(campaign_id=1, object_key="J-NOT-REVIEWED", object_kind="events", unit_code="140403510000",
                 period="2026-10", month="2026-10", occurred_at=AT, draw_order=2, assigned_to=None, verdict=None,
                 failed_points=None, note=None, reviewed_by=None, reviewed_at=None, version=1),
        ],
        "sup_spotcheck_points": [
            dict(campaign_id=1, object_key=incident, point_id="16.2", result="fail", note="未拍现场"),
            dict(campaign_id=1, object_key=incident, point_id="11", result="pass", note=None),
        ],
        "sup_spotcheck_history": [
            dict(campaign_id=1, object_key=incident, verdict="fail", failed_points="16.2",
                 points='{"16.2": ["fail", "未拍现场"], "11": ["pass", null]}', note="画面晃动", reason="抽查",
                 by_user="legal", at=AT),
        ],
        "sup_notices": [
            dict(unit_code="140403510000", issued_by="legal", issued_at=AT, deadline=AT.date(), text="限期整改",
                 basis="campaign", basis_ref="1", period="2026-10",
                 accountability='{"officers": ["P1"], "paragraph": "2"}', state="responded", closed_at=None,
                 closed_by=None, version=2),
        ],
        "sup_notice_findings": [
            dict(notice_id=1, finding_key=f"SPOT-CHECK:{incident}:1", rule_id="SPOT-CHECK", article="第十六条",
                 unit_code="140403510000", month="2026-10", detail="随机抽查不合格"),
        ],
        "sup_notice_events": [
            dict(notice_id=1, kind="issue", text="限期整改", deadline=AT.date(), by_user="legal", at=AT),
            dict(notice_id=1, kind="respond", text="已整改", deadline=None, by_user="county", at=AT),
        ],
    }  # fmt: skip
    common = {"sup_finding_state": dict(updated_by="legal", updated_at=AT, rule_id="AV-NONE", unit_code="140403510000",
                                        month="2026-10", detail="无任何录像"),
              "sup_reviews": dict(by_user="legal", role="legal", at=AT)}  # fmt: skip
    with engine.begin() as conn:
        ensure_schema(conn)
        for name, values in rows.items():
            conn.execute(metadata.tables[name].insert(), [{**common.get(name, {}), **v} for v in values])
    engine.dispose()


def _read(url: str, sql: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql(sa.text(sql), conn)
    finally:
        engine.dispose()


def _orphaned(url: str, key: str) -> set[int]:
    df = _read(url, "SELECT finding_key, orphaned FROM v_reviews")
    return set(df.loc[df["finding_key"] == key, "orphaned"].astype(int))


def _csv(path: Path, change) -> None:  # noqa: ANN001
    df = pd.read_csv(path, dtype=str, encoding="gb18030", keep_default_na=False)
    change(df)
    df.to_csv(path, index=False, encoding="gb18030")


def _change_sources(src: Path, incident: str) -> None:
    """Shorter clips (a newer updated_at), devices in repair, fewer access records; ``incident`` no longer
    on site (so its AV-NONE finding disappears)."""
    import sqlite3

    con = sqlite3.connect(src / "media.sqlite")
    with con:
        con.execute(
            "UPDATE clips SET ended_at = datetime(started_at, '+10 seconds'), updated_at = '2026-11-28 20:00:00'"
            " WHERE rowid % 41 = 0"
        )
        con.execute("UPDATE devices SET status = 'repair', status_since = '2026-09-01 00:00:00' WHERE rowid % 11 = 0")
        con.execute("DELETE FROM access_log WHERE rowid % 13 = 0")
    con.close()

    def off_site(df: pd.DataFrame) -> None:
        hit = df["警情编号"] == incident
        assert hit.sum() == 1
        df.loc[hit, "现场执法"] = "0"
        df.loc[hit, "更新时间"] = "2026/11/28 20:00:00"

    _csv(src / "dispatch" / "警情.csv", off_site)


def _crash(src: Path, url: str) -> int:
    """Start ``python -m etl run`` and SIGKILL it mid-run; returns its exit code."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl", "run", "--sources", str(src / "sources.yaml"), "--warehouse", url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    return proc.wait(timeout=60)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, scale="small", seed=2026, media=False)
    return out


def test_no_run_touches_the_supervision_record(
    demo: Path, tmp_path: Path, warehouse: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    shutil.copytree(demo, src)
    manifest = pd.read_csv(src / "manifest.csv", dtype=str)
    incident = sorted(manifest.loc[manifest["rule_id"] == "AV-NONE", "incident_no"])[0]
    key = f"AV-NONE:{incident}"
    _seed(warehouse, key)
    before = _dump(warehouse)
    assert _orphaned(warehouse, key) == {1}  # no run yet: no finding at all

    # 1. full run (the first load of every table)
    run(src / "sources.yaml", warehouse=warehouse, progress=False)
    assert _dump(warehouse) == before
    assert _orphaned(warehouse, key) == {0}
    exempted = _read(warehouse, f"SELECT review_state FROM v_findings WHERE finding_key = '{key}'")
    assert exempted["review_state"].tolist() == ["exempted"]
    spot = f"SPOT-CHECK:{incident}:1"  # the run wrote the SPOT-CHECK finding of the failed spot-check
    assert _read(warehouse, f"SELECT notice_id FROM v_findings WHERE finding_key = '{spot}'")["notice_id"].tolist() == [
        1
    ]

    # 2. incremental run with changed sources: the finding leaves the sources, the judgement stays, orphaned
    _change_sources(src, incident)
    res = run(src / "sources.yaml", warehouse=warehouse, progress=False)
    assert res.tables["clips"].loaded > 0 and res.tables["incidents"].loaded == 1
    assert _dump(warehouse) == before
    assert _orphaned(warehouse, key) == {1}
    assert _read(warehouse, f"SELECT COUNT(*) AS n FROM findings WHERE finding_key = '{key}'")["n"].iloc[0] == 0
    assert _read(warehouse, f"SELECT COUNT(*) AS n FROM findings WHERE finding_key = '{spot}'")["n"].iloc[0] == 0
    items = _read(warehouse, f"SELECT orphaned FROM v_spotcheck_items WHERE object_key = '{incident}'")
    assert items["orphaned"].tolist() == [1]  # the event left the sources: its review stays, orphaned
    appeals = _read(warehouse, "SELECT finding_key, orphaned FROM v_appeals")
    assert appeals.values.tolist() == [[key, 1]]
    findings_before = _read(warehouse, "SELECT finding_key FROM findings")

    # 3. failed run: an unreadable source
    cases = src / "cases" / "cases.csv"
    good = cases.read_bytes()
    cases.write_bytes(b"")
    with pytest.raises(SourceError):
        run(src / "sources.yaml", warehouse=warehouse, progress=False)
    cases.write_bytes(good)
    assert _dump(warehouse) == before

    # 4. crashed run: killed mid-run (its transaction never commits)
    assert _crash(src, warehouse) == -signal.SIGKILL
    assert _dump(warehouse) == before
    status = _read(warehouse, "SELECT status FROM etl_runs ORDER BY run_id")["status"].tolist()
    assert status == ["ok", "ok", "failed"]  # the crashed run left no row behind

    # 5. a changed config/rules.yaml: other findings, the same record
    cfg_dir = tmp_path / "config"
    shutil.copytree(config.DEFAULT_DIR, cfg_dir)
    rules = cfg_dir / "rules.yaml"
    rules.write_text(
        rules.read_text(encoding="utf-8").replace("gap_tolerance_s: 30", "gap_tolerance_s: 300"), encoding="utf-8"
    )
    monkeypatch.setattr(config, "DEFAULT_DIR", cfg_dir)
    run(src / "sources.yaml", warehouse=warehouse, progress=False)
    findings_after = _read(warehouse, "SELECT finding_key FROM findings")
    assert len(findings_after) < len(findings_before)  # fewer AV-GAP findings with a longer tolerance
    assert _dump(warehouse) == before
    assert _orphaned(warehouse, key) == {1}
