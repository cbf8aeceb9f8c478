"""``config/settings.yaml`` (or ``$AVSUP_SETTINGS``): the time zone, the login lockout, the session timeout, the
``etl run``'s partition budget and load piece size.

A low module: read once per process (``load``), defaults for anything missing."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import yaml

from etl.errors import ConfigError

ENV = "AVSUP_SETTINGS"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config" / "settings.yaml"
DEFAULTS: dict = {
    "timezone": "Asia/Shanghai",
    "login": {"max_failures": 5, "lockout_min": 15, "trust_forwarded_for": False},
    "session": {"idle_timeout_min": 30},
    "etl": {"partition_rows": 5_000_000, "load_piece_rows": 500_000, "read_ahead_mb": 256},
}


@functools.cache
def load(path: str | None = None) -> dict:
    """The settings: ``path``, else ``$AVSUP_SETTINGS``, else config/settings.yaml, over the defaults."""
    p = Path(path or os.environ.get(ENV) or DEFAULT_PATH)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {} if p.exists() else {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"无法读取设置文件 {p}：{exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"设置文件 {p} 格式错误")
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for key, value in raw.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key].update(value)
        else:
            out[key] = value
    for section, key in (
        ("login", "max_failures"),
        ("login", "lockout_min"),
        ("session", "idle_timeout_min"),
        ("etl", "partition_rows"),
        ("etl", "load_piece_rows"),
        ("etl", "read_ahead_mb"),
    ):
        v = out[section][key]
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"设置文件 {p}：{section}.{key} 应为正整数")
    return out
