"""Scoring schemes (rules.md "Assessment"): the one parser and validator of ``config/schemes/*.yaml``.

A scheme is a versioned YAML file in ``config/schemes/`` (format documented at
the top of ``measures-2026.yaml``).  Every scheme found there is computed for
every unit and every period that has data; the one named by
``cfg["active_scheme"]`` gets ``active = 1``.  Everything that reads a scheme
(the scoring, the assessment workbook, the dashboard's drill-down) reads it
through ``load_scheme`` / ``scheme_for`` / ``load_schemes``, so that a file is
accepted or rejected, and understood, in the same way everywhere.

Item kinds
  * clean-rate item: ``objects`` (an object kind, see OBJECT_KINDS) and
    ``rules`` (findings that make an object unclean);
  * metric item: ``metric`` (a standard metric id of ``metrics.METRICS``);
and either may have per-finding ``deductions`` (rule id -> points).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from etl.errors import ConfigError
from etl.rules.keys import RULES
from etl.scoring import metrics as M
from etl.warehouse.verdicts import SPOT_RULE

# the object kinds a SPOT-CHECK finding can make unclean: the spot-checked event or case
SPOT_OBJECTS = ("onsite_events", "cases_with_actions", "cases")
# object kind -> (Chinese name, key column of findings that identifies the object)
OBJECT_KINDS: dict[str, tuple[str, str]] = {
    "onsite_events": ("现场执法事件", "incident_no"),
    "av_actions": ("需音像记录的执法措施", "action_id"),
    "cases_with_actions": ("有执法措施的案件", "case_no"),
    "cases": ("案件", "case_no"),
    "devices": ("设备", "device_sn"),
    "clips": ("音视频文件", "clip_id"),
    "access_records": ("调阅记录", "log_id"),
}
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def _num(value, what: str) -> float:  # noqa: ANN001
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{what}应为非负数：{value!r}")
    return float(value)


def _rules(values, what: str) -> list[str]:  # noqa: ANN001
    if not isinstance(values, list):
        raise ConfigError(f"{what}应为规则编号列表")
    unknown = [str(v) for v in values if str(v) not in RULES and str(v) != SPOT_RULE]
    if unknown:
        raise ConfigError(f"{what}含未知规则编号：{'、'.join(unknown)}")
    return [str(v) for v in values]


def validate_scheme(raw: dict, default_id: str) -> dict:
    """Check a scheme mapping and return it normalised; ConfigError (Chinese) on any problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"考评方案 {default_id} 应为键值结构")
    sid = str(raw.get("id") or default_id)
    items_raw = raw.get("items")
    if not isinstance(items_raw, list) or not items_raw:
        raise ConfigError(f"考评方案 {sid} 缺少考评项目（items）")
    items, seen = [], set()
    for it in items_raw:
        if not isinstance(it, dict) or not it.get("id"):
            raise ConfigError(f"考评方案 {sid} 的考评项目缺少编号（id）")
        iid = str(it["id"])
        if iid in seen:
            raise ConfigError(f"考评方案 {sid} 的考评项目编号重复：{iid}")
        seen.add(iid)
        item = {
            "id": iid,
            "name": str(it.get("name") or iid),
            "points": _num(it.get("points"), f"考评项目 {iid} 的分值"),
            "objects": None,
            "rules": [],
            "metric": None,
            "deductions": {},
        }
        if ("objects" in it) == ("metric" in it):
            raise ConfigError(f"考评项目 {iid} 应指定且只指定 objects（考评对象）或 metric（标准指标）之一")
        if "objects" in it:
            if it["objects"] not in OBJECT_KINDS:
                raise ConfigError(f"考评项目 {iid} 的考评对象未知：{it['objects']}")
            item["objects"] = str(it["objects"])
            item["rules"] = _rules(it.get("rules") or [], f"考评项目 {iid} 的规则")
            if SPOT_RULE in item["rules"] and item["objects"] not in SPOT_OBJECTS:
                raise ConfigError(
                    f"考评项目 {iid}：抽查问题（{SPOT_RULE}）只能使不合格的现场执法事件或案件，"
                    f"不能用于考评对象 {OBJECT_KINDS[item['objects']][0]}"
                )
        else:
            if it["metric"] not in M.METRICS:
                raise ConfigError(f"考评项目 {iid} 的标准指标未知：{it['metric']}")
            item["metric"] = str(it["metric"])
        ded = it.get("deductions") or {}
        if not isinstance(ded, dict):
            raise ConfigError(f"考评项目 {iid} 的逐条扣分（deductions）应为“规则编号: 分值”")
        _rules(list(ded), f"考评项目 {iid} 的逐条扣分")
        item["deductions"] = {str(r): _num(v, f"考评项目 {iid} 的 {r} 扣分") for r, v in ded.items()}
        items.append(item)
    grades = raw.get("grades") or [
        {"name": "优秀", "min": 90},
        {"name": "达标", "min": 60},
        {"name": "不达标", "min": 0},
    ]
    try:
        bands = sorted(((float(g["min"]), str(g["name"])) for g in grades), reverse=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"考评方案 {sid} 的等级（grades）应为 name 与 min 的列表") from exc
    veto = raw.get("veto") or {}
    veto = {
        "rules": _rules(veto.get("rules") or [], f"考评方案 {sid} 的一票否决规则"),
        "cap": _num(veto.get("cap", 59), f"考评方案 {sid} 的一票否决封顶分"),
        "grade": str(veto.get("grade") or bands[-1][1]),
    }
    ties = list((raw.get("ranking") or {}).get("tie_breakers") or [])
    bad = [t for t in ties if t not in seen]
    if bad:
        raise ConfigError(f"考评方案 {sid} 的排名比较项目不存在：{'、'.join(map(str, bad))}")
    scope = str(raw.get("scope") or "whole")
    if scope not in ("whole", "own"):
        raise ConfigError(f"考评方案 {sid} 的 scope 应为 whole 或 own：{scope}")
    return {
        "id": sid,
        "version": str(raw.get("version") or "1"),
        "name": str(raw.get("name") or sid),
        "items": items,
        "grades": bands,
        "veto": veto,
        "tie_breakers": [str(t) for t in ties],
        "scope": scope,
    }


