"""The fast path of ``etl.supervision.rescore`` equals the full recomputation (shared/spec/supervision.md
"Effective at once"): after rounds of random verdicts (exemptions, reopenings, excuses rejected and accepted)
on the small demo, on SQLite and PostgreSQL, the rows it leaves in ``metrics``, ``unit_scores`` and
``unit_item_scores`` are those of ``rescore(full=True)``; what the run kept is used only while it describes
the marts.
"""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from etl.pipeline import run
from etl.rules import config
from etl.scoring import kept
from etl.scoring.schemes import load_schemes
from etl.supervision.rescore import rescore
from etl.warehouse.db import make_engine, read_df
from tests.supervision_fixtures import load_pg

NOW = datetime(2026, 7, 21, 9, 0, 0)
ORDER = {
    "metrics": "period, unit_code, metric_id",
    "unit_scores": "scheme_id, period, unit_code",
    "unit_item_scores": "scheme_id, period, unit_code, item_id",
}


def _figures(conn: sa.Connection) -> dict[str, list[tuple]]:
    out = {}
    for table, order in ORDER.items():
        rows = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}")).fetchall()
        out[table] = [tuple(r) for r in rows]
    return out


def _set_state(conn: sa.Connection, key: str, state: str) -> None:
    conn.execute(sa.text("DELETE FROM sup_finding_state WHERE finding_key = :k"), {"k": key})
    conn.execute(
        sa.text(
            "INSERT INTO sup_finding_state (finding_key, state, category, reason, version, updated_by, updated_at)"
            " VALUES (:k, :s, '数据错误', '测试', 1, 'legal', :t)"
        ),
        {"k": key, "s": state, "t": NOW},
    )


def _excuse(conn: sa.Connection, incident: str, verdict: str) -> None:
    conn.execute(sa.text("DELETE FROM sup_excuse_reviews WHERE incident_no = :i"), {"i": incident})
    conn.execute(
        sa.text(
            "INSERT INTO sup_excuse_reviews (incident_no, report_id, verdict, reason, by_user, at, version)"
            " VALUES (:i, 'R', :v, '测试', 'legal', :t, 1)"
        ),
        {"i": incident, "v": verdict, "t": NOW},
    )


def _fast_equals_full(conn: sa.Connection) -> dict:
    """Rescore on the fast path, then on the full one: the same rows (returns the fast path's result)."""
    out = rescore(conn)
    assert out["path"] == "fast"
    fast = _figures(conn)
    full = rescore(conn, full=True)
    assert full["path"] == "full"
    assert _figures(conn) == fast
    return out


def _spot_checks(conn: sa.Connection) -> list[str]:
    """Spot-check reviews as etl.supervision.spotcheck.record leaves them: two events and one case with actions,
    clean so far, failed (item + SPOT-CHECK finding), one event passed; returns the three finding keys."""
    events = read_df(
        conn,
        """SELECT e.incident_no, e.unit_code, e.arrived_at FROM event_coverage e
           WHERE NOT EXISTS (SELECT 1 FROM findings f WHERE f.incident_no = e.incident_no)
           ORDER BY e.incident_no""",
    ).head(3)
    cases = read_df(
        conn,
        """SELECT c.case_no, c.unit_code, c.registered_at FROM cases c
           WHERE EXISTS (SELECT 1 FROM case_actions a WHERE a.case_no = c.case_no)
             AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.case_no = c.case_no)
           ORDER BY c.case_no""",
    ).head(1)
    assert len(events) == 3 and len(cases) == 1
    objects = [("events", *r) for r in events.itertuples(index=False)] + [
        ("cases", *r) for r in cases.itertuples(index=False)
    ]
    keys = []
    for i, (kind, obj, unit, at) in enumerate(objects):
        at = datetime.fromisoformat(str(at)[:19])
        verdict = "pass" if i == 2 else "fail"
        conn.execute(
            sa.text(
                "INSERT INTO sup_spotcheck_items (campaign_id, object_key, object_kind, unit_code, period, month,"
                " occurred_at, draw_order, verdict, failed_points, reviewed_by, reviewed_at, version)"
                " VALUES (7, :o, :k, :u, :p, :m, :t, :i, :v, :fp, 'legal', :now, 2)"
            ),
            {
                "o": obj,
                "k": kind,
                "u": unit,
                "p": at.strftime("%Y"),
                "m": at.strftime("%Y-%m"),
                "t": at,
                "i": i,
                "v": verdict,
                "fp": "16.2" if verdict == "fail" else None,
                "now": NOW,
            },
        )
        if verdict == "fail":
            key = f"SPOT-CHECK:{obj}:7"
            conn.execute(
                sa.text(
                    "INSERT INTO findings (finding_key, rule_id, article, unit_code, incident_no, case_no,"
                    " occurred_at, month, detail) VALUES (:k, 'SPOT-CHECK', '第十六条', :u, :inc, :case, :t, :m, '抽查')"
                ),
                {
                    "k": key,
                    "u": unit,
                    "inc": obj if kind == "events" else None,
                    "case": obj if kind == "cases" else None,
                    "t": at,
                    "m": at.strftime("%Y-%m"),
                },
            )
            keys.append(key)
    return keys


