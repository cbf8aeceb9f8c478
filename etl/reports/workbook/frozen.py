"""The workbook's inputs as frames: read live at city scope, frozen at a publication, cut to a unit's scope.

A publication (``etl.supervision.publish``) stores the frames this module reads
(:func:`city_frames`) in ``sup_published_frames``, one zstd Arrow IPC blob per
frame (:func:`encode` / :func:`decode`).  ``etl assess`` and the dashboard's
download then rebuild the workbook of a published period from those frames
alone (:func:`read_frames` → :func:`scoped`): late data, new verdicts or a
changed scheme file leave the published workbook as it was, cell for cell.

The frames (all at city scope, for one period and scheme):

* ``info``: one row: period, scheme id and version, the scheme itself (JSON), evaluation date and data-as-of;
* ``units``: the unit directory (``data.read_units``);
* ``scores`` / ``items`` / ``metrics``: the period's unit_scores, unit_item_scores and metrics rows;
* ``lost`` / ``levels``: the scoring step's lost-point rows by level (``details.lost_points``) and their levels;
* ``findings``: the findings those rows name (``details.FINDING_COLUMNS``);
* ``coverage`` / ``devices``: ``data.read_coverage`` and ``data.read_devices``;
* ``spotchecks`` / ``notices``: ``data.read_spotchecks`` and ``data.read_notices`` (overdue and on time as of
  the day of publication); ``quality``: the data-quality queue (``data.read_data_quality``); ``trend``: the totals
  and whole-process rates of the period, its months, and the periods before and a year before them
  (``data.read_trend``, sheet 趋势).  Publications made before these existed lack them (:data:`SUPERVISION_FRAMES`
  are optional): their 抽查情况, 整改情况 and 趋势 sheets say the data were not frozen, their 数据质量 sheet shows
  today's queue with a note line.

A unit's scope is cut in pandas (:func:`scoped`, unit scope from ``etl.warehouse.scope``) exactly as the live
queries would have restricted it, so a published county workbook equals the county workbook of that moment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
from sqlalchemy.engine import Connection

from etl.errors import EtlError
from etl.periods import Period
from etl.reports.workbook import data, details
from etl.scoring.items import unit_pairs
from etl.scoring.lost_points import BY_LEVEL_COLUMNS, lost_points_levels
from etl.scoring.metrics import isin
from etl.times import TS_FORMAT, ts_text
from etl.warehouse.db import read_df

FRAMES = ("info", "units", "scores", "items", "metrics", "lost", "levels", "findings", "coverage", "devices")
# optional: absent from publications made before them (the sheets then say so, or show the live queue)
SUPERVISION_FRAMES = ("spotchecks", "notices", "quality", "trend")
_IPC = pa.ipc.IpcWriteOptions(compression="zstd")


@dataclass(frozen=True)
class Inputs:
    """Everything the sheets show, for one period, scheme and scope (live or frozen)."""

    units: pd.DataFrame
    scope: set[str]
    scope_label: str
    scores: pd.DataFrame
    items: pd.DataFrame
    scheme: dict
    scheme_id: str
    scheme_version: str
    evaluation: dict  # as_of, data_as_of (text or None)
    metrics: pd.DataFrame
    lost: pd.DataFrame  # 扣分明细 rows (details.present)
    levels: list[str]
    coverage: pd.DataFrame
    devices: pd.DataFrame
    spotchecks: pd.DataFrame | None = None  # None: a publication that did not freeze them
    notices: pd.DataFrame | None = None
    quality: pd.DataFrame | None = None  # the data-quality queue (sheet 数据质量); None: not frozen
    trend: pd.DataFrame | None = None  # totals and whole-process rates around the period (sheet 趋势); None: not frozen


# --- frames <-> bytes ------------------------------------------------------------------------------------


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Datetimes as 'YYYY-MM-DD HH:MM:SS' text (SQLite and PostgreSQL give the same frame), columns mixing
    kinds as text; everything else as it is."""
    out = {}
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s):  # vectorised ts_text: the same text, None for NaT
            s = s.dt.strftime(TS_FORMAT).astype(object).where(s.notna(), None)
        elif s.dtype == object:
            kind = pd.api.types.infer_dtype(s, skipna=True)
            if kind in ("datetime", "datetime64", "date"):
                s = s.map(ts_text)
            elif kind not in ("string", "empty", "integer", "floating", "mixed-integer-float", "boolean", "bytes"):
                s = s.map(lambda v: None if v is None or v is pd.NA or v != v else str(v))  # noqa: PLR0124
        out[c] = s
    return pd.DataFrame(out, columns=list(df.columns), index=pd.RangeIndex(len(df)))


