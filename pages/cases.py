"""案件检查 Case inspection: find a case; its timeline, documents, deliveries, clips and rule checklist."""

import streamlit as st

from dashboard import charts, logic, queries, ui
from dashboard.i18n import t

ctx = ui.page_context("cases", "案件检查")
url = ui.url()
c1, c2, c3 = st.columns([2, 2, 1])
unit = ui.unit_picker(ctx, container=c1)
text = c2.text_input(t("查找案件"), key="case_q", max_chars=64)
only = c3.checkbox(t("仅显示有问题的案件"), key="case_only")
if unit is None:
    st.stop()
names = queries.unit_names(url)
found = queries.search_cases(url, ctx.scope, unit, text, only)
ui.table(logic.cases_view(found), names, height=280)

options = list(found["case_no"])
wanted = st.query_params.get("case")
if wanted and wanted not in options:
    options.insert(0, wanted)  # a deep link: the query layer still checks the scope
case_no = st.selectbox(t("选择案件"), options, index=None, placeholder=t("请选择"), key="case_no")
if not case_no or not ui.reason_gate(ctx, "cases", "view_case", case_no, key="case"):
    st.stop()
d = queries.case_detail(url, ctx.scope, case_no)
if d["case"].empty:
    st.warning(t("无数据"))
    st.stop()
case = d["case"].iloc[0]
st.subheader(case_no)
st.text(f"{t('单位')}：{names.get(case['unit_code'], case['unit_code'])}    {case['title'] or ''}")
ui.chart(charts.case_timeline(d["actions"], d["documents"], d["deliveries"], d["clips"], t("案件时间轴")))

st.subheader(t("规则检查"))
check = logic.case_checklist(d["findings"], queries.CASE_RULES)
check["status"] = check["status"].map(t)
ui.table(check)
tabs = st.tabs([t("执法环节"), t("法律文书"), t("送达"), t("音视频"), t("问题总数")])
with tabs[0]:
    ui.table(d["actions"])
with tabs[1]:
    docs = d["documents"]
    ui.table(docs.assign(party_signed=logic.signature_status(docs)) if not docs.empty else docs)
with tabs[2]:
    ui.table(d["deliveries"])
with tabs[3]:
    ui.table(d["clips"])
with tabs[4]:
    ui.table(d["findings"])
