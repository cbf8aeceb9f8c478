"""The assessment workbook (issue 5): content equals the warehouse, lost points add up, safe, printable."""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import uuid
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from etl.errors import EtlError
from etl.reports.workbook import assess_cli, build_workbook
from etl.reports.workbook.xlsx import FORMULA_PREFIXES, rows_xml, safe_text, safe_text_series
from etl.rules import config
from etl.scoring.inputs import load_inputs
from etl.scoring.items import score_items
from etl.scoring.lost_points import BY_LEVEL_COLUMNS, lost_points_by_level, lost_points_by_level_detail
from etl.scoring.schemes import load_scheme
from etl.warehouse.db import make_engine, read_df
from etl.warehouse.schema import ensure_schema
from tests import workbook_fixtures as wf

GEN_AT = datetime(2026, 12, 1, 9, 0, 0)
COUNTY = "140403000000"
STATION = "140404010000"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, wf.Warehouse]:
    url = f"sqlite:///{tmp_path_factory.mktemp('wb') / 'warehouse.sqlite'}"
    engine = make_engine(url)
    with engine.begin() as conn:
        wh = wf.populate(conn)
    engine.dispose()
    return url, wh


_BUILT: dict[tuple, bytes] = {}


def _book(url: str, fresh: bool = False, **kw) -> tuple[bytes, openpyxl.Workbook]:  # noqa: ANN003
    """Build (once per warehouse and arguments, unless ``fresh``) and reopen with openpyxl."""
    key = (url, tuple(sorted((k, str(v)) for k, v in kw.items())))
    if fresh or key not in _BUILT:
        engine = make_engine(url)
        try:
            _BUILT[key] = build_workbook(engine, generated_at=GEN_AT, **kw)
        finally:
            engine.dispose()
    content = _BUILT[key]
    return content, openpyxl.load_workbook(io.BytesIO(content))


def _frame(ws) -> pd.DataFrame:  # noqa: ANN001
    rows = list(ws.iter_rows(values_only=True))
    return pd.DataFrame(rows[1:], columns=rows[0])


def _summary(ws) -> pd.DataFrame:  # noqa: ANN001
    """The summary table without the signature block under it."""
    df = _frame(ws)
    return df[df["单位代码"].notna()].reset_index(drop=True)


@pytest.mark.parametrize("period,unit", [("2026", None), ("2026-Q3", None), ("2026-07", COUNTY)])
def test_summary_equals_unit_scores(warehouse, period, unit) -> None:  # noqa: ANN001
    url, _ = warehouse
    _, wb = _book(url, period=period, unit_code=unit)
    assert wb.sheetnames == [
        "封面",
        "汇总",
        "扣分明细",
        "覆盖率",
        "指标",
        "趋势",
        "设备台账",
        "数据质量",
        "抽查情况",
        "整改情况",
    ]
    summ = _summary(wb["汇总"])
    engine = make_engine(url)
    scores = read_df(engine, "SELECT * FROM v_unit_scores WHERE period = :p", {"p": period})
    items = read_df(engine, "SELECT * FROM v_unit_item_scores WHERE period = :p", {"p": period})
    units = read_df(engine, "SELECT unit_code, parent_code FROM org_units")
    engine.dispose()
    if unit:
        from etl.warehouse.scope import scope_of

        scope = scope_of(units, unit)
        scores, items = scores[scores["unit_code"].isin(scope)], items[items["unit_code"].isin(scope)]
    assert sorted(summ["单位代码"]) == sorted(scores["unit_code"])
    got = summ.set_index("单位代码")
    for r in scores.itertuples():
        assert got.at[r.unit_code, "总分"] == pytest.approx(r.total, abs=1e-9)
        assert got.at[r.unit_code, "等级"] == r.grade
        assert got.at[r.unit_code, "排名"] == r.rank
        assert got.at[r.unit_code, "一票否决"] == ("是" if r.veto else "否")
    item_cols = {c.split("\n")[0]: c for c in summ.columns if "\n" in str(c)}
    assert len(item_cols) == 7
    for r in items.itertuples():
        assert got.at[r.unit_code, item_cols[r.item_name]] == pytest.approx(r.score, abs=1e-9)
    # sorted by level, then rank
    levels = summ["层级"].map({"市局": 0, "县（区）局": 1, "基层所队": 2}).tolist()
    assert levels == sorted(levels)
    for _, g in summ.groupby("层级"):
        assert g["排名"].tolist() == sorted(g["排名"])


