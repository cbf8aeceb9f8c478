"""待办 Inbox: what waits for this user — for the legal department appeals to decide, answers to re-check,
spot-check items to review, explanations to judge; for a unit administrator notices to answer (and overdue
ones) and findings it may still appeal — each section with a link to the page that handles it."""

import streamlit as st

from dashboard import loop, ui
from dashboard.i18n import t

ctx = ui.page_context("todo", "待办")
url = ui.url()
if loop.todo_sections(ctx, url) == 0:
    st.success(t("暂无待办事项"))
