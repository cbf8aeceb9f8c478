"""The workbook's supervision sheets: 抽查情况 (spot-checks) and 整改情况 (rectification notices).

Each sheet is one filterable table (the sheet's rows, header at A1, as every table sheet) followed, below a
blank row, by a per-unit table of its rate:

* 抽查情况: every sampled object of the period (object month in the period; ``data.read_spotchecks``) with its
  verdict, failed points, reviewer and review time; then per scored unit over its scope (a county: itself and
  the units below it) 抽查合格率 = reviewed objects without a failed point ÷ reviewed objects.
* 整改情况: every rectification notice of the period (``data.read_notices``) with its deadline, state, overdue
  flag and closing time; then per scored unit over its scope 整改按期完成率 = notices closed on or before
  their deadline ÷ notices closed or past their deadline (a notice still open and not yet due is not counted).

The rows are pure functions of the frames (live, or frozen at publication: the same code).  A publication made
before these frames existed has none: the sheet then says so (:data:`NOT_FROZEN`) instead of showing the
current data under a published status.
"""

from __future__ import annotations

import pandas as pd
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from etl.reports.notice_docx import notice_number
from etl.reports.workbook import data
from etl.reports.workbook.sheets import EXCEL_MAX_ROWS
from etl.reports.workbook.xlsx import (
    BORDER,
    FONT,
    HEADER_FILL,
    HEADER_FONT,
    Col,
    Splice,
    body_style_ids,
    fit_widths,
    rows_xml_parts,
    setup_print,
    write_header,
)

OBJECT_KINDS = {"events": "现场执法", "cases": "案件"}
VERDICTS = {"pass": "合格", "fail": "不合格"}
NOTICE_STATES = {"open": "待整改", "responded": "已反馈待复查", "returned": "已退回重改", "closed": "已整改关闭"}
NOT_FROZEN = "该发布版本发布时未冻结{what}数据（早于该功能），无法按发布时的状态重现；请导出当前数据（草稿）查看"

SPOTCHECK_COLS = [
    Col("单位代码", min_width=14),
    Col("单位", min_width=12, max_width=28, wrap=True),
    Col("抽查批次", "int", min_width=9),
    Col("对象类型", min_width=9),
    Col("对象编号", min_width=14, max_width=24),
    Col("对象时间", min_width=19, max_width=19),
    Col("复核结论", min_width=9),
    Col("不合格要点", min_width=11, max_width=24, wrap=True),
    Col("复核人", min_width=8, max_width=16),
    Col("复核时间", min_width=19, max_width=19),
]
SPOTCHECK_RATE_COLS = [
    Col("单位代码", min_width=14),
    Col("单位（含下级）", min_width=12, max_width=28, wrap=True),
    Col("抽查对象", "int"),
    Col("已复核", "int"),
    Col("合格", "int"),
    Col("不合格", "int"),
    Col("抽查合格率", "pct"),
]
NOTICE_COLS = [
    Col("单位代码", min_width=14),
    Col("单位", min_width=12, max_width=28, wrap=True),
    Col("通知文号", min_width=18, max_width=22),
    Col("下发时间", min_width=19, max_width=19),
    Col("下发人", min_width=8, max_width=16),
    Col("整改期限", min_width=11, max_width=11),
    Col("问题数", "int", min_width=7),
    Col("状态", min_width=10),
    Col("是否逾期", min_width=9),
    Col("整改关闭时间", min_width=19, max_width=19),
    Col("按期完成", min_width=9),
]
NOTICE_RATE_COLS = [
    Col("单位代码", min_width=14),
    Col("单位（含下级）", min_width=12, max_width=28, wrap=True),
    Col("整改通知", "int"),
    Col("已关闭", "int"),
    Col("逾期", "int"),
    Col("按期完成", "int"),
    Col("已到期或已关闭", "int"),
    Col("整改按期完成率", "pct"),
]


