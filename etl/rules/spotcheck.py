"""SPOT-CHECK findings: the failed reviews of spot-check campaigns (随机抽查) as rows of ``findings``.

This module owns the checklist of a spot-check review (``CHECKLIST``: the point ids and their short Chinese
labels, from the Measures: Art. 16 (1)-(7), its voice-explanation sentence and Art. 11 for on-site events; the
text-record articles for cases) and the one definition of a SPOT-CHECK finding:

* one per sampled object whose current review failed (``sup_spotcheck_items.verdict = 'fail'``);
* ``finding_key`` ``SPOT-CHECK:<object_key>:<campaign_id>``; rule ``SPOT-CHECK``; ``article`` the failed
  points' articles joined with "、" (``第十六条、第十一条``); ``unit_code`` and ``occurred_at`` the object's
  current unit and time (an event's ``event_coverage`` row: arrival; a case's ``cases`` row: registration);
  ``incident_no`` or ``case_no``; ``month``; ``detail`` the campaign and the failed points with labels and notes;
* an object that left the sources gives no row (its item stays, orphaned, in ``v_spotcheck_items``).

The rows are kept in step with the supervision record twice: every ``etl run`` adds them in its rules step
(``etl.rules.findings.compute`` calls ``frame``: it reads the supervision tables, never writes them), and
``etl.supervision.spotcheck.record`` rewrites one item's row at once (``sync``).
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.warehouse.db import read_df
from etl.warehouse.schema import findings, sup_spotcheck_items

RULE_ID = "SPOT-CHECK"
KINDS = ("events", "cases")
RESULTS = ("pass", "fail", "n/a")

# point id -> short label.  Events: Art. 16 (1)-(7), its voice explanation (16.v) and Art. 11 (identity shown and
# recorded).  Cases: the article number of the text record checked (a point may be n/a for a case).
CHECKLIST: dict[str, list[tuple[str, str]]] = {
    "events": [
        ("16.1", "摄录执法活动开始和结束时间"),
        ("16.2", "摄录执法现场整体环境"),
        ("16.3", "摄录重要涉案涉事物品"),
        ("16.4", "摄录现场人员体貌特征和言行举止"),
        ("16.5", "摄录违法行为证据或纠纷事实证据"),
        ("16.6", "摄录现场开具、送达文书和采取措施情况"),
        ("16.7", "摄录其他应当记录的重要内容"),
        ("16.v", "重要时间和执法节点有语音说明"),
        ("11", "表明执法身份、出示证件并记录"),
    ],
    "cases": [
        ("10", "登记案件来源；不予立案书面告知"),
        ("11", "调查笔录记录执法人员姓名和出示证件情况"),
        ("12", "权利义务告知书；陈述申辩复核记录"),
        ("13", "询问、取证、检查等调查取证文书"),
        ("19", "行政强制措施法定文书"),
        ("20", "决定记录载明起草、审查、法律依据和证据"),
        ("21", "执法决定文书及负责人审批意见"),
        ("22", "简易程序记录"),
        ("23", "文书送达记录（送达回证等）"),
        ("24", "履行情况检查记录"),
        ("25", "催告书及送达"),
        ("26", "强制执行文书"),
        ("27", "申请法院强制执行全过程记录"),
    ],
}
KIND_NAMES = {"events": "现场执法", "cases": "案件"}

_DIGITS = "零一二三四五六七八九"


def _chinese_number(n: int) -> str:
    """1..99 in Chinese numerals as article numbers are written (十一, 二十, 三十五)."""
    tens, ones = divmod(int(n), 10)
    if tens == 0:
        return _DIGITS[ones]
    head = "" if tens == 1 else _DIGITS[tens]
    return f"{head}十{_DIGITS[ones] if ones else ''}"


def article_of(point_id: str) -> str:
    """The article a point checks: ``16.2`` and ``16.v`` -> 第十六条, ``11`` -> 第十一条."""
    return f"第{_chinese_number(int(str(point_id).split('.', 1)[0]))}条"


def point_ids(kind: str) -> list[str]:
    return [pid for pid, _ in CHECKLIST[kind]]


def label_of(kind: str, point_id: str) -> str:
    return dict(CHECKLIST.get(kind, [])).get(point_id, "")


def order_points(kind: str, ids: list[str] | set[str] | tuple[str, ...]) -> list[str]:
    """``ids`` in checklist order (unknown ids last, sorted)."""
    rank = {pid: i for i, pid in enumerate(point_ids(kind))}
    return sorted(set(ids), key=lambda p: (rank.get(p, len(rank)), p))


def finding_key(object_key: str, campaign_id: int) -> str:
    return f"{RULE_ID}:{object_key}:{int(campaign_id)}"


def articles(kind: str, failed: list[str]) -> str:
    """The failed points' articles, each once, in checklist order, joined with "、"."""
    out: list[str] = []
    for pid in order_points(kind, failed):
        art = article_of(pid)
        if art not in out:
            out.append(art)
    return "、".join(out)


def detail(kind: str, campaign_id: int, failed: list[tuple[str, str | None]], note: str | None = None) -> str:
    """The finding's detail: the campaign and each failed point with its label and note."""
    parts = []
    for pid, point_note in failed:
        text = f"{pid} {label_of(kind, pid)}".strip()
        parts.append(f"{text}（{point_note}）" if point_note else text)
    line = f"随机抽查（抽查编号 {int(campaign_id)}）{KIND_NAMES.get(kind, kind)}不合格：{'；'.join(parts)}"
    return f"{line}。备注：{note}" if note else line


