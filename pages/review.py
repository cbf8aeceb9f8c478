"""复核 Review: findings of a unit and period with their state; one verdict, one reason, on one or many findings."""

import streamlit as st

from dashboard import logic, queries, supervision, ui
from dashboard.i18n import t

ctx, url, period, unit = ui.scoped_page("review", "复核")
c1, c2, c3 = st.columns(3)
rule = c1.selectbox(
    t("规则"),
    [None, *queries.finding_rules(url, ctx.scope, unit, period)],
    format_func=lambda r: t(logic.rule_label(r)),
    key="review_rule",
)
state = c2.selectbox(
    t("复核状态"),
    [None, *queries.REVIEW_STATES],
    format_func=lambda s: t("全部") if s is None else t(logic.REVIEW_STATE_ZH[s]),
    key="review_state",
)
appeal = c3.selectbox(
    t("申诉状态"),
    [None, *queries.APPEAL_STATES],
    format_func=lambda s: t("全部") if s is None else t(logic.APPEAL_STATE_ZH.get(s, "未申诉")),
    key="review_appeal",
)
queue = queries.review_queue(url, ctx.scope, unit, period, rule, state, appeal)
shown = ui.shown_versions("review", dict(zip(queue["finding_key"], queue["version"], strict=True)))
ui.table(logic.review_view(queue), queries.unit_names(url), height=360)

if ctx.role != "legal":  # leaders read the queue; verdicts are the legal department's
    st.caption(t("只读：复核结论由法制部门作出"))
    st.stop()

st.subheader(t("复核结论"))
with st.form("review_form"):
    reason = st.text_input(t("事由"), key="review_reason", max_chars=500)
    keys = st.multiselect(t("选择问题"), list(queue["finding_key"]), key="review_keys")
    every = st.checkbox(t("全部筛选结果"), key="review_all")
    f1, f2 = st.columns(2)
    verdict = f1.radio(
        t("结论"), list(logic.VERDICT_ZH), format_func=lambda v: t(logic.VERDICT_ZH[v]), horizontal=True, key="verdict"
    )
    category = f2.selectbox(
        t("豁免类别"),
        [None, *logic.EXEMPT_CATEGORIES],
        format_func=lambda c: t("请选择") if c is None else t(c),
        key="review_category",
    )
    submitted = st.form_submit_button(t("提交复核"))
if submitted:
    chosen = list(queue["finding_key"]) if every else keys
    ui.write(
        reason,
        lambda r: supervision.review(url, ctx, chosen, verdict, reason=r, category=category, versions=shown),
        "复核已保存",
        missing=None if chosen else "请选择问题",
    )
