"""Reviews, appeals and Art. 17 judgements (etl.supervision.actions) on the small demo, SQLite and PostgreSQL.

Every refusal is checked to leave the supervision tables and the audit log exactly as they were; every write
to leave its audit row; the stale-write guard with two reviewers (and, on PostgreSQL, two real connections
interleaved).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from etl.errors import ConfigError, StaleWriteError, SupervisionError
from etl.supervision import actions
from etl.times import ts_param
from etl.users import User, user_for
from etl.warehouse.db import make_engine
from tests.supervision_fixtures import (
    COUNTY_A,
    COUNTY_B,
    excused_incident,
    finding_of,
    frame,
    load_pg,
    scalar,
    snapshot,
    user,
)


def refused(engine, fn, *args, match: str, exc=SupervisionError, **kwargs) -> None:  # noqa: ANN001
    """``fn`` raises ``exc`` with ``match`` in its message and writes nothing (supervision tables, audit log)."""
    before = snapshot(engine)
    with pytest.raises(exc, match=match):
        fn(engine, *args, **kwargs)
    assert snapshot(engine) == before


def audit_rows(engine, action: str) -> list[dict]:  # noqa: ANN001
    df = frame(
        engine, "SELECT username, role, scope, page, action, object, reason FROM audit_log WHERE action = :a", a=action
    )
    return df.to_dict("records")


# --- users --------------------------------------------------------------------------------------


def test_users_resolve_from_the_demo_users_file_with_role_and_scope(engine) -> None:  # noqa: ANN001
    legal, county, leader = user(engine, "legal"), user(engine, "COUNTY"), user(engine, "leader")
    assert (legal.role, legal.scope, legal.scope_label) == ("legal", None, "city")
    assert county.role == "unit_admin" and county.unit_code == COUNTY_A and COUNTY_A in county.scope
    assert all(code.startswith("1404035") or code == COUNTY_A for code in county.scope)
    assert leader.scope is None
    with pytest.raises(ConfigError, match="没有用户"):
        user(engine, "ghost")


def test_a_legal_office_below_the_city_acts_in_its_own_scope(engine) -> None:  # noqa: ANN001
    units = frame(engine, "SELECT unit_code, parent_code FROM org_units")
    users = {"lx": {"name": "县法制", "role": "legal", "unit_code": COUNTY_B, "password_hash": "x"}}
    county_legal = user_for("lx", users, units)
    assert county_legal.scope and COUNTY_B in county_legal.scope and COUNTY_A not in county_legal.scope
    other = finding_of(engine, unit_prefix="1404035")  # a finding of county A
    refused(engine, actions.review, county_legal, other["finding_key"], "confirm", reason="越权", match="管辖范围")
    own = finding_of(engine, unit_prefix="1404235")
    assert actions.review(engine, county_legal, own["finding_key"], "confirm", reason="本县复核") > 0


# --- reviews -----------------------------------------------------------------------------------


def test_exempt_confirm_reopen_with_history_versions_and_audit(engine) -> None:  # noqa: ANN001
    legal = user(engine, "legal")
    f = finding_of(engine, rule="AV-NONE")
    key = f["finding_key"]
    s0 = actions.state_of(engine, key)
    assert (s0["state"], s0["version"], s0["known"], s0["appeal"]) == ("open", 0, True, None)

    rid = actions.review(engine, legal, key, "exempt", reason="设备故障已核实", category="不可抗力", expected_version=0)
    s1 = actions.state_of(engine, key)
    assert (s1["state"], s1["version"], s1["category"], s1["updated_by"]) == ("exempted", 1, "不可抗力", "legal")
    review = frame(engine, "SELECT * FROM sup_reviews WHERE review_id = :i", i=rid).iloc[0]
    assert (review["finding_key"], review["verdict"], review["source"], review["role"]) == (
        key,
        "exempt",
        "review",
        "legal",
    )
    view = frame(engine, "SELECT review_state FROM v_findings WHERE finding_key = :k", k=key)
    assert list(view["review_state"]) == ["exempted"]
    state = frame(engine, "SELECT rule_id, unit_code, month FROM sup_finding_state WHERE finding_key = :k", k=key)
    assert state.iloc[0].to_dict() == {"rule_id": f["rule_id"], "unit_code": f["unit_code"], "month": f["month"]}

    rid2 = actions.review(engine, legal, key, "reopen", reason="复查后重新打开", expected_version=1)
    rid3 = actions.review(engine, legal, key, "confirm", reason="确认问题成立")
    assert rid < rid2 < rid3
    assert actions.state_of(engine, key)["state"] == "confirmed" and actions.state_of(engine, key)["version"] == 3
    history = frame(engine, "SELECT verdict FROM sup_reviews WHERE finding_key = :k ORDER BY review_id", k=key)
    assert list(history["verdict"]) == ["exempt", "reopen", "confirm"]
    rows = [r for a in ("review:exempt", "review:reopen", "review:confirm") for r in audit_rows(engine, a)]
    assert [r["object"] for r in rows] == [key] * 3
    assert rows[0] == {
        "username": "legal",
        "role": "legal",
        "scope": "city",
        "page": "cli",
        "action": "review:exempt",
        "object": key,
        "reason": "[不可抗力] 设备故障已核实",
    }


def test_bad_reviews_are_refused_and_write_nothing(engine) -> None:  # noqa: ANN001
    legal, leader, county = user(engine, "legal"), user(engine, "leader"), user(engine, "county")
    key = finding_of(engine, rule="AV-NONE")["finding_key"]
    refused(engine, actions.review, legal, key, "exempt", reason="  ", category="其他", match="理由")
    refused(engine, actions.review, leader, key, "confirm", reason="领导复核", match="无权")
    refused(engine, actions.review, county, key, "confirm", reason="单位复核", match="无权")
    refused(engine, actions.review, legal, "AV-NONE:NO-SUCH", "confirm", reason="x", match="未知的问题编号")
    refused(engine, actions.review, legal, key, "exempt", reason="x", match="理由类别")
    refused(engine, actions.review, legal, key, "exempt", reason="x", category="随便", match="理由类别")
    refused(engine, actions.review, legal, key, "delete", reason="x", match="复核结论")
    refused(engine, actions.review, legal, key, "reopen", reason="x", match="待复核")  # nothing to reopen
    refused(
        engine, actions.review, legal, key, "confirm", reason="x", expected_version=3, match="刷新", exc=StaleWriteError
    )
    keys = [key, "AV-NONE:NO-SUCH"]
    refused(engine, actions.review_many, legal, keys, "confirm", reason="批量", match="未知的问题编号")
    refused(engine, actions.review_many, legal, [], "confirm", reason="批量", match="至少")
    refused(engine, actions.review_many, legal, [key, key], "confirm", reason="批量", match="重复")


def test_two_reviewers_on_a_stale_page_the_second_is_refused(engine) -> None:  # noqa: ANN001
    legal = user(engine, "legal")
    key = finding_of(engine, rule="AV-GAP")["finding_key"]
    shown = actions.state_of(engine, key)["version"]  # both pages show version 0 (never judged)
    actions.review(engine, legal, key, "confirm", reason="第一位复核人", expected_version=shown)
    refused(
        engine,
        actions.review,
        legal,
        key,
        "exempt",
        reason="第二位",
        category="其他",
        expected_version=shown,
        match="已被他人更新",
        exc=StaleWriteError,
    )
    shown = actions.state_of(engine, key)["version"]  # both reload: version 1
    actions.review(engine, legal, key, "exempt", reason="改为豁免", category="数据错误", expected_version=shown)
    refused(
        engine,
        actions.review,
        legal,
        key,
        "reopen",
        reason="第二位",
        expected_version=shown,
        match="已被他人更新",
        exc=StaleWriteError,
    )
    assert actions.state_of(engine, key)["state"] == "exempted"


def test_review_many_is_all_or_nothing(engine) -> None:  # noqa: ANN001
    legal = user(engine, "legal")
    a, b = (finding_of(engine, rule="UPLOAD-LATE", offset=i)["finding_key"] for i in (0, 1))
    actions.review(engine, legal, b, "confirm", reason="先确认")
    # b is now at version 1; the page showed 0 for both: the whole batch is refused, a stays unwritten
    refused(
        engine,
        actions.review_many,
        legal,
        [a, b],
        "exempt",
        reason="批量豁免",
        category="其他",
        expected_versions={a: 0, b: 0},
        match="已被他人更新",
        exc=StaleWriteError,
    )
    ids = actions.review_many(
        engine, legal, [a, b], "exempt", reason="批量豁免", category="其他", expected_versions=[0, 1]
    )
    assert len(ids) == 2 and len(set(ids)) == 2
    states = frame(engine, "SELECT finding_key, state FROM sup_finding_state WHERE finding_key IN (:a, :b)", a=a, b=b)
    assert set(states["state"]) == {"exempted"} and len(states) == 2
    assert {r["object"] for r in audit_rows(engine, "review:exempt")} == {a, b}


def test_exempting_changes_what_counts_at_once(engine) -> None:  # noqa: ANN001
    """An exempted finding leaves the scores at once: the unit's scores are recomputed in the same transaction."""
    legal = user(engine, "legal")
    f = finding_of(engine, rule="AV-NONE")
    sql = "SELECT item_id, clean, deductions, score FROM unit_item_scores WHERE unit_code = :u AND active = 1 ORDER BY period, item_id"
    before = frame(engine, sql, u=f["unit_code"])
    actions.review(engine, legal, f["finding_key"], "exempt", reason="不可抗力", category="不可抗力")
    after = frame(engine, sql, u=f["unit_code"])
    assert not before.equals(after)
    assert after["clean"].sum() > before["clean"].sum()  # the event counts as clean now
    actions.review(engine, legal, f["finding_key"], "reopen", reason="撤销豁免")
    assert frame(engine, sql, u=f["unit_code"]).equals(before)


