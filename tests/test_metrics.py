"""Standard metrics (rules.md "Standard metrics") on tiny tables, pure and through the warehouse."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from etl.scoring import metrics as M
from etl.warehouse.db import bulk_insert, make_engine, read_df
from etl.warehouse.distribution import backfill as fill_counties  # the load sets it; these rows skip the load
from etl.warehouse.schema import ensure_schema

AS_OF = datetime(2026, 8, 10, 12, 0, 0)
R, A, B = "140400000000", "140401510000", "140401520000"


def test_periods_and_days() -> None:
    assert M.periods_of(["2026-07", "2026-08", "2026-02"]) == [
        "2026",
        "2026-02",
        "2026-07",
        "2026-08",
        "2026-Q1",
        "2026-Q3",
    ]
    assert M.period_bounds("2026-Q3") == (pd.Timestamp("2026-07-01"), pd.Timestamp("2026-10-01"))
    assert M.period_bounds("2026-12") == (pd.Timestamp("2026-12-01"), pd.Timestamp("2027-01-01"))
    # cut by the evaluation date: its day counts in full
    assert M.days_in_period("2026-07", AS_OF) == 31
    assert M.days_in_period("2026-08", AS_OF) == 10
    assert M.days_in_period("2026-Q3", AS_OF) == 41
    assert M.days_in_period("2026", AS_OF) == 222
    assert M.days_in_period("2026-09", AS_OF) == 0
    assert M.reference_time("2026-07", AS_OF) == pd.Timestamp("2026-07-31 23:59:59")
    assert M.reference_time("2026", AS_OF) == pd.Timestamp(AS_OF)


def test_case_links_need_positive_overlap() -> None:
    t = pd.Timestamp
    cases = pd.DataFrame({"case_no": ["X", "Y", "Z", "W"]})
    actions = pd.DataFrame(
        {"case_no": ["X", "Y", "Z"], "started_at": [t("2026-07-01 10:00")] * 3, "ended_at": [t("2026-07-01 11:00")] * 3}
    )
    clips = pd.DataFrame(
        {
            "case_no": ["X", "Y", "Y", "W"],
            "started_at": [t("2026-07-01 10:59"), t("2026-07-01 11:00"), t("2026-07-01 09:00"), t("2026-07-01 10:00")],
            "ended_at": [t("2026-07-01 12:00"), t("2026-07-01 11:30"), t("2026-07-01 10:00"), t("2026-07-01 11:00")],
        }
    )
    # X overlaps by a minute; Y only touches at both ends; Z has no clip; W has a clip but no action
    assert M.case_links(cases, actions, clips).tolist() == [True, False, False, False]


def _tiny() -> dict[str, pd.DataFrame]:
    units = pd.DataFrame(
        {"unit_code": [R, A, B], "parent_code": [None, R, R], "level": ["county", "station", "station"]}
    )
    events = pd.DataFrame(
        {
            "unit_code": [A, A, A, B],
            "month": ["2026-07", "2026-07", "2026-08", "2026-07"],
            "tagged": [True, False, True, False],
            "status": ["full", "excused", "none", "partial"],
            "covered_fraction": [1.0, 0.2, 0.0, 0.6],
        }
    )
    cases = pd.DataFrame({"unit_code": [A, A], "month": ["2026-07", "2026-08"], "linked": [True, False]})
    clips = pd.DataFrame({"unit_code": [A, A], "month": ["2026-07", "2026-08"], "clips": [10, 4], "late": [1, 0]})
    device_days = pd.DataFrame({"unit_code": [A, A], "month": ["2026-07", "2026-08"], "device_days": [20, 3]})
    devices = pd.DataFrame(
        {
            "device_sn": ["d1", "d2", "d3", "d4", "d5"],
            "unit_code": [A, A, A, A, B],
            "kind": ["bodycam", "bodycam", "bodycam", "phone", "bodycam"],
            "status": ["in_use", "lost", "repair", "in_use", "scrapped"],
            "status_since": pd.to_datetime(["2026-01-01", "2026-08-05", "2026-07-02", "2026-01-01", "2026-01-01"]),
        }
    )
    officers = pd.DataFrame({"unit_code": [A, A, A, B], "active": [1, 1, 0, 0]})
    return {
        "units": units,
        "events": events,
        "cases": cases,
        "clips": clips,
        "device_days": device_days,
        "devices": devices,
        "officers": officers,
    }


def test_compute_metrics_pure() -> None:
    d = _tiny()
    out = M.compute_metrics(d.pop("units"), ["2026-07", "2026-08"], AS_OF, **d)
    assert list(out.columns) == M.METRIC_COLUMNS
    assert set(out["metric_id"]) == set(M.METRICS)
    assert len(out) == 3 * 4 * len(M.METRICS)  # units x periods (2026, Q3, 07, 08) x metrics, empty ones included
    v = out.set_index(["period", "unit_code", "metric_id"])

    def row(p, u, m):  # noqa: ANN001, ANN202
        r = v.loc[(p, u, m)]
        return r["numerator"], r["denominator"], None if np.isnan(r["value"]) else round(r["value"], 6)

    assert row("2026-07", A, "incident_link_rate") == (1, 2, 0.5)
    assert row("2026-07", A, "whole_process_rate") == (2, 2, 1.0)  # excused counts
    assert row("2026-07", B, "whole_process_rate") == (0, 1, 0.0)
    assert row("2026-07", R, "mean_coverage") == (pytest.approx(1.8), 3, 0.6)
    assert row("2026-Q3", R, "incident_link_rate") == (2, 4, 0.5)
    assert row("2026-07", A, "case_link_rate") == (1, 1, 1.0)
    assert row("2026", A, "case_link_rate") == (1, 2, 0.5)
    assert row("2026-07", B, "case_link_rate") == (0, 0, None)  # empty denominator -> null, never 0 or 1
    assert row("2026-07", B, "timely_import_rate") == (0, 0, None)
    assert row("2026-Q3", A, "timely_import_rate") == (13, 14, round(13 / 14, 6))
    # usage: in_use devices now (d1, d4) x days (July 31, August cut at the 10th)
    assert row("2026-07", A, "usage_rate") == (20, 62, round(20 / 62, 6))
    assert row("2026-08", A, "usage_rate") == (3, 20, 0.15)
    assert row("2026", R, "usage_rate") == (23, 2 * 222, round(23 / 444, 6))
    assert row("2026-08", B, "usage_rate") == (0, 0, None)
    # issue: bodycams not scrapped/lost at the reference time / active officers
    assert row("2026-07", A, "issue_rate") == (3, 2, 1.5)  # d2 lost only on 08-05
    assert row("2026-08", A, "issue_rate") == (2, 2, 1.0)
    assert row("2026-07", B, "issue_rate") == (0, 0, None)
    assert row("2026", R, "issue_rate") == (2, 2, 1.0)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_metrics_in_warehouse(db: str, sqlite_url: str, request: pytest.FixtureRequest) -> None:
    url = sqlite_url if db == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    tables = {
        "org_units": pd.DataFrame(
            {
                "unit_code": [R, A, B],
                "name": ["县局", "甲所", "乙所"],
                "parent_code": [None, R, R],
                "level": ["county", "station", "station"],
            }
        ),
        "officers": pd.DataFrame(
            {
                "police_no": ["p1", "p2"],
                "name": ["甲", "乙"],
                "unit_code": [A, B],
                "kind": ["police", "auxiliary"],
                "leader": [0, 0],
                "active": [1, 1],
            }
        ),
        "devices": pd.DataFrame(
            {
                "device_sn": ["d1", "d2"],
                "kind": ["bodycam", "phone"],
                "unit_code": [A, B],
                "status": ["in_use", "in_use"],
                "status_since": ["2026-01-01 00:00:00", "2026-01-01 00:00:00"],
            }
        ),
        "clips": pd.DataFrame(
            {
                "clip_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
                "device_sn": ["d1", "d1", "d1", "d2", "d2", "d1"],
                "started_at": [
                    "2026-07-01 08:00:00",
                    "2026-07-01 23:50:00",
                    "2026-07-03 08:00:00",
                    "2026-08-01 08:00:00",
                    "2026-08-11 08:00:00",
                    "2026-07-03 07:55:00",
                ],
                "ended_at": [
                    "2026-07-01 08:10:00",
                    "2026-07-02 00:10:00",
                    "2026-07-03 08:10:00",
                    "2026-08-01 08:10:00",
                    "2026-08-11 08:10:00",
                    "2026-07-03 08:05:00",
                ],
                # c3 overlaps k1's action; c6 only touches k2's action (ends when it starts): not linked
                "incident_no": ["i1", None, None, None, None, None],
                "case_no": [None, None, "k1", None, None, "k2"],
                "updated_at": "2026-08-01 00:00:00",
            }
        ),
        "cases": pd.DataFrame(
            {
                "case_no": ["k1", "k2"],
                "unit_code": [A, A],
                "procedure": "general",
                "source": "ex_officio",
                "is_major": 0,
                "emergency_start": 0,
                "registered_at": ["2026-07-02 09:00:00", "2026-07-02 09:00:00"],
                "enforcement_power": 0,
                "updated_at": "2026-07-02 09:00:00",
            }
        ),
        "case_actions": pd.DataFrame(
            {
                "action_id": ["a1", "a2"],
                "case_no": ["k1", "k2"],
                "action_type": "inquiry",
                "started_at": "2026-07-03 08:05:00",
                "ended_at": "2026-07-03 08:30:00",
                "updated_at": "2026-07-03 08:30:00",
            }
        ),
        "event_coverage": pd.DataFrame(
            {
                "incident_no": ["i1", "i2"],
                "unit_code": [A, A],
                "arrived_at": ["2026-07-01 07:59:00", "2026-07-05 07:59:00"],
                "ended_at": ["2026-07-01 08:20:00", "2026-07-05 08:20:00"],
                "covered_fraction": [0.5, 1.0],
                "status": ["partial", "full"],
            }
        ),
        # as media.upload_late writes it: the clip's device and start (occurred_at) come along
        "findings": pd.DataFrame(
            {
                "finding_key": ["UPLOAD-LATE:c3"],
                "rule_id": ["UPLOAD-LATE"],
                "unit_code": [A],
                "clip_id": ["c3"],
                "device_sn": ["d1"],
                "occurred_at": ["2026-07-03 08:00:00"],
                "month": ["2026-07"],
            }
        ),
    }
    try:
        with engine.begin() as conn:
            ensure_schema(conn)
            for name, df in tables.items():
                bulk_insert(conn, name, df)
            fill_counties(conn)
            assert M.data_months(conn, AS_OF) == ["2026-07", "2026-08"]  # c5 is after the evaluation date
            n = M.compute(conn, AS_OF, {})
            assert n == 3 * 4 * len(M.METRICS)
        df = read_df(engine, "SELECT * FROM metrics").set_index(["period", "unit_code", "metric_id"])
        got = {k: (r["numerator"], r["denominator"], r["value"]) for k, r in df.iterrows()}
        assert got[("2026-07", A, "timely_import_rate")] == (3, 4, pytest.approx(3 / 4))
        assert got[("2026-07", A, "usage_rate")] == (2, 31, pytest.approx(2 / 31))  # c2 counts on 07-01 only
        assert got[("2026-08", B, "usage_rate")] == (1, 10, pytest.approx(0.1))  # c5 after as_of left out
        assert got[("2026-07", A, "case_link_rate")] == (1, 2, 0.5)
        assert got[("2026-07", A, "incident_link_rate")] == (1, 2, 0.5)
        assert got[("2026-07", A, "mean_coverage")] == (1.5, 2, 0.75)
        assert got[("2026-07", A, "issue_rate")] == (1, 1, 1.0)
        assert got[("2026-07", B, "issue_rate")][:2] == (0, 1)  # a phone is not a bodycam
        nulls = got[("2026-08", A, "whole_process_rate")]
        assert nulls[:2] == (0, 0) and pd.isna(nulls[2])
    finally:
        engine.dispose()


@pytest.mark.parametrize("as_of", [datetime(2026, 3, 10, 23, 59, 59), datetime(2026, 12, 31, 23, 59, 59)])
def test_data_months_from_the_rules_frames_equal_the_sql_scan(tmp_path, as_of: datetime) -> None:  # noqa: ANN001
    """The months the findings step finds in the frames it read (``FindingsResult.months``, passed to
    ``data_months(found=...)``) are those data_months' SQL scan finds."""
    from etl.pipeline import run
    from etl.rules import config, findings
    from tests.etl_fixtures import base_tables, write_sources

    data = base_tables()
    log = data["access_log"]
    log.loc[log["log_id"] == "L0001", "at"] = "2026-02-10 10:00:00"  # a month of access records only
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(write_sources(tmp_path / "src", data=data), warehouse=wh, rules=False, progress=False)
    engine = make_engine(wh)
    with engine.connect() as conn, conn.begin() as tx:
        found = findings.compute(conn, as_of, config.load(None), integrity_checked=False)
        assert found.months is not None
        handed = M.data_months(conn, as_of, found=found.months, clip_months=M.clip_months(conn, as_of))
        by_sql = M.data_months(conn, as_of)  # the SQL scan, over the same findings
        tx.rollback()
    engine.dispose()
    assert handed == by_sql and "2026-02" in by_sql
