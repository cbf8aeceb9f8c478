"""Rule configuration: ``config/rules.yaml`` (parameters, action -> document table, retention).

``load()`` validates the file and returns a plain dict (see the keys below);
every rule reads its parameters from it, never from constants in code.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from etl.errors import ConfigError

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "config"

PARAMS = {
    "gap_tolerance_s": 30,
    "report_deadline_h": 24,
    "emergency_backfill_h": 24,
    "performance_check_days": 30,
    "repair_days": 30,
    "retention_days": 180,
    "upload_deadline_h": 24,
    "appeal_days": 10,  # shared/spec/supervision.md: appeals within this many days after a publication
    "rectify_days": 15,  # default deadline of a rectification notice: issue date + this many days
    "future_tolerance_h": 24,  # source rows dated after the run's wall-clock time + this (hours): quarantined
    "shrink_guard": 0.5,  # a full-compare table losing more than this share of its rows stops the run
    "clock_drift_s": 120,  # data-quality queue: a device clock off by more than this (seconds)
    "clock_drift_min_events": 3,  # ... estimated from at least this many on-site events
    "clock_drift_days": 30,  # ... of the last this many days before the evaluation date
}
EXCUSE_REVIEW = ("auto", "required")  # Art. 17 excuses: effective unless rejected | only once accepted
_LISTS = {
    "signature_required": [],
    "served_documents": [],
    "decision_documents": ["penalty_decision", "on_spot_decision"],
    "start_approval_sources": ["ex_officio"],
    "not_filed_notice_sources": ["complaint", "report", "assigned", "transferred"],
    "simple_procedure_documents": ["on_spot_decision", "statement_record", "filing_record"],
    "access_approval_actions": ["copy", "download", "external", "delete"],
    "external_approver_levels": ["county", "city"],
}


def load(config_dir: Path | str | None = None) -> dict:
    """Read and validate ``<config_dir>/rules.yaml`` (default: the repository's ``config``).

    The validated configuration is kept per file version (path, modification time, size), so that the pages
    and actions that read a parameter do not parse the YAML every time (13 ms); each caller gets its own copy.
    An edited file is read again."""
    cdir = Path(config_dir) if config_dir else DEFAULT_DIR
    path = cdir / "rules.yaml"
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ConfigError(f"找不到规则配置文件：{path}") from exc
    version = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if _cache.get("version") != version:
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"找不到规则配置文件：{path}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"规则配置文件格式错误：{path}（{str(exc).splitlines()[0]}）") from exc
        _cache.clear()
        _cache.update(version=version, cfg=validate(raw, cdir))
    cfg = copy.deepcopy(_cache["cfg"])
    cfg["dir"] = cdir  # as this caller named it
    return cfg


_cache: dict = {}  # the last configuration loaded: {"version": (path, mtime_ns, size), "cfg": validated}


def validate(raw: dict, cdir: Path) -> dict:
    """Defaults filled in, types checked; raises ConfigError with a Chinese message."""
    if not isinstance(raw, dict):
        raise ConfigError("规则配置文件应为键值结构")
    params = dict(PARAMS)
    for key, value in (raw.get("params") or {}).items():
        if key not in PARAMS:
            raise ConfigError(f"规则配置参数未知：{key}")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"规则配置参数 {key} 应为非负数：{value!r}")
        params[key] = value
    actions = raw.get("actions")
    if not isinstance(actions, dict) or not actions:
        raise ConfigError("规则配置缺少执法行为与文书对照表（actions）")
    norm_actions: dict[str, dict] = {}
    for code, spec in actions.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"执法行为 {code} 的配置应为键值结构")
        docs = spec.get("documents") or []
        if not isinstance(docs, list):
            raise ConfigError(f"执法行为 {code} 的 documents 应为列表")
        norm_actions[str(code)] = {
            "name": str(spec.get("name") or code),
            "documents": [str(d) for d in docs],
            "av": bool(spec.get("av", False)),
            "article": str(spec.get("article") or "第十三条"),
            "av_article": str(spec.get("av_article") or "第十四条"),
        }
    out = {
        "version": str(raw.get("version") or "0"),
        "params": params,
        "actions": norm_actions,
        "documents": {str(k): str(v) for k, v in (raw.get("documents") or {}).items()},
        "delivery_requirements": {
            str(k): [str(f) for f in (v or [])] for k, v in (raw.get("delivery_requirements") or {}).items()
        },
        "av_replaces_document": {
            str(k): [str(d) for d in (v or [])] for k, v in (raw.get("av_replaces_document") or {}).items()
        },
        "retention": dict(raw.get("retention") or {"evidence_permanent": True}),
        "active_scheme": str(raw.get("active_scheme") or "measures-2026"),
        "excuse_review": _excuse_review(raw.get("excuse_review", "auto")),
        "dir": cdir,
    }
    for key, default in _LISTS.items():
        value = raw.get(key, default)
        if not isinstance(value, list):
            raise ConfigError(f"规则配置项 {key} 应为列表")
        out[key] = [str(v) for v in value]
    return out


def _excuse_review(value: object) -> str:
    """``excuse_review``: ``auto`` (an Art. 17 excuse counts unless the legal department rejects it) or
    ``required`` (it counts only once accepted)."""
    if value not in EXCUSE_REVIEW:
        raise ConfigError(f"规则配置项 excuse_review 应为 auto 或 required：{value!r}")
    return str(value)