def encode(df: pd.DataFrame | pa.Table) -> bytes:
    """A frame as zstd-compressed Arrow IPC (stream format); an Arrow table (already plain) as it is."""
    tab = df if isinstance(df, pa.Table) else pa.Table.from_pandas(_plain(df), preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, tab.schema, options=_IPC) as w:
        w.write_table(tab)
    return sink.getvalue().to_pybytes()


def decode(blob: bytes) -> pd.DataFrame:
    """The frame of :func:`encode` (missing values of text columns as None)."""
    return pa.ipc.open_stream(pa.py_buffer(bytes(blob))).read_all().to_pandas()


# --- live, at city scope -------------------------------------------------------------------------------


def city_frames(
    conn: Connection,
    period: Period,
    scheme: dict,
    scores: pd.DataFrame,
    items: pd.DataFrame,
    scheme_version: str,
    config_dir: Path | None = None,
    cache: dict | None = None,
) -> dict[str, pd.DataFrame | pa.Table]:
    """The workbook's inputs of ``period`` at city scope (see the module docstring), for ``scores``/``items``:
    the period's unit_scores and unit_item_scores rows of ``scheme`` for every unit (stored, or computed for a
    scheme the warehouse has no scores of).  Frames, but ``findings``: an Arrow table (cut from the batch's
    one table of every finding, ready for :func:`encode`).

    ``cache``: a dict kept by the caller while it freezes several periods of one warehouse state in one
    transaction (a year's months, quarters and the year): what does not depend on the period (units, the
    evaluation, the findings, the scoring's inputs of the whole year, the devices and their clips by month) is
    read once.  The frames are the same with or without it."""
    cache = {} if cache is None else cache
    units = _cached(cache, "units", lambda: data.read_units(conn))
    evaluation = _cached(cache, "evaluation", lambda: data.read_evaluation(conn))
    every_unit = set(units["unit_code"].astype(str))
    scored = set(scores["unit_code"])
    metrics = data.read_metrics(conn, period, every_unit)
    lost, levels = _lost_points(conn, period, scored, scheme, items, metrics, config_dir, cache)
    ref = _finding_ref()
    named = {v for v in lost[ref].tolist() if v is not None and v == v} if len(lost) else set()  # noqa: PLR0124
    every = _cached(cache, "findings_frame", lambda: _findings_frame(conn, every_unit, cache))
    table = _cached(cache, "findings_table", lambda: pa.Table.from_pandas(_plain(every), preserve_index=False))
    findings = table.filter(pa.array(isin(every["finding_key"], named).to_numpy(dtype=bool)))  # one Arrow cut
    info = pd.DataFrame(
        [
            {
                "period": period.code,
                "scheme_id": scheme["id"],
                "scheme_version": scheme_version,
                "scheme": json.dumps(scheme, ensure_ascii=False, sort_keys=True, default=str),
                "as_of": evaluation["as_of"],
                "data_as_of": evaluation["data_as_of"],
                "integrity": evaluation.get("integrity"),
            }
        ]
    )
    return {
        "info": info,
        "units": units,
        "scores": scores.reset_index(drop=True),
        "items": items.reset_index(drop=True),
        "metrics": metrics,
        "lost": lost.reset_index(drop=True),
        "levels": pd.DataFrame({"level": list(levels)}, dtype=object),
        "findings": findings,
        "coverage": _coverage(conn, period, units, scored, cache),
        "devices": _devices(conn, period, every_unit, cache),
        "spotchecks": data.read_spotchecks(conn, period, every_unit),
        "notices": data.read_notices(conn, period, every_unit),
        "quality": data.read_data_quality(conn, every_unit),
        "trend": data.read_trend(conn, period, every_unit, scheme["id"], scheme_version),
    }


