"""申诉 Appeals: a unit administrator appeals open findings of its scope; the legal department decides them."""

import streamlit as st

from dashboard import logic, queries, supervision, ui
from dashboard.i18n import t

ctx = ui.page_context("appeals", "申诉")
url = ui.url()
names = queries.unit_names(url)

if ctx.role == "unit_admin":
    period = ui.period_picker()
    unit = ui.unit_picker(ctx)
    if period is None or unit is None:
        st.stop()
    st.subheader(t("本单位问题"))
    found = queries.review_queue(url, ctx.scope, unit, period)
    ui.table(logic.review_view(found), names, height=320)
    with st.form("appeal_form"):
        reason = st.text_input(t("申诉理由"), key="appeal_reason", max_chars=500)
        key = st.selectbox(
            t("申诉的问题"), logic.appealable(found), index=None, placeholder=t("请选择"), key="appeal_key"
        )
        submitted = st.form_submit_button(t("提交申诉"))
    if submitted:
        ui.write(
            reason,
            lambda r: supervision.file_appeal(url, ctx, key, reason=r),
            "申诉已提交",
            missing=None if key else "请选择问题",
        )
    st.subheader(t("本单位申诉"))
    ui.table(logic.appeals_view(queries.appeals(url, ctx.scope)), names)
    st.stop()

st.subheader(t("待处理申诉"))
pending = queries.appeals(url, ctx.scope, "pending")
shown = ui.shown_versions("appeals", dict(zip(pending["appeal_id"], pending["version"], strict=True)))
ui.table(logic.appeals_view(pending), names)
with st.form("decide_form"):
    reason = st.text_input(t("决定理由"), key="decide_reason", max_chars=500)
    appeal_id = st.selectbox(
        t("选择申诉"), list(pending["appeal_id"]), index=None, placeholder=t("请选择"), key="appeal_id"
    )
    decision = st.radio(
        t("决定"),
        list(logic.DECISION_ZH),
        format_func=lambda d: t(logic.DECISION_ZH[d]),
        horizontal=True,
        key="decision",
    )
    submitted = st.form_submit_button(t("提交决定"))
if submitted:
    ui.write(
        reason,
        lambda r: supervision.decide_appeal(url, ctx, appeal_id, decision, reason=r, version=shown.get(appeal_id, 0)),
        "申诉已处理",
        missing=None if appeal_id is not None else "请选择申诉",
    )
st.subheader(t("已处理申诉"))
ui.table(logic.appeals_view(queries.appeals(url, ctx.scope, "decided")), names)
