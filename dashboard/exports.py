"""Excel exports of the dashboard (the assessment workbook lives in etl.reports.workbook)."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from etl.reports.workbook.xlsx import safe_text


def neutralise(value: object) -> object:
    """Text cells go through the workbook's one safe-text rule (no formula, no XML-illegal characters)."""
    return safe_text(value) if isinstance(value, str) else value


def to_xlsx(df: pd.DataFrame, sheet: str = "设备台账", note: str | None = None) -> bytes:
    """One sheet with a frozen, filtered header; no cell from data is ever a formula.  ``note`` (e.g. that the
    export stops at a limit) goes into a second sheet 说明 and the data sheet's header comment."""
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(neutralise)
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xw:
        safe.to_excel(xw, sheet_name=sheet, index=False)
        ws = xw.sheets[sheet]
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = ws.dimensions
        for i, col in enumerate(safe.columns, start=1):
            width = max([len(str(col))] + [len(str(v)) for v in safe[col].head(200)]) + 2
            ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = min(40, width * 1.2)
        if note:
            pd.DataFrame({"说明": [note]}).to_excel(xw, sheet_name="说明", index=False)
            from openpyxl.comments import Comment

            ws.cell(row=1, column=1).comment = Comment(note, "平台")
    return buf.getvalue()


def assessment_workbook(
    url: str,
    period: str,
    unit: str | None,
    generated_by: str,
    scope: tuple[str, ...] | None,
    scheme_id: str | None = None,
    current: bool = False,
    published_version: int | None = None,
) -> bytes:
    """The assessment workbook, built once per (scope, unit, period, scheme, data version, published version,
    user) and then served from the cache: a rerun of the page does not rebuild it.  The unit is re-checked
    against the scope on every call, before the cache."""
    from dashboard.queries import data_version, effective_units

    effective_units(url, scope, unit)  # re-check the unit against the user's scope (ScopeError)
    return _cached_workbook(
        url, period, unit, generated_by, scope, scheme_id, current, published_version, data_version(url)
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _cached_workbook(
    url: str,
    period: str,
    unit: str | None,
    generated_by: str,
    scope: tuple[str, ...] | None,
    scheme_id: str | None,
    current: bool,
    published_version: int | None,
    version_key: tuple,  # part of the cache key (no leading underscore: Streamlit would skip it)
) -> bytes:
    return build_assessment_workbook(url, period, unit, generated_by, scope, scheme_id, current)


def build_assessment_workbook(
    url: str,
    period: str,
    unit: str | None,
    generated_by: str,
    scope: tuple[str, ...] | None,
    scheme_id: str | None = None,
    current: bool = False,
) -> bytes:
    """The assessment workbook of ``etl.reports.workbook.build_workbook`` (imported lazily: it is a separate module).

    ``unit`` None means the whole city (city roles only); a unit administrator's ``scope`` is passed as
    ``allowed_scope`` so the builder refuses anything outside it as well.  A published period gives its latest
    published version (cover 已发布 vN) unless ``current`` (草稿, the current figures).
    """
    from dashboard.queries import effective_units, engine
    from etl.reports.workbook import build_workbook

    effective_units(url, scope, unit)  # re-check the unit against the user's scope (ScopeError)
    return build_workbook(
        engine(url),
        period=period,
        unit_code=unit,
        scheme_id=scheme_id,
        generated_by=generated_by,
        allowed_scope=None if scope is None else set(scope),
        current=current,
    )


def notice_docx(url: str, scope: tuple[str, ...] | None, notice_id: int) -> bytes:
    """The printable 整改通知书 (.docx) of one notice of the user's scope (``etl.reports.notice_docx.build_notice``
    over ``queries.notice``); the page asks for the reason and audits the export first."""
    from dashboard.queries import notice, unit_rows
    from etl.reports.notice_docx import build_notice

    found = notice(url, scope, int(notice_id))
    if found is None:
        raise LookupError(f"整改通知 {notice_id} 不存在或不在管辖范围内")
    head = {k: v for k, v in found.items() if k not in ("findings", "events")}
    return build_notice(head, found["findings"], unit_rows(url))
