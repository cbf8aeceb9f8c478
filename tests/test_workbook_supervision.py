"""The workbook's sheets 抽查情况 and 整改情况: rows, per-unit rates, scope, formula safety, publication."""

from __future__ import annotations

import io
import sqlite3
from datetime import date, datetime

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa

from etl.periods import parse
from etl.reports.workbook import build_workbook, data
from etl.reports.workbook.sheets import DATA_QUALITY_NOTE
from etl.reports.workbook.supervision import NOT_FROZEN
from etl.users import User
from etl.warehouse.db import make_engine, read_df
from tests import workbook_fixtures as wf

GEN_AT = datetime(2026, 12, 1, 9, 0, 0)
CITY = wf.CITY
COUNTY = "140403000000"
S1, S2, S3 = "140403010000", "140403020000", "140404010000"  # two stations of COUNTY, one of the other county
LEGAL = User("legal", "李法", "legal", None, None)
TODAY = date(2026, 11, 10)


def _campaign(conn: sa.Connection, cid: int, period: str, state: str = "open") -> None:
    conn.execute(
        sa.text(
            "INSERT INTO sup_campaigns (campaign_id, period, object_kind, scope_unit, per_unit, seed, population, "
            "drawn, reason, created_by, created_at, state, version) VALUES (:c, :p, 'events', NULL, 2, 1, 10, 4, "
            "'抽查', 'legal', '2026-10-02 09:00:00', :s, 1)"
        ),
        {"c": cid, "p": period, "s": state},
    )


def _item(conn: sa.Connection, cid: int, key: str, unit: str, month: str, verdict: str | None, failed=None, n=1):  # noqa: ANN001, ANN202
    conn.execute(
        sa.text(
            "INSERT INTO sup_spotcheck_items (campaign_id, object_key, object_kind, unit_code, period, month, "
            "occurred_at, draw_order, verdict, failed_points, reviewed_by, reviewed_at, version) VALUES "
            "(:c, :k, 'events', :u, :m, :m, :t, :n, :v, :f, :by, :at, 1)"
        ),
        {
            "c": cid,
            "k": key,
            "u": unit,
            "m": month,
            "t": f"{month}-05 10:00:00",
            "n": n,
            "v": verdict,
            "f": failed,
            "by": "legal" if verdict else None,
            "at": f"{month}-20 15:00:00" if verdict else None,
        },
    )


def _notice(conn: sa.Connection, nid: int, unit: str, period: str | None, issued: str, deadline: str, state: str,
            closed: str | None = None, findings: int = 2, by: str = "legal") -> None:  # fmt: skip
    conn.execute(
        sa.text(
            "INSERT INTO sup_notices (notice_id, unit_code, issued_by, issued_at, deadline, text, basis, period, "
            "state, closed_at, closed_by, version) VALUES (:n, :u, :by, :i, :d, '整改', 'period', :p, :s, :c, "
            ":cb, 1)"
        ),
        {
            "n": nid,
            "u": unit,
            "by": by,
            "i": issued,
            "d": date.fromisoformat(deadline),
            "p": period,
            "s": state,
            "c": closed,
            "cb": "legal" if closed else None,
        },
    )
    for k in range(findings):
        conn.execute(
            sa.text(
                "INSERT INTO sup_notice_findings (notice_id, finding_key, rule_id, unit_code, month) "
                "VALUES (:n, :k, 'AV-NONE', :u, :m)"
            ),
            {"n": nid, "k": f"AV-NONE:X{nid}-{k}", "u": unit, "m": (period or issued[:7])[:7]},
        )


