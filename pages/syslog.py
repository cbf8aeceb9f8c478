"""系统日志 System log: the dashboard's own audit log (read-only here)."""

import streamlit as st

from dashboard import queries, ui
from dashboard.i18n import t

ctx = ui.page_context("syslog", "系统日志")
url = ui.url()
c1, c2 = st.columns(2)
user = c1.text_input(t("用户"), key="syslog_user", max_chars=64).strip().lower() or None
action = c2.selectbox(
    t("操作"),
    [None, "login", "view_event", "view_case", "view_access", "export_ledger", "export_workbook"],
    format_func=lambda a: a or t("全部"),
    key="syslog_action",
)
ui.table(queries.audit_rows(url, user, action))
