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
    [
        None,
        "login",
        "login_failed",
        "login_locked",
        "lockout",
        "logout",
        "session_timeout",
        "view_event",
        "view_case",
        "view_access",
        "export_ledger",
        "export_workbook",
    ],
    format_func=lambda a: a or t("全部"),
    key="syslog_action",
)
chain = queries.audit_chain(url)  # tamper evidence: the hash chain of the whole log
if chain.ok:
    st.success(f"{t('日志哈希链完整')}：{chain.rows} {t('行')}")
else:
    st.error(f"{t('日志哈希链断开')}：{chain.message()}")
ui.table(queries.audit_rows(url, ctx.role, user, action))
