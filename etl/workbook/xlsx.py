"""Low-level writing of the assessment workbook: safe text, print setup, fast rows, stable bytes.

Three things here are not plain openpyxl and are worth knowing:

* **Formula injection.** Every text cell passes through :func:`safe_text`:
  text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
  (OWASP "CSV/formula injection") gets a leading apostrophe ``'`` so that no
  spreadsheet program ever evaluates it.  The apostrophe is part of the stored
  text (it shows in the cell); the cover sheet says so.  Characters XML cannot
  hold (control characters) are removed.
* **Fast rows.** openpyxl spends ~15 µs per cell, too slow for a city-wide
  details sheet (10^5–10^6 cells).  Large table sheets are therefore written by
  openpyxl with their header row, formats and print setup only; after saving,
  :func:`splice_rows` appends the data rows to that sheet's ``<sheetData>`` as
  plain XML (inline strings, numbers, the style ids openpyxl registered for
  them).  The result is an ordinary SpreadsheetML file.
* **Stable bytes.** :func:`stable_zip` rewrites the package with fixed entry
  timestamps and fixed ``docProps/core.xml`` created/modified times, so the
  same inputs and generation time give the same bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

# --- safe text --------------------------------------------------------------------------------------

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"
_ILLEGAL_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def safe_text(value: object) -> str:
    """Text for a cell: never read as a formula, no characters XML cannot store."""
    text = _ILLEGAL_XML.sub("", str(value))
    if text.startswith(FORMULA_PREFIXES):
        return NEUTRALISER + text
    return text


# --- styles -------------------------------------------------------------------------------------------

FONT = "宋体"  # rendered with Noto Sans/Serif CJK where SimSun is absent
THIN = Side(style="thin", color="808080")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
HEADER_FONT = Font(name=FONT, bold=True, size=10)
BODY_FONT = Font(name=FONT, size=10)
GRADE_FILLS = {
    "优秀": PatternFill("solid", fgColor="C6EFCE"),  # green
    "达标": None,  # neutral
    "不达标": PatternFill("solid", fgColor="FFC7CE"),  # red
}
GRADE_FONTS = {"优秀": Font(name=FONT, size=10, color="006100"), "不达标": Font(name=FONT, size=10, color="9C0006")}

# Column kinds -> number format ("text" cells are strings)
NUMBER_FORMATS = {"text": "@", "int": "0", "num": "General", "pts": "0.00", "pct": "0.00%"}


@dataclass(frozen=True)
class Col:
    """One column of a table sheet: header, kind (text | int | num | pts | pct), width bounds."""

    header: str
    kind: str = "text"
    min_width: float = 6
    max_width: float = 40
    wrap: bool = False


def display_width(text: str) -> int:
    """Approximate printed width in character units: CJK (3 bytes in UTF-8) count 2, ASCII 1.

    ``(bytes + characters) / 2`` gives exactly that for ASCII and CJK text and
    runs at C speed, which matters for 10^5 rows.
    """
    return (len(text.encode("utf-8")) + len(text)) // 2


LINE_HEIGHT = 13.5  # points per line of 10-point text


def row_lines(values: Sequence, wrap_widths: Sequence[float | None]) -> int:
    """Lines the tallest wrapped cell of a row needs (1 when nothing wraps)."""
    lines = 1
    for v, w in zip(values, wrap_widths, strict=False):
        if w and isinstance(v, str):
            n = -(-display_width(v) // max(int(w * 0.85) - 1, 1))
            lines = max(lines, n)
    return lines


def fit_widths(cols: Sequence[Col], rows: Sequence[Sequence], sample: int = 2000) -> list[float]:
    """Column widths that fit the header and (a deterministic sample of) the values."""
    widths = []
    head = rows[:sample]
    for j, col in enumerate(cols):
        w = max(display_width(line) for line in col.header.split("\n")) + 3  # room for the filter button
        for r in head:
            v = r[j]
            if v is None:
                continue
            s = f"{v:.2f}" if isinstance(v, float) else str(v)
            w = max(w, display_width(s) + 1)
        widths.append(float(min(max(w, col.min_width), col.max_width)))
    return widths


def setup_print(ws: Worksheet, *, title: str, header_rows: int = 1, filter_ref: str | None = None,
                freeze: str | None = "A2") -> None:
    """A4 landscape, fit all columns to the page width, repeated header rows, page numbers, frozen panes."""
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages as needed downwards
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = 0.7
    ws.page_margins.bottom = 0.7
    ws.page_margins.header = ws.page_margins.footer = 0.3
    if header_rows:
        ws.print_title_rows = f"1:{header_rows}"
    if freeze:
        ws.freeze_panes = freeze
    if filter_ref:
        ws.auto_filter.ref = filter_ref
    # '&' starts a control code in header/footer text: double it.
    ws.oddHeader.center.text = title.replace("&", "&&")
    ws.oddHeader.center.size = 10
    ws.oddFooter.center.text = "第 &P 页 共 &N 页"
    ws.oddFooter.center.size = 9


def write_header(ws: Worksheet, cols: Sequence[Col], widths: Sequence[float], row: int = 1) -> None:
    for j, (col, width) in enumerate(zip(cols, widths, strict=True), start=1):
        cell = ws.cell(row=row, column=j, value=col.header)
        cell.font = HEADER_FONT
        cell.fill = HEADER_FILL
        cell.border = BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(j)].width = width


def body_style_ids(ws: Worksheet, cols: Sequence[Col], probe_row: int) -> list[int]:
    """Register one body style per column with openpyxl and return its xf ids (for :func:`rows_xml`).

    A probe cell is styled to make openpyxl add the style, then removed again.
    """
    ids = []
    for j, col in enumerate(cols, start=1):
        cell = ws.cell(row=probe_row, column=j)
        cell.font = BODY_FONT
        cell.border = BORDER
        cell.number_format = NUMBER_FORMATS[col.kind]
        cell.alignment = Alignment(vertical="top", wrap_text=col.wrap)
        ids.append(cell.style_id)
        del ws._cells[(probe_row, j)]
    return ids


# --- fast rows ------------------------------------------------------------------------------------------

def rows_xml(rows: Sequence[Sequence] | pd.DataFrame, kinds: Sequence[str], style_ids: Sequence[int],
             first_row: int, wrap_widths: Sequence[float | None] | None = None) -> str:
    """SpreadsheetML ``<row>`` elements for ``rows``: text as inline strings (made safe), numbers as values.

    Text is neutralised, cleaned and escaped column by column with vectorised
    string operations (the same rules as :func:`safe_text`); the XML is then
    assembled with plain f-strings, ~10^6 cells in a few seconds.  Rows whose
    wrapped cells need several lines get an explicit height (Excel and
    LibreOffice do not re-measure the rows of a file they open).
    """
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=range(len(kinds)))
    n = len(df)
    if n == 0:
        return ""
    numbers = range(first_row, first_row + n)
    wraps = list(wrap_widths or [None] * len(kinds))
    lines = np.ones(n, dtype=np.int64)
    columns: list[list[str]] = []
    for j, kind in enumerate(kinds):
        values = df.iloc[:, j].astype(object).tolist()
        head = f'<c r="{get_column_letter(j + 1)}'
        sid = style_ids[j]
        cells = [""] * n
        if kind == "text":  # every present value is text
            text_pos = np.flatnonzero(df.iloc[:, j].notna().to_numpy()).tolist()
        else:
            text_pos = []
            for i, v in enumerate(values):
                if v is None or v is pd.NA or (isinstance(v, float) and v != v):
                    continue
                if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                    num = str(int(v)) if kind == "int" else repr(float(v))
                    cells[i] = f'{head}{i + first_row}" s="{sid}"><v>{num}</v></c>'
                else:
                    text_pos.append(i)
        if text_pos:
            t = safe_text_series(pd.Series([str(values[i]) for i in text_pos], dtype=object).astype("str"))
            if wraps[j]:
                width = (t.str.len() + t.str.count(r"[^\x00-\x7f]")).to_numpy(dtype=np.int64)
                need = -(-width // max(int(wraps[j] * 0.85) - 1, 1))
                idx = np.asarray(text_pos)
                lines[idx] = np.maximum(lines[idx], need)
            esc = (t.str.replace("&", "&amp;", regex=False).str.replace("<", "&lt;", regex=False)
                   .str.replace(">", "&gt;", regex=False)).tolist()
            for i, e in zip(text_pos, esc, strict=True):
                cells[i] = f'{head}{i + first_row}" s="{sid}" t="inlineStr"><is><t xml:space="preserve">{e}</t></is></c>'
        columns.append(cells)
    heights = [f' ht="{k * LINE_HEIGHT:g}" customHeight="1"' if k > 1 else "" for k in lines.tolist()]
    return "".join(f'<row r="{r}"{h}>{"".join(cs)}</row>' for r, h, *cs in zip(numbers, heights, *columns, strict=True))


def safe_text_series(text: pd.Series) -> pd.Series:
    """:func:`safe_text` for a whole column of strings."""
    text = text.str.replace(_ILLEGAL_XML.pattern, "", regex=True)
    starts = text.str.startswith(FORMULA_PREFIXES)
    return text.where(~starts, NEUTRALISER + text)


@dataclass
class Splice:
    """Rows to append to one sheet after openpyxl has written it."""

    sheet_title: str
    xml: str
    last_row: int
    last_col: int


def splice_rows(package: bytes, sheet_paths: dict[str, str], splices: Sequence[Splice]) -> dict[str, bytes]:
    """Return {zip entry name: new content} for the sheets that receive spliced rows."""
    out: dict[str, bytes] = {}
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        for sp in splices:
            name = sheet_paths[sp.sheet_title]
            xml = z.read(name).decode("utf-8")
            if "</sheetData>" not in xml:  # openpyxl writes <sheetData /> for an empty sheet
                xml = xml.replace("<sheetData />", "<sheetData></sheetData>", 1)
            head, tail = xml.split("</sheetData>", 1)
            dim = f"A1:{get_column_letter(sp.last_col)}{max(sp.last_row, 1)}"
            head = re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{dim}" />', head, count=1)
            out[name] = (head + sp.xml + "</sheetData>" + tail).encode("utf-8")
    return out


def stable_zip(package: bytes, generated_at: datetime, replace: dict[str, bytes]) -> bytes:
    """Rewrite the package: fixed entry times, entries in the same order, ``replace`` applied."""
    stamp = (max(generated_at.year, 1980), generated_at.month, generated_at.day,
             generated_at.hour, generated_at.minute, generated_at.second)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = replace.get(info.filename)
            if data is None:
                data = src.read(info.filename)
            zi = zipfile.ZipInfo(info.filename, date_time=stamp)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, data, compresslevel=3)
    return buf.getvalue()