def _rounds(url: str) -> None:
    rng = random.Random(20260721)
    engine = make_engine(url)
    with engine.begin() as conn:
        before = _figures(conn)
        findings = read_df(conn, "SELECT finding_key, rule_id FROM findings ORDER BY finding_key")
        excused = read_df(conn, "SELECT DISTINCT incident_no FROM excused_findings ORDER BY incident_no")
        keys = findings["finding_key"].tolist()
        # round 1: one finding of every rule and 40 at random exempted, a few confirmed (which changes nothing)
        chosen = set(findings.groupby("rule_id")["finding_key"].first()) | set(rng.sample(keys, 40))
        for key in sorted(chosen):
            _set_state(conn, key, "exempted")
        for key in rng.sample(keys, 5):
            if key not in chosen:
                _set_state(conn, key, "confirmed")
        out = _fast_equals_full(conn)
        assert out["unit_scores"] > 0 and out["metrics"] > 0 and out["units"] > 0
        assert _figures(conn) != before  # the verdicts changed something
        # round 2: some reopened, more exempted, excuses rejected and accepted
        for key in rng.sample(sorted(chosen), 15):
            _set_state(conn, key, "open")
        for key in rng.sample(keys, 25):
            _set_state(conn, key, "exempted")
        incidents = excused["incident_no"].tolist()
        assert len(incidents) >= 5
        picked = rng.sample(incidents, 5)
        for inc in picked[:3]:
            _excuse(conn, inc, "rejected")
        for inc in picked[3:]:
            _excuse(conn, inc, "accepted")
        _fast_equals_full(conn)
        # round 3: one exemption of an AV finding of a rejected excuse's event, one excuse accepted again
        av = read_df(
            conn,
            "SELECT finding_key FROM excused_findings WHERE incident_no = :i ORDER BY finding_key",
            {"i": picked[0]},
        )
        if len(av):
            _set_state(conn, str(av["finding_key"].iloc[0]), "exempted")
        _excuse(conn, picked[1], "accepted")
        _fast_equals_full(conn)
        # round 4: spot-checks (a failed review is a SPOT-CHECK finding; passes count in 抽查合格率), then one
        # SPOT-CHECK finding exempted, then one review turned into a pass
        clean_sql = (
            "SELECT SUM(clean) FROM unit_item_scores WHERE item_id = :i AND unit_code = :u AND period = :p"
            " AND active = 1"
        )
        spots = _spot_checks(conn)
        first = read_df(conn, "SELECT unit_code, month FROM findings WHERE finding_key = :k", {"k": spots[0]}).iloc[0]
        where = {"i": "onsite_recording", "u": first["unit_code"], "p": first["month"]}
        clean_before = conn.execute(sa.text(clean_sql), where).scalar()
        out = _fast_equals_full(conn)
        assert conn.execute(sa.text(clean_sql), where).scalar() == clean_before - 1  # the failed event is unclean
        assert out["units"] > 0
        rate = read_df(conn, "SELECT numerator, denominator FROM metrics WHERE metric_id = 'spotcheck_pass_rate'")
        assert rate["denominator"].max() > 0 and rate["numerator"].max() > 0
        _set_state(conn, spots[0], "exempted")
        _fast_equals_full(conn)
        conn.execute(sa.text("DELETE FROM findings WHERE finding_key = :k"), {"k": spots[1]})
        conn.execute(
            sa.text("UPDATE sup_spotcheck_items SET verdict = 'pass' WHERE object_key = :o"),
            {"o": spots[1].split(":")[1]},
        )
        _fast_equals_full(conn)
        # round 5: nothing changed since: nothing written
        same = _figures(conn)
        assert rescore(conn)["unit_scores"] == 0 and _figures(conn) == same
    engine.dispose()


def test_fast_rescore_equals_full_sqlite(fresh_sqlite: str) -> None:
    _rounds(fresh_sqlite)


@pytest.mark.postgres
def test_fast_rescore_equals_full_postgresql(demo_sources: Path, pg_url: str) -> None:
    _rounds(load_pg(demo_sources, pg_url))


def test_kept_only_while_it_describes_the_marts(demo_sources: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    first = run(demo_sources, warehouse=url, progress=False)
    engine = make_engine(url)
    cfg = config.load(None)
    schemes = load_schemes(cfg)
    with engine.begin() as conn:
        as_of = first.as_of
        state = kept.read(conn, run_id=first.run_id, as_of=as_of, cfg=cfg, schemes=schemes)
        assert state is not None and not state.applied.exempted
        assert len(state.base.object_findings) > 0 and set(state.tallies) == {s["id"] for s in schemes}
        # another scheme or rule configuration: not valid
        assert kept.read(conn, run_id=first.run_id, as_of=as_of, cfg={**cfg, "x": 1}, schemes=schemes) is None
    engine.dispose()
    # a run without rules leaves the marts of the run before: what that run kept is stale, rescore goes full
    second = run(demo_sources, warehouse=url, progress=False, rules=False)
    engine = make_engine(url)
    with engine.begin() as conn:
        assert kept.read(conn, run_id=first.run_id, as_of=as_of, cfg=cfg, schemes=schemes) is None
        key = str(read_df(conn, "SELECT finding_key FROM findings ORDER BY finding_key")["finding_key"].iloc[0])
        _set_state(conn, key, "exempted")
        assert rescore(conn)["path"] == "full"
    engine.dispose()
    # a run with rules keeps again, with the verdicts it applied
    third = run(demo_sources, warehouse=url, progress=False)
    assert third.run_id > second.run_id
    engine = make_engine(url)
    with engine.begin() as conn:
        state = kept.read(conn, run_id=third.run_id, as_of=third.as_of, cfg=cfg, schemes=schemes)
        assert state is not None and state.applied.exempted == {key}
        assert rescore(conn)["path"] == "fast"
    engine.dispose()
