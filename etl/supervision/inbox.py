"""The 待办 inbox: what waits for one user, per role (shared/spec/supervision.md; issue 14 "Inboxes").

``todo(conn, user)`` returns one frame per section (``SECTIONS``: id -> Chinese title), only the sections of
the user's role, each limited to the user's scope:

* legal department: appeals to decide, answered rectification notices to re-check, spot-check items to review
  (of open campaigns, assigned to the user or to nobody), Art. 17 interruption reports not yet judged;
* unit administrator: notices to answer (open or returned), overdue notices (not closed, today past the
  deadline), findings it may still appeal (open, no pending appeal, and the period not published or within
  ``appeal_days`` of its latest publication -- the rule ``etl.supervision.actions.file_appeal`` applies);
* every other role: nothing (an empty dict).

Reads only; "today" is ``etl.times.today()`` unless given.  ``limit``: at most that many rows per section (the
oldest first), each frame's ``attrs["total"]`` holding the section's full count; the Art. 17 reports of a
province run to hundreds of thousands, so they are counted and cut in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl import periods, times
from etl.rules import config as rules_config
from etl.supervision import actions, rectify
from etl.users import User
from etl.warehouse.db import read_df

SECTIONS: dict[str, str] = {
    "appeals": "待处理申诉",
    "responses": "待复查整改答复",
    "spotchecks": "待审查抽查对象",
    "excuses": "待审查情况说明",
    "notices": "待整改通知",
    "overdue": "逾期整改通知",
    "appealable": "可申诉问题",
}
ROLE_SECTIONS: dict[str, tuple[str, ...]] = {
    "legal": ("appeals", "responses", "spotchecks", "excuses"),
    "unit_admin": ("notices", "overdue", "appealable"),
}


def _scoped(sql: str, column: str, scope: Sequence[str] | None, tail: str = "") -> tuple[sa.TextClause, dict]:
    """``sql`` with ``AND column IN (scope)`` when the scope is not the whole city, then ``tail``."""
    if scope is None:
        return sa.text(f"{sql} {tail}"), {}
    stmt = sa.text(f"{sql} AND {column} IN :scope {tail}").bindparams(sa.bindparam("scope", expanding=True))
    return stmt, {"scope": list(scope) or [""]}


def _frame(conn: Connection, sql: str, column: str, scope: Sequence[str] | None, **kw: object) -> pd.DataFrame:
    stmt, params = _scoped(sql, column, scope)
    return read_df(conn, stmt, params, **kw)  # type: ignore[arg-type]


def _appeals(conn: Connection, user: User) -> pd.DataFrame:
    return _frame(
        conn,
        "SELECT appeal_id, finding_key, unit_code, reason, filed_by, filed_at, late, version, orphaned "
        "FROM v_appeals WHERE decision IS NULL",
        "unit_code",
        user.scope,
        parse_dates=["filed_at"],
    ).sort_values("appeal_id", ignore_index=True)


def _spotchecks(conn: Connection, user: User) -> pd.DataFrame:
    stmt, params = _scoped(
        "SELECT campaign_id, object_kind, object_key, unit_code, period, assigned_to, draw_order, month, version "
        "FROM v_spotcheck_items WHERE verdict IS NULL AND campaign_state = 'open' "
        "AND (assigned_to IS NULL OR assigned_to = :me)",
        "unit_code",
        user.scope,
    )
    df = read_df(conn, stmt, {**params, "me": user.username})
    return df.sort_values(["campaign_id", "draw_order"], ignore_index=True)


_EXCUSES_FROM = (
    "FROM event_coverage e "
    "LEFT JOIN interruption_reports r ON r.report_id = e.report_id AND r.county_code = e.county_code "
    "WHERE e.report_id IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM sup_excuse_reviews x WHERE x.incident_no = e.incident_no)"
)


def _excuses(conn: Connection, user: User, limit: int | None) -> pd.DataFrame:
    """The reports not yet judged, oldest first, at most ``limit`` (counted in SQL: ``attrs["total"]``)."""
    tail = "ORDER BY e.arrived_at, e.incident_no" + (f" LIMIT {int(limit)}" if limit is not None else "")
    stmt, params = _scoped(
        "SELECT e.incident_no, e.unit_code, e.report_id, e.arrived_at, r.reason, r.reported_at, r.police_no "
        + _EXCUSES_FROM,
        "e.unit_code",
        user.scope,
        tail,
    )
    df = read_df(conn, stmt, params, parse_dates=["arrived_at", "reported_at"])
    total = len(df)
    if limit is not None and total >= int(limit):
        count, params = _scoped("SELECT COUNT(*) AS n " + _EXCUSES_FROM, "e.unit_code", user.scope)
        total = int(read_df(conn, count, params)["n"].iloc[0])
    df = df.sort_values(["arrived_at", "incident_no"], ignore_index=True)  # the same order on every backend
    df.attrs["total"] = total
    return df


def _appealable(conn: Connection, user: User, now: datetime) -> pd.DataFrame:
    df = _frame(
        conn,
        "SELECT finding_key, rule_id, article, unit_code, month, occurred_at, detail FROM v_findings "
        "WHERE review_state = 'open' AND (appeal_state IS NULL OR appeal_state <> 'pending')",
        "unit_code",
        user.scope,
        parse_dates=["occurred_at"],
    )
    if df.empty:
        return df
    pubs = read_df(conn, "SELECT period, published_at FROM sup_publications", parse_dates=["published_at"])
    days = float(rules_config.load()["params"].get("appeal_days", 10))
    latest: dict[str, pd.Timestamp] = {}  # month -> the latest publication of a period containing it
    for period, at in zip(pubs["period"], pubs["published_at"], strict=True):
        if pd.isna(at):
            continue
        try:
            months = periods.parse(str(period)).months
        except periods.PeriodError:
            continue
        for m in months:
            if m not in latest or at > latest[m]:
                latest[m] = at
    cutoff = pd.Timestamp(now) - timedelta(days=days)
    closed = {m for m, at in latest.items() if at < cutoff}
    df = df[~df["month"].isin(closed)].copy()
    df["late"] = df["month"].isin(set(latest)).astype(int)  # an appeal now would be late (period published)
    df["appeal_until"] = [latest[m] + timedelta(days=days) if m in latest else pd.NaT for m in df["month"]]
    return df.sort_values(["occurred_at", "finding_key"], ignore_index=True)


def todo(
    conn: Connection | Engine, user: User, today: date | None = None, limit: int | None = None
) -> dict[str, pd.DataFrame]:
    """The sections of ``user``'s role (``ROLE_SECTIONS``), section id -> frame, in ``SECTIONS`` order; at most
    ``limit`` rows each, ``attrs["total"]`` the section's full count."""
    sections = ROLE_SECTIONS.get(getattr(user, "role", None) or "", ())
    if not sections:
        return {}
    day = today or times.today()
    now = datetime.combine(day, datetime.now().time()).replace(microsecond=0)
    out: dict[str, pd.DataFrame] = {}
    with actions._reading(conn) as c:
        if "appeals" in sections:
            out["appeals"] = _appeals(c, user)
        if {"responses", "notices", "overdue"} & set(sections):
            notes = rectify.notices(c, user.scope, day)
            if "responses" in sections:
                out["responses"] = notes[notes["state"] == "responded"].reset_index(drop=True)
            if "notices" in sections:
                out["notices"] = notes[notes["state"].isin(["open", "returned"])].reset_index(drop=True)
            if "overdue" in sections:
                out["overdue"] = notes[(notes["state"] != "closed") & (notes["overdue"] == 1)].reset_index(drop=True)
        if "spotchecks" in sections:
            out["spotchecks"] = _spotchecks(c, user)
        if "excuses" in sections:
            out["excuses"] = _excuses(c, user, limit)
        if "appealable" in sections:
            out["appealable"] = _appealable(c, user, now)
    return {k: _cut(out[k], limit) for k in SECTIONS if k in out}


def _cut(df: pd.DataFrame, limit: int | None) -> pd.DataFrame:
    """The first ``limit`` rows, the full count in ``attrs["total"]`` (kept when the section counted it)."""
    total = df.attrs.get("total", len(df))
    out = df if limit is None else df.head(int(limit)).reset_index(drop=True)
    out.attrs["total"] = total
    return out


def counts(conn: Connection | Engine, user: User, today: date | None = None) -> dict[str, int]:
    """Rows per section of ``todo`` (a badge on the page): the full counts, no rows listed."""
    return {k: int(v.attrs["total"]) for k, v in todo(conn, user, today, limit=0).items()}