def test_an_orphaned_judgement_is_kept_and_can_be_judged_again(engine) -> None:  # noqa: ANN001
    legal = user(engine, "legal")
    key = finding_of(engine, rule="DOC-MISSING")["finding_key"]
    actions.review(engine, legal, key, "confirm", reason="确认")
    with engine.begin() as conn:  # the object leaves the sources: the next run writes no such finding
        conn.execute(sa.text("DELETE FROM findings WHERE finding_key = :k"), {"k": key})
    s = actions.state_of(engine, key)
    assert (s["known"], s["orphaned"], s["state"]) == (False, True, "confirmed")
    orphaned = frame(engine, "SELECT orphaned FROM v_reviews WHERE finding_key = :k", k=key)
    assert list(orphaned["orphaned"]) == [1]
    actions.review(engine, legal, key, "reopen", reason="来源已删除，重新打开")
    assert actions.state_of(engine, key)["state"] == "open"


# --- appeals -----------------------------------------------------------------------------------


def test_appeal_filed_in_scope_then_upheld_exempts(engine) -> None:  # noqa: ANN001
    legal, county, station = user(engine, "legal"), user(engine, "county"), user(engine, "station")
    f = finding_of(engine, rule="AV-NONE", unit_prefix="1404035")
    key = f["finding_key"]
    foreign = finding_of(engine, rule="AV-NONE", unit_prefix="1404235")["finding_key"]
    refused(engine, actions.file_appeal, county, key, reason="", match="理由")
    refused(engine, actions.file_appeal, legal, key, reason="法制代申诉", match="无权")
    refused(engine, actions.file_appeal, county, foreign, reason="别县的问题", match="管辖范围")
    refused(engine, actions.file_appeal, county, "AV-NONE:NO-SUCH", reason="x", match="未知的问题编号")
    if f["unit_code"] not in station.scope:
        refused(engine, actions.file_appeal, station, key, reason="别所的问题", match="管辖范围")

    aid = actions.file_appeal(engine, county, key, reason="当日设备送修，有记录")
    appeal = frame(engine, "SELECT * FROM sup_appeals WHERE appeal_id = :i", i=aid).iloc[0]
    assert (appeal["finding_key"], appeal["unit_code"], appeal["filed_by"], appeal["late"], appeal["version"]) == (
        key,
        f["unit_code"],
        "county",
        0,
        1,
    )
    assert actions.state_of(engine, key)["appeal"]["appeal_id"] == aid
    refused(engine, actions.file_appeal, county, key, reason="再申诉一次", match="待处理的申诉")
    assert list(frame(engine, "SELECT appeal_state FROM v_findings WHERE finding_key = :k", k=key)["appeal_state"]) == [
        "pending"
    ]

    refused(engine, actions.decide_appeal, county, aid, "uphold", reason="自己处理", match="无权")
    refused(engine, actions.decide_appeal, legal, aid, "maybe", reason="x", match="申诉处理结论")
    refused(engine, actions.decide_appeal, legal, 999999, "uphold", reason="x", match="未知的申诉编号")
    refused(
        engine,
        actions.decide_appeal,
        legal,
        aid,
        "uphold",
        reason="x",
        expected_version=2,
        match="刷新",
        exc=StaleWriteError,
    )
    rid = actions.decide_appeal(engine, legal, aid, "uphold", reason="送修记录属实", expected_version=1)
    s = actions.state_of(engine, key)
    assert (s["state"], s["category"], s["appeal"]["decision"], s["appeal"]["version"]) == (
        "exempted",
        "其他",
        "upheld",
        2,
    )
    review = frame(engine, "SELECT verdict, source FROM sup_reviews WHERE review_id = :i", i=rid).iloc[0]
    assert (review["verdict"], review["source"]) == ("exempt", "appeal")
    refused(engine, actions.decide_appeal, legal, aid, "reject", reason="再处理", match="已处理")
    refused(engine, actions.file_appeal, county, key, reason="已豁免还申诉", match="已是「已豁免」")
    assert [r["object"] for r in audit_rows(engine, "appeal:upheld")] == [f"{key} #申诉{aid}"]


