"""Exports: the workbook is built once per version, the ledger export is complete or says where it stops."""

from __future__ import annotations

import io

import openpyxl
from helpers import logged_in, open_page

from dashboard import exports, queries


def test_workbook_is_built_once_per_version(wh, monkeypatch):
    calls = []
    monkeypatch.setattr(exports, "build_assessment_workbook", lambda *a, **k: calls.append(a) or b"PK-workbook")
    args = (wh.url, "2026-07", None, "legal", None, "measures-2026", True)
    assert exports.assessment_workbook(*args) == b"PK-workbook"
    assert exports.assessment_workbook(*args) == b"PK-workbook"  # a rerun of the page
    assert len(calls) == 1
    exports.assessment_workbook(*args, published_version=1)  # another version: built again
    exports.assessment_workbook(wh.url, "2026-07", None, "leader", None, "measures-2026", True)  # another user
    assert len(calls) == 3


def test_workbook_is_rebuilt_after_a_new_run(wh, monkeypatch):
    calls = []
    monkeypatch.setattr(exports, "build_assessment_workbook", lambda *a, **k: calls.append(a) or b"PK")
    versions = iter([(1,), (2,)])
    monkeypatch.setattr(queries, "data_version", lambda url: next(versions))
    for _ in range(2):
        exports.assessment_workbook(wh.url, "2026-07", None, "legal", None, "measures-2026", True)
    assert len(calls) == 2


def test_ledger_export_has_every_device_beyond_the_page_list(wh, monkeypatch):
    monkeypatch.setattr(queries, "DEVICES_SHOWN", 1)
    exported = {}
    real = exports.to_xlsx

    def spy(df, sheet="设备台账", note=None):  # noqa: ANN001, ANN202
        exported["rows"], exported["note"] = len(df), note
        return real(df, sheet, note)

    monkeypatch.setattr(exports, "to_xlsx", spy)
    at = open_page(logged_in("equipment"), "equipment")
    total = len(queries.device_ledger(wh.url, None, None, "2026-07")[0])
    at.text_input(key="reason_text_ledger").input("年度盘点")
    [b for b in at.button if b.label == "确认"][0].click().run()
    assert exported["rows"] == total > 1 and exported["note"] is None


def test_ledger_export_states_its_limit_in_page_and_file(wh, monkeypatch):
    monkeypatch.setattr(queries, "LEDGER_EXPORT_LIMIT", 2)
    notes = {}
    real = exports.to_xlsx

    def spy(df, sheet="设备台账", note=None):  # noqa: ANN001, ANN202
        data = real(df, sheet, note)
        notes["file"] = openpyxl.load_workbook(io.BytesIO(data))
        notes["rows"] = len(df)
        return data

    monkeypatch.setattr(exports, "to_xlsx", spy)
    at = open_page(logged_in("equipment"), "equipment")
    at.text_input(key="reason_text_ledger").input("年度盘点")
    [b for b in at.button if b.label == "确认"][0].click().run()
    assert notes["rows"] == 2
    assert any("只导出前 2 台" in w.value for w in at.warning)
    book = notes["file"]
    assert "说明" in book.sheetnames and "只导出前 2 台" in book["说明"]["A2"].value
