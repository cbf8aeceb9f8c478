"""整改 Rectification (Art. 35): the legal department issues notices with a deadline and re-checks the answers;
a unit administrator answers its notices (待整改, due and overdue) with the measures taken; leaders read."""

import streamlit as st

from dashboard import logic, loop, queries, ui
from dashboard.i18n import t

ctx = ui.page_context("rectification", "整改")
url = ui.url()
names = queries.unit_names(url)
on = queries.today()
notices = queries.notices(url, ctx.scope, on)
shown = ui.shown_versions("notices", dict(zip(notices["notice_id"], notices["version"], strict=True)))

if ctx.role == "legal":
    loop.issue_form(ctx, url, expanded=notices.empty)
mine = ctx.role == "unit_admin"
st.subheader(t("待整改") if mine else t("整改通知"))
c1, c2 = st.columns([2, 1])
state = c1.selectbox(
    t("状态"),
    [None, *logic.NOTICE_STATE_ZH],
    format_func=lambda s: t("全部") if s is None else t(logic.NOTICE_STATE_ZH[s]),
    key="notice_state",
)
overdue_only = c2.toggle(t("只看逾期"), key="overdue_only")
listed = logic.filter_notices(notices, state, overdue_only)
if mine:  # what is due (open or returned) and what is overdue
    due, late = logic.notice_counts(notices)
    m1, m2 = st.columns(2)
    m1.metric(t("待整改"), due)
    m2.metric(t("已逾期"), late)
ui.table(logic.notices_view(listed), names, height=logic.table_height(len(listed)))
st.caption(f"{t('今天')}：{on}　{t('逾期：未在整改期限内办结')}")

notice_id = loop.notice_picker(listed, names)
if notice_id is None:
    st.stop()
n = loop.notice_detail(ctx, url, notice_id)
if n is None:
    st.stop()
if mine:
    loop.respond_form(ctx, url, n, shown.get(notice_id))
elif ctx.role == "legal":
    loop.recheck_form(ctx, url, n, shown.get(notice_id))
else:
    st.caption(t("只读：整改通知由法制部门下发和复查"))
loop.notice_download(ctx, url, notice_id)
