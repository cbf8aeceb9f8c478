"""Chinese labels with an English switch: ``t("总览")`` -> "Overview" when English is chosen.

Chinese strings are the keys, so a missing translation falls back to Chinese.
"""

from __future__ import annotations

import pandas as pd

from etl import vocabulary as V

EN: dict[str, str] = {
    # app and navigation
    "行政执法全过程记录督察考评平台": "Enforcement Recording Supervision & Assessment",
    "长治市公安局": "Changzhi Public Security Bureau",
    "登录": "Log in",
    "用户名": "Username",
    "密码": "Password",
    "退出登录": "Log out",
    "用户名或密码错误": "Wrong username or password",
    "请输入用户名和密码": "Please enter username and password",
    "English": "English",
    "当前用户": "User",
    "角色": "Role",
    "范围": "Scope",
    "全市": "Whole city",
    "总览": "Overview",
    "现场记录": "Coverage",
    "案件检查": "Case inspection",
    "设备台账": "Equipment",
    "调阅审计": "Access audit",
    "完整性": "Integrity",
    "考评": "Assessment",
    "数据": "Data",
    "系统日志": "System log",
    "局领导": "Leader",
    "法制部门": "Legal dept.",
    "警保部门": "Equipment dept.",
    "信通部门": "IT dept.",
    "单位管理员": "Unit admin",
    "无权访问本页面": "You may not open this page",
    "未找到用户文件：请设置 DASHBOARD_USERS_FILE，或先用 etl run 载入演示数据": "No users file: set DASHBOARD_USERS_FILE or load the demo with etl run",
    "该用户已停用或不存在": "This user no longer exists",
    # common widgets
    "期间": "Period",
    "请选择": "Choose…",
    "年": "Year",
    "季度": "Quarter",
    "月": "Month",
    "单位": "Unit",
    "期间类型": "Period type",
    "状态": "Status",
    "全部": "All",
    "无数据": "No data",
    "事由": "Reason",
    "确认": "Confirm",
    "查看详情须填写事由（将记入系统日志）": "Viewing details requires a reason (written to the system log)",
    "导出须填写事由（将记入系统日志）": "Exporting requires a reason (written to the system log)",
    "请填写事由": "Please give a reason",
    "生成导出文件": "Build export file",
    "下载": "Download",
    "最多显示": "Showing at most",
    "行": "rows",
    # overview
    "现场执法事件": "On-site events",
    "全程记录率": "Whole-process rate",
    "平均得分": "Average score",
    "问题总数": "Findings",
    "标准指标": "Standard metrics",
    "按条款统计问题": "Findings by article",
    "月度趋势": "Monthly trend",
    "单位排名": "Unit ranking",
    "指标": "Metric",
    "分子": "Numerator",
    "分母": "Denominator",
    "数值": "Value",
    "配发率": "Issue rate",
    "使用率": "Usage rate",
    "及时导入率": "Timely import rate",
    "警情关联率": "Incident association rate",
    "案件关联率": "Case association rate",
    "平均覆盖率": "Mean coverage",
    "覆盖率": "Coverage",
    "个单位": "units",
    # coverage
    "全程记录率热力图（单位×月）": "Whole-process rate heatmap (unit × month)",
    "事件列表": "Events",
    "事件详情": "Event detail",
    "选择事件": "Choose an event",
    "时间轴": "Timeline",
    "中断报告": "Interruption report",
    "原因提示": "Cause hint",
    "无中断报告": "No interruption report",
    "未配发设备": "no device",
    "设备维修或丢失": "device in repair or lost",
    "未开启记录": "not recorded",
    "空档": "Gap",
    "窗口": "Window",
    # cases
    "案件编号": "Case number",
    "查找案件": "Find a case",
    "选择案件": "Choose a case",
    "仅显示有问题的案件": "Only cases with findings",
    "执法环节": "Actions",
    "法律文书": "Documents",
    "送达": "Deliveries",
    "音视频": "Clips",
    "规则检查": "Rule checklist",
    "通过": "passed",
    "未通过": "failed",
    "案件时间轴": "Case timeline",
    # equipment
    "设备": "Devices",
    "设备列表": "Device list",
    "领用记录": "Assignment history",
    "使用情况": "Usage",
    "维修时长": "Repair age",
    "闲置设备": "Idle devices",
    "台账核对": "Ledger reconciliation",
    "导出设备台账": "Export equipment ledger",
    "选择设备": "Choose a device",
    "类型": "Kind",
    # access
    "调阅记录": "Access records",
    "按用户汇总": "Per-user summary",
    "操作": "Action",
    "调阅人": "User",
    "选择调阅记录": "Choose an access record",
    # integrity
    "篡改": "Altered",
    "缺失": "Missing",
    "提前删除": "Deleted early",
    "上传超时": "Late upload",
    # assessment
    "考评方案": "Scheme",
    "等级": "Grade",
    "名次": "Rank",
    "总分": "Total",
    "分项得分": "Item scores",
    "扣分追溯": "Trace a deduction",
    "选择单位": "Choose a unit",
    "选择考评项": "Choose an item",
    "按指标值计分：得分 = 分值 × 指标值（超过 100% 按 100% 计，分母为 0 得满分）": "Scored by the metric: score = points × value (capped at 100%; full points when the denominator is 0)",
    "下载考评表": "Download assessment workbook",
    "生成考评表": "Build assessment workbook",
    "考评表生成功能暂不可用": "The workbook builder is not available",
    # data
    "ETL 运行记录": "ETL runs",
    "各表行数": "Rows per table",
    "隔离数据（按原因）": "Quarantine by reason",
    "数据新鲜度": "Data freshness",
    "表": "Table",
    "行数": "Rows",
    "评价日期": "Evaluation date",
    # system log
    "时间": "Time",
    "用户": "User",
    "页面": "Page",
    "对象": "Object",
}
# The shared vocabulary (unit levels, coverage states): the same Chinese words as the workbook.
EN.update({V.LEVELS[k]: V.LEVELS_EN[k] for k in V.LEVELS})
EN.update({V.COVERAGE_STATUS[k]: V.COVERAGE_STATUS_EN[k] for k in V.COVERAGE_STATUS})

