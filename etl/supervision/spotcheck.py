"""Spot-check campaigns (随机抽查, Art. 16, 11): draw a reproducible sample, record each review, and what a page
shows of them.  The writes the pages and the CLI (``etl spotcheck draw|record``) share.

A campaign has a period, a scope (``scope_unit``: NULL the city, else a unit and everything below it), an object
kind and a sample size per unit and a seed.  Its population:

* ``events``: on-site events (``event_coverage``) recorded by at least one clip (``covered_s > 0``: the same
  overlap of an officer's clips with the event window the coverage counts), by their arrival;
* ``cases``: cases with at least one ``case_actions`` row, by their registration;

whose month lies in the period and whose unit lies in the scope, without the objects already sampled in an
*open* campaign of the same period and kind.  Per unit (each object's own unit) ``min(per_unit, n)`` objects are
drawn with ``random.Random(f"{seed}:{unit_code}")`` from the unit's object keys sorted as Python text: the same
warehouse contents and seed give the same sample on SQLite and PostgreSQL.  A unit with fewer objects than the
sample size gives its whole population, and the campaign's ``draw_note`` says so.  The sample is stored.

Each sampled object is reviewed against ``CHECKLIST`` (``etl.rules.spotcheck``): every point pass / fail / n/a
with a note; points not named pass; the verdict is ``fail`` when any point fails.  A failed review is a
SPOT-CHECK finding (``etl.rules.spotcheck``), written to ``findings`` at once and the scores recomputed
(``etl.supervision.rescore``); every ``etl run`` writes it again from the record.

Writes follow ``etl.supervision.actions``: checks (reason, role, known object, scope, stale version) and a
refusal raises ``SupervisionError`` / ``StaleWriteError`` with a Chinese message and writes nothing; then the
guarded write, the append-only history row, the audit row, the rescore.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl import periods, times
from etl.errors import StaleWriteError, SupervisionError
from etl.rules import spotcheck as spot
from etl.supervision import actions
from etl.users import User, load_users, org_units, users_file
from etl.warehouse.db import read_df
from etl.warehouse.schema import (
    sup_campaigns,
    sup_spotcheck_history,
    sup_spotcheck_items,
    sup_spotcheck_points,
)
from etl.warehouse.scope import scope_of

CHECKLIST = spot.CHECKLIST
KINDS = spot.KINDS
KIND_NAMES = spot.KIND_NAMES
RESULTS = spot.RESULTS
RESULT_NAMES = {"pass": "合格", "fail": "不合格", "n/a": "不适用"}
VERDICT_NAMES = {"pass": "合格", "fail": "不合格"}
STATE_NAMES = {"open": "进行中", "closed": "已结束"}
ROLES = ("legal",)  # draw, record, close

_POPULATION_SQL = {
    "events": """
        SELECT incident_no AS object_key, unit_code, arrived_at AS occurred_at FROM event_coverage
        WHERE covered_s > 0 AND arrived_at >= :start AND arrived_at < :end""",
    "cases": """
        SELECT c.case_no AS object_key, c.unit_code, c.registered_at AS occurred_at FROM cases c
        WHERE c.registered_at >= :start AND c.registered_at < :end
          AND EXISTS (SELECT 1 FROM case_actions a WHERE a.case_no = c.case_no AND a.county_code = c.county_code)""",
}


# --- the draw --------------------------------------------------------------------------------------------


def population(conn: Connection, period: str, kind: str, units: set[str] | None) -> pd.DataFrame:
    """The objects a campaign of ``period`` and ``kind`` could draw in ``units`` (None: all): object_key,
    unit_code, occurred_at, month -- before the objects of open campaigns are taken out."""
    p = periods.parse(period)
    df = read_df(
        conn,
        _POPULATION_SQL[kind],
        {"start": times.ts_param(conn, p.start), "end": times.ts_param(conn, p.end)},
        parse_dates=["occurred_at"],
    )
    df = df[df["unit_code"].notna()]
    if units is not None:
        df = df[df["unit_code"].astype(str).isin(units)]
    df = df.assign(object_key=df["object_key"].astype(str), unit_code=df["unit_code"].astype(str))
    df["month"] = df["occurred_at"].dt.strftime("%Y-%m")
    return df[df["month"].isin(p.months)].reset_index(drop=True)


def sample(keys_by_unit: Mapping[str, Sequence[str]], per_unit: int, seed: int) -> list[tuple[str, str]]:
    """The draw: per unit (sorted), ``min(per_unit, n)`` keys from the unit's keys sorted as text, with
    ``random.Random(f"{seed}:{unit}")``; (unit_code, object_key) in draw order."""
    out: list[tuple[str, str]] = []
    for unit in sorted(keys_by_unit):
        keys = sorted({str(k) for k in keys_by_unit[unit]})
        rng = random.Random(f"{int(seed)}:{unit}")
        out.extend((unit, k) for k in rng.sample(keys, k=min(int(per_unit), len(keys))))
    return out


def _int(value: object, what: str) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(str(value).strip()) if isinstance(value, str) else int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SupervisionError(f"{what}应为整数：{value}") from None


def _kind(kind: str) -> str:
    k = (kind or "").strip().lower() if isinstance(kind, str) else ""
    if k not in KINDS:
        raise SupervisionError(f"抽查对象应为 events（现场执法）或 cases（案件）：{kind or '（空）'}")
    return k


def _period(period: str) -> str:
    try:
        return periods.parse(period).code
    except periods.PeriodError as exc:
        raise SupervisionError(str(exc)) from None


def _units(conn: Connection) -> pd.DataFrame:
    return org_units(conn)


def _reviewers(conn: Connection, reviewers: Sequence[str] | str | None) -> list[str]:
    """The user names assigned (lower-cased, each once); legal users of the users file when it can be found."""
    if reviewers is None:
        return []
    names = reviewers.split(",") if isinstance(reviewers, str) else list(reviewers)
    out: list[str] = []
    for n in names:
        name = str(n or "").strip().lower()
        if name and name not in out:
            out.append(name)
    path = users_file(conn)
    if out and path is not None and path.is_file():
        known = load_users(path)
        bad = [n for n in out if known.get(n, {}).get("role") not in ROLES]
        if bad:
            raise SupervisionError(f"抽查人员须为法制部门用户：{'、'.join(bad)}")
    return out


def draw(
    target: Engine | Connection,
    user: User,
    *,
    period: str,
    kind: str,
    per_unit: int,
    seed: int,
    unit_code: str | None = None,
    reviewers: Sequence[str] | str | None = None,
    reason: str,
    page: str = "cli",
) -> dict:
    """Draw and store a campaign (legal department); ``{"campaign_id", "drawn", "population", "short_units":
    [(unit_code, n)], "note"}``.

    ``unit_code``: the scope drawn (itself and every unit below it); None: the user's whole scope (the city, or
    a county legal office's county).  ``reviewers``: user names the items are assigned to in turn (None: any
    legal user).  Refused: empty reason, a role other than legal, a bad period or kind, ``per_unit`` < 1, a
    unit outside the user's scope or unknown, nothing to draw.
    """
    text = actions._reason(reason)
    actions._role(user, ROLES, "抽查")
    code = _period(period)
    k = _kind(kind)
    n_per = _int(per_unit, "每单位抽查数量")
    if n_per < 1:
        raise SupervisionError(f"每单位抽查数量至少为 1：{n_per}")
    s = _int(seed, "随机种子")
    at = times.now()
    with actions._transaction(target) as conn:
        units = _units(conn)
        known = set(units["unit_code"].astype(str))
        unit = (unit_code or "").strip() or None
        if unit is None and user.scope is not None:
            unit = user.unit_code
        if unit is not None and unit not in known:
            raise SupervisionError(f"未知的单位代码：{unit}")
        if unit is not None:
            actions._scope(user, unit, f"单位 {unit} ")
        scope = scope_of(units, unit) if unit is not None else None
        if user.scope is not None:  # never beyond the user's own scope
            scope = set(user.scope) if scope is None else scope & set(user.scope)
        pop = population(conn, code, k, scope)
        taken = {
            str(key)
            for (key,) in conn.execute(
                sa.select(sup_spotcheck_items.c.object_key)
                .join(sup_campaigns, sup_campaigns.c.campaign_id == sup_spotcheck_items.c.campaign_id)
                .where(
                    sup_campaigns.c.state == "open", sup_campaigns.c.period == code, sup_campaigns.c.object_kind == k
                )
            )
        }
        excluded = int(pop["object_key"].isin(taken).sum())
        pop = pop[~pop["object_key"].isin(taken)]
        if pop.empty:
            where = f"单位 {unit} 及下级单位" if unit else "全市"
            extra = f"（其中 {excluded} 个已在进行中的抽查中）" if excluded else ""
            raise SupervisionError(f"{where}在 {code} 没有可抽查的{KIND_NAMES[k]}对象{extra}")
        by_unit = {u: g["object_key"].tolist() for u, g in pop.groupby("unit_code", sort=True)}
        drawn = sample(by_unit, n_per, s)
        short = [(u, len(keys)) for u, keys in sorted(by_unit.items()) if len(keys) < n_per]
        notes = []
        if short:
            notes.append(
                f"{len(short)} 个单位可抽对象少于每单位 {n_per} 个，已全部抽取："
                + "、".join(f"{u}（{n} 个）" for u, n in short)
            )
        if excluded:
            notes.append(f"已排除进行中的同期抽查已抽取的对象 {excluded} 个")
        note = "；".join(notes) or None
        names = _reviewers(conn, reviewers)
        cid = conn.execute(
            sa.insert(sup_campaigns),
            {
                "period": code,
                "object_kind": k,
                "scope_unit": unit,
                "per_unit": n_per,
                "seed": s,
                "population": len(pop),
                "drawn": len(drawn),
                "draw_note": note,
                "reviewers": ",".join(names) or None,
                "reason": text,
                "created_by": user.username,
                "created_at": at,
                "state": "open",
                "version": 1,
            },
        ).inserted_primary_key[0]
        cid = int(cid)
        info = pop.set_index("object_key")
        rows = []
        for i, (u, key) in enumerate(drawn):
            obj = info.loc[key]
            rows.append(
                {
                    "campaign_id": cid,
                    "object_key": key,
                    "object_kind": k,
                    "unit_code": u,
                    "period": code,
                    "month": obj["month"],
                    "occurred_at": obj["occurred_at"].to_pydatetime(),
                    "draw_order": i + 1,
                    "assigned_to": names[i % len(names)] if names else None,
                    "version": 1,
                }
            )
        conn.execute(sa.insert(sup_spotcheck_items), rows)
        obj_text = f"抽查 {cid}（{code} {KIND_NAMES[k]}，{unit or '全市'}，每单位 {n_per}，种子 {s}）"
        actions._audit(conn, user, page, "spotcheck:draw", obj_text, text, at)
    return {"campaign_id": cid, "drawn": len(drawn), "population": len(pop), "short_units": short, "note": note}


# --- one review --------------------------------------------------------------------------------------------


def _campaign(conn: Connection, campaign_id: object) -> dict:
    try:
        cid = int(campaign_id)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SupervisionError(f"未知的抽查编号：{campaign_id}") from None
    row = conn.execute(sa.select(sup_campaigns).where(sup_campaigns.c.campaign_id == cid)).mappings().first()
    if row is None:
        raise SupervisionError(f"未知的抽查编号：{campaign_id}")
    return dict(row)


def _item_row(conn: Connection, campaign_id: int, object_key: str) -> dict | None:
    row = (
        conn.execute(
            sa.select(sup_spotcheck_items).where(
                sup_spotcheck_items.c.campaign_id == campaign_id, sup_spotcheck_items.c.object_key == object_key
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def _points(
    kind: str, points: Mapping[str, object] | None, fail: Sequence[str] | str | None
) -> dict[str, tuple[str, str | None]]:
    """Every checklist point of ``kind`` -> (result, note): ``points`` as given, ``fail`` failed, the rest pass."""
    ids = spot.point_ids(kind)
    out: dict[str, tuple[str, str | None]] = {pid: ("pass", None) for pid in ids}
    given: dict[str, tuple[str, str | None]] = {}
    for pid, value in (points or {}).items():
        p = str(pid).strip()
        if isinstance(value, str) or value is None:
            result, note = value, None
        else:
            seq = list(value)  # type: ignore[call-overload]
            result, note = (seq + [None, None])[:2]
        result = str(result or "").strip().lower()
        result = {"na": "n/a", "n-a": "n/a"}.get(result, result)
        if p not in ids:
            raise SupervisionError(f"未知的检查项：{p}（{KIND_NAMES[kind]}检查项为 {'、'.join(ids)}）")
        if result not in RESULTS:
            raise SupervisionError(
                f"检查项 {p} 的结果应为 pass（合格）、fail（不合格）或 n/a（不适用）：{result or '（空）'}"
            )
        note_text = str(note).strip() if note is not None else ""
        given[p] = (result, note_text or None)
    names = fail.split(",") if isinstance(fail, str) else list(fail or ())
    failed = [str(f).strip() for f in names if str(f).strip()]
    for p in failed:
        if p not in ids:
            raise SupervisionError(f"未知的检查项：{p}（{KIND_NAMES[kind]}检查项为 {'、'.join(ids)}）")
        if p in given and given[p][0] != "fail":
            raise SupervisionError(f"检查项 {p} 同时标记为「{RESULT_NAMES[given[p][0]]}」和「不合格」")
    out.update(given)
    for p in failed:
        out[p] = ("fail", given.get(p, ("fail", None))[1])
    return out


def record(
    target: Engine | Connection,
    user: User,
    campaign_id: int,
    object_key: str,
    *,
    points: Mapping[str, tuple[str, str | None]] | None = None,
    fail: Sequence[str] | str = (),
    note: str | None = None,
    reason: str,
    expected_version: int | None = None,
    page: str = "cli",
) -> dict:
    """Record the review of one sampled object (legal department); ``{"verdict", "failed_points", "finding_key"
    (None for a pass), "version", "history_id"}``.

    ``points``: point id -> (result, note) with result pass / fail / n/a; ``fail``: point ids that failed (the
    CLI's ``--fail``); points named in neither pass.  A review may be recorded again (it replaces the current
    one; the history keeps every one).  Refused: empty reason, a role other than legal, an unknown campaign, an
    object not in the campaign, an unknown point id, a closed campaign, an object outside the user's scope, a
    stale version.  The SPOT-CHECK finding of the item is written (or removed) at once and the scores recomputed.
    """
    text = actions._reason(reason)
    actions._role(user, ROLES, "记录抽查结果")
    key = (object_key or "").strip() if isinstance(object_key, str) else str(object_key or "")
    at = times.now()
    with actions._transaction(target) as conn:
        camp = _campaign(conn, campaign_id)
        cid = int(camp["campaign_id"])
        item = _item_row(conn, cid, key)
        if item is None:
            raise SupervisionError(f"对象 {key or '（空）'} 不在抽查 {cid} 的样本中")
        actions._scope(user, item["unit_code"], f"抽查对象 {key} ")
        if camp["state"] != "open":
            raise SupervisionError(f"抽查 {cid} 已结束，不能再记录结果")
        kind = str(item["object_kind"])
        result = _points(kind, points, fail)
        guard = actions._stale(int(item["version"]), expected_version, f"抽查对象 {key} ")
        failed = spot.order_points(kind, [p for p, (r, _) in result.items() if r == "fail"])
        verdict = "fail" if failed else "pass"
        note_text = (note or "").strip() or None
        updated = conn.execute(
            sa.update(sup_spotcheck_items)
            .where(
                sup_spotcheck_items.c.campaign_id == cid,
                sup_spotcheck_items.c.object_key == key,
                sup_spotcheck_items.c.version == guard,
            )
            .values(
                verdict=verdict,
                failed_points=",".join(failed) or None,
                note=note_text,
                reviewed_by=user.username,
                reviewed_at=at,
                version=sup_spotcheck_items.c.version + 1,
            )
        )
        if updated.rowcount != 1:
            raise StaleWriteError(f"抽查对象 {key} 已被他人更新，请刷新后重试")
        conn.execute(
            sa.delete(sup_spotcheck_points).where(
                sup_spotcheck_points.c.campaign_id == cid, sup_spotcheck_points.c.object_key == key
            )
        )
        conn.execute(
            sa.insert(sup_spotcheck_points),
            [
                {"campaign_id": cid, "object_key": key, "point_id": p, "result": r, "note": n}
                for p, (r, n) in result.items()
            ],
        )
        history_id = conn.execute(
            sa.insert(sup_spotcheck_history),
            {
                "campaign_id": cid,
                "object_key": key,
                "verdict": verdict,
                "failed_points": ",".join(failed) or None,
                "points": json.dumps({p: [r, n] for p, (r, n) in result.items()}, ensure_ascii=False),
                "note": note_text,
                "reason": text,
                "by_user": user.username,
                "at": at,
            },
        ).inserted_primary_key[0]
        what = f"{key} #抽查{cid}" + (f"（不合格：{'、'.join(failed)}）" if failed else "")
        actions._audit(conn, user, page, f"spotcheck:{verdict}", what, text, at)
        written = spot.sync(conn, campaign_id=cid, object_key=key)
        if item["verdict"] == "fail" or verdict == "fail":
            actions._rescore(conn)
    return {
        "verdict": verdict,
        "failed_points": failed,
        "finding_key": written[0] if written else None,
        "version": guard + 1,
        "history_id": int(history_id),
    }


def close_campaign(
    target: Engine | Connection,
    user: User,
    campaign_id: int,
    *,
    reason: str,
    expected_version: int | None = None,
    page: str = "cli",
) -> int:
    """End an open campaign (legal department of its scope); returns its new version.  Its items can no longer
    be recorded, and its objects may be drawn again by a new campaign of the same period.  Its findings stay."""
    text = actions._reason(reason)
    actions._role(user, ROLES, "结束抽查")
    at = times.now()
    with actions._transaction(target) as conn:
        camp = _campaign(conn, campaign_id)
        cid = int(camp["campaign_id"])
        actions._scope(user, camp["scope_unit"], f"抽查 {cid} ")
        if camp["state"] != "open":
            raise SupervisionError(f"抽查 {cid} 已结束")
        guard = actions._stale(int(camp["version"]), expected_version, f"抽查 {cid} ")
        updated = conn.execute(
            sa.update(sup_campaigns)
            .where(sup_campaigns.c.campaign_id == cid, sup_campaigns.c.version == guard)
            .values(state="closed", version=sup_campaigns.c.version + 1)
        )
        if updated.rowcount != 1:
            raise StaleWriteError(f"抽查 {cid} 已被他人更新，请刷新后重试")
        actions._audit(conn, user, page, "spotcheck:close", f"抽查 {cid}", text, at)
    return guard + 1


# --- reads -------------------------------------------------------------------------------------------------

CAMPAIGN_COLUMNS = [
    "campaign_id",
    "period",
    "object_kind",
    "scope_unit",
    "per_unit",
    "seed",
    "drawn",
    "reviewed",
    "failed",
    "created_by",
    "created_at",
    "state",
    "draw_note",
    "population",
    "reviewers",
    "reason",
    "version",
]
ITEM_COLUMNS = [
    "campaign_id",
    "object_kind",
    "object_key",
    "unit_code",
    "period",
    "verdict",
    "failed_points",
    "reviewed_by",
    "reviewed_at",
    "version",
    "assigned_to",
    "note",
    "draw_order",
    "month",
    "occurred_at",
    "campaign_state",
    "orphaned",
    "finding_key",
]


def _in(scope: set[str] | Sequence[str] | None, column: pd.Series) -> pd.Series:
    return pd.Series(True, index=column.index) if scope is None else column.astype(str).isin(set(scope))


def campaigns(conn: Connection | Engine, scope: set[str] | Sequence[str] | None = None) -> pd.DataFrame:
    """Every campaign with an item in ``scope`` (None: every campaign), newest first (``CAMPAIGN_COLUMNS``);
    ``drawn`` / ``reviewed`` / ``failed`` count the items in ``scope``."""
    with actions._reading(conn) as c:
        camps = read_df(c, sa.select(sup_campaigns))
        items = read_df(
            c,
            "SELECT campaign_id, unit_code, verdict FROM v_spotcheck_items",
        )
    if camps.empty:
        return pd.DataFrame(columns=CAMPAIGN_COLUMNS)
    items = items[_in(scope, items["unit_code"])]
    tally = items.groupby("campaign_id").agg(
        n=("verdict", "size"),
        reviewed=("verdict", lambda v: int(v.notna().sum())),
        failed=("verdict", lambda v: int((v == "fail").sum())),
    )
    out = camps.join(tally, on="campaign_id")
    if scope is not None:
        out = out[out["n"].fillna(0) > 0]
        out["drawn"] = out["n"]
    for col in ("drawn", "reviewed", "failed"):
        out[col] = out[col].fillna(0).astype(int)
    return out.sort_values("campaign_id", ascending=False).reset_index(drop=True)[CAMPAIGN_COLUMNS]


def items(conn: Connection | Engine, campaign_id: int, scope: set[str] | Sequence[str] | None = None) -> pd.DataFrame:
    """The sampled objects of a campaign in ``scope`` (None: all), in draw order (``ITEM_COLUMNS``: the columns
    of ``v_spotcheck_items``; ``finding_key`` of a failed one, ``orphaned`` 1 when the object left the sources)."""
    df = read_df(
        conn,
        "SELECT * FROM v_spotcheck_items WHERE campaign_id = :c ORDER BY draw_order",
        {"c": int(campaign_id)},
        parse_dates=["reviewed_at", "occurred_at"],
    )
    df = df[_in(scope, df["unit_code"])].reset_index(drop=True)
    df["finding_key"] = [
        spot.finding_key(k, c) if v == "fail" else None
        for k, c, v in zip(df["object_key"], df["campaign_id"], df["verdict"], strict=True)
    ]
    return df[ITEM_COLUMNS]


def item(conn: Connection | Engine, campaign_id: int, object_key: str) -> dict | None:
    """One sampled object: the ``v_spotcheck_items`` row as a dict plus ``points`` {point_id: (result, note)}
    (empty until reviewed), ``checklist`` [(point_id, label)], ``campaign`` (its row), ``history`` (frame of every
    review recorded, newest first); None when the object is not in the campaign."""
    with actions._reading(conn) as c:
        df = read_df(
            c,
            "SELECT * FROM v_spotcheck_items WHERE campaign_id = :c AND object_key = :k",
            {"c": int(campaign_id), "k": str(object_key)},
            parse_dates=["reviewed_at", "occurred_at"],
        )
        if df.empty:
            return None
        row = {k: (None if _missing(v) else v) for k, v in df.iloc[0].to_dict().items()}
        pts = c.execute(
            sa.select(
                sup_spotcheck_points.c.point_id, sup_spotcheck_points.c.result, sup_spotcheck_points.c.note
            ).where(
                sup_spotcheck_points.c.campaign_id == int(campaign_id),
                sup_spotcheck_points.c.object_key == str(object_key),
            )
        ).all()
        camp = c.execute(sa.select(sup_campaigns).where(sup_campaigns.c.campaign_id == int(campaign_id))).mappings()
        history = read_df(
            c,
            sa.select(sup_spotcheck_history)
            .where(
                sup_spotcheck_history.c.campaign_id == int(campaign_id),
                sup_spotcheck_history.c.object_key == str(object_key),
            )
            .order_by(sup_spotcheck_history.c.id.desc()),
        )
        campaign = dict(camp.first() or {})
    kind = str(row["object_kind"])
    order = {p: i for i, p in enumerate(spot.point_ids(kind))}
    row["points"] = {p: (r, n) for p, r, n in sorted(pts, key=lambda t: order.get(t[0], len(order)))}
    row["checklist"] = list(CHECKLIST[kind])
    row["campaign"] = campaign
    row["history"] = history
    row["finding_key"] = spot.finding_key(row["object_key"], int(campaign_id)) if row["verdict"] == "fail" else None
    return row


def _missing(value: object) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def event_timeline(conn: Connection | Engine, incident_no: str) -> dict:
    """What a reviewer sees of an on-site event: ``event`` (the incident and its coverage, a dict; None when
    unknown), ``window`` (arrived_at, ended_at), ``officers`` (frame: police_no, name), ``clips`` (frame:
    clip_id, police_no, device_sn, started_at, ended_at, file_path, present, sha256, linked -- the clips tagged
    with the event or of its officers overlapping its window), ``gaps`` (frame: gap_no, gap_start, gap_end,
    gap_s)."""
    n = str(incident_no)
    with actions._reading(conn) as c:
        ev = read_df(
            c,
            """SELECT e.incident_no, e.unit_code, e.arrived_at, e.ended_at, e.window_s, e.covered_s,
                      e.covered_fraction, e.gap_count, e.status, e.cause, e.officers, e.report_id,
                      i.category, i.received_at, i.case_no
               FROM event_coverage e LEFT JOIN incidents i ON i.incident_no = e.incident_no
               WHERE e.incident_no = :n""",
            {"n": n},
            parse_dates=["arrived_at", "ended_at", "received_at"],
        )
        officers = read_df(
            c,
            """SELECT io.police_no, o.name FROM incident_officers io
               LEFT JOIN officers o ON o.police_no = io.police_no WHERE io.incident_no = :n ORDER BY io.police_no""",
            {"n": n},
        )
        gaps = read_df(
            c,
            "SELECT gap_no, gap_start, gap_end, gap_s FROM event_gaps WHERE incident_no = :n ORDER BY gap_no",
            {"n": n},
            parse_dates=["gap_start", "gap_end"],
        )
        cols = """c.clip_id, c.police_no, c.device_sn, c.started_at, c.ended_at,
                  COALESCE(m.file_path, c.file_path) AS file_path, m.present, c.sha256, c.incident_no"""
        linked = read_df(
            c,
            f"SELECT {cols} FROM clips c LEFT JOIN media_files m ON m.clip_id = c.clip_id WHERE c.incident_no = :n",
            {"n": n},
            parse_dates=["started_at", "ended_at"],
        )
        frames = [linked]
        if not ev.empty and not officers.empty and pd.notna(ev["arrived_at"].iloc[0]):
            start, end = ev["arrived_at"].iloc[0], ev["ended_at"].iloc[0]
            end = start if pd.isna(end) else end
            overlap = read_df(
                c,
                sa.text(
                    f"SELECT {cols} FROM clips c LEFT JOIN media_files m ON m.clip_id = c.clip_id "
                    "WHERE c.police_no IN :officers AND c.started_at < :end AND c.ended_at > :start"
                ).bindparams(sa.bindparam("officers", expanding=True)),
                {
                    "officers": officers["police_no"].astype(str).tolist(),
                    "start": times.ts_param(c, start.to_pydatetime()),
                    "end": times.ts_param(c, end.to_pydatetime()),
                },
                parse_dates=["started_at", "ended_at"],
            )
            frames.append(overlap)
    clips = pd.concat([f for f in frames if not f.empty] or [linked], ignore_index=True)
    clips = clips.drop_duplicates("clip_id").sort_values(["started_at", "clip_id"]).reset_index(drop=True)
    clips["linked"] = (clips["incident_no"].astype(object) == n).astype(int)
    clips = clips.drop(columns=["incident_no"])
    event = None if ev.empty else {k: (None if _missing(v) else v) for k, v in ev.iloc[0].to_dict().items()}
    return {
        "event": event,
        "window": (event["arrived_at"], event["ended_at"]) if event else (None, None),
        "officers": officers,
        "clips": clips,
        "gaps": gaps,
    }


def case_timeline(conn: Connection | Engine, case_no: str) -> dict:
    """What a reviewer sees of a case: ``case`` (its row, a dict; None when unknown), ``officers``, ``actions``
    (by start), ``documents`` (by creation), ``deliveries`` (of its documents), ``clips`` (tagged with it)."""
    n = str(case_no)
    with actions._reading(conn) as c:
        case = read_df(
            c,
            "SELECT * FROM cases WHERE case_no = :n",
            {"n": n},
            parse_dates=["registered_at", "started_at", "start_approved_at", "decided_at", "closed_at"],
        )
        officers = read_df(
            c,
            """SELECT co.police_no, o.name, co.role FROM case_officers co
               LEFT JOIN officers o ON o.police_no = co.police_no WHERE co.case_no = :n ORDER BY co.police_no""",
            {"n": n},
        )
        acts = read_df(
            c,
            """SELECT action_id, action_type, started_at, ended_at, police_no FROM case_actions
               WHERE case_no = :n ORDER BY started_at, action_id""",
            {"n": n},
            parse_dates=["started_at", "ended_at"],
        )
        docs = read_df(
            c,
            """SELECT doc_id, action_id, doc_type, created_at, drafter_no, reviewer_no, approver_no, legal_basis,
                      party_signed, party_refused, officer_signed, witness_signed
               FROM case_documents WHERE case_no = :n ORDER BY created_at, doc_id""",
            {"n": n},
            parse_dates=["created_at"],
        )
        deliveries = read_df(
            c,
            """SELECT d.delivery_id, d.doc_id, doc.doc_type, d.method, d.delivered_at, d.receipt_signed,
                      d.postal_receipt, d.reason, d.entrustee, d.note
               FROM deliveries d JOIN case_documents doc ON doc.doc_id = d.doc_id
               WHERE doc.case_no = :n ORDER BY d.delivered_at, d.delivery_id""",
            {"n": n},
            parse_dates=["delivered_at"],
        )
        clips = read_df(
            c,
            """SELECT c.clip_id, c.police_no, c.device_sn, c.started_at, c.ended_at,
                      COALESCE(m.file_path, c.file_path) AS file_path, m.present, c.sha256
               FROM clips c LEFT JOIN media_files m ON m.clip_id = c.clip_id
               WHERE c.case_no = :n ORDER BY c.started_at, c.clip_id""",
            {"n": n},
            parse_dates=["started_at", "ended_at"],
        )
    row = None if case.empty else {k: (None if _missing(v) else v) for k, v in case.iloc[0].to_dict().items()}
    return {
        "case": row,
        "officers": officers,
        "actions": acts,
        "documents": docs,
        "deliveries": deliveries,
        "clips": clips,
    }
