"""The sheets of the assessment workbook, from frames to openpyxl worksheets (or spliced rows).

Each ``*_rows`` function is pure (frames in, list of row tuples out) so the
content can be tested without Excel; each ``write_*`` function lays out one
sheet.  Large tables return a :class:`~etl.reports.workbook.xlsx.Splice` whose rows
are appended after openpyxl has saved the file (see ``xlsx.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from openpyxl.styles import Alignment, Border, Font
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from etl.errors import EtlError
from etl.reports.workbook.xlsx import (
    BODY_FONT,
    BORDER,
    FONT,
    GRADE_FILLS,
    GRADE_FONTS,
    LINE_HEIGHT,
    NUMBER_FORMATS,
    THIN,
    Col,
    Splice,
    body_style_ids,
    display_width,
    fit_widths,
    row_lines,
    rows_xml_parts,
    safe_text,
    setup_print,
    write_header,
)
from etl.vocabulary import COVERAGE_STATUS, level_label

TITLE = "长治市公安机关行政执法全过程记录考评表"
EXCEL_MAX_ROWS = 1_048_576
DEVICE_KINDS = {"bodycam": "执法记录仪", "camera": "摄像机", "phone": "手机"}
DEVICE_STATUSES = {"in_use": "在用", "spare": "备用", "repair": "维修", "scrapped": "报废", "lost": "丢失"}
try:  # the metric names users know live with the metrics (etl.scoring.metrics)
    from etl.scoring.metrics import METRICS as METRIC_NAMES
except ImportError:  # pragma: no cover - the rules package is part of the project
    METRIC_NAMES = {}


def _none(v: object) -> object:
    return None if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NaT else v


def page_title(sheet: str, period_label: str, scope_label: str) -> str:
    return f"{TITLE}　{sheet}　{period_label}　{scope_label}"


# --- cover ---------------------------------------------------------------------------------------


def cover_rows(info: dict) -> list[tuple[str, str]]:
    return [
        ("考评期间", f"{info['period_label']}（{info['period']}）"),
        ("考评范围", info["scope_label"]),
        ("考评方案", f"{info['scheme_name']}（{info['scheme_id']}）"),
        ("方案版本", info["scheme_version"]),
        *([("数据状态", info["status"])] if info.get("status") else []),
        ("评估日期", info["as_of"] or "—"),
        ("数据截至", info["data_as_of"] or "—"),
        *([("完整性检查", info["integrity"])] if info.get("integrity") else []),
        ("考评单位数", str(info["units"])),
        ("生成人", info["generated_by"]),
        ("生成时间", info["generated_at"]),
    ]


NOTES = (
    "说明：",
    "1. 汇总表列出范围内每个单位的各项得分、总分、等级、同级排名和一票否决情况；县（区）局、市局按其全部辖区计分。",
    "2. 扣分明细逐项列出失分来源，每个不合格对象、每条扣分问题只列一行，并按层级分列其使所属基层所队、县（区）局、市局"
    "各扣多少分：合格率项目每个不合格对象扣“项目分值 ÷ 该单位对象数”，逐条扣分项目每条问题按方案扣分。"
    "按所属单位（或所属县区）筛选后，该单位所在层级一列的合计即为该单位的失分（可再按考评项目筛选）。",
    "3. 覆盖率、指标、设备台账为考评期间的统计与设备现状，数值均为计算结果，非公式。",
    "4. 来源数据中以 = + - @ 或制表符、回车开头的文字，已在前面加英文单引号（'）以防被当作公式执行。",
    "5. 抽查情况列出对象发生在考评期间的随机抽查对象及其复核结论，并按单位（含下级）统计抽查合格率（合格 ÷ 已复核）；"
    "整改情况列出考评期间的整改通知，并统计整改按期完成率（按期关闭 ÷ 已关闭或已到期）。逾期按导出（或发布）当日判断。",
)


def write_cover(ws: Worksheet, info: dict) -> None:
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 90
    title = ws.cell(row=1, column=1, value=TITLE)
    title.font = Font(name=FONT, size=18, bold=True)
    title.alignment = Alignment(horizontal="center", vertical="center")
    ws.merge_cells("A1:B1")
    ws.row_dimensions[1].height = 40
    for i, (label, value) in enumerate(cover_rows(info), start=3):
        a = ws.cell(row=i, column=1, value=label)
        b = ws.cell(row=i, column=2, value=safe_text(value))
        a.font = Font(name=FONT, size=12, bold=True)
        b.font = Font(name=FONT, size=12)
        for c in (a, b):
            c.border = BORDER
            c.alignment = Alignment(vertical="center", wrap_text=True)
        ws.row_dimensions[i].height = 24
    start = len(cover_rows(info)) + 5
    for k, line in enumerate(NOTES):
        c = ws.cell(row=start + k, column=1, value=line)
        c.font = Font(name=FONT, size=10)
        c.alignment = Alignment(wrap_text=True, vertical="top")
        ws.merge_cells(start_row=start + k, start_column=1, end_row=start + k, end_column=2)
        ws.row_dimensions[start + k].height = 15 * -(-display_width(line) // 100) + 3  # A:B hold ~100 units
    setup_print(ws, title=TITLE, header_rows=0, freeze=None)


# --- summary --------------------------------------------------------------------------------------


def summary_frame(
    scores: pd.DataFrame, items: pd.DataFrame, units: pd.DataFrame, item_order: Sequence[tuple[str, str, float]]
) -> pd.DataFrame:
    """One row per scored unit: level, code, name, item scores (item ids as columns), total, grade, rank, veto.

    Sorted by level (city, county, station), then rank, then unit code.
    """
    wide = items.pivot_table(index="unit_code", columns="item_id", values="score", aggfunc="first")
    df = scores.merge(units[["unit_code", "name", "level_order"]], on="unit_code", how="left")
    df = df.merge(wide, left_on="unit_code", right_index=True, how="left")
    df["level_order"] = df["level_order"].fillna(9)
    df["_rank"] = df["rank"].fillna(10**9)
    return df.sort_values(["level_order", "_rank", "unit_code"], ignore_index=True)


def summary_columns(item_order: Sequence[tuple[str, str, float]]) -> list[Col]:
    cols = [
        Col("层级", min_width=8),
        Col("单位代码", min_width=14),
        Col("单位名称", min_width=16, max_width=30, wrap=True),
    ]
    cols += [
        Col(f"{name}\n（{points:g}分）", "pts", min_width=10, max_width=14, wrap=True) for _, name, points in item_order
    ]
    cols += [
        Col("总分", "pts", min_width=8),
        Col("等级", min_width=8),
        Col("排名", "int", min_width=6),
        Col("一票否决", min_width=8),
    ]
    return cols


def summary_rows(df: pd.DataFrame, item_order: Sequence[tuple[str, str, float]]) -> list[tuple]:
    rows = []
    for r in df.to_dict("records"):
        rows.append(
            (
                level_label(r.get("unit_level")),
                r["unit_code"],
                _none(r.get("name")),
                *[_none(r.get(item_id)) for item_id, _, _ in item_order],
                _none(r["total"]),
                r["grade"],
                _none(r["rank"]),
                "是" if int(r.get("veto") or 0) else "否",
            )
        )
    return rows


def write_summary(ws: Worksheet, rows: list[tuple], cols: list[Col], title: str) -> None:
    widths = fit_widths(cols, rows)
    write_header(ws, cols, widths)
    ws.row_dimensions[1].height = 36
    grade_col = next(j for j, c in enumerate(cols) if c.header == "等级")
    centred = {0, grade_col, grade_col + 1, grade_col + 2}
    wrap_widths = [w if c.wrap else None for c, w in zip(cols, widths, strict=True)]
    for i, row in enumerate(rows, start=2):
        grade = row[grade_col]
        lines = row_lines(row, wrap_widths)
        if lines > 1:
            ws.row_dimensions[i].height = lines * LINE_HEIGHT
        for j, (col, v) in enumerate(zip(cols, row, strict=True), start=1):
            cell = ws.cell(row=i, column=j, value=safe_text(v) if isinstance(v, str) else v)
            cell.font = BODY_FONT
            cell.border = BORDER
            cell.number_format = NUMBER_FORMATS[col.kind]
            cell.alignment = Alignment(
                horizontal="center" if j - 1 in centred else None, vertical="center", wrap_text=col.wrap
            )
            fill = GRADE_FILLS.get(grade)
            if fill is not None and j - 1 in (grade_col, grade_col - 1):
                cell.fill = fill
                cell.font = GRADE_FONTS[grade]
    last = len(rows) + 1
    ref = f"A1:{get_column_letter(len(cols))}{last}"
    setup_print(ws, title=title, filter_ref=ref, freeze="D2")
    write_signature(ws, last + 2, len(cols))


def write_signature(ws: Worksheet, row: int, ncols: int) -> None:
    """审核人 / 负责人 / 日期, each followed by a line to sign on."""
    spots = [("审核人：", 1), ("负责人：", max(4, ncols // 3 + 1)), ("日期：", max(7, 2 * ncols // 3 + 1))]
    line = Border(bottom=THIN)
    for label, col in spots:
        c = ws.cell(row=row, column=col, value=label)
        c.font = Font(name=FONT, size=11, bold=True)
        c.alignment = Alignment(horizontal="right")
        for k in (1, 2):
            ws.cell(row=row, column=col + k).border = line
    ws.cell(row=row + 1, column=spots[2][1] + 1, value="年　　月　　日").font = Font(name=FONT, size=10)
    ws.row_dimensions[row].height = 30


# --- table sheets written as spliced rows ------------------------------------------------------------


def write_table(ws: Worksheet, cols: list[Col], rows: list[tuple], title: str, empty_text: str) -> Splice:
    """Header, widths, print setup and filter by openpyxl; rows returned for splicing."""
    if not rows:
        rows = [(empty_text,) + (None,) * (len(cols) - 1)]
    if len(rows) >= EXCEL_MAX_ROWS:
        raise EtlError(
            f"{ws.title}共 {len(rows)} 行，超过 Excel 单表上限 {EXCEL_MAX_ROWS - 1} 行；请按单位分别导出考评表"
        )
    widths = fit_widths(cols, rows)
    write_header(ws, cols, widths)
    ws.row_dimensions[1].height = 36 if any("\n" in c.header for c in cols) else 24
    ids = body_style_ids(ws, cols, probe_row=2)
    last = len(rows) + 1
    setup_print(ws, title=title, filter_ref=f"A1:{get_column_letter(len(cols))}{last}", freeze="A2")
    parts = rows_xml_parts(
        rows,
        [c.kind for c in cols],
        ids,
        first_row=2,
        wrap_widths=[w if c.wrap else None for c, w in zip(cols, widths, strict=True)],
    )
    return Splice(ws.title, [p.encode("utf-8") for p in parts], last, len(cols))


DETAIL_TEXT_COLS = [
    Col("所属县区", min_width=10, max_width=12, wrap=True),
    Col("所属单位", min_width=10, max_width=14, wrap=True),
    Col("单位代码", min_width=14),
    Col("考评项目", min_width=10, max_width=10, wrap=True),
    Col("规则", max_width=15, wrap=True),
    Col("条款", max_width=12, wrap=True),
    Col("对象", max_width=24, wrap=True),
    Col("发生时间", min_width=11, max_width=11, wrap=True),
    Col("情况说明", max_width=40, wrap=True),
]


def detail_columns(levels: Sequence[str]) -> list[Col]:
    """扣分明细's columns: the text columns, then the points lost at each level of the scope, lowest first."""
    return DETAIL_TEXT_COLS + [
        Col(f"{level_label(lv)}\n扣分", "pts", min_width=9, max_width=13, wrap=True) for lv in levels
    ]