# Column headers of data frames shown to users.
COLUMNS: dict[str, str] = {
    "unit_code": "单位代码",
    "unit_name": "单位",
    "name": "名称",
    "level": "级别",
    "incident_no": "警情编号",
    "arrived_at": "到达时间",
    "ended_at": "结束时间",
    "window_s": "窗口(秒)",
    "covered_s": "覆盖(秒)",
    "covered_fraction": "覆盖率",
    "gap_count": "空档数",
    "status": "状态",
    "cause": "原因提示",
    "officers": "出警人数",
    "report_id": "中断报告",
    "rule_id": "规则",
    "article": "条款",
    "count": "数量",
    "detail": "说明",
    "occurred_at": "发生时间",
    "case_no": "案件编号",
    "title": "案由",
    "procedure": "程序",
    "registered_at": "受案时间",
    "findings": "问题数",
    "action_id": "环节编号",
    "action_type": "环节",
    "started_at": "开始",
    "police_no": "警号",
    "doc_id": "文书编号",
    "doc_type": "文书",
    "created_at": "制作时间",
    "party_signed": "当事人签名",
    "party_refused": "拒签",
    "officer_signed": "民警签名",
    "delivery_id": "送达编号",
    "method": "送达方式",
    "delivered_at": "送达时间",
    "receipt_signed": "回执签收",
    "clip_id": "文件编号",
    "device_sn": "设备编号",
    "kind": "类型",
    "model": "型号",
    "status_since": "状态起始",
    "holder": "使用人",
    "from_at": "领用时间",
    "to_at": "归还时间",
    "clips": "视频数",
    "repair_days": "维修天数",
    "log_id": "调阅编号",
    "action": "操作",
    "user_no": "调阅人",
    "at": "时间",
    "reason": "事由",
    "approver_no": "审批人",
    "recipient": "接收方",
    "period": "期间",
    "total": "总分",
    "grade": "等级",
    "rank": "名次",
    "veto": "一票否决",
    "item_id": "项目编号",
    "item_name": "考评项",
    "points": "分值",
    "objects": "对象数",
    "clean": "合格数",
    "deductions": "扣分",
    "score": "得分",
    "run_id": "运行编号",
    "ended": "结束",
    "sources_file": "数据源文件",
    "as_of": "评价日期",
    "message": "信息",
    "table_name": "表",
    "rows": "行数",
    "source": "来源",
    "row_key": "行键",
    "username": "用户",
    "role": "角色",
    "scope": "范围",
    "page": "页面",
    "object": "对象",
    "metric": "指标",
    "numerator": "分子",
    "denominator": "分母",
    "value": "数值",
    "month": "月份",
    "target": "目标值",
    "points_lost": "失分",
    "events": "事件数",
    "ok": "全程记录",
    "rate": "全程记录率",
    "latest": "最新时间",
    "gap_no": "空档序号",
    "gap_start": "空档开始",
    "gap_end": "空档结束",
    "gap_s": "空档(秒)",
    "reported_at": "报告时间",
    "imported_at": "上传时间",
    "deleted_at": "删除时间",
    "is_evidence": "证据",
    "action_label": "操作",
    "actions": "次数",
    "days": "天数",
    "scheme_version": "方案版本",
    "scheme_id": "考评方案",
    "category": "警情类别",
}

COLUMNS_EN: dict[str, str] = {}  # English headers: the raw column names read well enough


def tr(text: str, lang: str = "zh") -> str:
    """Translate one Chinese label (pure)."""
    return EN.get(text, text) if lang == "en" else text


def lang() -> str:
    """The language chosen in this session ('zh' default)."""
    try:
        import streamlit as st

        return "en" if st.session_state.get("lang_en") else "zh"
    except Exception:  # noqa: BLE001 - outside a Streamlit run
        return "zh"


def t(text: str) -> str:
    return tr(text, lang())


def headers(df: pd.DataFrame, language: str | None = None) -> pd.DataFrame:
    """The frame with user-facing column headers (Chinese, or the raw names in English)."""
    language = language or lang()
    if language == "en":
        return df.rename(columns=lambda c: c.replace("_", " "))
    return df.rename(columns=COLUMNS)
