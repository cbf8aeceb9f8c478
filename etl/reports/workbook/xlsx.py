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
from collections.abc import Iterator, Sequence
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
    text = str(value)
    if not text.isprintable():  # fast path: printable text has none of the characters XML cannot store
        text = _ILLEGAL_XML.sub("", text)
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
NUMBER_FORMATS = {
    "text": "@",
    "int": "0",
    "num": "General",
    "pts": "0.00",
    "pct": "0.00%",
    # changes (趋势): the number with its direction as an arrow, the sign left to the arrow (↓ 2.10 is -2.10)
    "chg": '"↑ "0.00;"↓ "0.00;"→ "0.00',
    "chg_pp": '"↑ "0.0;"↓ "0.0;"→ "0.0',
}


@dataclass(frozen=True)
class Col:
    """One column of a table sheet: header, kind (text | int | num | pts | pct | chg | chg_pp), width bounds."""

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
COMPRESS_LEVEL = 3  # deflate level of every zip entry: fast, ~10x smaller than the XML


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


def setup_print(
    ws: Worksheet, *, title: str, header_rows: int = 1, filter_ref: str | None = None, freeze: str | None = "A2"
) -> None:
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


def _cells_xml(values: list, kind: str, sid: int, cap: int) -> tuple[list[str], list[int]]:
    """For distinct ``values`` of one column: the XML of each cell after its ``r="A1``, and the lines each
    needs in a column wrapped at ``cap`` characters (1 when not wrapped).

    Text goes through :func:`safe_text` and XML escaping in bulk (list comprehensions, one ``replace`` over
    all the texts joined) because a city-wide sheet has ~10^5 distinct texts per column.
    """
    blank = f'" s="{sid}"/>'
    xml = [blank] * len(values)
    lines = [1] * len(values)
    if kind == "text":  # everything but a blank is text (v == v: not NaN)
        where = [i for i, v in enumerate(values) if v is not None and v == v]
    else:
        where = []
        for i, v in enumerate(values):
            if v is None or v != v:
                continue
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                xml[i] = f'" s="{sid}"><v>{int(v) if kind == "int" else repr(float(v))}</v></c>'
            else:
                where.append(i)
    if not where:
        return xml, lines
    texts = [values[i] if type(values[i]) is str else str(values[i]) for i in where]
    texts = [t if t.isprintable() else _ILLEGAL_XML.sub("", t) for t in texts]  # safe_text, in bulk
    texts = [NEUTRALISER + t if t.startswith(FORMULA_PREFIXES) else t for t in texts]
    if cap:
        for i, t in zip(where, texts, strict=True):
            lines[i] = -(-((len(t.encode("utf-8")) + len(t)) // 2) // cap)  # display_width, wrapped at cap
    blob = "\x00".join(texts)  # no text holds \x00 any more: escape all at once
    if "&" in blob or "<" in blob or ">" in blob:
        texts = blob.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").split("\x00")
    plain, kept = f'" s="{sid}" t="inlineStr"><is><t>', f'" s="{sid}" t="inlineStr"><is><t xml:space="preserve">'
    for i, t in zip(where, texts, strict=True):  # leading or trailing blanks: kept
        xml[i] = f"{kept if t[:1].isspace() or t[-1:].isspace() else plain}{t}</t></is></c>"
    return xml, lines


def rows_xml_parts(
    rows: Sequence[Sequence] | pd.DataFrame,
    kinds: Sequence[str],
    style_ids: Sequence[int],
    first_row: int,
    wrap_widths: Sequence[float | None] | None = None,
    chunk: int = 20_000,
) -> Iterator[str]:
    """SpreadsheetML ``<row>`` elements for ``rows``, ``chunk`` rows at a time.

    Text becomes inline strings, made safe by :func:`safe_text` and escaped; numbers in non-text columns are
    values; a blank (None or NaN) is an empty cell with its column's style (so borders print).  Rows whose
    wrapped cells need several lines get an explicit height (Excel and LibreOffice do not re-measure the
    rows of a file they open).  Values must be hashable (text, numbers, None).

    Fast because nothing runs per cell in Python bytecode: each distinct value of a column is converted
    once (:func:`_cells_xml`; equal values such as 1 and 1.0 share it), a column's cells are dictionary
    look-ups done by ``map``, and a row is one ``str.format`` call (~0.5 µs a cell in all).
    """
    if isinstance(rows, pd.DataFrame):
        rows = list(rows.itertuples(index=False, name=None))
    ncols = len(kinds)
    wraps = list(wrap_widths or [None] * ncols)
    caps = [max(int(w * 0.85) - 1, 1) if w else 0 for w in wraps]
    letters = [get_column_letter(j + 1) for j in range(ncols)]
    cell_memo: list[dict] = [{} for _ in range(ncols)]  # value -> XML after r="A1
    line_memo: list[dict] = [{} for _ in range(ncols)]  # value -> lines (wrapped columns)
    # <row r="{0}"{1}>, then per cell <c r="A{0}{2}, <c r="B{0}{3}, ... </row>
    template = (
        '<row r="{0}"{1}>' + "".join(f'<c r="{letter}{{0}}{{{j + 2}}}' for j, letter in enumerate(letters)) + "</row>"
    )
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        columns, wrapped = [], []
        for j in range(ncols):
            values = [row[j] for row in block]
            cells, lines = cell_memo[j], line_memo[j]
            new = list(set(values).difference(cells))
            for v, x, n in zip(new, *_cells_xml(new, kinds[j], style_ids[j], caps[j]), strict=True):
                cells[v], lines[v] = x, n
            columns.append(list(map(cells.__getitem__, values)))
            if caps[j]:
                wrapped.append(map(lines.__getitem__, values))
        heights = [
            f' ht="{k * LINE_HEIGHT:g}" customHeight="1"' if k > 1 else ""
            for k in (map(max, *wrapped, [1] * len(block)) if wrapped else [1] * len(block))
        ]
        yield "".join(map(template.format, range(first_row + start, first_row + start + len(block)), heights, *columns))


def rows_xml(
    rows: Sequence[Sequence] | pd.DataFrame,
    kinds: Sequence[str],
    style_ids: Sequence[int],
    first_row: int,
    wrap_widths: Sequence[float | None] | None = None,
) -> str:
    """All of :func:`rows_xml_parts` as one string."""
    return "".join(rows_xml_parts(rows, kinds, style_ids, first_row, wrap_widths))


def safe_text_series(text: pd.Series) -> pd.Series:
    """:func:`safe_text` for a whole column of strings."""
    return pd.Series([safe_text(v) for v in text.tolist()], index=text.index, dtype=object)


@dataclass
class Splice:
    """Rows to append to one sheet after openpyxl has written it (UTF-8 XML, in parts)."""

    sheet_title: str
    parts: list[bytes]
    last_row: int
    last_col: int


def splice_rows(package: bytes, sheet_paths: dict[str, str], splices: Sequence[Splice]) -> dict[str, list[bytes]]:
    """Return {zip entry name: new content in parts} for the sheets that receive spliced rows."""
    out: dict[str, list[bytes]] = {}
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        for sp in splices:
            name = sheet_paths[sp.sheet_title]
            xml = z.read(name).decode("utf-8")
            if "</sheetData>" not in xml:  # openpyxl writes <sheetData /> for an empty sheet
                xml = xml.replace("<sheetData />", "<sheetData></sheetData>", 1)
            head, tail = xml.split("</sheetData>", 1)
            dim = f"A1:{get_column_letter(sp.last_col)}{max(sp.last_row, 1)}"
            head = re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{dim}" />', head, count=1)
            out[name] = [head.encode("utf-8"), *sp.parts, ("</sheetData>" + tail).encode("utf-8")]
    return out


def stable_zip(package: bytes, generated_at: datetime, replace: dict[str, bytes | list[bytes]]) -> bytes:
    """Rewrite the package: fixed entry times, entries in the same order, ``replace`` applied."""
    stamp = (
        max(generated_at.year, 1980),
        generated_at.month,
        generated_at.day,
        generated_at.hour,
        generated_at.minute,
        generated_at.second,
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = replace.get(info.filename)
            if data is None:
                data = src.read(info.filename)
            elif not isinstance(data, bytes):
                data = b"".join(data)
            zi = zipfile.ZipInfo(info.filename, date_time=stamp)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, data, compresslevel=COMPRESS_LEVEL)
            del data
    return buf.getvalue()