def every_finding(conn: Connection, cache: dict) -> pd.DataFrame:
    """Every row of ``findings`` then of ``excused_findings`` in ``details.FINDING_COLUMNS`` plus ``_excused``
    (True for the latter): one columnar read (no Python object per value) shared through ``cache`` by the
    frames of a batch of periods and by ``etl.supervision.publish.counted_findings``."""

    def read() -> pd.DataFrame:
        cols = ", ".join(details.FINDING_COLUMNS)
        return read_df(
            conn,
            f"SELECT {cols}, 0 AS _excused FROM findings UNION ALL SELECT {cols}, 1 AS _excused FROM excused_findings",
        ).assign(_excused=lambda d: d["_excused"].astype(bool))

    return _cached(cache, "every_finding", read)


def _findings_frame(conn: Connection, scope: set[str], cache: dict) -> pd.DataFrame:
    """The findings of ``details.read_findings`` (findings and excused findings of units in ``scope``; a key in
    both: the excused row) as one frame of ``details.FINDING_COLUMNS`` sorted by key."""
    df = every_finding(conn, cache)
    df = df.loc[isin(df["unit_code"], scope).to_numpy()].drop_duplicates("finding_key", keep="last")
    return df.sort_values("finding_key", ignore_index=True)[details.FINDING_COLUMNS]


def _cached(cache: dict, key: object, read):  # noqa: ANN001, ANN202
    if key not in cache:
        cache[key] = read()
    return cache[key]


def _lost_points(
    conn: Connection,
    period: Period,
    scored: set[str],
    scheme: dict,
    items: pd.DataFrame,
    metrics: pd.DataFrame,
    config_dir: Path | None,
    cache: dict,
) -> tuple[pd.DataFrame, list[str]]:
    """``details.lost_points`` of the period, with the scoring's inputs read once for the period's whole year
    (``lost_points_by_level`` keeps the period's months of them: the same rows as the period's own inputs)."""
    from etl.rules import config
    from etl.scoring.inputs import load_period_inputs
    from etl.scoring.lost_points import lost_points_by_level, lost_points_tallies

    def inputs():  # noqa: ANN202
        ev = read_df(conn, "SELECT as_of FROM evaluation", parse_dates=["as_of"])
        if ev.empty:
            raise EtlError("数据仓库尚未完成规则评估，无法生成扣分明细")
        cfg = _cached(cache, "config", lambda: config.load(config_dir))
        return load_period_inputs(conn, ev["as_of"].iloc[0].to_pydatetime(), cfg, scheme, str(period.start.year))

    key = ("inputs", scheme["id"], str(scheme.get("version")), json.dumps(scheme, sort_keys=True, default=str))
    inp = _cached(cache, key + (period.start.year,), inputs)
    return lost_points_by_level(scheme, lost_points_tallies(scheme, items, metrics), inp, period.code, scored)


def _coverage(conn: Connection, period: Period, units: pd.DataFrame, scored: set[str], cache: dict) -> pd.DataFrame:
    """``data.read_coverage`` of the period: its rows are per month, so the year's rows are read once and the
    period's months kept."""
    from etl.periods import parse

    key = ("coverage", period.start.year, frozenset(scored))
    year = _cached(cache, key, lambda: data.read_coverage(conn, parse(str(period.start.year)), units, scored))
    return year[year["month"].isin(list(period.months))].reset_index(drop=True)