def _parent(units: pd.DataFrame, code: str) -> str:
    return units.set_index("unit_code").at[code, "parent_code"]


LEVEL_HEADERS = {"station": "基层所队\n扣分", "county": "县（区）局\n扣分", "city": "市局\n扣分"}


def detail_mismatches(det: pd.DataFrame, units: pd.DataFrame, items: pd.DataFrame, scores: pd.DataFrame) -> list[tuple]:
    """Every (unit, item) and every unit total whose 扣分明细 rows do not add up to the points it lost.

    A unit's rows are those of the units in its scope (单位代码); its points are in its level's column.
    """
    levels = dict(zip(units["unit_code"], units["level"], strict=True))
    bad = []
    for s in scores.itertuples():
        column = LEVEL_HEADERS[levels[s.unit_code]]
        mine = det[det["单位代码"].isin(wf._scope(units, s.unit_code))]
        per_item = mine.groupby("考评项目")[column].sum()
        its = items[items["unit_code"] == s.unit_code]
        assert len(its) == 7
        for r in its.itertuples():
            got = float(per_item.get(r.item_name, 0.0))
            if abs(got - (r.points - r.score)) > 0.01:
                bad.append((s.unit_code, r.item_name, got, r.points - r.score))
        # all items minus the total = everything listed, the veto cap included
        total = float(mine[column].sum())
        if abs(total - (its["points"].sum() - s.total)) > 0.02:
            bad.append((s.unit_code, "总分", total, its["points"].sum() - s.total))
    return bad


@pytest.mark.parametrize(
    "period,unit", [("2026", None), ("2026-Q3", None), ("2026-07", None), ("2026", COUNTY), ("2026-Q3", STATION)]
)
def test_details_add_up_to_points_lost(warehouse, period, unit) -> None:  # noqa: ANN001
    url, wh = warehouse
    _, wb = _book(url, period=period, unit_code=unit)
    det = _frame(wb["扣分明细"])
    scope = wf._scope(wh.units, unit or wf.CITY)
    items = wh.extras["item_scores"].query("period == @period and unit_code in @scope")
    scores = wh.extras["unit_scores"].query("period == @period and unit_code in @scope")
    levels = set(wh.units.loc[wh.units["unit_code"].isin(scope), "level"])
    # only the levels inside the exported scope have a points column
    assert [c for c in det.columns if "扣分" in c] == [
        LEVEL_HEADERS[lv] for lv in ("station", "county", "city") if lv in levels
    ]
    assert len(scores) == len(scope) and len(items) == 7 * len(scope)
    assert (items["points"] > items["score"]).sum() > 5  # there is something to add up
    assert detail_mismatches(det, wh.units, items, scores) == []
    assert not (det["对象"] == "差异").any()  # details never disagree with the scores
    assert set(det["单位代码"]) <= scope
    assert not det["发生时间"].dropna().str.startswith("2025").any()  # findings outside the period stay out


