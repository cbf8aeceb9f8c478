"""Publication (发布) and restatement: a published period stays as published (shared/spec/supervision.md).

A small demo is loaded by ``etl run``; the legal department publishes a quarter with ``python -m etl publish``;
then the sources change (clips of the quarter move a year back: events lose their recordings) and ``etl run``
loads them.  ``etl assess`` for the period still gives the published workbook cell for cell (except its
generation time), ``--current`` the new figures; the restatement lists the units that moved and why; publishing
again is version 2.  Refusals exit 2 with a Chinese message and write nothing.  SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from etl.cli import main
from etl.errors import SupervisionError
from etl.pipeline import run
from etl.reports.workbook import build_workbook
from etl.supervision.publish import RESTATEMENT_COLUMNS, badge, publish, publish_many, restatement
from etl.users import User
from etl.warehouse.db import make_engine

PERIOD = "2026-Q3"
SCHEME = Path(__file__).resolve().parent.parent / "config" / "schemes" / "measures-2026.yaml"
LEGAL = User("legal", "李法", "legal", None, None)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from etl.demo import generate

    out = tmp_path_factory.mktemp("demo")
    generate(out, scale="small", seed=2026, media=False)
    return out


@pytest.fixture
def loaded(demo: Path, tmp_path: Path, warehouse: str) -> tuple[Path, str]:
    """(a private copy of the demo sources, a warehouse loaded from it)."""
    src = tmp_path / "src"
    shutil.copytree(demo, src)
    run(src / "sources.yaml", warehouse=warehouse, progress=False)
    return src, warehouse


def _late_data(src: Path) -> None:
    """The clips of 10–19 August move to 2025 (a correction in the media platform): events lose coverage."""
    with sqlite3.connect(src / "media.sqlite") as con:
        n = con.execute(
            "UPDATE clips SET started_at = replace(started_at, '2026-08', '2025-08'), "
            "ended_at = replace(ended_at, '2026-08', '2025-08'), updated_at = '2026-11-28 23:50:00' "
            "WHERE started_at LIKE '2026-08-1%'"
        ).rowcount
    con.close()
    assert n > 100


def _assess(url: str, out: Path, *extra: str, period: str = PERIOD) -> dict[str, list[tuple]]:
    """``python -m etl assess`` → {sheet: rows of cell values}."""
    assert main(["assess", "--warehouse", url, "--period", period, "--xlsx", str(out), *extra]) == 0
    wb = load_workbook(out)
    return {ws.title: [tuple(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}


def _cover(book: dict[str, list[tuple]]) -> dict[str, object]:
    return {r[0]: r[1] for r in book["封面"] if r and r[0] and r[1]}


def _without(book: dict[str, list[tuple]], *labels: str) -> dict[str, list[tuple]]:
    """The workbook's cells without the cover rows named ``labels``."""
    return {n: [r for r in rows if not (n == "封面" and r and r[0] in labels)] for n, rows in book.items()}


