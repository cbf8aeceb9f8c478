"""Rectification notices (etl.supervision.rectify): issue from findings, a period or a campaign; answer,
return, answer again, accept; overdue against a clock the test sets; refusals write nothing; the views.
"""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from etl import times
from etl.errors import StaleWriteError, SupervisionError
from etl.supervision import rectify, spotcheck
from etl.users import User
from tests.spotcheck_fixtures import county_legal, drawn
from tests.supervision_fixtures import COUNTY_A, finding_of, frame, scalar, snapshot, user

STATION_A = "140403510000"  # the demo's "station" user administers it
STATION_A2 = "140403520000"


def _station_finding(eng, unit: str = STATION_A, offset: int = 0) -> dict:  # noqa: ANN001
    return finding_of(eng, unit_prefix=unit, offset=offset)


def test_the_whole_cycle_with_its_events_and_audit(engine) -> None:  # noqa: ANN001
    """On SQLite and PostgreSQL: issue -> respond -> return (new deadline) -> respond -> accept."""
    legal, county, station = user(engine, "legal"), user(engine, "county"), user(engine, "station")
    keys = [_station_finding(engine, offset=i)["finding_key"] for i in range(2)]
    day = date(2026, 12, 1)
    made = rectify.issue(
        engine, legal, STATION_A, finding_keys=keys, text="请于期限内整改并报告", reason="复核确认的问题",
        accountability={"officers": [], "paragraph": ""}, today=day,
    )  # fmt: skip
    nid = made["notice_id"]
    assert made == {"notice_id": nid, "findings": 2, "deadline": date(2026, 12, 16)}  # rectify_days: 15
    n = rectify.notice(engine, nid, today=day)
    assert (n["state"], n["overdue"], n["findings_count"], n["unit_code"], n["basis"]) == (
        "open", 0, 2, STATION_A, "findings",
    )  # fmt: skip
    assert sorted(n["findings"]["finding_key"]) == sorted(keys) and n["accountability"] is None
    assert n["issued_at"].date() == day and n["unit_name"]
    assert set(frame(engine, "SELECT notice_id FROM v_findings WHERE finding_key IN (:a, :b)", a=keys[0], b=keys[1])[
        "notice_id"
    ]) == {nid}  # fmt: skip

    e1 = rectify.respond(engine, station, nid, text="已组织培训并补充记录", expected_version=1)
    with pytest.raises(SupervisionError, match="新的整改期限.*早于"):
        rectify.close(engine, legal, nid, verdict="return", note="不充分", new_deadline="2026-11-30", today=day)
    e2 = rectify.close(engine, legal, nid, verdict="return", note="措施不具体", new_deadline="2026-12-31", today=day)
    n = rectify.notice(engine, nid, today=day)
    assert (n["state"], n["deadline"], n["version"]) == ("returned", date(2026, 12, 31), 3)
    e3 = rectify.respond(engine, county, nid, text="补充整改台账")  # the county administers the station too
    e4 = rectify.close(engine, legal, nid, verdict="accept", note="整改到位", expected_version=4)
    n = rectify.notice(engine, nid, today=day)
    assert (n["state"], n["closed_by"], n["version"]) == ("closed", "legal", 5)
    assert e1 < e2 < e3 < e4
    ev = n["events"]
    assert ev["kind"].tolist() == ["issue", "respond", "return", "respond", "accept"]
    assert ev["by_user"].tolist() == ["legal", "station", "legal", "county", "legal"]
    assert ev["text"].tolist()[1:] == ["已组织培训并补充记录", "措施不具体", "补充整改台账", "整改到位"]
    view = frame(engine, "SELECT * FROM v_rectifications WHERE notice_id = :n", n=nid).iloc[0]
    assert (view["state"], int(view["findings"]), view["unit_code"]) == ("closed", 2, STATION_A)
    audit = frame(engine, "SELECT username, action FROM audit_log WHERE action LIKE 'rectify:%' ORDER BY id")
    assert audit.values.tolist() == [
        ["legal", "rectify:issue"], ["station", "rectify:respond"], ["legal", "rectify:return"],
        ["county", "rectify:respond"], ["legal", "rectify:accept"],
    ]  # fmt: skip
    with pytest.raises(SupervisionError, match="已办结"):
        rectify.respond(engine, station, nid, text="再答复")


