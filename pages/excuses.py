"""情况说明 Art. 17 explanations: excused events with their interruption report and timeline; accept or reject."""

import streamlit as st

from dashboard import charts, logic, queries, supervision, ui
from dashboard.i18n import t

ctx, url, period, unit = ui.scoped_page("excuses", "情况说明")
names = queries.unit_names(url)
state = st.selectbox(
    t("审查状态"),
    [None, *queries.EXCUSE_STATES],
    format_func=lambda s: t("全部") if s is None else t(logic.EXCUSE_STATE_ZH[s]),
    key="excuse_state",
)
events = queries.excused_events(url, ctx.scope, unit, period, state)
shown = ui.shown_versions("excuses", dict(zip(events["incident_no"], events["version"], strict=True)))
ui.table(logic.excuses_view(events), names, height=300)

incident = st.selectbox(t("选择事件"), list(events["incident_no"]), index=None, placeholder=t("请选择"), key="incident")
if not incident:
    st.stop()
lines = logic.excuse_report_lines(events.set_index("incident_no").loc[incident])
st.subheader(incident)
st.text("\n".join(f"{t(label)}：{t(text)}" for label, text in lines))  # the unit's words: plain text, never markup
if ui.reason_gate(ctx, "excuses", "view_event", incident, key="excuse_event"):
    d = queries.event_detail(url, ctx.scope, incident)
    if not d["event"].empty:
        e = d["event"].iloc[0]
        ui.chart(charts.event_timeline(e, d["clips"], d["gaps"], d["report"], d["officers"], t("时间轴")))

with st.form("excuse_form"):
    reason = st.text_input(t("审查理由"), key="excuse_reason", max_chars=500)
    verdict = st.radio(
        t("结论"),
        list(logic.EXCUSE_VERDICT_ZH),
        format_func=lambda v: t(logic.EXCUSE_VERDICT_ZH[v]),
        horizontal=True,
        key="excuse_verdict",
    )
    submitted = st.form_submit_button(t("提交审查"))
if submitted:
    ui.write(
        reason,
        lambda r: supervision.judge_excuse(url, ctx, incident, verdict, reason=r, version=shown.get(incident, 0)),
        "审查已保存",
    )
