"""Stable finding identity (shared/spec/supervision.md): ``finding_key`` is the breach, not the run.

The key is the rule id and the rule's key columns (``etl.rules.keys``); it is unique on the demo, the same
in two warehouses loaded from the same sources (SQLite and PostgreSQL), and the same after an incremental
run as after a full run of the same changed sources.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from etl.demo import generate
from etl.pipeline import run
from etl.rules import findings as findings_step
from etl.rules.keys import RULES, finding_key, finding_keys

COLUMNS = ["finding_key", "rule_id", "unit_code", "incident_no", "police_no", "case_no", "doc_id", "detail"]


def test_key_of_one_row_and_of_a_frame_agree() -> None:
    rows = [
        {"rule_id": "AV-NONE", "incident_no": "J1"},
        {"rule_id": "AV-OFFICER", "incident_no": "J1", "police_no": "000123"},
        {"rule_id": "AV-GAP", "incident_no": "J1", "gap_start": pd.Timestamp("2026-07-12 10:15:00")},
        {"rule_id": "DOC-MISSING", "action_id": "A7", "doc_type": "inquiry_record"},
        {"rule_id": "EQUIP-IDLE", "device_sn": "SN1", "month": "2026-07"},
        {"rule_id": "EQUIP-LEDGER", "unit_code": "140400000000", "device_sn": None},
    ]
    frame = pd.DataFrame(rows)
    vectorised = finding_keys(frame).tolist()
    assert vectorised == [finding_key(r["rule_id"], r) for r in rows]
    assert vectorised == [
        "AV-NONE:J1",
        "AV-OFFICER:J1:000123",
        "AV-GAP:J1:20260712T101500",
        "DOC-MISSING:A7:inquiry_record",
        "EQUIP-IDLE:SN1:2026-07",
        "EQUIP-LEDGER:140400000000:",
    ]
    # the gap start may come as epoch seconds (the rules' time) or as warehouse text: the same key
    epoch = (pd.Timestamp("2026-07-12 10:15:00") - pd.Timestamp(0)).total_seconds()
    assert finding_key("AV-GAP", {"incident_no": "J1", "gap_start": epoch}) == "AV-GAP:J1:20260712T101500"
    assert finding_key("AV-GAP", {"incident_no": "J1", "gap_start": "2026-07-12 10:15:00"}) == vectorised[2]
    with pytest.raises(ValueError, match="unknown rule"):
        finding_keys(pd.DataFrame({"rule_id": ["NO-SUCH-RULE"]}))


def test_assemble_keys_every_finding_and_keeps_the_order() -> None:
    """The findings step's frame: sorted as before, the key filled, no per-run number."""
    gap_start = np.array([1.79e9 + 60, 1.79e9], dtype=float)
    frames = [
        pd.DataFrame(
            {
                "rule_id": "AV-GAP",
                "unit_code": "U1",
                "incident_no": ["J2", "J2"],
                "occurred_at": [1.79e9, 1.79e9],
                "gap_start": gap_start,
            }
        ),
        pd.DataFrame({"rule_id": "AV-NONE", "unit_code": "U1", "incident_no": ["J9"], "occurred_at": [1.79e9]}),
    ]
    df = findings_step.assemble(frames)
    assert "finding_id" not in df.columns and df.columns[0] == "finding_key"
    assert df["rule_id"].tolist() == ["AV-NONE", "AV-GAP", "AV-GAP"]  # rule order of RULES, then the gap start
    starts = pd.to_datetime(gap_start, unit="s").strftime("%Y%m%dT%H%M%S")
    assert df["finding_key"].tolist() == ["AV-NONE:J9", f"AV-GAP:J2:{starts[1]}", f"AV-GAP:J2:{starts[0]}"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, scale="small", seed=2026, media=False)
    return out / "sources.yaml"


