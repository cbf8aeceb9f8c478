"""The assessment workbook (考评表) of shared/spec/interface.md, "Assessment workbook".

One builder serves ``python -m etl assess`` (:func:`assess_cli`) and the
dashboard's download button (:func:`build_workbook`); the same inputs and
``generated_at`` give the same bytes.

Sheets: 封面 (cover), 汇总 (summary + signature block), 扣分明细 (every lost
point traced to objects and findings: one row per unclean object or finding,
one points column per level of the scope, see ``details.py``), 覆盖率 (on-site
coverage per unit and month), 指标 (standard metrics), 趋势 (per unit, the
period's months with the total and the whole-process rate against the period
before and the same period of the year before, see ``trend.py``), 设备台账 (devices),
数据质量 (the data-quality queue of the scope; frozen at publication like the other sheets — a publication
made before the queue was frozen shows today's queue with a note line),
抽查情况 and 整改情况 (spot-checks and rectification notices of the period with
the per-unit rates, see ``supervision.py``).
Layout and safety (formula neutralisation, print setup, stable bytes) live
in ``xlsx.py``; the rows of each sheet in ``sheets.py``; the queries in
``data.py``.
"""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from openpyxl.xml.functions import tostring
from sqlalchemy.engine import Connection, Engine

from etl.errors import EtlError
from etl.reports.workbook import data, details, frozen, sheets, supervision, trend
from etl.reports.workbook.xlsx import splice_rows, stable_zip
from etl.scoring import schemes
from etl.warehouse.db import TS_FORMAT, make_engine, warehouse_url

__all__ = ["build_workbook", "assess_cli", "WorkbookStats"]


@dataclass(frozen=True)
class WorkbookStats:
    """What went into a workbook (for the command's one-line summary)."""

    period: str
    period_label: str
    scope_label: str
    scheme_id: str
    scheme_version: str
    units: int
    detail_rows: int
    devices: int
    status: str = ""  # 已发布 vN（…） or 草稿（当前数据）


def build_workbook(
    engine_or_conn: Engine | Connection,
    *,
    period: str,
    unit_code: str | None = None,
    scheme_id: str | None = None,
    generated_by: str = "etl assess",
    generated_at: datetime | None = None,
    allowed_scope: set[str] | None = None,
    config_dir: Path | None = None,
    published: int | str | None = "latest",
    current: bool = False,
) -> bytes:
    """The assessment workbook as .xlsx bytes.

    period: '2026', '2026-Q3' or '2026-07'. unit_code: None = the whole city,
    else that unit's scope. scheme_id: None = the active scheme. allowed_scope:
    a unit administrator's scope; PermissionError when unit_code is None or
    outside it. config_dir: where ``schemes/<id>.yaml`` is (default: the
    repository's ``config``). Raises EtlError for a bad period, an unknown unit
    or a warehouse without scores.

    published: 'latest' (default) = for a published period the latest published version, rebuilt from the
    frames frozen at publication (cover: 已发布 vN), else the current figures; a publication id = that
    version; None or ``current=True`` = the current figures (cover: 草稿（当前数据）).  A ``scheme_id`` other
    than the published scheme shows that scheme's current figures.
    """
    return _build(
        engine_or_conn,
        period=period,
        unit_code=unit_code,
        scheme_id=scheme_id,
        scheme_file=None,
        generated_by=generated_by,
        generated_at=generated_at,
        allowed_scope=allowed_scope,
        config_dir=config_dir,
        published=None if current else published,
    )[0]


def assess_cli(
    *,
    warehouse: str | None,
    period: str,
    unit: str | None,
    scheme: Path | None,
    xlsx: Path,
    current: bool = False,
) -> str:
    """``python -m etl assess``: write the workbook to ``xlsx`` and return a one-line Chinese summary.

    A published period gives its latest published version (as published, whatever changed since); ``current``
    the current figures (草稿)."""
    data.parse_period(period)  # a bad period fails before touching the warehouse
    url = warehouse_url(warehouse)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            raise EtlError(f"数据仓库不存在：{path}（请先运行 python -m etl run）")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("unit_scores") or not sa.inspect(conn).has_table("org_units"):
                raise EtlError("数据仓库为空，请先运行 python -m etl run 加载数据并计算得分")
            content, stats = _build(
                conn,
                period=period,
                unit_code=unit,
                scheme_id=None,
                scheme_file=scheme,
                generated_by="etl assess",
                generated_at=None,
                allowed_scope=None,
                config_dir=None,
                published=None if current else "latest",
            )
    finally:
        engine.dispose()
    xlsx = Path(xlsx)
    xlsx.parent.mkdir(parents=True, exist_ok=True)
    xlsx.write_bytes(content)
    return (
        f"已生成考评表 {xlsx}：{stats.period_label}，{stats.scope_label}，方案 {stats.scheme_id}"
        f"（{stats.scheme_version}），{stats.status}，{stats.units} 个单位，扣分明细 {stats.detail_rows} 条，"
        f"设备 {stats.devices} 台"
    )