def test_the_database_holds_one_pending_appeal_per_finding(engine, monkeypatch) -> None:  # noqa: ANN001
    """Two unit administrators filing at the same moment both pass the check in code; the partial unique index
    refuses the second insert, which file_appeal reports as a stale write (nothing written)."""
    county = user(engine, "county")
    key = finding_of(engine, rule="AV-NONE", unit_prefix="1404035")["finding_key"]
    actions.file_appeal(engine, county, key, reason="第一份申诉")
    with engine.connect() as conn:  # the check in code sees no pending appeal, as a racing writer would
        monkeypatch.setattr(conn, "execute", _hide_pending(conn.execute))
        before = snapshot(engine)
        with pytest.raises(StaleWriteError, match="已有待处理的申诉"):
            actions.file_appeal(conn, county, key, reason="同时提交的第二份")
        conn.rollback()
    assert snapshot(engine) == before
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(
            sa.text(
                "INSERT INTO sup_appeals (finding_key, reason, filed_by, filed_at, late, version) "
                "VALUES (:k, 'x', 'county', :t, 0, 1)"
            ),
            {"k": key, "t": ts_param(engine, datetime(2026, 11, 1))},
        )


def _hide_pending(execute):  # noqa: ANN001, ANN202
    """conn.execute that answers the pending-appeal look-up with no row (the race window)."""

    class _NoRow:
        def first(self):  # noqa: ANN202
            return None

    def run(stmt, *args, **kwargs):  # noqa: ANN001, ANN202
        if "sup_appeals" in str(stmt) and "decision IS NULL" in str(stmt) and str(stmt).lstrip().startswith("SELECT"):
            return _NoRow()
        return execute(stmt, *args, **kwargs)

    return run


