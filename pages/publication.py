"""发布 Publication: a period's published versions, the restatement against the current figures, version n+1."""

import streamlit as st

from dashboard import logic, queries, supervision, ui
from dashboard.i18n import t

ctx = ui.page_context("publication", "发布")
url = ui.url()
period = ui.period_picker()
if period is None:
    st.stop()

st.subheader(t("已发布版本"))
pubs = queries.publications(url, period)
if pubs.empty:
    st.info(t("本期间尚未发布"))
else:
    ui.table(pubs)
    version = st.selectbox(
        t("查看版本"), sorted(pubs["version"], reverse=True), format_func=lambda v: f"v{v}", key="pub_version"
    )
    published = queries.published_scores(url, ctx.scope, None, period, version)
    ui.table(logic.scores_view(published), height=300)

    st.subheader(t("重述差异"))
    st.caption(t("当前数据与最新发布版本不同的单位（差额 = 当前 − 已发布）"))
    diff = queries.restatement(url, ctx.scope, period)
    if diff.empty:
        st.info(t("当前数据与已发布版本一致"))
    else:
        ui.table(diff)

if ctx.role != "legal":  # leaders read; publishing is the legal department's
    st.caption(t("只读：发布由法制部门作出"))
    st.stop()
next_version = 1 if pubs.empty else int(pubs["version"].max()) + 1
st.subheader(f"{t('发布')} v{next_version}")
with st.form("publish_form"):
    reason = st.text_input(t("发布理由"), key="publish_reason", max_chars=500)
    submitted = st.form_submit_button(f"{t('发布')} v{next_version}")
if submitted:
    ui.write(
        reason,
        lambda r: "{}，v{}".format(*supervision.publish(url, ctx, period, reason=r)),
        "已发布",
    )
