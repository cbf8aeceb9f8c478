"""完整性 Integrity: altered, missing and early-deleted originals; late uploads."""

import streamlit as st

from dashboard import charts, logic, queries, ui
from dashboard.i18n import t

ctx, url, period, unit = ui.scoped_page("integrity", "完整性")
names = queries.unit_names(url)
not_checked = queries.integrity_not_checked(url)
if not_checked:  # neither "all fine" nor "all lost": say the originals were not checked
    st.warning(t("最近一次数据加载未检查原始文件完整性，篡改、缺失数量不反映原始文件状况") + f"：{not_checked}")

counts = queries.rule_counts(url, ctx.scope, unit, period, queries.INTEGRITY_RULES)
by_rule = dict(zip(counts["rule_id"], counts["count"], strict=True))
labels = {
    "INTEGRITY-HASH": "篡改",
    "INTEGRITY-MISSING": "缺失",
    "INTEGRITY-DELETED": "提前删除",
    "UPLOAD-LATE": "上传超时",
}
cols = st.columns(len(labels))
for col, (rule, label) in zip(cols, labels.items(), strict=True):
    col.metric(t(label), logic.fmt_num(by_rule.get(rule, 0)))
shown = counts.assign(label=counts["rule_id"].map(lambda r: t(labels.get(r, r))))
ui.chart(charts.bars(shown, "label", "count", t("完整性"), color="#c62828"))

tabs = st.tabs([t(v) for v in labels.values()])
for tab, rule in zip(tabs, labels, strict=True):
    with tab:
        ui.table(queries.findings_list(url, ctx.scope, unit, period, (rule,)), names)
