"""Publication (发布) of a period's scores and their restatement (shared/spec/supervision.md "Publication").

:func:`publish` freezes, as version n of a period: every unit's total, grade, rank and veto
(``sup_published_scores``), the item scores (``sup_published_items``), every finding that counted with its
verdict (``sup_published_findings``) and the assessment workbook's input frames at city scope
(``sup_published_frames``, ``etl.reports.workbook.frozen``): enough to rebuild the published workbook cell for
cell without the sources.  Versions are never overwritten: publishing again is version n+1, with a reason (the
restatement).  :func:`restatement` lists the units whose current figures differ from the latest published
version, and why.

Checks, write and audit row run in the caller's transaction; a refusal raises ``SupervisionError`` with a
Chinese message before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl import periods
from etl.errors import EtlError, SupervisionError
from etl.periods import Period
from etl.reports.workbook import frozen
from etl.scoring import schemes
from etl.times import TS_FORMAT, ts_text
from etl.users import User
from etl.warehouse import audit
from etl.warehouse.db import bulk_insert, read_df
from etl.warehouse.schema import (
    sup_publications,
    sup_published_findings,
    sup_published_frames,
    sup_published_items,
    sup_published_scores,
)
from etl.warehouse.scope import ancestors_map

PUBLISH_ROLE = "legal"
RESTATEMENT_COLUMNS = [
    "unit_code",
    "unit_name",
    "published_version",
    "published_total",
    "current_total",
    "delta",
    "reasons",
]
REASON_SCHEME = "方案变更"
REASON_REVIEW = "复核/申诉"
REASON_LATE = "迟到数据"
FINDING_COLUMNS = ["finding_key", "rule_id", "article", "unit_code", "month", "occurred_at", "detail"]
_TOLERANCE = 1e-9


# --- checks ---------------------------------------------------------------------------------------------


def _check(user: User, period: str, reason: str) -> tuple[Period, str]:
    """The parsed period and the stripped reason; SupervisionError for an empty reason, a bad period, or a
    user who may not publish (the legal department, city-wide: a publication is the whole city's figures)."""
    text = (reason or "").strip()
    if not text:
        raise SupervisionError("请填写发布理由：发布（及更正发布）必须说明理由")
    try:
        per = periods.parse(period)
    except EtlError as exc:
        raise SupervisionError(str(exc)) from exc
    if user.role != PUBLISH_ROLE:
        raise SupervisionError(f"只有法制部门可以发布考评结果（用户 {user.username} 的角色不能发布）")
    if user.scope is not None:
        raise SupervisionError(
            f"发布的是全市考评结果，须由市局法制部门发布（用户 {user.username} 的范围为 {user.unit_code}）"
        )
    return per, text


# --- scores of the scheme -------------------------------------------------------------------------------


def _stored_scores(
    conn: Connection, per: Period, scheme_id: str | None, version: str | None
) -> tuple[pd.DataFrame, pd.DataFrame, str, str] | None:
    """The stored unit_scores / unit_item_scores rows of the period (active scheme when ``scheme_id`` is None;
    that scheme and version otherwise), with the scheme id and version; None when there are none."""
    if scheme_id is None:
        where, params = "active = 1", {}
    else:
        where, params = "scheme_id = :sid AND scheme_version = :sver", {"sid": scheme_id, "sver": version}
    scores = read_df(conn, f"SELECT * FROM unit_scores WHERE {where} AND period = :p", {**params, "p": per.code})
    if scores.empty:
        return None
    sid = str(scores["scheme_id"].iloc[0])
    sver = sorted(scores["scheme_version"].dropna().astype(str).unique())[-1]
    scores = scores[(scores["scheme_id"] == sid) & (scores["scheme_version"].astype(str) == sver)]
    items = read_df(
        conn,
        "SELECT * FROM unit_item_scores WHERE scheme_id = :sid AND scheme_version = :sver AND period = :p",
        {"sid": sid, "sver": sver, "p": per.code},
    )
    return scores.reset_index(drop=True), items, sid, sver


def _computed_scores(
    conn: Connection, per: Period, scheme: dict, config_dir: Path | None, cache: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The period's scores of a scheme the warehouse holds none of, computed now as ``etl run`` computes every
    scheme (the same inputs and verdicts), without storing them (every period at once, kept in ``cache``)."""
    from etl.scoring.inputs import load_inputs
    from etl.scoring.totals import score_scheme

    def compute() -> tuple[pd.DataFrame, pd.DataFrame]:
        ev = read_df(conn, "SELECT as_of FROM evaluation", parse_dates=["as_of"])
        if ev.empty:
            raise SupervisionError("数据仓库尚未完成规则评估，不能发布：请先运行 python -m etl run")
        inp = load_inputs(conn, ev["as_of"].iloc[0].to_pydatetime(), _config(config_dir, cache), [scheme])
        if not inp.months or not len(inp.units):
            return pd.DataFrame(columns=["period"]), pd.DataFrame(columns=["period"])
        return score_scheme(scheme, inp)

    key = ("computed", json.dumps(scheme, sort_keys=True, default=str))
    if key not in cache:
        cache[key] = compute()
    scores, items = cache[key]
    return (
        scores[scores["period"] == per.code].reset_index(drop=True),
        items[items["period"] == per.code].reset_index(drop=True),
    )


def _config(config_dir: Path | None, cache: dict) -> dict:
    from etl.rules import config

    if "config" not in cache:
        cache["config"] = config.load(config_dir)
    return cache["config"]


def _scheme_scores(
    conn: Connection, per: Period, scheme_path: Path | None, config_dir: Path | None, cache: dict
) -> tuple[dict, pd.DataFrame, pd.DataFrame, str]:
    """(scheme, scores, items, scheme version) to publish; SupervisionError when the period has no scores."""
    if scheme_path is None:
        stored = _stored_scores(conn, per, None, None)
        if stored is None:
            raise SupervisionError(f"{per.code}（{per.label}）没有考评得分，不能发布空的考评期间")
        scores, items, sid, sver = stored
        if ("scheme", sid) not in cache:
            cache[("scheme", sid)] = schemes.scheme_for(sid, config_dir)
        return cache[("scheme", sid)], scores, items, sver
    scheme = schemes.load_scheme(scheme_path)
    stored = _stored_scores(conn, per, scheme["id"], str(scheme["version"]))
    if stored is not None:
        scores, items, _, sver = stored
        return scheme, scores, items, sver
    scores, items = _computed_scores(conn, per, scheme, config_dir, cache)
    if scores.empty:
        raise SupervisionError(f"{per.code}（{per.label}）在方案 {scheme['id']} 下没有考评得分，不能发布空的考评期间")
    return scheme, scores, items, str(scheme["version"])


# --- the findings that counted ----------------------------------------------------------------------------


def counted_findings(
    conn: Connection, per: Period, config_dir: Path | None = None, cache: dict | None = None
) -> pd.DataFrame:
    """Every finding that counts in ``per`` now (``Verdicts.counting``: exempted ones out, excused findings in
    where the excuse is not effective), with its review_state (open when never judged).  ``cache``: the year's
    counting findings are read once for several periods."""
    from etl.warehouse.verdicts import read_verdicts

    cache = {} if cache is None else cache
    year = per.start.year
    key = ("counted", year)
    if key not in cache:
        cols = FINDING_COLUMNS + ["incident_no"]
        months = [f"{year:04d}-{m:02d}" for m in range(1, 13)]
        every = frozen.every_finding(conn, cache)  # the read the workbook frames share
        every = every.loc[every["month"].isin(months)]
        found = every.loc[~every["_excused"].to_numpy(dtype=bool), cols].reset_index(drop=True)
        excused = every.loc[every["_excused"].to_numpy(dtype=bool), cols].reset_index(drop=True)
        counted = read_verdicts(conn, _config(config_dir, cache)).counting(found, excused)
        state = read_df(conn, "SELECT finding_key, state FROM sup_finding_state")
        counted = counted[FINDING_COLUMNS].copy()
        counted["review_state"] = (
            counted["finding_key"]
            .map(dict(zip(state["finding_key"], state["state"], strict=True)))
            .astype(object)
            .fillna("open")
        )
        counted["occurred_at"] = counted["occurred_at"].map(ts_text)
        cache[key] = counted.sort_values("finding_key", ignore_index=True)
    counted = cache[key]
    return counted[counted["month"].isin(list(per.months))].reset_index(drop=True)


# --- publish -------------------------------------------------------------------------------------------


def publish(
    target: Connection | Engine,
    user: User,
    period: str,
    *,
    reason: str,
    scheme_path: Path | str | None = None,
    page: str = "cli",
    config_dir: Path | None = None,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Publish ``period`` as its next version inside the caller's transaction (an engine: in one transaction of
    its own); returns (publication_id, version).

    ``scheme_path``: a scheme file (default: the active scheme's stored scores); a scheme the warehouse holds no
    scores of is scored first.  Refused (SupervisionError, nothing written) for an empty reason, a malformed
    period, a user other than the city's legal department, or a period without scores.  Audited.
    """
    return publish_many(
        target, user, [period], reason=reason, scheme_path=scheme_path, page=page, config_dir=config_dir, now=now
    )[0]


def publish_many(
    target: Connection | Engine,
    user: User,
    periods_: Sequence[str],
    *,
    reason: str,
    scheme_path: Path | str | None = None,
    page: str = "cli",
    config_dir: Path | None = None,
    now: datetime | None = None,
) -> list[tuple[int, int]]:
    """:func:`publish` of several periods in one transaction (e.g. a year's months, quarters and the year), each
    as its next version, reading what they share once; all or nothing: one refused period writes none."""
    if not periods_:
        raise SupervisionError("请指定要发布的考评期间")
    checked = [_check(user, p, reason) for p in periods_]
    text = checked[0][1]
    pers = [per for per, _ in checked]
    if len({p.code for p in pers}) != len(pers):
        raise SupervisionError("考评期间重复：每个期间一次只能发布一个新版本")
    if isinstance(target, Engine):
        with target.begin() as conn:
            return publish_many(
                conn,
                user,
                [p.code for p in pers],
                reason=text,
                scheme_path=scheme_path,
                page=page,
                config_dir=config_dir,
                now=now,
            )
    conn = target
    path = None if scheme_path is None else Path(scheme_path)
    cache: dict = {}
    at = (now or datetime.now()).replace(microsecond=0)
    chosen = [(per, *_scheme_scores(conn, per, path, config_dir, cache)) for per in pers]  # refusals first
    return [
        _freeze(conn, user, per, scheme, scores, items, sver, text, page, at, config_dir, cache)
        for per, scheme, scores, items, sver in chosen
    ]


def _freeze(
    conn: Connection,
    user: User,
    per: Period,
    scheme: dict,
    scores: pd.DataFrame,
    items: pd.DataFrame,
    sver: str,
    text: str,
    page: str,
    at: datetime,
    config_dir: Path | None,
    cache: dict,
) -> tuple[int, int]:
    """Write version n+1 of one period: the publication row, the frozen scores, items, findings and workbook
    frames, the audit row."""
    frames = frozen.city_frames(conn, per, scheme, scores, items, sver, config_dir, cache)
    findings = counted_findings(conn, per, config_dir, cache)
    info = frames["info"].iloc[0]
    last = conn.execute(
        sa.text("SELECT MAX(version) FROM sup_publications WHERE period = :p"), {"p": per.code}
    ).scalar()
    version = int(last or 0) + 1
    try:
        pid = conn.execute(
            sa.insert(sup_publications).values(
                period=per.code,
                version=version,
                scheme_id=scheme["id"],
                scheme_version=sver,
                reason=text,
                published_by=user.username,
                published_at=at,
                as_of=_dt(info["as_of"]),
                data_as_of=_dt(info["data_as_of"]),
            )
        ).inserted_primary_key[0]
    except sa.exc.IntegrityError as exc:  # UNIQUE(period, version): someone published it meanwhile
        raise SupervisionError(f"{per.code} 的第 {version} 版刚被他人发布：请刷新后重新发布") from exc
    pid = int(pid)
    s = scores.assign(publication_id=pid, period=per.code, version=version)
    bulk_insert(conn, sup_published_scores, _plain(s, [c.name for c in sup_published_scores.columns]))
    i = items.assign(publication_id=pid)
    bulk_insert(conn, sup_published_items, _plain(i, [c.name for c in sup_published_items.columns]))
    f = findings.assign(publication_id=pid)
    bulk_insert(conn, sup_published_findings, _plain(f, [c.name for c in sup_published_findings.columns]))
    conn.execute(
        sa.insert(sup_published_frames),
        [{"publication_id": pid, "name": name, "data": frozen.encode(df)} for name, df in frames.items()],
    )
    audit.record(
        conn, user, page, "publish", f"{per.code} v{version}（方案 {scheme['id']} {sver}，发布记录 {pid}）", text, at
    )
    return pid, version


def _dt(v: object) -> datetime | None:
    t = ts_text(v)
    return None if t is None else datetime.strptime(t, TS_FORMAT)


def _plain(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``df``'s ``columns`` (missing ones empty), dtypes kept: ``bulk_insert`` writes missing values as NULL
    (no Python object per value: a year's findings are 10^5 rows)."""
    return pd.DataFrame({c: df[c] if c in df.columns else None for c in columns}, index=df.index)


# --- reading the publications -----------------------------------------------------------------------------


def publications(conn: Connection, period: str | None = None) -> pd.DataFrame:
    """The publications (of ``period``, or all), newest version first."""
    where, params = ("WHERE period = :p", {"p": period}) if period else ("", {})
    return read_df(
        conn,
        f"""
        SELECT publication_id, period, version, scheme_id, scheme_version, reason, published_by, published_at,
               as_of, data_as_of
        FROM sup_publications {where} ORDER BY period, version DESC""",
        params,
    )


def latest(conn: Connection, period: str) -> dict | None:
    """The latest publication of ``period`` (see ``etl.reports.workbook.frozen.publication``), or None."""
    return frozen.publication(conn, period, "latest")


# --- restatement -------------------------------------------------------------------------------------------


def _touched_units(conn: Connection, per: Period, since: datetime) -> set[str]:
    """Units of findings of ``per`` whose verdict, appeal decision or Art. 17 judgement came after ``since`` (the
    publication time; the same second counts: times are kept to the second)."""
    p = {"since": since if conn.dialect.name != "sqlite" else since.strftime(TS_FORMAT)}
    months = list(per.months)
    stmt = sa.text(
        """
        SELECT s.unit_code, s.month FROM sup_reviews r JOIN sup_finding_state s ON s.finding_key = r.finding_key
        WHERE r.at >= :since
        UNION ALL
        SELECT a.unit_code, s.month FROM sup_appeals a LEFT JOIN sup_finding_state s ON s.finding_key = a.finding_key
        WHERE a.decided_at >= :since"""
    )
    rows = read_df(conn, stmt, p)
    units = {str(u) for u, m in zip(rows["unit_code"], rows["month"], strict=True) if u and (m is None or m in months)}
    stmt = sa.text(
        """
        SELECT DISTINCT c.unit_code FROM sup_excuse_history h JOIN event_coverage c ON c.incident_no = h.incident_no
        WHERE h.at >= :since AND c.arrived_at >= :start AND c.arrived_at < :end"""
    )
    start, end = (
        (per.start, per.end)
        if conn.dialect.name != "sqlite"
        else (per.start.strftime(TS_FORMAT), per.end.strftime(TS_FORMAT))
    )
    units |= {str(u) for u in read_df(conn, stmt, {**p, "start": start, "end": end})["unit_code"] if u}
    return units


def restatement(conn: Connection, period: str) -> pd.DataFrame:
    """The units whose current total (active scheme) differs from the latest published version of ``period``.

    RESTATEMENT_COLUMNS; ``reasons`` (joined by '、'): 方案变更 (the active scheme or its version is not the
    published one), 复核/申诉 (a verdict, appeal decision or Art. 17 judgement after the publication on a finding
    of the period in the unit's scope), otherwise 迟到数据.  Empty when the period was never published.  The
    same rows as the view ``v_restatement``, with names and reasons.
    """
    per = periods.parse(period)
    pub = frozen.publication(conn, per.code, "latest")
    if pub is None:
        return pd.DataFrame(columns=RESTATEMENT_COLUMNS)
    published = read_df(
        conn,
        "SELECT unit_code, total AS published_total FROM sup_published_scores WHERE publication_id = :i",
        {"i": pub["publication_id"]},
    )
    cur = read_df(
        conn,
        "SELECT unit_code, total AS current_total, scheme_id, scheme_version FROM unit_scores "
        "WHERE active = 1 AND period = :p",
        {"p": per.code},
    )
    both = published.merge(cur, on="unit_code", how="outer")
    a = pd.to_numeric(both["published_total"], errors="coerce")
    b = pd.to_numeric(both["current_total"], errors="coerce")
    differ = ((a - b).abs() > _TOLERANCE) | (a.isna() != b.isna())
    both = both.loc[differ.to_numpy()].reset_index(drop=True)
    if both.empty:
        return pd.DataFrame(columns=RESTATEMENT_COLUMNS)
    units = read_df(conn, "SELECT unit_code, name, parent_code, level FROM org_units")
    names = dict(zip(units["unit_code"], units["name"], strict=True))
    active = cur[["scheme_id", "scheme_version"]].drop_duplicates()
    scheme_changed = active.empty or any(
        (str(s), str(v)) != (str(pub["scheme_id"]), str(pub["scheme_version"]))
        for s, v in zip(active["scheme_id"], active["scheme_version"], strict=True)
    )
    since = datetime.strptime(pub["published_at"], TS_FORMAT)
    chains = ancestors_map(units)
    touched = {a for u in _touched_units(conn, per, since) for a in chains.get(u, [u])}  # the unit and above
    reasons = []
    for u in both["unit_code"]:
        r = ([REASON_SCHEME] if scheme_changed else []) + ([REASON_REVIEW] if u in touched else [])
        reasons.append("、".join(r or [REASON_LATE]))
    out = pd.DataFrame(
        {
            "unit_code": both["unit_code"],
            "unit_name": both["unit_code"].map(names),
            "published_version": pub["version"],
            "published_total": pd.to_numeric(both["published_total"], errors="coerce"),
            "current_total": pd.to_numeric(both["current_total"], errors="coerce"),
        }
    )
    out["delta"] = (out["current_total"] - out["published_total"]).round(2)
    out["reasons"] = reasons
    return out.sort_values("unit_code", ignore_index=True)[RESTATEMENT_COLUMNS]


def badge(pub: dict | None, current: bool = False) -> str:
    """'已发布 vN' for the published figures of a period, '草稿（当前数据）' for the current ones."""
    if pub is None or current:
        return "草稿（当前数据）"
    return f"已发布 v{pub['version']}"


__all__ = [
    "RESTATEMENT_COLUMNS",
    "badge",
    "counted_findings",
    "latest",
    "publications",
    "publish",
    "publish_many",
    "restatement",
]
