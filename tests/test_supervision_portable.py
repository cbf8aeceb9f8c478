"""Export -> import of the supervision record (etl.supervision.portable): lossless, idempotent, never overwrites.

The record made on the SQLite demo warehouse (verdicts, appeals, an excuse judged, a publication) is exported
and imported into a fresh PostgreSQL warehouse loaded from the same demo sources: every supervision table is
the same there, the findings show the same states, and the scores are the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from etl.errors import SupervisionError
from etl.supervision import actions, portable, rectify, spotcheck
from etl.warehouse.db import make_engine
from etl.warehouse.schema import SUPERVISION_TABLES, metadata
from tests.supervision_fixtures import excused_incident, finding_of, frame, load_pg, scalar, snapshot, user


def tables(engine) -> dict[str, list[dict]]:  # noqa: ANN001
    with engine.connect() as conn:
        return {name: portable._rows(conn, metadata.tables[name]) for name in SUPERVISION_TABLES}


def make_record(engine) -> dict:  # noqa: ANN001
    """Judgements of every kind on the demo warehouse; what was made."""
    legal, county = user(engine, "legal"), user(engine, "county")
    a, b, c, d = (finding_of(engine, rule="AV-NONE", unit_prefix="1404035", offset=i)["finding_key"] for i in range(4))
    actions.review(engine, legal, a, "exempt", reason="不可抗力：暴雨", category="不可抗力")
    actions.review(engine, legal, b, "confirm", reason="确认")
    upheld = actions.file_appeal(engine, county, c, reason="有送修记录")
    actions.decide_appeal(engine, legal, upheld, "uphold", reason="属实")
    pending = actions.file_appeal(engine, county, d, reason="待处理的申诉")
    incident = excused_incident(engine)
    actions.judge_excuse(engine, legal, incident, "reject", reason="说明不实")
    with engine.begin() as conn:  # a publication with its frozen rows (etl.supervision.publish writes the same tables)
        conn.execute(
            sa.insert(metadata.tables["sup_publications"]),
            {
                "period": "2026-Q3",
                "version": 1,
                "scheme_id": "default",
                "scheme_version": "1",
                "reason": "季度发布",
                "published_by": "legal",
                "published_at": actions._now(),
            },
        )
        pid = conn.execute(sa.text("SELECT MAX(publication_id) FROM sup_publications")).scalar()
        conn.execute(
            sa.insert(metadata.tables["sup_published_scores"]),
            {"publication_id": pid, "period": "2026-Q3", "version": 1, "unit_code": "140403000000", "total": 87.25},
        )
        conn.execute(
            sa.insert(metadata.tables["sup_published_items"]),
            {"publication_id": pid, "unit_code": "140403000000", "item_id": "onsite_recording", "score": 25.5},
        )
        conn.execute(
            sa.insert(metadata.tables["sup_published_findings"]),
            {"publication_id": pid, "finding_key": b, "rule_id": "AV-NONE", "review_state": "confirmed"},
        )
        conn.execute(
            sa.insert(metadata.tables["sup_published_frames"]),
            {"publication_id": pid, "name": "scores", "data": bytes(range(256)) * 3},
        )
    # a spot-check campaign with a failed review (its points and history) and a notice with its findings and events
    campaign = spotcheck.draw(engine, legal, period="2026-07", kind="events", per_unit=2, seed=5, reason="抽查")
    items = spotcheck.items(engine, campaign["campaign_id"])
    sampled = items.loc[items["unit_code"].str.startswith("1404035"), "object_key"].iloc[0]
    failed = spotcheck.record(
        engine, legal, campaign["campaign_id"], sampled, points={"16.2": ("fail", "未拍现场")}, reason="不合格"
    )
    notice = rectify.issue(
        engine, legal, "140403000000", finding_keys=[failed["finding_key"], b], text="限期整改", reason="整改"
    )
    rectify.respond(engine, county, notice["notice_id"], text="已整改")
    return {"exempted": a, "confirmed": b, "upheld": c, "pending": pending, "incident": incident,
            "spot": failed["finding_key"], "notice": notice["notice_id"]}  # fmt: skip


def export_file(engine, tmp_path: Path) -> Path:  # noqa: ANN001
    out = tmp_path / "record.jsonl"
    counts = portable.export(engine, user(engine, "legal"), out, reason="迁移到 PostgreSQL")
    assert counts["sup_reviews"] == 3 and counts["sup_appeals"] == 2 and counts["sup_published_frames"] == 1
    return out


@pytest.mark.postgres
def test_export_import_into_a_fresh_postgresql_warehouse_is_lossless(
    fresh_sqlite: str, demo_sources: Path, pg_url: str, tmp_path: Path
) -> None:
    src = make_engine(fresh_sqlite)
    made = make_record(src)
    path = export_file(src, tmp_path)
    dst = make_engine(load_pg(demo_sources, pg_url))
    assert all(not rows for rows in tables(dst).values())

    result = portable.import_file(dst, user(dst, "legal"), path, reason="迁移")
    assert result["sup_reviews"] == {"imported": 3, "identical": 0}
    assert tables(dst) == tables(src)  # every row, every value (times, blobs, floats) the same
    states = "SELECT finding_key, review_state, appeal_state FROM v_findings ORDER BY finding_key"
    assert frame(dst, states).equals(frame(src, states))
    assert scalar(dst, "SELECT review_state FROM v_findings WHERE finding_key = :k", k=made["exempted"]) == "exempted"
    with dst.connect() as conn:
        data = conn.execute(sa.text("SELECT data FROM sup_published_frames")).scalar()
    assert bytes(data) == bytes(range(256)) * 3
    scores = "SELECT period, unit_code, total, grade, veto FROM v_unit_scores ORDER BY period, unit_code"
    s, d = frame(src, scores), frame(dst, scores)
    assert s[["period", "unit_code", "grade", "veto"]].equals(d[["period", "unit_code", "grade", "veto"]])
    assert (s["total"] - d["total"]).abs().max() < 1e-9  # rescored with the imported verdicts
    assert portable.orphaned_keys(dst) == []
    assert [name for name, rows in tables(dst).items() if not rows] == []  # every table travelled, none empty
    spot = "SELECT finding_key, rule_id, article, unit_code, month, detail, notice_id FROM v_findings WHERE rule_id = 'SPOT-CHECK'"
    assert frame(dst, spot).equals(frame(src, spot)) and frame(dst, spot)["finding_key"].tolist() == [made["spot"]]
    notices = "SELECT notice_id, unit_code, state, deadline, findings FROM v_rectifications ORDER BY notice_id"
    assert frame(dst, notices).astype(str).equals(frame(src, notices).astype(str))

    # the ids go on from the imported ones: a new review and appeal after the import do not collide
    new = actions.review(dst, user(dst, "legal"), made["confirmed"], "reopen", reason="导入后重新打开")
    assert new == 4
    assert actions.decide_appeal(dst, user(dst, "legal"), made["pending"], "reject", reason="驳回") == 5
    src.dispose()
    dst.dispose()


def test_import_is_idempotent_and_never_overwrites(fresh_sqlite: str, tmp_path: Path, demo_sqlite_template) -> None:  # noqa: ANN001
    src = make_engine(fresh_sqlite)
    made = make_record(src)
    path = export_file(src, tmp_path)
    legal = user(src, "legal")
    before = tables(src)
    result = portable.import_file(src, legal, path, reason="再导入一次")  # into the warehouse it came from
    assert all(r["imported"] == 0 for r in result.values())
    assert sum(r["identical"] for r in result.values()) == sum(len(v) for v in before.values())
    assert tables(src) == before
    audit = frame(src, "SELECT action, reason FROM audit_log WHERE action LIKE 'supervision:%' ORDER BY id")
    assert audit.to_dict("records") == [
        {"action": "supervision:export", "reason": "迁移到 PostgreSQL"},
        {"action": "supervision:import", "reason": "再导入一次"},
    ]

    # a judgement changed here since the export: the import refuses instead of overwriting it
    actions.review(src, legal, made["exempted"], "reopen", reason="重新打开")
    snap = snapshot(src)
    with pytest.raises(SupervisionError, match="不会覆盖.*sup_finding_state"):
        portable.import_file(src, legal, path, reason="覆盖？")
    assert snapshot(src) == snap
    src.dispose()


def test_bad_files_and_users_are_refused(fresh_sqlite: str, tmp_path: Path) -> None:
    eng = make_engine(fresh_sqlite)
    legal, county = user(eng, "legal"), user(eng, "county")
    make_record(eng)
    path = export_file(eng, tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    cases = {
        "not-ours.jsonl": ['{"format": "other"}'],
        "bad-json.jsonl": [lines[0], "{oops"],
        "bad-table.jsonl": [lines[0], json.dumps({"table": "audit_log", "row": {"id": 1}})],
        "bad-column.jsonl": [lines[0], json.dumps({"table": "sup_reviews", "row": {"review_id": 9, "evil": 1}})],
        "truncated.jsonl": lines[:-1],
        "empty.jsonl": [],
        "bad-time.jsonl": [
            json.dumps({"format": "avsup-supervision", "version": 1}),
            json.dumps(
                {
                    "table": "sup_reviews",
                    "row": {
                        "review_id": 77,
                        "finding_key": "K",
                        "verdict": "confirm",
                        "reason": "r",
                        "by_user": "u",
                        "at": "yesterday",
                    },
                }
            ),
        ],
    }
    messages = ["不是督察记录", "不是有效的 JSON", "未知的表", "未知列", "不完整", "为空", "无法写入"]
    snap = snapshot(eng)
    for (name, content), message in zip(cases.items(), messages, strict=True):
        bad = tmp_path / name
        bad.write_text("\n".join(content), encoding="utf-8")
        with pytest.raises(SupervisionError, match=message):
            portable.import_file(eng, legal, bad, reason="导入")
    with pytest.raises(SupervisionError, match="无权"):
        portable.import_file(eng, county, path, reason="导入")
    with pytest.raises(SupervisionError, match="理由"):
        portable.import_file(eng, legal, path, reason="")
    with pytest.raises(SupervisionError, match="无权"):
        portable.export(eng, county, tmp_path / "x.jsonl", reason="导出")
    assert snapshot(eng) == snap and not (tmp_path / "x.jsonl").exists()
    eng.dispose()


def test_judgements_of_findings_gone_from_the_target_stay_orphaned(
    fresh_sqlite: str, tmp_path: Path, demo_sqlite_template
) -> None:  # noqa: ANN001
    import shutil

    src = make_engine(fresh_sqlite)
    made = make_record(src)
    path = export_file(src, tmp_path)
    target = tmp_path / "target.sqlite"
    shutil.copy(demo_sqlite_template, target)
    dst = make_engine(f"sqlite:///{target}")
    with dst.begin() as conn:  # the target's sources no longer have this object
        conn.execute(sa.text("DELETE FROM findings WHERE finding_key = :k"), {"k": made["confirmed"]})
    portable.import_file(dst, user(dst, "legal"), path, reason="迁移")
    assert portable.orphaned_keys(dst) == [made["confirmed"]]
    assert scalar(dst, "SELECT state FROM sup_finding_state WHERE finding_key = :k", k=made["confirmed"]) == "confirmed"
    src.dispose()
    dst.dispose()
