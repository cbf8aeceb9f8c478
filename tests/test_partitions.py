"""Processing by partition (etl.warehouse.partitions, etl.evaluation._by_partition): the evaluation one county
group at a time gives the derived tables the whole evaluation gives, including what crosses counties (an officer
attending another county's event, a clip tagged with another county's case)."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from etl.demo import generate
from etl.evaluation import evaluate
from etl.pipeline import run
from etl.warehouse import clip_runs
from etl.warehouse.distribution import CROSS_COUNTY_JOINS
from etl.warehouse.partitions import WHOLE, Partition, group, plan
from tests.sqljoins import Stats, find_violations
from tests.test_distribution import COUNTY_A, COUNTY_B

AS_OF = datetime(2026, 11, 28, 23, 59, 59)  # the small demo's evaluation date
DERIVED = [
    "event_coverage",
    "event_gaps",
    "coverage_months",
    "findings",
    "excused_findings",
    "finding_officers",
    "officer_records",
    "data_quality",
    "metrics",
    "unit_scores",
    "unit_item_scores",
]
VOLATILE = {"first_seen_run", "last_seen_run"}


def test_counties_are_packed_in_code_order_within_the_budget() -> None:
    counts = {"B": 40, "A": 30, "C": 100, "D": 10, "E": 5}
    assert group(counts, 70) == [(("A", "B"), 70), (("C",), 100), (("D", "E"), 15)]
    assert group(counts, 1000) == [(("A", "B", "C", "D", "E"), 185)]
    assert group(counts, 1) == [(("A",), 30), (("B",), 40), (("C",), 100), (("D",), 10), (("E",), 5)]
    assert group({}, 10) == []


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("partdemo") / "small"
    generate(out, scale="small", seed=2026)
    return out


def _table(conn: sa.Connection, name: str) -> pd.DataFrame:
    df = pd.read_sql_query(sa.text(f"SELECT * FROM {name}"), conn)
    df = df.drop(columns=[c for c in df.columns if c in VOLATILE])
    if name == "data_quality":
        df = df[df["current"] == 1]
    for c in df.columns:
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
            df[c] = df[c].astype(object)
    keys = df.astype(str)  # every column, as text: one total order whatever the dtypes
    return df.loc[keys.sort_values(list(keys.columns), kind="stable").index].reset_index(drop=True)


def _derived(conn: sa.Connection) -> dict[str, pd.DataFrame]:
    return {name: _table(conn, name) for name in DERIVED}


def _cross_county(conn: sa.Connection) -> tuple[str, str]:
    """Make two things cross the counties: an officer of county B attends an event of county A and records all
    of it on a device of B; a clip of a B device is tagged with a case of A during one of its actions.  Returns
    (the event, the action)."""
    officer, device = conn.execute(
        sa.text(
            "SELECT a.police_no, a.device_sn FROM device_assignments a JOIN devices d ON d.device_sn = a.device_sn "
            "JOIN org_units u ON u.unit_code = d.unit_code WHERE u.county_code = :b AND a.to_at IS NULL "
            "ORDER BY a.police_no LIMIT 1"
        ),
        {"b": COUNTY_B},
    ).one()
    incident, arrived, ended = conn.execute(
        sa.text(
            "SELECT e.incident_no, e.arrived_at, e.ended_at FROM event_coverage e WHERE e.county_code = :a "
            "AND e.status = 'none' ORDER BY e.incident_no LIMIT 1"
        ),
        {"a": COUNTY_A},
    ).one()
    action, case_no, started, ended_a = conn.execute(
        sa.text(
            "SELECT f.action_id, f.case_no, a.started_at, a.ended_at FROM findings f "
            "JOIN case_actions a ON a.action_id = f.action_id AND a.county_code = f.county_code "
            "WHERE f.rule_id = 'AV-MEASURE' AND f.county_code = :a ORDER BY f.action_id LIMIT 1"
        ),
        {"a": COUNTY_A},
    ).one()
    conn.execute(
        sa.text("INSERT INTO incident_officers (incident_no, police_no, county_code) VALUES (:i, :p, :a)"),
        {"i": incident, "p": officer, "a": COUNTY_A},
    )
    clips = [
        ("XCOUNTY-1", officer, arrived, ended, incident, None),
        ("XCOUNTY-2", None, started, ended_a, None, case_no),  # no wearer: only the tag links it
    ]
    for clip_id, police_no, start, end, inc, case in clips:
        conn.execute(
            sa.text(
                "INSERT INTO clips (clip_id, device_sn, police_no, started_at, ended_at, imported_at, incident_no, "
                "case_no, is_evidence, updated_at, county_code) VALUES (:c, :d, :p, :s, :e, :e, :i, :k, 0, :e, :b)"
            ),
            {"c": clip_id, "d": device, "p": police_no, "s": start, "e": end, "i": inc, "k": case, "b": COUNTY_B},
        )
    clip_runs.rebuild(conn)
    return incident, action


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_by_partition_equals_whole(
    backend: str, demo_dir: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    src = tmp_path / "src"
    shutil.copytree(demo_dir, src)
    url = f"sqlite:///{tmp_path / 'w.sqlite'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    assert run(src / "sources.yaml", url, progress=False).status == "ok"
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            incident, action = _cross_county(conn)
            assert plan(conn, 10**9) == [WHOLE]  # within the budget: evaluated whole, as a city is
            parts = plan(conn, 1)  # every county a group of its own
            assert len(parts) >= 2 and all(isinstance(p, Partition) and not p.whole for p in parts)
            assert {COUNTY_A, COUNTY_B} <= {c for p in parts for c in p.counties or ()}

            whole = evaluate(conn, as_of=AS_OF, integrity_checked=True, partitions=[WHOLE])
            expected = _derived(conn)
            sent: list[tuple[str, str]] = []

            def keep(c, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
                sent.append((c.dialect.name, statement))

            sa.event.listen(engine, "before_cursor_execute", keep)
            try:
                split = evaluate(conn, as_of=AS_OF, integrity_checked=True, partitions=parts)
            finally:
                sa.event.remove(engine, "before_cursor_execute", keep)
            got = _derived(conn)

            # the crossings mattered: the B officer's clip covers the A event, the tagged clip supports the action
            status = conn.execute(
                sa.text("SELECT status FROM event_coverage WHERE incident_no = :i"), {"i": incident}
            ).scalar_one()
            measure = conn.execute(
                sa.text("SELECT COUNT(*) FROM findings WHERE rule_id = 'AV-MEASURE' AND action_id = :a"), {"a": action}
            ).scalar_one()
    finally:
        engine.dispose()
    assert status == "full" and measure == 0
    # the partitions' reads join distributed tables on the key too (their crossings are IN lists, not joins)
    stats = Stats()
    bad = [
        (v.message, sql[:200])
        for dialect, sql in sent
        for v in find_violations(sql, dialect, stats=stats)
        if not (v.pairs and v.pairs <= set(CROSS_COUNTY_JOINS))  # declared: a tag join
    ]
    assert stats.distributed_joins >= 10 and not bad, (stats, bad)
    assert any("county_code IN" in sql for _d, sql in sent)
    assert whole["partitions"] == 1 and split["partitions"] == len(parts)
    assert split["findings"] == whole["findings"] and split["data_quality"] == whole["data_quality"]
    assert sum(whole["findings"].values()) > 500
    assert whole["findings"]["INTEGRITY-HASH"] + whole["findings"]["INTEGRITY-MISSING"] > 0  # the media rules ran
    for name in DERIVED:
        assert len(expected[name]) > 0 or name == "excused_findings", name
        pd.testing.assert_frame_equal(got[name], expected[name], check_exact=False, rtol=1e-9, obj=name)


def test_a_run_above_the_budget_evaluates_by_county(
    demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``etl run`` takes the budget from the settings: above it, the run says so and finds what a whole run
    finds, the first time and again in a second run."""
    from etl import settings

    whole_src, split_src = tmp_path / "a", tmp_path / "b"
    shutil.copytree(demo_dir, whole_src)
    shutil.copytree(demo_dir, split_src)
    whole = run(whole_src / "sources.yaml", f"sqlite:///{tmp_path / 'a.sqlite'}", progress=False)
    assert whole.rules["partitions"] == 1 and "按区县分组评估" not in whole.summary()

    (tmp_path / "s.yaml").write_text("etl:\n  partition_rows: 1\n", encoding="utf-8")
    monkeypatch.setenv(settings.ENV, str(tmp_path / "s.yaml"))
    settings.load.cache_clear()
    try:
        url = f"sqlite:///{tmp_path / 'b.sqlite'}"
        first = run(split_src / "sources.yaml", url, progress=False)
        again = run(split_src / "sources.yaml", url, progress=False)
    finally:
        monkeypatch.delenv(settings.ENV)
        settings.load.cache_clear()
    assert first.status == again.status == "ok"
    assert first.rules["partitions"] >= 2 and f"按区县分组评估：{first.rules['partitions']} 组" in first.summary()
    assert first.rules["findings"] == whole.rules["findings"] == again.rules["findings"]
    assert '"partitions": ' + str(first.rules["partitions"]) in first.stats_json()


def test_the_budget_must_be_a_positive_integer(tmp_path: Path) -> None:
    from etl import settings
    from etl.errors import ConfigError

    (tmp_path / "s.yaml").write_text("etl:\n  partition_rows: many\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="etl.partition_rows"):
        settings.load(str(tmp_path / "s.yaml"))
