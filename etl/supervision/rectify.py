"""Rectification notices (整改通知, Art. 35): issue, answer, re-check, print, and what a page shows of them.  The
writes the pages and the CLI (``etl rectify notice|respond|close|print``) share.

The legal department issues a notice to a unit for a set of findings -- chosen by hand (``finding_keys``), every
standing finding (review state open or confirmed: not exempted) of the unit's scope in a period and optionally
a rule set (``period`` / ``rules``), or the SPOT-CHECK failures of a campaign in the unit's scope
(``campaign_id``) -- with a deadline (default: the issue date + ``rectify_days`` of config/rules.yaml), a text
and optionally an Art. 35 accountability recommendation (the officers named and the paragraph that applies).
The findings are copied onto the notice as they were at issue (``sup_notice_findings``).

States: ``open`` (issued) -> ``responded`` (the unit administrator answered with the measures taken) ->
``closed`` (accepted) or ``returned`` (sent back with a note, optionally a new deadline) -> ``responded`` ...
A notice is **overdue** when it is not closed and today is past its deadline, or it was closed on a day after
its deadline.  "Today" is ``etl.times.today()`` (``$AVSUP_TODAY`` when set: the clock tests set), never the
evaluation date; the view ``v_rectifications`` uses the database's current date.

Writes follow ``etl.supervision.actions``: checks first (a refusal raises ``SupervisionError`` /
``StaleWriteError`` with a Chinese message and writes nothing), then the guarded write, the append-only event
row (``sup_notice_events``) and the audit row.  A notice changes no score: no rescore.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl import periods, times
from etl.errors import StaleWriteError, SupervisionError
from etl.rules import config as rules_config
from etl.rules import spotcheck as spot
from etl.supervision import actions
from etl.users import User, org_units
from etl.warehouse.db import read_df
from etl.warehouse.schema import sup_campaigns, sup_notice_events, sup_notice_findings, sup_notices
from etl.warehouse.scope import scope_of, scope_pairs

STATES = ("open", "responded", "returned", "closed")
STATE_NAMES = {"open": "待整改", "responded": "已答复待复查", "returned": "已退回", "closed": "已办结"}
EVENT_NAMES = {"issue": "下发", "respond": "答复", "return": "退回", "accept": "验收通过"}
CLOSE_VERDICTS = {"accept": "accept", "accepted": "accept", "return": "return", "returned": "return"}
ISSUER_ROLES = ("legal",)  # issue, re-check (close)
RESPONDER_ROLES = ("unit_admin",)  # answer
PRINT_ROLES = ("legal", "unit_admin")
ART35_PARAGRAPHS = {  # the paragraphs of Art. 35 an accountability recommendation names (stored as given: "2")
    "1": "（一）因失职导致行政执法记录设备不能正常使用的",
    "2": "（二）不制作或不按要求制作执法全过程记录的",
    "3": "（三）违反规定擅自复制、保存、传播、泄露执法记录信息，造成严重后果的",
    "4": "（四）故意毁损、删除、修改执法全过程中文字或音像记录信息的",
    "5": "（五）不按规定储存或维护致使执法记录损毁、丢失，造成严重后果的",
    "6": "（六）其他违反执法全过程记录规定，造成严重后果的",
}


def _text(value: str | None, message: str) -> str:
    text = (value or "").strip() if isinstance(value, str) else ""
    if not text:
        raise SupervisionError(message)
    return text


def _day(value: object, what: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return datetime.strptime(str(value).strip()[:10], "%Y-%m-%d").date()
    except ValueError:
        raise SupervisionError(f"{what}格式应为 YYYY-MM-DD：{value}") from None


def _notice_row(conn: Connection, notice_id: object) -> dict:
    try:
        nid = int(notice_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SupervisionError(f"未知的整改通知编号：{notice_id}") from None
    row = conn.execute(sa.select(sup_notices).where(sup_notices.c.notice_id == nid)).mappings().first()
    if row is None:
        raise SupervisionError(f"未知的整改通知编号：{notice_id}")
    return dict(row)


def _accountability(conn: Connection, value: dict | None) -> str | None:
    """The recommendation as stored (JSON ``{"officers": [...], "paragraph": ...}``); None when not given."""
    if not value:
        return None
    if not isinstance(value, dict):
        raise SupervisionError("追责建议应包含被建议追责人员（officers）和第三十五条适用项（paragraph）")
    raw = value.get("officers") or []
    officers = [o.strip() for o in (raw.split(",") if isinstance(raw, str) else raw) if str(o).strip()]
    officers = list(dict.fromkeys(str(o).strip() for o in officers))
    paragraph = str(value.get("paragraph") or "").strip()
    if not officers and not paragraph:
        return None
    if not officers:
        raise SupervisionError("追责建议须列明被建议追责的人员（警号）")
    if not paragraph:
        raise SupervisionError("追责建议须写明适用第三十五条的哪一项")
    known = {
        str(p)
        for (p,) in conn.execute(
            sa.text("SELECT police_no FROM officers WHERE police_no IN :p").bindparams(
                sa.bindparam("p", expanding=True)
            ),
            {"p": officers},
        )
    }
    unknown = [o for o in officers if o not in known]
    if unknown:
        raise SupervisionError(f"追责建议中有未知的警号：{'、'.join(unknown)}")
    out = {"officers": officers, "paragraph": paragraph}
    note = str(value.get("note") or "").strip()
    if note:
        out["note"] = note
    return json.dumps(out, ensure_ascii=False)


_COUNTING_SQL = """
    SELECT finding_key, rule_id, article, unit_code, month, detail, review_state FROM v_findings"""


def _selected(
    conn: Connection,
    unit_scope: set[str],
    unit_code: str,
    *,
    finding_keys: Sequence[str] | str | None,
    period: str | None,
    rules: Sequence[str] | str | None,
    campaign_id: int | None,
) -> tuple[pd.DataFrame, str, str | None, str | None]:
    """The findings a notice names (finding_key, rule_id, article, unit_code, month, detail), its basis,
    basis_ref and period."""
    chosen = [b for b, v in (("findings", finding_keys), ("period", period), ("campaign", campaign_id)) if v]
    if len(chosen) != 1:
        raise SupervisionError("请选择整改依据之一：指定问题、某期间的全部问题，或某次抽查的不合格问题")
    basis = chosen[0]
    if basis == "findings":
        keys = finding_keys.split(",") if isinstance(finding_keys, str) else list(finding_keys or [])
        keys = list(dict.fromkeys(str(k).strip() for k in keys if str(k).strip()))
        if not keys:
            raise SupervisionError("请至少选择一个问题")
        df = read_df(
            conn,
            sa.text(_COUNTING_SQL + " WHERE finding_key IN :k").bindparams(sa.bindparam("k", expanding=True)),
            {"k": keys},
        )
        unknown = [k for k in keys if k not in set(df["finding_key"])]
        if unknown:
            raise SupervisionError(f"未知的问题编号：{'、'.join(unknown[:5])}{'等' if len(unknown) > 5 else ''}")
        foreign = df[~df["unit_code"].astype(str).isin(unit_scope)]
        if not foreign.empty:
            raise SupervisionError(
                f"问题 {'、'.join(foreign['finding_key'].head(5))} 不属于单位 {unit_code} 及其下级单位，不能列入该单位的整改通知"
            )
        months = sorted(set(df["month"].dropna()))
        return df, basis, None, months[0] if len(months) == 1 else None
    if basis == "period":
        try:
            p = periods.parse(period)  # type: ignore[arg-type]
        except periods.PeriodError as exc:
            raise SupervisionError(str(exc)) from None
        wanted = rules.split(",") if isinstance(rules, str) else list(rules or [])
        wanted = [str(r).strip() for r in wanted if str(r).strip()]
        df = read_df(
            conn,
            sa.text(_COUNTING_SQL + " WHERE unit_code IN :u AND month IN :m AND review_state <> 'exempted'").bindparams(
                sa.bindparam("u", expanding=True), sa.bindparam("m", expanding=True)
            ),
            {"u": sorted(unit_scope), "m": list(p.months)},
        )
        if wanted:
            df = df[df["rule_id"].isin(wanted)]
        ref = p.code + (f" {','.join(wanted)}" if wanted else "")
        if df.empty:
            raise SupervisionError(f"单位 {unit_code} 在 {p.code} 没有{'所选规则的' if wanted else ''}待整改问题")
        return df.sort_values("finding_key").reset_index(drop=True), basis, ref, p.code
    try:
        cid = int(campaign_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SupervisionError(f"未知的抽查编号：{campaign_id}") from None
    camp = conn.execute(sa.select(sup_campaigns.c.period).where(sup_campaigns.c.campaign_id == cid)).first()
    if camp is None:
        raise SupervisionError(f"未知的抽查编号：{campaign_id}")
    df = read_df(
        conn,
        _COUNTING_SQL + " WHERE rule_id = :r AND finding_key LIKE :k",
        {"r": spot.RULE_ID, "k": f"{spot.RULE_ID}:%:{cid}"},
    )
    df = df[df["finding_key"].str.endswith(f":{cid}") & df["unit_code"].astype(str).isin(unit_scope)]
    df = df[df["review_state"] != "exempted"]
    if df.empty:
        raise SupervisionError(f"抽查 {cid} 中没有单位 {unit_code} 及其下级单位的不合格问题")
    return df.sort_values("finding_key").reset_index(drop=True), basis, str(cid), str(camp[0])


def issue(
    target: Engine | Connection,
    user: User,
    unit_code: str,
    *,
    finding_keys: Sequence[str] | str | None = None,
    period: str | None = None,
    rules: Sequence[str] | str | None = None,
    campaign_id: int | None = None,
    deadline: date | str | None = None,
    text: str,
    accountability: dict | None = None,
    reason: str,
    page: str = "cli",
    today: date | None = None,
) -> dict:
    """Issue a rectification notice to ``unit_code`` (legal department); ``{"notice_id", "findings": n,
    "deadline"}``.

    One basis: ``finding_keys`` (each must be a finding now, of the unit or a unit below it), ``period`` with
    optional ``rules`` (every finding not exempted of the unit's scope in the period), or ``campaign_id`` (its
    SPOT-CHECK failures in the unit's scope).  ``deadline`` defaults to ``today`` (``etl.times.today()``) +
    ``rectify_days``.  Refused: empty text or reason, a role other than legal, an unknown unit or one outside the
    user's scope, findings of another unit, no finding selected, a deadline before the issue date, a bad
    accountability recommendation.
    """
    why = actions._reason(reason)
    body = _text(text, "请填写整改通知的内容（整改要求）")
    actions._role(user, ISSUER_ROLES, "下发整改通知")
    day = today or times.today()
    due = _day(deadline, "整改期限")
    if due is not None and due < day:
        raise SupervisionError(f"整改期限 {due:%Y-%m-%d} 早于下发日期 {day:%Y-%m-%d}")
    unit = (unit_code or "").strip()
    at = times.now()
    at = at if at.date() == day else datetime.combine(day, at.time())
    with actions._transaction(target) as conn:
        units = org_units(conn)
        if unit not in set(units["unit_code"].astype(str)):
            raise SupervisionError(f"未知的单位代码：{unit or '（空）'}")
        actions._scope(user, unit, f"单位 {unit} ")
        unit_scope = scope_of(units, unit)
        chosen, basis, ref, period_code = _selected(
            conn,
            unit_scope,
            unit,
            finding_keys=finding_keys,
            period=period,
            rules=rules,
            campaign_id=campaign_id,
        )
        if user.scope is not None:
            outside = chosen[~chosen["unit_code"].astype(str).isin(set(user.scope))]
            if not outside.empty:
                raise SupervisionError(f"问题 {outside['finding_key'].iloc[0]} 不在当前用户的管辖范围内")
        if due is None:
            days = rules_config.load()["params"].get("rectify_days", 15)
            due = day + timedelta(days=int(days))
        recommendation = _accountability(conn, accountability)
        nid = conn.execute(
            sa.insert(sup_notices),
            {
                "unit_code": unit,
                "issued_by": user.username,
                "issued_at": at,
                "deadline": due,
                "text": body,
                "basis": basis,
                "basis_ref": ref,
                "period": period_code or f"{day:%Y-%m}",
                "accountability": recommendation,
                "state": "open",
                "version": 1,
            },
        ).inserted_primary_key[0]
        nid = int(nid)
        conn.execute(
            sa.insert(sup_notice_findings),
            [
                {
                    "notice_id": nid,
                    "finding_key": r["finding_key"],
                    "rule_id": r["rule_id"],
                    "article": _none(r["article"]),
                    "unit_code": _none(r["unit_code"]),
                    "month": _none(r["month"]),
                    "detail": _none(r["detail"]),
                }
                for r in chosen.to_dict("records")
            ],
        )
        conn.execute(
            sa.insert(sup_notice_events),
            {"notice_id": nid, "kind": "issue", "text": body, "deadline": due, "by_user": user.username, "at": at},
        )
        actions._audit(
            conn,
            user,
            page,
            "rectify:issue",
            f"整改通知 {nid}（{unit}，{len(chosen)} 个问题，期限 {due:%Y-%m-%d}）",
            why,
            at,
        )
    return {"notice_id": nid, "findings": len(chosen), "deadline": due}


def _none(value: object) -> object:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def respond(
    target: Engine | Connection,
    user: User,
    notice_id: int,
    *,
    text: str,
    expected_version: int | None = None,
    page: str = "cli",
    reason: str | None = None,
) -> int:
    """The unit administrator of the notice's scope answers with the measures taken; returns the event id.

    Possible while the notice is open, returned or already answered (a further answer adds to it); refused on a
    closed notice, an empty answer, a role other than unit administrator, a notice outside the user's scope, a
    stale version.  ``reason`` (the audit's; default: the answer).
    """
    body = _text(text, "请填写整改措施（答复内容）")
    why = (reason or "").strip() or body
    actions._role(user, RESPONDER_ROLES, "答复整改通知")
    at = times.now()
    with actions._transaction(target) as conn:
        row = _notice_row(conn, notice_id)
        nid = int(row["notice_id"])
        actions._scope(user, row["unit_code"], f"整改通知 {nid} ")
        if row["state"] == "closed":
            raise SupervisionError(f"整改通知 {nid} 已办结，不能再答复")
        guard = actions._stale(int(row["version"]), expected_version, f"整改通知 {nid} ")
        _guarded(conn, nid, guard, state="responded")
        eid = conn.execute(
            sa.insert(sup_notice_events),
            {"notice_id": nid, "kind": "respond", "text": body, "deadline": None, "by_user": user.username, "at": at},
        ).inserted_primary_key[0]
        actions._audit(conn, user, page, "rectify:respond", f"整改通知 {nid}", why, at)
    return int(eid)


def _guarded(conn: Connection, nid: int, guard: int, **values: object) -> None:
    updated = conn.execute(
        sa.update(sup_notices)
        .where(sup_notices.c.notice_id == nid, sup_notices.c.version == guard)
        .values(version=sup_notices.c.version + 1, **values)
    )
    if updated.rowcount != 1:
        raise StaleWriteError(f"整改通知 {nid} 已被他人更新，请刷新后重试")


def close(
    target: Engine | Connection,
    user: User,
    notice_id: int,
    *,
    verdict: str,
    note: str,
    new_deadline: date | str | None = None,
    expected_version: int | None = None,
    page: str = "cli",
    reason: str | None = None,
    today: date | None = None,
) -> int:
    """The legal department re-checks an answered notice: ``accept`` closes it, ``return`` sends it back with the
    note (``new_deadline``: optionally a later deadline, not before today); returns the event id.

    Refused: an empty note, an unknown verdict, a role other than legal, a notice outside the user's scope, a
    closed notice or one not answered yet, a new deadline with ``accept`` or before today, a stale version.
    """
    text = _text(note, "请填写复查意见")
    why = (reason or "").strip() or text
    decided = CLOSE_VERDICTS.get((verdict or "").strip().lower())
    if decided is None:
        raise SupervisionError(f"复查结论应为 accept（验收通过）或 return（退回）：{verdict or '（空）'}")
    actions._role(user, ISSUER_ROLES, "复查整改通知")
    day = today or times.today()
    due = _day(new_deadline, "新的整改期限")
    if due is not None and decided == "accept":
        raise SupervisionError("验收通过时不能设定新的整改期限")
    if due is not None and due < day:
        raise SupervisionError(f"新的整改期限 {due:%Y-%m-%d} 早于今天 {day:%Y-%m-%d}")
    at = times.now()
    at = at if at.date() == day else datetime.combine(day, at.time())
    with actions._transaction(target) as conn:
        row = _notice_row(conn, notice_id)
        nid = int(row["notice_id"])
        actions._scope(user, row["unit_code"], f"整改通知 {nid} ")
        if row["state"] == "closed":
            raise SupervisionError(f"整改通知 {nid} 已办结")
        if row["state"] != "responded":
            raise SupervisionError(f"整改通知 {nid} 尚未答复（{STATE_NAMES[row['state']]}），不能复查")
        guard = actions._stale(int(row["version"]), expected_version, f"整改通知 {nid} ")
        if decided == "accept":
            _guarded(conn, nid, guard, state="closed", closed_at=at, closed_by=user.username)
        else:
            _guarded(conn, nid, guard, state="returned", **({"deadline": due} if due is not None else {}))
        eid = conn.execute(
            sa.insert(sup_notice_events),
            {"notice_id": nid, "kind": decided, "text": text, "deadline": due, "by_user": user.username, "at": at},
        ).inserted_primary_key[0]
        actions._audit(conn, user, page, f"rectify:{decided}", f"整改通知 {nid}", why, at)
    return int(eid)


# --- reads -------------------------------------------------------------------------------------------------

NOTICE_COLUMNS = [
    "notice_id",
    "unit_code",
    "issued_by",
    "issued_at",
    "deadline",
    "state",
    "overdue",
    "findings",
    "closed_at",
    "closed_by",
    "responded_at",
    "basis",
    "basis_ref",
    "period",
    "text",
    "accountability",
    "version",
]


def overdue(frame: pd.DataFrame, today: date) -> pd.Series:
    """0/1 per notice (``deadline``, ``state``, ``closed_at``): not closed and ``today`` past the deadline, or
    closed on a day after it."""
    if frame.empty:
        return pd.Series(dtype=int)
    deadline = pd.to_datetime(frame["deadline"]).dt.normalize()
    closed_day = pd.to_datetime(frame["closed_at"]).dt.normalize()
    is_closed = frame["state"] == "closed"
    late_open = ~is_closed & (pd.Timestamp(today) > deadline)
    late_closed = is_closed & (closed_day > deadline)
    return (late_open | late_closed).astype(int)


def notices(
    conn: Connection | Engine, scope: set[str] | Sequence[str] | None = None, today: date | None = None
) -> pd.DataFrame:
    """The notices to units in ``scope`` (None: all), newest first (``NOTICE_COLUMNS``: the columns of
    ``v_rectifications`` + text, accountability (a dict or None)); ``overdue`` against ``today``
    (default ``etl.times.today()``), ``deadline`` a date."""
    df = read_df(
        conn,
        """SELECT r.notice_id, r.unit_code, r.issued_by, r.issued_at, r.deadline, r.state, r.findings, r.closed_at,
                  r.closed_by, r.responded_at, r.basis, r.basis_ref, r.period, r.version, n.text, n.accountability
           FROM v_rectifications r JOIN sup_notices n ON n.notice_id = r.notice_id ORDER BY r.notice_id DESC""",
        parse_dates=["issued_at", "closed_at", "responded_at"],
    )
    if scope is not None:
        df = df[df["unit_code"].astype(str).isin(set(scope))].reset_index(drop=True)
    df["deadline"] = pd.to_datetime(df["deadline"]).dt.date if not df.empty else pd.Series(dtype=object)
    df["overdue"] = overdue(df, today or times.today()) if not df.empty else pd.Series(dtype=int)
    df["accountability"] = [json.loads(a) if isinstance(a, str) and a else None for a in df["accountability"]]
    df["findings"] = df["findings"].astype(int) if not df.empty else df["findings"]
    return df[NOTICE_COLUMNS]


def notice(conn: Connection | Engine, notice_id: int, today: date | None = None) -> dict | None:
    """One notice: its ``notices`` row as a dict plus ``unit_name``, ``findings`` (frame: finding_key, rule_id,
    article, unit_code, month, detail, as copied at issue, with ``review_state`` now and ``orphaned``) and
    ``events`` (frame: id, kind, text, deadline, by_user, at; oldest first); None when unknown."""
    with actions._reading(conn) as c:
        df = notices(c, None, today)
        df = df[df["notice_id"] == int(notice_id)]
        if df.empty:
            return None
        row = df.iloc[0].to_dict()
        row["findings_count"] = int(row.pop("findings"))
        found = read_df(
            c,
            """SELECT nf.finding_key, nf.rule_id, nf.article, nf.unit_code, nf.month, nf.detail,
                      v.review_state, v.occurred_at, CASE WHEN v.finding_key IS NULL THEN 1 ELSE 0 END AS orphaned
               FROM sup_notice_findings nf LEFT JOIN v_findings v ON v.finding_key = nf.finding_key
               WHERE nf.notice_id = :n ORDER BY nf.finding_key""",
            {"n": int(notice_id)},
            parse_dates=["occurred_at"],
        )
        events = read_df(
            c,
            sa.select(sup_notice_events)
            .where(sup_notice_events.c.notice_id == int(notice_id))
            .order_by(sup_notice_events.c.id),
        )
        name = c.execute(sa.text("SELECT name FROM org_units WHERE unit_code = :u"), {"u": row["unit_code"]}).scalar()
    row["unit_name"] = name
    row["findings"] = found
    row["events"] = events
    return {k: (None if not isinstance(v, (pd.DataFrame, dict, list)) and _na(v) else v) for k, v in row.items()}


def _na(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def ontime_rate(notices_frame: pd.DataFrame, units_frame: pd.DataFrame, period: str, today: date) -> pd.DataFrame:
    """整改按期完成率 per unit over its scope (a unit = itself and every unit below it, like the other metrics):
    ``unit_code, numerator, denominator, value``.

    Denominator: the notices of the scope whose deadline falls in ``period`` and whose outcome is known on
    ``today`` -- closed, or past the deadline (``today`` > deadline) without being closed.  Numerator: of those,
    the ones closed on or before their deadline.  A notice still open before its deadline is not counted yet.
    Units whose denominator is 0 are left out; ``value`` = numerator / denominator.
    """
    cols = ["unit_code", "numerator", "denominator", "value"]
    if notices_frame is None or notices_frame.empty or units_frame is None or units_frame.empty:
        return pd.DataFrame(columns=cols)
    p = periods.parse(period)
    df = notices_frame.copy()
    deadline = pd.to_datetime(df["deadline"]).dt.normalize()
    closed_day = pd.to_datetime(df["closed_at"]).dt.normalize()
    closed = df["state"] == "closed"
    in_period = deadline.dt.strftime("%Y-%m").isin(p.months)
    known = closed | (pd.Timestamp(today) > deadline)
    df = df[in_period & known].assign(on_time=(closed & (closed_day <= deadline))[in_period & known].astype(int))
    if df.empty:
        return pd.DataFrame(columns=cols)
    pairs = scope_pairs(units_frame)
    joined = df[["unit_code", "on_time"]].astype({"unit_code": str}).merge(pairs, on="unit_code")
    out = joined.groupby("scope_unit").agg(numerator=("on_time", "sum"), denominator=("on_time", "size")).reset_index()
    out = out.rename(columns={"scope_unit": "unit_code"})
    out["numerator"] = out["numerator"].astype(float)
    out["denominator"] = out["denominator"].astype(float)
    out["value"] = out["numerator"] / out["denominator"]
    return out.sort_values("unit_code").reset_index(drop=True)[cols]


# --- the printable notice ------------------------------------------------------------------------------------


def print_notice(
    target: Engine | Connection,
    user: User,
    notice_id: int,
    out: Path | str,
    reason: str,
    *,
    page: str = "cli",
) -> Path:
    """Write the printable 整改通知书 (.docx, ``etl.reports.notice_docx.build_notice``) of a notice to ``out``;
    the legal department or the unit administrator of the notice's scope; audited.  Returns the path."""
    why = actions._reason(reason)
    actions._role(user, PRINT_ROLES, "打印整改通知书")
    from etl.reports.notice_docx import build_notice  # imported here: python-docx only when printing

    at = times.now()
    with actions._reading(target) as conn:
        found = notice(conn, notice_id)
        if found is None:
            raise SupervisionError(f"未知的整改通知编号：{notice_id}")
        actions._scope(user, found["unit_code"], f"整改通知 {notice_id} ")
        units = read_df(conn, "SELECT unit_code, name, parent_code, level FROM org_units ORDER BY unit_code")
        named = (found["accountability"] or {}).get("officers") or [""]
        officers = read_df(
            conn,
            sa.text("SELECT police_no, name FROM officers WHERE police_no IN :p").bindparams(
                sa.bindparam("p", expanding=True)
            ),
            {"p": named},
        )
    data = build_notice(found, found["findings"], units, officers)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with actions._transaction(target) as conn:
        actions._audit(conn, user, page, "rectify:print", f"整改通知 {int(notice_id)} -> {path.name}", why, at)
    return path
