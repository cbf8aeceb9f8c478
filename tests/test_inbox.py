"""The 待办 inbox (etl.supervision.inbox.todo): per role, what waits for that user, in the user's scope."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from etl.supervision import actions, inbox, rectify, spotcheck
from etl.warehouse.schema import sup_publications
from tests.spotcheck_fixtures import drawn
from tests.supervision_fixtures import excused_incident, finding_of, frame, user

STATION_A, STATION_A2 = "140403510000", "140403520000"


def test_sections_per_role(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal, county = user(eng, "legal"), user(eng, "county")
    assert set(inbox.SECTIONS) == {"appeals", "responses", "spotchecks", "excuses", "notices", "overdue", "appealable"}
    assert list(inbox.todo(eng, legal)) == ["appeals", "responses", "spotchecks", "excuses"]
    assert list(inbox.todo(eng, county)) == ["notices", "overdue", "appealable"]
    assert inbox.todo(eng, user(eng, "leader")) == {} and inbox.todo(eng, user(eng, "it")) == {}
    assert all(inbox.SECTIONS[k] for k in inbox.SECTIONS)


def test_legal_inbox(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal, county, station = user(eng, "legal"), user(eng, "county"), user(eng, "station")
    day = date(2026, 12, 1)
    empty = inbox.todo(eng, legal, today=day)
    assert empty["appeals"].empty and empty["responses"].empty and empty["spotchecks"].empty
    excuses_before = len(empty["excuses"])
    assert excuses_before > 0 and empty["excuses"]["report_id"].notna().all()

    key = finding_of(eng, rule="AV-NONE", unit_prefix="1404035")["finding_key"]
    appeal = actions.file_appeal(eng, county, key, reason="设备故障")
    mine = drawn(eng, per_unit=1, reviewers=["legal"])
    anyone = drawn(eng, per_unit=1, kind="cases")
    with eng.begin() as conn:  # an item assigned to another legal user: not in this user's inbox
        conn.execute(
            sa.text("UPDATE sup_spotcheck_items SET assigned_to = 'other' WHERE campaign_id = :c AND draw_order = 1"),
            {"c": anyone["campaign_id"]},
        )
    first = spotcheck.items(eng, mine["campaign_id"])["object_key"].iloc[0]
    spotcheck.record(eng, legal, mine["campaign_id"], first, reason="合格")  # reviewed: no longer waiting
    notice = rectify.issue(eng, legal, STATION_A, finding_keys=[key], text="整改", reason="r", today=day)
    rectify.respond(eng, station, notice["notice_id"], text="已整改")
    incident = excused_incident(eng)
    actions.judge_excuse(eng, legal, incident, "accept", reason="属实")

    box = inbox.todo(eng, legal, today=day)
    assert box["appeals"]["appeal_id"].tolist() == [appeal]
    assert box["responses"]["notice_id"].tolist() == [notice["notice_id"]]
    sc = box["spotchecks"]
    assert len(sc) == mine["drawn"] - 1 + anyone["drawn"] - 1
    assert first not in set(sc["object_key"]) and "other" not in set(sc["assigned_to"].dropna())
    assert len(box["excuses"]) == excuses_before - 1 and incident not in set(box["excuses"]["incident_no"])


def test_unit_admin_inbox(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    legal, county, station = user(eng, "legal"), user(eng, "county"), user(eng, "station")
    day = date(2026, 12, 1)
    own = [finding_of(eng, unit_prefix=STATION_A, offset=i)["finding_key"] for i in range(3)]
    other = finding_of(eng, unit_prefix=STATION_A2)["finding_key"]
    n1 = rectify.issue(eng, legal, STATION_A, finding_keys=own[:1], text="整改", reason="r", today=day)["notice_id"]
    n2 = rectify.issue(
        eng, legal, STATION_A2, finding_keys=[other], text="整改", reason="r", today=day, deadline="2026-12-03"
    )["notice_id"]
    n3 = rectify.issue(eng, legal, STATION_A, finding_keys=own[1:2], text="整改", reason="r", today=day)["notice_id"]
    rectify.respond(eng, station, n3, text="已整改")  # answered: waits for the legal department now

    box = inbox.todo(eng, station, today=day)
    assert box["notices"]["notice_id"].tolist() == [n1]
    assert box["overdue"].empty
    late = inbox.todo(eng, county, today=date(2026, 12, 4))
    assert sorted(late["notices"]["notice_id"]) == sorted([n1, n2])
    assert late["overdue"]["notice_id"].tolist() == [n2]
    assert inbox.todo(eng, station, today=date(2026, 12, 4))["overdue"].empty  # n2 is not the station's

    appealable = set(box["appealable"]["finding_key"])
    assert set(own) <= appealable and other not in appealable
    scope = set(frame(eng, "SELECT unit_code FROM findings WHERE finding_key IN (:a)", a=own[0])["unit_code"])
    assert scope == {STATION_A} and set(box["appealable"]["unit_code"]) == {STATION_A}
    actions.file_appeal(eng, station, own[0], reason="有说明")  # pending: no second appeal
    actions.review(eng, legal, own[1], "confirm", reason="属实")  # no longer open
    left = set(inbox.todo(eng, station, today=day)["appealable"]["finding_key"])
    assert own[0] not in left and own[1] not in left and own[2] in left


def test_published_periods_close_the_appeal_window(sqlite_engine) -> None:  # noqa: ANN001
    eng = sqlite_engine
    station = user(eng, "station")
    key = finding_of(eng, unit_prefix=STATION_A)["finding_key"]
    month = frame(eng, "SELECT month FROM findings WHERE finding_key = :k", k=key)["month"].iloc[0]
    before = inbox.todo(eng, station, today=date(2026, 12, 1))["appealable"]
    assert key in set(before["finding_key"])
    with eng.begin() as conn:
        conn.execute(
            sa.insert(sup_publications),
            {
                "period": month[:4],
                "version": 1,
                "scheme_id": "s",
                "reason": "发布",
                "published_by": "legal",
                "published_at": datetime(2026, 11, 25, 10, 0),
            },
        )
    within = inbox.todo(eng, station, today=date(2026, 12, 1))["appealable"]
    assert key in set(within["finding_key"]) and within.set_index("finding_key").loc[key, "late"] == 1
    after = inbox.todo(eng, station, today=date(2026, 12, 20))["appealable"]  # appeal_days: 10
    assert after[after["month"].str.startswith(month[:4])].empty


def test_a_limited_inbox_lists_the_oldest_rows_and_counts_them_all(sqlite_engine) -> None:  # noqa: ANN001
    """A province's Art. 17 reports run to hundreds of thousands: each section lists at most ``limit`` rows (the
    oldest first, cut in SQL for the reports) and keeps its full count; ``counts`` lists none."""
    eng = sqlite_engine
    day = date(2026, 12, 1)
    for who in ("legal", "county"):
        u = user(eng, who)
        whole = inbox.todo(eng, u, today=day)
        cut = inbox.todo(eng, u, today=day, limit=3)
        assert list(cut) == list(whole)
        for sid, rows in whole.items():
            assert cut[sid].attrs["total"] == len(rows) == rows.attrs["total"], sid
            assert cut[sid].to_dict("records") == rows.head(3).to_dict("records"), sid
        assert inbox.counts(eng, u, today=day) == {sid: len(rows) for sid, rows in whole.items()}
    assert len(inbox.todo(eng, user(eng, "legal"), today=day)["excuses"]) > 3  # the cut was tested on a long list
