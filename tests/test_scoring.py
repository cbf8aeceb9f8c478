"""Scores on a small hand-computed example (rules.md "Assessment"), on SQLite and PostgreSQL.

Units: city C; counties K1 (stations S1, S2) and K2 (stations S3, S4, S5).
Evaluation date 2026-07-20 23:59:59; data in 2026-07 plus one clip in 2026-06.

measures-2026, period 2026-07, by hand:
  S1  on-site 3 events, 1 clean -> 10; everything else without objects -> full        = 80
  S2  on-site 30; AV action unclean -> 0; text 20; procedure 10;
      equipment 1 clean device = 6 - 4 x EQUIP-ADMIN (2 each) = -2 -> floor 0;
      upload 2 clips, 1 late -> 2; access 15                                          = 77
  S3  on-site 30, INTEGRITY-HASH -> veto: 100 capped at 59, 不达标                     = 59
  S4  on-site 30; text 2 cases, 1 clean -> 10; procedure 2 cases, 0 clean -> 0        = 80
  S5  same as S4                                                                       = 80
  station ranks: S4 1, S5 2 (tie: on-site 30 = 30, then unit_code), S1 3 (80 but on-site 10), S2 4, S3 5
  K1 = {K1, S1, S2}: on-site 5 events 3 clean -> 18; measure 0; text 20; procedure 10;
      equipment 0 (floor); upload 2; access 15                                         = 65
  K2 = {K2, S3, S4, S5}: 30 + 15 + 10 + 0 + 6 + 4 + 15 = 80, veto -> 59
  C: on-site 8 events 6 clean -> 22.5; measure 0; text 5 cases 3 clean -> 12; procedure 5 cases 1 clean -> 2;
      equipment 0; upload 3 clips 2 clean -> 8/3; access 15 = 54.1667 -> 54.17, veto (cap 59 does not bite)
platform-style, S2, 2026-07: issue 1 bodycam / 2 active officers -> 5; usage 2 device-days / (1 x 20 days) -> 1;
  timely 1/2 -> 5; incident link 1/2 -> 10; case link 1/1 -> 20; whole process 2/2 -> 30 = 71 (达标);
  year 2026: usage 2 / 201 days -> 10 x 2/201, total 70.0995 -> 70.10.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.errors import ConfigError
from etl.scoring import metrics
from etl.scoring import scores as scoring
from etl.scoring.inputs import Inputs, load_inputs
from etl.scoring.items import score_items
from etl.scoring.lost_points import BY_LEVEL_COLUMNS, lost_points_by_level, lost_points_by_level_detail
from etl.scoring.schemes import load_scheme, load_schemes, validate_scheme
from etl.scoring.totals import score_units
from etl.warehouse.db import bulk_insert, make_engine, read_df
from etl.warehouse.distribution import backfill as fill_counties  # the load sets it; these rows skip the load
from etl.warehouse.schema import ensure_schema

ROOT = Path(__file__).resolve().parent.parent
AS_OF = datetime(2026, 7, 20, 23, 59, 59)
C, K1, K2 = "140400000000", "140401000000", "140402000000"
S1, S2, S3, S4, S5 = "140401510000", "140401520000", "140402510000", "140402520000", "140402530000"


def cfg_for(active: str = "measures-2026", config_dir: Path | None = None) -> dict:
    return {
        "actions": {"inquiry": {"av": False}, "inspection": {"av": True}},
        "active_scheme": active,
        "dir": config_dir or ROOT / "config",
    }


def _ev(no, unit, day, status, frac):  # noqa: ANN001, ANN202
    return {
        "incident_no": no,
        "unit_code": unit,
        "arrived_at": f"2026-07-{day:02d} 10:00:00",
        "ended_at": f"2026-07-{day:02d} 10:10:00",
        "window_s": 600.0,
        "covered_s": 600.0 * frac,
        "covered_fraction": frac,
        "gap_count": 0,
        "status": status,
    }


def scenario() -> dict[str, pd.DataFrame]:
    units = pd.DataFrame(
        [
            (C, "长治市公安局", None, "city"),
            (K1, "一县局", C, "county"),
            (K2, "二县局", C, "county"),
            (S1, "甲所", K1, "station"),
            (S2, "乙所", K1, "station"),
            (S3, "丙所", K2, "station"),
            (S4, "丁所", K2, "station"),
            (S5, "戊所", K2, "station"),
        ],
        columns=["unit_code", "name", "parent_code", "level"],
    )
    officers = pd.DataFrame(
        [
            ("P21", "甲", S2, "police", 0, 1),
            ("P22", "乙", S2, "auxiliary", 0, 1),
            ("P23", "丙", S2, "police", 0, 0),
            ("P31", "丁", S3, "police", 1, 1),
        ],
        columns=["police_no", "name", "unit_code", "kind", "leader", "active"],
    )
    devices = pd.DataFrame(
        [
            ("D2", "bodycam", S2, "in_use", "2026-01-01 00:00:00"),
            ("D3", "bodycam", S3, "in_use", "2026-01-01 00:00:00"),
            ("D9", "bodycam", S3, "scrapped", "2026-07-15 00:00:00"),
        ],
        columns=["device_sn", "kind", "unit_code", "status", "status_since"],
    )
    clips = pd.DataFrame(
        [
            ("C2a", "D2", "2026-07-03 09:00:00", "2026-07-03 09:10:00", "2026-07-06 09:00:00", "E4", None),
            ("C2b", "D2", "2026-07-12 10:20:00", "2026-07-12 10:40:00", "2026-07-12 12:00:00", None, "CS2"),
            ("C3", "D3", "2026-07-10 08:00:00", "2026-07-10 08:30:00", "2026-07-10 12:00:00", None, None),
            ("C3b", "D3", "2026-06-10 08:00:00", "2026-06-10 08:30:00", "2026-06-10 12:00:00", None, None),
        ],
        columns=["clip_id", "device_sn", "started_at", "ended_at", "imported_at", "incident_no", "case_no"],
    )
    clips["updated_at"] = clips["imported_at"]
    cases = pd.DataFrame(
        [
            (no, unit, f"2026-07-{d:02d} 09:00:00")
            for no, unit, d in [("CS2", S2, 12), ("CS4a", S4, 5), ("CS4b", S4, 6), ("CS5a", S5, 5), ("CS5b", S5, 6)]
        ],
        columns=["case_no", "unit_code", "registered_at"],
    )
    cases = cases.assign(
        procedure="general",
        source="ex_officio",
        is_major=0,
        emergency_start=0,
        enforcement_power=0,
        updated_at=cases["registered_at"],
    )
    actions = pd.DataFrame(
        [
            ("A2", "CS2", "inspection", "2026-07-12 10:00:00", "2026-07-12 10:30:00"),
            ("A4a", "CS4a", "inquiry", "2026-07-05 10:00:00", "2026-07-05 11:00:00"),
            ("A4b", "CS4b", "inquiry", "2026-07-06 10:00:00", "2026-07-06 11:00:00"),
            ("A5a", "CS5a", "inquiry", "2026-07-05 10:00:00", "2026-07-05 11:00:00"),
            ("A5b", "CS5b", "inquiry", "2026-07-06 10:00:00", "2026-07-06 11:00:00"),
        ],
        columns=["action_id", "case_no", "action_type", "started_at", "ended_at"],
    )
    actions["updated_at"] = actions["started_at"]
    events = pd.DataFrame(
        [
            _ev("E1", S1, 1, "full", 1.0),
            _ev("E2", S1, 2, "none", 0.0),
            _ev("E3", S1, 3, "partial", 0.5),
            _ev("E4", S2, 3, "full", 1.0),
            _ev("E5", S2, 4, "full", 1.0),
            _ev("E6", S3, 5, "full", 1.0),
            _ev("E7", S4, 5, "full", 1.0),
            _ev("E8", S5, 5, "full", 1.0),
        ]
    )
    f = [
        ("AV-NONE", S1, {"incident_no": "E2"}),
        ("AV-GAP", S1, {"incident_no": "E3"}),
        ("AV-GAP", S1, {"incident_no": "E3"}),
        ("AV-OFFICER", S1, {"incident_no": "E3", "police_no": "P9"}),
        ("AV-MEASURE", S2, {"action_id": "A2", "case_no": "CS2"}),
        # as media.upload_late writes it: the clip's device and start (occurred_at) come along
        ("UPLOAD-LATE", S2, {"clip_id": "C2a", "device_sn": "D2", "occurred_at": "2026-07-03 09:00:00"}),
        ("INTEGRITY-HASH", S3, {"clip_id": "C3"}),
        # DOC-MISSING without case_no: resolved through the action
        ("DOC-MISSING", S4, {"action_id": "A4a", "doc_type": "inquiry_record"}),
        ("DOC-SIGNATURE", S5, {"case_no": "CS5a", "doc_id": "DOC5"}),
        ("START-APPROVAL", S4, {"case_no": "CS4a"}),
        ("START-APPROVAL", S4, {"case_no": "CS4b"}),
        ("START-APPROVAL", S5, {"case_no": "CS5a"}),
        ("START-APPROVAL", S5, {"case_no": "CS5b"}),
    ]
    f += [("EQUIP-ADMIN", S2, {})] * 4
    findings = pd.DataFrame(
        [
            {
                "finding_key": f"{r}:T{i + 1}",  # unique here: some rows repeat a breach on purpose
                "rule_id": r,
                "unit_code": u,
                "month": "2026-07",
                "occurred_at": "2026-07-10 00:00:00",
                "detail": "测试",
                **keys,
            }
            for i, (r, u, keys) in enumerate(f)
        ]
    )
    return {
        "org_units": units,
        "officers": officers,
        "devices": devices,
        "clips": clips,
        "cases": cases,
        "case_actions": actions,
        "event_coverage": events,
        "findings": findings,
    }


def load(url: str, active: str = "measures-2026", config_dir: Path | None = None) -> sa.Engine:
    engine = make_engine(url)
    with engine.begin() as conn:
        ensure_schema(conn)
        for table, df in scenario().items():
            bulk_insert(conn, table, df)
        fill_counties(conn)
        cfg = cfg_for(active, config_dir)
        metrics.compute(conn, AS_OF, cfg)
        scoring.compute(conn, AS_OF, cfg, run_id=7, integrity_checked=True)
    return engine


def _scores(engine: sa.Engine, period: str) -> pd.DataFrame:
    df = read_df(engine, "SELECT * FROM v_unit_scores WHERE period = :p", {"p": period})
    return df.set_index("unit_code")


def _items(engine: sa.Engine, period: str) -> pd.DataFrame:
    df = read_df(engine, "SELECT * FROM v_unit_item_scores WHERE period = :p", {"p": period})
    return df.set_index(["unit_code", "item_id"])


def check_measures(engine: sa.Engine) -> None:
    s = _scores(engine, "2026-07")
    assert s["total"].to_dict() == pytest.approx({S1: 80, S2: 77, S3: 59, S4: 80, S5: 80, K1: 65, K2: 59, C: 54.17})
    assert s["veto"].to_dict() == {S1: 0, S2: 0, S3: 1, S4: 0, S5: 0, K1: 0, K2: 1, C: 1}
    assert s["grade"].to_dict() == {
        S1: "达标",
        S2: "达标",
        S3: "不达标",
        S4: "达标",
        S5: "达标",
        K1: "达标",
        K2: "不达标",
        C: "不达标",
    }
    assert s["rank"].to_dict() == {S4: 1, S5: 2, S1: 3, S2: 4, S3: 5, K1: 1, K2: 2, C: 1}
    assert set(s["scheme_id"]) == {"measures-2026"} and set(s["scheme_version"]) == {"2026.3"}
    assert s.loc[S1, "unit_level"] == "station" and s.loc[C, "unit_level"] == "city"

    it = _items(engine, "2026-07")
    assert it.loc[(S1, "onsite_recording"), ["objects", "clean", "score"]].tolist() == [3, 1, 10]
    assert it.loc[(S1, "onsite_recording"), "item_name"] == "现场执法音像记录"
    eq = it.loc[(S2, "equipment")]  # deduction floor
    assert (eq["objects"], eq["clean"], eq["deductions"], eq["score"]) == (1, 1, 8, 0)
    assert it.loc[(S3, "equipment"), "objects"] == 2  # D9 scrapped on 07-15: still an object in July
    assert it.loc[(S4, "text_records"), ["objects", "clean", "score"]].tolist() == [2, 1, 10]
    assert it.loc[(C, "onsite_recording"), ["objects", "clean", "score"]].tolist() == [8, 6, 22.5]
    assert it.loc[(C, "timely_upload"), "score"] == pytest.approx(2.67)
    assert it.loc[(C, "procedure_service"), ["objects", "clean", "score"]].tolist() == [5, 1, 2]
    assert it.loc[(K1, "measure_av"), ["objects", "clean", "score"]].tolist() == [1, 0, 0]
    assert len(it) == 8 * 7

    # other periods: the June clip adds 2026-06 and 2026-Q2; EQUIP-ADMIN / veto findings are July's only
    periods = set(read_df(engine, "SELECT DISTINCT period FROM v_unit_scores")["period"])
    assert periods == {"2026", "2026-Q2", "2026-Q3", "2026-06", "2026-07"}
    june = _scores(engine, "2026-06")
    assert june["total"].to_dict() == dict.fromkeys([C, K1, K2, S1, S2, S3, S4, S5], 100.0)
    year = _items(engine, "2026")
    assert year.loc[(C, "timely_upload"), ["objects", "clean", "score"]].tolist() == [4, 3, 3]
    assert _scores(engine, "2026")["total"].to_dict()[S2] == 77


def check_platform(engine: sa.Engine) -> None:
    s = _scores(engine, "2026-07")
    assert set(s["scheme_id"]) == {"platform-style"}
    assert s.loc[S2, "total"] == pytest.approx(71) and s.loc[S2, "grade"] == "达标"
    it = _items(engine, "2026-07")
    assert it.loc[(S2, "usage_rate"), ["objects", "clean", "score"]].tolist() == [20, 2, 1]
    assert it.loc[(S2, "issue_rate"), "score"] == 5
    assert it.loc[(S2, "case_link_rate"), "score"] == 20
    assert it.loc[(S1, "issue_rate"), "score"] == 10  # no officers: empty denominator -> full points
    assert _scores(engine, "2026").loc[S2, "total"] == pytest.approx(70.10)


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_hand_computed_scores(db: str, sqlite_url: str, request: pytest.FixtureRequest) -> None:
    url = sqlite_url if db == "sqlite" else request.getfixturevalue("pg_url")
    engine = load(url)
    try:
        check_measures(engine)
        # both schemes are stored; only the active one is in the views
        all_schemes = read_df(
            engine,
            "SELECT scheme_id, active, COUNT(*) AS n FROM unit_scores GROUP BY scheme_id, active ORDER BY scheme_id",
        )
        assert all_schemes.values.tolist() == [["measures-2026", 1, 40], ["platform-style", 0, 40]]
        ev = read_df(engine, "SELECT run_id, scheme_id, integrity_checked FROM evaluation")
        assert ev.values.tolist() == [[7, "measures-2026", 1]]

        # switching the active scheme in config switches the views
        with engine.begin() as conn:
            scoring.compute(conn, AS_OF, cfg_for("platform-style"), run_id=8)
        check_platform(engine)
    finally:
        engine.dispose()


def _long(rows: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """``lost_points_by_level`` rows once per scored unit: unit_code, BY_LEVEL_COLUMNS, points_lost."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "unit_code": rows[f"unit:{lv}"],
                    **{c: rows[c] for c in BY_LEVEL_COLUMNS},
                    "points_lost": rows[f"lost:{lv}"],
                }
            ).dropna(subset=["unit_code"])
            for lv in levels
        ],
        ignore_index=True,
    )