def test_overdue_against_the_clock_the_test_sets(sqlite_engine, monkeypatch) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal, station = user(eng, "legal"), user(eng, "station")
    key = _station_finding(eng)["finding_key"]
    monkeypatch.setenv("AVSUP_TODAY", "2026-12-01")
    assert times.today() == date(2026, 12, 1)
    nid = rectify.issue(eng, legal, STATION_A, finding_keys=[key], text="整改", reason="r")["notice_id"]
    assert rectify.notice(eng, nid)["deadline"] == date(2026, 12, 16)
    for today, late in (("2026-12-16", 0), ("2026-12-17", 1)):
        monkeypatch.setenv("AVSUP_TODAY", today)
        assert rectify.notices(eng).set_index("notice_id").loc[nid, "overdue"] == late
    assert rectify.notices(eng, today=date(2026, 12, 2)).set_index("notice_id").loc[nid, "overdue"] == 0
    # answered and accepted late: it stays overdue (closed after its deadline)
    rectify.respond(eng, station, nid, text="已整改")
    rectify.close(eng, legal, nid, verdict="accept", note="通过")
    n = rectify.notice(eng, nid)
    assert n["closed_at"].date() == date(2026, 12, 17) and n["overdue"] == 1
    assert rectify.notices(eng, today=date(2027, 6, 1)).set_index("notice_id").loc[nid, "overdue"] == 1
    # on time: closed on the deadline day
    monkeypatch.setenv("AVSUP_TODAY", "2026-12-01")
    other = rectify.issue(eng, legal, STATION_A, finding_keys=[key], text="整改", reason="r", deadline="2026-12-05")
    monkeypatch.setenv("AVSUP_TODAY", "2026-12-05")
    rectify.respond(eng, station, other["notice_id"], text="已整改")
    rectify.close(eng, legal, other["notice_id"], verdict="accept", note="通过")
    monkeypatch.setenv("AVSUP_TODAY", "2027-01-01")
    assert rectify.notices(eng).set_index("notice_id").loc[other["notice_id"], "overdue"] == 0
    # the latest notice naming the finding
    assert scalar(eng, "SELECT notice_id FROM v_findings WHERE finding_key = :k", k=key) == other["notice_id"]
    monkeypatch.setenv("AVSUP_TODAY", "2026-02-30")
    with pytest.raises(Exception, match="AVSUP_TODAY"):
        times.today()


def test_the_view_judges_overdue_against_the_database_date(engine) -> None:  # noqa: ANN001
    """On SQLite and PostgreSQL: a deadline long past is overdue, one far ahead is not, in v_rectifications."""
    legal = user(engine, "legal")
    key = _station_finding(engine)["finding_key"]
    past = rectify.issue(
        engine, legal, STATION_A, finding_keys=[key], text="整改", reason="r", deadline=date(2020, 1, 10),
        today=date(2020, 1, 1),
    )["notice_id"]  # fmt: skip
    ahead = rectify.issue(
        engine, legal, STATION_A, finding_keys=[key], text="整改", reason="r", deadline=date(2999, 1, 1)
    )["notice_id"]
    view = frame(engine, "SELECT notice_id, overdue, deadline FROM v_rectifications ORDER BY notice_id")
    assert view["overdue"].astype(int).tolist() == [1, 0]
    assert view["notice_id"].tolist() == [past, ahead]
    assert pd.to_datetime(view["deadline"]).dt.date.tolist() == [date(2020, 1, 10), date(2999, 1, 1)]


