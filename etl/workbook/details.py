"""扣分明细: every lost point of every scored unit and item, traced to objects and findings.

Which object cost how many points is decided in one place, the scoring step:
``etl.rules.scoring.lost_points_detail`` returns one row per finding behind a
lost point (a rate item's unclean object costs points ÷ objects, shared by
its findings; a deduction costs its configured points; metric, floor and veto
rows).  This module only *presents* those rows for a legal officer:

* rate items: one row per **unclean object**, with every finding that made it
  unclean (rules, articles, details) and the points it cost;
* deductions and veto findings: one row per finding;
* metric items: one row with the metric's numerator and denominator;
* floor rows (negative: points given back when deductions ran below 0).

A last guard compares the rows with ``unit_item_scores``: if an item's rows
ever disagree with its score by more than rounding (e.g. the scheme file was
changed after the run), a visible 差异 row says so instead of hiding it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.db import read_df
from etl.errors import ConfigError
from etl.rules import scoring
from etl.rules.keys import RULES

DETAIL_COLUMNS = ["scope_unit", "item_id", "item_name", "rule_id", "article", "object", "owner_unit",
                  "occurred_at", "detail", "points"]
KEY_LABELS = {
    "incident_no": "警情号", "case_no": "案件编号", "action_id": "执法活动", "doc_id": "文书编号",
    "doc_type": "文书类型", "clip_id": "视音频", "device_sn": "设备编号", "log_id": "调阅记录",
    "police_no": "警号", "unit_code": "单位", "window_id": "窗口", "month": "月份",
}
VETO_ITEM = ("veto", "一票否决")
TOLERANCE = 0.005 + 1e-9
FINDING_COLUMNS = ["finding_id", "rule_id", "article", "unit_code", "case_no", "action_id", "doc_id", "incident_no",
                   "clip_id", "device_sn", "log_id", "police_no", "doc_type", "window_id", "occurred_at", "detail"]


# --- scheme -----------------------------------------------------------------------------------------

def scheme_path(scheme_id: str, config_dir: Path | None = None) -> Path:
    base = Path(config_dir) if config_dir else Path(__file__).resolve().parents[2] / "config"
    return base / "schemes" / f"{scheme_id}.yaml"


def load_scheme(path: Path) -> dict:
    """A scheme file, validated by the scoring step (its ``id`` is the field or the file stem)."""
    return scoring.load_scheme(path)


def scheme_for(scheme_id: str, config_dir: Path | None = None) -> dict:
    path = scheme_path(scheme_id, config_dir)
    if not path.exists():
        raise ConfigError(f"找不到考评方案文件：{path}（得分表中的方案 {scheme_id}）")
    return load_scheme(path)


# --- the lost points (scoring) and their presentation ---------------------------------------------------

def lost_points(conn: Connection, period: str, scope_units: list[str], scheme: dict,
                config_dir: Path | None = None) -> pd.DataFrame:
    """The scoring step's rows: unit_code, item_id, object_kind, object_key, object_unit, rule_id, finding_id,
    points_lost (see ``etl.rules.scoring.lost_points``)."""
    return scoring.lost_points_detail(conn, period, sorted(scope_units), scheme, config_dir=config_dir)


def with_veto_findings(lost: pd.DataFrame, conn: Connection, months: tuple[str, ...], scheme: dict,
                       scores: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Add 0-point veto rows for vetoed units whose cap removed nothing, so the veto stays traceable."""
    rules = list((scheme.get("veto") or {}).get("rules") or [])
    vetoed = set(scores.loc[scores["veto"].fillna(0).astype(int) == 1, "unit_code"])
    missing = vetoed - set(lost.loc[lost["object_kind"] == "veto", "unit_code"])
    if not missing or not rules:
        return lost
    stmt = sa.text("SELECT finding_id, rule_id, unit_code FROM findings WHERE rule_id IN :rules AND month IN :months")
    stmt = stmt.bindparams(sa.bindparam("rules", expanding=True), sa.bindparam("months", expanding=True))
    vf = read_df(conn, stmt, {"rules": rules, "months": list(months)})
    vf = vf.merge(pairs[pairs["scope_unit"].isin(missing)], on="unit_code")
    add = pd.DataFrame({"unit_code": vf["scope_unit"], "item_id": VETO_ITEM[0], "object_kind": "veto",
                        "object_key": None, "object_unit": vf["unit_code"], "rule_id": vf["rule_id"],
                        "finding_id": vf["finding_id"], "points_lost": 0.0})
    return pd.concat([lost, add], ignore_index=True) if len(add) else lost


def read_findings_by_id(conn: Connection, ids: set[int], scope: set[str]) -> pd.DataFrame:
    """The findings named by ``ids`` (owned by units in ``scope``), times as text."""
    df = read_df(conn, f"SELECT {', '.join(FINDING_COLUMNS)} FROM findings")
    df = df[df["unit_code"].isin(scope) & df["finding_id"].isin(ids)].reset_index(drop=True)
    df["occurred_at"] = df["occurred_at"].map(_ts_text)
    return df