def test_a_rejected_appeal_confirms(engine) -> None:  # noqa: ANN001
    legal, station = user(engine, "legal"), user(engine, "station")
    key = finding_of(engine, unit_prefix=station.unit_code)["finding_key"]
    aid = actions.file_appeal(engine, station, key, reason="理由")
    actions.decide_appeal(engine, legal, aid, "reject", reason="证据不足")
    s = actions.state_of(engine, key)
    assert (s["state"], s["appeal"]["decision"]) == ("confirmed", "rejected")


def test_appeals_after_a_publication_only_within_the_appeal_days(engine, monkeypatch) -> None:  # noqa: ANN001
    county = user(engine, "county")
    early = finding_of(engine, rule="AV-NONE", unit_prefix="1404035")
    late = frame(
        engine,
        "SELECT finding_key, month FROM findings WHERE unit_code LIKE '1404035%' AND month <> :m "
        "AND month NOT LIKE :y ORDER BY finding_key LIMIT 1",
        m=early["month"],
        y=early["month"][:4] + "-%",
    ).iloc[0]  # another year: the year's publication below does not cover it
    now = datetime(2027, 3, 1, 9, 0, 0)
    monkeypatch.setattr(actions, "_now", lambda: now)
    published = ((early["month"][:4], 3), (late["month"], 20))  # the year of one, the month of the other
    with engine.begin() as conn:
        for i, (period, days) in enumerate(published, start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO sup_publications (publication_id, period, version, scheme_id, reason, published_by, "
                    "published_at) VALUES (:i, :p, 1, 'default', '发布', 'legal', :at)"
                ),
                {"i": 900 + i, "p": period, "at": ts_param(conn, now - timedelta(days=days))},
            )
    aid = actions.file_appeal(engine, county, early["finding_key"], reason="发布后 3 天内申诉")
    assert scalar(engine, "SELECT late FROM sup_appeals WHERE appeal_id = :i", i=aid) == 1
    refused(engine, actions.file_appeal, county, late["finding_key"], reason="过期申诉", match="申诉期已过")
    unpublished = frame(
        engine,
        "SELECT finding_key FROM findings WHERE unit_code LIKE '1404035%' AND month NOT LIKE :y AND month <> :m "
        "ORDER BY finding_key LIMIT 1",
        y=early["month"][:4] + "-%",
        m=late["month"],
    )
    if not unpublished.empty:
        aid2 = actions.file_appeal(engine, county, unpublished.iloc[0]["finding_key"], reason="未发布期间")
        assert scalar(engine, "SELECT late FROM sup_appeals WHERE appeal_id = :i", i=aid2) == 0


# --- Art. 17 explanations -----------------------------------------------------------------------


