"""The printable rectification notice (整改通知书, Art. 35) as a .docx document (python-docx).

:func:`build_notice` is pure: a notice (the ``sup_notices`` row as a dict), its findings and the unit directory
in, the document's bytes out.  :func:`read_notice` / :func:`write_notice` read those from the warehouse tables
(``sup_notices``, ``sup_notice_findings``, ``findings`` for the findings' times, ``org_units``, ``officers``) for
callers that have only a notice id; the audited export of the CLI and the pages goes through
``etl.supervision.rectify``, which calls :func:`build_notice`.

Layout (A4 portrait): the bureau header (长治市公安局) over a red rule, the title, the document number
(长公法整〔YYYY〕N号: issue year, notice id), the unit addressed, the notice text, a table of the findings
(编号, 规则, 条款, 时间, 问题说明), the deadline, the Art. 35 accountability recommendation when there is one,
the signature and stamp blocks (签发人, 日期, （盖章）) and a receipt (回执) for the unit to return.

Every run names an East-Asian font (``w:eastAsia``) so LibreOffice and Word render the Chinese with a CJK font
(宋体 / 黑体, substituted by Noto CJK where those are absent).  Text from data is only ever text: control
characters XML cannot hold are removed, nothing is interpreted.  The bytes are stable for the same inputs
(fixed core properties, fixed zip entry times).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Connection

from etl.errors import EtlError
from etl.times import ts_text
from etl.warehouse.db import read_df

try:  # the Chinese rule names users know, where the vocabulary has them
    from etl.vocabulary import RULE_NAMES  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on the vocabulary's version
    RULE_NAMES: dict[str, str] = {}

BUREAU = "长治市公安局"
TITLE = "整改通知书"
MEASURES = "《长治市公安机关行政执法全过程记录实施办法》"
NUMBER_PREFIX = "长公法整"
SERIF, SANS, LATIN = "宋体", "黑体", "Times New Roman"
RED = "C00000"
ART35_ITEMS = {
    "1": "因失职导致行政执法记录设备不能正常使用的",
    "2": "不制作或不按要求制作执法全过程记录的",
    "3": "违反规定擅自复制、保存、传播、泄露执法记录信息，造成严重后果的",
    "4": "故意毁损、删除、修改执法全过程中文字或音像记录信息的",
    "5": "不按规定储存或维护致使执法记录损毁、丢失，造成严重后果的",
    "6": "其他违反执法全过程记录规定，造成严重后果的",
}
_CN_DIGITS = "〇一二三四五六七八九"
_ITEM_NUMERALS = {"一": "1", "二": "2", "三": "3", "四": "4", "五": "5", "六": "6"}
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
FIXED_TIME = datetime(2026, 1, 1)  # core properties when the notice has no issue time
FINDING_HEADERS = ("序号", "编号", "规则", "条款", "时间", "问题说明")
FINDING_WIDTHS_CM = (1.0, 4.4, 2.4, 2.0, 2.2, 3.8)  # 15.8 cm: the text width of A4 less the margins


def clean(value: object) -> str:
    """Text for the document: '' for a missing value, characters XML cannot hold removed, CR LF as LF."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):  # noqa: PLR0124
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def notice_number(notice: Mapping) -> str:
    """长公法整〔YYYY〕N号 from the issue year and the notice id."""
    issued = _as_date(notice.get("issued_at"))
    year = issued.year if issued else ""
    return f"{NUMBER_PREFIX}〔{year}〕{clean(notice.get('notice_id'))}号"


def _as_date(value: object) -> date | None:
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value):  # noqa: PLR0124
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return pd.Timestamp(str(value)).date()
    except (ValueError, TypeError):
        return None