def test_a_notice_from_a_period_and_rules_and_from_a_campaign(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal = user(eng, "legal")
    month = _station_finding(eng)["month"]
    own = frame(
        eng,
        "SELECT finding_key, rule_id FROM v_findings WHERE unit_code LIKE '140403%' AND month = :m "
        "AND review_state <> 'exempted'",
        m=month,
    )
    made = rectify.issue(eng, legal, COUNTY_A, period=month, text="整改", reason="月度问题")
    assert made["findings"] == len(own)
    n = rectify.notice(eng, made["notice_id"])
    assert (n["basis"], n["basis_ref"], n["period"]) == ("period", month, month)
    rule = own["rule_id"].iloc[0]
    some = rectify.issue(eng, legal, COUNTY_A, period=month, rules=[rule], text="整改", reason="r")
    assert some["findings"] == int((own["rule_id"] == rule).sum())
    assert rectify.notice(eng, some["notice_id"])["basis_ref"] == f"{month} {rule}"

    cid = drawn(eng, per_unit=2)["campaign_id"]
    items = spotcheck.items(eng, cid)
    station_items = items[items["unit_code"] == STATION_A]["object_key"].tolist()
    other_item = items[items["unit_code"] != STATION_A]["object_key"].iloc[0]
    for k in [*station_items, other_item]:
        spotcheck.record(eng, legal, cid, k, fail="16.4", reason="不合格")
    made = rectify.issue(eng, legal, STATION_A, campaign_id=cid, text="抽查不合格整改", reason="抽查")
    found = rectify.notice(eng, made["notice_id"])["findings"]
    assert sorted(found["finding_key"]) == sorted(f"SPOT-CHECK:{k}:{cid}" for k in station_items)
    assert set(found["article"]) == {"第十六条"}


def test_accountability_recommendation(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal = user(eng, "legal")
    key = _station_finding(eng)["finding_key"]
    officer = frame(eng, "SELECT police_no FROM officers WHERE unit_code = :u ORDER BY police_no", u=STATION_A)
    p = officer["police_no"].iloc[0]
    nid = rectify.issue(
        eng, legal, STATION_A, finding_keys=[key], text="整改", reason="r",
        accountability={"officers": [p], "paragraph": "2"},
    )["notice_id"]  # fmt: skip
    acc = rectify.notice(eng, nid)["accountability"]
    assert acc == {"officers": [p], "paragraph": "2"}
    before = snapshot(eng)
    for bad, message in (
        ({"officers": ["NO-SUCH"], "paragraph": "2"}, "未知的警号"),
        ({"officers": [p], "paragraph": ""}, "第三十五条"),
        ({"officers": [], "paragraph": "2"}, "人员"),
    ):
        with pytest.raises(SupervisionError, match=message):
            rectify.issue(eng, legal, STATION_A, finding_keys=[key], text="整改", reason="r", accountability=bad)
    assert snapshot(eng) == before


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("other_unit", "不属于单位"),
        ("unknown_finding", "未知的问题编号"),
        ("no_basis", "整改依据"),
        ("two_bases", "整改依据"),
        ("empty_period", "没有"),
        ("deadline_before_issue", "早于下发日期"),
        ("bad_deadline", "YYYY-MM-DD"),
        ("empty_text", "整改通知的内容"),
        ("empty_reason", "理由"),
        ("unit_admin", "无权"),
        ("unknown_unit", "未知的单位"),
        ("out_of_scope", "管辖范围"),
        ("campaign_without_failures", "没有单位"),
    ],
)
def test_issue_refusals_write_nothing(sqlite_engine, case: str, message: str) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal = user(eng, "legal")
    own = _station_finding(eng)["finding_key"]
    foreign = _station_finding(eng, unit=STATION_A2)["finding_key"]
    cid = drawn(eng)["campaign_id"]
    actor: User = legal
    unit = STATION_A
    args: dict = {"finding_keys": [own], "text": "整改", "reason": "r", "today": date(2026, 12, 1)}
    if case == "other_unit":
        args["finding_keys"] = [own, foreign]
    elif case == "unknown_finding":
        args["finding_keys"] = ["AV-NONE:NO-SUCH"]
    elif case == "no_basis":
        args.pop("finding_keys")
    elif case == "two_bases":
        args["period"] = "2026-07"
    elif case == "empty_period":
        args = {**args, "finding_keys": None, "period": "2019-01"}
    elif case == "deadline_before_issue":
        args["deadline"] = date(2026, 11, 30)
    elif case == "bad_deadline":
        args["deadline"] = "30/11/2026"
    elif case == "empty_text":
        args["text"] = "  "
    elif case == "empty_reason":
        args["reason"] = ""
    elif case == "unit_admin":
        actor = user(eng, "county")
    elif case == "unknown_unit":
        unit = "999"
    elif case == "out_of_scope":
        actor, unit, args["finding_keys"] = (
            county_legal(eng),
            "140423510000",
            [finding_of(eng, unit_prefix="140423510000")["finding_key"]],
        )
    elif case == "campaign_without_failures":
        args = {**args, "finding_keys": None, "campaign_id": cid}
    before = snapshot(eng)
    with pytest.raises(SupervisionError, match=message):
        rectify.issue(eng, actor, unit, **args)
    assert snapshot(eng) == before