def test_lost_points_add_up(sqlite_url: str) -> None:
    engine = load(sqlite_url)
    try:
        with engine.begin() as conn:
            cfg = cfg_for()
            schemes = {s["id"]: s for s in load_schemes(cfg)}
            inp = load_inputs(conn, AS_OF, cfg, list(schemes.values()))
        everyone = [C, K1, K2, S1, S2, S3, S4, S5]
        for sid, scheme in schemes.items():
            items = score_items(scheme, inp)
            for period in ("2026-07", "2026"):
                its = items.loc[items["period"] == period]
                rows, levels = lost_points_by_level(scheme, its, inp, period, everyone)
                assert levels == ["station", "county", "city"]
                detail = _long(rows, levels)
                lost = detail.loc[detail["item_id"] != "veto"].groupby(["unit_code", "item_id"])["points_lost"].sum()
                by_item = its.set_index(["unit_code", "item_id"])
                expected = by_item["points"] - by_item["score"]
                got = lost.reindex(expected.index, fill_value=0.0)
                assert (got - expected).abs().max() < 1e-9, (sid, period)
        m = schemes["measures-2026"]
        july = score_items(m, inp).query("period == '2026-07'")
        rows, levels = lost_points_by_level(m, july, inp, "2026-07", [S1, S2])
        assert levels == ["station"]
        d = _long(rows, levels)
        s1 = d.loc[(d["unit_code"] == S1) & (d["item_id"] == "onsite_recording")]
        # E2: one finding costs 10; E3: three findings share 10
        assert s1.groupby("object_key")["points_lost"].sum().to_dict() == pytest.approx({"E2": 10, "E3": 10})
        assert len(s1.loc[s1["object_key"] == "E3"]) == 3
        floor = d.loc[(d["unit_code"] == S2) & (d["item_id"] == "equipment")]
        assert sorted(floor["object_kind"]) == ["deduction"] * 4 + ["floor"]
        assert floor.loc[floor["object_kind"] == "floor", "points_lost"].item() == pytest.approx(-2)
        veto = _long(*lost_points_by_level(m, july, inp, "2026-07", [K2]))
        veto = veto.loc[veto["item_id"] == "veto"]
        assert veto[["rule_id", "object_unit", "points_lost"]].values.tolist() == [["INTEGRITY-HASH", S3, 21.0]]
        # the warehouse version, explaining the stored scores, gives the same rows
        with engine.connect() as conn:
            stored = read_df(
                conn, "SELECT * FROM unit_item_scores WHERE scheme_id = 'measures-2026' AND period = '2026-07'"
            )
            mt = read_df(conn, "SELECT * FROM metrics WHERE period = '2026-07'")
            w, wl = lost_points_by_level_detail(conn, "2026-07", [S1, S2], m, stored, mt)
        key = [*BY_LEVEL_COLUMNS, "unit:station"]
        a, b = (x.sort_values(key, na_position="last", ignore_index=True) for x in (w, rows))
        assert wl == levels
        pd.testing.assert_frame_equal(
            a.drop(columns="lost:station").astype(str), b.drop(columns="lost:station").astype(str)
        )
        assert a["lost:station"].to_numpy() == pytest.approx(b["lost:station"].to_numpy())
    finally:
        engine.dispose()


