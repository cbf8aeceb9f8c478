"""扣分明细: every lost point of every scored unit and item, traced to objects and findings.

Which object cost how many points is decided in one place, the scoring step:
``etl.scoring.lost_points.lost_points_by_level_detail`` returns one row per finding
behind a lost point with the points it costs each scored unit above it, by
level (a rate item's unclean object costs points ÷ objects *of that unit*,
shared by its findings; a deduction its configured points; a veto finding its
share of the cap; metric and floor rows belong to one unit).  This module only
*presents* those rows for a legal officer, each object or finding **once**,
with one points column per level (基层所队, 县（区）局, 市局) instead of one
row per level:

* rate items: one row per **unclean object**, with every finding that made it
  unclean (rules, articles, details) and the points it cost each level;
* deductions and veto findings: one row per finding (a veto row shows 0.00
  where the cap did not bite: it still explains the forced grade);
* metric items: one row per unit with the metric's numerator and denominator;
* floor rows (negative: points given back when deductions ran below 0).

Summing a level's column over the rows of a unit's scope (filter 所属单位 or
所属县区) gives that unit's lost points.  A last guard checks exactly that
against ``unit_item_scores``: if an item's rows ever disagree with its score by
more than rounding (e.g. the scheme file was changed after the run), a visible
差异 row says so instead of hiding it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Connection

from etl.rules.keys import RULES
from etl.scoring import lost_points as scoring
from etl.scoring.schemes import OBJECT_KINDS

DETAIL_COLUMNS = ["owner_unit", "item_id", "item_name", "rule_id", "article", "object", "occurred_at", "detail"]
KEY_LABELS = {
    "incident_no": "警情号",
    "case_no": "案件编号",
    "action_id": "执法活动",
    "doc_id": "文书编号",
    "doc_type": "文书类型",
    "clip_id": "视音频",
    "device_sn": "设备编号",
    "log_id": "调阅记录",
    "police_no": "警号",
    "unit_code": "单位",
    "window_id": "窗口",
    "month": "月份",
}
VETO_ITEM = ("veto", "一票否决")
TOLERANCE = 0.005 + 1e-9
FINDING_COLUMNS = [
    "finding_key",
    "rule_id",
    "article",
    "unit_code",
    "case_no",
    "action_id",
    "doc_id",
    "incident_no",
    "clip_id",
    "device_sn",
    "log_id",
    "police_no",
    "doc_type",
    "window_id",
    "month",
    "occurred_at",
    "detail",
]
_POS = {c: i for i, c in enumerate(FINDING_COLUMNS)}
_RULE, _ARTICLE, _AT, _DETAIL = (_POS[c] for c in ("rule_id", "article", "occurred_at", "detail"))


# --- the lost points (scoring) and their presentation ---------------------------------------------------


def level_columns(levels: list[str]) -> list[str]:
    """The per-level columns of the scoring rows and of :func:`present`: ``unit:L`` and ``lost:L``."""
    return [f"{p}:{lv}" for lv in levels for p in ("unit", "lost")]


def lost_points(
    conn: Connection,
    period: str,
    scope_units: set[str],
    scheme: dict,
    items: pd.DataFrame,
    metrics: pd.DataFrame,
    config_dir: Path | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The scoring step's rows and levels (see ``etl.scoring.lost_points.lost_points_by_level``) explaining the stored
    item scores ``items`` of ``scope_units``."""
    return scoring.lost_points_by_level_detail(
        conn, period, sorted(scope_units), scheme, items, metrics, config_dir=config_dir
    )


def read_findings(conn: Connection, scope: set[str]) -> dict[str, Sequence]:
    """finding_key -> its FINDING_COLUMNS values, for the findings of units in ``scope`` (with those of the
    excused events: the lost points name one when its excuse is not effective).

    Plain rows from the driver: 10^5 findings, only ever looked up by key.
    """
    unit = _POS["unit_code"]
    cols = ", ".join(FINDING_COLUMNS)
    rows = conn.exec_driver_sql(f"SELECT {cols} FROM findings UNION ALL SELECT {cols} FROM excused_findings").fetchall()
    return {r[0]: r for r in rows if r[unit] in scope}


