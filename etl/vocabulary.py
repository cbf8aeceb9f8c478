"""The words users read, shared by the dashboard pages and the assessment workbook (one vocabulary).

The formal forms of the workbook are the reference: 市局 / 县（区）局 / 基层所队
for the unit levels, 2026年度 / 2026年第3季度 / 2026年7月 for the periods,
全程记录 / 已报备中断 / 部分记录 / 未记录 for an on-site event's coverage
status.  The dashboard's English switch translates these same words
(``dashboard.i18n``); code keeps the stable ids (``city``, ``full``, ...).
"""

from __future__ import annotations

# Unit levels (org_units.level), top down.
# ``province``: the root of a province's pooled warehouse (issue 18, ``etl demo --scale province``).
LEVELS: dict[str, str] = {"province": "省厅", "city": "市局", "county": "县（区）局", "station": "基层所队"}
LEVEL_ORDER: dict[str, int] = {"province": -1, "city": 0, "county": 1, "station": 2}
LEVELS_EN: dict[str, str] = {
    "province": "Provincial department",
    "city": "City bureau",
    "county": "County/district bureau",
    "station": "Station/team",
}

# Coverage status of an on-site event (event_coverage.status).
COVERAGE_STATUS: dict[str, str] = {"full": "全程记录", "excused": "已报备中断", "partial": "部分记录", "none": "未记录"}
COVERAGE_STATUS_EN: dict[str, str] = {
    "full": "fully recorded",
    "excused": "excused (reported)",
    "partial": "partly recorded",
    "none": "not recorded",
}

# Dashboard roles (users file ``role``).
ROLES: dict[str, str] = {
    "leader": "局领导",
    "legal": "法制部门",
    "equipment": "警保部门",
    "it": "信通部门",
    "unit_admin": "单位管理员",
    "officer": "民警",  # sees only its own record (issue 18): the officer page, its own police number
}

PERIOD_KIND_NAMES: dict[str, str] = {"month": "月", "quarter": "季度", "year": "年"}


def level_label(level: object) -> object:
    """The Chinese name of a unit level; anything unknown unchanged."""
    return LEVELS.get(level, level) if isinstance(level, str) else level


def period_label(code: str, kind: str) -> str:
    """2026年度 / 2026年第3季度 / 2026年7月 of a valid period code of that kind (see ``etl.periods``)."""
    if kind == "year":
        return f"{code[:4]}年度"
    if kind == "quarter":
        return f"{code[:4]}年第{code[-1]}季度"
    return f"{code[:4]}年{int(code[5:7])}月"