def _ts_text(v: object) -> str | None:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return None
    return str(v)[:19]


def object_text(findings: pd.DataFrame, exclude: str | None = None) -> pd.Series:
    """'警情号 J1；警号 P2' from each finding's identifying columns (etl.rules.keys), ``exclude`` left out."""
    out = pd.Series("", index=findings.index, dtype=object)
    for rule, idx in findings.groupby("rule_id").groups.items():
        cols = [c for c in RULES.get(rule, {}).get("key", ()) if c != exclude and c in findings.columns]
        text = pd.Series("", index=idx, dtype=object)
        for c in cols:
            v = findings.loc[idx, c]
            piece = (KEY_LABELS.get(c, c) + " " + v.astype(str)).where(v.notna(), "")
            text = text.where(piece == "", text.where(text == "", text + "；") + piece)
        out.loc[idx] = text
    return out


def present(lost: pd.DataFrame, findings: pd.DataFrame, scheme: dict, items: pd.DataFrame,
            metrics: pd.DataFrame) -> pd.DataFrame:
    """The 扣分明细 rows (DETAIL_COLUMNS) from the scoring step's rows and the findings they name."""
    names = {it["id"]: it["name"] for it in scheme["items"]}
    f = findings.copy()
    f["article"] = f["article"].where(f["article"].notna() & (f["article"] != ""),
                                      f["rule_id"].map(lambda r: RULES.get(r, {}).get("article")))
    f["line"] = f["detail"].fillna("").astype(str)
    d = lost.merge(f.drop(columns=["unit_code"]).rename(columns={"rule_id": "f_rule"}), on="finding_id", how="left")
    d["rule_id"] = d["rule_id"].where(d["rule_id"].notna(), d["f_rule"])
    kinds = set(scoring.OBJECT_KINDS)
    parts = [
        _objects(d[d["object_kind"].isin(kinds)]),
        _per_finding(d[d["object_kind"].isin(["deduction", "veto"])], scheme),
        _metric_rows(d[d["object_kind"] == "metric"], scheme, metrics),
        _floor_rows(d[d["object_kind"] == "floor"]),
    ]
    out = pd.concat([p for p in parts if len(p)] or [pd.DataFrame(columns=DETAIL_COLUMNS)], ignore_index=True)
    out["item_name"] = out["item_id"].map(names).fillna(out["item_id"].map({VETO_ITEM[0]: VETO_ITEM[1]}))
    out["item_name"] = out["item_name"].fillna(out["item_id"])
    out = pd.concat([out, _reconcile(out, items, scheme)], ignore_index=True)
    order = {it["id"]: i for i, it in enumerate(scheme["items"])}
    out["_o"] = out["item_id"].map(order).fillna(len(order))
    out["_t"] = out["occurred_at"].fillna("9999")
    out = out.sort_values(["scope_unit", "_o", "_t", "object", "rule_id"], kind="stable", ignore_index=True)
    return out[DETAIL_COLUMNS]


def _objects(d: pd.DataFrame) -> pd.DataFrame:
    """One row per (scored unit, item, unclean object): its findings joined, the points it cost summed."""
    if d.empty:
        return pd.DataFrame(columns=DETAIL_COLUMNS)
    keys = pd.Series("", index=d.index, dtype=object)
    for kind, idx in d.groupby("object_kind").groups.items():  # the object's own key is in its label
        keys.loc[idx] = object_text(d.loc[idx], exclude=scoring.OBJECT_KINDS[kind][1])
    label = d["object_kind"].map(lambda k: KEY_LABELS[scoring.OBJECT_KINDS[k][1]]) + " " + d["object_key"].astype(str)
    d = d.assign(keys=keys, label=label, _t=d["occurred_at"].fillna("9999"))
    d = d.sort_values(["unit_code", "item_id", "object_key", "_t", "rule_id"], kind="stable")
    size = d.groupby(["unit_code", "item_id", "object_key"], sort=False)["points_lost"].transform("size")
    one = d[size == 1]  # most unclean objects have one finding: no aggregation needed
    single = pd.DataFrame({
        "scope_unit": one["unit_code"], "item_id": one["item_id"], "rule_id": one["rule_id"],
        "article": one["article"], "object": one["label"].where(one["keys"] == "", one["label"] + "；" + one["keys"]),
        "owner_unit": one["object_unit"], "occurred_at": one["occurred_at"], "detail": one["line"],
        "points": one["points_lost"]})
    return pd.concat([single, _merge_findings(d[size > 1])], ignore_index=True).reindex(columns=DETAIL_COLUMNS)