def _rounded(book: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    return {n: [tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows] for n, rows in book.items()}


def _count(url: str, sql: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar() or 0)
    finally:
        engine.dispose()


def _publish_cli(url: str, reason: str, *extra: str) -> int:
    return main(["publish", "--period", PERIOD, "--by", "legal", "--reason", reason, "--warehouse", url, *extra])


def test_published_workbook_survives_changed_sources(loaded: tuple[Path, str], tmp_path: Path, capsys) -> None:  # noqa: ANN001
    src, url = loaded
    before_current = _assess(url, tmp_path / "a.xlsx")
    assert _cover(before_current)["数据状态"] == "草稿（当前数据）"  # not published yet: the current figures
    assert _publish_cli(url, "第三季度考评结果发布") == 0
    assert "第 1 版" in capsys.readouterr().out
    published = _assess(url, tmp_path / "b.xlsx")
    status = _cover(published)["数据状态"]
    assert status.startswith("已发布 v1（发布时间 ") and "legal" in status
    # right after publishing, the frozen frames rebuild exactly what the warehouse gives
    assert _without(published, "数据状态", "生成时间") == _without(before_current, "数据状态", "生成时间")
    engine = make_engine(url)
    try:
        county = build_workbook(engine, period=PERIOD, unit_code="140403000000")
        county_now = build_workbook(engine, period=PERIOD, unit_code="140403000000", current=True)
    finally:
        engine.dispose()
    (tmp_path / "c1.xlsx").write_bytes(county)
    (tmp_path / "c2.xlsx").write_bytes(county_now)
    c1 = {ws.title: list(ws.iter_rows(values_only=True)) for ws in load_workbook(tmp_path / "c1.xlsx").worksheets}
    c2 = {ws.title: list(ws.iter_rows(values_only=True)) for ws in load_workbook(tmp_path / "c2.xlsx").worksheets}
    assert _without(c1, "数据状态", "生成时间") == _without(c2, "数据状态", "生成时间")  # the scope cut in pandas
    assert len(c1["汇总"]) < len(published["汇总"])

    _late_data(src)
    run(src / "sources.yaml", warehouse=url, progress=False)
    after = _assess(url, tmp_path / "d.xlsx")
    assert _without(after, "生成时间") == _without(published, "生成时间")  # every sheet, cell for cell
    current = _assess(url, tmp_path / "e.xlsx", "--current")
    assert _cover(current)["数据状态"] == "草稿（当前数据）"
    assert current["汇总"] != published["汇总"] and current["覆盖率"] != published["覆盖率"]

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = restatement(conn, PERIOD)
            view = conn.execute(
                sa.text("SELECT unit_code, published_total, current_total FROM v_restatement WHERE period = :p"),
                {"p": PERIOD},
            ).fetchall()
    finally:
        engine.dispose()
    assert list(diff.columns) == RESTATEMENT_COLUMNS and len(diff) > 0
    assert set(diff["reasons"]) == {"迟到数据"} and (diff["published_version"] == 1).all()
    assert (diff["delta"].round(2) == (diff["current_total"] - diff["published_total"]).round(2)).all()
    assert sorted(diff["unit_code"]) == sorted(r[0] for r in view)
    summary = {r[1]: r for r in published["汇总"][1:] if r and r[1]}
    for code, old in zip(diff["unit_code"], diff["published_total"], strict=True):
        assert abs(float(old) - float(summary[code][-4])) < 1e-9  # the published total is the workbook's

    # the restatement: version 2, which then is what assess shows; version 1 stays
    assert _publish_cli(url, "迟到数据更正发布") == 0
    assert "第 2 版" in capsys.readouterr().out
    v2 = _assess(url, tmp_path / "f.xlsx")
    assert _cover(v2)["数据状态"].startswith("已发布 v2")
    assert _without(v2, "数据状态", "生成时间") == _without(current, "数据状态", "生成时间")
    assert _count(url, f"SELECT COUNT(*) FROM sup_publications WHERE period = '{PERIOD}'") == 2
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert restatement(conn, PERIOD).empty
            pids = [r[0] for r in conn.exec_driver_sql("SELECT publication_id FROM sup_publications ORDER BY 1")]
        old = build_workbook(engine, period=PERIOD, published=pids[0])
    finally:
        engine.dispose()
    (tmp_path / "g.xlsx").write_bytes(old)
    g = {ws.title: list(ws.iter_rows(values_only=True)) for ws in load_workbook(tmp_path / "g.xlsx").worksheets}
    assert _without(g, "生成人", "生成时间") == _without(published, "生成人", "生成时间")
    assert _count(url, "SELECT COUNT(*) FROM audit_log WHERE action = 'publish'") == 2


def test_frozen_records(loaded: tuple[Path, str]) -> None:
    _, url = loaded
    engine = make_engine(url)
    try:
        pid, version = publish(engine, LEGAL, PERIOD, reason="季度发布")
        with engine.connect() as conn:
            q = lambda sql: conn.execute(sa.text(sql), {"i": pid}).fetchall()  # noqa: E731
            scores = q(
                "SELECT unit_code, total, grade, rank, veto, period, version FROM sup_published_scores "
                "WHERE publication_id = :i ORDER BY unit_code"
            )
            live = conn.execute(
                sa.text(
                    "SELECT unit_code, total, grade, rank, veto FROM unit_scores "
                    "WHERE active = 1 AND period = :p ORDER BY unit_code"
                ),
                {"p": PERIOD},
            ).fetchall()
            items = q("SELECT COUNT(*) FROM sup_published_items WHERE publication_id = :i")[0][0]
            live_items = conn.execute(
                sa.text("SELECT COUNT(*) FROM unit_item_scores WHERE active = 1 AND period = :p"), {"p": PERIOD}
            ).scalar()
            found = q(
                "SELECT finding_key, rule_id, review_state, month FROM sup_published_findings WHERE publication_id = :i"
            )
            live_found = conn.execute(
                sa.text("SELECT COUNT(*) FROM findings WHERE month IN ('2026-07', '2026-08', '2026-09')")
            ).scalar()
            frames = {r[0] for r in q("SELECT name FROM sup_published_frames WHERE publication_id = :i")}
            pub = q(
                "SELECT period, version, scheme_id, scheme_version, reason, published_by, as_of "
                "FROM sup_publications WHERE publication_id = :i"
            )[0]
    finally:
        engine.dispose()
    assert version == 1 and len(scores) == len(live) > 0
    assert [tuple(r[:5]) for r in scores] == [tuple(r) for r in live]
    assert {(r[5], r[6]) for r in scores} == {(PERIOD, 1)}
    assert items == live_items > 0
    assert len(found) == live_found > 0 and {r[3] for r in found} <= {"2026-07", "2026-08", "2026-09"}
    assert {r[2] for r in found} == {"open"} and len({r[0] for r in found}) == len(found)
    assert frames >= {"info", "scores", "items", "lost", "findings", "coverage", "devices", "units"}
    assert tuple(pub[:6]) == (PERIOD, 1, "measures-2026", "2026.3", "季度发布", "legal") and pub[6] is not None


def test_refusals_write_nothing(loaded: tuple[Path, str], capsys) -> None:  # noqa: ANN001
    _, url = loaded
    engine = make_engine(url)
    county_admin = User("county", "孙县", "unit_admin", "140403000000", ("140403000000",))
    county_legal = User("legal2", "县法制", "legal", "140403000000", ("140403000000",))
    leader = User("leader", "王建国", "leader", None, None)
    try:
        cases = [
            (LEGAL, PERIOD, "  ", "发布理由"),
            (LEGAL, "2026-13", "发布", "考评期间格式"),
            (LEGAL, "2024", "发布", "没有考评得分"),
            (leader, PERIOD, "发布", "只有法制部门"),
            (county_admin, PERIOD, "发布", "只有法制部门"),
            (county_legal, PERIOD, "发布", "市局法制部门"),
        ]
        for user, period, reason, message in cases:
            with pytest.raises(SupervisionError, match=message):
                publish(engine, user, period, reason=reason)
    finally:
        engine.dispose()
    assert main(["publish", "--period", "2024", "--by", "legal", "--reason", "发布", "--warehouse", url]) == 2
    assert "没有考评得分" in capsys.readouterr().err
    assert main(["publish", "--period", PERIOD, "--by", "county", "--reason", "发布", "--warehouse", url]) == 2
    assert "只有法制部门" in capsys.readouterr().err
    for table in ("sup_publications", "sup_published_scores", "sup_published_frames", "audit_log"):
        assert _count(url, f"SELECT COUNT(*) FROM {table}") == 0, table


def test_versions_are_never_overwritten(loaded: tuple[Path, str]) -> None:
    _, url = loaded
    engine = make_engine(url)
    try:
        first = publish(engine, LEGAL, PERIOD, reason="第一次发布")
        second = publish(engine, LEGAL, PERIOD, reason="再次发布")
        other = publish(engine, LEGAL, "2026-08", reason="月度发布")
        assert (first[1], second[1], other[1]) == (1, 2, 1) and len({first[0], second[0], other[0]}) == 3
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # UNIQUE(period, version)
            conn.execute(
                sa.text(
                    "INSERT INTO sup_publications (period, version, scheme_id, reason, published_by, published_at) "
                    "VALUES (:p, 2, 'x', 'x', 'x', :t)"
                ),
                {"p": PERIOD, "t": "2026-12-01 00:00:00"},
            )
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT version, reason FROM sup_publications WHERE period = :p ORDER BY version"),
                {"p": PERIOD},
            ).fetchall()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "第一次发布"), (2, "再次发布")]
    assert _count(url, "SELECT COUNT(*) FROM audit_log WHERE action = 'publish'") == 3