def test_respond_and_close_refusals_write_nothing(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal, county, station = user(eng, "legal"), user(eng, "county"), user(eng, "station")
    other_station = User("station2", "延安所", "unit_admin", STATION_A2, (STATION_A2,))
    key = _station_finding(eng)["finding_key"]
    nid = rectify.issue(eng, legal, STATION_A, finding_keys=[key], text="整改", reason="r")["notice_id"]
    before = snapshot(eng)
    refusals = [
        (lambda: rectify.respond(eng, station, nid, text=" "), "整改措施"),
        (lambda: rectify.respond(eng, legal, nid, text="x"), "无权"),
        (lambda: rectify.respond(eng, other_station, nid, text="x"), "管辖范围"),
        (lambda: rectify.respond(eng, station, 999, text="x"), "未知的整改通知"),
        (lambda: rectify.respond(eng, station, nid, text="x", expected_version=3), "已被他人更新"),
        (lambda: rectify.close(eng, legal, nid, verdict="accept", note="x"), "尚未答复"),
        (lambda: rectify.close(eng, legal, nid, verdict="maybe", note="x"), "复查结论"),
        (lambda: rectify.close(eng, legal, nid, verdict="accept", note=""), "复查意见"),
        (lambda: rectify.close(eng, county, nid, verdict="accept", note="x"), "无权"),
    ]
    for call, message in refusals:
        with pytest.raises(SupervisionError, match=message):
            call()
        assert snapshot(eng) == before, message
    rectify.respond(eng, station, nid, text="已整改")
    before = snapshot(eng)
    for call, message in [
        (lambda: rectify.close(eng, legal, nid, verdict="accept", note="x", expected_version=1), "已被他人更新"),
        (lambda: rectify.close(eng, legal, nid, verdict="accept", note="x", new_deadline="2030-01-01"), "不能设定"),
        (lambda: rectify.close(eng, county_legal(eng), 999, verdict="accept", note="x"), "未知的整改通知"),
    ]:
        with pytest.raises(SupervisionError, match=message):
            call()
        assert snapshot(eng) == before, message
    with pytest.raises(StaleWriteError):
        rectify.close(eng, legal, nid, verdict="accept", note="x", expected_version=1)


def test_ontime_rate_over_each_scope() -> None:
    units = pd.DataFrame(
        {
            "unit_code": ["C", "K1", "S1", "S2", "K2"],
            "parent_code": [None, "C", "K1", "K1", "C"],
        }
    )
    notices = pd.DataFrame(
        [
            ("S1", date(2026, 7, 10), "closed", datetime(2026, 7, 10, 18, 0)),  # on time (the deadline day)
            ("S1", date(2026, 7, 20), "closed", datetime(2026, 7, 21, 9, 0)),  # late
            ("S2", date(2026, 7, 25), "returned", None),  # overdue on 2026-08-01
            ("S2", date(2026, 8, 5), "open", None),  # not due in 2026-07
            ("K2", date(2026, 7, 31), "open", None),  # due on the 31st: not yet known on 2026-07-31
        ],
        columns=["unit_code", "deadline", "state", "closed_at"],
    )
    out = rectify.ontime_rate(notices, units, "2026-07", date(2026, 8, 1)).set_index("unit_code")
    assert out.loc["S1", ["numerator", "denominator"]].tolist() == [1.0, 2.0]
    assert out.loc["S2", ["numerator", "denominator"]].tolist() == [0.0, 1.0]
    assert out.loc["K1", ["numerator", "denominator"]].tolist() == [1.0, 3.0]
    assert out.loc["C", ["numerator", "denominator"]].tolist() == [1.0, 4.0]  # K2's is overdue on 08-01 too
    assert out.loc["C", "value"] == pytest.approx(0.25)
    early = rectify.ontime_rate(notices, units, "2026-07", date(2026, 7, 31)).set_index("unit_code")
    assert "K2" not in early.index and early.loc["C", "denominator"] == 3.0
    assert rectify.ontime_rate(notices.iloc[:0], units, "2026-07", date(2026, 8, 1)).empty