def detail_rows(
    detail: pd.DataFrame,
    levels: Sequence[str],
    names: dict[str, str],
    unit_rank: dict[str, int],
    county_of: dict[str, str | None],
) -> list[tuple]:
    """One tuple per row of ``details.present``'s frame, grouped by county, then unit (in the summary's order).

    Within a unit the frame's order is kept (item, time, object).
    """
    last = 10**9
    owners = detail["owner_unit"].tolist()
    counties = [county_of.get(o) for o in owners]
    order = sorted(
        range(len(owners)),
        key=lambda i: (unit_rank.get(counties[i], last) if counties[i] else -1, unit_rank.get(owners[i], last)),
    )
    lost = [[None if v != v else v for v in detail[f"lost:{lv}"].tolist()] for lv in levels]  # v != v: NaN
    cols = [
        [names.get(c) if c else None for c in counties],
        [names.get(o, o) for o in owners],
        owners,
        *(detail[c].tolist() for c in ("item_name", "rule_id", "article", "object", "occurred_at", "detail")),
        *lost,
    ]
    rows = list(zip(*cols, strict=True))
    return [rows[i] for i in order]


COVERAGE_COLS = [
    Col("单位代码", min_width=14),
    Col("单位（含下级）", min_width=16, max_width=30),
    Col("月份", min_width=9),
    Col("现场执法事件", "int", min_width=12),
    Col(COVERAGE_STATUS["full"], "int", min_width=10),
    Col(COVERAGE_STATUS["excused"], "int", min_width=10),
    Col(COVERAGE_STATUS["partial"], "int", min_width=10),
    Col(COVERAGE_STATUS["none"], "int", min_width=8),
    Col("全程记录率", "pct", min_width=11),
]


