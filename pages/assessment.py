"""考评 Assessment: scores under a scheme, grade, rank, trend (环比, 同比), items, drill-down to findings, workbook download."""

import streamlit as st

from dashboard import charts, logic, loop, queries, ui
from dashboard.i18n import t

ctx = ui.page_context("assessment", "考评")
url = ui.url()
period = ui.period_picker()
if period is None:
    st.stop()
names = queries.unit_names(url)
schemes = queries.schemes(url)
if schemes.empty:
    st.info(t("无数据"))
    st.stop()
scheme = st.selectbox(t("考评方案"), list(schemes["scheme_id"].unique()), key="scheme")
unit = ui.unit_picker(ctx)
version = ui.publication_switch(url, period, scheme)  # a published period: its published figures by default
scores = (
    queries.scores(url, ctx.scope, unit, period, scheme)
    if version is None
    else queries.published_scores(url, ctx.scope, unit, period, version)
)
ui.score_headline(scores, unit)
ui.data_notes(ctx, unit)  # what the figures leave out
loop.loop_metrics(ctx, url, unit, period)  # 抽查合格率, 整改按期完成率
ui.chart(charts.bars(scores.head(40), "unit_name", "total", t("总分"), horizontal=True, hover="grade"))
ui.table(
    logic.scores_view(scores)[["unit_code", "unit_name", "level", "total", "grade", "rank", "veto", "scheme_version"]]
)
ui.trend_panel(ctx, unit, period, scheme, key="assessment_trend", published=version is not None)

st.subheader(t("分项得分"))
chosen = (
    st.selectbox(t("选择单位"), list(scores["unit_code"]), format_func=lambda c: names.get(c, c), key="score_unit")
    if not scores.empty
    else None
)
if chosen:
    items = (
        queries.item_scores(url, ctx.scope, chosen, period, scheme)
        if version is None
        else queries.published_item_scores(url, ctx.scope, chosen, period, version)
    )
    ui.chart(charts.item_breakdown(items, t("分项得分")))
    ui.table(items)
    st.subheader(t("扣分追溯"))
    lost = items[items["score"] < items["points"]]
    item = st.selectbox(
        t("选择考评项"),
        list(lost["item_id"]),
        index=None,
        placeholder=t("请选择"),
        key="lost_item",
        format_func=lambda i: str(lost.set_index("item_id")["item_name"].get(i, i)),
    )
    if item:  # what lost this item's points: a metric item's value, the findings of the item's rules
        lost_at = queries.item_lost_points(url, ctx.scope, chosen, period, scheme, item)
        if not lost_at["metric"].empty:
            st.caption(t("按指标值计分：得分 = 分值 × 指标值（超过 100% 按 100% 计，分母为 0 得满分）"))
            ui.table(logic.metric_loss_view(lost_at["metric"]))
        if not lost_at["findings"].empty or lost_at["metric"].empty:
            ui.table(lost_at["findings"], names)

st.subheader(t("下载考评表"))
ui.workbook_download(ctx, url, unit, period, scheme, version)