def _ts_text(v: object) -> str | None:
    """A time as 'YYYY-MM-DD HH:MM:SS' (text on SQLite, a datetime elsewhere)."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    return str(v)[:19]


def keys_text(rule: str | None, finding: tuple, exclude: str | None = None) -> str:
    """'警情号 J1；警号 P2' from a finding's identifying columns (etl.rules.keys), ``exclude`` left out."""
    pieces = []
    for c in RULES.get(rule or "", {}).get("key", ()):
        v = finding[_POS[c]] if c in _POS and c != exclude else None
        if v is not None and v == v:  # v != v: NaN
            pieces.append(f"{KEY_LABELS.get(c, c)} {v}")
    return "；".join(pieces)


_NO_FINDING = (None,) * len(FINDING_COLUMNS)


def _finding_parts(rule: str | None, f: tuple) -> tuple[str | None, str | None, str | None, str]:
    """(rule, article, occurred_at, detail line) of one finding: its article, else the rule's."""
    rule = rule if rule is not None else f[_RULE]
    art = f[_ARTICLE] or RULES.get(rule or "", {}).get("article")
    line = f[_DETAIL]
    at = f[_AT]
    return rule, art, at if type(at) is str and len(at) <= 19 else _ts_text(at), "" if line is None else str(line)


def _values(s: pd.Series) -> list:
    """A column as plain Python values, None for missing (NaN, NA)."""
    return [None if v is None or v is pd.NA or v != v else v for v in s.tolist()]


def present(
    lost: pd.DataFrame,
    levels: list[str],
    findings: dict[str, Sequence],
    scheme: dict,
    items: pd.DataFrame,
    metrics: pd.DataFrame,
    unit_levels: dict[str, str],
) -> pd.DataFrame:
    """The 扣分明细 rows: DETAIL_COLUMNS + ``level_columns(levels)``, sorted by owner, item, time, object.

    ``lost``/``levels``: :func:`lost_points`; ``findings``: :func:`read_findings`; ``items``: the stored item
    scores the rows must add up to; ``unit_levels``: unit_code -> level (org_units).  Plain loops over
    tuples: ~10^5 rows, most objects with a single finding.
    """
    names = {it["id"]: it["name"] for it in scheme["items"]}
    names.setdefault(VETO_ITEM[0], VETO_ITEM[1])
    nl = len(levels)
    ded = {r: p for it in scheme["items"] for r, p in it.get("deductions", {}).items()}
    veto = scheme.get("veto") or {}
    veto_note = f"（一票否决：总分封顶 {veto.get('cap', 59):g} 分，等级为{veto.get('grade', '不达标')}）"
    m = {
        (u, k): (n, d)
        for u, k, n, d in zip(
            metrics["unit_code"], metrics["metric_id"], metrics["numerator"], metrics["denominator"], strict=True
        )
    }
    kinds = OBJECT_KINDS
    rows: list[tuple] = []  # owner, item, rule, article, object, occurred_at, detail, then unit/lost per level
    objects: dict[tuple, list] = {}  # (item, kind, object key, owner) -> its rows (rule, finding, unit/lost...)
    data = [_values(lost[c]) for c in scoring.BY_LEVEL_COLUMNS + level_columns(levels)]
    for item, kind, key, owner, rule, fid, *lv in zip(*data, strict=True):
        f = _NO_FINDING if fid is None else findings.get(fid, _NO_FINDING)
        if kind in kinds:
            objects.setdefault((item, kind, key, owner), []).append((rule, f, lv))
        elif kind in ("deduction", "veto"):
            rule, art, at, line = _finding_parts(rule, f)
            note = veto_note if kind == "veto" else f"（每条扣 {ded[rule]:g} 分）" if rule in ded else ""
            rows.append((owner, item, rule, art, keys_text(rule, f), at, line + note, *lv))
        elif kind == "metric":
            if (owner, key) in m:
                num, den = m[(owner, key)]
                text = (
                    f"{names.get(item, item)}：分子 {num:g}，分母 {den:g}；得分 = 分值 × 指标值（超过 100% 按 100% 计）"
                )
            else:
                text = f"{names.get(item, item)}：按指标值计分"
            rows.append((owner, item, None, None, f"指标 {key}", None, text, *lv))
        else:  # floor
            rows.append((owner, item, None, None, "封底调整", None, "单项得分最低为 0 分，超出本项分值的扣分不计", *lv))
    for (item, kind, key, owner), fs in objects.items():
        rows.append(_object_row(item, kind, key, owner, fs, nl))
    rows += _reconcile(lost, levels, items, names, unit_levels)
    order = {it["id"]: i for i, it in enumerate(scheme["items"])}
    rows.sort(key=lambda r: (r[0], order.get(r[1], len(order)), r[5] or "9999", r[4], r[2] or ""))
    lcols = level_columns(levels)
    df = pd.DataFrame(rows, columns=[c for c in DETAIL_COLUMNS if c != "item_name"] + lcols, dtype=object)
    df.insert(2, "item_name", [names.get(i, i) for i in df["item_id"]])
    for lv in levels:
        df[f"lost:{lv}"] = df[f"lost:{lv}"].astype(float)
    return df


