"""The one query layer of the dashboard: every SQL statement, every unit-scope filter.

Every public function takes ``url`` (the warehouse) and ``scope`` (the user's
unit codes, ``None`` for the whole city) first, so the scope is part of every
cache key; a selected ``unit`` or object id is re-checked against the scope
here, whatever the page passed.  All values are bound parameters; column and
table names in SQL text are constants of this module.

Aggregation happens in SQL and row lists are limited (``LIMIT``), so no page
ever loads raw clip tables.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from etl import periods, times
from etl.errors import ConfigError
from etl.scoring import schemes as schemes_mod
from etl.scoring.lost_points import metric_shortfall
from etl.scoring.metrics import METRICS
from etl.scoring.officers import RECORD_COLUMNS
from etl.vocabulary import LEVEL_ORDER
from etl.warehouse import distribution
from etl.warehouse import scope as scopes
from etl.warehouse.db import make_engine, read_df
from etl.warehouse.scope import ScopeError  # noqa: F401 - raised here for a unit outside the scope

TTL = 300  # seconds; the warehouse changes once per ETL run
ROW_LIMIT = 500
KEYS_PER_QUERY = 5000  # keys bound in one IN list (SQLite allows 32,766 parameters)
ROOT = Path(__file__).resolve().parent.parent

Scope = scopes.Scope

AV_RULES = ("AV-NONE", "AV-GAP", "AV-OFFICER")
CASE_RULES = (
    "DOC-MISSING",
    "AV-MEASURE",
    "DOC-SIGNATURE",
    "START-APPROVAL",
    "MAJOR-REVIEW",
    "NOT-FILED-NOTICE",
    "DECISION-RECORD",
    "RIGHTS-NOTICE",
    "SIMPLE-PROCEDURE",
    "DELIVERY",
    "PERFORMANCE-CHECK",
)
ACCESS_RULES = ("ACCESS-RECORD", "ACCESS-SCOPE", "ACCESS-EXTERNAL")
INTEGRITY_RULES = ("INTEGRITY-HASH", "INTEGRITY-MISSING", "INTEGRITY-DELETED", "UPLOAD-LATE")
EQUIP_RULES = ("EQUIP-ADMIN", "EQUIP-REPAIR", "EQUIP-IDLE", "EQUIP-LEDGER", "WINDOW-CCTV")
FINDING_LIST_COLUMNS = (
    "rule_id",
    "article",
    "unit_code",
    "case_no",
    "doc_id",
    "action_id",
    "incident_no",
    "clip_id",
    "device_sn",
    "log_id",
    "police_no",
    "occurred_at",
    "detail",
)
COUNTED_TABLES = (
    "org_units",
    "officers",
    "cases",
    "case_actions",
    "case_documents",
    "deliveries",
    "incidents",
    "incident_officers",
    "interruption_reports",
    "devices",
    "device_assignments",
    "clips",
    "access_log",
    "service_windows",
    "ledger_entries",
    "event_coverage",
    "findings",
    "metrics",
    "unit_scores",
    "quarantine",
    "audit_log",
)


# --- plumbing -----------------------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def engine(url: str) -> sa.Engine:
    """The dashboard's engine.  On SQLite its writes (audit rows, supervision actions) wait at most 2 s for the
    database (an ETL run holds the write lock for its whole transaction): then they fail and are refused.

    On PostgreSQL its sessions run without JIT compilation: the pages' queries are bounded, and a per-case probe
    (the case search's 仅显示有问题的案件) is costed high enough that compiling it took 0.3 s of a 0.31 s query
    at city scale (as with the ETL's data-quality queue, ``etl.rules.data_quality``)."""
    eng = make_engine(url)
    if eng.dialect.name == "sqlite":

        @sa.event.listens_for(eng, "connect")
        def _short_wait(dbapi_conn, _record):  # noqa: ANN001 - after make_engine's pragmas
            dbapi_conn.execute("PRAGMA busy_timeout=2000")

    elif eng.dialect.name == "postgresql":

        @sa.event.listens_for(eng, "connect")
        def _no_jit(dbapi_conn, _record):  # noqa: ANN001
            with dbapi_conn.cursor() as cur:
                cur.execute("SET jit = off")
            dbapi_conn.commit()  # a SET in a transaction rolled back (the pool's reset) would be undone

    return eng


def _df(url: str, sql: str, parse_dates: tuple[str, ...] = (), **params) -> pd.DataFrame:
    """Run ``sql`` with bound ``params``; list/tuple values become expanding IN parameters."""
    stmt = sa.text(sql)
    expanding = [k for k, v in params.items() if isinstance(v, (list, tuple))]
    if expanding:
        stmt = stmt.bindparams(*[sa.bindparam(k, expanding=True) for k in expanding])
    return read_df(
        engine(url),
        stmt,
        {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        parse_dates=parse_dates,
    )


def _dialect(url: str) -> str:
    return engine(url).dialect.name


def _ts(url: str, value: datetime) -> datetime | str:
    """A datetime bound the way the dialect compares it (text on SQLite)."""
    return times.ts_param(_dialect(url), value)


def _month(url: str, col: str) -> str:
    """SQL expression 'YYYY-MM' of a datetime column (``col`` is a constant of this module)."""
    d = _dialect(url)
    if d == "postgresql":
        return f"to_char({col}, 'YYYY-MM')"
    if d in ("mysql", "mariadb"):
        return f"DATE_FORMAT({col}, '%%Y-%%m')"
    return f"substr({col}, 1, 7)"


def _equal_filters(conds: list[str], params: dict, filters: dict[str, tuple[str, object]]) -> None:
    """Append ``column = :param`` for every filter whose value is set (bound parameters, never inlined)."""
    for col, (name, value) in filters.items():
        if value:
            conds.append(f"{col} = :{name}")
            params[name] = value


def _in(col: str, name: str, units: Scope) -> str:
    """``col IN :name``, a true condition for the whole city, a false one for an empty scope (an officer: no unit;
    PostgreSQL cannot type an empty IN list against a text column)."""
    if units is None:
        return "1=1"
    return f"{col} IN :{name}" if units else "1=0"


def _scope_params(units: Scope) -> dict:
    return {"units": units} if units else {}


@st.cache_data(ttl=TTL, show_spinner=False)
def _tree(url: str) -> pd.DataFrame:
    return _df(url, "SELECT unit_code, name, parent_code, level FROM org_units ORDER BY unit_code")


def org_units(url: str) -> pd.DataFrame:
    """The whole unit tree (codes and names only): used to compute scopes, never shown as data."""
    return _tree(url)


def effective_units(url: str, scope: Scope, unit: str | None) -> Scope:
    """Units a query covers: the selected unit's subtree within the user's scope.

    ``unit`` None means the user's whole scope.  A unit outside the scope raises ScopeError.
    """
    return scopes.covered_units(_tree(url), scope, unit)


def scope_root(url: str, scope: Scope) -> str | None:
    """The top unit of a scope (the city for ``None``)."""
    return scopes.scope_root(_tree(url), scope)


@st.cache_data(ttl=TTL, show_spinner=False)
def units(url: str, scope: Scope) -> pd.DataFrame:
    """The units a user may choose (their scope), in tree order."""
    return _df(
        url,
        f"SELECT unit_code, name, level FROM org_units WHERE {_in('unit_code', 'units', scope)} ORDER BY unit_code",
        **_scope_params(scope),
    )


def unit_names(url: str) -> dict[str, str]:
    tree = _tree(url)
    return dict(zip(tree["unit_code"].astype(str), tree["name"].astype(str), strict=True))


@st.cache_data(ttl=TTL, show_spinner=False)
def available_periods(url: str) -> dict[str, list[str]]:
    """Years, quarters and months present in the warehouse (from scores, else findings), newest first."""
    ms = _df(url, "SELECT DISTINCT period FROM unit_scores WHERE period LIKE '____-__' AND period NOT LIKE '%Q%'")
    months_ = list(ms["period"]) if not ms.empty else []
    if not months_:
        months_ = list(_df(url, "SELECT DISTINCT month FROM findings")["month"].dropna())
    if not months_:
        months_ = list(_df(url, f"SELECT DISTINCT {_month(url, 'arrived_at')} AS m FROM event_coverage")["m"].dropna())
    return periods.periods_by_kind([str(m) for m in months_])


def _period_params(url: str, period: str) -> dict:
    start, end = periods.bounds(period)
    return {"p_start": _ts(url, start), "p_end": _ts(url, end), "months": tuple(periods.months(period))}


# --- overview ----------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def event_status_counts(url: str, scope: Scope, unit: str | None, period: str) -> pd.DataFrame:
    """On-site events per coverage status in the period (status, count)."""
    eff = effective_units(url, scope, unit)
    p = _period_params(url, period)
    return _df(
        url,
        f"""
        SELECT status, COUNT(*) AS count FROM event_coverage
        WHERE {_in("unit_code", "units", eff)} AND arrived_at >= :p_start AND arrived_at < :p_end
        GROUP BY status ORDER BY status""",
        **_scope_params(eff),
        p_start=p["p_start"],
        p_end=p["p_end"],
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def metrics(url: str, scope: Scope, unit: str | None, period: str) -> pd.DataFrame:
    """Standard metrics of the selected unit (over its scope) for the period."""
    target = unit if unit is not None else scope_root(url, scope)
    effective_units(url, scope, target)  # re-check the unit
    return _df(
        url,
        "SELECT metric_id, numerator, denominator, value FROM metrics "
        "WHERE unit_code = :u AND period = :period ORDER BY metric_id",
        u=target,
        period=period,
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def findings_by_article(url: str, scope: Scope, unit: str | None, period: str) -> pd.DataFrame:
    eff = effective_units(url, scope, unit)
    return _df(
        url,
        f"""
        SELECT rule_id, article, COUNT(*) AS count FROM v_findings
        WHERE {_in("unit_code", "units", eff)} AND month IN :months AND review_state <> 'exempted'
        GROUP BY rule_id, article ORDER BY count DESC, rule_id""",
        **_scope_params(eff),
        months=tuple(periods.months(period)),
    )


# units sorted by level (province, city, county, station: etl.vocabulary.LEVEL_ORDER), then by rank
_LEVEL_SORT = (
    "CASE s.unit_level "
    + " ".join(f"WHEN '{lvl}' THEN {n}" for lvl, n in LEVEL_ORDER.items())
    + f" ELSE {max(LEVEL_ORDER.values()) + 1} END"
)


@st.cache_data(ttl=TTL, show_spinner=False)
def schemes(url: str) -> pd.DataFrame:
    return _df(
        url, "SELECT DISTINCT scheme_id, scheme_version, active FROM unit_scores ORDER BY active DESC, scheme_id"
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def scores(url: str, scope: Scope, unit: str | None, period: str, scheme_id: str | None = None) -> pd.DataFrame:
    """Unit scores (active scheme unless ``scheme_id``) of the units in scope, by level then rank."""
    eff = effective_units(url, scope, unit)
    scheme_cond = "s.active = 1" if scheme_id is None else "s.scheme_id = :scheme"
    params = {} if scheme_id is None else {"scheme": scheme_id}
    return _df(
        url,
        f"""
        SELECT s.unit_code, o.name AS unit_name, s.unit_level AS level, s.total, s.grade, s.rank, s.veto,
               s.scheme_id, s.scheme_version
        FROM unit_scores s LEFT JOIN org_units o ON o.unit_code = s.unit_code
        WHERE {scheme_cond} AND s.period = :period AND {_in("s.unit_code", "units", eff)}
        ORDER BY {_LEVEL_SORT}, s.rank, s.unit_code
        LIMIT {ROW_LIMIT}""",
        **_scope_params(eff),
        period=period,
        **params,
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def item_scores(url: str, scope: Scope, unit: str, period: str, scheme_id: str | None = None) -> pd.DataFrame:
    effective_units(url, scope, unit)
    scheme_cond = "active = 1" if scheme_id is None else "scheme_id = :scheme"
    params = {} if scheme_id is None else {"scheme": scheme_id}
    return _df(
        url,
        f"""
        SELECT item_id, item_name, points, objects, clean, deductions, score FROM unit_item_scores
        WHERE {scheme_cond} AND period = :period AND unit_code = :u ORDER BY item_id""",
        period=period,
        u=unit,
        **params,
    )


def _scheme(scheme_id: str | None, config_dir: Path | None = None) -> dict | None:
    """config/schemes/<id>.yaml read by the scoring's own parser (None when missing or invalid)."""
    if not scheme_id:
        return None
    try:
        return schemes_mod.scheme_for(scheme_id, config_dir or ROOT / "config")
    except ConfigError:
        return None


def item_rules(scheme_id: str | None, config_dir: Path | None = None) -> dict[str, list[str]]:
    """item_id -> rule ids whose findings lose its points (``etl.scoring.schemes.item_rules``; empty if the
    scheme is unknown).  A metric item lists only its deduction rules: its points follow the metric's value."""
    scheme = _scheme(scheme_id, config_dir)
    return {} if scheme is None else schemes_mod.item_rules(scheme)


@st.cache_data(ttl=TTL, show_spinner=False)
def item_lost_points(
    url: str, scope: Scope, unit: str, period: str, scheme_id: str | None, item_id: str
) -> dict[str, pd.DataFrame]:
    """What lost ``item_id``'s points for ``unit`` (over its scope) in the period, for the drill-down.

    ``metric`` (metric items; else empty): metric_id, metric_name, numerator, denominator, value, target
    (1.0: the item scores points × min(value, 1)) and points_lost to the metric
    (``etl.scoring.lost_points.metric_shortfall``).  ``findings``: the findings of the item's rules
    (``item_rules``: unclean objects' rules, deductions) of the units in the unit's scope, newest first; empty
    when the item has none (a metric item without deductions, an item the scheme does not know): never every
    finding of the unit.
    """
    effective_units(url, scope, unit)
    scheme = _scheme(scheme_id or _active_scheme_id(url))
    item = next((it for it in (scheme or {}).get("items", []) if it["id"] == item_id), None)
    metric = pd.DataFrame(
        columns=["metric_id", "metric_name", "numerator", "denominator", "value", "target", "points_lost"]
    )
    if item is not None and item["metric"]:
        m = _df(
            url,
            "SELECT metric_id, numerator, denominator, value FROM metrics "
            "WHERE unit_code = :u AND period = :period AND metric_id = :m",
            u=unit,
            period=period,
            m=item["metric"],
        )
        row = m.iloc[0] if len(m) else pd.Series({"numerator": None, "denominator": None, "value": None})
        metric = pd.DataFrame(
            [
                {
                    "metric_id": item["metric"],
                    "metric_name": METRICS.get(item["metric"], item["metric"]),
                    "numerator": row["numerator"],
                    "denominator": row["denominator"],
                    "value": row["value"],
                    "target": 1.0,
                    "points_lost": metric_shortfall(item["points"], row["denominator"], row["value"]),
                }
            ]
        )
    rules = schemes_mod.item_rules(scheme).get(item_id, []) if scheme is not None else []
    found = (
        findings_list(url, scope, unit, period, tuple(rules))
        if rules
        else pd.DataFrame(columns=list(FINDING_LIST_COLUMNS))
    )
    return {"metric": metric, "findings": found}


def _active_scheme_id(url: str) -> str | None:
    s = schemes(url)
    active = s.loc[s["active"] == 1, "scheme_id"]
    return str(active.iloc[0]) if len(active) else None


@st.cache_data(ttl=TTL, show_spinner=False)
def findings_list(
    url: str,
    scope: Scope,
    unit: str | None,
    period: str,
    rule_ids: tuple[str, ...] | None = None,
    limit: int = ROW_LIMIT,
) -> pd.DataFrame:
    """Findings of the units in scope in the period, optionally of some rules (newest first, limited), each with
    its finding_key and review state (exempted ones stay listed, marked: they cost nothing)."""
    eff = effective_units(url, scope, unit)
    rule_cond = "1=1" if rule_ids is None else "rule_id IN :rules"
    params = {} if rule_ids is None else {"rules": tuple(rule_ids)}
    return _df(
        url,
        f"""
        SELECT finding_key, rule_id, article, unit_code, case_no, doc_id, action_id, incident_no, clip_id, device_sn,
               log_id, police_no, occurred_at, detail, review_state, appeal_state
        FROM v_findings WHERE {_in("unit_code", "units", eff)} AND month IN :months AND {rule_cond}
        ORDER BY occurred_at DESC LIMIT {int(limit)}""",
        **_scope_params(eff),
        months=tuple(periods.months(period)),
        **params,
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def rule_counts(url: str, scope: Scope, unit: str | None, period: str, rule_ids: tuple[str, ...]) -> pd.DataFrame:
    eff = effective_units(url, scope, unit)
    return _df(
        url,
        f"""
        SELECT rule_id, COUNT(*) AS count FROM v_findings
        WHERE {_in("unit_code", "units", eff)} AND month IN :months AND rule_id IN :rules
          AND review_state <> 'exempted'
        GROUP BY rule_id ORDER BY rule_id""",
        **_scope_params(eff),
        months=tuple(periods.months(period)),
        rules=tuple(rule_ids),
    )


# --- coverage ----------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def coverage_by_unit_month(url: str, scope: Scope, unit: str | None, period: str) -> pd.DataFrame:
    """Events and fully recorded/excused events per owning unit and month (for the heatmap).

    Counted per unit and month first, then named (on PostgreSQL by ``date_trunc``, made text for the counted rows
    only).  Grouped by the month's text beside the unit's name, every event of the year went through one sort:
    the whole city's year took 0.34-0.61 s at city scale and 4-7 s on ten times its events; so 0.2-0.36 s and
    0.8-1.2 s (in parallel), 0.1 s at city scale once the planner knows how few months there are (statistics on
    ``date_trunc('month', arrived_at)``).  Where the ETL keeps the tally (``coverage_months``, rebuilt with the
    coverage) the heatmap reads those few rows instead: the same figures, whatever the number of events."""
    eff = effective_units(url, scope, unit)
    p = _period_params(url, period)
    if _has_month_tally(url):
        return _df(
            url,
            f"""
            SELECT m.unit_code, o.name AS unit_name, m.month, m.events, m.ok
            FROM coverage_months m LEFT JOIN org_units o ON o.unit_code = m.unit_code
            WHERE {_in("m.unit_code", "units", eff)} AND m.month IN :months
            ORDER BY m.unit_code, m.month""",
            **_scope_params(eff),
            months=list(p["months"]),
        )
    pg = _dialect(url) == "postgresql"
    m = "date_trunc('month', e.arrived_at)" if pg else _month(url, "e.arrived_at")
    return _df(
        url,
        f"""
        SELECT g.unit_code, o.name AS unit_name, {"to_char(g.m, 'YYYY-MM')" if pg else "g.m"} AS month, g.events, g.ok
        FROM (SELECT e.unit_code, {m} AS m, COUNT(*) AS events,
                     SUM(CASE WHEN e.status IN ('full', 'excused') THEN 1 ELSE 0 END) AS ok
              FROM event_coverage e
              WHERE {_in("e.unit_code", "units", eff)} AND e.arrived_at >= :p_start AND e.arrived_at < :p_end
              GROUP BY e.unit_code, {m}) g
        LEFT JOIN org_units o ON o.unit_code = g.unit_code
        ORDER BY g.unit_code, month""",
        **_scope_params(eff),
        p_start=p["p_start"],
        p_end=p["p_end"],
    )


def _has_month_tally(url: str) -> bool:
    """Whether the ETL keeps ``coverage_months`` here: the table has rows, or there is no event at all (a warehouse
    the current ETL has not run on yet has the table empty beside its events)."""
    if not sa.inspect(engine(url)).has_table("coverage_months"):
        return False
    if not _df(url, "SELECT 1 AS x FROM coverage_months LIMIT 1").empty:
        return True
    return _df(url, "SELECT 1 AS x FROM event_coverage LIMIT 1").empty


@st.cache_data(ttl=TTL, show_spinner=False)
def events(
    url: str, scope: Scope, unit: str | None, period: str, status: str | None = None, limit: int = ROW_LIMIT
) -> pd.DataFrame:
    eff = effective_units(url, scope, unit)
    p = _period_params(url, period)
    status_cond = "1=1" if status is None else "status = :status"
    params = {} if status is None else {"status": status}
    return _df(
        url,
        f"""
        SELECT incident_no, unit_code, arrived_at, ended_at, covered_fraction, gap_count, status, cause
        FROM event_coverage
        WHERE {_in("unit_code", "units", eff)} AND arrived_at >= :p_start AND arrived_at < :p_end AND {status_cond}
        ORDER BY arrived_at DESC LIMIT {int(limit)}""",
        **_scope_params(eff),
        p_start=p["p_start"],
        p_end=p["p_end"],
        **params,
    )


def event_detail(url: str, scope: Scope, incident_no: str) -> dict[str, pd.DataFrame]:
    """One event with its officers, their clips in the window, gaps and interruption report.

    Everything is empty when the event is outside the scope.
    """
    ev = _df(
        url,
        f"""
        SELECT e.incident_no, e.unit_code, e.arrived_at, e.ended_at, e.window_s, e.covered_s, e.covered_fraction,
               e.gap_count, e.status, e.raw_status, e.cause, e.report_id, i.category
        FROM event_coverage e LEFT JOIN incidents i ON i.incident_no = e.incident_no
        WHERE e.incident_no = :n AND {_in("e.unit_code", "units", scope)}""",
        parse_dates=("arrived_at", "ended_at"),
        n=incident_no,
        **_scope_params(scope),
    )
    empty = {
        "event": ev.iloc[0:0],
        "officers": pd.DataFrame(),
        "clips": pd.DataFrame(),
        "gaps": pd.DataFrame(),
        "report": pd.DataFrame(),
    }
    if ev.empty:
        return empty
    arrived, ended = ev["arrived_at"].iloc[0].to_pydatetime(), ev["ended_at"].iloc[0].to_pydatetime()
    officers = _df(
        url,
        """
        SELECT io.police_no, o.name FROM incident_officers io LEFT JOIN officers o ON o.police_no = io.police_no
        WHERE io.incident_no = :n ORDER BY io.police_no""",
        n=incident_no,
    )
    clips = pd.DataFrame(columns=["clip_id", "device_sn", "police_no", "started_at", "ended_at"])
    if not officers.empty:
        # Devices held by the attending officers during the window, then their clips overlapping it
        # (index on clips(device_sn, started_at); a clip lasts less than a day).
        held = _df(
            url,
            """
            SELECT device_sn, police_no FROM device_assignments
            WHERE police_no IN :officers AND from_at < :e AND (to_at IS NULL OR to_at > :a)""",
            officers=tuple(officers["police_no"]),
            a=_ts(url, arrived),
            e=_ts(url, ended),
        )
        if not held.empty:
            clips = _df(
                url,
                """
                SELECT clip_id, device_sn, police_no, started_at, ended_at FROM clips
                WHERE device_sn IN :devs AND started_at < :e AND started_at >= :a0 AND ended_at > :a
                ORDER BY started_at LIMIT 200""",
                parse_dates=("started_at", "ended_at"),
                devs=tuple(held["device_sn"].unique()),
                a=_ts(url, arrived),
                e=_ts(url, ended),
                a0=_ts(url, arrived - pd.Timedelta(days=1)),
            )
            holder = held.drop_duplicates("device_sn").set_index("device_sn")["police_no"]
            clips["police_no"] = clips["police_no"].fillna(clips["device_sn"].map(holder))
            clips = clips[clips["police_no"].isin(officers["police_no"])]
    gaps = _df(
        url,
        "SELECT gap_no, gap_start, gap_end, gap_s FROM event_gaps WHERE incident_no = :n ORDER BY gap_no",
        parse_dates=("gap_start", "gap_end"),
        n=incident_no,
    )
    report = _df(
        url,
        """SELECT report_id, police_no, reason, reported_at FROM interruption_reports
                         WHERE incident_no = :n ORDER BY reported_at""",
        n=incident_no,
    )
    return {"event": ev, "officers": officers, "clips": clips.reset_index(drop=True), "gaps": gaps, "report": report}


# --- cases -------------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def search_cases(
    url: str, scope: Scope, unit: str | None, text: str = "", only_with_findings: bool = False, limit: int = 200
) -> pd.DataFrame:
    """Cases of the units in scope whose number or title contains ``text`` (with their finding counts), newest
    first, at most ``limit``.

    The page of cases is chosen first, then only its cases' findings are counted (their numbers bound as a list,
    which PostgreSQL pushes into both branches of ``v_findings``).  ``only_with_findings`` (cases with an open or
    confirmed finding in scope) probes the cases newest first until the page is full.  With the warehouse's
    indexes on ``cases.registered_at`` and the findings' ``case_no`` (``_case_indexes``) the work grows with the
    page, not with the warehouse; without them it is one pass over each table, as before (a probe per case would
    then read every finding each time: ``only_with_findings`` joins the counts of every case instead)."""
    eff = effective_units(url, scope, unit)
    conds = [_in("c.unit_code", "units", eff)]
    params: dict = _scope_params(eff)
    if text and text.strip():
        conds.append("(c.case_no LIKE :q OR c.title LIKE :q)")
        params["q"] = f"%{text.strip()}%"
    counted = f"""v_findings f WHERE f.review_state <> 'exempted' AND {_in("f.unit_code", "units", eff)}"""
    if only_with_findings and not _case_indexes(url):  # a probe per case would read every finding: one pass
        return _df(
            url,
            f"""
            SELECT c.case_no, c.unit_code, c.title, c.procedure, c.registered_at, n.n AS findings
            FROM cases c JOIN (SELECT f.case_no, COUNT(*) AS n FROM {counted} AND f.case_no IS NOT NULL
                               GROUP BY f.case_no) n ON n.case_no = c.case_no
            WHERE {" AND ".join(conds)} ORDER BY c.registered_at DESC, c.case_no DESC LIMIT {int(limit)}""",
            **params,
        ).astype({"findings": "int64"})
    if only_with_findings:  # each case probed, newest first, until the page is full
        conds.append(f"(SELECT COUNT(*) FROM {counted} AND f.case_no = c.case_no) > 0")
    page = _df(
        url,
        f"""
        SELECT c.case_no, c.unit_code, c.title, c.procedure, c.registered_at FROM cases c
        WHERE {" AND ".join(conds)} ORDER BY c.registered_at DESC, c.case_no DESC LIMIT {int(limit)}""",
        **params,
    )
    if page.empty:
        return page.assign(findings=pd.Series(dtype="int64"))
    n = _df(
        url,
        f"SELECT f.case_no, COUNT(*) AS n FROM {counted} AND f.case_no IN :cases GROUP BY f.case_no",
        **_scope_params(eff),
        cases=tuple(page["case_no"]),
    )
    found = dict(zip(n["case_no"], n["n"].astype("int64"), strict=True))
    return page.assign(findings=[found.get(c, 0) for c in page["case_no"]]).astype({"findings": "int64"})


@st.cache_data(ttl=TTL, show_spinner=False)
def _case_indexes(url: str) -> bool:
    """Whether the warehouse has the indexes the case search probes by (cases by registration time, findings by
    case number); a warehouse the current ETL has not run on yet may lack them."""
    inspector = sa.inspect(engine(url))
    return all(
        any(ix["column_names"][:1] == [column] for ix in inspector.get_indexes(table))
        for table, column in (("cases", "registered_at"), ("findings", "case_no"), ("excused_findings", "case_no"))
    )


def case_detail(url: str, scope: Scope, case_no: str) -> dict[str, pd.DataFrame]:
    """A case with its actions, documents, deliveries, supporting clips and findings; empty outside the scope."""
    case = _df(
        url,
        f"SELECT * FROM cases WHERE case_no = :c AND {_in('unit_code', 'units', scope)}",
        c=case_no,
        **_scope_params(scope),
    )
    out = {k: pd.DataFrame() for k in ("actions", "documents", "deliveries", "clips", "findings")}
    out["case"] = case
    if case.empty:
        return out
    out["actions"] = _df(
        url,
        """SELECT action_id, action_type, started_at, ended_at, police_no FROM case_actions
                                 WHERE case_no = :c ORDER BY started_at""",
        parse_dates=("started_at", "ended_at"),
        c=case_no,
    )
    out["documents"] = _df(
        url,
        """
        SELECT doc_id, action_id, doc_type, created_at, party_signed, party_refused, officer_signed, witness_signed
        FROM case_documents WHERE case_no = :c ORDER BY created_at""",
        parse_dates=("created_at",),
        c=case_no,
    )
    out["deliveries"] = _df(
        url,
        """
        SELECT d.delivery_id, d.doc_id, d.method, d.delivered_at, d.receipt_signed, d.postal_receipt
        FROM deliveries d JOIN case_documents cd ON cd.doc_id = d.doc_id
        WHERE cd.case_no = :c ORDER BY d.delivered_at""",
        parse_dates=("delivered_at",),
        c=case_no,
    )
    acts = out["actions"]
    if not acts.empty:
        officers = set(_df(url, "SELECT police_no FROM case_officers WHERE case_no = :c", c=case_no)["police_no"])
        officers |= set(acts["police_no"].dropna())
        lo, hi = acts["started_at"].min().to_pydatetime(), acts["ended_at"].max().to_pydatetime()
        if officers:
            devs = _df(
                url,
                """SELECT DISTINCT device_sn FROM device_assignments
                               WHERE police_no IN :o AND from_at < :hi AND (to_at IS NULL OR to_at > :lo)""",
                o=tuple(sorted(officers)),
                lo=_ts(url, lo),
                hi=_ts(url, hi),
            )
            if not devs.empty:
                out["clips"] = _df(
                    url,
                    """
                    SELECT clip_id, device_sn, police_no, started_at, ended_at, case_no FROM clips
                    WHERE device_sn IN :d AND started_at < :hi AND started_at >= :lo0 AND ended_at > :lo
                    ORDER BY started_at LIMIT 200""",
                    parse_dates=("started_at", "ended_at"),
                    d=tuple(devs["device_sn"]),
                    lo=_ts(url, lo),
                    hi=_ts(url, hi),
                    lo0=_ts(url, lo - pd.Timedelta(days=1)),
                )
    ids = {"c": case_no, "acts": tuple(acts["action_id"]) or ("",), "docs": tuple(out["documents"]["doc_id"]) or ("",)}
    out["findings"] = _df(
        url,
        """
        SELECT finding_key, rule_id, article, action_id, doc_id, doc_type, police_no, occurred_at, detail,
               review_state FROM v_findings
        WHERE case_no = :c OR action_id IN :acts OR doc_id IN :docs ORDER BY rule_id, finding_key""",
        **ids,
    )
    return out


# --- equipment ---------------------------------------------------------------------------


@st.cache_data(ttl=TTL, show_spinner=False)
def device_counts(url: str, scope: Scope, unit: str | None) -> pd.DataFrame:
    eff = effective_units(url, scope, unit)
    return _df(
        url,
        f"""
        SELECT d.unit_code, o.name AS unit_name, d.kind, d.status, COUNT(*) AS count
        FROM devices d LEFT JOIN org_units o ON o.unit_code = d.unit_code
        WHERE {_in("d.unit_code", "units", eff)}
        GROUP BY d.unit_code, o.name, d.kind, d.status ORDER BY d.unit_code, d.kind, d.status""",
        **_scope_params(eff),
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def devices(
    url: str,
    scope: Scope,
    unit: str | None,
    period: str,
    kind: str | None = None,
    status: str | None = None,
    limit: int = 2000,
) -> pd.DataFrame:
    """Devices with current holder, clips in the period and days in the current status.

    The page of devices (``limit``, in unit and device order) is chosen first; its clips in the period are the
    sums of the ETL's per-day counts (``clip_days``, by device and day: an index range per device), so the work
    grows with the page and the period's days, not with the clips of the warehouse (a count over the clip mirror
    read every clip of the period: 0.34 s for a month at city scale)."""
    eff = effective_units(url, scope, unit)
    start, end = periods.bounds(period)
    conds = [_in("d.unit_code", "units", eff)]
    params: dict = {**_scope_params(eff), "d_start": f"{start:%Y-%m-%d}", "d_end": f"{end:%Y-%m-%d}"}
    _equal_filters(conds, params, {"d.kind": ("kind", kind), "d.status": ("status", status)})
    where = " AND ".join(conds)
    df = _df(
        url,
        f"""
        WITH page AS (
            SELECT d.device_sn, d.unit_code, d.kind, d.model, d.status, d.status_since, h.police_no AS holder
            FROM devices d LEFT JOIN device_assignments h ON h.device_sn = d.device_sn AND h.to_at IS NULL
            WHERE {where} ORDER BY d.unit_code, d.device_sn LIMIT {int(limit)})
        SELECT p.device_sn, p.unit_code, p.kind, p.model, p.status, p.status_since, p.holder,
               COALESCE((SELECT SUM(k.clips) FROM clip_days k
                         WHERE k.device_sn = p.device_sn AND k.day >= :d_start AND k.day < :d_end), 0) AS clips
        FROM page p ORDER BY p.unit_code, p.device_sn""",
        parse_dates=("status_since",),
        **params,
    )
    return df.assign(clips=df["clips"].astype("int64"))  # SUM is a bigint or a decimal, depending on the database


DEVICES_SHOWN = 2000  # rows of the device list on the page (``devices``' default limit)
LEDGER_EXPORT_LIMIT = 200_000  # devices in one ledger export; beyond it the page and the file say so


def device_ledger(
    url: str, scope: Scope, unit: str | None, period: str, kind: str | None = None, status: str | None = None
) -> tuple[pd.DataFrame, bool]:
    """Every device of the ledger export (not the page's first 2,000): (rows, truncated).  ``truncated`` is True
    when more than ``LEDGER_EXPORT_LIMIT`` devices matched and only that many were exported."""
    rows = devices(url, scope, unit, period, kind, status, limit=LEDGER_EXPORT_LIMIT + 1)
    return rows.head(LEDGER_EXPORT_LIMIT), len(rows) > LEDGER_EXPORT_LIMIT


def data_version(url: str) -> tuple:
    """What the live figures depend on: the latest ETL run and the newest supervision write of each kind that
    rescores (a cached export is rebuilt when any of them changes)."""
    parts = ["(SELECT MAX(run_id) FROM etl_runs)"]
    existing = set(sa.inspect(engine(url)).get_table_names())
    for table, col in (
        ("sup_reviews", "review_id"),
        ("sup_excuse_history", "id"),
        ("sup_spotcheck_history", "id"),
        ("sup_notice_events", "id"),
        ("sup_publications", "publication_id"),
    ):
        if table in existing:  # constants, not user input
            parts.append(f"(SELECT MAX({col}) FROM {table})")
    row = _df(url, "SELECT " + ", ".join(f"{p} AS v{i}" for i, p in enumerate(parts))).iloc[0]
    return tuple(None if pd.isna(v) else int(v) for v in row)


def device_history(url: str, scope: Scope, device_sn: str) -> pd.DataFrame:
    """Assignment history of one device; empty when the device is outside the scope."""
    return _df(
        url,
        f"""
        SELECT a.police_no, o.name, a.from_at, a.to_at FROM device_assignments a
        JOIN devices d ON d.device_sn = a.device_sn LEFT JOIN officers o ON o.police_no = a.police_no
        WHERE a.device_sn = :sn AND {_in("d.unit_code", "units", scope)} ORDER BY a.from_at DESC""",
        sn=device_sn,
        **_scope_params(scope),
    )


# --- access audit ------------------------------------------------------------------------


def _county_keys(url: str, table: str) -> dict[str, str] | None:
    """Each unit's county bureau (``org_units.county_code``) where ``table``'s rows carry it too (the distribution
    key, ``etl.warehouse.distribution``: every writer sets it, rows below a moved parent follow); None for a
    warehouse written before the key, or with a unit still without one: the queries then do without it."""
    keys = _unit_counties(url)
    return keys if keys is not None and _has_county_key(url, table) else None


@st.cache_data(ttl=TTL, show_spinner=False)
def _unit_counties(url: str) -> dict[str, str] | None:
    if not _has_county_key(url, "org_units"):
        return None
    df = _df(url, f"SELECT unit_code, {distribution.KEY} AS county FROM org_units")
    if df["county"].isna().any():
        return None
    return dict(zip(df["unit_code"].astype(str), df["county"].astype(str), strict=True))


@st.cache_data(ttl=TTL, show_spinner=False)
def _has_county_key(url: str, table: str) -> bool:
    return any(c["name"] == distribution.KEY for c in sa.inspect(engine(url)).get_columns(table))


def _county_split(keys: dict[str, str], eff: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The counties of ``eff``'s units: (whole, partial): those whose every unit is in ``eff``, and the others
    (a station chosen: its county's rows must still be told apart by their unit)."""
    mine = {keys[u] for u in eff if u in keys}
    chosen = set(eff)
    partial = {keys[u] for u in keys if keys[u] in mine and u not in chosen}
    return tuple(sorted(mine - partial)), tuple(sorted(partial))


# Access rows without a county (written before the key) or of no county (their clip, its device or the device's
# unit unknown when written): told apart by their clip's device, whatever the key.
_UNKEYED = f"(a.{distribution.KEY} IS NULL OR a.{distribution.KEY} = :unowned)"


def _access_where(url: str, eff: Scope, period: str, user_no: str | None, action: str | None) -> tuple[str, dict]:
    """The WHERE text over ``_ACCESS_FROM`` (and its parameters) of the access rows of ``eff``'s units (the unit
    owning the clip's device) in the period.  Where the warehouse keeps the county key, the rows of the counties
    of ``eff`` are chosen first (``access_log.county_code``, the county of the clip's device), so that only
    theirs are looked up in the clips and devices, not the period's rows of the whole city."""
    p = _period_params(url, period)
    conds = [_in("d.unit_code", "units", eff), "a.at >= :p_start", "a.at < :p_end"]
    params: dict = {**_scope_params(eff), "p_start": p["p_start"], "p_end": p["p_end"]}
    keys = _county_keys(url, "access_log") if eff else None
    if keys is not None:
        counties = tuple(sorted({keys[u] for u in eff if u in keys}))
        conds.append(f"({_in(f'a.{distribution.KEY}', 'counties', counties)} OR {_UNKEYED})")
        params.update(unowned=distribution.UNOWNED, **({"counties": counties} if counties else {}))
    _equal_filters(conds, params, {"a.user_no": ("user_no", user_no), "a.action": ("action", action)})
    return " AND ".join(conds), params


_ACCESS_FROM = "access_log a JOIN clips c ON c.clip_id = a.clip_id JOIN devices d ON d.device_sn = c.device_sn"


@st.cache_data(ttl=TTL, show_spinner=False)
def access_records(
    url: str,
    scope: Scope,
    unit: str | None,
    period: str,
    user_no: str | None = None,
    action: str | None = None,
    limit: int = ROW_LIMIT,
) -> pd.DataFrame:
    """Access records (by the unit owning the clip's device) with the access rules they broke, newest first."""
    eff = effective_units(url, scope, unit)
    where, params = _access_where(url, eff, period, user_no, action)
    df = _df(
        url,
        f"""
        SELECT a.log_id, a.clip_id, d.unit_code, a.action, a.user_no, a.at, a.reason, a.approver_no, a.recipient
        FROM {_ACCESS_FROM} WHERE {where} ORDER BY a.at DESC, a.log_id DESC LIMIT {int(limit)}""",
        **params,
    )
    if df.empty:
        return df.assign(findings="")
    f = _df(
        url,
        "SELECT log_id, rule_id FROM v_findings WHERE rule_id IN :rules AND log_id IN :ids"
        " AND review_state <> 'exempted'",
        rules=ACCESS_RULES,
        ids=tuple(df["log_id"]),
    )
    per_log = f.groupby("log_id")["rule_id"].agg(lambda s: "、".join(sorted(set(s))))
    return df.assign(findings=[per_log.get(log_id, "") for log_id in df["log_id"]])


@st.cache_data(ttl=TTL, show_spinner=False)
def access_summary(url: str, scope: Scope, unit: str | None, period: str) -> pd.DataFrame:
    """Per user and action: number of accesses (at most 5000 rows, by user and action).

    Where the warehouse keeps the county key, the rows of a county all of whose units are in scope (the whole
    city, a county bureau's own scope) are counted by their key alone, without looking their clip up; only the
    rows of a county the scope splits (a station chosen) and those without a county are joined with their clip
    and its device, as before.  The work is then the period's access rows in scope (the whole city's month at
    city scale: 0.24 s with a clip look-up per row, 0.05 s so).  The one difference from looking every row up:
    a row whose clip's device was deleted from the device ledger after it was written still counts in its county
    (the look-up dropped it)."""
    eff = effective_units(url, scope, unit)
    keys = _county_keys(url, "access_log") if eff is None or eff else None
    if keys is None:  # every row looked up
        where, params = _access_where(url, eff, period, None, None)
        rows = f"SELECT a.user_no, a.action FROM {_ACCESS_FROM} WHERE {where}"
    else:
        p = _period_params(url, period)
        params = {**_scope_params(eff), "p_start": p["p_start"], "p_end": p["p_end"], "unowned": distribution.UNOWNED}
        key, when = f"a.{distribution.KEY}", "a.at >= :p_start AND a.at < :p_end"
        if eff is None:  # the whole city: every row of a county by its key, the others looked up
            keyed, joined = f"{key} <> :unowned", _UNKEYED
        else:
            whole, partial = _county_split(keys, eff)
            keyed, joined = _in(key, "whole", whole), f"({_in(key, 'partial', partial)} OR {_UNKEYED})"
            params.update({k: v for k, v in (("whole", whole), ("partial", partial)) if v})
        rows = f"""SELECT a.user_no, a.action FROM access_log a WHERE {when} AND {keyed}
                   UNION ALL
                   SELECT a.user_no, a.action FROM {_ACCESS_FROM}
                   WHERE {when} AND {joined} AND {_in("d.unit_code", "units", eff)}"""
    return _df(
        url,
        f"""
        SELECT r.user_no, r.action, COUNT(*) AS actions FROM ({rows}) r
        GROUP BY r.user_no, r.action ORDER BY r.user_no, r.action LIMIT 5000""",
        **params,
    )


def access_detail(url: str, scope: Scope, log_id: str) -> pd.DataFrame:
    """One access record with its clip; empty outside the scope."""
    return _df(
        url,
        f"""
        SELECT a.log_id, a.clip_id, c.device_sn, d.unit_code, c.police_no, c.started_at, a.action, a.user_no, a.at,
               a.reason, a.approver_no, a.approved_at, a.recipient
        FROM {_ACCESS_FROM} WHERE a.log_id = :id AND {_in("d.unit_code", "units", scope)}""",
        id=log_id,
        **_scope_params(scope),
    )


# --- the supervision record: review queue, appeals, Art. 17 explanations ----------------------
# Reads the public views v_findings / v_appeals and the sup_* tables for the versions a write passes back
# (the stale-write guard).  Writes go through dashboard.supervision (etl.supervision.actions), never here.

REVIEW_STATES = ("open", "confirmed", "exempted")
APPEAL_STATES = ("none", "pending", "upheld", "rejected")  # none: never appealed
EXCUSE_STATES = ("pending", "accepted", "rejected")  # pending: no judgement yet
SUPERVISION_TTL = 60  # every write clears the caches; the TTL only bounds what other processes wrote


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def review_queue(
    url: str,
    scope: Scope,
    unit: str | None,
    period: str,
    rule: str | None = None,
    state: str | None = None,
    appeal_state: str | None = None,
    limit: int = ROW_LIMIT,
) -> pd.DataFrame:
    """Findings of the units in scope in the period with their review and appeal state (newest first, limited).

    Columns: finding_key, review_state (open | confirmed | exempted), appeal_state (None | pending | upheld |
    rejected), rule_id, article, unit_code, occurred_at, detail, version (of the finding's state row, 0 when
    it was never judged: the version a write passes back).  ``appeal_state`` 'none' keeps the never-appealed.
    """
    eff = effective_units(url, scope, unit)
    p = _period_params(url, period)
    conds = [
        _in("f.unit_code", "units", eff),
        "f.month IN :months",
        "f.occurred_at >= :p_start",
        "f.occurred_at < :p_end",
    ]
    params: dict = {**_scope_params(eff), **p}
    _equal_filters(conds, params, {"f.rule_id": ("rule", rule), "f.review_state": ("state", state)})
    if appeal_state == "none":
        conds.append("f.appeal_state IS NULL")
    else:
        _equal_filters(conds, params, {"f.appeal_state": ("appeal", appeal_state)})
    return _df(
        url,
        f"""
        SELECT f.finding_key, f.review_state, f.appeal_state, f.rule_id, f.article, f.unit_code, f.occurred_at,
               f.detail, COALESCE(s.version, 0) AS version
        FROM v_findings f LEFT JOIN sup_finding_state s ON s.finding_key = f.finding_key
        WHERE {" AND ".join(conds)}
        ORDER BY f.occurred_at DESC, f.finding_key LIMIT {int(limit)}""",
        **params,
    )


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def finding_rules(url: str, scope: Scope, unit: str | None, period: str) -> list[str]:
    """The rule ids with findings in scope and period (the review queue's rule filter)."""
    eff = effective_units(url, scope, unit)
    p = _period_params(url, period)
    return list(
        _df(
            url,
            f"""
            SELECT DISTINCT rule_id FROM v_findings
            WHERE {_in("unit_code", "units", eff)} AND month IN :months
              AND occurred_at >= :p_start AND occurred_at < :p_end
            ORDER BY rule_id""",
            **_scope_params(eff),
            **p,
        )["rule_id"]
    )


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def review_history(url: str, scope: Scope, finding_key: str) -> pd.DataFrame:
    """Every verdict given on one finding (v_reviews, oldest first); empty when the finding is outside the scope."""
    return _df(
        url,
        f"""
        SELECT r.verdict, r.category, r.reason, r.by_user, r.at, r.orphaned FROM v_reviews r
        WHERE r.finding_key = :k AND EXISTS (
            SELECT 1 FROM v_findings f WHERE f.finding_key = r.finding_key AND {_in("f.unit_code", "units", scope)}
            UNION ALL
            SELECT 1 FROM sup_finding_state s
            WHERE s.finding_key = r.finding_key AND {_in("s.unit_code", "units", scope)})
        ORDER BY r.at, r.verdict""",
        k=finding_key,
        **_scope_params(scope),
    )


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def appeals(url: str, scope: Scope, state: str | None = None, limit: int = ROW_LIMIT) -> pd.DataFrame:
    """Appeals of the units in scope, newest first: ``state`` 'pending' (undecided) or 'decided'; None = all.

    Columns: appeal_id, finding_key, rule_id, unit_code, detail (None when the finding left the sources), reason,
    filed_by, filed_at, late, decision, decision_reason, decided_by, decided_at, version (what a decision passes
    back).
    """
    conds = [_in("a.unit_code", "units", scope)]
    if state == "pending":
        conds.append("a.decision IS NULL")
    elif state == "decided":
        conds.append("a.decision IS NOT NULL")
    return _df(
        url,
        f"""
        SELECT a.appeal_id, a.finding_key, f.rule_id, a.unit_code, f.detail, a.reason, a.filed_by, a.filed_at,
               a.late, a.decision, a.decision_reason, a.decided_by, a.decided_at, a.version
        FROM v_appeals a LEFT JOIN v_findings f ON f.finding_key = a.finding_key
        WHERE {" AND ".join(conds)}
        ORDER BY a.filed_at DESC, a.appeal_id DESC LIMIT {int(limit)}""",
        **_scope_params(scope),
    )


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def excused_events(
    url: str, scope: Scope, unit: str | None, period: str, state: str | None = None, limit: int = ROW_LIMIT
) -> pd.DataFrame:
    """Events excused by an interruption report (Art. 17) in scope and period, with the report and its judgement.

    Columns: incident_no, unit_code, arrived_at, raw_status, covered_fraction, report_id, reporter,
    reported_at, report_reason, excuse_state (pending | accepted | rejected), verdict_reason, judged_by,
    version (0 when never judged).
    """
    eff = effective_units(url, scope, unit)
    p = _period_params(url, period)
    conds = [
        "e.report_id IS NOT NULL",
        _in("e.unit_code", "units", eff),
        "e.arrived_at >= :p_start",
        "e.arrived_at < :p_end",
    ]
    if state == "pending":
        conds.append("x.verdict IS NULL")
    elif state:
        conds.append("x.verdict = :state")
    return _df(
        url,
        f"""
        SELECT e.incident_no, e.unit_code, e.arrived_at, e.raw_status, e.covered_fraction, e.report_id,
               r.police_no AS reporter, r.reported_at, r.reason AS report_reason,
               COALESCE(x.verdict, 'pending') AS excuse_state, x.reason AS verdict_reason, x.by_user AS judged_by,
               COALESCE(x.version, 0) AS version
        FROM event_coverage e
        LEFT JOIN interruption_reports r ON r.report_id = e.report_id
        LEFT JOIN sup_excuse_reviews x ON x.incident_no = e.incident_no
        WHERE {" AND ".join(conds)}
        ORDER BY e.arrived_at DESC, e.incident_no LIMIT {int(limit)}""",
        **_scope_params(eff),
        p_start=p["p_start"],
        p_end=p["p_end"],
        **({"state": state} if state and state != "pending" else {}),
    )


# Publication reads: versions, published scores and the restatement (etl.supervision.publish writes them).


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def publications(url: str, period: str) -> pd.DataFrame:
    """The published versions of ``period`` (sup_publications), newest first."""
    return _df(
        url,
        """
        SELECT publication_id, period, version, scheme_id, scheme_version, reason, published_by, published_at,
               data_as_of
        FROM sup_publications WHERE period = :period ORDER BY version DESC""",
        period=period,
    )


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def published_scores(url: str, scope: Scope, unit: str | None, period: str, version: int | None = None) -> pd.DataFrame:
    """Unit scores of the units in scope as published in ``version`` of the period (None: the latest), in the
    columns and order of ``scores``; empty when the period was never published."""
    eff = effective_units(url, scope, unit)
    version_cond = (
        "s.version = (SELECT MAX(version) FROM sup_publications WHERE period = :period)"
        if version is None
        else "s.version = :v"
    )
    return _df(
        url,
        f"""
        SELECT s.unit_code, o.name AS unit_name, s.unit_level AS level, s.total, s.grade, s.rank, s.veto,
               s.scheme_id, s.scheme_version
        FROM v_published_scores s LEFT JOIN org_units o ON o.unit_code = s.unit_code
        WHERE s.period = :period AND {version_cond} AND {_in("s.unit_code", "units", eff)}
        ORDER BY {_LEVEL_SORT}, s.rank, s.unit_code
        LIMIT {ROW_LIMIT}""",
        **_scope_params(eff),
        period=period,
        **({} if version is None else {"v": int(version)}),
    )


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def restatement(url: str, scope: Scope, period: str) -> pd.DataFrame:
    """The units in scope whose current total differs from the latest published version of ``period``, with the
    reasons (``etl.supervision.publish.restatement``); empty when never published or nothing differs."""
    from etl.supervision.publish import restatement as restate

    eff = effective_units(url, scope, None)
    with engine(url).connect() as conn:
        diff = restate(conn, period)
    return diff if eff is None else diff[diff["unit_code"].isin(eff)].reset_index(drop=True)


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def published_item_scores(url: str, scope: Scope, unit: str, period: str, version: int) -> pd.DataFrame:
    """Item scores of ``unit`` as published in ``version`` of the period (the columns of ``item_scores``)."""
    effective_units(url, scope, unit)
    return _df(
        url,
        """
        SELECT i.item_id, i.item_name, i.points, i.objects, i.clean, i.deductions, i.score
        FROM sup_published_items i JOIN sup_publications p ON p.publication_id = i.publication_id
        WHERE p.period = :period AND p.version = :v AND i.unit_code = :u ORDER BY i.item_id""",
        period=period,
        v=int(version),
        u=unit,
    )


# --- spot-checks (随机抽查) and rectification (整改): etl.supervision.spotcheck / rectify / inbox --------------
# The backend's own read functions, run on a connection of the warehouse; the scope is applied here (each
# function gets it, and a single object is re-checked against it).  Every write clears these caches.


def _scope_set(scope: Scope) -> set[str] | None:
    return None if scope is None else set(scope)


def today() -> date:
    """Today's date for overdue and deadlines (``etl.times.today``: ``AVSUP_TODAY`` when set, the clock tests set)."""
    return times.today()


def rectify_days(config_dir: Path | None = None) -> int:
    """The default deadline of a notice in days after its issue (config/rules.yaml params.rectify_days)."""
    from etl.rules import config as rules_config

    try:
        return int(rules_config.load(config_dir or ROOT / "config")["params"].get("rectify_days", 15))
    except ConfigError:
        return 15


def unit_rows(url: str) -> pd.DataFrame:
    """The unit tree (unit_code, name, parent_code, level): what the notice document names its unit with."""
    return _tree(url)


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def campaigns(url: str, scope: Scope) -> pd.DataFrame:
    """Spot-check campaigns of the user's scope, newest first, with their progress (drawn, reviewed, failed)."""
    from etl.supervision import spotcheck

    with engine(url).connect() as conn:
        return spotcheck.campaigns(conn, _scope_set(scope))


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def campaign_items(url: str, scope: Scope, campaign_id: int) -> pd.DataFrame:
    """The sampled objects of a campaign that lie in the user's scope, with verdict, failed points and version."""
    from etl.supervision import spotcheck

    with engine(url).connect() as conn:
        return spotcheck.items(conn, int(campaign_id), _scope_set(scope))


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def spot_item(url: str, scope: Scope, campaign_id: int, object_key: str) -> dict | None:
    """One sampled object with its checklist ``points`` {point_id: (result, note)}; None outside the scope."""
    from etl.supervision import spotcheck

    with engine(url).connect() as conn:
        found = spotcheck.item(conn, int(campaign_id), object_key)
    if not found or (scope is not None and found.get("unit_code") not in scope):
        return None
    return found


def checklist(kind: str) -> list[tuple[str, str]]:
    """The review checklist of an object kind (events | cases): [(point id, Chinese label)]."""
    from etl.supervision import spotcheck

    return list(spotcheck.CHECKLIST.get(kind, []))


def clip_media(url: str, scope: Scope, clip_id: str) -> tuple[Path | None, str | None]:
    """The original file of a clip of the user's scope and whether it plays: (path, None) when it does, else
    (None, the reason in Chinese: not in scope, no media root, missing, unreadable, not playable)."""
    from etl.warehouse import media

    owner = _df(
        url,
        f"""SELECT c.clip_id FROM clips c JOIN devices d ON d.device_sn = c.device_sn
            WHERE c.clip_id = :c AND {_in("d.unit_code", "units", scope)}""",
        c=clip_id,
        **_scope_params(scope),
    )
    if owner.empty:
        return None, "该视频不在当前用户的管辖范围内"
    with engine(url).connect() as conn:
        path, why = media.clip_file(conn, clip_id)  # under the media root of the latest successful run
    if path is None:
        return None, why or "未找到原始文件"
    ok, why = media.playable(path)
    return (Path(path), None) if ok else (None, why or "原始文件无法播放")


def video_mime(path: Path) -> str:
    """The MIME type to tell the browser for a playable original (``etl.warehouse.media.mime_type``)."""
    from etl.warehouse import media

    return media.mime_type(path)


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def notices(url: str, scope: Scope, on: date) -> pd.DataFrame:
    """Rectification notices of the units in scope (v_rectifications + text, period, version, accountability),
    overdue against ``on`` (today's date)."""
    from etl.supervision import rectify

    with engine(url).connect() as conn:
        return rectify.notices(conn, _scope_set(scope), today=on)


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def notice(url: str, scope: Scope, notice_id: int) -> dict | None:
    """One notice with its ``findings`` and ``events`` frames; None when unknown or outside the scope."""
    from etl.supervision import rectify

    with engine(url).connect() as conn:
        found = rectify.notice(conn, int(notice_id))
    if not found or (scope is not None and found.get("unit_code") not in scope):
        return None
    return found


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def notice_candidates(
    url: str, scope: Scope, unit: str, period: str, rules: tuple[str, ...] | None = None, limit: int = ROW_LIMIT
) -> pd.DataFrame:
    """Findings a notice to ``unit`` may cover: of the unit's scope and the period, not exempted, not already on
    a notice (newest first, limited)."""
    eff = effective_units(url, scope, unit)
    rule_cond = "1=1" if not rules else "rule_id IN :rules"
    return _df(
        url,
        f"""
        SELECT finding_key, rule_id, article, unit_code, occurred_at, detail, review_state FROM v_findings
        WHERE {_in("unit_code", "units", eff)} AND month IN :months AND {rule_cond}
          AND review_state <> 'exempted' AND notice_id IS NULL
        ORDER BY occurred_at DESC, finding_key LIMIT {int(limit)}""",
        **_scope_params(eff),
        months=tuple(periods.months(period)),
        **({"rules": tuple(rules)} if rules else {}),
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def unit_officers(url: str, scope: Scope, unit: str) -> pd.DataFrame:
    """Officers of the unit's scope (police_no, name, unit_code): whom an accountability recommendation names."""
    eff = effective_units(url, scope, unit)
    return _df(
        url,
        f"SELECT police_no, name, unit_code FROM officers WHERE {_in('unit_code', 'units', eff)} "
        f"ORDER BY unit_code, police_no LIMIT 2000",
        **_scope_params(eff),
    )


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def loop_metrics(url: str, scope: Scope, unit: str | None, period: str, on: date) -> dict[str, dict]:
    """抽查合格率 (metrics table, ``spotcheck_pass_rate``) and 整改按期完成率 (``etl.supervision.rectify.ontime_rate``,
    live: overdue depends on today) of the selected unit over its scope: {metric_id: {numerator, denominator,
    value}}; an absent metric has None values."""
    from etl.supervision import rectify

    target = unit if unit is not None else scope_root(url, scope)
    effective_units(url, scope, target)  # re-check the unit
    out = {k: {"numerator": None, "denominator": None, "value": None} for k in ("spotcheck_pass_rate", "ontime")}
    m = _df(
        url,
        "SELECT numerator, denominator, value FROM metrics WHERE unit_code = :u AND period = :p AND metric_id = :m",
        u=target,
        p=period,
        m="spotcheck_pass_rate",
    )
    if not m.empty:
        out["spotcheck_pass_rate"] = m.iloc[0].to_dict()
    with engine(url).connect() as conn:
        all_notices = rectify.notices(conn, None, today=on)
    rate = rectify.ontime_rate(all_notices, _tree(url), period, on)
    mine = rate[rate["unit_code"] == target] if not rate.empty else rate
    if not mine.empty:
        out["ontime"] = mine.iloc[0][["numerator", "denominator", "value"]].to_dict()
    return out


@st.cache_data(ttl=SUPERVISION_TTL, show_spinner=False)
def todo(url: str, username: str, scope: Scope, on: date, _user) -> dict[str, pd.DataFrame]:  # noqa: ANN001
    """What waits for the user (``etl.supervision.inbox.todo``): {section id: at most ROW_LIMIT rows, the oldest
    first; ``attrs["total"]`` the full count}; keyed on the user and scope."""
    from etl.supervision import inbox

    with engine(url).connect() as conn:
        return inbox.todo(conn, _user, today=on, limit=ROW_LIMIT)


def todo_sections() -> dict[str, str]:
    """Section id -> Chinese title (``etl.supervision.inbox.SECTIONS``)."""
    from etl.supervision import inbox

    return dict(inbox.SECTIONS)


# --- trends (issue 18): one unit's figures across periods and years (v_unit_metrics, unit_scores) -------------
# Small reads (one unit: a few hundred rows for years of data), the unit re-checked against the scope here.


def _trend_unit(url: str, scope: Scope, unit: str | None) -> str:
    """The unit a trend is about (the top of the scope for None), re-checked: ScopeError outside the scope."""
    target = unit if unit is not None else scope_root(url, scope)
    effective_units(url, scope, target)
    return target


@st.cache_data(ttl=TTL, show_spinner=False)
def unit_metric_history(url: str, scope: Scope, unit: str | None) -> pd.DataFrame:
    """Every standard metric of the unit (over its scope) in every period with data, across years
    (``v_unit_metrics``): period, metric, numerator, denominator, value (None when the denominator is 0)."""
    return _df(
        url,
        "SELECT period, metric, numerator, denominator, value FROM v_unit_metrics WHERE unit_code = :u "
        "ORDER BY period, metric",
        u=_trend_unit(url, scope, unit),
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def unit_score_history(url: str, scope: Scope, unit: str | None, scheme_id: str | None = None) -> pd.DataFrame:
    """The unit's total, grade, rank and veto in every period with data, across years, under the active scheme
    (or ``scheme_id``): period, total, grade, rank, veto."""
    scheme_cond = "active = 1" if scheme_id is None else "scheme_id = :scheme"
    params = {} if scheme_id is None else {"scheme": scheme_id}
    return _df(
        url,
        f"SELECT period, total, grade, rank, veto FROM unit_scores WHERE {scheme_cond} AND unit_code = :u "
        "ORDER BY period",
        u=_trend_unit(url, scope, unit),
        **params,
    )


# --- data / ETL status (city-wide roles only; pages check the role) -------------------------


@st.cache_data(ttl=60, show_spinner=False)
def etl_runs(url: str, role: str) -> pd.DataFrame:
    """The last 20 runs; a run's message (a failure may quote a source row) masked for IT."""
    df = _df(
        url,
        """SELECT run_id, started_at, ended_at, status, as_of, sources_file, message FROM etl_runs
                       ORDER BY run_id DESC LIMIT 20""",
    )
    df["message"] = df["message"].astype(object).where(df["message"].notna(), "")  # a run without one: blank
    return mask_frame(df, role, ("message",))


EXACT_COUNT_BYTES = 4 * 1024 * 1024  # PostgreSQL: tables up to this heap size are counted exactly (a few ms each)


@st.cache_data(ttl=TTL, show_spinner=False)
def table_rows(url: str) -> pd.DataFrame:
    """Rows per table (table_name, rows, estimated).  SQLite and MariaDB: exact ``COUNT(*)``.  PostgreSQL: exact
    for tables whose heap is at most ``EXACT_COUNT_BYTES``; for larger ones the planner's estimate (``estimated``
    True): the row density of the last ANALYZE (the ETL's, or autovacuum's) times the table's current pages, as the
    planner scales it.  An exact count of every table read the whole warehouse (1.75 s at 3x city scale)."""
    existing = set(sa.inspect(engine(url)).get_table_names())
    names = [n for n in COUNTED_TABLES if n in existing]  # constants, not user input
    estimates = _pg_row_estimates(url, names) if _dialect(url) == "postgresql" else {}
    rows = []
    for name in names:
        n = estimates.get(name)
        if n is None:
            n = int(_df(url, f"SELECT COUNT(*) AS n FROM {name}")["n"].iloc[0])
        rows.append((name, int(n), name in estimates))
    return pd.DataFrame(rows, columns=["table_name", "rows", "estimated"])


def _pg_row_estimates(url: str, names: list[str]) -> dict[str, int]:
    """PostgreSQL: the planner's row estimate of each table larger than ``EXACT_COUNT_BYTES`` (a partitioned
    table: the sum over its partitions), from the catalog alone.  Tables with neither statistics nor live-row
    counts (never analysed, statistics reset) are left out: they are counted."""
    if not names:
        return {}
    df = _df(
        url,
        """
        SELECT t.relname AS table_name, c.reltuples, c.relpages, pg_relation_size(c.oid) AS bytes,
               s.n_live_tup, current_setting('block_size')::bigint AS block
        FROM pg_class t
        JOIN pg_class c ON (t.relkind = 'r' AND c.oid = t.oid)
                        OR (t.relkind = 'p' AND c.relkind = 'r' AND c.oid IN (SELECT relid FROM pg_partition_tree(t.oid)))
        LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
        WHERE t.relname IN :names AND pg_table_is_visible(t.oid)""",
        names=tuple(names),
    )
    out: dict[str, int] = {}
    for name, heaps in df.groupby("table_name"):
        if int(heaps["bytes"].sum()) <= EXACT_COUNT_BYTES:
            continue
        total = 0.0
        for h in heaps.itertuples(index=False):
            if h.bytes == 0:
                continue
            if h.reltuples >= 0 and h.relpages > 0:  # the density of the last ANALYZE, on the pages there are now
                total += h.reltuples / h.relpages * (h.bytes / h.block)
            elif pd.notna(h.n_live_tup) and h.n_live_tup > 0:  # not analysed since it had rows: the live rows
                total += h.n_live_tup
            else:  # nothing known: counted
                break
        else:
            out[str(name)] = round(total)
    return out


@st.cache_data(ttl=TTL, show_spinner=False)
def quarantine_by_reason(url: str, role: str) -> pd.DataFrame:
    """Quarantined rows per table and reason; for a role without case content (IT) the values in the reasons
    are masked and the counts summed over the masked reasons."""
    df = _df(
        url,
        """SELECT table_name, reason, COUNT(*) AS count FROM v_quarantine
                       GROUP BY table_name, reason ORDER BY count DESC LIMIT 200""",
    )
    if not masked(role) or df.empty:
        return df
    df = df.assign(reason=df["reason"].map(mask_reason))
    return (
        df.groupby(["table_name", "reason"], as_index=False, sort=False)["count"]
        .sum()
        .sort_values("count", ascending=False, kind="stable")
        .reset_index(drop=True)
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def freshness(url: str, role: str) -> pd.DataFrame:
    """Latest source change seen per table (the incremental-load watermarks)."""
    df = _df(url, "SELECT table_name, updated_at AS latest, row_key FROM watermarks ORDER BY table_name")
    return mask_frame(df, role, ("row_key",))


# --- least privilege: what a role without case content (IT) sees ---------------------------------------------
# The IT role runs the platform: counts, tables, runs and technical fields, never case content.  Every query an
# IT page reads masks here, in one place: case numbers, person names, reasons (事由), titles, raw payloads.
MASKED_ROLES = ("it",)
MASK = "***"
_COLUMN_VALUE = re.compile(r"^([a-z_][a-z0-9_]*=)")
_COLUMN_ONLY = re.compile(r"^[a-z_][a-z0-9_]*(（\d+ 字符，上限 \d+）)?$")


def masked(role: str) -> bool:
    """True for a role that sees no case content."""
    return role in MASKED_ROLES


def mask_value(value: object) -> object:
    return value if value is None or (isinstance(value, float) and pd.isna(value)) or value == "" else MASK


def mask_reason(reason: object) -> object:
    """A quarantine reason without its value: '时间无法解析 registered_at=2026-13-01' -> '时间无法解析
    registered_at=***', '未知单位 140499000000' -> '未知单位 ***'; the category and the column stay."""
    if not isinstance(reason, str) or not reason:
        return reason
    head, sep, rest = reason.partition(" ")
    if not sep or _COLUMN_ONLY.match(rest):
        return reason
    m = _COLUMN_VALUE.match(rest)
    return f"{head} {m.group(1) if m else ''}{MASK}"


def mask_payload(payload: object) -> object:
    """A raw row as JSON with every value masked (the column names stay)."""
    if not isinstance(payload, str) or not payload:
        return payload
    try:
        data = json.loads(payload)
    except ValueError:
        return MASK
    if isinstance(data, dict):
        return json.dumps({k: mask_value(v) for k, v in data.items()}, ensure_ascii=False)
    return MASK


def mask_frame(df: pd.DataFrame, role: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """``df`` with ``columns`` masked for a role without case content (payload columns value by value)."""
    if not masked(role) or df.empty:
        return df
    out = df.copy()
    for col in columns:
        if col in out.columns:
            fn = mask_payload if col == "payload" else mask_value
            out[col] = out[col].astype(object).map(fn)
    return out


# --- the dashboard's own audit log ---------------------------------------------------------


def audit_rows(
    url: str, role: str, username: str | None = None, action: str | None = None, limit: int = ROW_LIMIT
) -> pd.DataFrame:
    """The newest audit rows; for a role without case content the objects (case numbers, incidents, ...) and
    the reasons (事由) are masked."""
    conds, params = ["1=1"], {}
    _equal_filters(conds, params, {"username": ("u", username), "action": ("a", action)})
    df = _df(
        url,
        f"""SELECT at, username, role, scope, page, action, object, reason FROM audit_log
                        WHERE {" AND ".join(conds)} ORDER BY id DESC LIMIT {int(limit)}""",
        **params,
    )
    return mask_frame(df, role, ("object", "reason"))


def failed_logins(url: str, column: str, value: str, since: datetime, after_id: int = 0) -> int:
    """Failed logins (audit rows ``login_failed``) with ``column`` (username | object: the client) = ``value``
    at or after ``since`` and after the row ``after_id``: what the lockout counts (``dashboard.security``)."""
    if column not in ("username", "object"):
        raise ValueError(column)
    df = _df(
        url,
        f"""SELECT COUNT(*) AS n FROM audit_log WHERE action = 'login_failed' AND {column} = :v AND at >= :since
            AND id > :after""",
        v=value,
        since=_ts(url, since),
        after=int(after_id),
    )
    return int(df["n"].iloc[0])


def last_login_id(url: str, username: str) -> int:
    """The id of the user's latest successful login row (0: none)."""
    df = _df(url, "SELECT MAX(id) AS n FROM audit_log WHERE action = 'login' AND username = :u", u=username)
    n = df["n"].iloc[0]
    return 0 if pd.isna(n) else int(n)


def audit_chain(url: str):  # noqa: ANN201 - etl.warehouse.audit.ChainState
    """The state of the audit log's hash chain (``etl.warehouse.audit.verify``)."""
    from etl.warehouse import audit as warehouse_audit

    return warehouse_audit.verify(engine(url))


def latest_sources_file(url: str) -> str | None:
    """The sources file of the latest successful ETL run (where the demo keeps its users.yaml); None if none."""
    try:
        df = _df(url, "SELECT sources_file FROM etl_runs WHERE status = 'ok' ORDER BY run_id DESC LIMIT 1")
    except Exception:  # noqa: BLE001 - no warehouse yet
        return None
    return None if df.empty or not df.iloc[0, 0] else str(df.iloc[0, 0])


def clear_caches() -> None:
    """Drop every cached query result (tests; after an ETL run; after a supervision write)."""
    st.cache_data.clear()


@st.cache_resource(show_spinner=False)
def _seen_runs() -> dict[str, object]:
    """url -> the latest ETL run this server process has seen (shared by every session)."""
    return {}


def refresh_after_etl(url: str) -> bool:
    """Drop every cached query result once a new ETL run has ended since the last look (one small query per
    script run), so that pages never show figures of the run before (published ones are frozen anyway).
    True when the caches were dropped."""
    try:
        latest = _df(url, "SELECT MAX(run_id) AS r, MAX(ended_at) AS e FROM etl_runs").iloc[0].tolist()
    except Exception:  # noqa: BLE001 - no warehouse yet: nothing cached from it either
        return False
    seen = _seen_runs()
    if url in seen and seen[url] != latest:
        seen[url] = latest
        clear_caches()
        return True
    seen[url] = latest
    return False


@st.cache_data(ttl=60, show_spinner=False)
def as_of(url: str) -> datetime:
    """The evaluation date of the latest successful ETL run (now when there is none)."""
    df = _df(url, "SELECT as_of FROM etl_runs WHERE status = 'ok' ORDER BY run_id DESC LIMIT 1", parse_dates=("as_of",))
    if df.empty or pd.isna(df["as_of"].iloc[0]):
        return datetime.now().replace(microsecond=0)
    return df["as_of"].iloc[0].to_pydatetime()


# --- source health (issue 16): whether each check of the latest run actually ran ----------------------------


@st.cache_data(ttl=60, show_spinner=False)
def source_health(url: str) -> pd.DataFrame:
    """The checks of the latest successful ETL run (``v_source_health``): check, performed, objects, detail.
    Empty before the first run that recorded them."""
    try:
        return _df(
            url,
            """SELECT h."check" AS check_name, h.performed, h.objects, h.detail FROM v_source_health h
               WHERE h.run_id = (SELECT MAX(run_id) FROM etl_runs WHERE status = 'ok') ORDER BY h."check" """,
        )
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # a warehouse of before source health
        return pd.DataFrame(columns=["check_name", "performed", "objects", "detail"])


def integrity_not_checked(url: str) -> str | None:
    """Why the latest run did not check media integrity (missing or empty media root ...), None when it did or
    when unknown: the integrity figures then say nothing about the originals (neither all fine nor all lost)."""
    health = source_health(url)
    row = health[health["check_name"] == "integrity"]
    if row.empty or int(row["performed"].iloc[0]) == 1:
        return None
    return str(row["detail"].iloc[0])


# --- the data-quality queue (issue 16): what the rules could not judge, per unit and kind --------------------

_DQ_COLUMNS = ["kind", "unit_code", "source", "table_name", "object_key", "detail", "first_seen_run", "last_seen_run"]


@st.cache_data(ttl=TTL, show_spinner=False)
def data_quality(url: str, scope: Scope, unit: str | None, role: str, kind: str | None = None) -> pd.DataFrame:
    """The queue's objects (``v_data_quality``) of the selected unit's subtree within the scope, optionally of one
    kind.  Empty for a warehouse of before the queue, and for a role without case content (IT: the counts of
    ``data_quality_counts`` only, never an object key)."""
    if masked(role):
        return pd.DataFrame(columns=_DQ_COLUMNS)
    units = effective_units(url, scope, unit)
    conds, params = [_in("unit_code", "units", units)], _scope_params(units)
    if kind:
        conds.append("kind = :kind")
        params["kind"] = kind
    try:
        return _df(
            url,
            f"SELECT {', '.join(_DQ_COLUMNS)} FROM v_data_quality WHERE {' AND '.join(conds)} "
            "ORDER BY unit_code, kind, table_name, object_key",
            **params,
        )
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return pd.DataFrame(columns=_DQ_COLUMNS)


@st.cache_data(ttl=TTL, show_spinner=False)
def data_quality_counts(url: str, scope: Scope, unit: str | None) -> pd.DataFrame:
    """Objects in the queue per unit and kind (no object keys): unit_code, kind, objects."""
    units = effective_units(url, scope, unit)
    try:
        return _df(
            url,
            f"SELECT unit_code, kind, COUNT(*) AS objects FROM v_data_quality WHERE {_in('unit_code', 'units', units)} "
            "GROUP BY unit_code, kind ORDER BY unit_code, kind",
            **_scope_params(units),
        )
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return pd.DataFrame(columns=["unit_code", "kind", "objects"])


@st.cache_data(ttl=TTL, show_spinner=False)
def not_judged_note(url: str, scope: Scope, unit: str | None, tables: tuple[str, ...] | None = None) -> str | None:
    """The note "N 个对象未判定" with the reasons (kinds and counts) for the selected unit's subtree, limited to the queue
    rows of ``tables`` (e.g. ``("incidents", "clips")`` on the coverage page; None: every table); None when the
    queue holds nothing there.  Pages show it with a link to the 数据质量 page."""
    from etl.rules.data_quality import KIND_NAMES

    units = effective_units(url, scope, unit)
    conds, params = [_in("unit_code", "units", units)], _scope_params(units)
    if tables:
        conds.append("table_name IN :tables")
        params["tables"] = list(tables)
    try:
        df = _df(
            url,
            f"SELECT kind, COUNT(*) AS objects FROM v_data_quality WHERE {' AND '.join(conds)} GROUP BY kind",
            **params,
        )
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return None
    if df.empty:
        return None
    order = list(KIND_NAMES)
    df = df.assign(_o=df["kind"].map(lambda k: order.index(k) if k in order else len(order))).sort_values("_o")
    reasons = "、".join(f"{KIND_NAMES.get(k, k)} {int(n):,}" for k, n in zip(df["kind"], df["objects"], strict=True))
    return f"{int(df['objects'].sum()):,} 个对象未判定或仅按部分数据判定：{reasons}"


def data_quality_kinds() -> dict[str, str]:
    """The queue's kinds -> Chinese names, in the queue's order (``etl.rules.data_quality.KINDS``)."""
    from etl.rules.data_quality import KIND_NAMES

    return dict(KIND_NAMES)


# --- the officer's record (issue 18, 民警执法记录档案): one officer, by police number ----------------------------
# Who may see an officer's record: the officer themself (``own``: the viewer's own police number, from the users
# file) and every user whose unit scope holds the officer's unit (``officers.unit_code``; for a number not in the
# roster, the unit ``v_officer_records`` gives it).  An officer's unit scope is empty (``etl.users``): they see
# their own record and nothing unit-wide.  Every function of this section asks ``officer_lookup`` first and
# returns empty frames unless the answer is "ok": the page cannot widen what it gets.

OFFICER_OK, OFFICER_FORBIDDEN, OFFICER_UNKNOWN = "ok", "forbidden", "unknown"
_RECORD_COLUMNS = RECORD_COLUMNS  # v_officer_records' columns (etl.scoring.officers)


@st.cache_data(ttl=TTL, show_spinner=False)
def officer_lookup(url: str, scope: Scope, own: str | None, police_no: str | None) -> dict:
    """Whether the viewer may see the record of ``police_no``: ``{"status", "police_no", "name", "unit_code"}``.

    status ``ok``; ``forbidden`` (an officer outside the scope, or any other number than their own for a viewer
    without a unit scope: nothing else is said); ``unknown`` (a number neither the roster nor any record knows,
    or not a police number at all: the page shows the data-quality notice).  ``police_no`` is returned only when
    it is a well-formed number (safe to show)."""
    from dashboard.logic import valid_police_no

    p = (police_no or "").strip()
    valid = valid_police_no(p)
    out = {"status": OFFICER_FORBIDDEN, "police_no": p if valid else None, "name": None, "unit_code": None}
    is_own = bool(own) and p == own
    if not valid:
        out["status"] = OFFICER_UNKNOWN if scope != () or is_own else OFFICER_FORBIDDEN
        return out
    known = _df(url, "SELECT name, unit_code FROM officers WHERE police_no = :p", p=p)
    if known.empty:
        known = _df(
            url,
            "SELECT NULL AS name, unit_code FROM v_officer_records WHERE police_no = :p AND unit_code IS NOT NULL "
            "ORDER BY period LIMIT 1",
            p=p,
        )
    if known.empty:
        out["status"] = OFFICER_UNKNOWN if is_own or scope != () else OFFICER_FORBIDDEN
        return out
    unit = known["unit_code"].iloc[0]
    unit = None if pd.isna(unit) else str(unit)
    if is_own or scope is None or (unit is not None and unit in set(scope)):
        name = known["name"].iloc[0]
        out.update(status=OFFICER_OK, name=None if pd.isna(name) else str(name), unit_code=unit)
    return out


def _officer_ok(url: str, scope: Scope, own: str | None, police_no: str | None) -> bool:
    return officer_lookup(url, scope, own, police_no)["status"] == OFFICER_OK


@st.cache_data(ttl=TTL, show_spinner=False)
def officer_ranking(url: str, scope: Scope, unit: str | None, period: str) -> pd.DataFrame:
    """The officers whose unit lies in the selected unit's subtree (within the scope), with their record of the
    period, ranked (``logic.officer_ranking``).  Empty for a viewer without a unit scope (an officer)."""
    from dashboard.logic import officer_ranking as rank

    eff = effective_units(url, scope, unit)
    df = _df(
        url,
        f"""
        SELECT r.police_no, o.name, r.unit_code, r.events_attended, r.events_fully_recorded, r.own_coverage,
               r.findings_av, r.findings_text, r.findings_access, r.findings_integrity
        FROM v_officer_records r LEFT JOIN officers o ON o.police_no = r.police_no
        WHERE r.period = :period AND {_in("r.unit_code", "units", eff)}
        ORDER BY r.police_no LIMIT 5000""",
        period=period,
        **_scope_params(eff),
    )
    return rank(df)


@st.cache_data(ttl=TTL, show_spinner=False)
def officer_record(url: str, scope: Scope, own: str | None, police_no: str, period: str) -> pd.DataFrame:
    """The officer's row of ``v_officer_records`` for the period (empty: no record, or not allowed)."""
    if not _officer_ok(url, scope, own, police_no):
        return pd.DataFrame(columns=list(_RECORD_COLUMNS))
    return _df(
        url,
        f"SELECT {', '.join(_RECORD_COLUMNS)} FROM v_officer_records WHERE police_no = :p AND period = :period",
        p=police_no,
        period=period,
    )


def trend_months(period: str, n: int = 24) -> list[str]:
    """The ``n`` months up to the period's last month, oldest first ('YYYY-MM')."""
    last = pd.Period(max(periods.months(period)), freq="M")
    return [str(last - k) for k in range(n - 1, -1, -1)]


@st.cache_data(ttl=TTL, show_spinner=False)
def officer_trend(url: str, scope: Scope, own: str | None, police_no: str, period: str) -> pd.DataFrame:
    """The officer's monthly records of the 24 months up to the period's end (month, events_attended,
    events_fully_recorded, own_coverage), oldest first; months without a record are left out."""
    cols = ["month", "events_attended", "events_fully_recorded", "own_coverage"]
    if not _officer_ok(url, scope, own, police_no):
        return pd.DataFrame(columns=cols)
    return _df(
        url,
        """
        SELECT period AS month, events_attended, events_fully_recorded, own_coverage FROM v_officer_records
        WHERE police_no = :p AND period IN :months ORDER BY period""",
        p=police_no,
        months=tuple(trend_months(period)),
    )


def _epoch_s(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).astype("datetime64[s]").astype("int64")


def _own_runs(url: str, police_no: str) -> tuple[object, object] | None:
    """The officer's clip runs (``clip_runs``: sorted disjoint epoch-second runs); None when the warehouse keeps
    none at all (then the own share is not known), empty arrays for an officer without a clip."""
    import numpy as np

    row = _df(url, "SELECT starts, ends FROM clip_runs WHERE police_no = :p", p=police_no)
    if row.empty:
        anyone = _df(url, "SELECT 1 AS x FROM clip_runs LIMIT 1")
        return None if anyone.empty else (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))

    from etl.warehouse.intervals import decode_runs  # the stored layout of clip_runs

    return decode_runs(row["starts"].iloc[0]), decode_runs(row["ends"].iloc[0])


@st.cache_data(ttl=TTL, show_spinner=False)
def officer_events(
    url: str, scope: Scope, own: str | None, police_no: str, period: str, limit: int = ROW_LIMIT
) -> pd.DataFrame:
    """The on-site events of the period the officer attended (newest first, limited): the event's coverage and
    ``own_share``, the share of the window the officer's own clips cover (what ``own_coverage`` averages)."""
    from etl.warehouse.intervals import own_shares  # the coverage's own arithmetic

    cols = ["incident_no", "unit_code", "arrived_at", "ended_at", "covered_fraction", "own_share", "status", "cause"]
    if not _officer_ok(url, scope, own, police_no):
        return pd.DataFrame(columns=cols)
    p = _period_params(url, period)
    ev = _df(
        url,
        f"""
        SELECT DISTINCT e.incident_no, e.unit_code, e.arrived_at, e.ended_at, e.window_s, e.covered_fraction,
               e.status, e.cause
        FROM incident_officers io JOIN event_coverage e ON e.incident_no = io.incident_no
        WHERE io.police_no = :p AND e.arrived_at >= :p_start AND e.arrived_at < :p_end
        ORDER BY e.arrived_at DESC, e.incident_no LIMIT {int(limit)}""",
        parse_dates=("arrived_at", "ended_at"),
        p=police_no,
        p_start=p["p_start"],
        p_end=p["p_end"],
    )
    runs = _own_runs(url, police_no)
    if ev.empty or runs is None:
        return ev.assign(own_share=float("nan"))[cols]
    ev["own_share"] = own_shares(_epoch_s(ev["arrived_at"]), _epoch_s(ev["ended_at"]), runs[0], runs[1])
    return ev[cols]


def officer_event_detail(url: str, scope: Scope, own: str | None, police_no: str, incident_no: str) -> dict:
    """``event_detail`` of an event the officer attended (every attending officer's clips: the officer's own
    record includes who recorded beside them); empty frames for any other event or a record not allowed."""
    attended = "SELECT 1 AS x FROM incident_officers WHERE incident_no = :n AND police_no = :p"
    allowed = _officer_ok(url, scope, own, police_no) and not _df(url, attended, n=incident_no, p=police_no).empty
    return event_detail(url, None, incident_no) if allowed else event_detail(url, (), incident_no)


@st.cache_data(ttl=TTL, show_spinner=False)
def officer_findings(
    url: str, scope: Scope, own: str | None, police_no: str, period: str, limit: int = ROW_LIMIT
) -> pd.DataFrame:
    """Findings of the period that name the officer (``v_finding_officers``), newest first, with the officer's
    cause hint and why they are named (basis), and the finding's review and appeal state."""
    cols = [
        "finding_key",
        "rule_id",
        "article",
        "unit_code",
        "incident_no",
        "case_no",
        "log_id",
        "clip_id",
        "occurred_at",
        "cause",
        "basis",
        "detail",
        "review_state",
        "appeal_state",
    ]
    if not _officer_ok(url, scope, own, police_no):
        return pd.DataFrame(columns=cols)
    # The officer's keys first, then those findings by key: joined in one statement, the planner reads every
    # finding of the period through the view's joins (2.4 s on the 10x warehouse) before it meets the few named.
    named = _df(url, "SELECT finding_key, cause, basis FROM v_finding_officers WHERE police_no = :p", p=police_no)
    keys = named["finding_key"].drop_duplicates().tolist()
    found = [
        _df(
            url,
            f"""
            SELECT f.finding_key, f.rule_id, f.article, f.unit_code, f.incident_no, f.case_no, f.log_id, f.clip_id,
                   f.occurred_at, f.detail, f.review_state, f.appeal_state
            FROM v_findings f WHERE f.finding_key IN :keys AND f.month IN :months
            ORDER BY f.occurred_at DESC, f.finding_key LIMIT {int(limit)}""",
            keys=tuple(keys[i : i + KEYS_PER_QUERY]),
            months=tuple(periods.months(period)),
        )
        for i in range(0, len(keys), KEYS_PER_QUERY)
    ]
    found = [f for f in found if len(f)]
    if not found:
        return pd.DataFrame(columns=cols)
    rows = pd.concat(found, ignore_index=True).infer_objects()  # (a part's all-empty column is of no type)
    rows = rows.merge(named, on="finding_key")
    rows = rows.sort_values(["occurred_at", "finding_key"], ascending=[False, True], kind="stable")
    return rows.head(limit)[cols].reset_index(drop=True)


@st.cache_data(ttl=TTL, show_spinner=False)
def officer_access(
    url: str, scope: Scope, own: str | None, police_no: str, period: str, limit: int = ROW_LIMIT
) -> pd.DataFrame:
    """The officer's actions in the access register (``access_log.user_no``) in the period, newest first, with the
    access rules each broke (the clip's unit: its device's)."""
    cols = ["log_id", "clip_id", "unit_code", "action", "at", "reason", "approver_no", "recipient", "findings"]
    if not _officer_ok(url, scope, own, police_no):
        return pd.DataFrame(columns=cols)
    p = _period_params(url, period)
    df = _df(
        url,
        f"""
        SELECT a.log_id, a.clip_id, d.unit_code, a.action, a.at, a.reason, a.approver_no, a.recipient
        FROM access_log a LEFT JOIN clips c ON c.clip_id = a.clip_id LEFT JOIN devices d ON d.device_sn = c.device_sn
        WHERE a.user_no = :p AND a.at >= :p_start AND a.at < :p_end
        ORDER BY a.at DESC, a.log_id LIMIT {int(limit)}""",
        p=police_no,
        p_start=p["p_start"],
        p_end=p["p_end"],
    )
    if df.empty:
        return df.assign(findings="")[cols]
    f = _df(
        url,
        "SELECT log_id, rule_id FROM v_findings WHERE log_id IN :ids AND rule_id IN :rules AND review_state <> 'exempted'",
        ids=tuple(df["log_id"]),
        rules=ACCESS_RULES,
    )
    per_log = f.groupby("log_id")["rule_id"].agg(lambda s: "、".join(sorted(set(s))))
    return df.assign(findings=[per_log.get(x, "") for x in df["log_id"]])[cols]


@st.cache_data(ttl=TTL, show_spinner=False)
def officer_access_months(url: str, scope: Scope, own: str | None, police_no: str, period: str) -> pd.DataFrame:
    """The officer's access-register actions per month and action over the 24 months up to the period's end."""
    if not _officer_ok(url, scope, own, police_no):
        return pd.DataFrame(columns=["month", "action", "actions"])
    months = trend_months(period)
    start, _ = periods.bounds(months[0])
    _, end = periods.bounds(months[-1])
    m = _month(url, "at")
    return _df(
        url,
        f"""
        SELECT {m} AS month, action, COUNT(*) AS actions FROM access_log
        WHERE user_no = :p AND at >= :a AND at < :b GROUP BY {m}, action ORDER BY month, action""",
        p=police_no,
        a=_ts(url, start),
        b=_ts(url, end),
    )


@st.cache_data(ttl=TTL, show_spinner=False)
def unknown_officer_refs(url: str, scope: Scope, police_no: str) -> int:
    """Rows of the data-quality queue in the scope that were refused for naming this unknown police number
    (kind ``unknown_officer``: staging's reason 未知人员 <number>)."""
    from dashboard.logic import valid_police_no

    if scope == () or not valid_police_no(police_no):
        return 0
    try:
        df = _df(
            url,
            f"SELECT COUNT(*) AS n FROM v_data_quality WHERE kind = 'unknown_officer' AND detail LIKE :pat "
            f"AND {_in('unit_code', 'units', scope)}",
            pat=f"%（未知人员 {police_no}）%",
            **_scope_params(scope),
        )
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return 0
    return int(df["n"].iloc[0]) if not df.empty else 0
