"""数据质量 Data quality: what the rules could not judge (or judged on partial data), per unit and kind.

Unit administrators see their scope with the objects; IT sees the counts per unit and kind city-wide, never the
object keys; leaders and the legal department see the objects of the city.
"""

import streamlit as st

from dashboard import queries, ui
from dashboard.i18n import t

ctx = ui.page_context("data_quality", "数据质量")
KINDS = queries.data_quality_kinds()
url = ui.url()
unit = ui.unit_picker(ctx)
if unit is None:
    st.stop()
names = queries.unit_names(url)
st.caption(t("规则无法判定或只能按部分数据判定的对象，由应当更正数据的单位处理；更正源数据后，下次运行即移出本清单。"))

counts = queries.data_quality_counts(url, ctx.scope, unit)
if counts.empty:
    st.success(t("范围内无待处理的数据质量问题"))
    st.stop()
counts = counts.assign(kind=counts["kind"].map(lambda k: t(KINDS.get(k, k))))
c1, c2 = st.columns(2)
c1.metric(t("待处理对象"), f"{int(counts['objects'].sum()):,}")
c2.metric(t("涉及单位"), f"{counts['unit_code'].nunique():,}")
st.subheader(t("按单位和问题类型"))
ui.table(counts.pivot_table(index="unit_code", columns="kind", values="objects", fill_value=0).reset_index(), names)

if queries.masked(ctx.role):  # no case content (IT): the counts only, no object keys
    st.stop()
st.subheader(t("对象清单"))
kind = st.selectbox(
    t("问题类型"),
    [None, *KINDS],
    format_func=lambda k: t("全部") if k is None else t(KINDS[k]),
)
rows = queries.data_quality(url, ctx.scope, unit, ctx.role, kind)
rows = rows.assign(kind=rows["kind"].map(lambda k: t(KINDS.get(k, k))))
ui.table(rows, names, height=420)