def fill(conn: sa.Connection) -> None:
    """Campaign 1 (2026-10): S1 pass + fail, S2 not reviewed, S3 pass; an item of 2026-09 in campaign 2;
    notices of 2026-10 (on time, late, overdue open, not yet due, returned) and one of 2026-09."""
    _campaign(conn, 1, "2026-10")
    _campaign(conn, 2, "2026-Q3", "closed")
    _item(conn, 1, "J-S1-A", S1, "2026-10", "pass", n=1)
    _item(conn, 1, '=HYPERLINK("x")', S1, "2026-10", "fail", "16.2,11", n=2)
    _item(conn, 1, "J-S2-A", S2, "2026-10", None, n=3)
    _item(conn, 1, "J-S3-A", S3, "2026-10", "pass", n=4)
    _item(conn, 2, "J-S1-Q", S1, "2026-09", "fail", "16.5", n=1)
    _notice(conn, 1, S1, "2026-10", "2026-10-03 09:00:00", "2026-10-18", "closed", "2026-10-15 10:00:00")
    _notice(conn, 2, S1, "2026-10", "2026-10-03 09:00:00", "2026-10-18", "closed", "2026-10-20 10:00:00")
    _notice(conn, 3, S2, "2026-10", "2026-10-03 09:00:00", "2026-10-18", "responded", by="=1+1")
    _notice(conn, 4, S3, "2026-10", "2026-11-01 09:00:00", "2026-11-16", "open")
    _notice(conn, 5, S3, None, "2026-10-25 09:00:00", "2026-11-09", "returned")
    _notice(conn, 6, S3, "2026-09", "2026-09-25 09:00:00", "2026-10-10", "open")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('wbs') / 'warehouse.sqlite'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        wf.populate(conn)
        fill(conn)
    engine.dispose()
    return url


def _book(url: str, **kw) -> openpyxl.Workbook:  # noqa: ANN003
    engine = make_engine(url)
    try:
        content = build_workbook(engine, generated_at=GEN_AT, **kw)
    finally:
        engine.dispose()
    return openpyxl.load_workbook(io.BytesIO(content))


def _tables(ws) -> tuple[list[tuple], list[tuple]]:  # noqa: ANN001
    """(the sheet's table rows with its header, the rate table rows with its header)."""
    rows = [tuple(r) for r in ws.iter_rows(values_only=True)]
    blank = next((i for i, r in enumerate(rows) if not any(v is not None for v in r)), len(rows))
    main, rest = rows[:blank], rows[blank + 1 :]
    rate = [tuple(v for v in r if v is not None) for r in rest[1:]]  # rest[0]: the rate table's title
    return main, rate


def test_readers(warehouse: str) -> None:
    engine = make_engine(warehouse)
    with engine.connect() as conn:
        every = set(data.read_units(conn)["unit_code"])
        items = data.read_spotchecks(conn, parse("2026-10"), every)
        assert sorted(items["object_key"]) == sorted(["J-S1-A", '=HYPERLINK("x")', "J-S2-A", "J-S3-A"])
        assert list(items.columns) == data.SPOTCHECK_COLUMNS
        assert len(data.read_spotchecks(conn, parse("2026-Q3"), every)) == 1  # by the object's month
        assert len(data.read_spotchecks(conn, parse("2026"), every)) == 5
        assert set(data.read_spotchecks(conn, parse("2026-10"), {S3})["unit_code"]) == {S3}
        n = data.read_notices(conn, parse("2026-10"), every, today=TODAY).set_index("notice_id")
        assert sorted(n.index) == [1, 2, 3, 6]  # due in October (6: issued in September, due 10-10)
        assert n.loc[1, "overdue"] == 0 and n.loc[1, "on_time"] == 1
        assert n.loc[2, "overdue"] == 1 and n.loc[2, "on_time"] == 0  # closed two days late
        assert n.loc[3, "overdue"] == 1 and n.loc[3, "on_time"] == 0  # answered but not closed by the deadline
        assert n.loc[6, "overdue"] == 1 and n.loc[6, "on_time"] == 0  # still open after its deadline
        assert n.loc[3, "findings"] == 2 and n.loc[1, "deadline"] == "2026-10-18"
        nov = data.read_notices(conn, parse("2026-11"), every, today=TODAY).set_index("notice_id")
        assert sorted(nov.index) == [4, 5]
        assert nov.loc[4, "overdue"] == 0 and nov.loc[4, "on_time"] is None  # not yet due
        assert nov.loc[5, "overdue"] == 1  # deadline 11-09 < today 11-10
        on_deadline = data.read_notices(conn, parse("2026-11"), every, today=date(2026, 11, 9)).set_index("notice_id")
        assert on_deadline.loc[5, "overdue"] == 0  # due by the end of its deadline day
        assert list(data.read_notices(conn, parse("2026-Q3"), every, today=TODAY)["notice_id"]) == []
        assert sorted(data.read_notices(conn, parse("2026"), every, today=TODAY)["notice_id"]) == [1, 2, 3, 4, 5, 6]
    engine.dispose()


