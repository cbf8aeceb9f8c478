"""The printable rectification notice (etl.reports.notice_docx): content, LibreOffice → PDF, speed."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.errors import EtlError
from etl.reports.notice_docx import (
    accountability_of,
    build_notice,
    clean,
    cn_date,
    notice_number,
    paragraph_text,
    write_notice,
)

UNIT = "140403510000"
UNIT_NAME = "长治市公安局潞州分局东街派出所"


def _notice(**kw) -> dict:  # noqa: ANN003
    base = {
        "notice_id": 12,
        "unit_code": UNIT,
        "issued_by": "legal",
        "issued_at": "2026-11-20 09:30:00",
        "deadline": "2026-12-05",
        "text": "请逐条核查问题原因，落实整改责任人。\n整改情况于期限内书面报送。",
        "basis": "campaign",
        "basis_ref": "3",
        "period": "2026-10",
        "accountability": json.dumps({"officers": ["794007"], "paragraph": "2"}),
        "state": "open",
        "closed_at": None,
        "closed_by": None,
        "version": 1,
    }
    base.update(kw)
    return base


def _findings(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "finding_key": [f"SPOT-CHECK:J14040320261000{i:04d}:3" for i in range(n)],
            "rule_id": ["SPOT-CHECK"] * n,
            "article": ["第十六条、第十一条"] * n,
            "unit_code": [UNIT] * n,
            "month": ["2026-10"] * n,
            "occurred_at": [f"2026-10-{1 + i % 28:02d} 10:{i % 60:02d}:00" for i in range(n)],
            "detail": [f"抽查不合格：16.2 未记录现场人员 第{i}条\x07" for i in range(n)],
        }
    )


def _units() -> pd.DataFrame:
    return pd.DataFrame({"unit_code": [UNIT, "140403000000"], "name": [UNIT_NAME, "长治市公安局潞州分局"]})


def _docx_text(content: bytes) -> str:
    from docx import Document

    doc = Document(io.BytesIO(content))
    parts = [p.text for p in doc.paragraphs]
    for t in doc.tables:
        for row in t.rows:
            parts.extend(c.text for c in row.cells)
    return "\n".join(parts)


def test_document_content() -> None:
    content = build_notice(_notice(), _findings(), _units())
    assert content[:2] == b"PK"
    text = _docx_text(content)
    for expected in (
        "长治市公安局",
        "整改通知书",
        "长公法整〔2026〕12号",
        UNIT_NAME,
        "请逐条核查问题原因",
        "SPOT-CHECK:J140403202610000001:3",
        "第十六条、第十一条",
        "2026-10-02 10:01",
        "2026年12月5日",
        "第三十五条第（二）项",
        "794007",
        "签发人",
        "日期",
        "（盖章）",
        "二〇二六年十一月二十日",
        "回　执",
    ):
        assert expected in text, expected
    assert "\x07" not in text
    assert build_notice(_notice(), _findings(), _units()) == content  # stable bytes


def test_east_asian_font_on_runs() -> None:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(build_notice(_notice(), _findings(), _units()))) as z:
        body = z.read("word/document.xml").decode("utf-8")
        styles = z.read("word/styles.xml").decode("utf-8")
    assert 'w:eastAsia="宋体"' in body and 'w:eastAsia="黑体"' in body
    assert 'w:eastAsia="宋体"' in styles


def test_data_is_only_text() -> None:
    bad = _notice(text='=HYPERLINK("x")\x00\x1b<w:p>&amp;', issued_by="<b>x</b>", accountability=None)
    f = _findings(1).assign(detail="@SUM(A1)\x0b<script>", finding_key="K<&>")
    text = _docx_text(build_notice(bad, f, _units()))
    assert '=HYPERLINK("x")<w:p>&amp;' in text
    assert "@SUM(A1)<script>" in text and "K<&>" in text and "<b>x</b>" in text
    assert "追责建议" not in text


def test_no_findings_unknown_unit_missing_dates() -> None:
    text = _docx_text(build_notice(_notice(unit_code="999", deadline=None, issued_at=None), _findings(0), _units()))
    assert "999" in text and "（无）" in text and "长公法整〔〕12号" in text


def test_helpers() -> None:
    assert notice_number({"notice_id": 7, "issued_at": "2027-01-02 08:00:00"}) == "长公法整〔2027〕7号"
    assert cn_date("2026-12-05") == "2026年12月5日"
    assert cn_date("2026-10-20 00:00:00", numerals=True) == "二〇二六年十月二十日"
    assert cn_date("2026-11-11", numerals=True) == "二〇二六年十一月十一日"
    assert cn_date(None) == ""
    assert clean("a\r\nb\x00c") == "a\nbc" and clean(float("nan")) == ""
    assert accountability_of({"accountability": None}) is None
    assert accountability_of({"accountability": '{"officers": [], "paragraph": ""}'}) is None
    assert accountability_of({"accountability": {"officers": "1,2", "paragraph": "（四）"}}) == {
        "officers": ["1", "2"],
        "paragraph": "（四）",
    }
    assert accountability_of({"accountability": "not json"}) == {"officers": [], "paragraph": "not json"}
    assert paragraph_text("4").startswith("第三十五条第（四）项（故意毁损")
    assert paragraph_text("第二项").startswith("第三十五条第（二）项")
    assert paragraph_text("情节严重") == "第三十五条情节严重"


def _pdf_text(docx: Path, tmp_path: Path) -> str:
    if not shutil.which("soffice") or not shutil.which("pdftotext"):
        pytest.fail("LibreOffice (libreoffice-writer) and poppler-utils are required (make system-deps)")
    profile = f"file:///tmp/lo_profile_{uuid.uuid4().hex[:8]}"
    run = subprocess.run(
        ["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf", "--outdir"]
        + [str(tmp_path), str(docx)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    pdf = tmp_path / (docx.stem + ".pdf")
    assert run.returncode == 0 and pdf.exists(), run.stdout + run.stderr
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    w, h = (float(x) for x in info.split("Page size:")[1].split("pts")[0].split(" x "))
    assert abs(w - 595) < 3 and abs(h - 842) < 3  # A4 portrait
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "CJK" in fonts  # the Chinese is set in a CJK font, not boxes
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


@pytest.mark.libreoffice
def test_libreoffice_converts_the_notice_to_pdf(tmp_path: Path) -> None:
    path = tmp_path / "notice.docx"
    path.write_bytes(build_notice(_notice(), _findings(5), _units()))
    text = _pdf_text(path, tmp_path)
    # pdftotext breaks lines, spaces CJK / Latin runs and drops a hyphen where a line broke after it
    flat = "".join(text.split()).replace("-", "")
    for expected in (
        "整改通知书",
        UNIT_NAME,
        "SPOTCHECK:J14040320261000",
        "第十六条、第十一条",
        "2026年12月5日",
        "签发人",
        "长治市公安局（盖章）",
        "回执",
    ):
        assert expected in flat, expected


def test_a_notice_with_200_findings_builds_within_2_seconds() -> None:
    f = _findings(200)
    build_notice(_notice(), f.head(2), _units())  # imports warmed
    t0 = time.perf_counter()
    content = build_notice(_notice(), f, _units())
    secs = time.perf_counter() - t0
    print(f"notice .docx with 200 findings: {secs:.3f} s, {len(content)} bytes")
    assert secs <= 2.0
    assert _docx_text(content).count("SPOT-CHECK:") == 200


def test_write_notice_reads_the_warehouse(tmp_path: Path) -> None:
    from etl.warehouse.schema import ensure_schema

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with engine.begin() as conn:
        ensure_schema(conn)
        conn.exec_driver_sql(
            "INSERT INTO org_units (unit_code, name, parent_code, level) VALUES "
            f"('{UNIT}', '{UNIT_NAME}', '140403000000', 'station')"
        )
        conn.exec_driver_sql(
            "INSERT INTO officers (police_no, name, unit_code) VALUES ('794007', '张三', :u)", {"u": UNIT}
        )
        n = _notice()
        conn.execute(
            sa.text(
                "INSERT INTO sup_notices (notice_id, unit_code, issued_by, issued_at, deadline, text, basis, "
                "basis_ref, period, accountability, state, version) VALUES (:notice_id, :unit_code, :issued_by, "
                ":issued_at, :deadline, :text, :basis, :basis_ref, :period, :accountability, :state, 1)"
            ),
            {**n, "deadline": pd.Timestamp(n["deadline"]).date()},
        )
        for r in _findings(2).to_dict("records"):
            conn.execute(
                sa.text(
                    "INSERT INTO sup_notice_findings (notice_id, finding_key, rule_id, article, unit_code, month, "
                    "detail) VALUES (12, :finding_key, :rule_id, :article, :unit_code, :month, :detail)"
                ),
                r,
            )
        out = write_notice(conn, 12, tmp_path / "out" / "n12.docx")
        with pytest.raises(EtlError, match="没有编号为 99"):
            write_notice(conn, 99, tmp_path / "x.docx")
    text = _docx_text(out.read_bytes())
    assert UNIT_NAME in text and "张三（警号 794007）" in text and "SPOT-CHECK:J140403202610000001:3" in text
    assert "2026-10" in text  # no current finding row: the month copied at issue
    engine.dispose()