def test_restatement_reasons_scheme_and_review(loaded: tuple[Path, str], tmp_path: Path) -> None:
    _, url = loaded
    # a trial scheme (not in config/schemes, so the warehouse holds no scores of it): scored at publication
    trial = tmp_path / "trial.yaml"
    text = SCHEME.read_text(encoding="utf-8").replace("\nid: measures-2026\n", "\nid: trial-2027\n")
    assert "\nid: trial-2027\n" in text
    text = text.replace("\nversion: ", "\nversion: trial-", 1)
    trial.write_text(text, encoding="utf-8")
    engine = make_engine(url)
    try:
        pid, _ = publish(engine, LEGAL, PERIOD, reason="试行方案发布", scheme_path=trial)
        with engine.connect() as conn:
            sid = conn.execute(
                sa.text("SELECT scheme_id FROM sup_publications WHERE publication_id = :i"), {"i": pid}
            ).scalar()
            assert sid == "trial-2027"
            n = conn.execute(
                sa.text("SELECT COUNT(*) FROM sup_published_scores WHERE publication_id = :i"), {"i": pid}
            ).scalar()
            assert (
                n
                == conn.execute(
                    sa.text("SELECT COUNT(*) FROM unit_scores WHERE active = 1 AND period = :p"), {"p": PERIOD}
                ).scalar()
            )
            diff = restatement(conn, PERIOD)
        # the same figures under another scheme name: nothing differs, so nothing to restate
        assert diff.empty
        book = build_workbook(engine, period=PERIOD)
        (tmp_path / "t.xlsx").write_bytes(book)
        cover = {r[0]: r[1] for r in load_workbook(tmp_path / "t.xlsx")["封面"].iter_rows(values_only=True) if r[0]}
        assert "trial-2027" in cover["考评方案"] and cover["数据状态"].startswith("已发布 v1")

        # a verdict after the publication: the unit's total moves and the reason says why
        with engine.connect() as conn:
            key, unit = conn.execute(
                sa.text(
                    "SELECT f.finding_key, f.unit_code FROM findings f "
                    "JOIN unit_scores s ON s.unit_code = f.unit_code AND s.active = 1 AND s.period = :p "
                    "WHERE f.rule_id = 'AV-NONE' AND f.month = '2026-08' AND s.veto = 0 AND NOT EXISTS ("
                    "SELECT 1 FROM findings o WHERE o.incident_no = f.incident_no AND o.finding_key <> f.finding_key) "
                    "ORDER BY f.finding_key"
                ),
                {"p": PERIOD},
            ).first()
    finally:
        engine.dispose()
    rc = main(["review", "--finding", key, "--verdict", "exempt", "--category", "数据错误",
               "--by", "legal", "--reason", "源数据错误", "--warehouse", url])  # fmt: skip
    assert rc == 0
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            diff = restatement(conn, PERIOD)
    finally:
        engine.dispose()
    assert unit in set(diff["unit_code"])
    reasons = dict(zip(diff["unit_code"], diff["reasons"], strict=True))
    assert "方案变更" in reasons[unit] and "复核/申诉" in reasons[unit]
    assert all("方案变更" in r for r in reasons.values())