def _object_row(item: str, kind: str, key: object, owner: str, fs: list, nl: int) -> tuple:
    """One unclean object: its findings (earliest first) joined, the points it cost each level summed."""
    own_key = OBJECT_KINDS[kind][1]
    label = f"{KEY_LABELS[own_key]} {key}"
    if len(fs) == 1:
        rule, f, lv = fs[0]
        rule, art, at, line = _finding_parts(rule, f)
        ks = keys_text(rule, f, exclude=own_key)
        return (owner, item, rule, art, f"{label}；{ks}" if ks else label, at, line, *lv)
    parts = []
    for rule, f, _lv in fs:
        rule, art, at, line = _finding_parts(rule, f)
        parts.append((at or "9999", rule or "", art, keys_text(rule, f, exclude=own_key), line))
    parts.sort(key=lambda p: (p[0], p[1]))
    lv = list(fs[0][2])
    for j in range(1, 2 * nl, 2):  # unit, lost, unit, lost...: sum the points
        pts = [x[2][j] for x in fs if x[2][j] is not None]
        lv[j] = float(sum(pts)) if pts else None
    rules = dict.fromkeys(p[1] for p in parts if p[1])
    arts = dict.fromkeys(a for p in parts for a in (p[2] or "").split("、") if a)
    ks = dict.fromkeys(p[3] for p in parts if p[3])
    lines = [f"{p[1]}：{p[4]}" if p[1] else p[4] for p in parts if p[4]]  # several findings: say which rule each is
    at = parts[0][0]
    return (
        owner,
        item,
        "、".join(rules) or None,
        "、".join(arts) or None,
        label + "".join("；" + k for k in ks),
        None if at == "9999" else at,
        "；".join(lines),
        *lv,
    )


def _reconcile(
    lost: pd.DataFrame, levels: list[str], items: pd.DataFrame, names: dict[str, str], unit_levels: dict[str, str]
) -> list[tuple]:
    """A visible 差异 row for any (unit, item) whose rows do not add up to points − score at the unit's level.

    Summed over the scoring step's rows: :func:`present` merges rows but never changes a point.
    """
    listed = {lv: lost.groupby([f"unit:{lv}", "item_id"])[f"lost:{lv}"].sum().to_dict() for lv in levels}
    out = []
    lost_pts = items["points"].astype(float) - items["score"].astype(float)
    for unit, item_id, exp in zip(items["unit_code"], items["item_id"], lost_pts, strict=True):
        lv = scoring.level_name(unit_levels.get(unit))
        got = float(listed.get(lv, {}).get((unit, item_id), 0.0))
        if abs(exp - got) > TOLERANCE:
            cells = [x for level in levels for x in ((unit, exp - got) if level == lv else (None, None))]
            out.append(
                (
                    unit,
                    item_id,
                    None,
                    None,
                    "差异",
                    None,
                    f"明细与得分表不一致，请核对（得分表失分 {exp:.2f}，明细合计 {got:.2f}）",
                    *cells,
                )
            )
    return out