def test_pure_scores_without_database() -> None:
    """The pure layer on hand-made frames: own scope, a metric item, a tie broken by unit_code."""
    units = pd.DataFrame(
        {"unit_code": ["A", "B", "R"], "parent_code": ["R", "R", None], "level": ["station", "station", "county"]}
    )
    scheme = validate_scheme(
        {
            "id": "t",
            "version": "9",
            "scope": "own",
            "grades": [{"name": "好", "min": 50}, {"name": "差", "min": 0}],
            "veto": {"rules": ["INTEGRITY-DELETED"], "cap": 10, "grade": "差"},
            "ranking": {"tie_breakers": ["ev"]},
            "items": [
                {"id": "ev", "name": "事件", "points": 40, "objects": "onsite_events", "rules": ["AV-NONE"]},
                {
                    "id": "wp",
                    "name": "全程记录率",
                    "points": 60,
                    "metric": "whole_process_rate",
                    "deductions": {"WINDOW-CCTV": 1.5},
                },
            ],
        },
        "t",
    )
    inp = Inputs(
        units=units,
        months=["2026-03"],
        object_counts=pd.DataFrame(
            {"kind": ["onsite_events"] * 2, "unit_code": ["A", "B"], "month": ["2026-03"] * 2, "n": [4, 2]}
        ),
        object_findings=pd.DataFrame(
            {
                "kind": ["onsite_events"] * 3,
                "object_key": ["e1", "e1", "e9"],
                "unit_code": ["A", "A", "B"],
                "month": ["2026-03"] * 3,
                "finding_key": ["AV-NONE:e1", "AV-GAP:e1:20260301T100000", "AV-NONE:e9"],
                "rule_id": ["AV-NONE", "AV-GAP", "AV-NONE"],
            }
        ),
        devices=pd.DataFrame({"device_sn": [], "unit_code": [], "status": [], "status_since": []}),
        findings=pd.DataFrame(
            {
                "finding_key": ["WINDOW-CCTV:A:w1", "INTEGRITY-DELETED:c1"],
                "rule_id": ["WINDOW-CCTV", "INTEGRITY-DELETED"],
                "unit_code": ["A", "R"],
                "month": ["2026-03", "2026-03"],
                "device_sn": [None, None],
            }
        ),
        metrics=pd.DataFrame(
            {
                "period": ["2026-03", "2026-03", "2026-03"],
                "unit_code": ["A", "B", "R"],
                "metric_id": ["whole_process_rate"] * 3,
                "numerator": [3, 3, 0],
                "denominator": [4, 6, 0],
                "value": [0.75, 0.5, None],
            }
        ),
    )
    its = score_items(scheme, inp).set_index(["period", "unit_code", "item_id"])
    # A: 40 x 3/4 = 30 (AV-GAP is not a rule of the item); 60 x 0.75 - 1.5 = 43.5
    assert its.loc[("2026-03", "A", "ev"), "score"] == 30
    assert its.loc[("2026-03", "A", "wp"), "score"] == 43.5
    # B: 40 x 1/2 = 20; 60 x 0.5 = 30; R (own scope only): no events -> 40, empty metric -> 60, veto -> 10
    tot = score_units(scheme, inp).set_index(["period", "unit_code"])
    assert tot.loc[("2026-03", "A"), ["total", "grade", "rank"]].tolist() == [73.5, "好", 1]
    assert tot.loc[("2026-03", "B"), ["total", "grade", "rank"]].tolist() == [50.0, "好", 2]
    assert tot.loc[("2026-03", "R"), ["total", "grade", "veto"]].tolist() == [10.0, "差", 1]
    # a full tie (same total, same tie-breaker) falls back to unit_code
    inp.object_findings = inp.object_findings.iloc[:0]
    inp.metrics["value"] = [1.0, 1.0, None]
    inp.findings = inp.findings.iloc[:0]
    tot = score_units(scheme, inp).set_index(["period", "unit_code"])
    assert tot.loc[("2026-03", "A"), "rank"] == 1 and tot.loc[("2026-03", "B"), "rank"] == 2


