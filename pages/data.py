"""数据 Data: ETL runs, rows per table, quarantine by reason, data freshness (no case content)."""

import streamlit as st

from dashboard import charts, logic, queries, ui
from dashboard.i18n import t

ctx = ui.page_context("data", "数据")
url = ui.url()

st.subheader(t("ETL 运行记录"))
ui.table(queries.etl_runs(url, ctx.role))

left, right = st.columns(2)
with left:
    st.subheader(t("各表行数"))
    counts = queries.table_rows(url)
    approx = t("约")  # PostgreSQL's large tables: the planner's estimate, never shown as an exact figure
    cells = [f"{approx} {n:,}" if est else f"{n:,}" for n, est in counts[["rows", "estimated"]].itertuples(index=False)]
    ui.table(counts.assign(rows=cells).drop(columns="estimated"))
    if counts["estimated"].any():
        st.caption(t("约：大表为 PostgreSQL 统计信息中的估计行数（不逐行计数）；其余为精确计数"))
with right:
    st.subheader(t("数据新鲜度"))
    st.text(f"{t('评价日期')}：{logic.fmt_time(queries.as_of(url))}")
    ui.table(queries.freshness(url, ctx.role))

st.subheader(t("隔离数据（按原因）"))
q = queries.quarantine_by_reason(url, ctx.role)
if q.empty:
    st.info(t("无数据"))
else:
    shown = q.groupby("reason", as_index=False)["count"].sum().sort_values("count", ascending=False)
    ui.chart(charts.bars(shown.head(20), "reason", "count", t("隔离数据（按原因）"), horizontal=True))
    ui.table(q)
