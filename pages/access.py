"""调阅审计 Access audit: access records with their findings, filters, per-user summary, one record."""

import streamlit as st

from dashboard import charts, queries, ui
from dashboard.i18n import t
from dashboard.logic import ACCESS_ZH as ACCESS_ACTIONS

ctx, url, period, unit = ui.scoped_page("access", "调阅审计")
names = queries.unit_names(url)

summary = queries.access_summary(url, ctx.scope, unit, period)
c1, c2 = st.columns(2)
users = sorted(summary["user_no"].dropna().unique()) if not summary.empty else []
user_no = c1.selectbox(t("调阅人"), [None, *users], format_func=lambda u: u or t("全部"), key="access_user")
action = c2.selectbox(
    t("操作"),
    [None, *ACCESS_ACTIONS],
    key="access_action",
    format_func=lambda a: t("全部") if a is None else ACCESS_ACTIONS[a],
)

st.subheader(t("调阅记录"))
records = queries.access_records(url, ctx.scope, unit, period, user_no, action)
ui.table(records.assign(action=records["action"].map(lambda a: ACCESS_ACTIONS.get(a, a))), names, height=320)

st.subheader(t("按用户汇总"))
if summary.empty:
    st.info(t("无数据"))
else:
    by_action = summary.groupby("action", as_index=False)["actions"].sum()
    by_action["action"] = by_action["action"].map(lambda a: ACCESS_ACTIONS.get(a, a))
    ui.chart(charts.bars(by_action, "action", "actions", t("按用户汇总")))
    pivot = summary.pivot_table(index="user_no", columns="action", values="actions", aggfunc="sum", fill_value=0)
    pivot = pivot.rename(columns=lambda a: ACCESS_ACTIONS.get(a, a)).reset_index()
    ui.table(pivot)

log_id = st.selectbox(t("选择调阅记录"), list(records["log_id"]), index=None, placeholder=t("请选择"), key="log_id")
if log_id and ui.reason_gate(ctx, "access", "view_access", log_id, key="access"):
    ui.table(queries.access_detail(url, ctx.scope, log_id), names)