def coverage_rows(cov: pd.DataFrame, names: dict[str, str], unit_rank: dict[str, int]) -> list[tuple]:
    """Per unit (over its scope): one row per month, then a 合计 row when the period has several months."""
    rows = []
    cov = cov.assign(_u=cov["scope_unit"].map(unit_rank).fillna(10**9)).sort_values(["_u", "scope_unit", "month"])
    for unit, g in cov.groupby(["_u", "scope_unit"], sort=True):
        code = unit[1]
        for r in g.itertuples(index=False):
            rows.append(
                (
                    code,
                    names.get(code),
                    r.month,
                    int(r.events),
                    int(r.full),
                    int(r.excused),
                    int(r.partial),
                    int(r.none),
                    _none(r.rate),
                )
            )
        if len(g) > 1:
            tot = g[["events", "full", "excused", "partial", "none"]].sum()
            rate = (tot["full"] + tot["excused"]) / tot["events"] if tot["events"] else None
            rows.append(
                (
                    code,
                    names.get(code),
                    "合计",
                    int(tot["events"]),
                    int(tot["full"]),
                    int(tot["excused"]),
                    int(tot["partial"]),
                    int(tot["none"]),
                    rate,
                )
            )
    return [tuple("—" if (j == 8 and v is None) else v for j, v in enumerate(r)) for r in rows]


