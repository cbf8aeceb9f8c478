"""设备台账 Equipment: devices by unit/kind/status, holders and history, usage, repair age, idle, ledger."""

import streamlit as st

from dashboard import charts, exports, i18n, logic, queries, ui
from dashboard.i18n import t

ctx, url, period, unit = ui.scoped_page("equipment", "设备台账")
names = queries.unit_names(url)

counts = queries.device_counts(url, ctx.scope, unit)
by_status = counts.groupby("status", as_index=False)["count"].sum() if not counts.empty else counts
ui.chart(charts.bars(logic.device_view(by_status), "status", "count", t("设备")))

c1, c2 = st.columns(2)
kind = c1.selectbox(
    t("类型"), [None, *logic.DEVICE_KIND_ZH], format_func=lambda k: logic.DEVICE_KIND_ZH.get(k, t("全部"))
)
status = c2.selectbox(
    t("状态"), [None, *logic.DEVICE_STATUS_ZH], format_func=lambda s: logic.DEVICE_STATUS_ZH.get(s, t("全部"))
)
devs = queries.devices(url, ctx.scope, unit, period, kind, status)
st.subheader(t("设备列表"))
if len(devs) >= queries.DEVICES_SHOWN:
    st.caption(f"{t('列表最多显示')} {queries.DEVICES_SHOWN} {t('台；导出的台账包含全部设备')}")
ui.table(logic.device_view(devs), names, height=300)

tab_use, tab_hist, tab_repair, tab_idle, tab_ledger = st.tabs(
    [t("使用情况"), t("领用记录"), t("维修时长"), t("闲置设备"), t("台账核对")]
)
with tab_use:
    top = devs.sort_values("clips", ascending=False).head(30)
    ui.chart(charts.bars(top, "device_sn", "clips", t("使用情况")))
with tab_hist:
    sn = st.selectbox(t("选择设备"), list(devs["device_sn"]), index=None, placeholder=t("请选择"), key="device_sn")
    if sn:
        ui.table(queries.device_history(url, ctx.scope, sn))
with tab_repair:
    ui.table(logic.repair_age(devs, queries.as_of(url)), names)
with tab_idle:
    ui.table(queries.findings_list(url, ctx.scope, unit, period, ("EQUIP-IDLE",)), names)
with tab_ledger:
    ui.table(
        queries.findings_list(url, ctx.scope, unit, period, ("EQUIP-LEDGER", "EQUIP-ADMIN", "EQUIP-REPAIR")), names
    )

st.subheader(t("导出设备台账"))
if ctx.may_export and ui.reason_gate(
    ctx, "equipment", "export_ledger", f"{unit}:{period}", key="ledger", prompt="导出须填写事由（将记入系统日志）"
):
    ledger, truncated = queries.device_ledger(url, ctx.scope, unit, period, kind, status)
    note = None
    if truncated:  # never silently: the page and the file say where the export stops
        note = f"{t('设备超过')} {queries.LEDGER_EXPORT_LIMIT} {t('台，本次只导出前')} {queries.LEDGER_EXPORT_LIMIT} {t('台')}"
        st.warning(note)
    data = exports.to_xlsx(i18n.headers(logic.label_codes(logic.device_view(ledger), names), "zh"), note=note)
    st.download_button(
        t("下载"),
        data,
        file_name=f"设备台账_{unit}_{period}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="ledger_dl",
    )