def _build(engine_or_conn: Engine | Connection, **kw) -> tuple[bytes, WorkbookStats]:  # noqa: ANN003
    with _no_cyclic_gc():
        if isinstance(engine_or_conn, Engine):
            with engine_or_conn.connect() as conn:
                return _build_conn(conn, **kw)
        return _build_conn(engine_or_conn, **kw)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause Python's cycle collector during a build.

    A city-wide build creates ~10^6 short-lived tuples and strings (findings, rows, cells); each burst of
    allocations makes the collector rescan everything still alive, ~20 % of the build's CPU at city scale.
    Reference counting still frees all of it; the collector resumes (if it was running) when the build ends.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _build_conn(
    conn: Connection,
    *,
    period: str,
    unit_code: str | None,
    scheme_id: str | None,
    scheme_file: Path | None,
    generated_by: str,
    generated_at: datetime | None,
    allowed_scope: set[str] | None,
    config_dir: Path | None,
    published: int | str | None = "latest",
) -> tuple[bytes, WorkbookStats]:
    per = data.parse_period(period)
    scheme = schemes.load_scheme(scheme_file) if scheme_file is not None else None
    pub = frozen.publication(conn, per.code, published)
    if pub is not None and published == "latest":
        wanted = scheme["id"] if scheme is not None else scheme_id
        if wanted is not None and wanted != pub["scheme_id"]:
            pub = None  # another scheme than the published one: its current figures
    if pub is not None:
        inp = frozen.scoped(frozen.read_frames(conn, pub["publication_id"]), unit_code, allowed_scope)
    else:
        inp = _live_inputs(conn, per, unit_code, scheme_id, scheme, allowed_scope, config_dir)
    live = inp.quality is None  # a publication made before the queue was frozen: today's queue, with a note
    quality = data.read_data_quality(conn, inp.scope) if live else inp.quality
    return _render(inp, per, generated_by, generated_at, frozen.status_text(pub), quality, pub is not None and live)


def _live_inputs(
    conn: Connection,
    per: data.Period,
    unit_code: str | None,
    scheme_id: str | None,
    scheme: dict | None,
    allowed_scope: set[str] | None,
    config_dir: Path | None,
) -> frozen.Inputs:
    """The sheets' inputs read from the warehouse now (the current figures, 草稿)."""
    units = data.read_units(conn)
    scope, scope_label = data.resolve_scope(units, unit_code, allowed_scope)
    if scheme is not None:
        scheme_id = scheme["id"]
    scores, items, sid, version = data.read_scores(conn, per, scope, scheme_id, scheme["version"] if scheme else None)
    if scheme is None:
        scheme = schemes.scheme_for(sid, config_dir)
    evaluation = data.read_evaluation(conn)
    scored = set(scores["unit_code"])
    metrics = data.read_metrics(conn, per, scope)
    lost, levels = _details(conn, per, scored, scope, scheme, items, metrics, units, config_dir)
    return frozen.Inputs(
        units=units,
        scope=scope,
        scope_label=scope_label,
        scores=scores,
        items=items,
        scheme=scheme,
        scheme_id=sid,
        scheme_version=version,
        evaluation=evaluation,
        metrics=metrics,
        lost=lost,
        levels=levels,
        coverage=data.read_coverage(conn, per, units, scored),
        devices=data.read_devices(conn, per, scope),
        spotchecks=data.read_spotchecks(conn, per, scope),
        notices=data.read_notices(conn, per, scope),
        quality=data.read_data_quality(conn, scope),
        trend=data.read_trend(conn, per, scope, sid, version),
    )


