"""民警执法记录档案 Officer record: a unit's officers ranked; one officer's figures, monthly trend, events with one
event's timeline, the findings naming them and their access-register actions.  An officer sees their own only."""

import streamlit as st

from dashboard import charts, logic, queries, ui
from dashboard.i18n import t

ctx = ui.page_context("officer", "民警执法记录档案")
url, period = ui.url(), ui.period_picker()
if period is None:
    st.stop()
names = queries.unit_names(url)
wanted = st.query_params.get("police_no")
if ctx.role == "officer":  # their own record; another number (a query parameter) is refused by the query layer
    police_no = wanted or ctx.police_no
else:
    unit = ui.unit_picker(ctx)
    ranking = queries.officer_ranking(url, ctx.scope, unit, period) if unit else None
    if ranking is None:
        st.stop()
    st.subheader(t("民警排名"))
    ui.table(logic.with_unit_names(logic.ranking_view(ranking), names), height=logic.table_height(len(ranking)))
    options, index = logic.officer_options(list(ranking["police_no"]), wanted)  # a deep link's number first
    labels = logic.officer_labels(ranking)
    police_no = st.selectbox(
        t("选择民警"),
        options,
        index=index,
        placeholder=t("请选择"),
        format_func=lambda p: labels.get(p, p),
        key="police_no",
    )
    police_no = police_no or wanted  # a malformed number is never offered: the query layer answers it (unknown)
    if not police_no:
        st.stop()
found = queries.officer_lookup(url, ctx.scope, ctx.police_no, police_no)
if found["status"] == queries.OFFICER_FORBIDDEN:
    st.warning(t("无权查看该民警的记录"))
    st.stop()
if found["status"] == queries.OFFICER_UNKNOWN:
    refs = queries.unknown_officer_refs(url, ctx.scope, found["police_no"] or "")
    st.info(logic.unknown_officer_note(found["police_no"], refs) + t("（详见“数据质量”页）"))
    st.stop()
p = found["police_no"]
own = p == ctx.police_no  # one's own record needs no reason; it is audited all the same
reason = None if own else ui.reason_gate(ctx, "officer", "view_officer", p, key="officer")
if not (ui.audited_view(ctx, "officer", "view_officer", p) if own else reason):
    st.stop()

st.text(f"{t('警号')}：{p}    {t('姓名')}：{found['name'] or '—'}    {t('单位')}：{names.get(found['unit_code'], '—')}")
rec = queries.officer_record(url, ctx.scope, ctx.police_no, p, period)
for col, (label, value) in zip(st.columns(5), logic.officer_headline(rec), strict=True):
    col.metric(t(label), value)
st.caption(f"{t('问题按类')}：{logic.findings_by_family(rec) or '—'}")  # fixed words and numbers only
ui.chart(charts.officer_trend(queries.officer_trend(url, ctx.scope, ctx.police_no, p, period), t("近24个月趋势")))

st.subheader(t("出警事件"))
ev = queries.officer_events(url, ctx.scope, ctx.police_no, p, period)
ui.table(logic.with_unit_names(logic.officer_events_view(ev), names), height=logic.table_height(len(ev)))
incident = st.selectbox(t("选择事件"), list(ev["incident_no"]), index=None, placeholder=t("请选择"), key="incident")
if incident and ui.audited_view(ctx, "officer", "view_event", incident, reason):
    d = queries.officer_event_detail(url, ctx.scope, ctx.police_no, p, incident)
    if not d["event"].empty:
        e = d["event"].iloc[0]
        ui.chart(charts.event_timeline(e, d["clips"], d["gaps"], d["report"], d["officers"], t("时间轴")))

st.subheader(t("涉及该民警的问题"))
named = queries.officer_findings(url, ctx.scope, ctx.police_no, p, period)
ui.table(logic.with_unit_names(logic.officer_findings_view(named), names), height=logic.table_height(len(named)))

st.subheader(t("调阅操作"))
months = queries.officer_access_months(url, ctx.scope, ctx.police_no, p, period)
title = t("调阅操作（近24个月，按月）")
ui.chart(charts.stacked_bars(months, "month", "action", "actions", title, logic.ACCESS_ZH, logic.ACCESS_COLORS))
acc = queries.officer_access(url, ctx.scope, ctx.police_no, p, period)
ui.table(logic.with_unit_names(logic.officer_access_view(acc), names), height=logic.table_height(len(acc)))