def test_badge() -> None:
    assert badge(None) == "草稿（当前数据）"
    assert badge({"version": 3}) == "已发布 v3"
    assert badge({"version": 3}, current=True) == "草稿（当前数据）"


def test_publication_badge() -> None:
    from dashboard.logic import publication_badge

    assert publication_badge(None) == "未发布（当前数据）"
    assert publication_badge(2, "2026-12-01 09:30:15") == "已发布 v2（2026-12-01 09:30）"
    assert publication_badge(2, None, current=True) == "草稿（当前数据）"


@pytest.mark.postgres
def test_same_publication_on_sqlite_and_postgres(demo: Path, tmp_path: Path, pg_url: str) -> None:
    lite = f"sqlite:///{tmp_path / 'w.sqlite'}"
    books, found = [], []
    for url in (lite, pg_url):
        run(demo / "sources.yaml", warehouse=url, progress=False)
        engine = make_engine(url)
        try:
            pid, version = publish(engine, LEGAL, PERIOD, reason="季度发布")
            with engine.connect() as conn:
                found.append(
                    [
                        tuple(r)
                        for r in conn.execute(
                            sa.text(
                                "SELECT finding_key, rule_id, article, unit_code, review_state, month, occurred_at, "
                                "detail FROM sup_published_findings WHERE publication_id = :i ORDER BY finding_key"
                            ),
                            {"i": pid},
                        )
                    ]
                )
            out = tmp_path / f"{len(books)}.xlsx"
            out.write_bytes(build_workbook(engine, period=PERIOD, unit_code="140403000000"))
        finally:
            engine.dispose()
        assert version == 1
        books.append({ws.title: list(ws.iter_rows(values_only=True)) for ws in load_workbook(out).worksheets})
    norm = [[r[:6] + (str(r[6])[:19],) + r[7:] for r in rows] for rows in found]
    assert norm[0] == norm[1] and len(norm[0]) > 0
    # the metrics table's float sums may differ in the last bit between the backends (summation order)
    assert _rounded(_without(books[0], "数据状态", "生成时间")) == _rounded(_without(books[1], "数据状态", "生成时间"))