METRIC_COLS = [
    Col("单位代码", min_width=14),
    Col("单位（含下级）", min_width=16, max_width=30),
    Col("指标", min_width=12),
    Col("分子", "num", min_width=10),
    Col("分母", "num", min_width=10),
    Col("指标值", "pct", min_width=10),
]


def metric_rows(metrics: pd.DataFrame, names: dict[str, str], unit_rank: dict[str, int]) -> list[tuple]:
    order = {m: i for i, m in enumerate(METRIC_NAMES)}
    m = metrics.assign(
        _u=metrics["unit_code"].map(unit_rank).fillna(10**9), _m=metrics["metric_id"].map(order).fillna(len(order))
    )
    rows = []
    for r in m.sort_values(["_u", "unit_code", "_m", "metric_id"]).itertuples(index=False):
        den = _none(r.denominator)
        value = _none(r.value) if den else None
        rows.append(
            (
                r.unit_code,
                names.get(r.unit_code),
                METRIC_NAMES.get(r.metric_id, r.metric_id),
                _none(r.numerator),
                den,
                "—" if value is None else float(value),
            )
        )
    return rows


DEVICE_COLS = [
    Col("单位代码", min_width=14),
    Col("单位", min_width=12, max_width=28),
    Col("设备编号", min_width=12),
    Col("类型", min_width=10),
    Col("型号", max_width=20),
    Col("使用人警号", min_width=10),
    Col("使用人", min_width=8),
    Col("领用时间", min_width=19, max_width=19),
    Col("状态", min_width=6),
    Col("状态起始", min_width=19, max_width=19),
    Col("期间视音频数", "int", min_width=12),
]