def test_scheme_validation(tmp_path: Path) -> None:
    for name in ("measures-2026", "platform-style"):
        s = load_scheme(ROOT / "config" / "schemes" / f"{name}.yaml")
        assert sum(it["points"] for it in s["items"]) == 100
    m = load_scheme(ROOT / "config" / "schemes" / "measures-2026.yaml")
    assert [(it["id"], it["points"], it["objects"]) for it in m["items"]] == [
        ("onsite_recording", 30, "onsite_events"),
        ("measure_av", 15, "av_actions"),
        ("text_records", 20, "cases_with_actions"),
        ("procedure_service", 10, "cases"),
        ("equipment", 6, "devices"),
        ("timely_upload", 4, "clips"),
        ("access_integrity", 15, "access_records"),
    ]
    bad = {"items": [{"id": "x", "name": "x", "points": 10, "objects": "onsite_events", "rules": ["AV-NOPE"]}]}
    with pytest.raises(ConfigError, match="未知规则"):
        validate_scheme(bad, "bad")
    with pytest.raises(ConfigError, match="只指定"):
        validate_scheme({"items": [{"id": "x", "points": 1, "metric": "usage_rate", "objects": "clips"}]}, "bad")
    cdir = tmp_path / "config"
    shutil.copytree(ROOT / "config" / "schemes", cdir / "schemes")
    with pytest.raises(ConfigError, match="不存在"):
        load_schemes(cfg_for("no-such-scheme", cdir))