def test_rejecting_an_excuse_makes_its_findings_count(engine) -> None:  # noqa: ANN001
    legal, county = user(engine, "legal"), user(engine, "county")
    incident = excused_incident(engine)
    assert incident
    keys_sql = "SELECT finding_key FROM v_findings WHERE incident_no = :n AND rule_id LIKE 'AV-%' ORDER BY finding_key"
    assert frame(engine, keys_sql, n=incident).empty  # excused: no AV finding counts
    excused = frame(
        engine, "SELECT finding_key FROM excused_findings WHERE incident_no = :n ORDER BY finding_key", n=incident
    )

    refused(engine, actions.judge_excuse, county, incident, "reject", reason="单位审查", match="无权")
    refused(engine, actions.judge_excuse, legal, incident, "reject", reason=" ", match="理由")
    refused(engine, actions.judge_excuse, legal, incident, "maybe", reason="x", match="审查结论")
    no_report = scalar(
        engine, "SELECT incident_no FROM event_coverage WHERE report_id IS NULL ORDER BY incident_no LIMIT 1"
    )
    refused(engine, actions.judge_excuse, legal, no_report, "reject", reason="x", match="没有中断情况说明")

    hid = actions.judge_excuse(engine, legal, incident, "reject", reason="说明与记录不符", expected_version=0)
    assert hid > 0
    assert list(frame(engine, keys_sql, n=incident)["finding_key"]) == list(excused["finding_key"])
    st = actions.excuse_state_of(engine, incident)
    assert (st["verdict"], st["version"]) == ("rejected", 1) and st["report_id"]
    refused(
        engine,
        actions.judge_excuse,
        legal,
        incident,
        "accept",
        reason="x",
        expected_version=0,
        match="刷新",
        exc=StaleWriteError,
    )
    refused(engine, actions.judge_excuse, legal, incident, "reject", reason="x", match="无需重复")
    actions.judge_excuse(engine, legal, incident, "accept", reason="补充材料后采纳", expected_version=1)
    assert frame(engine, keys_sql, n=incident).empty
    history = frame(engine, "SELECT verdict FROM sup_excuse_history WHERE incident_no = :n ORDER BY id", n=incident)
    assert list(history["verdict"]) == ["rejected", "accepted"]
    assert [r["object"] for r in audit_rows(engine, "excuse:rejected")] == [incident]


# --- a caller's transaction and two real connections --------------------------------------------


def test_inside_a_callers_transaction_a_refusal_leaves_the_callers_writes(fresh_sqlite: str) -> None:
    eng = make_engine(fresh_sqlite)
    legal = user(eng, "legal")
    a, b = (finding_of(eng, rule="AV-GAP", offset=i)["finding_key"] for i in (0, 1))
    with eng.begin() as conn:
        actions.review(conn, legal, a, "confirm", reason="一")
        with pytest.raises(SupervisionError):
            actions.review(conn, legal, b, "reopen", reason="二")  # open already: refused inside a savepoint
    assert actions.state_of(eng, a)["version"] == 1 and actions.state_of(eng, b)["version"] == 0
    eng.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("first_version", [0, 1])
def test_two_connections_interleaved_on_postgresql(demo_sources, pg_url: str, first_version: int) -> None:  # noqa: ANN001
    eng = make_engine(load_pg(demo_sources, pg_url))
    legal = user(eng, "legal")
    key = finding_of(eng, rule="AV-NONE")["finding_key"]
    if first_version:
        actions.review(eng, legal, key, "confirm", reason="先确认")
    outcome: dict = {}

    def second() -> None:
        try:
            outcome["id"] = actions.review(
                eng,
                legal,
                key,
                "reopen" if first_version else "confirm",
                reason="第二位",
                expected_version=first_version,
            )
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            outcome["error"] = exc

    with eng.connect() as conn_a:
        tx = conn_a.begin()
        actions.review(conn_a, legal, key, "exempt", reason="第一位", category="其他", expected_version=first_version)
        t = threading.Thread(target=second)
        t.start()
        time.sleep(1.0)
        assert t.is_alive()  # the second waits for the first's row lock
        tx.commit()
    t.join(30)
    assert isinstance(outcome.get("error"), StaleWriteError), outcome
    s = actions.state_of(eng, key)
    assert (s["state"], s["version"]) == ("exempted", first_version + 1)
    assert scalar(eng, "SELECT COUNT(*) FROM sup_reviews WHERE reason = '第二位'") == 0
    eng.dispose()


def test_user_is_a_plain_dataclass() -> None:
    u = User("x", "X", "legal", None, None)
    assert u.scope_label == "city"