def _devices(conn: Connection, period: Period, scope: set[str], cache: dict) -> pd.DataFrame:
    """``data.read_devices`` of the period, the clips counted per device and month once per year."""
    year = period.start.year
    by_month = _cached(cache, ("device_clips", year), lambda: data.device_clips_by_month(conn, year))
    clips = by_month[by_month["month"].isin(list(period.months))].groupby("device_sn", as_index=False)["clips"].sum()
    none = pd.DataFrame({"device_sn": pd.Series([], dtype=object), "clips": pd.Series([], dtype=int)})
    base = _cached(cache, ("devices", frozenset(scope)), lambda: data.read_devices(conn, period, scope, clips=none))
    dev = base.drop(columns="clips").merge(clips, on="device_sn", how="left")  # read_devices' merge, per period
    dev["clips"] = dev["clips"].fillna(0).astype(int)
    return dev


def _finding_ref() -> str:
    """The column of the lost-point rows naming a finding (the findings' identity column)."""
    return BY_LEVEL_COLUMNS[5]


# --- frozen: read and cut to a scope ----------------------------------------------------------------------


def read_frames(conn: Connection, publication_id: int) -> dict[str, pd.DataFrame]:
    """The frames frozen by publication ``publication_id`` (EtlError when it has none)."""
    rows = read_df(
        conn, "SELECT name, data FROM sup_published_frames WHERE publication_id = :p", {"p": int(publication_id)}
    )
    frames = {str(n): decode(d) for n, d in zip(rows["name"], rows["data"], strict=True)}
    missing = [n for n in FRAMES if n not in frames]
    if missing:
        raise EtlError(
            f"发布版本 {publication_id} 的冻结数据不完整（缺少 {'、'.join(missing)}），无法重现已发布的考评表"
        )
    return frames


def _values(s: pd.Series) -> list:
    return [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v for v in s.tolist()]  # noqa: PLR0124


def scope_lost(
    lost: pd.DataFrame, units: pd.DataFrame, scheme: dict, scope_units: set[str]
) -> tuple[pd.DataFrame, list[str]]:
    """The city-scope lost-point rows cut to the scored units ``scope_units``: what
    ``details.lost_points`` gives for them (rows of objects their scores are over; a level column only where
    its unit is one of them; the levels of ``scope_units``)."""
    levels = lost_points_levels(units.assign(unit_code=units["unit_code"].astype(str)), scope_units)
    pairs = unit_pairs(units.assign(unit_code=units["unit_code"].astype(str)), scheme["scope"])
    owned = set(pairs.loc[pairs["scope_unit"].isin(scope_units), "unit_code"])
    rows = lost.loc[lost["object_unit"].astype(str).isin(owned)].reset_index(drop=True)
    out = rows[BY_LEVEL_COLUMNS].copy()
    for lv in levels:
        u = rows[f"unit:{lv}"] if f"unit:{lv}" in rows else pd.Series([None] * len(rows), dtype=object)
        keep = u.isin(scope_units)
        out[f"unit:{lv}"] = u.astype(object).where(keep, None)
        cost = rows[f"lost:{lv}"] if f"lost:{lv}" in rows else pd.Series([float("nan")] * len(rows))
        out[f"lost:{lv}"] = pd.to_numeric(cost, errors="coerce").astype(float).where(keep)
    return out, levels