def cn_date(value: object, numerals: bool = False) -> str:
    """2026年12月15日 (or 二〇二六年十二月十五日 with ``numerals``, the form under a stamp); '' when missing."""
    d = _as_date(value)
    if d is None:
        return ""
    if not numerals:
        return f"{d.year}年{d.month}月{d.day}日"

    def small(n: int) -> str:  # 1..31
        tens, ones = divmod(n, 10)
        return ("" if tens < 2 else _CN_DIGITS[tens]) + ("十" if tens else "") + (_CN_DIGITS[ones] if ones else "")

    return "".join(_CN_DIGITS[int(c)] for c in str(d.year)) + f"年{small(d.month)}月{small(d.day)}日"


def accountability_of(notice: Mapping) -> dict | None:
    """The notice's Art. 35 recommendation as {"officers": [...], "paragraph": "..."} (None when absent or
    empty); JSON text or a dict."""
    raw = notice.get("accountability")
    if raw is None or (isinstance(raw, float) and raw != raw) or raw == "":  # noqa: PLR0124
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {"officers": [], "paragraph": raw}
    if not isinstance(raw, Mapping):
        return None
    officers = raw.get("officers") or []
    if isinstance(officers, str):
        officers = [o for o in re.split(r"[,，、\s]+", officers) if o]
    out = {"officers": [clean(o) for o in officers if clean(o)], "paragraph": clean(raw.get("paragraph"))}
    return out if out["officers"] or out["paragraph"] else None


def paragraph_text(paragraph: str) -> str:
    """'2', '（二）', '第二项' -> '第三十五条第（二）项（不制作或不按要求制作执法全过程记录的）'; other text as given."""
    p = paragraph.strip()
    m = re.fullmatch(r"(?:第)?[（(]?([1-6一二三四五六])[)）]?(?:项)?", p)
    if m:
        n = _ITEM_NUMERALS.get(m.group(1), m.group(1))
        return f"第三十五条第（{_CN_DIGITS[int(n)] if n != '0' else n}）项（{ART35_ITEMS[n]}）"
    return f"第三十五条{p}" if p and not p.startswith("第三十五条") else p or "第三十五条"


# --- python-docx helpers ---------------------------------------------------------------------------------


def _font(run, name: str = SERIF, size: float = 12, bold: bool = False, color: str | None = None) -> None:  # noqa: ANN001
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    run.font.size = Pt(size)
    run.font.bold = bold
    run.font.name = LATIN if name == SERIF else name
    rpr = run._element.get_or_add_rPr()
    fonts = rpr.get_or_add_rFonts()
    fonts.set(qn("w:eastAsia"), name)
    if color:
        run.font.color.rgb = RGBColor.from_string(color)


def _para(
    doc_or_cell,
    text: str = "",
    *,
    size: float = 12,
    bold: bool = False,
    font: str = SERIF,
    align=None,  # noqa: ANN001
    indent: bool = False,
    color: str | None = None,
    space_after: float = 4,
    line: float | None = None,
):  # noqa: ANN202
    from docx.shared import Pt

    p = doc_or_cell.add_paragraph()
    fmt = p.paragraph_format
    fmt.space_before = Pt(0)
    fmt.space_after = Pt(space_after)
    if line:
        fmt.line_spacing = Pt(line)
    if align is not None:
        p.alignment = align
    if indent:
        fmt.first_line_indent = Pt(size * 2)
    if text:
        _font(p.add_run(text), font, size, bold, color)
    return p


def _rule_below(p, color: str = RED, size: int = 18) -> None:  # noqa: ANN001
    """A coloured line under a paragraph (the red rule of an official document's header)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    ppr = p._p.get_or_add_pPr()
    border = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for k, v in (("w:val", "single"), ("w:sz", str(size)), ("w:space", "4"), ("w:color", color)):
        bottom.set(qn(k), v)
    border.append(bottom)
    ppr.append(border)


def _default_fonts(doc) -> None:  # noqa: ANN001
    """The document's default run font: 宋体 for East-Asian text, 12 pt (style Normal and the docDefaults)."""
    from docx.oxml.ns import qn
    from docx.shared import Pt

    normal = doc.styles["Normal"]
    normal.font.name = LATIN
    normal.font.size = Pt(12)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), SERIF)
    defaults = doc.styles.element.find(qn("w:docDefaults"))
    if defaults is not None:
        rpr = defaults.find(qn("w:rPrDefault") + "/" + qn("w:rPr"))
        if rpr is not None:
            fonts = rpr.find(qn("w:rFonts"))
            if fonts is None:
                from docx.oxml import OxmlElement

                fonts = OxmlElement("w:rFonts")
                rpr.insert(0, fonts)
            fonts.set(qn("w:eastAsia"), SERIF)
            fonts.set(qn("w:ascii"), LATIN)
            fonts.set(qn("w:hAnsi"), LATIN)