def test_empty_warehouse(sqlite_url: str) -> None:
    """No data at all: no metrics and no scores, but the evaluation is still recorded."""
    engine = make_engine(sqlite_url)
    try:
        with engine.begin() as conn:
            ensure_schema(conn)
            assert metrics.compute(conn, AS_OF, cfg_for()) == 0
            out = scoring.compute(conn, AS_OF, cfg_for(), run_id=1)
            assert out["unit_scores"] == 0 and out["schemes"] == ["measures-2026", "platform-style"]
        assert read_df(engine, "SELECT COUNT(*) AS n FROM v_unit_scores")["n"].item() == 0
        assert read_df(engine, "SELECT scheme_id FROM evaluation")["scheme_id"].tolist() == ["measures-2026"]
    finally:
        engine.dispose()


def test_inputs_handed_over_by_the_findings_step_equal_the_sql(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Access records counted from the rules' frame (``findings.compute(...).access``, passed as ``access=``) and
    clip findings matched through their own device and start (CLIP_FINDING_RULES) give the inputs the SQL joins
    to the clip table give."""
    from etl.pipeline import run
    from etl.rules import config, findings
    from etl.scoring import inputs as I  # noqa: N812
    from etl.scoring.schemes import load_schemes
    from tests.etl_fixtures import base_tables, write_sources

    data = base_tables()
    clips = data["clips"]
    clips.loc[clips["clip_id"] == "K000003", ["imported_at", "updated_at"]] = ["2026-03-03 13:00:00"] * 2  # late
    log = data["access_log"]
    log.loc[log["log_id"] == "L0001", "at"] = None  # no time: counts in the evaluation month
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(write_sources(tmp_path / "src", data=data), warehouse=wh, rules=False, progress=False)
    as_of = datetime(2026, 4, 30, 23, 59, 59)
    cfg = config.load(None)
    engine = make_engine(wh)
    with engine.connect() as conn, conn.begin() as tx:
        found = findings.compute(conn, as_of, cfg, integrity_checked=False)
        assert found.access is not None
        schemes = load_schemes(cfg)
        handed = I.load_inputs(
            conn,
            as_of,
            cfg,
            schemes,
            access=I.access_counts(found.access, as_of),
            clip_months=metrics.clip_months(conn, as_of),
        )
        monkeypatch.setattr(I, "CLIP_FINDING_RULES", frozenset())
        by_sql = I.load_inputs(conn, as_of, cfg, schemes)
        tx.rollback()
    engine.dispose()

    def norm(df: pd.DataFrame) -> list:
        return sorted(map(tuple, df.astype(str).to_numpy().tolist()))

    assert norm(handed.object_counts) == norm(by_sql.object_counts)
    assert norm(handed.object_findings) == norm(by_sql.object_findings)
    access = by_sql.object_counts[by_sql.object_counts["kind"] == "access_records"]
    assert set(access["month"]) == {"2026-03", "2026-04"}  # the record without time in the evaluation month
    assert "UPLOAD-LATE" in set(by_sql.object_findings["rule_id"])