def _findings(url: str) -> pd.DataFrame:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            df = pd.read_sql(sa.text(f"SELECT {', '.join(COLUMNS)} FROM findings"), conn)
    finally:
        engine.dispose()
    return df.astype(object).where(df.notna(), None).sort_values("finding_key", ignore_index=True)


def test_keys_are_unique_and_readable_on_the_demo(demo: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(demo, warehouse=url, progress=False)
    df = _findings(url)
    assert len(df) > 500
    assert df["finding_key"].is_unique
    # each key is its rule id and the rule's key columns
    for rule_id, key in zip(df["rule_id"], df["finding_key"], strict=True):
        assert key.split(":")[0] == rule_id
        assert len(key.split(":")) >= 1 + len(RULES[rule_id]["key"])
    none = df[df["rule_id"] == "AV-NONE"].iloc[0]
    assert none["finding_key"] == f"AV-NONE:{none['incident_no']}"
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        view = pd.read_sql(sa.text("SELECT finding_key, review_state FROM v_findings"), conn)
        excused = pd.read_sql(sa.text("SELECT finding_key, report_id FROM excused_findings"), conn)
    engine.dispose()
    assert sorted(view["finding_key"]) == sorted(df["finding_key"])  # no verdicts yet: the view is the table
    assert set(view["review_state"]) == {"open"}
    # the excused events' AV findings: keyed alike, never in findings, each with its report
    assert len(excused) > 0 and excused["report_id"].notna().all() and excused["finding_key"].is_unique
    assert not set(excused["finding_key"]) & set(df["finding_key"])


@pytest.mark.postgres
def test_keys_are_equal_on_sqlite_and_postgresql(demo: Path, tmp_path: Path, pg_url: str) -> None:
    lite = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(demo, warehouse=lite, progress=False)
    run(demo, warehouse=pg_url, progress=False)
    a, b = _findings(lite), _findings(pg_url)
    assert len(a) > 500
    assert a["finding_key"].tolist() == b["finding_key"].tolist()
    pd.testing.assert_frame_equal(a, b)


def _change_sources(src: Path) -> None:
    """Shorten some clips (newer updated_at: new gaps), put devices in repair, drop access records."""
    con = sqlite3.connect(src.parent / "media.sqlite")
    with con:
        con.execute(
            "UPDATE clips SET ended_at = datetime(started_at, '+10 seconds'), updated_at = '2026-11-28 23:00:00'"
            " WHERE rowid % 37 = 0"
        )
        con.execute("UPDATE devices SET status = 'repair', status_since = '2026-09-01 00:00:00' WHERE rowid % 9 = 0")
        con.execute("DELETE FROM access_log WHERE rowid % 7 = 0")
    con.close()


def test_keys_are_equal_after_a_full_and_an_incremental_run(demo: Path, tmp_path: Path) -> None:
    import shutil

    src_dir = tmp_path / "src"
    shutil.copytree(demo.parent, src_dir)
    src = src_dir / "sources.yaml"
    incremental = f"sqlite:///{tmp_path / 'inc.sqlite'}"
    run(src, warehouse=incremental, progress=False)
    before = _findings(incremental)
    _change_sources(src)
    run(src, warehouse=incremental, progress=False)
    full = f"sqlite:///{tmp_path / 'full.sqlite'}"
    run(src, warehouse=full, progress=False)
    a, b = _findings(incremental), _findings(full)
    assert a["finding_key"].tolist() == b["finding_key"].tolist()
    pd.testing.assert_frame_equal(a, b)
    # the change made new findings and removed some: a breach still there kept its key and its content
    assert set(a["finding_key"]) != set(before["finding_key"])
    kept = before.merge(a, on="finding_key", suffixes=("", "_after"))
    assert len(kept) > 0.5 * len(before)
    assert (kept["rule_id"] == kept["rule_id_after"]).all()
    assert (kept["incident_no"].fillna("") == kept["incident_no_after"].fillna("")).all()