def _cell_text(cell, text: str, *, size: float = 10, bold: bool = False, font: str = SERIF, align=None) -> None:  # noqa: ANN001
    p = cell.paragraphs[0]
    if align is not None:
        p.alignment = align
    if text:
        _font(p.add_run(text), font, size, bold)


def _unit_name(units: pd.DataFrame, code: str) -> str:
    if units is not None and len(units) and "unit_code" in units and "name" in units:
        hit = units.loc[units["unit_code"].astype(str) == code, "name"]
        if len(hit) and clean(hit.iloc[0]):
            return clean(hit.iloc[0])
    return code


def _finding_rows(findings: pd.DataFrame) -> list[tuple[str, ...]]:
    """(序号, 编号, 规则, 条款, 时间, 问题说明) per finding, in finding-key order."""
    if findings is None or findings.empty:
        return []
    f = findings.copy()
    f["_k"] = f["finding_key"].map(clean) if "finding_key" in f else ""
    f = f.sort_values("_k", kind="stable")
    col = lambda c: f[c].tolist() if c in f else [None] * len(f)  # noqa: E731
    when = [ts_text(o)[:16] if clean(o) else clean(m) for o, m in zip(col("occurred_at"), col("month"), strict=True)]
    rows = []
    for i, (key, rule, art, t, detail) in enumerate(
        zip(f["_k"], col("rule_id"), col("article"), when, col("detail"), strict=True), start=1
    ):
        rid = clean(rule)
        name = RULE_NAMES.get(rid)
        rows.append((str(i), key, f"{name}（{rid}）" if name else rid, clean(art), t, clean(detail)))
    return rows


# --- the document ----------------------------------------------------------------------------------------


