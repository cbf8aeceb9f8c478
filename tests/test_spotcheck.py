"""Spot-check campaigns (etl.supervision.spotcheck, etl.rules.spotcheck): the draw is reproducible and stored,
open campaigns' objects are not drawn again, a failed review is a SPOT-CHECK finding that moves the unit's score
at once and survives every ETL run, refusals write nothing.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sqlalchemy as sa

from etl.errors import StaleWriteError, SupervisionError
from etl.pipeline import run
from etl.rules import spotcheck as spot_rules
from etl.supervision import spotcheck
from etl.users import User
from etl.warehouse.db import make_engine
from tests.spotcheck_fixtures import PERIOD, county_legal, drawn, sample_of, total, unvetoed_item
from tests.supervision_fixtures import COUNTY_B, frame, load_pg, scalar, snapshot, user


def test_the_draw_follows_the_documented_recipe_and_is_stored(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    res = drawn(eng, per_unit=3, seed=11)
    sample = sample_of(eng, res["campaign_id"])
    pop = frame(
        eng,
        "SELECT incident_no, unit_code, arrived_at FROM event_coverage WHERE covered_s > 0 "
        "AND arrived_at >= '2026-07-01' AND arrived_at < '2026-08-01'",
    )
    expected = []
    for unit in sorted(set(pop["unit_code"])):
        keys = sorted(pop.loc[pop["unit_code"] == unit, "incident_no"])
        expected += [(unit, k) for k in random.Random(f"11:{unit}").sample(keys, k=min(3, len(keys)))]
    assert sample == expected
    assert res["drawn"] == len(expected) and res["population"] == len(pop)
    camp = frame(eng, "SELECT * FROM sup_campaigns WHERE campaign_id = :c", c=res["campaign_id"]).iloc[0]
    assert (camp["period"], camp["object_kind"], camp["per_unit"], camp["seed"], camp["state"]) == (
        PERIOD, "events", 3, 11, "open",
    )  # fmt: skip
    assert camp["scope_unit"] is None and camp["created_by"] == "legal" and camp["reason"] == "月度抽查"
    items = spotcheck.items(eng, res["campaign_id"])
    assert items["verdict"].isna().all() and (items["month"] == PERIOD).all() and (items["version"] == 1).all()
    audit = frame(eng, "SELECT username, action, reason FROM audit_log WHERE action = 'spotcheck:draw'")
    assert audit.to_dict("records") == [{"username": "legal", "action": "spotcheck:draw", "reason": "月度抽查"}]

    # the same seed on the same warehouse: the same sample (once the first campaign is closed, its objects are free)
    spotcheck.close_campaign(eng, user(eng, "legal"), res["campaign_id"], reason="结束")
    again = drawn(eng, per_unit=3, seed=11)
    assert sample_of(eng, again["campaign_id"]) == sample
    other = drawn(eng, per_unit=3, seed=12, kind="events")  # another seed, objects of the open campaign excluded
    assert not set(sample_of(eng, other["campaign_id"])) & set(sample)


def test_objects_of_open_campaigns_are_not_drawn_again(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    first = drawn(eng, per_unit=5, seed=1)
    second = drawn(eng, per_unit=5, seed=1)
    a, b = sample_of(eng, first["campaign_id"]), sample_of(eng, second["campaign_id"])
    assert a and b and not {k for _, k in a} & {k for _, k in b}
    assert second["population"] == first["population"] - first["drawn"]
    assert "已排除" in second["note"]
    cases = drawn(eng, per_unit=5, seed=1, kind="cases")  # another kind: not excluded
    assert cases["drawn"] > 0
    q3 = spotcheck.draw(eng, user(eng, "legal"), period="2026-Q3", kind="events", per_unit=5, seed=1, reason="季度")
    assert q3["population"] > first["population"]  # another period: drawn independently


def test_a_sample_larger_than_the_population_takes_it_all_and_says_so(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    res = drawn(eng, per_unit=10_000, seed=3)
    assert res["drawn"] == res["population"] > 0
    units = {u for u, _ in sample_of(eng, res["campaign_id"])}
    assert {u for u, _ in res["short_units"]} == units
    assert "已全部抽取" in res["note"] and "少于每单位 10000 个" in res["note"]
    note = scalar(eng, "SELECT draw_note FROM sup_campaigns WHERE campaign_id = :c", c=res["campaign_id"])
    assert note == res["note"]


def test_a_county_scope_draws_only_its_units(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    res = spotcheck.draw(eng, county_legal(eng), period=PERIOD, kind="cases", per_unit=2, seed=5, reason="县局抽查")
    sample = sample_of(eng, res["campaign_id"])
    assert sample and all(u.startswith("140403") for u, _ in sample)
    assert scalar(eng, "SELECT scope_unit FROM sup_campaigns WHERE campaign_id = :c", c=res["campaign_id"]) == (
        "140403000000"
    )
    with_actions = frame(eng, "SELECT DISTINCT case_no FROM case_actions")["case_no"]
    assert {k for _, k in sample} <= set(with_actions)


@pytest.mark.parametrize(
    ("who", "kw", "message"),
    [
        ("legal", {"reason": " "}, "理由"),
        ("county", {}, "无权"),
        ("leader", {}, "无权"),
        ("legal", {"period": "2026-13"}, "考评期间"),
        ("legal", {"kind": "clips"}, "抽查对象"),
        ("legal", {"per_unit": 0}, "至少为 1"),
        ("legal", {"per_unit": "many"}, "整数"),
        ("legal", {"unit_code": "999"}, "未知的单位"),
        ("county_legal", {"unit_code": COUNTY_B}, "管辖范围"),
        ("legal", {"period": "2019-01"}, "没有可抽查"),
        ("legal", {"reviewers": ["county"]}, "法制部门用户"),
    ],
)
def test_draw_refusals_write_nothing(sqlite_engine, who: str, kw: dict, message: str) -> None:  # noqa: ANN001
    eng = sqlite_engine
    actor = county_legal(eng) if who == "county_legal" else user(eng, who)
    args = {"period": PERIOD, "kind": "events", "per_unit": 2, "seed": 1, "reason": "抽查", **kw}
    before = snapshot(eng)
    with pytest.raises(SupervisionError, match=message):
        spotcheck.draw(eng, actor, **args)
    assert snapshot(eng) == before


def test_reviewers_are_assigned_in_turn(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    res = drawn(eng, per_unit=2, reviewers="legal")
    assert set(spotcheck.items(eng, res["campaign_id"])["assigned_to"]) == {"legal"}
    camps = spotcheck.campaigns(eng)
    assert camps.loc[0, "reviewers"] == "legal" and camps.loc[0, "drawn"] == res["drawn"]


def test_a_failed_review_is_a_spot_check_finding_and_moves_the_score_at_once(engine) -> None:  # noqa: ANN001
    """On SQLite and PostgreSQL: record a failure, the finding is in v_findings and the unit's total falls; the
    same object recorded as a pass again removes the finding and restores the total."""
    legal = user(engine, "legal")
    res = drawn(engine, per_unit=3, seed=11)
    cid = res["campaign_id"]
    obj = unvetoed_item(engine, cid)
    before = total(engine, obj["unit_code"], obj["month"])
    out = spotcheck.record(
        engine, legal, cid, obj["object_key"],
        points={"16.2": ("fail", "未摄录现场环境"), "16.3": ("n/a", None)}, fail=["11"], note="画面晃动",
        reason="抽查发现问题",
    )  # fmt: skip
    key = f"SPOT-CHECK:{obj['object_key']}:{cid}"
    assert out == {"verdict": "fail", "failed_points": ["16.2", "11"], "finding_key": key, "version": 2,
                   "history_id": out["history_id"]}  # fmt: skip
    f = frame(engine, "SELECT * FROM v_findings WHERE finding_key = :k", k=key)
    assert len(f) == 1
    row = f.iloc[0]
    assert (row["rule_id"], row["article"], row["unit_code"], row["incident_no"], row["month"]) == (
        "SPOT-CHECK", "第十六条、第十一条", obj["unit_code"], obj["object_key"], obj["month"],
    )  # fmt: skip
    assert "16.2 摄录执法现场整体环境（未摄录现场环境）" in row["detail"] and f"抽查编号 {cid}" in row["detail"]
    assert "画面晃动" in row["detail"] and row["review_state"] == "open"
    after = total(engine, obj["unit_code"], obj["month"])
    assert after < before, (before, after)

    item = spotcheck.item(engine, cid, obj["object_key"])
    assert item["points"]["16.2"] == ("fail", "未摄录现场环境") and item["points"]["16.3"] == ("n/a", None)
    assert item["points"]["16.1"] == ("pass", None) and item["verdict"] == "fail" and item["version"] == 2
    assert item["failed_points"] == "16.2,11" and item["finding_key"] == key and len(item["history"]) == 1
    view = frame(engine, "SELECT * FROM v_spotcheck_items WHERE campaign_id = :c AND object_key = :k", c=cid,
                 k=obj["object_key"]).iloc[0]  # fmt: skip
    assert (view["verdict"], view["failed_points"], view["reviewed_by"]) == ("fail", "16.2,11", "legal")
    assert view["reviewed_at"] is not None and int(view["orphaned"]) == 0
    camp = spotcheck.campaigns(engine).iloc[0]
    assert (camp["reviewed"], camp["failed"]) == (1, 1)

    again = spotcheck.record(engine, legal, cid, obj["object_key"], reason="复看后合格", expected_version=2)
    assert again["verdict"] == "pass" and again["finding_key"] is None and again["version"] == 3
    assert scalar(engine, "SELECT COUNT(*) FROM findings WHERE finding_key = :k", k=key) == 0
    assert total(engine, obj["unit_code"], obj["month"]) == pytest.approx(before)
    assert scalar(engine, "SELECT COUNT(*) FROM sup_spotcheck_history WHERE object_key = :k", k=obj["object_key"]) == 2
    audit = frame(engine, "SELECT action FROM audit_log WHERE action LIKE 'spotcheck:%' ORDER BY id")["action"]
    assert audit.tolist() == ["spotcheck:draw", "spotcheck:fail", "spotcheck:pass"]


def test_a_stale_record_is_refused(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal = user(eng, "legal")
    cid = drawn(eng)["campaign_id"]
    key = spotcheck.items(eng, cid)["object_key"].iloc[0]
    shown = spotcheck.item(eng, cid, key)["version"]
    spotcheck.record(eng, legal, cid, key, fail="16.1", reason="第一位审查人", expected_version=shown)
    before = snapshot(eng)
    with pytest.raises(StaleWriteError, match="已被他人更新"):
        spotcheck.record(eng, legal, cid, key, reason="第二位审查人（页面已过时）", expected_version=shown)
    assert snapshot(eng) == before


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not_in_campaign", "不在抽查"),
        ("unknown_campaign", "未知的抽查编号"),
        ("unknown_point", "未知的检查项"),
        ("bad_result", "结果应为"),
        ("conflict", "同时标记"),
        ("case_point_on_event", "未知的检查项"),
        ("empty_reason", "理由"),
        ("unit_admin", "无权"),
        ("out_of_scope", "管辖范围"),
        ("closed", "已结束"),
    ],
)
def test_record_refusals_write_nothing(sqlite_engine, case: str, message: str) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal = user(eng, "legal")
    cid = drawn(eng)["campaign_id"]
    items = spotcheck.items(eng, cid)
    key = items["object_key"].iloc[0]
    foreign = items.loc[items["unit_code"].str.startswith("140423"), "object_key"].iloc[0]
    if case == "closed":
        spotcheck.close_campaign(eng, legal, cid, reason="结束")
    args: dict = {"reason": "抽查"}
    actor, campaign, obj = legal, cid, key
    if case == "not_in_campaign":
        obj = "J-NOT-DRAWN"
    elif case == "unknown_campaign":
        campaign = 999
    elif case == "unknown_point":
        args["fail"] = "16.2,16.9"
    elif case == "bad_result":
        args["points"] = {"16.2": ("bad", None)}
    elif case == "conflict":
        args.update(points={"16.2": ("pass", None)}, fail=["16.2"])
    elif case == "case_point_on_event":
        args["fail"] = ["23"]
    elif case == "empty_reason":
        args["reason"] = ""
    elif case == "unit_admin":
        actor = user(eng, "county")
    elif case == "out_of_scope":
        actor, obj = county_legal(eng), foreign
    before = snapshot(eng)
    with pytest.raises(SupervisionError, match=message):
        spotcheck.record(eng, actor, campaign, obj, **args)
    assert snapshot(eng) == before


def test_close_campaign_refusals(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal = user(eng, "legal")
    cid = drawn(eng)["campaign_id"]
    with pytest.raises(StaleWriteError):
        spotcheck.close_campaign(eng, legal, cid, reason="结束", expected_version=7)
    with pytest.raises(SupervisionError, match="管辖范围"):
        spotcheck.close_campaign(eng, county_legal(eng), cid, reason="结束")  # a city-wide campaign
    assert spotcheck.close_campaign(eng, legal, cid, reason="结束", expected_version=1) == 2
    with pytest.raises(SupervisionError, match="已结束"):
        spotcheck.close_campaign(eng, legal, cid, reason="再结束")


def test_cases_checklist_and_timelines(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal = user(eng, "legal")
    cid = drawn(eng, kind="cases", per_unit=1)["campaign_id"]
    case_no = spotcheck.items(eng, cid)["object_key"].iloc[0]
    out = spotcheck.record(eng, legal, cid, case_no, fail="23,13", points={"26": ("n/a", "未强制执行")}, reason="案卷")
    assert out["failed_points"] == ["13", "23"]
    f = frame(eng, "SELECT article, case_no, incident_no FROM findings WHERE finding_key = :k", k=out["finding_key"])
    assert f.iloc[0].tolist() == ["第十三条、第二十三条", case_no, None]
    ids = [p for p, _ in spotcheck.CHECKLIST["cases"]]
    assert {"10", "11", "12", "13", "19", "22", "23", "24", "25", "26", "27"} <= set(ids)
    assert [p for p, _ in spotcheck.CHECKLIST["events"]] == [
        "16.1", "16.2", "16.3", "16.4", "16.5", "16.6", "16.7", "16.v", "11",
    ]  # fmt: skip
    tl = spotcheck.case_timeline(eng, case_no)
    assert tl["case"]["case_no"] == case_no and len(tl["actions"]) > 0
    assert set(tl) >= {"case", "actions", "documents", "deliveries"}

    ev = drawn(eng, per_unit=1)["campaign_id"]
    incident = spotcheck.items(eng, ev)["object_key"].iloc[0]
    tl = spotcheck.event_timeline(eng, incident)
    start, end = tl["window"]
    assert tl["event"]["incident_no"] == incident and start <= end
    assert len(tl["clips"]) > 0 and {"clip_id", "police_no", "device_sn", "started_at", "ended_at", "file_path"} <= set(
        tl["clips"].columns
    )
    assert set(tl["gaps"].columns) >= {"gap_start", "gap_end"} and len(tl["officers"]) > 0
    assert spotcheck.item(eng, ev, "NOPE") is None


def test_article_numbers() -> None:
    assert [spot_rules.article_of(p) for p in ("16.2", "16.v", "11", "10", "20", "23", "35")] == [
        "第十六条", "第十六条", "第十一条", "第十条", "第二十条", "第二十三条", "第三十五条",
    ]  # fmt: skip
    assert spot_rules.articles("events", ["11", "16.6", "16.2"]) == "第十六条、第十一条"


def test_etl_run_keeps_spot_check_findings(fresh_sqlite: str, demo_sources: Path) -> None:
    eng = make_engine(fresh_sqlite)
    legal = user(eng, "legal")
    cid = drawn(eng)["campaign_id"]
    items = spotcheck.items(eng, cid)
    key = items["object_key"].iloc[0]
    out = spotcheck.record(eng, legal, cid, key, fail="16.5", reason="证据未摄录")
    cols = "finding_key, rule_id, article, unit_code, incident_no, occurred_at, month, detail"
    before = frame(eng, f"SELECT {cols} FROM findings WHERE rule_id = 'SPOT-CHECK'")
    assert before["finding_key"].tolist() == [out["finding_key"]]
    totals = frame(eng, "SELECT period, unit_code, total FROM v_unit_scores ORDER BY period, unit_code")
    eng.dispose()

    assert run(demo_sources, warehouse=fresh_sqlite, progress=False).status == "ok"
    eng = make_engine(fresh_sqlite)
    after = frame(eng, f"SELECT {cols} FROM findings WHERE rule_id = 'SPOT-CHECK'")
    assert after.equals(before)
    assert frame(eng, "SELECT period, unit_code, total FROM v_unit_scores ORDER BY period, unit_code").equals(totals)
    eng.dispose()


@pytest.mark.postgres
def test_sqlite_and_postgresql_draw_the_same_sample(sqlite_engine, demo_sources: Path, pg_url: str) -> None:  # noqa: ANN001
    pg = make_engine(load_pg(demo_sources, pg_url))
    try:
        for kind in ("events", "cases"):
            a = drawn(sqlite_engine, kind=kind, per_unit=4, seed=2026)
            b = drawn(pg, kind=kind, per_unit=4, seed=2026)
            assert (a["campaign_id"], a["drawn"], a["population"]) == (b["campaign_id"], b["drawn"], b["population"])
            assert sample_of(sqlite_engine, a["campaign_id"]) == sample_of(pg, b["campaign_id"])
        cols = "campaign_id, object_key, object_kind, unit_code, period, month, occurred_at, draw_order"
        q = f"SELECT {cols} FROM sup_spotcheck_items ORDER BY campaign_id, draw_order"
        assert frame(sqlite_engine, q).astype(str).equals(frame(pg, q).astype(str))
    finally:
        pg.dispose()


def test_an_object_gone_from_the_sources_leaves_an_orphaned_item_and_no_finding(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    cid = drawn(eng)["campaign_id"]
    key = spotcheck.items(eng, cid)["object_key"].iloc[0]
    spotcheck.record(eng, user(eng, "legal"), cid, key, fail="16.1", reason="x")
    with eng.begin() as conn:  # what the next run's coverage would do for an event no longer on site
        conn.execute(sa.text("DELETE FROM event_coverage WHERE incident_no = :k"), {"k": key})
        assert spot_rules.sync(conn) == []
    item = spotcheck.items(eng, cid).set_index("object_key").loc[key]
    assert int(item["orphaned"]) == 1 and item["verdict"] == "fail"


def test_equipment_and_it_roles_cannot_draw(sqlite_engine) -> None:  # noqa: ANN001
    it = User("it2", "信息", "it", None, None)
    with pytest.raises(SupervisionError, match="无权"):
        spotcheck.draw(sqlite_engine, it, period=PERIOD, kind="events", per_unit=1, seed=1, reason="x")