def test_details_one_row_per_object_with_every_level(warehouse) -> None:  # noqa: ANN001
    url, wh = warehouse
    _, wb = _book(url, period="2026")
    det = _frame(wb["扣分明细"])
    items = wh.extras["item_scores"].query("period == '2026'").set_index(["unit_code", "item_id"])
    names = dict(zip(wh.units["unit_code"], wh.units["name"], strict=True))
    onsite = det[det["考评项目"] == "现场执法音像记录"]
    assert not onsite["对象"].duplicated().any()  # each unclean object once, not once per level
    city = items.loc[(wf.CITY, "onsite_recording")]
    assert len(onsite) == city.objects - city.clean  # one row per unclean object of the city
    assert onsite["市局\n扣分"].to_numpy() == pytest.approx([city.points / city.objects] * len(onsite))
    for r in onsite.itertuples(index=False):  # each level: the item's points over that unit's objects
        station = items.loc[(r[2], "onsite_recording")]
        county = items.loc[(_parent(wh.units, r[2]), "onsite_recording")]
        assert r[-3] == pytest.approx(station.points / station.objects)
        assert r[-2] == pytest.approx(county.points / county.objects)
        assert r[1] == safe_text(names[r[2]]) and r[0] == names[_parent(wh.units, r[2])]
    floor = det[det["对象"] == "封底调整"]  # the first station's equipment item floors at 0, and so do units above
    assert len(floor) and (floor[list(LEVEL_HEADERS.values())].fillna(0).to_numpy() <= 0).all()
    assert (floor[list(LEVEL_HEADERS.values())].notna().sum(axis=1) == 1).all()  # a floor is one unit's own
    veto = det[det["考评项目"] == "一票否决"]
    assert len(veto) and veto["规则"].isin(["INTEGRITY-HASH", "INTEGRITY-DELETED"]).all()
    assert veto["情况说明"].str.contains("一票否决").all()
    # shown at every level, 0.00 where the cap did not bite
    assert veto[list(LEVEL_HEADERS.values())].notna().all().all()


def test_detail_check_can_fail(warehouse) -> None:  # noqa: ANN001
    """The add-up check above notices a wrong level column, a row moved to another unit and a dropped row."""
    url, wh = warehouse
    _, wb = _book(url, period="2026")
    det = _frame(wb["扣分明细"])
    items = wh.extras["item_scores"].query("period == '2026'")
    scores = wh.extras["unit_scores"].query("period == '2026'")
    assert detail_mismatches(det, wh.units, items, scores) == []
    row = det.index[(det["考评项目"] == "文字记录") & det["市局\n扣分"].gt(0)][0]
    wrong = det.copy()
    wrong.loc[row, "县（区）局\n扣分"] += 0.05
    assert [b[:2] for b in detail_mismatches(wrong, wh.units, items, scores)][0] == (
        _parent(wh.units, det.loc[row, "单位代码"]),
        "文字记录",
    )
    moved = det.copy()
    other = next(u for u in wh.units.loc[wh.units["level"] == "station", "unit_code"] if u != det.loc[row, "单位代码"])
    moved.loc[row, "单位代码"] = other
    assert {b[0] for b in detail_mismatches(moved, wh.units, items, scores)} >= {det.loc[row, "单位代码"], other}
    assert detail_mismatches(det.drop(index=row), wh.units, items, scores)