def _merge_findings(d: pd.DataFrame) -> pd.DataFrame:
    """Objects with several findings (rows sorted by object): one row each, findings joined, points summed.

    A plain loop: pandas' per-group aggregation with Python functions is ~100× slower at 10^5 objects.
    """
    cols = ["unit_code", "item_id", "object_key", "rule_id", "article", "label", "keys", "object_unit",
            "occurred_at", "line", "points_lost"]
    out: list[list] = []
    last = None
    for unit, item, key, rule, art, lab, ks, owner, at, line, pts in zip(
            *(d[c].astype(object).where(d[c].notna(), None).tolist() for c in cols), strict=True):
        if (unit, item, key) != last:
            last = (unit, item, key)
            out.append([unit, item, {}, {}, lab, {}, owner, at, [], 0.0])
        row = out[-1]
        for part in (rule or "").split("、"):
            row[2][part] = None
        for part in (art or "").split("、"):
            row[3][part] = None
        if ks:
            row[5][ks] = None
        if line:
            row[8].append(f"{rule}：{line}" if rule else line)  # several findings: say which rule each is
        row[9] += float(pts or 0.0)
    return pd.DataFrame({
        "scope_unit": [r[0] for r in out], "item_id": [r[1] for r in out],
        "rule_id": ["、".join(p for p in r[2] if p) for r in out],
        "article": ["、".join(p for p in r[3] if p) for r in out],
        "object": [r[4] + "".join("；" + k for k in r[5]) for r in out],
        "owner_unit": [r[6] for r in out], "occurred_at": [r[7] for r in out],
        "detail": ["；".join(r[8]) for r in out], "points": [r[9] for r in out]}, columns=DETAIL_COLUMNS)


def _per_finding(d: pd.DataFrame, scheme: dict) -> pd.DataFrame:
    if d.empty:
        return pd.DataFrame(columns=DETAIL_COLUMNS)
    ded = {r: p for it in scheme["items"] for r, p in it.get("deductions", {}).items()}
    veto = scheme.get("veto") or {}
    note = [f"（每条扣 {ded[r]:g} 分）" if k == "deduction" and r in ded else
            f"（一票否决：总分封顶 {veto.get('cap', 59):g} 分，等级为{veto.get('grade', '不达标')}）" if k == "veto" else ""
            for k, r in zip(d["object_kind"], d["rule_id"], strict=True)]
    return pd.DataFrame({
        "scope_unit": d["unit_code"], "item_id": d["item_id"], "rule_id": d["rule_id"], "article": d["article"],
        "object": object_text(d), "owner_unit": d["object_unit"], "occurred_at": d["occurred_at"],
        "detail": d["line"].fillna("") + pd.Series(note, index=d.index), "points": d["points_lost"],
    }, columns=DETAIL_COLUMNS)


def _metric_rows(d: pd.DataFrame, scheme: dict, metrics: pd.DataFrame) -> pd.DataFrame:
    if d.empty:
        return pd.DataFrame(columns=DETAIL_COLUMNS)
    m = metrics.set_index(["unit_code", "metric_id"])
    names = {it["id"]: it["name"] for it in scheme["items"]}
    texts = []
    for unit, item_id, metric in zip(d["unit_code"], d["item_id"], d["object_key"], strict=True):
        if (unit, metric) in m.index:
            r = m.loc[(unit, metric)]
            r = r.iloc[0] if isinstance(r, pd.DataFrame) else r
            texts.append(f"{names.get(item_id, item_id)}：分子 {r['numerator']:g}，分母 {r['denominator']:g}；"
                         "得分 = 分值 × 指标值（超过 100% 按 100% 计）")
        else:
            texts.append(f"{names.get(item_id, item_id)}：按指标值计分")
    return pd.DataFrame({
        "scope_unit": d["unit_code"], "item_id": d["item_id"], "rule_id": None, "article": None,
        "object": "指标 " + d["object_key"].astype(str), "owner_unit": d["unit_code"], "occurred_at": None,
        "detail": texts, "points": d["points_lost"]}, columns=DETAIL_COLUMNS)


def _floor_rows(d: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "scope_unit": d["unit_code"], "item_id": d["item_id"], "rule_id": None, "article": None,
        "object": "封底调整", "owner_unit": d["unit_code"], "occurred_at": None,
        "detail": "单项得分最低为 0 分，超出本项分值的扣分不计", "points": d["points_lost"]}, columns=DETAIL_COLUMNS)


def _reconcile(detail: pd.DataFrame, items: pd.DataFrame, scheme: dict) -> pd.DataFrame:
    """A visible 差异 row for any (unit, item) whose rows do not add up to points − score."""
    listed = detail.groupby(["scope_unit", "item_id"])["points"].sum()
    names = {it["id"]: it["name"] for it in scheme["items"]}
    lost = items["points"].astype(float) - items["score"].astype(float)
    rows = []
    for unit, item_id, exp in zip(items["unit_code"], items["item_id"], lost, strict=True):
        got = float(listed.get((unit, item_id), 0.0))
        if abs(exp - got) > TOLERANCE:
            rows.append({"scope_unit": unit, "item_id": item_id, "item_name": names.get(item_id, item_id),
                         "rule_id": None, "article": None, "object": "差异", "owner_unit": unit, "occurred_at": None,
                         "detail": f"明细与得分表不一致，请核对（得分表失分 {exp:.2f}，明细合计 {got:.2f}）",
                         "points": exp - got})
    return pd.DataFrame(rows, columns=DETAIL_COLUMNS)