def test_several_periods_at_once_equal_their_current_workbooks(
    loaded: tuple[Path, str], tmp_path: Path, capsys
) -> None:  # noqa: ANN001
    """Months, quarters and the year published in one go (the year's reads shared) freeze what each period's own
    current workbook shows, whole city and a county."""
    _, url = loaded
    wanted = ["2026-07", "2026-08", "2026-Q3", "2026"]
    rc = main(["publish", "--period", ",".join(wanted), "--by", "legal", "--reason", "年度发布", "--warehouse", url])
    assert rc == 0
    out = capsys.readouterr().out
    assert all(f"已发布 {p} 第 1 版" in out for p in wanted)
    engine = make_engine(url)
    try:
        for period in wanted:
            for unit in (None, "140423000000"):
                books = []
                for current in (False, True):
                    path = tmp_path / f"{period}-{unit}-{current}.xlsx"
                    path.write_bytes(build_workbook(engine, period=period, unit_code=unit, current=current))
                    books.append({ws.title: list(ws.iter_rows(values_only=True)) for ws in load_workbook(path)})
                assert _cover(books[0])["数据状态"].startswith("已发布 v1"), period
                assert _without(books[0], "数据状态", "生成时间") == _without(books[1], "数据状态", "生成时间"), period
        with pytest.raises(SupervisionError, match="期间重复"):
            publish_many(engine, LEGAL, ["2026-07", "2026-07"], reason="重复")
        with pytest.raises(SupervisionError, match="没有考评得分"):  # all or nothing
            publish_many(engine, LEGAL, ["2026-09", "2024"], reason="部分为空")
    finally:
        engine.dispose()
    assert _count(url, "SELECT COUNT(*) FROM sup_publications") == len(wanted)