def _v(v: object) -> object:
    """None for a missing value (None, NaN, NaT, pd.NA), else the value."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):  # noqa: PLR0124
        return None
    return v


def _order(codes: list, unit_rank: dict[str, int]) -> list[int]:
    last = 10**9
    return sorted(range(len(codes)), key=lambda i: (unit_rank.get(codes[i], last), str(codes[i])))


def spotcheck_rows(items: pd.DataFrame, names: dict[str, str], unit_rank: dict[str, int]) -> list[tuple]:
    """One row per sampled object: unit, campaign, kind, key, time, verdict, failed points, reviewer, time."""
    if items is None or items.empty:
        return []
    rows = []
    for r in items.to_dict("records"):
        verdict = _v(r.get("verdict"))
        points = _v(r.get("failed_points"))
        rows.append(
            (
                r["unit_code"],
                names.get(r["unit_code"], r["unit_code"]),
                int(r["campaign_id"]),
                OBJECT_KINDS.get(r["object_kind"], r["object_kind"]),
                r["object_key"],
                _v(r.get("occurred_at")),
                VERDICTS.get(verdict, "未复核") if verdict else "未复核",
                "、".join(p for p in str(points).split(",") if p) if points else None,
                _v(r.get("reviewed_by")),
                _v(r.get("reviewed_at")),
            )
        )
    return [rows[i] for i in _order([r[0] for r in rows], unit_rank)]


def _per_scope(frame: pd.DataFrame, units: pd.DataFrame, scored: set[str], columns: dict) -> pd.DataFrame:
    """``frame`` (one row per item/notice with unit_code) summed per scored unit over its scope: ``columns``
    {name: boolean Series over frame} counted; units without any row dropped."""
    counts = pd.DataFrame({"unit_code": frame["unit_code"].astype(str).to_numpy()})
    for name, flags in columns.items():
        counts[name] = pd.Series(flags, dtype=bool).to_numpy().astype(int)
    pairs = data.pairs_in_scope(units.assign(unit_code=units["unit_code"].astype(str)), scored)
    agg = counts.merge(pairs, on="unit_code").groupby("scope_unit", as_index=False)[list(columns)].sum()
    return agg


def spotcheck_rate_rows(
    items: pd.DataFrame, units: pd.DataFrame, scored: set[str], names: dict[str, str], unit_rank: dict[str, int]
) -> list[tuple]:
    """Per scored unit over its scope: objects drawn, reviewed, passed, failed, pass rate (— without reviews)."""
    if items is None or items.empty:
        return []
    verdict = pd.Series([_v(v) for v in items["verdict"].tolist()], dtype=object)
    agg = _per_scope(
        items,
        units,
        scored,
        {
            "drawn": [True] * len(items),
            "reviewed": verdict.notna(),
            "passed": verdict == "pass",
            "failed": verdict == "fail",
        },
    )
    rows = []
    for r in agg.itertuples(index=False):
        rate = r.passed / r.reviewed if r.reviewed else "—"
        code = r.scope_unit
        rows.append((code, names.get(code, code), int(r.drawn), int(r.reviewed), int(r.passed), int(r.failed), rate))
    return [rows[i] for i in _order([r[0] for r in rows], unit_rank)]


def notice_rows(notices: pd.DataFrame, names: dict[str, str], unit_rank: dict[str, int]) -> list[tuple]:
    """One row per notice: unit, document number, issued, by, deadline, findings, state, overdue, closed, on time."""
    if notices is None or notices.empty:
        return []
    rows = []
    for r in notices.to_dict("records"):
        on_time = _v(r.get("on_time"))
        rows.append(
            (
                r["unit_code"],
                names.get(r["unit_code"], r["unit_code"]),
                notice_number({"notice_id": int(r["notice_id"]), "issued_at": _v(r.get("issued_at"))}),
                _v(r.get("issued_at")),
                _v(r.get("issued_by")),
                _v(r.get("deadline")),
                int(_v(r.get("findings")) or 0),
                NOTICE_STATES.get(r["state"], r["state"]),
                "是" if int(_v(r.get("overdue")) or 0) else "否",
                _v(r.get("closed_at")),
                "未到期" if on_time is None else ("是" if int(on_time) else "否"),
            )
        )
    return [rows[i] for i in _order([r[0] for r in rows], unit_rank)]


def notice_rate_rows(
    notices: pd.DataFrame, units: pd.DataFrame, scored: set[str], names: dict[str, str], unit_rank: dict[str, int]
) -> list[tuple]:
    """Per scored unit over its scope: notices, closed, overdue, on time, counted (closed or due), on-time rate."""
    if notices is None or notices.empty:
        return []
    on_time = [_v(v) for v in notices["on_time"].tolist()]  # 1 | 0 | None (not yet due)
    overdue = [bool(int(_v(v) or 0)) for v in notices["overdue"].tolist()]
    agg = _per_scope(
        notices,
        units,
        scored,
        {
            "notices": [True] * len(notices),
            "closed": [s == "closed" for s in notices["state"].tolist()],
            "overdue": overdue,
            "on_time": [v is not None and int(v) == 1 for v in on_time],
            "counted": [v is not None for v in on_time],
        },
    )
    rows = []
    for r in agg.itertuples(index=False):
        rate = r.on_time / r.counted if r.counted else "—"
        code = r.scope_unit
        rows.append(
            (
                code,
                names.get(code, code),
                int(r.notices),
                int(r.closed),
                int(r.overdue),
                int(r.on_time),
                int(r.counted),
                rate,
            )
        )
    return [rows[i] for i in _order([r[0] for r in rows], unit_rank)]


def _style_id(ws: Worksheet, row: int, font: Font, header: bool) -> int:
    """Register a text style (the header's, or a bold title's) with openpyxl and return its xf id."""
    cell = ws.cell(row=row, column=1)
    cell.font = font
    cell.number_format = "@"
    if header:
        cell.fill = HEADER_FILL
        cell.border = BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    sid = cell.style_id
    del ws._cells[(row, 1)]
    return sid


def write_table_with_rates(
    ws: Worksheet,
    cols: list[Col],
    rows: list[tuple],
    title: str,
    empty_text: str,
    rate_title: str,
    rate_cols: list[Col],
    rate_rows: list[tuple],
) -> Splice:
    """The sheet's table (header at A1, frozen, filtered, repeated when printed) and, below a blank row, the
    titled per-unit rate table (when it has rows); every data row spliced (see ``xlsx.splice_rows``)."""
    if not rows:
        rows = [(empty_text,) + (None,) * (len(cols) - 1)]
    if len(rows) + len(rate_rows) + 3 >= EXCEL_MAX_ROWS:
        from etl.errors import EtlError

        raise EtlError(f"{ws.title}共 {len(rows)} 行，超过 Excel 单表上限；请按单位分别导出考评表")
    widths = fit_widths(cols, rows)
    if rate_rows:
        rate_widths = fit_widths(rate_cols, rate_rows)
        widths = [max(w, rate_widths[j]) if j < len(rate_widths) else w for j, w in enumerate(widths)]
    write_header(ws, cols, widths)
    ws.row_dimensions[1].height = 24
    ids = body_style_ids(ws, cols, probe_row=2)
    last = len(rows) + 1
    setup_print(ws, title=title, filter_ref=f"A1:{get_column_letter(len(cols))}{last}", freeze="A2")
    wraps = [w if c.wrap else None for c, w in zip(cols, widths, strict=True)]
    parts = list(rows_xml_parts(rows, [c.kind for c in cols], ids, first_row=2, wrap_widths=wraps))
    end = last
    if rate_rows:
        n = len(rate_cols)
        title_id = _style_id(ws, 2, Font(name=FONT, size=11, bold=True), header=False)
        head_id = _style_id(ws, 2, HEADER_FONT, header=True)
        rate_ids = body_style_ids(ws, rate_cols, probe_row=2)
        parts.append(next(rows_xml_parts([(rate_title,)], ["text"], [title_id], first_row=last + 2)))
        parts.append(next(rows_xml_parts([tuple(c.header for c in rate_cols)], ["text"] * n, [head_id] * n, last + 3)))
        rate_wraps = [widths[j] if c.wrap else None for j, c in enumerate(rate_cols)]
        parts.extend(rows_xml_parts(rate_rows, [c.kind for c in rate_cols], rate_ids, last + 4, rate_wraps))
        end = last + 3 + len(rate_rows)
    return Splice(ws.title, [p.encode("utf-8") for p in parts], end, len(cols))


def write_spotchecks(
    ws: Worksheet,
    items: pd.DataFrame | None,
    units: pd.DataFrame,
    scored: set[str],
    names: dict[str, str],
    unit_rank: dict[str, int],
    title: str,
) -> Splice:
    """抽查情况 (``items`` None: a publication without frozen spot-checks)."""
    if items is None:
        return write_table_with_rates(ws, SPOTCHECK_COLS, [], title, NOT_FROZEN.format(what="抽查"), "", [], [])
    return write_table_with_rates(
        ws,
        SPOTCHECK_COLS,
        spotcheck_rows(items, names, unit_rank),
        title,
        "本期无抽查对象",
        "各单位抽查合格率（合格 ÷ 已复核，含下级单位）",
        SPOTCHECK_RATE_COLS,
        spotcheck_rate_rows(items, units, scored, names, unit_rank),
    )


def write_notices(
    ws: Worksheet,
    notices: pd.DataFrame | None,
    units: pd.DataFrame,
    scored: set[str],
    names: dict[str, str],
    unit_rank: dict[str, int],
    title: str,
) -> Splice:
    """整改情况 (``notices`` None: a publication without frozen notices)."""
    if notices is None:
        return write_table_with_rates(ws, NOTICE_COLS, [], title, NOT_FROZEN.format(what="整改"), "", [], [])
    return write_table_with_rates(
        ws,
        NOTICE_COLS,
        notice_rows(notices, names, unit_rank),
        title,
        "本期无整改通知",
        "各单位整改按期完成率（按期关闭 ÷ 已关闭或已到期，含下级单位）",
        NOTICE_RATE_COLS,
        notice_rate_rows(notices, units, scored, names, unit_rank),
    )