FRAME_COLUMNS = ["finding_key", "rule_id", "article", "unit_code", "incident_no", "case_no", "occurred_at", "month",
                 "detail"]  # fmt: skip

# one branch per kind: a sampled event with its coverage row, a sampled case with its case (each a join of the
# supervision table with one distributed table: etl.warehouse.distribution)
_ITEMS_SQL = """
    SELECT * FROM (
        SELECT i.campaign_id, i.object_key, i.object_kind, i.note, i.failed_points, e.unit_code,
               e.arrived_at AS occurred_at
        FROM sup_spotcheck_items i JOIN event_coverage e ON e.incident_no = i.object_key
        WHERE i.verdict = 'fail' AND i.object_kind = 'events'
        UNION ALL
        SELECT i.campaign_id, i.object_key, i.object_kind, i.note, i.failed_points, c.unit_code,
               c.registered_at AS occurred_at
        FROM sup_spotcheck_items i JOIN cases c ON c.case_no = i.object_key
        WHERE i.verdict = 'fail' AND i.object_kind = 'cases'
    ) i WHERE 1 = 1"""
_POINTS_SQL = """
    SELECT p.campaign_id, p.object_key, p.point_id, p.note
    FROM sup_spotcheck_points p
    JOIN sup_spotcheck_items i ON i.campaign_id = p.campaign_id AND i.object_key = p.object_key
    WHERE i.verdict = 'fail' AND p.result = 'fail'"""


def frame(conn: Connection, *, campaign_id: int | None = None, object_key: str | None = None) -> pd.DataFrame:
    """The SPOT-CHECK findings now (``FRAME_COLUMNS``; ``occurred_at`` datetime64), of every failed item, or of
    one campaign / one item.  Reads only."""
    where, params = "", {}
    if campaign_id is not None:
        where += " AND i.campaign_id = :cid"
        params["cid"] = int(campaign_id)
    if object_key is not None:
        where += " AND i.object_key = :ok"
        params["ok"] = str(object_key)
    items = read_df(conn, _ITEMS_SQL + where, params, parse_dates=["occurred_at"])
    if items.empty:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in FRAME_COLUMNS})
        out["occurred_at"] = pd.Series(dtype="datetime64[ns]")
        return out
    points = read_df(conn, _POINTS_SQL + where, params)  # alias i there too: the items
    notes: dict[tuple[int, str], dict[str, str | None]] = {}
    for cid, key, pid, note in points.itertuples(index=False):
        notes.setdefault((int(cid), str(key)), {})[str(pid)] = None if pd.isna(note) or note == "" else str(note)
    rows = []
    for item in items.itertuples(index=False):
        cid, key, kind = int(item.campaign_id), str(item.object_key), str(item.object_kind)
        failed = notes.get((cid, key))
        if not failed:  # no point rows (e.g. an imported item without them): the item's failed_points
            failed = {p: None for p in str(item.failed_points or "").split(",") if p}
        ordered = order_points(kind, list(failed))
        note = None if pd.isna(item.note) or item.note == "" else str(item.note)
        rows.append(
            {
                "finding_key": finding_key(key, cid),
                "rule_id": RULE_ID,
                "article": articles(kind, ordered),
                "unit_code": item.unit_code,
                "incident_no": key if kind == "events" else None,
                "case_no": key if kind == "cases" else None,
                "occurred_at": item.occurred_at,
                "detail": detail(kind, cid, [(p, failed[p]) for p in ordered], note),
            }
        )
    out = pd.DataFrame(rows)
    out["occurred_at"] = pd.to_datetime(out["occurred_at"])
    out["month"] = out["occurred_at"].dt.strftime("%Y-%m")
    return out.sort_values("finding_key", kind="stable").reset_index(drop=True)[FRAME_COLUMNS]


def sync(conn: Connection, *, campaign_id: int | None = None, object_key: str | None = None) -> list[str]:
    """Rewrite the SPOT-CHECK rows of ``findings`` (all, one campaign's or one item's) from the supervision
    record, in the caller's transaction; the finding keys written."""
    stmt = sa.delete(findings).where(findings.c.rule_id == RULE_ID)
    if campaign_id is not None or object_key is not None:
        items = sa.select(sup_spotcheck_items.c.campaign_id, sup_spotcheck_items.c.object_key)
        if campaign_id is not None:
            items = items.where(sup_spotcheck_items.c.campaign_id == int(campaign_id))
        if object_key is not None:
            items = items.where(sup_spotcheck_items.c.object_key == str(object_key))
        keys = [finding_key(key, cid) for cid, key in conn.execute(items)]
        if not keys:
            return []
        stmt = stmt.where(findings.c.finding_key.in_(keys))
    conn.execute(stmt)
    rows = frame(conn, campaign_id=campaign_id, object_key=object_key)
    if rows.empty:
        return []
    records = [
        {k: (None if pd.isna(v) else (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v)) for k, v in r.items()}
        for r in rows.to_dict("records")
    ]
    conn.execute(sa.insert(findings), records)
    return rows["finding_key"].tolist()