def _render(
    inp: frozen.Inputs,
    per: data.Period,
    generated_by: str,
    generated_at: datetime | None,
    status: str,
    quality: pd.DataFrame | None = None,
    published: bool = False,
) -> tuple[bytes, WorkbookStats]:
    """The .xlsx bytes of the sheets from their inputs (live or frozen: the same code)."""
    units, scores, items, scheme, metrics = inp.units, inp.scores, inp.items, inp.scheme, inp.metrics
    lost, levels, coverage, devices = inp.lost, inp.levels, inp.coverage, inp.devices
    sid, version, scope_label, evaluation = inp.scheme_id, inp.scheme_version, inp.scope_label, inp.evaluation
    item_order = [(it["id"], it["name"], float(it["points"])) for it in scheme["items"]]

    generated_at = generated_at or datetime.now().replace(microsecond=0)
    names = dict(zip(units["unit_code"], units["name"].astype(str), strict=True))
    summary = sheets.summary_frame(scores, items, units, item_order)
    unit_rank = {u: i for i, u in enumerate(summary["unit_code"])}
    scored = set(scores["unit_code"].astype(str))
    info = {
        "period": per.code,
        "period_label": per.label,
        "scope_label": scope_label,
        "scheme_id": sid,
        "scheme_name": str(scheme.get("name") or sid),
        "scheme_version": version,
        "status": status,
        "as_of": evaluation["as_of"],
        "data_as_of": evaluation["data_as_of"],
        "integrity": evaluation.get("integrity"),
        "units": len(summary),
        "generated_by": generated_by,
        "generated_at": generated_at.strftime(TS_FORMAT),
    }

    wb = sheets.new_workbook()
    wb.properties.title = sheets.TITLE
    wb.properties.creator = "行政执法全过程记录督察考评平台"
    wb.properties.created = generated_at
    sheets.write_cover(wb.create_sheet("封面"), info)
    title = lambda s: sheets.page_title(s, per.label, scope_label)  # noqa: E731
    sheets.write_summary(
        wb.create_sheet("汇总"),
        sheets.summary_rows(summary, item_order),
        sheets.summary_columns(item_order),
        title("汇总"),
    )
    n_detail = len(lost)
    splices = [
        sheets.write_table(
            wb.create_sheet("扣分明细"),
            sheets.detail_columns(levels),
            sheets.detail_rows(lost, levels, names, unit_rank, data.county_of(units)),
            title("扣分明细"),
            "本期无扣分",
        ),
        sheets.write_table(
            wb.create_sheet("覆盖率"),
            sheets.COVERAGE_COLS,
            sheets.coverage_rows(coverage, names, unit_rank),
            title("覆盖率"),
            "本期无现场执法事件",
        ),
        sheets.write_table(
            wb.create_sheet("指标"),
            sheets.METRIC_COLS,
            sheets.metric_rows(metrics, names, unit_rank),
            title("指标"),
            "本期无指标数据",
        ),
        sheets.write_table(
            wb.create_sheet("趋势"),
            trend.TREND_COLS,
            trend.trend_rows(inp.trend, per, names, unit_rank),
            title("趋势"),
            trend.EMPTY,
        ),
        sheets.write_table(
            wb.create_sheet("设备台账"),
            sheets.DEVICE_COLS,
            sheets.device_rows(devices, names),
            title("设备台账"),
            "范围内无设备",
        ),
        sheets.write_table(
            wb.create_sheet("数据质量"),
            sheets.DATA_QUALITY_COLS,
            sheets.data_quality_rows(
                quality if quality is not None else pd.DataFrame(columns=data.DATA_QUALITY_COLUMNS),
                names,
                unit_rank,
                published,
            ),
            title("数据质量"),
            "范围内无待处理的数据质量问题",
        ),
        supervision.write_spotchecks(
            wb.create_sheet("抽查情况"), inp.spotchecks, units, scored, names, unit_rank, title("抽查情况")
        ),
        supervision.write_notices(
            wb.create_sheet("整改情况"), inp.notices, units, scored, names, unit_rank, title("整改情况")
        ),
    ]
    wb.active = 0
    del lost, coverage  # the rows are XML now: free them before the package is assembled

    buf = io.BytesIO()
    wb.save(buf)
    paths = {ws.title: ws.path.lstrip("/") for ws in wb.worksheets}
    replace = splice_rows(buf.getvalue(), paths, splices)
    wb.properties.modified = generated_at
    replace["docProps/core.xml"] = tostring(wb.properties.to_tree())
    content = stable_zip(buf.getvalue(), generated_at, replace)
    stats = WorkbookStats(
        per.code, per.label, scope_label, sid, version, len(summary), n_detail, len(devices), status.split("（")[0]
    )
    return content, stats


def _details(
    conn: Connection,
    per: data.Period,
    scored: set[str],
    scope: set[str],
    scheme: dict,
    items: pd.DataFrame,
    metrics: pd.DataFrame,
    units: pd.DataFrame,
    config_dir: Path | None,
) -> tuple[pd.DataFrame, list[str]]:
    """扣分明细's rows and the levels of its points columns (the scoring rows and findings die here)."""
    raw, levels = details.lost_points(conn, per.code, scored, scheme, items, metrics, config_dir)
    return details.present(
        raw, levels, details.read_findings(conn, scope), scheme, items, metrics, data.unit_levels(units)
    ), levels