def build_notice(
    notice: Mapping,
    findings: pd.DataFrame,
    units: pd.DataFrame,
    officers: pd.DataFrame | None = None,
) -> bytes:
    """The 整改通知书 of ``notice`` as .docx bytes.

    ``notice``: the ``sup_notices`` columns (notice_id, unit_code, issued_by, issued_at, deadline, text, basis,
    basis_ref, period, accountability, state, ...).  ``findings``: finding_key, rule_id, article, detail and
    occurred_at or month.  ``units``: unit_code, name (the unit addressed).  ``officers`` (optional):
    police_no, name, to name the officers of an accountability recommendation."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.enum.table import WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm, Pt

    center, right, left = WD_ALIGN_PARAGRAPH.CENTER, WD_ALIGN_PARAGRAPH.RIGHT, WD_ALIGN_PARAGRAPH.LEFT
    unit_code = clean(notice.get("unit_code"))
    unit = _unit_name(units, unit_code)
    number = notice_number(notice)
    deadline = cn_date(notice.get("deadline"))
    rows = _finding_rows(findings)

    doc = Document()
    _default_fonts(doc)
    sec = doc.sections[0]
    sec.orientation = WD_ORIENT.PORTRAIT
    sec.page_width, sec.page_height = Cm(21), Cm(29.7)
    sec.left_margin = sec.right_margin = Cm(2.6)
    sec.top_margin, sec.bottom_margin = Cm(2.5), Cm(2.2)
    footer = sec.footer.paragraphs[0]
    footer.alignment = center
    _font(footer.add_run(f"{number}　{BUREAU}"), SERIF, 9)

    # header, title, number
    head = _para(doc, BUREAU, size=26, bold=True, font=SANS, align=center, color=RED, space_after=6)
    _rule_below(head)
    _para(doc, TITLE, size=22, bold=True, font=SANS, align=center, space_after=6)
    _para(doc, number, size=12, align=center, space_after=12)

    # addressee and body
    _para(doc, f"{unit}（{unit_code}）：" if unit != unit_code else f"{unit_code}：", size=14, bold=True)
    n = len(rows)
    basis = {"campaign": "随机抽查", "period": "考评检查", "findings": "执法监督检查"}.get(
        clean(notice.get("basis")), "执法监督检查"
    )
    _para(
        doc,
        f"经{basis}，你单位在行政执法全过程记录工作中存在下列问题 {n} 项（详见问题清单）。"
        f"依据{MEASURES}第三十五条的规定，现责令你单位限期整改。",
        size=14,
        indent=True,
        line=26,
    )
    for line in clean(notice.get("text")).split("\n"):
        if line.strip():
            _para(doc, line.strip(), size=14, indent=True, line=26)
    _para(
        doc,
        f"请你单位于{deadline or '规定期限'}前完成整改，并将整改措施和落实情况书面报送市局法制部门。"
        "逾期未完成整改的，将在执法质量考评中予以通报。",
        size=14,
        indent=True,
        line=26,
    )
    p = _para(doc, "", size=14, indent=True, line=26)
    _font(p.add_run("整改期限："), SANS, 14, True)
    _font(p.add_run(deadline or "—"), SERIF, 14, True)

    acc = accountability_of(notice)
    if acc:
        p = _para(doc, "", size=14, indent=True, line=26)
        _font(p.add_run("追责建议："), SANS, 14, True)
        names = {}
        if officers is not None and len(officers) and {"police_no", "name"} <= set(officers.columns):
            names = dict(zip(officers["police_no"].astype(str), officers["name"].map(clean), strict=True))
        who = "、".join(f"{names[o]}（警号 {o}）" if names.get(o) else f"警号 {o}" for o in acc["officers"])
        para = paragraph_text(acc["paragraph"])
        text = f"上述问题情节严重或造成严重后果的，建议依据{MEASURES}{para}的规定，"
        text += f"对直接负责的主管人员和其他责任人员（{who}）依法追究责任。" if who else "对相关责任人员依法追究责任。"
        _font(p.add_run(text), SERIF, 14)

    # the findings
    _para(doc, "附：问题清单", size=14, bold=True, font=SANS, space_after=4).paragraph_format.space_before = Pt(8)
    table = doc.add_table(rows=1, cols=len(FINDING_HEADERS))
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    for cell, h in zip(table.rows[0].cells, FINDING_HEADERS, strict=True):
        _cell_text(cell, h, size=10.5, bold=True, font=SANS, align=center)
    _repeat_header(table.rows[0])
    for r in rows or [("", "", "", "", "", "（无）")]:
        cells = table.add_row().cells
        for j, (cell, v) in enumerate(zip(cells, r, strict=True)):
            _cell_text(cell, v, size=9 if j == 1 else 10, align=center if j in (0, 4) else left)
    for j, w in enumerate(FINDING_WIDTHS_CM):  # the grid (LibreOffice) and every cell (Word)
        table.columns[j].width = Cm(w)
        for cell in table.columns[j].cells:
            cell.width = Cm(w)

    # signature and stamp
    block = [
        _para(doc, "", space_after=18),
        _para(doc, f"签发人：＿＿＿＿＿＿　　经办人：{clean(notice.get('issued_by'))}", size=14, align=right),
        _para(doc, "日期：＿＿＿＿年＿＿月＿＿日", size=14, align=right, space_after=12),
        _para(doc, f"{BUREAU}（盖章）", size=14, align=right, space_after=6),
        _para(doc, cn_date(notice.get("issued_at"), numerals=True) or "＿＿＿＿年＿＿月＿＿日", size=14, align=right),
    ]
    for p in block[:-1]:  # the signature and stamp block stays on one page
        p.paragraph_format.keep_with_next = True

    # receipt for the unit to return
    p = _para(doc, "", space_after=6)
    p.paragraph_format.space_before = Pt(18)
    _font(
        p.add_run("- - - - - - - - - - - - - - - - - - - - - - 沿此线剪下 - - - - - - - - - - - - - - - - - - - - - -"),
        SERIF,
        9,
    )
    _para(doc, "回　执", size=16, bold=True, font=SANS, align=center, space_after=8)
    _para(
        doc,
        f"{unit}已于＿＿＿＿年＿＿月＿＿日收到{BUREAU}{number}{TITLE}，将于{deadline or '规定期限'}前完成整改并书面报告整改情况。",
        size=14,
        indent=True,
        line=26,
    )
    _para(doc, "签收人：＿＿＿＿＿＿　　联系电话：＿＿＿＿＿＿＿＿", size=14, align=right, space_after=6)
    _para(doc, f"{unit}（盖章）", size=14, align=right, space_after=6)
    _para(doc, "＿＿＿＿年＿＿月＿＿日", size=14, align=right)

    stamp = pd.Timestamp(notice.get("issued_at")).to_pydatetime() if _as_date(notice.get("issued_at")) else FIXED_TIME
    props = doc.core_properties
    props.title = f"{TITLE} {number}"
    props.author = props.last_modified_by = BUREAU
    props.created = props.modified = stamp
    props.revision = 1
    buf = io.BytesIO()
    doc.save(buf)
    return _stable_zip(buf.getvalue(), stamp)


def _repeat_header(row) -> None:  # noqa: ANN001
    """Mark a table row as a header repeated on every page."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    trpr = row._tr.get_or_add_trPr()
    el = OxmlElement("w:tblHeader")
    el.set(qn("w:val"), "true")
    trpr.append(el)


