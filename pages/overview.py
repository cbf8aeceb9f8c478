"""总览 Overview: events, whole-process rate, standard metrics, findings by article, trend (环比, 同比), ranking."""

import streamlit as st

from dashboard import charts, logic, loop, queries, ui
from dashboard.i18n import t

ctx, url, period, unit = ui.scoped_page("overview", "总览")
version = ui.publication_switch(url, period)  # scores: the published ones by default for a published period
ui.data_notes(ctx, unit)  # what the figures leave out: objects not judged, integrity not checked

summary = logic.status_summary(queries.event_status_counts(url, ctx.scope, unit, period))
by_article = queries.findings_by_article(url, ctx.scope, unit, period)
scores = (
    queries.scores(url, ctx.scope, unit, period)
    if version is None
    else queries.published_scores(url, ctx.scope, unit, period, version)
)
c1, c2, c3 = st.columns(3)
c1.metric(t("现场执法事件"), logic.fmt_num(summary["events"]))
c2.metric(t("全程记录率"), logic.fmt_rate(summary["rate"]), help=f"{summary['ok']} / {summary['events']}")
c3.metric(t("问题总数"), logic.fmt_num(int(by_article["count"].sum()) if not by_article.empty else 0))
averages = logic.level_averages(scores)  # like with like: one average per unit level, never across levels
if averages.empty:
    st.metric(t("平均得分"), "—")
for col, a in zip(st.columns(max(len(averages), 3)), averages.itertuples(), strict=False):
    col.metric(f"{t('平均得分')}（{t(a.label)}）", logic.fmt_num(round(a.mean, 2)), help=f"{a.units} {t('个单位')}")
loop.loop_metrics(ctx, url, unit, period)  # 抽查合格率, 整改按期完成率

left, right = st.columns(2)
with left:
    st.subheader(t("标准指标"))
    m = queries.metrics(url, ctx.scope, unit, period)
    if m.empty:
        st.info(t("无数据"))
    else:
        ui.table(logic.metrics_view(m))
with right:
    st.subheader(t("按条款统计问题"))
    fa = logic.findings_by_rule(by_article)
    ui.chart(charts.bars(fa, "label", "count", t("按条款统计问题"), horizontal=True, hover="article"))

ui.trend_panel(ctx, unit, period, published=version is not None)  # 环比 and 同比 with arrows, this year over last

st.subheader(t("单位排名"))
if scores.empty:
    st.info(t("无数据"))
else:
    ui.table(logic.scores_view(scores)[["unit_code", "unit_name", "level", "total", "grade", "rank", "veto"]])
