"""Verdicts applied (shared/spec/supervision.md): exempted findings count nowhere, a rejected excuse counts.

On the hand-computed warehouse of tests/test_scoring.py (S1: 3 events, E2 with its only finding AV-NONE,
on-site 10 of 30 points, total 80; S3: an INTEGRITY-HASH veto, total 59), on SQLite and PostgreSQL, plus
the views over the supervision tables, ``Verdicts`` as a pure function, and ``rescore`` against a full run.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.demo import generate
from etl.pipeline import run
from etl.scoring import metrics
from etl.scoring import scores as scoring
from etl.scoring.lost_points import lost_points_by_level_detail
from etl.scoring.schemes import load_scheme
from etl.supervision.rescore import rescore
from etl.warehouse.db import bulk_insert, make_engine, read_df
from etl.warehouse.distribution import backfill as fill_counties  # the load sets it; these rows skip the load
from etl.warehouse.schema import SUPERVISION_TABLES, ensure_schema
from etl.warehouse.verdicts import Verdicts, read_verdicts
from tests.test_scoring import AS_OF, K2, ROOT, S1, S3, S4, C, cfg_for, scenario

NOW = datetime(2026, 7, 21, 9, 0, 0)


def _excused_event() -> tuple[dict, dict]:
    """E9 of S4 on 07-07: excused by report R9 (raw status none); its AV-NONE lives in excused_findings."""
    event = {
        "incident_no": "E9",
        "unit_code": S4,
        "arrived_at": "2026-07-07 10:00:00",
        "ended_at": "2026-07-07 10:10:00",
        "window_s": 600.0,
        "covered_s": 0.0,
        "covered_fraction": 0.0,
        "gap_count": 0,
        "status": "excused",
        "raw_status": "none",
        "report_id": "R9",
    }
    finding = {
        "finding_key": "AV-NONE:E9",
        "rule_id": "AV-NONE",
        "article": "第五条、第十五条",
        "unit_code": S4,
        "incident_no": "E9",
        "occurred_at": "2026-07-07 10:00:00",
        "month": "2026-07",
        "detail": "警情 E9 无任何录像",
        "report_id": "R9",
    }
    return event, finding


def load(url: str) -> sa.Engine:
    """The scoring scenario plus the excused event E9, evaluated without any verdict."""
    engine = make_engine(url)
    event, finding = _excused_event()
    with engine.begin() as conn:
        ensure_schema(conn)
        for table, df in scenario().items():
            if table == "event_coverage":
                df = pd.concat([df, pd.DataFrame([event])], ignore_index=True)
            bulk_insert(conn, table, df)
        bulk_insert(conn, "excused_findings", pd.DataFrame([finding]))
        fill_counties(conn)
        _evaluate(conn)
    return engine


def _evaluate(conn: sa.Connection, verdicts: Verdicts | None = None) -> None:
    cfg = {**cfg_for(), "excuse_review": verdicts.excuse_mode} if verdicts is not None else cfg_for()
    metrics.compute(conn, AS_OF, cfg, verdicts=verdicts)
    scoring.compute(conn, AS_OF, cfg, run_id=7, integrity_checked=True, verdicts=verdicts)


def _key(conn: sa.Connection, rule: str, **where: str) -> str:
    cond = " AND ".join(f"{c} = :{c}" for c in where)
    keys = read_df(conn, f"SELECT finding_key FROM findings WHERE rule_id = :r AND {cond}", {"r": rule, **where})
    assert len(keys) == 1
    return str(keys["finding_key"].iloc[0])


def _state(conn: sa.Connection, key: str, state: str = "exempted") -> None:
    conn.execute(
        sa.text(
            "INSERT INTO sup_finding_state (finding_key, state, category, reason, version, updated_by, updated_at)"
            " VALUES (:k, :s, '数据错误', '测试', 1, 'legal', :t)"
        ),
        {"k": key, "s": state, "t": NOW},
    )


def _excuse(conn: sa.Connection, incident: str, verdict: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO sup_excuse_reviews (incident_no, report_id, verdict, reason, by_user, at, version)"
            " VALUES (:i, 'R9', :v, '测试', 'legal', :t, 1)"
        ),
        {"i": incident, "v": verdict, "t": NOW},
    )


def _total(conn: sa.Connection, unit: str, period: str = "2026-07") -> pd.Series:
    df = read_df(conn, "SELECT * FROM v_unit_scores WHERE period = :p AND unit_code = :u", {"p": period, "u": unit})
    return df.iloc[0]


def _item(conn: sa.Connection, unit: str, item: str) -> list:
    df = read_df(
        conn,
        "SELECT objects, clean, score FROM v_unit_item_scores WHERE period = '2026-07' AND unit_code = :u"
        " AND item_id = :i",
        {"u": unit, "i": item},
    )
    return df.iloc[0].tolist()


def _metric(conn: sa.Connection, unit: str, metric: str) -> tuple[float, float]:
    df = read_df(
        conn,
        "SELECT numerator, denominator FROM metrics WHERE period = '2026-07' AND unit_code = :u AND metric_id = :m",
        {"u": unit, "m": metric},
    )
    return float(df["numerator"].iloc[0]), float(df["denominator"].iloc[0])


# --- Verdicts, pure ----------------------------------------------------------------------------------


def test_counting_drops_exempted_and_adds_excuses_not_effective() -> None:
    findings = pd.DataFrame({"finding_key": ["A:1", "A:2", "B:1"], "rule_id": ["A", "A", "B"]})
    excused = pd.DataFrame(
        {
            "finding_key": ["AV-NONE:J1", "AV-NONE:J2", "AV-NONE:J3"],
            "rule_id": "AV-NONE",
            "incident_no": ["J1", "J2", "J3"],
        }
    )
    v = Verdicts(frozenset({"A:2", "AV-NONE:J3"}), {"J1": "rejected", "J2": "accepted", "J3": "rejected"})
    assert v.counting(findings, excused)["finding_key"].tolist() == ["A:1", "B:1", "AV-NONE:J1"]
    assert Verdicts().counting(findings, excused)["finding_key"].tolist() == ["A:1", "A:2", "B:1"]
    required = Verdicts(excuses={"J2": "accepted"}, excuse_mode="required")
    assert required.counting(findings.iloc[:0], excused)["finding_key"].tolist() == ["AV-NONE:J1", "AV-NONE:J3"]
    assert not Verdicts(excuses={"J2": "accepted"}).excused_may_count and required.excused_may_count
    with pytest.raises(ValueError):
        Verdicts(excuse_mode="sometimes")


# --- applied in metrics and scores -------------------------------------------------------------------


def test_exempting_the_only_finding_of_an_object_makes_it_clean(warehouse: str) -> None:
    engine = load(warehouse)
    with engine.begin() as conn:
        assert _total(conn, S1)["total"] == 80 and _item(conn, S1, "onsite_recording") == [3, 1, 10]
        assert _metric(conn, S1, "whole_process_rate") == (1, 3)
        _state(conn, _key(conn, "AV-NONE", incident_no="E2"))
        _state(conn, _key(conn, "AV-MEASURE", action_id="A2"), state="confirmed")  # confirmed: counts as before
        v = read_verdicts(conn, cfg_for())
        assert len(v.exempted) == 1
        _evaluate(conn)  # verdicts=None: read from the warehouse
        assert _item(conn, S1, "onsite_recording") == [3, 2, 20]
        assert _total(conn, S1)["total"] == 90
        assert _metric(conn, S1, "whole_process_rate") == (2, 3)  # E2's AV findings all exempted: fully recorded
        assert _item(conn, C, "onsite_recording")[:2] == [9, 8]  # and up the hierarchy (E9 excused: clean)
        assert _total(conn, "140401520000")["total"] == 77  # S2 untouched (its AV-MEASURE only confirmed)
        # the lost points no longer name it
        items = read_df(conn, "SELECT * FROM v_unit_item_scores WHERE period = '2026-07'")
        mt = read_df(conn, "SELECT * FROM metrics WHERE period = '2026-07'")
        scheme = load_scheme(ROOT / "config" / "schemes" / "measures-2026.yaml")
        lost, _ = lost_points_by_level_detail(conn, "2026-07", [S1], scheme, items[items["unit_code"] == S1], mt)
        assert "AV-NONE" not in set(lost["rule_id"].dropna()) and len(lost) > 0
    engine.dispose()


def test_an_exempted_veto_finding_vetoes_nothing(warehouse: str) -> None:
    engine = load(warehouse)
    with engine.begin() as conn:
        assert _total(conn, S3)[["total", "veto", "grade"]].tolist() == [59, 1, "不达标"]
        _state(conn, _key(conn, "INTEGRITY-HASH", clip_id="C3"))
        _evaluate(conn)
        assert _total(conn, S3)[["total", "veto", "grade"]].tolist() == [100, 0, "优秀"]
        assert _total(conn, K2)["veto"] == 0 and _total(conn, C)["veto"] == 0
    engine.dispose()


def test_a_rejected_excuse_makes_its_av_findings_count(warehouse: str) -> None:
    engine = load(warehouse)
    with engine.begin() as conn:
        assert _item(conn, S4, "onsite_recording") == [2, 2, 30]  # E9 excused: clean
        assert _metric(conn, S4, "whole_process_rate") == (2, 2)
        assert "AV-NONE:E9" not in set(read_df(conn, "SELECT finding_key FROM v_findings")["finding_key"])
        _excuse(conn, "E9", "rejected")
        _evaluate(conn)
        assert _item(conn, S4, "onsite_recording") == [2, 1, 15]
        assert _total(conn, S4)["total"] == 65
        assert _metric(conn, S4, "whole_process_rate") == (1, 2)  # 全程记录率 falls
        view = read_df(conn, "SELECT finding_key, rule_id, review_state FROM v_findings WHERE incident_no = 'E9'")
        assert view.values.tolist() == [["AV-NONE:E9", "AV-NONE", "open"]]
        # exempting that finding in turn: clean and fully recorded again
        _state(conn, "AV-NONE:E9")
        _evaluate(conn)
        assert _item(conn, S4, "onsite_recording") == [2, 2, 30] and _metric(conn, S4, "whole_process_rate") == (2, 2)
    engine.dispose()


def test_required_mode_counts_a_pending_excuse(warehouse: str) -> None:
    engine = load(warehouse)
    with engine.begin() as conn:
        in_view = "SELECT finding_key FROM v_findings WHERE incident_no = 'E9'"
        assert read_df(conn, in_view).empty  # auto mode: the excuse counts
        _evaluate(conn, Verdicts(excuse_mode="required"))
        assert _item(conn, S4, "onsite_recording") == [2, 1, 15]
        assert _metric(conn, S4, "whole_process_rate") == (1, 2)
        assert read_df(conn, in_view)["finding_key"].tolist() == ["AV-NONE:E9"]  # pending: the view lists it
        _excuse(conn, "E9", "accepted")
        _evaluate(conn, read_verdicts(conn, {**cfg_for(), "excuse_review": "required"}))
        assert _item(conn, S4, "onsite_recording") == [2, 2, 30]
        assert _metric(conn, S4, "whole_process_rate") == (2, 2)
        assert read_df(conn, in_view).empty  # accepted: excused again
    engine.dispose()


def test_an_exempted_late_upload_counts_as_timely(warehouse: str) -> None:
    engine = load(warehouse)
    with engine.begin() as conn:
        assert _metric(conn, "140401520000", "timely_import_rate") == (1, 2)
        assert _item(conn, "140401520000", "timely_upload") == [2, 1, 2]
        _state(conn, _key(conn, "UPLOAD-LATE", clip_id="C2a"))
        _evaluate(conn)
        assert _metric(conn, "140401520000", "timely_import_rate") == (2, 2)
        assert _item(conn, "140401520000", "timely_upload") == [2, 2, 4]  # the clip is clean: full points
    engine.dispose()


# --- views ----------------------------------------------------------------------------------------


def test_supervision_views(warehouse: str) -> None:
    engine = load(warehouse)
    with engine.begin() as conn:
        e2 = _key(conn, "AV-NONE", incident_no="E2")
        _state(conn, e2)
        for key, decision in [(e2, "rejected"), (e2, None), ("AV-NONE:GONE", None)]:
            conn.execute(
                sa.text(
                    "INSERT INTO sup_appeals (finding_key, unit_code, reason, filed_by, filed_at, late, decision,"
                    " version) VALUES (:k, :u, '申诉理由', 'county', :t, 0, :d, 1)"
                ),
                {"k": key, "u": S1, "t": NOW, "d": decision},
            )
        for key in (e2, "AV-NONE:GONE"):
            conn.execute(
                sa.text(
                    "INSERT INTO sup_reviews (finding_key, verdict, category, reason, by_user, role, at, source)"
                    " VALUES (:k, 'exempt', '不可抗力', '理由', 'legal', 'legal', :t, 'review')"
                ),
                {"k": key, "t": NOW},
            )
        f = read_df(conn, "SELECT * FROM v_findings").set_index("finding_key")
        assert f.loc[e2, "review_state"] == "exempted" and f.loc[e2, "appeal_state"] == "pending"  # the latest
        others = f.drop(index=e2)
        assert set(others["review_state"]) == {"open"} and others["appeal_state"].isna().all()
        assert f["notice_id"].isna().all() and "month" in f.columns
        r = read_df(conn, "SELECT * FROM v_reviews ORDER BY review_id")
        assert r[["finding_key", "verdict", "orphaned"]].values.tolist() == [
            [e2, "exempt", 0],
            ["AV-NONE:GONE", "exempt", 1],
        ]
        a = read_df(conn, "SELECT * FROM v_appeals ORDER BY appeal_id")
        assert a["decision"].tolist()[0] == "rejected" and a["orphaned"].tolist() == [0, 0, 1]
        assert {"appeal_id", "finding_key", "unit_code", "reason", "filed_by", "filed_at", "decided_by"} <= set(a)

        # publication: version 1 of 2026-07 as the scores are now, then the scores change
        assert read_df(conn, "SELECT * FROM v_restatement").empty
        conn.execute(
            sa.text(
                "INSERT INTO sup_publications (period, version, scheme_id, scheme_version, reason, published_by,"
                " published_at) VALUES ('2026-07', 1, 'measures-2026', '2026.1', '发布', 'legal', :t)"
            ),
            {"t": NOW},
        )
        pid = conn.execute(sa.text("SELECT publication_id FROM sup_publications")).scalar()
        conn.execute(
            sa.text(
                "INSERT INTO sup_published_scores (publication_id, period, version, unit_code, unit_level, total,"
                " grade, rank, veto) SELECT :p, period, 1, unit_code, unit_level, total, grade, rank, veto"
                " FROM unit_scores WHERE active = 1 AND period = '2026-07'"
            ),
            {"p": pid},
        )
        ps = read_df(conn, "SELECT * FROM v_published_scores")
        assert len(ps) == 8 and set(ps["version"]) == {1} and set(ps["published_by"]) == {"legal"}
        assert read_df(conn, "SELECT * FROM v_restatement").empty  # published = current
        _evaluate(conn)  # the exemption of E2 now counts: S1, K1 and the city change
        rs = read_df(conn, "SELECT * FROM v_restatement ORDER BY unit_code").set_index("unit_code")
        assert set(rs.index) >= {S1} and S3 not in rs.index
        assert rs.loc[S1, ["published_version", "published_total", "current_total", "delta"]].tolist() == [
            1,
            80,
            90,
            10,
        ]
    engine.dispose()


# --- rescore --------------------------------------------------------------------------------------------


def _figures(url: str) -> dict[str, list]:
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table, order in (
            ("metrics", "period, unit_code, metric_id"),
            ("unit_scores", "scheme_id, period, unit_code"),
            ("unit_item_scores", "scheme_id, period, unit_code, item_id"),
        ):
            out[table] = [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))]
    engine.dispose()
    return out


def test_rescore_equals_a_full_run_with_the_same_verdicts(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    generate(demo, scale="small", seed=2026, media=False)
    src = demo / "sources.yaml"
    a, b = f"sqlite:///{tmp_path / 'a.sqlite'}", f"sqlite:///{tmp_path / 'b.sqlite'}"
    run(src, warehouse=a, progress=False)
    before = _figures(a)
    engine = sa.create_engine(a)
    with engine.begin() as conn:
        f = read_df(conn, "SELECT finding_key, rule_id FROM findings ORDER BY finding_key")
        chosen = [f.loc[f["rule_id"] == r, "finding_key"].iloc[0] for r in ("AV-NONE", "UPLOAD-LATE", "DOC-MISSING")]
        for key in chosen:
            _state(conn, key)
        excused = read_df(conn, "SELECT incident_no FROM excused_findings ORDER BY incident_no")
        rejected = str(excused["incident_no"].iloc[0])
        _excuse(conn, rejected, "rejected")
        sup = {t: read_df(conn, f"SELECT * FROM {t}") for t in SUPERVISION_TABLES}
        out = rescore(conn)
    engine.dispose()
    assert out["unit_scores"] > 0 and out["metrics"] > 0
    after = _figures(a)
    assert after != before  # the verdicts changed something
    # the same verdicts in a fresh warehouse before its first run: the run applies them itself
    engine = make_engine(b)
    with engine.begin() as conn:
        ensure_schema(conn)
        for t, df in sup.items():
            if len(df):
                bulk_insert(conn, t, df)
    engine.dispose()
    run(src, warehouse=b, progress=False)
    assert _figures(b) == after


def test_rescore_without_an_evaluation_writes_nothing(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        ensure_schema(conn)
        assert rescore(conn)["unit_scores"] == 0
        assert read_df(conn, "SELECT COUNT(*) AS n FROM unit_scores")["n"].iloc[0] == 0
    engine.dispose()
