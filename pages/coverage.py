"""现场记录 Coverage: unit × month heatmap, events with status and gaps, one event's timeline."""

import streamlit as st

from dashboard import charts, logic, queries, ui
from dashboard.i18n import t

ctx, url, period, unit = ui.scoped_page("coverage", "现场记录")
names = queries.unit_names(url)
# what coverage could not judge (on-site events, attendance, clips, device clocks): the data-quality queue
note = queries.not_judged_note(url, ctx.scope, unit, ("incidents", "incident_officers", "clips", "devices"))
if note:
    st.info(f"{note}{t('（详见“数据质量”页）')}")

heat = logic.with_rate(queries.coverage_by_unit_month(url, ctx.scope, unit, period[:4]))  # the period's year
ui.chart(charts.heatmap(heat, t("全程记录率热力图（单位×月）")))

st.subheader(t("事件列表"))
statuses = [None, "none", "partial", "excused", "full"]
status = st.selectbox(t("状态"), statuses, format_func=lambda s: t("全部") if s is None else t(logic.STATUS_ZH[s]))
ev = queries.events(url, ctx.scope, unit, period, status)
ui.table(logic.events_view(ev), names, height=300)

st.subheader(t("事件详情"))
options = list(ev["incident_no"])
wanted = st.query_params.get("incident")
if wanted and wanted not in options:
    options.insert(0, wanted)  # a deep link: the query layer still checks the scope
incident = st.selectbox(t("选择事件"), options, index=None, placeholder=t("请选择"), key="incident")
if incident and ui.reason_gate(ctx, "coverage", "view_event", incident, key="event"):
    d = queries.event_detail(url, ctx.scope, incident)
    if d["event"].empty:
        st.warning(t("无数据"))
        st.stop()
    e = d["event"].iloc[0]
    c1, c2, c3 = st.columns(3)
    c1.metric(t("状态"), t(logic.STATUS_ZH.get(e["status"], e["status"])))
    c2.metric(t("覆盖率"), logic.fmt_rate(e["covered_fraction"]))
    c3.metric(t("原因提示"), t(logic.CAUSE_ZH.get(e["cause"], "—")) if e["cause"] else "—")
    ui.chart(charts.event_timeline(e, d["clips"], d["gaps"], d["report"], d["officers"], t("时间轴")))
    st.text(
        f"{t('中断报告')}："
        + (
            "；".join(f"{r.police_no} {r.reported_at} {r.reason or ''}" for r in d["report"].itertuples())
            or t("无中断报告")
        )
    )
    ui.table(d["gaps"])