def _stable_zip(package: bytes, stamp: datetime) -> bytes:
    """The package with fixed entry times (the same notice gives the same bytes)."""
    when = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=when)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o600 << 16
            dst.writestr(zi, src.read(info.filename))
    return buf.getvalue()


# --- from the warehouse ----------------------------------------------------------------------------------


def read_notice(conn: Connection, notice_id: int) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(notice, findings, units, officers) of ``notice_id`` as :func:`build_notice` takes them (EtlError when
    there is no such notice).  The findings' times come from the current ``findings`` rows where they still
    exist (else the month copied at issue)."""
    try:
        nid = int(notice_id)
    except (TypeError, ValueError) as exc:
        raise EtlError(f"整改通知编号应为整数：{notice_id}") from exc
    rows = read_df(conn, "SELECT * FROM sup_notices WHERE notice_id = :n", {"n": nid})
    if rows.empty:
        raise EtlError(f"没有编号为 {nid} 的整改通知")
    notice = rows.iloc[0].to_dict()
    findings = read_df(
        conn,
        """
        SELECT nf.finding_key, nf.rule_id, nf.article, nf.month, nf.detail, MIN(f.occurred_at) AS occurred_at
        FROM sup_notice_findings nf LEFT JOIN findings f ON f.finding_key = nf.finding_key
        WHERE nf.notice_id = :n
        GROUP BY nf.finding_key, nf.rule_id, nf.article, nf.month, nf.detail
        ORDER BY nf.finding_key""",
        {"n": nid},
    )
    units = read_df(conn, "SELECT unit_code, name FROM org_units")
    officers = pd.DataFrame(columns=["police_no", "name"])
    acc = accountability_of(notice)
    if acc and acc["officers"]:
        officers = read_df(conn, "SELECT police_no, name FROM officers")
        officers = officers[officers["police_no"].astype(str).isin(acc["officers"])].reset_index(drop=True)
    return notice, findings, units, officers


def write_notice(conn: Connection, notice_id: int, out: Path | str) -> Path:
    """Write the 整改通知书 of ``notice_id`` to ``out`` (.docx); returns the path written."""
    notice, findings, units, officers = read_notice(conn, notice_id)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(build_notice(notice, findings, units, officers))
    return out
