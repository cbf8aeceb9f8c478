"""单位画像 Unit profile: one unit's last 12 or 24 months at a glance: total and grade per month, the key
metrics as small multiples and as a table with 环比/同比 arrows and a sparkline, the months in detail."""

import streamlit as st

from dashboard import charts, i18n, logic, queries, ui
from dashboard.i18n import t

ctx = ui.page_context("unit", "单位画像")
url = ui.url()
c1, c2 = st.columns([2, 1])
unit = ui.unit_picker(ctx, container=c1)
months = c2.radio(
    t("期间"), [12, 24], format_func=lambda n: f"{t('近')} {n} {t('个月')}", horizontal=True, key="unit_months"
)
if unit is None:
    st.stop()
scores = queries.unit_score_history(url, ctx.scope, unit)
metrics = queries.unit_metric_history(url, ctx.scope, unit)
profile = logic.unit_profile(scores, metrics, months, i18n.lang())
if profile["last"] is None:
    st.info(t("该单位暂无考评数据"))
    st.stop()
last = profile["last"]
st.caption(f"{t('最新月份')}：{logic.period_text(last, i18n.lang())}")

# the latest month: the total and 全程记录率 against the month before (arrow and number), the grade and the rank
head = st.columns(4)
for col, series in zip(head[:2], ("total", "whole_process_rate"), strict=True):
    col.metric(**logic.change_cards(logic.trend_values(series, scores, metrics), last, series, i18n.lang())[0])
head[2].metric(t("等级"), profile["grade"])
head[3].metric(t("名次"), profile["rank"])

ui.chart(charts.unit_totals(profile["totals"], t("每月总分与等级"), t("一票否决")))
ui.chart(charts.small_multiples(profile["metrics"], t("主要指标（每月）"), empty_text=t("无数据")))

st.subheader(t("指标一览"))
ui.spark_table(profile["summary"], logic.PROFILE_SUMMARY_COLUMNS[-1])

st.subheader(t("逐月明细"))
ui.table(profile["table"])