def device_rows(dev: pd.DataFrame, names: dict[str, str]) -> list[tuple]:
    frame = pd.DataFrame(
        {
            "a": dev["unit_code"],
            "b": dev["unit_code"].map(names),
            "c": dev["device_sn"],
            "d": dev["kind"].map(DEVICE_KINDS).fillna(dev["kind"]),
            "e": dev["model"],
            "f": dev["police_no"],
            "g": dev["holder_name"],
            "h": dev["from_at"],
            "i": dev["status"].map(DEVICE_STATUSES).fillna(dev["status"]),
            "j": dev["status_since"],
            "k": dev["clips"].astype(int),
        }
    )
    frame = frame.astype(object).where(frame.notna(), None)
    return list(frame.itertuples(index=False, name=None))


def new_workbook() -> Workbook:
    wb = Workbook()
    wb.remove(wb.active)
    return wb


# --- 数据质量 (the data-quality queue: objects not judged or judged on partial data) -----------------

DATA_QUALITY_COLS = [
    Col("单位代码", min_width=14),
    Col("单位", min_width=12, max_width=28),
    Col("问题类型", min_width=12, max_width=18, wrap=True),
    Col("数据来源", min_width=10),
    Col("对象", min_width=12, max_width=28, wrap=True),
    Col("情况说明", max_width=50, wrap=True),
    Col("首次发现\n运行", "int", min_width=9),
    Col("最近发现\n运行", "int", min_width=9),
]
DATA_QUALITY_NOTE = "说明：该发布版本发布时未冻结数据质量情况，本表为生成考评表时数据仓库中的当前数据质量情况"


def data_quality_rows(
    dq: pd.DataFrame, names: dict[str, str], unit_rank: dict[str, int], published: bool = False
) -> list[tuple]:
    """One row per queued object, by unit (the summary's order), kind and object; ``published``: a publication
    that did not freeze the queue, whose sheet starts with a note line (today's queue, not the published one)."""
    from etl.rules.data_quality import KIND_NAMES, KINDS

    order = {k: i for i, k in enumerate(KINDS)}
    dq = dq.assign(
        _u=dq["unit_code"].map(unit_rank).fillna(len(unit_rank)), _k=dq["kind"].map(order).fillna(len(order))
    ).sort_values(["_u", "unit_code", "_k", "table_name", "object_key"], kind="stable")
    systems = {"org": "组织机构", "cases": "执法办案系统", "dispatch": "接处警系统", "media": "执法记录仪管理平台"}
    systems |= {"windows": "受理窗口", "ledgers": "设备台账工作簿"}
    runs = [pd.to_numeric(dq[c], errors="coerce") for c in ("first_seen_run", "last_seen_run")]
    frame = pd.DataFrame(
        {
            "a": dq["unit_code"],
            "b": dq["unit_code"].map(names),
            "c": dq["kind"].map(KIND_NAMES).fillna(dq["kind"]),
            "d": dq["source"].map(systems).fillna(dq["source"]),
            "e": dq["table_name"].astype(str) + " " + dq["object_key"].astype(str),
            "f": dq["detail"],
            "g": runs[0].astype("Int64"),
            "h": runs[1].astype("Int64"),
        }
    )
    frame = frame.astype(object).where(frame.notna(), None)
    rows = list(frame.itertuples(index=False, name=None))
    if published:
        rows.insert(0, (DATA_QUALITY_NOTE,) + (None,) * (len(DATA_QUALITY_COLS) - 1))
    return rows