def test_scores_changed_after_the_run_show_a_difference_row(warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    """A stored item score the rows do not explain gets a visible 差异 row at that unit's level."""
    url, wh = warehouse
    copy = tmp_path / "changed.sqlite"
    with sqlite3.connect(url[len("sqlite:///") :]) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as db:
        db.execute(
            "UPDATE unit_item_scores SET score = score + 1 WHERE unit_code = ? AND period = '2026' "
            "AND item_id = 'text_records'",
            (COUNTY,),
        )
    engine = make_engine(f"sqlite:///{copy}")
    try:
        content = build_workbook(engine, period="2026", generated_at=GEN_AT)
    finally:
        engine.dispose()
    det = _frame(openpyxl.load_workbook(io.BytesIO(content))["扣分明细"])
    diff = det[det["对象"] == "差异"]
    assert len(diff) == 1
    row = diff.iloc[0]
    assert (row["单位代码"], row["考评项目"]) == (COUNTY, "文字记录") and "明细与得分表不一致" in row["情况说明"]
    assert row["县（区）局\n扣分"] == pytest.approx(-1.0)
    assert pd.isna(row["基层所队\n扣分"]) and pd.isna(row["市局\n扣分"])


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


@pytest.mark.parametrize("unit", [None, COUNTY])
def test_lost_points_of_stored_scores_equal_a_fresh_computation(warehouse, unit) -> None:  # noqa: ANN001
    """The workbook's rows (explaining the stored scores from the period's findings) are exactly the rows the
    scoring step's lost points give from its full inputs and freshly computed item scores, once per finding and
    scored unit."""
    url, wh = warehouse
    scheme = load_scheme(wf.ROOT / "config" / "schemes" / "measures-2026.yaml")
    scope = sorted(wf._scope(wh.units, unit or wf.CITY))
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            as_of = datetime.fromisoformat(wf.AS_OF)
            inp = load_inputs(conn, as_of, config.load(None), [scheme])
            scored = score_items(scheme, inp)
            for period in ("2026", "2026-Q3", "2026-07", "2026-11"):
                items = wh.extras["item_scores"].query("period == @period and unit_code in @scope")
                metrics = read_df(conn, "SELECT * FROM metrics WHERE period = :p", {"p": period})
                rows, levels = lost_points_by_level_detail(conn, period, scope, scheme, items, metrics)
                assert levels == [
                    lv
                    for lv in ("station", "county", "city")
                    if lv in set(wh.units.loc[wh.units["unit_code"].isin(scope), "level"])
                ]
                melted = _long(rows, levels)
                melted = melted[melted["points_lost"].abs() > 1e-12]
                tallies = scored.query("period == @period and unit_code in @scope")
                long = _long(*lost_points_by_level(scheme, tallies, inp, period, scope))
                long = long[long["points_lost"].abs() > 1e-12]
                key = ["unit_code", "item_id", "object_kind", "object_key", "finding_key"]
                a, b = (d.sort_values(key, na_position="last", ignore_index=True) for d in (melted, long))
                a, b = (d.astype(object).where(d.notna(), None) for d in (a, b))
                assert len(a) == len(b) > 0
                for c in ["unit_code", *BY_LEVEL_COLUMNS]:
                    assert [str(v) for v in a[c]] == [str(v) for v in b[c]], (period, c)
                assert a["points_lost"].astype(float).to_numpy() == pytest.approx(b["points_lost"].astype(float))
    finally:
        engine.dispose()


def test_no_formula_from_data(warehouse) -> None:  # noqa: ANN001
    url, _ = warehouse
    content, wb = _book(url, period="2026")
    texts = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(FORMULA_PREFIXES), (ws.title, cell.coordinate, cell.value)
                    texts.append(cell.value)
    joined = "\n".join(texts)
    for payload in wf.FORMULA_PAYLOADS:  # every payload is present, neutralised
        core = payload.lstrip("\t\r")
        assert core in joined, payload
    assert "'=HYPERLINK(" in joined and "'+SUM(1,2)" in joined and "'-2+3" in joined
    assert b"<f>" not in _sheet_xml(content)


def _sheet_xml(content: bytes) -> bytes:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as z:
        return b"".join(z.read(n) for n in z.namelist() if n.startswith("xl/worksheets/"))


@pytest.mark.parametrize("payload", wf.FORMULA_PAYLOADS + ["普通文字", "=", "-", "@", ""])
def test_safe_text(payload: str) -> None:
    out = safe_text(payload)
    assert not out.startswith(FORMULA_PREFIXES)
    assert out.endswith(payload.lstrip("\t\r") if payload.startswith(("\t", "\r")) else payload) or not payload


def test_safe_text_series_matches_safe_text() -> None:
    values = [*wf.FORMULA_PAYLOADS, "普通文字", "\x00=x", "a\x01b", "\x0b-1", "—", "'已加引号", " =前有空格"]
    assert safe_text_series(pd.Series(values, dtype="str")).tolist() == [safe_text(v) for v in values]
    xml = rows_xml([(v,) for v in values], ["text"], [0], first_row=2)
    assert "<f>" not in xml and "\x00" not in xml and "\x01" not in xml


def test_same_bytes_for_same_inputs(warehouse) -> None:  # noqa: ANN001
    url, _ = warehouse
    a, _ = _book(url, period="2026-Q3")
    b, _ = _book(url, fresh=True, period="2026-Q3")
    assert a == b
    engine = make_engine(url)
    c = build_workbook(engine, period="2026-Q3", generated_at=datetime(2026, 12, 2, 9, 0, 0))
    engine.dispose()
    assert c != a


def test_cover(warehouse) -> None:  # noqa: ANN001
    url, _ = warehouse
    _, wb = _book(url, period="2026-Q3", unit_code=COUNTY)
    cover = {r[0]: r[1] for r in wb["封面"].iter_rows(min_row=3, values_only=True) if r[0] and r[1]}
    assert wb["封面"]["A1"].value == "长治市公安机关行政执法全过程记录考评表"
    assert cover["考评期间"] == "2026年第3季度（2026-Q3）"
    assert COUNTY in cover["考评范围"]
    assert "measures-2026" in cover["考评方案"] and cover["方案版本"] == "2026.1"
    assert cover["评估日期"] == wf.AS_OF and cover["数据截至"] == "2026-11-30 18:00:00"
    assert cover["生成人"] == "etl assess" and cover["生成时间"] == "2026-12-01 09:00:00"


def test_unit_scope(warehouse) -> None:  # noqa: ANN001
    url, wh = warehouse
    scope = wf._scope(wh.units, COUNTY)
    _, wb = _book(url, period="2026", unit_code=COUNTY, allowed_scope=scope)
    assert set(_summary(wb["汇总"])["单位代码"]) == scope
    assert set(_frame(wb["扣分明细"])["单位代码"]) <= scope
    assert set(_frame(wb["覆盖率"])["单位代码"]) <= scope
    assert set(_frame(wb["设备台账"])["单位代码"]) <= scope
    engine = make_engine(url)
    try:
        with pytest.raises(PermissionError):
            build_workbook(engine, period="2026", unit_code=None, allowed_scope=scope)
        with pytest.raises(PermissionError):
            build_workbook(engine, period="2026", unit_code=wf.CITY, allowed_scope=scope)
        with pytest.raises(EtlError, match="未知单位"):
            build_workbook(engine, period="2026", unit_code="999")
        with pytest.raises(EtlError, match="考评期间格式"):
            build_workbook(engine, period="2026-13")
        with pytest.raises(EtlError, match="没有考评得分"):
            build_workbook(engine, period="2025")
    finally:
        engine.dispose()


def test_print_layout(warehouse) -> None:  # noqa: ANN001
    url, _ = warehouse
    _, wb = _book(url, period="2026")
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape" and str(ws.page_setup.paperSize) == "9", ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
        assert "第 &P 页 共 &N 页" in ws.oddFooter.center.text
        if ws.title != "封面":
            assert ws.freeze_panes in ("A2", "D2") and ws.auto_filter.ref.startswith("A1:")
            assert ws.print_title_rows == "$1:$1"
            assert all(ws.column_dimensions[c].width >= 6 for c in "ABC")
    summ = wb["汇总"]
    grades = {
        summ.cell(row=r, column=12).value: summ.cell(row=r, column=12).fill.fgColor.rgb
        for r in range(2, summ.max_row + 1)
        if summ.cell(row=r, column=2).value
    }
    assert grades.get("不达标") == "00FFC7CE" and grades.get("达标", "00000000") == "00000000"
    block = [c.value for row in summ.iter_rows(min_row=summ.max_row - 2) for c in row if c.value]
    assert {"审核人：", "负责人：", "日期："} <= set(block)
    det = wb["扣分明细"]
    headers = [c.value for c in det[1]]
    assert headers[-3:] == list(LEVEL_HEADERS.values()) and det.row_dimensions[1].height == 36
    for j in range(len(headers) - 2, len(headers) + 1):
        assert det.cell(row=2, column=j).number_format == "0.00"
    assert det.cell(row=2, column=headers.index("情况说明") + 1).alignment.wrap_text
    assert wb["覆盖率"].cell(row=2, column=9).number_format == "0.00%"


def test_assess_cli(warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    url, _ = warehouse
    out = tmp_path / "out" / "考评表.xlsx"
    msg = assess_cli(warehouse=url, period="2026-07", unit=None, scheme=None, xlsx=out)
    assert out.exists() and "已生成考评表" in msg and "2026年7月" in msg
    # a scheme file: its id decides which scores are read
    scheme = wf.ROOT / "config" / "schemes" / "measures-2026.yaml"
    msg = assess_cli(warehouse=url, period="2026", unit=COUNTY, scheme=scheme, xlsx=out)
    assert "measures-2026" in msg
    other = tmp_path / "trial-2027.yaml"
    text = scheme.read_text(encoding="utf-8").replace("\nid: measures-2026\n", "\nid: trial-2027\n")
    other.write_text(text, encoding="utf-8")
    with pytest.raises(EtlError, match="trial-2027"):
        assess_cli(warehouse=url, period="2026", unit=None, scheme=other, xlsx=out)
    with pytest.raises(EtlError, match="考评期间格式"):
        assess_cli(warehouse=url, period="26", unit=None, scheme=None, xlsx=out)
    with pytest.raises(EtlError, match="未知单位"):
        assess_cli(warehouse=url, period="2026", unit="000", scheme=None, xlsx=out)
    with pytest.raises(EtlError, match="不存在"):
        assess_cli(warehouse=f"sqlite:///{tmp_path / 'none.sqlite'}", period="2026", unit=None, scheme=None, xlsx=out)
    empty = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    engine = make_engine(empty)
    with engine.begin() as conn:
        ensure_schema(conn)
    engine.dispose()
    with pytest.raises(EtlError, match="请先运行"):
        assess_cli(warehouse=empty, period="2026", unit=None, scheme=None, xlsx=out)


@pytest.mark.postgres
def test_postgres_same_content(warehouse, pg_url) -> None:  # noqa: ANN001
    url, _ = warehouse
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        wf.populate(conn)
    engine.dispose()
    _, wb_pg = _book(pg_url, period="2026-Q3")
    _, wb_lite = _book(url, period="2026-Q3")
    for name in wb_lite.sheetnames:
        if name == "封面":
            continue
        a = list(wb_lite[name].iter_rows(values_only=True))
        b = list(wb_pg[name].iter_rows(values_only=True))
        assert a == b, name


@pytest.mark.libreoffice
def test_libreoffice_converts_and_renders(warehouse, tmp_path: Path) -> None:  # noqa: ANN001
    if not (shutil.which("soffice") and shutil.which("pdftoppm")):
        pytest.fail("LibreOffice and poppler-utils are required (make system-deps)")
    url, _ = warehouse
    content, _ = _book(url, period="2026-Q3")
    xlsx = tmp_path / "kaoping.xlsx"
    xlsx.write_bytes(content)
    profile = f"file:///tmp/lo_profile_{uuid.uuid4().hex[:8]}"
    run = subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={profile}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(xlsx),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    pdf = tmp_path / "kaoping.pdf"
    assert run.returncode == 0 and pdf.exists(), run.stderr
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    w, h = (float(x) for x in info.split("Page size:")[1].split("pts")[0].split(" x "))
    assert w > h and abs(w - 842) < 3 and abs(h - 595) < 3  # A4 landscape
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "4", str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=120,
    )
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert len(pngs) == 4 and all(p.stat().st_size > 5000 for p in pngs)
    shutil.rmtree(profile[len("file://") :], ignore_errors=True)