def test_sheets_rows_and_rates(warehouse: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVSUP_TODAY", TODAY.isoformat())
    wb = _book(warehouse, period="2026-10")
    assert wb.sheetnames[-2:] == ["抽查情况", "整改情况"]
    main, rate = _tables(wb["抽查情况"])
    assert main[0][:7] == ("单位代码", "单位", "抽查批次", "对象类型", "对象编号", "对象时间", "复核结论")
    by_key = {r[4]: r for r in main[1:]}
    assert set(by_key) == {"J-S1-A", '\'=HYPERLINK("x")', "J-S2-A", "J-S3-A"}  # the formula is neutralised
    failed = by_key['\'=HYPERLINK("x")']
    assert failed[0] == S1 and failed[2] == 1 and failed[6] == "不合格" and failed[7] == "16.2、11"
    assert failed[8] == "legal" and failed[9] == "2026-10-20 15:00:00"
    assert by_key["J-S2-A"][6] == "未复核" and by_key["J-S2-A"][9] is None
    rates = {r[0]: r for r in rate[1:]}
    assert rate[0][:3] == ("单位代码", "单位（含下级）", "抽查对象")
    assert rates[S1][2:] == (2, 2, 1, 1, 0.5)
    assert rates[S2][2:6] == (1, 0, 0, 0) and rates[S2][6] == "—"
    assert rates[COUNTY][2:] == (3, 2, 1, 1, 0.5)  # the county: itself and below
    assert rates[CITY][2:] == (4, 3, 2, 1, pytest.approx(2 / 3))
    ws = wb["抽查情况"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:J{len(main)}" and ws.print_title_rows == "$1:$1"
    assert ws.cell(row=len(main) + 4, column=7).number_format == "0.00%"

    main, rate = _tables(wb["整改情况"])
    rows = {r[2]: r for r in main[1:]}
    assert set(rows) == {f"长公法整〔2026〕{n}号" for n in (1, 2, 3, 6)}  # due in October
    one, two, three, six = (rows[f"长公法整〔2026〕{n}号"] for n in (1, 2, 3, 6))
    assert one[5:] == ("2026-10-18", 2, "已整改关闭", "否", "2026-10-15 10:00:00", "是")
    assert two[8] == "是" and two[10] == "否"
    assert three[4] == "'=1+1" and three[7] == "已反馈待复查" and three[8] == "是"
    assert six[8] == "是" and six[10] == "否"
    rates = {r[0]: r for r in rate[1:]}
    # notices, closed, overdue, on time, counted (closed or due), rate
    assert rates[S1][2:] == (2, 2, 1, 1, 2, 0.5)
    assert rates[S3][2:] == (1, 0, 1, 0, 1, 0.0)
    assert rates[COUNTY][2:] == (3, 2, 2, 1, 3, pytest.approx(1 / 3))
    assert rates[CITY][2:] == (4, 2, 3, 1, 4, 0.25)


def test_unit_scope_and_empty_period(warehouse: str) -> None:
    wb = _book(warehouse, period="2026-10", unit_code=COUNTY)
    main, rate = _tables(wb["抽查情况"])
    assert {r[0] for r in main[1:]} == {S1, S2}
    assert {r[0] for r in rate[1:]} == {COUNTY, S1, S2}
    main, _ = _tables(wb["整改情况"])
    assert {r[0] for r in main[1:]} == {S1, S2}
    wb = _book(warehouse, period="2026-07")
    assert _tables(wb["抽查情况"])[0][1][0] == "本期无抽查对象"
    assert _tables(wb["整改情况"])[0][1][0] == "本期无整改通知"


def test_published_period_uses_frozen_frames(warehouse: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A publication freezes both sheets; later changes do not show; an older publication without the frames
    shows the note."""
    from etl.supervision.publish import publish

    monkeypatch.setenv("AVSUP_TODAY", TODAY.isoformat())
    copy = tmp_path / "w.sqlite"
    with sqlite3.connect(warehouse[len("sqlite:///") :]) as a, sqlite3.connect(copy) as b:
        a.backup(b)  # a private copy: publishing writes
    a.close()
    b.close()
    url = f"sqlite:///{copy}"
    dst = make_engine(url)
    before = _book(url, period="2026-10")
    pid, _ = publish(dst, LEGAL, "2026-10", reason="发布")
    with dst.connect() as conn:
        names = set(
            pd.read_sql(
                sa.text("SELECT name FROM sup_published_frames WHERE publication_id = :p"), conn, params={"p": pid}
            )["name"]
        )
    assert {"spotchecks", "notices"} <= names
    published = _book(url, period="2026-10")
    for sheet in ("抽查情况", "整改情况"):
        assert list(published[sheet].values) == list(before[sheet].values), sheet
    with dst.begin() as conn:  # later: a review and a closed notice; the published sheets stay as they were
        conn.exec_driver_sql(
            "UPDATE sup_spotcheck_items SET verdict = 'fail', failed_points = '16.1' WHERE object_key = 'J-S2-A'"
        )
        conn.exec_driver_sql(
            "UPDATE sup_notices SET state = 'closed', closed_at = '2026-10-30 10:00:00' WHERE notice_id = 3"
        )
    again = _book(url, period="2026-10")
    current = _book(url, period="2026-10", current=True)
    for sheet in ("抽查情况", "整改情况"):
        assert list(again[sheet].values) == list(before[sheet].values), sheet
        assert list(current[sheet].values) != list(before[sheet].values), sheet
    # a publication made before these frames existed
    with dst.begin() as conn:
        conn.exec_driver_sql(
            "DELETE FROM sup_published_frames WHERE publication_id = ? AND name IN ('spotchecks', 'notices',"
            " 'quality')",
            (pid,),
        )
    old = _book(url, period="2026-10")
    for sheet, what in (("抽查情况", "抽查"), ("整改情况", "整改")):
        assert old[sheet].cell(row=2, column=1).value == NOT_FROZEN.format(what=what)
        assert old[sheet].max_row == 2
    assert old["数据质量"].cell(row=2, column=1).value == DATA_QUALITY_NOTE  # today's queue, said so
    assert published["数据质量"].cell(row=2, column=1).value != DATA_QUALITY_NOTE  # frozen with the rest
    # the other sheets are unaffected
    assert list(old["汇总"].values) == list(published["汇总"].values)
    dst.dispose()


def test_sheet_rate_is_the_metric_of_the_supervision_record(warehouse: str) -> None:
    """整改按期完成率 of the sheet and of ``etl.supervision.rectify.ontime_rate`` (the pages' metric) agree."""
    from etl.supervision.rectify import ontime_rate

    engine = make_engine(warehouse)
    with engine.connect() as conn:
        units = data.read_units(conn)
        notices = read_df(conn, "SELECT unit_code, deadline, state, closed_at FROM sup_notices")
        every = set(units["unit_code"])
        sheet = data.read_notices(conn, parse("2026-10"), every, today=TODAY)
    engine.dispose()
    rate = ontime_rate(notices, units, "2026-10", TODAY).set_index("unit_code")
    counted = sheet[sheet["on_time"].notna()]
    assert rate.loc[CITY, "denominator"] == len(counted) == 4
    assert rate.loc[CITY, "numerator"] == int(counted["on_time"].sum()) == 1
    assert rate.loc[S1, "value"] == 0.5