def scoped(frames: dict[str, pd.DataFrame], unit_code: str | None, allowed_scope: set[str] | None) -> Inputs:
    """The workbook's inputs for ``unit_code``'s scope (None: the whole city) from frozen city-scope frames;
    a unit administrator's ``allowed_scope`` is enforced as in the live build (ScopeError)."""
    info = frames["info"].iloc[0]
    scheme = json.loads(info["scheme"])
    units = frames["units"]
    scope, scope_label = data.resolve_scope(units, unit_code, allowed_scope)
    scores = frames["scores"]
    scores = scores[scores["unit_code"].isin(scope)].reset_index(drop=True)
    items = frames["items"]
    items = items[items["unit_code"].isin(scope)].reset_index(drop=True)
    metrics = frames["metrics"]
    metrics = metrics[metrics["unit_code"].isin(scope)].reset_index(drop=True)
    scored = set(scores["unit_code"])
    raw, levels = scope_lost(frames["lost"], units, scheme, scored)
    f = frames["findings"]
    cols = [_values(f[c]) if c in f else [None] * len(f) for c in details.FINDING_COLUMNS]
    key = details.FINDING_COLUMNS.index(_finding_ref()) if _finding_ref() in details.FINDING_COLUMNS else 0
    unit = details.FINDING_COLUMNS.index("unit_code")
    findings = {r[key]: r for r in zip(*cols, strict=True) if r[unit] in scope} if len(f) else {}
    lost = details.present(raw, levels, findings, scheme, items, metrics, data.unit_levels(units))
    coverage = frames["coverage"]
    coverage = coverage[coverage["scope_unit"].isin(scored)].reset_index(drop=True)
    devices = frames["devices"]
    devices = devices[devices["unit_code"].isin(scope)].reset_index(drop=True)
    extra = {
        name: frames[name][frames[name]["unit_code"].isin(scope)].reset_index(drop=True) if name in frames else None
        for name in SUPERVISION_FRAMES
    }
    return Inputs(
        units=units,
        scope=scope,
        scope_label=scope_label,
        scores=scores,
        items=items,
        scheme=scheme,
        scheme_id=str(info["scheme_id"]),
        scheme_version=str(info["scheme_version"]),
        evaluation={
            "as_of": _text(info["as_of"]),
            "data_as_of": _text(info["data_as_of"]),
            "integrity": _text(info["integrity"]) if "integrity" in info else None,
        },
        metrics=metrics,
        lost=lost,
        levels=levels,
        coverage=coverage,
        devices=devices,
        spotchecks=extra["spotchecks"],
        notices=extra["notices"],
        quality=extra["quality"],
        trend=extra["trend"],
    )


def _text(v: object) -> str | None:
    return None if v is None or (isinstance(v, float) and v != v) else str(v)  # noqa: PLR0124


# --- which publication ------------------------------------------------------------------------------------


def publication(conn: Connection, period: str, published: int | str | None) -> dict | None:
    """The publication a build shows: ``published`` 'latest' = the latest version of ``period`` (None when the
    period was never published), an id = that publication (EtlError when it is not one of ``period``), None =
    none (the current figures).  Warehouses without the supervision tables have no publications."""
    if published is None:
        return None
    from sqlalchemy import inspect

    if not inspect(conn).has_table("sup_publications"):
        if published == "latest":
            return None
        raise EtlError(f"没有发布记录：{published}")
    cols = (
        "publication_id, period, version, scheme_id, scheme_version, reason, published_by, published_at, "
        "as_of, data_as_of"
    )
    if published == "latest":
        df = read_df(
            conn,
            f"SELECT {cols} FROM sup_publications WHERE period = :p ORDER BY version DESC",
            {"p": period},
        )
    else:
        try:
            pid = int(published)
        except (TypeError, ValueError) as exc:
            raise EtlError(f"发布版本编号应为整数或 latest：{published}") from exc
        df = read_df(conn, f"SELECT {cols} FROM sup_publications WHERE publication_id = :i", {"i": pid})
        if df.empty:
            raise EtlError(f"没有编号为 {pid} 的发布记录")
        if str(df["period"].iloc[0]) != period:
            raise EtlError(f"发布记录 {pid} 属于考评期间 {df['period'].iloc[0]}，不是 {period}")
    if df.empty:
        return None
    row = df.iloc[0].to_dict()
    row["published_at"] = ts_text(row["published_at"])
    row["publication_id"] = int(row["publication_id"])
    row["version"] = int(row["version"])
    return row


def status_text(pub: dict | None) -> str:
    """The cover's 数据状态: '已发布 vN（发布时间 …，发布人 …）' or '草稿（当前数据）'."""
    if pub is None:
        return "草稿（当前数据）"
    return f"已发布 v{pub['version']}（发布时间 {pub['published_at']}，发布人 {pub['published_by']}）"