def load_scheme(path: Path | str) -> dict:
    """Read and validate one scheme file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"找不到考评方案文件：{path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"考评方案文件格式错误：{path}（{str(exc).splitlines()[0]}）") from exc
    return validate_scheme(raw, path.stem)


def load_schemes(cfg: dict) -> list[dict]:
    """Every scheme of ``<cfg dir>/schemes``, each with ``active`` set; the active one must exist."""
    sdir = Path(cfg["dir"]) / "schemes"
    schemes = [load_scheme(p) for p in sorted(sdir.glob("*.yaml"))]
    ids = [s["id"] for s in schemes]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"考评方案编号重复：{sdir}")
    active = cfg.get("active_scheme") or "measures-2026"
    if active not in ids:
        raise ConfigError(f"当前考评方案 {active} 不存在于 {sdir}")
    for s in schemes:
        s["active"] = int(s["id"] == active)
    return schemes


def scheme_path(scheme_id: str, config_dir: Path | str | None = None) -> Path:
    """``<config_dir>/schemes/<scheme_id>.yaml`` (default: the repository's ``config``)."""
    return Path(config_dir or DEFAULT_CONFIG_DIR) / "schemes" / f"{scheme_id}.yaml"


def scheme_for(scheme_id: str, config_dir: Path | str | None = None) -> dict:
    """The scheme a stored score names (``unit_scores.scheme_id``), read and validated."""
    path = scheme_path(scheme_id, config_dir)
    if not path.exists():
        raise ConfigError(f"找不到考评方案文件：{path}（得分表中的方案 {scheme_id}）")
    return load_scheme(path)


def item_rules(scheme: dict) -> dict[str, list[str]]:
    """item_id -> the rules whose findings lose the item's points: those that make an object unclean, then
    those of its per-finding deductions.  A metric item has only its deductions' (usually none): its points
    follow the metric's value, not findings."""
    return {it["id"]: list(dict.fromkeys([*it["rules"], *it["deductions"]])) for it in scheme["items"]}
