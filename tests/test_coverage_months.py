"""The 现场记录 heatmap's tally (``coverage_months``, written with the coverage): the same figures as counting the
events, for every scope and period, on SQLite and PostgreSQL; a warehouse without the tally counts the events."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import streamlit as st

from dashboard import queries
from etl.demo import generate
from etl.pipeline import run
from tests.etl_fixtures import query

PERIODS = ("2026-07", "2026-Q3", "2026", "2025-12", "2024")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cov_months")
    generate(d / "demo", scale="small", seed=2026, media=False)
    return d / "demo" / "sources.yaml"


def _both(url: str, scope, unit, period: str) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: ANN001
    st.cache_data.clear()
    tally = queries.coverage_by_unit_month(url, scope, unit, period)
    st.cache_data.clear()
    original = queries._has_month_tally
    queries._has_month_tally = lambda _url: False  # the events counted, as before the tally
    try:
        counted = queries.coverage_by_unit_month(url, scope, unit, period)
    finally:
        queries._has_month_tally = original
    return tally, counted


def test_the_tally_equals_counting_the_events(demo: Path, warehouse: str) -> None:
    assert run(demo, warehouse=warehouse, progress=False).status == "ok"
    assert queries._has_month_tally(warehouse)
    units = [r[0] for r in query(warehouse, "SELECT unit_code FROM org_units ORDER BY unit_code")]
    county = query(warehouse, "SELECT unit_code FROM org_units WHERE level = 'county' ORDER BY unit_code")[0][0]
    below = tuple(u for u in units if u.startswith(county[:6]))
    seen = 0
    for scope, unit in ((None, None), (None, county), (below, None), (below, below[-1])):
        for period in PERIODS:
            tally, counted = _both(warehouse, scope, unit, period)
            pd.testing.assert_frame_equal(
                tally.astype({"events": "int64", "ok": "int64"}),
                counted.astype({"events": "int64", "ok": "int64"}),
                check_dtype=False,
            )
            seen += int(tally["events"].sum())
    assert seen > 1000  # the comparison saw real months of events
    total = query(warehouse, "SELECT SUM(events), COUNT(*) FROM coverage_months")[0]
    assert int(total[0]) == query(warehouse, "SELECT COUNT(*) FROM event_coverage WHERE arrived_at IS NOT NULL")[0][0]


def test_a_warehouse_without_the_tally_counts_the_events(demo: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(demo, warehouse=url, progress=False)
    before = _both(url, None, None, "2026")[0]
    import sqlalchemy as sa

    eng = sa.create_engine(url)
    with eng.begin() as conn:  # as a warehouse of before the tally, until its next run
        conn.exec_driver_sql("DELETE FROM coverage_months")
    eng.dispose()
    assert not queries._has_month_tally(url)
    st.cache_data.clear()
    pd.testing.assert_frame_equal(queries.coverage_by_unit_month(url, None, None, "2026"), before, check_dtype=False)
